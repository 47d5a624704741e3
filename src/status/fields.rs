//! Status: fields of Kubernetes objects read as JSON (by JSON pointer), the way the server omits zero values. Pure
//! reading: it must not know any kind of object or judge anything.

use k8s_openapi::jiff::Timestamp;
use serde_json::Value;

pub(super) fn str_at<'v>(v: &'v Value, pointer: &str) -> Option<&'v str> {
    v.pointer(pointer).and_then(Value::as_str)
}

/// An integer field; missing means 0 (status fields with zero values are omitted by the server).
pub(super) fn int_at(v: &Value, pointer: &str) -> i64 {
    opt_int_at(v, pointer).unwrap_or(0)
}

pub(super) fn opt_int_at(v: &Value, pointer: &str) -> Option<i64> {
    v.pointer(pointer).and_then(Value::as_i64)
}

pub(super) fn bool_at(v: &Value, pointer: &str) -> bool {
    v.pointer(pointer).and_then(Value::as_bool).unwrap_or(false)
}

pub(super) fn timestamp_at(v: &Value, pointer: &str) -> Option<Timestamp> {
    str_at(v, pointer).and_then(|s| s.parse().ok())
}

/// `status.conditions[type == kind]`.
pub(super) fn condition<'v>(v: &'v Value, kind: &str) -> Option<&'v Value> {
    v.pointer("/status/conditions")
        .and_then(Value::as_array)?
        .iter()
        .find(|c| str_at(c, "/type") == Some(kind))
}

pub(super) fn condition_true(v: &Value, kind: &str) -> bool {
    condition(v, kind).is_some_and(|c| str_at(c, "/status") == Some("True"))
}

pub(super) fn strings_at<'v>(v: &'v Value, pointer: &str) -> Vec<&'v str> {
    v.pointer(pointer)
        .and_then(Value::as_array)
        .map(|a| a.iter().filter_map(Value::as_str).collect())
        .unwrap_or_default()
}
