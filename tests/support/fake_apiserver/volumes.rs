//! Fake API server, volumes: PersistentVolumes, claims and pods in the store → the writes and Events of the
//! persistentvolume-controller (static binding, no provisioner) and of the scheduler's volume-binding step, shaped
//! like 10-pvc-binding-*.jsonl; must only write through the store and must not provision volumes.

use std::collections::BTreeSet;

use serde_json::{Map, Value, json};

use super::pods::NODE_NAME;
use super::resources::{self, ResourceDef};
use super::state::{ObjKey, State};
use super::util::{fnv32a, now_nanos, rfc3339, rfc3339_nanos};

const KCM: &str = "kube-controller-manager";
const PV_CONTROLLER: &str = "persistentvolume-controller";
const SCHEDULER: &str = "default-scheduler";

/// The recorded binder message for a claim without a fitting volume and without a storage class.
pub const NO_VOLUME_NO_CLASS: &str =
    "no persistent volumes available for this claim and no storage class is set";
/// The recorded `PodScheduled` message for a pod whose claims are not bound yet (10-pvc-binding-*.jsonl).
pub const UNBOUND_CLAIMS: &str =
    "0/1 nodes are available: pod has unbound immediate PersistentVolumeClaims. not found";

fn res(kind: &str) -> &'static ResourceDef {
    resources::find_kind(kind).expect("volume kinds are in the resource table")
}

fn str_at<'a>(v: &'a Value, pointer: &str) -> &'a str {
    v.pointer(pointer)
        .and_then(Value::as_str)
        .unwrap_or_default()
}

fn is_terminating(obj: &Value) -> bool {
    obj.pointer("/metadata/deletionTimestamp").is_some()
}

/// A resource quantity (`1Gi`, `500Mi`, `2G`, `1.5Gi`, `1024`) in bytes; `None` when it cannot be read.
pub fn parse_quantity(q: &str) -> Option<f64> {
    let q = q.trim();
    let split = q
        .find(|c: char| !(c.is_ascii_digit() || c == '.' || c == '+' || c == '-'))
        .unwrap_or(q.len());
    let (number, suffix) = q.split_at(split);
    let n: f64 = number.parse().ok()?;
    let factor = match suffix {
        "" => 1.0,
        "m" => 1e-3,
        "k" => 1e3,
        "M" => 1e6,
        "G" => 1e9,
        "T" => 1e12,
        "P" => 1e15,
        "E" => 1e18,
        "Ki" => 1024.0,
        "Mi" => 1024f64.powi(2),
        "Gi" => 1024f64.powi(3),
        "Ti" => 1024f64.powi(4),
        "Pi" => 1024f64.powi(5),
        "Ei" => 1024f64.powi(6),
        _ => return None,
    };
    Some(n * factor)
}

fn string_list(v: Option<&Value>) -> Vec<&str> {
    v.and_then(Value::as_array)
        .map(|a| a.iter().filter_map(Value::as_str).collect())
        .unwrap_or_default()
}

/// A `LabelSelector` against labels (`matchLabels`, `matchExpressions`).
fn selector_matches(selector: &Value, labels: Option<&Map<String, Value>>) -> bool {
    let label = |k: &str| labels.and_then(|l| l.get(k)).and_then(Value::as_str);
    if let Some(ml) = selector.get("matchLabels").and_then(Value::as_object)
        && !ml.iter().all(|(k, v)| label(k) == v.as_str())
    {
        return false;
    }
    selector
        .get("matchExpressions")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
        .all(|e| {
            let values = string_list(e.get("values"));
            match (str_at(e, "/operator"), label(str_at(e, "/key"))) {
                ("In", Some(v)) => values.contains(&v),
                ("NotIn", Some(v)) => !values.contains(&v),
                ("NotIn", None) | ("Exists", Some(_)) | ("DoesNotExist", None) => true,
                _ => false,
            }
        })
}

/// `spec.storageClassName` of a PV or claim; absent and `""` are the same class when no default StorageClass
/// exists (the fake has no admission plugin that would set one).
fn class_of(obj: &Value) -> &str {
    str_at(obj, "/spec/storageClassName")
}

/// Whether the PV controller would bind `claim` to `pv` (class, access modes, size, volume mode, selector); the
/// caller checks that the PV is free or pre-bound to the claim.
fn fits(pv: &Value, claim: &Value) -> bool {
    if class_of(pv) != class_of(claim) {
        return false;
    }
    let offered = string_list(pv.pointer("/spec/accessModes"));
    if !string_list(claim.pointer("/spec/accessModes"))
        .iter()
        .all(|m| offered.contains(m))
    {
        return false;
    }
    let mode = |o: &Value| match str_at(o, "/spec/volumeMode") {
        "" => "Filesystem".to_string(),
        m => m.to_string(),
    };
    if mode(pv) != mode(claim) {
        return false;
    }
    let capacity = parse_quantity(str_at(pv, "/spec/capacity/storage")).unwrap_or(0.0);
    let request = parse_quantity(str_at(claim, "/spec/resources/requests/storage")).unwrap_or(0.0);
    if capacity < request {
        return false;
    }
    match claim.pointer("/spec/selector") {
        Some(sel) if sel.is_object() => selector_matches(
            sel,
            pv.pointer("/metadata/labels").and_then(Value::as_object),
        ),
        _ => true,
    }
}

/// `spec.claimRef` names this claim (by namespace and name, and uid when the reference has one).
fn claim_ref_names(pv: &Value, claim: &Value) -> bool {
    let r = &pv["spec"]["claimRef"];
    r.is_object()
        && str_at(r, "/namespace") == str_at(claim, "/metadata/namespace")
        && str_at(r, "/name") == str_at(claim, "/metadata/name")
        && (str_at(r, "/uid").is_empty() || str_at(r, "/uid") == str_at(claim, "/metadata/uid"))
}

/// The volume the PV controller picks for a Pending claim: the one `spec.volumeName` names, else a PV pre-bound
/// to it, else the smallest Available PV that fits.
fn match_volume(state: &State, claim: &Value) -> Option<Value> {
    let pvs: Vec<&Value> = state
        .list(res("PersistentVolume"), None)
        .into_iter()
        .map(|(_, v)| v)
        .filter(|v| !is_terminating(v))
        .collect();
    let wanted = str_at(claim, "/spec/volumeName");
    if !wanted.is_empty() {
        // A volume that does not exist yet is waited for without an event, as the real controller does.
        return pvs
            .into_iter()
            .find(|pv| str_at(pv, "/metadata/name") == wanted)
            .filter(|pv| {
                (!pv["spec"]["claimRef"].is_object() || claim_ref_names(pv, claim))
                    && fits(pv, claim)
            })
            .cloned();
    }
    if let Some(pv) = pvs
        .iter()
        .find(|pv| claim_ref_names(pv, claim) && fits(pv, claim))
    {
        return Some((*pv).clone());
    }
    pvs.into_iter()
        .filter(|pv| {
            !pv["spec"]["claimRef"].is_object()
                && str_at(pv, "/status/phase") == "Available"
                && fits(pv, claim)
        })
        .min_by(|a, b| {
            let size =
                |v: &Value| parse_quantity(str_at(v, "/spec/capacity/storage")).unwrap_or(0.0);
            size(a).total_cmp(&size(b))
        })
        .cloned()
}

/// Records an event the way the legacy core/v1 recorder does (`count`, `firstTimestamp`, `lastTimestamp`,
/// `source.component`): a repeat of the same reason and message about the same object bumps `count`.
fn legacy_event(
    state: &mut State,
    involved: &Value,
    kind: &str,
    type_: &str,
    reason: &str,
    message: &str,
) {
    let ev = res("Event");
    let namespace = str_at(involved, "/metadata/namespace").to_string();
    let uid = str_at(involved, "/metadata/uid");
    let now = now_nanos();
    let existing = state
        .list(ev, Some(&namespace))
        .into_iter()
        .find(|(_, e)| {
            e["involvedObject"]["uid"] == uid
                && e["reason"] == reason
                && e["message"] == message
                && e["source"]["component"] == PV_CONTROLLER
        })
        .map(|(k, _)| k.name.clone());
    if let Some(name) = existing {
        state.controller_write(ev, &namespace, &name, KCM, None, |e| {
            let count = e["count"].as_i64().unwrap_or(1);
            e["count"] = json!(count + 1);
            e["lastTimestamp"] = json!(rfc3339(now));
        });
        return;
    }
    let obj = json!({
        "kind": "Event", "apiVersion": "v1",
        "metadata": {"name": event_name(state, &namespace, str_at(involved, "/metadata/name"), now), "namespace": namespace},
        "involvedObject": involved_object(involved, kind),
        "reason": reason,
        "message": message,
        "source": {"component": PV_CONTROLLER},
        "firstTimestamp": rfc3339(now),
        "lastTimestamp": rfc3339(now),
        "count": 1,
        "type": type_,
        "eventTime": null,
        "reportingComponent": PV_CONTROLLER,
        "reportingInstance": ""
    });
    super::controllers::controller_create(state, ev, obj, KCM);
}

/// Records an event the way the scheduler's events.k8s.io recorder does (`eventTime`, `action`, no `count`, an
/// empty `source`; 07-events-pod-*.http): every call is a new Event object.
pub fn scheduler_event(
    state: &mut State,
    pod: &Value,
    type_: &str,
    reason: &str,
    action: &str,
    message: &str,
) {
    let ev = res("Event");
    let namespace = str_at(pod, "/metadata/namespace").to_string();
    let now = now_nanos();
    let micros = rfc3339_nanos(now);
    let event_time = format!("{}Z", &micros[..micros.len() - 4]);
    let obj = json!({
        "kind": "Event", "apiVersion": "v1",
        "metadata": {"name": event_name(state, &namespace, str_at(pod, "/metadata/name"), now), "namespace": namespace},
        "involvedObject": involved_object(pod, "Pod"),
        "reason": reason,
        "message": message,
        "source": {},
        "firstTimestamp": null,
        "lastTimestamp": null,
        "type": type_,
        "eventTime": event_time,
        "action": action,
        "reportingComponent": SCHEDULER,
        "reportingInstance": format!("{SCHEDULER}-{NODE_NAME}")
    });
    super::controllers::controller_create(state, ev, obj, "kube-scheduler");
}

fn involved_object(obj: &Value, kind: &str) -> Value {
    json!({
        "kind": kind,
        "namespace": str_at(obj, "/metadata/namespace"),
        "name": str_at(obj, "/metadata/name"),
        "uid": str_at(obj, "/metadata/uid"),
        "apiVersion": "v1",
        "resourceVersion": str_at(obj, "/metadata/resourceVersion")
    })
}

/// `<object>.<hex nanoseconds>`, as client-go names events; unique in the namespace.
fn event_name(state: &State, namespace: &str, object: &str, now: u128) -> String {
    let ev = res("Event");
    let mut n = u64::try_from(now).unwrap_or(u64::MAX);
    loop {
        let name = format!("{object}.{n:016x}");
        if state.get(ev, namespace, &name).is_none() {
            return name;
        }
        n = n.wrapping_add(1);
    }
}

/// The PV controller: new volumes become Available, Pending claims bind to a volume that fits (at once when the
/// volume was there first, after `Timing::claim_bind` when it appeared later), claims that cannot bind get
/// `FailedBinding` (repeated every `Timing::binder_resync`), volumes of deleted claims become Released.
pub fn bind(state: &mut State) -> bool {
    let now = now_nanos();
    let pv_res = res("PersistentVolume");
    let pvc_res = res("PersistentVolumeClaim");
    let mut changed = false;

    let volumes: Vec<Value> = state
        .list(pv_res, None)
        .into_iter()
        .map(|(_, v)| v.clone())
        .collect();
    for pv in &volumes {
        let uid = str_at(pv, "/metadata/uid").to_string();
        state.volume_seen.entry(uid).or_insert(now);
        let name = str_at(pv, "/metadata/name");
        let phase = str_at(pv, "/status/phase");
        let claim_ref = &pv["spec"]["claimRef"];
        let next = if phase == "Pending" {
            Some("Available")
        } else if phase == "Bound" && claim_ref.is_object() {
            let claim = state.get(
                pvc_res,
                str_at(claim_ref, "/namespace"),
                str_at(claim_ref, "/name"),
            );
            let gone =
                claim.is_none_or(|c| str_at(c, "/metadata/uid") != str_at(claim_ref, "/uid"));
            gone.then_some("Released")
        } else {
            None
        };
        if let Some(next) = next {
            changed |= state.controller_write(pv_res, "", name, KCM, Some("status"), |v| {
                v["status"]["phase"] = json!(next);
                v["status"]["lastPhaseTransitionTime"] = json!(rfc3339(now));
            });
        }
    }

    let claims: Vec<(ObjKey, Value)> = state
        .list(pvc_res, None)
        .into_iter()
        .map(|(k, v)| (k.clone(), v.clone()))
        .collect();
    let live: BTreeSet<String> = claims
        .iter()
        .map(|(_, c)| str_at(c, "/metadata/uid").to_string())
        .chain(
            volumes
                .iter()
                .map(|v| str_at(v, "/metadata/uid").to_string()),
        )
        .collect();
    state.volume_seen.retain(|uid, _| live.contains(uid));
    state.claim_synced.retain(|uid, _| live.contains(uid));

    for (key, claim) in claims {
        let uid = str_at(&claim, "/metadata/uid").to_string();
        let claim_seen = *state.volume_seen.entry(uid.clone()).or_insert(now);
        if str_at(&claim, "/status/phase") != "Pending" || is_terminating(&claim) {
            state.claim_synced.remove(&uid);
            continue;
        }
        if let Some(pv) = match_volume(state, &claim) {
            let pv_seen = state
                .volume_seen
                .get(str_at(&pv, "/metadata/uid"))
                .copied()
                .unwrap_or(now);
            // A claim that was waiting binds at the controller's next sync after the volume appeared.
            if pv_seen <= claim_seen
                || now.saturating_sub(pv_seen) >= state.timing.claim_bind.as_nanos()
            {
                bind_pair(state, &key, &claim, &pv, now);
                state.claim_synced.remove(&uid);
                changed = true;
            }
            continue;
        }
        let due = state
            .claim_synced
            .get(&uid)
            .is_none_or(|last| now.saturating_sub(*last) >= state.timing.binder_resync.as_nanos());
        if !due {
            continue;
        }
        state.claim_synced.insert(uid, now);
        if !str_at(&claim, "/spec/volumeName").is_empty() {
            continue;
        }
        let class = class_of(&claim).to_string();
        if class.is_empty() {
            legacy_event(
                state,
                &claim,
                "PersistentVolumeClaim",
                "Normal",
                "FailedBinding",
                NO_VOLUME_NO_CLASS,
            );
        } else {
            let sc = state.get(res("StorageClass"), "", &class).cloned();
            match sc {
                Some(sc) => {
                    let message = format!(
                        "Waiting for a volume to be created either by the external provisioner '{}' or manually by the system administrator. If volume creation is delayed, please verify that the provisioner is running and correctly registered.",
                        str_at(&sc, "/provisioner")
                    );
                    legacy_event(
                        state,
                        &claim,
                        "PersistentVolumeClaim",
                        "Normal",
                        "ExternalProvisioning",
                        &message,
                    );
                }
                None => {
                    let message = format!("storageclass.storage.k8s.io \"{class}\" not found");
                    legacy_event(
                        state,
                        &claim,
                        "PersistentVolumeClaim",
                        "Warning",
                        "ProvisioningFailed",
                        &message,
                    );
                }
            }
        }
        changed = true;
    }
    changed
}

/// Binds `claim` and `pv` as the PV controller does: the volume's `claimRef` and phase first, then the claim's
/// `volumeName`, annotations and status.
fn bind_pair(state: &mut State, key: &ObjKey, claim: &Value, pv: &Value, now: u128) {
    let pv_res = res("PersistentVolume");
    let pvc_res = res("PersistentVolumeClaim");
    let pv_name = str_at(pv, "/metadata/name").to_string();
    let prebound = pv["spec"]["claimRef"].is_object();
    let claim_ref = json!({
        "kind": "PersistentVolumeClaim",
        "namespace": key.namespace,
        "name": key.name,
        "uid": str_at(claim, "/metadata/uid"),
        "apiVersion": "v1",
        "resourceVersion": str_at(claim, "/metadata/resourceVersion")
    });
    state.controller_write(pv_res, "", &pv_name, KCM, None, |v| {
        v["spec"]["claimRef"] = claim_ref;
        if !prebound {
            v["metadata"]["annotations"]["pv.kubernetes.io/bound-by-controller"] = json!("yes");
        }
    });
    state.controller_write(pv_res, "", &pv_name, KCM, Some("status"), |v| {
        v["status"]["phase"] = json!("Bound");
        v["status"]["lastPhaseTransitionTime"] = json!(rfc3339(now));
    });
    let named = !str_at(claim, "/spec/volumeName").is_empty();
    state.controller_write(pvc_res, &key.namespace, &key.name, KCM, None, |c| {
        c["spec"]["volumeName"] = json!(pv_name);
        c["metadata"]["annotations"]["pv.kubernetes.io/bind-completed"] = json!("yes");
        if !named {
            c["metadata"]["annotations"]["pv.kubernetes.io/bound-by-controller"] = json!("yes");
        }
    });
    let modes = pv["spec"]["accessModes"].clone();
    let capacity = pv["spec"]["capacity"].clone();
    state.controller_write(
        pvc_res,
        &key.namespace,
        &key.name,
        KCM,
        Some("status"),
        |c| {
            c["status"] = json!({"phase": "Bound", "accessModes": modes, "capacity": capacity});
        },
    );
}

/// The claims a pod's volumes use (`persistentVolumeClaim.claimName`; generic ephemeral volumes name theirs
/// `<pod>-<volume>`).
pub fn claim_names(pod: &Value) -> Vec<String> {
    let pod_name = str_at(pod, "/metadata/name");
    pod.pointer("/spec/volumes")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
        .filter_map(|v| {
            if let Some(c) = v
                .pointer("/persistentVolumeClaim/claimName")
                .and_then(Value::as_str)
            {
                Some(c.to_string())
            } else if v.get("ephemeral").is_some() {
                Some(format!("{pod_name}-{}", str_at(v, "/name")))
            } else {
                None
            }
        })
        .collect()
}

/// Why the scheduler cannot place `pod` yet because of its claims (the `PodScheduled` message), or `None` when
/// every claim is Bound. A missing claim is reported as the scheduler's volume-binding plugin words it.
pub fn blocked_by_claims(state: &State, pod: &Value) -> Option<String> {
    let namespace = str_at(pod, "/metadata/namespace");
    let pvc_res = res("PersistentVolumeClaim");
    let mut unbound = false;
    for name in claim_names(pod) {
        match state.get(pvc_res, namespace, &name) {
            None => {
                return Some(format!(
                    "0/1 nodes are available: persistentvolumeclaim \"{name}\" not found. preemption: 0/1 nodes are available: 1 Preemption is not helpful for scheduling."
                ));
            }
            Some(c) if is_terminating(c) => {
                return Some(format!(
                    "0/1 nodes are available: persistentvolumeclaim \"{name}\" is being deleted. preemption: 0/1 nodes are available: 1 Preemption is not helpful for scheduling."
                ));
            }
            Some(c) if str_at(c, "/status/phase") != "Bound" => unbound = true,
            Some(_) => {}
        }
    }
    unbound.then(|| UNBOUND_CLAIMS.to_string())
}

/// What makes the scheduler retry a pod blocked by its claims: a PersistentVolume added, or one of its own
/// claims changed (10-pvc-binding-late-pv-timeline: one more `FailedScheduling` per pod when the PV appeared).
fn attempt_trigger(state: &State, pod: &Value) -> u64 {
    let namespace = str_at(pod, "/metadata/namespace");
    let mut seen = String::new();
    for (_, pv) in state.list(res("PersistentVolume"), None) {
        seen.push_str(str_at(pv, "/metadata/uid"));
        seen.push(',');
    }
    for name in claim_names(pod) {
        if let Some(c) = state.get(res("PersistentVolumeClaim"), namespace, &name) {
            seen.push_str(str_at(c, "/metadata/resourceVersion"));
        }
        seen.push(';');
    }
    u64::from(fnv32a(seen.as_bytes()))
}

/// The scheduler's volume-binding step for pods not placed yet: a pod whose claims are not all Bound gets
/// `PodScheduled False Unschedulable` and a `FailedScheduling` event per attempt; once they are bound it is left
/// to the kubelet stand-in, which places it (and records `Scheduled`).
pub fn schedule(state: &mut State) -> bool {
    let pod_res = res("Pod");
    let mut changed = false;
    let waiting: Vec<(ObjKey, Value)> = state
        .list(pod_res, None)
        .into_iter()
        .filter(|(_, p)| {
            !is_terminating(p)
                && p.pointer("/spec/nodeName").is_none()
                && !claim_names(p).is_empty()
                && !state.pods.contains_key(str_at(p, "/metadata/uid"))
        })
        .map(|(k, v)| (k.clone(), v.clone()))
        .collect();
    let live: BTreeSet<String> = waiting
        .iter()
        .map(|(_, p)| str_at(p, "/metadata/uid").to_string())
        .collect();
    state.volume_attempts.retain(|uid, _| live.contains(uid));
    for (key, pod) in waiting {
        let uid = str_at(&pod, "/metadata/uid").to_string();
        let Some(message) = blocked_by_claims(state, &pod) else {
            // Bound now: the kubelet stand-in only looks at pods that changed, so point it at this one.
            if state.volume_attempts.remove(&uid).is_some() {
                state.moved_sims.insert(uid);
                changed = true;
            }
            continue;
        };
        let trigger = attempt_trigger(state, &pod);
        if state.volume_attempts.get(&uid) == Some(&trigger) {
            continue;
        }
        state.volume_attempts.insert(uid, trigger);
        let ts = rfc3339(now_nanos());
        state.controller_write(
            pod_res,
            &key.namespace,
            &key.name,
            "kube-scheduler",
            Some("status"),
            |p| {
                let since = p
                    .pointer("/status/conditions")
                    .and_then(Value::as_array)
                    .and_then(|a| {
                        a.iter()
                            .find(|c| c["type"] == "PodScheduled" && c["status"] == "False")
                    })
                    .and_then(|c| c["lastTransitionTime"].as_str().map(str::to_string))
                    .unwrap_or(ts);
                p["status"]["conditions"] = json!([{
                    "type": "PodScheduled", "status": "False", "lastProbeTime": null,
                    "lastTransitionTime": since, "reason": "Unschedulable", "message": message
                }]);
            },
        );
        let current = state
            .get(pod_res, &key.namespace, &key.name)
            .cloned()
            .unwrap_or(pod);
        scheduler_event(
            state,
            &current,
            "Warning",
            "FailedScheduling",
            "Scheduling",
            &message,
        );
        changed = true;
    }
    changed
}

/// Whether the kubelet stand-in must leave `pod` alone: not placed yet and held back by its claims.
pub fn waits_for_claims(state: &State, pod: &Value) -> bool {
    pod.pointer("/spec/nodeName").is_none() && blocked_by_claims(state, pod).is_some()
}

/// Time-driven work of the PV controller: a bind whose delay ran out, a re-sync of a claim that cannot bind.
pub fn due(state: &State, now: u128) -> bool {
    let pvc_res = res("PersistentVolumeClaim");
    let resync = state.timing.binder_resync.as_nanos();
    state.list(pvc_res, None).into_iter().any(|(_, c)| {
        if str_at(c, "/status/phase") != "Pending" || is_terminating(c) {
            return false;
        }
        // A volume that fits: the bind is waiting for its delay.
        match_volume(state, c).is_some()
            || state
                .claim_synced
                .get(str_at(c, "/metadata/uid"))
                .is_none_or(|last| now.saturating_sub(*last) >= resync)
    })
}
