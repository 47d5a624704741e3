//! Tests of the whole render stage: sources on disk (and fake tools) → objects, YAML, warnings and errors. This
//! file holds what the tests share (a fixture directory, artifacts, a summary of what rendered, a fake helm chart,
//! a kustomize overlay); each concept's tests are in their own file.

mod errors;
mod helm;
mod kustomize;
mod raw;
mod sources;
mod template;

use std::collections::BTreeMap;
use std::fs;
use std::path::Path;

use super::*;
use crate::config::manifests::{Helm, HelmRelease, Kustomize};

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
