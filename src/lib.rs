//! devloop: a fast, reliable inner loop for Kubernetes development.
//!
//! ```text
//!  files ──walk──▶ ContextFiles ──hash──▶ CacheKey ──cache──▶ Hit(image) | Miss
//!                                                               │
//!                                       build (Docker Engine API) ──▶ BuiltImage{image_id} ──▶ tag · push
//!                                                               │
//!  manifests ──render(images, labels, namespace)──▶ objects ──▶ YAML (stdout) │ deploy (next)
//! ```
//!
//! Modules, in data-flow order: [`cli`] (arguments) → [`config`] (devloop.yaml + profiles; [`config::compose`]
//! turns a docker-compose file into one for `devloop init`) → [`context`]
//! (the exact build context and its tar) → [`cache`] (content digests, keys, build records) → [`template`] and
//! [`tag`] (build args, image references) → [`build`] (Builder seam, Docker backend) → [`render`] (manifests →
//! objects) → [`runner`] (wires the stages, owns concurrency and cancellation) → [`commands`] (one per
//! subcommand) → [`event`] and [`output`] (the only printing) → [`error`] (messages, hints, exit codes).
//!
//! Invariants:
//! - Only `output/` writes to stdout/stderr: stdout carries data (image references, YAML, JSON events).
//! - Only `runner.rs` runs stages concurrently; stages take a cancellation token where they can block long.
//! - Only `tag.rs` formats image references; only `config/` and `render/` know YAML.
//! - A cache key is computed from content, never from time: nothing changed means nothing is built.
//! - Credentials and Secret data are never printed or logged.
//! - Only `commands/signal.rs` reads signals: SIGINT, SIGTERM and SIGHUP alike, the first graceful, a second forces.
//! - `tracing` is developer diagnostics: nothing of it reaches the terminal without `-v` or `RUST_LOG`.

pub mod build;
pub mod cache;
pub mod cli;
pub mod commands;
pub mod config;
pub mod connectivity;
pub mod context;
pub mod daemon;
pub mod deploy;
pub mod error;
pub mod event;
pub mod hint;
pub mod labels;
pub mod logs;
pub mod output;
pub mod own_output;
pub mod port_forward;
pub mod render;
pub mod runner;
pub mod settings;
pub mod status;
pub mod tag;
pub mod template;
pub mod time;
pub mod watch;

use output::{Console, Output};

/// Runs one devloop invocation and returns its exit code. Prints only through `output`.
pub fn run(cli: cli::Cli) -> u8 {
    init_tracing(cli.global.verbose);
    let console = Console::new(Output::new(cli.global.output, cli.global.verbose));
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
    {
        Ok(rt) => rt,
        Err(e) => {
            console.error(&format!("error: cannot start the async runtime: {e}"));
            return error::EXIT_USAGE;
        }
    };
    let result = runtime.block_on(commands::run(cli, console.clone()));
    console.finish();
    match result {
        Ok(()) => 0,
        Err(e) => {
            if !e.is_silent() {
                console.error(&error::Report(&e).to_string());
            }
            e.exit_code()
        }
    }
}

/// Developer diagnostics on stderr, only when asked for (`-v`, `RUST_LOG`): without either nothing is installed, so
/// not even a library's error log (kube's retries while the cluster is away) reaches the user's terminal — what the
/// user needs to know arrives as events.
fn init_tracing(verbose: bool) {
    let filter = match tracing_subscriber::EnvFilter::try_from_default_env() {
        Ok(filter) => filter,
        Err(_) if verbose => tracing_subscriber::EnvFilter::new("warn,devloop=debug"),
        Err(_) => return,
    };
    let _ = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stderr()))
        .with_writer(std::io::stderr)
        .try_init();
}
