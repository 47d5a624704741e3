//! Cache stage, tests of garbage collection: old files first, then the least recently used.

use super::*;

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
