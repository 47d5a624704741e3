//! `devloop version`: devloop's version; with `-v` also what the Docker daemon and the Kubernetes API server devloop
//! would use answer — their versions, or why they cannot be reached (that is not a failure of this command). Reads
//! no config, changes nothing. Lines on stdout; a `version` event with `-o json`.

use crate::cli::GlobalArgs;
use crate::deploy::kube::KubeTarget;
use crate::error::Error;
use crate::event::{Event, Reached};
use crate::output::Console;

/// How long each service may take to answer.
const ASK_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(5);

/// Runs `devloop version`.
pub async fn run(global: &GlobalArgs, console: &Console) -> Result<(), Error> {
    let devloop = env!("CARGO_PKG_VERSION").to_string();
    let (docker, kubernetes) = if global.verbose {
        let (d, k) = tokio::join!(docker(), kubernetes(global));
        (Some(d), Some(k))
    } else {
        (None, None)
    };
    console.data_line(&format!("devloop {devloop}"));
    for (name, reached) in [("docker", &docker), ("kubernetes", &kubernetes)] {
        if let Some(r) = reached {
            console.data_line(&line(name, r));
        }
    }
    console.sink().emit(Event::Version {
        devloop,
        docker,
        kubernetes,
    });
    Ok(())
}

/// `docker 20.10.24 (API 1.41) at unix:///var/run/docker.sock`, or why not.
fn line(name: &str, r: &Reached) -> String {
    let mut at = String::new();
    if !r.address.is_empty() {
        at = format!(" at {}", r.address);
    }
    if let Some(c) = &r.context {
        at.push_str(&format!(" (context `{c}`)"));
    }
    match (&r.version, &r.error) {
        (Some(v), _) => {
            let api = r
                .api_version
                .as_ref()
                .map(|a| format!(" (API {a})"))
                .unwrap_or_default();
            format!("{name} {v}{api}{at}")
        }
        (None, error) => format!(
            "{name}: not reached{at}: {}",
            error.as_deref().unwrap_or("no answer")
        ),
    }
}

/// What could not be asked, and why.
fn not_reached(address: String, context: Option<String>, error: String) -> Reached {
    Reached {
        address,
        context,
        version: None,
        api_version: None,
        error: Some(error),
    }
}

async fn docker() -> Reached {
    let address = crate::daemon::host();
    let asked = tokio::time::timeout(ASK_TIMEOUT, async {
        let docker = crate::daemon::connect().await?;
        docker.version().await
    })
    .await;
    match asked {
        Ok(Ok(v)) => Reached {
            address,
            context: None,
            version: v.version,
            api_version: v.api_version,
            error: None,
        },
        Ok(Err(e)) => not_reached(address, None, e.to_string()),
        Err(_) => not_reached(address, None, format!("no answer within {ASK_TIMEOUT:?}")),
    }
}

async fn kubernetes(global: &GlobalArgs) -> Reached {
    let opts = crate::settings::cluster(global);
    let asked = tokio::time::timeout(ASK_TIMEOUT, async {
        // Connecting probes the server (`GET /version`) and says why it cannot be reached.
        KubeTarget::connect(&opts, "", false).await
    })
    .await;
    let context = opts.context.clone();
    match asked {
        Ok(Ok(target)) => Reached {
            address: target.server.clone(),
            context: Some(target.context.clone()),
            version: Some(target.server_version.clone()),
            api_version: None,
            error: None,
        },
        // The first line: the reason, without the hint meant for commands that need the cluster.
        Ok(Err(e)) => {
            let reason = e.to_string().lines().next().unwrap_or_default().to_string();
            not_reached(String::new(), context, reason)
        }
        Err(_) => not_reached(
            String::new(),
            context,
            format!("no answer within {ASK_TIMEOUT:?}"),
        ),
    }
}
