//! Tests of which pods belong to a workload's current rollout: selectors, devloop's apply time, the watches' pods.

use std::collections::BTreeMap;

use serde_json::{Value, json};

use super::http_body;
use crate::deploy::{AppliedObject, Change, ObjectRef};
use crate::status::kind::WorkloadKind;
use crate::status::selector::selector_matches;
use crate::status::watch::{MANAGED_BY, Source, Watched, Watches};
use crate::status::workload::{Workload, apply_time};

#[test]
fn selectors_match_labels_and_expressions() {
    let labels = json!({"app": "web", "tier": "front"});
    let labels = labels.as_object();
    assert!(selector_matches(
        &json!({"matchLabels": {"app": "web"}}),
        labels
    ));
    assert!(!selector_matches(
        &json!({"matchLabels": {"app": "api"}}),
        labels
    ));
    assert!(selector_matches(
        &json!({"matchExpressions": [
            {"key": "tier", "operator": "In", "values": ["front", "back"]},
            {"key": "canary", "operator": "DoesNotExist"},
            {"key": "app", "operator": "NotIn", "values": ["api"]},
        ]}),
        labels
    ));
    assert!(!selector_matches(
        &json!({"matchExpressions": [{"key": "canary", "operator": "Exists"}]}),
        labels
    ));
    assert!(!selector_matches(&Value::Null, labels));
}

#[test]
fn apply_time_is_devloops_managed_fields_entry() {
    let pod = http_body("05-pod-crash.http");
    assert_eq!(
        apply_time(&pod),
        Some("2026-11-22T03:03:30Z".parse().unwrap())
    );
    // Written by another manager (curl): no apply time.
    assert_eq!(apply_time(&http_body("05-pod-unschedulable.http")), None);
}

#[test]
fn only_pods_of_the_current_rollout_are_judged() {
    let deployment = AppliedObject {
        reference: ObjectRef {
            api_version: "apps/v1".into(),
            kind: "Deployment".into(),
            namespace: Some("demo".into()),
            name: "web".into(),
        },
        change: Change::Configured,
        generation: 2,
        object: json!({
            "metadata": {"name": "web", "uid": "u1", "generation": 2, "managedFields": [
                {"manager": "devloop", "operation": "Apply", "time": "2026-11-22T03:10:00Z"}
            ]},
            "spec": {"selector": {"matchLabels": {"app": "web"}}},
            "status": {"observedGeneration": 1}
        }),
    };
    let pod = |name: &str, created: &str, app: &str| json!({"metadata": {"name": name, "creationTimestamp": created, "labels": {"app": app}}});
    let mut objects = BTreeMap::new();
    for p in [
        pod("web-old", "2026-11-22T03:09:59Z", "web"),
        pod("web-new", "2026-11-22T03:10:00Z", "web"),
        pod("api-new", "2026-11-22T03:10:05Z", "api"),
    ] {
        objects.insert(p["metadata"]["name"].as_str().unwrap().to_string(), p);
    }
    let mut leaving = pod("web-leaving", "2026-11-22T03:10:01Z", "web");
    leaving["metadata"]["deletionTimestamp"] = json!("2026-11-22T03:10:02Z");
    objects.insert("web-leaving".into(), leaving);
    let watches = Watches {
        watched: vec![Watched {
            source: Source::Pods {
                namespace: "demo".into(),
                selector: MANAGED_BY.into(),
            },
            objects,
            relist: None,
            synced: true,
        }],
    };
    let names = |w: &Workload| -> Vec<String> {
        w.pods(&watches)
            .iter()
            .map(|p| p["metadata"]["name"].as_str().unwrap().to_string())
            .collect()
    };
    let changed = Workload::new(&deployment, WorkloadKind::Deployment, "default");
    assert_eq!(names(&changed), ["web-new"]);
    // Template unchanged (generation already observed): every live pod counts.
    let mut same = deployment.clone();
    same.object["status"]["observedGeneration"] = json!(2);
    let unchanged = Workload::new(&same, WorkloadKind::Deployment, "default");
    assert_eq!(names(&unchanged), ["web-new", "web-old"]);
}
