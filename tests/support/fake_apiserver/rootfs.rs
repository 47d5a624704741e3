//! Fake API server, container filesystems: image templates a test registered + the pod sims' container starts →
//! one directory tree per started container (a fresh copy of its image's template, empty without one), looked up
//! by path the way a process inside would see it; must not share a tree between two container starts, nor
//! resolve a path outside its root.

use std::collections::HashMap;
use std::io;
use std::path::{Component, Path, PathBuf};

use super::pods::{PodSim, PodState};

/// The PATH a container process gets when its image sets none (containerd's default).
pub const DEFAULT_PATH: &str = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin";

/// The statically linked busybox the image builder copies (Debian's busybox-static).
const BUSYBOX: &str = "/bin/busybox";

/// Symlinks followed before a lookup gives up (Linux's limit).
const MAX_SYMLINKS: usize = 40;

/// One container start's root.
#[derive(Debug)]
struct Root {
    /// The container's start count when this root was made.
    start: u32,
    path: PathBuf,
}

/// Every container root of the fake cluster, under one temporary directory.
#[derive(Debug, Default)]
pub struct RootFs {
    dir: Option<tempfile::TempDir>,
    /// `(image substring, template directory)`: the first match wins.
    templates: Vec<(String, PathBuf)>,
    /// `(pod uid, container name)` → the current start's root.
    roots: HashMap<(String, String), Root>,
    seq: u64,
}

impl RootFs {
    /// Registers what images whose reference contains `image_part` hold; later registrations win.
    pub fn add_template(&mut self, image_part: &str, template: &Path) {
        self.templates
            .insert(0, (image_part.to_string(), template.to_path_buf()));
    }

    /// Makes the roots follow the pods: a container that (re)started gets a fresh copy of its image, a pod that
    /// is gone loses its roots. A stopped container keeps its root until it starts again (like its writable layer).
    pub fn sync(&mut self, pods: &HashMap<String, PodSim>) {
        let gone: Vec<(String, String)> = self
            .roots
            .keys()
            .filter(|(uid, _)| !pods.contains_key(uid))
            .cloned()
            .collect();
        for key in gone {
            if let Some(root) = self.roots.remove(&key) {
                let _ = std::fs::remove_dir_all(root.path);
            }
        }
        for (uid, sim) in pods {
            for c in &sim.containers {
                if !matches!(c.state, PodState::Running | PodState::NotReady) {
                    continue;
                }
                let key = (uid.clone(), c.name.clone());
                if self.roots.get(&key).is_some_and(|r| r.start == c.starts) {
                    continue;
                }
                if let Some(old) = self.roots.remove(&key) {
                    let _ = std::fs::remove_dir_all(old.path);
                }
                let label = format!("{}-{}-{}", self.seq, sim.name, c.name);
                self.seq += 1;
                let path = self.make_root(&label, &c.image);
                self.roots.insert(
                    key,
                    Root {
                        start: c.starts,
                        path,
                    },
                );
            }
        }
    }

    fn make_root(&mut self, label: &str, image: &str) -> PathBuf {
        let base = self
            .dir
            .get_or_insert_with(|| {
                tempfile::Builder::new()
                    .prefix("fake-rootfs-")
                    .tempdir()
                    .expect("temporary directory for fake container roots")
            })
            .path()
            .to_path_buf();
        let path = base.join(label);
        let template = self
            .templates
            .iter()
            .find(|(part, _)| image.contains(part.as_str()))
            .map(|(_, t)| t.clone());
        match template {
            Some(t) => copy_tree(&t, &path).unwrap_or_else(|e| {
                panic!(
                    "fake API server: copying image template {} into {}: {e}",
                    t.display(),
                    path.display()
                )
            }),
            None => std::fs::create_dir(&path).expect("empty container root"),
        }
        path
    }

    /// The root of the current start of `container` in the pod with `uid`.
    pub fn root(&self, uid: &str, container: &str) -> Option<PathBuf> {
        self.roots
            .get(&(uid.to_string(), container.to_string()))
            .map(|r| r.path.clone())
    }

    /// Removes every root (the server is going away).
    pub fn clear(&mut self) {
        self.roots.clear();
        if let Some(dir) = self.dir.take() {
            let _ = dir.close();
        }
    }
}

/// Copies a directory tree: directories, regular files and symlinks (as links), with their modes.
fn copy_tree(from: &Path, to: &Path) -> io::Result<()> {
    let meta = std::fs::symlink_metadata(from)?;
    let kind = meta.file_type();
    if kind.is_symlink() {
        std::os::unix::fs::symlink(std::fs::read_link(from)?, to)
    } else if kind.is_dir() {
        std::fs::create_dir(to)?;
        for entry in std::fs::read_dir(from)? {
            let entry = entry?;
            copy_tree(&entry.path(), &to.join(entry.file_name()))?;
        }
        std::fs::set_permissions(to, meta.permissions())
    } else {
        std::fs::copy(from, to).map(|_| ())
    }
}

/// Why a path does not resolve inside a root, as Go's `os.Stat` words it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Missing {
    /// `no such file or directory`
    NotFound,
    /// `not a directory`
    NotADirectory,
    /// `too many levels of symbolic links`
    Loop,
}

impl Missing {
    pub fn text(self) -> &'static str {
        match self {
            Missing::NotFound => "no such file or directory",
            Missing::NotADirectory => "not a directory",
            Missing::Loop => "too many levels of symbolic links",
        }
    }
}

/// The host path of `path` as a process chrooted into `root` (cwd `/`) sees it, following symlinks inside the
/// root (`..` stops at `/`, absolute link targets start again at the root).
pub fn resolve(root: &Path, path: &str) -> Result<PathBuf, Missing> {
    let mut pending: Vec<String> = split(path);
    pending.reverse();
    let mut done: Vec<String> = Vec::new();
    let mut links = 0;
    while let Some(part) = pending.pop() {
        match part.as_str() {
            "." => continue,
            ".." => {
                done.pop();
                continue;
            }
            _ => {}
        }
        let host = join(root, &done).join(&part);
        let meta = std::fs::symlink_metadata(&host).map_err(|e| missing(&e))?;
        if meta.file_type().is_symlink() {
            links += 1;
            if links > MAX_SYMLINKS {
                return Err(Missing::Loop);
            }
            let target = std::fs::read_link(&host).map_err(|e| missing(&e))?;
            let target = target.to_string_lossy().into_owned();
            if target.starts_with('/') {
                done.clear();
            }
            for p in split(&target).into_iter().rev() {
                pending.push(p);
            }
            continue;
        }
        if !pending.is_empty() && !meta.is_dir() {
            return Err(Missing::NotADirectory);
        }
        done.push(part);
    }
    Ok(join(root, &done))
}

fn split(path: &str) -> Vec<String> {
    Path::new(path)
        .components()
        .filter_map(|c| match c {
            Component::Normal(s) => Some(s.to_string_lossy().into_owned()),
            Component::ParentDir => Some("..".to_string()),
            _ => None,
        })
        .collect()
}

fn join(root: &Path, parts: &[String]) -> PathBuf {
    parts.iter().fold(root.to_path_buf(), |p, s| p.join(s))
}

fn missing(e: &io::Error) -> Missing {
    if e.raw_os_error() == Some(20) {
        Missing::NotADirectory
    } else {
        Missing::NotFound
    }
}

/// Writes an image template at `dir` from Debian's static busybox: `/bin/busybox` plus a `/bin/<applet>` symlink
/// for each named applet only (busybox's sh then runs just those; `tar` without a link is "not found"). Returns
/// `dir`.
pub fn busybox_image(dir: &Path, applets: &[&str]) -> PathBuf {
    let bin = dir.join("bin");
    std::fs::create_dir_all(&bin).expect("create the image's /bin");
    assert!(
        Path::new(BUSYBOX).is_file(),
        "{BUSYBOX} is missing: install Debian's busybox-static"
    );
    std::fs::copy(BUSYBOX, bin.join("busybox")).expect("copy busybox into the image");
    for applet in applets {
        std::os::unix::fs::symlink("busybox", bin.join(applet)).expect("link a busybox applet");
    }
    dir.to_path_buf()
}
