//! `devloop render` end to end: images from flags, from a build-artifacts file, and from a real (cached) build.
#![allow(clippy::unwrap_used)]

mod support;

use std::path::Path;

use support::{Project, assert_ok, stderr, stdout, unique};

fn copy_dir(from: &Path, to: &Path) {
    std::fs::create_dir_all(to).unwrap();
    for entry in std::fs::read_dir(from).unwrap() {
        let entry = entry.unwrap();
        let target = to.join(entry.file_name());
        if entry.file_type().unwrap().is_dir() {
            if entry.file_name() != "bin" {
                copy_dir(&entry.path(), &target);
            }
        } else {
            std::fs::copy(entry.path(), target).unwrap();
        }
    }
}

/// A copy of an example project (without any copied-in binaries).
fn example(name: &str) -> Project {
    let p = Project::new();
    copy_dir(
        &Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("examples")
            .join(name),
        p.path(),
    );
    p
}

const API: &str = "registry.local:5000/shop-api:1a2b3c4d5e6f@sha256:0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef";
const MIGRATE: &str = "registry.local:5000/shop-migrate:6f5e4d3c2b1a";

#[test]
fn shop_dev_overlay_with_given_images() {
    let p = example("shop");
    let out = p.devloop(&[
        "render",
        "--offline",
        "--images",
        &format!("shop-api={API},shop-migrate={MIGRATE}"),
    ]);
    assert_ok(&out);
    let yaml = stdout(&out);
    insta::assert_snapshot!("shop_dev", yaml);
    // Rendering is deterministic.
    let again = p.devloop(&[
        "render",
        "--offline",
        "--images",
        &format!("shop-api={API},shop-migrate={MIGRATE}"),
    ]);
    assert_eq!(stdout(&again), yaml);
}

#[test]
fn shop_prod_profile_from_a_build_artifacts_file() {
    let p = example("shop");
    p.write(
        "artifacts.json",
        &format!("{{\"builds\": [{{\"imageName\": \"shop-api\", \"tag\": \"{API}\"}}, {{\"imageName\": \"shop-migrate\", \"tag\": \"{MIGRATE}\"}}]}}"),
    );
    let out_file = p.path().join("out.yaml");
    let out = p.devloop(&[
        "render",
        "-p",
        "prod",
        "--build-artifacts",
        "artifacts.json",
        "--output-file",
        out_file.to_str().unwrap(),
    ]);
    assert_ok(&out);
    assert!(stdout(&out).is_empty(), "YAML goes to the file");
    let yaml = std::fs::read_to_string(&out_file).unwrap();
    assert!(
        yaml.contains("namespace: shop\n") && yaml.contains("replicas: 3"),
        "{yaml}"
    );
    assert!(yaml.contains(&format!("image: {API}")), "{yaml}");
    assert!(
        yaml.contains("image: postgres:16-alpine"),
        "images that are not artifacts are left alone"
    );
    assert!(
        stderr(&out).contains("profile prod active"),
        "{}",
        stderr(&out)
    );
}

#[test]
fn render_builds_with_the_cache_and_injects_the_built_reference() {
    support::require_docker();
    let mut p = example("hello");
    let image = unique("devloop-test-render");
    let config = std::fs::read_to_string(p.path().join("devloop.yaml"))
        .unwrap()
        .replace("image: hello-web", &format!("image: {image}"));
    p.write("devloop.yaml", &config);
    let manifest = std::fs::read_to_string(p.path().join("k8s/web.yaml"))
        .unwrap()
        .replace("image: hello-web", &format!("image: {image}"));
    p.write("k8s/web.yaml", &manifest);
    p.with_busybox("bin/busybox");
    let build = p.devloop(&["build"]);
    assert_ok(&build);
    let reference = stdout(&build).trim().to_string();
    p.cleanup_image(&reference);
    let out = p.devloop(&["render"]);
    assert_ok(&out);
    assert!(
        stderr(&out).contains("cached"),
        "render reuses the cached build: {}",
        stderr(&out)
    );
    let yaml = stdout(&out);
    assert!(
        yaml.contains(&format!("image: {reference}")),
        "the built, content-tagged reference is injected:\n{yaml}"
    );
    assert!(
        yaml.contains("app.kubernetes.io/managed-by: devloop"),
        "{yaml}"
    );
}

#[test]
fn bad_images_flag_is_a_usage_error() {
    let p = example("shop");
    let out = p.devloop(&["render", "--images", "shop-api"]);
    assert_eq!(out.status.code(), Some(2));
    assert!(
        stderr(&out).contains("`shop-api` is not `name=reference`"),
        "{}",
        stderr(&out)
    );
}
