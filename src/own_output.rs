//! Leaf: the files this process's stdout and stderr are redirected into (`devloop dev -o json > events.jsonl`,
//! `2> dev.log`), found once from the process's own file descriptors. A file devloop writes is never a change
//! to react to and never part of a build context: without this, each line devloop writes would change the
//! context, trigger a build, and that build would write more lines. Imports nothing of the crate.

use std::os::unix::fs::MetadataExt;
use std::path::PathBuf;
use std::sync::OnceLock;

/// One of devloop's output streams that goes to a regular file.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OwnOutput {
    /// `stdout` or `stderr`.
    pub stream: &'static str,
    /// Where the file is, when the system says (Linux: `/proc/self/fd/N`).
    pub path: Option<PathBuf>,
    dev: u64,
    ino: u64,
}

/// devloop's stdout and stderr, where they are regular files (not a terminal or a pipe).
pub fn own_outputs() -> &'static [OwnOutput] {
    static FOUND: OnceLock<Vec<OwnOutput>> = OnceLock::new();
    FOUND.get_or_init(|| {
        [("stdout", 1), ("stderr", 2)]
            .into_iter()
            .filter_map(|(stream, fd)| {
                let link = PathBuf::from(format!("/proc/self/fd/{fd}"));
                let link = if link.exists() {
                    link
                } else {
                    PathBuf::from(format!("/dev/fd/{fd}"))
                };
                let meta = std::fs::metadata(&link).ok()?;
                meta.is_file().then(|| OwnOutput {
                    stream,
                    path: std::fs::read_link(&link).ok().filter(|p| p.is_absolute()),
                    dev: meta.dev(),
                    ino: meta.ino(),
                })
            })
            .collect()
    })
}

/// Whether the file with this device and inode number is one devloop writes its output to.
pub fn is_own_output(dev: u64, ino: u64) -> bool {
    own_outputs().iter().any(|o| o.dev == dev && o.ino == ino)
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn other_files_are_not_own_output() {
        let f = tempfile::NamedTempFile::new().unwrap();
        let meta = f.as_file().metadata().unwrap();
        assert!(!is_own_output(meta.dev(), meta.ino()));
    }
}
