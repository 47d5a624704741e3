//! Status: the kinds the status check waits for; an object's `apiVersion` and `kind` → [`WorkloadKind`] and its
//! API resource. Pure lookup: it must not talk to the cluster.

use k8s_openapi::api::core::v1::Pod;
use kube::api::ApiResource;

/// The kinds the status check waits for.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub(super) enum WorkloadKind {
    Deployment,
    StatefulSet,
    DaemonSet,
    Job,
    Pod,
}

impl WorkloadKind {
    pub(super) fn of(api_version: &str, kind: &str) -> Option<Self> {
        let group = api_version.rsplit_once('/').map(|(g, _)| g).unwrap_or("");
        match (group, kind) {
            ("apps", "Deployment") => Some(Self::Deployment),
            ("apps", "StatefulSet") => Some(Self::StatefulSet),
            ("apps", "DaemonSet") => Some(Self::DaemonSet),
            ("batch", "Job") => Some(Self::Job),
            ("", "Pod") => Some(Self::Pod),
            _ => None,
        }
    }

    pub(super) fn api_resource(self) -> ApiResource {
        use k8s_openapi::api::apps::v1::{DaemonSet, Deployment, StatefulSet};
        use k8s_openapi::api::batch::v1::Job;
        match self {
            Self::Deployment => ApiResource::erase::<Deployment>(&()),
            Self::StatefulSet => ApiResource::erase::<StatefulSet>(&()),
            Self::DaemonSet => ApiResource::erase::<DaemonSet>(&()),
            Self::Job => ApiResource::erase::<Job>(&()),
            Self::Pod => ApiResource::erase::<Pod>(&()),
        }
    }
}
