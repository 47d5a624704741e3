//! Output, human: deploy events (what goes where, each object applied, pruned or deleted, the summary) → lines on
//! stderr. Never writes stdout.

use super::Printer;
use super::quantity::secs;
use crate::event::Event;

impl Printer {
    /// Prints a deploy or delete event; other events are not its concern.
    pub(super) fn deploy_event(&mut self, e: &Event) {
        match e {
            Event::DeployStarted {
                context,
                namespace,
                objects,
            } => {
                // The Docker target reports context `docker` and its network as the namespace.
                let line = if context == "docker" {
                    format!(
                        "deploying {objects} container{} to the local Docker daemon (network {})",
                        if *objects == 1 { "" } else { "s" },
                        self.paint("1", namespace)
                    )
                } else {
                    format!(
                        "deploying {objects} objects to context {} (namespace {})",
                        self.paint("1", context),
                        self.paint("1", namespace)
                    )
                };
                self.line(&line);
            }
            Event::NamespaceCreated { namespace } => {
                self.line(&format!(
                    "{} created namespace {namespace} (devloop keeps it on delete)",
                    self.paint("32", "+")
                ));
            }
            Event::Applied {
                object,
                namespace,
                change,
            } => {
                let ns = namespace
                    .as_ref()
                    .map(|n| format!(" -n {n}"))
                    .unwrap_or_default();
                self.line(&format!("  {object}{ns} {change}"));
            }
            Event::Release {
                service,
                namespace,
                step,
                message,
                ..
            } => {
                let mark = match step.as_str() {
                    "failed" => self.paint("31", "✗"),
                    "switched" | "rolledBack" => self.paint("32", "⇄"),
                    _ => self.paint("36", "·"),
                };
                self.line(&format!(
                    "{mark} service/{service} -n {namespace}: {message}"
                ));
            }
            Event::Pruned { object, namespace } => {
                let ns = namespace
                    .as_ref()
                    .map(|n| format!(" -n {n}"))
                    .unwrap_or_default();
                self.line(&format!("  {object}{ns} {}", self.paint("33", "pruned")));
            }
            Event::DeployComplete {
                applied,
                pruned,
                duration_ms,
            } => {
                self.line(&format!(
                    "applied {applied}, pruned {pruned} in {}",
                    secs(*duration_ms)
                ));
            }
            Event::Deleted {
                object,
                namespace,
                dry_run,
            } => {
                let ns = namespace
                    .as_ref()
                    .map(|n| format!(" -n {n}"))
                    .unwrap_or_default();
                self.line(&format!(
                    "  {object}{ns} {}",
                    if *dry_run {
                        "would be deleted"
                    } else {
                        "deleted"
                    }
                ));
            }
            _ => {}
        }
    }
}
