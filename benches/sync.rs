//! Benchmark of `devloop dev`'s Kubernetes file sync against its own rebuild path and against the script a user
//! would write instead: generated projects, the release binary, a loopback registry and the in-process fake API
//! server (or a real cluster) → save→served of interleaved edits on the three sides in one run (the clock stops
//! when `GET /index.html` returns the new page), medians, p90s and the ratios, where devloop's sync time goes, and
//! PASS/FAIL against issue 12's target. It never asserts timings, never tunes what it measures, and removes the
//! images, processes, namespaces and files it created.
//!
//! - devloop sync: `devloop dev -o json --port-forward` on a project whose `sync.manual` rule takes `www/`, with a
//!   `portForward` to the Deployment; each edit writes `www/index.html`, and the clock stops when a GET through
//!   devloop's forward returns it.
//! - devloop rebuild: the same project without the rule; each edit builds, pushes, rolls out, and the forward
//!   re-targets to the new pod.
//! - script: `kubectl cp www/index.html NS/POD:/www/.index.html.tmp -c web`, then `kubectl exec POD -c web -- sh
//!   -c 'mv /www/.index.html.tmp /www/index.html'` (a temporary name and a rename, as devloop writes), the clock
//!   stopping when a GET to that pod's port 8080 returns the page. Against the fake the GET goes straight to the
//!   pod's server: kubectl 1.32 tunnels SPDY over its port-forward WebSocket, which the fake does not speak (see
//!   `tests/support/fake_apiserver/portforward.rs`), so `kubectl port-forward` cannot be used there. On a real
//!   cluster it goes through a `kubectl port-forward` started once, as devloop's GETs go through devloop's forward.
//!
//! The fake runs no container process: each pod's port 8080 is served by a host `busybox httpd` on that pod's
//! container root (`FakeApiServer::container_root`), started by a thread that watches the fake's pods, so a
//! rebuild's new pod is served too. The fake's image of the rebuild side is its project directory as it is when the
//! container starts (the edit is written before the build, so that is what the build put in the image).
//!
//! Run: `cargo bench --bench sync` (`-- --quick` or `DEVLOOP_BENCH_QUICK=1`: 5 sync and script edits and 3
//! rebuilds instead of 20 and 10; `DEVLOOP_BENCH_EDITS=N` sets the sync and script edits, a rebuild every other
//! round). Needs a Docker daemon, `/bin/busybox` (busybox-static), `kubectl`, `openssl` and Debian's
//! `docker-registry`. `DEVLOOP_TEST_KUBECONFIG=FILE` runs against that cluster instead of the fake, each side in a
//! namespace of its own; its nodes must be able to pull from `DEVLOOP_BENCH_REGISTRY=HOST:PORT` (default: a
//! registry the bench starts on 127.0.0.1). `DEVLOOP_BENCH_DEBOUNCE=MS` passes `--debounce`;
//! `CARGO_BIN_EXE_devloop` names the binary to time.

// A benchmark's report is its output.
#![allow(clippy::print_stdout, clippy::print_stderr)]

#[path = "../tests/support"]
// Cargo builds a `harness = false` bench with `--cfg test` but without the test harness: the fake's unit-test
// modules are compiled while their `#[test]` functions are dropped, so their imports look unused.
#[cfg_attr(test, allow(unused_imports))]
mod support {
    //! The fake API server, its TLS front and the loopback registry of the test support.
    pub mod fake_apiserver;
    pub mod registry;
    pub mod tls_front;
}

use std::collections::HashMap;
use std::fmt::Write as _;
use std::fs;
use std::io::{BufRead as _, BufReader, Read as _, Write as _};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitCode, Stdio};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::mpsc::{self, Receiver, RecvTimeoutError};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use anyhow::{Context as _, Result, bail, ensure};
use serde_json::Value;
use support::fake_apiserver::FakeApiServer;
use support::registry::Registry;

/// Issue 12's target for devloop's median save→served: on a real cluster, and for the devloop part against the
/// fake.
const TARGET_REAL_MS: f64 = 300.0;
const TARGET_FAKE_MS: f64 = 150.0;
/// A developer does not save within milliseconds of the previous page; a rebuild's old pod is still terminating.
const EDIT_GAP: Duration = Duration::from_secs(1);
const EDIT_TIMEOUT: Duration = Duration::from_secs(180);
const FIRST_ITERATION_TIMEOUT: Duration = Duration::from_secs(600);
/// Between two GETs that did not return the page yet.
const POLL_GAP: Duration = Duration::from_millis(2);
/// How often the fake's pods are looked at for new ones to serve.
const POD_SCAN_GAP: Duration = Duration::from_millis(5);
const ROLLOUT_TIMEOUT: &str = "--timeout=180s";
/// The busybox applets linked in the image: a shell, tar and what devloop's sync and `kubectl cp` run.
const APPLETS: &[&str] = &[
    "sh", "tar", "mkdir", "mv", "rm", "head", "chmod", "cat", "httpd",
];
const DOCKERFILE: &str = "FROM scratch\nCOPY bin/ /bin/\nCOPY www /www\n";

struct Settings {
    edits: usize,
    rebuilds: usize,
    debounce: Option<u64>,
    kubeconfig: Option<PathBuf>,
    registry: Option<String>,
}

impl Settings {
    fn from_env() -> Result<Self> {
        // `cargo bench` passes `--bench`; other arguments (filters) are ignored.
        let quick = std::env::args().any(|a| a == "--quick")
            || std::env::var("DEVLOOP_BENCH_QUICK").is_ok_and(|v| !v.is_empty() && v != "0");
        let var = |name: &str| std::env::var(name).ok().filter(|v| !v.is_empty());
        let number = |name: &str| -> Result<Option<u64>> {
            var(name)
                .map(|v| {
                    v.parse()
                        .with_context(|| format!("{name}: `{v}` is not a number"))
                })
                .transpose()
        };
        let edits =
            number("DEVLOOP_BENCH_EDITS")?.map_or(if quick { 5 } else { 20 }, |n| n as usize);
        Ok(Settings {
            edits,
            rebuilds: if quick { 3 } else { edits.div_ceil(2) },
            debounce: number("DEVLOOP_BENCH_DEBOUNCE")?,
            kubeconfig: var("DEVLOOP_TEST_KUBECONFIG").map(PathBuf::from),
            registry: var("DEVLOOP_BENCH_REGISTRY"),
        })
    }
}

fn main() -> ExitCode {
    match run() {
        Ok(()) => ExitCode::SUCCESS,
        Err(error) => {
            eprintln!("benchmark failed: {error:#}");
            ExitCode::FAILURE
        }
    }
}

/// What the run created outside its temp dir: images (removed on drop) and namespaces of a real cluster.
struct Leftovers {
    images: Mutex<Vec<String>>,
    namespaces: Vec<String>,
    kubeconfig: PathBuf,
    real: bool,
}

impl Leftovers {
    fn record(&self, events: &[(Instant, Value)]) {
        let Ok(mut v) = self.images.lock() else {
            return;
        };
        for (_, e) in events {
            let reference = match e["type"].as_str() {
                Some("buildFinished") => e["data"]["tag"].as_str(),
                // `repo:tag@sha256:…`: the local image is known by `repo:tag`.
                Some("pushed") => e["data"]["reference"]
                    .as_str()
                    .and_then(|r| r.split('@').next()),
                _ => None,
            };
            if let Some(r) = reference.filter(|r| !r.is_empty()) {
                v.push(r.to_string());
            }
        }
    }
}

impl Drop for Leftovers {
    fn drop(&mut self) {
        let mut list = self.images.lock().map(|v| v.clone()).unwrap_or_default();
        list.reverse();
        let mut seen = std::collections::HashSet::new();
        list.retain(|r| seen.insert(r.clone()));
        if !list.is_empty()
            && let Ok(out) = Command::new("docker")
                .args(["rmi", "-f"])
                .args(&list)
                .output()
        {
            let err = String::from_utf8_lossy(&out.stderr);
            let real: Vec<&str> = err
                .lines()
                .filter(|l| !l.contains("No such image"))
                .collect();
            if !real.is_empty() {
                eprintln!("removing the benchmark's images: {}", real.join("; "));
            }
        }
        if self.real {
            for ns in &self.namespaces {
                let _ = Command::new("kubectl")
                    .arg("--kubeconfig")
                    .arg(&self.kubeconfig)
                    .args(["delete", "namespace", ns, "--wait=false"])
                    .output();
            }
        }
    }
}

/// A host `busybox httpd` per fake pod, on that pod's container root: what the pod's port 8080 serves. A thread
/// watches the fake's pods; a pod that appears is served as soon as its container has a root, one that goes away
/// loses its server.
struct PodServers {
    stop: Arc<AtomicBool>,
    /// `(namespace, pod)` → the server's address.
    served: Arc<Mutex<HashMap<(String, String), SocketAddr>>>,
    thread: Option<std::thread::JoinHandle<()>>,
}

impl PodServers {
    fn start(fake: Arc<FakeApiServer>, namespaces: Vec<String>) -> PodServers {
        let stop = Arc::new(AtomicBool::new(false));
        let served = Arc::new(Mutex::new(HashMap::new()));
        let (stop2, served2) = (stop.clone(), served.clone());
        let thread = std::thread::spawn(move || {
            let mut children: HashMap<(String, String), Child> = HashMap::new();
            while !stop2.load(Ordering::Relaxed) {
                let pods: Vec<(String, String)> = fake
                    .objects("Pod")
                    .iter()
                    .filter_map(|p| {
                        let ns = p.pointer("/metadata/namespace")?.as_str()?;
                        let name = p.pointer("/metadata/name")?.as_str()?;
                        namespaces
                            .iter()
                            .any(|n| n == ns)
                            .then(|| (ns.to_string(), name.to_string()))
                    })
                    .collect();
                children.retain(|key, child| {
                    let keep = pods.contains(key);
                    if !keep {
                        let _ = child.kill();
                        let _ = child.wait();
                        if let Ok(mut s) = served2.lock() {
                            s.remove(key);
                        }
                    }
                    keep
                });
                for key in pods {
                    if children.contains_key(&key) {
                        continue;
                    }
                    let Some(root) = fake.container_root(&key.0, &key.1, "web") else {
                        continue;
                    };
                    match serve_dir(&root.join("www")) {
                        Ok((child, addr)) => {
                            fake.serve_pod_port(&key.0, &key.1, 8080, addr);
                            if let Ok(mut s) = served2.lock() {
                                s.insert(key.clone(), addr);
                            }
                            children.insert(key, child);
                        }
                        Err(e) => eprintln!("serving pod {}/{}: {e:#}", key.0, key.1),
                    }
                }
                std::thread::sleep(POD_SCAN_GAP);
            }
            for (_, mut child) in children {
                let _ = child.kill();
                let _ = child.wait();
            }
        });
        PodServers {
            stop,
            served,
            thread: Some(thread),
        }
    }

    fn addr(&self, ns: &str, pod: &str) -> Option<SocketAddr> {
        self.served
            .lock()
            .ok()?
            .get(&(ns.to_string(), pod.to_string()))
            .copied()
    }
}

impl Drop for PodServers {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

/// `busybox httpd -f` serving `dir` on a free loopback port, once it accepts connections.
fn serve_dir(dir: &Path) -> Result<(Child, SocketAddr)> {
    let addr = TcpListener::bind("127.0.0.1:0")?.local_addr()?;
    let mut child = Command::new("/bin/busybox")
        .args(["httpd", "-f", "-p", &addr.to_string(), "-h"])
        .arg(dir)
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .context("start busybox httpd")?;
    let deadline = Instant::now() + Duration::from_secs(5);
    while TcpStream::connect(addr).is_err() {
        if Instant::now() > deadline || matches!(child.try_wait(), Ok(Some(_))) {
            let _ = child.kill();
            let _ = child.wait();
            bail!("busybox httpd on {addr} did not start");
        }
        std::thread::sleep(Duration::from_millis(1));
    }
    Ok((child, addr))
}

/// `GET /index.html` over HTTP/1.0: the body of a 200 answer, complete once `Content-Length` bytes came (as a
/// browser or curl takes it; the server's close may reach the client later through a forward).
fn get(addr: &str) -> Option<String> {
    let mut s = TcpStream::connect(addr).ok()?;
    s.set_read_timeout(Some(Duration::from_secs(5))).ok()?;
    s.write_all(b"GET /index.html HTTP/1.0\r\nHost: localhost\r\n\r\n")
        .ok()?;
    let mut answer = Vec::new();
    let mut buf = [0u8; 4096];
    loop {
        let n = s.read(&mut buf).ok()?;
        answer.extend_from_slice(&buf[..n]);
        let text = String::from_utf8_lossy(&answer);
        if let Some((head, body)) = text.split_once("\r\n\r\n") {
            let length = head.lines().find_map(|l| {
                let (k, v) = l.split_once(':')?;
                k.eq_ignore_ascii_case("content-length")
                    .then(|| v.trim().parse::<usize>().ok())
                    .flatten()
            });
            let complete = length.map_or(n == 0, |len| body.len() >= len);
            if complete {
                let ok = head.starts_with("HTTP/1.0 200") || head.starts_with("HTTP/1.1 200");
                return ok.then(|| body.to_string());
            }
        }
        if n == 0 {
            return None;
        }
    }
}

/// How an edit's page was polled for.
struct Served {
    at: Instant,
    gets: usize,
    /// The milliseconds the GET that returned the page took (connect → body).
    last_get: f64,
}

/// Polls `addr` until it serves `content`.
fn until_served(addr: &str, content: &str) -> Result<Served> {
    let deadline = Instant::now() + EDIT_TIMEOUT;
    let mut gets = 0;
    loop {
        gets += 1;
        let sent = Instant::now();
        if get(addr).as_deref() == Some(content) {
            let at = Instant::now();
            return Ok(Served {
                at,
                gets,
                last_get: ms(at - sent),
            });
        }
        ensure!(
            Instant::now() < deadline,
            "{addr} did not serve the new page within {EDIT_TIMEOUT:?} ({gets} GETs)"
        );
        std::thread::sleep(POLL_GAP);
    }
}

fn run() -> Result<()> {
    let settings = Settings::from_env()?;
    let devloop = devloop_binary()?;
    ensure!(
        Path::new("/bin/busybox").exists(),
        "/bin/busybox is missing\n\nhint: install Debian's busybox-static"
    );
    let docker = Command::new("docker")
        .args(["version", "--format", "{{.Server.Version}}"])
        .output()
        .context("`docker` not found")?;
    ensure!(
        docker.status.success(),
        "no Docker daemon answers: {}",
        String::from_utf8_lossy(&docker.stderr)
    );
    let kubectl_version = Command::new("kubectl")
        .args(["version", "--client", "-o", "json"])
        .output()
        .context("`kubectl` not found\n\nhint: install kubectl (1.32 here)")?;
    let kubectl_version = serde_json::from_slice::<Value>(&kubectl_version.stdout)
        .ok()
        .and_then(|v| {
            v["clientVersion"]["gitVersion"]
                .as_str()
                .map(str::to_string)
        })
        .unwrap_or_else(|| "unknown".into());

    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .context("tokio runtime")?;
    let dir = tempfile::Builder::new()
        .prefix("devloop-bench-sync-")
        .tempdir()
        .context("temp dir")?;
    let (fake, kubeconfig) = match &settings.kubeconfig {
        Some(k) => (None, k.clone()),
        None => {
            let fake = Arc::new(runtime.block_on(async { FakeApiServer::start() }));
            let kubeconfig = runtime.block_on(support::tls_front::start(&fake, dir.path()))?;
            (Some(fake), kubeconfig)
        }
    };
    let local_registry = match &settings.registry {
        Some(_) => None,
        None => {
            ensure!(
                Command::new("docker-registry")
                    .arg("--version")
                    .output()
                    .is_ok(),
                "`docker-registry` not found\n\nhint: install Debian's docker-registry, or name a registry with \
                 DEVLOOP_BENCH_REGISTRY=HOST:PORT"
            );
            Some(Registry::start(None))
        }
    };
    let registry = settings
        .registry
        .clone()
        .or_else(|| local_registry.as_ref().map(|r| r.addr.clone()))
        .context("no registry")?;

    let pid = std::process::id();
    let sync_ns = format!("devloop-bench-sync-dev-{pid}");
    let rebuild_ns = format!("devloop-bench-sync-rebuild-{pid}");
    let script_ns = format!("devloop-bench-sync-script-{pid}");
    let namespaces = vec![sync_ns.clone(), rebuild_ns.clone(), script_ns.clone()];
    let leftovers = Leftovers {
        images: Mutex::new(Vec::new()),
        namespaces: namespaces.clone(),
        kubeconfig: kubeconfig.clone(),
        real: fake.is_none(),
    };
    let kubectl_home = dir.path().join("kubectl-home");
    fs::create_dir_all(&kubectl_home)?;
    let kubectl = Kubectl {
        kubeconfig: kubeconfig.clone(),
        home: kubectl_home,
    };

    println!(
        "Kubernetes file sync: devloop dev (sync) against the script (kubectl cp + exec), {} edits each, and \
         devloop's rebuild path, {} edits, interleaved",
        settings.edits, settings.rebuilds
    );
    println!("devloop: {}", devloop.display());
    println!(
        "cluster: {}",
        match &fake {
            Some(f) => format!(
                "in-process fake API server ({}, behind a TLS front; pods turn Ready 100 ms after creation; each \
                 pod's port 8080 served by a host busybox httpd on its container root)",
                f.url()
            ),
            None => format!("real cluster of `{}`", kubeconfig.display()),
        }
    );
    println!(
        "registry: {registry}{}; docker daemon {}; kubectl {kubectl_version}; cores: {}; debounce: {}",
        if local_registry.is_some() {
            " (docker-registry started by the bench)"
        } else {
            ""
        },
        String::from_utf8_lossy(&docker.stdout).trim(),
        std::thread::available_parallelism().map_or(0, |n| n.get()),
        settings
            .debounce
            .map_or_else(|| "devloop's default".to_string(), |d| format!("{d} ms"))
    );
    let load_before = load_average();
    println!("load average before: {load_before}");

    for ns in &namespaces {
        match &fake {
            // Set-up, not measured: kubectl's `create namespace` sends protobuf, which the fake does not read.
            Some(fake) => {
                fake.put_object(serde_json::json!({
                    "apiVersion": "v1", "kind": "Namespace", "metadata": {"name": ns}
                }))
                .map_err(|e| anyhow::anyhow!("create namespace {ns} on the fake: {e:?}"))?;
            }
            None => kubectl.run(None, &["create", "namespace", ns])?,
        }
    }
    let servers = fake
        .as_ref()
        .map(|f| PodServers::start(f.clone(), namespaces.clone()));

    let sync_image = format!("dlbench-sync-{pid}");
    let rebuild_image = format!("dlbench-rebuild-{pid}");
    let sync_dir = dir.path().join("sync");
    let rebuild_dir = dir.path().join("rebuild");
    let script_dir = dir.path().join("script");
    write_project(&sync_dir, &sync_image, true)?;
    write_project(&rebuild_dir, &rebuild_image, false)?;
    write_project(&script_dir, &sync_image, false)?;
    if let Some(fake) = &fake {
        // The sync side's image as built (its pods are never replaced); the rebuild side's is its project as the
        // container starts, which is what the last build copied.
        let template = dir.path().join("sync-image");
        fs::create_dir_all(&template)?;
        copy_tree(&sync_dir.join("bin"), &template.join("bin"))?;
        copy_tree(&sync_dir.join("www"), &template.join("www"))?;
        fake.set_image_root(&sync_image, &template);
        fake.set_image_root(&rebuild_image, &rebuild_dir);
    }

    let cache = dir.path().join("cache");
    let start = |project: &Path, ns: &str| {
        Dev::start(
            &devloop,
            project,
            &cache,
            &kubeconfig,
            ns,
            &registry,
            settings.debounce,
        )
    };
    let mut sync_dev = start(&sync_dir, &sync_ns)?;
    let (sync_addr, first) = sync_dev.first_iteration()?;
    leftovers.record(&first);
    let mut rebuild_dev = start(&rebuild_dir, &rebuild_ns)?;
    let (rebuild_addr, first_rebuild) = rebuild_dev.first_iteration()?;
    leftovers.record(&first_rebuild);
    eprintln!("devloop sync side forwards {sync_addr}, rebuild side {rebuild_addr}");

    // The script runs the image devloop's sync side deployed, in a namespace of its own.
    let reference = first
        .iter()
        .rev()
        .find_map(|(_, e)| {
            (e["type"] == "pushed")
                .then(|| e["data"]["reference"].as_str())
                .flatten()
        })
        .context("the sync side's first iteration pushed no image")?
        .to_string();
    let mut script = Script::deploy(
        &kubectl,
        &script_dir,
        &script_ns,
        &reference,
        fake.as_deref(),
        servers.as_ref(),
    )?;

    let mut syncs = Vec::new();
    let mut scripts = Vec::new();
    let mut rebuilds = Vec::new();
    // Round 0 is an untimed warm-up of every side; then each round edits each side once (the rebuild side in the
    // first rounds only), the order rotating.
    for round in 0..=settings.edits {
        let mut order = vec![Side::Sync, Side::Script];
        if round <= settings.rebuilds {
            order.push(Side::Rebuild);
        }
        let sides = order.len();
        order.rotate_left(round % sides);
        for side in order {
            std::thread::sleep(EDIT_GAP);
            let label = if round == 0 {
                "warm-up".to_string()
            } else {
                format!("{round:>2}/{}", settings.edits)
            };
            let content = format!("<h1>{} edit {round} of run {pid}</h1>\n", side.name());
            match side {
                Side::Sync => {
                    let e = sync_edit(&mut sync_dev, &sync_dir, &sync_addr, &content, &leftovers)?;
                    eprintln!("sync    {label}: {}", e.describe());
                    if round > 0 {
                        syncs.push(e);
                    }
                }
                Side::Rebuild => {
                    let e = rebuild_edit(
                        &mut rebuild_dev,
                        &rebuild_dir,
                        &rebuild_addr,
                        &content,
                        &leftovers,
                    )?;
                    eprintln!("rebuild {label}: {}", e.describe());
                    if round > 0 {
                        rebuilds.push(e);
                    }
                }
                Side::Script => {
                    let e = script.edit(&kubectl, &content)?;
                    eprintln!("script  {label}: {}", e.describe());
                    if round > 0 {
                        scripts.push(e);
                    }
                }
            }
        }
    }
    let load_after = load_average();
    println!();
    print!(
        "{}",
        report(&syncs, &scripts, &rebuilds, fake.is_some(), &script.how)
    );
    println!("load average: before {load_before}, after {load_after}");
    sync_dev.interrupt();
    rebuild_dev.interrupt();
    drop(script);
    drop(servers);
    drop(leftovers);
    drop(local_registry);
    Ok(())
}

#[derive(Clone, Copy)]
enum Side {
    Sync,
    Script,
    Rebuild,
}

impl Side {
    fn name(self) -> &'static str {
        match self {
            Side::Sync => "devloop sync",
            Side::Script => "script",
            Side::Rebuild => "devloop rebuild",
        }
    }
}

/// kubectl with the bench's kubeconfig and its own `$HOME` (discovery cache, warmed by the warm-up round).
struct Kubectl {
    kubeconfig: PathBuf,
    home: PathBuf,
}

impl Kubectl {
    fn command(&self, ns: Option<&str>) -> Command {
        let mut cmd = Command::new("kubectl");
        cmd.arg("--kubeconfig").arg(&self.kubeconfig);
        if let Some(ns) = ns {
            cmd.args(["-n", ns]);
        }
        cmd.env("HOME", &self.home)
            .env_remove("KUBECONFIG")
            .stdin(Stdio::null());
        cmd
    }

    /// Runs kubectl in `cwd` (the bench's directory when `None`): its stdout; fails with its stderr.
    fn run_in(&self, cwd: Option<&Path>, ns: Option<&str>, args: &[&str]) -> Result<String> {
        let mut cmd = self.command(ns);
        if let Some(dir) = cwd {
            cmd.current_dir(dir);
        }
        let out = cmd.args(args).output().context("run kubectl")?;
        ensure!(
            out.status.success(),
            "kubectl {} failed: {}",
            args.join(" "),
            String::from_utf8_lossy(&out.stderr).trim()
        );
        Ok(String::from_utf8_lossy(&out.stdout).into_owned())
    }

    fn run(&self, ns: Option<&str>, args: &[&str]) -> Result<()> {
        self.run_in(None, ns, args).map(drop)
    }
}

/// A project: busybox with [`APPLETS`] serving `www/`, a Deployment `web` forwarded by `portForward`, with a
/// `sync.manual` rule for `www/` when `sync`.
fn write_project(dir: &Path, image: &str, sync: bool) -> Result<()> {
    for sub in ["bin", "www", "k8s"] {
        fs::create_dir_all(dir.join(sub))?;
    }
    let rule = if sync {
        "      sync:\n        manual:\n          - {src: \"www/**\", dest: /www, strip: \"www/\"}\n"
    } else {
        ""
    };
    fs::write(
        dir.join("devloop.yaml"),
        format!(
            "apiVersion: devloop/v1alpha1\nkind: Config\nmetadata:\n  name: syncbench\nbuild:\n  artifacts:\n    - image: {image}\n{rule}manifests:\n  rawYaml: [\"k8s/*.yaml\"]\nportForward:\n  - resourceType: deployment\n    resourceName: web\n    port: 8080\n"
        ),
    )?;
    fs::write(dir.join("Dockerfile"), DOCKERFILE)?;
    fs::write(dir.join(".dockerignore"), "k8s\n")?;
    fs::copy("/bin/busybox", dir.join("bin/busybox")).context("copy /bin/busybox")?;
    for applet in APPLETS {
        std::os::unix::fs::symlink("busybox", dir.join("bin").join(applet))?;
    }
    fs::write(dir.join("www/index.html"), "<h1>v0</h1>\n")?;
    fs::write(dir.join("k8s/app.yaml"), manifest(image))?;
    Ok(())
}

fn manifest(image: &str) -> String {
    format!(
        "apiVersion: apps/v1
kind: Deployment
metadata:
  name: web
spec:
  replicas: 1
  selector:
    matchLabels: {{app: web}}
  template:
    metadata:
      labels: {{app: web}}
    spec:
      # busybox httpd as PID 1 ignores SIGTERM: on a real cluster the old pod would linger for 30 s.
      terminationGracePeriodSeconds: 1
      containers:
        - name: web
          image: {image}
          command: [\"/bin/busybox\", \"httpd\", \"-f\", \"-p\", \"8080\", \"-h\", \"/www\"]
          ports:
            - containerPort: 8080
"
    )
}

/// `cp -a from to`.
fn copy_tree(from: &Path, to: &Path) -> Result<()> {
    let status = Command::new("cp")
        .arg("-a")
        .arg(from)
        .arg(to)
        .status()
        .context("run cp")?;
    ensure!(
        status.success(),
        "cp -a {} {} failed",
        from.display(),
        to.display()
    );
    Ok(())
}

/// The script's deployment: its pod and the address a GET reaches it at.
struct Script {
    dir: PathBuf,
    ns: String,
    pod: String,
    addr: String,
    /// The `kubectl port-forward` of a real cluster.
    forward: Option<Child>,
    /// How the GET reaches the pod, for the report.
    how: String,
}

/// One edit of the script: wall milliseconds per step, from the write.
struct ScriptEdit {
    total: f64,
    cp: f64,
    exec: f64,
    served: f64,
    gets: usize,
}

impl ScriptEdit {
    fn describe(&self) -> String {
        format!(
            "save→served {:>5.0} ms (kubectl cp {:.0}, kubectl exec mv {:.0}, then served after {:.0} ms, {} GETs)",
            self.total, self.cp, self.exec, self.served, self.gets
        )
    }
}

impl Script {
    /// Applies the manifest with `reference` and waits for the rollout (set-up, not timed).
    fn deploy(
        kubectl: &Kubectl,
        dir: &Path,
        ns: &str,
        reference: &str,
        fake: Option<&FakeApiServer>,
        servers: Option<&PodServers>,
    ) -> Result<Script> {
        fs::write(dir.join("k8s/app.yaml"), manifest(reference))?;
        let k8s = dir.join("k8s").display().to_string();
        // `--validate=false`: client-side validation downloads the OpenAPI schema, which the fake does not serve.
        kubectl.run(
            Some(ns),
            &["apply", "--server-side", "--validate=false", "-f", &k8s],
        )?;
        kubectl.run(
            Some(ns),
            &["rollout", "status", "deployment/web", ROLLOUT_TIMEOUT],
        )?;
        let deadline = Instant::now() + Duration::from_secs(60);
        let (pod, addr, forward, how) = loop {
            ensure!(Instant::now() < deadline, "the script's pod is not served");
            match (fake, servers) {
                (Some(fake), Some(servers)) => {
                    let pod = fake
                        .objects("Pod")
                        .iter()
                        .filter(|p| {
                            p.pointer("/metadata/namespace").and_then(Value::as_str) == Some(ns)
                        })
                        .find_map(|p| {
                            p.pointer("/metadata/name")
                                .and_then(Value::as_str)
                                .map(str::to_string)
                        });
                    if let Some(pod) = pod
                        && let Some(addr) = servers.addr(ns, &pod)
                    {
                        break (
                            pod,
                            addr.to_string(),
                            None,
                            "straight to the pod's server (kubectl port-forward speaks SPDY over its WebSocket, \
                             which the fake does not)"
                                .to_string(),
                        );
                    }
                }
                _ => {
                    let pod = kubectl.run_in(
                        None,
                        Some(ns),
                        &[
                            "get",
                            "pods",
                            "-l",
                            "app=web",
                            "-o",
                            "jsonpath={.items[0].metadata.name}",
                        ],
                    )?;
                    let pod = pod.trim().to_string();
                    let (child, addr) = kubectl_forward(kubectl, ns, &pod)?;
                    break (
                        pod,
                        addr,
                        Some(child),
                        "through `kubectl port-forward`".to_string(),
                    );
                }
            }
            std::thread::sleep(Duration::from_millis(20));
        };
        Ok(Script {
            dir: dir.to_path_buf(),
            ns: ns.to_string(),
            pod,
            addr,
            forward,
            how,
        })
    }

    /// Writes the page, copies it to a temporary name, renames it, and polls until the pod serves it.
    fn edit(&mut self, kubectl: &Kubectl, content: &str) -> Result<ScriptEdit> {
        let written = Instant::now();
        fs::write(self.dir.join("www/index.html"), content)?;
        let target = format!("{}/{}:/www/.index.html.tmp", self.ns, self.pod);
        kubectl.run_in(
            Some(&self.dir),
            None,
            &["cp", "www/index.html", &target, "-c", "web"],
        )?;
        let copied = Instant::now();
        kubectl.run(
            Some(&self.ns),
            &[
                "exec",
                &self.pod,
                "-c",
                "web",
                "--",
                "sh",
                "-c",
                "mv /www/.index.html.tmp /www/index.html",
            ],
        )?;
        let moved = Instant::now();
        let served = until_served(&self.addr, content)?;
        Ok(ScriptEdit {
            total: ms(served.at - written),
            cp: ms(copied - written),
            exec: ms(moved - copied),
            served: ms(served.at - moved),
            gets: served.gets,
        })
    }
}

impl Drop for Script {
    fn drop(&mut self) {
        if let Some(mut child) = self.forward.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}

/// `kubectl port-forward pod/POD :8080`: the process and the local address it announced.
fn kubectl_forward(kubectl: &Kubectl, ns: &str, pod: &str) -> Result<(Child, String)> {
    let mut child = kubectl
        .command(Some(ns))
        .args(["port-forward", &format!("pod/{pod}"), ":8080"])
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .context("start kubectl port-forward")?;
    let stdout = child.stdout.take().context("kubectl's stdout")?;
    let mut lines = BufReader::new(stdout).lines();
    // "Forwarding from 127.0.0.1:40123 -> 8080"
    let addr = lines.find_map(|l| {
        let l = l.ok()?;
        let rest = l.strip_prefix("Forwarding from ")?;
        let addr = rest.split(" -> ").next()?;
        addr.starts_with("127.").then(|| addr.to_string())
    });
    // Keep reading so kubectl never blocks on a full pipe.
    std::thread::spawn(move || for _ in lines {});
    match addr {
        Some(a) => Ok((child, a)),
        None => {
            let _ = child.kill();
            let _ = child.wait();
            bail!("kubectl port-forward pod/{pod} announced no local address")
        }
    }
}

/// A running `devloop dev -o json --port-forward`: its events with the instant each line was read, stopped when
/// dropped.
struct Dev {
    child: Child,
    events: Receiver<(Instant, Value)>,
    seen: Vec<Value>,
    stderr: PathBuf,
}

impl Dev {
    fn start(
        devloop: &Path,
        project: &Path,
        cache: &Path,
        kubeconfig: &Path,
        ns: &str,
        registry: &str,
        debounce: Option<u64>,
    ) -> Result<Dev> {
        let stderr = project.with_extension("stderr.log");
        let mut cmd = Command::new(devloop);
        cmd.args(["dev", "-o", "json", "--port-forward", "--kubeconfig"])
            .arg(kubeconfig)
            .args(["-n", ns, "--default-repo", registry]);
        if let Some(d) = debounce {
            cmd.args(["--debounce", &d.to_string()]);
        }
        let mut child = cmd
            .current_dir(project)
            .env("DEVLOOP_CACHE_DIR", cache)
            .env("NO_COLOR", "1")
            .env_remove("DEVLOOP_DEFAULT_REPO")
            .env_remove("KUBECONFIG")
            .env_remove("RUST_LOG")
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(fs::File::create(&stderr).context("devloop's stderr file")?)
            .spawn()
            .with_context(|| format!("start `{}`", devloop.display()))?;
        let stdout = child.stdout.take().context("devloop's stdout")?;
        let (tx, rx) = mpsc::channel();
        // A thread of its own stamps each line as it arrives (events carry no timestamps).
        std::thread::spawn(move || {
            for line in BufReader::new(stdout).lines() {
                let Ok(line) = line else { break };
                let at = Instant::now();
                let value = serde_json::from_str(&line)
                    .unwrap_or_else(|_| serde_json::json!({"type": "unparsed", "line": line}));
                if tx.send((at, value)).is_err() {
                    break;
                }
            }
        });
        Ok(Dev {
            child,
            events: rx,
            seen: Vec::new(),
            stderr,
        })
    }

    /// Waits for the first iteration and the forward's listener: its address and the events.
    fn first_iteration(&mut self) -> Result<(String, Vec<(Instant, Value)>)> {
        let mut events = self.until("iteration", FIRST_ITERATION_TIMEOUT)?;
        if !events
            .iter()
            .any(|(_, e)| e["type"] == "portForwardStarted")
        {
            events.extend(self.until("portForwardStarted", FIRST_ITERATION_TIMEOUT)?);
        }
        let addr = events
            .iter()
            .find_map(|(_, e)| {
                (e["type"] == "portForwardStarted")
                    .then(|| e["data"]["address"].as_str())
                    .flatten()
            })
            .context("no portForwardStarted address")?;
        Ok((addr.to_string(), events))
    }

    /// The events up to and including the first one of type `ty`; fails on `iterationFailed`, exit or timeout.
    fn until(&mut self, ty: &str, timeout: Duration) -> Result<Vec<(Instant, Value)>> {
        let deadline = Instant::now() + timeout;
        let mut got = Vec::new();
        loop {
            let left = deadline.saturating_duration_since(Instant::now());
            let (at, event) = match self.events.recv_timeout(left) {
                Ok(x) => x,
                Err(RecvTimeoutError::Timeout) => {
                    bail!(
                        "timed out after {timeout:?} waiting for `{ty}`{}",
                        self.tail()
                    )
                }
                Err(RecvTimeoutError::Disconnected) => {
                    bail!("devloop exited while waiting for `{ty}`{}", self.tail())
                }
            };
            self.seen.push(event.clone());
            let kind = event["type"].as_str().unwrap_or_default().to_string();
            got.push((at, event));
            if kind == ty {
                return Ok(got);
            }
            if kind == "iterationFailed" {
                bail!(
                    "an iteration failed while waiting for `{ty}`{}",
                    self.tail()
                );
            }
        }
    }

    /// Events that arrived without being waited for.
    fn drain(&mut self) -> Vec<Value> {
        let got: Vec<Value> = self.events.try_iter().map(|(_, e)| e).collect();
        self.seen.extend(got.iter().cloned());
        got
    }

    /// Ctrl-C, then waits for the exit (devloop removes what it deployed on a real cluster).
    fn interrupt(&mut self) {
        let _ = Command::new("kill")
            .args(["-INT", &self.child.id().to_string()])
            .status();
        let deadline = Instant::now() + Duration::from_secs(60);
        while matches!(self.child.try_wait(), Ok(None)) && Instant::now() < deadline {
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    /// The last events and stderr lines, for error messages.
    fn tail(&self) -> String {
        let events: Vec<String> = self
            .seen
            .iter()
            .rev()
            .take(12)
            .rev()
            .map(Value::to_string)
            .collect();
        let stderr = fs::read_to_string(&self.stderr).unwrap_or_default();
        let lines: Vec<&str> = stderr.lines().collect();
        let stderr_tail = lines[lines.len().saturating_sub(20)..].join("\n  ");
        format!(
            "\n\nlast events:\n  {}\ndevloop stderr (last lines):\n  {stderr_tail}",
            events.join("\n  ")
        )
    }
}

impl Drop for Dev {
    fn drop(&mut self) {
        if matches!(self.child.try_wait(), Ok(None)) {
            let _ = self.child.kill();
            let _ = self.child.wait();
        }
    }
}

/// One synced edit (milliseconds from the write, by the bench's clock).
struct SyncEdit {
    /// The write → the GET through devloop's forward returned the page: the figure compared.
    total: f64,
    /// The write → the `synced` event read.
    synced_read: f64,
    /// `synced.durationMs`: devloop's copy into the containers.
    synced_ms: f64,
    /// The write → the `iteration` event read, and its `readyMs` (from devloop's file event).
    iteration_read: f64,
    ready_ms: f64,
    containers: u64,
    gets: usize,
    /// The GET that returned the page, through devloop's forward (a new tunnel per connection).
    last_get: f64,
}

impl SyncEdit {
    fn describe(&self) -> String {
        format!(
            "save→served {:>5.0} ms (synced read at {:.0}, synced.durationMs {:.0}, iteration read at {:.0}, \
             readyMs {:.0}; {} container(s), {} GETs, the last {:.0} ms)",
            self.total,
            self.synced_read,
            self.synced_ms,
            self.iteration_read,
            self.ready_ms,
            self.containers,
            self.gets,
            self.last_get
        )
    }
}

fn sync_edit(
    dev: &mut Dev,
    project: &Path,
    addr: &str,
    content: &str,
    leftovers: &Leftovers,
) -> Result<SyncEdit> {
    let stray = dev.drain();
    ensure!(
        !stray.iter().any(|e| e["type"] == "buildStarted"),
        "devloop built without an edit: {stray:?}"
    );
    let written = Instant::now();
    fs::write(project.join("www/index.html"), content)?;
    let served = until_served(addr, content)?;
    let events = dev.until("iteration", EDIT_TIMEOUT)?;
    leftovers.record(&events);
    let (iteration_at, iteration) = events.last().context("no events")?;
    ensure!(
        iteration["data"]["rebuilt"]
            .as_array()
            .is_some_and(Vec::is_empty)
            && !events.iter().any(|(_, e)| e["type"] == "buildStarted"),
        "the edit was not synced but rebuilt: {iteration}"
    );
    let (synced_at, synced) = events
        .iter()
        .find(|(_, e)| e["type"] == "synced")
        .context("no synced event before the iteration")?;
    let num = |e: &Value, key: &str| e["data"][key].as_f64().unwrap_or(f64::NAN);
    Ok(SyncEdit {
        total: ms(served.at.saturating_duration_since(written)),
        last_get: served.last_get,
        synced_read: ms(synced_at.saturating_duration_since(written)),
        synced_ms: num(synced, "durationMs"),
        iteration_read: ms(iteration_at.saturating_duration_since(written)),
        ready_ms: num(iteration, "readyMs"),
        containers: synced["data"]["containers"].as_u64().unwrap_or(0),
        gets: served.gets,
    })
}

/// One rebuilt edit (milliseconds from the write).
struct RebuildEdit {
    total: f64,
    iteration_read: f64,
    ready_ms: f64,
    gets: usize,
}

impl RebuildEdit {
    fn describe(&self) -> String {
        format!(
            "save→served {:>5.0} ms (iteration read at {:.0}, readyMs {:.0}; {} GETs)",
            self.total, self.iteration_read, self.ready_ms, self.gets
        )
    }
}

fn rebuild_edit(
    dev: &mut Dev,
    project: &Path,
    addr: &str,
    content: &str,
    leftovers: &Leftovers,
) -> Result<RebuildEdit> {
    let stray = dev.drain();
    ensure!(
        !stray.iter().any(|e| e["type"] == "buildStarted"),
        "devloop rebuilt without an edit: {stray:?}"
    );
    let written = Instant::now();
    fs::write(project.join("www/index.html"), content)?;
    let served = until_served(addr, content)?;
    let events = dev.until("iteration", EDIT_TIMEOUT)?;
    leftovers.record(&events);
    let (iteration_at, iteration) = events.last().context("no events")?;
    ensure!(
        iteration["data"]["rebuilt"]
            .as_array()
            .is_some_and(|r| r.len() == 1),
        "the edit did not rebuild the image: {iteration}"
    );
    Ok(RebuildEdit {
        total: ms(served.at.saturating_duration_since(written)),
        iteration_read: ms(iteration_at.saturating_duration_since(written)),
        ready_ms: iteration["data"]["readyMs"].as_f64().unwrap_or(f64::NAN),
        gets: served.gets,
    })
}

fn report(
    syncs: &[SyncEdit],
    scripts: &[ScriptEdit],
    rebuilds: &[RebuildEdit],
    fake: bool,
    how: &str,
) -> String {
    let mut out = String::new();
    let row = |out: &mut String, name: &str, xs: &[f64]| {
        let _ = writeln!(
            out,
            "  {name:<50} {:>7.0}  {:>7.0}  {:>7.0}  {:>7.0}",
            percentile(xs, 50.0),
            percentile(xs, 90.0),
            xs.iter().copied().fold(f64::INFINITY, f64::min),
            xs.iter().copied().fold(f64::NEG_INFINITY, f64::max),
        );
    };
    let s = |f: &dyn Fn(&SyncEdit) -> f64| -> Vec<f64> { syncs.iter().map(f).collect() };
    let k = |f: &dyn Fn(&ScriptEdit) -> f64| -> Vec<f64> { scripts.iter().map(f).collect() };
    let r = |f: &dyn Fn(&RebuildEdit) -> f64| -> Vec<f64> { rebuilds.iter().map(f).collect() };
    let _ = writeln!(
        out,
        "save→served, {} + {} + {} edits (ms)                    median      p90      min      max",
        syncs.len(),
        scripts.len(),
        rebuilds.len()
    );
    row(
        &mut out,
        "devloop sync (write → GET through its forward)",
        &s(&|e| e.total),
    );
    row(&mut out, "  write → synced read", &s(&|e| e.synced_read));
    row(
        &mut out,
        "  (copy: synced.durationMs)",
        &s(&|e| e.synced_ms),
    );
    row(
        &mut out,
        "  write → synced read, less the copy",
        &s(&|e| e.synced_read - e.synced_ms),
    );
    row(
        &mut out,
        "  synced read → served",
        &s(&|e| e.total - e.synced_read),
    );
    row(
        &mut out,
        "  (the GET that returned the page)",
        &s(&|e| e.last_get),
    );
    row(
        &mut out,
        "  (iteration's readyMs, from its file event)",
        &s(&|e| e.ready_ms),
    );
    row(
        &mut out,
        "script (write → GET to the pod)",
        &k(&|e| e.total),
    );
    row(&mut out, "  kubectl cp", &k(&|e| e.cp));
    row(&mut out, "  kubectl exec mv", &k(&|e| e.exec));
    row(&mut out, "  mv done → served", &k(&|e| e.served));
    row(
        &mut out,
        "devloop rebuild (write → GET through its forward)",
        &r(&|e| e.total),
    );
    row(
        &mut out,
        "  write → iteration read",
        &r(&|e| e.iteration_read),
    );
    row(
        &mut out,
        "  (iteration's readyMs, from its file event)",
        &r(&|e| e.ready_ms),
    );
    let containers: Vec<u64> = syncs.iter().map(|e| e.containers).collect();
    let _ = writeln!(
        out,
        "devloop sync: every edit synced without a build, into {containers:?} container(s); GETs per edit: sync {:.0}, \
         script {:.0}, rebuild {:.0} (medians)",
        percentile(&s(&|e| e.gets as f64), 50.0),
        percentile(&k(&|e| e.gets as f64), 50.0),
        percentile(&r(&|e| e.gets as f64), 50.0),
    );
    let _ = writeln!(out, "the script's GET goes {how}");
    let sync_median = percentile(&s(&|e| e.total), 50.0);
    let _ = writeln!(
        out,
        "devloop sync / script (medians): {:.2}",
        sync_median / percentile(&k(&|e| e.total), 50.0)
    );
    let _ = writeln!(
        out,
        "devloop sync / devloop rebuild (medians): {:.2}",
        sync_median / percentile(&r(&|e| e.total), 50.0)
    );
    let (target, what) = if fake {
        (TARGET_FAKE_MS, "the fake API server")
    } else {
        (TARGET_REAL_MS, "a real cluster")
    };
    let _ = writeln!(
        out,
        "devloop sync median save→served {sync_median:.0} ms, target ≤ {target:.0} ms on {what}  {}",
        verdict(sync_median <= target)
    );
    out
}

fn ms(d: Duration) -> f64 {
    d.as_secs_f64() * 1000.0
}

/// Nearest-rank percentile.
fn percentile(xs: &[f64], p: f64) -> f64 {
    if xs.is_empty() {
        return f64::NAN;
    }
    let mut v = xs.to_vec();
    v.sort_by(f64::total_cmp);
    let rank = ((p / 100.0) * v.len() as f64).ceil() as usize;
    v[rank.clamp(1, v.len()) - 1]
}

fn verdict(pass: bool) -> &'static str {
    if pass { "PASS" } else { "FAIL" }
}

fn load_average() -> String {
    fs::read_to_string("/proc/loadavg")
        .map(|l| l.split_whitespace().take(3).collect::<Vec<_>>().join(" "))
        .unwrap_or_else(|_| "unknown".into())
}

/// The devloop binary to time: `CARGO_BIN_EXE_devloop` (set by cargo for benches), else target/release/devloop.
fn devloop_binary() -> Result<PathBuf> {
    if let Some(path) = std::env::var_os("CARGO_BIN_EXE_devloop") {
        return Ok(PathBuf::from(path));
    }
    if let Some(path) = option_env!("CARGO_BIN_EXE_devloop") {
        return Ok(PathBuf::from(path));
    }
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("target/release/devloop");
    ensure!(
        path.exists(),
        "no devloop binary at {}\n\nhint: run it with `cargo bench --bench sync`",
        path.display()
    );
    Ok(path)
}
