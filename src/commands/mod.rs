//! Commands: one file per subcommand; each wires stages together through the runner. No domain logic here.

pub mod build;
pub mod delete;
pub mod deploy;
pub mod dev;
pub mod init;
pub mod render;
pub mod run;
pub mod signal;

use std::sync::Arc;

use crate::build::artifacts;
use crate::build::load::{self, LocalCluster};
use crate::cli::{Cli, Command, GlobalArgs, ImageSource};
use crate::config::{self, Config, LoadOptions};
use crate::deploy::kube::{ClusterOptions, KubeTarget};
use crate::error::Error;
use crate::event::BuiltArtifact;
use crate::event::Event;
use crate::output::Console;
use crate::render::ArtifactImage;
use crate::runner::{ArtifactResult, BuildOptions};
use crate::tag;
use crate::template;

/// Dispatches a parsed command line. SIGINT, SIGTERM and SIGHUP are served from the start: the first cancels
/// [`signal::token`], a second exits at once; after a signal the exit code is 128 + its number.
pub async fn run(cli: Cli, console: Console) -> Result<(), Error> {
    let signals = signal::listen(console.clone());
    let work = async {
        match cli.command {
            Command::Build(args) => build::run(&cli.global, args, console).await,
            Command::Render(args) => render::run(&cli.global, args, console).await,
            Command::Run(args) => run::run(&cli.global, args, console).await,
            Command::Deploy(args) => deploy::run(&cli.global, args, console).await,
            Command::Delete(args) => delete::run(&cli.global, args, console).await,
            Command::Dev(args) => dev::run(&cli.global, args, console).await,
            Command::Init(args) => init::run(&cli.global, args, console),
        }
    };
    let result = tokio::select! {
        r = work => r,
        never = signals => match never {},
    };
    signal::outcome(result)
}

/// Reads the process environment (the one place commands take it from).
pub fn process_env() -> template::Env {
    Arc::new(|k: &str| std::env::var(k).ok())
}

/// Loads the config for `command` with the user's profiles, and reports which profiles are active.
pub fn load_config(global: &GlobalArgs, command: &str, console: &Console) -> Result<Config, Error> {
    let env = process_env();
    let kube_context = global
        .kube_context
        .clone()
        .or_else(|| config::profile::current_kube_context(&*env));
    let opts = LoadOptions {
        profiles: global.profiles.clone(),
        activation: config::ActivationContext {
            command: command.to_string(),
            kube_context,
        },
    };
    let cfg = config::load(&global.filename, &opts, &*env)?;
    console.sink().emit(Event::ConfigLoaded {
        file: cfg.file.clone(),
        project: cfg.project.clone(),
        profiles: cfg.active_profiles.clone(),
    });
    if matches!(command, "build" | "run" | "deploy" | "dev") {
        warn_own_output_in_contexts(&cfg, console);
    }
    Ok(cfg)
}

/// Says once when devloop's stdout or stderr is redirected into a build context: devloop leaves its own output
/// out of builds and never reacts to it, but a plain `docker build` would send it.
fn warn_own_output_in_contexts(cfg: &Config, console: &Console) {
    for out in crate::own_output::own_outputs() {
        let Some(path) = &out.path else { continue };
        for a in &cfg.build.artifacts {
            let context = std::fs::canonicalize(&a.context).unwrap_or_else(|_| a.context.clone());
            if let Ok(rel) = path.strip_prefix(&context) {
                console.sink().emit(Event::Warning {
                    message: format!(
                        "devloop's {} goes to `{}`, inside the build context of `{}`: devloop neither rebuilds on \
                         its own output nor sends it to the daemon, but a plain `docker build` would\n\nhint: \
                         redirect it outside the project, or add `{}` to the context's .dockerignore",
                        out.stream,
                        path.display(),
                        a.image,
                        rel.display()
                    ),
                });
                break;
            }
        }
    }
}

/// The images to inject: from `--build-artifacts`, from `--images`, or built (with the cache) like
/// `devloop build` does, with immutable deploy references.
pub async fn resolve_images(
    cfg: &Config,
    source: &ImageSource,
    opts: &BuildOptions,
    console: &Console,
) -> Result<Vec<ArtifactImage>, Error> {
    let given: Vec<BuiltArtifact> = if let Some(file) = &source.build_artifacts {
        artifacts::read(file)?
    } else if !source.images.is_empty() {
        source
            .images
            .iter()
            .map(|s| render::parse_image_flag(s))
            .collect::<Result<_, _>>()?
    } else {
        let built = build::build(cfg, opts, console).await?;
        return Ok(built.iter().map(ArtifactResult::artifact_image).collect());
    };
    given
        .into_iter()
        .map(|b| {
            let parsed = tag::parse(&b.tag)?;
            Ok(ArtifactImage {
                name: b.image,
                reference: b.tag.clone(),
                repository: parsed.repository,
                tag: parsed.tag.unwrap_or_else(|| "latest".to_string()),
                digest: parsed.digest,
            })
        })
        .collect()
}

/// Connects to the cluster the flags and kubeconfig name, for `cfg`'s project.
pub async fn connect(
    global: &GlobalArgs,
    cfg: &Config,
    force_conflicts: bool,
) -> Result<KubeTarget, Error> {
    let opts = ClusterOptions {
        kubeconfig: global.kubeconfig.clone(),
        context: global.kube_context.clone(),
        namespace: global.namespace.clone(),
    };
    Ok(KubeTarget::connect(&opts, &cfg.project, force_conflicts).await?)
}

/// The local cluster whose nodes get the built images when the kube context names kind or k3d and images are not
/// pushed. For minikube, says once how to build where the cluster can see the images.
pub fn local_cluster(context: &str, push: bool, console: &Console) -> Option<LocalCluster> {
    if push {
        return None;
    }
    match load::detect(context)? {
        LocalCluster::Minikube => {
            // `eval $(minikube docker-env)` sets this: the daemon that builds is then minikube's own.
            if std::env::var_os("MINIKUBE_ACTIVE_DOCKERD").is_none() {
                console.sink().emit(Event::Warning {
                    message: "kube context `minikube`: its nodes do not see this Docker daemon's images\n\nhint: run `eval $(minikube docker-env)` before devloop to build with minikube's daemon, or push (`--push`, `--default-repo`)".into(),
                });
            }
            None
        }
        LocalCluster::SharedDaemon(_) => None,
        cluster => Some(cluster),
    }
}
