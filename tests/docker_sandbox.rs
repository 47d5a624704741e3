//! `devloop dev` on the Docker target runs each container of a built artifact in a network sandbox that outlives
//! it (issue 11): a container of devloop's pause image owns the network namespace, its published ports and its
//! name on the project network; the app container joins it (`container:<sandbox>`) and is the only thing an edit
//! replaces. Sandboxes go with their containers (exit, `--cleanup=false` + `delete`, a container removed from
//! devloop.yaml), follow config changes, come back when removed by hand, and `run` makes none.
#![allow(clippy::unwrap_used)]

mod support;

use std::process::Command;

use serde_json::Value;
use support::dev::Dev;
use support::{Project, unique};

/// Removes whatever a session left of project `.0` (a failed test kills devloop before its cleanup), its network,
/// and every image of repository `.1` it built. Never the pause image: other projects share it.
struct Leftovers(String, String);

impl Drop for Leftovers {
    fn drop(&mut self) {
        let ids = docker_ps(&format!("dev.devloop.project={}", self.0));
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

/// The IDs of all containers (running or not) with `label`.
fn docker_ps(label: &str) -> Vec<String> {
    let out = Command::new("docker")
        .args(["ps", "-aq", "--filter", &format!("label={label}")])
        .output()
        .unwrap();
    String::from_utf8_lossy(&out.stdout)
        .split_whitespace()
        .map(str::to_string)
        .collect()
}

/// A busybox-httpd image (PID 1 ignores SIGTERM, no init) whose Dockerfile also `EXPOSE`s its port: a container in
/// a sandbox must not publish or expose ports itself, and the image's own `EXPOSE` must not get in the way.
const DOCKERFILE: &str = "FROM scratch\nCOPY bin/busybox /bin/busybox\nCOPY www /www\nEXPOSE 8080\nENTRYPOINT [\"/bin/busybox\", \"httpd\", \"-f\", \"-v\", \"-p\", \"8080\", \"-h\", \"/www\"]\n";

/// A devloop.yaml with one artifact and one container per `(name, host port)`, all running that artifact.
fn config(project: &str, image: &str, containers: &[(&str, u16)]) -> String {
    let mut out = format!(
        "apiVersion: devloop/v1alpha1\nkind: Config\nmetadata:\n  name: {project}\nbuild:\n  artifacts:\n    - image: {image}\ndeploy:\n  docker:\n    stopGracePeriod: 10\n    containers:\n"
    );
    for (name, port) in containers {
        out.push_str(&format!(
            "      - name: {name}\n        image: {image}\n        ports: [\"127.0.0.1:{port}:8080\"]\n"
        ));
    }
    out
}

fn project(name: &str, image: &str, containers: &[(&str, u16)]) -> Project {
    let p = Project::new();
    p.with_busybox("bin/busybox");
    p.write("devloop.yaml", &config(name, image, containers));
    p.write("Dockerfile", DOCKERFILE);
    p.write("www/index.html", "v1\n");
    p
}

fn spawn(p: &Project, args: &[&str]) -> Dev {
    let mut all: Vec<String> = vec!["--debounce".into(), "50".into()];
    all.extend(args.iter().map(|a| a.to_string()));
    Dev::spawn(p.path(), p.cache.path(), &all, &[])
}

/// Waits for the next iteration that rebuilt something.
async fn rebuilt(dev: &mut Dev) {
    dev.until("an iteration that rebuilt", |e: &Value| {
        e["type"] == "iteration"
            && e["data"]["rebuilt"]
                .as_array()
                .is_some_and(|r| !r.is_empty())
    })
    .await;
}

/// The body of `GET /` on `<host>:8080` from a throwaway container on the project's network (`image` has busybox;
/// its `nc`, since the static `wget` cannot resolve names), or what went wrong.
fn fetch_on_network(project: &str, image: &str, host: &str) -> String {
    let out = Command::new("docker")
        .args(["run", "--rm", "--network", &format!("devloop-{project}")])
        .args(["--entrypoint", "/bin/busybox", image, "sh", "-c"])
        .arg(format!(
            "printf 'GET / HTTP/1.0\\r\\n\\r\\n' | /bin/busybox nc {host} 8080"
        ))
        .output()
        .unwrap();
    let response = String::from_utf8_lossy(&out.stdout).to_string();
    match response.split_once("\r\n\r\n") {
        Some((_, body)) => body.to_string(),
        None => format!("{response}{}", String::from_utf8_lossy(&out.stderr)),
    }
}

/// Two rebuilds: the app container is replaced each time and joins the sandbox's network namespace; the sandbox is
/// the same container throughout, its published port serves the new content, and another container of the project
/// reaches the service by name (the alias lives on the sandbox). Ctrl-C removes both.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn edits_replace_the_container_inside_a_sandbox_that_stays() {
    support::require_docker();
    let name = unique("dl-sbx-edit");
    let image = unique("devloop-test-dsbx");
    let _leftovers = Leftovers(name.clone(), image.clone());
    let port = support::free_port();
    let p = project(&name, &image, &[("web", port)]);
    let (web, sandbox) = (format!("{name}-web"), format!("{name}.web.sandbox"));
    let mut dev = spawn(&p, &[]);
    dev.until_type("iteration").await;
    assert!(support::serves(port, "v1\n"), "{}", dev.transcript());
    let sandbox_id = support::docker_inspect(&sandbox, "{{.Id}}").expect("no sandbox");
    assert_eq!(
        support::docker_inspect(&sandbox, "{{.State.Running}}").as_deref(),
        Some("true")
    );
    let mut app_ids = vec![support::docker_inspect(&web, "{{.Id}}").unwrap()];
    for content in ["v2\n", "v3\n"] {
        p.write("www/index.html", content);
        rebuilt(&mut dev).await;
        assert!(support::serves(port, content), "{}", dev.transcript());
        let app = support::docker_inspect(&web, "{{.Id}}").unwrap();
        assert!(
            !app_ids.contains(&app),
            "the app container was not replaced"
        );
        app_ids.push(app);
        assert_eq!(
            support::docker_inspect(&sandbox, "{{.Id}}").as_deref(),
            Some(sandbox_id.as_str()),
            "the sandbox was replaced:\n{}",
            dev.transcript()
        );
        assert_eq!(
            support::docker_inspect(&web, "{{.HostConfig.NetworkMode}}"),
            Some(format!("container:{sandbox_id}"))
        );
        let bindings = support::docker_inspect(&web, "{{json .HostConfig.PortBindings}}");
        assert!(
            matches!(bindings.as_deref(), Some("null" | "{}")),
            "the app container publishes ports itself: {bindings:?}"
        );
    }
    let app_image = support::docker_inspect(&web, "{{.Config.Image}}").unwrap();
    assert_eq!(
        fetch_on_network(&name, &app_image, "web"),
        "v3\n",
        "{}",
        dev.transcript()
    );
    // The user sees their container, not its sandbox.
    let events = dev.written.lock().unwrap().events.clone();
    assert!(
        !events.iter().any(|e| e.to_string().contains("sandbox")),
        "{}",
        dev.transcript()
    );
    assert_eq!(dev.stop().await, Some(130));
    assert!(
        docker_ps(&format!("dev.devloop.project={name}")).is_empty(),
        "dev's exit left containers"
    );
    assert!(support::docker_inspect(&sandbox, "{{.Id}}").is_none());
}

/// A sandbox removed by hand comes back on the next iteration (with a new container in it); a changed port
/// recreates the sandbox and the new port serves; a container removed from devloop.yaml takes its sandbox along.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sandboxes_follow_the_config_and_come_back_when_removed() {
    support::require_docker();
    let name = unique("dl-sbx-cfg");
    let image = unique("devloop-test-dsbc");
    let _leftovers = Leftovers(name.clone(), image.clone());
    let (port, other_port, new_port) = (
        support::free_port(),
        support::free_port(),
        support::free_port(),
    );
    let p = project(&name, &image, &[("web", port), ("other", other_port)]);
    let sandbox = format!("{name}.web.sandbox");
    let other_sandbox = format!("{name}.other.sandbox");
    let mut dev = spawn(&p, &[]);
    dev.until_type("iteration").await;
    assert!(support::serves(port, "v1\n") && support::serves(other_port, "v1\n"));

    // Removed by hand: the next edit brings it back, and the port serves again.
    let first = support::docker_inspect(&sandbox, "{{.Id}}").unwrap();
    let rm = Command::new("docker")
        .args(["rm", "-f", &sandbox])
        .output()
        .unwrap();
    assert!(rm.status.success());
    p.write("www/index.html", "v2\n");
    rebuilt(&mut dev).await;
    assert!(support::serves(port, "v2\n"), "{}", dev.transcript());
    let second =
        support::docker_inspect(&sandbox, "{{.Id}}").expect("the sandbox was not recreated");
    assert_ne!(first, second);

    // A new port: a new sandbox publishes it.
    let from = dev.seen();
    p.write(
        "devloop.yaml",
        &config(&name, &image, &[("web", new_port), ("other", other_port)]),
    );
    dev.until("a deploy", |e: &Value| e["type"] == "iteration")
        .await;
    assert!(support::serves(new_port, "v2\n"), "{}", dev.transcript());
    assert_ne!(
        support::docker_inspect(&sandbox, "{{.Id}}").unwrap(),
        second
    );
    assert!(
        support::http_body(port).is_none(),
        "the old port still serves"
    );

    // `other` leaves devloop.yaml: it and its sandbox go; `web` keeps its sandbox.
    let third = support::docker_inspect(&sandbox, "{{.Id}}").unwrap();
    p.write("devloop.yaml", &config(&name, &image, &[("web", new_port)]));
    dev.until("the prune", |e: &Value| e["type"] == "pruned")
        .await;
    dev.until_type("iteration").await;
    assert!(support::docker_inspect(&format!("{name}-other"), "{{.Id}}").is_none());
    assert!(
        support::docker_inspect(&other_sandbox, "{{.Id}}").is_none(),
        "the sandbox of a removed container stayed"
    );
    assert_eq!(support::docker_inspect(&sandbox, "{{.Id}}"), Some(third));
    assert!(support::serves(new_port, "v2\n"), "{}", dev.transcript());
    assert!(dev.events_since(from, "iterationFailed").is_empty());
    assert_eq!(dev.stop().await, Some(130));
    assert!(docker_ps(&format!("dev.devloop.project={name}")).is_empty());
}

/// `--cleanup=false` leaves the container and its sandbox serving; `devloop delete` removes both and the network.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn delete_removes_the_sandboxes_dev_left() {
    support::require_docker();
    let name = unique("dl-sbx-keep");
    let image = unique("devloop-test-dsbk");
    let _leftovers = Leftovers(name.clone(), image.clone());
    let port = support::free_port();
    let p = project(&name, &image, &[("web", port)]);
    let mut dev = spawn(&p, &["--cleanup=false"]);
    dev.until_type("iteration").await;
    assert_eq!(dev.stop().await, Some(130));
    assert!(
        support::serves(port, "v1\n"),
        "nothing serves after --cleanup=false"
    );
    assert_eq!(
        support::docker_inspect(&format!("{name}.web.sandbox"), "{{.State.Running}}").as_deref(),
        Some("true"),
        "the sandbox was not kept"
    );
    let out = p.devloop(&["delete"]);
    support::assert_ok(&out);
    assert!(
        docker_ps(&format!("dev.devloop.project={name}")).is_empty(),
        "{}",
        support::stderr(&out)
    );
    assert!(!support::stderr(&out).contains("sandbox"));
    let network = Command::new("docker")
        .args(["network", "inspect", &format!("devloop-{name}")])
        .output()
        .unwrap();
    assert!(!network.status.success(), "the network stayed");
}

/// `devloop run` keeps today's shape: no sandbox, the container on the project network with its own ports. A
/// `dev` after it replaces that container with one in a sandbox (the port moves to the sandbox), and a `run` after a
/// `dev --cleanup=false` takes it back (the sandbox, which holds the port, is pruned).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn run_makes_no_sandbox_and_dev_takes_its_container_over() {
    support::require_docker();
    let name = unique("dl-sbx-run");
    let image = unique("devloop-test-dsbr");
    let _leftovers = Leftovers(name.clone(), image.clone());
    let port = support::free_port();
    let p = project(&name, &image, &[("web", port)]);
    let web = format!("{name}-web");
    let out = p.devloop(&["run"]);
    support::assert_ok(&out);
    assert!(support::serves(port, "v1\n"), "{}", support::stderr(&out));
    assert!(support::docker_inspect(&format!("{name}.web.sandbox"), "{{.Id}}").is_none());
    assert_eq!(
        support::docker_inspect(&web, "{{.HostConfig.NetworkMode}}"),
        Some(format!("devloop-{name}"))
    );
    let from_run = support::docker_inspect(&web, "{{.Id}}").unwrap();

    let mut dev = spawn(&p, &[]);
    dev.until_type("iteration").await;
    assert!(support::serves(port, "v1\n"), "{}", dev.transcript());
    assert_ne!(support::docker_inspect(&web, "{{.Id}}").unwrap(), from_run);
    assert!(
        support::docker_inspect(&web, "{{.HostConfig.NetworkMode}}")
            .unwrap()
            .starts_with("container:")
    );
    assert_eq!(dev.stop().await, Some(130));
    assert!(docker_ps(&format!("dev.devloop.project={name}")).is_empty());

    // `run` after a `dev` that left its container: the sandbox goes (it holds the port), the container is on the
    // network again with its own port.
    p.write("www/index.html", "v2\n");
    let mut dev = spawn(&p, &["--cleanup=false"]);
    dev.until_type("iteration").await;
    assert!(support::serves(port, "v2\n"), "{}", dev.transcript());
    assert_eq!(dev.stop().await, Some(130));
    assert!(support::docker_inspect(&format!("{name}.web.sandbox"), "{{.Id}}").is_some());
    let out = p.devloop(&["run"]);
    support::assert_ok(&out);
    assert!(support::docker_inspect(&format!("{name}.web.sandbox"), "{{.Id}}").is_none());
    assert_eq!(
        support::docker_inspect(&web, "{{.HostConfig.NetworkMode}}"),
        Some(format!("devloop-{name}"))
    );
    assert!(support::serves(port, "v2\n"), "{}", support::stderr(&out));
    support::assert_ok(&p.devloop(&["delete"]));
    assert!(docker_ps(&format!("dev.devloop.project={name}")).is_empty());
}

/// Removes a container devloop did not create when the test ends.
struct Foreign(String);

impl Drop for Foreign {
    fn drop(&mut self) {
        let _ = Command::new("docker").args(["rm", "-f", &self.0]).output();
    }
}

/// A container devloop did not create under a sandbox's name: the deploy fails naming it, with a hint, and it is
/// left alone, by the deploy and by dev's exit.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_foreign_container_under_a_sandboxs_name_is_never_touched() {
    support::require_docker();
    let name = unique("dl-sbx-clash");
    let image = unique("devloop-test-dsbf");
    let _leftovers = Leftovers(name.clone(), image.clone());
    let port = support::free_port();
    let p = project(&name, &image, &[("web", port)]);
    let clash = format!("{name}.web.sandbox");
    let _foreign = Foreign(clash.clone());
    let tag = format!("{image}:foreign");
    let built = Command::new("docker")
        .args(["build", "-q", "-t", &tag])
        .arg(p.path())
        .env("DOCKER_BUILDKIT", "0")
        .output()
        .unwrap();
    assert!(built.status.success(), "{built:?}");
    let run = Command::new("docker")
        .args(["run", "-d", "--name", &clash, &tag])
        .output()
        .unwrap();
    assert!(run.status.success(), "{run:?}");
    let id = support::docker_inspect(&clash, "{{.Id}}").unwrap();

    let mut dev = spawn(&p, &[]);
    dev.until_type("iterationFailed").await;
    let transcript = dev.transcript();
    assert!(
        transcript.contains(&format!(
            "a container named `{clash}` (the name of its network sandbox) exists and devloop did not create it"
        )),
        "{transcript}"
    );
    assert!(
        transcript.contains(&format!("docker rm -f {clash}")),
        "{transcript}"
    );
    assert_eq!(dev.stop().await, Some(130));
    assert_eq!(support::docker_inspect(&clash, "{{.Id}}"), Some(id));
    assert_eq!(
        support::docker_inspect(&clash, "{{.State.Running}}").as_deref(),
        Some("true")
    );
}

/// The pause image is imported once per daemon: a second project's sandbox runs the very image the first one's
/// does (the same ID), and it runs (the x86_64 program works as PID 1).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn projects_share_one_pause_image() {
    support::require_docker();
    let mut ids = Vec::new();
    for n in 0..2 {
        let name = unique(&format!("dl-sbx-pause{n}"));
        let image = unique(&format!("devloop-test-dsbp{n}"));
        let _leftovers = Leftovers(name.clone(), image.clone());
        let port = support::free_port();
        let p = project(&name, &image, &[("web", port)]);
        let mut dev = spawn(&p, &[]);
        dev.until_type("iteration").await;
        assert!(support::serves(port, "v1\n"), "{}", dev.transcript());
        let sandbox = format!("{name}.web.sandbox");
        assert_eq!(
            support::docker_inspect(&sandbox, "{{.State.Running}}").as_deref(),
            Some("true")
        );
        let reference = support::docker_inspect(&sandbox, "{{.Config.Image}}").unwrap();
        assert!(reference.starts_with("devloop-pause:"), "{reference}");
        ids.push(support::docker_inspect(&sandbox, "{{.Image}}").unwrap());
        assert_eq!(dev.stop().await, Some(130));
        // Never removed with a project: the next one (and other projects) use it.
        assert!(support::docker_inspect(&reference, "{{.Id}}").is_some());
    }
    assert_eq!(ids[0], ids[1], "the pause image was imported again");
}
