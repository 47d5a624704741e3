//! Fake Kubernetes API server for the fake-cluster test tier: test controls → an HTTP/1.1 server on 127.0.0.1:0
//! that answers the real kube-rs client like kube-apiserver 1.32 (discovery, server-side apply, get/list/watch,
//! delete, status, logs, port-forward, exec; recorded in shared/kube-api/) with tiny controllers, and containers
//! whose filesystems are directories exec really runs programs in; must never be shaped to make a client pass.
// Each integration-test binary uses a different subset of this support module.
#![allow(dead_code)]

mod apply;
mod controllers;
mod exec;
mod fieldset;
mod pods;
mod portforward;
mod resources;
mod rootfs;
mod selector;
mod server;
mod state;
mod status;
mod util;
mod volumes;
mod websocket;

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use hyper::server::conn::http1;
use hyper::service::service_fn;
use hyper_util::rt::TokioIo;
use serde_json::Value;
use tokio::sync::{Notify, watch};
use tokio::task::JoinHandle;

pub use pods::PodState;
#[allow(unused_imports)]
pub use rootfs::busybox_image;
pub use state::{RequestRecord, Timing};
pub use status::ApiError;

use pods::LogLine;
use server::Shared;
use state::{Denial, State};

/// The bearer token the written kubeconfig carries; other tokens get 401.
pub const TOKEN: &str = "fake-apiserver-token";
/// The user that token authenticates as (appears in RBAC 403 messages).
pub const USER: &str = "kubernetes-admin";

/// A running fake API server; stops when dropped.
pub struct FakeApiServer {
    addr: SocketAddr,
    shared: Arc<Shared>,
    shutdown: watch::Sender<bool>,
    /// Whether the server accepts connections (see [`FakeApiServer::set_unreachable`]).
    reachable: watch::Sender<bool>,
    tasks: Vec<JoinHandle<()>>,
}

impl FakeApiServer {
    /// Binds 127.0.0.1:0 and serves on the current tokio runtime (call from within a runtime).
    pub fn start() -> Self {
        let std_listener = std::net::TcpListener::bind("127.0.0.1:0").expect("bind 127.0.0.1:0");
        std_listener
            .set_nonblocking(true)
            .expect("non-blocking listener");
        let addr = std_listener.local_addr().expect("listener address");
        let listener = tokio::net::TcpListener::from_std(std_listener)
            .expect("tokio listener (inside a runtime)");
        let shared = Arc::new(Shared {
            state: Mutex::new(State::new()),
            changed: Notify::new(),
            token: TOKEN.to_string(),
            user: USER.to_string(),
            server_address: addr.to_string(),
            pod_ports: Default::default(),
            image_ports: Default::default(),
        });
        let (shutdown, shutdown_rx) = watch::channel(false);
        let (reachable, reachable_rx) = watch::channel(true);
        let accept = tokio::spawn(accept_loop(
            listener,
            Arc::clone(&shared),
            shutdown_rx,
            reachable_rx,
        ));

        let tick_shared = Arc::clone(&shared);
        let ticker = tokio::spawn(async move {
            let mut interval = tokio::time::interval(Duration::from_millis(20));
            // A slow tick must not be followed by a burst of catch-up ticks that starve a current-thread runtime.
            interval.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
            loop {
                interval.tick().await;
                tokio::task::yield_now().await;
                let before = {
                    let mut st = tick_shared.lock();
                    let before = st.rv;
                    controllers::tick(&mut st);
                    before != st.rv
                };
                if before {
                    tick_shared.changed.notify_waiters();
                }
            }
        });
        FakeApiServer {
            addr,
            shared,
            shutdown,
            reachable,
            tasks: vec![accept, ticker],
        }
    }

    /// Makes the server unreachable like a stopped kube-apiserver (`true`): the listening socket is closed, so new
    /// connections are refused, and every open connection — requests, watches, log streams, port-forward tunnels —
    /// is dropped; the stored state lives on, as etcd's does. `false` listens again on the same address.
    pub fn set_unreachable(&self, unreachable: bool) {
        let _ = self.reachable.send(!unreachable);
    }

    /// `http://127.0.0.1:PORT`.
    pub fn url(&self) -> String {
        format!("http://{}", self.addr)
    }

    /// Writes `dir/kubeconfig` (cluster, bearer-token user and current-context `fake`); like most real clusters'
    /// admin kubeconfigs, the context names no namespace.
    pub fn kubeconfig(&self, dir: &Path) -> PathBuf {
        let path = dir.join("kubeconfig");
        let text = format!(
            "apiVersion: v1\nkind: Config\nclusters:\n- name: fake\n  cluster:\n    server: {url}\nusers:\n- name: fake\n  user:\n    token: {TOKEN}\ncontexts:\n- name: fake\n  context:\n    cluster: fake\n    user: fake\ncurrent-context: fake\n",
            url = self.url()
        );
        std::fs::write(&path, text).expect("write kubeconfig");
        path
    }

    /// A kube client configured like the kubeconfig (bearer token, no TLS).
    pub async fn client(&self) -> kube::Client {
        let dir = tempfile::tempdir().expect("temp dir");
        let path = self.kubeconfig(dir.path());
        let kubeconfig = kube::config::Kubeconfig::read_from(&path).expect("read kubeconfig");
        let config = kube::Config::from_custom_kubeconfig(
            kubeconfig,
            &kube::config::KubeConfigOptions::default(),
        )
        .await
        .expect("config from kubeconfig");
        kube::Client::try_from(config).expect("kube client")
    }

    fn with_state<T>(&self, f: impl FnOnce(&mut State) -> T) -> T {
        let out = {
            let mut st = self.shared.lock();
            let out = f(&mut st);
            controllers::reconcile_all(&mut st);
            out
        };
        // Log followers wait on the same notification as watches, so wake them even when no object changed.
        self.shared.changed.notify_waiters();
        out
    }

    /// The stored object of `kind` (Kind or plural, e.g. `Deployment`/`deployments`); `namespace` is ignored for
    /// cluster-scoped kinds.
    pub fn object(&self, kind: &str, namespace: &str, name: &str) -> Option<Value> {
        self.reader().object(kind, namespace, name)
    }

    /// All stored objects of `kind`, in namespace/name order.
    pub fn objects(&self, kind: &str) -> Vec<Value> {
        self.reader().objects(kind)
    }

    /// A read-only view of the stored objects that a task of its own can hold (a traffic sampler); it reads the
    /// state of this server while the server runs.
    pub fn reader(&self) -> ObjectReader {
        ObjectReader {
            shared: Arc::clone(&self.shared),
        }
    }

    /// Every request received so far, in arrival order.
    pub fn requests(&self) -> Vec<RequestRecord> {
        self.shared.lock().requests.clone()
    }

    /// Forgets the request log (e.g. between two deploys of a test).
    pub fn clear_requests(&self) {
        self.shared.lock().requests.clear();
    }

    /// The current global resourceVersion.
    pub fn resource_version(&self) -> u64 {
        self.shared.lock().rv
    }

    /// Puts every app container of a pod into `state`; returns false when the pod does not exist.
    pub fn set_pod_state(&self, namespace: &str, name: &str, state: PodState) -> bool {
        self.set_state_inner(namespace, name, None, state)
    }

    /// Puts one container (app or init) of a pod into `state`; returns false when the pod does not exist.
    pub fn set_container_state(
        &self,
        namespace: &str,
        pod: &str,
        container: &str,
        state: PodState,
    ) -> bool {
        self.set_state_inner(namespace, pod, Some(container), state)
    }

    fn set_state_inner(
        &self,
        namespace: &str,
        name: &str,
        container: Option<&str>,
        state: PodState,
    ) -> bool {
        self.with_state(|st| {
            let Some(uid) = pod_uid(st, namespace, name) else {
                return false;
            };
            let now = util::now_nanos();
            match st.pods.get_mut(&uid) {
                Some(sim) => {
                    sim.pending_target = None;
                    sim.set_state(container, &state, now);
                    true
                }
                None => false,
            }
        })
    }

    /// The state new pods reach after the start delay (default `Running`).
    pub fn set_default_pod_state(&self, state: PodState) {
        self.with_state(|st| st.behaviour.default = state);
    }

    /// New pods whose container image contains `image_substring` reach `state` instead of the default.
    pub fn set_image_pod_state(&self, image_substring: &str, state: PodState) {
        self.with_state(|st| {
            st.behaviour
                .by_image
                .push((image_substring.to_string(), state))
        });
    }

    /// Replaces the simulated timings.
    pub fn set_timing(&self, timing: Timing) {
        self.with_state(|st| st.timing = timing);
    }

    /// Appends a line (without newline) to a container's log; followers receive it as one chunk. Returns false
    /// when the pod or container does not exist.
    pub fn append_log(&self, namespace: &str, pod: &str, container: &str, line: &str) -> bool {
        self.with_state(|st| {
            let Some(uid) = pod_uid(st, namespace, pod) else {
                return false;
            };
            let Some(c) = st
                .pods
                .get_mut(&uid)
                .and_then(|s| s.containers.iter_mut().find(|c| c.name == container))
            else {
                return false;
            };
            c.logs.push(LogLine {
                nanos: util::now_nanos(),
                text: line.to_string(),
            });
            true
        })
    }

    /// Denies `verb` (`get`, `list`, `watch`, `create`, `patch`, `update`, `delete`, `*`) on `resource` (`pods`,
    /// `deployments`, `pods/log`, `*`) in `namespace` (`None`: everywhere) with the RBAC 403 answer.
    pub fn deny(&self, verb: &str, resource: &str, namespace: Option<&str>) {
        self.with_state(|st| {
            st.denials.push(Denial {
                verb: verb.to_string(),
                resource: resource.to_string(),
                namespace: namespace.map(str::to_string),
            });
        });
    }

    /// Stops serving `kind` in `group_version` (e.g. `("batch/v1", "CronJob")`), as on an older cluster.
    pub fn hide_kind(&self, group_version: &str, kind: &str) {
        self.with_state(|st| {
            st.served
                .hidden_kinds
                .push((group_version.to_string(), kind.to_string()))
        });
    }

    /// Stops serving a whole group/version (e.g. `networking.k8s.io/v1`).
    pub fn hide_group_version(&self, group_version: &str) {
        self.with_state(|st| {
            st.served
                .hidden_group_versions
                .push(group_version.to_string())
        });
    }

    /// Puts a namespace into Terminating and keeps it there (a stuck finalizer): its content stays, creates and
    /// applies of new objects in it get the recorded 403. Returns false when the namespace does not exist.
    pub fn set_namespace_terminating(&self, name: &str) -> bool {
        self.with_state(|st| {
            let Some(r) = resources::find_kind("Namespace") else {
                return false;
            };
            if st.get(r, "", name).is_none() {
                return false;
            }
            st.stuck_namespaces.insert(name.to_string());
            controllers::delete(st, r, "", name, None, None).is_ok()
        })
    }

    /// Lets a namespace held by [`Self::set_namespace_terminating`] finish its deletion.
    pub fn release_namespace(&self, name: &str) {
        self.with_state(|st| {
            st.stuck_namespaces.remove(name);
        });
    }

    /// Drops the watch history: watches from any resourceVersion older than now get `410 Expired`.
    pub fn compact(&self) {
        self.with_state(|st| {
            st.events.clear();
            st.oldest_rv = st.rv;
        });
    }

    /// Attaches a TCP server to `port` of pod `pod`: port-forwards to that pod port reach `upstream` while the pod
    /// runs (no container process of the fake listens: a test can serve a [`Self::container_root`] there).
    /// Unattached ports answer with the kubelet's "connection refused" text.
    pub fn serve_pod_port(&self, namespace: &str, pod: &str, port: u16, upstream: SocketAddr) {
        self.shared
            .pod_ports
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .insert((namespace.to_string(), pod.to_string(), port), upstream);
    }

    /// Attaches a TCP server to `port` of every pod with a running app container whose image contains
    /// `image_part` (pods a test cannot name in advance, e.g. a Deployment's), as [`Self::serve_pod_port`] does
    /// for one pod; a port attached to the pod itself wins.
    pub fn serve_image_port(&self, image_part: &str, port: u16, upstream: SocketAddr) {
        self.shared
            .image_ports
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .push((image_part.to_string(), port, upstream));
    }

    /// Registers what images whose reference contains `image_part` hold: the directory tree `template`. Each start
    /// of such a container gets its own copy (a replaced pod or a restarted container starts from the image
    /// again); containers of other images get an empty root, where every command fails as on a distroless image.
    pub fn set_image_root(&self, image_part: &str, template: &Path) {
        self.with_state(|st| st.rootfs.add_template(image_part, template));
    }

    /// The host directory that is `/` of the current start of `container` in pod `pod` (`None` before it started
    /// or once the pod is gone).
    pub fn container_root(&self, namespace: &str, pod: &str, container: &str) -> Option<PathBuf> {
        let st = self.shared.lock();
        let uid = pod_uid(&st, namespace, pod)?;
        st.rootfs.root(&uid, container)
    }

    /// The content and permission bits (e.g. `0o644`) of the regular file at `path` as the container sees it
    /// (symlinks followed inside its root); `None` when there is no such file.
    pub fn container_file(
        &self,
        namespace: &str,
        pod: &str,
        container: &str,
        path: &str,
    ) -> Option<(Vec<u8>, u32)> {
        use std::os::unix::fs::PermissionsExt;
        let root = self.container_root(namespace, pod, container)?;
        let host = rootfs::resolve(&root, path).ok()?;
        let meta = std::fs::metadata(&host).ok().filter(|m| m.is_file())?;
        let bytes = std::fs::read(&host).ok()?;
        Some((bytes, meta.permissions().mode() & 0o7777))
    }

    /// Creates or replaces an object directly (as manager `test-setup`, operation Update), bypassing RBAC.
    pub fn put_object(&self, object: Value) -> Result<Value, ApiError> {
        self.with_state(|st| {
            let api_version = object["apiVersion"].as_str().unwrap_or_default();
            let kind = object["kind"].as_str().unwrap_or_default();
            let r =
                resources::find_gvk(api_version, kind).ok_or_else(ApiError::resource_not_found)?;
            let ns = object
                .pointer("/metadata/namespace")
                .and_then(Value::as_str)
                .unwrap_or_default()
                .to_string();
            let name = object
                .pointer("/metadata/name")
                .and_then(Value::as_str)
                .unwrap_or_default()
                .to_string();
            let body = object.to_string();
            let query = vec![("fieldManager".to_string(), "test-setup".to_string())];
            if st.get(r, &ns, &name).is_some() {
                apply::put(st, r, &ns, &name, body.as_bytes(), &query, false).map(|(_, v)| v)
            } else {
                apply::create(st, r, &ns, body.as_bytes(), &query).map(|(_, v)| v)
            }
        })
    }
}

/// Reads the stored objects of a [`FakeApiServer`] (see [`FakeApiServer::reader`]); never writes.
#[derive(Clone)]
pub struct ObjectReader {
    shared: Arc<Shared>,
}

impl ObjectReader {
    /// [`FakeApiServer::object`].
    pub fn object(&self, kind: &str, namespace: &str, name: &str) -> Option<Value> {
        let r = resources::find_kind(kind)?;
        self.shared.lock().get(r, namespace, name).cloned()
    }

    /// [`FakeApiServer::objects`].
    pub fn objects(&self, kind: &str) -> Vec<Value> {
        self.snapshot(&[kind]).pop().unwrap_or_default()
    }

    /// All stored objects of each of `kinds`, read at one instant (under one lock): no write falls between them.
    pub fn snapshot(&self, kinds: &[&str]) -> Vec<Vec<Value>> {
        let st = self.shared.lock();
        kinds
            .iter()
            .map(|kind| match resources::find_kind(kind) {
                Some(r) => st
                    .list(r, None)
                    .into_iter()
                    .map(|(_, v)| v.clone())
                    .collect(),
                None => Vec::new(),
            })
            .collect()
    }
}

fn pod_uid(st: &State, namespace: &str, name: &str) -> Option<String> {
    let r = resources::find_kind("Pod")?;
    st.get(r, namespace, name)
        .and_then(|p| p.pointer("/metadata/uid"))
        .and_then(Value::as_str)
        .map(str::to_string)
}

/// Serves connections while reachable. Each reachable period has its own stop channel (what watches, log
/// followers and port-forward sessions wait on): going unreachable aborts the connections, ends their streams and
/// closes the socket; coming back binds the same address again.
async fn accept_loop(
    listener: tokio::net::TcpListener,
    shared: Arc<Shared>,
    mut shutdown: watch::Receiver<bool>,
    mut reachable: watch::Receiver<bool>,
) {
    let Ok(addr) = listener.local_addr() else {
        return;
    };
    let mut listener = Some(listener);
    let mut connections = tokio::task::JoinSet::new();
    let (mut period, mut period_rx) = watch::channel(false);
    loop {
        let accepted = match &listener {
            Some(l) => tokio::select! {
                a = l.accept() => Some(a),
                _ = reachable.changed() => None,
                _ = shutdown.changed() => {
                    let _ = period.send(true);
                    return;
                }
            },
            None => tokio::select! {
                _ = reachable.changed() => None,
                _ = shutdown.changed() => return,
            },
        };
        let Some(accepted) = accepted else {
            let up = *reachable.borrow_and_update();
            if up && listener.is_none() {
                // The port was ours a moment ago; binding again can only race with another process grabbing it.
                listener = Some(
                    tokio::net::TcpListener::bind(addr)
                        .await
                        .expect("bind the fake API server's address again"),
                );
            } else if !up && listener.is_some() {
                listener = None;
                connections.abort_all();
                let _ = period.send(true);
                (period, period_rx) = watch::channel(false);
            }
            continue;
        };
        let Ok((stream, _)) = accepted else {
            continue;
        };
        let shared = Arc::clone(&shared);
        let stop = period_rx.clone();
        connections.spawn(async move {
            let service =
                service_fn(move |req| server::handle(Arc::clone(&shared), req, stop.clone()));
            // Errors here are client disconnects mid-stream; nothing to report.
            let _ = http1::Builder::new()
                .serve_connection(TokioIo::new(stream), service)
                .with_upgrades()
                .await;
        });
        while connections.try_join_next().is_some() {}
    }
}

impl Drop for FakeApiServer {
    fn drop(&mut self) {
        let _ = self.shutdown.send(true);
        self.shared.lock().rootfs.clear();
        for t in &self.tasks {
            t.abort();
        }
    }
}
