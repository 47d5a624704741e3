//! Config, Skaffold import, tag policy: Skaffold's `build.tagPolicy` → devloop's (`gitCommit` variants,
//! `envTemplate`, `dateTime` with its Go layout, `inputDigest`; `sha256` and the rest with their reasons). Pure.

use serde_json::Value;

use super::{Cx, templates};
use crate::config::raw::{RawDateTime, RawEmpty, RawEnvTemplate, RawGitCommit, RawTagPolicy};

/// Converts `tagPolicy` (at `at`); `None` when nothing devloop has fits (the reason is recorded).
pub(super) fn convert(cx: &mut Cx, at: &str, v: &Value) -> Option<RawTagPolicy> {
    let Value::Object(m) = v else {
        cx.skip(at, "expected a mapping with one tagger");
        return None;
    };
    let mut out = None;
    for (key, value) in m {
        let at = format!("{at}.{key}");
        let policy = match key.as_str() {
            "gitCommit" => git_commit(cx, &at, value),
            "inputDigest" => Some(RawTagPolicy {
                input_digest: Some(RawEmpty {}),
                ..Default::default()
            }),
            "sha256" => {
                cx.note(
                    &at,
                    "Skaffold tags `latest` and deploys by digest; devloop's `inputDigest` (a digest of the inputs) is used instead, and deployed references are immutable either way",
                );
                Some(RawTagPolicy {
                    input_digest: Some(RawEmpty {}),
                    ..Default::default()
                })
            }
            "envTemplate" => env_template(cx, &at, value),
            "dateTime" => date_time(cx, &at, value),
            "customTemplate" => {
                cx.skip(
                    &at,
                    "devloop has no custom template of taggers; devloop's default, `inputDigest`, is used (an `envTemplate` with `{{.GIT_SHORT_COMMIT}}`, `{{.BUILD_TIME}}`… can replace it)",
                );
                None
            }
            _ => {
                cx.skip(&at, "not a tag policy devloop knows");
                None
            }
        };
        if policy.is_some() {
            out = policy;
        }
    }
    out
}

fn git_commit(cx: &mut Cx, at: &str, v: &Value) -> Option<RawTagPolicy> {
    let mut variant = None;
    if let Value::Object(m) = v {
        for (key, value) in m {
            match (key.as_str(), value) {
                ("variant", Value::String(s)) => match s.as_str() {
                    "Tags" | "CommitSha" | "AbbrevCommitSha" => variant = Some(s.clone()),
                    "TreeSha" | "AbbrevTreeSha" => {
                        cx.skip(
                            &format!("{at}.variant"),
                            format!("`{s}`: devloop tags with commits, not trees; `AbbrevCommitSha` is used"),
                        );
                        variant = Some("AbbrevCommitSha".into());
                    }
                    other => cx.skip(&format!("{at}.variant"), format!("unknown variant `{other}`")),
                },
                ("prefix", Value::String(p)) if !p.is_empty() => cx.skip(
                    &format!("{at}.prefix"),
                    format!("devloop's `gitCommit` has no prefix (`{p}`); an `envTemplate` such as `{p}{{{{.GIT_SHORT_COMMIT}}}}` gives a prefixed tag"),
                ),
                ("ignoreChanges", Value::Bool(true)) => cx.skip(
                    &format!("{at}.ignoreChanges"),
                    "devloop always marks a tag from a work tree with changes `-dirty`",
                ),
                ("prefix" | "ignoreChanges", _) => {}
                (other, _) => cx.skip(&format!("{at}.{other}"), "not a field of `gitCommit`"),
            }
        }
    }
    Some(RawTagPolicy {
        git_commit: Some(RawGitCommit { variant }),
        ..Default::default()
    })
}

fn env_template(cx: &mut Cx, at: &str, v: &Value) -> Option<RawTagPolicy> {
    let Some(template) = v.get("template").and_then(Value::as_str) else {
        cx.skip(at, "`template` is missing");
        return None;
    };
    match templates::translate(template) {
        Ok(template) => Some(RawTagPolicy {
            env_template: Some(RawEnvTemplate { template }),
            ..Default::default()
        }),
        Err(reason) => {
            cx.skip(
                &format!("{at}.template"),
                format!("{reason}; devloop's default tag policy is used"),
            );
            None
        }
    }
}

/// Skaffold's `dateTime.format` is a Go time layout (`2006-01-02_15-04-05`); devloop's is `%Y`-style.
fn date_time(cx: &mut Cx, at: &str, v: &Value) -> Option<RawTagPolicy> {
    // Skaffold's default layout.
    let layout = v
        .get("format")
        .and_then(Value::as_str)
        .unwrap_or("2006-01-02_15-04-05.999_MST");
    if let Some(tz) = v
        .get("timezone")
        .and_then(Value::as_str)
        .filter(|t| !t.eq_ignore_ascii_case("UTC"))
    {
        cx.skip(
            &format!("{at}.timezone"),
            format!("devloop's dates are in UTC, not `{tz}`"),
        );
    }
    let (format, dropped) = go_layout(layout);
    if !dropped.is_empty() {
        cx.note(
            &format!("{at}.format"),
            format!(
                "`{layout}` became `{format}`: devloop's format has no {}",
                dropped
                    .iter()
                    .map(|d| format!("`{d}`"))
                    .collect::<Vec<_>>()
                    .join(", ")
            ),
        );
    }
    Some(RawTagPolicy {
        date_time: Some(RawDateTime {
            format: Some(format),
        }),
        ..Default::default()
    })
}

/// A Go time layout → devloop's format and the layout elements it has no equivalent for (dropped).
pub(super) fn go_layout(layout: &str) -> (String, Vec<String>) {
    // Longest elements first, so `2006` is not read as `2` + `006`.
    const ELEMENTS: &[(&str, Option<&str>)] = &[
        ("2006", Some("%Y")),
        (".000", None),
        (".999", None),
        ("MST", None),
        ("-0700", None),
        ("Z07:00", None),
        ("Jan", None),
        ("Mon", None),
        ("PM", None),
        ("01", Some("%m")),
        ("02", Some("%d")),
        ("15", Some("%H")),
        ("04", Some("%M")),
        ("05", Some("%S")),
        ("06", None),
    ];
    let mut out = String::new();
    let mut dropped = Vec::new();
    let mut rest = layout;
    'outer: while !rest.is_empty() {
        for (element, with) in ELEMENTS {
            if let Some(after) = rest.strip_prefix(element) {
                match with {
                    Some(w) => out.push_str(w),
                    None => {
                        dropped.push(element.to_string());
                        // The separator before a dropped element goes with it (`_MST`, `.999`).
                        if out.ends_with(['_', '-', ' ']) {
                            out.pop();
                        }
                    }
                }
                rest = after;
                continue 'outer;
            }
        }
        let c = rest.chars().next().unwrap_or_default();
        if c == '%' {
            out.push_str("%%");
        } else {
            out.push(c);
        }
        rest = &rest[c.len_utf8()..];
    }
    (out, dropped)
}

#[cfg(test)]
mod tests {
    use super::go_layout;

    #[test]
    fn go_layouts_become_devloop_formats() {
        assert_eq!(
            go_layout("2006-01-02_15-04-05"),
            ("%Y-%m-%d_%H-%M-%S".into(), vec![])
        );
        assert_eq!(
            go_layout("2006-01-02_15-04-05.999_MST"),
            (
                "%Y-%m-%d_%H-%M-%S".into(),
                vec![".999".to_string(), "MST".to_string()]
            )
        );
        assert_eq!(go_layout("20060102"), ("%Y%m%d".into(), vec![]));
    }
}
