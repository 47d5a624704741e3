//! Benchmark of an API server restart during `devloop dev`: the in-process fake API server goes away for a while
//! (listening socket closed, open connections dropped) and comes back on the same address → the time from its
//! return to an edit being ready, for `devloop dev` (save → `iteration`) against `kubectl apply --server-side` +
//! `kubectl rollout status` started at the return, medians over several rounds, plus how long devloop took to say
//! the cluster is back and how many events it emitted during the outage. It never asserts timings and deletes
//! what it created.
//!
//! Run: `cargo bench --bench outage` (`-- --quick` or `DEVLOOP_BENCH_QUICK=1`: 3 rounds of 5 s outages instead of
//! 5 rounds of 15 s). `DEVLOOP_BENCH_OUTAGE_S` and `DEVLOOP_BENCH_ROUNDS` set them. Both clients reach the fake
//! through the TLS front of benches/support (kubectl sends credentials only over TLS). Needs a Docker daemon
//! (`devloop dev` connects to it), `kubectl` and `openssl` on `PATH` (`DEVLOOP_BENCH_KUBECTL` names another kubectl);
//! `CARGO_BIN_EXE_devloop` names the devloop binary to time.

// A benchmark's report is its output.
#![allow(clippy::print_stdout, clippy::print_stderr)]

// Benches are compiled with `cfg(test)` but without the test harness: the fake's unit-test modules lose their
// `#[test]` functions and with them the use of their imports.
#[allow(unused_imports)]
#[path = "../tests/support"]
mod support {
    //! Only the fake API server of the test support and its TLS front (the rest needs the test harness).
    pub mod fake_apiserver;
    pub mod tls_front;
}

use std::fs;
use std::io::{BufRead as _, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitCode, Stdio};
use std::sync::mpsc::{self, Receiver, RecvTimeoutError};
use std::time::{Duration, Instant};

use anyhow::{Context as _, Result, bail, ensure};
use serde_json::Value;
use support::fake_apiserver::FakeApiServer;

const PROJECT: &str = "outagebench";
/// Bound on waiting for any one thing.
const TIMEOUT: Duration = Duration::from_secs(120);

struct Settings {
    rounds: usize,
    outage: Duration,
    kubectl: String,
}

impl Settings {
    fn from_env() -> Settings {
        let quick = std::env::args().any(|a| a == "--quick")
            || std::env::var_os("DEVLOOP_BENCH_QUICK").is_some();
        let number = |name: &str, default: u64| {
            std::env::var(name)
                .ok()
                .and_then(|v| v.parse().ok())
                .unwrap_or(default)
        };
        Settings {
            rounds: number("DEVLOOP_BENCH_ROUNDS", if quick { 3 } else { 5 }) as usize,
            outage: Duration::from_secs(number(
                "DEVLOOP_BENCH_OUTAGE_S",
                if quick { 5 } else { 15 },
            )),
            kubectl: std::env::var("DEVLOOP_BENCH_KUBECTL").unwrap_or_else(|_| "kubectl".into()),
        }
    }
}

fn main() -> ExitCode {
    match run() {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("error: {e:#}");
            ExitCode::FAILURE
        }
    }
}

/// A Deployment whose pod template carries `version` (an edit changes it: a new rollout, no image build).
fn manifest(version: usize) -> String {
    format!(
        "apiVersion: apps/v1\nkind: Deployment\nmetadata:\n  name: web\nspec:\n  replicas: 1\n  selector:\n    matchLabels: {{app: web}}\n  template:\n    metadata:\n      labels: {{app: web}}\n    spec:\n      containers:\n        - name: web\n          image: registry.local/outagebench/web:1\n          env:\n            - {{name: VERSION, value: \"{version}\"}}\n"
    )
}

/// `devloop dev` with its JSON events stamped as they arrive.
struct Dev {
    child: Child,
    events: Receiver<(Instant, Value)>,
}

impl Dev {
    fn start(devloop: &Path, kubeconfig: &Path, project: &Path, ns: &str) -> Result<Dev> {
        let mut child = Command::new(devloop)
            .args(["dev", "-o", "json", "--debounce", "50", "--kubeconfig"])
            .arg(kubeconfig)
            .args(["-n", ns])
            .current_dir(project)
            .env("DEVLOOP_CACHE_DIR", project.join(".cache"))
            .env_remove("RUST_LOG")
            .env_remove("KUBECONFIG")
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .context("start devloop dev")?;
        let stdout = child.stdout.take().context("devloop's stdout")?;
        let (tx, events) = mpsc::channel();
        std::thread::spawn(move || {
            for line in BufReader::new(stdout).lines() {
                let Ok(line) = line else { break };
                let v = serde_json::from_str(&line)
                    .unwrap_or_else(|_| serde_json::json!({"type": "unparsed", "line": line}));
                if tx.send((Instant::now(), v)).is_err() {
                    break;
                }
            }
        });
        Ok(Dev { child, events })
    }

    /// Events up to and including the first of type `ty`.
    fn until(&mut self, ty: &str) -> Result<Vec<(Instant, Value)>> {
        let deadline = Instant::now() + TIMEOUT;
        let mut got = Vec::new();
        loop {
            let left = deadline.saturating_duration_since(Instant::now());
            match self.events.recv_timeout(left) {
                Ok((at, e)) => {
                    let done = e["type"] == ty;
                    got.push((at, e));
                    if done {
                        return Ok(got);
                    }
                }
                Err(RecvTimeoutError::Timeout) => bail!("timed out waiting for `{ty}`: {got:?}"),
                Err(RecvTimeoutError::Disconnected) => bail!("devloop exited waiting for `{ty}`"),
            }
        }
    }

    /// Events that arrived so far.
    fn drain(&mut self) -> Vec<(Instant, Value)> {
        self.events.try_iter().collect()
    }
}

impl Drop for Dev {
    fn drop(&mut self) {
        let _ = Command::new("kill")
            .args(["-INT", &self.child.id().to_string()])
            .status();
        let deadline = Instant::now() + Duration::from_secs(30);
        while Instant::now() < deadline {
            if let Ok(Some(_)) = self.child.try_wait() {
                return;
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        let _ = self.child.kill();
    }
}

struct Round {
    devloop_ready: Duration,
    devloop_reachable: Duration,
    devloop_events_during: usize,
    kubectl_ready: Duration,
}

fn run() -> Result<()> {
    let settings = Settings::from_env();
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .context("tokio runtime")?;
    let fake = runtime.block_on(async { FakeApiServer::start() });
    let dir = tempfile::Builder::new()
        .prefix("devloop-bench-outage-")
        .tempdir()
        .context("temp dir")?;
    let kubeconfig = runtime.block_on(support::tls_front::start(&fake, dir.path()))?;
    let devloop = devloop_binary()?;
    let project = dir.path().join("project");
    fs::create_dir_all(project.join("k8s"))?;
    fs::write(
        project.join("devloop.yaml"),
        format!(
            "apiVersion: devloop/v1alpha1\nkind: Config\nmetadata:\n  name: {PROJECT}\nmanifests:\n  rawYaml: [\"k8s/*.yaml\"]\n"
        ),
    )?;
    let app = project.join("k8s/app.yaml");
    fs::write(&app, manifest(0))?;
    let kubectl_file = dir.path().join("kubectl-app.yaml");
    let kubectl_home = dir.path().join("kubectl-home");
    fs::create_dir_all(&kubectl_home)?;
    let kubectl = |args: &[&str]| -> Result<()> {
        let out = Command::new(&settings.kubectl)
            .arg("--kubeconfig")
            .arg(&kubeconfig)
            .args(["-n", "outage-kubectl"])
            .args(args)
            .env("HOME", &kubectl_home)
            .env_remove("KUBECONFIG")
            .output()
            .context("run kubectl")?;
        ensure!(
            out.status.success(),
            "kubectl {} failed: {}",
            args.join(" "),
            String::from_utf8_lossy(&out.stderr)
        );
        Ok(())
    };
    let file = kubectl_file.to_str().context("temp path")?.to_string();
    let apply = [
        "apply",
        "--server-side",
        "--field-manager=kubectl-bench",
        // The fake serves no OpenAPI document to validate against (as benches/deploy.rs).
        "--validate=false",
        "-f",
        &file,
    ];
    let rollout = ["rollout", "status", "deployment/web", "--timeout=120s"];
    runtime.block_on(async {
        use k8s_openapi::api::core::v1::Namespace;
        let api: kube::Api<Namespace> = kube::Api::all(fake.client().await);
        for ns in ["outage-devloop", "outage-kubectl"] {
            let mut n = Namespace::default();
            n.metadata.name = Some(ns.to_string());
            api.create(&Default::default(), &n).await?;
        }
        Ok::<_, kube::Error>(())
    })?;
    fs::write(&kubectl_file, manifest(0))?;
    kubectl(&apply)?;
    kubectl(&rollout)?;

    println!(
        "outage benchmark: {} rounds, the API server away {} s each time (socket closed, connections dropped), then \
         an edit of one Deployment's pod template; both clients through a TLS front",
        settings.rounds,
        settings.outage.as_secs()
    );
    println!("devloop: {}", devloop.display());
    println!("load average before: {}", load_average());

    let mut dev = Dev::start(&devloop, &kubeconfig, &project, "outage-devloop")?;
    dev.until("iteration").context("devloop's first deploy")?;
    let mut rounds = Vec::new();
    for round in 1..=settings.rounds {
        // devloop: the outage happens while it watches; at the return the edit is saved.
        dev.drain();
        fake.set_unreachable(true);
        std::thread::sleep(settings.outage);
        let during: Vec<String> = dev
            .drain()
            .iter()
            .map(|(_, e)| e["type"].as_str().unwrap_or_default().to_string())
            .collect();
        fake.set_unreachable(false);
        let back = Instant::now();
        fs::write(&app, manifest(round))?;
        let got = dev.until("iteration")?;
        let devloop_ready = got.last().map(|(at, _)| *at - back).unwrap_or_default();
        let mut reachable = got
            .iter()
            .find(|(_, e)| e["type"] == "clusterReachable")
            .map(|(at, _)| at.saturating_duration_since(back));
        if reachable.is_none() {
            reachable = dev
                .until("clusterReachable")
                .ok()
                .and_then(|g| g.last().map(|(at, _)| at.saturating_duration_since(back)));
        }
        let failed = got
            .iter()
            .filter(|(_, e)| e["type"] == "iterationFailed")
            .count();
        ensure!(failed == 0, "round {round}: an iteration failed: {got:?}");

        // kubectl: the same outage; at the return the edited manifest is applied and the rollout awaited.
        fake.set_unreachable(true);
        std::thread::sleep(settings.outage);
        fake.set_unreachable(false);
        let back = Instant::now();
        fs::write(&kubectl_file, manifest(round))?;
        kubectl(&apply)?;
        kubectl(&rollout)?;
        let kubectl_ready = back.elapsed();
        // devloop saw that outage too: let it find the server back before the next round starts its own.
        let seen = dev.drain();
        let down = seen
            .iter()
            .rposition(|(_, e)| e["type"] == "clusterUnreachable");
        let up = seen
            .iter()
            .rposition(|(_, e)| e["type"] == "clusterReachable");
        if down.is_some() && up < down {
            dev.until("clusterReachable")?;
        }
        eprintln!(
            "round {round}/{}: devloop {} ms (cluster back reported after {} ms; during the outage: {during:?}), kubectl {} ms",
            settings.rounds,
            devloop_ready.as_millis(),
            reachable.map_or("-".into(), |d| d.as_millis().to_string()),
            kubectl_ready.as_millis()
        );
        rounds.push(Round {
            devloop_ready,
            devloop_reachable: reachable.unwrap_or(Duration::MAX),
            devloop_events_during: during.len(),
            kubectl_ready,
        });
    }
    drop(dev);

    let med = |f: &dyn Fn(&Round) -> Duration| median(rounds.iter().map(f).collect());
    let devloop_ready = med(&|r| r.devloop_ready);
    let kubectl_ready = med(&|r| r.kubectl_ready);
    println!();
    println!("return → edit ready, median of {} rounds:", rounds.len());
    println!(
        "  devloop dev (save at the return → iteration)        {:>6} ms",
        devloop_ready.as_millis()
    );
    println!(
        "  kubectl apply --server-side + rollout status        {:>6} ms",
        kubectl_ready.as_millis()
    );
    println!(
        "  ratio devloop/kubectl                               {:>6.2}",
        devloop_ready.as_secs_f64() / kubectl_ready.as_secs_f64()
    );
    println!(
        "devloop: `clusterReachable` after the return, median  {:>6} ms",
        med(&|r| r.devloop_reachable).as_millis()
    );
    println!(
        "devloop: events during each outage                  {:?}",
        rounds
            .iter()
            .map(|r| r.devloop_events_during)
            .collect::<Vec<_>>()
    );
    println!("load average after: {}", load_average());
    Ok(())
}

fn median(mut xs: Vec<Duration>) -> Duration {
    xs.sort();
    match xs.len() {
        0 => Duration::ZERO,
        n if n % 2 == 1 => xs[n / 2],
        n => (xs[n / 2 - 1] + xs[n / 2]) / 2,
    }
}

fn load_average() -> String {
    fs::read_to_string("/proc/loadavg")
        .map(|s| s.split_whitespace().take(3).collect::<Vec<_>>().join(" "))
        .unwrap_or_else(|_| "?".into())
}

fn devloop_binary() -> Result<PathBuf> {
    if let Some(path) = std::env::var_os("CARGO_BIN_EXE_devloop") {
        return Ok(PathBuf::from(path));
    }
    if let Some(path) = option_env!("CARGO_BIN_EXE_devloop") {
        return Ok(PathBuf::from(path));
    }
    bail!(
        "no devloop binary\n\nhint: run it with `cargo bench --bench outage`, or set `CARGO_BIN_EXE_devloop`"
    )
}
