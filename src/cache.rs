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

use std::collections::BTreeMap;
use std::ffi::OsString;
use std::fmt;
use std::fs::{self, File, TryLockError};
use std::io::{self, Read, Write};
use std::os::unix::ffi::OsStrExt;
use std::path::{Path, PathBuf};
use std::sync::Mutex;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use serde::{Deserialize, Deserializer, Serialize, Serializer};
use sha2::{Digest as _, Sha256};

use crate::context::{ContextEntry, ContextFiles, EntryKind, IgnoreRules};

/// Version of the key derivation; bump it whenever what goes into a key or how it is hashed
/// changes.
pub const KEY_VERSION: u32 = 1;

const MEMO_MAGIC: &[u8; 8] = b"DLMEMO01";
const RECORD_MAGIC: &[u8; 8] = b"DLRECO01";
const CACHEDIR_TAG: &str = "Signature: 8a477f597d28d172789f06886806bc55\n\
# This file is a cache directory tag created by devloop.\n\
# For information about cache directory tags see https://bford.info/cachedir/\n";

/// Read buffer per hashing thread; large enough that almost every source file arrives in one
/// `read`.
const READ_BUFFER: usize = 256 * 1024;
/// Entries per chunk of the aggregate context digest (fixed, so the digest does not depend on the
/// thread count).
const AGGREGATE_CHUNK: usize = 8192;
/// Timestamp margin for files whose timestamps carry sub-second precision: covers the kernel's
/// coarse clock (one jiffy, ≤ 10 ms) with room to spare.
const FINE_MARGIN_NS: i64 = 100_000_000;
/// Timestamp margin for files whose timestamps are whole seconds (FAT keeps 2 s, some network
/// filesystems 1 s).
const COARSE_MARGIN_NS: i64 = 2_000_000_000;
/// How many paths of each kind `explain` names before it only counts.
const EXPLAIN_PATHS: usize = 3;
/// A store file read after this long unused gets its mtime refreshed, which is what GC ages by.
const TOUCH_AFTER: Duration = Duration::from_secs(24 * 60 * 60);
/// `gc_if_due` runs at most this often.
const GC_INTERVAL: Duration = Duration::from_secs(24 * 60 * 60);
/// Temporary files older than this were left by a crashed writer.
const STALE_TEMP: Duration = Duration::from_secs(60 * 60);
const SUBDIRS: [&str; 3] = ["memo", "keys", "last"];

/// Errors of the cache stage.
#[derive(Debug, thiserror::Error)]
pub enum CacheError {
    /// No environment variable names a cache directory.
    #[error(
        "cannot find a cache directory: none of `DEVLOOP_CACHE_DIR`, `XDG_CACHE_HOME` and `HOME` is set\n\nhint: set `DEVLOOP_CACHE_DIR` to a writable directory"
    )]
    NoCacheDir,
    /// The cache directory cannot be created or written.
    #[error(
        "cache directory `{dir}` is not writable: {source}\n\nhint: fix its permissions, or set `DEVLOOP_CACHE_DIR` to a writable directory"
    )]
    Unwritable {
        dir: PathBuf,
        #[source]
        source: io::Error,
    },
    /// A context file could not be read for hashing.
    #[error("cannot read `{path}` to hash it: {source}")]
    Read {
        path: PathBuf,
        #[source]
        source: io::Error,
    },
    /// A store file could not be written.
    #[error(
        "cannot write cache file `{path}`: {source}\n\nhint: set `DEVLOOP_CACHE_DIR` to a writable directory with free space"
    )]
    Write {
        path: PathBuf,
        #[source]
        source: io::Error,
    },
    /// A build record could not be encoded (a path that is not UTF-8).
    #[error("cannot encode the build record of `{artifact}`: {source}")]
    Encode {
        artifact: String,
        #[source]
        source: serde_json::Error,
    },
}

// -------------------------------------------------------------------------------------------------
// Digests and keys

/// A sha256 digest; displayed and serialized as 64 lowercase hex digits.
#[derive(Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Digest(pub [u8; 32]);

impl Digest {
    /// The sha256 of `bytes`.
    pub fn of(bytes: &[u8]) -> Self {
        Self(Sha256::digest(bytes).into())
    }

    /// The 64-digit lowercase hex form.
    pub fn to_hex(&self) -> String {
        hex(&self.0)
    }

    fn from_hex(s: &str) -> Option<Self> {
        let bytes = s.as_bytes();
        if bytes.len() != 64 {
            return None;
        }
        let mut out = [0u8; 32];
        for (o, pair) in out.iter_mut().zip(bytes.chunks_exact(2)) {
            *o = (hex_value(pair[0])? << 4) | hex_value(pair[1])?;
        }
        Some(Self(out))
    }
}

impl fmt::Display for Digest {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.to_hex())
    }
}

impl fmt::Debug for Digest {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Digest({self})")
    }
}

impl Serialize for Digest {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.serialize_str(&self.to_hex())
    }
}

impl<'de> Deserialize<'de> for Digest {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let s = String::deserialize(deserializer)?;
        Self::from_hex(&s)
            .ok_or_else(|| serde::de::Error::custom(format!("`{s}` is not a sha256 hex digest")))
    }
}

fn hex(bytes: &[u8]) -> String {
    const DIGITS: &[u8; 16] = b"0123456789abcdef";
    let mut s = String::with_capacity(bytes.len() * 2);
    for b in bytes {
        s.push(char::from(DIGITS[usize::from(b >> 4)]));
        s.push(char::from(DIGITS[usize::from(b & 0x0f)]));
    }
    s
}

fn hex_value(c: u8) -> Option<u8> {
    match c {
        b'0'..=b'9' => Some(c - b'0'),
        b'a'..=b'f' => Some(c - b'a' + 10),
        _ => None,
    }
}

/// The cache key of an artifact: the lowercase hex sha256 of its [`KeyInputs`].
#[derive(Clone, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct CacheKey(String);

impl CacheKey {
    /// The full 64-digit hex key.
    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// The first 12 hex digits, for tags and display.
    pub fn short(&self) -> &str {
        &self.0[..12]
    }
}

impl fmt::Display for CacheKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl fmt::Debug for CacheKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "CacheKey({})", self.0)
    }
}

impl TryFrom<String> for CacheKey {
    type Error = String;

    fn try_from(s: String) -> Result<Self, String> {
        match Digest::from_hex(&s) {
            Some(_) => Ok(Self(s)),
            None => Err(format!("`{s}` is not a cache key")),
        }
    }
}

impl From<CacheKey> for String {
    fn from(key: CacheKey) -> Self {
        key.0
    }
}

impl From<Digest> for CacheKey {
    fn from(digest: Digest) -> Self {
        Self(digest.to_hex())
    }
}

/// Every input of an artifact's cache key. Hashed by [`key`]; stored in build records for
/// [`explain`].
///
/// Build-arg values are kept as digests only, so records on disk never hold secrets passed as build
/// args.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct KeyInputs {
    /// [`KEY_VERSION`] at the time the key was computed.
    pub key_version: u32,
    /// [`ContextDigest::digest`] of the build context.
    pub context_digest: Digest,
    /// sha256 of the Dockerfile bytes.
    pub dockerfile_digest: Digest,
    /// The build target stage, if any.
    pub target: Option<String>,
    /// Evaluated build args: name → sha256 of the value (see [`build_arg_digests`]).
    pub build_args: BTreeMap<String, Digest>,
    /// [`ignore_digest`] of the ignore rules that applied.
    pub ignore_digest: Digest,
    /// Target platform (`linux/amd64`), if set.
    pub platform: Option<String>,
    /// Keys of the artifacts this one requires, by image name.
    pub required: BTreeMap<String, CacheKey>,
    /// Base image reference → image ID of the local image, `None` when the daemon does not have it.
    pub base_images: BTreeMap<String, Option<String>>,
}

impl KeyInputs {
    /// Inputs for a context, Dockerfile and ignore rules, with no target, args, platform,
    /// requirements or bases.
    pub fn new(context_digest: Digest, dockerfile: &[u8], ignore: &IgnoreRules) -> Self {
        Self {
            key_version: KEY_VERSION,
            context_digest,
            dockerfile_digest: Digest::of(dockerfile),
            target: None,
            build_args: BTreeMap::new(),
            ignore_digest: ignore_digest(ignore),
            platform: None,
            required: BTreeMap::new(),
            base_images: BTreeMap::new(),
        }
    }
}

/// The cache key of `inputs`: sha256 over their canonical JSON encoding.
pub fn key(inputs: &KeyInputs) -> CacheKey {
    let mut hasher = Sha256::new();
    // serde_json fails only on non-string map keys, a failing `Serialize` impl or a failing writer;
    // `KeyInputs` has none of these, so a failure is a bug in this file.
    #[allow(clippy::expect_used)]
    serde_json::to_writer(HashWriter(&mut hasher), inputs).expect("`KeyInputs` always encodes");
    CacheKey::from(Digest(hasher.finalize().into()))
}

struct HashWriter<'a>(&'a mut Sha256);

impl Write for HashWriter<'_> {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        self.0.update(buf);
        Ok(buf.len())
    }

    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}

/// Digests of build-arg values, for [`KeyInputs::build_args`].
pub fn build_arg_digests<'a>(
    args: impl IntoIterator<Item = (&'a str, &'a str)>,
) -> BTreeMap<String, Digest> {
    args.into_iter()
        .map(|(name, value)| (name.to_owned(), Digest::of(value.as_bytes())))
        .collect()
}

/// The digest of ignore rules: their text (where it came from does not change which files are
/// sent).
pub fn ignore_digest(rules: &IgnoreRules) -> Digest {
    Digest::of(rules.text.as_bytes())
}

// -------------------------------------------------------------------------------------------------
// Context digests

/// What one context entry contributes to the context digest.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Content {
    Dir,
    /// sha256 of the file's bytes.
    File(Digest),
    /// sha256 of the raw link text.
    Symlink(Digest),
}

/// One entry of a context as recorded for [`explain`].
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
    /// Per-entry digests with their paths, for [`Store::record`]; `context` must be the one that
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
fn aggregate<'a, F>(count: usize, entry: F, known: &[Option<[u8; 32]>]) -> (Digest, Vec<[u8; 32]>)
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

fn worker_count(items: usize) -> usize {
    let cores = std::thread::available_parallelism().map_or(1, usize::from);
    cores.min(items).min(16)
}

// -------------------------------------------------------------------------------------------------
// The store

/// A cache store directory shared by every project and artifact of a user (and by concurrent
/// devloop processes).
#[derive(Debug, Clone)]
pub struct Store {
    dir: PathBuf,
}

/// What the builder produced and under which inputs; one per successful build.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Record {
    /// The artifact's image name (as in devloop.yaml).
    pub artifact: String,
    /// The project directory the artifact belongs to.
    pub project_dir: PathBuf,
    pub key: CacheKey,
    pub inputs: KeyInputs,
    pub image_id: String,
    pub tag: String,
    /// `sha256:…` of the pushed manifest, when the image was pushed.
    pub pushed_digest: Option<String>,
    /// Seconds since the Unix epoch.
    pub recorded_at: u64,
}

/// The last build of an artifact with the per-entry digests of its context, for [`explain`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LastBuild {
    pub record: Record,
    pub files: FileDigests,
}

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

/// The default store directory: `$DEVLOOP_CACHE_DIR`, else `$XDG_CACHE_HOME/devloop`, else
/// `$HOME/.cache/devloop` (`$HOME/Library/Caches/devloop` on macOS).
pub fn default_dir() -> Result<PathBuf, CacheError> {
    dir_from_env(|name| std::env::var_os(name), cfg!(target_os = "macos"))
}

fn dir_from_env(
    var: impl Fn(&str) -> Option<OsString>,
    macos: bool,
) -> Result<PathBuf, CacheError> {
    let set = |name: &str| var(name).filter(|v| !v.is_empty()).map(PathBuf::from);
    if let Some(dir) = set("DEVLOOP_CACHE_DIR") {
        return Ok(dir);
    }
    if !macos {
        // The XDG spec says relative values are invalid and must be ignored.
        if let Some(dir) = set("XDG_CACHE_HOME").filter(|d| d.is_absolute()) {
            return Ok(dir.join("devloop"));
        }
    }
    let home = set("HOME").ok_or(CacheError::NoCacheDir)?;
    Ok(if macos {
        home.join("Library/Caches/devloop")
    } else {
        home.join(".cache/devloop")
    })
}

impl Store {
    /// Opens (creating it if needed) the store in `dir` and checks that it is writable.
    pub fn open(dir: impl Into<PathBuf>) -> Result<Self, CacheError> {
        let dir = dir.into();
        let unwritable = |source| CacheError::Unwritable {
            dir: dir.clone(),
            source,
        };
        for sub in SUBDIRS {
            fs::create_dir_all(dir.join(sub)).map_err(unwritable)?;
        }
        File::options()
            .create(true)
            .append(true)
            .open(dir.join("lock"))
            .map_err(unwritable)?;
        // Files exist already in a read-only directory; only creating one proves writes will work.
        tempfile::Builder::new()
            .prefix(".tmp")
            .tempfile_in(&dir)
            .map_err(unwritable)?;
        let tag = dir.join("CACHEDIR.TAG");
        if !tag.exists() {
            fs::write(&tag, CACHEDIR_TAG).map_err(unwritable)?;
        }
        Ok(Self { dir })
    }

    /// The store directory.
    pub fn dir(&self) -> &Path {
        &self.dir
    }

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

    /// Records a successful build: findable by key ([`Store::lookup`]) and as the artifact's last
    /// build.
    pub fn record(&self, record: &Record, files: &FileDigests) -> Result<(), CacheError> {
        debug_assert_eq!(files.digest(), record.inputs.context_digest);
        let encode = |files: Option<&FileDigests>| {
            encode_record(record, files).map_err(|source| CacheError::Encode {
                artifact: record.artifact.clone(),
                source,
            })
        };
        self.write_atomic(&self.key_path(&record.key), &encode(None)?, true)?;
        self.write_atomic(
            &self.last_path(&record.project_dir, &record.artifact),
            &encode(Some(files))?,
            true,
        )
    }

    /// The record of a build with this key, if one was recorded (the image itself may be gone
    /// since).
    pub fn lookup(&self, key: &CacheKey) -> Option<Record> {
        let path = self.key_path(key);
        let (record, _) = self.read_record(&path)?;
        if &record.key != key {
            tracing::warn!(path = %path.display(), "ignoring a build record filed under another key");
            return None;
        }
        Some(record)
    }

    /// The last recorded build of `artifact` in `project_dir`, with its per-entry digests.
    pub fn last_build(&self, project_dir: &Path, artifact: &str) -> Option<LastBuild> {
        let path = self.last_path(project_dir, artifact);
        let (record, files) = self.read_record(&path)?;
        if record.artifact != artifact || files.digest() != record.inputs.context_digest {
            tracing::warn!(path = %path.display(), "ignoring an inconsistent build record");
            return None;
        }
        Some(LastBuild { record, files })
    }

    /// Removes store files unused for `policy.max_age`, then the least recently used ones while the
    /// store is larger than `policy.max_bytes`. Waits for writers in other processes to finish.
    pub fn gc(&self, policy: &GcPolicy) -> Result<GcReport, CacheError> {
        let lock = self.lock_file()?;
        lock.lock().map_err(|source| CacheError::Write {
            path: self.dir.join("lock"),
            source,
        })?;
        self.gc_locked(policy)
    }

    /// Runs [`Store::gc`] when the last collection is more than a day old and no other process is
    /// writing; `None` when it did not run.
    pub fn gc_if_due(&self, policy: &GcPolicy) -> Result<Option<GcReport>, CacheError> {
        let stamp = self.dir.join("gc-stamp");
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
                    path: self.dir.join("lock"),
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
            let dir = self.dir.join(sub);
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

    fn read_record(&self, path: &Path) -> Option<(Record, FileDigests)> {
        let bytes = read_store_file(path, RECORD_MAGIC)?;
        match decode_record(body(&bytes)) {
            Ok(decoded) => {
                touch_if_stale(path);
                Some(decoded)
            }
            Err(why) => {
                tracing::warn!(path = %path.display(), why, "ignoring corrupt build record");
                None
            }
        }
    }

    fn memo_path(&self, root: &Path) -> PathBuf {
        let name = Digest::of(root.as_os_str().as_bytes());
        self.dir.join("memo").join(format!("{name}.memo"))
    }

    fn key_path(&self, key: &CacheKey) -> PathBuf {
        self.dir.join("keys").join(format!("{key}.rec"))
    }

    fn last_path(&self, project_dir: &Path, artifact: &str) -> PathBuf {
        // The same project reached through a symlink or a relative path must find the same record.
        let project = fs::canonicalize(project_dir).unwrap_or_else(|_| project_dir.to_path_buf());
        let mut id = Vec::new();
        id.extend_from_slice(project.as_os_str().as_bytes());
        id.push(0);
        id.extend_from_slice(artifact.as_bytes());
        self.dir
            .join("last")
            .join(format!("{}.rec", Digest::of(&id)))
    }

    fn lock_file(&self) -> Result<File, CacheError> {
        let path = self.dir.join("lock");
        File::options()
            .create(true)
            .append(true)
            .open(&path)
            .map_err(|source| CacheError::Write { path, source })
    }

    /// Replaces `path` with `bytes` so that readers see the old or the new file, never a mix.
    /// `durable` syncs the data before the rename; without it a crash may leave a truncated or
    /// zeroed file, which the checksum turns into a miss.
    fn write_atomic(&self, path: &Path, bytes: &[u8], durable: bool) -> Result<(), CacheError> {
        let error = |source| CacheError::Write {
            path: path.to_path_buf(),
            source,
        };
        // Each write opens the lock file anew: a `flock` belongs to the open file, and sharing one
        // between threads would let one thread's unlock end another's.
        let lock = self.lock_file()?;
        lock.lock_shared().map_err(error)?;
        let dir = path.parent().unwrap_or(&self.dir);
        let mut tmp = tempfile::Builder::new()
            .prefix(".tmp")
            .tempfile_in(dir)
            .map_err(error)?;
        tmp.write_all(bytes).map_err(error)?;
        if durable {
            tmp.as_file().sync_data().map_err(error)?;
        }
        tmp.persist(path).map_err(|e| error(e.error))?;
        Ok(())
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

fn now_ns() -> i64 {
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
fn worth_rewriting(
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

/// Marks a store file as used (GC ages files by mtime); at most once a day per file, to keep reads
/// cheap.
fn touch_if_stale(path: &Path) {
    let Ok(file) = File::open(path) else { return };
    let stale = file
        .metadata()
        .and_then(|m| m.modified())
        .is_ok_and(|at| at.elapsed().is_ok_and(|a| a > TOUCH_AFTER));
    if stale && let Err(error) = file.set_modified(SystemTime::now()) {
        tracing::debug!(path = %path.display(), %error, "cannot refresh cache file mtime");
    }
}

/// Reads a whole store file and checks its magic and trailing checksum; `None` (with a warning
/// unless the file is simply absent) when it is unusable.
fn read_store_file(path: &Path, magic: &[u8; 8]) -> Option<Vec<u8>> {
    let bytes = match fs::read(path) {
        Ok(bytes) => bytes,
        Err(error) if error.kind() == io::ErrorKind::NotFound => return None,
        Err(error) => {
            tracing::warn!(path = %path.display(), %error, "cannot read cache file");
            return None;
        }
    };
    let valid = bytes.len() >= 16 && bytes.starts_with(magic) && {
        let (body, sum) = bytes.split_at(bytes.len() - 8);
        sum.first_chunk::<8>()
            .is_some_and(|s| u64::from_le_bytes(*s) == checksum64(body))
    };
    if !valid {
        tracing::warn!(path = %path.display(), "ignoring a truncated or corrupt cache file");
        return None;
    }
    Some(bytes)
}

/// The part of a store file read by `read_store_file` between magic and checksum.
fn body(bytes: &[u8]) -> &[u8] {
    bytes
        .get(8..bytes.len().saturating_sub(8))
        .unwrap_or_default()
}

/// Appends magic and checksum around an encoded body.
fn seal(magic: &[u8; 8], body_encoder: impl FnOnce(&mut Vec<u8>)) -> Vec<u8> {
    let mut out = Vec::new();
    out.extend_from_slice(magic);
    body_encoder(&mut out);
    let sum = checksum64(&out);
    out.extend_from_slice(&sum.to_le_bytes());
    out
}

/// A fast 64-bit checksum against truncation and corruption (not against tampering: whoever can
/// write the store owns the account anyway). Every step is a bijection of the lane state, so any
/// single changed 8-byte word is always detected.
fn checksum64(bytes: &[u8]) -> u64 {
    const K: [u64; 4] = [
        0x9E37_79B9_7F4A_7C15,
        0xC2B2_AE3D_27D4_EB4F,
        0x1656_67B1_9E37_79F9,
        0x85EB_CA77_C2B2_AE63,
    ];
    let mut lanes = K;
    let (blocks, tail) = bytes.as_chunks::<32>();
    let mut last = [0u8; 32];
    last[..tail.len()].copy_from_slice(tail);
    for block in blocks.iter().chain(std::iter::once(&last)) {
        for (j, word) in block.as_chunks::<8>().0.iter().enumerate() {
            lanes[j] = (lanes[j] ^ u64::from_le_bytes(*word))
                .wrapping_mul(K[j])
                .rotate_left(29);
        }
    }
    let mut h = bytes.len() as u64;
    for lane in lanes {
        h = (h ^ lane).wrapping_mul(K[0]).rotate_left(31);
    }
    h ^= h >> 33;
    h = h.wrapping_mul(K[1]);
    h ^ (h >> 29)
}

// -------------------------------------------------------------------------------------------------
// Memo file: header (hashed_at, entry count, complete flag, aggregate, root, block table), then the
// entries sorted by path, each path prefix-compressed against the previous one except at the start
// of a block, so that threads can each start joining at a block of their own.

const KIND_DIR: u8 = 0;
const KIND_FILE: u8 = 1;
const KIND_SYMLINK: u8 = 2;
/// Entries per memo block.
const MEMO_BLOCK: usize = 4096;
/// Below this many entries one thread joins the memo: starting threads would cost more than they
/// save.
const PARALLEL_JOIN_MIN: usize = 16_384;

struct Joined {
    contents: Vec<Content>,
    /// Indexes of the files to read.
    todo: Vec<usize>,
    stats: HashStats,
    /// Every context entry matched a trusted memo entry and the memo has no other entries.
    all_trusted: bool,
    /// Aggregate chunk digests the memo vouches for (every entry of the chunk unchanged, at the
    /// same index).
    chunks: Vec<Option<[u8; 32]>>,
}

fn join_nothing(context: &ContextFiles) -> Joined {
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

struct MemoHeader<'a> {
    hashed_at: i64,
    count: u64,
    complete: bool,
    /// Aggregate chunk digests of the context the memo was written for (none when it is not
    /// complete).
    chunks: &'a [[u8; 32]],
    /// (index of the block's first entry, offset of that entry in `entries`)
    blocks: Vec<(u64, usize)>,
    entries: &'a [u8],
}

fn parse_memo_header<'a>(body: &'a [u8], root: &Path) -> Result<MemoHeader<'a>, &'static str> {
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

struct MemoEntry {
    kind: u8,
    mode: u32,
    size: u64,
    dev: u64,
    ino: u64,
    mtime_ns: i64,
    ctime_ns: i64,
    digest: [u8; 32],
}

struct MemoCursor<'a> {
    reader: Reader<'a>,
    remaining: u64,
    /// Index of the entry the next `advance` reads.
    next: u64,
    rel: Vec<u8>,
    entry: MemoEntry,
}

impl<'a> MemoCursor<'a> {
    fn at_block(header: &MemoHeader<'a>, block: usize) -> Self {
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
    fn advance(&mut self) -> Result<bool, &'static str> {
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
fn block_first_rel<'a>(header: &MemoHeader<'a>, block: usize) -> Option<&'a [u8]> {
    let mut r = Reader {
        bytes: header.entries,
        pos: header.blocks.get(block)?.1,
    };
    let head = r.array::<9>()?;
    let len = usize::from(u16::from_le_bytes([head[2], head[3]]));
    r.bytes(len)
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
fn join_memo(body: &[u8], context: &ContextFiles) -> Result<Joined, &'static str> {
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

/// Encodes a memo; `None` when a path does not fit the format (longer than 64 KiB).
fn encode_memo(
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

fn common_prefix(a: &[u8], b: &[u8]) -> usize {
    a.iter().zip(b).take_while(|(x, y)| x == y).count()
}

// -------------------------------------------------------------------------------------------------
// Build record file: JSON of the `Record`, then the per-entry digests (prefix-compressed paths).

fn encode_record(
    record: &Record,
    files: Option<&FileDigests>,
) -> Result<Vec<u8>, serde_json::Error> {
    let json = serde_json::to_vec(record)?;
    let files = files.map_or(&[][..], |f| f.0.as_slice());
    Ok(seal(RECORD_MAGIC, |out| {
        put_u64(out, json.len() as u64);
        out.extend_from_slice(&json);
        put_u64(out, files.len() as u64);
        let mut previous: &[u8] = &[];
        for file in files {
            let rel = file.rel.as_bytes();
            let prefix = common_prefix(previous, rel);
            put_u64(out, prefix as u64);
            put_u64(out, (rel.len() - prefix) as u64);
            out.extend_from_slice(&rel[prefix..]);
            put_u32(out, file.mode);
            match file.content {
                Content::Dir => out.push(KIND_DIR),
                Content::File(d) => {
                    out.push(KIND_FILE);
                    out.extend_from_slice(&d.0);
                }
                Content::Symlink(d) => {
                    out.push(KIND_SYMLINK);
                    out.extend_from_slice(&d.0);
                }
            }
            previous = rel;
        }
    }))
}

fn decode_record(bytes: &[u8]) -> Result<(Record, FileDigests), &'static str> {
    let mut r = Reader { bytes, pos: 0 };
    let bad = "truncated record";
    let json_len = usize::try_from(r.u64().ok_or(bad)?).map_err(|_| bad)?;
    let record: Record =
        serde_json::from_slice(r.bytes(json_len).ok_or(bad)?).map_err(|_| "invalid record json")?;
    let count = r.u64().ok_or(bad)?;
    // Every entry takes at least 21 bytes, so a count beyond that is corrupt (and must not size an
    // allocation).
    if count > (bytes.len() / 21) as u64 {
        return Err(bad);
    }
    let mut files = Vec::with_capacity(usize::try_from(count).map_err(|_| bad)?);
    let mut rel = Vec::<u8>::new();
    for _ in 0..count {
        let prefix = usize::try_from(r.u64().ok_or(bad)?).map_err(|_| bad)?;
        let suffix = usize::try_from(r.u64().ok_or(bad)?).map_err(|_| bad)?;
        if prefix > rel.len() {
            return Err("bad path prefix");
        }
        rel.truncate(prefix);
        rel.extend_from_slice(r.bytes(suffix).ok_or(bad)?);
        let mode = r.u32().ok_or(bad)?;
        let content = match r.u8().ok_or(bad)? {
            KIND_DIR => Content::Dir,
            KIND_FILE => Content::File(Digest(*r.array::<32>().ok_or(bad)?)),
            KIND_SYMLINK => Content::Symlink(Digest(*r.array::<32>().ok_or(bad)?)),
            _ => return Err("unknown entry kind"),
        };
        let rel = String::from_utf8(rel.clone()).map_err(|_| "path is not utf-8")?;
        files.push(FileDigest { rel, mode, content });
    }
    if r.pos != bytes.len() {
        return Err("trailing bytes");
    }
    Ok((record, FileDigests(files)))
}

fn put_u16(out: &mut Vec<u8>, v: u16) {
    out.extend_from_slice(&v.to_le_bytes());
}
fn put_u32(out: &mut Vec<u8>, v: u32) {
    out.extend_from_slice(&v.to_le_bytes());
}
fn put_u64(out: &mut Vec<u8>, v: u64) {
    out.extend_from_slice(&v.to_le_bytes());
}
fn put_i64(out: &mut Vec<u8>, v: i64) {
    out.extend_from_slice(&v.to_le_bytes());
}

struct Reader<'a> {
    bytes: &'a [u8],
    pos: usize,
}

impl<'a> Reader<'a> {
    fn bytes(&mut self, n: usize) -> Option<&'a [u8]> {
        let out = self.bytes.get(self.pos..self.pos.checked_add(n)?)?;
        self.pos += n;
        Some(out)
    }
    fn array<const N: usize>(&mut self) -> Option<&'a [u8; N]> {
        self.bytes(N)?.first_chunk::<N>()
    }
    fn u8(&mut self) -> Option<u8> {
        self.array::<1>().map(|b| b[0])
    }
    fn u32(&mut self) -> Option<u32> {
        self.array().map(|b| u32::from_le_bytes(*b))
    }
    fn u64(&mut self) -> Option<u64> {
        self.array().map(|b| u64::from_le_bytes(*b))
    }
    fn i64(&mut self) -> Option<i64> {
        self.array().map(|b| i64::from_le_bytes(*b))
    }
}

// -------------------------------------------------------------------------------------------------
// Hashing file contents

struct Hashed {
    index: usize,
    digest: Digest,
    len: u64,
}

/// Hashes the files at `todo` (indexes into `entries`) on every core, each thread with one reused
/// buffer.
fn hash_files(
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

// -------------------------------------------------------------------------------------------------
// explain

/// Some paths of one kind of change, and how many more there are.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PathSample {
    pub paths: Vec<String>,
    pub more: usize,
}

impl PathSample {
    fn from_all(all: Vec<String>) -> Self {
        let more = all.len().saturating_sub(EXPLAIN_PATHS);
        let mut paths = all;
        paths.truncate(EXPLAIN_PATHS);
        Self { paths, more }
    }

    fn total(&self) -> usize {
        self.paths.len() + self.more
    }
}

/// How a build arg changed (values are never shown: build args can carry secrets).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ArgChange {
    Added,
    Removed,
    Changed,
}

/// A base image reference as one build saw it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum BaseImageState {
    /// Not a base image of that build.
    Unused,
    /// A base image the daemon did not have.
    NotLocal,
    /// The image ID of the daemon's local image.
    Local(String),
}

impl BaseImageState {
    fn of(entry: Option<&Option<String>>) -> Self {
        match entry {
            None => Self::Unused,
            Some(None) => Self::NotLocal,
            Some(Some(id)) => Self::Local(id.clone()),
        }
    }
}

impl fmt::Display for BaseImageState {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Unused => f.write_str("(not used)"),
            Self::NotLocal => f.write_str("(not present locally)"),
            Self::Local(id) => {
                let id = id.strip_prefix("sha256:").unwrap_or(id);
                write!(f, "`{}`", id.get(..12).unwrap_or(id))
            }
        }
    }
}

/// One input that differs from the last build of an artifact.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Change {
    /// The artifact was never built (or its record is gone).
    NoPreviousBuild,
    /// The key derivation changed with a devloop upgrade.
    KeyVersion {
        previous: u32,
        current: u32,
    },
    FilesAdded(PathSample),
    FilesRemoved(PathSample),
    /// Content, link target or mode differs.
    FilesModified(PathSample),
    Dockerfile,
    Target {
        previous: Option<String>,
        current: Option<String>,
    },
    BuildArg {
        name: String,
        change: ArgChange,
    },
    IgnoreRules,
    Platform {
        previous: Option<String>,
        current: Option<String>,
    },
    /// A base image came or went, or its local image changed.
    BaseImage {
        reference: String,
        previous: BaseImageState,
        current: BaseImageState,
    },
    /// A required artifact's key (`None`: not required then).
    RequiredArtifact {
        image: String,
        previous: Option<CacheKey>,
        current: Option<CacheKey>,
    },
}

impl fmt::Display for Change {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fn or_none(v: &Option<String>) -> String {
            v.as_ref()
                .map_or_else(|| "(none)".to_owned(), |v| format!("`{v}`"))
        }
        fn files(f: &mut fmt::Formatter<'_>, what: &str, sample: &PathSample) -> fmt::Result {
            let noun = if sample.total() == 1 { "file" } else { "files" };
            write!(f, "{noun} {what}: ")?;
            for (i, path) in sample.paths.iter().enumerate() {
                let sep = if i == 0 { "" } else { ", " };
                write!(f, "{sep}`{path}`")?;
            }
            if sample.more > 0 {
                write!(f, " and {} more", sample.more)?;
            }
            Ok(())
        }
        match self {
            Self::NoPreviousBuild => f.write_str("no previous build"),
            Self::KeyVersion { previous, current } => {
                write!(
                    f,
                    "cache key format changed (version {previous} → {current})"
                )
            }
            Self::FilesAdded(sample) => files(f, "added", sample),
            Self::FilesRemoved(sample) => files(f, "removed", sample),
            Self::FilesModified(sample) => files(f, "modified", sample),
            Self::Dockerfile => f.write_str("Dockerfile changed"),
            Self::Target { previous, current } => {
                write!(
                    f,
                    "target changed from {} to {}",
                    or_none(previous),
                    or_none(current)
                )
            }
            Self::BuildArg { name, change } => {
                let what = match change {
                    ArgChange::Added => "added",
                    ArgChange::Removed => "removed",
                    ArgChange::Changed => "changed",
                };
                write!(f, "build arg `{name}` {what}")
            }
            Self::IgnoreRules => f.write_str("ignore rules changed"),
            Self::Platform { previous, current } => {
                write!(
                    f,
                    "platform changed from {} to {}",
                    or_none(previous),
                    or_none(current)
                )
            }
            Self::BaseImage {
                reference,
                previous,
                current,
            } => {
                write!(
                    f,
                    "base image `{reference}` changed from {previous} to {current}"
                )
            }
            Self::RequiredArtifact {
                image,
                previous,
                current,
            } => {
                let key = |k: &Option<CacheKey>| {
                    k.as_ref()
                        .map_or_else(|| "(none)".to_owned(), |k| format!("`{}`", k.short()))
                };
                write!(
                    f,
                    "required artifact `{image}` changed from {} to {}",
                    key(previous),
                    key(current)
                )
            }
        }
    }
}

/// Which inputs changed since `previous` (the artifact's last build); empty when the key is the
/// same.
pub fn explain(
    previous: Option<&LastBuild>,
    inputs: &KeyInputs,
    files: &FileDigests,
) -> Vec<Change> {
    let Some(previous) = previous else {
        return vec![Change::NoPreviousBuild];
    };
    let old = &previous.record.inputs;
    let mut changes = Vec::new();
    if old.key_version != inputs.key_version {
        changes.push(Change::KeyVersion {
            previous: old.key_version,
            current: inputs.key_version,
        });
    }
    if old.context_digest != inputs.context_digest {
        changes.extend(file_changes(&previous.files, files));
    }
    if old.dockerfile_digest != inputs.dockerfile_digest {
        changes.push(Change::Dockerfile);
    }
    if old.target != inputs.target {
        changes.push(Change::Target {
            previous: old.target.clone(),
            current: inputs.target.clone(),
        });
    }
    for (name, (was, now)) in union(&old.build_args, &inputs.build_args) {
        let change = match (was, now) {
            (None, Some(_)) => ArgChange::Added,
            (Some(_), None) => ArgChange::Removed,
            _ => ArgChange::Changed,
        };
        changes.push(Change::BuildArg {
            name: name.clone(),
            change,
        });
    }
    if old.ignore_digest != inputs.ignore_digest {
        changes.push(Change::IgnoreRules);
    }
    if old.platform != inputs.platform {
        changes.push(Change::Platform {
            previous: old.platform.clone(),
            current: inputs.platform.clone(),
        });
    }
    for (reference, (was, now)) in union(&old.base_images, &inputs.base_images) {
        changes.push(Change::BaseImage {
            reference: reference.clone(),
            previous: BaseImageState::of(was),
            current: BaseImageState::of(now),
        });
    }
    for (image, (was, now)) in union(&old.required, &inputs.required) {
        changes.push(Change::RequiredArtifact {
            image: image.clone(),
            previous: was.cloned(),
            current: now.cloned(),
        });
    }
    changes
}

/// A map key with its value before and after.
type Sides<'a, V> = (&'a String, (Option<&'a V>, Option<&'a V>));

/// Keys whose values differ between two maps, with both sides.
fn union<'a, V: PartialEq>(
    old: &'a BTreeMap<String, V>,
    new: &'a BTreeMap<String, V>,
) -> Vec<Sides<'a, V>> {
    let mut keys: Vec<&String> = old.keys().chain(new.keys()).collect();
    keys.sort();
    keys.dedup();
    keys.into_iter()
        .map(|k| (k, (old.get(k), new.get(k))))
        .filter(|(_, (a, b))| a != b)
        .collect()
}

fn file_changes(old: &FileDigests, new: &FileDigests) -> Vec<Change> {
    fn sorted(f: &FileDigests) -> Vec<&FileDigest> {
        let mut v: Vec<&FileDigest> = f.0.iter().collect();
        if !v.is_sorted_by(|a, b| a.rel <= b.rel) {
            v.sort_by(|a, b| a.rel.cmp(&b.rel));
        }
        v
    }
    let (old, new) = (sorted(old), sorted(new));
    let (mut added, mut removed, mut modified) = (Vec::new(), Vec::new(), Vec::new());
    let (mut i, mut j) = (0, 0);
    while i < old.len() || j < new.len() {
        match (old.get(i), new.get(j)) {
            (Some(a), Some(b)) if a.rel == b.rel => {
                if a != b {
                    modified.push(b.rel.clone());
                }
                i += 1;
                j += 1;
            }
            (Some(a), Some(b)) if a.rel < b.rel => {
                removed.push(a.rel.clone());
                i += 1;
            }
            (Some(a), None) => {
                removed.push(a.rel.clone());
                i += 1;
            }
            (_, Some(b)) => {
                added.push(b.rel.clone());
                j += 1;
            }
            (None, None) => break,
        }
    }
    let mut changes = Vec::new();
    for (paths, variant) in [
        (added, Change::FilesAdded as fn(PathSample) -> Change),
        (removed, Change::FilesRemoved),
        (modified, Change::FilesModified),
    ] {
        if !paths.is_empty() {
            changes.push(variant(PathSample::from_all(paths)));
        }
    }
    changes
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;
    use std::collections::BTreeSet;
    use std::os::unix::fs::{MetadataExt, PermissionsExt, symlink};
    use std::time::Instant;

    /// What context.rs produces, done simply: every entry under `root`, sorted by path.
    fn walk(root: &Path) -> ContextFiles {
        fn visit(root: &Path, dir: &Path, entries: &mut Vec<ContextEntry>) {
            for item in fs::read_dir(dir).unwrap() {
                let path = item.unwrap().path();
                let meta = fs::symlink_metadata(&path).unwrap();
                let rel = path
                    .strip_prefix(root)
                    .unwrap()
                    .to_str()
                    .unwrap()
                    .to_owned();
                let kind = if meta.is_dir() {
                    EntryKind::Dir
                } else if meta.is_symlink() {
                    let target = fs::read_link(&path).unwrap();
                    EntryKind::Symlink {
                        target: target.to_str().unwrap().to_owned(),
                    }
                } else {
                    EntryKind::File
                };
                entries.push(ContextEntry {
                    rel,
                    size: if meta.is_dir() { 0 } else { meta.size() },
                    mode: meta.mode(),
                    dev: meta.dev(),
                    ino: meta.ino(),
                    mtime_ns: meta.mtime() * 1_000_000_000 + meta.mtime_nsec(),
                    ctime_ns: meta.ctime() * 1_000_000_000 + meta.ctime_nsec(),
                    kind,
                });
                if meta.is_dir() {
                    visit(root, &path, entries);
                }
            }
        }
        let root = fs::canonicalize(root).unwrap();
        let mut entries = Vec::new();
        visit(&root, &root, &mut entries);
        entries.sort_by(|a, b| a.rel.cmp(&b.rel));
        ContextFiles {
            root,
            entries,
            ignore: IgnoreRules::default(),
        }
    }

    /// Waits until files written so far are no longer "racily clean".
    fn settle() {
        std::thread::sleep(Duration::from_nanos(FINE_MARGIN_NS as u64) + Duration::from_millis(50));
    }

    fn store() -> (tempfile::TempDir, Store) {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open(dir.path().join("store")).unwrap();
        (dir, store)
    }

    fn project() -> tempfile::TempDir {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path();
        fs::create_dir_all(p.join("src")).unwrap();
        fs::create_dir_all(p.join("empty")).unwrap();
        fs::write(p.join("a.txt"), "alpha\n").unwrap();
        fs::write(p.join("src/main.rs"), "fn main() {}\n").unwrap();
        fs::write(p.join("src/lib.rs"), vec![7u8; 300_000]).unwrap();
        symlink("a.txt", p.join("link")).unwrap();
        dir
    }

    fn inputs(digest: &ContextDigest, context: &ContextFiles) -> KeyInputs {
        KeyInputs::new(digest.digest, b"FROM scratch\nCOPY . /\n", &context.ignore)
    }

    fn set_mtime(path: &Path, at: SystemTime) {
        File::options()
            .write(true)
            .open(path)
            .unwrap()
            .set_modified(at)
            .unwrap();
    }

    #[test]
    fn second_run_reads_nothing_and_a_touch_rereads_only_that_file() {
        let (_s, store) = store();
        let project = project();
        settle();
        let context = walk(project.path());
        let cold = store.digest_context(&context).unwrap();
        assert_eq!(
            cold.stats,
            HashStats {
                files_hashed: 3,
                bytes_read: 300_019,
                files_reused: 0
            }
        );

        let warm = store.digest_context(&context).unwrap();
        assert_eq!(
            warm.stats,
            HashStats {
                files_hashed: 0,
                bytes_read: 0,
                files_reused: 3
            }
        );
        assert_eq!(warm.digest, cold.digest);
        assert_eq!(warm.contents, cold.contents);

        set_mtime(
            &project.path().join("src/main.rs"),
            SystemTime::now() - Duration::from_secs(60),
        );
        let touched = walk(project.path());
        let after = store.digest_context(&touched).unwrap();
        assert_eq!(
            after.stats,
            HashStats {
                files_hashed: 1,
                bytes_read: 13,
                files_reused: 2
            }
        );
        assert_eq!(after.digest, cold.digest);
        assert_eq!(
            key(&inputs(&after, &touched)),
            key(&inputs(&cold, &context))
        );
    }

    #[test]
    fn per_file_digests_match_the_contents() {
        let (_s, store) = store();
        let project = project();
        let context = walk(project.path());
        let digest = store.digest_context(&context).unwrap();
        let files = digest.files(&context);
        let by_rel: BTreeMap<&str, Content> = files
            .0
            .iter()
            .map(|f| (f.rel.as_str(), f.content))
            .collect();
        assert_eq!(by_rel["a.txt"], Content::File(Digest::of(b"alpha\n")));
        assert_eq!(
            by_rel["src/lib.rs"],
            Content::File(Digest::of(&[7u8; 300_000]))
        );
        assert_eq!(by_rel["link"], Content::Symlink(Digest::of(b"a.txt")));
        assert_eq!(by_rel["empty"], Content::Dir);
        assert_eq!(files.digest(), digest.digest);
    }

    #[test]
    fn every_input_changes_the_key() {
        let (_s, store) = store();
        let project = project();
        let p = project.path();
        let context_key = |store: &Store| {
            let context = walk(p);
            let digest = store.digest_context(&context).unwrap();
            key(&inputs(&digest, &context))
        };
        let base_key = context_key(&store);
        let mut keys = BTreeSet::from([base_key.clone()]);
        let mut expect_new =
            |k: CacheKey, what: &str| assert!(keys.insert(k), "{what} did not change the key");

        // Context changes, each on top of the previous ones.
        fs::write(p.join("a.txt"), "ALPHA\n").unwrap(); // same size, new content
        expect_new(context_key(&store), "content");
        fs::set_permissions(p.join("a.txt"), fs::Permissions::from_mode(0o755)).unwrap();
        expect_new(context_key(&store), "mode");
        fs::rename(p.join("src/main.rs"), p.join("src/main2.rs")).unwrap();
        expect_new(context_key(&store), "rename");
        fs::create_dir(p.join("newdir")).unwrap();
        expect_new(context_key(&store), "new empty dir");
        fs::remove_file(p.join("link")).unwrap();
        symlink("src/lib.rs", p.join("link")).unwrap();
        expect_new(context_key(&store), "symlink target");

        let context = walk(p);
        let base = inputs(&store.digest_context(&context).unwrap(), &context);
        let variant = |change: &dyn Fn(&mut KeyInputs)| {
            let mut i = base.clone();
            change(&mut i);
            key(&i)
        };
        expect_new(
            variant(&|i| i.dockerfile_digest = Digest::of(b"FROM scratch\n")),
            "dockerfile",
        );
        expect_new(variant(&|i| i.target = Some("dev".into())), "target");
        expect_new(
            variant(&|i| i.build_args = build_arg_digests([("A", "1")])),
            "build arg",
        );
        let one = base.build_args.clone();
        expect_new(
            variant(&|i| i.build_args = build_arg_digests([("A", "2")])),
            "build arg value",
        );
        assert!(one.is_empty());
        expect_new(
            variant(&|i| {
                i.ignore_digest = ignore_digest(&IgnoreRules {
                    source: None,
                    text: "*.md\n".into(),
                })
            }),
            "ignore rules",
        );
        expect_new(
            variant(&|i| i.platform = Some("linux/arm64".into())),
            "platform",
        );
        let img =
            |id: Option<&str>| BTreeMap::from([("alpine:3".to_owned(), id.map(str::to_owned))]);
        expect_new(variant(&|i| i.base_images = img(None)), "base image absent");
        expect_new(
            variant(&|i| i.base_images = img(Some("sha256:aaa"))),
            "base image id",
        );
        expect_new(
            variant(&|i| i.base_images = img(Some("sha256:bbb"))),
            "other base image id",
        );
        let req = |k: &CacheKey| BTreeMap::from([("api".to_owned(), k.clone())]);
        expect_new(variant(&|i| i.required = req(&base_key)), "required key");
        expect_new(
            variant(&|i| i.required = req(&key(&base))),
            "other required key",
        );
        expect_new(variant(&|i| i.key_version += 1), "key version");
    }

    /// Regression guard: the canonical encoding (and so every key) must not change without a
    /// `KEY_VERSION` bump.
    #[test]
    fn key_encoding_is_canonical() {
        let mut inputs = KeyInputs::new(Digest([1; 32]), b"", &IgnoreRules::default());
        inputs.build_args = build_arg_digests([("Z", "z"), ("A", "a")]);
        inputs.base_images =
            BTreeMap::from([("b".into(), None), ("a".into(), Some("sha256:1".into()))]);
        let json = serde_json::to_string(&inputs).unwrap();
        let empty = Digest::of(b"");
        assert_eq!(
            json,
            format!(
                r#"{{"key_version":1,"context_digest":"{}","dockerfile_digest":"{empty}","target":null,"build_args":{{"A":"{}","Z":"{}"}},"ignore_digest":"{empty}","platform":null,"required":{{}},"base_images":{{"a":"sha256:1","b":null}}}}"#,
                "01".repeat(32),
                Digest::of(b"a"),
                Digest::of(b"z"),
            )
        );
        assert_eq!(key(&inputs).as_str(), Digest::of(json.as_bytes()).to_hex());
        assert_eq!(
            key(&inputs).short(),
            &Digest::of(json.as_bytes()).to_hex()[..12]
        );
        let back: KeyInputs = serde_json::from_str(&json).unwrap();
        assert_eq!(back, inputs);
    }

    #[test]
    fn racily_clean_entries_are_read_again() {
        let (_s, store) = store();
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("f");
        fs::write(&file, "one").unwrap();
        let context = walk(dir.path());
        store.digest_context(&context).unwrap();
        // Same size and the stat the walk saw, as on a filesystem whose timestamps did not move.
        fs::write(&file, "two").unwrap();
        let again = store.digest_context(&context).unwrap();
        assert_eq!(again.stats.files_hashed, 1);
        assert_eq!(again.contents[0], Content::File(Digest::of(b"two")));

        // The same sequence with a stat that was settled long before: the memo is trusted (so the
        // re-read above was the racy-entry rule, not a stat mismatch).
        let mut old = walk(dir.path());
        let ago = now_ns() - 10_000_000_123;
        (old.entries[0].mtime_ns, old.entries[0].ctime_ns) = (ago, ago);
        store.digest_context(&old).unwrap();
        fs::write(&file, "333").unwrap();
        assert_eq!(store.digest_context(&old).unwrap().stats.files_hashed, 0);

        // Whole-second timestamps get the coarse margin: a stat 0.6 to 1.6 s old is still racy
        // there, but not with sub-second timestamps.
        for (nanos, hashed) in [(0, 1), (123, 0)] {
            let mut e = walk(dir.path());
            let t = ((now_ns() - 1_600_000_000) / 1_000_000_000 + 1) * 1_000_000_000 + nanos;
            (e.entries[0].mtime_ns, e.entries[0].ctime_ns) = (t, t);
            store.digest_context(&e).unwrap();
            assert_eq!(
                store.digest_context(&e).unwrap().stats.files_hashed,
                hashed,
                "nanos {nanos}"
            );
        }
    }

    #[test]
    fn corrupt_or_truncated_memo_is_ignored_and_replaced() {
        let (_s, store) = store();
        let project = project();
        settle();
        let context = walk(project.path());
        let cold = store.digest_context(&context).unwrap();
        let memo = store.memo_path(&context.root);
        let good = fs::read(&memo).unwrap();
        let mut flipped = good.clone();
        flipped[good.len() / 2] ^= 0x40;
        let cases: [(&str, Vec<u8>); 5] = [
            ("empty", Vec::new()),
            ("truncated", good[..good.len() / 2].to_vec()),
            ("flipped bit", flipped),
            ("garbage", b"not a memo at all, just some bytes".to_vec()),
            ("other magic", [b"DLRECO01".as_slice(), &good[8..]].concat()),
        ];
        for (what, bytes) in cases {
            fs::write(&memo, bytes).unwrap();
            let run = store.digest_context(&context).unwrap();
            assert_eq!(run.stats.files_hashed, 3, "{what}");
            assert_eq!(run.digest, cold.digest, "{what}");
            assert_eq!(
                store.digest_context(&context).unwrap().stats.files_hashed,
                0,
                "{what}: memo rewritten"
            );
        }
    }

    #[test]
    fn memo_is_per_context_root() {
        let (_s, store) = store();
        let (one, two) = (project(), project());
        settle();
        let (c1, c2) = (walk(one.path()), walk(two.path()));
        assert_eq!(store.digest_context(&c1).unwrap().stats.files_hashed, 3);
        assert_eq!(store.digest_context(&c2).unwrap().stats.files_hashed, 3);
        assert_eq!(store.digest_context(&c1).unwrap().stats.files_hashed, 0);
        // A memo file copied under another root's name is refused.
        fs::copy(store.memo_path(&c1.root), store.memo_path(&c2.root)).unwrap();
        assert_eq!(store.digest_context(&c2).unwrap().stats.files_hashed, 3);
    }

    #[test]
    fn large_contexts_digest_the_same_in_parallel_chunks() {
        let (_s, store) = store();
        // Directories and symlinks only: no file is read, but the aggregate spans several chunks.
        let entries = |target: &str| -> Vec<ContextEntry> {
            (0..3 * AGGREGATE_CHUNK + 5)
                .map(|i| ContextEntry {
                    rel: format!("d{i:06}"),
                    kind: if i % 2 == 0 {
                        EntryKind::Dir
                    } else {
                        EntryKind::Symlink {
                            target: if i == 20_001 {
                                target.into()
                            } else {
                                "x".into()
                            },
                        }
                    },
                    mode: if i % 2 == 0 { 0o40755 } else { 0o120777 },
                    size: 0,
                    dev: 1,
                    ino: i as u64,
                    mtime_ns: 0,
                    ctime_ns: 0,
                })
                .collect()
        };
        let context = ContextFiles {
            root: "/nowhere".into(),
            entries: entries("x"),
            ignore: IgnoreRules::default(),
        };
        let digest = store.digest_context(&context).unwrap();
        assert_eq!(digest.stats, HashStats::default());
        assert_eq!(digest.files(&context).digest(), digest.digest);
        let other = ContextFiles {
            entries: entries("y"),
            ..context.clone()
        };
        assert_ne!(store.digest_context(&other).unwrap().digest, digest.digest);
    }

    /// Large contexts are joined with the memo by several threads, each starting at a block of its
    /// own.
    #[test]
    fn large_memo_is_joined_in_parallel_after_insertions_and_removals() {
        let (_s, store) = store();
        let tmp = tempfile::tempdir().unwrap();
        let with_files = [100, 9_000, 12_000, 19_999];
        for i in with_files {
            fs::create_dir(tmp.path().join(format!("d{i:06}"))).unwrap();
            fs::write(tmp.path().join(format!("d{i:06}/f")), format!("{i}")).unwrap();
        }
        settle();
        let real = walk(tmp.path());
        let entries = |skip: usize, extra: Option<&str>| -> Vec<ContextEntry> {
            let mut entries: Vec<ContextEntry> = (0..20_000)
                .filter(|i| *i != skip)
                .map(|i| ContextEntry {
                    rel: format!("d{i:06}"),
                    kind: EntryKind::Symlink {
                        target: format!("t{i}"),
                    },
                    mode: 0o120777,
                    size: 0,
                    dev: 1,
                    ino: i as u64,
                    mtime_ns: 0,
                    ctime_ns: 0,
                })
                .filter(|e| !real.entries.iter().any(|r| r.rel == e.rel))
                .chain(real.entries.iter().cloned())
                .chain(extra.map(|rel| ContextEntry {
                    rel: rel.into(),
                    kind: EntryKind::Dir,
                    mode: 0o40755,
                    size: 0,
                    dev: 1,
                    ino: 1,
                    mtime_ns: 0,
                    ctime_ns: 0,
                }))
                .collect();
            entries.sort_by(|a, b| a.rel.cmp(&b.rel));
            entries
        };
        let context = ContextFiles {
            entries: entries(usize::MAX, None),
            ..real.clone()
        };
        assert!(context.entries.len() > PARALLEL_JOIN_MIN);
        let first = store.digest_context(&context).unwrap();
        assert_eq!(first.stats.files_hashed, 4);
        let second = store.digest_context(&context).unwrap();
        assert_eq!(
            (second.stats.files_hashed, second.stats.files_reused),
            (0, 4)
        );
        assert_eq!(second.digest, first.digest);

        let changed = ContextFiles {
            entries: entries(50, Some("d011000x")),
            ..real.clone()
        };
        let third = store.digest_context(&changed).unwrap();
        assert_eq!((third.stats.files_hashed, third.stats.files_reused), (0, 4));
        assert_ne!(third.digest, first.digest);
        assert_eq!(third.digest, third.files(&changed).digest());
        let by_rel: BTreeMap<String, Content> = third
            .files(&changed)
            .0
            .into_iter()
            .map(|f| (f.rel, f.content))
            .collect();
        assert_eq!(by_rel["d019999/f"], Content::File(Digest::of(b"19999")));
        assert_eq!(by_rel["d009000"], Content::Dir);
    }

    /// In a large context a small edit does not rewrite the memo (that would cost more than
    /// re-reading the edited file next time); results stay exact with the stale memo, and edits
    /// that add up rewrite it.
    #[test]
    fn small_edits_leave_a_large_memo_alone_until_they_add_up() {
        let (_s, store) = store();
        let tmp = tempfile::tempdir().unwrap();
        let real = [5_000, 30_000, 55_000];
        for i in real {
            fs::create_dir(tmp.path().join(format!("d{i:06}"))).unwrap();
            fs::write(tmp.path().join(format!("d{i:06}/f")), "original").unwrap();
        }
        settle();
        let context = |root: &Path| {
            let real = walk(root);
            let mut entries: Vec<ContextEntry> = (0..60_000)
                .filter(|i| !real.entries.iter().any(|r| r.rel == format!("d{i:06}")))
                .map(|i| ContextEntry {
                    rel: format!("d{i:06}"),
                    kind: EntryKind::Symlink {
                        target: format!("t{i}"),
                    },
                    mode: 0o120777,
                    size: 0,
                    dev: 1,
                    ino: i as u64,
                    mtime_ns: 0,
                    ctime_ns: 0,
                })
                .chain(real.entries.iter().cloned())
                .collect();
            entries.sort_by(|a, b| a.rel.cmp(&b.rel));
            ContextFiles { entries, ..real }
        };
        let memo = |c: &ContextFiles| fs::read(store.memo_path(&c.root)).unwrap();
        let before = context(tmp.path());
        let cold = store.digest_context(&before).unwrap();
        assert_eq!(cold.stats.files_hashed, 3);
        let written = memo(&before);
        assert!(written.len() > 2_500_000, "{}", written.len());

        fs::write(tmp.path().join("d030000/f"), "edited!!").unwrap();
        let edited = context(tmp.path());
        for _ in 0..2 {
            let run = store.digest_context(&edited).unwrap();
            assert_eq!((run.stats.files_hashed, run.stats.files_reused), (1, 2));
            assert_eq!(run.digest, run.files(&edited).digest());
            assert_ne!(run.digest, cold.digest);
            assert_eq!(memo(&edited), written, "memo rewritten for a one-file edit");
        }

        fs::write(tmp.path().join("d005000/f"), "edited!!").unwrap();
        fs::write(tmp.path().join("d055000/f"), "edited!!").unwrap();
        let edited = context(tmp.path());
        let run = store.digest_context(&edited).unwrap();
        assert_eq!(run.stats.files_hashed, 3);
        assert_ne!(memo(&edited), written, "memo kept after three edits");
        assert_eq!(run.digest, run.files(&edited).digest());
        settle();
        let again = store.digest_context(&edited).unwrap();
        // Files edited just before the run started are racily clean in the new memo: read once
        // more.
        assert_eq!(again.digest, run.digest);
        assert_eq!(again.stats.files_hashed + again.stats.files_reused, 3);
    }

    #[test]
    fn memo_rewrite_policy() {
        let one_edit = HashStats {
            files_hashed: 1,
            bytes_read: 2_000,
            files_reused: 99_999,
        };
        // No memo, or a small one: always write.
        assert!(worth_rewriting(0, 100_000, &one_edit, 1));
        assert!(worth_rewriting(100_000, 1_000, &one_edit, 1));
        // A 100k-entry memo is kept for one edit, rewritten when edits add up or chunks shift.
        assert!(!worth_rewriting(8_600_000, 100_000, &one_edit, 1));
        let many = HashStats {
            files_hashed: 40,
            bytes_read: 40_000,
            files_reused: 99_960,
        };
        assert!(worth_rewriting(8_600_000, 100_000, &many, 3));
        assert!(worth_rewriting(8_600_000, 100_000, &one_edit, 13));
        // A memo far larger than the context now needs is replaced.
        assert!(worth_rewriting(8_600_000, 1_000, &HashStats::default(), 0));
    }

    #[test]
    fn a_vanished_file_is_a_read_error_naming_it() {
        let (_s, store) = store();
        let project = project();
        let context = walk(project.path());
        fs::remove_file(project.path().join("src/main.rs")).unwrap();
        let error = store.digest_context(&context).unwrap_err();
        assert!(
            matches!(&error, CacheError::Read { path, .. } if path.ends_with("src/main.rs")),
            "{error}"
        );
    }

    fn sample_record(project: &Path, artifact: &str, files: &FileDigests, n: u8) -> Record {
        let mut inputs = KeyInputs::new(files.digest(), b"FROM scratch\n", &IgnoreRules::default());
        inputs.build_args = build_arg_digests([("N", "x")]);
        inputs.target = Some(format!("t{n}"));
        Record {
            artifact: artifact.into(),
            project_dir: project.to_path_buf(),
            key: key(&inputs),
            inputs,
            image_id: format!("sha256:{}", Digest::of(&[n])),
            tag: format!("{artifact}:{n}"),
            pushed_digest: n
                .is_multiple_of(2)
                .then(|| format!("sha256:{}", Digest::of(&[n, n]))),
            recorded_at: 1_700_000_000 + u64::from(n),
        }
    }

    fn sample_files(n: usize) -> FileDigests {
        let mut files: Vec<FileDigest> = (0..n)
            .map(|i| FileDigest {
                rel: format!("dir{}/file{i}.txt", i % 7),
                mode: 0o100644,
                content: Content::File(Digest::of(&i.to_le_bytes())),
            })
            .collect();
        files.push(FileDigest {
            rel: "dir0".into(),
            mode: 0o40755,
            content: Content::Dir,
        });
        files.push(FileDigest {
            rel: "zlink".into(),
            mode: 0o120777,
            content: Content::Symlink(Digest::of(b"t")),
        });
        files.sort_by(|a, b| a.rel.cmp(&b.rel));
        FileDigests(files)
    }

    #[test]
    fn records_round_trip_by_key_and_by_artifact() {
        let (tmp, store) = store();
        let project = tmp.path().join("project");
        fs::create_dir(&project).unwrap();
        let files = sample_files(50);
        let record = sample_record(&project, "registry.local/api", &files, 1);
        assert_eq!(store.lookup(&record.key), None);
        assert_eq!(store.last_build(&project, "registry.local/api"), None);
        store.record(&record, &files).unwrap();

        assert_eq!(store.lookup(&record.key), Some(record.clone()));
        let last = store.last_build(&project, "registry.local/api").unwrap();
        assert_eq!(
            last,
            LastBuild {
                record: record.clone(),
                files: files.clone()
            }
        );
        // Other artifacts and projects share the store without seeing each other's records.
        assert_eq!(store.last_build(&project, "registry.local/web"), None);
        assert_eq!(store.last_build(tmp.path(), "registry.local/api"), None);
        // The same project reached through a symlink finds the same record.
        symlink(&project, tmp.path().join("alias")).unwrap();
        assert_eq!(
            store.last_build(&tmp.path().join("alias"), "registry.local/api"),
            Some(last)
        );

        // A corrupt record is a miss, and the next record replaces it.
        let key_file = store.key_path(&record.key);
        let mut bytes = fs::read(&key_file).unwrap();
        let n = bytes.len();
        bytes[n - 20] ^= 1;
        fs::write(&key_file, &bytes).unwrap();
        assert_eq!(store.lookup(&record.key), None);
        fs::write(&key_file, &bytes[..n / 2]).unwrap();
        assert_eq!(store.lookup(&record.key), None);
        store.record(&record, &files).unwrap();
        assert_eq!(store.lookup(&record.key), Some(record.clone()));

        // A valid record under the wrong name misleads no one.
        let other = sample_record(&project, "registry.local/api", &files, 2);
        fs::copy(store.key_path(&record.key), store.key_path(&other.key)).unwrap();
        assert_eq!(store.lookup(&other.key), None);
    }

    const WRITERS: u8 = 6;
    const WRITES: u8 = 15;

    fn write_many(store: &Store, project: &Path, writer: u8) {
        for n in 0..WRITES {
            let files = sample_files(usize::from(writer) * 500 + usize::from(n) * 40);
            let record = sample_record(project, "img", &files, writer * WRITES + n);
            store.record(&record, &files).unwrap();
        }
    }

    fn check_after_writers(store: &Store, project: &Path) {
        let last = store
            .last_build(project, "img")
            .expect("a complete last-build record");
        let n = u8::try_from(last.record.recorded_at - 1_700_000_000).unwrap();
        let (writer, write) = (n / WRITES, n % WRITES);
        let files = sample_files(usize::from(writer) * 500 + usize::from(write) * 40);
        assert_eq!(
            last,
            LastBuild {
                record: sample_record(project, "img", &files, n),
                files
            }
        );
        for n in 0..WRITERS * WRITES {
            let files = sample_files(usize::from(n / WRITES) * 500 + usize::from(n % WRITES) * 40);
            let record = sample_record(project, "img", &files, n);
            assert_eq!(store.lookup(&record.key), Some(record));
        }
        for sub in SUBDIRS {
            for item in fs::read_dir(store.dir().join(sub)).unwrap() {
                let name = item.unwrap().file_name();
                assert!(
                    !name.as_bytes().starts_with(b".tmp"),
                    "leftover temp file {name:?}"
                );
            }
        }
    }

    #[test]
    fn concurrent_writer_threads_never_tear_files() {
        let (tmp, store) = store();
        std::thread::scope(|scope| {
            for writer in 0..WRITERS {
                let (store, project) = (&store, tmp.path());
                scope.spawn(move || write_many(store, project, writer));
            }
            // Readers racing the writers only ever see complete records or none.
            for _ in 0..2 {
                let (store, project) = (&store, tmp.path());
                scope.spawn(move || {
                    for _ in 0..200 {
                        if let Some(last) = store.last_build(project, "img") {
                            assert_eq!(last.files.digest(), last.record.inputs.context_digest);
                        }
                    }
                });
            }
        });
        check_after_writers(&store, tmp.path());
    }

    #[test]
    fn concurrent_writer_processes_never_tear_files() {
        let (tmp, store) = store();
        let exe = std::env::current_exe().unwrap();
        let children: Vec<_> = (0..WRITERS)
            .map(|writer| {
                std::process::Command::new(&exe)
                    .args([
                        "--exact",
                        "cache::tests::writer_process",
                        "--ignored",
                        "--test-threads=1",
                    ])
                    .env("DEVLOOP_TEST_STORE", store.dir())
                    .env("DEVLOOP_TEST_PROJECT", tmp.path())
                    .env("DEVLOOP_TEST_WRITER", writer.to_string())
                    .stdout(std::process::Stdio::null())
                    .spawn()
                    .unwrap()
            })
            .collect();
        for mut child in children {
            assert!(child.wait().unwrap().success());
        }
        check_after_writers(&store, tmp.path());
    }

    /// Child of `concurrent_writer_processes_never_tear_files`; does nothing when run on its own.
    #[test]
    #[ignore = "helper process"]
    fn writer_process() {
        let (Some(dir), Some(project), Some(writer)) = (
            std::env::var_os("DEVLOOP_TEST_STORE"),
            std::env::var_os("DEVLOOP_TEST_PROJECT"),
            std::env::var("DEVLOOP_TEST_WRITER").ok(),
        ) else {
            return;
        };
        let store = Store::open(PathBuf::from(dir)).unwrap();
        write_many(&store, Path::new(&project), writer.parse().unwrap());
    }

    fn file_names(store: &Store) -> BTreeSet<String> {
        SUBDIRS
            .iter()
            .flat_map(|sub| fs::read_dir(store.dir().join(sub)).unwrap())
            .map(|item| format!("{}", item.unwrap().file_name().to_string_lossy()))
            .collect()
    }

    #[test]
    fn gc_removes_old_files_then_the_least_recently_used() {
        let (tmp, store) = store();
        let files = sample_files(10);
        let records: Vec<Record> = (0..4)
            .map(|n| sample_record(tmp.path(), &format!("img{n}"), &files, n))
            .collect();
        for record in &records {
            store.record(record, &files).unwrap();
        }
        let project = project();
        let context = walk(project.path());
        store.digest_context(&context).unwrap();
        let stale_temp = store.dir().join("keys/.tmpcrashed");
        fs::write(&stale_temp, "half").unwrap();
        let fresh_temp = store.dir().join("keys/.tmpwriting");
        fs::write(&fresh_temp, "half").unwrap();

        let now = SystemTime::now();
        let day = Duration::from_secs(24 * 60 * 60);
        set_mtime(&store.key_path(&records[0].key), now - 40 * day);
        set_mtime(&store.last_path(tmp.path(), "img0"), now - 31 * day);
        set_mtime(&store.key_path(&records[1].key), now - 29 * day);
        set_mtime(&stale_temp, now - 2 * STALE_TEMP);
        let before = file_names(&store);
        let report = store.gc(&GcPolicy::default()).unwrap();
        let after = file_names(&store);
        let removed: BTreeSet<String> = before.difference(&after).cloned().collect();
        let name = |p: PathBuf| p.file_name().unwrap().to_string_lossy().into_owned();
        let expected = BTreeSet::from([
            name(store.key_path(&records[0].key)),
            name(store.last_path(tmp.path(), "img0")),
            ".tmpcrashed".to_owned(),
        ]);
        assert_eq!(removed, expected);
        assert_eq!(report.files_removed, 3);
        assert!(fresh_temp.exists());

        // Over the size bound: the least recently used go first, until the rest fits.
        for (i, record) in records.iter().enumerate().skip(1) {
            set_mtime(
                &store.last_path(tmp.path(), &record.artifact),
                now - (10 - i as u32) * day,
            );
        }
        let sizes = |p: &Path| fs::metadata(p).unwrap().len();
        let total: u64 = SUBDIRS
            .iter()
            .flat_map(|sub| fs::read_dir(store.dir().join(sub)).unwrap())
            .map(|item| item.unwrap().path())
            .filter(|p| !p.file_name().unwrap().as_bytes().starts_with(b".tmp"))
            .map(|p| sizes(&p))
            .sum();
        // The two least recently used: `keys/` of img1 (29 days) and `last/` of img1 (9 days).
        let oldest = [
            store.key_path(&records[1].key),
            store.last_path(tmp.path(), "img1"),
        ];
        let policy = GcPolicy {
            max_bytes: total - sizes(&oldest[0]) - sizes(&oldest[1]),
            ..GcPolicy::default()
        };
        let before = file_names(&store);
        let report = store.gc(&policy).unwrap();
        let removed: BTreeSet<String> = before.difference(&file_names(&store)).cloned().collect();
        assert_eq!(removed, oldest.map(name).into());
        assert_eq!(report.bytes_kept, total - report.bytes_removed);

        assert!(store.gc_if_due(&GcPolicy::default()).unwrap().is_some());
        assert_eq!(store.gc_if_due(&GcPolicy::default()).unwrap(), None);
        // Records still in use survive, and the memo keeps working.
        assert_eq!(store.lookup(&records[3].key), Some(records[3].clone()));
    }

    #[test]
    fn explain_reports_exactly_the_changed_inputs() {
        let files = sample_files(20);
        let mut inputs = KeyInputs::new(files.digest(), b"FROM a\n", &IgnoreRules::default());
        inputs.build_args = build_arg_digests([("TOKEN", "hunter2"), ("MODE", "dev")]);
        inputs.base_images = BTreeMap::from([(
            "alpine:3".into(),
            Some("sha256:0123456789abcdef0123".into()),
        )]);
        inputs.required = BTreeMap::from([("api".into(), CacheKey::from(Digest::of(b"api1")))]);
        let record = Record {
            artifact: "web".into(),
            project_dir: "/p".into(),
            key: key(&inputs),
            inputs: inputs.clone(),
            image_id: "sha256:1".into(),
            tag: "web:1".into(),
            pushed_digest: None,
            recorded_at: 0,
        };
        let previous = LastBuild {
            record,
            files: files.clone(),
        };
        assert_eq!(
            explain(None, &inputs, &files),
            vec![Change::NoPreviousBuild]
        );
        assert_eq!(explain(Some(&previous), &inputs, &files), vec![]);

        let mut now_files = files.clone();
        now_files.0.retain(|f| f.rel != "dir1/file1.txt");
        for f in now_files
            .0
            .iter_mut()
            .filter(|f| f.rel.starts_with("dir2/"))
        {
            f.content = Content::File(Digest::of(b"new"));
        }
        now_files
            .0
            .iter_mut()
            .find(|f| f.rel == "zlink")
            .unwrap()
            .mode = 0o120755;
        now_files.0.push(FileDigest {
            rel: "new.txt".into(),
            mode: 0o100644,
            content: Content::Dir,
        });
        now_files.0.sort_by(|a, b| a.rel.cmp(&b.rel));
        let mut now = inputs.clone();
        now.context_digest = now_files.digest();
        now.build_args = build_arg_digests([("TOKEN", "hunter3"), ("EXTRA", "1")]);
        now.base_images.insert(
            "alpine:3".into(),
            Some("sha256:fedcba9876543210fedc".into()),
        );
        now.base_images.insert("busybox".into(), None);
        now.platform = Some("linux/amd64".into());
        now.required
            .insert("api".into(), CacheKey::from(Digest::of(b"api2")));

        let changes = explain(Some(&previous), &now, &now_files);
        let text: Vec<String> = changes.iter().map(ToString::to_string).collect();
        let api = |s: &[u8]| CacheKey::from(Digest::of(s)).short().to_owned();
        assert_eq!(
            text,
            vec![
                "file added: `new.txt`".to_owned(),
                "file removed: `dir1/file1.txt`".to_owned(),
                "files modified: `dir2/file16.txt`, `dir2/file2.txt`, `dir2/file9.txt` and 1 more"
                    .to_owned(),
                "build arg `EXTRA` added".to_owned(),
                "build arg `MODE` removed".to_owned(),
                "build arg `TOKEN` changed".to_owned(),
                "platform changed from (none) to `linux/amd64`".to_owned(),
                "base image `alpine:3` changed from `0123456789ab` to `fedcba987654`".to_owned(),
                "base image `busybox` changed from (not used) to (not present locally)".to_owned(),
                format!(
                    "required artifact `api` changed from `{}` to `{}`",
                    api(b"api1"),
                    api(b"api2")
                ),
            ]
        );
        assert!(
            matches!(&changes[2], Change::FilesModified(s) if s.more == 1 && s.paths.len() == 3)
        );
        assert!(text.iter().all(|t| !t.contains("hunter")));

        let mut only_docker = inputs.clone();
        only_docker.dockerfile_digest = Digest::of(b"FROM b\n");
        only_docker.target = Some("dev".into());
        only_docker.ignore_digest = Digest::of(b"x");
        assert_eq!(
            explain(Some(&previous), &only_docker, &files),
            vec![
                Change::Dockerfile,
                Change::Target {
                    previous: None,
                    current: Some("dev".into())
                },
                Change::IgnoreRules
            ]
        );
    }

    #[test]
    fn unwritable_cache_dir_is_a_clear_error() {
        let tmp = tempfile::tempdir().unwrap();
        let blocker = tmp.path().join("file");
        fs::write(&blocker, "").unwrap();
        let dir = blocker.join("cache");
        let error = Store::open(&dir).unwrap_err();
        let text = error.to_string();
        assert!(matches!(&error, CacheError::Unwritable { dir: d, .. } if d == &dir));
        assert!(
            text.starts_with(&format!(
                "cache directory `{}` is not writable: ",
                dir.display()
            )),
            "{text}"
        );
        assert!(text.ends_with(
            "\n\nhint: fix its permissions, or set `DEVLOOP_CACHE_DIR` to a writable directory"
        ));
    }

    #[test]
    fn default_dir_follows_the_environment() {
        let env = |pairs: &[(&str, &str)]| {
            let map: BTreeMap<String, OsString> = pairs
                .iter()
                .map(|(k, v)| ((*k).into(), (*v).into()))
                .collect();
            move |name: &str| map.get(name).cloned()
        };
        let all = env(&[
            ("DEVLOOP_CACHE_DIR", "/d"),
            ("XDG_CACHE_HOME", "/x"),
            ("HOME", "/h"),
        ]);
        assert_eq!(dir_from_env(&all, false).unwrap(), PathBuf::from("/d"));
        let xdg = env(&[
            ("DEVLOOP_CACHE_DIR", ""),
            ("XDG_CACHE_HOME", "/x"),
            ("HOME", "/h"),
        ]);
        assert_eq!(
            dir_from_env(&xdg, false).unwrap(),
            PathBuf::from("/x/devloop")
        );
        assert_eq!(
            dir_from_env(&xdg, true).unwrap(),
            PathBuf::from("/h/Library/Caches/devloop")
        );
        let relative_xdg = env(&[("XDG_CACHE_HOME", "rel"), ("HOME", "/h")]);
        assert_eq!(
            dir_from_env(&relative_xdg, false).unwrap(),
            PathBuf::from("/h/.cache/devloop")
        );
        let error = dir_from_env(env(&[]), false).unwrap_err();
        assert!(matches!(error, CacheError::NoCacheDir));
        assert!(error.to_string().contains("hint: set `DEVLOOP_CACHE_DIR`"));
    }

    #[test]
    fn checksum_detects_any_single_word_change() {
        let data: Vec<u8> = (0..1000u32).flat_map(|i| i.to_le_bytes()).collect();
        let sum = checksum64(&data);
        for pos in (0..data.len()).step_by(37) {
            let mut changed = data.clone();
            changed[pos] = changed[pos].wrapping_add(1);
            assert_ne!(checksum64(&changed), sum, "byte {pos}");
        }
        assert_ne!(checksum64(&data[..data.len() - 1]), sum);
        assert_ne!(checksum64(&[data.as_slice(), &[0]].concat()), sum);
    }

    /// Timing harness: `cargo test --release --lib cache::tests::bench_context_hashing -- --ignored
    /// --nocapture`. `DEVLOOP_BENCH_DIR`: where to generate the files (default: the system temp
    /// dir); `DEVLOOP_BENCH_FILES=10000,100000`: the context sizes.
    #[test]
    #[ignore = "benchmark; generates ~1.1 GiB of files"]
    #[allow(clippy::print_stdout)]
    fn bench_context_hashing() {
        let base =
            std::env::var_os("DEVLOOP_BENCH_DIR").map_or_else(std::env::temp_dir, PathBuf::from);
        let counts: Vec<usize> = std::env::var("DEVLOOP_BENCH_FILES").map_or_else(
            |_| vec![10_000, 100_000],
            |v| v.split(',').map(|n| n.trim().parse().unwrap()).collect(),
        );
        for count in counts {
            let tmp = tempfile::tempdir_in(&base).unwrap();
            let root = tmp.path().join("ctx");
            let mut total = 0u64;
            let mut seed = 0x2545_F491_4F6C_DD1Du64;
            for i in 0..count {
                seed ^= seed << 13;
                seed ^= seed >> 7;
                seed ^= seed << 17;
                // Mostly small sources, one in ten between 64 and 128 KiB: ~10.5 KiB on average.
                let size = if i % 10 == 0 {
                    65_536 + seed % 65_536
                } else {
                    seed % 2_048
                } as usize;
                let dir = root.join(format!("d{:02}/e{:02}", i / 1000 % 100, i / 100 % 10));
                if i % 100 == 0 {
                    fs::create_dir_all(&dir).unwrap();
                }
                let byte = u8::try_from(i % 251).unwrap();
                fs::write(dir.join(format!("f{i}.src")), vec![byte; size]).unwrap();
                total += size as u64;
            }
            let started = Instant::now();
            let context = walk(&root);
            let walk_time = started.elapsed();
            settle();
            let cat = |_: ()| {
                let started = Instant::now();
                let status = std::process::Command::new("sh")
                    .arg("-c")
                    .arg("find . -type f -print0 | xargs -0 cat > /dev/null")
                    .current_dir(&root)
                    .status()
                    .unwrap();
                assert!(status.success());
                started.elapsed()
            };
            cat(()); // brings every file into the page cache, as for the hashing runs
            let cat_time = (0..3).map(|_| cat(())).min().unwrap();
            let mib = total as f64 / f64::from(1 << 20);
            // A stricter baseline than `cat`: one thread reading every file with one buffer, no hashing.
            let read_all = || {
                let started = Instant::now();
                let mut buf = vec![0u8; READ_BUFFER];
                for entry in context.entries.iter().filter(|e| e.kind == EntryKind::File) {
                    let mut file = File::open(context.root.join(&entry.rel)).unwrap();
                    while file.read(&mut buf).unwrap() > 0 {}
                }
                started.elapsed()
            };
            let read_time = (0..3).map(|_| read_all()).min().unwrap();
            println!(
                "{count} files, {mib:.0} MiB: walk {walk_time:.1?}; cat {cat_time:.1?} ({:.0} MiB/s); \
                 plain read, 1 thread {read_time:.1?} ({:.0} MiB/s)",
                mib / cat_time.as_secs_f64(),
                mib / read_time.as_secs_f64()
            );
            for run in 0..2 {
                let store_dir = tmp.path().join(format!("store{run}"));
                let store = Store::open(&store_dir).unwrap();
                let started = Instant::now();
                let cold = store.digest_context(&context).unwrap();
                let cold_time = started.elapsed();
                assert_eq!(cold.stats.files_hashed, count as u64);
                println!(
                    "  cold {cold_time:.1?} ({:.0} MiB/s, {:.2}x cat)",
                    mib / cold_time.as_secs_f64(),
                    cat_time.as_secs_f64() / cold_time.as_secs_f64()
                );
            }
            let store = Store::open(tmp.path().join("store0")).unwrap();
            let memo_len = fs::metadata(store.memo_path(&context.root)).unwrap().len();
            let warm: Vec<Duration> = (0..20)
                .map(|_| {
                    let started = Instant::now();
                    let warm = store.digest_context(&context).unwrap();
                    assert_eq!(warm.stats.files_hashed, 0);
                    started.elapsed()
                })
                .collect();
            println!(
                "  warm min {:.2?} max {:.2?} (memo {:.1} MiB)",
                warm.iter().min().unwrap(),
                warm.iter().max().unwrap(),
                memo_len as f64 / f64::from(1 << 20)
            );
            // An edit: one file changes; the run re-reads it and rewrites the memo, and so does the
            // next run (the edit is still racily clean then), after which the memo is trusted
            // again.
            let edited = root.join("d00/e00/f1.src");
            fs::write(&edited, "edited").unwrap();
            let context = walk(&root);
            for what in ["edit", "edit+1", "edit+2"] {
                let started = Instant::now();
                let run = store.digest_context(&context).unwrap();
                println!(
                    "  {what}: {:.2?}, files hashed {}",
                    started.elapsed(),
                    run.stats.files_hashed
                );
                settle();
            }
        }
    }
}
