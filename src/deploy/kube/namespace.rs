//! Deploy, Kubernetes backend, namespaces: the namespaces planned objects and the set's parent need → created when
//! they do not exist and the plan does not declare them, labelled as devloop's but without the project label, so
//! devloop never prunes or deletes them (they may come to hold objects devloop did not create).

use std::collections::{BTreeMap, BTreeSet};

use kube::Resource;
use kube::api::{Api, PostParams};
use kube::discovery::ApiResource;

use super::KubeTarget;
use super::failure::api_error;
use super::ownership::MANAGED_BY;
use super::plan::PlannedObject;
use crate::deploy::DeployError;
use crate::deploy::applyset::ApplySet;
use crate::event::{Event, EventSink};

impl KubeTarget {
    /// Creates the namespaces `planned` objects and `set`'s parent need that do not exist and are not among
    /// `declared` (the plan's Namespace objects).
    pub(super) async fn ensure_namespaces(
        &self,
        planned: impl Iterator<Item = &PlannedObject>,
        declared: &[PlannedObject],
        set: &ApplySet,
        events: &EventSink,
    ) -> Result<Vec<String>, DeployError> {
        let declared: BTreeSet<&str> = declared.iter().map(|p| p.reference.name.as_str()).collect();
        let needed: BTreeSet<&str> = planned
            .filter_map(|p| p.reference.namespace.as_deref())
            .chain([set.namespace.as_str()])
            .filter(|n| !declared.contains(n))
            .collect();
        let api: Api<k8s_openapi::api::core::v1::Namespace> = Api::all(self.client.clone());
        let mut created = Vec::new();
        for ns in needed {
            let exists = api.get_opt(ns).await.map_err(|e| {
                api_error(
                    &e,
                    &format!("namespace/{ns}"),
                    Some((
                        "get",
                        &ApiResource::erase::<k8s_openapi::api::core::v1::Namespace>(&()),
                    )),
                )
            })?;
            if exists.is_some() {
                continue;
            }
            let mut obj = k8s_openapi::api::core::v1::Namespace::default();
            obj.meta_mut().name = Some(ns.to_string());
            // Labelled as devloop's but without the project label: it is never pruned or deleted by devloop,
            // because it may come to hold objects devloop did not create.
            obj.meta_mut().labels = Some(BTreeMap::from([(
                MANAGED_BY.0.to_string(),
                MANAGED_BY.1.to_string(),
            )]));
            match api.create(&PostParams::default(), &obj).await {
                Ok(_) => {}
                Err(kube::Error::Api(s)) if s.code == 409 => continue,
                Err(e) => {
                    return Err(api_error(
                        &e,
                        &format!("namespace/{ns}"),
                        Some((
                            "create",
                            &ApiResource::erase::<k8s_openapi::api::core::v1::Namespace>(&()),
                        )),
                    ));
                }
            }
            events.emit(Event::NamespaceCreated {
                namespace: ns.to_string(),
            });
            created.push(ns.to_string());
        }
        Ok(created)
    }
}
