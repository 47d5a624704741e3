//! Commands: one file per subcommand; each wires stages together through the runner. No domain logic here.

pub mod build;
pub mod completion;
pub mod delete;
pub mod deploy;
pub mod dev;
pub mod init;
pub mod render;
pub mod rollback;
pub mod run;
pub mod schema;
pub mod signal;
pub mod status;
pub mod version;

use crate::build::artifacts;
use crate::cli::{Cli, Command, GlobalArgs, ImageSource};
use crate::config::{self, Config, LoadOptions};
use crate::deploy::kube::KubeTarget;
use crate::error::Error;
use crate::event::BuiltArtifact;
use crate::event::Event;
use crate::hint::Hint;
use crate::output::Console;
use crate::render::ArtifactImage;
use crate::runner::ArtifactResult;
use crate::settings::Settings;
use crate::tag;

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
            Command::Rollback(args) => rollback::run(&cli.global, args, console).await,
            Command::Dev(args) => dev::run(&cli.global, args, console).await,
            Command::Status(args) => status::run(&cli.global, &args, &console).await,
            Command::Init(args) => init::run(&cli.global, args, console),
            Command::Completion(args) => completion::completion(&args, &console),
            Command::Man(args) => completion::man(&args, &console),
            Command::Schema(args) => schema::run(&cli.global, &args, &console),
            Command::Version => version::run(&cli.global, &console).await,
        }
    };
    let result = tokio::select! {
        r = work => r,
        never = signals => match never {},
    };
    signal::outcome(result)
}

/// Loads the config for `command` with the user's profiles, and reports which profiles are active.
pub fn load_config(global: &GlobalArgs, command: &str, console: &Console) -> Result<Config, Error> {
    let env = crate::settings::process_env();
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
                         its own output nor sends it to the daemon, but a plain `docker build` would{}",
                        out.stream,
                        path.display(),
                        a.image,
                        Hint(format_args!(
                            "redirect it outside the project, or add `{}` to the context's .dockerignore",
                            rel.display()
                        ))
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
    settings: &Settings,
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
        let built = build::build(cfg, settings, console).await?;
        return Ok(built.iter().map(ArtifactResult::artifact_image).collect());
    };
    given
        .into_iter()
        .map(|b| {
            let parsed = tag::parse(&b.tag)?;
            Ok(ArtifactImage {
                name: b.image,
                reference: b.tag.clone(),
                tag: parsed.tag_or_default().to_string(),
                repository: parsed.repository,
                digest: parsed.digest,
            })
        })
        .collect()
}

/// Connects to the cluster the settings name, for `cfg`'s project.
pub async fn connect(settings: &Settings, cfg: &Config) -> Result<KubeTarget, Error> {
    Ok(KubeTarget::connect(
        &settings.cluster,
        &cfg.project,
        settings.apply.force_conflicts,
    )
    .await?)
}

/// Settles, for images built for `target`, whether they are loaded into its nodes (kind, k3d); when its nodes
/// cannot see them (minikube), says so once.
pub fn load_into(settings: &mut Settings, target: &KubeTarget, console: &Console) {
    if let Some(message) = settings.load_into(&target.context) {
        console.sink().emit(Event::Warning { message });
    }
}
