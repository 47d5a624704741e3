//! Runner, deploy targets: a target as the runner drives it — the deploy stage's [`Deployer`] (apply, prune, delete,
//! sync) plus the wait until what it applied is ready, and what deploy hooks need (the running containers, exec,
//! the variables). For Kubernetes that wait is the status stage's, wired here so
//! that deploy and status never call each other; the Docker target checks its containers' health itself. Starts
//! nothing, prints nothing.

use std::future::Future;
use std::time::Duration;

use tokio_util::sync::CancellationToken;

use crate::deploy::docker::{DockerPlan, DockerTarget};
use crate::deploy::kube::{ExecOutcome, KubePlan, KubeTarget, namespaces_of};
use crate::deploy::{DeployError, DeployedSet, Deployer};
use crate::event::EventSink;

/// A running container of this project, where a container hook can run.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct TargetContainer {
    /// `None` on targets without namespaces (Docker).
    pub namespace: Option<String>,
    /// The pod's name (Docker: the container's name in `deploy.docker`).
    pub pod: String,
    pub container: String,
}

impl TargetContainer {
    /// `pod/container`, as hook output names it.
    pub fn name(&self) -> String {
        format!("{}/{}", self.pod, self.container)
    }
}

/// What a command run in a container did.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ExecResult {
    pub stdout: Vec<u8>,
    pub stderr: Vec<u8>,
    /// The command's exit code; `None` when the target could not tell (it was killed, or the stream broke).
    pub exit_code: Option<i64>,
}

/// A deploy target the runner can wait on, and run deploy hooks against.
pub trait DeployTarget: Deployer {
    /// Waits until what `deploy` applied is ready, failing fast with a diagnosis when it cannot become ready.
    fn wait_ready(
        &self,
        deployed: &DeployedSet,
        deadline: Duration,
        events: &EventSink,
        cancel: &CancellationToken,
    ) -> impl Future<Output = Result<(), DeployError>> + Send;

    /// The variables deploy hooks get about where `plan` goes (Kubernetes: the context and the namespaces).
    fn hook_env(&self, plan: &Self::Plan) -> Vec<(String, String)> {
        let _ = plan;
        Vec::new()
    }

    /// The running containers of this project where `plan` deploys (container hooks pick theirs by name).
    fn running_containers(
        &self,
        plan: &Self::Plan,
    ) -> impl Future<Output = Result<Vec<TargetContainer>, DeployError>> + Send;

    /// Runs `argv` (no shell) in `container` and collects what it wrote and its exit code.
    fn exec(
        &self,
        container: &TargetContainer,
        argv: &[String],
    ) -> impl Future<Output = Result<ExecResult, DeployError>> + Send;
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

    fn hook_env(&self, plan: &KubePlan) -> Vec<(String, String)> {
        crate::hook::both(vec![
            ("KUBE_CONTEXT", self.context.clone()),
            (
                "NAMESPACES",
                namespaces_of(&plan.objects, &self.namespace).join(","),
            ),
        ])
    }

    async fn running_containers(
        &self,
        plan: &KubePlan,
    ) -> Result<Vec<TargetContainer>, DeployError> {
        let namespaces = namespaces_of(&plan.objects, &self.namespace);
        Ok(self
            .running_pods(&namespaces)
            .await?
            .into_iter()
            .flat_map(|p| {
                p.containers.into_iter().map(move |c| TargetContainer {
                    namespace: Some(p.namespace.clone()),
                    pod: p.name.clone(),
                    container: c.name,
                })
            })
            .collect())
    }

    async fn exec(
        &self,
        container: &TargetContainer,
        argv: &[String],
    ) -> Result<ExecResult, DeployError> {
        let ns = container.namespace.as_deref().unwrap_or(&self.namespace);
        let out =
            KubeTarget::exec(self, ns, &container.pod, &container.container, argv, None).await?;
        let exit_code = match out.outcome {
            ExecOutcome::Exited(code) => Some(i64::from(code)),
            ExecOutcome::ProgramMissing(words) => {
                return Err(DeployError::Api {
                    message: format!(
                        "pod/{} -n {ns}, container `{}`: cannot run `{}`: {words}",
                        container.pod,
                        container.container,
                        argv.join(" ")
                    ),
                    hint: Some(
                        "the program is not in the container's image: check the hook's `command`"
                            .into(),
                    ),
                });
            }
        };
        Ok(ExecResult {
            stdout: out.stdout,
            stderr: out.stderr,
            exit_code,
        })
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

    /// Docker has no pods: each running container of the project is its own "pod", named as in `deploy.docker`.
    async fn running_containers(
        &self,
        plan: &DockerPlan,
    ) -> Result<Vec<TargetContainer>, DeployError> {
        Ok(DockerTarget::running_containers(self, plan)
            .await?
            .into_iter()
            .map(|name| TargetContainer {
                namespace: None,
                pod: name.clone(),
                container: name,
            })
            .collect())
    }

    async fn exec(
        &self,
        container: &TargetContainer,
        argv: &[String],
    ) -> Result<ExecResult, DeployError> {
        let out = DockerTarget::exec(self, &container.container, argv).await?;
        Ok(ExecResult {
            stdout: out.stdout,
            stderr: out.stderr,
            exit_code: out.exit_code,
        })
    }
}
