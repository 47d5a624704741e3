//! Build context: the tar writer — context entries and generated files → a deterministic GNU tar stream (uid/gid
//! 0, fixed mtime, permission bits kept, symlinks and hard links as links, long names as GNU records). It reads
//! each file once, refuses one that changed since the walk, and never decides what goes into the stream.

use std::collections::HashMap;
use std::fs::{self, File};
use std::io::{self, BufWriter, Read, Write};
use std::os::unix::fs::MetadataExt;
use std::path::Path;

use super::error::ContextError;
use super::{ContextEntry, EntryKind};

/// mtime written for every entry so equal contexts give byte-identical streams (the `tar` crate's
/// deterministic timestamp). Docker's own layer cache keys ignore mtimes.
pub(super) const TAR_MTIME: u64 = tar::DETERMINISTIC_TIMESTAMP;

/// Opens a walked file, refusing it when it is no longer the file the walk saw (type, size, mtime, inode).
pub(super) fn open_unchanged(
    path: &Path,
    entry: &ContextEntry,
) -> Result<(File, fs::Metadata), ContextError> {
    let file = File::open(path).map_err(|source| ContextError::Unreadable {
        path: path.to_owned(),
        source,
    })?;
    let meta = file.metadata().map_err(|source| ContextError::Unreadable {
        path: path.to_owned(),
        source,
    })?;
    let mtime_ns = meta
        .mtime()
        .saturating_mul(1_000_000_000)
        .saturating_add(meta.mtime_nsec());
    let detail = if !meta.is_file() {
        Some("no longer a regular file".to_owned())
    } else if meta.size() != entry.size {
        Some(format!(
            "size was {} bytes, now {}",
            entry.size,
            meta.size()
        ))
    } else if mtime_ns != entry.mtime_ns || meta.ino() != entry.ino || meta.dev() != entry.dev {
        Some("modified after the context was walked".to_owned())
    } else {
        None
    };
    match detail {
        Some(detail) => Err(ContextError::FileChanged {
            path: path.to_owned(),
            detail,
        }),
        None => Ok((file, meta)),
    }
}

pub(super) struct TarWriter<W: Write> {
    out: BufWriter<W>,
    /// First name written for each multiply-linked inode: later names become hard links, as in docker.
    links: HashMap<(u64, u64), String>,
}

impl<W: Write> TarWriter<W> {
    /// A writer buffering into `out`.
    pub(super) fn new(out: W) -> Self {
        TarWriter {
            out: BufWriter::with_capacity(128 * 1024, out),
            links: HashMap::new(),
        }
    }

    pub(super) fn entry(&mut self, root: &Path, entry: &ContextEntry) -> Result<(), ContextError> {
        let mode = entry.mode & 0o7777;
        match &entry.kind {
            EntryKind::Dir => self.header(
                &format!("{}/", entry.rel),
                tar::EntryType::Directory,
                mode,
                0,
                None,
            ),
            EntryKind::Symlink { target } => {
                self.header(&entry.rel, tar::EntryType::Symlink, mode, 0, Some(target))
            }
            EntryKind::File => {
                let path = root.join(&entry.rel);
                let (file, meta) = open_unchanged(&path, entry)?;
                if meta.nlink() > 1 {
                    let key = (entry.dev, entry.ino);
                    if let Some(first) = self.links.get(&key) {
                        let first = first.clone();
                        return self.header(
                            &entry.rel,
                            tar::EntryType::Link,
                            mode,
                            0,
                            Some(&first),
                        );
                    }
                    self.links.insert(key, entry.rel.clone());
                }
                self.header(&entry.rel, tar::EntryType::Regular, mode, entry.size, None)?;
                self.copy_exact(file, &path, entry.size)
            }
        }
    }

    pub(super) fn data(&mut self, name: &str, mode: u32, data: &[u8]) -> Result<(), ContextError> {
        self.header(name, tar::EntryType::Regular, mode, data.len() as u64, None)?;
        self.write(data)?;
        self.pad(data.len() as u64)
    }

    /// Copies exactly `size` bytes; a file that shrinks mid-copy is an error (the stream is then abandoned).
    fn copy_exact(&mut self, mut file: File, path: &Path, size: u64) -> Result<(), ContextError> {
        let mut remaining = size;
        let mut buf = vec![0u8; 64 * 1024];
        while remaining > 0 {
            let want = remaining.min(buf.len() as u64) as usize;
            let n = match file.read(&mut buf[..want]) {
                Ok(0) => {
                    return Err(ContextError::FileChanged {
                        path: path.to_owned(),
                        detail: format!(
                            "size was {size} bytes, it ended after {}",
                            size - remaining
                        ),
                    });
                }
                Ok(n) => n,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                Err(source) => {
                    return Err(ContextError::Unreadable {
                        path: path.to_owned(),
                        source,
                    });
                }
            };
            self.write(&buf[..n])?;
            remaining -= n as u64;
        }
        self.pad(size)
    }

    fn header(
        &mut self,
        name: &str,
        kind: tar::EntryType,
        mode: u32,
        size: u64,
        link: Option<&str>,
    ) -> Result<(), ContextError> {
        if name.len() > 100 {
            self.long_name(tar::EntryType::GNULongName, name)?;
        }
        if let Some(link) = link.filter(|l| l.len() > 100) {
            self.long_name(tar::EntryType::GNULongLink, link)?;
        }
        let mut header = tar::Header::new_gnu();
        // Raw bytes, not `set_path`: that would normalise names and link targets (`a/./b`, trailing `/`).
        let old = header.as_old_mut();
        let name_bytes = name.as_bytes();
        old.name[..name_bytes.len().min(100)]
            .copy_from_slice(&name_bytes[..name_bytes.len().min(100)]);
        if let Some(link) = link {
            let link_bytes = link.as_bytes();
            old.linkname[..link_bytes.len().min(100)]
                .copy_from_slice(&link_bytes[..link_bytes.len().min(100)]);
        }
        header.set_entry_type(kind);
        header.set_mode(mode);
        header.set_uid(0);
        header.set_gid(0);
        header.set_mtime(TAR_MTIME);
        header.set_size(size);
        header.set_cksum();
        self.write(header.as_bytes())
    }

    fn long_name(&mut self, kind: tar::EntryType, value: &str) -> Result<(), ContextError> {
        let mut header = tar::Header::new_gnu();
        let marker = b"././@LongLink";
        header.as_old_mut().name[..marker.len()].copy_from_slice(marker);
        header.set_entry_type(kind);
        header.set_mode(0o644);
        header.set_uid(0);
        header.set_gid(0);
        header.set_mtime(0);
        let len = value.len() as u64 + 1;
        header.set_size(len);
        header.set_cksum();
        self.write(header.as_bytes())?;
        self.write(value.as_bytes())?;
        self.write(&[0])?;
        self.pad(len)
    }

    fn pad(&mut self, len: u64) -> Result<(), ContextError> {
        let rem = (len % 512) as usize;
        if rem == 0 {
            Ok(())
        } else {
            self.write(&[0u8; 512][..512 - rem])
        }
    }

    fn write(&mut self, bytes: &[u8]) -> Result<(), ContextError> {
        self.out
            .write_all(bytes)
            .map_err(|source| ContextError::WriteTar { source })
    }

    pub(super) fn finish(mut self) -> Result<(), ContextError> {
        self.write(&[0u8; 1024])?;
        self.out
            .flush()
            .map_err(|source| ContextError::WriteTar { source })
    }
}
