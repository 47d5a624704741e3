//! `devloop delete`: everything this deployment holds (the project where its manifests put it: its ApplySet,
//! members devloop applied) → gone; the same project deployed elsewhere stays.

use crate::cli::{DeleteArgs, GlobalArgs};
use crate::deploy::{DeleteOptions, Deployer};
use crate::error::Error;
use crate::output::Console;
use crate::settings::{Destination, Settings};

/// Runs `devloop delete`.
pub async fn run(global: &GlobalArgs, args: DeleteArgs, console: Console) -> Result<(), Error> {
    let cfg = super::load_config(global, "delete", &console)?;
    if cfg.docker.is_some() {
        let target = crate::deploy::docker::DockerTarget::connect(&cfg.project)
            .await?
            .with_purge_volumes(args.purge_volumes);
        let deleted = target
            .delete_all(
                DeleteOptions {
                    dry_run: args.dry_run,
                    wait: true,
                },
                &console.sink(),
            )
            .await?;
        if deleted.is_empty() {
            console.info(&format!(
                "nothing of project `{}` runs on the Docker daemon",
                cfg.project
            ));
        }
        return Ok(());
    }
    let settings = Settings::resolve(global, Default::default(), None, &cfg, Destination::Cluster);
    let target = super::connect(&settings, &cfg).await?;
    // The deployment is the project where its manifests put it: render them (no images needed) to know where.
    let layout = super::deploy::kube_layout_or_context(&cfg, &target, &console);
    target.locate(&layout).await;
    let deleted = target
        .delete_all(
            DeleteOptions {
                dry_run: args.dry_run,
                wait: args.wait,
            },
            &console.sink(),
        )
        .await?;
    if deleted.is_empty() {
        console.info(&format!(
            "nothing of project `{}` is deployed in context `{}` (namespace `{}`)",
            cfg.project, target.context, target.namespace
        ));
    }
    Ok(())
}
