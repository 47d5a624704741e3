//! Deploy, Docker backend, replacement ahead of a rebuild (`devloop dev` only): the image IDs of artifacts being
//! rebuilt → their running containers killed at once (SIGKILL, like `docker rm -f`, and kept: not removed) while the
//! new images build, and those containers started again when no build replaces them. Only running containers of
//! this project that carry the artifact label (a built image); never a container of another image (a database).

use std::collections::HashSet;

use bollard::errors::Error as DockerError;
use bollard::models::ContainerSummaryStateEnum;
use bollard::query_parameters::KillContainerOptions;

use super::DockerTarget;
use super::daemon_error::{api_error, is_not_found};
use super::labels::{ARTIFACT_LABEL, plan_name};
use crate::deploy::{DeployError, Stopped};

impl DockerTarget {
    /// Kills the running artifact containers of `image_ids`; returns those it killed. Nothing unless disposable.
    pub(super) async fn stop_ahead(
        &self,
        image_ids: &[String],
    ) -> Result<Vec<Stopped>, DeployError> {
        if !self.disposable || image_ids.is_empty() {
            return Ok(Vec::new());
        }
        let wanted: HashSet<&str> = image_ids.iter().map(|i| bare_id(i)).collect();
        let running: Vec<(String, String)> = self
            .project_containers()
            .await?
            .into_iter()
            .filter(|c| {
                c.labels
                    .as_ref()
                    .is_some_and(|l| l.contains_key(ARTIFACT_LABEL))
                    && c.state == Some(ContainerSummaryStateEnum::RUNNING)
                    && c.image_id
                        .as_deref()
                        .is_some_and(|i| wanted.contains(bare_id(i)))
            })
            .filter_map(|c| Some((c.id.clone()?, plan_name(c.labels.as_ref()))))
            .collect();
        let kills = running.into_iter().map(|(id, name)| async move {
            let object = format!("container/{name}");
            match self
                .docker
                .kill_container(&id, Some(KillContainerOptions::default()))
                .await
            {
                Ok(()) => Ok(Some(Stopped { id, object })),
                // Gone, or stopped already (by a concurrent deploy): nothing to start again.
                Err(e) if is_not_found(&e) || is_not_running(&e) => Ok(None),
                Err(e) => Err(api_error(&object, "kill", &e)),
            }
        });
        let results = futures_util::future::join_all(kills).await;
        Ok(
            crate::deploy::all_or_errors(results, "containers could not be stopped")?
                .into_iter()
                .flatten()
                .collect(),
        )
    }

    /// Starts `stopped` again; returns the objects started. One removed meanwhile (a deploy replaced it) is skipped.
    pub(super) async fn start_again(
        &self,
        stopped: &[Stopped],
    ) -> Result<Vec<String>, DeployError> {
        let starts = stopped.iter().map(|s| async move {
            match self.docker.start_container(&s.id, None).await {
                // 304: it runs already.
                Ok(())
                | Err(DockerError::DockerResponseServerError {
                    status_code: 304, ..
                }) => Ok(Some(s.object.clone())),
                Err(e) if is_not_found(&e) => Ok(None),
                Err(e) => Err(api_error(&s.object, "start", &e)),
            }
        });
        let results = futures_util::future::join_all(starts).await;
        Ok(
            crate::deploy::all_or_errors(results, "containers could not be started again")?
                .into_iter()
                .flatten()
                .collect(),
        )
    }
}

/// An image ID without its `sha256:` prefix.
fn bare_id(id: &str) -> &str {
    id.strip_prefix("sha256:").unwrap_or(id)
}

/// The daemon's answer to killing a container that does not run (409).
fn is_not_running(e: &DockerError) -> bool {
    matches!(
        e,
        DockerError::DockerResponseServerError {
            status_code: 409,
            ..
        }
    )
}
