//! Deploy, Docker backend, network sandboxes (`devloop dev`, containers of built artifacts): a planned container →
//! the sandbox container that owns its network namespace, as a Kubernetes pod's pause container does. The sandbox
//! sits on the project network under the container's name, publishes its ports and runs the pause program; the
//! container joins its namespace (`container:<sandbox>`). It outlives the container's replacements, so an edit
//! pays for a container start without network setup. Recreated only when its own config changes or it no longer
//! runs; always removed at once (its PID 1 ignores SIGTERM and holds no state). Only sandboxes with this
//! project's labels; emits no events (users see their containers).

use bollard::models::{ContainerCreateBody, ContainerStateStatusEnum, HostConfig};
use bollard::query_parameters::CreateContainerOptions;

use super::DockerTarget;
use super::daemon_error::api_error;
use super::labels::{CONFIG_LABEL, SANDBOX_LABEL};
use super::plan::PlannedSandbox;
use super::spec::{on_network, port_bindings, restart_policy};
use crate::config::deploy::Container;
use crate::deploy::DeployError;

/// Where a container's sandbox stands.
pub(super) enum SandboxState {
    /// It runs with the planned config.
    Current,
    /// It exists (this ID) with another config, or does not run.
    Stale(String),
    Missing,
}

impl DockerTarget {
    /// The Docker name of the sandbox of container `name`: `<project>.<name>.sandbox`. Every container of the
    /// plan is named `<project>-<name>`, so a sandbox's name (a `.` right after the project) can never be one.
    pub(super) fn sandbox_name(&self, name: &str) -> String {
        format!("{}.{name}.sandbox", self.project)
    }

    /// Where the sandbox `s` of container `object` stands; a container of its name devloop did not create is an
    /// error.
    pub(super) async fn sandbox_state(
        &self,
        object: &str,
        s: &PlannedSandbox,
    ) -> Result<SandboxState, DeployError> {
        let Some(current) = self.inspect(object, &s.name).await? else {
            return Ok(SandboxState::Missing);
        };
        let labels = current.config.as_ref().and_then(|c| c.labels.as_ref());
        if !self.owns(labels) || labels.and_then(|l| l.get(SANDBOX_LABEL)).is_none() {
            let name = &s.name;
            return Err(DeployError::Apply {
                object: object.to_string(),
                message: format!(
                    "a container named `{name}` (the name of its network sandbox) exists and devloop did not create it"
                ),
                hint: Some(format!(
                    "devloop never touches containers it did not create: remove or rename it (`docker rm -f {name}`)"
                )),
            });
        }
        let state = current.state.unwrap_or_default();
        let runs =
            state.status == Some(ContainerStateStatusEnum::RUNNING) && state.paused != Some(true);
        if runs && labels.and_then(|l| l.get(CONFIG_LABEL)) == Some(&s.digest) {
            return Ok(SandboxState::Current);
        }
        Ok(SandboxState::Stale(
            current.id.unwrap_or_else(|| s.name.clone()),
        ))
    }

    /// Replaces (or creates) the sandbox of `c` and starts it. Its container must be gone already: the old
    /// sandbox's network namespace goes with it.
    pub(super) async fn replace_sandbox(
        &self,
        object: &str,
        c: &Container,
        s: &PlannedSandbox,
        state: SandboxState,
    ) -> Result<(), DeployError> {
        if let SandboxState::Stale(id) = state {
            self.remove_at_once(object, &id).await?;
        }
        let created = self
            .docker
            .create_container(
                Some(CreateContainerOptions {
                    name: Some(s.name.clone()),
                    ..Default::default()
                }),
                self.sandbox_body(c, s),
            )
            .await
            .map_err(|e| api_error(object, "create its network sandbox", &e))?;
        self.start_created(object, &created.id, "start its network sandbox")
            .await?;
        tracing::debug!(%object, sandbox = %s.name, "network sandbox started");
        Ok(())
    }

    /// The create request of `c`'s sandbox: the pause program on the project network under `c`'s name, `c`'s
    /// ports published, stopped by SIGKILL (`docker stop` by hand does not wait for a grace period).
    fn sandbox_body(&self, c: &Container, s: &PlannedSandbox) -> ContainerCreateBody {
        let mut labels = self.labels();
        labels.insert(SANDBOX_LABEL.to_string(), c.name.clone());
        labels.insert(CONFIG_LABEL.to_string(), s.digest.clone());
        let (port_bindings, exposed_ports) = port_bindings(c);
        let network = self.network_name();
        ContainerCreateBody {
            image: Some(s.image.clone()),
            exposed_ports,
            labels: Some(labels),
            stop_signal: Some("SIGKILL".into()),
            host_config: Some(HostConfig {
                port_bindings,
                restart_policy: Some(restart_policy(s.restart)),
                network_mode: Some(network.clone()),
                ..Default::default()
            }),
            networking_config: Some(on_network(network, &c.name)),
            ..Default::default()
        }
    }
}
