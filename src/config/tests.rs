//! Config, unit tests: loading devloop.yaml — errors naming file, field, value and hint; YAML errors; defaults;
//! profiles merged in definition order.

use super::build::default_alias;
use super::*;

/// A project dir with `Dockerfile`s in `dirs`, and the config text; returns the load result's error text.
fn load_err(config: &str, dirs: &[&str], opts: &LoadOptions) -> String {
    let dir = tempfile::tempdir().unwrap();
    for d in dirs {
        std::fs::create_dir_all(dir.path().join(d)).unwrap();
        std::fs::write(dir.path().join(d).join("Dockerfile"), "FROM scratch\n").unwrap();
    }
    let file = dir.path().join("devloop.yaml");
    std::fs::write(&file, config).unwrap();
    let e = load(&file, opts, &|_| None).unwrap_err().to_string();
    e.replace(&dir.path().display().to_string(), "<dir>")
}

const HEAD: &str = "apiVersion: devloop/v1alpha1\nkind: Config\n";

#[test]
fn errors_name_file_field_value_and_hint() {
    let o = LoadOptions::default();
    insta::assert_snapshot!(load_err(&format!("{HEAD}build:\n  artifacts:\n    - image: api\n      context: ./api\n"), &[], &o), @r"
    <dir>/devloop.yaml: build.artifacts[0].context: directory `./api` does not exist

    hint: paths are relative to the directory of the config file
    ");
    insta::assert_snapshot!(load_err(&format!("{HEAD}build:\n  artifacts:\n    - image: api\n      context: api\n      docker: {{dockerfile: nope.Dockerfile}}\n"), &["api"], &o), @r"
    <dir>/devloop.yaml: build.artifacts[0].docker.dockerfile: file `nope.Dockerfile` does not exist (looked for `<dir>/api/nope.Dockerfile`)

    hint: the Dockerfile path is relative to the artifact's context
    ");
    insta::assert_snapshot!(load_err(&format!("{HEAD}build:\n  artifacts:\n    - image: Api_Server\n"), &["."], &o), @"<dir>/devloop.yaml: build.artifacts[0].image: `Api_Server` is not a valid image name: path components must be lowercase letters and digits, separated by `.`, `_`, `__` or dashes");
    insta::assert_snapshot!(load_err(&format!("{HEAD}build:\n  artifacts:\n    - image: api:v1\n"), &["."], &o), @r"
    <dir>/devloop.yaml: build.artifacts[0].image: `api:v1` has a tag or digest

    hint: name the repository only (`api`); devloop tags images by `build.tagPolicy`
    ");
    insta::assert_snapshot!(load_err(&format!("{HEAD}build:\n  artifacts:\n    - image: api\n    - image: docker.io/library/api\n"), &["."], &o), @r"
    <dir>/devloop.yaml: build.artifacts[1].image: `docker.io/library/api` is already built by build.artifacts[0]

    hint: each image is built by one artifact; give this one another name
    ");
    insta::assert_snapshot!(load_err(&format!("{HEAD}build:\n  artifacts:\n    - image: a\n      requires: [{{image: b}}]\n    - image: b\n      requires: [{{image: a}}]\n"), &["."], &o), @r"
    <dir>/devloop.yaml: build.artifacts: `requires` forms a cycle: `a` → `b` → `a`

    hint: an artifact cannot require itself, directly or through others
    ");
    insta::assert_snapshot!(load_err(&format!("{HEAD}build:\n  artifacts:\n    - image: a\n      requires: [{{image: zz}}]\n"), &["."], &o), @r"
    <dir>/devloop.yaml: build.artifacts[0].requires[0].image: `zz` is not an artifact of this config

    hint: artifacts: `a`
    ");
    insta::assert_snapshot!(load_err("kind: Config\n", &[], &o), @r"
    <dir>/devloop.yaml: apiVersion: missing

    hint: start the file with `apiVersion: devloop/v1alpha1` and `kind: Config`
    ");
    insta::assert_snapshot!(load_err(&format!("{HEAD}build:\n  tagPolicy: {{gitCommit: {{variant: Short}}}}\n"), &[], &o), @r"
    <dir>/devloop.yaml: build.tagPolicy.gitCommit.variant: unknown variant `Short`

    hint: use `Tags`, `CommitSha` or `AbbrevCommitSha`
    ");
    insta::assert_snapshot!(load_err(&format!("{HEAD}build:\n  artifacts:\n    - image: a\n      docker: {{buildArgs: {{X: \"{{{{.X\"}}}}\n"), &["."], &o), @"<dir>/devloop.yaml: build.artifacts[0].docker.buildArgs.X: unclosed `{{` in `{{.X`");
    let p = LoadOptions {
        profiles: vec!["prd".into()],
        ..Default::default()
    };
    insta::assert_snapshot!(load_err(&format!("{HEAD}profiles:\n  - name: prod\n"), &[], &p), @r"
    <dir>/devloop.yaml: profiles: unknown profile `prd` (from `-p`)

    hint: defined profiles: `prod`
    ");
}

#[test]
fn yaml_errors_have_line_and_column_and_unknown_fields_are_named() {
    let o = LoadOptions::default();
    let e = load_err(
        &format!("{HEAD}build:\n  artifacts:\n    - image: a\n      contxt: .\n"),
        &[],
        &o,
    );
    assert!(e.contains("contxt") && e.contains("line 6"), "{e}");
    let e = load_err(&format!("{HEAD}build:\n  concurrency: lots\n"), &[], &o);
    assert!(e.contains("concurrency") || e.contains("line 4"), "{e}");
    let e = load_err(&format!("{HEAD}build: [\n"), &[], &o);
    assert!(e.contains("line"), "{e}");
}

#[test]
fn defaults_and_project_name() {
    let dir = tempfile::tempdir().unwrap();
    let proj = dir.path().join("My Shop!");
    std::fs::create_dir_all(&proj).unwrap();
    std::fs::write(proj.join("Dockerfile"), "FROM scratch\n").unwrap();
    std::fs::write(
        proj.join("devloop.yaml"),
        format!("{HEAD}build:\n  artifacts:\n    - image: team/app-base\n      requires: []\n"),
    )
    .unwrap();
    let cfg = load(&proj.join("devloop.yaml"), &LoadOptions::default(), &|_| {
        None
    })
    .unwrap();
    assert_eq!(cfg.project, "my-shop");
    assert_eq!(cfg.build.tag_policy, TagPolicy::InputDigest);
    assert_eq!(cfg.build.artifacts[0].context, proj.canonicalize().unwrap());
    assert_eq!(default_alias("team/app-base"), "APP_BASE");
}

#[test]
fn profiles_merge_in_definition_order() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("Dockerfile"), "FROM scratch\n").unwrap();
    let file = dir.path().join("devloop.yaml");
    std::fs::write(
        &file,
        format!(
            "{HEAD}build:\n  concurrency: 1\n  artifacts:\n    - image: api\n      docker: {{buildArgs: {{A: '1'}}}}\nprofiles:\n  - name: one\n    build: {{concurrency: 3, artifacts: [{{image: api, docker: {{target: dev}}}}]}}\n  - name: two\n    activation: [{{env: 'CI=true'}}]\n    build: {{concurrency: 5}}\n"
        ),
    )
    .unwrap();
    let opts = LoadOptions {
        profiles: vec!["one".into()],
        ..Default::default()
    };
    let cfg = load(&file, &opts, &|k| (k == "CI").then(|| "true".to_string())).unwrap();
    assert_eq!(cfg.build.concurrency, 5);
    assert_eq!(cfg.build.artifacts.len(), 1);
    assert_eq!(cfg.build.artifacts[0].target.as_deref(), Some("dev"));
    assert_eq!(
        cfg.build.artifacts[0]
            .build_args
            .get("A")
            .map(String::as_str),
        Some("1")
    );
    assert_eq!(
        cfg.active_profiles
            .iter()
            .map(|p| p.reason.as_str())
            .collect::<Vec<_>>(),
        ["selected with -p", "env CI=true"]
    );
    let opts = LoadOptions {
        profiles: vec!["-two".into()],
        ..Default::default()
    };
    let cfg = load(&file, &opts, &|k| (k == "CI").then(|| "true".to_string())).unwrap();
    assert_eq!(
        cfg.build.concurrency, 1,
        "-p -two deactivates the auto-activated profile"
    );
}
