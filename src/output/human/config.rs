//! Output, human: config events (the active profiles; what `devloop init --from-compose` or `--from-skaffold`
//! converted, left out or substituted) → lines on stderr. Never writes stdout (the converted devloop.yaml is data, printed elsewhere).

use super::Printer;
use super::quantity::plural;
use crate::event::Event;

impl Printer {
    /// Prints a config or init event; other events are not its concern.
    pub(super) fn config_event(&mut self, e: &Event) {
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
            Event::InitComplete { .. } => self.init_complete(e),
            Event::InitSkaffold { .. } => self.init_skaffold(e),
            _ => {}
        }
    }

    /// What `devloop init --from-compose` did: the counts, then each finding and substituted variable.
    fn init_complete(&mut self, e: &Event) {
        let Event::InitComplete {
            compose_file,
            file,
            services,
            containers,
            artifacts,
            not_converted,
            notes,
            interpolated,
            ..
        } = e
        else {
            return;
        };
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
        self.findings(
            "not converted:",
            not_converted
                .iter()
                .map(|f| (f.at.as_str(), f.reason.as_str())),
        );
        self.findings(
            "converted with differences:",
            notes.iter().map(|f| (f.at.as_str(), f.reason.as_str())),
        );
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

    /// What `devloop init --from-skaffold` did: the counts, then each finding.
    fn init_skaffold(&mut self, e: &Event) {
        let Event::InitSkaffold {
            skaffold_file,
            file,
            configs,
            artifacts,
            not_converted,
            notes,
            applied,
            profiles,
            ..
        } = e
        else {
            return;
        };
        let what = if file == "-" {
            format!("converted {skaffold_file} (printed on stdout)")
        } else {
            format!("wrote {file} from {skaffold_file}")
        };
        let applied = if applied.is_empty() {
            String::new()
        } else {
            format!(" with Skaffold profile {} applied", applied.join(", "))
        };
        self.line(&format!(
            "{} {what}{applied}: {} → {}, {}",
            self.paint("32", "✓"),
            plural(configs.len(), "Skaffold config"),
            plural(*artifacts, "artifact"),
            plural(profiles.len(), "profile")
        ));
        self.findings(
            "not converted:",
            not_converted
                .iter()
                .map(|f| (f.at.as_str(), f.reason.as_str())),
        );
        self.findings(
            "converted with differences:",
            notes.iter().map(|f| (f.at.as_str(), f.reason.as_str())),
        );
    }

    /// A titled list of `at: reason` findings; nothing when there are none.
    fn findings<'a>(&self, title: &str, items: impl Iterator<Item = (&'a str, &'a str)>) {
        let mut items = items.peekable();
        if items.peek().is_some() {
            self.line(&self.paint("1", title));
            for (at, reason) in items {
                self.line(&format!("  {at}: {reason}"));
            }
        }
    }
}
