//! Output, human: a `devloop status` report → its lines (data, printed on stdout by the command through the
//! console): a heading, then one aligned line per object, blue/green copies under their Service. Prints nothing
//! itself; never shows more of an object than the report holds (no Secret data).

use crate::event::{DeploymentState, StatusReport};
use crate::hint::Hint;

/// The lines of `report`, for people.
pub fn lines(report: &StatusReport) -> Vec<String> {
    let Some(applyset) = &report.applyset else {
        return format!(
            "nothing of project `{}` is deployed in context `{}` (namespace `{}`){}",
            report.project,
            report.context,
            report.namespace,
            Hint("`devloop run` builds and deploys it; `devloop deploy --build-artifacts FILE` deploys images built before")
        )
        .lines()
        .map(str::to_string)
        .collect();
    };
    let mut out = vec![format!(
        "project `{}` in context `{}`, namespace `{}` (recorded in configmap/{applyset}){}",
        report.project,
        report.context,
        report.namespace,
        others(report)
    )];
    let mut rows: Vec<[String; 3]> = Vec::new();
    for m in &report.members {
        let name = match &m.namespace {
            Some(ns) if *ns != report.namespace => format!("{} ({ns})", m.name),
            _ => m.name.clone(),
        };
        let is_core_service = m.kind == "Service" && m.api_version == "v1";
        if m.kind == "Deployment" {
            // A blue/green copy is shown under its Service.
            let Some(d) = report
                .deployments
                .iter()
                .find(|d| d.name == m.name && Some(&d.namespace) == m.namespace.as_ref())
            else {
                continue;
            };
            rows.push([m.kind.clone(), name, replicas(d)]);
        } else if let Some(r) = report
            .blue_green
            .iter()
            .find(|r| r.service == m.name && Some(&r.namespace) == m.namespace.as_ref())
            .filter(|_| is_core_service)
        {
            let mut live = format!("live {}", r.live_color);
            if let Some(since) = &r.live_since {
                live.push_str(&format!(" since {since}"));
                if let Some(secs) = r.live_for_seconds {
                    live.push_str(&format!(" ({} ago)", ago(secs)));
                }
            }
            live.push_str(&format!(
                ", commit {}",
                r.commit.as_deref().unwrap_or("unknown")
            ));
            if !r.images.is_empty() {
                live.push_str(&format!(", images {}", r.images.join(", ")));
            }
            if let Some(prev) = &r.previous_color {
                live.push_str(&format!(", previous {prev}"));
            }
            rows.push([m.kind.clone(), name, live]);
            let last = r.copies.len().saturating_sub(1);
            for (i, c) in r.copies.iter().enumerate() {
                let branch = if i == last { "└" } else { "├" };
                let color = c.color.as_deref().unwrap_or_default();
                let role = if color == r.live_color {
                    "live"
                } else if r.previous_color.as_deref() == Some(color) {
                    "previous"
                } else {
                    "other"
                };
                rows.push([
                    String::new(),
                    format!("{branch} {} ({role})", c.name),
                    replicas(c),
                ]);
            }
        } else {
            rows.push([m.kind.clone(), name, String::new()]);
        }
    }
    let width = |col: usize| {
        rows.iter()
            .map(|r| r[col].chars().count())
            .max()
            .unwrap_or(0)
    };
    let (kind_w, name_w) = (width(0), width(1));
    for [kind, name, detail] in rows {
        let line = format!("  {kind:<kind_w$}  {name:<name_w$}  {detail}");
        out.push(line.trim_end().to_string());
    }
    out
}

/// ` (also in `a`, `b`)` when members are in namespaces besides the home one.
fn others(report: &StatusReport) -> String {
    let others: Vec<String> = report
        .namespaces
        .iter()
        .filter(|ns| **ns != report.namespace)
        .map(|ns| format!("`{ns}`"))
        .collect();
    if others.is_empty() {
        String::new()
    } else {
        format!(", also in {}", others.join(", "))
    }
}

/// `2/2 ready  api:v2`, or `scaled to zero (was 2)  api:v1`.
fn replicas(d: &DeploymentState) -> String {
    let count = match (d.desired, d.scaled_down_from) {
        (0, Some(n)) => format!("scaled to zero (was {n})"),
        (0, None) => "scaled to zero".to_string(),
        (want, _) => format!("{}/{want} ready", d.ready),
    };
    let mut s = count;
    if !d.images.is_empty() {
        s.push_str(&format!("  {}", d.images.join(", ")));
    }
    if d.color.is_some()
        && let Some(commit) = &d.commit
    {
        s.push_str(&format!("  commit {commit}"));
    }
    s
}

/// `42s`, `5m`, `3h12m`, `2d4h`.
fn ago(secs: u64) -> String {
    match secs {
        s if s < 60 => format!("{s}s"),
        s if s < 3600 => format!("{}m", s / 60),
        s if s < 86_400 => format!("{}h{}m", s / 3600, s % 3600 / 60),
        s => format!("{}d{}h", s / 86_400, s % 86_400 / 3600),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ages_read_as_people_say_them() {
        assert_eq!(ago(42), "42s");
        assert_eq!(ago(300), "5m");
        assert_eq!(ago(3 * 3600 + 12 * 60 + 5), "3h12m");
        assert_eq!(ago(2 * 86_400 + 4 * 3600), "2d4h");
    }
}
