//! `devloop status`: the project's deployment where `deploy` puts it (its rendered layout's home namespace) → what
//! it holds: objects by kind, Deployments' replicas and images, blue/green Services' live colour, since when, from
//! which commit and their copies; lines on stdout, a `status` event with `-o json`. Reads only: writes nothing to
//! the cluster.

use crate::cli::{GlobalArgs, StatusArgs};
use crate::error::Error;
use crate::event::{Event, StatusReport};
use crate::output::Console;
use crate::settings::{Destination, Settings};

/// Runs `devloop status`.
pub async fn run(global: &GlobalArgs, _args: &StatusArgs, console: &Console) -> Result<(), Error> {
    let cfg = super::load_config(global, "status", console)?;
    if cfg.docker.is_some() {
        return Err(Error::Usage {
            message: format!(
                "{}: `deploy.docker` is configured: `devloop status` shows Kubernetes deployments",
                cfg.file
            ),
            hint: Some(format!(
                "the project's containers: `docker ps -a --filter label={}={}`",
                crate::labels::DOCKER_PROJECT,
                cfg.project
            )),
        });
    }
    let settings = Settings::resolve(global, Default::default(), None, &cfg, Destination::Cluster);
    let target = super::connect(&settings, &cfg).await?;
    // Where `deploy` would put the project: render the manifests (no images needed).
    let layout = super::deploy::kube_layout_or_context(&cfg, &target, console);
    let inventory = target.inventory(&layout, crate::time::unix_now()).await?;
    let report = match inventory {
        Some(i) => StatusReport {
            project: cfg.project.clone(),
            context: target.context.clone(),
            namespace: i.namespace,
            applyset: Some(i.applyset),
            namespaces: i.namespaces,
            members: i.members,
            deployments: i.deployments,
            blue_green: i.blue_green,
        },
        None => StatusReport {
            project: cfg.project.clone(),
            context: target.context.clone(),
            namespace: target.home_namespace(&layout.objects),
            applyset: None,
            namespaces: Vec::new(),
            members: Vec::new(),
            deployments: Vec::new(),
            blue_green: Vec::new(),
        },
    };
    for line in crate::output::human::status::lines(&report) {
        console.data_line(&line);
    }
    console.sink().emit(Event::Status(Box::new(report)));
    Ok(())
}
