//! Output, human: events → progress bars and lines on stderr (indicatif when stderr is a terminal, plain lines
//! otherwise; `NO_COLOR` respected). Never writes stdout.
//!
//! This file holds the printer (bars, colours, the line writer) and sends each event to the file of its
//! concern, which words it; the words of an event live in one place only.

mod build;
mod config;
mod connectivity;
mod delivery;
mod deploy;
mod dev;
mod hook;
mod logs;
mod quantity;
mod rollout;
pub mod status;

use std::collections::HashMap;
use std::io::{IsTerminal, Write};
use std::time::Duration;

use indicatif::{MultiProgress, ProgressBar, ProgressDrawTarget, ProgressStyle};

use crate::event::Event;

/// Prints events for people.
pub struct Printer {
    verbose: bool,
    color: bool,
    tty: bool,
    multi: MultiProgress,
    bars: HashMap<String, ProgressBar>,
}

impl Printer {
    pub fn new(verbose: bool) -> Printer {
        let tty = std::io::stderr().is_terminal();
        let color = tty && std::env::var_os("NO_COLOR").is_none_or(|v| v.is_empty());
        let target = if tty {
            ProgressDrawTarget::stderr()
        } else {
            ProgressDrawTarget::hidden()
        };
        Printer {
            verbose,
            color,
            tty,
            multi: MultiProgress::with_draw_target(target),
            bars: HashMap::new(),
        }
    }

    fn paint(&self, code: &str, s: &str) -> String {
        if self.color {
            format!("\x1b[{code}m{s}\x1b[0m")
        } else {
            s.to_string()
        }
    }

    /// Prints a line above any active bars.
    fn line(&self, s: &str) {
        if self.tty && !self.bars.is_empty() {
            let _ = self.multi.println(s);
        } else {
            let _ = writeln!(std::io::stderr().lock(), "{s}");
        }
    }

    pub fn info(&mut self, s: &str) {
        self.line(s);
    }

    pub fn error(&mut self, report: &str) {
        self.finish();
        let (first, rest) = report.split_once('\n').unwrap_or((report, ""));
        let first = match first.strip_prefix("error:") {
            Some(r) => format!("{}{r}", self.paint("1;31", "error:")),
            None => first.to_string(),
        };
        let rest = rest.replace("hint:", &self.paint("1;36", "hint:"));
        let _ = writeln!(
            std::io::stderr().lock(),
            "{first}{}{rest}",
            if rest.is_empty() { "" } else { "\n" }
        );
    }

    pub fn finish(&mut self) {
        for (_, bar) in self.bars.drain() {
            bar.finish_and_clear();
        }
    }

    fn bar(&mut self, image: &str) -> ProgressBar {
        if let Some(b) = self.bars.get(image) {
            return b.clone();
        }
        let bar = self.multi.add(ProgressBar::new_spinner());
        bar.set_style(
            ProgressStyle::with_template("{spinner} {prefix:.bold} {wide_msg} {elapsed:>4}")
                .unwrap_or_else(|_| ProgressStyle::default_spinner()),
        );
        bar.set_prefix(image.to_string());
        bar.enable_steady_tick(Duration::from_millis(120));
        self.bars.insert(image.to_string(), bar.clone());
        bar
    }

    fn done(&mut self, image: &str) {
        if let Some(bar) = self.bars.remove(image) {
            bar.finish_and_clear();
        }
    }

    /// Prints one event: each concern words its own events (see the files of this folder).
    pub fn event(&mut self, e: &Event) {
        match e {
            Event::ConfigLoaded { .. }
            | Event::InitComplete { .. }
            | Event::InitSkaffold { .. } => self.config_event(e),
            // Data: `devloop version` and `devloop status` print their lines on stdout themselves.
            Event::Version { .. } | Event::Status(_) => {}
            Event::BuildCached { .. }
            | Event::BuildStarted { .. }
            | Event::BuildStep { .. }
            | Event::BuildOutput { .. }
            | Event::BuildFinished { .. }
            | Event::BuildFailed { .. }
            | Event::BuildsComplete { .. } => self.build_event(e),
            Event::PushStarted { .. }
            | Event::Pushed { .. }
            | Event::LoadStarted { .. }
            | Event::ImageLoaded { .. }
            | Event::LoadFailed { .. } => self.delivery_event(e),
            Event::DeployStarted { .. }
            | Event::NamespaceCreated { .. }
            | Event::Applied { .. }
            | Event::Pruned { .. }
            | Event::DeployComplete { .. }
            | Event::Deleted { .. }
            | Event::Release { .. } => self.deploy_event(e),
            Event::RolloutProgress { .. }
            | Event::RolloutReady { .. }
            | Event::RolloutFailed { .. }
            | Event::StatusComplete { .. } => self.rollout_event(e),
            Event::PortForwardStarted { .. }
            | Event::PortForwardFailed { .. }
            | Event::PortForwardRecovered { .. }
            | Event::PortForwardRetargeted { .. }
            | Event::ClusterUnreachable { .. }
            | Event::ClusterReachable { .. } => self.connectivity_event(e),
            Event::Log {
                pod,
                container,
                workload,
                line,
            } => self.log_line(pod, container, workload, line),
            Event::Synced { .. }
            | Event::SyncReplayed { .. }
            | Event::SyncSkipped { .. }
            | Event::Iteration { .. }
            | Event::IterationFailed { .. }
            | Event::IterationCancelled { .. }
            | Event::Restored { .. }
            | Event::DevStopped { .. } => self.dev_event(e),
            Event::HookStarted { .. }
            | Event::HookOutput { .. }
            | Event::HookFinished { .. }
            | Event::HookFailed { .. } => self.hook_event(e),
            Event::Warning { message } => {
                self.line(&format!("{} {message}", self.paint("1;33", "warning:")));
            }
        }
    }
}

#[cfg(test)]
mod tests;
