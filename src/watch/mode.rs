//! Watch stage, how changes are detected right now: the backend's mode (notify, polling after a fallback, or
//! manual) and the directories it watches or walks, kept up to date by the collector thread → read by
//! [`Watcher::mode`](super::Watcher::mode) and [`Watcher::watched_dirs`](super::Watcher::watched_dirs) for
//! status lines and tests. Plain data: it watches nothing itself.

use std::collections::BTreeSet;
use std::path::PathBuf;
use std::time::Duration;

/// How the watcher currently learns about changes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum WatchMode {
    /// File system notifications.
    Notify,
    /// A stat walk every `interval`.
    Polling {
        /// Time between two walks.
        interval: Duration,
    },
    /// Only manual triggers.
    Manual,
}

/// What the collector's backend reports about itself, shared with the [`Watcher`](super::Watcher).
pub(super) struct Status {
    pub(super) mode: WatchMode,
    pub(super) watched: BTreeSet<PathBuf>,
}
