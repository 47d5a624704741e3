//! Lifecycle hooks end to end: `devloop run` and `devloop dev` run `build.artifacts[].hooks` around real builds
//! (the Docker daemon) and `deploy.hooks` around the deploy, against the fake API server in `tests/support`, or a
//! real cluster when `DEVLOOP_TEST_KUBECONFIG` names its kubeconfig (same scenarios, same assertions). Host hooks
//! append to a log outside the project (inside it, the dev loop would watch it). Container hooks need an image
//! with `sh`: on the fake a busybox root, on a real cluster `DEVLOOP_TEST_SHELL_IMAGE` (e.g. `busybox:1.36`; the
//! scenario is skipped without it).
#![allow(clippy::unwrap_used, clippy::print_stderr)]

mod support;

use std::path::{Path, PathBuf};

use serde_json::Value;

use support::cluster::{Cluster, assert_exit, configmap, deployment, project};
use support::dev::Dev;
use support::fake_apiserver::busybox_image;
use support::{Project, events, stderr};

/// A host hook that appends `words` (shell-expanded) to `log`.
fn log_hook(log: &Path, words: &str) -> String {
    format!(
        "{{command: [sh, -c, 'echo \"{words}\" >> {}']}}",
        log.display()
    )
}

fn log_lines(log: &Path) -> Vec<String> {
    std::fs::read_to_string(log)
        .unwrap_or_default()
        .lines()
        .map(str::to_string)
        .collect()
}

/// A project with one artifact (busybox, `www/`) deployed by a Deployment, build and deploy hooks logging to `log`.
fn hooked_project(image: &str, log: &Path) -> Project {
    let p = Project::new();
    p.with_busybox("bin/busybox");
    let vars = "$IMAGE|$IMAGE_REPO|$IMAGE_TAG|$PUSH_IMAGE|$BUILD_CONTEXT";
    p.write(
        "devloop.yaml",
        &format!(
            "apiVersion: devloop/v1alpha1\nkind: Config\nmetadata:\n  name: hooktest\nbuild:\n  artifacts:\n    - image: {image}\n      hooks:\n        before: [{}]\n        after: [{}]\nmanifests:\n  rawYaml: [\"k8s/*.yaml\"]\ndeploy:\n  hooks:\n    before: [{{host: {}}}]\n    after: [{{host: {}}}]\n",
            log_hook(log, &format!("before-build|{vars}")),
            log_hook(log, "after-build|$IMAGE"),
            log_hook(log, "before-deploy|$KUBE_CONTEXT|$NAMESPACES|$SKAFFOLD_NAMESPACES"),
            log_hook(log, "after-deploy"),
        ),
    );
    p.write(
        "Dockerfile",
        "FROM scratch\nCOPY bin/busybox /bin/busybox\nCOPY www /www\n",
    );
    p.write(".dockerignore", "k8s\n");
    p.write("www/index.html", "v1\n");
    p.write("k8s/app.yaml", &deployment("web", image));
    p
}

/// Skips (true) on a real cluster without a registry its nodes pull from: built images must reach them.
fn needs_registry(c: &Cluster) -> bool {
    let skip = c.fake.is_none() && std::env::var_os("DEVLOOP_TEST_REGISTRY").is_none();
    if skip {
        eprintln!(
            "skipped on a real cluster without DEVLOOP_TEST_REGISTRY: the built image must reach the nodes"
        );
    }
    skip
}

fn registry_args(args: &mut Vec<String>) {
    if let Ok(registry) = std::env::var("DEVLOOP_TEST_REGISTRY") {
        args.extend(["--default-repo".to_string(), registry]);
    }
}

/// Index of the first event of `ty` (with `phase`, for hook events) in `all`.
fn position(all: &[Value], ty: &str, phase: Option<&str>) -> usize {
    all.iter()
        .position(|e| e["type"] == ty && phase.is_none_or(|p| e["data"]["phase"] == p))
        .unwrap_or_else(|| panic!("no {ty} {phase:?} in {all:#?}"))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn run_runs_build_and_deploy_hooks_in_order_with_their_variables() {
    support::require_docker();
    let c = Cluster::start().await;
    if needs_registry(&c) {
        return;
    }
    let logs = tempfile::tempdir().unwrap();
    let log = logs.path().join("hooks.log");
    let image = support::unique("devloop-test-hooks");
    let mut p = hooked_project(&image, &log);
    let mut args = vec!["run".to_string(), "-o".into(), "json".into()];
    registry_args(&mut args);
    let args: Vec<&str> = args.iter().map(String::as_str).collect();
    let out = c.devloop(&p, &args).await;
    assert_exit(&out, 0);
    let all = events(&out);
    let built = &all[position(&all, "buildFinished", None)];
    let reference = built["data"]["tag"].as_str().unwrap().to_string();
    p.cleanup_image(&reference);

    // Order: the build starts with its before-build hooks and ends with its after-build hooks; the deploy hooks
    // run before the apply and after the rollout is ready.
    assert!(
        position(&all, "buildStarted", None) < position(&all, "hookStarted", Some("before-build"))
    );
    assert!(
        position(&all, "hookFinished", Some("before-build"))
            < position(&all, "buildFinished", None)
    );
    assert!(
        position(&all, "buildFinished", None) < position(&all, "hookStarted", Some("after-build"))
    );
    assert!(
        position(&all, "hookFinished", Some("after-build"))
            < position(&all, "hookStarted", Some("before-deploy"))
    );
    assert!(
        position(&all, "hookFinished", Some("before-deploy"))
            < position(&all, "deployStarted", None)
    );
    assert!(
        position(&all, "statusComplete", None)
            < position(&all, "hookStarted", Some("after-deploy"))
    );

    let (repo, tag) = reference.rsplit_once(':').unwrap();
    let context = std::fs::canonicalize(p.path()).unwrap();
    let lines = log_lines(&log);
    assert_eq!(lines.len(), 4, "{lines:?}");
    let build: Vec<&str> = lines[0].split('|').collect();
    assert_eq!(
        build[..5],
        ["before-build", &reference, repo, tag, "false"],
        "{lines:?}"
    );
    assert!(
        [context.clone(), p.path().to_path_buf()].contains(&PathBuf::from(build[5])),
        "BUILD_CONTEXT is the absolute context: {lines:?}"
    );
    assert_eq!(lines[1], format!("after-build|{reference}"));
    let deploy: Vec<&str> = lines[2].split('|').collect();
    assert_eq!(deploy[0], "before-deploy");
    assert!(!deploy[1].is_empty(), "KUBE_CONTEXT: {lines:?}");
    assert_eq!(
        deploy[2..],
        [c.ns.as_str(), c.ns.as_str()],
        "NAMESPACES: {lines:?}"
    );
    assert_eq!(lines[3], "after-deploy");

    // A cache hit builds nothing: no build hooks; the deploy hooks run again.
    let again = c.devloop(&p, &args).await;
    assert_exit(&again, 0);
    let lines = log_lines(&log);
    assert_eq!(lines.len(), 6, "{lines:?}");
    assert_eq!(lines[4], lines[2], "{lines:?}");
    assert_eq!(lines[5], "after-deploy");
    c.cleanup().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_failing_before_deploy_hook_stops_run_with_its_output_and_deploys_nothing() {
    let c = Cluster::start().await;
    let p = project(&[("settings.yaml", configmap("settings", "a"))]);
    p.write(
        "devloop.yaml",
        "apiVersion: devloop/v1alpha1\nkind: Config\nmetadata:\n  name: shop\nmanifests:\n  rawYaml: [\"k8s/*.yaml\"]\ndeploy:\n  hooks:\n    before:\n      - host: {command: [sh, -c, 'echo checking migrations; echo \"3 migrations pending\" >&2; exit 3']}\n",
    );
    let out = c.devloop(&p, &["run"]).await;
    assert_exit(&out, 1);
    let err = stderr(&out);
    assert!(
        err.contains("hook before-deploy │ 3 migrations pending"),
        "the output as it came: {err}"
    );
    assert!(
        err.contains("before-deploy hook 1 `sh -c echo checking migrations;")
            && err.contains("exited with code 3: nothing was deployed"),
        "{err}"
    );
    // stdout and stderr are two pipes: their lines interleave as they arrive.
    let tail = err.split_once("its last lines:").unwrap().1;
    assert!(
        tail.contains("  │ checking migrations\n") && tail.contains("  │ 3 migrations pending\n"),
        "the last lines: {err}"
    );
    assert!(err.contains("hint: "), "{err}");
    assert!(
        c.get("v1", "ConfigMap", Some(&c.ns), "settings")
            .await
            .is_none(),
        "nothing deployed"
    );
    c.cleanup().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn dev_runs_the_build_hooks_again_after_a_save() {
    support::require_docker();
    let c = Cluster::start().await;
    if needs_registry(&c) {
        return;
    }
    let logs = tempfile::tempdir().unwrap();
    let log = logs.path().join("hooks.log");
    let image = support::unique("devloop-test-hooks-dev");
    let mut p = hooked_project(&image, &log);
    let mut args: Vec<String> = ["--debounce", "50", "--kubeconfig"]
        .iter()
        .map(|s| s.to_string())
        .collect();
    args.extend([
        c.kubeconfig.display().to_string(),
        "-n".into(),
        c.ns.clone(),
    ]);
    registry_args(&mut args);
    let mut dev = Dev::spawn(p.path(), p.cache.path(), &args, &[]);
    dev.until("the first iteration", |e| e["type"] == "iteration")
        .await;
    let first = log_lines(&log);
    assert_eq!(
        first
            .iter()
            .map(|l| l.split('|').next().unwrap())
            .collect::<Vec<_>>(),
        [
            "before-build",
            "after-build",
            "before-deploy",
            "after-deploy"
        ]
    );

    p.write("www/index.html", "v2\n");
    dev.until("the iteration after the save", |e| e["type"] == "iteration")
        .await;
    for e in dev.events_since(0, "buildFinished") {
        p.cleanup_image(e["data"]["tag"].as_str().unwrap());
    }
    let all = log_lines(&log);
    assert_eq!(
        all[4..]
            .iter()
            .map(|l| l.split('|').next().unwrap())
            .collect::<Vec<_>>(),
        [
            "before-build",
            "after-build",
            "before-deploy",
            "after-deploy"
        ],
        "{all:?}"
    );
    assert_ne!(all[4], all[0], "a new tag for the new content: {all:?}");

    assert_eq!(dev.stop().await, Some(130));
    c.cleanup().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn run_runs_a_container_deploy_hook_in_the_matching_pods_and_fails_with_it() {
    let c = Cluster::start().await;
    let image = match (&c.fake, std::env::var("DEVLOOP_TEST_SHELL_IMAGE")) {
        (Some(_), _) => "registry.local/hooktest-shell:1".to_string(),
        (None, Ok(image)) => image,
        (None, Err(_)) => {
            eprintln!(
                "skipped on a real cluster without DEVLOOP_TEST_SHELL_IMAGE: the hook needs `sh` in the pod"
            );
            return;
        }
    };
    let root = tempfile::tempdir().unwrap();
    c.set_image_root(
        "hooktest-shell",
        &busybox_image(root.path(), &["sh", "echo"]),
    );
    let p = project(&[
        ("web.yaml", deployment("web", &image)),
        ("other.yaml", deployment("other", &image)),
    ]);
    let config = |after: &str| {
        format!(
            "apiVersion: devloop/v1alpha1\nkind: Config\nmetadata:\n  name: shop\nmanifests:\n  rawYaml: [\"k8s/*.yaml\"]\ndeploy:\n  hooks:\n    before:\n      - container: {{command: [sh, -c, 'echo early > /early'], podName: 'web-*'}}\n    after:\n      - container: {{command: [sh, -c, '{after}'], podName: 'web-*', containerName: main}}\n"
        )
    };
    p.write("devloop.yaml", &config("echo hooked > /hooked; echo done"));
    let out = c.devloop(&p, &["run", "-o", "json"]).await;
    assert_exit(&out, 0);
    let all = events(&out);
    let started: Vec<&Value> = all.iter().filter(|e| e["type"] == "hookStarted").collect();
    assert_eq!(
        started.len(),
        1,
        "before: no pod ran yet; after: web only: {started:#?}"
    );
    assert_eq!(started[0]["data"]["phase"], "after-deploy");
    let container = started[0]["data"]["container"]
        .as_str()
        .unwrap()
        .to_string();
    let (pod, name) = container.split_once('/').unwrap();
    assert!(pod.starts_with("web-") && name == "main", "{container}");
    assert!(
        all.iter()
            .any(|e| e["type"] == "hookOutput" && e["data"]["line"] == "done"),
        "{all:#?}"
    );
    assert_eq!(
        c.read_file(pod, "main", "/hooked").await.as_deref(),
        Some(&b"hooked\n"[..])
    );

    // The pod is running now: the before hook runs in it; a failing after hook fails the run (exit 1).
    p.write("devloop.yaml", &config("echo broken >&2; exit 4"));
    let out = c.devloop(&p, &["run"]).await;
    assert_exit(&out, 1);
    let err = stderr(&out);
    assert!(
        err.contains(&format!("after-deploy hook 1 in {pod}/main `sh -c echo broken >&2; exit 4` exited with code 4: the deploy was applied, but counts as failed")),
        "{err}"
    );
    assert!(err.contains("│ broken"), "{err}");
    assert_eq!(
        c.read_file(pod, "main", "/early").await.as_deref(),
        Some(&b"early\n"[..])
    );
    c.cleanup().await;
}
