//! Fake API server tests: the real kube-rs 5 client (and a raw HTTP/1.1 client for framing) against
//! `support::fake_apiserver`, compared with the responses recorded from kube-apiserver 1.32 in shared/kube-api/.
#![allow(clippy::unwrap_used)]

mod support;

use std::path::PathBuf;
use std::time::Duration;

use futures_util::{AsyncBufReadExt, StreamExt, TryStreamExt};
use k8s_openapi::api::apps::v1::Deployment;
use k8s_openapi::api::batch::v1::Job;
use k8s_openapi::api::core::v1::{ConfigMap, Pod};
use kube::api::{
    Api, DeleteParams, DynamicObject, ListParams, LogParams, Patch, PatchParams, WatchEvent,
    WatchParams,
};
use kube::core::GroupVersionKind;
use kube::discovery::{self, Discovery};
use kube::runtime::{WatchStreamExt, watcher};
use serde_json::{Value, json};
use support::fake_apiserver::{FakeApiServer, PodState, Timing};
use tokio::io::{AsyncReadExt, AsyncWriteExt};

const NS: &str = "kapi-demo";

/// shared/kube-api/, found above this crate (scratch crates and /work/main sit at different depths).
fn recorded_dir() -> PathBuf {
    let here = PathBuf::from(env!("CARGO_MANIFEST_DIR"));
    here.ancestors()
        .map(|a| a.join("shared/kube-api"))
        .find(|p| p.is_dir())
        .expect("shared/kube-api next to the crate")
}

/// (status code, JSON body) of a recorded `.http` file.
fn recorded(name: &str) -> (u16, Value) {
    let text = std::fs::read_to_string(recorded_dir().join(name)).unwrap();
    let code: u16 = text.split_whitespace().nth(1).unwrap().parse().unwrap();
    let body = text.split_once("\n\n").map(|(_, b)| b).unwrap_or_default();
    (code, serde_json::from_str(body).unwrap_or(Value::Null))
}

fn request_yaml(name: &str) -> Value {
    let text = std::fs::read_to_string(recorded_dir().join("requests").join(name)).unwrap();
    serde_saphyr::from_str(&text).unwrap()
}

/// The fields kube-rs reads from a Status: status, message, reason, code, details{name, group, kind, causes}.
fn status_view(v: &Value) -> Value {
    json!({
        "kind": v["kind"], "apiVersion": v["apiVersion"], "status": v["status"], "message": v["message"],
        "reason": v["reason"], "code": v["code"], "details": v.get("details").cloned().unwrap_or(Value::Null),
    })
}

struct Raw {
    code: u16,
    headers: Vec<(String, String)>,
    /// The body exactly as sent (still chunk-encoded when chunked).
    wire: Vec<u8>,
}

impl Raw {
    fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(k, _)| k.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }

    /// Chunk payloads when chunked, else the body as one piece.
    fn chunks(&self) -> Vec<Vec<u8>> {
        if self.header("transfer-encoding") != Some("chunked") {
            return vec![self.wire.clone()];
        }
        let mut out = Vec::new();
        let mut rest = &self.wire[..];
        loop {
            let line_end = rest.windows(2).position(|w| w == b"\r\n").unwrap();
            let size =
                usize::from_str_radix(std::str::from_utf8(&rest[..line_end]).unwrap().trim(), 16)
                    .unwrap();
            rest = &rest[line_end + 2..];
            if size == 0 {
                return out;
            }
            out.push(rest[..size].to_vec());
            rest = &rest[size + 2..];
        }
    }

    fn body(&self) -> Vec<u8> {
        self.chunks().concat()
    }

    fn json(&self) -> Value {
        serde_json::from_slice(&self.body()).unwrap()
    }
}

/// One HTTP/1.1 request on a fresh connection (`Connection: close`), read to EOF.
async fn raw(
    server: &FakeApiServer,
    method: &str,
    path: &str,
    headers: &[(&str, &str)],
    body: &str,
) -> Raw {
    let addr = server.url().trim_start_matches("http://").to_string();
    let mut s = tokio::net::TcpStream::connect(&addr).await.unwrap();
    let mut req = format!(
        "{method} {path} HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\nAuthorization: Bearer {}\r\n",
        support::fake_apiserver::TOKEN
    );
    for (k, v) in headers {
        req.push_str(&format!("{k}: {v}\r\n"));
    }
    req.push_str(&format!("Content-Length: {}\r\n\r\n{body}", body.len()));
    s.write_all(req.as_bytes()).await.unwrap();
    let mut buf = Vec::new();
    tokio::time::timeout(Duration::from_secs(10), s.read_to_end(&mut buf))
        .await
        .unwrap()
        .unwrap();
    let head_end = buf.windows(4).position(|w| w == b"\r\n\r\n").unwrap();
    let head = String::from_utf8_lossy(&buf[..head_end]).to_string();
    let mut lines = head.split("\r\n");
    let code = lines
        .next()
        .unwrap()
        .split_whitespace()
        .nth(1)
        .unwrap()
        .parse()
        .unwrap();
    let headers = lines
        .filter_map(|l| {
            l.split_once(": ")
                .map(|(k, v)| (k.to_string(), v.to_string()))
        })
        .collect();
    Raw {
        code,
        headers,
        wire: buf[head_end + 4..].to_vec(),
    }
}

async fn apply_raw(
    server: &FakeApiServer,
    path: &str,
    manager: Option<&str>,
    force: bool,
    body: &Value,
) -> Raw {
    let mut q = String::from("?");
    if let Some(m) = manager {
        q.push_str(&format!("&fieldManager={m}"));
    }
    if force {
        q.push_str("&force=true");
    }
    raw(
        server,
        "PATCH",
        &format!("{path}{q}"),
        &[("Content-Type", "application/apply-patch+yaml")],
        &body.to_string(),
    )
    .await
}

async fn make_namespace(client: &kube::Client, name: &str) {
    let api: Api<DynamicObject> = Api::all_with(
        client.clone(),
        &kube::discovery::ApiResource::erase::<k8s_openapi::api::core::v1::Namespace>(&()),
    );
    let ns = json!({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": name}});
    api.patch(name, &PatchParams::apply("devloop"), &Patch::Apply(&ns))
        .await
        .unwrap();
}

fn api_error(e: kube::Error) -> kube::core::Status {
    match e {
        kube::Error::Api(s) => *s,
        other => panic!("expected an API error, got {other:?}"),
    }
}

async fn eventually<T>(what: &str, mut f: impl FnMut() -> Option<T>) -> T {
    for _ in 0..250 {
        if let Some(v) = f() {
            return v;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    panic!("timed out waiting for {what}");
}

#[tokio::test]
async fn discovery_aggregated_pinned_and_hidden_kinds() {
    let server = FakeApiServer::start();
    let client = server.client().await;
    let d = Discovery::new(client.clone())
        .run_aggregated()
        .await
        .unwrap();
    for (g, v, k) in [
        ("apps", "v1", "Deployment"),
        ("", "v1", "ConfigMap"),
        ("batch", "v1", "CronJob"),
        ("networking.k8s.io", "v1", "Ingress"),
        ("apiextensions.k8s.io", "v1", "CustomResourceDefinition"),
    ] {
        let (ar, caps) = d
            .resolve_gvk(&GroupVersionKind::gvk(g, v, k))
            .unwrap_or_else(|| panic!("{k} discovered"));
        assert_eq!(ar.kind, k);
        assert!(caps.supports_operation("patch"));
    }
    let (ar, caps) =
        discovery::pinned_kind(&client, &GroupVersionKind::gvk("apps", "v1", "Deployment"))
            .await
            .unwrap();
    assert_eq!(ar.plural, "deployments");
    assert!(
        caps.subresources
            .iter()
            .any(|(sub, _)| sub.plural == "deployments/status" || sub.plural == "status")
    );
    let (pod, _) = discovery::pinned_kind(&client, &GroupVersionKind::gvk("", "v1", "Pod"))
        .await
        .unwrap();
    assert_eq!(pod.plural, "pods");

    server.hide_kind("batch/v1", "CronJob");
    let d = Discovery::new(client.clone())
        .run_aggregated()
        .await
        .unwrap();
    assert!(
        d.resolve_gvk(&GroupVersionKind::gvk("batch", "v1", "CronJob"))
            .is_none()
    );
    assert!(
        d.resolve_gvk(&GroupVersionKind::gvk("batch", "v1", "Job"))
            .is_some()
    );
    let e = discovery::pinned_kind(&client, &GroupVersionKind::gvk("batch", "v1", "CronJob"))
        .await
        .unwrap_err();
    assert!(format!("{e:?}").contains("CronJob"), "{e:?}");

    // The discovery requests kube-rs made, as recorded in 00-kube-rs-requests.txt.
    let paths: Vec<String> = server.requests().iter().map(|r| r.path.clone()).collect();
    assert_eq!(&paths[..4], ["/apis", "/api", "/apis/apps/v1", "/api/v1"]);
}

#[tokio::test]
async fn discovery_documents_match_recorded_shapes() {
    let server = FakeApiServer::start();
    let accept = "application/json;g=apidiscovery.k8s.io;v=v2;as=APIGroupDiscoveryList,application/json;g=apidiscovery.k8s.io;v=v2beta1;as=APIGroupDiscoveryList,application/json";
    let agg = raw(&server, "GET", "/apis", &[("Accept", accept)], "").await;
    assert_eq!(agg.code, 200);
    assert_eq!(
        agg.header("content-type"),
        Some("application/json;g=apidiscovery.k8s.io;v=v2;as=APIGroupDiscoveryList")
    );
    assert_eq!(agg.header("vary"), Some("Accept"));
    let (_, rec) = recorded("01-apis-aggregated.http");
    let ours = agg.json();
    let deployments = |v: &Value| {
        v["items"][0]["versions"][0]["resources"]
            .as_array()
            .unwrap()
            .iter()
            .find(|r| r["resource"] == "deployments")
            .cloned()
            .unwrap()
    };
    assert_eq!(deployments(&ours), deployments(&rec));
    assert_eq!(ours["items"][0]["metadata"], rec["items"][0]["metadata"]);

    let core = raw(&server, "GET", "/api", &[("Accept", accept)], "")
        .await
        .json();
    let (_, rec_core) = recorded("01-api-aggregated.http");
    assert_eq!(
        core["items"][0]["metadata"],
        rec_core["items"][0]["metadata"]
    );
    let cm = |v: &Value| v["items"][0]["versions"][0]["resources"][0].clone();
    assert_eq!(cm(&core), cm(&rec_core));

    let (_, rec_batch) = recorded("01-apis-batch-v1.http");
    assert_eq!(
        raw(&server, "GET", "/apis/batch/v1", &[], "").await.json(),
        rec_batch
    );
    let (_, rec_api) = recorded("01-api.http");
    let api = raw(&server, "GET", "/api", &[], "").await.json();
    assert_eq!(api["kind"], rec_api["kind"]);
    assert_eq!(api["versions"], rec_api["versions"]);

    let unknown_group = raw(&server, "GET", "/apis/nosuch.example.com/v1", &[], "").await;
    assert_eq!(unknown_group.code, 404);
    assert_eq!(
        unknown_group.header("content-type"),
        Some("text/plain; charset=utf-8")
    );
    assert_eq!(unknown_group.body(), b"404 page not found\n");
    for (path, file) in [
        ("/apis/batch/v1beta1", "01-apis-batch-v1beta1.http"),
        ("/apis/apps/v9", "01-apis-apps-v9.http"),
        ("/api/v2", "01-api-v2.http"),
        (
            "/api/v1/namespaces/kapi-demo/widgets",
            "03-get-unknown-resource-type.http",
        ),
    ] {
        let r = raw(&server, "GET", path, &[], "").await;
        let (code, body) = recorded(file);
        assert_eq!((r.code, r.json()), (code, body), "{path}");
    }
}

#[tokio::test]
async fn unknown_group_is_a_404_for_kube_rs() {
    let server = FakeApiServer::start();
    let client = server.client().await;
    let ar = kube::discovery::ApiResource::from_gvk(&GroupVersionKind::gvk(
        "example.com",
        "v1",
        "Widget",
    ));
    let api: Api<DynamicObject> = Api::namespaced_with(client, NS, &ar);
    let s = api_error(api.get("w").await.unwrap_err());
    assert_eq!(s.code, 404);
    assert_eq!(s.message.trim(), "404 page not found");
}

#[tokio::test]
async fn apply_create_update_noop_and_managed_fields() {
    let server = FakeApiServer::start();
    let client = server.client().await;
    make_namespace(&client, NS).await;
    let cm1 = request_yaml("cm1.yaml");
    let path = "/api/v1/namespaces/kapi-demo/configmaps/cm1";
    let created = apply_raw(&server, path, Some("devloop"), true, &cm1).await;
    assert_eq!(created.code, 201);
    let obj = created.json();
    let (_, rec) = recorded("02-ssa-cm-create.http");
    assert_eq!(obj["data"], rec["data"]);
    assert_eq!(obj["metadata"]["labels"], rec["metadata"]["labels"]);
    let strip_time = |v: &Value| {
        let mut e = v["metadata"]["managedFields"].clone();
        for x in e.as_array_mut().unwrap() {
            x.as_object_mut().unwrap().remove("time");
        }
        e
    };
    assert_eq!(strip_time(&obj), strip_time(&rec));
    assert!(obj["metadata"]["uid"].as_str().unwrap().len() == 36);
    assert!(
        obj["metadata"].get("generation").is_none(),
        "configmaps have no generation"
    );

    // No-op re-apply through kube-rs: byte-identical, no new resourceVersion.
    let api: Api<ConfigMap> = Api::namespaced(client.clone(), NS);
    let again = api
        .patch(
            "cm1",
            &PatchParams::apply("devloop").force(),
            &Patch::Apply(&cm1),
        )
        .await
        .unwrap();
    assert_eq!(serde_json::to_value(&again).unwrap(), obj);
    let noop = apply_raw(&server, path, Some("devloop"), false, &cm1).await;
    assert_eq!(noop.code, 200);

    // Update: new resourceVersion; dropping a field the manager solely owned deletes it.
    let mut green = cm1.clone();
    green["data"]["color"] = json!("green");
    let updated = api
        .patch("cm1", &PatchParams::apply("devloop"), &Patch::Apply(&green))
        .await
        .unwrap();
    assert_ne!(
        updated.metadata.resource_version,
        again.metadata.resource_version
    );
    let dropped = api
        .patch(
            "cm1",
            &PatchParams::apply("devloop"),
            &Patch::Apply(&request_yaml("cm1-drop-color.yaml")),
        )
        .await
        .unwrap();
    let (_, rec_drop) = recorded("02-ssa-cm-field-removed.http");
    assert_eq!(
        serde_json::to_value(&dropped.data).unwrap(),
        rec_drop["data"]
    );

    let applies: Vec<_> = server
        .requests()
        .into_iter()
        .filter(|r| r.is_apply())
        .collect();
    assert_eq!(applies.len(), 6);
    assert!(
        applies
            .iter()
            .all(|r| r.field_manager.as_deref() == Some("devloop"))
    );
}

#[tokio::test]
async fn apply_conflicts_force_and_update_managers_match_recorded() {
    let server = FakeApiServer::start();
    let client = server.client().await;
    make_namespace(&client, NS).await;
    let path = "/api/v1/namespaces/kapi-demo/configmaps/cm1";
    assert_eq!(
        apply_raw(
            &server,
            path,
            Some("devloop"),
            true,
            &request_yaml("cm1.yaml")
        )
        .await
        .code,
        201
    );

    let other = request_yaml("cm1-other.yaml");
    let conflict = apply_raw(&server, path, Some("other"), false, &other).await;
    let (code, rec) = recorded("02-ssa-cm-conflict-apply-manager.http");
    assert_eq!(
        (conflict.code, status_view(&conflict.json())),
        (code, status_view(&rec))
    );

    // Through kube-rs: the same 409 surfaces as Error::Api.
    let api: Api<ConfigMap> = Api::namespaced(client.clone(), NS);
    let s = api_error(
        api.patch("cm1", &PatchParams::apply("other"), &Patch::Apply(&other))
            .await
            .unwrap_err(),
    );
    assert_eq!((s.code, s.reason.as_str()), (409, "Conflict"));
    assert_eq!(s.details.unwrap().causes[0].field, ".data.color");

    let forced = apply_raw(&server, path, Some("other"), true, &other).await;
    let (_, rec_forced) = recorded("02-ssa-cm-force-by-other.http");
    let managers = |v: &Value| {
        v["metadata"]["managedFields"]
            .as_array()
            .unwrap()
            .iter()
            .map(|e| (e["manager"].clone(), e["fieldsV1"].clone()))
            .collect::<Vec<_>>()
    };
    assert_eq!(managers(&forced.json()), managers(&rec_forced));

    let edit = raw(
        &server,
        "PATCH",
        &format!("{path}?fieldManager=kubectl-edit"),
        &[("Content-Type", "application/merge-patch+json")],
        r#"{"data":{"greeting":"hi from edit"}}"#,
    )
    .await;
    let (_, rec_edit) = recorded("02-merge-patch-by-kubectl-edit.http");
    assert_eq!(managers(&edit.json()), managers(&rec_edit));

    let mut green = request_yaml("cm1.yaml");
    green["data"]["color"] = json!("green");
    let two = apply_raw(&server, path, Some("devloop"), false, &green).await;
    let (code, rec_two) = recorded("02-ssa-cm-conflict-update-manager.http");
    assert_eq!(
        (two.code, status_view(&two.json())),
        (code, status_view(&rec_two))
    );

    let reclaimed = apply_raw(&server, path, Some("devloop"), true, &green)
        .await
        .json();
    let names: Vec<&str> = reclaimed["metadata"]["managedFields"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["manager"].as_str().unwrap())
        .collect();
    assert_eq!(names, ["devloop"]);
}

#[tokio::test]
async fn apply_errors_match_recorded_status_bodies() {
    let server = FakeApiServer::start();
    let client = server.client().await;
    make_namespace(&client, NS).await;
    let cm = |name: &str| json!({"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": name, "namespace": NS}, "data": {"a": "b"}});
    let base = "/api/v1/namespaces";
    let cases: Vec<(Raw, &str)> = vec![
        (
            apply_raw(
                &server,
                &format!("{base}/{NS}/configmaps/cm1"),
                None,
                false,
                &request_yaml("cm1.yaml"),
            )
            .await,
            "02-ssa-no-fieldmanager.http",
        ),
        (
            apply_raw(
                &server,
                &format!("{base}/{NS}/configmaps/cm2"),
                Some("devloop"),
                false,
                &request_yaml("cm1.yaml"),
            )
            .await,
            "02-ssa-name-mismatch.http",
        ),
        (
            apply_raw(
                &server,
                &format!("{base}/default/configmaps/cm1"),
                Some("devloop"),
                false,
                &request_yaml("cm1.yaml"),
            )
            .await,
            "02-ssa-namespace-mismatch.http",
        ),
        (
            apply_raw(
                &server,
                &format!("{base}/kapi-nope/configmaps/cm1"),
                Some("devloop"),
                false,
                &request_yaml("cm1-nons.yaml"),
            )
            .await,
            "02-ssa-missing-namespace.http",
        ),
        (
            apply_raw(
                &server,
                &format!("{base}/{NS}/configmaps/cm-unknown"),
                Some("devloop"),
                false,
                &request_yaml("cm-unknown.yaml"),
            )
            .await,
            "02-ssa-unknown-field.http",
        ),
        (
            apply_raw(
                &server,
                &format!("{base}/{NS}/configmaps/cm-badtype"),
                Some("devloop"),
                false,
                &request_yaml("cm-badtype.yaml"),
            )
            .await,
            "02-ssa-wrong-type.http",
        ),
        (
            apply_raw(
                &server,
                &format!("{base}/{NS}/configmaps/Bad_Name"),
                Some("devloop"),
                false,
                &request_yaml("cm-badname.yaml"),
            )
            .await,
            "02-ssa-cm-invalid-name.http",
        ),
        (
            apply_raw(
                &server,
                "/apis/apps/v1/namespaces/kapi-demo/deployments/web-invalid",
                Some("devloop"),
                false,
                &request_yaml("deploy-invalid.yaml"),
            )
            .await,
            "02-ssa-deployment-invalid.http",
        ),
        (
            raw(
                &server,
                "GET",
                &format!("{base}/{NS}/configmaps/does-not-exist"),
                &[],
                "",
            )
            .await,
            "03-get-missing-configmap.http",
        ),
        (
            raw(
                &server,
                "GET",
                "/apis/apps/v1/namespaces/kapi-demo/deployments/does-not-exist",
                &[],
                "",
            )
            .await,
            "03-get-missing-deployment.http",
        ),
        (
            raw(&server, "GET", &format!("{base}/kapi-nope/pods/x"), &[], "").await,
            "03-get-missing-pod-in-missing-namespace.http",
        ),
        (
            raw(
                &server,
                "DELETE",
                &format!("{base}/{NS}/configmaps/does-not-exist"),
                &[("Content-Type", "application/json")],
                "{}",
            )
            .await,
            "03-delete-missing.http",
        ),
        (
            raw(
                &server,
                "GET",
                &format!("{base}/{NS}/pods?labelSelector=%3Dweb"),
                &[],
                "",
            )
            .await,
            "04-list-bad-labelselector.http",
        ),
        (
            raw(
                &server,
                "GET",
                &format!("{base}/{NS}/pods?resourceVersion=1&resourceVersionMatch=Exact"),
                &[],
                "",
            )
            .await,
            "04-list-exact-too-old-rv.http",
        ),
        (
            raw(
                &server,
                "GET",
                &format!("{base}/{NS}/pods?watch=1&resourceVersion=abc"),
                &[],
                "",
            )
            .await,
            "04-watch-bad-rv.http",
        ),
    ];
    for (r, file) in cases {
        let (code, rec) = recorded(file);
        assert_eq!(
            (r.code, status_view(&r.json())),
            (code, status_view(&rec)),
            "{file}"
        );
    }
    // Created twice: AlreadyExists.
    let body = cm("cm1").to_string();
    assert_eq!(
        raw(
            &server,
            "POST",
            &format!("{base}/{NS}/configmaps"),
            &[("Content-Type", "application/json")],
            &body
        )
        .await
        .code,
        201
    );
    let again = raw(
        &server,
        "POST",
        &format!("{base}/{NS}/configmaps"),
        &[("Content-Type", "application/json")],
        &body,
    )
    .await;
    let (code, rec) = recorded("03-create-already-exists.http");
    assert_eq!(
        (again.code, status_view(&again.json())),
        (code, status_view(&rec))
    );
    // Broken YAML: the recorded prefix.
    let bad = raw(
        &server,
        "PATCH",
        &format!("{base}/{NS}/configmaps/x?fieldManager=devloop"),
        &[("Content-Type", "application/apply-patch+yaml")],
        "a: [b\nc: d: e\n",
    )
    .await;
    assert_eq!(bad.code, 400);
    assert!(
        bad.json()["message"]
            .as_str()
            .unwrap()
            .starts_with("error decoding YAML: error converting YAML to JSON: yaml: ")
    );
}

#[tokio::test]
async fn immutable_job_template_and_pod_spec() {
    let server = FakeApiServer::start();
    let client = server.client().await;
    make_namespace(&client, NS).await;
    let jobs: Api<Job> = Api::namespaced(client.clone(), NS);
    let pp = PatchParams::apply("devloop").force();
    let job = jobs
        .patch("job1", &pp, &Patch::Apply(&request_yaml("job1.yaml")))
        .await
        .unwrap();
    let (_, rec) = recorded("02-ssa-job-create.http");
    let uid = job.metadata.uid.clone().unwrap();
    let labels = serde_json::to_value(&job.metadata.labels).unwrap();
    assert_eq!(
        labels,
        serde_json::to_value(&rec["metadata"]["labels"])
            .unwrap()
            .to_string()
            .replace("c0141136-fa07-4de3-b2e4-57695808d6dc", &uid)
            .parse::<Value>()
            .unwrap()
    );
    // Re-applying the same body does not conflict with the server-added labels.
    jobs.patch(
        "job1",
        &PatchParams::apply("devloop"),
        &Patch::Apply(&request_yaml("job1.yaml")),
    )
    .await
    .unwrap();

    let s = api_error(
        jobs.patch("job1", &pp, &Patch::Apply(&request_yaml("job1-v2.yaml")))
            .await
            .unwrap_err(),
    );
    assert_eq!((s.code, s.reason.as_str()), (422, "Invalid"));
    assert!(
        s.message
            .starts_with("Job.batch \"job1\" is invalid: spec.template: Invalid value: "),
        "{}",
        s.message
    );
    assert!(s.message.ends_with(": field is immutable"));
    let details = s.details.unwrap();
    assert_eq!(
        (
            details.name.as_str(),
            details.group.as_str(),
            details.kind.as_str()
        ),
        ("job1", "batch", "Job")
    );
    assert_eq!(
        (
            details.causes[0].reason.as_str(),
            details.causes[0].field.as_str()
        ),
        ("FieldValueInvalid", "spec.template")
    );

    let pods: Api<Pod> = Api::namespaced(client.clone(), NS);
    pods.patch("bare", &pp, &Patch::Apply(&request_yaml("bare.yaml")))
        .await
        .unwrap();
    let s = api_error(
        pods.patch("bare", &pp, &Patch::Apply(&request_yaml("bare-cmd.yaml")))
            .await
            .unwrap_err(),
    );
    assert_eq!(s.code, 422);
    assert!(s.message.starts_with("Pod \"bare\" is invalid: spec: Forbidden: pod updates may not change fields other than `spec.containers[*].image`"));
    assert_eq!(s.details.unwrap().causes[0].field, "spec");
    let changed = pods
        .patch("bare", &pp, &Patch::Apply(&request_yaml("bare-image.yaml")))
        .await
        .unwrap();
    assert_eq!(
        changed.spec.unwrap().containers[0].image,
        request_yaml("bare-image.yaml")["spec"]["containers"][0]["image"]
            .as_str()
            .map(str::to_string)
    );
}

fn rollout_complete(d: &Deployment) -> bool {
    let (Some(spec), Some(st)) = (&d.spec, &d.status) else {
        return false;
    };
    let want = spec.replicas.unwrap_or(1);
    st.observed_generation >= d.metadata.generation
        && st.updated_replicas.unwrap_or(0) == want
        && st.replicas.unwrap_or(0) == want
        && st.available_replicas.unwrap_or(0) == want
}

#[tokio::test]
async fn deployment_rollout_seen_through_runtime_watcher() {
    let server = FakeApiServer::start();
    let client = server.client().await;
    make_namespace(&client, NS).await;
    let deps: Api<Deployment> = Api::namespaced(client.clone(), NS);
    let pp = PatchParams::apply("devloop").force();
    let created = deps
        .patch("web", &pp, &Patch::Apply(&request_yaml("web-v1.yaml")))
        .await
        .unwrap();
    assert_eq!(created.metadata.generation, Some(1));

    let wait_ready = |generation: i64| {
        let deps = deps.clone();
        async move {
            let stream = watcher(deps, watcher::Config::default().fields("metadata.name=web"))
                .applied_objects();
            let mut stream = std::pin::pin!(stream);
            tokio::time::timeout(Duration::from_secs(10), async {
                while let Some(d) = stream.try_next().await.unwrap() {
                    if d.metadata.generation == Some(generation) && rollout_complete(&d) {
                        return d;
                    }
                }
                panic!("watch ended");
            })
            .await
            .unwrap()
        }
    };
    let ready = wait_ready(1).await;
    let conds = ready.status.unwrap().conditions.unwrap();
    let reason = |t: &str| {
        conds
            .iter()
            .find(|c| c.type_ == t)
            .and_then(|c| c.reason.clone())
            .unwrap()
    };
    assert_eq!(
        (reason("Available"), reason("Progressing")),
        (
            "MinimumReplicasAvailable".to_string(),
            "NewReplicaSetAvailable".to_string()
        )
    );
    let pods: Api<Pod> = Api::namespaced(client.clone(), NS);
    let v1_pods = pods
        .list(&ListParams::default().labels("app=web"))
        .await
        .unwrap();
    assert_eq!(v1_pods.items.len(), 2);
    let owner = &v1_pods.items[0].metadata.owner_references.as_ref().unwrap()[0];
    assert_eq!(owner.kind, "ReplicaSet");
    assert!(
        v1_pods.items[0]
            .metadata
            .labels
            .as_ref()
            .unwrap()
            .contains_key("pod-template-hash")
    );

    // Re-apply unchanged: no write. Apply v2: generation 2, pods replaced.
    let rv = server.resource_version();
    deps.patch("web", &pp, &Patch::Apply(&request_yaml("web-v1.yaml")))
        .await
        .unwrap();
    assert_eq!(server.resource_version(), rv);
    let v2 = deps
        .patch("web", &pp, &Patch::Apply(&request_yaml("web-v2.yaml")))
        .await
        .unwrap();
    assert_eq!(v2.metadata.generation, Some(2));
    wait_ready(2).await;
    let names = |l: &kube::core::ObjectList<Pod>| {
        l.items
            .iter()
            .map(|p| p.metadata.name.clone().unwrap())
            .collect::<Vec<_>>()
    };
    let v2_pods = eventually("old pods gone", || {
        let live: Vec<Value> = server.objects("Pod");
        (live.len() == 2).then_some(live)
    })
    .await;
    for p in &v2_pods {
        assert!(!names(&v1_pods).contains(&p["metadata"]["name"].as_str().unwrap().to_string()));
        assert_eq!(p["spec"]["containers"][0]["env"][0]["value"], "2");
    }
}

#[tokio::test]
async fn failing_pods_keep_a_rollout_unavailable() {
    let server = FakeApiServer::start();
    server.set_image_pod_state("nope", PodState::ImagePullBackOff);
    let client = server.client().await;
    make_namespace(&client, "kapi-pods").await;
    let deps: Api<Deployment> = Api::namespaced(client.clone(), "kapi-pods");
    let mut broken = request_yaml("broken.yaml");
    broken["spec"]["progressDeadlineSeconds"] = json!(1);
    deps.patch(
        "broken",
        &PatchParams::apply("devloop"),
        &Patch::Apply(&broken),
    )
    .await
    .unwrap();
    let pod = eventually("pull failure", || {
        server.objects("Pod").into_iter().find(|p| {
            p["status"]["containerStatuses"][0]["state"]["waiting"]["reason"] == "ImagePullBackOff"
        })
    })
    .await;
    let (_, rec) = recorded("05-pod-pull-fail.http");
    let cond_view = |v: &Value| {
        v["status"]["conditions"]
            .as_array()
            .unwrap()
            .iter()
            .map(|c| {
                (
                    c["type"].clone(),
                    c["status"].clone(),
                    c.get("reason").cloned(),
                )
            })
            .collect::<Vec<_>>()
    };
    assert_eq!(cond_view(&pod), cond_view(&rec));
    assert_eq!(pod["status"]["phase"], "Pending");
    assert_eq!(
        pod["status"]["containerStatuses"][0]["state"]["waiting"]["message"],
        rec["status"]["containerStatuses"][0]["state"]["waiting"]["message"]
    );
    let d = eventually("progress deadline", || {
        let d = server.object("Deployment", "kapi-pods", "broken")?;
        let c = d["status"]["conditions"]
            .as_array()?
            .iter()
            .find(|c| c["type"] == "Progressing")?
            .clone();
        (c["reason"] == "ProgressDeadlineExceeded").then_some(c)
    })
    .await;
    assert_eq!(d["status"], "False");
    assert!(
        d["message"]
            .as_str()
            .unwrap()
            .ends_with("has timed out progressing.")
    );
}

#[tokio::test]
async fn pod_states_have_recorded_shapes() {
    let server = FakeApiServer::start();
    let client = server.client().await;
    make_namespace(&client, NS).await;
    let pods: Api<Pod> = Api::namespaced(client.clone(), NS);
    pods.patch(
        "bare",
        &PatchParams::apply("devloop"),
        &Patch::Apply(&request_yaml("bare.yaml")),
    )
    .await
    .unwrap();
    let view = |v: &Value| {
        let cs = &v["status"]["containerStatuses"][0];
        let state_key = cs["state"]
            .as_object()
            .and_then(|m| m.keys().next().cloned());
        json!({
            "phase": v["status"]["phase"],
            "conditions": v["status"]["conditions"].as_array().unwrap().iter().map(|c| json!([c["type"], c["status"], c.get("reason")])).collect::<Vec<_>>(),
            "state": state_key, "reason": cs["state"].as_object().and_then(|m| m.values().next()).map(|s| s["reason"].clone()),
            "ready": cs["ready"], "started": cs["started"], "lastState": cs["lastState"].as_object().map(|m| m.keys().cloned().collect::<Vec<_>>()),
        })
    };
    for (state, file) in [
        (PodState::Running, "05-pod-running-ready.http"),
        (PodState::NotReady, "05-pod-not-ready.http"),
        (PodState::ImagePullBackOff, "05-pod-pull-fail.http"),
        (
            PodState::CrashLoopBackOff { restarts: 5 },
            "05-pod-crash.http",
        ),
        (
            PodState::CreateContainerConfigError {
                message: "configmap \"missing-cm\" not found".into(),
            },
            "05-pod-config-error.http",
        ),
        (PodState::Completed, "05-pod-completed.http"),
        (PodState::Failed { exit_code: 3 }, "05-pod-failed.http"),
    ] {
        assert!(server.set_pod_state(NS, "bare", state.clone()));
        let (_, rec) = recorded(file);
        let ours = server.object("Pod", NS, "bare").unwrap();
        let mut expected = view(&rec);
        if matches!(state, PodState::Completed) {
            // Recorded with restartPolicy Never; our pod is Always and was Running before (PodReadyToStartContainers is False either way).
            expected["conditions"][1] = json!(["Initialized", "True", "PodCompleted"]);
        }
        assert_eq!(view(&ours), expected, "{file}");
    }
    assert!(server.set_pod_state(NS, "bare", PodState::CrashLoopBackOff { restarts: 5 }));
    let msg = server.object("Pod", NS, "bare").unwrap()["status"]["containerStatuses"][0]["state"]
        ["waiting"]["message"]
        .clone();
    assert!(
        msg.as_str()
            .unwrap()
            .starts_with("back-off 2m40s restarting failed container=main pod=bare_kapi-demo("),
        "{msg}"
    );
}

#[tokio::test]
async fn job_completes_or_fails_with_recorded_conditions() {
    let server = FakeApiServer::start();
    let client = server.client().await;
    make_namespace(&client, NS).await;
    let jobs: Api<Job> = Api::namespaced(client.clone(), NS);
    let mut job = request_yaml("job1.yaml");
    jobs.patch("job1", &PatchParams::apply("devloop"), &Patch::Apply(&job))
        .await
        .unwrap();
    let pod = eventually("job pod", || {
        server
            .objects("Pod")
            .into_iter()
            .find(|p| p["metadata"]["labels"]["job-name"] == "job1")
    })
    .await;
    let name = pod["metadata"]["name"].as_str().unwrap().to_string();
    assert!(server.set_pod_state(NS, &name, PodState::Completed));
    let done = jobs.get("job1").await.unwrap();
    let st = serde_json::to_value(done.status.unwrap()).unwrap();
    let (_, rec) = recorded("05-job-get-complete.http");
    let cview = |v: &Value| {
        v["conditions"]
            .as_array()
            .unwrap()
            .iter()
            .map(|c| json!([c["type"], c["status"], c["reason"], c["message"]]))
            .collect::<Vec<_>>()
    };
    assert_eq!(cview(&st), cview(&rec["status"]));
    assert_eq!(st["succeeded"], 1);

    job["metadata"]["name"] = json!("job-fail");
    job["spec"]["backoffLimit"] = json!(0);
    jobs.patch(
        "job-fail",
        &PatchParams::apply("devloop"),
        &Patch::Apply(&job),
    )
    .await
    .unwrap();
    let pod = eventually("job pod", || {
        server
            .objects("Pod")
            .into_iter()
            .find(|p| p["metadata"]["labels"]["job-name"] == "job-fail")
    })
    .await;
    assert!(server.set_pod_state(
        NS,
        pod["metadata"]["name"].as_str().unwrap(),
        PodState::Failed { exit_code: 3 }
    ));
    let failed = serde_json::to_value(jobs.get("job-fail").await.unwrap().status.unwrap()).unwrap();
    let (_, rec) = recorded("05-job-get-failed.http");
    assert_eq!(cview(&failed), cview(&rec["status"]));
    assert_eq!(failed["failed"], 1);
}

#[tokio::test]
async fn logs_follow_streams_appended_lines_until_the_pod_is_deleted() {
    let server = FakeApiServer::start();
    let client = server.client().await;
    make_namespace(&client, NS).await;
    let pods: Api<Pod> = Api::namespaced(client.clone(), NS);
    pods.patch(
        "bare",
        &PatchParams::apply("devloop"),
        &Patch::Apply(&request_yaml("bare.yaml")),
    )
    .await
    .unwrap();
    // Before the container starts: the kubelet's 400.
    let s = api_error(pods.logs("bare", &LogParams::default()).await.unwrap_err());
    assert_eq!(
        (s.code, s.message.as_str()),
        (
            400,
            "container \"main\" in pod \"bare\" is waiting to start: ContainerCreating"
        )
    );
    eventually("running", || {
        (server.object("Pod", NS, "bare")?["status"]["phase"] == "Running").then_some(())
    })
    .await;
    for i in 0..3 {
        assert!(server.append_log(NS, "bare", "main", &format!("line {i}")));
    }
    assert_eq!(
        pods.logs(
            "bare",
            &LogParams {
                tail_lines: Some(2),
                ..Default::default()
            }
        )
        .await
        .unwrap(),
        "line 1\nline 2\n"
    );
    assert_eq!(
        pods.logs(
            "bare",
            &LogParams {
                limit_bytes: Some(10),
                ..Default::default()
            }
        )
        .await
        .unwrap(),
        "line 0\nlin"
    );
    let s = api_error(
        pods.logs(
            "bare",
            &LogParams {
                previous: true,
                ..Default::default()
            },
        )
        .await
        .unwrap_err(),
    );
    assert_eq!(
        s.message,
        "previous terminated container \"main\" in pod \"bare\" not found"
    );
    let s = api_error(
        pods.logs(
            "bare",
            &LogParams {
                container: Some("nope".into()),
                ..Default::default()
            },
        )
        .await
        .unwrap_err(),
    );
    assert_eq!(s.message, "container nope is not valid for pod bare");

    let params = LogParams {
        follow: true,
        container: Some("main".into()),
        timestamps: true,
        ..Default::default()
    };
    let mut lines = pods.log_stream("bare", &params).await.unwrap().lines();
    let first = lines.next().await.unwrap().unwrap();
    assert!(
        first.ends_with("Z line 0") && first.len() == "2026-11-22T03:09:23.787379907Z line 0".len(),
        "{first}"
    );
    lines.next().await.unwrap().unwrap();
    lines.next().await.unwrap().unwrap();
    server.append_log(NS, "bare", "main", "line 3");
    let next = tokio::time::timeout(Duration::from_secs(5), lines.next())
        .await
        .unwrap()
        .unwrap()
        .unwrap();
    assert!(next.ends_with(" line 3"));
    pods.delete("bare", &DeleteParams::default()).await.unwrap();
    let end = tokio::time::timeout(Duration::from_secs(5), lines.next())
        .await
        .unwrap();
    assert!(
        end.is_none(),
        "stream ends cleanly once the pod is gone: {end:?}"
    );
}

#[tokio::test]
async fn delete_with_propagation_policies() {
    let server = FakeApiServer::start();
    let client = server.client().await;
    make_namespace(&client, NS).await;
    let deps: Api<Deployment> = Api::namespaced(client.clone(), NS);
    let pp = PatchParams::apply("devloop").force();
    deps.patch("web", &pp, &Patch::Apply(&request_yaml("web-v1.yaml")))
        .await
        .unwrap();
    eventually("2 pods", || {
        (server.objects("Pod").len() == 2).then_some(())
    })
    .await;

    // Foreground: the object comes back with the finalizer and goes once its pods and ReplicaSet are gone.
    let fg = deps
        .delete("web", &DeleteParams::foreground())
        .await
        .unwrap();
    let obj = fg.left().expect("foreground deletion returns the object");
    assert_eq!(
        obj.metadata.finalizers,
        Some(vec!["foregroundDeletion".to_string()])
    );
    assert_eq!(
        obj.metadata.generation,
        Some(2),
        "deletion bumps generation, as recorded"
    );
    eventually("deployment gone", || {
        server
            .object("Deployment", NS, "web")
            .is_none()
            .then_some(())
    })
    .await;
    assert!(server.objects("Pod").is_empty() && server.objects("ReplicaSet").is_empty());

    // Background: a Success Status at once; children collected afterwards.
    deps.patch("web", &pp, &Patch::Apply(&request_yaml("web-v1.yaml")))
        .await
        .unwrap();
    eventually("2 pods", || {
        (server.objects("Pod").len() == 2).then_some(())
    })
    .await;
    let bg = raw(
        &server,
        "DELETE",
        "/apis/apps/v1/namespaces/kapi-demo/deployments/web?propagationPolicy=Background",
        &[],
        "",
    )
    .await;
    let (code, rec) = recorded("09-delete-deployment-background-query.http");
    let strip_uid = |mut v: Value| {
        v["details"].as_object_mut().unwrap().remove("uid");
        v["details"].as_object_mut().unwrap().remove("name");
        v
    };
    assert_eq!((bg.code, strip_uid(bg.json())), (code, strip_uid(rec)));
    eventually("pods collected", || {
        server.objects("Pod").is_empty().then_some(())
    })
    .await;

    // Job without a policy: orphan + the recorded Warning; its pod stays without owner.
    let jobs: Api<Job> = Api::namespaced(client.clone(), NS);
    jobs.patch("job1", &pp, &Patch::Apply(&request_yaml("job1.yaml")))
        .await
        .unwrap();
    eventually("job pod", || {
        (server.objects("Pod").len() == 1).then_some(())
    })
    .await;
    let r = raw(
        &server,
        "DELETE",
        "/apis/batch/v1/namespaces/kapi-demo/jobs/job1",
        &[("Content-Type", "application/json")],
        "{}",
    )
    .await;
    assert_eq!(r.code, 200);
    assert_eq!(r.json()["metadata"]["finalizers"], json!(["orphan"]));
    assert!(
        r.header("warning")
            .unwrap()
            .starts_with("299 - \"child pods are preserved by default")
    );
    eventually("job gone", || {
        server.object("Job", NS, "job1").is_none().then_some(())
    })
    .await;
    let orphan = server.objects("Pod");
    assert_eq!(orphan.len(), 1);
    assert!(orphan[0]["metadata"].get("ownerReferences").is_none());

    // ConfigMap: Success Status like 09-delete-configmap.http; dry run deletes nothing.
    let cms: Api<ConfigMap> = Api::namespaced(client.clone(), NS);
    cms.patch("cm1", &pp, &Patch::Apply(&request_yaml("cm1.yaml")))
        .await
        .unwrap();
    let dry = cms
        .delete(
            "cm1",
            &DeleteParams {
                dry_run: true,
                ..Default::default()
            },
        )
        .await
        .unwrap();
    assert!(dry.left().unwrap().metadata.deletion_timestamp.is_some());
    assert!(server.object("ConfigMap", NS, "cm1").is_some());
    let status = cms
        .delete("cm1", &DeleteParams::default())
        .await
        .unwrap()
        .right()
        .expect("a Status");
    assert_eq!(status.details.unwrap().kind, "configmaps");

    // Namespace: Terminating, its content removed, then gone; applies into it meanwhile get the recorded 403.
    server.set_namespace_terminating(NS);
    let late = apply_raw(
        &server,
        "/api/v1/namespaces/kapi-demo/configmaps/cm1",
        Some("devloop"),
        true,
        &request_yaml("cm1.yaml"),
    )
    .await;
    let (code, rec) = recorded("09-apply-in-terminating-namespace.http");
    assert_eq!(
        (late.code, status_view(&late.json())),
        (code, status_view(&rec))
    );
    server.release_namespace(NS);
    eventually("namespace gone", || {
        server.object("Namespace", "", NS).is_none().then_some(())
    })
    .await;
    assert!(server.objects("Pod").is_empty());
}

#[tokio::test]
async fn deny_gives_rbac_403() {
    let server = FakeApiServer::start();
    let client = server.client().await;
    make_namespace(&client, NS).await;
    server.deny("get", "deployments", Some(NS));
    server.deny("patch", "configmaps", None);
    server.deny("get", "pods/log", None);
    let deps: Api<Deployment> = Api::namespaced(client.clone(), NS);
    let s = api_error(deps.get("web").await.unwrap_err());
    let (code, rec) = recorded("03-forbidden-get-deployment.http");
    let ours = serde_json::to_value(&s).unwrap();
    assert_eq!(
        (s.code, ours["details"].clone(), ours["reason"].clone()),
        (code, rec["details"].clone(), rec["reason"].clone())
    );
    assert_eq!(
        s.message,
        rec["message"].as_str().unwrap().replace(
            "system:serviceaccount:kapi-demo:nobody",
            support::fake_apiserver::USER
        )
    );
    let cms: Api<ConfigMap> = Api::namespaced(client.clone(), NS);
    let s = api_error(
        cms.patch(
            "cm1",
            &PatchParams::apply("devloop"),
            &Patch::Apply(&request_yaml("cm1.yaml")),
        )
        .await
        .unwrap_err(),
    );
    let (_, rec) = recorded("03-forbidden-apply-configmap.http");
    assert_eq!(
        s.message,
        rec["message"].as_str().unwrap().replace(
            "system:serviceaccount:kapi-demo:nobody",
            support::fake_apiserver::USER
        )
    );
    let pods: Api<Pod> = Api::namespaced(client.clone(), NS);
    let s = api_error(pods.logs("bare", &LogParams::default()).await.unwrap_err());
    let (_, rec) = recorded("03-forbidden-get-pod-log.http");
    assert_eq!(
        s.message,
        rec["message"].as_str().unwrap().replace(
            "system:serviceaccount:kapi-demo:nobody",
            support::fake_apiserver::USER
        )
    );
    // Other verbs still work.
    pods.list(&ListParams::default()).await.unwrap();
}

#[tokio::test]
async fn watch_framing_initial_events_and_too_old_resource_version() {
    let server = FakeApiServer::start();
    let client = server.client().await;
    make_namespace(&client, NS).await;
    let cms: Api<ConfigMap> = Api::namespaced(client.clone(), NS);
    cms.patch(
        "cm1",
        &PatchParams::apply("devloop"),
        &Patch::Apply(&request_yaml("cm1.yaml")),
    )
    .await
    .unwrap();

    // rv=0: synthetic ADDED, then the initial-events-end bookmark; one event per chunk; ends at timeoutSeconds.
    let r = raw(&server, "GET", "/api/v1/namespaces/kapi-demo/configmaps?&watch=true&timeoutSeconds=1&allowWatchBookmarks=true&resourceVersion=0", &[], "").await;
    assert_eq!(
        (
            r.code,
            r.header("content-type"),
            r.header("transfer-encoding")
        ),
        (200, Some("application/json"), Some("chunked"))
    );
    let chunks = r.chunks();
    assert_eq!(chunks.len(), 2);
    for c in &chunks {
        assert_eq!(c.iter().filter(|b| **b == b'\n').count(), 1);
        assert!(c.ends_with(b"\n"));
    }
    let added: Value = serde_json::from_slice(&chunks[0]).unwrap();
    assert_eq!(
        (added["type"].as_str(), added["object"]["kind"].as_str()),
        (Some("ADDED"), Some("ConfigMap"))
    );
    let bookmark: Value = serde_json::from_slice(&chunks[1]).unwrap();
    assert_eq!(bookmark["type"], "BOOKMARK");
    assert_eq!(
        bookmark["object"]["metadata"]["annotations"]["k8s.io/initial-events-end"],
        "true"
    );
    assert_eq!(
        bookmark["object"]["metadata"]["resourceVersion"],
        added["object"]["metadata"]["resourceVersion"]
    );

    // Watching from a compacted resourceVersion: HTTP 200 + one ERROR event (410 Expired).
    let old_rv = server.resource_version();
    let mut blue2 = request_yaml("cm1.yaml");
    blue2["data"]["extra"] = json!("x");
    cms.patch("cm1", &PatchParams::apply("devloop"), &Patch::Apply(&blue2))
        .await
        .unwrap();
    let compacted_at = server.resource_version();
    server.compact();
    let r = raw(&server, "GET", &format!("/api/v1/namespaces/kapi-demo/configmaps?watch=1&resourceVersion={old_rv}&allowWatchBookmarks=true"), &[], "").await;
    assert_eq!(r.code, 200);
    let line: Value = serde_json::from_slice(&r.body()).unwrap();
    let (_, rec) = recorded("04-watch-too-old-rv.http");
    assert_eq!(line["type"], rec["type"]);
    assert_eq!(
        status_view(&line["object"])["reason"],
        status_view(&rec["object"])["reason"]
    );
    assert_eq!(line["object"]["code"], 410);
    assert_eq!(
        line["object"]["message"],
        format!("too old resource version: {old_rv} ({compacted_at})")
    );

    // kube-rs sees the same as WatchEvent::Error.
    let mut stream = cms
        .watch(&WatchParams::default().timeout(2), &old_rv.to_string())
        .await
        .unwrap()
        .boxed();
    match stream.try_next().await.unwrap() {
        Some(WatchEvent::Error(e)) => assert_eq!((e.code, e.reason.as_str()), (410, "Expired")),
        other => panic!("expected an ERROR event, got {other:?}"),
    }

    // A live watch from the current RV sees MODIFIED then DELETED with a new resourceVersion.
    let rv = server.resource_version().to_string();
    let mut stream = cms
        .watch(&WatchParams::default().timeout(5), &rv)
        .await
        .unwrap()
        .boxed();
    let mut green = request_yaml("cm1.yaml");
    green["data"]["color"] = json!("green");
    cms.patch("cm1", &PatchParams::apply("devloop"), &Patch::Apply(&green))
        .await
        .unwrap();
    cms.delete("cm1", &DeleteParams::default()).await.unwrap();
    let kinds: Vec<String> = async {
        let mut out = Vec::new();
        while out.len() < 2 {
            match stream.try_next().await.unwrap().unwrap() {
                WatchEvent::Modified(_) => out.push("MODIFIED".to_string()),
                WatchEvent::Deleted(_) => out.push("DELETED".to_string()),
                WatchEvent::Bookmark(_) => {}
                other => panic!("unexpected {other:?}"),
            }
        }
        out
    }
    .await;
    assert_eq!(kinds, ["MODIFIED", "DELETED"]);
}

#[tokio::test]
async fn list_label_selectors_and_pagination() {
    let server = FakeApiServer::start();
    server.set_timing(Timing {
        pod_start: Duration::from_millis(1),
        ..Timing::default()
    });
    let client = server.client().await;
    make_namespace(&client, NS).await;
    let pods: Api<Pod> = Api::namespaced(client.clone(), NS);
    for i in 0..5 {
        let mut p = request_yaml("bare.yaml");
        p["metadata"]["name"] = json!(format!("p{i}"));
        p["metadata"]["labels"] = json!({"app": if i % 2 == 0 { "even" } else { "odd" }});
        pods.patch(
            &format!("p{i}"),
            &PatchParams::apply("devloop"),
            &Patch::Apply(&p),
        )
        .await
        .unwrap();
    }
    let even = pods
        .list(&ListParams::default().labels("app=even"))
        .await
        .unwrap();
    assert_eq!(even.items.len(), 3);
    assert_eq!(
        pods.list(&ListParams::default().labels("app in (odd),app!=even"))
            .await
            .unwrap()
            .items
            .len(),
        2
    );
    let page1 = pods.list(&ListParams::default().limit(2)).await.unwrap();
    assert_eq!(page1.items.len(), 2);
    assert_eq!(page1.metadata.remaining_item_count, Some(3));
    let token = page1.metadata.continue_.clone().unwrap();
    let page2 = pods
        .list(&ListParams::default().limit(2).continue_token(&token))
        .await
        .unwrap();
    assert_eq!(
        page2.metadata.resource_version,
        page1.metadata.resource_version
    );
    assert_eq!(page2.items[0].metadata.name.as_deref(), Some("p2"));
    let empty = raw(
        &server,
        "GET",
        "/api/v1/namespaces/kapi-demo/pods?labelSelector=app%3Dnone",
        &[],
        "",
    )
    .await
    .json();
    assert_eq!(empty["items"], json!([]));
    assert_eq!(empty["kind"], "PodList");
}

// ---------------------------------------------------------------------------------------------------------
// PersistentVolumes, claims and the scheduler (10-pvc-binding-*.jsonl)
// ---------------------------------------------------------------------------------------------------------

/// The documents of requests/10-pvc-binding.yaml.
fn pvc_binding_docs() -> Vec<Value> {
    let text =
        std::fs::read_to_string(recorded_dir().join("requests/10-pvc-binding.yaml")).unwrap();
    text.split("\n---\n")
        .map(|doc| serde_saphyr::from_str(doc).unwrap())
        .collect()
}

/// The lines of a recorded `.jsonl` timeline (without its `_note`).
fn timeline(name: &str) -> Vec<Value> {
    std::fs::read_to_string(recorded_dir().join(name))
        .unwrap()
        .lines()
        .map(|l| serde_json::from_str::<Value>(l).unwrap())
        .filter(|v| v.get("_note").is_none())
        .collect()
}

/// Server-side applies one document through discovery, as kubectl does.
async fn apply_doc(client: &kube::Client, doc: &Value) {
    let api_version = doc["apiVersion"].as_str().unwrap();
    let (group, version) = api_version.rsplit_once('/').unwrap_or(("", api_version));
    let kind = doc["kind"].as_str().unwrap();
    let (ar, caps) = discovery::pinned_kind(client, &GroupVersionKind::gvk(group, version, kind))
        .await
        .unwrap();
    let api: Api<DynamicObject> = match doc.pointer("/metadata/namespace").and_then(Value::as_str) {
        Some(ns) if caps.scope == discovery::Scope::Namespaced => {
            Api::namespaced_with(client.clone(), ns, &ar)
        }
        _ => Api::all_with(client.clone(), &ar),
    };
    let name = doc["metadata"]["name"].as_str().unwrap();
    api.patch(
        name,
        &PatchParams::apply("kubectl").force(),
        &Patch::Apply(doc),
    )
    .await
    .unwrap();
}

/// `(name, last recorded line)` pairs.
type Finals = Vec<(String, Value)>;

/// The last recorded line of each pod (by Deployment name) and claim.
fn final_states(lines: &[Value]) -> (Finals, Finals) {
    let mut pods: Finals = Vec::new();
    let mut claims: Finals = Vec::new();
    for l in lines {
        if let Some(pod) = l["pod"].as_str() {
            let owner = pod.split('-').next().unwrap().to_string();
            pods.retain(|(o, _)| *o != owner);
            pods.push((owner, l.clone()));
        }
        if let Some(pvc) = l["pvc"].as_str() {
            claims.retain(|(c, _)| c != pvc);
            claims.push((pvc.to_string(), l.clone()));
        }
    }
    (pods, claims)
}

/// A pod as the recorded timelines show it: phase and conditions (type, status, reason, message).
fn pod_view(pod: &Value) -> Value {
    let conditions: Vec<Value> = pod["status"]["conditions"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| {
            let mut m = serde_json::Map::new();
            for k in ["type", "status", "reason", "message"] {
                if let Some(v) = c.get(k) {
                    m.insert(k.into(), v.clone());
                }
            }
            Value::Object(m)
        })
        .collect();
    json!({"phase": pod["status"]["phase"], "conditions": conditions})
}

fn recorded_pod_view(line: &Value) -> Value {
    json!({"phase": line["phase"], "conditions": line["conditions"]})
}

/// The pod of Deployment `owner` in the fake.
fn pod_of(server: &FakeApiServer, owner: &str) -> Option<Value> {
    server.objects("Pod").into_iter().find(|p| {
        p["metadata"]["name"]
            .as_str()
            .unwrap()
            .starts_with(&format!("{owner}-"))
    })
}

/// Events as the timelines record them, with the involved object's name reduced to its owner for pods
/// (`Pod/db`), only from the components the fake stands in for (the scheduler and the PV controller), and the
/// node name left out of `Scheduled` messages.
fn event_views(events: Vec<Value>) -> Vec<Value> {
    let mut views: Vec<Value> = events
        .into_iter()
        .filter_map(|e| {
            let source = e["source"].as_str().map(str::to_string).or_else(|| {
                e["reportingComponent"].as_str().map(str::to_string)
            })?;
            if source != "default-scheduler" && source != "persistentvolume-controller" {
                return None;
            }
            let (kind, name) = match e["involvedObject"].as_str() {
                Some(io) => {
                    let (k, n) = io.split_once('/').unwrap();
                    (k.to_string(), n.to_string())
                }
                None => (
                    e["involvedObject"]["kind"].as_str().unwrap().to_string(),
                    e["involvedObject"]["name"].as_str().unwrap().to_string(),
                ),
            };
            let name = if kind == "Pod" {
                name.split('-').next().unwrap().to_string()
            } else {
                name
            };
            let message = e["message"].as_str().unwrap();
            let message = match message.rsplit_once(" to ") {
                Some((m, _)) if e["reason"] == "Scheduled" => {
                    let (m, pod) = m.rsplit_once('/').unwrap();
                    format!("{m}/{} to NODE", pod.split('-').next().unwrap())
                }
                _ => message.to_string(),
            };
            Some(json!({
                "involvedObject": format!("{kind}/{name}"), "type": e["type"], "reason": e["reason"],
                "message": message, "count": e.get("count").cloned().unwrap_or(Value::Null), "source": source,
            }))
        })
        .collect();
    views.sort_by_key(|v| v.to_string());
    views
}

/// Our events in the recorded event lines' shape (`source` is the component, as the recorder printed it).
fn our_events(server: &FakeApiServer) -> Vec<Value> {
    event_views(
        server
            .objects("Event")
            .into_iter()
            .map(|mut e| {
                let component = e["source"]["component"]
                    .as_str()
                    .or_else(|| e["reportingComponent"].as_str())
                    .unwrap_or_default()
                    .to_string();
                e["source"] = json!(component);
                e
            })
            .collect(),
    )
}

async fn eventually_long<T>(what: &str, mut f: impl FnMut() -> Option<T>) -> T {
    for _ in 0..1000 {
        if let Some(v) = f() {
            return v;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    panic!("timed out waiting for {what}");
}

fn failed_binding_count(server: &FakeApiServer, claim: &str) -> i64 {
    server
        .objects("Event")
        .iter()
        .find(|e| e["involvedObject"]["name"] == claim && e["reason"] == "FailedBinding")
        .and_then(|e| e["count"].as_i64())
        .unwrap_or(0)
}

#[tokio::test]
async fn volume_kinds_are_discovered_like_a_real_server() {
    let server = FakeApiServer::start();
    let core = raw(&server, "GET", "/api/v1", &[], "").await.json();
    let entry = |list: &Value, name: &str| {
        list["resources"]
            .as_array()
            .unwrap()
            .iter()
            .find(|r| r["name"] == name)
            .cloned()
            .unwrap_or_else(|| panic!("{name} served"))
    };
    let all_verbs = json!([
        "create",
        "delete",
        "deletecollection",
        "get",
        "list",
        "patch",
        "update",
        "watch"
    ]);
    let pvc = entry(&core, "persistentvolumeclaims");
    assert_eq!(
        (
            &pvc["namespaced"],
            &pvc["verbs"],
            &pvc["shortNames"],
            &pvc["storageVersionHash"]
        ),
        (
            &json!(true),
            &all_verbs,
            &json!(["pvc"]),
            &json!("QWTyNDq0dC4=")
        )
    );
    let pv = entry(&core, "persistentvolumes");
    assert_eq!(
        (
            &pv["namespaced"],
            &pv["verbs"],
            &pv["shortNames"],
            &pv["storageVersionHash"]
        ),
        (
            &json!(false),
            &all_verbs,
            &json!(["pv"]),
            &json!("HN/zwEC+JgM=")
        )
    );
    assert_eq!(
        entry(&core, "persistentvolumes/status")["verbs"],
        json!(["get", "patch", "update"])
    );
    let storage = raw(&server, "GET", "/apis/storage.k8s.io/v1", &[], "")
        .await
        .json();
    let sc = entry(&storage, "storageclasses");
    assert_eq!(
        (&sc["namespaced"], &sc["verbs"], &sc["shortNames"]),
        (&json!(false), &all_verbs, &json!(["sc"]))
    );
    let client = server.client().await;
    let (_, caps) = discovery::pinned_kind(
        &client,
        &GroupVersionKind::gvk("", "v1", "PersistentVolume"),
    )
    .await
    .unwrap();
    assert_eq!(caps.scope, discovery::Scope::Cluster);
}

#[tokio::test]
async fn claims_bind_to_volumes_that_existed_and_pods_of_unbound_claims_stay_unschedulable() {
    let server = FakeApiServer::start();
    server.set_timing(Timing {
        binder_resync: Duration::from_millis(300),
        ..Timing::default()
    });
    let client = server.client().await;
    // Everything at once, in the file's order (the PV first): 10-pvc-binding-timeline.jsonl.
    for doc in pvc_binding_docs() {
        apply_doc(&client, &doc).await;
    }
    let lines = timeline("10-pvc-binding-timeline.jsonl");
    let (pods, claims) = final_states(&lines);
    for (owner, line) in &pods {
        let want = recorded_pod_view(line);
        eventually(&format!("pod of {owner} as recorded"), || {
            pod_of(&server, owner).filter(|p| pod_view(p) == want)
        })
        .await;
    }
    for (claim, line) in &claims {
        let ours = server
            .object("PersistentVolumeClaim", "kapi-pvc", claim)
            .unwrap();
        assert_eq!(ours["status"]["phase"], line["phase"], "{claim}");
        assert_eq!(
            ours["spec"]
                .get("volumeName")
                .cloned()
                .unwrap_or(Value::Null),
            line["volumeName"],
            "{claim}"
        );
    }
    // The binder's event repeats with a growing count while the claim stays unbound (recorded: 2).
    eventually("FailedBinding repeated", || {
        (failed_binding_count(&server, "never-bound") >= 2).then_some(())
    })
    .await;
    let recorded_events: Vec<Value> = lines
        .iter()
        .filter_map(|l| l.get("event").cloned())
        .collect();
    let mut want = event_views(recorded_events);
    let mut ours = our_events(&server);
    for v in want.iter_mut().chain(ours.iter_mut()) {
        if v["reason"] == "FailedBinding" {
            v["count"] = json!("repeated");
        }
    }
    assert_eq!(ours, want);

    // The bound pair, as the PV controller writes it.
    let pv = server
        .object("PersistentVolume", "", "kapi-pvc-pv")
        .unwrap();
    let claim = server
        .object("PersistentVolumeClaim", "kapi-pvc", "db-data")
        .unwrap();
    assert_eq!(pv["status"]["phase"], "Bound");
    assert_eq!(pv["spec"]["claimRef"]["name"], "db-data");
    assert_eq!(pv["spec"]["claimRef"]["namespace"], "kapi-pvc");
    assert_eq!(pv["spec"]["claimRef"]["uid"], claim["metadata"]["uid"]);
    assert_eq!(
        pv["metadata"]["annotations"]["pv.kubernetes.io/bound-by-controller"],
        "yes"
    );
    assert_eq!(
        claim["status"],
        json!({"phase": "Bound", "accessModes": ["ReadWriteOnce"], "capacity": {"storage": "1Gi"}})
    );
    assert_eq!(
        claim["metadata"]["annotations"]["pv.kubernetes.io/bind-completed"],
        "yes"
    );
    assert_eq!(
        claim["metadata"]["finalizers"],
        json!(["kubernetes.io/pvc-protection"])
    );

    // Deleting the claim releases the volume (reclaim policy Retain).
    let claims_api: Api<DynamicObject> = Api::namespaced_with(
        client.clone(),
        "kapi-pvc",
        &kube::discovery::ApiResource::erase::<k8s_openapi::api::core::v1::PersistentVolumeClaim>(
            &(),
        ),
    );
    claims_api
        .delete("db-data", &DeleteParams::default())
        .await
        .unwrap();
    eventually("volume Released", || {
        let pv = server.object("PersistentVolume", "", "kapi-pvc-pv")?;
        (pv["status"]["phase"] == "Released").then_some(())
    })
    .await;
}

#[tokio::test]
async fn a_claim_waiting_for_a_late_volume_binds_and_its_pod_is_scheduled_then() {
    let server = FakeApiServer::start();
    server.set_timing(Timing {
        // Slower than this test takes to add the PV, so `db-data` syncs once unbound, as recorded.
        binder_resync: Duration::from_secs(3),
        ..Timing::default()
    });
    let client = server.client().await;
    let docs = pvc_binding_docs();
    let (pv, rest): (Vec<&Value>, Vec<&Value>) =
        docs.iter().partition(|d| d["kind"] == "PersistentVolume");
    for doc in rest {
        apply_doc(&client, doc).await;
    }
    let lines = timeline("10-pvc-binding-late-pv-timeline.jsonl");
    // Before the PV: both pods Unschedulable, both claims Pending (the t = 0 lines).
    for line in lines.iter().filter(|l| l["t"] == 0.0) {
        if let Some(pod) = line["pod"].as_str() {
            let owner = pod.split('-').next().unwrap();
            let want = recorded_pod_view(line);
            eventually(&format!("pod of {owner} unschedulable"), || {
                pod_of(&server, owner).filter(|p| pod_view(p) == want)
            })
            .await;
        }
        if let Some(claim) = line["pvc"].as_str() {
            let ours = server
                .object("PersistentVolumeClaim", "kapi-pvc", claim)
                .unwrap();
            assert_eq!(ours["status"]["phase"], line["phase"]);
            assert!(ours["spec"].get("volumeName").is_none());
        }
    }
    apply_doc(&client, pv[0]).await;
    let (pods, claims) = final_states(&lines);
    for (owner, line) in &pods {
        let want = recorded_pod_view(line);
        eventually_long(&format!("pod of {owner} as recorded"), || {
            pod_of(&server, owner).filter(|p| pod_view(p) == want)
        })
        .await;
    }
    for (claim, line) in &claims {
        let ours = server
            .object("PersistentVolumeClaim", "kapi-pvc", claim)
            .unwrap();
        assert_eq!(ours["status"]["phase"], line["phase"], "{claim}");
    }
    // The stuck claim keeps being re-synced: recorded count 3.
    eventually_long("FailedBinding of never-bound repeated", || {
        (failed_binding_count(&server, "never-bound") >= 3).then_some(())
    })
    .await;
    let recorded_events: Vec<Value> = lines
        .iter()
        .filter_map(|l| l.get("event").cloned())
        .collect();
    let mut want = event_views(recorded_events);
    let mut ours = our_events(&server);
    for v in want.iter_mut().chain(ours.iter_mut()) {
        if v["involvedObject"] == "PersistentVolumeClaim/never-bound" {
            v["count"] = json!("repeated");
        }
    }
    assert_eq!(ours, want);
    // The pod was placed only after its claim was bound.
    let events = server.objects("Event");
    let time_of = |reason: &str, name: &str| {
        events
            .iter()
            .filter(|e| {
                e["reason"] == reason
                    && e["involvedObject"]["name"]
                        .as_str()
                        .unwrap()
                        .starts_with(name)
            })
            .map(|e| e["eventTime"].as_str().unwrap().to_string())
            .max()
            .unwrap()
    };
    assert!(time_of("FailedScheduling", "db-") < time_of("Scheduled", "db-"));
}

#[tokio::test]
async fn a_pod_whose_claim_does_not_exist_is_unschedulable_with_the_schedulers_words() {
    let server = FakeApiServer::start();
    let client = server.client().await;
    make_namespace(&client, NS).await;
    let pod = json!({
        "apiVersion": "v1", "kind": "Pod", "metadata": {"name": "lonely", "namespace": NS},
        "spec": {"containers": [{"name": "c", "image": "registry.example/app:1"}],
                 "volumes": [{"name": "data", "persistentVolumeClaim": {"claimName": "nope"}}]}
    });
    apply_doc(&client, &pod).await;
    let want = json!({"phase": "Pending", "conditions": [{
        "type": "PodScheduled", "status": "False", "reason": "Unschedulable",
        "message": "0/1 nodes are available: persistentvolumeclaim \"nope\" not found. preemption: 0/1 nodes are available: 1 Preemption is not helpful for scheduling."
    }]});
    eventually("pod unschedulable", || {
        server
            .object("Pod", NS, "lonely")
            .filter(|p| pod_view(p) == want)
    })
    .await;
    let failed: Vec<Value> = server
        .objects("Event")
        .into_iter()
        .filter(|e| e["reason"] == "FailedScheduling")
        .collect();
    assert_eq!(failed.len(), 1);
    assert_eq!(failed[0]["type"], "Warning");
    assert_eq!(failed[0]["action"], "Scheduling");
    assert_eq!(failed[0]["reportingComponent"], "default-scheduler");
    assert_eq!(failed[0]["source"], json!({}));
    assert!(failed[0].get("count").is_none_or(Value::is_null));

    // Once the claim exists and binds, the pod is scheduled and starts.
    apply_doc(
        &client,
        &json!({"apiVersion": "v1", "kind": "PersistentVolume", "metadata": {"name": "lonely-pv"},
                "spec": {"capacity": {"storage": "1Gi"}, "accessModes": ["ReadWriteOnce"], "storageClassName": "",
                         "hostPath": {"path": "/tmp/lonely"}}}),
    )
    .await;
    apply_doc(
        &client,
        &json!({"apiVersion": "v1", "kind": "PersistentVolumeClaim", "metadata": {"name": "nope", "namespace": NS},
                "spec": {"accessModes": ["ReadWriteOnce"], "resources": {"requests": {"storage": "500Mi"}}}}),
    )
    .await;
    eventually("pod running", || {
        server
            .object("Pod", NS, "lonely")
            .filter(|p| p["status"]["phase"] == "Running")
    })
    .await;
    // An absent storageClassName matches a PV of class "" when no default StorageClass exists.
    let claim = server.object("PersistentVolumeClaim", NS, "nope").unwrap();
    assert_eq!(claim["spec"]["volumeName"], "lonely-pv");
    assert_eq!(claim["status"]["capacity"]["storage"], "1Gi");
}
