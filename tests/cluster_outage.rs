//! The API server goes away for 15 s during `devloop dev` and comes back on the same address (as a restarted
//! kube-apiserver does): devloop says so once each way, prints nothing else about it (no retry flood), log streaming
//! resumes without repeating lines, and the next edit is built, deployed and ready. Needs the fake API server (a
//! test cannot stop a real cluster's apiserver): skipped with `DEVLOOP_TEST_KUBECONFIG`.
#![allow(clippy::unwrap_used, clippy::print_stderr)]

mod support;

use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use serde_json::Value;
use support::dev::Dev;
use support::fake_apiserver::FakeApiServer;
use support::{Project, unique};
use tokio::io::{AsyncBufReadExt, BufReader};

fn spawn_dev(p: &Project, kubeconfig: &std::path::Path, ns: &str) -> Dev {
    let args: Vec<String> = ["--port-forward", "--debounce", "50", "--kubeconfig"]
        .iter()
        .map(|s| s.to_string())
        .chain([kubeconfig.display().to_string(), "-n".into(), ns.into()])
        .collect();
    Dev::spawn(p.path(), p.cache.path(), &args, &[])
}

/// `devloop dev` in human mode (what a user's terminal shows), its stderr lines collected.
fn spawn_human(
    p: &Project,
    kubeconfig: &std::path::Path,
    ns: &str,
) -> (tokio::process::Child, Arc<Mutex<Vec<String>>>) {
    let mut child = tokio::process::Command::new(env!("CARGO_BIN_EXE_devloop"))
        .args(["dev", "--debounce", "50"])
        .args(["--kubeconfig", kubeconfig.to_str().unwrap(), "-n", ns])
        .current_dir(p.path())
        .env("DEVLOOP_CACHE_DIR", p.cache.path())
        .env("NO_COLOR", "1")
        .env_remove("RUST_LOG")
        .env_remove("KUBECONFIG")
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::piped())
        .kill_on_drop(true)
        .spawn()
        .unwrap();
    let lines = Arc::new(Mutex::new(Vec::new()));
    let mut stderr = BufReader::new(child.stderr.take().unwrap()).lines();
    let l = Arc::clone(&lines);
    tokio::spawn(async move {
        while let Ok(Some(line)) = stderr.next_line().await {
            l.lock().unwrap().push(line);
        }
    });
    (child, lines)
}

/// Waits (bounded) until a stderr line from `from` on contains `text`; returns its index.
async fn until_line(lines: &Mutex<Vec<String>>, from: usize, text: &str) -> usize {
    let deadline = Instant::now() + Duration::from_secs(120);
    loop {
        if let Some(i) = lines.lock().unwrap()[from..]
            .iter()
            .position(|l| l.contains(text))
        {
            return from + i;
        }
        assert!(
            Instant::now() < deadline,
            "no line with `{text}`: {:#?}",
            lines.lock().unwrap()
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

fn is_log(e: &Value, line: &str) -> bool {
    e["type"] == "log" && e["data"]["line"] == line
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn apiserver_away_for_15s_says_so_once_each_way_and_everything_resumes() {
    if std::env::var_os("DEVLOOP_TEST_KUBECONFIG").is_some() {
        eprintln!("skipped: a test cannot stop a real cluster's API server");
        return;
    }
    support::require_docker();
    let fake = FakeApiServer::start();
    let kube_dir = tempfile::tempdir().unwrap();
    let kubeconfig = fake.kubeconfig(kube_dir.path());
    let image = unique("devloop-test-outage");
    let ns = unique("devloop-outage");
    let mut p = Project::new();
    p.with_busybox("bin/busybox");
    p.write(
        "devloop.yaml",
        &format!("apiVersion: devloop/v1alpha1\nkind: Config\nmetadata:\n  name: outage\nbuild:\n  artifacts:\n    - image: {image}\nmanifests:\n  rawYaml: [\"k8s/*.yaml\"]\n"),
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
            "apiVersion: apps/v1\nkind: Deployment\nmetadata:\n  name: web\nspec:\n  replicas: 1\n  selector:\n    matchLabels: {{app: web}}\n  template:\n    metadata:\n      labels: {{app: web}}\n    spec:\n      containers:\n        - name: web\n          image: {image}\n---\napiVersion: v1\nkind: Service\nmetadata:\n  name: web\nspec:\n  selector: {{app: web}}\n  ports:\n    - {{name: http, port: 18080, targetPort: 8080}}\n"
        ),
    );

    // The same outage seen on a terminal: a second session (no build) in human mode, in its own namespace.
    let human_project = Project::new();
    human_project.write(
        "devloop.yaml",
        "apiVersion: devloop/v1alpha1\nkind: Config\nmetadata:\n  name: outage-human\nmanifests:\n  rawYaml: [\"k8s/*.yaml\"]\n",
    );
    human_project.write(
        "k8s/api.yaml",
        "apiVersion: apps/v1\nkind: Deployment\nmetadata:\n  name: api\nspec:\n  replicas: 2\n  selector:\n    matchLabels: {app: api}\n  template:\n    metadata:\n      labels: {app: api}\n    spec:\n      containers:\n        - name: api\n          image: registry.local/outage/api:1\n",
    );
    let (mut human, terminal) =
        spawn_human(&human_project, &kubeconfig, &unique("devloop-outage-human"));
    until_line(&terminal, 0, "⟳ start").await;

    let mut dev = spawn_dev(&p, &kubeconfig, &ns);
    dev.until("the first iteration", |e| e["type"] == "iteration")
        .await;
    let forward = dev
        .until("the port-forward", |e| e["type"] == "portForwardStarted")
        .await;
    let forward: std::net::SocketAddr = forward["data"]["address"]
        .as_str()
        .unwrap()
        .parse()
        .unwrap();
    let pod = fake
        .objects("Pod")
        .into_iter()
        .find(|o| o["metadata"]["namespace"] == ns.as_str())
        .and_then(|o| o["metadata"]["name"].as_str().map(str::to_string))
        .unwrap();
    // The pod's port 8080 answers `hello` (the fake runs no containers: a local server stands in).
    let upstream = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    fake.serve_pod_port(&ns, &pod, 8080, upstream.local_addr().unwrap());
    tokio::spawn(async move {
        while let Ok((mut s, _)) = upstream.accept().await {
            let _ = tokio::io::AsyncWriteExt::write_all(&mut s, b"hello\n").await;
        }
    });
    assert!(fake.append_log(&ns, &pod, "web", "before the outage"));
    dev.until("the log line", |e| is_log(e, "before the outage"))
        .await;

    // Away for 15 s: listening socket closed, every open connection (watch, log stream) dropped.
    let (events_before, stderr_before) = dev.counts();
    let terminal_before = terminal.lock().unwrap().len();
    fake.set_unreachable(true);
    dev.until("clusterUnreachable", |e| e["type"] == "clusterUnreachable")
        .await;
    // A connection through the port-forward while the cluster is away waits for it, then reaches the pod.
    let through_forward = tokio::spawn(async move {
        let mut s = tokio::net::TcpStream::connect(forward).await.unwrap();
        let mut got = String::new();
        tokio::io::AsyncReadExt::read_to_string(&mut s, &mut got)
            .await
            .unwrap();
        got
    });
    // Meanwhile etcd moved on and compacted: watches resuming from before get 410 Gone and must re-list.
    fake.put_object(serde_json::json!({
        "apiVersion": "v1", "kind": "ConfigMap",
        "metadata": {"name": "elsewhere", "namespace": "default"}
    }))
    .unwrap();
    fake.compact();
    tokio::time::sleep(Duration::from_secs(15)).await;
    fake.clear_requests();
    fake.set_unreachable(false);
    let back = dev
        .until("clusterReachable", |e| e["type"] == "clusterReachable")
        .await;
    assert!(back["data"]["downMs"].as_u64().unwrap() >= 15_000, "{back}");
    let reachable = until_line(&terminal, terminal_before, "cluster reachable again").await;
    {
        let t = terminal.lock().unwrap();
        let about = &t[terminal_before..=reachable];
        assert!(
            about.len() < 10,
            "the terminal during the outage: {about:#?}"
        );
        assert_eq!(
            about
                .iter()
                .filter(|l| l.contains("cluster unreachable"))
                .count(),
            1,
            "{about:#?}"
        );
    }
    {
        let o = dev.written.lock().unwrap();
        let during = &o.events[events_before..];
        let printed = &o.stderr[stderr_before..];
        assert!(
            during.len() + printed.len() < 10,
            "few lines about the outage: events {during:#?}, stderr {printed:#?}"
        );
        assert_eq!(
            during
                .iter()
                .filter(|e| e["type"] == "clusterUnreachable")
                .count(),
            1,
            "{during:#?}"
        );
        assert!(
            during.iter().all(|e| e["type"] != "log"),
            "no line is repeated: {during:#?}"
        );
        assert!(
            during.iter().all(|e| e["type"] != "portForwardFailed"),
            "the forward's wait is the cluster's outage, not a failure of its own: {during:#?}"
        );
    }
    let answered = tokio::time::timeout(Duration::from_secs(60), through_forward)
        .await
        .expect("the connection made during the outage is served after the return")
        .unwrap();
    assert_eq!(answered, "hello\n");

    // The pod watch resumes on its own backoff: its old resourceVersion is gone (a watch answers 200 with an ERROR
    // event 410 Expired, as recorded), so it lists again; without the compaction it would only watch again.
    let pods_path = format!("/api/v1/namespaces/{ns}/pods");
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let requests = fake.requests();
        let on_pods = |watch: bool| {
            requests
                .iter()
                .filter(|r| r.path == pods_path && r.param("watch").is_some() == watch)
                .map(|r| r.code)
                .collect::<Vec<_>>()
        };
        if on_pods(false).contains(&Some(200)) {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "the pod watch did not re-list: watches {:?}, lists {:?}",
            on_pods(true),
            on_pods(false)
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }

    // Log streaming resumed where it was: a new line arrives, once; the earlier one is not shown again.
    assert!(fake.append_log(&ns, &pod, "web", "after the return"));
    dev.until("the log line after the return", |e| {
        is_log(e, "after the return")
    })
    .await;

    // An edit after the return is built, deployed and ready.
    p.write("www/index.html", "v2\n");
    let iteration = dev
        .until("the iteration after the edit", |e| e["type"] == "iteration")
        .await;
    assert_eq!(
        iteration["data"]["rebuilt"].as_array().unwrap().len(),
        1,
        "{iteration}"
    );
    dev.interrupt();
    let human_pid = human.id().unwrap().to_string();
    std::process::Command::new("kill")
        .args(["-INT", &human_pid])
        .status()
        .unwrap();
    let _ = human.wait().await;
    dev.until("the stop", |e| e["type"] == "devStopped").await;
    let _ = dev.exit_code().await;
    let o = dev.written.lock().unwrap();
    for e in o.events.iter().filter(|e| e["type"] == "buildFinished") {
        p.cleanup_image(e["data"]["tag"].as_str().unwrap());
    }
    let shown = |line: &str| o.events.iter().filter(|e| is_log(e, line)).count();
    assert_eq!(shown("before the outage"), 1, "{:#?}", o.events);
    assert_eq!(shown("after the return"), 1, "{:#?}", o.events);
    assert_eq!(
        o.events
            .iter()
            .filter(|e| e["type"] == "clusterReachable")
            .count(),
        1
    );
}
