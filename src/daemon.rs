//! The Docker connection, a leaf: where the daemon is (`DOCKER_HOST`, else the local socket), connecting with a
//! negotiated API version, and what to tell the user when it cannot be reached. The build stage and the Docker
//! deploy target both connect through it. Imports nothing of the crate; decides nothing about builds or containers.

use bollard::Docker;

/// What devloop tells the user when the daemon cannot be reached.
pub const UNREACHABLE_HINT: &str = "is dockerd running? devloop talks to the daemon `DOCKER_HOST` names (default: the local socket)";

/// Where the daemon is expected, for messages.
pub fn host() -> String {
    std::env::var("DOCKER_HOST").unwrap_or_else(|_| "unix:///var/run/docker.sock".to_string())
}

/// Connects to the daemon (`DOCKER_HOST` or the local socket) and negotiates the API version, so an unreachable
/// daemon is found here, before anything else happens.
pub async fn connect() -> Result<Docker, bollard::errors::Error> {
    Docker::connect_with_defaults()?.negotiate_version().await
}
