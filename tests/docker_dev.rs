//! `devloop dev` and `run` with the Docker deploy target, no cluster: busybox `httpd` serving a file; an edit gives a
//! new container serving the new content on the same port; logs of both containers arrive prefixed; Ctrl-C removes
//! the containers and network devloop created and leaves a foreign container alone.
#![allow(clippy::unwrap_used)]

mod support;

use std::process::Command;
use std::time::{Duration, Instant};

use serde_json::Value;
use support::{Project, unique};
use tokio::io::{AsyncBufReadExt, BufReader};

fn project(project: &str, image: &str, port: u16) -> Project {
    let p = Project::new();
    p.with_busybox("bin/busybox");
    p.write(
        "devloop.yaml",
        &format!(
            "apiVersion: devloop/v1alpha1\nkind: Config\nmetadata:\n  name: {project}\nbuild:\n  artifacts:\n    - image: {image}\ndeploy:\n  docker:\n    stopGracePeriod: 1\n    containers:\n      - name: web\n        image: {image}\n        ports: [\"127.0.0.1:{port}:8080\"]\n"
        ),
    );
    p.write(
        "Dockerfile",
        "FROM scratch\nCOPY bin/busybox /bin/busybox\nCOPY www /www\nENTRYPOINT [\"/bin/busybox\", \"httpd\", \"-f\", \"-v\", \"-p\", \"8080\", \"-h\", \"/www\"]\n",
    );
    p.write("www/index.html", "v1\n");
    p
}

fn docker_ps(label: &str) -> Vec<String> {
    let out = Command::new("docker")
        .args(["ps", "-aq", "--filter", &format!("label={label}")])
        .output()
        .unwrap();
    String::from_utf8_lossy(&out.stdout)
        .lines()
        .map(str::to_string)
        .collect()
}

async fn next_event(lines: &mut Lines, seen: &mut Vec<Value>, ty: &str) -> Value {
    let deadline = Instant::now() + Duration::from_secs(90);
    loop {
        let left = deadline.saturating_duration_since(Instant::now());
        let line = tokio::time::timeout(left, lines.next_line())
            .await
            .unwrap_or_else(|_| panic!("timed out waiting for {ty}: {seen:#?}"));
        let line = line
            .unwrap()
            .unwrap_or_else(|| panic!("devloop exited waiting for {ty}: {seen:#?}"));
        let e: Value = serde_json::from_str(&line).unwrap();
        seen.push(e.clone());
        if e["type"] == ty {
            return e;
        }
    }
}

type Lines = tokio::io::Lines<BufReader<tokio::process::ChildStdout>>;

/// `devloop dev -o json --debounce 50` in `p`, with its own cache; its events as lines.
fn spawn_dev(p: &Project) -> (tokio::process::Child, Lines) {
    let mut child = tokio::process::Command::new(env!("CARGO_BIN_EXE_devloop"))
        .args(["dev", "-o", "json", "--debounce", "50"])
        .current_dir(p.path())
        .env("DEVLOOP_CACHE_DIR", p.cache.path())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::null())
        .kill_on_drop(true)
        .spawn()
        .unwrap();
    let lines = BufReader::new(child.stdout.take().unwrap()).lines();
    (child, lines)
}

/// Every image the session built is removed with the project.
fn cleanup_built(p: &mut Project, seen: &[Value]) {
    for e in seen.iter().filter(|e| e["type"] == "buildFinished") {
        if let Some(tag) = e["data"]["tag"].as_str() {
            p.cleanup_image(tag);
        }
    }
}

/// Ctrl-C: devloop reports `devStopped` and exits 130 (128 + SIGINT).
async fn stop_dev(child: &mut tokio::process::Child, lines: &mut Lines, seen: &mut Vec<Value>) {
    let pid = child.id().unwrap().to_string();
    assert!(
        Command::new("kill")
            .args(["-INT", &pid])
            .status()
            .unwrap()
            .success()
    );
    next_event(lines, seen, "devStopped").await;
    let status = tokio::time::timeout(Duration::from_secs(60), child.wait())
        .await
        .unwrap()
        .unwrap();
    assert_eq!(status.code(), Some(130), "{status:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn dev_on_docker_serves_each_edit_and_cleans_up_only_its_own() {
    support::require_docker();
    let name = unique("dl-docker-dev");
    let image = unique("devloop-test-ddev");
    let port = support::free_port();
    let mut p = project(&name, &image, port);
    // A container devloop did not create, from a project-looking name: it must survive everything.
    let foreign = format!("{name}-foreign");
    let (mut child, mut lines) = spawn_dev(&p);
    let mut seen = Vec::new();
    next_event(&mut lines, &mut seen, "iteration").await;
    let first = seen.iter().find(|e| e["type"] == "buildFinished").unwrap()["data"]["tag"]
        .as_str()
        .unwrap()
        .to_string();
    p.cleanup_image(&first);
    assert!(
        support::serves(port, "v1\n"),
        "the published port serves the file"
    );
    assert!(
        Command::new("docker")
            .args(["run", "-d", "--name", &foreign, &first])
            .status()
            .unwrap()
            .success()
    );

    p.write("www/index.html", "v2\n");
    next_event(&mut lines, &mut seen, "iteration").await;
    let second = seen
        .iter()
        .rev()
        .find(|e| e["type"] == "buildFinished")
        .unwrap()["data"]["tag"]
        .as_str()
        .unwrap()
        .to_string();
    p.cleanup_image(&second);
    assert!(
        support::serves(port, "v2\n"),
        "a new container serves the new content on the same port"
    );

    // Logs of both containers arrive prefixed with the container's name (httpd -v logs each request).
    let deadline = Instant::now() + Duration::from_secs(20);
    while seen.iter().filter(|e| e["type"] == "log").count() < 2 && Instant::now() < deadline {
        let _ = support::http_body(port);
        let more = tokio::time::timeout(Duration::from_millis(500), lines.next_line()).await;
        if let Ok(Ok(Some(l))) = more {
            seen.push(serde_json::from_str(&l).unwrap());
        }
    }
    assert!(
        seen.iter()
            .any(|e| e["type"] == "log" && e["data"]["container"] == "web"),
        "{seen:#?}"
    );

    stop_dev(&mut child, &mut lines, &mut seen).await;
    assert!(
        docker_ps(&format!("dev.devloop.project={name}")).is_empty(),
        "devloop's containers are removed"
    );
    let networks = Command::new("docker")
        .args([
            "network",
            "ls",
            "-q",
            "--filter",
            &format!("name=devloop-{name}"),
        ])
        .output()
        .unwrap();
    assert!(
        String::from_utf8_lossy(&networks.stdout).trim().is_empty(),
        "its network is removed"
    );
    let still = Command::new("docker")
        .args(["inspect", "-f", "{{.State.Running}}", &foreign])
        .output()
        .unwrap();
    assert_eq!(
        String::from_utf8_lossy(&still.stdout).trim(),
        "true",
        "a foreign container is left alone"
    );
    let _ = Command::new("docker").args(["rm", "-f", &foreign]).output();
}

#[test]
fn run_then_delete_on_docker() {
    support::require_docker();
    let name = unique("dl-docker-run");
    let image = unique("devloop-test-drun");
    let port = support::free_port();
    let mut p = project(&name, &image, port);
    let out = p.devloop(&["run"]);
    support::assert_ok(&out);
    let tag = Command::new("docker")
        .args([
            "ps",
            "--filter",
            &format!("label=dev.devloop.project={name}"),
            "--format",
            "{{.Image}}",
        ])
        .output()
        .unwrap();
    p.cleanup_image(String::from_utf8_lossy(&tag.stdout).trim());
    assert!(support::serves(port, "v1\n"), "{}", support::stderr(&out));
    let out = p.devloop(&["delete"]);
    support::assert_ok(&out);
    assert!(docker_ps(&format!("dev.devloop.project={name}")).is_empty());
}

/// A devloop.yaml with one busybox-httpd artifact + container per `(name, context, port)`.
fn config(project: &str, image: &str, services: &[(&str, u16)]) -> String {
    let mut artifacts = String::new();
    let mut containers = String::new();
    for (svc, port) in services {
        artifacts.push_str(&format!(
            "    - image: {image}-{svc}\n      context: {svc}\n"
        ));
        containers.push_str(&format!(
            "      - name: {svc}\n        image: {image}-{svc}\n        ports: [\"127.0.0.1:{port}:8080\"]\n        init: true\n"
        ));
    }
    format!(
        "apiVersion: devloop/v1alpha1\nkind: Config\nmetadata:\n  name: {project}\nbuild:\n  artifacts:\n{artifacts}deploy:\n  docker:\n    containers:\n{containers}"
    )
}

/// A busybox-httpd context under `dir/` serving `content`.
fn service(p: &Project, dir: &str, content: &str) {
    p.with_busybox(&format!("{dir}/bin/busybox"));
    p.write(
        &format!("{dir}/Dockerfile"),
        "FROM scratch\nCOPY bin/busybox /bin/busybox\nCOPY www /www\nENTRYPOINT [\"/bin/busybox\", \"httpd\", \"-f\", \"-p\", \"8080\", \"-h\", \"/www\"]\n",
    );
    p.write(&format!("{dir}/www/index.html"), content);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_artifact_added_by_a_config_edit_is_watched_from_then_on() {
    support::require_docker();
    let name = unique("dl-docker-reload");
    let image = unique("devloop-test-dreload");
    let (web_port, admin_port) = (support::free_port(), support::free_port());
    let mut p = Project::new();
    service(&p, "web", "web v1\n");
    p.write("devloop.yaml", &config(&name, &image, &[("web", web_port)]));
    let (mut child, mut lines) = spawn_dev(&p);
    let mut seen = Vec::new();
    next_event(&mut lines, &mut seen, "iteration").await;
    assert!(support::serves(web_port, "web v1\n"));

    // A second service outside every watched directory, added by editing devloop.yaml.
    service(&p, "admin", "admin v1\n");
    p.write(
        "devloop.yaml",
        &config(&name, &image, &[("web", web_port), ("admin", admin_port)]),
    );
    next_event(&mut lines, &mut seen, "iteration").await;
    assert!(support::serves(admin_port, "admin v1\n"), "{seen:#?}");

    // An edit in the new context rebuilds it: the watcher follows the reloaded config.
    let builds_before = seen.iter().filter(|e| e["type"] == "buildFinished").count();
    p.write("admin/www/index.html", "admin v2\n");
    next_event(&mut lines, &mut seen, "iteration").await;
    assert!(support::serves(admin_port, "admin v2\n"), "{seen:#?}");
    let rebuilt: Vec<&Value> = seen
        .iter()
        .filter(|e| e["type"] == "buildFinished")
        .skip(builds_before)
        .collect();
    assert_eq!(rebuilt.len(), 1, "{rebuilt:#?}");
    assert!(support::serves(web_port, "web v1\n"));

    cleanup_built(&mut p, &seen);
    stop_dev(&mut child, &mut lines, &mut seen).await;
    assert!(docker_ps(&format!("dev.devloop.project={name}")).is_empty());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn synced_files_reach_the_running_container_without_a_rebuild() {
    support::require_docker();
    let name = unique("dl-docker-sync");
    let image = unique("devloop-test-dsync");
    let port = support::free_port();
    let mut p = Project::new();
    service(&p, "web", "v1\n");
    p.write("web/www/other.html", "other\n");
    p.write(
        "devloop.yaml",
        &config(&name, &image, &[("web", port)]).replace(
            "      context: web\n",
            "      context: web\n      sync:\n        manual:\n          - src: 'www/**'\n            dest: /www\n            strip: www/\n",
        ),
    );
    let (mut child, mut lines) = spawn_dev(&p);
    let mut seen = Vec::new();
    next_event(&mut lines, &mut seen, "iteration").await;
    assert!(support::serves(port, "v1\n"));
    let container = format!("{name}-web");
    let id = || {
        let out = Command::new("docker")
            .args(["inspect", "-f", "{{.Id}}", &container])
            .output()
            .unwrap();
        String::from_utf8_lossy(&out.stdout).trim().to_string()
    };
    let first_id = id();

    // A file the sync rule takes: copied into the running container, no build, same container.
    let builds = |seen: &[Value]| seen.iter().filter(|e| e["type"] == "buildStarted").count();
    let builds_before = builds(&seen);
    p.write("web/www/index.html", "v2\n");
    let iteration = next_event(&mut lines, &mut seen, "iteration").await;
    assert_eq!(
        iteration["data"]["synced"][0],
        format!("{image}-web"),
        "{iteration}"
    );
    let synced = seen.iter().rev().find(|e| e["type"] == "synced").unwrap();
    assert_eq!(synced["data"]["files"][0], "web/www/index.html", "{synced}");
    assert_eq!(synced["data"]["containers"], 1);
    assert!(support::serves(port, "v2\n"), "{seen:#?}");
    assert_eq!(builds(&seen), builds_before, "{seen:#?}");
    assert_eq!(id(), first_id, "the container was not replaced");

    // A deleted file is deleted with `rm` in the container; this image has none: the sync fails, says why, and
    // the image is rebuilt and the container replaced.
    std::fs::remove_file(p.path().join("web/www/other.html")).unwrap();
    next_event(&mut lines, &mut seen, "iteration").await;
    assert!(
        seen.iter().any(|e| e["type"] == "warning"
            && e["data"]["message"]
                .as_str()
                .unwrap()
                .contains("file sync failed, rebuilding instead")),
        "{seen:#?}"
    );
    assert_eq!(builds(&seen), builds_before + 1, "{seen:#?}");
    assert!(support::serves(port, "v2\n"));
    assert_ne!(id(), first_id);

    cleanup_built(&mut p, &seen);
    stop_dev(&mut child, &mut lines, &mut seen).await;
    assert!(docker_ps(&format!("dev.devloop.project={name}")).is_empty());
}

/// `cmd` run with busybox in `container`: its stdout, or `None` when it fails.
fn busybox_in(container: &str, cmd: &[&str]) -> Option<String> {
    let out = Command::new("docker")
        .args(["exec", container, "/bin/busybox"])
        .args(cmd)
        .output()
        .unwrap();
    out.status
        .success()
        .then(|| String::from_utf8_lossy(&out.stdout).trim().to_string())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn inferred_files_and_deletes_reach_the_container_where_the_dockerfile_put_them() {
    support::require_docker();
    let name = unique("dl-docker-infer");
    let image = unique("devloop-test-dinfer");
    let port = support::free_port();
    let mut p = Project::new();
    p.with_busybox("web/bin/busybox");
    p.write(
        "web/Dockerfile",
        "FROM scratch\nCOPY bin/busybox /bin/busybox\nCOPY bin/busybox /bin/rm\nWORKDIR /srv\nCOPY www/ ./www/\nENTRYPOINT [\"/bin/busybox\", \"httpd\", \"-f\", \"-p\", \"8080\", \"-h\", \"/srv/www\"]\n",
    );
    p.write("web/www/index.html", "v1\n");
    p.write("web/www/other.html", "other\n");
    p.write(
        "devloop.yaml",
        &config(&name, &image, &[("web", port)]).replace(
            "      context: web\n",
            "      context: web\n      sync:\n        infer: ['www/**']\n",
        ),
    );
    let (mut child, mut lines) = spawn_dev(&p);
    let mut seen = Vec::new();
    next_event(&mut lines, &mut seen, "iteration").await;
    assert!(support::serves(port, "v1\n"));
    let container = format!("{name}-web");
    let id = || {
        let out = Command::new("docker")
            .args(["inspect", "-f", "{{.Id}}", &container])
            .output()
            .unwrap();
        String::from_utf8_lossy(&out.stdout).trim().to_string()
    };
    let first_id = id();
    let builds = |seen: &[Value]| seen.iter().filter(|e| e["type"] == "buildStarted").count();
    let builds_before = builds(&seen);

    // An edit and a new file with its mode: where `COPY www/ ./www/` under `WORKDIR /srv` put them, owned by root.
    p.write("web/www/index.html", "v2\n");
    assert!(support::serves(port, "v2\n"), "{seen:#?}");
    p.write("web/www/tool.sh", "#!/bin/sh\n");
    std::fs::set_permissions(
        p.path().join("web/www/tool.sh"),
        std::os::unix::fs::PermissionsExt::from_mode(0o751),
    )
    .unwrap();
    let deadline = Instant::now() + Duration::from_secs(30);
    while busybox_in(&container, &["stat", "-c", "%a %u:%g", "/srv/www/tool.sh"]).is_none() {
        assert!(Instant::now() < deadline, "{seen:#?}");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert_eq!(
        busybox_in(&container, &["stat", "-c", "%a %u:%g", "/srv/www/tool.sh"]).as_deref(),
        Some("751 0:0")
    );

    // A delete: gone from the container, no build.
    std::fs::remove_file(p.path().join("web/www/other.html")).unwrap();
    let synced = loop {
        let e = next_event(&mut lines, &mut seen, "synced").await;
        if e["data"]["deleted"]
            .as_array()
            .is_some_and(|d| !d.is_empty())
        {
            break e;
        }
    };
    assert_eq!(
        synced["data"]["deleted"][0], "web/www/other.html",
        "{synced}"
    );
    assert_eq!(
        busybox_in(&container, &["test", "-e", "/srv/www/other.html"]),
        None
    );
    assert_eq!(builds(&seen), builds_before, "{seen:#?}");
    assert_eq!(id(), first_id, "the container was not replaced");

    // A file no rule takes: one line saying why, then a rebuild.
    p.write("web/notes.txt", "notes\n");
    let skipped = next_event(&mut lines, &mut seen, "syncSkipped").await;
    assert_eq!(
        skipped["data"]["reason"], "`notes.txt` is not taken by a sync rule",
        "{skipped}"
    );
    next_event(&mut lines, &mut seen, "iteration").await;
    assert_eq!(builds(&seen), builds_before + 1, "{seen:#?}");

    cleanup_built(&mut p, &seen);
    stop_dev(&mut child, &mut lines, &mut seen).await;
    assert!(docker_ps(&format!("dev.devloop.project={name}")).is_empty());
}

/// Seconds since the epoch, as `docker events --since/--until` take them.
fn now_secs() -> f64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs_f64()
}

/// The daemon's container events for project `name` from `since` until now: `(container ID, action, signal,
/// exit code)`, oldest first.
fn daemon_events(name: &str, since: f64) -> Vec<(String, String, String, String)> {
    let out = Command::new("docker")
        .args([
            "events",
            "--since",
            &format!("{since:.3}"),
            "--until",
            &format!("{:.3}", now_secs()),
            "--filter",
            "type=container",
            "--filter",
            &format!("label=dev.devloop.project={name}"),
            "--format",
            "{{json .}}",
        ])
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout)
        .lines()
        .map(|l| {
            let e: Value = serde_json::from_str(l).unwrap();
            let attr = |k: &str| {
                e["Actor"]["Attributes"][k]
                    .as_str()
                    .unwrap_or("")
                    .to_string()
            };
            (
                e["Actor"]["ID"].as_str().unwrap().to_string(),
                e["Action"].as_str().unwrap().to_string(),
                attr("signal"),
                attr("exitCode"),
            )
        })
        .collect()
}

/// The signals the daemon sent container `id`, in order.
fn signals(events: &[(String, String, String, String)], id: &str) -> Vec<String> {
    events
        .iter()
        .filter(|(i, action, ..)| i == id && action == "kill")
        .map(|(.., signal, _)| signal.clone())
        .collect()
}

fn container_id(name: &str) -> String {
    let out = Command::new("docker")
        .args(["inspect", "-f", "{{.Id}}", name])
        .output()
        .unwrap();
    assert!(out.status.success(), "no container `{name}`");
    String::from_utf8_lossy(&out.stdout).trim().to_string()
}

/// The image reference container `name` runs.
fn image_of(name: &str) -> String {
    let out = Command::new("docker")
        .args(["inspect", "-f", "{{.Config.Image}}", name])
        .output()
        .unwrap();
    String::from_utf8_lossy(&out.stdout).trim().to_string()
}

/// Issue 11 (3): busybox `httpd` as PID 1 without `init` ignores SIGTERM, and every rebuild in `dev` waited out
/// the whole stop grace period before the new container started. In `dev` a replaced container is disposable (its
/// replacement is built): it is killed at once, without SIGTERM and without the "was killed" warning, and so is the
/// last one on Ctrl-C (the session that built it is over). `run` and `delete` keep the graceful stop (SIGTERM
/// first, the forced kill reported).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn dev_replaces_a_sigterm_deaf_container_at_once_and_run_and_delete_stop_it_gracefully() {
    support::require_docker();
    let name = unique("dl-docker-deaf");
    let image = unique("devloop-test-ddeaf");
    let port = support::free_port();
    // stopGracePeriod: 1, no init: httpd is PID 1 and ignores SIGTERM.
    let mut p = project(&name, &image, port);
    let container = format!("{name}-web");
    let (mut child, mut lines) = spawn_dev(&p);
    let mut seen = Vec::new();
    next_event(&mut lines, &mut seen, "iteration").await;
    assert!(support::serves(port, "v1\n"));
    let first = container_id(&container);

    let edited = now_secs();
    let before = seen.len();
    p.write("www/index.html", "v2\n");
    next_event(&mut lines, &mut seen, "iteration").await;
    assert!(support::serves(port, "v2\n"), "{seen:#?}");
    let second = container_id(&container);
    assert_ne!(first, second, "the edit replaced the container");
    let warnings: Vec<&Value> = seen[before..]
        .iter()
        .filter(|e| e["type"] == "warning")
        .collect();
    assert!(warnings.is_empty(), "no forced-stop warning: {warnings:#?}");
    let events = daemon_events(&name, edited);
    assert_eq!(
        signals(&events, &first),
        vec!["9"],
        "the replaced container was killed, never sent SIGTERM: {events:#?}"
    );
    assert!(
        events
            .iter()
            .any(|(id, action, _, exit)| id == &first && action == "die" && exit == "137"),
        "{events:#?}"
    );

    // Ctrl-C with cleanup: the last container is disposable too.
    let stopping = now_secs();
    let before = seen.len();
    stop_dev(&mut child, &mut lines, &mut seen).await;
    cleanup_built(&mut p, &seen);
    assert!(docker_ps(&format!("dev.devloop.project={name}")).is_empty());
    let events = daemon_events(&name, stopping);
    assert_eq!(signals(&events, &second), vec!["9"], "{events:#?}");
    assert!(
        !seen[before..].iter().any(|e| e["type"] == "warning"),
        "{seen:#?}"
    );

    // `run` replacing a container and `delete` stop gracefully, and say the stop had to be forced.
    support::assert_ok(&p.devloop(&["run"]));
    let third = container_id(&container);
    p.cleanup_image(&image_of(&container));
    p.write("www/index.html", "v3\n");
    let replaced = now_secs();
    let out = p.devloop(&["run"]);
    support::assert_ok(&out);
    let fourth = container_id(&container);
    p.cleanup_image(&image_of(&container));
    assert_ne!(third, fourth);
    assert!(
        support::stderr(&out).contains("was killed"),
        "{}",
        support::stderr(&out)
    );
    let out = p.devloop(&["delete"]);
    support::assert_ok(&out);
    assert!(support::stderr(&out).contains("was killed"));
    let events = daemon_events(&name, replaced);
    assert_eq!(signals(&events, &third), vec!["15", "9"], "{events:#?}");
    assert_eq!(signals(&events, &fourth), vec!["15", "9"], "{events:#?}");
    assert!(docker_ps(&format!("dev.devloop.project={name}")).is_empty());
}
