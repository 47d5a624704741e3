//! Port-forward: what to forward ([`ForwardSpec`]: a Service, Deployment, StatefulSet or Pod, a remote port by
//! number or name, the local port and address wanted), as `devloop.yaml` and kubectl write it, and the specs of
//! `--port-forward` (every TCP port of the Services deployed). Pure: it must not talk to the cluster.

use std::fmt;
use std::net::IpAddr;

use serde_json::Value;

/// What a forward targets.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum ResourceType {
    Service,
    Deployment,
    StatefulSet,
    Pod,
}

impl ResourceType {
    /// The lowercase name (`service`, `deployment`, `statefulset`, `pod`), as in `devloop.yaml` and kubectl.
    pub fn as_str(self) -> &'static str {
        match self {
            ResourceType::Service => "service",
            ResourceType::Deployment => "deployment",
            ResourceType::StatefulSet => "statefulset",
            ResourceType::Pod => "pod",
        }
    }

    /// Reads a name case-insensitively; kubectl's short names (`svc`, `deploy`, `sts`, `po`) are accepted too.
    pub fn parse(name: &str) -> Option<ResourceType> {
        match name.to_ascii_lowercase().as_str() {
            "service" | "services" | "svc" => Some(ResourceType::Service),
            "deployment" | "deployments" | "deploy" => Some(ResourceType::Deployment),
            "statefulset" | "statefulsets" | "sts" => Some(ResourceType::StatefulSet),
            "pod" | "pods" | "po" => Some(ResourceType::Pod),
            _ => None,
        }
    }
}

impl fmt::Display for ResourceType {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A remote port: a number, or a name (a Service port's name for services, a container port's name otherwise).
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum PortRef {
    Number(u16),
    Name(String),
}

impl fmt::Display for PortRef {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            PortRef::Number(n) => write!(f, "{n}"),
            PortRef::Name(s) => f.write_str(s),
        }
    }
}

/// One port-forward to set up (a `portForward:` entry, or a Service port with `--port-forward`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ForwardSpec {
    pub resource_type: ResourceType,
    pub name: String,
    pub namespace: String,
    /// For a Service, its port (number or name); otherwise a container port.
    pub port: PortRef,
    /// The local port wanted; `None` means the remote port's number.
    pub local_port: Option<u16>,
    /// Where to listen (127.0.0.1 unless configured).
    pub address: IpAddr,
}

impl ForwardSpec {
    /// `service/api:80`: the target as kubectl users write it.
    pub fn target(&self) -> String {
        format!("{}/{}:{}", self.resource_type, self.name, self.port)
    }
}

/// One forward per port of every Service among `objects` (for `--port-forward`), listening on `address`.
/// `objects` are as the cluster returned them (namespace set); Services without a selector are skipped (nothing
/// to forward to).
pub fn service_specs<'a>(
    objects: impl IntoIterator<Item = &'a Value>,
    address: IpAddr,
) -> Vec<ForwardSpec> {
    let mut specs = Vec::new();
    for o in objects {
        if o["kind"] != "Service" || o["apiVersion"] != "v1" {
            continue;
        }
        let has_selector = o
            .pointer("/spec/selector")
            .and_then(Value::as_object)
            .is_some_and(|m| !m.is_empty());
        let (Some(name), Some(namespace)) = (
            o.pointer("/metadata/name").and_then(Value::as_str),
            o.pointer("/metadata/namespace").and_then(Value::as_str),
        ) else {
            continue;
        };
        if !has_selector {
            continue;
        }
        for p in o
            .pointer("/spec/ports")
            .and_then(Value::as_array)
            .into_iter()
            .flatten()
        {
            let Some(port) = p["port"].as_u64().and_then(|n| u16::try_from(n).ok()) else {
                continue;
            };
            // Only TCP can be forwarded.
            if p["protocol"].as_str().is_some_and(|proto| proto != "TCP") {
                continue;
            }
            specs.push(ForwardSpec {
                resource_type: ResourceType::Service,
                name: name.to_string(),
                namespace: namespace.to_string(),
                port: PortRef::Number(port),
                local_port: None,
                address,
            });
        }
    }
    specs
}
