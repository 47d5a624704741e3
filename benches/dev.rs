//! Benchmark of `devloop dev`: a generated project, the release binary and the in-process fake API server (or a
//! real cluster) → save→ready of repeated edits split into build, rollout and the loop's own overhead, a plain
//! `DOCKER_BUILDKIT=0 docker build` baseline measured in the same run, and the idle CPU and memory of devloop
//! watching a 100k-file tree, with PASS/FAIL against the targets. It never asserts timings, never tunes
//! what it measures, and removes the images, processes and files it created.
//!
//! Run: `cargo bench --bench dev` (`-- --quick` or `DEVLOOP_BENCH_QUICK=1`: 5 edits and 10 s idle instead of 20
//! and 60 s). Needs a Docker daemon and `/bin/busybox` (busybox-static). `CARGO_BIN_EXE_devloop` names the binary
//! to time (else target/release/devloop, built when missing); `DEVLOOP_BENCH_DEBOUNCE=MS` passes `--debounce`
//! (default: devloop's own); `DEVLOOP_BENCH_EDITS=N` sets the number of edits; `DEVLOOP_BENCH_KUBECONFIG=FILE`
//! uses that cluster instead of the fake (its nodes must be able to run the locally built images, e.g. kind,
//! whose nodes devloop loads them into).

// A benchmark's report is its output.
#![allow(clippy::print_stdout, clippy::print_stderr)]

#[path = "../tests/support"]
// Cargo builds a `harness = false` bench with `--cfg test` but without the test harness: the fake's unit-test
// modules are compiled while their `#[test]` functions are dropped, so their imports look unused.
#[cfg_attr(test, allow(unused_imports))]
mod support {
    //! Only the fake API server of the test support (the rest needs the test harness).
    pub mod fake_apiserver;
}

use std::fmt::Write as _;
use std::fs;
use std::io::{BufRead as _, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitCode, ExitStatus, Stdio};
use std::sync::mpsc::{self, Receiver, RecvTimeoutError};
use std::time::{Duration, Instant};

use anyhow::{Context as _, Result, bail, ensure};
use serde_json::Value;
use support::fake_apiserver::FakeApiServer;

/// The targets.
const OVERHEAD_TARGET_MS: f64 = 300.0;
const IDLE_CPU_TARGET_PERCENT: f64 = 1.0;
const IDLE_RSS_TARGET_KIB: u64 = 50 * 1024;
/// The idle tree: directories × files of [`TREE_FILE_BYTES`] each.
const TREE_DIRS: usize = 1000;
const TREE_FILES_PER_DIR: usize = 100;
const TREE_FILE_BYTES: usize = 100;
/// Plain `docker build` runs of the baseline (interleaved with the edits).
const DOCKER_RUNS: usize = 5;
/// Pause after an iteration before the next edit: a developer does not save within milliseconds of a deploy,
/// and the previous rollout's old pod is still terminating right after it.
const EDIT_GAP: Duration = Duration::from_secs(1);
/// Bounds on waiting for events.
const EDIT_TIMEOUT: Duration = Duration::from_secs(120);
const FIRST_ITERATION_TIMEOUT: Duration = Duration::from_secs(900);
const STOP_TIMEOUT: Duration = Duration::from_secs(60);

const DOCKERFILE: &str = "FROM scratch\nCOPY bin/busybox /bin/busybox\nCOPY www /www\n";
/// The tree is in the context (hashed, sent to the daemon, watched) but not copied into the image: with the
/// classic builder, a `COPY` of 100k files costs the daemon minutes that say nothing about devloop.
const TREE_DOCKERFILE: &str = DOCKERFILE;

struct Settings {
    edits: usize,
    idle: Duration,
    debounce: Option<u64>,
    kubeconfig: Option<PathBuf>,
}

impl Settings {
    fn from_env() -> Result<Self> {
        // `cargo bench` passes `--bench`; other arguments (filters) are ignored.
        let quick = std::env::args().any(|a| a == "--quick")
            || std::env::var("DEVLOOP_BENCH_QUICK").is_ok_and(|v| !v.is_empty() && v != "0");
        let debounce =
            match std::env::var("DEVLOOP_BENCH_DEBOUNCE") {
                Ok(v) if !v.is_empty() => Some(v.parse().with_context(|| {
                    format!("DEVLOOP_BENCH_DEBOUNCE: `{v}` is not milliseconds")
                })?),
                _ => None,
            };
        Ok(Settings {
            edits: match std::env::var("DEVLOOP_BENCH_EDITS") {
                Ok(v) if !v.is_empty() => v
                    .parse()
                    .with_context(|| format!("DEVLOOP_BENCH_EDITS: `{v}` is not a number"))?,
                _ if quick => 5,
                _ => 20,
            },
            idle: Duration::from_secs(if quick { 10 } else { 60 }),
            debounce,
            kubeconfig: std::env::var_os("DEVLOOP_BENCH_KUBECONFIG")
                .filter(|v| !v.is_empty())
                .map(PathBuf::from),
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

/// The cluster devloop deploys to.
enum Cluster {
    Fake(FakeApiServer),
    Real(PathBuf),
}

impl Cluster {
    fn describe(&self) -> String {
        match self {
            Cluster::Fake(f) => format!(
                "in-process fake API server ({}; pods start 100 ms after creation)",
                f.url()
            ),
            Cluster::Real(k) => format!("real cluster of `{}`", k.display()),
        }
    }

    fn kubeconfig(&self, dir: &Path) -> PathBuf {
        match self {
            Cluster::Fake(f) => f.kubeconfig(dir),
            Cluster::Real(k) => k.clone(),
        }
    }

    /// How many requests the fake has received (a real cluster does not say).
    fn requests(&self) -> Option<usize> {
        match self {
            Cluster::Fake(f) => Some(f.requests().len()),
            Cluster::Real(_) => None,
        }
    }

    /// Whether the object still exists (`kind` as kubectl spells it: `deployment`, `service`, `configmap`).
    fn exists(&self, kind: &str, ns: &str, name: &str) -> Result<bool> {
        match self {
            Cluster::Fake(f) => Ok(f.object(kind, ns, name).is_some()),
            Cluster::Real(k) => {
                let out = Command::new("kubectl")
                    .arg("--kubeconfig")
                    .arg(k)
                    .args([
                        "-n",
                        ns,
                        "get",
                        kind,
                        name,
                        "--ignore-not-found",
                        "-o",
                        "name",
                    ])
                    .output()
                    .context("kubectl get")?;
                ensure!(
                    out.status.success(),
                    "kubectl get {kind} {name}: {}",
                    String::from_utf8_lossy(&out.stderr)
                );
                Ok(!out.stdout.is_empty())
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
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .context("tokio runtime")?;
    let cluster = match &settings.kubeconfig {
        Some(k) => Cluster::Real(k.clone()),
        None => Cluster::Fake(runtime.block_on(async { FakeApiServer::start() })),
    };
    let dir = tempfile::Builder::new()
        .prefix("devloop-bench-dev-")
        .tempdir()
        .context("temp dir")?;
    let kubeconfig = cluster.kubeconfig(dir.path());
    let env = Env {
        devloop,
        kubeconfig,
        debounce: settings.debounce,
        clock_ticks: clock_ticks(),
        images: Images::default(),
    };

    println!(
        "dev loop benchmark: {} edits, {} s idle on a {}-file tree",
        settings.edits,
        settings.idle.as_secs(),
        TREE_DIRS * TREE_FILES_PER_DIR
    );
    println!("devloop: {}", env.devloop.display());
    println!("cluster: {}", cluster.describe());
    println!(
        "docker daemon: {}, classic builder; cores: {}; debounce: {}",
        String::from_utf8_lossy(&docker.stdout).trim(),
        std::thread::available_parallelism().map_or(0, |n| n.get()),
        settings
            .debounce
            .map_or_else(|| "devloop's default".to_string(), |d| format!("{d} ms"))
    );

    let load_before = load_average();
    println!("load average before: {load_before}");
    let edits = edit_phase(&settings, &env, &cluster, dir.path())?;
    let load_edits = load_average();
    let idle = idle_phase(&settings, &env, &cluster, dir.path())?;
    let load_after = load_average();

    println!();
    print!("{}", edits.report());
    println!("load average: before {load_before}, after the edits {load_edits}");
    println!();
    print!("{}", idle.report(settings.idle));
    println!("load average after the idle phase: {load_after}");
    if [&load_before, &load_edits, &load_after]
        .iter()
        .any(|l| load1(l) > 2.0 * cores())
    {
        println!(
            "note: the 1-minute load exceeded twice the core count during the run: other work competed for the \
             CPU; re-run on a quieter machine before trusting the times"
        );
    }
    drop(env);
    Ok(())
}

/// What both phases share.
struct Env {
    devloop: PathBuf,
    kubeconfig: PathBuf,
    debounce: Option<u64>,
    clock_ticks: f64,
    images: Images,
}

/// Images built during the run, removed (with their untagged parents) when dropped.
#[derive(Default)]
struct Images(std::sync::Mutex<Vec<String>>);

impl Images {
    fn add(&self, reference: &str) {
        if let Ok(mut v) = self.0.lock() {
            v.push(reference.to_string());
        }
    }

    /// Every `tag` and `imageId` of the `buildFinished` events.
    fn add_built(&self, events: &[Value]) {
        for e in events.iter().filter(|e| e["type"] == "buildFinished") {
            for key in ["tag", "imageId"] {
                if let Some(s) = e["data"][key].as_str() {
                    self.add(s);
                }
            }
        }
    }
}

impl Drop for Images {
    fn drop(&mut self) {
        let mut list = self.0.lock().map(|v| v.clone()).unwrap_or_default();
        // Newest first: an image still parent of a later one cannot be removed before it.
        list.reverse();
        let mut seen = std::collections::HashSet::new();
        list.retain(|r| seen.insert(r.clone()));
        if list.is_empty() {
            return;
        }
        let out = Command::new("docker")
            .args(["rmi", "-f"])
            .args(&list)
            .output();
        match out {
            Ok(o) if o.status.success() => {}
            // An image may be listed twice (tag and ID); the second removal fails harmlessly.
            Ok(o) => {
                let err = String::from_utf8_lossy(&o.stderr);
                let real: Vec<&str> = err
                    .lines()
                    .filter(|l| !l.contains("No such image"))
                    .collect();
                if !real.is_empty() {
                    eprintln!("removing the benchmark's images: {}", real.join("; "));
                }
            }
            Err(e) => eprintln!("removing the benchmark's images: {e}"),
        }
    }
}

/// A running `devloop dev -o json`: its events with the instant each was read, killed when dropped.
struct Dev {
    child: Child,
    events: Receiver<(Instant, Value)>,
    seen: Vec<Value>,
    stderr: PathBuf,
    started: Instant,
}

impl Dev {
    fn start(env: &Env, project: &Path, cache: &Path, ns: &str) -> Result<Dev> {
        let stderr = project.with_extension("stderr.log");
        let mut cmd = Command::new(&env.devloop);
        cmd.args(["dev", "-o", "json", "--kubeconfig"])
            .arg(&env.kubeconfig)
            .args(["-n", ns]);
        if let Some(d) = env.debounce {
            cmd.args(["--debounce", &d.to_string()]);
        }
        let started = Instant::now();
        let mut child = cmd
            .current_dir(project)
            .env("DEVLOOP_CACHE_DIR", cache)
            .env("NO_COLOR", "1")
            .env_remove("DEVLOOP_DEFAULT_REPO")
            .env_remove("RUST_LOG")
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(fs::File::create(&stderr).context("devloop's stderr file")?)
            .spawn()
            .with_context(|| format!("start `{}`", env.devloop.display()))?;
        let stdout = child.stdout.take().context("devloop's stdout")?;
        let (tx, rx) = mpsc::channel();
        // A thread of its own stamps each event as it arrives, whatever the main thread is doing.
        std::thread::spawn(move || {
            for line in BufReader::new(stdout).lines() {
                let Ok(line) = line else { break };
                let value = serde_json::from_str(&line)
                    .unwrap_or_else(|_| serde_json::json!({"type": "unparsed", "line": line}));
                if tx.send((Instant::now(), value)).is_err() {
                    break;
                }
            }
        });
        Ok(Dev {
            child,
            events: rx,
            seen: Vec::new(),
            stderr,
            started,
        })
    }

    fn pid(&self) -> u32 {
        self.child.id()
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

    /// Ctrl-C: the `devStopped` event, the exit status and how long stopping took.
    fn interrupt(&mut self) -> Result<(Value, ExitStatus, Duration)> {
        let asked = Instant::now();
        let status = Command::new("kill")
            .args(["-INT", &self.pid().to_string()])
            .status()
            .context("kill -INT")?;
        ensure!(status.success(), "kill -INT {} failed", self.pid());
        let stopped = self.until("devStopped", STOP_TIMEOUT)?;
        let deadline = Instant::now() + STOP_TIMEOUT;
        loop {
            if let Some(status) = self.child.try_wait().context("wait for devloop")? {
                let (_, event) = stopped.last().cloned().context("devStopped")?;
                return Ok((event, status, asked.elapsed()));
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

/// Writes the shared part of a benchmark project: config, Dockerfile, busybox, page and manifests.
fn write_project(dir: &Path, project: &str, image: &str, dockerfile: &str) -> Result<()> {
    fs::create_dir_all(dir.join("bin"))?;
    fs::create_dir_all(dir.join("www"))?;
    fs::create_dir_all(dir.join("k8s"))?;
    fs::write(
        dir.join("devloop.yaml"),
        format!(
            "apiVersion: devloop/v1alpha1\nkind: Config\nmetadata:\n  name: {project}\nbuild:\n  artifacts:\n    - image: {image}\nmanifests:\n  rawYaml: [\"k8s/*.yaml\"]\n"
        ),
    )?;
    fs::write(dir.join("Dockerfile"), dockerfile)?;
    fs::write(dir.join(".dockerignore"), "k8s\n")?;
    fs::copy("/bin/busybox", dir.join("bin/busybox")).context("copy /bin/busybox")?;
    fs::write(dir.join("www/index.html"), "<h1>v0</h1>\n")?;
    // A real cluster runs the command; the fake only needs the shape.
    fs::write(
        dir.join("k8s/app.yaml"),
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
        ),
    )?;
    Ok(())
}

/// One measured edit (milliseconds).
struct Edit {
    /// save→ready as devloop reports it (`iteration.readyMs`).
    ready: f64,
    /// write → the `iteration` event read from devloop's stdout.
    outside: f64,
    build: f64,
    rollout: f64,
    /// write → `buildStarted` read: file event, debounce, context hashing, cache lookup.
    to_build_started: f64,
    /// `builtMs` − build: what precedes the build inside devloop (debounce, hashing, cache lookup).
    before_build: f64,
    /// `appliedMs` − `builtMs`: render and apply.
    apply: f64,
    /// The apply alone (`deployComplete.durationMs`).
    deploy: f64,
    /// Requests the fake API server received from the write to the `iteration` event.
    requests: Option<usize>,
    /// `readyMs` − `appliedMs` − rollout: the status check's own share of waiting.
    wait_extra: f64,
    builds: usize,
    cancelled: usize,
}

impl Edit {
    fn overhead(&self) -> f64 {
        self.ready - self.build - self.rollout
    }

    fn overhead_outside(&self) -> f64 {
        self.outside - self.build - self.rollout
    }
}

struct EditReport {
    /// devloop's memory after the edits (a context of a few files: the fixed cost).
    memory: Memory,
    edits: Vec<Edit>,
    docker: Vec<f64>,
    /// The same with one `--label` (the classic builder adds a `LABEL` step): what labelling an image costs.
    docker_labelled: Vec<f64>,
    first: Value,
    stop: Stop,
    median_reported_by_devloop: Option<u64>,
}

/// How Ctrl-C went.
struct Stop {
    took: Duration,
    status: ExitStatus,
    /// Objects devloop deployed that were still there after it exited.
    left_over: Vec<String>,
}

impl Stop {
    fn describe(&self) -> String {
        // Stopped by SIGINT after a clean stop: 128 + 2.
        let verdict = if self.status.code() == Some(130) && self.left_over.is_empty() {
            "PASS"
        } else {
            "FAIL"
        };
        let left = if self.left_over.is_empty() {
            "every deployed object removed".to_string()
        } else {
            format!("left over: {}", self.left_over.join(", "))
        };
        format!(
            "Ctrl-C: stopped in {} ms, {}, {left}  {verdict}",
            self.took.as_millis(),
            self.status
        )
    }
}

fn stop_and_check(dev: &mut Dev, cluster: &Cluster, ns: &str) -> Result<(Stop, Value)> {
    let (stopped, status, took) = dev.interrupt()?;
    let mut left_over = Vec::new();
    for (kind, name) in [
        ("deployment", "web"),
        ("service", "web"),
        ("configmap", "settings"),
    ] {
        if cluster.exists(kind, ns, name)? {
            left_over.push(format!("{kind}/{name}"));
        }
    }
    Ok((
        Stop {
            took,
            status,
            left_over,
        },
        stopped,
    ))
}

fn edit_phase(
    settings: &Settings,
    env: &Env,
    cluster: &Cluster,
    root: &Path,
) -> Result<EditReport> {
    let pid = std::process::id();
    let project = root.join("edit");
    let image = format!("devloop-bench-dev-{pid}");
    let ns = format!("devloop-bench-dev-{pid}");
    write_project(&project, "devbench", &image, DOCKERFILE)?;
    // The Docker baseline builds a copy, so its edits do not reach devloop's watcher.
    let baseline = root.join("docker-baseline");
    fs::create_dir_all(baseline.join("bin"))?;
    fs::create_dir_all(baseline.join("www"))?;
    for f in ["Dockerfile", ".dockerignore", "bin/busybox"] {
        fs::copy(project.join(f), baseline.join(f))?;
    }
    // Content of its own: the same bytes as devloop's would make Docker reuse devloop's layers (a cache hit).
    fs::write(baseline.join("www/index.html"), "<h1>baseline v0</h1>\n")?;
    let docker_tag = format!("devloop-bench-dev-docker-{pid}");
    env.images.add(&docker_tag);
    docker_build(env, &baseline, &docker_tag, None).context("warm-up docker build")?;

    let mut dev = Dev::start(env, &project, &root.join("edit-cache"), &ns)?;
    let first = dev.until("iteration", FIRST_ITERATION_TIMEOUT)?;
    env.images.add_built(&dev.seen);
    let first = first.last().map(|(_, e)| e.clone()).unwrap_or_default();
    eprintln!(
        "first iteration: ready {} ms after devloop started",
        first["data"]["readyMs"]
    );

    let docker_every = (settings.edits / DOCKER_RUNS).max(1);
    let mut edits = Vec::new();
    let mut docker = Vec::new();
    let mut docker_labelled = Vec::new();
    for i in 0..settings.edits {
        std::thread::sleep(EDIT_GAP);
        let stray = dev.drain();
        ensure!(
            !stray.iter().any(|e| e["type"] == "buildStarted"),
            "devloop rebuilt without an edit: {stray:?}"
        );
        let content = format!("<h1>edit {}</h1>\n", i + 1);
        let requests_before = cluster.requests();
        let written = Instant::now();
        fs::write(project.join("www/index.html"), &content)?;
        let events = dev.until("iteration", EDIT_TIMEOUT)?;
        let values: Vec<Value> = events.iter().map(|(_, e)| e.clone()).collect();
        env.images.add_built(&values);
        let requests = cluster.requests().zip(requests_before).map(|(a, b)| a - b);
        let edit = measure_edit(written, &events, requests)?;
        eprintln!(
            "edit {:>2}/{}: ready {:>5.0} ms (outside {:>5.0}), build {:>5.0}, rollout {:>4.0}, overhead {:>4.0} \
             (outside {:>4.0}; before build {:>3.0}, render + apply {:>3.0} (apply {:>3.0}, {} requests), wait \
             {:>2.0})",
            i + 1,
            settings.edits,
            edit.ready,
            edit.outside,
            edit.build,
            edit.rollout,
            edit.overhead(),
            edit.overhead_outside(),
            edit.before_build,
            edit.apply,
            edit.deploy,
            edit.requests
                .map_or_else(|| "?".to_string(), |n| n.to_string()),
            edit.wait_extra,
        );
        edits.push(edit);
        if (i + 1) % docker_every == 0 && docker.len() < DOCKER_RUNS {
            std::thread::sleep(EDIT_GAP);
            // Both variants after the same kind of edit, alternating which goes first.
            let mut pair = [(false, 0.0), (true, 0.0)];
            if docker.len() % 2 == 1 {
                pair.reverse();
            }
            for (labelled, took) in &mut pair {
                fs::write(
                    baseline.join("www/index.html"),
                    format!("<h1>baseline edit {} {labelled}</h1>\n", i + 1),
                )?;
                let label = labelled.then_some("devloop.bench=labelled");
                *took = docker_build(env, &baseline, &docker_tag, label)?;
            }
            pair.sort_by_key(|(labelled, _)| *labelled);
            eprintln!(
                "  docker build: {:.0} ms, with --label: {:.0} ms",
                pair[0].1, pair[1].1
            );
            docker.push(pair[0].1);
            docker_labelled.push(pair[1].1);
        }
    }
    std::thread::sleep(EDIT_GAP);
    let memory = Memory::of(dev.pid())?;
    let (stop, stopped) = stop_and_check(&mut dev, cluster, &ns)?;
    Ok(EditReport {
        memory,
        edits,
        docker,
        docker_labelled,
        first,
        stop,
        median_reported_by_devloop: stopped["data"]["medianSaveToReadyMs"].as_u64(),
    })
}

/// The timings of one edit from the events up to its `iteration`.
fn measure_edit(
    written: Instant,
    events: &[(Instant, Value)],
    requests: Option<usize>,
) -> Result<Edit> {
    let ms = |d: Duration| d.as_secs_f64() * 1000.0;
    let of = |ty: &'static str| events.iter().filter(move |(_, e)| e["type"] == ty);
    let num = |e: &Value, key: &str| e["data"][key].as_f64().unwrap_or(0.0);
    let (received, iteration) = events.last().context("no events")?;
    ensure!(
        iteration["data"]["rebuilt"]
            .as_array()
            .is_some_and(|r| r.len() == 1),
        "the edit did not rebuild the image: {iteration}"
    );
    let build: f64 = of("buildFinished").map(|(_, e)| num(e, "durationMs")).sum();
    let rollout = of("rolloutReady")
        .map(|(_, e)| num(e, "durationMs"))
        .fold(0.0, f64::max);
    let to_build_started = of("buildStarted")
        .next()
        .map(|(at, _)| ms(at.saturating_duration_since(written)))
        .context("no buildStarted before the iteration")?;
    let (built, applied, ready) = (
        num(iteration, "builtMs"),
        num(iteration, "appliedMs"),
        num(iteration, "readyMs"),
    );
    Ok(Edit {
        ready,
        outside: ms(received.saturating_duration_since(written)),
        build,
        rollout,
        to_build_started,
        before_build: built - build,
        apply: applied - built,
        deploy: of("deployComplete")
            .map(|(_, e)| num(e, "durationMs"))
            .sum(),
        requests,
        wait_extra: ready - applied - rollout,
        builds: of("buildStarted").count(),
        cancelled: of("iterationCancelled").count(),
    })
}

/// `DOCKER_BUILDKIT=0 docker build -q [--label L] -t TAG DIR`: wall milliseconds; the image ID is kept for
/// removal.
fn docker_build(env: &Env, dir: &Path, tag: &str, label: Option<&str>) -> Result<f64> {
    let mut cmd = Command::new("docker");
    cmd.args(["build", "-q", "-t", tag]);
    if let Some(label) = label {
        cmd.args(["--label", label]);
    }
    let started = Instant::now();
    let out = cmd
        .arg(dir)
        .env("DOCKER_BUILDKIT", "0")
        .output()
        .context("docker build")?;
    let took = started.elapsed().as_secs_f64() * 1000.0;
    ensure!(
        out.status.success(),
        "docker build failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    // Re-tagging leaves the previous image untagged: remove each by ID.
    env.images.add(String::from_utf8_lossy(&out.stdout).trim());
    Ok(took)
}

impl EditReport {
    fn report(&self) -> String {
        let mut out = String::new();
        let col = |f: &dyn Fn(&Edit) -> f64| -> Vec<f64> { self.edits.iter().map(f).collect() };
        let _ = writeln!(
            out,
            "save→ready over {} edits (ms)         median      p90      min      max",
            self.edits.len()
        );
        let rows: [(&str, Vec<f64>); 12] = [
            ("save→ready, devloop's readyMs", col(&|e| e.ready)),
            ("save→ready, write → event read", col(&|e| e.outside)),
            ("  build (buildFinished)", col(&|e| e.build)),
            ("  rollout (rolloutReady)", col(&|e| e.rollout)),
            ("  loop overhead, readyMs", col(&|e| e.overhead())),
            ("  loop overhead, outside", col(&|e| e.overhead_outside())),
            ("overhead: before the build", col(&|e| e.before_build)),
            ("overhead: render + apply", col(&|e| e.apply)),
            ("  of which apply (deployComplete)", col(&|e| e.deploy)),
            ("overhead: wait beyond rollout", col(&|e| e.wait_extra)),
            ("write → buildStarted read", col(&|e| e.to_build_started)),
            (
                "event delivery (outside − readyMs)",
                col(&|e| e.outside - e.ready),
            ),
        ];
        for (name, xs) in &rows {
            let _ = writeln!(
                out,
                "  {name:<36} {:>7.0}  {:>7.0}  {:>7.0}  {:>7.0}",
                percentile(xs, 50.0),
                percentile(xs, 90.0),
                xs.iter().copied().fold(f64::INFINITY, f64::min),
                xs.iter().copied().fold(f64::NEG_INFINITY, f64::max),
            );
        }
        for (name, xs) in [
            ("plain `docker build` (baseline)", &self.docker),
            ("  the same with one --label", &self.docker_labelled),
        ] {
            let _ = writeln!(
                out,
                "  {name:<36} {:>7.0}  {:>7.0}  {:>7.0}  {:>7.0}   ({} runs, interleaved)",
                percentile(xs, 50.0),
                percentile(xs, 90.0),
                xs.iter().copied().fold(f64::INFINITY, f64::min),
                xs.iter().copied().fold(f64::NEG_INFINITY, f64::max),
                xs.len()
            );
        }
        let builds: usize = self.edits.iter().map(|e| e.builds).sum();
        let cancelled: usize = self.edits.iter().map(|e| e.cancelled).sum();
        let _ = writeln!(
            out,
            "builds: {builds} for {} edits, cancelled iterations: {cancelled}; first iteration: ready {} ms \
             (built at {} ms); devloop's own median save→ready (devStopped, incl. the first): {}",
            self.edits.len(),
            self.first["data"]["readyMs"],
            self.first["data"]["builtMs"],
            self.median_reported_by_devloop
                .map_or_else(|| "none".to_string(), |m| format!("{m} ms"))
        );
        let build = percentile(&col(&|e| e.build), 50.0);
        let _ = writeln!(
            out,
            "devloop's build / docker build (medians): {:.2} plain, {:.2} with one --label",
            build / percentile(&self.docker, 50.0),
            build / percentile(&self.docker_labelled, 50.0)
        );
        let reported = percentile(&col(&|e| e.overhead()), 50.0);
        let outside = percentile(&col(&|e| e.overhead_outside()), 50.0);
        let worst = reported.max(outside);
        let _ = writeln!(
            out,
            "loop overhead (median, the larger of the two measures): {worst:.0} ms, target ≤ {OVERHEAD_TARGET_MS:.0} \
             ms  {}",
            verdict(worst <= OVERHEAD_TARGET_MS)
        );
        let _ = writeln!(
            out,
            "memory after the edits (a context of 4 files): {}",
            self.memory.describe()
        );
        let _ = writeln!(out, "{}", self.stop.describe());
        out
    }
}

/// Where a process's resident memory is, from `/proc/PID/status` and `/proc/PID/smaps`.
struct Memory {
    status: ProcStatus,
    /// Resident KiB by kind of mapping, largest first.
    groups: Vec<(String, u64)>,
    /// Anonymous mappings other than `[heap]` (glibc gives each thread arena its own).
    anon_mappings: usize,
}

impl Memory {
    fn of(pid: u32) -> Result<Memory> {
        let proc_dir = PathBuf::from(format!("/proc/{pid}"));
        let status = status_of(&proc_dir)?;
        let exe = fs::read_link(proc_dir.join("exe")).unwrap_or_default();
        let smaps = fs::read_to_string(proc_dir.join("smaps"))
            .with_context(|| format!("read `{}/smaps`", proc_dir.display()))?;
        let mut groups: std::collections::BTreeMap<String, u64> = Default::default();
        let mut anon_mappings = 0;
        let mut current = String::new();
        for line in smaps.lines() {
            let mut fields = line.split_whitespace();
            let first = fields.next().unwrap_or_default();
            // A mapping's header starts with its address range, `start-end`.
            if first.contains('-') && first.chars().all(|c| c.is_ascii_hexdigit() || c == '-') {
                let name = fields.nth(4).unwrap_or_default();
                current = if name.is_empty() {
                    anon_mappings += 1;
                    "anonymous mappings".to_string()
                } else if Path::new(name) == exe {
                    "devloop binary".to_string()
                } else if name.starts_with('/') {
                    "shared libraries".to_string()
                } else if name == "[heap]" || name == "[stack]" {
                    name.to_string()
                } else {
                    "other".to_string()
                };
            } else if first == "Rss:" {
                let kib: u64 = fields.next().and_then(|v| v.parse().ok()).unwrap_or(0);
                *groups.entry(current.clone()).or_default() += kib;
            }
        }
        let mut groups: Vec<(String, u64)> = groups.into_iter().filter(|(_, k)| *k > 0).collect();
        groups.sort_by_key(|g| std::cmp::Reverse(g.1));
        Ok(Memory {
            status,
            groups,
            anon_mappings,
        })
    }

    fn describe(&self) -> String {
        let mib = |k: u64| k as f64 / 1024.0;
        let groups: Vec<String> = self
            .groups
            .iter()
            .map(|(name, k)| {
                if name == "anonymous mappings" {
                    format!("{name} ({}) {:.1}", self.anon_mappings, mib(*k))
                } else {
                    format!("{name} {:.1}", mib(*k))
                }
            })
            .collect();
        format!(
            "RSS {:.1} MiB (anonymous {:.1}, file-backed {:.1}; peak {:.1}; {} threads); by mapping, MiB: {}",
            mib(self.status.rss),
            mib(self.status.rss_anon),
            mib(self.status.rss_file),
            mib(self.status.hwm),
            self.status.threads,
            groups.join(", ")
        )
    }
}

/// The idle measurement.
struct IdleReport {
    first: Value,
    first_build_ms: f64,
    first_outside: Duration,
    /// A plain `docker build` of the same context.
    first_docker_ms: f64,
    cpu: Duration,
    wall: Duration,
    /// The busiest one-second sample, in percent of one core.
    cpu_peak_percent: f64,
    rss_start_kib: u64,
    rss_end_kib: u64,
    rss_max_kib: u64,
    memory: Memory,
    events_while_idle: usize,
    stop: Stop,
}

fn idle_phase(
    settings: &Settings,
    env: &Env,
    cluster: &Cluster,
    root: &Path,
) -> Result<IdleReport> {
    let pid = std::process::id();
    let project = root.join("idle");
    let image = format!("devloop-bench-idle-{pid}");
    let ns = format!("devloop-bench-idle-{pid}");
    write_project(&project, "idlebench", &image, TREE_DOCKERFILE)?;
    let generated = Instant::now();
    write_tree(&project.join("tree"))?;
    eprintln!(
        "idle: wrote {} files in {} ms",
        TREE_DIRS * TREE_FILES_PER_DIR,
        generated.elapsed().as_millis()
    );

    let mut dev = Dev::start(env, &project, &root.join("idle-cache"), &ns)?;
    let first = dev.until("iteration", FIRST_ITERATION_TIMEOUT)?;
    env.images.add_built(&dev.seen);
    let first_outside = first
        .last()
        .map(|(at, _)| at.saturating_duration_since(dev.started))
        .unwrap_or_default();
    let first_build_ms = first
        .iter()
        .filter(|(_, e)| e["type"] == "buildFinished")
        .filter_map(|(_, e)| e["data"]["durationMs"].as_f64())
        .sum();
    let first = first.last().map(|(_, e)| e.clone()).unwrap_or_default();
    eprintln!(
        "idle: first iteration ready {} ms after start; sampling for {} s",
        first["data"]["readyMs"],
        settings.idle.as_secs()
    );
    // Let the tail of the first iteration (log streams attaching) finish before sampling.
    std::thread::sleep(Duration::from_secs(2));
    dev.drain();

    let proc_dir = PathBuf::from(format!("/proc/{}", dev.pid()));
    let start_cpu = cpu_of(&proc_dir, env.clock_ticks)?;
    let start_status = status_of(&proc_dir)?;
    let started = Instant::now();
    let mut last = (start_cpu, started);
    let mut cpu_peak_percent: f64 = 0.0;
    let mut rss_max_kib = start_status.rss;
    while started.elapsed() < settings.idle {
        std::thread::sleep(Duration::from_secs(1).min(settings.idle - started.elapsed()));
        let cpu = cpu_of(&proc_dir, env.clock_ticks)?;
        let now = Instant::now();
        let window = now.duration_since(last.1).as_secs_f64();
        if window > 0.0 {
            cpu_peak_percent =
                cpu_peak_percent.max((cpu.saturating_sub(last.0)).as_secs_f64() / window * 100.0);
        }
        last = (cpu, now);
        rss_max_kib = rss_max_kib.max(status_of(&proc_dir)?.rss);
    }
    let wall = started.elapsed();
    let end_cpu = cpu_of(&proc_dir, env.clock_ticks)?;
    let end_status = status_of(&proc_dir)?;
    let memory = Memory::of(dev.pid())?;
    let events_while_idle = dev.drain().len();
    let (stop, _) = stop_and_check(&mut dev, cluster, &ns)?;
    drop(dev);
    // The baseline for the first iteration: Docker alone, same context, after devloop stopped watching it.
    fs::write(project.join("www/index.html"), "<h1>baseline idle</h1>\n")?;
    let docker_tag = format!("devloop-bench-idle-docker-{pid}");
    env.images.add(&docker_tag);
    let first_docker_ms = docker_build(env, &project, &docker_tag, None)?;
    Ok(IdleReport {
        first_docker_ms,
        first,
        first_build_ms,
        first_outside,
        cpu: end_cpu.saturating_sub(start_cpu),
        wall,
        cpu_peak_percent,
        rss_start_kib: start_status.rss,
        rss_end_kib: end_status.rss,
        rss_max_kib: rss_max_kib.max(end_status.rss),
        memory,
        events_while_idle,
        stop,
    })
}

/// `TREE_DIRS` directories of `TREE_FILES_PER_DIR` files of `TREE_FILE_BYTES` bytes, each with distinct content.
fn write_tree(tree: &Path) -> Result<()> {
    for d in 0..TREE_DIRS {
        let dir = tree.join(format!("d{d:04}"));
        fs::create_dir_all(&dir).with_context(|| format!("create `{}`", dir.display()))?;
        for f in 0..TREE_FILES_PER_DIR {
            let mut text = format!("// module {d}/{f}: generated by benches/dev.rs\n");
            while text.len() < TREE_FILE_BYTES - 1 {
                text.push('x');
            }
            text.push('\n');
            fs::write(dir.join(format!("f{f:03}.txt")), text)?;
        }
    }
    Ok(())
}

impl IdleReport {
    fn report(&self, idle: Duration) -> String {
        let mut out = String::new();
        let percent = self.cpu.as_secs_f64() / self.wall.as_secs_f64() * 100.0;
        let num = |key: &str| self.first["data"][key].as_f64().unwrap_or(f64::NAN);
        let _ = writeln!(
            out,
            "idle on a {}-file tree ({} MiB in the context): first iteration ready {:.0} ms (devloop's readyMs; {} \
             ms from process start to the event)",
            TREE_DIRS * TREE_FILES_PER_DIR,
            TREE_DIRS * TREE_FILES_PER_DIR * TREE_FILE_BYTES / (1024 * 1024),
            num("readyMs"),
            self.first_outside.as_millis(),
        );
        let _ = writeln!(
            out,
            "  of it: before the build (walk, hash) {:.0} ms, build {:.0} ms, render + apply {:.0} ms, wait {:.0} ms; \
             plain `docker build` of the same context {:.0} ms",
            num("builtMs") - self.first_build_ms,
            self.first_build_ms,
            num("appliedMs") - num("builtMs"),
            num("readyMs") - num("appliedMs"),
            self.first_docker_ms,
        );
        let _ = writeln!(
            out,
            "  CPU over {} s: {} ms = {percent:.2} % of one core (busiest second {:.1} %), target ≤ \
             {IDLE_CPU_TARGET_PERCENT:.0} %  {}",
            idle.as_secs(),
            self.cpu.as_millis(),
            self.cpu_peak_percent,
            verdict(percent <= IDLE_CPU_TARGET_PERCENT)
        );
        let mib = |k: u64| k as f64 / 1024.0;
        let _ = writeln!(
            out,
            "  RSS: {:.1} MiB at the start, {:.1} MiB at the end, {:.1} MiB at most while idle, target ≤ {:.0} MiB  \
             {}",
            mib(self.rss_start_kib),
            mib(self.rss_end_kib),
            mib(self.rss_max_kib),
            mib(IDLE_RSS_TARGET_KIB),
            verdict(self.rss_max_kib <= IDLE_RSS_TARGET_KIB),
        );
        let _ = writeln!(out, "  at the end: {}", self.memory.describe());
        let _ = writeln!(
            out,
            "  events while idle: {} (expected 0)",
            self.events_while_idle
        );
        let _ = writeln!(out, "{}", self.stop.describe());
        out
    }
}

/// user + system CPU time of a process, from `/proc/PID/stat`.
fn cpu_of(proc_dir: &Path, clock_ticks: f64) -> Result<Duration> {
    let stat = fs::read_to_string(proc_dir.join("stat"))
        .with_context(|| format!("read `{}/stat` (did devloop exit?)", proc_dir.display()))?;
    // Fields after the command name (which may contain spaces) start at `state`, field 3.
    let rest = stat
        .rsplit_once(')')
        .map(|(_, r)| r)
        .context("/proc/PID/stat")?;
    let fields: Vec<&str> = rest.split_whitespace().collect();
    // utime and stime are fields 14 and 15; `fields[0]` is field 3.
    let field = |n: usize| -> Result<f64> {
        fields
            .get(n - 3)
            .and_then(|f| f.parse::<f64>().ok())
            .with_context(|| format!("field {n} of /proc/PID/stat"))
    };
    Ok(Duration::from_secs_f64(
        (field(14)? + field(15)?) / clock_ticks,
    ))
}

struct ProcStatus {
    rss: u64,
    hwm: u64,
    rss_anon: u64,
    rss_file: u64,
    threads: u64,
}

/// VmRSS, VmHWM (KiB) and Threads from `/proc/PID/status`.
fn status_of(proc_dir: &Path) -> Result<ProcStatus> {
    let text = fs::read_to_string(proc_dir.join("status"))
        .with_context(|| format!("read `{}/status` (did devloop exit?)", proc_dir.display()))?;
    let get = |key: &str| -> Result<u64> {
        text.lines()
            .find_map(|l| l.strip_prefix(key))
            .and_then(|v| v.split_whitespace().next())
            .and_then(|v| v.parse().ok())
            .with_context(|| format!("`{key}` in /proc/PID/status"))
    };
    Ok(ProcStatus {
        rss: get("VmRSS:")?,
        hwm: get("VmHWM:")?,
        rss_anon: get("RssAnon:")?,
        rss_file: get("RssFile:")?,
        threads: get("Threads:")?,
    })
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

fn load1(load: &str) -> f64 {
    load.split_whitespace()
        .next()
        .and_then(|l| l.parse().ok())
        .unwrap_or(0.0)
}

fn cores() -> f64 {
    std::thread::available_parallelism().map_or(1.0, |n| n.get() as f64)
}

fn clock_ticks() -> f64 {
    Command::new("getconf")
        .arg("CLK_TCK")
        .output()
        .ok()
        .and_then(|o| String::from_utf8_lossy(&o.stdout).trim().parse().ok())
        .unwrap_or(100.0)
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
