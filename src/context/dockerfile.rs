//! Build context: the Dockerfile's place — a canonical context root and a Dockerfile path → where the Dockerfile
//! is relative to that root (inside, or outside with the `../` path the docker CLI computes). It resolves paths
//! on disk but reads no file's content and applies no ignore rule.

use std::fs;
use std::io;
use std::path::{Component, Path, PathBuf};

use super::error::ContextError;

/// Where the Dockerfile is relative to the (canonical) context root, after resolving symlinks like the
/// docker CLI does.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum DockerfileLocation {
    /// Inside the context; `rel` is its `/`-separated path there.
    Inside { path: PathBuf, rel: String },
    /// Outside the context; `rel` is the `../`-path the docker CLI computes (only used for the keep rule).
    Outside { path: PathBuf, rel: String },
}

impl DockerfileLocation {
    /// The canonical Dockerfile path.
    pub fn path(&self) -> &Path {
        match self {
            DockerfileLocation::Inside { path, .. } | DockerfileLocation::Outside { path, .. } => {
                path
            }
        }
    }

    /// The path relative to the context root (`../…` when outside).
    pub fn rel(&self) -> &str {
        match self {
            DockerfileLocation::Inside { rel, .. } | DockerfileLocation::Outside { rel, .. } => rel,
        }
    }
}

/// Resolves the Dockerfile (relative paths against the current directory, like `docker build -f`).
pub fn locate_dockerfile(
    root: &Path,
    dockerfile: &Path,
) -> Result<DockerfileLocation, ContextError> {
    let path = fs::canonicalize(dockerfile).map_err(|source| {
        if source.kind() == io::ErrorKind::NotFound {
            ContextError::DockerfileMissing {
                path: dockerfile.to_owned(),
            }
        } else {
            ContextError::DockerfileUnreadable {
                path: dockerfile.to_owned(),
                source,
            }
        }
    })?;
    let rel = relative_path(root, &path)
        .ok_or_else(|| ContextError::NonUtf8Path { path: path.clone() })?;
    if rel == ".." || rel.starts_with("../") {
        Ok(DockerfileLocation::Outside { path, rel })
    } else {
        Ok(DockerfileLocation::Inside { path, rel })
    }
}

/// `filepath.Rel` for two absolute canonical paths; `None` when a component is not UTF-8.
fn relative_path(base: &Path, target: &Path) -> Option<String> {
    let names = |p: &Path| -> Option<Vec<String>> {
        p.components()
            .filter_map(|c| match c {
                Component::Normal(n) => Some(n.to_str().map(str::to_owned)),
                _ => None,
            })
            .collect()
    };
    let base = names(base)?;
    let target = names(target)?;
    let common = base.iter().zip(&target).take_while(|(a, b)| a == b).count();
    let parts: Vec<&str> = std::iter::repeat_n("..", base.len() - common)
        .chain(target[common..].iter().map(String::as_str))
        .collect();
    Some(if parts.is_empty() {
        ".".to_owned()
    } else {
        parts.join("/")
    })
}
