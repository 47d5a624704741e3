//! Deploy, Docker backend, file sync: changed files of an artifact → copied into the running containers of this
//! project that run its image (one tar archive per distinct set of files, modes and owners as the image has them),
//! and deleted files removed (`rm` in the container), instead of a rebuild, between the artifact's container sync
//! hooks (run in each container). Files under a bind mount are skipped (they are live already); never touches a
//! container without this project's labels.

use std::path::Path;

use bollard::query_parameters::UploadToContainerOptions;

use super::daemon_error::api_error;
use super::{DockerPlan, DockerTarget};
use crate::config::deploy::{Container, Volume};
use crate::config::hooks::Hook;
use crate::deploy::{DeployError, SyncFile, SyncRequest};

impl DockerTarget {
    /// `sync`: copies `req.copy` into, and deletes `req.delete` from, the running containers of `plan` that run
    /// `req.image`, between the container hooks of `req.hooks` (run in each of them); returns how many were
    /// updated. Deleting runs `rm -f --` in the container: a container without `rm` fails the sync (the caller
    /// rebuilds).
    pub(super) async fn copy_files(
        &self,
        plan: &DockerPlan,
        req: &SyncRequest<'_>,
    ) -> Result<usize, DeployError> {
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
            // A file under a bind mount is already live in the container; writing (or deleting) it through the
            // daemon would change the host file and trigger the watcher again.
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
            let gone: Vec<&String> = req.delete.iter().filter(|d| !bind_mounted(c, d)).collect();
            if !gone.is_empty() {
                self.remove_files(&c.name, &gone).await?;
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

    /// Deletes `paths` in container `name` (`rm -f --`, through [`DockerTarget::exec`]): an image without `rm`
    /// fails the sync, and the caller rebuilds.
    async fn remove_files(&self, name: &str, paths: &[&String]) -> Result<(), DeployError> {
        let mut cmd = vec!["rm".to_owned(), "-f".to_owned(), "--".to_owned()];
        cmd.extend(paths.iter().map(|p| (*p).clone()));
        let out = self.exec(name, &cmd).await?;
        match out.exit_code {
            Some(0) => Ok(()),
            _ => {
                let mut text = String::from_utf8_lossy(&out.stdout).into_owned();
                text.push_str(&String::from_utf8_lossy(&out.stderr));
                Err(DeployError::Apply {
                    object: format!("container/{name}"),
                    message: format!("cannot delete synced files: `rm` failed: {}", text.trim()),
                    hint: None,
                })
            }
        }
    }
}

/// Whether `dest` (a path in the container) lies under one of `c`'s bind mounts.
pub(super) fn bind_mounted(c: &Container, dest: &str) -> bool {
    c.volumes.iter().any(|v| match v {
        Volume::Bind { target, .. } => Path::new(dest).starts_with(target),
        Volume::Named { .. } => false,
    })
}

/// One tar archive of `files` at their container paths (relative to `/`), for the daemon to extract: each with its
/// mode, owned by root (as `COPY` makes it) or by the numeric `--chown` owner.
fn sync_archive(files: &[SyncFile]) -> Result<Vec<u8>, DeployError> {
    let mut archive = tar::Builder::new(Vec::new());
    for f in files {
        let (uid, gid) = f.owner_ids()?;
        let content = std::fs::read(&f.local).map_err(|e| DeployError::Api {
            message: format!("sync: cannot read `{}`: {e}", f.local.display()),
            hint: None,
        })?;
        let mut header = tar::Header::new_gnu();
        header.set_entry_type(tar::EntryType::Regular);
        header.set_size(content.len() as u64);
        header.set_mode(f.mode);
        header.set_uid(uid);
        header.set_gid(gid);
        header.set_mtime(
            std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .map(|d| d.as_secs())
                .unwrap_or(0),
        );
        archive
            .append_data(
                &mut header,
                f.dest.trim_start_matches('/'),
                content.as_slice(),
            )
            .map_err(|e| DeployError::Api {
                message: format!("sync: `{}`: {e}", f.local.display()),
                hint: None,
            })?;
    }
    archive.into_inner().map_err(|e| DeployError::Api {
        message: format!("sync: {e}"),
        hint: None,
    })
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    fn file(dir: &Path, name: &str, mode: u32, owner: Option<&str>) -> SyncFile {
        let local = dir.join(name);
        std::fs::write(&local, name).unwrap();
        SyncFile {
            local,
            dest: format!("/srv/{name}"),
            mode,
            owner: owner.map(str::to_owned),
        }
    }

    #[test]
    fn the_archive_carries_each_file_with_its_mode_and_owner() {
        let dir = tempfile::tempdir().unwrap();
        let files = [
            file(dir.path(), "a.sh", 0o751, None),
            file(dir.path(), "b.php", 0o640, Some("33:34")),
            file(dir.path(), "c.txt", 0o600, Some("1000")),
        ];
        let bytes = sync_archive(&files).unwrap();
        let mut archive = tar::Archive::new(bytes.as_slice());
        let got: Vec<(String, u32, u64, u64, String)> = archive
            .entries()
            .unwrap()
            .map(|e| {
                let mut e = e.unwrap();
                let h = e.header().clone();
                let mut body = String::new();
                std::io::Read::read_to_string(&mut e, &mut body).unwrap();
                let path = h.path().unwrap().display().to_string();
                (
                    path,
                    h.mode().unwrap(),
                    h.uid().unwrap(),
                    h.gid().unwrap(),
                    body,
                )
            })
            .collect();
        assert_eq!(
            got,
            [
                ("srv/a.sh".into(), 0o751, 0, 0, "a.sh".into()),
                ("srv/b.php".into(), 0o640, 33, 34, "b.php".into()),
                ("srv/c.txt".into(), 0o600, 1000, 1000, "c.txt".into()),
            ]
        );
    }

    #[test]
    fn an_owner_by_name_fails_the_sync_with_a_hint() {
        let dir = tempfile::tempdir().unwrap();
        let err = sync_archive(&[file(dir.path(), "x.php", 0o644, Some("www-data"))]).unwrap_err();
        assert_eq!(
            err.to_string(),
            "sync: `/srv/x.php` is owned by `www-data` in the image, and devloop sets the owners of synced files by ID only\n\nhint: write `--chown` with numeric IDs (`--chown=33:33`) to sync such files"
        );
    }
}
