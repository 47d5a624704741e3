//! Deploy, Kubernetes backend, unit tests: dates, immutable-field errors, forbidden answers, what an inventory
//! makes of listed members.

use kube::core::Status;
use kube::discovery::ApiResource;

use serde_json::{Value, json};

use super::failure::{is_immutable, status_error};
use super::inventory::read_members;
use crate::deploy::ObjectRef;
use crate::time::{unix_from_http_date as parse_http_date, unix_from_rfc3339 as parse_rfc3339};

#[test]
fn dates() {
    assert_eq!(parse_rfc3339("2026-11-22T03:04:05Z"), Some(1_795_316_645));
    assert_eq!(
        parse_http_date("Sun, 22 Nov 2026 03:04:05 GMT"),
        Some(1_795_316_645)
    );
    assert_eq!(parse_rfc3339("1970-01-01T00:00:00Z"), Some(0));
    assert_eq!(parse_http_date("garbage"), None);
}

#[test]
fn immutable_errors_are_recognised() {
    let job = Status { code: 422, message: "Job.batch \"job1\" is invalid: spec.template: Invalid value: core.PodTemplateSpec{}: field is immutable".into(), ..Default::default() };
    assert!(is_immutable(&job));
    let pod = Status { code: 422, message: "Pod \"bare\" is invalid: spec: Forbidden: pod updates may not change fields other than `spec.containers[*].image`".into(), ..Default::default() };
    assert!(is_immutable(&pod));
    let invalid = Status {
        code: 422,
        message: "Deployment.apps \"web\" is invalid: spec.replicas: Invalid value: -1".into(),
        ..Default::default()
    };
    assert!(!is_immutable(&invalid));
}

#[test]
fn forbidden_names_verb_resource_and_namespace() {
    let s = Status { code: 403, message: "configmaps \"cm1\" is forbidden: User \"u\" cannot patch resource \"configmaps\" in API group \"\" in the namespace \"ns\"".into(), ..Default::default() };
    let r = ObjectRef {
        api_version: "v1".into(),
        kind: "ConfigMap".into(),
        namespace: Some("ns".into()),
        name: "cm1".into(),
    };
    let ar = ApiResource::erase::<k8s_openapi::api::core::v1::ConfigMap>(&());
    let e = status_error(&s, &r, "patch", &ar).to_string();
    assert!(
        e.contains("cannot patch resource \"configmaps\"")
            && e.contains("kubectl auth can-i patch configmaps -n ns"),
        "{e}"
    );
}

/// A Deployment as the cluster lists it: `labels` on it and its pod template, `annotations` on it.
fn listed(
    name: &str,
    ns: &str,
    labels: Value,
    annotations: Value,
    replicas: i64,
) -> (ObjectRef, Value) {
    let r = ObjectRef {
        api_version: "apps/v1".into(),
        kind: "Deployment".into(),
        namespace: Some(ns.into()),
        name: name.into(),
    };
    let v = json!({
        "metadata": {"name": name, "namespace": ns, "labels": labels, "annotations": annotations},
        "spec": {"replicas": replicas, "template": {"metadata": {"labels": labels},
            "spec": {"containers": [{"name": "main", "image": format!("{name}:1")}]}}},
        "status": {"readyReplicas": replicas},
    });
    (r, v)
}

#[test]
fn a_blue_green_service_claims_only_the_copies_its_selector_reaches_in_its_namespace() {
    let svc = ObjectRef {
        api_version: "v1".into(),
        kind: "Service".into(),
        namespace: Some("a".into()),
        name: "api".into(),
    };
    let svc_v = json!({
        "metadata": {"annotations": {"devloop.dev/live-color": "green", "devloop.dev/live-since": "1970-01-01T00:00:00Z",
            "devloop.dev/previous-color": "blue", "devloop.dev/images": "api:2, side:2"}},
        "spec": {"selector": {"app": "api", "devloop.dev/color": "green"}},
    });
    let objects = vec![
        (svc, svc_v),
        listed(
            "api-blue",
            "a",
            json!({"app": "api", "devloop.dev/color": "blue"}),
            json!({"devloop.dev/replicas": "2"}),
            0,
        ),
        listed(
            "api-green",
            "a",
            json!({"app": "api", "devloop.dev/color": "green"}),
            json!({}),
            2,
        ),
        // The same copy name in another namespace, a plain Deployment with the same app label, and another app's copy.
        listed(
            "api-green",
            "b",
            json!({"app": "api", "devloop.dev/color": "green"}),
            json!({}),
            1,
        ),
        listed("api", "a", json!({"app": "api"}), json!({}), 1),
        listed(
            "web-blue",
            "a",
            json!({"app": "web", "devloop.dev/color": "blue"}),
            json!({}),
            1,
        ),
    ];
    let inv = read_members(objects, 60);
    assert_eq!(inv.members.len(), 6);
    let api = &inv.blue_green[0];
    assert_eq!(api.live_for_seconds, Some(60));
    assert_eq!(api.images, ["api:2", "side:2"]);
    assert_eq!(api.previous_color.as_deref(), Some("blue"));
    let copies: Vec<(&str, i64, Option<i64>)> = api
        .copies
        .iter()
        .map(|c| (c.name.as_str(), c.desired, c.scaled_down_from))
        .collect();
    assert_eq!(copies, [("api-green", 2, None), ("api-blue", 0, Some(2))]);
    let loose: Vec<(&str, &str)> = inv
        .deployments
        .iter()
        .map(|d| (d.name.as_str(), d.namespace.as_str()))
        .collect();
    assert_eq!(loose, [("api-green", "b"), ("api", "a"), ("web-blue", "a")]);
}
