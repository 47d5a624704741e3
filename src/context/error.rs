//! Build context: the stage's errors, each carrying the path, line or pattern that failed. Only data: it reads
//! nothing, prints nothing, and words its hints through `crate::hint`.

use std::io;
use std::path::PathBuf;

use crate::hint::Hint;

/// Errors of the build-context stage.
#[derive(Debug, thiserror::Error)]
pub enum ContextError {
    #[error("build context `{path}` does not exist")]
    ContextMissing { path: PathBuf },

    #[error("build context `{path}` is not a directory")]
    ContextNotDirectory { path: PathBuf },

    #[error("cannot open build context `{path}`: {source}")]
    ContextUnreadable { path: PathBuf, source: io::Error },

    #[error("Dockerfile `{path}` does not exist")]
    DockerfileMissing { path: PathBuf },

    #[error("cannot read Dockerfile `{path}`: {source}")]
    DockerfileUnreadable { path: PathBuf, source: io::Error },

    #[error(
        "Dockerfile `{rel}` is not part of the walked build context `{root}`{}",
        Hint("walk the context again after creating the Dockerfile")
    )]
    DockerfileNotInContext { root: PathBuf, rel: String },

    #[error("cannot read ignore file `{path}`: {source}")]
    IgnoreFileUnreadable { path: PathBuf, source: io::Error },

    #[error("ignore file `{path}` is not valid UTF-8")]
    IgnoreFileNotUtf8 { path: PathBuf },

    #[error("{path}:{line}: line is longer than 65535 bytes (docker cannot read it either)")]
    IgnoreLineTooLong { path: PathBuf, line: usize },

    #[error("{path}:{line}: invalid pattern `{pattern}`: {reason}")]
    InvalidPattern {
        path: PathBuf,
        line: usize,
        pattern: String,
        reason: String,
    },

    #[error(
        "Dockerfile path `{rel}` cannot be turned into the `!{rel}` rule docker adds: {reason}"
    )]
    InvalidDockerfileRule { rel: String, reason: String },

    #[error(
        "cannot read `{path}` in the build context: {source}{}",
        Hint("fix its permissions or exclude it in .dockerignore")
    )]
    Unreadable { path: PathBuf, source: io::Error },

    #[error(
        "file name `{path}` in the build context is not valid UTF-8{}",
        Hint("rename it or exclude it in .dockerignore")
    )]
    NonUtf8Path { path: PathBuf },

    #[error("symlink `{path}` in the build context has a target that is not valid UTF-8")]
    NonUtf8LinkTarget { path: PathBuf },

    #[error(
        "`{path}` changed while the build context was being sent ({detail}){}",
        Hint("the next build picks up the new content")
    )]
    FileChanged { path: PathBuf, detail: String },

    #[error(
        "`.dockerignore` in build context `{root}` is not a regular file, cannot add the Dockerfile to it"
    )]
    DockerignoreNotAFile { root: PathBuf },

    #[error("cannot write the build context tar stream: {source}")]
    WriteTar { source: io::Error },
}
