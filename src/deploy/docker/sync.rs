//! Deploy, Docker backend, file sync: changed files of an artifact → copied into the running containers of this
//! project that run its image (one tar archive per distinct set of files), instead of a rebuild. Files under a
//! bind mount are skipped (they are live already); the artifact's container sync hooks run in each container before and
//! after its files. Never touches a container without this project's labels.

use std::path::Path;

use bollard::query_parameters::UploadToContainerOptions;

use super::daemon_error::api_error;
use super::{DockerPlan, DockerTarget};
use crate::config::deploy::{Container, Volume};
use crate::config::hooks::Hook;
use crate::deploy::{DeployError, SyncFile, SyncRequest};

impl DockerTarget {
    /// `sync`: copies `req.copy` into the running containers of `plan` that run `req.image`, between the container
    /// hooks of `req.hooks` (run in each of them); returns how many were updated. Deleting files is not done on
    /// this target: such a request is refused, and the caller rebuilds.
    pub(super) async fn copy_files(
        &self,
        plan: &DockerPlan,
        req: &SyncRequest<'_>,
    ) -> Result<usize, DeployError> {
        if !req.delete.is_empty() {
            return Err(DeployError::Api {
                message: "deleting files from containers is not done on the Docker target".into(),
                hint: None,
            });
        }
        let files = &req.copy;
        let wanted = crate::tag::normalize_repository(req.image);
        let containers: Vec<&Container> = plan
            .deploy
            .containers
            .iter()
            .filter(|c| crate::tag::normalize_repository(&c.image) == wanted)
            .collect();
        let mut updated = 0;
        let mut archives: Vec<(Vec<SyncFile>, bytes::Bytes)> = Vec::new();
        for c in containers {
            let object = format!("container/{}", c.name);
            let Some(current) = self.inspect(&object, &self.container_name(&c.name)).await? else {
                continue;
            };
            let running = current.state.as_ref().and_then(|s| s.running) == Some(true);
            let ours = self.owns(current.config.as_ref().and_then(|c| c.labels.as_ref()));
            let Some(id) = current.id.as_deref().filter(|_| running && ours) else {
                continue;
            };
            // A file under a bind mount is already live in the container; writing it through the daemon would
            // rewrite the host file and trigger the watcher again.
            self.run_sync_hooks(&c.name, &req.hooks.before, "before")
                .await?;
            let wanted: Vec<SyncFile> = files
                .iter()
                .filter(|f| !bind_mounted(c, &f.dest))
                .cloned()
                .collect();
            if !wanted.is_empty() {
                // Containers of one image usually take the same files: one archive each distinct set.
                let archive = match archives.iter().find(|(set, _)| *set == wanted) {
                    Some((_, archive)) => archive.clone(),
                    None => {
                        let set = wanted.clone();
                        let archive: bytes::Bytes =
                            tokio::task::spawn_blocking(move || sync_archive(&set))
                                .await
                                .map_err(|e| DeployError::Api {
                                    message: format!("sync: {e}"),
                                    hint: None,
                                })??
                                .into();
                        archives.push((wanted, archive.clone()));
                        archive
                    }
                };
                self.docker
                    .upload_to_container(
                        id,
                        Some(UploadToContainerOptions {
                            path: "/".into(),
                            ..Default::default()
                        }),
                        bollard::body_full(archive),
                    )
                    .await
                    .map_err(|e| api_error(&object, "sync files into", &e))?;
            }
            self.run_sync_hooks(&c.name, &req.hooks.after, "after")
                .await?;
            updated += 1;
        }
        Ok(updated)
    }

    /// Runs the container hooks of `hooks` whose `containerName` matches in container `name`; a non-zero exit
    /// fails the sync with the command's last lines.
    async fn run_sync_hooks(
        &self,
        name: &str,
        hooks: &[Hook],
        when: &str,
    ) -> Result<(), DeployError> {
        for hook in hooks {
            let Hook::Container(h) = hook else { continue };
            if h.container_name.as_ref().is_some_and(|g| !g.matches(name)) {
                continue;
            }
            let out = self.exec(name, &h.command).await?;
            if out.exit_code != Some(0) {
                let text = String::from_utf8_lossy(if out.stderr.is_empty() {
                    &out.stdout
                } else {
                    &out.stderr
                })
                .to_string();
                let lines: Vec<&str> = text.lines().collect();
                let tail = lines[lines.len().saturating_sub(5)..].join("\n");
                return Err(DeployError::Api {
                    message: format!(
                        "container/{name}: sync hook ({when}) `{}` exited with {}{}",
                        h.command.join(" "),
                        out.exit_code
                            .map_or_else(|| "no exit code".to_string(), |c| format!("code {c}")),
                        if tail.is_empty() {
                            String::new()
                        } else {
                            format!(":\n{tail}")
                        }
                    ),
                    hint: None,
                });
            }
        }
        Ok(())
    }
}

/// Whether `dest` (a path in the container) lies under one of `c`'s bind mounts.
pub(super) fn bind_mounted(c: &Container, dest: &str) -> bool {
    c.volumes.iter().any(|v| match v {
        Volume::Bind { target, .. } => Path::new(dest).starts_with(target),
        Volume::Named { .. } => false,
    })
}

/// One tar archive of `files` at their container paths (relative to `/`), for the daemon to extract.
fn sync_archive(files: &[SyncFile]) -> Result<Vec<u8>, DeployError> {
    let mut archive = tar::Builder::new(Vec::new());
    archive.follow_symlinks(false);
    for f in files {
        archive
            .append_path_with_name(&f.local, f.dest.trim_start_matches('/'))
            .map_err(|e| DeployError::Api {
                message: format!("sync: cannot read `{}`: {e}", f.local.display()),
                hint: None,
            })?;
    }
    archive.into_inner().map_err(|e| DeployError::Api {
        message: format!("sync: {e}"),
        hint: None,
    })
}
