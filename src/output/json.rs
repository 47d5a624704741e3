//! Output, JSON Lines: each event → one line on stdout. Writes nothing else.

use std::io::Write;

use crate::event::Event;

/// Writes events as JSON Lines on stdout.
pub struct Printer;

impl Printer {
    pub fn new() -> Printer {
        Printer
    }

    pub fn event(&mut self, e: &Event) {
        if let Ok(line) = serde_json::to_string(e) {
            let mut out = std::io::stdout().lock();
            let _ = writeln!(out, "{line}");
            let _ = out.flush();
        }
    }
}

impl Default for Printer {
    fn default() -> Self {
        Printer::new()
    }
}
