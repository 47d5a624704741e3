//! Cache stage, the envelope of every store file: an encoded body → the bytes of a file, between a magic and a
//! trailing checksum, and a file → its body (a truncated, corrupt or foreign file reads as missing, with a
//! `tracing` warning); it knows no body format and never writes a file.

use std::fs;
use std::io;
use std::path::Path;

/// Reads a whole store file and checks its magic and trailing checksum; `None` (with a warning
/// unless the file is simply absent) when it is unusable.
pub(super) fn read_store_file(path: &Path, magic: &[u8; 8]) -> Option<Vec<u8>> {
    let bytes = match fs::read(path) {
        Ok(bytes) => bytes,
        Err(error) if error.kind() == io::ErrorKind::NotFound => return None,
        Err(error) => {
            tracing::warn!(path = %path.display(), %error, "cannot read cache file");
            return None;
        }
    };
    let valid = bytes.len() >= 16 && bytes.starts_with(magic) && {
        let (body, sum) = bytes.split_at(bytes.len() - 8);
        sum.first_chunk::<8>()
            .is_some_and(|s| u64::from_le_bytes(*s) == checksum64(body))
    };
    if !valid {
        tracing::warn!(path = %path.display(), "ignoring a truncated or corrupt cache file");
        return None;
    }
    Some(bytes)
}

/// The part of a store file read by `read_store_file` between magic and checksum.
pub(super) fn body(bytes: &[u8]) -> &[u8] {
    bytes
        .get(8..bytes.len().saturating_sub(8))
        .unwrap_or_default()
}

/// Appends magic and checksum around an encoded body.
pub(super) fn seal(magic: &[u8; 8], body_encoder: impl FnOnce(&mut Vec<u8>)) -> Vec<u8> {
    let mut out = Vec::new();
    out.extend_from_slice(magic);
    body_encoder(&mut out);
    let sum = checksum64(&out);
    out.extend_from_slice(&sum.to_le_bytes());
    out
}

/// A fast 64-bit checksum against truncation and corruption (not against tampering: whoever can
/// write the store owns the account anyway). Every step is a bijection of the lane state, so any
/// single changed 8-byte word is always detected.
pub(super) fn checksum64(bytes: &[u8]) -> u64 {
    const K: [u64; 4] = [
        0x9E37_79B9_7F4A_7C15,
        0xC2B2_AE3D_27D4_EB4F,
        0x1656_67B1_9E37_79F9,
        0x85EB_CA77_C2B2_AE63,
    ];
    let mut lanes = K;
    let (blocks, tail) = bytes.as_chunks::<32>();
    let mut last = [0u8; 32];
    last[..tail.len()].copy_from_slice(tail);
    for block in blocks.iter().chain(std::iter::once(&last)) {
        for (j, word) in block.as_chunks::<8>().0.iter().enumerate() {
            lanes[j] = (lanes[j] ^ u64::from_le_bytes(*word))
                .wrapping_mul(K[j])
                .rotate_left(29);
        }
    }
    let mut h = bytes.len() as u64;
    for lane in lanes {
        h = (h ^ lane).wrapping_mul(K[0]).rotate_left(31);
    }
    h ^= h >> 33;
    h = h.wrapping_mul(K[1]);
    h ^ (h >> 29)
}
