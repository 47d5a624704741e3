//! Status: a failing pod → the evidence that explains it (its recent events, the last log lines of the container at
//! fault). Best effort and read-only: it must not hold a known failure back for long (callers bound it with
//! [`DIAGNOSIS_TIMEOUT`]) and never changes an object.

use std::time::Duration;

use k8s_openapi::api::core::v1::{Event as CoreEvent, Pod};
use k8s_openapi::jiff::Timestamp;
use kube::api::{Api, ListParams, LogParams};
use serde_json::Value;

use super::diagnosis::{PodProblem, container_statuses};
use super::fields::{int_at, str_at};

/// At most this many events are shown for a failing pod (the newest).
pub(super) const MAX_EVENTS: usize = 8;
/// This many log lines of the failing container are shown.
const LOG_TAIL_LINES: i64 = 20;
/// Events and logs only decorate a failure that is already known: never let them hold it back for long.
pub(super) const DIAGNOSIS_TIMEOUT: Duration = Duration::from_secs(5);

/// The newest events about one object (at most `MAX_EVENTS`, newest last), formatted like
/// `Warning BackOff: Back-off restarting failed container … (x5)`.
pub(super) fn recent_events(
    events: &[CoreEvent],
    kind: &str,
    name: &str,
    uid: Option<&str>,
) -> Vec<String> {
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
pub(super) fn event_time(e: &CoreEvent) -> Option<Timestamp> {
    e.last_timestamp
        .as_ref()
        .map(|t| t.0)
        .or_else(|| e.event_time.as_ref().map(|t| t.0))
        .or_else(|| e.first_timestamp.as_ref().map(|t| t.0))
        .or_else(|| e.metadata.creation_timestamp.as_ref().map(|t| t.0))
}

/// Events and log lines that explain a pod problem.
#[derive(Debug, Default)]
pub(super) struct Evidence {
    pub(super) events: Vec<String>,
    pub(super) logs: Vec<String>,
}

/// Fetches the recent events of the pod and the last log lines of the container at fault. Best effort: what
/// cannot be fetched (logs of a container that never started answer 400) is left out.
pub(super) async fn gather_evidence(
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
