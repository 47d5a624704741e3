//! `devloop run`: build (cached) → get images to the cluster (push, or load into kind/k3d nodes) → render → apply
//! → wait until ready; exit 0 only when everything is ready.

use crate::cli::{GlobalArgs, ImageSource, RunArgs};
use crate::error::Error;
use crate::output::Console;
use crate::runner::BuildOptions;

/// Runs `devloop run`.
pub async fn run(global: &GlobalArgs, args: RunArgs, console: Console) -> Result<(), Error> {
    let cfg = super::load_config(global, "run", &console)?;
    if let Some(docker) = &cfg.docker {
        // The Docker target runs on the daemon that builds: nothing to push or load.
        let opts = BuildOptions {
            no_cache: args.no_cache,
            deploy_tags: true,
            ..Default::default()
        };
        let source = ImageSource {
            build_artifacts: None,
            images: Vec::new(),
        };
        let images = super::resolve_images(&cfg, &source, &opts, &console).await?;
        return super::deploy::deploy_docker(&cfg, docker, &images, &args.apply, &console).await;
    }
    // Connect first: an unreachable cluster should fail before minutes of building.
    let target = super::connect(global, &cfg, args.apply.force_conflicts).await?;
    let push = args.push || global.default_repo.is_some() || cfg.build.push;
    let opts = BuildOptions {
        push,
        default_repo: global.default_repo.clone(),
        no_cache: args.no_cache,
        deploy_tags: true,
        load: super::local_cluster(&target.context, push, &console),
        ..Default::default()
    };
    let source = ImageSource {
        build_artifacts: None,
        images: Vec::new(),
    };
    let images = super::resolve_images(&cfg, &source, &opts, &console).await?;
    let deployed =
        super::deploy::apply_and_wait(&cfg, &target, &images, &args.apply, &console).await?;
    if args.tail {
        let objects: Vec<serde_json::Value> =
            deployed.applied.into_iter().map(|a| a.object).collect();
        let namespaces = crate::deploy::kube::namespaces_of(&objects, &target.namespace);
        crate::logs::follow_until_ctrl_c(
            target.client(),
            &namespaces,
            &target.selector(),
            &console.sink(),
        )
        .await?;
    }
    Ok(())
}
