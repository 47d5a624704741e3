//! Cache stage, explain: an artifact's last build + its current key inputs → the inputs that changed, worded for
//! people (never a build-arg value: build args can carry secrets); it reads nothing and changes nothing.

use std::collections::BTreeMap;
use std::fmt;

use super::context_digest::{FileDigest, FileDigests};
use super::key::{CacheKey, KeyInputs};
use super::record::LastBuild;

/// How many paths of each kind `explain` names before it only counts.
const EXPLAIN_PATHS: usize = 3;

/// Some paths of one kind of change, and how many more there are.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PathSample {
    pub paths: Vec<String>,
    pub more: usize,
}

impl PathSample {
    fn from_all(all: Vec<String>) -> Self {
        let more = all.len().saturating_sub(EXPLAIN_PATHS);
        let mut paths = all;
        paths.truncate(EXPLAIN_PATHS);
        Self { paths, more }
    }

    fn total(&self) -> usize {
        self.paths.len() + self.more
    }
}

/// How a build arg changed (values are never shown: build args can carry secrets).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ArgChange {
    Added,
    Removed,
    Changed,
}

/// A base image reference as one build saw it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum BaseImageState {
    /// Not a base image of that build.
    Unused,
    /// A base image the daemon did not have.
    NotLocal,
    /// The image ID of the daemon's local image.
    Local(String),
}

impl BaseImageState {
    fn of(entry: Option<&Option<String>>) -> Self {
        match entry {
            None => Self::Unused,
            Some(None) => Self::NotLocal,
            Some(Some(id)) => Self::Local(id.clone()),
        }
    }
}

impl fmt::Display for BaseImageState {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Unused => f.write_str("(not used)"),
            Self::NotLocal => f.write_str("(not present locally)"),
            Self::Local(id) => {
                let id = id.strip_prefix("sha256:").unwrap_or(id);
                write!(f, "`{}`", id.get(..12).unwrap_or(id))
            }
        }
    }
}

/// One input that differs from the last build of an artifact.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Change {
    /// The artifact was never built (or its record is gone).
    NoPreviousBuild,
    /// The key derivation changed with a devloop upgrade.
    KeyVersion {
        previous: u32,
        current: u32,
    },
    FilesAdded(PathSample),
    FilesRemoved(PathSample),
    /// Content, link target or mode differs.
    FilesModified(PathSample),
    Dockerfile,
    Target {
        previous: Option<String>,
        current: Option<String>,
    },
    BuildArg {
        name: String,
        change: ArgChange,
    },
    IgnoreRules,
    Platform {
        previous: Option<String>,
        current: Option<String>,
    },
    /// A base image came or went, or its local image changed.
    BaseImage {
        reference: String,
        previous: BaseImageState,
        current: BaseImageState,
    },
    /// A required artifact's key (`None`: not required then).
    RequiredArtifact {
        image: String,
        previous: Option<CacheKey>,
        current: Option<CacheKey>,
    },
}

impl fmt::Display for Change {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fn or_none(v: &Option<String>) -> String {
            v.as_ref()
                .map_or_else(|| "(none)".to_owned(), |v| format!("`{v}`"))
        }
        fn files(f: &mut fmt::Formatter<'_>, what: &str, sample: &PathSample) -> fmt::Result {
            let noun = if sample.total() == 1 { "file" } else { "files" };
            write!(f, "{noun} {what}: ")?;
            for (i, path) in sample.paths.iter().enumerate() {
                let sep = if i == 0 { "" } else { ", " };
                write!(f, "{sep}`{path}`")?;
            }
            if sample.more > 0 {
                write!(f, " and {} more", sample.more)?;
            }
            Ok(())
        }
        match self {
            Self::NoPreviousBuild => f.write_str("no previous build"),
            Self::KeyVersion { previous, current } => {
                write!(
                    f,
                    "cache key format changed (version {previous} → {current})"
                )
            }
            Self::FilesAdded(sample) => files(f, "added", sample),
            Self::FilesRemoved(sample) => files(f, "removed", sample),
            Self::FilesModified(sample) => files(f, "modified", sample),
            Self::Dockerfile => f.write_str("Dockerfile changed"),
            Self::Target { previous, current } => {
                write!(
                    f,
                    "target changed from {} to {}",
                    or_none(previous),
                    or_none(current)
                )
            }
            Self::BuildArg { name, change } => {
                let what = match change {
                    ArgChange::Added => "added",
                    ArgChange::Removed => "removed",
                    ArgChange::Changed => "changed",
                };
                write!(f, "build arg `{name}` {what}")
            }
            Self::IgnoreRules => f.write_str("ignore rules changed"),
            Self::Platform { previous, current } => {
                write!(
                    f,
                    "platform changed from {} to {}",
                    or_none(previous),
                    or_none(current)
                )
            }
            Self::BaseImage {
                reference,
                previous,
                current,
            } => {
                write!(
                    f,
                    "base image `{reference}` changed from {previous} to {current}"
                )
            }
            Self::RequiredArtifact {
                image,
                previous,
                current,
            } => {
                let key = |k: &Option<CacheKey>| {
                    k.as_ref()
                        .map_or_else(|| "(none)".to_owned(), |k| format!("`{}`", k.short()))
                };
                write!(
                    f,
                    "required artifact `{image}` changed from {} to {}",
                    key(previous),
                    key(current)
                )
            }
        }
    }
}

/// Which inputs changed since `previous` (the artifact's last build); empty when the key is the
/// same.
pub fn explain(
    previous: Option<&LastBuild>,
    inputs: &KeyInputs,
    files: &FileDigests,
) -> Vec<Change> {
    let Some(previous) = previous else {
        return vec![Change::NoPreviousBuild];
    };
    let old = &previous.record.inputs;
    let mut changes = Vec::new();
    if old.key_version != inputs.key_version {
        changes.push(Change::KeyVersion {
            previous: old.key_version,
            current: inputs.key_version,
        });
    }
    if old.context_digest != inputs.context_digest {
        changes.extend(file_changes(&previous.files, files));
    }
    if old.dockerfile_digest != inputs.dockerfile_digest {
        changes.push(Change::Dockerfile);
    }
    if old.target != inputs.target {
        changes.push(Change::Target {
            previous: old.target.clone(),
            current: inputs.target.clone(),
        });
    }
    for (name, (was, now)) in union(&old.build_args, &inputs.build_args) {
        let change = match (was, now) {
            (None, Some(_)) => ArgChange::Added,
            (Some(_), None) => ArgChange::Removed,
            _ => ArgChange::Changed,
        };
        changes.push(Change::BuildArg {
            name: name.clone(),
            change,
        });
    }
    if old.ignore_digest != inputs.ignore_digest {
        changes.push(Change::IgnoreRules);
    }
    if old.platform != inputs.platform {
        changes.push(Change::Platform {
            previous: old.platform.clone(),
            current: inputs.platform.clone(),
        });
    }
    for (reference, (was, now)) in union(&old.base_images, &inputs.base_images) {
        changes.push(Change::BaseImage {
            reference: reference.clone(),
            previous: BaseImageState::of(was),
            current: BaseImageState::of(now),
        });
    }
    for (image, (was, now)) in union(&old.required, &inputs.required) {
        changes.push(Change::RequiredArtifact {
            image: image.clone(),
            previous: was.cloned(),
            current: now.cloned(),
        });
    }
    changes
}

/// A map key with its value before and after.
type Sides<'a, V> = (&'a String, (Option<&'a V>, Option<&'a V>));

/// Keys whose values differ between two maps, with both sides.
fn union<'a, V: PartialEq>(
    old: &'a BTreeMap<String, V>,
    new: &'a BTreeMap<String, V>,
) -> Vec<Sides<'a, V>> {
    let mut keys: Vec<&String> = old.keys().chain(new.keys()).collect();
    keys.sort();
    keys.dedup();
    keys.into_iter()
        .map(|k| (k, (old.get(k), new.get(k))))
        .filter(|(_, (a, b))| a != b)
        .collect()
}

fn file_changes(old: &FileDigests, new: &FileDigests) -> Vec<Change> {
    fn sorted(f: &FileDigests) -> Vec<&FileDigest> {
        let mut v: Vec<&FileDigest> = f.0.iter().collect();
        if !v.is_sorted_by(|a, b| a.rel <= b.rel) {
            v.sort_by(|a, b| a.rel.cmp(&b.rel));
        }
        v
    }
    let (old, new) = (sorted(old), sorted(new));
    let (mut added, mut removed, mut modified) = (Vec::new(), Vec::new(), Vec::new());
    let (mut i, mut j) = (0, 0);
    while i < old.len() || j < new.len() {
        match (old.get(i), new.get(j)) {
            (Some(a), Some(b)) if a.rel == b.rel => {
                if a != b {
                    modified.push(b.rel.clone());
                }
                i += 1;
                j += 1;
            }
            (Some(a), Some(b)) if a.rel < b.rel => {
                removed.push(a.rel.clone());
                i += 1;
            }
            (Some(a), None) => {
                removed.push(a.rel.clone());
                i += 1;
            }
            (_, Some(b)) => {
                added.push(b.rel.clone());
                j += 1;
            }
            (None, None) => break,
        }
    }
    let mut changes = Vec::new();
    for (paths, variant) in [
        (added, Change::FilesAdded as fn(PathSample) -> Change),
        (removed, Change::FilesRemoved),
        (modified, Change::FilesModified),
    ] {
        if !paths.is_empty() {
            changes.push(variant(PathSample::from_all(paths)));
        }
    }
    changes
}
