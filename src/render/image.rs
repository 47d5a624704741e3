//! Render: image injection; an object + the built artifacts → the object with artifact images replaced by
//! their built references. It compares image names (parsed by `tag::parse_name`) but never formats one
//! (references are injected verbatim).
//!
//! Matching follows Docker's name normalization (`docker/distribution` `ParseNormalizedNamed`), which is also
//! how kubelet and containerd resolve `image:` fields:
//! - a digest (`@…`) and then a tag (`:…` after the last `/`) are split off; the tag never matters;
//! - the first `/`-separated component is a registry host when it contains `.` or `:`, is `localhost`, or has an
//!   upper-case letter; otherwise the registry is `docker.io`;
//! - `index.docker.io` is `docker.io`, and a single-component name on `docker.io` gets `library/`.
//!
//! So `app-api`, `app-api:latest`, `library/app-api` and `docker.io/library/app-api:v1` all name artifact
//! `app-api`, while `localhost/app-api` and `registry.local/app-api` do not.

use std::collections::HashMap;

use serde_json::{Map, Value};

use super::workload::{CONTAINER_LISTS, Workload};
use super::{ArtifactImage, Object, RenderError, RenderWarning};
use crate::config::manifests::{ImagePaths, PathSegment};

pub(crate) use crate::tag::parse_name as parse;

/// Which artifacts some manifest referred to.
#[derive(Debug)]
pub(crate) struct Usage {
    used: Vec<bool>,
}

impl Usage {
    pub(crate) fn new(artifacts: usize) -> Self {
        Self {
            used: vec![false; artifacts],
        }
    }

    /// Names of the artifacts no manifest referred to, in artifact order.
    pub(crate) fn unused<'a>(
        &'a self,
        images: &'a [ArtifactImage],
    ) -> impl Iterator<Item = String> + 'a {
        images
            .iter()
            .zip(&self.used)
            .filter(|(_, used)| !**used)
            .map(|(image, _)| image.name.clone())
    }
}

/// Finds and replaces artifact images in objects.
#[derive(Debug)]
pub(crate) struct Matcher<'a> {
    artifacts: &'a [ArtifactImage],
    by_name: HashMap<String, usize>,
    custom: &'a [ImagePaths],
}

impl<'a> Matcher<'a> {
    /// Indexes the artifacts by normalized name; two artifacts with the same normalized name are an error.
    pub(crate) fn new(
        artifacts: &'a [ArtifactImage],
        custom: &'a [ImagePaths],
    ) -> Result<Self, RenderError> {
        let mut by_name = HashMap::new();
        for (i, artifact) in artifacts.iter().enumerate() {
            // An artifact name that is not a valid reference can never match; keep it only for the warning.
            let Some(name) = parse(&artifact.name) else {
                continue;
            };
            let normalized = name.normalized.into_owned();
            if let Some(&first) = by_name.get(&normalized) {
                let first: &ArtifactImage = &artifacts[first];
                return Err(RenderError::AmbiguousArtifacts {
                    first: first.name.clone(),
                    second: artifact.name.clone(),
                    normalized,
                });
            }
            by_name.insert(normalized, i);
        }
        Ok(Self {
            artifacts,
            by_name,
            custom,
        })
    }

    /// Replaces artifact images in the object's containers and its declared image paths.
    pub(crate) fn rewrite(
        &self,
        object: &mut Object,
        usage: &mut Usage,
        warnings: &mut Vec<RenderWarning>,
    ) {
        if self.artifacts.is_empty() {
            return;
        }
        let workload = Workload::of(object.group(), object.kind());
        let custom: Vec<&ImagePaths> = self
            .custom
            .iter()
            .filter(|c| {
                c.kind == object.kind() && c.group.as_deref().is_none_or(|g| g == object.group())
            })
            .collect();
        let mut pinned = Vec::new();
        let mut visit = |value: &mut Value| self.replace(value, usage, &mut pinned);
        if let Some(workload) = workload
            && let Some(pod_spec) = descend(&mut object.value, workload.pod_spec())
        {
            for list in CONTAINER_LISTS {
                let Some(Value::Array(containers)) = pod_spec.get_mut(list) else {
                    continue;
                };
                for container in containers {
                    if let Some(image) = container.get_mut("image") {
                        visit(image);
                    }
                }
            }
        }
        for paths in custom {
            for path in &paths.paths {
                for_each_at(&mut object.value, path.segments(), &mut visit);
            }
        }
        if !pinned.is_empty() {
            let described = object.describe();
            warnings.extend(pinned.into_iter().map(|(artifact, image)| {
                RenderWarning::PinnedImage {
                    artifact,
                    image,
                    object: described.clone(),
                }
            }));
        }
    }

    fn replace(&self, value: &mut Value, usage: &mut Usage, pinned: &mut Vec<(String, String)>) {
        let Value::String(image) = value else { return };
        let Some(name) = parse(image) else { return };
        let Some(&i) = self.by_name.get(name.normalized.as_ref()) else {
            return;
        };
        let artifact = &self.artifacts[i];
        usage.used[i] = true;
        match name.digest {
            None => *image = artifact.reference.clone(),
            // Already the built image (e.g. a helm value set from IMAGE_FULLY_QUALIFIED_…): nothing to say.
            Some(digest)
                if *image == artifact.reference || artifact.digest.as_deref() == Some(digest) => {}
            Some(_) => pinned.push((artifact.name.clone(), image.clone())),
        }
    }
}

/// Follows mapping keys; `None` when a step is missing or not a mapping.
fn descend<'v>(
    map: &'v mut Map<String, Value>,
    path: &[&str],
) -> Option<&'v mut Map<String, Value>> {
    path.iter()
        .try_fold(map, |map, key| map.get_mut(*key)?.as_object_mut())
}

/// Calls `f` on every value a declared path reaches (a `[*]` fans out); missing steps reach nothing.
fn for_each_at(
    map: &mut Map<String, Value>,
    segments: &[PathSegment],
    f: &mut dyn FnMut(&mut Value),
) {
    let Some((PathSegment::Field(first), rest)) = segments.split_first() else {
        return;
    };
    if let Some(value) = map.get_mut(first) {
        visit_value(value, rest, f);
    }
}

fn visit_value(value: &mut Value, segments: &[PathSegment], f: &mut dyn FnMut(&mut Value)) {
    let Some((segment, rest)) = segments.split_first() else {
        f(value);
        return;
    };
    match (segment, value) {
        (PathSegment::Field(key), Value::Object(map)) => {
            if let Some(value) = map.get_mut(key) {
                visit_value(value, rest, f);
            }
        }
        (PathSegment::Each, Value::Array(items)) => {
            for item in items {
                visit_value(item, rest, f);
            }
        }
        (PathSegment::Index(i), Value::Array(items)) => {
            if let Some(item) = items.get_mut(*i) {
                visit_value(item, rest, f);
            }
        }
        _ => {}
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use std::path::PathBuf;

    use serde_json::json;

    use super::*;
    use crate::render::ObjectSource;

    fn normalized(image: &str) -> Option<String> {
        parse(image).map(|n| n.normalized.into_owned())
    }

    #[test]
    fn normalizes_like_docker() {
        for (image, expected) in [
            ("app-api", "docker.io/library/app-api"),
            ("app-api:latest", "docker.io/library/app-api"),
            ("library/app-api", "docker.io/library/app-api"),
            ("docker.io/app-api", "docker.io/library/app-api"),
            ("docker.io/library/app-api:v1", "docker.io/library/app-api"),
            ("index.docker.io/app-api", "docker.io/library/app-api"),
            ("team/api", "docker.io/team/api"),
            ("localhost/app-api", "localhost/app-api"),
            ("localhost:5000/app-api:dev", "localhost:5000/app-api"),
            ("registry.local/team/api", "registry.local/team/api"),
            ("127.0.0.1:5000/a/b/c:t", "127.0.0.1:5000/a/b/c"),
            ("Registry/api", "Registry/api"),
            ("app-api@sha256:abc", "docker.io/library/app-api"),
            ("app-api:v1@sha256:abc", "docker.io/library/app-api"),
            ("[::1]:5000/app", "[::1]:5000/app"),
        ] {
            assert_eq!(normalized(image).as_deref(), Some(expected), "{image}");
        }
        assert_eq!(
            parse("app:v1@sha256:abc").unwrap().digest,
            Some("sha256:abc")
        );
        assert_eq!(parse("app:v1").unwrap().digest, None);
        for bad in [
            "",
            " app",
            "app api",
            "{{ .Values.image }}",
            "/app",
            "app/",
            "a//b",
            ":tag",
            "x\n",
        ] {
            assert_eq!(normalized(bad), None, "{bad:?}");
        }
    }

    fn artifact(name: &str, reference: &str) -> ArtifactImage {
        ArtifactImage {
            name: name.into(),
            reference: reference.into(),
            repository: reference.split(':').next().unwrap().into(),
            tag: "t".into(),
            digest: None,
        }
    }

    fn object(value: Value) -> Object {
        let Value::Object(value) = value else {
            panic!()
        };
        Object {
            source: ObjectSource::File {
                path: PathBuf::from("k8s/a.yaml"),
            },
            document: 2,
            item: None,
            value,
        }
    }

    fn rewrite(
        artifacts: &[ArtifactImage],
        custom: &[ImagePaths],
        value: Value,
    ) -> (Value, Vec<RenderWarning>, Vec<String>) {
        let matcher = Matcher::new(artifacts, custom).unwrap();
        let mut usage = Usage::new(artifacts.len());
        let mut warnings = Vec::new();
        let mut object = object(value);
        matcher.rewrite(&mut object, &mut usage, &mut warnings);
        let unused = usage.unused(artifacts).collect();
        (object.into_value(), warnings, unused)
    }

    fn pod_spec(images: [&str; 3]) -> Value {
        json!({
            "initContainers": [{"name": "init", "image": images[0]}],
            "containers": [{"name": "app", "image": images[1]}, {"name": "side", "image": "busybox:1.36"}],
            "ephemeralContainers": [{"name": "debug", "image": images[2]}],
        })
    }

    #[test]
    fn rewrites_every_container_list_of_every_workload_kind() {
        let artifacts = [
            artifact("app-api", "reg.local/app-api:abc"),
            artifact("registry.local/team/web", "reg.local/web:def"),
        ];
        let images = [
            "app-api:latest",
            "docker.io/library/app-api",
            "registry.local/team/web:old",
        ];
        let want = json!(pod_spec([
            "reg.local/app-api:abc",
            "reg.local/app-api:abc",
            "reg.local/web:def"
        ]));
        let cases = [
            ("v1", "Pod", json!({"spec": pod_spec(images)}), vec!["spec"]),
            (
                "v1",
                "PodTemplate",
                json!({"template": {"spec": pod_spec(images)}}),
                vec!["template", "spec"],
            ),
            (
                "v1",
                "ReplicationController",
                json!({"spec": {"template": {"spec": pod_spec(images)}}}),
                vec!["spec", "template", "spec"],
            ),
            (
                "apps/v1",
                "Deployment",
                json!({"spec": {"template": {"spec": pod_spec(images)}}}),
                vec!["spec", "template", "spec"],
            ),
            (
                "apps/v1",
                "StatefulSet",
                json!({"spec": {"template": {"spec": pod_spec(images)}}}),
                vec!["spec", "template", "spec"],
            ),
            (
                "apps/v1",
                "DaemonSet",
                json!({"spec": {"template": {"spec": pod_spec(images)}}}),
                vec!["spec", "template", "spec"],
            ),
            (
                "apps/v1",
                "ReplicaSet",
                json!({"spec": {"template": {"spec": pod_spec(images)}}}),
                vec!["spec", "template", "spec"],
            ),
            (
                "extensions/v1beta1",
                "Deployment",
                json!({"spec": {"template": {"spec": pod_spec(images)}}}),
                vec!["spec", "template", "spec"],
            ),
            (
                "batch/v1",
                "Job",
                json!({"spec": {"template": {"spec": pod_spec(images)}}}),
                vec!["spec", "template", "spec"],
            ),
            (
                "batch/v1",
                "CronJob",
                json!({"spec": {"jobTemplate": {"spec": {"template": {"spec": pod_spec(images)}}}}}),
                vec!["spec", "jobTemplate", "spec", "template", "spec"],
            ),
            (
                "batch/v1beta1",
                "CronJob",
                json!({"spec": {"jobTemplate": {"spec": {"template": {"spec": pod_spec(images)}}}}}),
                vec!["spec", "jobTemplate", "spec", "template", "spec"],
            ),
        ];
        for (api_version, kind, mut body, path) in cases {
            body["apiVersion"] = json!(api_version);
            body["kind"] = json!(kind);
            let (out, warnings, unused) = rewrite(&artifacts, &[], body);
            let spec = path.iter().fold(&out, |v, k| &v[*k]);
            assert_eq!(*spec, want, "{api_version} {kind}");
            assert!(
                warnings.is_empty() && unused.is_empty(),
                "{api_version} {kind}"
            );
        }
    }

    #[test]
    fn leaves_pinned_and_foreign_images_alone() {
        let mut built = artifact("app-api", "reg.local/app-api:abc@sha256:built");
        built.digest = Some("sha256:built".into());
        let artifacts = [built, artifact("unused", "reg.local/unused:1")];
        let pod = json!({"apiVersion": "v1", "kind": "Pod", "metadata": {"name": "p"}, "spec": {"containers": [
            {"name": "a", "image": "app-api@sha256:old"},
            {"name": "b", "image": "app-api:v1@sha256:built"},
            {"name": "c", "image": "reg.local/app-api:abc@sha256:built"},
            {"name": "d", "image": "localhost/app-api"},
            {"name": "e", "image": "app-api-other"},
            {"name": "f", "image": "{{ .Values.image }}"},
            {"name": "g", "image": 42},
            {"name": "h"},
        ]}});
        let (out, warnings, unused) = rewrite(&artifacts, &[], pod.clone());
        assert_eq!(out, pod);
        assert_eq!(unused, ["unused"]);
        assert_eq!(warnings.len(), 1);
        assert_eq!(
            warnings[0].to_string(),
            "Pod `p` (k8s/a.yaml, document 2): image `app-api@sha256:old` is pinned by digest, so the image built \
             for artifact `app-api` was not injected\n\nhint: drop the `@sha256:…` part to deploy the built image"
        );
    }

    #[test]
    fn unknown_kinds_are_rewritten_only_on_declared_paths() {
        let artifacts = [artifact("app-api", "reg/app-api:1")];
        let rollout = json!({"apiVersion": "argoproj.io/v1alpha1", "kind": "Rollout", "spec": {
            "template": {"spec": {"containers": [{"image": "app-api"}, {"image": "app-api:x"}]}},
            "sidecars": [{"image": "app-api"}, {"image": "app-api"}],
            "scalar": "app-api",
        }});
        let (out, _, unused) = rewrite(&artifacts, &[], rollout.clone());
        assert_eq!(out, rollout, "no declared paths: untouched");
        assert_eq!(unused, ["app-api"]);

        let declared = |group: Option<&str>| ImagePaths {
            kind: "Rollout".into(),
            group: group.map(str::to_owned),
            paths: vec![
                "spec.template.spec.containers[*].image".parse().unwrap(),
                "spec.sidecars[1].image".parse().unwrap(),
                "spec.scalar".parse().unwrap(),
                "spec.missing[*].image".parse().unwrap(),
                "spec.scalar[*]".parse().unwrap(),
            ],
        };
        let want = json!({"apiVersion": "argoproj.io/v1alpha1", "kind": "Rollout", "spec": {
            "template": {"spec": {"containers": [{"image": "reg/app-api:1"}, {"image": "reg/app-api:1"}]}},
            "sidecars": [{"image": "app-api"}, {"image": "reg/app-api:1"}],
            "scalar": "reg/app-api:1",
        }});
        for group in [None, Some("argoproj.io")] {
            let (out, _, unused) = rewrite(&artifacts, &[declared(group)], rollout.clone());
            assert_eq!(out, want, "{group:?}");
            assert!(unused.is_empty());
        }
        let (out, _, _) = rewrite(&artifacts, &[declared(Some("other.io"))], rollout.clone());
        assert_eq!(out, rollout, "group mismatch");
    }

    #[test]
    fn declared_paths_add_to_built_in_kinds() {
        let artifacts = [artifact("app-api", "reg/app-api:1")];
        let custom = [ImagePaths {
            kind: "Deployment".into(),
            group: Some("apps".into()),
            paths: vec!["metadata.annotations.image".parse().unwrap()],
        }];
        let deployment = json!({"apiVersion": "apps/v1", "kind": "Deployment",
            "metadata": {"annotations": {"image": "app-api"}},
            "spec": {"template": {"spec": {"containers": [{"image": "app-api"}]}}}});
        let (out, _, _) = rewrite(&artifacts, &custom, deployment);
        assert_eq!(out["metadata"]["annotations"]["image"], "reg/app-api:1");
        assert_eq!(
            out["spec"]["template"]["spec"]["containers"][0]["image"],
            "reg/app-api:1"
        );
    }

    #[test]
    fn artifacts_with_the_same_normalized_name_are_rejected() {
        let err = Matcher::new(
            &[
                artifact("app", "a:1"),
                artifact("docker.io/library/app", "b:1"),
            ],
            &[],
        )
        .unwrap_err();
        assert_eq!(
            err.to_string(),
            "artifacts `app` and `docker.io/library/app` name the same image `docker.io/library/app`\n\nhint: give \
             each artifact a distinct image name"
        );
    }
}
