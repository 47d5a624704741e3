//! Status: which pods belong to a workload ([`PodSelector`]: its label selector, the Job controller's label, or the
//! pod itself), and `LabelSelector` matching. Pure: it must not talk to the cluster.

use serde_json::{Map, Value};

use super::fields::str_at;

/// The label the Job controller puts on its pods (devloop does not label Job pod templates).
pub(super) const JOB_NAME_LABEL: &str = "batch.kubernetes.io/job-name";

/// Which pods belong to a workload.
#[derive(Debug, Clone)]
pub(super) enum PodSelector {
    /// `spec.selector` of a Deployment, StatefulSet, DaemonSet (or a Job, whose selector the server sets).
    Labels(Value),
    /// A Job without a selector: the label the Job controller sets.
    JobName(String),
    /// A bare Pod: itself (by name, and uid when known).
    Itself { name: String, uid: Option<String> },
}

impl PodSelector {
    pub(super) fn matches(&self, pod: &Value) -> bool {
        let labels = pod.pointer("/metadata/labels").and_then(Value::as_object);
        match self {
            PodSelector::Labels(selector) => selector_matches(selector, labels),
            PodSelector::JobName(job) => {
                labels
                    .and_then(|l| l.get(JOB_NAME_LABEL))
                    .and_then(Value::as_str)
                    == Some(job.as_str())
            }
            PodSelector::Itself { name, uid } => {
                str_at(pod, "/metadata/name") == Some(name.as_str())
                    && (uid.is_none() || str_at(pod, "/metadata/uid") == uid.as_deref())
            }
        }
    }
}

/// A `LabelSelector` (`matchLabels` and `matchExpressions`) against a pod's labels.
pub(super) fn selector_matches(selector: &Value, labels: Option<&Map<String, Value>>) -> bool {
    if !selector.is_object() {
        return false;
    }
    let label = |k: &str| labels.and_then(|l| l.get(k)).and_then(Value::as_str);
    if let Some(ml) = selector.get("matchLabels").and_then(Value::as_object)
        && !ml.iter().all(|(k, v)| label(k) == v.as_str())
    {
        return false;
    }
    let exprs = selector.get("matchExpressions").and_then(Value::as_array);
    exprs.into_iter().flatten().all(|e| {
        let key = str_at(e, "/key").unwrap_or("");
        let values: Vec<&str> = e
            .get("values")
            .and_then(Value::as_array)
            .map(|v| v.iter().filter_map(Value::as_str).collect())
            .unwrap_or_default();
        match (str_at(e, "/operator").unwrap_or(""), label(key)) {
            ("In", Some(v)) => values.contains(&v),
            ("NotIn", Some(v)) => !values.contains(&v),
            ("NotIn", None) | ("Exists", Some(_)) | ("DoesNotExist", None) => true,
            _ => false,
        }
    })
}
