//! Unit tests of the blue/green release plan: copies, the Service before and after the switch, the errors.

use std::collections::BTreeMap;

use serde_json::{Value, json};

use super::*;
use crate::config::blue_green::{BlueGreen, KeepPrevious};

fn entry(service: &str) -> BlueGreen {
    BlueGreen {
        field: "devloop.yaml: deploy.kubernetes.blueGreen[0]".into(),
        service: service.into(),
        namespace: None,
        deployments: Vec::new(),
        verify: None,
        keep_previous: KeepPrevious::UntilNextDeploy,
    }
}

fn objects() -> Vec<Value> {
    vec![
        json!({"apiVersion": "apps/v1", "kind": "Deployment",
               "metadata": {"name": "api", "namespace": "shop", "labels": {"app": "api"}},
               "spec": {"replicas": 3, "selector": {"matchLabels": {"app": "api"}},
                        "template": {"metadata": {"labels": {"app": "api"}},
                                     "spec": {"containers": [{"name": "api", "image": "reg/api:1@sha256:aa"}]}}}}),
        json!({"apiVersion": "apps/v1", "kind": "Deployment",
               "metadata": {"name": "worker", "namespace": "shop"},
               "spec": {"selector": {"matchLabels": {"app": "worker"}},
                        "template": {"metadata": {"labels": {"app": "worker"}},
                                     "spec": {"containers": [{"name": "w", "image": "reg/w:1"}]}}}}),
        json!({"apiVersion": "v1", "kind": "Service",
               "metadata": {"name": "api", "namespace": "shop"},
               "spec": {"type": "NodePort", "selector": {"app": "api"},
                        "ports": [{"port": 80, "targetPort": 8080, "nodePort": 30080}]}}),
    ]
}

fn provenance() -> Provenance {
    Provenance {
        commit: "abc123".into(),
    }
}

fn find<'a>(objects: &'a [Value], kind: &str, name: &str) -> Option<&'a Value> {
    objects
        .iter()
        .find(|o| o["kind"] == kind && o["metadata"]["name"] == name)
}

#[test]
fn first_release_copies_the_deployment_behind_the_service_in_blue() {
    let r = plan(
        objects(),
        &[entry("api")],
        &[LiveService::default()],
        &provenance(),
    )
    .unwrap();
    assert!(
        find(&r.objects, "Deployment", "api").is_none(),
        "the plain Deployment is replaced"
    );
    let copy = find(&r.objects, "Deployment", "api-blue").unwrap();
    assert_eq!(
        copy["spec"]["selector"]["matchLabels"]["devloop.dev/color"],
        "blue"
    );
    assert_eq!(
        copy["spec"]["template"]["metadata"]["labels"]["devloop.dev/color"],
        "blue"
    );
    assert_eq!(copy["metadata"]["labels"]["devloop.dev/color"], "blue");
    assert_eq!(copy["spec"]["replicas"], 3);
    assert_eq!(
        copy["metadata"]["annotations"]["devloop.dev/copy-of"],
        "api"
    );
    assert_eq!(
        copy["metadata"]["annotations"]["devloop.dev/commit"],
        "abc123"
    );
    assert_eq!(
        copy["metadata"]["annotations"]["devloop.dev/images"],
        "reg/api:1@sha256:aa"
    );
    // The worker is not behind the Service: untouched.
    assert!(find(&r.objects, "Deployment", "worker").is_some());
    // The Service is applied as rendered until the switch: no colour yet.
    let svc = find(&r.objects, "Service", "api").unwrap();
    assert_eq!(svc["spec"]["selector"], json!({"app": "api"}));
    let preview = find(&r.objects, "Service", "api-preview").unwrap();
    assert_eq!(preview["spec"]["type"], "ClusterIP");
    assert_eq!(
        preview["spec"]["selector"],
        json!({"app": "api", "devloop.dev/color": "blue"})
    );
    assert!(preview["spec"]["ports"][0].get("nodePort").is_none());
    let s = &r.switches[0];
    assert_eq!((s.color, s.live), (Color::Blue, None));
    assert_eq!(s.preview_url, "http://api-preview.shop.svc:80");
    assert_eq!(s.switched["spec"]["selector"]["devloop.dev/color"], "blue");
    assert_eq!(
        s.switched["metadata"]["annotations"]["devloop.dev/live-color"],
        "blue"
    );
    assert!(
        s.switched["metadata"]["annotations"]
            .get("devloop.dev/previous-color")
            .is_none()
    );
    let names: Vec<&str> = r.keep.iter().map(|k| k.name.as_str()).collect();
    assert!(
        names.contains(&"api") && names.contains(&"api-green"),
        "{names:?}"
    );
    assert_eq!(r.force.len(), 1);
    assert_eq!(r.force[0].name, "api-blue");
}

#[test]
fn next_release_goes_to_the_other_colour_and_keeps_the_service_on_the_live_one() {
    let live = LiveService {
        color: Some(Color::Blue),
        annotations: BTreeMap::from([
            ("devloop.dev/live-color".to_string(), "blue".to_string()),
            ("devloop.dev/commit".to_string(), "old".to_string()),
        ]),
    };
    let r = plan(objects(), &[entry("api")], &[live], &provenance()).unwrap();
    assert!(find(&r.objects, "Deployment", "api-green").is_some());
    let svc = find(&r.objects, "Service", "api").unwrap();
    assert_eq!(svc["spec"]["selector"]["devloop.dev/color"], "blue");
    assert_eq!(svc["metadata"]["annotations"]["devloop.dev/commit"], "old");
    let s = &r.switches[0];
    assert_eq!((s.color, s.live), (Color::Green, Some(Color::Blue)));
    assert_eq!(s.copies[0].previous, "api-blue");
    assert_eq!(
        s.switched["metadata"]["annotations"]["devloop.dev/previous-color"],
        "blue"
    );
    let since = at_switch(&s.switched, "2026-12-06T08:00:00Z");
    assert_eq!(
        since["metadata"]["annotations"]["devloop.dev/live-since"],
        "2026-12-06T08:00:00Z"
    );
}

#[test]
fn errors_name_the_entry_and_what_is_missing() {
    let e = plan(
        objects(),
        &[entry("web")],
        &[LiveService::default()],
        &provenance(),
    )
    .unwrap_err()
    .to_string();
    assert!(
        e.contains("blueGreen[0]") && e.contains("no Service `web`"),
        "{e}"
    );
    let mut no_selector = objects();
    no_selector[2]["spec"]
        .as_object_mut()
        .unwrap()
        .remove("selector");
    let e = plan(
        no_selector,
        &[entry("api")],
        &[LiveService::default()],
        &provenance(),
    )
    .unwrap_err()
    .to_string();
    assert!(e.contains("has no selector"), "{e}");
    let mut named = entry("api");
    named.deployments = vec!["nope".into()];
    let e = plan(
        objects(),
        &[named],
        &[LiveService::default()],
        &provenance(),
    )
    .unwrap_err()
    .to_string();
    assert!(
        e.contains("no Deployment `nope` in namespace `shop`"),
        "{e}"
    );
    let mut two = objects();
    let mut other = two[2].clone();
    other["metadata"]["namespace"] = json!("prod");
    two.push(other);
    let e = plan(
        two,
        &[entry("api")],
        &[LiveService::default()],
        &provenance(),
    )
    .unwrap_err()
    .to_string();
    assert!(
        e.contains("several namespaces") && e.contains("`prod`"),
        "{e}"
    );
}

#[test]
fn a_deployment_behind_two_released_services_is_refused() {
    let mut objs = objects();
    let mut internal = objs[2].clone();
    internal["metadata"]["name"] = json!("api-internal");
    objs.push(internal);
    let mut second = entry("api-internal");
    second.field = "devloop.yaml: deploy.kubernetes.blueGreen[1]".into();
    let e = plan(
        objs,
        &[entry("api"), second],
        &[LiveService::default(), LiveService::default()],
        &provenance(),
    )
    .unwrap_err()
    .to_string();
    assert!(
        e.contains("Deployment `api` is behind the Services of both"),
        "{e}"
    );
}

#[test]
fn rollback_form_swaps_the_colours() {
    let svc = objects()[2].clone();
    let v = rolled_back(&svc, Color::Blue, Color::Green, "c1", "reg/api:1", "now");
    assert_eq!(v["spec"]["selector"]["devloop.dev/color"], "blue");
    assert_eq!(
        v["metadata"]["annotations"]["devloop.dev/previous-color"],
        "green"
    );
    assert_eq!(v["metadata"]["annotations"]["devloop.dev/commit"], "c1");
}
