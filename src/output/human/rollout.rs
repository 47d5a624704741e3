//! Output, human: rollout events (progress, ready, failed with its diagnosis, the summary) → lines and a progress
//! bar per workload on stderr. Never writes stdout.

use super::Printer;
use super::quantity::secs;
use crate::event::Event;

impl Printer {
    /// Prints a rollout (status) event; other events are not its concern.
    pub(super) fn rollout_event(&mut self, e: &Event) {
        match e {
            Event::RolloutProgress {
                object, message, ..
            } => {
                if self.tty {
                    self.bar(object).set_message(message.clone());
                } else {
                    self.line(&format!("  {object}: {message}"));
                }
            }
            Event::RolloutReady {
                object,
                duration_ms,
                ..
            } => {
                self.done(object);
                self.line(&format!(
                    "{} {object} ready in {}",
                    self.paint("32", "✓"),
                    secs(*duration_ms)
                ));
            }
            Event::RolloutFailed {
                object,
                pod,
                container,
                reason,
                message,
                events,
                logs,
                ..
            } => {
                self.done(object);
                let at = match (pod, container) {
                    (Some(p), Some(c)) => format!(" (pod {p}, container {c})"),
                    (Some(p), None) => format!(" (pod {p})"),
                    _ => String::new(),
                };
                self.line(&format!(
                    "{} {object}{at}: {}: {message}",
                    self.paint("31", "✗"),
                    self.paint("1", reason)
                ));
                if !events.is_empty() {
                    self.line("  recent events:");
                    for e in events {
                        self.line(&format!("    {e}"));
                    }
                }
                if !logs.is_empty() {
                    self.line("  last log lines:");
                    for l in logs {
                        self.line(&format!("    │ {l}"));
                    }
                }
            }
            Event::StatusComplete { ready, duration_ms } => {
                self.line(&format!(
                    "{ready} workload{} ready in {}",
                    if *ready == 1 { "" } else { "s" },
                    secs(*duration_ms)
                ));
            }
            _ => {}
        }
    }
}
