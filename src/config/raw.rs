//! Config, raw layer: the serde mirror of `devloop.yaml` → typed but unvalidated values. Knows YAML shapes, not meaning.
//!
//! Every struct denies unknown fields so a typo is an error that names the field. Optional lists and maps are
//! `Option` so a profile can tell "absent" from "empty" when it is merged onto the base (see `profile.rs`).

use std::collections::BTreeMap;

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use super::deploy::RawDeploy;
use super::hooks::{RawBuildHooks, RawHooks};
use super::manifests::Manifests;

/// The whole `devloop.yaml` document.
#[derive(Debug, Clone, Default, Deserialize, Serialize, JsonSchema)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct RawConfig {
    /// The config format: `devloop/v1alpha1`.
    pub api_version: Option<String>,
    /// Always `Config`.
    pub kind: Option<String>,
    /// The project's identity.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub metadata: Option<RawMetadata>,
    /// The images to build.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub build: Option<RawBuild>,
    /// The Kubernetes manifests to render and deploy.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub manifests: Option<Manifests>,
    /// Where the project runs: Kubernetes (default) or containers on the local Docker daemon (`deploy.docker`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub deploy: Option<RawDeploy>,
    /// Local ports `devloop dev` forwards to cluster resources; they survive redeploys.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub port_forward: Option<Vec<RawPortForward>>,
    /// Named overrides, selected with `-p NAME` or activated by `activation`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub profiles: Option<Vec<RawProfile>>,
}

/// `portForward[]`: a local port forwarded to a cluster resource by `devloop dev`.
#[derive(Debug, Clone, Default, Deserialize, Serialize, JsonSchema)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct RawPortForward {
    /// `service` (default), `deployment`, `statefulset` or `pod`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub resource_type: Option<String>,
    /// The resource's name.
    pub resource_name: String,
    /// Its namespace. Default: the namespace devloop deploys to.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub namespace: Option<String>,
    /// A port number, or a port name.
    pub port: RawPort,
    /// The local port. Default: the remote port's number; when taken, the next free one above it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub local_port: Option<u16>,
    /// Where to listen. Default: `127.0.0.1` (`0.0.0.0` shares it on the network).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub address: Option<String>,
}

pub use super::scalar::RawPort;

/// `metadata:`: the project's identity.
#[derive(Debug, Clone, Default, Deserialize, Serialize, JsonSchema)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct RawMetadata {
    /// The project name, in the `devloop.dev/project` label of everything deployed: at most 63 letters, digits,
    /// `-`, `_`, `.`. Default: the directory's name.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
}

/// `build:` section.
#[derive(Debug, Clone, Default, Deserialize, Serialize, JsonSchema)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct RawBuild {
    /// The images to build.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub artifacts: Option<Vec<RawArtifact>>,
    /// How images are tagged: exactly one of `inputDigest` (default), `gitCommit`, `dateTime`, `envTemplate`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tag_policy: Option<RawTagPolicy>,
    /// Artifacts built at once; `0`: no limit. Default: the number of CPUs.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub concurrency: Option<u32>,
    /// Build with BuildKit when the daemon supports it (Engine API ≥ 1.39), as `docker build` does; `false`: the
    /// classic builder. Default: `true`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub use_buildkit: Option<bool>,
    /// Target platform, `os/arch[/variant]` (e.g. `linux/amd64`). Default: the daemon's.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub platform: Option<String>,
    /// Push after every build, as `--push` does. Default: `false`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub push: Option<bool>,
}

/// One entry of `build.artifacts`.
#[derive(Debug, Clone, Default, Deserialize, Serialize, JsonSchema)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct RawArtifact {
    /// The image name the manifests use: a repository without tag or digest, unique among artifacts.
    pub image: String,
    /// The build context directory, relative to the config's directory. Default: `.`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub context: Option<String>,
    /// How the Dockerfile is built.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub docker: Option<RawDocker>,
    /// Artifacts built first; each one's reference is passed as a build arg.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub requires: Option<Vec<RawRequire>>,
    /// Files `devloop dev` copies into running containers instead of rebuilding.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub sync: Option<RawSync>,
    /// Host commands run before and after this artifact is built.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub hooks: Option<RawBuildHooks>,
}

/// `build.artifacts[].sync`: files `devloop dev` copies into running containers instead of rebuilding.
#[derive(Debug, Clone, Default, Deserialize, Serialize, JsonSchema)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct RawSync {
    /// Rules: a changed file matching `src` goes to `dest` + its path minus `strip`.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub manual: Vec<RawSyncRule>,
    /// Globs relative to the context; a matching file goes where the Dockerfile's `COPY`/`ADD` put it.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub infer: Vec<String>,
    /// Commands run before and after each sync (on the host, or in each synced container).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub hooks: Option<RawHooks>,
}

/// `sync.manual[]`: Skaffold's shape.
#[derive(Debug, Clone, Default, Deserialize, Serialize, JsonSchema)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct RawSyncRule {
    /// A glob relative to the context (`*` stays within a directory, `**` crosses them).
    pub src: String,
    /// The directory in the container the file goes to (with its path relative to the context, minus `strip`).
    pub dest: String,
    /// A prefix removed from the file's path before it is put under `dest`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub strip: Option<String>,
}

/// `build.artifacts[].docker`.
#[derive(Debug, Clone, Default, Deserialize, Serialize, JsonSchema)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct RawDocker {
    /// The Dockerfile, relative to the context (it may lie outside it). Default: `Dockerfile`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub dockerfile: Option<String>,
    /// The build stage to stop at. Default: the last one.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub target: Option<String>,
    /// Build args; values are templates (`{{.GIT_SHORT_COMMIT}}`, `{{.VERSION}}`, `{{.BUILD_TIME}}`, `{{.Env.NAME}}`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub build_args: Option<BTreeMap<String, String>>,
}

/// `build.artifacts[].requires[]`: an artifact built first whose reference becomes a build arg.
#[derive(Debug, Clone, Default, Deserialize, Serialize, JsonSchema)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct RawRequire {
    /// The required artifact's `image`.
    pub image: String,
    /// The build arg that carries its reference. Default: the image's last path component, upper-cased, other
    /// characters as `_`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub alias: Option<String>,
}

/// `build.tagPolicy`: exactly one of the fields, Skaffold style (`tagPolicy: {gitCommit: {}}`).
#[derive(Debug, Clone, Default, Deserialize, Serialize, JsonSchema)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct RawTagPolicy {
    /// The first 12 hex digits of the cache key: changes exactly when an input changes.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub input_digest: Option<RawEmpty>,
    /// The git commit or tags of the config's directory.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub git_commit: Option<RawGitCommit>,
    /// The build start time (UTC).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub date_time: Option<RawDateTime>,
    /// A template over the environment and the image.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub env_template: Option<RawEnvTemplate>,
}

/// An empty mapping (`{}`), for policies without options.
#[derive(Debug, Clone, Default, Deserialize, Serialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct RawEmpty {}

/// `tagPolicy.gitCommit`.
#[derive(Debug, Clone, Default, Deserialize, Serialize, JsonSchema)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct RawGitCommit {
    /// `Tags` (`git describe --tags --always --dirty`, default), `CommitSha` or `AbbrevCommitSha`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub variant: Option<String>,
}

/// `tagPolicy.dateTime`.
#[derive(Debug, Clone, Default, Deserialize, Serialize, JsonSchema)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct RawDateTime {
    /// strftime subset: `%Y %m %d %H %M %S %%`. Default: `%Y%m%d-%H%M%S`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub format: Option<String>,
}

/// `tagPolicy.envTemplate`.
#[derive(Debug, Clone, Default, Deserialize, Serialize, JsonSchema)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct RawEnvTemplate {
    /// E.g. `{{.IMAGE_NAME}}-{{.Env.USER}}`; also `{{.DIGEST}}` (the key prefix).
    pub template: String,
}

/// `profiles[]`.
#[derive(Debug, Clone, Default, Deserialize, Serialize, JsonSchema)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct RawProfile {
    /// Unique; selected with `-p NAME`.
    pub name: String,
    /// Activates the profile when any entry matches.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub activation: Option<Vec<RawActivation>>,
    /// Dotted paths (`build.artifacts`, `manifests.rawYaml`) whose profile value replaces the base value.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub replace: Option<Vec<String>>,
    /// Merged onto `build`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub build: Option<RawBuild>,
    /// Merged onto `manifests`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub manifests: Option<Manifests>,
    /// Merged onto `deploy`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub deploy: Option<RawDeploy>,
    /// Appended to `portForward`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub port_forward: Option<Vec<RawPortForward>>,
}

/// `profiles[].activation[]`: all the given conditions of one entry must hold; any entry activates.
#[derive(Debug, Clone, Default, Deserialize, Serialize, JsonSchema)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct RawActivation {
    /// `NAME=regex`: the environment variable matches (a leading `!` negates).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub env: Option<String>,
    /// A regex over the kube context in use (a leading `!` negates).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub kube_context: Option<String>,
    /// A regex over the devloop command (`dev`, `build`, `render`, …; a leading `!` negates).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub command: Option<String>,
}
