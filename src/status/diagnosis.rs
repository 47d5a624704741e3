//! Status: a pod object → why it is not ready ([`PodProblem`]: the container at fault, the reason as Kubernetes
//! names it, a message) and whether waiting can fix it. Pure judgement of the object: it must not talk to the
//! cluster.

use serde_json::Value;

use super::fields::{bool_at, condition, condition_true, int_at, str_at};

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

/// `container `main`: ContainerCreating` — a problem without the pod name (the pod is named elsewhere).
pub(super) fn describe(problem: &PodProblem) -> String {
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
pub(super) struct ContainerStatus<'a> {
    pub(super) name: &'a str,
    pub(super) init: bool,
    pub(super) value: &'a Value,
}

pub(super) fn container_statuses(pod: &Value) -> Vec<ContainerStatus<'_>> {
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
