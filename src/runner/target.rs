//! Runner, deploy targets: a target as the runner drives it — the deploy stage's [`Deployer`] (apply, prune, delete,
//! sync) plus the wait until what it applied is ready. For Kubernetes that wait is the status stage's, wired here so
//! that deploy and status never call each other; the Docker target checks its containers' health itself. Starts
//! nothing, prints nothing.

use std::future::Future;
use std::time::Duration;

use tokio_util::sync::CancellationToken;

use crate::deploy::docker::DockerTarget;
use crate::deploy::kube::KubeTarget;
use crate::deploy::{DeployError, DeployedSet, Deployer};
use crate::event::EventSink;

/// A deploy target the runner can wait on.
pub trait DeployTarget: Deployer {
    /// Waits until what `deploy` applied is ready, failing fast with a diagnosis when it cannot become ready.
    fn wait_ready(
        &self,
        deployed: &DeployedSet,
        deadline: Duration,
        events: &EventSink,
        cancel: &CancellationToken,
    ) -> impl Future<Output = Result<(), DeployError>> + Send;
}

impl DeployTarget for KubeTarget {
    async fn wait_ready(
        &self,
        deployed: &DeployedSet,
        deadline: Duration,
        events: &EventSink,
        cancel: &CancellationToken,
    ) -> Result<(), DeployError> {
        crate::status::wait(crate::status::StatusCheck {
            client: self.client(),
            objects: &deployed.applied,
            deadline,
            events,
            cancel,
        })
        .await
        .map(|_| ())
    }
}

impl DeployTarget for DockerTarget {
    async fn wait_ready(
        &self,
        deployed: &DeployedSet,
        deadline: Duration,
        events: &EventSink,
        cancel: &CancellationToken,
    ) -> Result<(), DeployError> {
        self.wait_until_ready(deployed, deadline, events, cancel)
            .await
    }
}
