//! Sync, placement: a context file and the Dockerfile's [`Model`] → where the built stage has that file, following
//! it through `COPY --from` and `FROM <stage>`, by Docker's copy rules (a directory source copies its contents; a
//! file goes into a directory destination or becomes the destination). Reads the context only to tell whether
//! another file would overwrite a placed one, or an `ADD`ed file is an archive; never guesses: what cannot be told
//! exactly is the reason to rebuild.

use std::io::Read;
use std::path::Path;

use super::model::{Base, Copy, From, Into, Model, Mount, Source, Step};

/// Where a file lands in a stage, and with which attributes.
#[derive(Debug, Clone, PartialEq)]
pub(super) struct Landing {
    /// Absolute path in the stage's filesystem.
    pub path: String,
    /// The line of the instruction that put it there.
    pub line: usize,
    pub chmod: Option<u32>,
    pub chown: Option<String>,
}

/// Where the built stage has the context file `rel` (`/`-separated, relative to `context`): nowhere (empty), at
/// one or more paths, or `Err` with why it cannot be told.
pub(super) fn locate(model: &Model, rel: &str, context: &Path) -> Result<Vec<Landing>, String> {
    locate_in(model, model.target, rel, context)
}

fn locate_in(model: &Model, s: usize, rel: &str, context: &Path) -> Result<Vec<Landing>, String> {
    let stage = &model.stages[s];
    let mut here = match stage.base {
        Base::Stage(b) => locate_in(model, b, rel, context)?,
        Base::Scratch | Base::Image => Vec::new(),
    };
    for step in &stage.steps {
        match step {
            Step::Copy(c) => {
                let taken = match c.from {
                    From::Context => take_from_context(c, rel, context)?,
                    From::Stage(t) => {
                        let there = locate_in(model, t, rel, context)?;
                        take_from_stage(c, &there, context)?
                    }
                    From::Image => Vec::new(),
                    From::Unknown => {
                        return Err(c.unsupported.clone().unwrap_or_else(|| {
                            format!(
                                "the `{}` at Dockerfile line {} copies from an unknown source",
                                keyword(c),
                                c.line
                            )
                        }));
                    }
                };
                for l in &here {
                    let rewritten = taken.iter().any(|t| t.path == l.path);
                    if !rewritten && may_write(c, &l.path, context) {
                        return Err(format!(
                            "`{rel}` is at `{}` (Dockerfile line {}), which the `{}` at line {} may overwrite",
                            l.path,
                            l.line,
                            keyword(c),
                            c.line
                        ));
                    }
                }
                here.retain(|l| !taken.iter().any(|t| t.path == l.path));
                here.extend(taken);
            }
            Step::Run(r) => {
                if let Some(l) = here.first() {
                    return Err(format!(
                        "`{rel}` is copied at Dockerfile line {} before the `{}` at line {} ({}), which may use it",
                        l.line, r.keyword, r.line, stage.label
                    ));
                }
                for m in &r.mounts {
                    let used = match m {
                        Mount::Context(source) => under(rel, source).is_some(),
                        Mount::Stage(t) => !locate_in(model, *t, rel, context)?.is_empty(),
                    };
                    if used {
                        return Err(format!(
                            "the `{}` at Dockerfile line {} ({}) may use `{rel}`",
                            r.keyword, r.line, stage.label
                        ));
                    }
                }
            }
        }
    }
    Ok(here)
}

fn keyword(c: &Copy) -> &'static str {
    if c.add { "ADD" } else { "COPY" }
}

/// How a source takes a path: as the file itself, or as a file under the directory `dir`.
enum Taken<'a> {
    File,
    Under(&'a str),
}

/// Whether source `src` takes the file at `path` (both relative, `/`-separated).
fn takes<'p>(src: &Source, path: &'p str) -> Option<Taken<'p>> {
    let Source::Path { text, glob } = src else {
        return None;
    };
    match glob {
        None if text == path => Some(Taken::File),
        None => under(path, text).map(|_| Taken::Under(&path[..text.len()])),
        Some(g) if g.is_match(path) => Some(Taken::File),
        Some(g) => ancestors(path)
            .find(|a| g.is_match(a))
            .map(|a| Taken::Under(&path[..a.len()])),
    }
}

/// The directories above `path`, deepest first (`a/b/c` → `a/b`, `a`).
fn ancestors(path: &str) -> impl Iterator<Item = &str> {
    path.match_indices('/').rev().map(|(i, _)| &path[..i])
}

/// `path` relative to directory `dir` (`""` is the root), if it lies under it.
fn under<'p>(path: &'p str, dir: &str) -> Option<&'p str> {
    if dir.is_empty() {
        return Some(path);
    }
    path.strip_prefix(dir)?.strip_prefix('/')
}

fn join(dir: &str, rest: &str) -> String {
    if dir == "/" {
        format!("/{rest}")
    } else {
        format!("{dir}/{rest}")
    }
}

/// Where `c` puts the file at `path` (relative to what it copies from), if it takes it.
fn dest_of(c: &Copy, path: &str, context: &Path) -> Result<Option<String>, String> {
    let sources = c.sources.as_ref().map_err(Clone::clone)?;
    let mut found: Option<String> = None;
    for src in sources {
        let Some(t) = takes(src, path) else { continue };
        if let Some(reason) = &c.unsupported {
            return Err(reason.clone());
        }
        let dest = c.dest.as_ref().map_err(Clone::clone)?;
        let at = match t {
            Taken::Under(dir) => join(&dest.path, path[dir.len()..].trim_start_matches('/')),
            Taken::File => match resolve(&dest.file, context) {
                Into::Dir => join(&dest.path, path.rsplit('/').next().unwrap_or(path)),
                Into::Unknown(reason) => return Err(reason.clone()),
                Into::File | Into::DirIf(_) => dest.path.clone(),
            },
        };
        found = Some(at);
    }
    Ok(found)
}

/// `DirIf` decided by the context: a directory there is one in the image.
fn resolve<'i>(into: &'i Into, context: &Path) -> &'i Into {
    match into {
        Into::DirIf(src) if context.join(src).is_dir() => &Into::Dir,
        Into::DirIf(_) => &Into::File,
        other => other,
    }
}

fn take_from_context(c: &Copy, rel: &str, context: &Path) -> Result<Vec<Landing>, String> {
    let Some(path) = dest_of(c, rel, context)? else {
        return Ok(Vec::new());
    };
    if c.add && is_archive(&context.join(rel)) {
        return Err(format!(
            "`{rel}` is added by the `ADD` at Dockerfile line {}, which unpacks archives",
            c.line
        ));
    }
    Ok(vec![Landing {
        path,
        line: c.line,
        chmod: c.chmod,
        chown: c.chown.clone(),
    }])
}

fn take_from_stage(c: &Copy, there: &[Landing], context: &Path) -> Result<Vec<Landing>, String> {
    let mut out = Vec::new();
    for l in there {
        if let Some(path) = dest_of(c, l.path.trim_start_matches('/'), context)? {
            out.push(Landing {
                path,
                line: c.line,
                chmod: c.chmod.or(l.chmod),
                chown: c.chown.clone(),
            });
        }
    }
    Ok(out)
}

/// Whether `c` may write `path` (absolute) with something else than the file being placed: another context file
/// that exists, or anything it copies from a stage, an image, a URL or a heredoc under its destination.
fn may_write(c: &Copy, path: &str, context: &Path) -> bool {
    let Ok(dest) = &c.dest else { return true };
    let Some(rest) = path_under(path, &dest.path) else {
        return false;
    };
    let Ok(sources) = &c.sources else { return true };
    if c.from != From::Context {
        return true;
    }
    sources.iter().any(|src| match src {
        Source::Elsewhere => true,
        Source::Path { glob: Some(_), .. } => true,
        Source::Path { text, glob: None } => {
            // As a directory source: `text/rest`; as a file source: itself, when it lands exactly at `path`.
            let as_dir = !rest.is_empty() && context.join(text).join(rest).is_file();
            let name = text.rsplit('/').next().unwrap_or(text);
            let as_file = match resolve(&dest.file, context) {
                Into::Dir => rest == name,
                Into::File | Into::DirIf(_) => rest.is_empty(),
                Into::Unknown(_) => true,
            } && context.join(text).is_file();
            as_dir || as_file
        }
    })
}

/// `path` relative to the absolute directory `dir` (`""` when equal), if it is it or lies under it.
fn path_under<'p>(path: &'p str, dir: &str) -> Option<&'p str> {
    if path == dir {
        return Some("");
    }
    if dir == "/" {
        return path.strip_prefix('/');
    }
    path.strip_prefix(dir)?.strip_prefix('/')
}

/// Whether `ADD` would unpack the file: a compressed stream or a tar archive, by its first bytes as Docker tells.
fn is_archive(file: &Path) -> bool {
    let mut head = [0u8; 512];
    let Ok(mut f) = std::fs::File::open(file) else {
        // Gone: it may have been one.
        return true;
    };
    let mut n = 0;
    while n < head.len() {
        match f.read(&mut head[n..]) {
            Ok(0) | Err(_) => break,
            Ok(k) => n += k,
        }
    }
    let h = &head[..n];
    h.starts_with(&[0x1f, 0x8b])
        || h.starts_with(b"BZh")
        || h.starts_with(&[0xfd, b'7', b'z', b'X', b'Z', 0x00])
        || h.starts_with(&[0x28, 0xb5, 0x2f, 0xfd])
        || (n >= 262 && &h[257..262] == b"ustar")
}
