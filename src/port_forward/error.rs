//! Port-forward: why a forward could not be set up or a connection could not be tunnelled ([`PortForwardError`]),
//! and whether trying again later can help. Words its hints through `crate::hint`; it must not print.

use std::io;
use std::net::{IpAddr, SocketAddr};

use crate::connectivity::{is_connection_error, root_cause};
use crate::hint::Hint;

use super::spec::{PortRef, ResourceType};

/// Why a forward could not be set up or a connection could not be tunnelled.
#[derive(Debug, thiserror::Error)]
pub enum PortForwardError {
    #[error(
        "port-forward `{target}`: no free local port on `{address}` in {first}..={last}{}",
        Hint("set `localPort` to a free port")
    )]
    NoFreePort {
        target: String,
        address: IpAddr,
        first: u16,
        last: u16,
    },
    #[error("port-forward `{target}`: cannot listen on `{address}`: {source}")]
    Bind {
        target: String,
        address: SocketAddr,
        source: io::Error,
    },
    #[error("port-forward `{target}`: {kind} `{name}` not found in namespace `{namespace}`")]
    NotFound {
        target: String,
        kind: ResourceType,
        name: String,
        namespace: String,
    },
    #[error(
        "port-forward `{target}`: service `{service}` has no port `{port}`{}",
        Hint(format_args!("its ports are {}", .available))
    )]
    NoServicePort {
        target: String,
        service: String,
        port: PortRef,
        available: String,
    },
    #[error(
        "port-forward `{target}`: `{object}` has no selector, so there is no pod to forward to{}",
        Hint("forward to a pod or to the workload behind it instead")
    )]
    NoSelector { target: String, object: String },
    #[error("port-forward `{target}`: no container of `{object}` declares a port named `{port}`")]
    NoNamedPort {
        target: String,
        object: String,
        port: String,
    },
    #[error(
        "port-forward `{target}`: `{object}` has port `{port}`, which is not a valid port number"
    )]
    InvalidPort {
        target: String,
        object: String,
        port: i32,
    },
    #[error("port-forward `{target}`: no ready pod in namespace `{namespace}`")]
    NoReadyPod { target: String, namespace: String },
    #[error("port-forward `{target}`: {message}")]
    Api {
        target: String,
        message: String,
        /// HTTP status of the API answer (`None`: the API was not reached).
        code: Option<u16>,
    },
    #[error("port-forward `{target}`: cannot reach the API server: {message}")]
    Unreachable { target: String, message: String },
    #[error("port-forward `{target}`: pod `{pod}` port {port}: {message}")]
    Upstream {
        target: String,
        pod: String,
        port: u16,
        message: String,
    },
}

impl PortForwardError {
    /// Whether trying again later can help (a pod starting, a workload being recreated, the API briefly away).
    pub(super) fn is_transient(&self) -> bool {
        match self {
            PortForwardError::NoReadyPod { .. }
            | PortForwardError::NotFound { .. }
            | PortForwardError::Unreachable { .. } => true,
            PortForwardError::Api { code, .. } => !matches!(code, Some(401 | 403)),
            _ => false,
        }
    }

    /// Why the API server could not be reached, when that is the error.
    pub(super) fn unreached(&self) -> Option<&str> {
        match self {
            PortForwardError::Unreachable { message, .. } => Some(message),
            _ => None,
        }
    }

    pub(super) fn api(target: &str, e: kube::Error) -> Self {
        match e {
            kube::Error::Api(status) => PortForwardError::Api {
                target: target.to_string(),
                message: format!("the API answered {}: {}", status.code, status.message),
                code: Some(status.code),
            },
            other if is_connection_error(&other) => PortForwardError::Unreachable {
                target: target.to_string(),
                message: root_cause(&other),
            },
            other => PortForwardError::Api {
                target: target.to_string(),
                message: other.to_string(),
                code: None,
            },
        }
    }
}
