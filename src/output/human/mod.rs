//! Output, human: events → progress bars and lines on stderr (indicatif when stderr is a terminal, plain lines
//! otherwise; `NO_COLOR` respected). Never writes stdout.

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

    pub fn event(&mut self, e: &Event) {
        match e {
            Event::ConfigLoaded { profiles, .. } => {
                for p in profiles {
                    self.line(&format!(
                        "profile {} active ({})",
                        self.paint("1", &p.name),
                        p.reason
                    ));
                }
            }
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
            Event::BuildOutput { image, line } => {
                if self.verbose {
                    self.line(&format!("  {image} │ {line}"));
                }
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
            Event::PushStarted { image, .. } => {
                if self.tty {
                    self.bar(image).set_message("pushing");
                }
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
            Event::Log {
                pod,
                container,
                workload,
                line,
            } => {
                const COLOURS: [&str; 6] = ["36", "35", "33", "32", "34", "31"];
                let prefix = self.paint(
                    COLOURS[crate::logs::colour_of(workload)],
                    &format!("{pod}/{container} │"),
                );
                self.line(&format!("{prefix} {line}"));
            }
            Event::LoadStarted { image, nodes, .. } => {
                if self.tty {
                    self.bar(image).set_message(format!(
                        "loading into {} node{}",
                        nodes.len(),
                        if nodes.len() == 1 { "" } else { "s" }
                    ));
                }
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
            Event::Synced {
                image,
                files,
                containers,
                duration_ms,
            } => {
                self.line(&format!(
                    "{} {image}: synced {} into {containers} container{} in {}",
                    self.paint("32", "⇄"),
                    match files.len() {
                        1 => files[0].clone(),
                        n => format!("{n} files"),
                    },
                    if *containers == 1 { "" } else { "s" },
                    secs(*duration_ms)
                ));
            }
            Event::Iteration {
                changed,
                rebuilt,
                cached,
                synced,
                applied,
                pruned,
                built_ms,
                applied_ms,
                ready_ms,
            } => {
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
            Event::DevStopped {
                iterations,
                median_save_to_ready_ms,
                p90_save_to_ready_ms,
                saves,
                rebuilt,
                synced,
                cached,
            } => {
                let mut line = format!("stopped after {}", plural(*iterations, "iteration"));
                if let Some(m) = median_save_to_ready_ms {
                    let kinds: Vec<String> =
                        [(rebuilt, "rebuilt"), (synced, "synced"), (cached, "cached")]
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
            Event::Warning { message } => {
                self.line(&format!("{} {message}", self.paint("1;33", "warning:")));
            }
            Event::InitComplete {
                compose_file,
                file,
                services,
                containers,
                artifacts,
                not_converted,
                notes,
                interpolated,
                ..
            } => {
                let what = if file == "-" {
                    format!("converted {compose_file} (printed on stdout)")
                } else {
                    format!("wrote {file} from {compose_file}")
                };
                self.line(&format!(
                    "{} {what}: {} → {}, {}",
                    self.paint("32", "✓"),
                    plural(services.len(), "service"),
                    plural(*containers, "container"),
                    plural(*artifacts, "artifact")
                ));
                let list = |p: &Self, title: &str, items: &[crate::config::compose::Finding]| {
                    if !items.is_empty() {
                        p.line(&p.paint("1", title));
                        for f in items {
                            p.line(&format!("  {}: {}", f.at, f.reason));
                        }
                    }
                };
                list(self, "not converted:", not_converted);
                list(self, "converted with differences:", notes);
                if !interpolated.is_empty() {
                    self.line(&self.paint(
                        "1",
                        "variables substituted as compose would (their values are in the file):",
                    ));
                    for i in interpolated {
                        self.line(&format!(
                            "  ${{{}}} ({}): {}",
                            i.variable,
                            i.source.describe(),
                            i.used_in.join(", ")
                        ));
                    }
                }
            }
        }
    }
}

/// `1 service`, `3 services`.
fn plural(n: usize, noun: &str) -> String {
    if n == 1 {
        format!("1 {noun}")
    } else {
        format!("{n} {noun}s")
    }
}

/// `12.3 MB` (decimal units, as `docker images` shows sizes).
fn size(bytes: u64) -> String {
    match bytes {
        0..1_000 => format!("{bytes} B"),
        1_000..1_000_000 => format!("{:.1} kB", bytes as f64 / 1e3),
        1_000_000..1_000_000_000 => format!("{:.1} MB", bytes as f64 / 1e6),
        _ => format!("{:.1} GB", bytes as f64 / 1e9),
    }
}

fn secs(ms: u64) -> String {
    if ms < 1000 {
        format!("{ms} ms")
    } else {
        format!("{:.1} s", ms as f64 / 1000.0)
    }
}
