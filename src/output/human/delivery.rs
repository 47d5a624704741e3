//! Output, human: delivery events (a built image pushed to a registry or loaded into the cluster's nodes) → lines
//! and the image's progress bar on stderr. Never writes stdout.

use super::Printer;
use super::quantity::{secs, size};
use crate::event::Event;

impl Printer {
    /// Prints a push or load event; other events are not its concern.
    pub(super) fn delivery_event(&mut self, e: &Event) {
        match e {
            Event::PushStarted { image, .. } if self.tty => {
                self.bar(image).set_message("pushing");
            }
            Event::Pushed {
                image,
                reference,
                duration_ms,
                ..
            } => {
                self.done(image);
                self.line(&format!(
                    "{} {image}: pushed {} in {}",
                    self.paint("32", "✓"),
                    self.paint("2", reference),
                    secs(*duration_ms)
                ));
            }
            Event::LoadStarted { image, nodes, .. } if self.tty => {
                self.bar(image).set_message(format!(
                    "loading into {} node{}",
                    nodes.len(),
                    if nodes.len() == 1 { "" } else { "s" }
                ));
            }
            Event::ImageLoaded {
                image,
                reference,
                nodes,
                bytes,
                duration_ms,
            } => {
                self.done(image);
                self.line(&format!(
                    "{} {image}: loaded {} ({}) into {} in {}",
                    self.paint("32", "✓"),
                    self.paint("2", reference),
                    size(*bytes),
                    nodes.join(", "),
                    secs(*duration_ms)
                ));
            }
            Event::LoadFailed { image, message } => {
                self.done(image);
                self.line(&format!("{} {message}", self.paint("31", "✗")));
            }
            _ => {}
        }
    }
}
