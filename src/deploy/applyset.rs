//! Deploy, ApplySets (KEP-3659, what `kubectl apply --prune --applyset` uses): one deployment's identity (the
//! project and the namespace it lives in) → its parent object, the label its members carry, and what the parent
//! records (the group-kinds and namespaces of its members). Pure data: talks to no cluster; `kube/` applies and
//! lists.
//!
//! A deployment is the project *and where it went*: the same project deployed by two developers into two
//! namespaces is two ApplySets, so neither prunes nor deletes the other's objects.

use std::collections::{BTreeMap, BTreeSet};

use base64::Engine as _;
use serde_json::{Value, json};
use sha2::Digest as _;

/// The label every member carries: the id of its set's parent.
pub const PART_OF: &str = "applyset.kubernetes.io/part-of";
/// The label that makes an object an ApplySet parent; its value is the set's id.
pub const ID: &str = "applyset.kubernetes.io/id";
/// The parent's annotation naming the tool that manages the set (`devloop/v0.1.0`).
pub const TOOLING: &str = "applyset.kubernetes.io/tooling";
/// The parent's annotation listing the group-kinds of its members (`Deployment.apps,Service`).
pub const GROUP_KINDS: &str = "applyset.kubernetes.io/contains-group-kinds";
/// The parent's annotation listing the namespaces of its members other than its own.
pub const NAMESPACES: &str = "applyset.kubernetes.io/additional-namespaces";

/// One deployment's ApplySet: its parent is the ConfigMap `name` in `namespace`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ApplySet {
    /// The parent's name: `devloop-<project>`.
    pub name: String,
    /// The parent's namespace: where the deployment lives.
    pub namespace: String,
    /// `applyset-<base64url(sha256(name.namespace.ConfigMap.))>-v1`, the value of [`ID`] and [`PART_OF`].
    pub id: String,
}

/// An API group and kind, e.g. `("apps", "Deployment")`; the core group is `""`.
pub type GroupKind = (String, String);

/// What a set holds: the group-kinds of its members and every namespace they are in.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Contents {
    pub group_kinds: BTreeSet<GroupKind>,
    pub namespaces: BTreeSet<String>,
}

impl ApplySet {
    /// The set of `project` deployed in `namespace`.
    pub fn new(project: &str, namespace: &str) -> ApplySet {
        let name = format!("devloop-{project}");
        let id = id_of(&name, namespace, "ConfigMap", "");
        ApplySet {
            name,
            namespace: namespace.to_string(),
            id,
        }
    }

    /// The parent object to apply: a ConfigMap without data, labelled as the set's parent (and as devloop's, for
    /// `kubectl get -l`), recording `contents`.
    pub fn parent(&self, labels: &BTreeMap<String, String>, contents: &Contents) -> Value {
        let mut labels = labels.clone();
        labels.insert(ID.to_string(), self.id.clone());
        let group_kinds: Vec<String> = contents
            .group_kinds
            .iter()
            .map(|(g, k)| group_kind_text(g, k))
            .collect();
        let others: Vec<&str> = contents
            .namespaces
            .iter()
            .map(String::as_str)
            .filter(|ns| *ns != self.namespace)
            .collect();
        json!({
            "apiVersion": "v1",
            "kind": "ConfigMap",
            "metadata": {
                "name": self.name,
                "namespace": self.namespace,
                "labels": labels,
                "annotations": {
                    TOOLING: tooling(),
                    GROUP_KINDS: group_kinds.join(","),
                    NAMESPACES: others.join(","),
                },
            },
        })
    }

    /// What an existing parent records, or why it is not this set's parent (someone else's ConfigMap of the same
    /// name, or a set another tool manages).
    pub fn read_parent(&self, parent: &Value) -> Result<Contents, String> {
        let label = |k: &str| {
            parent
                .pointer("/metadata/labels")
                .and_then(|l| l.get(k))
                .and_then(Value::as_str)
        };
        let annotation = |k: &str| {
            parent
                .pointer("/metadata/annotations")
                .and_then(|a| a.get(k))
                .and_then(Value::as_str)
        };
        if label(ID) != Some(self.id.as_str()) {
            return Err(format!(
                "configmap/{} (namespace `{}`) exists but is not devloop's record of this deployment (no `{ID}: {}` label)",
                self.name, self.namespace, self.id
            ));
        }
        if let Some(tool) = annotation(TOOLING)
            && !tool.starts_with("devloop/")
        {
            return Err(format!(
                "configmap/{} (namespace `{}`) records an ApplySet managed by `{tool}`, not devloop",
                self.name, self.namespace
            ));
        }
        let list = |k: &str| {
            annotation(k)
                .unwrap_or_default()
                .split(',')
                .map(str::trim)
                .filter(|s| !s.is_empty())
                .map(str::to_string)
                .collect::<Vec<_>>()
        };
        let mut namespaces: BTreeSet<String> = list(NAMESPACES).into_iter().collect();
        namespaces.insert(self.namespace.clone());
        Ok(Contents {
            group_kinds: list(GROUP_KINDS)
                .iter()
                .map(|gk| parse_group_kind(gk))
                .collect(),
            namespaces,
        })
    }
}

impl Contents {
    /// Both sets' group-kinds and namespaces.
    pub fn union(&self, other: &Contents) -> Contents {
        Contents {
            group_kinds: self
                .group_kinds
                .union(&other.group_kinds)
                .cloned()
                .collect(),
            namespaces: self.namespaces.union(&other.namespaces).cloned().collect(),
        }
    }
}

/// The tooling annotation's value: `devloop/v<version>`.
pub fn tooling() -> String {
    format!("devloop/v{}", env!("CARGO_PKG_VERSION"))
}

/// KEP-3659's id of a parent: `applyset-` + unpadded URL-safe base64 of sha256(`name.namespace.kind.group`) + `-v1`.
pub fn id_of(name: &str, namespace: &str, kind: &str, group: &str) -> String {
    let digest = sha2::Sha256::digest(format!("{name}.{namespace}.{kind}.{group}"));
    format!(
        "applyset-{}-v1",
        base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(digest)
    )
}

/// `Deployment.apps`; `ConfigMap` for the core group.
fn group_kind_text(group: &str, kind: &str) -> String {
    if group.is_empty() {
        kind.to_string()
    } else {
        format!("{kind}.{group}")
    }
}

/// `Deployment.apps` → `("apps", "Deployment")`; the group is everything after the first dot.
fn parse_group_kind(text: &str) -> GroupKind {
    match text.split_once('.') {
        Some((kind, group)) => (group.to_string(), kind.to_string()),
        None => (String::new(), text.to_string()),
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn ids_follow_kep_3659() {
        // The id is a function of the parent's name, namespace, kind and group: the same project in two
        // namespaces is two sets.
        let a = ApplySet::new("shop", "alice");
        let b = ApplySet::new("shop", "bob");
        assert_ne!(a.id, b.id);
        assert_eq!(a, ApplySet::new("shop", "alice"));
        assert_eq!(a.name, "devloop-shop");
        // base64url without padding of a 32-byte digest: 43 characters; a valid label value (≤ 63).
        let digest =
            a.id.strip_prefix("applyset-")
                .unwrap()
                .strip_suffix("-v1")
                .unwrap();
        assert_eq!(digest.len(), 43);
        assert!(
            digest
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_')
        );
        assert!(a.id.len() <= 63);
        let expected = base64::engine::general_purpose::URL_SAFE_NO_PAD
            .encode(sha2::Sha256::digest("devloop-shop.alice.ConfigMap."));
        assert_eq!(a.id, format!("applyset-{expected}-v1"));
    }

    #[test]
    fn the_parent_records_group_kinds_and_other_namespaces_and_reads_back() {
        let set = ApplySet::new("shop", "shop-dev");
        let contents = Contents {
            group_kinds: [
                ("apps".to_string(), "Deployment".to_string()),
                (String::new(), "ConfigMap".to_string()),
                (String::new(), "PersistentVolume".to_string()),
            ]
            .into(),
            namespaces: ["shop-dev".to_string(), "shop-db".to_string()].into(),
        };
        let labels = BTreeMap::from([("devloop.dev/project".to_string(), "shop".to_string())]);
        let parent = set.parent(&labels, &contents);
        let annotations = &parent["metadata"]["annotations"];
        assert_eq!(
            annotations[GROUP_KINDS],
            "ConfigMap,PersistentVolume,Deployment.apps"
        );
        assert_eq!(annotations[NAMESPACES], "shop-db");
        assert!(
            annotations[TOOLING]
                .as_str()
                .unwrap()
                .starts_with("devloop/v")
        );
        assert_eq!(parent["metadata"]["labels"][ID], set.id);
        assert_eq!(parent["metadata"]["labels"]["devloop.dev/project"], "shop");
        assert_eq!(set.read_parent(&parent).unwrap(), contents);
    }

    #[test]
    fn a_parent_of_someone_else_is_refused() {
        let set = ApplySet::new("shop", "dev");
        let theirs = json!({"metadata": {"name": "devloop-shop", "labels": {"app": "x"}}});
        let e = set.read_parent(&theirs).unwrap_err();
        assert!(e.contains("is not devloop's record"), "{e}");
        let kubectl = json!({"metadata": {"labels": {ID: set.id}, "annotations": {TOOLING: "kubectl/v1.32"}}});
        let e = set.read_parent(&kubectl).unwrap_err();
        assert!(e.contains("managed by `kubectl/v1.32`"), "{e}");
    }

    #[test]
    fn union_merges_both() {
        let a = Contents {
            group_kinds: [("apps".into(), "Deployment".into())].into(),
            namespaces: ["a".into()].into(),
        };
        let b = Contents {
            group_kinds: [(String::new(), "Service".into())].into(),
            namespaces: ["b".into()].into(),
        };
        let u = a.union(&b);
        assert_eq!(u.group_kinds.len(), 2);
        assert_eq!(u.namespaces.len(), 2);
        assert_eq!(
            parse_group_kind("Foo.example.com"),
            ("example.com".into(), "Foo".into())
        );
    }
}
