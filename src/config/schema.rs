//! Config, schema: the raw config types (`raw.rs` and the sections it reaches) → the JSON Schema of devloop.yaml
//! (draft-07, what the YAML language server reads), and the modeline that points an editor at it. One source of
//! truth: the schema is derived from the types the loader parses with, never written by hand. Writes no files.

use serde_json::{Value, json};

use super::API_VERSION;
use super::raw::RawConfig;

/// The schema's file name, beside the devloop.yaml that `devloop init` writes (and in this repository under
/// `schema/`).
pub const SCHEMA_FILE: &str = "devloop.schema.json";

/// The first line of every devloop.yaml that devloop writes: the YAML language server (VS Code's YAML extension,
/// Neovim's yamlls, Helix, Zed, …) resolves a relative `$schema` against the YAML file's directory, so the schema
/// written beside the file is found offline and is the one of the devloop that wrote it.
pub fn schema_comment() -> String {
    format!("# yaml-language-server: $schema=./{SCHEMA_FILE}\n")
}

/// The JSON Schema of devloop.yaml. Draft-07 because the YAML language server validates with draft-07 (newer
/// drafts are partly or not supported there).
pub fn schema() -> Value {
    let generator = schemars::generate::SchemaSettings::draft07().into_generator();
    let mut schema = generator.into_root_schema_for::<RawConfig>().to_value();
    widen_strings(&mut schema, false);
    refine(&mut schema);
    describe_for_editors(&mut schema);
    schema
}

/// [`schema`] as the text `devloop schema` prints and the repository keeps: pretty JSON ending in a newline.
pub fn schema_text() -> String {
    let mut text = serde_json::to_string_pretty(&schema()).unwrap_or_default();
    text.push('\n');
    text
}

/// A string field also takes a plain number or boolean, as the parser does: it reads the scalar's text, so
/// `PORT: 8080` in `buildArgs` is the string `8080` and `image.tag: 1.10` in `setValues` stays `1.10` — an editor
/// must not flag what devloop reads. Not inside an untagged enum (an `anyOf` without a `null` branch, e.g. a port
/// as a number or a name): serde tries its variants on the value's type there, and `port: true` is an error.
fn widen_strings(node: &mut Value, untagged: bool) {
    match node {
        Value::Object(map) => {
            let untagged = untagged
                || map
                    .get("anyOf")
                    .and_then(Value::as_array)
                    .is_some_and(|branches| {
                        !branches
                            .iter()
                            .any(|b| b.get("type") == Some(&json!("null")))
                    });
            if !untagged {
                let widened = match map.get("type") {
                    Some(t) if t == "string" => Some(json!(["string", "number", "boolean"])),
                    Some(t) if *t == json!(["string", "null"]) => {
                        Some(json!(["string", "number", "boolean", "null"]))
                    }
                    _ => None,
                };
                if let Some(widened) = widened {
                    map.insert("type".into(), widened);
                }
            }
            for value in map.values_mut() {
                widen_strings(value, untagged);
            }
        }
        Value::Array(items) => {
            for item in items {
                widen_strings(item, untagged);
            }
        }
        _ => {}
    }
}

/// Doc comments are wrapped at the source's line width; an editor's hover wraps by itself, so a single line
/// break becomes a space (a blank line, a paragraph, stays). Each description is also given as
/// `markdownDescription`, which the YAML language server (and VS Code) render as Markdown, so the docs' `code`
/// spans show as code rather than as escaped backticks.
fn describe_for_editors(node: &mut Value) {
    match node {
        Value::Object(map) => {
            let mut described = None;
            for (key, value) in map.iter_mut() {
                match value {
                    Value::String(text) if key == "description" => {
                        *text = text
                            .split("\n\n")
                            .map(|paragraph| paragraph.replace('\n', " "))
                            .collect::<Vec<_>>()
                            .join("\n\n");
                        described = Some(text.clone());
                    }
                    _ => describe_for_editors(value),
                }
            }
            if let Some(text) = described {
                map.insert("markdownDescription".into(), Value::String(text));
            }
        }
        Value::Array(items) => items.iter_mut().for_each(describe_for_editors),
        _ => {}
    }
}

/// What the types alone cannot say but the loader checks on every file: the title, and that `apiVersion` and
/// `kind` are required and take one value each (so an editor offers them). The root's keys are put in reading
/// order (`$schema`, title, description first).
fn refine(schema: &mut Value) {
    let Some(root) = schema.as_object_mut() else {
        return;
    };
    if let Some(properties) = root.get_mut("properties").and_then(Value::as_object_mut) {
        for (field, value, what) in [
            ("apiVersion", API_VERSION, "The config format's version."),
            ("kind", "Config", "The document's kind."),
        ] {
            properties.insert(
                field.into(),
                json!({ "description": what, "type": "string", "enum": [value] }),
            );
        }
    }
    let mut ordered = serde_json::Map::new();
    ordered.insert(
        "$schema".into(),
        root.remove("$schema").unwrap_or(Value::Null),
    );
    ordered.insert("title".into(), json!("devloop.yaml"));
    ordered.insert(
        "description".into(),
        json!(format!(
            "devloop's project config (`apiVersion: {API_VERSION}`). Generated by `devloop schema` from the types \
             devloop parses it with; field reference: docs/config.md."
        )),
    );
    ordered.insert("required".into(), json!(["apiVersion", "kind"]));
    root.remove("description");
    root.remove("title");
    ordered.append(root);
    *root = ordered;
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    /// The definition `name` points at, following one `$ref`.
    fn definition<'a>(schema: &'a Value, name: &str) -> &'a Value {
        &schema["definitions"][name]
    }

    #[test]
    fn unknown_fields_are_not_allowed_anywhere_the_parser_denies_them() {
        let s = schema();
        assert_eq!(s["additionalProperties"], json!(false));
        for name in [
            "RawArtifact",
            "RawProfile",
            "RawBuild",
            "Manifests",
            "RawHook",
        ] {
            assert_eq!(
                definition(&s, name)["additionalProperties"],
                json!(false),
                "{name}"
            );
        }
    }

    #[test]
    fn a_port_is_a_number_or_a_name() {
        let s = schema();
        let port = definition(&s, "RawPort");
        let kinds: Vec<&Value> = port["anyOf"]
            .as_array()
            .unwrap()
            .iter()
            .map(|v| &v["type"])
            .collect();
        assert_eq!(kinds, [&json!("integer"), &json!("string")], "{port}");
    }

    #[test]
    fn strings_take_scalars_the_parser_reads_as_text_but_a_port_name_does_not() {
        let s = schema();
        let args = &definition(&s, "RawDocker")["properties"]["buildArgs"];
        assert_eq!(
            args["additionalProperties"]["type"],
            json!(["string", "number", "boolean"]),
            "{args}"
        );
        assert_eq!(
            definition(&s, "RawDocker")["properties"]["target"]["type"],
            json!(["string", "number", "boolean", "null"])
        );
        assert_eq!(
            definition(&s, "RawPort")["anyOf"][1]["type"],
            json!("string")
        );
        assert_eq!(s["properties"]["kind"]["type"], json!("string"));
    }

    #[test]
    fn doc_comments_become_descriptions() {
        let s = schema();
        let sync = &definition(&s, "RawSyncRule")["properties"]["src"]["description"];
        assert!(
            sync.as_str()
                .unwrap()
                .starts_with("A glob relative to the context"),
            "{sync}"
        );
    }

    #[test]
    fn wrapped_doc_lines_are_joined() {
        let s = schema();
        let name = definition(&s, "RawMetadata")["properties"]["name"]["description"]
            .as_str()
            .unwrap();
        assert!(name.contains("letters, digits, `-`"), "{name}");
        assert!(!name.contains('\n'), "{name}");
        assert_eq!(
            definition(&s, "RawMetadata")["properties"]["name"]["markdownDescription"],
            name
        );
    }

    #[test]
    fn the_comment_names_the_file_written_beside_the_config() {
        assert_eq!(
            schema_comment(),
            "# yaml-language-server: $schema=./devloop.schema.json\n"
        );
    }
}
