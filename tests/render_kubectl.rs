//! kubectl as the oracle for reading and writing YAML: `kubectl label --local -f - -o json` parses manifests
//! exactly like `kubectl apply -f -` (sigs.k8s.io/yaml, YAML 1.1) without a cluster. Devloop must read the
//! fixture as kubectl does, and kubectl must read devloop's output back as the objects devloop meant.
//! Needs `kubectl` on PATH.

use std::collections::BTreeMap;
use std::io::Write as _;
use std::path::Path;
use std::process::{Command, Stdio};

use devloop::config::manifests::Manifests;
use devloop::render::{ArtifactImage, RenderRequest, Rendered, render};
use serde_json::Value;

const CHECK_LABEL: &str = "devloop.test/check";

/// What kubectl makes of `yaml`, one JSON value per object.
fn kubectl_reads(yaml: &str) -> Vec<Value> {
    let mut child = Command::new("kubectl")
        .args([
            "label",
            "--local",
            "-f",
            "-",
            &format!("{CHECK_LABEL}=yes"),
            "-o",
            "json",
        ])
        .env("KUBECONFIG", "/nonexistent")
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("run kubectl");
    child
        .stdin
        .take()
        .expect("stdin")
        .write_all(yaml.as_bytes())
        .expect("write to kubectl");
    let output = child.wait_with_output().expect("wait for kubectl");
    assert!(
        output.status.success(),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
    let mut objects: Vec<Value> = serde_json::Deserializer::from_slice(&output.stdout)
        .into_iter::<Value>()
        .collect::<Result<_, _>>()
        .expect("kubectl JSON");
    for object in &mut objects {
        let labels = object["metadata"]["labels"]
            .as_object_mut()
            .expect("labels");
        labels.remove(CHECK_LABEL);
        if labels.is_empty() {
            object["metadata"]
                .as_object_mut()
                .expect("metadata")
                .remove("labels");
        }
    }
    objects
}

fn ours(rendered: &Rendered) -> Vec<Value> {
    rendered
        .objects
        .iter()
        .map(|o| o.clone().into_value())
        .collect()
}

fn render_fixture(
    images: &[ArtifactImage],
    labels: &BTreeMap<String, String>,
    namespace: Option<&str>,
) -> Rendered {
    let base_dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/raw");
    let manifests = Manifests {
        raw_yaml: vec!["k8s/*.yaml".into()],
        ..Manifests::default()
    };
    let env = BTreeMap::new();
    render(&RenderRequest {
        base_dir: &base_dir,
        manifests: &manifests,
        images,
        labels,
        namespace,
        namespace_explicit: true,
        env: &env,
    })
    .expect("render")
}

#[test]
fn devloop_reads_manifests_like_kubectl() {
    let text = std::fs::read_to_string(
        Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/raw/k8s/values.yaml"),
    )
    .expect("fixture");
    let rendered = render_fixture(&[], &BTreeMap::new(), None);
    assert_eq!(ours(&rendered), kubectl_reads(&text));
}

#[test]
fn kubectl_reads_devloop_output_as_devloop_meant() {
    let images = [ArtifactImage {
        name: "app-api".into(),
        reference: "127.0.0.1:5000/app-api:1.10".into(),
        repository: "127.0.0.1:5000/app-api".into(),
        tag: "1.10".into(),
        digest: None,
    }];
    let labels = BTreeMap::from([("devloop.dev/run".to_owned(), "0644".to_owned())]);
    let rendered = render_fixture(&images, &labels, Some("dev"));
    let yaml = rendered.to_yaml().expect("to_yaml");
    let objects = ours(&rendered);
    assert_eq!(
        objects[1]["spec"]["template"]["spec"]["containers"][0]["image"],
        "127.0.0.1:5000/app-api:1.10"
    );
    assert_eq!(objects[0]["data"]["octal"], "0644");
    assert_eq!(kubectl_reads(&yaml), objects, "{yaml}");
}
