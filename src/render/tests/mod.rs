//! Tests of the whole render stage: sources on disk (and fake tools) → objects, YAML, warnings and errors.

use std::collections::BTreeMap;
use std::fs;
use std::path::Path;

use super::*;
use crate::config::manifests::{Helm, HelmRelease, ImagePaths, Kustomize};

struct Fixture {
    dir: tempfile::TempDir,
    env: BTreeMap<String, String>,
}

impl Fixture {
    fn new() -> Self {
        let env = BTreeMap::from([
            ("PATH".to_owned(), "/usr/local/bin:/usr/bin:/bin".to_owned()),
            ("HOME".to_owned(), "/nonexistent".to_owned()),
            ("USER_NOTE".to_owned(), "none".to_owned()),
        ]);
        Self {
            dir: tempfile::tempdir().unwrap(),
            env,
        }
    }

    fn path(&self) -> &Path {
        self.dir.path()
    }

    fn write(&self, path: &str, text: &str) -> &Self {
        let full = self.path().join(path);
        fs::create_dir_all(full.parent().unwrap()).unwrap();
        fs::write(full, text).unwrap();
        self
    }

    /// An executable shell script at `path`.
    fn script(&self, path: &str, body: &str) -> &Self {
        use std::os::unix::fs::PermissionsExt as _;
        self.write(path, &format!("#!/bin/sh\n{body}"));
        fs::set_permissions(self.path().join(path), fs::Permissions::from_mode(0o755)).unwrap();
        self
    }

    /// Puts `dir` (relative to the fixture) first on PATH.
    fn prepend_path(&mut self, dir: &str) {
        let path = format!("{}:{}", self.path().join(dir).display(), self.env["PATH"]);
        self.env.insert("PATH".into(), path);
    }

    fn render(
        &self,
        manifests: &Manifests,
        images: &[ArtifactImage],
        namespace: Option<&str>,
    ) -> Result<Rendered, RenderError> {
        render(&RenderRequest {
            base_dir: self.path(),
            manifests,
            images,
            labels: &labels(),
            namespace,
            namespace_explicit: true,
            env: &self.env,
        })
    }
}

fn labels() -> BTreeMap<String, String> {
    BTreeMap::from([("devloop.dev/run".to_owned(), "run-1".to_owned())])
}

fn artifact(name: &str, reference: &str) -> ArtifactImage {
    let (repository, tag) = reference.rsplit_once(':').unwrap();
    ArtifactImage {
        name: name.into(),
        reference: reference.into(),
        repository: repository.into(),
        tag: tag.into(),
        digest: None,
    }
}

fn raw(globs: &[&str]) -> Manifests {
    Manifests {
        raw_yaml: globs.iter().map(|g| (*g).to_owned()).collect(),
        ..Manifests::default()
    }
}

fn summary(rendered: &Rendered) -> Vec<String> {
    rendered
        .objects
        .iter()
        .map(|o| {
            format!(
                "{} {}/{} {:?} @{}#{}{:?}",
                o.api_version(),
                o.kind(),
                o.name().unwrap_or("-"),
                o.namespace(),
                o.source(),
                o.document(),
                o.item()
            )
        })
        .collect()
}

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
fn templates_expand_environment_variables() {
    let mut f = Fixture::new();
    f.env.insert("APP_NAME".into(), "shop".into());
    f.write(
        "k8s/cm.yaml.tmpl",
        "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: ${APP_NAME}\ndata:\n  level: ${LOG_LEVEL:-info}\n  image: \"${IMAGE_FULLY_QUALIFIED_app_api}\"\n  cmd: \"echo $(POD_NAME) $$HOME\"\n",
    )
    .write("templates/pod.yaml", "apiVersion: v1\nkind: Pod\nmetadata:\n  name: $APP_NAME-pod\nspec:\n  containers: [{name: a, image: app-api}]\n")
    .write("k8s/plain.yaml", "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: plain\ndata:\n  x: ${NOT_EXPANDED}\n");
    let manifests = Manifests {
        raw_yaml: vec!["k8s/*".into()],
        templates: vec!["templates/*.yaml".into()],
        ..Manifests::default()
    };
    let images = [artifact("app-api", "reg/app-api:1")];
    let rendered = f.render(&manifests, &images, None).unwrap();
    let values: Vec<Value> = rendered
        .objects
        .into_iter()
        .map(Object::into_value)
        .collect();
    assert_eq!(values[0]["metadata"]["name"], "shop");
    assert_eq!(
        values[0]["data"],
        serde_json::json!({"level": "info", "image": "reg/app-api:1", "cmd": "echo $(POD_NAME) $HOME"})
    );
    assert_eq!(
        values[1]["data"]["x"], "${NOT_EXPANDED}",
        "only templates are expanded"
    );
    assert_eq!(values[2]["metadata"]["name"], "shop-pod");
    assert_eq!(values[2]["spec"]["containers"][0]["image"], "reg/app-api:1");
}

#[test]
fn unset_template_variables_are_reported_together() {
    let f = Fixture::new();
    f.write("deploy.yaml.tmpl", "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: ${NAME}\ndata:\n  a: $REGION\n  b: ${NAME}-${ZONE:-z}\n");
    let err = f.render(&raw(&["*.tmpl"]), &[], None).unwrap_err();
    assert_eq!(
        err.to_string(),
        "deploy.yaml.tmpl: unset environment variables: `NAME` (line 4), `REGION` (line 6)\n\nhint: set them, or give a default with `${NAME:-default}`"
    );
}

#[test]
fn bad_documents_name_file_and_document() {
    let f = Fixture::new();
    f.write(
        "bad.yaml",
        "apiVersion: v1\nkind: ConfigMap\n---\n\n# second\nmetadata:\n  name: x\n  labels: [a\n",
    );
    let err = f.render(&raw(&["bad.yaml"]), &[], None).unwrap_err();
    let RenderError::Yaml {
        document: 2,
        line: Some(line),
        column: Some(_),
        ..
    } = err
    else {
        panic!("{err:?}")
    };
    assert!((8..=9).contains(&line), "{err}");
    assert!(
        err.to_string()
            .starts_with(&format!("bad.yaml: document 2: line {line}, column ")),
        "{err}"
    );

    f.write(
        "nokind.yaml",
        "apiVersion: v1\nkind: ConfigMap\n---\napiVersion: v1\nmetadata: {name: x}\n",
    );
    let err = f.render(&raw(&["nokind.yaml"]), &[], None).unwrap_err();
    assert_eq!(
        err.to_string(),
        "nokind.yaml: document 2: object has no `kind`\n\nhint: every document must be a Kubernetes object with `apiVersion` and `kind`"
    );
    f.write("noversion.yaml", "kind: ConfigMap\n");
    let err = f.render(&raw(&["noversion.yaml"]), &[], None).unwrap_err();
    assert!(
        matches!(
            err,
            RenderError::MissingField {
                field: "apiVersion",
                document: 1,
                ..
            }
        ),
        "{err}"
    );

    f.write("list.yaml", "apiVersion: v1\nkind: List\nitems:\n- apiVersion: v1\n  kind: ConfigMap\n- {apiVersion: v1}\n");
    let err = f.render(&raw(&["list.yaml"]), &[], None).unwrap_err();
    assert_eq!(
        err.to_string(),
        "list.yaml: document 1, item 1: object has no `kind`\n\nhint: every document must be a Kubernetes object with `apiVersion` and `kind`"
    );
    f.write("seq.yaml", "- a\n- b\n");
    let err = f.render(&raw(&["seq.yaml"]), &[], None).unwrap_err();
    assert_eq!(
        err.to_string(),
        "seq.yaml: document 1: expected a Kubernetes object, found a list"
    );

    f.write("empty.yaml", "---\n# nothing\n---\n...\n");
    assert!(
        f.render(&raw(&["empty.yaml"]), &[], None)
            .unwrap()
            .objects
            .is_empty()
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

const FAKE_HELM: &str = r#"printf '%s\n' "$@" > "$(dirname "$0")/argv"
cat <<'EOF'
---
# Source: api/templates/service.yaml
apiVersion: v1
kind: Service
metadata:
  name: api
spec:
  ports: [{port: 80}]
---
# Source: api/templates/deployment.yaml
apiVersion: apps/v1
kind: Deployment
metadata:
  name: api
spec:
  selector: {matchLabels: {app: api}}
  template:
    metadata: {labels: {app: api}}
    spec:
      containers:
        - name: api
          image: "app-api:chart-default"
EOF
"#;

fn helm_manifests(binary: Option<&str>, namespace: Option<&str>) -> Manifests {
    Manifests {
        helm: Some(Helm {
            binary: binary.map(str::to_owned),
            releases: vec![HelmRelease {
                name: "api".into(),
                chart_path: "charts/api".into(),
                namespace: namespace.map(str::to_owned),
                values_files: vec![
                    "charts/api/values-dev.yaml".into(),
                    "more values.yaml".into(),
                ],
                set_values: BTreeMap::from([
                    ("replicaCount".into(), "2".into()),
                    ("a.b".into(), "{x,y}".into()),
                ]),
                set_value_templates: BTreeMap::from([
                    ("image.repository".into(), "{{.IMAGE_REPO_app_api}}".into()),
                    ("image.tag".into(), "{{ .IMAGE_TAG_app_api }}".into()),
                    ("note".into(), "a,b\\c {{.Env.USER_NOTE}}".into()),
                ]),
            }],
        }),
        ..Manifests::default()
    }
}

#[test]
fn helm_template_is_invoked_with_release_values_and_image_variables() {
    let mut f = Fixture::new();
    f.script("bin/helm", FAKE_HELM);
    f.prepend_path("bin");
    let images = [artifact("app-api", "127.0.0.1:5000/app-api:1.10")];
    let rendered = f
        .render(&helm_manifests(None, Some("backend")), &images, None)
        .unwrap();
    let argv = fs::read_to_string(f.path().join("bin/argv")).unwrap();
    assert_eq!(
        argv.lines().collect::<Vec<_>>(),
        [
            "template",
            "api",
            "charts/api",
            "--namespace",
            "backend",
            "--values",
            "charts/api/values-dev.yaml",
            "--values",
            "more values.yaml",
            "--set",
            "a.b={x,y}",
            "--set",
            "replicaCount=2",
            "--set-string",
            "image.repository=127.0.0.1:5000/app-api",
            "--set-string",
            "image.tag=1.10",
            "--set-string",
            "note=a\\,b\\\\c none",
        ]
    );
    assert_eq!(
        summary(&rendered),
        [
            "v1 Service/api Some(\"backend\") @helm output of release `api`#1None",
            "apps/v1 Deployment/api Some(\"backend\") @helm output of release `api`#2None",
        ]
    );
    let deployment = rendered.objects[1].value();
    assert_eq!(
        deployment["spec"]["template"]["spec"]["containers"][0]["image"],
        "127.0.0.1:5000/app-api:1.10"
    );
    assert_eq!(
        deployment["spec"]["template"]["metadata"]["labels"]["devloop.dev/run"],
        "run-1"
    );
}

#[test]
fn helm_gets_the_requested_namespace_when_the_release_has_none() {
    let mut f = Fixture::new();
    f.script("tools/my-helm", FAKE_HELM);
    f.env.insert("USER_NOTE".into(), "hi".into());
    let images = [artifact("app-api", "r/app-api:1")];
    let rendered = f
        .render(
            &helm_manifests(Some("tools/my-helm"), None),
            &images,
            Some("dev"),
        )
        .unwrap();
    let argv = fs::read_to_string(f.path().join("tools/argv")).unwrap();
    assert!(argv.contains("--namespace\ndev\n"), "{argv}");
    assert!(
        argv.contains("--set-string\nnote=a\\,b\\\\c hi\n"),
        "{argv}"
    );
    assert!(
        rendered
            .objects
            .iter()
            .all(|o| o.namespace() == Some("dev"))
    );
}

#[test]
fn helm_value_templates_with_unset_variables_fail() {
    let mut f = Fixture::new();
    f.script("bin/helm", FAKE_HELM);
    f.prepend_path("bin");
    let err = f
        .render(&helm_manifests(None, None), &[], None)
        .unwrap_err();
    assert_eq!(
        err.to_string(),
        "devloop.yaml: manifests.helm.releases[0].setValueTemplates.image.repository: unset field `{{.IMAGE_REPO_app_api}}`\n\nhint: image fields exist for built artifacts only; other names are environment variables"
    );
    assert!(!f.path().join("bin/argv").exists(), "helm must not run");

    let mut manifests = helm_manifests(None, None);
    if let Some(helm) = manifests.helm.as_mut() {
        helm.releases[0].set_value_templates =
            BTreeMap::from([("tag".to_owned(), "{{.IMAGE_TAG_app_api".to_owned())]);
    }
    let err = f
        .render(&manifests, &[artifact("app-api", "r/app-api:1")], None)
        .unwrap_err();
    assert_eq!(
        err.to_string(),
        "devloop.yaml: manifests.helm.releases[0].setValueTemplates.tag: unclosed `{{` in `{{.IMAGE_TAG_app_api`"
    );
}

#[test]
fn helm_not_installed_is_a_clear_error() {
    let mut f = Fixture::new();
    fs::create_dir_all(f.path().join("empty")).unwrap();
    f.env
        .insert("PATH".into(), f.path().join("empty").display().to_string());
    let err = f
        .render(&helm_manifests(None, None), &[], None)
        .unwrap_err();
    assert_eq!(
        err.to_string(),
        "`helm` is not installed (not found on PATH)\n\nhint: install helm (https://helm.sh/docs/intro/install/), or set `manifests.helm.binary` to its path"
    );
    // A configured path that is not there, or not executable, is the same error.
    f.write("tools/helm", "not executable");
    let err = f
        .render(&helm_manifests(Some("tools/helm"), None), &[], None)
        .unwrap_err();
    assert!(
        matches!(err, RenderError::ToolNotFound { ref program, .. } if program == "tools/helm"),
        "{err}"
    );
}

#[test]
fn helm_failure_shows_exit_code_and_stderr() {
    let mut f = Fixture::new();
    f.script(
        "bin/helm",
        "echo 'Error: chart \"charts/api\" not found' >&2\necho partial\nexit 3\n",
    );
    f.prepend_path("bin");
    let images = [artifact("app-api", "r/app-api:1")];
    let err = f
        .render(&helm_manifests(None, None), &images, None)
        .unwrap_err();
    assert!(
        matches!(err, RenderError::ToolFailed { code: Some(3), .. }),
        "{err:?}"
    );
    let text = err.to_string();
    assert!(
        text.starts_with("`helm template api charts/api --values charts/api/values-dev.yaml "),
        "{text}"
    );
    assert!(
        text.ends_with(" failed (exit code 3):\nError: chart \"charts/api\" not found"),
        "{text}"
    );
}

fn overlay(f: &Fixture) {
    f.write("base/kustomization.yaml", "resources: [deployment.yaml]\n")
        .write(
            "base/deployment.yaml",
            "apiVersion: apps/v1\nkind: Deployment\nmetadata: {name: web}\nspec:\n  selector: {matchLabels: {app: web}}\n  template:\n    metadata: {labels: {app: web}}\n    spec:\n      containers: [{name: web, image: app-api}]\n",
        )
        .write("overlays/dev/kustomization.yaml", "resources: [../../base]\nnamePrefix: dev-\n");
}

fn kustomize_manifests(binary: Option<&str>, args: &[&str]) -> Manifests {
    Manifests {
        kustomize: Some(Kustomize {
            paths: vec!["overlays/dev".into()],
            build_args: args.iter().map(|a| (*a).to_owned()).collect(),
            binary: binary.map(str::to_owned),
        }),
        ..Manifests::default()
    }
}

#[test]
fn kustomize_falls_back_to_kubectl() {
    let f = Fixture::new();
    overlay(&f);
    let images = [artifact("app-api", "reg/app-api:2")];
    let rendered = f
        .render(&kustomize_manifests(None, &[]), &images, Some("dev"))
        .unwrap();
    assert_eq!(
        summary(&rendered),
        ["apps/v1 Deployment/dev-web Some(\"dev\") @kustomize output of `overlays/dev`#1None"]
    );
    assert_eq!(
        rendered.objects[0].value()["spec"]["template"]["spec"]["containers"][0]["image"],
        "reg/app-api:2"
    );
}

#[test]
fn kustomize_on_path_is_preferred_and_gets_build_args() {
    let mut f = Fixture::new();
    overlay(&f);
    f.script("bin/kustomize", "printf '%s\\n' \"$@\" > \"$(dirname \"$0\")/argv\"\nprintf 'apiVersion: v1\\nkind: ConfigMap\\nmetadata: {name: from-fake}\\n'\n");
    f.prepend_path("bin");
    let manifests = kustomize_manifests(None, &["--load-restrictor=LoadRestrictionsNone"]);
    let rendered = f.render(&manifests, &[], None).unwrap();
    assert_eq!(rendered.objects[0].name(), Some("from-fake"));
    let argv = fs::read_to_string(f.path().join("bin/argv")).unwrap();
    assert_eq!(
        argv,
        "build\noverlays/dev\n--load-restrictor=LoadRestrictionsNone\n"
    );
    // An explicit `kubectl` binary means `kubectl kustomize`.
    let rendered = f
        .render(&kustomize_manifests(Some("kubectl"), &[]), &[], None)
        .unwrap();
    assert_eq!(rendered.objects[0].name(), Some("dev-web"));
}

#[test]
fn kustomize_failures_are_reported() {
    let f = Fixture::new();
    overlay(&f);
    f.write(
        "overlays/broken/kustomization.yaml",
        "resources: [missing.yaml]\n",
    );
    let mut manifests = kustomize_manifests(Some("kubectl"), &[]);
    if let Some(k) = manifests.kustomize.as_mut() {
        k.paths = vec!["overlays/dev".into(), "overlays/broken".into()];
    }
    let err = f.render(&manifests, &[], None).unwrap_err();
    let RenderError::ToolFailed {
        command,
        code,
        stderr,
    } = &err
    else {
        panic!("{err:?}")
    };
    assert_eq!(command, "kubectl kustomize overlays/broken");
    assert_eq!(*code, Some(1));
    assert!(stderr.contains("missing.yaml"), "{stderr}");
    assert!(
        err.to_string()
            .starts_with("`kubectl kustomize overlays/broken` failed (exit code 1):\n"),
        "{err}"
    );

    if let Some(k) = manifests.kustomize.as_mut() {
        k.paths = vec!["overlays/nope".into()];
    }
    let err = f.render(&manifests, &[], None).unwrap_err();
    assert_eq!(
        err.to_string(),
        "devloop.yaml: manifests.kustomize.paths: directory `overlays/nope` does not exist"
    );

    let mut f = f;
    f.env.insert("PATH".into(), "/nonexistent".into());
    let err = f
        .render(&kustomize_manifests(None, &[]), &[], None)
        .unwrap_err();
    assert_eq!(
        err.to_string(),
        "`kustomize` is not installed (not found on PATH)\n\nhint: install kustomize or kubectl, or set `manifests.kustomize.binary` to its path"
    );
}

#[test]
fn sources_keep_config_order() {
    let mut f = Fixture::new();
    overlay(&f);
    f.script("bin/helm", FAKE_HELM);
    f.prepend_path("bin");
    f.write(
        "raw.yaml",
        "apiVersion: v1\nkind: ConfigMap\nmetadata: {name: raw}\n",
    )
    .write(
        "t.yaml",
        "apiVersion: v1\nkind: ConfigMap\nmetadata: {name: tmpl}\n",
    );
    let mut manifests = helm_manifests(None, None);
    manifests.raw_yaml = vec!["raw.yaml".into()];
    manifests.templates = vec!["t.yaml".into()];
    manifests.kustomize = kustomize_manifests(Some("kubectl"), &[]).kustomize;
    let images = [artifact("app-api", "r/app-api:1")];
    let rendered = f.render(&manifests, &images, None).unwrap();
    let sources: Vec<String> = rendered
        .objects
        .iter()
        .map(|o| format!("{}:{}", o.source(), o.name().unwrap()))
        .collect();
    assert_eq!(
        sources,
        [
            "raw.yaml:raw",
            "t.yaml:tmpl",
            "kustomize output of `overlays/dev`:dev-web",
            "helm output of release `api`:api",
            "helm output of release `api`:api",
        ]
    );
    assert!(rendered.warnings.is_empty());
}

#[test]
fn stderr_of_a_successful_tool_becomes_a_warning() {
    let mut f = Fixture::new();
    f.script(
        "bin/helm",
        &format!("echo 'WARNING: this chart is deprecated' >&2\n{FAKE_HELM}"),
    );
    f.prepend_path("bin");
    let images = [artifact("app-api", "r/app-api:1")];
    let rendered = f
        .render(&helm_manifests(None, None), &images, None)
        .unwrap();
    let warnings: Vec<String> = rendered.warnings.iter().map(ToString::to_string).collect();
    assert_eq!(warnings.len(), 1, "{warnings:?}");
    assert!(
        warnings[0].starts_with("`helm template api charts/api --values "),
        "{}",
        warnings[0]
    );
    assert!(
        warnings[0].ends_with("` said:\nWARNING: this chart is deprecated"),
        "{}",
        warnings[0]
    );
}

#[test]
fn error_messages() {
    let mut f = Fixture::new();
    f.write(
        "bad.yaml",
        "apiVersion: v1\nkind: ConfigMap\n---\nmetadata:\n  name: x\n  labels: {a: b\n",
    )
    .write("nokind.yaml", "apiVersion: v1\n")
    .write("scalar.yaml", "--- just text\n")
    .write(
        "ns.yaml",
        "apiVersion: v1\nkind: Secret\nmetadata: {name: s, namespace: prod}\n",
    )
    .write("t.yaml.tmpl", "a: ${A}\nb: ${B:-x}\nc: $C\n")
    .write(
        "overlays/broken/kustomization.yaml",
        "resources: [missing.yaml]\n",
    );
    let mut cases: Vec<(String, RenderError)> = Vec::new();
    for glob in [
        "bad.yaml",
        "nokind.yaml",
        "scalar.yaml",
        "t.yaml.tmpl",
        "nothing/*.yaml",
        "[x",
    ] {
        cases.push((
            format!("rawYaml {glob}"),
            f.render(&raw(&[glob]), &[], None).unwrap_err(),
        ));
    }
    cases.push((
        "namespace".into(),
        f.render(&raw(&["ns.yaml"]), &[], Some("dev")).unwrap_err(),
    ));
    // A fake kustomize: the real one's message carries a timestamp and a pid.
    f.script(
        "bin/kustomize",
        "echo 'Error: accumulating resources: missing.yaml' >&2\nexit 1\n",
    );
    let broken = Manifests {
        kustomize: Some(Kustomize {
            paths: vec!["overlays/broken".into()],
            build_args: vec![],
            binary: Some("bin/kustomize".into()),
        }),
        ..Manifests::default()
    };
    cases.push((
        "kustomize".into(),
        f.render(&broken, &[], None).unwrap_err(),
    ));
    let images = [
        artifact("app", "r/app:1"),
        artifact("docker.io/library/app", "r/app2:1"),
    ];
    cases.push((
        "artifacts".into(),
        f.render(&raw(&["ns.yaml"]), &images, None).unwrap_err(),
    ));
    f.env.insert("PATH".into(), "/nonexistent".into());
    cases.push((
        "helm".into(),
        f.render(&helm_manifests(None, None), &[], None)
            .unwrap_err(),
    ));

    let text: Vec<String> = cases
        .iter()
        .map(|(case, err)| format!("# {case}\n{err}\n"))
        .collect();
    let dir = f.path().display().to_string();
    insta::with_settings!({ filters => vec![(dir.as_str(), "[TMP]")] }, {
        insta::assert_snapshot!(text.join("\n"));
    });
}
