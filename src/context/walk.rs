//! Build context: the walk — a context directory and a Dockerfile path → the sorted file set `docker build`
//! sends (`archive.TarWithOptions`, with the build files the docker CLI keeps). It never follows symlinks,
//! never reads file content and never reads outside the context (except the Dockerfile's place).

use std::fs;
use std::io;
use std::path::{Path, PathBuf};

use super::dockerfile::{DockerfileLocation, locate_dockerfile};
use super::dockerignore::{DockerIgnore, read_ignore_rules};
use super::error::ContextError;
use super::walker::{entry_from, walk_tree};
use super::{ContextFiles, EntryKind};

/// Walks `context` and returns exactly the entries `docker build -f <dockerfile> <context>` sends, sorted by
/// `rel`: directories, files and symlinks (kept as links, never followed); sockets, fifos and devices are left
/// out. Walks directories on all cores. One deliberate difference: when a rule prunes the directory that holds
/// the Dockerfile (docker then fails with "Cannot locate specified Dockerfile"), the Dockerfile is still sent.
/// A Dockerfile outside the context is not an entry; [`write_tar`](super::write_tar) adds it.
pub fn walk(context: &Path, dockerfile: &Path) -> Result<ContextFiles, ContextError> {
    let root = canonical_context(context)?;
    let ignore = read_ignore_rules(&root, dockerfile)?;
    let location = locate_dockerfile(&root, dockerfile)?;
    let rules = DockerIgnore::from_rules(&ignore)?;
    let build_files_excluded = matches!(location, DockerfileLocation::Outside { .. })
        || rules.legacy_matches(".dockerignore")
        || rules.legacy_matches(location.rel());
    let matcher = DockerIgnore::for_build(&ignore, &location)?;
    let mut entries = walk_tree(&root, &matcher)?;
    // devloop's own output redirected into the project is not the project's: never hashed, never sent.
    entries.retain(|e| !crate::own_output::is_own_output(e.dev, e.ino));
    entries.sort_unstable_by(|a, b| a.rel.cmp(&b.rel));

    // The docker CLI's `!` rules above normally keep these two; a `**` rule on a parent directory can
    // still prune the Dockerfile (docker then fails to find it), so add them directly in that case.
    let mut forced = vec![".dockerignore".to_owned()];
    if let DockerfileLocation::Inside { rel, .. } = &location {
        forced.push(rel.clone());
    }
    let mut build_files_excluded = build_files_excluded;
    for rel in forced {
        if let Err(at) = entries.binary_search_by(|e| e.rel.as_str().cmp(&rel)) {
            let path = root.join(&rel);
            match fs::symlink_metadata(&path) {
                Ok(meta) if meta.is_file() => {
                    build_files_excluded = true;
                    entries.insert(at, entry_from(rel, &meta, EntryKind::File))
                }
                Ok(_) => {}
                Err(e) if e.kind() == io::ErrorKind::NotFound => {}
                Err(source) => return Err(ContextError::Unreadable { path, source }),
            }
        }
    }
    Ok(ContextFiles {
        root,
        entries,
        ignore,
        build_files_excluded,
    })
}

/// The context directory, canonical; an error unless it is a directory.
fn canonical_context(context: &Path) -> Result<PathBuf, ContextError> {
    let root = fs::canonicalize(context).map_err(|source| match source.kind() {
        io::ErrorKind::NotFound => ContextError::ContextMissing {
            path: context.to_owned(),
        },
        io::ErrorKind::NotADirectory => ContextError::ContextMissing {
            path: context.to_owned(),
        },
        _ => ContextError::ContextUnreadable {
            path: context.to_owned(),
            source,
        },
    })?;
    if !root.is_dir() {
        return Err(ContextError::ContextNotDirectory {
            path: context.to_owned(),
        });
    }
    Ok(root)
}
