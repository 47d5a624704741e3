//! Events, payloads: the types events carry that other stages produce (built artifacts, active profiles, what a
//! compose conversion found) → their JSON shape. Defined here so that a field added to a stage's type cannot
//! silently change the event contract; plain data, no behaviour but wording a value source.

use serde::Serialize;

/// The result of building one artifact, as reported to users and written by `--file-output`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, serde::Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct BuiltArtifact {
    /// The image name as written in the config.
    #[serde(rename = "imageName")]
    pub image: String,
    /// The reference to deploy: `repository:tag`, or `repository:tag@sha256:…` when pushed.
    pub tag: String,
}

/// A profile that is active, and why.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct ActiveProfile {
    pub name: String,
    /// `selected` (from `-p`) or the activation that matched (`env ENV=dev`, `kubeContext kind-.*`, `command dev`).
    pub reason: String,
}

/// Something of the compose file that was not converted, or was converted with a difference in behaviour.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Finding {
    /// Where: `api.networks`, `db.ports[1]`, `volumes.pgdata.external`, `x-common` (service keys start with the
    /// service name; top-level keys with their own name).
    pub at: String,
    pub reason: String,
}

/// What became of one compose service.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct ServiceOutcome {
    pub service: String,
    /// The `deploy.docker.containers[].name`, or `None` when the service was not converted.
    pub container: Option<String>,
    /// The container's image: an artifact name or an image reference.
    pub image: Option<String>,
    /// The artifact whose image the container runs (built from this service's `build`, or another's).
    pub artifact: Option<String>,
    /// The service whose `build` makes that artifact.
    pub built_by: Option<String>,
    /// The devloop profiles the container is in (from compose `profiles:`); empty: always.
    pub profiles: Vec<String>,
}

/// A variable compose would have substituted, and where its value came from.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Interpolated {
    pub variable: String,
    pub source: VariableSource,
    /// Where it is used: `db.environment.POSTGRES_PASSWORD`, ….
    pub used_in: Vec<String>,
}

/// Where the value substituted for a variable came from.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize)]
#[serde(rename_all = "camelCase")]
pub enum VariableSource {
    /// devloop's process environment (the shell `docker compose` would run in).
    Environment,
    /// The `.env` file beside the compose file.
    DotEnv,
    /// The project name (`COMPOSE_PROJECT_NAME`).
    ProjectName,
    /// Not set: the default written in the reference (`${VAR:-default}`) was used.
    Default,
    /// Not set and no default: the empty string, as compose substitutes.
    Unset,
}

impl VariableSource {
    /// How a person reads it: `from the environment`, `from .env`, ….
    pub fn describe(self) -> &'static str {
        match self {
            VariableSource::Environment => "from the environment",
            VariableSource::DotEnv => "from .env",
            VariableSource::ProjectName => "the project name",
            VariableSource::Default => "unset: its default",
            VariableSource::Unset => "unset: empty",
        }
    }
}

/// What a service devloop talks to answered (`devloop version -v`): its version, or why it could not be asked.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Reached {
    /// Where it is: the Docker host, or the API server's URL.
    pub address: String,
    /// The kube context (Kubernetes only).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub context: Option<String>,
    /// Its version (`20.10.24`, `v1.32.13`); `None` when it could not be reached.
    pub version: Option<String>,
    /// The API version it speaks (Docker only).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub api_version: Option<String>,
    /// Why it could not be reached.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
}

/// `devloop status`: what one deployment of the project holds, where (the `status` event's data).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct StatusReport {
    pub project: String,
    /// The kube context.
    pub context: String,
    /// The deployment's home namespace: where its record (the ApplySet parent) is.
    pub namespace: String,
    /// The record's name (`devloop-<project>`, a ConfigMap); `None` when nothing of the project is deployed there.
    pub applyset: Option<String>,
    /// Every namespace the deployment's objects are in.
    pub namespaces: Vec<String>,
    /// Every object of the deployment (Secrets by name only), by kind then namespace and name.
    pub members: Vec<Member>,
    /// The Deployments that are not a blue/green Service's copies.
    pub deployments: Vec<DeploymentState>,
    /// The blue/green Services (those with a `devloop.dev/live-color` annotation) and their copies.
    pub blue_green: Vec<ServiceRelease>,
}

/// One object of a deployment.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Member {
    pub kind: String,
    pub api_version: String,
    /// `None` for cluster-scoped objects.
    pub namespace: Option<String>,
    pub name: String,
}

/// A Deployment as the cluster has it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct DeploymentState {
    pub name: String,
    pub namespace: String,
    /// Pods ready (`status.readyReplicas`).
    pub ready: i64,
    /// Pods wanted (`spec.replicas`).
    pub desired: i64,
    /// The images of its containers, in order.
    pub images: Vec<String>,
    /// A blue/green copy's colour (label `devloop.dev/color`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub color: Option<String>,
    /// A blue/green copy's commit (annotation `devloop.dev/commit`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub commit: Option<String>,
    /// A copy scaled to zero: the replicas it had (annotation `devloop.dev/replicas`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub scaled_down_from: Option<i64>,
}

/// A blue/green Service: which colour receives traffic, since when, from which commit, and its copies.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct ServiceRelease {
    pub service: String,
    pub namespace: String,
    pub live_color: String,
    /// When traffic moved to the live colour (RFC 3339, as annotated).
    pub live_since: Option<String>,
    /// How long ago that was, in seconds, when status was read (`None` when `liveSince` is missing or unreadable).
    pub live_for_seconds: Option<u64>,
    pub commit: Option<String>,
    /// The images the live colour runs.
    pub images: Vec<String>,
    /// The colour that was live before (what `devloop rollback` returns to).
    pub previous_color: Option<String>,
    /// The copies its selector reaches, live colour first: their replicas say whether the previous colour still
    /// runs or was scaled to zero.
    pub copies: Vec<DeploymentState>,
}
