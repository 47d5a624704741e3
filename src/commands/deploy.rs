//! `devloop deploy`: images (from `--build-artifacts`, `--images`, or a cached build) → render → apply → wait.

use crate::cli::{DeployArgs, GlobalArgs};
use crate::config::Config;
use crate::deploy::kube::{KubePlan, KubeTarget};
use crate::error::Error;
use crate::output::Console;
use crate::render::ArtifactImage;
use crate::runner::target::DeployTarget;
use crate::settings::{BuildFlags, Destination, Settings};

/// Runs `devloop deploy`.
pub async fn run(global: &GlobalArgs, args: DeployArgs, console: Console) -> Result<(), Error> {
    let cfg = super::load_config(global, "deploy", &console)?;
    let flags = BuildFlags {
        push: args.push,
        ..Default::default()
    };
    if let Some(docker) = &cfg.docker {
        let settings =
            Settings::resolve(global, flags, Some(&args.apply), &cfg, Destination::Docker);
        let images = super::resolve_images(&cfg, &args.source, &settings, &console).await?;
        return deploy_docker(&cfg, docker, &images, &settings, &console).await;
    }
    let mut settings =
        Settings::resolve(global, flags, Some(&args.apply), &cfg, Destination::Cluster);
    // Connect before building: the context says whether built images are loaded into local cluster nodes.
    let target = super::connect(&settings, &cfg).await?;
    if args.source.build_artifacts.is_none() && args.source.images.is_empty() {
        super::load_into(&mut settings, &target, &console);
    }
    let images = super::resolve_images(&cfg, &args.source, &settings, &console).await?;
    apply_and_wait(
        &cfg,
        &target,
        &images,
        &settings,
        args.keep_failed,
        &console,
    )
    .await?;
    Ok(())
}

/// Renders with `images`, applies, prunes, and (unless disabled) waits until everything is ready; with
/// `deploy.kubernetes.blueGreen`, releases those Services blue/green (`keep_failed`: a failed release's copies stay).
pub async fn apply_and_wait(
    cfg: &Config,
    target: &KubeTarget,
    images: &[ArtifactImage],
    settings: &Settings,
    keep_failed: bool,
    console: &Console,
) -> Result<crate::deploy::DeployedSet, Error> {
    let plan = kube_plan(cfg, target, images, console)?;
    if cfg.blue_green.is_empty() {
        return deploy_and_wait(target, &plan, &cfg.deploy_hooks, settings, console).await;
    }
    if !settings.apply.status_check {
        console.sink().emit(crate::event::Event::Warning {
            message: "--no-status-check does not apply to a blue/green release: traffic moves only to copies that are ready"
                .into(),
        });
    }
    let opts = crate::runner::blue_green::ReleaseOptions {
        hooks: &cfg.deploy_hooks,
        // A release waits for its copies whatever `--no-status-check` says: traffic moves only to ready pods.
        deadline: settings.apply.status_deadline,
        keep_failed,
        cleanup: crate::settings::CLEANUP_TIMEOUT,
        provenance: provenance(cfg, settings),
        images: images
            .iter()
            .map(|i| (i.name.clone(), i.reference.clone()))
            .collect(),
    };
    crate::runner::blue_green::release(
        target,
        plan.objects,
        &cfg.blue_green,
        &opts,
        &console.sink(),
        &super::signal::token(),
    )
    .await
}

/// What a release records as its origin: `GIT_COMMIT` from the environment (CI), else the project's git HEAD,
/// else `unknown`.
fn provenance(cfg: &Config, settings: &Settings) -> crate::deploy::blue_green::Provenance {
    let commit = (settings.env)("GIT_COMMIT")
        .filter(|c| !c.trim().is_empty())
        .or_else(|| {
            crate::template::Vars::new(&cfg.base_dir, String::new(), settings.env.clone())
                .field("GIT_COMMIT")
                .ok()
        })
        .unwrap_or_else(|| "unknown".to_string());
    crate::deploy::blue_green::Provenance { commit }
}

/// The objects to apply on `target`: rendered with its namespace as the default for objects that name none
/// (and, when it came from `-n`, as the only namespace allowed).
pub fn kube_plan(
    cfg: &Config,
    target: &KubeTarget,
    images: &[ArtifactImage],
    console: &Console,
) -> Result<KubePlan, Error> {
    let rendered = super::render::render_objects(
        cfg,
        images,
        Some(&target.namespace),
        target.namespace_explicit,
        console,
    )?;
    Ok(KubePlan::new(rendered.into_values()))
}

/// [`kube_plan`] without images and without reporting render warnings: where the objects go and what they are
/// (names, namespaces, Services) does not depend on the images.
pub fn kube_layout(cfg: &Config, target: &KubeTarget) -> Result<KubePlan, Error> {
    let rendered = super::render::render_quietly(
        cfg,
        &[],
        Some(&target.namespace),
        target.namespace_explicit,
    )?;
    Ok(KubePlan::new(rendered.into_values()))
}

/// [`kube_layout`] for commands that look for what is deployed (`delete`, `status`): manifests broken since the
/// deploy must not hide it — then the namespace the flags and context give is where to look, and a warning says so.
pub fn kube_layout_or_context(cfg: &Config, target: &KubeTarget, console: &Console) -> KubePlan {
    match kube_layout(cfg, target) {
        Ok(layout) => layout,
        Err(e) => {
            console.sink().emit(crate::event::Event::Warning {
                message: format!(
                    "cannot render the manifests to find where project `{}` is deployed, looking in namespace `{}`: \
                     {e}{}",
                    cfg.project,
                    target.namespace,
                    crate::hint::Hint("if it lives elsewhere, pass `-n` with that namespace")
                ),
            });
            KubePlan::default()
        }
    }
}

/// The Docker target: containers on the local daemon instead of a cluster.
pub async fn deploy_docker(
    cfg: &Config,
    docker: &crate::config::deploy::DockerDeploy,
    images: &[ArtifactImage],
    settings: &Settings,
    console: &Console,
) -> Result<(), Error> {
    let target = crate::deploy::docker::DockerTarget::connect(&cfg.project).await?;
    let plan = docker_plan(docker, images);
    deploy_and_wait(&target, &plan, &cfg.deploy_hooks, settings, console).await?;
    Ok(())
}

/// Deploys `plan` with any target, between the deploy hooks, and (unless disabled) waits until it is ready; a
/// signal cancels cleanly.
async fn deploy_and_wait<D: DeployTarget>(
    target: &D,
    plan: &D::Plan,
    hooks: &crate::config::hooks::Hooks,
    settings: &Settings,
    console: &Console,
) -> Result<crate::deploy::DeployedSet, Error> {
    let deadline = settings
        .apply
        .status_check
        .then_some(settings.apply.status_deadline);
    crate::runner::hooks::deploy_with_hooks(
        target,
        plan,
        hooks,
        deadline,
        &console.sink(),
        &super::signal::token(),
    )
    .await
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
