//! Port-forward stage: forward specs + a kube client → local TCP listeners bound once on predictable ports; each
//! accepted connection is tunnelled to a ready pod resolved at that moment, so listeners outlive redeploys and new
//! connections reach the new rollout. Emits events, never prints, spawns nothing that outlives
//! [`Forwarder::run`] (kube's task behind each tunnel is aborted with the connection).

use std::fmt;
use std::future::Future;
use std::io;
use std::net::{IpAddr, SocketAddr};
use std::pin::Pin;
use std::sync::Mutex;
use std::task::{Context, Poll};
use std::time::Duration;

use futures_util::stream::{self, FuturesUnordered, SelectAll, Stream, StreamExt};
use k8s_openapi::api::apps::v1::{Deployment, StatefulSet};
use k8s_openapi::api::core::v1::{Pod, Service};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::LabelSelector;
use k8s_openapi::apimachinery::pkg::util::intstr::IntOrString;
use kube::Client;
use kube::api::{Api, ListParams, Portforwarder};
use kube::core::Selector;
use serde_json::Value;
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::net::{TcpListener, TcpStream};
use tokio::time::Instant;
use tokio_util::sync::CancellationToken;

use crate::connectivity::{Connectivity, is_connection_error, jitter, root_cause};
use crate::event::{Event, EventSink};

/// How long a connection waits for a ready pod (or a reachable API) before it is closed.
pub const DEFAULT_POD_WAIT: Duration = Duration::from_secs(30);
/// How many ports above the requested one are tried when it is taken.
pub const PORT_SEARCH: u16 = 100;

const FIRST_BACKOFF: Duration = Duration::from_millis(100);
const MAX_BACKOFF: Duration = Duration::from_secs(2);
/// A connection still waiting after this long makes the forward unhealthy (a normal rollout gap is shorter).
const NOTICE_AFTER: Duration = Duration::from_secs(2);
/// After a connection ended, how long kube's tunnel gets to close its WebSocket cleanly before it is aborted.
const CLOSE_GRACE: Duration = Duration::from_secs(3);

/// What a forward targets.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum ResourceType {
    Service,
    Deployment,
    StatefulSet,
    Pod,
}

impl ResourceType {
    /// The lowercase name (`service`, `deployment`, `statefulset`, `pod`), as in `devloop.yaml` and kubectl.
    pub fn as_str(self) -> &'static str {
        match self {
            ResourceType::Service => "service",
            ResourceType::Deployment => "deployment",
            ResourceType::StatefulSet => "statefulset",
            ResourceType::Pod => "pod",
        }
    }

    /// Reads a name case-insensitively; kubectl's short names (`svc`, `deploy`, `sts`, `po`) are accepted too.
    pub fn parse(name: &str) -> Option<ResourceType> {
        match name.to_ascii_lowercase().as_str() {
            "service" | "services" | "svc" => Some(ResourceType::Service),
            "deployment" | "deployments" | "deploy" => Some(ResourceType::Deployment),
            "statefulset" | "statefulsets" | "sts" => Some(ResourceType::StatefulSet),
            "pod" | "pods" | "po" => Some(ResourceType::Pod),
            _ => None,
        }
    }
}

impl fmt::Display for ResourceType {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A remote port: a number, or a name (a Service port's name for services, a container port's name otherwise).
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum PortRef {
    Number(u16),
    Name(String),
}

impl fmt::Display for PortRef {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            PortRef::Number(n) => write!(f, "{n}"),
            PortRef::Name(s) => f.write_str(s),
        }
    }
}

/// One port-forward to set up (a `portForward:` entry, or a Service port with `--port-forward`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ForwardSpec {
    pub resource_type: ResourceType,
    pub name: String,
    pub namespace: String,
    /// For a Service, its port (number or name); otherwise a container port.
    pub port: PortRef,
    /// The local port wanted; `None` means the remote port's number.
    pub local_port: Option<u16>,
    /// Where to listen (127.0.0.1 unless configured).
    pub address: IpAddr,
}

impl ForwardSpec {
    /// `service/api:80`: the target as kubectl users write it.
    pub fn target(&self) -> String {
        format!("{}/{}:{}", self.resource_type, self.name, self.port)
    }
}

/// A listening forward, as announced: the local address stays the same for the life of the [`Forwarder`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Forward {
    pub spec: ForwardSpec,
    /// Where it listens.
    pub local: SocketAddr,
    /// The port that was asked for (`localPort` or the remote port); differs from `local.port()` when it was taken.
    pub requested_port: u16,
}

impl fmt::Display for Forward {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "forwarding {} → {} (namespace `{}`)",
            self.local,
            self.spec.target(),
            self.spec.namespace
        )?;
        if self.requested_port != 0 && self.requested_port != self.local.port() {
            write!(f, "; port {} was taken", self.requested_port)?;
        }
        Ok(())
    }
}

/// The health of one forward, for a status line.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ForwardHealth {
    pub local: SocketAddr,
    /// The pod the latest connection reached.
    pub pod: Option<String>,
    /// Why the latest connection failed, until one succeeds again.
    pub error: Option<String>,
    /// Connections tunnelled so far.
    pub connections: u64,
}

/// Why a forward could not be set up or a connection could not be tunnelled.
#[derive(Debug, thiserror::Error)]
pub enum PortForwardError {
    #[error(
        "port-forward `{target}`: no free local port on `{address}` in {first}..={last}\n\nhint: set `localPort` to a free port"
    )]
    NoFreePort {
        target: String,
        address: IpAddr,
        first: u16,
        last: u16,
    },
    #[error("port-forward `{target}`: cannot listen on `{address}`: {source}")]
    Bind {
        target: String,
        address: SocketAddr,
        source: io::Error,
    },
    #[error("port-forward `{target}`: {kind} `{name}` not found in namespace `{namespace}`")]
    NotFound {
        target: String,
        kind: ResourceType,
        name: String,
        namespace: String,
    },
    #[error(
        "port-forward `{target}`: service `{service}` has no port `{port}`\n\nhint: its ports are {available}"
    )]
    NoServicePort {
        target: String,
        service: String,
        port: PortRef,
        available: String,
    },
    #[error(
        "port-forward `{target}`: `{object}` has no selector, so there is no pod to forward to\n\nhint: forward to a pod or to the workload behind it instead"
    )]
    NoSelector { target: String, object: String },
    #[error("port-forward `{target}`: no container of `{object}` declares a port named `{port}`")]
    NoNamedPort {
        target: String,
        object: String,
        port: String,
    },
    #[error(
        "port-forward `{target}`: `{object}` has port `{port}`, which is not a valid port number"
    )]
    InvalidPort {
        target: String,
        object: String,
        port: i32,
    },
    #[error("port-forward `{target}`: no ready pod in namespace `{namespace}`")]
    NoReadyPod { target: String, namespace: String },
    #[error("port-forward `{target}`: {message}")]
    Api {
        target: String,
        message: String,
        /// HTTP status of the API answer (`None`: the API was not reached).
        code: Option<u16>,
    },
    #[error("port-forward `{target}`: cannot reach the API server: {message}")]
    Unreachable { target: String, message: String },
    #[error("port-forward `{target}`: pod `{pod}` port {port}: {message}")]
    Upstream {
        target: String,
        pod: String,
        port: u16,
        message: String,
    },
}

impl PortForwardError {
    /// Whether trying again later can help (a pod starting, a workload being recreated, the API briefly away).
    fn is_transient(&self) -> bool {
        match self {
            PortForwardError::NoReadyPod { .. }
            | PortForwardError::NotFound { .. }
            | PortForwardError::Unreachable { .. } => true,
            PortForwardError::Api { code, .. } => !matches!(code, Some(401 | 403)),
            _ => false,
        }
    }

    /// Why the API server could not be reached, when that is the error.
    fn unreached(&self) -> Option<&str> {
        match self {
            PortForwardError::Unreachable { message, .. } => Some(message),
            _ => None,
        }
    }

    fn api(target: &str, e: kube::Error) -> Self {
        match e {
            kube::Error::Api(status) => PortForwardError::Api {
                target: target.to_string(),
                message: format!("the API answered {}: {}", status.code, status.message),
                code: Some(status.code),
            },
            other if is_connection_error(&other) => PortForwardError::Unreachable {
                target: target.to_string(),
                message: root_cause(&other),
            },
            other => PortForwardError::Api {
                target: target.to_string(),
                message: other.to_string(),
                code: None,
            },
        }
    }
}

/// What changed in a forward's health, reported as events.
enum Note<'a> {
    /// A connection failed or has waited long (the forward became unhealthy, or its reason changed).
    Failed {
        forward: &'a Forward,
        message: String,
    },
    /// A connection went through after failures.
    Recovered { forward: &'a Forward, pod: &'a str },
    /// Connections now reach another pod (a new rollout).
    Retargeted { forward: &'a Forward, pod: &'a str },
}

#[derive(Debug, Default)]
struct HealthState {
    pod: Option<String>,
    error: Option<String>,
    connections: u64,
}

struct Listener {
    socket: TcpListener,
    forward: Forward,
    health: Mutex<HealthState>,
}

/// Owns the listeners of every forward; [`Forwarder::run`] serves them. Keep it across redeploys: the local ports
/// stay bound and new connections follow the new pods.
pub struct Forwarder {
    client: Client,
    listeners: Vec<Listener>,
    events: EventSink,
    pod_wait: Duration,
    /// Told when the API server cannot be reached (then it reports, not each forward).
    connectivity: Option<Connectivity>,
}

/// A WebSocket tunnel to one pod port; kube's task behind it is aborted when this is dropped.
struct Tunnel {
    pod: String,
    port: u16,
    forwarder: Option<Portforwarder>,
}

impl Drop for Tunnel {
    fn drop(&mut self) {
        if let Some(f) = &self.forwarder {
            f.abort();
        }
    }
}

type Accepted = (usize, io::Result<(TcpStream, SocketAddr)>);

impl Forwarder {
    /// Binds every listener at once: on the requested port (`local_port`, else the remote port's number, read
    /// from the cluster for a named port), else the next free one above it. Returns the forwards to announce, in
    /// the order of `specs`.
    pub async fn start(
        client: Client,
        specs: Vec<ForwardSpec>,
        events: EventSink,
    ) -> Result<(Forwarder, Vec<Forward>), PortForwardError> {
        let mut listeners = Vec::with_capacity(specs.len());
        for spec in specs {
            let requested = match spec.local_port {
                Some(p) => p,
                None => remote_port_number(&client, &spec).await?,
            };
            let (socket, local) = bind(&spec, requested).await?;
            events.emit(Event::PortForwardStarted {
                resource: format!("{}/{}", spec.resource_type, spec.name),
                namespace: spec.namespace.clone(),
                port: spec.port.to_string(),
                address: local.to_string(),
                requested_port: requested,
            });
            listeners.push(Listener {
                socket,
                forward: Forward {
                    spec,
                    local,
                    requested_port: requested,
                },
                health: Mutex::new(HealthState::default()),
            });
        }
        let forwards = listeners.iter().map(|l| l.forward.clone()).collect();
        Ok((
            Forwarder {
                client,
                listeners,
                events,
                pod_wait: DEFAULT_POD_WAIT,
                connectivity: None,
            },
            forwards,
        ))
    }

    /// Sets how long a connection waits for a ready pod before it is closed (default [`DEFAULT_POD_WAIT`]).
    pub fn with_pod_wait(mut self, wait: Duration) -> Self {
        self.pod_wait = wait;
        self
    }

    /// Reports connection trouble with the API server to `connectivity` (one message for all streams) instead
    /// of as a failure of each forward.
    pub fn with_connectivity(mut self, connectivity: Connectivity) -> Self {
        self.connectivity = Some(connectivity);
        self
    }

    /// The forwards, as announced by [`Forwarder::start`].
    pub fn forwards(&self) -> Vec<Forward> {
        self.listeners.iter().map(|l| l.forward.clone()).collect()
    }

    /// The current health of every forward, in the order of the specs.
    pub fn health(&self) -> Vec<ForwardHealth> {
        self.listeners
            .iter()
            .map(|l| {
                let h = lock(&l.health);
                ForwardHealth {
                    local: l.forward.local,
                    pod: h.pod.clone(),
                    error: h.error.clone(),
                    connections: h.connections,
                }
            })
            .collect()
    }

    /// Accepts and tunnels connections on every listener until `cancel` fires; all connections end with it, the
    /// listeners stay bound until the `Forwarder` is dropped.
    pub async fn run(&self, cancel: CancellationToken) {
        let mut accepts: SelectAll<Pin<Box<dyn Stream<Item = Accepted> + Send + '_>>> =
            SelectAll::new();
        for (index, listener) in self.listeners.iter().enumerate() {
            accepts.push(Box::pin(stream::unfold(
                &listener.socket,
                move |socket| async move {
                    let accepted = socket.accept().await;
                    if accepted.is_err() {
                        // Out of file descriptors and the like: do not spin on a failing accept.
                        tokio::time::sleep(Duration::from_millis(100)).await;
                    }
                    Some(((index, accepted), socket))
                },
            )));
        }
        let mut connections: FuturesUnordered<Pin<Box<dyn Future<Output = ()> + Send + '_>>> =
            FuturesUnordered::new();
        loop {
            tokio::select! {
                () = cancel.cancelled() => return,
                Some((index, accepted)) = accepts.next() => match accepted {
                    Ok((socket, peer)) => {
                        tracing::debug!(%peer, local = %self.listeners[index].forward.local, "port-forward connection");
                        // Small writes (interactive protocols) must not wait for Nagle.
                        let _ = socket.set_nodelay(true);
                        connections.push(Box::pin(self.serve(index, socket, &cancel)));
                    }
                    Err(e) => tracing::debug!(error = %e, "port-forward accept failed"),
                },
                Some(()) = connections.next(), if !connections.is_empty() => {}
            }
        }
    }

    /// Tunnels one accepted connection; waits (with backoff) for a ready pod up to the pod wait.
    async fn serve(&self, index: usize, socket: TcpStream, cancel: &CancellationToken) {
        let listener = &self.listeners[index];
        let spec = &listener.forward.spec;
        let started = Instant::now();
        let deadline = started + self.pod_wait;
        let mut delay = FIRST_BACKOFF;
        let mut noticed = false;
        let tunnel = loop {
            let attempt = tokio::select! {
                () = cancel.cancelled() => return,
                t = open(&self.client, spec) => t,
            };
            match attempt {
                Ok(t) => {
                    if let Some(c) = &self.connectivity {
                        c.found();
                    }
                    break t;
                }
                Err(e) if e.is_transient() && Instant::now() + delay < deadline => {
                    tracing::debug!(error = %e, "port-forward: retrying");
                    match (&self.connectivity, e.unreached()) {
                        (Some(c), Some(cause)) => c.lost(cause),
                        _ if !noticed && started.elapsed() >= NOTICE_AFTER => {
                            noticed = true;
                            self.failed(listener, format!("{e}; retrying"));
                        }
                        _ => {}
                    }
                    let pause = async {
                        match &self.connectivity {
                            // Sooner when another stream finds the API server back.
                            Some(c) => c.pause(jitter(delay)).await,
                            None => tokio::time::sleep(jitter(delay)).await,
                        }
                    };
                    tokio::select! {
                        () = cancel.cancelled() => return,
                        () = pause => {}
                    }
                    delay = (delay * 2).min(MAX_BACKOFF);
                }
                Err(e) => {
                    self.failed(listener, e.to_string());
                    return;
                }
            }
        };
        let pod = tunnel.pod.clone();
        self.connected(listener, &pod);
        let works = || self.works(listener, &pod);
        if let Err(e) = pipe(socket, tunnel, spec, cancel, &works).await {
            self.failed(listener, e.to_string());
        }
    }

    /// A tunnel to `pod` is open (whether the pod's port answers is known later).
    fn connected(&self, listener: &Listener, pod: &str) {
        let moved = {
            let mut h = lock(&listener.health);
            h.connections += 1;
            let moved = h.pod.as_deref().is_some_and(|p| p != pod);
            h.pod = Some(pod.to_string());
            moved
        };
        if moved {
            self.report(Note::Retargeted {
                forward: &listener.forward,
                pod,
            });
        }
    }

    /// The pod answered through the tunnel: the forward is healthy again if it was not.
    fn works(&self, listener: &Listener, pod: &str) {
        let recovered = lock(&listener.health).error.take().is_some();
        if recovered {
            self.report(Note::Recovered {
                forward: &listener.forward,
                pod,
            });
        }
    }

    fn failed(&self, listener: &Listener, message: String) {
        let changed = {
            let mut h = lock(&listener.health);
            let changed = h.error.as_deref() != Some(message.as_str());
            h.error = Some(message.clone());
            changed
        };
        // Clients retry; one report per distinct problem is enough.
        if changed {
            self.report(Note::Failed {
                forward: &listener.forward,
                message,
            });
        }
    }

    /// The one place forward health becomes events.
    fn report(&self, note: Note<'_>) {
        match note {
            // The message names the target; the local address is in the announcement.
            Note::Failed { forward, message } => self.events.emit(Event::PortForwardFailed {
                resource: forward.spec.target(),
                address: forward.local.to_string(),
                message,
            }),
            Note::Recovered { forward, pod } => self.events.emit(Event::PortForwardRecovered {
                resource: forward.spec.target(),
                address: forward.local.to_string(),
                pod: pod.to_string(),
            }),
            Note::Retargeted { forward, pod } => self.events.emit(Event::PortForwardRetargeted {
                resource: forward.spec.target(),
                address: forward.local.to_string(),
                pod: pod.to_string(),
            }),
        }
    }
}

fn lock(m: &Mutex<HealthState>) -> std::sync::MutexGuard<'_, HealthState> {
    m.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
}

/// Listens on `requested` or the next free port above it; `0` lets the system choose.
async fn bind(
    spec: &ForwardSpec,
    requested: u16,
) -> Result<(TcpListener, SocketAddr), PortForwardError> {
    let last = requested.saturating_add(PORT_SEARCH);
    let candidates: Vec<u16> = if requested == 0 {
        vec![0]
    } else {
        (requested..=last).collect()
    };
    for port in candidates {
        let address = SocketAddr::new(spec.address, port);
        match TcpListener::bind(address).await {
            Ok(socket) => {
                let local = socket
                    .local_addr()
                    .map_err(|source| PortForwardError::Bind {
                        target: spec.target(),
                        address,
                        source,
                    })?;
                return Ok((socket, local));
            }
            // Taken, or privileged without the right to it: the next port may do.
            Err(e)
                if matches!(
                    e.kind(),
                    io::ErrorKind::AddrInUse | io::ErrorKind::PermissionDenied
                ) => {}
            Err(source) => {
                return Err(PortForwardError::Bind {
                    target: spec.target(),
                    address,
                    source,
                });
            }
        }
    }
    Err(PortForwardError::NoFreePort {
        target: spec.target(),
        address: spec.address,
        first: requested,
        last,
    })
}

/// The number behind the spec's remote port, for choosing the local port.
async fn remote_port_number(client: &Client, spec: &ForwardSpec) -> Result<u16, PortForwardError> {
    let name = match &spec.port {
        PortRef::Number(n) => return Ok(*n),
        PortRef::Name(name) => name,
    };
    let target = spec.target();
    let ns = &spec.namespace;
    let not_found = || PortForwardError::NotFound {
        target: target.clone(),
        kind: spec.resource_type,
        name: spec.name.clone(),
        namespace: ns.clone(),
    };
    let api_err = |e| PortForwardError::api(&target, e);
    match spec.resource_type {
        ResourceType::Service => {
            let svc = Api::<Service>::namespaced(client.clone(), ns)
                .get_opt(&spec.name)
                .await
                .map_err(api_err)?
                .ok_or_else(not_found)?;
            let port = service_port(&svc, &spec.port, &target, &spec.name)?;
            to_port(port.port, &target, &format!("service/{}", spec.name))
        }
        ResourceType::Deployment | ResourceType::StatefulSet | ResourceType::Pod => {
            let (object, pod_spec) = match spec.resource_type {
                ResourceType::Deployment => {
                    let d = Api::<Deployment>::namespaced(client.clone(), ns)
                        .get_opt(&spec.name)
                        .await
                        .map_err(api_err)?
                        .ok_or_else(not_found)?;
                    (
                        format!("deployment/{}", spec.name),
                        d.spec.and_then(|s| s.template.spec),
                    )
                }
                ResourceType::StatefulSet => {
                    let s = Api::<StatefulSet>::namespaced(client.clone(), ns)
                        .get_opt(&spec.name)
                        .await
                        .map_err(api_err)?
                        .ok_or_else(not_found)?;
                    (
                        format!("statefulset/{}", spec.name),
                        s.spec.and_then(|s| s.template.spec),
                    )
                }
                _ => {
                    let p = Api::<Pod>::namespaced(client.clone(), ns)
                        .get_opt(&spec.name)
                        .await
                        .map_err(api_err)?
                        .ok_or_else(not_found)?;
                    (format!("pod/{}", spec.name), p.spec)
                }
            };
            named_container_port(pod_spec.as_ref(), name, &target, &object)
        }
    }
}

fn to_port(n: i32, target: &str, object: &str) -> Result<u16, PortForwardError> {
    u16::try_from(n)
        .ok()
        .filter(|p| *p > 0)
        .ok_or_else(|| PortForwardError::InvalidPort {
            target: target.to_string(),
            object: object.to_string(),
            port: n,
        })
}

fn named_container_port(
    pod_spec: Option<&k8s_openapi::api::core::v1::PodSpec>,
    name: &str,
    target: &str,
    object: &str,
) -> Result<u16, PortForwardError> {
    let port = pod_spec
        .into_iter()
        .flat_map(|s| s.containers.iter())
        .flat_map(|c| c.ports.iter().flatten())
        .find(|p| p.name.as_deref() == Some(name))
        .ok_or_else(|| PortForwardError::NoNamedPort {
            target: target.to_string(),
            object: object.to_string(),
            port: name.to_string(),
        })?;
    to_port(port.container_port, target, object)
}

fn service_port<'a>(
    svc: &'a Service,
    port: &PortRef,
    target: &str,
    service: &str,
) -> Result<&'a k8s_openapi::api::core::v1::ServicePort, PortForwardError> {
    let ports = svc
        .spec
        .as_ref()
        .and_then(|s| s.ports.as_ref())
        .map(Vec::as_slice)
        .unwrap_or_default();
    ports
        .iter()
        .find(|p| match port {
            PortRef::Number(n) => p.port == i32::from(*n),
            PortRef::Name(name) => p.name.as_deref() == Some(name.as_str()),
        })
        .ok_or_else(|| PortForwardError::NoServicePort {
            target: target.to_string(),
            service: service.to_string(),
            port: port.clone(),
            available: if ports.is_empty() {
                "none".to_string()
            } else {
                ports
                    .iter()
                    .map(|p| match &p.name {
                        Some(n) => format!("`{}` ({n})", p.port),
                        None => format!("`{}`", p.port),
                    })
                    .collect::<Vec<_>>()
                    .join(", ")
            },
        })
}

/// Whether a pod can take a connection now: running, Ready and not being deleted.
fn is_ready(pod: &Pod) -> bool {
    pod.metadata.deletion_timestamp.is_none()
        && pod.status.as_ref().is_some_and(|s| {
            s.phase.as_deref() == Some("Running")
                && s.conditions
                    .iter()
                    .flatten()
                    .any(|c| c.type_ == "Ready" && c.status == "True")
        })
}

/// The newest ready pod matching `selector` (newest first, so a finished rollout wins over its old pods).
async fn newest_ready_pod(
    pods: &Api<Pod>,
    selector: &Selector,
    spec: &ForwardSpec,
) -> Result<Pod, PortForwardError> {
    let target = spec.target();
    let list = pods
        .list(&ListParams::default().labels_from(selector))
        .await
        .map_err(|e| PortForwardError::api(&target, e))?;
    list.items
        .into_iter()
        .filter(is_ready)
        .max_by(|a, b| {
            let created = |p: &Pod| p.metadata.creation_timestamp.clone().map(|t| t.0);
            created(a)
                .cmp(&created(b))
                .then_with(|| a.metadata.name.cmp(&b.metadata.name))
        })
        .ok_or_else(|| PortForwardError::NoReadyPod {
            target,
            namespace: spec.namespace.clone(),
        })
}

fn workload_selector(selector: Option<LabelSelector>) -> Option<Selector> {
    selector
        .and_then(|s| Selector::try_from(s).ok())
        .filter(|s| !s.selects_all())
}

/// Resolves the pod and port a new connection goes to, and opens the tunnel.
async fn open(client: &Client, spec: &ForwardSpec) -> Result<Tunnel, PortForwardError> {
    let target = spec.target();
    let ns = &spec.namespace;
    let pods: Api<Pod> = Api::namespaced(client.clone(), ns);
    let not_found = || PortForwardError::NotFound {
        target: target.clone(),
        kind: spec.resource_type,
        name: spec.name.clone(),
        namespace: ns.clone(),
    };
    let api_err = |e| PortForwardError::api(&target, e);
    let no_selector = || PortForwardError::NoSelector {
        target: target.clone(),
        object: format!("{}/{}", spec.resource_type, spec.name),
    };
    let (pod, port) = match spec.resource_type {
        ResourceType::Pod => {
            let pod = pods
                .get_opt(&spec.name)
                .await
                .map_err(api_err)?
                .ok_or_else(not_found)?;
            if !is_ready(&pod) {
                return Err(PortForwardError::NoReadyPod {
                    target,
                    namespace: ns.clone(),
                });
            }
            let port = pod_port(&pod, &spec.port, &target)?;
            (pod, port)
        }
        ResourceType::Service => {
            let svc = Api::<Service>::namespaced(client.clone(), ns)
                .get_opt(&spec.name)
                .await
                .map_err(api_err)?
                .ok_or_else(not_found)?;
            let service_port = service_port(&svc, &spec.port, &target, &spec.name)?.clone();
            let labels = svc
                .spec
                .as_ref()
                .and_then(|s| s.selector.clone())
                .filter(|s| !s.is_empty())
                .ok_or_else(no_selector)?;
            let selector: Selector = labels.into_iter().collect();
            let pod = newest_ready_pod(&pods, &selector, spec).await?;
            let port = match service_port.target_port {
                Some(IntOrString::Int(n)) => {
                    to_port(n, &target, &format!("service/{}", spec.name))?
                }
                Some(IntOrString::String(name)) => pod_port(&pod, &PortRef::Name(name), &target)?,
                None => to_port(
                    service_port.port,
                    &target,
                    &format!("service/{}", spec.name),
                )?,
            };
            (pod, port)
        }
        ResourceType::Deployment | ResourceType::StatefulSet => {
            let selector = if spec.resource_type == ResourceType::Deployment {
                Api::<Deployment>::namespaced(client.clone(), ns)
                    .get_opt(&spec.name)
                    .await
                    .map_err(api_err)?
                    .ok_or_else(not_found)?
                    .spec
                    .map(|s| s.selector)
            } else {
                Api::<StatefulSet>::namespaced(client.clone(), ns)
                    .get_opt(&spec.name)
                    .await
                    .map_err(api_err)?
                    .ok_or_else(not_found)?
                    .spec
                    .map(|s| s.selector)
            };
            // The API server rejects workloads without a selector; an empty one would match every pod.
            let selector = workload_selector(selector).ok_or_else(no_selector)?;
            let pod = newest_ready_pod(&pods, &selector, spec).await?;
            let port = pod_port(&pod, &spec.port, &target)?;
            (pod, port)
        }
    };
    let name = pod.metadata.name.clone().unwrap_or_default();
    let forwarder = pods
        .portforward(&name, &[port])
        .await
        .map_err(|e| PortForwardError::api(&target, e))?;
    Ok(Tunnel {
        pod: name,
        port,
        forwarder: Some(forwarder),
    })
}

/// The pod's port for `port`: a number as is, a name through the pod's container ports.
fn pod_port(pod: &Pod, port: &PortRef, target: &str) -> Result<u16, PortForwardError> {
    let object = format!("pod/{}", pod.metadata.name.as_deref().unwrap_or_default());
    match port {
        PortRef::Number(n) => Ok(*n),
        PortRef::Name(name) => named_container_port(pod.spec.as_ref(), name, target, &object),
    }
}

/// The pod side of a tunnel; calls `on_data` when the first bytes arrive from the pod (before they are passed on).
struct Watched<'a, S> {
    inner: S,
    on_data: Option<&'a (dyn Fn() + Sync)>,
}

impl<S: AsyncRead + Unpin> AsyncRead for Watched<'_, S> {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        let before = buf.filled().len();
        let polled = Pin::new(&mut self.inner).poll_read(cx, buf);
        if matches!(polled, Poll::Ready(Ok(())))
            && buf.filled().len() > before
            && let Some(f) = self.on_data.take()
        {
            f();
        }
        polled
    }
}

impl<S: AsyncWrite + Unpin> AsyncWrite for Watched<'_, S> {
    fn poll_write(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.inner).poll_write(cx, buf)
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.inner).poll_flush(cx)
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.inner).poll_shutdown(cx)
    }
}

/// Copies bytes both ways until either side ends; an error-channel message from the kubelet ends it as a failure.
/// `works` is called when the pod answers and when the tunnel closes cleanly: the forward is healthy.
async fn pipe(
    mut socket: TcpStream,
    mut tunnel: Tunnel,
    spec: &ForwardSpec,
    cancel: &CancellationToken,
    works: &(dyn Fn() + Sync),
) -> Result<(), PortForwardError> {
    let port = tunnel.port;
    let upstream_error = |message: String, pod: &str| PortForwardError::Upstream {
        target: spec.target(),
        pod: pod.to_string(),
        port,
        message: message.trim().to_string(),
    };
    let Some(forwarder) = tunnel.forwarder.as_mut() else {
        return Ok(());
    };
    let (Some(stream), Some(error)) = (forwarder.take_stream(port), forwarder.take_error(port))
    else {
        return Ok(());
    };
    let mut upstream = Watched {
        inner: stream,
        on_data: Some(works),
    };
    let mut error = Box::pin(error);
    let mut error_seen = false;
    {
        let copy = tokio::io::copy_bidirectional(&mut socket, &mut upstream);
        tokio::pin!(copy);
        loop {
            tokio::select! {
                biased;
                () = cancel.cancelled() => return Ok(()),
                message = &mut error, if !error_seen => {
                    error_seen = true;
                    if let Some(m) = message {
                        return Err(upstream_error(m, &tunnel.pod));
                    }
                }
                copied = &mut copy => {
                    if let Err(e) = copied {
                        tracing::debug!(error = %e, "port-forward connection ended with an error");
                    }
                    break;
                }
            }
        }
    }
    // Closing our end makes kube send Close; the error future resolves once its task has finished.
    drop(upstream);
    drop(socket);
    if !error_seen {
        let ended = tokio::select! {
            () = cancel.cancelled() => None,
            r = tokio::time::timeout(CLOSE_GRACE, &mut error) => r.ok(),
        };
        match ended {
            Some(Some(m)) => return Err(upstream_error(m, &tunnel.pod)),
            Some(None) => {}
            // Still running: dropping the tunnel aborts it.
            None => return Ok(()),
        }
    }
    if let Some(f) = tunnel.forwarder.take() {
        match f.join().await {
            Ok(()) => works(),
            // kube may report a send after the server's normal Close (STACK.md): not a failure of the forward.
            Err(e) => tracing::debug!(error = %e, "port-forward tunnel closed with an error"),
        }
    }
    Ok(())
}

/// One forward per port of every Service among `objects` (for `--port-forward`), listening on `address`.
/// `objects` are as the cluster returned them (namespace set); Services without a selector are skipped (nothing
/// to forward to).
pub fn service_specs<'a>(
    objects: impl IntoIterator<Item = &'a Value>,
    address: IpAddr,
) -> Vec<ForwardSpec> {
    let mut specs = Vec::new();
    for o in objects {
        if o["kind"] != "Service" || o["apiVersion"] != "v1" {
            continue;
        }
        let has_selector = o
            .pointer("/spec/selector")
            .and_then(Value::as_object)
            .is_some_and(|m| !m.is_empty());
        let (Some(name), Some(namespace)) = (
            o.pointer("/metadata/name").and_then(Value::as_str),
            o.pointer("/metadata/namespace").and_then(Value::as_str),
        ) else {
            continue;
        };
        if !has_selector {
            continue;
        }
        for p in o
            .pointer("/spec/ports")
            .and_then(Value::as_array)
            .into_iter()
            .flatten()
        {
            let Some(port) = p["port"].as_u64().and_then(|n| u16::try_from(n).ok()) else {
                continue;
            };
            // Only TCP can be forwarded.
            if p["protocol"].as_str().is_some_and(|proto| proto != "TCP") {
                continue;
            }
            specs.push(ForwardSpec {
                resource_type: ResourceType::Service,
                name: name.to_string(),
                namespace: namespace.to_string(),
                port: PortRef::Number(port),
                local_port: None,
                address,
            });
        }
    }
    specs
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;
    use std::net::Ipv4Addr;

    fn spec(port: PortRef, local_port: Option<u16>) -> ForwardSpec {
        ForwardSpec {
            resource_type: ResourceType::Service,
            name: "api".into(),
            namespace: "shop".into(),
            port,
            local_port,
            address: IpAddr::V4(Ipv4Addr::LOCALHOST),
        }
    }

    #[test]
    fn resource_types_read_like_kubectl() {
        assert_eq!(ResourceType::parse("Service"), Some(ResourceType::Service));
        assert_eq!(ResourceType::parse("svc"), Some(ResourceType::Service));
        assert_eq!(
            ResourceType::parse("deploy"),
            Some(ResourceType::Deployment)
        );
        assert_eq!(
            ResourceType::parse("StatefulSet"),
            Some(ResourceType::StatefulSet)
        );
        assert_eq!(ResourceType::parse("po"), Some(ResourceType::Pod));
        assert_eq!(ResourceType::parse("job"), None);
        assert_eq!(
            spec(PortRef::Name("http".into()), None).target(),
            "service/api:http"
        );
    }

    #[tokio::test]
    async fn a_taken_port_falls_to_the_next_free_one() {
        let taken = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let port = taken.local_addr().unwrap().port();
        let s = spec(PortRef::Number(80), Some(port));
        let (_socket, local) = bind(&s, port).await.unwrap();
        assert!(local.port() > port, "{local} after taken {port}");
        assert!(local.port() <= port + PORT_SEARCH);
        assert_eq!(local.ip(), IpAddr::V4(Ipv4Addr::LOCALHOST));
    }

    #[tokio::test]
    async fn an_address_that_is_not_local_is_an_error() {
        let mut s = spec(PortRef::Number(80), Some(8080));
        // TEST-NET-1: never an address of this machine.
        s.address = IpAddr::V4(Ipv4Addr::new(192, 0, 2, 1));
        let e = bind(&s, 8080).await.unwrap_err();
        assert!(
            e.to_string()
                .starts_with("port-forward `service/api:80`: cannot listen on `192.0.2.1:8080`"),
            "{e}"
        );
    }

    fn pod(name: &str, created: &str, ready: bool, deleting: bool) -> Pod {
        serde_json::from_value(serde_json::json!({
            "metadata": {
                "name": name,
                "creationTimestamp": created,
                "deletionTimestamp": if deleting { Some(created) } else { None },
            },
            "spec": {"containers": [{"name": "main", "ports": [{"name": "http", "containerPort": 8080}]}]},
            "status": {"phase": "Running", "conditions": [{"type": "Ready", "status": if ready { "True" } else { "False" }}]}
        }))
        .unwrap()
    }

    #[test]
    fn only_running_ready_pods_that_are_not_deleted_take_connections() {
        assert!(is_ready(&pod("a", "2026-01-01T00:00:00Z", true, false)));
        assert!(!is_ready(&pod("a", "2026-01-01T00:00:00Z", false, false)));
        assert!(!is_ready(&pod("a", "2026-01-01T00:00:00Z", true, true)));
    }

    #[test]
    fn named_ports_resolve_through_container_ports() {
        let p = pod("a", "2026-01-01T00:00:00Z", true, false);
        assert_eq!(
            pod_port(&p, &PortRef::Name("http".into()), "t").unwrap(),
            8080
        );
        assert_eq!(pod_port(&p, &PortRef::Number(9000), "t").unwrap(), 9000);
        let e = pod_port(&p, &PortRef::Name("grpc".into()), "service/api:grpc").unwrap_err();
        assert_eq!(
            e.to_string(),
            "port-forward `service/api:grpc`: no container of `pod/a` declares a port named `grpc`"
        );
    }

    #[test]
    fn every_tcp_port_of_a_service_with_a_selector_is_forwarded() {
        let objects = [
            serde_json::json!({"apiVersion": "v1", "kind": "Service", "metadata": {"name": "api", "namespace": "shop"},
                "spec": {"selector": {"app": "api"}, "ports": [{"port": 80}, {"port": 53, "protocol": "UDP"}, {"port": 9090, "protocol": "TCP"}]}}),
            serde_json::json!({"apiVersion": "v1", "kind": "Service", "metadata": {"name": "ext", "namespace": "shop"},
                "spec": {"ports": [{"port": 443}]}}),
            serde_json::json!({"apiVersion": "apps/v1", "kind": "Deployment", "metadata": {"name": "api", "namespace": "shop"}}),
        ];
        let specs = service_specs(&objects, IpAddr::V4(Ipv4Addr::LOCALHOST));
        let targets: Vec<String> = specs.iter().map(ForwardSpec::target).collect();
        assert_eq!(targets, ["service/api:80", "service/api:9090"]);
        assert!(
            specs
                .iter()
                .all(|s| s.namespace == "shop" && s.local_port.is_none())
        );
    }

    #[test]
    fn service_ports_match_by_number_or_name_and_list_the_choices() {
        let svc: Service = serde_json::from_value(serde_json::json!({
            "metadata": {"name": "api"},
            "spec": {"ports": [{"name": "http", "port": 80, "targetPort": "web"}, {"port": 9090}]}
        }))
        .unwrap();
        assert_eq!(
            service_port(&svc, &PortRef::Number(80), "t", "api")
                .unwrap()
                .port,
            80
        );
        assert_eq!(
            service_port(&svc, &PortRef::Name("http".into()), "t", "api")
                .unwrap()
                .port,
            80
        );
        let e = service_port(&svc, &PortRef::Number(81), "service/api:81", "api").unwrap_err();
        assert_eq!(
            e.to_string(),
            "port-forward `service/api:81`: service `api` has no port `81`\n\nhint: its ports are `80` (http), `9090`"
        );
    }
}
