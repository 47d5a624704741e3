//! Deploy, Docker backend, readiness: containers just started → ready, or a failure with its reason and the
//! container's last log lines (`RolloutFailed`); dependents wait for their dependencies' conditions the same way.
//! Polls the daemon; never stops, removes or restarts anything.

use std::time::{Duration, Instant};

use bollard::models::ContainerStateStatusEnum;
use bollard::query_parameters::LogsOptions;
use futures_util::stream::StreamExt;
use tokio_util::sync::CancellationToken;

use super::DockerTarget;
use super::assessment::{Assessment, Want, assess, condition_text, restart_of};
use crate::config::deploy::{Condition, Dependency, Restart};
use crate::deploy::{Change, DeployError, DeployedSet};
use crate::event::{Event, EventSink};
use crate::hint::Hint;

/// How often container states are polled while waiting.
const POLL: Duration = Duration::from_millis(100);
/// How long a container without a healthcheck must keep running to count as ready.
const SETTLE: Duration = Duration::from_millis(500);
/// How many trailing log lines a failure report keeps.
const TAIL_LINES: usize = 20;
/// How long a dependent waits for a dependency's condition (`deploy` has no deadline of its own).
const DEPENDENCY_TIMEOUT: Duration = Duration::from_secs(300);

/// A container `wait_ready` still waits for.
struct Waiting {
    name: String,
    restart: Restart,
    /// The last progress message reported.
    last: Option<String>,
    /// When it was first seen running (containers without a healthcheck).
    running_since: Option<Instant>,
}

impl DockerTarget {
    /// Waits until `dep` meets its condition, failing when it cannot.
    pub(super) async fn wait_dependency(
        &self,
        dependent: &str,
        dep: &Dependency,
        restart: Restart,
        events: &EventSink,
        cancel: &CancellationToken,
    ) -> Result<(), DeployError> {
        let want = match dep.condition {
            Condition::Started => Want::Started,
            Condition::Healthy => Want::Healthy,
            Condition::Completed => Want::Completed,
        };
        let object = format!("container/{}", dep.name);
        let name = self.container_name(&dep.name);
        let started = Instant::now();
        let mut last: Option<String> = None;
        loop {
            let current = self.inspect(&object, &name).await?;
            let verdict = match &current {
                None => Assessment::Failed {
                    reason: "Removed".into(),
                    message: "the container was removed".into(),
                },
                Some(c) => assess(c, want, restart),
            };
            match verdict {
                Assessment::Ready => return Ok(()),
                Assessment::Pending(message) => {
                    if started.elapsed() > DEPENDENCY_TIMEOUT {
                        let reason = "DeadlineExceeded".to_string();
                        let message = format!(
                            "{message}: not {} after {} s",
                            condition_text(dep.condition),
                            DEPENDENCY_TIMEOUT.as_secs()
                        );
                        return Err(self
                            .report_failure(&dep.name, &reason, &message, Some(dependent), events)
                            .await);
                    }
                    if last.as_deref() != Some(message.as_str()) {
                        events.emit(Event::RolloutProgress {
                            object: object.clone(),
                            namespace: None,
                            message: format!(
                                "{message} (`{dependent}` waits until it is {})",
                                condition_text(dep.condition)
                            ),
                        });
                        last = Some(message);
                    }
                }
                Assessment::Failed { reason, message } => {
                    return Err(self
                        .report_failure(&dep.name, &reason, &message, Some(dependent), events)
                        .await);
                }
            }
            tokio::select! {
                _ = cancel.cancelled() => return Err(DeployError::Cancelled),
                _ = tokio::time::sleep(POLL) => {}
            }
        }
    }

    /// The last lines a container wrote (stdout and stderr, in the order the daemon logged them).
    async fn last_logs(&self, name: &str) -> Vec<String> {
        let mut stream = self.docker.logs(
            name,
            Some(LogsOptions {
                stdout: true,
                stderr: true,
                tail: TAIL_LINES.to_string(),
                ..Default::default()
            }),
        );
        let mut text = Vec::new();
        let fetch = async {
            while let Some(Ok(chunk)) = stream.next().await {
                text.extend_from_slice(&chunk.into_bytes());
            }
        };
        // Evidence must not hold up the report.
        let _ = tokio::time::timeout(Duration::from_secs(5), fetch).await;
        let lines: Vec<String> = String::from_utf8_lossy(&text)
            .lines()
            .map(|l| l.trim_end().to_string())
            .collect();
        let skip = lines.len().saturating_sub(TAIL_LINES);
        lines.into_iter().skip(skip).collect()
    }

    /// Emits `RolloutFailed` with the container's last log lines and builds the error.
    async fn report_failure(
        &self,
        name: &str,
        reason: &str,
        message: &str,
        dependent: Option<&str>,
        events: &EventSink,
    ) -> DeployError {
        let docker_name = self.container_name(name);
        let logs = self.last_logs(&docker_name).await;
        let object = format!("container/{name}");
        events.emit(Event::RolloutFailed {
            object: object.clone(),
            namespace: None,
            pod: Some(name.to_string()),
            container: Some(name.to_string()),
            reason: reason.to_string(),
            message: message.to_string(),
            events: Vec::new(),
            logs,
        });
        let mut text = format!("{object}: {reason}: {message}");
        if let Some(d) = dependent {
            text.push_str(&format!(" (`{d}` depends on it and was not started)"));
        }
        text.push_str(
            &Hint(format_args!(
                "`docker logs {docker_name}` shows its whole output"
            ))
            .to_string(),
        );
        DeployError::Status(text)
    }

    /// Waits until every container `deployed` replaced or created is ready, failing on the first
    /// that cannot become ready, or at `deadline` naming every container still waited for.
    pub async fn wait_until_ready(
        &self,
        deployed: &DeployedSet,
        deadline: Duration,
        events: &EventSink,
        cancel: &CancellationToken,
    ) -> Result<(), DeployError> {
        let started = Instant::now();
        // Containers left alone were running with this config already; only replaced ones are waited for.
        let mut pending: Vec<Waiting> = deployed
            .applied
            .iter()
            .filter(|a| a.reference.kind == "Container" && a.change != Change::Unchanged)
            .map(|a| Waiting {
                name: a.reference.name.clone(),
                restart: restart_of(&a.object),
                last: None,
                running_since: None,
            })
            .collect();
        let total = pending.len();
        loop {
            let mut still = Vec::with_capacity(pending.len());
            for mut w in pending {
                let object = format!("container/{}", w.name);
                match self.readiness(&mut w).await? {
                    Assessment::Ready => events.emit(Event::RolloutReady {
                        object,
                        namespace: None,
                        duration_ms: millis(started.elapsed()),
                    }),
                    Assessment::Pending(message) => {
                        if w.last.as_deref() != Some(message.as_str()) {
                            events.emit(Event::RolloutProgress {
                                object,
                                namespace: None,
                                message: message.clone(),
                            });
                        }
                        w.last = Some(message);
                        still.push(w);
                    }
                    Assessment::Failed { reason, message } => {
                        return Err(self
                            .report_failure(&w.name, &reason, &message, None, events)
                            .await);
                    }
                }
            }
            pending = still;
            if pending.is_empty() {
                events.emit(Event::StatusComplete {
                    ready: total,
                    duration_ms: millis(started.elapsed()),
                });
                return Ok(());
            }
            if started.elapsed() >= deadline {
                return Err(self
                    .report_deadline(&pending, total, deadline, events)
                    .await);
            }
            tokio::select! {
                _ = cancel.cancelled() => return Err(DeployError::Cancelled),
                _ = tokio::time::sleep(POLL) => {}
            }
        }
    }

    /// Where one waited-for container stands now.
    async fn readiness(&self, w: &mut Waiting) -> Result<Assessment, DeployError> {
        let object = format!("container/{}", w.name);
        let current = self.inspect(&object, &self.container_name(&w.name)).await?;
        let mut verdict = match &current {
            None => Assessment::Failed {
                reason: "Removed".into(),
                message: "the container was removed".into(),
            },
            Some(c) => assess(c, Want::Ready, w.restart),
        };
        // Without a healthcheck, "ready" means it kept running for a moment: a container that crashes
        // on start-up (a bad flag, a missing file) must not pass as ready.
        let unprobed_running = current.as_ref().is_some_and(|c| {
            let state = c.state.as_ref();
            state.and_then(|s| s.status) == Some(ContainerStateStatusEnum::RUNNING)
                && state.and_then(|s| s.health.as_ref()).is_none()
        });
        if verdict == Assessment::Ready && unprobed_running {
            let since = *w.running_since.get_or_insert_with(Instant::now);
            if since.elapsed() < SETTLE {
                verdict = Assessment::Pending("running".into());
            }
        }
        Ok(verdict)
    }

    /// The deadline passed: emits `RolloutFailed` for each container still `pending` and builds the error.
    async fn report_deadline(
        &self,
        pending: &[Waiting],
        total: usize,
        deadline: Duration,
        events: &EventSink,
    ) -> DeployError {
        let mut text = format!(
            "{} of {total} containers not ready after {} s:",
            pending.len(),
            deadline.as_secs()
        );
        for Waiting { name, last, .. } in pending {
            let message = last.clone().unwrap_or_else(|| "not ready".into());
            let logs = self.last_logs(&self.container_name(name)).await;
            events.emit(Event::RolloutFailed {
                object: format!("container/{name}"),
                namespace: None,
                pod: Some(name.clone()),
                container: Some(name.clone()),
                reason: "DeadlineExceeded".into(),
                message: message.clone(),
                events: Vec::new(),
                logs,
            });
            text.push_str(&format!("\n  container/{name}: {message}"));
        }
        text.push_str(
            &Hint("raise `--status-check-deadline` if the containers need longer to become ready")
                .to_string(),
        );
        DeployError::Status(text)
    }
}

pub(super) fn millis(d: Duration) -> u64 {
    u64::try_from(d.as_millis()).unwrap_or(u64::MAX)
}
