//! Deploy, Docker backend, containers: a planned container → a running container (left alone when its config
//! digest matches, it runs or completed and its network sandbox is current; otherwise the old one is stopped or
//! removed, its sandbox replaced when stale, and a new one created and started), and the graceful stop and removal
//! of one container. Never touches a container without this project's labels; warns when a stop had to be forced.

use std::time::{Duration, Instant};

use bollard::errors::Error as DockerError;
use bollard::models::{ContainerInspectResponse, ContainerStateStatusEnum};
use bollard::query_parameters::{
    CreateContainerOptions, RemoveContainerOptions, StopContainerOptions,
};

use super::DockerTarget;
use super::daemon_error::{api_error, is_not_found};
use super::labels::CONFIG_LABEL;
use super::plan::Planned;
use super::reference::applied;
use super::sandbox::SandboxState;
use crate::config::deploy::Restart;
use crate::deploy::{AppliedObject, Change, DeployError};
use crate::event::{Event, EventSink};

impl DockerTarget {
    /// Inspects a container by name or ID; `None` when it does not exist.
    pub(super) async fn inspect(
        &self,
        object: &str,
        name: &str,
    ) -> Result<Option<ContainerInspectResponse>, DeployError> {
        match self.docker.inspect_container(name, None).await {
            Ok(c) => Ok(Some(c)),
            Err(e) if is_not_found(&e) => Ok(None),
            Err(e) => Err(api_error(object, "inspect", &e)),
        }
    }

    /// Stops a container gracefully (SIGTERM, then SIGKILL after `grace` seconds, or after the container's own
    /// stop timeout when `None`), warns when the kill was needed, and removes it.
    pub(super) async fn stop_and_remove(
        &self,
        object: &str,
        id: &str,
        grace: Option<u64>,
        events: &EventSink,
    ) -> Result<(), DeployError> {
        let Some(current) = self.inspect(object, id).await? else {
            return Ok(());
        };
        let state = current.state.unwrap_or_default();
        if state.running == Some(true) {
            let grace = grace.or_else(|| {
                current
                    .config
                    .as_ref()
                    .and_then(|c| c.stop_timeout)
                    .and_then(|t| u64::try_from(t).ok())
            });
            let started = Instant::now();
            let stopped = self
                .docker
                .stop_container(
                    id,
                    Some(StopContainerOptions {
                        t: grace.map(|g| i32::try_from(g).unwrap_or(i32::MAX)),
                        signal: None,
                    }),
                )
                .await;
            match stopped {
                Ok(()) => {}
                // Already stopped, or already gone.
                Err(DockerError::DockerResponseServerError {
                    status_code: 304 | 404,
                    ..
                }) => {}
                Err(e) => return Err(api_error(object, "stop", &e)),
            }
            let took = started.elapsed();
            let exit = self
                .inspect(object, id)
                .await?
                .and_then(|c| c.state)
                .and_then(|s| s.exit_code);
            let forced =
                exit == Some(137) || grace.is_some_and(|g| g > 0 && took >= Duration::from_secs(g));
            if forced {
                let within = grace.map(|g| format!(" within {g} s")).unwrap_or_default();
                events.emit(Event::Warning {
                    message: format!(
                        "{object}: did not stop{within} of SIGTERM and was killed (its main process ignores SIGTERM: make it exit on SIGTERM, or lower `deploy.docker.stopGracePeriod`)"
                    ),
                });
            }
        }
        self.remove_at_once(object, id).await
    }

    /// Starts container `id`, just created for `object`. One that cannot start (a taken port, a missing
    /// entrypoint) is removed, so the next deploy creates it afresh instead of finding a stopped container with the
    /// current digest; `what` names the step in the error.
    pub(super) async fn start_created(
        &self,
        object: &str,
        id: &str,
        what: &str,
    ) -> Result<(), DeployError> {
        let Err(e) = self.docker.start_container(id, None).await else {
            return Ok(());
        };
        // The start's error is the one to report; a removal that fails too leaves a stopped container the next
        // deploy replaces by its digest.
        let _ = self.remove_at_once(object, id).await;
        Err(api_error(object, what, &e))
    }

    /// Removes a container, killing it first when it runs (`docker rm -f`: SIGKILL, no grace period).
    pub(super) async fn remove_at_once(&self, object: &str, id: &str) -> Result<(), DeployError> {
        match self
            .docker
            .remove_container(
                id,
                Some(RemoveContainerOptions {
                    force: true,
                    ..Default::default()
                }),
            )
            .await
        {
            Ok(()) => Ok(()),
            Err(e) if is_not_found(&e) => Ok(()),
            // Removal already in progress (a concurrent delete).
            Err(DockerError::DockerResponseServerError {
                status_code: 409, ..
            }) => Ok(()),
            Err(e) => Err(api_error(object, "remove", &e)),
        }
    }

    /// Makes one container match the plan: left alone when its config digest matches and it runs (or completed),
    /// replaced otherwise.
    pub(super) async fn reconcile(
        &self,
        p: &Planned,
        grace: u64,
        events: &EventSink,
    ) -> Result<AppliedObject, DeployError> {
        let c = &p.container;
        let object = format!("container/{}", c.name);
        let name = self.container_name(&c.name);
        let sandbox_state = async {
            match &p.sandbox {
                Some(s) => self.sandbox_state(&object, s).await.map(Some),
                None => Ok(None),
            }
        };
        let (current, sandbox) =
            futures_util::future::try_join(self.inspect(&object, &name), sandbox_state).await?;
        // A container whose sandbox is replaced goes too: its network namespace is the sandbox's.
        let sandbox_current = !matches!(
            sandbox,
            Some(SandboxState::Stale(_) | SandboxState::Missing)
        );
        let change = match current {
            None => Change::Created,
            Some(current) => {
                let labels = current.config.as_ref().and_then(|c| c.labels.as_ref());
                if !self.owns(labels) {
                    return Err(DeployError::Apply {
                        object,
                        message: format!(
                            "a container named `{name}` exists and devloop did not create it"
                        ),
                        hint: Some(format!(
                            "devloop never touches containers it did not create: remove or rename it (`docker rm -f {name}`), or rename the container in deploy.docker"
                        )),
                    });
                }
                let same = labels.and_then(|l| l.get(CONFIG_LABEL)) == Some(&p.digest);
                let state = current.state.clone().unwrap_or_default();
                let running = state.running == Some(true)
                    && state.restarting != Some(true)
                    && state.paused != Some(true);
                let completed = matches!(c.restart, Restart::No | Restart::OnFailure)
                    && state.status == Some(ContainerStateStatusEnum::EXITED)
                    && state.exit_code == Some(0);
                if same && (running || completed) && sandbox_current {
                    events.emit(Event::Applied {
                        object: object.clone(),
                        namespace: None,
                        change: "unchanged".into(),
                    });
                    return Ok(applied(&c.name, Change::Unchanged, &current));
                }
                let id = current.id.clone().unwrap_or(name.clone());
                if self.disposable && p.built {
                    self.remove_at_once(&object, &id).await?;
                } else {
                    self.stop_and_remove(&object, &id, Some(grace), events)
                        .await?;
                }
                Change::Recreated
            }
        };
        if let (Some(s), Some(state)) = (&p.sandbox, sandbox)
            && !sandbox_current
        {
            self.replace_sandbox(&object, c, s, state).await?;
        }
        let created = self
            .docker
            .create_container(
                Some(CreateContainerOptions {
                    name: Some(name.clone()),
                    ..Default::default()
                }),
                self.create_body(p, grace),
            )
            .await
            .map_err(|e| api_error(&object, "create", &e))?;
        self.start_created(&object, &created.id, "start").await?;
        let current = self
            .inspect(&object, &created.id)
            .await?
            .unwrap_or_default();
        tracing::debug!(%object, image_id = %p.image_id, "container started");
        events.emit(Event::Applied {
            object: object.clone(),
            namespace: None,
            change: match change {
                Change::Created => "created",
                _ => "recreated",
            }
            .into(),
        });
        Ok(applied(&c.name, change, &current))
    }
}
