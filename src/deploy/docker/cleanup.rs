//! Deploy, Docker backend, cleanup: the project on the daemon → nothing of it left: its containers (stopped within
//! their grace period, or at once when disposable), then their network sandboxes (at once), its network (unless others joined it), and with
//! `--purge-volumes` its named volumes. Only what carries this project's labels; `dry_run` removes nothing.

use super::DockerTarget;
use super::labels::{ARTIFACT_LABEL, plan_name, sandbox_of};
use super::reference::container_ref;
use crate::deploy::{DeleteOptions, DeployError, ObjectRef};
use crate::event::{Event, EventSink};

impl DockerTarget {
    /// `delete_all`: removes everything of this project; returns what was (or would be) removed.
    pub(super) async fn remove_project(
        &self,
        opts: DeleteOptions,
        events: &EventSink,
    ) -> Result<Vec<ObjectRef>, DeployError> {
        let mut deleted = Vec::new();
        let emit = |object: String| {
            events.emit(Event::Deleted {
                object,
                namespace: None,
                dry_run: opts.dry_run,
            })
        };
        let (mut containers, sandboxes) = self.list_project().await?;
        containers.sort_by(|a, b| a.names.cmp(&b.names));
        for c in &containers {
            let name = plan_name(c.labels.as_ref());
            let object = format!("container/{name}");
            if !opts.dry_run
                && let Some(id) = c.id.as_deref()
            {
                let artifact = c.labels.as_ref().and_then(|l| l.get(ARTIFACT_LABEL));
                if self.disposable && artifact.is_some() {
                    self.remove_at_once(&object, id).await?;
                } else {
                    // `None`: each container stops within the grace period it was created with.
                    self.stop_and_remove(&object, id, None, events).await?;
                }
            }
            emit(object);
            deleted.push(container_ref(&name));
        }
        // Network sandboxes go with their containers, at once (their pause program ignores SIGTERM), unreported.
        for s in &sandboxes {
            if !opts.dry_run
                && let Some(id) = s.id.as_deref()
            {
                let object = format!("container/{}", sandbox_of(s.labels.as_ref()));
                self.remove_at_once(&object, id).await?;
            }
        }
        containers.extend(sandboxes);
        deleted.extend(
            self.remove_network(&containers, opts.dry_run, events, &emit)
                .await?,
        );
        if self.purge_volumes {
            deleted.extend(self.remove_volumes(opts.dry_run, &emit).await?);
        }
        Ok(deleted)
    }
}
