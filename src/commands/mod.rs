//! Commands: one file per subcommand; each wires stages together through the runner. No domain logic here.

pub mod build;
pub mod render;

use std::sync::Arc;

use crate::cli::{Cli, Command, GlobalArgs};
use crate::config::{self, Config, LoadOptions};
use crate::error::Error;
use crate::event::Event;
use crate::output::Console;
use crate::template;

/// Dispatches a parsed command line.
pub async fn run(cli: Cli, console: Console) -> Result<(), Error> {
    match cli.command {
        Command::Build(args) => build::run(&cli.global, args, console).await,
        Command::Render(args) => render::run(&cli.global, args, console).await,
    }
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
    Ok(cfg)
}
