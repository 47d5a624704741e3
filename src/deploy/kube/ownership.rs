//! Deploy, Kubernetes backend, ownership: an object as the cluster has it → whether devloop applied it as a member
//! of this deployment's set (devloop's label, the set's part-of label, a `devloop` Apply entry in `managedFields`,
//! no owner), or before ApplySets as this project's. Pure: talks to no cluster; what fails these checks is never
//! deleted or re-created.

use serde_json::Value;

use super::KubeTarget;
use crate::deploy::applyset::{self, ApplySet};

pub use crate::labels::{
    FIELD_MANAGER, KUBE_MANAGED_BY as MANAGED_BY, KUBE_PROJECT as PROJECT_LABEL,
};

impl KubeTarget {
    /// Whether devloop applied this object as a member of `set`: devloop's label, `set`'s part-of label, a
    /// `devloop` Apply manager, and no owner (controllers copy labels onto what they create; those objects are
    /// not devloop's).
    pub(super) fn owns(object: &Value, set: &ApplySet) -> bool {
        let labelled = label_of(object, MANAGED_BY.0) == Some(MANAGED_BY.1)
            && label_of(object, applyset::PART_OF) == Some(set.id.as_str());
        labelled && applied_by_devloop(object)
    }

    /// Objects devloop applied before it recorded deployments as ApplySets carry the project label and no
    /// part-of label. Only used where devloop applies the same object again (the same name, in the namespace it
    /// is deploying to), never to find objects to delete.
    pub(super) fn owned_before_applysets(&self, object: &Value) -> bool {
        label_of(object, MANAGED_BY.0) == Some(MANAGED_BY.1)
            && label_of(object, PROJECT_LABEL) == Some(self.project.as_str())
            && label_of(object, applyset::PART_OF).is_none()
            && applied_by_devloop(object)
    }
}

fn label_of<'a>(object: &'a Value, key: &str) -> Option<&'a str> {
    object
        .pointer("/metadata/labels")
        .and_then(|l| l.get(key))
        .and_then(Value::as_str)
}

/// A `devloop` Apply entry in `managedFields`, and no owner.
fn applied_by_devloop(object: &Value) -> bool {
    let applied = object
        .pointer("/metadata/managedFields")
        .and_then(Value::as_array)
        .is_some_and(|m| {
            m.iter()
                .any(|e| e["manager"] == FIELD_MANAGER && e["operation"] == "Apply")
        });
    let owned_by_other = object
        .pointer("/metadata/ownerReferences")
        .and_then(Value::as_array)
        .is_some_and(|o| !o.is_empty());
    applied && !owned_by_other
}

/// Whether `object` is a blue/green copy (only a release prunes those).
pub(super) fn is_copy(object: &Value) -> bool {
    object
        .pointer("/metadata/labels")
        .and_then(|l| l.get(crate::labels::KUBE_COLOR))
        .is_some()
}

/// Whether `service`'s selector carries a blue/green colour (a release switched it).
pub(super) fn is_switched(service: &Value) -> bool {
    service
        .pointer("/spec/selector")
        .and_then(|s| s.get(crate::labels::KUBE_COLOR))
        .is_some()
}
