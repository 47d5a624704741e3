//! Status stage: the objects a deploy applied → how many workloads became ready (Deployments, StatefulSets and
//! DaemonSets rolled out, Jobs complete, bare Pods ready), driven by watches, failing fast with a diagnosis (pod,
//! container, reason, recent events, last log lines) only on what cannot resolve by itself: a pod waiting for a
//! PersistentVolumeClaim that can still bind is waited for. It only reads the cluster: it never changes an object.
//!
//! Files, bottom-up (each uses only files above it): `fields` (reading objects), `kind`, `diagnosis` (why a pod is
//! not ready), `rollout` (how far a workload is), `evidence` (events and logs of a failing pod), `selector`,
//! `claim` (the PersistentVolumeClaims a pod waits for), `workload`, `watch`, `failure` and `deadline` (what is
//! reported), `wait` (the loop).

mod claim;
mod deadline;
mod diagnosis;
mod evidence;
mod failure;
mod fields;
mod kind;
mod rollout;
mod selector;
mod wait;
mod watch;
mod workload;

use std::time::Duration;

use tokio_util::sync::CancellationToken;

use crate::deploy::AppliedObject;
use crate::event::EventSink;

pub use diagnosis::{PodProblem, diagnose_pod};
pub use rollout::{RolloutState, rollout_state};
pub use wait::wait;

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

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests;
