//! The dev loop under real editing (issue 11), with the Docker target and the real daemon: an editor's autosave
//! loop during builds, devloop's own output redirected into the project, and a Docker daemon that goes away in
//! the middle of a build.
#![allow(clippy::unwrap_used)]

mod support;

use std::fs::File;
use std::path::Path;
use std::process::Stdio;
use std::time::{Duration, Instant};

use serde_json::Value;
use support::{Project, stderr, unique};
use tokio::io::{AsyncReadExt, AsyncWriteExt};

/// A busybox httpd project on the Docker target whose build context is the whole project directory.
fn web_project(name: &str, image: &str, port: u16) -> Project {
    let p = Project::new();
    p.with_busybox("bin/busybox");
    p.write(
        "devloop.yaml",
        &format!(
            "apiVersion: devloop/v1alpha1\nkind: Config\nmetadata:\n  name: {name}\nbuild:\n  artifacts:\n    - image: {image}\ndeploy:\n  docker:\n    stopGracePeriod: 1\n    containers:\n      - name: web\n        image: {image}\n        init: true\n        ports: [\"127.0.0.1:{port}:8080\"]\n"
        ),
    );
    p.write(
        "Dockerfile",
        "FROM scratch\nCOPY bin/busybox /bin/busybox\nCOPY www /www\nENTRYPOINT [\"/bin/busybox\", \"httpd\", \"-f\", \"-p\", \"8080\", \"-h\", \"/www\"]\n",
    );
    p.write("www/index.html", "v1\n");
    p
}

/// The JSON events written so far to `path`.
fn events_in(path: &Path) -> Vec<Value> {
    std::fs::read_to_string(path)
        .unwrap_or_default()
        .lines()
        .filter_map(|l| serde_json::from_str(l).ok())
        .collect()
}

fn count(events: &[Value], ty: &str) -> usize {
    events.iter().filter(|e| e["type"] == ty).count()
}

/// Waits (bounded) until `pred` holds.
fn until(what: &str, mut pred: impl FnMut() -> bool) {
    let deadline = Instant::now() + Duration::from_secs(90);
    while !pred() {
        assert!(Instant::now() < deadline, "timed out waiting for {what}");
        std::thread::sleep(Duration::from_millis(50));
    }
}

/// `devloop dev -o json` in `p` with stdout and stderr going to `stdout`/`stderr` files.
fn spawn_dev(p: &Project, stdout: &Path, stderr: &Path) -> std::process::Child {
    std::process::Command::new(env!("CARGO_BIN_EXE_devloop"))
        .args(["dev", "-o", "json"])
        .current_dir(p.path())
        .env("DEVLOOP_CACHE_DIR", p.cache.path())
        .stdout(Stdio::from(File::create(stdout).unwrap()))
        .stderr(Stdio::from(File::create(stderr).unwrap()))
        .spawn()
        .unwrap()
}

/// Ctrl-C and the exit after cleanup; the images the session built are removed with the project.
fn stop(mut child: std::process::Child, p: &mut Project, events: &[Value]) {
    let pid = child.id().to_string();
    std::process::Command::new("kill")
        .args(["-INT", &pid])
        .status()
        .unwrap();
    let deadline = Instant::now() + Duration::from_secs(60);
    while child.try_wait().unwrap().is_none() {
        if Instant::now() > deadline {
            let _ = child.kill();
            panic!("devloop dev did not exit after Ctrl-C");
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    for e in events.iter().filter(|e| e["type"] == "buildFinished") {
        if let Some(tag) = e["data"]["tag"].as_str() {
            p.cleanup_image(tag);
        }
    }
}

/// Regression (issue 11): 200 saves of one file in ~6 s gave 10 builds and 8 `buildFailed` + `iterationFailed`
/// ("changed while the build context was being sent").
#[test]
fn an_autosave_burst_builds_a_few_times_fails_never_and_serves_the_last_save() {
    support::require_docker();
    let port = support::free_port();
    let mut p = web_project(&unique("burst"), &unique("devloop-test-burst"), port);
    let logs = tempfile::tempdir().unwrap();
    let (out, err) = (logs.path().join("events.jsonl"), logs.path().join("err"));
    let child = spawn_dev(&p, &out, &err);
    until("the first iteration", || {
        count(&events_in(&out), "iteration") >= 1
    });
    until("the first content", || {
        support::http_body(port).as_deref() == Some("v1\n")
    });
    let before = events_in(&out).len();

    let index = p.path().join("www/index.html");
    let burst = Instant::now();
    for i in 0..200 {
        std::fs::write(&index, format!("save {i}\n")).unwrap();
        std::thread::sleep(Duration::from_millis(30));
    }
    // The watcher's contract, whatever the machine's load: the first save on its leading edge, a burst that goes on
    // at most once per `BURST_CAP`, the rest once the saves stop. About 6 s of saves: 3 reports; a loaded machine
    // that stretches the loop past 10 s: 4. Each report starts at most one build (latest wins).
    let reports =
        2 + (burst.elapsed().as_secs_f64() / devloop::watch::BURST_CAP.as_secs_f64()) as usize;
    until("the last save served", || {
        support::http_body(port).as_deref() == Some("save 199\n")
    });
    // Whatever was still in flight settles.
    until("a quiet loop", || {
        let n = events_in(&out).len();
        std::thread::sleep(Duration::from_millis(1500));
        events_in(&out).len() == n
    });
    let all = events_in(&out);
    let after = &all[before..];
    stop(child, &mut p, &all);
    let builds = count(after, "buildStarted");
    assert!(
        (1..=reports).contains(&builds),
        "{builds} builds for one burst of saves ({reports} watcher reports at most): {after:#?}"
    );
    assert_eq!(
        count(after, "buildFailed") + count(after, "iterationFailed"),
        0,
        "edits in flight are not failures: {after:#?}"
    );
}

/// Regression (issue 11): `devloop dev -o json > events.jsonl 2> dev.log` in the project directory looped
/// forever: every line devloop wrote changed the build context and triggered a build.
#[test]
fn output_redirected_into_the_build_context_never_triggers_a_build() {
    support::require_docker();
    let port = support::free_port();
    let mut p = web_project(&unique("own-output"), &unique("devloop-test-own"), port);
    let (out, err) = (p.path().join("events.jsonl"), p.path().join("dev.log"));
    let child = spawn_dev(&p, &out, &err);
    until("the first iteration", || {
        count(&events_in(&out), "iteration") >= 1
    });
    until("the page", || {
        support::http_body(port).as_deref() == Some("v1\n")
    });
    // Nothing else changes: devloop's own lines (logs of the container, events) must not start anything.
    for _ in 0..5 {
        support::http_body(port);
        std::thread::sleep(Duration::from_millis(600));
    }
    let all = events_in(&out);
    stop(child, &mut p, &all);
    assert_eq!(count(&all, "buildStarted"), 1, "{all:#?}");
    assert_eq!(count(&all, "iteration"), 1, "{all:#?}");
    let warned: Vec<&Value> = all
        .iter()
        .filter(|e| {
            e["type"] == "warning"
                && e["data"]["message"]
                    .as_str()
                    .unwrap_or_default()
                    .contains("inside the build context")
        })
        .collect();
    assert_eq!(
        warned.len(),
        2,
        "once for stdout, once for stderr: {all:#?}"
    );
}

/// A stand-in Docker daemon on a unix socket that answers the version handshake and then goes away in the
/// middle of the first build's upload, as a restarting dockerd does.
async fn daemon_that_dies_mid_build(socket: std::path::PathBuf) {
    let listener = tokio::net::UnixListener::bind(&socket).unwrap();
    loop {
        let (mut conn, _) = listener.accept().await.unwrap();
        tokio::spawn(async move {
            let mut buf = Vec::new();
            loop {
                let mut chunk = [0u8; 4096];
                let n = match conn.read(&mut chunk).await {
                    Ok(0) | Err(_) => return,
                    Ok(n) => n,
                };
                buf.extend_from_slice(&chunk[..n]);
                let Some(end) = buf.windows(4).position(|w| w == b"\r\n\r\n") else {
                    continue;
                };
                let head = String::from_utf8_lossy(&buf[..end]).to_string();
                buf.drain(..end + 4);
                let path = head.split_whitespace().nth(1).unwrap_or("/").to_string();
                if path.contains("/build") {
                    // Read a little of the context, then vanish.
                    let _ = conn.read(&mut chunk).await;
                    return;
                }
                let (status, body) = if path.ends_with("/version") {
                    (
                        "200 OK",
                        r#"{"Version":"20.10.24","ApiVersion":"1.41","MinAPIVersion":"1.12","Os":"linux","Arch":"amd64"}"#.to_string(),
                    )
                } else if path.ends_with("/_ping") {
                    ("200 OK", "OK".to_string())
                } else {
                    (
                        "404 Not Found",
                        r#"{"message":"no such image"}"#.to_string(),
                    )
                };
                let reply = format!(
                    "HTTP/1.1 {status}\r\nContent-Type: application/json\r\nApi-Version: 1.41\r\nContent-Length: {}\r\n\r\n{body}",
                    body.len()
                );
                if conn.write_all(reply.as_bytes()).await.is_err() {
                    return;
                }
            }
        });
    }
}

/// Regression (issue 11): a daemon restart during a build read "cannot write the build context tar stream: the
/// daemon stopped reading the context" — a context error, for a daemon that went away.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_daemon_that_goes_away_mid_build_is_said_to_have_gone_away() {
    let dir = tempfile::tempdir().unwrap();
    let socket = dir.path().join("docker.sock");
    let server = tokio::spawn(daemon_that_dies_mid_build(socket.clone()));
    let p = Project::new();
    p.write(
        "devloop.yaml",
        "apiVersion: devloop/v1alpha1\nkind: Config\nmetadata:\n  name: gone\nbuild:\n  artifacts:\n    - image: gone-app\n",
    );
    p.write("Dockerfile", "FROM scratch\nCOPY data /data\n");
    // Enough context that the upload is still going when the daemon vanishes.
    let big: String = "0123456789abcdef".repeat(1 << 16);
    for i in 0..8 {
        p.write(&format!("data/blob{i}"), &big);
    }
    let host = format!("unix://{}", socket.display());
    let dir_path = p.path().to_path_buf();
    let cache = p.cache.path().to_path_buf();
    let out = tokio::task::spawn_blocking(move || {
        std::process::Command::new(env!("CARGO_BIN_EXE_devloop"))
            .arg("build")
            .current_dir(dir_path)
            .env("DEVLOOP_CACHE_DIR", cache)
            .env("DOCKER_HOST", host)
            .env("NO_COLOR", "1")
            .output()
            .unwrap()
    })
    .await
    .unwrap();
    server.abort();
    let err = stderr(&out);
    assert_eq!(out.status.code(), Some(2), "{err}");
    assert!(
        err.contains("the daemon went away while building `gone-app`"),
        "{err}"
    );
    assert!(err.contains("hint: is dockerd running?"), "{err}");
    assert!(!err.contains("tar stream"), "{err}");
}
