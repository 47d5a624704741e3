//! Cache stage: `ContextFiles` + build inputs → content digests, a `CacheKey`, and the on-disk
//! store of build records; it never walks contexts, talks to Docker, spawns long-lived tasks or
//! prints.
//!
//! The key of an artifact is a sha256 over a `Serialize` struct of every input ([`KeyInputs`]),
//! encoded as JSON (struct fields in declaration order, maps as `BTreeMap`, no floats — so the
//! encoding is canonical).
//!
//! File contents are read at most once per change. A binary memo per context root remembers each
//! entry's digest under its `(mode, size, dev, ino, mtime, ctime)`. An entry whose timestamps are
//! not safely older than the start of the run that read it ("racily clean", as in git) is not
//! trusted and is read again. The context digest hashes fixed chunks of entries, and the memo keeps
//! the chunk digests too, so an unchanged context costs one read of the memo and one comparison per
//! entry (on every core), and an edit costs its files plus one chunk. A large memo is rewritten
//! only when the work it would save the next run is worth a rewrite.
//!
//! Store layout (`<dir>` from [`default_dir`] or explicit): `memo/<sha256(context root)>.memo`,
//! `keys/<key>.rec` (for [`Store::lookup`]), `last/<sha256(project dir, artifact)>.rec` (for
//! [`Store::last_build`] and [`explain`]), `lock`, `gc-stamp`, `CACHEDIR.TAG`. Every file is
//! written to a temporary file in the same directory and renamed over the old one, under a shared
//! lock that garbage collection takes exclusively; readers need no lock. Every file ends with a
//! checksum: a file that is truncated, corrupt or of another format is treated as missing (with a
//! `tracing` warning) and replaced by the next write. Records are synced before the rename; memos
//! are not (they are rewritten often, and a memo lost in a crash only costs one re-read).
//!
//! Files, bottom-up (each names only files listed before it): `error` ([`CacheError`]); `digest` (sha256 and its
//! hex); `key` ([`KeyInputs`] → [`CacheKey`]); `encoding` (the integers and paths both binary formats are made
//! of); `envelope` (the magic and checksum around every store file); `hashing` (file contents, on every core);
//! `context_digest` (entry contents → [`ContextDigest`]); `memo_format` and `memo_join` (the memo's bytes, and
//! which files it vouches for); `record` ([`Record`] and its file format); `store` ([`Store`]: directory, lock,
//! atomic writes, records); `memo` ([`Store::digest_context`]); `gc` ([`Store::gc`]); `explain`.

mod context_digest;
mod digest;
mod encoding;
mod envelope;
mod error;
mod explain;
mod gc;
mod hashing;
mod key;
mod memo;
mod memo_format;
mod memo_join;
mod record;
mod store;
#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests;

pub use context_digest::{Content, ContextDigest, FileDigest, FileDigests, HashStats};
pub use digest::Digest;
pub use error::CacheError;
pub use explain::{ArgChange, BaseImageState, Change, PathSample, explain};
pub use gc::{GcPolicy, GcReport};
pub use key::{CacheKey, KEY_VERSION, KeyInputs, build_arg_digests, ignore_digest, key};
pub use record::{LastBuild, Record};
pub use store::{Store, default_dir};
