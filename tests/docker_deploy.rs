//! The Docker deploy target against the real daemon (tier "docker" in docs/testing.md): containers from
//! FROM-scratch busybox images, replaced only when they change, dependency order, readiness failures with logs,
//! prune, logs, and a delete that leaves what devloop did not create alone.
#![allow(clippy::unwrap_used)]

mod support;

use std::collections::BTreeMap;
use std::io::{Read, Write};
use std::process::Command;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use devloop::config::deploy::{
    Condition, Container, Dependency, DockerDeploy, Healthcheck, PortMapping, Restart, Volume,
};
use devloop::deploy::docker::{DockerPlan, DockerTarget};
use devloop::deploy::{Change, DeleteOptions, DeployError, Deployer};
use devloop::event::{Event, EventSink};
use devloop::runner::target::DeployTarget;
use support::{Project, unique};
use tokio_util::sync::CancellationToken;

const DEADLINE: Duration = Duration::from_secs(60);

/// One test's project: its name, a directory for image contexts, and cleanup of everything named after it.
struct Stack {
    project: String,
    files: Project,
    /// Containers created outside devloop, removed at the end.
    foreign: Vec<String>,
}

impl Stack {
    fn new() -> Stack {
        support::require_docker();
        Stack {
            project: unique("dltest"),
            files: Project::new(),
            foreign: Vec::new(),
        }
    }

    /// Builds a FROM-scratch busybox image whose `/www/index.html` is `content`; returns its reference.
    fn image(&mut self, content: &str) -> String {
        let tag = format!("{}:{}", unique("devloop-test-deploy"), "v");
        let ctx = unique("ctx");
        self.files.with_busybox(&format!("{ctx}/bin/busybox"));
        self.files.write(&format!("{ctx}/www/index.html"), content);
        self.files.write(
            &format!("{ctx}/Dockerfile"),
            "FROM scratch\nCOPY bin/busybox /bin/busybox\nCOPY www /www\n",
        );
        let out = Command::new("docker")
            .args(["build", "-q", "-t", &tag])
            .arg(self.files.path().join(&ctx))
            .env("DOCKER_BUILDKIT", "0")
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "docker build: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        self.files.cleanup_image(&tag);
        tag
    }

    async fn target(&self) -> DockerTarget {
        DockerTarget::connect(&self.project).await.unwrap()
    }

    fn docker_name(&self, name: &str) -> String {
        format!("{}-{name}", self.project)
    }
}

impl Drop for Stack {
    fn drop(&mut self) {
        let label = format!("label=dev.devloop.project={}", self.project);
        let ids = Command::new("docker")
            .args(["ps", "-aq", "--filter", &label])
            .output()
            .unwrap();
        let mut ids: Vec<String> = String::from_utf8_lossy(&ids.stdout)
            .split_whitespace()
            .map(str::to_string)
            .collect();
        ids.extend(self.foreign.iter().cloned());
        if !ids.is_empty() {
            let _ = Command::new("docker")
                .args(["rm", "-f"])
                .args(&ids)
                .output();
        }
        let _ = Command::new("docker")
            .args(["network", "rm", &format!("devloop-{}", self.project)])
            .output();
        let vols = Command::new("docker")
            .args(["volume", "ls", "-q", "--filter", &label])
            .output()
            .unwrap();
        let vols: Vec<String> = String::from_utf8_lossy(&vols.stdout)
            .split_whitespace()
            .map(str::to_string)
            .collect();
        if !vols.is_empty() {
            let _ = Command::new("docker")
                .args(["volume", "rm", "-f"])
                .args(&vols)
                .output();
        }
    }
}

fn container(name: &str, image: &str, command: &[&str]) -> Container {
    Container {
        name: name.into(),
        image: image.into(),
        ports: Vec::new(),
        env: BTreeMap::new(),
        volumes: Vec::new(),
        command: Some(command.iter().map(|s| s.to_string()).collect()),
        args: None,
        healthcheck: None,
        depends_on: Vec::new(),
        restart: Restart::No,
        init: false,
    }
}

const HTTPD: &[&str] = &["/bin/busybox", "httpd", "-f", "-p", "8080", "-h", "/www"];
const SLEEP: &[&str] = &["/bin/busybox", "sleep", "300"];

fn plan(containers: Vec<Container>, images: &[(&str, &str)]) -> DockerPlan {
    DockerPlan {
        deploy: DockerDeploy {
            containers,
            stop_grace_period_secs: 1,
        },
        images: images
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect(),
    }
}

/// The body of `GET /index.html`, retried while the server comes up.
async fn http_get(port: u16) -> String {
    tokio::task::spawn_blocking(move || {
        let mut last = String::new();
        for _ in 0..100 {
            if let Ok(mut s) = std::net::TcpStream::connect(("127.0.0.1", port)) {
                s.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
                let _ = s.write_all(b"GET /index.html HTTP/1.0\r\nHost: localhost\r\n\r\n");
                let mut text = String::new();
                let _ = s.read_to_string(&mut text);
                if text.starts_with("HTTP/1.0 200") || text.starts_with("HTTP/1.1 200") {
                    return text
                        .split_once("\r\n\r\n")
                        .map(|(_, b)| b.to_string())
                        .unwrap_or_default();
                }
                last = text;
            }
            std::thread::sleep(Duration::from_millis(100));
        }
        panic!("no HTTP 200 on 127.0.0.1:{port}; last answer: {last:?}");
    })
    .await
    .unwrap()
}

fn network_exists(name: &str) -> bool {
    Command::new("docker")
        .args(["network", "inspect", name])
        .output()
        .unwrap()
        .status
        .success()
}

fn change_of(set: &devloop::deploy::DeployedSet, name: &str) -> Change {
    set.applied
        .iter()
        .find(|a| a.reference.name == name)
        .map(|a| a.change)
        .unwrap_or_else(|| panic!("{name} not in {set:?}"))
}

/// Seconds since the epoch of an RFC 3339 UTC timestamp as Docker writes it (`2026-11-05T10:11:12.123456789Z`).
fn epoch(t: &str) -> f64 {
    let (date, time) = t.trim_end_matches('Z').split_once('T').unwrap();
    let d: Vec<i64> = date.split('-').map(|x| x.parse().unwrap()).collect();
    let (y, m) = if d[1] <= 2 {
        (d[0] - 1, d[1] + 9)
    } else {
        (d[0], d[1] - 3)
    };
    let era = y.div_euclid(400);
    let yoe = y - era * 400;
    let doy = (153 * m + 2) / 5 + d[2] - 1;
    let days = era * 146_097 + yoe * 365 + yoe / 4 - yoe / 100 + doy - 719_468;
    let hms: Vec<f64> = time.split(':').map(|x| x.parse().unwrap()).collect();
    days as f64 * 86_400.0 + hms[0] * 3600.0 + hms[1] * 60.0 + hms[2]
}

fn collector() -> (EventSink, Arc<Mutex<Vec<Event>>>) {
    EventSink::collector()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn web_container_is_replaced_only_when_its_image_changes() {
    let mut s = Stack::new();
    let v1 = s.image("v1\n");
    let v2 = s.image("v2\n");
    let port = support::free_port();
    let mut web = container("web", "web", HTTPD);
    web.ports.push(PortMapping {
        host_ip: "127.0.0.1".into(),
        host_port: port,
        container_port: 8080,
        protocol: "tcp".into(),
    });
    web.env.insert("GREETING".into(), "hello".into());
    let target = s.target().await;
    let cancel = CancellationToken::new();
    let (events, seen) = collector();

    let first = target
        .deploy(&plan(vec![web.clone()], &[("web", &v1)]), &events, &cancel)
        .await
        .unwrap();
    assert_eq!(change_of(&first, "web"), Change::Created);
    target
        .wait_ready(&first, DEADLINE, &events, &cancel)
        .await
        .unwrap();
    assert_eq!(http_get(port).await, "v1\n");
    let name = s.docker_name("web");
    let first_id = support::docker_inspect(&name, "{{.Id}}").unwrap();
    let labels = support::docker_inspect(&name, "{{json .Config.Labels}}").unwrap();
    let labels: serde_json::Value = serde_json::from_str(&labels).unwrap();
    assert_eq!(labels["dev.devloop.managed-by"], "devloop");
    assert_eq!(labels["dev.devloop.project"], s.project.as_str());
    assert_eq!(labels["dev.devloop.config"].as_str().unwrap().len(), 64);
    let env = support::docker_inspect(&name, "{{range .Config.Env}}{{println .}}{{end}}").unwrap();
    assert!(env.lines().any(|l| l == "GREETING=hello"), "{env}");
    let network = format!("devloop-{}", s.project);
    assert_eq!(
        support::docker_inspect(&network, "{{index .Labels \"dev.devloop.managed-by\"}}")
            .as_deref(),
        Some("devloop")
    );

    // A new image: a new container serves the new content on the same port.
    let second = target
        .deploy(&plan(vec![web.clone()], &[("web", &v2)]), &events, &cancel)
        .await
        .unwrap();
    assert_eq!(change_of(&second, "web"), Change::Recreated);
    target
        .wait_ready(&second, DEADLINE, &events, &cancel)
        .await
        .unwrap();
    assert_eq!(http_get(port).await, "v2\n");
    let second_id = support::docker_inspect(&name, "{{.Id}}").unwrap();
    assert_ne!(first_id, second_id);
    // busybox httpd runs as PID 1 without a SIGTERM handler: the stop had to be forced, and devloop says so.
    let warned = seen.lock().unwrap().iter().any(|e| {
        matches!(e, Event::Warning { message } if message.contains("container/web") && message.contains("was killed"))
    });
    assert!(warned, "{:?}", seen.lock().unwrap());

    // Nothing changed: the container is left alone.
    let third = target
        .deploy(&plan(vec![web.clone()], &[("web", &v2)]), &events, &cancel)
        .await
        .unwrap();
    assert_eq!(change_of(&third, "web"), Change::Unchanged);
    assert_eq!(
        support::docker_inspect(&name, "{{.Id}}").unwrap(),
        second_id
    );
    target
        .wait_ready(&third, DEADLINE, &events, &cancel)
        .await
        .unwrap();

    // A config change (env) replaces it too.
    web.env.insert("GREETING".into(), "bye".into());
    let fourth = target
        .deploy(&plan(vec![web], &[("web", &v2)]), &events, &cancel)
        .await
        .unwrap();
    assert_eq!(change_of(&fourth, "web"), Change::Recreated);

    let deleted = target
        .delete_all(DeleteOptions::default(), &events)
        .await
        .unwrap();
    let names: Vec<String> = deleted.iter().map(|r| r.short()).collect();
    assert_eq!(
        names,
        vec!["container/web".to_string(), format!("network/{network}")]
    );
    assert_eq!(support::docker_inspect(&name, "{{.Id}}"), None);
    assert!(!network_exists(&network));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn with_init_a_main_process_that_ignores_sigterm_stops_at_once() {
    let mut s = Stack::new();
    let v1 = s.image("v1\n");
    let v2 = s.image("v2\n");
    let port = support::free_port();
    let mut web = container("web", "web", HTTPD);
    web.init = true;
    web.ports.push(PortMapping {
        host_ip: "127.0.0.1".into(),
        host_port: port,
        container_port: 8080,
        protocol: "tcp".into(),
    });
    // A long grace period: without init, busybox httpd as PID 1 would hold every replacement for 10 s.
    let plan = |image: &str| DockerPlan {
        deploy: DockerDeploy {
            containers: vec![web.clone()],
            stop_grace_period_secs: 10,
        },
        images: BTreeMap::from([("web".to_string(), image.to_string())]),
    };
    let target = s.target().await;
    let cancel = CancellationToken::new();
    let (events, seen) = collector();
    let first = target.deploy(&plan(&v1), &events, &cancel).await.unwrap();
    target
        .wait_ready(&first, DEADLINE, &events, &cancel)
        .await
        .unwrap();
    let name = s.docker_name("web");
    assert_eq!(
        support::docker_inspect(&name, "{{.HostConfig.Init}}").as_deref(),
        Some("true")
    );
    assert_eq!(http_get(port).await, "v1\n");

    let started = std::time::Instant::now();
    let second = target.deploy(&plan(&v2), &events, &cancel).await.unwrap();
    let took = started.elapsed();
    assert_eq!(change_of(&second, "web"), Change::Recreated);
    target
        .wait_ready(&second, DEADLINE, &events, &cancel)
        .await
        .unwrap();
    assert_eq!(http_get(port).await, "v2\n");
    assert!(took < Duration::from_secs(5), "replacement took {took:?}");
    let killed = seen
        .lock()
        .unwrap()
        .iter()
        .any(|e| matches!(e, Event::Warning { message } if message.contains("was killed")));
    assert!(!killed, "{:?}", seen.lock().unwrap());
    target
        .delete_all(DeleteOptions::default(), &events)
        .await
        .unwrap();
    assert_eq!(support::docker_inspect(&name, "{{.Id}}"), None);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn dependents_start_after_their_dependency_is_healthy() {
    let mut s = Stack::new();
    let image = s.image("db\n");
    let mut db = container(
        "db",
        &image,
        &[
            "/bin/busybox",
            "sh",
            "-c",
            "/bin/busybox mkdir -p /tmp; /bin/busybox sleep 2; /bin/busybox touch /tmp/ready; exec /bin/busybox sleep 300",
        ],
    );
    db.healthcheck = Some(Healthcheck {
        test: vec![
            "CMD".into(),
            "/bin/busybox".into(),
            "test".into(),
            "-f".into(),
            "/tmp/ready".into(),
        ],
        interval_ns: 200_000_000,
        timeout_ns: 2_000_000_000,
        retries: 50,
        start_period_ns: 0,
    });
    let mut api = container("api", &image, SLEEP);
    api.depends_on.push(Dependency {
        name: "db".into(),
        condition: Condition::Healthy,
    });
    // Listed first: the order comes from `dependsOn`, not from the list.
    let target = s.target().await;
    let cancel = CancellationToken::new();
    let (events, seen) = collector();
    let set = target
        .deploy(&plan(vec![api, db], &[]), &events, &cancel)
        .await
        .unwrap();
    target
        .wait_ready(&set, DEADLINE, &events, &cancel)
        .await
        .unwrap();
    // db turns healthy 2 s after it starts (its healthcheck polls every 200 ms): api must start after that.
    let db_started =
        epoch(&support::docker_inspect(&s.docker_name("db"), "{{.State.StartedAt}}").unwrap());
    let api_started =
        epoch(&support::docker_inspect(&s.docker_name("api"), "{{.State.StartedAt}}").unwrap());
    assert!(
        api_started - db_started >= 2.0,
        "api started {:.3} s after db",
        api_started - db_started
    );
    let applied: Vec<String> = seen
        .lock()
        .unwrap()
        .iter()
        .filter_map(|e| match e {
            Event::Applied { object, .. } => Some(object.clone()),
            _ => None,
        })
        .collect();
    assert_eq!(applied, vec!["container/db", "container/api"]);
    let waited = seen.lock().unwrap().iter().any(|e| {
        matches!(e, Event::RolloutProgress { object, message, .. } if object == "container/db" && message.contains("`api` waits"))
    });
    assert!(waited, "{:?}", seen.lock().unwrap());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_crashing_container_fails_with_its_last_log_lines() {
    let mut s = Stack::new();
    let image = s.image("x\n");
    // Docker copies stdout and stderr separately: only a pause orders lines across the two in its log.
    let crash = container(
        "crash",
        &image,
        &[
            "/bin/busybox",
            "sh",
            "-c",
            "for i in $(/bin/busybox seq 1 30); do echo line $i; done; /bin/busybox sleep 0.3; echo 'boom: no database' >&2; exit 3",
        ],
    );
    let target = s.target().await;
    let cancel = CancellationToken::new();
    let (events, seen) = collector();
    let set = target
        .deploy(&plan(vec![crash], &[]), &events, &cancel)
        .await
        .unwrap();
    let err = target
        .wait_ready(&set, DEADLINE, &events, &cancel)
        .await
        .unwrap_err();
    assert!(matches!(err, DeployError::Status(_)), "{err:?}");
    let text = err.to_string();
    assert!(
        text.starts_with("container/crash: Error: exited with code 3"),
        "{text}"
    );
    let seen = seen.lock().unwrap();
    let Some(Event::RolloutFailed {
        pod,
        container,
        logs,
        ..
    }) = seen
        .iter()
        .find(|e| matches!(e, Event::RolloutFailed { .. }))
    else {
        panic!("no rolloutFailed: {seen:?}")
    };
    assert_eq!(pod.as_deref(), Some("crash"));
    assert_eq!(container.as_deref(), Some("crash"));
    assert_eq!(logs.len(), 20, "{logs:?}");
    assert_eq!(
        logs.last().map(String::as_str),
        Some("boom: no database"),
        "{logs:?}"
    );
    assert_eq!(logs.first().map(String::as_str), Some("line 12"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn containers_devloop_did_not_create_are_never_touched() {
    let mut s = Stack::new();
    let image = s.image("x\n");
    let target = s.target().await;
    let cancel = CancellationToken::new();
    let (events, _) = collector();

    // Same image, another name, no labels: deploy and delete leave it running.
    let bystander = unique("devloop-test-bystander");
    let run = |name: &str| {
        let out = Command::new("docker")
            .args(["run", "-d", "--name", name, &image])
            .args(SLEEP)
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
    };
    run(&bystander);
    s.foreign.push(bystander.clone());
    let set = target
        .deploy(
            &plan(vec![container("app", &image, SLEEP)], &[]),
            &events,
            &cancel,
        )
        .await
        .unwrap();
    target
        .wait_ready(&set, DEADLINE, &events, &cancel)
        .await
        .unwrap();
    let deleted = target
        .delete_all(DeleteOptions::default(), &events)
        .await
        .unwrap();
    assert_eq!(deleted[0].short(), "container/app");
    assert_eq!(
        support::docker_inspect(&bystander, "{{.State.Running}}").as_deref(),
        Some("true")
    );

    // A foreign container with the name devloop would use: an error that names it, and it keeps running.
    let clash = s.docker_name("web");
    run(&clash);
    s.foreign.push(clash.clone());
    let err = target
        .deploy(
            &plan(vec![container("web", &image, SLEEP)], &[]),
            &events,
            &cancel,
        )
        .await
        .unwrap_err()
        .to_string();
    assert!(
        err.contains(&format!(
            "a container named `{clash}` exists and devloop did not create it"
        )),
        "{err}"
    );
    assert!(err.contains("hint: "), "{err}");
    assert_eq!(
        support::docker_inspect(&clash, "{{.State.Running}}").as_deref(),
        Some("true")
    );
    target
        .delete_all(DeleteOptions::default(), &events)
        .await
        .unwrap();
    assert_eq!(
        support::docker_inspect(&clash, "{{.State.Running}}").as_deref(),
        Some("true")
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn containers_left_out_of_the_plan_are_pruned_and_volumes_kept_unless_purged() {
    let mut s = Stack::new();
    let image = s.image("x\n");
    let target = s.target().await;
    let cancel = CancellationToken::new();
    let (events, seen) = collector();
    let mut keeper = container("keeper", &image, SLEEP);
    keeper.volumes.push(Volume::Named {
        name: "data".into(),
        target: "/data".into(),
        read_only: false,
    });
    let www = s.files.path().join("site");
    std::fs::create_dir_all(&www).unwrap();
    keeper.volumes.push(Volume::Bind {
        source: s.files.path().join("./site"),
        target: "/site".into(),
        read_only: true,
    });
    let gone = container("gone", &image, SLEEP);
    target
        .deploy(&plan(vec![keeper.clone(), gone], &[]), &events, &cancel)
        .await
        .unwrap();
    let set = target
        .deploy(&plan(vec![keeper], &[]), &events, &cancel)
        .await
        .unwrap();
    assert_eq!(change_of(&set, "keeper"), Change::Unchanged);
    assert_eq!(
        set.pruned.iter().map(|r| r.short()).collect::<Vec<_>>(),
        ["container/gone"]
    );
    assert!(
        seen.lock()
            .unwrap()
            .iter()
            .any(|e| matches!(e, Event::Pruned { object, .. } if object == "container/gone"))
    );
    assert_eq!(
        support::docker_inspect(&s.docker_name("gone"), "{{.Id}}"),
        None
    );
    let volume = format!("{}-data", s.project);
    assert_eq!(
        support::docker_inspect(&volume, "{{index .Labels \"dev.devloop.project\"}}").as_deref(),
        Some(s.project.as_str())
    );

    // Dry run lists and deletes nothing; a delete keeps the named volume; a purge removes it.
    let listed = target
        .delete_all(
            DeleteOptions {
                dry_run: true,
                wait: false,
            },
            &events,
        )
        .await
        .unwrap();
    assert_eq!(listed.len(), 2, "{listed:?}");
    assert!(support::docker_inspect(&s.docker_name("keeper"), "{{.Id}}").is_some());
    target
        .delete_all(DeleteOptions::default(), &events)
        .await
        .unwrap();
    assert!(support::docker_inspect(&volume, "{{.Name}}").is_some());
    let purged = s
        .target()
        .await
        .with_purge_volumes(true)
        .delete_all(DeleteOptions::default(), &events)
        .await
        .unwrap();
    assert_eq!(
        purged.iter().map(|r| r.short()).collect::<Vec<_>>(),
        [format!("volume/{volume}")]
    );
    assert_eq!(support::docker_inspect(&volume, "{{.Name}}"), None);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn logs_follow_new_containers_from_their_first_line() {
    let mut s = Stack::new();
    let image = s.image("x\n");
    let talker = |word: &str| {
        container(
            "talker",
            &image,
            &[
                "/bin/busybox",
                "sh",
                "-c",
                &format!("echo first {word}; echo second {word}; exec /bin/busybox sleep 300"),
            ],
        )
    };
    let target = Arc::new(s.target().await);
    let cancel = CancellationToken::new();
    let (events, seen) = collector();
    target
        .deploy(&plan(vec![talker("one")], &[]), &events, &cancel)
        .await
        .unwrap();
    let follower = {
        let (target, events, cancel) = (Arc::clone(&target), events.clone(), cancel.clone());
        tokio::spawn(async move { target.follow_logs(&events, &cancel).await })
    };
    let lines = |seen: &Arc<Mutex<Vec<Event>>>| -> Vec<String> {
        seen.lock()
            .unwrap()
            .iter()
            .filter_map(|e| match e {
                Event::Log { pod, line, .. } if pod == "talker" => Some(line.clone()),
                _ => None,
            })
            .collect()
    };
    let wait_for = |want: Vec<&str>| {
        let seen = Arc::clone(&seen);
        let want: Vec<String> = want.into_iter().map(str::to_string).collect();
        async move {
            for _ in 0..100 {
                if lines(&seen) == want {
                    return;
                }
                tokio::time::sleep(Duration::from_millis(100)).await;
            }
            panic!("log lines {:?}, want {want:?}", lines(&seen));
        }
    };
    wait_for(vec!["first one", "second one"]).await;
    target
        .deploy(&plan(vec![talker("two")], &[]), &events, &cancel)
        .await
        .unwrap();
    wait_for(vec!["first one", "second one", "first two", "second two"]).await;
    cancel.cancel();
    follower.await.unwrap().unwrap();
}

/// The signals the daemon sent container `id` from `since` (Unix seconds) until now, in order.
fn signals_since(id: &str, since: f64) -> Vec<String> {
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs_f64();
    let out = Command::new("docker")
        .args([
            "events",
            "--since",
            &format!("{since:.3}"),
            "--until",
            &format!("{now:.3}"),
            "--filter",
            &format!("container={id}"),
            "--filter",
            "event=kill",
            "--format",
            "{{.Actor.Attributes.signal}}",
        ])
        .output()
        .unwrap();
    String::from_utf8_lossy(&out.stdout)
        .lines()
        .map(str::to_string)
        .collect()
}

/// Issue 11 (3): with disposable replacements (`devloop dev`), a container running a built artifact is replaced
/// at once (killed, never sent SIGTERM, no warning) and its replacement serves on the same port, and dev's cleanup
/// on exit (`delete_all`) kills it too; a container of an image devloop did not build (a database) still stops
/// gracefully in both.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn disposable_replacements_kill_only_containers_of_built_artifacts() {
    let mut s = Stack::new();
    let v1 = s.image("v1\n");
    let v2 = s.image("v2\n");
    let port = support::free_port();
    let mut web = container("web", "web", HTTPD);
    web.ports.push(PortMapping {
        host_ip: "127.0.0.1".into(),
        host_port: port,
        container_port: 8080,
        protocol: "tcp".into(),
    });
    // Runs an image as written: not an artifact of the plan. `sleep` as PID 1 ignores SIGTERM too.
    let mut db = container("db", &v1, SLEEP);
    let target = s.target().await.with_disposable_replacements(true);
    let cancel = CancellationToken::new();
    let (events, seen) = collector();
    let first = target
        .deploy(
            &plan(vec![web.clone(), db.clone()], &[("web", &v1)]),
            &events,
            &cancel,
        )
        .await
        .unwrap();
    target
        .wait_ready(&first, DEADLINE, &events, &cancel)
        .await
        .unwrap();
    assert_eq!(http_get(port).await, "v1\n");
    let (web1, db1) = (
        support::docker_inspect(&s.docker_name("web"), "{{.Id}}").unwrap(),
        support::docker_inspect(&s.docker_name("db"), "{{.Id}}").unwrap(),
    );
    let since = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs_f64();
    db.env.insert("CHANGED".into(), "1".into());
    let before = seen.lock().unwrap().len();
    let second = target
        .deploy(&plan(vec![web, db], &[("web", &v2)]), &events, &cancel)
        .await
        .unwrap();
    assert_eq!(change_of(&second, "web"), Change::Recreated);
    assert_eq!(change_of(&second, "db"), Change::Recreated);
    target
        .wait_ready(&second, DEADLINE, &events, &cancel)
        .await
        .unwrap();
    assert_eq!(http_get(port).await, "v2\n");
    assert_eq!(
        signals_since(&web1, since),
        ["9"],
        "the artifact's container is killed"
    );
    assert_eq!(
        signals_since(&db1, since),
        ["15", "9"],
        "the other one is stopped"
    );
    let warned: Vec<String> = seen.lock().unwrap()[before..]
        .iter()
        .filter_map(|e| match e {
            Event::Warning { message } => Some(message.clone()),
            _ => None,
        })
        .collect();
    assert_eq!(warned.len(), 1, "{warned:?}");
    assert!(warned[0].starts_with("container/db: "), "{warned:?}");
    assert_eq!(
        support::docker_inspect(&web1, "{{.Id}}"),
        None,
        "the replaced container is gone"
    );

    // dev's cleanup on exit: the artifact's container is killed, the other one stopped.
    let (web2, db2) = (
        support::docker_inspect(&s.docker_name("web"), "{{.Id}}").unwrap(),
        support::docker_inspect(&s.docker_name("db"), "{{.Id}}").unwrap(),
    );
    let since = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs_f64();
    target
        .delete_all(DeleteOptions::default(), &events)
        .await
        .unwrap();
    assert_eq!(signals_since(&web2, since), ["9"]);
    assert_eq!(signals_since(&db2, since), ["15", "9"]);
}

/// Issue 11 (4): `dev` stops the containers of an artifact being rebuilt while it builds (`prepare_replace`): killed,
/// not removed, so that `restore` can start the same container again when no build replaces it; the next deploy
/// replaces a stopped one as usual. A container of an image devloop did not build keeps running, even when it
/// runs the same image; without disposable replacements (`run`, `deploy`) nothing is stopped ahead.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn prepare_replace_kills_only_the_artifacts_containers_and_restore_starts_them_again() {
    let mut s = Stack::new();
    let v1 = s.image("v1\n");
    let v2 = s.image("v2\n");
    let port = support::free_port();
    let mut web = container("web", "web", HTTPD);
    web.ports.push(PortMapping {
        host_ip: "127.0.0.1".into(),
        host_port: port,
        container_port: 8080,
        protocol: "tcp".into(),
    });
    // The same image as written, not as an artifact: a database's place.
    let db = container("db", &v1, SLEEP);
    let target = s.target().await.with_disposable_replacements(true);
    let cancel = CancellationToken::new();
    let (events, _) = collector();
    let deployed = target
        .deploy(
            &plan(vec![web.clone(), db.clone()], &[("web", &v1)]),
            &events,
            &cancel,
        )
        .await
        .unwrap();
    target
        .wait_ready(&deployed, DEADLINE, &events, &cancel)
        .await
        .unwrap();
    let (web1, db1) = (s.docker_name("web"), s.docker_name("db"));
    let (web_id, db_id) = (
        support::docker_inspect(&web1, "{{.Id}}").unwrap(),
        support::docker_inspect(&db1, "{{.Id}}").unwrap(),
    );
    let image_id = support::docker_inspect(&v1, "{{.Id}}").unwrap();

    // `run` and `deploy`: nothing stopped ahead.
    let graceful = s.target().await;
    assert!(
        graceful
            .prepare_replace(std::slice::from_ref(&image_id))
            .await
            .unwrap()
            .is_empty()
    );
    assert_eq!(
        support::docker_inspect(&web1, "{{.State.Running}}").as_deref(),
        Some("true")
    );

    let since = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs_f64();
    let stopped = target
        .prepare_replace(std::slice::from_ref(&image_id))
        .await
        .unwrap();
    assert_eq!(stopped.len(), 1, "{stopped:?}");
    assert_eq!(stopped[0].object, "container/web");
    assert_eq!(
        support::docker_inspect(&web1, "{{.State.Running}}").as_deref(),
        Some("false")
    );
    assert_eq!(
        support::docker_inspect(&web1, "{{.Id}}").as_deref(),
        Some(web_id.as_str()),
        "kept"
    );
    assert_eq!(signals_since(&web_id, since), ["9"]);
    assert_eq!(
        support::docker_inspect(&db1, "{{.State.Running}}").as_deref(),
        Some("true")
    );
    assert!(
        signals_since(&db_id, since).is_empty(),
        "the database is never touched"
    );

    // No build replaced it: the same container serves the old content again.
    let started = target.restore(&stopped).await.unwrap();
    assert_eq!(started, ["container/web"]);
    assert_eq!(
        support::docker_inspect(&web1, "{{.Id}}").as_deref(),
        Some(web_id.as_str())
    );
    assert_eq!(http_get(port).await, "v1\n");

    // Stopped again, then a deploy of the new image replaces it; restoring afterwards starts nothing.
    let stopped = target.prepare_replace(&[image_id]).await.unwrap();
    assert_eq!(stopped.len(), 1);
    let second = target
        .deploy(&plan(vec![web, db], &[("web", &v2)]), &events, &cancel)
        .await
        .unwrap();
    assert_eq!(change_of(&second, "web"), Change::Recreated);
    assert_eq!(change_of(&second, "db"), Change::Unchanged);
    target
        .wait_ready(&second, DEADLINE, &events, &cancel)
        .await
        .unwrap();
    assert_eq!(http_get(port).await, "v2\n");
    assert!(target.restore(&stopped).await.unwrap().is_empty());
    assert_eq!(
        support::docker_inspect(&db1, "{{.Id}}").as_deref(),
        Some(db_id.as_str())
    );
}

/// Container hooks on the Docker target: the project's running containers by their `deploy.docker` name, a command
/// run in one through the Engine API's exec (stdout, stderr and exit code apart), and sync hooks around the files.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn container_hooks_run_in_the_projects_running_containers() {
    use devloop::config::hooks::{ContainerHook, Hook, Hooks};
    use devloop::deploy::{SyncFile, SyncRequest};
    use devloop::runner::target::TargetContainer;

    let mut s = Stack::new();
    let image = s.image("v1\n");
    let target = s.target().await;
    let cancel = CancellationToken::new();
    let (events, _) = collector();
    let plan = plan(
        vec![
            container("app", "app", SLEEP),
            container("worker", "app", SLEEP),
        ],
        &[("app", &image)],
    );
    let deployed = target.deploy(&plan, &events, &cancel).await.unwrap();
    target
        .wait_ready(&deployed, DEADLINE, &events, &cancel)
        .await
        .unwrap();
    let running = DeployTarget::running_containers(&target, &plan)
        .await
        .unwrap();
    let names: Vec<String> = running.iter().map(TargetContainer::name).collect();
    assert_eq!(names, ["app/app", "worker/worker"]);

    let sh = |script: &str| -> Vec<String> {
        ["/bin/busybox", "sh", "-c", script]
            .iter()
            .map(|s| s.to_string())
            .collect()
    };
    let out = DeployTarget::exec(&target, &running[0], &sh("echo out; echo err >&2; exit 3"))
        .await
        .unwrap();
    assert_eq!(
        (out.stdout.as_slice(), out.stderr.as_slice(), out.exit_code),
        (&b"out\n"[..], &b"err\n"[..], Some(3))
    );

    // Sync: the container hooks run in each synced container, around the files.
    let hook = |script: &str| {
        Hook::Container(Box::new(ContainerHook {
            command: sh(script),
            pod_name: None,
            container_name: None,
        }))
    };
    let hooks = Hooks {
        before: vec![hook("test ! -e /www/new.txt && echo before > /www/hooked")],
        after: vec![hook("cat /www/new.txt >> /www/hooked")],
    };
    s.files.write("new.txt", "synced\n");
    let req = SyncRequest {
        image: "app",
        reference: image.clone(),
        copy: vec![SyncFile {
            local: s.files.path().join("new.txt"),
            dest: "/www/new.txt".into(),
            mode: 0o644,
            owner: None,
        }],
        delete: Vec::new(),
        hooks: &hooks,
    };
    assert_eq!(target.sync(&plan, &req).await.unwrap(), 2);
    for c in &running {
        let out = DeployTarget::exec(&target, c, &sh("cat /www/hooked"))
            .await
            .unwrap();
        assert_eq!(out.stdout, b"before\nsynced\n", "{}", c.name());
    }

    // A failing hook fails the sync with the command's words.
    let failing = Hooks {
        before: vec![hook("echo no room >&2; exit 1")],
        after: Vec::new(),
    };
    let e = target
        .sync(
            &plan,
            &SyncRequest {
                hooks: &failing,
                ..req.clone()
            },
        )
        .await
        .unwrap_err()
        .to_string();
    assert!(
        e.contains("container/app: sync hook (before) `/bin/busybox sh -c echo no room >&2; exit 1` exited with code 1:\nno room"),
        "{e}"
    );
}
