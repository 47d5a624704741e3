//! Watch stage, the notify backend: the compiled [`Rules`] → OS file notifications (inotify: one non-recursive
//! watch per kept directory, registered by a walk that skips what the rules drop; other backends: one recursive
//! watch per root), kept in step as directories appear, vanish and come back. Reads are dropped on notify's own
//! thread; everything else goes to the collector thread as a [`Msg`]. Decides neither what a path means (that
//! is `rules.rs`) nor when to fall back to polling (that is `collector.rs`).

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};
use std::sync::mpsc::Sender;
use std::sync::{Arc, Mutex};

use notify::{EventKind, RecommendedWatcher, RecursiveMode, Watcher as _, WatcherKind};

use super::Options;
use super::change_set::{Found, lock};
use super::mode::{Status, WatchMode};
use super::rules::Rules;
use super::spec::WatchRoot;
use super::warning::WatchWarning;

/// What the collector thread receives: notify's events (sent from notify's own thread) and the stop request.
pub(super) enum Msg {
    Event(notify::Result<notify::Event>),
    Stop,
}

/// Why registering watches failed.
pub(super) enum Fail {
    /// Out of inotify watches at this directory.
    Limit(PathBuf),
    /// The backend could not start.
    Unavailable(String),
    /// A root's watch failed for another reason.
    Watch(PathBuf, std::io::Error),
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

/// notify's error in words, without the paths notify's own `Display` appends.
pub(super) fn describe(e: &notify::Error) -> String {
    match &e.kind {
        notify::ErrorKind::Io(io) => io.to_string(),
        notify::ErrorKind::Generic(s) => s.clone(),
        notify::ErrorKind::PathNotFound => "no such file or directory".to_string(),
        notify::ErrorKind::MaxFilesWatch => "the inotify watch limit is reached".to_string(),
        notify::ErrorKind::WatchNotFound => "no such watch".to_string(),
        notify::ErrorKind::InvalidConfig(_) => "invalid watcher configuration".to_string(),
    }
}

/// The notify backend: the OS's file notifications, registered directory by directory.
pub(super) struct Notifier {
    watcher: RecommendedWatcher,
    /// inotify: one non-recursive watch per kept directory. Other backends (FSEvents, Windows) have no
    /// per-directory cost and watch each recursive root as a whole; events are filtered all the same.
    per_dir: bool,
    /// Anchors (see [`Rules::anchor`]) that disappeared; looked for again every
    /// [`RECHECK`](super::RECHECK).
    pub(super) missing: BTreeSet<PathBuf>,
    status: Arc<Mutex<Status>>,
    options: Options,
}

impl Notifier {
    pub(super) fn new(
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
    pub(super) fn register_root(
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
    pub(super) fn appeared(
        &mut self,
        rules: &Rules,
        path: &Path,
        found: &mut Found,
    ) -> Result<(), Fail> {
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
    pub(super) fn removed(&mut self, rules: &Rules, path: &Path) {
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
    pub(super) fn recheck_missing(&mut self, rules: &Rules, found: &mut Found) -> Result<(), Fail> {
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
