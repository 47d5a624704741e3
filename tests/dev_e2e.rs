//! `devloop dev` end to end: the real Docker daemon builds, the fake API server is the cluster. Edit a file →
//! exactly one rebuild → only the changed object is applied → Ctrl-C removes what was deployed.
#![allow(clippy::unwrap_used)]

mod support;

use std::time::{Duration, Instant};

use serde_json::Value;
use support::fake_apiserver::FakeApiServer;
use support::{Project, unique};
use tokio::io::{AsyncBufReadExt, BufReader};

/// Reads JSON events from the child's stdout until `pred` holds for one of them (bounded).
async fn wait_for(
    lines: &mut tokio::io::Lines<BufReader<tokio::process::ChildStdout>>,
    seen: &mut Vec<Value>,
    what: &str,
    pred: impl Fn(&Value) -> bool,
) -> Value {
    let deadline = Instant::now() + Duration::from_secs(90);
    loop {
        let left = deadline.saturating_duration_since(Instant::now());
        let line = tokio::time::timeout(left, lines.next_line())
            .await
            .unwrap_or_else(|_| panic!("timed out waiting for {what}; events: {seen:#?}"));
        let line = line.unwrap().unwrap_or_else(|| {
            panic!("devloop exited while waiting for {what}; events: {seen:#?}")
        });
        let event: Value =
            serde_json::from_str(&line).unwrap_or_else(|e| panic!("not JSON: {line}: {e}"));
        seen.push(event.clone());
        if pred(&event) {
            return event;
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn edit_rebuilds_once_applies_only_the_change_and_ctrl_c_cleans_up() {
    support::require_docker();
    let fake = FakeApiServer::start();
    let kube_dir = tempfile::tempdir().unwrap();
    let kubeconfig = fake.kubeconfig(kube_dir.path());
    let image = unique("devloop-test-dev");
    let ns = unique("devloop-dev");
    let mut p = Project::new();
    p.with_busybox("bin/busybox");
    p.write(
        "devloop.yaml",
        &format!("apiVersion: devloop/v1alpha1\nkind: Config\nmetadata:\n  name: devtest\nbuild:\n  artifacts:\n    - image: {image}\nmanifests:\n  rawYaml: [\"k8s/*.yaml\"]\n"),
    );
    p.write(
        "Dockerfile",
        "FROM scratch\nCOPY bin/busybox /bin/busybox\nCOPY www /www\n",
    );
    p.write(".dockerignore", "k8s\n");
    p.write("www/index.html", "v1\n");
    p.write(
        "k8s/app.yaml",
        &format!(
            "apiVersion: apps/v1\nkind: Deployment\nmetadata:\n  name: web\nspec:\n  replicas: 1\n  selector:\n    matchLabels: {{app: web}}\n  template:\n    metadata:\n      labels: {{app: web}}\n    spec:\n      containers:\n        - name: web\n          image: {image}\n---\napiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: settings\ndata:\n  mode: dev\n---\napiVersion: v1\nkind: Service\nmetadata:\n  name: web\nspec:\n  selector: {{app: web}}\n  ports:\n    - {{name: http, port: 18080, targetPort: 8080}}\n"
        ),
    );

    let mut child = tokio::process::Command::new(env!("CARGO_BIN_EXE_devloop"))
        .args([
            "dev",
            "-o",
            "json",
            "--port-forward",
            "--debounce",
            "50",
            "--kubeconfig",
            kubeconfig.to_str().unwrap(),
            "-n",
            &ns,
        ])
        .current_dir(p.path())
        .env("DEVLOOP_CACHE_DIR", p.cache.path())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::null())
        .kill_on_drop(true)
        .spawn()
        .unwrap();
    let mut lines = BufReader::new(child.stdout.take().unwrap()).lines();
    let mut seen = Vec::new();

    wait_for(&mut lines, &mut seen, "the first iteration", |e| {
        e["type"] == "iteration"
    })
    .await;
    let first_tag = seen.iter().find(|e| e["type"] == "buildFinished").unwrap()["data"]["tag"]
        .as_str()
        .unwrap()
        .to_string();
    p.cleanup_image(&first_tag);
    // `--port-forward`: every Service port gets a local listener once the first deploy is done.
    let forward = wait_for(&mut lines, &mut seen, "the port-forward", |e| {
        e["type"] == "portForwardStarted"
    })
    .await;
    assert_eq!(forward["data"]["resource"], "service/web");
    assert!(
        forward["data"]["address"]
            .as_str()
            .unwrap()
            .starts_with("127.0.0.1:"),
        "{forward}"
    );
    let deployment = fake.object("Deployment", &ns, "web").unwrap();
    assert!(
        deployment["spec"]["template"]["spec"]["containers"][0]["image"]
            .as_str()
            .unwrap()
            .starts_with(&format!("{image}:"))
    );
    assert!(fake.object("ConfigMap", &ns, "settings").is_some());

    // Edit: exactly one rebuild, and only the Deployment (whose image changed) is applied.
    fake.clear_requests();
    let before = seen.len();
    p.write("www/index.html", "v2\n");
    let iteration = wait_for(&mut lines, &mut seen, "the iteration after the edit", |e| {
        e["type"] == "iteration"
    })
    .await;
    let after = &seen[before..];
    assert_eq!(
        after.iter().filter(|e| e["type"] == "buildStarted").count(),
        1,
        "exactly one rebuild: {after:#?}"
    );
    let new_tag = after.iter().find(|e| e["type"] == "buildFinished").unwrap()["data"]["tag"]
        .as_str()
        .unwrap()
        .to_string();
    p.cleanup_image(&new_tag);
    assert_ne!(new_tag, first_tag);
    assert_eq!(iteration["data"]["applied"], 1, "{iteration}");
    let applies: Vec<String> = fake
        .requests()
        .iter()
        .filter(|r| r.is_apply())
        .map(|r| r.path.clone())
        .collect();
    assert_eq!(
        applies.len(),
        1,
        "only the changed object is applied: {applies:?}"
    );
    assert!(applies[0].contains("/deployments/web"), "{applies:?}");

    // Ctrl-C: cleanup removes what devloop deployed, then devloop exits.
    let pid = child.id().unwrap().to_string();
    assert!(
        std::process::Command::new("kill")
            .args(["-INT", &pid])
            .status()
            .unwrap()
            .success()
    );
    wait_for(&mut lines, &mut seen, "the stop summary", |e| {
        e["type"] == "devStopped"
    })
    .await;
    let status = tokio::time::timeout(Duration::from_secs(30), child.wait())
        .await
        .unwrap()
        .unwrap();
    // A signal stopped it: 128 + SIGINT, after the cleanup.
    assert_eq!(status.code(), Some(130), "{status:?}");
    assert!(
        fake.object("Deployment", &ns, "web").is_none(),
        "deployment removed"
    );
    assert!(
        fake.object("ConfigMap", &ns, "settings").is_none(),
        "configmap removed"
    );
}
