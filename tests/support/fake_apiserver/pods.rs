//! Fake API server, kubelet stand-in: per-pod container states and logs → `Pod.status` shaped like the recorded
//! 05-pod-*.http files, and log bodies/errors like 06-log-*; must not run anything or invent states kubelet lacks.

use serde_json::{Map, Value, json};

use super::status::ApiError;
use super::util::{fnv32a, parse_rfc3339, rfc3339, rfc3339_nanos};

/// The node every scheduled pod lands on.
pub const NODE_NAME: &str = "fake-node";
const HOST_IP: &str = "192.0.2.2";

/// The state a test puts a pod's containers in (status shapes copied from the recorded 05-pod-*.http files).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum PodState {
    /// Scheduled, containers `waiting: ContainerCreating`, phase Pending.
    Pending,
    /// Containers running and ready, phase Running.
    Running,
    /// Running but the readiness probe fails (`ready: false`, `started: true`).
    NotReady,
    /// `waiting: ImagePullBackOff`, phase Pending.
    ImagePullBackOff,
    /// `waiting: ErrImagePull`, phase Pending.
    ErrImagePull,
    /// `waiting: CrashLoopBackOff` after `restarts` failed runs (exit code 1), phase Running.
    CrashLoopBackOff { restarts: u32 },
    /// `waiting: CreateContainerConfigError` with the kubelet's message (e.g. `configmap "x" not found`).
    CreateContainerConfigError { message: String },
    /// Killed for memory (exit 137, reason OOMKilled): restarted into CrashLoopBackOff unless restartPolicy Never.
    OOMKilled,
    /// Exited 0 (`terminated: Completed`); the pod is Succeeded once every container completed.
    Completed,
    /// Exited non-zero (`terminated: Error`); the pod is Failed once every container has terminated.
    Failed { exit_code: i32 },
    /// Not schedulable: only a `PodScheduled False Unschedulable` condition, no container statuses.
    Unschedulable,
}

/// One log line as the container runtime recorded it.
#[derive(Debug, Clone, PartialEq)]
pub struct LogLine {
    pub nanos: u128,
    pub text: String,
}

/// The simulated state of one container.
#[derive(Debug, Clone)]
pub struct ContainerSim {
    pub name: String,
    pub image: String,
    pub init: bool,
    pub state: PodState,
    pub logs: Vec<LogLine>,
    pub previous: Option<Vec<LogLine>>,
    pub restarts: u32,
    pub started_at: Option<String>,
    pub finished_at: Option<String>,
    pub container_id: String,
    /// How often this container started running (its filesystem is fresh from the image at each start).
    pub starts: u32,
}

/// The simulated runtime of one pod (keyed by uid in the store).
#[derive(Debug, Clone)]
pub struct PodSim {
    pub namespace: String,
    pub name: String,
    pub uid: String,
    pub containers: Vec<ContainerSim>,
    /// The state applied once the start delay has passed (`None` once applied).
    pub pending_target: Option<PodState>,
    pub created_nanos: u128,
    pub pod_ip: String,
    pub restart_policy: String,
}

fn hex_digest(seed: &str) -> String {
    (0..8)
        .map(|i| format!("{:08x}", fnv32a(format!("{i}:{seed}").as_bytes())))
        .collect()
}

impl PodSim {
    /// A new sim for a pod object: every container starts `Pending` (ContainerCreating).
    pub fn new(pod: &Value, target: PodState, now: u128, ip_seq: u64) -> Self {
        let spec = &pod["spec"];
        let mut containers = Vec::new();
        for (field, init) in [("initContainers", true), ("containers", false)] {
            for c in spec[field].as_array().into_iter().flatten() {
                let name = c["name"].as_str().unwrap_or_default().to_string();
                containers.push(ContainerSim {
                    image: c["image"].as_str().unwrap_or_default().to_string(),
                    init,
                    state: PodState::Pending,
                    logs: Vec::new(),
                    previous: None,
                    restarts: 0,
                    started_at: None,
                    finished_at: None,
                    container_id: format!("containerd://{}", hex_digest(&format!("{now}{name}"))),
                    starts: 0,
                    name,
                });
            }
        }
        PodSim {
            namespace: pod
                .pointer("/metadata/namespace")
                .and_then(Value::as_str)
                .unwrap_or_default()
                .into(),
            name: pod
                .pointer("/metadata/name")
                .and_then(Value::as_str)
                .unwrap_or_default()
                .into(),
            uid: pod
                .pointer("/metadata/uid")
                .and_then(Value::as_str)
                .unwrap_or_default()
                .into(),
            containers,
            pending_target: Some(target),
            created_nanos: now,
            pod_ip: format!("10.88.{}.{}", (ip_seq / 250) % 250, ip_seq % 250 + 2),
            restart_policy: spec["restartPolicy"]
                .as_str()
                .unwrap_or("Always")
                .to_string(),
        }
    }

    /// Puts app containers (or the one named) into `state`; init containers complete once app containers start.
    pub fn set_state(&mut self, container: Option<&str>, state: &PodState, now: u128) {
        let ts = rfc3339(now);
        let app_starting = !matches!(state, PodState::Pending | PodState::Unschedulable);
        for c in &mut self.containers {
            if c.init {
                if container.is_none() && app_starting && c.state != PodState::Completed {
                    c.state = PodState::Completed;
                    c.started_at.get_or_insert_with(|| ts.clone());
                    c.finished_at = Some(ts.clone());
                }
                if container != Some(c.name.as_str()) {
                    continue;
                }
            } else if container.is_some_and(|n| n != c.name) {
                continue;
            }
            let restarts_before = c.restarts;
            match state {
                PodState::CrashLoopBackOff { restarts } => c.restarts = *restarts,
                PodState::OOMKilled if self.restart_policy != "Never" => {
                    c.restarts = c.restarts.max(1);
                }
                _ => {}
            }
            if c.restarts > restarts_before && c.previous.is_none() {
                // The last terminated instance wrote what the current log shows (06-log-crashloop-*).
                c.previous = Some(c.logs.clone());
            }
            match state {
                PodState::Running | PodState::NotReady
                    if !matches!(c.state, PodState::Running | PodState::NotReady) =>
                {
                    c.started_at = Some(ts.clone());
                    c.starts += 1;
                }
                PodState::Completed | PodState::Failed { .. } => {
                    c.started_at.get_or_insert_with(|| ts.clone());
                    c.finished_at = Some(ts.clone());
                }
                PodState::CrashLoopBackOff { .. } | PodState::OOMKilled => {
                    c.started_at = Some(ts.clone());
                    c.finished_at = Some(ts.clone());
                }
                _ => {}
            }
            c.state = state.clone();
        }
    }

    fn app(&self) -> impl Iterator<Item = &ContainerSim> {
        self.containers.iter().filter(|c| !c.init)
    }

    fn terminated(c: &ContainerSim, restart_policy: &str) -> bool {
        match c.state {
            PodState::Completed | PodState::Failed { .. } => true,
            PodState::OOMKilled => restart_policy == "Never",
            _ => false,
        }
    }

    /// The pod phase the kubelet would report.
    pub fn phase(&self) -> &'static str {
        if self.app().any(|c| c.state == PodState::Unschedulable) {
            return "Pending";
        }
        let all_done = self
            .app()
            .all(|c| Self::terminated(c, &self.restart_policy));
        if all_done && self.app().next().is_some() {
            return if self.app().all(|c| c.state == PodState::Completed) {
                "Succeeded"
            } else {
                "Failed"
            };
        }
        let running = self.app().any(|c| {
            matches!(
                c.state,
                PodState::Running | PodState::NotReady | PodState::CrashLoopBackOff { .. }
            ) || (c.state == PodState::OOMKilled && self.restart_policy != "Never")
                || Self::terminated(c, &self.restart_policy)
        });
        if running { "Running" } else { "Pending" }
    }

    /// Whether the pod is Ready (every app container running and ready).
    pub fn ready(&self) -> bool {
        self.app().next().is_some() && self.app().all(|c| c.state == PodState::Running)
    }

    /// Whether the pod has been bound to the node.
    pub fn scheduled(&self) -> bool {
        !self.app().any(|c| c.state == PodState::Unschedulable)
    }

    fn container_status(&self, c: &ContainerSim) -> Value {
        let pod_ref = format!("{}_{}({})", self.name, self.namespace, self.uid);
        let terminated = |code: i64, reason: &str, sim: &ContainerSim| {
            json!({"terminated": {
                "exitCode": code, "reason": reason,
                "startedAt": sim.started_at, "finishedAt": sim.finished_at, "containerID": sim.container_id
            }})
        };
        let pull_error = format!(
            "rpc error: code = NotFound desc = failed to pull and unpack image \"{img}\": failed to resolve reference \"{img}\": {img}: not found",
            img = c.image
        );
        let (state, ready, started, has_run) = match &c.state {
            PodState::Pending | PodState::Unschedulable => {
                let reason = if !c.init
                    && self
                        .containers
                        .iter()
                        .any(|o| o.init && o.state != PodState::Completed)
                {
                    "PodInitializing"
                } else {
                    "ContainerCreating"
                };
                (json!({"waiting": {"reason": reason}}), false, false, false)
            }
            PodState::Running => (
                json!({"running": {"startedAt": c.started_at}}),
                true,
                true,
                true,
            ),
            PodState::NotReady => (
                json!({"running": {"startedAt": c.started_at}}),
                false,
                true,
                true,
            ),
            PodState::ImagePullBackOff => (
                json!({"waiting": {"reason": "ImagePullBackOff", "message": format!("Back-off pulling image \"{}\": ErrImagePull: {pull_error}", c.image)}}),
                false,
                false,
                false,
            ),
            PodState::ErrImagePull => (
                json!({"waiting": {"reason": "ErrImagePull", "message": pull_error}}),
                false,
                false,
                false,
            ),
            PodState::CreateContainerConfigError { message } => (
                json!({"waiting": {"reason": "CreateContainerConfigError", "message": message}}),
                false,
                false,
                false,
            ),
            PodState::CrashLoopBackOff { .. } => (crash_waiting(c, &pod_ref), false, false, true),
            PodState::OOMKilled if self.restart_policy != "Never" => {
                (crash_waiting(c, &pod_ref), false, false, true)
            }
            PodState::OOMKilled => (terminated(137, "OOMKilled", c), false, false, true),
            PodState::Completed => (terminated(0, "Completed", c), false, false, true),
            PodState::Failed { exit_code } => (
                terminated(i64::from(*exit_code), "Error", c),
                false,
                false,
                true,
            ),
        };
        let last_state = match &c.state {
            PodState::CrashLoopBackOff { .. } => terminated(1, "Error", c),
            PodState::OOMKilled if self.restart_policy != "Never" => {
                terminated(137, "OOMKilled", c)
            }
            _ => json!({}),
        };
        let mut m = Map::new();
        m.insert("name".into(), json!(c.name));
        m.insert("state".into(), state);
        m.insert("lastState".into(), last_state);
        m.insert("ready".into(), json!(ready));
        m.insert("restartCount".into(), json!(c.restarts));
        m.insert("image".into(), json!(c.image));
        let repo = c
            .image
            .rsplit_once(':')
            .filter(|(_, t)| !t.contains('/'))
            .map_or(c.image.as_str(), |(r, _)| r);
        m.insert(
            "imageID".into(),
            json!(if has_run {
                format!("{repo}@sha256:{}", hex_digest(&c.image))
            } else {
                String::new()
            }),
        );
        if has_run {
            m.insert("containerID".into(), json!(c.container_id));
        }
        m.insert("started".into(), json!(started));
        Value::Object(m)
    }

    /// The full `status` for the pod, keeping `lastTransitionTime` of conditions whose status did not change.
    pub fn status(&self, previous: &Value, pod: &Value, now: u128) -> Value {
        let ts = rfc3339(now);
        let prev_cond = |t: &str| {
            previous["conditions"]
                .as_array()
                .and_then(|a| a.iter().find(|c| c["type"] == t))
                .cloned()
        };
        let cond = |t: &str, status: bool, reason: Option<&str>, message: Option<String>| {
            let s = if status { "True" } else { "False" };
            let since = prev_cond(t)
                .filter(|c| c["status"] == s)
                .and_then(|c| c["lastTransitionTime"].as_str().map(str::to_string))
                .unwrap_or_else(|| ts.clone());
            let mut m = Map::new();
            m.insert("type".into(), json!(t));
            m.insert("status".into(), json!(s));
            m.insert("lastProbeTime".into(), Value::Null);
            m.insert("lastTransitionTime".into(), json!(since));
            if let Some(r) = reason {
                m.insert("reason".into(), json!(r));
            }
            if let Some(msg) = message {
                m.insert("message".into(), json!(msg));
            }
            Value::Object(m)
        };
        let qos = if pod["spec"]["containers"]
            .as_array()
            .into_iter()
            .flatten()
            .any(|c| c["resources"].as_object().is_some_and(|r| !r.is_empty()))
        {
            "Burstable"
        } else {
            "BestEffort"
        };
        let mut st = Map::new();
        if !self.scheduled() {
            st.insert("phase".into(), json!("Pending"));
            st.insert(
                "conditions".into(),
                json!([cond(
                    "PodScheduled",
                    false,
                    Some("Unschedulable"),
                    Some("0/1 nodes are available: 1 node(s) didn't match Pod's node affinity/selector. preemption: 0/1 nodes are available: 1 Preemption is not helpful for scheduling.".into())
                )]),
            );
            st.insert("qosClass".into(), json!(qos));
            return Value::Object(st);
        }
        let phase = self.phase();
        let unready: Vec<&str> = self
            .app()
            .filter(|c| c.state != PodState::Running)
            .map(|c| c.name.as_str())
            .collect();
        let not_ready_msg = Some(format!(
            "containers with unready status: [{}]",
            unready.join(" ")
        ));
        let init_pending: Vec<&str> = self
            .containers
            .iter()
            .filter(|c| c.init && c.state != PodState::Completed)
            .map(|c| c.name.as_str())
            .collect();
        let sandbox_ready = !matches!(phase, "Succeeded" | "Failed")
            && self.containers.iter().any(|c| c.state != PodState::Pending);
        let initialized = if init_pending.is_empty() {
            cond(
                "Initialized",
                true,
                (phase == "Succeeded").then_some("PodCompleted"),
                None,
            )
        } else {
            cond(
                "Initialized",
                false,
                Some("ContainersNotInitialized"),
                Some(format!(
                    "containers with incomplete status: [{}]",
                    init_pending.join(" ")
                )),
            )
        };
        let (ready_reason, ready_msg) = match phase {
            "Succeeded" => (Some("PodCompleted"), None),
            "Failed" => (Some("PodFailed"), None),
            _ if self.ready() => (None, None),
            _ => (Some("ContainersNotReady"), not_ready_msg),
        };
        let ready = self.ready() && phase == "Running";
        st.insert("phase".into(), json!(phase));
        st.insert(
            "conditions".into(),
            json!([
                cond("PodReadyToStartContainers", sandbox_ready, None, None),
                initialized,
                cond("Ready", ready, ready_reason, ready_msg.clone()),
                cond("ContainersReady", ready, ready_reason, ready_msg),
                cond("PodScheduled", true, None, None),
            ]),
        );
        st.insert("hostIP".into(), json!(HOST_IP));
        st.insert("hostIPs".into(), json!([{"ip": HOST_IP}]));
        st.insert("podIP".into(), json!(self.pod_ip));
        st.insert("podIPs".into(), json!([{"ip": self.pod_ip}]));
        st.insert(
            "startTime".into(),
            previous
                .get("startTime")
                .cloned()
                .unwrap_or_else(|| json!(rfc3339(self.created_nanos))),
        );
        let inits: Vec<Value> = self
            .containers
            .iter()
            .filter(|c| c.init)
            .map(|c| self.container_status(c))
            .collect();
        if !inits.is_empty() {
            st.insert("initContainerStatuses".into(), Value::Array(inits));
        }
        let apps: Vec<Value> = self.app().map(|c| self.container_status(c)).collect();
        st.insert("containerStatuses".into(), Value::Array(apps));
        st.insert("qosClass".into(), json!(qos));
        Value::Object(st)
    }

    /// Whether a follower of `container`'s log should stop (the container will write no more).
    pub fn log_finished(&self, container: &str) -> bool {
        self.containers
            .iter()
            .find(|c| c.name == container)
            .is_none_or(|c| Self::terminated(c, &self.restart_policy))
    }
}

fn go_duration(secs: u64) -> String {
    if secs < 60 {
        format!("{secs}s")
    } else {
        format!("{}m{}s", secs / 60, secs % 60)
    }
}

fn crash_waiting(c: &ContainerSim, pod_ref: &str) -> Value {
    let backoff = (10u64 << c.restarts.saturating_sub(1).min(5)).min(300);
    json!({"waiting": {
        "reason": "CrashLoopBackOff",
        "message": format!("back-off {} restarting failed container={} pod={pod_ref}", go_duration(backoff), c.name)
    }})
}

/// Parsed `pods/{name}/log` query options.
#[derive(Debug, Clone, Default)]
pub struct LogOptions {
    pub container: Option<String>,
    pub follow: bool,
    pub previous: bool,
    pub timestamps: bool,
    pub since_nanos: Option<u128>,
    pub tail_lines: Option<usize>,
    pub limit_bytes: Option<usize>,
}

impl LogOptions {
    /// Parses the query; errors are the 400s the apiserver answers.
    pub fn parse(query: &[(String, String)], now: u128) -> Result<Self, ApiError> {
        let mut o = LogOptions::default();
        for (k, v) in query {
            match k.as_str() {
                "container" => o.container = Some(v.clone()),
                "follow" => o.follow = v == "true" || v == "1",
                "previous" => o.previous = v == "true" || v == "1",
                "timestamps" => o.timestamps = v == "true" || v == "1",
                "sinceTime" => {
                    o.since_nanos = Some(parse_rfc3339(v).ok_or_else(|| {
                        ApiError::bad_request(format!(
                            "parsing time {v:?} as \"2006-01-02T15:04:05Z07:00\": cannot parse {v:?} as \"2006\""
                        ))
                    })?);
                }
                "sinceSeconds" => {
                    let s: u64 = v.parse().map_err(|_| {
                        ApiError::bad_request(format!(
                            "sinceSeconds: Invalid value: {v:?}: must be greater than 0"
                        ))
                    })?;
                    o.since_nanos = Some(now.saturating_sub(u128::from(s) * 1_000_000_000));
                }
                "tailLines" => o.tail_lines = v.parse().ok(),
                "limitBytes" => o.limit_bytes = v.parse().ok(),
                _ => {}
            }
        }
        Ok(o)
    }

    /// Renders lines as the kubelet sends them (optional RFC 3339 nano timestamp + space).
    pub fn render(&self, lines: &[LogLine]) -> String {
        let mut out = String::new();
        for l in lines {
            if self.timestamps {
                out.push_str(&rfc3339_nanos(l.nanos));
                out.push(' ');
            }
            out.push_str(&l.text);
            out.push('\n');
        }
        out
    }

    /// Applies sinceTime and tailLines to a backlog.
    pub fn select<'a>(&self, lines: &'a [LogLine]) -> &'a [LogLine] {
        let start = self.since_nanos.map_or(0, |s| {
            lines
                .iter()
                .position(|l| l.nanos >= s)
                .unwrap_or(lines.len())
        });
        let lines = &lines[start..];
        match self.tail_lines {
            Some(n) if n < lines.len() => &lines[lines.len() - n..],
            _ => lines,
        }
    }
}

/// Picks the container a log request addresses, with the recorded 400 errors.
pub fn resolve_container<'a>(
    sim: &'a PodSim,
    pod_name: &str,
    opts: &LogOptions,
) -> Result<&'a ContainerSim, ApiError> {
    match &opts.container {
        Some(name) => sim
            .containers
            .iter()
            .find(|c| &c.name == name)
            .ok_or_else(|| {
                ApiError::bad_request(format!("container {name} is not valid for pod {pod_name}"))
            }),
        None => {
            let apps: Vec<&ContainerSim> = sim.containers.iter().filter(|c| !c.init).collect();
            if apps.len() == 1 {
                return Ok(apps[0]);
            }
            let names: Vec<&str> = apps.iter().map(|c| c.name.as_str()).collect();
            let inits: Vec<&str> = sim
                .containers
                .iter()
                .filter(|c| c.init)
                .map(|c| c.name.as_str())
                .collect();
            let mut msg = format!(
                "a container name must be specified for pod {pod_name}, choose one of: [{}]",
                names.join(" ")
            );
            if !inits.is_empty() {
                msg.push_str(&format!(
                    " or one of the init containers: [{}]",
                    inits.join(" ")
                ));
            }
            Err(ApiError::bad_request(msg))
        }
    }
}

/// The lines a (non-previous) log request may read now, or the kubelet's "waiting to start" error.
pub fn readable_lines<'a>(
    sim: &PodSim,
    c: &'a ContainerSim,
    pod_name: &str,
    previous: bool,
) -> Result<&'a [LogLine], ApiError> {
    if previous {
        return c.previous.as_deref().ok_or_else(|| {
            ApiError::bad_request(format!(
                "previous terminated container \"{}\" in pod \"{pod_name}\" not found",
                c.name
            ))
        });
    }
    let waiting = match &c.state {
        PodState::Pending | PodState::Unschedulable
            if !c.init
                && sim
                    .containers
                    .iter()
                    .any(|o| o.init && o.state != PodState::Completed) =>
        {
            Some("PodInitializing".to_string())
        }
        PodState::Pending | PodState::Unschedulable => Some("ContainerCreating".to_string()),
        PodState::ImagePullBackOff | PodState::ErrImagePull => {
            Some("trying and failing to pull image".to_string())
        }
        PodState::CreateContainerConfigError { .. } => {
            Some("CreateContainerConfigError".to_string())
        }
        _ => None,
    };
    match waiting {
        Some(reason) => Err(ApiError::bad_request(format!(
            "container \"{}\" in pod \"{pod_name}\" is waiting to start: {reason}",
            c.name
        ))),
        None => Ok(&c.logs),
    }
}
