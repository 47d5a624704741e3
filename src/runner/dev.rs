//! Runner, dev loop: change sets → rebuild what they affect → re-render → apply what changed → wait until ready,
//! again and again. A change arriving while an iteration builds or waits cancels it and starts over with the
//! merged changes (latest wins); an apply in progress is never cut. Failures are reported and the loop keeps
//! watching. Emits events; prints nothing.

use std::collections::{BTreeSet, HashMap, HashSet};
use std::path::{Path, PathBuf};
use std::pin::pin;
use std::sync::atomic::{AtomicU8, Ordering};
use std::time::{Duration, Instant};

use tokio::sync::mpsc;
use tokio_util::sync::CancellationToken;

use super::{ArtifactResult, BuildOptions, BuildRun};
use crate::build::Builder;
use crate::cache::Store;
use crate::config::{Artifact, Config};
use crate::deploy::{Change, DeleteOptions, DeployedSet, Deployer, SyncFile};
use crate::error::Error;
use crate::event::{Event, EventSink};
use crate::render::ArtifactImage;
use crate::tag::{self, Timestamp};
use crate::template::Vars;
use crate::watch::ChangeSet;

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
pub struct DevLoop<'a, B: Builder, D: Deployer> {
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

    fn from(cs: ChangeSet) -> Trigger {
        Trigger {
            everything: cs.manual && cs.paths.is_empty(),
            first_at: cs.first_event_at,
            paths: cs.paths,
            startup: false,
        }
    }
}

impl<B: Builder, D: Deployer> DevLoop<'_, B, D> {
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
        'session: loop {
            let trigger = match pending.take() {
                Some(t) => t,
                None => {
                    let give_up = async {
                        match superseded {
                            Some(_) => tokio::time::sleep(SUPERSEDED_WAIT).await,
                            None => std::future::pending().await,
                        }
                    };
                    tokio::select! {
                        _ = shutdown.cancelled() => break 'session,
                        cs = changes.recv() => match cs {
                            Some(cs) => Trigger::from(cs),
                            None => break 'session,
                        },
                        () = give_up => Trigger {
                            paths: BTreeSet::new(),
                            first_at: Instant::now(),
                            everything: false,
                            startup: false,
                        },
                    }
                }
            };
            let trigger = match superseded.take() {
                Some(earlier) => earlier.join(trigger),
                None => trigger,
            };
            // A config edit reloads everything; an invalid one is reported and the old config kept.
            let mut trigger = trigger;
            if trigger.paths.iter().any(|p| {
                Path::new(&cfg.file) == p || std::path::absolute(&cfg.file).is_ok_and(|f| &f == p)
            }) {
                match (self.reload)() {
                    Ok(new) => {
                        cfg = new;
                        trigger.everything = true;
                        self.events.emit(Event::Warning {
                            message: format!("{} changed: configuration reloaded", cfg.file),
                        });
                    }
                    Err(e) => {
                        self.events.emit(Event::Warning {
                            message: format!(
                                "{e}\n\nhint: devloop keeps running with the previous configuration"
                            ),
                        });
                    }
                }
            }
            let phase = AtomicU8::new(PHASE_BUILD);
            let cancel = CancellationToken::new();
            let outcome = {
                let mut work = pin!(self.iteration(&cfg, &trigger, &images, &phase, &cancel));
                loop {
                    tokio::select! {
                        r = &mut work => break Some(r),
                        _ = shutdown.cancelled() => {
                            cancel.cancel();
                            break None;
                        }
                        Some(cs) = changes.recv() => {
                            pending = Some(pending.take().unwrap_or_else(|| trigger.clone()).merge(cs));
                            // Latest wins: a stale build or wait is dropped; an apply in flight finishes first.
                            if phase.load(Ordering::SeqCst) != PHASE_APPLY {
                                cancel.cancel();
                                break None;
                            }
                        }
                    }
                }
            };
            match outcome {
                Some(Ok(report)) => {
                    self.progress.send_modify(|n| *n += 1);
                    summary.iterations += 1;
                    if !trigger.startup
                        && let Some(ms) = report.save_to_ready_ms
                    {
                        summary.save_to_ready_ms.push(ms);
                        if report.results.iter().any(|r| !r.cached) {
                            summary.rebuilt += 1;
                        } else if report.synced {
                            summary.synced += 1;
                        } else {
                            summary.cached += 1;
                        }
                    }
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
                }
                None if shutdown.is_cancelled() => break 'session,
                None => {
                    self.events.emit(Event::IterationCancelled {
                        reason: "new changes arrived".into(),
                    });
                }
            }
        }
        if self.opts.cleanup {
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

    async fn iteration(
        &self,
        cfg: &Config,
        trigger: &Trigger,
        images: &HashMap<String, ArtifactResult>,
        phase: &AtomicU8,
        cancel: &CancellationToken,
    ) -> Result<IterationReport, Error> {
        phase.store(PHASE_BUILD, Ordering::SeqCst);
        let affected = if trigger.everything {
            cfg.build
                .artifacts
                .iter()
                .map(|a| a.image.clone())
                .collect()
        } else {
            affected_artifacts(cfg, &trigger.paths)
        };
        let missing: Vec<String> = cfg
            .build
            .artifacts
            .iter()
            .filter(|a| !images.contains_key(&tag::normalize_repository(&a.image)))
            .map(|a| a.image.clone())
            .collect();
        let mut only: BTreeSet<String> = affected.into_iter().collect();
        only.extend(missing);
        // File sync: artifacts whose only changes are files their `sync` rules take are updated in place.
        let mut synced = Vec::new();
        let candidates: Vec<(&Artifact, Vec<SyncFile>)> =
            if trigger.everything || !self.deployer.can_sync() {
                Vec::new()
            } else {
                cfg.build
                    .artifacts
                    .iter()
                    .filter(|a| only.contains(&a.image))
                    .filter(|a| images.contains_key(&tag::normalize_repository(&a.image)))
                    .filter_map(|a| sync_files(cfg, a, &trigger.paths).map(|f| (a, f)))
                    .collect()
            };
        if !candidates.is_empty() {
            let running: Vec<ArtifactImage> = cfg
                .build
                .artifacts
                .iter()
                .filter_map(|a| images.get(&tag::normalize_repository(&a.image)))
                .map(ArtifactResult::artifact_image)
                .collect();
            let plan = (self.plan)(cfg, &running)?;
            for (a, files) in candidates {
                let started = Instant::now();
                match self.deployer.sync(&plan, &a.image, &files).await {
                    Ok(0) => {}
                    Ok(containers) => {
                        self.events.emit(Event::Synced {
                            image: a.image.clone(),
                            files: files
                                .iter()
                                .map(|f| relative(&cfg.base_dir, &f.local))
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
        }
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
            };
            let opts = BuildOptions {
                only: only.into_iter().collect(),
                deploy_tags: true,
                ..self.opts.build.clone()
            };
            results = run.build_all(&opts).await?;
        }
        let built_at = Instant::now();
        let mut current: HashMap<String, ArtifactResult> = images.clone();
        for r in &results {
            current.insert(tag::normalize_repository(&r.image), r.clone());
        }
        let artifact_images: Vec<ArtifactImage> = cfg
            .build
            .artifacts
            .iter()
            .filter_map(|a| current.get(&tag::normalize_repository(&a.image)))
            .map(ArtifactResult::artifact_image)
            .collect();
        let plan = (self.plan)(cfg, &artifact_images)?;
        phase.store(PHASE_APPLY, Ordering::SeqCst);
        let deployed = self.deployer.deploy(&plan, &self.events, cancel).await?;
        let applied_at = Instant::now();
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
        }
        let ready_at = Instant::now();
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
        let save_to_ready_ms = did_something.then(|| ms(ready_at));
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
                built_ms: ms(built_at),
                applied_ms: ms(applied_at),
                ready_ms: ms(ready_at),
            });
        }
        Ok(IterationReport {
            results,
            save_to_ready_ms,
            synced: synced_any,
        })
    }
}

struct IterationReport {
    results: Vec<ArtifactResult>,
    save_to_ready_ms: Option<u64>,
    /// Files were synced into running containers.
    synced: bool,
}

/// The files to sync into `a`'s containers instead of rebuilding it: every changed path of its context must be an
/// existing file that a `sync` rule takes (or that `.dockerignore` leaves out of the image), and nothing may
/// depend on the image (dependents are rebuilt from it). `None`: rebuild.
fn sync_files(cfg: &Config, a: &Artifact, paths: &BTreeSet<PathBuf>) -> Option<Vec<SyncFile>> {
    if a.sync.is_empty()
        || cfg.build.artifacts.iter().any(|b| {
            b.requires
                .iter()
                .any(|r| tag::normalize_repository(&r.image) == tag::normalize_repository(&a.image))
        })
    {
        return None;
    }
    let ignore = crate::context::read_ignore_rules(&a.context, &a.dockerfile)
        .and_then(|rules| crate::context::DockerIgnore::from_rules(&rules))
        .ok()?;
    let mut files = Vec::new();
    for p in paths {
        if p == &a.dockerfile {
            return None;
        }
        let Ok(rel) = p.strip_prefix(&a.context) else {
            if a.context.starts_with(p) {
                return None;
            }
            continue;
        };
        let rel = rel.to_string_lossy().replace('\\', "/");
        if rel.ends_with(".dockerignore") {
            return None;
        }
        if ignore.is_excluded(&rel) {
            continue;
        }
        // A deleted file or a directory: the image is rebuilt.
        if !p.symlink_metadata().is_ok_and(|m| m.is_file()) {
            return None;
        }
        let dest = a.sync.iter().find_map(|r| r.dest_of(&rel))?;
        files.push(SyncFile {
            local: p.clone(),
            dest,
        });
    }
    (!files.is_empty()).then_some(files)
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
pub async fn session<B: Builder, D: Deployer>(
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
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;
    use crate::runner::fakes::{FakeBuilder, FakeDeployer, Fixture};
    use std::sync::{Arc, Mutex};

    struct Harness {
        fx: Fixture,
        builder: FakeBuilder,
        deployer: FakeDeployer,
    }

    fn change(paths: &[PathBuf]) -> ChangeSet {
        ChangeSet {
            paths: paths.iter().cloned().collect(),
            first_event_at: Instant::now(),
            manual: false,
            warnings: Vec::new(),
        }
    }

    impl Harness {
        fn new() -> Harness {
            Harness {
                fx: Fixture::new(),
                builder: FakeBuilder::default(),
                deployer: FakeDeployer::default(),
            }
        }

        /// Runs the loop; `script` gets the sender and the shutdown token and drives it.
        async fn run<F, Fut>(&self, script: F) -> (DevSummary, Vec<Event>)
        where
            F: FnOnce(
                mpsc::UnboundedSender<ChangeSet>,
                CancellationToken,
                Arc<Mutex<Vec<Event>>>,
            ) -> Fut,
            Fut: std::future::Future<Output = ()>,
        {
            self.run_with(BuildOptions::default(), script).await
        }

        /// [`Harness::run`] with these build options.
        async fn run_with<F, Fut>(&self, build: BuildOptions, script: F) -> (DevSummary, Vec<Event>)
        where
            F: FnOnce(
                mpsc::UnboundedSender<ChangeSet>,
                CancellationToken,
                Arc<Mutex<Vec<Event>>>,
            ) -> Fut,
            Fut: std::future::Future<Output = ()>,
        {
            let cfg = self.fx.config();
            let store = Store::open(self.fx.cache.path()).unwrap();
            let vars = Vars::new(self.fx.dir.path(), "t".into(), Arc::new(|_: &str| None));
            let (events, seen) = EventSink::collector();
            let reload_cfg = cfg.clone();
            let reload = move || -> Result<Config, Error> { Ok(reload_cfg.clone()) };
            let plan = |_: &Config, images: &[ArtifactImage]| -> Result<Vec<String>, Error> {
                Ok(images.iter().map(|i| i.reference.clone()).collect())
            };
            let dev = DevLoop {
                builder: &self.builder,
                deployer: &self.deployer,
                store: &store,
                vars: &vars,
                events,
                reload: &reload,
                plan: &plan,
                opts: DevOptions {
                    build,
                    status_deadline: Duration::from_secs(5),
                    cleanup: true,
                    cleanup_timeout: Duration::from_secs(5),
                },
                progress: tokio::sync::watch::channel(0).0,
            };
            let (tx, rx) = mpsc::unbounded_channel();
            let shutdown = CancellationToken::new();
            let (summary, ()) = tokio::join!(
                dev.run(cfg, rx, shutdown.clone()),
                script(tx, shutdown, seen.clone())
            );
            let ev = seen.lock().unwrap().clone();
            (summary.unwrap(), ev)
        }

        fn path(&self, rel: &str) -> PathBuf {
            self.fx.dir.path().canonicalize().unwrap().join(rel)
        }
    }

    /// Waits until `pred` holds for the events seen so far (bounded).
    async fn until(seen: &Arc<Mutex<Vec<Event>>>, pred: impl Fn(&[Event]) -> bool) {
        let deadline = Instant::now() + Duration::from_secs(10);
        while !pred(&seen.lock().unwrap()) {
            assert!(
                Instant::now() < deadline,
                "timed out; events: {:?}",
                seen.lock().unwrap()
            );
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
    }

    fn count(ev: &[Event], f: impl Fn(&Event) -> bool) -> usize {
        ev.iter().filter(|e| f(e)).count()
    }

    fn iterations(ev: &[Event]) -> usize {
        count(ev, |e| matches!(e, Event::Iteration { .. }))
    }

    #[tokio::test]
    async fn first_iteration_builds_and_deploys_then_a_change_rebuilds_only_what_it_affects() {
        let h = Harness::new();
        let base_file = h.path("base/f");
        let (summary, ev) = h
            .run(|tx, shutdown, seen| async move {
                until(&seen, |e| iterations(e) == 1).await;
                std::fs::write(&base_file, "base v2").unwrap();
                tx.send(change(std::slice::from_ref(&base_file))).unwrap();
                until(&seen, |e| iterations(e) == 2).await;
                shutdown.cancel();
            })
            .await;
        assert_eq!(summary.iterations, 2);
        let builds = h.builder.builds.lock().unwrap().clone();
        assert_eq!(
            builds.len(),
            5,
            "3 at start, then base and app (which requires base): {builds:?}"
        );
        assert!(
            builds[3..].contains(&"base".to_string()) && builds[3..].contains(&"app".to_string())
        );
        let mut second = ev.iter().filter_map(|e| match e {
            Event::Iteration {
                rebuilt, cached, ..
            } => Some((rebuilt.clone(), cached.clone())),
            _ => None,
        });
        let (rebuilt, _) = second.next_back().unwrap();
        assert_eq!(rebuilt, vec!["app".to_string(), "base".to_string()]);
        assert_eq!(
            *h.deployer.deletes.lock().unwrap(),
            1,
            "cleanup on shutdown"
        );
        assert!(summary.median_ms().is_some());
    }

    /// Regression (issue 11): an editor's autosave during a build was reported as `buildFailed` +
    /// `iterationFailed` ("changed while the build context was being sent").
    #[tokio::test]
    async fn a_file_changed_while_its_context_is_sent_supersedes_the_build_silently() {
        let h = Harness::new();
        let app_file = h.path("app/f");
        let (summary, ev) = h
            .run_with(
                BuildOptions {
                    changes_supersede: true,
                    ..BuildOptions::default()
                },
                |tx, shutdown, seen| {
                    let builder = &h.builder;
                    async move {
                        until(&seen, |e| iterations(e) == 1).await;
                        builder
                            .changed_during_send
                            .lock()
                            .unwrap()
                            .push("app".into());
                        std::fs::write(&app_file, "app v2").unwrap();
                        tx.send(change(std::slice::from_ref(&app_file))).unwrap();
                        // The save that overtook the build arrives: the loop goes again with both.
                        tokio::time::sleep(Duration::from_millis(50)).await;
                        std::fs::write(&app_file, "app v3").unwrap();
                        tx.send(change(std::slice::from_ref(&app_file))).unwrap();
                        until(&seen, |e| iterations(e) == 2).await;
                        shutdown.cancel();
                    }
                },
            )
            .await;
        assert_eq!(
            count(&ev, |e| matches!(
                e,
                Event::IterationFailed { .. } | Event::BuildFailed { .. }
            )),
            0,
            "{ev:#?}"
        );
        assert_eq!(summary.iterations, 2);
        assert_eq!(
            summary.save_to_ready_ms.len(),
            1,
            "the start-up is not a save"
        );
        assert_eq!(summary.rebuilt, 1);
    }

    #[test]
    fn the_summary_is_over_saves_with_a_true_median_and_a_p90_from_ten() {
        let mut s = DevSummary {
            save_to_ready_ms: vec![900, 100],
            ..Default::default()
        };
        assert_eq!(
            s.median_ms(),
            Some(500),
            "two values: their mean, not the lower one"
        );
        assert_eq!(s.p90_ms(), None);
        s.save_to_ready_ms = (1..=10).map(|i| i * 100).collect();
        assert_eq!(s.median_ms(), Some(550));
        assert_eq!(s.p90_ms(), Some(900));
        s.save_to_ready_ms = vec![300, 100, 200];
        assert_eq!(s.median_ms(), Some(200));
    }

    #[tokio::test]
    async fn every_iteration_loads_what_it_built_into_local_nodes_and_deploys_their_names() {
        let h = Harness::new();
        let base_file = h.path("base/f");
        let build = BuildOptions {
            load: Some(crate::build::load::LocalCluster::Kind("dev".into())),
            ..BuildOptions::default()
        };
        h.run_with(build, |tx, shutdown, seen| async move {
            until(&seen, |e| iterations(e) == 1).await;
            std::fs::write(&base_file, "base v2").unwrap();
            tx.send(change(std::slice::from_ref(&base_file))).unwrap();
            until(&seen, |e| iterations(e) == 2).await;
            shutdown.cancel();
        })
        .await;
        let loads = h.builder.loads.lock().unwrap().clone();
        assert_eq!(
            loads.len(),
            5,
            "3 at start, then the new base and app: {loads:?}"
        );
        let deploys = h.deployer.deploys.lock().unwrap().clone();
        for plan in &deploys {
            assert!(plan.iter().all(|r| loads.contains(r)), "{plan:?} {loads:?}");
        }
        assert_ne!(deploys[0], deploys[deploys.len() - 1]);
    }

    #[tokio::test]
    async fn a_change_without_new_content_triggers_nothing() {
        let h = Harness::new();
        let f = h.path("other/f");
        let (_, ev) = h
            .run(|tx, shutdown, seen| async move {
                until(&seen, |e| iterations(e) == 1).await;
                // A save without an edit: the event arrives, the content is the same.
                std::fs::write(&f, "other").unwrap();
                tx.send(change(std::slice::from_ref(&f))).unwrap();
                until(&seen, |e| {
                    count(e, |x| matches!(x, Event::BuildCached { .. })) >= 1
                })
                .await;
                tokio::time::sleep(Duration::from_millis(100)).await;
                shutdown.cancel();
            })
            .await;
        assert_eq!(h.builder.builds.lock().unwrap().len(), 3, "no rebuild");
        assert_eq!(iterations(&ev), 1, "no iteration is reported");
        let deploys = h.deployer.deploys.lock().unwrap().clone();
        assert_eq!(
            deploys[0],
            deploys[deploys.len() - 1],
            "the same plan: nothing to apply"
        );
    }

    #[tokio::test]
    async fn changes_during_a_build_cancel_it_and_are_merged() {
        let h = Harness::new();
        let (a, o) = (h.path("app/f"), h.path("other/f"));
        let builder_delay = &h.builder.delay;
        let (_, ev) = h
            .run(|tx, shutdown, seen| async move {
                until(&seen, |e| iterations(e) == 1).await;
                *builder_delay.lock().unwrap() = Duration::from_millis(400);
                std::fs::write(&a, "app v2").unwrap();
                tx.send(change(std::slice::from_ref(&a))).unwrap();
                until(&seen, |e| {
                    count(e, |x| matches!(x, Event::BuildStarted { .. })) >= 4
                })
                .await;
                // A second edit while the first build runs: the build is dropped, both changes go together.
                std::fs::write(&o, "other v2").unwrap();
                tx.send(change(std::slice::from_ref(&o))).unwrap();
                until(&seen, |e| iterations(e) == 2).await;
                shutdown.cancel();
            })
            .await;
        assert_eq!(
            count(&ev, |e| matches!(e, Event::IterationCancelled { .. })),
            1
        );
        let last = ev.iter().rev().find_map(|e| match e {
            Event::Iteration {
                rebuilt, changed, ..
            } => Some((rebuilt.clone(), changed.clone())),
            _ => None,
        });
        let (rebuilt, changed) = last.unwrap();
        assert_eq!(
            rebuilt,
            vec!["app".to_string(), "other".to_string()],
            "the merged iteration rebuilds both"
        );
        assert_eq!(changed.len(), 2);
    }

    #[tokio::test]
    async fn coalesces_queued_changes_into_one_iteration() {
        let h = Harness::new();
        let (a, o) = (h.path("app/f"), h.path("other/f"));
        let (_, ev) = h
            .run(|tx, shutdown, seen| async move {
                until(&seen, |e| iterations(e) == 1).await;
                std::fs::write(&a, "app v3").unwrap();
                std::fs::write(&o, "other v3").unwrap();
                tx.send(change(std::slice::from_ref(&a))).unwrap();
                tx.send(change(std::slice::from_ref(&o))).unwrap();
                until(&seen, |e| iterations(e) >= 2).await;
                tokio::time::sleep(Duration::from_millis(200)).await;
                shutdown.cancel();
            })
            .await;
        let rebuilt: Vec<Vec<String>> = ev
            .iter()
            .filter_map(|e| match e {
                Event::Iteration { rebuilt, .. } => Some(rebuilt.clone()),
                _ => None,
            })
            .collect();
        let all: Vec<String> = rebuilt[1..].concat();
        assert!(
            all.contains(&"app".to_string()) && all.contains(&"other".to_string()),
            "{rebuilt:?}"
        );
        assert_eq!(all.len(), 2, "each rebuilt once: {rebuilt:?}");
    }

    #[tokio::test]
    async fn a_failed_build_is_reported_and_the_loop_keeps_watching() {
        let h = Harness::new();
        let o = h.path("other/f");
        let fail = &h.builder.fail;
        let (summary, ev) = h
            .run(|tx, shutdown, seen| async move {
                until(&seen, |e| iterations(e) == 1).await;
                fail.lock().unwrap().push("other".into());
                std::fs::write(&o, "broken").unwrap();
                tx.send(change(std::slice::from_ref(&o))).unwrap();
                until(&seen, |e| {
                    count(e, |x| matches!(x, Event::IterationFailed { .. })) == 1
                })
                .await;
                fail.lock().unwrap().clear();
                std::fs::write(&o, "fixed").unwrap();
                tx.send(change(std::slice::from_ref(&o))).unwrap();
                until(&seen, |e| iterations(e) == 2).await;
                shutdown.cancel();
            })
            .await;
        assert_eq!(summary.iterations, 3);
        assert_eq!(
            count(&ev, |e| matches!(e, Event::IterationFailed { .. })),
            1
        );
    }

    #[test]
    fn affected_artifacts_include_dependents() {
        let fx = Fixture::new();
        let cfg = fx.config();
        let base = fx.dir.path().canonicalize().unwrap().join("base/f");
        assert_eq!(
            affected_artifacts(&cfg, &BTreeSet::from([base])),
            vec!["app".to_string(), "base".to_string()]
        );
        let unrelated = fx.dir.path().canonicalize().unwrap().join("README.md");
        assert!(affected_artifacts(&cfg, &BTreeSet::from([unrelated])).is_empty());
    }

    #[test]
    fn sync_takes_only_changes_every_rule_covers() {
        let fx = Fixture::new();
        let root = fx.dir.path().canonicalize().unwrap();
        std::fs::create_dir_all(root.join("other/static/css")).unwrap();
        std::fs::write(root.join("other/static/css/a.css"), "a").unwrap();
        std::fs::write(root.join("other/static/b.txt"), "b").unwrap();
        std::fs::write(root.join("other/.dockerignore"), "**/*.txt\n").unwrap();
        std::fs::write(
            root.join("devloop.yaml"),
            "apiVersion: devloop/v1alpha1\nkind: Config\nbuild:\n  artifacts:\n    - image: app\n      context: app\n      requires: [{image: base}]\n    - image: base\n      context: base\n      sync: {manual: [{src: '*', dest: /}]}\n    - image: other\n      context: other\n      sync: {manual: [{src: 'static/**', dest: /srv/www, strip: static/}]}\n",
        )
        .unwrap();
        let cfg = fx.config();
        let other = cfg
            .build
            .artifacts
            .iter()
            .find(|a| a.image == "other")
            .unwrap();
        let base = cfg
            .build
            .artifacts
            .iter()
            .find(|a| a.image == "base")
            .unwrap();
        let paths =
            |ps: &[&str]| -> BTreeSet<PathBuf> { ps.iter().map(|p| root.join(p)).collect() };

        // Taken by the rule, with the prefix stripped; a file .dockerignore leaves out does not count.
        assert_eq!(
            sync_files(
                &cfg,
                other,
                &paths(&["other/static/css/a.css", "other/static/b.txt", "app/f"])
            ),
            Some(vec![SyncFile {
                local: root.join("other/static/css/a.css"),
                dest: "/srv/www/css/a.css".into(),
            }])
        );
        // A file no rule takes, the Dockerfile, the ignore file, a deleted file: rebuild.
        assert_eq!(sync_files(&cfg, other, &paths(&["other/f"])), None);
        assert_eq!(sync_files(&cfg, other, &paths(&["other/Dockerfile"])), None);
        assert_eq!(
            sync_files(&cfg, other, &paths(&["other/.dockerignore"])),
            None
        );
        assert_eq!(
            sync_files(&cfg, other, &paths(&["other/static/gone.css"])),
            None
        );
        // Only ignored files changed: nothing to sync (the build path finds the cache unchanged).
        assert_eq!(
            sync_files(&cfg, other, &paths(&["other/static/b.txt"])),
            None
        );
        // An image other artifacts require is rebuilt: they are built from it.
        assert_eq!(sync_files(&cfg, base, &paths(&["base/f"])), None);
    }
}
