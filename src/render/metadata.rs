//! Render: `metadata` editing shared by labels and namespaces; a mapping → its `metadata.*` fields, created where
//! a person would write them (so output reads naturally). It must not decide what to write.

use serde_json::{Map, Value};

/// Where a missing `metadata` goes.
#[derive(Debug, Clone, Copy)]
pub(crate) enum Placement {
    /// A whole object: after `apiVersion` and `kind`.
    Object,
    /// A template: first.
    Template,
}

/// The `metadata` mapping of `map`, created when absent or null; `None` when it is something else (invalid,
/// left for the API server to report).
pub(crate) fn metadata_mut(
    map: &mut Map<String, Value>,
    placement: Placement,
) -> Option<&mut Map<String, Value>> {
    let index = match placement {
        Placement::Object => after(map, &["apiVersion", "kind"]),
        Placement::Template => 0,
    };
    ensure_map(map, "metadata", index)
}

/// Sets `metadata.namespace`, placed after `name` when it is new.
pub(crate) fn set_namespace(metadata: &mut Map<String, Value>, namespace: String) {
    if let Some(existing) = metadata.get_mut("namespace") {
        *existing = Value::String(namespace);
    } else {
        let index = after(metadata, &["name", "generateName"]);
        metadata.shift_insert(index, "namespace".to_owned(), Value::String(namespace));
    }
}

/// `metadata.labels`, created (after `name` and `namespace`) when absent or null; `None` when not a mapping.
pub(crate) fn labels_mut(metadata: &mut Map<String, Value>) -> Option<&mut Map<String, Value>> {
    let index = after(metadata, &["name", "generateName", "namespace"]);
    ensure_map(metadata, "labels", index)
}

/// The mapping at `key`: a null value becomes an empty mapping in place, a missing one is inserted at `index`.
fn ensure_map<'m>(
    map: &'m mut Map<String, Value>,
    key: &str,
    index: usize,
) -> Option<&'m mut Map<String, Value>> {
    match map.get_mut(key) {
        Some(value @ Value::Null) => *value = Value::Object(Map::new()),
        Some(_) => {}
        None => {
            map.shift_insert(index, key.to_owned(), Value::Object(Map::new()));
        }
    }
    map.get_mut(key)?.as_object_mut()
}

/// The index just after the last of `keys` present in `map` (0 when none is).
fn after(map: &Map<String, Value>, keys: &[&str]) -> usize {
    map.keys()
        .enumerate()
        .filter(|(_, k)| keys.contains(&k.as_str()))
        .map(|(i, _)| i + 1)
        .max()
        .unwrap_or(0)
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use serde_json::json;

    use super::*;

    fn map(v: Value) -> Map<String, Value> {
        v.as_object().unwrap().clone()
    }

    #[test]
    fn creates_fields_where_people_write_them() {
        let mut object = map(json!({"apiVersion": "v1", "kind": "ConfigMap", "data": {}}));
        let metadata = metadata_mut(&mut object, Placement::Object).unwrap();
        labels_mut(metadata).unwrap().insert("a".into(), json!("b"));
        set_namespace(metadata, "dev".into());
        assert_eq!(
            serde_json::to_string(&object).unwrap(),
            r#"{"apiVersion":"v1","kind":"ConfigMap","metadata":{"namespace":"dev","labels":{"a":"b"}},"data":{}}"#
        );

        let mut object = map(json!({"metadata": {"annotations": {}, "name": "x"}, "kind": "Pod"}));
        let metadata = metadata_mut(&mut object, Placement::Object).unwrap();
        set_namespace(metadata, "dev".into());
        labels_mut(metadata).unwrap();
        assert_eq!(
            serde_json::to_string(&object).unwrap(),
            r#"{"metadata":{"annotations":{},"name":"x","namespace":"dev","labels":{}},"kind":"Pod"}"#
        );

        let mut template = map(json!({"spec": {}, "metadata": null}));
        metadata_mut(&mut template, Placement::Template).unwrap();
        assert_eq!(
            serde_json::to_string(&template).unwrap(),
            r#"{"spec":{},"metadata":{}}"#
        );
        let mut template = map(json!({"spec": {}}));
        metadata_mut(&mut template, Placement::Template).unwrap();
        assert_eq!(
            serde_json::to_string(&template).unwrap(),
            r#"{"metadata":{},"spec":{}}"#
        );
    }

    #[test]
    fn leaves_invalid_metadata_alone() {
        let mut object = map(json!({"metadata": "oops"}));
        assert!(metadata_mut(&mut object, Placement::Object).is_none());
        let mut metadata = map(json!({"labels": ["x"]}));
        assert!(labels_mut(&mut metadata).is_none());
    }
}
