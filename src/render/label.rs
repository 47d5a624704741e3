//! Render: labels; an object + devloop's labels → the object with them on its metadata and pod templates.
//! It must never touch selectors, a Job's pod template or a StatefulSet's `volumeClaimTemplates`.

use std::collections::BTreeMap;

use serde_json::{Map, Value};

use super::Object;
use super::metadata::{Placement, labels_mut, metadata_mut};
use super::workload::Workload;

/// Adds `labels` to `metadata.labels` and to the pod templates that can take them (see [`super::render`]).
/// An existing label with the same key is overwritten: these keys belong to devloop.
pub(crate) fn apply(object: &mut Object, labels: &BTreeMap<String, String>) {
    if labels.is_empty() {
        return;
    }
    let workload = Workload::of(object.group(), object.kind());
    let value = &mut object.value;
    add(value, labels, Placement::Object);
    let templates: &[&[&str]] = match workload {
        None | Some(Workload::Pod | Workload::Job) => &[],
        Some(Workload::PodTemplate) => &[&["template"]],
        Some(Workload::Controller {
            selector_defaults_to_template: true,
        }) if value
            .get("spec")
            .and_then(|s| s.get("selector"))
            .is_none_or(Value::is_null) =>
        {
            // Without a selector the API server derives one from the template labels; changing them would
            // change the selector, so leave the template alone.
            &[]
        }
        Some(Workload::Controller { .. }) => &[&["spec", "template"]],
        Some(Workload::CronJob) => &[
            &["spec", "jobTemplate"],
            &["spec", "jobTemplate", "spec", "template"],
        ],
    };
    for path in templates {
        if let Some(template) = path
            .iter()
            .try_fold(&mut *value, |map, key| map.get_mut(*key)?.as_object_mut())
        {
            add(template, labels, Placement::Template);
        }
    }
}

/// Merges `labels` into `map.metadata.labels`.
fn add(map: &mut Map<String, Value>, labels: &BTreeMap<String, String>, placement: Placement) {
    let Some(existing) = metadata_mut(map, placement).and_then(labels_mut) else {
        return;
    };
    for (key, value) in labels {
        existing.insert(key.clone(), Value::String(value.clone()));
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use std::path::PathBuf;

    use serde_json::json;

    use super::*;
    use crate::render::ObjectSource;

    fn labelled(value: Value) -> Value {
        let Value::Object(value) = value else {
            panic!()
        };
        let mut object = Object {
            source: ObjectSource::File {
                path: PathBuf::from("a.yaml"),
            },
            document: 1,
            item: None,
            value,
        };
        let labels = BTreeMap::from([
            ("devloop.dev/run".to_owned(), "r1".to_owned()),
            ("app".to_owned(), "ours".to_owned()),
        ]);
        apply(&mut object, &labels);
        object.into_value()
    }

    fn ours() -> Value {
        json!({"app": "ours", "devloop.dev/run": "r1"})
    }

    #[test]
    fn labels_object_metadata_keeping_existing_labels_in_place() {
        let out = labelled(
            json!({"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "c", "labels": {"x": "1", "app": "theirs"}}}),
        );
        assert_eq!(
            out["metadata"]["labels"],
            json!({"x": "1", "app": "ours", "devloop.dev/run": "r1"})
        );
        let keys: Vec<&String> = out["metadata"]["labels"]
            .as_object()
            .unwrap()
            .keys()
            .collect();
        assert_eq!(keys, ["x", "app", "devloop.dev/run"]);

        let out = labelled(json!({"apiVersion": "example.com/v1", "kind": "Widget"}));
        assert_eq!(out["metadata"], json!({"labels": ours()}));
        let out = labelled(
            json!({"apiVersion": "v1", "kind": "Service", "metadata": {"name": "s", "labels": null}}),
        );
        assert_eq!(out["metadata"]["labels"], ours());
    }

    #[test]
    fn labels_pod_templates_but_not_selectors_or_claims() {
        for kind in ["Deployment", "StatefulSet", "DaemonSet", "ReplicaSet"] {
            let out = labelled(
                json!({"apiVersion": "apps/v1", "kind": kind, "metadata": {"name": "w"}, "spec": {
                    "selector": {"matchLabels": {"app": "w"}},
                    "template": {"metadata": {"labels": {"app": "w"}}, "spec": {}},
                    "volumeClaimTemplates": [{"metadata": {"name": "data"}}],
                }}),
            );
            assert_eq!(
                out["spec"]["selector"],
                json!({"matchLabels": {"app": "w"}}),
                "{kind}"
            );
            assert_eq!(
                out["spec"]["template"]["metadata"]["labels"],
                json!({"app": "ours", "devloop.dev/run": "r1"}),
                "{kind}"
            );
            assert_eq!(
                out["spec"]["volumeClaimTemplates"],
                json!([{"metadata": {"name": "data"}}]),
                "{kind}"
            );
            assert_eq!(out["metadata"]["labels"], ours(), "{kind}");
        }
        // A template without metadata gets some.
        let out = labelled(
            json!({"apiVersion": "apps/v1", "kind": "Deployment", "spec": {"template": {"spec": {}}}}),
        );
        assert_eq!(
            out["spec"]["template"]["metadata"],
            json!({"labels": ours()})
        );
    }

    #[test]
    fn never_labels_a_job_pod_template() {
        let job = json!({"apiVersion": "batch/v1", "kind": "Job", "metadata": {"name": "j"},
            "spec": {"template": {"metadata": {"labels": {"a": "b"}}, "spec": {}}}});
        let out = labelled(job.clone());
        assert_eq!(out["spec"], job["spec"]);
        assert_eq!(out["metadata"]["labels"], ours());
    }

    #[test]
    fn labels_cron_job_job_template_and_its_pod_template() {
        for version in ["batch/v1", "batch/v1beta1"] {
            let out = labelled(
                json!({"apiVersion": version, "kind": "CronJob", "spec": {"schedule": "* * * * *",
                "jobTemplate": {"spec": {"selector": {"matchLabels": {"x": "y"}}, "template": {"spec": {}}}}}}),
            );
            assert_eq!(
                out["spec"]["jobTemplate"]["metadata"]["labels"],
                ours(),
                "{version}"
            );
            assert_eq!(
                out["spec"]["jobTemplate"]["spec"]["template"]["metadata"]["labels"],
                ours(),
                "{version}"
            );
            assert_eq!(
                out["spec"]["jobTemplate"]["spec"]["selector"],
                json!({"matchLabels": {"x": "y"}})
            );
        }
    }

    #[test]
    fn replication_controller_template_only_with_a_selector() {
        let with = labelled(json!({"apiVersion": "v1", "kind": "ReplicationController",
            "spec": {"selector": {"app": "r"}, "template": {"metadata": {"labels": {"app": "r"}}}}}));
        assert_eq!(
            with["spec"]["template"]["metadata"]["labels"],
            json!({"app": "ours", "devloop.dev/run": "r1"})
        );
        assert_eq!(with["spec"]["selector"], json!({"app": "r"}));
        let without = labelled(json!({"apiVersion": "v1", "kind": "ReplicationController",
            "spec": {"template": {"metadata": {"labels": {"app": "r"}}}}}));
        assert_eq!(
            without["spec"]["template"]["metadata"]["labels"],
            json!({"app": "r"})
        );
    }

    #[test]
    fn pod_template_kind_and_pods() {
        let out =
            labelled(json!({"apiVersion": "v1", "kind": "PodTemplate", "template": {"spec": {}}}));
        assert_eq!(out["template"]["metadata"]["labels"], ours());
        let out = labelled(json!({"apiVersion": "v1", "kind": "Pod", "spec": {}}));
        assert_eq!(
            out,
            json!({"apiVersion": "v1", "kind": "Pod", "spec": {}, "metadata": {"labels": ours()}})
        );
    }

    #[test]
    fn no_labels_changes_nothing() {
        let mut object = Object {
            source: ObjectSource::File {
                path: PathBuf::from("a.yaml"),
            },
            document: 1,
            item: None,
            value: json!({"apiVersion": "v1", "kind": "Pod"})
                .as_object()
                .unwrap()
                .clone(),
        };
        apply(&mut object, &BTreeMap::new());
        assert_eq!(
            object.into_value(),
            json!({"apiVersion": "v1", "kind": "Pod"})
        );
    }
}
