//! Deploy, Kubernetes backend, members: this deployment's set and what its parent records → every member of the
//! set in the cluster that devloop applied (a label-selected list per group-kind and namespace), with the object
//! as listed when asked. Reads only; what devloop did not apply is never returned, so never pruned or deleted.

use futures_util::StreamExt;
use kube::api::{DynamicObject, ListParams};
use kube::discovery::{ApiResource, Scope};
use serde_json::Value;

use super::discovery::Found;
use super::failure::api_error;
use super::{APPLY_CONCURRENCY, KubeTarget};
use crate::deploy::applyset::{self, ApplySet, Contents};
use crate::deploy::{DeployError, ObjectRef};

impl KubeTarget {
    /// Every member of `set` in the cluster that devloop applied, over the group-kinds and namespaces `contents`
    /// names: a label-selected list per group-kind and namespace (cluster-wide for cluster-scoped kinds); blue/green
    /// copies only with `copies`.
    pub(super) async fn members(
        &self,
        set: &ApplySet,
        contents: &Contents,
        copies: bool,
    ) -> Result<Vec<Found>, DeployError> {
        let found = self.member_objects(set, contents).await?;
        Ok(found
            .into_iter()
            .filter(|(_, o)| copies || !super::ownership::is_copy(o))
            .map(|(f, _)| f)
            .collect())
    }

    /// [`KubeTarget::members`], each with the object as the list returned it.
    pub(super) async fn member_objects(
        &self,
        set: &ApplySet,
        contents: &Contents,
    ) -> Result<Vec<(Found, Value)>, DeployError> {
        let mut lists = Vec::new();
        for gk in &contents.group_kinds {
            let Some((ar, caps)) = self.group_kind_resource(gk).await? else {
                continue;
            };
            if caps.scope == Scope::Namespaced {
                for ns in &contents.namespaces {
                    lists.push((ar.clone(), caps.clone(), Some(ns.clone())));
                }
            } else {
                lists.push((ar, caps, None));
            }
        }
        let lp = ListParams::default().labels(&format!("{}={}", applyset::PART_OF, set.id));
        let found: Vec<Result<Vec<(Found, Value)>, DeployError>> =
            futures_util::stream::iter(lists)
                .map(|(ar, caps, ns)| {
                    let lp = lp.clone();
                    async move {
                        let api = self.api(&ar, &caps, ns.as_deref());
                        match api.list(&lp).await {
                            Ok(list) => Ok(list
                                .items
                                .iter()
                                .filter_map(|o| self.member(o, &ar, set))
                                .map(|(r, v)| ((r, ar.clone(), caps.clone()), v))
                                .collect()),
                            // A namespace that is gone, or a type the user may not list, holds nothing to prune.
                            Err(kube::Error::Api(s)) if s.code == 403 || s.code == 404 => {
                                Ok(Vec::new())
                            }
                            Err(e) => Err(api_error(
                                &e,
                                &format!("list {}", ar.plural),
                                Some(("list", &ar)),
                            )),
                        }
                    }
                })
                .buffer_unordered(APPLY_CONCURRENCY)
                .collect()
                .await;
        let mut out = Vec::new();
        for l in found {
            out.extend(l?);
        }
        out.sort_by(|a, b| a.0.0.cmp(&b.0.0));
        out.dedup_by(|a, b| a.0.0 == b.0.0);
        Ok(out)
    }

    /// `o` as a member of `set` found in the cluster, when devloop applied it.
    fn member(
        &self,
        o: &DynamicObject,
        ar: &ApiResource,
        set: &ApplySet,
    ) -> Option<(ObjectRef, Value)> {
        let v = serde_json::to_value(o).ok()?;
        if !Self::owns(&v, set) {
            return None;
        }
        let r = ObjectRef {
            api_version: ar.api_version.clone(),
            kind: ar.kind.clone(),
            namespace: o.metadata.namespace.clone(),
            name: o.metadata.name.clone()?,
        };
        Some((r, v))
    }
}
