//! Status: one workload object → how far its rollout is ([`RolloutState`]), by kubectl's `rollout status` rules
//! (Deployments, StatefulSets, DaemonSets, Jobs, bare Pods). Pure judgement of the object: it must not talk to the
//! cluster.

use serde_json::Value;

use super::diagnosis::{describe, diagnose_pod};
use super::fields::{bool_at, condition, condition_true, int_at, opt_int_at, str_at};
use super::kind::WorkloadKind;

/// How far one workload is, judged from its object alone.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum RolloutState {
    /// Not a kind the status check waits for (ConfigMap, Service, …).
    NotWorkload,
    /// Still rolling out; the message says how far, in kubectl's words (`1 of 2 updated replicas are available`).
    Progressing(String),
    /// Rolled out, complete or ready. `note` says what was not checked (e.g. an `OnDelete` update strategy).
    Ready { note: Option<String> },
    /// Cannot become ready: `ProgressDeadlineExceeded`, a Job's `Failed` condition, a Pod in phase `Failed`.
    Failed { reason: String, message: String },
}

/// Judges a Deployment, StatefulSet, DaemonSet, Job or Pod by its `status` (kubectl's `rollout status` rules);
/// any other object is [`RolloutState::NotWorkload`].
pub fn rollout_state(object: &Value) -> RolloutState {
    let api_version = str_at(object, "/apiVersion").unwrap_or("");
    let kind = str_at(object, "/kind").unwrap_or("");
    match WorkloadKind::of(api_version, kind) {
        Some(k) => state_of(k, object),
        None => RolloutState::NotWorkload,
    }
}

pub(super) fn state_of(kind: WorkloadKind, object: &Value) -> RolloutState {
    match kind {
        WorkloadKind::Deployment => deployment_state(object),
        WorkloadKind::StatefulSet => statefulset_state(object),
        WorkloadKind::DaemonSet => daemonset_state(object),
        WorkloadKind::Job => job_state(object),
        WorkloadKind::Pod => pod_state(object),
    }
}

fn progressing(message: impl Into<String>) -> RolloutState {
    RolloutState::Progressing(message.into())
}

/// The controller has not yet acted on the latest spec (kubectl: "Waiting for … spec update to be observed").
fn spec_observed(object: &Value) -> bool {
    let generation = int_at(object, "/metadata/generation");
    let observed = int_at(object, "/status/observedGeneration");
    observed > 0 && observed >= generation
}

pub(super) const OBSERVING: &str = "waiting for the controller to observe the new spec";

fn deployment_state(d: &Value) -> RolloutState {
    if !spec_observed(d) {
        return progressing(OBSERVING);
    }
    if let Some(c) = condition(d, "Progressing")
        && str_at(c, "/reason") == Some("ProgressDeadlineExceeded")
    {
        return RolloutState::Failed {
            reason: "ProgressDeadlineExceeded".into(),
            message: str_at(c, "/message")
                .unwrap_or("the deployment exceeded its progress deadline")
                .to_string(),
        };
    }
    let desired = opt_int_at(d, "/spec/replicas").unwrap_or(1);
    let replicas = int_at(d, "/status/replicas");
    let updated = int_at(d, "/status/updatedReplicas");
    let available = int_at(d, "/status/availableReplicas");
    if updated < desired {
        return progressing(format!(
            "{updated} out of {desired} new replicas have been updated"
        ));
    }
    if replicas > updated {
        return progressing(format!(
            "{} old replicas are pending termination",
            replicas - updated
        ));
    }
    if available < updated {
        return progressing(format!(
            "{available} of {updated} updated replicas are available"
        ));
    }
    if updated > desired {
        // kubectl calls this done; the rule (updatedReplicas == spec.replicas) waits for the scale-down.
        return progressing(format!(
            "{} extra replicas are pending termination (scaling down to {desired})",
            updated - desired
        ));
    }
    if bool_at(d, "/spec/paused") {
        return RolloutState::Ready {
            note: Some("the deployment is paused".into()),
        };
    }
    RolloutState::Ready { note: None }
}

fn statefulset_state(s: &Value) -> RolloutState {
    let strategy = str_at(s, "/spec/updateStrategy/type").unwrap_or("RollingUpdate");
    if strategy != "RollingUpdate" {
        return RolloutState::Ready {
            note: Some(format!(
                "update strategy `{strategy}`: pods are replaced only when deleted, so the rollout is not checked"
            )),
        };
    }
    if !spec_observed(s) {
        return progressing(OBSERVING);
    }
    let desired = opt_int_at(s, "/spec/replicas").unwrap_or(1);
    let ready = int_at(s, "/status/readyReplicas");
    let updated = int_at(s, "/status/updatedReplicas");
    if ready < desired {
        return progressing(format!("{ready} of {desired} pods are ready"));
    }
    let partition = int_at(s, "/spec/updateStrategy/rollingUpdate/partition");
    if partition > 0 {
        let target = (desired - partition).max(0);
        if updated < target {
            return progressing(format!(
                "partitioned rollout: {updated} out of {target} new pods have been updated"
            ));
        }
        return RolloutState::Ready {
            note: Some(format!(
                "partitioned rollout: {updated} new pods updated, pods below ordinal {partition} keep the old revision"
            )),
        };
    }
    let update_revision = str_at(s, "/status/updateRevision").unwrap_or("");
    let current_revision = str_at(s, "/status/currentRevision").unwrap_or("");
    if update_revision != current_revision {
        return progressing(format!(
            "{updated} of {desired} pods updated to revision `{update_revision}`"
        ));
    }
    RolloutState::Ready { note: None }
}

fn daemonset_state(d: &Value) -> RolloutState {
    let strategy = str_at(d, "/spec/updateStrategy/type").unwrap_or("RollingUpdate");
    if strategy != "RollingUpdate" {
        return RolloutState::Ready {
            note: Some(format!(
                "update strategy `{strategy}`: pods are replaced only when deleted, so the rollout is not checked"
            )),
        };
    }
    if !spec_observed(d) {
        return progressing(OBSERVING);
    }
    let desired = int_at(d, "/status/desiredNumberScheduled");
    let updated = int_at(d, "/status/updatedNumberScheduled");
    let available = int_at(d, "/status/numberAvailable");
    if updated < desired {
        return progressing(format!(
            "{updated} out of {desired} new pods have been updated"
        ));
    }
    if available < desired {
        return progressing(format!(
            "{available} of {desired} updated pods are available"
        ));
    }
    RolloutState::Ready { note: None }
}

fn job_state(j: &Value) -> RolloutState {
    if let Some(c) = condition(j, "Complete")
        && str_at(c, "/status") == Some("True")
    {
        return RolloutState::Ready { note: None };
    }
    if let Some(c) = condition(j, "Failed")
        && str_at(c, "/status") == Some("True")
    {
        return RolloutState::Failed {
            reason: str_at(c, "/reason").unwrap_or("Failed").to_string(),
            message: str_at(c, "/message")
                .unwrap_or("the job failed")
                .to_string(),
        };
    }
    if bool_at(j, "/spec/suspend") {
        return progressing("the job is suspended");
    }
    let succeeded = int_at(j, "/status/succeeded");
    let active = int_at(j, "/status/active");
    let failed = int_at(j, "/status/failed");
    let mut message = match opt_int_at(j, "/spec/completions") {
        Some(completions) => format!("{succeeded} of {completions} completions succeeded"),
        // Without `completions`, the job is done once any pod succeeds (work-queue jobs).
        None => format!("{succeeded} succeeded"),
    };
    message.push_str(&format!(", {active} active"));
    if failed > 0 {
        message.push_str(&format!(", {failed} failed"));
    }
    progressing(message)
}

fn pod_state(p: &Value) -> RolloutState {
    match str_at(p, "/status/phase") {
        Some("Succeeded") => return RolloutState::Ready { note: None },
        Some("Failed") => {
            let problem = diagnose_pod(p);
            return RolloutState::Failed {
                reason: problem
                    .as_ref()
                    .map(|pr| pr.reason.clone())
                    .unwrap_or_else(|| "Failed".into()),
                message: problem
                    .map(|pr| describe(&pr))
                    .unwrap_or_else(|| "the pod failed".into()),
            };
        }
        _ => {}
    }
    if condition_true(p, "Ready") {
        return RolloutState::Ready { note: None };
    }
    match diagnose_pod(p) {
        Some(pr) => progressing(describe(&pr)),
        None => progressing("waiting for the pod to become ready"),
    }
}
