//! Cache stage, the hash memo in use: `ContextFiles` → a `ContextDigest`, reading only the files the memo of that
//! context root cannot vouch for, then rewriting the memo when that is worth it; it never walks contexts, and
//! failing to read or write the memo only costs speed.
//!
//! File contents are read at most once per change. A binary memo per context root remembers each entry's digest
//! under its `(mode, size, dev, ino, mtime, ctime)`, and the aggregate chunk digests too, so an unchanged context
//! costs one read of the memo and one comparison per entry (on every core), and an edit costs its files plus one
//! chunk. A large memo is rewritten only when the work it would save the next run is worth a rewrite.

use std::path::Path;
use std::time::{SystemTime, UNIX_EPOCH};

use super::context_digest::{Content, ContextDigest, HashStats, aggregate};
use super::envelope::{body, read_store_file};
use super::error::CacheError;
use super::hashing::hash_files;
use super::memo_format::{MEMO_MAGIC, encode_memo};
use super::memo_join::{Joined, join_memo, join_nothing};
use super::store::{Store, touch_if_stale};
use crate::context::ContextFiles;

impl Store {
    /// Digests a context, reading only files the memo cannot vouch for, and updates the memo.
    ///
    /// Failing to read a context file is an error; failing to read or write the memo only costs
    /// speed.
    pub fn digest_context(&self, context: &ContextFiles) -> Result<ContextDigest, CacheError> {
        let started = now_ns();
        let memo_path = self.memo_path(&context.root);
        let memo_bytes = read_store_file(&memo_path, MEMO_MAGIC);
        let memo_len = memo_bytes.as_ref().map_or(0, Vec::len);
        let joined = memo_bytes
            .as_deref()
            .and_then(|bytes| match join_memo(body(bytes), context) {
                Ok(joined) => Some(joined),
                Err(why) => {
                    tracing::warn!(path = %memo_path.display(), why, "ignoring corrupt memo file");
                    None
                }
            })
            .unwrap_or_else(|| join_nothing(context));
        let Joined {
            mut contents,
            todo,
            mut stats,
            all_trusted,
            chunks,
        } = joined;

        let hashed = hash_files(&context.root, &context.entries, &todo)?;
        let mut unstable = vec![false; context.entries.len()];
        for h in &hashed {
            contents[h.index] = Content::File(h.digest);
            stats.files_hashed += 1;
            stats.bytes_read += h.len;
            // The file changed between the walk and the read: its stat does not describe these
            // bytes.
            unstable[h.index] = h.len != context.entries[h.index].size;
        }
        let entry = |i: usize| {
            (
                context.entries[i].rel.as_str(),
                context.entries[i].mode,
                &contents[i],
            )
        };
        let (digest, chunk_digests) = aggregate(contents.len(), entry, &chunks);
        if all_trusted {
            touch_if_stale(&memo_path);
        } else {
            let rehashed_chunks = chunks.iter().filter(|c| c.is_none()).count()
                + chunk_digests.len().saturating_sub(chunks.len());
            if worth_rewriting(memo_len, contents.len(), &stats, rehashed_chunks) {
                self.write_memo(
                    &memo_path,
                    context,
                    &contents,
                    &unstable,
                    started,
                    &chunk_digests,
                );
            }
        }
        Ok(ContextDigest {
            digest,
            contents,
            stats,
        })
    }

    fn write_memo(
        &self,
        path: &Path,
        context: &ContextFiles,
        contents: &[Content],
        unstable: &[bool],
        started: i64,
        chunks: &[[u8; 32]],
    ) {
        let Some(bytes) = encode_memo(context, contents, unstable, started, chunks) else {
            tracing::warn!(root = %context.root.display(), "a path is too long for the hash memo");
            return;
        };
        if let Err(error) = self.write_atomic(path, &bytes, false) {
            tracing::warn!(%error, "cannot update the hash memo; the next run re-reads changed files");
        }
    }
}

pub(super) fn now_ns() -> i64 {
    let since = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap_or_default();
    i64::try_from(since.as_nanos()).unwrap_or(i64::MAX)
}

/// Whether to rewrite a memo after a run that could not trust all of it. Rewriting costs about two
/// passes over the memo; not rewriting costs the next run this run's reads and chunk hashing again
/// (both estimated in bytes). A one-file edit in a large context therefore leaves the memo alone
/// until edits add up. A memo much larger than the context needs (after entries were removed or
/// ignored) is rewritten too.
pub(super) fn worth_rewriting(
    memo_len: usize,
    entries: usize,
    stats: &HashStats,
    rehashed_chunks: usize,
) -> bool {
    /// What opening and hashing one more file costs, in bytes read.
    const FILE_COST: u64 = 64 * 1024;
    /// What hashing one aggregate chunk costs, in bytes read.
    const CHUNK_COST: u64 = 512 * 1024;
    let redo =
        stats.bytes_read + stats.files_hashed * FILE_COST + rehashed_chunks as u64 * CHUNK_COST;
    /// An upper bound of the memo bytes per entry (a file with a 50-byte path takes 131).
    const ENTRY_BOUND: usize = 256;
    memo_len == 0 || redo >= memo_len as u64 / 4 || memo_len > 4096 + entries * ENTRY_BOUND
}
