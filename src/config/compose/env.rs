//! Compose import, environment: a service's `environment:` and `env_file:` → devloop's `env` and `envFile`.
//! Reads each env file to compare how compose and devloop's Docker target read it (two readers with different
//! rules: `interpolate::read_env_file` is compose's, `config::deploy::read_env_file` devloop's) and records
//! every difference by name and line, never by value.

use std::collections::BTreeMap;

use serde_json::Value;

use super::syntax::{list, normalize, pairs};
use super::{Cx, GENERIC, interpolate, scalar};

impl Cx<'_> {
    pub(super) fn environment(&mut self, at: &str, v: &Value) -> BTreeMap<String, String> {
        let mut env = BTreeMap::new();
        for (k, val) in pairs(v) {
            match val {
                Some(val) => {
                    env.insert(k, val);
                }
                None => {
                    // Compose takes a name without a value from the environment of `docker compose up`.
                    let now = if (self.lookup)(&k).is_some() {
                        ""
                    } else {
                        " (unset now)"
                    };
                    self.skip(
                        &format!("{at}.{k}"),
                        format!("compose passes `{k}` through from the shell{now}; devloop does not: set it in `env` or an `envFile`"),
                    );
                }
            }
        }
        env
    }

    pub(super) fn env_files(&mut self, at: &str, v: &Value) -> Vec<String> {
        let mut out = Vec::new();
        for (i, item) in list(v).iter().enumerate() {
            let item_at = if matches!(v, Value::Array(_)) {
                format!("{at}[{i}]")
            } else {
                at.to_string()
            };
            let (path, required, raw) = match item {
                Value::Object(m) => {
                    for key in m.keys() {
                        if !matches!(key.as_str(), "path" | "required" | "format") {
                            self.skip(&format!("{item_at}.{key}"), GENERIC);
                        }
                    }
                    (
                        m.get("path").and_then(scalar),
                        m.get("required").is_none_or(|r| r != &Value::Bool(false)),
                        m.get("format").and_then(scalar).as_deref() == Some("raw"),
                    )
                }
                other => (scalar(other), true, false),
            };
            let Some(path) = path else {
                self.skip(&item_at, "no file named");
                continue;
            };
            let abs = normalize(&self.compose_dir.join(&path));
            let Ok(text) = std::fs::read_to_string(&abs) else {
                self.skip(
                    &item_at,
                    if required {
                        format!("`{path}` does not exist (compose would fail); create it and add it to `envFile`")
                    } else {
                        format!("`{path}` does not exist and is optional; add it to `envFile` when it does")
                    },
                );
                continue;
            };
            match compare_env_file(&text, raw, self.lookup) {
                Err(reason) => {
                    self.skip(&item_at, format!("`{path}`: {reason}"));
                    continue;
                }
                Ok(differences) => {
                    for d in differences {
                        self.note(&item_at, format!("`{path}` {d}"));
                    }
                }
            }
            out.push(self.rebase(&path));
        }
        out
    }
}

/// Differences between how compose and devloop read an env file; `Err` when devloop cannot read it at all.
/// Values are never shown: names and line numbers only.
fn compare_env_file(
    text: &str,
    raw: bool,
    lookup: &interpolate::Lookup<'_>,
) -> Result<Vec<String>, String> {
    let ours = crate::config::deploy::read_env_file(text).map_err(|(line, _)| {
        format!("line {line} is not `NAME=value`, which devloop's env files require")
    })?;
    let mut uses = Vec::new();
    let theirs = interpolate::read_env_file(text, raw, lookup, &mut uses)
        .map_err(|(line, m)| format!("line {line}: {m}"))?;
    let ours: BTreeMap<&str, &str> = ours
        .iter()
        .map(|e| (e.name.as_str(), e.value.as_str()))
        .collect();
    // The last assignment of a name wins in both readers; report in line order.
    let mut last: BTreeMap<&str, &interpolate::Entry> = BTreeMap::new();
    for e in &theirs {
        last.insert(e.name.as_str(), e);
    }
    let mut differing: Vec<&interpolate::Entry> = last
        .into_values()
        .filter(|e| e.value.as_deref() != ours.get(e.name.as_str()).copied())
        .collect();
    differing.sort_by_key(|e| e.line);
    let out = differing
        .iter()
        .map(|e| {
            format!(
                "line {}: devloop reads the value of `{}` literally (compose interprets inline comments, escapes or `${{…}}` there)",
                e.line, e.name
            )
        })
        .collect();
    Ok(out)
}
