//! Errors, top level: every stage error → one rendered message with hints and an exit code. The aggregate: only
//! `runner/`, `commands/` and `lib.rs` use it (stages word their own errors, with `crate::hint`). Prints nothing.

use std::fmt;

use crate::hint::suffix as hint_suffix;

/// Exit code: the pipeline failed (build, deploy, rollout).
pub const EXIT_FAILURE: u8 = 1;
/// Exit code: usage, configuration or environment error.
pub const EXIT_USAGE: u8 = 2;
// A signal that stops a command gives 128 + its number (130 SIGINT, 143 SIGTERM, 129 SIGHUP): `commands::signal`.

/// Why a command failed: the stage error plus the exit code it maps to.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error(transparent)]
    Config(#[from] crate::config::ConfigError),
    #[error(transparent)]
    Tag(#[from] crate::tag::TagError),
    #[error(transparent)]
    Template(#[from] crate::template::TemplateError),
    #[error(transparent)]
    Context(#[from] crate::context::ContextError),
    #[error(transparent)]
    Dockerfile(#[from] crate::build::dockerfile::DockerfileError),
    #[error(transparent)]
    Cache(#[from] crate::cache::CacheError),
    #[error(transparent)]
    Build(#[from] crate::build::BuildError),
    #[error(transparent)]
    Artifacts(#[from] crate::build::ArtifactsFileError),
    #[error(transparent)]
    Render(Box<crate::render::RenderError>),
    #[error(transparent)]
    Deploy(#[from] crate::deploy::DeployError),
    #[error(transparent)]
    Hook(Box<crate::hook::HookError>),
    #[error("{message}{}", hint_suffix(hint))]
    Usage {
        message: String,
        hint: Option<String>,
    },
    #[error("{0}")]
    Io(String),
    /// A signal stopped the command (exit code 128 + its number); `cause` is an error it ran into meanwhile.
    #[error("{}", cause.as_ref().map_or_else(|| format!("stopped by {signal}"), |c| c.to_string()))]
    Interrupted {
        signal: &'static str,
        code: u8,
        cause: Option<Box<Error>>,
    },
}

impl From<crate::hook::HookError> for Error {
    fn from(e: crate::hook::HookError) -> Self {
        Error::Hook(Box::new(e))
    }
}

impl From<crate::render::RenderError> for Error {
    fn from(e: crate::render::RenderError) -> Self {
        Error::Render(Box::new(e))
    }
}

impl Error {
    /// A build overtaken by newer content (a file changed while its context was sent).
    pub fn is_superseded(&self) -> bool {
        matches!(self, Error::Build(e) if e.is_superseded())
    }

    /// The process exit code for this error: 1 the pipeline failed, 2 usage, configuration or environment (the
    /// consts above; the README lists them).
    pub fn exit_code(&self) -> u8 {
        match self {
            Error::Build(e) if e.is_environment() => EXIT_USAGE,
            Error::Deploy(e) if e.is_environment() => EXIT_USAGE,
            // Like kubectl: `-n` contradicting a manifest is a usage error, not a failed deploy.
            Error::Render(e)
                if matches!(**e, crate::render::RenderError::NamespaceConflict { .. }) =>
            {
                EXIT_USAGE
            }
            Error::Build(_) | Error::Render(_) | Error::Deploy(_) | Error::Hook(_) => EXIT_FAILURE,
            Error::Config(_)
            | Error::Tag(_)
            | Error::Template(_)
            | Error::Context(_)
            | Error::Dockerfile(_)
            | Error::Cache(_)
            | Error::Artifacts(_)
            | Error::Usage { .. }
            | Error::Io(_) => EXIT_USAGE,
            Error::Interrupted { code, .. } => *code,
        }
    }

    /// The error a stage returns when its cancellation token fired.
    pub fn is_cancelled(&self) -> bool {
        if let Error::Hook(h) = self {
            return matches!(**h, crate::hook::HookError::Cancelled { .. });
        }
        matches!(
            self,
            Error::Build(crate::build::BuildError::Cancelled { .. })
                | Error::Deploy(crate::deploy::DeployError::Cancelled)
        )
    }

    /// Whether there is nothing to print: a signal stopped the command and it ran into no other error.
    pub fn is_silent(&self) -> bool {
        matches!(self, Error::Interrupted { cause: None, .. })
    }
}

/// Renders an error chain as `error: …` lines for stderr.
pub struct Report<'a>(pub &'a Error);

impl fmt::Display for Report<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "error: {}", self.0)
    }
}
