//! `devloop deploy`/`delete` scenarios against a Kubernetes API: the fake API server in `tests/support`, or a real
//! cluster when `DEVLOOP_TEST_KUBECONFIG` names its kubeconfig (same scenarios, same assertions).
//!
//! Real-cluster notes: each test uses its own namespace `devloop-test-<pid>-<n>` and deletes it at the end;
//! `DEVLOOP_TEST_IMAGE` names an image the nodes can run (default `registry.k8s.io/pause:3.10`), and failure
//! scenarios use images that really fail there (an unpullable reference).
#![allow(clippy::unwrap_used, clippy::print_stderr)]

mod support;

use serde_json::Value;

use support::cluster::{Cluster, assert_exit, configmap, deployment, job, project};
use support::fake_apiserver::PodState;
use support::{Project, stderr, stdout};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn deploy_applies_waits_and_reports() {
    let c = Cluster::start().await;
    let p = project(&[
        ("app.yaml", deployment("api", &c.ok_image())),
        ("cm.yaml", configmap("settings", "1")),
    ]);
    let out = c.devloop(&p, &["deploy", "--images", "unused=x:1"]).await;
    assert_exit(&out, 0);
    let err = stderr(&out);
    assert!(
        err.contains(&format!("namespace {}", c.ns)) || err.contains(&c.ns),
        "context and namespace are announced: {err}"
    );
    let d = c
        .get("apps/v1", "Deployment", Some(&c.ns), "api")
        .await
        .unwrap();
    assert_eq!(
        d["metadata"]["labels"]["app.kubernetes.io/managed-by"],
        "devloop"
    );
    assert_eq!(d["metadata"]["labels"]["devloop.dev/project"], "shop");
    assert!(
        d["metadata"]["managedFields"]
            .as_array()
            .unwrap()
            .iter()
            .any(|m| m["manager"] == "devloop" && m["operation"] == "Apply")
    );
    assert!(
        err.contains("deployment/api") && err.contains("ready"),
        "{err}"
    );

    // The same deploy again changes nothing.
    let again = c.devloop(&p, &["deploy", "-o", "json"]).await;
    assert_exit(&again, 0);
    let events: Vec<Value> = stdout(&again)
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    let changes: Vec<&str> = events
        .iter()
        .filter(|e| e["type"] == "applied")
        .map(|e| e["data"]["change"].as_str().unwrap())
        .collect();
    assert_eq!(changes.len(), 2);
    c.cleanup().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn prune_removes_only_what_devloop_deployed() {
    let c = Cluster::start().await;
    let p = project(&[
        ("a.yaml", configmap("keep", "1")),
        ("b.yaml", configmap("drop", "1")),
    ]);
    assert_exit(&c.devloop(&p, &["deploy", "--no-status-check"]).await, 0);
    c.create_foreign_configmap("not-ours").await;
    std::fs::remove_file(p.path().join("k8s/b.yaml")).unwrap();
    let out = c.devloop(&p, &["deploy", "--no-status-check"]).await;
    assert_exit(&out, 0);
    assert!(
        stderr(&out).contains("configmap/drop") && stderr(&out).contains("pruned"),
        "{}",
        stderr(&out)
    );
    assert!(
        c.get("v1", "ConfigMap", Some(&c.ns), "drop")
            .await
            .is_none()
    );
    assert!(
        c.get("v1", "ConfigMap", Some(&c.ns), "keep")
            .await
            .is_some()
    );
    assert!(
        c.get("v1", "ConfigMap", Some(&c.ns), "not-ours")
            .await
            .is_some(),
        "objects devloop did not create are never touched"
    );
    c.cleanup().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn changed_job_template_is_recreated() {
    let c = Cluster::start().await;
    c.fail_image("never-matches", PodState::Running);
    let p = project(&[("job.yaml", job("migrate", &c.ok_image(), "v1"))]);
    assert_exit(&c.devloop(&p, &["deploy", "--no-status-check"]).await, 0);
    let first = c
        .get("batch/v1", "Job", Some(&c.ns), "migrate")
        .await
        .unwrap();
    p.write("k8s/job.yaml", &job("migrate", &c.ok_image(), "v2"));
    let out = c.devloop(&p, &["deploy", "--no-status-check"]).await;
    assert_exit(&out, 0);
    assert!(stderr(&out).contains("recreated"), "{}", stderr(&out));
    let second = c
        .get("batch/v1", "Job", Some(&c.ns), "migrate")
        .await
        .unwrap();
    assert_ne!(
        first["metadata"]["uid"], second["metadata"]["uid"],
        "a new Job"
    );
    assert_eq!(
        second["spec"]["template"]["spec"]["containers"][0]["args"][0],
        "v2"
    );
    c.cleanup().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_job_devloop_does_not_own_is_never_recreated() {
    let c = Cluster::start().await;
    if let Some(f) = &c.fake {
        // Another tool created the Job first.
        let mut j: Value = serde_saphyr::from_str(&job("migrate", &c.ok_image(), "v1")).unwrap();
        j["metadata"]["namespace"] = Value::String(c.ns.clone());
        let ns = serde_json::json!({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": c.ns}});
        f.put_object(ns).unwrap();
        f.put_object(j).unwrap();
    } else {
        return;
    }
    let p = project(&[("job.yaml", job("migrate", &c.ok_image(), "v2"))]);
    let out = c
        .devloop(&p, &["deploy", "--no-status-check", "--force-conflicts"])
        .await;
    assert_exit(&out, 1);
    assert!(
        stderr(&out).contains("devloop only re-creates objects it deployed"),
        "{}",
        stderr(&out)
    );
    c.cleanup().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn unserved_api_version_fails_before_anything_is_applied() {
    let c = Cluster::start().await;
    let cronjob = "apiVersion: batch/v1beta1\nkind: CronJob\nmetadata:\n  name: nightly\nspec:\n  schedule: \"0 3 * * *\"\n  jobTemplate:\n    spec:\n      template:\n        spec:\n          restartPolicy: Never\n          containers: [{name: main, image: x}]\n".to_string();
    let p = project(&[("a.yaml", configmap("first", "1")), ("cron.yaml", cronjob)]);
    if let Some(f) = &c.fake {
        f.clear_requests();
    }
    let out = c.devloop(&p, &["deploy", "--no-status-check"]).await;
    assert_exit(&out, 1);
    let err = stderr(&out);
    assert!(
        err.contains("does not serve `batch/v1beta1 CronJob`") && err.contains("`batch/v1`"),
        "names the served versions: {err}"
    );
    assert!(
        c.get("v1", "ConfigMap", Some(&c.ns), "first")
            .await
            .is_none(),
        "nothing was applied"
    );
    c.cleanup().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn rbac_forbidden_names_verb_resource_and_namespace() {
    let c = Cluster::start().await;
    let Some(f) = &c.fake else { return };
    f.deny("patch", "configmaps", Some(&c.ns));
    let p = project(&[("a.yaml", configmap("settings", "1"))]);
    let out = c.devloop(&p, &["deploy", "--no-status-check"]).await;
    assert_exit(&out, 1);
    let err = stderr(&out);
    assert!(
        err.contains("cannot patch resource \"configmaps\"") && err.contains(&c.ns),
        "{err}"
    );
    assert!(err.contains("kubectl auth can-i patch configmaps"), "{err}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn missing_namespace_is_created_and_announced() {
    let c = Cluster::start().await;
    let p = project(&[("a.yaml", configmap("settings", "1"))]);
    let out = c.devloop(&p, &["deploy", "--no-status-check"]).await;
    assert_exit(&out, 0);
    assert!(
        stderr(&out).contains(&format!("created namespace {}", c.ns)),
        "{}",
        stderr(&out)
    );
    assert!(c.get("v1", "Namespace", None, &c.ns).await.is_some());
    c.cleanup().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn delete_removes_what_devloop_deployed_and_dry_run_only_lists() {
    let c = Cluster::start().await;
    let p = project(&[
        ("app.yaml", deployment("api", &c.ok_image())),
        ("cm.yaml", configmap("settings", "1")),
    ]);
    assert_exit(&c.devloop(&p, &["deploy", "--no-status-check"]).await, 0);
    c.create_foreign_configmap("not-ours").await;

    let dry = c.devloop(&p, &["delete", "--dry-run"]).await;
    assert_exit(&dry, 0);
    assert!(
        stderr(&dry).contains("configmap/settings") && stderr(&dry).contains("would be deleted"),
        "{}",
        stderr(&dry)
    );
    assert!(!stderr(&dry).contains("not-ours"));
    assert!(
        c.get("v1", "ConfigMap", Some(&c.ns), "settings")
            .await
            .is_some()
    );

    let out = c.devloop(&p, &["delete", "--wait"]).await;
    assert_exit(&out, 0);
    assert!(
        c.get("v1", "ConfigMap", Some(&c.ns), "settings")
            .await
            .is_none()
    );
    assert!(
        c.get("apps/v1", "Deployment", Some(&c.ns), "api")
            .await
            .is_none()
    );
    assert!(
        c.get("v1", "ConfigMap", Some(&c.ns), "not-ours")
            .await
            .is_some()
    );
    assert!(
        c.get("v1", "Namespace", None, &c.ns).await.is_some(),
        "the namespace devloop created is kept"
    );
    c.cleanup().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn unreachable_cluster_is_an_environment_error() {
    let p = project(&[("a.yaml", configmap("settings", "1"))]);
    let dir = tempfile::tempdir().unwrap();
    let kubeconfig = dir.path().join("kubeconfig");
    std::fs::write(
        &kubeconfig,
        "apiVersion: v1\nkind: Config\nclusters:\n- name: gone\n  cluster:\n    server: http://127.0.0.1:9\nusers:\n- name: u\n  user:\n    token: t\ncontexts:\n- name: gone\n  context: {cluster: gone, user: u}\ncurrent-context: gone\n",
    )
    .unwrap();
    let out = tokio::task::spawn_blocking(move || {
        std::process::Command::new(env!("CARGO_BIN_EXE_devloop"))
            .args(["deploy", "--kubeconfig", kubeconfig.to_str().unwrap()])
            .current_dir(p.path())
            .env("DEVLOOP_CACHE_DIR", p.cache.path())
            .output()
            .unwrap()
    })
    .await
    .unwrap();
    assert_exit(&out, 2);
    assert!(
        stderr(&out).contains("cannot reach the cluster `gone`"),
        "{}",
        stderr(&out)
    );
}

/// Fail-fast reasons: the deploy exits 1 quickly, naming pod, container and reason.
async fn fails_fast_with(image: &str, state: Option<PodState>, reason: &str) {
    let c = Cluster::start().await;
    if let Some(s) = state {
        if c.fake.is_none() {
            return;
        }
        c.fail_image(image, s);
    }
    let p = project(&[("app.yaml", deployment("api", image))]);
    let out = c
        .devloop(&p, &["deploy", "--status-check-deadline", "2m"])
        .await;
    assert_exit(&out, 1);
    let err = stderr(&out);
    // Failed on the diagnosis, not when the deadline ran out (no timed assertion: the message says which).
    assert!(
        !err.contains("status check deadline"),
        "fails fast, not at the deadline:
{err}"
    );
    // An unschedulable pod has no container at fault; every other reason names one.
    let container_named = reason == "Unschedulable" || err.contains("container `main`");
    assert!(
        err.contains(reason) && err.contains("pod `api-") && container_named,
        "names pod, container and reason `{reason}`:\n{err}"
    );
    c.cleanup().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn image_pull_backoff_fails_fast() {
    fails_fast_with(
        "127.0.0.1:1/devloop-test/pull-fail:1",
        Some(PodState::ImagePullBackOff),
        "ImagePullBackOff",
    )
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn crash_loop_fails_fast() {
    fails_fast_with(
        "registry.invalid/crash:1",
        Some(PodState::CrashLoopBackOff { restarts: 2 }),
        "CrashLoopBackOff",
    )
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn create_container_config_error_fails_fast() {
    fails_fast_with(
        "registry.invalid/config:1",
        Some(PodState::CreateContainerConfigError {
            message: "configmap \"missing-cm\" not found".into(),
        }),
        "CreateContainerConfigError",
    )
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn oom_killed_fails_fast() {
    fails_fast_with(
        "registry.invalid/oom:1",
        Some(PodState::OOMKilled),
        "OOMKilled",
    )
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn unschedulable_fails_fast() {
    fails_fast_with(
        "registry.invalid/unschedulable:1",
        Some(PodState::Unschedulable),
        "Unschedulable",
    )
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn run_builds_deploys_and_waits_then_delete_cleans_up() {
    support::require_docker();
    let c = Cluster::start().await;
    if c.fake.is_none() && std::env::var_os("DEVLOOP_TEST_REGISTRY").is_none() {
        eprintln!(
            "skipped on a real cluster without DEVLOOP_TEST_REGISTRY: the built image must reach the nodes"
        );
        return;
    }
    let image = support::unique("devloop-test-run");
    let mut p = Project::new();
    p.with_busybox("bin/busybox");
    p.write(
        "devloop.yaml",
        &format!("apiVersion: devloop/v1alpha1\nkind: Config\nmetadata:\n  name: runtest\nbuild:\n  artifacts:\n    - image: {image}\nmanifests:\n  rawYaml: [\"k8s/*.yaml\"]\n"),
    );
    p.write(
        "Dockerfile",
        "FROM scratch\nCOPY bin/busybox /bin/busybox\n",
    );
    p.write(".dockerignore", "k8s\n");
    p.write("k8s/app.yaml", &deployment("api", &image));
    let mut args = vec!["run".to_string()];
    if let Ok(registry) = std::env::var("DEVLOOP_TEST_REGISTRY") {
        args.extend(["--default-repo".to_string(), registry]);
    }
    let args: Vec<&str> = args.iter().map(String::as_str).collect();
    let out = c.devloop(&p, &args).await;
    assert_exit(&out, 0);
    let err = stderr(&out);
    assert!(
        err.contains(&format!("{image}: building")) && err.contains("deployment/api ready"),
        "{err}"
    );
    let d = c
        .get("apps/v1", "Deployment", Some(&c.ns), "api")
        .await
        .unwrap();
    let deployed = d["spec"]["template"]["spec"]["containers"][0]["image"]
        .as_str()
        .unwrap()
        .to_string();
    p.cleanup_image(&deployed);
    assert!(
        deployed.contains(&format!("{image}:")),
        "the built reference is deployed: {deployed}"
    );

    // Nothing changed: a second run builds nothing and leaves the objects unchanged.
    let again = c.devloop(&p, &["run", "-o", "json"]).await;
    assert_exit(&again, 0);
    let events: Vec<Value> = stdout(&again)
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    assert!(
        events.iter().any(|e| e["type"] == "buildCached")
            && !events.iter().any(|e| e["type"] == "buildStarted")
    );
    assert_exit(&c.devloop(&p, &["delete", "--wait"]).await, 0);
    assert!(
        c.get("apps/v1", "Deployment", Some(&c.ns), "api")
            .await
            .is_none()
    );
    c.cleanup().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn rejected_credentials_say_they_may_have_expired() {
    let c = Cluster::start().await;
    if c.fake.is_none() {
        return;
    }
    let text = std::fs::read_to_string(&c.kubeconfig)
        .unwrap()
        .replace(support::fake_apiserver::TOKEN, "expired-token");
    let bad = c._dir.path().join("expired-kubeconfig");
    std::fs::write(&bad, text).unwrap();
    let p = project(&[("a.yaml", configmap("settings", "1"))]);
    let bad_path = bad.display().to_string();
    let out = tokio::task::spawn_blocking(move || {
        std::process::Command::new(env!("CARGO_BIN_EXE_devloop"))
            .args(["deploy", "--kubeconfig", &bad_path])
            .current_dir(p.path())
            .env("DEVLOOP_CACHE_DIR", p.cache.path())
            .output()
            .unwrap()
    })
    .await
    .unwrap();
    assert_exit(&out, 2);
    let err = stderr(&out);
    assert!(
        err.contains("401") && err.contains("may have expired"),
        "{err}"
    );
}
