//! Deploy, Kubernetes backend, the session: what this process applied, by object (the digest of the applied form,
//! the answer, the resource) → objects whose rendered form did not change are not sent again, and the next prune
//! knows what this deployment holds without sweeping every resource type. Memory only; talks to no cluster.

use std::collections::{BTreeSet, HashMap};

use kube::discovery::{ApiCapabilities, ApiResource};
use serde_json::Value;

use super::KubeTarget;
use super::plan::PlannedObject;
use crate::deploy::{AppliedObject, Change, ObjectRef};

/// Identifies an object across API versions: group, kind, namespace, name.
pub(super) type ObjectKey = (String, String, Option<String>, String);

/// An object applied earlier in this process.
#[derive(Clone)]
pub(super) struct Remembered {
    pub(super) digest: [u8; 32],
    pub(super) applied: AppliedObject,
    pub(super) ar: ApiResource,
    pub(super) caps: ApiCapabilities,
}

pub(super) fn object_key(r: &ObjectRef) -> ObjectKey {
    (
        r.group().to_string(),
        r.kind.clone(),
        r.namespace.clone(),
        r.name.clone(),
    )
}

pub(super) fn form_digest(object: &Value) -> [u8; 32] {
    use sha2::Digest as _;
    sha2::Sha256::digest(serde_json::to_vec(object).unwrap_or_default()).into()
}

impl KubeTarget {
    /// Remembers this deploy's objects for the next one: `previous` (what the session held) without what left the
    /// plan (`keep` is what was applied now), each of `applied` with the digest of its planned form. An object
    /// the apply found unchanged keeps the answer remembered for it.
    pub(super) async fn remember<'a>(
        &self,
        previous: Option<HashMap<ObjectKey, Remembered>>,
        keep: &BTreeSet<ObjectKey>,
        applied: &[AppliedObject],
        planned: impl Iterator<Item = &'a PlannedObject>,
    ) {
        let mut remembered = previous.unwrap_or_default();
        remembered.retain(|k, _| keep.contains(k));
        let digests: HashMap<ObjectKey, ([u8; 32], ApiResource, ApiCapabilities)> = planned
            .map(|p| {
                (
                    object_key(&p.reference),
                    (form_digest(&p.object), p.ar.clone(), p.caps.clone()),
                )
            })
            .collect();
        for a in applied {
            let key = object_key(&a.reference);
            if let Some((digest, ar, caps)) = digests.get(&key) {
                let applied = match remembered.get(&key) {
                    Some(r) if a.change == Change::Unchanged => r.applied.clone(),
                    _ => a.clone(),
                };
                remembered.insert(
                    key,
                    Remembered {
                        digest: *digest,
                        applied,
                        ar: ar.clone(),
                        caps: caps.clone(),
                    },
                );
            }
        }
        *self.session.lock().await = Some(remembered);
    }
}
