//! Port-forward scenarios against a Kubernetes API: the fake API server in `tests/support` (pod ports attached to
//! tiny HTTP responders on 127.0.0.1), or a real cluster when `DEVLOOP_TEST_KUBECONFIG` names its kubeconfig.
//! Also the fake's port-forward wire protocol, byte for byte against shared/kube-api/08-portforward-*.
//!
//! Real-cluster notes: `DEVLOOP_TEST_IMAGE` must name an image the nodes can run that serves HTTP on the port
//! `DEVLOOP_TEST_HTTP_PORT` (e.g. a `FROM scratch` busybox image running `httpd -f -p PORT`); the scenarios are
//! skipped when either is unset. Each test uses its own namespace and deletes it at the end.
#![allow(clippy::unwrap_used, clippy::print_stderr)]

mod support;

use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::path::PathBuf;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use devloop::event::{Event, EventSink};
use devloop::port_forward::{ForwardSpec, Forwarder, PortRef, ResourceType};
use k8s_openapi::api::apps::v1::Deployment;
use k8s_openapi::api::core::v1::{Namespace, Pod, Service};
use kube::api::{Api, ListParams, Patch, PatchParams, PostParams};
use serde_json::{Value, json};
use support::fake_apiserver::{FakeApiServer, PodState, TOKEN};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio_util::sync::CancellationToken;

const LOCALHOST: IpAddr = IpAddr::V4(Ipv4Addr::LOCALHOST);

/// The cluster a scenario runs against.
struct Cluster {
    fake: Option<FakeApiServer>,
    client: kube::Client,
    ns: String,
    image: String,
    /// The container port the image serves HTTP on.
    http_port: u16,
}

impl Cluster {
    /// The fake, or the real cluster when configured; `None` (skip) for a real cluster without an HTTP image.
    async fn start() -> Option<Cluster> {
        let ns = support::unique("devloop-pf");
        let cluster = match std::env::var_os("DEVLOOP_TEST_KUBECONFIG") {
            Some(path) => {
                let (Ok(image), Some(http_port)) = (
                    std::env::var("DEVLOOP_TEST_IMAGE"),
                    std::env::var("DEVLOOP_TEST_HTTP_PORT")
                        .ok()
                        .and_then(|p| p.parse().ok()),
                ) else {
                    eprintln!(
                        "skipped: DEVLOOP_TEST_IMAGE and DEVLOOP_TEST_HTTP_PORT must name an image serving HTTP"
                    );
                    return None;
                };
                let kc = kube::config::Kubeconfig::read_from(PathBuf::from(path)).unwrap();
                let config = kube::Config::from_custom_kubeconfig(kc, &Default::default())
                    .await
                    .unwrap();
                Cluster {
                    fake: None,
                    client: kube::Client::try_from(config).unwrap(),
                    ns,
                    image,
                    http_port,
                }
            }
            None => {
                let fake = FakeApiServer::start();
                let client = fake.client().await;
                Cluster {
                    fake: Some(fake),
                    client,
                    ns,
                    image: "registry.example/web:1".to_string(),
                    http_port: 8080,
                }
            }
        };
        let mut namespace = Namespace::default();
        namespace.metadata.name = Some(cluster.ns.clone());
        Api::<Namespace>::all(cluster.client.clone())
            .create(&PostParams::default(), &namespace)
            .await
            .unwrap();
        Some(cluster)
    }

    /// Applies a Deployment `name` (label `app: name`, container port `http`) and a Service `name` on `port`
    /// whose targetPort is the container port's name; `revision` goes into the pod template.
    async fn deploy_web(&self, name: &str, revision: &str) {
        let deployment = json!({
            "apiVersion": "apps/v1", "kind": "Deployment", "metadata": {"name": name},
            "spec": {
                "replicas": 1,
                "selector": {"matchLabels": {"app": name}},
                "template": {
                    "metadata": {"labels": {"app": name}, "annotations": {"revision": revision}},
                    "spec": {
                        "terminationGracePeriodSeconds": 1,
                        "containers": [{"name": "main", "image": self.image,
                            "ports": [{"name": "http", "containerPort": self.http_port}]}]
                    }
                }
            }
        });
        let service = json!({
            "apiVersion": "v1", "kind": "Service", "metadata": {"name": name},
            "spec": {"selector": {"app": name}, "ports": [{"name": "web", "port": 80, "targetPort": "http"}]}
        });
        let pp = PatchParams::apply("devloop-test").force();
        Api::<Deployment>::namespaced(self.client.clone(), &self.ns)
            .patch(name, &pp, &Patch::Apply(&deployment))
            .await
            .unwrap();
        Api::<Service>::namespaced(self.client.clone(), &self.ns)
            .patch(name, &pp, &Patch::Apply(&service))
            .await
            .unwrap();
    }

    /// Waits for a pod of `app` not in `except` to exist (`ready`: and be Ready, not terminating); its name.
    async fn pod_of(&self, app: &str, except: &[&str], ready: bool) -> String {
        let pods: Api<Pod> = Api::namespaced(self.client.clone(), &self.ns);
        let lp = ListParams::default().labels(&format!("app={app}"));
        for _ in 0..1200 {
            for p in pods.list(&lp).await.unwrap().items {
                let name = p.metadata.name.clone().unwrap();
                let is_ready = p.metadata.deletion_timestamp.is_none()
                    && p.status
                        .iter()
                        .flat_map(|s| s.conditions.iter().flatten())
                        .any(|c| c.type_ == "Ready" && c.status == "True");
                if !except.contains(&name.as_str()) && (is_ready || !ready) {
                    return name;
                }
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        panic!("no pod of app={app} besides {except:?} (ready: {ready})");
    }

    async fn wait_gone(&self, pod: &str) {
        let pods: Api<Pod> = Api::namespaced(self.client.clone(), &self.ns);
        for _ in 0..1200 {
            if pods.get_opt(pod).await.unwrap().is_none() {
                return;
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        panic!("pod {pod} was not deleted");
    }

    /// On the fake: runs an HTTP responder for `pod` and attaches it to the pod's HTTP port.
    async fn serve(&self, pod: &str) -> Option<Responder> {
        let fake = self.fake.as_ref()?;
        let responder = Responder::start(pod).await;
        fake.serve_pod_port(&self.ns, pod, self.http_port, responder.addr);
        Some(responder)
    }

    fn service(&self, name: &str, local_port: Option<u16>) -> ForwardSpec {
        ForwardSpec {
            resource_type: ResourceType::Service,
            name: name.to_string(),
            namespace: self.ns.clone(),
            port: PortRef::Number(80),
            local_port,
            address: LOCALHOST,
        }
    }

    async fn cleanup(&self) {
        if self.fake.is_none() {
            let _ = Api::<Namespace>::all(self.client.clone())
                .delete(&self.ns, &Default::default())
                .await;
        }
    }
}

/// A tiny HTTP/1.1 server standing in for a pod's container: answers every request with `hello from POD`.
struct Responder {
    addr: SocketAddr,
    task: tokio::task::JoinHandle<()>,
}

impl Responder {
    async fn start(pod: &str) -> Responder {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let body = format!("hello from {pod}\n");
        let task = tokio::spawn(async move {
            loop {
                let Ok((mut socket, _)) = listener.accept().await else {
                    return;
                };
                let body = body.clone();
                tokio::spawn(async move {
                    let mut buf = Vec::new();
                    let mut chunk = [0u8; 4096];
                    loop {
                        let Some(end) = find(&buf, b"\r\n\r\n") else {
                            match socket.read(&mut chunk).await {
                                Ok(0) | Err(_) => return,
                                Ok(n) => buf.extend_from_slice(&chunk[..n]),
                            }
                            continue;
                        };
                        let head = String::from_utf8_lossy(&buf[..end]).to_ascii_lowercase();
                        buf.drain(..end + 4);
                        let close = head.contains("connection: close") || head.contains("http/1.0");
                        let response = format!(
                            "HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\nContent-Length: {}\r\nConnection: {}\r\n\r\n{body}",
                            body.len(),
                            if close { "close" } else { "keep-alive" }
                        );
                        if socket.write_all(response.as_bytes()).await.is_err() || close {
                            return;
                        }
                    }
                });
            }
        });
        Responder { addr, task }
    }
}

impl Drop for Responder {
    fn drop(&mut self) {
        self.task.abort();
    }
}

fn find(haystack: &[u8], needle: &[u8]) -> Option<usize> {
    haystack.windows(needle.len()).position(|w| w == needle)
}

/// Reads one HTTP response (head and a Content-Length body); `None` when the connection ended first.
async fn read_response(socket: &mut TcpStream) -> Option<(u16, String)> {
    let mut buf = Vec::new();
    let mut chunk = [0u8; 4096];
    loop {
        if let Some(end) = find(&buf, b"\r\n\r\n") {
            let head = String::from_utf8_lossy(&buf[..end]).to_string();
            let status = head.split(' ').nth(1)?.parse().ok()?;
            let length: usize = head
                .lines()
                .find_map(|l| {
                    let (k, v) = l.split_once(':')?;
                    k.eq_ignore_ascii_case("content-length")
                        .then(|| v.trim().parse().ok())?
                })
                .unwrap_or(0);
            if buf.len() >= end + 4 + length {
                let body = String::from_utf8_lossy(&buf[end + 4..end + 4 + length]).to_string();
                return Some((status, body));
            }
        }
        match tokio::time::timeout(Duration::from_secs(30), socket.read(&mut chunk)).await {
            Ok(Ok(n)) if n > 0 => buf.extend_from_slice(&chunk[..n]),
            _ => return None,
        }
    }
}

/// `GET /` on a kept-alive connection.
async fn get(socket: &mut TcpStream) -> Option<(u16, String)> {
    socket
        .write_all(b"GET / HTTP/1.1\r\nHost: localhost\r\n\r\n")
        .await
        .ok()?;
    read_response(socket).await
}

/// `GET /` on a new connection to `addr`.
async fn get_new(addr: SocketAddr) -> Option<(u16, String)> {
    let mut socket = TcpStream::connect(addr).await.ok()?;
    get(&mut socket).await
}

/// Runs a forwarder until the returned token is cancelled.
fn run(forwarder: &Arc<Forwarder>) -> CancellationToken {
    let cancel = CancellationToken::new();
    let (f, c) = (Arc::clone(forwarder), cancel.clone());
    tokio::spawn(async move { f.run(c).await });
    cancel
}

/// The port-forward failures reported so far.
fn warnings(events: &Mutex<Vec<Event>>) -> Vec<String> {
    events
        .lock()
        .unwrap()
        .iter()
        .filter_map(|e| match e {
            Event::PortForwardFailed { message, .. } => Some(message.clone()),
            _ => None,
        })
        .collect()
}

/// Two adjacent free ports on 127.0.0.1 (checked by binding them), so "the next free one" is predictable.
fn free_port_pair() -> u16 {
    for _ in 0..100 {
        let a = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let port = a.local_addr().unwrap().port();
        if port < u16::MAX - 2
            && std::net::TcpListener::bind(("127.0.0.1", port + 1)).is_ok()
            && std::net::TcpListener::bind(("127.0.0.1", port + 2)).is_ok()
        {
            return port;
        }
    }
    panic!("no free port pair");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn service_forward_keeps_its_port_and_follows_a_rollout() {
    let Some(c) = Cluster::start().await else {
        return;
    };
    c.deploy_web("web", "1").await;
    let pod_a = c.pod_of("web", &[], true).await;
    let _responder_a = c.serve(&pod_a).await;

    let (events, seen) = EventSink::collector();
    let wanted = free_port_pair();
    let (forwarder, forwards) = Forwarder::start(
        c.client.clone(),
        vec![c.service("web", Some(wanted))],
        events,
    )
    .await
    .unwrap();
    let local = forwards[0].local;
    assert_eq!(local, SocketAddr::new(LOCALHOST, wanted));
    assert_eq!(
        forwards[0].to_string(),
        format!(
            "forwarding 127.0.0.1:{wanted} → service/web:80 (namespace `{}`)",
            c.ns
        )
    );
    let forwarder = Arc::new(forwarder);
    let cancel = run(&forwarder);

    // A connection kept open across the rollout.
    let mut held = TcpStream::connect(local).await.unwrap();
    let (status, body) = get(&mut held).await.expect("a response from pod A");
    assert_eq!(status, 200);
    if let Some(fake) = &c.fake {
        assert_eq!(body, format!("hello from {pod_a}\n"));
        // The Service's named targetPort `http` resolved to the container port.
        let pf: Vec<_> = fake
            .requests()
            .into_iter()
            .filter(|r| r.path.ends_with("/portforward"))
            .collect();
        assert_eq!(pf.len(), 1, "{pf:?}");
        assert_eq!(
            pf[0].path,
            format!("/api/v1/namespaces/{}/pods/{pod_a}/portforward", c.ns)
        );
        assert_eq!(pf[0].param("ports"), Some("8080"));
        assert_eq!(pf[0].code, Some(101));
    }
    assert_eq!(forwarder.health()[0].pod.as_deref(), Some(pod_a.as_str()));

    // A rollout: the template changes, a new pod replaces pod A.
    c.deploy_web("web", "2").await;
    let pod_b = c.pod_of("web", &[pod_a.as_str()], false).await;
    let _responder_b = c.serve(&pod_b).await;
    c.pod_of("web", &[pod_a.as_str()], true).await;
    c.wait_gone(&pod_a).await;

    // The connection to the pod that went away ends; clients reconnect.
    let mut rest = Vec::new();
    let ended = tokio::time::timeout(Duration::from_secs(30), held.read_to_end(&mut rest)).await;
    assert!(ended.is_ok(), "the connection to the deleted pod must end");

    // Same local port, new pod.
    let (status, body) = get_new(local).await.expect("a response from pod B");
    assert_eq!(status, 200);
    if c.fake.is_some() {
        assert_eq!(body, format!("hello from {pod_b}\n"));
    }
    let health = forwarder.health();
    assert_eq!(health[0].local, local);
    assert_eq!(health[0].pod.as_deref(), Some(pod_b.as_str()));
    assert_eq!(health[0].error, None);
    assert_eq!(health[0].connections, 2);
    assert_eq!(warnings(&seen), Vec::<String>::new());
    cancel.cancel();
    c.cleanup().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn local_ports_fall_to_the_next_free_one_predictably() {
    let Some(c) = Cluster::start().await else {
        return;
    };
    c.deploy_web("web", "1").await;
    let pod = c.pod_of("web", &[], true).await;
    let _responder = c.serve(&pod).await;
    let wanted = free_port_pair();
    // Someone else holds the requested port; two forwards ask for it.
    let _taken = std::net::TcpListener::bind(("127.0.0.1", wanted)).unwrap();
    let (events, seen) = EventSink::collector();
    let specs = vec![
        c.service("web", Some(wanted)),
        c.service("web", Some(wanted)),
    ];
    let (forwarder, forwards) = Forwarder::start(c.client.clone(), specs, events)
        .await
        .unwrap();
    let ports: Vec<(u16, u16)> = forwards
        .iter()
        .map(|f| (f.requested_port, f.local.port()))
        .collect();
    assert_eq!(ports, [(wanted, wanted + 1), (wanted, wanted + 2)]);
    assert_eq!(
        forwards[0].to_string(),
        format!(
            "forwarding 127.0.0.1:{} → service/web:80 (namespace `{}`); port {wanted} was taken",
            wanted + 1,
            c.ns
        )
    );

    let forwarder = Arc::new(forwarder);
    let cancel = run(&forwarder);
    for f in &forwards {
        let (status, _) = get_new(f.local)
            .await
            .expect("a response through the forward");
        assert_eq!(status, 200);
    }
    assert_eq!(warnings(&seen), Vec::<String>::new());
    cancel.cancel();
    c.cleanup().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_port_nobody_listens_on_is_reported_and_the_listener_survives() {
    let Some(c) = Cluster::start().await else {
        return;
    };
    c.deploy_web("web", "1").await;
    let pod = c.pod_of("web", &[], true).await;
    let (events, seen) = EventSink::collector();
    let spec = ForwardSpec {
        resource_type: ResourceType::Deployment,
        name: "web".into(),
        namespace: c.ns.clone(),
        port: PortRef::Number(9),
        local_port: Some(0),
        address: LOCALHOST,
    };
    let (forwarder, forwards) = Forwarder::start(c.client.clone(), vec![spec], events)
        .await
        .unwrap();
    let local = forwards[0].local;
    assert_ne!(local.port(), 0, "port 0 lets the system choose");
    let forwarder = Arc::new(forwarder);
    let cancel = run(&forwarder);

    // The connection is accepted, then closed without an answer.
    assert_eq!(get_new(local).await, None);
    let w = warnings(&seen);
    assert_eq!(w.len(), 1, "{w:?}");
    let prefix = format!("port-forward `deployment/web:9`: pod `{pod}` port 9: ");
    assert!(w[0].starts_with(&prefix), "{}", w[0]);
    // Only "some text on the error channel" is portable across runtimes; containerd (and the fake) say this.
    if c.fake.is_some() {
        assert!(w[0].contains("connect: connection refused"), "{}", w[0]);
    }
    assert!(forwarder.health()[0].error.is_some());

    // The listener is still there; the same problem again is not reported twice.
    assert_eq!(get_new(local).await, None);
    assert_eq!(warnings(&seen).len(), 1, "{:?}", warnings(&seen));

    // On the fake, something starts listening on the port: the forward recovers.
    if let Some(fake) = &c.fake {
        let responder = Responder::start(&pod).await;
        fake.serve_pod_port(&c.ns, &pod, 9, responder.addr);
        let (status, body) = get_new(local)
            .await
            .expect("a response once the port listens");
        assert_eq!((status, body), (200, format!("hello from {pod}\n")));
        assert_eq!(forwarder.health()[0].error, None);
    }
    cancel.cancel();
    c.cleanup().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_connection_waits_for_a_ready_pod_then_gives_up_with_a_clear_error() {
    let Some(c) = Cluster::start().await else {
        return;
    };
    let (events, seen) = EventSink::collector();
    // Nothing deployed yet: the connection waits (with backoff) for the Service and a ready pod.
    let (forwarder, forwards) =
        Forwarder::start(c.client.clone(), vec![c.service("late", Some(0))], events)
            .await
            .unwrap();
    let forwarder = Arc::new(forwarder.with_pod_wait(Duration::from_secs(600)));
    let cancel = run(&forwarder);
    let local = forwards[0].local;
    let waiting = tokio::spawn(get_new(local));
    tokio::time::sleep(Duration::from_millis(300)).await;
    c.deploy_web("late", "1").await;
    let pod = c.pod_of("late", &[], false).await;
    let _responder = c.serve(&pod).await;
    let (status, body) = waiting
        .await
        .unwrap()
        .expect("the waiting connection is served");
    assert_eq!(status, 200);
    if c.fake.is_some() {
        assert_eq!(body, format!("hello from {pod}\n"));
    }
    cancel.cancel();

    // A rollout slower than the notice delay is reported as "retrying"; on the fake it is quicker than that.
    if c.fake.is_some() {
        assert_eq!(warnings(&seen), Vec::<String>::new());
    }

    // With a short wait and no such pod, the client connection is closed and the reason reported.
    let (events, seen_short) = EventSink::collector();
    let spec = ForwardSpec {
        resource_type: ResourceType::Pod,
        name: "missing".into(),
        namespace: c.ns.clone(),
        port: PortRef::Number(80),
        local_port: Some(0),
        address: LOCALHOST,
    };
    let (short, forwards) = Forwarder::start(c.client.clone(), vec![spec], events)
        .await
        .unwrap();
    let short = Arc::new(short.with_pod_wait(Duration::from_millis(500)));
    let cancel = run(&short);
    assert_eq!(get_new(forwards[0].local).await, None);
    assert_eq!(
        warnings(&seen_short),
        [format!(
            "port-forward `pod/missing:80`: pod `missing` not found in namespace `{}`",
            c.ns
        )]
    );
    cancel.cancel();
    c.cleanup().await;
}

// ---- The fake's wire protocol against the recordings (fake only: a real cluster needs TLS and credentials). ----

/// The recorded request's key and the accept value the apiserver answered for it (08-portforward-ws-ok.txt).
const KEY: &str = "MDEyMzQ1Njc4OWFiY2RlZg==";
const ACCEPT: &str = "BACScCJPNqyz+UBoqMH89VmURoA=";

/// Sends a raw upgrade request; returns the socket and the response head (status line and headers).
async fn upgrade(
    fake: &FakeApiServer,
    path: &str,
    protocols: Option<&str>,
) -> (TcpStream, String, Vec<u8>) {
    let addr = fake.url().trim_start_matches("http://").to_string();
    let mut socket = TcpStream::connect(&addr).await.unwrap();
    let protocol = protocols
        .map(|p| format!("Sec-WebSocket-Protocol: {p}\r\n"))
        .unwrap_or_default();
    let request = format!(
        "GET {path} HTTP/1.1\r\nHost: {addr}\r\nConnection: Upgrade\r\nUpgrade: websocket\r\nSec-WebSocket-Version: 13\r\nSec-WebSocket-Key: {KEY}\r\n{protocol}Authorization: Bearer {TOKEN}\r\n\r\n"
    );
    socket.write_all(request.as_bytes()).await.unwrap();
    let mut buf = Vec::new();
    let mut chunk = [0u8; 4096];
    let end = loop {
        if let Some(end) = find(&buf, b"\r\n\r\n") {
            break end;
        }
        let n = socket.read(&mut chunk).await.unwrap();
        assert!(n > 0, "connection closed before a response head");
        buf.extend_from_slice(&chunk[..n]);
    };
    let head = String::from_utf8_lossy(&buf[..end]).to_string();
    let rest = buf[end + 4..].to_vec();
    (socket, head, rest)
}

/// Reads one unmasked server frame: (first byte, payload); `None` at EOF.
async fn frame(socket: &mut TcpStream, pending: &mut Vec<u8>) -> Option<(u8, Vec<u8>)> {
    let mut chunk = [0u8; 4096];
    loop {
        if pending.len() >= 2 {
            let (len, header) = match pending[1] & 0x7f {
                126 if pending.len() >= 4 => {
                    (usize::from(u16::from_be_bytes([pending[2], pending[3]])), 4)
                }
                126 => (usize::MAX, 0),
                127 => panic!("unexpected 64-bit frame length"),
                n => (usize::from(n), 2),
            };
            if len != usize::MAX && pending.len() >= header + len {
                let first = pending[0];
                let payload = pending[header..header + len].to_vec();
                pending.drain(..header + len);
                return Some((first, payload));
            }
        }
        match tokio::time::timeout(Duration::from_secs(10), socket.read(&mut chunk)).await {
            Ok(Ok(n)) if n > 0 => pending.extend_from_slice(&chunk[..n]),
            _ => return None,
        }
    }
}

/// A masked client binary frame (mask 0, so the payload is sent as is).
fn client_frame(payload: &[u8]) -> Vec<u8> {
    assert!(payload.len() < 126);
    let mut f = vec![0x82, 0x80 | payload.len() as u8, 0, 0, 0, 0];
    f.extend_from_slice(payload);
    f
}

fn header<'a>(head: &'a str, name: &str) -> Option<&'a str> {
    head.lines().skip(1).find_map(|l| {
        let (k, v) = l.split_once(':')?;
        k.eq_ignore_ascii_case(name).then(|| v.trim())
    })
}

async fn fake_with_pod() -> (FakeApiServer, String, String) {
    let fake = FakeApiServer::start();
    let ns = "kapi-demo".to_string();
    fake.put_object(json!({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": ns}}))
        .unwrap();
    fake.put_object(json!({"apiVersion": "v1", "kind": "Pod", "metadata": {"name": "web", "namespace": ns},
        "spec": {"containers": [{"name": "main", "image": "web:1", "ports": [{"containerPort": 8080}]}]}}))
        .unwrap();
    for _ in 0..200 {
        let phase = fake.object("Pod", &ns, "web").and_then(|p| {
            p.pointer("/status/phase")
                .and_then(Value::as_str)
                .map(str::to_string)
        });
        if phase.as_deref() == Some("Running") {
            return (fake, ns, "web".to_string());
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    panic!("pod did not start");
}

#[tokio::test]
async fn fake_portforward_frames_match_the_recording() {
    let (fake, ns, pod) = fake_with_pod().await;
    let responder = Responder::start("web").await;
    fake.serve_pod_port(&ns, &pod, 8080, responder.addr);
    let path = format!("/api/v1/namespaces/{ns}/pods/{pod}/portforward?ports=8080");
    let (mut socket, head, mut pending) =
        upgrade(&fake, &path, Some("v5.channel.k8s.io, v4.channel.k8s.io")).await;
    assert!(
        head.starts_with("HTTP/1.1 101 Switching Protocols"),
        "{head}"
    );
    assert_eq!(header(&head, "sec-websocket-accept"), Some(ACCEPT));
    assert_eq!(
        header(&head, "sec-websocket-protocol"),
        Some("v4.channel.k8s.io")
    );
    assert_eq!(header(&head, "upgrade"), Some("websocket"));
    assert_eq!(header(&head, "connection"), Some("Upgrade"));
    assert_eq!(
        header(&head, "audit-id"),
        None,
        "the 101 comes from the kubelet side"
    );
    // Port 8080 little-endian on channels 0 and 1.
    assert_eq!(
        frame(&mut socket, &mut pending).await,
        Some((0x82, vec![0, 0x90, 0x1f]))
    );
    assert_eq!(
        frame(&mut socket, &mut pending).await,
        Some((0x82, vec![1, 0x90, 0x1f]))
    );
    let mut request = vec![0u8];
    request.extend_from_slice(b"GET / HTTP/1.0\r\n\r\n");
    socket.write_all(&client_frame(&request)).await.unwrap();
    let (first, payload) = frame(&mut socket, &mut pending).await.unwrap();
    assert_eq!(
        (first, payload[0]),
        (0x82, 0),
        "a binary frame on the data channel"
    );
    let text = String::from_utf8_lossy(&payload[1..]).to_string();
    assert!(
        text.starts_with("HTTP/1.1 200 OK\r\n") && text.ends_with("hello from web\n"),
        "{text}"
    );
    // The pod side closed: Close 1000 without a reason, then EOF.
    assert_eq!(
        frame(&mut socket, &mut pending).await,
        Some((0x88, vec![0x03, 0xe8]))
    );
    assert_eq!(frame(&mut socket, &mut pending).await, None);
    let recorded = fake
        .requests()
        .into_iter()
        .find(|r| r.path.ends_with("/portforward"))
        .unwrap();
    assert_eq!(recorded.code, Some(101));
}

#[tokio::test]
async fn fake_portforward_closed_port_and_two_ports_match_the_recording() {
    let (fake, ns, pod) = fake_with_pod().await;
    let uid = fake.object("Pod", &ns, &pod).unwrap()["metadata"]["uid"]
        .as_str()
        .unwrap()
        .to_string();
    let path = format!("/api/v1/namespaces/{ns}/pods/{pod}/portforward?ports=9999");
    let (mut socket, head, mut pending) =
        upgrade(&fake, &path, Some("v5.channel.k8s.io, v4.channel.k8s.io")).await;
    assert!(head.starts_with("HTTP/1.1 101 "), "{head}");
    assert_eq!(
        frame(&mut socket, &mut pending).await,
        Some((0x82, vec![0, 0x0f, 0x27]))
    );
    assert_eq!(
        frame(&mut socket, &mut pending).await,
        Some((0x82, vec![1, 0x0f, 0x27]))
    );
    let (first, payload) = frame(&mut socket, &mut pending).await.unwrap();
    assert_eq!((first, payload[0]), (0x82, 1), "the error channel");
    let text = String::from_utf8_lossy(&payload[1..]).to_string();
    assert!(
        text.starts_with("error forwarding port 9999 to pod "),
        "{text}"
    );
    assert!(
        text.ends_with(", IPv4: dial tcp4 127.0.0.1:9999: connect: connection refused IPv6 dial tcp6: address localhost: no suitable address found "),
        "{text}"
    );
    assert!(
        !text.contains(&uid),
        "containerd names the sandbox, not the pod: {text}"
    );
    assert_eq!(
        frame(&mut socket, &mut pending).await,
        Some((0x88, vec![0x03, 0xe8]))
    );
    assert_eq!(frame(&mut socket, &mut pending).await, None);

    // Repeated `ports`: channels 0/1 for 8080 (attached), 2/3 for 9999; only channel 3 errs, the rest stays up.
    let responder = Responder::start("web").await;
    fake.serve_pod_port(&ns, &pod, 8080, responder.addr);
    let path = format!("/api/v1/namespaces/{ns}/pods/{pod}/portforward?ports=8080&ports=9999");
    let (mut socket, head, mut pending) = upgrade(&fake, &path, Some("v4.channel.k8s.io")).await;
    assert_eq!(
        header(&head, "sec-websocket-protocol"),
        Some("v4.channel.k8s.io")
    );
    for expected in [
        [0, 0x90, 0x1f],
        [1, 0x90, 0x1f],
        [2, 0x0f, 0x27],
        [3, 0x0f, 0x27],
    ] {
        assert_eq!(
            frame(&mut socket, &mut pending).await,
            Some((0x82, expected.to_vec()))
        );
    }
    let (_, payload) = frame(&mut socket, &mut pending).await.unwrap();
    assert_eq!(payload[0], 3);
    let mut request = vec![0u8];
    request.extend_from_slice(b"GET / HTTP/1.1\r\nHost: x\r\n\r\n");
    socket.write_all(&client_frame(&request)).await.unwrap();
    let (_, payload) = frame(&mut socket, &mut pending).await.unwrap();
    assert_eq!(payload[0], 0);
    assert!(String::from_utf8_lossy(&payload).ends_with("hello from web\n"));
}

#[tokio::test]
async fn fake_portforward_subprotocols_and_errors_match_the_recording() {
    let (fake, ns, pod) = fake_with_pod().await;
    let path = format!("/api/v1/namespaces/{ns}/pods/{pod}/portforward?ports=8080");
    let (_s, head, _) = upgrade(&fake, &path, Some("v4.channel.k8s.io")).await;
    assert_eq!(
        header(&head, "sec-websocket-protocol"),
        Some("v4.channel.k8s.io")
    );
    let (mut s, head, mut pending) = upgrade(&fake, &path, None).await;
    assert!(head.starts_with("HTTP/1.1 101 "), "{head}");
    assert_eq!(
        header(&head, "sec-websocket-protocol"),
        Some(""),
        "an empty header when none was offered"
    );
    // Binary framing, as with v4 (the kubelet's "" protocol is binary).
    assert_eq!(
        frame(&mut s, &mut pending).await,
        Some((0x82, vec![0, 0x90, 0x1f]))
    );
    // Not recorded, from the kubelet's source: the base64 variant sends text frames `'0'+channel` + base64.
    let (mut s, head, mut pending) = upgrade(&fake, &path, Some("v4.base64.channel.k8s.io")).await;
    assert_eq!(
        header(&head, "sec-websocket-protocol"),
        Some("v4.base64.channel.k8s.io")
    );
    assert_eq!(
        frame(&mut s, &mut pending).await,
        Some((0x81, b"0kB8=".to_vec()))
    );
    assert_eq!(
        frame(&mut s, &mut pending).await,
        Some((0x81, b"1kB8=".to_vec()))
    );
    for refused in ["portforward.k8s.io", "v5.channel.k8s.io"] {
        let (mut s, head, rest) = upgrade(&fake, &path, Some(refused)).await;
        assert!(head.starts_with("HTTP/1.1 403 "), "{refused}: {head}");
        assert_eq!(header(&head, "connection"), Some("close"));
        assert_eq!(header(&head, "content-length"), Some("0"));
        let mut more = Vec::new();
        s.read_to_end(&mut more).await.unwrap();
        assert!(
            rest.is_empty() && more.is_empty(),
            "empty body, then the connection closes"
        );
    }

    // Through kube-rs: the missing pod is the apiserver's 404 Status, the rest the kubelet's plain text.
    let client = fake.client().await;
    let pods: Api<Pod> = Api::namespaced(client, &ns);
    let status = |r: Result<kube::api::Portforwarder, kube::Error>| match r {
        Err(kube::Error::Api(s)) => (s.code, s.message.clone(), s.reason.clone()),
        other => panic!(
            "expected an API error, got {:?}",
            other.map(|_| "a port-forward")
        ),
    };
    assert_eq!(
        status(pods.portforward("nope", &[8080]).await),
        (
            404,
            "pods \"nope\" not found".to_string(),
            "NotFound".to_string()
        )
    );
    let (_s, head, rest) = upgrade(
        &fake,
        &format!("/api/v1/namespaces/{ns}/pods/{pod}/portforward"),
        None,
    )
    .await;
    assert!(head.starts_with("HTTP/1.1 400 "), "{head}");
    assert_eq!(
        header(&head, "content-type"),
        Some("text/plain; charset=utf-8")
    );
    assert_eq!(
        String::from_utf8_lossy(&rest),
        "query parameter \"port\" is required"
    );

    fake.set_pod_state(&ns, &pod, PodState::Completed);
    let (_s, head, rest) = upgrade(&fake, &path, Some("v4.channel.k8s.io")).await;
    assert!(head.starts_with("HTTP/1.1 500 "), "{head}");
    assert_eq!(
        header(&head, "content-type"),
        Some("text/plain; charset=utf-8")
    );
    assert_eq!(
        String::from_utf8_lossy(&rest),
        format!("pod not found (\"{pod}_{ns}\")")
    );

    let (_s, head, rest) = upgrade(
        &fake,
        &format!("/api/v1/namespaces/{ns}/pods/nope/portforward?ports=8080"),
        None,
    )
    .await;
    assert!(head.starts_with("HTTP/1.1 404 "), "{head}");
    assert_eq!(header(&head, "content-type"), Some("application/json"));
    let body: Value = serde_json::from_slice(&rest).unwrap();
    assert_eq!(
        body,
        json!({"kind":"Status","apiVersion":"v1","metadata":{},"status":"Failure","message":"pods \"nope\" not found","reason":"NotFound","details":{"name":"nope","kind":"pods"},"code":404})
    );
}

#[tokio::test]
async fn fake_portforward_to_a_pod_without_a_node_is_a_bad_request() {
    let fake = FakeApiServer::start();
    fake.set_image_pod_state("unschedulable", PodState::Unschedulable);
    fake.put_object(json!({"apiVersion": "v1", "kind": "Pod", "metadata": {"name": "stuck", "namespace": "default"},
        "spec": {"containers": [{"name": "main", "image": "unschedulable:1"}]}}))
        .unwrap();
    let pods: Api<Pod> = Api::namespaced(fake.client().await, "default");
    match pods.portforward("stuck", &[8080]).await {
        Err(kube::Error::Api(s)) => {
            assert_eq!((s.code, s.reason.as_str()), (400, "BadRequest"));
            assert_eq!(s.message, "pod stuck does not have a host assigned");
        }
        other => panic!("expected 400, got ok={}", other.is_ok()),
    }
}
