//! Runner, lifecycle hooks against a deploy target: a step's hooks (host and container) run in order — host ones by
//! [`crate::hook`], container ones in the running containers of this project whose names match, through
//! [`DeployTarget`] (exec) — and one deploy with its hooks around it. Prints nothing; a pod a container hook ran
//! in is not visited again in the same session and phase (Skaffold's rule).

use std::collections::{HashSet, VecDeque};
use std::sync::Mutex;
use std::time::Instant;

use tokio_util::sync::CancellationToken;

use super::target::{DeployTarget, TargetContainer};
use crate::config::hooks::{ContainerHook, Hook};
use crate::event::{Event, EventSink};
use crate::hook::{HookError, HookRun, Phase, keep};

/// The containers a step's container hooks already ran in, by phase (`dev`: a pod an earlier iteration ran the
/// hook in is not visited again, as Skaffold does).
#[derive(Debug, Default)]
pub struct Visited(Mutex<HashSet<(&'static str, TargetContainer)>>);

impl Visited {
    /// Marks `c` for `phase`; false when it was already.
    fn first_time(&self, phase: Phase, c: &TargetContainer) -> bool {
        self.0
            .lock()
            .map(|mut v| v.insert((phase.name(), c.clone())))
            .unwrap_or(true)
    }
}

/// Runs `hooks` in order: host ones on this machine, container ones in the running containers of `target` that
/// match (each at most once per `visited`).
pub async fn run_all<D: DeployTarget>(
    run: &HookRun<'_>,
    hooks: &[Hook],
    target: &D,
    plan: &D::Plan,
    visited: &Visited,
) -> Result<(), HookError> {
    for (i, h) in hooks.iter().enumerate() {
        match h {
            Hook::Host(h) => run.host(i + 1, h).await?,
            Hook::Container(c) => container(run, i + 1, c, target, plan, visited).await?,
        }
    }
    Ok(())
}

async fn container<D: DeployTarget>(
    run: &HookRun<'_>,
    index: usize,
    hook: &ContainerHook,
    target: &D,
    plan: &D::Plan,
    visited: &Visited,
) -> Result<(), HookError> {
    let name = run.hook_name(index);
    let running = target
        .running_containers(plan)
        .await
        .map_err(|source| HookError::Container {
            hook: name.clone(),
            source,
        })?;
    let matching: Vec<TargetContainer> = running
        .into_iter()
        .filter(|c| hook.pod_name.as_ref().is_none_or(|g| g.matches(&c.pod)))
        .filter(|c| {
            hook.container_name
                .as_ref()
                .is_none_or(|g| g.matches(&c.container))
        })
        .collect();
    if matching.is_empty() && run.phase == Phase::AfterDeploy {
        run.events.emit(Event::Warning {
            message: format!(
                "{name}: no running container matches podName `{}`{}; it ran nowhere",
                hook.pod_name.as_ref().map_or("*", |g| g.pattern.as_str()),
                hook.container_name
                    .as_ref()
                    .map(|g| format!(" and containerName `{}`", g.pattern))
                    .unwrap_or_default()
            ),
        });
    }
    for c in matching {
        if !visited.first_time(run.phase, &c) {
            continue;
        }
        let started = Instant::now();
        run.started(index, &hook.command, Some(c.name()));
        let outcome = tokio::select! {
            _ = run.cancel.cancelled() => Err(HookError::Cancelled { hook: name.clone() }),
            r = target.exec(&c, &hook.command) => r.map_err(|source| HookError::Container {
                hook: name.clone(),
                source,
            }),
        };
        let outcome = outcome.and_then(|r| {
            let mut tail = VecDeque::new();
            for bytes in [&r.stdout, &r.stderr] {
                for line in String::from_utf8_lossy(bytes).lines() {
                    keep(&mut tail, line);
                    run.line(index, &Some(c.name()), line.to_string());
                }
            }
            match r.exit_code {
                Some(0) => Ok(()),
                code => Err(HookError::Failed {
                    hook: format!("{name} in {}", c.name()),
                    phase: run.phase,
                    command: hook.command.join(" "),
                    code,
                    output: tail.into(),
                }),
            }
        });
        match &outcome {
            Ok(()) => run.finished(index, Some(c.name()), started),
            Err(e) => {
                run.failed(index, Some(c.name()), e);
                return outcome;
            }
        }
    }
    Ok(())
}

/// One deploy with its hooks (`run`, `deploy`; `dev` runs the same steps in its iteration): `deploy.hooks.before`,
/// the deploy, the wait until ready (unless `deadline` is `None`), then `deploy.hooks.after` — after-deploy
/// hooks run only once the deploy is ready, and their failure fails the deploy (Skaffold's rule).
pub async fn deploy_with_hooks<D: DeployTarget>(
    target: &D,
    plan: &D::Plan,
    hooks: &crate::config::hooks::Hooks,
    deadline: Option<std::time::Duration>,
    events: &EventSink,
    cancel: &CancellationToken,
) -> Result<crate::deploy::DeployedSet, crate::error::Error> {
    let visited = Visited::default();
    let run = |phase| HookRun {
        phase,
        image: None,
        env: target.hook_env(plan),
        events,
        cancel: cancel.clone(),
    };
    run_all(
        &run(Phase::BeforeDeploy),
        &hooks.before,
        target,
        plan,
        &visited,
    )
    .await?;
    let deployed = target.deploy(plan, events, cancel).await?;
    if let Some(deadline) = deadline {
        target
            .wait_ready(&deployed, deadline, events, cancel)
            .await?;
    }
    run_all(
        &run(Phase::AfterDeploy),
        &hooks.after,
        target,
        plan,
        &visited,
    )
    .await?;
    Ok(deployed)
}
