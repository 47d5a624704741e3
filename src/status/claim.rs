//! Status: a pod the scheduler holds back for its PersistentVolumeClaims → whether each claim can still bind by
//! itself ([`ClaimOutlook`]) and, when one cannot, what to say about it and what would make it bind. Reads claims,
//! PersistentVolumes, StorageClasses and events; it never changes an object, and what it may not see (RBAC) is
//! left out of the judgement, not guessed.

use std::time::Duration;

use k8s_openapi::api::core::v1::{Event as CoreEvent, PersistentVolume, PersistentVolumeClaim};
use k8s_openapi::api::storage::v1::StorageClass;
use kube::api::{Api, ListParams};
use serde_json::Value;

use super::diagnosis::PodProblem;
use super::evidence::{event_time, recent_events};
use super::fields::{str_at, strings_at};
use super::selector::selector_matches;

/// How often the claims of a pod held back by them are looked at again while nothing else changes.
pub(super) const CLAIM_RECHECK: Duration = Duration::from_secs(1);
/// How long a pod's claim must have looked unbindable before the status check fails: a PersistentVolume (or the
/// claim itself) applied at about the same time by another step — a script's `kubectl apply`, a second project —
/// gets this long to appear. By then the PV controller has also recorded why it cannot bind (`FailedBinding`).
pub(super) const CLAIM_GRACE: Duration = Duration::from_secs(5);

/// Whether the scheduler left a pod Unschedulable because of its PersistentVolumeClaims (unbound, missing or
/// being deleted), rather than for want of a node (cpu, memory, affinity, taints).
pub(super) fn waits_for_claims(problem: &PodProblem) -> bool {
    problem.reason == "Unschedulable"
        && problem.container.is_none()
        && (problem
            .message
            .contains("pod has unbound immediate PersistentVolumeClaims")
            || problem.message.contains("persistentvolumeclaim \""))
}

/// The claims a pod's volumes use: `persistentVolumeClaim.claimName`, and `<pod>-<volume>` for generic
/// ephemeral volumes.
pub(super) fn pod_claims(pod: &Value) -> Vec<String> {
    let pod_name = str_at(pod, "/metadata/name").unwrap_or("");
    pod.pointer("/spec/volumes")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
        .filter_map(|v| match str_at(v, "/persistentVolumeClaim/claimName") {
            Some(claim) => Some(claim.to_string()),
            None => v
                .get("ephemeral")
                .map(|_| format!("{pod_name}-{}", str_at(v, "/name").unwrap_or(""))),
        })
        .collect()
}

/// What a claim asks for, in the words of its manifest: `5Gi, ReadWriteOnce, storageClassName ""`.
fn claim_request(claim: &Value) -> String {
    let size = str_at(claim, "/spec/resources/requests/storage").unwrap_or("no size");
    let modes = strings_at(claim, "/spec/accessModes");
    let modes = if modes.is_empty() {
        "no access modes".to_string()
    } else {
        modes.join("+")
    };
    let class = match str_at(claim, "/spec/storageClassName") {
        Some(c) => format!("storageClassName \"{c}\""),
        None => "no storageClassName".to_string(),
    };
    format!("{size}, {modes}, {class}")
}

/// A resource quantity (`1Gi`, `500Mi`, `2G`, `1.5Gi`, `1024`) in bytes; `None` when it cannot be read.
pub(super) fn quantity_bytes(q: &str) -> Option<f64> {
    let q = q.trim();
    let split = q
        .find(|c: char| !(c.is_ascii_digit() || c == '.'))
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

/// Whether the PV controller could bind `claim` to `pv`: the volume is free (or reserved for this claim), of the
/// same class (absent and `""` alike), offers every requested access mode and volume mode, is at least as large
/// as the request and matches the claim's selector.
fn volume_fits(pv: &Value, claim: &Value) -> bool {
    if pv.pointer("/metadata/deletionTimestamp").is_some() {
        return false;
    }
    let claim_ref = pv.pointer("/spec/claimRef").filter(|r| r.is_object());
    let reserved = claim_ref.is_some_and(|r| {
        str_at(r, "/name") == str_at(claim, "/metadata/name")
            && str_at(r, "/namespace") == str_at(claim, "/metadata/namespace")
    });
    if claim_ref.is_some() && !reserved {
        return false;
    }
    if !reserved && !matches!(str_at(pv, "/status/phase"), Some("Available") | None) {
        return false;
    }
    let class = |o: &Value| {
        str_at(o, "/spec/storageClassName")
            .unwrap_or("")
            .to_string()
    };
    if class(pv) != class(claim) {
        return false;
    }
    let offered = strings_at(pv, "/spec/accessModes");
    if !strings_at(claim, "/spec/accessModes")
        .iter()
        .all(|m| offered.contains(m))
    {
        return false;
    }
    let mode = |o: &Value| {
        str_at(o, "/spec/volumeMode")
            .unwrap_or("Filesystem")
            .to_string()
    };
    if mode(pv) != mode(claim) {
        return false;
    }
    let bytes = |o: &Value, p: &str| str_at(o, p).and_then(quantity_bytes).unwrap_or(0.0);
    if bytes(pv, "/spec/capacity/storage") < bytes(claim, "/spec/resources/requests/storage") {
        return false;
    }
    match claim.pointer("/spec/selector").filter(|s| s.is_object()) {
        Some(selector) => selector_matches(
            selector,
            pv.pointer("/metadata/labels").and_then(Value::as_object),
        ),
        None => true,
    }
}

/// Whether a claim can still become Bound without anyone changing the cluster.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) enum ClaimOutlook {
    /// Bound already (the pod's condition is older than the binding).
    Bound,
    /// Not bound yet, but the PV controller or a provisioner can bind it; the reason says why.
    MayBind(String),
    /// Nothing in the cluster can bind it; the reason says why.
    CannotBind(String),
}

/// Judges one claim of a pod from what the cluster shows. `claim` is `None` when it does not exist; `volumes`
/// and `classes` are `None` when they could not be listed (RBAC): then a pending claim is given the benefit of
/// the doubt.
pub(super) fn claim_outlook(
    claim: Option<&Value>,
    volumes: Option<&[Value]>,
    classes: Option<&[Value]>,
) -> ClaimOutlook {
    let Some(claim) = claim else {
        return ClaimOutlook::CannotBind("it does not exist".into());
    };
    if claim.pointer("/metadata/deletionTimestamp").is_some() {
        return ClaimOutlook::CannotBind("it is being deleted".into());
    }
    match str_at(claim, "/status/phase") {
        Some("Bound") => return ClaimOutlook::Bound,
        Some("Lost") => {
            return ClaimOutlook::CannotBind(format!(
                "it is Lost: its PersistentVolume `{}` no longer exists",
                str_at(claim, "/spec/volumeName").unwrap_or("")
            ));
        }
        _ => {}
    }
    if let Some(class) = str_at(claim, "/spec/storageClassName").filter(|c| !c.is_empty()) {
        return ClaimOutlook::MayBind(format!(
            "storage class `{class}` may provision a volume for it"
        ));
    }
    let default_class = |classes: &[Value]| {
        classes.iter().any(|c| {
            str_at(
                c,
                "/metadata/annotations/storageclass.kubernetes.io~1is-default-class",
            ) == Some("true")
        })
    };
    if str_at(claim, "/spec/storageClassName").is_none() {
        match classes {
            None => {
                return ClaimOutlook::MayBind(
                    "storage classes cannot be listed: a default one may provision it".into(),
                );
            }
            Some(c) if default_class(c) => {
                return ClaimOutlook::MayBind(
                    "the default storage class may provision a volume for it".into(),
                );
            }
            Some(_) => {}
        }
    }
    let Some(volumes) = volumes else {
        return ClaimOutlook::MayBind("PersistentVolumes cannot be listed: one may fit it".into());
    };
    if let Some(name) = str_at(claim, "/spec/volumeName") {
        return match volumes
            .iter()
            .find(|v| str_at(v, "/metadata/name") == Some(name))
        {
            Some(pv) if volume_fits(pv, claim) => {
                ClaimOutlook::MayBind(format!("PersistentVolume `{name}` fits it"))
            }
            Some(_) => ClaimOutlook::CannotBind(format!(
                "it names PersistentVolume `{name}`, which does not fit it or is bound to another claim"
            )),
            None => ClaimOutlook::CannotBind(format!(
                "it names PersistentVolume `{name}`, which does not exist"
            )),
        };
    }
    match volumes.iter().find(|pv| volume_fits(pv, claim)) {
        Some(pv) => ClaimOutlook::MayBind(format!(
            "PersistentVolume `{}` fits it",
            str_at(pv, "/metadata/name").unwrap_or("")
        )),
        None => ClaimOutlook::CannotBind(
            "no PersistentVolume fits it and no storage class is set to provision one".into(),
        ),
    }
}

/// One claim of a pod that is not bound, as the status check reports it.
#[derive(Debug, Clone)]
pub(super) struct UnboundClaim {
    /// `persistentvolumeclaim `data` (namespace `shop`; 5Gi, ReadWriteOnce, storageClassName "")`.
    pub(super) label: String,
    pub(super) outlook: ClaimOutlook,
    /// The newest event about the claim (the PV controller's `FailedBinding`): who said it, and what.
    pub(super) last_event: Option<(String, String)>,
    /// Its recent events, formatted like the pod's.
    pub(super) events: Vec<String>,
    /// What would make it bind.
    pub(super) hint: String,
    pub(super) exists: bool,
}

impl UnboundClaim {
    /// `persistentvolumeclaim `data` (…) cannot bind: <why>; persistentvolume-controller: "<message>"`.
    pub(super) fn describe(&self) -> String {
        if !self.exists {
            return format!("{} does not exist", self.label);
        }
        let state = match &self.outlook {
            ClaimOutlook::CannotBind(why) => format!("cannot bind: {why}"),
            ClaimOutlook::MayBind(why) => format!("is not bound yet ({why})"),
            ClaimOutlook::Bound => "is bound".to_string(),
        };
        match &self.last_event {
            Some((source, m)) => format!("{} {state}; {source}: \"{m}\"", self.label),
            None => format!("{} {state}; no event about it yet", self.label),
        }
    }
}

/// The claims of `pod` that are not bound, each judged (`get` on the claims, `list` on PersistentVolumes and
/// StorageClasses, `list` on events; what is forbidden is left out of the judgement, not guessed).
pub(super) async fn unbound_claims(
    client: &kube::Client,
    namespace: &str,
    pod: &Value,
) -> Vec<UnboundClaim> {
    let claims_api: Api<PersistentVolumeClaim> = Api::namespaced(client.clone(), namespace);
    let list_of = |r: Result<Vec<Value>, kube::Error>, what: &str| match r {
        Ok(items) => Some(items),
        Err(e) => {
            tracing::debug!(error = %e, what, "cannot list for the claim check");
            None
        }
    };
    let volumes = list_of(
        Api::<PersistentVolume>::all(client.clone())
            .list(&ListParams::default())
            .await
            .map(|l| {
                l.items
                    .iter()
                    .filter_map(|v| serde_json::to_value(v).ok())
                    .collect()
            }),
        "persistentvolumes",
    );
    let classes = list_of(
        Api::<StorageClass>::all(client.clone())
            .list(&ListParams::default())
            .await
            .map(|l| {
                l.items
                    .iter()
                    .filter_map(|v| serde_json::to_value(v).ok())
                    .collect()
            }),
        "storageclasses",
    );
    let events = Api::<CoreEvent>::namespaced(client.clone(), namespace)
        .list(&ListParams::default())
        .await
        .map(|l| l.items)
        .unwrap_or_default();
    let mut out = Vec::new();
    for name in pod_claims(pod) {
        let claim = match claims_api.get_opt(&name).await {
            Ok(c) => c.and_then(|c| serde_json::to_value(c).ok()),
            Err(e) => {
                // Forbidden or unreachable: the claim may well be bound; say nothing rather than guess.
                tracing::debug!(claim = %name, error = %e, "cannot get the claim");
                continue;
            }
        };
        let outlook = claim_outlook(claim.as_ref(), volumes.as_deref(), classes.as_deref());
        if outlook == ClaimOutlook::Bound {
            continue;
        }
        let label = match &claim {
            Some(c) => format!(
                "persistentvolumeclaim `{name}` (namespace `{namespace}`; {})",
                claim_request(c)
            ),
            None => format!("persistentvolumeclaim `{name}` (namespace `{namespace}`)"),
        };
        let uid = claim.as_ref().and_then(|c| str_at(c, "/metadata/uid"));
        let about: Vec<&CoreEvent> = events
            .iter()
            .filter(|e| {
                e.involved_object.kind.as_deref() == Some("PersistentVolumeClaim")
                    && e.involved_object.name.as_deref() == Some(name.as_str())
                    && uid.is_none_or(|u| e.involved_object.uid.as_deref().is_none_or(|g| g == u))
            })
            .collect();
        let last_event = about.iter().max_by_key(|e| event_time(e)).map(|e| {
            let source = e
                .source
                .as_ref()
                .and_then(|s| s.component.clone())
                .or_else(|| e.reporting_component.clone())
                .filter(|s| !s.is_empty())
                .unwrap_or_else(|| "its last event".to_string());
            (
                source,
                e.message.as_deref().unwrap_or("").trim_end().to_string(),
            )
        });
        let hint = match (&claim, &outlook) {
            (None, _) => format!(
                "add the PersistentVolumeClaim `{name}` to the manifests, or fix `claimName` in the pod's volumes"
            ),
            (Some(c), _) => format!(
                "create a PersistentVolume that fits the claim (capacity of at least {}, access modes {}, the same storageClassName), or set a storageClassName the cluster provisions (`kubectl get storageclass`)",
                str_at(c, "/spec/resources/requests/storage").unwrap_or("its request"),
                strings_at(c, "/spec/accessModes").join("+")
            ),
        };
        out.push(UnboundClaim {
            events: recent_events(&events, "PersistentVolumeClaim", &name, uid),
            label,
            outlook,
            last_event,
            hint,
            exists: claim.is_some(),
        });
    }
    out
}

/// The first claim of a pod that cannot bind by itself, once the pod has waited `CLAIM_GRACE` for its claims;
/// `None` while every claim may still bind.
pub(super) fn claim_that_cannot_bind(
    claims: Vec<UnboundClaim>,
    waited: Duration,
) -> Option<UnboundClaim> {
    if waited < CLAIM_GRACE {
        return None;
    }
    claims
        .into_iter()
        .find(|c| matches!(c.outlook, ClaimOutlook::CannotBind(_)))
}
