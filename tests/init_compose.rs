//! `devloop init --from-compose` end to end: the real binary on a representative compose project
//! (tests/fixtures/compose), the devloop.yaml it writes and the summary it prints, and its errors.
#![allow(clippy::unwrap_used)]

mod support;

use std::path::Path;
use std::process::{Command, Output};

use devloop::config::{self, LoadOptions};
use support::{Project, assert_ok, events_of, stderr, stdout};

fn copy_dir(from: &Path, to: &Path) {
    std::fs::create_dir_all(to).unwrap();
    for entry in std::fs::read_dir(from).unwrap() {
        let entry = entry.unwrap();
        let target = to.join(entry.file_name());
        if entry.file_type().unwrap().is_dir() {
            copy_dir(&entry.path(), &target);
        } else {
            std::fs::copy(entry.path(), target).unwrap();
        }
    }
}

/// A copy of tests/fixtures/compose.
fn fixture() -> Project {
    let p = Project::new();
    copy_dir(
        &Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/compose"),
        p.path(),
    );
    p
}

/// Runs devloop in the project without the variables the fixture interpolates, so that `.env` and the
/// defaults decide, whatever the machine's environment holds.
fn devloop(p: &Project, args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_devloop"))
        .args(args)
        .current_dir(p.path())
        .env("DEVLOOP_CACHE_DIR", p.cache.path())
        .env("NO_COLOR", "1")
        .env_remove("DEVLOOP_FILENAME")
        .env_remove("SHOP_DB_PASSWORD")
        .env_remove("SHOP_LOG_LEVEL")
        .env_remove("APP_VERSION")
        .env_remove("COMPOSE_PROJECT_NAME")
        .output()
        .unwrap()
}

fn load(file: &Path, profiles: &[&str]) -> config::Config {
    let opts = LoadOptions {
        profiles: profiles.iter().map(|p| p.to_string()).collect(),
        ..Default::default()
    };
    config::load(file, &opts, &|_| None).unwrap_or_else(|e| panic!("{e}"))
}

#[test]
fn converts_the_compose_project_into_a_devloop_yaml_that_loads() {
    let p = fixture();
    let out = devloop(&p, &["init", "--from-compose", "docker-compose.yml"]);
    assert_ok(&out);
    assert!(stdout(&out).is_empty(), "the file is written, not printed");
    let yaml = std::fs::read_to_string(p.path().join("devloop.yaml")).unwrap();
    insta::assert_snapshot!("devloop_yaml", yaml);
    insta::assert_snapshot!("summary", stderr(&out));

    // The generated file is what the other commands load.
    let cfg = load(&p.path().join("devloop.yaml"), &[]);
    assert_eq!(cfg.project, "shop");
    assert_eq!(cfg.build.artifacts.len(), 1);
    assert_eq!(
        cfg.build.artifacts[0].dockerfile,
        p.path()
            .canonicalize()
            .unwrap()
            .join("deploy/docker/api.Dockerfile")
    );
    let docker = cfg.docker.unwrap();
    let names: Vec<&str> = docker.containers.iter().map(|c| c.name.as_str()).collect();
    assert_eq!(names, ["api", "migrate", "db"]);
    assert_eq!(
        docker.containers[0]
            .env
            .get("FEATURE_FLAGS")
            .map(String::as_str),
        Some("search,checkout"),
        "the env_file is read by devloop like compose reads it"
    );
    let with_debug = load(&p.path().join("devloop.yaml"), &["debug"]);
    assert_eq!(with_debug.docker.unwrap().containers.len(), 4);
}

#[test]
fn json_output_is_one_init_complete_event() {
    let p = fixture();
    let out = devloop(
        &p,
        &["init", "--from-compose", "docker-compose.yml", "-o", "json"],
    );
    assert_ok(&out);
    let events = support::events(&out);
    let done = events_of(&events, "initComplete");
    assert_eq!(events.len(), 1, "{events:?}");
    let data = &done[0]["data"];
    assert_eq!(data["file"], "devloop.yaml");
    assert_eq!(data["composeFile"], "docker-compose.yml");
    assert_eq!(data["project"], "shop");
    assert_eq!(data["containers"], 4);
    assert_eq!(data["artifacts"], 1);
    assert_eq!(data["profiles"], serde_json::json!(["debug"]));
    assert_eq!(data["services"][1]["builtBy"], "api");
    assert!(
        data["notConverted"]
            .as_array()
            .unwrap()
            .iter()
            .any(|f| f["at"] == "db.container_name"),
        "{data}"
    );
    let secret = &data["interpolated"][1];
    assert_eq!(secret["variable"], "SHOP_DB_PASSWORD");
    assert_eq!(secret["source"], "dotEnv");
    assert!(
        !stdout(&out).contains("shop-dev"),
        "values are never in events"
    );
    assert!(stderr(&out).is_empty(), "{}", stderr(&out));
}

#[test]
fn output_file_dash_prints_the_yaml_and_writes_nothing() {
    let p = fixture();
    let out = devloop(
        &p,
        &[
            "init",
            "--from-compose",
            "docker-compose.yml",
            "--output-file",
            "-",
        ],
    );
    assert_ok(&out);
    assert!(!p.path().join("devloop.yaml").exists());
    let printed = stdout(&out);
    assert!(
        printed.starts_with(&format!(
            "{}# Generated from docker-compose.yml",
            config::schema_comment()
        )),
        "{printed}"
    );
    assert!(
        stderr(&out).contains("`devloop schema --output-file devloop.schema.json`"),
        "{}",
        stderr(&out)
    );
    assert!(!p.path().join("devloop.schema.json").exists());
    assert!(
        stderr(&out).contains("converted docker-compose.yml (printed on stdout)"),
        "{}",
        stderr(&out)
    );
    let written = devloop(&p, &["init", "--from-compose", "docker-compose.yml"]);
    assert_ok(&written);
    assert_eq!(
        printed,
        std::fs::read_to_string(p.path().join("devloop.yaml")).unwrap()
    );
    let json = devloop(
        &p,
        &[
            "init",
            "--from-compose",
            "docker-compose.yml",
            "--output-file",
            "-",
            "-o",
            "json",
        ],
    );
    assert_eq!(json.status.code(), Some(2));
    assert!(stderr(&json).contains("where `-o json` writes events"));
}

#[test]
fn writing_elsewhere_rebases_paths_onto_the_output_directory() {
    let p = fixture();
    std::fs::create_dir_all(p.path().join("dev")).unwrap();
    let out = devloop(
        &p,
        &[
            "init",
            "--from-compose",
            "docker-compose.yml",
            "--output-file",
            "dev/devloop.yaml",
        ],
    );
    assert_ok(&out);
    let yaml = std::fs::read_to_string(p.path().join("dev/devloop.yaml")).unwrap();
    assert!(yaml.contains("context: \"..\"\n"), "{yaml}");
    assert!(yaml.contains("- ../config/api.env\n"), "{yaml}");
    assert!(yaml.contains("- ../config:/etc/shop:ro\n"), "{yaml}");
    assert!(
        stderr(&out).contains("`devloop dev -f dev/devloop.yaml`"),
        "{}",
        stderr(&out)
    );
    let cfg = load(&p.path().join("dev/devloop.yaml"), &[]);
    assert_eq!(
        cfg.build.artifacts[0].context,
        p.path().canonicalize().unwrap()
    );
}

#[test]
fn refuses_to_overwrite_without_force() {
    let p = fixture();
    p.write("devloop.yaml", "# mine\n");
    let out = devloop(&p, &["init", "--from-compose", "docker-compose.yml"]);
    assert_eq!(out.status.code(), Some(2), "{}", stderr(&out));
    insta::assert_snapshot!(stderr(&out), @r"
    error: devloop.yaml: already exists; not overwritten

    hint: use `--force` to overwrite it, or `--output-file FILE` to write somewhere else
    ");
    assert_eq!(
        std::fs::read_to_string(p.path().join("devloop.yaml")).unwrap(),
        "# mine\n"
    );
    let forced = devloop(
        &p,
        &["init", "--from-compose", "docker-compose.yml", "--force"],
    );
    assert_ok(&forced);
    assert!(
        std::fs::read_to_string(p.path().join("devloop.yaml"))
            .unwrap()
            .contains("kind: Config")
    );
    // `-f` names the output too.
    let other = devloop(
        &p,
        &[
            "init",
            "--from-compose",
            "docker-compose.yml",
            "-f",
            "devloop.yaml",
        ],
    );
    assert_eq!(other.status.code(), Some(2));
}

#[test]
fn invalid_input_is_a_clear_error() {
    let p = Project::new();
    let run = |args: &[&str]| {
        let out = devloop(&p, args);
        assert_eq!(out.status.code(), Some(2), "{}", stderr(&out));
        assert!(!p.path().join("devloop.yaml").exists());
        stderr(&out)
    };
    let missing = run(&["init", "--from-compose", "compose.yaml"]);
    assert!(
        missing.starts_with("error: compose.yaml: cannot read the config: "),
        "{missing}"
    );
    assert!(missing.contains("hint: name the compose file"), "{missing}");
    p.write("broken.yml", "services:\n  api: [\n");
    let broken = run(&["init", "--from-compose", "broken.yml"]);
    assert!(
        broken.starts_with("error: broken.yml: ") && broken.contains("line"),
        "{broken}"
    );
    p.write(
        "devloop-like.yml",
        "apiVersion: devloop/v1alpha1\nkind: Config\n",
    );
    insta::assert_snapshot!(run(&["init", "--from-compose", "devloop-like.yml"]), @r"
    error: devloop-like.yml: services: missing: this is not a compose file

    hint: a compose file has a top-level `services:` mapping
    ");
    p.write("no-image.yml", "services:\n  worker:\n    command: run\n");
    insta::assert_snapshot!(run(&["init", "--from-compose", "no-image.yml"]), @r"
    error: no-image.yml: services.worker: has neither `image` nor `build`

    hint: compose rejects this service too: give it an `image:` to run or a `build:` to build
    ");
    p.write(
        "ports.yml",
        "services:\n  web:\n    image: nginx\n    ports: [\"${WEB_PORT:?set WEB_PORT}:80\"]\n",
    );
    insta::assert_snapshot!(run(&["init", "--from-compose", "ports.yml"]), @r"
    error: ports.yml: services.web.ports[0]: required variable `WEB_PORT` is not set: set WEB_PORT

    hint: compose interpolates `${VAR}` from the environment and `.env`; devloop init does the same
    ");
}

#[test]
fn the_written_config_starts_with_the_modeline_of_the_schema_written_beside_it() {
    let p = fixture();
    std::fs::create_dir_all(p.path().join("dev")).unwrap();
    let out = devloop(
        &p,
        &[
            "init",
            "--from-compose",
            "docker-compose.yml",
            "--output-file",
            "dev/devloop.yaml",
        ],
    );
    assert_ok(&out);
    let yaml = std::fs::read_to_string(p.path().join("dev/devloop.yaml")).unwrap();
    assert_eq!(
        yaml.lines().next(),
        Some("# yaml-language-server: $schema=./devloop.schema.json")
    );
    // The modeline's relative path resolves against the devloop.yaml's directory, as the language server does.
    let schema_file = p.path().join("dev").join(config::SCHEMA_FILE);
    let schema: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(&schema_file).unwrap()).unwrap();
    assert_eq!(schema, config::schema::schema());
    let validator = jsonschema::draft7::new(&schema).unwrap();
    let instance: serde_json::Value = serde_saphyr::from_str(&yaml).unwrap();
    let errors: Vec<String> = validator
        .iter_errors(&instance)
        .map(|e| format!("{}: {e}", e.instance_path()))
        .collect();
    assert!(errors.is_empty(), "{errors:?}");
    assert!(
        stderr(&out).contains(
            "wrote `dev/devloop.schema.json`, the schema its first line points editors at"
        ),
        "{}",
        stderr(&out)
    );
    // And the file still loads, with the comment and with the profile.
    load(&p.path().join("dev/devloop.yaml"), &["debug"]);
}

#[test]
fn a_different_schema_file_is_kept_unless_forced() {
    let p = fixture();
    p.write("devloop.schema.json", "{\"mine\": true}\n");
    let out = devloop(&p, &["init", "--from-compose", "docker-compose.yml"]);
    assert_ok(&out);
    assert_eq!(
        std::fs::read_to_string(p.path().join("devloop.schema.json")).unwrap(),
        "{\"mine\": true}\n"
    );
    assert!(
        stderr(&out).contains("differs from this devloop's and was kept: `--force` replaces it"),
        "{}",
        stderr(&out)
    );
    let forced = devloop(
        &p,
        &["init", "--from-compose", "docker-compose.yml", "--force"],
    );
    assert_ok(&forced);
    assert_eq!(
        std::fs::read_to_string(p.path().join("devloop.schema.json")).unwrap(),
        config::schema::schema_text()
    );
    // A current one is left as it is and said so.
    let again = devloop(
        &p,
        &["init", "--from-compose", "docker-compose.yml", "--force"],
    );
    assert_ok(&again);
    assert!(
        stderr(&again).contains("`devloop.schema.json`, the schema its first line points editors at (completion and checks with the YAML language server: VS Code's YAML extension, yamlls), is already this devloop's"),
        "{}",
        stderr(&again)
    );
}
