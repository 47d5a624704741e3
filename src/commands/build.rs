//! `devloop build`: config → built (or cached) images; references on stdout, `--file-output` JSON.

use crate::build::artifacts;
use crate::build::docker::DockerBuilder;
use crate::cache::Store;
use crate::cli::{BuildArgs, GlobalArgs};
use crate::error::Error;
use crate::output::Console;
use crate::runner::{ArtifactResult, BuildOptions, BuildRun};
use crate::tag::Timestamp;
use crate::template::Vars;

/// Runs `devloop build`.
pub async fn run(global: &GlobalArgs, args: BuildArgs, console: Console) -> Result<(), Error> {
    let cfg = super::load_config(global, "build", &console)?;
    let opts = BuildOptions {
        only: args.build_image.clone(),
        push: args.push,
        tag: args.tag.clone(),
        default_repo: global.default_repo.clone(),
        no_cache: args.no_cache,
        deploy_tags: false,
        changes_supersede: false,
        load: None,
    };
    let results = build(&cfg, &opts, &console).await?;
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
    opts: &BuildOptions,
    console: &Console,
) -> Result<Vec<ArtifactResult>, Error> {
    if cfg.build.artifacts.is_empty() {
        return Ok(Vec::new());
    }
    let store = Store::open(&crate::cache::default_dir()?)?;
    let (builder, buildkit) = DockerBuilder::connect(cfg.build.use_buildkit).await?;
    if cfg.build.use_buildkit && !buildkit {
        console.sink().emit(crate::event::Event::Warning {
            message: "the Docker daemon does not support BuildKit (API < 1.39): using the classic builder".into(),
        });
    }
    let now = Timestamp::now();
    let vars = Vars::new(&cfg.base_dir, now.rfc3339(), super::process_env());
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
    };
    let results = run.build_all(opts).await?;
    // Old memo files and build records are dropped at most once a day; a failure only costs disk space.
    if let Err(e) = store.gc_if_due(&crate::cache::GcPolicy::default()) {
        console.sink().emit(crate::event::Event::Warning {
            message: format!("cache garbage collection failed: {e}"),
        });
    }
    Ok(results)
}
