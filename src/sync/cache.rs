//! Sync, parsed Dockerfiles: an artifact's Dockerfile content, target and build args → its [`Model`], parsed once
//! and kept by the dev loop across iterations: a sync reads the Dockerfile to know its content, and parses it only
//! when that content (or the target, or a build arg) changed. Prints nothing.

use std::collections::{BTreeMap, HashMap};
use std::path::Path;
use std::sync::{Arc, Mutex};

use sha2::{Digest, Sha256};

use super::model::{Model, model};

/// The models of the artifacts' Dockerfiles, by artifact image.
#[derive(Debug, Default)]
pub struct Placements {
    models: Mutex<HashMap<String, Entry>>,
    parsed: std::sync::atomic::AtomicUsize,
}

type Parsed = Arc<Result<Model, String>>;

#[derive(Debug)]
struct Entry {
    key: [u8; 32],
    model: Parsed,
}

impl Placements {
    /// The model of `dockerfile` for artifact `image`: the kept one when nothing it was read from changed.
    pub(super) fn model(
        &self,
        image: &str,
        dockerfile: &Path,
        target: Option<&str>,
        build_args: &BTreeMap<String, String>,
    ) -> Parsed {
        let text = match std::fs::read(dockerfile) {
            Ok(t) => t,
            Err(e) => return Arc::new(Err(format!("cannot read the Dockerfile: {e}"))),
        };
        let mut h = Sha256::new();
        h.update((text.len() as u64).to_le_bytes());
        h.update(&text);
        h.update(target.unwrap_or("\0").as_bytes());
        for (k, v) in build_args {
            h.update([0]);
            h.update(k.as_bytes());
            h.update([0]);
            h.update(v.as_bytes());
        }
        let key: [u8; 32] = h.finalize().into();
        let mut models = self.models.lock().unwrap_or_else(|e| e.into_inner());
        if let Some(e) = models.get(image).filter(|e| e.key == key) {
            return e.model.clone();
        }
        let parsed: Parsed = Arc::new(match std::str::from_utf8(&text) {
            Ok(text) => model(text, build_args, target),
            Err(_) => Err("the Dockerfile is not UTF-8".into()),
        });
        models.insert(
            image.to_owned(),
            Entry {
                key,
                model: parsed.clone(),
            },
        );
        self.parsed
            .fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        parsed
    }

    /// How many times a Dockerfile was parsed (for tests: never per sync).
    pub fn parses(&self) -> usize {
        self.parsed.load(std::sync::atomic::Ordering::Relaxed)
    }
}
