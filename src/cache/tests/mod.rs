//! Cache stage, unit tests: the fixtures every test file shares (a simple context walk, a project, a store, sample
//! records), and the helper process of the concurrent-writer test, kept here so that its path stays
//! `cache::tests::writer_process`.

mod context_digest;
mod explain;
mod gc;
mod key;
mod memo;
mod store;
mod timing;
mod writers;

use super::context_digest::AGGREGATE_CHUNK;
use super::envelope::checksum64;
use super::gc::STALE_TEMP;
use super::hashing::READ_BUFFER;
use super::memo::{now_ns, worth_rewriting};
use super::memo_join::{FINE_MARGIN_NS, PARALLEL_JOIN_MIN};
use super::store::{SUBDIRS, dir_from_env};
use super::*;
use crate::context::{ContextEntry, ContextFiles, EntryKind, IgnoreRules};
use std::collections::{BTreeMap, BTreeSet};
use std::ffi::OsString;
use std::fs::{self, File};
use std::io::Read;
use std::os::unix::ffi::OsStrExt;
use std::os::unix::fs::{MetadataExt, PermissionsExt, symlink};
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant, SystemTime};
use writers::write_many;

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
        build_files_excluded: false,
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
