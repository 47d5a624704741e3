//! Deploy, Kubernetes backend, blue/green releases: what a release reads and writes beside a deploy — a configured
//! Service's live colour and release annotations, a copy's state, objects applied as members of this deployment
//! without a prune (the switch), a copy scaled down or back up by the switch's own field manager, and copies (or the
//! plain Deployments they replace) deleted when devloop applied them.

use kube::api::{Api, DynamicObject, Patch, PatchParams};
use kube::core::GroupVersionKind;
use serde_json::{Value, json};
use tokio_util::sync::CancellationToken;

use super::discovery::{Found, describe};
use super::failure::api_error;
use super::{KubePlan, KubeTarget};
use crate::deploy::applyset::ApplySet;
use crate::deploy::blue_green::{Color, LiveService};
use crate::deploy::{AppliedObject, Change, DeployError, ObjectRef};
use crate::event::EventSink;
use crate::labels::{
    ANNOTATION_COMMIT, ANNOTATION_IMAGES, ANNOTATION_LIVE_COLOR, ANNOTATION_LIVE_SINCE,
    ANNOTATION_PREVIOUS_COLOR, ANNOTATION_REPLICAS, BLUE_GREEN_MANAGER, KUBE_COLOR,
};

/// A blue/green copy as the cluster has it.
#[derive(Debug, Clone, PartialEq)]
pub struct CopyState {
    /// `spec.replicas`.
    pub replicas: i64,
    /// The replicas it had before a scale-down (`devloop.dev/replicas`).
    pub recorded_replicas: Option<i64>,
    /// `devloop.dev/commit`, `devloop.dev/images`.
    pub commit: Option<String>,
    pub images: Option<String>,
    /// Whether devloop applied it as a member of this deployment.
    pub ours: bool,
}

impl KubeTarget {
    /// The Service `name` in `namespace` as the cluster has it: whether it exists, the colour its selector sends
    /// traffic to, devloop's release annotations.
    pub async fn live_service(
        &self,
        namespace: &str,
        name: &str,
    ) -> Result<LiveService, DeployError> {
        let api: Api<DynamicObject> = Api::namespaced_with(
            self.client.clone(),
            namespace,
            &kube::discovery::ApiResource::erase::<k8s_openapi::api::core::v1::Service>(&()),
        );
        let found = api.get_opt(name).await.map_err(|e| {
            api_error(
                &e,
                &format!("service/{name} (namespace `{namespace}`)"),
                None,
            )
        })?;
        let Some(found) = found else {
            return Ok(LiveService::default());
        };
        let v = serde_json::to_value(&found).unwrap_or_default();
        let color = v
            .pointer("/spec/selector")
            .and_then(|s| s.get(KUBE_COLOR))
            .and_then(Value::as_str)
            .and_then(Color::parse);
        let annotations = v
            .pointer("/metadata/annotations")
            .and_then(Value::as_object)
            .map(|m| {
                m.iter()
                    .filter(|(k, _)| {
                        [
                            ANNOTATION_LIVE_COLOR,
                            ANNOTATION_LIVE_SINCE,
                            ANNOTATION_PREVIOUS_COLOR,
                            ANNOTATION_COMMIT,
                            ANNOTATION_IMAGES,
                        ]
                        .contains(&k.as_str())
                    })
                    .filter_map(|(k, v)| Some((k.clone(), v.as_str()?.to_string())))
                    .collect()
            })
            .unwrap_or_default();
        Ok(LiveService { color, annotations })
    }

    /// `plan` with every Service a blue/green release switched kept on the colour the cluster has it on (a
    /// deploy that is not a release never moves their traffic). Asks the cluster about a Service the first time
    /// this process deploys it, and then only about those it found switched.
    pub(super) async fn hold_released(&self, plan: &KubePlan) -> KubePlan {
        let services: Vec<(String, String)> = plan
            .objects
            .iter()
            .filter(|o| o["kind"] == "Service" && o["apiVersion"] == "v1")
            .filter_map(|o| {
                Some((
                    o.pointer("/metadata/namespace")?.as_str()?.to_string(),
                    o.pointer("/metadata/name")?.as_str()?.to_string(),
                ))
            })
            .collect();
        let ask: Vec<(String, String)> = {
            let session = self.session.lock().await;
            services
                .into_iter()
                .filter(|(ns, name)| {
                    let key = super::session::object_key(&ObjectRef {
                        api_version: "v1".to_string(),
                        kind: "Service".to_string(),
                        namespace: Some(ns.clone()),
                        name: name.clone(),
                    });
                    session
                        .as_ref()
                        .and_then(|m| m.get(&key))
                        .is_none_or(|r| super::ownership::is_switched(&r.applied.object))
                })
                .collect()
        };
        let answers = futures_util::future::join_all(
            ask.iter().map(|(ns, name)| self.live_service(ns, name)),
        )
        .await;
        let mut held = plan.clone();
        // A Service this account cannot read was not switched by this project's releases (they read it): it is
        // applied as rendered, as before blue/green existed.
        for ((namespace, name), live) in ask.iter().zip(answers) {
            if let Ok(live) = live {
                crate::deploy::blue_green::hold(&mut held.objects, namespace, name, &live);
            }
        }
        held
    }

    /// The Deployment `name` in `namespace`, when it exists.
    pub async fn copy_state(
        &self,
        plan: &KubePlan,
        namespace: &str,
        name: &str,
    ) -> Result<Option<CopyState>, DeployError> {
        let Some(v) = self.deployment(namespace, name).await? else {
            return Ok(None);
        };
        let set = self.set_of(plan).await;
        let annotation = |k: &str| {
            v.pointer("/metadata/annotations")
                .and_then(|a| a.get(k))
                .and_then(Value::as_str)
                .map(str::to_string)
        };
        Ok(Some(CopyState {
            replicas: v
                .pointer("/spec/replicas")
                .and_then(Value::as_i64)
                .unwrap_or(1),
            recorded_replicas: annotation(ANNOTATION_REPLICAS).and_then(|r| r.parse().ok()),
            commit: annotation(ANNOTATION_COMMIT),
            images: annotation(ANNOTATION_IMAGES),
            ours: Self::owns(&v, &set),
        }))
    }

    /// Applies `objects` (field manager `devloop`) as members of `plan`'s deployment, without a prune: the switch
    /// of a release, a rollback.
    pub async fn apply_members(
        &self,
        plan: &KubePlan,
        objects: &[Value],
        events: &EventSink,
        cancel: &CancellationToken,
    ) -> Result<Vec<AppliedObject>, DeployError> {
        let set = self.set_of(plan).await;
        let mut planned = Vec::new();
        for o in objects {
            let gvk = super::discovery::gvk_of(o)?;
            match self.resource(&gvk).await? {
                Some((ar, caps)) => planned.push(self.planned(o, ar, caps, &set)?),
                None => return Err(self.unserved(&gvk, &describe(o)).await),
            }
        }
        self.apply_all(&planned, events, cancel).await
    }

    /// Scales the copy `name` to `replicas` with the switch's field manager (taking `spec.replicas` from a deploy's
    /// apply); `record` is written to `devloop.dev/replicas` (the replicas a rollback restores), or removed.
    pub async fn scale_copy(
        &self,
        namespace: &str,
        name: &str,
        replicas: i64,
        record: Option<i64>,
    ) -> Result<AppliedObject, DeployError> {
        let mut body = json!({
            "apiVersion": "apps/v1",
            "kind": "Deployment",
            "metadata": {"name": name, "namespace": namespace},
            "spec": {"replicas": replicas},
        });
        if let Some(r) = record {
            body["metadata"]["annotations"] = json!({ ANNOTATION_REPLICAS: r.to_string() });
        }
        let api = self.deployments(namespace);
        let mut pp = PatchParams::apply(BLUE_GREEN_MANAGER);
        pp.force = true;
        let reference = crate::deploy::blue_green::deployment_ref(namespace, name);
        let applied = api
            .patch(name, &pp, &Patch::Apply(&body))
            .await
            .map_err(|e| api_error(&e, &reference.to_string(), None))?;
        let object = serde_json::to_value(&applied).unwrap_or_default();
        Ok(AppliedObject {
            reference,
            change: Change::Configured,
            generation: object
                .pointer("/metadata/generation")
                .and_then(Value::as_i64)
                .unwrap_or(0),
            object,
        })
    }

    /// Deletes the Deployments `names` in `namespace` that devloop applied as members of `plan`'s deployment (a
    /// failed release's copies, the plain Deployments a release replaced); what is not there or not devloop's is
    /// left alone. Returns what was deleted.
    pub async fn delete_deployments(
        &self,
        plan: &KubePlan,
        namespace: &str,
        names: &[String],
        events: &EventSink,
    ) -> Result<Vec<ObjectRef>, DeployError> {
        let set = self.set_of(plan).await;
        let gvk = GroupVersionKind::gvk("apps", "v1", "Deployment");
        let Some((ar, caps)) = self.resource(&gvk).await? else {
            return Ok(Vec::new());
        };
        let mut targets: Vec<Found> = Vec::new();
        for name in names {
            if let Some(v) = self.deployment(namespace, name).await?
                && Self::owns(&v, &set)
            {
                targets.push((
                    crate::deploy::blue_green::deployment_ref(namespace, name),
                    ar.clone(),
                    caps.clone(),
                ));
            }
        }
        self.delete_objects(&targets, false, true, events).await?;
        Ok(targets.into_iter().map(|(r, _, _)| r).collect())
    }

    async fn deployment(&self, namespace: &str, name: &str) -> Result<Option<Value>, DeployError> {
        let found = self
            .deployments(namespace)
            .get_opt(name)
            .await
            .map_err(|e| {
                api_error(
                    &e,
                    &format!("deployment/{name} (namespace `{namespace}`)"),
                    None,
                )
            })?;
        Ok(found.map(|d| serde_json::to_value(&d).unwrap_or_default()))
    }

    fn deployments(&self, namespace: &str) -> Api<DynamicObject> {
        Api::namespaced_with(
            self.client.clone(),
            namespace,
            &kube::discovery::ApiResource::erase::<k8s_openapi::api::apps::v1::Deployment>(&()),
        )
    }

    /// The labels of a member of `plan`'s deployment (devloop's, the project's, the set's part-of label), for
    /// objects a release creates outside the plan (a verify Job), so `devloop delete` finds them.
    pub async fn member_labels(
        &self,
        plan: &KubePlan,
    ) -> std::collections::BTreeMap<String, String> {
        let set = self.set_of(plan).await;
        let mut labels = crate::labels::kube_labels(&self.project);
        labels.insert(crate::deploy::applyset::PART_OF.to_string(), set.id);
        labels
    }

    /// `plan`'s deployment (set), made this target's when it has none yet.
    async fn set_of(&self, plan: &KubePlan) -> ApplySet {
        let home = self.home_namespace(&plan.objects);
        self.applyset_or(|| home).await
    }
}
