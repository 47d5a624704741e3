//! Output, human: connectivity events (port-forwards started, failing, recovered or re-targeted; the cluster lost
//! and found again) → lines on stderr. Never writes stdout.

use super::Printer;
use super::quantity::secs;
use crate::event::Event;

impl Printer {
    /// Prints a port-forward or cluster reachability event; other events are not its concern.
    pub(super) fn connectivity_event(&mut self, e: &Event) {
        match e {
            Event::PortForwardStarted {
                resource,
                port,
                address,
                requested_port,
                ..
            } => {
                let moved = if address.ends_with(&format!(":{requested_port}")) {
                    String::new()
                } else {
                    format!(" (port {requested_port} was taken)")
                };
                self.line(&format!(
                    "{} forwarding {} → {resource}:{port}{moved}",
                    self.paint("36", "⇄"),
                    self.paint("1", address)
                ));
            }
            Event::PortForwardFailed {
                resource,
                address,
                message,
            } => {
                self.line(&format!(
                    "{} {address} → {resource}: {message}",
                    self.paint("33", "⇄")
                ));
            }
            Event::PortForwardRecovered {
                resource,
                address,
                pod,
            } => {
                self.line(&format!(
                    "{} {address} → {resource} works again (pod {pod})",
                    self.paint("32", "⇄")
                ));
            }
            Event::PortForwardRetargeted {
                resource,
                address,
                pod,
            } => {
                self.line(&format!(
                    "{} {address} → {resource} now reaches pod {pod}",
                    self.paint("36", "⇄")
                ));
            }
            Event::ClusterUnreachable { server, error } => {
                self.line(&format!(
                    "{} cluster unreachable at {server}: {error} (retrying; watches, logs and port-forwards resume when it is back)",
                    self.paint("1;33", "!")
                ));
            }
            Event::ClusterReachable { server, down_ms } => {
                self.line(&format!(
                    "{} cluster reachable again at {server} (after {})",
                    self.paint("32", "✓"),
                    secs(*down_ms)
                ));
            }
            _ => {}
        }
    }
}
