//! Deploy, Kubernetes backend, the ApplySet parent: this deployment's set → the ConfigMap that records it (what
//! group-kinds and namespaces its members are in), read and written with server-side apply. A ConfigMap of that
//! name that is not this set's parent is an error, never overwritten.

use std::collections::BTreeMap;

use kube::api::{Api, Patch, PatchParams};
use kube::discovery::ApiResource;

use super::KubeTarget;
use super::failure::api_error;
use super::ownership::{FIELD_MANAGER, MANAGED_BY, PROJECT_LABEL};
use crate::deploy::applyset::{ApplySet, Contents};
use crate::deploy::{DeployError, ObjectRef};

impl KubeTarget {
    /// The ApplySet of this deployment; `home` is used when none is known yet.
    pub(super) async fn applyset_or(&self, home: impl FnOnce() -> String) -> ApplySet {
        let mut set = self.applyset.lock().await;
        set.get_or_insert_with(|| ApplySet::new(&self.project, &home()))
            .clone()
    }

    fn parent_api(&self, set: &ApplySet) -> Api<k8s_openapi::api::core::v1::ConfigMap> {
        Api::namespaced(self.client.clone(), &set.namespace)
    }

    /// What the set's parent records; `None` when there is no parent (nothing deployed). Fails when the
    /// ConfigMap is not this set's parent.
    pub(super) async fn read_parent(
        &self,
        set: &ApplySet,
    ) -> Result<Option<Contents>, DeployError> {
        let what = format!("configmap/{} (namespace `{}`)", set.name, set.namespace);
        let parent = self
            .parent_api(set)
            .get_opt(&set.name)
            .await
            .map_err(|e| api_error(&e, &what, Some(("get", &config_map_resource()))))?;
        let Some(parent) = parent else {
            return Ok(None);
        };
        let value = serde_json::to_value(&parent).unwrap_or_default();
        set.read_parent(&value)
            .map(Some)
            .map_err(|message| DeployError::Apply {
                object: what,
                message,
                hint: Some(format!(
                    "devloop records each deployment in this ConfigMap; rename the project (`metadata.name` in \
                     devloop.yaml) or deploy to another namespace, or delete configmap/{} if it is a leftover",
                    set.name
                )),
            })
    }

    /// Applies the set's parent recording `contents` (skipped when that is what devloop last wrote).
    pub(super) async fn write_parent(
        &self,
        set: &ApplySet,
        contents: &Contents,
    ) -> Result<(), DeployError> {
        if self.recorded.lock().await.as_ref() == Some(contents) {
            return Ok(());
        }
        let labels = BTreeMap::from([
            (MANAGED_BY.0.to_string(), MANAGED_BY.1.to_string()),
            (PROJECT_LABEL.to_string(), self.project.clone()),
        ]);
        let parent = set.parent(&labels, contents);
        let mut pp = PatchParams::apply(FIELD_MANAGER);
        pp.force = true;
        let what = format!("configmap/{} (namespace `{}`)", set.name, set.namespace);
        self.parent_api(set)
            .patch(&set.name, &pp, &Patch::Apply(&parent))
            .await
            .map_err(|e| api_error(&e, &what, Some(("patch", &config_map_resource()))))?;
        *self.recorded.lock().await = Some(contents.clone());
        Ok(())
    }
}

pub(super) fn config_map_resource() -> ApiResource {
    ApiResource::erase::<k8s_openapi::api::core::v1::ConfigMap>(&())
}

/// What `objects` need recorded on their set's parent: their group-kinds and namespaces.
pub(super) fn contents_of<'a>(
    objects: impl Iterator<Item = &'a ObjectRef>,
    home: &str,
) -> Contents {
    let mut contents = Contents::default();
    contents.namespaces.insert(home.to_string());
    for r in objects {
        contents
            .group_kinds
            .insert((r.group().to_string(), r.kind.clone()));
        if let Some(ns) = &r.namespace {
            contents.namespaces.insert(ns.clone());
        }
    }
    contents
}
