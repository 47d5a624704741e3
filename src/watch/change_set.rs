//! Watch stage, pending changes: what the collector thread and the manual trigger find → merged into one
//! pending set shared with the consumer → taken as one [`ChangeSet`]. Merged, never queued, so a producer is
//! never blocked by the loop and a busy consumer finds one set. Decides nothing about timing (that is
//! `debounce.rs`) and never looks at the file system.

use std::collections::BTreeSet;
use std::path::PathBuf;
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::time::Instant;

use super::warning::WatchWarning;

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

/// The pending changes and the consumer's wake-up, shared by every producer and the [`Watcher`](super::Watcher).
#[derive(Default)]
pub(super) struct Shared {
    pending: Mutex<Pending>,
    /// Woken on every publish and when a source ends; a stored permit covers a wake before the wait.
    pub(super) wake: tokio::sync::Notify,
}

/// What arrived since the last batch was taken.
#[derive(Default)]
pub(super) struct Pending {
    pub(super) paths: BTreeSet<PathBuf>,
    pub(super) manual: bool,
    warnings: Vec<WatchWarning>,
    /// `Some` exactly when something is pending.
    pub(super) times: Option<Times>,
    /// Live producers (a collector thread, manual inputs); `next` ends when none is left.
    pub(super) sources: usize,
}

/// When the pending changes arrived.
#[derive(Clone, Copy)]
pub(super) struct Times {
    first: Instant,
    /// Start of the current burst (the first event, or the end of an `index.lock` hold).
    pub(super) burst: Instant,
    pub(super) last: Instant,
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

    pub(super) fn take(&mut self) -> ChangeSet {
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
    pub(super) fn lock(&self) -> MutexGuard<'_, Pending> {
        lock(&self.pending)
    }

    pub(super) fn publish(&self, found: Found) {
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

    pub(super) fn publish_manual(&self) {
        {
            let mut pending = self.lock();
            pending.manual = true;
            pending.touch(Instant::now());
        }
        self.wake.notify_one();
    }
}

/// Locks `m` (the pending set, the collector's status), poisoned or not.
pub(super) fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    // The data stays consistent across a panic (plain inserts), so a poisoned lock is still usable.
    m.lock().unwrap_or_else(PoisonError::into_inner)
}

/// Counts a producer while it lives, so `next` knows when the stream has ended.
pub(super) struct SourceGuard {
    pub(super) shared: Arc<Shared>,
}

impl SourceGuard {
    pub(super) fn new(shared: &Arc<Shared>) -> SourceGuard {
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
pub(super) struct Found {
    pub(super) paths: Vec<PathBuf>,
    pub(super) warnings: Vec<WatchWarning>,
}
