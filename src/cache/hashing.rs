//! Cache stage, hashing file contents: the context entries to read → the sha256 and length of each, on every
//! core with one reused buffer per thread; it never consults the memo and never writes to the store.

use std::fs::File;
use std::io::{self, Read};
use std::path::Path;
use std::sync::Mutex;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};

use sha2::{Digest as _, Sha256};

use super::digest::Digest;
use super::error::CacheError;
use crate::context::ContextEntry;

/// Read buffer per hashing thread; large enough that almost every source file arrives in one
/// `read`.
pub(super) const READ_BUFFER: usize = 256 * 1024;

pub(super) struct Hashed {
    pub(super) index: usize,
    pub(super) digest: Digest,
    pub(super) len: u64,
}

/// Hashes the files at `todo` (indexes into `entries`) on every core, each thread with one reused
/// buffer.
pub(super) fn hash_files(
    root: &Path,
    entries: &[ContextEntry],
    todo: &[usize],
) -> Result<Vec<Hashed>, CacheError> {
    if todo.is_empty() {
        return Ok(Vec::new());
    }
    let workers = worker_count(todo.len() / 8);
    if workers <= 1 {
        let mut buf = vec![0u8; READ_BUFFER];
        return todo
            .iter()
            .map(|&i| hash_file(root, &entries[i], i, &mut buf))
            .collect();
    }
    let next = AtomicUsize::new(0);
    let failed = AtomicBool::new(false);
    let first_error = Mutex::new(None);
    let mut out = Vec::with_capacity(todo.len());
    std::thread::scope(|scope| {
        let handles: Vec<_> = (0..workers)
            .map(|_| {
                scope.spawn(|| {
                    let mut buf = vec![0u8; READ_BUFFER];
                    let mut done = Vec::new();
                    while !failed.load(Ordering::Relaxed) {
                        let Some(&i) = todo.get(next.fetch_add(1, Ordering::Relaxed)) else {
                            break;
                        };
                        match hash_file(root, &entries[i], i, &mut buf) {
                            Ok(hashed) => done.push(hashed),
                            Err(error) => {
                                failed.store(true, Ordering::Relaxed);
                                if let Ok(mut slot) = first_error.lock() {
                                    slot.get_or_insert(error);
                                }
                            }
                        }
                    }
                    done
                })
            })
            .collect();
        for handle in handles {
            out.extend(
                handle
                    .join()
                    .unwrap_or_else(|panic| std::panic::resume_unwind(panic)),
            );
        }
    });
    match first_error.into_inner().ok().flatten() {
        Some(error) => Err(error),
        None => Ok(out),
    }
}

fn hash_file(
    root: &Path,
    entry: &ContextEntry,
    index: usize,
    buf: &mut [u8],
) -> Result<Hashed, CacheError> {
    let path = root.join(&entry.rel);
    let error = |source| CacheError::Read {
        path: path.clone(),
        source,
    };
    let mut file = File::open(&path).map_err(error)?;
    let mut hasher = Sha256::new();
    let mut len = 0u64;
    loop {
        let n = match file.read(buf) {
            Ok(n) => n,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
            Err(e) => return Err(error(e)),
        };
        hasher.update(&buf[..n]);
        len += n as u64;
        // A short read of a regular file means end of file; when it also lands on the size the walk
        // saw, skip the extra `read` that would return 0 (one syscall per file is a measurable
        // share of the total).
        if n == 0 || (n < buf.len() && len == entry.size) {
            break;
        }
    }
    Ok(Hashed {
        index,
        digest: Digest(hasher.finalize().into()),
        len,
    })
}

/// How many threads share `items` pieces of work: one per core, at most one per item and 16 in all.
pub(super) fn worker_count(items: usize) -> usize {
    let cores = std::thread::available_parallelism().map_or(1, usize::from);
    cores.min(items).min(16)
}
