//! Config: the `manifests:` section of devloop.yaml as serde types; YAML text → `Manifests`; it only describes
//! where manifests come from and never reads files, globs or runs tools (that is `render`'s job).

use std::collections::BTreeMap;
use std::fmt;
use std::path::PathBuf;

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use crate::hint::Hint;

/// Where devloop finds the Kubernetes manifests to render. Every source is optional and sources mix freely;
/// rendered objects keep this order: `rawYaml`, then `templates`, then `kustomize`, then `helm`.
#[derive(Debug, Clone, Default, PartialEq, Eq, Deserialize, Serialize, JsonSchema)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct Manifests {
    /// Globs, relative to the devloop.yaml directory, of plain (multi-document) YAML files. Files whose name
    /// ends in `.tmpl` are expanded like `templates` first.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub raw_yaml: Vec<String>,
    /// Globs of files that are always expanded from environment variables (`${VAR}`, `${VAR:-default}`,
    /// `$VAR`) before they are parsed.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub templates: Vec<String>,
    /// Kustomize overlays to build.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub kustomize: Option<Kustomize>,
    /// Helm charts rendered with `helm template`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub helm: Option<Helm>,
    /// Extra places where objects of other kinds (custom resources) hold image references.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub images: Vec<ImagePaths>,
}

impl Manifests {
    /// True when no source is configured, so rendering produces nothing.
    pub fn is_empty(&self) -> bool {
        self.raw_yaml.is_empty()
            && self.templates.is_empty()
            && self.kustomize.as_ref().is_none_or(|k| k.paths.is_empty())
            && self.helm.as_ref().is_none_or(|h| h.releases.is_empty())
    }
}

/// `manifests.kustomize`: directories holding a `kustomization.yaml`, built in order.
#[derive(Debug, Clone, Default, PartialEq, Eq, Deserialize, Serialize, JsonSchema)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct Kustomize {
    /// Kustomization directories, relative to the devloop.yaml directory.
    pub paths: Vec<PathBuf>,
    /// Extra arguments appended to every build, e.g. `--load-restrictor=LoadRestrictionsNone`.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub build_args: Vec<String>,
    /// The program to run. A name is looked up on `PATH`; a value containing `/` is a path. When its file
    /// name is `kubectl`, devloop runs `kubectl kustomize <path>`, otherwise `<binary> build <path>`.
    /// Default: `kustomize` when it is on `PATH`, else `kubectl` (`kubectl kustomize`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub binary: Option<String>,
}

/// `manifests.helm`: charts rendered with `helm template`.
#[derive(Debug, Clone, Default, PartialEq, Eq, Deserialize, Serialize, JsonSchema)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct Helm {
    /// The helm program, looked up on `PATH` unless it contains `/`. Default: `helm`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub binary: Option<String>,
    /// Releases, rendered in order.
    pub releases: Vec<HelmRelease>,
}

/// One `helm template` invocation.
#[derive(Debug, Clone, Default, PartialEq, Eq, Deserialize, Serialize, JsonSchema)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct HelmRelease {
    /// Release name (`helm template <name> …`).
    pub name: String,
    /// Chart: a directory relative to the devloop.yaml directory, a packaged chart, or anything else
    /// `helm template` accepts as its chart argument.
    pub chart_path: String,
    /// Release namespace (`--namespace`). Namespaced objects of this release that have none get it.
    /// Default: the namespace requested on the command line, else none (helm then uses `default`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub namespace: Option<String>,
    /// Values files (`-f`), relative to the devloop.yaml directory, in order.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub values_files: Vec<PathBuf>,
    /// Values passed verbatim as `--set key=value` (helm's own syntax and type coercion apply).
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub set_values: BTreeMap<String, String>,
    /// Values that are templates, expanded and then passed as `--set-string key=value` (so tags such as `1.10`
    /// or `20260101` stay strings). Fields: `{{.IMAGE_REPO_<artifact>}}`, `{{.IMAGE_TAG_<artifact>}}`,
    /// `{{.IMAGE_DIGEST_<artifact>}}`, `{{.IMAGE_FULLY_QUALIFIED_<artifact>}}`, `{{.Env.NAME}}`, and `{{.NAME}}`
    /// for any other environment variable.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub set_value_templates: BTreeMap<String, String>,
}

/// `manifests.images[]`: where objects of one kind hold image references, for kinds devloop does not know.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize, Serialize, JsonSchema)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct ImagePaths {
    /// The object kind, e.g. `Rollout` (case-sensitive, as in the manifest).
    pub kind: String,
    /// The API group, e.g. `argoproj.io` (the part of `apiVersion` before `/`; `""` is the core group).
    /// Default: any group.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub group: Option<String>,
    /// Field paths to image strings, e.g. `spec.template.spec.containers[*].image`.
    pub paths: Vec<FieldPath>,
}

/// A path to a field inside an object: names separated by `.`, with `[*]` (every element) or `[N]` (element N)
/// after a name to step into a list. Written as a string in devloop.yaml.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize, Serialize, JsonSchema)]
#[serde(try_from = "String", into = "String")]
pub struct FieldPath {
    segments: Vec<PathSegment>,
}

/// One step of a [`FieldPath`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum PathSegment {
    /// A mapping key.
    Field(String),
    /// Every element of a list (`[*]`).
    Each,
    /// One element of a list (`[N]`, 0-based).
    Index(usize),
}

impl FieldPath {
    /// Builds a path from segments (used for the paths devloop knows itself).
    pub fn new(segments: Vec<PathSegment>) -> Self {
        Self { segments }
    }

    /// The steps of this path, outermost first.
    pub fn segments(&self) -> &[PathSegment] {
        &self.segments
    }
}

/// Why a string is not a valid [`FieldPath`].
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error(
    "invalid field path `{path}`: {reason}{}",
    Hint(
        "write names separated by `.`, with `[*]` or `[N]` to step into lists, e.g. `spec.template.spec.containers[*].image`"
    )
)]
pub struct FieldPathError {
    /// The path as written.
    pub path: String,
    /// What is wrong with it.
    pub reason: &'static str,
}

impl std::str::FromStr for FieldPath {
    type Err = FieldPathError;

    fn from_str(path: &str) -> Result<Self, Self::Err> {
        let fail = |reason| FieldPathError {
            path: path.to_owned(),
            reason,
        };
        let mut segments = Vec::new();
        let mut rest = path;
        // A name is required at the start and after every `.`; `[..]` may only follow a name or another `[..]`.
        let mut expect_name = true;
        while !rest.is_empty() {
            if let Some(after) = rest.strip_prefix('[') {
                if expect_name {
                    return Err(fail("`[` must follow a field name"));
                }
                let Some(end) = after.find(']') else {
                    return Err(fail("unclosed `[`"));
                };
                let inside = &after[..end];
                if inside == "*" {
                    segments.push(PathSegment::Each);
                } else if !inside.is_empty() && inside.bytes().all(|b| b.is_ascii_digit()) {
                    let index = inside
                        .parse()
                        .map_err(|_| fail("list index is too large"))?;
                    segments.push(PathSegment::Index(index));
                } else {
                    return Err(fail("only `[*]` and `[N]` are allowed inside brackets"));
                }
                rest = &after[end + 1..];
            } else if rest.starts_with(']') {
                return Err(fail("unexpected `]`"));
            } else if let Some(after) = rest.strip_prefix('.') {
                if expect_name {
                    return Err(fail("empty field name"));
                }
                expect_name = true;
                rest = after;
            } else {
                if !expect_name {
                    return Err(fail("expected `.` or `[` after a field name or `]`"));
                }
                let end = rest.find(['.', '[', ']']).unwrap_or(rest.len());
                segments.push(PathSegment::Field(rest[..end].to_owned()));
                expect_name = false;
                rest = &rest[end..];
            }
        }
        if expect_name {
            return Err(fail(if path.is_empty() {
                "the path is empty"
            } else {
                "the path ends with `.`"
            }));
        }
        Ok(Self { segments })
    }
}

impl TryFrom<String> for FieldPath {
    type Error = FieldPathError;

    fn try_from(path: String) -> Result<Self, Self::Error> {
        path.parse()
    }
}

impl From<FieldPath> for String {
    fn from(path: FieldPath) -> Self {
        path.to_string()
    }
}

impl fmt::Display for FieldPath {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for (i, segment) in self.segments.iter().enumerate() {
            match segment {
                PathSegment::Field(name) if i == 0 => f.write_str(name)?,
                PathSegment::Field(name) => write!(f, ".{name}")?,
                PathSegment::Each => f.write_str("[*]")?,
                PathSegment::Index(n) => write!(f, "[{n}]")?,
            }
        }
        Ok(())
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[derive(Debug, Deserialize)]
    #[serde(deny_unknown_fields)]
    struct Root {
        manifests: Manifests,
    }

    fn parse(yaml: &str) -> Result<Manifests, serde_saphyr::Error> {
        serde_saphyr::from_str::<Root>(yaml).map(|r| r.manifests)
    }

    #[test]
    fn parses_every_field() {
        let m = parse(
            r#"
manifests:
  rawYaml: ["deploy/k8s/*.yaml", "k8s/job.yaml"]
  templates: ["deploy/k8s/*.yaml.tmpl"]
  kustomize:
    paths: ["deploy/k8s/overlays/dev"]
    buildArgs: ["--load-restrictor=LoadRestrictionsNone"]
    binary: kustomize
  helm:
    binary: /opt/helm
    releases:
      - name: api
        chartPath: charts/api
        namespace: backend
        valuesFiles: [charts/api/values-dev.yaml]
        setValues: {replicaCount: 2}
        setValueTemplates: {image.repository: "{{.IMAGE_REPO_app_api}}"}
  images:
    - kind: Rollout
      group: argoproj.io
      paths: ["spec.template.spec.containers[*].image", "spec.sidecars[0].image"]
"#,
        )
        .unwrap();
        assert_eq!(m.raw_yaml, ["deploy/k8s/*.yaml", "k8s/job.yaml"]);
        assert_eq!(m.templates, ["deploy/k8s/*.yaml.tmpl"]);
        let k = m.kustomize.as_ref().unwrap();
        assert_eq!(k.paths, [PathBuf::from("deploy/k8s/overlays/dev")]);
        assert_eq!(k.build_args, ["--load-restrictor=LoadRestrictionsNone"]);
        assert_eq!(k.binary.as_deref(), Some("kustomize"));
        let h = m.helm.as_ref().unwrap();
        assert_eq!(h.binary.as_deref(), Some("/opt/helm"));
        let r = &h.releases[0];
        assert_eq!(
            (r.name.as_str(), r.chart_path.as_str()),
            ("api", "charts/api")
        );
        assert_eq!(r.namespace.as_deref(), Some("backend"));
        assert_eq!(
            r.values_files,
            [PathBuf::from("charts/api/values-dev.yaml")]
        );
        // A YAML number is accepted as the string helm receives.
        assert_eq!(r.set_values["replicaCount"], "2");
        assert_eq!(
            r.set_value_templates["image.repository"],
            "{{.IMAGE_REPO_app_api}}"
        );
        let i = &m.images[0];
        assert_eq!(
            (i.kind.as_str(), i.group.as_deref()),
            ("Rollout", Some("argoproj.io"))
        );
        assert_eq!(
            i.paths[1].segments(),
            [
                PathSegment::Field("spec".into()),
                PathSegment::Field("sidecars".into()),
                PathSegment::Index(0),
                PathSegment::Field("image".into()),
            ]
        );
        assert!(!m.is_empty());
    }

    #[test]
    fn round_trips_through_json() {
        // Profiles are merged as JSON values, so every field must survive serialize → deserialize.
        let m = parse(
            "manifests:\n  rawYaml: [a.yaml]\n  kustomize: {paths: [k]}\n  helm:\n    releases:\n      - {name: r, chartPath: c, setValues: {n: 2}}\n  images:\n    - {kind: Rollout, paths: [\"spec.containers[*].image\"]}\n",
        )
        .unwrap();
        let json = serde_json::to_value(&m).unwrap();
        assert_eq!(json["images"][0]["paths"][0], "spec.containers[*].image");
        assert_eq!(serde_json::from_value::<Manifests>(json).unwrap(), m);
    }

    #[test]
    fn empty_section_is_empty() {
        let m = parse("manifests: {}\n").unwrap();
        assert_eq!(m, Manifests::default());
        assert!(m.is_empty());
    }

    #[test]
    fn unknown_fields_are_rejected() {
        let err = parse("manifests:\n  rawYml: [a.yaml]\n").unwrap_err();
        assert!(err.to_string().contains("rawYml"), "{err}");
        let err = parse("manifests:\n  helm:\n    releases:\n      - name: a\n        chart: c\n")
            .unwrap_err();
        assert!(err.to_string().contains("chart"), "{err}");
    }

    #[test]
    fn bad_field_path_is_rejected_with_its_location() {
        let err =
            parse("manifests:\n  images:\n    - kind: Rollout\n      paths: [\"spec..image\"]\n")
                .unwrap_err();
        let text = err.to_string();
        assert!(
            text.contains("invalid field path `spec..image`: empty field name"),
            "{text}"
        );
        assert_eq!(err.location().map(|l| l.line()), Some(4), "{text}");
    }

    #[test]
    fn field_paths_round_trip_and_reject_garbage() {
        for ok in [
            "image",
            "spec.containers[*].image",
            "a[0][*].b",
            "spec.x-y_z/w.image",
        ] {
            assert_eq!(ok.parse::<FieldPath>().unwrap().to_string(), ok);
        }
        for (bad, reason) in [
            ("", "the path is empty"),
            ("spec.", "the path ends with `.`"),
            (".spec", "empty field name"),
            ("[*].image", "`[` must follow a field name"),
            ("spec[", "unclosed `[`"),
            (
                "spec[x]",
                "only `[*]` and `[N]` are allowed inside brackets",
            ),
            ("spec[]", "only `[*]` and `[N]` are allowed inside brackets"),
            (
                "spec[0]image",
                "expected `.` or `[` after a field name or `]`",
            ),
            ("spec]", "unexpected `]`"),
            ("a[99999999999999999999999]", "list index is too large"),
        ] {
            assert_eq!(
                bad.parse::<FieldPath>().unwrap_err().reason,
                reason,
                "{bad}"
            );
        }
    }
}
