//! Config, Skaffold import, build: Skaffold's `build:` (artifacts with the docker builder, `requires`, `sync`,
//! `hooks`; `local`; platforms) → devloop's `build:` part of one config, other builders and build environments
//! recorded with their reasons. Pure: paths are rebased, nothing is read.

use std::collections::BTreeMap;
use std::path::Path;

use serde_json::Value;

use super::{Cx, Part, tag_policy, templates};
use crate::config::hooks::{RawBuildHooks, RawHooks};
use crate::config::raw::{RawArtifact, RawDocker, RawRequire, RawSync, RawSyncRule};

/// Builders devloop does not have, and what to do instead.
const OTHER_BUILDERS: &[&str] = &["jib", "bazel", "kaniko", "buildpacks", "custom", "ko"];

/// Converts `build:` of a config in `dir` into `part`.
pub(super) fn convert(cx: &mut Cx, dir: &Path, v: &Value, part: &mut Part) {
    let Value::Object(m) = v else {
        cx.skip("build", "expected a mapping");
        return;
    };
    for (key, value) in m {
        let at = format!("build.{key}");
        match key.as_str() {
            "artifacts" => {
                for (i, a) in value.as_array().into_iter().flatten().enumerate() {
                    if let Some(a) = artifact(cx, dir, &format!("{at}[{i}]"), a) {
                        part.artifacts.push(a);
                    }
                }
            }
            "tagPolicy" => {
                if let Some(p) = tag_policy::convert(cx, &at, value) {
                    part.tag_policy = Some(p);
                }
            }
            "local" => local(cx, &at, value, part),
            "googleCloudBuild" => {
                cx.skip(
                    &at,
                    "devloop builds on the local Docker daemon, not on Cloud Build; `build.push: true` is set so the images still reach the registry",
                );
                part.push = Some(true);
            }
            "cluster" => cx.skip(
                &at,
                "devloop builds on the local Docker daemon, not in the cluster (kaniko)",
            ),
            "platforms" => match value.as_array().map(Vec::as_slice) {
                Some([Value::String(p)]) => part.platform = Some(p.clone()),
                Some([]) | None => {}
                Some(_) => cx.skip(&at, "devloop builds one platform (`build.platform`), not several"),
            },
            "insecureRegistries" => cx.skip(
                &at,
                "devloop pushes through the Docker daemon, which decides what is insecure (`insecure-registries` in daemon.json; loopback registries always are)",
            ),
            _ => cx.skip(&at, "not a field of Skaffold's `build` devloop converts"),
        }
    }
}

fn local(cx: &mut Cx, at: &str, v: &Value, part: &mut Part) {
    let Value::Object(m) = v else { return };
    for (key, value) in m {
        let at = format!("{at}.{key}");
        match (key.as_str(), value) {
            ("push", Value::Bool(b)) => part.push = Some(*b),
            ("useBuildkit", Value::Bool(b)) => part.use_buildkit = Some(*b),
            ("concurrency", Value::Number(n)) => {
                match n.as_u64().and_then(|n| u32::try_from(n).ok()) {
                    Some(n) => part.concurrency = Some(n),
                    None => cx.skip(&at, format!("`{n}` is not a count")),
                }
            }
            ("useDockerCLI", _) => cx.skip(
                &at,
                "devloop talks to the Docker Engine API; it never runs the docker CLI",
            ),
            ("tryImportMissing", _) => cx.skip(
                &at,
                "devloop builds what is missing; it does not pull earlier builds from the registry",
            ),
            (_, Value::Null) => {}
            _ => cx.skip(&at, "not a field of `build.local` devloop converts"),
        }
    }
}

/// One artifact; `None` when its builder is not Docker (the reason is recorded).
fn artifact(cx: &mut Cx, dir: &Path, at: &str, v: &Value) -> Option<RawArtifact> {
    let Value::Object(m) = v else {
        cx.skip(at, "expected a mapping");
        return None;
    };
    let Some(image) = m.get("image").and_then(Value::as_str) else {
        cx.skip(at, "an artifact without `image` is not converted");
        return None;
    };
    if let Some(builder) = OTHER_BUILDERS.iter().find(|b| m.contains_key(**b)) {
        cx.skip(
            &format!("{at}.{builder}"),
            format!(
                "artifact `{image}` is not converted: devloop builds with Docker only (a Dockerfile that produces the same image can replace the `{builder}` builder)"
            ),
        );
        return None;
    }
    let mut a = RawArtifact {
        image: image.to_string(),
        ..Default::default()
    };
    let context = m.get("context").and_then(Value::as_str).unwrap_or(".");
    let rebased = cx.rebase(dir, context);
    a.context = (rebased != ".").then_some(rebased);
    for (key, value) in m {
        let at = format!("{at}.{key}");
        match key.as_str() {
            "image" | "context" => {}
            "docker" => a.docker = docker(cx, &at, value),
            "requires" => a.requires = requires(cx, &at, value),
            "sync" => a.sync = sync(cx, &at, value),
            "hooks" => a.hooks = parse::<RawBuildHooks>(cx, &at, value),
            "platforms" => cx.skip(
                &at,
                "devloop builds every artifact for one platform (`build.platform`)",
            ),
            _ => cx.skip(&at, "not a field of a Skaffold artifact devloop converts"),
        }
    }
    Some(a)
}

fn docker(cx: &mut Cx, at: &str, v: &Value) -> Option<RawDocker> {
    let Value::Object(m) = v else { return None };
    let mut d = RawDocker::default();
    for (key, value) in m {
        let at = format!("{at}.{key}");
        match (key.as_str(), value) {
            ("dockerfile", Value::String(s)) => d.dockerfile = Some(s.clone()),
            ("target", Value::String(s)) => d.target = Some(s.clone()),
            ("buildArgs", Value::Object(args)) => {
                let mut out = BTreeMap::new();
                for (name, value) in args {
                    let at = format!("{at}.{name}");
                    let text = match value {
                        Value::String(s) => s.clone(),
                        Value::Number(n) => n.to_string(),
                        Value::Bool(b) => b.to_string(),
                        _ => {
                            // A build arg without a value takes the variable of the same name from the
                            // environment of `docker build`; devloop's template for that is `{{.NAME}}`.
                            cx.note(&at, format!("no value: `{{{{.{name}}}}}` (the environment variable) is passed instead, and it must be set"));
                            format!("{{{{.{name}}}}}")
                        }
                    };
                    match templates::translate(&text) {
                        Ok(t) => {
                            out.insert(name.clone(), t);
                        }
                        Err(reason) => {
                            cx.skip(&at, format!("{reason}; the build arg is not passed"))
                        }
                    }
                }
                d.build_args = (!out.is_empty()).then_some(out);
            }
            (_, Value::Null) => {}
            _ => cx.skip(&at, "not a field of the docker builder devloop converts"),
        }
    }
    Some(d)
}

fn requires(cx: &mut Cx, at: &str, v: &Value) -> Option<Vec<RawRequire>> {
    let mut out = Vec::new();
    for (i, r) in v.as_array().into_iter().flatten().enumerate() {
        match serde_json::from_value::<RawRequire>(r.clone()) {
            Ok(r) => out.push(r),
            Err(e) => cx.skip(&format!("{at}[{i}]"), format!("not converted: {e}")),
        }
    }
    (!out.is_empty()).then_some(out)
}

fn sync(cx: &mut Cx, at: &str, v: &Value) -> Option<RawSync> {
    let Value::Object(m) = v else { return None };
    let mut s = RawSync::default();
    for (key, value) in m {
        let at = format!("{at}.{key}");
        match key.as_str() {
            "manual" => {
                for (i, r) in value.as_array().into_iter().flatten().enumerate() {
                    match serde_json::from_value::<RawSyncRule>(r.clone()) {
                        Ok(r) => s.manual.push(r),
                        Err(e) => cx.skip(&format!("{at}[{i}]"), format!("not converted: {e}")),
                    }
                }
            }
            "infer" => s.infer = value.as_array().into_iter().flatten().filter_map(|g| g.as_str().map(str::to_string)).collect(),
            "hooks" => s.hooks = parse::<RawHooks>(cx, &at, value),
            "auto" => cx.skip(&at, "automatic sync is for Jib and Buildpacks artifacts; list the files in `sync.manual` or `sync.infer`"),
            _ => cx.skip(&at, "not a field of `sync` devloop converts"),
        }
    }
    (!s.manual.is_empty() || !s.infer.is_empty() || s.hooks.is_some()).then_some(s)
}

/// A section whose Skaffold shape is devloop's (hooks): taken as is, or recorded with the parser's reason.
pub(super) fn parse<T: serde::de::DeserializeOwned>(cx: &mut Cx, at: &str, v: &Value) -> Option<T> {
    match serde_json::from_value::<T>(v.clone()) {
        Ok(t) => Some(t),
        Err(e) => {
            cx.skip(at, format!("not converted: {e}"));
            None
        }
    }
}
