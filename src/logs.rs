//! Logs: the project's pods (by devloop's labels) → one multiplexed stream of `Log` events, every container,
//! each new pod and each container restart followed from its first line. A stream cut off (the API server went
//! away) resumes where it stopped — from its last line's timestamp, without repeating lines — as does the pod
//! watch (through [`Connectivity`]). Emits events; never prints, spawns nothing (all streams are polled by the
//! caller's task).

use std::collections::{HashMap, HashSet};
use std::pin::Pin;
use std::time::Duration;

use futures_util::stream::{SelectAll, Stream, StreamExt};
use futures_util::{AsyncBufReadExt, TryStreamExt};
use k8s_openapi::api::core::v1::Pod;
use k8s_openapi::jiff::Timestamp;
use kube::api::{Api, LogParams};
use kube::runtime::watcher;
use tokio_util::sync::CancellationToken;

use crate::connectivity::{Backoff, Connectivity, is_connection_error, root_cause};
use crate::deploy::DeployError;
use crate::event::{Event, EventSink};

/// One log line with where it came from, the end of a container instance's stream, or the time to reopen one.
enum Item {
    Line {
        key: StreamKey,
        pod: String,
        container: String,
        workload: String,
        /// The kubelet's timestamp of the line (`timestamps=true`).
        at: Option<Timestamp>,
        line: String,
    },
    Ended {
        key: StreamKey,
        /// Whether reopening can help: the stream ended or the API server could not be reached (not when the API
        /// answered an error, e.g. the pod is gone).
        retry: bool,
    },
    Reopen {
        key: StreamKey,
    },
}

/// A container instance: pod UID, container name, restart count.
type StreamKey = (String, String, i32);

type LineStream = Pin<Box<dyn Stream<Item = Item> + Send>>;

/// Where a followed container instance's stream is: the last line's timestamp and how many lines carried it
/// (a resumed stream starts at that second and skips what was shown).
#[derive(Debug, Default)]
struct Position {
    last: Option<Timestamp>,
    at_last: usize,
    /// Lines at `last` seen again since the stream was reopened.
    replayed: usize,
    backoff: Backoff,
}

impl Position {
    /// Whether a line stamped `at` is new (and if so, it becomes the position).
    fn admit(&mut self, at: Option<Timestamp>) -> bool {
        let (Some(at), Some(last)) = (at, self.last) else {
            if at.is_some() {
                self.last = at;
                self.at_last = 1;
            }
            return true;
        };
        if at < last {
            return false;
        }
        if at == last {
            if self.replayed < self.at_last {
                self.replayed += 1;
                return false;
            }
            self.at_last += 1;
            self.replayed = self.at_last;
            return true;
        }
        self.last = Some(at);
        self.at_last = 1;
        self.replayed = 1;
        true
    }

    /// A stream is reopened: lines at the last timestamp come again.
    fn reopened(&mut self) {
        self.replayed = 0;
    }
}

/// Follows the logs of every pod matching `selector` in `namespace` until `cancel` fires. Cut-off streams resume;
/// `connectivity` hears about connection trouble and says once that the cluster is unreachable and once that it is
/// back.
pub async fn follow(
    namespace: &str,
    selector: &str,
    events: &EventSink,
    cancel: &CancellationToken,
    connectivity: &Connectivity,
) -> Result<(), DeployError> {
    let pods: Api<Pod> = Api::namespaced(connectivity.client().clone(), namespace);
    let mut watch = connectivity.resilient(watcher(
        pods.clone(),
        watcher::Config::default().labels(selector),
    ));
    let mut streams: SelectAll<LineStream> = SelectAll::new();
    let mut followed: HashMap<StreamKey, Position> = HashMap::new();
    // The latest state of each pod, by UID: whether a cut-off container instance still runs.
    let mut latest: HashMap<String, Pod> = HashMap::new();
    // During a (re-)list, the pods listed so far: those not listed are gone.
    let mut listing: Option<HashSet<String>> = None;
    loop {
        tokio::select! {
            _ = cancel.cancelled() => return Ok(()),
            event = watch.next() => match event {
                Some(watcher::Event::Apply(pod) | watcher::Event::InitApply(pod)) => {
                    for (key, container) in to_stream(&pod, &followed) {
                        followed.insert(key.clone(), Position::default());
                        let name = pod.metadata.name.clone().unwrap_or_default();
                        streams.push(container_stream(&pods, &name, &container, workload_of(&pod), key, None, connectivity.clone()));
                    }
                    if let Some(uid) = pod.metadata.uid.clone() {
                        if let Some(listed) = &mut listing {
                            listed.insert(uid.clone());
                        }
                        latest.insert(uid, pod);
                    }
                }
                Some(watcher::Event::Delete(pod)) => {
                    if let Some(uid) = &pod.metadata.uid {
                        forget(uid, &mut latest, &mut followed);
                    }
                }
                Some(watcher::Event::Init) => listing = Some(HashSet::new()),
                Some(watcher::Event::InitDone) => {
                    // A re-list after an outage: pods deleted meanwhile were never reported as deleted.
                    if let Some(listed) = listing.take() {
                        let gone: Vec<String> = latest.keys().filter(|uid| !listed.contains(*uid)).cloned().collect();
                        for uid in gone {
                            forget(&uid, &mut latest, &mut followed);
                        }
                    }
                }
                None => return Ok(()),
            },
            Some(item) = streams.next(), if !streams.is_empty() => match item {
                Item::Line { key, pod, container, workload, at, line } => {
                    let Some(position) = followed.get_mut(&key) else { continue };
                    position.backoff.reset();
                    if position.admit(at) {
                        events.emit(Event::Log { pod, container, workload, line });
                    }
                }
                Item::Ended { key, retry } => {
                    // A stream that ends while its container still runs was cut off: reopen it after a pause
                    // (at once when the cluster is found reachable again). A restart is a new key.
                    if retry && still_running(&latest, &key) && let Some(position) = followed.get_mut(&key) {
                        let delay = position.backoff.next_delay();
                        tracing::debug!(?key, ?delay, "log stream cut off; reopening");
                        streams.push(reopen_after(key, delay, connectivity.clone()));
                    }
                }
                Item::Reopen { key } => {
                    let pod = latest.get(&key.0).filter(|_| still_running(&latest, &key));
                    if let (Some(pod), Some(position)) = (pod, followed.get_mut(&key)) {
                        position.reopened();
                        let name = pod.metadata.name.clone().unwrap_or_default();
                        let container = key.1.clone();
                        // The API rounds `sinceTime` to the second: start a second early; `admit` drops repeats.
                        let since = position.last.and_then(|t| t.checked_sub(jiff_second()).ok());
                        streams.push(container_stream(&pods, &name, &container, workload_of(pod), key, since, connectivity.clone()));
                    }
                }
            },
        }
    }
}

/// Drops what is known about a pod that no longer exists.
fn forget(
    uid: &str,
    latest: &mut HashMap<String, Pod>,
    followed: &mut HashMap<StreamKey, Position>,
) {
    latest.remove(uid);
    followed.retain(|key, _| key.0 != uid);
}

fn jiff_second() -> k8s_openapi::jiff::SignedDuration {
    k8s_openapi::jiff::SignedDuration::from_secs(1)
}

/// Whether the container instance `key` runs, as far as the pod watch knows (the pod exists, is not being
/// deleted, and its container runs with the same restart count).
fn still_running(latest: &HashMap<String, Pod>, key: &StreamKey) -> bool {
    let Some(pod) = latest.get(&key.0) else {
        return false;
    };
    if pod.metadata.deletion_timestamp.is_some() {
        return false;
    }
    let Some(status) = &pod.status else {
        return false;
    };
    status
        .init_container_statuses
        .iter()
        .flatten()
        .chain(status.container_statuses.iter().flatten())
        .any(|c| {
            c.name == key.1
                && c.restart_count == key.2
                && c.state.as_ref().is_some_and(|s| s.running.is_some())
        })
}

/// A stream that yields `Reopen { key }` after `delay`, or sooner when the cluster is found reachable again.
fn reopen_after(key: StreamKey, delay: Duration, connectivity: Connectivity) -> LineStream {
    futures_util::stream::once(async move {
        connectivity.pause(delay).await;
        Item::Reopen { key }
    })
    .boxed()
}

/// Containers of `pod` whose current instance has output to follow and is not followed yet.
fn to_stream(pod: &Pod, started: &HashMap<StreamKey, Position>) -> Vec<(StreamKey, String)> {
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
    .filter(|(key, _)| !started.contains_key(key))
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
    since: Option<Timestamp>,
    connectivity: Connectivity,
) -> LineStream {
    let pods = pods.clone();
    let (pod, container) = (pod.to_string(), container.to_string());
    let lp = LogParams {
        follow: true,
        container: Some(container.clone()),
        timestamps: true,
        since_time: since,
        ..Default::default()
    };
    let opened = async move {
        match pods.log_stream(&pod, &lp).await {
            Ok(reader) => {
                connectivity.found();
                let end = key.clone();
                reader
                    .lines()
                    .map_ok(move |raw| {
                        let (at, line) = split_timestamp(&raw);
                        Item::Line {
                            key: key.clone(),
                            pod: pod.clone(),
                            container: container.clone(),
                            workload: workload.clone(),
                            at,
                            line: line.to_string(),
                        }
                    })
                    // A read error ends the stream (the connection broke); the caller decides whether to reopen.
                    .take_while(|r| {
                        if let Err(e) = r {
                            tracing::debug!(error = %e, "log stream broke");
                        }
                        std::future::ready(r.is_ok())
                    })
                    .filter_map(|r| async move { r.ok() })
                    .chain(futures_util::stream::once(async move {
                        Item::Ended {
                            key: end,
                            retry: true,
                        }
                    }))
                    .boxed()
            }
            Err(e) => {
                tracing::debug!(error = %e, %pod, %container, "log stream failed");
                let unreached = is_connection_error(&e);
                if unreached {
                    connectivity.lost(&root_cause(&e));
                }
                futures_util::stream::once(async move {
                    Item::Ended {
                        key,
                        retry: unreached,
                    }
                })
                .boxed()
            }
        }
    };
    futures_util::stream::once(opened).flatten().boxed()
}

/// Splits the kubelet's `2026-11-22T03:09:25.789357079Z ` prefix off a line (`timestamps=true`); a line without
/// one is kept whole.
fn split_timestamp(raw: &str) -> (Option<Timestamp>, &str) {
    match raw.split_once(' ') {
        Some((ts, rest)) => match ts.parse::<Timestamp>() {
            Ok(at) => (Some(at), rest),
            Err(_) => (None, raw),
        },
        None => match raw.parse::<Timestamp>() {
            // An empty line: only the timestamp.
            Ok(at) => (Some(at), ""),
            Err(_) => (None, raw),
        },
    }
}

/// Follows the logs of every pod matching `selector` in each of `namespaces` until `cancel` fires (for
/// `devloop run --tail`).
pub async fn follow_all(
    namespaces: &[String],
    selector: &str,
    events: &EventSink,
    cancel: &CancellationToken,
    connectivity: &Connectivity,
) -> Result<(), DeployError> {
    futures_util::future::try_join_all(
        namespaces
            .iter()
            .map(|ns| follow(ns, selector, events, cancel, connectivity)),
    )
    .await
    .map(|_| ())
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
    }

    #[test]
    fn a_reopened_stream_shows_only_lines_after_the_last_one_shown() {
        let (a, line_a) = split_timestamp("2026-11-22T03:09:25.5Z first");
        let (b, _) = split_timestamp("2026-11-22T03:09:26Z second");
        let (b2, _) = split_timestamp("2026-11-22T03:09:26Z second, same stamp");
        let (c, _) = split_timestamp("2026-11-22T03:09:27.25Z third");
        assert_eq!(line_a, "first");
        assert_eq!(split_timestamp("no stamp"), (None, "no stamp"));
        let mut p = Position::default();
        assert!(p.admit(a) && p.admit(b) && p.admit(b2));
        // Cut off here; the reopened stream starts a second early and repeats a, b, b2.
        p.reopened();
        assert!(!p.admit(a) && !p.admit(b) && !p.admit(b2));
        assert!(p.admit(c));
        p.reopened();
        assert!(!p.admit(c));
        assert!(p.admit(c), "a second line with the same stamp is new");
    }
}
