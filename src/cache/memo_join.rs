//! Cache stage, joining a context with its memo: the walked entries + a memo → which files must be read, and the
//! content digests and aggregate chunks the memo vouches for; it reads no file contents and writes nothing.
//!
//! An entry whose timestamps are not safely older than the start of the run that read it ("racily clean", as in
//! git) is not trusted and is read again.

use super::context_digest::{AGGREGATE_CHUNK, Content, HashStats};
use super::digest::Digest;
use super::encoding::{KIND_DIR, KIND_FILE, KIND_SYMLINK};
use super::hashing::worker_count;
use super::memo_format::{MemoCursor, MemoEntry, MemoHeader, block_first_rel, parse_memo_header};
use crate::context::{ContextEntry, ContextFiles, EntryKind};

/// Timestamp margin for files whose timestamps carry sub-second precision: covers the kernel's
/// coarse clock (one jiffy, ≤ 10 ms) with room to spare.
pub(super) const FINE_MARGIN_NS: i64 = 100_000_000;
/// Timestamp margin for files whose timestamps are whole seconds (FAT keeps 2 s, some network
/// filesystems 1 s).
const COARSE_MARGIN_NS: i64 = 2_000_000_000;
/// Below this many entries one thread joins the memo: starting threads would cost more than they
/// save.
pub(super) const PARALLEL_JOIN_MIN: usize = 16_384;

pub(super) struct Joined {
    pub(super) contents: Vec<Content>,
    /// Indexes of the files to read.
    pub(super) todo: Vec<usize>,
    pub(super) stats: HashStats,
    /// Every context entry matched a trusted memo entry and the memo has no other entries.
    pub(super) all_trusted: bool,
    /// Aggregate chunk digests the memo vouches for (every entry of the chunk unchanged, at the
    /// same index).
    pub(super) chunks: Vec<Option<[u8; 32]>>,
}

pub(super) fn join_nothing(context: &ContextFiles) -> Joined {
    let mut contents = Vec::with_capacity(context.entries.len());
    let mut todo = Vec::new();
    for (i, entry) in context.entries.iter().enumerate() {
        contents.push(match &entry.kind {
            EntryKind::Dir => Content::Dir,
            EntryKind::Symlink { target } => Content::Symlink(Digest::of(target.as_bytes())),
            EntryKind::File => {
                todo.push(i);
                Content::Dir
            }
        });
    }
    Joined {
        contents,
        todo,
        stats: HashStats::default(),
        all_trusted: false,
        chunks: Vec::new(),
    }
}

/// What one thread found for a range of the context.
struct RangeJoin {
    todo: Vec<usize>,
    reused: u64,
    /// Entries that did not match the memo entry of the same index.
    dirty: Vec<usize>,
}

/// Matches the context against the memo (both sorted by path) and decides which files must be read,
/// splitting large contexts between threads.
pub(super) fn join_memo(body: &[u8], context: &ContextFiles) -> Result<Joined, &'static str> {
    let header = parse_memo_header(body, &context.root)?;
    let entries = &context.entries;
    let mut contents = vec![Content::Dir; entries.len()];
    let workers = if entries.len() >= PARALLEL_JOIN_MIN {
        worker_count(entries.len())
    } else {
        1
    };
    let part = entries.len().div_ceil(workers.max(1)).max(1);
    let ranges: Vec<Result<RangeJoin, &'static str>> = if workers <= 1 {
        vec![join_range(&header, entries, 0, &mut contents)]
    } else {
        std::thread::scope(|scope| {
            let header = &header;
            let handles: Vec<_> = entries
                .chunks(part)
                .zip(contents.chunks_mut(part))
                .enumerate()
                .map(|(i, (entries, contents))| {
                    scope.spawn(move || join_range(header, entries, i * part, contents))
                })
                .collect();
            handles
                .into_iter()
                .map(|h| {
                    h.join()
                        .unwrap_or_else(|panic| std::panic::resume_unwind(panic))
                })
                .collect()
        })
    };
    let mut todo = Vec::new();
    let mut stats = HashStats::default();
    let mut chunks: Vec<Option<[u8; 32]>> = (0..entries.len().div_ceil(AGGREGATE_CHUNK))
        .map(|c| {
            // A chunk covers the same indexes in the memo's context only if both end at the same
            // index.
            let end = |count: usize| count.min((c + 1) * AGGREGATE_CHUNK);
            let memo_count = usize::try_from(header.count).unwrap_or(usize::MAX);
            header
                .chunks
                .get(c)
                .copied()
                .filter(|_| end(memo_count) == end(entries.len()))
        })
        .collect();
    let mut all_trusted = header.complete && header.count == entries.len() as u64;
    for range in ranges {
        let range = range?;
        todo.extend(range.todo);
        stats.files_reused += range.reused;
        all_trusted &= range.dirty.is_empty();
        for i in range.dirty {
            chunks[i / AGGREGATE_CHUNK] = None;
        }
    }
    Ok(Joined {
        contents,
        todo,
        stats,
        all_trusted,
        chunks,
    })
}

/// Joins `entries` (the context's entries from index `base` on) with the memo, filling `contents`.
fn join_range(
    header: &MemoHeader<'_>,
    entries: &[ContextEntry],
    base: usize,
    contents: &mut [Content],
) -> Result<RangeJoin, &'static str> {
    let mut out = RangeJoin {
        todo: Vec::new(),
        reused: 0,
        dirty: Vec::new(),
    };
    let Some(first) = entries.first() else {
        return Ok(out);
    };
    // The last block starting at or before the first path; paths before it cannot match.
    let (mut lo, mut hi) = (0, header.blocks.len());
    while lo < hi {
        let mid = (lo + hi) / 2;
        if block_first_rel(header, mid).ok_or("bad block")? <= first.rel.as_bytes() {
            lo = mid + 1;
        } else {
            hi = mid;
        }
    }
    let mut cursor = MemoCursor::at_block(header, lo.saturating_sub(1));
    let mut have = cursor.advance()?;
    for (i, (entry, content)) in entries.iter().zip(contents.iter_mut()).enumerate() {
        let rel = entry.rel.as_bytes();
        let mut found = false;
        while have {
            match cursor.rel.as_slice().cmp(rel) {
                std::cmp::Ordering::Less => have = cursor.advance()?,
                std::cmp::Ordering::Equal => {
                    found = true;
                    break;
                }
                std::cmp::Ordering::Greater => break,
            }
        }
        let m = found.then_some(&cursor.entry);
        let matched = match &entry.kind {
            EntryKind::Dir => m.is_some_and(|m| m.kind == KIND_DIR && m.mode == entry.mode),
            EntryKind::Symlink { target } => {
                let digest = Digest::of(target.as_bytes());
                *content = Content::Symlink(digest);
                m.is_some_and(|m| {
                    m.kind == KIND_SYMLINK && m.mode == entry.mode && m.digest == digest.0
                })
            }
            EntryKind::File => match m.filter(|m| file_matches(m, entry, header.hashed_at)) {
                Some(m) => {
                    *content = Content::File(Digest(m.digest));
                    out.reused += 1;
                    true
                }
                None => {
                    out.todo.push(base + i);
                    false
                }
            },
        };
        if !(matched && cursor.next == (base + i + 1) as u64) {
            out.dirty.push(base + i);
        }
        if found {
            have = cursor.advance()?;
        }
    }
    Ok(out)
}

/// Whether a memo entry still describes the file: same stat, and the stat was already settled when
/// the memo's run started reading (otherwise a later write within the same timestamp tick would go
/// unnoticed).
fn file_matches(m: &MemoEntry, entry: &ContextEntry, hashed_at: i64) -> bool {
    let same = m.kind == KIND_FILE
        && m.mode == entry.mode
        && m.size == entry.size
        && m.dev == entry.dev
        && m.ino == entry.ino
        && m.mtime_ns == entry.mtime_ns
        && m.ctime_ns == entry.ctime_ns;
    let whole_seconds = entry.mtime_ns % 1_000_000_000 == 0 && entry.ctime_ns % 1_000_000_000 == 0;
    let margin = if whole_seconds {
        COARSE_MARGIN_NS
    } else {
        FINE_MARGIN_NS
    };
    same && entry.mtime_ns.max(entry.ctime_ns) < hashed_at.saturating_sub(margin)
}
