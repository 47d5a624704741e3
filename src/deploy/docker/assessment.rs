//! Deploy, Docker backend, assessment: an inspected container and what is wanted of it (ready, started, healthy,
//! completed) → ready, pending (why) or failed (reason, message). Pure: talks to no daemon, emits nothing.

use bollard::models::{ContainerInspectResponse, ContainerStateStatusEnum, HealthStatusEnum};

use crate::config::deploy::{Condition, Restart};

/// What a dependent or `wait_ready` waits for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Want {
    /// Running (and healthy when it has a healthcheck), or exited 0.
    Ready,
    Started,
    Healthy,
    Completed,
}

/// A container's state measured against what is wanted.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) enum Assessment {
    Ready,
    Pending(String),
    Failed { reason: String, message: String },
}

/// Measures a container's state against what is wanted.
pub(super) fn assess(c: &ContainerInspectResponse, want: Want, restart: Restart) -> Assessment {
    let failed = |reason: &str, message: String| Assessment::Failed {
        reason: reason.to_string(),
        message,
    };
    let state = c.state.clone().unwrap_or_default();
    let exit = state.exit_code.unwrap_or(0);
    if state.oom_killed == Some(true) {
        return failed("OOMKilled", "was killed: out of memory".into());
    }
    // Docker restarts a crashing container within milliseconds; a poll may only ever see it running again.
    if c.restart_count.unwrap_or(0) > 0 && exit != 0 {
        return failed(
            "CrashLoop",
            format!(
                "keeps restarting (restart policy `{}`): last exit code {exit}",
                restart_text(restart)
            ),
        );
    }
    let health = state.health.as_ref().and_then(|h| h.status);
    let has_health = matches!(
        health,
        Some(HealthStatusEnum::STARTING | HealthStatusEnum::HEALTHY | HealthStatusEnum::UNHEALTHY)
    );
    match state.status {
        Some(ContainerStateStatusEnum::EXITED | ContainerStateStatusEnum::DEAD) => {
            if exit != 0 {
                failed("Error", format!("exited with code {exit}"))
            } else if want == Want::Healthy {
                failed(
                    "Completed",
                    "exited with code 0 before it became healthy".into(),
                )
            } else {
                Assessment::Ready
            }
        }
        Some(ContainerStateStatusEnum::RESTARTING) => {
            if exit != 0 {
                failed(
                    "CrashLoop",
                    format!("keeps restarting: last exit code {exit}"),
                )
            } else {
                Assessment::Pending("restarting".into())
            }
        }
        Some(ContainerStateStatusEnum::RUNNING) => match (want, health) {
            (Want::Started, _) => Assessment::Ready,
            (Want::Completed, _) => Assessment::Pending("running".into()),
            (_, Some(HealthStatusEnum::HEALTHY)) => Assessment::Ready,
            (_, Some(HealthStatusEnum::UNHEALTHY)) => {
                failed("Unhealthy", unhealthy_message(c))
            }
            (_, Some(HealthStatusEnum::STARTING)) => {
                Assessment::Pending("running, healthcheck starting".into())
            }
            (Want::Healthy, _) if !has_health => failed(
                "NoHealthcheck",
                "has no healthcheck, so it can never be healthy (add `healthcheck` or use `condition: started`)"
                    .into(),
            ),
            _ => Assessment::Ready,
        },
        Some(ContainerStateStatusEnum::CREATED) => Assessment::Pending("created".into()),
        Some(ContainerStateStatusEnum::PAUSED) => Assessment::Pending("paused".into()),
        Some(ContainerStateStatusEnum::STOPPING) => Assessment::Pending("stopping".into()),
        Some(ContainerStateStatusEnum::REMOVING) => {
            failed("Removed", "the container is being removed".into())
        }
        Some(ContainerStateStatusEnum::EMPTY) | None => Assessment::Pending("starting".into()),
    }
}

/// The last healthcheck result, as a reason to read.
fn unhealthy_message(c: &ContainerInspectResponse) -> String {
    let health = c.state.as_ref().and_then(|s| s.health.as_ref());
    let streak = health.and_then(|h| h.failing_streak).unwrap_or(0);
    let last = health
        .and_then(|h| h.log.as_ref())
        .and_then(|l| l.last())
        .map(|r| {
            let output = r.output.clone().unwrap_or_default();
            format!(
                "exit code {}{}",
                r.exit_code.unwrap_or(-1),
                match output.trim() {
                    "" => String::new(),
                    o => format!(": {}", o.lines().last().unwrap_or(o)),
                }
            )
        })
        .unwrap_or_else(|| "no result".into());
    format!("healthcheck failed {streak} times in a row (last: {last})")
}

/// The restart policy a container was created with (its inspected `HostConfig`).
pub(super) fn restart_of(object: &serde_json::Value) -> Restart {
    match object
        .pointer("/HostConfig/RestartPolicy/Name")
        .and_then(serde_json::Value::as_str)
    {
        Some("always") => Restart::Always,
        Some("on-failure") => Restart::OnFailure,
        Some("unless-stopped") => Restart::UnlessStopped,
        _ => Restart::No,
    }
}

fn restart_text(r: Restart) -> &'static str {
    match r {
        Restart::No => "no",
        Restart::Always => "always",
        Restart::OnFailure => "on-failure",
        Restart::UnlessStopped => "unless-stopped",
    }
}

pub(super) fn condition_text(c: Condition) -> &'static str {
    match c {
        Condition::Started => "started",
        Condition::Healthy => "healthy",
        Condition::Completed => "completed",
    }
}
