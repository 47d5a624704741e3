//! Fake API server, field ownership: objects and `managedFields` → field sets, merges, conflicts and removals the
//! way server-side apply computes them (structured-merge-diff), for the list/struct shapes devloop's kinds use;
//! must not touch anything outside the paths it is given.

use std::collections::BTreeSet;

use serde_json::{Map, Value, json};

/// One step of a field path (`f:name`, `k:{"name":"web"}`, `v:"x"`).
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Elem {
    Field(String),
    /// Canonical JSON of the key fields of an associative-list item (keys sorted).
    Key(String),
    /// JSON of a set member.
    Value(String),
}

/// A path from the object root.
pub type Path = Vec<Elem>;
/// The fields a manager owns: leaves and list items (the `"."` entries of fieldsV1).
pub type FieldSet = BTreeSet<Path>;

/// How a list is merged (`x-kubernetes-list-type`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ListType {
    Atomic,
    Map(&'static [&'static str]),
    Set,
}

fn field_names(path: &[Elem]) -> Vec<&str> {
    path.iter()
        .filter_map(|e| match e {
            Elem::Field(f) => Some(f.as_str()),
            _ => None,
        })
        .collect()
}

/// The list type of the list at `path` in an object of `kind` (the subset of the OpenAPI schema devloop's kinds use).
pub fn list_type(kind: &str, path: &[Elem]) -> ListType {
    let names = field_names(path);
    let Some(last) = names.last() else {
        return ListType::Atomic;
    };
    match *last {
        "containers"
        | "initContainers"
        | "ephemeralContainers"
        | "env"
        | "volumes"
        | "imagePullSecrets"
        | "schedulingGates"
        | "resourceClaims" => ListType::Map(&["name"]),
        "ports" if kind == "Service" && names == ["spec", "ports"] => {
            ListType::Map(&["port", "protocol"])
        }
        "ports" if names.contains(&"containers") || names.contains(&"initContainers") => {
            ListType::Map(&["containerPort", "protocol"])
        }
        "volumeMounts" => ListType::Map(&["mountPath"]),
        "volumeDevices" => ListType::Map(&["devicePath"]),
        "ownerReferences" => ListType::Map(&["uid"]),
        "hostAliases" => ListType::Map(&["ip"]),
        "topologySpreadConstraints" => ListType::Map(&["topologyKey", "whenUnsatisfiable"]),
        "resizePolicy" => ListType::Map(&["resourceName"]),
        "finalizers" => ListType::Set,
        // JobStatus.conditions is atomic; the other status conditions are maps keyed by type.
        "conditions" if kind == "Job" => ListType::Atomic,
        "conditions" => ListType::Map(&["type"]),
        _ => ListType::Atomic,
    }
}

/// Whether the struct or map at `path` is atomic: `LabelSelector` is `structType=atomic`, and a Service's (and a
/// ReplicationController's) `spec.selector` is a `mapType=atomic` map (k8s.io/api core/v1 types.go): one manager
/// owns the whole selector, an apply replaces it.
fn atomic_struct(kind: &str, path: &[Elem], value: &Value) -> bool {
    let selector = matches!(path.last(), Some(Elem::Field(f)) if f == "selector");
    let label_selector = value
        .as_object()
        .is_some_and(|m| m.contains_key("matchLabels") || m.contains_key("matchExpressions"));
    let atomic_map = matches!(kind, "Service" | "ReplicationController")
        && matches!(path, [Elem::Field(spec), Elem::Field(_)] if spec == "spec");
    selector && (label_selector || atomic_map)
}

fn key_default(field: &str) -> Option<Value> {
    (field == "protocol").then(|| json!("TCP"))
}

/// The key of a list-map item (defaults filled, keys sorted), or `None` when a key field is missing.
pub fn item_key(item: &Value, keys: &[&str]) -> Option<String> {
    let mut sorted: Vec<&str> = keys.to_vec();
    sorted.sort_unstable();
    let mut m = Map::new();
    for k in sorted {
        let v = item.get(k).cloned().or_else(|| key_default(k))?;
        m.insert(k.to_string(), v);
    }
    Some(Value::Object(m).to_string())
}

/// Collects the owned paths of `value` (a fragment at `path`) into `out`.
pub fn collect(kind: &str, value: &Value, path: &mut Path, out: &mut FieldSet) {
    match value {
        Value::Object(m) if !m.is_empty() && !atomic_struct(kind, path, value) => {
            for (k, v) in m {
                path.push(Elem::Field(k.clone()));
                collect(kind, v, path, out);
                path.pop();
            }
        }
        Value::Array(items) => match list_type(kind, path) {
            ListType::Atomic => {
                out.insert(path.clone());
            }
            ListType::Set => {
                for item in items {
                    let mut p = path.clone();
                    p.push(Elem::Value(item.to_string()));
                    out.insert(p);
                }
            }
            ListType::Map(keys) => {
                for item in items {
                    let Some(key) = item_key(item, keys) else {
                        continue;
                    };
                    path.push(Elem::Key(key));
                    out.insert(path.clone());
                    if let Value::Object(m) = item {
                        for (k, v) in m {
                            path.push(Elem::Field(k.clone()));
                            collect(kind, v, path, out);
                            path.pop();
                        }
                    }
                    path.pop();
                }
            }
        },
        _ => {
            out.insert(path.clone());
        }
    }
}

const SYSTEM_METADATA: &[&str] = &[
    "name",
    "namespace",
    "uid",
    "resourceVersion",
    "generation",
    "creationTimestamp",
    "deletionTimestamp",
    "deletionGracePeriodSeconds",
    "managedFields",
    "selfLink",
    "generateName",
];

/// The field set of a whole object: everything except apiVersion/kind, identity metadata and (per `scope`) status.
pub fn object_set(kind: &str, obj: &Value, scope: Scope) -> FieldSet {
    let mut out = FieldSet::new();
    let Some(m) = obj.as_object() else {
        return out;
    };
    for (k, v) in m {
        let keep = match (k.as_str(), scope) {
            ("apiVersion" | "kind", _) => false,
            ("status", Scope::Main) => false,
            ("status", _) => true,
            (_, Scope::Status) => false,
            _ => true,
        };
        if !keep {
            continue;
        }
        if k == "metadata" {
            if let Some(meta) = v.as_object() {
                for (mk, mv) in meta {
                    if SYSTEM_METADATA.contains(&mk.as_str()) {
                        continue;
                    }
                    let mut p = vec![Elem::Field("metadata".into()), Elem::Field(mk.clone())];
                    collect(kind, mv, &mut p, &mut out);
                }
            }
            continue;
        }
        let mut p = vec![Elem::Field(k.clone())];
        collect(kind, v, &mut p, &mut out);
    }
    out
}

/// Which part of an object a write covers.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Scope {
    /// The main resource: status excluded.
    Main,
    /// The status subresource: only status.
    Status,
    /// Types without a status subresource: everything.
    All,
}

/// The value at `path`, if present.
pub fn value_at<'a>(kind: &str, obj: &'a Value, path: &[Elem]) -> Option<&'a Value> {
    let mut cur = obj;
    for (i, e) in path.iter().enumerate() {
        cur = match e {
            Elem::Field(f) => cur.get(f)?,
            Elem::Key(k) => {
                let ListType::Map(keys) = list_type(kind, &path[..i]) else {
                    return None;
                };
                cur.as_array()?
                    .iter()
                    .find(|it| item_key(it, keys).as_deref() == Some(k.as_str()))?
            }
            Elem::Value(v) => cur.as_array()?.iter().find(|it| it.to_string() == *v)?,
        };
    }
    Some(cur)
}

/// Removes the value at `path`; returns whether something was removed.
pub fn remove_at(kind: &str, obj: &mut Value, path: &[Elem]) -> bool {
    let Some((last, parent_path)) = path.split_last() else {
        return false;
    };
    let Some(parent) = value_at_mut(kind, obj, parent_path) else {
        return false;
    };
    match last {
        Elem::Field(f) => parent
            .as_object_mut()
            .is_some_and(|m| m.shift_remove(f).is_some()),
        Elem::Key(k) => {
            let ListType::Map(keys) = list_type(kind, parent_path) else {
                return false;
            };
            let Some(a) = parent.as_array_mut() else {
                return false;
            };
            let before = a.len();
            a.retain(|it| item_key(it, keys).as_deref() != Some(k.as_str()));
            a.len() != before
        }
        Elem::Value(v) => {
            let Some(a) = parent.as_array_mut() else {
                return false;
            };
            let before = a.len();
            a.retain(|it| it.to_string().as_str() != v.as_str());
            a.len() != before
        }
    }
}

fn value_at_mut<'a>(kind: &str, obj: &'a mut Value, path: &[Elem]) -> Option<&'a mut Value> {
    let mut cur = obj;
    for (i, e) in path.iter().enumerate() {
        cur = match e {
            Elem::Field(f) => cur.get_mut(f)?,
            Elem::Key(k) => {
                let ListType::Map(keys) = list_type(kind, &path[..i]) else {
                    return None;
                };
                cur.as_array_mut()?
                    .iter_mut()
                    .find(|it| item_key(it, keys).as_deref() == Some(k.as_str()))?
            }
            Elem::Value(v) => cur
                .as_array_mut()?
                .iter_mut()
                .find(|it| it.to_string() == *v)?,
        };
    }
    Some(cur)
}

/// Merges an applied configuration into the live object (maps recursively, list-maps by key, sets by value,
/// atomic lists and structs replaced).
pub fn merge(kind: &str, live: &Value, applied: &Value, path: &mut Path) -> Value {
    match (live, applied) {
        (Value::Object(l), Value::Object(a)) if !atomic_struct(kind, path, applied) => {
            let mut out = l.clone();
            for (k, av) in a {
                path.push(Elem::Field(k.clone()));
                let merged = match l.get(k) {
                    Some(lv) => merge(kind, lv, av, path),
                    None => av.clone(),
                };
                path.pop();
                out.insert(k.clone(), merged);
            }
            Value::Object(out)
        }
        (Value::Array(l), Value::Array(a)) => match list_type(kind, path) {
            ListType::Atomic => applied.clone(),
            ListType::Set => {
                let mut out = l.clone();
                for it in a {
                    if !out.contains(it) {
                        out.push(it.clone());
                    }
                }
                Value::Array(out)
            }
            ListType::Map(keys) => {
                let mut out = l.clone();
                for it in a {
                    let key = item_key(it, keys);
                    let pos = key.as_ref().and_then(|k| {
                        out.iter()
                            .position(|o| item_key(o, keys).as_deref() == Some(k.as_str()))
                    });
                    match (pos, key) {
                        (Some(i), Some(k)) => {
                            path.push(Elem::Key(k));
                            out[i] = merge(kind, &out[i], it, path);
                            path.pop();
                        }
                        _ => out.push(it.clone()),
                    }
                }
                Value::Array(out)
            }
        },
        _ => applied.clone(),
    }
}

/// fieldsV1 JSON of a field set.
pub fn to_fields_v1(set: &FieldSet) -> Value {
    let mut root = Map::new();
    for path in set {
        let mut node = &mut root;
        for e in path {
            let key = match e {
                Elem::Field(f) => format!("f:{f}"),
                Elem::Key(k) => format!("k:{k}"),
                Elem::Value(v) => format!("v:{v}"),
            };
            node = node
                .entry(key)
                .or_insert_with(|| Value::Object(Map::new()))
                .as_object_mut()
                .expect("fieldsV1 nodes are objects");
        }
        if matches!(path.last(), Some(Elem::Key(_) | Elem::Value(_))) {
            node.insert(".".into(), json!({}));
        }
    }
    sort_value(Value::Object(root))
}

fn sort_value(v: Value) -> Value {
    match v {
        Value::Object(m) => {
            let mut entries: Vec<(String, Value)> = m.into_iter().collect();
            entries.sort_by(|a, b| a.0.cmp(&b.0));
            Value::Object(
                entries
                    .into_iter()
                    .map(|(k, v)| (k, sort_value(v)))
                    .collect(),
            )
        }
        other => other,
    }
}

/// Parses fieldsV1 JSON back into a field set.
pub fn from_fields_v1(v: &Value) -> FieldSet {
    fn walk(node: &Map<String, Value>, path: &mut Path, out: &mut FieldSet) {
        for (k, child) in node {
            if k == "." {
                out.insert(path.clone());
                continue;
            }
            let elem = if let Some(f) = k.strip_prefix("f:") {
                Elem::Field(f.to_string())
            } else if let Some(key) = k.strip_prefix("k:") {
                Elem::Key(key.to_string())
            } else if let Some(val) = k.strip_prefix("v:") {
                Elem::Value(val.to_string())
            } else {
                continue;
            };
            path.push(elem);
            match child.as_object() {
                Some(m) if !m.is_empty() => walk(m, path, out),
                _ => {
                    out.insert(path.clone());
                }
            }
            path.pop();
        }
    }
    let mut out = FieldSet::new();
    if let Some(m) = v.as_object() {
        walk(m, &mut Vec::new(), &mut out);
    }
    out
}

/// The path as structured-merge-diff prints it (`.spec.template.spec.containers[name="web"].image`).
pub fn path_string(path: &[Elem]) -> String {
    let mut s = String::new();
    for e in path {
        match e {
            Elem::Field(f) => {
                s.push('.');
                s.push_str(f);
            }
            Elem::Key(k) => {
                let parsed: Value = serde_json::from_str(k).unwrap_or(Value::Null);
                let parts: Vec<String> = parsed
                    .as_object()
                    .map(|m| m.iter().map(|(k, v)| format!("{k}={v}")).collect())
                    .unwrap_or_default();
                s.push('[');
                s.push_str(&parts.join(","));
                s.push(']');
            }
            Elem::Value(v) => {
                s.push_str("[=");
                s.push_str(v);
                s.push(']');
            }
        }
    }
    s
}

/// One `metadata.managedFields[]` entry with its parsed set.
#[derive(Debug, Clone, PartialEq)]
pub struct Entry {
    pub manager: String,
    pub operation: String,
    pub api_version: String,
    pub time: String,
    pub subresource: Option<String>,
    pub set: FieldSet,
}

impl Entry {
    /// How conflict messages name this manager (`"other"`, `"kubectl-edit" using v1`).
    pub fn display(&self) -> String {
        let mut s = format!("{:?}", self.manager);
        if let Some(sub) = &self.subresource {
            s = format!("{s} with subresource {sub:?}");
        }
        if self.operation == "Update" {
            s = format!("{s} using {}", self.api_version);
        }
        s
    }

    fn same_identity(&self, manager: &str, operation: &str, subresource: Option<&str>) -> bool {
        self.manager == manager
            && self.operation == operation
            && self.subresource.as_deref() == subresource
    }
}

/// Reads `metadata.managedFields`.
pub fn entries(obj: &Value) -> Vec<Entry> {
    obj.pointer("/metadata/managedFields")
        .and_then(Value::as_array)
        .map(|a| {
            a.iter()
                .map(|e| Entry {
                    manager: e["manager"].as_str().unwrap_or_default().to_string(),
                    operation: e["operation"].as_str().unwrap_or_default().to_string(),
                    api_version: e["apiVersion"].as_str().unwrap_or_default().to_string(),
                    time: e["time"].as_str().unwrap_or_default().to_string(),
                    subresource: e["subresource"].as_str().map(str::to_string),
                    set: from_fields_v1(&e["fieldsV1"]),
                })
                .collect()
        })
        .unwrap_or_default()
}

/// Writes `metadata.managedFields` (entries with empty sets are dropped, as the apiserver does).
pub fn write_entries(obj: &mut Value, list: &[Entry]) {
    let rendered: Vec<Value> = list
        .iter()
        .filter(|e| !e.set.is_empty())
        .map(|e| {
            let mut m = Map::new();
            m.insert("manager".into(), json!(e.manager));
            m.insert("operation".into(), json!(e.operation));
            m.insert("apiVersion".into(), json!(e.api_version));
            m.insert("time".into(), json!(e.time));
            m.insert("fieldsType".into(), json!("FieldsV1"));
            m.insert("fieldsV1".into(), to_fields_v1(&e.set));
            if let Some(s) = &e.subresource {
                m.insert("subresource".into(), json!(s));
            }
            Value::Object(m)
        })
        .collect();
    if let Some(meta) = obj.get_mut("metadata").and_then(Value::as_object_mut) {
        if rendered.is_empty() {
            meta.shift_remove("managedFields");
        } else {
            meta.insert("managedFields".into(), Value::Array(rendered));
        }
    }
}

/// A field owned by another manager whose value an apply would change.
#[derive(Debug, Clone, PartialEq)]
pub struct Conflict {
    pub manager: String,
    pub path: Path,
}

/// Outcome of [`apply_ownership`].
pub struct ApplyOutcome {
    pub object: Value,
    pub entries: Vec<Entry>,
}

fn is_leaf_path(path: &[Elem]) -> bool {
    matches!(path.last(), Some(Elem::Field(_)))
}

/// Who writes, with which API version, at what time (`managedFields` identity of a write).
#[derive(Debug, Clone, Copy)]
pub struct Writer<'a> {
    pub manager: &'a str,
    pub api_version: &'a str,
    pub now: &'a str,
}

/// Server-side apply of `applied` (already stripped of identity fields) onto `live`.
/// Returns the merged object and the new ownership, or the conflicts when `force` is false.
pub fn apply_ownership(
    kind: &str,
    live: &Value,
    applied: &Value,
    writer: Writer<'_>,
    force: bool,
    scope: Scope,
) -> Result<ApplyOutcome, Vec<Conflict>> {
    let Writer {
        manager,
        api_version,
        now,
    } = writer;
    let new_set = object_set(kind, applied, scope);
    let mut list = entries(live);
    let mine = |e: &Entry| e.same_identity(manager, "Apply", None);

    let mut conflicts = Vec::new();
    for e in list.iter().filter(|e| !mine(e)) {
        for p in new_set.intersection(&e.set) {
            if is_leaf_path(p) && value_at(kind, live, p) != value_at(kind, applied, p) {
                conflicts.push(Conflict {
                    manager: e.display(),
                    path: p.clone(),
                });
            }
        }
    }
    if !conflicts.is_empty() && !force {
        conflicts.sort_by_key(|c| path_string(&c.path));
        return Err(conflicts);
    }
    if force {
        for e in list.iter_mut().filter(|e| !mine(e)) {
            let taken: Vec<Path> = e
                .set
                .iter()
                .filter(|p| {
                    new_set.contains(*p)
                        && is_leaf_path(p)
                        && value_at(kind, live, p) != value_at(kind, applied, p)
                })
                .cloned()
                .collect();
            for p in taken {
                e.set.remove(&p);
            }
        }
    }

    let mut merged = merge(kind, live, applied, &mut Vec::new());
    let old_set = list
        .iter()
        .find(|e| mine(e))
        .map(|e| e.set.clone())
        .unwrap_or_default();
    let others: FieldSet = list
        .iter()
        .filter(|e| !mine(e))
        .flat_map(|e| e.set.iter().cloned())
        .collect();
    let owned_after: FieldSet = others.union(&new_set).cloned().collect();
    for p in old_set.difference(&new_set) {
        if others.contains(p) {
            continue;
        }
        if remove_at(kind, &mut merged, p) {
            prune_unowned_parents(kind, &mut merged, p, &owned_after);
        }
    }

    let old_mine = list.iter().position(mine);
    let object_changed = merged != *live;
    match old_mine {
        Some(i) => {
            let changed_set = list[i].set != new_set;
            list[i].set = new_set;
            if object_changed || changed_set {
                list[i].time = now.to_string();
                list[i].api_version = api_version.to_string();
            }
        }
        None => list.push(Entry {
            manager: manager.to_string(),
            operation: "Apply".into(),
            api_version: api_version.to_string(),
            time: now.to_string(),
            subresource: None,
            set: new_set,
        }),
    }
    Ok(ApplyOutcome {
        object: merged,
        entries: list,
    })
}

/// Drops parents left behind by a removal when nothing below them is owned any more (e.g. the server-defaulted
/// remainder of a probe a manager stopped applying); keeps top-level fields and non-empty metadata maps.
fn prune_unowned_parents(kind: &str, obj: &mut Value, removed: &[Elem], owned: &FieldSet) {
    let mut parent = removed.to_vec();
    while parent.len() > 2 {
        parent.pop();
        if matches!(parent.last(), Some(Elem::Key(_) | Elem::Value(_))) {
            // A list item someone still keeps in the set stays; otherwise it goes with its content.
            if owned.contains(&parent) {
                return;
            }
        }
        let owned_below = owned
            .iter()
            .any(|p| p.len() >= parent.len() && p[..parent.len()] == parent[..]);
        if owned_below {
            return;
        }
        let is_empty = value_at(kind, obj, &parent).is_some_and(|v| match v {
            Value::Object(m) => m.is_empty(),
            Value::Array(a) => a.is_empty(),
            _ => false,
        });
        let under_metadata = matches!(parent.first(), Some(Elem::Field(f)) if f == "metadata");
        if under_metadata && !is_empty {
            return;
        }
        remove_at(kind, obj, &parent);
    }
}

/// Records an Update-operation write by `manager`: it takes the fields whose values changed; fields that vanished
/// leave every set.
pub fn update_ownership(
    kind: &str,
    old: Option<&Value>,
    new: &mut Value,
    writer: Writer<'_>,
    subresource: Option<&str>,
    scope: Scope,
) {
    let Writer {
        manager,
        api_version,
        now,
    } = writer;
    let mut list = old.map(entries).unwrap_or_default();
    let new_set = object_set(kind, new, scope);
    let old_set = old.map(|o| object_set(kind, o, scope)).unwrap_or_default();
    let changed: FieldSet = new_set
        .iter()
        .filter(|p| old.is_none_or(|o| value_at(kind, o, p) != value_at(kind, new, p)))
        .cloned()
        .collect();
    let gone: FieldSet = old_set.difference(&new_set).cloned().collect();
    if changed.is_empty() && gone.is_empty() {
        write_entries(new, &list);
        return;
    }
    for e in &mut list {
        e.set.retain(|p| !changed.contains(p) && !gone.contains(p));
    }
    match list
        .iter_mut()
        .find(|e| e.same_identity(manager, "Update", subresource))
    {
        Some(e) => {
            e.set.extend(changed);
            e.time = now.to_string();
            e.api_version = api_version.to_string();
        }
        None if !changed.is_empty() => list.push(Entry {
            manager: manager.to_string(),
            operation: "Update".into(),
            api_version: api_version.to_string(),
            time: now.to_string(),
            subresource: subresource.map(str::to_string),
            set: changed,
        }),
        None => {}
    }
    write_entries(new, &list);
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn fields_v1_of_recorded_deployment_round_trips() {
        let recorded = json!({"f:metadata": {"f:labels": {"f:app.kubernetes.io/managed-by": {}}}, "f:spec": {"f:replicas": {}, "f:selector": {}, "f:template": {"f:metadata": {"f:labels": {"f:app": {}}}, "f:spec": {"f:containers": {"k:{\"name\":\"web\"}": {".": {}, "f:env": {"k:{\"name\":\"VERSION\"}": {".": {}, "f:name": {}, "f:value": {}}}, "f:image": {}, "f:name": {}, "f:ports": {"k:{\"containerPort\":8080,\"protocol\":\"TCP\"}": {".": {}, "f:containerPort": {}}}, "f:readinessProbe": {"f:httpGet": {"f:path": {}, "f:port": {}}, "f:periodSeconds": {}}}}, "f:terminationGracePeriodSeconds": {}}}}});
        let applied = json!({"metadata": {"labels": {"app.kubernetes.io/managed-by": "devloop"}}, "spec": {"replicas": 2, "selector": {"matchLabels": {"app": "web"}}, "template": {"metadata": {"labels": {"app": "web"}}, "spec": {"terminationGracePeriodSeconds": 2, "containers": [{"name": "web", "image": "x", "ports": [{"containerPort": 8080}], "env": [{"name": "VERSION", "value": "1"}], "readinessProbe": {"httpGet": {"path": "/", "port": 8080}, "periodSeconds": 1}}]}}}});
        let set = object_set("Deployment", &applied, Scope::Main);
        assert_eq!(to_fields_v1(&set), recorded);
        assert_eq!(from_fields_v1(&recorded), set);
    }

    #[test]
    fn a_services_selector_is_one_atomic_field() {
        // ServiceSpec.Selector is `+mapType=atomic`: its field set is `f:selector`, not one entry per key, and an
        // apply replaces the whole map.
        let svc =
            json!({"spec": {"selector": {"app": "api", "tier": "web"}, "ports": [{"port": 80}]}});
        let set = object_set("Service", &svc, Scope::Main);
        assert_eq!(
            to_fields_v1(&set)["f:spec"]["f:selector"],
            json!({}),
            "{}",
            to_fields_v1(&set)
        );
        let live = json!({"spec": {"selector": {"app": "api", "devloop.dev/color": "blue"}}});
        let applied = json!({"spec": {"selector": {"app": "api"}}});
        let merged = merge("Service", &live, &applied, &mut Vec::new());
        assert_eq!(merged["spec"]["selector"], json!({"app": "api"}));
        // A Pod's nodeSelector stays a granular map.
        let pod = json!({"spec": {"nodeSelector": {"a": "1"}}});
        let merged = merge(
            "Pod",
            &pod,
            &json!({"spec": {"nodeSelector": {"b": "2"}}}),
            &mut Vec::new(),
        );
        assert_eq!(merged["spec"]["nodeSelector"], json!({"a": "1", "b": "2"}));
    }

    #[test]
    fn conflict_path_rendering() {
        let p = vec![
            Elem::Field("spec".into()),
            Elem::Field("containers".into()),
            Elem::Key("{\"name\":\"web\"}".into()),
            Elem::Field("image".into()),
        ];
        assert_eq!(path_string(&p), ".spec.containers[name=\"web\"].image");
    }
}
