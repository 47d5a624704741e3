//! Events, a leaf: what happened, as typed values → the user-facing contract (`--output json`, docs/events.md).
//! Stages emit them through an `EventSink`; only `output/` turns them into text. Fields are only ever added.
//! Every type an event carries is defined here, so the contract changes only where it is written; imports
//! nothing of the crate.

mod payload;
mod sink;

pub use payload::{
    ActiveProfile, BuiltArtifact, DeploymentState, Finding, Interpolated, Member, Reached,
    ServiceOutcome, ServiceRelease, StatusReport, VariableSource,
};
pub use sink::EventSink;

use serde::Serialize;

/// One thing that happened. Serialized as `{"type": "...", "data": {...}}`, one per line.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(
    tag = "type",
    content = "data",
    rename_all = "camelCase",
    rename_all_fields = "camelCase"
)]
pub enum Event {
    /// The config was loaded; which profiles are active and why.
    ConfigLoaded {
        file: String,
        project: String,
        profiles: Vec<ActiveProfile>,
    },
    /// An artifact's image for its current inputs already exists: no build.
    BuildCached {
        image: String,
        tag: String,
        key: String,
    },
    /// An artifact is being built, and why (what changed since its last build).
    BuildStarted {
        image: String,
        tag: String,
        key: String,
        reasons: Vec<String>,
    },
    /// The build reached a new step (`Step 2/5 : COPY . /app`).
    BuildStep { image: String, step: String },
    /// One line of build output.
    BuildOutput { image: String, line: String },
    /// The image was built.
    BuildFinished {
        image: String,
        tag: String,
        image_id: String,
        duration_ms: u64,
    },
    /// The build failed; `step` is the step that failed and `output` its last lines.
    BuildFailed {
        image: String,
        step: Option<String>,
        message: String,
        output: Vec<String>,
    },
    /// Pushing started.
    PushStarted { image: String, tag: String },
    /// The image is in the registry; `reference` is `repository:tag@digest`.
    Pushed {
        image: String,
        reference: String,
        digest: String,
        duration_ms: u64,
    },
    /// An image was loaded into the nodes of a local cluster (kind, k3d) that did not have it; `reference` is the
    /// name the nodes know it by (and the one deployed), `bytes` the size of the image archive sent to each node.
    ImageLoaded {
        image: String,
        reference: String,
        nodes: Vec<String>,
        bytes: u64,
        duration_ms: u64,
    },
    /// Loading an image into the nodes of a local cluster (kind, k3d) that lack it started.
    LoadStarted {
        image: String,
        reference: String,
        nodes: Vec<String>,
    },
    /// An image could not be loaded into a local cluster's nodes: the node, its `ctr` output and a hint.
    LoadFailed { image: String, message: String },
    /// All artifacts are ready: the references to deploy.
    BuildsComplete {
        builds: Vec<BuiltArtifact>,
        built: usize,
        cached: usize,
        duration_ms: u64,
    },
    /// A deploy starts: the cluster context and default namespace in use.
    DeployStarted {
        context: String,
        namespace: String,
        objects: usize,
    },
    /// A namespace the objects need did not exist and devloop created it (it is kept on delete).
    NamespaceCreated { namespace: String },
    /// One object was applied (`change`: created, configured or recreated).
    Applied {
        object: String,
        namespace: Option<String>,
        change: String,
    },
    /// An object this project deployed earlier is no longer rendered and was deleted.
    Pruned {
        object: String,
        namespace: Option<String>,
    },
    /// Everything was applied.
    DeployComplete {
        applied: usize,
        pruned: usize,
        duration_ms: u64,
    },
    /// A workload is rolling out (`2/3 replicas updated`).
    RolloutProgress {
        object: String,
        namespace: Option<String>,
        message: String,
    },
    /// A workload is ready (Deployment rolled out, Job complete, Pod ready).
    RolloutReady {
        object: String,
        namespace: Option<String>,
        duration_ms: u64,
    },
    /// A workload cannot become ready: the pod and container at fault, the reason (`ImagePullBackOff`,
    /// `CrashLoopBackOff`, …), its message, recent events and the last lines of the container's log.
    RolloutFailed {
        object: String,
        namespace: Option<String>,
        pod: Option<String>,
        container: Option<String>,
        reason: String,
        message: String,
        events: Vec<String>,
        logs: Vec<String>,
    },
    /// Every workload is ready.
    StatusComplete { ready: usize, duration_ms: u64 },
    /// An object was deleted (or, with `dryRun`, would be).
    Deleted {
        object: String,
        namespace: Option<String>,
        dry_run: bool,
    },
    /// A local port forwards to a cluster resource (`service/api:80`); `requestedPort` differs from the local
    /// port when that one was taken.
    PortForwardStarted {
        resource: String,
        namespace: String,
        port: String,
        address: String,
        requested_port: u16,
    },
    /// A forwarded connection could not reach a pod; the listener stays open and later connections retry.
    PortForwardFailed {
        resource: String,
        address: String,
        message: String,
    },
    /// Connections through a forward work again after a failure.
    PortForwardRecovered {
        resource: String,
        address: String,
        pod: String,
    },
    /// Connections through a forward now reach a pod of a new rollout.
    PortForwardRetargeted {
        resource: String,
        address: String,
        pod: String,
    },
    /// The cluster's API server cannot be reached (`error`: why the first attempt failed). Reported once, however
    /// many streams notice; they keep retrying with backoff.
    ClusterUnreachable { server: String, error: String },
    /// The API server answers again after `downMs` unreachable; watches, log streams and port-forwards resume.
    ClusterReachable { server: String, down_ms: u64 },
    /// One line a container of the project wrote; `workload` names what the pod belongs to.
    Log {
        pod: String,
        container: String,
        workload: String,
        line: String,
    },
    /// One dev-loop iteration deployed something: what changed, what was rebuilt or cached, and the times from
    /// the first file event (save) to built, applied and ready.
    Iteration {
        changed: Vec<String>,
        rebuilt: Vec<String>,
        cached: Vec<String>,
        /// Artifacts whose changed files were copied into their running containers instead of a rebuild.
        synced: Vec<String>,
        applied: usize,
        pruned: usize,
        built_ms: u64,
        applied_ms: u64,
        ready_ms: u64,
    },
    /// File sync: changed files of artifact `image` copied into (and deleted files removed from) its running
    /// containers, no rebuild.
    Synced {
        image: String,
        files: Vec<String>,
        /// Deleted files removed from the containers.
        deleted: Vec<String>,
        containers: usize,
        duration_ms: u64,
    },
    /// Containers that started from artifact `image` after files were synced into it (a replaced or restarted
    /// pod, a scale-up) got every file synced since the build: `containers` of them, no rebuild.
    SyncReplayed {
        image: String,
        containers: usize,
        duration_ms: u64,
    },
    /// Artifact `image` has sync rules but this iteration rebuilds it: `reason` says why, in one line.
    SyncSkipped { image: String, reason: String },
    /// An iteration failed (build, render, deploy or rollout); the loop keeps watching.
    IterationFailed { message: String },
    /// An iteration was abandoned because newer changes arrived; a new one starts with all changes merged.
    IterationCancelled { reason: String },
    /// Containers `dev` stopped while their images were rebuilt run again with their previous image, because no
    /// build replaced them: `reason` says why, in a few words.
    Restored {
        objects: Vec<String>,
        reason: String,
    },
    /// The dev loop stopped: save → ready over the session's saves (the start-up deploy is not one), and how
    /// many saves were rebuilt, synced, or served from the cache.
    DevStopped {
        iterations: usize,
        median_save_to_ready_ms: Option<u64>,
        /// With at least 10 saves.
        p90_save_to_ready_ms: Option<u64>,
        saves: usize,
        rebuilt: usize,
        synced: usize,
        cached: usize,
    },
    /// A lifecycle hook starts: its `phase` (`before-build`, `after-build`, `before-sync`, `after-sync`,
    /// `before-deploy`, `after-deploy`), the artifact it belongs to (build and sync hooks), its position in its
    /// list (from 1), the command as configured, and the container it runs in (`pod/container`; host hooks: none).
    HookStarted {
        phase: String,
        image: Option<String>,
        index: usize,
        command: Vec<String>,
        container: Option<String>,
    },
    /// One line a hook wrote (stdout or stderr): the command's own output, nothing else.
    HookOutput {
        phase: String,
        image: Option<String>,
        index: usize,
        container: Option<String>,
        line: String,
    },
    /// A hook exited with code 0.
    HookFinished {
        phase: String,
        image: Option<String>,
        index: usize,
        container: Option<String>,
        duration_ms: u64,
    },
    /// A hook failed: its exit code (none when it could not start, or a signal ended it), why, and its last lines.
    HookFailed {
        phase: String,
        image: Option<String>,
        index: usize,
        container: Option<String>,
        exit_code: Option<i64>,
        message: String,
        output: Vec<String>,
    },
    /// A step of a blue/green release of `service` (`run`, `deploy`, `rollback`): `step` is `started`, `verified`,
    /// `switched`, `keeping`, `scaledDown`, `removed`, `failed` or `rolledBack`; `color` the colour the step is about
    /// (the new copy's, or the one traffic went back to); `message` says it in one line.
    Release {
        service: String,
        namespace: String,
        step: String,
        color: String,
        message: String,
    },
    /// Something the user should know that does not stop the command.
    Warning { message: String },
    /// `devloop init --from-compose` wrote a devloop.yaml (`file`, or `-` for stdout): what each compose service
    /// became, what was not converted and why, what converted with a difference, which `${VAR}` were
    /// substituted (names and sources, never values) and the devloop profiles it defines.
    InitComplete {
        compose_file: String,
        file: String,
        project: String,
        services: Vec<ServiceOutcome>,
        containers: usize,
        artifacts: usize,
        not_converted: Vec<Finding>,
        notes: Vec<Finding>,
        interpolated: Vec<Interpolated>,
        profiles: Vec<String>,
    },
    /// `devloop init --from-skaffold` wrote a devloop.yaml (`file`, or `-` for stdout): the Skaffold configs read
    /// (dependencies first), how many artifacts it defines, what was not converted and why, what converted with a
    /// difference, the Skaffold profiles applied (`-p`) and the devloop profiles it defines.
    InitSkaffold {
        skaffold_file: String,
        file: String,
        project: Option<String>,
        configs: Vec<String>,
        artifacts: usize,
        not_converted: Vec<Finding>,
        notes: Vec<Finding>,
        applied: Vec<String>,
        profiles: Vec<String>,
    },
    /// `devloop version`: devloop's version; with `-v` also what the Docker daemon and the Kubernetes API server
    /// devloop would use answer (or why they cannot be reached).
    Version {
        devloop: String,
        docker: Option<Reached>,
        kubernetes: Option<Reached>,
    },
    /// `devloop status`: what the project has deployed where; blue/green Services' live colour, since when, from
    /// which commit, and their copies.
    Status(Box<StatusReport>),
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests;
