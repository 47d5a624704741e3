//! Blue/green releases (`deploy.kubernetes.blueGreen`) through the CLI against a Kubernetes API: the fake API server
//! in `tests/support`, or a real cluster when `DEVLOOP_TEST_KUBECONFIG` names its kubeconfig (same scenarios, same
//! assertions; the request-log checks are the fake's only). Traffic is judged by `support::traffic`: what kube-proxy
//! would route a request to, sampled all along a scenario.
//!
//! Real-cluster notes: each test uses its own namespace; the releases deploy `DEVLOOP_TEST_IMAGES` (four
//! comma-separated references the nodes can run; default `registry.k8s.io/pause` 3.10, 3.9, 3.8 and 3.7), and the
//! failures an unpullable reference. `real_cluster_request_loop` needs a real cluster: see its doc.
#![allow(clippy::unwrap_used, clippy::print_stderr)]

mod support;

use std::collections::BTreeSet;

use serde_json::{Value, json};

use support::Project;
use support::cluster::{Cluster, assert_exit, configmap};
use support::fake_apiserver::{PodState, RequestRecord};
use support::stderr;
use support::traffic::{Sampler, route, summarize};

/// The image name the manifests use; `--images` replaces it.
const ARTIFACT: &str = "bg-api";

/// Four references pods can run, one per release.
fn versions() -> Vec<String> {
    match std::env::var("DEVLOOP_TEST_IMAGES") {
        Ok(list) => list.split(',').map(str::to_string).collect(),
        Err(_) => ["3.10", "3.9", "3.8", "3.7"]
            .iter()
            .map(|t| format!("registry.k8s.io/pause:{t}"))
            .collect(),
    }
}

fn version(n: usize) -> String {
    versions()[n].clone()
}

/// An image whose pods never become ready: unpullable on a real cluster, `ImagePullBackOff` on the fake.
fn broken_image(c: &Cluster) -> String {
    c.fail_image("bg-broken", PodState::ImagePullBackOff);
    "registry.invalid/bg-broken:1".to_string()
}

/// How the project releases `api`.
struct Release {
    /// `keepPrevious`.
    keep_previous: &'static str,
    /// Extra YAML lines of the blueGreen entry, indented as its fields after `- `, e.g. `  verify: …`.
    extra: &'static str,
    /// Blue/green only in profile `prod` (`-p prod`); a plain deploy without it.
    in_profile: bool,
}

impl Release {
    fn keep(keep_previous: &'static str) -> Release {
        Release {
            keep_previous,
            extra: "",
            in_profile: false,
        }
    }
}

/// The devloop.yaml of project `shop` releasing Service `api` as `release` says.
fn config_yaml(release: &Release) -> String {
    let head = "apiVersion: devloop/v1alpha1\nkind: Config\nmetadata:\n  name: shop\nmanifests:\n  rawYaml: [\"k8s/*.yaml\"]\n";
    // The entry at indentation 0; indented below for where it goes.
    let entry = format!(
        "- service: api\n  keepPrevious: {}\n{}",
        release.keep_previous, release.extra
    );
    let indent = |n: usize| {
        entry
            .lines()
            .map(|l| format!("{}{l}\n", " ".repeat(n)))
            .collect::<String>()
    };
    if release.in_profile {
        format!(
            "{head}profiles:\n  - name: prod\n    deploy:\n      kubernetes:\n        blueGreen:\n{}",
            indent(10)
        )
    } else {
        format!(
            "{head}deploy:\n  kubernetes:\n    blueGreen:\n{}",
            indent(6)
        )
    }
}

/// A project `shop`: Deployment `api` (2 replicas, port `http` 8080, env from ConfigMap `api-settings`), Service
/// `api` (selector `app: api`), the ConfigMap; released blue/green as `release` says.
fn bg_project(release: &Release) -> Project {
    let p = Project::new();
    p.write("devloop.yaml", &config_yaml(release));
    p.write(
        "k8s/api.yaml",
        &format!(
            "apiVersion: apps/v1\nkind: Deployment\nmetadata:\n  name: api\nspec:\n  replicas: 2\n  selector:\n    matchLabels: {{app: api}}\n  template:\n    metadata:\n      labels: {{app: api}}\n    spec:\n      containers:\n        - name: main\n          image: {ARTIFACT}\n          ports: [{{name: http, containerPort: 8080}}]\n          envFrom: [{{configMapRef: {{name: api-settings}}}}]\n"
        ),
    );
    p.write(
        "k8s/svc.yaml",
        "apiVersion: v1\nkind: Service\nmetadata:\n  name: api\nspec:\n  selector: {app: api}\n  ports: [{name: http, port: 80, targetPort: http}]\n",
    );
    p.write("k8s/cm.yaml", &configmap("api-settings", "1"));
    p
}

/// `devloop deploy --images bg-api=IMAGE [more args]` in the test's namespace.
async fn deploy(c: &Cluster, p: &Project, image: &str, more: &[&str]) -> std::process::Output {
    deploy_in(c, p, image, more, &c.ns).await
}

async fn deploy_in(
    c: &Cluster,
    p: &Project,
    image: &str,
    more: &[&str],
    ns: &str,
) -> std::process::Output {
    let images = format!("{ARTIFACT}={image}");
    let mut args = vec!["deploy", "--images", &images];
    args.extend_from_slice(more);
    let out = c.devloop_in(p, &args, Some(ns)).await;
    eprintln!("deploy {image} in {ns}:\n{}", stderr(&out));
    out
}

async fn deployment(c: &Cluster, ns: &str, name: &str) -> Option<Value> {
    c.get("apps/v1", "Deployment", Some(ns), name).await
}

async fn service(c: &Cluster, ns: &str) -> Value {
    c.get("v1", "Service", Some(ns), "api")
        .await
        .expect("Service api exists")
}

fn selector_color(svc: &Value) -> Option<&str> {
    svc.pointer("/spec/selector/devloop.dev~1color")
        .and_then(Value::as_str)
}

fn annotation<'a>(obj: &'a Value, key: &str) -> Option<&'a str> {
    obj.pointer(&format!("/metadata/annotations/{}", key.replace('/', "~1")))
        .and_then(Value::as_str)
}

fn replicas(d: &Value) -> i64 {
    d.pointer("/spec/replicas").and_then(Value::as_i64).unwrap()
}

fn ready_replicas(d: &Value) -> i64 {
    d.pointer("/status/readyReplicas")
        .and_then(Value::as_i64)
        .unwrap_or(0)
}

fn images_of(d: &Value) -> Vec<String> {
    d.pointer("/spec/template/spec/containers")
        .and_then(Value::as_array)
        .unwrap()
        .iter()
        .map(|c| c["image"].as_str().unwrap().to_string())
        .collect()
}

fn set<S: AsRef<str>>(images: &[S]) -> BTreeSet<String> {
    images.iter().map(|s| s.as_ref().to_string()).collect()
}

/// The index of the first successful request `method path` (path ending in `suffix`) by field manager `manager`.
fn position(reqs: &[RequestRecord], method: &str, suffix: &str, manager: &str) -> Option<usize> {
    reqs.iter().position(|r| {
        r.method == method
            && r.path.ends_with(suffix)
            && r.field_manager.as_deref() == Some(manager)
            && r.code.is_some_and(|c| c < 300)
    })
}

/// Every object of the project's copy `name` carries colour `color` where the design puts it.
fn assert_copy(d: &Value, color: &str, image: &str, want_replicas: i64) {
    let name = d["metadata"]["name"].as_str().unwrap();
    assert_eq!(
        d["metadata"]["labels"]["devloop.dev/color"], color,
        "{name}"
    );
    assert_eq!(
        d["spec"]["selector"]["matchLabels"]["devloop.dev/color"], color,
        "{name}"
    );
    assert_eq!(
        d["spec"]["template"]["metadata"]["labels"]["devloop.dev/color"], color,
        "{name}"
    );
    assert_eq!(annotation(d, "devloop.dev/copy-of"), Some("api"), "{name}");
    assert!(
        annotation(d, "devloop.dev/images").is_some_and(|i| i.contains(image)),
        "{name} annotates its images: {:?}",
        d["metadata"]["annotations"]
    );
    assert_eq!(images_of(d), vec![image.to_string()], "{name}");
    assert_eq!(replicas(d), want_replicas, "{name}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn green_is_applied_and_ready_before_the_switch_then_blue_is_scaled_down() {
    let c = Cluster::start().await;
    let p = bg_project(&Release::keep("0s"));
    let (v1, v2) = (version(0), version(1));

    assert_exit(&deploy(&c, &p, &v1, &[]).await, 0);
    let blue = deployment(&c, &c.ns, "api-blue").await.expect("api-blue");
    assert_copy(&blue, "blue", &v1, 2);
    assert_eq!(ready_replicas(&blue), 2, "the first copy is ready");
    assert!(
        deployment(&c, &c.ns, "api").await.is_none(),
        "the manifests' Deployment itself is never applied"
    );
    let svc = service(&c, &c.ns).await;
    assert_eq!(selector_color(&svc), Some("blue"));
    assert_eq!(svc["spec"]["selector"]["app"], "api");
    assert_eq!(annotation(&svc, "devloop.dev/live-color"), Some("blue"));
    let preview = c
        .get("v1", "Service", Some(&c.ns), "api-preview")
        .await
        .expect("Service api-preview");
    assert_eq!(selector_color(&preview), Some("blue"));

    if let Some(f) = &c.fake {
        f.clear_requests();
    }
    let sampler = Sampler::start(&c, &c.ns, "api");
    sampler.wait_samples(2).await;
    assert_exit(&deploy(&c, &p, &v2, &[]).await, 0);
    let report = sampler.report().await;
    eprintln!("{report}");

    // Traffic: never without an endpoint, and from v1 to v2 in one step.
    assert_eq!(report.empty, 0, "{report}");
    assert_eq!(
        report.transition_images(),
        vec![(vec![v1.clone()], vec![v2.clone()])],
        "{report}"
    );
    // The first sample with the selector on green already had green's ready pods behind it.
    let first_green = report
        .runs
        .iter()
        .find(|(s, _)| s.color.as_deref() == Some("green"))
        .map(|(s, _)| s.clone())
        .expect("the selector switched to green");
    assert_eq!(first_green.images, Some(set(&[&v2])), "{report}");

    // The order, as the API server saw it: green applied → the switch → blue scaled down.
    if let Some(f) = &c.fake {
        let reqs = f.requests();
        let ns = &c.ns;
        let green = position(
            &reqs,
            "PATCH",
            &format!("/namespaces/{ns}/deployments/api-green"),
            "devloop",
        )
        .expect("api-green applied");
        let switch = reqs
            .iter()
            .enumerate()
            .position(|(i, r)| {
                i > green
                    && r.method == "PATCH"
                    && r.path.ends_with(&format!("/namespaces/{ns}/services/api"))
                    && r.body.contains("green")
                    && r.code.is_some_and(|c| c < 300)
            })
            .expect("the switch apply");
        let scale_down = position(
            &reqs,
            "PATCH",
            &format!("/namespaces/{ns}/deployments/api-blue"),
            "devloop-blue-green",
        )
        .expect("api-blue scaled down by the switch manager");
        assert!(
            green < switch && switch < scale_down,
            "green {green}, switch {switch}, scale-down {scale_down}"
        );
        // A Service's selector is one atomic field (`mapType=atomic`): the switch is devloop's apply of the whole
        // rendered Service with the new colour, and every apply before it keeps the live colour.
        assert_eq!(
            reqs[switch].field_manager.as_deref(),
            Some("devloop"),
            "the switch is devloop's apply of the Service"
        );
        for r in reqs[..switch].iter().filter(|r| {
            r.method == "PATCH" && r.path.ends_with(&format!("/namespaces/{ns}/services/api"))
        }) {
            assert!(
                r.body.contains(r#""devloop.dev/color":"blue""#)
                    && !r.body.contains(r#""devloop.dev/color":"green""#),
                "before the switch the Service stays on blue: {}",
                r.body
            );
        }
    }

    let green = deployment(&c, &c.ns, "api-green").await.expect("api-green");
    assert_copy(&green, "green", &v2, 2);
    assert_eq!(ready_replicas(&green), 2);
    let blue = deployment(&c, &c.ns, "api-blue")
        .await
        .expect("api-blue kept");
    assert_eq!(replicas(&blue), 0, "keepPrevious 0s scales blue to zero");
    assert_eq!(annotation(&blue, "devloop.dev/replicas"), Some("2"));
    let svc = service(&c, &c.ns).await;
    assert_eq!(selector_color(&svc), Some("green"));
    assert_eq!(annotation(&svc, "devloop.dev/live-color"), Some("green"));
    assert_eq!(annotation(&svc, "devloop.dev/previous-color"), Some("blue"));
    assert!(annotation(&svc, "devloop.dev/images").is_some_and(|i| i.contains(&v2)));
    let since = annotation(&svc, "devloop.dev/live-since").expect("live-since");
    assert!(
        since.ends_with('Z') && since.contains('T'),
        "RFC 3339 UTC: {since}"
    );
    let selector_owner: Vec<&str> = svc["metadata"]["managedFields"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|m| m["fieldsV1"].to_string().contains("f:selector"))
        .map(|m| m["manager"].as_str().unwrap())
        .collect();
    assert_eq!(
        selector_owner,
        vec!["devloop"],
        "one manager owns the (atomic) selector, so no other apply can take a part of it: {}",
        &svc["metadata"]["managedFields"]
    );
    c.cleanup().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn three_releases_and_a_rollback_switch_traffic_once_each_without_a_gap() {
    let c = Cluster::start().await;
    let p = bg_project(&Release::keep("0s"));
    let v: Vec<String> = versions();
    assert_exit(&deploy(&c, &p, &v[0], &[]).await, 0);

    let sampler = Sampler::start(&c, &c.ns, "api");
    sampler.wait_samples(2).await;
    for image in &v[1..4] {
        assert_exit(&deploy(&c, &p, image, &[]).await, 0);
    }
    let out = c.devloop(&p, &["rollback"]).await;
    eprintln!("rollback:\n{}", stderr(&out));
    assert_exit(&out, 0);
    sampler.wait_samples(2).await;
    let report = sampler.report().await;
    eprintln!("{report}");

    assert_eq!(report.empty, 0, "{report}");
    let one = |a: &String, b: &String| (vec![a.clone()], vec![b.clone()]);
    assert_eq!(
        report.transition_images(),
        vec![
            one(&v[0], &v[1]),
            one(&v[1], &v[2]),
            one(&v[2], &v[3]),
            one(&v[3], &v[2])
        ],
        "{report}"
    );
    // v[3] went to green (blue, green, blue, green); the rollback brought blue back from zero.
    let svc = service(&c, &c.ns).await;
    assert_eq!(selector_color(&svc), Some("blue"));
    let blue = deployment(&c, &c.ns, "api-blue").await.unwrap();
    assert_eq!(images_of(&blue), vec![v[2].clone()]);
    assert_eq!(replicas(&blue), 2, "scaled back up from zero");
    assert_eq!(ready_replicas(&blue), 2);
    c.cleanup().await;
}

/// A failed release: exit 1, the message says the release failed, why (`cause`, e.g. the pod's reason) and that
/// traffic stayed on blue; the Service never moved and the new copy is gone (or kept with `--keep-failed`).
async fn failed_release(
    c: &Cluster,
    p: &Project,
    image: &str,
    more: &[&str],
    cause: &str,
    kept: bool,
) {
    let sampler = Sampler::start(c, &c.ns, "api");
    sampler.wait_samples(2).await;
    let out = deploy(c, p, image, more).await;
    let report = sampler.report().await;
    eprintln!("{report}");
    assert_exit(&out, 1);
    let err = stderr(&out);
    assert!(
        err.contains("failed at") && err.contains(cause),
        "the message names the step and `{cause}`:\n{err}"
    );
    assert!(
        err.contains("traffic") && err.contains("blue"),
        "the message says traffic stayed on blue:\n{err}"
    );
    assert_eq!(report.empty, 0, "{report}");
    assert!(report.transitions.is_empty(), "{report}");
    assert!(
        report
            .runs
            .iter()
            .all(|(s, _)| s.color.as_deref() == Some("blue")),
        "the selector never left blue: {report}"
    );
    let svc = service(c, &c.ns).await;
    assert_eq!(selector_color(&svc), Some("blue"));
    assert_eq!(annotation(&svc, "devloop.dev/live-color"), Some("blue"));
    let blue = deployment(c, &c.ns, "api-blue").await.unwrap();
    assert_eq!(replicas(&blue), 2, "the live copy is untouched");
    assert_eq!(ready_replicas(&blue), 2);
    let green = deployment(c, &c.ns, "api-green").await;
    if kept {
        assert!(green.is_some(), "--keep-failed keeps api-green");
    } else {
        assert!(green.is_none(), "the failed copy is deleted: {green:?}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn new_pods_that_never_become_ready_leave_traffic_on_blue() {
    let c = Cluster::start().await;
    let p = bg_project(&Release::keep("0s"));
    assert_exit(&deploy(&c, &p, &version(0), &[]).await, 0);
    let broken = broken_image(&c);
    let deadline = ["--status-check-deadline", "2m"];
    failed_release(&c, &p, &broken, &deadline, "ImagePull", false).await;
    c.cleanup().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn keep_failed_leaves_the_copy_that_never_became_ready() {
    let c = Cluster::start().await;
    let p = bg_project(&Release::keep("0s"));
    assert_exit(&deploy(&c, &p, &version(0), &[]).await, 0);
    let broken = broken_image(&c);
    let more = ["--status-check-deadline", "2m", "--keep-failed"];
    failed_release(&c, &p, &broken, &more, "ImagePull", true).await;
    let green = deployment(&c, &c.ns, "api-green").await.unwrap();
    assert_eq!(images_of(&green), vec![broken]);
    c.cleanup().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_failing_http_verify_leaves_traffic_on_blue() {
    let c = Cluster::start().await;
    // Nobody serves 8080 in these pods (pause; on the fake, no upstream is attached): the check cannot pass.
    let verified = Release {
        keep_previous: "0s",
        extra: "  verify:\n    http: {port: http, path: /healthz}\n    timeout: 3s\n",
        in_profile: false,
    };
    // The first release goes in without the check (it would fail just the same: nothing serves the port).
    let p = bg_project(&Release::keep("0s"));
    assert_exit(&deploy(&c, &p, &version(0), &[]).await, 0);
    p.write("devloop.yaml", &config_yaml(&verified));
    failed_release(&c, &p, &version(1), &[], "failed at verify", false).await;
    c.cleanup().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_refused_apply_of_the_new_copy_leaves_traffic_on_blue() {
    let c = Cluster::start().await;
    let Some(f) = &c.fake else {
        return; // RBAC steering is the fake's
    };
    let p = bg_project(&Release::keep("0s"));
    assert_exit(&deploy(&c, &p, &version(0), &[]).await, 0);
    f.deny("patch", "deployments", Some(&c.ns));
    failed_release(&c, &p, &version(1), &[], "forbidden", false).await;
    c.cleanup().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn rollback_scales_the_previous_colour_back_up_and_switches_to_it() {
    let c = Cluster::start().await;
    let p = bg_project(&Release::keep("0s"));
    let (v1, v2) = (version(0), version(1));
    assert_exit(&deploy(&c, &p, &v1, &[]).await, 0);
    assert_exit(&deploy(&c, &p, &v2, &[]).await, 0);
    assert_eq!(
        replicas(&deployment(&c, &c.ns, "api-blue").await.unwrap()),
        0
    );

    let sampler = Sampler::start(&c, &c.ns, "api");
    sampler.wait_samples(2).await;
    let out = c.devloop(&p, &["rollback", "--service", "api"]).await;
    eprintln!("rollback:\n{}", stderr(&out));
    let report = sampler.report().await;
    eprintln!("{report}");
    assert_exit(&out, 0);
    assert_eq!(report.empty, 0, "{report}");
    assert_eq!(
        report.transition_images(),
        vec![(vec![v2.clone()], vec![v1.clone()])],
        "{report}"
    );
    let svc = service(&c, &c.ns).await;
    assert_eq!(selector_color(&svc), Some("blue"));
    assert_eq!(annotation(&svc, "devloop.dev/live-color"), Some("blue"));
    assert_eq!(
        annotation(&svc, "devloop.dev/previous-color"),
        Some("green")
    );
    let blue = deployment(&c, &c.ns, "api-blue").await.unwrap();
    assert_eq!(replicas(&blue), 2, "replicas from devloop.dev/replicas");
    assert_eq!(ready_replicas(&blue), 2);
    c.cleanup().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn rollback_without_a_previous_copy_is_a_clear_error() {
    let c = Cluster::start().await;
    let p = bg_project(&Release::keep("0s"));
    assert_exit(&deploy(&c, &p, &version(0), &[]).await, 0);
    let out = c.devloop(&p, &["rollback"]).await;
    assert_exit(&out, 1);
    let err = stderr(&out);
    assert!(
        err.contains("api") && err.contains("previous"),
        "names the Service and what is missing:\n{err}"
    );
    assert!(err.contains("hint:"), "{err}");
    let svc = service(&c, &c.ns).await;
    assert_eq!(selector_color(&svc), Some("blue"), "nothing moved");
    c.cleanup().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_plain_deploy_never_prunes_the_colours_and_delete_removes_both() {
    let c = Cluster::start().await;
    let p = bg_project(&Release {
        keep_previous: "0s",
        extra: "",
        in_profile: true,
    });
    assert_exit(&deploy(&c, &p, &version(0), &["-p", "prod"]).await, 0);
    assert_exit(&deploy(&c, &p, &version(1), &["-p", "prod"]).await, 0);
    assert!(deployment(&c, &c.ns, "api-blue").await.is_some());
    assert!(deployment(&c, &c.ns, "api-green").await.is_some());

    // Without the profile: a plain deploy of the same project. Its apply of the rendered Service does not take
    // the switch back: traffic stays on green, the plain pods get none.
    let sampler = Sampler::start(&c, &c.ns, "api");
    sampler.wait_samples(2).await;
    assert_exit(&deploy(&c, &p, &version(2), &[]).await, 0);
    sampler.wait_samples(2).await;
    let report = sampler.report().await;
    eprintln!("{report}");
    assert_eq!(report.empty, 0, "{report}");
    assert!(report.transitions.is_empty(), "{report}");
    assert_eq!(selector_color(&service(&c, &c.ns).await), Some("green"));
    let plain = deployment(&c, &c.ns, "api").await.expect("plain api");
    assert_eq!(images_of(&plain), vec![version(2)]);
    let blue = deployment(&c, &c.ns, "api-blue").await;
    let green = deployment(&c, &c.ns, "api-green").await;
    assert!(
        blue.is_some() && green.is_some(),
        "a plain deploy prunes neither colour"
    );
    assert_eq!(
        ready_replicas(&green.unwrap()),
        2,
        "the live copy still runs"
    );

    let out = c.devloop(&p, &["delete"]).await;
    eprintln!("delete:\n{}", stderr(&out));
    assert_exit(&out, 0);
    for name in ["api", "api-blue", "api-green"] {
        assert!(
            deployment(&c, &c.ns, name).await.is_none(),
            "delete removes {name}"
        );
    }
    for name in ["api", "api-preview"] {
        assert!(
            c.get("v1", "Service", Some(&c.ns), name).await.is_none(),
            "delete removes Service {name}"
        );
    }
    c.cleanup().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_first_release_after_plain_deploys_takes_over_without_a_gap_and_deletes_the_plain_deployment()
 {
    let c = Cluster::start().await;
    let p = bg_project(&Release {
        keep_previous: "0s",
        extra: "",
        in_profile: true,
    });
    let (v1, v2) = (version(0), version(1));
    assert_exit(&deploy(&c, &p, &v1, &[]).await, 0);
    assert!(deployment(&c, &c.ns, "api").await.is_some());

    let sampler = Sampler::start(&c, &c.ns, "api");
    sampler.wait_samples(2).await;
    assert_exit(&deploy(&c, &p, &v2, &["-p", "prod"]).await, 0);
    let report = sampler.report().await;
    eprintln!("{report}");
    assert_eq!(report.empty, 0, "{report}");
    // Until the switch the colourless selector reaches the plain pods and the new copy alike (the documented
    // limit): traffic may meet both, then only the new one.
    let images: Vec<&BTreeSet<String>> = report
        .runs
        .iter()
        .filter_map(|(s, _)| s.images.as_ref())
        .collect();
    assert_eq!(images.first(), Some(&&set(&[&v1])), "{report}");
    assert_eq!(images.last(), Some(&&set(&[&v2])), "{report}");
    assert!(
        images.iter().all(|i| i.is_subset(&set(&[&v1, &v2]))),
        "{report}"
    );
    assert!(
        deployment(&c, &c.ns, "api").await.is_none(),
        "the plain Deployment is deleted after the switch"
    );
    let svc = service(&c, &c.ns).await;
    assert_eq!(selector_color(&svc), Some("blue"));
    assert_copy(
        &deployment(&c, &c.ns, "api-blue").await.unwrap(),
        "blue",
        &v2,
        2,
    );
    c.cleanup().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_release_while_the_previous_copy_is_kept_replaces_that_copy() {
    let c = Cluster::start().await;
    let p = bg_project(&Release::keep("untilNextDeploy"));
    let v = versions();
    assert_exit(&deploy(&c, &p, &v[0], &[]).await, 0);
    assert_exit(&deploy(&c, &p, &v[1], &[]).await, 0);
    let blue = deployment(&c, &c.ns, "api-blue").await.unwrap();
    assert_eq!(
        replicas(&blue),
        2,
        "untilNextDeploy keeps blue at full scale"
    );
    assert_eq!(annotation(&blue, "devloop.dev/replicas"), None);

    let sampler = Sampler::start(&c, &c.ns, "api");
    sampler.wait_samples(2).await;
    assert_exit(&deploy(&c, &p, &v[2], &[]).await, 0);
    let report = sampler.report().await;
    eprintln!("{report}");
    assert_eq!(report.empty, 0, "{report}");
    assert_eq!(
        report.transition_images(),
        vec![(vec![v[1].clone()], vec![v[2].clone()])],
        "{report}"
    );
    let svc = service(&c, &c.ns).await;
    assert_eq!(selector_color(&svc), Some("blue"));
    let blue = deployment(&c, &c.ns, "api-blue").await.unwrap();
    assert_copy(&blue, "blue", &v[2], 2);
    let green = deployment(&c, &c.ns, "api-green").await.unwrap();
    assert_eq!(images_of(&green), vec![v[1].clone()]);
    assert_eq!(
        replicas(&green),
        2,
        "the previous copy stays until the next"
    );
    c.cleanup().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_same_project_in_two_namespaces_switches_only_its_own_service() {
    let c = Cluster::start().await;
    let other = support::unique("devloop-test-other");
    let p = bg_project(&Release::keep("0s"));
    let (v1, v2) = (version(0), version(1));
    assert_exit(&deploy_in(&c, &p, &v1, &[], &c.ns).await, 0);
    assert_exit(&deploy_in(&c, &p, &v1, &[], &other).await, 0);

    let sampler = Sampler::start(&c, &other, "api");
    sampler.wait_samples(2).await;
    assert_exit(&deploy_in(&c, &p, &v2, &[], &c.ns).await, 0);
    let report = sampler.report().await;
    assert_eq!(report.empty, 0, "{report}");
    assert!(report.transitions.is_empty(), "{report}");

    assert_eq!(selector_color(&service(&c, &c.ns).await), Some("green"));
    let theirs = service(&c, &other).await;
    assert_eq!(selector_color(&theirs), Some("blue"));
    assert_eq!(annotation(&theirs, "devloop.dev/live-color"), Some("blue"));
    let blue = deployment(&c, &other, "api-blue").await.unwrap();
    assert_eq!(
        replicas(&blue),
        2,
        "the other namespace's copy is untouched"
    );
    assert_eq!(images_of(&blue), vec![v1.clone()]);
    assert!(deployment(&c, &other, "api-green").await.is_none());

    // A rollback here does not reach there either.
    assert_exit(&c.devloop(&p, &["rollback"]).await, 0);
    assert_eq!(selector_color(&service(&c, &other).await), Some("blue"));
    assert_eq!(
        replicas(&deployment(&c, &other, "api-blue").await.unwrap()),
        2
    );
    c.delete_namespace(&other).await;
    c.cleanup().await;
}

/// The traffic rule itself, on objects shaped like the API server's.
#[test]
fn a_request_goes_to_ready_selected_pods_of_the_service_namespace_only() {
    let svc = json!({"metadata": {"namespace": "a", "name": "api"},
                     "spec": {"selector": {"app": "api", "devloop.dev/color": "blue"}}});
    let pod = |ns: &str, color: &str, image: &str, ready: &str, extra: Value| {
        let mut p = json!({
            "metadata": {"namespace": ns, "name": format!("{color}-{image}"),
                         "labels": {"app": "api", "devloop.dev/color": color, "pod-template-hash": "x"}},
            "spec": {"containers": [{"name": "main", "image": image}]},
            "status": {"phase": "Running", "podIP": "10.0.0.1",
                       "conditions": [{"type": "Ready", "status": ready}]}
        });
        if let (Value::Object(m), Value::Object(e)) = (&mut p["metadata"], extra) {
            m.extend(e);
        }
        p
    };
    let none = json!({});
    let ok = pod("a", "blue", "v1", "True", none.clone());
    let sample = route(Some(&svc), std::slice::from_ref(&ok));
    assert_eq!(sample.color.as_deref(), Some("blue"));
    assert_eq!(sample.images, Some(set(&["v1"])));

    let others = [
        pod("a", "green", "v2", "True", none.clone()),
        pod("b", "blue", "v3", "True", none.clone()),
        pod("a", "blue", "v4", "False", none.clone()),
        pod(
            "a",
            "blue",
            "v5",
            "True",
            json!({"deletionTimestamp": "2026-01-01T00:00:00Z"}),
        ),
    ];
    assert_eq!(route(Some(&svc), &others).images, None, "none of them");
    let mut all = others.to_vec();
    all.push(ok);
    assert_eq!(route(Some(&svc), &all).images, Some(set(&["v1"])));
    assert_eq!(route(None, &all).images, None, "no Service, no endpoint");
    let mut no_ip = all[4].clone();
    no_ip["status"]["podIP"] = Value::Null;
    assert_eq!(route(Some(&svc), &[no_ip]).images, None);
    let mut publish = svc.clone();
    publish["spec"]["publishNotReadyAddresses"] = json!(true);
    assert_eq!(
        route(Some(&publish), &all[2..3]).images,
        Some(set(&["v4"])),
        "publishNotReadyAddresses routes to a pod that is not ready"
    );
}

/// The sampler sees a gap and a change of images on a plain Deployment (no blue/green): it is able to fail the
/// scenarios above.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_sampler_sees_a_gap_and_a_rollout() {
    let c = Cluster::start().await;
    let Some(f) = &c.fake else {
        return; // pod states are steered on the fake
    };
    let p = bg_project(&Release::keep("0s"));
    // The same project without blue/green: one plain Deployment `api` behind the Service.
    p.write(
        "devloop.yaml",
        "apiVersion: devloop/v1alpha1\nkind: Config\nmetadata:\n  name: shop\nmanifests:\n  rawYaml: [\"k8s/*.yaml\"]\n",
    );
    let (v1, v2) = (version(0), version(1));
    assert_exit(&deploy(&c, &p, &v1, &[]).await, 0);
    let sampler = Sampler::start(&c, &c.ns, "api");
    sampler.wait_samples(2).await;
    let pods: Vec<String> = f
        .objects("Pod")
        .iter()
        .filter(|p| p["metadata"]["namespace"] == c.ns.as_str())
        .map(|p| p["metadata"]["name"].as_str().unwrap().to_string())
        .collect();
    assert_eq!(pods.len(), 2);
    for pod in &pods {
        assert!(f.set_pod_state(&c.ns, pod, PodState::NotReady));
    }
    sampler.wait_samples(3).await;
    for pod in &pods {
        assert!(f.set_pod_state(&c.ns, pod, PodState::Running));
    }
    sampler.wait_samples(3).await;
    assert_exit(&deploy(&c, &p, &v2, &[]).await, 0);
    sampler.wait_samples(2).await;
    let report = sampler.report().await;
    eprintln!("{report}");
    assert!(report.empty >= 3, "the gap is seen: {report}");
    let images: Vec<&BTreeSet<String>> = report
        .runs
        .iter()
        .filter_map(|(s, _)| s.images.as_ref())
        .collect();
    assert_eq!(images.first(), Some(&&set(&[&v1])), "{report}");
    assert_eq!(images.last(), Some(&&set(&[&v2])), "{report}");
    assert!(!report.transitions.is_empty(), "{report}");
    // The same summary from hand-made runs: a gap does not count as a transition, a change does.
    let s = |images: Option<&[&str]>| support::traffic::Sample {
        color: None,
        images: images.map(set),
    };
    let r = summarize(vec![
        (s(Some(&["a"])), 3),
        (s(None), 2),
        (s(Some(&["a"])), 1),
        (s(Some(&["a", "b"])), 1),
        (s(Some(&["b"])), 4),
    ]);
    assert_eq!((r.samples, r.empty, r.transitions.len()), (11, 2, 2));
    c.cleanup().await;
}

/// The page `api` serves in release `n` of the request loop.
fn http_manifest(image_name: &str, content: &str) -> String {
    format!(
        "apiVersion: apps/v1\nkind: Deployment\nmetadata:\n  name: api\nspec:\n  replicas: 2\n  selector:\n    matchLabels: {{app: api}}\n  template:\n    metadata:\n      labels: {{app: api}}\n    spec:\n      terminationGracePeriodSeconds: 2\n      containers:\n        - name: main\n          image: {image_name}\n          command: [sh, -c, 'mkdir -p /www && echo \"$CONTENT\" > /www/index.html && exec httpd -f -p 8080 -h /www']\n          env: [{{name: CONTENT, value: \"{content}\"}}]\n          ports: [{{name: http, containerPort: 8080}}]\n          readinessProbe:\n            httpGet: {{path: /, port: http}}\n            periodSeconds: 1\n"
    )
}

/// One line of the client's log: the kubelet's timestamp and `ok <content>` or `fail`.
struct Response {
    at: String,
    content: Option<String>,
}

/// The client's log so far, one [`Response`] per request.
async fn read_client_log(pods: &kube::api::Api<k8s_openapi::api::core::v1::Pod>) -> Vec<Response> {
    let params = kube::api::LogParams {
        timestamps: true,
        ..Default::default()
    };
    let text = pods.logs("bg-client", &params).await.unwrap_or_default();
    text.lines()
        .filter_map(|l| {
            let (at, rest) = l.split_once(' ')?;
            let content = rest.strip_prefix("ok ").map(str::to_string);
            (content.is_some() || rest == "fail").then(|| Response {
                at: at.to_string(),
                content,
            })
        })
        .collect()
}

/// Real cluster only (`DEVLOOP_TEST_KUBECONFIG`; skipped with a message on the fake): a client pod requests
/// `http://api.<ns>.svc` in a loop (busybox `wget`, one log line per request) while `devloop deploy` releases three
/// new versions of an HTTP server one after another and `devloop rollback` returns to the one before; every
/// request must succeed and the content must change exactly once per release. `DEVLOOP_TEST_HTTP_IMAGE` names a
/// busybox image the nodes can pull (default `docker.io/library/busybox:1.36`; `sh`, `httpd`, `wget`, `sleep`).
///
/// ```sh
/// DEVLOOP_TEST_KUBECONFIG=~/.kube/config cargo test --test cluster_blue_green real_cluster_request_loop -- --nocapture
/// ```
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn real_cluster_request_loop() {
    use k8s_openapi::api::core::v1::Pod;
    use kube::api::{Api, PostParams};

    let c = Cluster::start().await;
    if c.fake.is_some() {
        eprintln!(
            "real_cluster_request_loop skipped: it needs a real cluster (set DEVLOOP_TEST_KUBECONFIG)"
        );
        return;
    }
    let image = std::env::var("DEVLOOP_TEST_HTTP_IMAGE")
        .unwrap_or_else(|_| "docker.io/library/busybox:1.36".to_string());
    // keepPrevious long enough for every kube-proxy to have moved off the old pods before they stop.
    let p = bg_project(&Release::keep("10s"));
    let contents = ["release-0", "release-1", "release-2", "release-3"];
    let started = std::time::Instant::now();
    let mut timeline: Vec<(String, std::time::Duration, std::time::Duration)> = Vec::new();

    p.write("k8s/api.yaml", &http_manifest(ARTIFACT, contents[0]));
    assert_exit(&deploy(&c, &p, &image, &[]).await, 0);

    let pods: Api<Pod> = Api::namespaced(c.client.clone(), &c.ns);
    let client: Pod = serde_json::from_value(json!({
        "apiVersion": "v1", "kind": "Pod",
        "metadata": {"name": "bg-client"},
        "spec": {
            "terminationGracePeriodSeconds": 1,
            "containers": [{
                "name": "client", "image": image,
                "command": ["sh", "-c", format!(
                    "while true; do if out=$(wget -q -T 2 -O - http://api.{}.svc 2>/dev/null); then echo \"ok $out\"; else echo fail; fi; sleep 0.05; done",
                    c.ns
                )]
            }]
        }
    }))
    .unwrap();
    pods.create(&PostParams::default(), &client).await.unwrap();
    // The loop is on once the first page came back.
    while !read_client_log(&pods)
        .await
        .iter()
        .any(|r| r.content.as_deref() == Some(contents[0]))
    {
        tokio::time::sleep(std::time::Duration::from_millis(500)).await;
    }

    for content in &contents[1..] {
        p.write("k8s/api.yaml", &http_manifest(ARTIFACT, content));
        let from = started.elapsed();
        assert_exit(&deploy(&c, &p, &image, &[]).await, 0);
        timeline.push((format!("deploy {content}"), from, started.elapsed()));
    }
    let from = started.elapsed();
    let out = c.devloop(&p, &["rollback"]).await;
    eprintln!("rollback:\n{}", stderr(&out));
    assert_exit(&out, 0);
    timeline.push(("rollback".to_string(), from, started.elapsed()));
    // A few more seconds of requests after the last switch.
    tokio::time::sleep(std::time::Duration::from_secs(3)).await;

    let log = read_client_log(&pods).await;
    let failures = log.iter().filter(|r| r.content.is_none()).count();
    let mut switches: Vec<(String, String, String)> = Vec::new();
    let mut seen: Vec<String> = Vec::new();
    let mut last_ok_at = String::new();
    for r in &log {
        let Some(content) = &r.content else {
            continue;
        };
        if seen.last() != Some(content) {
            if let Some(prev) = seen.last() {
                switches.push((
                    format!("{prev} → {content}"),
                    last_ok_at.clone(),
                    r.at.clone(),
                ));
            }
            seen.push(content.clone());
        }
        last_ok_at = r.at.clone();
    }
    eprintln!(
        "requests: {}, failures: {failures}, contents: {seen:?}",
        log.len()
    );
    for (what, from, to) in &timeline {
        eprintln!(
            "{what}: command from {:.1}s to {:.1}s ({:.1}s)",
            from.as_secs_f64(),
            to.as_secs_f64(),
            (*to - *from).as_secs_f64()
        );
    }
    for (what, last_old, first_new) in &switches {
        eprintln!("switch {what}: last old answer {last_old}, first new answer {first_new}");
    }
    let _ = pods.delete("bg-client", &Default::default()).await;
    assert_eq!(failures, 0, "no request failed");
    assert_eq!(
        seen,
        [
            "release-0",
            "release-1",
            "release-2",
            "release-3",
            "release-2"
        ],
        "the content changes exactly once per release and once for the rollback"
    );
    c.cleanup().await;
}

/// Starts devloop with `args` (JSON events), sends SIGTERM once the new copy is applied and being waited on, and
/// returns the exit code and every event.
async fn terminate_mid_release(
    c: &Cluster,
    p: &Project,
    args: &[&str],
) -> (Option<i32>, Vec<Value>) {
    let kubeconfig = c.kubeconfig.display().to_string();
    let mut child = tokio::process::Command::new(env!("CARGO_BIN_EXE_devloop"))
        .args(args)
        .args(["-o", "json", "--kubeconfig", &kubeconfig, "-n", &c.ns])
        .current_dir(p.path())
        .env("DEVLOOP_CACHE_DIR", p.cache.path())
        .env("NO_COLOR", "1")
        .env_remove("KUBECONFIG")
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::null())
        .kill_on_drop(true)
        .spawn()
        .unwrap();
    let mut lines =
        tokio::io::AsyncBufReadExt::lines(tokio::io::BufReader::new(child.stdout.take().unwrap()));
    let mut events = Vec::new();
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(180);
    loop {
        let line = tokio::time::timeout(
            deadline.saturating_duration_since(std::time::Instant::now()),
            lines.next_line(),
        )
        .await
        .expect("the release reaches its status check")
        .unwrap()
        .unwrap_or_else(|| panic!("devloop exited before its status check: {events:#?}"));
        let e: Value = serde_json::from_str(&line).unwrap();
        let waiting = e["type"] == "rolloutProgress"
            && e["data"]["object"]
                .as_str()
                .is_some_and(|o| o.contains("api-green"));
        events.push(e);
        if waiting {
            break;
        }
    }
    let pid = child.id().unwrap().to_string();
    assert!(
        std::process::Command::new("kill")
            .args(["-TERM", &pid])
            .status()
            .unwrap()
            .success()
    );
    let rest = tokio::time::timeout(std::time::Duration::from_secs(90), async {
        while let Ok(Some(line)) = lines.next_line().await {
            events.push(serde_json::from_str(&line).unwrap());
        }
        child.wait().await.unwrap()
    })
    .await
    .expect("devloop ends after SIGTERM");
    (rest.code(), events)
}

/// After a stopped release: traffic and the live copy where they were, the new copy gone, and a `release` event
/// `failed` saying so.
async fn assert_stopped_release(c: &Cluster, code: Option<i32>, events: &[Value]) {
    assert_eq!(code, Some(143), "{events:#?}");
    assert!(
        events.iter().any(|e| e["type"] == "release"
            && e["data"]["step"] == "failed"
            && e["data"]["message"]
                .as_str()
                .is_some_and(|m| m.contains("traffic stays on blue"))),
        "{events:#?}"
    );
    let svc = service(c, &c.ns).await;
    assert_eq!(
        selector_color(&svc),
        Some("blue"),
        "the Service never switched"
    );
    let blue = deployment(c, &c.ns, "api-blue")
        .await
        .expect("the live copy stays");
    assert_eq!(replicas(&blue), 2);
    assert_eq!(ready_replicas(&blue), 2);
    let green = deployment(c, &c.ns, "api-green").await;
    assert!(
        green.is_none() || green.unwrap()["metadata"]["deletionTimestamp"].is_string(),
        "the new copy is removed"
    );
}

/// A CI job cancelled mid-release (SIGTERM while the new copy is not ready yet): the release stops as a failed one
/// does — the new copy removed, the Service and the live copy untouched — and exits 143.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sigterm_during_a_deploy_release_removes_only_the_new_copy() {
    let c = Cluster::start().await;
    let p = bg_project(&Release::keep("0s"));
    assert_exit(&deploy(&c, &p, &version(0), &[]).await, 0);
    // The next version never becomes ready: a readiness probe nothing answers (on the fake: not ready by image).
    c.fail_image(&version(1), PodState::NotReady);
    let manifest = std::fs::read_to_string(p.path().join("k8s/api.yaml")).unwrap();
    p.write(
        "k8s/api.yaml",
        &manifest.replace(
            "          ports:",
            "          readinessProbe: {tcpSocket: {port: 9}, periodSeconds: 1}\n          ports:",
        ),
    );
    let images = format!("{ARTIFACT}={}", version(1));
    let (code, events) = terminate_mid_release(&c, &p, &["deploy", "--images", &images]).await;
    assert_stopped_release(&c, code, &events).await;
    c.cleanup().await;
}

/// The same with `devloop run`, which builds. Regression: `run` deleted the whole deployment on a signal — with
/// blue/green, the live copy serving production included. Needs the fake (the image is built locally, never
/// pushed): skipped with `DEVLOOP_TEST_KUBECONFIG`.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sigterm_during_a_run_release_removes_only_the_new_copy() {
    let c = Cluster::start().await;
    if c.fake.is_none() {
        eprintln!(
            "skipped: the image `run` builds is not pushed anywhere a real cluster pulls from"
        );
        return;
    }
    let p = bg_project(&Release::keep("0s"));
    assert_exit(&deploy(&c, &p, &version(0), &[]).await, 0);
    let config = std::fs::read_to_string(p.path().join("devloop.yaml")).unwrap();
    p.write(
        "devloop.yaml",
        &config.replacen(
            "manifests:",
            &format!("build:\n  artifacts:\n    - image: {ARTIFACT}\nmanifests:"),
            1,
        ),
    );
    p.write("Dockerfile", "FROM scratch\nCOPY page.txt /page.txt\n");
    p.write("page.txt", &support::unique("page"));
    // Pods of the built image (`bg-api:<tag>`) never become ready; the live copy runs `pause`.
    c.fail_image(ARTIFACT, PodState::NotReady);
    let (code, events) = terminate_mid_release(&c, &p, &["run"]).await;
    // By its tag: an identical image another test built has the same ID.
    if let Some(tag) = events
        .iter()
        .find(|e| e["type"] == "buildFinished")
        .and_then(|e| e["data"]["tag"].as_str())
    {
        let _ = std::process::Command::new("docker")
            .args(["rmi", "-f", tag])
            .output();
    }
    assert_stopped_release(&c, code, &events).await;
    c.cleanup().await;
}

/// The API server restarts at the moment of the switch (the copies are ready, the after-deploy hook is running):
/// the switch is tried again and the release succeeds, with one line saying so. Needs the fake (a test cannot stop
/// a real API server): skipped with `DEVLOOP_TEST_KUBECONFIG`.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_api_server_restart_at_the_switch_is_waited_out() {
    let c = Cluster::start().await;
    let Some(fake) = &c.fake else {
        eprintln!("skipped: needs the fake API server to stop it");
        return;
    };
    let p = bg_project(&Release::keep("0s"));
    let flag = p.path().join("hook-ran");
    let config = std::fs::read_to_string(p.path().join("devloop.yaml")).unwrap();
    p.write(
        "devloop.yaml",
        &config.replacen(
            "deploy:\n",
            &format!(
                "deploy:\n  hooks:\n    after:\n      - host: {{command: [sh, -c, 'touch {}; sleep 2']}}\n",
                flag.display()
            ),
            1,
        ),
    );
    assert_exit(&deploy(&c, &p, &version(0), &[]).await, 0);
    std::fs::remove_file(&flag).unwrap();

    let release = {
        let (c2, p2) = (c.kubeconfig.clone(), p.path().to_path_buf());
        let (cache, ns) = (p.cache.path().to_path_buf(), c.ns.clone());
        let images = format!("{ARTIFACT}={}", version(1));
        tokio::task::spawn_blocking(move || {
            std::process::Command::new(env!("CARGO_BIN_EXE_devloop"))
                .args(["deploy", "--images", &images, "--kubeconfig"])
                .arg(c2)
                .args(["-n", &ns])
                .current_dir(p2)
                .env("DEVLOOP_CACHE_DIR", cache)
                .env("NO_COLOR", "1")
                .env_remove("KUBECONFIG")
                .output()
                .unwrap()
        })
    };
    // The hook runs once green is ready; the switch comes when it ends, 2 s later: stop the API server for 3 s.
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(60);
    while !flag.exists() {
        assert!(
            std::time::Instant::now() < deadline,
            "the after-deploy hook never ran"
        );
        tokio::time::sleep(std::time::Duration::from_millis(5)).await;
    }
    fake.set_unreachable(true);
    tokio::time::sleep(std::time::Duration::from_secs(3)).await;
    fake.set_unreachable(false);
    let out = release.await.unwrap();
    let err = stderr(&out);
    eprintln!("{err}");
    assert_exit(&out, 0);
    assert_eq!(
        err.matches("trying again").count(),
        1,
        "one line for the retried switch:\n{err}"
    );
    assert!(err.contains("traffic switched to green"), "{err}");
    assert_eq!(selector_color(&service(&c, &c.ns).await), Some("green"));
    c.cleanup().await;
}

/// devloop killed (SIGKILL: no cleanup at all) while its verify Job runs: the Job is recorded as part of the
/// deployment, so `devloop delete` removes it with the rest. Needs the fake (it plays the Job's pod): skipped with
/// `DEVLOOP_TEST_KUBECONFIG`.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_verify_job_left_by_a_killed_devloop_is_removed_by_delete() {
    let c = Cluster::start().await;
    if c.fake.is_none() {
        eprintln!("skipped: needs the fake API server to play the verify Job's pod");
        return;
    }
    let p = bg_project(&Release {
        keep_previous: "0s",
        extra: "  verify:\n    job: {image: registry.k8s.io/pause:3.10, command: [check]}\n    timeout: 120s\n",
        in_profile: false,
    });
    // The first release's check passes.
    let v0 = version(0);
    let (first, _) = tokio::join!(deploy(&c, &p, &v0, &[]), async {
        c.play_job_pod("api-verify-blue", "verify", &[], 0).await
    });
    assert_exit(&first, 0);
    assert!(
        c.get("batch/v1", "Job", Some(&c.ns), "api-verify-blue")
            .await
            .is_none(),
        "a finished check's Job is deleted"
    );

    // The second release is killed while its check runs.
    let kubeconfig = c.kubeconfig.display().to_string();
    let images = format!("{ARTIFACT}={}", version(1));
    let mut child = tokio::process::Command::new(env!("CARGO_BIN_EXE_devloop"))
        .args([
            "deploy",
            "--images",
            &images,
            "--kubeconfig",
            &kubeconfig,
            "-n",
            &c.ns,
        ])
        .current_dir(p.path())
        .env("DEVLOOP_CACHE_DIR", p.cache.path())
        .env_remove("KUBECONFIG")
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .kill_on_drop(true)
        .spawn()
        .unwrap();
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(60);
    while c
        .get("batch/v1", "Job", Some(&c.ns), "api-verify-green")
        .await
        .is_none()
    {
        assert!(
            std::time::Instant::now() < deadline,
            "the check's Job never appeared"
        );
        tokio::time::sleep(std::time::Duration::from_millis(20)).await;
    }
    child.kill().await.unwrap();
    assert!(
        c.get("batch/v1", "Job", Some(&c.ns), "api-verify-green")
            .await
            .is_some(),
        "the killed devloop left its Job"
    );

    let out = c.devloop(&p, &["delete"]).await;
    eprintln!("{}", stderr(&out));
    assert_exit(&out, 0);
    assert!(
        c.get("batch/v1", "Job", Some(&c.ns), "api-verify-green")
            .await
            .is_none(),
        "delete removes the left Job"
    );
    c.cleanup().await;
}
