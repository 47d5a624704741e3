//! Deploy, Kubernetes backend, one deploy: a `KubePlan` → every object applied in order (namespaces, then what
//! others need, then the rest), the ApplySet parent recording a superset before members are applied and exactly
//! this deploy's after the prune (KEP-3659), and what left the plan pruned. Emits events; stops applying when
//! cancelled.

use std::time::Instant;

use kube::core::GroupVersionKind;
use serde_json::Value;
use tokio_util::sync::CancellationToken;

use super::discovery::describe;
use super::order::{Ordered, order};
use super::parent::contents_of;
use super::plan::Deferred;
use super::{KubePlan, KubeTarget};
use crate::deploy::applyset::{ApplySet, Contents};
use crate::deploy::{DeployError, DeployedSet};
use crate::event::{Event, EventSink};

impl KubeTarget {
    /// `deploy`: makes the cluster hold `plan` as this deployment.
    pub(super) async fn roll_out(
        &self,
        plan: &KubePlan,
        events: &EventSink,
        cancel: &CancellationToken,
    ) -> Result<DeployedSet, DeployError> {
        let started = Instant::now();
        let held;
        let plan = if plan.prune_copies {
            plan
        } else {
            held = self.hold_released(plan).await;
            &held
        };
        let set = self.adopt(plan).await;
        events.emit(Event::DeployStarted {
            context: self.context.clone(),
            namespace: set.namespace.clone(),
            objects: plan.objects.len(),
        });
        let (planned, deferred) = self.plan_objects(plan, &set).await?;
        // Namespaces first (the set's parent may live in one), then what other objects need to exist: CRDs for
        // their custom resources, StorageClasses and PersistentVolumes for the claims that bind to them.
        let mut ordered = order(planned);
        let mut applied = self.apply_all(&ordered.namespaces, events, cancel).await?;
        let mut created_namespaces = self
            .ensure_namespaces(
                ordered.first.iter().chain(&ordered.rest),
                &ordered.namespaces,
                &set,
                events,
            )
            .await?;
        let recorded = self.record_coming(&set, &ordered, &deferred).await?;

        applied.extend(self.apply_all(&ordered.first, events, cancel).await?);
        self.wait_established(&ordered.crds()).await?;
        created_namespaces.extend(
            self.resolve_deferred(deferred, &mut ordered, &set, events)
                .await?,
        );
        applied.extend(self.apply_all(&ordered.rest, events, cancel).await?);

        let stale = self
            .prune(&set, &recorded, &applied, ordered.all(), plan, events)
            .await?;
        // Exactly what is deployed now, so the next prune lists no more than it must.
        let exact = contents_of(
            applied.iter().map(|a| &a.reference).chain(&plan.keep),
            &set.namespace,
        );
        self.write_parent(&set, &exact).await?;
        events.emit(Event::DeployComplete {
            applied: applied.len(),
            pruned: stale.len(),
            duration_ms: started.elapsed().as_millis() as u64,
        });
        Ok(DeployedSet {
            applied,
            pruned: stale.into_iter().map(|(r, _, _)| r).collect(),
            created_namespaces,
        })
    }

    /// The ApplySet of `plan`'s deployment, made this target's.
    async fn adopt(&self, plan: &KubePlan) -> ApplySet {
        let set = ApplySet::new(&self.project, &self.home_namespace(&plan.objects));
        let mut current = self.applyset.lock().await;
        if current.as_ref() != Some(&set) {
            // A new home (first deploy, or a config edit moved the project): nothing recorded there yet.
            *self.recorded.lock().await = None;
            *current = Some(set.clone());
        }
        set
    }

    /// Makes the set's parent record every group-kind and namespace before members are applied: a superset of
    /// what it recorded and what comes now. Returns what it records.
    async fn record_coming(
        &self,
        set: &ApplySet,
        ordered: &Ordered,
        deferred: &[(GroupVersionKind, Value)],
    ) -> Result<Contents, DeployError> {
        // The set's parent records every group-kind and namespace before members are applied (a superset of
        // what it recorded and what comes now), and exactly this deploy's after the prune (KEP-3659). What it
        // records: as devloop last wrote it in this process, else as the cluster has it.
        let known = self.recorded.lock().await.clone();
        let recorded = match known {
            Some(c) => c,
            None => self.read_parent(set).await?.unwrap_or_default(),
        };
        let mut coming = contents_of(ordered.all().map(|p| &p.reference), &set.namespace);
        // Custom resources whose CRD this deploy creates: their scope is not known yet, so their namespace (or the
        // default one) is recorded either way; a namespace too many only costs an empty list.
        for (gvk, o) in deferred {
            coming
                .group_kinds
                .insert((gvk.group.clone(), gvk.kind.clone()));
            coming.namespaces.insert(
                o.pointer("/metadata/namespace")
                    .and_then(Value::as_str)
                    .unwrap_or(&self.namespace)
                    .to_string(),
            );
        }
        let recording = recorded.union(&coming);
        self.write_parent(set, &recording).await?;
        Ok(recording)
    }

    /// Resolves the custom resources whose CRD this deploy created (Established now) and adds them to what is
    /// applied last; creates the namespaces they need. Returns the namespaces created.
    async fn resolve_deferred(
        &self,
        deferred: Deferred,
        ordered: &mut Ordered,
        set: &ApplySet,
        events: &EventSink,
    ) -> Result<Vec<String>, DeployError> {
        let resolved = ordered.rest.len();
        for (gvk, o) in deferred {
            match self.resource(&gvk).await? {
                Some((ar, caps)) => ordered.rest.push(self.planned(&o, ar, caps, set)?),
                None => return Err(self.unserved(&gvk, &describe(&o)).await),
            }
        }
        if ordered.rest.len() > resolved {
            return self
                .ensure_namespaces(
                    ordered.rest[resolved..].iter(),
                    &ordered.namespaces,
                    set,
                    events,
                )
                .await;
        }
        Ok(Vec::new())
    }
}
