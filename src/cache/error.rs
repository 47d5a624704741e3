//! Cache stage, its errors: what failed (the directory, the file) and, when the user can do something, a hint;
//! it imports only the hint leaf.

use std::io;
use std::path::PathBuf;

use crate::hint::Hint;

/// Errors of the cache stage.
#[derive(Debug, thiserror::Error)]
pub enum CacheError {
    /// No environment variable names a cache directory.
    #[error(
        "cannot find a cache directory: none of `DEVLOOP_CACHE_DIR`, `XDG_CACHE_HOME` and `HOME` is set{}",
        Hint("set `DEVLOOP_CACHE_DIR` to a writable directory")
    )]
    NoCacheDir,
    /// The cache directory cannot be created or written.
    #[error(
        "cache directory `{dir}` is not writable: {source}{}",
        Hint("fix its permissions, or set `DEVLOOP_CACHE_DIR` to a writable directory")
    )]
    Unwritable {
        dir: PathBuf,
        #[source]
        source: io::Error,
    },
    /// A context file could not be read for hashing.
    #[error("cannot read `{path}` to hash it: {source}")]
    Read {
        path: PathBuf,
        #[source]
        source: io::Error,
    },
    /// A store file could not be written.
    #[error(
        "cannot write cache file `{path}`: {source}{}",
        Hint("set `DEVLOOP_CACHE_DIR` to a writable directory with free space")
    )]
    Write {
        path: PathBuf,
        #[source]
        source: io::Error,
    },
    /// A build record could not be encoded (a path that is not UTF-8).
    #[error("cannot encode the build record of `{artifact}`: {source}")]
    Encode {
        artifact: String,
        #[source]
        source: serde_json::Error,
    },
}
