//! Deploy, Docker backend, named volumes: `<project>-<name>`, created with devloop's labels unless they exist (an
//! existing one is used, never removed), and removed on delete only with `--purge-volumes`, only those carrying
//! this project's labels.

use bollard::models::VolumeCreateRequest;
use bollard::query_parameters::ListVolumesOptions;

use super::DockerTarget;
use super::daemon_error::{api_error, is_not_found};
use super::reference::API_VERSION;
use crate::deploy::{DeployError, ObjectRef};

impl DockerTarget {
    /// Creates a named volume with devloop's labels unless it exists (an existing one is used, never removed).
    pub(super) async fn ensure_volume(&self, name: &str) -> Result<(), DeployError> {
        let what = format!("volume/{name}");
        match self.docker.inspect_volume(name).await {
            Ok(_) => Ok(()),
            Err(e) if is_not_found(&e) => self
                .docker
                .create_volume(VolumeCreateRequest {
                    name: Some(name.to_string()),
                    labels: Some(self.labels()),
                    ..Default::default()
                })
                .await
                .map(|_| ())
                .map_err(|e| api_error(&what, "create", &e)),
            Err(e) => Err(api_error(&what, "inspect", &e)),
        }
    }
    /// Removes the named volumes devloop created for this project, in name order; returns them (with `dry_run`,
    /// removes nothing and returns what would go). `emit` reports each.
    pub(super) async fn remove_volumes(
        &self,
        dry_run: bool,
        emit: impl Fn(String),
    ) -> Result<Vec<ObjectRef>, DeployError> {
        let mut deleted = Vec::new();
        let volumes = self
            .docker
            .list_volumes(Some(ListVolumesOptions {
                filters: Some(self.label_filters()),
            }))
            .await
            .map_err(|e| api_error("volumes", "list", &e))?;
        let mut volumes: Vec<_> = volumes
            .volumes
            .unwrap_or_default()
            .into_iter()
            .filter(|v| self.owns(Some(&v.labels)))
            .collect();
        volumes.sort_by(|a, b| a.name.cmp(&b.name));
        for v in volumes {
            let object = format!("volume/{}", v.name);
            if !dry_run {
                match self
                    .docker
                    .remove_volume(
                        &v.name,
                        None::<bollard::query_parameters::RemoveVolumeOptions>,
                    )
                    .await
                {
                    Ok(()) => {}
                    Err(e) if is_not_found(&e) => {}
                    Err(e) => return Err(api_error(&object, "remove", &e)),
                }
            }
            emit(object);
            deleted.push(ObjectRef {
                api_version: API_VERSION.into(),
                kind: "Volume".into(),
                namespace: None,
                name: v.name,
            });
        }
        Ok(deleted)
    }
}
