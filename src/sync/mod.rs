//! Sync stage: the changed paths of one artifact and its config → the files to copy into and delete from its
//! running containers ([`Planned::Sync`]), or why it must be rebuilt ([`Planned::Rebuild`]). `sync.manual` rules
//! say where a file goes; for `sync.infer` globs the Dockerfile's `COPY`/`ADD` instructions of the built stage do
//! (`model.rs` reads them, `place.rs` follows a file through them, `cache.rs` keeps them parsed). Reads the changed
//! files' metadata and the Dockerfile; never copies, builds or prints.

mod cache;
mod model;
mod place;

use std::collections::{BTreeMap, BTreeSet};
use std::os::unix::fs::PermissionsExt;
use std::path::PathBuf;

pub use cache::Placements;

use crate::config::Artifact;
use crate::context::DockerIgnore;
use crate::deploy::SyncFile;

/// What to do with one artifact's changes.
#[derive(Debug, Clone, PartialEq)]
pub enum Planned {
    /// Copy and delete these in the running containers, instead of a rebuild.
    Sync {
        copy: Vec<SyncFile>,
        delete: Vec<Removal>,
    },
    /// Rebuild; the reason is one short line (`` `src/main.go` is not taken by a sync rule ``).
    Rebuild(String),
    /// No change reaches the build (only files `.dockerignore` leaves out): the cache decides.
    Unchanged,
    /// Changed files the image does not have (no instruction of the built stage copies them, nor uses them), and
    /// maybe ignored ones: nothing to do until the next build.
    NotCopied,
}

/// A deleted file and the container path to delete.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Removal {
    pub local: PathBuf,
    /// Absolute path in the container.
    pub dest: String,
}

/// One artifact's changes and what they are judged by.
pub struct Changes<'a> {
    pub artifact: &'a Artifact,
    /// Changed paths (absolute); those outside the artifact's context are not its concern.
    pub paths: &'a BTreeSet<PathBuf>,
    /// The context's `.dockerignore`.
    pub ignore: &'a DockerIgnore,
    /// An artifact built from this one (it must then be rebuilt, so that one is).
    pub required_by: Option<&'a str>,
    /// The build args the running image was built with (for variables in `COPY` paths).
    pub build_args: &'a BTreeMap<String, String>,
    /// The parsed Dockerfiles, kept across iterations.
    pub placements: &'a Placements,
}

/// Decides between a sync and a rebuild: every changed path of the context must be a file a rule takes (or that
/// `.dockerignore` leaves out); a deleted file a rule takes is deleted in the container; a changed directory stands
/// for the files in it (a directory created with files in it may be reported alone); the Dockerfile, an ignore
/// file or a link, or an artifact others are built from, rebuild.
pub fn plan(c: &Changes<'_>) -> Planned {
    let a = c.artifact;
    if let Some(other) = c.required_by {
        return Planned::Rebuild(format!("`{other}` is built from `{}`", a.image));
    }
    let mut copy = Vec::new();
    let mut delete = Vec::new();
    let mut not_copied = false;
    let excluded = |p: &std::path::Path| {
        p.strip_prefix(&a.context).is_ok_and(|rel| {
            c.ignore
                .is_excluded(&rel.to_string_lossy().replace('\\', "/"))
        })
    };
    let paths = match files_of(c.paths, &excluded) {
        Ok(paths) => paths,
        Err(reason) => return Planned::Rebuild(reason),
    };
    for p in &paths {
        if p == &a.dockerfile {
            return Planned::Rebuild("the Dockerfile changed".into());
        }
        let Ok(rel) = p.strip_prefix(&a.context) else {
            if a.context.starts_with(p) {
                return Planned::Rebuild(format!("`{}` changed", p.display()));
            }
            continue;
        };
        let rel = rel.to_string_lossy().replace('\\', "/");
        if rel.ends_with(".dockerignore") {
            return Planned::Rebuild(format!("`{rel}` changed"));
        }
        if c.ignore.is_excluded(&rel) {
            continue;
        }
        let mode = match p.symlink_metadata() {
            Ok(m) if m.is_file() => Some(m.permissions().mode() & 0o7777),
            Ok(_) => return Planned::Rebuild(format!("`{rel}` is not a regular file")),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => None,
            Err(e) => return Planned::Rebuild(format!("cannot read `{rel}`: {e}")),
        };
        let placed = match place(c, &rel) {
            Ok(Some(placed)) => placed,
            Ok(None) => {
                not_copied = true;
                continue;
            }
            Err(reason) => return Planned::Rebuild(reason),
        };
        match mode {
            Some(mode) => copy.push(SyncFile {
                local: p.clone(),
                dest: placed.path,
                mode: placed.chmod.unwrap_or(mode),
                owner: placed.chown,
            }),
            None => delete.push(Removal {
                local: p.clone(),
                dest: placed.path,
            }),
        }
    }
    if copy.is_empty() && delete.is_empty() {
        if not_copied {
            Planned::NotCopied
        } else {
            Planned::Unchanged
        }
    } else {
        Planned::Sync { copy, delete }
    }
}

/// The changed paths with each existing directory replaced by the files under it; directories `excluded` (by
/// `.dockerignore`) are not walked.
fn files_of(
    paths: &BTreeSet<PathBuf>,
    excluded: &dyn Fn(&std::path::Path) -> bool,
) -> Result<Vec<PathBuf>, String> {
    let mut out = Vec::new();
    let mut dirs = Vec::new();
    for p in paths {
        match p.symlink_metadata() {
            Ok(m) if m.is_dir() => {
                if !excluded(p) {
                    dirs.push(p.clone());
                }
            }
            _ => out.push(p.clone()),
        }
    }
    while let Some(dir) = dirs.pop() {
        let entries = std::fs::read_dir(&dir)
            .map_err(|e| format!("cannot read the directory `{}`: {e}", dir.display()))?;
        for entry in entries {
            let entry =
                entry.map_err(|e| format!("cannot read the directory `{}`: {e}", dir.display()))?;
            match entry.file_type() {
                Ok(t) if t.is_dir() => {
                    if !excluded(&entry.path()) {
                        dirs.push(entry.path());
                    }
                }
                _ => out.push(entry.path()),
            }
        }
    }
    out.sort();
    out.dedup();
    Ok(out)
}

/// Where the file at `rel` goes: a manual rule's destination, else where the Dockerfile puts it for an inferred
/// file (`None`: the image does not have it), else `Err`.
fn place(c: &Changes<'_>, rel: &str) -> Result<Option<place::Landing>, String> {
    let a = c.artifact;
    if let Some(path) = a.sync.iter().find_map(|r| r.dest_of(rel)) {
        return Ok(Some(place::Landing {
            path,
            line: 0,
            chmod: None,
            chown: None,
        }));
    }
    if !a.sync_infer.iter().any(|g| g.matches(rel)) {
        return Err(format!("`{rel}` is not taken by a sync rule"));
    }
    let model = c
        .placements
        .model(&a.image, &a.dockerfile, a.target.as_deref(), c.build_args);
    let model = model.as_ref().as_ref().map_err(Clone::clone)?;
    let mut landings = place::locate(model, rel, &a.context)?;
    landings.sort_by(|x, y| x.path.cmp(&y.path));
    landings.dedup_by(|x, y| x.path == y.path);
    match landings.len() {
        0 => Ok(None),
        1 => Ok(landings.pop()),
        _ => Err(format!(
            "`{rel}` is copied to both `{}` (Dockerfile line {}) and `{}` (line {})",
            landings[0].path, landings[0].line, landings[1].path, landings[1].line
        )),
    }
}

#[cfg(test)]
mod tests;
