//! Deploy stage: a plan (rendered objects for Kubernetes) → what is running, and its removal. The `Deployer`
//! trait is the seam the runner drives; `kube/` is the Kubernetes backend (server-side apply, prune, delete),
//! `docker/` the local Docker one. Deployers emit events and never print; they never change or delete what devloop
//! did not create.

pub mod applyset;
pub mod blue_green;
pub mod docker;
pub mod kube;

use std::future::Future;

use serde::Serialize;
use tokio_util::sync::CancellationToken;

use crate::event::EventSink;

/// Identifies one Kubernetes object.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct ObjectRef {
    /// `apps/v1`, `v1`, …
    pub api_version: String,
    pub kind: String,
    /// `None` for cluster-scoped objects.
    pub namespace: Option<String>,
    pub name: String,
}

impl std::fmt::Display for ObjectRef {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let kind = self.kind.to_lowercase();
        match &self.namespace {
            Some(ns) => write!(f, "{kind}/{} (namespace `{ns}`)", self.name),
            None => write!(f, "{kind}/{}", self.name),
        }
    }
}

impl ObjectRef {
    /// `deployment/api`: how kubectl users name objects.
    pub fn short(&self) -> String {
        format!("{}/{}", self.kind.to_lowercase(), self.name)
    }

    /// The API group (`""` for core).
    pub fn group(&self) -> &str {
        self.api_version
            .rsplit_once('/')
            .map(|(g, _)| g)
            .unwrap_or("")
    }
}

/// What an apply did to one object.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub enum Change {
    Created,
    Configured,
    /// The apply changed nothing (the server did not write).
    Unchanged,
    /// Deleted and created again because a field that cannot change did (a Job's template, a Pod's spec).
    Recreated,
}

/// One object as the cluster answered the apply.
#[derive(Debug, Clone, PartialEq)]
pub struct AppliedObject {
    pub reference: ObjectRef,
    pub change: Change,
    /// `metadata.generation` after the apply (0 when the kind has none).
    pub generation: i64,
    /// The full object the server returned (status included).
    pub object: serde_json::Value,
}

/// The result of one deploy: what was applied and what was pruned.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct DeployedSet {
    pub applied: Vec<AppliedObject>,
    pub pruned: Vec<ObjectRef>,
    /// Namespaces devloop had to create (they are kept on delete).
    pub created_namespaces: Vec<String>,
}

/// How `delete` behaves.
#[derive(Debug, Clone, Copy, Default)]
pub struct DeleteOptions {
    /// List what would be deleted, delete nothing.
    pub dry_run: bool,
    /// Wait until the objects are gone.
    pub wait: bool,
}

/// Why a deploy, status check or delete failed.
#[derive(Debug, thiserror::Error)]
pub enum DeployError {
    #[error(
        "cannot reach the cluster `{context}` at `{server}`: {message}{}",
        crate::hint::suffix(hint)
    )]
    Unreachable {
        context: String,
        server: String,
        message: String,
        hint: Option<String>,
    },
    #[error("{message}{}", crate::hint::suffix(hint))]
    Config {
        message: String,
        hint: Option<String>,
    },
    #[error("{object}: {message}{}", crate::hint::suffix(hint))]
    Apply {
        object: String,
        message: String,
        hint: Option<String>,
    },
    #[error("{message}{}", crate::hint::suffix(hint))]
    Unserved {
        message: String,
        hint: Option<String>,
    },
    #[error("{message}{}", crate::hint::suffix(hint))]
    Api {
        message: String,
        hint: Option<String>,
    },
    #[error("{0}")]
    Status(String),
    #[error("cancelled")]
    Cancelled,
}

impl DeployError {
    /// Environment problems (exit 2) as opposed to pipeline failures (exit 1).
    pub fn is_environment(&self) -> bool {
        matches!(
            self,
            DeployError::Unreachable { .. } | DeployError::Config { .. }
        )
    }
}

/// The seam between the runner and a deploy target.
pub trait Deployer: Send + Sync {
    /// What the target deploys (rendered objects for Kubernetes).
    type Plan: Send + Sync;

    /// Makes the target match `plan`: applies it and prunes what this project deployed before that `plan` no
    /// longer has.
    fn deploy(
        &self,
        plan: &Self::Plan,
        events: &EventSink,
        cancel: &CancellationToken,
    ) -> impl Future<Output = Result<DeployedSet, DeployError>> + Send;

    /// Removes everything this project deployed; returns what was (or, with `dry_run`, would be) deleted.
    fn delete_all(
        &self,
        opts: DeleteOptions,
        events: &EventSink,
    ) -> impl Future<Output = Result<Vec<ObjectRef>, DeployError>> + Send;

    /// Whether [`Deployer::sync`] can update running containers (otherwise sync candidates are rebuilt at once).
    fn can_sync(&self) -> bool {
        false
    }

    /// File sync of `devloop dev`: copies `req.copy` into, and deletes `req.delete` from, the running containers
    /// that `plan` runs from artifact `req.image`, then runs `req.hooks`' container hooks in each of them, instead
    /// of a rebuild. Returns how many containers were updated; 0 when none runs it or the target cannot sync, and
    /// the caller rebuilds.
    fn sync(
        &self,
        plan: &Self::Plan,
        req: &SyncRequest<'_>,
    ) -> impl Future<Output = Result<usize, DeployError>> + Send {
        let _ = (plan, req);
        async { Ok(0) }
    }

    /// `devloop dev`, a rebuild starting: stops the running containers of the images `image_ids` (the artifacts
    /// whose new images are being built) while the builds run, so that only creating and starting their
    /// replacements is left after them. They are stopped, not removed: [`Deployer::restore`] starts them again when
    /// no build replaces them (it failed, or newer content made it moot). Returns what it stopped. Targets that
    /// roll out by themselves (Kubernetes) stop nothing.
    fn prepare_replace(
        &self,
        image_ids: &[String],
    ) -> impl Future<Output = Result<Vec<Stopped>, DeployError>> + Send {
        let _ = image_ids;
        async { Ok(Vec::new()) }
    }

    /// Starts again containers [`Deployer::prepare_replace`] stopped; returns the `object`s it started (one removed
    /// meanwhile, by a deploy, is skipped).
    fn restore(
        &self,
        stopped: &[Stopped],
    ) -> impl Future<Output = Result<Vec<String>, DeployError>> + Send {
        let _ = stopped;
        async { Ok(Vec::new()) }
    }
}

/// A container [`Deployer::prepare_replace`] stopped ahead of its replacement: kept, so that it can start again.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Stopped {
    /// The target's ID of the container.
    pub id: String,
    /// How events name it (`container/web`).
    pub object: String,
}

/// Every `Ok` of concurrent per-object work, or its error: the one error as is, several as one list naming how
/// many `what` failed (`"objects could not be applied"`).
pub(crate) fn all_or_errors<T>(
    results: Vec<Result<T, DeployError>>,
    what: &str,
) -> Result<Vec<T>, DeployError> {
    let mut oks = Vec::with_capacity(results.len());
    let mut errors = Vec::new();
    for r in results {
        match r {
            Ok(v) => oks.push(v),
            Err(e) => errors.push(e),
        }
    }
    match errors.len() {
        0 => Ok(oks),
        1 => Err(errors.remove(0)),
        n => Err(DeployError::Api {
            message: format!(
                "{n} {what}:\n{}",
                errors
                    .iter()
                    .map(|e| format!("- {e}"))
                    .collect::<Vec<_>>()
                    .join("\n")
            ),
            hint: None,
        }),
    }
}

/// One sync of one artifact's containers.
#[derive(Debug, Clone)]
pub struct SyncRequest<'a> {
    /// The artifact's image name as configured.
    pub image: &'a str,
    /// The reference the deployed plan runs for it (after default-repo rewriting), e.g. `reg:5000/api:3f2a…`.
    pub reference: String,
    /// Changed files and where they go.
    pub copy: Vec<SyncFile>,
    /// Absolute container paths of files deleted locally.
    pub delete: Vec<String>,
    /// The artifact's `sync.hooks`; the target runs the container ones in each container it synced (the runner
    /// runs the host ones).
    pub hooks: &'a crate::config::hooks::Hooks,
}

/// A changed file and where it goes in the container, with the attributes the image gives it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SyncFile {
    pub local: std::path::PathBuf,
    /// Absolute path in the container.
    pub dest: String,
    /// Permission bits: the local file's, or the Dockerfile's `--chmod`.
    pub mode: u32,
    /// The Dockerfile's `--chown` (`user[:group]`, names or IDs) when it has one; `None`: root, as `COPY` does.
    pub owner: Option<String>,
}

impl SyncFile {
    /// The numeric owner: root, or the `--chown` IDs (`uid[:gid]`; the group defaults to the uid). A name would
    /// need the container's user database: the sync fails and the caller rebuilds.
    pub fn owner_ids(&self) -> Result<(u64, u64), DeployError> {
        let Some(owner) = &self.owner else {
            return Ok((0, 0));
        };
        let (user, group) = owner.split_once(':').unwrap_or((owner, owner));
        match (user.parse(), group.parse()) {
            (Ok(u), Ok(g)) => Ok((u, g)),
            _ => Err(DeployError::Api {
                message: format!(
                    "sync: `{}` is owned by `{owner}` in the image, and devloop sets the owners of synced files by ID only",
                    self.dest
                ),
                hint: Some(
                    "write `--chown` with numeric IDs (`--chown=33:33`) to sync such files".into(),
                ),
            }),
        }
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests;
