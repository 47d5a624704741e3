//! Runner, blue/green releases (`run`, `deploy`, `rollback`): the steps in order — each configured Service's live
//! colour read, the copies in the new colour deployed beside the live ones (deploy hooks around, the status check),
//! verified, the Services switched, the plain Deployments a first release replaces removed, the previous copies kept
//! for `keepPrevious` then scaled to zero. A failure before the switch leaves every Service where it was and removes
//! the new copies (unless kept for inspection). `rollback` scales the previous copies back up and switches back.

use std::time::Duration;

use serde_json::Value;
use tokio_util::sync::CancellationToken;

use super::target::DeployTarget;
use crate::config::blue_green::{BlueGreen, KeepPrevious};
use crate::deploy::blue_green::{self as bg, Color, Provenance, Release, Switch};
use crate::deploy::kube::{KubePlan, KubeTarget};
use crate::deploy::{DeployError, DeployedSet};
use crate::error::Error;
use crate::event::{Event, EventSink};

/// How a release runs.
pub struct ReleaseOptions<'a> {
    pub hooks: &'a crate::config::hooks::Hooks,
    /// How long the new copies may take to become ready.
    pub deadline: Duration,
    /// Keep a failed release's copies for inspection.
    pub keep_failed: bool,
    /// How long removing a failed release's copies may take.
    pub cleanup: Duration,
    pub provenance: Provenance,
    /// The images of the project's artifacts by name (for a verify Job's `image`).
    pub images: Vec<(String, String)>,
}

/// Releases `objects` (rendered for `target`) blue/green for every entry of `entries`; other objects deploy as
/// usual in the same apply.
pub async fn release(
    target: &KubeTarget,
    objects: Vec<Value>,
    entries: &[BlueGreen],
    opts: &ReleaseOptions<'_>,
    events: &EventSink,
    cancel: &CancellationToken,
) -> Result<DeployedSet, Error> {
    let mut live = Vec::new();
    for entry in entries {
        let (_, namespace) = bg::find_service(&objects, entry)?;
        live.push(target.live_service(&namespace, &entry.service).await?);
    }
    let release = bg::plan(objects, entries, &live, &opts.provenance)?;
    let plan = KubePlan {
        objects: release.objects.clone(),
        keep: release.keep.clone(),
        force: release.force.clone(),
        prune_copies: true,
    };
    for s in &release.switches {
        let message = match s.live {
            Some(live) => format!(
                "releasing {} beside {live} (traffic stays on {live} until {} is ready{})",
                s.color,
                s.color,
                if s.entry.verify.is_some() {
                    " and verified"
                } else {
                    ""
                }
            ),
            None => format!("first blue/green release: {}", copies_text(s)),
        };
        emit(events, s, "started", s.color, message);
    }
    let deployed = match super::hooks::deploy_with_hooks(
        target,
        &plan,
        opts.hooks,
        Some(opts.deadline),
        events,
        cancel,
    )
    .await
    {
        Ok(d) => d,
        Err(e) => {
            let step = match &e {
                Error::Hook(_) => "a deploy hook",
                Error::Deploy(DeployError::Status(_)) => {
                    "ready (the new copies did not become ready)"
                }
                _ => "apply",
            };
            return Err(fail(target, &plan, &release, step, e, opts, events).await);
        }
    };
    for s in &release.switches {
        if let Some(check) = &s.entry.verify
            && let Err(e) = verify(target, &plan, s, check, opts, events, cancel).await
        {
            return Err(fail(target, &plan, &release, "verify", e, opts, events).await);
        }
    }
    if cancel.is_cancelled() {
        // Stopped after the check, before the switch: traffic has not moved, and will not.
        let stopped = Error::Deploy(DeployError::Cancelled);
        return Err(fail(target, &plan, &release, "the switch", stopped, opts, events).await);
    }
    switch(target, &plan, &release, events).await?;
    retire(target, &plan, &release, events, cancel).await;
    Ok(deployed)
}

/// Moves every Service's traffic to its new copies.
async fn switch(
    target: &KubeTarget,
    plan: &KubePlan,
    release: &Release,
    events: &EventSink,
) -> Result<(), Error> {
    let since = crate::time::Timestamp::now().rfc3339();
    for (i, s) in release.switches.iter().enumerate() {
        let switched = bg::at_switch(&s.switched, &since);
        if let Err(e) = switch_one(target, plan, s, switched, events).await {
            let done: Vec<String> = release.switches[..i]
                .iter()
                .map(|d| format!("service/{} is on {}", d.service, d.color))
                .collect();
            let message = format!(
                "the switch of service/{} to {} failed: {e}; its traffic stays on {}{}",
                s.service,
                s.color,
                live_text(s.live),
                if done.is_empty() {
                    String::new()
                } else {
                    format!(" ({} already)", done.join(", "))
                }
            );
            emit(events, s, "failed", s.color, message.clone());
            return Err(DeployError::Status(message).into());
        }
        emit(
            events,
            s,
            "switched",
            s.color,
            format!("traffic switched to {} ({})", s.color, copies_text(s)),
        );
    }
    Ok(())
}

/// Waits between tries of a switch that failed: the copies are ready and the same Service was applied moments
/// before, so a failure is most likely the API server restarting (about 30 s in all).
const SWITCH_RETRIES: [Duration; 5] = [
    Duration::from_millis(500),
    Duration::from_secs(2),
    Duration::from_secs(4),
    Duration::from_secs(8),
    Duration::from_secs(15),
];

/// One Service's switch: one apply, tried again while it fails for about 30 s (one line says so). Not cancellable:
/// half a release must not be left by a signal.
async fn switch_one(
    target: &KubeTarget,
    plan: &KubePlan,
    s: &Switch,
    switched: Value,
    events: &EventSink,
) -> Result<(), DeployError> {
    let never = CancellationToken::new();
    let mut waits = SWITCH_RETRIES.iter();
    loop {
        match target
            .apply_members(plan, std::slice::from_ref(&switched), events, &never)
            .await
        {
            Ok(_) => return Ok(()),
            Err(e) => match waits.next() {
                Some(wait) => {
                    if wait == &SWITCH_RETRIES[0] {
                        events.emit(Event::Warning {
                            message: format!(
                                "the switch of service/{} to {} failed ({e}); trying again for about 30 s",
                                s.service, s.color
                            ),
                        });
                    }
                    tokio::time::sleep(*wait).await;
                }
                None => return Err(e),
            },
        }
    }
}

/// After the switch: the plain Deployments a first release replaced are removed; previous copies are kept for
/// `keepPrevious`, then scaled to zero. A signal ends the wait and leaves them running.
async fn retire(
    target: &KubeTarget,
    plan: &KubePlan,
    release: &Release,
    events: &EventSink,
    cancel: &CancellationToken,
) {
    for s in &release.switches {
        let originals: Vec<String> = s.copies.iter().map(|c| c.original.clone()).collect();
        match target
            .delete_deployments(plan, &s.namespace, &originals, events)
            .await
        {
            Ok(removed) if !removed.is_empty() => emit(
                events,
                s,
                "removed",
                s.color,
                format!(
                    "removed {} (replaced by its blue/green copies)",
                    removed
                        .iter()
                        .map(|r| r.short())
                        .collect::<Vec<_>>()
                        .join(", ")
                ),
            ),
            Ok(_) => {}
            Err(e) => events.emit(Event::Warning {
                message: format!("could not remove the Deployments the copies replace: {e}"),
            }),
        }
    }
    let started = tokio::time::Instant::now();
    let mut waits: Vec<(&Switch, Duration)> = release
        .switches
        .iter()
        .filter_map(|s| match (s.live, s.entry.keep_previous) {
            (Some(_), KeepPrevious::For(d)) => Some((s, d)),
            _ => None,
        })
        .collect();
    waits.sort_by_key(|(_, d)| *d);
    for (s, keep) in waits {
        let previous = s.live.unwrap_or(s.color.other());
        if !keep.is_zero() {
            emit(
                events,
                s,
                "keeping",
                previous,
                format!(
                    "keeping {previous} at full scale for {} (`devloop rollback` is instant until then)",
                    seconds(keep)
                ),
            );
            tokio::select! {
                _ = tokio::time::sleep_until(started + keep) => {}
                _ = cancel.cancelled() => {
                    emit(events, s, "keeping", previous, format!(
                        "stopped waiting: {previous} stays at full scale; the next release replaces it"
                    ));
                    return;
                }
            }
        }
        for c in &s.copies {
            match scale_down(target, plan, &s.namespace, &c.previous).await {
                Ok(Some(replicas)) => emit(
                    events,
                    s,
                    "scaledDown",
                    previous,
                    format!(
                        "scaled deployment/{} from {replicas} to 0 (`devloop rollback` scales it back up)",
                        c.previous
                    ),
                ),
                Ok(None) => {}
                Err(e) => events.emit(Event::Warning {
                    message: format!("could not scale deployment/{} down: {e}", c.previous),
                }),
            }
        }
    }
}

/// Scales a previous copy to zero, recording its replicas; `None` when it is not there, not devloop's, or at zero.
async fn scale_down(
    target: &KubeTarget,
    plan: &KubePlan,
    namespace: &str,
    name: &str,
) -> Result<Option<i64>, DeployError> {
    match target.copy_state(plan, namespace, name).await? {
        Some(state) if state.ours && state.replicas > 0 => {
            target
                .scale_copy(namespace, name, 0, Some(state.replicas))
                .await?;
            Ok(Some(state.replicas))
        }
        _ => Ok(None),
    }
}

/// A step before the switch failed: every Service stays where it was; the new copies are removed unless kept.
async fn fail(
    target: &KubeTarget,
    plan: &KubePlan,
    release: &Release,
    step: &str,
    cause: Error,
    opts: &ReleaseOptions<'_>,
    events: &EventSink,
) -> Error {
    // A signal (a cancelled CI job) is a failure before the switch like any other: the live copies stay, the new
    // ones go, within the cleanup bound.
    let interrupted = matches!(cause, Error::Interrupted { .. })
        || matches!(&cause, Error::Deploy(DeployError::Cancelled));
    let mut lines = Vec::new();
    for s in &release.switches {
        let names: Vec<String> = s.copies.iter().map(|c| c.name.clone()).collect();
        let fate = if opts.keep_failed {
            format!("kept for inspection: {}", names.join(", "))
        } else {
            let removal = target.delete_deployments(plan, &s.namespace, &names, events);
            match tokio::time::timeout(opts.cleanup, removal).await {
                Ok(Ok(removed)) if removed.is_empty() => "no new copy was created".to_string(),
                Ok(Ok(removed)) => format!(
                    "removed {} (`--keep-failed` keeps them)",
                    removed
                        .iter()
                        .map(|r| r.name.as_str())
                        .collect::<Vec<_>>()
                        .join(", ")
                ),
                Ok(Err(e)) => format!("could not remove {}: {e}", names.join(", ")),
                Err(_) => format!(
                    "{} not removed within {:?}: run the release again, or `devloop delete`",
                    names.join(", "),
                    opts.cleanup
                ),
            }
        };
        let message = format!(
            "release of {} failed at {step}; traffic stays on {} (the Service never switched); {fate}",
            s.color,
            live_text(s.live)
        );
        emit(events, s, "failed", s.color, message.clone());
        lines.push(format!(
            "service/{} (namespace `{}`): {message}",
            s.service, s.namespace
        ));
    }
    if interrupted {
        return cause;
    }
    DeployError::Status(format!("{cause}\n\nblue/green: {}", lines.join("\n"))).into()
}

/// Runs the entry's check of its new copies.
async fn verify(
    target: &KubeTarget,
    plan: &KubePlan,
    s: &Switch,
    check: &crate::config::blue_green::Verify,
    opts: &ReleaseOptions<'_>,
    events: &EventSink,
    cancel: &CancellationToken,
) -> Result<(), Error> {
    let job_image = match &check.check {
        crate::config::blue_green::Check::Job { image, .. } => Some(
            opts.images
                .iter()
                .find(|(name, _)| name == image)
                .map(|(_, reference)| reference.clone())
                .unwrap_or_else(|| image.clone()),
        ),
        crate::config::blue_green::Check::Http { .. } => None,
    };
    let ctx = crate::verify::VerifyContext {
        namespace: s.namespace.clone(),
        service: s.service.clone(),
        color: s.color.to_string(),
        copies: s
            .copies
            .iter()
            .map(|c| crate::verify::Copy {
                deployment: c.name.clone(),
                labels: c.pod_labels.clone(),
            })
            .collect(),
        preview_url: s.preview_url.clone(),
        job_image,
        labels: target.member_labels(plan).await,
    };
    let verified = crate::verify::verify(target.client(), check, &ctx, cancel)
        .await
        .map_err(|e| match e {
            crate::verify::VerifyError::Cancelled => Error::Deploy(DeployError::Cancelled),
            e => DeployError::Status(e.to_string()).into(),
        })?;
    emit(events, s, "verified", s.color, verified.summary);
    Ok(())
}

/// Sends every configured Service (or only `service`) back to its previous colour: its copies scaled back up and
/// ready first when they were at zero. `layout` is the project rendered without images (the Services).
pub async fn rollback(
    target: &KubeTarget,
    layout: Vec<Value>,
    entries: &[BlueGreen],
    service: Option<&str>,
    deadline: Duration,
    events: &EventSink,
    cancel: &CancellationToken,
) -> Result<(), Error> {
    let chosen: Vec<&BlueGreen> = entries
        .iter()
        .filter(|e| service.is_none_or(|s| s == e.service))
        .collect();
    if chosen.is_empty() {
        return Err(Error::Usage {
            message: match service {
                Some(s) => format!("service `{s}` is not released blue/green in this project's config"),
                None => "this project's config releases no Service blue/green".to_string(),
            },
            hint: Some(
                "list the Service under `deploy.kubernetes.blueGreen` (with the profile that turns it on: `-p`)"
                    .into(),
            ),
        });
    }
    let plan = KubePlan::new(layout.clone());
    for entry in chosen {
        let (si, namespace) = bg::find_service(&layout, entry)?;
        let live = target.live_service(&namespace, &entry.service).await?;
        let Some(current) = live.color else {
            return Err(DeployError::Api {
                message: format!(
                    "service/{} (namespace `{namespace}`) has not been switched by a blue/green release: there is no previous colour to roll back to",
                    entry.service
                ),
                hint: Some("release it first: `devloop deploy` or `devloop run` with `deploy.kubernetes.blueGreen`".into()),
            }
            .into());
        };
        let back = current.other();
        let copies = previous_copies(target, &plan, &layout, entry, &namespace, &live).await?;
        let commit = copies.iter().find_map(|(_, s)| s.commit.clone());
        let images = copies.iter().find_map(|(_, s)| s.images.clone());
        let mut scaled = Vec::new();
        for (name, state) in &copies {
            if state.replicas == 0 {
                let replicas = state.recorded_replicas.unwrap_or(1).max(1);
                scaled.push(target.scale_copy(&namespace, name, replicas, None).await?);
            }
        }
        let rolling = Switch {
            entry: entry.clone(),
            namespace: namespace.clone(),
            service: entry.service.clone(),
            color: back,
            live: Some(current),
            copies: Vec::new(),
            switched: Value::Null,
            preview_url: String::new(),
        };
        if !scaled.is_empty() {
            emit(
                events,
                &rolling,
                "started",
                back,
                format!("scaling {back} back up before traffic returns to it"),
            );
            let set = DeployedSet {
                applied: scaled,
                ..Default::default()
            };
            target.wait_ready(&set, deadline, events, cancel).await?;
        }
        let service = bg::rolled_back(
            &layout[si],
            back,
            current,
            commit.as_deref().unwrap_or("unknown"),
            images.as_deref().unwrap_or_default(),
            &crate::time::Timestamp::now().rfc3339(),
        );
        target
            .apply_members(&plan, &[service], events, &CancellationToken::new())
            .await?;
        emit(
            events,
            &rolling,
            "rolledBack",
            back,
            format!(
                "traffic back on {back} (commit {}); {current} stays at full scale until the next release",
                commit.as_deref().unwrap_or("unknown")
            ),
        );
    }
    Ok(())
}

/// The copies of the entry's Deployments in the colour before `live`'s, each with its state: all of them, or an
/// error saying which is missing (then nothing was changed).
async fn previous_copies(
    target: &KubeTarget,
    plan: &KubePlan,
    layout: &[Value],
    entry: &BlueGreen,
    namespace: &str,
    live: &bg::LiveService,
) -> Result<Vec<(String, crate::deploy::kube::CopyState)>, Error> {
    let current = live.color.unwrap_or(Color::Blue);
    let mut copies = Vec::new();
    for original in bg::originals(layout, entry)? {
        let name = format!("{original}-{}", current.other());
        let state = target.copy_state(plan, namespace, &name).await?;
        let Some(state) = state.filter(|s| s.ours) else {
            let why = if live
                .annotations
                .contains_key(crate::labels::ANNOTATION_PREVIOUS_COLOR)
            {
                format!("the previous copy deployment/{name} is gone")
            } else {
                format!(
                    "{current} is its first colour, there is no previous copy (deployment/{name} does not exist)"
                )
            };
            return Err(DeployError::Api {
                message: format!(
                    "service/{} (namespace `{namespace}`) cannot roll back: {why}",
                    entry.service
                ),
                hint: Some("rollback returns traffic to the copy the last release switched away from; to run an older version, release its images (`devloop deploy --build-artifacts`, `--images`)".into()),
            }
            .into());
        };
        copies.push((name, state));
    }
    Ok(copies)
}

fn emit(events: &EventSink, s: &Switch, step: &str, color: Color, message: String) {
    events.emit(Event::Release {
        service: s.service.clone(),
        namespace: s.namespace.clone(),
        step: step.to_string(),
        color: color.to_string(),
        message,
    });
}

fn copies_text(s: &Switch) -> String {
    s.copies
        .iter()
        .map(|c| format!("deployment/{}", c.name))
        .collect::<Vec<_>>()
        .join(", ")
}

fn seconds(d: Duration) -> String {
    match d.as_secs() {
        s if s >= 120 && s % 60 == 0 => format!("{}m", s / 60),
        s if s > 0 => format!("{s}s"),
        _ => format!("{}ms", d.as_millis()),
    }
}

fn live_text(live: Option<Color>) -> String {
    match live {
        Some(c) => c.to_string(),
        None => "the Deployments it selected before".to_string(),
    }
}
