//! Status: the watch-driven wait, the stage's loop: a [`StatusCheck`] → how many workloads became ready. Every watch
//! event judges the workloads not yet ready again; it fails fast on what cannot resolve by itself and waits (within
//! the deadline) for claims that may still bind. It only reads the cluster: it never changes an object.

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use futures_util::stream::{self, StreamExt};

use crate::deploy::DeployError;
use crate::event::{Event, EventSink};

use super::StatusCheck;
use super::claim::{
    CLAIM_GRACE, CLAIM_RECHECK, claim_that_cannot_bind, unbound_claims, waits_for_claims,
};
use super::deadline::deadline_failure;
use super::diagnosis::diagnose_pod;
use super::evidence::DIAGNOSIS_TIMEOUT;
use super::failure::{Failure, report_failure, worst_pod};
use super::kind::WorkloadKind;
use super::rollout::{RolloutState, state_of};
use super::watch::{MANAGED_BY, Source, Watched, Watches, fatal_watch_error, pod_source, watch};
use super::workload::{ClaimWait, Workload};

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

/// Re-judges every workload not yet ready; emits progress and ready events; returns the first failure.
pub(super) fn evaluate(
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

fn millis(d: Duration) -> u64 {
    u64::try_from(d.as_millis()).unwrap_or(u64::MAX)
}
