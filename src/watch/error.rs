//! Watch stage, why watching could not start: a missing root, a `watch.ignore` glob that does not parse, a
//! root's watch the OS refused, a thread that could not start → [`WatchError`] (fatal at start; after a
//! devloop.yaml change the caller reports it and keeps the old watches). Words the message and its hint; never
//! prints it.

use std::path::PathBuf;

use crate::hint::Hint;

/// Why watching could not start.
#[derive(Debug, thiserror::Error)]
pub enum WatchError {
    /// A root does not exist.
    #[error("watch root `{}` does not exist", path.display())]
    RootMissing {
        /// The root, resolved against the base directory.
        path: PathBuf,
    },
    /// A `watch.ignore` glob does not parse.
    #[error("watch.ignore: invalid glob `{glob}`: {message}")]
    Glob {
        /// The glob as written.
        glob: String,
        /// What is wrong with it.
        message: String,
    },
    /// A root's watch could not be registered.
    #[error("cannot watch `{}`: {source}{}", path.display(), register_hint(source))]
    Register {
        /// The directory whose watch failed.
        path: PathBuf,
        /// The OS error.
        source: std::io::Error,
    },
    /// One of the watcher's threads could not be started.
    #[error("cannot start the {what} thread: {source}")]
    Thread {
        /// Which thread.
        what: &'static str,
        /// The OS error.
        source: std::io::Error,
    },
}

/// The hint for a root the OS would not let devloop watch: only a permission problem has one.
fn register_hint(e: &std::io::Error) -> String {
    if e.kind() == std::io::ErrorKind::PermissionDenied {
        Hint("devloop needs read access to every directory it watches").to_string()
    } else {
        String::new()
    }
}
