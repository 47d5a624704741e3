//! Deploy, Docker backend, daemon answers: a failed Engine API call → a `DeployError` naming the object, the verb
//! and the daemon's own message, with a hint when the user can act. Talks to no daemon.

use bollard::errors::Error as DockerError;

use crate::deploy::DeployError;

pub(super) fn is_not_found(e: &DockerError) -> bool {
    matches!(
        e,
        DockerError::DockerResponseServerError {
            status_code: 404,
            ..
        }
    )
}

pub(super) fn server_message(e: &DockerError) -> String {
    match e {
        DockerError::DockerResponseServerError { message, .. } => message.trim().to_string(),
        other => other.to_string(),
    }
}

pub(super) fn api_error(object: &str, verb: &str, e: &DockerError) -> DeployError {
    let message = server_message(e);
    let hint = if message.contains("port is already allocated")
        || message.contains("address already in use")
    {
        Some("another container or process uses that host port: change `ports` in deploy.docker or stop it".into())
    } else if matches!(e, DockerError::DockerResponseServerError { .. }) {
        None
    } else {
        Some("is dockerd still running?".into())
    };
    DeployError::Apply {
        object: object.to_string(),
        message: format!("cannot {verb}: {message}"),
        hint,
    }
}
