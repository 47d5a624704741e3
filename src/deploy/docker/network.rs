//! Deploy, Docker backend, the project's network: `devloop-<project>`, created with devloop's labels unless it
//! exists, removed on delete only when nothing devloop did not create is attached. A network of that name devloop
//! did not create is an error, never used or removed.

use bollard::errors::Error as DockerError;
use bollard::models::{ContainerSummary, NetworkCreateRequest};

use super::DockerTarget;
use super::daemon_error::{api_error, is_not_found};
use super::reference::API_VERSION;
use crate::deploy::{DeployError, ObjectRef};
use crate::event::{Event, EventSink};

impl DockerTarget {
    /// Creates the project's network unless it exists; a network of that name devloop did not create is an error.
    pub(super) async fn ensure_network(&self) -> Result<(), DeployError> {
        let name = self.network_name();
        let what = format!("network/{name}");
        match self.docker.inspect_network(&name, None).await {
            Ok(n) if self.owns(n.labels.as_ref()) => Ok(()),
            Ok(_) => Err(DeployError::Apply {
                object: what,
                message: format!("a network named `{name}` exists and devloop did not create it"),
                hint: Some(format!(
                    "devloop never touches networks it did not create: remove it (`docker network rm {name}`) or rename the project (`metadata.name`)"
                )),
            }),
            Err(e) if is_not_found(&e) => {
                let created = self
                    .docker
                    .create_network(NetworkCreateRequest {
                        name: name.clone(),
                        driver: Some("bridge".into()),
                        labels: Some(self.labels()),
                        ..Default::default()
                    })
                    .await;
                match created {
                    Ok(_) => Ok(()),
                    // Another devloop of this project created it meanwhile.
                    Err(DockerError::DockerResponseServerError {
                        status_code: 409, ..
                    }) => Ok(()),
                    Err(e) => Err(api_error(&what, "create", &e)),
                }
            }
            Err(e) => Err(api_error(&what, "inspect", &e)),
        }
    }
    /// Removes the project's network once `containers` (the project's, removed already) are gone, unless
    /// containers devloop did not create are attached (then it stays, with a warning). Returns the network when
    /// it was (or, with `dry_run`, would be) removed; `emit` reports it.
    pub(super) async fn remove_network(
        &self,
        containers: &[ContainerSummary],
        dry_run: bool,
        events: &EventSink,
        emit: impl Fn(String),
    ) -> Result<Option<ObjectRef>, DeployError> {
        let network = self.network_name();
        match self.docker.inspect_network(&network, None).await {
            Ok(n) if self.owns(n.labels.as_ref()) => {
                // Containers devloop did not create may have joined the network: then it stays.
                let others = n
                    .containers
                    .as_ref()
                    .map(|m| {
                        m.keys()
                            .filter(|id| !containers.iter().any(|c| c.id.as_ref() == Some(*id)))
                            .count()
                    })
                    .unwrap_or(0);
                if others == 0 {
                    if !dry_run {
                        match self.docker.remove_network(&network).await {
                            Ok(()) => {}
                            Err(e) if is_not_found(&e) => {}
                            Err(e) => {
                                return Err(api_error(&format!("network/{network}"), "remove", &e));
                            }
                        }
                    }
                    emit(format!("network/{network}"));
                    return Ok(Some(ObjectRef {
                        api_version: API_VERSION.into(),
                        kind: "Network".into(),
                        namespace: None,
                        name: network.clone(),
                    }));
                } else {
                    events.emit(Event::Warning {
                        message: format!(
                            "network/{network}: kept: {others} containers devloop did not create are attached to it"
                        ),
                    });
                }
            }
            Ok(_) => {}
            Err(e) if is_not_found(&e) => {}
            Err(e) => return Err(api_error(&format!("network/{network}"), "inspect", &e)),
        }
        Ok(None)
    }
}
