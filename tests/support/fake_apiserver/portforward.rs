//! Fake API server, port-forward: `GET pods/NAME/portforward?ports=P` with a WebSocket upgrade → the kubelet's
//! channel protocol as recorded in 08-portforward-* (subprotocol choice, two 3-byte port frames per port, data on
//! channel 2k, error text on 2k+1, Close 1000), each data channel proxied to the TCP address a test attached to that
//! pod port (or to that port of every pod of an image); must not reach a pod whose containers are not running, nor
//! answer what the kubelet would refuse.

use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;

use bytes::Bytes;
use futures_util::{SinkExt, StreamExt};
use hyper::HeaderMap;
use hyper::Response;
use hyper::upgrade::OnUpgrade;
use serde_json::Value;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio::net::tcp::OwnedWriteHalf;
use tokio::sync::{mpsc, watch};
use tokio::task::JoinSet;
use tokio_tungstenite::tungstenite::Message;
use tokio_tungstenite::tungstenite::protocol::frame::CloseFrame;
use tokio_tungstenite::tungstenite::protocol::frame::coding::CloseCode;

use super::pods::{PodSim, PodState};
use super::server::{Body, Shared};
use super::state::State;
use super::status::ApiError;
use super::util::fnv32a;
use super::websocket::{self, Framing, Ws, text_response};

/// Pod ports a test attached to a real TCP server: `(namespace, pod, port)` → address.
pub type PodPorts = Mutex<HashMap<(String, String, u16), SocketAddr>>;

/// Ports of every pod running an image, attached by a test: `(image substring, port, address)`, first match wins.
pub type ImagePorts = Mutex<Vec<(String, u16, SocketAddr)>>;

/// After the pod side of every port closed, the server sent Close about this long later (08-portforward-ws-ok.txt).
const CLOSE_AFTER_UPSTREAM_EOF: Duration = Duration::from_secs(1);

/// The subprotocols the kubelet's WebSocket port-forward accepts, plus the apiserver's WebSocket→SPDY tunnel.
const V4_BINARY: &str = "v4.channel.k8s.io";
const V4_BASE64: &str = "v4.base64.channel.k8s.io";
const SPDY_TUNNEL: &str = "SPDY/3.1+portforward.k8s.io";

/// The kubelet's parse of the port list (`ports=8080,9999` and repeated `ports=`), with its 400 texts.
fn parse_ports(query: &[(String, String)]) -> Result<Vec<u16>, String> {
    let values: Vec<&str> = query
        .iter()
        .filter(|(k, v)| k == "ports" && !v.is_empty())
        .map(|(_, v)| v.as_str())
        .collect();
    if values.is_empty() {
        return Err("query parameter \"port\" is required".to_string());
    }
    let mut ports = Vec::new();
    for value in values {
        for p in value.split(',') {
            let port: u16 = p.parse().map_err(|_| {
                format!(
                    "unable to parse {value:?} as a port: strconv.ParseUint: parsing {p:?}: invalid syntax"
                )
            })?;
            if port < 1 {
                return Err(format!("port {value:?} must be > 0"));
            }
            ports.push(port);
        }
    }
    Ok(ports)
}

/// 64 hex digits standing in for the pod's sandbox id (containerd names the sandbox, not the pod, in its errors).
fn sandbox_id(uid: &str) -> String {
    (0..8)
        .map(|i| format!("{:08x}", fnv32a(format!("sandbox{i}:{uid}").as_bytes())))
        .collect()
}

/// containerd 1.6's text on the error channel when nothing listens on the port (08-portforward-ws-closed-port.txt).
fn refused_text(uid: &str, port: u16) -> String {
    let sandbox = sandbox_id(uid);
    let netns = format!(
        "/var/run/netns/cni-{}",
        &sandbox_id(&format!("netns{uid}"))[..32]
    );
    format!(
        "error forwarding port {port} to pod {sandbox}, uid : failed to execute portforward in network namespace \"{netns}\": failed to connect to localhost:{port} inside namespace \"{sandbox}\", IPv4: dial tcp4 127.0.0.1:{port}: connect: connection refused IPv6 dial tcp6: address localhost: no suitable address found "
    )
}

/// Whether a process of the pod can be listening: an app container is running (ready or not).
fn process_running(sim: &PodSim) -> bool {
    sim.containers
        .iter()
        .any(|c| !c.init && matches!(c.state, PodState::Running | PodState::NotReady))
}

/// The address a test attached to `port` of the images a running app container of the pod runs.
fn image_port(shared: &Shared, sim: &PodSim, port: u16) -> Option<SocketAddr> {
    let list = shared
        .image_ports
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner);
    list.iter()
        .find(|(part, p, _)| {
            *p == port
                && sim.containers.iter().any(|c| {
                    !c.init
                        && matches!(c.state, PodState::Running | PodState::NotReady)
                        && c.image.contains(part.as_str())
                })
        })
        .map(|(_, _, addr)| *addr)
}

/// The pod's sim when the pod object with `uid` still exists and a process of it runs.
fn running_pod<'a>(st: &'a State, namespace: &str, name: &str, uid: &str) -> Option<&'a PodSim> {
    let res = super::resources::find_kind("Pod")?;
    let same = st
        .get(res, namespace, name)
        .and_then(|p| p.pointer("/metadata/uid"))
        .and_then(Value::as_str)
        == Some(uid);
    st.pods.get(uid).filter(|sim| same && process_running(sim))
}

/// Answers a port-forward request for pod `name`; `st` is the locked store (dropped before any waiting).
#[allow(clippy::too_many_arguments)]
pub fn serve(
    shared: &Arc<Shared>,
    st: MutexGuard<'_, State>,
    namespace: &str,
    name: &str,
    query: &[(String, String)],
    headers: &HeaderMap,
    upgrade: Option<OnUpgrade>,
    shutdown: watch::Receiver<bool>,
) -> Result<Response<Body>, ApiError> {
    let pod_res = super::resources::find_kind("Pod").ok_or_else(ApiError::resource_not_found)?;
    let pod = st
        .get(pod_res, namespace, name)
        .cloned()
        .ok_or_else(|| ApiError::not_found("pods", "", name))?;
    // The apiserver needs the pod's node to reach a kubelet.
    if pod.pointer("/spec/nodeName").is_none() {
        return Err(ApiError::bad_request(format!(
            "pod {name} does not have a host assigned"
        )));
    }
    let uid = pod
        .pointer("/metadata/uid")
        .and_then(Value::as_str)
        .unwrap_or_default()
        .to_string();
    // From here on the kubelet answers, in plain text.
    let ports = match parse_ports(query) {
        Ok(p) => p,
        Err(text) => return Ok(text_response(400, &text)),
    };
    let phase = st.pods.get(&uid).map(PodSim::phase);
    if matches!(phase, Some("Succeeded" | "Failed")) {
        return Ok(text_response(
            500,
            &format!("pod not found (\"{name}_{namespace}\")"),
        ));
    }
    drop(st);
    let (Some(key), Some(upgrade)) = (websocket::upgrade_key(headers, upgrade.as_ref()), upgrade)
    else {
        return Ok(text_response(
            400,
            "unable to upgrade: missing upgrade headers in request",
        ));
    };
    let Ok(protocol) = websocket::negotiate(headers, &[V4_BINARY, V4_BASE64, SPDY_TUNNEL]) else {
        return Ok(websocket::no_protocol_response());
    };
    let framing = match protocol {
        Some(V4_BASE64) => Framing::Base64,
        _ => Framing::Binary,
    };
    let response = websocket::switching_protocols(&key, protocol);
    let session = Session {
        shared: Arc::clone(shared),
        namespace: namespace.to_string(),
        name: name.to_string(),
        uid,
        ports,
        framing,
        spdy: protocol == Some(SPDY_TUNNEL),
    };
    tokio::spawn(async move {
        if let Some(ws) = websocket::accept(upgrade).await {
            session.run(ws, shutdown).await;
        }
    });
    Ok(response)
}

/// One upgraded port-forward connection.
struct Session {
    shared: Arc<Shared>,
    namespace: String,
    name: String,
    uid: String,
    ports: Vec<u16>,
    framing: Framing,
    /// The WebSocket→SPDY tunnel: nothing is sent until the client speaks SPDY, which the fake does not.
    spdy: bool,
}

/// What an upstream reader reports: bytes from the pod side of port `k`, or its end.
enum Upstream {
    Data(usize, Bytes),
    Eof(usize),
}

impl Session {
    fn frame(&self, channel: usize, data: &[u8]) -> Message {
        self.framing
            .frame(u8::try_from(channel).unwrap_or(u8::MAX), data)
    }

    /// Splits a client message into channel and payload; `None` for anything that carries no data.
    fn unframe(&self, msg: Message) -> Option<(usize, Vec<u8>)> {
        self.framing
            .unframe(msg, false)
            .map(|(ch, data)| (usize::from(ch), data))
    }

    /// Dials the address attached to `port` when a process of the pod runs; `None` = connection refused.
    async fn dial(&self, port: u16) -> Option<TcpStream> {
        let addr = {
            let st = self.shared.lock();
            let sim = running_pod(&st, &self.namespace, &self.name, &self.uid)?;
            let map = self
                .shared
                .pod_ports
                .lock()
                .unwrap_or_else(std::sync::PoisonError::into_inner);
            match map.get(&(self.namespace.clone(), self.name.clone(), port)) {
                Some(addr) => *addr,
                None => image_port(&self.shared, sim, port)?,
            }
        };
        TcpStream::connect(addr).await.ok()
    }

    async fn run(self, mut ws: Ws, mut shutdown: watch::Receiver<bool>) {
        if self.spdy {
            // Nothing arrives until the client speaks SPDY; hold the connection until it goes away.
            while let Some(Ok(msg)) = ws.next().await {
                if msg.is_close() {
                    break;
                }
            }
            return;
        }
        for (k, port) in self.ports.iter().enumerate() {
            for channel in [2 * k, 2 * k + 1] {
                if ws
                    .feed(self.frame(channel, &port.to_le_bytes()))
                    .await
                    .is_err()
                {
                    return;
                }
            }
        }
        if ws.flush().await.is_err() {
            return;
        }
        let (tx, mut rx) = mpsc::channel::<Upstream>(64);
        let mut readers = JoinSet::new();
        let mut writers: Vec<Option<OwnedWriteHalf>> = Vec::new();
        for (k, port) in self.ports.iter().enumerate() {
            match self.dial(*port).await {
                Some(stream) => {
                    let (mut read, write) = stream.into_split();
                    writers.push(Some(write));
                    let tx = tx.clone();
                    readers.spawn(async move {
                        let mut buf = vec![0u8; 32 * 1024];
                        loop {
                            match read.read(&mut buf).await {
                                Ok(0) | Err(_) => {
                                    let _ = tx.send(Upstream::Eof(k)).await;
                                    return;
                                }
                                Ok(n) => {
                                    let chunk = Bytes::copy_from_slice(&buf[..n]);
                                    if tx.send(Upstream::Data(k, chunk)).await.is_err() {
                                        return;
                                    }
                                }
                            }
                        }
                    });
                }
                None => {
                    writers.push(None);
                    let text = refused_text(&self.uid, *port);
                    if ws
                        .send(self.frame(2 * k + 1, text.as_bytes()))
                        .await
                        .is_err()
                    {
                        return;
                    }
                }
            }
        }
        drop(tx);
        // A refused port ends at once; the connection closes when no port is left (08-portforward-ws-closed-port).
        let mut close_at = writers
            .iter()
            .all(Option::is_none)
            .then(tokio::time::Instant::now);
        loop {
            let changed = self.shared.changed.notified();
            tokio::pin!(changed);
            changed.as_mut().enable();
            if writers.iter().any(Option::is_some) {
                let alive = {
                    let st = self.shared.lock();
                    running_pod(&st, &self.namespace, &self.name, &self.uid).is_some()
                };
                if !alive {
                    // The pod's processes are gone: their sockets closed, as at an upstream EOF.
                    readers.abort_all();
                    writers.iter_mut().for_each(|w| *w = None);
                    close_at = Some(tokio::time::Instant::now() + CLOSE_AFTER_UPSTREAM_EOF);
                }
            }
            let wake = close_at
                .unwrap_or_else(|| tokio::time::Instant::now() + Duration::from_secs(24 * 3600));
            tokio::select! {
                msg = ws.next() => match msg {
                    Some(Ok(m)) if m.is_close() => {
                        // tungstenite queues the Close reply; flushing sends it.
                        let _ = ws.flush().await;
                        return;
                    }
                    Some(Ok(m)) => {
                        // Writes to an error channel or an unknown channel are dropped, as by the kubelet.
                        if let Some((ch, data)) = self.unframe(m)
                            && ch % 2 == 0
                            && let Some(Some(w)) = writers.get_mut(ch / 2)
                            && w.write_all(&data).await.is_err()
                        {
                            writers[ch / 2] = None;
                        }
                    }
                    Some(Err(_)) | None => return,
                },
                up = rx.recv(), if close_at.is_none() => match up {
                    Some(Upstream::Data(k, data)) => {
                        if ws.send(self.frame(2 * k, &data)).await.is_err() {
                            return;
                        }
                    }
                    Some(Upstream::Eof(k)) => {
                        writers[k] = None;
                        if writers.iter().all(Option::is_none) {
                            close_at = Some(tokio::time::Instant::now() + CLOSE_AFTER_UPSTREAM_EOF);
                        }
                    }
                    None => {
                        close_at.get_or_insert_with(tokio::time::Instant::now);
                    }
                },
                () = tokio::time::sleep_until(wake) => {
                    let close = CloseFrame { code: CloseCode::Normal, reason: "".into() };
                    let _ = ws.send(Message::Close(Some(close))).await;
                    return;
                }
                () = &mut changed => {}
                _ = shutdown.changed() => return,
            }
        }
    }
}
