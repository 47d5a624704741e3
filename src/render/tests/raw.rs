//! Tests of rendering raw manifests: globs, images, labels and namespaces, lists, key order, determinism and
//! YAML that reads back as the same objects.

use super::*;
use crate::config::manifests::ImagePaths;

const APP: &str = r#"# The application.
---
apiVersion: apps/v1
kind: Deployment
metadata:
  name: api
  labels: {app: api}
  annotations:
    note: "yes"
spec:
  replicas: 2
  selector:
    matchLabels: {app: api}
  template:
    metadata:
      labels: {app: api}
    spec:
      initContainers:
        - name: migrate
          image: app-api:latest
          command: ["/bin/sh", "-c", "echo $(POD_NAME)"]
      containers:
        - name: api
          image: docker.io/library/app-api
          ports: [{containerPort: 8080}]
          env:
            - {name: MODE, value: "off"}
            - {name: OCTAL, value: "0644"}
            - {name: VERSION, value: "1.10"}
        - name: proxy
          image: envoyproxy/envoy:v1.30
---
---
apiVersion: v1
kind: Service
metadata:
  name: api
spec:
  selector: {app: api}
  ports:
    - port: 80
      targetPort: 8080
"#;

const BATCH: &str = r#"apiVersion: batch/v1beta1
kind: CronJob
metadata:
  name: nightly
spec:
  schedule: "0 3 * * *"
  jobTemplate:
    spec:
      template:
        spec:
          restartPolicy: OnFailure
          containers:
            - name: run
              image: worker:old
---
apiVersion: batch/v1
kind: Job
metadata:
  name: migrate
spec:
  template:
    metadata:
      labels: {job: migrate}
    spec:
      restartPolicy: Never
      containers:
        - name: run
          image: worker@sha256:0000000000000000000000000000000000000000000000000000000000000000
"#;

const CLUSTER: &str = r#"apiVersion: v1
kind: Namespace
metadata:
  name: dev
---
apiVersion: apiextensions.k8s.io/v1
kind: CustomResourceDefinition
metadata:
  name: clusterwidgets.example.com
spec:
  group: example.com
  scope: Cluster
  names: {kind: ClusterWidget, plural: clusterwidgets}
  versions: [{name: v1, served: true, storage: true, schema: {openAPIV3Schema: {type: object}}}]
---
apiVersion: example.com/v1
kind: ClusterWidget
metadata:
  name: global
---
apiVersion: argoproj.io/v1alpha1
kind: Rollout
metadata:
  name: canary
spec:
  template:
    spec:
      containers:
        - name: api
          image: app-api:canary
"#;

const LIST: &str = r#"apiVersion: v1
kind: List
items:
  - apiVersion: v1
    kind: ConfigMap
    metadata:
      name: settings
    data:
      enabled: "true"
      mode: "0755"
      empty: ""
      date: "2026-01-01"
      script: |
        #!/bin/sh
        echo "hello"
  - apiVersion: v1
    kind: Secret
    metadata:
      name: creds
    stringData:
      token: "123"
"#;

fn full_fixture() -> Fixture {
    let f = Fixture::new();
    f.write("k8s/00-cluster.yaml", CLUSTER)
        .write("k8s/app.yaml", APP)
        .write("k8s/batch.yaml", BATCH)
        .write("k8s/list.yaml", LIST)
        .write("k8s/notes.txt", "not a manifest");
    f
}

fn full_manifests() -> Manifests {
    Manifests {
        raw_yaml: vec!["k8s/*.yaml".into()],
        images: vec![ImagePaths {
            kind: "Rollout".into(),
            group: Some("argoproj.io".into()),
            paths: vec!["spec.template.spec.containers[*].image".parse().unwrap()],
        }],
        ..Manifests::default()
    }
}

fn full_images() -> Vec<ArtifactImage> {
    vec![
        artifact("app-api", "127.0.0.1:5000/app-api:3f2a9c"),
        artifact("worker", "127.0.0.1:5000/worker:77b1e0"),
        artifact("registry.local/team/unused", "127.0.0.1:5000/unused:1"),
    ]
}

#[test]
fn renders_raw_manifests_with_images_labels_and_namespace() {
    let f = full_fixture();
    let rendered = f
        .render(&full_manifests(), &full_images(), Some("dev"))
        .unwrap();
    assert_eq!(
        summary(&rendered),
        [
            "v1 Namespace/dev None @k8s/00-cluster.yaml#1None",
            "apiextensions.k8s.io/v1 CustomResourceDefinition/clusterwidgets.example.com None @k8s/00-cluster.yaml#2None",
            "example.com/v1 ClusterWidget/global None @k8s/00-cluster.yaml#3None",
            "argoproj.io/v1alpha1 Rollout/canary Some(\"dev\") @k8s/00-cluster.yaml#4None",
            "apps/v1 Deployment/api Some(\"dev\") @k8s/app.yaml#1None",
            "v1 Service/api Some(\"dev\") @k8s/app.yaml#3None",
            "batch/v1beta1 CronJob/nightly Some(\"dev\") @k8s/batch.yaml#1None",
            "batch/v1 Job/migrate Some(\"dev\") @k8s/batch.yaml#2None",
            "v1 ConfigMap/settings Some(\"dev\") @k8s/list.yaml#1Some(0)",
            "v1 Secret/creds Some(\"dev\") @k8s/list.yaml#1Some(1)",
        ]
    );
    let warnings: Vec<String> = rendered.warnings.iter().map(ToString::to_string).collect();
    assert_eq!(
        warnings,
        [
            "Job `migrate` (k8s/batch.yaml, document 2): image `worker@sha256:0000000000000000000000000000000000000000000000000000000000000000` is pinned by digest, so the image built for artifact `worker` was not injected\n\nhint: drop the `@sha256:…` part to deploy the built image",
            "artifact `registry.local/team/unused` is built but no manifest uses its image\n\nhint: refer to it by name in an `image:` field, e.g. `image: registry.local/team/unused`",
        ]
    );
    let yaml = rendered.to_yaml().unwrap();
    insta::assert_snapshot!(yaml);
}

#[test]
fn rendering_is_deterministic() {
    let f = full_fixture();
    let first = f
        .render(&full_manifests(), &full_images(), Some("dev"))
        .unwrap()
        .to_yaml()
        .unwrap();
    for _ in 0..3 {
        let again = f
            .render(&full_manifests(), &full_images(), Some("dev"))
            .unwrap()
            .to_yaml()
            .unwrap();
        assert_eq!(first.as_bytes(), again.as_bytes());
    }
}

#[test]
fn output_reads_back_as_the_same_objects() {
    let f = full_fixture();
    let rendered = f
        .render(&full_manifests(), &full_images(), Some("dev"))
        .unwrap();
    let yaml = rendered.to_yaml().unwrap();
    let again = yaml::parse_stream(
        &yaml,
        &ObjectSource::File {
            path: "out.yaml".into(),
        },
    )
    .unwrap();
    let again: Vec<Value> = again.into_iter().map(|d| d.value).collect();
    let expected: Vec<Value> = rendered
        .objects
        .into_iter()
        .map(Object::into_value)
        .collect();
    assert_eq!(again, expected);
}

#[test]
fn untouched_manifests_keep_key_order_and_values() {
    let f = Fixture::new();
    f.write("a.yaml", "kind: ConfigMap\napiVersion: v1\ndata: {z: \"1\", a: \"off\", m: \"~\"}\nmetadata: {name: c}\n");
    let rendered = render(&RenderRequest {
        base_dir: f.path(),
        manifests: &raw(&["a.yaml"]),
        images: &[],
        labels: &BTreeMap::new(),
        namespace: None,
        namespace_explicit: false,
        env: &f.env,
    })
    .unwrap();
    assert_eq!(
        rendered.to_yaml().unwrap(),
        "kind: ConfigMap\napiVersion: v1\ndata:\n  z: \"1\"\n  a: \"off\"\n  m: \"~\"\nmetadata:\n  name: c\n"
    );
    assert!(rendered.warnings.is_empty());
}

#[test]
fn globs_are_sorted_deduplicated_and_must_match() {
    let f = Fixture::new();
    for (path, name) in [
        ("k8s/b.yaml", "b"),
        ("k8s/a.yaml", "a"),
        ("k8s/sub/c.yaml", "c"),
        ("k8s/sub/deep/d.yml", "d"),
        ("z.yaml", "z"),
    ] {
        f.write(
            path,
            &format!("apiVersion: v1\nkind: ConfigMap\nmetadata: {{name: {name}}}\n"),
        );
    }
    let names = |globs: &[&str]| -> Vec<String> {
        f.render(&raw(globs), &[], None)
            .unwrap()
            .objects
            .iter()
            .map(|o| o.name().unwrap().to_owned())
            .collect()
    };
    assert_eq!(names(&["k8s/*.yaml"]), ["a", "b"]);
    assert_eq!(
        names(&["./z.yaml", "k8s/**/*.{yaml,yml}"]),
        ["z", "a", "b", "c", "d"]
    );
    assert_eq!(
        names(&["k8s/b.yaml", "k8s/*.yaml", "k8s/b.yaml"]),
        ["b", "a"]
    );
    assert_eq!(names(&["k8s/*/*.yaml"]), ["c"]);
    assert_eq!(names(&["*.yaml"]), ["z"]);

    let absolute = format!("{}/k8s/*.yaml", f.path().display());
    assert_eq!(names(&[&absolute]), ["a", "b"]);
    let sources: Vec<String> = f
        .render(&raw(&[&absolute]), &[], None)
        .unwrap()
        .objects
        .iter()
        .map(|o| o.source().to_string())
        .collect();
    assert_eq!(sources[0], format!("{}/k8s/a.yaml", f.path().display()));

    let err = f.render(&raw(&["k8s/*.json"]), &[], None).unwrap_err();
    assert_eq!(
        err.to_string(),
        format!(
            "devloop.yaml: manifests.rawYaml: `k8s/*.json` matches no file\n\nhint: globs are relative to `{}`",
            f.path().display()
        )
    );
    let err = f.render(&raw(&["missing/*.yaml"]), &[], None).unwrap_err();
    assert!(
        matches!(err, RenderError::NoMatch { ref glob, .. } if glob == "missing/*.yaml"),
        "{err}"
    );
    let err = f.render(&raw(&["k8s/nope.yaml"]), &[], None).unwrap_err();
    assert!(
        matches!(err, RenderError::NoMatch { ref glob, .. } if glob == "k8s/nope.yaml"),
        "{err}"
    );
    let err = f.render(&raw(&["k8s/[a.yaml"]), &[], None).unwrap_err();
    assert!(
        err.to_string()
            .starts_with("devloop.yaml: manifests.rawYaml: invalid glob `k8s/[a.yaml`: "),
        "{err}"
    );
}

#[test]
fn nested_and_typed_lists_are_flattened() {
    let f = Fixture::new();
    f.write(
        "l.yaml",
        "apiVersion: v1\nkind: ConfigMapList\nitems:\n- {apiVersion: v1, kind: ConfigMap, metadata: {name: a}}\n- apiVersion: v1\n  kind: List\n  items:\n  - {apiVersion: v1, kind: ConfigMap, metadata: {name: b}}\n",
    );
    let rendered = f.render(&raw(&["l.yaml"]), &[], None).unwrap();
    let names: Vec<_> = rendered
        .objects
        .iter()
        .map(|o| (o.name().unwrap(), o.item()))
        .collect();
    assert_eq!(names, [("a", Some(0)), ("b", Some(1))]);
}

#[test]
fn namespace_conflict_names_object_and_file() {
    let f = Fixture::new();
    f.write("a.yaml", "apiVersion: v1\nkind: ConfigMap\nmetadata: {name: ok}\n---\napiVersion: apps/v1\nkind: Deployment\nmetadata: {name: web, namespace: prod}\n");
    let err = f.render(&raw(&["a.yaml"]), &[], Some("dev")).unwrap_err();
    assert_eq!(
        err.to_string(),
        "Deployment `web` (a.yaml, document 2): the namespace from the provided object `prod` does not match the \
         namespace `dev` given with `-n`\n\nhint: pass `-n prod`, or leave `-n` out (objects then go to the \
         namespace they name), or remove `metadata.namespace` from the manifest"
    );
    assert_eq!(
        f.render(&raw(&["a.yaml"]), &[], None).unwrap().objects[1].namespace(),
        Some("prod")
    );
}
