//! Config, `deploy:` section: where the project runs. Kubernetes (the default, from `manifests:`) or containers on
//! the local Docker daemon (`deploy.docker`). Serde mirror and validation; knows YAML shapes, not Docker.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

/// `deploy:` as written.
#[derive(Debug, Clone, Default, PartialEq, Eq, Deserialize, Serialize, JsonSchema)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct RawDeploy {
    /// Run the project as containers on the local Docker daemon instead of Kubernetes.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub docker: Option<RawDockerDeploy>,
    /// Commands run before and after each deploy (on the host, or in containers of this project's pods).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub hooks: Option<super::hooks::RawHooks>,
    /// How `run` and `deploy` release to Kubernetes: blue/green switches of Services.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub kubernetes: Option<super::blue_green::RawKubernetesDeploy>,
}

/// `deploy.docker`.
#[derive(Debug, Clone, Default, PartialEq, Eq, Deserialize, Serialize, JsonSchema)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct RawDockerDeploy {
    /// The containers, started in `dependsOn` order.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub containers: Vec<RawContainer>,
    /// Seconds a container gets to stop before it is killed (default 10).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub stop_grace_period: Option<u64>,
}

/// `deploy.docker.containers[]`.
#[derive(Debug, Clone, Default, PartialEq, Eq, Deserialize, Serialize, JsonSchema)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct RawContainer {
    /// Unique; other containers reach it by this name.
    pub name: String,
    /// An artifact's `image` (its built image is used) or any local image.
    pub image: String,
    /// Published ports, `[host_ip:]host:container[/tcp|udp]` (`8080` alone: 127.0.0.1:8080 → 8080).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub ports: Vec<String>,
    /// Environment variables; they win over `envFile`.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub env: BTreeMap<String, String>,
    /// `.env` files, relative to the config's directory, read in order.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub env_file: Vec<String>,
    /// `./src:/dst[:ro]` (a bind mount relative to the project) or `name:/dst[:ro]` (a named volume).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub volumes: Vec<String>,
    /// The entrypoint. Default: the image's.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub command: Option<Vec<String>>,
    /// The arguments. Default: the image's.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub args: Option<Vec<String>>,
    /// Docker's health check.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub healthcheck: Option<RawHealthcheck>,
    /// Containers that must be started, healthy or completed first.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub depends_on: Vec<RawDependsOn>,
    /// `no` (default), `always`, `on-failure` or `unless-stopped`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub restart: Option<String>,
    /// Run Docker's init (`docker run --init`) as PID 1: it forwards signals and reaps zombies, so a main process
    /// that ignores SIGTERM as PID 1 (busybox `httpd`, many shells) still stops at once.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub init: Option<bool>,
}

/// `healthcheck:` (Docker's, durations as `5s`, `1m`).
#[derive(Debug, Clone, Default, PartialEq, Eq, Deserialize, Serialize, JsonSchema)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct RawHealthcheck {
    /// `["CMD", "wget", "-q", "localhost:8080"]` or `["CMD-SHELL", "…"]`.
    pub test: Vec<String>,
    /// Time between checks, e.g. `5s`, `1m30s`, `500ms`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub interval: Option<String>,
    /// Time one check may take.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub timeout: Option<String>,
    /// Consecutive failures that make the container unhealthy.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub retries: Option<u32>,
    /// Time after start during which failures do not count.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub start_period: Option<String>,
}

/// `dependsOn[]`.
#[derive(Debug, Clone, Default, PartialEq, Eq, Deserialize, Serialize, JsonSchema)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct RawDependsOn {
    /// The container waited for.
    pub name: String,
    /// `started` (default), `healthy` or `completed`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub condition: Option<String>,
}

/// A validated container of the Docker target.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Container {
    pub name: String,
    /// An artifact name (replaced by the built reference) or any local image.
    pub image: String,
    pub ports: Vec<PortMapping>,
    /// `envFile` entries first (in order), then `env` (wins).
    pub env: BTreeMap<String, String>,
    pub volumes: Vec<Volume>,
    pub command: Option<Vec<String>>,
    pub args: Option<Vec<String>>,
    pub healthcheck: Option<Healthcheck>,
    pub depends_on: Vec<Dependency>,
    pub restart: Restart,
    /// Docker's init as PID 1.
    pub init: bool,
}

/// `[host_ip:]host:container[/proto]`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct PortMapping {
    pub host_ip: String,
    pub host_port: u16,
    pub container_port: u16,
    pub protocol: String,
}

/// A bind mount (relative to the project) or a named volume.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub enum Volume {
    Bind {
        source: PathBuf,
        target: String,
        read_only: bool,
    },
    Named {
        name: String,
        target: String,
        read_only: bool,
    },
}

/// A Docker healthcheck, durations in nanoseconds as the Engine API wants them.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Healthcheck {
    pub test: Vec<String>,
    pub interval_ns: i64,
    pub timeout_ns: i64,
    pub retries: i64,
    pub start_period_ns: i64,
}

/// When a dependent container may start.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub enum Condition {
    Started,
    Healthy,
    Completed,
}

/// `dependsOn` validated.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Dependency {
    pub name: String,
    pub condition: Condition,
}

/// Docker restart policy.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum Restart {
    No,
    Always,
    OnFailure,
    UnlessStopped,
}

/// The Docker target, validated.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct DockerDeploy {
    pub containers: Vec<Container>,
    pub stop_grace_period_secs: u64,
}

/// A problem in `deploy.docker`: the field path and what is wrong.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Invalid {
    pub field: String,
    pub message: String,
    pub hint: Option<String>,
}

fn invalid(field: String, message: String, hint: Option<&str>) -> Invalid {
    Invalid {
        field,
        message,
        hint: hint.map(str::to_string),
    }
}

pub use super::scalar::parse_duration_ns;

/// Validates `deploy.docker` against the project directory.
pub fn validate(raw: &RawDockerDeploy, base_dir: &Path) -> Result<DockerDeploy, Invalid> {
    let mut containers = Vec::new();
    let names: Vec<&str> = raw.containers.iter().map(|c| c.name.as_str()).collect();
    for (i, c) in raw.containers.iter().enumerate() {
        containers.push(validate_container(i, c, &names, base_dir)?);
    }
    // A dependency cycle would block forever.
    let mut order: Vec<&str> = Vec::new();
    while order.len() < containers.len() {
        let before = order.len();
        for c in &containers {
            if !order.contains(&c.name.as_str())
                && c.depends_on
                    .iter()
                    .all(|d| order.contains(&d.name.as_str()))
            {
                order.push(&c.name);
            }
        }
        if order.len() == before {
            let stuck: Vec<String> = containers
                .iter()
                .filter(|c| !order.contains(&c.name.as_str()))
                .map(|c| format!("`{}`", c.name))
                .collect();
            return Err(invalid(
                "deploy.docker.containers".into(),
                format!("`dependsOn` forms a cycle among {}", stuck.join(", ")),
                None,
            ));
        }
    }
    Ok(DockerDeploy {
        containers,
        stop_grace_period_secs: raw.stop_grace_period.unwrap_or(10),
    })
}

/// One container; `names` are those of all containers (for `dependsOn`).
fn validate_container(
    i: usize,
    c: &RawContainer,
    names: &[&str],
    base_dir: &Path,
) -> Result<Container, Invalid> {
    let field = |f: &str| format!("deploy.docker.containers[{i}].{f}");
    let valid_name = !c.name.is_empty()
        && c.name
            .chars()
            .all(|ch| ch.is_ascii_alphanumeric() || matches!(ch, '-' | '_' | '.'))
        && c.name.starts_with(|ch: char| ch.is_ascii_alphanumeric());
    if !valid_name {
        return Err(invalid(
            field("name"),
            format!("`{}` is not a valid container name", c.name),
            Some("use letters, digits, `-`, `_`, `.`"),
        ));
    }
    if names.iter().filter(|n| **n == c.name).count() > 1 {
        return Err(invalid(
            field("name"),
            format!("`{}` is defined twice", c.name),
            None,
        ));
    }
    let mut ports = Vec::new();
    for (j, p) in c.ports.iter().enumerate() {
        ports.push(parse_port(p).ok_or_else(|| {
            invalid(
                field(&format!("ports[{j}]")),
                format!("`{p}` is not a port mapping"),
                Some("use `[host_ip:]host:container[/tcp|udp]`, e.g. `8080:80`"),
            )
        })?);
    }
    let env = container_env(c, base_dir, &field)?;
    let mut volumes = Vec::new();
    for (j, v) in c.volumes.iter().enumerate() {
        volumes.push(parse_volume(v, base_dir).ok_or_else(|| {
            invalid(field(&format!("volumes[{j}]")), format!("`{v}` is not a volume"), Some("use `./dir:/path[:ro]` for a bind mount or `name:/path[:ro]` for a named volume"))
        })?);
    }
    let healthcheck = match &c.healthcheck {
        None => None,
        Some(h) => Some(validate_healthcheck(h, &field)?),
    };
    let depends_on = validate_depends_on(c, names, &field)?;
    let restart = match c.restart.as_deref() {
        None | Some("no") => Restart::No,
        Some("always") => Restart::Always,
        Some("on-failure") => Restart::OnFailure,
        Some("unless-stopped") => Restart::UnlessStopped,
        Some(other) => {
            return Err(invalid(
                field("restart"),
                format!("unknown restart policy `{other}`"),
                Some("use `no`, `always`, `on-failure` or `unless-stopped`"),
            ));
        }
    };
    Ok(Container {
        name: c.name.clone(),
        image: c.image.clone(),
        ports,
        env,
        volumes,
        command: c.command.clone(),
        args: c.args.clone(),
        healthcheck,
        depends_on,
        restart,
        init: c.init.unwrap_or(false),
    })
}

/// The `envFile` entries (in order), then `env` (wins).
fn container_env(
    c: &RawContainer,
    base_dir: &Path,
    field: &dyn Fn(&str) -> String,
) -> Result<BTreeMap<String, String>, Invalid> {
    let mut env = BTreeMap::new();
    for (j, f) in c.env_file.iter().enumerate() {
        let path = base_dir.join(f);
        let text = std::fs::read_to_string(&path).map_err(|e| {
            invalid(
                field(&format!("envFile[{j}]")),
                format!("cannot read `{f}`: {e}"),
                Some("paths are relative to the config file's directory"),
            )
        })?;
        let entries = read_env_file(&text).map_err(|(n, line)| {
            invalid(
                field(&format!("envFile[{j}]")),
                format!("`{f}` line {n}: `{line}` is not `NAME=value`"),
                None,
            )
        })?;
        env.extend(entries.into_iter().map(|e| (e.name, e.value)));
    }
    env.extend(c.env.clone());
    Ok(env)
}

/// `healthcheck`: the test command and its durations (devloop's defaults where none is given).
fn validate_healthcheck(
    h: &RawHealthcheck,
    field: &dyn Fn(&str) -> String,
) -> Result<Healthcheck, Invalid> {
    if !matches!(
        h.test.first().map(String::as_str),
        Some("CMD" | "CMD-SHELL" | "NONE")
    ) {
        return Err(invalid(
            field("healthcheck.test"),
            format!(
                "`{:?}` must start with `CMD`, `CMD-SHELL` or `NONE`",
                h.test
            ),
            None,
        ));
    }
    let d = |s: &Option<String>, f: &str, default: i64| -> Result<i64, Invalid> {
        match s {
            None => Ok(default),
            Some(v) => parse_duration_ns(v).ok_or_else(|| {
                invalid(
                    field(&format!("healthcheck.{f}")),
                    format!("`{v}` is not a duration"),
                    Some("e.g. `5s`, `1m30s`, `500ms`"),
                )
            }),
        }
    };
    Ok(Healthcheck {
        test: h.test.clone(),
        interval_ns: d(&h.interval, "interval", 2_000_000_000)?,
        timeout_ns: d(&h.timeout, "timeout", 5_000_000_000)?,
        retries: i64::from(h.retries.unwrap_or(30)),
        start_period_ns: d(&h.start_period, "startPeriod", 0)?,
    })
}

/// `dependsOn`: each names another container; the condition defaults to `started`.
fn validate_depends_on(
    c: &RawContainer,
    names: &[&str],
    field: &dyn Fn(&str) -> String,
) -> Result<Vec<Dependency>, Invalid> {
    let mut depends_on = Vec::new();
    for (j, d) in c.depends_on.iter().enumerate() {
        if !names.contains(&d.name.as_str()) || d.name == c.name {
            return Err(invalid(
                field(&format!("dependsOn[{j}].name")),
                format!("`{}` is not another container of deploy.docker", d.name),
                None,
            ));
        }
        let condition = match d.condition.as_deref() {
            None | Some("started") => Condition::Started,
            Some("healthy") => Condition::Healthy,
            Some("completed") => Condition::Completed,
            Some(other) => {
                return Err(invalid(
                    field(&format!("dependsOn[{j}].condition")),
                    format!("unknown condition `{other}`"),
                    Some("use `started`, `healthy` or `completed`"),
                ));
            }
        };
        depends_on.push(Dependency {
            name: d.name.clone(),
            condition,
        });
    }
    Ok(depends_on)
}

/// One `NAME=value` line of an `envFile`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EnvLine {
    /// 1-based.
    pub line: usize,
    pub name: String,
    pub value: String,
}

/// Reads an `envFile` the way the Docker target does: `NAME=value` lines, `#` comments, an optional `export `,
/// one pair of surrounding quotes removed; nothing else is interpreted. Returns the lines in file order, or the
/// number and text of the first line that is not `NAME=value`.
pub fn read_env_file(text: &str) -> Result<Vec<EnvLine>, (usize, String)> {
    let mut out = Vec::new();
    for (n, line) in text.lines().enumerate() {
        let line = line.trim();
        if line.is_empty() || line.starts_with('#') {
            continue;
        }
        let line = line.strip_prefix("export ").unwrap_or(line);
        let Some((k, v)) = line.split_once('=') else {
            return Err((n + 1, line.to_string()));
        };
        let v = v.trim();
        let v = v
            .strip_prefix('"')
            .and_then(|x| x.strip_suffix('"'))
            .or_else(|| v.strip_prefix('\'').and_then(|x| x.strip_suffix('\'')))
            .unwrap_or(v);
        out.push(EnvLine {
            line: n + 1,
            name: k.trim().to_string(),
            value: v.to_string(),
        });
    }
    Ok(out)
}

fn parse_port(s: &str) -> Option<PortMapping> {
    let (body, protocol) = match s.rsplit_once('/') {
        Some((b, p)) if p == "tcp" || p == "udp" => (b, p.to_string()),
        Some(_) => return None,
        None => (s, "tcp".to_string()),
    };
    let parts: Vec<&str> = body.rsplitn(3, ':').collect();
    let (host_ip, host, container) = match parts.as_slice() {
        [c] => ("127.0.0.1", *c, *c),
        [c, h] => ("0.0.0.0", *h, *c),
        [c, h, ip] => (*ip, *h, *c),
        _ => return None,
    };
    let host_ip = host_ip
        .trim_start_matches('[')
        .trim_end_matches(']')
        .to_string();
    Some(PortMapping {
        host_ip,
        host_port: host.parse().ok()?,
        container_port: container.parse().ok()?,
        protocol,
    })
}

fn parse_volume(s: &str, base_dir: &Path) -> Option<Volume> {
    let parts: Vec<&str> = s.split(':').collect();
    let (source, target, read_only) = match parts.as_slice() {
        [src, dst] => (*src, *dst, false),
        [src, dst, "ro"] => (*src, *dst, true),
        [src, dst, "rw"] => (*src, *dst, false),
        _ => return None,
    };
    if !target.starts_with('/') || source.is_empty() {
        return None;
    }
    if source.starts_with('.') || source.starts_with('/') || source.starts_with('~') {
        let path = base_dir.join(source);
        Some(Volume::Bind {
            source: path,
            target: target.to_string(),
            read_only,
        })
    } else if source
        .chars()
        .all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.'))
    {
        Some(Volume::Named {
            name: source.to_string(),
            target: target.to_string(),
            read_only,
        })
    } else {
        None
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    fn raw(yaml: &str) -> RawDockerDeploy {
        serde_saphyr::from_str(yaml).unwrap()
    }

    #[test]
    fn validates_a_typical_stack() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(
            dir.path().join(".env"),
            "# db\nPOSTGRES_USER=shop\nexport POSTGRES_PASSWORD=\"pw\"\n",
        )
        .unwrap();
        let d = validate(
            &raw("containers:\n  - name: db\n    image: postgres:16\n    envFile: [.env]\n    volumes: [\"data:/var/lib/postgresql/data\"]\n    healthcheck: {test: [CMD-SHELL, pg_isready], interval: 1s}\n  - name: api\n    image: shop-api\n    ports: [\"8080:80\", \"127.0.0.1:9090:9090/udp\"]\n    env: {POSTGRES_USER: api}\n    volumes: [\"./www:/www:ro\"]\n    dependsOn: [{name: db, condition: healthy}]\n    restart: on-failure\n"),
            dir.path(),
        )
        .unwrap();
        assert_eq!(
            d.containers[0]
                .env
                .get("POSTGRES_PASSWORD")
                .map(String::as_str),
            Some("pw")
        );
        assert_eq!(
            d.containers[0].healthcheck.as_ref().unwrap().interval_ns,
            1_000_000_000
        );
        assert_eq!(
            d.containers[1].env.get("POSTGRES_USER").map(String::as_str),
            Some("api")
        );
        assert_eq!(
            d.containers[1].ports[0],
            PortMapping {
                host_ip: "0.0.0.0".into(),
                host_port: 8080,
                container_port: 80,
                protocol: "tcp".into()
            }
        );
        assert_eq!(d.containers[1].ports[1].protocol, "udp");
        assert_eq!(d.containers[1].depends_on[0].condition, Condition::Healthy);
        assert!(matches!(
            &d.containers[1].volumes[0],
            Volume::Bind {
                read_only: true,
                ..
            }
        ));
        assert_eq!(d.containers[1].restart, Restart::OnFailure);
    }

    #[test]
    fn errors_name_the_field() {
        let dir = tempfile::tempdir().unwrap();
        let e = validate(
            &raw("containers:\n  - {name: a, image: x, ports: [\"80:http\"]}\n"),
            dir.path(),
        )
        .unwrap_err();
        assert_eq!(e.field, "deploy.docker.containers[0].ports[0]");
        let e = validate(&raw("containers:\n  - {name: a, image: x, dependsOn: [{name: b}]}\n  - {name: b, image: x, dependsOn: [{name: a}]}\n"), dir.path()).unwrap_err();
        assert!(e.message.contains("cycle"), "{e:?}");
        let e = validate(
            &raw("containers:\n  - {name: a, image: x, dependsOn: [{name: zz}]}\n"),
            dir.path(),
        )
        .unwrap_err();
        assert_eq!(e.field, "deploy.docker.containers[0].dependsOn[0].name");
        assert_eq!(parse_duration_ns("1m30s"), Some(90_000_000_000));
        assert_eq!(parse_duration_ns("250ms"), Some(250_000_000));
        assert_eq!(parse_duration_ns("5x"), None);
    }
}
