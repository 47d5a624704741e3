//! Output, human: lifecycle hook events (started, output lines, finished, failed) → lines on stderr, each output
//! line prefixed `hook <image> <phase> │` (container hooks: `… pod/container │`). Never writes stdout; prints the
//! hook's own output and nothing of its environment.

use super::Printer;
use super::quantity::secs;
use crate::event::Event;

/// `api before-build`, `before-deploy`, `before-deploy api-7d9/app`: the name a hook's lines go by.
fn label(phase: &str, image: &Option<String>, container: &Option<String>) -> String {
    let mut s = String::new();
    if let Some(i) = image {
        s.push_str(i);
        s.push(' ');
    }
    s.push_str(phase);
    if let Some(c) = container {
        s.push(' ');
        s.push_str(c);
    }
    s
}

impl Printer {
    /// Prints a hook event; other events are not its concern.
    pub(super) fn hook_event(&mut self, e: &Event) {
        match e {
            Event::HookStarted {
                phase,
                image,
                index,
                command,
                container,
            } => {
                let name = label(phase, image, container);
                self.line(&format!(
                    "{} hook {name} {index}: {}",
                    self.paint("33", "•"),
                    self.paint("2", &command.join(" "))
                ));
            }
            Event::HookOutput {
                phase,
                image,
                container,
                line,
                ..
            } => {
                let prefix =
                    self.paint("35", &format!("hook {} │", label(phase, image, container)));
                self.line(&format!("  {prefix} {line}"));
            }
            Event::HookFinished {
                phase,
                image,
                index,
                container,
                duration_ms,
            } => {
                self.line(&format!(
                    "{} hook {} {index} done in {}",
                    self.paint("32", "✓"),
                    label(phase, image, container),
                    secs(*duration_ms)
                ));
            }
            Event::HookFailed {
                phase,
                image,
                index,
                container,
                message,
                ..
            } => {
                self.line(&format!(
                    "{} hook {} {index} failed: {message}",
                    self.paint("31", "✗"),
                    label(phase, image, container),
                ));
            }
            _ => {}
        }
    }
}
