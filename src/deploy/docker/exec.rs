//! Deploy, Docker backend, exec: the running containers of this project (by their name in `deploy.docker`) and a
//! command run in one of them through the Engine API's exec (attached, no TTY) → its stdout, stderr and exit
//! code. Runs what it is asked in containers that carry this project's labels; never decides what to run.

use bollard::container::LogOutput;
use bollard::exec::{CreateExecOptions, StartExecOptions, StartExecResults};
use futures_util::StreamExt;

use super::daemon_error::api_error;
use super::{DockerPlan, DockerTarget};
use crate::deploy::DeployError;

/// What a command run in a container did.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ExecOutput {
    pub stdout: Vec<u8>,
    pub stderr: Vec<u8>,
    /// `None` when the daemon did not say (the command still runs, or the daemon lost it).
    pub exit_code: Option<i64>,
}

impl DockerTarget {
    /// The names (as in `deploy.docker`) of `plan`'s containers that are running and carry this project's labels.
    pub async fn running_containers(&self, plan: &DockerPlan) -> Result<Vec<String>, DeployError> {
        let mut out = Vec::new();
        for c in &plan.deploy.containers {
            let object = format!("container/{}", c.name);
            let Some(current) = self.inspect(&object, &self.container_name(&c.name)).await? else {
                continue;
            };
            let running = current.state.as_ref().and_then(|s| s.running) == Some(true);
            if running && self.owns(current.config.as_ref().and_then(|c| c.labels.as_ref())) {
                out.push(c.name.clone());
            }
        }
        Ok(out)
    }

    /// Runs `argv` (no shell) in container `name` of this project and waits for it to end.
    pub async fn exec(&self, name: &str, argv: &[String]) -> Result<ExecOutput, DeployError> {
        let object = format!("container/{name}");
        let id = self
            .docker
            .create_exec(
                &self.container_name(name),
                CreateExecOptions {
                    attach_stdout: Some(true),
                    attach_stderr: Some(true),
                    cmd: Some(argv.to_vec()),
                    ..Default::default()
                },
            )
            .await
            .map_err(|e| api_error(&object, "exec in", &e))?
            .id;
        let started = self
            .docker
            .start_exec(
                &id,
                Some(StartExecOptions {
                    detach: false,
                    tty: false,
                    output_capacity: None,
                }),
            )
            .await
            .map_err(|e| api_error(&object, "exec in", &e))?;
        let mut result = ExecOutput::default();
        if let StartExecResults::Attached { mut output, .. } = started {
            while let Some(chunk) = output.next().await {
                match chunk.map_err(|e| api_error(&object, "read exec output of", &e))? {
                    LogOutput::StdErr { message } => result.stderr.extend_from_slice(&message),
                    LogOutput::StdOut { message } | LogOutput::Console { message } => {
                        result.stdout.extend_from_slice(&message)
                    }
                    LogOutput::StdIn { .. } => {}
                }
            }
        }
        // The output ends a moment before the daemon records the exit code: ask until it has (bounded).
        for _ in 0..100 {
            let inspected = self
                .docker
                .inspect_exec(&id)
                .await
                .map_err(|e| api_error(&object, "inspect exec in", &e))?;
            if inspected.running != Some(true) {
                result.exit_code = inspected.exit_code;
                break;
            }
            tokio::time::sleep(std::time::Duration::from_millis(10)).await;
        }
        Ok(result)
    }
}
