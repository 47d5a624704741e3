//! Benchmark of `devloop deploy` against `kubectl apply --server-side` (+ `kubectl wait`): 200 generated objects
//! applied into fresh namespaces of the in-process fake API server → a table of both sides' times, the ratio
//! devloop/kubectl, PASS/FAIL against the target, request counts and devloop's phase timeline.
//! It never asserts timings, never tunes what it measures, and deletes the namespaces it created.
//!
//! Run: `cargo bench --bench deploy` (`-- --quick` or `DEVLOOP_BENCH_QUICK=1`: 3 runs each instead of 7).
//! Both clients reach the fake through a TLS front in this process (kubectl sends no credentials over plain HTTP),
//! with a CA and server certificate made by the `openssl` CLI for the run.
//! Needs `kubectl` and `openssl` on `PATH` (`DEVLOOP_BENCH_KUBECTL` names another kubectl); `CARGO_BIN_EXE_devloop` names the devloop
//! binary to time; `DEVLOOP_BENCH_KEEP=1` keeps the generated files and prints where they are. `-- --serve`
//! measures nothing: it serves the fake with the generated files until Ctrl-C, to run `kubectl -v=8` by hand.

// A benchmark's report is its output.
#![allow(clippy::print_stdout, clippy::print_stderr)]

// Benches are compiled with `cfg(test)` but without the test harness: the fake's unit-test modules lose their
// `#[test]` functions and with them the use of their imports.
#[allow(unused_imports)]
#[path = "../tests/support"]
mod support {
    //! Only the fake API server of the test support (the rest needs the test harness).
    pub mod fake_apiserver;
}

#[path = "support/tls_front.rs"]
mod tls_front;

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::fs;
use std::io::{BufRead as _, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Command, ExitCode, Output, Stdio};
use std::time::{Duration, Instant};

use anyhow::{Context as _, Result, bail, ensure};
use k8s_openapi::api::core::v1::Namespace;
use kube::api::{Api, DeleteParams, PostParams};
use serde_json::Value;
use support::fake_apiserver::{FakeApiServer, PodState, RequestRecord};
use tls_front::base64;

/// The target: devloop takes at most half of kubectl's time.
const RATIO_TARGET: f64 = 0.5;
/// How long either side may take to apply and wait before the run counts as failed.
const WAIT_TIMEOUT: &str = "120s";
/// Objects devloop and kubectl apply, by kind (200 in all).
const APPS: usize = 40;
const EXTRA_CONFIGMAPS: usize = 32;
const JOBS: usize = 8;
const OBJECTS: usize = APPS * 4 + EXTRA_CONFIGMAPS + JOBS;
/// The project name (and so the `devloop.dev/project` label).
const PROJECT: &str = "deploybench";
/// Job pods run this image; the fake completes them (exit 0) instead of keeping them running.
const JOB_IMAGE: &str = "registry.local/deploybench/migrate:1.4.2";
/// The flags kubectl applies with. `--validate=false`: see `docs/performance.md` ("Deploy").
const KUBECTL_APPLY: &[&str] = &["apply", "--server-side", "--field-manager=kubectl-bench"];

struct Settings {
    runs: usize,
    serve: bool,
    kubectl: String,
    keep: bool,
}

impl Settings {
    fn from_env() -> Self {
        // `cargo bench` passes `--bench`; other arguments (filters) are ignored.
        let quick = std::env::args().any(|a| a == "--quick")
            || std::env::var("DEVLOOP_BENCH_QUICK").is_ok_and(|v| !v.is_empty() && v != "0");
        Settings {
            runs: if quick { 3 } else { 7 },
            serve: std::env::args().any(|a| a == "--serve"),
            kubectl: std::env::var("DEVLOOP_BENCH_KUBECTL").unwrap_or_else(|_| "kubectl".into()),
            keep: std::env::var("DEVLOOP_BENCH_KEEP").is_ok_and(|v| !v.is_empty() && v != "0"),
        }
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

/// Which client applies.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
enum Side {
    Kubectl,
    Devloop,
}

impl Side {
    fn name(self) -> &'static str {
        match self {
            Side::Kubectl => "kubectl",
            Side::Devloop => "devloop",
        }
    }
}

/// What is measured.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
enum Mode {
    /// Apply, then wait until Deployments are available and Jobs complete.
    ApplyWait,
    /// Apply only.
    Apply,
}

impl Mode {
    fn name(self) -> &'static str {
        match self {
            Mode::ApplyWait => "apply + wait",
            Mode::Apply => "apply only",
        }
    }

    fn short(self) -> &'static str {
        match self {
            Mode::ApplyWait => "wait",
            Mode::Apply => "apply",
        }
    }
}

/// One timed run of one side.
struct Sample {
    wall: Duration,
    /// CPU time of the client processes (user + system).
    client_cpu: Duration,
    /// CPU time of this process meanwhile: the fake API server (and the bench's idle threads).
    server_cpu: Duration,
    /// Named steps of the run (kubectl: each command; devloop: phases read from its JSON events).
    steps: Vec<(String, Duration)>,
    /// Requests the fake received, by category.
    requests: BTreeMap<String, usize>,
    /// Deployments available and Jobs complete when the client exited, of all of them.
    ready_at_exit: (usize, usize),
}

/// The generated files and the server they are applied to.
struct Fixture {
    dir: tempfile::TempDir,
    project: PathBuf,
    rendered: PathBuf,
    /// Set by [`tls_front`].
    kubeconfig: PathBuf,
    kubectl_home: PathBuf,
    devloop: PathBuf,
    clock_ticks: f64,
}

fn run() -> Result<()> {
    let settings = Settings::from_env();
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .context("tokio runtime")?;
    let fake = runtime.block_on(async { FakeApiServer::start() });
    fake.set_image_pod_state(JOB_IMAGE, PodState::Completed);
    let client = runtime.block_on(fake.client());
    let mut fixture = prepare()?;
    fixture.kubeconfig = runtime.block_on(tls_front::start(&fake, fixture.dir.path()))?;
    if settings.serve {
        let kept = fixture.dir.keep();
        println!(
            "serving {} until Ctrl-C\nkubeconfig: {}\nrendered:   {}\nproject:    {}",
            fake.url(),
            fixture.kubeconfig.display(),
            fixture.rendered.display(),
            fixture.project.display()
        );
        println!("files are kept in {}", kept.display());
        runtime.block_on(tokio::signal::ctrl_c())?;
        return Ok(());
    }
    let load_before = load_average();

    println!(
        "deploy benchmark: {OBJECTS} objects ({APPS} Deployments with 1 replica, {APPS} Services, {} ConfigMaps, \
         {APPS} Secrets, {JOBS} Jobs) into a fresh namespace per run, {} runs per side and measurement, alternating",
        APPS + EXTRA_CONFIGMAPS,
        settings.runs
    );
    println!(
        "api server: in-process fake ({}) behind an in-process TLS front, kubectl: {}",
        fake.url(),
        kubectl_version(&settings)?
    );
    println!("devloop: {}", fixture.devloop.display());
    println!("load average before: {load_before}");

    // One untimed run per side and measurement: warms the page cache and kubectl's discovery cache (as on a
    // developer's machine, where kubectl has talked to the cluster before; devloop keeps no such cache).
    let mut counter = 0usize;
    for mode in [Mode::ApplyWait, Mode::Apply] {
        for side in [Side::Kubectl, Side::Devloop] {
            counter += 1;
            measure(
                &settings, &fixture, &fake, &client, &runtime, side, mode, counter,
            )
            .with_context(|| format!("warm-up: {} {}", side.name(), mode.name()))?;
        }
    }

    let mut samples: BTreeMap<(Mode, Side), Vec<Sample>> = BTreeMap::new();
    for run in 0..settings.runs {
        for mode in [Mode::ApplyWait, Mode::Apply] {
            // Alternate which side goes first so drift in machine load does not favour one.
            let order = if run % 2 == 0 {
                [Side::Kubectl, Side::Devloop]
            } else {
                [Side::Devloop, Side::Kubectl]
            };
            for side in order {
                counter += 1;
                let s = measure(
                    &settings, &fixture, &fake, &client, &runtime, side, mode, counter,
                )
                .with_context(|| format!("run {}: {} {}", run + 1, side.name(), mode.name()))?;
                eprintln!(
                    "run {}/{}: {:<12} {:<7} {:>6} ms",
                    run + 1,
                    settings.runs,
                    mode.name(),
                    side.name(),
                    s.wall.as_millis()
                );
                samples.entry((mode, side)).or_default().push(s);
            }
        }
    }
    let load_after = load_average();
    println!();
    print!("{}", report(&samples));
    println!("load average after: {load_after}");
    if settings.keep {
        let kept = fixture.dir.keep();
        println!("generated files kept in {}", kept.display());
    }
    Ok(())
}

/// Writes the objects as a devloop project and renders them into one multi-document file for kubectl.
fn prepare() -> Result<Fixture> {
    let dir = tempfile::Builder::new()
        .prefix("devloop-bench-deploy-")
        .tempdir()
        .context("temp dir")?;
    let project = dir.path().join("project");
    fs::create_dir_all(project.join("k8s")).context("project dir")?;
    fs::write(
        project.join("devloop.yaml"),
        format!(
            "apiVersion: devloop/v1alpha1\nkind: Config\nmetadata:\n  name: {PROJECT}\nmanifests:\n  rawYaml: [\"k8s/*.yaml\"]\n"
        ),
    )?;
    for i in 0..APPS {
        let name = format!("svc-{i:02}");
        let docs = [
            deployment(&name, i),
            service(&name),
            configmap(&format!("{name}-config"), i, 12),
            secret(&format!("{name}-credentials"), i),
        ];
        fs::write(project.join(format!("k8s/{name}.yaml")), docs.join("---\n"))?;
    }
    let flags: Vec<String> = (0..EXTRA_CONFIGMAPS)
        .map(|i| configmap(&format!("feature-flags-{i:02}"), i, 30))
        .collect();
    fs::write(project.join("k8s/feature-flags.yaml"), flags.join("---\n"))?;
    let jobs: Vec<String> = (0..JOBS).map(|i| job(&format!("migrate-{i:02}"))).collect();
    fs::write(project.join("k8s/jobs.yaml"), jobs.join("---\n"))?;

    let devloop = devloop_binary()?;
    let kubectl_home = dir.path().join("kubectl-home");
    fs::create_dir_all(&kubectl_home)?;
    // Rendered without a cluster (no kubeconfig): no namespace is set, so `-n` places the objects for both sides.
    let rendered = dir.path().join("rendered.yaml");
    let out = Command::new(&devloop)
        .args(["render", "--output-file"])
        .arg(&rendered)
        .current_dir(&project)
        .env("HOME", &kubectl_home)
        .env("DEVLOOP_CACHE_DIR", dir.path().join("cache"))
        .env("NO_COLOR", "1")
        .env_remove("KUBECONFIG")
        .env_remove("DEVLOOP_DEFAULT_REPO")
        .output()
        .context("devloop render")?;
    ensure!(
        out.status.success(),
        "devloop render failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let docs = fs::read_to_string(&rendered)?
        .split("\n---\n")
        .filter(|d| !d.trim().is_empty())
        .count();
    ensure!(
        docs == OBJECTS,
        "the rendered file has {docs} documents, expected {OBJECTS}"
    );
    let clock_ticks = Command::new("getconf")
        .arg("CLK_TCK")
        .output()
        .ok()
        .and_then(|o| String::from_utf8_lossy(&o.stdout).trim().parse().ok())
        .unwrap_or(100.0);
    Ok(Fixture {
        project,
        rendered,
        kubeconfig: PathBuf::new(),
        kubectl_home,
        devloop,
        clock_ticks,
        dir,
    })
}

fn deployment(name: &str, i: usize) -> String {
    format!(
        "apiVersion: apps/v1
kind: Deployment
metadata:
  name: {name}
  labels:
    app: {name}
    tier: backend
spec:
  replicas: 1
  selector:
    matchLabels:
      app: {name}
  template:
    metadata:
      labels:
        app: {name}
        tier: backend
      annotations:
        prometheus.io/scrape: \"true\"
        prometheus.io/port: \"9090\"
    spec:
      containers:
        - name: app
          image: registry.local/deploybench/{name}:1.{i}.0
          args: [\"--config=/etc/app/config.yaml\", \"--listen=:8080\"]
          ports:
            - name: http
              containerPort: 8080
            - name: metrics
              containerPort: 9090
          env:
            - name: APP_NAME
              value: {name}
            - name: DATABASE_PASSWORD
              valueFrom:
                secretKeyRef:
                  name: {name}-credentials
                  key: password
          envFrom:
            - configMapRef:
                name: {name}-config
          resources:
            requests:
              cpu: 50m
              memory: 64Mi
            limits:
              memory: 256Mi
          readinessProbe:
            httpGet:
              path: /healthz
              port: http
            periodSeconds: 5
          volumeMounts:
            - name: config
              mountPath: /etc/app
      volumes:
        - name: config
          configMap:
            name: {name}-config
"
    )
}

fn service(name: &str) -> String {
    format!(
        "apiVersion: v1
kind: Service
metadata:
  name: {name}
  labels:
    app: {name}
spec:
  selector:
    app: {name}
  ports:
    - name: http
      port: 80
      targetPort: http
    - name: metrics
      port: 9090
      targetPort: metrics
"
    )
}

fn configmap(name: &str, i: usize, keys: usize) -> String {
    let mut text = format!("apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: {name}\ndata:\n");
    for k in 0..keys {
        let _ = writeln!(text, "  SETTING_{k:02}: \"value-{i}-{k}\"");
    }
    text.push_str(&format!(
        "  config.yaml: |\n    listen: \":8080\"\n    logLevel: info\n    upstream: http://svc-{:02}\n    retries: 3\n",
        (i + 1) % APPS
    ));
    text
}

fn secret(name: &str, i: usize) -> String {
    // base64 of `user-NN` and a fixed 24-byte password: shape only, no real credentials.
    let user = base64(format!("user-{i:02}").as_bytes());
    let password = base64(format!("not-a-real-password-{i:04}").as_bytes());
    format!(
        "apiVersion: v1\nkind: Secret\nmetadata:\n  name: {name}\ntype: Opaque\ndata:\n  username: {user}\n  password: {password}\n"
    )
}

fn job(name: &str) -> String {
    format!(
        "apiVersion: batch/v1
kind: Job
metadata:
  name: {name}
spec:
  backoffLimit: 0
  template:
    spec:
      restartPolicy: Never
      containers:
        - name: migrate
          image: {JOB_IMAGE}
          args: [\"migrate\", \"--to=latest\"]
"
    )
}

/// Runs one side once into a fresh namespace, checks the result, and removes the namespace again.
#[allow(clippy::too_many_arguments)]
fn measure(
    settings: &Settings,
    fx: &Fixture,
    fake: &FakeApiServer,
    client: &kube::Client,
    runtime: &tokio::runtime::Runtime,
    side: Side,
    mode: Mode,
    counter: usize,
) -> Result<Sample> {
    let ns = format!("bench-{}-{}-{counter}", mode.short(), side.name());
    // The namespace exists beforehand for both sides (devloop would otherwise create it, kubectl would fail).
    runtime.block_on(async {
        let api: Api<Namespace> = Api::all(client.clone());
        let mut obj = Namespace::default();
        obj.metadata.name = Some(ns.clone());
        api.create(&PostParams::default(), &obj).await
    })?;
    fake.clear_requests();
    let cpu_before = cpu_times(fx.clock_ticks)?;
    let started = Instant::now();
    let steps = match side {
        Side::Kubectl => run_kubectl(settings, fx, &ns, mode)?,
        Side::Devloop => run_devloop(fx, &ns, mode)?,
    };
    let wall = started.elapsed();
    let cpu_after = cpu_times(fx.clock_ticks)?;
    let requests = categorize(&fake.requests());
    let ready_at_exit = readiness(fake, &ns);
    let applied = applied_count(fake, &ns);
    ensure!(
        applied == OBJECTS,
        "{} applied {applied} objects into `{ns}`, expected {OBJECTS}",
        side.name()
    );
    if mode == Mode::ApplyWait && side == Side::Kubectl {
        ensure!(
            ready_at_exit.0 == ready_at_exit.1,
            "kubectl wait returned with {}/{} workloads ready",
            ready_at_exit.0,
            ready_at_exit.1
        );
    }
    runtime.block_on(delete_namespace(client, &ns))?;
    fake.clear_requests();
    Ok(Sample {
        wall,
        client_cpu: cpu_after.children.saturating_sub(cpu_before.children),
        server_cpu: cpu_after.own.saturating_sub(cpu_before.own),
        steps,
        requests,
        ready_at_exit,
    })
}

fn kubectl(settings: &Settings, fx: &Fixture, ns: &str) -> Command {
    let mut cmd = Command::new(&settings.kubectl);
    cmd.arg("--kubeconfig")
        .arg(&fx.kubeconfig)
        .args(["-n", ns])
        // kubectl keeps its discovery cache under $HOME/.kube/cache: the bench's own, warmed by the warm-up run.
        .env("HOME", &fx.kubectl_home)
        .env_remove("KUBECONFIG");
    cmd
}

/// `kubectl apply --server-side` and, for [`Mode::ApplyWait`], `kubectl wait` for the Deployments and the Jobs,
/// one after the other as a script does.
fn run_kubectl(
    settings: &Settings,
    fx: &Fixture,
    ns: &str,
    mode: Mode,
) -> Result<Vec<(String, Duration)>> {
    let mut steps = Vec::new();
    let timeout = format!("--timeout={WAIT_TIMEOUT}");
    let mut commands: Vec<(&str, Vec<String>)> = vec![(
        "apply",
        KUBECTL_APPLY
            .iter()
            .map(|s| s.to_string())
            .chain(["--validate=false".to_string(), "-f".to_string()])
            .chain([fx.rendered.display().to_string()])
            .collect(),
    )];
    if mode == Mode::ApplyWait {
        commands.push((
            "wait deployments",
            vec![
                "wait".into(),
                "--for=condition=Available".into(),
                "deployments".into(),
                "--all".into(),
                timeout.clone(),
            ],
        ));
        commands.push((
            "wait jobs",
            vec![
                "wait".into(),
                "--for=condition=Complete".into(),
                "jobs".into(),
                "--all".into(),
                timeout,
            ],
        ));
    }
    for (step, args) in commands {
        let started = Instant::now();
        let out = kubectl(settings, fx, ns)
            .args(&args)
            .stdin(Stdio::null())
            .output()
            .with_context(|| format!("run {}", settings.kubectl))?;
        check(&out, &format!("kubectl {}", args.join(" ")))?;
        steps.push((step.to_string(), started.elapsed()));
    }
    Ok(steps)
}

/// `devloop deploy` (with `--no-status-check` for [`Mode::Apply`]) with JSON events on stdout, each stamped when
/// it arrives: the phases of the run.
fn run_devloop(fx: &Fixture, ns: &str, mode: Mode) -> Result<Vec<(String, Duration)>> {
    let started = Instant::now();
    let mut cmd = Command::new(&fx.devloop);
    cmd.args(["deploy", "--output", "json", "--kubeconfig"])
        .arg(&fx.kubeconfig)
        .args(["-n", ns, "--status-check-deadline", WAIT_TIMEOUT])
        .current_dir(&fx.project)
        .env("DEVLOOP_CACHE_DIR", fx.dir.path().join("cache"))
        .env("NO_COLOR", "1")
        .env_remove("KUBECONFIG")
        .env_remove("RUST_LOG")
        .env_remove("DEVLOOP_DEFAULT_REPO")
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    if mode == Mode::Apply {
        cmd.arg("--no-status-check");
    }
    let mut child = cmd.spawn().context("run devloop")?;
    let stdout = child.stdout.take().context("devloop stdout")?;
    let stderr = child.stderr.take().context("devloop stderr")?;
    let err_reader = std::thread::spawn(move || {
        let mut text = String::new();
        let _ = std::io::Read::read_to_string(&mut BufReader::new(stderr), &mut text);
        text
    });
    let mut events: Vec<(String, Duration)> = Vec::new();
    for line in BufReader::new(stdout).lines() {
        let line = line.context("read devloop stdout")?;
        let at = started.elapsed();
        let ty = serde_json::from_str::<Value>(&line)
            .ok()
            .and_then(|v| v["type"].as_str().map(str::to_string))
            .unwrap_or_else(|| format!("unparsable line: {line}"));
        events.push((ty, at));
    }
    let status = child.wait().context("wait for devloop")?;
    let exited = started.elapsed();
    let err = err_reader.join().unwrap_or_default();
    ensure!(status.success(), "devloop deploy failed ({status}):\n{err}");
    Ok(devloop_phases(&events, exited))
}

/// devloop's events → consecutive phases: start-up and connect (until `deployStarted`), discovery and planning
/// (until the first `applied`), apply (until the last `applied`), prune (until `deployComplete`), status check
/// (until the last event), exit.
fn devloop_phases(events: &[(String, Duration)], exited: Duration) -> Vec<(String, Duration)> {
    let first = |ty: &str| events.iter().find(|(t, _)| t == ty).map(|(_, at)| *at);
    let last = |ty: &str| {
        events
            .iter()
            .rev()
            .find(|(t, _)| t == ty)
            .map(|(_, at)| *at)
    };
    let marks = [
        ("start-up + connect", first("deployStarted")),
        ("discovery + plan", first("applied")),
        ("apply", last("applied")),
        ("prune inventory", first("deployComplete")),
        ("status check", events.last().map(|(_, at)| *at)),
        ("exit", Some(exited)),
    ];
    let mut phases = Vec::new();
    let mut previous = Duration::ZERO;
    for (name, at) in marks {
        if let Some(at) = at {
            phases.push((name.to_string(), at.saturating_sub(previous)));
            previous = previous.max(at);
        }
    }
    phases
}

fn check(out: &Output, what: &str) -> Result<()> {
    if !out.status.success() {
        bail!(
            "`{what}` failed ({}):\n{}{}",
            out.status,
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
    }
    Ok(())
}

/// Request categories: discovery, OpenAPI, and per verb.
fn categorize(requests: &[RequestRecord]) -> BTreeMap<String, usize> {
    const PLURALS: &[&str] = &[
        "configmaps",
        "events",
        "namespaces",
        "pods",
        "secrets",
        "serviceaccounts",
        "services",
        "daemonsets",
        "deployments",
        "replicasets",
        "statefulsets",
        "cronjobs",
        "jobs",
        "ingresses",
        "customresourcedefinitions",
    ];
    let mut out = BTreeMap::new();
    for r in requests {
        let segs: Vec<&str> = r.path.trim_matches('/').split('/').collect();
        let discovery = matches!(
            segs.as_slice(),
            ["version"] | ["api"] | ["apis"] | ["api", _] | ["apis", _] | ["apis", _, _]
        );
        let category = if segs.first() == Some(&"openapi") {
            "openapi"
        } else if discovery {
            "discovery"
        } else if r.is_apply() {
            "apply"
        } else {
            match r.method.as_str() {
                "GET" if matches!(r.param("watch"), Some("true" | "1")) => "watch",
                "GET" if segs.last().is_some_and(|s| PLURALS.contains(s)) => "list",
                "GET" => "get",
                "POST" => "create",
                "DELETE" => "delete",
                "PATCH" | "PUT" => "update",
                _ => "other",
            }
        };
        let category = if r.code.is_some_and(|c| c >= 400) {
            format!("{category} ({})", r.code.unwrap_or_default())
        } else {
            category.to_string()
        };
        *out.entry(category).or_insert(0) += 1;
    }
    out
}

fn in_namespace<'a>(objects: &'a [Value], ns: &'a str) -> impl Iterator<Item = &'a Value> + 'a {
    objects
        .iter()
        .filter(move |o| o.pointer("/metadata/namespace").and_then(Value::as_str) == Some(ns))
}

fn has_condition(o: &Value, ty: &str) -> bool {
    o.pointer("/status/conditions")
        .and_then(Value::as_array)
        .is_some_and(|c| c.iter().any(|c| c["type"] == ty && c["status"] == "True"))
}

/// Deployments available (rolled out: observed, updated and available) and Jobs complete, of all of them.
fn readiness(fake: &FakeApiServer, ns: &str) -> (usize, usize) {
    let deployments = fake.objects("Deployment");
    let jobs = fake.objects("Job");
    let mut ready = 0;
    let mut total = 0;
    for d in in_namespace(&deployments, ns) {
        total += 1;
        let generation = d.pointer("/metadata/generation").and_then(Value::as_i64);
        let observed = d
            .pointer("/status/observedGeneration")
            .and_then(Value::as_i64);
        let available = d
            .pointer("/status/availableReplicas")
            .and_then(Value::as_i64)
            .unwrap_or(0);
        if generation.is_some() && generation == observed && available >= 1 {
            ready += 1;
        }
    }
    for j in in_namespace(&jobs, ns) {
        total += 1;
        if has_condition(j, "Complete") {
            ready += 1;
        }
    }
    (ready, total)
}

/// Objects in `ns` that carry the project's label (both sides apply the rendered objects, labels included).
fn applied_count(fake: &FakeApiServer, ns: &str) -> usize {
    ["ConfigMap", "Secret", "Service", "Deployment", "Job"]
        .iter()
        .map(|kind| {
            let all = fake.objects(kind);
            in_namespace(&all, ns)
                .filter(|o| {
                    o.pointer("/metadata/labels/devloop.dev~1project")
                        .and_then(Value::as_str)
                        == Some(PROJECT)
                })
                .count()
        })
        .sum()
}

async fn delete_namespace(client: &kube::Client, ns: &str) -> Result<()> {
    let api: Api<Namespace> = Api::all(client.clone());
    api.delete(ns, &DeleteParams::background()).await?;
    let deadline = Instant::now() + Duration::from_secs(60);
    while api.get_opt(ns).await?.is_some() {
        ensure!(
            Instant::now() < deadline,
            "namespace `{ns}` still exists 60 s after its deletion"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    Ok(())
}

struct CpuTimes {
    own: Duration,
    children: Duration,
}

/// This process's CPU time and that of its waited-for children, from `/proc/self/stat`.
fn cpu_times(clock_ticks: f64) -> Result<CpuTimes> {
    let stat = fs::read_to_string("/proc/self/stat").context("read /proc/self/stat")?;
    // Fields after the command name (which may contain spaces) start at `state`, field 3.
    let rest = stat
        .rsplit_once(')')
        .map(|(_, r)| r)
        .context("/proc/self/stat")?;
    let fields: Vec<f64> = rest
        .split_whitespace()
        .skip(1)
        .map(|f| f.parse().unwrap_or(0.0))
        .collect();
    // utime, stime, cutime, cstime are fields 14–17; `fields[0]` is field 4.
    let at = |n: usize| fields.get(n - 4).copied().unwrap_or(0.0) / clock_ticks;
    Ok(CpuTimes {
        own: Duration::from_secs_f64(at(14) + at(15)),
        children: Duration::from_secs_f64(at(16) + at(17)),
    })
}

fn median(mut xs: Vec<Duration>) -> Duration {
    xs.sort();
    let n = xs.len();
    if n == 0 {
        return Duration::ZERO;
    }
    if n % 2 == 1 {
        xs[n / 2]
    } else {
        (xs[n / 2 - 1] + xs[n / 2]) / 2
    }
}

fn ms(d: Duration) -> String {
    format!("{:.0}", d.as_secs_f64() * 1000.0)
}

fn report(samples: &BTreeMap<(Mode, Side), Vec<Sample>>) -> String {
    let mut out = String::new();
    let stats = |mode: Mode, side: Side| {
        let s = samples.get(&(mode, side)).map(Vec::as_slice).unwrap_or(&[]);
        let walls: Vec<Duration> = s.iter().map(|x| x.wall).collect();
        (
            median(walls.clone()),
            walls.iter().min().copied().unwrap_or_default(),
            median(s.iter().map(|x| x.client_cpu).collect()),
            median(s.iter().map(|x| x.server_cpu).collect()),
        )
    };
    let _ = writeln!(
        out,
        "{:<14} {:>17} {:>17} {:>15} {:>7}  verdict",
        "measurement", "kubectl med (min)", "devloop med (min)", "ratio med (min)", "target"
    );
    for mode in [Mode::ApplyWait, Mode::Apply] {
        let (k_med, k_min, _, _) = stats(mode, Side::Kubectl);
        let (d_med, d_min, _, _) = stats(mode, Side::Devloop);
        let ratio = d_med.as_secs_f64() / k_med.as_secs_f64();
        let ratio_min = d_min.as_secs_f64() / k_min.as_secs_f64();
        let not_ready: Vec<String> = samples
            .get(&(mode, Side::Devloop))
            .into_iter()
            .flatten()
            .filter(|s| mode == Mode::ApplyWait && s.ready_at_exit.0 < s.ready_at_exit.1)
            .map(|s| format!("{}/{}", s.ready_at_exit.0, s.ready_at_exit.1))
            .collect();
        let verdict = if !not_ready.is_empty() {
            format!(
                "INVALID: devloop exited before its workloads were ready ({} of its runs; ready at exit: {})",
                not_ready.len(),
                not_ready.join(", ")
            )
        } else if ratio <= RATIO_TARGET {
            "PASS".to_string()
        } else {
            "FAIL".to_string()
        };
        let _ = writeln!(
            out,
            "{:<14} {:>17} {:>17} {:>15} {:>7}  {verdict}",
            mode.name(),
            format!("{} ({}) ms", ms(k_med), ms(k_min)),
            format!("{} ({}) ms", ms(d_med), ms(d_min)),
            format!("{ratio:.2} ({ratio_min:.2})"),
            format!("≤ {RATIO_TARGET:.2}"),
        );
    }
    let _ = writeln!(out);
    let _ = writeln!(
        out,
        "CPU (median per run): client processes / fake API server (this process)"
    );
    for mode in [Mode::ApplyWait, Mode::Apply] {
        for side in [Side::Kubectl, Side::Devloop] {
            let (_, _, client, server) = stats(mode, side);
            let _ = writeln!(
                out,
                "  {:<14} {:<8} client {:>5} ms   server {:>5} ms",
                mode.name(),
                side.name(),
                ms(client),
                ms(server)
            );
        }
    }
    let _ = writeln!(out);
    let _ = writeln!(
        out,
        "steps (median ms; kubectl: each command, devloop: phases between its JSON events)"
    );
    for mode in [Mode::ApplyWait, Mode::Apply] {
        for side in [Side::Kubectl, Side::Devloop] {
            let s = samples.get(&(mode, side)).map(Vec::as_slice).unwrap_or(&[]);
            let Some(first) = s.first() else { continue };
            let parts: Vec<String> = first
                .steps
                .iter()
                .map(|(name, _)| {
                    let durations: Vec<Duration> = s
                        .iter()
                        .filter_map(|x| x.steps.iter().find(|(n, _)| n == name).map(|(_, d)| *d))
                        .collect();
                    format!("{name} {}", ms(median(durations)))
                })
                .collect();
            let _ = writeln!(
                out,
                "  {:<14} {:<8} {}",
                mode.name(),
                side.name(),
                parts.join(", ")
            );
        }
    }
    let _ = writeln!(out);
    let _ = writeln!(out, "requests to the API server (first timed run)");
    for mode in [Mode::ApplyWait, Mode::Apply] {
        for side in [Side::Kubectl, Side::Devloop] {
            let Some(first) = samples.get(&(mode, side)).and_then(|s| s.first()) else {
                continue;
            };
            let total: usize = first.requests.values().sum();
            let parts: Vec<String> = first
                .requests
                .iter()
                .map(|(k, n)| format!("{k} {n}"))
                .collect();
            let _ = writeln!(
                out,
                "  {:<14} {:<8} {total:>4}: {}",
                mode.name(),
                side.name(),
                parts.join(", ")
            );
        }
    }
    out
}

fn load_average() -> String {
    fs::read_to_string("/proc/loadavg")
        .map(|l| l.split_whitespace().take(3).collect::<Vec<_>>().join(" "))
        .unwrap_or_else(|_| "unknown".into())
}

fn kubectl_version(settings: &Settings) -> Result<String> {
    let out = Command::new(&settings.kubectl)
        .args(["version", "--client", "-o", "json"])
        .output()
        .with_context(|| format!("`{}` not found: install kubectl", settings.kubectl))?;
    check(&out, "kubectl version --client")?;
    let v: Value = serde_json::from_slice(&out.stdout).context("kubectl version output")?;
    Ok(v.pointer("/clientVersion/gitVersion")
        .and_then(Value::as_str)
        .unwrap_or("unknown")
        .to_string())
}

/// The devloop binary to time: `CARGO_BIN_EXE_devloop` (set by cargo for benches), else target/release.
fn devloop_binary() -> Result<PathBuf> {
    if let Some(path) = std::env::var_os("CARGO_BIN_EXE_devloop") {
        return Ok(PathBuf::from(path));
    }
    if let Some(path) = option_env!("CARGO_BIN_EXE_devloop") {
        return Ok(PathBuf::from(path));
    }
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("target/release/devloop");
    if !path.exists() {
        bail!(
            "no devloop binary at `{}`\n\nhint: run `cargo build --release` first, or set `CARGO_BIN_EXE_devloop`",
            path.display()
        );
    }
    Ok(path)
}
