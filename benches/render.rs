//! Render benchmark (`cargo bench --bench render [-- --raw-only]`), baselines measured in the same run:
//! 1. 10 000 generated Deployments in raw YAML → render + to_yaml;
//! 2. a kustomize overlay: `kubectl kustomize` alone vs devloop's render of it, and devloop's own work on the
//!    same output (its overhead), as a ratio measured in the same run.
#![allow(clippy::print_stdout, clippy::unwrap_used)] // a measuring tool: it prints its figures and may panic

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::path::Path;
use std::process::Command;
use std::time::{Duration, Instant};

use devloop::config::manifests::{Kustomize, Manifests};
use devloop::render::{ArtifactImage, RenderRequest, render};

fn deployments(n: usize) -> String {
    let mut text = String::new();
    for i in 0..n {
        write!(
            text,
            r#"---
apiVersion: apps/v1
kind: Deployment
metadata:
  name: app-{i}
  labels: {{app: app-{i}, tier: backend}}
  annotations:
    note: "generated object {i}"
spec:
  replicas: 2
  selector:
    matchLabels: {{app: app-{i}}}
  template:
    metadata:
      labels: {{app: app-{i}}}
    spec:
      initContainers:
        - name: init
          image: worker:latest
          command: ["/bin/sh", "-c", "echo init"]
      containers:
        - name: app
          image: app-api:latest
          ports: [{{containerPort: 8080, name: http}}]
          env:
            - {{name: MODE, value: "on"}}
            - {{name: OCTAL, value: "0644"}}
          resources:
            limits: {{cpu: 500m, memory: 128Mi}}
        - name: sidecar
          image: envoyproxy/envoy:v1.30
"#
        )
        .unwrap();
    }
    text
}

fn images() -> Vec<ArtifactImage> {
    ["app-api", "worker"]
        .into_iter()
        .map(|name| ArtifactImage {
            name: name.into(),
            reference: format!("127.0.0.1:5000/{name}:3f2a9c"),
            repository: format!("127.0.0.1:5000/{name}"),
            tag: "3f2a9c".into(),
            digest: None,
        })
        .collect()
}

fn median(mut samples: Vec<Duration>) -> Duration {
    samples.sort();
    samples[samples.len() / 2]
}

/// CPU time of this process (all threads) so far, from /proc (10 ms resolution): on a shared machine the
/// wall clock mostly measures the neighbours.
fn cpu_time() -> Duration {
    let stat = std::fs::read_to_string("/proc/self/stat").unwrap();
    // Fields after the `(comm)`: utime and stime are fields 14 and 15 of the whole line.
    let after = &stat[stat.rfind(')').unwrap() + 2..];
    let fields: Vec<&str> = after.split(' ').collect();
    let ticks: u64 = fields[11].parse::<u64>().unwrap() + fields[12].parse::<u64>().unwrap();
    Duration::from_millis(ticks * 10)
}

/// Minimum and median wall time over `runs`, and the mean CPU time per run.
fn time<T>(runs: usize, mut f: impl FnMut() -> T) -> (Duration, Duration, Duration) {
    let cpu_start = cpu_time();
    let samples: Vec<Duration> = (0..runs)
        .map(|_| {
            let start = Instant::now();
            std::hint::black_box(f());
            start.elapsed()
        })
        .collect();
    let cpu = (cpu_time() - cpu_start) / u32::try_from(runs).unwrap();
    let min = *samples.iter().min().unwrap();
    (min, median(samples), cpu)
}

fn load() -> String {
    std::fs::read_to_string("/proc/loadavg")
        .unwrap_or_default()
        .split(' ')
        .next()
        .unwrap_or("?")
        .to_owned()
}

fn copy_tree(from: &Path, to: &Path) {
    std::fs::create_dir_all(to).unwrap();
    for entry in std::fs::read_dir(from).unwrap() {
        let entry = entry.unwrap();
        let target = to.join(entry.file_name());
        if entry.file_type().unwrap().is_dir() {
            copy_tree(&entry.path(), &target);
        } else {
            std::fs::copy(entry.path(), target).unwrap();
        }
    }
}

fn main() {
    let env: BTreeMap<String, String> = std::env::vars().collect();
    let labels = BTreeMap::from([("devloop.dev/run".to_owned(), "r-1".to_owned())]);
    let images = images();
    let dir = tempfile::tempdir().unwrap();

    // 1. 10k raw objects.
    std::fs::create_dir_all(dir.path().join("k8s")).unwrap();
    let text = deployments(10_000);
    std::fs::write(dir.path().join("k8s/deployments.yaml"), &text).unwrap();
    let manifests = Manifests {
        raw_yaml: vec!["k8s/*.yaml".into()],
        ..Manifests::default()
    };
    let request = RenderRequest {
        base_dir: dir.path(),
        manifests: &manifests,
        images: &images,
        labels: &labels,
        namespace: Some("dev"),
        namespace_explicit: true,
        env: &env,
    };
    let rendered = render(&request).unwrap();
    assert_eq!(rendered.objects.len(), 10_000);
    let (render_min, render_med, render_cpu) = time(5, || render(&request).unwrap());
    let (yaml_min, yaml_med, yaml_cpu) = time(5, || rendered.to_yaml().unwrap());
    let (total_min, total_med, total_cpu) =
        time(5, || render(&request).unwrap().to_yaml().unwrap());
    let cores = std::thread::available_parallelism().map_or(1, std::num::NonZeroUsize::get);
    println!(
        "10k Deployments ({} KiB of YAML), {cores} cores, load average {}:",
        text.len() / 1024,
        load()
    );
    println!(
        "  render           wall min {render_min:>9.1?} median {render_med:>9.1?}  cpu {render_cpu:>9.1?}"
    );
    println!(
        "  to_yaml          wall min {yaml_min:>9.1?} median {yaml_med:>9.1?}  cpu {yaml_cpu:>9.1?}"
    );
    println!(
        "  render + to_yaml wall min {total_min:>9.1?} median {total_med:>9.1?}  cpu {total_cpu:>9.1?}  (budget 1 s)"
    );
    println!(
        "  {} 10k objects rendered in ≤ 1 s (median {total_med:.1?})",
        if total_med <= Duration::from_secs(1) {
            "PASS"
        } else {
            "FAIL"
        }
    );

    if std::env::args().any(|a| a == "--raw-only") {
        return;
    }

    // 2. kustomize overlay.
    let fixture = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/kustomize");
    copy_tree(&fixture, &dir.path().join("kz"));
    let base = dir.path().join("kz");
    let runs = 15;
    let (kz_min, kz_med, _) = time(runs, || {
        let out = Command::new("kubectl")
            .arg("kustomize")
            .arg("overlays/dev")
            .current_dir(&base)
            .output()
            .unwrap();
        assert!(out.status.success());
        out.stdout
    });
    let manifests = Manifests {
        kustomize: Some(Kustomize {
            paths: vec!["overlays/dev".into()],
            build_args: vec![],
            binary: Some("kubectl".into()),
        }),
        ..Manifests::default()
    };
    let request = RenderRequest {
        base_dir: &base,
        manifests: &manifests,
        ..request
    };
    let (dl_min, dl_med, _) = time(runs, || render(&request).unwrap().to_yaml().unwrap());

    // devloop's own work on kustomize's output: the same text as a raw file, rendered and written.
    let out = Command::new("kubectl")
        .arg("kustomize")
        .arg("overlays/dev")
        .current_dir(&base)
        .output()
        .unwrap();
    std::fs::write(base.join("built.yaml"), &out.stdout).unwrap();
    let raw = Manifests {
        raw_yaml: vec!["built.yaml".into()],
        ..Manifests::default()
    };
    let request = RenderRequest {
        manifests: &raw,
        ..request
    };
    let (own_min, own_med, _) = time(200, || render(&request).unwrap().to_yaml().unwrap());
    println!(
        "kustomize overlay ({} objects, {} bytes):",
        render(&request).unwrap().objects.len(),
        out.stdout.len()
    );
    println!("  kubectl kustomize        min {kz_min:>9.1?}  median {kz_med:>9.1?}");
    println!("  devloop render (via it)  min {dl_min:>9.1?}  median {dl_med:>9.1?}");
    println!("  devloop's own work       min {own_min:>9.1?}  median {own_med:>9.1?}");
    println!(
        "  overhead: own work / kustomize = {:.2} % (budget 20 %); end-to-end / kustomize = {:.2}",
        own_med.as_secs_f64() / kz_med.as_secs_f64() * 100.0,
        dl_med.as_secs_f64() / kz_med.as_secs_f64()
    );
    let overhead = own_med.as_secs_f64() / kz_med.as_secs_f64();
    println!(
        "  {} devloop's overhead ≤ 20 % of the kustomize run",
        if overhead <= 0.2 { "PASS" } else { "FAIL" }
    );
}
