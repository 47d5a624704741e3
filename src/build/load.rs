//! Build, loading: built images → the nodes of a local cluster (kind, k3d), only where missing, so nothing is
//! pushed for local development. Knows which kube contexts name local clusters; never touches other clusters.

use std::collections::HashMap;

use bollard::Docker;
use bollard::exec::{CreateExecOptions, StartExecOptions, StartExecResults};
use bollard::query_parameters::ListContainersOptions;
use futures_util::StreamExt;
use tokio::io::AsyncWriteExt;

use super::BuildError;
use crate::event::{Event, EventSink};

/// A local cluster recognised from its kube context name, and how images reach it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum LocalCluster {
    /// kind: nodes are containers labelled `io.x-k8s.kind.cluster=<name>`; images are imported with `ctr`.
    Kind(String),
    /// k3d: nodes are containers labelled `k3d.cluster=<name>`; images are imported with `ctr`.
    K3d(String),
    /// minikube: build with its daemon (`eval $(minikube docker-env)`); nothing to load.
    Minikube,
    /// Docker Desktop, Rancher Desktop, OrbStack: the cluster uses the local daemon's images.
    SharedDaemon(String),
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

/// The node containers of a kind or k3d cluster.
async fn nodes(docker: &Docker, cluster: &LocalCluster) -> Result<Vec<String>, BuildError> {
    let (label, skip_role) = match cluster {
        LocalCluster::Kind(name) => (format!("io.x-k8s.kind.cluster={name}"), None),
        LocalCluster::K3d(name) => (format!("k3d.cluster={name}"), Some("k3d.role=loadbalancer")),
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
    Ok(list
        .into_iter()
        .filter(|c| {
            let labels = c.labels.clone().unwrap_or_default();
            skip_role.is_none_or(|r| {
                let (k, v) = r.split_once('=').unwrap_or((r, ""));
                labels.get(k).map(String::as_str) != Some(v)
            })
        })
        .filter_map(|c| {
            c.names
                .and_then(|n| n.first().map(|n| n.trim_start_matches('/').to_string()))
        })
        .collect())
}

/// Loads `references` into every node of `cluster` that does not have them yet; returns, per reference, the
/// nodes it was loaded into.
pub async fn load(
    docker: &Docker,
    cluster: &LocalCluster,
    references: &[(String, String)],
    events: &EventSink,
) -> Result<(), BuildError> {
    let nodes = nodes(docker, cluster).await?;
    if nodes.is_empty() {
        let name = match cluster {
            LocalCluster::Kind(n) | LocalCluster::K3d(n) => n.clone(),
            _ => return Ok(()),
        };
        return Err(BuildError::Api {
            image: name.clone(),
            message: format!(
                "no running node containers of local cluster `{name}` in this Docker daemon"
            ),
        });
    }
    let jobs: Vec<_> = references
        .iter()
        .map(|(image, reference)| {
            let nodes = nodes.clone();
            async move {
                let mut loaded = Vec::new();
                for node in &nodes {
                    if !node_has(docker, node, reference).await? {
                        import(docker, node, image, reference).await?;
                        loaded.push(node.clone());
                    }
                }
                if !loaded.is_empty() {
                    events.emit(Event::ImageLoaded {
                        image: image.clone(),
                        reference: reference.clone(),
                        nodes: loaded,
                    });
                }
                Ok::<(), BuildError>(())
            }
        })
        .collect();
    for r in futures_util::future::join_all(jobs).await {
        r?;
    }
    Ok(())
}

/// containerd's name for a reference: `app:1` → `docker.io/library/app:1`.
fn containerd_name(reference: &str) -> String {
    let (repo, rest) = match reference
        .rfind(':')
        .filter(|&i| !reference[i..].contains('/'))
    {
        Some(i) => (&reference[..i], &reference[i..]),
        None => (reference, ""),
    };
    format!("{}{rest}", crate::tag::normalize_repository(repo))
}

async fn exec(
    docker: &Docker,
    node: &str,
    cmd: Vec<String>,
    stdin: Option<(&str, &Docker)>,
) -> Result<(i64, String), BuildError> {
    let err = |e: bollard::errors::Error| BuildError::Api {
        image: node.to_string(),
        message: e.to_string(),
    };
    let created = docker
        .create_exec(
            node,
            CreateExecOptions {
                cmd: Some(cmd),
                attach_stdin: Some(stdin.is_some()),
                attach_stdout: Some(true),
                attach_stderr: Some(true),
                ..Default::default()
            },
        )
        .await
        .map_err(err)?;
    let mut text = String::new();
    if let StartExecResults::Attached {
        mut output,
        mut input,
    } = docker
        .start_exec(
            &created.id,
            Some(StartExecOptions {
                detach: false,
                ..Default::default()
            }),
        )
        .await
        .map_err(err)?
    {
        if let Some((reference, docker)) = stdin {
            let mut tar = docker.export_image(reference);
            while let Some(chunk) = tar.next().await {
                let chunk = chunk.map_err(err)?;
                input.write_all(&chunk).await.map_err(|e| BuildError::Api {
                    image: node.to_string(),
                    message: e.to_string(),
                })?;
            }
            input.shutdown().await.map_err(|e| BuildError::Api {
                image: node.to_string(),
                message: e.to_string(),
            })?;
        }
        while let Some(out) = output.next().await {
            text.push_str(&out.map_err(err)?.to_string());
        }
    }
    let code = docker
        .inspect_exec(&created.id)
        .await
        .map_err(err)?
        .exit_code
        .unwrap_or(-1);
    Ok((code, text))
}

async fn node_has(docker: &Docker, node: &str, reference: &str) -> Result<bool, BuildError> {
    let name = containerd_name(reference);
    let cmd = ["ctr", "--namespace=k8s.io", "images", "ls", "-q"]
        .iter()
        .map(|s| s.to_string())
        .chain([format!("name=={name}")])
        .collect();
    let (code, out) = exec(docker, node, cmd, None).await?;
    Ok(code == 0 && out.lines().any(|l| l.trim() == name))
}

async fn import(
    docker: &Docker,
    node: &str,
    image: &str,
    reference: &str,
) -> Result<(), BuildError> {
    let cmd = [
        "ctr",
        "--namespace=k8s.io",
        "images",
        "import",
        "--digests",
        "--snapshotter=overlayfs",
        "-",
    ]
    .iter()
    .map(|s| s.to_string())
    .collect();
    let (code, out) = exec(docker, node, cmd, Some((reference, docker))).await?;
    if code != 0 {
        return Err(BuildError::Push {
            image: image.to_string(),
            reference: reference.to_string(),
            message: format!(
                "loading into node `{node}` failed (exit {code}): {}",
                out.trim()
            ),
            hint: Some(
                "check the node with `docker exec <node> ctr --namespace=k8s.io images ls`".into(),
            ),
        });
    }
    Ok(())
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
    }

    #[test]
    fn containerd_names_are_fully_qualified() {
        assert_eq!(containerd_name("app:1"), "docker.io/library/app:1");
        assert_eq!(
            containerd_name("localhost:5000/app:1"),
            "localhost:5000/app:1"
        );
        assert_eq!(containerd_name("team/app:v2"), "docker.io/team/app:v2");
    }
}
