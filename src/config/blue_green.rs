//! Config, `deploy.kubernetes.blueGreen[]`: releases that switch a Service from one copy of its Deployments to a
//! second, verified one. Serde mirror and validation (names, durations, the verify check); knows nothing of the
//! cluster.

use std::time::Duration;

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use super::{ConfigError, invalid};

/// `deploy.kubernetes`.
#[derive(Debug, Clone, Default, PartialEq, Eq, Deserialize, Serialize, JsonSchema)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct RawKubernetesDeploy {
    /// Blue/green releases for `devloop run` and `devloop deploy` (never `dev`): each Service's Deployments get a
    /// second copy, the Service switches to it once it is ready (and verified), the previous copy stays for
    /// `devloop rollback`.
    // Serialized even when empty: a profile's `blueGreen: []` under `replace:` turns blue/green off.
    #[serde(default)]
    pub blue_green: Vec<RawBlueGreen>,
}

/// `deploy.kubernetes.blueGreen[]`.
#[derive(Debug, Clone, Default, PartialEq, Eq, Deserialize, Serialize, JsonSchema)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct RawBlueGreen {
    /// The Service whose traffic switches, as named in the manifests.
    pub service: String,
    /// The Service's namespace when the manifests hold Services of that name in several namespaces.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub namespace: Option<String>,
    /// The Deployments behind the Service. Default: every rendered Deployment in its namespace whose pods the
    /// Service's selector reaches.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub deployments: Vec<String>,
    /// A check of the new copy before traffic moves to it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub verify: Option<RawVerify>,
    /// How long the previous copy keeps running at full scale after the switch (instant rollback), e.g. `30s`,
    /// `10m`, `0s`; or `untilNextDeploy`. Default `30s`. Then it is scaled to zero; `devloop rollback` scales it
    /// back up while it exists.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub keep_previous: Option<String>,
}

/// `verify:` — one of `http` or `job`.
#[derive(Debug, Clone, Default, PartialEq, Eq, Deserialize, Serialize, JsonSchema)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct RawVerify {
    /// An HTTP GET through a port-forward to each new Deployment's pods.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub http: Option<RawHttpVerify>,
    /// A Job run to completion; it reaches the new pods through the Service `<service>-preview`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub job: Option<RawJobVerify>,
    /// How long the check may take, e.g. `60s` (default `60s`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub timeout: Option<String>,
}

/// `verify.http`.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize, Serialize, JsonSchema)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct RawHttpVerify {
    /// The container port: a number or a port name.
    pub port: super::scalar::RawPort,
    /// The path requested (default `/`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub path: Option<String>,
    /// The status the answer must have (default: any 2xx).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub status: Option<u16>,
}

/// `verify.job`.
#[derive(Debug, Clone, Default, PartialEq, Eq, Deserialize, Serialize, JsonSchema)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct RawJobVerify {
    /// An artifact's `image` (its built image is used) or any image the nodes can pull.
    pub image: String,
    /// The command (argv); it gets `PREVIEW_URL` (`http://<service>-preview.<namespace>.svc:<first port>`),
    /// `DEVLOOP_COLOR` and `DEVLOOP_SERVICE`.
    pub command: Vec<String>,
}

/// A validated blue/green release.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BlueGreen {
    /// Where it came from (`devloop.yaml: deploy.kubernetes.blueGreen[0]`), for messages.
    pub field: String,
    pub service: String,
    pub namespace: Option<String>,
    /// Empty: those the Service's selector reaches.
    pub deployments: Vec<String>,
    pub verify: Option<Verify>,
    pub keep_previous: KeepPrevious,
}

/// How the new copy is checked before the switch.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Verify {
    pub check: Check,
    pub timeout: Duration,
}

/// The check itself.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Check {
    Http {
        /// A number or a port name.
        port: String,
        path: String,
        /// `None`: any 2xx.
        status: Option<u16>,
    },
    Job {
        image: String,
        command: Vec<String>,
    },
}

/// What happens to the previous copy after the switch.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum KeepPrevious {
    /// Scaled to zero this long after the switch (the deploy waits).
    For(Duration),
    /// Left at full scale; the next deploy replaces it.
    UntilNextDeploy,
}

/// Default `keepPrevious`.
pub const DEFAULT_KEEP_PREVIOUS: Duration = Duration::from_secs(30);
/// Default `verify.timeout`.
pub const DEFAULT_VERIFY_TIMEOUT: Duration = Duration::from_secs(60);

/// Validates `deploy.kubernetes`.
pub(super) fn validate(
    file: &str,
    raw: Option<&RawKubernetesDeploy>,
) -> Result<Vec<BlueGreen>, ConfigError> {
    let Some(raw) = raw else {
        return Ok(Vec::new());
    };
    let mut out: Vec<BlueGreen> = Vec::new();
    for (i, r) in raw.blue_green.iter().enumerate() {
        let field = format!("deploy.kubernetes.blueGreen[{i}]");
        let at = |f: &str| format!("{field}.{f}");
        if !is_dns_label(&r.service) {
            return Err(invalid(
                file,
                at("service"),
                format!("`{}` is not a Service name", r.service),
                Some("name a Service of the manifests: lowercase letters, digits and `-`"),
            ));
        }
        for (j, d) in r.deployments.iter().enumerate() {
            // The copies are named `<name>-blue` / `<name>-green`: the name must leave room for the suffix.
            if !is_dns_subdomain(d) || d.len() > 253 - 6 {
                return Err(invalid(
                    file,
                    at(&format!("deployments[{j}]")),
                    format!("`{d}` is not a Deployment name"),
                    Some("name a Deployment of the manifests"),
                ));
            }
        }
        if let Some(j) = raw.blue_green[..i]
            .iter()
            .position(|b| b.service == r.service && b.namespace == r.namespace)
        {
            return Err(invalid(
                file,
                at("service"),
                format!(
                    "Service `{}` is already listed in blueGreen[{j}]",
                    r.service
                ),
                Some("list each Service once"),
            ));
        }
        let keep_previous = match r.keep_previous.as_deref() {
            None => KeepPrevious::For(DEFAULT_KEEP_PREVIOUS),
            Some("untilNextDeploy") => KeepPrevious::UntilNextDeploy,
            Some(s) => KeepPrevious::For(duration(s).ok_or_else(|| {
                invalid(
                    file,
                    at("keepPrevious"),
                    format!("`{s}` is not a duration"),
                    Some("write e.g. `30s`, `10m`, `1h`, `0s`, or `untilNextDeploy`"),
                )
            })?),
        };
        let verify = match &r.verify {
            None => None,
            Some(v) => Some(validate_verify(file, &at("verify"), v)?),
        };
        out.push(BlueGreen {
            field: format!("{file}: {field}"),
            service: r.service.clone(),
            namespace: r.namespace.clone(),
            deployments: r.deployments.clone(),
            verify,
            keep_previous,
        });
    }
    Ok(out)
}

fn validate_verify(file: &str, field: &str, v: &RawVerify) -> Result<Verify, ConfigError> {
    let timeout = match v.timeout.as_deref() {
        None => DEFAULT_VERIFY_TIMEOUT,
        Some(s) => duration(s).filter(|d| !d.is_zero()).ok_or_else(|| {
            invalid(
                file,
                format!("{field}.timeout"),
                format!("`{s}` is not a duration above zero"),
                Some("write e.g. `30s`, `2m`"),
            )
        })?,
    };
    let check = match (&v.http, &v.job) {
        (Some(h), None) => {
            let port = match &h.port {
                super::scalar::RawPort::Number(0) => {
                    return Err(invalid(
                        file,
                        format!("{field}.http.port"),
                        "port 0",
                        Some("name the container port the new pods serve on"),
                    ));
                }
                super::scalar::RawPort::Number(n) => n.to_string(),
                super::scalar::RawPort::Name(n) if !n.is_empty() => n.clone(),
                super::scalar::RawPort::Name(_) => {
                    return Err(invalid(
                        file,
                        format!("{field}.http.port"),
                        "empty port name",
                        None,
                    ));
                }
            };
            let path = h.path.clone().unwrap_or_else(|| "/".to_string());
            if !path.starts_with('/') || path.chars().any(|c| c.is_whitespace()) {
                return Err(invalid(
                    file,
                    format!("{field}.http.path"),
                    format!("`{path}` is not a request path"),
                    Some("start it with `/`, e.g. `/healthz`"),
                ));
            }
            if let Some(s) = h.status
                && !(100..=599).contains(&s)
            {
                return Err(invalid(
                    file,
                    format!("{field}.http.status"),
                    format!("`{s}` is not an HTTP status"),
                    Some("write e.g. `200`; leave it out to accept any 2xx"),
                ));
            }
            Check::Http {
                port,
                path,
                status: h.status,
            }
        }
        (None, Some(j)) => {
            if j.image.trim().is_empty() {
                return Err(invalid(
                    file,
                    format!("{field}.job.image"),
                    "empty",
                    Some("name an artifact's `image` or an image the nodes can pull"),
                ));
            }
            if j.command.is_empty() {
                return Err(invalid(
                    file,
                    format!("{field}.job.command"),
                    "empty",
                    Some(
                        "give the argv of the check, e.g. `[sh, -c, 'wget -q -O- $PREVIEW_URL/healthz']`",
                    ),
                ));
            }
            Check::Job {
                image: j.image.clone(),
                command: j.command.clone(),
            }
        }
        (Some(_), Some(_)) => {
            return Err(invalid(
                file,
                field,
                "both `http` and `job`",
                Some("choose one check"),
            ));
        }
        (None, None) => {
            return Err(invalid(
                file,
                field,
                "neither `http` nor `job`",
                Some("add `http: {port: 8080, path: /healthz}` or a `job`, or remove `verify`"),
            ));
        }
    };
    Ok(Verify { check, timeout })
}

/// `30s`, `10m`, `1h30m`, `500ms`, `0s`, `0`.
fn duration(s: &str) -> Option<Duration> {
    if s == "0" {
        return Some(Duration::ZERO);
    }
    super::scalar::parse_duration_ns(s)
        .filter(|ns| *ns >= 0)
        .map(|ns| Duration::from_nanos(ns as u64))
}

fn is_dns_label(s: &str) -> bool {
    !s.is_empty()
        && s.len() <= 63
        && s.bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-')
        && !s.starts_with('-')
        && !s.ends_with('-')
}

fn is_dns_subdomain(s: &str) -> bool {
    !s.is_empty() && s.len() <= 253 && s.split('.').all(is_dns_label)
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    fn one(yaml: &str) -> Result<Vec<BlueGreen>, ConfigError> {
        let raw: RawKubernetesDeploy = serde_saphyr::from_str(yaml).unwrap();
        validate("devloop.yaml", Some(&raw))
    }

    #[test]
    fn defaults_and_shapes() {
        let bg = one("blueGreen: [{service: api}]").unwrap();
        assert_eq!(
            bg[0].keep_previous,
            KeepPrevious::For(DEFAULT_KEEP_PREVIOUS)
        );
        assert!(bg[0].verify.is_none());
        let bg = one(
            "blueGreen: [{service: api, keepPrevious: untilNextDeploy, verify: {http: {port: http, path: /healthz}, timeout: 5s}}]",
        )
        .unwrap();
        assert_eq!(bg[0].keep_previous, KeepPrevious::UntilNextDeploy);
        let v = bg[0].verify.as_ref().unwrap();
        assert_eq!(v.timeout, Duration::from_secs(5));
        assert_eq!(
            v.check,
            Check::Http {
                port: "http".into(),
                path: "/healthz".into(),
                status: None
            }
        );
        let bg = one("blueGreen: [{service: api, keepPrevious: 0s}]").unwrap();
        assert_eq!(bg[0].keep_previous, KeepPrevious::For(Duration::ZERO));
    }

    #[test]
    fn a_profile_can_turn_blue_green_off() {
        let text = "apiVersion: devloop/v1alpha1\nkind: Config\nmetadata: {name: shop}\nmanifests: {rawYaml: [k8s/*.yaml]}\ndeploy:\n  kubernetes:\n    blueGreen: [{service: api}]\nprofiles:\n  - name: plain\n    replace: [deploy.kubernetes.blueGreen]\n    deploy:\n      kubernetes:\n        blueGreen: []\n";
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("devloop.yaml");
        std::fs::write(&file, text).unwrap();
        let load = |profiles: Vec<String>| {
            let opts = crate::config::LoadOptions {
                profiles,
                ..Default::default()
            };
            crate::config::load(&file, &opts, &|_: &str| None).unwrap()
        };
        assert_eq!(load(Vec::new()).blue_green.len(), 1);
        assert!(load(vec!["plain".into()]).blue_green.is_empty());
    }

    #[test]
    fn errors_name_the_field_and_value() {
        let e = one("blueGreen: [{service: api, keepPrevious: soon}]")
            .unwrap_err()
            .to_string();
        assert!(
            e.contains("deploy.kubernetes.blueGreen[0].keepPrevious") && e.contains("`soon`"),
            "{e}"
        );
        let e = one("blueGreen: [{service: Api_1}]")
            .unwrap_err()
            .to_string();
        assert!(
            e.contains("blueGreen[0].service") && e.contains("`Api_1`"),
            "{e}"
        );
        let e = one("blueGreen: [{service: api, verify: {timeout: 5s}}]")
            .unwrap_err()
            .to_string();
        assert!(
            e.contains("blueGreen[0].verify") && e.contains("neither"),
            "{e}"
        );
        let e = one("blueGreen: [{service: api}, {service: api}]")
            .unwrap_err()
            .to_string();
        assert!(
            e.contains("blueGreen[1].service") && e.contains("blueGreen[0]"),
            "{e}"
        );
        let e = one("blueGreen: [{service: api, verify: {http: {port: 80, path: health}}}]")
            .unwrap_err()
            .to_string();
        assert!(
            e.contains("verify.http.path") && e.contains("`health`"),
            "{e}"
        );
    }
}
