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
//!
//! Files, bottom-up (each names only files listed before it): `spec.rs` (what to watch), `warning.rs` and
//! `error.rs` (what the user is told), `mode.rs` (how changes are detected right now), `change_set.rs` (the
//! pending set and the [`ChangeSet`] taken from it), `rules.rs` (which paths matter), `manual.rs` (Enter),
//! `notifier.rs` and `poller.rs` (the two backends), `debounce.rs` (when a batch is released), `collector.rs` (the
//! thread that runs a backend and falls back to polling); this file is the [`Watcher`] callers hold.

mod change_set;
mod collector;
mod debounce;
mod error;
mod manual;
mod mode;
mod notifier;
mod poller;
mod rules;
mod spec;
mod warning;

use std::io::Read;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

pub use change_set::ChangeSet;
pub use debounce::BURST_CAP;
pub use error::WatchError;
pub use mode::WatchMode;
pub use spec::{DEFAULT_DEBOUNCE, DEFAULT_POLL_INTERVAL, ExcludeFn, Trigger, WatchRoot, WatchSpec};
pub use warning::WatchWarning;

use change_set::{Shared, lock};
use collector::CollectorHandle;
use debounce::{Debounce, Decision};

/// How often a held batch re-checks `index.lock`, and how often vanished roots are looked for again.
const RECHECK: Duration = Duration::from_millis(100);

/// Watches files and yields debounced [`ChangeSet`]s. Dropping it stops watching.
pub struct Watcher {
    shared: Arc<Shared>,
    collector: Option<CollectorHandle>,
    debounce: Debounce,
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
            debounce: Debounce::new(&spec),
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
        self.debounce.update(&spec);
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
            let wake_at = match self.debounce.decide(&self.shared) {
                Decision::End => return None,
                Decision::Release(changes) => return Some(changes),
                Decision::Wait(at) => at,
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
        self.debounce.take_now(&self.shared)
    }

    /// Reads lines from `input` on a thread of its own; each line (Enter) is a manual trigger, released at
    /// once. In [`Trigger::Manual`] mode [`Watcher::next`] returns `None` once every input is closed. The
    /// thread ends at end of input (a blocked read of stdin cannot be interrupted; it ends with the process).
    pub fn manual_trigger<R: Read + Send + 'static>(&mut self, input: R) -> Result<(), WatchError> {
        manual::read_triggers(&self.shared, input)
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
}

impl Drop for Watcher {
    fn drop(&mut self) {
        if let Some(collector) = self.collector.take() {
            collector.stop();
        }
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests;
