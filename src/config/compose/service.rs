//! Compose import, one service: each key of a compose service → the devloop container or artifact field it
//! becomes, or a finding that says why it does not (its `build`, volumes and environment have files of their
//! own). Reads nothing; writes nothing.

use serde_json::{Map, Value};

use super::syntax::{bracket, duration, duration_ns, list, random_port_reason, short_port};
use super::{Cx, DependsDraft, Draft, GENERIC, invalid, kind, scalar, words};
use crate::config::ConfigError;
use crate::config::deploy::{RawContainer, RawHealthcheck};

/// Why a service key is not converted; `None`: the generic reason.
fn unsupported_reason(key: &str) -> Option<&'static str> {
    Some(match key {
        "network_mode" => "devloop runs every container on the project network",
        "links" | "external_links" => {
            "containers reach each other by service name on the project network; link aliases are not created"
        }
        "deploy" | "scale" => {
            "devloop runs one container per service; `deploy` (replicas, resources, restart_policy) is not used"
        }
        "extends" => "not resolved: the settings it would inherit are missing from this container",
        "secrets" | "configs" => {
            "devloop has no secrets or configs; mount the file with a bind volume instead (`./file:/run/secrets/name:ro`)"
        }
        "labels" | "label_file" | "annotations" => {
            "devloop labels its containers itself; other labels are not set"
        }
        "expose" => {
            "containers reach every port of each other on the project network: nothing to convert"
        }
        "develop" => {
            "`devloop dev` rebuilds and restarts on changes to an artifact's context; `develop.watch` rules are not converted"
        }
        "pull_policy" => {
            "devloop builds artifacts and pulls other images only when the daemon does not have them"
        }
        "platform" => "devloop builds every artifact for one platform, `build.platform`",
        "stop_signal" => {
            "devloop stops containers with SIGTERM, then kills them after `stopGracePeriod`"
        }
        "tmpfs" => "devloop mounts no tmpfs",
        "volumes_from" => "not supported: share a named volume instead",
        "provider" => "provider services are run by compose plugins; devloop cannot run them",
        _ => return None,
    })
}

impl Cx<'_> {
    pub(super) fn service(&mut self, name: &str, v: &Value) -> Result<Draft, ConfigError> {
        let mut draft = Draft {
            service: name.to_string(),
            container: None,
            build: None,
            image: None,
            depends_on: Vec::new(),
            profiles: Vec::new(),
            stop_grace_secs: None,
        };
        let field = |k: &str| format!("services.{name}.{k}");
        let s = match v {
            Value::Object(m) => m.clone(),
            Value::Null => Map::new(),
            other => {
                return Err(invalid(
                    &self.file,
                    format!("services.{name}"),
                    format!("expected a mapping, found {}", kind(other)),
                    None,
                ));
            }
        };
        let valid_name = name.starts_with(|c: char| c.is_ascii_alphanumeric())
            && name
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.'));
        if !valid_name {
            self.skip(
                name,
                format!("`{name}` is not a valid container name (letters, digits, `-`, `_`, `.`)"),
            );
            return Ok(draft);
        }
        draft.image = match s.get("image") {
            None | Some(Value::Null) => None,
            Some(i) => Some(scalar(i).ok_or_else(|| {
                invalid(
                    &self.file,
                    field("image"),
                    format!("expected an image reference, found {}", kind(i)),
                    None,
                )
            })?),
        };
        let mut build_failed = false;
        if let Some(b) = s.get("build").filter(|b| !b.is_null()) {
            match self.build(name, b, draft.image.as_deref())? {
                Some(bd) => draft.build = Some(bd),
                None => build_failed = true,
            }
        }
        let Some(image) = self.image_to_run(name, &s, &draft, build_failed)? else {
            return Ok(draft);
        };
        let mut c = RawContainer {
            name: name.to_string(),
            image,
            ..Default::default()
        };
        for (key, value) in &s {
            self.container_key(name, key, value, &mut c, &mut draft);
        }
        draft.container = Some(c);
        Ok(draft)
    }

    /// The image the service's container runs: the artifact its build makes, else its `image`; `None` (recorded)
    /// when it has neither that devloop can use.
    fn image_to_run(
        &mut self,
        name: &str,
        s: &Map<String, Value>,
        draft: &Draft,
        build_failed: bool,
    ) -> Result<Option<String>, ConfigError> {
        Ok(Some(match (&draft.build, &draft.image) {
            (Some(b), _) => b.name.clone(),
            (None, Some(i)) => {
                if build_failed {
                    self.note(
                        &format!("{name}.image"),
                        format!("runs `{i}` as it is (pulled when the daemon does not have it), since its build cannot be converted"),
                    );
                }
                i.clone()
            }
            (None, None) if build_failed => {
                self.skip(
                    name,
                    "its `build` cannot be converted (above) and it has no `image` to run instead",
                );
                return Ok(None);
            }
            (None, None) if s.contains_key("extends") => {
                self.skip(
                    name,
                    "no `image` or `build` of its own, and `extends` is not resolved: convert the service it extends by hand",
                );
                return Ok(None);
            }
            (None, None) if s.contains_key("provider") => {
                self.skip(
                    name,
                    "provider services are run by compose plugins; devloop cannot run them",
                );
                return Ok(None);
            }
            (None, None) => {
                return Err(invalid(
                    &self.file,
                    format!("services.{name}"),
                    "has neither `image` nor `build`",
                    Some(
                        "compose rejects this service too: give it an `image:` to run or a `build:` to build",
                    ),
                ));
            }
        }))
    }

    /// One key of a service: set on the container or the draft, or recorded as not converted.
    fn container_key(
        &mut self,
        name: &str,
        key: &str,
        value: &Value,
        c: &mut RawContainer,
        draft: &mut Draft,
    ) {
        let at = format!("{name}.{key}");
        match key {
            "image" | "build" => {}
            "ports" => c.ports = self.ports(&at, value),
            "environment" => c.env = self.environment(&at, value),
            "env_file" => c.env_file = self.env_files(&at, value),
            "volumes" => c.volumes = self.volumes(&at, value),
            "command" => c.args = self.argv(&at, value, "args"),
            "entrypoint" => c.command = self.argv(&at, value, "command"),
            "healthcheck" => c.healthcheck = self.healthcheck(&at, value),
            "depends_on" => draft.depends_on = self.depends_on(&at, value),
            "restart" => c.restart = self.restart(&at, value),
            "init" => match value {
                Value::Bool(b) => c.init = b.then_some(true),
                other => self.skip(
                    &at,
                    format!("expected `true` or `false`, found {}", kind(other)),
                ),
            },
            "profiles" => draft.profiles = self.profiles(&at, value),
            "stop_grace_period" => {
                draft.stop_grace_secs = self.stop_grace(&at, value);
            }
            "container_name" => {
                let wanted = scalar(value).unwrap_or_default();
                let ours = format!("{}-{name}", self.project);
                if wanted == ours {
                    self.note(&at, format!("devloop names the container `{ours}` too"));
                } else {
                    self.skip(
                        &at,
                        format!("devloop names the container `{ours}`; other containers reach it as `{name}` or `{ours}`, not `{wanted}`"),
                    );
                }
            }
            "networks" => self.skip(
                &at,
                format!(
                    "devloop puts every container on one network, `devloop-{}`, where they reach each other by service name; other networks and aliases are not created",
                    self.project
                ),
            ),
            k if k.starts_with("x-") => self.skip(&at, "extension field: not converted"),
            k => self.skip(&at, unsupported_reason(k).unwrap_or(GENERIC)),
        }
    }

    fn ports(&mut self, at: &str, v: &Value) -> Vec<String> {
        let mut out = Vec::new();
        for (i, p) in list(v).iter().enumerate() {
            let at = format!("{at}[{i}]");
            let result = match p {
                Value::Object(m) => self.long_port(&at, m),
                other => match scalar(other) {
                    Some(s) => short_port(&s),
                    None => Err(format!("expected a port mapping, found {}", kind(other))),
                },
            };
            match result {
                Ok(ports) => out.extend(ports),
                Err(reason) => self.skip(&at, reason),
            }
        }
        out
    }

    fn long_port(&mut self, at: &str, m: &Map<String, Value>) -> Result<Vec<String>, String> {
        for key in m.keys() {
            if !matches!(
                key.as_str(),
                "target" | "published" | "host_ip" | "protocol"
            ) {
                self.skip(
                    &format!("{at}.{key}"),
                    "devloop's port mappings have no equivalent",
                );
            }
        }
        let target = m
            .get("target")
            .and_then(scalar)
            .ok_or_else(|| "no `target` port".to_string())?;
        let published = m.get("published").and_then(scalar).unwrap_or_default();
        let mut spec = String::new();
        if let Some(ip) = m.get("host_ip").and_then(scalar) {
            spec.push_str(&bracket(&ip));
            spec.push(':');
        }
        spec.push_str(&published);
        spec.push(':');
        spec.push_str(&target);
        if let Some(proto) = m.get("protocol").and_then(scalar) {
            spec.push('/');
            spec.push_str(&proto);
        }
        if published.is_empty() {
            return Err(random_port_reason(&target));
        }
        short_port(&spec)
    }

    /// `command`/`entrypoint` → an argv (`None`, with a finding, when it cannot be expressed).
    fn argv(&mut self, at: &str, v: &Value, devloop_field: &str) -> Option<Vec<String>> {
        let words = match v {
            Value::Null => return None,
            Value::Array(items) => items
                .iter()
                .map(|i| scalar(i).unwrap_or_default())
                .collect::<Vec<_>>(),
            other => {
                let text = scalar(other).unwrap_or_default();
                match words::split(&text) {
                    Ok(split) => {
                        if let Some(dropped) = &split.dropped {
                            self.note(
                                at,
                                format!("compose runs no shell and stops splitting at `{dropped}`, which it drops; so does this conversion: to run it all, write `[sh, -c, \"…\"]`"),
                            );
                        }
                        split.words
                    }
                    Err(e) => {
                        self.skip(at, format!("compose cannot split `{text}` either: {e}"));
                        return None;
                    }
                }
            }
        };
        if words.is_empty() {
            self.skip(
                at,
                format!("an empty value clears the image's default in compose; devloop's `{devloop_field}: []` keeps it"),
            );
            return None;
        }
        Some(words)
    }

    fn healthcheck(&mut self, at: &str, v: &Value) -> Option<RawHealthcheck> {
        let Value::Object(m) = v else {
            self.skip(at, format!("expected a mapping, found {}", kind(v)));
            return None;
        };
        if m.get("disable") == Some(&Value::Bool(true)) {
            return Some(RawHealthcheck {
                test: vec!["NONE".into()],
                ..Default::default()
            });
        }
        let mut h = RawHealthcheck::default();
        for (key, value) in m {
            let at = format!("{at}.{key}");
            match key.as_str() {
                "disable" => {}
                "test" => match value {
                    Value::Array(items) => {
                        let t: Vec<String> = items
                            .iter()
                            .map(|i| scalar(i).unwrap_or_default())
                            .collect();
                        if !matches!(
                            t.first().map(String::as_str),
                            Some("CMD" | "CMD-SHELL" | "NONE")
                        ) {
                            self.skip(
                                &at,
                                "a list `test` must start with `CMD`, `CMD-SHELL` or `NONE`",
                            );
                            return None;
                        }
                        h.test = t;
                    }
                    other => match scalar(other) {
                        Some(s) => h.test = vec!["CMD-SHELL".into(), s],
                        None => {
                            self.skip(&at, format!("expected a command, found {}", kind(other)));
                            return None;
                        }
                    },
                },
                "interval" | "timeout" | "start_period" => {
                    let text = scalar(value).unwrap_or_default();
                    match duration(&text) {
                        Some((d, exact)) => {
                            if !exact {
                                self.note(&at, format!("`{text}` rounded up to `{d}`: devloop counts whole milliseconds"));
                            }
                            match key.as_str() {
                                "interval" => h.interval = Some(d),
                                "timeout" => h.timeout = Some(d),
                                _ => h.start_period = Some(d),
                            }
                        }
                        None => self.skip(
                            &at,
                            format!("`{text}` is not a duration (`30s`, `1m30s`, `500ms`)"),
                        ),
                    }
                }
                "retries" => match value.as_u64().and_then(|r| u32::try_from(r).ok()) {
                    Some(r) => h.retries = Some(r),
                    None => self.skip(&at, format!("expected a number, found {}", kind(value))),
                },
                "start_interval" => {
                    self.skip(&at, "devloop's healthchecks have no `start_interval`")
                }
                _ => self.skip(&at, GENERIC),
            }
        }
        if h.test.is_empty() {
            self.skip(
                at,
                "no `test`: compose keeps the image's HEALTHCHECK command and changes its timing; devloop needs the command to set a healthcheck, so the image's own applies unchanged",
            );
            return None;
        }
        let unset: Vec<&str> = [
            ("interval", h.interval.is_none()),
            ("timeout", h.timeout.is_none()),
            ("retries", h.retries.is_none()),
        ]
        .into_iter()
        .filter_map(|(f, missing)| missing.then_some(f))
        .collect();
        if !unset.is_empty() && h.test.first().map(String::as_str) != Some("NONE") {
            self.note(
                at,
                format!(
                    "{} not set: devloop's defaults (interval 2s, timeout 5s, 30 retries) apply, where Docker takes the image's or 30s, 30s, 3",
                    unset.iter().map(|f| format!("`{f}`")).collect::<Vec<_>>().join(", ")
                ),
            );
        }
        Some(h)
    }

    fn depends_on(&mut self, at: &str, v: &Value) -> Vec<DependsDraft> {
        let mut out = Vec::new();
        match v {
            Value::Array(items) => {
                for (i, item) in items.iter().enumerate() {
                    if let Some(service) = scalar(item) {
                        out.push(DependsDraft {
                            service,
                            condition: None,
                            at: format!("{at}[{i}]"),
                        });
                    }
                }
            }
            Value::Object(m) => {
                for (service, spec) in m {
                    let dep_at = format!("{at}.{service}");
                    let mut condition = None;
                    if let Value::Object(opts) = spec {
                        for (key, value) in opts {
                            match key.as_str() {
                                "condition" => match scalar(value).as_deref() {
                                    Some("service_started") => {
                                        condition = Some("started".to_string())
                                    }
                                    Some("service_healthy") => {
                                        condition = Some("healthy".to_string())
                                    }
                                    Some("service_completed_successfully") => {
                                        condition = Some("completed".to_string())
                                    }
                                    other => self.skip(
                                        &format!("{dep_at}.condition"),
                                        format!(
                                            "unknown condition `{}`: `started` is used",
                                            other.unwrap_or_default()
                                        ),
                                    ),
                                },
                                "restart" => {
                                    if value == &Value::Bool(true) {
                                        self.skip(
                                            &format!("{dep_at}.restart"),
                                            format!("devloop does not restart this container when `{service}` is replaced"),
                                        );
                                    }
                                }
                                "required" => {
                                    if value == &Value::Bool(false) {
                                        self.note(
                                            &format!("{dep_at}.required"),
                                            format!("devloop always waits for `{service}`; it is not optional"),
                                        );
                                    }
                                }
                                _ => self.skip(&format!("{dep_at}.{key}"), GENERIC),
                            }
                        }
                    }
                    out.push(DependsDraft {
                        service: service.clone(),
                        condition,
                        at: dep_at,
                    });
                }
            }
            Value::Null => {}
            other => self.skip(
                at,
                format!("expected a list or a mapping, found {}", kind(other)),
            ),
        }
        out
    }

    fn restart(&mut self, at: &str, v: &Value) -> Option<String> {
        let text = match v {
            // `restart: no` unquoted is a boolean in YAML 1.1 readers.
            Value::Bool(false) => "no".to_string(),
            other => scalar(other).unwrap_or_default(),
        };
        match text.as_str() {
            "no" => Some("no".into()),
            "always" | "on-failure" | "unless-stopped" => Some(text),
            t if t.starts_with("on-failure:") => {
                self.note(
                    at,
                    format!("`{t}`: devloop's `on-failure` retries without a limit"),
                );
                Some("on-failure".into())
            }
            other => {
                self.skip(at, format!("unknown restart policy `{other}`"));
                None
            }
        }
    }

    fn profiles(&mut self, at: &str, v: &Value) -> Vec<String> {
        let names: Vec<String> = list(v).iter().filter_map(scalar).collect();
        if !names.is_empty() {
            self.note(
                at,
                format!(
                    "converted to devloop {}: the container runs only with {}",
                    if names.len() == 1 {
                        "profile"
                    } else {
                        "profiles"
                    },
                    names
                        .iter()
                        .map(|p| format!("`-p {p}`"))
                        .collect::<Vec<_>>()
                        .join(" or ")
                ),
            );
        }
        names
    }

    fn stop_grace(&mut self, at: &str, v: &Value) -> Option<u64> {
        let text = scalar(v).unwrap_or_default();
        match duration_ns(&text) {
            Some(ns) => Some(ns.div_ceil(1_000_000_000)),
            None => {
                self.skip(at, format!("`{text}` is not a duration"));
                None
            }
        }
    }
}
