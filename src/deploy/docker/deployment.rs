//! Deploy, Docker backend, one deploy: a `DockerPlan` → the project's network and volumes, every container planned
//! (images pulled when missing), containers that left the plan pruned (and network sandboxes no container runs in),
//! then the rest started level by level in dependency order, each after its dependencies meet their conditions. Emits events; stops when cancelled.

use std::collections::HashSet;
use std::time::Instant;

use tokio_util::sync::CancellationToken;

use super::labels::{plan_name, sandbox_of};
use super::order::levels;
use super::plan::Planned;
use super::readiness::millis;
use super::reference::container_ref;
use super::{DockerPlan, DockerTarget};
use crate::config::deploy::{Restart, Volume};
use crate::deploy::{AppliedObject, DeployError, DeployedSet, ObjectRef};
use crate::event::{Event, EventSink};

impl DockerTarget {
    /// `deploy`: makes the daemon run `plan`.
    pub(super) async fn roll_out(
        &self,
        plan: &DockerPlan,
        events: &EventSink,
        cancel: &CancellationToken,
    ) -> Result<DeployedSet, DeployError> {
        let started = Instant::now();
        events.emit(Event::DeployStarted {
            context: "docker".into(),
            namespace: self.network_name(),
            objects: plan.deploy.containers.len(),
        });
        self.ensure_network().await?;
        let planned = self.plan_all(plan, cancel).await?;
        // Prune first: a container that left the plan may hold a host port a new one needs.
        let pruned = self.prune(plan, &planned, events).await?;
        let applied = self.start_in_order(plan, &planned, events, cancel).await?;
        events.emit(Event::DeployComplete {
            applied: applied.len(),
            pruned: pruned.len(),
            duration_ms: millis(started.elapsed()),
        });
        Ok(DeployedSet {
            applied,
            pruned,
            created_namespaces: Vec::new(),
        })
    }

    /// Every container of the plan resolved against the daemon, its named volumes created first.
    async fn plan_all(
        &self,
        plan: &DockerPlan,
        cancel: &CancellationToken,
    ) -> Result<Vec<Planned>, DeployError> {
        let mut planned = Vec::with_capacity(plan.deploy.containers.len());
        for c in &plan.deploy.containers {
            if cancel.is_cancelled() {
                return Err(DeployError::Cancelled);
            }
            for v in &c.volumes {
                if let Volume::Named { name, .. } = v {
                    self.ensure_volume(&self.volume_name(name)).await?;
                }
            }
            planned.push(self.plan_container(c, plan, cancel).await?);
        }
        Ok(planned)
    }

    /// Stops and removes the project's containers the plan no longer has, then removes (at once, silently) the
    /// network sandboxes no planned container runs in: its container left the plan, or runs without one now
    /// (`run` after `dev`, a pulled image instead of a built one), so the host ports it holds are free again.
    async fn prune(
        &self,
        plan: &DockerPlan,
        planned: &[Planned],
        events: &EventSink,
    ) -> Result<Vec<ObjectRef>, DeployError> {
        let grace = plan.deploy.stop_grace_period_secs;
        let keep: HashSet<&str> = plan
            .deploy
            .containers
            .iter()
            .map(|c| c.name.as_str())
            .collect();
        let (containers, sandboxes) = self.list_project().await?;
        let mut pruned = Vec::new();
        for c in containers {
            let name = plan_name(c.labels.as_ref());
            if keep.contains(name.as_str()) {
                continue;
            }
            let Some(id) = c.id.as_deref() else { continue };
            let object = format!("container/{name}");
            self.stop_and_remove(&object, id, Some(grace), events)
                .await?;
            events.emit(Event::Pruned {
                object,
                namespace: None,
            });
            pruned.push(container_ref(&name));
        }
        let sandboxed: HashSet<&str> = planned
            .iter()
            .filter(|p| p.sandbox.is_some())
            .map(|p| p.container.name.as_str())
            .collect();
        for s in sandboxes {
            let name = sandbox_of(s.labels.as_ref());
            if let Some(id) =
                s.id.as_deref()
                    .filter(|_| !sandboxed.contains(name.as_str()))
            {
                self.remove_at_once(&format!("container/{name}"), id)
                    .await?;
            }
        }
        Ok(pruned)
    }

    /// Makes each planned container match the plan, level by level; within a level concurrently, each once its
    /// dependencies meet their conditions.
    async fn start_in_order(
        &self,
        plan: &DockerPlan,
        planned: &[Planned],
        events: &EventSink,
        cancel: &CancellationToken,
    ) -> Result<Vec<AppliedObject>, DeployError> {
        let grace = plan.deploy.stop_grace_period_secs;
        let mut applied = Vec::with_capacity(planned.len());
        for level in levels(&plan.deploy.containers) {
            if cancel.is_cancelled() {
                return Err(DeployError::Cancelled);
            }
            let work = level.iter().map(|&i| {
                let p = &planned[i];
                async move {
                    for dep in &p.container.depends_on {
                        let restart = plan
                            .deploy
                            .containers
                            .iter()
                            .find(|c| c.name == dep.name)
                            .map(|c| c.restart)
                            .unwrap_or(Restart::No);
                        self.wait_dependency(&p.container.name, dep, restart, events, cancel)
                            .await?;
                    }
                    self.reconcile(p, grace, events).await
                }
            });
            let results = tokio::select! {
                r = futures_util::future::join_all(work) => r,
                _ = cancel.cancelled() => return Err(DeployError::Cancelled),
            };
            applied.extend(crate::deploy::all_or_errors(
                results,
                "containers could not be deployed",
            )?);
        }
        Ok(applied)
    }
}
