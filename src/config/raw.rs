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
    pub api_version: Option<String>,
    pub kind: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub metadata: Option<RawMetadata>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub build: Option<RawBuild>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub manifests: Option<Manifests>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub deploy: Option<RawDeploy>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub port_forward: Option<Vec<RawPortForward>>,
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
    pub resource_name: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub namespace: Option<String>,
    /// A port number, or a port name.
    pub port: RawPort,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub local_port: Option<u16>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub address: Option<String>,
}

/// A port as written: a number or a name.
#[derive(Debug, Clone, Deserialize, Serialize, JsonSchema)]
#[serde(untagged)]
pub enum RawPort {
    Number(u16),
    Name(String),
}

impl Default for RawPort {
    fn default() -> Self {
        RawPort::Number(0)
    }
}

/// `metadata:`: the project's identity.
#[derive(Debug, Clone, Default, Deserialize, Serialize, JsonSchema)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct RawMetadata {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
}

/// `build:` section.
#[derive(Debug, Clone, Default, Deserialize, Serialize, JsonSchema)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct RawBuild {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub artifacts: Option<Vec<RawArtifact>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tag_policy: Option<RawTagPolicy>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub concurrency: Option<u32>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub use_buildkit: Option<bool>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub platform: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub push: Option<bool>,
}

/// One entry of `build.artifacts`.
#[derive(Debug, Clone, Default, Deserialize, Serialize, JsonSchema)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct RawArtifact {
    pub image: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub context: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub docker: Option<RawDocker>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub requires: Option<Vec<RawRequire>>,
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
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub strip: Option<String>,
}

/// `build.artifacts[].docker`.
#[derive(Debug, Clone, Default, Deserialize, Serialize, JsonSchema)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct RawDocker {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub dockerfile: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub target: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub build_args: Option<BTreeMap<String, String>>,
}

/// `build.artifacts[].requires[]`: an artifact built first whose reference becomes a build arg.
#[derive(Debug, Clone, Default, Deserialize, Serialize, JsonSchema)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct RawRequire {
    pub image: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub alias: Option<String>,
}

/// `build.tagPolicy`: exactly one of the fields, Skaffold style (`tagPolicy: {gitCommit: {}}`).
#[derive(Debug, Clone, Default, Deserialize, Serialize, JsonSchema)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct RawTagPolicy {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub input_digest: Option<RawEmpty>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub git_commit: Option<RawGitCommit>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub date_time: Option<RawDateTime>,
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
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub variant: Option<String>,
}

/// `tagPolicy.dateTime`.
#[derive(Debug, Clone, Default, Deserialize, Serialize, JsonSchema)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct RawDateTime {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub format: Option<String>,
}

/// `tagPolicy.envTemplate`.
#[derive(Debug, Clone, Default, Deserialize, Serialize, JsonSchema)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct RawEnvTemplate {
    pub template: String,
}

/// `profiles[]`.
#[derive(Debug, Clone, Default, Deserialize, Serialize, JsonSchema)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct RawProfile {
    pub name: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub activation: Option<Vec<RawActivation>>,
    /// Dotted paths (`build.artifacts`, `manifests.rawYaml`) whose profile value replaces the base value.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub replace: Option<Vec<String>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub build: Option<RawBuild>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub manifests: Option<Manifests>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub deploy: Option<RawDeploy>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub port_forward: Option<Vec<RawPortForward>>,
}

/// `profiles[].activation[]`: all the given conditions of one entry must hold; any entry activates.
#[derive(Debug, Clone, Default, Deserialize, Serialize, JsonSchema)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct RawActivation {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub env: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub kube_context: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub command: Option<String>,
}
