//! Port-forward stage: forward specs + a kube client → local TCP listeners bound once on predictable ports; each
//! accepted connection is tunnelled to a ready pod resolved at that moment, so listeners outlive redeploys and new
//! connections reach the new rollout. Emits events, never prints, spawns nothing that outlives
//! [`Forwarder::run`] (kube's task behind each tunnel is aborted with the connection).
//!
//! Files, bottom-up (each uses only files above it): `spec` (what to forward), `error`, `port` (port names to
//! numbers), `target` (the pod a connection goes to), `tunnel` (the WebSocket to it and the copying), `listener`
//! (the local sockets and their health), `forwarder` (accepting, retrying, reporting).

mod error;
mod forwarder;
mod listener;
mod port;
mod spec;
mod target;
mod tunnel;

pub use error::PortForwardError;
pub use forwarder::{DEFAULT_POD_WAIT, Forwarder};
pub use listener::{Forward, ForwardHealth, PORT_SEARCH};
pub use spec::{ForwardSpec, PortRef, ResourceType, service_specs};

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests;
