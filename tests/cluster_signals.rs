//! Signals end `dev` and `run` cleanly: SIGTERM (`timeout`, an IDE's stop button, `docker stop`) and SIGHUP (a
//! closed terminal) do what the first Ctrl-C does — the bounded cleanup removes everything devloop created — and
//! the exit code is 128 + the signal. Against the fake API server (or a real cluster with
//! `DEVLOOP_TEST_KUBECONFIG`), and on the Docker target.
#![allow(clippy::unwrap_used)]

mod support;

use std::process::{Command, ExitStatus, Stdio};
use std::time::{Duration, Instant};

use serde_json::Value;
use support::cluster::{self, Cluster};
use support::fake_apiserver::PodState;
use support::{Project, unique};
use tokio::io::{AsyncBufReadExt, BufReader};
use tokio::process::{Child, ChildStdout};

type Lines = tokio::io::Lines<BufReader<ChildStdout>>;

/// devloop in `p` with JSON events on stdout; stderr piped too (a test may close it, as a gone terminal does).
fn spawn(p: &Project, args: &[&str], kube: Option<&Cluster>) -> (Child, Lines) {
    let mut cmd = tokio::process::Command::new(env!("CARGO_BIN_EXE_devloop"));
    cmd.args(args).args(["-o", "json"]);
    if let Some(c) = kube {
        cmd.args(["--kubeconfig", c.kubeconfig.to_str().unwrap(), "-n", &c.ns]);
    }
    let mut child = cmd
        .current_dir(p.path())
        .env("DEVLOOP_CACHE_DIR", p.cache.path())
        .env("NO_COLOR", "1")
        .env_remove("KUBECONFIG")
        .env_remove("RUST_LOG")
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .kill_on_drop(true)
        .spawn()
        .unwrap();
    let lines = BufReader::new(child.stdout.take().unwrap()).lines();
    (child, lines)
}

/// Reads events until one of type `ty` (bounded); every event read is kept in `seen`.
async fn until_event(lines: &mut Lines, seen: &mut Vec<Value>, ty: &str) -> Value {
    let deadline = Instant::now() + Duration::from_secs(120);
    loop {
        let left = deadline.saturating_duration_since(Instant::now());
        let line = tokio::time::timeout(left, lines.next_line())
            .await
            .unwrap_or_else(|_| panic!("timed out waiting for {ty}: {seen:#?}"))
            .unwrap()
            .unwrap_or_else(|| panic!("devloop exited waiting for {ty}: {seen:#?}"));
        let e: Value = serde_json::from_str(&line).unwrap();
        seen.push(e.clone());
        if e["type"] == ty {
            return e;
        }
    }
}

fn kill(child: &Child, signal: &str) {
    let pid = child.id().unwrap().to_string();
    assert!(
        Command::new("kill")
            .args([&format!("-{signal}"), &pid])
            .status()
            .unwrap()
            .success()
    );
}

async fn exit_of(child: &mut Child) -> ExitStatus {
    tokio::time::timeout(Duration::from_secs(120), child.wait())
        .await
        .expect("devloop exits after the signal")
        .unwrap()
}

/// A Deployment, a ConfigMap and a Service: what devloop creates and must remove. `probe` adds a readiness probe
/// nothing answers (the pod never becomes ready on a real cluster).
fn project(probe: bool) -> Project {
    let mut deployment = cluster::deployment(
        "web",
        &std::env::var("DEVLOOP_TEST_IMAGE")
            .unwrap_or_else(|_| "registry.k8s.io/pause:3.10".into()),
    );
    if probe {
        deployment.push_str(
            "          readinessProbe:\n            tcpSocket: {port: 9}\n            periodSeconds: 1\n",
        );
    }
    cluster::project(&[
        ("web.yaml", deployment),
        ("settings.yaml", cluster::configmap("settings", "on")),
        (
            "svc.yaml",
            "apiVersion: v1\nkind: Service\nmetadata:\n  name: web\nspec:\n  selector: {app: web}\n  ports:\n    - {port: 80, targetPort: 8080}\n".to_string(),
        ),
    ])
}

/// Nothing devloop created is left in the test's namespace.
async fn assert_all_gone(c: &Cluster) {
    // Deletion is asynchronous on a real cluster (Deployments go through their finalizers): wait, bounded.
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        let left = [
            c.get("apps/v1", "Deployment", Some(&c.ns), "web")
                .await
                .map(|_| "deployment/web"),
            c.get("v1", "ConfigMap", Some(&c.ns), "settings")
                .await
                .map(|_| "configmap/settings"),
            c.get("v1", "Service", Some(&c.ns), "web")
                .await
                .map(|_| "service/web"),
        ];
        let left: Vec<&str> = left.into_iter().flatten().collect();
        if left.is_empty() {
            return;
        }
        assert!(Instant::now() < deadline, "left behind: {left:?}");
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

/// `dev` after its first deploy is ready, then `signal`: cleanup, then exit `code`. With `close_output`, stdout and
/// stderr are closed before the signal, as a closed terminal leaves them.
async fn dev_stopped_by(signal: &str, code: i32, close_output: bool) {
    support::require_docker();
    let c = Cluster::start().await;
    let p = project(false);
    let (mut child, mut lines) = spawn(&p, &["dev", "--debounce", "50"], Some(&c));
    let mut seen = Vec::new();
    until_event(&mut lines, &mut seen, "iteration").await;
    assert!(
        c.get("apps/v1", "Deployment", Some(&c.ns), "web")
            .await
            .is_some()
    );
    if close_output {
        drop(lines);
        drop(child.stderr.take());
        kill(&child, signal);
    } else {
        kill(&child, signal);
        until_event(&mut lines, &mut seen, "devStopped").await;
    }
    let status = exit_of(&mut child).await;
    assert_eq!(status.code(), Some(code), "{status:?}");
    assert_all_gone(&c).await;
    c.cleanup().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sigterm_during_dev_cleans_up_and_exits_143() {
    dev_stopped_by("TERM", 143, false).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sighup_during_dev_cleans_up_with_the_terminal_gone_and_exits_129() {
    dev_stopped_by("HUP", 129, true).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sigint_during_dev_cleans_up_and_exits_130() {
    dev_stopped_by("INT", 130, false).await;
}

/// `run` waiting for a pod that never becomes ready, then `signal`: what it deployed is deleted, exit `code`.
async fn run_stopped_by(signal: &str, code: i32, close_output: bool) {
    let c = Cluster::start().await;
    c.fail_image("pause", PodState::NotReady);
    let p = project(true);
    let (mut child, mut lines) = spawn(&p, &["run", "--status-check-deadline", "10m"], Some(&c));
    let mut seen = Vec::new();
    // Applied: the status wait has begun (or begins now; a signal before it cancels it just the same).
    until_event(&mut lines, &mut seen, "deployComplete").await;
    if close_output {
        drop(lines);
        drop(child.stderr.take());
    }
    kill(&child, signal);
    let status = exit_of(&mut child).await;
    assert_eq!(status.code(), Some(code), "{status:?}");
    assert_all_gone(&c).await;
    c.cleanup().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sigterm_during_run_status_wait_cleans_up_and_exits_143() {
    run_stopped_by("TERM", 143, false).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sighup_during_run_status_wait_cleans_up_and_exits_129() {
    run_stopped_by("HUP", 129, true).await;
}

/// The Docker target: SIGTERM during `dev` removes the containers and the network devloop created.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sigterm_during_dev_on_docker_removes_containers_and_network() {
    support::require_docker();
    let name = unique("dl-sig-docker");
    let image = unique("devloop-test-sig");
    let mut p = Project::new();
    p.with_busybox("bin/busybox");
    p.write(
        "devloop.yaml",
        &format!(
            "apiVersion: devloop/v1alpha1\nkind: Config\nmetadata:\n  name: {name}\nbuild:\n  artifacts:\n    - image: {image}\ndeploy:\n  docker:\n    stopGracePeriod: 1\n    containers:\n      - name: web\n        image: {image}\n        init: true\n"
        ),
    );
    p.write(
        "Dockerfile",
        "FROM scratch\nCOPY bin/busybox /bin/busybox\nENTRYPOINT [\"/bin/busybox\", \"sleep\", \"3600\"]\n",
    );
    let (mut child, mut lines) = spawn(&p, &["dev", "--debounce", "50"], None);
    let mut seen = Vec::new();
    until_event(&mut lines, &mut seen, "iteration").await;
    for e in seen.iter().filter(|e| e["type"] == "buildFinished") {
        p.cleanup_image(e["data"]["tag"].as_str().unwrap());
    }
    let listed = |what: &[&str], filter: String| {
        let out = Command::new("docker")
            .args(what)
            .args(["--filter", &filter])
            .output()
            .unwrap();
        String::from_utf8_lossy(&out.stdout).trim().to_string()
    };
    let containers = || listed(&["ps", "-aq"], format!("label=dev.devloop.project={name}"));
    let networks = || listed(&["network", "ls", "-q"], format!("name=devloop-{name}"));
    assert!(!containers().is_empty(), "the container runs");
    assert!(!networks().is_empty(), "the network exists");
    kill(&child, "TERM");
    until_event(&mut lines, &mut seen, "devStopped").await;
    let status = exit_of(&mut child).await;
    assert_eq!(status.code(), Some(143), "{status:?}");
    assert_eq!(containers(), "", "devloop's containers are removed");
    assert_eq!(networks(), "", "devloop's network is removed");
}
