//! Compose import, syntax: the small notations of a compose file (ports, durations, paths, project names, lists
//! or mappings) → values devloop writes. Pure.

use std::path::{Component, Path, PathBuf};

use serde_json::Value;

use super::scalar;
use crate::config::deploy::parse_duration_ns;

/// Removes `.` and resolves `..` lexically.
pub(in crate::config) fn normalize(p: &Path) -> PathBuf {
    let mut out = PathBuf::new();
    for c in p.components() {
        match c {
            Component::CurDir => {}
            Component::ParentDir => {
                if !out.pop() {
                    out.push("..");
                }
            }
            other => out.push(other.as_os_str()),
        }
    }
    out
}

/// `target` relative to `base` (both absolute and normalized): `services/api`, `../shared`, `.`.
pub(in crate::config) fn relative(target: &Path, base: &Path) -> PathBuf {
    let t: Vec<_> = target.components().collect();
    let b: Vec<_> = base.components().collect();
    let common = t.iter().zip(&b).take_while(|(x, y)| x == y).count();
    let mut out = PathBuf::new();
    for _ in common..b.len() {
        out.push("..");
    }
    for c in &t[common..] {
        out.push(c.as_os_str());
    }
    if out.as_os_str().is_empty() {
        PathBuf::from(".")
    } else {
        out
    }
}

/// Compose's project name rules (lower-case; letters, digits, `-`, `_`; starting with a letter or digit),
/// trimmed so that it is also a valid devloop project name.
pub(super) fn project_name(raw: &str) -> String {
    let lower = raw.to_lowercase();
    let kept: String = lower
        .chars()
        .filter(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || matches!(c, '-' | '_'))
        .collect();
    let name: String = kept
        .trim_matches(|c: char| !c.is_ascii_alphanumeric())
        .chars()
        .take(63)
        .collect();
    let name = name
        .trim_end_matches(|c: char| !c.is_ascii_alphanumeric())
        .to_string();
    if name.is_empty() {
        "devloop".to_string()
    } else {
        name
    }
}

/// A compose bind-mount source: a path, not a volume name.
pub(super) fn source_is_path(source: &str) -> bool {
    source.starts_with('.') || source.starts_with('/') || source.starts_with('~')
}

pub(super) fn bracket(ip: &str) -> String {
    if ip.contains(':') && !ip.starts_with('[') {
        format!("[{ip}]")
    } else {
        ip.to_string()
    }
}

pub(super) fn random_port_reason(container: &str) -> String {
    format!(
        "publishes container port {container} on a random host port, which devloop does not do; write `HOST:{container}` to publish it"
    )
}

/// A value that may be one item or a list of items.
pub(super) fn list(v: &Value) -> Vec<Value> {
    match v {
        Value::Array(items) => items.clone(),
        Value::Null => Vec::new(),
        other => vec![other.clone()],
    }
}

/// `environment`/`args` as a mapping (`K: v`, `K:` → no value) or a list (`K=v`, `K` → no value).
pub(super) fn pairs(v: &Value) -> Vec<(String, Option<String>)> {
    match v {
        Value::Object(m) => m.iter().map(|(k, val)| (k.clone(), scalar(val))).collect(),
        Value::Array(items) => items
            .iter()
            .filter_map(scalar)
            .map(|s| match s.split_once('=') {
                Some((k, val)) => (k.to_string(), Some(val.to_string())),
                None => (s, None),
            })
            .collect(),
        _ => Vec::new(),
    }
}

/// A short-syntax port (`[ip:][host:]container[/proto]`, ranges allowed) → devloop port mappings.
pub(super) fn short_port(spec: &str) -> Result<Vec<String>, String> {
    let (body, proto) = match spec.rsplit_once('/') {
        Some((b, p)) => (b, p),
        None => (spec, "tcp"),
    };
    if !matches!(proto, "tcp" | "udp") {
        return Err(format!(
            "protocol `{proto}`: devloop publishes `tcp` and `udp` only"
        ));
    }
    let (ip, rest) = if let Some(r) = body.strip_prefix('[') {
        let (ip, after) = r
            .split_once("]:")
            .ok_or_else(|| format!("`{spec}` is not a port mapping"))?;
        (Some(ip.to_string()), after.to_string())
    } else {
        let parts: Vec<&str> = body.rsplitn(3, ':').collect();
        match parts.as_slice() {
            [c, h, ip] => (Some(ip.to_string()), format!("{h}:{c}")),
            _ => (None, body.to_string()),
        }
    };
    let (host, container) = match rest.split_once(':') {
        Some((h, c)) => (h.to_string(), c.to_string()),
        None => (String::new(), rest.clone()),
    };
    if host.is_empty() {
        return Err(random_port_reason(&container));
    }
    let hosts = port_range(&host).ok_or_else(|| format!("`{host}` is not a port or range"))?;
    let containers =
        port_range(&container).ok_or_else(|| format!("`{container}` is not a port or range"))?;
    if hosts.len() != containers.len() {
        return Err(if containers.len() == 1 {
            format!(
                "host range `{host}`: compose picks a free port in it, which devloop does not do; name one port"
            )
        } else {
            format!("ranges `{host}` and `{container}` differ in length")
        });
    }
    let suffix = if proto == "udp" { "/udp" } else { "" };
    let prefix = ip.map(|i| format!("{}:", bracket(&i))).unwrap_or_default();
    Ok(hosts
        .iter()
        .zip(&containers)
        .map(|(h, c)| format!("{prefix}{h}:{c}{suffix}"))
        .collect())
}

/// `8080` or `8000-8010` (at most 100 ports) → the ports.
pub(super) fn port_range(s: &str) -> Option<Vec<u16>> {
    match s.split_once('-') {
        Some((a, b)) => {
            let (a, b): (u16, u16) = (a.parse().ok()?, b.parse().ok()?);
            (a > 0 && a <= b && b - a < 100).then(|| (a..=b).collect())
        }
        None => s.parse().ok().filter(|p| *p > 0).map(|p| vec![p]),
    }
}

/// A compose duration (Go's syntax: `1m30s`, `1.5s`, `250ms`, `10us`) in nanoseconds.
pub(super) fn duration_ns(s: &str) -> Option<u64> {
    let s = s.trim();
    if s.is_empty() {
        return None;
    }
    let mut total: f64 = 0.0;
    let mut rest = s;
    while !rest.is_empty() {
        let num_len = rest
            .find(|c: char| !(c.is_ascii_digit() || c == '.'))
            .unwrap_or(rest.len());
        let number: f64 = rest[..num_len].parse().ok()?;
        rest = &rest[num_len..];
        let unit_len = rest
            .find(|c: char| c.is_ascii_digit() || c == '.')
            .unwrap_or(rest.len());
        let unit = match &rest[..unit_len] {
            "ns" => 1.0,
            "us" | "µs" => 1e3,
            "ms" => 1e6,
            "s" => 1e9,
            "m" => 60e9,
            "h" => 3600e9,
            _ => return None,
        };
        rest = &rest[unit_len..];
        total += number * unit;
    }
    (0.0..1e19).contains(&total).then(|| total.round() as u64)
}

/// A compose duration → devloop's text for it, and whether it is exact (devloop counts whole milliseconds).
pub(super) fn duration(s: &str) -> Option<(String, bool)> {
    let ns = duration_ns(s)?;
    if parse_duration_ns(s).and_then(|d| u64::try_from(d).ok()) == Some(ns) {
        return Some((s.to_string(), true));
    }
    let ms = ns.div_ceil(1_000_000);
    let exact = ms * 1_000_000 == ns;
    let (h, m, sec, rem) = (ms / 3_600_000, ms / 60_000 % 60, ms / 1000 % 60, ms % 1000);
    let mut out = String::new();
    for (n, unit) in [(h, "h"), (m, "m"), (sec, "s"), (rem, "ms")] {
        if n > 0 {
            out.push_str(&format!("{n}{unit}"));
        }
    }
    if out.is_empty() {
        out.push_str("0s");
    }
    Some((out, exact))
}
