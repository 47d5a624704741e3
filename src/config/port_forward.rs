//! Config, `portForward:` section: the raw entries → validated `PortForward`s (resource type, port, local
//! address). Knows the shape of a forward, not the cluster; opens nothing.

use super::raw;
use super::{ConfigError, invalid};

/// A validated `portForward` entry.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PortForward {
    /// `service`, `deployment`, `statefulset` or `pod`.
    pub resource_type: String,
    pub resource_name: String,
    /// `None`: the namespace devloop deploys to.
    pub namespace: Option<String>,
    /// A number or a port name.
    pub port: String,
    pub local_port: Option<u16>,
    pub address: std::net::IpAddr,
}

pub(super) fn validate_port_forwards(
    file: &str,
    raw: Vec<raw::RawPortForward>,
) -> Result<Vec<PortForward>, ConfigError> {
    raw.into_iter()
        .enumerate()
        .map(|(i, p)| {
            let field = |f: &str| format!("portForward[{i}].{f}");
            let resource_type = p
                .resource_type
                .unwrap_or_else(|| "service".into())
                .to_lowercase();
            if !matches!(
                resource_type.as_str(),
                "service" | "deployment" | "statefulset" | "pod"
            ) {
                return Err(invalid(
                    file,
                    field("resourceType"),
                    format!("unknown resource type `{resource_type}`"),
                    Some("use `service`, `deployment`, `statefulset` or `pod`"),
                ));
            }
            let port = match p.port {
                raw::RawPort::Number(0) => {
                    return Err(invalid(
                        file,
                        field("port"),
                        "port 0 cannot be forwarded",
                        None,
                    ));
                }
                raw::RawPort::Number(n) => n.to_string(),
                raw::RawPort::Name(n) if !n.is_empty() => n,
                raw::RawPort::Name(_) => {
                    return Err(invalid(file, field("port"), "empty port name", None));
                }
            };
            let address = match p.address.as_deref() {
                None => std::net::IpAddr::from([127, 0, 0, 1]),
                Some(a) => a.parse().map_err(|_| {
                    invalid(
                        file,
                        field("address"),
                        format!("`{a}` is not an IP address"),
                        Some("e.g. `127.0.0.1` or `0.0.0.0`"),
                    )
                })?,
            };
            Ok(PortForward {
                resource_type,
                resource_name: p.resource_name,
                namespace: p.namespace,
                port,
                local_port: p.local_port,
                address,
            })
        })
        .collect()
}
