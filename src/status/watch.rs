//! Status: the watches of the workloads and their pods (devloop's label; one per kind and namespace) → the objects
//! each currently sees ([`Watches`]), folded from watcher events, reconnecting with devloop's backoff. It only reads
//! the cluster and must not judge a rollout.

use std::collections::BTreeMap;
use std::pin::Pin;

use futures_util::stream::{Stream, StreamExt};
use kube::api::{Api, DynamicObject};
use kube::runtime::{WatchStreamExt, watcher};
use serde_json::Value;

use crate::deploy::DeployError;

use super::fields::str_at;
use super::kind::WorkloadKind;
use super::selector::JOB_NAME_LABEL;
use super::workload::Workload;

/// The label every object devloop applies carries; the watches select on it.
pub(super) use crate::labels::KUBE_MANAGED_SELECTOR as MANAGED_BY;

/// What one watch covers.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) enum Source {
    /// Workload objects of one kind in one namespace (devloop's label).
    Workloads {
        kind: WorkloadKind,
        namespace: String,
    },
    /// Pods in one namespace, by label selector.
    Pods { namespace: String, selector: String },
}

impl Source {
    /// The kind of object the watch returns.
    fn kind(&self) -> WorkloadKind {
        match self {
            Source::Workloads { kind, .. } => *kind,
            Source::Pods { .. } => WorkloadKind::Pod,
        }
    }
}

/// The objects one watch currently sees.
pub(super) struct Watched {
    pub(super) source: Source,
    pub(super) objects: BTreeMap<String, Value>,
    /// Objects of a re-list in progress (`Init` … `InitDone`).
    pub(super) relist: Option<BTreeMap<String, Value>>,
    /// The first list is complete: absence now means the object does not exist.
    pub(super) synced: bool,
}

/// The state of every watch.
pub(super) struct Watches {
    pub(super) watched: Vec<Watched>,
}

impl Watches {
    /// Folds one watcher event into the state. Returns true when something changed.
    pub(super) fn apply(&mut self, index: usize, event: watcher::Event<DynamicObject>) -> bool {
        let Some(w) = self.watched.get_mut(index) else {
            return false;
        };
        let kind = w.source.kind();
        match event {
            watcher::Event::Init => {
                w.relist = Some(BTreeMap::new());
                false
            }
            watcher::Event::InitApply(obj) => {
                if let Some((name, value)) = to_value(obj, kind) {
                    w.relist
                        .get_or_insert_with(BTreeMap::new)
                        .insert(name, value);
                }
                false
            }
            watcher::Event::InitDone => {
                w.objects = w.relist.take().unwrap_or_default();
                w.synced = true;
                true
            }
            watcher::Event::Apply(obj) => match to_value(obj, kind) {
                Some((name, value)) => {
                    w.objects.insert(name, value);
                    true
                }
                None => false,
            },
            watcher::Event::Delete(obj) => {
                let name = obj.metadata.name.unwrap_or_default();
                w.objects.remove(&name).is_some()
            }
        }
    }

    fn source_index(&self, source: &Source) -> Option<usize> {
        self.watched.iter().position(|w| &w.source == source)
    }

    /// The pods the watches relevant to `workload` see.
    fn pods_for<'w>(&'w self, workload: &Workload) -> impl Iterator<Item = &'w Value> + 'w {
        let wanted = pod_source(workload);
        self.watched
            .iter()
            .filter(move |w| w.source == wanted)
            .flat_map(|w| w.objects.values())
    }

    /// The workload's object as its watch sees it: `Some(None)` when the watch is synced and it is gone.
    pub(super) fn workload_object(&self, workload: &Workload) -> Option<Option<Value>> {
        let source = match workload.kind {
            WorkloadKind::Pod => Source::Pods {
                namespace: workload.namespace.clone(),
                selector: MANAGED_BY.to_string(),
            },
            kind => Source::Workloads {
                kind,
                namespace: workload.namespace.clone(),
            },
        };
        let w = &self.watched[self.source_index(&source)?];
        let found = w
            .objects
            .get(&workload.reference.name)
            .filter(|o| {
                workload.uid.is_none() || str_at(o, "/metadata/uid") == workload.uid.as_deref()
            })
            .cloned();
        match found {
            Some(o) => Some(Some(o)),
            None if w.synced => Some(None),
            None => None,
        }
    }
}

/// The pod watch that covers a workload's pods.
pub(super) fn pod_source(workload: &Workload) -> Source {
    match workload.kind {
        WorkloadKind::Job => Source::Pods {
            namespace: workload.namespace.clone(),
            selector: format!("{JOB_NAME_LABEL}={}", workload.reference.name),
        },
        _ => Source::Pods {
            namespace: workload.namespace.clone(),
            selector: MANAGED_BY.to_string(),
        },
    }
}

/// A watched object as JSON, with the `kind`/`apiVersion` list items lack.
pub(super) fn to_value(obj: DynamicObject, kind: WorkloadKind) -> Option<(String, Value)> {
    let name = obj.metadata.name.clone()?;
    let mut value = serde_json::to_value(&obj).ok()?;
    let ar = kind.api_resource();
    if let Some(map) = value.as_object_mut() {
        map.entry("apiVersion")
            .or_insert_with(|| Value::String(ar.api_version.clone()));
        map.entry("kind")
            .or_insert_with(|| Value::String(ar.kind.clone()));
    }
    Some((name, value))
}

type WatchStream = Pin<
    Box<dyn Stream<Item = (usize, Result<watcher::Event<DynamicObject>, watcher::Error>)> + Send>,
>;

pub(super) fn watch(client: &kube::Client, index: usize, source: &Source) -> WatchStream {
    let (namespace, selector) = match source {
        Source::Workloads { namespace, .. } => (namespace.as_str(), MANAGED_BY),
        Source::Pods {
            namespace,
            selector,
        } => (namespace.as_str(), selector.as_str()),
    };
    let api: Api<DynamicObject> =
        Api::namespaced_with(client.clone(), namespace, &source.kind().api_resource());
    let config = watcher::Config::default().labels(selector);
    // devloop's reconnect backoff (≤ 4 s) rather than kube's default (≤ 30 s): a rollout wait that spans an API
    // server restart resumes within seconds of the return.
    watcher(api, config)
        .backoff(crate::connectivity::Backoff::new())
        .map(move |r| (index, r))
        .boxed()
}

impl Workload {
    /// The current pods as the watches see them.
    pub(super) fn pods<'w>(&self, watches: &'w Watches) -> Vec<&'w Value> {
        self.current_pods(watches.pods_for(self))
    }
}

/// Errors that retrying cannot fix: the cluster refuses to show what we wait for.
pub(super) fn fatal_watch_error(e: &watcher::Error, source: &Source) -> Option<DeployError> {
    let status = match e {
        watcher::Error::InitialListFailed(kube::Error::Api(s))
        | watcher::Error::WatchStartFailed(kube::Error::Api(s))
        | watcher::Error::WatchFailed(kube::Error::Api(s)) => s,
        _ => return None,
    };
    if !matches!(status.code, 401 | 403 | 404) {
        return None;
    }
    let (what, namespace) = match source {
        Source::Workloads { kind, namespace } => (kind.api_resource().plural, namespace),
        Source::Pods { namespace, .. } => ("pods".to_string(), namespace),
    };
    let hint = match status.code {
        401 | 403 => Some("the status check needs `list` and `watch` on the workloads and pods it waits for, `list` on events and `get` on pods/log".to_string()),
        _ => None,
    };
    Some(DeployError::Api {
        message: format!(
            "cannot watch {what} in namespace `{namespace}` for the status check: {}",
            status.message
        ),
        hint,
    })
}
