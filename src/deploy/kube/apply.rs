//! Deploy, Kubernetes backend, server-side apply: planned objects → applied objects (field manager `devloop`,
//! `--force-conflicts` when asked), concurrently, telling created from configured from unchanged; an object whose
//! rendered form this process applied already is not sent again. A change to a field that cannot change in place
//! deletes and re-creates the object, only when devloop owns it.

use std::time::{Duration, Instant};

use futures_util::StreamExt;
use kube::api::{Api, DeleteParams, DynamicObject, Patch, PatchParams};
use kube::core::Status;
use serde_json::Value;
use tokio_util::sync::CancellationToken;

use super::failure::{ApplyFailure, api_error, first_line, is_immutable, status_error};
use super::order::SETTLE_TIMEOUT;
use super::ownership::FIELD_MANAGER;
use super::plan::PlannedObject;
use super::session::{Remembered, form_digest, object_key};
use super::{APPLY_CONCURRENCY, KubeTarget};
use crate::deploy::{AppliedObject, Change, DeployError};
use crate::event::{Event, EventSink};
use crate::time::{unix_from_http_date as parse_http_date, unix_from_rfc3339 as parse_rfc3339};

impl KubeTarget {
    /// Applies one object with server-side apply, reading the HTTP status to tell created from configured.
    async fn apply_one(&self, item: &PlannedObject) -> Result<AppliedObject, DeployError> {
        let api = self.api(&item.ar, &item.caps, item.reference.namespace.as_deref());
        let mut pp = PatchParams::apply(FIELD_MANAGER);
        pp.force = self.force_conflicts || item.force;
        match self.patch(&api, item, &pp).await {
            Ok(applied) => Ok(applied),
            Err(ApplyFailure::Status(status)) if is_immutable(&status) => {
                self.recreate(&api, item, &pp, &status).await
            }
            Err(ApplyFailure::Status(status)) => {
                Err(status_error(&status, &item.reference, "patch", &item.ar))
            }
            Err(ApplyFailure::Other(e)) => Err(e),
        }
    }

    async fn patch(
        &self,
        api: &Api<DynamicObject>,
        item: &PlannedObject,
        pp: &PatchParams,
    ) -> Result<AppliedObject, ApplyFailure> {
        let req = kube::core::Request::new(api.resource_url())
            .patch(&item.reference.name, pp, &Patch::Apply(&item.object))
            .map_err(|e| {
                ApplyFailure::Other(DeployError::Apply {
                    object: item.reference.to_string(),
                    message: e.to_string(),
                    hint: None,
                })
            })?;
        let res = self
            .client
            .send(req.map(kube::client::Body::from))
            .await
            .map_err(|e| ApplyFailure::Other(api_error(&e, &item.reference.to_string(), None)))?;
        let code = res.status().as_u16();
        let date = res
            .headers()
            .get(http::header::DATE)
            .and_then(|d| d.to_str().ok())
            .and_then(parse_http_date);
        let body =
            res.into_body().collect_bytes().await.map_err(|e| {
                ApplyFailure::Other(api_error(&e, &item.reference.to_string(), None))
            })?;
        if !(200..300).contains(&code) {
            let status = serde_json::from_slice::<Status>(&body).unwrap_or_else(|_| Status {
                code,
                message: String::from_utf8_lossy(&body).trim().to_string(),
                ..Default::default()
            });
            return Err(ApplyFailure::Status(Box::new(status)));
        }
        let object: Value = serde_json::from_slice(&body).map_err(|e| {
            ApplyFailure::Other(DeployError::Apply {
                object: item.reference.to_string(),
                message: format!("unreadable answer: {e}"),
                hint: None,
            })
        })?;
        let change = if code == 201 {
            Change::Created
        } else if let (Some(now), Some(applied_at)) = (date, apply_time(&object)) {
            // A no-op apply writes nothing: devloop's managedFields time stays that of the last real change.
            if now - applied_at >= 2 {
                Change::Unchanged
            } else {
                Change::Configured
            }
        } else {
            Change::Configured
        };
        let generation = object
            .pointer("/metadata/generation")
            .and_then(Value::as_i64)
            .unwrap_or(0);
        Ok(AppliedObject {
            reference: item.reference.clone(),
            change,
            generation,
            object,
        })
    }

    /// An apply failed on a field that cannot change: delete and re-create the object — only if devloop owns it.
    async fn recreate(
        &self,
        api: &Api<DynamicObject>,
        item: &PlannedObject,
        pp: &PatchParams,
        status: &Status,
    ) -> Result<AppliedObject, DeployError> {
        let name = &item.reference.name;
        let existing = api
            .get_opt(name)
            .await
            .map_err(|e| api_error(&e, &item.reference.to_string(), Some(("get", &item.ar))))?;
        let set = self.applyset.lock().await.clone();
        let owned = existing.as_ref().is_some_and(|o| {
            let v = serde_json::to_value(o).unwrap_or_default();
            set.as_ref().is_some_and(|set| Self::owns(&v, set)) || self.owned_before_applysets(&v)
        });
        if !owned {
            return Err(DeployError::Apply {
                object: item.reference.to_string(),
                message: format!("{} (a field that cannot be changed in place)", first_line(&status.message)),
                hint: Some("devloop only re-creates objects it deployed; delete this one yourself if it may go".into()),
            });
        }
        let dp = DeleteParams {
            propagation_policy: Some(kube::api::PropagationPolicy::Background),
            ..Default::default()
        };
        api.delete(name, &dp)
            .await
            .map_err(|e| api_error(&e, &item.reference.to_string(), Some(("delete", &item.ar))))?;
        let deadline = Instant::now() + SETTLE_TIMEOUT;
        loop {
            match api.get_opt(name).await {
                Ok(None) => break,
                Ok(Some(_)) if Instant::now() < deadline => {
                    tokio::time::sleep(Duration::from_millis(100)).await
                }
                Ok(Some(_)) => {
                    return Err(DeployError::Apply {
                        object: item.reference.to_string(),
                        message: "was deleted to be re-created but is still there after 60 s".into(),
                        hint: Some("a finalizer may be holding it: `kubectl get -o yaml` shows `metadata.finalizers`".into()),
                    });
                }
                Err(e) => {
                    return Err(api_error(
                        &e,
                        &item.reference.to_string(),
                        Some(("get", &item.ar)),
                    ));
                }
            }
        }
        let mut applied = match self.patch(api, item, pp).await {
            Ok(a) => a,
            Err(ApplyFailure::Status(s)) => {
                return Err(status_error(&s, &item.reference, "patch", &item.ar));
            }
            Err(ApplyFailure::Other(e)) => return Err(e),
        };
        applied.change = Change::Recreated;
        Ok(applied)
    }

    pub(super) async fn apply_all(
        &self,
        items: &[PlannedObject],
        events: &EventSink,
        cancel: &CancellationToken,
    ) -> Result<Vec<AppliedObject>, DeployError> {
        // Futures are built first: a stream closure over borrowed items trips the `Send` check of callers.
        let futures: Vec<_> = items
            .iter()
            .map(|item| async move {
                let digest = form_digest(&item.object);
                let remembered = self
                    .session
                    .lock()
                    .await
                    .as_ref()
                    .and_then(|m| m.get(&object_key(&item.reference)).cloned());
                if let Some(m) = remembered.filter(|m| m.digest == digest) {
                    // Applied by this process in exactly this form: nothing to send.
                    return Ok(AppliedObject {
                        change: Change::Unchanged,
                        ..m.applied
                    });
                }
                let r = self.apply_one(item).await;
                if let Ok(a) = &r
                    && let Some(m) = self.session.lock().await.as_mut()
                {
                    m.insert(
                        object_key(&a.reference),
                        Remembered {
                            digest,
                            applied: a.clone(),
                            ar: item.ar.clone(),
                            caps: item.caps.clone(),
                        },
                    );
                }
                if let Ok(a) = &r {
                    events.emit(Event::Applied {
                        object: a.reference.short(),
                        namespace: a.reference.namespace.clone(),
                        change: change_text(a.change).to_string(),
                    });
                }
                r
            })
            .collect();
        let results: Vec<Result<AppliedObject, DeployError>> = futures_util::stream::iter(futures)
            .buffer_unordered(APPLY_CONCURRENCY)
            .take_until(cancel.cancelled())
            .collect()
            .await;
        if cancel.is_cancelled() {
            return Err(DeployError::Cancelled);
        }
        crate::deploy::all_or_errors(results, "objects could not be applied")
    }
}

fn change_text(c: Change) -> &'static str {
    match c {
        Change::Created => "created",
        Change::Configured => "configured",
        Change::Unchanged => "unchanged",
        Change::Recreated => "recreated (immutable field changed)",
    }
}

/// The time devloop last changed the object (its `managedFields` Apply entry), as Unix seconds.
fn apply_time(o: &Value) -> Option<i64> {
    let entries = o.pointer("/metadata/managedFields")?.as_array()?;
    let entry = entries
        .iter()
        .find(|e| e["manager"] == FIELD_MANAGER && e["operation"] == "Apply")?;
    parse_rfc3339(entry["time"].as_str()?)
}
