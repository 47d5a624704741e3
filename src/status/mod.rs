//! Status stage: the objects a deploy applied → how many workloads became ready (Deployments, StatefulSets and
//! DaemonSets rolled out, Jobs complete, bare Pods ready), driven by watches, failing fast with a diagnosis (pod,
//! container, reason, recent events, last log lines) only on what cannot resolve by itself: a pod waiting for a
//! PersistentVolumeClaim that can still bind is waited for. It only reads the cluster: it never changes an object.

use std::collections::BTreeMap;
use std::pin::Pin;
use std::time::{Duration, Instant};

use futures_util::stream::{self, Stream, StreamExt};
use k8s_openapi::api::core::v1::{
    Event as CoreEvent, PersistentVolume, PersistentVolumeClaim, Pod,
};
use k8s_openapi::api::storage::v1::StorageClass;
use k8s_openapi::jiff::Timestamp;
use kube::api::{Api, ApiResource, DynamicObject, ListParams, LogParams};
use kube::runtime::{WatchStreamExt, watcher};
use serde_json::{Map, Value};
use tokio_util::sync::CancellationToken;

use crate::deploy::{AppliedObject, Change, DeployError, ObjectRef};
use crate::event::{Event, EventSink};

/// The label every object devloop applies carries; the watches select on it.
const MANAGED_BY: &str = "app.kubernetes.io/managed-by=devloop";
/// The field manager devloop applies with; its `managedFields` entry dates the apply.
const FIELD_MANAGER: &str = "devloop";
/// The label the Job controller puts on its pods (devloop does not label Job pod templates).
const JOB_NAME_LABEL: &str = "batch.kubernetes.io/job-name";
/// At most this many events are shown for a failing pod (the newest).
const MAX_EVENTS: usize = 8;
/// This many log lines of the failing container are shown.
const LOG_TAIL_LINES: i64 = 20;
/// Events and logs only decorate a failure that is already known: never let them hold it back for long.
const DIAGNOSIS_TIMEOUT: Duration = Duration::from_secs(5);

/// What the status check needs: the cluster, what the deploy applied, how long to wait, where to report.
pub struct StatusCheck<'a> {
    pub client: &'a kube::Client,
    /// What the deploy applied (the full objects the server returned, with their generation).
    pub objects: &'a [AppliedObject],
    /// `--status-check-deadline`: how long all workloads together may take to become ready.
    pub deadline: Duration,
    pub events: &'a EventSink,
    pub cancel: &'a CancellationToken,
}

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

/// Why a pod is not ready: the container at fault (none for scheduling problems), the reason as Kubernetes
/// names it (`ImagePullBackOff`, `CrashLoopBackOff`, `Unschedulable`, `ContainerCreating`, …) and a message.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PodProblem {
    pub pod: String,
    pub container: Option<String>,
    pub reason: String,
    pub message: String,
}

/// Reasons that waiting longer cannot fix: the kubelet retries them forever (or the scheduler does).
const FAIL_FAST_REASONS: &[&str] = &[
    "ErrImagePull",
    "ImagePullBackOff",
    "InvalidImageName",
    "ErrImageNeverPull",
    "CrashLoopBackOff",
    "CreateContainerConfigError",
    "CreateContainerError",
    "RunContainerError",
    "OOMKilled",
    "Unschedulable",
];

/// Waiting reasons that mean the container will not start without a change to the manifests or the image.
const FATAL_WAITING_REASONS: &[&str] = &[
    "ErrImagePull",
    "ImagePullBackOff",
    "InvalidImageName",
    "ErrImageNeverPull",
    "CreateContainerConfigError",
    "CreateContainerError",
    "RunContainerError",
];

impl PodProblem {
    /// True when the pod cannot recover by waiting: the status check fails at once.
    pub fn fails_fast(&self) -> bool {
        FAIL_FAST_REASONS.contains(&self.reason.as_str())
    }
}

// ---------------------------------------------------------------------------------------------------------
// Pure judgement of objects
// ---------------------------------------------------------------------------------------------------------

/// The kinds the status check waits for.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
enum WorkloadKind {
    Deployment,
    StatefulSet,
    DaemonSet,
    Job,
    Pod,
}

impl WorkloadKind {
    fn of(api_version: &str, kind: &str) -> Option<Self> {
        let group = api_version.rsplit_once('/').map(|(g, _)| g).unwrap_or("");
        match (group, kind) {
            ("apps", "Deployment") => Some(Self::Deployment),
            ("apps", "StatefulSet") => Some(Self::StatefulSet),
            ("apps", "DaemonSet") => Some(Self::DaemonSet),
            ("batch", "Job") => Some(Self::Job),
            ("", "Pod") => Some(Self::Pod),
            _ => None,
        }
    }

    fn api_resource(self) -> ApiResource {
        use k8s_openapi::api::apps::v1::{DaemonSet, Deployment, StatefulSet};
        use k8s_openapi::api::batch::v1::Job;
        match self {
            Self::Deployment => ApiResource::erase::<Deployment>(&()),
            Self::StatefulSet => ApiResource::erase::<StatefulSet>(&()),
            Self::DaemonSet => ApiResource::erase::<DaemonSet>(&()),
            Self::Job => ApiResource::erase::<Job>(&()),
            Self::Pod => ApiResource::erase::<Pod>(&()),
        }
    }
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

fn state_of(kind: WorkloadKind, object: &Value) -> RolloutState {
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

const OBSERVING: &str = "waiting for the controller to observe the new spec";

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
        // kubectl calls this done; the issue's rule (updatedReplicas == spec.replicas) waits for the scale-down.
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

/// `container `main`: ContainerCreating` — a problem without the pod name (the pod is named elsewhere).
fn describe(problem: &PodProblem) -> String {
    match &problem.container {
        Some(c) => format!("container `{c}`: {}: {}", problem.reason, problem.message),
        None => format!("{}: {}", problem.reason, problem.message),
    }
}

/// Why `pod` is not ready, or `None` when it is Ready or Succeeded. Problems that waiting cannot fix
/// ([`PodProblem::fails_fast`]) come first: image pulls, crash loops, OOM kills, container config errors,
/// unschedulable; init containers are looked at before app containers.
pub fn diagnose_pod(pod: &Value) -> Option<PodProblem> {
    let phase = str_at(pod, "/status/phase").unwrap_or("");
    if phase == "Succeeded" || (phase != "Failed" && condition_true(pod, "Ready")) {
        return None;
    }
    let name = str_at(pod, "/metadata/name").unwrap_or("").to_string();
    let problem = |container: Option<&str>, reason: &str, message: String| PodProblem {
        pod: name.clone(),
        container: container.map(str::to_string),
        reason: reason.to_string(),
        message,
    };
    let restart_policy = str_at(pod, "/spec/restartPolicy").unwrap_or("Always");
    let statuses = container_statuses(pod);

    if let Some(c) = condition(pod, "PodScheduled")
        && str_at(c, "/status") == Some("False")
        && str_at(c, "/reason") == Some("Unschedulable")
    {
        let message = str_at(c, "/message").unwrap_or("no node can run the pod");
        return Some(problem(None, "Unschedulable", message.to_string()));
    }

    for cs in &statuses {
        if let Some((reason, message)) = fatal_container_problem(cs, restart_policy) {
            return Some(problem(Some(cs.name), &reason, message));
        }
    }

    if phase == "Failed" {
        if let Some(reason) = str_at(pod, "/status/reason") {
            let message = str_at(pod, "/status/message").unwrap_or("the pod failed");
            return Some(problem(None, reason, message.to_string()));
        }
        let failed = statuses.iter().find(|cs| {
            cs.value
                .pointer("/state/terminated")
                .is_some_and(|t| int_at(t, "/exitCode") != 0)
        });
        if let Some(cs) = failed {
            let (reason, message) = terminated(cs.value.pointer("/state/terminated"));
            return Some(problem(Some(cs.name), &reason, message));
        }
        return Some(problem(None, "Failed", "the pod failed".into()));
    }

    if let Some(c) = condition(pod, "PodScheduled")
        && str_at(c, "/status") == Some("False")
    {
        let reason = str_at(c, "/reason").unwrap_or("Pending");
        let message = str_at(c, "/message").unwrap_or("the pod is not scheduled yet");
        return Some(problem(None, reason, message.to_string()));
    }

    for cs in &statuses {
        if let Some((reason, message)) = pending_container(cs, pod) {
            return Some(problem(Some(cs.name), &reason, message));
        }
    }

    // All containers look fine but the pod is not Ready: no statuses yet, or readiness gates.
    let (reason, message) = match condition(pod, "Ready") {
        Some(c) => (
            str_at(c, "/reason").unwrap_or("NotReady"),
            str_at(c, "/message").unwrap_or("the pod is not ready"),
        ),
        None if statuses.is_empty() => ("Pending", "waiting for the kubelet to start the pod"),
        None => ("NotReady", "the pod is not ready"),
    };
    Some(problem(None, reason, message.to_string()))
}

/// One entry of `initContainerStatuses` or `containerStatuses`.
struct ContainerStatus<'a> {
    name: &'a str,
    init: bool,
    value: &'a Value,
}

fn container_statuses(pod: &Value) -> Vec<ContainerStatus<'_>> {
    let mut out = Vec::new();
    for (key, init) in [
        ("initContainerStatuses", true),
        ("containerStatuses", false),
    ] {
        if let Some(list) = pod
            .pointer(&format!("/status/{key}"))
            .and_then(Value::as_array)
        {
            for value in list {
                out.push(ContainerStatus {
                    name: str_at(value, "/name").unwrap_or(""),
                    init,
                    value,
                });
            }
        }
    }
    out
}

/// The `(reason, message)` of a container that cannot become ready by waiting.
fn fatal_container_problem(
    cs: &ContainerStatus<'_>,
    restart_policy: &str,
) -> Option<(String, String)> {
    let v = cs.value;
    if let Some(w) = v.pointer("/state/waiting") {
        let reason = str_at(w, "/reason").unwrap_or("");
        if FATAL_WAITING_REASONS.contains(&reason) {
            let message = str_at(w, "/message").unwrap_or(reason).to_string();
            return Some((reason.to_string(), message));
        }
    }
    let ready = bool_at(v, "/ready");
    let restarts = int_at(v, "/restartCount");
    let current = v.pointer("/state/terminated");
    let last = v.pointer("/lastState/terminated");
    let oom = |t: Option<&Value>| t.is_some_and(|t| str_at(t, "/reason") == Some("OOMKilled"));
    if oom(current) || (!ready && v.pointer("/state/running").is_none() && oom(last)) {
        let t = if oom(current) { current } else { last };
        let code = t.map(|t| int_at(t, "/exitCode")).unwrap_or(137);
        let mut message = format!("killed for using more memory than its limit (exit code {code})");
        if restarts > 0 {
            message.push_str(&format!(", restarted {restarts} times"));
        }
        return Some(("OOMKilled".into(), message));
    }
    if restarts >= 1 && !ready {
        let waiting_crash =
            v.pointer("/state/waiting/reason").and_then(Value::as_str) == Some("CrashLoopBackOff");
        // A terminated container that will be restarted again: exit 0 only loops under restartPolicy Always.
        let terminated_crash =
            current.is_some_and(|t| int_at(t, "/exitCode") != 0 || restart_policy == "Always");
        if waiting_crash || terminated_crash {
            let (exit_reason, exit) = terminated(if terminated_crash { current } else { last });
            return Some((
                "CrashLoopBackOff".into(),
                format!("{exit} ({exit_reason}), restarted {restarts} times"),
            ));
        }
    }
    None
}

/// `(reason, "exited with code N")` of a `terminated` state.
fn terminated(t: Option<&Value>) -> (String, String) {
    match t {
        Some(t) => (
            str_at(t, "/reason").unwrap_or("Error").to_string(),
            format!("exited with code {}", int_at(t, "/exitCode")),
        ),
        None => ("Error".into(), "exited".into()),
    }
}

/// The `(reason, message)` of a container that is not ready yet but may still become ready.
fn pending_container(cs: &ContainerStatus<'_>, pod: &Value) -> Option<(String, String)> {
    let v = cs.value;
    if let Some(t) = v.pointer("/state/terminated") {
        // A finished init container is what init containers are for.
        if cs.init && int_at(t, "/exitCode") == 0 {
            return None;
        }
        let (reason, message) = terminated(Some(t));
        return Some((reason, message));
    }
    if let Some(w) = v.pointer("/state/waiting") {
        let reason = str_at(w, "/reason").unwrap_or("Waiting");
        let message = str_at(w, "/message").unwrap_or("waiting to start");
        return Some((reason.to_string(), message.to_string()));
    }
    if v.pointer("/state/running").is_some() {
        if bool_at(v, "/ready") {
            return None;
        }
        let spec_key = if cs.init {
            "initContainers"
        } else {
            "containers"
        };
        let spec = pod
            .pointer(&format!("/spec/{spec_key}"))
            .and_then(Value::as_array)
            .and_then(|list| list.iter().find(|c| str_at(c, "/name") == Some(cs.name)));
        if cs.init {
            // A sidecar (restartPolicy Always) only needs to be started; a plain init container has to finish.
            let sidecar = spec.and_then(|c| str_at(c, "/restartPolicy")) == Some("Always");
            if sidecar && bool_at(v, "/started") {
                return None;
            }
            return Some((
                "PodInitializing".into(),
                "init container is still running".into(),
            ));
        }
        let probed = spec.is_some_and(|c| c.get("readinessProbe").is_some());
        let message = if probed {
            "running but not ready: its readiness probe has not succeeded"
        } else {
            "running but not ready"
        };
        return Some(("NotReady".into(), message.into()));
    }
    None
}

// ---------------------------------------------------------------------------------------------------------
// Events and logs of a failing pod
// ---------------------------------------------------------------------------------------------------------

/// The newest events about one object (at most `MAX_EVENTS`, newest last), formatted like
/// `Warning BackOff: Back-off restarting failed container … (x5)`.
fn recent_events(events: &[CoreEvent], kind: &str, name: &str, uid: Option<&str>) -> Vec<String> {
    let mut about: Vec<&CoreEvent> = events
        .iter()
        .filter(|e| {
            let o = &e.involved_object;
            o.kind.as_deref() == Some(kind)
                && o.name.as_deref() == Some(name)
                // An older object of the same name (a recreated pod) had its own events.
                && match (uid, o.uid.as_deref()) {
                    (Some(want), Some(got)) => want == got,
                    _ => true,
                }
        })
        .collect();
    about.sort_by_key(|e| event_time(e));
    let skip = about.len().saturating_sub(MAX_EVENTS);
    about
        .into_iter()
        .skip(skip)
        .map(|e| {
            let mut line = format!(
                "{} {}: {}",
                e.type_.as_deref().unwrap_or("Normal"),
                e.reason.as_deref().unwrap_or(""),
                e.message.as_deref().unwrap_or("").trim_end()
            );
            if let Some(count) = e.count.filter(|c| *c > 1) {
                line.push_str(&format!(" (x{count})"));
            }
            line
        })
        .collect()
}

/// When an event last happened: kubelet events carry `lastTimestamp`, events.k8s.io ones only `eventTime`.
fn event_time(e: &CoreEvent) -> Option<Timestamp> {
    e.last_timestamp
        .as_ref()
        .map(|t| t.0)
        .or_else(|| e.event_time.as_ref().map(|t| t.0))
        .or_else(|| e.first_timestamp.as_ref().map(|t| t.0))
        .or_else(|| e.metadata.creation_timestamp.as_ref().map(|t| t.0))
}

/// Events and log lines that explain a pod problem.
#[derive(Debug, Default)]
struct Evidence {
    events: Vec<String>,
    logs: Vec<String>,
}

/// Fetches the recent events of the pod and the last log lines of the container at fault. Best effort: what
/// cannot be fetched (logs of a container that never started answer 400) is left out.
async fn gather_evidence(
    client: &kube::Client,
    namespace: &str,
    problem: &PodProblem,
    pod: &Value,
) -> Evidence {
    let events_api: Api<CoreEvent> = Api::namespaced(client.clone(), namespace);
    // No fieldSelector: filter locally (the fake API server and some proxies do not implement it).
    let events = match events_api.list(&ListParams::default()).await {
        Ok(list) => recent_events(
            &list.items,
            "Pod",
            &problem.pod,
            str_at(pod, "/metadata/uid"),
        ),
        Err(e) => {
            tracing::debug!(pod = %problem.pod, error = %e, "cannot list events");
            Vec::new()
        }
    };
    let logs = match &problem.container {
        Some(container) => {
            let params = LogParams {
                container: Some(container.clone()),
                previous: wants_previous_log(pod, container),
                tail_lines: Some(LOG_TAIL_LINES),
                ..LogParams::default()
            };
            let pods: Api<Pod> = Api::namespaced(client.clone(), namespace);
            match pods.logs(&problem.pod, &params).await {
                Ok(text) => text.lines().map(str::to_string).collect(),
                Err(e) => {
                    tracing::debug!(pod = %problem.pod, container, error = %e, "no log lines");
                    Vec::new()
                }
            }
        }
        None => Vec::new(),
    };
    Evidence { events, logs }
}

/// The previous instance's log is the interesting one when the container is waiting to be restarted.
fn wants_previous_log(pod: &Value, container: &str) -> bool {
    container_statuses(pod)
        .iter()
        .find(|cs| cs.name == container)
        .is_some_and(|cs| {
            cs.value.pointer("/state/waiting").is_some() && int_at(cs.value, "/restartCount") >= 1
        })
}

// ---------------------------------------------------------------------------------------------------------
// PersistentVolumeClaims a pod waits for
// ---------------------------------------------------------------------------------------------------------

/// How often the claims of a pod held back by them are looked at again while nothing else changes.
const CLAIM_RECHECK: Duration = Duration::from_secs(1);
/// How long a pod's claim must have looked unbindable before the status check fails: a PersistentVolume (or the
/// claim itself) applied at about the same time by another step — a script's `kubectl apply`, a second project —
/// gets this long to appear. By then the PV controller has also recorded why it cannot bind (`FailedBinding`).
const CLAIM_GRACE: Duration = Duration::from_secs(5);

/// Whether the scheduler left a pod Unschedulable because of its PersistentVolumeClaims (unbound, missing or
/// being deleted), rather than for want of a node (cpu, memory, affinity, taints).
fn waits_for_claims(problem: &PodProblem) -> bool {
    problem.reason == "Unschedulable"
        && problem.container.is_none()
        && (problem
            .message
            .contains("pod has unbound immediate PersistentVolumeClaims")
            || problem.message.contains("persistentvolumeclaim \""))
}

/// The claims a pod's volumes use: `persistentVolumeClaim.claimName`, and `<pod>-<volume>` for generic
/// ephemeral volumes.
fn pod_claims(pod: &Value) -> Vec<String> {
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

fn strings_at<'v>(v: &'v Value, pointer: &str) -> Vec<&'v str> {
    v.pointer(pointer)
        .and_then(Value::as_array)
        .map(|a| a.iter().filter_map(Value::as_str).collect())
        .unwrap_or_default()
}

/// A resource quantity (`1Gi`, `500Mi`, `2G`, `1.5Gi`, `1024`) in bytes; `None` when it cannot be read.
fn quantity_bytes(q: &str) -> Option<f64> {
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
enum ClaimOutlook {
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
fn claim_outlook(
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
struct UnboundClaim {
    /// `persistentvolumeclaim `data` (namespace `shop`; 5Gi, ReadWriteOnce, storageClassName "")`.
    label: String,
    outlook: ClaimOutlook,
    /// The newest event about the claim (the PV controller's `FailedBinding`): who said it, and what.
    last_event: Option<(String, String)>,
    /// Its recent events, formatted like the pod's.
    events: Vec<String>,
    /// What would make it bind.
    hint: String,
    exists: bool,
}

impl UnboundClaim {
    /// `persistentvolumeclaim `data` (…) cannot bind: <why>; persistentvolume-controller: "<message>"`.
    fn describe(&self) -> String {
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
async fn unbound_claims(client: &kube::Client, namespace: &str, pod: &Value) -> Vec<UnboundClaim> {
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
fn claim_that_cannot_bind(claims: Vec<UnboundClaim>, waited: Duration) -> Option<UnboundClaim> {
    if waited < CLAIM_GRACE {
        return None;
    }
    claims
        .into_iter()
        .find(|c| matches!(c.outlook, ClaimOutlook::CannotBind(_)))
}

// ---------------------------------------------------------------------------------------------------------
// The watch-driven wait
// ---------------------------------------------------------------------------------------------------------

/// Which pods belong to a workload.
#[derive(Debug, Clone)]
enum PodSelector {
    /// `spec.selector` of a Deployment, StatefulSet, DaemonSet (or a Job, whose selector the server sets).
    Labels(Value),
    /// A Job without a selector: the label the Job controller sets.
    JobName(String),
    /// A bare Pod: itself (by name, and uid when known).
    Itself { name: String, uid: Option<String> },
}

impl PodSelector {
    fn matches(&self, pod: &Value) -> bool {
        let labels = pod.pointer("/metadata/labels").and_then(Value::as_object);
        match self {
            PodSelector::Labels(selector) => selector_matches(selector, labels),
            PodSelector::JobName(job) => {
                labels
                    .and_then(|l| l.get(JOB_NAME_LABEL))
                    .and_then(Value::as_str)
                    == Some(job.as_str())
            }
            PodSelector::Itself { name, uid } => {
                str_at(pod, "/metadata/name") == Some(name.as_str())
                    && (uid.is_none() || str_at(pod, "/metadata/uid") == uid.as_deref())
            }
        }
    }
}

/// A `LabelSelector` (`matchLabels` and `matchExpressions`) against a pod's labels.
fn selector_matches(selector: &Value, labels: Option<&Map<String, Value>>) -> bool {
    if !selector.is_object() {
        return false;
    }
    let label = |k: &str| labels.and_then(|l| l.get(k)).and_then(Value::as_str);
    if let Some(ml) = selector.get("matchLabels").and_then(Value::as_object)
        && !ml.iter().all(|(k, v)| label(k) == v.as_str())
    {
        return false;
    }
    let exprs = selector.get("matchExpressions").and_then(Value::as_array);
    exprs.into_iter().flatten().all(|e| {
        let key = str_at(e, "/key").unwrap_or("");
        let values: Vec<&str> = e
            .get("values")
            .and_then(Value::as_array)
            .map(|v| v.iter().filter_map(Value::as_str).collect())
            .unwrap_or_default();
        match (str_at(e, "/operator").unwrap_or(""), label(key)) {
            ("In", Some(v)) => values.contains(&v),
            ("NotIn", Some(v)) => !values.contains(&v),
            ("NotIn", None) | ("Exists", Some(_)) | ("DoesNotExist", None) => true,
            _ => false,
        }
    })
}

/// One workload being waited for.
struct Workload {
    reference: ObjectRef,
    namespace: String,
    kind: WorkloadKind,
    uid: Option<String>,
    selector: PodSelector,
    /// When the apply changed the pod template: pods created before this belong to the previous rollout.
    since: Option<Timestamp>,
    /// The latest object seen by the watch.
    object: Option<Value>,
    /// The last progress message reported.
    message: Option<String>,
    ready: bool,
    /// Its pod is held back by PersistentVolumeClaims that may still bind.
    claim_wait: Option<ClaimWait>,
}

/// A pod the scheduler left Unschedulable for its claims, while the status check finds out whether they can bind.
struct ClaimWait {
    problem: PodProblem,
    pod: Value,
    /// When the status check first saw the pod held back.
    since: Instant,
    /// When its claims were last looked at.
    checked: Option<Instant>,
}

impl Workload {
    fn new(applied: &AppliedObject, kind: WorkloadKind, default_ns: &str) -> Self {
        let object = &applied.object;
        let name = applied.reference.name.clone();
        let selector = match kind {
            WorkloadKind::Pod => PodSelector::Itself {
                name: name.clone(),
                uid: str_at(object, "/metadata/uid").map(str::to_string),
            },
            _ => match object.pointer("/spec/selector") {
                Some(s) if s.is_object() => PodSelector::Labels(s.clone()),
                _ if kind == WorkloadKind::Job => PodSelector::JobName(name),
                // apps/v1 requires a selector; without one no pod can be told to belong to the workload.
                _ => PodSelector::Labels(Value::Null),
            },
        };
        let template_changed = matches!(applied.change, Change::Created | Change::Recreated)
            || (matches!(
                kind,
                WorkloadKind::Deployment | WorkloadKind::StatefulSet | WorkloadKind::DaemonSet
            ) && applied.generation > int_at(object, "/status/observedGeneration"));
        Workload {
            reference: applied.reference.clone(),
            namespace: applied
                .reference
                .namespace
                .clone()
                .unwrap_or_else(|| default_ns.to_string()),
            kind,
            uid: str_at(object, "/metadata/uid").map(str::to_string),
            selector,
            since: if template_changed {
                apply_time(object)
            } else {
                None
            },
            object: None,
            message: None,
            ready: false,
            claim_wait: None,
        }
    }

    /// The pods of the current rollout among `candidates`, in name order: pods the workload selects, not being
    /// deleted, and created since the apply when it changed the pod template.
    fn current_pods<'p>(&self, candidates: impl IntoIterator<Item = &'p Value>) -> Vec<&'p Value> {
        let mut pods: Vec<&Value> = candidates
            .into_iter()
            .filter(|p| self.selector.matches(p))
            .filter(|p| {
                self.kind == WorkloadKind::Pod || p.pointer("/metadata/deletionTimestamp").is_none()
            })
            .filter(
                |p| match (self.since, timestamp_at(p, "/metadata/creationTimestamp")) {
                    (Some(since), Some(created)) => created >= since,
                    _ => true,
                },
            )
            .collect();
        pods.sort_by_key(|p| str_at(p, "/metadata/name").unwrap_or(""));
        pods
    }

    /// The current pods as the watches see them.
    fn pods<'w>(&self, watches: &'w Watches) -> Vec<&'w Value> {
        self.current_pods(watches.pods_for(self))
    }
}

/// When devloop last applied `object`: its `managedFields` entry (second precision), as the server recorded it.
fn apply_time(object: &Value) -> Option<Timestamp> {
    object
        .pointer("/metadata/managedFields")
        .and_then(Value::as_array)?
        .iter()
        .filter(|f| {
            str_at(f, "/manager") == Some(FIELD_MANAGER) && str_at(f, "/operation") == Some("Apply")
        })
        .filter_map(|f| timestamp_at(f, "/time"))
        .max()
}

/// What one watch covers.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Source {
    /// Workload objects of one kind in one namespace (devloop's label).
    Workloads {
        kind: WorkloadKind,
        namespace: String,
    },
    /// Pods in one namespace, by label selector.
    Pods { namespace: String, selector: String },
}

impl Source {
    /// The kind of object the watch returns.
    fn kind(&self) -> WorkloadKind {
        match self {
            Source::Workloads { kind, .. } => *kind,
            Source::Pods { .. } => WorkloadKind::Pod,
        }
    }
}

/// The objects one watch currently sees.
struct Watched {
    source: Source,
    objects: BTreeMap<String, Value>,
    /// Objects of a re-list in progress (`Init` … `InitDone`).
    relist: Option<BTreeMap<String, Value>>,
    /// The first list is complete: absence now means the object does not exist.
    synced: bool,
}

/// The state of every watch.
struct Watches {
    watched: Vec<Watched>,
}

impl Watches {
    /// Folds one watcher event into the state. Returns true when something changed.
    fn apply(&mut self, index: usize, event: watcher::Event<DynamicObject>) -> bool {
        let Some(w) = self.watched.get_mut(index) else {
            return false;
        };
        let kind = w.source.kind();
        match event {
            watcher::Event::Init => {
                w.relist = Some(BTreeMap::new());
                false
            }
            watcher::Event::InitApply(obj) => {
                if let Some((name, value)) = to_value(obj, kind) {
                    w.relist
                        .get_or_insert_with(BTreeMap::new)
                        .insert(name, value);
                }
                false
            }
            watcher::Event::InitDone => {
                w.objects = w.relist.take().unwrap_or_default();
                w.synced = true;
                true
            }
            watcher::Event::Apply(obj) => match to_value(obj, kind) {
                Some((name, value)) => {
                    w.objects.insert(name, value);
                    true
                }
                None => false,
            },
            watcher::Event::Delete(obj) => {
                let name = obj.metadata.name.unwrap_or_default();
                w.objects.remove(&name).is_some()
            }
        }
    }

    fn source_index(&self, source: &Source) -> Option<usize> {
        self.watched.iter().position(|w| &w.source == source)
    }

    /// The pods the watches relevant to `workload` see.
    fn pods_for<'w>(&'w self, workload: &Workload) -> impl Iterator<Item = &'w Value> + 'w {
        let wanted = pod_source(workload);
        self.watched
            .iter()
            .filter(move |w| w.source == wanted)
            .flat_map(|w| w.objects.values())
    }

    /// The workload's object as its watch sees it: `Some(None)` when the watch is synced and it is gone.
    fn workload_object(&self, workload: &Workload) -> Option<Option<Value>> {
        let source = match workload.kind {
            WorkloadKind::Pod => Source::Pods {
                namespace: workload.namespace.clone(),
                selector: MANAGED_BY.to_string(),
            },
            kind => Source::Workloads {
                kind,
                namespace: workload.namespace.clone(),
            },
        };
        let w = &self.watched[self.source_index(&source)?];
        let found = w
            .objects
            .get(&workload.reference.name)
            .filter(|o| {
                workload.uid.is_none() || str_at(o, "/metadata/uid") == workload.uid.as_deref()
            })
            .cloned();
        match found {
            Some(o) => Some(Some(o)),
            None if w.synced => Some(None),
            None => None,
        }
    }
}

/// The pod watch that covers a workload's pods.
fn pod_source(workload: &Workload) -> Source {
    match workload.kind {
        WorkloadKind::Job => Source::Pods {
            namespace: workload.namespace.clone(),
            selector: format!("{JOB_NAME_LABEL}={}", workload.reference.name),
        },
        _ => Source::Pods {
            namespace: workload.namespace.clone(),
            selector: MANAGED_BY.to_string(),
        },
    }
}

/// A watched object as JSON, with the `kind`/`apiVersion` list items lack.
fn to_value(obj: DynamicObject, kind: WorkloadKind) -> Option<(String, Value)> {
    let name = obj.metadata.name.clone()?;
    let mut value = serde_json::to_value(&obj).ok()?;
    let ar = kind.api_resource();
    if let Some(map) = value.as_object_mut() {
        map.entry("apiVersion")
            .or_insert_with(|| Value::String(ar.api_version.clone()));
        map.entry("kind")
            .or_insert_with(|| Value::String(ar.kind.clone()));
    }
    Some((name, value))
}

type WatchStream = Pin<
    Box<dyn Stream<Item = (usize, Result<watcher::Event<DynamicObject>, watcher::Error>)> + Send>,
>;

fn watch(client: &kube::Client, index: usize, source: &Source) -> WatchStream {
    let (namespace, selector) = match source {
        Source::Workloads { namespace, .. } => (namespace.as_str(), MANAGED_BY),
        Source::Pods {
            namespace,
            selector,
        } => (namespace.as_str(), selector.as_str()),
    };
    let api: Api<DynamicObject> =
        Api::namespaced_with(client.clone(), namespace, &source.kind().api_resource());
    let config = watcher::Config::default().labels(selector);
    // devloop's reconnect backoff (≤ 4 s) rather than kube's default (≤ 30 s): a rollout wait that spans an API
    // server restart resumes within seconds of the return.
    watcher(api, config)
        .backoff(crate::connectivity::Backoff::new())
        .map(move |r| (index, r))
        .boxed()
}

/// A workload that cannot become ready, and why.
struct Failure {
    workload: usize,
    reason: String,
    message: String,
    /// The pod at fault, with the pod object it was judged on.
    pod: Option<(PodProblem, Value)>,
    /// The workload's own status failed it (rather than one of its pods).
    from_status: bool,
    /// What to do about it, when the reason alone does not say (a claim that cannot bind).
    hint: Option<String>,
    /// Events about other objects than the pod (the claim it waits for).
    extra_events: Vec<String>,
}

/// Waits until every workload in `check.objects` is ready; returns how many there were. Fails fast with
/// `DeployError::Status` (after emitting `RolloutFailed`) when a workload cannot become ready or the deadline
/// passes; `DeployError::Cancelled` when `check.cancel` fires.
pub async fn wait(check: StatusCheck<'_>) -> Result<usize, DeployError> {
    let started = Instant::now();
    let default_ns = check.client.default_namespace().to_string();
    let mut workloads: Vec<Workload> = check
        .objects
        .iter()
        .filter_map(|a| {
            WorkloadKind::of(&a.reference.api_version, &a.reference.kind)
                .map(|k| Workload::new(a, k, &default_ns))
        })
        .collect();
    if workloads.is_empty() {
        check.events.emit(Event::StatusComplete {
            ready: 0,
            duration_ms: millis(started.elapsed()),
        });
        return Ok(0);
    }

    let mut sources: Vec<Source> = Vec::new();
    let mut add = |s: Source| {
        if !sources.contains(&s) {
            sources.push(s);
        }
    };
    for w in &workloads {
        if w.kind != WorkloadKind::Pod {
            add(Source::Workloads {
                kind: w.kind,
                namespace: w.namespace.clone(),
            });
        }
        add(pod_source(w));
    }
    let mut watches = Watches {
        watched: sources
            .iter()
            .map(|s| Watched {
                source: s.clone(),
                objects: BTreeMap::new(),
                relist: None,
                synced: false,
            })
            .collect(),
    };
    let mut streams = stream::select_all(
        sources
            .iter()
            .enumerate()
            .map(|(i, s)| watch(check.client, i, s)),
    );

    let deadline = tokio::time::sleep(check.deadline);
    tokio::pin!(deadline);
    let mut recheck = tokio::time::interval(CLAIM_RECHECK);
    recheck.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        let waiting_on_claims = workloads.iter().any(|w| !w.ready && w.claim_wait.is_some());
        let woken = tokio::select! {
            biased;
            _ = check.cancel.cancelled() => return Err(DeployError::Cancelled),
            _ = &mut deadline => {
                return Err(deadline_failure(&check, &workloads, &watches).await);
            }
            item = streams.next() => Some(item),
            _ = recheck.tick(), if waiting_on_claims => None,
        };
        let Some(item) = woken else {
            if let Some(failure) = check_claims(&check, &mut workloads).await {
                return Err(report_failure(&check, &workloads, failure).await);
            }
            continue;
        };
        match item {
            Some((index, Ok(event))) => {
                if !watches.apply(index, event) {
                    continue;
                }
            }
            Some((index, Err(e))) => {
                if let Some(fatal) = fatal_watch_error(&e, &sources[index]) {
                    return Err(fatal);
                }
                // Connection trouble: the watcher re-lists with backoff; the deadline bounds the wait.
                tracing::debug!(error = %e, source = ?sources[index], "watch error");
                continue;
            }
            None => {
                return Err(DeployError::Api {
                    message: "the watches of the status check ended unexpectedly".into(),
                    hint: None,
                });
            }
        }
        if let Some(failure) = evaluate(&mut workloads, &watches, check.events, started) {
            return Err(report_failure(&check, &workloads, failure).await);
        }
        if workloads.iter().all(|w| w.ready) {
            break;
        }
        if let Some(failure) = check_claims(&check, &mut workloads).await {
            return Err(report_failure(&check, &workloads, failure).await);
        }
    }
    let ready = workloads.len();
    check.events.emit(Event::StatusComplete {
        ready,
        duration_ms: millis(started.elapsed()),
    });
    Ok(ready)
}

/// Looks at the claims of pods held back by them (each at most every `CLAIM_RECHECK`): a claim that cannot bind
/// by itself fails its workload; claims that may still bind are waited for (the deadline bounds the wait).
async fn check_claims(check: &StatusCheck<'_>, workloads: &mut [Workload]) -> Option<Failure> {
    for (index, w) in workloads.iter_mut().enumerate() {
        if w.ready {
            continue;
        }
        let Some(wait) = &mut w.claim_wait else {
            continue;
        };
        if wait.since.elapsed() < CLAIM_GRACE
            || wait.checked.is_some_and(|t| t.elapsed() < CLAIM_RECHECK)
        {
            continue;
        }
        wait.checked = Some(Instant::now());
        let claims = tokio::select! {
            _ = check.cancel.cancelled() => return None,
            r = tokio::time::timeout(DIAGNOSIS_TIMEOUT, unbound_claims(check.client, &w.namespace, &wait.pod)) => r.unwrap_or_default(),
        };
        let Some(claim) = claim_that_cannot_bind(claims, wait.since.elapsed()) else {
            continue;
        };
        let mut problem = wait.problem.clone();
        problem.message = claim.describe();
        return Some(Failure {
            workload: index,
            reason: problem.reason.clone(),
            message: problem.message.clone(),
            pod: Some((problem, wait.pod.clone())),
            from_status: false,
            hint: Some(claim.hint),
            extra_events: claim.events,
        });
    }
    None
}

/// Errors that retrying cannot fix: the cluster refuses to show what we wait for.
fn fatal_watch_error(e: &watcher::Error, source: &Source) -> Option<DeployError> {
    let status = match e {
        watcher::Error::InitialListFailed(kube::Error::Api(s))
        | watcher::Error::WatchStartFailed(kube::Error::Api(s))
        | watcher::Error::WatchFailed(kube::Error::Api(s)) => s,
        _ => return None,
    };
    if !matches!(status.code, 401 | 403 | 404) {
        return None;
    }
    let (what, namespace) = match source {
        Source::Workloads { kind, namespace } => (kind.api_resource().plural, namespace),
        Source::Pods { namespace, .. } => ("pods".to_string(), namespace),
    };
    let hint = match status.code {
        401 | 403 => Some("the status check needs `list` and `watch` on the workloads and pods it waits for, `list` on events and `get` on pods/log".to_string()),
        _ => None,
    };
    Some(DeployError::Api {
        message: format!(
            "cannot watch {what} in namespace `{namespace}` for the status check: {}",
            status.message
        ),
        hint,
    })
}

/// Re-judges every workload not yet ready; emits progress and ready events; returns the first failure.
fn evaluate(
    workloads: &mut [Workload],
    watches: &Watches,
    events: &EventSink,
    started: Instant,
) -> Option<Failure> {
    for (index, w) in workloads.iter_mut().enumerate() {
        if w.ready {
            continue;
        }
        match watches.workload_object(w) {
            None => continue,
            Some(None) => {
                return Some(Failure {
                    workload: index,
                    reason: "Deleted".into(),
                    message: format!(
                        "it was deleted (or lost the label `{MANAGED_BY}`) while waiting for it"
                    ),
                    pod: None,
                    from_status: true,
                    hint: None,
                    extra_events: Vec::new(),
                });
            }
            Some(Some(object)) => w.object = Some(object),
        }
        let Some(object) = &w.object else { continue };
        match state_of(w.kind, object) {
            RolloutState::NotWorkload => w.ready = true,
            RolloutState::Ready { note } => {
                if let Some(note) = note {
                    emit_progress(events, w, note);
                }
                w.ready = true;
                events.emit(Event::RolloutReady {
                    object: w.reference.short(),
                    namespace: w.reference.namespace.clone(),
                    duration_ms: millis(started.elapsed()),
                });
            }
            RolloutState::Failed { reason, message } => {
                // A failed bare Pod is its own diagnosis: report its container, not the pod twice.
                if w.kind == WorkloadKind::Pod
                    && let Some(problem) = diagnose_pod(object)
                {
                    return Some(Failure {
                        workload: index,
                        reason: problem.reason.clone(),
                        message: problem.message.clone(),
                        pod: Some((problem, object.clone())),
                        from_status: false,
                        hint: None,
                        extra_events: Vec::new(),
                    });
                }
                return Some(Failure {
                    workload: index,
                    reason,
                    message,
                    pod: worst_pod(w, watches),
                    from_status: true,
                    hint: None,
                    extra_events: Vec::new(),
                });
            }
            RolloutState::Progressing(message) => {
                if w.message.as_deref() != Some(message.as_str()) {
                    emit_progress(events, w, message);
                }
                let worst = worst_pod(w, watches);
                match worst {
                    // Unbound claims may bind in a moment: the wait loop looks at them before failing.
                    Some((problem, pod)) if waits_for_claims(&problem) => {
                        let since = w.claim_wait.as_ref().map_or_else(Instant::now, |c| c.since);
                        let checked = w.claim_wait.as_ref().and_then(|c| c.checked);
                        w.claim_wait = Some(ClaimWait {
                            problem,
                            pod,
                            since,
                            checked,
                        });
                    }
                    Some((problem, pod)) if problem.fails_fast() => {
                        return Some(Failure {
                            workload: index,
                            reason: problem.reason.clone(),
                            message: problem.message.clone(),
                            pod: Some((problem, pod)),
                            from_status: false,
                            hint: None,
                            extra_events: Vec::new(),
                        });
                    }
                    _ => w.claim_wait = None,
                }
            }
        }
    }
    None
}

fn emit_progress(events: &EventSink, w: &mut Workload, message: String) {
    events.emit(Event::RolloutProgress {
        object: w.reference.short(),
        namespace: w.reference.namespace.clone(),
        message: message.clone(),
    });
    w.message = Some(message);
}

/// The most telling problem among a workload's current pods (from the watches).
fn worst_pod(w: &Workload, watches: &Watches) -> Option<(PodProblem, Value)> {
    worst_of(w.pods(watches))
}

/// The most telling problem among `pods`: one that fails fast, else one held back by its claims (which may
/// still bind), else a pod that failed, else the first one.
fn worst_of(pods: Vec<&Value>) -> Option<(PodProblem, Value)> {
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
async fn fresh_worst_pod(
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
async fn report_failure(
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
        text.push_str(&format!("\n\nhint: {hint}"));
    }
    DeployError::Status(text)
}

/// Events and logs for a pod problem, bounded in time and by cancellation.
async fn evidence_for(
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
fn failure_line(
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

fn pod_clause(pr: &PodProblem) -> String {
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

/// The deadline passed: names every workload not ready, its last progress and what is wrong with its pods.
async fn deadline_failure(
    check: &StatusCheck<'_>,
    workloads: &[Workload],
    watches: &Watches,
) -> DeployError {
    let pending: Vec<&Workload> = workloads.iter().filter(|w| !w.ready).collect();
    // What would bind the first unbound claim found, when a pod waits for one.
    let mut claim_hint: Option<String> = None;
    let mut text = format!(
        "status check deadline of {} exceeded: {} of {} workloads are not ready",
        human_duration(check.deadline),
        pending.len(),
        workloads.len()
    );
    for w in pending {
        let progress = w
            .message
            .clone()
            .unwrap_or_else(|| "no status seen yet".to_string());
        let pod = match fresh_worst_pod(check, w).await {
            Some(fresh) => fresh,
            None => worst_pod(w, watches),
        };
        let mut evidence = evidence_for(check, w, pod.as_ref()).await;
        let problem = pod.as_ref().map(|(pr, _)| pr);
        text.push_str(&format!("\n  {}: {progress}", w.reference));
        if let Some(pr) = problem {
            text.push_str(&format!(
                "\n    {}: {}: {}",
                pod_clause(pr),
                pr.reason,
                pr.message
            ));
        }
        // A pod held back by its claims: say which claim is unbound and what the PV controller said about it.
        let mut claim_lines: Vec<String> = Vec::new();
        if let Some((pr, pod)) = pod.as_ref().filter(|(pr, _)| waits_for_claims(pr)) {
            let claims = tokio::select! {
                _ = check.cancel.cancelled() => Vec::new(),
                r = tokio::time::timeout(DIAGNOSIS_TIMEOUT, unbound_claims(check.client, &w.namespace, pod)) => r.unwrap_or_default(),
            };
            for mut claim in claims {
                let line = format!("pod `{}` waits for its claim: {}", pr.pod, claim.describe());
                text.push_str(&format!("\n    {line}"));
                claim_lines.push(line);
                evidence.events.append(&mut claim.events);
                claim_hint.get_or_insert(claim.hint);
            }
        }
        check.events.emit(Event::RolloutFailed {
            object: w.reference.short(),
            namespace: w.reference.namespace.clone(),
            pod: problem.map(|pr| pr.pod.clone()),
            container: problem.and_then(|pr| pr.container.clone()),
            reason: "DeadlineExceeded".into(),
            message: match problem {
                Some(pr) => std::iter::once(format!(
                    "{progress}; {}: {}: {}",
                    pod_clause(pr),
                    pr.reason,
                    pr.message
                ))
                .chain(claim_lines)
                .collect::<Vec<_>>()
                .join("; "),
                None => progress,
            },
            events: evidence.events,
            logs: evidence.logs,
        });
    }
    match claim_hint {
        Some(hint) => text.push_str(&format!(
            "\n\nhint: {hint}; or raise `--status-check-deadline` if it needs longer to bind"
        )),
        None => text.push_str(
            "\n\nhint: raise `--status-check-deadline` if the workloads need longer to become ready",
        ),
    }
    DeployError::Status(text)
}

// ---------------------------------------------------------------------------------------------------------
// Small helpers
// ---------------------------------------------------------------------------------------------------------

fn millis(d: Duration) -> u64 {
    u64::try_from(d.as_millis()).unwrap_or(u64::MAX)
}

/// `10m`, `1m30s`, `45s`, `500ms`.
fn human_duration(d: Duration) -> String {
    let total = d.as_secs();
    if total == 0 {
        return format!("{}ms", d.as_millis());
    }
    let (h, m, s) = (total / 3600, total % 3600 / 60, total % 60);
    let mut out = String::new();
    if h > 0 {
        out.push_str(&format!("{h}h"));
    }
    if m > 0 {
        out.push_str(&format!("{m}m"));
    }
    if s > 0 || out.is_empty() {
        out.push_str(&format!("{s}s"));
    }
    out
}

fn str_at<'v>(v: &'v Value, pointer: &str) -> Option<&'v str> {
    v.pointer(pointer).and_then(Value::as_str)
}

/// An integer field; missing means 0 (status fields with zero values are omitted by the server).
fn int_at(v: &Value, pointer: &str) -> i64 {
    opt_int_at(v, pointer).unwrap_or(0)
}

fn opt_int_at(v: &Value, pointer: &str) -> Option<i64> {
    v.pointer(pointer).and_then(Value::as_i64)
}

fn bool_at(v: &Value, pointer: &str) -> bool {
    v.pointer(pointer).and_then(Value::as_bool).unwrap_or(false)
}

fn timestamp_at(v: &Value, pointer: &str) -> Option<Timestamp> {
    str_at(v, pointer).and_then(|s| s.parse().ok())
}

/// `status.conditions[type == kind]`.
fn condition<'v>(v: &'v Value, kind: &str) -> Option<&'v Value> {
    v.pointer("/status/conditions")
        .and_then(Value::as_array)?
        .iter()
        .find(|c| str_at(c, "/type") == Some(kind))
}

fn condition_true(v: &Value, kind: &str) -> bool {
    condition(v, kind).is_some_and(|c| str_at(c, "/status") == Some("True"))
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use std::path::{Path, PathBuf};

    use serde_json::json;

    use super::*;

    /// A recorded file of shared/kube-api: `../shared` beside the repository (CI), or two levels up (scratch).
    fn kube_api(name: &str) -> PathBuf {
        let root = Path::new(env!("CARGO_MANIFEST_DIR"));
        let near = root.join("../shared/kube-api").join(name);
        if near.exists() {
            return near;
        }
        root.join("../../shared/kube-api").join(name)
    }

    /// The JSON body of a recorded `.http` response (after the first blank line).
    fn http_body(name: &str) -> Value {
        let text = std::fs::read_to_string(kube_api(name)).unwrap();
        let (_, body) = text.split_once("\n\n").unwrap();
        serde_json::from_str(body).unwrap()
    }

    fn jsonl(name: &str) -> Vec<Value> {
        std::fs::read_to_string(kube_api(name))
            .unwrap()
            .lines()
            .map(|l| serde_json::from_str::<Value>(l).unwrap())
            .filter(|v| v.get("_note").is_none())
            .collect()
    }

    fn progressing(m: &str) -> RolloutState {
        RolloutState::Progressing(m.to_string())
    }

    const READY: RolloutState = RolloutState::Ready { note: None };

    #[test]
    fn deployment_timeline_follows_kubectl_and_waits_for_scale_down() {
        let observing = progressing(OBSERVING);
        let expected = [
            // web: create (2 replicas)
            observing.clone(),
            observing.clone(),
            progressing("0 out of 2 new replicas have been updated"),
            progressing("0 of 2 updated replicas are available"),
            progressing("1 of 2 updated replicas are available"),
            READY,
            // web: v2 (template change), surge rollout
            observing.clone(),
            observing.clone(),
            progressing("0 out of 2 new replicas have been updated"),
            progressing("1 out of 2 new replicas have been updated"),
            progressing("1 out of 2 new replicas have been updated"),
            progressing("1 out of 2 new replicas have been updated"),
            progressing("1 old replicas are pending termination"),
            progressing("1 old replicas are pending termination"),
            READY,
            // web: scale to 1
            observing.clone(),
            progressing("1 extra replicas are pending termination (scaling down to 1)"),
            READY,
            // broken: image cannot be pulled, progressDeadlineSeconds 15
            observing.clone(),
            observing.clone(),
            progressing("0 out of 1 new replicas have been updated"),
            progressing("0 of 1 updated replicas are available"),
            RolloutState::Failed {
                reason: "ProgressDeadlineExceeded".into(),
                message: "ReplicaSet \"broken-6b487cdc65\" has timed out progressing.".into(),
            },
        ];
        let events: Vec<Value> = jsonl("05-deployment-status-timeline.jsonl")
            .into_iter()
            .filter(|e| e["type"] != "BOOKMARK")
            .collect();
        assert_eq!(events.len(), expected.len());
        for (i, (e, want)) in events.iter().zip(expected).enumerate() {
            let d = json!({
                "apiVersion": "apps/v1",
                "kind": "Deployment",
                "metadata": {"name": "web", "generation": e["generation"]},
                "spec": {"replicas": e["spec.replicas"]},
                "status": e["status"],
            });
            assert_eq!(rollout_state(&d), want, "line {i} (t={})", e["t"]);
        }
    }

    #[test]
    fn recorded_deployments() {
        assert_eq!(
            rollout_state(&http_body("05-deployment-get-available-v1.http")),
            READY
        );
        assert_eq!(
            rollout_state(&http_body("05-deployment-get-after-scale.http")),
            READY
        );
        assert_eq!(
            rollout_state(&http_body("05-deployment-progress-deadline-exceeded.http")),
            RolloutState::Failed {
                reason: "ProgressDeadlineExceeded".into(),
                message: "ReplicaSet \"broken-6b487cdc65\" has timed out progressing.".into(),
            }
        );
        // What the apply answers for a new Deployment: nothing observed yet.
        assert_eq!(
            rollout_state(&http_body("02-ssa-deployment-create.http")),
            progressing(OBSERVING)
        );
    }

    #[test]
    fn stale_progress_deadline_is_ignored_until_the_new_spec_is_observed() {
        let mut d = http_body("05-deployment-progress-deadline-exceeded.http");
        d["metadata"]["generation"] = json!(2);
        assert_eq!(rollout_state(&d), progressing(OBSERVING));
    }

    #[test]
    fn deployment_defaults_to_one_replica_and_zero_replicas_is_done() {
        let mut d = json!({
            "apiVersion": "apps/v1", "kind": "Deployment",
            "metadata": {"generation": 1}, "spec": {},
            "status": {"observedGeneration": 1}
        });
        assert_eq!(
            rollout_state(&d),
            progressing("0 out of 1 new replicas have been updated")
        );
        d["spec"]["replicas"] = json!(0);
        assert_eq!(rollout_state(&d), READY);
    }

    #[test]
    fn job_timeline() {
        let lines = jsonl("05-job-status-timeline.jsonl");
        let states: Vec<RolloutState> = lines
            .iter()
            .map(|l| {
                rollout_state(&json!({
                    "apiVersion": "batch/v1", "kind": "Job",
                    "metadata": {"name": l["job"], "generation": l["generation"]},
                    "spec": {"completions": 1, "parallelism": 1},
                    "status": l["status"],
                }))
            })
            .collect();
        let failed = RolloutState::Failed {
            reason: "BackoffLimitExceeded".into(),
            message: "Job has reached the specified backoff limit".into(),
        };
        assert_eq!(
            states,
            vec![
                progressing("0 of 1 completions succeeded, 1 active"),
                progressing("0 of 1 completions succeeded, 1 active"),
                progressing("0 of 1 completions succeeded, 1 active"),
                READY,
                progressing("0 of 1 completions succeeded, 1 active"),
                failed,
            ]
        );
    }

    #[test]
    fn recorded_jobs() {
        assert_eq!(rollout_state(&http_body("05-job-get-complete.http")), READY);
        assert_eq!(
            rollout_state(&http_body("05-job-get-failed.http")),
            RolloutState::Failed {
                reason: "BackoffLimitExceeded".into(),
                message: "Job has reached the specified backoff limit".into(),
            }
        );
        assert_eq!(
            rollout_state(&http_body("02-ssa-job-create.http")),
            progressing("0 of 1 completions succeeded, 0 active")
        );
    }

    #[test]
    fn recorded_pods_rollout_state() {
        assert_eq!(
            rollout_state(&http_body("05-pod-running-ready.http")),
            READY
        );
        assert_eq!(rollout_state(&http_body("05-pod-completed.http")), READY);
        assert_eq!(
            rollout_state(&http_body("05-pod-failed.http")),
            RolloutState::Failed {
                reason: "Error".into(),
                message: "container `main`: Error: exited with code 3".into()
            }
        );
        assert_eq!(
            rollout_state(&http_body("05-pod-not-ready.http")),
            progressing(
                "container `main`: NotReady: running but not ready: its readiness probe has not succeeded"
            )
        );
        assert_eq!(
            rollout_state(&http_body("05-pod-init-running.http")),
            progressing("container `init`: PodInitializing: init container is still running")
        );
        // Not-ready pods stay in progress however bad it looks; failing fast is the diagnosis' job.
        assert!(matches!(
            rollout_state(&http_body("05-pod-pull-fail.http")),
            RolloutState::Progressing(m) if m.starts_with("container `main`: ImagePullBackOff: Back-off pulling image")
        ));
    }

    #[test]
    fn other_kinds_are_not_workloads() {
        assert_eq!(
            rollout_state(&http_body("02-ssa-cm-create.http")),
            RolloutState::NotWorkload
        );
        assert_eq!(
            rollout_state(&json!({"apiVersion": "example.com/v1", "kind": "Deployment"})),
            RolloutState::NotWorkload
        );
    }

    fn problem(pod: &str, container: Option<&str>, reason: &str, message: &str) -> PodProblem {
        PodProblem {
            pod: pod.into(),
            container: container.map(str::to_string),
            reason: reason.into(),
            message: message.into(),
        }
    }

    #[test]
    fn diagnoses_recorded_failing_pods() {
        let pull = diagnose_pod(&http_body("05-pod-pull-fail.http")).unwrap();
        assert_eq!(
            (pull.pod.as_str(), pull.container.as_deref()),
            ("pull-fail", Some("main"))
        );
        assert_eq!(pull.reason, "ImagePullBackOff");
        assert!(
            pull.message.contains("127.0.0.1:5000/nope:1: not found"),
            "{}",
            pull.message
        );
        assert!(pull.fails_fast());

        let crash = diagnose_pod(&http_body("05-pod-crash.http")).unwrap();
        assert_eq!(
            crash,
            problem(
                "crash",
                Some("main"),
                "CrashLoopBackOff",
                "exited with code 3 (Error), restarted 5 times"
            )
        );
        assert!(crash.fails_fast());

        let config = diagnose_pod(&http_body("05-pod-config-error.http")).unwrap();
        assert_eq!(
            config,
            problem(
                "config-error",
                Some("main"),
                "CreateContainerConfigError",
                "configmap \"missing-cm\" not found"
            )
        );
        assert!(config.fails_fast());
        let key = diagnose_pod(&http_body("05-pod-config-key-error.http")).unwrap();
        assert_eq!(
            key,
            problem(
                "config-key-error",
                Some("main"),
                "CreateContainerConfigError",
                "couldn't find key missing-key in ConfigMap kapi-pods/present-cm"
            )
        );

        let unschedulable = diagnose_pod(&http_body("05-pod-unschedulable.http")).unwrap();
        assert_eq!(unschedulable.pod, "unschedulable");
        assert_eq!(unschedulable.container, None);
        assert_eq!(unschedulable.reason, "Unschedulable");
        assert!(unschedulable.message.starts_with(
            "0/1 nodes are available: 1 node(s) didn't match Pod's node affinity/selector."
        ));
        assert!(unschedulable.fails_fast());

        let failed = diagnose_pod(&http_body("05-pod-failed.http")).unwrap();
        assert_eq!(
            failed,
            problem("failed", Some("main"), "Error", "exited with code 3")
        );
        assert!(!failed.fails_fast());
    }

    #[test]
    fn healthy_and_slow_pods_do_not_fail_fast() {
        assert_eq!(diagnose_pod(&http_body("05-pod-running-ready.http")), None);
        assert_eq!(diagnose_pod(&http_body("05-pod-completed.http")), None);
        let not_ready = diagnose_pod(&http_body("05-pod-not-ready.http")).unwrap();
        assert_eq!(not_ready.reason, "NotReady");
        assert!(!not_ready.fails_fast());
        let init = diagnose_pod(&http_body("05-pod-init-running.http")).unwrap();
        assert_eq!(init.container.as_deref(), Some("init"));
        assert!(!init.fails_fast());
    }

    /// Every status change of the recorded pods, merged into the recorded pod objects (for their specs).
    #[test]
    fn pod_timeline_fails_fast_exactly_when_waiting_cannot_help() {
        // (reason or None when fine, fails fast)
        let expected: [(Option<&str>, bool); 29] = [
            (Some("ContainerCreating"), false), // completed
            (Some("ContainerCreating"), false), // config-error
            (Some("ContainerCreating"), false), // crash
            (Some("ContainerCreating"), false), // failed
            (Some("ContainerCreating"), false), // not-ready
            (Some("ContainerCreating"), false), // pull-fail
            (Some("ErrImagePull"), true),
            (Some("Completed"), false), // exited 0, phase still Pending for a moment
            (Some("CreateContainerConfigError"), true),
            (Some("Error"), false), // crash: first exit, no restart yet
            (Some("Error"), false), // failed: exited 3 under restartPolicy Never, phase still Pending
            (Some("NotReady"), false),
            (None, false),                    // completed: Succeeded
            (Some("CrashLoopBackOff"), true), // crash: terminated again after a restart
            (Some("Error"), false), // failed: phase Failed (the bare Pod's rollout state fails it)
            (Some("ImagePullBackOff"), true),
            (Some("CrashLoopBackOff"), true),
            (Some("CrashLoopBackOff"), true),
            (Some("ErrImagePull"), true),
            (Some("CrashLoopBackOff"), true),
            (Some("ImagePullBackOff"), true),
            (Some("CrashLoopBackOff"), true),
            (Some("ErrImagePull"), true),
            (Some("CrashLoopBackOff"), true),
            (Some("ImagePullBackOff"), true),
            (Some("CrashLoopBackOff"), true),
            (Some("ErrImagePull"), true),
            (Some("CrashLoopBackOff"), true),
            (Some("ImagePullBackOff"), true),
        ];
        let lines = jsonl("05-pod-status-timeline.jsonl");
        assert_eq!(lines.len(), expected.len());
        for (i, (line, (reason, fatal))) in lines.iter().zip(expected).enumerate() {
            let name = line["pod"].as_str().unwrap();
            let mut pod = http_body(&format!("05-pod-{name}.http"));
            pod["status"]["phase"] = line["phase"].clone();
            pod["status"]["conditions"] = line["conditions"].clone();
            pod["status"]["containerStatuses"] = line["containerStatuses"].clone();
            let got = diagnose_pod(&pod);
            assert_eq!(
                got.as_ref().map(|p| p.reason.as_str()),
                reason,
                "line {i}: {got:?}"
            );
            assert_eq!(
                got.as_ref().is_some_and(PodProblem::fails_fast),
                fatal,
                "line {i}: {got:?}"
            );
            if let Some(p) = got {
                assert_eq!(p.pod, name);
            }
        }
    }

    fn pod_with(statuses: Value, restart_policy: &str) -> Value {
        json!({
            "apiVersion": "v1", "kind": "Pod",
            "metadata": {"name": "p"},
            "spec": {"restartPolicy": restart_policy, "containers": [{"name": "app"}], "initContainers": [{"name": "init"}]},
            "status": {"phase": "Running", "conditions": [{"type": "PodScheduled", "status": "True"}], "containerStatuses": statuses}
        })
    }

    #[test]
    fn oom_killed_is_named_even_inside_a_crash_loop() {
        let pod = pod_with(
            json!([{
                "name": "app", "ready": false, "restartCount": 2,
                "state": {"waiting": {"reason": "CrashLoopBackOff", "message": "back-off 20s"}},
                "lastState": {"terminated": {"exitCode": 137, "reason": "OOMKilled"}}
            }]),
            "Always",
        );
        let p = diagnose_pod(&pod).unwrap();
        assert_eq!(p.reason, "OOMKilled");
        assert_eq!(
            p.message,
            "killed for using more memory than its limit (exit code 137), restarted 2 times"
        );
        assert!(p.fails_fast());
        // Running again after an OOM kill: it may well stay up.
        let recovered = pod_with(
            json!([{
                "name": "app", "ready": false, "restartCount": 1, "started": true,
                "state": {"running": {}},
                "lastState": {"terminated": {"exitCode": 137, "reason": "OOMKilled"}}
            }]),
            "Always",
        );
        assert_eq!(diagnose_pod(&recovered).unwrap().reason, "NotReady");
    }

    #[test]
    fn init_containers_are_diagnosed_first() {
        let mut pod = pod_with(
            json!([{"name": "app", "ready": false, "restartCount": 0, "state": {"waiting": {"reason": "PodInitializing"}}}]),
            "Always",
        );
        pod["status"]["phase"] = json!("Pending");
        pod["status"]["initContainerStatuses"] = json!([{
            "name": "init", "ready": false, "restartCount": 3,
            "state": {"waiting": {"reason": "CrashLoopBackOff"}},
            "lastState": {"terminated": {"exitCode": 1, "reason": "Error"}}
        }]);
        assert_eq!(
            diagnose_pod(&pod).unwrap(),
            problem(
                "p",
                Some("init"),
                "CrashLoopBackOff",
                "exited with code 1 (Error), restarted 3 times"
            )
        );
    }

    #[test]
    fn run_and_create_container_errors_fail_fast() {
        for reason in [
            "RunContainerError",
            "CreateContainerError",
            "InvalidImageName",
        ] {
            let pod = pod_with(
                json!([{"name": "app", "ready": false, "restartCount": 0,
                        "state": {"waiting": {"reason": reason, "message": "exec: \"nope\": not found"}}}]),
                "Always",
            );
            let p = diagnose_pod(&pod).unwrap();
            assert_eq!((p.reason.as_str(), p.fails_fast()), (reason, true));
        }
    }

    #[test]
    fn a_job_pod_that_finally_succeeds_is_not_a_crash_loop() {
        let pod = pod_with(
            json!([{"name": "app", "ready": false, "restartCount": 2,
                    "state": {"terminated": {"exitCode": 0, "reason": "Completed"}},
                    "lastState": {"terminated": {"exitCode": 1, "reason": "Error"}}}]),
            "OnFailure",
        );
        let p = diagnose_pod(&pod).unwrap();
        assert_eq!(p.reason, "Completed");
        assert!(!p.fails_fast());
    }

    #[test]
    fn statefulset_rules() {
        let mut s = json!({
            "apiVersion": "apps/v1", "kind": "StatefulSet",
            "metadata": {"generation": 2},
            "spec": {"replicas": 3, "updateStrategy": {"type": "RollingUpdate"}},
            "status": {"observedGeneration": 1, "replicas": 3, "readyReplicas": 3, "updatedReplicas": 3,
                       "currentRevision": "db-1", "updateRevision": "db-1"}
        });
        assert_eq!(rollout_state(&s), progressing(OBSERVING));
        s["status"] = json!({"observedGeneration": 2, "replicas": 3, "readyReplicas": 2, "updatedReplicas": 1,
                             "currentRevision": "db-1", "updateRevision": "db-2"});
        assert_eq!(rollout_state(&s), progressing("2 of 3 pods are ready"));
        s["status"]["readyReplicas"] = json!(3);
        assert_eq!(
            rollout_state(&s),
            progressing("1 of 3 pods updated to revision `db-2`")
        );
        s["status"]["currentRevision"] = json!("db-2");
        assert_eq!(rollout_state(&s), READY);
        s["spec"]["updateStrategy"] =
            json!({"type": "RollingUpdate", "rollingUpdate": {"partition": 2}});
        s["status"]["updatedReplicas"] = json!(0);
        assert_eq!(
            rollout_state(&s),
            progressing("partitioned rollout: 0 out of 1 new pods have been updated")
        );
        s["spec"]["updateStrategy"] = json!({"type": "OnDelete"});
        assert!(
            matches!(rollout_state(&s), RolloutState::Ready { note: Some(n) } if n.contains("OnDelete"))
        );
    }

    #[test]
    fn daemonset_rules() {
        let mut d = json!({
            "apiVersion": "apps/v1", "kind": "DaemonSet",
            "metadata": {"generation": 1}, "spec": {},
            "status": {"observedGeneration": 1, "desiredNumberScheduled": 3, "updatedNumberScheduled": 2, "numberAvailable": 2}
        });
        assert_eq!(
            rollout_state(&d),
            progressing("2 out of 3 new pods have been updated")
        );
        d["status"]["updatedNumberScheduled"] = json!(3);
        assert_eq!(
            rollout_state(&d),
            progressing("2 of 3 updated pods are available")
        );
        d["status"]["numberAvailable"] = json!(3);
        assert_eq!(rollout_state(&d), READY);
        d["metadata"]["generation"] = json!(2);
        assert_eq!(rollout_state(&d), progressing(OBSERVING));
    }

    fn events_of(name: &str) -> Vec<CoreEvent> {
        serde_json::from_value(http_body(name)["items"].clone()).unwrap()
    }

    #[test]
    fn recent_events_are_the_pods_own_newest_last() {
        let crash = events_of("07-events-pod-crash.http");
        let lines = recent_events(
            &crash,
            "Pod",
            "crash",
            Some("342756bb-bab1-429b-a321-a0a20a3e72a8"),
        );
        assert_eq!(lines.len(), 6);
        assert_eq!(
            lines[0],
            "Normal Scheduled: Successfully assigned kapi-pods/crash to vm"
        );
        assert_eq!(
            lines[1],
            "Warning BackOff: Back-off restarting failed container main in pod crash_kapi-pods(342756bb-bab1-429b-a321-a0a20a3e72a8) (x9)"
        );
        assert_eq!(lines[5], "Normal Started: Started container main (x7)");

        // Another pod's events and an older pod of the same name are left out.
        let mut mixed = events_of("07-events-pod-pull-fail.http");
        mixed.extend(crash.clone());
        assert_eq!(recent_events(&mixed, "Pod", "crash", None).len(), 6);
        assert!(recent_events(&mixed, "Pod", "crash", Some("other-uid")).is_empty());
        let pull = recent_events(&mixed, "Pod", "pull-fail", None);
        assert_eq!(pull.len(), 7);
        assert_eq!(
            pull[6],
            "Normal BackOff: Back-off pulling image \"127.0.0.1:5000/nope:1\" (x21)"
        );
    }

    #[test]
    fn recent_events_keep_the_newest_eight() {
        let events: Vec<CoreEvent> = (0..12)
            .map(|i| {
                serde_json::from_value(json!({
                    "metadata": {"name": format!("e{i}")},
                    "involvedObject": {"kind": "Pod", "name": "p"},
                    "reason": "R", "message": format!("m{i}"), "type": "Warning",
                    "lastTimestamp": format!("2026-11-22T03:{:02}:00Z", 59 - i),
                }))
                .unwrap()
            })
            .collect();
        let lines = recent_events(&events, "Pod", "p", None);
        assert_eq!(lines.len(), MAX_EVENTS);
        assert_eq!(lines.first().unwrap(), "Warning R: m7");
        assert_eq!(lines.last().unwrap(), "Warning R: m0");
    }

    #[test]
    fn selectors_match_labels_and_expressions() {
        let labels = json!({"app": "web", "tier": "front"});
        let labels = labels.as_object();
        assert!(selector_matches(
            &json!({"matchLabels": {"app": "web"}}),
            labels
        ));
        assert!(!selector_matches(
            &json!({"matchLabels": {"app": "api"}}),
            labels
        ));
        assert!(selector_matches(
            &json!({"matchExpressions": [
                {"key": "tier", "operator": "In", "values": ["front", "back"]},
                {"key": "canary", "operator": "DoesNotExist"},
                {"key": "app", "operator": "NotIn", "values": ["api"]},
            ]}),
            labels
        ));
        assert!(!selector_matches(
            &json!({"matchExpressions": [{"key": "canary", "operator": "Exists"}]}),
            labels
        ));
        assert!(!selector_matches(&Value::Null, labels));
    }

    #[test]
    fn apply_time_is_devloops_managed_fields_entry() {
        let pod = http_body("05-pod-crash.http");
        assert_eq!(
            apply_time(&pod),
            Some("2026-11-22T03:03:30Z".parse().unwrap())
        );
        // Written by another manager (curl): no apply time.
        assert_eq!(apply_time(&http_body("05-pod-unschedulable.http")), None);
    }

    #[test]
    fn only_pods_of_the_current_rollout_are_judged() {
        let deployment = AppliedObject {
            reference: ObjectRef {
                api_version: "apps/v1".into(),
                kind: "Deployment".into(),
                namespace: Some("demo".into()),
                name: "web".into(),
            },
            change: Change::Configured,
            generation: 2,
            object: json!({
                "metadata": {"name": "web", "uid": "u1", "generation": 2, "managedFields": [
                    {"manager": "devloop", "operation": "Apply", "time": "2026-11-22T03:10:00Z"}
                ]},
                "spec": {"selector": {"matchLabels": {"app": "web"}}},
                "status": {"observedGeneration": 1}
            }),
        };
        let pod = |name: &str, created: &str, app: &str| json!({"metadata": {"name": name, "creationTimestamp": created, "labels": {"app": app}}});
        let mut objects = BTreeMap::new();
        for p in [
            pod("web-old", "2026-11-22T03:09:59Z", "web"),
            pod("web-new", "2026-11-22T03:10:00Z", "web"),
            pod("api-new", "2026-11-22T03:10:05Z", "api"),
        ] {
            objects.insert(p["metadata"]["name"].as_str().unwrap().to_string(), p);
        }
        let mut leaving = pod("web-leaving", "2026-11-22T03:10:01Z", "web");
        leaving["metadata"]["deletionTimestamp"] = json!("2026-11-22T03:10:02Z");
        objects.insert("web-leaving".into(), leaving);
        let watches = Watches {
            watched: vec![Watched {
                source: Source::Pods {
                    namespace: "demo".into(),
                    selector: MANAGED_BY.into(),
                },
                objects,
                relist: None,
                synced: true,
            }],
        };
        let names = |w: &Workload| -> Vec<String> {
            w.pods(&watches)
                .iter()
                .map(|p| p["metadata"]["name"].as_str().unwrap().to_string())
                .collect()
        };
        let changed = Workload::new(&deployment, WorkloadKind::Deployment, "default");
        assert_eq!(names(&changed), ["web-new"]);
        // Template unchanged (generation already observed): every live pod counts.
        let mut same = deployment.clone();
        same.object["status"]["observedGeneration"] = json!(2);
        let unchanged = Workload::new(&same, WorkloadKind::Deployment, "default");
        assert_eq!(names(&unchanged), ["web-new", "web-old"]);
    }

    #[test]
    fn failure_text_names_object_pod_container_and_reason() {
        let reference = ObjectRef {
            api_version: "apps/v1".into(),
            kind: "Deployment".into(),
            namespace: Some("demo".into()),
            name: "web".into(),
        };
        let p = problem(
            "web-1",
            Some("main"),
            "ImagePullBackOff",
            "Back-off pulling image \"x\"",
        );
        assert_eq!(
            failure_line(&reference, &p.reason, &p.message, Some(&p)),
            "deployment/web (namespace `demo`): pod `web-1`, container `main`: ImagePullBackOff: Back-off pulling image \"x\""
        );
        let job = ObjectRef {
            api_version: "batch/v1".into(),
            kind: "Job".into(),
            ..reference
        };
        let p = problem("migrate-x", Some("main"), "Error", "exited with code 3");
        assert_eq!(
            failure_line(
                &job,
                "BackoffLimitExceeded",
                "Job has reached the specified backoff limit",
                Some(&p)
            ),
            "job/web (namespace `demo`): BackoffLimitExceeded: Job has reached the specified backoff limit; pod `migrate-x`, container `main`: Error: exited with code 3"
        );
    }

    #[test]
    fn durations_read_like_flags() {
        assert_eq!(human_duration(Duration::from_secs(600)), "10m");
        assert_eq!(human_duration(Duration::from_secs(90)), "1m30s");
        assert_eq!(human_duration(Duration::from_secs(3600)), "1h");
        assert_eq!(human_duration(Duration::from_millis(300)), "300ms");
    }

    // -- PersistentVolumeClaims ------------------------------------------------------------------------------

    /// The recorded pods of 10-pvc-binding-timeline.jsonl as pod objects (name, phase, conditions).
    fn recorded_pvc_pods() -> Vec<Value> {
        jsonl("10-pvc-binding-timeline.jsonl")
            .into_iter()
            .filter(|l| l.get("pod").is_some())
            .map(|l| {
                json!({
                    "metadata": {"name": l["pod"]},
                    "status": {"phase": l["phase"], "conditions": l["conditions"]}
                })
            })
            .collect()
    }

    fn pending_claim(size: &str, class: Option<&str>) -> Value {
        let mut c = json!({
            "metadata": {"name": "data", "namespace": "shop", "uid": "c1"},
            "spec": {"accessModes": ["ReadWriteOnce"], "resources": {"requests": {"storage": size}}},
            "status": {"phase": "Pending"}
        });
        if let Some(class) = class {
            c["spec"]["storageClassName"] = json!(class);
        }
        c
    }

    fn available_volume(name: &str, size: &str) -> Value {
        json!({
            "metadata": {"name": name},
            "spec": {"capacity": {"storage": size}, "accessModes": ["ReadWriteOnce"], "storageClassName": ""},
            "status": {"phase": "Available"}
        })
    }

    #[test]
    fn unschedulable_for_claims_is_told_apart_from_other_unschedulable_pods() {
        let pods = recorded_pvc_pods();
        let stuck = pods
            .iter()
            .find(|p| {
                p["metadata"]["name"]
                    .as_str()
                    .unwrap()
                    .starts_with("stuck-")
            })
            .unwrap();
        let problem = diagnose_pod(stuck).unwrap();
        assert_eq!(problem.reason, "Unschedulable");
        assert!(problem.fails_fast());
        assert!(waits_for_claims(&problem));
        // What the scheduler says about a claim that does not exist (kube-scheduler's volumebinding PreFilter).
        let missing = problem_with(
            "0/1 nodes are available: persistentvolumeclaim \"data\" not found. preemption: 0/1 nodes are available: 1 Preemption is not helpful for scheduling.",
        );
        assert!(waits_for_claims(&missing));
        // No node fits: nothing to wait for.
        let affinity = diagnose_pod(&http_body("05-pod-unschedulable.http")).unwrap();
        assert!(!waits_for_claims(&affinity));
        assert!(!waits_for_claims(&problem_with(
            "0/3 nodes are available: 3 Insufficient cpu. preemption: 0/3 nodes are available: 3 No preemption victims found for incoming pod."
        )));
    }

    fn problem_with(message: &str) -> PodProblem {
        PodProblem {
            pod: "p".into(),
            container: None,
            reason: "Unschedulable".into(),
            message: message.into(),
        }
    }

    #[test]
    fn a_pods_claims_are_its_claim_volumes_and_ephemeral_volumes() {
        let pod = json!({
            "metadata": {"name": "db-0"},
            "spec": {"volumes": [
                {"name": "data", "persistentVolumeClaim": {"claimName": "db-data"}},
                {"name": "scratch", "ephemeral": {"volumeClaimTemplate": {"spec": {}}}},
                {"name": "config", "configMap": {"name": "settings"}},
            ]}
        });
        assert_eq!(pod_claims(&pod), ["db-data", "db-0-scratch"]);
    }

    #[test]
    fn quantities_compare_across_units() {
        assert_eq!(quantity_bytes("1Gi"), Some(1024.0 * 1024.0 * 1024.0));
        assert_eq!(quantity_bytes("500Mi"), Some(500.0 * 1024.0 * 1024.0));
        assert_eq!(quantity_bytes("2G"), Some(2e9));
        assert_eq!(
            quantity_bytes("1.5Gi"),
            Some(1.5 * 1024.0 * 1024.0 * 1024.0)
        );
        assert_eq!(quantity_bytes("1024"), Some(1024.0));
        assert_eq!(quantity_bytes("lots"), None);
        assert!(quantity_bytes("1G").unwrap() < quantity_bytes("1Gi").unwrap());
    }

    #[test]
    fn a_claim_may_bind_when_a_volume_fits_or_a_class_can_provision_it() {
        let claim = pending_claim("1Gi", Some(""));
        let fits = [available_volume("pv-a", "2Gi")];
        let may = |o: ClaimOutlook| matches!(o, ClaimOutlook::MayBind(_));
        assert!(may(claim_outlook(Some(&claim), Some(&fits), Some(&[]))));
        // Reserved for this claim (claimRef) even while another phase shows.
        let mut reserved = available_volume("pv-r", "1Gi");
        reserved["spec"]["claimRef"] = json!({"namespace": "shop", "name": "data"});
        reserved["status"]["phase"] = json!("Pending");
        assert!(may(claim_outlook(
            Some(&claim),
            Some(&[reserved]),
            Some(&[])
        )));
        // A storage class: a provisioner may create the volume.
        let classed = pending_claim("1Gi", Some("fast"));
        assert!(may(claim_outlook(Some(&classed), Some(&[]), Some(&[]))));
        // No class at all while a default StorageClass exists, or while classes cannot be listed.
        let classless = pending_claim("1Gi", None);
        let default = json!({"metadata": {"name": "standard", "annotations": {"storageclass.kubernetes.io/is-default-class": "true"}}});
        assert!(may(claim_outlook(
            Some(&classless),
            Some(&[]),
            Some(&[default])
        )));
        assert!(may(claim_outlook(Some(&classless), Some(&[]), None)));
        // PersistentVolumes cannot be listed (RBAC): no guess.
        assert!(may(claim_outlook(Some(&claim), None, Some(&[]))));
        // Bound already.
        let mut bound = claim.clone();
        bound["status"]["phase"] = json!("Bound");
        assert_eq!(
            claim_outlook(Some(&bound), Some(&[]), Some(&[])),
            ClaimOutlook::Bound
        );
    }

    #[test]
    fn a_claim_cannot_bind_when_no_volume_fits_and_no_class_is_set() {
        let cannot = |o: ClaimOutlook| matches!(o, ClaimOutlook::CannotBind(_));
        // The recorded case: 5Gi, no volume that large, storageClassName "".
        let claim = pending_claim("5Gi", Some(""));
        assert_eq!(
            claim_outlook(
                Some(&claim),
                Some(&[available_volume("pv-a", "1Gi")]),
                Some(&[])
            ),
            ClaimOutlook::CannotBind(
                "no PersistentVolume fits it and no storage class is set to provision one".into()
            )
        );
        // Absent and "" are the same class when no default StorageClass exists.
        let classless = pending_claim("1Gi", None);
        assert!(!cannot(claim_outlook(
            Some(&classless),
            Some(&[available_volume("pv-a", "1Gi")]),
            Some(&[])
        )));
        let small = pending_claim("1Gi", Some(""));
        let mut other_class = available_volume("pv-m", "1Gi");
        other_class["spec"]["storageClassName"] = json!("manual");
        let mut read_many = available_volume("pv-x", "1Gi");
        read_many["spec"]["accessModes"] = json!(["ReadOnlyMany"]);
        let mut taken = available_volume("pv-t", "1Gi");
        taken["spec"]["claimRef"] = json!({"namespace": "other", "name": "data"});
        taken["status"]["phase"] = json!("Bound");
        let mut released = available_volume("pv-r", "1Gi");
        released["status"]["phase"] = json!("Released");
        for pv in [other_class, read_many, taken, released] {
            assert!(
                cannot(claim_outlook(
                    Some(&small),
                    Some(std::slice::from_ref(&pv)),
                    Some(&[])
                )),
                "{pv}"
            );
        }
        let mut selective = small.clone();
        selective["spec"]["selector"] = json!({"matchLabels": {"disk": "ssd"}});
        assert!(cannot(claim_outlook(
            Some(&selective),
            Some(&[available_volume("pv-a", "1Gi")]),
            Some(&[])
        )));
        let mut named = small.clone();
        named["spec"]["volumeName"] = json!("pv-gone");
        assert!(cannot(claim_outlook(
            Some(&named),
            Some(&[available_volume("pv-a", "1Gi")]),
            Some(&[])
        )));
        assert_eq!(
            claim_outlook(None, Some(&[]), Some(&[])),
            ClaimOutlook::CannotBind("it does not exist".into())
        );
    }

    #[test]
    fn a_claim_that_cannot_bind_fails_only_after_the_grace_and_says_who_said_why() {
        let claim = UnboundClaim {
            label: "persistentvolumeclaim `never-bound` (namespace `shop`; 5Gi, ReadWriteOnce, storageClassName \"\")".into(),
            outlook: ClaimOutlook::CannotBind("no PersistentVolume fits it and no storage class is set to provision one".into()),
            last_event: Some((
                "persistentvolume-controller".into(),
                "no persistent volumes available for this claim and no storage class is set".into(),
            )),
            events: Vec::new(),
            hint: String::new(),
            exists: true,
        };
        assert!(claim_that_cannot_bind(vec![claim.clone()], Duration::from_secs(1)).is_none());
        let failed = claim_that_cannot_bind(vec![claim], CLAIM_GRACE).unwrap();
        assert_eq!(
            failed.describe(),
            "persistentvolumeclaim `never-bound` (namespace `shop`; 5Gi, ReadWriteOnce, storageClassName \"\") cannot bind: no PersistentVolume fits it and no storage class is set to provision one; persistentvolume-controller: \"no persistent volumes available for this claim and no storage class is set\""
        );
        let waiting = UnboundClaim {
            label: "persistentvolumeclaim `db-data` (namespace `shop`; 1Gi, ReadWriteOnce, storageClassName \"\")".into(),
            outlook: ClaimOutlook::MayBind("PersistentVolume `pv-a` fits it".into()),
            last_event: None,
            events: Vec::new(),
            hint: String::new(),
            exists: true,
        };
        assert!(claim_that_cannot_bind(vec![waiting.clone()], Duration::from_secs(60)).is_none());
        assert_eq!(
            waiting.describe(),
            "persistentvolumeclaim `db-data` (namespace `shop`; 1Gi, ReadWriteOnce, storageClassName \"\") is not bound yet (PersistentVolume `pv-a` fits it); no event about it yet"
        );
    }

    #[test]
    fn a_pod_held_back_by_its_claims_is_waited_for_and_other_unschedulable_pods_fail() {
        let applied = AppliedObject {
            reference: ObjectRef {
                api_version: "v1".into(),
                kind: "Pod".into(),
                namespace: Some("shop".into()),
                name: "db".into(),
            },
            change: Change::Created,
            generation: 0,
            object: json!({"metadata": {"name": "db"}}),
        };
        let judge = |message: &str| {
            let pod = json!({
                "metadata": {"name": "db"},
                "spec": {"volumes": [{"name": "data", "persistentVolumeClaim": {"claimName": "db-data"}}]},
                "status": {"phase": "Pending", "conditions": [{"type": "PodScheduled", "status": "False", "reason": "Unschedulable", "message": message}]}
            });
            let watches = Watches {
                watched: vec![Watched {
                    source: Source::Pods {
                        namespace: "shop".into(),
                        selector: MANAGED_BY.into(),
                    },
                    objects: BTreeMap::from([("db".to_string(), pod)]),
                    relist: None,
                    synced: true,
                }],
            };
            let mut workloads = vec![Workload::new(&applied, WorkloadKind::Pod, "shop")];
            let failure = evaluate(
                &mut workloads,
                &watches,
                &EventSink::new(|_| {}),
                Instant::now(),
            );
            (failure.map(|f| f.reason), workloads[0].claim_wait.is_some())
        };
        assert_eq!(
            judge(
                "0/1 nodes are available: pod has unbound immediate PersistentVolumeClaims. not found"
            ),
            (None, true)
        );
        assert_eq!(
            judge(
                "0/1 nodes are available: 1 Insufficient cpu. preemption: 0/1 nodes are available: 1 No preemption victims found for incoming pod."
            ),
            (Some("Unschedulable".to_string()), false)
        );
        // A pod of the same workload that cannot start is reported before one waiting for its claim.
        let waiting = json!({
            "metadata": {"name": "db-a"},
            "status": {"phase": "Pending", "conditions": [{"type": "PodScheduled", "status": "False", "reason": "Unschedulable", "message": "0/1 nodes are available: pod has unbound immediate PersistentVolumeClaims. not found"}]}
        });
        let mut pulling = http_body("05-pod-pull-fail.http");
        pulling["metadata"]["name"] = json!("db-b");
        let (worst, _) = worst_of(vec![&waiting, &pulling]).unwrap();
        assert_eq!(worst.reason, "ImagePullBackOff");
    }
}
