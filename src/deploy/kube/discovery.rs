//! Deploy, Kubernetes backend, discovery: an object's `apiVersion` and `kind` (or a group-kind) → the API resource
//! that serves it and what it supports, cached per target; when not served, an error naming the versions that
//! are. Reads the API server's discovery; changes nothing in the cluster.

use kube::api::{Api, DynamicObject};
use kube::core::GroupVersionKind;
use kube::discovery::{self, ApiCapabilities, ApiResource, Scope};
use serde_json::Value;

use super::KubeTarget;
use super::failure::api_error;
use crate::deploy::applyset::GroupKind;
use crate::deploy::{DeployError, ObjectRef};

/// An API resource and what it supports.
pub(super) type Resolved = (ApiResource, ApiCapabilities);
/// An object found in the cluster, with the resource to reach it.
pub(super) type Found = (ObjectRef, ApiResource, ApiCapabilities);

impl KubeTarget {
    /// The API resource serving `group`'s `kind` (its preferred version); `None` when not served.
    pub(super) async fn group_kind_resource(
        &self,
        gk: &GroupKind,
    ) -> Result<Option<Resolved>, DeployError> {
        if let Some(hit) = self.kinds.lock().await.get(gk) {
            return Ok(hit.clone());
        }
        let found = match discovery::group(&self.client, &gk.0).await {
            Ok(group) => group.recommended_kind(&gk.1),
            Err(kube::Error::Api(s)) if s.code == 404 => None,
            Err(kube::Error::Discovery(_)) => None,
            Err(e) => return Err(api_error(&e, &format!("discovery of `{}`", gk.0), None)),
        };
        self.kinds.lock().await.insert(gk.clone(), found.clone());
        Ok(found)
    }

    /// The API resource serving `gvk`, `None` when the server does not serve it. Cached per target.
    pub(super) async fn resource(
        &self,
        gvk: &GroupVersionKind,
    ) -> Result<Option<Resolved>, DeployError> {
        let key = (gvk.group.clone(), gvk.version.clone(), gvk.kind.clone());
        if let Some(hit) = self.resources.lock().await.get(&key) {
            return Ok(hit.clone());
        }
        let found = match discovery::pinned_kind(&self.client, gvk).await {
            Ok(r) => Some(r),
            Err(kube::Error::Api(s)) if s.code == 404 => None,
            // Unknown API groups answer a plain-text 404 that kube reports as an unparsable Status.
            Err(kube::Error::Api(s))
                if s.reason == "Failed to parse error data" && s.code == 404 =>
            {
                None
            }
            Err(kube::Error::Discovery(_)) => None,
            Err(e) => {
                return Err(api_error(
                    &e,
                    &format!("discovery of {}", gvk_text(gvk)),
                    None,
                ));
            }
        };
        self.resources.lock().await.insert(key, found.clone());
        Ok(found)
    }

    /// Why `gvk` is not served: the versions of its group that serve the kind, if any.
    pub(super) async fn unserved(&self, gvk: &GroupVersionKind, origin: &str) -> DeployError {
        let what = gvk_text(gvk);
        let serving = if gvk.group.is_empty() {
            Vec::new()
        } else {
            match discovery::group(&self.client, &gvk.group).await {
                Ok(g) => g
                    .versions()
                    .filter(|v| {
                        g.versioned_resources(v)
                            .iter()
                            .any(|(ar, _)| ar.kind == gvk.kind)
                    })
                    .map(|v| format!("`{}/{v}`", gvk.group))
                    .collect(),
                Err(_) => Vec::new(),
            }
        };
        let message = format!("{origin}: the cluster does not serve {what}");
        let hint = if serving.is_empty() {
            format!(
                "no version of `{}` is served by this cluster; is the CRD or API installed?",
                if gvk.group.is_empty() {
                    "v1"
                } else {
                    &gvk.group
                }
            )
        } else {
            format!(
                "the cluster serves `{}` as {}: change the manifest's `apiVersion`",
                gvk.kind,
                serving.join(", ")
            )
        };
        DeployError::Unserved {
            message,
            hint: Some(hint),
        }
    }

    pub(super) fn api(
        &self,
        ar: &ApiResource,
        caps: &ApiCapabilities,
        namespace: Option<&str>,
    ) -> Api<DynamicObject> {
        match (caps.scope == Scope::Namespaced, namespace) {
            (true, Some(ns)) => Api::namespaced_with(self.client.clone(), ns, ar),
            _ => Api::all_with(self.client.clone(), ar),
        }
    }
}

pub(super) fn gvk_of(o: &Value) -> Result<GroupVersionKind, DeployError> {
    let api_version = o["apiVersion"].as_str().unwrap_or_default();
    let kind = o["kind"].as_str().unwrap_or_default();
    if api_version.is_empty() || kind.is_empty() {
        return Err(DeployError::Apply {
            object: describe(o),
            message: "has no `apiVersion` or `kind`".into(),
            hint: None,
        });
    }
    let (group, version) = api_version.rsplit_once('/').unwrap_or(("", api_version));
    Ok(GroupVersionKind::gvk(group, version, kind))
}

fn gvk_text(gvk: &GroupVersionKind) -> String {
    if gvk.group.is_empty() {
        format!("`{}/{}`", gvk.version, gvk.kind)
    } else {
        format!("`{}/{} {}`", gvk.group, gvk.version, gvk.kind)
    }
}

pub(super) fn describe(o: &Value) -> String {
    let kind = o["kind"].as_str().unwrap_or("object").to_lowercase();
    let name = o
        .pointer("/metadata/name")
        .and_then(Value::as_str)
        .unwrap_or("<unnamed>");
    format!("{kind}/{name}")
}
