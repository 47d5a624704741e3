//! Runner, dev loop, replacement ahead of a build: the artifacts whose build starts (cache misses) → the target
//! stops their running containers while the images build (kept, not removed; a no-op for Kubernetes), remembered
//! across a cancelled iteration (the next one rebuilds them), and started again when no build replaces them: the
//! iteration failed, its image came from the cache, or the session ends without cleanup. Emits `restored` and
//! warnings; prints nothing.

use std::collections::{BTreeMap, HashSet};
use std::sync::{Mutex, MutexGuard, PoisonError};

use tokio::sync::mpsc;

use super::{DevLoop, Running};
use crate::build::Builder;
use crate::deploy::Stopped;
use crate::event::Event;
use crate::runner::ArtifactResult;
use crate::runner::target::DeployTarget;
use crate::tag;

/// Containers stopped ahead of a rebuild, by artifact (normalized repository), until a deploy replaces them or
/// they are started again.
#[derive(Debug, Default)]
pub(super) struct Replacing(Mutex<BTreeMap<String, Vec<Stopped>>>);

impl Replacing {
    fn lock(&self) -> MutexGuard<'_, BTreeMap<String, Vec<Stopped>>> {
        self.0.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Whether the containers of artifact `image` are stopped, waiting for its new image.
    pub(super) fn holds(&self, image: &str) -> bool {
        self.lock().contains_key(&tag::normalize_repository(image))
    }

    /// Forgets every stopped container (a deploy replaced them), or returns them all to be started again.
    pub(super) fn take_all(&self) -> Vec<Stopped> {
        std::mem::take(&mut *self.lock())
            .into_values()
            .flatten()
            .collect()
    }

    /// Takes the stopped containers of the artifacts `keep` does not name.
    fn take_except(&self, keep: &HashSet<String>) -> Vec<Stopped> {
        let mut held = self.lock();
        let gone: Vec<String> = held
            .keys()
            .filter(|k| !keep.contains(*k))
            .cloned()
            .collect();
        gone.into_iter()
            .filter_map(|k| held.remove(&k))
            .flatten()
            .collect()
    }
}

impl<B: Builder, D: DeployTarget> DevLoop<'_, B, D> {
    /// Stops the running containers of each artifact whose build starts, as `started` names them, until the
    /// iteration's builds are over (the channel closes).
    pub(super) async fn stop_replaced(
        &self,
        started: &mut mpsc::UnboundedReceiver<String>,
        running: &Running<'_>,
    ) {
        while let Some(image) = started.recv().await {
            let key = tag::normalize_repository(&image);
            if running.replacing.holds(&key) {
                continue;
            }
            let Some(current) = running.images.get(&key) else {
                continue;
            };
            match self
                .deployer
                .prepare_replace(std::slice::from_ref(&current.image_id))
                .await
            {
                Ok(stopped) if stopped.is_empty() => {}
                Ok(stopped) => {
                    running.replacing.lock().insert(key, stopped);
                }
                Err(e) => self.events.emit(Event::Warning {
                    message: format!(
                        "{image}: its running containers could not be stopped while it builds (they are replaced after the build): {e}"
                    ),
                }),
            }
        }
    }

    /// After the builds: starts again the containers stopped for artifacts `results` did not rebuild (newer
    /// content brought back an image from the cache, or nothing of theirs is built now).
    pub(super) async fn restore_unreplaced(
        &self,
        results: &[ArtifactResult],
        running: &Running<'_>,
    ) {
        let rebuilt: HashSet<String> = results
            .iter()
            .filter(|r| !r.cached)
            .map(|r| tag::normalize_repository(&r.image))
            .collect();
        let back = running.replacing.take_except(&rebuilt);
        self.restore(back, "no new image replaces it").await;
    }

    /// Starts `stopped` again and says so in one line.
    pub(super) async fn restore(&self, stopped: Vec<Stopped>, reason: &str) {
        if stopped.is_empty() {
            return;
        }
        match self.deployer.restore(&stopped).await {
            Ok(objects) if objects.is_empty() => {}
            Ok(objects) => self.events.emit(Event::Restored {
                objects,
                reason: reason.into(),
            }),
            Err(e) => self.events.emit(Event::Warning {
                message: format!("the previous containers could not be started again: {e}"),
            }),
        }
    }
}
