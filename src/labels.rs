//! Ownership marks, a leaf: the labels (and the field manager) devloop marks what it creates with, so prune,
//! delete, logs and status find exactly that and nothing of anyone else's. Declared once, here; imports nothing of
//! the crate.

/// The label every Kubernetes object devloop applies carries (the recommended `managed-by`); watches select on it.
pub const KUBE_MANAGED_BY: (&str, &str) = ("app.kubernetes.io/managed-by", "devloop");
/// The label naming the project (`metadata.name` of devloop.yaml) on Kubernetes objects.
pub const KUBE_PROJECT: &str = "devloop.dev/project";
/// The field manager devloop applies with; its `managedFields` entry dates the apply and proves an object is ours.
pub const FIELD_MANAGER: &str = "devloop";

/// Blue/green releases: the label naming a copy's colour (`blue`, `green`) on a copied Deployment, its selector and
/// pod template, and in the selector of the Service that sends traffic to it.
pub const KUBE_COLOR: &str = "devloop.dev/color";
/// The field manager of what a blue/green switch owns: the colour key of a Service's selector, the Service's
/// release annotations, and the replicas of a copy it scaled down. Separate from [`FIELD_MANAGER`], so a deploy's
/// apply of the rendered Service never takes the switch back.
pub const BLUE_GREEN_MANAGER: &str = "devloop-blue-green";
/// On a blue/green Service: the colour that receives traffic.
pub const ANNOTATION_LIVE_COLOR: &str = "devloop.dev/live-color";
/// On a blue/green Service: when traffic moved to the live colour (RFC 3339, UTC).
pub const ANNOTATION_LIVE_SINCE: &str = "devloop.dev/live-since";
/// On a blue/green Service: the colour that was live before (what `devloop rollback` returns to).
pub const ANNOTATION_PREVIOUS_COLOR: &str = "devloop.dev/previous-color";
/// On a blue/green copy (Deployment) and on its Service for the live one: the commit it was deployed from
/// (`GIT_COMMIT`, else `git rev-parse HEAD`, else `unknown`).
pub const ANNOTATION_COMMIT: &str = "devloop.dev/commit";
/// On a blue/green copy and on its Service for the live one: the images it runs, comma-separated references.
pub const ANNOTATION_IMAGES: &str = "devloop.dev/images";
/// On a blue/green copy: the Deployment of the manifests it is a copy of.
pub const ANNOTATION_COPY_OF: &str = "devloop.dev/copy-of";
/// On a blue/green copy scaled to zero: the replicas it had (what `devloop rollback` scales it back to).
pub const ANNOTATION_REPLICAS: &str = "devloop.dev/replicas";

/// The label every container, network and volume devloop creates on the Docker daemon carries.
pub const DOCKER_MANAGED_BY: (&str, &str) = ("dev.devloop.managed-by", "devloop");
/// The label naming the project on Docker objects.
pub const DOCKER_PROJECT: &str = "dev.devloop.project";
/// The label holding the digest of a container's effective config (image ID included).
pub const DOCKER_CONFIG: &str = "dev.devloop.config";
/// The label marking a container that runs an artifact devloop built (`true`).
pub const DOCKER_ARTIFACT: &str = "dev.devloop.artifact";
/// The label holding a container's name in `deploy.docker` (without the project prefix).
pub const DOCKER_CONTAINER: &str = "dev.devloop.container";
/// The label of a network sandbox (`devloop dev`), holding the name in `deploy.docker` of the container it serves.
pub const DOCKER_SANDBOX: &str = "dev.devloop.sandbox";

/// The labels devloop puts on every Kubernetes object of `project`.
pub fn kube_labels(project: &str) -> std::collections::BTreeMap<String, String> {
    std::collections::BTreeMap::from([
        (KUBE_MANAGED_BY.0.to_string(), KUBE_MANAGED_BY.1.to_string()),
        (KUBE_PROJECT.to_string(), project.to_string()),
    ])
}

/// The label selector of every Kubernetes object devloop manages ([`KUBE_MANAGED_BY`] as `key=value`).
pub const KUBE_MANAGED_SELECTOR: &str = "app.kubernetes.io/managed-by=devloop";

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_selector_is_the_label() {
        assert_eq!(
            KUBE_MANAGED_SELECTOR,
            format!("{}={}", KUBE_MANAGED_BY.0, KUBE_MANAGED_BY.1)
        );
    }
}
