//! Output, human: build events (cached, started, steps, output, finished, failed, the builds' summary) → lines
//! and a progress bar per image on stderr. Never writes stdout.

use super::Printer;
use super::quantity::secs;
use crate::event::Event;

impl Printer {
    /// Prints a build event; other events are not its concern.
    pub(super) fn build_event(&mut self, e: &Event) {
        match e {
            Event::BuildCached { image, tag, .. } => {
                self.line(&format!(
                    "{} {image}: cached {}",
                    self.paint("32", "✓"),
                    self.paint("2", tag)
                ));
            }
            Event::BuildStarted { image, reasons, .. } => {
                let why = if reasons.is_empty() {
                    String::new()
                } else {
                    format!(" ({})", reasons.join("; "))
                };
                self.line(&format!("{} {image}: building{why}", self.paint("33", "•")));
                if self.tty {
                    self.bar(image).set_message("starting");
                }
            }
            Event::BuildStep { image, step } => {
                if self.tty {
                    self.bar(image).set_message(step.clone());
                } else {
                    self.line(&format!("  {image} │ {step}"));
                }
            }
            Event::BuildOutput { image, line } if self.verbose => {
                self.line(&format!("  {image} │ {line}"));
            }
            Event::BuildFinished {
                image,
                tag,
                duration_ms,
                ..
            } => {
                self.done(image);
                self.line(&format!(
                    "{} {image}: built {} in {}",
                    self.paint("32", "✓"),
                    self.paint("2", tag),
                    secs(*duration_ms)
                ));
            }
            Event::BuildFailed {
                image,
                step,
                message,
                output,
            } => {
                self.done(image);
                let at = step
                    .as_ref()
                    .map(|s| format!(" at `{s}`"))
                    .unwrap_or_default();
                self.line(&format!(
                    "{} {image}: build failed{at}: {message}",
                    self.paint("31", "✗")
                ));
                for l in output {
                    self.line(&format!("  {image} │ {l}"));
                }
            }
            Event::BuildsComplete {
                built,
                cached,
                duration_ms,
                ..
            } => {
                self.line(&format!(
                    "{built} built, {cached} cached in {}",
                    secs(*duration_ms)
                ));
            }
            _ => {}
        }
    }
}
