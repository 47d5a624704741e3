//! Output, human: dev-loop events (files synced, or why not, one summary line per iteration, a failed or restarted
//! iteration, containers running again, the statistics when `dev` stops) → lines on stderr. Never writes stdout.

use super::Printer;
use super::quantity::{plural, secs};
use crate::event::Event;

impl Printer {
    /// Prints a dev-loop event; other events are not its concern.
    pub(super) fn dev_event(&mut self, e: &Event) {
        match e {
            Event::Synced {
                image,
                files,
                deleted,
                containers,
                duration_ms,
            } => {
                let name = |v: &[String]| match v.len() {
                    1 => v[0].clone(),
                    n => format!("{n} files"),
                };
                let what = match (files.is_empty(), deleted.is_empty()) {
                    (false, true) => format!("synced {} into", name(files)),
                    (true, false) => format!("deleted {} in", name(deleted)),
                    _ => format!("synced {}, deleted {} in", name(files), name(deleted)),
                };
                self.line(&format!(
                    "{} {image}: {what} {containers} container{} in {}",
                    self.paint("32", "⇄"),
                    if *containers == 1 { "" } else { "s" },
                    secs(*duration_ms)
                ));
            }
            Event::SyncReplayed {
                image,
                containers,
                duration_ms,
            } => {
                self.line(&format!(
                    "{} {image}: {containers} new container{} got the files synced since the build ({})",
                    self.paint("32", "⇄"),
                    if *containers == 1 { "" } else { "s" },
                    secs(*duration_ms)
                ));
            }
            Event::SyncSkipped { image, reason } => {
                self.line(&format!(
                    "{} {image}: rebuilding, not syncing: {reason}",
                    self.paint("33", "⇄")
                ));
            }
            Event::Iteration { .. } => self.iteration(e),
            Event::IterationFailed { message } => {
                self.line(&format!(
                    "{} {message}
  (still watching: fix it and save again)",
                    self.paint("1;31", "✗")
                ));
            }
            Event::IterationCancelled { reason } => {
                self.line(&format!("{} restarting: {reason}", self.paint("33", "↻")));
            }
            Event::Restored { objects, reason } => {
                self.line(&format!(
                    "{} {} running again with the previous image: {reason}",
                    self.paint("33", "↺"),
                    objects.join(", ")
                ));
            }
            Event::DevStopped { .. } => self.dev_stopped(e),
            _ => {}
        }
    }

    /// The one summary line of an iteration: what changed, what was done, and how long each step took.
    fn iteration(&mut self, e: &Event) {
        let Event::Iteration {
            changed,
            rebuilt,
            cached,
            synced,
            applied,
            pruned,
            built_ms,
            applied_ms,
            ready_ms,
        } = e
        else {
            return;
        };
        let what = match changed.len() {
            0 => "start".to_string(),
            1 => changed[0].clone(),
            n => format!("{} and {} more", changed[0], n - 1),
        };
        let mut parts = Vec::new();
        if !rebuilt.is_empty() {
            parts.push(format!("rebuilt {}", rebuilt.join(", ")));
        }
        if !cached.is_empty() {
            parts.push(format!("cached {}", cached.join(", ")));
        }
        if !synced.is_empty() {
            parts.push(format!("synced {}", synced.join(", ")));
        }
        parts.push(format!("applied {applied}"));
        if *pruned > 0 {
            parts.push(format!("pruned {pruned}"));
        }
        // Nothing is "built" in an iteration that only synced or took images from the cache.
        let first = if rebuilt.is_empty() {
            if synced.is_empty() {
                "images"
            } else {
                "synced"
            }
        } else {
            "built"
        };
        self.line(&format!(
            "{} {what}: {} │ {first} {} · applied {} · ready {}",
            self.paint("1;32", "⟳"),
            parts.join(", "),
            secs(*built_ms),
            secs(*applied_ms),
            secs(*ready_ms)
        ));
    }

    /// The last line of `dev`: how many iterations, and how fast a save reached a ready workload.
    fn dev_stopped(&mut self, e: &Event) {
        let Event::DevStopped {
            iterations,
            median_save_to_ready_ms,
            p90_save_to_ready_ms,
            saves,
            rebuilt,
            synced,
            cached,
        } = e
        else {
            return;
        };
        let mut line = format!("stopped after {}", plural(*iterations, "iteration"));
        if let Some(m) = median_save_to_ready_ms {
            let kinds: Vec<String> = [(rebuilt, "rebuilt"), (synced, "synced"), (cached, "cached")]
                .into_iter()
                .filter(|(n, _)| **n > 0)
                .map(|(n, what)| format!("{n} {what}"))
                .collect();
            line.push_str(&format!(
                "; {} ({}): median save → ready {}",
                plural(*saves, "save"),
                kinds.join(", "),
                secs(*m)
            ));
            if let Some(p90) = p90_save_to_ready_ms {
                line.push_str(&format!(", p90 {}", secs(*p90)));
            }
        }
        self.line(&line);
    }
}
