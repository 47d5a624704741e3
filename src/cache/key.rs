//! Cache stage, keys: every input of an artifact's build ([`KeyInputs`]) → its [`CacheKey`], a sha256 over their
//! JSON; it reads no files, never looks at the store and never keeps a build-arg value (only its digest).
//!
//! The encoding is canonical: struct fields in declaration order, maps as `BTreeMap`, no floats.

use std::collections::BTreeMap;
use std::fmt;
use std::io::{self, Write};

use serde::{Deserialize, Serialize};
use sha2::{Digest as _, Sha256};

use super::digest::Digest;
use crate::context::IgnoreRules;

/// Version of the key derivation; bump it whenever what goes into a key or how it is hashed
/// changes.
pub const KEY_VERSION: u32 = 1;

/// The cache key of an artifact: the lowercase hex sha256 of its [`KeyInputs`].
#[derive(Clone, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct CacheKey(String);

impl CacheKey {
    /// The full 64-digit hex key.
    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// The first 12 hex digits, for tags and display.
    pub fn short(&self) -> &str {
        &self.0[..12]
    }
}

impl fmt::Display for CacheKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl fmt::Debug for CacheKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "CacheKey({})", self.0)
    }
}

impl TryFrom<String> for CacheKey {
    type Error = String;

    fn try_from(s: String) -> Result<Self, String> {
        match Digest::from_hex(&s) {
            Some(_) => Ok(Self(s)),
            None => Err(format!("`{s}` is not a cache key")),
        }
    }
}

impl From<CacheKey> for String {
    fn from(key: CacheKey) -> Self {
        key.0
    }
}

impl From<Digest> for CacheKey {
    fn from(digest: Digest) -> Self {
        Self(digest.to_hex())
    }
}

/// Every input of an artifact's cache key. Hashed by [`key`]; stored in build records for
/// [`explain`](super::explain).
///
/// Build-arg values are kept as digests only, so records on disk never hold secrets passed as build
/// args.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct KeyInputs {
    /// [`KEY_VERSION`] at the time the key was computed.
    pub key_version: u32,
    /// [`ContextDigest::digest`](super::ContextDigest::digest) of the build context.
    pub context_digest: Digest,
    /// sha256 of the Dockerfile bytes.
    pub dockerfile_digest: Digest,
    /// The build target stage, if any.
    pub target: Option<String>,
    /// Evaluated build args: name → sha256 of the value (see [`build_arg_digests`]).
    pub build_args: BTreeMap<String, Digest>,
    /// [`ignore_digest`] of the ignore rules that applied.
    pub ignore_digest: Digest,
    /// Target platform (`linux/amd64`), if set.
    pub platform: Option<String>,
    /// Keys of the artifacts this one requires, by image name.
    pub required: BTreeMap<String, CacheKey>,
    /// Base image reference → image ID of the local image, `None` when the daemon does not have it.
    pub base_images: BTreeMap<String, Option<String>>,
}

impl KeyInputs {
    /// Inputs for a context, Dockerfile and ignore rules, with no target, args, platform,
    /// requirements or bases.
    pub fn new(context_digest: Digest, dockerfile: &[u8], ignore: &IgnoreRules) -> Self {
        Self {
            key_version: KEY_VERSION,
            context_digest,
            dockerfile_digest: Digest::of(dockerfile),
            target: None,
            build_args: BTreeMap::new(),
            ignore_digest: ignore_digest(ignore),
            platform: None,
            required: BTreeMap::new(),
            base_images: BTreeMap::new(),
        }
    }
}

/// The cache key of `inputs`: sha256 over their canonical JSON encoding.
pub fn key(inputs: &KeyInputs) -> CacheKey {
    let mut hasher = Sha256::new();
    // serde_json fails only on non-string map keys, a failing `Serialize` impl or a failing writer;
    // `KeyInputs` has none of these, so a failure is a bug in this file.
    #[allow(clippy::expect_used)]
    serde_json::to_writer(HashWriter(&mut hasher), inputs).expect("`KeyInputs` always encodes");
    CacheKey::from(Digest(hasher.finalize().into()))
}

struct HashWriter<'a>(&'a mut Sha256);

impl Write for HashWriter<'_> {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        self.0.update(buf);
        Ok(buf.len())
    }

    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}

/// Digests of build-arg values, for [`KeyInputs::build_args`].
pub fn build_arg_digests<'a>(
    args: impl IntoIterator<Item = (&'a str, &'a str)>,
) -> BTreeMap<String, Digest> {
    args.into_iter()
        .map(|(name, value)| (name.to_owned(), Digest::of(value.as_bytes())))
        .collect()
}

/// The digest of ignore rules: their text (where it came from does not change which files are
/// sent).
pub fn ignore_digest(rules: &IgnoreRules) -> Digest {
    Digest::of(rules.text.as_bytes())
}
