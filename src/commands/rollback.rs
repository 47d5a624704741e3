//! `devloop rollback`: each blue/green Service of the project (or `--service`) → its traffic back on the previous
//! colour (those copies scaled back up and ready first when a release scaled them down).

use crate::cli::{GlobalArgs, RollbackArgs};
use crate::error::Error;
use crate::output::Console;
use crate::settings::{Destination, Settings};

/// Runs `devloop rollback`.
pub async fn run(global: &GlobalArgs, args: RollbackArgs, console: Console) -> Result<(), Error> {
    let cfg = super::load_config(global, "rollback", &console)?;
    if cfg.docker.is_some() || cfg.blue_green.is_empty() {
        return Err(Error::Usage {
            message: format!(
                "{}: no `deploy.kubernetes.blueGreen`: `devloop rollback` returns blue/green Services to their previous colour",
                cfg.file
            ),
            hint: Some(
                "release with blue/green first (`deploy.kubernetes.blueGreen`, or the profile that turns it on: `-p`)"
                    .into(),
            ),
        });
    }
    let settings = Settings::resolve(global, Default::default(), None, &cfg, Destination::Cluster);
    let target = super::connect(&settings, &cfg).await?;
    // Where the Services are and what they look like does not depend on the images.
    let layout = super::deploy::kube_layout(&cfg, &target)?;
    crate::runner::blue_green::rollback(
        &target,
        layout.objects,
        &cfg.blue_green,
        args.service.as_deref(),
        args.status_check_deadline,
        &console.sink(),
        &super::signal::token(),
    )
    .await
}
