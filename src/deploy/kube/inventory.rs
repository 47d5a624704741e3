//! Deploy, Kubernetes backend, inventory: a deployment's layout → what its set holds in the cluster, for
//! `devloop status`: every member by kind and name, each Deployment's replicas and images, and each blue/green
//! Service's release (live colour, since, commit, images, previous colour) with its copies under it. Reads only:
//! never writes to the cluster; of a member it keeps the fields shown, never a Secret's data.

use std::collections::BTreeMap;

use serde_json::Value;

use super::{KubePlan, KubeTarget};
use crate::deploy::applyset::ApplySet;
use crate::deploy::{DeployError, ObjectRef};
use crate::event::{DeploymentState, Member, ServiceRelease};
use crate::labels::{
    ANNOTATION_COMMIT, ANNOTATION_IMAGES, ANNOTATION_LIVE_COLOR, ANNOTATION_LIVE_SINCE,
    ANNOTATION_PREVIOUS_COLOR, ANNOTATION_REPLICAS, KUBE_COLOR,
};

/// What one deployment holds in the cluster.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Inventory {
    /// The record's (ApplySet parent's) name, `devloop-<project>`.
    pub applyset: String,
    /// The home namespace: where the record is.
    pub namespace: String,
    /// Every namespace the record lists.
    pub namespaces: Vec<String>,
    /// Every member devloop applied, by kind, namespace and name.
    pub members: Vec<Member>,
    /// The Deployments no blue/green Service claims as its copies.
    pub deployments: Vec<DeploymentState>,
    /// The Services with a live colour, each with its copies.
    pub blue_green: Vec<ServiceRelease>,
}

impl KubeTarget {
    /// What the deployment of `layout` (its home namespace as `deploy` finds it) holds; `None` when nothing of
    /// the project is deployed there. `now` (Unix seconds) dates the live colours.
    pub async fn inventory(
        &self,
        layout: &KubePlan,
        now: i64,
    ) -> Result<Option<Inventory>, DeployError> {
        let set = ApplySet::new(&self.project, &self.home_namespace(&layout.objects));
        let Some(contents) = self.read_parent(&set).await? else {
            return Ok(None);
        };
        let found = self.member_objects(&set, &contents).await?;
        let objects = found.into_iter().map(|((r, _, _), v)| (r, v)).collect();
        let mut inventory = read_members(objects, now);
        inventory.applyset = set.name;
        inventory.namespace = set.namespace;
        inventory.namespaces = contents.namespaces.into_iter().collect();
        Ok(Some(inventory))
    }
}

/// The members as listed → the inventory's members, Deployments and releases (record name and namespaces unset).
pub(super) fn read_members(objects: Vec<(ObjectRef, Value)>, now: i64) -> Inventory {
    let mut members = Vec::new();
    let mut deployments = Vec::new();
    let mut services = Vec::new();
    for (r, v) in objects {
        let is = |group: &str, kind: &str| r.group() == group && r.kind == kind;
        if is("apps", "Deployment") {
            deployments.push((deployment_state(&r, &v), template_labels(&v)));
        } else if is("", "Service") && annotation(&v, ANNOTATION_LIVE_COLOR).is_some() {
            services.push((r.clone(), v));
        }
        members.push(Member {
            kind: r.kind,
            api_version: r.api_version,
            namespace: r.namespace,
            name: r.name,
        });
    }
    members.sort_by(|a, b| (&a.kind, &a.namespace, &a.name).cmp(&(&b.kind, &b.namespace, &b.name)));
    let mut claimed = vec![false; deployments.len()];
    let mut blue_green = Vec::new();
    for (r, v) in services {
        let selector = service_selector(&v);
        let mut copies: Vec<DeploymentState> = Vec::new();
        for (i, (d, labels)) in deployments.iter().enumerate() {
            let reached = d.color.is_some()
                && Some(&d.namespace) == r.namespace.as_ref()
                && !selector.is_empty()
                && selector.iter().all(|(k, val)| labels.get(k) == Some(val));
            if reached {
                claimed[i] = true;
                copies.push(d.clone());
            }
        }
        blue_green.push(release(&r, &v, copies, now));
    }
    let deployments = deployments
        .into_iter()
        .zip(claimed)
        .filter(|(_, c)| !c)
        .map(|((d, _), _)| d)
        .collect();
    Inventory {
        applyset: String::new(),
        namespace: String::new(),
        namespaces: Vec::new(),
        members,
        deployments,
        blue_green,
    }
}

/// A blue/green Service's release, as its annotations record it, with `copies` ordered live colour first.
fn release(r: &ObjectRef, v: &Value, mut copies: Vec<DeploymentState>, now: i64) -> ServiceRelease {
    let live_color = annotation(v, ANNOTATION_LIVE_COLOR).unwrap_or_default();
    copies.sort_by_key(|c| {
        (
            c.color.as_deref() != Some(live_color.as_str()),
            c.name.clone(),
        )
    });
    let live_since = annotation(v, ANNOTATION_LIVE_SINCE);
    let live_for_seconds = live_since
        .as_deref()
        .and_then(crate::time::unix_from_rfc3339)
        .map(|at| u64::try_from(now - at).unwrap_or(0));
    ServiceRelease {
        service: r.name.clone(),
        namespace: r.namespace.clone().unwrap_or_default(),
        live_color,
        live_since,
        live_for_seconds,
        commit: annotation(v, ANNOTATION_COMMIT),
        images: list(annotation(v, ANNOTATION_IMAGES).as_deref()),
        previous_color: annotation(v, ANNOTATION_PREVIOUS_COLOR).filter(|c| !c.is_empty()),
        copies,
    }
}

fn deployment_state(r: &ObjectRef, v: &Value) -> DeploymentState {
    let desired = v
        .pointer("/spec/replicas")
        .and_then(Value::as_i64)
        .unwrap_or(1);
    let images = v
        .pointer("/spec/template/spec/containers")
        .and_then(Value::as_array)
        .map(|cs| {
            cs.iter()
                .filter_map(|c| c["image"].as_str().map(str::to_string))
                .collect()
        })
        .unwrap_or_default();
    DeploymentState {
        name: r.name.clone(),
        namespace: r.namespace.clone().unwrap_or_default(),
        ready: v
            .pointer("/status/readyReplicas")
            .and_then(Value::as_i64)
            .unwrap_or(0),
        desired,
        images,
        color: v
            .pointer("/metadata/labels")
            .and_then(|l| l.get(KUBE_COLOR))
            .and_then(Value::as_str)
            .map(str::to_string),
        commit: annotation(v, ANNOTATION_COMMIT),
        scaled_down_from: (desired == 0)
            .then(|| annotation(v, ANNOTATION_REPLICAS)?.parse().ok())
            .flatten(),
    }
}

/// The labels of a Deployment's pod template (what a Service's selector reaches).
fn template_labels(v: &Value) -> BTreeMap<String, String> {
    string_map(v.pointer("/spec/template/metadata/labels"))
}

/// A Service's selector without the colour key: the pods of every colour.
fn service_selector(v: &Value) -> BTreeMap<String, String> {
    let mut selector = string_map(v.pointer("/spec/selector"));
    selector.remove(KUBE_COLOR);
    selector
}

fn string_map(v: Option<&Value>) -> BTreeMap<String, String> {
    v.and_then(Value::as_object)
        .map(|m| {
            m.iter()
                .filter_map(|(k, v)| Some((k.clone(), v.as_str()?.to_string())))
                .collect()
        })
        .unwrap_or_default()
}

fn annotation(v: &Value, key: &str) -> Option<String> {
    v.pointer("/metadata/annotations")
        .and_then(|a| a.get(key))
        .and_then(Value::as_str)
        .map(str::to_string)
}

/// `a:1, b:2` → `["a:1", "b:2"]`.
fn list(s: Option<&str>) -> Vec<String> {
    s.unwrap_or_default()
        .split(',')
        .map(str::trim)
        .filter(|s| !s.is_empty())
        .map(str::to_string)
        .collect()
}
