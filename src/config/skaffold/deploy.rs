//! Config, Skaffold import, deploy: Skaffold's `deploy:` (kubectl, kustomize and helm deployers, their hooks,
//! the deploy settings devloop takes from flags) and `portForward:` → devloop's `deploy.hooks`, the manifests
//! of v2 deployers and `portForward`. Deployers devloop lacks are recorded with their reasons. Pure.

use std::path::Path;

use serde_json::Value;

use super::build::parse;
use super::documents::Layout;
use super::{Cx, Part, manifests, templates};
use crate::config::hooks::RawHooks;
use crate::config::raw::{RawPort, RawPortForward};

/// Converts `deploy:` of a config in `dir` into `part`.
pub(super) fn convert(cx: &mut Cx, dir: &Path, layout: Layout, v: &Value, part: &mut Part) {
    let Value::Object(m) = v else {
        cx.skip("deploy", "expected a mapping");
        return;
    };
    for (key, value) in m {
        let at = format!("deploy.{key}");
        match key.as_str() {
            "kubectl" => {
                if layout == Layout::V2 {
                    match value.get("manifests") {
                        Some(list) => manifests::raw_yaml(cx, dir, &format!("{at}.manifests"), list, part),
                        // Skaffold's default for the kubectl deployer.
                        None => part.raw_yaml.push(cx.rebase(dir, "k8s/*.yaml")),
                    }
                }
                deployer(cx, dir, &at, value, part, &["manifests"]);
            }
            "kustomize" if layout == Layout::V2 => {
                manifests::kustomize(cx, dir, &at, value, part);
                hooks(cx, dir, &at, value, part);
            }
            "helm" => {
                manifests::helm(cx, dir, &at, value, part);
                hooks(cx, dir, &at, value, part);
            }
            "kpt" => cx.skip(&at, "devloop does not deploy with kpt"),
            "docker" => cx.skip(
                &at,
                "Skaffold's docker deployer is not converted: devloop's `deploy.docker` runs containers from `deploy.docker.containers` (see `devloop init --from-compose`)",
            ),
            "cloudrun" => cx.skip(&at, "devloop deploys to Kubernetes or the local Docker daemon, not Cloud Run"),
            "kubeContext" => cx.skip(&at, "pass `--kube-context CONTEXT` (devloop's config names no cluster)"),
            "statusCheckDeadlineSeconds" => cx.skip(
                &at,
                format!("pass `--status-check-deadline {}s` (default 10m)", value.as_u64().unwrap_or_default()),
            ),
            "statusCheck" if value == &Value::Bool(false) => cx.skip(&at, "pass `--no-status-check`"),
            "statusCheck" => {}
            "tolerateFailuresUntilDeadline" => cx.skip(&at, "devloop fails a rollout at the first failure it can diagnose"),
            "logs" => cx.skip(&at, "devloop prefixes every log line with `pod/container │`; no JSON parsing"),
            "transformableAllowList" | "transformableDenyList" => cx.skip(
                &at,
                "devloop rewrites images in the kinds it knows; list other kinds' image fields in `manifests.images`",
            ),
            _ => cx.skip(&at, "not a deployer or setting devloop converts"),
        }
    }
}

/// The deploy-time fields of a kubectl deployer (v2 and v3/v4): flags, namespace, remote manifests, hooks.
fn deployer(cx: &mut Cx, dir: &Path, at: &str, v: &Value, part: &mut Part, handled: &[&str]) {
    let Value::Object(m) = v else { return };
    for (key, value) in m {
        let at = format!("{at}.{key}");
        match key.as_str() {
            k if handled.contains(&k) => {}
            "hooks" => {}
            "flags" => cx.skip(&at, "devloop applies objects through the API (server-side apply): kubectl flags do not apply"),
            "defaultNamespace" => cx.skip(&at, "pass `-n NAMESPACE` (or set it in the kube context)"),
            "remoteManifests" => cx.skip(&at, "devloop deploys what it renders; objects that live only in the cluster are not re-applied"),
            _ if value.is_null() => {}
            _ => cx.skip(&at, "not a field of the kubectl deployer devloop converts"),
        }
    }
    hooks(cx, dir, at, v, part);
}

/// A deployer's `hooks` → devloop's `deploy.hooks` (the same shape); host `dir`s rebased.
fn hooks(cx: &mut Cx, dir: &Path, at: &str, v: &Value, part: &mut Part) {
    let Some(h) = v.get("hooks") else { return };
    let Some(mut h) = parse::<RawHooks>(cx, &format!("{at}.hooks"), h) else {
        return;
    };
    for hook in h.before.iter_mut().chain(h.after.iter_mut()) {
        if let Some(host) = &mut hook.host
            && let Some(d) = &host.dir
        {
            host.dir = Some(cx.rebase(dir, d));
        }
    }
    part.hooks.before.extend(h.before);
    part.hooks.after.extend(h.after);
}

/// `portForward:` → devloop's (the same fields; resource types devloop forwards to).
pub(super) fn port_forwards(cx: &mut Cx, v: &Value, part: &mut Part) {
    for (i, p) in v.as_array().into_iter().flatten().enumerate() {
        let at = format!("portForward[{i}]");
        if let Some(p) = port_forward(cx, &at, p) {
            part.port_forward.push(p);
        }
    }
}

fn port_forward(cx: &mut Cx, at: &str, v: &Value) -> Option<RawPortForward> {
    let kind = v
        .get("resourceType")
        .and_then(Value::as_str)
        .unwrap_or("service")
        .to_lowercase();
    if !matches!(
        kind.as_str(),
        "service" | "deployment" | "statefulset" | "pod"
    ) {
        cx.skip(
            &format!("{at}.resourceType"),
            format!(
                "devloop forwards to a service, deployment, statefulset or pod, not a `{kind}`"
            ),
        );
        return None;
    }
    let name = v
        .get("resourceName")
        .and_then(Value::as_str)
        .unwrap_or_default();
    if name.is_empty() || templates::is_templated(name) {
        cx.skip(
            &format!("{at}.resourceName"),
            if name.is_empty() {
                "missing".to_string()
            } else {
                templates::literal_reason(name)
            },
        );
        return None;
    }
    let port = match v.get("port") {
        Some(Value::Number(n)) => RawPort::Number(n.as_u64().and_then(|n| u16::try_from(n).ok())?),
        Some(Value::String(s)) => match s.parse::<u16>() {
            Ok(n) => RawPort::Number(n),
            Err(_) => RawPort::Name(s.clone()),
        },
        _ => {
            cx.skip(&format!("{at}.port"), "missing");
            return None;
        }
    };
    let mut p = RawPortForward {
        resource_type: (kind != "service").then_some(kind),
        resource_name: name.to_string(),
        port,
        local_port: v
            .get("localPort")
            .and_then(Value::as_u64)
            .and_then(|n| u16::try_from(n).ok()),
        address: v.get("address").and_then(Value::as_str).map(str::to_string),
        ..Default::default()
    };
    match v.get("namespace").and_then(Value::as_str) {
        Some(ns) if templates::is_templated(ns) => {
            cx.skip(&format!("{at}.namespace"), templates::literal_reason(ns))
        }
        Some(ns) => p.namespace = Some(ns.to_string()),
        None => {}
    }
    for key in v.as_object().into_iter().flatten().map(|(k, _)| k) {
        if !matches!(
            key.as_str(),
            "resourceType" | "resourceName" | "namespace" | "port" | "localPort" | "address"
        ) {
            cx.skip(
                &format!("{at}.{key}"),
                "not a field of `portForward` devloop converts",
            );
        }
    }
    Some(p)
}
