//! Status: a workload that cannot become ready → the `RolloutFailed` event and the error text (object, pod,
//! container, reason, message, then what to do about it), with the pod at fault and its evidence fetched within
//! [`DIAGNOSIS_TIMEOUT`]. It only reads the cluster and must not decide whether a workload failed (the wait does).

use kube::api::{Api, DynamicObject, ListParams};
use serde_json::Value;

use crate::deploy::{DeployError, ObjectRef};
use crate::event::Event;
use crate::hint::Hint;

use super::StatusCheck;
use super::claim::waits_for_claims;
use super::diagnosis::{PodProblem, container_statuses, diagnose_pod};
use super::evidence::{DIAGNOSIS_TIMEOUT, Evidence, gather_evidence};
use super::fields::str_at;
use super::kind::WorkloadKind;
use super::watch::{Source, Watches, pod_source, to_value};
use super::workload::Workload;

/// A workload that cannot become ready, and why.
pub(super) struct Failure {
    pub(super) workload: usize,
    pub(super) reason: String,
    pub(super) message: String,
    /// The pod at fault, with the pod object it was judged on.
    pub(super) pod: Option<(PodProblem, Value)>,
    /// The workload's own status failed it (rather than one of its pods).
    pub(super) from_status: bool,
    /// What to do about it, when the reason alone does not say (a claim that cannot bind).
    pub(super) hint: Option<String>,
    /// Events about other objects than the pod (the claim it waits for).
    pub(super) extra_events: Vec<String>,
}

/// The most telling problem among a workload's current pods (from the watches).
pub(super) fn worst_pod(w: &Workload, watches: &Watches) -> Option<(PodProblem, Value)> {
    worst_of(w.pods(watches))
}

/// The most telling problem among `pods`: one that fails fast, else one held back by its claims (which may
/// still bind), else a pod that failed, else the first one.
pub(super) fn worst_of(pods: Vec<&Value>) -> Option<(PodProblem, Value)> {
    pods.into_iter()
        .filter_map(|p| diagnose_pod(p).map(|pr| (pr, p)))
        .min_by_key(|(pr, p)| {
            if waits_for_claims(pr) {
                1
            } else if pr.fails_fast() {
                0
            } else if str_at(p, "/status/phase") == Some("Failed") {
                2
            } else {
                3
            }
        })
        .map(|(pr, p)| (pr, p.clone()))
}

/// The workload's pods listed afresh: the watches of pods and of the workload are separate streams, so when
/// the workload's own status reports a failure its pods' latest changes may not have arrived yet.
pub(super) async fn fresh_worst_pod(
    check: &StatusCheck<'_>,
    w: &Workload,
) -> Option<Option<(PodProblem, Value)>> {
    let Source::Pods {
        namespace,
        selector,
    } = pod_source(w)
    else {
        return None;
    };
    let api: Api<DynamicObject> = Api::namespaced_with(
        check.client.clone(),
        &namespace,
        &WorkloadKind::Pod.api_resource(),
    );
    let params = ListParams::default().labels(&selector);
    let list = tokio::select! {
        _ = check.cancel.cancelled() => return None,
        r = tokio::time::timeout(DIAGNOSIS_TIMEOUT, api.list(&params)) => r.ok()?.ok()?,
    };
    let pods: Vec<Value> = list
        .items
        .into_iter()
        .filter_map(|o| to_value(o, WorkloadKind::Pod).map(|(_, v)| v))
        .collect();
    Some(worst_of(w.current_pods(&pods)))
}

/// Emits `RolloutFailed` with the evidence and builds the error.
pub(super) async fn report_failure(
    check: &StatusCheck<'_>,
    workloads: &[Workload],
    mut failure: Failure,
) -> DeployError {
    let w = &workloads[failure.workload];
    if failure.from_status
        && w.kind != WorkloadKind::Pod
        && let Some(fresh) = fresh_worst_pod(check, w).await
    {
        failure.pod = fresh;
    }
    let mut evidence = evidence_for(check, w, failure.pod.as_ref()).await;
    evidence.events.append(&mut failure.extra_events);
    let problem = failure.pod.as_ref().map(|(pr, _)| pr);
    check.events.emit(Event::RolloutFailed {
        object: w.reference.short(),
        namespace: w.reference.namespace.clone(),
        pod: problem.map(|pr| pr.pod.clone()),
        container: problem.and_then(|pr| pr.container.clone()),
        reason: failure.reason.clone(),
        message: failure.message.clone(),
        events: evidence.events,
        logs: evidence.logs,
    });
    let mut text = failure_line(&w.reference, &failure.reason, &failure.message, problem);
    let hint_reason = problem
        .map(|pr| pr.reason.as_str())
        .unwrap_or(&failure.reason);
    if let Some(hint) = failure
        .hint
        .take()
        .or_else(|| hint_for(hint_reason, w, failure.pod.as_ref()))
    {
        text.push_str(&Hint(hint).to_string());
    }
    DeployError::Status(text)
}

/// Events and logs for a pod problem, bounded in time and by cancellation.
pub(super) async fn evidence_for(
    check: &StatusCheck<'_>,
    w: &Workload,
    pod: Option<&(PodProblem, Value)>,
) -> Evidence {
    let Some((problem, pod)) = pod else {
        return Evidence::default();
    };
    let gather = gather_evidence(check.client, &w.namespace, problem, pod);
    tokio::select! {
        _ = check.cancel.cancelled() => Evidence::default(),
        r = tokio::time::timeout(DIAGNOSIS_TIMEOUT, gather) => r.unwrap_or_default(),
    }
}

/// `deployment/web (namespace `demo`): pod `web-1`, container `main`: ImagePullBackOff: Back-off pulling …`
pub(super) fn failure_line(
    reference: &ObjectRef,
    reason: &str,
    message: &str,
    problem: Option<&PodProblem>,
) -> String {
    let mut text = format!("{reference}: ");
    match problem {
        Some(pr) if pr.reason == reason && pr.message == message => {
            text.push_str(&pod_clause(pr));
            text.push_str(&format!(": {reason}: {message}"));
        }
        Some(pr) => {
            text.push_str(&format!("{reason}: {message}; "));
            text.push_str(&pod_clause(pr));
            text.push_str(&format!(": {}: {}", pr.reason, pr.message));
        }
        None => text.push_str(&format!("{reason}: {message}")),
    }
    text
}

pub(super) fn pod_clause(pr: &PodProblem) -> String {
    match &pr.container {
        Some(c) => format!("pod `{}`, container `{c}`", pr.pod),
        None => format!("pod `{}`", pr.pod),
    }
}

/// What the user can do about a failure reason.
fn hint_for(reason: &str, w: &Workload, pod: Option<&(PodProblem, Value)>) -> Option<String> {
    let container = pod.and_then(|(pr, p)| pr.container.as_deref().map(|c| (c, p)));
    let image = container.and_then(|(c, p)| {
        container_statuses(p)
            .into_iter()
            .find(|cs| cs.name == c)
            .and_then(|cs| str_at(cs.value, "/image").map(str::to_string))
    });
    let logs_cmd = pod.and_then(|(pr, _)| {
        pr.container.as_ref().map(|c| {
            format!(
                "kubectl logs -n {} {} -c {c} --previous",
                w.namespace, pr.pod
            )
        })
    });
    Some(match reason {
        "ErrImagePull" | "ImagePullBackOff" | "ErrImageNeverPull" => match image {
            Some(image) => format!(
                "the cluster cannot pull `{image}`: check that it was pushed to a registry the cluster can reach (or loaded into a local cluster)"
            ),
            None => "the cluster cannot pull the image: check that it was pushed to a registry the cluster can reach (or loaded into a local cluster)".into(),
        },
        "InvalidImageName" => "the image reference in the manifest is not valid".into(),
        "CrashLoopBackOff" => match logs_cmd {
            Some(cmd) => format!("the container keeps exiting; its last log lines come with the rollout failure, or run `{cmd}`"),
            None => "the container keeps exiting; look at its log".into(),
        },
        "OOMKilled" => "raise the container's memory limit (`resources.limits.memory`) or lower its memory use".into(),
        "CreateContainerConfigError" => {
            "a ConfigMap, Secret or key the container references does not exist: add it to the manifests".into()
        }
        "CreateContainerError" | "RunContainerError" => {
            "the container runtime could not start the container: check its command, image entrypoint and mounts".into()
        }
        "Unschedulable" => {
            "no node can run the pod: check its resource requests, nodeSelector, affinity and tolerations".into()
        }
        "ProgressDeadlineExceeded" => format!(
            "the deployment made no progress within its `spec.progressDeadlineSeconds`; `kubectl describe -n {} {}` shows why",
            w.namespace,
            w.reference.short()
        ),
        _ => return None,
    })
}
