//! devloop: a fast, reliable inner loop for Kubernetes development.
//!
//! ```text
//!  files ──walk──▶ ContextFiles ──hash──▶ CacheKey ──cache──▶ Hit(image) | Miss
//!                                                               │
//!                                       build (Docker Engine API) ──▶ BuiltImage{image_id} ──▶ tag · push | load
//!                                                               │
//!  manifests ──render(images, labels, namespace)──▶ objects ──deploy (server-side apply, prune)──▶ DeployedSet
//!                                                               │
//!                                      status (rollout wait) · logs · port-forward · sync (no rebuild)
//!  dev: watch ──ChangeSet──▶ the loop above, latest wins
//! ```
//!
//! Modules, bottom-up (a module uses only those above it; `tests/layout.rs` checks there is no cycle):
//! - Leaves, importing nothing of the crate: [`hint`] (the `hint:` line of every message), [`event`] (the `Event`
//!   contract and its payload types), [`tag`] (image references and tag policies), [`time`] (dates, via jiff),
//!   [`labels`] (the ownership marks), [`daemon`] (the Docker connection), [`own_output`] (devloop's own stdout and
//!   stderr files).
//! - Input: [`cli`] (arguments, clap only) → [`template`] (build-arg and tag templates, tag policies) → [`config`]
//!   (devloop.yaml + profiles → `Config`; `config::compose` and `config::skaffold` for `devloop init`;
//!   `config::schema`, the JSON Schema of devloop.yaml derived from the raw types, for `devloop schema` and editors).
//! - Stages, each with typed input and output, none calling another: [`context`] (the exact build context and its
//!   tar) → [`cache`] (content digests, keys, build records) → [`build`] (the `Builder` seam, Docker backend,
//!   loading into local clusters) → [`render`] (manifests → objects) → [`deploy`] (the `Deployer` seam: Kubernetes,
//!   Docker) → [`hook`] (lifecycle hooks' host commands, their output and failures) → [`connectivity`] (one view of the API server for the long-lived streams) → [`status`] (readiness and
//!   diagnosis), [`logs`], [`starts`] (container starts, for dev's sync replay), [`port_forward`] → [`verify`] (a blue/green release's new copy checked by HTTP
//!   through port-forwards or by a Job, before traffic moves) → [`sync`] (changed files → what to copy and delete in running
//!   containers, or why to rebuild) → [`watch`] (file events → change sets). A stage may take an earlier
//!   stage's output types (status reads what deploy applied); it never calls another stage.
//! - Wiring: [`output`] (the only printing) → [`error`] (the aggregate error: messages and exit codes; used only by
//!   `runner`, `commands` and this file) → [`runner`] (the build run and the dev loop: concurrency, cancellation,
//!   latest wins; waiting on a deploy target) → [`settings`] (flags + devloop.yaml + environment → the resolved
//!   settings of one command, built once) → [`commands`] (one per subcommand; the only readers of signals).
//!
//! Invariants (those a test or lint can check are checked: `tests/layout.rs`, `[lints]` in Cargo.toml):
//! - No import cycle between modules; the leaves import nothing of the crate; only `runner/`, `commands/` and
//!   `lib.rs` use the aggregate [`error::Error`]; stages word hints with [`hint::Hint`].
//! - Stages do not call each other: `runner/` and `commands/` wire them.
//! - Only `output/` and `error.rs` write to stdout/stderr: stdout carries data (image references, YAML, JSON events);
//!   humans read stderr. `tracing` is developer diagnostics: nothing of it shows without `-v` or `RUST_LOG`.
//! - Only `commands/signal.rs` reads signals: SIGINT, SIGTERM and SIGHUP alike, the first graceful (bounded
//!   cleanup), a second forces.
//! - Flags, devloop.yaml and the environment are resolved once, in [`settings`]; stages read no flag.
//! - Only [`tag`] formats image references; only `config/` and `render/` know YAML.
//! - No stage spawns a long-lived task: stages are futures the runner and commands drive, with a cancellation token
//!   where they can block long (callers own timeouts). `spawn_blocking` serves one awaited blocking job; the
//!   watcher's notify and stdin threads belong to the `Watcher` and end with it.
//! - A cache key is computed from content, never from time: nothing changed means nothing is built.
//! - devloop changes and deletes only what this deployment created (ApplySet membership, the `devloop` field
//!   manager, the ownership [`labels`]).
//! - Credentials and Secret data are never printed or logged.

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
pub mod hook;
pub mod labels;
pub mod logs;
pub mod output;
pub mod own_output;
pub mod port_forward;
pub mod render;
pub mod runner;
pub mod settings;
pub mod starts;
pub mod status;
pub mod sync;
pub mod tag;
pub mod template;
pub mod time;
pub mod verify;
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
