//! Deploy, Docker backend, the plan of one container: a container of `deploy.docker` → its image reference (a
//! built artifact's, else as written) and image ID, clean absolute bind sources, named volumes under their Docker
//! names, and the digest of its effective config (what decides whether a running container is replaced). Creates
//! nothing; pulls a missing image.

use std::path::{Component, Path, PathBuf};

use serde::Serialize;
use tokio_util::sync::CancellationToken;

use super::{DockerPlan, DockerTarget};
use crate::config::deploy::{Container, Volume};
use crate::deploy::DeployError;

/// One container of the plan, resolved against the daemon.
pub(super) struct Planned {
    /// `image` replaced by the reference to run; bind sources made absolute and clean.
    pub(super) container: Container,
    /// It runs an artifact devloop built (`DockerPlan::images`).
    pub(super) built: bool,
    pub(super) image_id: String,
    pub(super) digest: String,
}

/// The config a container's digest covers: everything `create` sends, plus the image ID (a rebuilt image under
/// the same tag must replace the container).
#[derive(Serialize)]
struct Effective<'a> {
    container: &'a Container,
    image_id: &'a str,
    network: &'a str,
    stop_grace_period_secs: u64,
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
        let digest = {
            use sha2::Digest as _;
            let effective = Effective {
                container: &container,
                image_id: &image_id,
                network: &self.network_name(),
                stop_grace_period_secs: plan.deploy.stop_grace_period_secs,
            };
            let bytes = serde_json::to_vec(&effective).unwrap_or_default();
            hex(&sha2::Sha256::digest(bytes))
        };
        Ok(Planned {
            container,
            built: built.is_some(),
            image_id,
            digest,
        })
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

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}
