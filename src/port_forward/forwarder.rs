//! Port-forward: the listeners of every forward → connections accepted and tunnelled until cancelled, each to the
//! ready pod resolved when it arrives (waiting with backoff while there is none), and the forward's health as events
//! (failed, recovered, re-targeted to a new rollout's pod). Emits events, never prints, spawns nothing.

use std::future::Future;
use std::io;
use std::net::SocketAddr;
use std::pin::Pin;
use std::sync::Mutex;
use std::time::Duration;

use futures_util::stream::{self, FuturesUnordered, SelectAll, Stream, StreamExt};
use kube::Client;
use tokio::net::TcpStream;
use tokio::time::Instant;
use tokio_util::sync::CancellationToken;

use crate::connectivity::{Connectivity, jitter};
use crate::event::{Event, EventSink};

use super::error::PortForwardError;
use super::listener::{Forward, ForwardHealth, HealthState, Listener, bind, lock};
use super::spec::ForwardSpec;
use super::target::remote_port_number;
use super::tunnel::{open, pipe};

/// How long a connection waits for a ready pod (or a reachable API) before it is closed.
pub const DEFAULT_POD_WAIT: Duration = Duration::from_secs(30);

const FIRST_BACKOFF: Duration = Duration::from_millis(100);
const MAX_BACKOFF: Duration = Duration::from_secs(2);
/// A connection still waiting after this long makes the forward unhealthy (a normal rollout gap is shorter).
const NOTICE_AFTER: Duration = Duration::from_secs(2);

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
