//! Pod logs against the fake API server: every container of the project's pods, prefixed by pod and container,
//! and when a rollout replaces the pod mid-stream, the new pod's lines arrive from its first line.
#![allow(clippy::unwrap_used)]

mod support;

use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use devloop::event::{Event, EventSink};
use k8s_openapi::api::core::v1::Pod;
use kube::api::{Api, ListParams, Patch, PatchParams};
use serde_json::json;
use support::fake_apiserver::FakeApiServer;
use tokio_util::sync::CancellationToken;

const SELECTOR: &str = "app.kubernetes.io/managed-by=devloop,devloop.dev/project=logs";

fn deployment(version: &str) -> serde_json::Value {
    let labels = json!({"app": "web", "app.kubernetes.io/managed-by": "devloop", "devloop.dev/project": "logs"});
    json!({
        "apiVersion": "apps/v1", "kind": "Deployment",
        "metadata": {"name": "web", "namespace": "default", "labels": labels},
        "spec": {
            "replicas": 1,
            "selector": {"matchLabels": {"app": "web"}},
            "template": {
                "metadata": {"labels": labels},
                "spec": {"containers": [
                    {"name": "app", "image": format!("registry.invalid/web:{version}")},
                    {"name": "sidecar", "image": "registry.invalid/proxy:1"}
                ]}
            }
        }
    })
}

async fn running_pods(client: &kube::Client) -> Vec<String> {
    let pods: Api<Pod> = Api::namespaced(client.clone(), "default");
    pods.list(&ListParams::default().labels("app=web"))
        .await
        .unwrap()
        .items
        .into_iter()
        .filter(|p| {
            p.metadata.deletion_timestamp.is_none()
                && p.status.as_ref().and_then(|s| s.phase.as_deref()) == Some("Running")
        })
        .filter_map(|p| p.metadata.name)
        .collect()
}

async fn until<T>(what: &str, mut f: impl AsyncFnMut() -> Option<T>) -> T {
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        if let Some(v) = f().await {
            return v;
        }
        assert!(Instant::now() < deadline, "timed out waiting for {what}");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

fn lines(seen: &Arc<Mutex<Vec<Event>>>) -> Vec<(String, String, String)> {
    seen.lock()
        .unwrap()
        .iter()
        .filter_map(|e| match e {
            Event::Log {
                pod,
                container,
                line,
                ..
            } => Some((pod.clone(), container.clone(), line.clone())),
            _ => None,
        })
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn follows_every_container_and_the_pod_of_the_next_rollout() {
    let fake = FakeApiServer::start();
    let client = fake.client().await;
    let deployments: Api<kube::api::DynamicObject> = Api::namespaced_with(
        client.clone(),
        "default",
        &kube::api::ApiResource::erase::<k8s_openapi::api::apps::v1::Deployment>(&()),
    );
    let pp = PatchParams::apply("devloop");
    deployments
        .patch("web", &pp, &Patch::Apply(deployment("v1")))
        .await
        .unwrap();
    let first = until("the first pod", async || {
        running_pods(&client).await.into_iter().next()
    })
    .await;
    // Lines written before devloop starts following are part of the pod's log from its first line.
    fake.append_log("default", &first, "app", "v1 starting");

    let (events, seen) = EventSink::collector();
    let cancel = CancellationToken::new();
    let connectivity =
        devloop::connectivity::Connectivity::new(client.clone(), fake.url(), events.clone());
    let follow_cancel = cancel.clone();
    let follower = tokio::spawn(async move {
        devloop::logs::follow("default", SELECTOR, &events, &follow_cancel, &connectivity).await
    });

    until("the backlog", async || {
        lines(&seen)
            .iter()
            .any(|l| l.2 == "v1 starting")
            .then_some(())
    })
    .await;
    fake.append_log("default", &first, "app", "v1 serving");
    fake.append_log("default", &first, "sidecar", "proxy up");
    until("live lines of both containers", async || {
        let l = lines(&seen);
        (l.iter().any(|x| x.2 == "v1 serving" && x.1 == "app")
            && l.iter().any(|x| x.2 == "proxy up" && x.1 == "sidecar"))
        .then_some(())
    })
    .await;

    // A rollout replaces the pod; the new pod's lines arrive, from its first one.
    deployments
        .patch("web", &pp, &Patch::Apply(deployment("v2")))
        .await
        .unwrap();
    let second = until("the new pod", async || {
        running_pods(&client)
            .await
            .into_iter()
            .find(|p| *p != first)
    })
    .await;
    fake.append_log("default", &second, "app", "v2 starting");
    fake.append_log("default", &second, "app", "v2 serving");
    until("the new pod's lines", async || {
        let l = lines(&seen);
        (l.iter().any(|x| x.0 == second && x.2 == "v2 starting")
            && l.iter().any(|x| x.0 == second && x.2 == "v2 serving"))
        .then_some(())
    })
    .await;
    let all = lines(&seen);
    let ordered: Vec<&str> = all
        .iter()
        .filter(|x| x.0 == second)
        .map(|x| x.2.as_str())
        .collect();
    assert_eq!(
        ordered,
        ["v2 starting", "v2 serving"],
        "no line lost or repeated"
    );
    let v1: Vec<&str> = all
        .iter()
        .filter(|x| x.0 == first && x.1 == "app")
        .map(|x| x.2.as_str())
        .collect();
    assert_eq!(v1, ["v1 starting", "v1 serving"]);
    cancel.cancel();
    follower.await.unwrap().unwrap();
}
