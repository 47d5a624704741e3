//! Deploy, Docker backend, logs: the project's containers → one stream of `Log` events, line by line, following
//! the running containers from their first line and each container started later (a redeploy, a restart) too,
//! until cancelled. Reads only; follows only containers with this project's labels.

use std::collections::HashSet;
use std::pin::Pin;
use std::time::{SystemTime, UNIX_EPOCH};

use bollard::errors::Error as DockerError;
use bollard::query_parameters::{EventsOptions, LogsOptions};
use futures_util::stream::{SelectAll, Stream, StreamExt};
use tokio_util::sync::CancellationToken;

use super::DockerTarget;
use super::daemon_error::server_message;
use super::labels::{CONTAINER_LABEL, is_sandbox};
use crate::deploy::DeployError;
use crate::event::{Event, EventSink};

type LineStream = Pin<Box<dyn Stream<Item = (String, String)> + Send>>;

impl DockerTarget {
    /// Follows the output of every container of this project until `cancel` fires: the running ones from their
    /// first line, and each container started later (a redeploy, a restart) from its first line too.
    pub async fn follow_logs(
        &self,
        events: &EventSink,
        cancel: &CancellationToken,
    ) -> Result<(), DeployError> {
        // Events from a second ago on, so a container started while the initial list is taken is not missed;
        // duplicates are skipped by (ID, start time).
        let since = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map(|d| d.as_secs().saturating_sub(1))
            .unwrap_or(0);
        let mut filters = self.label_filters();
        filters.insert("type".into(), vec!["container".into()]);
        filters.insert("event".into(), vec!["start".into()]);
        let mut starts = self
            .docker
            .events(Some(EventsOptions {
                since: Some(since.to_string()),
                until: None,
                filters: Some(filters),
            }))
            .boxed();
        let mut streams: SelectAll<LineStream> = SelectAll::new();
        let mut followed: HashSet<(String, String)> = HashSet::new();
        let mut seen_ids: HashSet<String> = HashSet::new();
        for c in self.project_containers().await? {
            if c.state == Some(bollard::models::ContainerSummaryStateEnum::RUNNING)
                && let Some(id) = c.id
            {
                self.follow_one(&id, None, &mut followed, &mut seen_ids, &mut streams)
                    .await;
            }
        }
        loop {
            tokio::select! {
                _ = cancel.cancelled() => return Ok(()),
                event = starts.next() => match event {
                    Some(Ok(m)) => {
                        if let Some(id) = m.actor.and_then(|a| a.id) {
                            self.follow_one(&id, m.time, &mut followed, &mut seen_ids, &mut streams).await;
                        }
                    }
                    Some(Err(e)) => {
                        return Err(DeployError::Api {
                            message: format!("the Docker event stream failed: {}", server_message(&e)),
                            hint: None,
                        });
                    }
                    None => return Ok(()),
                },
                Some((name, line)) = streams.next(), if !streams.is_empty() => {
                    events.emit(Event::Log { pod: name.clone(), container: name.clone(), workload: name, line });
                }
            }
        }
    }

    /// Starts following one container instance unless it is followed already. A container seen before was
    /// restarted: its new instance is followed from `started` (Unix seconds) so earlier output is not repeated.
    async fn follow_one(
        &self,
        id: &str,
        started: Option<i64>,
        followed: &mut HashSet<(String, String)>,
        seen_ids: &mut HashSet<String>,
        streams: &mut SelectAll<LineStream>,
    ) {
        let Ok(Some(c)) = self.inspect("container", id).await else {
            return;
        };
        let labels = c.config.as_ref().and_then(|c| c.labels.as_ref());
        // A network sandbox's pause program writes nothing.
        if !self.owns(labels) || is_sandbox(labels) {
            return;
        }
        let name = c
            .config
            .as_ref()
            .and_then(|c| c.labels.as_ref())
            .and_then(|l| l.get(CONTAINER_LABEL).cloned())
            .unwrap_or_else(|| id.to_string());
        let started_at = c
            .state
            .as_ref()
            .and_then(|s| s.started_at.clone())
            .unwrap_or_default();
        if !followed.insert((id.to_string(), started_at)) {
            return;
        }
        let since = if seen_ids.insert(id.to_string()) {
            0
        } else {
            started
                .and_then(|t| i32::try_from(t).ok())
                .unwrap_or_default()
        };
        let chunks = self.docker.logs(
            id,
            Some(LogsOptions {
                follow: true,
                stdout: true,
                stderr: true,
                since,
                ..Default::default()
            }),
        );
        streams.push(lines(chunks, name));
    }
}

/// Splits a container's output chunks into lines, each tagged with the container's name.
fn lines(
    chunks: impl Stream<Item = Result<bollard::container::LogOutput, DockerError>> + Send + 'static,
    name: String,
) -> LineStream {
    chunks
        .scan(Vec::<u8>::new(), move |pending, chunk| {
            let out: Vec<(String, String)> = match chunk {
                Ok(c) => {
                    pending.extend_from_slice(&c.into_bytes());
                    let mut out = Vec::new();
                    while let Some(i) = pending.iter().position(|b| *b == b'\n') {
                        let line: Vec<u8> = pending.drain(..=i).collect();
                        let text = String::from_utf8_lossy(&line).trim_end().to_string();
                        out.push((name.clone(), text));
                    }
                    out
                }
                // The stream ends with the container; a partial last line is still worth showing.
                Err(_) => std::mem::take(pending)
                    .split(|b| *b == b'\n')
                    .filter(|l| !l.is_empty())
                    .map(|l| {
                        (
                            name.clone(),
                            String::from_utf8_lossy(l).trim_end().to_string(),
                        )
                    })
                    .collect(),
            };
            futures_util::future::ready(Some(futures_util::stream::iter(out)))
        })
        .flatten()
        .boxed()
}
