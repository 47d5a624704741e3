//! CLI: clap definitions only → parsed arguments. The doc comments are the `--help` text; no logic here.

use std::path::PathBuf;

use clap::{Args, Parser, Subcommand};

use crate::output::Format;

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
    /// The kube context to match profile activations against (default: the kubeconfig's current context).
    #[arg(long = "kube-context", global = true, value_name = "CONTEXT")]
    pub kube_context: Option<String>,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Build the artifacts' images; print their references on stdout, one per line.
    Build(BuildArgs),
    /// Print the Kubernetes objects devloop would apply, with the built images in them.
    Render(RenderArgs),
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
    /// Set this namespace on namespaced objects that have none.
    #[arg(short = 'n', long = "namespace")]
    pub namespace: Option<String>,
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
