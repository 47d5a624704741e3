//! `devloop run`: build (cached) → get images to the cluster (push, or load into kind/k3d nodes) → render → apply
//! → wait until ready; exit 0 only when everything is ready. A signal before that deletes what the project
//! deployed (as `dev` does on exit).

use crate::cli::{GlobalArgs, ImageSource, RunArgs};
use crate::deploy::{DeleteOptions, Deployer};
use crate::error::Error;
use crate::event::Event;
use crate::output::Console;
use crate::settings::{BuildFlags, CLEANUP_TIMEOUT, Destination, Settings};

/// Runs `devloop run`.
pub async fn run(global: &GlobalArgs, args: RunArgs, console: Console) -> Result<(), Error> {
    let cfg = super::load_config(global, "run", &console)?;
    let flags = BuildFlags {
        push: args.push,
        no_cache: args.no_cache,
        ..Default::default()
    };
    let source = ImageSource {
        build_artifacts: None,
        images: Vec::new(),
    };
    if let Some(docker) = &cfg.docker {
        // The Docker target runs on the daemon that builds: nothing to push or load.
        let settings =
            Settings::resolve(global, flags, Some(&args.apply), &cfg, Destination::Docker);
        let images = super::resolve_images(&cfg, &source, &settings, &console).await?;
        let deployed =
            super::deploy::deploy_docker(&cfg, docker, &images, &settings, &console).await;
        if deployed.is_err() && super::signal::received().is_some() {
            let target = crate::deploy::docker::DockerTarget::connect(&cfg.project).await?;
            clean_up(&target, &console).await;
        }
        return deployed;
    }
    let mut settings =
        Settings::resolve(global, flags, Some(&args.apply), &cfg, Destination::Cluster);
    // Connect first: an unreachable cluster should fail before minutes of building.
    let target = super::connect(&settings, &cfg).await?;
    super::load_into(&mut settings, &target, &console);
    let images = super::resolve_images(&cfg, &source, &settings, &console).await?;
    let deployed = super::deploy::apply_and_wait(
        &cfg,
        &target,
        &images,
        &settings,
        args.keep_failed,
        &console,
    )
    .await;
    // A blue/green release removes only its own new copies when stopped: the live ones serve production.
    if deployed.is_err() && super::signal::received().is_some() && cfg.blue_green.is_empty() {
        clean_up(&target, &console).await;
    }
    let deployed = deployed?;
    if args.tail {
        let objects: Vec<serde_json::Value> =
            deployed.applied.into_iter().map(|a| a.object).collect();
        let namespaces = crate::deploy::kube::namespaces_of(&objects, &target.namespace);
        // Until a signal: what is deployed stays, the run succeeded.
        let connectivity = crate::connectivity::Connectivity::new(
            target.client().clone(),
            target.server.clone(),
            console.sink(),
        );
        crate::logs::follow_all(
            &namespaces,
            &target.selector(),
            &console.sink(),
            &super::signal::token(),
            &connectivity,
        )
        .await?;
    }
    Ok(())
}

/// A signal stopped the run before everything was ready: delete what the project deployed, bounded.
async fn clean_up<D: Deployer>(target: &D, console: &Console) {
    let events = console.sink();
    let delete = target.delete_all(
        DeleteOptions {
            dry_run: false,
            wait: false,
        },
        &events,
    );
    match tokio::time::timeout(CLEANUP_TIMEOUT, delete).await {
        Ok(Ok(_)) => {}
        Ok(Err(e)) => events.emit(Event::Warning {
            message: format!("cleanup failed: {e}"),
        }),
        Err(_) => events.emit(Event::Warning {
            message: format!(
                "cleanup did not finish within {CLEANUP_TIMEOUT:?}; run `devloop delete` to finish it"
            ),
        }),
    }
}
