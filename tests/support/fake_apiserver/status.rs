//! Fake API server, errors: a failed request → the `Status` body (or plain text) the real apiserver answers with;
//! must not invent fields kube-apiserver 1.32 does not send.

use serde_json::{Map, Value, json};

/// One `details.causes[]` entry.
#[derive(Debug, Clone, PartialEq)]
pub struct Cause {
    pub reason: &'static str,
    pub message: String,
    pub field: String,
}

/// An error answer: either a JSON `Status` or the plain-text 404 of an unknown API group path.
#[derive(Debug, Clone, PartialEq)]
pub enum ApiError {
    Status {
        code: u16,
        reason: Option<&'static str>,
        message: String,
        /// `None` → no `details` key; `Some(empty)` → `"details": {}`.
        details: Option<Box<Details>>,
    },
    PlainNotFound,
}

/// `Status.details`.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct Details {
    pub name: Option<String>,
    pub group: Option<String>,
    pub kind: Option<String>,
    pub uid: Option<String>,
    pub causes: Vec<Cause>,
}

impl Details {
    /// Details naming an object of a resource: `{name, group?, kind: plural}`.
    pub fn object(name: Option<&str>, group: &str, kind: &str) -> Self {
        Details {
            name: name.filter(|n| !n.is_empty()).map(str::to_string),
            group: (!group.is_empty()).then(|| group.to_string()),
            kind: Some(kind.to_string()),
            ..Default::default()
        }
    }

    fn to_json(&self) -> Value {
        let mut m = Map::new();
        if let Some(n) = &self.name {
            m.insert("name".into(), json!(n));
        }
        if let Some(g) = &self.group {
            m.insert("group".into(), json!(g));
        }
        if let Some(k) = &self.kind {
            m.insert("kind".into(), json!(k));
        }
        if let Some(u) = &self.uid {
            m.insert("uid".into(), json!(u));
        }
        if !self.causes.is_empty() {
            let causes: Vec<Value> = self
                .causes
                .iter()
                .map(|c| json!({"reason": c.reason, "message": c.message, "field": c.field}))
                .collect();
            m.insert("causes".into(), Value::Array(causes));
        }
        Value::Object(m)
    }
}

/// `<resource>[.<group>]`, the qualified resource name used in messages (`deployments.apps`).
pub fn qualified(resource: &str, group: &str) -> String {
    if group.is_empty() {
        resource.to_string()
    } else {
        format!("{resource}.{group}")
    }
}

impl ApiError {
    /// The HTTP status code.
    pub fn code(&self) -> u16 {
        match self {
            ApiError::Status { code, .. } => *code,
            ApiError::PlainNotFound => 404,
        }
    }

    /// The JSON `Status` body (`None` for the plain-text 404).
    pub fn body(&self) -> Option<Value> {
        match self {
            ApiError::Status {
                code,
                reason,
                message,
                details,
            } => {
                let mut m = Map::new();
                m.insert("kind".into(), json!("Status"));
                m.insert("apiVersion".into(), json!("v1"));
                m.insert("metadata".into(), json!({}));
                m.insert("status".into(), json!("Failure"));
                m.insert("message".into(), json!(message));
                if let Some(r) = reason {
                    m.insert("reason".into(), json!(r));
                }
                if let Some(d) = details {
                    m.insert("details".into(), d.to_json());
                }
                m.insert("code".into(), json!(code));
                Some(Value::Object(m))
            }
            ApiError::PlainNotFound => None,
        }
    }

    /// `404 the server could not find the requested resource`, `details: {}`.
    pub fn resource_not_found() -> Self {
        ApiError::Status {
            code: 404,
            reason: Some("NotFound"),
            message: "the server could not find the requested resource".into(),
            details: Some(Box::new(Details::default())),
        }
    }

    /// `404 <resource>[.<group>] "<name>" not found`.
    pub fn not_found(resource: &str, group: &str, name: &str) -> Self {
        ApiError::Status {
            code: 404,
            reason: Some("NotFound"),
            message: format!("{} \"{name}\" not found", qualified(resource, group)),
            details: Some(Box::new(Details::object(Some(name), group, resource))),
        }
    }

    /// `409 <resource> "<name>" already exists`.
    pub fn already_exists(resource: &str, group: &str, name: &str) -> Self {
        ApiError::Status {
            code: 409,
            reason: Some("AlreadyExists"),
            message: format!("{} \"{name}\" already exists", qualified(resource, group)),
            details: Some(Box::new(Details::object(Some(name), group, resource))),
        }
    }

    /// `400 BadRequest` with a bare message and no details.
    pub fn bad_request(message: impl Into<String>) -> Self {
        ApiError::Status {
            code: 400,
            reason: Some("BadRequest"),
            message: message.into(),
            details: None,
        }
    }

    /// `500` without a reason (typed-patch and resourceVersion parse failures).
    pub fn internal(message: impl Into<String>) -> Self {
        ApiError::Status {
            code: 500,
            reason: None,
            message: message.into(),
            details: None,
        }
    }

    /// `410 Expired` for a list at a compacted resourceVersion.
    pub fn list_expired() -> Self {
        ApiError::Status {
            code: 410,
            reason: Some("Expired"),
            message: "The resourceVersion for the provided list is too old.".into(),
            details: None,
        }
    }

    /// `422 Invalid`: `<Kind>[.<group>] "<name>" is invalid: <cause>` (bracketed list when several).
    pub fn invalid(kind: &str, group: &str, name: &str, causes: Vec<Cause>) -> Self {
        let rendered: Vec<String> = causes
            .iter()
            .map(|c| format!("{}: {}", c.field, c.message))
            .collect();
        let joined = if rendered.len() == 1 {
            rendered[0].clone()
        } else {
            format!("[{}]", rendered.join(", "))
        };
        let mut details = Details::object(Some(name), group, kind);
        details.causes = causes;
        ApiError::Status {
            code: 422,
            reason: Some("Invalid"),
            message: format!("{} \"{name}\" is invalid: {joined}", qualified(kind, group)),
            details: Some(Box::new(details)),
        }
    }

    /// `403 Forbidden` from authorization (RBAC).
    pub fn forbidden_rbac(
        user: &str,
        verb: &str,
        resource: &str,
        subresource: Option<&str>,
        group: &str,
        namespace: Option<&str>,
        name: Option<&str>,
    ) -> Self {
        let subject = match name {
            Some(n) if !n.is_empty() => format!("{} \"{n}\"", qualified(resource, group)),
            _ => qualified(resource, group),
        };
        let full_resource = match subresource {
            Some(s) => format!("{resource}/{s}"),
            None => resource.to_string(),
        };
        let scope = match namespace {
            Some(ns) if !ns.is_empty() => format!("in the namespace \"{ns}\""),
            _ => "at the cluster scope".to_string(),
        };
        ApiError::Status {
            code: 403,
            reason: Some("Forbidden"),
            message: format!(
                "{subject} is forbidden: User \"{user}\" cannot {verb} resource \"{full_resource}\" in API group \"{group}\" {scope}"
            ),
            details: Some(Box::new(Details::object(name, group, resource))),
        }
    }

    /// `401 Unauthorized` for a token the server does not know.
    pub fn unauthorized() -> Self {
        ApiError::Status {
            code: 401,
            reason: Some("Unauthorized"),
            message: "Unauthorized".into(),
            details: None,
        }
    }
}

/// A `Status` with `status: Success` as DELETE returns when the object is gone at once.
pub fn success_status(name: &str, group: &str, resource: &str, uid: &str) -> Value {
    let mut d = Details::object(Some(name), group, resource);
    d.uid = Some(uid.to_string());
    json!({"kind": "Status", "apiVersion": "v1", "metadata": {}, "status": "Success", "details": d.to_json()})
}
