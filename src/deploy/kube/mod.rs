//! Deploy, Kubernetes backend: rendered objects → server-side apply (field manager `devloop`); namespaces, CRDs,
//! StorageClasses and PersistentVolumes first; immutable-field recreation of objects devloop owns; prune and delete
//! through the deployment's ApplySet (`applyset.rs`: the project *and the namespace it lives in*). Only objects
//! that are members of this deployment's set *and* were applied by devloop (a `devloop` Apply entry in
//! `managedFields`, no owner references) are ever deleted: the same project elsewhere in the cluster is never
//! touched.
//!
//! The folder's face: the target, the plan, the connection options and the `Deployer` seam. Each concept is a
//! file, lowest first: `ownership.rs` (devloop's labels, what devloop applied), `date.rs`, `failure.rs` (API
//! answers → `DeployError`), `connection.rs` (kubeconfig, probe), `discovery.rs`, `plan.rs`, `session.rs` (what
//! this process applied), `parent.rs` (the ApplySet parent), `order.rs`, `namespace.rs`, `apply.rs` (server-side
//! apply, re-creation), `members.rs`, `inventory.rs` (what a deployment holds, for `devloop status`),
//! `delete.rs`, `prune.rs`, `deployment.rs` (one deploy, step by step).

mod apply;
mod blue_green;
mod connection;
mod delete;
mod deployment;
mod discovery;
mod exec;
mod failure;
mod inventory;
mod members;
mod namespace;
mod order;
mod ownership;
mod parent;
mod plan;
mod prune;
mod session;
mod sync;

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests;

use std::collections::{BTreeSet, HashMap};
use std::path::PathBuf;

use kube::Client;
use serde_json::Value;
use tokio::sync::Mutex;
use tokio_util::sync::CancellationToken;

use crate::deploy::applyset::{ApplySet, Contents, GroupKind};
use crate::deploy::{DeleteOptions, DeployError, DeployedSet, Deployer, ObjectRef, SyncRequest};
use crate::event::EventSink;
use discovery::Resolved;
use session::{ObjectKey, Remembered};

pub use blue_green::CopyState;
pub use exec::{ExecOutcome, ExecOutput, RunningContainer, RunningPod};
pub use inventory::Inventory;
pub use ownership::{FIELD_MANAGER, MANAGED_BY, PROJECT_LABEL};

/// How many objects are applied at once.
const APPLY_CONCURRENCY: usize = 16;

/// How to reach the cluster (flags and environment, resolved like kubectl).
#[derive(Debug, Clone, Default)]
pub struct ClusterOptions {
    /// `--kubeconfig`; else `$KUBECONFIG`, else `~/.kube/config`, else in-cluster config.
    pub kubeconfig: Option<PathBuf>,
    /// `--kube-context`; else the kubeconfig's current context.
    pub context: Option<String>,
    /// `-n`; else the context's namespace, else `default`.
    pub namespace: Option<String>,
}

/// The objects to apply: the output of the render stage (a blue/green release adds what its prune must leave and
/// what it applies with force).
#[derive(Debug, Clone, Default)]
pub struct KubePlan {
    pub objects: Vec<Value>,
    /// Members prune leaves alone in this deploy although the plan no longer has them (a release's live copies).
    pub keep: Vec<ObjectRef>,
    /// Objects applied with `force` (a release's copies: devloop's own, the switch may own their replicas).
    pub force: Vec<ObjectRef>,
    /// Whether this is a blue/green release. Only a release prunes blue/green copies (label `devloop.dev/color`)
    /// and moves a Service's colour; any other deploy keeps the copies and applies each Service a release
    /// switched with the colour and release annotations the cluster has (it never moves their traffic).
    pub prune_copies: bool,
}

impl KubePlan {
    /// The rendered objects, in render order.
    pub fn new(objects: Vec<Value>) -> KubePlan {
        KubePlan {
            objects,
            ..Default::default()
        }
    }
}

/// The namespaces `objects` name (rendered objects: every namespaced one names its namespace), or `default` when
/// none does. Where a deployment's pods are, for logs.
pub fn namespaces_of(objects: &[Value], default: &str) -> Vec<String> {
    let found: BTreeSet<&str> = objects
        .iter()
        .filter_map(|o| o.pointer("/metadata/namespace").and_then(Value::as_str))
        .filter(|ns| !ns.is_empty())
        .collect();
    if found.is_empty() {
        vec![default.to_string()]
    } else {
        found.into_iter().map(str::to_string).collect()
    }
}

/// A connected cluster, for one project.
pub struct KubeTarget {
    client: Client,
    /// The context in use (for messages).
    pub context: String,
    /// The server URL (for messages).
    pub server: String,
    /// The API server's version (`gitVersion`), as it answered when devloop connected.
    pub server_version: String,
    /// Namespace for namespaced objects that name none.
    pub namespace: String,
    /// Whether `namespace` came from `-n` (then objects that name another namespace were refused at render).
    pub namespace_explicit: bool,
    project: String,
    /// This deployment's ApplySet, once known (from the first deploy, or [`KubeTarget::locate`]).
    applyset: Mutex<Option<ApplySet>>,
    /// What the parent records, as devloop last wrote it (saves a write when nothing changed).
    recorded: Mutex<Option<Contents>>,
    /// API resources by group-kind (for listing the members of a set).
    kinds: Mutex<HashMap<GroupKind, Option<Resolved>>>,
    force_conflicts: bool,
    resources: Mutex<HashMap<(String, String, String), Option<Resolved>>>,
    /// What this process applied, by object: the digest of the applied form and the result. `None` until the
    /// first deploy. Lets the dev loop skip objects whose rendered form did not change and prune without
    /// sweeping every resource type.
    session: Mutex<Option<HashMap<ObjectKey, Remembered>>>,
    /// File sync: each container's transport, and what each image had synced since it was built.
    sync_memory: Mutex<sync::SyncMemory>,
}

impl KubeTarget {
    /// Connects and checks that the API server answers, so an unreachable cluster or expired credentials are
    /// reported before anything else happens.
    pub async fn connect(
        opts: &ClusterOptions,
        project: &str,
        force_conflicts: bool,
    ) -> Result<KubeTarget, DeployError> {
        let (config, context) = connection::load_config(opts).await?;
        let server = config.cluster_url.to_string();
        let namespace = opts
            .namespace
            .clone()
            .unwrap_or_else(|| config.default_namespace.clone());
        let client = Client::try_from(config).map_err(|e| DeployError::Config {
            message: format!("cannot create a client for context `{context}`: {e}"),
            hint: None,
        })?;
        let server_version = connection::probe(&client, &context, &server).await?;
        Ok(KubeTarget {
            client,
            context,
            server,
            server_version,
            namespace,
            namespace_explicit: opts.namespace.is_some(),
            project: project.to_string(),
            applyset: Mutex::new(None),
            recorded: Mutex::new(None),
            kinds: Mutex::new(HashMap::new()),
            force_conflicts,
            resources: Mutex::new(HashMap::new()),
            session: Mutex::new(None),
            sync_memory: Mutex::new(sync::SyncMemory::default()),
        })
    }

    /// The label selector of everything this project deployed.
    pub fn selector(&self) -> String {
        format!(
            "{}={},{}={}",
            MANAGED_BY.0, MANAGED_BY.1, PROJECT_LABEL, self.project
        )
    }

    /// The kube client (for logs, port-forwards and status checks).
    pub fn client(&self) -> &Client {
        &self.client
    }

    /// The namespace a deployment of `objects` lives in (its ApplySet parent's): `-n` when given; else the one
    /// namespace every namespaced object names (a kustomization's `namespace:`); else the context's.
    pub fn home_namespace(&self, objects: &[Value]) -> String {
        if self.namespace_explicit {
            return self.namespace.clone();
        }
        let named: BTreeSet<&str> = objects
            .iter()
            .filter_map(|o| o.pointer("/metadata/namespace").and_then(Value::as_str))
            .filter(|ns| !ns.is_empty())
            .collect();
        match named.len() {
            1 => named.into_iter().next().unwrap_or_default().to_string(),
            _ => self.namespace.clone(),
        }
    }

    /// Sets which deployment [`Deployer::delete_all`] removes: that of `plan`'s objects (for `devloop delete`,
    /// which deploys nothing first).
    pub async fn locate(&self, plan: &KubePlan) {
        let set = ApplySet::new(&self.project, &self.home_namespace(&plan.objects));
        *self.applyset.lock().await = Some(set);
    }
}

impl Deployer for KubeTarget {
    type Plan = KubePlan;

    async fn deploy(
        &self,
        plan: &KubePlan,
        events: &EventSink,
        cancel: &CancellationToken,
    ) -> Result<DeployedSet, DeployError> {
        self.roll_out(plan, events, cancel).await
    }

    fn can_sync(&self) -> bool {
        true
    }

    async fn sync(&self, plan: &KubePlan, req: &SyncRequest<'_>) -> Result<usize, DeployError> {
        self.sync_containers(plan, req).await
    }

    async fn delete_all(
        &self,
        opts: DeleteOptions,
        events: &EventSink,
    ) -> Result<Vec<ObjectRef>, DeployError> {
        self.remove_deployment(opts, events).await
    }
}
