//! CLI: clap definitions only → parsed arguments. The doc comments are the `--help` text; no logic here.

use std::path::PathBuf;

use clap::{Args, Parser, Subcommand};

/// devloop: build, render and deploy to Kubernetes in a fast inner loop.
#[derive(Debug, Parser)]
#[command(name = "devloop", version, about, propagate_version = true)]
pub struct Cli {
    #[command(flatten)]
    pub global: GlobalArgs,
    #[command(subcommand)]
    pub command: Command,
}

/// Options every command takes.
#[derive(Debug, Clone, Args)]
pub struct GlobalArgs {
    /// The config file.
    #[arg(
        short = 'f',
        long = "filename",
        global = true,
        default_value = "devloop.yaml",
        env = "DEVLOOP_FILENAME"
    )]
    pub filename: PathBuf,
    /// Activate profiles (repeatable or comma-separated); `-p -NAME` deactivates an auto-activated one.
    #[arg(
        short = 'p',
        long = "profile",
        global = true,
        value_name = "PROFILE",
        allow_hyphen_values = true
    )]
    pub profiles: Vec<String>,
    /// Result format: `human` (progress on stderr, data on stdout) or `json` (JSON Lines events on stdout).
    #[arg(
        short = 'o',
        long = "output",
        global = true,
        value_enum,
        default_value = "human"
    )]
    pub output: Format,
    /// Show every line of build output and developer diagnostics (`RUST_LOG` for more).
    #[arg(short = 'v', long = "verbose", global = true)]
    pub verbose: bool,
    /// Push images to this repository, rewriting image names onto it (e.g. `localhost:5000`, `gcr.io/project`).
    #[arg(
        short = 'd',
        long = "default-repo",
        global = true,
        env = "DEVLOOP_DEFAULT_REPO",
        value_name = "REPO"
    )]
    pub default_repo: Option<String>,
    /// The kube context to use (default: the kubeconfig's current context); profiles' `kubeContext`
    /// activations match it.
    #[arg(long = "kube-context", global = true, value_name = "CONTEXT")]
    pub kube_context: Option<String>,
    /// The kubeconfig file (default: `$KUBECONFIG`, else `~/.kube/config`, else in-cluster configuration).
    #[arg(long = "kubeconfig", global = true, value_name = "FILE")]
    pub kubeconfig: Option<PathBuf>,
    /// Namespace for namespaced objects that name none (default: the kube context's namespace).
    #[arg(short = 'n', long = "namespace", global = true)]
    pub namespace: Option<String>,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Build the artifacts' images; print their references on stdout, one per line.
    Build(BuildArgs),
    /// Print the Kubernetes objects devloop would apply, with the built images in them.
    Render(RenderArgs),
    /// Build, deploy and wait until everything is ready; exit 0 only when it is.
    Run(RunArgs),
    /// Deploy already built images (`--build-artifacts` from `devloop build --file-output`) and wait until ready.
    Deploy(DeployArgs),
    /// Delete everything devloop deployed for this project.
    Delete(DeleteArgs),
    /// Blue/green: send each released Service's traffic back to its previous colour (scaled back up first when it
    /// was scaled down).
    Rollback(RollbackArgs),
    /// Watch, rebuild and redeploy on every change; stream logs; clean up on exit.
    Dev(DevArgs),
    /// Show what this project has deployed where (Kubernetes): its objects by kind, each Deployment's ready and
    /// desired replicas and images, and for blue/green Services which colour is live, since when, from which
    /// commit, and whether the previous colour still runs. Reads only; changes nothing.
    Status(StatusArgs),
    /// Write a devloop.yaml from a docker-compose file (its services become containers on the local Docker
    /// daemon, its builds artifacts) or from a skaffold.yaml; what cannot be converted is listed. The schema its
    /// first line points editors at is written beside it (`devloop.schema.json`).
    Init(InitArgs),
    /// Print devloop's version; with `-v`, also the versions of the Docker daemon and the Kubernetes API server it
    /// would use (or why they cannot be reached).
    Version,
    /// Print a shell completion script on stdout, e.g. `devloop completion bash > ~/.local/share/bash-completion/completions/devloop`.
    Completion(CompletionArgs),
    /// Print devloop's man page (roff) on stdout, or write one page per command into a directory with `--dir`.
    Man(ManArgs),
    /// Print the JSON Schema of devloop.yaml (for editors: completion, hover help, validation), or write it to a
    /// file with `--output-file`. `devloop init` writes it beside the devloop.yaml it creates.
    Schema(SchemaArgs),
}

/// Options of `devloop schema`.
#[derive(Debug, Clone, Args)]
pub struct SchemaArgs {
    /// Write the schema to this file (e.g. `devloop.schema.json` beside your devloop.yaml) instead of stdout.
    #[arg(long = "output-file", value_name = "FILE")]
    pub output_file: Option<PathBuf>,
}

/// Options of `devloop completion`.
#[derive(Debug, Clone, Args)]
pub struct CompletionArgs {
    /// The shell to complete in.
    #[arg(value_enum)]
    pub shell: clap_complete::Shell,
}

/// Options of `devloop man`.
#[derive(Debug, Clone, Args)]
pub struct ManArgs {
    /// Write `devloop.1` and one `devloop-COMMAND.1` per command into this directory instead of printing devloop(1).
    #[arg(long, value_name = "DIR")]
    pub dir: Option<PathBuf>,
}

/// Options of `devloop init`.
#[derive(Debug, Clone, Args)]
#[command(group = clap::ArgGroup::new("source").required(true).args(["from_compose", "from_skaffold"]))]
pub struct InitArgs {
    /// The compose file to convert (`compose.yaml`, `docker-compose.yml`, …).
    #[arg(long = "from-compose", value_name = "FILE")]
    pub from_compose: Option<PathBuf>,
    /// The Skaffold config to convert (`skaffold.yaml`, `apiVersion: skaffold/v2beta*` through `v4beta*`, with the
    /// configs it `requires`). `-p PROFILE` applies Skaffold profiles before converting, as `skaffold -p` would;
    /// the other profiles become devloop profiles.
    #[arg(long = "from-skaffold", value_name = "FILE")]
    pub from_skaffold: Option<PathBuf>,
    /// Where to write the devloop.yaml (default: the `-f` path, `devloop.yaml`); `-` prints it on stdout.
    #[arg(long = "output-file", value_name = "FILE")]
    pub output_file: Option<PathBuf>,
    /// Overwrite the output file when it exists.
    #[arg(long)]
    pub force: bool,
}

/// What triggers a rebuild in `devloop dev`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum TriggerArg {
    /// File system notifications (falls back to polling when the watch limit is reached).
    Notify,
    /// Scan the watched files every second.
    Polling,
    /// Rebuild when Enter is pressed.
    Manual,
}

/// Options of `devloop dev`.
#[derive(Debug, Clone, Args)]
pub struct DevArgs {
    #[command(flatten)]
    pub apply: ApplyArgs,
    /// Push images (implied by `--default-repo`); without it images stay local, for local clusters.
    #[arg(long)]
    pub push: bool,
    /// What triggers a rebuild.
    #[arg(long, value_enum, default_value = "notify")]
    pub trigger: TriggerArg,
    /// Quiet time that ends a burst of file events, in milliseconds. A lone save is never delayed by it: its build
    /// starts 10 ms after it; only saves that keep coming (an autosave loop, a formatter) wait for this much quiet.
    #[arg(long, default_value_t = 150, value_name = "MS")]
    pub debounce: u64,
    /// Delete what was deployed when devloop stops (`--cleanup=false` keeps it running).
    #[arg(long, default_value_t = true, action = clap::ArgAction::Set, value_name = "BOOL")]
    pub cleanup: bool,
    /// Forward every port of every Service of the project to localhost (besides `portForward:` entries).
    #[arg(long = "port-forward")]
    pub port_forward: bool,
    /// Stream the logs of the project's pods (`--tail=false` to turn off).
    #[arg(long, default_value_t = true, action = clap::ArgAction::Set, value_name = "BOOL")]
    pub tail: bool,
}

/// Where the images to deploy come from (default: build them, using the cache).
#[derive(Debug, Clone, Args)]
pub struct ImageSource {
    /// Use the images recorded by `devloop build --file-output FILE` instead of building.
    #[arg(
        short = 'a',
        long = "build-artifacts",
        value_name = "FILE",
        conflicts_with = "images"
    )]
    pub build_artifacts: Option<PathBuf>,
    /// Use these images instead of building: `name=reference`, comma-separated or repeated.
    #[arg(
        short = 'i',
        long = "images",
        value_name = "NAME=REF",
        value_delimiter = ','
    )]
    pub images: Vec<String>,
}

/// How objects are applied and checked.
#[derive(Debug, Clone, Args)]
pub struct ApplyArgs {
    /// Take over fields another field manager owns (server-side apply `force`).
    #[arg(long = "force-conflicts")]
    pub force_conflicts: bool,
    /// How long workloads may take to become ready: `90s`, `10m`, `1h`.
    #[arg(long = "status-check-deadline", value_name = "DURATION", default_value = "10m", value_parser = parse_duration)]
    pub status_check_deadline: std::time::Duration,
    /// Do not wait for workloads to become ready.
    #[arg(long = "no-status-check")]
    pub no_status_check: bool,
}

/// Options of `devloop run`.
#[derive(Debug, Clone, Args)]
pub struct RunArgs {
    #[command(flatten)]
    pub apply: ApplyArgs,
    /// Push images (implied by `--default-repo`); without it images stay local, for local clusters.
    #[arg(long)]
    pub push: bool,
    /// Ignore devloop's cache and the daemon's layer cache.
    #[arg(long = "no-cache")]
    pub no_cache: bool,
    /// Follow the logs of the project's pods after the deploy, until Ctrl-C.
    #[arg(long)]
    pub tail: bool,
    /// Blue/green: keep a failed release's new copies for inspection instead of removing them.
    #[arg(long = "keep-failed")]
    pub keep_failed: bool,
}

/// Options of `devloop deploy`.
#[derive(Debug, Clone, Args)]
pub struct DeployArgs {
    #[command(flatten)]
    pub source: ImageSource,
    #[command(flatten)]
    pub apply: ApplyArgs,
    /// Push images when they have to be built (implied by `--default-repo`).
    #[arg(long)]
    pub push: bool,
    /// Blue/green: keep a failed release's new copies for inspection instead of removing them.
    #[arg(long = "keep-failed")]
    pub keep_failed: bool,
}

/// Options of `devloop rollback`.
#[derive(Debug, Clone, Args)]
pub struct RollbackArgs {
    /// Roll back only this Service (one of `deploy.kubernetes.blueGreen`); default: all of them.
    #[arg(long, value_name = "NAME")]
    pub service: Option<String>,
    /// How long the previous copies may take to become ready again: `90s`, `10m`.
    #[arg(long = "status-check-deadline", value_name = "DURATION", default_value = "10m", value_parser = parse_duration)]
    pub status_check_deadline: std::time::Duration,
}

/// Options of `devloop status`: the global ones (`-n`, `--kube-context`, `--kubeconfig`, `-o json`, `-p`) say
/// which deployment to look at.
#[derive(Debug, Clone, Args)]
pub struct StatusArgs {}

/// Options of `devloop delete`.
#[derive(Debug, Clone, Args)]
pub struct DeleteArgs {
    /// Wait until the objects are gone.
    #[arg(long)]
    pub wait: bool,
    /// List what would be deleted; delete nothing.
    #[arg(long = "dry-run")]
    pub dry_run: bool,
    /// Docker target: also remove the named volumes devloop created (they are kept by default).
    #[arg(long = "purge-volumes")]
    pub purge_volumes: bool,
}

/// Parses `90s`, `10m`, `1h`, `1h30m` or a plain number of seconds.
pub fn parse_duration(s: &str) -> Result<std::time::Duration, String> {
    let bad = || format!("`{s}` is not a duration (e.g. `90s`, `10m`, `1h30m`)");
    if let Ok(secs) = s.parse::<u64>() {
        return Ok(std::time::Duration::from_secs(secs));
    }
    let mut total = 0u64;
    let mut number = String::new();
    for c in s.chars() {
        if c.is_ascii_digit() {
            number.push(c);
            continue;
        }
        let n: u64 = number.parse().map_err(|_| bad())?;
        number.clear();
        total += n * match c {
            'h' => 3600,
            'm' => 60,
            's' => 1,
            _ => return Err(bad()),
        };
    }
    if !number.is_empty() || s.is_empty() {
        return Err(bad());
    }
    Ok(std::time::Duration::from_secs(total))
}

/// Options of `devloop build`.
#[derive(Debug, Clone, Args)]
pub struct BuildArgs {
    /// Build only these artifacts (by image name, repeatable); the artifacts they require are built too.
    #[arg(short = 'b', long = "build-image", value_name = "NAME")]
    pub build_image: Vec<String>,
    /// Push the images to their registry and print `repository:tag@sha256:digest`.
    #[arg(long)]
    pub push: bool,
    /// Use this tag instead of the tag policy's.
    #[arg(short = 't', long = "tag")]
    pub tag: Option<String>,
    /// Write the built artifacts as JSON to this file (read back by `render`/`deploy --build-artifacts`).
    #[arg(long = "file-output", value_name = "FILE")]
    pub file_output: Option<PathBuf>,
    /// Ignore devloop's cache and the daemon's layer cache: build everything from scratch.
    #[arg(long = "no-cache")]
    pub no_cache: bool,
}

/// Options of `devloop render`.
#[derive(Debug, Clone, Args)]
pub struct RenderArgs {
    #[command(flatten)]
    pub source: ImageSource,
    /// Write the YAML to this file instead of stdout.
    #[arg(long = "output-file", value_name = "FILE")]
    pub output_file: Option<PathBuf>,
    /// Render without contacting any cluster (devloop render never does today; accepted for scripts).
    #[arg(long)]
    pub offline: bool,
    /// Push images when building them for the render (as `devloop build --push`).
    #[arg(long)]
    pub push: bool,
}

/// How the user asked to see results.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum Format {
    /// Progress and messages on stderr, data (image references, YAML) on stdout.
    Human,
    /// One JSON event per line on stdout.
    Json,
}
