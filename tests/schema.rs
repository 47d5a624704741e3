//! `devloop schema`: the JSON Schema of devloop.yaml accepts every config the repository ships
//! (`devloop.yaml.example`, `examples/*/devloop.yaml`, devloop.yaml files under `tests/fixtures`, what `devloop
//! init` wrote in the reviewed snapshots) and rejects
//! what the loader rejects for its shape (unknown fields, wrong types); the committed copy in `schema/` is current;
//! the command prints or writes it.
#![allow(clippy::unwrap_used)]

mod support;

use std::path::{Path, PathBuf};

use devloop::config::{self, schema};
use serde_json::Value;
use support::{Project, assert_ok, stderr, stdout};

fn root() -> &'static Path {
    Path::new(env!("CARGO_MANIFEST_DIR"))
}

/// A draft-07 validator of the schema devloop generates.
fn validator() -> jsonschema::Validator {
    jsonschema::draft7::new(&schema::schema()).unwrap()
}

/// A YAML document as the YAML language server sees it: JSON values.
fn json_of(yaml: &str) -> Value {
    serde_saphyr::from_str::<Value>(yaml).unwrap()
}

/// The schema's complaints about `yaml`, one line each, with the instance path: the innermost ones (inside the
/// `anyOf` an optional field is), as an editor underlines them.
fn violations(yaml: &str) -> Vec<String> {
    let validator = validator();
    let instance = json_of(yaml);
    if validator.is_valid(&instance) {
        return Vec::new();
    }
    validator
        .evaluate(&instance)
        .iter_errors()
        .map(|e| format!("{}: {}", e.instance_location.as_str(), e.error))
        .collect()
}

/// Every devloop.yaml in `dir` and below (`devloop.yaml`, `devloop.yml`, `*.devloop.yaml`).
fn configs_under(dir: &Path, found: &mut Vec<PathBuf>) {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return;
    };
    for entry in entries {
        let path = entry.unwrap().path();
        let name = path.file_name().unwrap().to_string_lossy().into_owned();
        if path.is_dir() {
            configs_under(&path, found);
        } else if name == "devloop.yaml" || name == "devloop.yml" || name.ends_with(".devloop.yaml")
        {
            found.push(path);
        }
    }
}

#[test]
fn the_committed_schema_is_current() {
    let committed = std::fs::read_to_string(root().join("schema").join(config::SCHEMA_FILE))
        .unwrap_or_default();
    assert!(
        committed == schema::schema_text(),
        "schema/devloop.schema.json is stale: the config types changed since it was generated\n\n\
         hint: refresh it with `cargo run -- schema --output-file schema/devloop.schema.json` and commit it"
    );
}

#[test]
fn every_shipped_config_is_valid() {
    let mut files = vec![root().join("devloop.yaml.example")];
    configs_under(&root().join("examples"), &mut files);
    configs_under(&root().join("tests/fixtures"), &mut files);
    assert!(
        files.len() >= 3,
        "the example and examples/hello, examples/shop at least: {files:?}"
    );
    for file in &files {
        let text = std::fs::read_to_string(file).unwrap();
        // The loader reads it too: the schema and the parser agree on what is valid.
        config::parse(&file.display().to_string(), &text).unwrap();
        let errors = violations(&text);
        assert!(
            errors.is_empty(),
            "{}:\n{}",
            file.display(),
            errors.join("\n")
        );
    }
}

/// The devloop.yaml files `devloop init` wrote in the reviewed snapshots (`tests/snapshots/*devloop_yaml.snap`):
/// each one's text after insta's header.
fn init_outputs() -> Vec<(PathBuf, String)> {
    let mut out = Vec::new();
    for entry in std::fs::read_dir(root().join("tests/snapshots")).unwrap() {
        let path = entry.unwrap().path();
        let name = path.file_name().unwrap().to_string_lossy().into_owned();
        if name.starts_with("init_") && name.ends_with("devloop_yaml.snap") {
            let text = std::fs::read_to_string(&path).unwrap();
            let body = text.splitn(3, "---\n").nth(2).unwrap().to_string();
            out.push((path, body));
        }
    }
    out
}

#[test]
fn every_config_init_writes_in_the_snapshots_is_valid_and_names_the_schema() {
    let outputs = init_outputs();
    assert!(!outputs.is_empty(), "init_compose's snapshot at least");
    for (file, text) in outputs {
        assert!(
            text.starts_with(&config::schema_comment()),
            "{}: {}",
            file.display(),
            text.lines().next().unwrap_or("")
        );
        config::parse(&file.display().to_string(), &text).unwrap();
        let errors = violations(&text);
        assert!(
            errors.is_empty(),
            "{}:\n{}",
            file.display(),
            errors.join("\n")
        );
    }
}

/// A minimal valid config with `extra` appended.
fn config_with(extra: &str) -> String {
    format!("apiVersion: devloop/v1alpha1\nkind: Config\n{extra}")
}

/// `yaml` is rejected by the schema at `at`, and by the loader's parser too.
fn rejected(yaml: &str, at: &str) {
    let errors = violations(yaml);
    assert!(
        errors.iter().any(|e| e.starts_with(&format!("{at}: "))),
        "expected a violation at `{at}`, got {errors:?} for:\n{yaml}"
    );
    assert!(
        config::parse("devloop.yaml", yaml).is_err(),
        "the parser accepts what the schema rejects:\n{yaml}"
    );
}

#[test]
fn a_minimal_config_is_valid_and_apiversion_and_kind_are_required() {
    assert_eq!(violations(&config_with("")), Vec::<String>::new());
    let errors = violations("kind: Config\n");
    assert!(
        errors.iter().any(|e| e.contains("apiVersion")),
        "{errors:?}"
    );
    let errors = violations("apiVersion: devloop/v2\nkind: Config\n");
    assert!(
        errors.iter().any(|e| e.starts_with("/apiVersion: ")),
        "{errors:?}"
    );
}

#[test]
fn an_unknown_field_at_the_top_is_rejected() {
    rejected(&config_with("deployy: {}\n"), "");
}

#[test]
fn an_unknown_field_in_an_artifact_is_rejected() {
    rejected(
        &config_with("build:\n  artifacts:\n    - image: api\n      dockerfile: Dockerfile\n"),
        "/build/artifacts/0",
    );
}

#[test]
fn an_unknown_field_in_a_profile_is_rejected() {
    rejected(
        &config_with("profiles:\n  - name: prod\n    activation:\n      - environment: CI=1\n"),
        "/profiles/0/activation/0",
    );
    rejected(
        &config_with("profiles:\n  - name: prod\n    builds: {}\n"),
        "/profiles/0",
    );
}

#[test]
fn wrong_types_are_rejected() {
    rejected(
        &config_with("build:\n  concurrency: two\n"),
        "/build/concurrency",
    );
    rejected(
        &config_with("portForward:\n  - resourceName: api\n    port: [80]\n"),
        "/portForward/0/port",
    );
    rejected(
        &config_with("portForward:\n  - resourceName: api\n    port: 70000\n"),
        "/portForward/0/port",
    );
    rejected(
        &config_with("manifests:\n  rawYaml: k8s/*.yaml\n"),
        "/manifests/rawYaml",
    );
}

#[test]
fn a_port_may_be_a_number_or_a_name_and_hooks_take_either_shape() {
    let yaml = config_with(
        "portForward:\n  - resourceName: api\n    port: http\n  - resourceName: web\n    port: 8080\n\
         deploy:\n  hooks:\n    before:\n      - host: {command: [echo, hi]}\n      - container: {command: [ls], podName: 'api-*'}\n",
    );
    config::parse("devloop.yaml", &yaml).unwrap();
    assert_eq!(violations(&yaml), Vec::<String>::new());
}

#[test]
fn numbers_and_booleans_where_devloop_reads_text_are_valid_but_not_as_a_port() {
    let yaml = config_with(
        "metadata:\n  name: 2024\nbuild:\n  artifacts:\n    - image: api\n      docker:\n        buildArgs:\n          \
         PORT: 8080\n          DEBUG: true\n          VERSION: 1.10\n",
    );
    let raw = config::parse("devloop.yaml", &yaml).unwrap();
    let args = raw.build.unwrap().artifacts.unwrap()[0]
        .docker
        .clone()
        .unwrap()
        .build_args
        .unwrap();
    assert_eq!(args["VERSION"], "1.10", "the parser keeps the text");
    assert_eq!(violations(&yaml), Vec::<String>::new());
    rejected(
        &config_with("portForward:\n  - resourceName: api\n    port: true\n"),
        "/portForward/0/port",
    );
}

#[test]
fn schema_prints_the_committed_schema_and_writes_it_to_a_file() {
    let p = Project::new();
    let out = p.devloop(&["schema"]);
    assert_ok(&out);
    assert_eq!(stdout(&out), schema::schema_text());
    let printed: Value = serde_json::from_str(&stdout(&out)).unwrap();
    assert_eq!(
        printed["$schema"],
        "http://json-schema.org/draft-07/schema#"
    );

    let out = p.devloop(&["schema", "--output-file", "devloop.schema.json"]);
    assert_ok(&out);
    assert!(stdout(&out).is_empty());
    assert_eq!(
        std::fs::read_to_string(p.path().join("devloop.schema.json")).unwrap(),
        schema::schema_text()
    );
    assert!(
        stderr(&out).contains("yaml-language-server: $schema=./devloop.schema.json"),
        "{}",
        stderr(&out)
    );

    let out = p.devloop(&["schema", "--output-file", "missing/devloop.schema.json"]);
    assert_eq!(out.status.code(), Some(2));
    assert!(stderr(&out).contains("does not exist"), "{}", stderr(&out));
}

#[test]
fn help_lists_the_schema_command() {
    let p = Project::new();
    let out = p.devloop(&["--help"]);
    assert_ok(&out);
    assert!(stdout(&out).contains("schema"), "{}", stdout(&out));
    let out = p.devloop(&["schema", "--help"]);
    assert_ok(&out);
    assert!(stdout(&out).contains("--output-file"), "{}", stdout(&out));
}
