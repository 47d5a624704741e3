//! Tests of the watch stage: real files in temp dirs → change sets, warnings and errors (debounce and bursts,
//! ignore rules, new and vanished directories, the fallback to polling, `index.lock`, manual triggers).

use super::debounce::find_git_lock;
use super::rules::{Rules, clean};
use super::*;
use std::collections::BTreeSet;
use std::fs;
use std::io::Write as _;
use std::os::unix::fs::PermissionsExt as _;
use std::path::Path;
use std::time::Instant;
use tokio::time::timeout;

/// Debounce and polling interval of the tests.
const D: Duration = Duration::from_millis(50);
/// Generous bound for an expected change set on a loaded machine.
const EXPECT: Duration = Duration::from_secs(10);

fn put(path: &Path, text: &str) {
    fs::create_dir_all(path.parent().unwrap()).unwrap();
    fs::write(path, text).unwrap();
}

fn spec(base: &Path, roots: Vec<WatchRoot>) -> WatchSpec {
    WatchSpec {
        roots,
        debounce: D,
        poll_interval: D,
        ..WatchSpec::new(base)
    }
}

fn set(paths: &[&Path]) -> BTreeSet<PathBuf> {
    paths.iter().map(|p| p.to_path_buf()).collect()
}

async fn change(w: &mut Watcher) -> ChangeSet {
    timeout(EXPECT, w.next())
        .await
        .expect("no change set within the bound")
        .expect("the watcher ended")
}

/// Merges change sets until every path of `want` was seen (events of one edit may straddle two batches).
async fn changes_until(w: &mut Watcher, want: &[&Path]) -> (BTreeSet<PathBuf>, Vec<WatchWarning>) {
    let (mut seen, mut warnings) = (BTreeSet::new(), Vec::new());
    while !want.iter().all(|p| seen.contains(*p)) {
        let cs = change(w).await;
        seen.extend(cs.paths);
        warnings.extend(cs.warnings);
    }
    (seen, warnings)
}

/// Absence of a change set, over several debounce periods (and polling intervals).
async fn quiet(w: &mut Watcher) {
    if let Ok(cs) = timeout(D * 8, w.next()).await {
        panic!("unexpected change set: {cs:?}");
    }
}

impl Watcher {
    fn pending_paths(&self) -> BTreeSet<PathBuf> {
        self.shared.lock().paths.clone()
    }
}

/// Waits (bounded) until the collector has merged `path` into the pending set, without consuming it.
fn wait_pending(w: &Watcher, path: &Path) {
    let deadline = Instant::now() + EXPECT;
    while !w.pending_paths().contains(path) {
        assert!(
            Instant::now() < deadline,
            "`{}` never became pending",
            path.display()
        );
        std::thread::sleep(Duration::from_millis(5));
    }
}

fn node_modules(rel: &Path) -> bool {
    rel.starts_with("node_modules")
}

#[tokio::test]
async fn ignored_paths_never_trigger_and_get_no_watch() {
    let tmp = tempfile::tempdir().unwrap();
    let base = tmp.path();
    let ctx = base.join("ctx");
    for f in [
        "ctx/src/main.rs",
        "ctx/node_modules/pkg/index.js",
        "ctx/node_modules/pkg/lib/deep.js",
        "ctx/target/debug/out",
        "ctx/.git/HEAD",
        "ctx/logs/app.log",
        "Dockerfile",
        "notes.txt",
    ] {
        put(&base.join(f), "x");
    }
    let mut spec = spec(
        base,
        vec![
            WatchRoot::dir("./ctx").with_exclude(node_modules),
            WatchRoot::file("Dockerfile"),
        ],
    );
    spec.ignore = vec!["ctx/target/**".into(), "*.log".into()];
    let (mut w, warnings) = Watcher::start(spec).unwrap();
    assert_eq!(warnings, []);
    assert_eq!(w.mode(), WatchMode::Notify);
    // The project directory is watched (non-recursively) for the Dockerfile; nothing excluded is.
    let expected_dirs = vec![
        base.to_path_buf(),
        ctx.clone(),
        ctx.join("logs"),
        ctx.join("src"),
    ];
    assert_eq!(w.watched_dirs(), expected_dirs);

    put(&ctx.join("node_modules/pkg/index.js"), "changed");
    put(&ctx.join("node_modules/new/x.js"), "new");
    put(&ctx.join("target/debug/out"), "changed");
    put(&ctx.join("target/release/new"), "new");
    put(&ctx.join(".git/index"), "new");
    put(&ctx.join("logs/app.log"), "changed");
    put(&ctx.join("logs/other.log"), "new");
    put(&base.join("notes.txt"), "changed");
    fs::create_dir(base.join("elsewhere")).unwrap();
    quiet(&mut w).await;
    assert_eq!(w.watched_dirs(), expected_dirs);

    put(&ctx.join("src/main.rs"), "changed");
    assert_eq!(change(&mut w).await.paths, set(&[&ctx.join("src/main.rs")]));
    put(&base.join("Dockerfile"), "FROM scratch");
    assert_eq!(change(&mut w).await.paths, set(&[&base.join("Dockerfile")]));
}

#[tokio::test]
async fn reading_files_never_triggers() {
    let tmp = tempfile::tempdir().unwrap();
    let base = tmp.path();
    let mut files = Vec::new();
    for i in 0..200 {
        let f = base.join(format!("d{}/sub/f{i}.txt", i % 10));
        put(&f, &"content ".repeat(512));
        files.push(f);
    }
    let (mut w, _) = Watcher::start(spec(base, vec![WatchRoot::dir(base)])).unwrap();
    assert_eq!(w.watched_dirs().len(), 21);
    for f in &files {
        assert_eq!(fs::read(f).unwrap().len(), 4096);
        let mut s = String::new();
        fs::File::open(f).unwrap().read_to_string(&mut s).unwrap();
        f.metadata().unwrap();
    }
    for d in w.watched_dirs() {
        assert!(fs::read_dir(&d).unwrap().count() > 0);
    }
    quiet(&mut w).await;
    // The watcher is alive: the same files written do trigger.
    put(&files[7], "written");
    assert_eq!(change(&mut w).await.paths, set(&[&files[7]]));
}

#[tokio::test]
async fn a_burst_of_writes_is_one_change_set() {
    let tmp = tempfile::tempdir().unwrap();
    let base = tmp.path();
    let mut want = BTreeSet::new();
    for i in 0..25 {
        let f = base.join(format!("old{i}.txt"));
        put(&f, "before");
        want.insert(f);
    }
    // 100 ms here: a scheduler pause inside the loop on a loaded machine must not split the burst.
    let spec = WatchSpec {
        debounce: Duration::from_millis(100),
        ..spec(base, vec![WatchRoot::dir(base)])
    };
    let (mut w, _) = Watcher::start(spec).unwrap();
    for i in 0..25 {
        let f = base.join(format!("new{i}.txt"));
        want.insert(f);
    }
    for f in &want {
        fs::write(f, "after").unwrap();
    }
    let cs = change(&mut w).await;
    assert_eq!(cs.paths, want);
    assert!(!cs.manual);
    quiet(&mut w).await;
}

/// Issue 11: a fixed trailing debounce delayed every lone save by a whole debounce period.
#[tokio::test]
async fn a_lone_save_is_reported_without_waiting_for_the_debounce() {
    let tmp = tempfile::tempdir().unwrap();
    let base = tmp.path();
    let f = base.join("index.html");
    put(&f, "v1");
    // A debounce far longer than the bound below: only the leading edge can report within it.
    let spec = WatchSpec {
        debounce: Duration::from_secs(30),
        ..spec(base, vec![WatchRoot::dir(base)])
    };
    let (mut w, _) = Watcher::start(spec).unwrap();
    fs::write(&f, "v2").unwrap();
    let cs = timeout(Duration::from_secs(10), w.next())
        .await
        .expect("reported on the leading edge, not after the 30 s debounce")
        .unwrap();
    assert_eq!(cs.paths, set(&[&f]));
}

/// Issue 11: 200 saves in 6 s started 10 builds, because the burst was reported every 4 debounce periods and
/// each report restarts the build in flight.
#[tokio::test]
async fn a_burst_that_goes_on_after_a_report_is_reported_once_it_pauses() {
    let tmp = tempfile::tempdir().unwrap();
    let base = tmp.path().to_path_buf();
    let f = base.join("index.html");
    put(&f, "v0");
    let spec = WatchSpec {
        debounce: Duration::from_millis(200),
        ..spec(&base, vec![WatchRoot::dir(&base)])
    };
    let (mut w, _) = Watcher::start(spec).unwrap();
    let writer = {
        let f = f.clone();
        std::thread::spawn(move || {
            // A save every 20 ms for 1.5 s: never a debounce period of quiet, longer than 4 of them.
            for i in 0..75 {
                fs::write(&f, format!("v{i}")).unwrap();
                std::thread::sleep(Duration::from_millis(20));
            }
        })
    };
    let first = change(&mut w).await;
    assert_eq!(first.paths, set(&[&f]));
    // The rest of the burst: one more report, after the writes stopped.
    let rest = change(&mut w).await;
    assert!(
        writer.is_finished(),
        "a report came while the burst was still going on"
    );
    writer.join().unwrap();
    assert_eq!(rest.paths, set(&[&f]));
    quiet(&mut w).await;
}

#[tokio::test]
async fn try_take_merges_what_arrived_while_busy() {
    let tmp = tempfile::tempdir().unwrap();
    let base = tmp.path();
    let (a, b, c) = (base.join("a"), base.join("b"), base.join("sub/c"));
    fs::create_dir(base.join("sub")).unwrap();
    let (mut w, _) = Watcher::start(spec(base, vec![WatchRoot::dir(base)])).unwrap();
    assert!(w.try_take().is_none());
    put(&a, "1");
    assert_eq!(change(&mut w).await.paths, set(&[&a]));

    // The loop is busy: two bursts arrive, well apart, and are merged instead of queued.
    put(&b, "2");
    wait_pending(&w, &b);
    std::thread::sleep(D * 3);
    put(&c, "3");
    wait_pending(&w, &c);
    let cs = w.try_take().unwrap();
    assert_eq!(cs.paths, set(&[&b, &c]));
    assert!(w.try_take().is_none());
}

#[tokio::test]
async fn a_continuous_stream_of_writes_still_triggers() {
    let tmp = tempfile::tempdir().unwrap();
    let base = tmp.path().to_path_buf();
    let f = base.join("log.txt");
    let (mut w, _) = Watcher::start(spec(&base, vec![WatchRoot::dir(&base)])).unwrap();
    let done = Arc::new(std::sync::atomic::AtomicBool::new(false));
    let writer = {
        let (done, f) = (Arc::clone(&done), f.clone());
        std::thread::spawn(move || {
            let mut file = fs::File::create(&f).unwrap();
            // Writes every 10 ms (never a debounce of quiet) for up to 5 s.
            for _ in 0..500 {
                if done.load(std::sync::atomic::Ordering::SeqCst) {
                    return true;
                }
                file.write_all(b"line\n").unwrap();
                std::thread::sleep(Duration::from_millis(10));
            }
            false
        })
    };
    let cs = change(&mut w).await;
    done.store(true, std::sync::atomic::Ordering::SeqCst);
    assert_eq!(cs.paths, set(&[&f]));
    assert!(
        writer.join().unwrap(),
        "the change set came only after the writes stopped"
    );
}

#[tokio::test]
async fn new_directories_are_watched_and_their_files_reported() {
    let tmp = tempfile::tempdir().unwrap();
    let base = tmp.path();
    let ctx = base.join("ctx");
    fs::create_dir(&ctx).unwrap();
    let (mut w, _) = Watcher::start(spec(
        base,
        vec![WatchRoot::dir(&ctx).with_exclude(node_modules)],
    ))
    .unwrap();
    let f = ctx.join("new/deep/f");
    put(&f, "1");
    let (seen, _) = changes_until(&mut w, &[&f]).await;
    assert!(seen.contains(&ctx.join("new")));
    let dirs = w.watched_dirs();
    assert!(dirs.contains(&ctx.join("new/deep")), "{dirs:?}");

    let g = ctx.join("new/deep/g");
    put(&g, "2");
    assert_eq!(change(&mut w).await.paths, set(&[&g]));

    // Renamed: the old name loses its watches, the new one gets them.
    fs::rename(ctx.join("new"), ctx.join("moved")).unwrap();
    let (seen, _) = changes_until(&mut w, &[&ctx.join("new"), &ctx.join("moved")]).await;
    assert!(seen.contains(&ctx.join("moved/deep/g")), "{seen:?}");
    let dirs = w.watched_dirs();
    assert!(
        dirs.contains(&ctx.join("moved/deep"))
            && !dirs.iter().any(|d| d.starts_with(ctx.join("new")))
    );
    let h = ctx.join("moved/deep/h");
    put(&h, "3");
    assert_eq!(change(&mut w).await.paths, set(&[&h]));

    // An excluded directory that appears stays unwatched.
    put(&ctx.join("node_modules/x/y.js"), "4");
    quiet(&mut w).await;
    assert!(
        !w.watched_dirs()
            .iter()
            .any(|d| d.starts_with(ctx.join("node_modules")))
    );
}

#[tokio::test]
async fn chmod_and_removal_trigger() {
    let tmp = tempfile::tempdir().unwrap();
    let base = tmp.path();
    let f = base.join("run.sh");
    put(&f, "#!/bin/sh");
    let (mut w, _) = Watcher::start(spec(base, vec![WatchRoot::dir(base)])).unwrap();
    fs::set_permissions(&f, fs::Permissions::from_mode(0o755)).unwrap();
    assert_eq!(change(&mut w).await.paths, set(&[&f]));
    fs::remove_file(&f).unwrap();
    assert_eq!(change(&mut w).await.paths, set(&[&f]));
}

#[tokio::test]
async fn a_file_root_survives_atomic_saves_and_ignores_its_siblings() {
    let tmp = tempfile::tempdir().unwrap();
    let base = tmp.path();
    let yaml = base.join("devloop.yaml");
    put(&yaml, "a: 1");
    let (mut w, _) = Watcher::start(spec(base, vec![WatchRoot::file("devloop.yaml")])).unwrap();
    for round in 0..2 {
        // An editor's save: a temporary file renamed over the original (a new inode each time).
        let temp = base.join(".devloop.yaml.swp");
        put(&temp, &format!("a: {round}"));
        fs::rename(&temp, &yaml).unwrap();
        assert_eq!(change(&mut w).await.paths, set(&[&yaml]));
    }
    put(&base.join("README.md"), "sibling");
    quiet(&mut w).await;
}

#[tokio::test]
async fn a_root_that_vanishes_is_picked_up_again() {
    let tmp = tempfile::tempdir().unwrap();
    let base = tmp.path();
    let ctx = base.join("ctx");
    put(&ctx.join("sub/f"), "1");
    let (mut w, _) = Watcher::start(spec(base, vec![WatchRoot::dir(&ctx)])).unwrap();
    fs::remove_dir_all(&ctx).unwrap();
    changes_until(&mut w, &[&ctx]).await;
    assert_eq!(w.watched_dirs(), Vec::<PathBuf>::new());
    put(&ctx.join("sub/f"), "2");
    // The root is reported when it is seen again, then watched as before.
    changes_until(&mut w, &[&ctx]).await;
    let g = ctx.join("sub/g");
    put(&g, "3");
    changes_until(&mut w, &[&g]).await;
    assert_eq!(w.watched_dirs(), vec![ctx.clone(), ctx.join("sub")]);
}

#[tokio::test]
async fn running_out_of_inotify_watches_at_start_falls_back_to_polling() {
    let tmp = tempfile::tempdir().unwrap();
    let base = tmp.path();
    for f in ["a/f", "b/f", "c/f", "node_modules/m/f"] {
        put(&base.join(f), "1");
    }
    let spec = spec(base, vec![WatchRoot::dir(base).with_exclude(node_modules)]);
    let (mut w, warnings) = Watcher::start_with(
        spec,
        Options {
            watch_limit: Some(2),
        },
    )
    .unwrap();
    assert_eq!(warnings.len(), 1, "{warnings:?}");
    assert!(matches!(&warnings[0], WatchWarning::WatchLimit { interval, .. } if *interval == D));
    let message = warnings[0].to_string();
    assert!(
        message.contains("fell back to polling every 50ms"),
        "{message}"
    );
    assert!(
        message.contains("hint: raise the limit (`sudo sysctl fs.inotify.max_user_watches="),
        "{message}"
    );
    assert_eq!(w.mode(), WatchMode::Polling { interval: D });
    // The polling walk honours the same rules.
    let names = ["", "a", "b", "c"];
    assert_eq!(
        w.watched_dirs(),
        names
            .iter()
            .map(|n| clean(&base.join(n)))
            .collect::<Vec<_>>()
    );

    let (af, new) = (base.join("a/f"), base.join("c/new"));
    put(&af, "2");
    put(&new, "new");
    changes_until(&mut w, &[&af, &new]).await;
    put(&base.join("node_modules/m/f"), "2");
    quiet(&mut w).await;
}

#[tokio::test]
async fn running_out_of_inotify_watches_later_falls_back_and_says_so() {
    let tmp = tempfile::tempdir().unwrap();
    let base = tmp.path();
    put(&base.join("sub/f"), "1");
    let spec = spec(base, vec![WatchRoot::dir(base)]);
    let (mut w, warnings) = Watcher::start_with(
        spec,
        Options {
            watch_limit: Some(2),
        },
    )
    .unwrap();
    assert_eq!((warnings, w.mode()), (vec![], WatchMode::Notify));

    let f = base.join("third/f");
    put(&f, "1");
    let (seen, warnings) = changes_until(&mut w, &[&base.join("third")]).await;
    assert!(
        seen.contains(base),
        "every root is reported after a fallback: {seen:?}"
    );
    assert_eq!(
        warnings,
        vec![WatchWarning::WatchLimit {
            path: base.join("third"),
            interval: D
        }],
    );
    assert_eq!(w.mode(), WatchMode::Polling { interval: D });
    let g = base.join("third/g");
    put(&g, "2");
    changes_until(&mut w, &[&g]).await;
}

#[tokio::test]
async fn polling_reports_writes_chmod_and_removals() {
    let tmp = tempfile::tempdir().unwrap();
    let base = tmp.path();
    let (f, g) = (base.join("src/f"), base.join("src/g"));
    put(&f, "aaaa");
    put(&g, "x");
    put(&base.join("node_modules/m"), "x");
    let spec = WatchSpec {
        trigger: Trigger::Polling,
        ..spec(base, vec![WatchRoot::dir(base).with_exclude(node_modules)])
    };
    let (mut w, warnings) = Watcher::start(spec).unwrap();
    assert_eq!(
        (warnings, w.mode()),
        (vec![], WatchMode::Polling { interval: D })
    );
    assert_eq!(w.watched_dirs(), vec![base.to_path_buf(), base.join("src")]);

    // Same size, new content.
    put(&f, "bbbb");
    assert_eq!(change(&mut w).await.paths, set(&[&f]));
    fs::set_permissions(&f, fs::Permissions::from_mode(0o700)).unwrap();
    assert_eq!(change(&mut w).await.paths, set(&[&f]));
    fs::remove_file(&g).unwrap();
    assert_eq!(change(&mut w).await.paths, set(&[&g]));
    fs::read(&f).unwrap();
    put(&base.join("node_modules/m"), "y");
    quiet(&mut w).await;
}

#[tokio::test]
async fn a_batch_waits_while_git_index_lock_exists() {
    let tmp = tempfile::tempdir().unwrap();
    let base = tmp.path();
    let src = base.join("src");
    fs::create_dir_all(base.join(".git")).unwrap();
    fs::create_dir(&src).unwrap();
    let lock = base.join(".git/index.lock");
    fs::write(&lock, "").unwrap();
    let (mut w, _) = Watcher::start(spec(base, vec![WatchRoot::dir(&src)])).unwrap();
    let (a, b) = (src.join("a"), src.join("b"));
    put(&a, "checked out");
    wait_pending(&w, &a);
    quiet(&mut w).await;
    assert!(w.try_take().is_none());
    put(&b, "checked out");
    fs::remove_file(&lock).unwrap();
    assert_eq!(change(&mut w).await.paths, set(&[&a, &b]));
}

#[test]
fn the_git_lock_is_found_through_parents_and_gitdir_files() {
    let tmp = tempfile::tempdir().unwrap();
    let repo = tmp.path().join("repo");
    fs::create_dir_all(repo.join(".git")).unwrap();
    fs::create_dir_all(repo.join("services/api")).unwrap();
    assert_eq!(
        find_git_lock(&repo.join("services/api")),
        Some(repo.join(".git/index.lock"))
    );
    let worktree = tmp.path().join("wt");
    put(
        &worktree.join(".git"),
        "gitdir: ../repo/.git/worktrees/wt\n",
    );
    assert_eq!(
        find_git_lock(&worktree),
        Some(worktree.join("../repo/.git/worktrees/wt/index.lock"))
    );
}

#[tokio::test]
async fn enter_is_a_manual_trigger_and_closing_the_input_ends_the_stream() {
    let tmp = tempfile::tempdir().unwrap();
    let spec = WatchSpec {
        trigger: Trigger::Manual,
        ..spec(tmp.path(), vec![WatchRoot::dir(tmp.path())])
    };
    let (mut w, _) = Watcher::start(spec).unwrap();
    assert_eq!((w.mode(), w.watched_dirs()), (WatchMode::Manual, vec![]));
    let (reader, mut writer) = std::io::pipe().unwrap();
    w.manual_trigger(reader).unwrap();
    put(&tmp.path().join("f"), "not watched in manual mode");
    writer.write_all(b"\n").unwrap();
    let cs = change(&mut w).await;
    assert!(cs.manual && cs.paths.is_empty(), "{cs:?}");
    drop(writer);
    assert!(timeout(EXPECT, w.next()).await.unwrap().is_none());
}

#[tokio::test]
async fn a_manual_trigger_releases_pending_changes_at_once() {
    let tmp = tempfile::tempdir().unwrap();
    let base = tmp.path();
    // A debounce far beyond the test's bound: only the manual trigger can release the batch in time.
    let spec = WatchSpec {
        debounce: Duration::from_secs(60),
        ..spec(base, vec![WatchRoot::dir(base)])
    };
    let (mut w, _) = Watcher::start(spec).unwrap();
    let (reader, mut writer) = std::io::pipe().unwrap();
    w.manual_trigger(reader).unwrap();
    let f = base.join("f");
    put(&f, "1");
    wait_pending(&w, &f);
    writer.write_all(b"\n").unwrap();
    let cs = change(&mut w).await;
    assert!(cs.manual);
    assert_eq!(cs.paths, set(&[&f]));
}

#[tokio::test]
async fn update_replaces_the_roots() {
    let tmp = tempfile::tempdir().unwrap();
    let base = tmp.path();
    let (a, b) = (base.join("a"), base.join("b"));
    fs::create_dir(&a).unwrap();
    fs::create_dir(&b).unwrap();
    let (mut w, _) = Watcher::start(spec(base, vec![WatchRoot::dir("a")])).unwrap();
    put(&a.join("f"), "1");
    assert_eq!(change(&mut w).await.paths, set(&[&a.join("f")]));
    assert_eq!(
        w.update(spec(base, vec![WatchRoot::dir("b")])).unwrap(),
        vec![]
    );
    assert_eq!(w.watched_dirs(), vec![b.clone()]);
    put(&a.join("f"), "2");
    quiet(&mut w).await;
    put(&b.join("f"), "3");
    assert_eq!(change(&mut w).await.paths, set(&[&b.join("f")]));
}

#[test]
fn start_errors_name_the_value() {
    let tmp = tempfile::tempdir().unwrap();
    let base = tmp.path();
    let err = Watcher::start(spec(base, vec![WatchRoot::dir("./api")]))
        .err()
        .unwrap();
    assert_eq!(
        err.to_string(),
        format!("watch root `{}` does not exist", base.join("api").display())
    );
    let mut bad = spec(base, vec![]);
    bad.ignore = vec!["src/[".into()];
    let err = Watcher::start(bad).err().unwrap();
    assert!(
        err.to_string()
            .starts_with("watch.ignore: invalid glob `src/[`: "),
        "{err}"
    );
    let err = WatchError::Register {
        path: PathBuf::from("/p/ctx"),
        source: std::io::Error::from_raw_os_error(13),
    };
    assert_eq!(
        err.to_string(),
        "cannot watch `/p/ctx`: Permission denied (os error 13)\n\nhint: devloop needs read access to every directory it watches"
    );
}

#[test]
fn ignore_globs_match_like_the_docs_say() {
    let mut spec = WatchSpec::new("/p");
    spec.ignore = vec![
        "*.swp".into(),
        "ctx/target/**".into(),
        "/build/".into(),
        "node_modules".into(),
    ];
    let rules = Rules::compile(&spec).unwrap();
    for ignored in [
        "/p/a.swp",
        "/p/x/y/a.swp",
        "/p/ctx/target",
        "/p/ctx/target/d/e",
        "/p/build",
        "/p/a/node_modules",
    ] {
        assert!(rules.user_ignored(Path::new(ignored)), "{ignored}");
    }
    for kept in [
        "/p",
        "/p/a.swpx",
        "/p/ctx/targets",
        "/p/x/build",
        "/p/ctx/target.rs",
        "/p/node_modules_x",
    ] {
        assert!(!rules.user_ignored(Path::new(kept)), "{kept}");
    }
}
