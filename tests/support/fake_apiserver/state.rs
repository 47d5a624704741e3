//! Fake API server, store: objects keyed by resource/namespace/name, one global resourceVersion counter, and the
//! event log watches replay from; every write goes through here so watches and resourceVersions stay consistent.

use std::collections::{BTreeMap, BTreeSet, HashMap, HashSet};
use std::time::Duration;

use serde_json::{Value, json};

use super::fieldset::{self, Scope, Writer};
use super::pods::{PodSim, PodState};
use super::resources::{ResourceDef, Served};
use super::rootfs::RootFs;
use super::util::{now_nanos, rfc3339, uuid};

/// Identifies a stored object.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct ObjKey {
    pub group: &'static str,
    pub plural: &'static str,
    pub namespace: String,
    pub name: String,
}

impl ObjKey {
    /// The key of `name` in `namespace` (empty for cluster-scoped) of `res`.
    pub fn new(res: &'static ResourceDef, namespace: &str, name: &str) -> Self {
        ObjKey {
            group: res.group,
            plural: res.plural,
            namespace: if res.namespaced {
                namespace.to_string()
            } else {
                String::new()
            },
            name: name.to_string(),
        }
    }
}

/// One entry of the watch event log.
#[derive(Debug, Clone)]
pub struct Event {
    pub rv: u64,
    pub kind: &'static str,
    pub res: &'static ResourceDef,
    pub key: ObjKey,
    pub object: Value,
    /// The object before this event (for selector transitions and historical lists).
    pub prev: Option<Value>,
}

/// One request as the server received it.
#[derive(Debug, Clone, PartialEq)]
pub struct RequestRecord {
    pub method: String,
    pub path: String,
    /// Decoded query pairs in order (kube-rs' leading `&` dropped).
    pub query: Vec<(String, String)>,
    pub field_manager: Option<String>,
    pub content_type: Option<String>,
    pub body: String,
    /// The status code answered (`None` while the handler runs).
    pub code: Option<u16>,
}

impl RequestRecord {
    /// The first value of a query parameter.
    pub fn param(&self, key: &str) -> Option<&str> {
        self.query
            .iter()
            .find(|(k, _)| k == key)
            .map(|(_, v)| v.as_str())
    }

    /// Whether this was a server-side apply (`PATCH` with `application/apply-patch+yaml`).
    pub fn is_apply(&self) -> bool {
        self.method == "PATCH"
            && self
                .content_type
                .as_deref()
                .is_some_and(|c| c.starts_with("application/apply-patch+yaml"))
    }
}

/// An RBAC denial installed by a test.
#[derive(Debug, Clone, PartialEq)]
pub struct Denial {
    pub verb: String,
    /// `pods`, `deployments`, `pods/log`, ...
    pub resource: String,
    /// `None` = every namespace and cluster scope.
    pub namespace: Option<String>,
}

/// Timings of the simulated controllers and kubelet (compressed: tests must not wait for real grace periods).
#[derive(Debug, Clone)]
pub struct Timing {
    /// From pod creation until its containers reach their target state.
    pub pod_start: Duration,
    /// From a graceful pod deletion until the pod object is gone.
    pub pod_termination: Duration,
    /// From namespace deletion (once empty) until the namespace object is gone.
    pub namespace_cleanup: Duration,
    /// Interval of periodic watch bookmarks.
    pub bookmark_interval: Duration,
    /// From a PersistentVolume's creation until the PV controller binds a claim that was already waiting for it
    /// (recorded: 2.45 s, 10-pvc-binding-late-pv-timeline.jsonl). A claim created after its PV binds at once.
    pub claim_bind: Duration,
    /// How often the PV controller re-syncs a claim it cannot bind; each sync repeats its `FailedBinding` event
    /// (the event's `count` grows; kube-controller-manager's `--pvclaimbinder-sync-period` is 15 s).
    pub binder_resync: Duration,
}

impl Default for Timing {
    fn default() -> Self {
        Timing {
            pod_start: Duration::from_millis(100),
            pod_termination: Duration::from_millis(100),
            namespace_cleanup: Duration::from_millis(100),
            bookmark_interval: Duration::from_secs(60),
            claim_bind: Duration::from_millis(250),
            binder_resync: Duration::from_secs(1),
        }
    }
}

/// Which state new pods reach after starting.
#[derive(Debug, Clone)]
pub struct PodBehaviour {
    pub default: PodState,
    /// `(image substring, state)`: the first match wins.
    pub by_image: Vec<(String, PodState)>,
}

impl PodBehaviour {
    /// The target state for a pod, from its first app container image.
    pub fn target_for(&self, pod: &Value) -> PodState {
        let images: Vec<&str> = pod["spec"]["containers"]
            .as_array()
            .into_iter()
            .flatten()
            .filter_map(|c| c["image"].as_str())
            .collect();
        self.by_image
            .iter()
            .find(|(needle, _)| images.iter().any(|i| i.contains(needle.as_str())))
            .map_or_else(|| self.default.clone(), |(_, s)| s.clone())
    }
}

/// Everything the fake server knows.
pub struct State {
    pub rv: u64,
    pub objects: BTreeMap<ObjKey, Value>,
    pub events: Vec<Event>,
    /// Watches and exact lists from below this resourceVersion get `410 Expired` (history before it is gone).
    pub oldest_rv: u64,
    pub requests: Vec<RequestRecord>,
    pub denials: Vec<Denial>,
    pub served: Served,
    pub pods: HashMap<String, PodSim>,
    pub behaviour: PodBehaviour,
    pub timing: Timing,
    /// Namespaces held in Terminating by a test (their content is kept).
    pub stuck_namespaces: BTreeSet<String>,
    /// Namespaces seen empty while terminating, with the time they became empty.
    pub namespace_empty_since: HashMap<String, u128>,
    /// Pods (by uid) whose graceful deletion started, with the time it started.
    pub terminating_since: HashMap<String, u128>,
    pub ip_seq: u64,
    /// Bumped by whatever changes what the controllers see other than through an object's resourceVersion:
    /// removals, pod simulations and behaviours set by tests, time-driven steps.
    pub epoch: u64,
    /// `(rv, epoch)` when the controllers last had nothing left to do: workloads whose objects (and dependents)
    /// are all at or below that rv, in the same epoch, need no work.
    pub converged: Option<(u64, u64)>,
    /// Pods (by uid) whose simulation moved on since the controllers last converged.
    pub moved_sims: HashSet<String>,
    /// When the PV controller first saw each PersistentVolume and claim (by uid).
    pub volume_seen: HashMap<String, u128>,
    /// Claims (by uid) the PV controller could not bind, with the time of its last sync of each.
    pub claim_synced: HashMap<String, u128>,
    /// Pods (by uid) the scheduler could not place for their claims, with what it saw at its last attempt.
    pub volume_attempts: HashMap<String, u64>,
    /// The filesystems of started containers.
    pub rootfs: RootFs,
}

/// The resourceVersion the fake cluster's history starts at (older ones are "too old").
pub const FIRST_RV: u64 = 1000;

impl State {
    /// An empty cluster with the `default`, `kube-system`, `kube-public` and `kube-node-lease` namespaces.
    pub fn new() -> Self {
        let mut s = State {
            rv: FIRST_RV,
            objects: BTreeMap::new(),
            events: Vec::new(),
            oldest_rv: FIRST_RV,
            requests: Vec::new(),
            denials: Vec::new(),
            served: Served::default(),
            pods: HashMap::new(),
            behaviour: PodBehaviour {
                default: PodState::Running,
                by_image: Vec::new(),
            },
            timing: Timing::default(),
            stuck_namespaces: BTreeSet::new(),
            namespace_empty_since: HashMap::new(),
            terminating_since: HashMap::new(),
            ip_seq: 0,
            epoch: 0,
            converged: None,
            moved_sims: HashSet::new(),
            volume_seen: HashMap::new(),
            claim_synced: HashMap::new(),
            volume_attempts: HashMap::new(),
            rootfs: RootFs::default(),
        };
        let ns = super::resources::find_kind("Namespace").expect("namespaces are in the table");
        for name in ["default", "kube-node-lease", "kube-public", "kube-system"] {
            let obj = json!({
                "kind": "Namespace", "apiVersion": "v1",
                "metadata": {"name": name, "labels": {"kubernetes.io/metadata.name": name}},
                "spec": {"finalizers": ["kubernetes"]},
                "status": {"phase": "Active"}
            });
            s.insert_new(ns, obj);
        }
        s
    }

    /// A stored object.
    pub fn get(&self, res: &'static ResourceDef, namespace: &str, name: &str) -> Option<&Value> {
        self.objects.get(&ObjKey::new(res, namespace, name))
    }

    /// All stored objects of a resource, optionally in one namespace, in key order.
    pub fn list(
        &self,
        res: &'static ResourceDef,
        namespace: Option<&str>,
    ) -> Vec<(&ObjKey, &Value)> {
        // Keys sort by group, plural, namespace, name: a resource (in a namespace) is one contiguous range.
        let namespace = namespace.filter(|ns| !ns.is_empty());
        let start = ObjKey {
            group: res.group,
            plural: res.plural,
            namespace: namespace.unwrap_or_default().to_string(),
            name: String::new(),
        };
        self.objects
            .range(start..)
            .take_while(|(k, _)| {
                k.group == res.group
                    && k.plural == res.plural
                    && namespace.is_none_or(|ns| k.namespace == ns)
            })
            .collect()
    }

    fn bump(&mut self) -> u64 {
        self.rv += 1;
        self.rv
    }

    fn record(
        &mut self,
        kind: &'static str,
        res: &'static ResourceDef,
        key: ObjKey,
        object: Value,
        prev: Option<Value>,
    ) {
        self.events.push(Event {
            rv: self.rv,
            kind,
            res,
            key,
            object,
            prev,
        });
    }

    /// Stores a new object: uid, creationTimestamp, resourceVersion and (for workloads) generation are set here.
    pub fn insert_new(&mut self, res: &'static ResourceDef, mut obj: Value) -> Value {
        let rv = self.bump();
        let now = rfc3339(now_nanos());
        if let Some(meta) = obj.get_mut("metadata").and_then(Value::as_object_mut) {
            let mut out = serde_json::Map::new();
            for k in ["name", "generateName", "namespace"] {
                if let Some(v) = meta.shift_remove(k) {
                    out.insert(k.into(), v);
                }
            }
            out.insert(
                "uid".into(),
                meta.shift_remove("uid").unwrap_or_else(|| json!(uuid())),
            );
            out.insert("resourceVersion".into(), json!(rv.to_string()));
            if res.generation {
                out.insert("generation".into(), json!(1));
            }
            out.insert("creationTimestamp".into(), json!(now));
            meta.shift_remove("resourceVersion");
            meta.shift_remove("generation");
            meta.shift_remove("creationTimestamp");
            out.extend(std::mem::take(meta));
            *meta = out;
        }
        let key = ObjKey::new(
            res,
            obj.pointer("/metadata/namespace")
                .and_then(Value::as_str)
                .unwrap_or_default(),
            obj.pointer("/metadata/name")
                .and_then(Value::as_str)
                .unwrap_or_default(),
        );
        self.objects.insert(key.clone(), obj.clone());
        self.record("ADDED", res, key, obj.clone(), None);
        obj
    }

    /// Replaces a stored object (new resourceVersion; generation bumped when `spec` changed or deletion began).
    pub fn replace(&mut self, res: &'static ResourceDef, mut obj: Value) -> Value {
        let key = ObjKey::new(
            res,
            obj.pointer("/metadata/namespace")
                .and_then(Value::as_str)
                .unwrap_or_default(),
            obj.pointer("/metadata/name")
                .and_then(Value::as_str)
                .unwrap_or_default(),
        );
        let prev = self.objects.get(&key).cloned();
        let rv = self.bump();
        if let (Some(p), true) = (&prev, res.generation) {
            let spec_changed = p.get("spec") != obj.get("spec");
            let deletion_began = p.pointer("/metadata/deletionTimestamp").is_none()
                && obj.pointer("/metadata/deletionTimestamp").is_some();
            let generation = p
                .pointer("/metadata/generation")
                .and_then(Value::as_i64)
                .unwrap_or(1);
            obj["metadata"]["generation"] = json!(if spec_changed || deletion_began {
                generation + 1
            } else {
                generation
            });
        }
        obj["metadata"]["resourceVersion"] = json!(rv.to_string());
        self.objects.insert(key.clone(), obj.clone());
        self.record("MODIFIED", res, key, obj.clone(), prev);
        obj
    }

    /// Removes an object at once (DELETED event with a new resourceVersion).
    pub fn remove(
        &mut self,
        res: &'static ResourceDef,
        namespace: &str,
        name: &str,
    ) -> Option<Value> {
        let key = ObjKey::new(res, namespace, name);
        let mut obj = self.objects.remove(&key)?;
        // A removal changes what its owners see without touching their resourceVersions.
        self.epoch += 1;
        let prev = Some(obj.clone());
        let rv = self.bump();
        obj["metadata"]["resourceVersion"] = json!(rv.to_string());
        if let Some(uid) = obj.pointer("/metadata/uid").and_then(Value::as_str) {
            self.pods.remove(uid);
        }
        self.record("DELETED", res, key, obj.clone(), prev);
        Some(obj)
    }

    /// A controller/kubelet write of an existing object through `mutate`, recorded as an Update by `manager`;
    /// nothing is written when `mutate` changes nothing. Returns whether a write happened.
    pub fn controller_write(
        &mut self,
        res: &'static ResourceDef,
        namespace: &str,
        name: &str,
        manager: &str,
        subresource: Option<&str>,
        mutate: impl FnOnce(&mut Value),
    ) -> bool {
        let Some(current) = self.get(res, namespace, name) else {
            return false;
        };
        let mut new = current.clone();
        mutate(&mut new);
        if new == *current {
            return false;
        }
        let old = current.clone();
        let scope = match subresource {
            Some("status") => Scope::Status,
            _ if res.has_status() => Scope::Main,
            _ => Scope::All,
        };
        let now = rfc3339(now_nanos());
        let api_version = res.api_version();
        fieldset::update_ownership(
            res.kind,
            Some(&old),
            &mut new,
            Writer {
                manager,
                api_version: &api_version,
                now: &now,
            },
            subresource,
            scope,
        );
        self.replace(res, new);
        true
    }

    /// The object as it was at `rv` (for `resourceVersionMatch=Exact` and continue pages), by undoing later events.
    pub fn snapshot_at(&self, rv: u64) -> BTreeMap<ObjKey, Value> {
        let mut objs = self.objects.clone();
        for e in self.events.iter().rev().take_while(|e| e.rv > rv) {
            match e.kind {
                "ADDED" => {
                    objs.remove(&e.key);
                }
                _ => {
                    if let Some(p) = &e.prev {
                        objs.insert(e.key.clone(), p.clone());
                    }
                }
            }
        }
        objs
    }
}
