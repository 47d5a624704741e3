//! Config, compose import: a docker-compose file → the `RawConfig` of an equivalent devloop.yaml
//! (`build.artifacts` + `deploy.docker`), and everything that did not convert, each with its reason. Reads the
//! compose file, its `.env` and its env files; writes nothing and never drops a key without saying so.
//!
//! Paths in the compose file are relative to its directory; in the result they are relative to the directory
//! the devloop.yaml will be written to. `${VAR}` references are resolved the way compose resolves them (the
//! environment, then `.env`, then the reference's default) and every substitution is reported.

mod interpolate;
mod service;
mod syntax;
mod words;

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};

use serde_json::{Map, Value};

pub use crate::event::{Finding, Interpolated, ServiceOutcome, VariableSource as Source};
use syntax::{normalize, project_name, relative};

use super::deploy::{RawContainer, RawDependsOn, RawDeploy, RawDockerDeploy};
use super::raw::{RawArtifact, RawBuild, RawConfig, RawMetadata, RawProfile};
use super::{API_VERSION, ConfigError};
use crate::tag;

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
    let Some(top) = doc.as_object_mut() else {
        return Err(invalid(
            &file,
            "(document)",
            format!("expected a mapping with `services:`, found {}", kind(&doc)),
            Some("a compose file is a mapping with a top-level `services:` mapping"),
        ));
    };
    match top.get("services") {
        Some(Value::Object(_)) => {}
        Some(other) => {
            return Err(invalid(
                &file,
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
                &file,
                "services",
                "missing: this is not a compose file",
                Some("a compose file has a top-level `services:` mapping"),
            ));
        }
    }

    let dotenv_path = compose_dir.join(".env");
    let dotenv = read_dotenv(&dotenv_path, req.env)?;
    let lookup_base = |name: &str| -> Option<(String, Source)> {
        (req.env)(name)
            .map(|v| (v, Source::Environment))
            .or_else(|| dotenv.get(name).map(|v| (v.clone(), Source::DotEnv)))
    };
    let mut uses: Vec<(String, interpolate::Use)> = Vec::new();
    // The project name first: it is itself available to interpolation as COMPOSE_PROJECT_NAME.
    let project = match top.get_mut("name") {
        Some(v) => {
            interpolate_value(&file, v, &mut vec!["name".into()], &lookup_base, &mut uses)?;
            match scalar(v) {
                Some(name) => project_name(&name),
                None => {
                    return Err(invalid(
                        &file,
                        "name",
                        format!("expected a string, found {}", kind(v)),
                        None,
                    ));
                }
            }
        }
        None => project_name(
            &compose_dir
                .file_name()
                .map(|n| n.to_string_lossy().to_string())
                .unwrap_or_default(),
        ),
    };
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
    let mut drafts = Vec::new();
    let mut top_volumes: Option<Map<String, Value>> = None;
    for (key, value) in top.iter() {
        match key.as_str() {
            "version" | "name" => {}
            "services" => {
                if let Value::Object(services) = value {
                    for (name, service) in services {
                        drafts.push(cx.service(name, service)?);
                    }
                }
            }
            "volumes" => match value {
                Value::Object(m) => top_volumes = Some(m.clone()),
                Value::Null => {}
                other => {
                    return Err(invalid(
                        &file,
                        "volumes",
                        format!("expected a mapping of volume names, found {}", kind(other)),
                        None,
                    ));
                }
            },
            "networks" => {
                let reason = format!(
                    "devloop creates one network, `devloop-{project}`, for all containers; these networks are not created"
                );
                cx.skip("networks", reason);
            }
            "secrets" | "configs" => cx.skip(
                key,
                "devloop has no secrets or configs; mount each file with a bind volume instead (`./file:/run/secrets/name:ro`)",
            ),
            "include" => cx.skip(
                "include",
                "included compose files are not read: convert each one, or merge them first (`docker compose config`)",
            ),
            k if k.starts_with("x-") => cx.skip(
                k,
                "extension field: not converted (YAML anchors that use it were expanded where they are used)",
            ),
            other => cx.skip(other, "not a top-level key devloop converts"),
        }
    }
    if let Some(volumes) = &top_volumes {
        cx.volume_declarations(volumes);
    }
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

fn invalid(file: &str, field: &str, message: impl Into<String>, hint: Option<&str>) -> ConfigError {
    ConfigError::Invalid {
        file: file.to_string(),
        field: field.to_string(),
        message: message.into(),
        hint: hint.map(str::to_string),
    }
}

/// `a list`, `a string \`x\``, … for messages.
fn kind(v: &Value) -> String {
    match v {
        Value::Null => "nothing".into(),
        Value::Bool(b) => format!("`{b}`"),
        Value::Number(n) => format!("`{n}`"),
        Value::String(s) => format!("the string `{s}`"),
        Value::Array(_) => "a list".into(),
        Value::Object(_) => "a mapping".into(),
    }
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

fn read_dotenv(
    path: &Path,
    env: &dyn Fn(&str) -> Option<String>,
) -> Result<BTreeMap<String, String>, ConfigError> {
    let Ok(text) = std::fs::read_to_string(path) else {
        return Ok(BTreeMap::new());
    };
    let lookup = |k: &str| env(k).map(|v| (v, Source::Environment));
    let mut uses = Vec::new();
    let entries = interpolate::read_env_file(&text, false, &lookup, &mut uses).map_err(
        |(line, message)| {
            invalid(
                &path.display().to_string(),
                &format!("line {line}"),
                message,
                Some("compose reads this file for `${VAR}` values; fix it like compose would require"),
            )
        },
    )?;
    Ok(entries
        .into_iter()
        .filter_map(|e| e.value.map(|v| (e.name, v)))
        .collect())
}

/// A field path as shown to users: `services.api.ports[0]` → `api.ports[0]`.
fn display_path(path: &[String]) -> String {
    let mut out = String::new();
    let skip = usize::from(path.first().map(String::as_str) == Some("services"));
    for seg in &path[skip..] {
        if seg.starts_with('[') || out.is_empty() {
            out.push_str(seg);
        } else {
            out.push('.');
            out.push_str(seg);
        }
    }
    out
}

fn full_path(path: &[String]) -> String {
    let mut out = String::new();
    for seg in path {
        if seg.starts_with('[') || out.is_empty() {
            out.push_str(seg);
        } else {
            out.push('.');
            out.push_str(seg);
        }
    }
    out
}

fn interpolate_value(
    file: &str,
    v: &mut Value,
    path: &mut Vec<String>,
    lookup: &interpolate::Lookup<'_>,
    uses: &mut Vec<(String, interpolate::Use)>,
) -> Result<(), ConfigError> {
    match v {
        Value::String(s) if s.contains('$') => {
            let mut found = Vec::new();
            let out = interpolate::interpolate(s, lookup, &mut found).map_err(|message| {
                invalid(
                    file,
                    &full_path(path),
                    message,
                    Some("compose interpolates `${VAR}` from the environment and `.env`; devloop init does the same"),
                )
            })?;
            let at = display_path(path);
            uses.extend(found.into_iter().map(|u| (at.clone(), u)));
            *s = out;
        }
        Value::Array(items) => {
            for (i, item) in items.iter_mut().enumerate() {
                path.push(format!("[{i}]"));
                interpolate_value(file, item, path, lookup, uses)?;
                path.pop();
            }
        }
        Value::Object(m) => {
            for (k, item) in m.iter_mut() {
                path.push(k.clone());
                interpolate_value(file, item, path, lookup, uses)?;
                path.pop();
            }
        }
        _ => {}
    }
    Ok(())
}

fn summarize_uses(uses: Vec<(String, interpolate::Use)>) -> Vec<Interpolated> {
    let mut out: Vec<Interpolated> = Vec::new();
    for (at, u) in uses {
        match out
            .iter_mut()
            .find(|i| i.variable == u.name && i.source == u.source)
        {
            Some(i) => {
                if !i.used_in.contains(&at) {
                    i.used_in.push(at);
                }
            }
            None => out.push(Interpolated {
                variable: u.name,
                source: u.source,
                used_in: vec![at],
            }),
        }
    }
    out
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

    /// Resolves artifacts shared between services, image references to built images, dependencies and profiles.
    fn assemble(&mut self, drafts: Vec<Draft>) -> Assembled {
        // Artifacts by name, first definition wins; compose image references of built images → artifact names.
        let mut artifacts: Vec<RawArtifact> = Vec::new();
        let mut built_refs: BTreeMap<(String, String), String> = BTreeMap::new();
        let mut artifact_of: BTreeMap<String, String> = BTreeMap::new();
        // The first service (in file order) whose build makes each artifact.
        let mut builder_of: BTreeMap<String, String> = BTreeMap::new();
        for d in &drafts {
            let Some(b) = &d.build else { continue };
            if d.container.is_none() {
                continue;
            }
            match artifacts.iter().find(|a| a.image == b.name) {
                Some(existing) => {
                    if !same_build(existing, &b.artifact) {
                        let first = builder_of.get(&b.name).cloned().unwrap_or_default();
                        self.note(
                            &format!("{}.build", d.service),
                            format!("builds the same image `{}` as `{first}` but differently; devloop builds it once, as `{first}` does", b.name),
                        );
                    }
                }
                None => artifacts.push(b.artifact.clone()),
            }
            artifact_of.insert(d.service.clone(), b.name.clone());
            builder_of
                .entry(b.name.clone())
                .or_insert_with(|| d.service.clone());
            if let Some(img) = &d.image
                && let Some(key) = image_key(img)
            {
                built_refs.insert(key, b.name.clone());
            }
            if let Some(key) = image_key(&b.name) {
                built_refs.entry(key).or_insert_with(|| b.name.clone());
            }
        }
        let converted: BTreeMap<String, Vec<String>> = drafts
            .iter()
            .filter(|d| d.container.is_some())
            .map(|d| (d.service.clone(), d.profiles.clone()))
            .collect();
        // Stop grace period: one for all containers.
        let graces: Vec<(String, u64)> = drafts
            .iter()
            .filter_map(|d| d.stop_grace_secs.map(|g| (d.service.clone(), g)))
            .collect();
        // No container may be killed sooner than under compose (whose default is 10s): the longest wins.
        let effective = |d: &Draft| d.stop_grace_secs.unwrap_or(10);
        let grace = (!graces.is_empty()).then(|| {
            drafts
                .iter()
                .filter(|d| d.container.is_some())
                .map(effective)
                .max()
                .unwrap_or(10)
        });
        if let Some(g) = grace {
            let all_same = drafts
                .iter()
                .filter(|d| d.container.is_some())
                .all(|d| effective(d) == g);
            if !all_same {
                for (service, _) in &graces {
                    self.note(
                        &format!("{service}.stop_grace_period"),
                        format!("devloop has one `stopGracePeriod` for all containers: {g}s, the longest of them (compose's default is 10s)"),
                    );
                }
            }
        }

        let mut base_containers = Vec::new();
        let mut profiled: BTreeMap<String, (Vec<RawContainer>, Vec<String>)> = BTreeMap::new();
        let mut outcomes = Vec::new();
        for d in drafts {
            let Some(mut c) = d.container else {
                outcomes.push(ServiceOutcome {
                    service: d.service,
                    container: None,
                    image: None,
                    artifact: None,
                    built_by: None,
                    profiles: Vec::new(),
                });
                continue;
            };
            if d.build.is_none()
                && let Some(key) = image_key(&c.image)
                && let Some(artifact) = built_refs.get(&key)
            {
                c.image = artifact.clone();
            }
            for dep in d.depends_on {
                let Some(dep_profiles) = converted.get(dep.service.as_str()) else {
                    self.skip(
                        &dep.at,
                        format!(
                            "`{}` is not converted (or not a service of this file)",
                            dep.service
                        ),
                    );
                    continue;
                };
                // The dependency must run whenever this container runs.
                let runs = dep_profiles.is_empty()
                    || (!d.profiles.is_empty()
                        && d.profiles.iter().all(|p| dep_profiles.contains(p)));
                if !runs {
                    self.skip(
                        &dep.at,
                        format!(
                            "`{}` runs only with {}, this container also without",
                            dep.service,
                            dep_profiles
                                .iter()
                                .map(|p| format!("`-p {p}`"))
                                .collect::<Vec<_>>()
                                .join(" or ")
                        ),
                    );
                    continue;
                }
                c.depends_on.push(RawDependsOn {
                    name: dep.service,
                    condition: dep.condition,
                });
            }
            let runs = artifacts
                .iter()
                .any(|a| a.image == c.image)
                .then(|| c.image.clone());
            let built_by = runs.as_ref().and_then(|a| {
                if artifact_of.get(&d.service) == Some(a) {
                    Some(d.service.clone())
                } else {
                    builder_of.get(a).cloned()
                }
            });
            outcomes.push(ServiceOutcome {
                service: d.service.clone(),
                container: Some(c.name.clone()),
                image: Some(c.image.clone()),
                artifact: runs,
                built_by,
                profiles: d.profiles.clone(),
            });
            if d.profiles.is_empty() {
                base_containers.push(c);
            } else {
                for p in &d.profiles {
                    let entry = profiled.entry(p.clone()).or_default();
                    entry.0.push(c.clone());
                    if let Some(a) = artifact_of.get(&d.service)
                        && !entry.1.contains(a)
                    {
                        entry.1.push(a.clone());
                    }
                }
            }
        }
        // An artifact used only by profiled containers is built only in those profiles.
        let base_images: BTreeSet<&str> =
            base_containers.iter().map(|c| c.image.as_str()).collect();
        let (base_artifacts, profile_only): (Vec<RawArtifact>, Vec<RawArtifact>) = artifacts
            .into_iter()
            .partition(|a| base_images.contains(a.image.as_str()));
        let profiles: Vec<RawProfile> = profiled
            .iter()
            .map(|(name, (containers, arts))| {
                let own: Vec<RawArtifact> = profile_only
                    .iter()
                    .filter(|a| arts.contains(&a.image))
                    .cloned()
                    .collect();
                RawProfile {
                    name: name.clone(),
                    build: (!own.is_empty()).then(|| RawBuild {
                        artifacts: Some(own),
                        ..Default::default()
                    }),
                    deploy: Some(RawDeploy {
                        docker: Some(RawDockerDeploy {
                            containers: containers.clone(),
                            stop_grace_period: None,
                        }),
                    }),
                    ..Default::default()
                }
            })
            .collect();
        let profile_names = profiles.iter().map(|p| p.name.clone()).collect();
        let config = RawConfig {
            api_version: Some(API_VERSION.to_string()),
            kind: Some("Config".to_string()),
            metadata: Some(RawMetadata {
                name: Some(self.project.clone()),
            }),
            build: (!base_artifacts.is_empty()).then(|| RawBuild {
                artifacts: Some(base_artifacts),
                ..Default::default()
            }),
            manifests: None,
            deploy: Some(RawDeploy {
                docker: Some(RawDockerDeploy {
                    containers: base_containers,
                    stop_grace_period: grace,
                }),
            }),
            port_forward: None,
            profiles: (!profiles.is_empty()).then_some(profiles),
        };
        Assembled {
            config,
            services: outcomes,
            profiles: profile_names,
        }
    }
}

/// Two builds of the same image are the same build when everything but the name matches.
fn same_build(a: &RawArtifact, b: &RawArtifact) -> bool {
    serde_json::to_value(a).ok().map(strip_image) == serde_json::to_value(b).ok().map(strip_image)
}

fn strip_image(mut v: Value) -> Value {
    if let Value::Object(m) = &mut v {
        m.remove("image");
    }
    v
}

/// `(normalized repository, tag)` with Docker's default tag, so `shop-api` and `docker.io/library/shop-api:latest`
/// are the same image.
fn image_key(reference: &str) -> Option<(String, String)> {
    let r = tag::parse(reference).ok()?;
    if r.digest.is_some() {
        return None;
    }
    Some((
        tag::normalize_repository(&r.repository),
        r.tag.unwrap_or_else(|| "latest".into()),
    ))
}

#[cfg(test)]
mod tests;
