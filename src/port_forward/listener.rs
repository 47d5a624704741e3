//! Port-forward: a forward spec → its local listener, bound once on the requested port or the next free one above
//! it ([`Forward`], as announced), with the health of its latest connections. It must not talk to the cluster.

use std::fmt;
use std::io;
use std::net::SocketAddr;
use std::sync::Mutex;

use tokio::net::TcpListener;

use super::error::PortForwardError;
use super::spec::ForwardSpec;

/// How many ports above the requested one are tried when it is taken.
pub const PORT_SEARCH: u16 = 100;

/// A listening forward, as announced: the local address stays the same for the life of the
/// [`Forwarder`](super::Forwarder).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Forward {
    pub spec: ForwardSpec,
    /// Where it listens.
    pub local: SocketAddr,
    /// The port that was asked for (`localPort` or the remote port); differs from `local.port()` when it was taken.
    pub requested_port: u16,
}

impl fmt::Display for Forward {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "forwarding {} → {} (namespace `{}`)",
            self.local,
            self.spec.target(),
            self.spec.namespace
        )?;
        if self.requested_port != 0 && self.requested_port != self.local.port() {
            write!(f, "; port {} was taken", self.requested_port)?;
        }
        Ok(())
    }
}

/// The health of one forward, for a status line.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ForwardHealth {
    pub local: SocketAddr,
    /// The pod the latest connection reached.
    pub pod: Option<String>,
    /// Why the latest connection failed, until one succeeds again.
    pub error: Option<String>,
    /// Connections tunnelled so far.
    pub connections: u64,
}

#[derive(Debug, Default)]
pub(super) struct HealthState {
    pub(super) pod: Option<String>,
    pub(super) error: Option<String>,
    pub(super) connections: u64,
}

pub(super) struct Listener {
    pub(super) socket: TcpListener,
    pub(super) forward: Forward,
    pub(super) health: Mutex<HealthState>,
}

pub(super) fn lock(m: &Mutex<HealthState>) -> std::sync::MutexGuard<'_, HealthState> {
    m.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
}

/// Listens on `requested` or the next free port above it; `0` lets the system choose.
pub(super) async fn bind(
    spec: &ForwardSpec,
    requested: u16,
) -> Result<(TcpListener, SocketAddr), PortForwardError> {
    let last = requested.saturating_add(PORT_SEARCH);
    let candidates: Vec<u16> = if requested == 0 {
        vec![0]
    } else {
        (requested..=last).collect()
    };
    for port in candidates {
        let address = SocketAddr::new(spec.address, port);
        match TcpListener::bind(address).await {
            Ok(socket) => {
                let local = socket
                    .local_addr()
                    .map_err(|source| PortForwardError::Bind {
                        target: spec.target(),
                        address,
                        source,
                    })?;
                return Ok((socket, local));
            }
            // Taken, or privileged without the right to it: the next port may do.
            Err(e)
                if matches!(
                    e.kind(),
                    io::ErrorKind::AddrInUse | io::ErrorKind::PermissionDenied
                ) => {}
            Err(source) => {
                return Err(PortForwardError::Bind {
                    target: spec.target(),
                    address,
                    source,
                });
            }
        }
    }
    Err(PortForwardError::NoFreePort {
        target: spec.target(),
        address: spec.address,
        first: requested,
        last,
    })
}
