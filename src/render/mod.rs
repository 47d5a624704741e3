//! Render stage: `manifests:` sources (raw YAML, templates, kustomize, helm) + built images + labels + namespace
//! → the exact objects devloop applies, and their YAML. It reads files and runs `kustomize`/`helm` to completion,
//! but never talks to a cluster, never prints, and never formats image references (it injects them verbatim).
//!
//! Order of work: every source is loaded and parsed; `List` objects are flattened; then each object gets its
//! namespace, the labels, and its images rewritten. Objects keep source order: `rawYaml`, `templates`,
//! `kustomize.paths`, `helm.releases`, each in document order.

mod image;
pub mod inputs;
mod label;
mod metadata;
mod namespace;
mod source;
mod template;
mod workload;
mod yaml;

use std::collections::BTreeMap;
use std::fmt;
use std::path::{Path, PathBuf};

use serde_json::{Map, Value};

use crate::config::manifests::Manifests;
use crate::hint::Hint;

pub use template::UnsetVariable;

/// Everything [`render`] needs. Paths in `manifests` are relative to `base_dir`.
#[derive(Debug, Clone, Copy)]
pub struct RenderRequest<'a> {
    /// The directory holding devloop.yaml; globs, kustomize paths, charts and values files are relative to it,
    /// and kustomize and helm run in it.
    pub base_dir: &'a Path,
    /// The `manifests:` section of devloop.yaml.
    pub manifests: &'a Manifests,
    /// The built image of every artifact, injected wherever a manifest names the artifact.
    pub images: &'a [ArtifactImage],
    /// Labels put on every object and on the pod templates of workloads (see [`render`]).
    pub labels: &'a BTreeMap<String, String>,
    /// Namespace for namespaced objects that have none (the context's, or `-n`).
    pub namespace: Option<&'a str>,
    /// Whether `namespace` was asked for explicitly (`-n`): then, as with kubectl, an object that names another
    /// namespace is an error. Otherwise it is only the default and objects keep the namespace they name.
    pub namespace_explicit: bool,
    /// The complete process environment: the variables of templates, and the environment `kustomize` and
    /// `helm` run with (their `PATH` is also where devloop looks for them).
    pub env: &'a BTreeMap<String, String>,
}

/// The image built for one artifact.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ArtifactImage {
    /// The artifact's image name as written in devloop.yaml, e.g. `app-api` or `registry.local/team/api`.
    /// Manifests refer to the artifact by this name.
    pub name: String,
    /// The full reference put into manifests, e.g. `registry.local:5000/app-api:3f2a…@sha256:…`.
    pub reference: String,
    /// The repository part of `reference`, e.g. `registry.local:5000/app-api` (offered to templates).
    pub repository: String,
    /// The tag part of `reference` (offered to templates).
    pub tag: String,
    /// The digest, e.g. `sha256:…`, when known (offered to templates).
    pub digest: Option<String>,
}

/// The result of [`render`].
#[derive(Debug, Clone, PartialEq)]
pub struct Rendered {
    /// Objects in source order.
    pub objects: Vec<Object>,
    /// Things worth telling the user that did not stop rendering, in the order they were found.
    pub warnings: Vec<RenderWarning>,
}

impl Rendered {
    /// The objects as JSON values, in source order (what a deploy applies).
    pub fn into_values(self) -> Vec<serde_json::Value> {
        self.objects.into_iter().map(Object::into_value).collect()
    }

    /// The objects as one multi-document YAML stream (`---` between documents), as `kubectl apply -f -`
    /// reads it. The same input always gives the same bytes.
    pub fn to_yaml(&self) -> Result<String, RenderError> {
        let values: Vec<&Map<String, Value>> = self.objects.iter().map(Object::value).collect();
        yaml::write_stream(&values)
    }
}

/// Where an object was read from.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum ObjectSource {
    /// A `rawYaml` or `templates` file; `path` is as matched, relative to the devloop.yaml directory.
    File {
        /// The file.
        path: PathBuf,
    },
    /// The output of building one `kustomize.paths` entry.
    Kustomize {
        /// The kustomization directory as configured.
        path: PathBuf,
    },
    /// The output of `helm template` for one release.
    Helm {
        /// The release name.
        release: String,
    },
}

impl fmt::Display for ObjectSource {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::File { path } => write!(f, "{}", path.display()),
            Self::Kustomize { path } => write!(f, "kustomize output of `{}`", path.display()),
            Self::Helm { release } => write!(f, "helm output of release `{release}`"),
        }
    }
}

/// One Kubernetes object, ready to apply. Always a mapping with string `apiVersion` and `kind`.
#[derive(Debug, Clone, PartialEq)]
pub struct Object {
    source: ObjectSource,
    document: usize,
    item: Option<usize>,
    value: Map<String, Value>,
}

impl Object {
    /// Where the object was read from.
    pub fn source(&self) -> &ObjectSource {
        &self.source
    }

    /// 1-based position of its document in the source (empty documents count).
    pub fn document(&self) -> usize {
        self.document
    }

    /// 0-based position in the `items` of the `List` document it came from, if it came from one.
    pub fn item(&self) -> Option<usize> {
        self.item
    }

    /// The object.
    pub fn value(&self) -> &Map<String, Value> {
        &self.value
    }

    /// The object, as an owned JSON value.
    pub fn into_value(self) -> Value {
        Value::Object(self.value)
    }

    /// `apiVersion`, e.g. `apps/v1`.
    pub fn api_version(&self) -> &str {
        self.value
            .get("apiVersion")
            .and_then(Value::as_str)
            .unwrap_or_default()
    }

    /// The API group: `apiVersion` before `/`, `""` for the core group.
    pub fn group(&self) -> &str {
        group_of(self.api_version())
    }

    /// `kind`, e.g. `Deployment`.
    pub fn kind(&self) -> &str {
        self.value
            .get("kind")
            .and_then(Value::as_str)
            .unwrap_or_default()
    }

    /// `metadata.name`, when set.
    pub fn name(&self) -> Option<&str> {
        self.metadata_str("name")
    }

    /// `metadata.namespace`, when set and not empty.
    pub fn namespace(&self) -> Option<&str> {
        self.metadata_str("namespace").filter(|ns| !ns.is_empty())
    }

    fn metadata_str(&self, key: &str) -> Option<&str> {
        self.value.get("metadata")?.get(key)?.as_str()
    }

    /// A short description for messages: kind, name and where it came from.
    pub fn describe(&self) -> ObjectRef {
        ObjectRef {
            kind: self.kind().to_owned(),
            name: self.name().map(str::to_owned),
            source: self.source.clone(),
            document: self.document,
            item: self.item,
        }
    }
}

fn group_of(api_version: &str) -> &str {
    api_version.rsplit_once('/').map_or("", |(group, _)| group)
}

/// Names an object in warnings and errors: ``Deployment `web` (k8s/app.yaml, document 2)``.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ObjectRef {
    /// `kind`.
    pub kind: String,
    /// `metadata.name`, when set.
    pub name: Option<String>,
    /// Where it was read from.
    pub source: ObjectSource,
    /// 1-based document index in the source.
    pub document: usize,
    /// 0-based index in a `List` document's `items`.
    pub item: Option<usize>,
}

impl fmt::Display for ObjectRef {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match &self.name {
            Some(name) => write!(f, "{} `{name}`", self.kind)?,
            None => write!(f, "{} without a name", self.kind)?,
        }
        write!(f, " ({}, document {}", self.source, self.document)?;
        if let Some(item) = self.item {
            write!(f, ", item {item}")?;
        }
        f.write_str(")")
    }
}

/// A finding that does not stop rendering; the caller decides how to show it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum RenderWarning {
    /// No manifest refers to this artifact's image, so deploying will not run it.
    UnusedArtifact {
        /// The artifact name.
        artifact: String,
    },
    /// A manifest refers to the artifact's image pinned by a digest that is not the built one; it was left alone.
    PinnedImage {
        /// The artifact name.
        artifact: String,
        /// The image as written in the manifest.
        image: String,
        /// The object holding it.
        object: ObjectRef,
    },
    /// `kustomize` or `helm` succeeded but wrote to stderr (deprecation notices and the like).
    ToolStderr {
        /// The command line.
        command: String,
        /// What it wrote, without trailing whitespace.
        stderr: String,
    },
}

impl fmt::Display for RenderWarning {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::UnusedArtifact { artifact } => write!(
                f,
                "artifact `{artifact}` is built but no manifest uses its image{}",
                Hint(format_args!(
                    "refer to it by name in an `image:` field, e.g. `image: {artifact}`"
                ))
            ),
            Self::PinnedImage {
                artifact,
                image,
                object,
            } => write!(
                f,
                "{object}: image `{image}` is pinned by digest, so the image built for artifact `{artifact}` was \
                 not injected{}",
                Hint("drop the `@sha256:…` part to deploy the built image")
            ),
            Self::ToolStderr { command, stderr } => write!(f, "`{command}` said:\n{stderr}"),
        }
    }
}

/// Why rendering failed.
#[derive(Debug, thiserror::Error)]
pub enum RenderError {
    /// A `rawYaml` or `templates` glob does not parse.
    #[error("devloop.yaml: manifests.{field}: invalid glob `{glob}`: {message}")]
    InvalidGlob {
        /// `rawYaml` or `templates`.
        field: &'static str,
        /// The glob as written.
        glob: String,
        /// What the glob parser said.
        message: String,
    },
    /// A glob matches no file.
    #[error(
        "devloop.yaml: manifests.{field}: `{glob}` matches no file{}",
        Hint(format_args!("globs are relative to `{}`", base_dir.display()))
    )]
    NoMatch {
        /// `rawYaml` or `templates`.
        field: &'static str,
        /// The glob as written.
        glob: String,
        /// The directory globs are relative to.
        base_dir: PathBuf,
    },
    /// A manifest file or directory cannot be read.
    #[error("cannot read `{}`: {error}", path.display())]
    Read {
        /// The file or directory.
        path: PathBuf,
        /// The I/O error.
        error: std::io::Error,
    },
    /// A kustomize path is not a directory.
    #[error("devloop.yaml: manifests.kustomize.paths: directory `{}` does not exist", path.display())]
    KustomizeDirMissing {
        /// The path as configured.
        path: PathBuf,
    },
    /// A document is not valid YAML.
    #[error("{origin}: document {document}: {}{message}", position(*line, *column))]
    Yaml {
        /// Where the text came from.
        origin: ObjectSource,
        /// 1-based document index.
        document: usize,
        /// 1-based line in the file (or tool output), when known.
        line: Option<u64>,
        /// 1-based column, when known.
        column: Option<u64>,
        /// What the YAML parser said.
        message: String,
    },
    /// A document is a scalar or a list instead of an object.
    #[error(
        "{origin}: document {document}{}: expected a Kubernetes object, found {found}",
        item_suffix(*item)
    )]
    NotAnObject {
        /// Where it came from.
        origin: ObjectSource,
        /// 1-based document index.
        document: usize,
        /// 0-based index in a `List`'s items.
        item: Option<usize>,
        /// What it is instead: `a list`, `a string`, …
        found: &'static str,
    },
    /// A document lacks `apiVersion` or `kind` (or it is not a string).
    #[error(
        "{origin}: document {document}{}: object has no `{field}`{}",
        item_suffix(*item),
        Hint("every document must be a Kubernetes object with `apiVersion` and `kind`")
    )]
    MissingField {
        /// Where it came from.
        origin: ObjectSource,
        /// 1-based document index.
        document: usize,
        /// 0-based index in a `List`'s items.
        item: Option<usize>,
        /// `apiVersion` or `kind`.
        field: &'static str,
    },
    /// A template file uses variables that are not set.
    #[error(
        "{}: unset environment variables: {}{}",
        path.display(),
        list_unset(variables),
        Hint("set them, or give a default with `${NAME:-default}`")
    )]
    UnsetVariables {
        /// The template file, relative to the devloop.yaml directory.
        path: PathBuf,
        /// Every unset variable, in order of first use.
        variables: Vec<UnsetVariable>,
    },
    /// A helm `setValueTemplates` value uses fields that are not set.
    #[error(
        "devloop.yaml: manifests.helm.releases[{release_index}].setValueTemplates.{key}: unset {}{}",
        list_fields(fields),
        Hint("image fields exist for built artifacts only; other names are environment variables")
    )]
    UnsetValueFields {
        /// Index of the release in `helm.releases`.
        release_index: usize,
        /// The value's key.
        key: String,
        /// Every unset field, in order of first use.
        fields: Vec<String>,
    },
    /// A helm `setValueTemplates` value is not a valid template.
    #[error(
        "devloop.yaml: manifests.helm.releases[{release_index}].setValueTemplates.{key}: {message}"
    )]
    InvalidValueTemplate {
        /// Index of the release in `helm.releases`.
        release_index: usize,
        /// The value's key.
        key: String,
        /// What is wrong.
        message: String,
    },
    /// Two artifacts give the same template variable names (`IMAGE_REPO_a_b` for `a-b` and `a.b`).
    #[error("artifacts `{first}` and `{second}` both define the template variable `{variable}`")]
    ImageVariableClash {
        /// The earlier artifact.
        first: String,
        /// The later artifact.
        second: String,
        /// The shared variable name.
        variable: String,
    },
    /// Two artifacts name the same image once Docker's defaults are applied.
    #[error(
        "artifacts `{first}` and `{second}` name the same image `{normalized}`{}",
        Hint("give each artifact a distinct image name")
    )]
    AmbiguousArtifacts {
        /// The earlier artifact.
        first: String,
        /// The later artifact.
        second: String,
        /// The image both normalize to.
        normalized: String,
    },
    /// `kustomize` or `helm` cannot be found.
    #[error("`{program}` is not installed (not found on PATH){}", Hint(hint))]
    ToolNotFound {
        /// The program looked for.
        program: String,
        /// What the user can do.
        hint: &'static str,
    },
    /// `kustomize` or `helm` cannot be started.
    #[error("cannot run `{command}`: {error}")]
    ToolSpawn {
        /// The command line.
        command: String,
        /// The I/O error.
        error: std::io::Error,
    },
    /// `kustomize` or `helm` failed.
    #[error("`{command}` failed ({}):\n{}", exit_status(*code), stderr.trim_end())]
    ToolFailed {
        /// The command line.
        command: String,
        /// Its exit code; `None` when a signal ended it.
        code: Option<i32>,
        /// What it wrote to stderr.
        stderr: String,
    },
    /// `kustomize` or `helm` wrote something that is not UTF-8.
    #[error("`{command}` wrote output that is not UTF-8")]
    ToolOutput {
        /// The command line.
        command: String,
    },
    /// An object names another namespace than the one given with `-n` (kubectl refuses this too).
    #[error(
        "{object}: the namespace from the provided object `{namespace}` does not match the namespace \
         `{requested}` given with `-n`{}",
        Hint(format_args!(
            "pass `-n {namespace}`, or leave `-n` out (objects then go to the namespace they name), or remove \
             `metadata.namespace` from the manifest"
        ))
    )]
    NamespaceConflict {
        /// The object.
        object: Box<ObjectRef>,
        /// The namespace it has (from the manifest or its helm release).
        namespace: String,
        /// The namespace requested.
        requested: String,
    },
    /// Writing YAML failed.
    #[error("cannot write rendered YAML: {message}")]
    Serialize {
        /// What the YAML writer said.
        message: String,
    },
}

fn position(line: Option<u64>, column: Option<u64>) -> String {
    match (line, column) {
        (Some(line), Some(column)) => format!("line {line}, column {column}: "),
        (Some(line), None) => format!("line {line}: "),
        _ => String::new(),
    }
}

fn item_suffix(item: Option<usize>) -> String {
    item.map(|i| format!(", item {i}")).unwrap_or_default()
}

fn list_unset(variables: &[UnsetVariable]) -> String {
    let names: Vec<String> = variables
        .iter()
        .map(|v| format!("`{}` (line {})", v.name, v.line))
        .collect();
    names.join(", ")
}

fn list_fields(fields: &[String]) -> String {
    let names: Vec<String> = fields.iter().map(|f| format!("`{{{{.{f}}}}}`")).collect();
    let plural = if fields.len() == 1 { "" } else { "s" };
    format!("field{plural} {}", names.join(", "))
}

fn exit_status(code: Option<i32>) -> String {
    code.map_or_else(
        || "killed by a signal".to_owned(),
        |code| format!("exit code {code}"),
    )
}

/// Renders the manifests: loads every source, then sets namespaces, adds labels and injects images.
///
/// - Images: every `image` of `containers`, `initContainers` and `ephemeralContainers` in the pod spec of a
///   Pod, PodTemplate, ReplicationController, Deployment, StatefulSet, DaemonSet, ReplicaSet, Job and CronJob
///   (any version), plus `manifests.images` paths, is compared with the artifacts by repository, ignoring the
///   tag, after Docker's defaults (`app` = `docker.io/library/app`). A match is replaced by the artifact's
///   `reference`; references pinned by digest and other images stay as written.
/// - Labels: on every object's `metadata.labels`, and on the pod templates of Deployment, StatefulSet,
///   DaemonSet, ReplicaSet, ReplicationController (when it has a selector), PodTemplate, and CronJob (its
///   `jobTemplate` and the pod template in it). Never on a Job's pod template (immutable), a StatefulSet's
///   `volumeClaimTemplates`, or any selector.
/// - Namespace: namespaced objects without one get the helm release's namespace, else `namespace`; when
///   `namespace_explicit`, an object whose namespace differs from `namespace` is an error (kubectl's `-n` rule). Kinds known to be cluster-scoped, and custom
///   resources whose CustomResourceDefinition in the same render says `scope: Cluster`, are left alone; any
///   other kind counts as namespaced.
///
/// Blocking: reads files and waits for kustomize and helm (run concurrently, one short-lived thread each); large
/// inputs are parsed and written on all cores (scoped threads, joined before returning).
pub fn render(req: &RenderRequest<'_>) -> Result<Rendered, RenderError> {
    let vars = template::Variables::new(req.env, req.images)?;
    let matcher = image::Matcher::new(req.images, &req.manifests.images)?;
    let loaded = source::load(req, &vars)?;

    let mut objects = Vec::new();
    let mut default_namespaces = Vec::new();
    let mut warnings = Vec::new();
    let streams: Vec<(&str, &ObjectSource)> = loaded
        .iter()
        .map(|o| (o.text.as_str(), &o.source))
        .collect();
    let parsed = yaml::parse_streams(&streams)?;
    for (output, documents) in loaded.iter().zip(parsed) {
        if let Some((command, stderr)) = &output.diagnostics {
            warnings.push(RenderWarning::ToolStderr {
                command: command.clone(),
                stderr: stderr.trim_end().to_owned(),
            });
        }
        for document in documents {
            flatten(
                &output.source,
                document.index,
                None,
                document.value,
                &mut objects,
            )?;
            default_namespaces.resize(objects.len(), output.default_namespace.as_deref());
        }
    }

    let scopes = namespace::Scopes::new(&objects);
    let mut usage = image::Usage::new(req.images.len());
    for (object, default_namespace) in objects.iter_mut().zip(&default_namespaces) {
        namespace::apply(
            object,
            &scopes,
            *default_namespace,
            req.namespace,
            req.namespace_explicit,
        )?;
        label::apply(object, req.labels);
        matcher.rewrite(object, &mut usage, &mut warnings);
    }
    warnings.extend(
        usage
            .unused(req.images)
            .map(|artifact| RenderWarning::UnusedArtifact { artifact }),
    );
    Ok(Rendered { objects, warnings })
}

/// Turns one document into objects, expanding `List`s (kubectl applies their items one by one).
fn flatten(
    origin: &ObjectSource,
    document: usize,
    item: Option<usize>,
    value: Value,
    out: &mut Vec<Object>,
) -> Result<(), RenderError> {
    let Value::Object(map) = value else {
        let found = match value {
            Value::Array(_) => "a list",
            Value::String(_) => "a string",
            Value::Number(_) => "a number",
            Value::Bool(_) => "a boolean",
            Value::Null | Value::Object(_) => "nothing",
        };
        return Err(RenderError::NotAnObject {
            origin: origin.clone(),
            document,
            item,
            found,
        });
    };
    for field in ["apiVersion", "kind"] {
        if !map.get(field).is_some_and(Value::is_string) {
            return Err(RenderError::MissingField {
                origin: origin.clone(),
                document,
                item,
                field,
            });
        }
    }
    let is_list = map
        .get("kind")
        .and_then(Value::as_str)
        .is_some_and(|k| k == "List" || k.ends_with("List"))
        && map.get("items").is_some_and(Value::is_array);
    if !is_list {
        out.push(Object {
            source: origin.clone(),
            document,
            item,
            value: map,
        });
        return Ok(());
    }
    let mut map = map;
    let Some(Value::Array(items)) = map.remove("items") else {
        return Ok(());
    };
    for (i, value) in items.into_iter().enumerate() {
        // Items of nested lists keep the index of the outermost item, which is what a user can find.
        flatten(origin, document, Some(item.unwrap_or(i)), value, out)?;
    }
    Ok(())
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests;
