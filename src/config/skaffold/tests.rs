//! Config, Skaffold import: unit tests of whole conversions (files in temp dirs → `Conversion`).

use std::path::Path;

use super::*;

fn write(dir: &Path, rel: &str, text: &str) {
    let p = dir.join(rel);
    std::fs::create_dir_all(p.parent().unwrap()).unwrap();
    std::fs::write(p, text).unwrap();
}

fn convert_in(dir: &Path, file: &str, profiles: &[String]) -> Conversion {
    convert(&Request {
        file: &dir.join(file),
        output_dir: dir,
        profiles,
    })
    .unwrap_or_else(|e| panic!("{e}"))
}

fn at(findings: &[Finding]) -> Vec<&str> {
    findings.iter().map(|f| f.at.as_str()).collect()
}

#[test]
fn v2_deployers_get_skaffold_defaults() {
    let d = tempfile::tempdir().unwrap();
    write(
        d.path(),
        "skaffold.yaml",
        "apiVersion: skaffold/v2beta20\nkind: Config\ndeploy:\n  kubectl: {}\n  kustomize: {}\n",
    );
    let c = convert_in(d.path(), "skaffold.yaml", &[]);
    let m = c.config.manifests.unwrap();
    assert_eq!(m.raw_yaml, ["k8s/*.yaml"]);
    assert_eq!(m.kustomize.unwrap().paths, [Path::new(".")]);
}

#[test]
fn every_field_left_out_is_recorded() {
    let d = tempfile::tempdir().unwrap();
    write(
        d.path(),
        "skaffold.yaml",
        "apiVersion: skaffold/v4beta1\nkind: Config\nfoo: 1\nbuild:\n  artifacts:\n    - image: a\n      docker:\n        noCache: true\n    - image: b\n      ko: {}\nverify:\n  - name: smoke\n",
    );
    let c = convert_in(d.path(), "skaffold.yaml", &[]);
    assert_eq!(
        at(&c.not_converted),
        [
            "foo",
            "build.artifacts[0].docker.noCache",
            "build.artifacts[1].ko",
            "verify"
        ]
    );
    assert_eq!(c.config.build.unwrap().artifacts.unwrap().len(), 1);
}

#[test]
fn required_configs_resolve_their_paths_and_unconditional_profiles() {
    let d = tempfile::tempdir().unwrap();
    write(
        d.path(),
        "lib/skaffold.yaml",
        "apiVersion: skaffold/v4beta1\nkind: Config\nbuild:\n  tagPolicy: {gitCommit: {}}\n  artifacts: [{image: lib, context: src}]\nprofiles:\n  - name: fast\n    build: {local: {concurrency: 8}}\n",
    );
    write(
        d.path(),
        "app/skaffold.yaml",
        "apiVersion: skaffold/v4beta1\nkind: Config\nrequires:\n  - path: ../lib/skaffold.yaml\n    activeProfiles: [{name: fast}]\nbuild:\n  tagPolicy: {inputDigest: {}}\n  artifacts: [{image: app}]\n",
    );
    let c = convert_in(&d.path().join("app"), "skaffold.yaml", &[]);
    let b = c.config.build.unwrap();
    let images: Vec<_> = b
        .artifacts
        .as_ref()
        .unwrap()
        .iter()
        .map(|a| (a.image.as_str(), a.context.as_deref()))
        .collect();
    assert_eq!(images, [("lib", Some("../lib/src")), ("app", None)]);
    // `activeProfiles` without `activatedBy` always applies; the dependency's tag policy comes first.
    assert_eq!(b.concurrency, Some(8));
    assert!(b.tag_policy.unwrap().git_commit.is_some());
    assert_eq!(at(&c.not_converted), ["build.tagPolicy"]);
    // `fast` is still a profile of its own, which changes nothing the base does not already have.
    assert_eq!(c.profiles, ["fast"]);
}

#[test]
fn a_profile_that_removes_a_field_replaces_its_section() {
    let d = tempfile::tempdir().unwrap();
    write(
        d.path(),
        "skaffold.yaml",
        "apiVersion: skaffold/v4beta1\nkind: Config\nmanifests:\n  rawYaml: [a.yaml]\n  kustomize: {paths: [k]}\nprofiles:\n  - name: raw\n    patches:\n      - {op: remove, path: /manifests/kustomize}\n",
    );
    let c = convert_in(d.path(), "skaffold.yaml", &[]);
    let p = &c.config.profiles.as_ref().unwrap()[0];
    assert_eq!(p.replace.as_deref(), Some(&["manifests".to_string()][..]));
    let m = p.manifests.as_ref().unwrap();
    assert_eq!(m.raw_yaml, ["a.yaml"]);
    assert!(m.kustomize.is_none());
}
