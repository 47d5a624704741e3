//! `devloop dev` on the Docker target takes the old container down while its replacement builds (issue 11): the
//! container of a rebuilt artifact is killed (not removed) while the build runs, and when no build replaces it —
//! the build failed, or newer content brought back the running image — the same container serves again, and one
//! `restored` event says so. A build hook that waits while a file outside the project exists holds the build at a
//! known point, so the tests observe the container during the build without timing anything.
#![allow(clippy::unwrap_used)]

mod support;

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

use serde_json::Value;
use support::dev::Dev;
use support::{Project, unique};

/// Removes whatever the session left of project `.0` (a failed test kills devloop before its cleanup) and every
/// image of repository `.1` it built.
struct Leftovers(String, String);

impl Drop for Leftovers {
    fn drop(&mut self) {
        let ids = Command::new("docker")
            .args(["ps", "-aq", "--filter"])
            .arg(format!("label=dev.devloop.project={}", self.0))
            .output()
            .unwrap();
        let ids: Vec<String> = String::from_utf8_lossy(&ids.stdout)
            .split_whitespace()
            .map(str::to_string)
            .collect();
        if !ids.is_empty() {
            let _ = Command::new("docker")
                .args(["rm", "-f"])
                .args(&ids)
                .output();
        }
        let _ = Command::new("docker")
            .args(["network", "rm", &format!("devloop-{}", self.0)])
            .output();
        support::remove_repository(&self.1);
    }
}

/// A busybox-httpd project (PID 1 ignores SIGTERM, no init) whose build waits while `hold` exists.
fn project(name: &str, image: &str, port: u16, hold: &Path) -> Project {
    let p = Project::new();
    p.with_busybox("bin/busybox");
    p.write(
        "devloop.yaml",
        &format!(
            "apiVersion: devloop/v1alpha1\nkind: Config\nmetadata:\n  name: {name}\nbuild:\n  artifacts:\n    - image: {image}\n      hooks:\n        before:\n          - command: [sh, -c, 'while [ -e {} ]; do sleep 0.05; done']\ndeploy:\n  docker:\n    stopGracePeriod: 10\n    containers:\n      - name: web\n        image: {image}\n        ports: [\"127.0.0.1:{port}:8080\"]\n",
            hold.display()
        ),
    );
    p.write("Dockerfile", DOCKERFILE);
    p.write("www/index.html", "v1\n");
    p
}

const DOCKERFILE: &str = "FROM scratch\nCOPY bin/busybox /bin/busybox\nCOPY www /www\nENTRYPOINT [\"/bin/busybox\", \"httpd\", \"-f\", \"-v\", \"-p\", \"8080\", \"-h\", \"/www\"]\n";

/// Waits (bounded) until container `name` no longer runs; it must still exist.
fn until_stopped(name: &str, dev: &Dev) {
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        match support::docker_inspect(name, "{{.State.Running}}").as_deref() {
            Some("false") => return,
            Some("true") => {}
            other => panic!("`{name}` is gone ({other:?}):\n{}", dev.transcript()),
        }
        assert!(
            Instant::now() < deadline,
            "`{name}` still runs while its replacement builds:\n{}",
            dev.transcript()
        );
        std::thread::sleep(Duration::from_millis(20));
    }
}

fn hold_file() -> (tempfile::TempDir, PathBuf) {
    let dir = tempfile::tempdir().unwrap();
    let hold = dir.path().join("hold");
    (dir, hold)
}

fn spawn(p: &Project) -> Dev {
    Dev::spawn(
        p.path(),
        p.cache.path(),
        &["--debounce".into(), "50".into()],
        &[],
    )
}

/// The old container is killed (not removed) while its replacement builds; the build fails, and the same
/// container serves the old content again, said once; a later good save replaces it.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_failing_build_brings_the_old_container_back() {
    support::require_docker();
    let name = unique("dl-replace-fail");
    let image = unique("devloop-test-drepl");
    let _leftovers = Leftovers(name.clone(), image.clone());
    let port = support::free_port();
    let (_dir, hold) = hold_file();
    let p = project(&name, &image, port, &hold);
    let web = format!("{name}-web");
    let mut dev = spawn(&p);
    dev.until_type("iteration").await;
    assert!(support::serves(port, "v1\n"), "{}", dev.transcript());
    let first = support::docker_inspect(&web, "{{.Id}}").unwrap();

    std::fs::write(&hold, "").unwrap();
    let from = dev.seen();
    p.write(
        "Dockerfile",
        &format!("{DOCKERFILE}RUN [\"/bin/busybox\", \"false\"]\n"),
    );
    dev.until_type("buildStarted").await;
    until_stopped(&web, &dev);
    assert_eq!(
        support::docker_inspect(&web, "{{.Id}}").as_deref(),
        Some(first.as_str())
    );
    std::fs::remove_file(&hold).unwrap();

    dev.until_type("iterationFailed").await;
    let restored = dev.until_type("restored").await;
    assert_eq!(
        restored["data"]["objects"],
        serde_json::json!(["container/web"])
    );
    assert_eq!(
        support::docker_inspect(&web, "{{.State.Running}}").as_deref(),
        Some("true"),
        "{}",
        dev.transcript()
    );
    assert_eq!(
        support::docker_inspect(&web, "{{.Id}}").as_deref(),
        Some(first.as_str())
    );
    assert!(support::serves(port, "v1\n"), "{}", dev.transcript());
    assert_eq!(dev.events_since(from, "restored").len(), 1);

    // Fixed: the next build replaces it as usual.
    p.write("Dockerfile", DOCKERFILE);
    p.write("www/index.html", "v2\n");
    dev.until("an iteration that rebuilt", |e: &Value| {
        e["type"] == "iteration"
            && e["data"]["rebuilt"]
                .as_array()
                .is_some_and(|r| !r.is_empty())
    })
    .await;
    assert!(support::serves(port, "v2\n"), "{}", dev.transcript());
    assert_ne!(support::docker_inspect(&web, "{{.Id}}").unwrap(), first);
    assert!(
        dev.events_since(0, "warning").is_empty(),
        "{}",
        dev.transcript()
    );
    assert_eq!(dev.stop().await, Some(130));
}

/// A build cancelled by a newer save that brings back the running content: the newer iteration finds the image in
/// the cache, so the stopped container is started again (the same one) instead of being replaced.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_build_cancelled_by_a_save_back_to_the_running_content_brings_the_old_container_back() {
    support::require_docker();
    let name = unique("dl-replace-cancel");
    let image = unique("devloop-test-drepc");
    let _leftovers = Leftovers(name.clone(), image.clone());
    let port = support::free_port();
    let (_dir, hold) = hold_file();
    let p = project(&name, &image, port, &hold);
    let web = format!("{name}-web");
    let mut dev = spawn(&p);
    dev.until_type("iteration").await;
    assert!(support::serves(port, "v1\n"), "{}", dev.transcript());
    let first = support::docker_inspect(&web, "{{.Id}}").unwrap();

    std::fs::write(&hold, "").unwrap();
    let from = dev.seen();
    p.write("www/index.html", "v2\n");
    dev.until_type("buildStarted").await;
    until_stopped(&web, &dev);
    p.write("www/index.html", "v1\n");
    dev.until_type("iterationCancelled").await;
    let restored = dev.until_type("restored").await;
    assert_eq!(
        restored["data"]["objects"],
        serde_json::json!(["container/web"])
    );
    assert_eq!(
        support::docker_inspect(&web, "{{.State.Running}}").as_deref(),
        Some("true")
    );
    assert_eq!(
        support::docker_inspect(&web, "{{.Id}}").as_deref(),
        Some(first.as_str())
    );
    assert!(support::serves(port, "v1\n"), "{}", dev.transcript());
    std::fs::remove_file(&hold).unwrap();
    assert!(
        dev.events_since(from, "iterationFailed").is_empty(),
        "{}",
        dev.transcript()
    );
    assert_eq!(
        dev.events_since(from, "buildStarted").len(),
        1,
        "{}",
        dev.transcript()
    );
    assert_eq!(dev.stop().await, Some(130));
}
