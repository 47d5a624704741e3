//! Watch stage, which paths matter: a [`WatchSpec`]'s roots, their `exclude` (the `.dockerignore`), `.git/`,
//! the `watch.ignore` globs and devloop's own output files → [`Rules`] that accept or drop a path, and a walk
//! that skips what they drop (so nothing is registered or polled below an ignored directory). Registers no
//! watch and reports no change itself: the backends (`notifier.rs`, `poller.rs`) do.

use std::fs;
use std::os::unix::fs::MetadataExt;
use std::path::{Component, Path, PathBuf};
use std::time::Duration;

use globset::{GlobBuilder, GlobSet, GlobSetBuilder};

use super::error::WatchError;
use super::spec::{WatchRoot, WatchSpec};
use super::warning::WatchWarning;

/// Whether `path` is a file devloop's own stdout or stderr is redirected into: every line devloop writes would
/// otherwise be a change (and a build, which writes more lines).
fn is_own_output(path: &Path) -> bool {
    !crate::own_output::own_outputs().is_empty()
        && fs::symlink_metadata(path)
            .is_ok_and(|m| crate::own_output::is_own_output(m.dev(), m.ino()))
}

/// A [`WatchSpec`] compiled: roots resolved against the base directory, globs built.
pub(super) struct Rules {
    pub(super) roots: Vec<WatchRoot>,
    pub(super) base_dir: PathBuf,
    ignore: GlobSet,
    pub(super) poll_interval: Duration,
}

impl Rules {
    pub(super) fn compile(spec: &WatchSpec) -> Result<Rules, WatchError> {
        // notify reports absolute paths: rules built on a relative base would never match them.
        let base_dir =
            clean(&std::path::absolute(&spec.base_dir).unwrap_or_else(|_| spec.base_dir.clone()));
        let mut roots = Vec::with_capacity(spec.roots.len());
        for root in &spec.roots {
            let path = clean(&base_dir.join(&root.path));
            let exists = if root.recursive {
                path.is_dir()
            } else {
                path.symlink_metadata().is_ok()
            };
            if !exists {
                return Err(WatchError::RootMissing { path });
            }
            roots.push(WatchRoot {
                path,
                ..root.clone()
            });
        }
        let mut globs = GlobSetBuilder::new();
        for glob in &spec.ignore {
            for pattern in glob_patterns(glob) {
                let compiled = GlobBuilder::new(&pattern)
                    .literal_separator(true)
                    .build()
                    .map_err(|e| WatchError::Glob {
                        glob: glob.clone(),
                        message: e.kind().to_string(),
                    })?;
                globs.add(compiled);
            }
        }
        let ignore = globs.build().map_err(|e| WatchError::Glob {
            glob: spec.ignore.join(" "),
            message: e.to_string(),
        })?;
        Ok(Rules {
            roots,
            base_dir,
            ignore,
            poll_interval: spec.poll_interval,
        })
    }

    /// A `watch.ignore` glob matches this path.
    pub(super) fn user_ignored(&self, path: &Path) -> bool {
        let rel = path.strip_prefix(&self.base_dir).unwrap_or(path);
        !rel.as_os_str().is_empty() && self.ignore.is_match(rel)
    }

    /// Root `root` cares about `path` (`.git` and its `exclude` applied; not the user globs).
    pub(super) fn root_accepts(root: &WatchRoot, path: &Path) -> bool {
        if !root.recursive {
            return path == root.path;
        }
        let Ok(rel) = path.strip_prefix(&root.path) else {
            return false;
        };
        if rel.as_os_str().is_empty() {
            return true;
        }
        !rel.components().any(|c| c.as_os_str() == ".git")
            && !root.exclude.as_ref().is_some_and(|f| f(rel))
    }

    /// Some root cares about `path` and no `watch.ignore` glob drops it.
    pub(super) fn accepts(&self, path: &Path) -> bool {
        self.roots.iter().any(|r| Rules::root_accepts(r, path))
            && !self.user_ignored(path)
            && !is_own_output(path)
    }

    /// The directory that must be watched (or exist) for `root` to be seen.
    pub(super) fn anchor(root: &WatchRoot) -> &Path {
        if root.recursive {
            &root.path
        } else {
            root.path.parent().unwrap_or(&root.path)
        }
    }

    /// Walks `start` (a directory inside recursive `root`, or the root itself), calling `on_dir` for every
    /// kept directory before reading it and `on_entry` for every kept entry below `start`. Ignored entries are
    /// skipped with everything below them. Stops at the first error of `on_dir`.
    pub(super) fn walk<E>(
        &self,
        root: &WatchRoot,
        start: &Path,
        warnings: &mut Vec<WatchWarning>,
        mut on_dir: impl FnMut(&Path) -> Result<(), E>,
        mut on_entry: impl FnMut(&Path, &fs::DirEntry),
    ) -> Result<(), E> {
        let mut stack = vec![start.to_path_buf()];
        while let Some(dir) = stack.pop() {
            on_dir(&dir)?;
            let entries = match fs::read_dir(&dir) {
                Ok(entries) => entries,
                // Removed while walking: its removal is (or will be) an event of its own.
                Err(e) if e.kind() == std::io::ErrorKind::NotFound => continue,
                Err(e) => {
                    warnings.push(WatchWarning::Unwatchable {
                        path: dir,
                        message: e.to_string(),
                    });
                    continue;
                }
            };
            for entry in entries.flatten() {
                let path = entry.path();
                if !Rules::root_accepts(root, &path) || self.user_ignored(&path) {
                    continue;
                }
                on_entry(&path, &entry);
                if entry.file_type().is_ok_and(|t| t.is_dir()) {
                    stack.push(path);
                }
            }
        }
        Ok(())
    }
}

/// The globset patterns for one `watch.ignore` entry (see [`WatchSpec::ignore`]).
fn glob_patterns(glob: &str) -> Vec<String> {
    let trimmed = glob.trim().trim_end_matches('/');
    let anchored = trimmed.strip_prefix('/').unwrap_or(trimmed);
    let pattern = if trimmed.contains('/') {
        anchored.to_string()
    } else {
        format!("**/{anchored}")
    };
    let mut patterns = vec![pattern.clone()];
    if let Some(dir) = pattern.strip_suffix("/**") {
        patterns.push(dir.to_string());
    }
    patterns
}

/// Lexical clean: `.` dropped, `..` folded (like Docker's `filepath.Clean`), so event paths compare equal.
pub(super) fn clean(path: &Path) -> PathBuf {
    let mut out = PathBuf::new();
    for c in path.components() {
        match c {
            Component::CurDir => {}
            Component::ParentDir if out.file_name().is_some() => {
                out.pop();
            }
            c => out.push(c),
        }
    }
    out
}
