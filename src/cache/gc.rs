//! Cache stage, garbage collection: the store → without the files unused for too long, then without the least
//! recently used ones while it is too large, under the exclusive lock; it never removes a temporary file a writer
//! may still be writing.

use std::fs::{self, File, TryLockError};
use std::io;
use std::os::unix::ffi::OsStrExt;
use std::path::Path;
use std::time::{Duration, SystemTime};

use super::error::CacheError;
use super::store::{SUBDIRS, Store};

/// `gc_if_due` runs at most this often.
const GC_INTERVAL: Duration = Duration::from_secs(24 * 60 * 60);
/// Temporary files older than this were left by a crashed writer.
pub(super) const STALE_TEMP: Duration = Duration::from_secs(60 * 60);

/// Limits for garbage collection.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct GcPolicy {
    /// Files not used for this long are removed.
    pub max_age: Duration,
    /// When the store is still larger than this, the least recently used files are removed.
    pub max_bytes: u64,
}

impl Default for GcPolicy {
    fn default() -> Self {
        Self {
            max_age: Duration::from_secs(30 * 24 * 60 * 60),
            max_bytes: 2 << 30,
        }
    }
}

/// What a garbage collection did.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct GcReport {
    pub files_removed: u64,
    pub bytes_removed: u64,
    pub bytes_kept: u64,
}

impl Store {
    /// Removes store files unused for `policy.max_age`, then the least recently used ones while the
    /// store is larger than `policy.max_bytes`. Waits for writers in other processes to finish.
    pub fn gc(&self, policy: &GcPolicy) -> Result<GcReport, CacheError> {
        let lock = self.lock_file()?;
        lock.lock().map_err(|source| CacheError::Write {
            path: self.dir().join("lock"),
            source,
        })?;
        self.gc_locked(policy)
    }

    /// Runs [`Store::gc`] when the last collection is more than a day old and no other process is
    /// writing; `None` when it did not run.
    pub fn gc_if_due(&self, policy: &GcPolicy) -> Result<Option<GcReport>, CacheError> {
        let stamp = self.dir().join("gc-stamp");
        let due = fs::metadata(&stamp)
            .and_then(|m| m.modified())
            .map_or(true, |at| {
                at.elapsed().map_or(true, |age| age >= GC_INTERVAL)
            });
        if !due {
            return Ok(None);
        }
        let lock = self.lock_file()?;
        match lock.try_lock() {
            Ok(()) => {}
            Err(TryLockError::WouldBlock) => return Ok(None),
            Err(TryLockError::Error(source)) => {
                return Err(CacheError::Write {
                    path: self.dir().join("lock"),
                    source,
                });
            }
        }
        let report = self.gc_locked(policy)?;
        let write_stamp = File::create(&stamp).and_then(|f| f.set_modified(SystemTime::now()));
        write_stamp.map_err(|source| CacheError::Write {
            path: stamp,
            source,
        })?;
        Ok(Some(report))
    }

    fn gc_locked(&self, policy: &GcPolicy) -> Result<GcReport, CacheError> {
        let now = SystemTime::now();
        let age = |modified: SystemTime| now.duration_since(modified).unwrap_or_default();
        let mut report = GcReport::default();
        let mut kept = Vec::new();
        for sub in SUBDIRS {
            let dir = self.dir().join(sub);
            let listing = fs::read_dir(&dir).map_err(|source| CacheError::Write {
                path: dir.clone(),
                source,
            })?;
            for item in listing.flatten() {
                let Ok(meta) = item.metadata() else { continue };
                if !meta.is_file() {
                    continue;
                }
                let modified = meta.modified().unwrap_or(now);
                let temp = item.file_name().as_bytes().starts_with(b".tmp");
                let expired = if temp {
                    age(modified) > STALE_TEMP
                } else {
                    age(modified) > policy.max_age
                };
                if expired {
                    remove(&item.path(), meta.len(), &mut report);
                } else if !temp {
                    kept.push((modified, meta.len(), item.path()));
                }
            }
        }
        kept.sort();
        let mut total: u64 = kept.iter().map(|(_, len, _)| len).sum();
        for (_, len, path) in &kept {
            if total <= policy.max_bytes {
                break;
            }
            remove(path, *len, &mut report);
            total -= len;
        }
        report.bytes_kept = total;
        Ok(report)
    }
}

fn remove(path: &Path, len: u64, report: &mut GcReport) {
    match fs::remove_file(path) {
        Ok(()) => {
            report.files_removed += 1;
            report.bytes_removed += len;
        }
        Err(error) if error.kind() == io::ErrorKind::NotFound => {}
        Err(error) => tracing::warn!(path = %path.display(), %error, "cannot remove cache file"),
    }
}
