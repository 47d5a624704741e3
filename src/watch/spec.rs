//! Watch stage, what to watch: the roots (directories and single files), the `watch.ignore` globs, the timings
//! and the trigger, as the caller builds them from devloop.yaml and the flags → the [`WatchSpec`] the watcher
//! starts from. Plain data: it never touches the file system and never decides what a path means (that is
//! `rules.rs`).

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

/// Default quiet period that ends a burst of events.
pub const DEFAULT_DEBOUNCE: Duration = Duration::from_millis(150);
/// Default interval of the polling watcher (`--trigger polling` and the fallback when inotify runs out).
pub const DEFAULT_POLL_INTERVAL: Duration = Duration::from_secs(1);

/// A caller-built predicate over a path relative to its [`WatchRoot`]: `true` excludes the path, and for a
/// directory everything below it (the watcher neither registers nor walks into it).
pub type ExcludeFn = Arc<dyn Fn(&Path) -> bool + Send + Sync>;

/// A directory (watched recursively) or a single file to watch.
#[derive(Clone)]
pub struct WatchRoot {
    /// Absolute, or relative to [`WatchSpec::base_dir`].
    pub path: PathBuf,
    /// `true` for a directory watched with everything below it, `false` for a single file.
    pub recursive: bool,
    /// Paths below a recursive root to leave alone (the artifact's `.dockerignore`). For a directory it must
    /// only return `true` when nothing below it can be re-included (no `!` exception reaches inside).
    pub exclude: Option<ExcludeFn>,
}

impl WatchRoot {
    /// A directory watched with everything below it.
    pub fn dir(path: impl Into<PathBuf>) -> WatchRoot {
        WatchRoot {
            path: path.into(),
            recursive: true,
            exclude: None,
        }
    }

    /// A single file (watched through its parent directory, so it may also be created later).
    pub fn file(path: impl Into<PathBuf>) -> WatchRoot {
        WatchRoot {
            path: path.into(),
            recursive: false,
            exclude: None,
        }
    }

    /// Sets the exclude predicate (see [`WatchRoot::exclude`]).
    pub fn with_exclude(
        mut self,
        exclude: impl Fn(&Path) -> bool + Send + Sync + 'static,
    ) -> WatchRoot {
        self.exclude = Some(Arc::new(exclude));
        self
    }
}

impl std::fmt::Debug for WatchRoot {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("WatchRoot")
            .field("path", &self.path)
            .field("recursive", &self.recursive)
            .field("exclude", &self.exclude.as_ref().map(|_| "Fn"))
            .finish()
    }
}

/// What triggers a rebuild (`--trigger`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Trigger {
    /// File system notifications (inotify on Linux), falling back to polling when they run out.
    Notify,
    /// A stat walk every [`WatchSpec::poll_interval`].
    Polling,
    /// Nothing is watched: only [`Watcher::manual_trigger`](super::Watcher::manual_trigger) (Enter) produces
    /// change sets.
    Manual,
}

/// Everything the watcher needs; rebuilt by the caller from devloop.yaml and handed to
/// [`Watcher::update`](super::Watcher::update) when it changes.
#[derive(Debug, Clone)]
pub struct WatchSpec {
    /// Directories (recursive) and single files to watch. Each must exist when watching starts.
    pub roots: Vec<WatchRoot>,
    /// `watch.ignore` globs, relative to `base_dir`, applied to files and directories (an ignored directory is
    /// skipped with everything below it). `*` and `?` stay within one path component, `**` crosses any
    /// number; a glob without `/` matches at any depth (`*.swp`, `node_modules`); `dir/**` also ignores `dir`.
    pub ignore: Vec<String>,
    /// The project directory (where devloop.yaml lives); relative roots and the globs are resolved against it,
    /// and the enclosing git repository is found from it.
    pub base_dir: PathBuf,
    /// Quiet period that ends a burst of events ([`DEFAULT_DEBOUNCE`]).
    pub debounce: Duration,
    /// Interval of the polling watcher ([`DEFAULT_POLL_INTERVAL`]), used by [`Trigger::Polling`] and by the
    /// fallback from notify.
    pub poll_interval: Duration,
    /// What triggers a rebuild.
    pub trigger: Trigger,
}

impl WatchSpec {
    /// A spec with no roots, no ignore globs and the default timings, triggered by notify.
    pub fn new(base_dir: impl Into<PathBuf>) -> WatchSpec {
        WatchSpec {
            roots: Vec::new(),
            ignore: Vec::new(),
            base_dir: base_dir.into(),
            debounce: DEFAULT_DEBOUNCE,
            poll_interval: DEFAULT_POLL_INTERVAL,
            trigger: Trigger::Notify,
        }
    }
}
