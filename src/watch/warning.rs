//! Watch stage, what the user should know while watching goes on: a fallback to polling, lost events, a
//! directory that cannot be watched → [`WatchWarning`], handed out with the next [`ChangeSet`](super::ChangeSet)
//! (or by the start). Words the message and its hint; never prints it (the caller emits it as an event).

use std::path::PathBuf;
use std::time::Duration;

use crate::hint::Hint;

/// Something the user should know that does not stop watching.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum WatchWarning {
    /// inotify ran out of watches: polling from now on.
    #[error(
        "the inotify watch limit was reached at `{}`: fell back to polling every {interval:?}{}",
        path.display(),
        Hint("raise the limit (`sudo sysctl fs.inotify.max_user_watches=524288`) or exclude large directories with `watch.ignore` or `.dockerignore`")
    )]
    WatchLimit {
        /// The directory whose watch failed.
        path: PathBuf,
        /// The polling interval now in use.
        interval: Duration,
    },
    /// The notification backend could not start at all: polling from now on.
    #[error(
        "cannot start file notifications ({message}): fell back to polling every {interval:?}{}",
        Hint(
            "each watcher uses an inotify instance; the limit is `fs.inotify.max_user_instances`"
        )
    )]
    NotifyUnavailable {
        /// The OS error.
        message: String,
        /// The polling interval now in use.
        interval: Duration,
    },
    /// A directory below a root could not be watched or read: changes in it are not seen.
    #[error("cannot watch `{}`: {message}: changes in it are not seen", path.display())]
    Unwatchable {
        /// The directory.
        path: PathBuf,
        /// The OS error.
        message: String,
    },
    /// The kernel's event queue overflowed: every root is reported as changed.
    #[error(
        "file events were lost (the event queue overflowed): everything is re-checked{}",
        Hint("raise `fs.inotify.max_queued_events`")
    )]
    EventsLost,
    /// The notification backend reported an error it could not attach to a path.
    #[error("the file watcher reported an error: {message}")]
    Failed {
        /// The error.
        message: String,
    },
}
