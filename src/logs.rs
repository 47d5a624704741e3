//! Logs: the project's pods (by devloop's labels) → one multiplexed stream of `Log` events, every container,
//! each new pod and each container restart followed from its first line. Emits events; never prints, spawns
//! nothing (all streams are polled by the caller's task).

use std::collections::HashSet;
use std::pin::Pin;

use futures_util::stream::{SelectAll, Stream, StreamExt};
use futures_util::{AsyncBufReadExt, TryStreamExt};
use k8s_openapi::api::core::v1::Pod;
use kube::Client;
use kube::api::{Api, LogParams};
use kube::runtime::{WatchStreamExt, watcher};
use tokio_util::sync::CancellationToken;

use crate::deploy::DeployError;
use crate::event::{Event, EventSink};

/// One log line with where it came from, or the end of a container instance's stream.
enum Item {
    Line {
        pod: String,
        container: String,
        workload: String,
        line: String,
    },
    Ended {
        key: StreamKey,
    },
}

/// A container instance: pod UID, container name, restart count.
type StreamKey = (String, String, i32);

type LineStream = Pin<Box<dyn Stream<Item = Item> + Send>>;

/// Follows the logs of every pod matching `selector` in `namespace` until `cancel` fires.
pub async fn follow(
    client: &Client,
    namespace: &str,
    selector: &str,
    events: &EventSink,
    cancel: &CancellationToken,
) -> Result<(), DeployError> {
    let pods: Api<Pod> = Api::namespaced(client.clone(), namespace);
    let mut watch = watcher(pods.clone(), watcher::Config::default().labels(selector))
        .applied_objects()
        .boxed();
    let mut streams: SelectAll<LineStream> = SelectAll::new();
    let mut started: HashSet<StreamKey> = HashSet::new();
    loop {
        tokio::select! {
            _ = cancel.cancelled() => return Ok(()),
            pod = watch.next() => match pod {
                Some(Ok(pod)) => {
                    for (key, container) in to_stream(&pod, &started) {
                        started.insert(key.clone());
                        let name = pod.metadata.name.clone().unwrap_or_default();
                        streams.push(container_stream(&pods, &name, &container, workload_of(&pod), key));
                    }
                }
                Some(Err(e)) => {
                    // The watcher re-lists and resumes by itself; a broken watch is worth a note, not an exit.
                    tracing::debug!(error = %e, "pod watch error");
                }
                None => return Ok(()),
            },
            Some(item) = streams.next(), if !streams.is_empty() => match item {
                Item::Line { pod, container, workload, line } => events.emit(Event::Log { pod, container, workload, line }),
                Item::Ended { key } => {
                    // The instance stopped; a restart shows up as a pod update with a new restart count.
                    tracing::debug!(?key, "log stream ended");
                }
            },
        }
    }
}

/// Containers of `pod` whose current instance has output to follow and is not followed yet.
fn to_stream(pod: &Pod, started: &HashSet<StreamKey>) -> Vec<(StreamKey, String)> {
    let uid = pod.metadata.uid.clone().unwrap_or_default();
    let Some(status) = &pod.status else {
        return Vec::new();
    };
    let all = status
        .init_container_statuses
        .iter()
        .flatten()
        .chain(status.container_statuses.iter().flatten());
    all.filter(|c| {
        c.state
            .as_ref()
            .is_some_and(|s| s.running.is_some() || s.terminated.is_some())
    })
    .map(|c| {
        (
            (uid.clone(), c.name.clone(), c.restart_count),
            c.name.clone(),
        )
    })
    .filter(|(key, _)| !started.contains(key))
    .collect()
}

/// The workload a pod belongs to, for a stable prefix colour: its `generateName` without the pod-template hash.
fn workload_of(pod: &Pod) -> String {
    let name = pod.metadata.name.clone().unwrap_or_default();
    let Some(generate) = pod.metadata.generate_name.as_deref() else {
        return name;
    };
    let base = generate.trim_end_matches('-');
    match pod
        .metadata
        .labels
        .as_ref()
        .and_then(|l| l.get("pod-template-hash"))
    {
        Some(hash) => base
            .strip_suffix(&format!("-{hash}"))
            .unwrap_or(base)
            .to_string(),
        None => base.to_string(),
    }
}

fn container_stream(
    pods: &Api<Pod>,
    pod: &str,
    container: &str,
    workload: String,
    key: StreamKey,
) -> LineStream {
    let pods = pods.clone();
    let (pod, container) = (pod.to_string(), container.to_string());
    let lp = LogParams {
        follow: true,
        container: Some(container.clone()),
        ..Default::default()
    };
    let end = key.clone();
    let lines = async move {
        match pods.log_stream(&pod, &lp).await {
            Ok(reader) => reader
                .lines()
                .map_ok(move |line| Item::Line {
                    pod: pod.clone(),
                    container: container.clone(),
                    workload: workload.clone(),
                    line,
                })
                .filter_map(|r| async move { r.ok() })
                .boxed(),
            Err(e) => {
                tracing::debug!(error = %e, %pod, %container, "log stream failed");
                futures_util::stream::empty().boxed()
            }
        }
    };
    futures_util::stream::once(lines)
        .flatten()
        .chain(futures_util::stream::once(async move {
            Item::Ended { key: end }
        }))
        .boxed()
}

/// Follows logs until Ctrl-C (for `devloop run --tail`).
pub async fn follow_until_ctrl_c(
    client: &Client,
    namespaces: &[String],
    selector: &str,
    events: &EventSink,
) -> Result<(), DeployError> {
    let cancel = CancellationToken::new();
    let stop = cancel.clone();
    let all = futures_util::future::try_join_all(
        namespaces
            .iter()
            .map(|ns| follow(client, ns, selector, events, &cancel)),
    );
    tokio::select! {
        r = all => r.map(|_| ()),
        _ = tokio::signal::ctrl_c() => {
            stop.cancel();
            Ok(())
        }
    }
}

/// Colour index (0..6) for a workload: stable across runs and pods.
pub fn colour_of(workload: &str) -> usize {
    // FNV-1a: tiny, stable, no dependency.
    let mut h: u32 = 0x811c_9dc5;
    for b in workload.bytes() {
        h ^= u32::from(b);
        h = h.wrapping_mul(0x0100_0193);
    }
    (h % 6) as usize
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn workload_names_drop_the_template_hash() {
        let mut pod = Pod::default();
        pod.metadata.name = Some("api-5d9c7b8f6-x7k2p".into());
        pod.metadata.generate_name = Some("api-5d9c7b8f6-".into());
        pod.metadata.labels =
            Some([("pod-template-hash".to_string(), "5d9c7b8f6".to_string())].into());
        assert_eq!(workload_of(&pod), "api");
        pod.metadata.labels = None;
        pod.metadata.generate_name = Some("migrate-".into());
        assert_eq!(workload_of(&pod), "migrate");
        assert_eq!(colour_of("api"), colour_of("api"));
    }
}
