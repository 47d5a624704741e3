//! Verify, the Job check: `verify.job` + the release → a Job `<service>-verify-<colour>` (server-side apply, field
//! manager `devloop`, ownership labels, `PREVIEW_URL`/`DEVLOOP_COLOR`/`DEVLOOP_SERVICE`) watched until it completes
//! or fails, then deleted either way. A failure carries the Job's reason and the last lines of its pod's log; it
//! must not delete a Job devloop did not create, nor keep more than a few log lines.

use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use k8s_openapi::api::batch::v1::Job;
use k8s_openapi::api::core::v1::Pod;
use kube::api::{Api, DeleteParams, ListParams, LogParams, Patch, PatchParams};
use kube::runtime::wait::{await_condition, conditions};
use serde_json::json;
use tokio::time::Instant as Deadline;
use tokio_util::sync::CancellationToken;

use super::{Verified, VerifyContext, VerifyError, elapsed, written};

/// The field manager of the Job (the one `devloop delete` recognises).
const FIELD_MANAGER: &str = "devloop";
/// The Job's container.
const CONTAINER: &str = "verify";
/// At most this many log lines of a failed Job reach the message, each cut to [`MAX_LINE`] characters.
const LOG_LINES: i64 = 10;
const MAX_LINE: usize = 240;
/// The cluster ends a Job devloop stopped watching (killed mid-check) this long after devloop's own timeout.
const DEADLINE_MARGIN: Duration = Duration::from_secs(30);
/// A finished Job is removed by the cluster this long after it finished, should devloop not be there to do it.
const TTL_AFTER_FINISHED: i64 = 600;
/// How long the cleanup delete may take after a cancellation or a timeout.
const CLEANUP_LIMIT: Duration = Duration::from_secs(10);

/// How a watched Job ended.
enum Ended {
    Complete,
    Failed(Box<Job>),
}

pub(super) async fn verify(
    client: &kube::Client,
    command: &[String],
    timeout: Duration,
    ctx: &VerifyContext,
    cancel: &CancellationToken,
    started: Instant,
) -> Result<Verified, VerifyError> {
    let image = ctx
        .job_image
        .as_deref()
        .ok_or_else(|| VerifyError::NoJobImage {
            service: ctx.service.clone(),
        })?;
    let name = format!("{}-verify-{}", ctx.service, ctx.color);
    let jobs: Api<Job> = Api::namespaced(client.clone(), &ctx.namespace);
    let pods: Api<Pod> = Api::namespaced(client.clone(), &ctx.namespace);
    let deadline = Deadline::now() + timeout;
    // Set once the name is known to be devloop's to use: only then is the Job deleted on the way out.
    let ours = AtomicBool::new(false);
    let run = async {
        remove_earlier(&jobs, &name, &ctx.service).await?;
        ours.store(true, Ordering::SeqCst);
        let job = manifest(&name, image, command, timeout, ctx);
        jobs.patch(
            &name,
            &PatchParams::apply(FIELD_MANAGER),
            &Patch::Apply(&job),
        )
        .await
        .map_err(|e| VerifyError::api(&ctx.service, format!("create the job `{name}`"), &e))?;
        wait_finished(&jobs, &name, &ctx.service).await
    };
    let outcome = tokio::select! {
        biased;
        () = cancel.cancelled() => Err(VerifyError::Cancelled),
        () = tokio::time::sleep_until(deadline) => Err(VerifyError::JobTimeout {
            service: ctx.service.clone(),
            job: name.clone(),
            timeout: written(timeout),
            state: pod_state(&pods, &jobs, &name).await,
        }),
        r = run => match r {
            Ok(Ended::Complete) => Ok(Verified {
                summary: format!("job {name} completed in {}", elapsed(started.elapsed())),
            }),
            Ok(Ended::Failed(job)) => Err(VerifyError::JobFailed {
                service: ctx.service.clone(),
                job: name.clone(),
                reason: reason(&job, &pods).await,
                logs: log_tail(&pods, &job).await,
                preview_url: ctx.preview_url.clone(),
            }),
            Err(e) => Err(e),
        },
    };
    if ours.load(Ordering::SeqCst) {
        remove(&jobs, &name).await;
    }
    outcome
}

/// Deletes the Job whatever happened (its pods with it); a Job already gone, or never created, is fine.
async fn remove(jobs: &Api<Job>, name: &str) {
    let removed = tokio::time::timeout(
        CLEANUP_LIMIT,
        jobs.delete(name, &DeleteParams::background()),
    )
    .await;
    if let Ok(Err(e)) = removed
        && !matches!(&e, kube::Error::Api(s) if s.code == 404)
    {
        tracing::debug!(error = %e, job = %name, "deleting the verify job failed");
    }
}

/// The Job as devloop applies it.
fn manifest(
    name: &str,
    image: &str,
    command: &[String],
    timeout: Duration,
    ctx: &VerifyContext,
) -> serde_json::Value {
    let deadline = (timeout + DEADLINE_MARGIN).as_secs().max(1);
    json!({
        "apiVersion": "batch/v1",
        "kind": "Job",
        "metadata": {"name": name, "namespace": ctx.namespace, "labels": ctx.labels},
        "spec": {
            "backoffLimit": 0,
            "activeDeadlineSeconds": deadline,
            "ttlSecondsAfterFinished": TTL_AFTER_FINISHED,
            "template": {
                "spec": {
                    "restartPolicy": "Never",
                    "containers": [{
                        "name": CONTAINER,
                        "image": image,
                        "command": command,
                        "env": [
                            {"name": "PREVIEW_URL", "value": ctx.preview_url},
                            {"name": "DEVLOOP_COLOR", "value": ctx.color},
                            {"name": "DEVLOOP_SERVICE", "value": ctx.service},
                        ],
                    }],
                },
            },
        },
    })
}

/// Deletes a Job of that name left by an earlier run (foreground: its pods first) and waits until it is gone.
async fn remove_earlier(jobs: &Api<Job>, name: &str, service: &str) -> Result<(), VerifyError> {
    let read = |e: kube::Error| VerifyError::api(service, format!("read the job `{name}`"), &e);
    let Some(earlier) = jobs.get_opt(name).await.map_err(read)? else {
        return Ok(());
    };
    let ours = earlier.metadata.managed_fields.iter().flatten().any(|m| {
        m.manager.as_deref() == Some(FIELD_MANAGER) && m.operation.as_deref() == Some("Apply")
    });
    if !ours {
        return Err(VerifyError::ForeignJob {
            service: service.to_string(),
            job: name.to_string(),
        });
    }
    let uid = earlier.metadata.uid.clone().unwrap_or_default();
    match jobs.delete(name, &DeleteParams::foreground()).await {
        Ok(_) => {}
        Err(kube::Error::Api(s)) if s.code == 404 => return Ok(()),
        Err(e) => {
            return Err(VerifyError::api(
                service,
                format!("delete the earlier job `{name}`"),
                &e,
            ));
        }
    }
    await_condition(jobs.clone(), name, conditions::is_deleted(&uid))
        .await
        .map_err(|e| VerifyError::Api {
            service: service.to_string(),
            action: format!("wait for the earlier job `{name}` to go"),
            message: e.to_string(),
        })?;
    Ok(())
}

/// Watches the Job until its `Complete` or `Failed` condition is true.
async fn wait_finished(jobs: &Api<Job>, name: &str, service: &str) -> Result<Ended, VerifyError> {
    let finished =
        |job: Option<&Job>| job.is_none_or(|j| condition(j, "Complete") || condition(j, "Failed"));
    let job = await_condition(jobs.clone(), name, finished)
        .await
        .map_err(|e| VerifyError::Api {
            service: service.to_string(),
            action: format!("watch the job `{name}`"),
            message: e.to_string(),
        })?;
    match job {
        Some(j) if condition(&j, "Complete") => Ok(Ended::Complete),
        Some(j) => Ok(Ended::Failed(Box::new(j))),
        None => Err(VerifyError::Api {
            service: service.to_string(),
            action: format!("watch the job `{name}`"),
            message: "it was deleted before it finished".to_string(),
        }),
    }
}

fn condition(job: &Job, type_: &str) -> bool {
    job.status
        .iter()
        .flat_map(|s| s.conditions.iter().flatten())
        .any(|c| c.type_ == type_ && c.status == "True")
}

/// The Job's pods, newest first.
async fn pods_of(pods: &Api<Pod>, job: &Job) -> Vec<Pod> {
    let uid = job.metadata.uid.clone().unwrap_or_default();
    let lp = ListParams::default().labels(&format!("controller-uid={uid}"));
    let mut list = pods.list(&lp).await.map(|l| l.items).unwrap_or_default();
    list.sort_by(|a, b| {
        b.metadata
            .creation_timestamp
            .cmp(&a.metadata.creation_timestamp)
    });
    list
}

/// `BackoffLimitExceeded: Job has reached the specified backoff limit; container `verify` exited with code 3`.
async fn reason(job: &Job, pods: &Api<Pod>) -> String {
    let failed = job
        .status
        .iter()
        .flat_map(|s| s.conditions.iter().flatten())
        .find(|c| c.type_ == "Failed" && c.status == "True");
    let mut text = match failed {
        Some(c) => format!(
            "{}: {}",
            c.reason.as_deref().unwrap_or("Failed"),
            c.message.as_deref().unwrap_or_default()
        ),
        None => "Failed".to_string(),
    };
    let terminated = pods_of(pods, job).await.into_iter().find_map(|p| {
        p.status?
            .container_statuses?
            .into_iter()
            .find(|c| c.name == CONTAINER)?
            .state?
            .terminated
    });
    if let Some(t) = terminated {
        text.push_str(&format!(
            "; container `{CONTAINER}` exited with code {}",
            t.exit_code
        ));
        if let Some(r) = t.reason.filter(|r| r != "Error" && r != "Completed") {
            text.push_str(&format!(" ({r})"));
        }
    }
    text
}

/// The last lines of the newest pod's log under a heading, or nothing when there is none.
async fn log_tail(pods: &Api<Pod>, job: &Job) -> String {
    let Some(pod) = pods_of(pods, job).await.into_iter().next() else {
        return String::new();
    };
    let pod_name = pod.metadata.name.unwrap_or_default();
    let lp = LogParams {
        container: Some(CONTAINER.to_string()),
        tail_lines: Some(LOG_LINES),
        ..LogParams::default()
    };
    let Ok(text) = pods.logs(&pod_name, &lp).await else {
        return String::new();
    };
    let lines: Vec<&str> = text.lines().collect();
    let start = lines
        .len()
        .saturating_sub(usize::try_from(LOG_LINES).unwrap_or(10));
    if lines[start..].is_empty() {
        return format!("\n  (pod `{pod_name}` logged nothing)");
    }
    let mut out = format!("\n  last lines of pod `{pod_name}`:");
    for line in &lines[start..] {
        let cut: String = line.chars().take(MAX_LINE).collect();
        out.push_str(&format!("\n    {cut}"));
    }
    out
}

/// What the Job's pod was doing when time ran out (`; pod `x` is waiting: ImagePullBackOff`), or nothing.
async fn pod_state(pods: &Api<Pod>, jobs: &Api<Job>, name: &str) -> String {
    let Ok(Some(job)) = jobs.get_opt(name).await else {
        return String::new();
    };
    let Some(pod) = pods_of(pods, &job).await.into_iter().next() else {
        return "; no pod of it started".to_string();
    };
    let pod_name = pod.metadata.name.clone().unwrap_or_default();
    let waiting = pod
        .status
        .and_then(|s| s.container_statuses)
        .into_iter()
        .flatten()
        .find_map(|c| c.state?.waiting);
    match waiting {
        Some(w) => format!(
            "; pod `{pod_name}` is waiting: {}",
            w.reason.as_deref().unwrap_or("unknown reason")
        ),
        None => format!("; pod `{pod_name}` was still running"),
    }
}
