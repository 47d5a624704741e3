//! The blue/green verify check (`devloop::verify::verify`) against a Kubernetes API: the fake API server in
//! `tests/support` (a Deployment's pods whose HTTP port is a tiny responder on 127.0.0.1; Job pods whose log and
//! exit the test plays), or a real cluster when `DEVLOOP_TEST_KUBECONFIG` names its kubeconfig.
//!
//! Real-cluster notes: the HTTP scenarios need `DEVLOOP_TEST_HTTP_IMAGE`, an image answering `GET /` with 200 and
//! an unknown path with 404 on port `DEVLOOP_TEST_HTTP_PORT` (default 8080), e.g. a `FROM scratch` busybox running
//! `httpd -f -p 8080 -h /www` with an `index.html`; the Job scenarios need `DEVLOOP_TEST_SHELL_IMAGE` (an image
//! with `sh`, `seq` and `sleep`, e.g. `busybox:1.36`). Each is skipped with a message when its image is unset.
//! Scenarios the fake alone can stage (a pod that answers late) are skipped there too.
#![allow(clippy::unwrap_used, clippy::print_stderr)]

mod support;

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use devloop::config::blue_green::{Check, Verify};
use devloop::verify::{Copy, VerifyContext, VerifyError, verify};
use k8s_openapi::api::apps::v1::Deployment;
use k8s_openapi::api::batch::v1::Job;
use k8s_openapi::api::core::v1::Pod;
use kube::api::{Api, ListParams, Patch, PatchParams};
use serde_json::json;
use support::cluster::Cluster;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpListener;
use tokio_util::sync::CancellationToken;

const SERVICE: &str = "api";
const COLOR: &str = "green";
const JOB: &str = "api-verify-green";

/// A scenario: the cluster, and the images its pods run.
struct Scenario {
    c: Cluster,
    http_image: Option<String>,
    http_port: u16,
    shell_image: Option<String>,
}

impl Scenario {
    async fn start() -> Scenario {
        let c = Cluster::start().await;
        c.ensure_namespace().await;
        let (http_image, http_port, shell_image) = if c.fake.is_some() {
            (
                Some("registry.example/api:1".to_string()),
                8080,
                Some("registry.example/verify-job:1".to_string()),
            )
        } else {
            (
                std::env::var("DEVLOOP_TEST_HTTP_IMAGE").ok(),
                std::env::var("DEVLOOP_TEST_HTTP_PORT")
                    .ok()
                    .and_then(|p| p.parse().ok())
                    .unwrap_or(8080),
                std::env::var("DEVLOOP_TEST_SHELL_IMAGE").ok(),
            )
        };
        Scenario {
            c,
            http_image,
            http_port,
            shell_image,
        }
    }

    /// The HTTP image, or `None` (after saying why the scenario is skipped).
    fn http_image(&self) -> Option<String> {
        if self.http_image.is_none() {
            eprintln!(
                "skipped: DEVLOOP_TEST_HTTP_IMAGE must name an image serving HTTP on a real cluster"
            );
        }
        self.http_image.clone()
    }

    fn shell_image(&self) -> Option<String> {
        if self.shell_image.is_none() {
            eprintln!(
                "skipped: DEVLOOP_TEST_SHELL_IMAGE must name an image with `sh` on a real cluster"
            );
        }
        self.shell_image.clone()
    }

    fn labels() -> BTreeMap<String, String> {
        BTreeMap::from([
            ("app".to_string(), SERVICE.to_string()),
            ("devloop.dev/color".to_string(), COLOR.to_string()),
        ])
    }

    fn context(&self, job_image: Option<String>) -> VerifyContext {
        VerifyContext {
            namespace: self.c.ns.clone(),
            service: SERVICE.to_string(),
            color: COLOR.to_string(),
            copies: vec![Copy {
                deployment: "api-green".to_string(),
                labels: Self::labels(),
            }],
            preview_url: format!("http://api-preview.{}.svc:80", self.c.ns),
            job_image,
            labels: BTreeMap::from([
                (
                    "app.kubernetes.io/managed-by".to_string(),
                    "devloop".to_string(),
                ),
                ("devloop.dev/test".to_string(), "verify".to_string()),
            ]),
        }
    }

    /// Applies `api-green` (`replicas` pods, container port `http`) and waits until that many pods are ready.
    async fn deploy(&self, image: &str, replicas: i32) {
        let labels = Self::labels();
        let deployment = json!({
            "apiVersion": "apps/v1", "kind": "Deployment", "metadata": {"name": "api-green", "labels": labels},
            "spec": {
                "replicas": replicas,
                "selector": {"matchLabels": labels},
                "template": {
                    "metadata": {"labels": labels},
                    "spec": {
                        "terminationGracePeriodSeconds": 1,
                        "containers": [{"name": "main", "image": image,
                            "ports": [{"name": "http", "containerPort": self.http_port}, {"containerPort": 9090}]}]
                    }
                }
            }
        });
        Api::<Deployment>::namespaced(self.c.client.clone(), &self.c.ns)
            .patch(
                "api-green",
                &PatchParams::apply("devloop-test").force(),
                &Patch::Apply(&deployment),
            )
            .await
            .unwrap();
        let pods: Api<Pod> = Api::namespaced(self.c.client.clone(), &self.c.ns);
        let lp = ListParams::default().labels("app=api,devloop.dev/color=green");
        for _ in 0..1200 {
            let ready = pods
                .list(&lp)
                .await
                .unwrap()
                .items
                .iter()
                .filter(|p| {
                    p.status
                        .iter()
                        .flat_map(|s| s.conditions.iter().flatten())
                        .any(|c| c.type_ == "Ready" && c.status == "True")
                })
                .count();
            if ready == usize::try_from(replicas).unwrap() {
                return;
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        panic!("api-green never had {replicas} ready pods");
    }

    /// On the fake: serves the HTTP image's port from `responder`.
    fn serve(&self, image: &str, responder: &Responder) {
        if let Some(f) = &self.c.fake {
            f.serve_image_port(image, self.http_port, responder.addr);
        }
    }

    async fn job(&self) -> Option<Job> {
        Api::<Job>::namespaced(self.c.client.clone(), &self.c.ns)
            .get_opt(JOB)
            .await
            .unwrap()
    }

    /// Waits until the check's Job exists; returns it.
    async fn job_created(&self) -> Job {
        for _ in 0..1200 {
            if let Some(j) = self.job().await {
                return j;
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        panic!("job {JOB} was never created");
    }
}

fn http(port: &str, path: &str, status: Option<u16>, timeout: Duration) -> Verify {
    Verify {
        check: Check::Http {
            port: port.to_string(),
            path: path.to_string(),
            status,
        },
        timeout,
    }
}

fn job_check(image: &str, script: &str, timeout: Duration) -> Verify {
    Verify {
        check: Check::Job {
            image: image.to_string(),
            command: vec!["sh".to_string(), "-c".to_string(), script.to_string()],
        },
        timeout,
    }
}

/// A tiny HTTP/1.1 server standing in for the pods' container: `GET /` → 200, anything else → 404; the first
/// `refuse` requests get 503. Counts the requests.
struct Responder {
    addr: SocketAddr,
    requests: Arc<AtomicUsize>,
    task: tokio::task::JoinHandle<()>,
}

impl Responder {
    async fn start(refuse: usize) -> Responder {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let requests = Arc::new(AtomicUsize::new(0));
        let counter = Arc::clone(&requests);
        let task = tokio::spawn(async move {
            while let Ok((mut socket, _)) = listener.accept().await {
                let counter = Arc::clone(&counter);
                tokio::spawn(async move {
                    let mut buf = vec![0u8; 4096];
                    let mut got = Vec::new();
                    while !got.windows(4).any(|w| w == b"\r\n\r\n") {
                        match socket.read(&mut buf).await {
                            Ok(0) | Err(_) => return,
                            Ok(n) => got.extend_from_slice(&buf[..n]),
                        }
                    }
                    let n = counter.fetch_add(1, Ordering::SeqCst);
                    let head = String::from_utf8_lossy(&got).to_string();
                    assert!(head.contains("\r\nHost: localhost\r\n"), "{head}");
                    assert!(head.contains("\r\nConnection: close\r\n"), "{head}");
                    let status = if n < refuse {
                        "503 Service Unavailable"
                    } else if head.starts_with("GET / HTTP/1.1\r\n") {
                        "200 OK"
                    } else {
                        "404 Not Found"
                    };
                    let body = "secret-token-in-the-body\n";
                    let answer = format!(
                        "HTTP/1.1 {status}\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
                        body.len()
                    );
                    let _ = socket.write_all(answer.as_bytes()).await;
                    let _ = socket.shutdown().await;
                });
            }
        });
        Responder {
            addr,
            requests,
            task,
        }
    }
}

impl Drop for Responder {
    fn drop(&mut self) {
        self.task.abort();
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn http_passes_when_every_pod_answers() {
    let s = Scenario::start().await;
    let Some(image) = s.http_image() else { return };
    let responder = Responder::start(0).await;
    s.serve(&image, &responder);
    s.deploy(&image, 2).await;
    let port = s.http_port.to_string();
    let check = http(&port, "/", Some(200), Duration::from_secs(30));
    let verified = verify(
        &s.c.client,
        &check,
        &s.context(None),
        &CancellationToken::new(),
    )
    .await
    .unwrap();
    assert!(
        verified
            .summary
            .starts_with("GET / → 200 from 2 pods of api-green in "),
        "{}",
        verified.summary
    );
    if s.c.fake.is_some() {
        assert_eq!(responder.requests.load(Ordering::SeqCst), 2);
    }
    s.c.cleanup().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_wrong_status_fails_at_the_timeout_naming_pod_and_answer() {
    let s = Scenario::start().await;
    let Some(image) = s.http_image() else { return };
    let responder = Responder::start(0).await;
    s.serve(&image, &responder);
    s.deploy(&image, 1).await;
    let port = s.http_port.to_string();
    let check = http(&port, "/devloop-missing", None, Duration::from_secs(2));
    let err = verify(
        &s.c.client,
        &check,
        &s.context(None),
        &CancellationToken::new(),
    )
    .await
    .unwrap_err();
    let text = err.to_string();
    assert!(matches!(err, VerifyError::HttpTimeout { .. }), "{text}");
    let pods: Api<Pod> = Api::namespaced(s.c.client.clone(), &s.c.ns);
    let pod = pods
        .list(&ListParams::default().labels("app=api"))
        .await
        .unwrap()
        .items[0]
        .metadata
        .name
        .clone()
        .unwrap();
    assert!(
        text.starts_with("blue/green `api`: verify: GET `/devloop-missing` did not get a 2xx status from every pod of the new copy within 2s:"),
        "{text}"
    );
    assert!(
        text.contains(&format!("\n  pod `{pod}`: `HTTP/1.")),
        "{text}"
    );
    assert!(text.contains(" 404"), "{text}");
    assert!(text.contains("\n\nhint: "), "{text}");
    assert!(
        !text.contains("secret-token"),
        "a body reached the message: {text}"
    );
    s.c.cleanup().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_pod_that_answers_after_a_few_tries_passes() {
    let s = Scenario::start().await;
    if s.c.fake.is_none() {
        eprintln!(
            "skipped on a real cluster: needs a pod that answers 503 a few times first (the fake's responder)"
        );
        return;
    }
    let image = s.http_image().unwrap();
    let responder = Responder::start(3).await;
    s.serve(&image, &responder);
    s.deploy(&image, 1).await;
    let check = http("8080", "/", None, Duration::from_secs(60));
    let verified = verify(
        &s.c.client,
        &check,
        &s.context(None),
        &CancellationToken::new(),
    )
    .await
    .unwrap();
    assert!(
        verified
            .summary
            .starts_with("GET / → 2xx from 1 pod of api-green in "),
        "{}",
        verified.summary
    );
    assert_eq!(responder.requests.load(Ordering::SeqCst), 4);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn nothing_listening_is_a_refused_connection_in_the_message() {
    let s = Scenario::start().await;
    if s.c.fake.is_none() {
        eprintln!("skipped on a real cluster: needs a pod port nothing listens on (the fake's)");
        return;
    }
    let image = s.http_image().unwrap();
    s.deploy(&image, 1).await;
    let check = http("8080", "/", None, Duration::from_secs(1));
    let text = verify(
        &s.c.client,
        &check,
        &s.context(None),
        &CancellationToken::new(),
    )
    .await
    .unwrap_err()
    .to_string();
    assert!(text.contains(": connection refused on port 8080"), "{text}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_named_port_is_looked_up_in_the_pod_spec() {
    let s = Scenario::start().await;
    let Some(image) = s.http_image() else { return };
    let responder = Responder::start(0).await;
    s.serve(&image, &responder);
    s.deploy(&image, 1).await;
    let check = http("http", "/", Some(200), Duration::from_secs(30));
    let verified = verify(
        &s.c.client,
        &check,
        &s.context(None),
        &CancellationToken::new(),
    )
    .await
    .unwrap();
    assert!(
        verified.summary.contains("1 pod of api-green"),
        "{}",
        verified.summary
    );

    let check = http("grpc", "/", Some(200), Duration::from_secs(30));
    let err = verify(
        &s.c.client,
        &check,
        &s.context(None),
        &CancellationToken::new(),
    )
    .await
    .unwrap_err();
    let text = err.to_string();
    assert!(
        text.starts_with("blue/green `api`: verify.http.port: pod `api-green-"),
        "{text}"
    );
    assert!(
        text.contains(&format!(
            "has no container port named `grpc` (its ports: `{}` (http), `9090`)",
            s.http_port
        )),
        "{text}"
    );
    s.c.cleanup().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_job_that_completes_passes_and_is_deleted() {
    let s = Scenario::start().await;
    let Some(image) = s.shell_image() else { return };
    let script =
        r#"[ "$DEVLOOP_COLOR" = green ] && [ "$DEVLOOP_SERVICE" = api ] && [ -n "$PREVIEW_URL" ]"#;
    let check = job_check(&image, script, Duration::from_secs(120));
    let ctx = s.context(Some(image.clone()));
    let cancel = CancellationToken::new();
    let observe = async {
        let job = s.job_created().await;
        s.c.play_job_pod(JOB, "verify", &[], 0).await;
        job
    };
    let (verified, job) = tokio::join!(verify(&s.c.client, &check, &ctx, &cancel), observe);
    let verified = verified.unwrap();
    assert!(
        verified
            .summary
            .starts_with("job api-verify-green completed in "),
        "{}",
        verified.summary
    );
    let spec = job.spec.clone().unwrap();
    assert_eq!(spec.backoff_limit, Some(0));
    let pod = spec.template.spec.unwrap();
    assert_eq!(pod.restart_policy.as_deref(), Some("Never"));
    let env: BTreeMap<String, String> = pod.containers[0]
        .env
        .iter()
        .flatten()
        .map(|e| (e.name.clone(), e.value.clone().unwrap_or_default()))
        .collect();
    assert_eq!(env["PREVIEW_URL"], ctx.preview_url);
    assert_eq!(env["DEVLOOP_COLOR"], "green");
    assert_eq!(env["DEVLOOP_SERVICE"], "api");
    assert_eq!(pod.containers[0].image.as_deref(), Some(image.as_str()));
    let labels = job.metadata.labels.clone().unwrap();
    assert_eq!(labels["devloop.dev/test"], "verify");
    let managers: Vec<_> = job
        .metadata
        .managed_fields
        .iter()
        .flatten()
        .filter(|m| m.operation.as_deref() == Some("Apply"))
        .filter_map(|m| m.manager.clone())
        .collect();
    assert_eq!(managers, ["devloop"]);
    assert!(s.job().await.is_none(), "the job was not deleted");
    s.c.cleanup().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_failed_job_shows_its_last_log_lines_and_is_deleted() {
    let s = Scenario::start().await;
    let Some(image) = s.shell_image() else { return };
    let script = "for i in $(seq 1 15); do echo line $i; done; exit 3";
    let check = job_check(&image, script, Duration::from_secs(120));
    let lines: Vec<String> = (1..=15).map(|i| format!("line {i}")).collect();
    let ctx = s.context(Some(image.clone()));
    let cancel = CancellationToken::new();
    let (result, ()) = tokio::join!(
        verify(&s.c.client, &check, &ctx, &cancel),
        s.c.play_job_pod(JOB, "verify", &lines, 3)
    );
    let err = result.unwrap_err();
    let text = err.to_string();
    assert!(matches!(err, VerifyError::JobFailed { .. }), "{text}");
    assert!(
        text.starts_with(
            "blue/green `api`: verify: job `api-verify-green` failed: BackoffLimitExceeded: "
        ),
        "{text}"
    );
    assert!(
        text.contains("container `verify` exited with code 3"),
        "{text}"
    );
    assert!(
        text.contains("\n  last lines of pod `api-verify-green-"),
        "{text}"
    );
    assert!(text.contains("\n    line 6\n"), "{text}");
    assert!(text.contains("\n    line 15\n"), "{text}");
    assert!(!text.contains("line 5\n"), "more than 10 lines: {text}");
    assert!(text.contains("\n\nhint: "), "{text}");
    assert!(s.job().await.is_none(), "the job was not deleted");
    s.c.cleanup().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_job_that_runs_too_long_times_out_and_is_deleted() {
    let s = Scenario::start().await;
    let Some(image) = s.shell_image() else { return };
    let check = job_check(&image, "sleep 600", Duration::from_secs(2));
    let err = verify(
        &s.c.client,
        &check,
        &s.context(Some(image)),
        &CancellationToken::new(),
    )
    .await
    .unwrap_err();
    let text = err.to_string();
    assert!(
        text.starts_with(
            "blue/green `api`: verify: job `api-verify-green` did not finish within 2s"
        ),
        "{text}"
    );
    assert!(s.job().await.is_none(), "the job was not deleted");
    s.c.cleanup().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_signal_stops_the_check_and_deletes_the_job() {
    let s = Scenario::start().await;
    let Some(image) = s.shell_image() else { return };
    let check = job_check(&image, "sleep 600", Duration::from_secs(300));
    let cancel = CancellationToken::new();
    let ctx = s.context(Some(image));
    let signal = async {
        s.job_created().await;
        cancel.cancel();
    };
    let (result, ()) = tokio::join!(verify(&s.c.client, &check, &ctx, &cancel), signal);
    assert!(matches!(result, Err(VerifyError::Cancelled)), "{result:?}");
    assert!(s.job().await.is_none(), "the job was not deleted");
    s.c.cleanup().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_kept_job_of_an_earlier_run_is_replaced_and_a_foreign_one_is_left_alone() {
    let s = Scenario::start().await;
    let Some(image) = s.shell_image() else { return };
    let earlier = |manager: &str| {
        let job = json!({
            "apiVersion": "batch/v1", "kind": "Job", "metadata": {"name": JOB},
            "spec": {"backoffLimit": 0, "template": {"spec": {"restartPolicy": "Never",
                "containers": [{"name": "verify", "image": image, "command": ["sh", "-c", "sleep 600"]}]}}}
        });
        let jobs: Api<Job> = Api::namespaced(s.c.client.clone(), &s.c.ns);
        let pp = PatchParams::apply(manager);
        async move { jobs.patch(JOB, &pp, &Patch::Apply(&job)).await.unwrap() }
    };
    let check = job_check(&image, "true", Duration::from_secs(120));
    let ctx = s.context(Some(image.clone()));

    let foreign = earlier("someone-else").await;
    let err = verify(&s.c.client, &check, &ctx, &CancellationToken::new())
        .await
        .unwrap_err();
    assert!(matches!(err, VerifyError::ForeignJob { .. }), "{err}");
    let still = s.job().await.expect("a foreign job was deleted");
    assert_eq!(still.metadata.uid, foreign.metadata.uid);
    Api::<Job>::namespaced(s.c.client.clone(), &s.c.ns)
        .delete(JOB, &kube::api::DeleteParams::foreground())
        .await
        .unwrap();
    while s.job().await.is_some() {
        tokio::time::sleep(Duration::from_millis(50)).await;
    }

    let kept = earlier("devloop").await;
    let observe = async {
        loop {
            if let Some(j) = s.job().await
                && j.metadata.uid != kept.metadata.uid
            {
                break;
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        s.c.play_job_pod(JOB, "verify", &[], 0).await;
    };
    let cancel = CancellationToken::new();
    let (verified, ()) = tokio::join!(verify(&s.c.client, &check, &ctx, &cancel), observe);
    verified.unwrap();
    assert!(s.job().await.is_none(), "the job was not deleted");
    s.c.cleanup().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_job_without_an_image_is_an_error() {
    let s = Scenario::start().await;
    let check = job_check("verify", "true", Duration::from_secs(5));
    let err = verify(
        &s.c.client,
        &check,
        &s.context(None),
        &CancellationToken::new(),
    )
    .await
    .unwrap_err();
    assert!(matches!(err, VerifyError::NoJobImage { .. }), "{err}");
    assert!(err.to_string().contains("\n\nhint: "), "{err}");
    s.c.cleanup().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_signal_stops_the_http_check() {
    let s = Scenario::start().await;
    let Some(image) = s.http_image() else { return };
    let responder = Responder::start(0).await;
    s.serve(&image, &responder);
    s.deploy(&image, 1).await;
    // A path no pod answers 200 on: without the signal the check would go on for five minutes.
    let port = s.http_port.to_string();
    let check = http(
        &port,
        "/devloop-missing",
        Some(200),
        Duration::from_secs(300),
    );
    let cancel = CancellationToken::new();
    let ctx = s.context(None);
    let signal = async {
        if s.c.fake.is_some() {
            while responder.requests.load(Ordering::SeqCst) < 2 {
                tokio::time::sleep(Duration::from_millis(20)).await;
            }
        } else {
            tokio::time::sleep(Duration::from_secs(2)).await;
        }
        cancel.cancel();
    };
    let (result, ()) = tokio::join!(verify(&s.c.client, &check, &ctx, &cancel), signal);
    assert!(matches!(result, Err(VerifyError::Cancelled)), "{result:?}");
    s.c.cleanup().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_job_whose_image_cannot_be_pulled_says_so_at_the_timeout() {
    let s = Scenario::start().await;
    let image = "registry.invalid/devloop-verify-missing:1";
    s.c.fail_image(
        "devloop-verify-missing",
        support::fake_apiserver::PodState::ImagePullBackOff,
    );
    let timeout = Duration::from_secs(if s.c.fake.is_some() { 3 } else { 30 });
    let check = job_check(image, "true", timeout);
    let err = verify(
        &s.c.client,
        &check,
        &s.context(Some(image.to_string())),
        &CancellationToken::new(),
    )
    .await
    .unwrap_err();
    let text = err.to_string();
    assert!(matches!(err, VerifyError::JobTimeout { .. }), "{text}");
    assert!(text.contains("; pod `api-verify-green-"), "{text}");
    assert!(
        text.contains("` is waiting: ErrImagePull")
            || text.contains("` is waiting: ImagePullBackOff"),
        "{text}"
    );
    assert!(s.job().await.is_none(), "the job was not deleted");
    s.c.cleanup().await;
}
