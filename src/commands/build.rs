//! `devloop build`: config → built (or cached) images; references on stdout, `--file-output` JSON.

use crate::build::artifacts;
use crate::build::docker::DockerBuilder;
use crate::cache::Store;
use crate::cli::{BuildArgs, GlobalArgs};
use crate::error::Error;
use crate::output::Console;
use crate::runner::{ArtifactResult, BuildRun};
use crate::settings::{BuildFlags, Destination, Settings};
use crate::template::Vars;
use crate::time::Timestamp;

/// Runs `devloop build`.
pub async fn run(global: &GlobalArgs, args: BuildArgs, console: Console) -> Result<(), Error> {
    let cfg = super::load_config(global, "build", &console)?;
    let flags = BuildFlags {
        push: args.push,
        tag: args.tag.clone(),
        no_cache: args.no_cache,
        only: args.build_image.clone(),
    };
    let settings = Settings::resolve(global, flags, None, &cfg, Destination::Output);
    let results = build(&cfg, &settings, &console).await?;
    for r in &results {
        console.data_line(&r.reference());
    }
    if let Some(path) = &args.file_output {
        let builds: Vec<_> = results.iter().map(ArtifactResult::built_artifact).collect();
        artifacts::write(path, &builds)?;
    }
    Ok(())
}

/// Builds the selected artifacts of `cfg` with the Docker daemon and the user's cache store; shared by every
/// command that needs images.
pub async fn build(
    cfg: &crate::config::Config,
    settings: &Settings,
    console: &Console,
) -> Result<Vec<ArtifactResult>, Error> {
    if cfg.build.artifacts.is_empty() {
        return Ok(Vec::new());
    }
    let store = Store::open(&crate::cache::default_dir()?)?;
    let (builder, buildkit) = DockerBuilder::connect(settings.buildkit).await?;
    if settings.buildkit && !buildkit {
        console.sink().emit(crate::event::Event::Warning {
            message: "the Docker daemon does not support BuildKit (API < 1.39): using the classic builder".into(),
        });
    }
    let now = Timestamp::now();
    let vars = Vars::new(&cfg.base_dir, now.rfc3339(), settings.env.clone());
    // The first signal cancels the builds; the command then returns their `Cancelled` errors.
    let cancel = super::signal::token();
    let run = BuildRun {
        cfg,
        builder: &builder,
        store: &store,
        vars: &vars,
        now,
        events: console.sink(),
        cancel: cancel.clone(),
        misses: None,
    };
    let results = run.build_all(&settings.build_options()).await?;
    // Old memo files and build records are dropped at most once a day; a failure only costs disk space.
    if let Err(e) = store.gc_if_due(&crate::cache::GcPolicy::default()) {
        console.sink().emit(crate::event::Event::Warning {
            message: format!("cache garbage collection failed: {e}"),
        });
    }
    Ok(results)
}
