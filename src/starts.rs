//! Container starts, Kubernetes (`devloop dev`): this project's pods in one namespace (one watch) → a signal each
//! time a container instance starts running — a new pod (replaced, rescheduled, scaled up) or a restarted
//! container — so the dev loop can give it what was synced into its image. Reads pods; changes nothing, prints
//! nothing.

use std::collections::HashSet;

use futures_util::StreamExt;
use k8s_openapi::api::core::v1::Pod;
use kube::Api;
use kube::runtime::watcher;
use tokio::sync::mpsc;
use tokio_util::sync::CancellationToken;

use crate::connectivity::Connectivity;

/// A running container instance: pod UID, container name, restart count (a restart is a new instance).
type Instance = (String, String, i32);

/// Sends on `started` each time a container of a pod matching `selector` in `namespace` starts running (once per
/// instance; the pods the watch lists first count too). Survives API server restarts; ends when `cancel` fires or
/// nobody listens any more.
pub async fn watch(
    namespace: &str,
    selector: &str,
    started: &mpsc::UnboundedSender<()>,
    cancel: &CancellationToken,
    connectivity: &Connectivity,
) {
    let pods: Api<Pod> = Api::namespaced(connectivity.client().clone(), namespace);
    let mut events =
        connectivity.resilient(watcher(pods, watcher::Config::default().labels(selector)));
    let mut seen: HashSet<Instance> = HashSet::new();
    loop {
        let event = tokio::select! {
            _ = cancel.cancelled() => return,
            e = events.next() => e,
        };
        match event {
            Some(watcher::Event::Apply(pod) | watcher::Event::InitApply(pod)) => {
                let fresh = running(&pod)
                    .into_iter()
                    .filter(|i| seen.insert(i.clone()))
                    .count();
                if fresh > 0 && started.send(()).is_err() {
                    return;
                }
            }
            Some(watcher::Event::Delete(pod)) => {
                let uid = pod.metadata.uid.unwrap_or_default();
                seen.retain(|(u, _, _)| *u != uid);
            }
            // A (re-)list: what is running is listed again; pods deleted meanwhile are forgotten with the rest.
            Some(watcher::Event::Init) => seen.clear(),
            Some(watcher::Event::InitDone) => {}
            None => return,
        }
    }
}

/// The container instances of `pod` that run now.
fn running(pod: &Pod) -> Vec<Instance> {
    let uid = pod.metadata.uid.clone().unwrap_or_default();
    pod.status
        .iter()
        .flat_map(|s| s.container_statuses.iter().flatten())
        .filter(|c| c.state.as_ref().is_some_and(|s| s.running.is_some()))
        .map(|c| (uid.clone(), c.name.clone(), c.restart_count))
        .collect()
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    fn pod(uid: &str, containers: &[(&str, i32, bool)]) -> Pod {
        serde_json::from_value(serde_json::json!({
            "metadata": {"name": "p", "uid": uid},
            "status": {"containerStatuses": containers.iter().map(|(name, restarts, up)| serde_json::json!({
                "name": name, "image": "i", "imageID": "", "ready": up, "restartCount": restarts,
                "state": if *up { serde_json::json!({"running": {}}) } else { serde_json::json!({"waiting": {}}) },
            })).collect::<Vec<_>>()},
        }))
        .unwrap()
    }

    #[test]
    fn only_running_containers_are_instances_and_a_restart_is_a_new_one() {
        assert_eq!(
            running(&pod("u1", &[("web", 0, true), ("side", 0, false)])),
            vec![("u1".into(), "web".into(), 0)]
        );
        assert_eq!(
            running(&pod("u1", &[("web", 1, true)])),
            vec![("u1".into(), "web".into(), 1)]
        );
        assert!(running(&pod("u2", &[])).is_empty());
    }
}
