//! Render: namespaces; an object + the requested namespace → the object with `metadata.namespace` set, or a
//! conflict error. Offline: scope comes from a table of built-in kinds and from CRDs in the same render, never
//! from a cluster; cluster-scoped objects are never changed.

use std::collections::HashSet;

use super::metadata::{Placement, metadata_mut, set_namespace};
use super::{Object, RenderError};

/// Built-in cluster-scoped kinds by (group, kind), Kubernetes 1.33 (plus PodSecurityPolicy, removed in 1.25,
/// which old manifests still carry).
const CLUSTER_SCOPED: &[(&str, &str)] = &[
    ("", "ComponentStatus"),
    ("", "Namespace"),
    ("", "Node"),
    ("", "PersistentVolume"),
    ("admissionregistration.k8s.io", "MutatingAdmissionPolicy"),
    (
        "admissionregistration.k8s.io",
        "MutatingAdmissionPolicyBinding",
    ),
    (
        "admissionregistration.k8s.io",
        "MutatingWebhookConfiguration",
    ),
    ("admissionregistration.k8s.io", "ValidatingAdmissionPolicy"),
    (
        "admissionregistration.k8s.io",
        "ValidatingAdmissionPolicyBinding",
    ),
    (
        "admissionregistration.k8s.io",
        "ValidatingWebhookConfiguration",
    ),
    ("apiextensions.k8s.io", "CustomResourceDefinition"),
    ("apiregistration.k8s.io", "APIService"),
    ("authentication.k8s.io", "SelfSubjectReview"),
    ("authentication.k8s.io", "TokenReview"),
    ("authorization.k8s.io", "SelfSubjectAccessReview"),
    ("authorization.k8s.io", "SelfSubjectRulesReview"),
    ("authorization.k8s.io", "SubjectAccessReview"),
    ("certificates.k8s.io", "CertificateSigningRequest"),
    ("certificates.k8s.io", "ClusterTrustBundle"),
    ("flowcontrol.apiserver.k8s.io", "FlowSchema"),
    ("flowcontrol.apiserver.k8s.io", "PriorityLevelConfiguration"),
    ("internal.apiserver.k8s.io", "StorageVersion"),
    ("networking.k8s.io", "IPAddress"),
    ("networking.k8s.io", "IngressClass"),
    ("networking.k8s.io", "ServiceCIDR"),
    ("node.k8s.io", "RuntimeClass"),
    ("policy", "PodSecurityPolicy"),
    ("extensions", "PodSecurityPolicy"),
    ("rbac.authorization.k8s.io", "ClusterRole"),
    ("rbac.authorization.k8s.io", "ClusterRoleBinding"),
    ("resource.k8s.io", "DeviceClass"),
    ("resource.k8s.io", "ResourceSlice"),
    ("scheduling.k8s.io", "PriorityClass"),
    ("storage.k8s.io", "CSIDriver"),
    ("storage.k8s.io", "CSINode"),
    ("storage.k8s.io", "StorageClass"),
    ("storage.k8s.io", "VolumeAttachment"),
    ("storage.k8s.io", "VolumeAttributesClass"),
    ("storagemigration.k8s.io", "StorageVersionMigration"),
];

/// Which kinds are cluster-scoped in this render.
#[derive(Debug)]
pub(crate) struct Scopes {
    /// (group, kind) of custom resources whose CRD in this render says `scope: Cluster`.
    custom_cluster: HashSet<(String, String)>,
}

impl Scopes {
    /// Reads the scope of every CustomResourceDefinition among `objects`.
    pub(crate) fn new(objects: &[Object]) -> Self {
        let custom_cluster = objects
            .iter()
            .filter(|o| {
                o.group() == "apiextensions.k8s.io" && o.kind() == "CustomResourceDefinition"
            })
            .filter_map(|crd| {
                let spec = crd.value.get("spec")?;
                (spec.get("scope")?.as_str()? == "Cluster").then_some(())?;
                let group = spec.get("group")?.as_str()?;
                let kind = spec.get("names")?.get("kind")?.as_str()?;
                Some((group.to_owned(), kind.to_owned()))
            })
            .collect();
        Self { custom_cluster }
    }

    /// Whether objects of this kind live in a namespace; unknown kinds are taken to be namespaced.
    pub(crate) fn is_namespaced(&self, group: &str, kind: &str) -> bool {
        !CLUSTER_SCOPED.contains(&(group, kind))
            && !self
                .custom_cluster
                .iter()
                .any(|(g, k)| g == group && k == kind)
    }
}

/// Gives a namespaced object without a namespace `source_default` (its helm release's namespace), else
/// `requested`; when `explicit` (`-n`), fails when its namespace is not `requested`, as kubectl does.
pub(crate) fn apply(
    object: &mut Object,
    scopes: &Scopes,
    source_default: Option<&str>,
    requested: Option<&str>,
    explicit: bool,
) -> Result<(), RenderError> {
    if !scopes.is_namespaced(object.group(), object.kind()) {
        return Ok(());
    }
    let current = object.namespace();
    if let (Some(namespace), Some(requested), true) =
        (current.or(source_default), requested, explicit)
        && namespace != requested
    {
        return Err(RenderError::NamespaceConflict {
            object: Box::new(object.describe()),
            namespace: namespace.to_owned(),
            requested: requested.to_owned(),
        });
    }
    if current.is_none()
        && let Some(namespace) = source_default.or(requested)
    {
        let namespace = namespace.to_owned();
        if let Some(metadata) = metadata_mut(&mut object.value, Placement::Object) {
            set_namespace(metadata, namespace);
        }
    }
    Ok(())
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use std::path::PathBuf;

    use serde_json::{Value, json};

    use super::*;
    use crate::render::ObjectSource;

    fn object(value: Value) -> Object {
        let Value::Object(value) = value else {
            panic!()
        };
        Object {
            source: ObjectSource::File {
                path: PathBuf::from("k8s/app.yaml"),
            },
            document: 3,
            item: None,
            value,
        }
    }

    fn run(
        value: Value,
        source_default: Option<&str>,
        requested: Option<&str>,
    ) -> Result<Value, RenderError> {
        let mut o = object(value);
        apply(&mut o, &Scopes::new(&[]), source_default, requested, true)?;
        Ok(o.into_value())
    }

    #[test]
    fn sets_requested_namespace_on_namespaced_objects_without_one() {
        let out = run(
            json!({"apiVersion": "apps/v1", "kind": "Deployment", "metadata": {"name": "w"}}),
            None,
            Some("dev"),
        )
        .unwrap();
        assert_eq!(out["metadata"], json!({"name": "w", "namespace": "dev"}));
        // Empty counts as none; unknown kinds count as namespaced.
        let out = run(json!({"apiVersion": "example.com/v1", "kind": "Widget", "metadata": {"namespace": ""}}), None, Some("dev")).unwrap();
        assert_eq!(out["metadata"]["namespace"], "dev");
        let out = run(
            json!({"apiVersion": "v1", "kind": "ConfigMap"}),
            None,
            Some("dev"),
        )
        .unwrap();
        assert_eq!(out["metadata"], json!({"namespace": "dev"}));
        // Same namespace: fine; nothing requested: untouched.
        let same = json!({"apiVersion": "v1", "kind": "Service", "metadata": {"namespace": "dev"}});
        assert_eq!(run(same.clone(), None, Some("dev")).unwrap(), same);
        let none = json!({"apiVersion": "v1", "kind": "Service", "metadata": {"name": "s"}});
        assert_eq!(run(none.clone(), None, None).unwrap(), none);
    }

    #[test]
    fn leaves_cluster_scoped_objects_alone() {
        for (api_version, kind) in [
            ("v1", "Namespace"),
            ("v1", "PersistentVolume"),
            ("rbac.authorization.k8s.io/v1", "ClusterRole"),
            ("apiextensions.k8s.io/v1", "CustomResourceDefinition"),
            ("storage.k8s.io/v1", "StorageClass"),
            (
                "admissionregistration.k8s.io/v1",
                "ValidatingWebhookConfiguration",
            ),
            ("apiregistration.k8s.io/v1", "APIService"),
        ] {
            let obj = json!({"apiVersion": api_version, "kind": kind, "metadata": {"name": "x"}});
            assert_eq!(
                run(obj.clone(), Some("rel"), Some("dev")).unwrap(),
                obj,
                "{kind}"
            );
            // Even a stray namespace on a cluster-scoped object is not a conflict.
            let stray = json!({"apiVersion": api_version, "kind": kind, "metadata": {"namespace": "other"}});
            assert_eq!(
                run(stray.clone(), None, Some("dev")).unwrap(),
                stray,
                "{kind}"
            );
        }
        // The same kind name in another group is not the built-in one.
        let out = run(
            json!({"apiVersion": "example.com/v1", "kind": "Namespace"}),
            None,
            Some("dev"),
        )
        .unwrap();
        assert_eq!(out["metadata"]["namespace"], "dev");
    }

    #[test]
    fn conflicting_namespace_is_an_error_naming_object_and_file() {
        let err = run(json!({"apiVersion": "apps/v1", "kind": "Deployment", "metadata": {"name": "web", "namespace": "prod"}}), None, Some("dev")).unwrap_err();
        assert_eq!(
            err.to_string(),
            "Deployment `web` (k8s/app.yaml, document 3): the namespace from the provided object `prod` does not \
             match the namespace `dev` given with `-n`\n\nhint: pass `-n prod`, or leave `-n` out (objects then go \
             to the namespace they name), or remove `metadata.namespace` from the manifest"
        );
    }

    /// Regression (real clusters): a manifest or kustomization naming its namespace was refused on a context
    /// without a namespace, because the context's `default` was treated as if `-n default` had been given.
    #[test]
    fn a_default_namespace_never_overrides_or_refuses_the_one_an_object_names() {
        let mut o = object(
            json!({"apiVersion": "apps/v1", "kind": "Deployment", "metadata": {"name": "web", "namespace": "shop"}}),
        );
        apply(&mut o, &Scopes::new(&[]), None, Some("default"), false).unwrap();
        assert_eq!(o.namespace(), Some("shop"));
        let mut o =
            object(json!({"apiVersion": "v1", "kind": "Service", "metadata": {"name": "s"}}));
        apply(
            &mut o,
            &Scopes::new(&[]),
            Some("backend"),
            Some("default"),
            false,
        )
        .unwrap();
        assert_eq!(
            o.namespace(),
            Some("backend"),
            "the release's namespace wins over a default"
        );
        let mut o =
            object(json!({"apiVersion": "v1", "kind": "Service", "metadata": {"name": "s"}}));
        apply(&mut o, &Scopes::new(&[]), None, Some("default"), false).unwrap();
        assert_eq!(o.namespace(), Some("default"));
    }

    #[test]
    fn release_namespace_fills_in_and_can_conflict() {
        let out = run(
            json!({"apiVersion": "v1", "kind": "Service"}),
            Some("backend"),
            None,
        )
        .unwrap();
        assert_eq!(out["metadata"]["namespace"], "backend");
        let out = run(
            json!({"apiVersion": "v1", "kind": "Service", "metadata": {"namespace": "x"}}),
            Some("backend"),
            None,
        )
        .unwrap();
        assert_eq!(
            out["metadata"]["namespace"], "x",
            "the manifest wins over the release"
        );
        let out = run(
            json!({"apiVersion": "v1", "kind": "Service"}),
            Some("dev"),
            Some("dev"),
        )
        .unwrap();
        assert_eq!(out["metadata"]["namespace"], "dev");
        let err = run(
            json!({"apiVersion": "v1", "kind": "Service", "metadata": {"name": "s"}}),
            Some("backend"),
            Some("dev"),
        )
        .unwrap_err();
        assert!(
            matches!(&err, RenderError::NamespaceConflict { namespace, requested, .. } if namespace == "backend" && requested == "dev"),
            "{err}"
        );
    }

    #[test]
    fn crds_in_the_render_decide_the_scope_of_their_kinds() {
        let crd = |kind: &str, scope: &str| {
            object(
                json!({"apiVersion": "apiextensions.k8s.io/v1", "kind": "CustomResourceDefinition",
            "spec": {"group": "example.com", "scope": scope, "names": {"kind": kind}}}),
            )
        };
        let scopes = Scopes::new(&[crd("ClusterWidget", "Cluster"), crd("Widget", "Namespaced")]);
        assert!(!scopes.is_namespaced("example.com", "ClusterWidget"));
        assert!(scopes.is_namespaced("example.com", "Widget"));
        assert!(scopes.is_namespaced("other.com", "ClusterWidget"));
        let mut o = object(
            json!({"apiVersion": "example.com/v1", "kind": "ClusterWidget", "metadata": {"name": "c"}}),
        );
        apply(&mut o, &scopes, None, Some("dev"), true).unwrap();
        assert_eq!(o.namespace(), None);
    }
}
