//! Build context: a context directory and a Dockerfile path → the exact file set `docker build` would send
//! (the docker CLI's `.dockerignore` semantics) and its tar stream. It never follows symlinks, never reads
//! outside the context (except the Dockerfile itself), never prints and never spawns long-lived tasks.
//!
//! The ignore matcher is a port of moby/patternmatcher as the docker CLI drives it: each pattern is
//! normalised like `ignorefile.ReadAll` and `patternmatcher.New`, validated like Go's `filepath.Match`,
//! translated to a Go regular expression exactly as moby does, and that Go expression is then re-read with
//! Go's (RE2) syntax rules and re-emitted for the `regex` crate, so brackets, escapes and `**` behave as in
//! Docker even where the two regex dialects differ. The walk reproduces `archive.TarWithOptions`: per-directory
//! match results are inherited by children (`MatchesUsingParentResults`), and an excluded directory is pruned
//! unless some `!` pattern literally starts with that directory's path (so `*` + `!**/*.go` does not bring
//! back `src/main.go`, exactly as with `docker build`). Rules come from `<Dockerfile>.dockerignore` when it
//! exists (BuildKit's rule; the classic CLI only reads `<context>/.dockerignore`).
//!
//! Files, bottom-up (a file names only those above it): `error` the stage's errors; `filepath` Go's
//! `filepath.Clean`/`Dir` and `Match`'s syntax check; `go_regex` Go's regexp syntax re-emitted for the `regex`
//! crate; `pattern` one moby pattern and its matcher; `dockerfile` where the Dockerfile is; `dockerignore` the
//! rules file and the whole matcher; `walker` the parallel directory walk; `walk` the file set `docker build`
//! sends; `tar_writer` the deterministic tar format; `tar_stream` the stream with the Dockerfile in place.

mod dockerfile;
mod dockerignore;
mod error;
mod filepath;
mod go_regex;
mod pattern;
mod tar_stream;
mod tar_writer;
mod walk;
mod walker;

use std::path::PathBuf;

pub use dockerfile::{DockerfileLocation, locate_dockerfile};
pub use dockerignore::{DockerIgnore, read_ignore_rules};
pub use error::ContextError;
pub use tar_stream::{dockerfile_name, write_tar};
pub use walk::walk;

// ---- shared types: the context stage owns these; cache.rs consumes them. Keep names and fields exactly. ----

/// What kind of filesystem object a context entry is.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum EntryKind {
    File,
    Dir,
    /// A symbolic link, kept as a link; `target` is the raw link text (never followed).
    Symlink {
        target: String,
    },
}

/// One entry of a build context, exactly as `docker build` would send it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ContextEntry {
    /// Path relative to the context root, `/`-separated, no leading `./` or `/`.
    pub rel: String,
    pub kind: EntryKind,
    /// `st_mode` (type and permission bits).
    pub mode: u32,
    /// Size in bytes (0 for directories).
    pub size: u64,
    pub dev: u64,
    pub ino: u64,
    /// Modification and status-change times in nanoseconds since the Unix epoch.
    pub mtime_ns: i64,
    pub ctime_ns: i64,
}

/// The ignore rules that applied to a context: where they came from and their raw text.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct IgnoreRules {
    /// `<Dockerfile>.dockerignore` or `<context>/.dockerignore`; `None` when neither exists.
    pub source: Option<PathBuf>,
    /// The file's bytes as read (hashed into the cache key); empty when there is no file.
    pub text: String,
}

/// The whole file set of one build context, entries sorted by `rel` (byte order).
#[derive(Debug, Clone)]
pub struct ContextFiles {
    /// Absolute, canonical context directory.
    pub root: PathBuf,
    pub entries: Vec<ContextEntry>,
    pub ignore: IgnoreRules,
    /// The Dockerfile or `.dockerignore` is in the stream only for the build: the rules exclude it, or the
    /// Dockerfile comes from outside the context. The classic builder drops such files from what `COPY .` sees,
    /// as `docker build` does; BuildKit fed the stream would copy them.
    pub build_files_excluded: bool,
}

// ---- end of shared types ----

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests;
