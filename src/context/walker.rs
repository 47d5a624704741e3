//! Build context: the directory walk — a canonical context root and the ignore matcher → every entry `docker
//! build` would send (before the build files are forced in), listed on up to 8 threads. Directories are walked
//! with the per-pattern results of their parent (moby's `MatchesUsingParentResults`); an excluded directory is
//! walked only when a `!` rule may re-include something below it. It never follows symlinks, never reads file
//! content, and its threads end before it returns.

use std::ffi::OsStr;
use std::fs;
use std::io;
use std::os::unix::fs::{FileTypeExt, MetadataExt};
use std::path::Path;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Condvar, Mutex, PoisonError};

use super::dockerignore::DockerIgnore;
use super::error::ContextError;
use super::{ContextEntry, EntryKind};

/// The entry for `rel` from its (not followed) metadata.
pub(super) fn entry_from(rel: String, meta: &fs::Metadata, kind: EntryKind) -> ContextEntry {
    ContextEntry {
        rel,
        size: if kind == EntryKind::Dir {
            0
        } else {
            meta.size()
        },
        kind,
        mode: meta.mode(),
        dev: meta.dev(),
        ino: meta.ino(),
        mtime_ns: meta
            .mtime()
            .saturating_mul(1_000_000_000)
            .saturating_add(meta.mtime_nsec()),
        ctime_ns: meta
            .ctime()
            .saturating_mul(1_000_000_000)
            .saturating_add(meta.ctime_nsec()),
    }
}

struct DirJob {
    /// `/`-separated path relative to the root; empty for the root itself.
    rel: String,
    /// Per-pattern match results of this directory; `None` for the root.
    info: Option<Arc<[bool]>>,
    /// Excluded itself, walked only because a `!` rule may re-include something below it.
    excluded: bool,
}

struct WalkQueue {
    jobs: Vec<DirJob>,
    busy: usize,
}

struct Walker<'a> {
    root: &'a Path,
    matcher: &'a DockerIgnore,
    queue: Mutex<WalkQueue>,
    ready: Condvar,
    failed: AtomicBool,
    error: Mutex<Option<ContextError>>,
}

/// Every entry below `root` the matcher keeps, in no particular order; the first error stops the walk.
pub(super) fn walk_tree(
    root: &Path,
    matcher: &DockerIgnore,
) -> Result<Vec<ContextEntry>, ContextError> {
    let walker = Walker {
        root,
        matcher,
        queue: Mutex::new(WalkQueue {
            jobs: vec![DirJob {
                rel: String::new(),
                info: None,
                excluded: false,
            }],
            busy: 0,
        }),
        ready: Condvar::new(),
        failed: AtomicBool::new(false),
        error: Mutex::new(None),
    };
    let threads = std::thread::available_parallelism()
        .map_or(1, |n| n.get())
        .min(8);
    let mut entries = if threads == 1 {
        walker.run()
    } else {
        std::thread::scope(|scope| {
            let handles: Vec<_> = (0..threads).map(|_| scope.spawn(|| walker.run())).collect();
            let mut all = Vec::new();
            for handle in handles {
                match handle.join() {
                    Ok(part) => all.extend(part),
                    Err(panic) => std::panic::resume_unwind(panic),
                }
            }
            all
        })
    };
    if let Some(error) = walker
        .error
        .into_inner()
        .unwrap_or_else(PoisonError::into_inner)
    {
        return Err(error);
    }
    entries.shrink_to_fit();
    Ok(entries)
}

impl Walker<'_> {
    /// One worker: lists directories from the shared queue until none is left (or a worker failed), and
    /// returns the entries it found.
    fn run(&self) -> Vec<ContextEntry> {
        let mut found = Vec::new();
        let mut info_buf = Vec::new();
        loop {
            let job = {
                let mut queue = self.queue.lock().unwrap_or_else(PoisonError::into_inner);
                loop {
                    if self.failed.load(Ordering::Relaxed) {
                        queue.jobs.clear();
                    }
                    if let Some(job) = queue.jobs.pop() {
                        queue.busy += 1;
                        break Some(job);
                    }
                    if queue.busy == 0 {
                        break None;
                    }
                    queue = self
                        .ready
                        .wait(queue)
                        .unwrap_or_else(PoisonError::into_inner);
                }
            };
            let Some(job) = job else {
                self.ready.notify_all();
                return found;
            };
            let mut children = Vec::new();
            if let Err(error) = self.read_dir(&job, &mut found, &mut children, &mut info_buf) {
                self.failed.store(true, Ordering::Relaxed);
                self.error
                    .lock()
                    .unwrap_or_else(PoisonError::into_inner)
                    .get_or_insert(error);
            }
            let mut queue = self.queue.lock().unwrap_or_else(PoisonError::into_inner);
            queue.busy -= 1;
            let wake = !children.is_empty() || queue.busy == 0;
            queue.jobs.extend(children);
            drop(queue);
            if wake {
                self.ready.notify_all();
            }
        }
    }

    /// Lists one directory: its entries go to `found`, the subdirectories to walk next to `children`.
    fn read_dir(
        &self,
        job: &DirJob,
        found: &mut Vec<ContextEntry>,
        children: &mut Vec<DirJob>,
        info_buf: &mut Vec<bool>,
    ) -> Result<(), ContextError> {
        let dir_path = if job.rel.is_empty() {
            self.root.to_owned()
        } else {
            self.root.join(&job.rel)
        };
        let Some(listing) = open_listing(job, &dir_path)? else {
            return Ok(());
        };
        for item in listing {
            let item = item.map_err(|source| ContextError::Unreadable {
                path: dir_path.clone(),
                source,
            })?;
            self.read_item(job, &item, found, children, info_buf)?;
        }
        Ok(())
    }

    /// One item of a listed directory: skipped, excluded (and still walked when a `!` rule may re-include
    /// something below it), or an entry (and walked when it is a directory).
    fn read_item(
        &self,
        job: &DirJob,
        item: &fs::DirEntry,
        found: &mut Vec<ContextEntry>,
        children: &mut Vec<DirJob>,
        info_buf: &mut Vec<bool>,
    ) -> Result<(), ContextError> {
        let (rel, utf8) = child_rel(&job.rel, &item.file_name());
        let Some(file_type) = still_there(item.file_type(), item)? else {
            return Ok(());
        };
        let is_dir = file_type.is_dir();
        let excluded = if self.matcher.patterns.is_empty() {
            false
        } else {
            self.matcher
                .eval(&rel, job.info.as_deref(), is_dir.then_some(&mut *info_buf))
        };
        if excluded {
            if is_dir && self.matcher.has_exceptions() && !self.matcher.prunable(&rel) {
                children.push(DirJob {
                    rel,
                    info: self.dir_info(info_buf),
                    excluded: true,
                });
            }
            return Ok(());
        }
        if !utf8 {
            return Err(ContextError::NonUtf8Path { path: item.path() });
        }
        let Some(kind) = entry_kind(item, file_type)? else {
            return Ok(());
        };
        let Some(meta) = still_there(item.metadata(), item)? else {
            return Ok(());
        };
        if is_dir {
            children.push(DirJob {
                rel: rel.clone(),
                info: self.dir_info(info_buf),
                excluded: false,
            });
        }
        found.push(entry_from(rel, &meta, kind));
        Ok(())
    }

    /// The per-pattern results a directory's children inherit (none when there are no rules).
    fn dir_info(&self, info_buf: &[bool]) -> Option<Arc<[bool]>> {
        if self.matcher.patterns.is_empty() {
            None
        } else {
            Some(Arc::from(info_buf))
        }
    }
}

/// The directory's listing; `None` when there is nothing to list and that is not an error.
fn open_listing(job: &DirJob, dir_path: &Path) -> Result<Option<fs::ReadDir>, ContextError> {
    match fs::read_dir(dir_path) {
        Ok(listing) => Ok(Some(listing)),
        // Walked only to look for `!` re-includes: the docker CLI skips what it cannot read there.
        Err(error) if job.excluded => {
            tracing::debug!(path = %dir_path.display(), %error, "skipping unreadable excluded directory");
            Ok(None)
        }
        // Removed since its parent was listed: the walk is a snapshot, like any file that vanishes.
        Err(error) if error.kind() == io::ErrorKind::NotFound && !job.rel.is_empty() => Ok(None),
        Err(source) => Err(ContextError::Unreadable {
            path: dir_path.to_owned(),
            source,
        }),
    }
}

/// The child's `/`-separated path below `parent_rel`, and whether its name is UTF-8 (else the path holds the
/// lossy name, good enough to match rules against: an excluded name is no error).
fn child_rel(parent_rel: &str, name: &OsStr) -> (String, bool) {
    let lossy;
    let (name_str, utf8) = match name.to_str() {
        Some(s) => (s, true),
        None => {
            lossy = name.to_string_lossy().into_owned();
            (lossy.as_str(), false)
        }
    };
    let rel = if parent_rel.is_empty() {
        name_str.to_owned()
    } else {
        format!("{parent_rel}/{name_str}")
    };
    (rel, utf8)
}

/// What a context entry of this file type is; `None` for what is not sent (sockets, fifos, devices) and for a
/// link that vanished since the listing.
fn entry_kind(
    item: &fs::DirEntry,
    file_type: fs::FileType,
) -> Result<Option<EntryKind>, ContextError> {
    if file_type.is_dir() {
        Ok(Some(EntryKind::Dir))
    } else if file_type.is_file() {
        Ok(Some(EntryKind::File))
    } else if file_type.is_symlink() {
        let Some(target) = still_there(fs::read_link(item.path()), item)? else {
            return Ok(None);
        };
        let target = target
            .into_os_string()
            .into_string()
            .map_err(|_| ContextError::NonUtf8LinkTarget { path: item.path() })?;
        Ok(Some(EntryKind::Symlink { target }))
    } else {
        // Sockets are skipped by the docker CLI too; fifos and devices have no `EntryKind`.
        tracing::debug!(
            path = %item.path().display(),
            socket = file_type.is_socket(),
            "skipping special file in build context"
        );
        Ok(None)
    }
}

/// `None` when the item was removed since its directory was listed (the walk is a snapshot); any other failure
/// names the item.
fn still_there<T>(result: io::Result<T>, item: &fs::DirEntry) -> Result<Option<T>, ContextError> {
    match result {
        Ok(value) => Ok(Some(value)),
        Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(None),
        Err(source) => Err(ContextError::Unreadable {
            path: item.path(),
            source,
        }),
    }
}
