//! Cache stage, tests of the hash memo: what a run reads again, racily clean entries, corrupt memos, memos per
//! root, parallel joins, and when a memo is rewritten.

use super::*;

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
