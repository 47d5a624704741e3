//! Deploy, Docker backend, images: an image reference → the ID of the image on the daemon, pulled (without
//! credentials) when the daemon lacks it. Never builds, tags or pushes; a pull stops when cancelled.

use bollard::query_parameters::CreateImageOptions;
use futures_util::stream::StreamExt;
use tokio_util::sync::CancellationToken;

use super::DockerTarget;
use super::daemon_error::{api_error, is_not_found, server_message};
use crate::deploy::DeployError;

impl DockerTarget {
    /// The ID of the image `reference` names, pulling it (without credentials) when the daemon lacks it.
    pub(super) async fn image_id(
        &self,
        object: &str,
        reference: &str,
        cancel: &CancellationToken,
    ) -> Result<String, DeployError> {
        match self.docker.inspect_image(reference).await {
            Ok(i) => return Ok(i.id.unwrap_or_default()),
            Err(e) if is_not_found(&e) => {}
            Err(e) => return Err(api_error(object, "inspect its image", &e)),
        }
        let parsed = crate::tag::parse(reference).map_err(|e| DeployError::Apply {
            object: object.to_string(),
            message: e.to_string(),
            hint: None,
        })?;
        let tag = match &parsed.digest {
            Some(digest) => digest.clone(),
            None => parsed.tag_or_default().to_string(),
        };
        let mut pull = self.docker.create_image(
            Some(CreateImageOptions {
                from_image: Some(parsed.repository),
                tag: Some(tag),
                ..Default::default()
            }),
            None,
            None,
        );
        let not_there = |message: String| {
            DeployError::Apply {
            object: object.to_string(),
            message: format!(
                "image `{reference}` is not on the Docker daemon and could not be pulled: {message}"
            ),
            hint: Some(
                "name a built artifact, build the image, or `docker pull` it (devloop pulls without credentials)"
                    .into(),
            ),
        }
        };
        loop {
            tokio::select! {
                _ = cancel.cancelled() => return Err(DeployError::Cancelled),
                item = pull.next() => match item {
                    None => break,
                    Some(Ok(info)) => {
                        if let Some(detail) = info.error_detail {
                            return Err(not_there(detail.message.unwrap_or_default()));
                        }
                    }
                    Some(Err(e)) => return Err(not_there(server_message(&e))),
                },
            }
        }
        self.docker
            .inspect_image(reference)
            .await
            .map(|i| i.id.unwrap_or_default())
            .map_err(|e| not_there(server_message(&e)))
    }
}
