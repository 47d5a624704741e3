//! Runner, dev loop: change sets → rebuild what they affect → re-render → apply what changed → wait until ready,
//! again and again. A change arriving while an iteration builds or waits cancels it and starts over with the
//! merged changes (latest wins); an apply in progress is never cut. Failures are reported and the loop keeps
//! watching. Emits events; prints nothing. `replacement.rs`: the containers a rebuild replaces are stopped while it
//! builds, and started again when it does not replace them.

mod replacement;
pub mod spec;
mod sync;

use std::collections::{BTreeSet, HashMap, HashSet};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU8, Ordering};
use std::time::{Duration, Instant};

use tokio::sync::mpsc;
use tokio_util::sync::CancellationToken;

use super::hooks::{Visited, run_all};
use super::{ArtifactResult, BuildOptions, BuildRun};
use crate::build::Builder;
use crate::cache::Store;
use crate::config::Config;
use crate::deploy::{Change, DeleteOptions, DeployedSet};
use crate::error::Error;
use crate::event::{Event, EventSink};
use crate::hint::Hint;
use crate::hook::{HookRun, Phase};
use crate::render::ArtifactImage;
use crate::runner::target::DeployTarget;
use crate::sync::Placements;
use crate::tag;
use crate::template::Vars;
use crate::time::Timestamp;
use crate::watch::ChangeSet;
use replacement::Replacing;

const PHASE_BUILD: u8 = 0;
const PHASE_APPLY: u8 = 1;
const PHASE_WAIT: u8 = 2;

/// How the dev loop behaves.
#[derive(Debug, Clone)]
pub struct DevOptions {
    /// How images are built (push, default repo; `deploy_tags` is forced on).
    pub build: BuildOptions,
    /// How long changed workloads may take to become ready.
    pub status_deadline: Duration,
    /// Delete what was deployed when the loop stops.
    pub cleanup: bool,
    /// Bound on the cleanup.
    pub cleanup_timeout: Duration,
}

/// Turns images into what the deployer deploys (rendering, for Kubernetes).
pub type PlanFn<'a, P> = dyn Fn(&Config, &[ArtifactImage]) -> Result<P, Error> + Send + Sync + 'a;
/// Re-reads the config after devloop.yaml changed.
pub type ReloadFn<'a> = dyn Fn() -> Result<Config, Error> + Send + Sync + 'a;

/// Everything the loop drives.
pub struct DevLoop<'a, B: Builder, D: DeployTarget> {
    pub builder: &'a B,
    pub deployer: &'a D,
    pub store: &'a Store,
    pub vars: &'a Vars,
    pub events: EventSink,
    pub reload: &'a ReloadFn<'a>,
    pub plan: &'a PlanFn<'a, D::Plan>,
    pub opts: DevOptions,
    /// Counts successful iterations, so side streams (port-forwards) can start after the first deploy.
    pub progress: tokio::sync::watch::Sender<usize>,
    /// The containers deploy hooks already ran in this session (a pod is visited once per phase).
    pub hooks_ran: Visited,
    /// The plan of the last iteration that deployed: where containers that start between iterations are.
    pub deployed: tokio::sync::Mutex<Option<D::Plan>>,
}

/// How long a superseded build waits for the watcher to bring the change that overtook it, before it starts
/// again by itself (a changed file the watcher does not report, e.g. under a `watch.ignore` glob). Longer than
/// the watcher's burst cap, so a burst of saves is not met with a build every few hundred milliseconds.
const SUPERSEDED_WAIT: Duration = Duration::from_secs(10);

/// What one session did, for the exit summary.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct DevSummary {
    pub iterations: usize,
    /// save → ready of every iteration a save started that changed something, in milliseconds (the start-up
    /// deploy is not a save).
    pub save_to_ready_ms: Vec<u64>,
    /// Iterations after a save that rebuilt at least one image.
    pub rebuilt: usize,
    /// Iterations after a save that synced files and rebuilt nothing.
    pub synced: usize,
    /// Iterations after a save whose images all came from the cache (content back to a built state, or a
    /// manifest edit).
    pub cached: usize,
}

impl DevSummary {
    /// The median save → ready (the mean of the two middle values for an even count), if any save deployed.
    pub fn median_ms(&self) -> Option<u64> {
        let mut v = self.save_to_ready_ms.clone();
        v.sort_unstable();
        match v.len() {
            0 => None,
            n if n % 2 == 1 => Some(v[n / 2]),
            n => Some((v[n / 2 - 1] + v[n / 2]).div_ceil(2)),
        }
    }

    /// Counts a successful iteration: a save that changed something adds its save → ready and what it did.
    fn count(&mut self, trigger: &Trigger, report: &IterationReport) {
        self.iterations += 1;
        if trigger.startup {
            return;
        }
        let Some(ms) = report.save_to_ready_ms else {
            return;
        };
        self.save_to_ready_ms.push(ms);
        if report.results.iter().any(|r| !r.cached) {
            self.rebuilt += 1;
        } else if !report.synced.is_empty() {
            self.synced += 1;
        } else {
            self.cached += 1;
        }
    }

    /// The 90th percentile save → ready (nearest rank), once there are at least 10 saves.
    pub fn p90_ms(&self) -> Option<u64> {
        let mut v = self.save_to_ready_ms.clone();
        if v.len() < 10 {
            return None;
        }
        v.sort_unstable();
        let rank = (v.len() * 9).div_ceil(10);
        Some(v[rank - 1])
    }
}

/// Why an iteration runs.
#[derive(Debug, Clone)]
struct Trigger {
    paths: BTreeSet<PathBuf>,
    first_at: Instant,
    /// Everything is re-checked (first iteration, manual trigger without paths, config reload).
    everything: bool,
    /// The session's first deploy: not a save.
    startup: bool,
}

impl Trigger {
    fn merge(self, cs: ChangeSet) -> Trigger {
        self.join(Trigger::from(cs))
    }

    /// Both triggers' changes; a start-up that has not completed stays one.
    fn join(mut self, other: Trigger) -> Trigger {
        self.everything |= other.everything;
        self.startup |= other.startup;
        self.paths.extend(other.paths);
        self.first_at = self.first_at.min(other.first_at);
        self
    }

    /// Also the changes of a failed iteration (timed from this trigger's save: that one was reported).
    fn carry(mut self, failed: Trigger) -> Trigger {
        self.everything |= failed.everything;
        self.startup |= failed.startup;
        self.paths.extend(failed.paths);
        self
    }

    fn from(cs: ChangeSet) -> Trigger {
        Trigger {
            everything: cs.manual && cs.paths.is_empty(),
            first_at: cs.first_event_at,
            paths: cs.paths,
            startup: false,
        }
    }
}

impl<B: Builder, D: DeployTarget> DevLoop<'_, B, D> {
    /// Runs until `shutdown` fires or `changes` closes, then cleans up (unless disabled).
    pub async fn run(
        &self,
        cfg: Config,
        mut changes: mpsc::UnboundedReceiver<ChangeSet>,
        mut starts: Option<mpsc::UnboundedReceiver<()>>,
        shutdown: CancellationToken,
    ) -> Result<DevSummary, Error> {
        let mut cfg = cfg;
        // Artifacts with files synced into their running image: containers that start from it need them.
        let mut synced_into: HashSet<String> = HashSet::new();
        let mut images: HashMap<String, ArtifactResult> = HashMap::new();
        let mut summary = DevSummary::default();
        let mut pending = Some(Trigger {
            paths: BTreeSet::new(),
            first_at: Instant::now(),
            everything: true,
            startup: true,
        });
        // An iteration whose build was overtaken by newer content, to go again with the change that overtook it.
        let mut superseded: Option<Trigger> = None;
        // A failed iteration's changes: the next one takes them too, so what it failed to build is not synced over.
        let mut failed: Option<Trigger> = None;
        // The artifacts' Dockerfiles as sync reads them, parsed when they change.
        let placements = Placements::default();
        // Containers stopped while their images rebuild (kept across a cancelled iteration).
        let replacing = Replacing::default();
        loop {
            let trigger = match pending.take() {
                Some(t) => t,
                None => {
                    match next_trigger(&mut changes, &mut starts, superseded.is_some(), &shutdown)
                        .await
                    {
                        Next::Change(t) => t,
                        Next::Started => {
                            if !synced_into.is_empty() {
                                self.catch_up_started(&cfg, &images).await;
                            }
                            continue;
                        }
                        Next::End => break,
                    }
                }
            };
            let mut trigger = match superseded.take() {
                Some(earlier) => earlier.join(trigger),
                None => trigger,
            };
            if let Some(earlier) = failed.take() {
                trigger = trigger.carry(earlier);
            }
            self.reload_if_edited(&mut cfg, &mut trigger);
            let outcome = self
                .run_iteration(
                    &cfg,
                    &trigger,
                    &Running {
                        images: &images,
                        placements: &placements,
                        replacing: &replacing,
                    },
                    &mut changes,
                    &mut pending,
                    &shutdown,
                )
                .await;
            match outcome {
                Some(Ok(report)) => {
                    // Deployed: what was stopped for the new images is replaced (a stop that ended after the deploy
                    // included).
                    replacing.take_all();
                    self.progress.send_modify(|n| *n += 1);
                    summary.count(&trigger, &report);
                    // A new image starts without synced files; the same image keeps them.
                    for r in &report.results {
                        let key = tag::normalize_repository(&r.image);
                        if images.get(&key).map(|p| p.deploy_reference())
                            != Some(r.deploy_reference())
                        {
                            synced_into.remove(&key);
                        }
                    }
                    synced_into.extend(report.synced.iter().map(|i| tag::normalize_repository(i)));
                    for r in report.results {
                        images.insert(tag::normalize_repository(&r.image), r);
                    }
                }
                // A file changed while its context was sent: newer content is coming, this is not a failure.
                Some(Err(e)) if e.is_superseded() => superseded = Some(trigger),
                Some(Err(e)) => {
                    summary.iterations += 1;
                    self.events.emit(Event::IterationFailed {
                        message: e.to_string(),
                    });
                    failed = Some(trigger);
                    self.restore(replacing.take_all(), "the iteration failed")
                        .await;
                }
                None if shutdown.is_cancelled() => break,
                None => {
                    self.events.emit(Event::IterationCancelled {
                        reason: "new changes arrived".into(),
                    });
                }
            }
        }
        if self.opts.cleanup {
            self.clean_up().await;
        } else {
            self.restore(
                replacing.take_all(),
                "devloop stopped before it was replaced",
            )
            .await;
        }
        self.events.emit(Event::DevStopped {
            iterations: summary.iterations,
            median_save_to_ready_ms: summary.median_ms(),
            p90_save_to_ready_ms: summary.p90_ms(),
            saves: summary.save_to_ready_ms.len(),
            rebuilt: summary.rebuilt,
            synced: summary.synced,
            cached: summary.cached,
        });
        Ok(summary)
    }

    /// A config edit reloads everything; an invalid one is reported and the old config kept.
    fn reload_if_edited(&self, cfg: &mut Config, trigger: &mut Trigger) {
        let edited = trigger.paths.iter().any(|p| {
            Path::new(&cfg.file) == p || std::path::absolute(&cfg.file).is_ok_and(|f| &f == p)
        });
        if !edited {
            return;
        }
        match (self.reload)() {
            Ok(new) => {
                *cfg = new;
                trigger.everything = true;
                self.events.emit(Event::Warning {
                    message: format!("{} changed: configuration reloaded", cfg.file),
                });
            }
            Err(e) => {
                self.events.emit(Event::Warning {
                    message: format!(
                        "{e}{}",
                        Hint("devloop keeps running with the previous configuration")
                    ),
                });
            }
        }
    }

    /// Runs one iteration while listening for more changes: they are merged into `pending`, and latest wins — a
    /// stale build or wait is dropped (`None`); an apply in flight finishes first. `None` too on shutdown.
    async fn run_iteration(
        &self,
        cfg: &Config,
        trigger: &Trigger,
        running: &Running<'_>,
        changes: &mut mpsc::UnboundedReceiver<ChangeSet>,
        pending: &mut Option<Trigger>,
        shutdown: &CancellationToken,
    ) -> Option<Result<IterationReport, Error>> {
        let phase = AtomicU8::new(PHASE_BUILD);
        let cancel = CancellationToken::new();
        let (misses, mut started) = mpsc::unbounded_channel();
        let mut work = Box::pin(self.iteration(cfg, trigger, running, &phase, &cancel, misses));
        // Stops what a starting build replaces; a stop under way is finished even when the iteration is dropped,
        // so that what was stopped is known (and started again if need be).
        let mut stopper = Box::pin(self.stop_replaced(&mut started, running));
        let mut stopped_all = false;
        let outcome = loop {
            tokio::select! {
                r = &mut work => break Some(r),
                () = &mut stopper, if !stopped_all => stopped_all = true,
                _ = shutdown.cancelled() => {
                    cancel.cancel();
                    break None;
                }
                Some(cs) = changes.recv() => {
                    *pending = Some(pending.take().unwrap_or_else(|| trigger.clone()).merge(cs));
                    if phase.load(Ordering::SeqCst) != PHASE_APPLY {
                        cancel.cancel();
                        break None;
                    }
                }
            }
        };
        drop(work);
        if !stopped_all {
            stopper.await;
        }
        outcome
    }

    /// Deletes what the session deployed, bounded by the cleanup timeout.
    async fn clean_up(&self) {
        let cleanup = self.deployer.delete_all(
            DeleteOptions {
                dry_run: false,
                wait: false,
            },
            &self.events,
        );
        match tokio::time::timeout(self.opts.cleanup_timeout, cleanup).await {
            Ok(Ok(_)) => {}
            Ok(Err(e)) => self.events.emit(Event::Warning {
                message: format!("cleanup failed: {e}"),
            }),
            Err(_) => self.events.emit(Event::Warning {
                message: format!(
                    "cleanup did not finish within {:?}; run `devloop delete` to finish it",
                    self.opts.cleanup_timeout
                ),
            }),
        }
    }

    async fn iteration(
        &self,
        cfg: &Config,
        trigger: &Trigger,
        running: &Running<'_>,
        phase: &AtomicU8,
        cancel: &CancellationToken,
        misses: mpsc::UnboundedSender<String>,
    ) -> Result<IterationReport, Error> {
        phase.store(PHASE_BUILD, Ordering::SeqCst);
        let images = running.images;
        let mut only = to_build(cfg, trigger, images);
        // File sync: artifacts whose only changes are files their sync rules take are updated in place.
        let (synced, sync_plan) = self.sync_in_place(cfg, trigger, running, &mut only).await?;
        let mut results = Vec::new();
        if !only.is_empty() {
            let run = BuildRun {
                cfg,
                builder: self.builder,
                store: self.store,
                vars: self.vars,
                now: Timestamp::now(),
                events: self.events.clone(),
                cancel: cancel.clone(),
                misses: Some(misses),
            };
            let opts = BuildOptions {
                only: only.into_iter().collect(),
                deploy_tags: true,
                ..self.opts.build.clone()
            };
            results = run.build_all(&opts).await?;
        }
        self.restore_unreplaced(&results, running).await;
        let built_at = Instant::now();
        let mut current: HashMap<String, ArtifactResult> = images.clone();
        for r in &results {
            current.insert(tag::normalize_repository(&r.image), r.clone());
        }
        // Nothing built: the images are those the sync rendered the plan with (no second render, no second
        // `kustomize build`).
        let plan = match sync_plan.filter(|_| results.is_empty()) {
            Some(plan) => plan,
            None => (self.plan)(cfg, &artifact_images(cfg, &current))?,
        };
        // Hooks are never cut by a newer change (a half-run hook is worse than a late one): the apply phase.
        phase.store(PHASE_APPLY, Ordering::SeqCst);
        // An iteration that only synced files deploys nothing new: no deploy hooks (Skaffold's rule too).
        let sync_only = results.is_empty() && !synced.is_empty();
        let hooks = (!sync_only).then_some(&cfg.deploy_hooks);
        let run = |phase| HookRun {
            phase,
            image: None,
            env: self.deployer.hook_env(&plan),
            events: &self.events,
            cancel: cancel.clone(),
        };
        if let Some(h) = hooks.filter(|h| !h.before.is_empty()) {
            let before = run(Phase::BeforeDeploy);
            run_all(&before, &h.before, self.deployer, &plan, &self.hooks_ran).await?;
        }
        let deployed = self.deployer.deploy(&plan, &self.events, cancel).await?;
        let applied_at = Instant::now();
        // The deploy replaced what was stopped for the new images.
        running.replacing.take_all();
        let changed = DeployedSet {
            applied: deployed
                .applied
                .iter()
                .filter(|a| a.change != Change::Unchanged)
                .cloned()
                .collect(),
            pruned: deployed.pruned.clone(),
            created_namespaces: deployed.created_namespaces.clone(),
        };
        phase.store(PHASE_WAIT, Ordering::SeqCst);
        if !changed.applied.is_empty() {
            self.deployer
                .wait_ready(&changed, self.opts.status_deadline, &self.events, cancel)
                .await?;
            self.replay_syncs(cfg, &results, &current, &plan).await;
        }
        if let Some(h) = hooks.filter(|h| !h.after.is_empty()) {
            phase.store(PHASE_APPLY, Ordering::SeqCst);
            let after = run(Phase::AfterDeploy);
            run_all(&after, &h.after, self.deployer, &plan, &self.hooks_ran).await?;
        }
        let times = Times {
            built: built_at,
            applied: applied_at,
            ready: Instant::now(),
        };
        let report = self.report(cfg, trigger, results, synced, &changed, times);
        *self.deployed.lock().await = Some(plan);
        Ok(report)
    }

    /// What the iteration did: the `iteration` event (when it did something, or checked everything) and the report.
    fn report(
        &self,
        cfg: &Config,
        trigger: &Trigger,
        results: Vec<ArtifactResult>,
        synced: Vec<String>,
        changed: &DeployedSet,
        times: Times,
    ) -> IterationReport {
        let rebuilt: Vec<String> = results
            .iter()
            .filter(|r| !r.cached)
            .map(|r| r.image.clone())
            .collect();
        let synced_any = !synced.is_empty();
        let did_something = !rebuilt.is_empty()
            || synced_any
            || !changed.applied.is_empty()
            || !changed.pruned.is_empty();
        let ms = |t: Instant| t.saturating_duration_since(trigger.first_at).as_millis() as u64;
        let save_to_ready_ms = did_something.then(|| ms(times.ready));
        if did_something || trigger.everything {
            self.events.emit(Event::Iteration {
                changed: trigger
                    .paths
                    .iter()
                    .map(|p| relative(&cfg.base_dir, p))
                    .collect(),
                rebuilt,
                cached: results
                    .iter()
                    .filter(|r| r.cached)
                    .map(|r| r.image.clone())
                    .collect(),
                synced: synced.clone(),
                applied: changed.applied.len(),
                pruned: changed.pruned.len(),
                built_ms: ms(times.built),
                applied_ms: ms(times.applied),
                ready_ms: ms(times.ready),
            });
        }
        IterationReport {
            results,
            save_to_ready_ms,
            synced,
        }
    }
}

/// What runs now, as the loop knows it: each artifact's current image, and its Dockerfile as sync reads it.
struct Running<'r> {
    images: &'r HashMap<String, ArtifactResult>,
    placements: &'r Placements,
    replacing: &'r Replacing,
}

/// When an iteration's phases ended.
struct Times {
    built: Instant,
    applied: Instant,
    ready: Instant,
}

/// What the loop waits for between iterations.
enum Next {
    /// Files changed (or a superseded build goes again by itself).
    Change(Trigger),
    /// Containers started (every start signalled so far is taken at once).
    Started,
    /// The session is over: shutdown, or the watcher stopped.
    End,
}

/// Waits for the next change set or container start. After a superseded build, gives up waiting after
/// [`SUPERSEDED_WAIT`] and goes again by itself.
async fn next_trigger(
    changes: &mut mpsc::UnboundedReceiver<ChangeSet>,
    starts: &mut Option<mpsc::UnboundedReceiver<()>>,
    superseded: bool,
    shutdown: &CancellationToken,
) -> Next {
    let give_up = async {
        match superseded {
            true => tokio::time::sleep(SUPERSEDED_WAIT).await,
            false => std::future::pending().await,
        }
    };
    tokio::pin!(give_up);
    loop {
        let started = async {
            match starts.as_mut() {
                Some(rx) => rx.recv().await,
                None => std::future::pending().await,
            }
        };
        let next = tokio::select! {
            _ = shutdown.cancelled() => Next::End,
            cs = changes.recv() => cs.map_or(Next::End, |cs| Next::Change(Trigger::from(cs))),
            s = started => match s {
                Some(()) => Next::Started,
                // Nobody signals starts any more (the watch ended): wait for changes only.
                None => {
                    *starts = None;
                    continue;
                }
            },
            () = &mut give_up => Next::Change(Trigger {
                paths: BTreeSet::new(),
                first_at: Instant::now(),
                everything: false,
                startup: false,
            }),
        };
        if let (Next::Started, Some(rx)) = (&next, starts.as_mut()) {
            while rx.try_recv().is_ok() {}
        }
        return next;
    }
}

/// The artifacts an iteration builds: those its changes affect (all, when everything is re-checked), plus any
/// with no image yet.
fn to_build(
    cfg: &Config,
    trigger: &Trigger,
    images: &HashMap<String, ArtifactResult>,
) -> BTreeSet<String> {
    let affected = if trigger.everything {
        cfg.build
            .artifacts
            .iter()
            .map(|a| a.image.clone())
            .collect()
    } else {
        affected_artifacts(cfg, &trigger.paths)
    };
    let missing = cfg
        .build
        .artifacts
        .iter()
        .filter(|a| !images.contains_key(&tag::normalize_repository(&a.image)))
        .map(|a| a.image.clone());
    let mut only: BTreeSet<String> = affected.into_iter().collect();
    only.extend(missing);
    only
}

/// The images to deploy, in config order: each artifact's current one.
fn artifact_images(cfg: &Config, images: &HashMap<String, ArtifactResult>) -> Vec<ArtifactImage> {
    cfg.build
        .artifacts
        .iter()
        .filter_map(|a| images.get(&tag::normalize_repository(&a.image)))
        .map(ArtifactResult::artifact_image)
        .collect()
}

struct IterationReport {
    results: Vec<ArtifactResult>,
    save_to_ready_ms: Option<u64>,
    /// The artifacts whose files were synced into running containers.
    synced: Vec<String>,
}

fn relative(base: &Path, p: &Path) -> String {
    p.strip_prefix(base).unwrap_or(p).display().to_string()
}

/// The artifacts whose inputs lie under the changed paths — their context, Dockerfile or ignore file — plus every
/// artifact that requires one of them. Whether content really changed is the cache's call.
pub fn affected_artifacts(cfg: &Config, paths: &BTreeSet<PathBuf>) -> Vec<String> {
    let mut hit: HashSet<String> = HashSet::new();
    for a in &cfg.build.artifacts {
        let touches = paths
            .iter()
            .any(|p| p.starts_with(&a.context) || p == &a.dockerfile || a.context.starts_with(p));
        if touches {
            hit.insert(tag::normalize_repository(&a.image));
        }
    }
    // Dependents of affected artifacts are affected too (their build arg changes).
    loop {
        let before = hit.len();
        for a in &cfg.build.artifacts {
            if a.requires
                .iter()
                .any(|r| hit.contains(&tag::normalize_repository(&r.image)))
            {
                hit.insert(tag::normalize_repository(&a.image));
            }
        }
        if hit.len() == before {
            break;
        }
    }
    cfg.build
        .artifacts
        .iter()
        .filter(|a| hit.contains(&tag::normalize_repository(&a.image)))
        .map(|a| a.image.clone())
        .collect()
}

/// Runs a whole `devloop dev` session in the caller's task: the watcher feeding change sets, the loop, and the
/// side streams (logs, port-forwards) — all polled together, nothing outlives the call. `respecs` re-targets the
/// watcher (sent by the config reload); `starts` signals containers that started (Kubernetes: they get what was
/// synced into their image). Ends when `shutdown` fires (or the watcher ends, in manual mode when stdin
/// closes).
pub async fn session<B: Builder, D: DeployTarget>(
    dev: &DevLoop<'_, B, D>,
    cfg: Config,
    mut watcher: crate::watch::Watcher,
    mut respecs: mpsc::UnboundedReceiver<crate::watch::WatchSpec>,
    side: impl std::future::Future<Output = ()>,
    starts: Option<mpsc::UnboundedReceiver<()>>,
    shutdown: CancellationToken,
) -> Result<DevSummary, Error> {
    let (tx, rx) = mpsc::unbounded_channel();
    let events = dev.events.clone();
    let stop = shutdown.clone();
    let pump = async move {
        loop {
            let cs = tokio::select! {
                _ = stop.cancelled() => break,
                Some(spec) = respecs.recv() => {
                    match watcher.update(spec) {
                        Ok(warnings) => {
                            for w in warnings {
                                events.emit(Event::Warning { message: w.to_string() });
                            }
                        }
                        Err(e) => events.emit(Event::Warning {
                            message: format!("the watcher keeps the previous paths: {e}"),
                        }),
                    }
                    continue;
                }
                cs = watcher.next() => cs,
            };
            let Some(cs) = cs else { break };
            for w in &cs.warnings {
                events.emit(Event::Warning {
                    message: w.to_string(),
                });
            }
            if tx.send(cs).is_err() {
                break;
            }
        }
    };
    let stop = shutdown.clone();
    let side = async move {
        tokio::select! {
            _ = side => {}
            _ = stop.cancelled() => {}
        }
    };
    let (result, (), ()) = tokio::join!(dev.run(cfg, rx, starts, shutdown), pump, side);
    result
}

#[cfg(test)]
mod tests;
