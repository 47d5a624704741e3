//! Cache stage, build records: what the builder produced and under which inputs ([`Record`]), and their file
//! format (the record's JSON, then the per-entry digests with prefix-compressed paths) → bytes and back; it does no
//! I/O and never holds a build-arg value.

use std::path::PathBuf;

use serde::{Deserialize, Serialize};

use super::context_digest::{Content, FileDigest, FileDigests};
use super::digest::Digest;
use super::encoding::{KIND_DIR, KIND_FILE, KIND_SYMLINK, Reader, common_prefix, put_u32, put_u64};
use super::envelope::seal;
use super::key::{CacheKey, KeyInputs};

pub(super) const RECORD_MAGIC: &[u8; 8] = b"DLRECO01";

/// What the builder produced and under which inputs; one per successful build.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Record {
    /// The artifact's image name (as in devloop.yaml).
    pub artifact: String,
    /// The project directory the artifact belongs to.
    pub project_dir: PathBuf,
    pub key: CacheKey,
    pub inputs: KeyInputs,
    pub image_id: String,
    pub tag: String,
    /// `sha256:…` of the pushed manifest, when the image was pushed.
    pub pushed_digest: Option<String>,
    /// Seconds since the Unix epoch.
    pub recorded_at: u64,
}

/// The last build of an artifact with the per-entry digests of its context, for [`explain`](super::explain).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LastBuild {
    pub record: Record,
    pub files: FileDigests,
}

pub(super) fn encode_record(
    record: &Record,
    files: Option<&FileDigests>,
) -> Result<Vec<u8>, serde_json::Error> {
    let json = serde_json::to_vec(record)?;
    let files = files.map_or(&[][..], |f| f.0.as_slice());
    Ok(seal(RECORD_MAGIC, |out| {
        put_u64(out, json.len() as u64);
        out.extend_from_slice(&json);
        put_u64(out, files.len() as u64);
        let mut previous: &[u8] = &[];
        for file in files {
            let rel = file.rel.as_bytes();
            let prefix = common_prefix(previous, rel);
            put_u64(out, prefix as u64);
            put_u64(out, (rel.len() - prefix) as u64);
            out.extend_from_slice(&rel[prefix..]);
            put_u32(out, file.mode);
            match file.content {
                Content::Dir => out.push(KIND_DIR),
                Content::File(d) => {
                    out.push(KIND_FILE);
                    out.extend_from_slice(&d.0);
                }
                Content::Symlink(d) => {
                    out.push(KIND_SYMLINK);
                    out.extend_from_slice(&d.0);
                }
            }
            previous = rel;
        }
    }))
}

pub(super) fn decode_record(bytes: &[u8]) -> Result<(Record, FileDigests), &'static str> {
    let mut r = Reader { bytes, pos: 0 };
    let bad = "truncated record";
    let json_len = usize::try_from(r.u64().ok_or(bad)?).map_err(|_| bad)?;
    let record: Record =
        serde_json::from_slice(r.bytes(json_len).ok_or(bad)?).map_err(|_| "invalid record json")?;
    let count = r.u64().ok_or(bad)?;
    // Every entry takes at least 21 bytes, so a count beyond that is corrupt (and must not size an
    // allocation).
    if count > (bytes.len() / 21) as u64 {
        return Err(bad);
    }
    let mut files = Vec::with_capacity(usize::try_from(count).map_err(|_| bad)?);
    let mut rel = Vec::<u8>::new();
    for _ in 0..count {
        let prefix = usize::try_from(r.u64().ok_or(bad)?).map_err(|_| bad)?;
        let suffix = usize::try_from(r.u64().ok_or(bad)?).map_err(|_| bad)?;
        if prefix > rel.len() {
            return Err("bad path prefix");
        }
        rel.truncate(prefix);
        rel.extend_from_slice(r.bytes(suffix).ok_or(bad)?);
        let mode = r.u32().ok_or(bad)?;
        let content = match r.u8().ok_or(bad)? {
            KIND_DIR => Content::Dir,
            KIND_FILE => Content::File(Digest(*r.array::<32>().ok_or(bad)?)),
            KIND_SYMLINK => Content::Symlink(Digest(*r.array::<32>().ok_or(bad)?)),
            _ => return Err("unknown entry kind"),
        };
        let rel = String::from_utf8(rel.clone()).map_err(|_| "path is not utf-8")?;
        files.push(FileDigest { rel, mode, content });
    }
    if r.pos != bytes.len() {
        return Err("trailing bytes");
    }
    Ok((record, FileDigests(files)))
}
