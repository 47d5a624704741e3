//! Deploy, Kubernetes backend, failures: a failed API answer (a kube error or a `Status`) → a `DeployError` that
//! says what failed and, when the user can act, who may do what (`kubectl auth can-i …`). Pure: talks to no
//! cluster.

use kube::core::Status;
use kube::discovery::ApiResource;

use crate::deploy::{DeployError, ObjectRef};

/// Why an apply failed: the API server's answer, or another error (already worded).
pub(super) enum ApplyFailure {
    Status(Box<Status>),
    Other(DeployError),
}

pub(super) fn first_line(s: &str) -> &str {
    s.lines().next().unwrap_or(s)
}

/// Whether an apply failed on a field that cannot be updated in place.
pub(super) fn is_immutable(s: &Status) -> bool {
    s.code == 422
        && (s.message.contains("field is immutable")
            || s.message.contains("pod updates may not change fields")
            || s.message
                .contains("Forbidden: updates to statefulset spec for fields other than"))
}

/// A failed API answer → a message that says who may do what, with a hint.
pub(super) fn status_error(
    s: &Status,
    object: &ObjectRef,
    verb: &str,
    ar: &ApiResource,
) -> DeployError {
    let (message, hint) = match s.code {
        403 if s.message.contains("being terminated") => (
            s.message.clone(),
            Some(format!("namespace `{}` is being deleted: wait until it is gone, then deploy again", object.namespace.clone().unwrap_or_default())),
        ),
        403 => (s.message.clone(), Some(can_i(verb, ar, object.namespace.as_deref()))),
        409 => (
            s.message.clone(),
            Some("another field manager owns these fields: pass `--force-conflicts` to take them over, or stop the other writer".into()),
        ),
        422 => (s.message.clone(), None),
        401 => (s.message.clone(), Some("your credentials may have expired: log in again and retry".into())),
        500 if s.message.contains("field not declared in schema") => {
            (s.message.clone(), Some("the manifest has a field this kind does not have: check its spelling and indentation".into()))
        }
        _ if s.message.contains("admission webhook") => (s.message.clone(), Some("an admission webhook of the cluster refused the object".into())),
        _ => (if s.message.is_empty() { format!("HTTP {}", s.code) } else { s.message.clone() }, None),
    };
    DeployError::Apply {
        object: object.to_string(),
        message,
        hint,
    }
}

fn can_i(verb: &str, ar: &ApiResource, namespace: Option<&str>) -> String {
    let resource = if ar.group.is_empty() {
        ar.plural.clone()
    } else {
        format!("{}.{}", ar.plural, ar.group)
    };
    let ns = namespace.map(|n| format!(" -n {n}")).unwrap_or_default();
    format!(
        "ask your cluster admin for `{verb}` on `{resource}`; check with `kubectl auth can-i {verb} {resource}{ns}`"
    )
}

pub(super) fn api_error(
    e: &kube::Error,
    what: &str,
    rbac: Option<(&str, &ApiResource)>,
) -> DeployError {
    match e {
        kube::Error::Api(s) if s.code == 403 => DeployError::Api {
            message: format!("{what}: {}", s.message),
            hint: rbac.map(|(verb, ar)| can_i(verb, ar, None)),
        },
        kube::Error::Api(s) if s.code == 401 => DeployError::Api {
            message: format!("{what}: the credentials were rejected"),
            hint: Some("your credentials may have expired: log in again and retry".into()),
        },
        kube::Error::Api(s) => DeployError::Api {
            message: format!("{what}: {}", s.message),
            hint: None,
        },
        other => DeployError::Api {
            message: format!("{what}: {other}"),
            hint: Some("check that the cluster is reachable (`kubectl version`)".into()),
        },
    }
}
