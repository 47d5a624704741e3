//! Cache stage, tests of context digests: per-entry digests, chunked aggregates, and a file that vanished before
//! it was read.

use super::*;

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
        build_files_excluded: false,
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
