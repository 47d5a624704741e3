//! Deploy, Kubernetes backend, deletion: objects found as this deployment's members → deleted (namespaces last,
//! optionally waiting until they are gone), reported as pruned or deleted; and `delete_all`: every member, then
//! the set's parent. Deletes only what `members` found devloop applied.

use std::time::{Duration, Instant};

use futures_util::StreamExt;
use kube::api::DeleteParams;
use kube::discovery::{ApiCapabilities, Scope};

use super::discovery::Found;
use super::failure::api_error;
use super::parent::config_map_resource;
use super::{APPLY_CONCURRENCY, KubeTarget};
use crate::deploy::{DeleteOptions, DeployError, ObjectRef};
use crate::event::{Event, EventSink};

impl KubeTarget {
    pub(super) async fn delete_objects(
        &self,
        targets: &[Found],
        wait: bool,
        pruned: bool,
        events: &EventSink,
    ) -> Result<(), DeployError> {
        // Namespaces last: deleting one deletes what is inside it.
        let (namespaces, others): (Vec<_>, Vec<_>) =
            targets.iter().partition(|(r, _, _)| r.kind == "Namespace");
        for batch in [others, namespaces] {
            let futures: Vec<_> = batch
                .into_iter()
                .map(|(r, ar, caps)| async move {
                    let api = self.api(ar, caps, r.namespace.as_deref());
                    let dp = DeleteParams {
                        propagation_policy: Some(kube::api::PropagationPolicy::Background),
                        ..Default::default()
                    };
                    match api.delete(&r.name, &dp).await {
                        Ok(_) => {}
                        Err(kube::Error::Api(s)) if s.code == 404 => return Ok(()),
                        Err(e) => return Err(api_error(&e, &r.to_string(), Some(("delete", ar)))),
                    }
                    if wait {
                        let deadline = Instant::now() + Duration::from_secs(300);
                        while api
                            .get_opt(&r.name)
                            .await
                            .map_err(|e| api_error(&e, &r.to_string(), Some(("get", ar))))?
                            .is_some()
                        {
                            if Instant::now() > deadline {
                                return Err(DeployError::Api {
                                    message: format!(
                                        "{r} is still there 5 minutes after its deletion"
                                    ),
                                    hint: None,
                                });
                            }
                            tokio::time::sleep(Duration::from_millis(200)).await;
                        }
                    }
                    if pruned {
                        events.emit(Event::Pruned {
                            object: r.short(),
                            namespace: r.namespace.clone(),
                        });
                    } else {
                        events.emit(Event::Deleted {
                            object: r.short(),
                            namespace: r.namespace.clone(),
                            dry_run: false,
                        });
                    }
                    Ok(())
                })
                .collect();
            let results: Vec<Result<(), DeployError>> = futures_util::stream::iter(futures)
                .buffer_unordered(APPLY_CONCURRENCY)
                .collect()
                .await;
            for r in results {
                r?;
            }
        }
        Ok(())
    }

    /// `delete_all`: removes every member of this deployment's set, then its parent; returns what was (or, with
    /// `dry_run`, would be) deleted.
    pub(super) async fn remove_deployment(
        &self,
        opts: DeleteOptions,
        events: &EventSink,
    ) -> Result<Vec<ObjectRef>, DeployError> {
        let set = self.applyset_or(|| self.namespace.clone()).await;
        let Some(contents) = self.read_parent(&set).await? else {
            return Ok(Vec::new());
        };
        let mut targets = self.members(&set, &contents, true).await?;
        // The record goes last, once its members are gone: an interrupted delete can be run again.
        let parent = ObjectRef {
            api_version: "v1".into(),
            kind: "ConfigMap".into(),
            namespace: Some(set.namespace.clone()),
            name: set.name.clone(),
        };
        if opts.dry_run {
            for (r, _, _) in &targets {
                events.emit(Event::Deleted {
                    object: r.short(),
                    namespace: r.namespace.clone(),
                    dry_run: true,
                });
            }
        } else {
            self.delete_objects(&targets, opts.wait, false, events)
                .await?;
            let resource = config_map_resource();
            let caps = ApiCapabilities {
                scope: Scope::Namespaced,
                subresources: Vec::new(),
                operations: Vec::new(),
            };
            // devloop's own bookkeeping: not reported as one of the user's objects.
            let quiet = EventSink::new(|_| {});
            self.delete_objects(
                &[(parent.clone(), resource.clone(), caps.clone())],
                opts.wait,
                false,
                &quiet,
            )
            .await?;
            *self.recorded.lock().await = None;
            *self.session.lock().await = None;
            targets.push((parent, resource, caps));
        }
        Ok(targets.into_iter().map(|(r, _, _)| r).collect())
    }
}
