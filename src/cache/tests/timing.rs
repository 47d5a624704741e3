//! Cache stage, a timing harness for context hashing (ignored by default; it prints its figures).

use super::*;

/// Timing harness: `cargo test --release --lib cache::tests::timing::bench_context_hashing -- --ignored
/// --nocapture`. `DEVLOOP_BENCH_DIR`: where to generate the files (default: the system temp
/// dir); `DEVLOOP_BENCH_FILES=10000,100000`: the context sizes.
#[test]
#[ignore = "benchmark; generates ~1.1 GiB of files"]
#[allow(clippy::print_stdout)]
fn bench_context_hashing() {
    let base = std::env::var_os("DEVLOOP_BENCH_DIR").map_or_else(std::env::temp_dir, PathBuf::from);
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
