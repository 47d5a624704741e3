//! Deploy, Docker backend, the plan of one container: a container of `deploy.docker` → its image reference (a
//! built artifact's, else as written) and image ID, clean absolute bind sources, named volumes under their Docker
//! names, the digest of its effective config (what decides whether a running container is replaced), and in `dev`
//! the network sandbox a container of a built artifact runs in. Creates nothing but the pause image; pulls a
//! missing image.

use std::path::{Component, Path, PathBuf};

use serde::Serialize;
use tokio_util::sync::CancellationToken;

use super::{DockerPlan, DockerTarget};
use crate::config::deploy::{Container, PortMapping, Restart, Volume};
use crate::deploy::DeployError;

/// One container of the plan, resolved against the daemon.
pub(super) struct Planned {
    /// `image` replaced by the reference to run; bind sources made absolute and clean.
    pub(super) container: Container,
    /// It runs an artifact devloop built (`DockerPlan::images`).
    pub(super) built: bool,
    pub(super) image_id: String,
    pub(super) digest: String,
    /// The network sandbox it runs in (`dev`, built artifacts, a daemon devloop has a pause program for).
    pub(super) sandbox: Option<PlannedSandbox>,
}

/// The config a container's digest covers: everything `create` sends, plus the image ID (a rebuilt image under
/// the same tag must replace the container).
#[derive(Serialize)]
struct Effective<'a> {
    container: &'a Container,
    image_id: &'a str,
    network: &'a str,
    stop_grace_period_secs: u64,
    /// The sandbox's name when it runs in one: a container `run` left is replaced by `dev`'s, and the other way.
    sandbox: Option<&'a str>,
}

/// The sandbox a planned container runs in.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) struct PlannedSandbox {
    /// Its Docker name, `<project>.<container>.sandbox` (see [`DockerTarget::sandbox_name`]).
    pub(super) name: String,
    /// The pause image.
    pub(super) image: String,
    /// What restarts it: the container's policy when that restarts it after a daemon restart, else none.
    pub(super) restart: Restart,
    /// The digest of everything above plus the ports and the network: a change recreates it (and its container).
    pub(super) digest: String,
}

/// What a sandbox's digest covers.
#[derive(Serialize)]
struct SandboxEffective<'a> {
    image: &'a str,
    alias: &'a str,
    network: &'a str,
    ports: &'a [PortMapping],
    restart: Restart,
}

impl DockerTarget {
    /// Resolves a container of the plan: its image reference and ID, clean bind sources, its config digest.
    pub(super) async fn plan_container(
        &self,
        c: &Container,
        plan: &DockerPlan,
        cancel: &CancellationToken,
    ) -> Result<Planned, DeployError> {
        let object = format!("container/{}", c.name);
        let mut container = c.clone();
        let built = plan.images.get(&c.image);
        if let Some(reference) = built {
            container.image = reference.clone();
        }
        for v in &mut container.volumes {
            match v {
                Volume::Bind { source, .. } => {
                    *source = clean(source);
                    if !source.exists() {
                        return Err(DeployError::Apply {
                            object,
                            message: format!(
                                "bind mount source `{}` does not exist",
                                source.display()
                            ),
                            hint: Some(
                                "create it, or fix `volumes` in deploy.docker (paths are relative to the config file's directory)"
                                    .into(),
                            ),
                        });
                    }
                }
                Volume::Named { name, .. } => *name = self.volume_name(name),
            }
        }
        let image_id = self.image_id(&object, &container.image, cancel).await?;
        let sandbox = if self.disposable && built.is_some() {
            self.pause_image()
                .await?
                .map(|image| self.plan_sandbox(&container, image))
        } else {
            None
        };
        let digest = {
            use sha2::Digest as _;
            let effective = Effective {
                container: &container,
                image_id: &image_id,
                network: &self.network_name(),
                stop_grace_period_secs: plan.deploy.stop_grace_period_secs,
                sandbox: sandbox.as_ref().map(|s| s.name.as_str()),
            };
            let bytes = serde_json::to_vec(&effective).unwrap_or_default();
            hex(&sha2::Sha256::digest(bytes))
        };
        Ok(Planned {
            container,
            built: built.is_some(),
            image_id,
            digest,
            sandbox,
        })
    }
}

impl DockerTarget {
    /// The sandbox of `c` (resolved: ports as published), running `image`.
    pub(super) fn plan_sandbox(&self, c: &Container, image: String) -> PlannedSandbox {
        let restart = match c.restart {
            Restart::Always | Restart::UnlessStopped => Restart::UnlessStopped,
            Restart::No | Restart::OnFailure => Restart::No,
        };
        let network = self.network_name();
        let effective = SandboxEffective {
            image: &image,
            alias: &c.name,
            network: &network,
            ports: &c.ports,
            restart,
        };
        let digest = {
            use sha2::Digest as _;
            let bytes = serde_json::to_vec(&effective).unwrap_or_default();
            hex(&sha2::Sha256::digest(bytes))
        };
        PlannedSandbox {
            name: self.sandbox_name(&c.name),
            image,
            restart,
            digest,
        }
    }
}

/// A path without `.` and `..` components (Docker wants bind sources absolute and clean).
pub(super) fn clean(path: &Path) -> PathBuf {
    let mut out = PathBuf::new();
    for c in path.components() {
        match c {
            Component::CurDir => {}
            Component::ParentDir => {
                out.pop();
            }
            other => out.push(other),
        }
    }
    out
}

pub(super) fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}
