//! Config, Skaffold import, manifests: where Skaffold finds manifests — `deploy.kubectl.manifests`,
//! `deploy.kustomize`, `deploy.helm` (v2) or `manifests.rawYaml`, `manifests.kustomize`, `manifests.helm` (v3 and
//! v4) — → devloop's `manifests:` part of one config; helm releases with their values, overrides and templates.
//! Pure: paths are rebased, nothing is read.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use serde_json::{Map, Value};

use super::{Cx, Part, templates};
use crate::config::manifests::HelmRelease;

/// Converts the v3/v4 `manifests:` section into `part`.
pub(super) fn convert(cx: &mut Cx, dir: &Path, v: &Value, part: &mut Part) {
    let Value::Object(m) = v else {
        cx.skip("manifests", "expected a mapping");
        return;
    };
    for (key, value) in m {
        let at = format!("manifests.{key}");
        match key.as_str() {
            "rawYaml" => raw_yaml(cx, dir, &at, value, part),
            "kustomize" => kustomize(cx, dir, &at, value, part),
            "helm" => helm(cx, dir, &at, value, part),
            "kpt" => cx.skip(&at, "devloop does not render with kpt"),
            "hooks" => cx.skip(
                &at,
                "devloop has no render hooks; a command that must run before a deploy can be a `deploy.hooks.before` hook",
            ),
            "transform" | "validate" => cx.skip(&at, "devloop runs no kpt functions on rendered manifests"),
            "remoteManifests" => cx.skip(&at, "devloop renders local files only: download them into the project"),
            _ => cx.skip(&at, "not a field of Skaffold's `manifests` devloop converts"),
        }
    }
}

/// `rawYaml` / `deploy.kubectl.manifests`: globs relative to the config.
pub(super) fn raw_yaml(cx: &mut Cx, dir: &Path, at: &str, v: &Value, part: &mut Part) {
    for (i, g) in v.as_array().into_iter().flatten().enumerate() {
        let at = format!("{at}[{i}]");
        match g.as_str() {
            Some(url) if url.starts_with("http://") || url.starts_with("https://") => cx.skip(
                &at,
                format!("`{url}`: devloop renders local files only: download it into the project"),
            ),
            Some(glob) => {
                let rebased = cx.rebase(dir, glob);
                part.raw_yaml.push(rebased);
            }
            None => cx.skip(&at, "expected a glob"),
        }
    }
}

/// `kustomize` (v3/v4 `manifests.kustomize` and v2 `deploy.kustomize`): paths (default `.`) and `buildArgs`;
/// the deploy-only fields are the caller's.
pub(super) fn kustomize(cx: &mut Cx, dir: &Path, at: &str, v: &Value, part: &mut Part) {
    let empty = Map::new();
    let m = v.as_object().unwrap_or(&empty);
    let paths: Vec<&Value> = m
        .get("paths")
        .and_then(Value::as_array)
        .map(|a| a.iter().collect())
        .unwrap_or_default();
    let default = Value::String(".".into());
    let paths = if paths.is_empty() {
        vec![&default]
    } else {
        paths
    };
    for (i, p) in paths.into_iter().enumerate() {
        let at = format!("{at}.paths[{i}]");
        match p.as_str() {
            Some(p) if templates::is_templated(p) => cx.skip(&at, templates::literal_reason(p)),
            Some(p) => part.kustomize_paths.push(PathBuf::from(cx.rebase(dir, p))),
            None => cx.skip(&at, "expected a path"),
        }
    }
    for (key, value) in m {
        let at = format!("{at}.{key}");
        match key.as_str() {
            "paths" => {}
            "buildArgs" => {
                let args: Vec<String> = value.as_array().into_iter().flatten().filter_map(|a| a.as_str().map(str::to_string)).collect();
                if !args.is_empty() {
                    part.kustomize_args.push((at, args));
                }
            }
            "flags" => cx.skip(&at, "devloop applies objects through the API (server-side apply): kubectl flags do not apply"),
            "defaultNamespace" => cx.skip(&at, "devloop takes the namespace from `-n NAMESPACE` (or the kube context)"),
            "hooks" => {} // deploy hooks: the deploy section's
            _ => cx.skip(&at, "not a field of `kustomize` devloop converts"),
        }
    }
}

/// `helm` (v3/v4 `manifests.helm`, v2 and v3/v4 `deploy.helm`): its releases; `hooks` are the caller's.
pub(super) fn helm(cx: &mut Cx, dir: &Path, at: &str, v: &Value, part: &mut Part) {
    let Value::Object(m) = v else { return };
    for (key, value) in m {
        let at = format!("{at}.{key}");
        match key.as_str() {
            "releases" => {
                for (i, r) in value.as_array().into_iter().flatten().enumerate() {
                    let at = format!("{at}[{i}]");
                    if let Some(r) = release(cx, dir, &at, r) {
                        if part.helm_releases.iter().any(|x| x.name == r.name && x.chart_path == r.chart_path) {
                            // v3/v4 configs often list a release under both `manifests.helm` and `deploy.helm`.
                            continue;
                        }
                        part.helm_releases.push(r);
                    }
                }
            }
            "flags" => cx.skip(&at, "devloop runs `helm template` and applies the objects itself: helm flags do not apply"),
            "hooks" => {}
            _ => cx.skip(&at, "not a field of `helm` devloop converts"),
        }
    }
}

/// One helm release; `None` when it cannot be rendered by devloop (the reason is recorded).
fn release(cx: &mut Cx, dir: &Path, at: &str, v: &Value) -> Option<HelmRelease> {
    let Value::Object(m) = v else {
        cx.skip(at, "expected a mapping");
        return None;
    };
    let name = m.get("name").and_then(Value::as_str).unwrap_or_default();
    if name.is_empty() || templates::is_templated(name) {
        cx.skip(
            &format!("{at}.name"),
            format!(
                "release not converted: {}",
                if name.is_empty() {
                    "no `name`".to_string()
                } else {
                    templates::literal_reason(name)
                }
            ),
        );
        return None;
    }
    let chart = match (
        m.get("chartPath").and_then(Value::as_str),
        m.get("remoteChart").and_then(Value::as_str),
    ) {
        (Some(c), _) if templates::is_templated(c) => {
            cx.skip(
                &format!("{at}.chartPath"),
                format!(
                    "release `{name}` not converted: {}",
                    templates::literal_reason(c)
                ),
            );
            return None;
        }
        (Some(c), _) => cx.rebase(dir, c),
        (None, Some(remote)) => remote.to_string(),
        (None, None) => {
            cx.skip(
                at,
                format!("release `{name}` has neither `chartPath` nor `remoteChart`"),
            );
            return None;
        }
    };
    let mut r = HelmRelease {
        name: name.to_string(),
        chart_path: chart,
        ..Default::default()
    };
    let mut overrides: Option<(&Map<String, Value>, String)> = None;
    let mut strategy: Option<&Value> = None;
    for (key, value) in m {
        let at = format!("{at}.{key}");
        match key.as_str() {
            "name" | "chartPath" => {}
            "remoteChart" if m.contains_key("chartPath") => cx.skip(&at, "`chartPath` is used"),
            "remoteChart" => cx.note(&at, "passed to `helm template` as the chart: its repository must be known to helm (`helm repo add`)"),
            "namespace" => match value.as_str() {
                Some(ns) if templates::is_templated(ns) => cx.skip(&at, templates::literal_reason(ns)),
                Some(ns) => r.namespace = Some(ns.to_string()),
                None => {}
            },
            "valuesFiles" => {
                for (i, f) in value.as_array().into_iter().flatten().enumerate() {
                    match f.as_str() {
                        Some(f) if templates::is_templated(f) => cx.skip(&format!("{at}[{i}]"), templates::literal_reason(f)),
                        Some(f) => r.values_files.push(PathBuf::from(cx.rebase(dir, f))),
                        None => {}
                    }
                }
            }
            "setValues" => {
                for (k, v) in value.as_object().into_iter().flatten() {
                    match scalar(v) {
                        Some(s) => {
                            r.set_values.insert(k.clone(), s);
                        }
                        None => cx.skip(&format!("{at}.{k}"), "not a scalar"),
                    }
                }
            }
            "setValueTemplates" => {
                for (k, v) in value.as_object().into_iter().flatten() {
                    let text = scalar(v).unwrap_or_default();
                    match templates::translate(&text) {
                        Ok(t) => {
                            r.set_value_templates.insert(k.clone(), t);
                        }
                        Err(reason) => cx.skip(&format!("{at}.{k}"), reason),
                    }
                }
            }
            "artifactOverrides" => overrides = value.as_object().map(|o| (o, at)),
            "imageStrategy" => strategy = Some(value),
            "createNamespace" => cx.note(&at, "devloop creates a missing namespace itself (and never deletes it)"),
            "version" => cx.skip(&at, "devloop passes no chart version: name a packaged chart (`chart-1.2.3.tgz`) or pin it in `Chart.yaml`"),
            "repo" => cx.skip(&at, "add the repository to helm (`helm repo add`) and name the chart `repo/chart`"),
            "setFiles" => cx.skip(&at, "devloop has no `--set-file`: put the values in a values file"),
            "overrides" => cx.skip(&at, "inline values are not converted: move them into a values file and list it in `valuesFiles`"),
            "wait" | "recreatePods" | "upgradeOnChange" | "skipTests" | "useHelmSecrets" | "packaged" | "skipBuildDependencies" | "dependsOn" => cx.skip(
                &at,
                "devloop renders with `helm template` and applies the objects itself: helm install options do not apply",
            ),
            _ => cx.skip(&at, "not a field of a helm release devloop converts"),
        }
    }
    if let Some((o, at)) = overrides {
        artifact_overrides(cx, &at, o, strategy, &mut r.set_value_templates);
    }
    Some(r)
}

/// v2's `artifactOverrides` (a value key → an artifact image), set the way its `imageStrategy` sets them:
/// `fqn` (the default) the full reference, `helm` `key.repository` and `key.tag`.
fn artifact_overrides(
    cx: &mut Cx,
    at: &str,
    o: &Map<String, Value>,
    strategy: Option<&Value>,
    out: &mut BTreeMap<String, String>,
) {
    let helm = strategy.and_then(|s| s.get("helm"));
    if helm
        .and_then(|h| h.get("explicitRegistry"))
        .and_then(Value::as_bool)
        == Some(true)
    {
        cx.skip(at, "`imageStrategy.helm.explicitRegistry` splits the registry off, and devloop has no registry field");
        return;
    }
    for (key, image) in o {
        let Some(image) = image.as_str() else {
            continue;
        };
        let k = templates::image_key(image);
        if helm.is_some() {
            out.insert(
                format!("{key}.repository"),
                format!("{{{{.IMAGE_REPO_{k}}}}}"),
            );
            out.insert(format!("{key}.tag"), format!("{{{{.IMAGE_TAG_{k}}}}}"));
        } else {
            out.insert(key.clone(), format!("{{{{.IMAGE_FULLY_QUALIFIED_{k}}}}}"));
        }
    }
}

fn scalar(v: &Value) -> Option<String> {
    match v {
        Value::String(s) => Some(s.clone()),
        Value::Number(n) => Some(n.to_string()),
        Value::Bool(b) => Some(b.to_string()),
        _ => None,
    }
}
