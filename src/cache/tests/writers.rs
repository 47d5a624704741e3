//! Cache stage, tests of concurrent writers: threads and processes writing records at once never tear a file.

use super::*;

const WRITERS: u8 = 6;
const WRITES: u8 = 15;

pub(super) fn write_many(store: &Store, project: &Path, writer: u8) {
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
