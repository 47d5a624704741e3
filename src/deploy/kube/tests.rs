//! Deploy, Kubernetes backend, unit tests: dates, immutable-field errors, forbidden answers.

use kube::core::Status;
use kube::discovery::ApiResource;

use super::failure::{is_immutable, status_error};
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
