//! Loading into local cluster nodes (tier "docker" in docs/testing.md): `devloop run` against the fake API server
//! through a kube context named like kind's (`kind-<cluster>`) or k3d's, with a stand-in node container on the real
//! Docker daemon. The node is `FROM scratch` + busybox; its `ctr` records every call and the archive it is sent, and
//! answers `images ls` with what it imported, named as containerd names images (`docker.io/library/…`).
#![allow(clippy::unwrap_used)]

mod support;

use std::process::{Command, Output};

use std::time::{Duration, Instant};

use kube::api::Api;
use serde_json::Value;
use support::fake_apiserver::FakeApiServer;
use support::{Project, assert_ok, events_of, stderr, unique};
use tokio::io::{AsyncBufReadExt, BufReader};

/// containerd's `ctr`, as far as devloop uses it: `images ls -q` and `images import … -` (archive on stdin).
/// `/ctr/refuse` makes imports fail the way a damaged archive does.
const CTR: &str = r#"#!/bin/sh
mkdir -p /ctr/imports
echo "$*" >> /ctr/calls
case "$*" in
  *"images ls"*)
    cat /ctr/names 2>/dev/null
    ;;
  *"images import"*)
    n=$(( $(ls /ctr/imports | wc -l) + 1 ))
    cat > /ctr/imports/$n.tar
    if [ -e /ctr/refuse ]; then
      echo "ctr: unrecognized image format" >&2
      exit 1
    fi
    tar -xOf /ctr/imports/$n.tar manifest.json | sed -e 's/.*"RepoTags":\[//' -e 's/\].*//' | tr ',' '\n' | tr -d '"' |
    while read -r ref; do
      case "$ref" in
        */*)
          case "${ref%%/*}" in
            *.*|*:*|localhost) echo "$ref" ;;
            *) echo "docker.io/$ref" ;;
          esac
          ;;
        ?*) echo "docker.io/library/$ref" ;;
      esac
    done >> /ctr/names
    ;;
  *)
    echo "ctr: unexpected arguments: $*" >&2
    exit 1
    ;;
esac
"#;

/// kind reads the CRI's snapshotter from `containerd config dump` (config version 2 here, as kind's nodes have).
const CONTAINERD: &str = r#"#!/bin/sh
[ "$1 $2" = "config dump" ] || exit 1
printf 'version = 2\n\n[plugins]\n  [plugins."io.containerd.grpc.v1.cri"]\n    [plugins."io.containerd.grpc.v1.cri".containerd]\n      snapshotter = "overlayfs"\n'
"#;

/// A stand-in node image and the containers started from it; all removed on drop.
struct Nodes {
    image: String,
    containers: Vec<String>,
    _files: Project,
}

impl Nodes {
    fn new() -> Nodes {
        support::require_docker();
        let files = Project::new();
        files.with_busybox("bin/busybox");
        files.write("usr/local/bin/ctr", CTR);
        files.write("usr/local/bin/containerd", CONTAINERD);
        files.write(
            "Dockerfile",
            "FROM scratch\nCOPY bin/busybox /bin/busybox\nRUN [\"/bin/busybox\", \"--install\", \"-s\", \"/bin\"]\nCOPY usr /usr\nRUN [\"/bin/busybox\", \"chmod\", \"+x\", \"/usr/local/bin/ctr\", \"/usr/local/bin/containerd\"]\nENV PATH=/usr/local/bin:/bin\nCMD [\"/bin/busybox\", \"sleep\", \"86400\"]\n",
        );
        let image = format!("{}:v", unique("devloop-test-node"));
        let out = Command::new("docker")
            .args(["build", "-q", "-t", &image])
            .arg(files.path())
            .env("DOCKER_BUILDKIT", "0")
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "docker build: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        Nodes {
            image,
            containers: Vec::new(),
            _files: files,
        }
    }

    /// Starts a node container with `labels`; returns its name.
    fn start(&mut self, labels: &[String]) -> String {
        let name = unique("devloop-test-node");
        let mut cmd = Command::new("docker");
        cmd.args(["run", "-d", "--name", &name]);
        for l in labels {
            cmd.args(["--label", l]);
        }
        let out = cmd.arg(&self.image).output().unwrap();
        self.containers.push(name.clone());
        assert!(
            out.status.success(),
            "docker run: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        name
    }

    /// Runs `sh -c script` in `node`; its stdout.
    fn sh(&self, node: &str, script: &str) -> String {
        let out = Command::new("docker")
            .args(["exec", node, "sh", "-c", script])
            .output()
            .unwrap();
        String::from_utf8_lossy(&out.stdout).to_string()
    }

    /// The `ctr` calls the node received, one line each.
    fn calls(&self, node: &str) -> Vec<String> {
        self.sh(node, "cat /ctr/calls 2>/dev/null")
            .lines()
            .map(String::from)
            .collect()
    }

    /// `manifest.json` of every archive the node was sent, in order.
    fn manifests(&self, node: &str) -> Vec<Value> {
        let count: usize = self
            .sh(node, "ls /ctr/imports 2>/dev/null | wc -l")
            .trim()
            .parse()
            .unwrap();
        (1..=count)
            .map(|n| {
                let text = self.sh(
                    node,
                    &format!("tar -xOf /ctr/imports/{n}.tar manifest.json"),
                );
                serde_json::from_str(&text)
                    .unwrap_or_else(|e| panic!("archive {n} has no manifest.json: {e}: {text}"))
            })
            .collect()
    }
}

impl Drop for Nodes {
    fn drop(&mut self) {
        if !self.containers.is_empty() {
            let _ = Command::new("docker")
                .args(["rm", "-f"])
                .args(&self.containers)
                .output();
        }
        let _ = Command::new("docker")
            .args(["rmi", "-f", &self.image])
            .output();
    }
}

type Lines = tokio::io::Lines<BufReader<tokio::process::ChildStdout>>;

/// Reads events until one of type `ty` (bounded, so a hang fails the test instead of stalling CI).
async fn next_event(lines: &mut Lines, seen: &mut Vec<Value>, ty: &str) -> Value {
    let deadline = Instant::now() + Duration::from_secs(90);
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

/// A project building one busybox image deployed by a Deployment, and a kubeconfig for the fake API server whose
/// context is `context`.
struct Setup {
    fake: FakeApiServer,
    project: Project,
    kubeconfig: std::path::PathBuf,
    image: String,
}

impl Setup {
    fn new(context: &str) -> Setup {
        let fake = FakeApiServer::start();
        let image = unique("devloop-test-load");
        let project = Project::new();
        project.with_busybox("bin/busybox");
        project.write(
            "devloop.yaml",
            &format!("apiVersion: devloop/v1alpha1\nkind: Config\nmetadata:\n  name: loadtest\nbuild:\n  artifacts:\n    - image: {image}\nmanifests:\n  rawYaml: [\"k8s/*.yaml\"]\n"),
        );
        project.write(
            "Dockerfile",
            "FROM scratch\nCOPY bin/busybox /bin/busybox\nCOPY www /www\n",
        );
        project.write("www/index.html", "v1");
        project.write(".dockerignore", "k8s\nkubeconfig\n");
        project.write(
            "k8s/app.yaml",
            &format!("apiVersion: apps/v1\nkind: Deployment\nmetadata:\n  name: api\nspec:\n  replicas: 1\n  selector:\n    matchLabels: {{app: api}}\n  template:\n    metadata:\n      labels: {{app: api}}\n    spec:\n      containers:\n        - name: main\n          image: {image}\n"),
        );
        let written = fake.kubeconfig(project.path());
        let text = std::fs::read_to_string(&written)
            .unwrap()
            .replace(
                "- name: fake\n  context:",
                &format!("- name: {context}\n  context:"),
            )
            .replace(
                "current-context: fake",
                &format!("current-context: {context}"),
            );
        assert!(
            text.contains(&format!("current-context: {context}")),
            "{text}"
        );
        std::fs::write(&written, text).unwrap();
        Setup {
            fake,
            project,
            kubeconfig: written,
            image,
        }
    }

    /// `devloop run -o json` in the project, off the runtime that serves the fake API server.
    async fn run(&mut self) -> Output {
        let mut cmd = Command::new(env!("CARGO_BIN_EXE_devloop"));
        cmd.args(["run", "-o", "json", "--status-check-deadline", "60s"])
            .arg("--kubeconfig")
            .arg(&self.kubeconfig)
            .current_dir(self.project.path())
            .env("DEVLOOP_CACHE_DIR", self.project.cache.path())
            .env("NO_COLOR", "1")
            .env_remove("KUBECONFIG")
            .env_remove("DEVLOOP_DEFAULT_REPO")
            .env_remove("RUST_LOG");
        let out = tokio::task::spawn_blocking(move || cmd.output().unwrap())
            .await
            .unwrap();
        // Whatever was built is removed at the end, also when the run failed after building.
        for e in support::events(&out) {
            if e["type"] == "buildFinished" {
                self.project
                    .cleanup_image(e["data"]["tag"].as_str().unwrap());
            }
            if e["type"] == "buildsComplete" {
                for b in e["data"]["builds"].as_array().unwrap() {
                    self.project.cleanup_image(b["tag"].as_str().unwrap());
                }
            }
        }
        out
    }

    /// `devloop dev -o json` in the project; its events as lines.
    fn spawn_dev(&self) -> (tokio::process::Child, Lines) {
        let mut child = tokio::process::Command::new(env!("CARGO_BIN_EXE_devloop"))
            .args(["dev", "-o", "json", "--debounce", "50"])
            .arg("--kubeconfig")
            .arg(&self.kubeconfig)
            .current_dir(self.project.path())
            .env("DEVLOOP_CACHE_DIR", self.project.cache.path())
            .env("NO_COLOR", "1")
            .env_remove("KUBECONFIG")
            .env_remove("DEVLOOP_DEFAULT_REPO")
            .env_remove("RUST_LOG")
            .stdout(std::process::Stdio::piped())
            .stderr(std::process::Stdio::null())
            .kill_on_drop(true)
            .spawn()
            .unwrap();
        let lines = BufReader::new(child.stdout.take().unwrap()).lines();
        (child, lines)
    }

    async fn deployed_image(&self) -> String {
        let api: Api<k8s_openapi::api::apps::v1::Deployment> =
            Api::namespaced(self.fake.client().await, "default");
        let d = api.get("api").await.unwrap();
        d.spec.unwrap().template.spec.unwrap().containers[0]
            .image
            .clone()
            .unwrap()
    }
}

#[tokio::test]
async fn run_loads_the_built_image_into_kind_nodes_that_lack_it_and_deploys_the_nodes_name() {
    let mut nodes = Nodes::new();
    let cluster = unique("dlkind");
    let label = format!("io.x-k8s.kind.cluster={cluster}");
    let control_plane = nodes.start(std::slice::from_ref(&label));
    let worker = nodes.start(&[label]);
    let mut s = Setup::new(&format!("kind-{cluster}"));

    let out = s.run().await;
    assert_ok(&out);
    let events = support::events(&out);
    let loaded = events_of(&events, "imageLoaded");
    assert_eq!(loaded.len(), 1, "{}", stderr(&out));
    let reference = loaded[0]["data"]["reference"].as_str().unwrap().to_string();
    let mut into: Vec<&str> = loaded[0]["data"]["nodes"]
        .as_array()
        .unwrap()
        .iter()
        .map(|n| n.as_str().unwrap())
        .collect();
    into.sort();
    let mut both = vec![control_plane.as_str(), worker.as_str()];
    both.sort();
    assert_eq!(into, both, "every node lacked the image");
    assert!(
        reference.starts_with(&format!("docker.io/library/{}:", s.image)),
        "the nodes name a short image docker.io/library/…: {reference}"
    );
    assert_eq!(events_of(&events, "loadStarted").len(), 1);

    for node in [&control_plane, &worker] {
        let calls = nodes.calls(node);
        assert_eq!(
            calls,
            [
                "--namespace=k8s.io images ls -q",
                "--namespace=k8s.io images import --all-platforms --digests --snapshotter=overlayfs -",
            ],
            "{node}"
        );
        // The archive is `docker save` of the deployed image: its tag is the familiar form of the node's name.
        let manifests = nodes.manifests(node);
        assert_eq!(manifests.len(), 1);
        let tags = &manifests[0][0]["RepoTags"];
        let short = reference.trim_start_matches("docker.io/library/");
        assert_eq!(tags, &serde_json::json!([short]), "{node}");
    }
    assert_eq!(
        s.deployed_image().await,
        reference,
        "the Deployment runs exactly the name the nodes have"
    );

    // Nothing changed: the build is cached, each node is asked and already has it, nothing is sent.
    let again = s.run().await;
    assert_ok(&again);
    let events = support::events(&again);
    assert!(!events_of(&events, "buildCached").is_empty());
    assert!(events_of(&events, "imageLoaded").is_empty());
    assert!(events_of(&events, "loadStarted").is_empty());
    for node in [&control_plane, &worker] {
        let calls = nodes.calls(node);
        assert_eq!(calls.len(), 3, "{node}: {calls:?}");
        assert_eq!(calls[2], "--namespace=k8s.io images ls -q");
        assert_eq!(nodes.manifests(node).len(), 1);
    }
    assert_eq!(s.deployed_image().await, reference);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn dev_loads_each_rebuilt_image_and_deploys_it() {
    let mut nodes = Nodes::new();
    let cluster = unique("dlkind");
    let node = nodes.start(&[format!("io.x-k8s.kind.cluster={cluster}")]);
    let mut s = Setup::new(&format!("kind-{cluster}"));
    let (mut child, mut lines) = s.spawn_dev();
    let mut seen = Vec::new();
    let first = next_event(&mut lines, &mut seen, "imageLoaded").await;
    next_event(&mut lines, &mut seen, "iteration").await;
    let first = first["data"]["reference"].as_str().unwrap().to_string();
    assert_eq!(s.deployed_image().await, first);

    s.project.write("www/index.html", "v2");
    let second = next_event(&mut lines, &mut seen, "imageLoaded").await;
    next_event(&mut lines, &mut seen, "iteration").await;
    let second = second["data"]["reference"].as_str().unwrap().to_string();
    assert_ne!(second, first, "the edit gives a new image under a new name");
    assert_eq!(s.deployed_image().await, second);
    let imports = nodes
        .calls(&node)
        .iter()
        .filter(|c| c.contains("images import"))
        .count();
    assert_eq!(imports, 2, "one import per built image");

    let pid = child.id().unwrap().to_string();
    assert!(
        Command::new("kill")
            .args(["-INT", &pid])
            .status()
            .unwrap()
            .success()
    );
    next_event(&mut lines, &mut seen, "devStopped").await;
    let status = tokio::time::timeout(Duration::from_secs(60), child.wait())
        .await
        .unwrap()
        .unwrap();
    for e in seen.iter().filter(|e| e["type"] == "buildFinished") {
        s.project.cleanup_image(e["data"]["tag"].as_str().unwrap());
    }
    assert_eq!(
        status.code(),
        Some(130),
        "stopped by Ctrl-C after a clean stop"
    );
}

#[tokio::test]
async fn k3d_servers_and_agents_get_the_image_and_the_loadbalancer_does_not() {
    let mut nodes = Nodes::new();
    let cluster = unique("dlk3d");
    let on = |role: &str| vec![format!("k3d.cluster={cluster}"), format!("k3d.role={role}")];
    let server = nodes.start(&on("server"));
    let agent = nodes.start(&on("agent"));
    let loadbalancer = nodes.start(&on("loadbalancer"));
    let mut s = Setup::new(&format!("k3d-{cluster}"));

    let out = s.run().await;
    assert_ok(&out);
    let events = support::events(&out);
    let loaded = events_of(&events, "imageLoaded");
    assert_eq!(loaded.len(), 1, "{}", stderr(&out));
    let reference = loaded[0]["data"]["reference"].as_str().unwrap().to_string();
    for node in [&server, &agent] {
        // k3s's ctr unpacks for its CRI's snapshotter by default; `k3d image import` passes none either.
        assert_eq!(
            nodes.calls(node),
            [
                "--namespace=k8s.io images ls -q",
                "--namespace=k8s.io images import --all-platforms --digests -",
            ],
            "{node}"
        );
    }
    assert!(nodes.calls(&loadbalancer).is_empty());
    assert_eq!(s.deployed_image().await, reference);
}

#[tokio::test]
async fn a_node_that_refuses_the_image_fails_the_run_naming_node_image_and_ctr_output() {
    let mut nodes = Nodes::new();
    let cluster = unique("dlkind");
    let node = nodes.start(&[format!("io.x-k8s.kind.cluster={cluster}")]);
    nodes.sh(&node, "mkdir -p /ctr && touch /ctr/refuse");
    let mut s = Setup::new(&format!("kind-{cluster}"));

    let out = s.run().await;
    assert_eq!(out.status.code(), Some(1), "{}", stderr(&out));
    let err = stderr(&out);
    assert!(
        err.contains(&format!("node `{node}`"))
            && err.contains(&format!("`docker.io/library/{}:", s.image))
            && err.contains("ctr: unrecognized image format")
            && err.contains("hint:"),
        "{err}"
    );
    let events = support::events(&out);
    assert_eq!(events_of(&events, "loadFailed").len(), 1);
    let api: Api<k8s_openapi::api::apps::v1::Deployment> =
        Api::namespaced(s.fake.client().await, "default");
    assert!(
        api.get_opt("api").await.unwrap().is_none(),
        "nothing is deployed when the image cannot reach the nodes"
    );
}

#[tokio::test]
async fn a_kind_context_without_running_nodes_is_an_environment_error() {
    support::require_docker();
    let mut s = Setup::new(&format!("kind-{}", unique("dlnone")));
    let out = s.run().await;
    assert_eq!(out.status.code(), Some(2), "{}", stderr(&out));
    let err = stderr(&out);
    assert!(
        err.contains("kind cluster `dlnone-") && err.contains("hint:"),
        "{err}"
    );
}
