//! Watch stage, when a batch is released: the pending set's times → release it now, or wait for the next publish
//! or a deadline. A lone save goes out on its leading edge ([`LEAD`]); events that continue a burst wait for a
//! debounce period of quiet, at the latest [`BURST_CAP`] after the burst began; a manual trigger goes at once;
//! nothing goes while `.git/index.lock` exists (a checkout or rebase in progress). Never waits itself and never
//! looks at events (the [`Watcher`](super::Watcher) waits; the collector thread fills the set).

use std::fs;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use super::RECHECK;
use super::change_set::{ChangeSet, Shared};
use super::rules::clean;
use super::spec::WatchSpec;

/// Leading edge: the first events after a quiet period are reported once this long passes without another
/// one (at the latest after one debounce period). An editor's save is a few events within a millisecond or two
/// (a write and a close, or a temporary file, a rename and a chmod), so a lone save starts its build about
/// this long after it happened instead of a whole debounce period later.
const LEAD: Duration = Duration::from_millis(10);
/// Events that keep coming within a debounce period of the last report are one burst (a formatter, `git
/// checkout`, an autosave loop): reported after a debounce period of quiet, and at the latest this long after the
/// burst's first event, so a file that is written without pause still triggers now and then. Each report cancels
/// the iteration in flight, so a short cap would restart builds all through a burst.
pub const BURST_CAP: Duration = Duration::from_secs(5);

/// What the consumer does after looking at the pending set.
pub(super) enum Decision {
    /// Nothing is pending and nothing can produce changes any more.
    End,
    /// The batch is due: hand it out.
    Release(ChangeSet),
    /// Wait for the next publish, or until this instant at the latest.
    Wait(Option<Instant>),
}

/// The consumer's side of the debounce: the timing it was given and what it remembers between batches.
pub(super) struct Debounce {
    /// Quiet period that ends a burst ([`WatchSpec::debounce`]).
    period: Duration,
    git_lock: Option<PathBuf>,
    /// A batch was held back by `index.lock`; its quiet period restarts when the lock goes away.
    held: bool,
    /// When the last batch was handed out: events soon after it continue that burst.
    released: Option<Instant>,
}

impl Debounce {
    pub(super) fn new(spec: &WatchSpec) -> Debounce {
        Debounce {
            period: spec.debounce,
            git_lock: find_git_lock(&spec.base_dir),
            held: false,
            released: None,
        }
    }

    /// Takes the timing and the repository of a new spec; a held batch and the last release carry over.
    pub(super) fn update(&mut self, spec: &WatchSpec) {
        self.period = spec.debounce;
        self.git_lock = find_git_lock(&spec.base_dir);
    }

    /// Releases the pending batch when it is due (see [`Watcher::next`](super::Watcher::next)), else says how
    /// long to wait.
    pub(super) fn decide(&mut self, shared: &Shared) -> Decision {
        let locked = self.git_locked();
        let now = Instant::now();
        let mut pending = shared.lock();
        let (sources, manual) = (pending.sources, pending.manual);
        match pending.times.as_mut() {
            None if sources == 0 => Decision::End,
            None => Decision::Wait(None),
            Some(_) if locked => {
                self.held = true;
                Decision::Wait(Some(now + RECHECK))
            }
            Some(times) => {
                if self.held {
                    // Events of the checkout may still be on their way: a full quiet period again.
                    self.held = false;
                    times.burst = now;
                    times.last = now;
                }
                let continuing = self
                    .released
                    .is_some_and(|r| times.burst.saturating_duration_since(r) < self.period);
                let due = if continuing {
                    (times.last + self.period).min(times.burst + BURST_CAP)
                } else {
                    (times.last + LEAD.min(self.period)).min(times.burst + self.period)
                };
                if manual || due <= now {
                    self.released = Some(now);
                    return Decision::Release(pending.take());
                }
                Decision::Wait(Some(due))
            }
        }
    }

    /// Takes whatever is pending without waiting for the burst to end (see
    /// [`Watcher::try_take`](super::Watcher::try_take)).
    pub(super) fn take_now(&mut self, shared: &Shared) -> Option<ChangeSet> {
        if self.git_locked() {
            self.held = true;
            return None;
        }
        self.held = false;
        let mut pending = shared.lock();
        let taken = pending.times.is_some().then(|| pending.take());
        if taken.is_some() {
            self.released = Some(Instant::now());
        }
        taken
    }

    fn git_locked(&self) -> bool {
        self.git_lock
            .as_deref()
            .is_some_and(|p| p.symlink_metadata().is_ok())
    }
}

/// The `index.lock` of the git repository enclosing `base_dir` (found like git does, by walking up to the
/// first `.git`, which is a directory or, in worktrees and submodules, a file `gitdir: <path>`).
pub(super) fn find_git_lock(base_dir: &Path) -> Option<PathBuf> {
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
