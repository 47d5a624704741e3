//! Deploy, Kubernetes backend, order: planned objects → what is applied first (Namespaces, then CRDs,
//! StorageClasses and PersistentVolumes, which other objects need to exist) and the rest; and the wait until the
//! plan's CRDs are Established. Applies nothing itself.

use std::time::{Duration, Instant};

use serde_json::Value;

use super::KubeTarget;
use super::failure::api_error;
use super::plan::PlannedObject;
use crate::deploy::DeployError;

/// How long a CRD may take to become Established, or a recreated object to disappear.
pub(super) const SETTLE_TIMEOUT: Duration = Duration::from_secs(60);

/// A plan's objects in the order they are applied.
pub(super) struct Ordered {
    /// The plan's Namespace objects (the set's parent may live in one).
    pub(super) namespaces: Vec<PlannedObject>,
    /// What other objects need to exist: CRDs for their custom resources, StorageClasses and PersistentVolumes
    /// for the claims that bind to them.
    pub(super) first: Vec<PlannedObject>,
    pub(super) rest: Vec<PlannedObject>,
}

impl Ordered {
    /// Every object, in apply order.
    pub(super) fn all(&self) -> impl Iterator<Item = &PlannedObject> {
        self.namespaces
            .iter()
            .chain(self.first.iter())
            .chain(self.rest.iter())
    }

    /// The CRDs among the objects applied first.
    pub(super) fn crds(&self) -> Vec<&PlannedObject> {
        self.first
            .iter()
            .filter(|p| p.reference.kind == "CustomResourceDefinition")
            .collect()
    }
}

/// Namespaces first, then what other objects need to exist, then the rest (each in plan order).
pub(super) fn order(planned: Vec<PlannedObject>) -> Ordered {
    let (namespaces, rest): (Vec<PlannedObject>, Vec<PlannedObject>) = planned
        .into_iter()
        .partition(|p| p.reference.kind == "Namespace");
    let (first, rest): (Vec<PlannedObject>, Vec<PlannedObject>) = rest.into_iter().partition(|p| {
        matches!(
            (p.reference.group(), p.reference.kind.as_str()),
            ("apiextensions.k8s.io", "CustomResourceDefinition")
                | ("storage.k8s.io", "StorageClass")
                | ("", "PersistentVolume")
        )
    });
    Ordered {
        namespaces,
        first,
        rest,
    }
}

impl KubeTarget {
    /// Waits until the CRDs in `objects` are Established.
    pub(super) async fn wait_established(
        &self,
        crds: &[&PlannedObject],
    ) -> Result<(), DeployError> {
        let deadline = Instant::now() + SETTLE_TIMEOUT;
        for crd in crds {
            let api = self.api(&crd.ar, &crd.caps, None);
            loop {
                let obj = api.get(&crd.reference.name).await.map_err(|e| {
                    api_error(&e, &crd.reference.to_string(), Some(("get", &crd.ar)))
                })?;
                let established = serde_json::to_value(&obj)
                    .ok()
                    .and_then(|v| {
                        v.pointer("/status/conditions")
                            .and_then(Value::as_array)
                            .cloned()
                    })
                    .is_some_and(|c| {
                        c.iter()
                            .any(|c| c["type"] == "Established" && c["status"] == "True")
                    });
                if established {
                    break;
                }
                if Instant::now() > deadline {
                    return Err(DeployError::Apply {
                        object: crd.reference.to_string(),
                        message: "is not Established after 60 s".into(),
                        hint: Some("`kubectl describe crd` shows why".into()),
                    });
                }
                tokio::time::sleep(Duration::from_millis(200)).await;
            }
        }
        // Discovery answers cached before the CRDs existed are stale now.
        self.resources.lock().await.retain(|_, v| v.is_some());
        Ok(())
    }
}
