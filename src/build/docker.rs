//! Build, Docker backend: build specs → images through the Engine API (bollard), streaming the context tar from
//! a blocking task without temp files; tag, push with `~/.docker/config.json` credentials, registry digests.
//! Emits progress events; never prints, never decides whether to build.

use std::collections::{HashSet, VecDeque};
use std::io::Write;
use std::time::Instant;

use bollard::Docker;
use bollard::auth::DockerCredentials;
use bollard::models::BuildInfoAux;
use bollard::query_parameters::{
    BuildImageOptions, BuilderVersion, PushImageOptions, TagImageOptions,
};
use futures_util::StreamExt;
use tokio::sync::mpsc;
use tokio_util::sync::CancellationToken;

use super::{BuildError, BuildSpec, Builder, BuiltImage};
use crate::event::{Event, EventSink};

/// How many trailing output lines a failure report keeps.
const TAIL_LINES: usize = 20;
/// Size of the chunks the context tar is streamed in.
const CHUNK: usize = 256 * 1024;

/// Builds with a Docker daemon over its Engine API.
pub struct DockerBuilder {
    docker: Docker,
    buildkit: bool,
}

fn unreachable(message: String) -> BuildError {
    BuildError::DaemonUnreachable {
        host: crate::daemon::host(),
        message,
        hint: Some(crate::daemon::UNREACHABLE_HINT.into()),
    }
}

impl DockerBuilder {
    /// Connects to the daemon (`DOCKER_HOST` or the local socket) and negotiates the API version. With
    /// `use_buildkit`, builds use BuildKit when the daemon supports it (API ≥ 1.39) and the classic builder
    /// otherwise; the returned flag says which was chosen.
    pub async fn connect(use_buildkit: bool) -> Result<(DockerBuilder, bool), BuildError> {
        let docker = crate::daemon::connect()
            .await
            .map_err(|e| unreachable(e.to_string()))?;
        let v = docker.client_version();
        let supports_buildkit = (v.major_version, v.minor_version) >= (1, 39);
        let buildkit = use_buildkit && supports_buildkit;
        Ok((DockerBuilder { docker, buildkit }, buildkit))
    }

    /// The daemon connection (for loading images into local clusters).
    pub fn docker(&self) -> &Docker {
        &self.docker
    }

    fn api_err(image: &str, e: impl std::fmt::Display) -> BuildError {
        BuildError::Api {
            image: image.to_string(),
            message: e.to_string(),
        }
    }
}

/// A `Write` that hands the tar stream to the async side in chunks.
struct ChannelWriter {
    tx: mpsc::Sender<Result<bytes::Bytes, std::io::Error>>,
    buf: Vec<u8>,
}

impl ChannelWriter {
    fn send(&mut self) -> std::io::Result<()> {
        if self.buf.is_empty() {
            return Ok(());
        }
        let chunk = std::mem::replace(&mut self.buf, Vec::with_capacity(CHUNK));
        self.tx.blocking_send(Ok(chunk.into())).map_err(|_| {
            std::io::Error::new(
                std::io::ErrorKind::BrokenPipe,
                "the daemon stopped reading the context",
            )
        })
    }
}

impl Write for ChannelWriter {
    fn write(&mut self, data: &[u8]) -> std::io::Result<usize> {
        self.buf.extend_from_slice(data);
        if self.buf.len() >= CHUNK {
            self.send()?;
        }
        Ok(data.len())
    }

    fn flush(&mut self) -> std::io::Result<()> {
        self.send()
    }
}

/// Tracks the build output for progress events and failure reports.
struct Progress<'a> {
    image: &'a str,
    events: &'a EventSink,
    step: Option<String>,
    tail: VecDeque<String>,
    image_id: Option<String>,
    /// BuildKit vertices already reported as steps.
    announced: HashSet<String>,
}

impl Progress<'_> {
    fn line(&mut self, line: &str) {
        let line = line.trim_end();
        if line.is_empty() {
            return;
        }
        if line.starts_with("Step ") && line.contains(" : ") {
            self.step = Some(line.to_string());
            self.events.emit(Event::BuildStep {
                image: self.image.to_string(),
                step: line.to_string(),
            });
        }
        if self.tail.len() == TAIL_LINES {
            self.tail.pop_front();
        }
        self.tail.push_back(line.to_string());
        self.events.emit(Event::BuildOutput {
            image: self.image.to_string(),
            line: line.to_string(),
        });
    }

    fn buildkit(&mut self, status: &bollard::moby::buildkit::v1::StatusResponse) -> Option<String> {
        let mut error = None;
        for v in &status.vertexes {
            // A vertex is announced once, when it first starts; cached vertices arrive started and completed.
            if v.started.is_some() && self.announced.insert(v.digest.clone()) {
                self.step = Some(v.name.clone());
                self.events.emit(Event::BuildStep {
                    image: self.image.to_string(),
                    step: v.name.clone(),
                });
            }
            if !v.error.is_empty() {
                self.step = Some(v.name.clone());
                error = Some(v.error.clone());
            }
        }
        for log in &status.logs {
            let text = String::from_utf8_lossy(&log.msg).to_string();
            for l in text.lines() {
                self.line(l);
            }
        }
        error
    }

    fn failed(self, message: String) -> BuildError {
        BuildError::Failed {
            image: self.image.to_string(),
            step: self.step,
            message,
            output: self.tail.into(),
        }
    }
}

impl DockerBuilder {
    /// The Engine API build request for `spec`: BuildKit when chosen and the daemon has it, unless only the classic
    /// builder makes this image exactly.
    fn options(&self, spec: &BuildSpec, dockerfile_name: String) -> BuildImageOptions {
        let buildkit = self.buildkit && !spec.classic_only;
        BuildImageOptions {
            dockerfile: dockerfile_name,
            t: Some(spec.tag.clone()),
            buildargs: Some(
                spec.build_args
                    .iter()
                    .map(|(k, v)| (k.clone(), v.clone()))
                    .collect(),
            ),
            // No labels: with the classic builder each one is an extra committed step (≈ 70 ms per build).
            target: spec.target.clone().unwrap_or_default(),
            platform: spec.platform.clone().unwrap_or_default(),
            nocache: spec.no_cache,
            rm: true,
            forcerm: true,
            version: if buildkit {
                BuilderVersion::BuilderBuildKit
            } else {
                BuilderVersion::BuilderV1
            },
            session: buildkit.then(|| format!("devloop-{}", spec.tag.replace(['/', ':'], "-"))),
            ..Default::default()
        }
    }
}

/// Streams the context tar of `spec` from a blocking task: the request body, and the task (its error explains a
/// broken upload better than the daemon can).
fn send_context(
    spec: &BuildSpec,
) -> (
    tokio::task::JoinHandle<Result<String, crate::context::ContextError>>,
    impl futures_util::Stream<Item = Result<bytes::Bytes, std::io::Error>> + use<>,
) {
    let (tx, mut rx) = mpsc::channel(4);
    let files = spec.context.clone();
    let dockerfile = spec.dockerfile.clone();
    let writer = tokio::task::spawn_blocking(move || {
        let mut w = ChannelWriter {
            tx: tx.clone(),
            buf: Vec::with_capacity(CHUNK),
        };
        let result = crate::context::write_tar(&files, &dockerfile, &mut w).and_then(|name| {
            w.flush()
                .map(|_| name)
                .map_err(|source| crate::context::ContextError::WriteTar { source })
        });
        if let Err(e) = &result {
            // The daemon must not build from a truncated context: fail the request body.
            let _ = tx.blocking_send(Err(std::io::Error::other(e.to_string())));
        }
        result
    });
    (
        writer,
        futures_util::stream::poll_fn(move |cx| rx.poll_recv(cx)),
    )
}

impl Builder for DockerBuilder {
    async fn build(
        &self,
        spec: &BuildSpec,
        events: &EventSink,
        cancel: &CancellationToken,
    ) -> Result<BuiltImage, BuildError> {
        let image = spec.image.as_str();
        let dockerfile_name = crate::context::dockerfile_name(&spec.context, &spec.dockerfile)
            .map_err(|e| BuildError::Context {
                image: image.to_string(),
                message: e.to_string(),
            })?;
        let (writer, body) = send_context(spec);
        let options = self.options(spec, dockerfile_name);
        let mut stream =
            self.docker
                .build_image(options, None, Some(bollard::body_try_stream(body)));
        let mut progress = Progress {
            image,
            events,
            step: None,
            tail: VecDeque::new(),
            image_id: None,
            announced: HashSet::new(),
        };
        loop {
            let item = tokio::select! {
                _ = cancel.cancelled() => {
                    // Dropping the stream closes the connection; the daemon then stops the build.
                    drop(stream);
                    writer.abort();
                    return Err(BuildError::Cancelled { image: image.to_string() });
                }
                item = stream.next() => item,
            };
            let Some(item) = item else { break };
            match item {
                Ok(info) => {
                    if let Some(s) = &info.stream {
                        for l in s.lines() {
                            progress.line(l);
                        }
                    }
                    match &info.aux {
                        Some(BuildInfoAux::Default(id)) => progress.image_id = id.id.clone(),
                        Some(BuildInfoAux::BuildKit(status)) => {
                            if let Some(err) = progress.buildkit(status) {
                                return Err(progress.failed(err));
                            }
                        }
                        None => {}
                    }
                }
                Err(bollard::errors::Error::DockerStreamError { error }) => {
                    // The context writer's own error explains a broken upload better than the daemon's.
                    if let Ok(Err(e)) = writer.await
                        && let Some(e) = context_failure(image, e)
                    {
                        return Err(e);
                    }
                    return Err(progress.failed(error.trim().to_string()));
                }
                Err(e) => {
                    // A context that failed to send (a file changed, one unreadable) aborts the request body, which
                    // the client reports as a transport error: the writer's own error is the news then. If the
                    // writer only stopped because nobody read any more, the daemon went away (stopped,
                    // restarted) — that, not the upload it cut off, is what to say.
                    if let Ok(Err(ctx)) = writer.await
                        && let Some(e) = context_failure(image, ctx)
                    {
                        return Err(e);
                    }
                    if is_connection_error(&e) {
                        return Err(unreachable(format!(
                            "the daemon went away while building `{image}` ({e})"
                        )));
                    }
                    return Err(match e {
                        bollard::errors::Error::DockerResponseServerError { message, .. } => {
                            progress.failed(message)
                        }
                        other if is_connection_error(&other) => unreachable(other.to_string()),
                        other => progress.failed(other.to_string()),
                    });
                }
            }
        }
        match writer.await {
            Ok(Ok(_)) => {}
            Ok(Err(e)) => {
                let message = e.to_string();
                return Err(context_failure(image, e).unwrap_or(BuildError::Context {
                    image: image.to_string(),
                    message,
                }));
            }
            Err(e) => return Err(Self::api_err(image, e)),
        }
        let image_id = match progress.image_id.take() {
            Some(id) => id,
            None => self
                .image_id(&spec.tag)
                .await?
                .ok_or_else(|| progress.failed("the daemon reported no image".to_string()))?,
        };
        Ok(BuiltImage { image_id })
    }

    async fn image_id(&self, reference: &str) -> Result<Option<String>, BuildError> {
        match self.docker.inspect_image(reference).await {
            Ok(i) => Ok(i.id),
            Err(bollard::errors::Error::DockerResponseServerError {
                status_code: 404, ..
            }) => Ok(None),
            Err(e) if is_connection_error(&e) => Err(unreachable(e.to_string())),
            Err(e) => Err(Self::api_err(reference, e)),
        }
    }

    async fn tag(&self, image_id: &str, repository: &str, tag: &str) -> Result<(), BuildError> {
        let options = TagImageOptions {
            repo: Some(repository.to_string()),
            tag: Some(tag.to_string()),
        };
        self.docker
            .tag_image(image_id, Some(options))
            .await
            .map_err(|e| Self::api_err(repository, e))
    }

    async fn push(
        &self,
        image: &str,
        repository: &str,
        tag: &str,
        events: &EventSink,
    ) -> Result<String, BuildError> {
        let reference = crate::tag::with_tag(repository, tag);
        let push_err = |message: String| {
            let auth = [
                "unauthorized",
                "authentication required",
                "denied",
                "no basic auth",
            ]
            .iter()
            .any(|m| message.to_lowercase().contains(m));
            BuildError::Push {
                image: image.to_string(),
                reference: reference.clone(),
                hint: Some(if auth {
                    format!(
                        "log in with `docker login {}` (devloop reads `$DOCKER_CONFIG/config.json`, default `~/.docker/config.json`)",
                        registry_of(repository)
                    )
                } else {
                    "check that the registry is reachable from the Docker daemon".to_string()
                }),
                message,
            }
        };
        let credentials = credentials_for(repository).await;
        let started = Instant::now();
        events.emit(Event::PushStarted {
            image: image.to_string(),
            tag: reference.clone(),
        });
        let options = PushImageOptions {
            tag: Some(tag.to_string()),
            ..Default::default()
        };
        let mut stream = self
            .docker
            .push_image(repository, Some(options), credentials);
        let mut digest = None;
        while let Some(item) = stream.next().await {
            let info = item.map_err(|e| push_err(stream_message(e)))?;
            if let Some(detail) = info.error_detail {
                return Err(push_err(detail.message.unwrap_or_default()));
            }
            // The final status line reads `<tag>: digest: sha256:… size: N` (bollard's type carries no digest).
            if let Some(status) = info.status
                && let Some(rest) = status.split("digest: ").nth(1)
            {
                digest = rest.split_whitespace().next().map(str::to_string);
            }
        }
        let digest = match digest {
            Some(d) => d,
            None => self
                .remote_digest(repository, tag)
                .await?
                .ok_or_else(|| push_err("the registry reported no digest".into()))?,
        };
        events.emit(Event::Pushed {
            image: image.to_string(),
            reference: crate::tag::with_digest(repository, tag, &digest),
            digest: digest.clone(),
            duration_ms: started.elapsed().as_millis() as u64,
        });
        Ok(digest)
    }

    async fn remote_digest(
        &self,
        repository: &str,
        tag: &str,
    ) -> Result<Option<String>, BuildError> {
        let reference = crate::tag::with_tag(repository, tag);
        let credentials = credentials_for(repository).await;
        match self
            .docker
            .inspect_registry_image(&reference, credentials)
            .await
        {
            Ok(d) => Ok(d.descriptor.digest),
            Err(bollard::errors::Error::DockerResponseServerError { status_code, .. })
                if status_code == 404 || status_code == 401 || status_code == 403 =>
            {
                Ok(None)
            }
            Err(e) if is_connection_error(&e) => Err(unreachable(e.to_string())),
            // A registry that cannot be asked means "not known to be there": build and push normally.
            Err(e) => {
                tracing::debug!(%reference, error = %e, "registry digest lookup failed");
                Ok(None)
            }
        }
    }

    async fn load(
        &self,
        cluster: &super::load::LocalCluster,
        image: &str,
        reference: &str,
        events: &EventSink,
    ) -> Result<Vec<String>, BuildError> {
        super::load::load(&self.docker, cluster, image, reference, events).await
    }
}

fn stream_message(e: bollard::errors::Error) -> String {
    match e {
        bollard::errors::Error::DockerStreamError { error } => error,
        bollard::errors::Error::DockerResponseServerError { message, .. } => message,
        other => other.to_string(),
    }
}

/// What the context writer's error means for the build: a file that changed while it was sent, a context that
/// cannot be read; `None` when writing stopped because the daemon stopped reading (its own error says why).
fn context_failure(image: &str, e: crate::context::ContextError) -> Option<BuildError> {
    use crate::context::ContextError;
    match e {
        ContextError::FileChanged { path, detail } => Some(BuildError::ContextChanged {
            image: image.to_string(),
            path,
            detail,
        }),
        ContextError::WriteTar { .. } => None,
        other => Some(BuildError::Context {
            image: image.to_string(),
            message: other.to_string(),
        }),
    }
}

fn is_connection_error(e: &bollard::errors::Error) -> bool {
    matches!(
        e,
        bollard::errors::Error::HyperResponseError { .. }
            | bollard::errors::Error::HyperLegacyError { .. }
            | bollard::errors::Error::SocketNotFoundError(_)
            | bollard::errors::Error::RequestTimeoutError
            | bollard::errors::Error::IOError { .. }
    )
}

/// The registry host of a repository, as credential stores key it.
fn registry_of(repository: &str) -> String {
    let normalized = crate::tag::normalize_repository(repository);
    let host = normalized.split('/').next().unwrap_or("docker.io");
    if host == "docker.io" {
        "https://index.docker.io/v1/".to_string()
    } else {
        host.to_string()
    }
}

/// Credentials for the repository's registry from the Docker config (`auths`, `credsStore`, `credHelpers`).
/// Helpers are external programs: they run on a blocking thread. No credentials is not an error — the
/// registry then answers 401 and the push error says how to log in. Credentials are never logged.
async fn credentials_for(repository: &str) -> Option<DockerCredentials> {
    let server = registry_of(repository);
    let lookup = server.clone();
    let found = tokio::task::spawn_blocking(move || docker_credential::get_credential(&lookup))
        .await
        .ok()?;
    match found {
        Ok(docker_credential::DockerCredential::UsernamePassword(username, password)) => {
            Some(DockerCredentials {
                username: Some(username),
                password: Some(password),
                serveraddress: Some(server),
                ..Default::default()
            })
        }
        Ok(docker_credential::DockerCredential::IdentityToken(token)) => Some(DockerCredentials {
            identitytoken: Some(token),
            serveraddress: Some(server),
            ..Default::default()
        }),
        Err(e) => {
            // Only the kind of failure is logged: helper output may contain secrets.
            tracing::debug!(registry = %server, error = %credential_error_kind(&e), "no registry credentials");
            None
        }
    }
}

fn credential_error_kind(e: &docker_credential::CredentialRetrievalError) -> &'static str {
    use docker_credential::CredentialRetrievalError as E;
    match e {
        E::HelperCommunicationError => "helper communication error",
        E::MalformedHelperResponse => "malformed helper response",
        E::HelperFailure { .. } => "helper failed",
        E::CredentialDecodingError => "cannot decode credential",
        E::CredentialMismatchError => "credential mismatch",
        E::NoCredentialConfigured => "no credential configured",
        E::ConfigNotFound => "no docker config",
        E::ConfigReadError => "cannot read docker config",
    }
}
