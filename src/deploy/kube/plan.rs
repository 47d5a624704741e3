//! Deploy, Kubernetes backend, the plan: rendered objects → each object as devloop applies it (its API resource,
//! its namespace, the set's part-of label), failing on every kind the cluster does not serve before anything is
//! applied; custom resources whose CRD the same plan creates wait until it exists. Changes nothing in the cluster.

use std::collections::BTreeSet;

use kube::core::GroupVersionKind;
use kube::discovery::{ApiCapabilities, ApiResource, Scope};
use serde_json::Value;

use super::discovery::{describe, gvk_of};
use super::{KubePlan, KubeTarget};
use crate::deploy::applyset::{self, ApplySet};
use crate::deploy::{DeployError, ObjectRef};

/// One object ready to apply.
pub(super) struct PlannedObject {
    pub(super) reference: ObjectRef,
    pub(super) object: Value,
    pub(super) ar: ApiResource,
    pub(super) caps: ApiCapabilities,
    /// Apply with `force` whatever `--force-conflicts` says (a blue/green copy).
    pub(super) force: bool,
}

/// Custom resources whose CRD the plan creates, resolved once it exists: their kind and object.
pub(super) type Deferred = Vec<(GroupVersionKind, Value)>;

impl KubeTarget {
    /// Resolves every object's API resource; fails listing every kind the cluster does not serve, before
    /// anything is applied. Kinds defined by CRDs in the same plan are resolved after those CRDs exist.
    pub(super) async fn plan_objects(
        &self,
        plan: &KubePlan,
        set: &ApplySet,
    ) -> Result<(Vec<PlannedObject>, Deferred), DeployError> {
        let crd_kinds: BTreeSet<(String, String)> = plan
            .objects
            .iter()
            .filter(|o| o["kind"] == "CustomResourceDefinition")
            .filter_map(|o| {
                Some((
                    o.pointer("/spec/group")?.as_str()?.to_string(),
                    o.pointer("/spec/names/kind")?.as_str()?.to_string(),
                ))
            })
            .collect();
        let mut planned = Vec::new();
        let mut deferred = Vec::new();
        let mut unserved = Vec::new();
        for o in &plan.objects {
            let gvk = gvk_of(o)?;
            match self.resource(&gvk).await? {
                Some((ar, caps)) => {
                    let mut p = self.planned(o, ar, caps, set)?;
                    p.force = plan.force.contains(&p.reference);
                    planned.push(p)
                }
                None if crd_kinds.contains(&(gvk.group.clone(), gvk.kind.clone())) => {
                    deferred.push((gvk, o.clone()))
                }
                None => unserved.push(self.unserved(&gvk, &describe(o)).await),
            }
        }
        match unserved.len() {
            0 => Ok((planned, deferred)),
            1 => Err(unserved.remove(0)),
            _ => Err(DeployError::Unserved {
                message: unserved
                    .iter()
                    .map(|e| e.to_string())
                    .collect::<Vec<_>>()
                    .join("\n"),
                hint: None,
            }),
        }
    }

    /// The object as devloop applies it: in its namespace (the default one when it names none), labelled as a
    /// member of `set`.
    pub(super) fn planned(
        &self,
        o: &Value,
        ar: ApiResource,
        caps: ApiCapabilities,
        set: &ApplySet,
    ) -> Result<PlannedObject, DeployError> {
        let name = o
            .pointer("/metadata/name")
            .and_then(Value::as_str)
            .filter(|n| !n.is_empty())
            .ok_or_else(|| DeployError::Apply {
                object: describe(o),
                message: "has no `metadata.name`".into(),
                hint: Some(
                    "`generateName` is not supported by apply: give the object a name".into(),
                ),
            })?;
        let mut object = o.clone();
        if let Some(metadata) = object.get_mut("metadata").and_then(Value::as_object_mut) {
            let labels = metadata
                .entry("labels")
                .or_insert_with(|| Value::Object(Default::default()));
            if let Some(labels) = labels.as_object_mut() {
                labels.insert(applyset::PART_OF.to_string(), Value::String(set.id.clone()));
            }
        }
        let namespace = if caps.scope == Scope::Namespaced {
            let ns = o
                .pointer("/metadata/namespace")
                .and_then(Value::as_str)
                .map(str::to_string)
                .unwrap_or_else(|| self.namespace.clone());
            object["metadata"]["namespace"] = Value::String(ns.clone());
            Some(ns)
        } else {
            if let Some(m) = object.get_mut("metadata").and_then(Value::as_object_mut) {
                m.remove("namespace");
            }
            None
        };
        let reference = ObjectRef {
            api_version: o["apiVersion"].as_str().unwrap_or_default().to_string(),
            kind: o["kind"].as_str().unwrap_or_default().to_string(),
            namespace,
            name: name.to_string(),
        };
        Ok(PlannedObject {
            reference,
            object,
            ar,
            caps,
            force: false,
        })
    }
}
