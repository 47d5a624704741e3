//! Config: `devloop.yaml` + profiles + flags → a validated `Config`. The only YAML-aware config code; reads the
//! config file and checks that the paths it names exist, nothing else (`compose/` reads a compose file, its
//! `.env` and env files, for `devloop init`).

pub mod compose;
pub mod deploy;
pub mod manifests;
pub mod profile;
pub mod raw;

use std::collections::{BTreeMap, HashMap};
use std::path::{Path, PathBuf};

use serde::Serialize;

use crate::error::hint_suffix;
use crate::tag;
pub use manifests::Manifests;
pub use profile::{ActivationContext, ActiveProfile};
use raw::{RawArtifact, RawBuild, RawConfig, RawTagPolicy};

/// The only `apiVersion` this devloop reads.
pub const API_VERSION: &str = "devloop/v1alpha1";

/// A config error: the file, the field path inside it, what is wrong, and what to do about it.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    #[error("{file}: cannot read the config: {source}{}", hint_suffix(hint))]
    Read {
        file: String,
        source: std::io::Error,
        hint: Option<String>,
    },
    #[error("{file}: {message}")]
    Parse { file: String, message: String },
    #[error("{file}: {field}: {message}{}", hint_suffix(hint))]
    Invalid {
        file: String,
        field: String,
        message: String,
        hint: Option<String>,
    },
}

/// How the config is loaded: which profiles the user selected and what activations are matched against.
#[derive(Debug, Clone, Default)]
pub struct LoadOptions {
    /// `-p` values; `-p -name` deactivates an auto-activated profile.
    pub profiles: Vec<String>,
    pub activation: ActivationContext,
}

/// The validated configuration of one project.
#[derive(Debug, Clone)]
pub struct Config {
    /// The config file as the user named it (for messages).
    pub file: String,
    /// The directory holding the config file (absolute): relative paths in it resolve here.
    pub base_dir: PathBuf,
    /// Project name: `metadata.name`, else the directory name. Stable across runs.
    pub project: String,
    pub build: BuildConfig,
    pub manifests: Manifests,
    /// `deploy.docker`: run the project as containers on the local Docker daemon instead of Kubernetes.
    pub docker: Option<deploy::DockerDeploy>,
    /// `portForward`: local ports `devloop dev` forwards to cluster resources.
    pub port_forwards: Vec<PortForward>,
    pub active_profiles: Vec<ActiveProfile>,
}

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

/// A validated `portForward` entry.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PortForward {
    /// `service`, `deployment`, `statefulset` or `pod`.
    pub resource_type: String,
    pub resource_name: String,
    /// `None`: the namespace devloop deploys to.
    pub namespace: Option<String>,
    /// A number or a port name.
    pub port: String,
    pub local_port: Option<u16>,
    pub address: std::net::IpAddr,
}

fn validate_port_forwards(
    file: &str,
    raw: Vec<raw::RawPortForward>,
) -> Result<Vec<PortForward>, ConfigError> {
    raw.into_iter()
        .enumerate()
        .map(|(i, p)| {
            let field = |f: &str| format!("portForward[{i}].{f}");
            let resource_type = p
                .resource_type
                .unwrap_or_else(|| "service".into())
                .to_lowercase();
            if !matches!(
                resource_type.as_str(),
                "service" | "deployment" | "statefulset" | "pod"
            ) {
                return Err(invalid(
                    file,
                    field("resourceType"),
                    format!("unknown resource type `{resource_type}`"),
                    Some("use `service`, `deployment`, `statefulset` or `pod`"),
                ));
            }
            let port = match p.port {
                raw::RawPort::Number(0) => {
                    return Err(invalid(
                        file,
                        field("port"),
                        "port 0 cannot be forwarded",
                        None,
                    ));
                }
                raw::RawPort::Number(n) => n.to_string(),
                raw::RawPort::Name(n) if !n.is_empty() => n,
                raw::RawPort::Name(_) => {
                    return Err(invalid(file, field("port"), "empty port name", None));
                }
            };
            let address = match p.address.as_deref() {
                None => std::net::IpAddr::from([127, 0, 0, 1]),
                Some(a) => a.parse().map_err(|_| {
                    invalid(
                        file,
                        field("address"),
                        format!("`{a}` is not an IP address"),
                        Some("e.g. `127.0.0.1` or `0.0.0.0`"),
                    )
                })?,
            };
            Ok(PortForward {
                resource_type,
                resource_name: p.resource_name,
                namespace: p.namespace,
                port,
                local_port: p.local_port,
                address,
            })
        })
        .collect()
}

/// How built images are tagged.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum TagPolicy {
    /// The cache key: changes exactly when an input changes.
    InputDigest,
    GitCommit(GitVariant),
    /// The build time, formatted with strftime-style `%Y %m %d %H %M %S` (UTC).
    DateTime {
        format: String,
    },
    /// A template of `{{.IMAGE_NAME}}`, `{{.DIGEST}}`, env and git values.
    EnvTemplate {
        template: String,
    },
}

/// What part of git `tagPolicy.gitCommit` uses.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum GitVariant {
    /// `git describe --tags --always` (the tag when HEAD is tagged).
    Tags,
    CommitSha,
    AbbrevCommitSha,
}

/// Loads, merges the active profiles into, and validates the config at `path`.
pub fn load(
    path: &Path,
    opts: &LoadOptions,
    env: &dyn Fn(&str) -> Option<String>,
) -> Result<Config, ConfigError> {
    let file = path.display().to_string();
    let text = std::fs::read_to_string(path).map_err(|source| ConfigError::Read {
        hint: (source.kind() == std::io::ErrorKind::NotFound).then(|| {
            "run devloop in the project directory, or name the config with `-f PATH`".to_string()
        }),
        file: file.clone(),
        source,
    })?;
    let base_dir = std::path::absolute(path)
        .ok()
        .and_then(|p| p.parent().map(Path::to_path_buf))
        .unwrap_or_else(|| PathBuf::from("."));
    load_text(&file, &text, &base_dir, opts, env)
}

/// [`load`] for config text that is not (yet) in a file: `file` names it in messages, relative paths resolve
/// against `base_dir`. `devloop init` checks what it generates with this before writing it.
pub fn load_text(
    file: &str,
    text: &str,
    base_dir: &Path,
    opts: &LoadOptions,
    env: &dyn Fn(&str) -> Option<String>,
) -> Result<Config, ConfigError> {
    let raw = parse(file, text)?;
    let (raw, active_profiles) = apply_profiles(file, raw, opts, env)?;
    validate(file, base_dir, raw, active_profiles)
}

/// Parses the YAML text of a config file into its raw mirror (syntax, unknown fields, wrong types).
pub fn parse(file: &str, text: &str) -> Result<RawConfig, ConfigError> {
    serde_saphyr::from_str::<RawConfig>(text).map_err(|e| {
        // The parser's report carries line, column and a source snippet; name the real file in it.
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

fn invalid(
    file: &str,
    field: impl Into<String>,
    message: impl Into<String>,
    hint: Option<&str>,
) -> ConfigError {
    ConfigError::Invalid {
        file: file.to_string(),
        field: field.into(),
        message: message.into(),
        hint: hint.map(str::to_string),
    }
}

fn apply_profiles(
    file: &str,
    mut raw: RawConfig,
    opts: &LoadOptions,
    env: &dyn Fn(&str) -> Option<String>,
) -> Result<(RawConfig, Vec<ActiveProfile>), ConfigError> {
    let profiles = raw.profiles.take().unwrap_or_default();
    let mut seen = HashMap::new();
    for (i, p) in profiles.iter().enumerate() {
        if p.name.is_empty() {
            return Err(invalid(
                file,
                format!("profiles[{i}].name"),
                "a profile needs a name",
                None,
            ));
        }
        if let Some(first) = seen.insert(p.name.as_str(), i) {
            return Err(invalid(
                file,
                format!("profiles[{i}].name"),
                format!(
                    "profile `{}` is already defined at profiles[{first}]",
                    p.name
                ),
                None,
            ));
        }
    }
    let mut selected = Vec::new();
    let mut deselected = Vec::new();
    for name in opts
        .profiles
        .iter()
        .flat_map(|s| s.split(','))
        .map(str::trim)
        .filter(|s| !s.is_empty())
    {
        let (list, bare) = match name.strip_prefix('-') {
            Some(rest) => (&mut deselected, rest),
            None => (&mut selected, name),
        };
        if !seen.contains_key(bare) {
            let available: Vec<_> = profiles.iter().map(|p| format!("`{}`", p.name)).collect();
            return Err(invalid(
                file,
                "profiles",
                format!("unknown profile `{bare}` (from `-p`)"),
                Some(&if available.is_empty() {
                    "this config defines no profiles".to_string()
                } else {
                    format!("defined profiles: {}", available.join(", "))
                }),
            ));
        }
        list.push(bare.to_string());
    }
    let mut active = Vec::new();
    for (i, p) in profiles.iter().enumerate() {
        if deselected.contains(&p.name) {
            continue;
        }
        let reason = if selected.contains(&p.name) {
            Some("selected with -p".to_string())
        } else {
            profile::matching_activation(i, p, &opts.activation, env)
                .map_err(|e| invalid(file, e.field, e.message, None))?
        };
        if let Some(reason) = reason {
            active.push((i, reason));
        }
    }
    if active.is_empty() {
        return Ok((raw, Vec::new()));
    }
    fn to_value<T: Serialize>(file: &str, v: &T) -> Result<serde_json::Value, ConfigError> {
        serde_json::to_value(v).map_err(|e| {
            invalid(
                file,
                "profiles",
                format!("cannot merge profiles: {e}"),
                None,
            )
        })
    }
    let mut base = to_value(file, &raw)?;
    profile::strip_nulls(&mut base);
    let mut out = Vec::new();
    for (i, reason) in active {
        let p = &profiles[i];
        let replace = p.replace.clone().unwrap_or_default();
        for r in &replace {
            if !matches!(r.split('.').next(), Some("build" | "manifests" | "deploy")) {
                return Err(invalid(
                    file,
                    format!("profiles[{i}].replace"),
                    format!("`{r}` is not a path a profile can set"),
                    Some(
                        "paths start with `build.`, `manifests.` or `deploy.`, e.g. `manifests.rawYaml`",
                    ),
                ));
            }
        }
        let mut overlay = profile::empty();
        if let serde_json::Value::Object(m) = &mut overlay {
            if let Some(b) = &p.build {
                m.insert("build".into(), to_value(file, b)?);
            }
            if let Some(mf) = &p.manifests {
                m.insert("manifests".into(), to_value(file, mf)?);
            }
            if let Some(d) = &p.deploy {
                m.insert("deploy".into(), to_value(file, d)?);
            }
            if let Some(f) = &p.port_forward {
                m.insert("portForward".into(), to_value(file, f)?);
            }
        }
        profile::strip_nulls(&mut overlay);
        profile::merge(&mut base, overlay, "", &replace);
        out.push(ActiveProfile {
            name: p.name.clone(),
            reason,
        });
    }
    let merged: RawConfig = serde_json::from_value(base).map_err(|e| {
        invalid(
            file,
            "profiles",
            format!("the merged config is invalid: {e}"),
            None,
        )
    })?;
    Ok((merged, out))
}

fn validate(
    file: &str,
    base_dir: &Path,
    raw: RawConfig,
    active_profiles: Vec<ActiveProfile>,
) -> Result<Config, ConfigError> {
    match raw.api_version.as_deref() {
        Some(API_VERSION) => {}
        Some(other) => {
            return Err(invalid(
                file,
                "apiVersion",
                format!("unsupported version `{other}`"),
                Some(&format!("this devloop reads `apiVersion: {API_VERSION}`")),
            ));
        }
        None => {
            return Err(invalid(
                file,
                "apiVersion",
                "missing",
                Some(&format!(
                    "start the file with `apiVersion: {API_VERSION}` and `kind: Config`"
                )),
            ));
        }
    }
    match raw.kind.as_deref() {
        Some("Config") => {}
        Some(other) => {
            return Err(invalid(
                file,
                "kind",
                format!("unsupported kind `{other}`"),
                Some("use `kind: Config`"),
            ));
        }
        None => return Err(invalid(file, "kind", "missing", Some("add `kind: Config`"))),
    }
    let project = match raw.metadata.as_ref().and_then(|m| m.name.clone()) {
        Some(name) => {
            if !is_label_value(&name) {
                return Err(invalid(
                    file,
                    "metadata.name",
                    format!("`{name}` is not a valid project name"),
                    Some(
                        "use at most 63 characters: letters, digits, `-`, `_`, `.`, starting and ending with a letter or digit",
                    ),
                ));
            }
            name
        }
        None => project_name_from_dir(base_dir),
    };
    let build = validate_build(file, base_dir, raw.build.unwrap_or_default())?;
    Ok(Config {
        file: file.to_string(),
        base_dir: base_dir.to_path_buf(),
        project,
        build,
        manifests: raw.manifests.unwrap_or_default(),
        port_forwards: validate_port_forwards(file, raw.port_forward.unwrap_or_default())?,
        docker: match raw.deploy.and_then(|d| d.docker) {
            Some(d) => Some(
                deploy::validate(&d, base_dir).map_err(|e| ConfigError::Invalid {
                    file: file.to_string(),
                    field: e.field,
                    message: e.message,
                    hint: e.hint,
                })?,
            ),
            None => None,
        },
        active_profiles,
    })
}

/// A Kubernetes label value: the project name ends up in a label.
fn is_label_value(s: &str) -> bool {
    s.len() <= 63
        && !s.is_empty()
        && s.chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.'))
        && s.starts_with(|c: char| c.is_ascii_alphanumeric())
        && s.ends_with(|c: char| c.is_ascii_alphanumeric())
}

/// The directory name made into a valid label value (`My Project!` → `my-project`).
fn project_name_from_dir(dir: &Path) -> String {
    let name = dir
        .file_name()
        .map(|n| n.to_string_lossy().to_lowercase())
        .unwrap_or_default();
    let cleaned: String = name
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || c == '.' || c == '_' {
                c
            } else {
                '-'
            }
        })
        .collect();
    let trimmed: String = cleaned
        .trim_matches(|c: char| !c.is_ascii_alphanumeric())
        .chars()
        .take(63)
        .collect();
    let trimmed = trimmed
        .trim_end_matches(|c: char| !c.is_ascii_alphanumeric())
        .to_string();
    if trimmed.is_empty() {
        "devloop".to_string()
    } else {
        trimmed
    }
}

fn validate_build(file: &str, base_dir: &Path, raw: RawBuild) -> Result<BuildConfig, ConfigError> {
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
        use_buildkit: raw.use_buildkit.unwrap_or(false),
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
    Ok(Artifact {
        image: a.image.clone(),
        context,
        dockerfile,
        target: docker.target.clone(),
        build_args,
        requires,
        sync,
    })
}

/// `registry.local/team/app-base` → `APP_BASE`: the last path component, upper-cased, as a build-arg name.
fn default_alias(image: &str) -> String {
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

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    /// A project dir with `Dockerfile`s in `dirs`, and the config text; returns the load result's error text.
    fn load_err(config: &str, dirs: &[&str], opts: &LoadOptions) -> String {
        let dir = tempfile::tempdir().unwrap();
        for d in dirs {
            std::fs::create_dir_all(dir.path().join(d)).unwrap();
            std::fs::write(dir.path().join(d).join("Dockerfile"), "FROM scratch\n").unwrap();
        }
        let file = dir.path().join("devloop.yaml");
        std::fs::write(&file, config).unwrap();
        let e = load(&file, opts, &|_| None).unwrap_err().to_string();
        e.replace(&dir.path().display().to_string(), "<dir>")
    }

    const HEAD: &str = "apiVersion: devloop/v1alpha1\nkind: Config\n";

    #[test]
    fn errors_name_file_field_value_and_hint() {
        let o = LoadOptions::default();
        insta::assert_snapshot!(load_err(&format!("{HEAD}build:\n  artifacts:\n    - image: api\n      context: ./api\n"), &[], &o), @r"
        <dir>/devloop.yaml: build.artifacts[0].context: directory `./api` does not exist

        hint: paths are relative to the directory of the config file
        ");
        insta::assert_snapshot!(load_err(&format!("{HEAD}build:\n  artifacts:\n    - image: api\n      context: api\n      docker: {{dockerfile: nope.Dockerfile}}\n"), &["api"], &o), @r"
        <dir>/devloop.yaml: build.artifacts[0].docker.dockerfile: file `nope.Dockerfile` does not exist (looked for `<dir>/api/nope.Dockerfile`)

        hint: the Dockerfile path is relative to the artifact's context
        ");
        insta::assert_snapshot!(load_err(&format!("{HEAD}build:\n  artifacts:\n    - image: Api_Server\n"), &["."], &o), @"<dir>/devloop.yaml: build.artifacts[0].image: `Api_Server` is not a valid image name: path components must be lowercase letters and digits, separated by `.`, `_`, `__` or dashes");
        insta::assert_snapshot!(load_err(&format!("{HEAD}build:\n  artifacts:\n    - image: api:v1\n"), &["."], &o), @r"
        <dir>/devloop.yaml: build.artifacts[0].image: `api:v1` has a tag or digest

        hint: name the repository only (`api`); devloop tags images by `build.tagPolicy`
        ");
        insta::assert_snapshot!(load_err(&format!("{HEAD}build:\n  artifacts:\n    - image: api\n    - image: docker.io/library/api\n"), &["."], &o), @r"
        <dir>/devloop.yaml: build.artifacts[1].image: `docker.io/library/api` is already built by build.artifacts[0]

        hint: each image is built by one artifact; give this one another name
        ");
        insta::assert_snapshot!(load_err(&format!("{HEAD}build:\n  artifacts:\n    - image: a\n      requires: [{{image: b}}]\n    - image: b\n      requires: [{{image: a}}]\n"), &["."], &o), @r"
        <dir>/devloop.yaml: build.artifacts: `requires` forms a cycle: `a` → `b` → `a`

        hint: an artifact cannot require itself, directly or through others
        ");
        insta::assert_snapshot!(load_err(&format!("{HEAD}build:\n  artifacts:\n    - image: a\n      requires: [{{image: zz}}]\n"), &["."], &o), @r"
        <dir>/devloop.yaml: build.artifacts[0].requires[0].image: `zz` is not an artifact of this config

        hint: artifacts: `a`
        ");
        insta::assert_snapshot!(load_err("kind: Config\n", &[], &o), @r"
        <dir>/devloop.yaml: apiVersion: missing

        hint: start the file with `apiVersion: devloop/v1alpha1` and `kind: Config`
        ");
        insta::assert_snapshot!(load_err(&format!("{HEAD}build:\n  tagPolicy: {{gitCommit: {{variant: Short}}}}\n"), &[], &o), @r"
        <dir>/devloop.yaml: build.tagPolicy.gitCommit.variant: unknown variant `Short`

        hint: use `Tags`, `CommitSha` or `AbbrevCommitSha`
        ");
        insta::assert_snapshot!(load_err(&format!("{HEAD}build:\n  artifacts:\n    - image: a\n      docker: {{buildArgs: {{X: \"{{{{.X\"}}}}\n"), &["."], &o), @"<dir>/devloop.yaml: build.artifacts[0].docker.buildArgs.X: unclosed `{{` in `{{.X`");
        let p = LoadOptions {
            profiles: vec!["prd".into()],
            ..Default::default()
        };
        insta::assert_snapshot!(load_err(&format!("{HEAD}profiles:\n  - name: prod\n"), &[], &p), @r"
        <dir>/devloop.yaml: profiles: unknown profile `prd` (from `-p`)

        hint: defined profiles: `prod`
        ");
    }

    #[test]
    fn yaml_errors_have_line_and_column_and_unknown_fields_are_named() {
        let o = LoadOptions::default();
        let e = load_err(
            &format!("{HEAD}build:\n  artifacts:\n    - image: a\n      contxt: .\n"),
            &[],
            &o,
        );
        assert!(e.contains("contxt") && e.contains("line 6"), "{e}");
        let e = load_err(&format!("{HEAD}build:\n  concurrency: lots\n"), &[], &o);
        assert!(e.contains("concurrency") || e.contains("line 4"), "{e}");
        let e = load_err(&format!("{HEAD}build: [\n"), &[], &o);
        assert!(e.contains("line"), "{e}");
    }

    #[test]
    fn defaults_and_project_name() {
        let dir = tempfile::tempdir().unwrap();
        let proj = dir.path().join("My Shop!");
        std::fs::create_dir_all(&proj).unwrap();
        std::fs::write(proj.join("Dockerfile"), "FROM scratch\n").unwrap();
        std::fs::write(
            proj.join("devloop.yaml"),
            format!("{HEAD}build:\n  artifacts:\n    - image: team/app-base\n      requires: []\n"),
        )
        .unwrap();
        let cfg = load(&proj.join("devloop.yaml"), &LoadOptions::default(), &|_| {
            None
        })
        .unwrap();
        assert_eq!(cfg.project, "my-shop");
        assert_eq!(cfg.build.tag_policy, TagPolicy::InputDigest);
        assert_eq!(cfg.build.artifacts[0].context, proj.canonicalize().unwrap());
        assert_eq!(default_alias("team/app-base"), "APP_BASE");
    }

    #[test]
    fn profiles_merge_in_definition_order() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join("Dockerfile"), "FROM scratch\n").unwrap();
        let file = dir.path().join("devloop.yaml");
        std::fs::write(
            &file,
            format!(
                "{HEAD}build:\n  concurrency: 1\n  artifacts:\n    - image: api\n      docker: {{buildArgs: {{A: '1'}}}}\nprofiles:\n  - name: one\n    build: {{concurrency: 3, artifacts: [{{image: api, docker: {{target: dev}}}}]}}\n  - name: two\n    activation: [{{env: 'CI=true'}}]\n    build: {{concurrency: 5}}\n"
            ),
        )
        .unwrap();
        let opts = LoadOptions {
            profiles: vec!["one".into()],
            ..Default::default()
        };
        let cfg = load(&file, &opts, &|k| (k == "CI").then(|| "true".to_string())).unwrap();
        assert_eq!(cfg.build.concurrency, 5);
        assert_eq!(cfg.build.artifacts.len(), 1);
        assert_eq!(cfg.build.artifacts[0].target.as_deref(), Some("dev"));
        assert_eq!(
            cfg.build.artifacts[0]
                .build_args
                .get("A")
                .map(String::as_str),
            Some("1")
        );
        assert_eq!(
            cfg.active_profiles
                .iter()
                .map(|p| p.reason.as_str())
                .collect::<Vec<_>>(),
            ["selected with -p", "env CI=true"]
        );
        let opts = LoadOptions {
            profiles: vec!["-two".into()],
            ..Default::default()
        };
        let cfg = load(&file, &opts, &|k| (k == "CI").then(|| "true".to_string())).unwrap();
        assert_eq!(
            cfg.build.concurrency, 1,
            "-p -two deactivates the auto-activated profile"
        );
    }
}
