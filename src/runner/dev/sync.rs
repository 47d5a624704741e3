//! Runner, the dev loop's file sync: an iteration's changes → files synced into running containers (artifacts
//! whose every change a sync rule takes), or why each is rebuilt; what was synced since a build given to containers
//! that start later. Decides nothing about placement (the `sync` stage does) and copies nothing itself (the target
//! does).

use std::collections::{BTreeSet, HashMap};
use std::path::PathBuf;
use std::time::Instant;

use tokio_util::sync::CancellationToken;

use super::{DevLoop, Running, Trigger, artifact_images, relative};
use crate::build::Builder;
use crate::config::{Artifact, Config};
use crate::deploy::SyncRequest;
use crate::error::Error;
use crate::event::Event;
use crate::hook::{HookRun, Phase};
use crate::runner::ArtifactResult;
use crate::runner::target::DeployTarget;
use crate::sync::{Changes, Placements, Planned};
use crate::tag;

impl<B: Builder, D: DeployTarget> DevLoop<'_, B, D> {
    /// Syncs the changes of artifacts whose every change a sync rule takes into their running containers, and
    /// takes them out of `only` (a failed sync leaves them there: they are rebuilt). Says once per artifact why
    /// one with sync rules is rebuilt instead. Returns the synced artifacts and the plan rendered for them (the
    /// iteration deploys it when it builds nothing).
    pub(super) async fn sync_in_place(
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
    pub(super) async fn replay_syncs(
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
            let started = Instant::now();
            match self.deployer.sync(plan, &req).await {
                Ok(0) => {}
                Ok(containers) => self.events.emit(Event::SyncReplayed {
                    image: a.image.clone(),
                    containers,
                    duration_ms: started.elapsed().as_millis() as u64,
                }),
                Err(e) => self.events.emit(Event::Warning {
                    message: format!(
                        "{}: containers that started since the last sync lack the files synced since the build: {e}",
                        a.image
                    ),
                }),
            }
        }
    }

    /// Between iterations, after containers started (a pod replaced or restarted, a scale-up): brings those of
    /// images with synced files up to date, where the last deploy put them (no render).
    pub(super) async fn catch_up_started(
        &self,
        cfg: &Config,
        images: &HashMap<String, ArtifactResult>,
    ) {
        if !self.deployer.can_sync() {
            return;
        }
        if let Some(plan) = self.deployed.lock().await.as_ref() {
            self.replay_syncs(cfg, &[], images, plan).await;
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
