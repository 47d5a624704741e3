//! Deploy, Kubernetes backend, prune: what this deploy applied → what this deployment applied before and the plan
//! no longer has, deleted (within a session, what this process applied; on the first deploy, the members of the
//! set the cluster holds), and the session remembered for the next deploy. Deletes only members devloop applied.

use std::collections::BTreeSet;

use super::discovery::Found;
use super::ownership::is_copy;
use super::plan::PlannedObject;
use super::session::{ObjectKey, object_key};
use super::{KubePlan, KubeTarget};
use crate::deploy::applyset::{ApplySet, Contents};
use crate::deploy::{AppliedObject, DeployError};
use crate::event::EventSink;

impl KubeTarget {
    /// Prunes what this deployment applied before and `applied` no longer has, but what `plan` keeps (and, unless
    /// it is a blue/green release, blue/green copies); `recorded` is what the set's parent records (the members to
    /// look for on a first deploy). Returns what was pruned.
    pub(super) async fn prune<'a>(
        &self,
        set: &ApplySet,
        recorded: &Contents,
        applied: &[AppliedObject],
        planned: impl Iterator<Item = &'a PlannedObject>,
        plan: &KubePlan,
        events: &EventSink,
    ) -> Result<Vec<Found>, DeployError> {
        // Prune what this deployment applied before and the plan no longer has: within a session, what this
        // process applied; on the first deploy, the members of the set the cluster holds.
        let keep: BTreeSet<ObjectKey> = applied.iter().map(|a| object_key(&a.reference)).collect();
        let spared: BTreeSet<ObjectKey> = plan.keep.iter().map(object_key).collect();
        let previous = self.session.lock().await.take();
        let stale: Vec<Found> = match &previous {
            Some(m) => m
                .iter()
                .filter(|(k, _)| !keep.contains(*k) && !spared.contains(*k))
                .filter(|(_, r)| plan.prune_copies || !is_copy(&r.applied.object))
                .map(|(_, r)| (r.applied.reference.clone(), r.ar.clone(), r.caps.clone()))
                .collect(),
            None => self
                .members(set, recorded, plan.prune_copies)
                .await?
                .into_iter()
                .filter(|(r, _, _)| {
                    let k = object_key(r);
                    !keep.contains(&k) && !spared.contains(&k)
                })
                .collect(),
        };
        let deleted = self.delete_objects(&stale, false, true, events).await;
        // Remember this deploy's objects for the next one (also after a failed prune: they are applied).
        self.remember(previous, &keep, applied, planned).await;
        deleted?;
        Ok(stale)
    }
}
