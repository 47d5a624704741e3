//! `devloop deploy`: images (from `--build-artifacts`, `--images`, or a cached build) → render → apply → wait.

use crate::cli::{ApplyArgs, DeployArgs, GlobalArgs};
use crate::config::Config;
use crate::deploy::Deployer;
use crate::deploy::kube::{KubePlan, KubeTarget};
use crate::error::Error;
use crate::output::Console;
use crate::render::ArtifactImage;
use crate::runner::BuildOptions;

/// Runs `devloop deploy`.
pub async fn run(global: &GlobalArgs, args: DeployArgs, console: Console) -> Result<(), Error> {
    let cfg = super::load_config(global, "deploy", &console)?;
    let opts = BuildOptions {
        push: args.push,
        default_repo: global.default_repo.clone(),
        deploy_tags: true,
        ..Default::default()
    };
    let images = super::resolve_images(&cfg, &args.source, &opts, &console).await?;
    if let Some(docker) = &cfg.docker {
        return deploy_docker(&cfg, docker, &images, &args.apply, &console).await;
    }
    let target = super::connect(global, &cfg, args.apply.force_conflicts).await?;
    apply_and_wait(
        &cfg,
        &target,
        &images,
        &args.apply,
        global.namespace.as_deref(),
        &console,
    )
    .await
}

/// Renders with `images`, applies, prunes, and (unless disabled) waits until everything is ready.
pub async fn apply_and_wait(
    cfg: &Config,
    target: &KubeTarget,
    images: &[ArtifactImage],
    apply: &ApplyArgs,
    namespace: Option<&str>,
    console: &Console,
) -> Result<(), Error> {
    let rendered = super::render::render_objects(
        cfg,
        images,
        namespace.or(Some(target.namespace.as_str())),
        console,
    )?;
    let plan = KubePlan {
        objects: rendered
            .objects
            .into_iter()
            .map(|o| o.into_value())
            .collect(),
    };
    deploy_and_wait(target, &plan, apply, console).await
}

/// The Docker target: containers on the local daemon instead of a cluster.
pub async fn deploy_docker(
    cfg: &Config,
    docker: &crate::config::deploy::DockerDeploy,
    images: &[ArtifactImage],
    apply: &ApplyArgs,
    console: &Console,
) -> Result<(), Error> {
    let target = crate::deploy::docker::DockerTarget::connect(&cfg.project).await?;
    let plan = docker_plan(docker, images);
    deploy_and_wait(&target, &plan, apply, console).await
}

/// Deploys `plan` with any target and (unless disabled) waits until it is ready; a signal cancels cleanly.
async fn deploy_and_wait<D: Deployer>(
    target: &D,
    plan: &D::Plan,
    apply: &ApplyArgs,
    console: &Console,
) -> Result<(), Error> {
    let cancel = super::signal::token();
    let events = console.sink();
    let deployed = target.deploy(plan, &events, &cancel).await?;
    if !apply.no_status_check {
        target
            .wait_ready(&deployed, apply.status_check_deadline, &events, &cancel)
            .await?;
    }
    Ok(())
}

/// What the Docker target runs: the configured containers, artifact names replaced by built references.
pub fn docker_plan(
    docker: &crate::config::deploy::DockerDeploy,
    images: &[ArtifactImage],
) -> crate::deploy::docker::DockerPlan {
    crate::deploy::docker::DockerPlan {
        deploy: docker.clone(),
        images: images
            .iter()
            .map(|i| (i.name.clone(), i.reference.clone()))
            .collect(),
    }
}
