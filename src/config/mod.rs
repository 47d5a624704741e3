//! Config: `devloop.yaml` + profiles + flags → a validated `Config`. The only YAML-aware config code; reads the
//! config file and checks that the paths it names exist, nothing else (`compose/` reads a compose file, its
//! `.env` and env files, for `devloop init`).

pub mod blue_green;
pub mod build;
pub mod compose;
pub mod deploy;
pub mod hooks;
pub mod manifests;
pub mod port_forward;
pub mod profile;
pub mod raw;
pub mod scalar;
pub mod schema;
pub mod skaffold;

use std::path::{Path, PathBuf};

pub use build::{Artifact, BuildConfig, Require, SyncRule};
pub use manifests::Manifests;
pub use port_forward::PortForward;
pub use profile::{ActivationContext, ActiveProfile};
use raw::RawConfig;
pub use schema::{SCHEMA_FILE, schema_comment};

use crate::hint::suffix;
pub use crate::tag::{GitVariant, TagPolicy};

/// The only `apiVersion` this devloop reads.
pub const API_VERSION: &str = "devloop/v1alpha1";

/// A config error: the file, the field path inside it, what is wrong, and what to do about it.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    #[error("{file}: cannot read the config: {source}{}", suffix(hint))]
    Read {
        file: String,
        source: std::io::Error,
        hint: Option<String>,
    },
    #[error("{file}: {message}")]
    Parse { file: String, message: String },
    #[error("{file}: {field}: {message}{}", suffix(hint))]
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
    /// `deploy.hooks`: commands run before and after each deploy.
    pub deploy_hooks: hooks::Hooks,
    /// `deploy.kubernetes.blueGreen`: Services `run` and `deploy` release blue/green (never `dev`).
    pub blue_green: Vec<blue_green::BlueGreen>,
    /// `portForward`: local ports `devloop dev` forwards to cluster resources.
    pub port_forwards: Vec<PortForward>,
    pub active_profiles: Vec<ActiveProfile>,
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
    let (raw, active_profiles) = profile::apply_profiles(file, raw, opts, env)?;
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

/// What a YAML value is, for messages: `a list`, `the string \`x\``, ….
fn kind(v: &serde_json::Value) -> String {
    use serde_json::Value;
    match v {
        Value::Null => "nothing".into(),
        Value::Bool(b) => format!("`{b}`"),
        Value::Number(n) => format!("`{n}`"),
        Value::String(s) => format!("the string `{s}`"),
        Value::Array(_) => "a list".into(),
        Value::Object(_) => "a mapping".into(),
    }
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
    let build = build::validate_build(file, base_dir, raw.build.unwrap_or_default())?;
    let deploy_hooks = hooks::validate_hooks(
        file,
        "deploy.hooks",
        base_dir,
        hooks::Step::Deploy,
        raw.deploy.as_ref().and_then(|d| d.hooks.as_ref()),
    )?;
    let blue_green = blue_green::validate(
        file,
        raw.deploy.as_ref().and_then(|d| d.kubernetes.as_ref()),
    )?;
    if !blue_green.is_empty() && raw.deploy.as_ref().is_some_and(|d| d.docker.is_some()) {
        return Err(invalid(
            file,
            "deploy.kubernetes.blueGreen",
            "blue/green releases need Kubernetes, and `deploy.docker` runs the project on the Docker daemon",
            Some("turn one of them on in a profile, e.g. blue/green in `prod`"),
        ));
    }
    Ok(Config {
        file: file.to_string(),
        base_dir: base_dir.to_path_buf(),
        project,
        build,
        manifests: raw.manifests.unwrap_or_default(),
        port_forwards: port_forward::validate_port_forwards(
            file,
            raw.port_forward.unwrap_or_default(),
        )?,
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
        deploy_hooks,
        blue_green,
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

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests;
