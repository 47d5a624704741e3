//! Port-forward: a forward spec → the pod and port a connection goes to, resolved against the cluster each time
//! (the newest ready pod of a Service's or workload's selector), and the remote port number a local port is chosen
//! by. It only reads the cluster: it must not open tunnels or bind ports.

use k8s_openapi::api::apps::v1::{Deployment, StatefulSet};
use k8s_openapi::api::core::v1::{Pod, Service};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::LabelSelector;
use k8s_openapi::apimachinery::pkg::util::intstr::IntOrString;
use kube::Client;
use kube::api::{Api, ListParams};
use kube::core::Selector;

use super::error::PortForwardError;
use super::port::{named_container_port, pod_port, service_port, to_port};
use super::spec::{ForwardSpec, PortRef, ResourceType};

/// The number behind the spec's remote port, for choosing the local port.
pub(super) async fn remote_port_number(
    client: &Client,
    spec: &ForwardSpec,
) -> Result<u16, PortForwardError> {
    let name = match &spec.port {
        PortRef::Number(n) => return Ok(*n),
        PortRef::Name(name) => name,
    };
    let target = spec.target();
    let ns = &spec.namespace;
    let not_found = || PortForwardError::NotFound {
        target: target.clone(),
        kind: spec.resource_type,
        name: spec.name.clone(),
        namespace: ns.clone(),
    };
    let api_err = |e| PortForwardError::api(&target, e);
    match spec.resource_type {
        ResourceType::Service => {
            let svc = Api::<Service>::namespaced(client.clone(), ns)
                .get_opt(&spec.name)
                .await
                .map_err(api_err)?
                .ok_or_else(not_found)?;
            let port = service_port(&svc, &spec.port, &target, &spec.name)?;
            to_port(port.port, &target, &format!("service/{}", spec.name))
        }
        ResourceType::Deployment | ResourceType::StatefulSet | ResourceType::Pod => {
            let (object, pod_spec) = match spec.resource_type {
                ResourceType::Deployment => {
                    let d = Api::<Deployment>::namespaced(client.clone(), ns)
                        .get_opt(&spec.name)
                        .await
                        .map_err(api_err)?
                        .ok_or_else(not_found)?;
                    (
                        format!("deployment/{}", spec.name),
                        d.spec.and_then(|s| s.template.spec),
                    )
                }
                ResourceType::StatefulSet => {
                    let s = Api::<StatefulSet>::namespaced(client.clone(), ns)
                        .get_opt(&spec.name)
                        .await
                        .map_err(api_err)?
                        .ok_or_else(not_found)?;
                    (
                        format!("statefulset/{}", spec.name),
                        s.spec.and_then(|s| s.template.spec),
                    )
                }
                _ => {
                    let p = Api::<Pod>::namespaced(client.clone(), ns)
                        .get_opt(&spec.name)
                        .await
                        .map_err(api_err)?
                        .ok_or_else(not_found)?;
                    (format!("pod/{}", spec.name), p.spec)
                }
            };
            named_container_port(pod_spec.as_ref(), name, &target, &object)
        }
    }
}

/// Whether a pod can take a connection now: running, Ready and not being deleted.
pub(super) fn is_ready(pod: &Pod) -> bool {
    pod.metadata.deletion_timestamp.is_none()
        && pod.status.as_ref().is_some_and(|s| {
            s.phase.as_deref() == Some("Running")
                && s.conditions
                    .iter()
                    .flatten()
                    .any(|c| c.type_ == "Ready" && c.status == "True")
        })
}

/// The newest ready pod matching `selector` (newest first, so a finished rollout wins over its old pods).
async fn newest_ready_pod(
    pods: &Api<Pod>,
    selector: &Selector,
    spec: &ForwardSpec,
) -> Result<Pod, PortForwardError> {
    let target = spec.target();
    let list = pods
        .list(&ListParams::default().labels_from(selector))
        .await
        .map_err(|e| PortForwardError::api(&target, e))?;
    list.items
        .into_iter()
        .filter(is_ready)
        .max_by(|a, b| {
            let created = |p: &Pod| p.metadata.creation_timestamp.clone().map(|t| t.0);
            created(a)
                .cmp(&created(b))
                .then_with(|| a.metadata.name.cmp(&b.metadata.name))
        })
        .ok_or_else(|| PortForwardError::NoReadyPod {
            target,
            namespace: spec.namespace.clone(),
        })
}

fn workload_selector(selector: Option<LabelSelector>) -> Option<Selector> {
    selector
        .and_then(|s| Selector::try_from(s).ok())
        .filter(|s| !s.selects_all())
}

/// Resolves the pod and port a new connection goes to, at that moment: the pod's name and the port on it.
pub(super) async fn resolve(
    client: &Client,
    spec: &ForwardSpec,
) -> Result<(String, u16), PortForwardError> {
    let target = spec.target();
    let ns = &spec.namespace;
    let pods: Api<Pod> = Api::namespaced(client.clone(), ns);
    let not_found = || PortForwardError::NotFound {
        target: target.clone(),
        kind: spec.resource_type,
        name: spec.name.clone(),
        namespace: ns.clone(),
    };
    let api_err = |e| PortForwardError::api(&target, e);
    let no_selector = || PortForwardError::NoSelector {
        target: target.clone(),
        object: format!("{}/{}", spec.resource_type, spec.name),
    };
    let (pod, port) = match spec.resource_type {
        ResourceType::Pod => {
            let pod = pods
                .get_opt(&spec.name)
                .await
                .map_err(api_err)?
                .ok_or_else(not_found)?;
            if !is_ready(&pod) {
                return Err(PortForwardError::NoReadyPod {
                    target,
                    namespace: ns.clone(),
                });
            }
            let port = pod_port(&pod, &spec.port, &target)?;
            (pod, port)
        }
        ResourceType::Service => {
            let svc = Api::<Service>::namespaced(client.clone(), ns)
                .get_opt(&spec.name)
                .await
                .map_err(api_err)?
                .ok_or_else(not_found)?;
            let service_port = service_port(&svc, &spec.port, &target, &spec.name)?.clone();
            let labels = svc
                .spec
                .as_ref()
                .and_then(|s| s.selector.clone())
                .filter(|s| !s.is_empty())
                .ok_or_else(no_selector)?;
            let selector: Selector = labels.into_iter().collect();
            let pod = newest_ready_pod(&pods, &selector, spec).await?;
            let port = match service_port.target_port {
                Some(IntOrString::Int(n)) => {
                    to_port(n, &target, &format!("service/{}", spec.name))?
                }
                Some(IntOrString::String(name)) => pod_port(&pod, &PortRef::Name(name), &target)?,
                None => to_port(
                    service_port.port,
                    &target,
                    &format!("service/{}", spec.name),
                )?,
            };
            (pod, port)
        }
        ResourceType::Deployment | ResourceType::StatefulSet => {
            let selector = if spec.resource_type == ResourceType::Deployment {
                Api::<Deployment>::namespaced(client.clone(), ns)
                    .get_opt(&spec.name)
                    .await
                    .map_err(api_err)?
                    .ok_or_else(not_found)?
                    .spec
                    .map(|s| s.selector)
            } else {
                Api::<StatefulSet>::namespaced(client.clone(), ns)
                    .get_opt(&spec.name)
                    .await
                    .map_err(api_err)?
                    .ok_or_else(not_found)?
                    .spec
                    .map(|s| s.selector)
            };
            // The API server rejects workloads without a selector; an empty one would match every pod.
            let selector = workload_selector(selector).ok_or_else(no_selector)?;
            let pod = newest_ready_pod(&pods, &selector, spec).await?;
            let port = pod_port(&pod, &spec.port, &target)?;
            (pod, port)
        }
    };
    let name = pod.metadata.name.clone().unwrap_or_default();
    Ok((name, port))
}
