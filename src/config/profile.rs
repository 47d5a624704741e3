//! Config, profiles: which profiles are active and how their overrides merge onto the base config (raw config
//! and `-p`/activation context → merged raw config and the active profiles). No I/O but reading the kubeconfig's
//! current context.
//!
//! Merge semantics (documented in docs/config.md): mappings merge key by key, scalars from the profile win, lists
//! of named items merge item by item on their name key (`build.artifacts` on `image`, `manifests.helm.releases` on
//! `name`), other lists append — unless the profile lists the path under `replace:`, where its value replaces
//! the base value wholesale.

use std::collections::HashMap;
use std::path::PathBuf;

use regex::Regex;
use serde::Serialize;
use serde_json::{Map, Value};

use super::raw::{RawActivation, RawConfig, RawProfile};
use super::{ConfigError, LoadOptions, invalid};
pub use crate::event::ActiveProfile;

/// Lists whose items are merged by a name key rather than appended.
const KEYED_LISTS: &[(&str, &str)] = &[
    ("build.artifacts", "image"),
    ("manifests.helm.releases", "name"),
    ("deploy.docker.containers", "name"),
    ("deploy.kubernetes.blueGreen", "service"),
];

/// What a profile activation can be matched against.
#[derive(Debug, Clone, Default)]
pub struct ActivationContext {
    /// The devloop subcommand (`build`, `render`, `dev`, …).
    pub command: String,
    /// The kube context in use (from `--kube-context` or the kubeconfig), when known.
    pub kube_context: Option<String>,
}

/// Why an activation rule could not be evaluated.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ActivationError {
    pub field: String,
    pub message: String,
}

/// Returns the activation entry that matches, described for the user, or `None`.
pub fn matching_activation(
    profile_index: usize,
    profile: &RawProfile,
    ctx: &ActivationContext,
    env: &dyn Fn(&str) -> Option<String>,
) -> Result<Option<String>, ActivationError> {
    let Some(entries) = &profile.activation else {
        return Ok(None);
    };
    for (i, entry) in entries.iter().enumerate() {
        let field = format!("profiles[{profile_index}].activation[{i}]");
        if let Some(reason) = entry_matches(entry, &field, ctx, env)? {
            return Ok(Some(reason));
        }
    }
    Ok(None)
}

fn entry_matches(
    entry: &RawActivation,
    field: &str,
    ctx: &ActivationContext,
    env: &dyn Fn(&str) -> Option<String>,
) -> Result<Option<String>, ActivationError> {
    let mut reasons = Vec::new();
    if entry.env.is_none() && entry.kube_context.is_none() && entry.command.is_none() {
        return Err(ActivationError {
            field: field.to_string(),
            message: "an activation needs at least one of `env`, `kubeContext`, `command`".into(),
        });
    }
    if let Some(spec) = &entry.env {
        let Some((name, pattern)) = spec.split_once('=') else {
            return Err(ActivationError {
                field: format!("{field}.env"),
                message: format!("`{spec}` is not of the form `NAME=value`"),
            });
        };
        let actual = env(name).unwrap_or_default();
        if !pattern_matches(pattern, &actual, &format!("{field}.env"))? {
            return Ok(None);
        }
        reasons.push(format!("env {spec}"));
    }
    if let Some(pattern) = &entry.kube_context {
        let actual = ctx.kube_context.clone().unwrap_or_default();
        if !pattern_matches(pattern, &actual, &format!("{field}.kubeContext"))? {
            return Ok(None);
        }
        reasons.push(format!("kubeContext {pattern}"));
    }
    if let Some(command) = &entry.command {
        if command != &ctx.command {
            return Ok(None);
        }
        reasons.push(format!("command {command}"));
    }
    Ok(Some(reasons.join(", ")))
}

/// A pattern is a regular expression matching the whole value; a leading `!` negates it.
fn pattern_matches(pattern: &str, actual: &str, field: &str) -> Result<bool, ActivationError> {
    let (negate, body) = match pattern.strip_prefix('!') {
        Some(rest) => (true, rest),
        None => (false, pattern),
    };
    let re = Regex::new(&format!("^(?:{body})$")).map_err(|e| ActivationError {
        field: field.to_string(),
        message: format!("`{pattern}` is not a valid regular expression: {e}"),
    })?;
    Ok(re.is_match(actual) != negate)
}

/// Merges a profile's override value onto the base value, per the module's semantics.
pub fn merge(base: &mut Value, overlay: Value, path: &str, replace: &[String]) {
    if replace.iter().any(|r| r == path) {
        *base = overlay;
        return;
    }
    match (base, overlay) {
        (Value::Object(b), Value::Object(o)) => {
            for (k, v) in o {
                let child = if path.is_empty() {
                    k.clone()
                } else {
                    format!("{path}.{k}")
                };
                match b.get_mut(&k) {
                    Some(existing) => merge(existing, v, &child, replace),
                    None => {
                        b.insert(k, v);
                    }
                }
            }
        }
        (Value::Array(b), Value::Array(o)) => {
            let key = KEYED_LISTS
                .iter()
                .find(|(p, _)| *p == path)
                .map(|(_, k)| *k);
            for item in o {
                let found = key.and_then(|k| {
                    let name = item.get(k)?.clone();
                    b.iter_mut().find(|x| x.get(k) == Some(&name))
                });
                match found {
                    Some(existing) => merge(existing, item, path, replace),
                    None => b.push(item),
                }
            }
        }
        (b, o) => *b = o,
    }
}

/// Removes the keys a profile does not set, so they do not override the base (`null` means "not given").
pub fn strip_nulls(v: &mut Value) {
    if let Value::Object(m) = v {
        m.retain(|_, x| !x.is_null());
        m.values_mut().for_each(strip_nulls);
    } else if let Value::Array(a) = v {
        a.iter_mut().for_each(strip_nulls);
    }
}

/// An empty JSON object.
pub fn empty() -> Value {
    Value::Object(Map::new())
}

/// Merges the active profiles onto the config, in definition order: the merged raw config and which profiles
/// are active and why.
pub(super) fn apply_profiles(
    file: &str,
    mut raw: RawConfig,
    opts: &LoadOptions,
    env: &dyn Fn(&str) -> Option<String>,
) -> Result<(RawConfig, Vec<ActiveProfile>), ConfigError> {
    let profiles = raw.profiles.take().unwrap_or_default();
    let seen = check_names(file, &profiles)?;
    let (selected, deselected) = select(file, &profiles, &seen, opts)?;
    let active = activate(file, &profiles, &selected, &deselected, opts, env)?;
    if active.is_empty() {
        return Ok((raw, Vec::new()));
    }
    merge_active(file, &raw, &profiles, active)
}

/// Every profile has a name, and no name is defined twice: each name → its index.
fn check_names<'a>(
    file: &str,
    profiles: &'a [RawProfile],
) -> Result<HashMap<&'a str, usize>, ConfigError> {
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
    Ok(seen)
}

/// The `-p` values: the profiles selected and those deselected (`-p -name`), each a defined profile.
fn select(
    file: &str,
    profiles: &[RawProfile],
    seen: &HashMap<&str, usize>,
    opts: &LoadOptions,
) -> Result<(Vec<String>, Vec<String>), ConfigError> {
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
    Ok((selected, deselected))
}

/// The active profiles, in definition order, with why each is active.
fn activate(
    file: &str,
    profiles: &[RawProfile],
    selected: &[String],
    deselected: &[String],
    opts: &LoadOptions,
    env: &dyn Fn(&str) -> Option<String>,
) -> Result<Vec<(usize, String)>, ConfigError> {
    let mut active = Vec::new();
    for (i, p) in profiles.iter().enumerate() {
        if deselected.contains(&p.name) {
            continue;
        }
        let reason = if selected.contains(&p.name) {
            Some("selected with -p".to_string())
        } else {
            matching_activation(i, p, &opts.activation, env)
                .map_err(|e| invalid(file, e.field, e.message, None))?
        };
        if let Some(reason) = reason {
            active.push((i, reason));
        }
    }
    Ok(active)
}

/// Merges the active profiles' overrides onto the base config, in order.
fn merge_active(
    file: &str,
    raw: &RawConfig,
    profiles: &[RawProfile],
    active: Vec<(usize, String)>,
) -> Result<(RawConfig, Vec<ActiveProfile>), ConfigError> {
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
    let mut base = to_value(file, raw)?;
    strip_nulls(&mut base);
    let mut out = Vec::new();
    for (i, reason) in active {
        let p = &profiles[i];
        let replace = p.replace.clone().unwrap_or_default();
        for r in &replace {
            if !matches!(
                r.split('.').next(),
                Some("build" | "manifests" | "deploy" | "portForward")
            ) {
                return Err(invalid(
                    file,
                    format!("profiles[{i}].replace"),
                    format!("`{r}` is not a path a profile can set"),
                    Some(
                        "paths start with `build.`, `manifests.` or `deploy.`, or are `portForward`, e.g. `manifests.rawYaml`",
                    ),
                ));
            }
        }
        let mut overlay = empty();
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
        strip_nulls(&mut overlay);
        merge(&mut base, overlay, "", &replace);
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

/// The current context of the kubeconfig kubectl would use (`$KUBECONFIG`, first file that names one, else
/// `~/.kube/config`). `None` when there is no kubeconfig or it names no context: activation then sees "".
pub fn current_kube_context(env: &dyn Fn(&str) -> Option<String>) -> Option<String> {
    let files: Vec<PathBuf> = match env("KUBECONFIG") {
        Some(list) if !list.is_empty() => std::env::split_paths(&list).collect(),
        _ => vec![PathBuf::from(env("HOME")?).join(".kube").join("config")],
    };
    #[derive(serde::Deserialize)]
    struct KubeConfig {
        #[serde(rename = "current-context")]
        current_context: Option<String>,
    }
    files.iter().find_map(|f| {
        let text = std::fs::read_to_string(f).ok()?;
        // Only `current-context` is read; every other key is ignored (kubeconfigs carry many).
        let v: serde_json::Value = serde_saphyr::from_str(&text).ok()?;
        let kc: KubeConfig = serde_json::from_value(v).ok()?;
        kc.current_context.filter(|c| !c.is_empty())
    })
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn maps_merge_scalars_win_lists_append() {
        let mut base = json!({"build": {"concurrency": 1, "useBuildkit": false}, "manifests": {"rawYaml": ["a.yaml"]}});
        merge(
            &mut base,
            json!({"build": {"concurrency": 4}, "manifests": {"rawYaml": ["b.yaml"]}}),
            "",
            &[],
        );
        assert_eq!(
            base,
            json!({"build": {"concurrency": 4, "useBuildkit": false}, "manifests": {"rawYaml": ["a.yaml", "b.yaml"]}})
        );
    }

    #[test]
    fn replace_paths_replace_wholesale() {
        let mut base = json!({"manifests": {"rawYaml": ["a.yaml"]}});
        merge(
            &mut base,
            json!({"manifests": {"rawYaml": ["b.yaml"]}}),
            "",
            &["manifests.rawYaml".into()],
        );
        assert_eq!(base, json!({"manifests": {"rawYaml": ["b.yaml"]}}));
    }

    #[test]
    fn artifacts_merge_by_image() {
        let mut base = json!({"build": {"artifacts": [
            {"image": "api", "docker": {"target": "prod", "buildArgs": {"A": "1"}}},
            {"image": "web"}
        ]}});
        merge(
            &mut base,
            json!({"build": {"artifacts": [{"image": "api", "docker": {"target": "dev", "buildArgs": {"B": "2"}}}, {"image": "new"}]}}),
            "",
            &[],
        );
        assert_eq!(
            base,
            json!({"build": {"artifacts": [
                {"image": "api", "docker": {"target": "dev", "buildArgs": {"A": "1", "B": "2"}}},
                {"image": "web"},
                {"image": "new"}
            ]}})
        );
    }

    fn profile(activation: Vec<RawActivation>) -> RawProfile {
        RawProfile {
            name: "p".into(),
            activation: Some(activation),
            ..Default::default()
        }
    }

    #[test]
    fn activation_env_regex_and_negation() {
        let env = |k: &str| (k == "ENV").then(|| "dev".to_string());
        let ctx = ActivationContext {
            command: "build".into(),
            kube_context: Some("kind-dev".into()),
        };
        let p = profile(vec![RawActivation {
            env: Some("ENV=de.".into()),
            ..Default::default()
        }]);
        assert_eq!(
            matching_activation(0, &p, &ctx, &env).unwrap().as_deref(),
            Some("env ENV=de.")
        );
        let p = profile(vec![RawActivation {
            env: Some("ENV=!dev".into()),
            ..Default::default()
        }]);
        assert_eq!(matching_activation(0, &p, &ctx, &env).unwrap(), None);
        // A partial match is not a match: the pattern is anchored.
        let p = profile(vec![RawActivation {
            env: Some("ENV=d".into()),
            ..Default::default()
        }]);
        assert_eq!(matching_activation(0, &p, &ctx, &env).unwrap(), None);
    }

    #[test]
    fn activation_all_conditions_of_an_entry_must_hold() {
        let env = |_: &str| None;
        let ctx = ActivationContext {
            command: "dev".into(),
            kube_context: Some("kind-dev".into()),
        };
        let both = RawActivation {
            kube_context: Some("kind-.*".into()),
            command: Some("build".into()),
            ..Default::default()
        };
        assert_eq!(
            matching_activation(0, &profile(vec![both]), &ctx, &env).unwrap(),
            None
        );
        let both = RawActivation {
            kube_context: Some("kind-.*".into()),
            command: Some("dev".into()),
            ..Default::default()
        };
        assert_eq!(
            matching_activation(0, &profile(vec![both]), &ctx, &env)
                .unwrap()
                .as_deref(),
            Some("kubeContext kind-.*, command dev")
        );
    }

    #[test]
    fn bad_activation_is_an_error_naming_the_field() {
        let env = |_: &str| None;
        let ctx = ActivationContext::default();
        let p = profile(vec![RawActivation {
            env: Some("NOEQUALS".into()),
            ..Default::default()
        }]);
        let e = matching_activation(2, &p, &ctx, &env).unwrap_err();
        assert_eq!(e.field, "profiles[2].activation[0].env");
        let p = profile(vec![RawActivation::default()]);
        assert!(matching_activation(0, &p, &ctx, &env).is_err());
    }

    #[test]
    fn kube_context_from_kubeconfig() {
        let dir = tempfile::tempdir().unwrap();
        let f = dir.path().join("kc");
        std::fs::write(
            &f,
            "apiVersion: v1\nkind: Config\ncurrent-context: kind-dev\ncontexts: []\n",
        )
        .unwrap();
        let fs = f.to_string_lossy().to_string();
        let env = move |k: &str| (k == "KUBECONFIG").then(|| fs.clone());
        assert_eq!(current_kube_context(&env).as_deref(), Some("kind-dev"));
    }
}
