//! Render: the built-in workload kinds; (group, kind) → where their pod spec and pod template metadata live.
//! Pure lookup: it must not change objects.

/// How a workload kind nests its pods.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Workload {
    /// A Pod: the pod spec is `spec`, its metadata is the object's.
    Pod,
    /// A PodTemplate: `template.spec`.
    PodTemplate,
    /// Deployment, StatefulSet, DaemonSet, ReplicaSet, ReplicationController: `spec.template`.
    Controller {
        /// ReplicationController defaults its selector from the template labels when it has none.
        selector_defaults_to_template: bool,
    },
    /// A Job: `spec.template`, immutable once created.
    Job,
    /// A CronJob: `spec.jobTemplate` holds a Job spec, whose `template` is the pod template.
    CronJob,
}

impl Workload {
    /// Classifies by group and kind; versions do not matter (`batch/v1` and `batch/v1beta1` CronJobs are alike).
    pub(crate) fn of(group: &str, kind: &str) -> Option<Self> {
        match (group, kind) {
            ("", "Pod") => Some(Self::Pod),
            ("", "PodTemplate") => Some(Self::PodTemplate),
            ("", "ReplicationController") => Some(Self::Controller {
                selector_defaults_to_template: true,
            }),
            ("apps" | "extensions", "Deployment" | "StatefulSet" | "DaemonSet" | "ReplicaSet") => {
                Some(Self::Controller {
                    selector_defaults_to_template: false,
                })
            }
            ("batch", "Job") => Some(Self::Job),
            ("batch", "CronJob") => Some(Self::CronJob),
            _ => None,
        }
    }

    /// The path from the object to its pod spec.
    pub(crate) fn pod_spec(self) -> &'static [&'static str] {
        match self {
            Self::Pod => &["spec"],
            Self::PodTemplate => &["template", "spec"],
            Self::Controller { .. } | Self::Job => &["spec", "template", "spec"],
            Self::CronJob => &["spec", "jobTemplate", "spec", "template", "spec"],
        }
    }
}

/// The fields of a pod spec that hold containers with an `image`.
pub(crate) const CONTAINER_LISTS: [&str; 3] =
    ["containers", "initContainers", "ephemeralContainers"];

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn classifies_by_group_and_kind() {
        assert_eq!(
            Workload::of("apps", "Deployment"),
            Some(Workload::Controller {
                selector_defaults_to_template: false
            })
        );
        assert_eq!(
            Workload::of("extensions", "DaemonSet"),
            Some(Workload::Controller {
                selector_defaults_to_template: false
            })
        );
        assert_eq!(
            Workload::of("", "ReplicationController"),
            Some(Workload::Controller {
                selector_defaults_to_template: true
            })
        );
        assert_eq!(Workload::of("batch", "CronJob"), Some(Workload::CronJob));
        // A custom resource that reuses a built-in kind name is not a built-in workload.
        assert_eq!(Workload::of("example.com", "Deployment"), None);
        assert_eq!(Workload::of("", "Deployment"), None);
        assert_eq!(Workload::of("argoproj.io", "Rollout"), None);
    }
}
