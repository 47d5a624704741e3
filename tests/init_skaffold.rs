//! `devloop init --from-skaffold` end to end: the real binary on Skaffold projects of our own
//! (tests/fixtures/skaffold: kustomize + Cloud Build, helm on v2, several configs with `requires` across files,
//! profiles with activations and patches, a v2beta config), the devloop.yaml each becomes, the summary, the
//! loader's view of it, `devloop render` against Skaffold's rendering rules, and the errors.
#![allow(clippy::unwrap_used)]

mod support;

use std::path::Path;
use std::process::{Command, Output};

use devloop::config::{self, ActivationContext, LoadOptions};
use serde_json::Value;
use support::{Project, assert_ok, events, events_of, stderr, stdout};

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

/// A copy of tests/fixtures/skaffold/`name`.
fn fixture(name: &str) -> Project {
    let p = Project::new();
    copy_dir(
        &Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("tests/fixtures/skaffold")
            .join(name),
        p.path(),
    );
    p
}

/// Runs devloop in `dir` of the project with no kube context (so `kubeContext` activations never match) and none
/// of the variables the fixtures' templates name.
fn devloop(p: &Project, dir: &str, args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_devloop"))
        .args(args)
        .current_dir(p.path().join(dir))
        .env("DEVLOOP_CACHE_DIR", p.cache.path())
        .env("NO_COLOR", "1")
        .env("KUBECONFIG", p.path().join("no-kubeconfig"))
        .env_remove("DEVLOOP_FILENAME")
        .env_remove("DEPLOY_ENV")
        .env_remove("CI")
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

fn parse_all(yaml: &str) -> Vec<Value> {
    let options = serde_saphyr::options! { legacy_octal_numbers: true };
    serde_saphyr::from_multiple_with_options::<Value>(yaml, options).unwrap()
}

/// Removes the labels devloop adds (its ownership marks), and `labels` left empty by that.
fn strip_devloop_labels(v: &mut Value) {
    match v {
        Value::Object(m) => {
            if let Some(Value::Object(meta)) = m.get_mut("metadata")
                && let Some(Value::Object(labels)) = meta.get_mut("labels")
            {
                labels.retain(|k, _| {
                    k != "app.kubernetes.io/managed-by" && !k.starts_with("devloop.dev/")
                });
                if labels.is_empty() {
                    meta.remove("labels");
                }
            }
            m.values_mut().for_each(strip_devloop_labels);
        }
        Value::Array(a) => a.iter_mut().for_each(strip_devloop_labels),
        _ => {}
    }
}

/// An image name in Docker's normalized form, without tag or digest (`worker:latest` → `docker.io/library/worker`).
fn normalized_name(reference: &str) -> String {
    let name = reference.split('@').next().unwrap();
    let name = match name.rfind(':') {
        Some(i) if !name[i..].contains('/') => &name[..i],
        _ => name,
    };
    let first = name.split('/').next().unwrap();
    let has_domain =
        name.contains('/') && (first.contains('.') || first.contains(':') || first == "localhost");
    match (has_domain, name.contains('/')) {
        (true, _) => name.to_string(),
        (false, true) => format!("docker.io/{name}"),
        (false, false) => format!("docker.io/library/{name}"),
    }
}

/// Skaffold's rendering rule, written from its documentation: every `image` field whose image name is an
/// artifact's gets that artifact's built reference, whatever tag or digest it had.
fn set_images(v: &mut Value, built: &[(&str, &str)]) {
    match v {
        Value::Object(m) => {
            for (k, child) in m.iter_mut() {
                if k == "image" {
                    if let Value::String(s) = child
                        && let Some((_, r)) = built
                            .iter()
                            .find(|(a, _)| normalized_name(a) == normalized_name(s))
                    {
                        *s = r.to_string();
                    }
                } else {
                    set_images(child, built);
                }
            }
        }
        Value::Array(a) => a.iter_mut().for_each(|x| set_images(x, built)),
        _ => {}
    }
}

fn kustomize(dir: &Path) -> Vec<Value> {
    let out = Command::new("kubectl")
        .arg("kustomize")
        .arg(dir)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    parse_all(&String::from_utf8(out.stdout).unwrap())
}

/// `devloop render --offline --images …` of the converted project, devloop's labels removed.
fn render(p: &Project, dir: &str, built: &[(&str, &str)], extra: &[&str]) -> Vec<Value> {
    let images: Vec<String> = built.iter().map(|(a, r)| format!("{a}={r}")).collect();
    let images = images.join(",");
    let mut args = vec!["render", "--offline", "--images", &images];
    args.extend_from_slice(extra);
    let out = devloop(p, dir, &args);
    assert_ok(&out);
    let mut objects = parse_all(&stdout(&out));
    objects.iter_mut().for_each(strip_devloop_labels);
    objects
}

fn assert_same_objects(ours: &[Value], theirs: &[Value]) {
    assert_eq!(ours.len(), theirs.len(), "object counts differ");
    for (a, b) in ours.iter().zip(theirs) {
        assert_eq!(
            a,
            b,
            "object differs:\n{}\n---\n{}",
            serde_json::to_string_pretty(a).unwrap(),
            serde_json::to_string_pretty(b).unwrap()
        );
    }
}

const API: &str = "europe-docker.pkg.dev/acme-dev/shop/api";
const WEB: &str = "europe-docker.pkg.dev/acme-dev/shop/web";
const API_REF: &str = "europe-docker.pkg.dev/acme-dev/shop/api:1a2b3c4@sha256:0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef";
const WEB_REF: &str = "europe-docker.pkg.dev/acme-dev/shop/web:1a2b3c4@sha256:fedcba9876543210fedcba9876543210fedcba9876543210fedcba9876543210";

#[test]
fn kustomize_and_cloud_build_project_converts_and_renders_like_skaffold() {
    let p = fixture("cloudbuild");
    let out = devloop(&p, ".", &["init", "--from-skaffold", "skaffold.yaml"]);
    assert_ok(&out);
    assert!(stdout(&out).is_empty(), "the file is written, not printed");
    let yaml = std::fs::read_to_string(p.path().join("devloop.yaml")).unwrap();
    insta::assert_snapshot!("cloudbuild_devloop_yaml", yaml);
    insta::assert_snapshot!("cloudbuild_summary", stderr(&out));

    let cfg = load(&p.path().join("devloop.yaml"), &[]);
    assert_eq!(cfg.project, "shop");
    assert_eq!(cfg.build.artifacts.len(), 2);
    assert_eq!(
        cfg.deploy_hooks.before.len() + cfg.deploy_hooks.after.len(),
        2
    );
    assert_eq!(cfg.port_forwards.len(), 1);

    // devloop's render of the converted project = kustomize's output with the images Skaffold would set.
    let built = [(API, API_REF), (WEB, WEB_REF)];
    let ours = render(&p, ".", &built, &[]);
    let mut theirs = kustomize(&p.path().join("k8s/overlays/dev"));
    let before = theirs.clone();
    theirs.iter_mut().for_each(|o| set_images(o, &built));
    assert_ne!(
        before, theirs,
        "the oracle set images, so the comparison means something"
    );
    assert_same_objects(&ours, &theirs);
    let text = serde_json::to_string(&ours).unwrap();
    assert!(
        text.contains("envoyproxy/envoy:v1.31.0"),
        "images that are no artifact stay"
    );
    assert!(
        !text.contains("shop/api:dev\""),
        "the tag kustomize set is replaced"
    );
}

#[test]
fn json_output_reports_the_conversion_as_an_event() {
    let p = fixture("cloudbuild");
    let out = devloop(
        &p,
        ".",
        &[
            "init",
            "--from-skaffold",
            "skaffold.yaml",
            "-o",
            "json",
            "--output-file",
            "converted.yaml",
        ],
    );
    assert_ok(&out);
    let all = events(&out);
    let e = events_of(&all, "initSkaffold");
    assert_eq!(e.len(), 1, "{all:?}");
    let data = &e[0]["data"];
    assert_eq!(data["file"], "converted.yaml");
    assert_eq!(data["project"], "shop");
    assert_eq!(data["artifacts"], 2);
    assert!(
        data["notConverted"]
            .as_array()
            .unwrap()
            .iter()
            .any(|f| f["at"] == "build.googleCloudBuild"),
        "{data}"
    );
}

#[test]
fn v2beta_config_converts_and_renders_like_skaffold() {
    let p = fixture("v2beta");
    let out = devloop(&p, ".", &["init", "--from-skaffold", "skaffold.yaml"]);
    assert_ok(&out);
    let yaml = std::fs::read_to_string(p.path().join("devloop.yaml")).unwrap();
    insta::assert_snapshot!("v2beta_devloop_yaml", yaml);
    let cfg = load(&p.path().join("devloop.yaml"), &[]);
    assert_eq!(
        cfg.build.artifacts.len(),
        2,
        "the jib artifact is not converted"
    );

    let built = [
        ("app-api", "registry.local:5000/app-api:v1-abc"),
        ("worker", "registry.local:5000/worker:v1-abc"),
    ];
    let ours = render(&p, ".", &built, &[]);
    // Skaffold v2 with the kubectl and kustomize deployers: the raw manifests, then the kustomization.
    let mut theirs =
        parse_all(&std::fs::read_to_string(p.path().join("k8s/extra/cm.yaml")).unwrap());
    theirs.extend(kustomize(&p.path().join("k8s")));
    theirs.iter_mut().for_each(|o| set_images(o, &built));
    assert_same_objects(&ours, &theirs);
    let text = serde_json::to_string(&ours).unwrap();
    assert_eq!(
        text.matches("registry.local:5000/worker:v1-abc").count(),
        2,
        "`worker:latest` and `docker.io/library/worker` are the artifact"
    );
}

#[test]
fn helm_project_on_v2_converts_and_loads() {
    let p = fixture("helm");
    let out = devloop(&p, ".", &["init", "--from-skaffold", "skaffold.yaml"]);
    assert_ok(&out);
    let yaml = std::fs::read_to_string(p.path().join("devloop.yaml")).unwrap();
    insta::assert_snapshot!("helm_devloop_yaml", yaml);
    insta::assert_snapshot!("helm_summary", stderr(&out));
    // helm is not installed on every machine: the release is checked through the loader.
    let cfg = load(&p.path().join("devloop.yaml"), &[]);
    let helm = cfg.manifests.helm.as_ref().unwrap();
    assert_eq!(helm.releases.len(), 1);
    let r = &helm.releases[0];
    assert_eq!(r.chart_path, "charts/app");
    assert_eq!(r.namespace.as_deref(), Some("demo"));
    assert_eq!(
        r.set_value_templates["image.repository"],
        "{{.IMAGE_REPO_app}}"
    );
    assert_eq!(r.set_value_templates["image.tag"], "{{.IMAGE_TAG_app}}");
    assert_eq!(cfg.build.concurrency, 2);
}

#[test]
fn several_configs_with_requires_across_files_become_one_project() {
    let p = fixture("multi");
    let out = devloop(&p, "app", &["init", "--from-skaffold", "skaffold.yaml"]);
    assert_ok(&out);
    let yaml = std::fs::read_to_string(p.path().join("app/devloop.yaml")).unwrap();
    insta::assert_snapshot!("multi_devloop_yaml", yaml);
    insta::assert_snapshot!("multi_summary", stderr(&out));

    let built = [
        ("backend-api", "backend-api:0f1e2d"),
        ("frontend", "frontend:0f1e2d"),
    ];
    let names = |objects: &[Value]| -> Vec<String> {
        objects
            .iter()
            .map(|o| o["metadata"]["name"].as_str().unwrap().to_string())
            .collect()
    };
    // The required config's manifests come first; `db`, which nothing requires, is not there.
    let base = render(&p, "app", &built, &[]);
    assert_eq!(names(&base), ["api", "frontend", "tools"]);
    assert_eq!(
        base[0]["spec"]["template"]["spec"]["containers"][0]["image"],
        "backend-api:0f1e2d"
    );
    // `-p dev` also activates the required config's `debug` profile, as `requires[].activeProfiles` says.
    let dev = render(&p, "app", &built, &["-p", "dev"]);
    assert_eq!(names(&dev), ["api", "debug", "frontend", "tools"]);
    let cfg = load(&p.path().join("app/devloop.yaml"), &["dev"]);
    let api = cfg
        .build
        .artifacts
        .iter()
        .find(|a| a.image == "backend-api")
        .unwrap();
    assert_eq!(
        api.context,
        p.path().join("backend/api").canonicalize().unwrap()
    );
    assert_eq!(api.build_args["LOG_LEVEL"], "debug");
}

#[test]
fn profiles_keep_their_activations_and_patches() {
    let p = fixture("profiles");
    let out = devloop(&p, ".", &["init", "--from-skaffold", "skaffold.yaml"]);
    assert_ok(&out);
    let yaml = std::fs::read_to_string(p.path().join("devloop.yaml")).unwrap();
    insta::assert_snapshot!("profiles_devloop_yaml", yaml);
    insta::assert_snapshot!("profiles_summary", stderr(&out));
    let file = p.path().join("devloop.yaml");
    let dir = p.path().canonicalize().unwrap();

    // `prod` needs both of its activations (`requiresAllActivations`), matched anywhere in the value as Skaffold does.
    let with = |env: Option<&str>, context: Option<&str>| {
        let opts = LoadOptions {
            profiles: vec![],
            activation: ActivationContext {
                command: "run".into(),
                kube_context: context.map(str::to_string),
            },
        };
        let env = env.map(str::to_string);
        config::load(&file, &opts, &move |k: &str| {
            (k == "DEPLOY_ENV").then(|| env.clone()).flatten()
        })
        .unwrap()
    };
    let both = with(Some("prod-eu"), Some("gke_acme_europe"));
    assert_eq!(
        both.active_profiles
            .iter()
            .map(|a| a.name.as_str())
            .collect::<Vec<_>>(),
        ["prod"]
    );
    assert_eq!(
        both.build.artifacts[0].dockerfile,
        dir.join("app/Dockerfile.prod")
    );
    assert_eq!(both.manifests.raw_yaml, ["k8s/app.yaml", "k8s/prod.yaml"]);
    assert!(both.build.push, "the patch of `build.local.push` applies");
    assert!(
        with(Some("prod"), Some("kind-dev"))
            .active_profiles
            .is_empty()
    );

    // `debug` replaces the forwards; `dev` activates it.
    let dev = load(&file, &["debug"]);
    assert_eq!(dev.port_forwards.len(), 1);
    assert_eq!(dev.port_forwards[0].local_port, Some(5005));
}

#[test]
fn profiles_named_with_p_are_applied_before_converting() {
    let p = fixture("profiles");
    let out = devloop(
        &p,
        ".",
        &[
            "init",
            "--from-skaffold",
            "skaffold.yaml",
            "-p",
            "prod",
            "--output-file",
            "-",
        ],
    );
    assert_ok(&out);
    let yaml = stdout(&out);
    assert!(
        yaml.contains("# Skaffold profiles applied: prod\n"),
        "{yaml}"
    );
    assert!(yaml.contains("dockerfile: Dockerfile.prod"), "{yaml}");
    assert!(
        !yaml.contains("- name: prod"),
        "an applied profile is not also a devloop profile:\n{yaml}"
    );
    let out = devloop(
        &p,
        ".",
        &[
            "init",
            "--from-skaffold",
            "skaffold.yaml",
            "-p",
            "nope",
            "--output-file",
            "-",
        ],
    );
    assert_eq!(out.status.code(), Some(2));
    insta::assert_snapshot!("unknown_profile", stderr(&out));
}

#[test]
fn bad_input_is_refused_naming_file_and_field() {
    let p = Project::new();
    p.write("compose.yaml", "services:\n  web:\n    image: nginx\n");
    p.write("old.yaml", "apiVersion: skaffold/v1beta13\nkind: Config\n");
    p.write("missing.yaml", "apiVersion: skaffold/v4beta1\nkind: Config\nrequires:\n  - path: ../nowhere/skaffold.yaml\n");
    p.write("a.yaml", "apiVersion: skaffold/v4beta1\nkind: Config\nmetadata: {name: a}\nrequires:\n  - path: b/skaffold.yaml\n");
    p.write("b/skaffold.yaml", "apiVersion: skaffold/v4beta1\nkind: Config\nmetadata: {name: b}\nrequires:\n  - path: ../a.yaml\n");
    // The project lacks a Dockerfile the Skaffold config names: the project's state, not a bug of the conversion.
    p.write(
        "nodockerfile.yaml",
        "apiVersion: skaffold/v4beta1\nkind: Config\nbuild:\n  artifacts: [{image: app, docker: {dockerfile: app.Dockerfile}}]\n",
    );
    let mut texts = String::new();
    for f in [
        "nodockerfile.yaml",
        "compose.yaml",
        "old.yaml",
        "missing.yaml",
        "a.yaml",
        "absent.yaml",
    ] {
        let out = devloop(
            &p,
            ".",
            &["init", "--from-skaffold", f, "--output-file", "-"],
        );
        assert_eq!(out.status.code(), Some(2), "{f}: {}", stderr(&out));
        assert!(stdout(&out).is_empty());
        texts.push_str(&format!(
            "$ devloop init --from-skaffold {f}\n{}\n",
            stderr(&out)
        ));
    }
    let root = p.path().canonicalize().unwrap();
    let texts = texts
        .replace(&root.display().to_string(), "<project>")
        .replace(&p.path().display().to_string(), "<project>");
    insta::assert_snapshot!("bad_input", texts);
    assert!(!p.path().join("devloop.yaml").exists());
}
