//! Watch stage: file system events under the watched roots (artifact contexts, Dockerfiles, manifest sources,
//! devloop.yaml) → a stream of debounced [`ChangeSet`]s. It never hashes and never decides whether content
//! really changed (that is the cache's job), never prints and never spawns async tasks: its only concurrency is
//! its own threads (notify's event loop, one collector thread, and a stdin reader when asked for).
//!
//! How it works:
//! - With inotify, every kept directory gets its own non-recursive watch, registered by walking the roots with
//!   the ignore rules applied first: nothing is registered under `.git/`, a root's `exclude` (its
//!   `.dockerignore`) or a `watch.ignore` glob. New directories are walked and registered as they appear; their
//!   entries are reported since files may land in them before the watch does. A single-file root is watched
//!   through its parent directory, so editors' atomic saves (write a temporary file, rename it over) are seen.
//! - Reads are dropped as soon as notify reports them: notify 8 watches `IN_OPEN`, so devloop's own hashing
//!   and tarring would otherwise retrigger the loop forever.
//! - Pending changes are merged in one set shared with the consumer, never queued, so the watcher is never
//!   blocked by the loop and a busy consumer finds one merged [`ChangeSet`].
//! - When inotify runs out of watches (`ENOSPC`, `fs.inotify.max_user_watches`) or cannot start, the watcher
//!   falls back to polling (a stat walk that honours the same rules) and says so with a [`WatchWarning`].
//! - While `.git/index.lock` exists (a checkout or rebase in progress) a ready batch is held back.

use std::collections::{BTreeSet, HashMap};
use std::fs;
use std::io::{BufRead, BufReader, Read};
use std::os::unix::fs::MetadataExt;
use std::path::{Component, Path, PathBuf};
use std::sync::mpsc::{self, Receiver, RecvTimeoutError, Sender};
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::time::{Duration, Instant};

use globset::{GlobBuilder, GlobSet, GlobSetBuilder};
use notify::event::{MetadataKind, ModifyKind, RenameMode};
use notify::{EventKind, RecommendedWatcher, RecursiveMode, Watcher as _, WatcherKind};

/// Default quiet period that ends a burst of events.
pub const DEFAULT_DEBOUNCE: Duration = Duration::from_millis(150);
/// Default interval of the polling watcher (`--trigger polling` and the fallback when inotify runs out).
pub const DEFAULT_POLL_INTERVAL: Duration = Duration::from_secs(1);
/// Leading edge: the first events after a quiet period are reported once this long passes without another
/// one (at the latest after one debounce period). An editor's save is a few events within a millisecond or two
/// (a write and a close, or a temporary file, a rename and a chmod), so a lone save starts its build about
/// this long after it happened instead of a whole debounce period later.
const LEAD: Duration = Duration::from_millis(10);
/// Events that keep coming within a debounce period of the last report are one burst (a formatter, `git
/// checkout`, an autosave loop): reported after a debounce period of quiet, and at the latest this long after the
/// burst's first event, so a file that is written without pause still triggers now and then. Each report cancels
/// the iteration in flight, so a short cap would restart builds all through a burst.
const BURST_CAP: Duration = Duration::from_secs(5);
/// How often a held batch re-checks `index.lock`, and how often vanished roots are looked for again.
const RECHECK: Duration = Duration::from_millis(100);
/// At most this many notify events are merged before they are published to the consumer.
const DRAIN_MAX: usize = 4096;

/// Whether `path` is a file devloop's own stdout or stderr is redirected into: every line devloop writes would
/// otherwise be a change (and a build, which writes more lines).
fn is_own_output(path: &Path) -> bool {
    !crate::own_output::own_outputs().is_empty()
        && fs::symlink_metadata(path)
            .is_ok_and(|m| crate::own_output::is_own_output(m.dev(), m.ino()))
}

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
    /// Nothing is watched: only [`Watcher::manual_trigger`] (Enter) produces change sets.
    Manual,
}

/// Everything the watcher needs; rebuilt by the caller from devloop.yaml and handed to [`Watcher::update`]
/// when it changes.
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

/// One debounced batch of changes: a hint that the artifacts covering these paths need re-checking.
#[derive(Debug, Clone)]
pub struct ChangeSet {
    /// Absolute paths that were created, written, renamed, chmod-ed or removed. A root directory in the set
    /// means anything below it may have changed (events were lost, or the root reappeared).
    pub paths: BTreeSet<PathBuf>,
    /// When the first event of the batch arrived (for latency figures).
    pub first_event_at: Instant,
    /// The user asked for a rebuild (Enter); with no paths it means "re-check everything".
    pub manual: bool,
    /// What the watcher had to say while collecting this batch (a fallback to polling, lost events, …).
    pub warnings: Vec<WatchWarning>,
}

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

/// Something the user should know that does not stop watching.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum WatchWarning {
    /// inotify ran out of watches: polling from now on.
    #[error(
        "the inotify watch limit was reached at `{}`: fell back to polling every {interval:?}\n\nhint: raise the limit (`sudo sysctl fs.inotify.max_user_watches=524288`) or exclude large directories with `watch.ignore` or `.dockerignore`",
        path.display()
    )]
    WatchLimit {
        /// The directory whose watch failed.
        path: PathBuf,
        /// The polling interval now in use.
        interval: Duration,
    },
    /// The notification backend could not start at all: polling from now on.
    #[error(
        "cannot start file notifications ({message}): fell back to polling every {interval:?}\n\nhint: each watcher uses an inotify instance; the limit is `fs.inotify.max_user_instances`"
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
        "file events were lost (the event queue overflowed): everything is re-checked\n\nhint: raise `fs.inotify.max_queued_events`"
    )]
    EventsLost,
    /// The notification backend reported an error it could not attach to a path.
    #[error("the file watcher reported an error: {message}")]
    Failed {
        /// The error.
        message: String,
    },
}

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

fn register_hint(e: &std::io::Error) -> &'static str {
    if e.kind() == std::io::ErrorKind::PermissionDenied {
        "\n\nhint: devloop needs read access to every directory it watches"
    } else {
        ""
    }
}

/// Watches files and yields debounced [`ChangeSet`]s. Dropping it stops watching.
pub struct Watcher {
    shared: Arc<Shared>,
    collector: Option<CollectorHandle>,
    debounce: Duration,
    git_lock: Option<PathBuf>,
    /// A batch was held back by `index.lock`; its quiet period restarts when the lock goes away.
    held: bool,
    /// When the last batch was handed out: events soon after it continue that burst.
    released: Option<Instant>,
    options: Options,
}

/// Knobs tests use to reach code paths the machine will not produce on demand.
#[derive(Debug, Clone, Copy, Default)]
pub(crate) struct Options {
    /// Pretend inotify runs out of watches after this many (lowering the real sysctl is not possible here).
    pub(crate) watch_limit: Option<usize>,
}

impl Watcher {
    /// Registers the watches (or takes the first polling snapshot) before it returns, so every change made
    /// afterwards is reported. Returns the warnings of the start, e.g. a fallback to polling.
    pub fn start(spec: WatchSpec) -> Result<(Watcher, Vec<WatchWarning>), WatchError> {
        Watcher::start_with(spec, Options::default())
    }

    pub(crate) fn start_with(
        spec: WatchSpec,
        options: Options,
    ) -> Result<(Watcher, Vec<WatchWarning>), WatchError> {
        let shared = Arc::new(Shared::default());
        let (collector, warnings) = CollectorHandle::start(&spec, &shared, options)?;
        let watcher = Watcher {
            shared,
            collector,
            debounce: spec.debounce,
            git_lock: find_git_lock(&spec.base_dir),
            held: false,
            released: None,
            options,
        };
        Ok((watcher, warnings))
    }

    /// Replaces what is watched (devloop.yaml changed). The new watches are in place before the old ones go,
    /// and changes already collected are kept. Returns the warnings of the new start.
    pub fn update(&mut self, spec: WatchSpec) -> Result<Vec<WatchWarning>, WatchError> {
        let (collector, warnings) = CollectorHandle::start(&spec, &self.shared, self.options)?;
        if let Some(old) = std::mem::replace(&mut self.collector, collector) {
            old.stop();
        }
        self.debounce = spec.debounce;
        self.git_lock = find_git_lock(&spec.base_dir);
        Ok(warnings)
    }

    /// Waits for the next batch. The first events after a quiet period are released as soon as they pause for
    /// 10 ms (leading edge: a lone save is not delayed by the debounce); events that continue a burst (they
    /// arrive within `debounce` of the previous batch) are released after `debounce` without events, at the
    /// latest 5 s after the first of them. At once for a manual trigger, never while `.git/index.lock` exists.
    /// Everything pending is merged into it. `None` once nothing can produce changes any more (manual mode
    /// with its input closed). Cancel-safe: nothing is lost when the future is dropped.
    pub async fn next(&mut self) -> Option<ChangeSet> {
        loop {
            let locked = self.git_locked();
            let now = Instant::now();
            let wake_at = {
                let mut pending = self.shared.lock();
                let (sources, manual) = (pending.sources, pending.manual);
                match pending.times.as_mut() {
                    None if sources == 0 => return None,
                    None => None,
                    Some(_) if locked => {
                        self.held = true;
                        Some(now + RECHECK)
                    }
                    Some(times) => {
                        if self.held {
                            // Events of the checkout may still be on their way: a full quiet period again.
                            self.held = false;
                            times.burst = now;
                            times.last = now;
                        }
                        let continuing = self.released.is_some_and(|r| {
                            times.burst.saturating_duration_since(r) < self.debounce
                        });
                        let due = if continuing {
                            (times.last + self.debounce).min(times.burst + BURST_CAP)
                        } else {
                            (times.last + LEAD.min(self.debounce)).min(times.burst + self.debounce)
                        };
                        if manual || due <= now {
                            self.released = Some(now);
                            return Some(pending.take());
                        }
                        Some(due)
                    }
                }
            };
            let notified = self.shared.wake.notified();
            match wake_at {
                None => notified.await,
                Some(at) => {
                    tokio::select! {
                        () = notified => {}
                        () = tokio::time::sleep_until(at.into()) => {}
                    }
                }
            }
        }
    }

    /// Takes whatever arrived since the last batch without waiting for the burst to end (to merge into an
    /// iteration that is starting). `None` when nothing is pending or `.git/index.lock` exists.
    pub fn try_take(&mut self) -> Option<ChangeSet> {
        if self.git_locked() {
            self.held = true;
            return None;
        }
        self.held = false;
        let mut pending = self.shared.lock();
        let taken = pending.times.is_some().then(|| pending.take());
        if taken.is_some() {
            self.released = Some(Instant::now());
        }
        taken
    }

    /// Reads lines from `input` on a thread of its own; each line (Enter) is a manual trigger, released at
    /// once. In [`Trigger::Manual`] mode [`Watcher::next`] returns `None` once every input is closed. The
    /// thread ends at end of input (a blocked read of stdin cannot be interrupted; it ends with the process).
    pub fn manual_trigger<R: Read + Send + 'static>(&mut self, input: R) -> Result<(), WatchError> {
        let guard = SourceGuard::new(&self.shared);
        std::thread::Builder::new()
            .name("devloop-manual".into())
            .spawn(move || {
                let mut input = BufReader::new(input);
                let mut line = Vec::new();
                loop {
                    line.clear();
                    match input.read_until(b'\n', &mut line) {
                        Ok(0) => break,
                        Ok(_) => guard.shared.publish_manual(),
                        Err(e) => {
                            tracing::debug!(error = %e, "manual trigger input failed");
                            break;
                        }
                    }
                }
            })
            .map_err(|source| WatchError::Thread {
                what: "manual trigger",
                source,
            })?;
        Ok(())
    }

    /// How changes are detected right now (it turns to polling after a fallback).
    pub fn mode(&self) -> WatchMode {
        self.collector
            .as_ref()
            .map_or(WatchMode::Manual, |c| lock(&c.status).mode)
    }

    /// The directories currently watched (notify) or walked (polling), for status lines and tests.
    pub fn watched_dirs(&self) -> Vec<PathBuf> {
        self.collector.as_ref().map_or_else(Vec::new, |c| {
            lock(&c.status).watched.iter().cloned().collect()
        })
    }

    fn git_locked(&self) -> bool {
        self.git_lock
            .as_deref()
            .is_some_and(|p| p.symlink_metadata().is_ok())
    }
}

impl Drop for Watcher {
    fn drop(&mut self) {
        if let Some(collector) = self.collector.take() {
            collector.stop();
        }
    }
}

/// The `index.lock` of the git repository enclosing `base_dir` (found like git does, by walking up to the
/// first `.git`, which is a directory or, in worktrees and submodules, a file `gitdir: <path>`).
fn find_git_lock(base_dir: &Path) -> Option<PathBuf> {
    let base_dir = clean(&std::path::absolute(base_dir).ok()?);
    for dir in base_dir.ancestors() {
        let dot_git = dir.join(".git");
        let Ok(meta) = dot_git.metadata() else {
            continue;
        };
        if meta.is_dir() {
            return Some(dot_git.join("index.lock"));
        }
        let text = fs::read_to_string(&dot_git).ok()?;
        let git_dir = text.lines().find_map(|l| l.strip_prefix("gitdir:"))?.trim();
        return Some(dir.join(git_dir).join("index.lock"));
    }
    None
}

// ======================================================================================================
// Pending changes, shared between the collector threads and the consumer
// ======================================================================================================

#[derive(Default)]
struct Shared {
    pending: Mutex<Pending>,
    /// Woken on every publish and when a source ends; a stored permit covers a wake before the wait.
    wake: tokio::sync::Notify,
}

#[derive(Default)]
struct Pending {
    paths: BTreeSet<PathBuf>,
    manual: bool,
    warnings: Vec<WatchWarning>,
    /// `Some` exactly when something is pending.
    times: Option<Times>,
    /// Live producers (a collector thread, manual inputs); `next` ends when none is left.
    sources: usize,
}

#[derive(Clone, Copy)]
struct Times {
    first: Instant,
    /// Start of the current burst (the first event, or the end of an `index.lock` hold).
    burst: Instant,
    last: Instant,
}

impl Pending {
    fn touch(&mut self, now: Instant) {
        match self.times.as_mut() {
            Some(t) => t.last = now,
            None => {
                self.times = Some(Times {
                    first: now,
                    burst: now,
                    last: now,
                })
            }
        }
    }

    fn take(&mut self) -> ChangeSet {
        let first = self.times.take().map_or_else(Instant::now, |t| t.first);
        ChangeSet {
            paths: std::mem::take(&mut self.paths),
            first_event_at: first,
            manual: std::mem::take(&mut self.manual),
            warnings: std::mem::take(&mut self.warnings),
        }
    }
}

impl Shared {
    fn lock(&self) -> MutexGuard<'_, Pending> {
        lock(&self.pending)
    }

    fn publish(&self, found: Found) {
        if found.paths.is_empty() && found.warnings.is_empty() {
            return;
        }
        {
            let mut pending = self.lock();
            pending.paths.extend(found.paths);
            pending.warnings.extend(found.warnings);
            pending.touch(Instant::now());
        }
        self.wake.notify_one();
    }

    fn publish_manual(&self) {
        {
            let mut pending = self.lock();
            pending.manual = true;
            pending.touch(Instant::now());
        }
        self.wake.notify_one();
    }
}

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    // The data stays consistent across a panic (plain inserts), so a poisoned lock is still usable.
    m.lock().unwrap_or_else(PoisonError::into_inner)
}

/// Counts a producer while it lives, so `next` knows when the stream has ended.
struct SourceGuard {
    shared: Arc<Shared>,
}

impl SourceGuard {
    fn new(shared: &Arc<Shared>) -> SourceGuard {
        shared.lock().sources += 1;
        SourceGuard {
            shared: Arc::clone(shared),
        }
    }
}

impl Drop for SourceGuard {
    fn drop(&mut self) {
        self.shared.lock().sources -= 1;
        self.shared.wake.notify_one();
    }
}

/// What one round of the collector found.
#[derive(Default)]
struct Found {
    paths: Vec<PathBuf>,
    warnings: Vec<WatchWarning>,
}

// ======================================================================================================
// Rules: which paths matter
// ======================================================================================================

struct Rules {
    roots: Vec<WatchRoot>,
    base_dir: PathBuf,
    ignore: GlobSet,
    poll_interval: Duration,
}

impl Rules {
    fn compile(spec: &WatchSpec) -> Result<Rules, WatchError> {
        // notify reports absolute paths: rules built on a relative base would never match them.
        let base_dir =
            clean(&std::path::absolute(&spec.base_dir).unwrap_or_else(|_| spec.base_dir.clone()));
        let mut roots = Vec::with_capacity(spec.roots.len());
        for root in &spec.roots {
            let path = clean(&base_dir.join(&root.path));
            let exists = if root.recursive {
                path.is_dir()
            } else {
                path.symlink_metadata().is_ok()
            };
            if !exists {
                return Err(WatchError::RootMissing { path });
            }
            roots.push(WatchRoot {
                path,
                ..root.clone()
            });
        }
        let mut globs = GlobSetBuilder::new();
        for glob in &spec.ignore {
            for pattern in glob_patterns(glob) {
                let compiled = GlobBuilder::new(&pattern)
                    .literal_separator(true)
                    .build()
                    .map_err(|e| WatchError::Glob {
                        glob: glob.clone(),
                        message: e.kind().to_string(),
                    })?;
                globs.add(compiled);
            }
        }
        let ignore = globs.build().map_err(|e| WatchError::Glob {
            glob: spec.ignore.join(" "),
            message: e.to_string(),
        })?;
        Ok(Rules {
            roots,
            base_dir,
            ignore,
            poll_interval: spec.poll_interval,
        })
    }

    /// A `watch.ignore` glob matches this path.
    fn user_ignored(&self, path: &Path) -> bool {
        let rel = path.strip_prefix(&self.base_dir).unwrap_or(path);
        !rel.as_os_str().is_empty() && self.ignore.is_match(rel)
    }

    /// Root `root` cares about `path` (`.git` and its `exclude` applied; not the user globs).
    fn root_accepts(root: &WatchRoot, path: &Path) -> bool {
        if !root.recursive {
            return path == root.path;
        }
        let Ok(rel) = path.strip_prefix(&root.path) else {
            return false;
        };
        if rel.as_os_str().is_empty() {
            return true;
        }
        !rel.components().any(|c| c.as_os_str() == ".git")
            && !root.exclude.as_ref().is_some_and(|f| f(rel))
    }

    /// Some root cares about `path` and no `watch.ignore` glob drops it.
    fn accepts(&self, path: &Path) -> bool {
        self.roots.iter().any(|r| Rules::root_accepts(r, path))
            && !self.user_ignored(path)
            && !is_own_output(path)
    }

    /// The directory that must be watched (or exist) for `root` to be seen.
    fn anchor(root: &WatchRoot) -> &Path {
        if root.recursive {
            &root.path
        } else {
            root.path.parent().unwrap_or(&root.path)
        }
    }

    /// Walks `start` (a directory inside recursive `root`, or the root itself), calling `on_dir` for every
    /// kept directory before reading it and `on_entry` for every kept entry below `start`. Ignored entries are
    /// skipped with everything below them. Stops at the first error of `on_dir`.
    fn walk<E>(
        &self,
        root: &WatchRoot,
        start: &Path,
        warnings: &mut Vec<WatchWarning>,
        mut on_dir: impl FnMut(&Path) -> Result<(), E>,
        mut on_entry: impl FnMut(&Path, &fs::DirEntry),
    ) -> Result<(), E> {
        let mut stack = vec![start.to_path_buf()];
        while let Some(dir) = stack.pop() {
            on_dir(&dir)?;
            let entries = match fs::read_dir(&dir) {
                Ok(entries) => entries,
                // Removed while walking: its removal is (or will be) an event of its own.
                Err(e) if e.kind() == std::io::ErrorKind::NotFound => continue,
                Err(e) => {
                    warnings.push(WatchWarning::Unwatchable {
                        path: dir,
                        message: e.to_string(),
                    });
                    continue;
                }
            };
            for entry in entries.flatten() {
                let path = entry.path();
                if !Rules::root_accepts(root, &path) || self.user_ignored(&path) {
                    continue;
                }
                on_entry(&path, &entry);
                if entry.file_type().is_ok_and(|t| t.is_dir()) {
                    stack.push(path);
                }
            }
        }
        Ok(())
    }
}

/// The globset patterns for one `watch.ignore` entry (see [`WatchSpec::ignore`]).
fn glob_patterns(glob: &str) -> Vec<String> {
    let trimmed = glob.trim().trim_end_matches('/');
    let anchored = trimmed.strip_prefix('/').unwrap_or(trimmed);
    let pattern = if trimmed.contains('/') {
        anchored.to_string()
    } else {
        format!("**/{anchored}")
    };
    let mut patterns = vec![pattern.clone()];
    if let Some(dir) = pattern.strip_suffix("/**") {
        patterns.push(dir.to_string());
    }
    patterns
}

/// Lexical clean: `.` dropped, `..` folded (like Docker's `filepath.Clean`), so event paths compare equal.
fn clean(path: &Path) -> PathBuf {
    let mut out = PathBuf::new();
    for c in path.components() {
        match c {
            Component::CurDir => {}
            Component::ParentDir if out.file_name().is_some() => {
                out.pop();
            }
            c => out.push(c),
        }
    }
    out
}

// ======================================================================================================
// The collector thread and its backends
// ======================================================================================================

enum Msg {
    Event(notify::Result<notify::Event>),
    Stop,
}

struct Status {
    mode: WatchMode,
    watched: BTreeSet<PathBuf>,
}

/// The consumer's side of a running collector thread.
struct CollectorHandle {
    tx: Sender<Msg>,
    status: Arc<Mutex<Status>>,
}

impl CollectorHandle {
    /// Registers everything synchronously, then hands the backend to a thread. `None` in manual mode.
    fn start(
        spec: &WatchSpec,
        shared: &Arc<Shared>,
        options: Options,
    ) -> Result<(Option<CollectorHandle>, Vec<WatchWarning>), WatchError> {
        let rules = Rules::compile(spec)?;
        let status = Arc::new(Mutex::new(Status {
            mode: WatchMode::Manual,
            watched: BTreeSet::new(),
        }));
        let (tx, rx) = mpsc::channel();
        let mut warnings = Vec::new();
        let backend = match spec.trigger {
            Trigger::Manual => return Ok((None, warnings)),
            Trigger::Polling => Backend::Polling(Poller::new(&rules, &status, &mut warnings)),
            Trigger::Notify => match Notifier::new(&rules, &tx, &status, options, &mut warnings) {
                Ok(notifier) => Backend::Notify(notifier),
                Err(Fail::Limit(path)) => {
                    let poller = Poller::new(&rules, &status, &mut warnings);
                    warnings.push(WatchWarning::WatchLimit {
                        path,
                        interval: rules.poll_interval,
                    });
                    Backend::Polling(poller)
                }
                Err(Fail::Unavailable(message)) => {
                    let poller = Poller::new(&rules, &status, &mut warnings);
                    warnings.push(WatchWarning::NotifyUnavailable {
                        message,
                        interval: rules.poll_interval,
                    });
                    Backend::Polling(poller)
                }
                Err(Fail::Watch(path, source)) => {
                    return Err(WatchError::Register { path, source });
                }
            },
        };
        let mut collector = Collector {
            rules,
            backend,
            status: Arc::clone(&status),
            source: SourceGuard::new(shared),
        };
        std::thread::Builder::new()
            .name("devloop-watch".into())
            .spawn(move || collector.run(&rx))
            .map_err(|source| WatchError::Thread {
                what: "watch",
                source,
            })?;
        Ok((Some(CollectorHandle { tx, status }), warnings))
    }

    fn stop(self) {
        // The thread may be in the middle of a polling walk: it sees this when done, no need to wait.
        let _ = self.tx.send(Msg::Stop);
    }
}

/// Why registering watches failed.
enum Fail {
    /// Out of inotify watches at this directory.
    Limit(PathBuf),
    /// The backend could not start.
    Unavailable(String),
    /// A root's watch failed for another reason.
    Watch(PathBuf, std::io::Error),
}

enum Backend {
    Notify(Notifier),
    Polling(Poller),
}

struct Collector {
    rules: Rules,
    backend: Backend,
    status: Arc<Mutex<Status>>,
    /// Keeps the stream open while the thread lives; also the way to publish.
    source: SourceGuard,
}

impl Collector {
    fn run(&mut self, rx: &Receiver<Msg>) {
        loop {
            let timeout = match &self.backend {
                Backend::Notify(n) if n.missing.is_empty() => None,
                Backend::Notify(_) => Some(RECHECK),
                Backend::Polling(p) => Some(p.next_scan.saturating_duration_since(Instant::now())),
            };
            let msg = match timeout {
                None => rx.recv().map_err(|_| RecvTimeoutError::Disconnected),
                Some(t) => rx.recv_timeout(t),
            };
            let mut found = Found::default();
            let mut stop = false;
            match msg {
                Ok(Msg::Stop) | Err(RecvTimeoutError::Disconnected) => return,
                Ok(Msg::Event(event)) => {
                    self.on_event(event, &mut found);
                    for _ in 0..DRAIN_MAX {
                        match rx.try_recv() {
                            Ok(Msg::Event(event)) => self.on_event(event, &mut found),
                            Ok(Msg::Stop) => {
                                stop = true;
                                break;
                            }
                            Err(_) => break,
                        }
                    }
                }
                Err(RecvTimeoutError::Timeout) => {}
            }
            self.on_tick(&mut found);
            self.source.shared.publish(found);
            if stop {
                return;
            }
        }
    }

    fn on_event(&mut self, event: notify::Result<notify::Event>, found: &mut Found) {
        let event = match event {
            Ok(event) => event,
            Err(e) if matches!(e.kind, notify::ErrorKind::MaxFilesWatch) => {
                let path = e
                    .paths
                    .first()
                    .cloned()
                    .unwrap_or_else(|| self.rules.base_dir.clone());
                self.fall_back(path, found);
                return;
            }
            Err(e) => {
                found.warnings.push(WatchWarning::Failed {
                    message: describe(&e),
                });
                return;
            }
        };
        if event.need_rescan() {
            found.warnings.push(WatchWarning::EventsLost);
            found
                .paths
                .extend(self.rules.roots.iter().map(|r| r.path.clone()));
            if let Backend::Notify(n) = &mut self.backend {
                for i in 0..self.rules.roots.len() {
                    if let Err(fail) = n.register_root(&self.rules, i, found) {
                        self.on_fail(fail, found);
                        return;
                    }
                }
            }
        }
        #[derive(Clone, Copy)]
        enum Seen {
            Appeared,
            Removed,
            Changed,
            Either,
        }
        let seen = match event.kind {
            EventKind::Access(_)
            | EventKind::Modify(ModifyKind::Metadata(MetadataKind::AccessTime))
            // Reported as a `From` and a `To` of their own as well.
            | EventKind::Modify(ModifyKind::Name(RenameMode::Both)) => return,
            EventKind::Create(_) | EventKind::Modify(ModifyKind::Name(RenameMode::To)) => Seen::Appeared,
            EventKind::Remove(_) | EventKind::Modify(ModifyKind::Name(RenameMode::From)) => Seen::Removed,
            EventKind::Modify(ModifyKind::Name(_)) => Seen::Either,
            EventKind::Modify(_) | EventKind::Any | EventKind::Other => Seen::Changed,
        };
        for path in event.paths {
            let seen = match seen {
                Seen::Either if path.symlink_metadata().is_ok() => Seen::Appeared,
                Seen::Either => Seen::Removed,
                s => s,
            };
            let accepted = self.rules.accepts(&path);
            let Backend::Notify(n) = &mut self.backend else {
                if accepted {
                    found.paths.push(path);
                }
                continue;
            };
            match seen {
                Seen::Appeared if accepted => {
                    let result = n.appeared(&self.rules, &path, found);
                    found.paths.push(path);
                    if let Err(fail) = result {
                        self.on_fail(fail, found);
                        return;
                    }
                }
                Seen::Removed => {
                    n.removed(&self.rules, &path);
                    if accepted {
                        found.paths.push(path);
                    }
                }
                _ if accepted => found.paths.push(path),
                _ => {}
            }
        }
    }

    fn on_tick(&mut self, found: &mut Found) {
        let result = match &mut self.backend {
            Backend::Notify(n) => n.recheck_missing(&self.rules, found),
            Backend::Polling(p) => {
                p.poll(&self.rules, found, &self.status);
                Ok(())
            }
        };
        if let Err(fail) = result {
            self.on_fail(fail, found);
        }
    }

    fn on_fail(&mut self, fail: Fail, found: &mut Found) {
        match fail {
            Fail::Limit(path) => self.fall_back(path, found),
            Fail::Watch(path, e) => found.warnings.push(WatchWarning::Unwatchable {
                path,
                message: e.to_string(),
            }),
            Fail::Unavailable(message) => found.warnings.push(WatchWarning::Failed { message }),
        }
    }

    /// Out of inotify watches: drop them all and poll. Events may have been missed between the failure and the
    /// first snapshot, so every root is reported.
    fn fall_back(&mut self, path: PathBuf, found: &mut Found) {
        if matches!(self.backend, Backend::Polling(_)) {
            return;
        }
        tracing::debug!(path = %path.display(), "inotify watch limit reached, polling");
        self.backend =
            Backend::Polling(Poller::new(&self.rules, &self.status, &mut found.warnings));
        found.warnings.push(WatchWarning::WatchLimit {
            path,
            interval: self.rules.poll_interval,
        });
        found
            .paths
            .extend(self.rules.roots.iter().map(|r| r.path.clone()));
    }
}

/// notify's error as the OS error it stands for (notify's own `Display` appends its paths).
fn to_io(e: notify::Error) -> std::io::Error {
    use std::io::{Error, ErrorKind};
    match e.kind {
        notify::ErrorKind::Io(io) => io,
        notify::ErrorKind::PathNotFound => Error::from(ErrorKind::NotFound),
        kind => Error::other(describe(&notify::Error::new(kind))),
    }
}

fn describe(e: &notify::Error) -> String {
    match &e.kind {
        notify::ErrorKind::Io(io) => io.to_string(),
        notify::ErrorKind::Generic(s) => s.clone(),
        notify::ErrorKind::PathNotFound => "no such file or directory".to_string(),
        notify::ErrorKind::MaxFilesWatch => "the inotify watch limit is reached".to_string(),
        notify::ErrorKind::WatchNotFound => "no such watch".to_string(),
        notify::ErrorKind::InvalidConfig(_) => "invalid watcher configuration".to_string(),
    }
}

// ---- notify -----------------------------------------------------------------------------------------

struct Notifier {
    watcher: RecommendedWatcher,
    /// inotify: one non-recursive watch per kept directory. Other backends (FSEvents, Windows) have no
    /// per-directory cost and watch each recursive root as a whole; events are filtered all the same.
    per_dir: bool,
    /// Anchors (see [`Rules::anchor`]) that disappeared; looked for again every [`RECHECK`].
    missing: BTreeSet<PathBuf>,
    status: Arc<Mutex<Status>>,
    options: Options,
}

impl Notifier {
    fn new(
        rules: &Rules,
        tx: &Sender<Msg>,
        status: &Arc<Mutex<Status>>,
        options: Options,
        warnings: &mut Vec<WatchWarning>,
    ) -> Result<Notifier, Fail> {
        let tx = tx.clone();
        let handler = move |event: notify::Result<notify::Event>| {
            // Dropped here, on notify's thread: devloop reads every file it hashes or tars.
            if let Ok(e) = &event
                && matches!(e.kind, EventKind::Access(_))
            {
                return;
            }
            let _ = tx.send(Msg::Event(event));
        };
        let watcher = RecommendedWatcher::new(handler, notify::Config::default())
            .map_err(|e| Fail::Unavailable(describe(&e)))?;
        let mut notifier = Notifier {
            watcher,
            per_dir: RecommendedWatcher::kind() == WatcherKind::Inotify,
            missing: BTreeSet::new(),
            status: Arc::clone(status),
            options,
        };
        lock(status).mode = WatchMode::Notify;
        let mut found = Found::default();
        for i in 0..rules.roots.len() {
            notifier.register_root(rules, i, &mut found)?;
        }
        warnings.append(&mut found.warnings);
        Ok(notifier)
    }

    fn add(&mut self, dir: &Path, mode: RecursiveMode) -> Result<(), notify::Error> {
        let mut status = lock(&self.status);
        if status.watched.contains(dir) {
            return Ok(());
        }
        if self
            .options
            .watch_limit
            .is_some_and(|limit| status.watched.len() >= limit)
        {
            return Err(
                notify::Error::new(notify::ErrorKind::MaxFilesWatch).add_path(dir.to_path_buf())
            );
        }
        self.watcher.watch(dir, mode)?;
        status.watched.insert(dir.to_path_buf());
        Ok(())
    }

    /// Watches root `index` (its anchor must exist; a vanished one is recorded in `missing`).
    fn register_root(
        &mut self,
        rules: &Rules,
        index: usize,
        found: &mut Found,
    ) -> Result<(), Fail> {
        let root = &rules.roots[index];
        let anchor = Rules::anchor(root);
        if !root.recursive || !self.per_dir {
            let mode = if root.recursive {
                RecursiveMode::Recursive
            } else {
                RecursiveMode::NonRecursive
            };
            return match self.add(anchor, mode) {
                Ok(()) => Ok(()),
                Err(e) => match e.kind {
                    notify::ErrorKind::MaxFilesWatch => Err(Fail::Limit(anchor.to_path_buf())),
                    notify::ErrorKind::PathNotFound => {
                        self.missing.insert(anchor.to_path_buf());
                        Ok(())
                    }
                    _ => Err(Fail::Watch(anchor.to_path_buf(), to_io(e))),
                },
            };
        }
        self.register_tree(rules, root, &root.path, None, found)
    }

    /// Walks `start` inside recursive `root`, watching every kept directory; with `entries`, collects what it
    /// finds (a directory that just appeared may already hold files the watch came too late for).
    fn register_tree(
        &mut self,
        rules: &Rules,
        root: &WatchRoot,
        start: &Path,
        mut entries: Option<&mut Vec<PathBuf>>,
        found: &mut Found,
    ) -> Result<(), Fail> {
        let mut unwatchable = Vec::new();
        let result = rules.walk(
            root,
            start,
            &mut found.warnings,
            |dir| match self.add(dir, RecursiveMode::NonRecursive) {
                Ok(()) => Ok(()),
                Err(e) => match e.kind {
                    notify::ErrorKind::MaxFilesWatch => Err(Fail::Limit(dir.to_path_buf())),
                    notify::ErrorKind::PathNotFound if dir == root.path => {
                        self.missing.insert(dir.to_path_buf());
                        Ok(())
                    }
                    // Gone again: its removal is an event of its own.
                    notify::ErrorKind::PathNotFound => Ok(()),
                    _ if dir == root.path => Err(Fail::Watch(dir.to_path_buf(), to_io(e))),
                    _ => {
                        unwatchable.push(WatchWarning::Unwatchable {
                            path: dir.to_path_buf(),
                            message: describe(&e),
                        });
                        Ok(())
                    }
                },
            },
            |path, _| {
                if let Some(entries) = entries.as_deref_mut() {
                    entries.push(path.to_path_buf());
                }
            },
        );
        found.warnings.append(&mut unwatchable);
        result
    }

    /// `path` was created or moved in (and is accepted): a directory is walked and watched.
    fn appeared(&mut self, rules: &Rules, path: &Path, found: &mut Found) -> Result<(), Fail> {
        if !self.per_dir || !path.symlink_metadata().is_ok_and(|m| m.is_dir()) {
            return Ok(());
        }
        let mut entries = Vec::new();
        for root in &rules.roots {
            if root.recursive && Rules::root_accepts(root, path) {
                self.register_tree(rules, root, path, Some(&mut entries), found)?;
            }
        }
        found.paths.append(&mut entries);
        Ok(())
    }

    /// `path` was removed or moved away: its watches (and those below it) go; a vanished anchor is recorded.
    fn removed(&mut self, rules: &Rules, path: &Path) {
        let gone: Vec<PathBuf> = {
            let mut status = lock(&self.status);
            let gone: Vec<PathBuf> = status
                .watched
                .range(path.to_path_buf()..)
                .take_while(|w| w.starts_with(path))
                .cloned()
                .collect();
            for w in &gone {
                status.watched.remove(w);
            }
            gone
        };
        for w in &gone {
            // notify already dropped most of them (the kernel does on delete): only a moved root is left.
            let _ = self.watcher.unwatch(w);
        }
        for root in &rules.roots {
            let anchor = Rules::anchor(root);
            if anchor.starts_with(path) && anchor.symlink_metadata().is_err() {
                self.missing.insert(anchor.to_path_buf());
            }
        }
    }

    /// Watches again the anchors that came back, and reports their roots.
    fn recheck_missing(&mut self, rules: &Rules, found: &mut Found) -> Result<(), Fail> {
        if self.missing.is_empty() {
            return Ok(());
        }
        let back: Vec<PathBuf> = self
            .missing
            .iter()
            .filter(|a| a.is_dir())
            .cloned()
            .collect();
        for anchor in back {
            self.missing.remove(&anchor);
            for i in 0..rules.roots.len() {
                let root = &rules.roots[i];
                if Rules::anchor(root) == anchor {
                    self.register_root(rules, i, found)?;
                    found.paths.push(root.path.clone());
                }
            }
        }
        Ok(())
    }
}

// ---- polling ----------------------------------------------------------------------------------------

/// What a polling walk compares. Directories keep only what their own events would report (mode, identity):
/// their mtime moves with every entry added or removed, which is reported through the entry itself.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Stamp {
    ino: u64,
    mode: u32,
    size: u64,
    mtime: (i64, i64),
    ctime: (i64, i64),
}

impl Stamp {
    fn of(m: &fs::Metadata) -> Stamp {
        if m.is_dir() {
            Stamp {
                ino: m.ino(),
                mode: m.mode(),
                size: 0,
                mtime: (0, 0),
                ctime: (0, 0),
            }
        } else {
            Stamp {
                ino: m.ino(),
                mode: m.mode(),
                size: m.size(),
                mtime: (m.mtime(), m.mtime_nsec()),
                // Catches chmod/chown and writes that restore the old mtime.
                ctime: (m.ctime(), m.ctime_nsec()),
            }
        }
    }
}

struct Poller {
    snapshot: HashMap<PathBuf, Stamp>,
    next_scan: Instant,
}

impl Poller {
    fn new(rules: &Rules, status: &Mutex<Status>, warnings: &mut Vec<WatchWarning>) -> Poller {
        let snapshot = Poller::scan(rules, status, warnings);
        lock(status).mode = WatchMode::Polling {
            interval: rules.poll_interval,
        };
        Poller {
            snapshot,
            next_scan: Instant::now() + rules.poll_interval,
        }
    }

    fn scan(
        rules: &Rules,
        status: &Mutex<Status>,
        warnings: &mut Vec<WatchWarning>,
    ) -> HashMap<PathBuf, Stamp> {
        let mut snapshot = HashMap::new();
        let mut dirs = BTreeSet::new();
        for root in &rules.roots {
            if let Ok(m) = root.path.symlink_metadata() {
                snapshot.insert(root.path.clone(), Stamp::of(&m));
            }
            if !root.recursive || !root.path.is_dir() {
                continue;
            }
            let walked: Result<(), std::convert::Infallible> = rules.walk(
                root,
                &root.path,
                warnings,
                |dir| {
                    dirs.insert(dir.to_path_buf());
                    Ok(())
                },
                |path, entry| {
                    if let Ok(m) = entry.metadata() {
                        snapshot.insert(path.to_path_buf(), Stamp::of(&m));
                    }
                },
            );
            let Ok(()) = walked;
        }
        lock(status).watched = dirs;
        snapshot
    }

    fn poll(&mut self, rules: &Rules, found: &mut Found, status: &Mutex<Status>) {
        if Instant::now() < self.next_scan {
            return;
        }
        let started = Instant::now();
        // Unreadable directories were reported at the first walk; not again every interval.
        let snapshot = Poller::scan(rules, status, &mut Vec::new());
        let took = started.elapsed();
        for (path, stamp) in &snapshot {
            if self.snapshot.get(path) != Some(stamp) {
                found.paths.push(path.clone());
            }
        }
        found.paths.extend(
            self.snapshot
                .keys()
                .filter(|p| !snapshot.contains_key(*p))
                .cloned(),
        );
        self.snapshot = snapshot;
        // From the end of the walk, and at least four walks' time: on a huge tree or a slow disk polling
        // stays below a fifth of a core instead of walking back to back.
        self.next_scan = Instant::now() + rules.poll_interval.max(took * 4);
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;
    use std::io::Write as _;
    use std::os::unix::fs::PermissionsExt as _;
    use tokio::time::timeout;

    /// Debounce and polling interval of the tests.
    const D: Duration = Duration::from_millis(50);
    /// Generous bound for an expected change set on a loaded machine.
    const EXPECT: Duration = Duration::from_secs(10);

    fn put(path: &Path, text: &str) {
        fs::create_dir_all(path.parent().unwrap()).unwrap();
        fs::write(path, text).unwrap();
    }

    fn spec(base: &Path, roots: Vec<WatchRoot>) -> WatchSpec {
        WatchSpec {
            roots,
            debounce: D,
            poll_interval: D,
            ..WatchSpec::new(base)
        }
    }

    fn set(paths: &[&Path]) -> BTreeSet<PathBuf> {
        paths.iter().map(|p| p.to_path_buf()).collect()
    }

    async fn change(w: &mut Watcher) -> ChangeSet {
        timeout(EXPECT, w.next())
            .await
            .expect("no change set within the bound")
            .expect("the watcher ended")
    }

    /// Merges change sets until every path of `want` was seen (events of one edit may straddle two batches).
    async fn changes_until(
        w: &mut Watcher,
        want: &[&Path],
    ) -> (BTreeSet<PathBuf>, Vec<WatchWarning>) {
        let (mut seen, mut warnings) = (BTreeSet::new(), Vec::new());
        while !want.iter().all(|p| seen.contains(*p)) {
            let cs = change(w).await;
            seen.extend(cs.paths);
            warnings.extend(cs.warnings);
        }
        (seen, warnings)
    }

    /// Absence of a change set, over several debounce periods (and polling intervals).
    async fn quiet(w: &mut Watcher) {
        if let Ok(cs) = timeout(D * 8, w.next()).await {
            panic!("unexpected change set: {cs:?}");
        }
    }

    impl Watcher {
        fn pending_paths(&self) -> BTreeSet<PathBuf> {
            self.shared.lock().paths.clone()
        }
    }

    /// Waits (bounded) until the collector has merged `path` into the pending set, without consuming it.
    fn wait_pending(w: &Watcher, path: &Path) {
        let deadline = Instant::now() + EXPECT;
        while !w.pending_paths().contains(path) {
            assert!(
                Instant::now() < deadline,
                "`{}` never became pending",
                path.display()
            );
            std::thread::sleep(Duration::from_millis(5));
        }
    }

    fn node_modules(rel: &Path) -> bool {
        rel.starts_with("node_modules")
    }

    #[tokio::test]
    async fn ignored_paths_never_trigger_and_get_no_watch() {
        let tmp = tempfile::tempdir().unwrap();
        let base = tmp.path();
        let ctx = base.join("ctx");
        for f in [
            "ctx/src/main.rs",
            "ctx/node_modules/pkg/index.js",
            "ctx/node_modules/pkg/lib/deep.js",
            "ctx/target/debug/out",
            "ctx/.git/HEAD",
            "ctx/logs/app.log",
            "Dockerfile",
            "notes.txt",
        ] {
            put(&base.join(f), "x");
        }
        let mut spec = spec(
            base,
            vec![
                WatchRoot::dir("./ctx").with_exclude(node_modules),
                WatchRoot::file("Dockerfile"),
            ],
        );
        spec.ignore = vec!["ctx/target/**".into(), "*.log".into()];
        let (mut w, warnings) = Watcher::start(spec).unwrap();
        assert_eq!(warnings, []);
        assert_eq!(w.mode(), WatchMode::Notify);
        // The project directory is watched (non-recursively) for the Dockerfile; nothing excluded is.
        let expected_dirs = vec![
            base.to_path_buf(),
            ctx.clone(),
            ctx.join("logs"),
            ctx.join("src"),
        ];
        assert_eq!(w.watched_dirs(), expected_dirs);

        put(&ctx.join("node_modules/pkg/index.js"), "changed");
        put(&ctx.join("node_modules/new/x.js"), "new");
        put(&ctx.join("target/debug/out"), "changed");
        put(&ctx.join("target/release/new"), "new");
        put(&ctx.join(".git/index"), "new");
        put(&ctx.join("logs/app.log"), "changed");
        put(&ctx.join("logs/other.log"), "new");
        put(&base.join("notes.txt"), "changed");
        fs::create_dir(base.join("elsewhere")).unwrap();
        quiet(&mut w).await;
        assert_eq!(w.watched_dirs(), expected_dirs);

        put(&ctx.join("src/main.rs"), "changed");
        assert_eq!(change(&mut w).await.paths, set(&[&ctx.join("src/main.rs")]));
        put(&base.join("Dockerfile"), "FROM scratch");
        assert_eq!(change(&mut w).await.paths, set(&[&base.join("Dockerfile")]));
    }

    #[tokio::test]
    async fn reading_files_never_triggers() {
        let tmp = tempfile::tempdir().unwrap();
        let base = tmp.path();
        let mut files = Vec::new();
        for i in 0..200 {
            let f = base.join(format!("d{}/sub/f{i}.txt", i % 10));
            put(&f, &"content ".repeat(512));
            files.push(f);
        }
        let (mut w, _) = Watcher::start(spec(base, vec![WatchRoot::dir(base)])).unwrap();
        assert_eq!(w.watched_dirs().len(), 21);
        for f in &files {
            assert_eq!(fs::read(f).unwrap().len(), 4096);
            let mut s = String::new();
            fs::File::open(f).unwrap().read_to_string(&mut s).unwrap();
            f.metadata().unwrap();
        }
        for d in w.watched_dirs() {
            assert!(fs::read_dir(&d).unwrap().count() > 0);
        }
        quiet(&mut w).await;
        // The watcher is alive: the same files written do trigger.
        put(&files[7], "written");
        assert_eq!(change(&mut w).await.paths, set(&[&files[7]]));
    }

    #[tokio::test]
    async fn a_burst_of_writes_is_one_change_set() {
        let tmp = tempfile::tempdir().unwrap();
        let base = tmp.path();
        let mut want = BTreeSet::new();
        for i in 0..25 {
            let f = base.join(format!("old{i}.txt"));
            put(&f, "before");
            want.insert(f);
        }
        // 100 ms here: a scheduler pause inside the loop on a loaded machine must not split the burst.
        let spec = WatchSpec {
            debounce: Duration::from_millis(100),
            ..spec(base, vec![WatchRoot::dir(base)])
        };
        let (mut w, _) = Watcher::start(spec).unwrap();
        for i in 0..25 {
            let f = base.join(format!("new{i}.txt"));
            want.insert(f);
        }
        for f in &want {
            fs::write(f, "after").unwrap();
        }
        let cs = change(&mut w).await;
        assert_eq!(cs.paths, want);
        assert!(!cs.manual);
        quiet(&mut w).await;
    }

    /// Issue 11: a fixed trailing debounce delayed every lone save by a whole debounce period.
    #[tokio::test]
    async fn a_lone_save_is_reported_without_waiting_for_the_debounce() {
        let tmp = tempfile::tempdir().unwrap();
        let base = tmp.path();
        let f = base.join("index.html");
        put(&f, "v1");
        // A debounce far longer than the bound below: only the leading edge can report within it.
        let spec = WatchSpec {
            debounce: Duration::from_secs(30),
            ..spec(base, vec![WatchRoot::dir(base)])
        };
        let (mut w, _) = Watcher::start(spec).unwrap();
        fs::write(&f, "v2").unwrap();
        let cs = timeout(Duration::from_secs(10), w.next())
            .await
            .expect("reported on the leading edge, not after the 30 s debounce")
            .unwrap();
        assert_eq!(cs.paths, set(&[&f]));
    }

    /// Issue 11: 200 saves in 6 s started 10 builds, because the burst was reported every 4 debounce periods and
    /// each report restarts the build in flight.
    #[tokio::test]
    async fn a_burst_that_goes_on_after_a_report_is_reported_once_it_pauses() {
        let tmp = tempfile::tempdir().unwrap();
        let base = tmp.path().to_path_buf();
        let f = base.join("index.html");
        put(&f, "v0");
        let spec = WatchSpec {
            debounce: Duration::from_millis(200),
            ..spec(&base, vec![WatchRoot::dir(&base)])
        };
        let (mut w, _) = Watcher::start(spec).unwrap();
        let writer = {
            let f = f.clone();
            std::thread::spawn(move || {
                // A save every 20 ms for 1.5 s: never a debounce period of quiet, longer than 4 of them.
                for i in 0..75 {
                    fs::write(&f, format!("v{i}")).unwrap();
                    std::thread::sleep(Duration::from_millis(20));
                }
            })
        };
        let first = change(&mut w).await;
        assert_eq!(first.paths, set(&[&f]));
        // The rest of the burst: one more report, after the writes stopped.
        let rest = change(&mut w).await;
        assert!(
            writer.is_finished(),
            "a report came while the burst was still going on"
        );
        writer.join().unwrap();
        assert_eq!(rest.paths, set(&[&f]));
        quiet(&mut w).await;
    }

    #[tokio::test]
    async fn try_take_merges_what_arrived_while_busy() {
        let tmp = tempfile::tempdir().unwrap();
        let base = tmp.path();
        let (a, b, c) = (base.join("a"), base.join("b"), base.join("sub/c"));
        fs::create_dir(base.join("sub")).unwrap();
        let (mut w, _) = Watcher::start(spec(base, vec![WatchRoot::dir(base)])).unwrap();
        assert!(w.try_take().is_none());
        put(&a, "1");
        assert_eq!(change(&mut w).await.paths, set(&[&a]));

        // The loop is busy: two bursts arrive, well apart, and are merged instead of queued.
        put(&b, "2");
        wait_pending(&w, &b);
        std::thread::sleep(D * 3);
        put(&c, "3");
        wait_pending(&w, &c);
        let cs = w.try_take().unwrap();
        assert_eq!(cs.paths, set(&[&b, &c]));
        assert!(w.try_take().is_none());
    }

    #[tokio::test]
    async fn a_continuous_stream_of_writes_still_triggers() {
        let tmp = tempfile::tempdir().unwrap();
        let base = tmp.path().to_path_buf();
        let f = base.join("log.txt");
        let (mut w, _) = Watcher::start(spec(&base, vec![WatchRoot::dir(&base)])).unwrap();
        let done = Arc::new(std::sync::atomic::AtomicBool::new(false));
        let writer = {
            let (done, f) = (Arc::clone(&done), f.clone());
            std::thread::spawn(move || {
                let mut file = fs::File::create(&f).unwrap();
                // Writes every 10 ms (never a debounce of quiet) for up to 5 s.
                for _ in 0..500 {
                    if done.load(std::sync::atomic::Ordering::SeqCst) {
                        return true;
                    }
                    file.write_all(b"line\n").unwrap();
                    std::thread::sleep(Duration::from_millis(10));
                }
                false
            })
        };
        let cs = change(&mut w).await;
        done.store(true, std::sync::atomic::Ordering::SeqCst);
        assert_eq!(cs.paths, set(&[&f]));
        assert!(
            writer.join().unwrap(),
            "the change set came only after the writes stopped"
        );
    }

    #[tokio::test]
    async fn new_directories_are_watched_and_their_files_reported() {
        let tmp = tempfile::tempdir().unwrap();
        let base = tmp.path();
        let ctx = base.join("ctx");
        fs::create_dir(&ctx).unwrap();
        let (mut w, _) = Watcher::start(spec(
            base,
            vec![WatchRoot::dir(&ctx).with_exclude(node_modules)],
        ))
        .unwrap();
        let f = ctx.join("new/deep/f");
        put(&f, "1");
        let (seen, _) = changes_until(&mut w, &[&f]).await;
        assert!(seen.contains(&ctx.join("new")));
        let dirs = w.watched_dirs();
        assert!(dirs.contains(&ctx.join("new/deep")), "{dirs:?}");

        let g = ctx.join("new/deep/g");
        put(&g, "2");
        assert_eq!(change(&mut w).await.paths, set(&[&g]));

        // Renamed: the old name loses its watches, the new one gets them.
        fs::rename(ctx.join("new"), ctx.join("moved")).unwrap();
        let (seen, _) = changes_until(&mut w, &[&ctx.join("new"), &ctx.join("moved")]).await;
        assert!(seen.contains(&ctx.join("moved/deep/g")), "{seen:?}");
        let dirs = w.watched_dirs();
        assert!(
            dirs.contains(&ctx.join("moved/deep"))
                && !dirs.iter().any(|d| d.starts_with(ctx.join("new")))
        );
        let h = ctx.join("moved/deep/h");
        put(&h, "3");
        assert_eq!(change(&mut w).await.paths, set(&[&h]));

        // An excluded directory that appears stays unwatched.
        put(&ctx.join("node_modules/x/y.js"), "4");
        quiet(&mut w).await;
        assert!(
            !w.watched_dirs()
                .iter()
                .any(|d| d.starts_with(ctx.join("node_modules")))
        );
    }

    #[tokio::test]
    async fn chmod_and_removal_trigger() {
        let tmp = tempfile::tempdir().unwrap();
        let base = tmp.path();
        let f = base.join("run.sh");
        put(&f, "#!/bin/sh");
        let (mut w, _) = Watcher::start(spec(base, vec![WatchRoot::dir(base)])).unwrap();
        fs::set_permissions(&f, fs::Permissions::from_mode(0o755)).unwrap();
        assert_eq!(change(&mut w).await.paths, set(&[&f]));
        fs::remove_file(&f).unwrap();
        assert_eq!(change(&mut w).await.paths, set(&[&f]));
    }

    #[tokio::test]
    async fn a_file_root_survives_atomic_saves_and_ignores_its_siblings() {
        let tmp = tempfile::tempdir().unwrap();
        let base = tmp.path();
        let yaml = base.join("devloop.yaml");
        put(&yaml, "a: 1");
        let (mut w, _) = Watcher::start(spec(base, vec![WatchRoot::file("devloop.yaml")])).unwrap();
        for round in 0..2 {
            // An editor's save: a temporary file renamed over the original (a new inode each time).
            let temp = base.join(".devloop.yaml.swp");
            put(&temp, &format!("a: {round}"));
            fs::rename(&temp, &yaml).unwrap();
            assert_eq!(change(&mut w).await.paths, set(&[&yaml]));
        }
        put(&base.join("README.md"), "sibling");
        quiet(&mut w).await;
    }

    #[tokio::test]
    async fn a_root_that_vanishes_is_picked_up_again() {
        let tmp = tempfile::tempdir().unwrap();
        let base = tmp.path();
        let ctx = base.join("ctx");
        put(&ctx.join("sub/f"), "1");
        let (mut w, _) = Watcher::start(spec(base, vec![WatchRoot::dir(&ctx)])).unwrap();
        fs::remove_dir_all(&ctx).unwrap();
        changes_until(&mut w, &[&ctx]).await;
        assert_eq!(w.watched_dirs(), Vec::<PathBuf>::new());
        put(&ctx.join("sub/f"), "2");
        // The root is reported when it is seen again, then watched as before.
        changes_until(&mut w, &[&ctx]).await;
        let g = ctx.join("sub/g");
        put(&g, "3");
        changes_until(&mut w, &[&g]).await;
        assert_eq!(w.watched_dirs(), vec![ctx.clone(), ctx.join("sub")]);
    }

    #[tokio::test]
    async fn running_out_of_inotify_watches_at_start_falls_back_to_polling() {
        let tmp = tempfile::tempdir().unwrap();
        let base = tmp.path();
        for f in ["a/f", "b/f", "c/f", "node_modules/m/f"] {
            put(&base.join(f), "1");
        }
        let spec = spec(base, vec![WatchRoot::dir(base).with_exclude(node_modules)]);
        let (mut w, warnings) = Watcher::start_with(
            spec,
            Options {
                watch_limit: Some(2),
            },
        )
        .unwrap();
        assert_eq!(warnings.len(), 1, "{warnings:?}");
        assert!(
            matches!(&warnings[0], WatchWarning::WatchLimit { interval, .. } if *interval == D)
        );
        let message = warnings[0].to_string();
        assert!(
            message.contains("fell back to polling every 50ms"),
            "{message}"
        );
        assert!(
            message.contains("hint: raise the limit (`sudo sysctl fs.inotify.max_user_watches="),
            "{message}"
        );
        assert_eq!(w.mode(), WatchMode::Polling { interval: D });
        // The polling walk honours the same rules.
        let names = ["", "a", "b", "c"];
        assert_eq!(
            w.watched_dirs(),
            names
                .iter()
                .map(|n| clean(&base.join(n)))
                .collect::<Vec<_>>()
        );

        let (af, new) = (base.join("a/f"), base.join("c/new"));
        put(&af, "2");
        put(&new, "new");
        changes_until(&mut w, &[&af, &new]).await;
        put(&base.join("node_modules/m/f"), "2");
        quiet(&mut w).await;
    }

    #[tokio::test]
    async fn running_out_of_inotify_watches_later_falls_back_and_says_so() {
        let tmp = tempfile::tempdir().unwrap();
        let base = tmp.path();
        put(&base.join("sub/f"), "1");
        let spec = spec(base, vec![WatchRoot::dir(base)]);
        let (mut w, warnings) = Watcher::start_with(
            spec,
            Options {
                watch_limit: Some(2),
            },
        )
        .unwrap();
        assert_eq!((warnings, w.mode()), (vec![], WatchMode::Notify));

        let f = base.join("third/f");
        put(&f, "1");
        let (seen, warnings) = changes_until(&mut w, &[&base.join("third")]).await;
        assert!(
            seen.contains(base),
            "every root is reported after a fallback: {seen:?}"
        );
        assert_eq!(
            warnings,
            vec![WatchWarning::WatchLimit {
                path: base.join("third"),
                interval: D
            }],
        );
        assert_eq!(w.mode(), WatchMode::Polling { interval: D });
        let g = base.join("third/g");
        put(&g, "2");
        changes_until(&mut w, &[&g]).await;
    }

    #[tokio::test]
    async fn polling_reports_writes_chmod_and_removals() {
        let tmp = tempfile::tempdir().unwrap();
        let base = tmp.path();
        let (f, g) = (base.join("src/f"), base.join("src/g"));
        put(&f, "aaaa");
        put(&g, "x");
        put(&base.join("node_modules/m"), "x");
        let spec = WatchSpec {
            trigger: Trigger::Polling,
            ..spec(base, vec![WatchRoot::dir(base).with_exclude(node_modules)])
        };
        let (mut w, warnings) = Watcher::start(spec).unwrap();
        assert_eq!(
            (warnings, w.mode()),
            (vec![], WatchMode::Polling { interval: D })
        );
        assert_eq!(w.watched_dirs(), vec![base.to_path_buf(), base.join("src")]);

        // Same size, new content.
        put(&f, "bbbb");
        assert_eq!(change(&mut w).await.paths, set(&[&f]));
        fs::set_permissions(&f, fs::Permissions::from_mode(0o700)).unwrap();
        assert_eq!(change(&mut w).await.paths, set(&[&f]));
        fs::remove_file(&g).unwrap();
        assert_eq!(change(&mut w).await.paths, set(&[&g]));
        fs::read(&f).unwrap();
        put(&base.join("node_modules/m"), "y");
        quiet(&mut w).await;
    }

    #[tokio::test]
    async fn a_batch_waits_while_git_index_lock_exists() {
        let tmp = tempfile::tempdir().unwrap();
        let base = tmp.path();
        let src = base.join("src");
        fs::create_dir_all(base.join(".git")).unwrap();
        fs::create_dir(&src).unwrap();
        let lock = base.join(".git/index.lock");
        fs::write(&lock, "").unwrap();
        let (mut w, _) = Watcher::start(spec(base, vec![WatchRoot::dir(&src)])).unwrap();
        let (a, b) = (src.join("a"), src.join("b"));
        put(&a, "checked out");
        wait_pending(&w, &a);
        quiet(&mut w).await;
        assert!(w.try_take().is_none());
        put(&b, "checked out");
        fs::remove_file(&lock).unwrap();
        assert_eq!(change(&mut w).await.paths, set(&[&a, &b]));
    }

    #[test]
    fn the_git_lock_is_found_through_parents_and_gitdir_files() {
        let tmp = tempfile::tempdir().unwrap();
        let repo = tmp.path().join("repo");
        fs::create_dir_all(repo.join(".git")).unwrap();
        fs::create_dir_all(repo.join("services/api")).unwrap();
        assert_eq!(
            find_git_lock(&repo.join("services/api")),
            Some(repo.join(".git/index.lock"))
        );
        let worktree = tmp.path().join("wt");
        put(
            &worktree.join(".git"),
            "gitdir: ../repo/.git/worktrees/wt\n",
        );
        assert_eq!(
            find_git_lock(&worktree),
            Some(worktree.join("../repo/.git/worktrees/wt/index.lock"))
        );
    }

    #[tokio::test]
    async fn enter_is_a_manual_trigger_and_closing_the_input_ends_the_stream() {
        let tmp = tempfile::tempdir().unwrap();
        let spec = WatchSpec {
            trigger: Trigger::Manual,
            ..spec(tmp.path(), vec![WatchRoot::dir(tmp.path())])
        };
        let (mut w, _) = Watcher::start(spec).unwrap();
        assert_eq!((w.mode(), w.watched_dirs()), (WatchMode::Manual, vec![]));
        let (reader, mut writer) = std::io::pipe().unwrap();
        w.manual_trigger(reader).unwrap();
        put(&tmp.path().join("f"), "not watched in manual mode");
        writer.write_all(b"\n").unwrap();
        let cs = change(&mut w).await;
        assert!(cs.manual && cs.paths.is_empty(), "{cs:?}");
        drop(writer);
        assert!(timeout(EXPECT, w.next()).await.unwrap().is_none());
    }

    #[tokio::test]
    async fn a_manual_trigger_releases_pending_changes_at_once() {
        let tmp = tempfile::tempdir().unwrap();
        let base = tmp.path();
        // A debounce far beyond the test's bound: only the manual trigger can release the batch in time.
        let spec = WatchSpec {
            debounce: Duration::from_secs(60),
            ..spec(base, vec![WatchRoot::dir(base)])
        };
        let (mut w, _) = Watcher::start(spec).unwrap();
        let (reader, mut writer) = std::io::pipe().unwrap();
        w.manual_trigger(reader).unwrap();
        let f = base.join("f");
        put(&f, "1");
        wait_pending(&w, &f);
        writer.write_all(b"\n").unwrap();
        let cs = change(&mut w).await;
        assert!(cs.manual);
        assert_eq!(cs.paths, set(&[&f]));
    }

    #[tokio::test]
    async fn update_replaces_the_roots() {
        let tmp = tempfile::tempdir().unwrap();
        let base = tmp.path();
        let (a, b) = (base.join("a"), base.join("b"));
        fs::create_dir(&a).unwrap();
        fs::create_dir(&b).unwrap();
        let (mut w, _) = Watcher::start(spec(base, vec![WatchRoot::dir("a")])).unwrap();
        put(&a.join("f"), "1");
        assert_eq!(change(&mut w).await.paths, set(&[&a.join("f")]));
        assert_eq!(
            w.update(spec(base, vec![WatchRoot::dir("b")])).unwrap(),
            vec![]
        );
        assert_eq!(w.watched_dirs(), vec![b.clone()]);
        put(&a.join("f"), "2");
        quiet(&mut w).await;
        put(&b.join("f"), "3");
        assert_eq!(change(&mut w).await.paths, set(&[&b.join("f")]));
    }

    #[test]
    fn start_errors_name_the_value() {
        let tmp = tempfile::tempdir().unwrap();
        let base = tmp.path();
        let err = Watcher::start(spec(base, vec![WatchRoot::dir("./api")]))
            .err()
            .unwrap();
        assert_eq!(
            err.to_string(),
            format!("watch root `{}` does not exist", base.join("api").display())
        );
        let mut bad = spec(base, vec![]);
        bad.ignore = vec!["src/[".into()];
        let err = Watcher::start(bad).err().unwrap();
        assert!(
            err.to_string()
                .starts_with("watch.ignore: invalid glob `src/[`: "),
            "{err}"
        );
        let err = WatchError::Register {
            path: PathBuf::from("/p/ctx"),
            source: std::io::Error::from_raw_os_error(13),
        };
        assert_eq!(
            err.to_string(),
            "cannot watch `/p/ctx`: Permission denied (os error 13)\n\nhint: devloop needs read access to every directory it watches"
        );
    }

    #[test]
    fn ignore_globs_match_like_the_docs_say() {
        let mut spec = WatchSpec::new("/p");
        spec.ignore = vec![
            "*.swp".into(),
            "ctx/target/**".into(),
            "/build/".into(),
            "node_modules".into(),
        ];
        let rules = Rules::compile(&spec).unwrap();
        for ignored in [
            "/p/a.swp",
            "/p/x/y/a.swp",
            "/p/ctx/target",
            "/p/ctx/target/d/e",
            "/p/build",
            "/p/a/node_modules",
        ] {
            assert!(rules.user_ignored(Path::new(ignored)), "{ignored}");
        }
        for kept in [
            "/p",
            "/p/a.swpx",
            "/p/ctx/targets",
            "/p/x/build",
            "/p/ctx/target.rs",
            "/p/node_modules_x",
        ] {
            assert!(!rules.user_ignored(Path::new(kept)), "{kept}");
        }
    }
}
