//! Fake API server, controllers: store state → the writes kube-controller-manager, the scheduler and the kubelet
//! would make (ReplicaSets and pods for Deployments, Job pods and conditions, StatefulSet/DaemonSet pods, garbage
//! collection, namespace cleanup, pod status); must only write through the store so watches see every change.

use std::collections::HashMap;

use serde_json::{Map, Value, json};

use super::apply;
use super::fieldset::{self, Scope, Writer};
use super::pods::{NODE_NAME, PodSim, PodState};
use super::resources::{self, ResourceDef};
use super::state::{ObjKey, State};
use super::status::ApiError;
use super::util::{
    canonical_json, fnv32a, name_suffix, now_nanos, parse_rfc3339, rfc3339, safe_encode,
};
use super::volumes;

const KCM: &str = "kube-controller-manager";

fn res(kind: &str) -> &'static ResourceDef {
    resources::find_kind(kind).expect("controller kinds are in the resource table")
}

fn meta_str<'a>(obj: &'a Value, field: &str) -> &'a str {
    obj.get("metadata")
        .and_then(|m| m.get(field))
        .and_then(Value::as_str)
        .unwrap_or_default()
}

fn is_terminating(obj: &Value) -> bool {
    obj.get("metadata")
        .and_then(|m| m.get("deletionTimestamp"))
        .is_some()
}

fn owner_uids(obj: &Value) -> Vec<&str> {
    owner_refs(obj)
        .iter()
        .filter_map(|r| r["uid"].as_str())
        .collect()
}

fn owned_by(obj: &Value, uid: &str) -> bool {
    owner_refs(obj).iter().any(|r| r["uid"] == uid)
}

fn owner_ref(owner: &Value, r: &ResourceDef) -> Value {
    json!({
        "apiVersion": r.api_version(), "kind": r.kind, "name": meta_str(owner, "name"),
        "uid": meta_str(owner, "uid"), "controller": true, "blockOwnerDeletion": true
    })
}

fn pods_owned(state: &State, namespace: &str, uid: &str) -> Vec<Value> {
    state
        .list(res("Pod"), Some(namespace))
        .into_iter()
        .map(|(_, v)| v)
        .filter(|p| owned_by(p, uid))
        .cloned()
        .collect()
}

fn pod_ready(pod: &Value) -> bool {
    pod.pointer("/status/conditions")
        .and_then(Value::as_array)
        .is_some_and(|a| {
            a.iter()
                .any(|c| c["type"] == "Ready" && c["status"] == "True")
        })
}

fn pod_phase(pod: &Value) -> &str {
    pod.pointer("/status/phase")
        .and_then(Value::as_str)
        .unwrap_or("Pending")
}

fn template_hash(template: &Value) -> String {
    safe_encode(fnv32a(canonical_json(template).as_bytes()))
}

/// Creates an object as a controller would (managedFields entry for `manager`, defaults, create admission).
pub fn controller_create(
    state: &mut State,
    r: &'static ResourceDef,
    mut obj: Value,
    manager: &str,
) -> Value {
    apply::defaults(r, &mut obj);
    apply::admit_create(state, r, &mut obj);
    let now = rfc3339(now_nanos());
    let api_version = r.api_version();
    let scope = if r.has_status() {
        Scope::Main
    } else {
        Scope::All
    };
    let writer = Writer {
        manager,
        api_version: &api_version,
        now: &now,
    };
    fieldset::update_ownership(r.kind, None, &mut obj, writer, None, scope);
    state.insert_new(r, obj)
}

fn create_pod(
    state: &mut State,
    namespace: &str,
    name: &str,
    generate_name: Option<&str>,
    labels: Value,
    owner: Value,
    template: &Value,
) {
    let mut meta = Map::new();
    meta.insert("name".into(), json!(name));
    if let Some(g) = generate_name {
        meta.insert("generateName".into(), json!(g));
    }
    meta.insert("namespace".into(), json!(namespace));
    meta.insert("labels".into(), labels);
    if let Some(a) = template.pointer("/metadata/annotations") {
        meta.insert("annotations".into(), a.clone());
    }
    meta.insert("ownerReferences".into(), json!([owner]));
    let pod = json!({"kind": "Pod", "apiVersion": "v1", "metadata": meta, "spec": template["spec"].clone()});
    controller_create(state, res("Pod"), pod, KCM);
}

/// How a deletion ended.
pub enum Deleted {
    /// The object is gone; its last state.
    Gone(Value),
    /// The object still exists (graceful deletion, finalizers); its current state.
    Terminating(Value),
}

/// Deletes an object the way the apiserver and garbage collector do (`propagationPolicy`, pod grace periods,
/// namespace Terminating phase).
pub fn delete(
    state: &mut State,
    r: &'static ResourceDef,
    namespace: &str,
    name: &str,
    policy: Option<&str>,
    grace: Option<i64>,
) -> Result<Deleted, ApiError> {
    let obj = state
        .get(r, namespace, name)
        .cloned()
        .ok_or_else(|| ApiError::not_found(r.plural, r.group, name))?;
    let now = now_nanos();
    if is_terminating(&obj) {
        if r.kind == "Pod" && grace == Some(0) {
            return Ok(Deleted::Gone(
                state.remove(r, namespace, name).unwrap_or(obj),
            ));
        }
        return Ok(Deleted::Terminating(obj));
    }
    let mut new = obj.clone();
    match r.kind {
        "Namespace" => {
            new["metadata"]["deletionTimestamp"] = json!(rfc3339(now));
            new["status"]["phase"] = json!("Terminating");
            return Ok(Deleted::Terminating(state.replace(r, new)));
        }
        "Pod" => {
            if obj.pointer("/spec/nodeName").is_none() {
                return Ok(Deleted::Gone(
                    state.remove(r, namespace, name).unwrap_or(obj),
                ));
            }
            let grace = grace
                .or_else(|| {
                    obj.pointer("/spec/terminationGracePeriodSeconds")
                        .and_then(Value::as_i64)
                })
                .unwrap_or(30);
            let secs = u128::try_from(grace.max(0)).unwrap_or(0);
            new["metadata"]["deletionTimestamp"] = json!(rfc3339(now + secs * 1_000_000_000));
            new["metadata"]["deletionGracePeriodSeconds"] = json!(grace);
            let uid = meta_str(&obj, "uid").to_string();
            state.terminating_since.insert(uid, now);
            return Ok(Deleted::Terminating(state.replace(r, new)));
        }
        _ => {}
    }
    let default_policy = if r.kind == "Job" || r.kind == "CronJob" {
        "Orphan"
    } else {
        "Background"
    };
    let finalizer = match policy.unwrap_or(default_policy) {
        "Foreground" => Some("foregroundDeletion"),
        "Orphan" => Some("orphan"),
        _ => None,
    };
    let has_finalizers = obj
        .pointer("/metadata/finalizers")
        .and_then(Value::as_array)
        .is_some_and(|a| !a.is_empty());
    if finalizer.is_none() && !has_finalizers {
        return Ok(Deleted::Gone(
            state.remove(r, namespace, name).unwrap_or(obj),
        ));
    }
    new["metadata"]["deletionTimestamp"] = json!(rfc3339(now));
    new["metadata"]["deletionGracePeriodSeconds"] = json!(0);
    if let Some(f) = finalizer {
        let list = new["metadata"]["finalizers"]
            .as_array()
            .cloned()
            .unwrap_or_default();
        let mut list: Vec<Value> = list.into_iter().filter(|v| v != f).collect();
        list.push(json!(f));
        new["metadata"]["finalizers"] = Value::Array(list);
    }
    Ok(Deleted::Terminating(state.replace(r, new)))
}

/// Copies of the stored objects of `r` (copies: the controllers write to the state while they go).
fn objects_of(state: &State, r: &'static ResourceDef) -> Vec<(ObjKey, Value)> {
    state
        .list(r, None)
        .into_iter()
        .map(|(k, v)| (k.clone(), v.clone()))
        .collect()
}

/// Like [`objects_of`], without the objects that (with their dependents: ReplicaSets and Pods) did not change
/// since the controllers last converged in this epoch.
fn due_objects(state: &State, r: &'static ResourceDef) -> Vec<(ObjKey, Value)> {
    let since = match state.converged {
        Some((rv, epoch)) if epoch == state.epoch => rv,
        _ => return objects_of(state, r),
    };
    // The highest resourceVersion among each owner's dependents, Pods first so that a ReplicaSet's entry
    // reaches its Deployment.
    let mut dependents: HashMap<&str, u64> = HashMap::new();
    for kind in [res("Pod"), res("ReplicaSet")] {
        for (_, o) in state.list(kind, None) {
            let latest = rv_of(o).max(dependents.get(meta_str(o, "uid")).copied().unwrap_or(0));
            for owner in owner_refs(o) {
                if let Some(uid) = owner["uid"].as_str() {
                    let e = dependents.entry(uid).or_insert(0);
                    *e = (*e).max(latest);
                }
            }
        }
    }
    state
        .list(r, None)
        .into_iter()
        .filter(|(_, v)| {
            let uid = meta_str(v, "uid");
            rv_of(v).max(dependents.get(uid).copied().unwrap_or(0)) > since
                || state.moved_sims.contains(uid)
        })
        .map(|(k, v)| (k.clone(), v.clone()))
        .collect()
}

/// An object's resourceVersion as a number (`u64::MAX` when it has none: always "changed").
fn rv_of(o: &Value) -> u64 {
    meta_str(o, "resourceVersion").parse().unwrap_or(u64::MAX)
}

/// `metadata.ownerReferences` (empty when there are none).
fn owner_refs(obj: &Value) -> &[Value] {
    obj.get("metadata")
        .and_then(|m| m.get("ownerReferences"))
        .and_then(Value::as_array)
        .map_or(&[], Vec::as_slice)
}

fn res_of(key: &ObjKey) -> &'static ResourceDef {
    resources::RESOURCES
        .iter()
        .find(|r| r.group == key.group && r.plural == key.plural)
        .expect("stored objects have a resource")
}

/// What the garbage collector does to one dependent, decided from the state at the start of its pass.
enum Collect {
    /// Every owner is gone: delete in the background.
    Orphaned,
    /// An owner is being deleted with `orphan`: drop the reference to it.
    Release(String),
    /// An owner is being deleted in the foreground: delete this dependent too.
    Foreground,
}

/// Garbage collection: dependents of gone owners, foreground and orphan finalizers.
fn garbage_collect(state: &mut State) -> bool {
    let finalizers_of = |o: &Value| -> Vec<String> {
        o.pointer("/metadata/finalizers")
            .and_then(Value::as_array)
            .map(|a| {
                a.iter()
                    .filter_map(|f| f.as_str().map(str::to_string))
                    .collect()
            })
            .unwrap_or_default()
    };
    let decisions: Vec<(ObjKey, Collect)> = {
        let by_uid: std::collections::HashMap<&str, &Value> = state
            .objects
            .values()
            .map(|v| (meta_str(v, "uid"), v))
            .collect();
        state
            .objects
            .iter()
            .filter_map(|(key, obj)| {
                let owners = owner_uids(obj);
                if owners.is_empty() || is_terminating(obj) {
                    return None;
                }
                let live_owners: Vec<&Value> = owners
                    .iter()
                    .filter_map(|u| by_uid.get(u).copied())
                    .collect();
                if live_owners.is_empty() {
                    return Some((key.clone(), Collect::Orphaned));
                }
                if let Some(orphaning) = live_owners
                    .iter()
                    .find(|o| is_terminating(o) && finalizers_of(o).iter().any(|f| f == "orphan"))
                {
                    let uid = meta_str(orphaning, "uid").to_string();
                    return Some((key.clone(), Collect::Release(uid)));
                }
                live_owners
                    .iter()
                    .any(|o| {
                        is_terminating(o)
                            && finalizers_of(o).iter().any(|f| f == "foregroundDeletion")
                    })
                    .then(|| (key.clone(), Collect::Foreground))
            })
            .collect()
    };
    let mut changed = false;
    for (key, decision) in decisions {
        let r = res_of(&key);
        changed |= match decision {
            Collect::Orphaned => delete(
                state,
                r,
                &key.namespace,
                &key.name,
                Some("Background"),
                None,
            )
            .is_ok(),
            Collect::Foreground => delete(
                state,
                r,
                &key.namespace,
                &key.name,
                Some("Foreground"),
                None,
            )
            .is_ok(),
            Collect::Release(uid) => state.controller_write(
                r,
                &key.namespace,
                &key.name,
                "kube-controller-manager",
                None,
                |o| {
                    if let Some(a) = o
                        .pointer_mut("/metadata/ownerReferences")
                        .and_then(Value::as_array_mut)
                    {
                        a.retain(|r| r["uid"] != uid.as_str());
                        if a.is_empty()
                            && let Some(m) = o.get_mut("metadata").and_then(Value::as_object_mut)
                        {
                            m.shift_remove("ownerReferences");
                        }
                    }
                },
            ),
        };
    }
    // Owners waiting on finalizers go once nothing references them any more.
    let waiting: Vec<(ObjKey, String)> = state
        .objects
        .iter()
        .filter(|(key, obj)| {
            is_terminating(obj) && key.plural != "namespaces" && key.plural != "pods"
        })
        .map(|(key, obj)| (key.clone(), meta_str(obj, "uid").to_string()))
        .collect();
    for (key, uid) in waiting {
        let dependents = state.objects.values().any(|o| owned_by(o, &uid));
        if !dependents {
            state.remove(res_of(&key), &key.namespace, &key.name);
            changed = true;
        }
    }
    changed
}

fn namespaces(state: &mut State) -> bool {
    let mut changed = false;
    let now = now_nanos();
    let ns_res = res("Namespace");
    for (_, ns) in objects_of(state, ns_res) {
        let name = meta_str(&ns, "name").to_string();
        if !is_terminating(&ns) || state.stuck_namespaces.contains(&name) {
            continue;
        }
        // What is left in the namespace, and whether each is already being deleted.
        let content: Vec<(ObjKey, bool)> = state
            .objects
            .iter()
            .filter(|(k, _)| k.namespace == name)
            .map(|(k, o)| (k.clone(), is_terminating(o)))
            .collect();
        if content.is_empty() {
            let since = *state
                .namespace_empty_since
                .entry(name.clone())
                .or_insert(now);
            if now.saturating_sub(since) >= state.timing.namespace_cleanup.as_nanos() {
                state.remove(ns_res, "", &name);
                state.namespace_empty_since.remove(&name);
                changed = true;
            }
            continue;
        }
        for (k, terminating) in content {
            if !terminating {
                changed |= delete(
                    state,
                    res_of(&k),
                    &k.namespace,
                    &k.name,
                    Some("Background"),
                    None,
                )
                .is_ok();
            }
        }
    }
    changed
}

fn percent_or_int(v: Option<&Value>, total: i64, round_up: bool) -> i64 {
    match v {
        Some(Value::String(s)) if s.ends_with('%') => {
            let p: i64 = s.trim_end_matches('%').parse().unwrap_or(0);
            if round_up {
                (total * p + 99) / 100
            } else {
                total * p / 100
            }
        }
        Some(v) => v.as_i64().unwrap_or(0),
        None => 0,
    }
}

fn set_condition(
    conds: &mut Vec<Value>,
    ctype: &str,
    status: &str,
    reason: &str,
    message: &str,
    now: &str,
    with_update_time: bool,
) {
    let existing = conds.iter().position(|c| c["type"] == ctype);
    let (transition, update) = match existing.map(|i| &conds[i]) {
        Some(c) if c["status"] == status && c["reason"] == reason && c["message"] == message => (
            c["lastTransitionTime"].clone(),
            c.get("lastUpdateTime").cloned().unwrap_or(json!(now)),
        ),
        Some(c) if c["status"] == status => (c["lastTransitionTime"].clone(), json!(now)),
        _ => (json!(now), json!(now)),
    };
    let mut m = Map::new();
    m.insert("type".into(), json!(ctype));
    m.insert("status".into(), json!(status));
    if with_update_time {
        m.insert("lastUpdateTime".into(), update);
    }
    m.insert("lastTransitionTime".into(), transition);
    m.insert("reason".into(), json!(reason));
    m.insert("message".into(), json!(message));
    match existing {
        Some(i) => conds[i] = Value::Object(m),
        None => conds.push(Value::Object(m)),
    }
}

fn insert_nonzero(m: &mut Map<String, Value>, key: &str, v: i64) {
    if v != 0 {
        m.insert(key.into(), json!(v));
    }
}

fn deployments(state: &mut State) -> bool {
    let mut changed = false;
    let (dep_res, rs_res) = (res("Deployment"), res("ReplicaSet"));
    for (key, dep) in due_objects(state, dep_res) {
        if is_terminating(&dep) {
            continue;
        }
        let ns = key.namespace.clone();
        let uid = meta_str(&dep, "uid").to_string();
        let desired = dep
            .pointer("/spec/replicas")
            .and_then(Value::as_i64)
            .unwrap_or(1);
        let template = dep["spec"]["template"].clone();
        let hash = template_hash(&template);
        let rs_name = format!("{}-{hash}", key.name);
        let owned_rs: Vec<Value> = state
            .list(rs_res, Some(&ns))
            .into_iter()
            .filter(|(_, r)| owned_by(r, &uid) && !is_terminating(r))
            .map(|(_, v)| v.clone())
            .collect();
        let mut created_rs = false;
        if !owned_rs.iter().any(|r| meta_str(r, "name") == rs_name) {
            let revision = owned_rs
                .iter()
                .filter_map(|r| {
                    r.pointer("/metadata/annotations/deployment.kubernetes.io~1revision")?
                        .as_str()?
                        .parse::<i64>()
                        .ok()
                })
                .max()
                .unwrap_or(0)
                + 1;
            let mut labels = template
                .pointer("/metadata/labels")
                .cloned()
                .unwrap_or(json!({}));
            labels["pod-template-hash"] = json!(hash);
            let mut rs_template = template.clone();
            rs_template["metadata"]["labels"] = labels.clone();
            let mut selector = dep["spec"]["selector"].clone();
            selector["matchLabels"]["pod-template-hash"] = json!(hash);
            let surge = percent_or_int(
                dep.pointer("/spec/strategy/rollingUpdate/maxSurge"),
                desired,
                true,
            );
            let rs = json!({
                "kind": "ReplicaSet", "apiVersion": "apps/v1",
                "metadata": {
                    "name": rs_name, "namespace": ns, "labels": labels,
                    "annotations": {
                        "deployment.kubernetes.io/desired-replicas": desired.to_string(),
                        "deployment.kubernetes.io/max-replicas": (desired + surge).to_string(),
                        "deployment.kubernetes.io/revision": revision.to_string()
                    },
                    "ownerReferences": [owner_ref(&dep, dep_res)]
                },
                "spec": {"replicas": desired, "selector": selector, "template": rs_template}
            });
            controller_create(state, rs_res, rs, KCM);
            created_rs = true;
            changed = true;
        } else {
            changed |= state.controller_write(rs_res, &ns, &rs_name, KCM, None, |r| {
                r["spec"]["replicas"] = json!(desired);
                r["metadata"]["annotations"]["deployment.kubernetes.io/desired-replicas"] =
                    json!(desired.to_string());
            });
        }
        let new_rs_uid = state
            .get(rs_res, &ns, &rs_name)
            .map(|r| meta_str(r, "uid").to_string())
            .unwrap_or_default();
        let new_pods = pods_owned(state, &ns, &new_rs_uid);
        let new_available = new_pods
            .iter()
            .filter(|p| !is_terminating(p) && pod_ready(p))
            .count() as i64;
        // Old ReplicaSets shrink as new pods become available (newest old first keeps the most recent revision).
        let mut old_budget = (desired - new_available).max(0);
        let mut olds: Vec<Value> = owned_rs
            .into_iter()
            .filter(|r| meta_str(r, "name") != rs_name)
            .collect();
        olds.sort_by_key(|r| std::cmp::Reverse(meta_str(r, "creationTimestamp").to_string()));
        for old in olds {
            let current = old
                .pointer("/spec/replicas")
                .and_then(Value::as_i64)
                .unwrap_or(0);
            let target = current.min(old_budget);
            old_budget -= target;
            changed |=
                state.controller_write(rs_res, &ns, meta_str(&old, "name"), KCM, None, |r| {
                    r["spec"]["replicas"] = json!(target);
                });
        }
        // Status from the pods of every ReplicaSet this Deployment owns.
        let rs_uids: Vec<String> = state
            .list(rs_res, Some(&ns))
            .into_iter()
            .filter(|(_, r)| owned_by(r, &uid))
            .map(|(_, r)| meta_str(r, "uid").to_string())
            .collect();
        let pods: Vec<Value> = rs_uids
            .iter()
            .flat_map(|u| pods_owned(state, &ns, u))
            .filter(|p| !is_terminating(p))
            .collect();
        let replicas = pods.len() as i64;
        let updated = new_pods.iter().filter(|p| !is_terminating(p)).count() as i64;
        let ready = pods.iter().filter(|p| pod_ready(p)).count() as i64;
        let available = ready;
        let max_unavailable = percent_or_int(
            dep.pointer("/spec/strategy/rollingUpdate/maxUnavailable"),
            desired,
            false,
        );
        let generation = dep
            .pointer("/metadata/generation")
            .and_then(Value::as_i64)
            .unwrap_or(1);
        let now = rfc3339(now_nanos());
        let complete = updated == desired && replicas == desired && available == desired;
        changed |= state.controller_write(dep_res, &ns, &key.name, KCM, Some("status"), |d| {
            let mut conds = d
                .pointer("/status/conditions")
                .and_then(Value::as_array)
                .cloned()
                .unwrap_or_default();
            if available >= desired - max_unavailable {
                set_condition(
                    &mut conds,
                    "Available",
                    "True",
                    "MinimumReplicasAvailable",
                    "Deployment has minimum availability.",
                    &now,
                    true,
                );
            } else {
                set_condition(
                    &mut conds,
                    "Available",
                    "False",
                    "MinimumReplicasUnavailable",
                    "Deployment does not have minimum availability.",
                    &now,
                    true,
                );
            }
            let timed_out = conds
                .iter()
                .any(|c| c["type"] == "Progressing" && c["reason"] == "ProgressDeadlineExceeded");
            if complete {
                set_condition(
                    &mut conds,
                    "Progressing",
                    "True",
                    "NewReplicaSetAvailable",
                    &format!("ReplicaSet \"{rs_name}\" has successfully progressed."),
                    &now,
                    true,
                );
            } else if created_rs {
                set_condition(
                    &mut conds,
                    "Progressing",
                    "True",
                    "NewReplicaSetCreated",
                    &format!("Created new replica set \"{rs_name}\""),
                    &now,
                    true,
                );
            } else if !timed_out {
                set_condition(
                    &mut conds,
                    "Progressing",
                    "True",
                    "ReplicaSetUpdated",
                    &format!("ReplicaSet \"{rs_name}\" is progressing."),
                    &now,
                    true,
                );
            }
            let mut st = Map::new();
            st.insert("observedGeneration".into(), json!(generation));
            insert_nonzero(&mut st, "replicas", replicas);
            insert_nonzero(&mut st, "updatedReplicas", updated);
            insert_nonzero(&mut st, "readyReplicas", ready);
            insert_nonzero(&mut st, "availableReplicas", available);
            insert_nonzero(&mut st, "unavailableReplicas", (desired - available).max(0));
            st.insert("conditions".into(), Value::Array(conds));
            d["status"] = Value::Object(st);
        });
    }
    changed
}

fn replicasets(state: &mut State) -> bool {
    let mut changed = false;
    let rs_res = res("ReplicaSet");
    for (key, rs) in due_objects(state, rs_res) {
        if is_terminating(&rs) {
            continue;
        }
        let uid = meta_str(&rs, "uid").to_string();
        let want = rs
            .pointer("/spec/replicas")
            .and_then(Value::as_i64)
            .unwrap_or(1);
        let mut pods: Vec<Value> = pods_owned(state, &key.namespace, &uid)
            .into_iter()
            .filter(|p| !is_terminating(p))
            .collect();
        let have = pods.len() as i64;
        if have < want {
            let labels = rs
                .pointer("/spec/template/metadata/labels")
                .cloned()
                .unwrap_or(json!({}));
            for _ in have..want {
                let gen_name = format!("{}-", key.name);
                let name = format!("{gen_name}{}", name_suffix());
                create_pod(
                    state,
                    &key.namespace,
                    &name,
                    Some(&gen_name),
                    labels.clone(),
                    owner_ref(&rs, rs_res),
                    &rs["spec"]["template"],
                );
            }
            changed = true;
        } else if have > want {
            // Not-ready and newest pods go first, as the ReplicaSet controller ranks them.
            pods.sort_by_key(|p| {
                (
                    pod_ready(p),
                    std::cmp::Reverse(meta_str(p, "creationTimestamp").to_string()),
                )
            });
            for p in pods.iter().take((have - want) as usize) {
                changed |= delete(
                    state,
                    res("Pod"),
                    &key.namespace,
                    meta_str(p, "name"),
                    None,
                    None,
                )
                .is_ok();
            }
        }
        let pods: Vec<Value> = pods_owned(state, &key.namespace, &uid)
            .into_iter()
            .filter(|p| !is_terminating(p))
            .collect();
        let ready = pods.iter().filter(|p| pod_ready(p)).count() as i64;
        let generation = rs
            .pointer("/metadata/generation")
            .and_then(Value::as_i64)
            .unwrap_or(1);
        changed |= state.controller_write(
            rs_res,
            &key.namespace,
            &key.name,
            KCM,
            Some("status"),
            |r| {
                let mut st = Map::new();
                st.insert("replicas".into(), json!(pods.len()));
                insert_nonzero(&mut st, "fullyLabeledReplicas", pods.len() as i64);
                insert_nonzero(&mut st, "readyReplicas", ready);
                insert_nonzero(&mut st, "availableReplicas", ready);
                st.insert("observedGeneration".into(), json!(generation));
                r["status"] = Value::Object(st);
            },
        );
    }
    changed
}

fn jobs(state: &mut State) -> bool {
    let mut changed = false;
    let job_res = res("Job");
    for (key, job) in due_objects(state, job_res) {
        if is_terminating(&job) {
            continue;
        }
        let finished = job
            .pointer("/status/conditions")
            .and_then(Value::as_array)
            .is_some_and(|a| {
                a.iter().any(|c| {
                    (c["type"] == "Complete" || c["type"] == "Failed") && c["status"] == "True"
                })
            });
        if finished || job.pointer("/spec/suspend") == Some(&json!(true)) {
            continue;
        }
        let uid = meta_str(&job, "uid").to_string();
        let pods = pods_owned(state, &key.namespace, &uid);
        let succeeded = pods.iter().filter(|p| pod_phase(p) == "Succeeded").count() as i64;
        let failed = pods.iter().filter(|p| pod_phase(p) == "Failed").count() as i64;
        let active: Vec<&Value> = pods
            .iter()
            .filter(|p| !is_terminating(p) && !matches!(pod_phase(p), "Succeeded" | "Failed"))
            .collect();
        let ready = active.iter().filter(|p| pod_ready(p)).count() as i64;
        let completions = job
            .pointer("/spec/completions")
            .and_then(Value::as_i64)
            .unwrap_or(1);
        let parallelism = job
            .pointer("/spec/parallelism")
            .and_then(Value::as_i64)
            .unwrap_or(1);
        let backoff = job
            .pointer("/spec/backoffLimit")
            .and_then(Value::as_i64)
            .unwrap_or(6);
        let now = rfc3339(now_nanos());
        let outcome = if failed > backoff {
            Some((
                "FailureTarget",
                "Failed",
                "BackoffLimitExceeded",
                "Job has reached the specified backoff limit",
            ))
        } else if succeeded >= completions {
            Some((
                "SuccessCriteriaMet",
                "Complete",
                "CompletionsReached",
                "Reached expected number of succeeded pods",
            ))
        } else {
            None
        };
        let mut active_count = active.len() as i64;
        if outcome.is_none() {
            let want = parallelism.min(completions - succeeded);
            let labels = job
                .pointer("/spec/template/metadata/labels")
                .cloned()
                .unwrap_or(json!({}));
            while active_count < want {
                let gen_name = format!("{}-", key.name);
                let name = format!("{gen_name}{}", name_suffix());
                create_pod(
                    state,
                    &key.namespace,
                    &name,
                    Some(&gen_name),
                    labels.clone(),
                    owner_ref(&job, job_res),
                    &job["spec"]["template"],
                );
                active_count += 1;
                changed = true;
            }
        }
        changed |= state.controller_write(job_res, &key.namespace, &key.name, KCM, Some("status"), |j| {
            let start = j.pointer("/status/startTime").cloned().unwrap_or_else(|| json!(now));
            let mut st = Map::new();
            if let Some((target, final_type, reason, message)) = outcome {
                let cond = |t: &str| json!({"type": t, "status": "True", "lastProbeTime": now, "lastTransitionTime": now, "reason": reason, "message": message});
                st.insert("conditions".into(), json!([cond(target), cond(final_type)]));
            }
            st.insert("startTime".into(), start);
            if outcome.is_some_and(|o| o.1 == "Complete") {
                st.insert("completionTime".into(), json!(now));
            }
            if outcome.is_none() {
                insert_nonzero(&mut st, "active", active_count);
            }
            insert_nonzero(&mut st, "succeeded", succeeded);
            insert_nonzero(&mut st, "failed", failed);
            st.insert("terminating".into(), json!(0));
            st.insert("uncountedTerminatedPods".into(), json!({}));
            st.insert("ready".into(), json!(if outcome.is_some() { 0 } else { ready }));
            j["status"] = Value::Object(st);
        });
        if outcome.is_some() {
            for p in &active {
                changed |= delete(
                    state,
                    res("Pod"),
                    &key.namespace,
                    meta_str(p, "name"),
                    None,
                    None,
                )
                .is_ok();
            }
        }
    }
    changed
}

fn statefulsets(state: &mut State) -> bool {
    let mut changed = false;
    let sts_res = res("StatefulSet");
    for (key, sts) in due_objects(state, sts_res) {
        if is_terminating(&sts) {
            continue;
        }
        let ns = key.namespace.clone();
        let uid = meta_str(&sts, "uid").to_string();
        let want = sts
            .pointer("/spec/replicas")
            .and_then(Value::as_i64)
            .unwrap_or(1);
        let revision = format!("{}-{}", key.name, template_hash(&sts["spec"]["template"]));
        let pods = pods_owned(state, &ns, &uid);
        let revision_of = |p: &Value| {
            p.pointer("/metadata/labels/controller-revision-hash")
                .and_then(Value::as_str)
                .unwrap_or_default()
                .to_string()
        };
        let mut all_ready_before = true;
        for i in 0..want {
            let name = format!("{}-{i}", key.name);
            match pods.iter().find(|p| meta_str(p, "name") == name) {
                None if all_ready_before => {
                    let mut labels = sts
                        .pointer("/spec/template/metadata/labels")
                        .cloned()
                        .unwrap_or(json!({}));
                    labels["apps.kubernetes.io/pod-index"] = json!(i.to_string());
                    labels["controller-revision-hash"] = json!(revision);
                    labels["statefulset.kubernetes.io/pod-name"] = json!(name);
                    create_pod(
                        state,
                        &ns,
                        &name,
                        None,
                        labels,
                        owner_ref(&sts, sts_res),
                        &sts["spec"]["template"],
                    );
                    changed = true;
                    all_ready_before = false;
                }
                None => all_ready_before = false,
                Some(p) => {
                    if revision_of(p) != revision && !is_terminating(p) && all_ready_before {
                        changed |= delete(state, res("Pod"), &ns, &name, None, None).is_ok();
                        all_ready_before = false;
                    } else if !pod_ready(p) || is_terminating(p) {
                        all_ready_before = false;
                    }
                }
            }
        }
        for p in &pods {
            let ordinal: i64 = meta_str(p, "name")
                .rsplit('-')
                .next()
                .and_then(|s| s.parse().ok())
                .unwrap_or(0);
            if ordinal >= want && !is_terminating(p) {
                changed |= delete(state, res("Pod"), &ns, meta_str(p, "name"), None, None).is_ok();
            }
        }
        let pods: Vec<Value> = pods_owned(state, &ns, &uid)
            .into_iter()
            .filter(|p| !is_terminating(p))
            .collect();
        let ready = pods.iter().filter(|p| pod_ready(p)).count() as i64;
        let updated = pods.iter().filter(|p| revision_of(p) == revision).count() as i64;
        let generation = sts
            .pointer("/metadata/generation")
            .and_then(Value::as_i64)
            .unwrap_or(1);
        changed |= state.controller_write(sts_res, &ns, &key.name, KCM, Some("status"), |s| {
            let current_revision = if updated == pods.len() as i64 {
                revision.clone()
            } else {
                s.pointer("/status/currentRevision")
                    .and_then(Value::as_str)
                    .unwrap_or(&revision)
                    .to_string()
            };
            let mut st = Map::new();
            st.insert("observedGeneration".into(), json!(generation));
            st.insert("replicas".into(), json!(pods.len()));
            insert_nonzero(&mut st, "readyReplicas", ready);
            insert_nonzero(
                &mut st,
                "currentReplicas",
                if current_revision == revision {
                    updated
                } else {
                    pods.len() as i64 - updated
                },
            );
            insert_nonzero(&mut st, "updatedReplicas", updated);
            st.insert("currentRevision".into(), json!(current_revision));
            st.insert("updateRevision".into(), json!(revision));
            st.insert("collisionCount".into(), json!(0));
            st.insert("availableReplicas".into(), json!(ready));
            s["status"] = Value::Object(st);
        });
    }
    changed
}

fn daemonsets(state: &mut State) -> bool {
    let mut changed = false;
    let ds_res = res("DaemonSet");
    for (key, ds) in due_objects(state, ds_res) {
        if is_terminating(&ds) {
            continue;
        }
        let ns = key.namespace.clone();
        let uid = meta_str(&ds, "uid").to_string();
        let generation = ds
            .pointer("/metadata/generation")
            .and_then(Value::as_i64)
            .unwrap_or(1);
        let revision = template_hash(&ds["spec"]["template"]);
        let pods: Vec<Value> = pods_owned(state, &ns, &uid)
            .into_iter()
            .filter(|p| !is_terminating(p))
            .collect();
        let revision_of = |p: &Value| {
            p.pointer("/metadata/labels/controller-revision-hash")
                .and_then(Value::as_str)
                .unwrap_or_default()
                .to_string()
        };
        for p in pods.iter().filter(|p| revision_of(p) != revision) {
            changed |= delete(state, res("Pod"), &ns, meta_str(p, "name"), None, None).is_ok();
        }
        if !pods.iter().any(|p| revision_of(p) == revision) {
            let mut labels = ds
                .pointer("/spec/template/metadata/labels")
                .cloned()
                .unwrap_or(json!({}));
            labels["controller-revision-hash"] = json!(revision);
            labels["pod-template-generation"] = json!(generation.to_string());
            let gen_name = format!("{}-", key.name);
            let name = format!("{gen_name}{}", name_suffix());
            create_pod(
                state,
                &ns,
                &name,
                Some(&gen_name),
                labels,
                owner_ref(&ds, ds_res),
                &ds["spec"]["template"],
            );
            changed = true;
        }
        let pods: Vec<Value> = pods_owned(state, &ns, &uid)
            .into_iter()
            .filter(|p| !is_terminating(p))
            .collect();
        let ready = pods.iter().filter(|p| pod_ready(p)).count() as i64;
        let updated = pods.iter().filter(|p| revision_of(p) == revision).count() as i64;
        changed |= state.controller_write(ds_res, &ns, &key.name, KCM, Some("status"), |d| {
            let mut st = Map::new();
            st.insert("currentNumberScheduled".into(), json!(pods.len()));
            st.insert("numberMisscheduled".into(), json!(0));
            st.insert("desiredNumberScheduled".into(), json!(1));
            st.insert("numberReady".into(), json!(ready));
            st.insert("observedGeneration".into(), json!(generation));
            insert_nonzero(&mut st, "updatedNumberScheduled", updated);
            insert_nonzero(&mut st, "numberAvailable", ready);
            insert_nonzero(&mut st, "numberUnavailable", 1 - ready);
            d["status"] = Value::Object(st);
        });
    }
    changed
}

/// Scheduler + kubelet: binds new pods, creates their runtime sims and writes `status` from the sims.
fn kubelet(state: &mut State) -> bool {
    let mut changed = false;
    let pod_res = res("Pod");
    let now = now_nanos();
    for (key, pod) in due_objects(state, pod_res) {
        let uid = meta_str(&pod, "uid").to_string();
        if !state.pods.contains_key(&uid) {
            if volumes::waits_for_claims(state, &pod) {
                continue;
            }
            let target = state.behaviour.target_for(&pod);
            state.ip_seq += 1;
            let mut sim = PodSim::new(&pod, target.clone(), now, state.ip_seq);
            if target == PodState::Unschedulable {
                sim.set_state(None, &PodState::Unschedulable, now);
                sim.pending_target = None;
            }
            state.pods.insert(uid.clone(), sim);
        }
        let Some(sim) = state.pods.get(&uid).cloned() else {
            continue;
        };
        if sim.scheduled() && pod.pointer("/spec/nodeName").is_none() {
            changed |= state.controller_write(
                pod_res,
                &key.namespace,
                &key.name,
                "kube-scheduler",
                None,
                |p| {
                    p["spec"]["nodeName"] = json!(NODE_NAME);
                },
            );
            if let Some(placed) = state.get(pod_res, &key.namespace, &key.name).cloned() {
                let message = format!(
                    "Successfully assigned {}/{} to {NODE_NAME}",
                    key.namespace, key.name
                );
                volumes::scheduler_event(
                    state,
                    &placed,
                    "Normal",
                    "Scheduled",
                    "Binding",
                    &message,
                );
            }
        }
        let Some(current) = state.get(pod_res, &key.namespace, &key.name).cloned() else {
            continue;
        };
        let status = sim.status(&current["status"], &current, now);
        changed |= state.controller_write(
            pod_res,
            &key.namespace,
            &key.name,
            "kubelet",
            Some("status"),
            |p| {
                p["status"] = status;
            },
        );
    }
    changed
}

/// Runs the controllers until nothing changes (bounded). Workloads whose objects and dependents did not change
/// since the controllers last converged are skipped (their status would come out the same).
pub fn reconcile(state: &mut State) {
    for _ in 0..25 {
        let changed = garbage_collect(state)
            | namespaces(state)
            | deployments(state)
            | replicasets(state)
            | statefulsets(state)
            | daemonsets(state)
            | jobs(state)
            | volumes::bind(state)
            | volumes::schedule(state)
            | kubelet(state);
        if !changed {
            state.converged = Some((state.rv, state.epoch));
            state.moved_sims.clear();
            break;
        }
    }
    // Containers that started get their filesystem; pods that went lose theirs.
    state.rootfs.sync(&state.pods);
}

/// Runs every controller over every object: after changes the resourceVersions do not show (pod simulations,
/// behaviours, time).
pub fn reconcile_all(state: &mut State) {
    state.epoch += 1;
    reconcile(state);
}

/// Time-driven steps: pods reaching their target state, graceful deletions finishing, progress deadlines.
/// Reconciles only when one of them was due, so idle ticks stay cheap.
pub fn tick(state: &mut State) {
    let now = now_nanos();
    let mut due = false;
    let start_after = state.timing.pod_start.as_nanos();
    for (uid, sim) in &mut state.pods {
        if now.saturating_sub(sim.created_nanos) >= start_after
            && let Some(target) = sim.pending_target.take()
        {
            sim.set_state(None, &target, now);
            state.moved_sims.insert(uid.clone());
            due = true;
        }
    }
    let stop_after = state.timing.pod_termination.as_nanos();
    let pod_res = res("Pod");
    let terminating: Vec<(ObjKey, String, u128)> = state
        .list(pod_res, None)
        .into_iter()
        .filter(|(_, p)| is_terminating(p))
        .map(|(k, p)| {
            let grace = p
                .pointer("/metadata/deletionGracePeriodSeconds")
                .and_then(Value::as_u64)
                .map_or(u128::MAX, |g| u128::from(g) * 1_000_000_000);
            (k.clone(), meta_str(p, "uid").to_string(), grace)
        })
        .collect();
    for (key, uid, grace_nanos) in terminating {
        let since = *state.terminating_since.entry(uid.clone()).or_insert(now);
        if now.saturating_sub(since) >= stop_after.min(grace_nanos) {
            state.remove(pod_res, &key.namespace, &key.name);
            state.terminating_since.remove(&uid);
            due = true;
        }
    }
    let dep_res = res("Deployment");
    let stalled: Vec<(ObjKey, String)> = state
        .list(dep_res, None)
        .into_iter()
        .filter_map(|(k, dep)| {
            let deadline = dep
                .pointer("/spec/progressDeadlineSeconds")
                .and_then(Value::as_u64)
                .unwrap_or(600);
            let cond = dep
                .pointer("/status/conditions")
                .and_then(Value::as_array)?
                .iter()
                .find(|c| c["type"] == "Progressing")?;
            if cond["status"] != "True" || cond["reason"] == "NewReplicaSetAvailable" {
                return None;
            }
            let since = cond["lastUpdateTime"]
                .as_str()
                .and_then(parse_rfc3339)
                .unwrap_or(now);
            (now.saturating_sub(since) > u128::from(deadline) * 1_000_000_000).then(|| {
                let rs_name = cond["message"]
                    .as_str()
                    .and_then(|m| m.split('"').nth(1))
                    .unwrap_or_default()
                    .to_string();
                (k.clone(), rs_name)
            })
        })
        .collect();
    for (key, rs_name) in stalled {
        let ts = rfc3339(now);
        due |= state.controller_write(
            dep_res,
            &key.namespace,
            &key.name,
            KCM,
            Some("status"),
            |d| {
                let mut conds = d
                    .pointer("/status/conditions")
                    .and_then(Value::as_array)
                    .cloned()
                    .unwrap_or_default();
                set_condition(
                    &mut conds,
                    "Progressing",
                    "False",
                    "ProgressDeadlineExceeded",
                    &format!("ReplicaSet \"{rs_name}\" has timed out progressing."),
                    &ts,
                    true,
                );
                d["status"]["conditions"] = Value::Array(conds);
            },
        );
    }
    // Namespaces waiting out their cleanup delay are also time-driven, and so is the PV controller.
    due |= !state.namespace_empty_since.is_empty() || volumes::due(state, now);
    if due {
        reconcile(state);
    }
}
