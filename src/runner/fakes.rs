//! Runner test doubles: a builder and a deployer that keep everything in memory, and a three-artifact project.
#![allow(clippy::unwrap_used)]

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use tokio_util::sync::CancellationToken;

use super::target::{DeployTarget, ExecResult, TargetContainer};
use super::{ArtifactResult, BuildOptions, BuildRun};
use crate::build::{BuildError, BuildSpec, Builder, BuiltImage};
use crate::cache::Store;
use crate::config::{self, Config, LoadOptions};
use crate::deploy::{
    AppliedObject, Change, DeleteOptions, DeployError, DeployedSet, Deployer, ObjectRef, Stopped,
};
use crate::error::Error;
use crate::event::{Event, EventSink};
use crate::tag;
use crate::template::Vars;
use crate::time::Timestamp;

/// A builder that records what it was asked and keeps "images" in memory.
#[derive(Default)]
pub struct FakeBuilder {
    pub builds: Mutex<Vec<String>>,
    pub images: Mutex<HashMap<String, String>>,
    pub fail: Mutex<Vec<String>>,
    pub pushes: Mutex<Vec<String>>,
    /// The node references loaded into the one fake node.
    pub loads: Mutex<Vec<String>>,
    /// How long each build takes (it stops early when cancelled).
    pub delay: Mutex<Duration>,
    /// The next build of each of these images finds a file changed while its context is sent (once each).
    pub changed_during_send: Mutex<Vec<String>>,
}

impl Builder for FakeBuilder {
    async fn build(
        &self,
        spec: &BuildSpec,
        _: &EventSink,
        cancel: &CancellationToken,
    ) -> Result<crate::build::BuiltImage, BuildError> {
        self.builds.lock().unwrap().push(spec.image.clone());
        let delay = *self.delay.lock().unwrap();
        tokio::select! {
            _ = tokio::time::sleep(delay) => {}
            _ = cancel.cancelled() => return Err(BuildError::Cancelled { image: spec.image.clone() }),
        }
        {
            let mut changed = self.changed_during_send.lock().unwrap();
            if let Some(i) = changed.iter().position(|c| c == &spec.image) {
                changed.remove(i);
                return Err(BuildError::ContextChanged {
                    image: spec.image.clone(),
                    path: "www/index.html".into(),
                    detail: "size 10 → 12".into(),
                });
            }
        }
        if self.fail.lock().unwrap().contains(&spec.image) {
            return Err(BuildError::Failed {
                image: spec.image.clone(),
                step: Some("Step 1/1 : RUN false".into()),
                message: "exit 1".into(),
                output: vec!["boom".into()],
            });
        }
        let id = format!("sha256:{:0>64}", self.builds.lock().unwrap().len());
        let mut images = self.images.lock().unwrap();
        images.insert(id.clone(), id.clone());
        images.insert(spec.tag.clone(), id.clone());
        Ok(BuiltImage { image_id: id })
    }
    async fn image_id(&self, reference: &str) -> Result<Option<String>, BuildError> {
        Ok(self.images.lock().unwrap().get(reference).cloned())
    }
    async fn tag(&self, image_id: &str, repository: &str, tag: &str) -> Result<(), BuildError> {
        self.images
            .lock()
            .unwrap()
            .insert(tag::with_tag(repository, tag), image_id.to_string());
        Ok(())
    }
    async fn push(
        &self,
        _: &str,
        repository: &str,
        tag: &str,
        _: &EventSink,
    ) -> Result<String, BuildError> {
        self.pushes
            .lock()
            .unwrap()
            .push(tag::with_tag(repository, tag));
        Ok(format!("sha256:{:0>64}", 9))
    }
    async fn load(
        &self,
        _: &crate::build::load::LocalCluster,
        _: &str,
        reference: &str,
        _: &EventSink,
    ) -> Result<Vec<String>, BuildError> {
        let name = crate::build::load::node_reference(reference);
        let mut loads = self.loads.lock().unwrap();
        if loads.contains(&name) {
            return Ok(Vec::new());
        }
        loads.push(name);
        Ok(vec!["node".into()])
    }
    async fn remote_digest(
        &self,
        repository: &str,
        tag: &str,
    ) -> Result<Option<String>, BuildError> {
        let pushed = self
            .pushes
            .lock()
            .unwrap()
            .contains(&tag::with_tag(repository, tag));
        Ok(pushed.then(|| format!("sha256:{:0>64}", 9)))
    }
}

pub struct Fixture {
    pub dir: tempfile::TempDir,
    pub cache: tempfile::TempDir,
}

impl Fixture {
    /// `app` requires `base`; `other` is independent.
    pub fn new() -> Fixture {
        let dir = tempfile::tempdir().unwrap();
        for (d, text) in [
            ("base", "FROM scratch\nCOPY f /f\n"),
            ("app", "ARG BASE\nFROM $BASE\nCOPY f /f\n"),
            ("other", "FROM scratch\nCOPY f /f\n"),
        ] {
            std::fs::create_dir_all(dir.path().join(d)).unwrap();
            std::fs::write(dir.path().join(d).join("Dockerfile"), text).unwrap();
            std::fs::write(dir.path().join(d).join("f"), d).unwrap();
        }
        std::fs::write(
            dir.path().join("devloop.yaml"),
            "apiVersion: devloop/v1alpha1\nkind: Config\nbuild:\n  artifacts:\n    - image: app\n      context: app\n      requires: [{image: base}]\n    - image: base\n      context: base\n    - image: other\n      context: other\n",
        )
        .unwrap();
        Fixture {
            dir,
            cache: tempfile::tempdir().unwrap(),
        }
    }

    pub fn config(&self) -> Config {
        config::load(
            &self.dir.path().join("devloop.yaml"),
            &LoadOptions::default(),
            &|_| None,
        )
        .unwrap()
    }

    pub async fn run(
        &self,
        builder: &FakeBuilder,
        opts: &BuildOptions,
    ) -> (Result<Vec<ArtifactResult>, Error>, Vec<Event>) {
        let cfg = self.config();
        let store = Store::open(self.cache.path()).unwrap();
        let vars = Vars::new(self.dir.path(), "t".into(), Arc::new(|_: &str| None));
        let (events, seen) = EventSink::collector();
        let run = BuildRun {
            cfg: &cfg,
            builder,
            store: &store,
            vars: &vars,
            now: Timestamp::from_unix(0),
            events,
            cancel: CancellationToken::new(),
            misses: None,
        };
        let r = run.build_all(opts).await;
        let ev = seen.lock().unwrap().clone();
        (r, ev)
    }
}

/// A deployer whose plan is the list of image references; it remembers the last plan to report unchanged ones.
#[derive(Default)]
pub struct FakeDeployer {
    pub deploys: Mutex<Vec<Vec<String>>>,
    pub deletes: Mutex<usize>,
    last: Mutex<Vec<String>>,
    /// What runs, for container hooks.
    pub containers: Mutex<Vec<TargetContainer>>,
    /// Each exec: `pod/container` and the command.
    pub execs: Mutex<Vec<(String, Vec<String>)>>,
    /// The exit code every exec returns.
    pub exec_code: Mutex<i64>,
    /// Every sync asked for: the image, the files copied (local path, container path, mode), the paths deleted.
    pub syncs: Mutex<Vec<FakeSync>>,
    /// Syncs fail with this message.
    pub sync_fails: Mutex<Option<String>>,
    /// The image IDs of each `prepare_replace` (one container stopped per image), and each container restored.
    pub replaced: Mutex<Vec<Vec<String>>>,
    pub restored: Mutex<Vec<String>>,
}

/// One sync the fake deployer was asked for.
#[derive(Debug, Clone, PartialEq)]
pub struct FakeSync {
    pub image: String,
    pub copy: Vec<crate::deploy::SyncFile>,
    pub delete: Vec<String>,
}

impl Deployer for FakeDeployer {
    type Plan = Vec<String>;

    async fn deploy(
        &self,
        plan: &Vec<String>,
        events: &EventSink,
        _: &CancellationToken,
    ) -> Result<DeployedSet, DeployError> {
        self.deploys.lock().unwrap().push(plan.clone());
        let mut last = self.last.lock().unwrap();
        let applied = plan
            .iter()
            .map(|r| AppliedObject {
                reference: ObjectRef {
                    api_version: "v1".into(),
                    kind: "Pod".into(),
                    namespace: Some("ns".into()),
                    name: r.clone(),
                },
                change: if last.contains(r) {
                    Change::Unchanged
                } else {
                    Change::Configured
                },
                generation: 1,
                object: serde_json::Value::Null,
            })
            .collect();
        *last = plan.clone();
        // Marks where the deploy happened among the other events (hook order).
        events.emit(Event::DeployComplete {
            applied: plan.len(),
            pruned: 0,
            duration_ms: 0,
        });
        Ok(DeployedSet {
            applied,
            ..Default::default()
        })
    }

    async fn delete_all(
        &self,
        _: DeleteOptions,
        _: &EventSink,
    ) -> Result<Vec<ObjectRef>, DeployError> {
        *self.deletes.lock().unwrap() += 1;
        Ok(Vec::new())
    }

    fn can_sync(&self) -> bool {
        true
    }

    async fn prepare_replace(&self, image_ids: &[String]) -> Result<Vec<Stopped>, DeployError> {
        self.replaced.lock().unwrap().push(image_ids.to_vec());
        Ok(image_ids
            .iter()
            .map(|id| Stopped {
                id: id.clone(),
                object: format!("container/{id}"),
            })
            .collect())
    }

    async fn restore(&self, stopped: &[Stopped]) -> Result<Vec<String>, DeployError> {
        let objects: Vec<String> = stopped.iter().map(|s| s.object.clone()).collect();
        self.restored.lock().unwrap().extend(objects.clone());
        Ok(objects)
    }

    /// One container runs each deployed image.
    async fn sync(
        &self,
        plan: &Vec<String>,
        req: &crate::deploy::SyncRequest<'_>,
    ) -> Result<usize, DeployError> {
        if let Some(message) = self.sync_fails.lock().unwrap().clone() {
            return Err(DeployError::Api {
                message,
                hint: None,
            });
        }
        self.syncs.lock().unwrap().push(FakeSync {
            image: req.image.to_owned(),
            copy: req.copy.clone(),
            delete: req.delete.clone(),
        });
        let wanted = tag::normalize_repository(req.image);
        Ok(plan
            .iter()
            .filter(|r| {
                tag::parse(r).is_ok_and(|p| tag::normalize_repository(&p.repository) == wanted)
            })
            .count())
    }
}

impl DeployTarget for FakeDeployer {
    async fn wait_ready(
        &self,
        _: &DeployedSet,
        _: Duration,
        _: &EventSink,
        _: &CancellationToken,
    ) -> Result<(), DeployError> {
        Ok(())
    }

    fn hook_env(&self, plan: &Vec<String>) -> Vec<(String, String)> {
        vec![("DEPLOYING".into(), plan.join(","))]
    }

    async fn running_containers(
        &self,
        _: &Vec<String>,
    ) -> Result<Vec<TargetContainer>, DeployError> {
        Ok(self.containers.lock().unwrap().clone())
    }

    async fn exec(
        &self,
        container: &TargetContainer,
        argv: &[String],
    ) -> Result<ExecResult, DeployError> {
        self.execs
            .lock()
            .unwrap()
            .push((container.name(), argv.to_vec()));
        Ok(ExecResult {
            stdout: format!("ran {}\n", argv.join(" ")).into_bytes(),
            stderr: Vec::new(),
            exit_code: Some(*self.exec_code.lock().unwrap()),
        })
    }
}

impl Fixture {
    /// Rewrites devloop.yaml: the three artifacts of [`Fixture::new`] with `other` carrying `other_extra` (indented
    /// YAML under it: `hooks:`, `sync:`) and `deploy` (a whole `deploy:` section, or empty).
    pub fn with_hooks(&self, other_extra: &str, deploy: &str) {
        std::fs::write(
            self.dir.path().join("devloop.yaml"),
            format!(
                "apiVersion: devloop/v1alpha1\nkind: Config\nbuild:\n  artifacts:\n    - image: app\n      context: app\n      requires: [{{image: base}}]\n    - image: base\n      context: base\n    - image: other\n      context: other\n{other_extra}{deploy}"
            ),
        )
        .unwrap();
    }

    /// The lines hooks appended to `hooks.log` in the project.
    pub fn hook_log(&self) -> Vec<String> {
        std::fs::read_to_string(self.dir.path().join("hooks.log"))
            .unwrap_or_default()
            .lines()
            .map(str::to_string)
            .collect()
    }

    /// A host hook entry that appends `words` (shell-expanded) to `hooks.log`, then exits with `code`.
    pub fn log_hook(&self, words: &str, code: i32) -> String {
        let log = self.dir.path().join("hooks.log");
        format!(
            "{{command: [sh, -c, 'echo \"{words}\" >> {}; exit {code}']}}",
            log.display()
        )
    }
}
