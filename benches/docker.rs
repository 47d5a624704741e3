//! Benchmark of `devloop dev` on the Docker deploy target: a FROM scratch busybox `httpd` project, the release
//! binary and the local daemon → save→serving of repeated edits (write of `www/index.html` until the published
//! port serves the new bytes), split into devloop's phases and the container's lifecycle as the daemon reports
//! it, against a scripted `docker build && docker rm -f && docker run` baseline interleaved in the same run, with
//! PASS/FAIL against the targets. It never asserts timings, never tunes what it measures, and removes the
//! containers, network, images, processes and files it created.
//!
//! Run: `cargo bench --bench docker` (`-- --quick` or `DEVLOOP_BENCH_QUICK=1`: 5 edits per side instead of 20).
//! Needs a Docker daemon and `/bin/busybox` (busybox-static). `CARGO_BIN_EXE_devloop` names the binary to time
//! (else target/release/devloop, built when missing); `DEVLOOP_BENCH_EDITS=N` sets the number of edits;
//! `DEVLOOP_BENCH_DEBOUNCE=MS` passes `--debounce` (default: devloop's own); `DEVLOOP_BENCH_POLL=eager` polls the
//! port from the write instead of from the daemon's `start` event of the new container (see [`PollFrom`]);
//! by default both sides' containers run without an init process: busybox `httpd` as PID 1 ignores SIGTERM (issue
//! 11's case; `stopGracePeriod: 10` is written out, and devloop's replacements must not wait for it);
//! `DEVLOOP_BENCH_INIT=1` gives both an init (`init: true` / `docker run --init`). `DEVLOOP_BENCH_SYNC=1` gives the
//! artifact a `sync.manual` rule for `www/**`: devloop then copies each edit into the running container instead of
//! rebuilding (no new container, so its side is polled from the write); the baseline is unchanged.

// A benchmark's report is its output.
#![allow(clippy::print_stdout, clippy::print_stderr)]

use std::fmt::Write as _;
use std::fs;
use std::io::{BufRead as _, BufReader, Read as _, Write as _};
use std::net::{SocketAddr, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitCode, ExitStatus, Stdio};
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::mpsc::{self, Receiver, RecvTimeoutError};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use anyhow::{Context as _, Result, bail, ensure};
use serde_json::Value;

/// Issue 11's targets for the rebuild path (SIGTERM-deaf PID 1, no init).
const MEDIAN_TARGET_MS: f64 = 1000.0;
const RATIO_TARGET: f64 = 0.8;
/// Pause before each edit: a developer does not save within milliseconds of the previous deploy, and the
/// previous container's log stream and the daemon's cleanup settle meanwhile (as in benches/dev.rs).
const EDIT_GAP: Duration = Duration::from_secs(1);
/// How often the published port is polled for the new content.
const POLL_EVERY: Duration = Duration::from_millis(5);
const CONNECT_TIMEOUT: Duration = Duration::from_millis(200);
const READ_TIMEOUT: Duration = Duration::from_secs(2);
/// Bounds on waiting.
const EDIT_TIMEOUT: Duration = Duration::from_secs(120);
const FIRST_ITERATION_TIMEOUT: Duration = Duration::from_secs(300);
const STOP_TIMEOUT: Duration = Duration::from_secs(60);
/// Grace period written when the containers run without an init (devloop's default, stated explicitly).
const NO_INIT_GRACE_SECS: u64 = 10;

const DOCKERFILE: &str = "FROM scratch\nCOPY bin/busybox /bin/busybox\nCOPY www /www\nENTRYPOINT \
                          [\"/bin/busybox\", \"httpd\", \"-f\", \"-v\", \"-p\", \"8080\", \"-h\", \"/www\"]\n";

struct Settings {
    edits: usize,
    debounce: Option<u64>,
    /// `init: true` in devloop.yaml and `--init` in the baseline's `docker run`.
    init: bool,
    poll_from: PollFrom,
    /// `sync.manual` for `www/**`: edits are synced, not rebuilt.
    sync: bool,
}

/// When polling for the new content starts, on both sides.
#[derive(Clone, Copy, PartialEq, Eq)]
enum PollFrom {
    /// Once the daemon reports the side's new container started (its `start` event): the default. A request
    /// that reaches the published port while the container is starting leaves the host's ARP entry for the
    /// container's address unresolved, and every request then waits for the next ARP probe (up to 1 s), so
    /// polling during the start would lengthen what it measures.
    Start,
    /// From the write, like a client that keeps reloading (`DEVLOOP_BENCH_POLL=eager`): shows that cost.
    Write,
}

impl PollFrom {
    fn describe(self) -> &'static str {
        match self {
            PollFrom::Start => "polled from the daemon's `start` event of the side's new container",
            PollFrom::Write => {
                "polled from the write (eager client: requests reach the container while it starts)"
            }
        }
    }
}

impl Settings {
    fn from_env() -> Result<Self> {
        // `cargo bench` passes `--bench`; other arguments (filters) are ignored.
        let quick = std::env::args().any(|a| a == "--quick")
            || std::env::var("DEVLOOP_BENCH_QUICK").is_ok_and(|v| !v.is_empty() && v != "0");
        let number = |var: &str| -> Result<Option<u64>> {
            match std::env::var(var) {
                Ok(v) if !v.is_empty() => {
                    Ok(Some(v.parse().with_context(|| {
                        format!("{var}: `{v}` is not a number")
                    })?))
                }
                _ => Ok(None),
            }
        };
        let edits = match number("DEVLOOP_BENCH_EDITS")? {
            Some(n) => usize::try_from(n).context("DEVLOOP_BENCH_EDITS")?,
            None if quick => 5,
            None => 20,
        };
        ensure!(edits > 0, "DEVLOOP_BENCH_EDITS must be at least 1");
        Ok(Settings {
            edits,
            debounce: number("DEVLOOP_BENCH_DEBOUNCE")?,
            init: std::env::var("DEVLOOP_BENCH_INIT").is_ok_and(|v| !v.is_empty() && v != "0"),
            poll_from: match std::env::var("DEVLOOP_BENCH_POLL").as_deref() {
                Ok("eager") => PollFrom::Write,
                Ok("" | "start") | Err(_) => PollFrom::Start,
                Ok(other) => bail!("DEVLOOP_BENCH_POLL: `{other}` is neither `start` nor `eager`"),
            },
            sync: std::env::var("DEVLOOP_BENCH_SYNC").is_ok_and(|v| !v.is_empty() && v != "0"),
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

/// The names of everything the run creates on the daemon.
struct Names {
    /// devloop's `metadata.name`: its container is `<project>-web`, its network `devloop-<project>`.
    project: String,
    /// The artifact devloop builds.
    image: String,
    /// The baseline's tag and container.
    baseline_tag: String,
    baseline_container: String,
}

impl Names {
    fn new() -> Names {
        let pid = std::process::id();
        Names {
            project: format!("dlbench-docker-{pid}"),
            image: format!("devloop-bench-docker-{pid}"),
            baseline_tag: format!("devloop-bench-docker-baseline-{pid}"),
            baseline_container: format!("devloop-bench-docker-baseline-{pid}"),
        }
    }

    fn devloop_container(&self) -> String {
        format!("{}-web", self.project)
    }

    fn network(&self) -> String {
        format!("devloop-{}", self.project)
    }

    /// The filter of devloop's labels for this project (src/deploy/docker.rs).
    fn project_label(&self) -> String {
        format!("label=dev.devloop.project={}", self.project)
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
        .args([
            "version",
            "--format",
            "{{.Server.Version}} (API {{.Server.APIVersion}}; CLI {{.Client.Version}})",
        ])
        .output()
        .context("`docker` not found")?;
    ensure!(
        docker.status.success(),
        "no Docker daemon answers: {}",
        String::from_utf8_lossy(&docker.stderr)
    );
    let names = Names::new();
    // Declared before everything that uses the daemon, so that it is dropped last: devloop is killed first.
    let cleanup = Cleanup::new(&names);
    let dir = tempfile::Builder::new()
        .prefix("devloop-bench-docker-")
        .tempdir()
        .context("temp dir")?;
    let ports = (free_port()?, free_port()?);

    println!(
        "Docker target benchmark: {} edits per side, devloop and the baseline interleaved",
        settings.edits
    );
    println!("devloop: {}", devloop.display());
    println!(
        "docker daemon: {}; cores: {}; debounce: {}; containers {}",
        String::from_utf8_lossy(&docker.stdout).trim(),
        std::thread::available_parallelism().map_or(0, |n| n.get()),
        settings
            .debounce
            .map_or_else(|| "devloop's default".to_string(), |d| format!("{d} ms")),
        if settings.init {
            "with an init (`init: true` / `docker run --init`)".to_string()
        } else {
            format!("without an init (stopGracePeriod: {NO_INIT_GRACE_SECS})")
        }
    );
    println!(
        "serving: GET /index.html every {} ms, {}",
        POLL_EVERY.as_millis(),
        settings.poll_from.describe()
    );
    if settings.sync {
        println!(
            "devloop: `sync.manual` for www/** — each edit is copied into the running container, no rebuild \
             (devloop's side polled from the write)"
        );
    }
    println!(
        "devloop: project `{}`, container `{}` on 127.0.0.1:{}; baseline: container `{}` on 127.0.0.1:{}",
        names.project,
        names.devloop_container(),
        ports.0,
        names.baseline_container,
        ports.1
    );
    let load_before = load_average();
    println!("load average before: {load_before}");

    let report = measure(&settings, &devloop, &names, &cleanup, dir.path(), ports)?;
    let load_after = load_average();

    println!();
    print!("{}", report.report(settings.init));
    println!("load average: before {load_before}, after {load_after}");
    if [&load_before, &load_after]
        .iter()
        .any(|l| load1(l) > 2.0 * cores())
    {
        println!(
            "note: the 1-minute load exceeded twice the core count: other work competed for the CPU; re-run on a \
             quieter machine before trusting the times"
        );
    }
    drop(cleanup);
    drop(dir);
    Ok(())
}

/// Everything the run may leave on the daemon, removed when dropped (also when the run fails half-way).
struct Cleanup {
    images: std::sync::Mutex<Vec<String>>,
    baseline_container: String,
    project_label: String,
    network: String,
}

impl Cleanup {
    fn new(names: &Names) -> Cleanup {
        Cleanup {
            images: Default::default(),
            baseline_container: names.baseline_container.clone(),
            project_label: names.project_label(),
            network: names.network(),
        }
    }

    fn add_image(&self, reference: &str) {
        if reference.is_empty() {
            return;
        }
        if let Ok(mut v) = self.images.lock() {
            v.push(reference.to_string());
        }
    }

    /// Every `tag` and `imageId` of the `buildFinished` events.
    fn add_built(&self, events: &[Value]) {
        for e in events.iter().filter(|e| e["type"] == "buildFinished") {
            for key in ["tag", "imageId"] {
                if let Some(s) = e["data"][key].as_str() {
                    self.add_image(s);
                }
            }
        }
    }
}

/// `docker ARGS`, its stderr reported unless it contains `ignore`.
fn docker_quietly(args: &[&str], ignore: &str) {
    match Command::new("docker").args(args).output() {
        Ok(o) if o.status.success() => {}
        Ok(o) => {
            let err = String::from_utf8_lossy(&o.stderr);
            let real: Vec<&str> = err
                .lines()
                .filter(|l| !l.contains(ignore) && !l.trim().is_empty())
                .collect();
            if !real.is_empty() {
                eprintln!("cleanup: docker {}: {}", args[0], real.join("; "));
            }
        }
        Err(e) => eprintln!("cleanup: docker {}: {e}", args[0]),
    }
}

impl Drop for Cleanup {
    fn drop(&mut self) {
        // Containers first (an image in use cannot be removed). devloop removes its own on Ctrl-C; these only
        // matter when the run failed before that.
        let mut containers = vec![self.baseline_container.clone()];
        if let Ok(o) = Command::new("docker")
            .args(["ps", "-aq", "--filter", &self.project_label])
            .output()
        {
            containers.extend(
                String::from_utf8_lossy(&o.stdout)
                    .lines()
                    .map(str::to_string),
            );
        }
        let mut args = vec!["rm", "-f"];
        args.extend(containers.iter().map(String::as_str));
        docker_quietly(&args, "No such container");
        if let Ok(o) = Command::new("docker")
            .args(["network", "ls", "-q", "--filter", &self.project_label])
            .output()
            && !o.stdout.is_empty()
        {
            docker_quietly(&["network", "rm", &self.network], "not found");
        }
        let mut list = self.images.lock().map(|v| v.clone()).unwrap_or_default();
        // Newest first: an image still parent of a later one cannot be removed before it.
        list.reverse();
        let mut seen = std::collections::HashSet::new();
        list.retain(|r| seen.insert(r.clone()));
        if !list.is_empty() {
            let mut args = vec!["rmi", "-f"];
            args.extend(list.iter().map(String::as_str));
            // An image may be listed twice (tag and ID); the second removal fails harmlessly.
            docker_quietly(&args, "No such image");
        }
    }
}

/// A running `devloop dev -o json`: its events with the instant each was read, killed when dropped.
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
        debounce: Option<u64>,
        stderr: PathBuf,
    ) -> Result<Dev> {
        let mut cmd = Command::new(devloop);
        cmd.args(["dev", "-o", "json"]);
        if let Some(d) = debounce {
            cmd.args(["--debounce", &d.to_string()]);
        }
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
            .with_context(|| format!("start `{}`", devloop.display()))?;
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

    /// Events that arrived without being waited for, with the instant each was read.
    fn drain(&mut self) -> Vec<(Instant, Value)> {
        let got: Vec<(Instant, Value)> = self.events.try_iter().collect();
        self.seen.extend(got.iter().map(|(_, e)| e.clone()));
        got
    }

    /// Ctrl-C: the exit status and how long stopping took.
    fn interrupt(&mut self) -> Result<(ExitStatus, Duration)> {
        let asked = Instant::now();
        let status = Command::new("kill")
            .args(["-INT", &self.pid().to_string()])
            .status()
            .context("kill -INT")?;
        ensure!(status.success(), "kill -INT {} failed", self.pid());
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
            .filter(|e| e["type"] != "log")
            .take(12)
            .map(Value::to_string)
            .collect::<Vec<_>>()
            .into_iter()
            .rev()
            .collect();
        let stderr = fs::read_to_string(&self.stderr).unwrap_or_default();
        let lines: Vec<&str> = stderr.lines().collect();
        let stderr_tail = lines[lines.len().saturating_sub(20)..].join("\n  ");
        format!(
            "\n\nlast events (logs left out):\n  {}\ndevloop stderr (last lines):\n  {stderr_tail}",
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

/// One container event from `docker events`: the container's name, the action and the daemon's time.
struct DaemonEvent {
    name: String,
    action: String,
    /// Nanoseconds since the Unix epoch (the daemon's clock: the same machine's).
    nanos: i128,
}

/// `docker events` for the benchmark's two containers, read on a thread; killed when dropped.
struct DaemonEvents {
    child: Child,
    events: Receiver<DaemonEvent>,
    /// Events received since the last [`DaemonEvents::clear`].
    received: Vec<DaemonEvent>,
}

impl DaemonEvents {
    fn start(names: &[&str]) -> Result<DaemonEvents> {
        let mut cmd = Command::new("docker");
        cmd.args([
            "events",
            "--format",
            "{{json .}}",
            "--filter",
            "type=container",
        ]);
        for n in names {
            cmd.args(["--filter", &format!("container={n}")]);
        }
        let mut child = cmd
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .context("docker events")?;
        let stdout = child.stdout.take().context("docker events' stdout")?;
        let names: Vec<String> = names.iter().map(|n| n.to_string()).collect();
        let (tx, rx) = mpsc::channel();
        std::thread::spawn(move || {
            for line in BufReader::new(stdout).lines() {
                let Ok(line) = line else { break };
                let Ok(v) = serde_json::from_str::<Value>(&line) else {
                    continue;
                };
                let name = v["Actor"]["Attributes"]["name"]
                    .as_str()
                    .unwrap_or_default()
                    .to_string();
                if !names.contains(&name) {
                    continue;
                }
                let event = DaemonEvent {
                    name,
                    action: v["Action"].as_str().unwrap_or_default().to_string(),
                    nanos: v["timeNano"].as_i64().map_or(0, i128::from),
                };
                if tx.send(event).is_err() {
                    break;
                }
            }
        });
        Ok(DaemonEvents {
            child,
            events: rx,
            received: Vec::new(),
        })
    }

    /// Forgets what was received so far.
    fn clear(&mut self) {
        self.events.try_iter().for_each(drop);
        self.received.clear();
    }

    /// Waits for `action` of container `name` at or after `after_nanos`; the instant it was read. `give_up` is
    /// asked every second (a reason ends the wait).
    fn wait_for(
        &mut self,
        name: &str,
        action: &str,
        after_nanos: i128,
        mut give_up: impl FnMut() -> Option<String>,
    ) -> Result<Instant> {
        let deadline = Instant::now() + EDIT_TIMEOUT;
        let matches =
            |e: &DaemonEvent| e.name == name && e.action == action && e.nanos >= after_nanos;
        if self.received.iter().any(matches) {
            return Ok(Instant::now());
        }
        loop {
            let left = deadline.saturating_duration_since(Instant::now());
            match self.events.recv_timeout(left.min(Duration::from_secs(1))) {
                Ok(event) => {
                    let hit = matches(&event);
                    self.received.push(event);
                    if hit {
                        return Ok(Instant::now());
                    }
                }
                Err(RecvTimeoutError::Disconnected) => bail!("`docker events` ended"),
                Err(RecvTimeoutError::Timeout) => {
                    if let Some(reason) = give_up() {
                        bail!("no `{action}` event of container `{name}`: {reason}");
                    }
                    ensure!(
                        Instant::now() < deadline,
                        "no `{action}` event of container `{name}` within {EDIT_TIMEOUT:?}"
                    );
                }
            }
        }
    }

    /// Everything received since the last [`DaemonEvents::clear`].
    fn received(&mut self) -> &[DaemonEvent] {
        self.received.extend(self.events.try_iter());
        &self.received
    }
}

impl Drop for DaemonEvents {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// A container's replacement as the daemon reports it, in milliseconds after the save.
#[derive(Default, Clone, Copy)]
struct Lifecycle {
    kill: Option<f64>,
    die: Option<f64>,
    destroy: Option<f64>,
    create: Option<f64>,
    start: Option<f64>,
}

impl Lifecycle {
    /// The first of each action of container `name` after the save.
    fn of(events: &[DaemonEvent], name: &str, saved_nanos: i128) -> Lifecycle {
        let first = |action: &str| {
            events
                .iter()
                .filter(|e| e.name == name && e.nanos >= saved_nanos)
                .find(|e| e.action == action || e.action.starts_with(&format!("{action}:")))
                .map(|e| (e.nanos - saved_nanos) as f64 / 1e6)
        };
        Lifecycle {
            kill: first("kill"),
            die: first("die"),
            destroy: first("destroy"),
            create: first("create"),
            start: first("start"),
        }
    }

    fn span(from: Option<f64>, to: Option<f64>) -> f64 {
        match (from, to) {
            (Some(a), Some(b)) => b - a,
            _ => f64::NAN,
        }
    }

    /// Stop of the old container: the first signal to its exit.
    fn stop(&self) -> f64 {
        Self::span(self.kill, self.die)
    }

    fn remove(&self) -> f64 {
        Self::span(self.die, self.destroy)
    }

    fn create(&self) -> f64 {
        Self::span(self.destroy, self.create)
    }

    fn start(&self) -> f64 {
        Self::span(self.create, self.start)
    }
}

/// One measured devloop edit (milliseconds).
struct DevEdit {
    /// write → the port serves the new content.
    serving: f64,
    /// devloop's own times, from the first file event.
    built: f64,
    applied: f64,
    ready: f64,
    /// `buildFinished.durationMs`.
    build: f64,
    /// write → `buildStarted` read on devloop's stdout.
    to_build_started: f64,
    /// write → `iteration` read.
    iteration_read: f64,
    lifecycle: Lifecycle,
    builds: usize,
    cancelled: usize,
    /// Log lines devloop streamed during the edit (httpd -v logs each poll).
    logs: usize,
    /// Polling requests that hung (see [`Poll`]).
    hung: usize,
    /// write → the daemon's `start` event read, when polling waited for it.
    poll_from: Option<f64>,
    warnings: Vec<String>,
}

impl DevEdit {
    fn before_build(&self) -> f64 {
        self.built - self.build
    }

    /// Stop of the old container, its removal, create and start of the new one (and devloop's calls around them).
    fn deploy(&self) -> f64 {
        self.applied - self.built
    }

    /// The daemon's `start` event → the port serving the new content.
    fn start_to_serving(&self) -> f64 {
        self.lifecycle.start.map_or(f64::NAN, |s| self.serving - s)
    }

    fn ready_wait(&self) -> f64 {
        self.ready - self.applied
    }
}

/// One measured baseline edit (milliseconds).
struct BaselineEdit {
    serving: f64,
    build: f64,
    rm: f64,
    run: f64,
    /// `docker run` exited → the port serves the new content (negative: it served before the CLI exited).
    run_to_serving: f64,
    lifecycle: Lifecycle,
    hung: usize,
    /// write → the daemon's `start` event read, when polling waited for it.
    poll_from: Option<f64>,
}

impl BaselineEdit {
    fn start_to_serving(&self) -> f64 {
        self.lifecycle.start.map_or(f64::NAN, |s| self.serving - s)
    }
}

struct Report {
    /// Edits were synced, not rebuilt.
    sync: bool,
    devloop: Vec<DevEdit>,
    baseline: Vec<BaselineEdit>,
    first_ready: Value,
    stop_took: Duration,
    stop_status: ExitStatus,
    left_over: Vec<String>,
    stray: usize,
    baseline_builder: String,
}

/// Both projects, devloop's start, the interleaved edits and devloop's stop.
fn measure(
    settings: &Settings,
    devloop: &Path,
    names: &Names,
    cleanup: &Cleanup,
    root: &Path,
    ports: (u16, u16),
) -> Result<Report> {
    let project = root.join("devloop");
    let baseline = root.join("baseline");
    write_project(&project, "<h1>devloop v0</h1>\n")?;
    // The devloop.yaml in the baseline's copy is never read: it only keeps the two directories alike.
    write_project(&baseline, "<h1>baseline v0</h1>\n")?;
    let container = if settings.init {
        "        init: true\n".to_string()
    } else {
        String::new()
    };
    let sync = if settings.sync {
        "      sync:\n        manual:\n          - src: 'www/**'\n            dest: /www\n            strip: www/\n"
    } else {
        ""
    };
    let grace = if settings.init {
        String::new()
    } else {
        format!("    stopGracePeriod: {NO_INIT_GRACE_SECS}\n")
    };
    fs::write(
        project.join("devloop.yaml"),
        format!(
            "apiVersion: devloop/v1alpha1\nkind: Config\nmetadata:\n  name: {project}\nbuild:\n  artifacts:\n    - \
             image: {image}\n{sync}deploy:\n  docker:\n{grace}    containers:\n      - name: web\n        image: \
             {image}\n        ports: [\"127.0.0.1:{port}:8080\"]\n{container}",
            project = names.project,
            image = names.image,
            port = ports.0,
        ),
    )?;
    let devloop_container = names.devloop_container();
    let mut daemon = DaemonEvents::start(&[&devloop_container, &names.baseline_container])?;
    // `docker events` subscribes asynchronously: give it a moment before anything happens.
    std::thread::sleep(Duration::from_millis(300));

    let dev_side = DevSide {
        project: &project,
        container: &devloop_container,
        port: ports.0,
    };
    let baseline_side = Baseline {
        dir: &baseline,
        tag: &names.baseline_tag,
        container: &names.baseline_container,
        port: ports.1,
        init: settings.init,
    };
    let baseline_builder = baseline_side.builder()?;
    // The baseline's first container (`docker rm -f` of a missing container is not an error).
    baseline_side
        .edit(
            cleanup,
            &mut daemon,
            PollFrom::Start,
            "<h1>baseline v0</h1>\n",
        )
        .context("the baseline's first build and run")?;

    let mut dev = Dev::start(
        devloop,
        &project,
        &root.join("cache"),
        settings.debounce,
        root.join("devloop.stderr.log"),
    )?;
    let first = dev.until("iteration", FIRST_ITERATION_TIMEOUT)?;
    cleanup.add_built(&dev.seen);
    let first_ready = first
        .last()
        .map(|(_, e)| e["data"].clone())
        .unwrap_or_default();
    Poll::start(ports.0, "<h1>devloop v0</h1>\n")
        .wait(Instant::now(), EDIT_TIMEOUT)
        .with_context(|| format!("devloop's first container does not serve{}", dev.tail()))?;
    eprintln!(
        "first iteration: built {} ms, ready {} ms after devloop started",
        first_ready["builtMs"], first_ready["readyMs"]
    );

    let mut devloop_edits = Vec::new();
    let mut baseline_edits = Vec::new();
    let mut stray = 0;
    // Round 0 warms both sides up (untimed); then devloop first in even rounds, the baseline first in odd ones.
    for round in 0..=settings.edits {
        let warm_up = round == 0;
        let label = if warm_up {
            "warm-up".to_string()
        } else {
            format!("{round:>2}/{}", settings.edits)
        };
        let devloop_first = round % 2 == 0;
        for side in 0..2 {
            std::thread::sleep(EDIT_GAP);
            let between = dev.drain();
            let unexpected: Vec<&Value> = between
                .iter()
                .map(|(_, e)| e)
                .filter(|e| !matches!(e["type"].as_str(), Some("log")))
                .collect();
            if !unexpected.is_empty() {
                stray += unexpected.len();
                eprintln!("unexpected devloop events between edits: {unexpected:?}");
                ensure!(
                    !unexpected
                        .iter()
                        .any(|e| matches!(e["type"].as_str(), Some("buildStarted" | "iteration"))),
                    "devloop started an iteration without an edit of its project{}",
                    dev.tail()
                );
            }
            if (side == 0) == devloop_first {
                let content = format!("<h1>devloop edit {round}</h1>\n");
                // A synced edit starts no container: poll from the write.
                let poll_from = if settings.sync {
                    PollFrom::Write
                } else {
                    settings.poll_from
                };
                let edit = dev_side
                    .edit(
                        &mut dev,
                        &mut daemon,
                        poll_from,
                        settings.sync,
                        cleanup,
                        &content,
                    )
                    .with_context(|| format!("devloop edit {round}"))?;
                let lc = edit.lifecycle;
                eprintln!(
                    "edit {label} devloop : serving {:>5.0} ms (readyMs {:>5.0}); before build {:>4.0}, build {:>4.0}, \
                     deploy {:>4.0} (stop {:>4.0}, remove {:>3.0}, create {:>3.0}, start {:>3.0}), start→serving \
                     {:>3.0}, ready wait {:>3.0}; {} log events, {} polls hung{}",
                    edit.serving,
                    edit.ready,
                    edit.before_build(),
                    edit.build,
                    edit.deploy(),
                    lc.stop(),
                    lc.remove(),
                    lc.create(),
                    lc.start(),
                    edit.start_to_serving(),
                    edit.ready_wait(),
                    edit.logs,
                    edit.hung,
                    if edit.warnings.is_empty() {
                        String::new()
                    } else {
                        format!("; warnings: {}", edit.warnings.join(" | "))
                    }
                );
                if !warm_up {
                    devloop_edits.push(edit);
                }
            } else {
                let content = format!("<h1>baseline edit {round}</h1>\n");
                let edit = baseline_side
                    .edit(cleanup, &mut daemon, settings.poll_from, &content)
                    .with_context(|| format!("baseline edit {round}"))?;
                eprintln!(
                    "edit {label} baseline: serving {:>5.0} ms; docker build {:>4.0}, docker rm -f {:>4.0} (stop {:>3.0}, \
                     remove {:>3.0}), docker run -d {:>4.0} (create {:>3.0}, start {:>3.0}), run→serving {:>3.0}; {} polls hung",
                    edit.serving,
                    edit.build,
                    edit.rm,
                    edit.lifecycle.stop(),
                    edit.lifecycle.remove(),
                    edit.run,
                    edit.lifecycle.create(),
                    edit.lifecycle.start(),
                    edit.run_to_serving,
                    edit.hung,
                );
                if !warm_up {
                    baseline_edits.push(edit);
                }
            }
        }
    }
    std::thread::sleep(EDIT_GAP);
    let after = dev.drain();
    stray += after.iter().filter(|(_, e)| e["type"] != "log").count();
    let (stop_status, stop_took) = dev.interrupt()?;
    cleanup.add_built(&dev.seen);
    drop(dev);
    let mut left_over = Vec::new();
    let ps = Command::new("docker")
        .args([
            "ps",
            "-a",
            "--format",
            "{{.Names}}",
            "--filter",
            &names.project_label(),
        ])
        .output()
        .context("docker ps")?;
    left_over.extend(
        String::from_utf8_lossy(&ps.stdout)
            .lines()
            .map(|n| format!("container {n}")),
    );
    let net = Command::new("docker")
        .args([
            "network",
            "ls",
            "--format",
            "{{.Name}}",
            "--filter",
            &names.project_label(),
        ])
        .output()
        .context("docker network ls")?;
    left_over.extend(
        String::from_utf8_lossy(&net.stdout)
            .lines()
            .map(|n| format!("network {n}")),
    );
    Ok(Report {
        sync: settings.sync,
        devloop: devloop_edits,
        baseline: baseline_edits,
        first_ready,
        stop_took,
        stop_status,
        left_over,
        stray,
        baseline_builder,
    })
}

/// Writes a project like examples/hello: busybox, the page, the Dockerfile.
fn write_project(dir: &Path, page: &str) -> Result<()> {
    fs::create_dir_all(dir.join("bin"))?;
    fs::create_dir_all(dir.join("www"))?;
    fs::write(dir.join("Dockerfile"), DOCKERFILE)?;
    fs::copy("/bin/busybox", dir.join("bin/busybox")).context("copy /bin/busybox")?;
    fs::write(dir.join("www/index.html"), page)?;
    Ok(())
}

/// devloop's side: its project, its container's Docker name, its published port.
struct DevSide<'a> {
    project: &'a Path,
    container: &'a str,
    port: u16,
}

impl DevSide<'_> {
    /// One devloop edit: write, poll the port until it serves `content`, then devloop's `iteration`.
    fn edit(
        &self,
        dev: &mut Dev,
        daemon: &mut DaemonEvents,
        poll_from: PollFrom,
        sync: bool,
        cleanup: &Cleanup,
        content: &str,
    ) -> Result<DevEdit> {
        let (project, container, port) = (self.project, self.container, self.port);
        daemon.clear();
        let saved_nanos = unix_nanos();
        let written = Instant::now();
        fs::write(project.join("www/index.html"), content)?;
        let started = match poll_from {
            PollFrom::Start => {
                let waited = daemon.wait_for(container, "start", saved_nanos, || {
                    match dev.child.try_wait() {
                        Ok(Some(status)) => Some(format!("devloop exited ({status})")),
                        _ => None,
                    }
                });
                match waited {
                    Ok(at) => Some(at),
                    Err(e) => {
                        dev.drain();
                        bail!("{e:#}{}", dev.tail());
                    }
                }
            }
            PollFrom::Write => None,
        };
        let poll = Poll::start(port, content);
        let served = match poll.wait(written, EDIT_TIMEOUT) {
            Ok(at) => at,
            Err(e) => {
                dev.drain();
                bail!("{e:#}{}", dev.tail());
            }
        };
        let events = dev.until("iteration", EDIT_TIMEOUT)?;
        let values: Vec<Value> = events.iter().map(|(_, e)| e.clone()).collect();
        cleanup.add_built(&values);
        // The daemon's events of this replacement have all happened before the port served.
        std::thread::sleep(Duration::from_millis(50));
        let lifecycle = Lifecycle::of(daemon.received(), container, saved_nanos);

        let ms = |d: Duration| d.as_secs_f64() * 1000.0;
        let of = |ty: &'static str| events.iter().filter(move |(_, e)| e["type"] == ty);
        let num = |e: &Value, key: &str| e["data"][key].as_f64().unwrap_or(f64::NAN);
        let (received, iteration) = events.last().context("no events")?;
        let builds = of("buildStarted").count();
        if sync {
            ensure!(
                iteration["data"]["synced"]
                    .as_array()
                    .is_some_and(|r| r.len() == 1)
                    && builds == 0
                    && of("synced").count() == 1,
                "the edit was not synced without a build: {values:?}"
            );
        } else {
            ensure!(
                iteration["data"]["rebuilt"]
                    .as_array()
                    .is_some_and(|r| r.len() == 1),
                "the edit did not rebuild the image: {iteration}"
            );
            ensure!(
                builds == 1 && of("buildFinished").count() == 1,
                "the edit caused {builds} builds (expected exactly one): {values:?}"
            );
        }
        Ok(DevEdit {
            serving: ms(served.saturating_duration_since(written)),
            built: num(iteration, "builtMs"),
            applied: num(iteration, "appliedMs"),
            ready: num(iteration, "readyMs"),
            build: of("buildFinished").map(|(_, e)| num(e, "durationMs")).sum(),
            to_build_started: of("buildStarted")
                .next()
                .map(|(at, _)| ms(at.saturating_duration_since(written)))
                .unwrap_or(f64::NAN),
            iteration_read: ms(received.saturating_duration_since(written)),
            lifecycle,
            builds,
            cancelled: of("iterationCancelled").count(),
            logs: of("log").count(),
            hung: poll.hung(),
            poll_from: started.map(|at| ms(at.saturating_duration_since(written))),
            warnings: of("warning")
                .filter_map(|(_, e)| e["data"]["message"].as_str().map(str::to_string))
                .collect(),
        })
    }
}

/// The scripted baseline: three commands in sequence, each must succeed before the next (as `&&` would).
struct Baseline<'a> {
    dir: &'a Path,
    tag: &'a str,
    container: &'a str,
    port: u16,
    init: bool,
}

impl Baseline<'_> {
    /// Which builder plain `docker build` uses here (the CLI falls back to the classic one when buildx is missing).
    fn builder(&self) -> Result<String> {
        let out = Command::new("docker")
            .args(["buildx", "version"])
            .output()
            .context("docker buildx version")?;
        Ok(if out.status.success() {
            format!(
                "BuildKit via buildx {}",
                String::from_utf8_lossy(&out.stdout).trim()
            )
        } else {
            "the classic builder (no buildx installed: the CLI falls back to it, printing a deprecation notice)"
                .to_string()
        })
    }

    /// Write `content`, then `docker build -q -t TAG DIR`, `docker rm -f NAME`, `docker run -d [--init] --name NAME
    /// -p 127.0.0.1:PORT:8080 TAG`, then poll the port.
    fn edit(
        &self,
        cleanup: &Cleanup,
        daemon: &mut DaemonEvents,
        poll_from: PollFrom,
        content: &str,
    ) -> Result<BaselineEdit> {
        daemon.clear();
        let saved_nanos = unix_nanos();
        let written = Instant::now();
        fs::write(self.dir.join("www/index.html"), content)?;
        let mut poll = (poll_from == PollFrom::Write).then(|| Poll::start(self.port, content));
        let dir = self.dir.to_string_lossy();
        let build = command(&["build", "-q", "-t", self.tag, &dir])?;
        cleanup.add_image(build.stdout.trim());
        let rm = command(&["rm", "-f", self.container])?;
        let publish = format!("127.0.0.1:{}:8080", self.port);
        let mut args = vec!["run", "-d"];
        if self.init {
            args.push("--init");
        }
        args.extend(["--name", self.container, "-p", &publish, self.tag]);
        // The daemon reports `start` before the CLI exits: the poll may begin while `docker run` is finishing.
        let run = Running::spawn(&args)?;
        let mut started = None;
        if poll_from == PollFrom::Start {
            started = Some(daemon.wait_for(self.container, "start", saved_nanos, || None)?);
            poll = Some(Poll::start(self.port, content));
        }
        let run = run.finish()?;
        let ran = Instant::now();
        let poll = poll.context("a poll")?;
        let served = poll.wait(written, EDIT_TIMEOUT)?;
        std::thread::sleep(Duration::from_millis(50));
        let lifecycle = Lifecycle::of(daemon.received(), self.container, saved_nanos);
        let ms = |d: Duration| d.as_secs_f64() * 1000.0;
        Ok(BaselineEdit {
            serving: ms(served.saturating_duration_since(written)),
            build: build.ms,
            rm: rm.ms,
            run: run.ms,
            run_to_serving: signed_ms(ran, served),
            lifecycle,
            hung: poll.hung(),
            poll_from: started.map(|at| ms(at.saturating_duration_since(written))),
        })
    }
}

/// A `docker` command running.
struct Running {
    child: Child,
    args: String,
    started: Instant,
}

impl Running {
    fn spawn(args: &[&str]) -> Result<Running> {
        let started = Instant::now();
        let child = Command::new("docker")
            .args(args)
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .with_context(|| format!("docker {}", args[0]))?;
        Ok(Running {
            child,
            args: args.join(" "),
            started,
        })
    }

    /// Waits for it; fails when it failed.
    fn finish(self) -> Result<Ran> {
        let out = self
            .child
            .wait_with_output()
            .with_context(|| format!("docker {}", self.args))?;
        let ms = self.started.elapsed().as_secs_f64() * 1000.0;
        ensure!(
            out.status.success(),
            "`docker {}` failed: {}",
            self.args,
            String::from_utf8_lossy(&out.stderr)
        );
        Ok(Ran {
            ms,
            stdout: String::from_utf8_lossy(&out.stdout).into_owned(),
        })
    }
}

struct Ran {
    ms: f64,
    stdout: String,
}

/// `docker ARGS`, timed; fails when it fails.
fn command(args: &[&str]) -> Result<Ran> {
    Running::spawn(args)?.finish()
}

/// Polls `GET /index.html` for `content` from a thread of its own: a new request every [`POLL_EVERY`], whether or
/// not earlier ones have answered. A request that reaches the published port while the new container is starting
/// hangs about a second (docker-proxy accepts, and its connection to the container waits for a SYN retransmit);
/// a poller that waited for it would charge that second to whichever side happened to poll at that moment.
struct Poll {
    served: Receiver<Instant>,
    shared: Arc<Polling>,
}

/// What the polling threads share.
struct Polling {
    port: u16,
    want: String,
    done: AtomicBool,
    /// Requests that took longer than [`HUNG`].
    hung: AtomicUsize,
    in_flight: AtomicUsize,
    /// The last body that was not `want`, for error messages.
    last: Mutex<Option<String>>,
}

impl Polling {
    /// One request; sends the instant it got `want`.
    fn request(&self, served: &mpsc::Sender<Instant>) {
        let asked = Instant::now();
        let body = fetch(self.port);
        let at = Instant::now();
        if at - asked >= HUNG {
            self.hung.fetch_add(1, Ordering::SeqCst);
        }
        match body {
            Some(b) if b == self.want => {
                let _ = served.send(at);
            }
            Some(b) => {
                if let Ok(mut last) = self.last.lock() {
                    *last = Some(b);
                }
            }
            None => {}
        }
        self.in_flight.fetch_sub(1, Ordering::SeqCst);
    }
}

/// A request this slow hung (one answered by busybox httpd on this machine takes a few milliseconds).
const HUNG: Duration = Duration::from_millis(300);
/// A bound on requests in flight (each ends within `CONNECT_TIMEOUT` + `READ_TIMEOUT`).
const MAX_IN_FLIGHT: usize = 512;

impl Poll {
    fn start(port: u16, content: &str) -> Poll {
        let (tx, served) = mpsc::channel();
        let shared = Arc::new(Polling {
            port,
            want: content.to_string(),
            done: AtomicBool::new(false),
            hung: AtomicUsize::new(0),
            in_flight: AtomicUsize::new(0),
            last: Mutex::new(None),
        });
        let polling = shared.clone();
        std::thread::spawn(move || {
            while !polling.done.load(Ordering::SeqCst) {
                if polling.in_flight.fetch_add(1, Ordering::SeqCst) < MAX_IN_FLIGHT {
                    let (p, tx) = (polling.clone(), tx.clone());
                    let spawned = std::thread::Builder::new()
                        .stack_size(64 * 1024)
                        .spawn(move || p.request(&tx));
                    if spawned.is_err() {
                        polling.in_flight.fetch_sub(1, Ordering::SeqCst);
                    }
                } else {
                    polling.in_flight.fetch_sub(1, Ordering::SeqCst);
                }
                std::thread::sleep(POLL_EVERY);
            }
        });
        Poll { served, shared }
    }

    /// The instant the first request got `content` (requests still in flight are left to end on their own).
    fn wait(&self, since: Instant, timeout: Duration) -> Result<Instant> {
        let left = (since + timeout).saturating_duration_since(Instant::now());
        let first = self.served.recv_timeout(left);
        self.shared.done.store(true, Ordering::SeqCst);
        match first {
            // Several requests may have got it; the earliest counts.
            Ok(at) => Ok(self.served.try_iter().fold(at, Instant::min)),
            Err(_) => bail!(
                "127.0.0.1:{} did not serve {:?} within {timeout:?} (last other body: {:?})",
                self.shared.port,
                self.shared.want,
                self.shared
                    .last
                    .lock()
                    .map(|l| l.clone())
                    .unwrap_or_default()
            ),
        }
    }

    fn hung(&self) -> usize {
        self.shared.hung.load(Ordering::SeqCst)
    }
}

impl Drop for Poll {
    fn drop(&mut self) {
        self.shared.done.store(true, Ordering::SeqCst);
    }
}

/// `GET /index.html` over HTTP/1.0; the body of a 200 answer.
fn fetch(port: u16) -> Option<String> {
    let addr = SocketAddr::from(([127, 0, 0, 1], port));
    let mut s = TcpStream::connect_timeout(&addr, CONNECT_TIMEOUT).ok()?;
    s.set_read_timeout(Some(READ_TIMEOUT)).ok()?;
    s.set_write_timeout(Some(READ_TIMEOUT)).ok()?;
    s.write_all(b"GET /index.html HTTP/1.0\r\nHost: 127.0.0.1\r\n\r\n")
        .ok()?;
    let mut buf = Vec::new();
    s.read_to_end(&mut buf).ok()?;
    let text = String::from_utf8(buf).ok()?;
    let (head, body) = text.split_once("\r\n\r\n")?;
    let status = head.lines().next()?;
    status
        .split_whitespace()
        .nth(1)
        .is_some_and(|code| code == "200")
        .then(|| body.to_string())
}

fn free_port() -> Result<u16> {
    Ok(std::net::TcpListener::bind("127.0.0.1:0")
        .context("bind 127.0.0.1:0")?
        .local_addr()?
        .port())
}

/// `to` − `from` in milliseconds, negative when `to` came first.
fn signed_ms(from: Instant, to: Instant) -> f64 {
    match to.checked_duration_since(from) {
        Some(d) => d.as_secs_f64() * 1000.0,
        None => -(from.duration_since(to).as_secs_f64() * 1000.0),
    }
}

fn unix_nanos() -> i128 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_nanos() as i128)
}

/// A row of the report: median, p90, min, max (`-` when nothing was measured).
fn row(out: &mut String, name: &str, xs: &[f64]) {
    let xs: Vec<f64> = xs.iter().copied().filter(|x| x.is_finite()).collect();
    if xs.is_empty() {
        let _ = writeln!(
            out,
            "  {name:<44} {:>7}  {:>7}  {:>7}  {:>7}",
            "-", "-", "-", "-"
        );
        return;
    }
    let _ = writeln!(
        out,
        "  {name:<44} {:>7.0}  {:>7.0}  {:>7.0}  {:>7.0}",
        percentile(&xs, 50.0),
        percentile(&xs, 90.0),
        xs.iter().copied().fold(f64::INFINITY, f64::min),
        xs.iter().copied().fold(f64::NEG_INFINITY, f64::max),
    );
}

impl Report {
    fn report(&self, init: bool) -> String {
        let mut out = String::new();
        let dev =
            |f: &dyn Fn(&DevEdit) -> f64| -> Vec<f64> { self.devloop.iter().map(f).collect() };
        let base = |f: &dyn Fn(&BaselineEdit) -> f64| -> Vec<f64> {
            self.baseline.iter().map(f).collect()
        };
        let _ = writeln!(
            out,
            "save→serving over {} + {} edits (ms)                  median      p90      min      max",
            self.devloop.len(),
            self.baseline.len()
        );
        row(
            &mut out,
            if self.sync {
                "devloop dev (file sync)"
            } else {
                "devloop dev"
            },
            &dev(&|e| e.serving),
        );
        row(
            &mut out,
            "baseline: build && rm -f && run, poll",
            &base(&|e| e.serving),
        );
        let _ = writeln!(out, "devloop, where the time goes:");
        let rows: [(&str, Vec<f64>); 14] = [
            ("write → buildStarted read", dev(&|e| e.to_build_started)),
            (
                "before the build (builtMs − build)",
                dev(&|e| e.before_build()),
            ),
            ("build (buildFinished)", dev(&|e| e.build)),
            ("deploy (appliedMs − builtMs)", dev(&|e| e.deploy())),
            (
                "  stop the old container (kill → die)",
                dev(&|e| e.lifecycle.stop()),
            ),
            (
                "  remove it (die → destroy)",
                dev(&|e| e.lifecycle.remove()),
            ),
            (
                "  create the new one (destroy → create)",
                dev(&|e| e.lifecycle.create()),
            ),
            ("  start it (create → start)", dev(&|e| e.lifecycle.start())),
            (
                "  build → kill (builtMs → kill)",
                dev(&|e| e.lifecycle.kill.map_or(f64::NAN, |k| k - e.built)),
            ),
            (
                "write → start event read (poll begins)",
                dev(&|e| e.poll_from.unwrap_or(f64::NAN)),
            ),
            ("start → serving", dev(&|e| e.start_to_serving())),
            ("ready wait (readyMs − appliedMs)", dev(&|e| e.ready_wait())),
            ("save→ready, devloop's readyMs", dev(&|e| e.ready)),
            ("write → iteration read", dev(&|e| e.iteration_read)),
        ];
        for (name, xs) in &rows {
            row(&mut out, name, xs);
        }
        let _ = writeln!(out, "baseline, where the time goes:");
        let rows: [(&str, Vec<f64>); 10] = [
            ("docker build -q", base(&|e| e.build)),
            ("docker rm -f", base(&|e| e.rm)),
            ("  stop (kill → die)", base(&|e| e.lifecycle.stop())),
            ("  remove (die → destroy)", base(&|e| e.lifecycle.remove())),
            ("docker run -d", base(&|e| e.run)),
            (
                "  create (destroy → create)",
                base(&|e| e.lifecycle.create()),
            ),
            ("  start (create → start)", base(&|e| e.lifecycle.start())),
            (
                "write → start event read (poll begins)",
                base(&|e| e.poll_from.unwrap_or(f64::NAN)),
            ),
            ("start → serving", base(&|e| e.start_to_serving())),
            ("docker run exited → serving", base(&|e| e.run_to_serving)),
        ];
        for (name, xs) in &rows {
            row(&mut out, name, xs);
        }
        let builds: usize = self.devloop.iter().map(|e| e.builds).sum();
        let cancelled: usize = self.devloop.iter().map(|e| e.cancelled).sum();
        let warnings: usize = self.devloop.iter().map(|e| e.warnings.len()).sum();
        let logs: usize = self.devloop.iter().map(|e| e.logs).sum();
        let hung: usize = self.devloop.iter().map(|e| e.hung).sum();
        let baseline_hung: usize = self.baseline.iter().map(|e| e.hung).sum();
        let _ = writeln!(
            out,
            "devloop: {builds} builds for {} edits, {cancelled} cancelled iterations, {} events outside edits (logs \
             aside), {warnings} warnings, {logs} log events during the edits; first iteration built {} ms, ready {} \
             ms after start",
            self.devloop.len(),
            self.stray,
            self.first_ready["builtMs"],
            self.first_ready["readyMs"],
        );
        let _ = writeln!(
            out,
            "polling requests that hung ≥ {} ms (made while a container was starting): devloop {hung}, baseline \
             {baseline_hung}",
            HUNG.as_millis()
        );
        let _ = writeln!(
            out,
            "baseline: three `docker` commands in sequence (each must succeed), {}; build by {}",
            if init {
                "`docker run --init` like devloop's `init: true`"
            } else {
                "no --init"
            },
            self.baseline_builder
        );
        let dm = percentile(&dev(&|e| e.serving), 50.0);
        let bm = percentile(&base(&|e| e.serving), 50.0);
        let ratio = dm / bm;
        let _ = writeln!(out, "devloop / baseline (medians): {ratio:.2}");
        let _ = writeln!(
            out,
            "median save→serving ≤ {MEDIAN_TARGET_MS:.0} ms: {dm:.0} ms  {}",
            verdict(dm <= MEDIAN_TARGET_MS)
        );
        let _ = writeln!(
            out,
            "devloop ≤ {RATIO_TARGET}× baseline: {ratio:.2}×  {}",
            verdict(ratio <= RATIO_TARGET)
        );
        // Issue 11: a replacement in `dev` never waits out the grace period (devloop warns when a stop had to be forced).
        let forced = self
            .devloop
            .iter()
            .flat_map(|e| &e.warnings)
            .filter(|w| w.contains("was killed"))
            .count();
        let _ = writeln!(
            out,
            "no replacement waited for the grace period (forced-stop warnings: {forced})  {}",
            verdict(forced == 0)
        );
        // Stopped by SIGINT after a clean stop: 128 + 2.
        let clean = self.stop_status.code() == Some(130) && self.left_over.is_empty();
        let _ = writeln!(
            out,
            "Ctrl-C: stopped in {} ms, {}, {}  {}",
            self.stop_took.as_millis(),
            self.stop_status,
            if self.left_over.is_empty() {
                "its container and network removed".to_string()
            } else {
                format!("left over: {}", self.left_over.join(", "))
            },
            verdict(clean)
        );
        out
    }
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
