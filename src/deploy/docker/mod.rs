//! Deploy, Docker backend: a `deploy.docker` plan → containers on the local daemon (one labelled network per
//! project, containers replaced only when their image or config changed, dependency order, prune), readiness,
//! delete and log following. Only containers, networks and volumes that carry devloop's labels for this project
//! are ever stopped or removed; emits events, never prints.

use std::collections::{BTreeMap, HashMap, HashSet};
use std::path::{Component, Path, PathBuf};
use std::pin::Pin;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use bollard::Docker;
use bollard::errors::Error as DockerError;
use bollard::models::{
    ContainerCreateBody, ContainerInspectResponse, ContainerStateStatusEnum, ContainerSummary,
    EndpointSettings, HealthConfig, HealthStatusEnum, HostConfig, Mount, MountType,
    NetworkCreateRequest, NetworkingConfig, PortBinding, RestartPolicy, RestartPolicyNameEnum,
    VolumeCreateRequest,
};
use bollard::query_parameters::{
    CreateContainerOptions, CreateImageOptions, EventsOptions, ListContainersOptions,
    ListVolumesOptions, LogsOptions, RemoveContainerOptions, StopContainerOptions,
    UploadToContainerOptions,
};
use futures_util::stream::{SelectAll, Stream, StreamExt};
use serde::Serialize;
use tokio_util::sync::CancellationToken;

use super::{
    AppliedObject, Change, DeleteOptions, DeployError, DeployedSet, Deployer, ObjectRef, SyncFile,
};
use crate::config::deploy::{Condition, Container, Dependency, DockerDeploy, Restart, Volume};
use crate::event::{Event, EventSink};

/// The label every container, network and volume devloop creates carries.
pub const MANAGED_BY: (&str, &str) = ("dev.devloop.managed-by", "devloop");
/// The label naming the project.
pub const PROJECT_LABEL: &str = "dev.devloop.project";
/// The label holding the digest of a container's effective config (image ID included).
pub const CONFIG_LABEL: &str = "dev.devloop.config";
/// The label marking a container that runs an artifact devloop built (`true`).
pub const ARTIFACT_LABEL: &str = "dev.devloop.artifact";
/// The label holding a container's name in `deploy.docker` (without the project prefix).
pub const CONTAINER_LABEL: &str = "dev.devloop.container";
/// The `apiVersion` of the `ObjectRef`s this backend reports (`container/<name>`).
pub const API_VERSION: &str = "docker/v1";
/// How often container states are polled while waiting.
const POLL: Duration = Duration::from_millis(100);
/// How long a container without a healthcheck must keep running to count as ready.
const SETTLE: Duration = Duration::from_millis(500);
/// How many trailing log lines a failure report keeps.
const TAIL_LINES: usize = 20;
/// How long a dependent waits for a dependency's condition (`deploy` has no deadline of its own).
const DEPENDENCY_TIMEOUT: Duration = Duration::from_secs(300);

/// A Docker daemon, for one project.
pub struct DockerTarget {
    docker: Docker,
    project: String,
    purge_volumes: bool,
    /// Replaced containers of built artifacts are removed at once instead of stopped gracefully (`dev`).
    disposable: bool,
}

/// What to run: the validated `deploy.docker` and the built images.
#[derive(Debug, Clone)]
pub struct DockerPlan {
    pub deploy: DockerDeploy,
    /// A container's `image` as written → the reference to run (built artifacts); other images run as written.
    pub images: BTreeMap<String, String>,
}

/// One container of the plan, resolved against the daemon.
struct Planned {
    /// `image` replaced by the reference to run; bind sources made absolute and clean.
    container: Container,
    /// It runs an artifact devloop built (`DockerPlan::images`).
    built: bool,
    image_id: String,
    digest: String,
}

/// A container `wait_ready` still waits for.
struct Waiting {
    name: String,
    restart: Restart,
    /// The last progress message reported.
    last: Option<String>,
    /// When it was first seen running (containers without a healthcheck).
    running_since: Option<Instant>,
}

/// What a dependent or `wait_ready` waits for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Want {
    /// Running (and healthy when it has a healthcheck), or exited 0.
    Ready,
    Started,
    Healthy,
    Completed,
}

/// A container's state measured against what is wanted.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Assessment {
    Ready,
    Pending(String),
    Failed { reason: String, message: String },
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

type LineStream = Pin<Box<dyn Stream<Item = (String, String)> + Send>>;

impl DockerTarget {
    /// Connects to the daemon (`DOCKER_HOST` or the local socket) and negotiates the API version, so an
    /// unreachable daemon is reported before anything else happens.
    pub async fn connect(project: &str) -> Result<DockerTarget, DeployError> {
        let unreachable = |e: DockerError| {
            DeployError::Config {
            message: format!(
                "cannot reach the Docker daemon at `{}`: {e}",
                crate::build::docker::daemon_host()
            ),
            hint: Some("is dockerd running? devloop talks to the daemon `DOCKER_HOST` names (default: the local socket)".into()),
        }
        };
        let docker = Docker::connect_with_defaults().map_err(unreachable)?;
        let docker = docker.negotiate_version().await.map_err(unreachable)?;
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

    fn labels(&self) -> HashMap<String, String> {
        HashMap::from([
            (MANAGED_BY.0.to_string(), MANAGED_BY.1.to_string()),
            (PROJECT_LABEL.to_string(), self.project.clone()),
        ])
    }

    fn owns(&self, labels: Option<&HashMap<String, String>>) -> bool {
        labels.is_some_and(|l| {
            l.get(MANAGED_BY.0).map(String::as_str) == Some(MANAGED_BY.1)
                && l.get(PROJECT_LABEL) == Some(&self.project)
        })
    }

    fn label_filters(&self) -> HashMap<String, Vec<String>> {
        HashMap::from([(
            "label".to_string(),
            vec![
                format!("{}={}", MANAGED_BY.0, MANAGED_BY.1),
                format!("{PROJECT_LABEL}={}", self.project),
            ],
        )])
    }

    /// Every container of this project, running or not.
    async fn project_containers(&self) -> Result<Vec<ContainerSummary>, DeployError> {
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
            .collect())
    }

    /// Creates the project's network unless it exists; a network of that name devloop did not create is an error.
    async fn ensure_network(&self) -> Result<(), DeployError> {
        let name = self.network_name();
        let what = format!("network/{name}");
        match self.docker.inspect_network(&name, None).await {
            Ok(n) if self.owns(n.labels.as_ref()) => Ok(()),
            Ok(_) => Err(DeployError::Apply {
                object: what,
                message: format!("a network named `{name}` exists and devloop did not create it"),
                hint: Some(format!(
                    "devloop never touches networks it did not create: remove it (`docker network rm {name}`) or rename the project (`metadata.name`)"
                )),
            }),
            Err(e) if is_not_found(&e) => {
                let created = self
                    .docker
                    .create_network(NetworkCreateRequest {
                        name: name.clone(),
                        driver: Some("bridge".into()),
                        labels: Some(self.labels()),
                        ..Default::default()
                    })
                    .await;
                match created {
                    Ok(_) => Ok(()),
                    // Another devloop of this project created it meanwhile.
                    Err(DockerError::DockerResponseServerError {
                        status_code: 409, ..
                    }) => Ok(()),
                    Err(e) => Err(api_error(&what, "create", &e)),
                }
            }
            Err(e) => Err(api_error(&what, "inspect", &e)),
        }
    }

    /// Creates a named volume with devloop's labels unless it exists (an existing one is used, never removed).
    async fn ensure_volume(&self, name: &str) -> Result<(), DeployError> {
        let what = format!("volume/{name}");
        match self.docker.inspect_volume(name).await {
            Ok(_) => Ok(()),
            Err(e) if is_not_found(&e) => self
                .docker
                .create_volume(VolumeCreateRequest {
                    name: Some(name.to_string()),
                    labels: Some(self.labels()),
                    ..Default::default()
                })
                .await
                .map(|_| ())
                .map_err(|e| api_error(&what, "create", &e)),
            Err(e) => Err(api_error(&what, "inspect", &e)),
        }
    }

    /// The ID of the image `reference` names, pulling it (without credentials) when the daemon lacks it.
    async fn image_id(
        &self,
        object: &str,
        reference: &str,
        cancel: &CancellationToken,
    ) -> Result<String, DeployError> {
        match self.docker.inspect_image(reference).await {
            Ok(i) => return Ok(i.id.unwrap_or_default()),
            Err(e) if is_not_found(&e) => {}
            Err(e) => return Err(api_error(object, "inspect its image", &e)),
        }
        let parsed = crate::tag::parse(reference).map_err(|e| DeployError::Apply {
            object: object.to_string(),
            message: e.to_string(),
            hint: None,
        })?;
        let tag = parsed
            .digest
            .or(parsed.tag)
            .unwrap_or_else(|| "latest".to_string());
        let mut pull = self.docker.create_image(
            Some(CreateImageOptions {
                from_image: Some(parsed.repository),
                tag: Some(tag),
                ..Default::default()
            }),
            None,
            None,
        );
        let not_there = |message: String| {
            DeployError::Apply {
            object: object.to_string(),
            message: format!(
                "image `{reference}` is not on the Docker daemon and could not be pulled: {message}"
            ),
            hint: Some(
                "name a built artifact, build the image, or `docker pull` it (devloop pulls without credentials)"
                    .into(),
            ),
        }
        };
        loop {
            tokio::select! {
                _ = cancel.cancelled() => return Err(DeployError::Cancelled),
                item = pull.next() => match item {
                    None => break,
                    Some(Ok(info)) => {
                        if let Some(detail) = info.error_detail {
                            return Err(not_there(detail.message.unwrap_or_default()));
                        }
                    }
                    Some(Err(e)) => return Err(not_there(server_message(&e))),
                },
            }
        }
        self.docker
            .inspect_image(reference)
            .await
            .map(|i| i.id.unwrap_or_default())
            .map_err(|e| not_there(server_message(&e)))
    }

    /// Resolves a container of the plan: its image reference and ID, clean bind sources, its config digest.
    async fn plan_container(
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

    fn create_body(&self, p: &Planned, grace: u64) -> ContainerCreateBody {
        let c = &p.container;
        let network = self.network_name();
        let mut labels = self.labels();
        labels.insert(CONTAINER_LABEL.to_string(), c.name.clone());
        labels.insert(CONFIG_LABEL.to_string(), p.digest.clone());
        if p.built {
            labels.insert(ARTIFACT_LABEL.to_string(), "true".into());
        }
        let mut bindings: HashMap<String, Option<Vec<PortBinding>>> = HashMap::new();
        for port in &c.ports {
            bindings
                .entry(format!("{}/{}", port.container_port, port.protocol))
                .or_insert_with(|| Some(Vec::new()))
                .get_or_insert_with(Vec::new)
                .push(PortBinding {
                    host_ip: Some(port.host_ip.clone()),
                    host_port: Some(port.host_port.to_string()),
                });
        }
        let mut exposed: Vec<String> = bindings.keys().cloned().collect();
        exposed.sort();
        let mounts: Vec<Mount> = c
            .volumes
            .iter()
            .map(|v| match v {
                Volume::Bind {
                    source,
                    target,
                    read_only,
                } => Mount {
                    typ: Some(MountType::BIND),
                    source: Some(source.to_string_lossy().to_string()),
                    target: Some(target.clone()),
                    read_only: Some(*read_only),
                    ..Default::default()
                },
                Volume::Named {
                    name,
                    target,
                    read_only,
                } => Mount {
                    typ: Some(MountType::VOLUME),
                    source: Some(name.clone()),
                    target: Some(target.clone()),
                    read_only: Some(*read_only),
                    ..Default::default()
                },
            })
            .collect();
        let restart = match c.restart {
            Restart::No => RestartPolicyNameEnum::NO,
            Restart::Always => RestartPolicyNameEnum::ALWAYS,
            Restart::OnFailure => RestartPolicyNameEnum::ON_FAILURE,
            Restart::UnlessStopped => RestartPolicyNameEnum::UNLESS_STOPPED,
        };
        ContainerCreateBody {
            image: Some(c.image.clone()),
            env: Some(c.env.iter().map(|(k, v)| format!("{k}={v}")).collect()),
            entrypoint: c.command.clone(),
            cmd: c.args.clone(),
            exposed_ports: (!exposed.is_empty()).then_some(exposed),
            healthcheck: c.healthcheck.as_ref().map(|h| HealthConfig {
                test: Some(h.test.clone()),
                interval: Some(h.interval_ns),
                timeout: Some(h.timeout_ns),
                retries: Some(h.retries),
                start_period: Some(h.start_period_ns),
                start_interval: None,
            }),
            labels: Some(labels),
            stop_timeout: Some(i64::try_from(grace).unwrap_or(i64::MAX)),
            host_config: Some(HostConfig {
                port_bindings: (!bindings.is_empty()).then_some(bindings),
                mounts: (!mounts.is_empty()).then_some(mounts),
                restart_policy: Some(RestartPolicy {
                    name: Some(restart),
                    maximum_retry_count: None,
                }),
                network_mode: Some(network.clone()),
                init: c.init.then_some(true),
                ..Default::default()
            }),
            networking_config: Some(NetworkingConfig {
                endpoints_config: Some(HashMap::from([(
                    network,
                    EndpointSettings {
                        aliases: Some(vec![c.name.clone()]),
                        ..Default::default()
                    },
                )])),
            }),
            ..Default::default()
        }
    }

    /// Inspects a container by name or ID; `None` when it does not exist.
    async fn inspect(
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
    async fn stop_and_remove(
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

    /// Removes a container, killing it first when it runs (`docker rm -f`: SIGKILL, no grace period).
    async fn remove_at_once(&self, object: &str, id: &str) -> Result<(), DeployError> {
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
    async fn reconcile(
        &self,
        p: &Planned,
        grace: u64,
        events: &EventSink,
    ) -> Result<AppliedObject, DeployError> {
        let c = &p.container;
        let object = format!("container/{}", c.name);
        let name = self.container_name(&c.name);
        let change = match self.inspect(&object, &name).await? {
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
                if same && (running || completed) {
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
        if let Err(e) = self.docker.start_container(&created.id, None).await {
            // A container that cannot start (a taken port, a missing entrypoint) is removed so the next
            // deploy creates it afresh instead of finding a stopped container with the current digest.
            let _ = self
                .docker
                .remove_container(
                    &created.id,
                    Some(RemoveContainerOptions {
                        force: true,
                        ..Default::default()
                    }),
                )
                .await;
            return Err(api_error(&object, "start", &e));
        }
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

    /// Waits until `dep` meets its condition, failing when it cannot.
    async fn wait_dependency(
        &self,
        dependent: &str,
        dep: &Dependency,
        restart: Restart,
        events: &EventSink,
        cancel: &CancellationToken,
    ) -> Result<(), DeployError> {
        let want = match dep.condition {
            Condition::Started => Want::Started,
            Condition::Healthy => Want::Healthy,
            Condition::Completed => Want::Completed,
        };
        let object = format!("container/{}", dep.name);
        let name = self.container_name(&dep.name);
        let started = Instant::now();
        let mut last: Option<String> = None;
        loop {
            let current = self.inspect(&object, &name).await?;
            let verdict = match &current {
                None => Assessment::Failed {
                    reason: "Removed".into(),
                    message: "the container was removed".into(),
                },
                Some(c) => assess(c, want, restart),
            };
            match verdict {
                Assessment::Ready => return Ok(()),
                Assessment::Pending(message) => {
                    if started.elapsed() > DEPENDENCY_TIMEOUT {
                        let reason = "DeadlineExceeded".to_string();
                        let message = format!(
                            "{message}: not {} after {} s",
                            condition_text(dep.condition),
                            DEPENDENCY_TIMEOUT.as_secs()
                        );
                        return Err(self
                            .report_failure(&dep.name, &reason, &message, Some(dependent), events)
                            .await);
                    }
                    if last.as_deref() != Some(message.as_str()) {
                        events.emit(Event::RolloutProgress {
                            object: object.clone(),
                            namespace: None,
                            message: format!(
                                "{message} (`{dependent}` waits until it is {})",
                                condition_text(dep.condition)
                            ),
                        });
                        last = Some(message);
                    }
                }
                Assessment::Failed { reason, message } => {
                    return Err(self
                        .report_failure(&dep.name, &reason, &message, Some(dependent), events)
                        .await);
                }
            }
            tokio::select! {
                _ = cancel.cancelled() => return Err(DeployError::Cancelled),
                _ = tokio::time::sleep(POLL) => {}
            }
        }
    }

    /// The last lines a container wrote (stdout and stderr, in the order the daemon logged them).
    async fn last_logs(&self, name: &str) -> Vec<String> {
        let mut stream = self.docker.logs(
            name,
            Some(LogsOptions {
                stdout: true,
                stderr: true,
                tail: TAIL_LINES.to_string(),
                ..Default::default()
            }),
        );
        let mut text = Vec::new();
        let fetch = async {
            while let Some(Ok(chunk)) = stream.next().await {
                text.extend_from_slice(&chunk.into_bytes());
            }
        };
        // Evidence must not hold up the report.
        let _ = tokio::time::timeout(Duration::from_secs(5), fetch).await;
        let lines: Vec<String> = String::from_utf8_lossy(&text)
            .lines()
            .map(|l| l.trim_end().to_string())
            .collect();
        let skip = lines.len().saturating_sub(TAIL_LINES);
        lines.into_iter().skip(skip).collect()
    }

    /// Emits `RolloutFailed` with the container's last log lines and builds the error.
    async fn report_failure(
        &self,
        name: &str,
        reason: &str,
        message: &str,
        dependent: Option<&str>,
        events: &EventSink,
    ) -> DeployError {
        let docker_name = self.container_name(name);
        let logs = self.last_logs(&docker_name).await;
        let object = format!("container/{name}");
        events.emit(Event::RolloutFailed {
            object: object.clone(),
            namespace: None,
            pod: Some(name.to_string()),
            container: Some(name.to_string()),
            reason: reason.to_string(),
            message: message.to_string(),
            events: Vec::new(),
            logs,
        });
        let mut text = format!("{object}: {reason}: {message}");
        if let Some(d) = dependent {
            text.push_str(&format!(" (`{d}` depends on it and was not started)"));
        }
        text.push_str(&format!(
            "\n\nhint: `docker logs {docker_name}` shows its whole output"
        ));
        DeployError::Status(text)
    }

    /// Follows the output of every container of this project until `cancel` fires: the running ones from their
    /// first line, and each container started later (a redeploy, a restart) from its first line too.
    pub async fn follow_logs(
        &self,
        events: &EventSink,
        cancel: &CancellationToken,
    ) -> Result<(), DeployError> {
        // Events from a second ago on, so a container started while the initial list is taken is not missed;
        // duplicates are skipped by (ID, start time).
        let since = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map(|d| d.as_secs().saturating_sub(1))
            .unwrap_or(0);
        let mut filters = self.label_filters();
        filters.insert("type".into(), vec!["container".into()]);
        filters.insert("event".into(), vec!["start".into()]);
        let mut starts = self
            .docker
            .events(Some(EventsOptions {
                since: Some(since.to_string()),
                until: None,
                filters: Some(filters),
            }))
            .boxed();
        let mut streams: SelectAll<LineStream> = SelectAll::new();
        let mut followed: HashSet<(String, String)> = HashSet::new();
        let mut seen_ids: HashSet<String> = HashSet::new();
        for c in self.project_containers().await? {
            if c.state == Some(bollard::models::ContainerSummaryStateEnum::RUNNING)
                && let Some(id) = c.id
            {
                self.follow_one(&id, None, &mut followed, &mut seen_ids, &mut streams)
                    .await;
            }
        }
        loop {
            tokio::select! {
                _ = cancel.cancelled() => return Ok(()),
                event = starts.next() => match event {
                    Some(Ok(m)) => {
                        if let Some(id) = m.actor.and_then(|a| a.id) {
                            self.follow_one(&id, m.time, &mut followed, &mut seen_ids, &mut streams).await;
                        }
                    }
                    Some(Err(e)) => {
                        return Err(DeployError::Api {
                            message: format!("the Docker event stream failed: {}", server_message(&e)),
                            hint: None,
                        });
                    }
                    None => return Ok(()),
                },
                Some((name, line)) = streams.next(), if !streams.is_empty() => {
                    events.emit(Event::Log { pod: name.clone(), container: name.clone(), workload: name, line });
                }
            }
        }
    }

    /// Starts following one container instance unless it is followed already. A container seen before was
    /// restarted: its new instance is followed from `started` (Unix seconds) so earlier output is not repeated.
    async fn follow_one(
        &self,
        id: &str,
        started: Option<i64>,
        followed: &mut HashSet<(String, String)>,
        seen_ids: &mut HashSet<String>,
        streams: &mut SelectAll<LineStream>,
    ) {
        let Ok(Some(c)) = self.inspect("container", id).await else {
            return;
        };
        if !self.owns(c.config.as_ref().and_then(|c| c.labels.as_ref())) {
            return;
        }
        let name = c
            .config
            .as_ref()
            .and_then(|c| c.labels.as_ref())
            .and_then(|l| l.get(CONTAINER_LABEL).cloned())
            .unwrap_or_else(|| id.to_string());
        let started_at = c
            .state
            .as_ref()
            .and_then(|s| s.started_at.clone())
            .unwrap_or_default();
        if !followed.insert((id.to_string(), started_at)) {
            return;
        }
        let since = if seen_ids.insert(id.to_string()) {
            0
        } else {
            started
                .and_then(|t| i32::try_from(t).ok())
                .unwrap_or_default()
        };
        let chunks = self.docker.logs(
            id,
            Some(LogsOptions {
                follow: true,
                stdout: true,
                stderr: true,
                since,
                ..Default::default()
            }),
        );
        streams.push(lines(chunks, name));
    }
}

/// Splits a container's output chunks into lines, each tagged with the container's name.
fn lines(
    chunks: impl Stream<Item = Result<bollard::container::LogOutput, DockerError>> + Send + 'static,
    name: String,
) -> LineStream {
    chunks
        .scan(Vec::<u8>::new(), move |pending, chunk| {
            let out: Vec<(String, String)> = match chunk {
                Ok(c) => {
                    pending.extend_from_slice(&c.into_bytes());
                    let mut out = Vec::new();
                    while let Some(i) = pending.iter().position(|b| *b == b'\n') {
                        let line: Vec<u8> = pending.drain(..=i).collect();
                        let text = String::from_utf8_lossy(&line).trim_end().to_string();
                        out.push((name.clone(), text));
                    }
                    out
                }
                // The stream ends with the container; a partial last line is still worth showing.
                Err(_) => std::mem::take(pending)
                    .split(|b| *b == b'\n')
                    .filter(|l| !l.is_empty())
                    .map(|l| {
                        (
                            name.clone(),
                            String::from_utf8_lossy(l).trim_end().to_string(),
                        )
                    })
                    .collect(),
            };
            futures_util::future::ready(Some(futures_util::stream::iter(out)))
        })
        .flatten()
        .boxed()
}

impl Deployer for DockerTarget {
    type Plan = DockerPlan;

    fn can_sync(&self) -> bool {
        true
    }

    async fn sync(
        &self,
        plan: &DockerPlan,
        image: &str,
        files: &[SyncFile],
    ) -> Result<usize, DeployError> {
        let wanted = crate::tag::normalize_repository(image);
        let containers: Vec<&Container> = plan
            .deploy
            .containers
            .iter()
            .filter(|c| crate::tag::normalize_repository(&c.image) == wanted)
            .collect();
        let mut updated = 0;
        let mut archives: Vec<(Vec<SyncFile>, bytes::Bytes)> = Vec::new();
        for c in containers {
            let object = format!("container/{}", c.name);
            let Some(current) = self.inspect(&object, &self.container_name(&c.name)).await? else {
                continue;
            };
            let running = current.state.as_ref().and_then(|s| s.running) == Some(true);
            let ours = self.owns(current.config.as_ref().and_then(|c| c.labels.as_ref()));
            let Some(id) = current.id.as_deref().filter(|_| running && ours) else {
                continue;
            };
            // A file under a bind mount is already live in the container; writing it through the daemon would
            // rewrite the host file and trigger the watcher again.
            let wanted: Vec<SyncFile> = files
                .iter()
                .filter(|f| !bind_mounted(c, &f.dest))
                .cloned()
                .collect();
            if !wanted.is_empty() {
                // Containers of one image usually take the same files: one archive each distinct set.
                let archive = match archives.iter().find(|(set, _)| *set == wanted) {
                    Some((_, archive)) => archive.clone(),
                    None => {
                        let set = wanted.clone();
                        let archive: bytes::Bytes =
                            tokio::task::spawn_blocking(move || sync_archive(&set))
                                .await
                                .map_err(|e| DeployError::Api {
                                    message: format!("sync: {e}"),
                                    hint: None,
                                })??
                                .into();
                        archives.push((wanted, archive.clone()));
                        archive
                    }
                };
                self.docker
                    .upload_to_container(
                        id,
                        Some(UploadToContainerOptions {
                            path: "/".into(),
                            ..Default::default()
                        }),
                        bollard::body_full(archive),
                    )
                    .await
                    .map_err(|e| api_error(&object, "sync files into", &e))?;
            }
            updated += 1;
        }
        Ok(updated)
    }

    async fn deploy(
        &self,
        plan: &DockerPlan,
        events: &EventSink,
        cancel: &CancellationToken,
    ) -> Result<DeployedSet, DeployError> {
        let started = Instant::now();
        let grace = plan.deploy.stop_grace_period_secs;
        events.emit(Event::DeployStarted {
            context: "docker".into(),
            namespace: self.network_name(),
            objects: plan.deploy.containers.len(),
        });
        self.ensure_network().await?;
        let mut planned = Vec::with_capacity(plan.deploy.containers.len());
        for c in &plan.deploy.containers {
            if cancel.is_cancelled() {
                return Err(DeployError::Cancelled);
            }
            for v in &c.volumes {
                if let Volume::Named { name, .. } = v {
                    self.ensure_volume(&self.volume_name(name)).await?;
                }
            }
            planned.push(self.plan_container(c, plan, cancel).await?);
        }

        // Prune first: a container that left the plan may hold a host port a new one needs.
        let keep: HashSet<&str> = plan
            .deploy
            .containers
            .iter()
            .map(|c| c.name.as_str())
            .collect();
        let mut pruned = Vec::new();
        for c in self.project_containers().await? {
            let name = c
                .labels
                .as_ref()
                .and_then(|l| l.get(CONTAINER_LABEL))
                .cloned()
                .unwrap_or_default();
            if keep.contains(name.as_str()) {
                continue;
            }
            let Some(id) = c.id.as_deref() else { continue };
            let object = format!("container/{name}");
            self.stop_and_remove(&object, id, Some(grace), events)
                .await?;
            events.emit(Event::Pruned {
                object,
                namespace: None,
            });
            pruned.push(container_ref(&name));
        }

        let mut applied = Vec::with_capacity(planned.len());
        for level in levels(&plan.deploy.containers) {
            if cancel.is_cancelled() {
                return Err(DeployError::Cancelled);
            }
            let work = level.iter().map(|&i| {
                let p = &planned[i];
                async move {
                    for dep in &p.container.depends_on {
                        let restart = plan
                            .deploy
                            .containers
                            .iter()
                            .find(|c| c.name == dep.name)
                            .map(|c| c.restart)
                            .unwrap_or(Restart::No);
                        self.wait_dependency(&p.container.name, dep, restart, events, cancel)
                            .await?;
                    }
                    self.reconcile(p, grace, events).await
                }
            });
            let results = tokio::select! {
                r = futures_util::future::join_all(work) => r,
                _ = cancel.cancelled() => return Err(DeployError::Cancelled),
            };
            applied.extend(super::all_or_errors(
                results,
                "containers could not be deployed",
            )?);
        }
        events.emit(Event::DeployComplete {
            applied: applied.len(),
            pruned: pruned.len(),
            duration_ms: millis(started.elapsed()),
        });
        Ok(DeployedSet {
            applied,
            pruned,
            created_namespaces: Vec::new(),
        })
    }

    async fn wait_ready(
        &self,
        deployed: &DeployedSet,
        deadline: Duration,
        events: &EventSink,
        cancel: &CancellationToken,
    ) -> Result<(), DeployError> {
        let started = Instant::now();
        // Containers left alone were running with this config already; only replaced ones are waited for.
        let mut pending: Vec<Waiting> = deployed
            .applied
            .iter()
            .filter(|a| a.reference.kind == "Container" && a.change != Change::Unchanged)
            .map(|a| Waiting {
                name: a.reference.name.clone(),
                restart: restart_of(&a.object),
                last: None,
                running_since: None,
            })
            .collect();
        let total = pending.len();
        loop {
            let mut still = Vec::with_capacity(pending.len());
            for mut w in pending {
                let object = format!("container/{}", w.name);
                let current = self.inspect(&object, &self.container_name(&w.name)).await?;
                let mut verdict = match &current {
                    None => Assessment::Failed {
                        reason: "Removed".into(),
                        message: "the container was removed".into(),
                    },
                    Some(c) => assess(c, Want::Ready, w.restart),
                };
                // Without a healthcheck, "ready" means it kept running for a moment: a container that crashes
                // on start-up (a bad flag, a missing file) must not pass as ready.
                let unprobed_running = current.as_ref().is_some_and(|c| {
                    let state = c.state.as_ref();
                    state.and_then(|s| s.status) == Some(ContainerStateStatusEnum::RUNNING)
                        && state.and_then(|s| s.health.as_ref()).is_none()
                });
                if verdict == Assessment::Ready && unprobed_running {
                    let since = *w.running_since.get_or_insert_with(Instant::now);
                    if since.elapsed() < SETTLE {
                        verdict = Assessment::Pending("running".into());
                    }
                }
                match verdict {
                    Assessment::Ready => events.emit(Event::RolloutReady {
                        object,
                        namespace: None,
                        duration_ms: millis(started.elapsed()),
                    }),
                    Assessment::Pending(message) => {
                        if w.last.as_deref() != Some(message.as_str()) {
                            events.emit(Event::RolloutProgress {
                                object,
                                namespace: None,
                                message: message.clone(),
                            });
                        }
                        w.last = Some(message);
                        still.push(w);
                    }
                    Assessment::Failed { reason, message } => {
                        return Err(self
                            .report_failure(&w.name, &reason, &message, None, events)
                            .await);
                    }
                }
            }
            pending = still;
            if pending.is_empty() {
                events.emit(Event::StatusComplete {
                    ready: total,
                    duration_ms: millis(started.elapsed()),
                });
                return Ok(());
            }
            if started.elapsed() >= deadline {
                let mut text = format!(
                    "{} of {total} containers not ready after {} s:",
                    pending.len(),
                    deadline.as_secs()
                );
                for Waiting { name, last, .. } in &pending {
                    let message = last.clone().unwrap_or_else(|| "not ready".into());
                    let logs = self.last_logs(&self.container_name(name)).await;
                    events.emit(Event::RolloutFailed {
                        object: format!("container/{name}"),
                        namespace: None,
                        pod: Some(name.clone()),
                        container: Some(name.clone()),
                        reason: "DeadlineExceeded".into(),
                        message: message.clone(),
                        events: Vec::new(),
                        logs,
                    });
                    text.push_str(&format!("\n  container/{name}: {message}"));
                }
                text.push_str(
                    "\n\nhint: raise `--status-check-deadline` if the containers need longer to become ready",
                );
                return Err(DeployError::Status(text));
            }
            tokio::select! {
                _ = cancel.cancelled() => return Err(DeployError::Cancelled),
                _ = tokio::time::sleep(POLL) => {}
            }
        }
    }

    async fn delete_all(
        &self,
        opts: DeleteOptions,
        events: &EventSink,
    ) -> Result<Vec<ObjectRef>, DeployError> {
        let mut deleted = Vec::new();
        let emit = |object: String| {
            events.emit(Event::Deleted {
                object,
                namespace: None,
                dry_run: opts.dry_run,
            })
        };
        let mut containers = self.project_containers().await?;
        containers.sort_by(|a, b| a.names.cmp(&b.names));
        for c in &containers {
            let name = c
                .labels
                .as_ref()
                .and_then(|l| l.get(CONTAINER_LABEL))
                .cloned()
                .unwrap_or_default();
            let object = format!("container/{name}");
            if !opts.dry_run
                && let Some(id) = c.id.as_deref()
            {
                let artifact = c.labels.as_ref().and_then(|l| l.get(ARTIFACT_LABEL));
                if self.disposable && artifact.is_some() {
                    self.remove_at_once(&object, id).await?;
                } else {
                    // `None`: each container stops within the grace period it was created with.
                    self.stop_and_remove(&object, id, None, events).await?;
                }
            }
            emit(object);
            deleted.push(container_ref(&name));
        }

        let network = self.network_name();
        match self.docker.inspect_network(&network, None).await {
            Ok(n) if self.owns(n.labels.as_ref()) => {
                // Containers devloop did not create may have joined the network: then it stays.
                let others = n
                    .containers
                    .as_ref()
                    .map(|m| {
                        m.keys()
                            .filter(|id| !containers.iter().any(|c| c.id.as_ref() == Some(*id)))
                            .count()
                    })
                    .unwrap_or(0);
                if others == 0 {
                    if !opts.dry_run {
                        match self.docker.remove_network(&network).await {
                            Ok(()) => {}
                            Err(e) if is_not_found(&e) => {}
                            Err(e) => {
                                return Err(api_error(&format!("network/{network}"), "remove", &e));
                            }
                        }
                    }
                    emit(format!("network/{network}"));
                    deleted.push(ObjectRef {
                        api_version: API_VERSION.into(),
                        kind: "Network".into(),
                        namespace: None,
                        name: network.clone(),
                    });
                } else {
                    events.emit(Event::Warning {
                        message: format!(
                            "network/{network}: kept: {others} containers devloop did not create are attached to it"
                        ),
                    });
                }
            }
            Ok(_) => {}
            Err(e) if is_not_found(&e) => {}
            Err(e) => return Err(api_error(&format!("network/{network}"), "inspect", &e)),
        }

        if self.purge_volumes {
            let volumes = self
                .docker
                .list_volumes(Some(ListVolumesOptions {
                    filters: Some(self.label_filters()),
                }))
                .await
                .map_err(|e| api_error("volumes", "list", &e))?;
            let mut volumes: Vec<_> = volumes
                .volumes
                .unwrap_or_default()
                .into_iter()
                .filter(|v| self.owns(Some(&v.labels)))
                .collect();
            volumes.sort_by(|a, b| a.name.cmp(&b.name));
            for v in volumes {
                let object = format!("volume/{}", v.name);
                if !opts.dry_run {
                    match self
                        .docker
                        .remove_volume(
                            &v.name,
                            None::<bollard::query_parameters::RemoveVolumeOptions>,
                        )
                        .await
                    {
                        Ok(()) => {}
                        Err(e) if is_not_found(&e) => {}
                        Err(e) => return Err(api_error(&object, "remove", &e)),
                    }
                }
                emit(object);
                deleted.push(ObjectRef {
                    api_version: API_VERSION.into(),
                    kind: "Volume".into(),
                    namespace: None,
                    name: v.name,
                });
            }
        }
        Ok(deleted)
    }
}

/// Groups containers into start levels: each level depends only on earlier ones.
/// Whether `dest` (a path in the container) lies under one of `c`'s bind mounts.
fn bind_mounted(c: &Container, dest: &str) -> bool {
    c.volumes.iter().any(|v| match v {
        Volume::Bind { target, .. } => Path::new(dest).starts_with(target),
        Volume::Named { .. } => false,
    })
}

/// One tar archive of `files` at their container paths (relative to `/`), for the daemon to extract.
fn sync_archive(files: &[SyncFile]) -> Result<Vec<u8>, DeployError> {
    let mut archive = tar::Builder::new(Vec::new());
    archive.follow_symlinks(false);
    for f in files {
        archive
            .append_path_with_name(&f.local, f.dest.trim_start_matches('/'))
            .map_err(|e| DeployError::Api {
                message: format!("sync: cannot read `{}`: {e}", f.local.display()),
                hint: None,
            })?;
    }
    archive.into_inner().map_err(|e| DeployError::Api {
        message: format!("sync: {e}"),
        hint: None,
    })
}

fn levels(containers: &[Container]) -> Vec<Vec<usize>> {
    let mut placed: Vec<Option<usize>> = vec![None; containers.len()];
    let mut out: Vec<Vec<usize>> = Vec::new();
    while placed.iter().any(Option::is_none) {
        let level = out.len();
        let ready: Vec<usize> = (0..containers.len())
            .filter(|&i| placed[i].is_none())
            .filter(|&i| {
                containers[i].depends_on.iter().all(|d| {
                    containers
                        .iter()
                        .position(|c| c.name == d.name)
                        .is_some_and(|j| placed[j].is_some_and(|l| l < level))
                })
            })
            .collect();
        // Validation rejects cycles and unknown names; should one slip through, start the rest rather than hang.
        let ready = if ready.is_empty() {
            (0..containers.len())
                .filter(|&i| placed[i].is_none())
                .collect()
        } else {
            ready
        };
        for &i in &ready {
            placed[i] = Some(level);
        }
        out.push(ready);
    }
    out
}

/// Measures a container's state against what is wanted.
fn assess(c: &ContainerInspectResponse, want: Want, restart: Restart) -> Assessment {
    let failed = |reason: &str, message: String| Assessment::Failed {
        reason: reason.to_string(),
        message,
    };
    let state = c.state.clone().unwrap_or_default();
    let exit = state.exit_code.unwrap_or(0);
    if state.oom_killed == Some(true) {
        return failed("OOMKilled", "was killed: out of memory".into());
    }
    // Docker restarts a crashing container within milliseconds; a poll may only ever see it running again.
    if c.restart_count.unwrap_or(0) > 0 && exit != 0 {
        return failed(
            "CrashLoop",
            format!(
                "keeps restarting (restart policy `{}`): last exit code {exit}",
                restart_text(restart)
            ),
        );
    }
    let health = state.health.as_ref().and_then(|h| h.status);
    let has_health = matches!(
        health,
        Some(HealthStatusEnum::STARTING | HealthStatusEnum::HEALTHY | HealthStatusEnum::UNHEALTHY)
    );
    match state.status {
        Some(ContainerStateStatusEnum::EXITED | ContainerStateStatusEnum::DEAD) => {
            if exit != 0 {
                failed("Error", format!("exited with code {exit}"))
            } else if want == Want::Healthy {
                failed(
                    "Completed",
                    "exited with code 0 before it became healthy".into(),
                )
            } else {
                Assessment::Ready
            }
        }
        Some(ContainerStateStatusEnum::RESTARTING) => {
            if exit != 0 {
                failed(
                    "CrashLoop",
                    format!("keeps restarting: last exit code {exit}"),
                )
            } else {
                Assessment::Pending("restarting".into())
            }
        }
        Some(ContainerStateStatusEnum::RUNNING) => match (want, health) {
            (Want::Started, _) => Assessment::Ready,
            (Want::Completed, _) => Assessment::Pending("running".into()),
            (_, Some(HealthStatusEnum::HEALTHY)) => Assessment::Ready,
            (_, Some(HealthStatusEnum::UNHEALTHY)) => {
                failed("Unhealthy", unhealthy_message(c))
            }
            (_, Some(HealthStatusEnum::STARTING)) => {
                Assessment::Pending("running, healthcheck starting".into())
            }
            (Want::Healthy, _) if !has_health => failed(
                "NoHealthcheck",
                "has no healthcheck, so it can never be healthy (add `healthcheck` or use `condition: started`)"
                    .into(),
            ),
            _ => Assessment::Ready,
        },
        Some(ContainerStateStatusEnum::CREATED) => Assessment::Pending("created".into()),
        Some(ContainerStateStatusEnum::PAUSED) => Assessment::Pending("paused".into()),
        Some(ContainerStateStatusEnum::STOPPING) => Assessment::Pending("stopping".into()),
        Some(ContainerStateStatusEnum::REMOVING) => {
            failed("Removed", "the container is being removed".into())
        }
        Some(ContainerStateStatusEnum::EMPTY) | None => Assessment::Pending("starting".into()),
    }
}

/// The last healthcheck result, as a reason to read.
fn unhealthy_message(c: &ContainerInspectResponse) -> String {
    let health = c.state.as_ref().and_then(|s| s.health.as_ref());
    let streak = health.and_then(|h| h.failing_streak).unwrap_or(0);
    let last = health
        .and_then(|h| h.log.as_ref())
        .and_then(|l| l.last())
        .map(|r| {
            let output = r.output.clone().unwrap_or_default();
            format!(
                "exit code {}{}",
                r.exit_code.unwrap_or(-1),
                match output.trim() {
                    "" => String::new(),
                    o => format!(": {}", o.lines().last().unwrap_or(o)),
                }
            )
        })
        .unwrap_or_else(|| "no result".into());
    format!("healthcheck failed {streak} times in a row (last: {last})")
}

fn restart_of(object: &serde_json::Value) -> Restart {
    match object
        .pointer("/HostConfig/RestartPolicy/Name")
        .and_then(serde_json::Value::as_str)
    {
        Some("always") => Restart::Always,
        Some("on-failure") => Restart::OnFailure,
        Some("unless-stopped") => Restart::UnlessStopped,
        _ => Restart::No,
    }
}

fn restart_text(r: Restart) -> &'static str {
    match r {
        Restart::No => "no",
        Restart::Always => "always",
        Restart::OnFailure => "on-failure",
        Restart::UnlessStopped => "unless-stopped",
    }
}

fn condition_text(c: Condition) -> &'static str {
    match c {
        Condition::Started => "started",
        Condition::Healthy => "healthy",
        Condition::Completed => "completed",
    }
}

fn container_ref(name: &str) -> ObjectRef {
    ObjectRef {
        api_version: API_VERSION.into(),
        kind: "Container".into(),
        namespace: None,
        name: name.to_string(),
    }
}

fn applied(name: &str, change: Change, current: &ContainerInspectResponse) -> AppliedObject {
    AppliedObject {
        reference: container_ref(name),
        change,
        generation: 0,
        object: serde_json::to_value(current).unwrap_or_default(),
    }
}

/// A path without `.` and `..` components (Docker wants bind sources absolute and clean).
fn clean(path: &Path) -> PathBuf {
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

fn millis(d: Duration) -> u64 {
    u64::try_from(d.as_millis()).unwrap_or(u64::MAX)
}

fn is_not_found(e: &DockerError) -> bool {
    matches!(
        e,
        DockerError::DockerResponseServerError {
            status_code: 404,
            ..
        }
    )
}

fn server_message(e: &DockerError) -> String {
    match e {
        DockerError::DockerResponseServerError { message, .. } => message.trim().to_string(),
        other => other.to_string(),
    }
}

fn api_error(object: &str, verb: &str, e: &DockerError) -> DeployError {
    let message = server_message(e);
    let hint = if message.contains("port is already allocated")
        || message.contains("address already in use")
    {
        Some("another container or process uses that host port: change `ports` in deploy.docker or stop it".into())
    } else if matches!(e, DockerError::DockerResponseServerError { .. }) {
        None
    } else {
        Some("is dockerd still running?".into())
    };
    DeployError::Apply {
        object: object.to_string(),
        message: format!("cannot {verb}: {message}"),
        hint,
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;
    use bollard::models::{ContainerState, Health, HealthcheckResult};

    fn container(name: &str, deps: &[&str]) -> Container {
        Container {
            name: name.into(),
            image: "x".into(),
            ports: Vec::new(),
            env: BTreeMap::new(),
            volumes: Vec::new(),
            command: None,
            args: None,
            healthcheck: None,
            depends_on: deps
                .iter()
                .map(|d| Dependency {
                    name: d.to_string(),
                    condition: Condition::Started,
                })
                .collect(),
            restart: Restart::No,
            init: false,
        }
    }

    fn state(
        status: ContainerStateStatusEnum,
        exit: i64,
        health: Option<HealthStatusEnum>,
    ) -> ContainerInspectResponse {
        ContainerInspectResponse {
            state: Some(ContainerState {
                status: Some(status),
                running: Some(status == ContainerStateStatusEnum::RUNNING),
                exit_code: Some(exit),
                health: health.map(|h| Health {
                    status: Some(h),
                    failing_streak: Some(3),
                    log: Some(vec![HealthcheckResult {
                        exit_code: Some(1),
                        output: Some("connection refused\n".into()),
                        ..Default::default()
                    }]),
                }),
                ..Default::default()
            }),
            restart_count: Some(0),
            ..Default::default()
        }
    }

    #[test]
    fn levels_follow_dependencies() {
        let cs = vec![
            container("api", &["db", "migrate"]),
            container("migrate", &["db"]),
            container("db", &[]),
            container("web", &[]),
        ];
        assert_eq!(levels(&cs), vec![vec![2, 3], vec![1], vec![0]]);
    }

    #[test]
    fn assessment_of_states() {
        use ContainerStateStatusEnum as S;
        use HealthStatusEnum as H;
        assert_eq!(
            assess(&state(S::RUNNING, 0, None), Want::Ready, Restart::No),
            Assessment::Ready
        );
        assert_eq!(
            assess(
                &state(S::RUNNING, 0, Some(H::STARTING)),
                Want::Ready,
                Restart::No
            ),
            Assessment::Pending("running, healthcheck starting".into())
        );
        assert_eq!(
            assess(
                &state(S::RUNNING, 0, Some(H::STARTING)),
                Want::Started,
                Restart::No
            ),
            Assessment::Ready
        );
        let Assessment::Failed { reason, message } = assess(
            &state(S::RUNNING, 0, Some(H::UNHEALTHY)),
            Want::Healthy,
            Restart::No,
        ) else {
            panic!("unhealthy must fail")
        };
        assert_eq!(reason, "Unhealthy");
        assert_eq!(
            message,
            "healthcheck failed 3 times in a row (last: exit code 1: connection refused)"
        );
        assert!(matches!(
            assess(&state(S::RUNNING, 0, None), Want::Healthy, Restart::No),
            Assessment::Failed { reason, .. } if reason == "NoHealthcheck"
        ));
        assert_eq!(
            assess(&state(S::EXITED, 0, None), Want::Ready, Restart::No),
            Assessment::Ready
        );
        assert_eq!(
            assess(&state(S::EXITED, 0, None), Want::Completed, Restart::No),
            Assessment::Ready
        );
        assert_eq!(
            assess(&state(S::RUNNING, 0, None), Want::Completed, Restart::No),
            Assessment::Pending("running".into())
        );
        assert_eq!(
            assess(&state(S::EXITED, 3, None), Want::Ready, Restart::No),
            Assessment::Failed {
                reason: "Error".into(),
                message: "exited with code 3".into()
            }
        );
        let mut looping = state(S::RUNNING, 2, None);
        looping.restart_count = Some(1);
        assert!(matches!(
            assess(&looping, Want::Ready, Restart::Always),
            Assessment::Failed { reason, .. } if reason == "CrashLoop"
        ));
    }

    #[test]
    fn files_under_a_bind_mount_are_not_synced() {
        let mut c = container("web", &[]);
        c.volumes.push(Volume::Bind {
            source: PathBuf::from("/project/www"),
            target: "/www".into(),
            read_only: false,
        });
        c.volumes.push(Volume::Named {
            name: "data".into(),
            target: "/data".into(),
            read_only: false,
        });
        assert!(bind_mounted(&c, "/www/index.html"));
        assert!(bind_mounted(&c, "/www"));
        assert!(!bind_mounted(&c, "/wwwroot/index.html"));
        assert!(!bind_mounted(&c, "/data/x"));
        assert!(!bind_mounted(&c, "/app/main.py"));
    }

    #[test]
    fn bind_sources_are_cleaned() {
        assert_eq!(
            clean(Path::new("/p/./www/../data")),
            PathBuf::from("/p/data")
        );
    }
}
