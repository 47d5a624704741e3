//! Config, Skaffold import: a skaffold.yaml (v2beta* through v4beta*, several configs per file, `requires` of
//! other files) → the `RawConfig` of an equivalent devloop.yaml, and every field that did not convert with its
//! reason. Reads the Skaffold files only; writes nothing and never drops a field without saying so.
//!
//! Paths in a Skaffold config are relative to its file's directory; in the result they are relative to the
//! directory the devloop.yaml will be written to. Profiles named with `-p` are applied before converting, as
//! `skaffold -p` would; every other profile becomes a devloop profile: the Skaffold config with that profile
//! active is converted too, and the devloop profile holds what differs, each path listed under `replace:`.

mod build;
mod deploy;
mod documents;
mod manifests;
mod patch;
mod profiles;
mod tag_policy;
mod templates;

use std::path::{Path, PathBuf};

use serde_json::{Map, Value};

use super::compose::{normalize, relative};
use super::hooks::RawHooks;
use super::manifests::{Helm, HelmRelease, Kustomize, Manifests};
use super::raw::{RawArtifact, RawBuild, RawConfig, RawMetadata, RawPortForward, RawTagPolicy};
use super::{ConfigError, invalid, kind};
pub use crate::event::Finding;
use documents::{Doc, Layout};

/// What to convert and where the result will live.
pub struct Request<'a> {
    /// The Skaffold config, as the user named it (messages use this text).
    pub file: &'a Path,
    /// The directory the devloop.yaml will be written to: relative paths in it resolve there.
    pub output_dir: &'a Path,
    /// Profiles to apply before converting (`-p`, comma-separated or repeated), as `skaffold -p` would.
    pub profiles: &'a [String],
}

/// The result of a conversion.
#[derive(Debug, Clone)]
pub struct Conversion {
    /// `metadata.name` of the first config, when it is a valid project name.
    pub project: Option<String>,
    pub config: RawConfig,
    /// The configs read, dependencies first (`file` or `file (config name)`).
    pub configs: Vec<String>,
    /// Fields that did not become devloop config.
    pub not_converted: Vec<Finding>,
    /// Fields that did, but behave differently under devloop.
    pub notes: Vec<Finding>,
    /// The Skaffold profiles applied before converting (`-p`).
    pub applied: Vec<String>,
    /// devloop profiles the conversion defines (the other Skaffold profiles).
    pub profiles: Vec<String>,
}

/// Converts the Skaffold config of `req` (and the configs it requires) into devloop config.
pub fn convert(req: &Request<'_>) -> Result<Conversion, ConfigError> {
    let file = req.file.display().to_string();
    let loaded = documents::load(req.file)?;
    let docs = loaded.docs;
    let output_dir = real_dir(req.output_dir);
    let mut defined: Vec<String> = Vec::new();
    for d in &docs {
        for n in profiles::names(&d.value) {
            if !defined.contains(&n) {
                defined.push(n);
            }
        }
    }
    let applied = selected(&file, req.profiles, &defined)?;
    let mut cx = Cx::new(&output_dir, docs.len() > 1);
    cx.not_converted.extend(loaded.not_converted);
    let mut base = convert_all(&mut cx, &docs, &applied);
    let mut devloop_profiles = Vec::new();
    for name in defined.iter().filter(|p| !applied.contains(p)) {
        let mut pcx = Cx::new(&output_dir, docs.len() > 1);
        let active: Vec<String> = applied
            .iter()
            .cloned()
            .chain(std::iter::once(name.clone()))
            .collect();
        let with = convert_all(&mut pcx, &docs, &active);
        cx.not_converted.extend(profiles::new_findings(
            name,
            &cx.not_converted,
            pcx.not_converted,
        ));
        cx.notes
            .extend(profiles::new_findings(name, &cx.notes, pcx.notes));
        let mut p = profiles::difference(name, &base, &with).map_err(|e| {
            invalid(
                &file,
                format!("profiles.{name}"),
                format!("cannot convert the profile: {e}"),
                None,
            )
        })?;
        // Its activation: where it is first defined.
        if let Some((doc, (i, raw))) = docs.iter().find_map(|d| {
            d.value
                .get("profiles")
                .and_then(Value::as_array)
                .and_then(|l| {
                    l.iter()
                        .enumerate()
                        .find(|(_, p)| p.get("name").and_then(Value::as_str) == Some(name))
                        .map(|x| (d, x))
                })
        }) {
            cx.prefix = cx.prefix_for(doc);
            if let Value::Object(raw) = raw {
                p.activation = profiles::activation(&mut cx, &format!("profiles[{i}]"), raw);
            }
        }
        devloop_profiles.push(p);
    }
    let names: Vec<String> = devloop_profiles.iter().map(|p| p.name.clone()).collect();
    if !devloop_profiles.is_empty() {
        base.profiles = Some(devloop_profiles);
    }
    let project = docs
        .iter()
        .find(|d| d.file == file)
        .and_then(|d| d.name.clone());
    let project = match project {
        Some(n) if super::is_label_value(&n) => Some(n),
        Some(n) => {
            cx.prefix.clear();
            cx.skip(
                "metadata.name",
                format!("`{n}` is not a valid devloop project name; the directory's name is used"),
            );
            None
        }
        None => None,
    };
    if let Some(n) = &project {
        base.metadata = Some(RawMetadata {
            name: Some(n.clone()),
        });
    }
    Ok(Conversion {
        project,
        config: base,
        configs: docs.iter().map(Doc::label).collect(),
        not_converted: cx.not_converted,
        notes: cx.notes,
        applied,
        profiles: names,
    })
}

/// The profiles `-p` names (comma-separated or repeated), each defined by one of the configs.
fn selected(
    file: &str,
    requested: &[String],
    defined: &[String],
) -> Result<Vec<String>, ConfigError> {
    let applied: Vec<String> = requested
        .iter()
        .flat_map(|p| p.split(','))
        .map(str::trim)
        .filter(|p| !p.is_empty())
        .map(str::to_string)
        .collect();
    for p in &applied {
        if !defined.contains(p) {
            return Err(invalid(
                file,
                "profiles",
                format!("unknown profile `{p}` (from `-p`)"),
                Some(&if defined.is_empty() {
                    "the Skaffold configs define no profiles".to_string()
                } else {
                    format!(
                        "defined profiles: {}",
                        defined
                            .iter()
                            .map(|p| format!("`{p}`"))
                            .collect::<Vec<_>>()
                            .join(", ")
                    )
                }),
            ));
        }
    }
    Ok(applied)
}

/// Converts every config with the `active` profiles (and those their requirers activate) applied, and joins them.
fn convert_all(cx: &mut Cx, docs: &[Doc], active: &[String]) -> RawConfig {
    // A config's requirers come after it: decide their profiles first.
    let mut sets: Vec<Vec<String>> = vec![Vec::new(); docs.len()];
    for i in (0..docs.len()).rev() {
        let here = profiles::names(&docs[i].value);
        let mut set: Vec<String> = active
            .iter()
            .filter(|p| here.contains(p))
            .cloned()
            .collect();
        for (requirer, name, by) in &docs[i].activated {
            if (by.is_empty() || by.iter().any(|b| sets[*requirer].contains(b)))
                && !set.contains(name)
            {
                set.push(name.clone());
            }
        }
        sets[i] = set;
    }
    let mut parts = Vec::new();
    for (doc, set) in docs.iter().zip(&sets) {
        cx.prefix = cx.prefix_for(doc);
        let value = profiles::apply(cx, &doc.value, set);
        parts.push(convert_doc(cx, doc, &value));
    }
    cx.prefix.clear();
    assemble(cx, parts)
}

/// One config → its part of the devloop config.
fn convert_doc(cx: &mut Cx, doc: &Doc, value: &Map<String, Value>) -> Part {
    let mut part = Part::default();
    for (key, v) in value {
        match key.as_str() {
            "apiVersion" | "kind" | "requires" | "profiles" => {}
            "metadata" => {
                for k in v.as_object().into_iter().flatten().map(|(k, _)| k).filter(|k| *k != "name") {
                    cx.skip(&format!("metadata.{k}"), "devloop labels what it deploys itself (`devloop.dev/project`)");
                }
            }
            "build" => build::convert(cx, &doc.dir, v, &mut part),
            "manifests" if doc.layout == Layout::V3 => manifests::convert(cx, &doc.dir, v, &mut part),
            "deploy" => deploy::convert(cx, &doc.dir, doc.layout, v, &mut part),
            "portForward" => deploy::port_forwards(cx, v, &mut part),
            "test" => cx.skip("test", "devloop runs no image tests (container-structure-test, custom tests)"),
            "verify" => cx.skip("verify", "devloop runs no verification containers; a `deploy.hooks.after` command can"),
            "customActions" => cx.skip("customActions", "devloop has no custom actions"),
            "resourceSelector" => cx.skip(
                "resourceSelector",
                "devloop rewrites images in the kinds it knows; list other kinds' image fields in `manifests.images`",
            ),
            other => cx.skip(other, "not a top-level field devloop converts"),
        }
    }
    part
}

/// What one config converts into, before the configs are joined.
#[derive(Default)]
struct Part {
    artifacts: Vec<RawArtifact>,
    tag_policy: Option<RawTagPolicy>,
    push: Option<bool>,
    use_buildkit: Option<bool>,
    concurrency: Option<u32>,
    platform: Option<String>,
    raw_yaml: Vec<String>,
    kustomize_paths: Vec<PathBuf>,
    /// Each `buildArgs` with where it was written.
    kustomize_args: Vec<(String, Vec<String>)>,
    helm_releases: Vec<HelmRelease>,
    hooks: RawHooks,
    port_forward: Vec<RawPortForward>,
}

/// The configs' parts joined in order (dependencies first); where devloop has one value for the project and two
/// configs set different ones, the first is kept and the others are recorded.
fn assemble(cx: &mut Cx, parts: Vec<Part>) -> RawConfig {
    let mut out = Part::default();
    for p in parts {
        out.artifacts.extend(p.artifacts);
        one(
            cx,
            "build.tagPolicy",
            &mut out.tag_policy,
            p.tag_policy,
            |t| serde_json::to_string(t).unwrap_or_default(),
        );
        one(
            cx,
            "build.local.push",
            &mut out.push,
            p.push,
            ToString::to_string,
        );
        one(
            cx,
            "build.local.useBuildkit",
            &mut out.use_buildkit,
            p.use_buildkit,
            ToString::to_string,
        );
        one(
            cx,
            "build.local.concurrency",
            &mut out.concurrency,
            p.concurrency,
            ToString::to_string,
        );
        one(
            cx,
            "build.platforms",
            &mut out.platform,
            p.platform,
            Clone::clone,
        );
        out.raw_yaml.extend(p.raw_yaml);
        out.kustomize_paths.extend(p.kustomize_paths);
        out.kustomize_args.extend(p.kustomize_args);
        out.helm_releases.extend(p.helm_releases);
        out.hooks.before.extend(p.hooks.before);
        out.hooks.after.extend(p.hooks.after);
        out.port_forward.extend(p.port_forward);
    }
    let mut kustomize_args: Vec<String> = Vec::new();
    for (at, args) in out.kustomize_args {
        if kustomize_args.is_empty() {
            kustomize_args = args;
        } else if kustomize_args != args {
            cx.skip(
                &at,
                format!(
                    "devloop passes one set of kustomize arguments to every path: `{}` is used",
                    kustomize_args.join(" ")
                ),
            );
        }
    }
    let build = RawBuild {
        artifacts: (!out.artifacts.is_empty()).then_some(out.artifacts),
        tag_policy: out.tag_policy,
        concurrency: out.concurrency,
        use_buildkit: out.use_buildkit,
        platform: out.platform,
        push: out.push,
    };
    let manifests = Manifests {
        raw_yaml: out.raw_yaml,
        kustomize: (!out.kustomize_paths.is_empty()).then_some(Kustomize {
            paths: out.kustomize_paths,
            build_args: kustomize_args,
            binary: None,
        }),
        helm: (!out.helm_releases.is_empty()).then_some(Helm {
            binary: None,
            releases: out.helm_releases,
        }),
        ..Default::default()
    };
    let hooks = (!out.hooks.before.is_empty() || !out.hooks.after.is_empty()).then_some(out.hooks);
    RawConfig {
        api_version: Some(super::API_VERSION.into()),
        kind: Some("Config".into()),
        metadata: None,
        build: (build.artifacts.is_some()
            || serde_json::to_value(&build).is_ok_and(|v| v != Value::Object(Map::new())))
        .then_some(build),
        manifests: (manifests != Manifests::default()).then_some(manifests),
        deploy: hooks.map(|h| super::deploy::RawDeploy {
            kubernetes: None,
            docker: None,
            hooks: Some(h),
        }),
        port_forward: (!out.port_forward.is_empty()).then_some(out.port_forward),
        profiles: None,
    }
}

/// Keeps the first value set for a project-wide setting; a different later one is recorded.
fn one<T>(cx: &mut Cx, at: &str, slot: &mut Option<T>, v: Option<T>, show: impl Fn(&T) -> String) {
    match (slot.as_ref(), v) {
        (None, v) => *slot = v,
        (Some(a), Some(b)) if show(a) != show(&b) => cx.skip(
            at,
            format!(
                "another config sets `{}`; devloop has one value for the project: `{}` is used",
                show(&b),
                show(a)
            ),
        ),
        _ => {}
    }
}

impl Conversion {
    /// The devloop.yaml text: a header saying where it came from and what did not convert, then the config.
    pub fn to_yaml(&self, skaffold_file: &str, command: &str) -> Result<String, ConfigError> {
        let options = serde_saphyr::ser_options! { compact_list_indent: false };
        let body = serde_saphyr::to_string_with_options(&self.config, options).map_err(|e| {
            ConfigError::Parse {
                file: skaffold_file.to_string(),
                message: format!("cannot write the converted config: {e}"),
            }
        })?;
        let mut h = String::new();
        h.push_str(&format!(
            "# Generated from {skaffold_file} by `{command}`.\n"
        ));
        h.push_str(
            "# Field reference: docs/config.md; the mapping from Skaffold: docs/skaffold.md.\n",
        );
        if self.configs.len() > 1 {
            h.push_str("#\n# Skaffold configs (dependencies first):\n");
            for c in &self.configs {
                h.push_str(&format!("#   {c}\n"));
            }
        }
        if !self.applied.is_empty() {
            h.push_str(&format!(
                "#\n# Skaffold profiles applied: {}\n",
                self.applied.join(", ")
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
        let newline = if body.ends_with('\n') { "" } else { "\n" };
        Ok(format!("{h}\n{body}{newline}"))
    }
}

/// The state of one conversion: where the result goes and what was found.
struct Cx {
    output_dir: PathBuf,
    /// Several configs: findings name theirs.
    several: bool,
    prefix: String,
    not_converted: Vec<Finding>,
    notes: Vec<Finding>,
}

impl Cx {
    fn new(output_dir: &Path, several: bool) -> Self {
        Cx {
            output_dir: output_dir.to_path_buf(),
            several,
            prefix: String::new(),
            not_converted: Vec::new(),
            notes: Vec::new(),
        }
    }

    fn prefix_for(&self, doc: &Doc) -> String {
        if self.several {
            format!("{}: ", doc.label())
        } else {
            String::new()
        }
    }

    fn skip(&mut self, at: &str, reason: impl Into<String>) {
        let f = Finding {
            at: format!("{}{at}", self.prefix),
            reason: reason.into(),
        };
        if !self.not_converted.contains(&f) {
            self.not_converted.push(f);
        }
    }

    fn note(&mut self, at: &str, reason: impl Into<String>) {
        let f = Finding {
            at: format!("{}{at}", self.prefix),
            reason: reason.into(),
        };
        if !self.notes.contains(&f) {
            self.notes.push(f);
        }
    }

    /// A path of a config in `dir`, relative to the output directory (globs keep their pattern).
    fn rebase(&self, dir: &Path, p: &str) -> String {
        let path = Path::new(p);
        if path.is_absolute() {
            return p.to_string();
        }
        let abs = normalize(&dir.join(path));
        relative(&abs, &self.output_dir).display().to_string()
    }
}

/// The directory, with symbolic links resolved when it exists (so relative paths between two are right).
fn real_dir(dir: &Path) -> PathBuf {
    let abs = std::path::absolute(dir).unwrap_or_else(|_| dir.to_path_buf());
    abs.canonicalize().unwrap_or_else(|_| normalize(&abs))
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests;
