//! Deploy, Kubernetes backend, the connection: flags and environment (kubeconfig, context) → a client config and
//! the context's name, resolved like kubectl; then a probe of the API server, so an unreachable cluster or expired
//! credentials are reported before anything else happens. Applies nothing.

use std::time::Duration;

use kube::Client;
use kube::config::{KubeConfigOptions, Kubeconfig};

use super::ClusterOptions;
use crate::deploy::DeployError;

pub(super) async fn load_config(
    opts: &ClusterOptions,
) -> Result<(kube::Config, String), DeployError> {
    let kubeconfig = match &opts.kubeconfig {
        Some(path) => Some(
            Kubeconfig::read_from(path).map_err(|e| DeployError::Config {
                message: format!("{}: cannot read the kubeconfig: {e}", path.display()),
                hint: None,
            })?,
        ),
        None => Kubeconfig::read().ok(),
    };
    let Some(kubeconfig) = kubeconfig else {
        return match kube::Config::incluster() {
            Ok(c) => Ok((c, "in-cluster".to_string())),
            Err(_) => Err(DeployError::Config {
                message: "no kubeconfig found (`$KUBECONFIG`, `~/.kube/config`) and not running in a cluster".into(),
                hint: Some("point `--kubeconfig` or `KUBECONFIG` at your cluster's kubeconfig".into()),
            }),
        };
    };
    let context = opts
        .context
        .clone()
        .or_else(|| kubeconfig.current_context.clone())
        .unwrap_or_default();
    if let Some(wanted) = &opts.context
        && !kubeconfig.contexts.iter().any(|c| &c.name == wanted)
    {
        let names: Vec<String> = kubeconfig
            .contexts
            .iter()
            .map(|c| format!("`{}`", c.name))
            .collect();
        return Err(DeployError::Config {
            message: format!("kube context `{wanted}` is not in the kubeconfig"),
            hint: Some(format!("contexts: {}", names.join(", "))),
        });
    }
    let options = KubeConfigOptions {
        context: opts.context.clone(),
        ..Default::default()
    };
    let config = kube::Config::from_custom_kubeconfig(kubeconfig, &options)
        .await
        .map_err(|e| DeployError::Config {
            message: format!("kube context `{context}`: {e}"),
            hint: None,
        })?;
    Ok((config, context))
}

/// Checks that the API server at `server` answers within 15 s and accepts the credentials.
/// Returns the server's version (`gitVersion`), which the probe asks for anyway.
pub(super) async fn probe(
    client: &Client,
    context: &str,
    server: &str,
) -> Result<String, DeployError> {
    let probe = tokio::time::timeout(Duration::from_secs(15), client.apiserver_version()).await;
    let unreachable = |message: String, hint: &str| DeployError::Unreachable {
        context: context.to_string(),
        server: server.to_string(),
        message,
        hint: Some(hint.to_string()),
    };
    match probe {
        Err(_) => Err(unreachable(
            "no answer within 15 s".into(),
            "check that the cluster is running and that `kubectl version` works",
        )),
        Ok(Err(kube::Error::Api(s))) if s.code == 401 => Err(unreachable(
            "the credentials were rejected (401 Unauthorized)".into(),
            "your credentials may have expired: log in again (e.g. refresh your cloud CLI login) and retry",
        )),
        Ok(Err(e)) => Err(unreachable(
            e.to_string(),
            "check that the cluster is running and that `kubectl version` works",
        )),
        Ok(Ok(info)) => Ok(info.git_version),
    }
}
