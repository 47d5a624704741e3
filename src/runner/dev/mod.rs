//! Runner, dev loop: change sets → rebuild what they affect → re-render → apply what changed → wait until ready,
//! again and again. A change arriving while an iteration builds or waits cancels it and starts over with the
//! merged changes (latest wins); an apply in progress is never cut. Failures are reported and the loop keeps
//! watching. Emits events; prints nothing. `replacement.rs`: the containers a rebuild replaces are stopped while it
//! builds, and started again when it does not replace them.

mod replacement;
pub mod spec;

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
use crate::config::{Artifact, Config};
use crate::deploy::{Change, DeleteOptions, DeployedSet, SyncRequest};
use crate::error::Error;
use crate::event::{Event, EventSink};
use crate::hint::Hint;
use crate::hook::{HookRun, Phase};
use crate::render::ArtifactImage;
use crate::runner::target::DeployTarget;
use crate::sync::{Changes, Placements, Planned};
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
        } else if report.synced {
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
        shutdown: CancellationToken,
    ) -> Result<DevSummary, Error> {
        let mut cfg = cfg;
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
                None => match next_trigger(&mut changes, superseded.is_some(), &shutdown).await {
                    Some(t) => t,
                    None => break,
                },
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
        Ok(self.report(cfg, trigger, results, synced, &changed, times))
    }

    /// Syncs the changes of artifacts whose every change a sync rule takes into their running containers, and
    /// takes them out of `only` (a failed sync leaves them there: they are rebuilt). Says once per artifact why
    /// one with sync rules is rebuilt instead. Returns the synced artifacts and the plan rendered for them (the
    /// iteration deploys it when it builds nothing).
    async fn sync_in_place(
        &self,
        cfg: &Config,
        trigger: &Trigger,
        running: &Running<'_>,
        only: &mut BTreeSet<String>,
    ) -> Result<(Vec<String>, Option<D::Plan>), Error> {
        let (images, placements) = (running.images, running.placements);
        let mut synced = Vec::new();
        if trigger.everything || !self.deployer.can_sync() {
            return Ok((synced, None));
        }
        let mut candidates = Vec::new();
        let mut not_copied = Vec::new();
        for a in cfg
            .build
            .artifacts
            .iter()
            .filter(|a| only.contains(&a.image))
        {
            let Some(current) = images.get(&tag::normalize_repository(&a.image)) else {
                continue;
            };
            // Its containers are stopped for a rebuild that newer changes cancelled: no container to sync into.
            if (a.sync.is_empty() && a.sync_infer.is_empty()) || running.replacing.holds(&a.image) {
                continue;
            }
            // An artifact built from another that is rebuilt now gets a new build arg: it is rebuilt too.
            let base_rebuilt = a.requires.iter().any(|r| {
                only.iter()
                    .any(|o| tag::normalize_repository(o) == tag::normalize_repository(&r.image))
            });
            match plan_sync(cfg, a, &trigger.paths, current, placements) {
                _ if base_rebuilt => {}
                Planned::Sync { copy, delete } => candidates.push((a, copy, delete)),
                Planned::Rebuild(reason) => self.skip_sync(a, reason),
                // The running image is what a build would make: the next build takes these changes.
                Planned::NotCopied => not_copied.push(&a.image),
                // Only files the image leaves out changed (a manifest in the context): the running image and
                // what was synced into it are current; a build now would only repeat the syncs.
                Planned::Unchanged => not_copied.push(&a.image),
            }
        }
        for image in not_copied {
            only.remove(image);
        }
        if candidates.is_empty() {
            return Ok((synced, None));
        }
        let plan = (self.plan)(cfg, &artifact_images(cfg, images))?;
        for (a, copy, delete) in candidates {
            let started = Instant::now();
            let req = SyncRequest {
                image: &a.image,
                reference: images
                    .get(&tag::normalize_repository(&a.image))
                    .map(ArtifactResult::deploy_reference)
                    .unwrap_or_default(),
                copy: copy.clone(),
                delete: delete.iter().map(|d| d.dest.clone()).collect(),
                hooks: &a.sync_hooks,
            };
            let gone: Vec<PathBuf> = delete.iter().map(|d| d.local.clone()).collect();
            let hooks = |phase| self.sync_hooks(phase, a, &req, &gone, &plan);
            hooks(Phase::BeforeSync)
                .run_host(&a.sync_hooks.before)
                .await?;
            match self.deployer.sync(&plan, &req).await {
                Ok(0) => self.skip_sync(a, "no running container uses it".into()),
                Ok(containers) => {
                    hooks(Phase::AfterSync)
                        .run_host(&a.sync_hooks.after)
                        .await?;
                    self.events.emit(Event::Synced {
                        image: a.image.clone(),
                        files: copy
                            .iter()
                            .map(|f| relative(&cfg.base_dir, &f.local))
                            .collect(),
                        deleted: delete
                            .iter()
                            .map(|d| relative(&cfg.base_dir, &d.local))
                            .collect(),
                        containers,
                        duration_ms: started.elapsed().as_millis() as u64,
                    });
                    only.remove(&a.image);
                    synced.push(a.image.clone());
                }
                Err(e) => self.events.emit(Event::Warning {
                    message: format!("{}: file sync failed, rebuilding instead: {e}", a.image),
                }),
            }
        }
        Ok((synced, Some(plan)))
    }

    /// After a deploy that started pods from images it did not rebuild (a manifest edit, a scale-up), brings their
    /// containers up to date with what was synced into that image since it was built (the target remembers it).
    async fn replay_syncs(
        &self,
        cfg: &Config,
        rebuilt: &[ArtifactResult],
        current: &HashMap<String, ArtifactResult>,
        plan: &D::Plan,
    ) {
        if !self.deployer.can_sync() {
            return;
        }
        let no_hooks = crate::config::hooks::Hooks::default();
        for a in &cfg.build.artifacts {
            let key = tag::normalize_repository(&a.image);
            if (a.sync.is_empty() && a.sync_infer.is_empty())
                || rebuilt
                    .iter()
                    .any(|r| tag::normalize_repository(&r.image) == key)
            {
                continue;
            }
            let Some(running) = current.get(&key) else {
                continue;
            };
            let req = SyncRequest {
                image: &a.image,
                reference: running.deploy_reference(),
                copy: Vec::new(),
                delete: Vec::new(),
                hooks: &no_hooks,
            };
            if let Err(e) = self.deployer.sync(plan, &req).await {
                self.events.emit(Event::Warning {
                    message: format!(
                        "{}: pods started by this deploy lack the files synced since the last build: {e}",
                        a.image
                    ),
                });
            }
        }
    }

    /// The host sync hooks of `a` for `phase`, with what they are told: the running image, the context, the files.
    fn sync_hooks<'h>(
        &'h self,
        phase: Phase,
        a: &'h Artifact,
        req: &SyncRequest<'_>,
        deleted: &[PathBuf],
        plan: &D::Plan,
    ) -> HookRun<'h> {
        let local: Vec<PathBuf> = req.copy.iter().map(|f| f.local.clone()).collect();
        let mut env = crate::hook::sync_env(&req.reference, &a.context, &local, deleted);
        env.extend(self.deployer.hook_env(plan));
        HookRun {
            phase,
            image: Some(&a.image),
            env,
            events: &self.events,
            // A newer change drops the sync's future, which kills the hook: no token of its own needed.
            cancel: CancellationToken::new(),
        }
    }

    fn skip_sync(&self, a: &Artifact, reason: String) {
        self.events.emit(Event::SyncSkipped {
            image: a.image.clone(),
            reason,
        });
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
                synced,
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
            synced: synced_any,
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

/// Waits for the next change set. After a superseded build, gives up waiting after [`SUPERSEDED_WAIT`] and goes
/// again by itself. `None`: the session is over (shutdown, or the watcher stopped).
async fn next_trigger(
    changes: &mut mpsc::UnboundedReceiver<ChangeSet>,
    superseded: bool,
    shutdown: &CancellationToken,
) -> Option<Trigger> {
    let give_up = async {
        match superseded {
            true => tokio::time::sleep(SUPERSEDED_WAIT).await,
            false => std::future::pending().await,
        }
    };
    tokio::select! {
        _ = shutdown.cancelled() => None,
        cs = changes.recv() => cs.map(Trigger::from),
        () = give_up => Some(Trigger {
            paths: BTreeSet::new(),
            first_at: Instant::now(),
            everything: false,
            startup: false,
        }),
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
    /// Files were synced into running containers.
    synced: bool,
}

/// What the sync stage makes of `a`'s changes, against the image that runs (`current`).
fn plan_sync(
    cfg: &Config,
    a: &Artifact,
    paths: &BTreeSet<PathBuf>,
    current: &ArtifactResult,
    placements: &Placements,
) -> Planned {
    let ignore = match crate::context::read_ignore_rules(&a.context, &a.dockerfile)
        .and_then(|rules| crate::context::DockerIgnore::from_rules(&rules))
    {
        Ok(i) => i,
        Err(e) => return Planned::Rebuild(e.to_string()),
    };
    let wanted = tag::normalize_repository(&a.image);
    let required_by = cfg
        .build
        .artifacts
        .iter()
        .find(|b| {
            b.requires
                .iter()
                .any(|r| tag::normalize_repository(&r.image) == wanted)
        })
        .map(|b| b.image.as_str());
    crate::sync::plan(&Changes {
        artifact: a,
        paths,
        ignore: &ignore,
        required_by,
        build_args: &current.build_args,
        placements,
    })
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
/// watcher (sent by the config reload). Ends when `shutdown` fires (or the watcher ends, in manual mode when stdin
/// closes).
pub async fn session<B: Builder, D: DeployTarget>(
    dev: &DevLoop<'_, B, D>,
    cfg: Config,
    mut watcher: crate::watch::Watcher,
    mut respecs: mpsc::UnboundedReceiver<crate::watch::WatchSpec>,
    side: impl std::future::Future<Output = ()>,
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
    let (result, (), ()) = tokio::join!(dev.run(cfg, rx, shutdown), pump, side);
    result
}

#[cfg(test)]
mod tests;
