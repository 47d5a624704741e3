//! Watch stage, the polling backend (`--trigger polling`, and the fallback when inotify runs out or cannot start):
//! the compiled [`Rules`] → a stat walk every poll interval that honours the same rules → the paths whose stamp
//! changed, appeared or vanished since the last walk. Keeps its cost bounded (at least four walks' time between
//! two walks); decides nothing about what a path means (that is `rules.rs`).

use std::collections::{BTreeSet, HashMap};
use std::fs;
use std::os::unix::fs::MetadataExt;
use std::path::PathBuf;
use std::sync::Mutex;
use std::time::Instant;

use super::change_set::{Found, lock};
use super::mode::{Status, WatchMode};
use super::rules::Rules;
use super::warning::WatchWarning;

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

/// The polling backend: a stat walk every poll interval, compared with the previous one.
pub(super) struct Poller {
    snapshot: HashMap<PathBuf, Stamp>,
    pub(super) next_scan: Instant,
}

impl Poller {
    pub(super) fn new(
        rules: &Rules,
        status: &Mutex<Status>,
        warnings: &mut Vec<WatchWarning>,
    ) -> Poller {
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

    pub(super) fn poll(&mut self, rules: &Rules, found: &mut Found, status: &Mutex<Status>) {
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
