//! Build context: the `.dockerignore` rules — the rules file `docker build` applies (beside the Dockerfile, else
//! in the context) → its text, and that text → the whole matcher: every pattern in order, `!` exceptions,
//! results inherited from parent directories, pruning, and the `!` rules the docker CLI adds for the build files.
//! It reads only the rules file: it never walks the context and never prints.

use std::fs;
use std::io;
use std::path::{Path, PathBuf};

use super::IgnoreRules;
use super::dockerfile::DockerfileLocation;
use super::error::ContextError;
use super::filepath::{go_clean, go_dir};
use super::pattern::Pattern;

/// Reads the ignore rules `docker build` (BuildKit) applies: `<Dockerfile path>.dockerignore` beside the
/// Dockerfile takes precedence over `<context>/.dockerignore`.
pub fn read_ignore_rules(context: &Path, dockerfile: &Path) -> Result<IgnoreRules, ContextError> {
    let mut beside = dockerfile.as_os_str().to_owned();
    beside.push(".dockerignore");
    for candidate in [PathBuf::from(beside), context.join(".dockerignore")] {
        match fs::read(&candidate) {
            Ok(bytes) => {
                let text =
                    String::from_utf8(bytes).map_err(|_| ContextError::IgnoreFileNotUtf8 {
                        path: candidate.clone(),
                    })?;
                return Ok(IgnoreRules {
                    source: Some(candidate),
                    text,
                });
            }
            Err(e) if e.kind() == io::ErrorKind::NotFound => {}
            Err(source) => {
                return Err(ContextError::IgnoreFileUnreadable {
                    path: candidate,
                    source,
                });
            }
        }
    }
    Ok(IgnoreRules::default())
}

/// Docker's `.dockerignore` matcher (moby/patternmatcher as used by the docker CLI), safe to share
/// between threads.
#[derive(Debug, Clone)]
pub struct DockerIgnore {
    pub(super) patterns: Vec<Pattern>,
    /// `cleaned + "/"` of every `!` pattern: a directory is walked into when one of them starts with it.
    pub(super) exception_prefixes: Vec<String>,
}

impl DockerIgnore {
    /// Parses ignore-file text the way the docker CLI reads `.dockerignore` (`ignorefile.ReadAll`, then
    /// `patternmatcher.New`). `source` only names the file in errors.
    pub fn parse(source: &Path, text: &str) -> Result<DockerIgnore, ContextError> {
        let mut ignore = DockerIgnore {
            patterns: Vec::new(),
            exception_prefixes: Vec::new(),
        };
        let mut lines: Vec<&str> = text.split('\n').collect();
        if lines.last() == Some(&"") {
            lines.pop();
        }
        for (index, line) in lines.into_iter().enumerate() {
            let number = index + 1;
            let line = line.strip_suffix('\r').unwrap_or(line);
            if line.len() >= 65536 {
                return Err(ContextError::IgnoreLineTooLong {
                    path: source.to_owned(),
                    line: number,
                });
            }
            let line = if index == 0 {
                line.strip_prefix('\u{feff}').unwrap_or(line)
            } else {
                line
            };
            if line.starts_with('#') {
                continue;
            }
            let trimmed = line.trim();
            if trimmed.is_empty() {
                continue;
            }
            let (invert, rest) = match trimmed.strip_prefix('!') {
                Some(rest) => (true, rest.trim()),
                None => (false, trimmed),
            };
            let mut normalised = rest.to_owned();
            if !normalised.is_empty() {
                normalised = go_clean(&normalised);
                if normalised.len() > 1 && normalised.starts_with('/') {
                    normalised.remove(0);
                }
            }
            if invert {
                normalised.insert(0, '!');
            }
            ignore
                .push(&normalised)
                .map_err(|reason| ContextError::InvalidPattern {
                    path: source.to_owned(),
                    line: number,
                    pattern: trimmed.to_owned(),
                    reason,
                })?;
        }
        Ok(ignore)
    }

    /// The matcher for `rules` as read by [`read_ignore_rules`] (no rules → nothing excluded).
    pub fn from_rules(rules: &IgnoreRules) -> Result<DockerIgnore, ContextError> {
        let source = rules
            .source
            .clone()
            .unwrap_or_else(|| PathBuf::from(".dockerignore"));
        DockerIgnore::parse(&source, &rules.text)
    }

    /// The matcher `docker build` applies for `rules` and this Dockerfile: [`DockerIgnore::from_rules`]
    /// plus [`DockerIgnore::keep_build_files`].
    pub fn for_build(
        rules: &IgnoreRules,
        dockerfile: &DockerfileLocation,
    ) -> Result<DockerIgnore, ContextError> {
        let mut ignore = DockerIgnore::from_rules(rules)?;
        ignore.keep_build_files(dockerfile)?;
        Ok(ignore)
    }

    /// The docker CLI's `TrimBuildFilesFromExcludes`: when `.dockerignore` or the Dockerfile would be
    /// excluded, append `!.dockerignore` / `!<dockerfile>` so they are still sent (the daemon drops them
    /// again). The check uses the legacy single-parent matcher, exactly as the CLI does.
    pub fn keep_build_files(
        &mut self,
        dockerfile: &DockerfileLocation,
    ) -> Result<(), ContextError> {
        if self.legacy_matches(".dockerignore") {
            self.push("!.dockerignore")
                .map_err(|reason| ContextError::InvalidDockerfileRule {
                    rel: ".dockerignore".to_owned(),
                    reason,
                })?;
        }
        let rel = dockerfile.rel();
        if self.legacy_matches(rel) {
            self.push(&format!("!{rel}")).map_err(|reason| {
                ContextError::InvalidDockerfileRule {
                    rel: rel.to_owned(),
                    reason,
                }
            })?;
        }
        Ok(())
    }

    pub(super) fn push(&mut self, raw: &str) -> Result<(), String> {
        if let Some(pattern) = Pattern::new(raw)? {
            if pattern.exclusion {
                self.exception_prefixes
                    .push(format!("{}/", pattern.cleaned));
            }
            self.patterns.push(pattern);
        }
        Ok(())
    }

    /// Whether any rule is a `!` exception (then an excluded directory is still walked when a `!` rule
    /// starts with its path).
    pub fn has_exceptions(&self) -> bool {
        !self.exception_prefixes.is_empty()
    }

    /// Whether `docker build` leaves `rel` (`/`-separated, relative to the context root) out of the context:
    /// either the rules exclude it, or one of its parent directories is excluded and pruned from the walk.
    pub fn is_excluded(&self, rel: &str) -> bool {
        let Some(rel) = normalise_rel(rel) else {
            return false;
        };
        if self.patterns.is_empty() {
            return false;
        }
        let mut info: Option<Vec<bool>> = None;
        for (i, _) in rel.match_indices('/') {
            let dir = &rel[..i];
            let mut dir_info = Vec::with_capacity(self.patterns.len());
            let excluded = self.eval(dir, info.as_deref(), Some(&mut dir_info));
            if excluded && self.prunable(dir) {
                return true;
            }
            info = Some(dir_info);
        }
        self.eval(rel, info.as_deref(), None)
    }

    /// The rules' verdict for `rel` alone, ignoring pruning of its parent directories (moby's
    /// `MatchesUsingParentResults` chained from the context root).
    pub fn matches(&self, rel: &str) -> bool {
        let Some(rel) = normalise_rel(rel) else {
            return false;
        };
        let mut info: Option<Vec<bool>> = None;
        for (i, _) in rel.match_indices('/') {
            let mut dir_info = Vec::with_capacity(self.patterns.len());
            self.eval(&rel[..i], info.as_deref(), Some(&mut dir_info));
            info = Some(dir_info);
        }
        self.eval(rel, info.as_deref(), None)
    }

    /// moby's `MatchesUsingParentResults`: `parent` holds the per-pattern results of the parent directory
    /// (`None` at the top level); when `info` is given it receives this path's per-pattern results.
    pub(super) fn eval(
        &self,
        path: &str,
        parent: Option<&[bool]>,
        mut info: Option<&mut Vec<bool>>,
    ) -> bool {
        if let Some(info) = info.as_deref_mut() {
            info.clear();
            info.resize(self.patterns.len(), false);
        }
        let mut matched = false;
        for (i, pattern) in self.patterns.iter().enumerate() {
            let mut hit = parent.is_some_and(|p| p[i]);
            if !hit {
                if pattern.exclusion != matched {
                    continue;
                }
                hit = pattern.matches(path);
                if !hit && parent.is_none() {
                    let dir = go_dir(path);
                    let dir = dir.as_ref();
                    if dir != "." {
                        hit = dir
                            .match_indices('/')
                            .map(|(j, _)| &dir[..j])
                            .chain([dir])
                            .any(|d| pattern.matches(d));
                    }
                }
            }
            if let Some(info) = info.as_deref_mut() {
                info[i] = hit;
            }
            if hit {
                matched = !pattern.exclusion;
            }
        }
        matched
    }

    /// The deprecated `patternmatcher.Matches` (checks a single parent prefix), which the docker CLI
    /// still uses to decide whether `.dockerignore` and the Dockerfile need a `!` rule.
    pub(super) fn legacy_matches(&self, file: &str) -> bool {
        let file = go_clean(file);
        if file == "." {
            return false;
        }
        let parent = go_dir(&file);
        let parent = parent.as_ref();
        let parent_dirs: Vec<&str> = parent.split('/').collect();
        let mut matched = false;
        for pattern in &self.patterns {
            if pattern.exclusion != matched {
                continue;
            }
            let mut hit = pattern.matches(&file);
            if !hit && parent != "." && pattern.dirs <= parent_dirs.len() {
                hit = pattern.matches(&parent_dirs[..pattern.dirs].join("/"));
            }
            if hit {
                matched = !pattern.exclusion;
            }
        }
        matched
    }

    /// Whether an excluded directory is skipped with everything below it (`archive.TarWithOptions`).
    pub(super) fn prunable(&self, dir: &str) -> bool {
        !self
            .exception_prefixes
            .iter()
            .any(|p| p.len() > dir.len() && p.starts_with(dir) && p.as_bytes()[dir.len()] == b'/')
    }
}

fn normalise_rel(rel: &str) -> Option<&str> {
    let rel = rel.strip_prefix("./").unwrap_or(rel);
    let rel = rel.trim_end_matches('/');
    if rel.is_empty() || rel == "." {
        None
    } else {
        Some(rel)
    }
}
