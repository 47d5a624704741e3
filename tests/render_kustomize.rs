//! Oracle test: devloop's render of a kustomize overlay with built images equals `kubectl kustomize` of the same
//! overlay with the images set through kustomize's own `images:` field, object for object (devloop's labels
//! removed). Needs `kubectl` (its built-in kustomize) on PATH.

use std::collections::BTreeMap;
use std::fs;
use std::path::{Path, PathBuf};
use std::process::Command;

use devloop::config::manifests::{Kustomize, Manifests};
use devloop::render::{ArtifactImage, RenderRequest, render};
use serde_json::Value;

const RUN_LABEL: &str = "devloop.dev/run";
const DIGEST: &str = "sha256:4a5b6c7d8e9f00112233445566778899aabbccddeeff00112233445566778899";

fn fixture() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/kustomize")
}

fn copy_tree(from: &Path, to: &Path) {
    fs::create_dir_all(to).expect("create dir");
    for entry in fs::read_dir(from).expect("read fixture dir") {
        let entry = entry.expect("dir entry");
        let target = to.join(entry.file_name());
        if entry.file_type().expect("file type").is_dir() {
            copy_tree(&entry.path(), &target);
        } else {
            fs::copy(entry.path(), target).expect("copy fixture file");
        }
    }
}

fn env() -> BTreeMap<String, String> {
    std::env::vars().collect()
}

fn artifacts() -> Vec<ArtifactImage> {
    vec![
        ArtifactImage {
            name: "app-api".into(),
            reference: "127.0.0.1:5000/app-api:3f2a9c".into(),
            repository: "127.0.0.1:5000/app-api".into(),
            tag: "3f2a9c".into(),
            digest: None,
        },
        ArtifactImage {
            name: "worker".into(),
            reference: format!("127.0.0.1:5000/worker@{DIGEST}"),
            repository: "127.0.0.1:5000/worker".into(),
            tag: "77b1e0".into(),
            digest: Some(DIGEST.into()),
        },
    ]
}

/// The same images, as kustomize's `images:` transformer would set them.
fn kustomize_images() -> String {
    format!(
        "images:\n\
         - name: app-api\n  newName: 127.0.0.1:5000/app-api\n  newTag: \"3f2a9c\"\n\
         - name: worker\n  newName: 127.0.0.1:5000/worker\n  digest: {DIGEST}\n"
    )
}

fn parse_all(yaml: &str) -> Vec<Value> {
    let options = serde_saphyr::options! { legacy_octal_numbers: true };
    serde_saphyr::from_multiple_with_options::<Value>(yaml, options).expect("parse YAML")
}

/// Removes devloop's run label wherever it was added, and any `labels`/`metadata` left empty by that.
fn strip_run_label(value: &mut Value) {
    match value {
        Value::Object(map) => {
            for child in map.values_mut() {
                strip_run_label(child);
            }
            if let Some(Value::Object(metadata)) = map.get_mut("metadata") {
                if let Some(Value::Object(labels)) = metadata.get_mut("labels")
                    && labels.remove(RUN_LABEL).is_some()
                    && labels.is_empty()
                {
                    metadata.remove("labels");
                }
                if metadata.is_empty() {
                    map.remove("metadata");
                }
            }
        }
        Value::Array(items) => items.iter_mut().for_each(strip_run_label),
        _ => {}
    }
}

#[test]
fn kustomize_overlay_matches_kustomize_own_image_setting() {
    let dir = tempfile::tempdir().expect("temp dir");
    copy_tree(&fixture(), dir.path());

    let manifests = Manifests {
        kustomize: Some(Kustomize {
            paths: vec!["overlays/dev".into()],
            build_args: vec![],
            binary: None,
        }),
        ..Manifests::default()
    };
    let labels = BTreeMap::from([(RUN_LABEL.to_owned(), "r-1".to_owned())]);
    let env = env();
    let images = artifacts();
    let rendered = render(&RenderRequest {
        base_dir: dir.path(),
        manifests: &manifests,
        images: &images,
        labels: &labels,
        namespace: None,
        namespace_explicit: false,
        env: &env,
    })
    .expect("render");
    assert!(
        rendered
            .warnings
            .iter()
            .all(|w| !w.to_string().contains("no manifest uses")),
        "{:?}",
        rendered.warnings
    );

    // Every object (and every pod template but the Job's) carries the run label before it is stripped.
    let labelled = rendered
        .objects
        .iter()
        .filter(|o| o.value()["metadata"]["labels"][RUN_LABEL] == "r-1")
        .count();
    assert_eq!(labelled, rendered.objects.len());

    let mut ours: Vec<Value> = parse_all(&rendered.to_yaml().expect("to_yaml"));
    ours.iter_mut().for_each(strip_run_label);

    let oracle_dir = dir.path().join("oracle");
    copy_tree(&fixture(), &oracle_dir);
    let kustomization = oracle_dir.join("overlays/dev/kustomization.yaml");
    let mut text = fs::read_to_string(&kustomization).expect("read kustomization");
    text.push_str(&kustomize_images());
    fs::write(&kustomization, text).expect("write kustomization");
    let output = Command::new("kubectl")
        .arg("kustomize")
        .arg(oracle_dir.join("overlays/dev"))
        .output()
        .expect("run kubectl");
    assert!(
        output.status.success(),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
    let theirs = parse_all(std::str::from_utf8(&output.stdout).expect("utf-8"));

    assert_eq!(ours.len(), theirs.len());
    for (a, b) in ours.iter().zip(&theirs) {
        assert_eq!(
            a,
            b,
            "object differs:\n{}\n---\n{}",
            serde_json::to_string_pretty(a).unwrap_or_default(),
            serde_json::to_string_pretty(b).unwrap_or_default()
        );
    }
    // The oracle really did change images, so the comparison is not vacuous.
    let deployment = theirs
        .iter()
        .find(|o| o["kind"] == "Deployment")
        .expect("deployment");
    let pod = &deployment["spec"]["template"]["spec"];
    assert_eq!(
        pod["containers"][0]["image"],
        "127.0.0.1:5000/app-api:3f2a9c"
    );
    assert_eq!(pod["containers"][1]["image"], "busybox:1.36");
    assert_eq!(
        pod["initContainers"][0]["image"],
        format!("127.0.0.1:5000/worker@{DIGEST}")
    );
    let generated = theirs
        .iter()
        .filter(|o| {
            o["metadata"]["name"]
                .as_str()
                .is_some_and(|n| n.starts_with("dev-app-"))
        })
        .count();
    assert_eq!(
        generated, 2,
        "generated ConfigMap and Secret with hash suffixes"
    );
}
