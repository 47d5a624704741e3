//! Deploy, Docker backend, labels: a project → the labels devloop puts on every container, network and volume it
//! creates, the filters that find them, and the check that something is this project's. Nothing without these
//! labels is ever listed as the project's, so nothing else can be stopped or removed. The label keys are the `labels` leaf's.

use std::collections::HashMap;

use bollard::models::ContainerSummary;
use bollard::query_parameters::ListContainersOptions;

use super::DockerTarget;
use super::daemon_error::api_error;
use crate::deploy::DeployError;
pub use crate::labels::{
    DOCKER_ARTIFACT as ARTIFACT_LABEL, DOCKER_CONFIG as CONFIG_LABEL,
    DOCKER_CONTAINER as CONTAINER_LABEL, DOCKER_MANAGED_BY as MANAGED_BY,
    DOCKER_PROJECT as PROJECT_LABEL, DOCKER_SANDBOX as SANDBOX_LABEL,
};

impl DockerTarget {
    pub(super) fn labels(&self) -> HashMap<String, String> {
        HashMap::from([
            (MANAGED_BY.0.to_string(), MANAGED_BY.1.to_string()),
            (PROJECT_LABEL.to_string(), self.project.clone()),
        ])
    }

    pub(super) fn owns(&self, labels: Option<&HashMap<String, String>>) -> bool {
        labels.is_some_and(|l| {
            l.get(MANAGED_BY.0).map(String::as_str) == Some(MANAGED_BY.1)
                && l.get(PROJECT_LABEL) == Some(&self.project)
        })
    }

    pub(super) fn label_filters(&self) -> HashMap<String, Vec<String>> {
        HashMap::from([(
            "label".to_string(),
            vec![
                format!("{}={}", MANAGED_BY.0, MANAGED_BY.1),
                format!("{PROJECT_LABEL}={}", self.project),
            ],
        )])
    }

    /// Every container of this project, running or not, network sandboxes left out.
    pub(super) async fn project_containers(&self) -> Result<Vec<ContainerSummary>, DeployError> {
        Ok(self.list_project().await?.0)
    }

    /// Every container of this project, running or not: those of the plan, and the network sandboxes.
    pub(super) async fn list_project(
        &self,
    ) -> Result<(Vec<ContainerSummary>, Vec<ContainerSummary>), DeployError> {
        let list = self
            .docker
            .list_containers(Some(ListContainersOptions {
                all: true,
                filters: Some(self.label_filters()),
                ..Default::default()
            }))
            .await
            .map_err(|e| api_error("containers", "list", &e))?;
        // The daemon filtered by label; check again so that nothing else can ever be removed.
        Ok(list
            .into_iter()
            .filter(|c| self.owns(c.labels.as_ref()))
            .partition(|c| !is_sandbox(c.labels.as_ref())))
    }
}

/// Whether a container of this project is a network sandbox (it carries `SANDBOX_LABEL`).
pub(super) fn is_sandbox(labels: Option<&HashMap<String, String>>) -> bool {
    labels.is_some_and(|l| l.contains_key(SANDBOX_LABEL))
}

/// The name in the plan of the container a network sandbox serves (its `SANDBOX_LABEL`; empty when it has none).
pub(super) fn sandbox_of(labels: Option<&HashMap<String, String>>) -> String {
    labels
        .and_then(|l| l.get(SANDBOX_LABEL))
        .cloned()
        .unwrap_or_default()
}

/// The plan's name of a container of this project (its `CONTAINER_LABEL`; empty when it has none).
pub(super) fn plan_name(labels: Option<&HashMap<String, String>>) -> String {
    labels
        .and_then(|l| l.get(CONTAINER_LABEL))
        .cloned()
        .unwrap_or_default()
}
