//! Unit tests of the dev loop (`runner::dev`) against the fake builder and deployer.
#![allow(clippy::unwrap_used)]

use super::*;
use crate::runner::fakes::{FakeBuilder, FakeDeployer, Fixture};
use std::os::unix::fs::PermissionsExt;
use std::sync::{Arc, Mutex};

struct Harness {
    fx: Fixture,
    builder: FakeBuilder,
    deployer: FakeDeployer,
    /// How many times the loop rendered a plan.
    renders: std::sync::atomic::AtomicUsize,
}

fn change(paths: &[PathBuf]) -> ChangeSet {
    ChangeSet {
        paths: paths.iter().cloned().collect(),
        first_event_at: Instant::now(),
        manual: false,
        warnings: Vec::new(),
    }
}

impl Harness {
    fn new() -> Harness {
        Harness {
            fx: Fixture::new(),
            builder: FakeBuilder::default(),
            deployer: FakeDeployer::default(),
            renders: Default::default(),
        }
    }

    /// Runs the loop; `script` gets the sender and the shutdown token and drives it.
    async fn run<F, Fut>(&self, script: F) -> (DevSummary, Vec<Event>)
    where
        F: FnOnce(
            mpsc::UnboundedSender<ChangeSet>,
            CancellationToken,
            Arc<Mutex<Vec<Event>>>,
        ) -> Fut,
        Fut: std::future::Future<Output = ()>,
    {
        self.run_with(BuildOptions::default(), script).await
    }

    /// [`Harness::run`] with these build options.
    async fn run_with<F, Fut>(&self, build: BuildOptions, script: F) -> (DevSummary, Vec<Event>)
    where
        F: FnOnce(
            mpsc::UnboundedSender<ChangeSet>,
            CancellationToken,
            Arc<Mutex<Vec<Event>>>,
        ) -> Fut,
        Fut: std::future::Future<Output = ()>,
    {
        let cfg = self.fx.config();
        let store = Store::open(self.fx.cache.path()).unwrap();
        let vars = Vars::new(self.fx.dir.path(), "t".into(), Arc::new(|_: &str| None));
        let (events, seen) = EventSink::collector();
        let reload_cfg = cfg.clone();
        let reload = move || -> Result<Config, Error> { Ok(reload_cfg.clone()) };
        let renders = &self.renders;
        let plan = |_: &Config, images: &[ArtifactImage]| -> Result<Vec<String>, Error> {
            renders.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
            Ok(images.iter().map(|i| i.reference.clone()).collect())
        };
        let dev = DevLoop {
            builder: &self.builder,
            deployer: &self.deployer,
            store: &store,
            vars: &vars,
            events,
            reload: &reload,
            plan: &plan,
            opts: DevOptions {
                build,
                status_deadline: Duration::from_secs(5),
                cleanup: true,
                cleanup_timeout: Duration::from_secs(5),
            },
            progress: tokio::sync::watch::channel(0).0,
            hooks_ran: Default::default(),
            deployed: Default::default(),
        };
        let (tx, rx) = mpsc::unbounded_channel();
        let shutdown = CancellationToken::new();
        let (summary, ()) = tokio::join!(
            dev.run(cfg, rx, None, shutdown.clone()),
            script(tx, shutdown, seen.clone())
        );
        let ev = seen.lock().unwrap().clone();
        (summary.unwrap(), ev)
    }

    fn path(&self, rel: &str) -> PathBuf {
        self.fx.dir.path().canonicalize().unwrap().join(rel)
    }
}

/// Waits until `pred` holds for the events seen so far (bounded).
async fn until(seen: &Arc<Mutex<Vec<Event>>>, pred: impl Fn(&[Event]) -> bool) {
    let deadline = Instant::now() + Duration::from_secs(10);
    while !pred(&seen.lock().unwrap()) {
        assert!(
            Instant::now() < deadline,
            "timed out; events: {:?}",
            seen.lock().unwrap()
        );
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
}

fn count(ev: &[Event], f: impl Fn(&Event) -> bool) -> usize {
    ev.iter().filter(|e| f(e)).count()
}

fn iterations(ev: &[Event]) -> usize {
    count(ev, |e| matches!(e, Event::Iteration { .. }))
}

#[tokio::test]
async fn first_iteration_builds_and_deploys_then_a_change_rebuilds_only_what_it_affects() {
    let h = Harness::new();
    let base_file = h.path("base/f");
    let (summary, ev) = h
        .run(|tx, shutdown, seen| async move {
            until(&seen, |e| iterations(e) == 1).await;
            std::fs::write(&base_file, "base v2").unwrap();
            tx.send(change(std::slice::from_ref(&base_file))).unwrap();
            until(&seen, |e| iterations(e) == 2).await;
            shutdown.cancel();
        })
        .await;
    assert_eq!(summary.iterations, 2);
    let builds = h.builder.builds.lock().unwrap().clone();
    assert_eq!(
        builds.len(),
        5,
        "3 at start, then base and app (which requires base): {builds:?}"
    );
    assert!(builds[3..].contains(&"base".to_string()) && builds[3..].contains(&"app".to_string()));
    let mut second = ev.iter().filter_map(|e| match e {
        Event::Iteration {
            rebuilt, cached, ..
        } => Some((rebuilt.clone(), cached.clone())),
        _ => None,
    });
    let (rebuilt, _) = second.next_back().unwrap();
    assert_eq!(rebuilt, vec!["app".to_string(), "base".to_string()]);
    assert_eq!(
        *h.deployer.deletes.lock().unwrap(),
        1,
        "cleanup on shutdown"
    );
    assert!(summary.median_ms().is_some());
}

/// Regression (issue 11): an editor's autosave during a build was reported as `buildFailed` +
/// `iterationFailed` ("changed while the build context was being sent").
#[tokio::test]
async fn a_file_changed_while_its_context_is_sent_supersedes_the_build_silently() {
    let h = Harness::new();
    let app_file = h.path("app/f");
    let (summary, ev) = h
        .run_with(
            BuildOptions {
                changes_supersede: true,
                ..BuildOptions::default()
            },
            |tx, shutdown, seen| {
                let builder = &h.builder;
                async move {
                    until(&seen, |e| iterations(e) == 1).await;
                    builder
                        .changed_during_send
                        .lock()
                        .unwrap()
                        .push("app".into());
                    std::fs::write(&app_file, "app v2").unwrap();
                    tx.send(change(std::slice::from_ref(&app_file))).unwrap();
                    // The save that overtook the build arrives: the loop goes again with both.
                    tokio::time::sleep(Duration::from_millis(50)).await;
                    std::fs::write(&app_file, "app v3").unwrap();
                    tx.send(change(std::slice::from_ref(&app_file))).unwrap();
                    until(&seen, |e| iterations(e) == 2).await;
                    shutdown.cancel();
                }
            },
        )
        .await;
    assert_eq!(
        count(&ev, |e| matches!(
            e,
            Event::IterationFailed { .. } | Event::BuildFailed { .. }
        )),
        0,
        "{ev:#?}"
    );
    assert_eq!(summary.iterations, 2);
    assert_eq!(
        summary.save_to_ready_ms.len(),
        1,
        "the start-up is not a save"
    );
    assert_eq!(summary.rebuilt, 1);
}

#[test]
fn the_summary_is_over_saves_with_a_true_median_and_a_p90_from_ten() {
    let mut s = DevSummary {
        save_to_ready_ms: vec![900, 100],
        ..Default::default()
    };
    assert_eq!(
        s.median_ms(),
        Some(500),
        "two values: their mean, not the lower one"
    );
    assert_eq!(s.p90_ms(), None);
    s.save_to_ready_ms = (1..=10).map(|i| i * 100).collect();
    assert_eq!(s.median_ms(), Some(550));
    assert_eq!(s.p90_ms(), Some(900));
    s.save_to_ready_ms = vec![300, 100, 200];
    assert_eq!(s.median_ms(), Some(200));
}

#[tokio::test]
async fn every_iteration_loads_what_it_built_into_local_nodes_and_deploys_their_names() {
    let h = Harness::new();
    let base_file = h.path("base/f");
    let build = BuildOptions {
        load: Some(crate::build::load::LocalCluster::Kind("dev".into())),
        ..BuildOptions::default()
    };
    h.run_with(build, |tx, shutdown, seen| async move {
        until(&seen, |e| iterations(e) == 1).await;
        std::fs::write(&base_file, "base v2").unwrap();
        tx.send(change(std::slice::from_ref(&base_file))).unwrap();
        until(&seen, |e| iterations(e) == 2).await;
        shutdown.cancel();
    })
    .await;
    let loads = h.builder.loads.lock().unwrap().clone();
    assert_eq!(
        loads.len(),
        5,
        "3 at start, then the new base and app: {loads:?}"
    );
    let deploys = h.deployer.deploys.lock().unwrap().clone();
    for plan in &deploys {
        assert!(plan.iter().all(|r| loads.contains(r)), "{plan:?} {loads:?}");
    }
    assert_ne!(deploys[0], deploys[deploys.len() - 1]);
}

#[tokio::test]
async fn a_change_without_new_content_triggers_nothing() {
    let h = Harness::new();
    let f = h.path("other/f");
    let (_, ev) = h
        .run(|tx, shutdown, seen| async move {
            until(&seen, |e| iterations(e) == 1).await;
            // A save without an edit: the event arrives, the content is the same.
            std::fs::write(&f, "other").unwrap();
            tx.send(change(std::slice::from_ref(&f))).unwrap();
            until(&seen, |e| {
                count(e, |x| matches!(x, Event::BuildCached { .. })) >= 1
            })
            .await;
            tokio::time::sleep(Duration::from_millis(100)).await;
            shutdown.cancel();
        })
        .await;
    assert_eq!(h.builder.builds.lock().unwrap().len(), 3, "no rebuild");
    assert_eq!(iterations(&ev), 1, "no iteration is reported");
    let deploys = h.deployer.deploys.lock().unwrap().clone();
    assert_eq!(
        deploys[0],
        deploys[deploys.len() - 1],
        "the same plan: nothing to apply"
    );
}

#[tokio::test]
async fn changes_during_a_build_cancel_it_and_are_merged() {
    let h = Harness::new();
    let (a, o) = (h.path("app/f"), h.path("other/f"));
    let builder_delay = &h.builder.delay;
    let (_, ev) = h
        .run(|tx, shutdown, seen| async move {
            until(&seen, |e| iterations(e) == 1).await;
            *builder_delay.lock().unwrap() = Duration::from_millis(400);
            std::fs::write(&a, "app v2").unwrap();
            tx.send(change(std::slice::from_ref(&a))).unwrap();
            until(&seen, |e| {
                count(e, |x| matches!(x, Event::BuildStarted { .. })) >= 4
            })
            .await;
            // A second edit while the first build runs: the build is dropped, both changes go together.
            std::fs::write(&o, "other v2").unwrap();
            tx.send(change(std::slice::from_ref(&o))).unwrap();
            until(&seen, |e| iterations(e) == 2).await;
            shutdown.cancel();
        })
        .await;
    assert_eq!(
        count(&ev, |e| matches!(e, Event::IterationCancelled { .. })),
        1
    );
    let last = ev.iter().rev().find_map(|e| match e {
        Event::Iteration {
            rebuilt, changed, ..
        } => Some((rebuilt.clone(), changed.clone())),
        _ => None,
    });
    let (rebuilt, changed) = last.unwrap();
    assert_eq!(
        rebuilt,
        vec!["app".to_string(), "other".to_string()],
        "the merged iteration rebuilds both"
    );
    assert_eq!(changed.len(), 2);
    // `app`'s container stayed stopped across the cancelled build (its rebuild went on): stopped once, never
    // started again; `other`'s stopped when its build started.
    assert_eq!(h.deployer.replaced.lock().unwrap().len(), 2);
    assert!(h.deployer.restored.lock().unwrap().is_empty());
}

#[tokio::test]
async fn coalesces_queued_changes_into_one_iteration() {
    let h = Harness::new();
    let (a, o) = (h.path("app/f"), h.path("other/f"));
    let (_, ev) = h
        .run(|tx, shutdown, seen| async move {
            until(&seen, |e| iterations(e) == 1).await;
            std::fs::write(&a, "app v3").unwrap();
            std::fs::write(&o, "other v3").unwrap();
            tx.send(change(std::slice::from_ref(&a))).unwrap();
            tx.send(change(std::slice::from_ref(&o))).unwrap();
            until(&seen, |e| iterations(e) >= 2).await;
            tokio::time::sleep(Duration::from_millis(200)).await;
            shutdown.cancel();
        })
        .await;
    let rebuilt: Vec<Vec<String>> = ev
        .iter()
        .filter_map(|e| match e {
            Event::Iteration { rebuilt, .. } => Some(rebuilt.clone()),
            _ => None,
        })
        .collect();
    let all: Vec<String> = rebuilt[1..].concat();
    assert!(
        all.contains(&"app".to_string()) && all.contains(&"other".to_string()),
        "{rebuilt:?}"
    );
    assert_eq!(all.len(), 2, "each rebuilt once: {rebuilt:?}");
}

#[tokio::test]
async fn a_failed_build_is_reported_and_the_loop_keeps_watching() {
    let h = Harness::new();
    let o = h.path("other/f");
    let fail = &h.builder.fail;
    let (summary, ev) = h
        .run(|tx, shutdown, seen| async move {
            until(&seen, |e| iterations(e) == 1).await;
            fail.lock().unwrap().push("other".into());
            std::fs::write(&o, "broken").unwrap();
            tx.send(change(std::slice::from_ref(&o))).unwrap();
            until(&seen, |e| {
                count(e, |x| matches!(x, Event::IterationFailed { .. })) == 1
            })
            .await;
            fail.lock().unwrap().clear();
            std::fs::write(&o, "fixed").unwrap();
            tx.send(change(std::slice::from_ref(&o))).unwrap();
            until(&seen, |e| iterations(e) == 2).await;
            shutdown.cancel();
        })
        .await;
    assert_eq!(summary.iterations, 3);
    assert_eq!(
        count(&ev, |e| matches!(e, Event::IterationFailed { .. })),
        1
    );
    // Both rebuilds stopped `other`'s container while they built; the failed one started it again, said once.
    assert_eq!(h.deployer.replaced.lock().unwrap().len(), 2);
    let restored: Vec<&Event> = ev
        .iter()
        .filter(|e| matches!(e, Event::Restored { .. }))
        .collect();
    assert_eq!(restored.len(), 1, "{restored:?}");
    assert!(
        matches!(restored[0], Event::Restored { reason, .. } if reason == "the iteration failed"),
        "{restored:?}"
    );
}

#[test]
fn affected_artifacts_include_dependents() {
    let fx = Fixture::new();
    let cfg = fx.config();
    let base = fx.dir.path().canonicalize().unwrap().join("base/f");
    assert_eq!(
        affected_artifacts(&cfg, &BTreeSet::from([base])),
        vec!["app".to_string(), "base".to_string()]
    );
    let unrelated = fx.dir.path().canonicalize().unwrap().join("README.md");
    assert!(affected_artifacts(&cfg, &BTreeSet::from([unrelated])).is_empty());
}

/// Gives artifact `other` these sync settings and Dockerfile, and these files under `other/`.
fn with_sync(h: &Harness, sync: &str, dockerfile: &str, files: &[&str]) {
    let root = h.fx.dir.path();
    for f in files {
        let p = root.join("other").join(f);
        std::fs::create_dir_all(p.parent().unwrap()).unwrap();
        std::fs::write(p, f).unwrap();
    }
    std::fs::write(root.join("other/Dockerfile"), dockerfile).unwrap();
    std::fs::write(
        root.join("devloop.yaml"),
        format!("apiVersion: devloop/v1alpha1\nkind: Config\nbuild:\n  artifacts:\n    - image: app\n      context: app\n      requires: [{{image: base}}]\n    - image: base\n      context: base\n    - image: other\n      context: other\n      sync: {sync}\n"),
    )
    .unwrap();
}

fn skipped(ev: &[Event]) -> Vec<String> {
    ev.iter()
        .filter_map(|e| match e {
            Event::SyncSkipped { image, reason } => Some(format!("{image}: {reason}")),
            _ => None,
        })
        .collect()
}

#[tokio::test]
async fn inferred_edits_and_deletes_are_synced_and_a_file_no_rule_takes_says_why_it_rebuilds() {
    let h = Harness::new();
    with_sync(
        &h,
        "{infer: ['www/**', 'docs/**']}",
        "FROM scratch\nWORKDIR /www\nCOPY www/ ./\nCOPY f /f\n",
        &["www/index.html", "www/old.html", "docs/notes.md"],
    );
    let notes = h.path("other/docs/notes.md");
    let (deploys, builder) = (&h.deployer.deploys, &h.builder);
    let (index, old, f) = (
        h.path("other/www/index.html"),
        h.path("other/www/old.html"),
        h.path("other/f"),
    );
    std::fs::set_permissions(&index, std::fs::Permissions::from_mode(0o604)).unwrap();
    let (summary, ev) = h
        .run(|tx, shutdown, seen| async move {
            until(&seen, |e| iterations(e) == 1).await;
            std::fs::write(&index, "v2").unwrap();
            tx.send(change(std::slice::from_ref(&index))).unwrap();
            until(&seen, |e| iterations(e) == 2).await;
            std::fs::remove_file(&old).unwrap();
            tx.send(change(std::slice::from_ref(&old))).unwrap();
            until(&seen, |e| iterations(e) == 3).await;
            // A file the image does not have: nothing to build or sync (the iteration deploys the same plan).
            let before = deploys.lock().unwrap().len();
            std::fs::write(&notes, "notes v2").unwrap();
            tx.send(change(std::slice::from_ref(&notes))).unwrap();
            let deadline = Instant::now() + Duration::from_secs(10);
            while deploys.lock().unwrap().len() == before {
                assert!(Instant::now() < deadline, "the iteration did not deploy");
                tokio::time::sleep(Duration::from_millis(10)).await;
            }
            assert_eq!(builder.builds.lock().unwrap().len(), 3);
            std::fs::write(&f, "f v2").unwrap();
            tx.send(change(&[f.clone(), index.clone()])).unwrap();
            until(&seen, |e| iterations(e) == 4).await;
            shutdown.cancel();
        })
        .await;
    let syncs = h.deployer.syncs.lock().unwrap().clone();
    assert_eq!(syncs.len(), 2, "{syncs:#?}");
    assert_eq!(
        (syncs[0].copy[0].dest.as_str(), syncs[0].copy[0].mode),
        ("/www/index.html", 0o604)
    );
    assert!(syncs[0].delete.is_empty());
    assert!(syncs[1].copy.is_empty());
    assert_eq!(syncs[1].delete, ["/www/old.html"]);
    let deleted: Vec<Vec<String>> = ev
        .iter()
        .filter_map(|e| match e {
            Event::Synced { deleted, .. } => Some(deleted.clone()),
            _ => None,
        })
        .collect();
    assert_eq!(deleted, [vec![], vec!["other/www/old.html".to_string()]]);
    assert_eq!(
        h.builder.builds.lock().unwrap().len(),
        4,
        "3 at start, then `f` rebuilt other"
    );
    assert_eq!(
        skipped(&ev),
        ["other: `f` is not taken by a sync rule"],
        "one line, once"
    );
    assert_eq!((summary.synced, summary.rebuilt), (2, 1));
    assert_eq!(
        h.deployer.replaced.lock().unwrap().len(),
        1,
        "only the rebuild stops containers while it builds; a sync or nothing to build stops none"
    );
}

/// Regression: a change whose build failed was forgotten, so the next change, a synced file, was synced over an
/// image that lacked the first one.
#[tokio::test]
async fn a_change_whose_build_failed_is_rebuilt_not_synced_over() {
    let h = Harness::new();
    with_sync(
        &h,
        "{manual: [{src: 'www/**', dest: /www, strip: www/}]}",
        "FROM scratch\nCOPY www /www\nCOPY f /f\n",
        &["www/index.html"],
    );
    let (index, f) = (h.path("other/www/index.html"), h.path("other/f"));
    let fail = &h.builder.fail;
    let (_, ev) = h
        .run(|tx, shutdown, seen| async move {
            until(&seen, |e| iterations(e) == 1).await;
            fail.lock().unwrap().push("other".into());
            std::fs::write(&f, "f v2").unwrap();
            tx.send(change(std::slice::from_ref(&f))).unwrap();
            until(&seen, |e| {
                count(e, |x| matches!(x, Event::IterationFailed { .. })) == 1
            })
            .await;
            fail.lock().unwrap().clear();
            std::fs::write(&index, "v2").unwrap();
            tx.send(change(std::slice::from_ref(&index))).unwrap();
            until(&seen, |e| iterations(e) == 2).await;
            shutdown.cancel();
        })
        .await;
    assert!(
        h.deployer.syncs.lock().unwrap().is_empty(),
        "nothing synced"
    );
    let builds = h.builder.builds.lock().unwrap().clone();
    assert_eq!(
        builds[3..],
        ["other", "other"],
        "the failed build, then again"
    );
    assert_eq!(
        skipped(&ev),
        [
            "other: `f` is not taken by a sync rule",
            "other: `f` is not taken by a sync rule"
        ]
    );
}

#[tokio::test]
async fn a_failed_sync_rebuilds_and_says_why() {
    let h = Harness::new();
    with_sync(
        &h,
        "{manual: [{src: 'www/**', dest: /www, strip: www/}]}",
        "FROM scratch\nCOPY www /www\n",
        &["www/index.html"],
    );
    *h.deployer.sync_fails.lock().unwrap() = Some("exec forbidden".into());
    let index = h.path("other/www/index.html");
    let (_, ev) = h
        .run(|tx, shutdown, seen| async move {
            until(&seen, |e| iterations(e) == 1).await;
            std::fs::write(&index, "v2").unwrap();
            tx.send(change(std::slice::from_ref(&index))).unwrap();
            until(&seen, |e| iterations(e) == 2).await;
            shutdown.cancel();
        })
        .await;
    assert_eq!(h.builder.builds.lock().unwrap().len(), 4);
    assert!(
        ev.iter()
            .any(|e| matches!(e, Event::Warning { message } if message
        == "other: file sync failed, rebuilding instead: exec forbidden"))
    );
}

fn failures(ev: &[Event]) -> usize {
    count(ev, |e| matches!(e, Event::IterationFailed { .. }))
}

#[tokio::test]
async fn a_save_runs_build_and_deploy_hooks_again_and_a_sync_runs_only_sync_hooks() {
    let h = Harness::new();
    let fx = &h.fx;
    std::fs::create_dir_all(fx.dir.path().join("other/static")).unwrap();
    fx.with_hooks(
        &format!(
            "      hooks:\n        before: [{}]\n        after: [{}]\n      sync:\n        manual: [{{src: 'static/**', dest: /srv}}]\n        hooks:\n          before: [{{host: {}}}]\n          after: [{{host: {}}}]\n",
            fx.log_hook("before-build", 0),
            fx.log_hook("after-build", 0),
            fx.log_hook("before-sync $FILES_ADDED_OR_MODIFIED", 0),
            fx.log_hook("after-sync", 0),
        ),
        &format!(
            "deploy:\n  hooks:\n    before: [{{host: {}}}]\n    after: [{{host: {}}}]\n",
            fx.log_hook("before-deploy", 0),
            fx.log_hook("after-deploy", 0)
        ),
    );
    let (code, css) = (h.path("other/f"), h.path("other/static/a.css"));
    let (summary, ev) = h
        .run(|tx, shutdown, seen| async move {
            until(&seen, |e| iterations(e) == 1).await;
            std::fs::write(&code, "other v2").unwrap();
            tx.send(change(std::slice::from_ref(&code))).unwrap();
            until(&seen, |e| iterations(e) == 2).await;
            std::fs::write(&css, "body {}").unwrap();
            tx.send(change(std::slice::from_ref(&css))).unwrap();
            until(&seen, |e| iterations(e) == 3).await;
            shutdown.cancel();
        })
        .await;
    assert_eq!(summary.iterations, 3, "{ev:#?}");
    let css = h.path("other/static/a.css");
    assert_eq!(
        h.fx.hook_log(),
        [
            "before-build",
            "after-build",
            "before-deploy",
            "after-deploy",
            "before-build",
            "after-build",
            "before-deploy",
            "after-deploy",
            &format!("before-sync {}", css.display()),
            "after-sync",
        ]
    );
    let synced: Vec<String> = h
        .deployer
        .syncs
        .lock()
        .unwrap()
        .iter()
        .map(|s| s.image.clone())
        .collect();
    assert_eq!(synced, ["other"]);
}

#[tokio::test]
async fn a_failing_before_deploy_hook_fails_the_iteration_and_the_loop_keeps_watching() {
    let h = Harness::new();
    let ok = h.fx.dir.path().join("ok");
    h.fx.with_hooks(
        "",
        &format!(
            "deploy:\n  hooks:\n    before:\n      - host: {{command: [sh, -c, 'echo not yet; test -e {}']}}\n",
            ok.display()
        ),
    );
    let code = h.path("other/f");
    let (summary, ev) = h
        .run(|tx, shutdown, seen| async move {
            until(&seen, |e| failures(e) == 1).await;
            std::fs::write(&ok, "").unwrap();
            std::fs::write(&code, "other v2").unwrap();
            tx.send(change(std::slice::from_ref(&code))).unwrap();
            until(&seen, |e| iterations(e) == 1).await;
            shutdown.cancel();
        })
        .await;
    let message = ev
        .iter()
        .find_map(|e| match e {
            Event::IterationFailed { message } => Some(message.clone()),
            _ => None,
        })
        .unwrap();
    assert!(
        message.contains("before-deploy hook 1 `sh -c echo not yet; test -e"),
        "{message}"
    );
    assert!(
        message.contains("exited with code 1: nothing was deployed"),
        "{message}"
    );
    assert!(message.contains("│ not yet"), "{message}");
    assert_eq!(summary.iterations, 2);
    assert_eq!(
        h.deployer.deploys.lock().unwrap().len(),
        1,
        "only the second deployed"
    );
}

#[tokio::test]
async fn a_container_deploy_hook_runs_once_in_each_new_pod() {
    let h = Harness::new();
    h.fx.with_hooks(
        "",
        "deploy:\n  hooks:\n    after:\n      - container: {command: [warm-up], podName: 'api-*'}\n",
    );
    let pod = |name: &str| crate::runner::target::TargetContainer {
        namespace: Some("ns".into()),
        pod: name.into(),
        container: "app".into(),
    };
    *h.deployer.containers.lock().unwrap() = vec![pod("api-1"), pod("web-1")];
    let code = h.path("other/f");
    let (summary, _) = h
        .run(|tx, shutdown, seen| {
            let deployer = &h.deployer;
            let (one, two) = (pod("api-1"), pod("api-2"));
            async move {
                until(&seen, |e| iterations(e) == 1).await;
                // The rollout replaced nothing yet: api-1 still runs, api-2 is new.
                *deployer.containers.lock().unwrap() = vec![one, two];
                std::fs::write(&code, "other v2").unwrap();
                tx.send(change(std::slice::from_ref(&code))).unwrap();
                until(&seen, |e| iterations(e) == 2).await;
                shutdown.cancel();
            }
        })
        .await;
    assert_eq!(summary.iterations, 2);
    let ran: Vec<String> = h
        .deployer
        .execs
        .lock()
        .unwrap()
        .iter()
        .map(|(c, _)| c.clone())
        .collect();
    assert_eq!(ran, ["api-1/app", "api-2/app"]);
}

/// An artifact with sync rules built from another (`requires`) is rebuilt when only the other one changed: none of
/// its own files changed, but its build arg did. (A first version of "a change of files the image leaves out
/// rebuilds nothing" took it as up to date; this test failed on it.)
#[tokio::test]
async fn an_artifact_whose_required_image_is_rebuilt_is_rebuilt_not_synced() {
    let h = Harness::new();
    with_sync(
        &h,
        "{manual: [{src: 'www/**', dest: /www, strip: www/}]}",
        "FROM scratch\nCOPY www /www\n",
        &["www/index.html"],
    );
    let root = h.fx.dir.path();
    std::fs::write(
        root.join("devloop.yaml"),
        "apiVersion: devloop/v1alpha1\nkind: Config\nbuild:\n  artifacts:\n    - image: base\n      context: base\n    - image: other\n      context: other\n      requires: [{image: base}]\n      sync: {manual: [{src: 'www/**', dest: /www, strip: www/}]}\n",
    )
    .unwrap();
    let base_file = h.path("base/Dockerfile");
    let builds = &h.builder.builds;
    let (_, _) = h
        .run(|tx, shutdown, seen| async move {
            until(&seen, |e| iterations(e) == 1).await;
            let before = builds.lock().unwrap().len();
            std::fs::write(&base_file, "FROM scratch\nLABEL v=2\n").unwrap();
            tx.send(change(std::slice::from_ref(&base_file))).unwrap();
            until(&seen, |e| iterations(e) == 2).await;
            let rebuilt: Vec<String> = builds.lock().unwrap()[before..].to_vec();
            assert_eq!(
                rebuilt.len(),
                2,
                "base and the artifact built from it: {rebuilt:?}"
            );
            shutdown.cancel();
        })
        .await;
}

/// A save that only syncs renders the plan once: the deploy after the sync uses the plan the sync rendered (a
/// second render is a second `kustomize build` on every save).
#[tokio::test]
async fn a_synced_save_renders_the_plan_once() {
    let h = Harness::new();
    with_sync(
        &h,
        "{manual: [{src: 'www/**', dest: /www, strip: www/}]}",
        "FROM scratch\nCOPY www /www\n",
        &["www/index.html"],
    );
    let index = h.path("other/www/index.html");
    let renders = &h.renders;
    let (summary, _) = h
        .run(|tx, shutdown, seen| async move {
            until(&seen, |e| iterations(e) == 1).await;
            let before = renders.load(std::sync::atomic::Ordering::SeqCst);
            std::fs::write(&index, "v2").unwrap();
            tx.send(change(std::slice::from_ref(&index))).unwrap();
            until(&seen, |e| iterations(e) == 2).await;
            assert_eq!(
                renders.load(std::sync::atomic::Ordering::SeqCst) - before,
                1
            );
            shutdown.cancel();
        })
        .await;
    assert_eq!(summary.synced, 1);
}
