//! Build context: the tar stream — a walked file set and the Dockerfile → the stream `docker build` sends and
//! the name of the Dockerfile in it (the Engine API's `dockerfile` parameter). A Dockerfile outside the context
//! is added under a content-derived name and listed in the stream's `.dockerignore`, as the docker CLI does. It
//! never walks the context again and never changes a file on disk.

use std::fs;
use std::io::{Read, Write};
use std::path::Path;

use sha2::{Digest, Sha256};

use super::dockerfile::{DockerfileLocation, locate_dockerfile};
use super::error::ContextError;
use super::tar_writer::{TarWriter, open_unchanged};
use super::{ContextFiles, EntryKind};

/// Writes `files` as the tar stream `docker build` sends (deterministic: sorted, uid/gid 0, fixed mtime,
/// permission bits kept, symlinks as links, hard links as links, directories included) and returns the
/// name to pass as the Engine API's `dockerfile` parameter. A Dockerfile outside the context is added as
/// `.dockerfile.<20 hex of its sha256>` and listed in the stream's `.dockerignore`, like the docker CLI does.
pub fn write_tar<W: Write>(
    files: &ContextFiles,
    dockerfile: &Path,
    out: W,
) -> Result<String, ContextError> {
    let location = locate_dockerfile(&files.root, dockerfile)?;
    let mut tar = TarWriter::new(out);
    let name = match &location {
        DockerfileLocation::Inside { rel, .. } => {
            if files
                .entries
                .binary_search_by(|e| e.rel.as_str().cmp(rel))
                .is_err()
            {
                return Err(ContextError::DockerfileNotInContext {
                    root: files.root.clone(),
                    rel: rel.clone(),
                });
            }
            for entry in &files.entries {
                tar.entry(&files.root, entry)?;
            }
            rel.clone()
        }
        DockerfileLocation::Outside { path, .. } => {
            let content = fs::read(path).map_err(|source| ContextError::DockerfileUnreadable {
                path: path.clone(),
                source,
            })?;
            let name = injected_name(&content);
            write_with_injected_dockerfile(&mut tar, files, &name, &content)?;
            name
        }
    };
    tar.finish()?;
    Ok(name)
}

/// The name [`write_tar`] gives the Dockerfile in the stream — the Engine API's `dockerfile` parameter, needed
/// before the stream is written.
pub fn dockerfile_name(files: &ContextFiles, dockerfile: &Path) -> Result<String, ContextError> {
    match locate_dockerfile(&files.root, dockerfile)? {
        DockerfileLocation::Inside { rel, .. } => Ok(rel),
        DockerfileLocation::Outside { path, .. } => {
            let content = fs::read(&path).map_err(|source| ContextError::DockerfileUnreadable {
                path: path.clone(),
                source,
            })?;
            Ok(injected_name(&content))
        }
    }
}

/// `.dockerfile.<20 hex>` from the content, so the stream stays deterministic (the docker CLI uses random hex).
fn injected_name(content: &[u8]) -> String {
    let digest = Sha256::digest(content);
    let hex: String = digest.iter().take(10).map(|b| format!("{b:02x}")).collect();
    format!(".dockerfile.{hex}")
}

/// Writes the entries with the outside Dockerfile as `name` and the `.dockerignore` that lists it, each at its
/// sorted place.
fn write_with_injected_dockerfile<W: Write>(
    tar: &mut TarWriter<W>,
    files: &ContextFiles,
    name: &str,
    content: &[u8],
) -> Result<(), ContextError> {
    let ignore_at = files
        .entries
        .binary_search_by(|e| e.rel.as_str().cmp(".dockerignore"));
    let ignore_data = match ignore_at {
        Ok(i) => {
            let entry = &files.entries[i];
            if entry.kind != EntryKind::File {
                return Err(ContextError::DockerignoreNotAFile {
                    root: files.root.clone(),
                });
            }
            let path = files.root.join(".dockerignore");
            let (mut file, _) = open_unchanged(&path, entry)?;
            let mut data = Vec::with_capacity(entry.size as usize + name.len() + 2);
            file.read_to_end(&mut data)
                .map_err(|source| ContextError::Unreadable {
                    path: path.clone(),
                    source,
                })?;
            if data.len() as u64 != entry.size {
                return Err(ContextError::FileChanged {
                    path,
                    detail: format!("size was {} bytes, read {}", entry.size, data.len()),
                });
            }
            (entry.mode & 0o7777, data)
        }
        Err(_) => (0o600, b".dockerignore".to_vec()),
    };
    let (ignore_mode, mut ignore_bytes) = ignore_data;
    ignore_bytes.extend_from_slice(format!("\n{name}\n").as_bytes());

    // Merge the two generated files into the sorted entries at their sorted places.
    let mut generated: Vec<(&str, u32, &[u8])> = vec![
        (".dockerignore", ignore_mode, &ignore_bytes),
        (name, 0o600, content),
    ];
    generated.sort_by(|a, b| a.0.cmp(b.0));
    let mut generated = generated.into_iter().peekable();
    for entry in &files.entries {
        while let Some(&(gen_name, mode, data)) = generated.peek() {
            if gen_name > entry.rel.as_str() {
                break;
            }
            tar.data(gen_name, mode, data)?;
            generated.next();
        }
        if entry.rel == ".dockerignore" || entry.rel == name {
            continue;
        }
        tar.entry(&files.root, entry)?;
    }
    for (gen_name, mode, data) in generated {
        tar.data(gen_name, mode, data)?;
    }
    Ok(())
}
