//! Cache stage, the memo format: a context's entries with their stat and content digests → the bytes of a memo
//! file, and those bytes → a header and a cursor over the entries; it decides nothing about trust and does no I/O.
//!
//! Memo file: header (hashed_at, entry count, complete flag, aggregate, root, block table), then the entries sorted
//! by path, each path prefix-compressed against the previous one except at the start of a block, so that threads
//! can each start joining at a block of their own.

use std::os::unix::ffi::OsStrExt;
use std::path::Path;

use super::context_digest::{AGGREGATE_CHUNK, Content};
use super::encoding::{
    KIND_DIR, KIND_FILE, KIND_SYMLINK, Reader, common_prefix, put_i64, put_u16, put_u32, put_u64,
};
use super::envelope::seal;
use crate::context::ContextFiles;

pub(super) const MEMO_MAGIC: &[u8; 8] = b"DLMEMO01";
/// Entries per memo block.
const MEMO_BLOCK: usize = 4096;

pub(super) struct MemoHeader<'a> {
    pub(super) hashed_at: i64,
    pub(super) count: u64,
    pub(super) complete: bool,
    /// Aggregate chunk digests of the context the memo was written for (none when it is not
    /// complete).
    pub(super) chunks: &'a [[u8; 32]],
    /// (index of the block's first entry, offset of that entry in `entries`)
    pub(super) blocks: Vec<(u64, usize)>,
    pub(super) entries: &'a [u8],
}

pub(super) fn parse_memo_header<'a>(
    body: &'a [u8],
    root: &Path,
) -> Result<MemoHeader<'a>, &'static str> {
    let mut r = Reader {
        bytes: body,
        pos: 0,
    };
    let bad = "truncated header";
    let hashed_at = r.i64().ok_or(bad)?;
    let count = r.u64().ok_or(bad)?;
    let complete = r.u8().ok_or(bad)? == 1;
    let root_len = usize::try_from(r.u32().ok_or(bad)?).map_err(|_| bad)?;
    if r.bytes(root_len).ok_or(bad)? != root.as_os_str().as_bytes() {
        return Err("memo of another context");
    }
    let chunk_count = usize::try_from(r.u32().ok_or(bad)?).map_err(|_| bad)?;
    let expected_chunks = if complete {
        usize::try_from(count)
            .map_err(|_| bad)?
            .div_ceil(AGGREGATE_CHUNK)
    } else {
        0
    };
    if chunk_count != expected_chunks {
        return Err("bad chunk count");
    }
    let chunks = r.bytes(chunk_count * 32).ok_or(bad)?.as_chunks::<32>().0;
    let block_count = usize::try_from(r.u32().ok_or(bad)?).map_err(|_| bad)?;
    if block_count
        != usize::try_from(count)
            .map_err(|_| bad)?
            .div_ceil(MEMO_BLOCK)
    {
        return Err("bad block count");
    }
    let mut blocks = Vec::with_capacity(block_count);
    for b in 0..block_count {
        let offset = usize::try_from(r.u64().ok_or(bad)?).map_err(|_| bad)?;
        blocks.push(((b * MEMO_BLOCK) as u64, offset));
    }
    let entries = &body[r.pos..];
    if blocks.windows(2).any(|w| w[0].1 >= w[1].1)
        || blocks.last().is_some_and(|b| b.1 >= entries.len())
    {
        return Err("bad block offsets");
    }
    Ok(MemoHeader {
        hashed_at,
        count,
        complete,
        chunks,
        blocks,
        entries,
    })
}

pub(super) struct MemoEntry {
    pub(super) kind: u8,
    pub(super) mode: u32,
    pub(super) size: u64,
    pub(super) dev: u64,
    pub(super) ino: u64,
    pub(super) mtime_ns: i64,
    pub(super) ctime_ns: i64,
    pub(super) digest: [u8; 32],
}

pub(super) struct MemoCursor<'a> {
    reader: Reader<'a>,
    remaining: u64,
    /// Index of the entry the next `advance` reads.
    pub(super) next: u64,
    pub(super) rel: Vec<u8>,
    pub(super) entry: MemoEntry,
}

impl<'a> MemoCursor<'a> {
    pub(super) fn at_block(header: &MemoHeader<'a>, block: usize) -> Self {
        let (first, offset) = header
            .blocks
            .get(block)
            .copied()
            .unwrap_or((header.count, 0));
        Self {
            reader: Reader {
                bytes: header.entries,
                pos: offset,
            },
            remaining: header.count - first,
            next: first,
            rel: Vec::with_capacity(256),
            entry: MemoEntry {
                kind: 0,
                mode: 0,
                size: 0,
                dev: 0,
                ino: 0,
                mtime_ns: 0,
                ctime_ns: 0,
                digest: [0; 32],
            },
        }
    }

    /// Moves to the next entry; `Ok(false)` at the end.
    pub(super) fn advance(&mut self) -> Result<bool, &'static str> {
        if self.remaining == 0 {
            return Ok(false);
        }
        self.remaining -= 1;
        self.next += 1;
        let r = &mut self.reader;
        let bad = "truncated entry";
        let head = r.array::<9>().ok_or(bad)?;
        let prefix = usize::from(u16::from_le_bytes([head[0], head[1]]));
        let suffix_len = usize::from(u16::from_le_bytes([head[2], head[3]]));
        let e = &mut self.entry;
        e.kind = head[4];
        e.mode = u32::from_le_bytes([head[5], head[6], head[7], head[8]]);
        if prefix > self.rel.len() {
            return Err("bad path prefix");
        }
        self.rel.truncate(prefix);
        self.rel.extend_from_slice(r.bytes(suffix_len).ok_or(bad)?);
        match e.kind {
            KIND_DIR => {}
            KIND_FILE => {
                let stat = r.array::<72>().ok_or(bad)?;
                let word = |at: usize| {
                    let mut w = [0u8; 8];
                    w.copy_from_slice(&stat[at..at + 8]);
                    w
                };
                e.size = u64::from_le_bytes(word(0));
                e.dev = u64::from_le_bytes(word(8));
                e.ino = u64::from_le_bytes(word(16));
                e.mtime_ns = i64::from_le_bytes(word(24));
                e.ctime_ns = i64::from_le_bytes(word(32));
                e.digest.copy_from_slice(&stat[40..72]);
            }
            KIND_SYMLINK => e.digest = *r.array::<32>().ok_or(bad)?,
            _ => return Err("unknown entry kind"),
        }
        Ok(true)
    }
}

/// The path of a block's first entry (stored whole).
pub(super) fn block_first_rel<'a>(header: &MemoHeader<'a>, block: usize) -> Option<&'a [u8]> {
    let mut r = Reader {
        bytes: header.entries,
        pos: header.blocks.get(block)?.1,
    };
    let head = r.array::<9>()?;
    let len = usize::from(u16::from_le_bytes([head[2], head[3]]));
    r.bytes(len)
}

/// Encodes a memo; `None` when a path does not fit the format (longer than 64 KiB).
pub(super) fn encode_memo(
    context: &ContextFiles,
    contents: &[Content],
    unstable: &[bool],
    hashed_at: i64,
    chunks: &[[u8; 32]],
) -> Option<Vec<u8>> {
    let root = context.root.as_os_str().as_bytes();
    let stored = context.entries.len() - unstable.iter().filter(|u| **u).count();
    let mut failed = false;
    let bytes = seal(MEMO_MAGIC, |out| {
        let blocks = stored.div_ceil(MEMO_BLOCK);
        out.reserve(64 + root.len() + blocks * 8 + context.entries.len() * 96);
        put_i64(out, hashed_at);
        put_u64(out, stored as u64);
        let complete = stored == context.entries.len();
        out.push(u8::from(complete));
        put_u32(out, u32::try_from(root.len()).unwrap_or(u32::MAX));
        out.extend_from_slice(root);
        // Chunk digests are only valid for a memo that has every entry at its index.
        let chunks = if complete { chunks } else { &[] };
        put_u32(out, u32::try_from(chunks.len()).unwrap_or(u32::MAX));
        out.extend_from_slice(chunks.as_flattened());
        put_u32(out, u32::try_from(blocks).unwrap_or(u32::MAX));
        let table = out.len();
        out.resize(table + blocks * 8, 0);
        let start = out.len();
        let mut previous: &[u8] = &[];
        let mut written = 0usize;
        for ((entry, content), unstable) in context.entries.iter().zip(contents).zip(unstable) {
            if *unstable {
                continue;
            }
            let rel = entry.rel.as_bytes();
            if written.is_multiple_of(MEMO_BLOCK) {
                let at = table + written / MEMO_BLOCK * 8;
                let offset = (out.len() - start) as u64;
                out[at..at + 8].copy_from_slice(&offset.to_le_bytes());
                previous = &[];
            }
            written += 1;
            let prefix = common_prefix(previous, rel);
            let (Ok(prefix16), Ok(suffix16)) =
                (u16::try_from(prefix), u16::try_from(rel.len() - prefix))
            else {
                failed = true;
                return;
            };
            put_u16(out, prefix16);
            put_u16(out, suffix16);
            let (kind, digest) = match content {
                Content::Dir => (KIND_DIR, None),
                Content::File(digest) => (KIND_FILE, Some(digest)),
                Content::Symlink(digest) => (KIND_SYMLINK, Some(digest)),
            };
            out.push(kind);
            put_u32(out, entry.mode);
            out.extend_from_slice(&rel[prefix..]);
            if kind == KIND_FILE {
                put_u64(out, entry.size);
                put_u64(out, entry.dev);
                put_u64(out, entry.ino);
                put_i64(out, entry.mtime_ns);
                put_i64(out, entry.ctime_ns);
            }
            if let Some(digest) = digest {
                out.extend_from_slice(&digest.0);
            }
            previous = rel;
        }
    });
    (!failed).then_some(bytes)
}
