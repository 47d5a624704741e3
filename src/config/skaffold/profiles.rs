//! Config, Skaffold import, profiles: Skaffold's profile semantics on a config document (sections laid over the
//! base — lists and nested mappings replaced whole, one build environment and one tagger at a time — then
//! `patches`), Skaffold activations → devloop's, and the difference two converted configs make → a devloop
//! profile with `replace:` paths. Pure.

use serde_json::{Map, Value};

use super::patch::{self, Operation};
use super::{Cx, Finding};
use crate::config::raw::{RawActivation, RawConfig, RawProfile};

/// The keys of a profile that are not a config section.
const NOT_SECTIONS: &[&str] = &["name", "activation", "patches", "requiresAllActivations"];
/// Build environments: a profile that names one replaces the base's.
const BUILD_ENVIRONMENTS: &[&str] = &["local", "googleCloudBuild", "cluster"];
/// devloop commands an activation can name.
const COMMANDS: &[&str] = &["build", "render", "run", "deploy", "delete", "dev"];

/// The profile names a config defines, in order.
pub(super) fn names(doc: &Map<String, Value>) -> Vec<String> {
    list(doc)
        .iter()
        .filter_map(|p| p.get("name").and_then(Value::as_str).map(str::to_string))
        .collect()
}

fn list(doc: &Map<String, Value>) -> Vec<Value> {
    doc.get("profiles")
        .and_then(Value::as_array)
        .cloned()
        .unwrap_or_default()
}

/// The config with the `active` profiles applied in that order, as Skaffold applies them.
pub(super) fn apply(
    cx: &mut Cx,
    doc: &Map<String, Value>,
    active: &[String],
) -> Map<String, Value> {
    let profiles = list(doc);
    let mut out = Value::Object(doc.clone());
    for name in active {
        let Some((i, p)) = profiles
            .iter()
            .enumerate()
            .find(|(_, p)| p.get("name").and_then(Value::as_str) == Some(name))
        else {
            cx.skip(
                "requires",
                format!("profile `{name}` is activated by a requirer but not defined here"),
            );
            continue;
        };
        let Value::Object(p) = p else { continue };
        for (key, section) in p {
            if !NOT_SECTIONS.contains(&key.as_str()) {
                lay_over(&mut out, key, section);
            }
        }
        for (j, op) in p
            .get("patches")
            .and_then(Value::as_array)
            .into_iter()
            .flatten()
            .enumerate()
        {
            let at = format!("profiles[{i}].patches[{j}]");
            let result = serde_json::from_value::<Operation>(op.clone())
                .map_err(|e| e.to_string())
                .and_then(|op| patch::apply(&mut out, &op));
            if let Err(reason) = result {
                cx.skip(
                    &at,
                    format!("not applied (Skaffold would refuse profile `{name}`): {reason}"),
                );
            }
        }
    }
    match out {
        Value::Object(m) => m,
        _ => doc.clone(),
    }
}

/// One section of a profile laid over the config: a list replaces the base list when it is not empty; a
/// mapping's fields replace the base's one by one (a build environment or `tagPolicy` replaces the base's whole);
/// scalars that are set replace.
fn lay_over(doc: &mut Value, key: &str, section: &Value) {
    let Value::Object(doc) = doc else { return };
    match section {
        Value::Array(a) if a.is_empty() => {}
        Value::Object(fields) => {
            let base = doc
                .entry(key.to_string())
                .or_insert_with(|| Value::Object(Map::new()));
            if !base.is_object() {
                *base = Value::Object(Map::new());
            }
            let Value::Object(base) = base else { return };
            if key == "build"
                && fields
                    .keys()
                    .any(|k| BUILD_ENVIRONMENTS.contains(&k.as_str()))
            {
                base.retain(|k, _| !BUILD_ENVIRONMENTS.contains(&k.as_str()));
            }
            for (k, v) in fields {
                if !is_unset(v) {
                    base.insert(k.clone(), v.clone());
                }
            }
        }
        v if is_unset(v) => {}
        v => {
            doc.insert(key.to_string(), v.clone());
        }
    }
}

/// What Skaffold's overlay treats as "not given": null, an empty list or string, zero.
fn is_unset(v: &Value) -> bool {
    match v {
        Value::Null => true,
        Value::Array(a) => a.is_empty(),
        Value::String(s) => s.is_empty(),
        Value::Number(n) => n.as_f64() == Some(0.0),
        _ => false,
    }
}

/// A profile's `activation` → devloop's. Skaffold's patterns match anywhere in the value (devloop's match the
/// whole value), so they are wrapped in `.*(?:…).*`; `requiresAllActivations` joins the entries into one.
pub(super) fn activation(
    cx: &mut Cx,
    at: &str,
    p: &Map<String, Value>,
) -> Option<Vec<RawActivation>> {
    let entries = p.get("activation").and_then(Value::as_array)?;
    let mut out = Vec::new();
    for (i, e) in entries.iter().enumerate() {
        let at = format!("{at}.activation[{i}]");
        let mut a = RawActivation::default();
        if let Some(env) = e.get("env").and_then(Value::as_str) {
            match env.split_once('=') {
                Some((name, pattern)) => a.env = Some(format!("{name}={}", anywhere(pattern))),
                None => cx.skip(
                    &format!("{at}.env"),
                    format!("`{env}` is not `NAME=pattern`"),
                ),
            }
        }
        if let Some(k) = e.get("kubeContext").and_then(Value::as_str) {
            a.kube_context = Some(anywhere(k));
        }
        if let Some(c) = e.get("command").and_then(Value::as_str) {
            if COMMANDS.contains(&c) {
                a.command = Some(c.to_string());
            } else {
                cx.skip(
                    &format!("{at}.command"),
                    format!("`{c}` is not a devloop command ({})", COMMANDS.join(", ")),
                );
                continue;
            }
        }
        if a.env.is_some() || a.kube_context.is_some() || a.command.is_some() {
            out.push(a);
        }
    }
    if p.get("requiresAllActivations").and_then(Value::as_bool) == Some(true) && out.len() > 1 {
        let mut all = RawActivation::default();
        for a in out.drain(..) {
            for (slot, v) in [
                (&mut all.env, a.env),
                (&mut all.kube_context, a.kube_context),
                (&mut all.command, a.command),
            ] {
                if let Some(v) = v {
                    if slot.as_ref().is_some_and(|s| *s != v) {
                        cx.skip(&format!("{at}.requiresAllActivations"), "two entries set the same condition: devloop's one entry can hold one of each; the profile activates only with `-p`");
                        return None;
                    }
                    *slot = Some(v);
                }
            }
        }
        out.push(all);
    }
    (!out.is_empty()).then_some(out)
}

/// A Skaffold pattern (found anywhere in the value, `!` negates, empty means unset or empty) in devloop's form
/// (matching the whole value).
fn anywhere(pattern: &str) -> String {
    if pattern.is_empty() {
        return String::new();
    }
    let (neg, body) = match pattern.strip_prefix('!') {
        Some(b) => ("!", b),
        None => ("", pattern),
    };
    if body
        .chars()
        .all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '-')
    {
        format!("{neg}.*{body}.*")
    } else {
        format!("{neg}.*(?:{body}).*")
    }
}

/// The devloop profile that turns `base` into `with`: for each section, the fields that differ (or the whole
/// section when one was removed), each listed in `replace:` so it replaces the base value whole.
pub(super) fn difference(
    name: &str,
    base: &RawConfig,
    with: &RawConfig,
) -> Result<RawProfile, String> {
    let b = section_values(base)?;
    let w = section_values(with)?;
    let mut overlay = Map::new();
    let mut replace = Vec::new();
    for key in ["build", "manifests", "deploy", "portForward"] {
        let (bv, wv) = (b.get(key), w.get(key));
        if bv == wv {
            continue;
        }
        match (bv, wv) {
            (Some(Value::Object(bm)), Some(Value::Object(wm)))
                if bm.keys().all(|k| wm.contains_key(k)) =>
            {
                let mut part = Map::new();
                for (k, v) in wm {
                    if bm.get(k) != Some(v) {
                        part.insert(k.clone(), v.clone());
                        replace.push(format!("{key}.{k}"));
                    }
                }
                overlay.insert(key.into(), Value::Object(part));
            }
            (_, Some(v)) => {
                overlay.insert(key.into(), v.clone());
                replace.push(key.to_string());
            }
            (Some(v), None) => {
                let empty = if v.is_array() {
                    Value::Array(Vec::new())
                } else {
                    Value::Object(Map::new())
                };
                overlay.insert(key.into(), empty);
                replace.push(key.to_string());
            }
            (None, None) => {}
        }
    }
    Ok(RawProfile {
        name: name.to_string(),
        activation: None,
        replace: (!replace.is_empty()).then_some(replace),
        build: typed(&overlay, "build")?,
        manifests: typed(&overlay, "manifests")?,
        deploy: typed(&overlay, "deploy")?,
        port_forward: typed(&overlay, "portForward")?,
    })
}

fn typed<T: serde::de::DeserializeOwned>(
    m: &Map<String, Value>,
    key: &str,
) -> Result<Option<T>, String> {
    m.get(key)
        .cloned()
        .map(serde_json::from_value)
        .transpose()
        .map_err(|e| e.to_string())
}

fn section_values(c: &RawConfig) -> Result<Map<String, Value>, String> {
    match serde_json::to_value(c).map_err(|e| e.to_string())? {
        Value::Object(mut m) => {
            m.retain(|_, v| !v.is_null());
            Ok(m)
        }
        _ => Ok(Map::new()),
    }
}

/// Findings of a profile's conversion that the base conversion does not have, named after the profile.
pub(super) fn new_findings(name: &str, base: &[Finding], with: Vec<Finding>) -> Vec<Finding> {
    with.into_iter()
        .filter(|f| !base.contains(f))
        .map(|f| Finding {
            at: format!("profile `{name}`: {}", f.at),
            reason: f.reason,
        })
        .collect()
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn sections_lay_over_like_skaffold() {
        let mut doc = json!({"build": {"local": {"push": false}, "tagPolicy": {"gitCommit": {}}, "artifacts": [{"image": "a"}]}});
        lay_over(
            &mut doc,
            "build",
            &json!({"googleCloudBuild": {"projectId": "p"}, "artifacts": []}),
        );
        // The build environment is replaced; an empty list leaves the base list.
        assert_eq!(
            doc,
            json!({"build": {"tagPolicy": {"gitCommit": {}}, "artifacts": [{"image": "a"}], "googleCloudBuild": {"projectId": "p"}}})
        );
    }

    #[test]
    fn patterns_match_anywhere_like_skaffold() {
        assert_eq!(anywhere("prod"), ".*prod.*");
        assert_eq!(anywhere("!prod|stage"), "!.*(?:prod|stage).*");
        assert_eq!(anywhere(""), "");
    }
}
