//! Build, artifacts file: built references ↔ the JSON file of `build --file-output` / `--build-artifacts`.
//! The format is Skaffold's (`{"builds": [{"imageName": …, "tag": …}]}`) so CI scripts carry over.

use std::path::Path;

use serde::{Deserialize, Serialize};

use crate::event::BuiltArtifact;
use crate::hint::Hint;

/// The artifacts file could not be written or read.
#[derive(Debug, thiserror::Error)]
pub enum ArtifactsFileError {
    #[error("{file}: {message}")]
    Io { file: String, message: String },
    #[error(
        "{file}: not a build artifacts file: {message}{}",
        Hint(format_args!("create it with `devloop build --file-output {file}`"))
    )]
    Invalid { file: String, message: String },
}

#[derive(Debug, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct ArtifactsFile {
    builds: Vec<BuiltArtifact>,
}

/// Writes the built artifacts to `path` (atomically: a reader never sees half a file).
pub fn write(path: &Path, builds: &[BuiltArtifact]) -> Result<(), ArtifactsFileError> {
    let file = path.display().to_string();
    let io = |e: std::io::Error| ArtifactsFileError::Io {
        file: file.clone(),
        message: e.to_string(),
    };
    let mut text = serde_json::to_string_pretty(&ArtifactsFile {
        builds: builds.to_vec(),
    })
    .map_err(|e| ArtifactsFileError::Io {
        file: file.clone(),
        message: e.to_string(),
    })?;
    text.push('\n');
    let dir = path
        .parent()
        .filter(|p| !p.as_os_str().is_empty())
        .unwrap_or(Path::new("."));
    let tmp = tempfile::NamedTempFile::new_in(dir).map_err(io)?;
    std::fs::write(tmp.path(), text).map_err(io)?;
    tmp.persist(path).map_err(|e| io(e.error))?;
    Ok(())
}

/// Reads a file written by [`write()`] (or by Skaffold's `--file-output`).
pub fn read(path: &Path) -> Result<Vec<BuiltArtifact>, ArtifactsFileError> {
    let file = path.display().to_string();
    let text = std::fs::read_to_string(path).map_err(|e| ArtifactsFileError::Io {
        file: file.clone(),
        message: e.to_string(),
    })?;
    let parsed: ArtifactsFile =
        serde_json::from_str(&text).map_err(|e| ArtifactsFileError::Invalid {
            file: file.clone(),
            message: e.to_string(),
        })?;
    Ok(parsed.builds)
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn round_trip_and_skaffold_shape() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("a.json");
        let builds = vec![BuiltArtifact {
            image: "api".into(),
            tag: "localhost:5000/api:abc@sha256:00".into(),
        }];
        write(&p, &builds).unwrap();
        let text = std::fs::read_to_string(&p).unwrap();
        assert!(text.contains("\"imageName\": \"api\""), "{text}");
        assert_eq!(read(&p).unwrap(), builds);
        std::fs::write(&p, "{}").unwrap();
        let e = read(&p).unwrap_err().to_string();
        assert!(
            e.contains("not a build artifacts file") && e.contains("hint:"),
            "{e}"
        );
    }
}
