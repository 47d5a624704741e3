//! Deploy, Docker backend, references: a container's name and inspected state → the `ObjectRef` and
//! `AppliedObject` this backend reports (`container/<name>`, `apiVersion` `docker/v1`). Pure data: talks to no
//! daemon.

use bollard::models::ContainerInspectResponse;

use crate::deploy::{AppliedObject, Change, ObjectRef};

/// The `apiVersion` of the `ObjectRef`s this backend reports (`container/<name>`).
pub const API_VERSION: &str = "docker/v1";

pub(super) fn container_ref(name: &str) -> ObjectRef {
    ObjectRef {
        api_version: API_VERSION.into(),
        kind: "Container".into(),
        namespace: None,
        name: name.to_string(),
    }
}

pub(super) fn applied(
    name: &str,
    change: Change,
    current: &ContainerInspectResponse,
) -> AppliedObject {
    AppliedObject {
        reference: container_ref(name),
        change,
        generation: 0,
        object: serde_json::to_value(current).unwrap_or_default(),
    }
}
