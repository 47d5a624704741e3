//! Where a Service's traffic would go, sampled during a scenario: the cluster's Service and Pods → what kube-proxy
//! would route a request to at that instant (no endpoint, or the images of the endpoint pods); the run of samples →
//! a report (samples, empty samples, image transitions). Reads only; never changes the cluster.
//!
//! The endpoint rule is the EndpointSlice controller's and kube-proxy's, from the Kubernetes docs (EndpointSlices,
//! "Conditions"; KEP-1672 and KEP-1669), not devloop's:
//! - a Service with a selector gets, as endpoints, the pods of its namespace whose labels carry every key/value of
//!   `spec.selector`, that have an IP (`status.podIP`) and are not in a terminal phase (`Succeeded`, `Failed`);
//!   a Service without a selector has no managed endpoints;
//! - an endpoint is `ready` when its pod's `Ready` condition is `True` and the pod is not terminating (no
//!   `metadata.deletionTimestamp`); `spec.publishNotReadyAddresses: true` makes every endpoint ready;
//! - kube-proxy sends new connections to ready endpoints only. (Since KEP-1669 it falls back to serving terminating
//!   endpoints when none is ready; the sampler does not count that fallback as traffic served: a release that
//!   needs it has a gap.)
#![allow(dead_code, clippy::unwrap_used)]

use std::collections::BTreeSet;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::time::Duration;

use k8s_openapi::api::core::v1::{Pod, Service};
use kube::api::Api;
use serde_json::Value;
use tokio::task::JoinHandle;

use super::cluster::Cluster;
use super::fake_apiserver::ObjectReader;

/// What one request to the Service would have met.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Sample {
    /// The value of `devloop.dev/color` in the Service's selector (`None`: no such key, or no Service).
    pub color: Option<String>,
    /// The images of the ready endpoints' containers; `None`: no ready endpoint (the request would fail).
    pub images: Option<BTreeSet<String>>,
}

/// Whether `pod` is one of `service`'s ready endpoints.
pub fn is_ready_endpoint(service: &Value, pod: &Value) -> bool {
    let Some(selector) = service
        .pointer("/spec/selector")
        .and_then(Value::as_object)
        .filter(|s| !s.is_empty())
    else {
        return false;
    };
    if pod.pointer("/metadata/namespace") != service.pointer("/metadata/namespace") {
        return false;
    }
    let labels = pod.pointer("/metadata/labels");
    let selected = selector
        .iter()
        .all(|(k, v)| labels.and_then(|l| l.get(k)) == Some(v));
    let has_ip = pod
        .pointer("/status/podIP")
        .and_then(Value::as_str)
        .is_some_and(|ip| !ip.is_empty());
    let terminal = matches!(
        pod.pointer("/status/phase").and_then(Value::as_str),
        Some("Succeeded" | "Failed")
    );
    if !selected || !has_ip || terminal {
        return false;
    }
    if service.pointer("/spec/publishNotReadyAddresses") == Some(&Value::Bool(true)) {
        return true;
    }
    let terminating = pod.pointer("/metadata/deletionTimestamp").is_some();
    let ready = pod
        .pointer("/status/conditions")
        .and_then(Value::as_array)
        .is_some_and(|cs| {
            cs.iter()
                .any(|c| c["type"] == "Ready" && c["status"] == "True")
        });
    ready && !terminating
}

/// What a request to `service` (absent: not created yet, or deleted) would meet, given every pod of the cluster.
pub fn route(service: Option<&Value>, pods: &[Value]) -> Sample {
    let Some(service) = service else {
        return Sample {
            color: None,
            images: None,
        };
    };
    let color = service
        .pointer("/spec/selector/devloop.dev~1color")
        .and_then(Value::as_str)
        .map(str::to_string);
    let images: BTreeSet<String> = pods
        .iter()
        .filter(|p| is_ready_endpoint(service, p))
        .flat_map(|p| {
            p.pointer("/spec/containers")
                .and_then(Value::as_array)
                .into_iter()
                .flatten()
                .filter_map(|c| c["image"].as_str().map(str::to_string))
        })
        .collect();
    let any = pods.iter().any(|p| is_ready_endpoint(service, p));
    Sample {
        color,
        images: any.then_some(images),
    }
}

/// Where the sampler reads the cluster.
#[derive(Clone)]
enum Source {
    /// The fake's stored state, read in memory (Service and Pods at one instant).
    Fake(ObjectReader),
    /// A real cluster, through its API (a get and a list per sample).
    Real(kube::Client),
}

impl Source {
    async fn sample(&self, namespace: &str, service: &str) -> Option<Sample> {
        match self {
            Source::Fake(reader) => {
                let mut both = reader.snapshot(&["Service", "Pod"]);
                let pods = both.pop().unwrap_or_default();
                let services = both.pop().unwrap_or_default();
                let svc = services.iter().find(|s| {
                    s.pointer("/metadata/namespace").and_then(Value::as_str) == Some(namespace)
                        && s.pointer("/metadata/name").and_then(Value::as_str) == Some(service)
                });
                Some(route(svc, &pods))
            }
            Source::Real(client) => {
                let services: Api<Service> = Api::namespaced(client.clone(), namespace);
                let pods: Api<Pod> = Api::namespaced(client.clone(), namespace);
                // A failed read is no evidence either way: the sample is skipped.
                let svc = services.get_opt(service).await.ok()?;
                let list = pods.list(&Default::default()).await.ok()?;
                let svc = svc.map(|s| serde_json::to_value(s).unwrap());
                let pods: Vec<Value> = list
                    .items
                    .into_iter()
                    .map(|p| serde_json::to_value(p).unwrap())
                    .collect();
                Some(route(svc.as_ref(), &pods))
            }
        }
    }
}

/// Samples one Service's routing from a task of its own until [`Sampler::report`].
pub struct Sampler {
    stop: Arc<AtomicBool>,
    /// Samples taken so far.
    taken: Arc<AtomicUsize>,
    task: JoinHandle<Vec<(Sample, usize)>>,
}

/// What a [`Sampler`] saw.
#[derive(Debug, Clone)]
pub struct Report {
    /// Samples taken.
    pub samples: usize,
    /// Samples with no ready endpoint (a request then would have failed).
    pub empty: usize,
    /// Each change of the set of images behind the Service (between samples that had endpoints), in order.
    pub transitions: Vec<(BTreeSet<String>, BTreeSet<String>)>,
    /// The samples, run-length encoded: each distinct consecutive sample and how often it was seen.
    pub runs: Vec<(Sample, usize)>,
}

impl Report {
    /// The transitions as `old → new` image lists, for messages and comparisons.
    pub fn transition_images(&self) -> Vec<(Vec<String>, Vec<String>)> {
        self.transitions
            .iter()
            .map(|(a, b)| (a.iter().cloned().collect(), b.iter().cloned().collect()))
            .collect()
    }
}

impl std::fmt::Display for Report {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        writeln!(
            f,
            "{} samples, {} without endpoint, {} image transitions",
            self.samples,
            self.empty,
            self.transitions.len()
        )?;
        for (s, n) in &self.runs {
            let images = match &s.images {
                Some(i) => i.iter().cloned().collect::<Vec<_>>().join(","),
                None => "NO ENDPOINT".to_string(),
            };
            writeln!(f, "  {n:>6} × color {:?}: {images}", s.color)?;
        }
        Ok(())
    }
}

impl Sampler {
    /// Starts sampling Service `service` in `namespace` every few milliseconds (the fake) or as fast as the API
    /// answers, at most every 50 ms (a real cluster).
    pub fn start(cluster: &Cluster, namespace: &str, service: &str) -> Sampler {
        let (source, every) = match &cluster.fake {
            Some(f) => (Source::Fake(f.reader()), Duration::from_millis(3)),
            None => (
                Source::Real(cluster.client.clone()),
                Duration::from_millis(50),
            ),
        };
        let stop = Arc::new(AtomicBool::new(false));
        let taken = Arc::new(AtomicUsize::new(0));
        let (ns, svc, flag) = (
            namespace.to_string(),
            service.to_string(),
            Arc::clone(&stop),
        );
        let count = Arc::clone(&taken);
        let task = tokio::spawn(async move {
            let mut runs: Vec<(Sample, usize)> = Vec::new();
            while !flag.load(Ordering::SeqCst) {
                if let Some(s) = source.sample(&ns, &svc).await {
                    count.fetch_add(1, Ordering::SeqCst);
                    match runs.last_mut() {
                        Some((last, n)) if *last == s => *n += 1,
                        _ => runs.push((s, 1)),
                    }
                }
                tokio::time::sleep(every).await;
            }
            // One last look, so the report ends with the state the scenario left.
            if let Some(s) = source.sample(&ns, &svc).await {
                match runs.last_mut() {
                    Some((last, n)) if *last == s => *n += 1,
                    _ => runs.push((s, 1)),
                }
            }
            runs
        });
        Sampler { stop, taken, task }
    }

    /// Waits until `n` more samples have been taken (so a state the scenario holds is seen, whatever the load).
    pub async fn wait_samples(&self, n: usize) {
        let target = self.taken.load(Ordering::SeqCst) + n;
        while self.taken.load(Ordering::SeqCst) < target {
            assert!(!self.task.is_finished(), "the traffic sampler stopped");
            tokio::time::sleep(Duration::from_millis(1)).await;
        }
    }

    /// Stops sampling and reports.
    pub async fn report(self) -> Report {
        self.stop.store(true, Ordering::SeqCst);
        let runs = self.task.await.unwrap();
        summarize(runs)
    }
}

/// Counts and transitions of a run-length encoded sample sequence.
pub fn summarize(runs: Vec<(Sample, usize)>) -> Report {
    let samples = runs.iter().map(|(_, n)| n).sum();
    let empty = runs
        .iter()
        .filter(|(s, _)| s.images.is_none())
        .map(|(_, n)| n)
        .sum();
    let mut transitions = Vec::new();
    let mut last: Option<&BTreeSet<String>> = None;
    for (s, _) in &runs {
        if let Some(images) = &s.images {
            if let Some(prev) = last
                && prev != images
            {
                transitions.push((prev.clone(), images.clone()));
            }
            last = Some(images);
        }
    }
    Report {
        samples,
        empty,
        transitions,
        runs,
    }
}
