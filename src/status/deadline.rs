//! Status: the status check's deadline passed → an error naming every workload not ready, its last progress, what
//! is wrong with its pods and which claims they wait for, and a `RolloutFailed` event for each. It only reads the
//! cluster and never changes an object.

use std::time::Duration;

use crate::deploy::DeployError;
use crate::event::Event;
use crate::hint::Hint;

use super::StatusCheck;
use super::claim::{unbound_claims, waits_for_claims};
use super::evidence::DIAGNOSIS_TIMEOUT;
use super::failure::{evidence_for, fresh_worst_pod, pod_clause, worst_pod};
use super::watch::Watches;
use super::workload::Workload;

/// The deadline passed: names every workload not ready, its last progress and what is wrong with its pods.
pub(super) async fn deadline_failure(
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
        Some(hint) => text.push_str(
            &Hint(format_args!(
                "{hint}; or raise `--status-check-deadline` if it needs longer to bind"
            ))
            .to_string(),
        ),
        None => text.push_str(
            &Hint("raise `--status-check-deadline` if the workloads need longer to become ready")
                .to_string(),
        ),
    }
    DeployError::Status(text)
}

/// `10m`, `1m30s`, `45s`, `500ms`.
pub(super) fn human_duration(d: Duration) -> String {
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
