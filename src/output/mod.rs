//! Output: events and data → stderr (humans) or stdout (JSON Lines, data). The only code that prints.

pub mod human;
pub mod json;

use std::io::Write;
use std::sync::{Arc, Mutex};

pub use crate::cli::Format;
use crate::event::{Event, EventSink};

/// The printer for one command run.
pub enum Output {
    Human(human::Printer),
    Json(json::Printer),
}

impl Output {
    /// A printer for `format`; `verbose` shows every build output line in human mode.
    pub fn new(format: Format, verbose: bool) -> Output {
        match format {
            Format::Human => Output::Human(human::Printer::new(verbose)),
            Format::Json => Output::Json(json::Printer::new()),
        }
    }

    fn event(&mut self, e: &Event) {
        match self {
            Output::Human(p) => p.event(e),
            Output::Json(p) => p.event(e),
        }
    }
}

/// The shared printer: stages emit into its sink; commands print data and errors through it.
#[derive(Clone)]
pub struct Console(Arc<Mutex<Output>>);

impl Console {
    pub fn new(output: Output) -> Console {
        Console(Arc::new(Mutex::new(output)))
    }

    /// The sink stages report into.
    pub fn sink(&self) -> EventSink {
        let inner = Arc::clone(&self.0);
        EventSink::new(move |e| {
            if let Ok(mut o) = inner.lock() {
                o.event(&e);
            }
        })
    }

    /// Whether stdout carries JSON events (then data lines are not printed separately).
    pub fn is_json(&self) -> bool {
        self.0
            .lock()
            .map(|o| matches!(*o, Output::Json(_)))
            .unwrap_or(false)
    }

    /// A line of data for stdout (an image reference); suppressed in JSON mode, where events carry it.
    pub fn data_line(&self, line: &str) {
        if !self.is_json() {
            let mut out = std::io::stdout().lock();
            let _ = writeln!(out, "{line}");
        }
    }

    /// Raw data for stdout (rendered YAML), in every mode.
    pub fn data(&self, text: &str) {
        let mut out = std::io::stdout().lock();
        let _ = out.write_all(text.as_bytes());
        let _ = out.flush();
    }

    /// An informational line for humans on stderr (suppressed in JSON mode).
    pub fn info(&self, line: &str) {
        if let Ok(mut o) = self.0.lock()
            && let Output::Human(p) = &mut *o
        {
            p.info(line);
        }
    }

    /// The final error of a command, on stderr (JSON mode also gets it on stderr: stdout stays parseable).
    pub fn error(&self, report: &str) {
        if let Ok(mut o) = self.0.lock() {
            match &mut *o {
                Output::Human(p) => p.error(report),
                Output::Json(_) => {
                    let _ = writeln!(std::io::stderr().lock(), "{report}");
                }
            }
        }
    }

    /// Stops progress bars so later output is not garbled.
    pub fn finish(&self) {
        if let Ok(mut o) = self.0.lock()
            && let Output::Human(p) = &mut *o
        {
            p.finish();
        }
    }
}
