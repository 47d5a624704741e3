//! Compose import, variables: the compose document's `${VAR}` references resolved in place, the way compose
//! resolves them (the environment, then `.env`, then the project name, then the reference's default) → the
//! interpolated document and every substitution, by name and source (never a value). Reads `.env` only.

use std::collections::BTreeMap;
use std::path::Path;

use serde_json::{Map, Value};

use super::interpolate;
use super::syntax::project_name;
use super::{ConfigError, Interpolated, Source, invalid, kind, scalar};

/// The project name (compose `name:`, interpolated first, else the compose file's directory).
pub(super) fn project_of(
    file: &str,
    top: &mut Map<String, Value>,
    compose_dir: &Path,
    lookup: &interpolate::Lookup<'_>,
    uses: &mut Vec<(String, interpolate::Use)>,
) -> Result<String, ConfigError> {
    Ok(match top.get_mut("name") {
        Some(v) => {
            interpolate_value(file, v, &mut vec!["name".into()], lookup, uses)?;
            match scalar(v) {
                Some(name) => project_name(&name),
                None => {
                    return Err(invalid(
                        file,
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
    })
}

/// The `.env` file beside the compose file: its assignments (interpolated from the environment), or none when
/// there is no such file.
pub(super) fn read_dotenv(
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
                format!("line {line}"),
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

/// A field path as written in the file: `services.api.ports[0]`.
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

/// Interpolates every string of `v` in place; `path` is where `v` is in the document.
pub(super) fn interpolate_value(
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
                    full_path(path),
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

/// Each variable once per source, with every place it is used.
pub(super) fn summarize_uses(uses: Vec<(String, interpolate::Use)>) -> Vec<Interpolated> {
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
