//! Config, `build:` section: the raw artifacts and tag policy → validated `BuildConfig` (paths resolved and
//! checked to exist, image names parsed, `requires` resolved and free of cycles, templates well formed). Reads
//! nothing but whether the paths it names exist.

use std::collections::{BTreeMap, HashMap};
use std::path::{Path, PathBuf};

use serde::Serialize;

use super::hooks::{Hooks, Step, validate_build_hooks, validate_hooks};
use super::raw::{RawArtifact, RawBuild, RawTagPolicy};
use super::{ConfigError, invalid};
use crate::tag::{self, GitVariant, TagPolicy};

/// `build:` validated.
#[derive(Debug, Clone)]
pub struct BuildConfig {
    pub artifacts: Vec<Artifact>,
    pub tag_policy: TagPolicy,
    /// Maximum number of builds at once; 0 means no limit.
    pub concurrency: usize,
    pub use_buildkit: bool,
    pub platform: Option<String>,
    /// `build.push`: push after building even without `--push`.
    pub push: bool,
}

/// One artifact to build.
#[derive(Debug, Clone, Serialize)]
pub struct Artifact {
    /// The image name as written in the config (a repository without tag), e.g. `app-api`.
    pub image: String,
    /// Absolute context directory.
    pub context: PathBuf,
    /// Absolute Dockerfile path (may be outside the context).
    pub dockerfile: PathBuf,
    pub target: Option<String>,
    /// Build-arg templates, evaluated at build time (see `template`).
    pub build_args: BTreeMap<String, String>,
    pub requires: Vec<Require>,
    /// `sync.manual` rules (not part of what the image is built from).
    #[serde(skip)]
    pub sync: Vec<SyncRule>,
    /// `sync.infer` globs: matching files go where the Dockerfile's `COPY`/`ADD` put them.
    #[serde(skip)]
    pub sync_infer: Vec<InferGlob>,
    /// `sync.hooks`: run before and after each sync of this artifact.
    #[serde(skip)]
    pub sync_hooks: Hooks,
    /// `hooks`: host commands run before and after this artifact is built.
    #[serde(skip)]
    pub hooks: Hooks,
}

/// A validated `sync.infer` glob, relative to the context.
#[derive(Debug, Clone)]
pub struct InferGlob {
    pub pattern: String,
    matcher: globset::GlobMatcher,
}

impl InferGlob {
    /// Whether a file at `rel` (relative to the context, `/`-separated) is one this glob lets devloop sync.
    pub fn matches(&self, rel: &str) -> bool {
        self.matcher.is_match(rel)
    }
}

/// A validated `sync.manual` rule.
#[derive(Debug, Clone)]
pub struct SyncRule {
    pub src: String,
    matcher: globset::GlobMatcher,
    pub dest: String,
    pub strip: String,
}

impl SyncRule {
    /// Where a file at `rel` (relative to the context, `/`-separated) goes in the container, if this rule takes it.
    pub fn dest_of(&self, rel: &str) -> Option<String> {
        if !self.matcher.is_match(rel) {
            return None;
        }
        let rest = rel.strip_prefix(&self.strip).unwrap_or(rel);
        Some(format!("{}/{}", self.dest.trim_end_matches('/'), rest))
    }
}

/// An artifact required by another, passed to it as a build arg.
#[derive(Debug, Clone, Serialize)]
pub struct Require {
    pub image: String,
    pub alias: String,
}

pub(super) fn validate_build(
    file: &str,
    base_dir: &Path,
    raw: RawBuild,
) -> Result<BuildConfig, ConfigError> {
    let raw_artifacts = raw.artifacts.unwrap_or_default();
    let mut artifacts = Vec::with_capacity(raw_artifacts.len());
    let mut by_name: HashMap<String, usize> = HashMap::new();
    for (i, a) in raw_artifacts.iter().enumerate() {
        let artifact = validate_artifact(file, base_dir, i, a)?;
        let normalized = tag::normalize_repository(&artifact.image);
        if let Some(first) = by_name.insert(normalized, i) {
            return Err(invalid(
                file,
                format!("build.artifacts[{i}].image"),
                format!("`{}` is already built by build.artifacts[{first}]", a.image),
                Some("each image is built by one artifact; give this one another name"),
            ));
        }
        artifacts.push(artifact);
    }
    for (i, a) in artifacts.iter().enumerate() {
        for (j, r) in a.requires.iter().enumerate() {
            if !by_name.contains_key(&tag::normalize_repository(&r.image)) {
                let names: Vec<_> = artifacts.iter().map(|a| format!("`{}`", a.image)).collect();
                return Err(invalid(
                    file,
                    format!("build.artifacts[{i}].requires[{j}].image"),
                    format!("`{}` is not an artifact of this config", r.image),
                    Some(&format!("artifacts: {}", names.join(", "))),
                ));
            }
        }
    }
    if let Some(cycle) = find_cycle(&artifacts) {
        return Err(invalid(
            file,
            "build.artifacts",
            format!(
                "`requires` forms a cycle: {}",
                cycle
                    .iter()
                    .map(|c| format!("`{c}`"))
                    .collect::<Vec<_>>()
                    .join(" → ")
            ),
            Some("an artifact cannot require itself, directly or through others"),
        ));
    }
    let tag_policy = validate_tag_policy(file, raw.tag_policy)?;
    if let Some(p) = &raw.platform {
        let parts: Vec<_> = p.split('/').collect();
        if !(2..=3).contains(&parts.len()) || parts.iter().any(|s| s.is_empty()) {
            return Err(invalid(
                file,
                "build.platform",
                format!("`{p}` is not a platform"),
                Some("use `os/arch` or `os/arch/variant`, e.g. `linux/amd64`"),
            ));
        }
    }
    Ok(BuildConfig {
        artifacts,
        tag_policy,
        concurrency: raw
            .concurrency
            .map(|c| c as usize)
            .unwrap_or_else(default_concurrency),
        use_buildkit: raw.use_buildkit.unwrap_or(true),
        platform: raw.platform,
        push: raw.push.unwrap_or(false),
    })
}

fn default_concurrency() -> usize {
    std::thread::available_parallelism()
        .map(|n| n.get())
        .unwrap_or(1)
}

fn validate_artifact(
    file: &str,
    base_dir: &Path,
    i: usize,
    a: &RawArtifact,
) -> Result<Artifact, ConfigError> {
    let field = |f: &str| format!("build.artifacts[{i}].{f}");
    let image_ref = tag::parse(&a.image).map_err(|e| {
        invalid(
            file,
            field("image"),
            format!("`{}` is not a valid image name: {}", a.image, e.reason()),
            None,
        )
    })?;
    if image_ref.tag.is_some() || image_ref.digest.is_some() {
        return Err(invalid(
            file,
            field("image"),
            format!("`{}` has a tag or digest", a.image),
            Some(&format!(
                "name the repository only (`{}`); devloop tags images by `build.tagPolicy`",
                image_ref.repository
            )),
        ));
    }
    let context_text = a.context.clone().unwrap_or_else(|| ".".to_string());
    let context = base_dir.join(&context_text);
    if !context.is_dir() {
        return Err(invalid(
            file,
            field("context"),
            format!("directory `{context_text}` does not exist"),
            Some("paths are relative to the directory of the config file"),
        ));
    }
    let context = context.canonicalize().map_err(|e| {
        invalid(
            file,
            field("context"),
            format!("`{context_text}`: {e}"),
            None,
        )
    })?;
    let docker = a.docker.clone().unwrap_or_default();
    let dockerfile_text = docker
        .dockerfile
        .clone()
        .unwrap_or_else(|| "Dockerfile".to_string());
    let dockerfile = context.join(&dockerfile_text);
    if !dockerfile.is_file() {
        return Err(invalid(
            file,
            field("docker.dockerfile"),
            format!(
                "file `{dockerfile_text}` does not exist (looked for `{}`)",
                dockerfile.display()
            ),
            Some("the Dockerfile path is relative to the artifact's context"),
        ));
    }
    let dockerfile = std::path::absolute(&dockerfile).unwrap_or(dockerfile);
    let build_args = docker.build_args.clone().unwrap_or_default();
    for (k, v) in &build_args {
        crate::template::check(v)
            .map_err(|e| invalid(file, field(&format!("docker.buildArgs.{k}")), e, None))?;
    }
    let requires = validate_requires(file, i, a)?;
    let sync = validate_sync(file, i, a)?;
    let sync_infer = validate_infer(file, i, a)?;
    let sync_hooks = validate_hooks(
        file,
        &field("sync.hooks"),
        base_dir,
        Step::Sync,
        a.sync.as_ref().and_then(|s| s.hooks.as_ref()),
    )?;
    let hooks = validate_build_hooks(file, &field("hooks"), &context, a.hooks.as_ref())?;
    Ok(Artifact {
        image: a.image.clone(),
        context,
        dockerfile,
        target: docker.target.clone(),
        build_args,
        requires,
        sync,
        sync_infer,
        sync_hooks,
        hooks,
    })
}

/// `requires[]`: each with a build-arg name (its alias, or one made from the image name).
fn validate_requires(file: &str, i: usize, a: &RawArtifact) -> Result<Vec<Require>, ConfigError> {
    let field = |f: &str| format!("build.artifacts[{i}].{f}");
    let mut requires = Vec::new();
    for (j, r) in a.requires.iter().flatten().enumerate() {
        let alias = r.alias.clone().unwrap_or_else(|| default_alias(&r.image));
        if alias.is_empty() || !alias.chars().all(|c| c.is_ascii_alphanumeric() || c == '_') {
            return Err(invalid(
                file,
                field(&format!("requires[{j}].alias")),
                format!("`{alias}` is not a valid build-arg name"),
                Some("use letters, digits and `_`"),
            ));
        }
        requires.push(Require {
            image: r.image.clone(),
            alias,
        });
    }
    Ok(requires)
}

/// `sync.manual[]`: a glob relative to the context and an absolute destination in the container.
fn validate_sync(file: &str, i: usize, a: &RawArtifact) -> Result<Vec<SyncRule>, ConfigError> {
    let field = |f: &str| format!("build.artifacts[{i}].{f}");
    let mut sync = Vec::new();
    for (j, r) in a.sync.iter().flat_map(|s| &s.manual).enumerate() {
        let at = |f: &str| field(&format!("sync.manual[{j}].{f}"));
        let matcher = globset::GlobBuilder::new(&r.src)
            .literal_separator(true)
            .build()
            .map_err(|e| {
                invalid(
                    file,
                    at("src"),
                    format!("`{}` is not a valid glob: {e}", r.src),
                    Some("globs are relative to the context, e.g. `static/**` or `src/*.py`"),
                )
            })?
            .compile_matcher();
        if !r.dest.starts_with('/') {
            return Err(invalid(
                file,
                at("dest"),
                format!("`{}` is not an absolute path", r.dest),
                Some("`dest` is the directory in the container, e.g. `/app`"),
            ));
        }
        sync.push(SyncRule {
            src: r.src.clone(),
            matcher,
            dest: r.dest.clone(),
            strip: r.strip.clone().unwrap_or_default(),
        });
    }
    Ok(sync)
}

/// `sync.infer[]`: globs relative to the context.
fn validate_infer(file: &str, i: usize, a: &RawArtifact) -> Result<Vec<InferGlob>, ConfigError> {
    let mut out = Vec::new();
    for (j, pattern) in a.sync.iter().flat_map(|s| &s.infer).enumerate() {
        let matcher = globset::GlobBuilder::new(pattern)
            .literal_separator(true)
            .build()
            .map_err(|e| {
                invalid(
                    file,
                    format!("build.artifacts[{i}].sync.infer[{j}]"),
                    format!("`{pattern}` is not a valid glob: {e}"),
                    Some("globs are relative to the context, e.g. `**/*.php` or `static/**`"),
                )
            })?
            .compile_matcher();
        out.push(InferGlob {
            pattern: pattern.clone(),
            matcher,
        });
    }
    Ok(out)
}

/// `registry.local/team/app-base` → `APP_BASE`: the last path component, upper-cased, as a build-arg name.
pub(super) fn default_alias(image: &str) -> String {
    let last = image.rsplit('/').next().unwrap_or(image);
    last.chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() {
                c.to_ascii_uppercase()
            } else {
                '_'
            }
        })
        .collect()
}

fn find_cycle(artifacts: &[Artifact]) -> Option<Vec<String>> {
    let index: HashMap<String, usize> = artifacts
        .iter()
        .enumerate()
        .map(|(i, a)| (tag::normalize_repository(&a.image), i))
        .collect();
    // 0 = unvisited, 1 = on the current path, 2 = done.
    let mut state = vec![0u8; artifacts.len()];
    let mut path = Vec::new();
    fn visit(
        i: usize,
        artifacts: &[Artifact],
        index: &HashMap<String, usize>,
        state: &mut [u8],
        path: &mut Vec<usize>,
    ) -> Option<Vec<String>> {
        state[i] = 1;
        path.push(i);
        for r in &artifacts[i].requires {
            let Some(&j) = index.get(&tag::normalize_repository(&r.image)) else {
                continue;
            };
            if state[j] == 1 {
                let start = path.iter().position(|&p| p == j).unwrap_or(0);
                let mut cycle: Vec<String> = path[start..]
                    .iter()
                    .map(|&p| artifacts[p].image.clone())
                    .collect();
                cycle.push(artifacts[j].image.clone());
                return Some(cycle);
            }
            if state[j] == 0
                && let Some(c) = visit(j, artifacts, index, state, path)
            {
                return Some(c);
            }
        }
        path.pop();
        state[i] = 2;
        None
    }
    (0..artifacts.len()).find_map(|i| {
        if state[i] == 0 {
            visit(i, artifacts, &index, &mut state, &mut path)
        } else {
            None
        }
    })
}

fn validate_tag_policy(file: &str, raw: Option<RawTagPolicy>) -> Result<TagPolicy, ConfigError> {
    let Some(raw) = raw else {
        return Ok(TagPolicy::InputDigest);
    };
    let mut set = Vec::new();
    if raw.input_digest.is_some() {
        set.push(TagPolicy::InputDigest);
    }
    if let Some(g) = raw.git_commit {
        let variant = match g.variant.as_deref() {
            None | Some("Tags") => GitVariant::Tags,
            Some("CommitSha") => GitVariant::CommitSha,
            Some("AbbrevCommitSha") => GitVariant::AbbrevCommitSha,
            Some(other) => {
                return Err(invalid(
                    file,
                    "build.tagPolicy.gitCommit.variant",
                    format!("unknown variant `{other}`"),
                    Some("use `Tags`, `CommitSha` or `AbbrevCommitSha`"),
                ));
            }
        };
        set.push(TagPolicy::GitCommit(variant));
    }
    if let Some(d) = raw.date_time {
        set.push(TagPolicy::DateTime {
            format: d.format.unwrap_or_else(|| "%Y%m%d-%H%M%S".to_string()),
        });
    }
    if let Some(t) = raw.env_template {
        crate::template::check(&t.template)
            .map_err(|e| invalid(file, "build.tagPolicy.envTemplate.template", e, None))?;
        set.push(TagPolicy::EnvTemplate {
            template: t.template,
        });
    }
    match set.len() {
        1 => Ok(set.remove(0)),
        0 => Err(invalid(
            file,
            "build.tagPolicy",
            "no policy given",
            Some(
                "set one of `inputDigest: {}`, `gitCommit: {}`, `dateTime: {}`, `envTemplate: {template: …}`",
            ),
        )),
        _ => Err(invalid(
            file,
            "build.tagPolicy",
            "more than one policy given",
            Some("keep exactly one"),
        )),
    }
}
