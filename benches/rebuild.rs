//! Benchmark of `devloop dev`'s Kubernetes rebuild path against the script a user would write instead: a generated
//! project, the release binary, a loopback registry and the in-process fake API server (or a real cluster) →
//! save→rolled-out of interleaved edits on both sides, the ratio devloop/script measured in the same run, where each
//! side's time goes, and how soon after a lone save devloop starts its build, with PASS/FAIL against issue 11's
//! targets. It never asserts timings, never tunes what it measures, and removes the images, processes, namespaces
//! and files it created.
//!
//! The script, one step after the other as `&&` runs them: `docker build -t REPO:eN .`, `docker push REPO:eN`,
//! the manifest's image set to `REPO:eN` (what `sed` does in a script), `kubectl apply --server-side -f k8s/`,
//! `kubectl rollout status deployment/web`. devloop: `devloop dev -o json --default-repo REGISTRY`, timed from the
//! write to its `iteration` event. Both clocks stop at rollout complete: a re-targeted `kubectl port-forward`
//! cannot be timed against the fake (kubectl 1.32 tunnels SPDY over its WebSocket, which the fake does not speak),
//! so neither side includes a port-forward.
//!
//! Run: `cargo bench --bench rebuild` (`-- --quick` or `DEVLOOP_BENCH_QUICK=1`: 5 edits per side instead of 20;
//! `DEVLOOP_BENCH_EDITS=N` sets the number). Needs a Docker daemon, `/bin/busybox` (busybox-static), `kubectl`,
//! `openssl` and Debian's `docker-registry`. `DEVLOOP_TEST_KUBECONFIG=FILE` runs both sides against that cluster
//! instead of the fake, each in a namespace of its own; its nodes must be able to pull from the registry, so name
//! one they reach with `DEVLOOP_BENCH_REGISTRY=HOST:PORT` (default: a registry the bench starts on 127.0.0.1).
//! `DEVLOOP_BENCH_DEBOUNCE=MS` passes `--debounce`; `CARGO_BIN_EXE_devloop` names the binary to time.

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

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::fs;
use std::io::{BufRead as _, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitCode, ExitStatus, Stdio};
use std::sync::Mutex;
use std::sync::mpsc::{self, Receiver, RecvTimeoutError};
use std::time::{Duration, Instant};

use anyhow::{Context as _, Result, bail, ensure};
use serde_json::Value;
use support::fake_apiserver::{FakeApiServer, RequestRecord};
use support::registry::Registry;

/// Issue 11's targets: devloop's median save→rolled-out at most this fraction of the script's, and a lone save's
/// build started within this many milliseconds of the write.
const RATIO_TARGET: f64 = 0.85;
const BUILD_START_TARGET_MS: f64 = 20.0;
/// A developer does not save within milliseconds of a deploy, and the previous rollout's old pod is still
/// terminating right after it.
const EDIT_GAP: Duration = Duration::from_secs(1);
const EDIT_TIMEOUT: Duration = Duration::from_secs(180);
const FIRST_ITERATION_TIMEOUT: Duration = Duration::from_secs(600);
const STOP_TIMEOUT: Duration = Duration::from_secs(60);
/// `kubectl rollout status --timeout`.
const ROLLOUT_TIMEOUT: &str = "--timeout=180s";

const DOCKERFILE: &str = "FROM scratch\nCOPY bin/busybox /bin/busybox\nCOPY www /www\n";

struct Settings {
    edits: usize,
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
        Ok(Settings {
            edits: number("DEVLOOP_BENCH_EDITS")?
                .map_or(if quick { 5 } else { 20 }, |n| n as usize),
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

/// The cluster both sides deploy to.
enum Cluster {
    /// The fake and the kubeconfig of its TLS front (kubectl sends its token only over TLS; devloop uses the same).
    Fake(FakeApiServer),
    Real,
}

impl Cluster {
    /// Every request the fake received so far (a real cluster does not say).
    fn requests(&self) -> Option<Vec<RequestRecord>> {
        match self {
            Cluster::Fake(f) => Some(f.requests()),
            Cluster::Real => None,
        }
    }
}

/// What the run created outside its temp dir: images (removed on drop) and namespaces of a real cluster.
struct Leftovers {
    images: Mutex<Vec<String>>,
    namespaces: Mutex<Vec<String>>,
    kubeconfig: PathBuf,
    real: bool,
}

impl Leftovers {
    fn image(&self, reference: &str) {
        if !reference.is_empty()
            && let Ok(mut v) = self.images.lock()
        {
            v.push(reference.to_string());
        }
    }
}

impl Drop for Leftovers {
    fn drop(&mut self) {
        let mut list = self.images.lock().map(|v| v.clone()).unwrap_or_default();
        // Newest first: an image that is the parent of a later one cannot be removed before it.
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
            // An image may be listed twice (tag and ID); the second removal fails harmlessly.
            let real: Vec<&str> = err
                .lines()
                .filter(|l| !l.contains("No such image"))
                .collect();
            if !real.is_empty() {
                eprintln!("removing the benchmark's images: {}", real.join("; "));
            }
        }
        if self.real {
            for ns in self
                .namespaces
                .lock()
                .map(|v| v.clone())
                .unwrap_or_default()
            {
                let _ = Command::new("kubectl")
                    .arg("--kubeconfig")
                    .arg(&self.kubeconfig)
                    .args(["delete", "namespace", &ns, "--wait=false"])
                    .output();
            }
        }
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
        .prefix("devloop-bench-rebuild-")
        .tempdir()
        .context("temp dir")?;
    let (cluster, kubeconfig) = match &settings.kubeconfig {
        Some(k) => (Cluster::Real, k.clone()),
        None => {
            let fake = runtime.block_on(async { FakeApiServer::start() });
            let kubeconfig = runtime.block_on(support::tls_front::start(&fake, dir.path()))?;
            (Cluster::Fake(fake), kubeconfig)
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
    let leftovers = Leftovers {
        images: Mutex::new(Vec::new()),
        namespaces: Mutex::new(Vec::new()),
        kubeconfig: kubeconfig.clone(),
        real: matches!(cluster, Cluster::Real),
    };
    let kubectl_home = dir.path().join("kubectl-home");
    fs::create_dir_all(&kubectl_home)?;
    let kubectl = Kubectl {
        kubeconfig: kubeconfig.clone(),
        home: kubectl_home,
    };

    println!(
        "Kubernetes rebuild path: devloop dev against a script, {} edits each, interleaved",
        settings.edits
    );
    println!("devloop: {}", devloop.display());
    println!(
        "cluster: {}",
        match &cluster {
            Cluster::Fake(f) => format!(
                "in-process fake API server ({}, behind a TLS front; pods turn Ready 100 ms after creation)",
                f.url()
            ),
            Cluster::Real => format!("real cluster of `{}`", kubeconfig.display()),
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

    // Two copies of one project: the script's edits must not reach devloop's watcher, and distinct page content
    // keeps either side from reusing the other's layer.
    let dev_ns = format!("devloop-bench-rebuild-dev-{pid}");
    let script_ns = format!("devloop-bench-rebuild-script-{pid}");
    for ns in [&dev_ns, &script_ns] {
        leftovers
            .namespaces
            .lock()
            .map_err(|_| anyhow::anyhow!("poisoned"))?
            .push(ns.clone());
        match &cluster {
            // Set-up, not measured: kubectl's `create namespace` sends protobuf, which the fake does not read.
            Cluster::Fake(fake) => {
                fake.put_object(serde_json::json!({
                    "apiVersion": "v1", "kind": "Namespace", "metadata": {"name": ns}
                }))
                .map_err(|e| anyhow::anyhow!("create namespace {ns} on the fake: {e:?}"))?;
            }
            Cluster::Real => kubectl.run(None, &["create", "namespace", ns])?,
        }
    }
    let dev_project = dir.path().join("dev");
    let dev_image = format!("devloop-bench-rebuild-{pid}");
    write_project(&dev_project, &dev_image)?;
    fs::write(
        dev_project.join("k8s/app.yaml"),
        manifest(&dev_image, "dev"),
    )?;
    let script = Script {
        dir: dir.path().join("script"),
        ns: script_ns,
        repo: format!("{registry}/devloop-bench-rebuild-script-{pid}"),
    };
    write_project(&script.dir, &dev_image)?;

    let mut dev = Dev::start(
        &devloop,
        &dev_project,
        &dir.path().join("cache"),
        &kubeconfig,
        &dev_ns,
        &registry,
        settings.debounce,
    )?;
    let first = dev.until("iteration", FIRST_ITERATION_TIMEOUT)?;
    record_images(&leftovers, &first);
    eprintln!(
        "devloop: first iteration ready {} ms after it started",
        first
            .last()
            .map_or(Value::Null, |(_, e)| e["data"]["readyMs"].clone())
    );

    let mut dev_edits = Vec::new();
    let mut script_edits = Vec::new();
    let mut dev_requests = BTreeMap::new();
    let mut script_requests = BTreeMap::new();
    // Round 0 is an untimed warm-up of both sides (the script's first push uploads the busybox layer, kubectl fills
    // its discovery cache); then each round edits both sides once, alternating which goes first.
    for round in 0..=settings.edits {
        let order = if round % 2 == 0 {
            [true, false]
        } else {
            [false, true]
        };
        for is_dev in order {
            std::thread::sleep(EDIT_GAP);
            let before = cluster.requests().map_or(0, |r| r.len());
            let label = if round == 0 {
                "warm-up".to_string()
            } else {
                format!("{round:>2}/{}", settings.edits)
            };
            if is_dev {
                let edit = dev_edit(&mut dev, &dev_project, round, &leftovers)?;
                eprintln!("devloop {label}: {}", edit.describe());
                if round > 0 {
                    count_requests(&cluster, before, &mut dev_requests);
                    dev_edits.push(edit);
                }
            } else {
                let edit = script.edit(&kubectl, round, &leftovers)?;
                eprintln!("script  {label}: {}", edit.describe());
                if round > 0 {
                    count_requests(&cluster, before, &mut script_requests);
                    script_edits.push(edit);
                }
            }
        }
    }
    std::thread::sleep(EDIT_GAP);
    let stray = dev.drain();
    ensure!(
        !stray.iter().any(|e| e["type"] == "buildStarted"),
        "devloop rebuilt without an edit: {stray:?}"
    );
    let stop = dev.interrupt()?;
    let load_after = load_average();

    println!();
    print!(
        "{}",
        report(&dev_edits, &script_edits, &dev_requests, &script_requests)
    );
    // Stopped by SIGINT after a clean stop: 128 + 2, as `benches/dev.rs` and `benches/docker.rs` expect.
    println!(
        "Ctrl-C: devloop stopped in {} ms, {}  {}",
        stop.1.as_millis(),
        stop.0,
        verdict(stop.0.code() == Some(130))
    );
    println!("load average: before {load_before}, after {load_after}");
    drop(dev);
    drop(leftovers);
    drop(local_registry);
    Ok(())
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

    fn run(&self, ns: Option<&str>, args: &[&str]) -> Result<()> {
        let out = self
            .command(ns)
            .args(args)
            .output()
            .context("run kubectl")?;
        ensure!(
            out.status.success(),
            "kubectl {} failed: {}",
            args.join(" "),
            String::from_utf8_lossy(&out.stderr).trim()
        );
        Ok(())
    }
}

/// The project both sides build: busybox serving `www/`, a Deployment, a Service and a ConfigMap in `k8s/`.
fn write_project(dir: &Path, image: &str) -> Result<()> {
    for sub in ["bin", "www", "k8s"] {
        fs::create_dir_all(dir.join(sub))?;
    }
    fs::write(
        dir.join("devloop.yaml"),
        format!(
            "apiVersion: devloop/v1alpha1\nkind: Config\nmetadata:\n  name: rebuildbench\nbuild:\n  artifacts:\n    - image: {image}\nmanifests:\n  rawYaml: [\"k8s/*.yaml\"]\n"
        ),
    )?;
    fs::write(dir.join("Dockerfile"), DOCKERFILE)?;
    fs::write(dir.join(".dockerignore"), "k8s\n")?;
    fs::copy("/bin/busybox", dir.join("bin/busybox")).context("copy /bin/busybox")?;
    fs::write(dir.join("www/index.html"), "<h1>v0</h1>\n")?;
    Ok(())
}

/// The manifests with `image` in the pod template; `side` keeps the two sides' pages distinct.
fn manifest(image: &str, side: &str) -> String {
    format!(
        "apiVersion: apps/v1
kind: Deployment
metadata:
  name: web
  labels: {{side: {side}}}
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
          envFrom:
            - configMapRef:
                name: settings
---
apiVersion: v1
kind: Service
metadata:
  name: web
spec:
  selector: {{app: web}}
  ports:
    - port: 80
      targetPort: 8080
---
apiVersion: v1
kind: ConfigMap
metadata:
  name: settings
data:
  MODE: dev
"
    )
}

/// The script's project and where it deploys.
struct Script {
    dir: PathBuf,
    ns: String,
    repo: String,
}

/// One edit of the script: wall milliseconds per step, from the write.
struct ScriptEdit {
    steps: Vec<(&'static str, f64)>,
    total: f64,
}

impl ScriptEdit {
    fn step(&self, name: &str) -> f64 {
        self.steps
            .iter()
            .find(|(n, _)| *n == name)
            .map_or(f64::NAN, |(_, ms)| *ms)
    }

    fn describe(&self) -> String {
        let steps: Vec<String> = self
            .steps
            .iter()
            .map(|(n, ms)| format!("{n} {ms:.0}"))
            .collect();
        format!(
            "save→rolled-out {:>5.0} ms ({})",
            self.total,
            steps.join(", ")
        )
    }
}

impl Script {
    /// Writes the page, then runs the script's steps one after the other, each of which must succeed.
    fn edit(&self, kubectl: &Kubectl, round: usize, leftovers: &Leftovers) -> Result<ScriptEdit> {
        let reference = format!("{}:e{round}", self.repo);
        leftovers.image(&reference);
        let written = Instant::now();
        fs::write(
            self.dir.join("www/index.html"),
            format!(
                "<h1>script edit {round} of run {}</h1>\n",
                std::process::id()
            ),
        )?;
        let mut steps = Vec::new();
        let mut last = written;
        let mut lap = |name: &'static str, steps: &mut Vec<(&'static str, f64)>| {
            let now = Instant::now();
            steps.push((name, ms(now.duration_since(last))));
            last = now;
        };
        let dir = self.dir.display().to_string();
        let built = docker(&["build", "-t", &reference, &dir])?;
        lap("docker build", &mut steps);
        if let Some(id) = built
            .lines()
            .find_map(|l| l.strip_prefix("Successfully built "))
        {
            leftovers.image(id.trim());
        }
        let cached = built.matches("Using cache").count();
        ensure!(
            cached <= 1,
            "the daemon answered the script's page layer from its cache ({cached} cached steps): not a rebuild"
        );
        docker(&["push", &reference])?;
        lap("docker push", &mut steps);
        fs::write(
            self.dir.join("k8s/app.yaml"),
            manifest(&reference, "script"),
        )?;
        lap("set image", &mut steps);
        let k8s = self.dir.join("k8s").display().to_string();
        // `--validate=false`: client-side validation downloads the OpenAPI schema, which the fake does not serve;
        // it only makes kubectl faster.
        kubectl.run(
            Some(&self.ns),
            &["apply", "--server-side", "--validate=false", "-f", &k8s],
        )?;
        lap("kubectl apply", &mut steps);
        kubectl.run(
            Some(&self.ns),
            &["rollout", "status", "deployment/web", ROLLOUT_TIMEOUT],
        )?;
        lap("rollout status", &mut steps);
        Ok(ScriptEdit {
            total: ms(last.duration_since(written)),
            steps,
        })
    }
}

/// `docker ARGS`: its stdout; fails with its stderr.
fn docker(args: &[&str]) -> Result<String> {
    let out = Command::new("docker")
        .args(args)
        .stdin(Stdio::null())
        .output()
        .context("run docker")?;
    ensure!(
        out.status.success(),
        "docker {} failed: {}",
        args.join(" "),
        String::from_utf8_lossy(&out.stderr).trim()
    );
    Ok(String::from_utf8_lossy(&out.stdout).into_owned())
}

/// A running `devloop dev -o json`: its events with the instant each line was read, killed when dropped.
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
        cmd.args(["dev", "-o", "json", "--kubeconfig"])
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
        // A thread of its own stamps each line as it arrives (events carry no timestamps), whatever the main thread
        // is doing.
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
            if kind == "iterationFailed" && ty != "devStopped" {
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

    /// Ctrl-C: the exit status and how long stopping took.
    fn interrupt(&mut self) -> Result<(ExitStatus, Duration)> {
        let asked = Instant::now();
        let status = Command::new("kill")
            .args(["-INT", &self.child.id().to_string()])
            .status()
            .context("kill -INT")?;
        ensure!(status.success(), "kill -INT {} failed", self.child.id());
        self.until("devStopped", STOP_TIMEOUT)?;
        let deadline = Instant::now() + STOP_TIMEOUT;
        loop {
            if let Some(status) = self.child.try_wait().context("wait for devloop")? {
                return Ok((status, asked.elapsed()));
            }
            ensure!(
                Instant::now() < deadline,
                "devloop did not exit within {STOP_TIMEOUT:?} of Ctrl-C{}",
                self.tail()
            );
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

/// Images devloop built or pushed, for removal.
fn record_images(leftovers: &Leftovers, events: &[(Instant, Value)]) {
    for (_, e) in events {
        match e["type"].as_str() {
            Some("buildFinished") => {
                leftovers.image(e["data"]["tag"].as_str().unwrap_or_default());
                leftovers.image(e["data"]["imageId"].as_str().unwrap_or_default());
            }
            Some("pushed") => {
                let reference = e["data"]["reference"].as_str().unwrap_or_default();
                // `repo:tag@sha256:…`: the local image is known by `repo:tag`.
                leftovers.image(reference.split('@').next().unwrap_or_default());
            }
            _ => {}
        }
    }
}

/// One edit on devloop's side (milliseconds from the write, by the bench's clock unless said otherwise).
struct DevEdit {
    /// The write → the `iteration` event read from devloop's stdout: the figure compared with the script.
    total: f64,
    /// The write → the `buildStarted` line read.
    build_started: f64,
    /// `buildFinished.durationMs`, `pushed.durationMs`, `deployComplete.durationMs`, the slowest
    /// `rolloutReady.durationMs`.
    build: f64,
    push: f64,
    apply: f64,
    rollout: f64,
    /// devloop's own `iteration` times, measured from its first file event.
    built_ms: f64,
    applied_ms: f64,
    ready_ms: f64,
    builds: usize,
    cancelled: usize,
    /// Build steps the daemon answered from its layer cache (`Using cache` in the build output).
    cached_steps: usize,
    /// When each of [`MARKS`] was read, from the write (NaN when it did not come).
    marks: Vec<f64>,
}

/// The events whose arrival splits devloop's side into phases, in the order they come (the last `rolloutReady`).
const MARKS: [&str; 8] = [
    "buildStarted",
    "buildFinished",
    "pushStarted",
    "pushed",
    "deployStarted",
    "deployComplete",
    "rolloutReady",
    "iteration",
];

impl DevEdit {
    fn describe(&self) -> String {
        format!(
            "save→rolled-out {:>5.0} ms (buildStarted at {:.1}, build {:.0}, push {:.0}, apply {:.0}, rollout {:.0}; \
             devloop's builtMs {:.0}, appliedMs {:.0}, readyMs {:.0}; builds {}, cancelled {}, cached steps {})",
            self.total,
            self.build_started,
            self.build,
            self.push,
            self.apply,
            self.rollout,
            self.built_ms,
            self.applied_ms,
            self.ready_ms,
            self.builds,
            self.cancelled,
            self.cached_steps
        )
    }
}

fn dev_edit(dev: &mut Dev, project: &Path, round: usize, leftovers: &Leftovers) -> Result<DevEdit> {
    let stray = dev.drain();
    ensure!(
        !stray.iter().any(|e| e["type"] == "buildStarted"),
        "devloop rebuilt without an edit: {stray:?}"
    );
    // The run's pid keeps the page unique: the classic builder reuses any image with the same parent and the same
    // `COPY` content, also one another benchmark running at the same time built.
    let content = format!(
        "<h1>devloop edit {round} of run {}</h1>\n",
        std::process::id()
    );
    let written = Instant::now();
    fs::write(project.join("www/index.html"), content)?;
    let events = dev.until("iteration", EDIT_TIMEOUT)?;
    record_images(leftovers, &events);
    let of = |ty: &'static str| events.iter().filter(move |(_, e)| e["type"] == ty);
    let num = |e: &Value, key: &str| e["data"][key].as_f64().unwrap_or(f64::NAN);
    let (received, iteration) = events.last().context("no events")?;
    ensure!(
        iteration["data"]["rebuilt"]
            .as_array()
            .is_some_and(|r| r.len() == 1),
        "the edit did not rebuild the image: {iteration}"
    );
    let cached_steps = of("buildOutput")
        .filter(|(_, e)| {
            e["data"]["line"]
                .as_str()
                .is_some_and(|l| l.contains("Using cache"))
        })
        .count();
    // Only the busybox layer may come from the daemon's cache; a cached page layer would not be a rebuild.
    ensure!(
        cached_steps <= 1,
        "the daemon answered the page's layer from its cache ({cached_steps} cached steps): not a rebuild"
    );
    let build_started = of("buildStarted")
        .next()
        .map(|(at, _)| ms(at.saturating_duration_since(written)))
        .context("no buildStarted before the iteration")?;
    Ok(DevEdit {
        total: ms(received.saturating_duration_since(written)),
        build_started,
        build: of("buildFinished").map(|(_, e)| num(e, "durationMs")).sum(),
        push: of("pushed").map(|(_, e)| num(e, "durationMs")).sum(),
        apply: of("deployComplete")
            .map(|(_, e)| num(e, "durationMs"))
            .sum(),
        rollout: of("rolloutReady")
            .map(|(_, e)| num(e, "durationMs"))
            .fold(0.0, f64::max),
        built_ms: num(iteration, "builtMs"),
        applied_ms: num(iteration, "appliedMs"),
        ready_ms: num(iteration, "readyMs"),
        builds: of("buildStarted").count(),
        cancelled: of("iterationCancelled").count(),
        cached_steps,
        marks: MARKS
            .iter()
            .map(|ty| {
                of(ty).next_back().map_or(f64::NAN, |(at, _)| {
                    ms(at.saturating_duration_since(written))
                })
            })
            .collect(),
    })
}

/// Adds the fake's requests since `before` to `counts`, by what they did (`GET deployments`, `WATCH pods`, …).
fn count_requests(cluster: &Cluster, before: usize, counts: &mut BTreeMap<String, usize>) {
    let Some(requests) = cluster.requests() else {
        return;
    };
    for r in requests.iter().skip(before) {
        *counts.entry(request_kind(r)).or_default() += 1;
    }
}

/// `METHOD resource[/subresource]`, with WATCH for a watch and `discovery` for the API group documents.
fn request_kind(r: &RequestRecord) -> String {
    let parts: Vec<&str> = r.path.split('/').filter(|p| !p.is_empty()).collect();
    // /api/v1/… or /apis/GROUP/VERSION/…
    let rest = match parts.first() {
        Some(&"api") => parts.get(2..),
        Some(&"apis") => parts.get(3..),
        _ => None,
    }
    .unwrap_or_default();
    let rest = match rest {
        ["namespaces", _ns, tail @ ..] if !tail.is_empty() => tail,
        other => other,
    };
    let method = if r.param("watch").is_some_and(|w| w == "true" || w == "1") {
        "WATCH"
    } else {
        r.method.as_str()
    };
    match rest {
        [] => format!("{method} discovery"),
        [resource] | [resource, _] => format!("{method} {resource}"),
        [resource, _, sub, ..] => format!("{method} {resource}/{sub}"),
    }
}

fn report(
    dev: &[DevEdit],
    script: &[ScriptEdit],
    dev_requests: &BTreeMap<String, usize>,
    script_requests: &BTreeMap<String, usize>,
) -> String {
    let mut out = String::new();
    let row = |out: &mut String, name: &str, xs: &[f64]| {
        let _ = writeln!(
            out,
            "  {name:<46} {:>7.0}  {:>7.0}  {:>7.0}  {:>7.0}",
            percentile(xs, 50.0),
            percentile(xs, 90.0),
            xs.iter().copied().fold(f64::INFINITY, f64::min),
            xs.iter().copied().fold(f64::NEG_INFINITY, f64::max),
        );
    };
    let d = |f: &dyn Fn(&DevEdit) -> f64| -> Vec<f64> { dev.iter().map(f).collect() };
    let s = |f: &dyn Fn(&ScriptEdit) -> f64| -> Vec<f64> { script.iter().map(f).collect() };
    let _ = writeln!(
        out,
        "save→rolled-out, {} + {} edits (ms)                  median      p90      min      max",
        dev.len(),
        script.len()
    );
    row(
        &mut out,
        "devloop dev (write → iteration read)",
        &d(&|e| e.total),
    );
    row(
        &mut out,
        "  write → buildStarted read",
        &d(&|e| e.build_started),
    );
    for (i, pair) in MARKS.windows(2).enumerate() {
        row(
            &mut out,
            &format!("  {} → {} read", pair[0], pair[1]),
            &d(&|e| e.marks[i + 1] - e.marks[i]),
        );
    }
    row(
        &mut out,
        "  (build: buildFinished.durationMs)",
        &d(&|e| e.build),
    );
    row(&mut out, "  (push: pushed.durationMs)", &d(&|e| e.push));
    row(
        &mut out,
        "  (apply: deployComplete.durationMs)",
        &d(&|e| e.apply),
    );
    row(
        &mut out,
        "  (rollout: rolloutReady.durationMs)",
        &d(&|e| e.rollout),
    );
    row(
        &mut out,
        "  (devloop's readyMs, from its file event)",
        &d(&|e| e.ready_ms),
    );
    row(
        &mut out,
        "script (write → rollout status exits)",
        &s(&|e| e.total),
    );
    for name in [
        "docker build",
        "docker push",
        "set image",
        "kubectl apply",
        "rollout status",
    ] {
        row(&mut out, &format!("  {name}"), &s(&|e| e.step(name)));
    }
    let builds: usize = dev.iter().map(|e| e.builds).sum();
    let cancelled: usize = dev.iter().map(|e| e.cancelled).sum();
    let _ = writeln!(
        out,
        "devloop: {builds} builds for {} edits, {cancelled} cancelled iterations",
        dev.len()
    );
    let describe = |counts: &BTreeMap<String, usize>, edits: usize| -> String {
        if counts.is_empty() {
            return "not counted (real cluster)".into();
        }
        let total: usize = counts.values().sum();
        let list: Vec<String> = counts.iter().map(|(k, n)| format!("{k} {n}")).collect();
        format!(
            "{:.1} per edit ({})",
            total as f64 / edits.max(1) as f64,
            list.join(", ")
        )
    };
    let _ = writeln!(
        out,
        "requests to the fake, devloop: {}",
        describe(dev_requests, dev.len())
    );
    let _ = writeln!(
        out,
        "requests to the fake, script: {}",
        describe(script_requests, script.len())
    );
    let dev_median = percentile(&d(&|e| e.total), 50.0);
    let script_median = percentile(&s(&|e| e.total), 50.0);
    let ratio = dev_median / script_median;
    let _ = writeln!(
        out,
        "devloop / script (medians): {ratio:.2}, target ≤ {RATIO_TARGET}  {}",
        verdict(ratio <= RATIO_TARGET)
    );
    // Each round edits both sides back to back: the ratio within a round is less exposed to the neighbours' load
    // changing during the run.
    let paired: Vec<f64> = dev
        .iter()
        .zip(script)
        .map(|(d, s)| d.total / s.total)
        .collect();
    let _ = writeln!(
        out,
        "devloop / script within each round: median {:.2}, p90 {:.2}, min {:.2}, max {:.2}",
        percentile(&paired, 50.0),
        percentile(&paired, 90.0),
        paired.iter().copied().fold(f64::INFINITY, f64::min),
        paired.iter().copied().fold(f64::NEG_INFINITY, f64::max),
    );
    let started = d(&|e| e.build_started);
    let (median, p90) = (percentile(&started, 50.0), percentile(&started, 90.0));
    let _ = writeln!(
        out,
        "a lone save's build starts (write → buildStarted read): median {median:.1} ms, p90 {p90:.1} ms, target \
         ≤ {BUILD_START_TARGET_MS:.0} ms  {}",
        verdict(median <= BUILD_START_TARGET_MS)
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

/// The devloop binary to time: `CARGO_BIN_EXE_devloop` (set by cargo for benches), else target/release/devloop,
/// built when missing.
fn devloop_binary() -> Result<PathBuf> {
    if let Some(path) = std::env::var_os("CARGO_BIN_EXE_devloop") {
        return Ok(PathBuf::from(path));
    }
    if let Some(path) = option_env!("CARGO_BIN_EXE_devloop") {
        return Ok(PathBuf::from(path));
    }
    let manifest = Path::new(env!("CARGO_MANIFEST_DIR"));
    let path = manifest.join("target/release/devloop");
    if !path.exists() {
        eprintln!("building {}", path.display());
        let status = Command::new(std::env::var("CARGO").unwrap_or_else(|_| "cargo".into()))
            .args(["build", "--release", "--bin", "devloop"])
            .current_dir(manifest)
            .status()
            .context("cargo build --release")?;
        ensure!(
            status.success(),
            "cargo build --release --bin devloop failed"
        );
    }
    Ok(path)
}
