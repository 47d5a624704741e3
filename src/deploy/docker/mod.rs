//! Deploy, Docker backend: a `deploy.docker` plan → containers on the local daemon (one labelled network per
//! project, containers replaced only when their image or config changed, dependency order, prune), readiness,
//! delete and log following. Only containers, networks and volumes that carry devloop's labels for this project
//! are ever stopped or removed; emits events, never prints.
//!
//! The folder's face: the target, the plan and the `Deployer` seam. Each concept is a file, lowest first:
//! `daemon_error.rs` (daemon answers → `DeployError`), `reference.rs` (what this backend reports), `labels.rs`
//! (ownership), `order.rs` (dependency levels), `assessment.rs` (a container's state against what is wanted),
//! `image.rs`, `network.rs`, `volume.rs`, `plan.rs`, `spec.rs` (the create request), `container.rs`
//! (create/start/replace, stop, remove), `readiness.rs`, `deployment.rs`, `cleanup.rs`, `logs.rs`, `sync.rs`,
//! `exec.rs` (commands in running containers, for container hooks), `replacement.rs` (`dev`: containers of
//! artifacts being rebuilt killed while their images build, started again when no build replaces them),
//! `pause.rs` (the pause image, imported from a tiny program devloop carries) and `sandbox.rs` (`dev`: the network
//! sandbox each container of a built artifact runs in, kept across its replacements).

mod assessment;
mod cleanup;
mod container;
mod daemon_error;
mod deployment;
mod exec;
mod image;
mod labels;
mod logs;
mod network;
mod order;
mod pause;
mod plan;
mod readiness;
mod reference;
mod replacement;
mod sandbox;
mod spec;
mod sync;
mod volume;

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests;

use std::collections::BTreeMap;

use bollard::Docker;
use bollard::errors::Error as DockerError;
use tokio_util::sync::CancellationToken;

use crate::config::deploy::DockerDeploy;
use crate::deploy::{
    DeleteOptions, DeployError, DeployedSet, Deployer, ObjectRef, Stopped, SyncRequest,
};
use crate::event::EventSink;

pub use exec::ExecOutput;
pub use labels::{ARTIFACT_LABEL, CONFIG_LABEL, CONTAINER_LABEL, MANAGED_BY, PROJECT_LABEL};
pub use reference::API_VERSION;

/// A Docker daemon, for one project.
pub struct DockerTarget {
    docker: Docker,
    project: String,
    purge_volumes: bool,
    /// Replaced containers of built artifacts are removed at once instead of stopped gracefully, and run in network
    /// sandboxes (`dev`).
    disposable: bool,
    /// The pause image of the network sandboxes, once asked (`None`: no program for the daemon's architecture).
    pause: tokio::sync::OnceCell<Option<String>>,
}

/// What to run: the validated `deploy.docker` and the built images.
#[derive(Debug, Clone)]
pub struct DockerPlan {
    pub deploy: DockerDeploy,
    /// A container's `image` as written → the reference to run (built artifacts); other images run as written.
    pub images: BTreeMap<String, String>,
}

impl DockerTarget {
    /// Connects to the daemon (`DOCKER_HOST` or the local socket) and negotiates the API version, so an
    /// unreachable daemon is reported before anything else happens.
    pub async fn connect(project: &str) -> Result<DockerTarget, DeployError> {
        let unreachable = |e: DockerError| DeployError::Config {
            message: format!(
                "cannot reach the Docker daemon at `{}`: {e}",
                crate::daemon::host()
            ),
            hint: Some(crate::daemon::UNREACHABLE_HINT.into()),
        };
        let docker = crate::daemon::connect().await.map_err(unreachable)?;
        docker.ping().await.map_err(unreachable)?;
        let valid = project.starts_with(|c: char| c.is_ascii_alphanumeric())
            && project
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.'));
        if !valid {
            return Err(DeployError::Config {
                message: format!("project name `{project}` cannot name Docker containers"),
                hint: Some("use letters, digits, `-`, `_` and `.` in `metadata.name`".into()),
            });
        }
        Ok(DockerTarget {
            docker,
            project: project.to_string(),
            purge_volumes: false,
            disposable: false,
            pause: tokio::sync::OnceCell::new(),
        })
    }

    /// With `purge`, `delete_all` also removes the named volumes devloop created for this project (kept otherwise).
    pub fn with_purge_volumes(mut self, purge: bool) -> DockerTarget {
        self.purge_volumes = purge;
        self
    }

    /// With `disposable` (`devloop dev`), a deploy that replaces a container running a built artifact removes the
    /// old one at once (SIGKILL, like `docker rm -f`) instead of stopping it within the grace period: its
    /// replacement is built already, and a main process that ignores SIGTERM would otherwise cost the whole grace
    /// period on every edit. `delete_all` (dev's cleanup on exit) removes such containers at once too: the session
    /// that built them is over. Containers of other images (a database) and pruned ones keep the graceful stop.
    /// It also enables [`Deployer::prepare_replace`]: such containers are killed while their new images build.
    /// And each such container runs in a network sandbox that outlives it (a container of devloop's pause image
    /// that holds its network namespace, its ports and its name on the network, like a pod's pause container), so
    /// a replacement starts without network setup.
    pub fn with_disposable_replacements(mut self, disposable: bool) -> DockerTarget {
        self.disposable = disposable;
        self
    }

    /// The daemon connection.
    pub fn docker(&self) -> &Docker {
        &self.docker
    }

    /// The project's network: `devloop-<project>`.
    pub fn network_name(&self) -> String {
        format!("devloop-{}", self.project)
    }

    /// The Docker name of container `name` of the plan: `<project>-<name>`.
    pub fn container_name(&self, name: &str) -> String {
        format!("{}-{name}", self.project)
    }

    /// The Docker name of named volume `name`: `<project>-<name>`, so projects do not share volumes by accident.
    pub fn volume_name(&self, name: &str) -> String {
        format!("{}-{name}", self.project)
    }
}

impl Deployer for DockerTarget {
    type Plan = DockerPlan;

    fn can_sync(&self) -> bool {
        true
    }

    async fn sync(&self, plan: &DockerPlan, req: &SyncRequest<'_>) -> Result<usize, DeployError> {
        self.copy_files(plan, req).await
    }

    async fn prepare_replace(&self, image_ids: &[String]) -> Result<Vec<Stopped>, DeployError> {
        self.stop_ahead(image_ids).await
    }

    async fn restore(&self, stopped: &[Stopped]) -> Result<Vec<String>, DeployError> {
        self.start_again(stopped).await
    }

    async fn deploy(
        &self,
        plan: &DockerPlan,
        events: &EventSink,
        cancel: &CancellationToken,
    ) -> Result<DeployedSet, DeployError> {
        self.roll_out(plan, events, cancel).await
    }

    async fn delete_all(
        &self,
        opts: DeleteOptions,
        events: &EventSink,
    ) -> Result<Vec<ObjectRef>, DeployError> {
        self.remove_project(opts, events).await
    }
}
