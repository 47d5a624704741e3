//! Cache stage, binary encoding: the little-endian integers, the byte reader and the shared path prefixes that the
//! memo and record formats are made of; it knows neither format and does no I/O.

/// The kind byte of a context entry, the same in memos and records.
pub(super) const KIND_DIR: u8 = 0;
pub(super) const KIND_FILE: u8 = 1;
pub(super) const KIND_SYMLINK: u8 = 2;

pub(super) fn put_u16(out: &mut Vec<u8>, v: u16) {
    out.extend_from_slice(&v.to_le_bytes());
}
pub(super) fn put_u32(out: &mut Vec<u8>, v: u32) {
    out.extend_from_slice(&v.to_le_bytes());
}
pub(super) fn put_u64(out: &mut Vec<u8>, v: u64) {
    out.extend_from_slice(&v.to_le_bytes());
}
pub(super) fn put_i64(out: &mut Vec<u8>, v: i64) {
    out.extend_from_slice(&v.to_le_bytes());
}

pub(super) struct Reader<'a> {
    pub(super) bytes: &'a [u8],
    pub(super) pos: usize,
}

impl<'a> Reader<'a> {
    pub(super) fn bytes(&mut self, n: usize) -> Option<&'a [u8]> {
        let out = self.bytes.get(self.pos..self.pos.checked_add(n)?)?;
        self.pos += n;
        Some(out)
    }
    pub(super) fn array<const N: usize>(&mut self) -> Option<&'a [u8; N]> {
        self.bytes(N)?.first_chunk::<N>()
    }
    pub(super) fn u8(&mut self) -> Option<u8> {
        self.array::<1>().map(|b| b[0])
    }
    pub(super) fn u32(&mut self) -> Option<u32> {
        self.array().map(|b| u32::from_le_bytes(*b))
    }
    pub(super) fn u64(&mut self) -> Option<u64> {
        self.array().map(|b| u64::from_le_bytes(*b))
    }
    pub(super) fn i64(&mut self) -> Option<i64> {
        self.array().map(|b| i64::from_le_bytes(*b))
    }
}

pub(super) fn common_prefix(a: &[u8], b: &[u8]) -> usize {
    a.iter().zip(b).take_while(|(x, y)| x == y).count()
}
