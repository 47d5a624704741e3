//! Build, loading: a built image in the local Docker daemon → the nodes of a local cluster (kind, k3d) that lack it,
//! so nothing is pushed for local development. Knows which kube contexts name local clusters and how their nodes'
//! containerd names images; never touches other clusters and never decides *whether* to load (the runner does).

use std::collections::HashMap;
use std::pin::Pin;
use std::time::{Duration, Instant};

use bollard::Docker;
use bollard::exec::{CreateExecOptions, StartExecResults};
use bollard::query_parameters::ListContainersOptions;
use futures_util::StreamExt;
use tokio::io::{AsyncWrite, AsyncWriteExt};

use super::BuildError;
use crate::event::{Event, EventSink};
use crate::tag;

/// A local cluster recognised from its kube context name, and how images reach it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum LocalCluster {
    /// kind: nodes are containers labelled `io.x-k8s.kind.cluster=<name>`; images are imported with `ctr`.
    Kind(String),
    /// k3d: server and agent nodes are containers labelled `k3d.cluster=<name>`; images are imported with `ctr`.
    K3d(String),
    /// minikube: build with its daemon (`eval $(minikube docker-env)`); nothing to load.
    Minikube,
    /// Docker Desktop, Rancher Desktop, OrbStack: the cluster uses the local daemon's images.
    SharedDaemon(String),
}

impl LocalCluster {
    /// Whether images are imported into node containers (kind, k3d).
    pub fn loads(&self) -> bool {
        matches!(self, LocalCluster::Kind(_) | LocalCluster::K3d(_))
    }

    /// `kind cluster `dev``, for messages.
    fn describe(&self) -> String {
        match self {
            LocalCluster::Kind(n) => format!("kind cluster `{n}`"),
            LocalCluster::K3d(n) => format!("k3d cluster `{n}`"),
            LocalCluster::Minikube => "minikube".to_string(),
            LocalCluster::SharedDaemon(c) => format!("`{c}`"),
        }
    }
}

/// The local cluster a kube context names, if any.
pub fn detect(context: &str) -> Option<LocalCluster> {
    if let Some(name) = context.strip_prefix("kind-") {
        return Some(LocalCluster::Kind(name.to_string()));
    }
    if let Some(name) = context.strip_prefix("k3d-") {
        return Some(LocalCluster::K3d(name.to_string()));
    }
    match context {
        "minikube" => Some(LocalCluster::Minikube),
        "docker-desktop" | "docker-for-desktop" | "rancher-desktop" | "orbstack" | "colima" => {
            Some(LocalCluster::SharedDaemon(context.to_string()))
        }
        _ => None,
    }
}

/// The name a node's containerd gives an imported image, and the name the kubelet looks up: `docker save` writes
/// the familiar name (`app:1`) and `ctr images import` normalises it (`docker.io/library/app:1`). Deploying this
/// exact name leaves nothing to the kubelet's normalisation.
pub fn node_reference(reference: &str) -> String {
    match tag::parse(reference) {
        Ok(r) => tag::with_tag(
            &tag::normalize_repository(&r.repository),
            r.tag_or_default(),
        ),
        Err(_) => reference.to_string(),
    }
}

/// The running node containers of a kind cluster, or the server and agent nodes of a k3d cluster (k3d's
/// loadbalancer, registry and tools containers run no kubelet).
async fn nodes(docker: &Docker, cluster: &LocalCluster) -> Result<Vec<String>, BuildError> {
    let (label, roles): (String, Option<&[&str]>) = match cluster {
        LocalCluster::Kind(name) => (format!("io.x-k8s.kind.cluster={name}"), None),
        LocalCluster::K3d(name) => (format!("k3d.cluster={name}"), Some(&["server", "agent"])),
        _ => return Ok(Vec::new()),
    };
    let filters = HashMap::from([
        ("label".to_string(), vec![label.clone()]),
        ("status".to_string(), vec!["running".to_string()]),
    ]);
    let list = docker
        .list_containers(Some(ListContainersOptions {
            filters: Some(filters),
            ..Default::default()
        }))
        .await
        .map_err(|e| BuildError::Api {
            image: label.clone(),
            message: e.to_string(),
        })?;
    let mut names: Vec<String> = list
        .into_iter()
        .filter(|c| {
            roles.is_none_or(|roles| {
                let role = c.labels.as_ref().and_then(|l| l.get("k3d.role"));
                role.is_some_and(|r| roles.contains(&r.as_str()))
            })
        })
        .filter_map(|c| {
            c.names
                .and_then(|n| n.first().map(|n| n.trim_start_matches('/').to_string()))
        })
        .collect();
    names.sort();
    Ok(names)
}

/// Loads the local image `reference` into every node of `cluster` that lacks it (all nodes in parallel, from one
/// `docker save` stream); returns the nodes it was loaded into (empty when every node had it).
pub async fn load(
    docker: &Docker,
    cluster: &LocalCluster,
    image: &str,
    reference: &str,
    events: &EventSink,
) -> Result<Vec<String>, BuildError> {
    let nodes = nodes(docker, cluster).await?;
    if nodes.is_empty() {
        return Err(BuildError::NoNodes {
            cluster: cluster.describe(),
            hint: Some(format!(
                "start the cluster (`docker ps --filter label={}` lists its nodes), or point the kube context \
                 elsewhere; devloop loads images through the Docker daemon `DOCKER_HOST` names",
                match cluster {
                    LocalCluster::K3d(n) => format!("k3d.cluster={n}"),
                    LocalCluster::Kind(n) => format!("io.x-k8s.kind.cluster={n}"),
                    _ => String::new(),
                }
            )),
        });
    }
    let name = node_reference(reference);
    let present = futures_util::future::join_all(nodes.iter().map(|n| node_has(docker, n, &name)));
    let mut lacking = Vec::new();
    for (node, has) in nodes.iter().zip(present.await) {
        if !has? {
            lacking.push(node.clone());
        }
    }
    if lacking.is_empty() {
        return Ok(lacking);
    }
    events.emit(Event::LoadStarted {
        image: image.to_string(),
        reference: name.clone(),
        nodes: lacking.clone(),
    });
    let started = Instant::now();
    let commands = futures_util::future::join_all(lacking.iter().map(|node| async {
        let mut cmd = ["ctr", "--namespace=k8s.io", "images", "import"]
            .map(String::from)
            .to_vec();
        cmd.extend(["--all-platforms".to_string(), "--digests".to_string()]);
        // As `kind load`: unpack for the snapshotter the CRI uses, which is not always containerd's default.
        // k3s's `ctr` already defaults to its CRI's snapshotter (`k3d image import` passes none).
        if matches!(cluster, LocalCluster::Kind(_)) {
            let snapshotter = snapshotter(docker, image, &name, node).await?;
            cmd.push(format!("--snapshotter={snapshotter}"));
        }
        cmd.push("-".into());
        Ok::<_, BuildError>((node.clone(), cmd))
    }))
    .await
    .into_iter()
    .collect::<Result<Vec<_>, _>>()?;
    let bytes = import(docker, image, reference, &name, &commands).await?;
    events.emit(Event::ImageLoaded {
        image: image.to_string(),
        reference: name,
        nodes: lacking.clone(),
        bytes,
        duration_ms: started.elapsed().as_millis() as u64,
    });
    Ok(lacking)
}

/// Whether the node's containerd (namespace `k8s.io`, the kubelet's) has an image named `name`. A node that cannot
/// answer counts as lacking it: the import then says what is wrong.
async fn node_has(docker: &Docker, node: &str, name: &str) -> Result<bool, BuildError> {
    let cmd = ["ctr", "--namespace=k8s.io", "images", "ls", "-q"]
        .map(String::from)
        .to_vec();
    let (code, out) = exec(docker, node, cmd).await?;
    Ok(code == 0 && out.lines().any(|l| l.trim() == name))
}

/// The snapshotter the node's CRI plugin unpacks images for, from `containerd config dump` (as `kind load` does).
async fn snapshotter(
    docker: &Docker,
    image: &str,
    name: &str,
    node: &str,
) -> Result<String, BuildError> {
    let cmd = ["containerd", "config", "dump"].map(String::from).to_vec();
    let (code, out) = exec(docker, node, cmd).await?;
    match (code, cri_snapshotter(&out)) {
        (0, Some(s)) => Ok(s),
        _ => Err(BuildError::Load {
            image: image.to_string(),
            reference: name.to_string(),
            node: node.to_string(),
            message: format!(
                "cannot tell which snapshotter the node's containerd uses (`containerd config dump` exited {code}): {}",
                last_lines(&out)
            ),
            hint: Some(format!(
                "check the node with `docker exec {node} containerd config dump`"
            )),
        }),
    }
}

/// The CRI snapshotter in a `containerd config dump`: `plugins."io.containerd.grpc.v1.cri".containerd.snapshotter`
/// (config version 2) or `plugins."io.containerd.cri.v1.images".snapshotter` (versions 3 and later).
fn cri_snapshotter(dump: &str) -> Option<String> {
    const TABLES: [&str; 2] = [
        "plugins.io.containerd.grpc.v1.cri.containerd",
        "plugins.io.containerd.cri.v1.images",
    ];
    let unquote = |s: &str| s.trim().replace(['"', '\''], "");
    let mut table = String::new();
    for line in dump.lines().map(str::trim) {
        if let Some(header) = line.strip_prefix('[').and_then(|l| l.strip_suffix(']')) {
            table = unquote(header);
        } else if let Some((key, value)) = line.split_once('=')
            && key.trim() == "snapshotter"
            && TABLES.contains(&table.as_str())
        {
            let value = unquote(value);
            if !value.is_empty() {
                return Some(value);
            }
        }
    }
    None
}

type Input = Pin<Box<dyn AsyncWrite + Send>>;

/// Runs each `(node, ctr import command)` with one `docker save` stream of `reference` fanned out to their stdins;
/// fails naming the first node that refused it. Returns the archive's size.
async fn import(
    docker: &Docker,
    image: &str,
    reference: &str,
    name: &str,
    commands: &[(String, Vec<String>)],
) -> Result<u64, BuildError> {
    let api = |node: &str| {
        let node = node.to_string();
        move |e: bollard::errors::Error| BuildError::Api {
            image: node.clone(),
            message: e.to_string(),
        }
    };
    let mut started = Vec::new();
    let mut inputs: Vec<Option<Input>> = Vec::new();
    let mut outputs = Vec::new();
    for (node, cmd) in commands {
        let created = docker
            .create_exec(
                node,
                CreateExecOptions {
                    cmd: Some(cmd.clone()),
                    attach_stdin: Some(true),
                    attach_stdout: Some(true),
                    attach_stderr: Some(true),
                    ..Default::default()
                },
            )
            .await
            .map_err(api(node))?;
        match docker
            .start_exec(&created.id, None)
            .await
            .map_err(api(node))?
        {
            StartExecResults::Attached { output, input } => {
                inputs.push(Some(input));
                outputs.push(output);
            }
            StartExecResults::Detached => {
                return Err(BuildError::Api {
                    image: node.clone(),
                    message: "the exec started detached".into(),
                });
            }
        }
        started.push((node.clone(), created.id));
    }
    let feed = async {
        let mut archive = docker.export_image(reference);
        let mut bytes = 0u64;
        while let Some(chunk) = archive.next().await {
            let chunk = chunk.map_err(|e| BuildError::Api {
                image: image.to_string(),
                message: format!("`docker save {reference}`: {e}"),
            })?;
            bytes += chunk.len() as u64;
            let writes = inputs.iter_mut().map(|slot| {
                let chunk = &chunk;
                async move {
                    if let Some(input) = slot
                        && input.write_all(chunk).await.is_err()
                    {
                        // The node's ctr stopped reading: its exit code and output say why.
                        *slot = None;
                    }
                }
            });
            futures_util::future::join_all(writes).await;
        }
        for input in inputs.iter_mut().flatten() {
            let _ = input.shutdown().await;
        }
        Ok::<u64, BuildError>(bytes)
    };
    let drains = futures_util::future::join_all(outputs.into_iter().map(|mut output| async move {
        let mut text = String::new();
        while let Some(Ok(chunk)) = output.next().await {
            text.push_str(&chunk.to_string());
        }
        text
    }));
    let (bytes, texts) = tokio::join!(feed, drains);
    for ((node, id), text) in started.iter().zip(texts) {
        let code = exit_code(docker, node, id).await?;
        if code != 0 {
            return Err(BuildError::Load {
                image: image.to_string(),
                reference: name.to_string(),
                node: node.clone(),
                message: format!("`ctr images import` exited {code}: {}", last_lines(&text)),
                hint: Some(format!(
                    "see what the node has with `docker exec {node} ctr --namespace=k8s.io images ls`; \
                     a full disk or a damaged node is fixed by recreating the cluster, or push instead \
                     (`--push`, `--default-repo`)"
                )),
            });
        }
    }
    bytes
}

/// Runs `cmd` in `node`; its exit code and combined output.
async fn exec(docker: &Docker, node: &str, cmd: Vec<String>) -> Result<(i64, String), BuildError> {
    let err = |e: bollard::errors::Error| BuildError::Api {
        image: node.to_string(),
        message: e.to_string(),
    };
    let created = docker
        .create_exec(
            node,
            CreateExecOptions {
                cmd: Some(cmd),
                attach_stdout: Some(true),
                attach_stderr: Some(true),
                ..Default::default()
            },
        )
        .await
        .map_err(err)?;
    let mut text = String::new();
    if let StartExecResults::Attached { mut output, .. } =
        docker.start_exec(&created.id, None).await.map_err(err)?
    {
        while let Some(out) = output.next().await {
            text.push_str(&out.map_err(err)?.to_string());
        }
    }
    Ok((exit_code(docker, node, &created.id).await?, text))
}

/// The exit code of a finished exec. The output stream can end a moment before the daemon records the exit.
async fn exit_code(docker: &Docker, node: &str, id: &str) -> Result<i64, BuildError> {
    for _ in 0..100 {
        let inspected = docker.inspect_exec(id).await.map_err(|e| BuildError::Api {
            image: node.to_string(),
            message: e.to_string(),
        })?;
        if inspected.running != Some(true) {
            return Ok(inspected.exit_code.unwrap_or(-1));
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    Ok(-1)
}

/// The last lines of a command's output, on one line, for messages.
fn last_lines(text: &str) -> String {
    let lines: Vec<&str> = text
        .lines()
        .map(str::trim)
        .filter(|l| !l.is_empty())
        .collect();
    match lines.len() {
        0 => "no output".to_string(),
        n => lines[n.saturating_sub(5)..].join(" / "),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn recognises_local_clusters() {
        assert_eq!(detect("kind-dev"), Some(LocalCluster::Kind("dev".into())));
        assert_eq!(detect("k3d-shop"), Some(LocalCluster::K3d("shop".into())));
        assert_eq!(detect("minikube"), Some(LocalCluster::Minikube));
        assert_eq!(
            detect("docker-desktop"),
            Some(LocalCluster::SharedDaemon("docker-desktop".into()))
        );
        assert_eq!(detect("gke_project_zone_prod"), None);
        assert!(LocalCluster::Kind("dev".into()).loads() && !LocalCluster::Minikube.loads());
    }

    #[test]
    fn node_references_are_containerd_names() {
        assert_eq!(node_reference("app:1"), "docker.io/library/app:1");
        assert_eq!(
            node_reference("localhost:5000/app:1"),
            "localhost:5000/app:1"
        );
        assert_eq!(node_reference("team/app:v2"), "docker.io/team/app:v2");
        assert_eq!(
            node_reference("docker.io/library/app:1"),
            "docker.io/library/app:1"
        );
    }

    #[test]
    fn the_cri_snapshotter_is_read_from_config_versions_2_and_3() {
        let v2 = "version = 2\n[plugins]\n  [plugins.\"io.containerd.grpc.v1.cri\"]\n    sandbox_image = \"x\"\n  [plugins.\"io.containerd.grpc.v1.cri\".containerd]\n    default_runtime_name = \"runc\"\n    snapshotter = \"fuse-overlayfs\"\n  [plugins.\"io.containerd.snapshotter.v1.overlayfs\"]\n    snapshotter = \"wrong\"\n";
        assert_eq!(cri_snapshotter(v2).as_deref(), Some("fuse-overlayfs"));
        let v3 =
            "version = 3\n[plugins.'io.containerd.cri.v1.images']\n  snapshotter = 'overlayfs'\n";
        assert_eq!(cri_snapshotter(v3).as_deref(), Some("overlayfs"));
        assert_eq!(cri_snapshotter("version = 2\n"), None);
    }

    #[test]
    fn messages_quote_the_last_lines_of_output() {
        assert_eq!(last_lines(""), "no output");
        assert_eq!(last_lines("a\n\nb\nc\nd\ne\nf\n"), "b / c / d / e / f");
    }
}
