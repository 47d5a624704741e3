//! Deploy, Kubernetes backend: rendered objects → server-side apply (field manager `devloop`); namespaces, CRDs,
//! StorageClasses and PersistentVolumes first; immutable-field recreation of objects devloop owns; prune and delete
//! through the deployment's ApplySet (`applyset.rs`: the project *and the namespace it lives in*). Only objects
//! that are members of this deployment's set *and* were applied by devloop (a `devloop` Apply entry in
//! `managedFields`, no owner references) are ever deleted: the same project elsewhere in the cluster is never
//! touched.

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::path::PathBuf;
use std::time::{Duration, Instant};

use futures_util::StreamExt;
use kube::api::{Api, DeleteParams, DynamicObject, ListParams, Patch, PatchParams, PostParams};
use kube::config::{KubeConfigOptions, Kubeconfig};
use kube::core::{GroupVersionKind, Status};
use kube::discovery::{self, ApiCapabilities, ApiResource, Scope};
use kube::{Client, Resource};
use serde_json::Value;
use tokio::sync::Mutex;
use tokio_util::sync::CancellationToken;

use super::applyset::{self, ApplySet, Contents, GroupKind};
use super::{AppliedObject, Change, DeleteOptions, DeployError, DeployedSet, Deployer, ObjectRef};
use crate::event::{Event, EventSink};

/// The field manager devloop applies with.
pub const FIELD_MANAGER: &str = "devloop";
/// The label every object devloop applies carries.
pub const MANAGED_BY: (&str, &str) = ("app.kubernetes.io/managed-by", "devloop");
/// The label naming the project.
pub const PROJECT_LABEL: &str = "devloop.dev/project";
/// How many objects are applied at once.
const APPLY_CONCURRENCY: usize = 16;
/// How long a CRD may take to become Established, or a recreated object to disappear.
const SETTLE_TIMEOUT: Duration = Duration::from_secs(60);

/// An API resource and what it supports.
type Resolved = (ApiResource, ApiCapabilities);
/// An object found in the cluster, with the resource to reach it.
type Found = (ObjectRef, ApiResource, ApiCapabilities);

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

/// The objects to apply: the output of the render stage.
#[derive(Debug, Clone, Default)]
pub struct KubePlan {
    pub objects: Vec<Value>,
}

impl KubePlan {
    /// The rendered objects, in render order.
    pub fn new(rendered: crate::render::Rendered) -> KubePlan {
        KubePlan {
            objects: rendered
                .objects
                .into_iter()
                .map(|o| o.into_value())
                .collect(),
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
}

/// Identifies an object across API versions: group, kind, namespace, name.
type ObjectKey = (String, String, Option<String>, String);

/// An object applied earlier in this process.
#[derive(Clone)]
struct Remembered {
    digest: [u8; 32],
    applied: AppliedObject,
    ar: ApiResource,
    caps: ApiCapabilities,
}

fn object_key(r: &ObjectRef) -> ObjectKey {
    (
        r.group().to_string(),
        r.kind.clone(),
        r.namespace.clone(),
        r.name.clone(),
    )
}

fn form_digest(object: &Value) -> [u8; 32] {
    use sha2::Digest as _;
    sha2::Sha256::digest(serde_json::to_vec(object).unwrap_or_default()).into()
}

impl KubeTarget {
    /// Connects and checks that the API server answers, so an unreachable cluster or expired credentials are
    /// reported before anything else happens.
    pub async fn connect(
        opts: &ClusterOptions,
        project: &str,
        force_conflicts: bool,
    ) -> Result<KubeTarget, DeployError> {
        let (config, context) = load_config(opts).await?;
        let server = config.cluster_url.to_string();
        let namespace = opts
            .namespace
            .clone()
            .unwrap_or_else(|| config.default_namespace.clone());
        let client = Client::try_from(config).map_err(|e| DeployError::Config {
            message: format!("cannot create a client for context `{context}`: {e}"),
            hint: None,
        })?;
        let probe = tokio::time::timeout(Duration::from_secs(15), client.apiserver_version()).await;
        let unreachable = |message: String, hint: &str| DeployError::Unreachable {
            context: context.clone(),
            server: server.clone(),
            message,
            hint: Some(hint.to_string()),
        };
        match probe {
            Err(_) => {
                return Err(unreachable(
                    "no answer within 15 s".into(),
                    "check that the cluster is running and that `kubectl version` works",
                ));
            }
            Ok(Err(kube::Error::Api(s))) if s.code == 401 => {
                return Err(unreachable(
                    "the credentials were rejected (401 Unauthorized)".into(),
                    "your credentials may have expired: log in again (e.g. refresh your cloud CLI login) and retry",
                ));
            }
            Ok(Err(e)) => {
                return Err(unreachable(
                    e.to_string(),
                    "check that the cluster is running and that `kubectl version` works",
                ));
            }
            Ok(Ok(_)) => {}
        }
        Ok(KubeTarget {
            client,
            context,
            server,
            namespace,
            namespace_explicit: opts.namespace.is_some(),
            project: project.to_string(),
            applyset: Mutex::new(None),
            recorded: Mutex::new(None),
            kinds: Mutex::new(HashMap::new()),
            force_conflicts,
            resources: Mutex::new(HashMap::new()),
            session: Mutex::new(None),
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

    /// The ApplySet of this deployment; `home` is used when none is known yet.
    async fn applyset_or(&self, home: impl FnOnce() -> String) -> ApplySet {
        let mut set = self.applyset.lock().await;
        set.get_or_insert_with(|| ApplySet::new(&self.project, &home()))
            .clone()
    }

    fn parent_api(&self, set: &ApplySet) -> Api<k8s_openapi::api::core::v1::ConfigMap> {
        Api::namespaced(self.client.clone(), &set.namespace)
    }

    /// What the set's parent records; `None` when there is no parent (nothing deployed). Fails when the
    /// ConfigMap is not this set's parent.
    async fn read_parent(&self, set: &ApplySet) -> Result<Option<Contents>, DeployError> {
        let what = format!("configmap/{} (namespace `{}`)", set.name, set.namespace);
        let parent = self
            .parent_api(set)
            .get_opt(&set.name)
            .await
            .map_err(|e| api_error(&e, &what, Some(("get", &config_map_resource()))))?;
        let Some(parent) = parent else {
            return Ok(None);
        };
        let value = serde_json::to_value(&parent).unwrap_or_default();
        set.read_parent(&value)
            .map(Some)
            .map_err(|message| DeployError::Apply {
                object: what,
                message,
                hint: Some(format!(
                    "devloop records each deployment in this ConfigMap; rename the project (`metadata.name` in \
                     devloop.yaml) or deploy to another namespace, or delete configmap/{} if it is a leftover",
                    set.name
                )),
            })
    }

    /// Applies the set's parent recording `contents` (skipped when that is what devloop last wrote).
    async fn write_parent(&self, set: &ApplySet, contents: &Contents) -> Result<(), DeployError> {
        if self.recorded.lock().await.as_ref() == Some(contents) {
            return Ok(());
        }
        let labels = BTreeMap::from([
            (MANAGED_BY.0.to_string(), MANAGED_BY.1.to_string()),
            (PROJECT_LABEL.to_string(), self.project.clone()),
        ]);
        let parent = set.parent(&labels, contents);
        let mut pp = PatchParams::apply(FIELD_MANAGER);
        pp.force = true;
        let what = format!("configmap/{} (namespace `{}`)", set.name, set.namespace);
        self.parent_api(set)
            .patch(&set.name, &pp, &Patch::Apply(&parent))
            .await
            .map_err(|e| api_error(&e, &what, Some(("patch", &config_map_resource()))))?;
        *self.recorded.lock().await = Some(contents.clone());
        Ok(())
    }

    /// The API resource serving `group`'s `kind` (its preferred version); `None` when not served.
    async fn group_kind_resource(&self, gk: &GroupKind) -> Result<Option<Resolved>, DeployError> {
        if let Some(hit) = self.kinds.lock().await.get(gk) {
            return Ok(hit.clone());
        }
        let found = match discovery::group(&self.client, &gk.0).await {
            Ok(group) => group.recommended_kind(&gk.1),
            Err(kube::Error::Api(s)) if s.code == 404 => None,
            Err(kube::Error::Discovery(_)) => None,
            Err(e) => return Err(api_error(&e, &format!("discovery of `{}`", gk.0), None)),
        };
        self.kinds.lock().await.insert(gk.clone(), found.clone());
        Ok(found)
    }

    /// Every member of `set` in the cluster that devloop applied, over the group-kinds and namespaces `contents`
    /// names: a label-selected list per group-kind and namespace (cluster-wide for cluster-scoped kinds).
    async fn members(
        &self,
        set: &ApplySet,
        contents: &Contents,
    ) -> Result<Vec<Found>, DeployError> {
        let mut lists = Vec::new();
        for gk in &contents.group_kinds {
            let Some((ar, caps)) = self.group_kind_resource(gk).await? else {
                continue;
            };
            if caps.scope == Scope::Namespaced {
                for ns in &contents.namespaces {
                    lists.push((ar.clone(), caps.clone(), Some(ns.clone())));
                }
            } else {
                lists.push((ar, caps, None));
            }
        }
        let lp = ListParams::default().labels(&format!("{}={}", applyset::PART_OF, set.id));
        let found: Vec<Result<Vec<Found>, DeployError>> = futures_util::stream::iter(lists)
            .map(|(ar, caps, ns)| {
                let lp = lp.clone();
                async move {
                    let api = self.api(&ar, &caps, ns.as_deref());
                    match api.list(&lp).await {
                        Ok(list) => Ok(list
                            .items
                            .iter()
                            .filter_map(|o| self.member(o, &ar, set))
                            .map(|r| (r, ar.clone(), caps.clone()))
                            .collect()),
                        // A namespace that is gone, or a type the user may not list, holds nothing to prune.
                        Err(kube::Error::Api(s)) if s.code == 403 || s.code == 404 => {
                            Ok(Vec::new())
                        }
                        Err(e) => Err(api_error(
                            &e,
                            &format!("list {}", ar.plural),
                            Some(("list", &ar)),
                        )),
                    }
                }
            })
            .buffer_unordered(APPLY_CONCURRENCY)
            .collect()
            .await;
        let mut out = Vec::new();
        for l in found {
            out.extend(l?);
        }
        out.sort_by(|a, b| a.0.cmp(&b.0));
        out.dedup_by(|a, b| a.0 == b.0);
        Ok(out)
    }

    /// The API resource serving `gvk`, `None` when the server does not serve it. Cached per target.
    async fn resource(&self, gvk: &GroupVersionKind) -> Result<Option<Resolved>, DeployError> {
        let key = (gvk.group.clone(), gvk.version.clone(), gvk.kind.clone());
        if let Some(hit) = self.resources.lock().await.get(&key) {
            return Ok(hit.clone());
        }
        let found = match discovery::pinned_kind(&self.client, gvk).await {
            Ok(r) => Some(r),
            Err(kube::Error::Api(s)) if s.code == 404 => None,
            // Unknown API groups answer a plain-text 404 that kube reports as an unparsable Status.
            Err(kube::Error::Api(s))
                if s.reason == "Failed to parse error data" && s.code == 404 =>
            {
                None
            }
            Err(kube::Error::Discovery(_)) => None,
            Err(e) => {
                return Err(api_error(
                    &e,
                    &format!("discovery of {}", gvk_text(gvk)),
                    None,
                ));
            }
        };
        self.resources.lock().await.insert(key, found.clone());
        Ok(found)
    }

    /// Why `gvk` is not served: the versions of its group that serve the kind, if any.
    async fn unserved(&self, gvk: &GroupVersionKind, origin: &str) -> DeployError {
        let what = gvk_text(gvk);
        let serving = if gvk.group.is_empty() {
            Vec::new()
        } else {
            match discovery::group(&self.client, &gvk.group).await {
                Ok(g) => g
                    .versions()
                    .filter(|v| {
                        g.versioned_resources(v)
                            .iter()
                            .any(|(ar, _)| ar.kind == gvk.kind)
                    })
                    .map(|v| format!("`{}/{v}`", gvk.group))
                    .collect(),
                Err(_) => Vec::new(),
            }
        };
        let message = format!("{origin}: the cluster does not serve {what}");
        let hint = if serving.is_empty() {
            format!(
                "no version of `{}` is served by this cluster; is the CRD or API installed?",
                if gvk.group.is_empty() {
                    "v1"
                } else {
                    &gvk.group
                }
            )
        } else {
            format!(
                "the cluster serves `{}` as {}: change the manifest's `apiVersion`",
                gvk.kind,
                serving.join(", ")
            )
        };
        DeployError::Unserved {
            message,
            hint: Some(hint),
        }
    }

    fn api(
        &self,
        ar: &ApiResource,
        caps: &ApiCapabilities,
        namespace: Option<&str>,
    ) -> Api<DynamicObject> {
        match (caps.scope == Scope::Namespaced, namespace) {
            (true, Some(ns)) => Api::namespaced_with(self.client.clone(), ns, ar),
            _ => Api::all_with(self.client.clone(), ar),
        }
    }

    /// Applies one object with server-side apply, reading the HTTP status to tell created from configured.
    async fn apply_one(&self, item: &PlannedObject) -> Result<AppliedObject, DeployError> {
        let api = self.api(&item.ar, &item.caps, item.reference.namespace.as_deref());
        let mut pp = PatchParams::apply(FIELD_MANAGER);
        pp.force = self.force_conflicts;
        match self.patch(&api, item, &pp).await {
            Ok(applied) => Ok(applied),
            Err(ApplyFailure::Status(status)) if is_immutable(&status) => {
                self.recreate(&api, item, &pp, &status).await
            }
            Err(ApplyFailure::Status(status)) => {
                Err(status_error(&status, &item.reference, "patch", &item.ar))
            }
            Err(ApplyFailure::Other(e)) => Err(e),
        }
    }

    async fn patch(
        &self,
        api: &Api<DynamicObject>,
        item: &PlannedObject,
        pp: &PatchParams,
    ) -> Result<AppliedObject, ApplyFailure> {
        let req = kube::core::Request::new(api.resource_url())
            .patch(&item.reference.name, pp, &Patch::Apply(&item.object))
            .map_err(|e| {
                ApplyFailure::Other(DeployError::Apply {
                    object: item.reference.to_string(),
                    message: e.to_string(),
                    hint: None,
                })
            })?;
        let res = self
            .client
            .send(req.map(kube::client::Body::from))
            .await
            .map_err(|e| ApplyFailure::Other(api_error(&e, &item.reference.to_string(), None)))?;
        let code = res.status().as_u16();
        let date = res
            .headers()
            .get(http::header::DATE)
            .and_then(|d| d.to_str().ok())
            .and_then(parse_http_date);
        let body =
            res.into_body().collect_bytes().await.map_err(|e| {
                ApplyFailure::Other(api_error(&e, &item.reference.to_string(), None))
            })?;
        if !(200..300).contains(&code) {
            let status = serde_json::from_slice::<Status>(&body).unwrap_or_else(|_| Status {
                code,
                message: String::from_utf8_lossy(&body).trim().to_string(),
                ..Default::default()
            });
            return Err(ApplyFailure::Status(Box::new(status)));
        }
        let object: Value = serde_json::from_slice(&body).map_err(|e| {
            ApplyFailure::Other(DeployError::Apply {
                object: item.reference.to_string(),
                message: format!("unreadable answer: {e}"),
                hint: None,
            })
        })?;
        let change = if code == 201 {
            Change::Created
        } else if let (Some(now), Some(applied_at)) = (date, apply_time(&object)) {
            // A no-op apply writes nothing: devloop's managedFields time stays that of the last real change.
            if now - applied_at >= 2 {
                Change::Unchanged
            } else {
                Change::Configured
            }
        } else {
            Change::Configured
        };
        let generation = object
            .pointer("/metadata/generation")
            .and_then(Value::as_i64)
            .unwrap_or(0);
        Ok(AppliedObject {
            reference: item.reference.clone(),
            change,
            generation,
            object,
        })
    }

    /// An apply failed on a field that cannot change: delete and re-create the object — only if devloop owns it.
    async fn recreate(
        &self,
        api: &Api<DynamicObject>,
        item: &PlannedObject,
        pp: &PatchParams,
        status: &Status,
    ) -> Result<AppliedObject, DeployError> {
        let name = &item.reference.name;
        let existing = api
            .get_opt(name)
            .await
            .map_err(|e| api_error(&e, &item.reference.to_string(), Some(("get", &item.ar))))?;
        let set = self.applyset.lock().await.clone();
        let owned = existing.as_ref().is_some_and(|o| {
            let v = serde_json::to_value(o).unwrap_or_default();
            set.as_ref().is_some_and(|set| Self::owns(&v, set)) || self.owned_before_applysets(&v)
        });
        if !owned {
            return Err(DeployError::Apply {
                object: item.reference.to_string(),
                message: format!("{} (a field that cannot be changed in place)", first_line(&status.message)),
                hint: Some("devloop only re-creates objects it deployed; delete this one yourself if it may go".into()),
            });
        }
        let dp = DeleteParams {
            propagation_policy: Some(kube::api::PropagationPolicy::Background),
            ..Default::default()
        };
        api.delete(name, &dp)
            .await
            .map_err(|e| api_error(&e, &item.reference.to_string(), Some(("delete", &item.ar))))?;
        let deadline = Instant::now() + SETTLE_TIMEOUT;
        loop {
            match api.get_opt(name).await {
                Ok(None) => break,
                Ok(Some(_)) if Instant::now() < deadline => {
                    tokio::time::sleep(Duration::from_millis(100)).await
                }
                Ok(Some(_)) => {
                    return Err(DeployError::Apply {
                        object: item.reference.to_string(),
                        message: "was deleted to be re-created but is still there after 60 s".into(),
                        hint: Some("a finalizer may be holding it: `kubectl get -o yaml` shows `metadata.finalizers`".into()),
                    });
                }
                Err(e) => {
                    return Err(api_error(
                        &e,
                        &item.reference.to_string(),
                        Some(("get", &item.ar)),
                    ));
                }
            }
        }
        let mut applied = match self.patch(api, item, pp).await {
            Ok(a) => a,
            Err(ApplyFailure::Status(s)) => {
                return Err(status_error(&s, &item.reference, "patch", &item.ar));
            }
            Err(ApplyFailure::Other(e)) => return Err(e),
        };
        applied.change = Change::Recreated;
        Ok(applied)
    }

    /// Whether devloop applied this object as a member of `set`: devloop's label, `set`'s part-of label, a
    /// `devloop` Apply manager, and no owner (controllers copy labels onto what they create; those objects are
    /// not devloop's).
    fn owns(object: &Value, set: &ApplySet) -> bool {
        let labelled = label_of(object, MANAGED_BY.0) == Some(MANAGED_BY.1)
            && label_of(object, applyset::PART_OF) == Some(set.id.as_str());
        labelled && applied_by_devloop(object)
    }

    /// Objects devloop applied before it recorded deployments as ApplySets carry the project label and no
    /// part-of label. Only used where devloop applies the same object again (the same name, in the namespace it
    /// is deploying to), never to find objects to delete.
    fn owned_before_applysets(&self, object: &Value) -> bool {
        label_of(object, MANAGED_BY.0) == Some(MANAGED_BY.1)
            && label_of(object, PROJECT_LABEL) == Some(self.project.as_str())
            && label_of(object, applyset::PART_OF).is_none()
            && applied_by_devloop(object)
    }

    /// Resolves every object's API resource; fails listing every kind the cluster does not serve, before
    /// anything is applied. Kinds defined by CRDs in the same plan are resolved after those CRDs exist.
    async fn plan_objects(
        &self,
        plan: &KubePlan,
        set: &ApplySet,
    ) -> Result<(Vec<PlannedObject>, Vec<(GroupVersionKind, Value)>), DeployError> {
        let crd_kinds: BTreeSet<(String, String)> = plan
            .objects
            .iter()
            .filter(|o| o["kind"] == "CustomResourceDefinition")
            .filter_map(|o| {
                Some((
                    o.pointer("/spec/group")?.as_str()?.to_string(),
                    o.pointer("/spec/names/kind")?.as_str()?.to_string(),
                ))
            })
            .collect();
        let mut planned = Vec::new();
        let mut deferred = Vec::new();
        let mut unserved = Vec::new();
        for o in &plan.objects {
            let gvk = gvk_of(o)?;
            match self.resource(&gvk).await? {
                Some((ar, caps)) => planned.push(self.planned(o, ar, caps, set)?),
                None if crd_kinds.contains(&(gvk.group.clone(), gvk.kind.clone())) => {
                    deferred.push((gvk, o.clone()))
                }
                None => unserved.push(self.unserved(&gvk, &describe(o)).await),
            }
        }
        match unserved.len() {
            0 => Ok((planned, deferred)),
            1 => Err(unserved.remove(0)),
            _ => Err(DeployError::Unserved {
                message: unserved
                    .iter()
                    .map(|e| e.to_string())
                    .collect::<Vec<_>>()
                    .join("\n"),
                hint: None,
            }),
        }
    }

    /// The object as devloop applies it: in its namespace (the default one when it names none), labelled as a
    /// member of `set`.
    fn planned(
        &self,
        o: &Value,
        ar: ApiResource,
        caps: ApiCapabilities,
        set: &ApplySet,
    ) -> Result<PlannedObject, DeployError> {
        let name = o
            .pointer("/metadata/name")
            .and_then(Value::as_str)
            .filter(|n| !n.is_empty())
            .ok_or_else(|| DeployError::Apply {
                object: describe(o),
                message: "has no `metadata.name`".into(),
                hint: Some(
                    "`generateName` is not supported by apply: give the object a name".into(),
                ),
            })?;
        let mut object = o.clone();
        if let Some(metadata) = object.get_mut("metadata").and_then(Value::as_object_mut) {
            let labels = metadata
                .entry("labels")
                .or_insert_with(|| Value::Object(Default::default()));
            if let Some(labels) = labels.as_object_mut() {
                labels.insert(applyset::PART_OF.to_string(), Value::String(set.id.clone()));
            }
        }
        let namespace = if caps.scope == Scope::Namespaced {
            let ns = o
                .pointer("/metadata/namespace")
                .and_then(Value::as_str)
                .map(str::to_string)
                .unwrap_or_else(|| self.namespace.clone());
            object["metadata"]["namespace"] = Value::String(ns.clone());
            Some(ns)
        } else {
            if let Some(m) = object.get_mut("metadata").and_then(Value::as_object_mut) {
                m.remove("namespace");
            }
            None
        };
        let reference = ObjectRef {
            api_version: o["apiVersion"].as_str().unwrap_or_default().to_string(),
            kind: o["kind"].as_str().unwrap_or_default().to_string(),
            namespace,
            name: name.to_string(),
        };
        Ok(PlannedObject {
            reference,
            object,
            ar,
            caps,
        })
    }

    /// Creates the namespaces `planned` objects and `set`'s parent need that do not exist and are not among
    /// `declared` (the plan's Namespace objects).
    async fn ensure_namespaces(
        &self,
        planned: impl Iterator<Item = &PlannedObject>,
        declared: &[PlannedObject],
        set: &ApplySet,
        events: &EventSink,
    ) -> Result<Vec<String>, DeployError> {
        let declared: BTreeSet<&str> = declared.iter().map(|p| p.reference.name.as_str()).collect();
        let needed: BTreeSet<&str> = planned
            .filter_map(|p| p.reference.namespace.as_deref())
            .chain([set.namespace.as_str()])
            .filter(|n| !declared.contains(n))
            .collect();
        let api: Api<k8s_openapi::api::core::v1::Namespace> = Api::all(self.client.clone());
        let mut created = Vec::new();
        for ns in needed {
            let exists = api.get_opt(ns).await.map_err(|e| {
                api_error(
                    &e,
                    &format!("namespace/{ns}"),
                    Some((
                        "get",
                        &ApiResource::erase::<k8s_openapi::api::core::v1::Namespace>(&()),
                    )),
                )
            })?;
            if exists.is_some() {
                continue;
            }
            let mut obj = k8s_openapi::api::core::v1::Namespace::default();
            obj.meta_mut().name = Some(ns.to_string());
            // Labelled as devloop's but without the project label: it is never pruned or deleted by devloop,
            // because it may come to hold objects devloop did not create.
            obj.meta_mut().labels = Some(BTreeMap::from([(
                MANAGED_BY.0.to_string(),
                MANAGED_BY.1.to_string(),
            )]));
            match api.create(&PostParams::default(), &obj).await {
                Ok(_) => {}
                Err(kube::Error::Api(s)) if s.code == 409 => continue,
                Err(e) => {
                    return Err(api_error(
                        &e,
                        &format!("namespace/{ns}"),
                        Some((
                            "create",
                            &ApiResource::erase::<k8s_openapi::api::core::v1::Namespace>(&()),
                        )),
                    ));
                }
            }
            events.emit(Event::NamespaceCreated {
                namespace: ns.to_string(),
            });
            created.push(ns.to_string());
        }
        Ok(created)
    }

    /// Waits until the CRDs in `objects` are Established.
    async fn wait_established(&self, crds: &[&PlannedObject]) -> Result<(), DeployError> {
        let deadline = Instant::now() + SETTLE_TIMEOUT;
        for crd in crds {
            let api = self.api(&crd.ar, &crd.caps, None);
            loop {
                let obj = api.get(&crd.reference.name).await.map_err(|e| {
                    api_error(&e, &crd.reference.to_string(), Some(("get", &crd.ar)))
                })?;
                let established = serde_json::to_value(&obj)
                    .ok()
                    .and_then(|v| {
                        v.pointer("/status/conditions")
                            .and_then(Value::as_array)
                            .cloned()
                    })
                    .is_some_and(|c| {
                        c.iter()
                            .any(|c| c["type"] == "Established" && c["status"] == "True")
                    });
                if established {
                    break;
                }
                if Instant::now() > deadline {
                    return Err(DeployError::Apply {
                        object: crd.reference.to_string(),
                        message: "is not Established after 60 s".into(),
                        hint: Some("`kubectl describe crd` shows why".into()),
                    });
                }
                tokio::time::sleep(Duration::from_millis(200)).await;
            }
        }
        // Discovery answers cached before the CRDs existed are stale now.
        self.resources.lock().await.retain(|_, v| v.is_some());
        Ok(())
    }

    async fn apply_all(
        &self,
        items: &[PlannedObject],
        events: &EventSink,
        cancel: &CancellationToken,
    ) -> Result<Vec<AppliedObject>, DeployError> {
        // Futures are built first: a stream closure over borrowed items trips the `Send` check of callers.
        let futures: Vec<_> = items
            .iter()
            .map(|item| async move {
                let digest = form_digest(&item.object);
                let remembered = self
                    .session
                    .lock()
                    .await
                    .as_ref()
                    .and_then(|m| m.get(&object_key(&item.reference)).cloned());
                if let Some(m) = remembered.filter(|m| m.digest == digest) {
                    // Applied by this process in exactly this form: nothing to send.
                    return Ok(AppliedObject {
                        change: Change::Unchanged,
                        ..m.applied
                    });
                }
                let r = self.apply_one(item).await;
                if let Ok(a) = &r
                    && let Some(m) = self.session.lock().await.as_mut()
                {
                    m.insert(
                        object_key(&a.reference),
                        Remembered {
                            digest,
                            applied: a.clone(),
                            ar: item.ar.clone(),
                            caps: item.caps.clone(),
                        },
                    );
                }
                if let Ok(a) = &r {
                    events.emit(Event::Applied {
                        object: a.reference.short(),
                        namespace: a.reference.namespace.clone(),
                        change: change_text(a.change).to_string(),
                    });
                }
                r
            })
            .collect();
        let results: Vec<Result<AppliedObject, DeployError>> = futures_util::stream::iter(futures)
            .buffer_unordered(APPLY_CONCURRENCY)
            .take_until(cancel.cancelled())
            .collect()
            .await;
        if cancel.is_cancelled() {
            return Err(DeployError::Cancelled);
        }
        super::all_or_errors(results, "objects could not be applied")
    }

    /// `o` as a member of `set` found in the cluster, when devloop applied it.
    fn member(&self, o: &DynamicObject, ar: &ApiResource, set: &ApplySet) -> Option<ObjectRef> {
        let v = serde_json::to_value(o).ok()?;
        if !Self::owns(&v, set) {
            return None;
        }
        Some(ObjectRef {
            api_version: ar.api_version.clone(),
            kind: ar.kind.clone(),
            namespace: o.metadata.namespace.clone(),
            name: o.metadata.name.clone()?,
        })
    }

    async fn delete_objects(
        &self,
        targets: &[Found],
        wait: bool,
        pruned: bool,
        events: &EventSink,
    ) -> Result<(), DeployError> {
        // Namespaces last: deleting one deletes what is inside it.
        let (namespaces, others): (Vec<_>, Vec<_>) =
            targets.iter().partition(|(r, _, _)| r.kind == "Namespace");
        for batch in [others, namespaces] {
            let futures: Vec<_> = batch
                .into_iter()
                .map(|(r, ar, caps)| async move {
                    let api = self.api(ar, caps, r.namespace.as_deref());
                    let dp = DeleteParams {
                        propagation_policy: Some(kube::api::PropagationPolicy::Background),
                        ..Default::default()
                    };
                    match api.delete(&r.name, &dp).await {
                        Ok(_) => {}
                        Err(kube::Error::Api(s)) if s.code == 404 => return Ok(()),
                        Err(e) => return Err(api_error(&e, &r.to_string(), Some(("delete", ar)))),
                    }
                    if wait {
                        let deadline = Instant::now() + Duration::from_secs(300);
                        while api
                            .get_opt(&r.name)
                            .await
                            .map_err(|e| api_error(&e, &r.to_string(), Some(("get", ar))))?
                            .is_some()
                        {
                            if Instant::now() > deadline {
                                return Err(DeployError::Api {
                                    message: format!(
                                        "{r} is still there 5 minutes after its deletion"
                                    ),
                                    hint: None,
                                });
                            }
                            tokio::time::sleep(Duration::from_millis(200)).await;
                        }
                    }
                    if pruned {
                        events.emit(Event::Pruned {
                            object: r.short(),
                            namespace: r.namespace.clone(),
                        });
                    } else {
                        events.emit(Event::Deleted {
                            object: r.short(),
                            namespace: r.namespace.clone(),
                            dry_run: false,
                        });
                    }
                    Ok(())
                })
                .collect();
            let results: Vec<Result<(), DeployError>> = futures_util::stream::iter(futures)
                .buffer_unordered(APPLY_CONCURRENCY)
                .collect()
                .await;
            for r in results {
                r?;
            }
        }
        Ok(())
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
        let started = Instant::now();
        let set = ApplySet::new(&self.project, &self.home_namespace(&plan.objects));
        {
            let mut current = self.applyset.lock().await;
            if current.as_ref() != Some(&set) {
                // A new home (first deploy, or a config edit moved the project): nothing recorded there yet.
                *self.recorded.lock().await = None;
                *current = Some(set.clone());
            }
        }
        events.emit(Event::DeployStarted {
            context: self.context.clone(),
            namespace: set.namespace.clone(),
            objects: plan.objects.len(),
        });
        let (planned, deferred) = self.plan_objects(plan, &set).await?;
        // Namespaces first (the set's parent may live in one), then what other objects need to exist: CRDs for
        // their custom resources, StorageClasses and PersistentVolumes for the claims that bind to them.
        let (namespaces, rest): (Vec<PlannedObject>, Vec<PlannedObject>) = planned
            .into_iter()
            .partition(|p| p.reference.kind == "Namespace");
        let (first, mut rest): (Vec<PlannedObject>, Vec<PlannedObject>) =
            rest.into_iter().partition(|p| {
                matches!(
                    (p.reference.group(), p.reference.kind.as_str()),
                    ("apiextensions.k8s.io", "CustomResourceDefinition")
                        | ("storage.k8s.io", "StorageClass")
                        | ("", "PersistentVolume")
                )
            });
        let mut applied = self.apply_all(&namespaces, events, cancel).await?;
        let mut created_namespaces = self
            .ensure_namespaces(first.iter().chain(&rest), &namespaces, &set, events)
            .await?;

        // The set's parent records every group-kind and namespace before members are applied (a superset of
        // what it recorded and what comes now), and exactly this deploy's after the prune (KEP-3659). What it
        // records: as devloop last wrote it in this process, else as the cluster has it.
        let known = self.recorded.lock().await.clone();
        let recorded = match known {
            Some(c) => c,
            None => self.read_parent(&set).await?.unwrap_or_default(),
        };
        let mut coming = contents_of(
            namespaces
                .iter()
                .chain(&first)
                .chain(&rest)
                .map(|p| &p.reference),
            &set.namespace,
        );
        // Custom resources whose CRD this deploy creates: their scope is not known yet, so their namespace (or the
        // default one) is recorded either way; a namespace too many only costs an empty list.
        for (gvk, o) in &deferred {
            coming
                .group_kinds
                .insert((gvk.group.clone(), gvk.kind.clone()));
            coming.namespaces.insert(
                o.pointer("/metadata/namespace")
                    .and_then(Value::as_str)
                    .unwrap_or(&self.namespace)
                    .to_string(),
            );
        }
        self.write_parent(&set, &recorded.union(&coming)).await?;

        applied.extend(self.apply_all(&first, events, cancel).await?);
        let crds: Vec<&PlannedObject> = first
            .iter()
            .filter(|p| p.reference.kind == "CustomResourceDefinition")
            .collect();
        self.wait_established(&crds).await?;
        let resolved = rest.len();
        for (gvk, o) in deferred {
            match self.resource(&gvk).await? {
                Some((ar, caps)) => rest.push(self.planned(&o, ar, caps, &set)?),
                None => return Err(self.unserved(&gvk, &describe(&o)).await),
            }
        }
        if rest.len() > resolved {
            created_namespaces.extend(
                self.ensure_namespaces(rest[resolved..].iter(), &namespaces, &set, events)
                    .await?,
            );
        }
        applied.extend(self.apply_all(&rest, events, cancel).await?);

        // Prune what this deployment applied before and the plan no longer has: within a session, what this
        // process applied; on the first deploy, the members of the set the cluster holds.
        let keep: BTreeSet<ObjectKey> = applied.iter().map(|a| object_key(&a.reference)).collect();
        let previous = self.session.lock().await.take();
        let stale: Vec<Found> = match &previous {
            Some(m) => m
                .iter()
                .filter(|(k, _)| !keep.contains(*k))
                .map(|(_, r)| (r.applied.reference.clone(), r.ar.clone(), r.caps.clone()))
                .collect(),
            None => self
                .members(&set, &recorded.union(&coming))
                .await?
                .into_iter()
                .filter(|(r, _, _)| !keep.contains(&object_key(r)))
                .collect(),
        };
        let deleted = self.delete_objects(&stale, false, true, events).await;
        // Remember this deploy's objects for the next one (also after a failed prune: they are applied).
        let mut remembered = previous.unwrap_or_default();
        remembered.retain(|k, _| keep.contains(k));
        let digests: HashMap<ObjectKey, ([u8; 32], ApiResource, ApiCapabilities)> = namespaces
            .iter()
            .chain(first.iter())
            .chain(rest.iter())
            .map(|p| {
                (
                    object_key(&p.reference),
                    (form_digest(&p.object), p.ar.clone(), p.caps.clone()),
                )
            })
            .collect();
        for a in &applied {
            let key = object_key(&a.reference);
            if let Some((digest, ar, caps)) = digests.get(&key) {
                let applied = match remembered.get(&key) {
                    Some(r) if a.change == Change::Unchanged => r.applied.clone(),
                    _ => a.clone(),
                };
                remembered.insert(
                    key,
                    Remembered {
                        digest: *digest,
                        applied,
                        ar: ar.clone(),
                        caps: caps.clone(),
                    },
                );
            }
        }
        *self.session.lock().await = Some(remembered);
        deleted?;
        // Exactly what is deployed now, so the next prune lists no more than it must.
        let exact = contents_of(applied.iter().map(|a| &a.reference), &set.namespace);
        self.write_parent(&set, &exact).await?;
        events.emit(Event::DeployComplete {
            applied: applied.len(),
            pruned: stale.len(),
            duration_ms: started.elapsed().as_millis() as u64,
        });
        Ok(DeployedSet {
            applied,
            pruned: stale.into_iter().map(|(r, _, _)| r).collect(),
            created_namespaces,
        })
    }

    async fn wait_ready(
        &self,
        deployed: &DeployedSet,
        deadline: Duration,
        events: &EventSink,
        cancel: &CancellationToken,
    ) -> Result<(), DeployError> {
        crate::status::wait(crate::status::StatusCheck {
            client: &self.client,
            objects: &deployed.applied,
            deadline,
            events,
            cancel,
        })
        .await
        .map(|_| ())
    }

    async fn delete_all(
        &self,
        opts: DeleteOptions,
        events: &EventSink,
    ) -> Result<Vec<ObjectRef>, DeployError> {
        let set = self.applyset_or(|| self.namespace.clone()).await;
        let Some(contents) = self.read_parent(&set).await? else {
            return Ok(Vec::new());
        };
        let mut targets = self.members(&set, &contents).await?;
        // The record goes last, once its members are gone: an interrupted delete can be run again.
        let parent = ObjectRef {
            api_version: "v1".into(),
            kind: "ConfigMap".into(),
            namespace: Some(set.namespace.clone()),
            name: set.name.clone(),
        };
        if opts.dry_run {
            for (r, _, _) in &targets {
                events.emit(Event::Deleted {
                    object: r.short(),
                    namespace: r.namespace.clone(),
                    dry_run: true,
                });
            }
        } else {
            self.delete_objects(&targets, opts.wait, false, events)
                .await?;
            let resource = config_map_resource();
            let caps = ApiCapabilities {
                scope: Scope::Namespaced,
                subresources: Vec::new(),
                operations: Vec::new(),
            };
            // devloop's own bookkeeping: not reported as one of the user's objects.
            let quiet = EventSink::new(|_| {});
            self.delete_objects(
                &[(parent.clone(), resource.clone(), caps.clone())],
                opts.wait,
                false,
                &quiet,
            )
            .await?;
            *self.recorded.lock().await = None;
            *self.session.lock().await = None;
            targets.push((parent, resource, caps));
        }
        Ok(targets.into_iter().map(|(r, _, _)| r).collect())
    }
}

/// One object ready to apply.
struct PlannedObject {
    reference: ObjectRef,
    object: Value,
    ar: ApiResource,
    caps: ApiCapabilities,
}

enum ApplyFailure {
    Status(Box<Status>),
    Other(DeployError),
}

async fn load_config(opts: &ClusterOptions) -> Result<(kube::Config, String), DeployError> {
    let kubeconfig = match &opts.kubeconfig {
        Some(path) => Some(
            Kubeconfig::read_from(path).map_err(|e| DeployError::Config {
                message: format!("{}: cannot read the kubeconfig: {e}", path.display()),
                hint: None,
            })?,
        ),
        None => Kubeconfig::read().ok(),
    };
    let Some(kubeconfig) = kubeconfig else {
        return match kube::Config::incluster() {
            Ok(c) => Ok((c, "in-cluster".to_string())),
            Err(_) => Err(DeployError::Config {
                message: "no kubeconfig found (`$KUBECONFIG`, `~/.kube/config`) and not running in a cluster".into(),
                hint: Some("point `--kubeconfig` or `KUBECONFIG` at your cluster's kubeconfig".into()),
            }),
        };
    };
    let context = opts
        .context
        .clone()
        .or_else(|| kubeconfig.current_context.clone())
        .unwrap_or_default();
    if let Some(wanted) = &opts.context
        && !kubeconfig.contexts.iter().any(|c| &c.name == wanted)
    {
        let names: Vec<String> = kubeconfig
            .contexts
            .iter()
            .map(|c| format!("`{}`", c.name))
            .collect();
        return Err(DeployError::Config {
            message: format!("kube context `{wanted}` is not in the kubeconfig"),
            hint: Some(format!("contexts: {}", names.join(", "))),
        });
    }
    let options = KubeConfigOptions {
        context: opts.context.clone(),
        ..Default::default()
    };
    let config = kube::Config::from_custom_kubeconfig(kubeconfig, &options)
        .await
        .map_err(|e| DeployError::Config {
            message: format!("kube context `{context}`: {e}"),
            hint: None,
        })?;
    Ok((config, context))
}

fn gvk_of(o: &Value) -> Result<GroupVersionKind, DeployError> {
    let api_version = o["apiVersion"].as_str().unwrap_or_default();
    let kind = o["kind"].as_str().unwrap_or_default();
    if api_version.is_empty() || kind.is_empty() {
        return Err(DeployError::Apply {
            object: describe(o),
            message: "has no `apiVersion` or `kind`".into(),
            hint: None,
        });
    }
    let (group, version) = api_version.rsplit_once('/').unwrap_or(("", api_version));
    Ok(GroupVersionKind::gvk(group, version, kind))
}

fn gvk_text(gvk: &GroupVersionKind) -> String {
    if gvk.group.is_empty() {
        format!("`{}/{}`", gvk.version, gvk.kind)
    } else {
        format!("`{}/{} {}`", gvk.group, gvk.version, gvk.kind)
    }
}

fn describe(o: &Value) -> String {
    let kind = o["kind"].as_str().unwrap_or("object").to_lowercase();
    let name = o
        .pointer("/metadata/name")
        .and_then(Value::as_str)
        .unwrap_or("<unnamed>");
    format!("{kind}/{name}")
}

fn change_text(c: Change) -> &'static str {
    match c {
        Change::Created => "created",
        Change::Configured => "configured",
        Change::Unchanged => "unchanged",
        Change::Recreated => "recreated (immutable field changed)",
    }
}

fn label_of<'a>(object: &'a Value, key: &str) -> Option<&'a str> {
    object
        .pointer("/metadata/labels")
        .and_then(|l| l.get(key))
        .and_then(Value::as_str)
}

/// A `devloop` Apply entry in `managedFields`, and no owner.
fn applied_by_devloop(object: &Value) -> bool {
    let applied = object
        .pointer("/metadata/managedFields")
        .and_then(Value::as_array)
        .is_some_and(|m| {
            m.iter()
                .any(|e| e["manager"] == FIELD_MANAGER && e["operation"] == "Apply")
        });
    let owned_by_other = object
        .pointer("/metadata/ownerReferences")
        .and_then(Value::as_array)
        .is_some_and(|o| !o.is_empty());
    applied && !owned_by_other
}

fn config_map_resource() -> ApiResource {
    ApiResource::erase::<k8s_openapi::api::core::v1::ConfigMap>(&())
}

/// What `objects` need recorded on their set's parent: their group-kinds and namespaces.
fn contents_of<'a>(objects: impl Iterator<Item = &'a ObjectRef>, home: &str) -> Contents {
    let mut contents = Contents::default();
    contents.namespaces.insert(home.to_string());
    for r in objects {
        contents
            .group_kinds
            .insert((r.group().to_string(), r.kind.clone()));
        if let Some(ns) = &r.namespace {
            contents.namespaces.insert(ns.clone());
        }
    }
    contents
}

fn first_line(s: &str) -> &str {
    s.lines().next().unwrap_or(s)
}

/// Whether an apply failed on a field that cannot be updated in place.
fn is_immutable(s: &Status) -> bool {
    s.code == 422
        && (s.message.contains("field is immutable")
            || s.message.contains("pod updates may not change fields")
            || s.message
                .contains("Forbidden: updates to statefulset spec for fields other than"))
}

/// A failed API answer → a message that says who may do what, with a hint.
fn status_error(s: &Status, object: &ObjectRef, verb: &str, ar: &ApiResource) -> DeployError {
    let (message, hint) = match s.code {
        403 if s.message.contains("being terminated") => (
            s.message.clone(),
            Some(format!("namespace `{}` is being deleted: wait until it is gone, then deploy again", object.namespace.clone().unwrap_or_default())),
        ),
        403 => (s.message.clone(), Some(can_i(verb, ar, object.namespace.as_deref()))),
        409 => (
            s.message.clone(),
            Some("another field manager owns these fields: pass `--force-conflicts` to take them over, or stop the other writer".into()),
        ),
        422 => (s.message.clone(), None),
        401 => (s.message.clone(), Some("your credentials may have expired: log in again and retry".into())),
        500 if s.message.contains("field not declared in schema") => {
            (s.message.clone(), Some("the manifest has a field this kind does not have: check its spelling and indentation".into()))
        }
        _ if s.message.contains("admission webhook") => (s.message.clone(), Some("an admission webhook of the cluster refused the object".into())),
        _ => (if s.message.is_empty() { format!("HTTP {}", s.code) } else { s.message.clone() }, None),
    };
    DeployError::Apply {
        object: object.to_string(),
        message,
        hint,
    }
}

fn can_i(verb: &str, ar: &ApiResource, namespace: Option<&str>) -> String {
    let resource = if ar.group.is_empty() {
        ar.plural.clone()
    } else {
        format!("{}.{}", ar.plural, ar.group)
    };
    let ns = namespace.map(|n| format!(" -n {n}")).unwrap_or_default();
    format!(
        "ask your cluster admin for `{verb}` on `{resource}`; check with `kubectl auth can-i {verb} {resource}{ns}`"
    )
}

fn api_error(e: &kube::Error, what: &str, rbac: Option<(&str, &ApiResource)>) -> DeployError {
    match e {
        kube::Error::Api(s) if s.code == 403 => DeployError::Api {
            message: format!("{what}: {}", s.message),
            hint: rbac.map(|(verb, ar)| can_i(verb, ar, None)),
        },
        kube::Error::Api(s) if s.code == 401 => DeployError::Api {
            message: format!("{what}: the credentials were rejected"),
            hint: Some("your credentials may have expired: log in again and retry".into()),
        },
        kube::Error::Api(s) => DeployError::Api {
            message: format!("{what}: {}", s.message),
            hint: None,
        },
        other => DeployError::Api {
            message: format!("{what}: {other}"),
            hint: Some("check that the cluster is reachable (`kubectl version`)".into()),
        },
    }
}

/// The time devloop last changed the object (its `managedFields` Apply entry), as Unix seconds.
fn apply_time(o: &Value) -> Option<i64> {
    let entries = o.pointer("/metadata/managedFields")?.as_array()?;
    let entry = entries
        .iter()
        .find(|e| e["manager"] == FIELD_MANAGER && e["operation"] == "Apply")?;
    parse_rfc3339(entry["time"].as_str()?)
}

/// `2026-11-22T03:04:05Z` → Unix seconds.
fn parse_rfc3339(s: &str) -> Option<i64> {
    let b = s.as_bytes();
    if b.len() < 20 || b[4] != b'-' || b[10] != b'T' {
        return None;
    }
    let n = |r: std::ops::Range<usize>| s.get(r)?.parse::<i64>().ok();
    Some(
        days_from_civil(n(0..4)?, n(5..7)?, n(8..10)?) * 86_400
            + n(11..13)? * 3600
            + n(14..16)? * 60
            + n(17..19)?,
    )
}

/// `Sun, 22 Nov 2026 03:04:05 GMT` → Unix seconds.
fn parse_http_date(s: &str) -> Option<i64> {
    let parts: Vec<&str> = s.split_whitespace().collect();
    if parts.len() != 6 {
        return None;
    }
    let month = [
        "Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec",
    ]
    .iter()
    .position(|m| *m == parts[2])? as i64
        + 1;
    let t: Vec<i64> = parts[4].split(':').filter_map(|x| x.parse().ok()).collect();
    if t.len() != 3 {
        return None;
    }
    Some(
        days_from_civil(parts[3].parse().ok()?, month, parts[1].parse().ok()?) * 86_400
            + t[0] * 3600
            + t[1] * 60
            + t[2],
    )
}

/// Days since 1970-01-01 of a civil date (Howard Hinnant's algorithm).
fn days_from_civil(y: i64, m: i64, d: i64) -> i64 {
    let y = if m <= 2 { y - 1 } else { y };
    let era = y.div_euclid(400);
    let yoe = y - era * 400;
    let mp = (m + 9) % 12;
    let doy = (153 * mp + 2) / 5 + d - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    era * 146_097 + doe - 719_468
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn dates() {
        assert_eq!(parse_rfc3339("2026-11-22T03:04:05Z"), Some(1_795_316_645));
        assert_eq!(
            parse_http_date("Sun, 22 Nov 2026 03:04:05 GMT"),
            Some(1_795_316_645)
        );
        assert_eq!(parse_rfc3339("1970-01-01T00:00:00Z"), Some(0));
        assert_eq!(parse_http_date("garbage"), None);
    }

    #[test]
    fn immutable_errors_are_recognised() {
        let job = Status { code: 422, message: "Job.batch \"job1\" is invalid: spec.template: Invalid value: core.PodTemplateSpec{}: field is immutable".into(), ..Default::default() };
        assert!(is_immutable(&job));
        let pod = Status { code: 422, message: "Pod \"bare\" is invalid: spec: Forbidden: pod updates may not change fields other than `spec.containers[*].image`".into(), ..Default::default() };
        assert!(is_immutable(&pod));
        let invalid = Status {
            code: 422,
            message: "Deployment.apps \"web\" is invalid: spec.replicas: Invalid value: -1".into(),
            ..Default::default()
        };
        assert!(!is_immutable(&invalid));
    }

    #[test]
    fn forbidden_names_verb_resource_and_namespace() {
        let s = Status { code: 403, message: "configmaps \"cm1\" is forbidden: User \"u\" cannot patch resource \"configmaps\" in API group \"\" in the namespace \"ns\"".into(), ..Default::default() };
        let r = ObjectRef {
            api_version: "v1".into(),
            kind: "ConfigMap".into(),
            namespace: Some("ns".into()),
            name: "cm1".into(),
        };
        let ar = ApiResource::erase::<k8s_openapi::api::core::v1::ConfigMap>(&());
        let e = status_error(&s, &r, "patch", &ar).to_string();
        assert!(
            e.contains("cannot patch resource \"configmaps\"")
                && e.contains("kubectl auth can-i patch configmaps -n ns"),
            "{e}"
        );
    }
}
