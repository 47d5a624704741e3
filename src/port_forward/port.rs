//! Port-forward: a remote port (a number, or a Service or container port's name) → the number on the pod, read from
//! the Service or pod spec the caller fetched. Pure: it must not talk to the cluster.

use k8s_openapi::api::core::v1::{Pod, Service};

use super::error::PortForwardError;
use super::spec::PortRef;

pub(super) fn to_port(n: i32, target: &str, object: &str) -> Result<u16, PortForwardError> {
    u16::try_from(n)
        .ok()
        .filter(|p| *p > 0)
        .ok_or_else(|| PortForwardError::InvalidPort {
            target: target.to_string(),
            object: object.to_string(),
            port: n,
        })
}

pub(super) fn named_container_port(
    pod_spec: Option<&k8s_openapi::api::core::v1::PodSpec>,
    name: &str,
    target: &str,
    object: &str,
) -> Result<u16, PortForwardError> {
    let port = pod_spec
        .into_iter()
        .flat_map(|s| s.containers.iter())
        .flat_map(|c| c.ports.iter().flatten())
        .find(|p| p.name.as_deref() == Some(name))
        .ok_or_else(|| PortForwardError::NoNamedPort {
            target: target.to_string(),
            object: object.to_string(),
            port: name.to_string(),
        })?;
    to_port(port.container_port, target, object)
}

pub(super) fn service_port<'a>(
    svc: &'a Service,
    port: &PortRef,
    target: &str,
    service: &str,
) -> Result<&'a k8s_openapi::api::core::v1::ServicePort, PortForwardError> {
    let ports = svc
        .spec
        .as_ref()
        .and_then(|s| s.ports.as_ref())
        .map(Vec::as_slice)
        .unwrap_or_default();
    ports
        .iter()
        .find(|p| match port {
            PortRef::Number(n) => p.port == i32::from(*n),
            PortRef::Name(name) => p.name.as_deref() == Some(name.as_str()),
        })
        .ok_or_else(|| PortForwardError::NoServicePort {
            target: target.to_string(),
            service: service.to_string(),
            port: port.clone(),
            available: if ports.is_empty() {
                "none".to_string()
            } else {
                ports
                    .iter()
                    .map(|p| match &p.name {
                        Some(n) => format!("`{}` ({n})", p.port),
                        None => format!("`{}`", p.port),
                    })
                    .collect::<Vec<_>>()
                    .join(", ")
            },
        })
}

/// The pod's port for `port`: a number as is, a name through the pod's container ports.
pub(super) fn pod_port(pod: &Pod, port: &PortRef, target: &str) -> Result<u16, PortForwardError> {
    let object = format!("pod/{}", pod.metadata.name.as_deref().unwrap_or_default());
    match port {
        PortRef::Number(n) => Ok(*n),
        PortRef::Name(name) => named_container_port(pod.spec.as_ref(), name, target, &object),
    }
}
