//! Build stage: a build spec (context, Dockerfile, args, tag) → an image in the daemon, and pushes or loads into
//! local cluster nodes. The `Builder` trait is the seam; `docker.rs` is the real backend. Builders never decide
//! *whether* to build, push or load (the cache and the runner do) and never print (they emit events).

pub mod artifacts;
pub mod docker;
pub mod dockerfile;
pub mod load;

use std::collections::BTreeMap;
use std::future::Future;
use std::path::PathBuf;
use std::sync::Arc;

use tokio_util::sync::CancellationToken;

use crate::context::ContextFiles;
use crate::event::EventSink;
use crate::hint::{Hint, suffix as hint_suffix};
pub use artifacts::ArtifactsFileError;

/// Everything one build needs, decided before the builder is called.
#[derive(Debug, Clone)]
pub struct BuildSpec {
    /// The artifact's image name as in the config (for events).
    pub image: String,
    /// The full reference to tag the result with (`repository:tag`).
    pub tag: String,
    pub context: Arc<ContextFiles>,
    pub dockerfile: PathBuf,
    pub target: Option<String>,
    /// Evaluated build args.
    pub build_args: BTreeMap<String, String>,
    pub platform: Option<String>,
    /// `--no-cache`: do not use the daemon's layer cache either.
    pub no_cache: bool,
    /// Only the classic builder makes this image as `docker build` does: the context stream carries the
    /// Dockerfile or `.dockerignore` only for the build, and an instruction may copy them (BuildKit would).
    pub classic_only: bool,
}

/// An image the daemon now has.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BuiltImage {
    pub image_id: String,
}

/// Why a build, tag or push failed.
#[derive(Debug, thiserror::Error)]
pub enum BuildError {
    #[error(
        "cannot reach the Docker daemon at `{host}`: {message}{}",
        hint_suffix(hint)
    )]
    DaemonUnreachable {
        host: String,
        message: String,
        hint: Option<String>,
    },
    #[error("{image}: build failed{}: {message}", step.as_ref().map(|s| format!(" at `{s}`")).unwrap_or_default())]
    Failed {
        image: String,
        step: Option<String>,
        message: String,
        output: Vec<String>,
    },
    #[error("{image}: build cancelled")]
    Cancelled { image: String },
    #[error("{image}: cannot read the build context: {message}")]
    Context { image: String, message: String },
    /// A file of the context changed between hashing and sending (an editor's save, a formatter): the daemon
    /// would have built content the cache key does not describe, so the upload was stopped.
    #[error(
        "{image}: `{path}` changed while the build context was being sent ({detail}){}",
        Hint("the next build picks up the new content")
    )]
    ContextChanged {
        image: String,
        path: std::path::PathBuf,
        detail: String,
    },
    #[error("{image}: cannot push `{reference}`: {message}{}", hint_suffix(hint))]
    Push {
        image: String,
        reference: String,
        message: String,
        hint: Option<String>,
    },
    #[error(
        "{image}: cannot load `{reference}` into node `{node}`: {message}{}",
        hint_suffix(hint)
    )]
    Load {
        image: String,
        /// The name the node would have given the image.
        reference: String,
        node: String,
        message: String,
        hint: Option<String>,
    },
    #[error(
        "the kube context names {cluster}, but the Docker daemon runs none of its nodes{}",
        hint_suffix(hint)
    )]
    NoNodes {
        cluster: String,
        hint: Option<String>,
    },
    #[error("{image}: docker API call failed: {message}")]
    Api { image: String, message: String },
    #[error("{image}: {message}")]
    Skipped { image: String, message: String },
    #[error("{failed} of {total} artifacts failed to build: {}", images.join(", "))]
    Several {
        failed: usize,
        total: usize,
        images: Vec<String>,
    },
}

impl BuildError {
    /// Environment problems (exit 2) as opposed to pipeline failures (exit 1).
    pub fn is_environment(&self) -> bool {
        matches!(
            self,
            BuildError::DaemonUnreachable { .. } | BuildError::NoNodes { .. }
        )
    }

    /// A file changed while the context was sent: newer content exists, so this build is superseded rather than
    /// failed.
    pub fn is_superseded(&self) -> bool {
        matches!(self, BuildError::ContextChanged { .. })
    }
}

/// The seam between devloop and an image builder (Docker Engine API; a fake in runner tests).
pub trait Builder: Send + Sync {
    /// Builds `spec`, emitting progress, honouring `cancel`.
    fn build(
        &self,
        spec: &BuildSpec,
        events: &EventSink,
        cancel: &CancellationToken,
    ) -> impl Future<Output = Result<BuiltImage, BuildError>> + Send;

    /// The ID of a local image (by ID or reference), `None` when the daemon does not have it.
    fn image_id(
        &self,
        reference: &str,
    ) -> impl Future<Output = Result<Option<String>, BuildError>> + Send;

    /// Tags an existing local image as `repository:tag`.
    fn tag(
        &self,
        image_id: &str,
        repository: &str,
        tag: &str,
    ) -> impl Future<Output = Result<(), BuildError>> + Send;

    /// Pushes `repository:tag`; returns the manifest digest (`sha256:…`).
    fn push(
        &self,
        image: &str,
        repository: &str,
        tag: &str,
        events: &EventSink,
    ) -> impl Future<Output = Result<String, BuildError>> + Send;

    /// Loads the local image `reference` into the nodes of `cluster` that lack it; returns the nodes it was loaded
    /// into. The nodes then know it as `load::node_reference(reference)`.
    fn load(
        &self,
        cluster: &load::LocalCluster,
        image: &str,
        reference: &str,
        events: &EventSink,
    ) -> impl Future<Output = Result<Vec<String>, BuildError>> + Send;

    /// The digest the registry holds for `repository:tag`, `None` when it has no such tag.
    fn remote_digest(
        &self,
        repository: &str,
        tag: &str,
    ) -> impl Future<Output = Result<Option<String>, BuildError>> + Send;
}
