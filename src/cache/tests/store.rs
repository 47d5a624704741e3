//! Cache stage, tests of the store: records by key and by artifact, the store directory and its errors, and the
//! checksum that turns a damaged file into a miss.

use super::*;

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
