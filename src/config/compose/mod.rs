//! Config, compose import: a docker-compose file → the `RawConfig` of an equivalent devloop.yaml
//! (`build.artifacts` + `deploy.docker`), and everything that did not convert, each with its reason. Reads the
//! compose file, its `.env` and its env files; writes nothing and never drops a key without saying so.
//!
//! Paths in the compose file are relative to its directory; in the result they are relative to the directory
//! the devloop.yaml will be written to. `${VAR}` references are resolved the way compose resolves them (the
//! environment, then `.env`, then the reference's default) and every substitution is reported.

mod assembly;
mod build;
mod env;
mod interpolate;
mod service;
mod syntax;
mod variables;
mod volume;
mod words;

use std::path::{Path, PathBuf};

use serde_json::{Map, Value};

pub use crate::event::{Finding, Interpolated, ServiceOutcome, VariableSource as Source};
pub(in crate::config) use syntax::{normalize, relative};
use variables::{interpolate_value, project_of, read_dotenv, summarize_uses};

use super::deploy::RawContainer;
use super::raw::{RawArtifact, RawConfig};
use super::{ConfigError, invalid, kind};

/// The reason for a key devloop's Docker target has nothing like.
const GENERIC: &str = "devloop's Docker target has no equivalent";

/// What to convert and where the result will live.
pub struct Request<'a> {
    /// The compose file, as the user named it (messages use this text).
    pub file: &'a Path,
    /// The directory the devloop.yaml will be written to: relative paths in it resolve there.
    pub output_dir: &'a Path,
    /// The environment compose would interpolate from (before `.env`).
    pub env: &'a dyn Fn(&str) -> Option<String>,
}

/// The result of a conversion.
#[derive(Debug, Clone)]
pub struct Conversion {
    /// The project name (compose `name:`, else the compose file's directory): `metadata.name`.
    pub project: String,
    pub config: RawConfig,
    pub services: Vec<ServiceOutcome>,
    /// Keys that did not become devloop config.
    pub not_converted: Vec<Finding>,
    /// Keys that did, but behave differently under devloop.
    pub notes: Vec<Finding>,
    pub interpolated: Vec<Interpolated>,
    /// devloop profiles the conversion defines (from compose `profiles:`).
    pub profiles: Vec<String>,
}

/// Converts the compose file of `req` into devloop config.
pub fn convert(req: &Request<'_>) -> Result<Conversion, ConfigError> {
    let file = req.file.display().to_string();
    let text = std::fs::read_to_string(req.file).map_err(|source| ConfigError::Read {
        hint: (source.kind() == std::io::ErrorKind::NotFound).then(|| {
            "name the compose file, e.g. `devloop init --from-compose docker-compose.yml`"
                .to_string()
        }),
        file: file.clone(),
        source,
    })?;
    let mut doc = parse(&file, &text)?;
    let compose_dir = real_dir(
        &std::path::absolute(req.file)
            .ok()
            .and_then(|p| p.parent().map(Path::to_path_buf))
            .unwrap_or_else(|| PathBuf::from(".")),
    );
    let output_dir = real_dir(req.output_dir);
    let top = document(&file, &mut doc)?;

    let dotenv_path = compose_dir.join(".env");
    let dotenv = read_dotenv(&dotenv_path, req.env)?;
    let lookup_base = |name: &str| -> Option<(String, Source)> {
        (req.env)(name)
            .map(|v| (v, Source::Environment))
            .or_else(|| dotenv.get(name).map(|v| (v.clone(), Source::DotEnv)))
    };
    let mut uses: Vec<(String, interpolate::Use)> = Vec::new();
    // The project name first: it is itself available to interpolation as COMPOSE_PROJECT_NAME.
    let project = project_of(&file, top, &compose_dir, &lookup_base, &mut uses)?;
    let lookup = |name: &str| -> Option<(String, Source)> {
        lookup_base(name).or_else(|| {
            (name == "COMPOSE_PROJECT_NAME").then(|| (project.clone(), Source::ProjectName))
        })
    };
    for (key, value) in top.iter_mut() {
        if key != "name" {
            interpolate_value(&file, value, &mut vec![key.clone()], &lookup, &mut uses)?;
        }
    }

    let mut cx = Cx {
        file: file.clone(),
        compose_dir,
        output_dir,
        project: project.clone(),
        lookup: &lookup,
        not_converted: Vec::new(),
        notes: Vec::new(),
    };
    let drafts = cx.top_level(top)?;
    let assembled = cx.assemble(drafts);
    let interpolated = summarize_uses(uses);
    Ok(Conversion {
        project: project.clone(),
        config: assembled.config,
        services: assembled.services,
        not_converted: cx.not_converted,
        notes: cx.notes,
        interpolated,
        profiles: assembled.profiles,
    })
}

/// The document's top-level mapping, which must hold a `services:` mapping.
fn document<'d>(file: &str, doc: &'d mut Value) -> Result<&'d mut Map<String, Value>, ConfigError> {
    let top = match doc {
        Value::Object(top) => top,
        other => {
            return Err(invalid(
                file,
                "(document)",
                format!("expected a mapping with `services:`, found {}", kind(other)),
                Some("a compose file is a mapping with a top-level `services:` mapping"),
            ));
        }
    };
    match top.get("services") {
        Some(Value::Object(_)) => {}
        Some(other) => {
            return Err(invalid(
                file,
                "services",
                format!(
                    "expected a mapping of service names to services, found {}",
                    kind(other)
                ),
                Some("write `services:` with one `name:` mapping per service"),
            ));
        }
        None => {
            return Err(invalid(
                file,
                "services",
                "missing: this is not a compose file",
                Some("a compose file has a top-level `services:` mapping"),
            ));
        }
    }
    Ok(top)
}

impl Cx<'_> {
    /// The top-level keys: each service drafted, the volume declarations and the rest recorded.
    fn top_level(&mut self, top: &Map<String, Value>) -> Result<Vec<Draft>, ConfigError> {
        let mut drafts = Vec::new();
        let mut top_volumes: Option<Map<String, Value>> = None;
        for (key, value) in top.iter() {
            match key.as_str() {
                "version" | "name" => {}
                "services" => {
                    if let Value::Object(services) = value {
                        for (name, service) in services {
                            drafts.push(self.service(name, service)?);
                        }
                    }
                }
                "volumes" => match value {
                    Value::Object(m) => top_volumes = Some(m.clone()),
                    Value::Null => {}
                    other => {
                        return Err(invalid(
                            &self.file,
                            "volumes",
                            format!("expected a mapping of volume names, found {}", kind(other)),
                            None,
                        ));
                    }
                },
                "networks" => {
                    let reason = format!(
                        "devloop creates one network, `devloop-{}`, for all containers; these networks are not created",
                        self.project
                    );
                    self.skip("networks", reason);
                }
                "secrets" | "configs" => self.skip(
                    key,
                    "devloop has no secrets or configs; mount each file with a bind volume instead (`./file:/run/secrets/name:ro`)",
                ),
                "include" => self.skip(
                    "include",
                    "included compose files are not read: convert each one, or merge them first (`docker compose config`)",
                ),
                k if k.starts_with("x-") => self.skip(
                    k,
                    "extension field: not converted (YAML anchors that use it were expanded where they are used)",
                ),
                other => self.skip(other, "not a top-level key devloop converts"),
            }
        }
        if let Some(volumes) = &top_volumes {
            self.volume_declarations(volumes);
        }
        Ok(drafts)
    }
}

impl Conversion {
    /// The devloop.yaml text: a header saying where it came from and what became of every service, then the
    /// config. `compose_file` and `command` are shown as the user wrote them.
    pub fn to_yaml(&self, compose_file: &str, command: &str) -> Result<String, ConfigError> {
        let options = serde_saphyr::ser_options! { compact_list_indent: false };
        let body = serde_saphyr::to_string_with_options(&self.config, options).map_err(|e| {
            ConfigError::Parse {
                file: compose_file.to_string(),
                message: format!("cannot write the converted config: {e}"),
            }
        })?;
        let mut h = String::new();
        h.push_str(&format!(
            "# Generated from {compose_file} by `{command}`.\n"
        ));
        h.push_str("# `devloop run` builds and starts these containers on the local Docker daemon; `devloop dev` also\n");
        h.push_str("# rebuilds and restarts them on every change. Field reference: docs/config.md; the mapping: docs/init.md.\n");
        h.push_str("#\n# Services:\n");
        let width = self
            .services
            .iter()
            .map(|s| s.service.chars().count())
            .max()
            .unwrap_or(0);
        for s in &self.services {
            h.push_str(&format!(
                "#   {:width$}  {}\n",
                s.service,
                describe_outcome(s),
                width = width
            ));
        }
        let section = |h: &mut String, title: &str, items: &[Finding]| {
            if !items.is_empty() {
                h.push_str(&format!("#\n# {title}:\n"));
                for f in items {
                    h.push_str(&format!("#   {}: {}\n", f.at, f.reason));
                }
            }
        };
        section(&mut h, "Not converted", &self.not_converted);
        section(&mut h, "Converted with differences", &self.notes);
        if !self.interpolated.is_empty() {
            h.push_str(
                "#\n# Variables substituted as compose would (their values are written below):\n",
            );
            for i in &self.interpolated {
                h.push_str(&format!(
                    "#   ${{{}}} ({}): {}\n",
                    i.variable,
                    i.source.describe(),
                    i.used_in.join(", ")
                ));
            }
        }
        let newline = if body.ends_with('\n') { "" } else { "\n" };
        Ok(format!("{h}\n{body}{newline}"))
    }
}

/// One line saying what a service became, for the header and the summary.
pub fn describe_outcome(s: &ServiceOutcome) -> String {
    let Some(container) = &s.container else {
        return "not converted (see below)".to_string();
    };
    let image = match (&s.artifact, &s.built_by, &s.image) {
        (Some(a), Some(by), _) if *by == s.service => format!("image built as artifact `{a}`"),
        (Some(a), Some(by), _) => format!("runs artifact `{a}` (built for `{by}`)"),
        (_, _, Some(i)) => format!("image `{i}`"),
        _ => String::new(),
    };
    let profiles = if s.profiles.is_empty() {
        String::new()
    } else {
        format!(
            ", only with {}",
            s.profiles
                .iter()
                .map(|p| format!("`-p {p}`"))
                .collect::<Vec<_>>()
                .join(" or ")
        )
    };
    format!("→ container `{container}`, {image}{profiles}")
}

/// Reads the compose file like compose's YAML 1.2 reader: only `true`/`false` are booleans (`yes`, `no`, `on`,
/// `off` stay strings), and numbers spelled `0755` or `1_000` keep their text.
fn parse(file: &str, text: &str) -> Result<Value, ConfigError> {
    let options = serde_saphyr::options! {
        strict_booleans: true,
        leading_zero_numbers_as_strings: true,
        underscored_numbers_as_strings: true,
    };
    serde_saphyr::from_str_with_options::<Value>(text, options).map_err(|e| {
        let message = e.to_string();
        let message = message
            .strip_prefix("error: ")
            .unwrap_or(&message)
            .replace("<input>", file);
        ConfigError::Parse {
            file: file.to_string(),
            message,
        }
    })
}

/// A scalar as compose reads it into a string field (`8080`, `true`, `1.5` → their text).
fn scalar(v: &Value) -> Option<String> {
    match v {
        Value::String(s) => Some(s.clone()),
        Value::Number(n) => Some(n.to_string()),
        Value::Bool(b) => Some(b.to_string()),
        _ => None,
    }
}

/// The directory, with symbolic links resolved when it exists (so relative paths between two are right).
fn real_dir(dir: &Path) -> PathBuf {
    let abs = std::path::absolute(dir).unwrap_or_else(|_| dir.to_path_buf());
    abs.canonicalize().unwrap_or_else(|_| normalize(&abs))
}

/// What one service converted into, before artifacts, dependencies and profiles are resolved across services.
struct Draft {
    service: String,
    /// `None`: the service did not convert (the reason is already recorded).
    container: Option<RawContainer>,
    build: Option<BuildDraft>,
    /// The compose `image:` as written (after interpolation).
    image: Option<String>,
    depends_on: Vec<DependsDraft>,
    profiles: Vec<String>,
    stop_grace_secs: Option<u64>,
}

struct BuildDraft {
    /// The artifact's image name (the compose image without tag, or `<project>-<service>`).
    name: String,
    artifact: RawArtifact,
}

struct DependsDraft {
    service: String,
    condition: Option<String>,
    at: String,
}

struct Assembled {
    config: RawConfig,
    services: Vec<ServiceOutcome>,
    profiles: Vec<String>,
}

/// The state of one conversion.
struct Cx<'a> {
    file: String,
    compose_dir: PathBuf,
    output_dir: PathBuf,
    project: String,
    lookup: &'a interpolate::Lookup<'a>,
    not_converted: Vec<Finding>,
    notes: Vec<Finding>,
}

impl Cx<'_> {
    fn skip(&mut self, at: &str, reason: impl Into<String>) {
        self.not_converted.push(Finding {
            at: at.to_string(),
            reason: reason.into(),
        });
    }

    fn note(&mut self, at: &str, reason: impl Into<String>) {
        self.notes.push(Finding {
            at: at.to_string(),
            reason: reason.into(),
        });
    }

    /// A path of the compose file's directory, relative to the output directory.
    fn rebase(&self, p: &str) -> String {
        let path = Path::new(p);
        if path.is_absolute() {
            return p.to_string();
        }
        let abs = normalize(&self.compose_dir.join(path));
        relative(&abs, &self.output_dir).display().to_string()
    }
}

#[cfg(test)]
mod tests;
