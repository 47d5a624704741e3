//! Runner: wires the stages — walk → hash → key → cache → build → tag → push or load — for every artifact, in
//! dependency order, concurrently up to `build.concurrency`. Owns concurrency and cancellation; stages never call
//! each other. Emits events; prints nothing. `dev.rs` is the watch → rebuild → redeploy loop.

pub mod blue_green;
pub mod dev;
#[cfg(test)]
mod fakes;
pub mod hooks;
pub mod target;

use std::collections::{BTreeMap, HashMap, HashSet};
use std::sync::Arc;
use std::time::Instant;

use futures_util::StreamExt;
use tokio_util::sync::CancellationToken;

use crate::build::load::LocalCluster;
use crate::build::{BuildError, BuildSpec, Builder};
use crate::cache::{self, CacheKey, KeyInputs, Record, Store};
use crate::config::{Artifact, Config};
use crate::error::Error;
use crate::event::{BuiltArtifact, Event, EventSink};
use crate::tag;
use crate::template::{self, Vars};
use crate::time::Timestamp;

/// What the user asked of a build run.
#[derive(Debug, Clone, Default)]
pub struct BuildOptions {
    /// Only these artifacts (and what they require); empty = all.
    pub only: Vec<String>,
    pub push: bool,
    pub tag: Option<String>,
    pub default_repo: Option<String>,
    pub no_cache: bool,
    /// The images will be deployed: make sure each has an immutable reference (see `deploy_reference`).
    pub deploy_tags: bool,
    /// A file that changes while the context is sent supersedes the build (`dev`: the watcher brings the change,
    /// and newer content wins): no failure is reported. Otherwise the context is read once more.
    pub changes_supersede: bool,
    /// The local cluster (kind, k3d) whose nodes get each image they lack when images are not pushed.
    pub load: Option<LocalCluster>,
}

/// One artifact's result.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ArtifactResult {
    /// The image name as in the config.
    pub image: String,
    /// The repository the image was tagged into (after default-repo rewriting).
    pub repository: String,
    pub tag: String,
    pub image_id: String,
    /// `sha256:…` when pushed.
    pub digest: Option<String>,
    pub key: CacheKey,
    /// Whether it came from the cache.
    pub cached: bool,
    /// The tag is derived from the inputs (`inputDigest` policy, no `--tag`): it changes whenever the image does.
    pub content_tag: bool,
    /// The nodes of a local cluster have the image: it is deployed under their name for it (see `deploy_reference`).
    pub loaded: bool,
    /// The build args the image was built with (a required artifact's reference included): where a sync places
    /// files depends on them.
    pub build_args: BTreeMap<String, String>,
}

impl ArtifactResult {
    /// The reference `devloop build` reports: `repository:tag@digest` when pushed, else `repository:tag`.
    pub fn reference(&self) -> String {
        match &self.digest {
            Some(d) => tag::with_digest(&self.repository, &self.tag, d),
            None => tag::with_tag(&self.repository, &self.tag),
        }
    }

    /// The tag to deploy: immutable for the image. A pushed image is pinned by digest and a content-derived tag
    /// changes with the image; any other tag (git commit, date, `--tag`) gets the image ID appended, so
    /// `imagePullPolicy: IfNotPresent` can never run a stale image.
    pub fn deploy_tag(&self) -> String {
        if self.digest.is_some() || self.content_tag {
            self.tag.clone()
        } else {
            tag::with_image_id(&self.tag, &self.image_id)
        }
    }

    /// The reference to deploy (see `deploy_tag`). An image loaded into local cluster nodes is deployed under the
    /// name their containerd gave it (`docker.io/library/app` for `app`), exactly what the kubelet finds there.
    pub fn deploy_reference(&self) -> String {
        match &self.digest {
            Some(d) => tag::with_digest(&self.repository, &self.tag, d),
            None => tag::with_tag(&self.deploy_repository(), &self.deploy_tag()),
        }
    }

    fn deploy_repository(&self) -> String {
        if self.loaded {
            tag::normalize_repository(&self.repository)
        } else {
            self.repository.clone()
        }
    }

    /// The image to inject into manifests (with its immutable deploy reference).
    pub fn artifact_image(&self) -> crate::render::ArtifactImage {
        crate::render::ArtifactImage {
            name: self.image.clone(),
            reference: self.deploy_reference(),
            repository: self.deploy_repository(),
            tag: self.deploy_tag(),
            digest: self.digest.clone(),
        }
    }

    pub fn built_artifact(&self) -> BuiltArtifact {
        BuiltArtifact {
            image: self.image.clone(),
            tag: self.reference(),
        }
    }
}

/// What is known of an artifact before the cache is asked.
struct Planned {
    files: crate::context::ContextFiles,
    file_digests: cache::FileDigests,
    inputs: KeyInputs,
    key: CacheKey,
    build_args: BTreeMap<String, String>,
    /// See [`BuildSpec::classic_only`].
    classic_only: bool,
}

/// Whether the context stream of `files` carries the Dockerfile or `.dockerignore` only for the build and an
/// instruction of `text` may copy them: BuildKit reads the stream as it is, where the classic builder leaves them
/// out, as `docker build` does.
fn copies_build_files(
    files: &crate::context::ContextFiles,
    dockerfile: &std::path::Path,
    text: &[u8],
) -> bool {
    if !files.build_files_excluded {
        return false;
    }
    let rel = crate::context::locate_dockerfile(&files.root, dockerfile)
        .map(|l| l.rel().to_owned())
        .unwrap_or_default();
    crate::build::dockerfile::may_read(&String::from_utf8_lossy(text), &[&rel, ".dockerignore"])
}

/// The artifacts to build for `only` (plus everything they require), in config order.
pub fn select<'a>(cfg: &'a Config, only: &[String]) -> Result<Vec<&'a Artifact>, Error> {
    if only.is_empty() {
        return Ok(cfg.build.artifacts.iter().collect());
    }
    let by_name: HashMap<String, &Artifact> = cfg
        .build
        .artifacts
        .iter()
        .map(|a| (tag::normalize_repository(&a.image), a))
        .collect();
    let mut wanted = HashSet::new();
    let mut stack = Vec::new();
    for name in only {
        let Some(a) = by_name.get(&tag::normalize_repository(name)) else {
            let names: Vec<_> = cfg
                .build
                .artifacts
                .iter()
                .map(|a| format!("`{}`", a.image))
                .collect();
            return Err(Error::Usage {
                message: format!(
                    "`{name}` (from `--build-image`) is not an artifact of {}",
                    cfg.file
                ),
                hint: Some(format!("artifacts: {}", names.join(", "))),
            });
        };
        stack.push(*a);
    }
    while let Some(a) = stack.pop() {
        if wanted.insert(tag::normalize_repository(&a.image)) {
            for r in &a.requires {
                if let Some(dep) = by_name.get(&tag::normalize_repository(&r.image)) {
                    stack.push(dep);
                }
            }
        }
    }
    Ok(cfg
        .build
        .artifacts
        .iter()
        .filter(|a| wanted.contains(&tag::normalize_repository(&a.image)))
        .collect())
}

/// Groups artifacts into waves: each wave only requires artifacts of earlier waves. (The config rejects cycles.)
fn waves<'a>(artifacts: &[&'a Artifact]) -> Vec<Vec<&'a Artifact>> {
    let mut done: HashSet<String> = HashSet::new();
    let mut left: Vec<&Artifact> = artifacts.to_vec();
    let mut out = Vec::new();
    while !left.is_empty() {
        let (ready, rest): (Vec<_>, Vec<_>) = left.into_iter().partition(|a| {
            a.requires
                .iter()
                .all(|r| done.contains(&tag::normalize_repository(&r.image)))
        });
        if ready.is_empty() {
            // Unreachable with a validated config; build the rest together rather than loop forever.
            out.push(rest);
            break;
        }
        done.extend(ready.iter().map(|a| tag::normalize_repository(&a.image)));
        out.push(ready);
        left = rest;
    }
    out
}

/// Everything a build run shares.
pub struct BuildRun<'a, B: Builder> {
    pub cfg: &'a Config,
    pub builder: &'a B,
    pub store: &'a Store,
    pub vars: &'a Vars,
    pub now: Timestamp,
    pub events: EventSink,
    pub cancel: CancellationToken,
    /// Told the image of each artifact whose build starts (a cache miss) as it starts: `dev` stops the containers
    /// a rebuilt image replaces while it builds.
    pub misses: Option<tokio::sync::mpsc::UnboundedSender<String>>,
}

impl<B: Builder> BuildRun<'_, B> {
    /// Builds (or finds in the cache) every selected artifact. Independent artifacts build concurrently; an
    /// artifact whose requirement failed is skipped. Fails when any artifact failed.
    pub async fn build_all(&self, opts: &BuildOptions) -> Result<Vec<ArtifactResult>, Error> {
        let started = Instant::now();
        let selected = select(self.cfg, &opts.only)?;
        let limit = match self.cfg.build.concurrency {
            0 => selected.len().max(1),
            n => n,
        };
        let mut results: HashMap<String, ArtifactResult> = HashMap::new();
        let mut failed: Vec<(String, Error)> = Vec::new();
        for wave in waves(&selected) {
            let (runnable, skipped): (Vec<&Artifact>, Vec<&Artifact>) =
                wave.into_iter().partition(|a| {
                    a.requires
                        .iter()
                        .all(|r| results.contains_key(&tag::normalize_repository(&r.image)))
                });
            for a in skipped {
                let missing: Vec<String> = a
                    .requires
                    .iter()
                    .filter(|r| !results.contains_key(&tag::normalize_repository(&r.image)))
                    .map(|r| format!("`{}`", r.image))
                    .collect();
                let message = format!("not built: it requires {} which failed", missing.join(", "));
                self.events.emit(Event::BuildFailed {
                    image: a.image.clone(),
                    step: None,
                    message: message.clone(),
                    output: Vec::new(),
                });
                failed.push((
                    a.image.clone(),
                    Error::Build(BuildError::Skipped {
                        image: a.image.clone(),
                        message,
                    }),
                ));
            }
            let done = &results;
            let outcomes: Vec<(String, Result<ArtifactResult, Error>)> =
                futures_util::stream::iter(runnable)
                    .map(|a| async move { (a.image.clone(), self.build_one(a, done, opts).await) })
                    .buffer_unordered(limit)
                    .collect()
                    .await;
            for (image, outcome) in outcomes {
                match outcome {
                    Ok(r) => {
                        results.insert(tag::normalize_repository(&image), r);
                    }
                    Err(e) => failed.push((image, e)),
                }
            }
        }
        let ordered: Vec<ArtifactResult> = selected
            .iter()
            .filter_map(|a| results.get(&tag::normalize_repository(&a.image)).cloned())
            .collect();
        if !failed.is_empty() {
            if failed.len() == 1 && selected.len() == 1 {
                return Err(failed.remove(0).1);
            }
            // Superseded by newer content (see `changes_supersede`): not a failure of any artifact.
            if failed.iter().all(|(_, e)| e.is_superseded()) {
                return Err(failed.remove(0).1);
            }
            // Each failure was reported as an event; the summary names them all.
            let first_env = failed
                .iter()
                .position(|(_, e)| e.exit_code() == crate::error::EXIT_USAGE);
            if let Some(i) = first_env {
                return Err(failed.remove(i).1);
            }
            return Err(Error::Build(BuildError::Several {
                failed: failed.len(),
                total: selected.len(),
                images: failed.into_iter().map(|(i, _)| format!("`{i}`")).collect(),
            }));
        }
        self.events.emit(Event::BuildsComplete {
            builds: ordered.iter().map(ArtifactResult::built_artifact).collect(),
            built: ordered.iter().filter(|r| !r.cached).count(),
            cached: ordered.iter().filter(|r| r.cached).count(),
            duration_ms: started.elapsed().as_millis() as u64,
        });
        Ok(ordered)
    }

    async fn build_one(
        &self,
        a: &Artifact,
        done: &HashMap<String, ArtifactResult>,
        opts: &BuildOptions,
    ) -> Result<ArtifactResult, Error> {
        let mut outcome = self.build_one_inner(a, done, opts).await;
        if !opts.changes_supersede
            && let Err(Error::Build(BuildError::ContextChanged { path, .. })) = &outcome
        {
            // An editor's save or a formatter during the upload: read once more, with the content as it is now.
            self.events.emit(Event::Warning {
                message: format!(
                    "{}: `{}` changed while the build context was being sent: reading it again",
                    a.image,
                    path.display()
                ),
            });
            outcome = self.build_one_inner(a, done, opts).await;
        }
        if opts.deploy_tags
            && let Ok(r) = &outcome
            && r.deploy_tag() != r.tag
            && let Err(e) = self
                .builder
                .tag(&r.image_id, &r.repository, &r.deploy_tag())
                .await
        {
            outcome = Err(e.into());
        }
        if let Some(cluster) = opts.load.as_ref().filter(|c| c.loads())
            && !(opts.push || self.cfg.build.push)
            && let Ok(r) = &mut outcome
        {
            let reference = r.deploy_reference();
            match self
                .builder
                .load(cluster, &a.image, &reference, &self.events)
                .await
            {
                Ok(_) => r.loaded = true,
                Err(e) => outcome = Err(e.into()),
            }
        }
        if let Err(Error::Build(e @ (BuildError::Load { .. } | BuildError::NoNodes { .. }))) =
            &outcome
        {
            self.events.emit(Event::LoadFailed {
                image: a.image.clone(),
                message: e.to_string(),
            });
            return outcome;
        }
        if let Err(e) = &outcome
            && !(opts.changes_supersede && e.is_superseded())
        {
            let (step, message, output) = match e {
                Error::Build(BuildError::Failed {
                    step,
                    message,
                    output,
                    ..
                }) => (step.clone(), message.clone(), output.clone()),
                // The hook's lines are in its `hookFailed` event: not twice.
                Error::Hook(h) => (None, h.summary(), Vec::new()),
                other => (None, other.to_string(), Vec::new()),
            };
            self.events.emit(Event::BuildFailed {
                image: a.image.clone(),
                step,
                message,
                output,
            });
        }
        outcome
    }

    async fn build_one_inner(
        &self,
        a: &Artifact,
        done: &HashMap<String, ArtifactResult>,
        opts: &BuildOptions,
    ) -> Result<ArtifactResult, Error> {
        let planned = self.plan(a, done).await?;
        let key = planned.key.clone();
        let build_args = planned.build_args.clone();
        let repository = tag::apply_default_repo(&a.image, opts.default_repo.as_deref());
        let tag = match &opts.tag {
            Some(t) => t.clone(),
            None => template::tag_for(
                &self.cfg.build.tag_policy,
                &a.image,
                key.short(),
                self.vars,
                &self.now,
            )?,
        };
        let push = opts.push || self.cfg.build.push;
        let content_tag = opts.tag.is_none()
            && self.cfg.build.tag_policy == crate::config::TagPolicy::InputDigest;
        let result = |image_id: String, digest: Option<String>, cached: bool| ArtifactResult {
            image: a.image.clone(),
            repository: repository.clone(),
            tag: tag.clone(),
            image_id,
            digest,
            key: key.clone(),
            cached,
            content_tag,
            loaded: false,
            build_args: build_args.clone(),
        };
        if !opts.no_cache
            && let Some((image_id, digest)) = self.reuse(&planned, &repository, &tag, push).await?
        {
            let r = result(image_id, digest, true);
            self.events.emit(Event::BuildCached {
                image: a.image.clone(),
                tag: r.reference(),
                key: key.to_string(),
            });
            return Ok(r);
        }
        if let Some(misses) = &self.misses {
            let _ = misses.send(a.image.clone());
        }
        let (image_id, digest) = self
            .build_missed(a, planned, &repository, &tag, push, opts)
            .await?;
        Ok(result(image_id, digest, false))
    }

    /// Everything known of `a` before the cache is asked: its exact context, build args and cache key.
    async fn plan(
        &self,
        a: &Artifact,
        done: &HashMap<String, ArtifactResult>,
    ) -> Result<Planned, Error> {
        // 1. The exact context and its content digest (blocking file I/O off the async threads).
        let (context_dir, dockerfile) = (a.context.clone(), a.dockerfile.clone());
        let store = self.store.clone();
        let (files, digest, file_digests, dockerfile_text, classic_only) =
            tokio::task::spawn_blocking(move || -> Result<_, Error> {
                let files = crate::context::walk(&context_dir, &dockerfile)?;
                let digest = store.digest_context(&files)?;
                let file_digests = digest.files(&files);
                let text = std::fs::read(&dockerfile)
                    .map_err(|e| Error::Io(format!("{}: {e}", dockerfile.display())))?;
                let classic_only = copies_build_files(&files, &dockerfile, &text);
                Ok((files, digest, file_digests, text, classic_only))
            })
            .await
            .map_err(|e| Error::Io(format!("context task failed: {e}")))??;

        // 2. Build args: values for the build, key forms (volatile fields unexpanded) for the cache key.
        let mut build_args = BTreeMap::new();
        let mut key_args = BTreeMap::new();
        for (k, v) in &a.build_args {
            let field = format!(
                "{}: build.artifacts[{}].docker.buildArgs.{k}",
                self.cfg.file, a.image
            );
            build_args.insert(k.clone(), template::expand(v, self.vars, &field)?);
            key_args.insert(k.clone(), template::expand_for_key(v, self.vars, &field)?);
        }
        let mut required = BTreeMap::new();
        for r in &a.requires {
            let dep = done
                .get(&tag::normalize_repository(&r.image))
                .ok_or_else(|| {
                    Error::Io(format!(
                        "{}: required artifact `{}` was not built",
                        a.image, r.image
                    ))
                })?;
            build_args.insert(r.alias.clone(), dep.reference());
            required.insert(r.image.clone(), dep.key.clone());
        }

        // 3. Base images the daemon has locally: their IDs are inputs (a re-pulled base changes the key).
        let text = String::from_utf8_lossy(&dockerfile_text);
        let bases = crate::build::dockerfile::base_images(&text, &build_args, a.target.as_deref())?;
        let mut base_images = BTreeMap::new();
        for b in bases {
            let id = self.builder.image_id(&b).await?;
            base_images.insert(b, id);
        }

        let mut inputs = KeyInputs::new(digest.digest, &dockerfile_text, &files.ignore);
        inputs.target = a.target.clone();
        inputs.build_args =
            cache::build_arg_digests(key_args.iter().map(|(k, v)| (k.as_str(), v.as_str())));
        inputs.platform = self.cfg.build.platform.clone();
        inputs.required = required;
        inputs.base_images = base_images;
        let key = cache::key(&inputs);
        Ok(Planned {
            files,
            file_digests,
            inputs,
            key,
            build_args,
            classic_only,
        })
    }

    /// Step 4, the cache: an image built for this key that still exists is reused (re-tagged, pushed if needed).
    /// Returns its image ID and pushed digest; `None` when there is none to reuse.
    async fn reuse(
        &self,
        planned: &Planned,
        repository: &str,
        tag: &str,
        push: bool,
    ) -> Result<Option<(String, Option<String>)>, Error> {
        let Some(mut rec) = self.store.lookup(&planned.key) else {
            return Ok(None);
        };
        if self.builder.image_id(&rec.image_id).await?.as_deref() != Some(rec.image_id.as_str()) {
            return Ok(None);
        }
        self.builder.tag(&rec.image_id, repository, tag).await?;
        let digest = if push {
            let remote = self.builder.remote_digest(repository, tag).await?;
            match remote {
                Some(d) if rec.pushed_digest.as_deref() == Some(d.as_str()) => Some(d),
                _ => Some(
                    self.push_and_record(&mut rec, repository, tag, &planned.file_digests)
                        .await?,
                ),
            }
        } else {
            None
        };
        Ok(Some((rec.image_id.clone(), digest)))
    }

    /// Step 5, a miss: say why, build, record (and push). Returns the image ID and the pushed digest.
    async fn build_missed(
        &self,
        a: &Artifact,
        planned: Planned,
        repository: &str,
        tag: &str,
        push: bool,
        opts: &BuildOptions,
    ) -> Result<(String, Option<String>), Error> {
        let Planned {
            files,
            file_digests,
            inputs,
            key,
            build_args,
            classic_only,
        } = planned;
        let previous = self.store.last_build(&self.cfg.base_dir, &a.image);
        let reasons = cache::explain(previous.as_ref(), &inputs, &file_digests)
            .iter()
            .map(ToString::to_string)
            .collect();
        let reasons = if opts.no_cache {
            vec!["--no-cache".to_string()]
        } else {
            reasons
        };
        self.events.emit(Event::BuildStarted {
            image: a.image.clone(),
            tag: tag::with_tag(repository, tag),
            key: key.to_string(),
            reasons,
        });
        let started = Instant::now();
        let hooks = |phase| crate::hook::HookRun {
            phase,
            image: Some(&a.image),
            env: crate::hook::build_env(repository, tag, push, &a.context),
            events: &self.events,
            cancel: self.cancel.clone(),
        };
        hooks(crate::hook::Phase::BeforeBuild)
            .run_host(&a.hooks.before)
            .await?;
        let spec = BuildSpec {
            image: a.image.clone(),
            tag: tag::with_tag(repository, tag),
            context: Arc::new(files),
            dockerfile: a.dockerfile.clone(),
            target: a.target.clone(),
            build_args,
            platform: self.cfg.build.platform.clone(),
            no_cache: opts.no_cache,
            classic_only,
        };
        let built = self
            .builder
            .build(&spec, &self.events, &self.cancel)
            .await?;
        self.events.emit(Event::BuildFinished {
            image: a.image.clone(),
            tag: spec.tag.clone(),
            image_id: built.image_id.clone(),
            duration_ms: started.elapsed().as_millis() as u64,
        });
        let mut rec = Record {
            artifact: a.image.clone(),
            project_dir: self.cfg.base_dir.clone(),
            key,
            inputs,
            image_id: built.image_id.clone(),
            tag: spec.tag.clone(),
            pushed_digest: None,
            recorded_at: std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .map(|d| d.as_secs())
                .unwrap_or(0),
        };
        self.store.record(&rec, &file_digests)?;
        let digest = if push {
            Some(
                self.push_and_record(&mut rec, repository, tag, &file_digests)
                    .await?,
            )
        } else {
            None
        };
        hooks(crate::hook::Phase::AfterBuild)
            .run_host(&a.hooks.after)
            .await?;
        Ok((built.image_id, digest))
    }

    /// Pushes `repository:tag` and records the pushed digest with the build, so an unchanged image is not pushed
    /// again.
    async fn push_and_record(
        &self,
        rec: &mut Record,
        repository: &str,
        tag: &str,
        files: &cache::FileDigests,
    ) -> Result<String, Error> {
        let digest = self
            .builder
            .push(&rec.artifact, repository, tag, &self.events)
            .await?;
        rec.pushed_digest = Some(digest.clone());
        self.store.record(rec, files)?;
        Ok(digest)
    }
}

#[cfg(test)]
mod hook_tests;
#[cfg(test)]
mod tests;
