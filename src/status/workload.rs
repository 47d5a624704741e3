//! Status: one applied object → the workload the status check waits for ([`Workload`]: its kind and namespace,
//! which pods are its current rollout, its last progress), dated by devloop's own apply. Pure bookkeeping: it must
//! not talk to the cluster.

use std::time::Instant;

use k8s_openapi::jiff::Timestamp;
use serde_json::Value;

use crate::deploy::{AppliedObject, Change, ObjectRef};

use super::diagnosis::PodProblem;
use super::fields::{int_at, str_at, timestamp_at};
use super::kind::WorkloadKind;
use super::selector::PodSelector;

/// The field manager devloop applies with; its `managedFields` entry dates the apply.
use crate::labels::FIELD_MANAGER;

/// One workload being waited for.
pub(super) struct Workload {
    pub(super) reference: ObjectRef,
    pub(super) namespace: String,
    pub(super) kind: WorkloadKind,
    pub(super) uid: Option<String>,
    pub(super) selector: PodSelector,
    /// When the apply changed the pod template: pods created before this belong to the previous rollout.
    pub(super) since: Option<Timestamp>,
    /// The latest object seen by the watch.
    pub(super) object: Option<Value>,
    /// The last progress message reported.
    pub(super) message: Option<String>,
    pub(super) ready: bool,
    /// Its pod is held back by PersistentVolumeClaims that may still bind.
    pub(super) claim_wait: Option<ClaimWait>,
}

/// A pod the scheduler left Unschedulable for its claims, while the status check finds out whether they can bind.
pub(super) struct ClaimWait {
    pub(super) problem: PodProblem,
    pub(super) pod: Value,
    /// When the status check first saw the pod held back.
    pub(super) since: Instant,
    /// When its claims were last looked at.
    pub(super) checked: Option<Instant>,
}

impl Workload {
    pub(super) fn new(applied: &AppliedObject, kind: WorkloadKind, default_ns: &str) -> Self {
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
    pub(super) fn current_pods<'p>(
        &self,
        candidates: impl IntoIterator<Item = &'p Value>,
    ) -> Vec<&'p Value> {
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
}

/// When devloop last applied `object`: its `managedFields` entry (second precision), as the server recorded it.
pub(super) fn apply_time(object: &Value) -> Option<Timestamp> {
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
