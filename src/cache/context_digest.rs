//! Cache stage, context digests: each entry's content ([`Content`]) → the digest of a whole build context, hashed in
//! fixed chunks so that a memo can vouch for unchanged chunks; it reads no files and never touches the store.

use sha2::{Digest as _, Sha256};

use super::digest::Digest;
use super::encoding::put_u32;
use super::hashing::worker_count;
use crate::context::ContextFiles;

/// Entries per chunk of the aggregate context digest (fixed, so the digest does not depend on the
/// thread count).
pub(super) const AGGREGATE_CHUNK: usize = 8192;

/// What one context entry contributes to the context digest.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Content {
    Dir,
    /// sha256 of the file's bytes.
    File(Digest),
    /// sha256 of the raw link text.
    Symlink(Digest),
}

/// One entry of a context as recorded for [`explain`](super::explain).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FileDigest {
    pub rel: String,
    pub mode: u32,
    pub content: Content,
}

/// Every entry of a context with its content digest, sorted by `rel` like
/// [`ContextFiles::entries`].
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct FileDigests(pub Vec<FileDigest>);

impl FileDigests {
    /// The context digest these entries hash to (equal to [`ContextDigest::digest`] of the same
    /// context).
    pub fn digest(&self) -> Digest {
        aggregate(
            self.0.len(),
            |i| (&self.0[i].rel, self.0[i].mode, &self.0[i].content),
            &[],
        )
        .0
    }
}

/// How much work a context digest took.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct HashStats {
    /// Files whose contents were read.
    pub files_hashed: u64,
    /// Bytes read from those files.
    pub bytes_read: u64,
    /// Files whose digest came from the memo without reading them.
    pub files_reused: u64,
}

/// The digest of a whole build context.
#[derive(Debug, Clone)]
pub struct ContextDigest {
    /// sha256 over every entry's (path, mode, kind, content digest or link text digest), in order.
    pub digest: Digest,
    /// Per-entry contents, index-aligned with the `entries` of the `ContextFiles` that was
    /// digested.
    pub contents: Vec<Content>,
    pub stats: HashStats,
}

impl ContextDigest {
    /// Per-entry digests with their paths, for [`Store::record`](super::Store::record); `context` must be the one that
    /// was digested.
    pub fn files(&self, context: &ContextFiles) -> FileDigests {
        debug_assert_eq!(context.entries.len(), self.contents.len());
        FileDigests(
            context
                .entries
                .iter()
                .zip(&self.contents)
                .map(|(entry, content)| FileDigest {
                    rel: entry.rel.clone(),
                    mode: entry.mode,
                    content: *content,
                })
                .collect(),
        )
    }
}

/// The aggregate digest: fixed-size chunks of entries are hashed (in parallel when there are
/// several), then the chunk digests are hashed together with the entry count. `known[c]` is chunk
/// `c`'s digest when the memo vouches for it. Returns the digest and every chunk digest.
pub(super) fn aggregate<'a, F>(
    count: usize,
    entry: F,
    known: &[Option<[u8; 32]>],
) -> (Digest, Vec<[u8; 32]>)
where
    F: Fn(usize) -> (&'a str, u32, &'a Content) + Sync,
{
    let chunks = count.div_ceil(AGGREGATE_CHUNK);
    let hash_chunk = |chunk: usize| -> [u8; 32] {
        let mut hasher = Sha256::new();
        let mut buf = Vec::with_capacity(64 * 1024);
        let end = count.min((chunk + 1) * AGGREGATE_CHUNK);
        for i in chunk * AGGREGATE_CHUNK..end {
            let (rel, mode, content) = entry(i);
            put_u32(&mut buf, u32::try_from(rel.len()).unwrap_or(u32::MAX));
            buf.extend_from_slice(rel.as_bytes());
            put_u32(&mut buf, mode);
            match content {
                Content::Dir => buf.push(b'd'),
                Content::File(d) => {
                    buf.push(b'f');
                    buf.extend_from_slice(&d.0);
                }
                Content::Symlink(d) => {
                    buf.push(b'l');
                    buf.extend_from_slice(&d.0);
                }
            }
            if buf.len() >= 60 * 1024 {
                hasher.update(&buf);
                buf.clear();
            }
        }
        hasher.update(&buf);
        hasher.finalize().into()
    };
    let mut digests: Vec<[u8; 32]> = (0..chunks)
        .map(|c| known.get(c).copied().flatten().unwrap_or_default())
        .collect();
    let missing: Vec<usize> = (0..chunks)
        .filter(|&c| known.get(c).copied().flatten().is_none())
        .collect();
    let workers = worker_count(missing.len());
    if workers <= 1 {
        for &c in &missing {
            digests[c] = hash_chunk(c);
        }
    } else {
        std::thread::scope(|scope| {
            let handles: Vec<_> = (0..workers)
                .map(|w| {
                    let (hash_chunk, missing) = (&hash_chunk, &missing);
                    scope.spawn(move || {
                        missing
                            .iter()
                            .skip(w)
                            .step_by(workers)
                            .map(|&c| (c, hash_chunk(c)))
                            .collect::<Vec<_>>()
                    })
                })
                .collect();
            for handle in handles {
                // A panicking worker is a bug in this file; re-raise it rather than return a wrong
                // digest.
                let done = handle
                    .join()
                    .unwrap_or_else(|panic| std::panic::resume_unwind(panic));
                for (c, d) in done {
                    digests[c] = d;
                }
            }
        });
    }
    let mut hasher = Sha256::new();
    hasher.update(b"devloop context\0");
    hasher.update((count as u64).to_le_bytes());
    for d in &digests {
        hasher.update(d);
    }
    (Digest(hasher.finalize().into()), digests)
}
