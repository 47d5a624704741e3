//! Fake API server, resource table and discovery: the served group/versions → `/api`, `/apis`, `/apis/g/v` and
//! aggregated (apidiscovery v2) documents shaped like 01-*.http; must not serve what the table does not list.

use serde_json::{Value, json};

/// One served resource type.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ResourceDef {
    pub group: &'static str,
    pub version: &'static str,
    pub plural: &'static str,
    pub singular: &'static str,
    pub kind: &'static str,
    pub namespaced: bool,
    pub short_names: &'static [&'static str],
    pub categories: &'static [&'static str],
    /// Subresources as `(name, response kind, verbs)`; an empty kind means "same kind as the parent".
    pub subresources: &'static [(&'static str, &'static str, &'static [&'static str])],
    /// Whether `metadata.generation` is maintained (workloads, ingresses, CRDs).
    pub generation: bool,
    pub storage_hash: &'static str,
}

impl ResourceDef {
    /// `group/version`, or `v1` for the core group.
    pub fn api_version(&self) -> String {
        if self.group.is_empty() {
            self.version.to_string()
        } else {
            format!("{}/{}", self.group, self.version)
        }
    }

    /// Whether the type has a `status` subresource (apply and update of the main resource ignore `status`).
    pub fn has_status(&self) -> bool {
        self.subresources.iter().any(|(n, _, _)| *n == "status")
    }

    fn verbs(&self) -> &'static [&'static str] {
        // Namespaces have no `deletecollection`; PersistentVolumes and StorageClasses do (01-api-v1 on a full server).
        if self.namespaced || matches!(self.kind, "PersistentVolume" | "StorageClass") {
            FULL_VERBS
        } else {
            CLUSTER_VERBS
        }
    }
}

const FULL_VERBS: &[&str] = &[
    "create",
    "delete",
    "deletecollection",
    "get",
    "list",
    "patch",
    "update",
    "watch",
];
const CLUSTER_VERBS: &[&str] = &[
    "create", "delete", "get", "list", "patch", "update", "watch",
];
const GPU: &[&str] = &["get", "patch", "update"];
const SCALE: (&str, &str, &[&str]) = ("scale", "autoscaling/v1:Scale", GPU);
const STATUS: (&str, &str, &[&str]) = ("status", "", GPU);

macro_rules! res {
    ($g:expr, $v:expr, $plural:expr, $singular:expr, $kind:expr, $ns:expr, $short:expr, $cat:expr, $subs:expr, $gen:expr, $hash:expr) => {
        ResourceDef {
            group: $g,
            version: $v,
            plural: $plural,
            singular: $singular,
            kind: $kind,
            namespaced: $ns,
            short_names: $short,
            categories: $cat,
            subresources: $subs,
            generation: $gen,
            storage_hash: $hash,
        }
    };
}

/// Every resource the fake serves, in discovery order (alphabetical per group/version, like the apiserver).
pub const RESOURCES: &[ResourceDef] = &[
    res!(
        "",
        "v1",
        "configmaps",
        "configmap",
        "ConfigMap",
        true,
        &["cm"],
        &[],
        &[],
        false,
        "qFsyl6wFWjQ="
    ),
    res!(
        "",
        "v1",
        "events",
        "event",
        "Event",
        true,
        &["ev"],
        &[],
        &[],
        false,
        "r2yiGXH7wu8="
    ),
    res!(
        "",
        "v1",
        "namespaces",
        "namespace",
        "Namespace",
        false,
        &["ns"],
        &[],
        &[("finalize", "", &["update"]), STATUS],
        false,
        "Q3oi5N2YM8M="
    ),
    res!(
        "",
        "v1",
        "persistentvolumeclaims",
        "persistentvolumeclaim",
        "PersistentVolumeClaim",
        true,
        &["pvc"],
        &[],
        &[STATUS],
        false,
        "QWTyNDq0dC4="
    ),
    res!(
        "",
        "v1",
        "persistentvolumes",
        "persistentvolume",
        "PersistentVolume",
        false,
        &["pv"],
        &[],
        &[STATUS],
        false,
        "HN/zwEC+JgM="
    ),
    res!(
        "",
        "v1",
        "pods",
        "pod",
        "Pod",
        true,
        &["po"],
        &["all"],
        &[
            ("exec", "PodExecOptions", &["create", "get"]),
            ("log", "", &["get"]),
            ("portforward", "PodPortForwardOptions", &["create", "get"]),
            STATUS
        ],
        false,
        "xPOwRZ+Yhw8="
    ),
    res!(
        "",
        "v1",
        "secrets",
        "secret",
        "Secret",
        true,
        &[],
        &[],
        &[],
        false,
        "S6u1pOWzb84="
    ),
    res!(
        "",
        "v1",
        "serviceaccounts",
        "serviceaccount",
        "ServiceAccount",
        true,
        &["sa"],
        &[],
        &[(
            "token",
            "authentication.k8s.io/v1:TokenRequest",
            &["create"]
        )],
        false,
        "pbx9ZvyFpBE="
    ),
    res!(
        "",
        "v1",
        "services",
        "service",
        "Service",
        true,
        &["svc"],
        &["all"],
        &[STATUS],
        false,
        "0/CO1lhkEBI="
    ),
    res!(
        "apps",
        "v1",
        "daemonsets",
        "daemonset",
        "DaemonSet",
        true,
        &["ds"],
        &["all"],
        &[STATUS],
        true,
        "dd7pWHUlMKQ="
    ),
    res!(
        "apps",
        "v1",
        "deployments",
        "deployment",
        "Deployment",
        true,
        &["deploy"],
        &["all"],
        &[SCALE, STATUS],
        true,
        "8aSe+NMegvE="
    ),
    res!(
        "apps",
        "v1",
        "replicasets",
        "replicaset",
        "ReplicaSet",
        true,
        &["rs"],
        &["all"],
        &[SCALE, STATUS],
        true,
        "P1RzHs8/mWQ="
    ),
    res!(
        "apps",
        "v1",
        "statefulsets",
        "statefulset",
        "StatefulSet",
        true,
        &["sts"],
        &["all"],
        &[SCALE, STATUS],
        true,
        "H+vl74LkKdo="
    ),
    res!(
        "batch",
        "v1",
        "cronjobs",
        "cronjob",
        "CronJob",
        true,
        &["cj"],
        &["all"],
        &[STATUS],
        true,
        "sd5LIXh4Fjs="
    ),
    res!(
        "batch",
        "v1",
        "jobs",
        "job",
        "Job",
        true,
        &[],
        &["all"],
        &[STATUS],
        true,
        "mudhfqk/qZY="
    ),
    res!(
        "networking.k8s.io",
        "v1",
        "ingresses",
        "ingress",
        "Ingress",
        true,
        &["ing"],
        &[],
        &[STATUS],
        true,
        "39NQlfNR+bo="
    ),
    res!(
        "storage.k8s.io",
        "v1",
        "storageclasses",
        "storageclass",
        "StorageClass",
        false,
        &["sc"],
        &[],
        &[],
        false,
        "K+m6uJwbjGY="
    ),
    res!(
        "apiextensions.k8s.io",
        "v1",
        "customresourcedefinitions",
        "customresourcedefinition",
        "CustomResourceDefinition",
        false,
        &["crd", "crds"],
        &["api-extensions"],
        &[STATUS],
        true,
        "jfWCUB31mvA="
    ),
];

/// Group order of `/apis` (a subset of the apiserver's order in 01-apis.http's README note).
pub const GROUP_ORDER: &[&str] = &[
    "apps",
    "batch",
    "networking.k8s.io",
    "storage.k8s.io",
    "apiextensions.k8s.io",
];

/// Which parts of the table are switched off (an older cluster without some kinds).
#[derive(Debug, Clone, Default)]
pub struct Served {
    /// `(group/version, kind)` pairs not served.
    pub hidden_kinds: Vec<(String, String)>,
    /// `group/version` strings not served at all.
    pub hidden_group_versions: Vec<String>,
}

impl Served {
    /// Whether a resource is currently served.
    pub fn serves(&self, r: &ResourceDef) -> bool {
        let gv = r.api_version();
        !self.hidden_group_versions.contains(&gv)
            && !self
                .hidden_kinds
                .iter()
                .any(|(g, k)| *g == gv && k == r.kind)
    }

    /// Served resources of one group/version.
    pub fn resources(&self, group: &str, version: &str) -> Vec<&'static ResourceDef> {
        RESOURCES
            .iter()
            .filter(|r| r.group == group && r.version == version && self.serves(r))
            .collect()
    }

    /// Whether a group has at least one served version.
    pub fn group_known(&self, group: &str) -> bool {
        RESOURCES.iter().any(|r| r.group == group && self.serves(r))
    }

    /// Whether `group/version` is served.
    pub fn group_version_known(&self, group: &str, version: &str) -> bool {
        !self.resources(group, version).is_empty()
    }

    /// Finds a served resource by group, version and plural.
    pub fn find(&self, group: &str, version: &str, plural: &str) -> Option<&'static ResourceDef> {
        self.resources(group, version)
            .into_iter()
            .find(|r| r.plural == plural)
    }

    fn groups(&self) -> Vec<&'static str> {
        GROUP_ORDER
            .iter()
            .copied()
            .filter(|g| self.group_known(g))
            .collect()
    }
}

/// Finds a resource (served or not) by kind name or plural, case-insensitively.
pub fn find_kind(kind: &str) -> Option<&'static ResourceDef> {
    RESOURCES
        .iter()
        .find(|r| r.kind.eq_ignore_ascii_case(kind) || r.plural.eq_ignore_ascii_case(kind))
}

/// Finds a resource by `apiVersion` and `kind` as written in an object.
pub fn find_gvk(api_version: &str, kind: &str) -> Option<&'static ResourceDef> {
    RESOURCES
        .iter()
        .find(|r| r.api_version() == api_version && r.kind == kind)
}

/// `GET /version`.
pub fn version_doc() -> Value {
    json!({
        "major": "1",
        "minor": "32",
        "gitVersion": "v1.32.13",
        "gitCommit": "63adf010aa20e104c0b7043b47f42f50c9f72b17",
        "gitTreeState": "clean",
        "buildDate": "2026-11-22T02:28:33Z",
        "goVersion": "go1.23.5",
        "compiler": "gc",
        "platform": "linux/amd64"
    })
}

/// `GET /api` (`APIVersions`, no apiVersion field, as recorded).
pub fn api_versions_doc(server_address: &str) -> Value {
    json!({
        "kind": "APIVersions",
        "versions": ["v1"],
        "serverAddressByClientCIDRs": [{"clientCIDR": "0.0.0.0/0", "serverAddress": server_address}]
    })
}

fn group_doc_entry(group: &str) -> Value {
    let gv = format!("{group}/v1");
    json!({
        "name": group,
        "versions": [{"groupVersion": gv, "version": "v1"}],
        "preferredVersion": {"groupVersion": gv, "version": "v1"}
    })
}

/// `GET /apis` (`APIGroupList`).
pub fn api_group_list_doc(served: &Served) -> Value {
    let groups: Vec<Value> = served.groups().into_iter().map(group_doc_entry).collect();
    json!({"kind": "APIGroupList", "apiVersion": "v1", "groups": groups})
}

/// `GET /apis/{group}` (`APIGroup`).
pub fn api_group_doc(group: &str) -> Value {
    let mut v = group_doc_entry(group);
    if let Value::Object(m) = &mut v {
        let mut out = serde_json::Map::new();
        out.insert("kind".into(), json!("APIGroup"));
        out.insert("apiVersion".into(), json!("v1"));
        out.extend(std::mem::take(m));
        return Value::Object(out);
    }
    v
}

fn split_kind(spec: &str) -> (&str, &str, &str) {
    // "group/version:Kind" or "Kind" or "" (same as parent).
    match spec.split_once(':') {
        Some((gv, kind)) => match gv.split_once('/') {
            Some((g, v)) => (g, v, kind),
            None => ("", gv, kind),
        },
        None => ("", "", spec),
    }
}

/// `GET /api/v1` or `/apis/{group}/{version}` (`APIResourceList`).
pub fn resource_list_doc(served: &Served, group: &str, version: &str) -> Value {
    let mut resources = Vec::new();
    for r in served.resources(group, version) {
        let mut m = serde_json::Map::new();
        m.insert("name".into(), json!(r.plural));
        m.insert("singularName".into(), json!(r.singular));
        m.insert("namespaced".into(), json!(r.namespaced));
        m.insert("kind".into(), json!(r.kind));
        m.insert("verbs".into(), json!(r.verbs()));
        if !r.short_names.is_empty() {
            m.insert("shortNames".into(), json!(r.short_names));
        }
        if !r.categories.is_empty() {
            m.insert("categories".into(), json!(r.categories));
        }
        m.insert("storageVersionHash".into(), json!(r.storage_hash));
        resources.push(Value::Object(m));
        for (sub, kind, verbs) in r.subresources {
            let (g, v, k) = split_kind(kind);
            let mut s = serde_json::Map::new();
            s.insert("name".into(), json!(format!("{}/{sub}", r.plural)));
            s.insert("singularName".into(), json!(""));
            s.insert("namespaced".into(), json!(r.namespaced));
            if !g.is_empty() {
                s.insert("group".into(), json!(g));
            }
            if !v.is_empty() {
                s.insert("version".into(), json!(v));
            }
            s.insert("kind".into(), json!(if k.is_empty() { r.kind } else { k }));
            s.insert("verbs".into(), json!(verbs));
            resources.push(Value::Object(s));
        }
    }
    let gv = if group.is_empty() {
        version.to_string()
    } else {
        format!("{group}/{version}")
    };
    if group.is_empty() {
        // The core list comes without apiVersion (01-api-v1.http).
        json!({"kind": "APIResourceList", "groupVersion": gv, "resources": resources})
    } else {
        json!({"kind": "APIResourceList", "apiVersion": "v1", "groupVersion": gv, "resources": resources})
    }
}

fn aggregated_group(served: &Served, group: &str) -> Value {
    let mut resources = Vec::new();
    for r in served.resources(group, "v1") {
        let mut m = serde_json::Map::new();
        m.insert("resource".into(), json!(r.plural));
        m.insert(
            "responseKind".into(),
            json!({"group": "", "version": "", "kind": r.kind}),
        );
        m.insert(
            "scope".into(),
            json!(if r.namespaced {
                "Namespaced"
            } else {
                "Cluster"
            }),
        );
        m.insert("singularResource".into(), json!(r.singular));
        m.insert("verbs".into(), json!(r.verbs()));
        if !r.short_names.is_empty() {
            m.insert("shortNames".into(), json!(r.short_names));
        }
        if !r.categories.is_empty() {
            m.insert("categories".into(), json!(r.categories));
        }
        if !r.subresources.is_empty() {
            let subs: Vec<Value> = r
                .subresources
                .iter()
                .map(|(sub, kind, verbs)| {
                    let (g, v, k) = split_kind(kind);
                    json!({
                        "subresource": sub,
                        "responseKind": {"group": g, "version": v, "kind": if k.is_empty() { r.kind } else { k }},
                        "verbs": verbs
                    })
                })
                .collect();
            m.insert("subresources".into(), Value::Array(subs));
        }
        resources.push(Value::Object(m));
    }
    let metadata = if group.is_empty() {
        json!({"creationTimestamp": null})
    } else {
        json!({"name": group, "creationTimestamp": null})
    };
    json!({
        "metadata": metadata,
        "versions": [{"version": "v1", "resources": resources, "freshness": "Current"}]
    })
}

/// Aggregated discovery (`APIGroupDiscoveryList` v2) for `/api` (`core = true`) or `/apis`.
pub fn aggregated_doc(served: &Served, core: bool) -> Value {
    let items: Vec<Value> = if core {
        vec![aggregated_group(served, "")]
    } else {
        served
            .groups()
            .into_iter()
            .map(|g| aggregated_group(served, g))
            .collect()
    };
    json!({"kind": "APIGroupDiscoveryList", "apiVersion": "apidiscovery.k8s.io/v2", "metadata": {}, "items": items})
}

/// Whether an `Accept` header asks for aggregated discovery v2.
pub fn wants_aggregated(accept: &str) -> bool {
    accept.split(',').any(|part| {
        let params: Vec<&str> = part.split(';').map(str::trim).collect();
        params.contains(&"g=apidiscovery.k8s.io")
            && params.contains(&"v=v2")
            && params.contains(&"as=APIGroupDiscoveryList")
    })
}
