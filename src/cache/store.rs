//! Cache stage, the store: a directory shared by every project and artifact of a user (and by concurrent devloop
//! processes) → build records filed by key and as each artifact's last build, every file replaced atomically under
//! a shared lock; it never hashes contexts (the memo does, in `memo.rs`), talks to Docker or prints.

use std::ffi::OsString;
use std::fs::{self, File};
use std::io::Write;
use std::os::unix::ffi::OsStrExt;
use std::path::{Path, PathBuf};
use std::time::{Duration, SystemTime};

use super::context_digest::FileDigests;
use super::digest::Digest;
use super::envelope::{body, read_store_file};
use super::error::CacheError;
use super::key::CacheKey;
use super::record::{LastBuild, RECORD_MAGIC, Record, decode_record, encode_record};

const CACHEDIR_TAG: &str = "Signature: 8a477f597d28d172789f06886806bc55\n\
# This file is a cache directory tag created by devloop.\n\
# For information about cache directory tags see https://bford.info/cachedir/\n";
/// A store file read after this long unused gets its mtime refreshed, which is what GC ages by.
const TOUCH_AFTER: Duration = Duration::from_secs(24 * 60 * 60);
pub(super) const SUBDIRS: [&str; 3] = ["memo", "keys", "last"];

/// A cache store directory shared by every project and artifact of a user (and by concurrent
/// devloop processes).
#[derive(Debug, Clone)]
pub struct Store {
    dir: PathBuf,
}

/// The default store directory: `$DEVLOOP_CACHE_DIR`, else `$XDG_CACHE_HOME/devloop`, else
/// `$HOME/.cache/devloop` (`$HOME/Library/Caches/devloop` on macOS).
pub fn default_dir() -> Result<PathBuf, CacheError> {
    dir_from_env(|name| std::env::var_os(name), cfg!(target_os = "macos"))
}

pub(super) fn dir_from_env(
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

    pub(super) fn memo_path(&self, root: &Path) -> PathBuf {
        let name = Digest::of(root.as_os_str().as_bytes());
        self.dir.join("memo").join(format!("{name}.memo"))
    }

    pub(super) fn key_path(&self, key: &CacheKey) -> PathBuf {
        self.dir.join("keys").join(format!("{key}.rec"))
    }

    pub(super) fn last_path(&self, project_dir: &Path, artifact: &str) -> PathBuf {
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

    pub(super) fn lock_file(&self) -> Result<File, CacheError> {
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
    pub(super) fn write_atomic(
        &self,
        path: &Path,
        bytes: &[u8],
        durable: bool,
    ) -> Result<(), CacheError> {
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

/// Marks a store file as used (GC ages files by mtime); at most once a day per file, to keep reads
/// cheap.
pub(super) fn touch_if_stale(path: &Path) {
    let Ok(file) = File::open(path) else { return };
    let stale = file
        .metadata()
        .and_then(|m| m.modified())
        .is_ok_and(|at| at.elapsed().is_ok_and(|a| a > TOUCH_AFTER));
    if stale && let Err(error) = file.set_modified(SystemTime::now()) {
        tracing::debug!(path = %path.display(), %error, "cannot refresh cache file mtime");
    }
}
