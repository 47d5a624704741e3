//! Fake API server, writes: apply/merge-patch/create/update bodies → defaulted, validated objects in the store with
//! the recorded errors (02-ssa-*, 03-create-*, 09-*-in-terminating-namespace); must not skip admission steps the
//! real apiserver runs for these kinds (namespace lifecycle, immutability, name validation).

use serde_json::{Map, Value, json};

use super::fieldset::{self, Scope, Writer};
use super::resources::{self, ResourceDef};
use super::state::State;
use super::status::{ApiError, Cause, Details, qualified};
use super::util::{name_suffix, now_nanos, rfc3339, uuid};

/// Parses an apply body (YAML; kube-rs sends JSON, which is YAML).
pub fn parse_yaml(body: &[u8]) -> Result<Value, ApiError> {
    let text = String::from_utf8_lossy(body);
    serde_saphyr::from_str::<Value>(&text).map_err(|e| {
        ApiError::bad_request(format!(
            "error decoding YAML: error converting YAML to JSON: yaml: {}",
            e.to_string().lines().next().unwrap_or_default()
        ))
    })
}

fn image_pull_policy(image: &str) -> &'static str {
    let last = image.rsplit('/').next().unwrap_or(image);
    if image.contains('@') {
        return "IfNotPresent";
    }
    match last.split_once(':') {
        Some((_, "latest")) | None => "Always",
        Some(_) => "IfNotPresent",
    }
}

fn set_default(m: &mut Map<String, Value>, key: &str, v: Value) {
    if !m.contains_key(key) {
        m.insert(key.into(), v);
    }
}

fn default_probe(p: &mut Value) {
    let Some(m) = p.as_object_mut() else { return };
    set_default(m, "timeoutSeconds", json!(1));
    set_default(m, "periodSeconds", json!(10));
    set_default(m, "successThreshold", json!(1));
    set_default(m, "failureThreshold", json!(3));
    if let Some(h) = m.get_mut("httpGet").and_then(Value::as_object_mut) {
        set_default(h, "scheme", json!("HTTP"));
    }
}

fn default_pod_spec(spec: &mut Value) {
    let Some(s) = spec.as_object_mut() else {
        return;
    };
    for field in ["initContainers", "containers"] {
        for c in s
            .get_mut(field)
            .and_then(Value::as_array_mut)
            .into_iter()
            .flatten()
        {
            let Some(cm) = c.as_object_mut() else {
                continue;
            };
            set_default(cm, "resources", json!({}));
            set_default(cm, "terminationMessagePath", json!("/dev/termination-log"));
            set_default(cm, "terminationMessagePolicy", json!("File"));
            let policy =
                image_pull_policy(cm.get("image").and_then(Value::as_str).unwrap_or_default());
            set_default(cm, "imagePullPolicy", json!(policy));
            for p in cm
                .get_mut("ports")
                .and_then(Value::as_array_mut)
                .into_iter()
                .flatten()
            {
                if let Some(pm) = p.as_object_mut() {
                    set_default(pm, "protocol", json!("TCP"));
                }
            }
            for probe in ["livenessProbe", "readinessProbe", "startupProbe"] {
                if let Some(p) = cm.get_mut(probe) {
                    default_probe(p);
                }
            }
        }
    }
    set_default(s, "restartPolicy", json!("Always"));
    set_default(s, "terminationGracePeriodSeconds", json!(30));
    set_default(s, "dnsPolicy", json!("ClusterFirst"));
    set_default(s, "securityContext", json!({}));
    set_default(s, "schedulerName", json!("default-scheduler"));
}

fn default_template(obj: &mut Value) {
    if let Some(t) = obj
        .pointer_mut("/spec/template")
        .and_then(Value::as_object_mut)
    {
        let meta = t.entry("metadata").or_insert_with(|| json!({}));
        if let Some(m) = meta.as_object_mut() {
            set_default(m, "creationTimestamp", Value::Null);
        }
        if let Some(spec) = t.get_mut("spec") {
            default_pod_spec(spec);
        }
    }
}

fn spec_obj(obj: &mut Value) -> Option<&mut Map<String, Value>> {
    if !obj.get("spec").is_some_and(Value::is_object) {
        obj["spec"] = json!({});
    }
    obj.get_mut("spec").and_then(Value::as_object_mut)
}

/// Fills the defaults the apiserver's defaulting functions set for the kinds devloop deploys.
pub fn defaults(res: &ResourceDef, obj: &mut Value) {
    match res.kind {
        "Pod" => {
            if let Some(spec) = obj.get_mut("spec") {
                default_pod_spec(spec);
            }
        }
        "Deployment" => {
            if let Some(s) = spec_obj(obj) {
                set_default(s, "replicas", json!(1));
                set_default(
                    s,
                    "strategy",
                    json!({"type": "RollingUpdate", "rollingUpdate": {"maxUnavailable": "25%", "maxSurge": "25%"}}),
                );
                set_default(s, "revisionHistoryLimit", json!(10));
                set_default(s, "progressDeadlineSeconds", json!(600));
            }
            default_template(obj);
        }
        "ReplicaSet" => {
            if let Some(s) = spec_obj(obj) {
                set_default(s, "replicas", json!(1));
            }
            default_template(obj);
        }
        "StatefulSet" => {
            if let Some(s) = spec_obj(obj) {
                set_default(s, "replicas", json!(1));
                set_default(s, "podManagementPolicy", json!("OrderedReady"));
                set_default(
                    s,
                    "updateStrategy",
                    json!({"type": "RollingUpdate", "rollingUpdate": {"partition": 0}}),
                );
                set_default(s, "revisionHistoryLimit", json!(10));
                set_default(
                    s,
                    "persistentVolumeClaimRetentionPolicy",
                    json!({"whenDeleted": "Retain", "whenScaled": "Retain"}),
                );
            }
            default_template(obj);
        }
        "DaemonSet" => {
            if let Some(s) = spec_obj(obj) {
                set_default(
                    s,
                    "updateStrategy",
                    json!({"type": "RollingUpdate", "rollingUpdate": {"maxUnavailable": 1, "maxSurge": 0}}),
                );
                set_default(s, "revisionHistoryLimit", json!(10));
            }
            default_template(obj);
        }
        "Job" => {
            if let Some(s) = spec_obj(obj) {
                set_default(s, "parallelism", json!(1));
                set_default(s, "completions", json!(1));
                set_default(s, "backoffLimit", json!(6));
                set_default(s, "completionMode", json!("NonIndexed"));
                set_default(s, "suspend", json!(false));
                set_default(s, "podReplacementPolicy", json!("TerminatingOrFailed"));
            }
            default_template(obj);
        }
        "CronJob" => {
            if let Some(s) = spec_obj(obj) {
                set_default(s, "concurrencyPolicy", json!("Allow"));
                set_default(s, "suspend", json!(false));
                set_default(s, "successfulJobsHistoryLimit", json!(3));
                set_default(s, "failedJobsHistoryLimit", json!(1));
            }
            if let Some(t) = obj.pointer_mut("/spec/jobTemplate") {
                let mut wrapper =
                    json!({"spec": t.get("spec").cloned().unwrap_or_else(|| json!({}))});
                default_template(&mut wrapper);
                t["spec"] = wrapper["spec"].take();
                if t.get("metadata").is_none() {
                    t["metadata"] = json!({"creationTimestamp": null});
                }
            }
        }
        "Service" => {
            if let Some(s) = spec_obj(obj) {
                set_default(s, "type", json!("ClusterIP"));
                set_default(s, "sessionAffinity", json!("None"));
                set_default(s, "internalTrafficPolicy", json!("Cluster"));
                for p in s
                    .get_mut("ports")
                    .and_then(Value::as_array_mut)
                    .into_iter()
                    .flatten()
                {
                    if let Some(pm) = p.as_object_mut() {
                        set_default(pm, "protocol", json!("TCP"));
                        if let Some(port) = pm.get("port").cloned() {
                            set_default(pm, "targetPort", port);
                        }
                    }
                }
            }
        }
        "Secret" => {
            if let Some(m) = obj.as_object_mut() {
                set_default(m, "type", json!("Opaque"));
            }
        }
        "PersistentVolume" => {
            if let Some(s) = spec_obj(obj) {
                set_default(s, "persistentVolumeReclaimPolicy", json!("Retain"));
                set_default(s, "volumeMode", json!("Filesystem"));
                if let Some(hp) = s.get_mut("hostPath").and_then(Value::as_object_mut) {
                    set_default(hp, "type", json!(""));
                }
            }
        }
        "PersistentVolumeClaim" => {
            if let Some(s) = spec_obj(obj) {
                set_default(s, "volumeMode", json!("Filesystem"));
            }
        }
        "StorageClass" => {
            if let Some(m) = obj.as_object_mut() {
                set_default(m, "reclaimPolicy", json!("Delete"));
                set_default(m, "volumeBindingMode", json!("Immediate"));
            }
        }
        _ => {}
    }
}

/// Admission on create: server-generated fields (Job selectors, namespace label, pod service-account volume,
/// service cluster IP) and the initial `status`.
pub fn admit_create(state: &mut State, res: &ResourceDef, obj: &mut Value) {
    let name = obj
        .pointer("/metadata/name")
        .and_then(Value::as_str)
        .unwrap_or_default()
        .to_string();
    match res.kind {
        "Namespace" => {
            obj["metadata"]["labels"]["kubernetes.io/metadata.name"] = json!(name);
            obj["spec"]["finalizers"] = json!(["kubernetes"]);
            obj["status"] = json!({"phase": "Active"});
        }
        "Job" => {
            let uid = uuid();
            obj["metadata"]["uid"] = json!(uid);
            let manual = obj
                .pointer("/spec/manualSelector")
                .and_then(Value::as_bool)
                .unwrap_or(false);
            if !manual && obj.pointer("/spec/selector").is_none() {
                let labels = json!({
                    "batch.kubernetes.io/controller-uid": uid,
                    "batch.kubernetes.io/job-name": name,
                    "controller-uid": uid,
                    "job-name": name,
                });
                for (k, v) in labels.as_object().into_iter().flatten() {
                    obj["metadata"]["labels"][k] = v.clone();
                    obj["spec"]["template"]["metadata"]["labels"][k] = v.clone();
                }
                obj["spec"]["selector"] =
                    json!({"matchLabels": {"batch.kubernetes.io/controller-uid": uid}});
                obj["spec"]["manualSelector"] = json!(false);
            }
            obj["status"] = json!({});
        }
        "Pod" => {
            let vol = format!("kube-api-access-{}", name_suffix());
            if let Some(spec) = obj.get_mut("spec").and_then(Value::as_object_mut) {
                set_default(spec, "serviceAccountName", json!("default"));
                let sa = spec["serviceAccountName"].clone();
                set_default(spec, "serviceAccount", sa);
                set_default(spec, "priority", json!(0));
                set_default(spec, "enableServiceLinks", json!(true));
                set_default(spec, "preemptionPolicy", json!("PreemptLowerPriority"));
                set_default(
                    spec,
                    "tolerations",
                    json!([
                        {"key": "node.kubernetes.io/not-ready", "operator": "Exists", "effect": "NoExecute", "tolerationSeconds": 300},
                        {"key": "node.kubernetes.io/unreachable", "operator": "Exists", "effect": "NoExecute", "tolerationSeconds": 300}
                    ]),
                );
                let volumes = spec.entry("volumes").or_insert_with(|| json!([]));
                if let Some(a) = volumes.as_array_mut() {
                    a.push(json!({"name": vol, "projected": {"sources": [
                        {"serviceAccountToken": {"expirationSeconds": 3607, "path": "token"}},
                        {"configMap": {"name": "kube-root-ca.crt", "items": [{"key": "ca.crt", "path": "ca.crt"}]}},
                        {"downwardAPI": {"items": [{"path": "namespace", "fieldRef": {"apiVersion": "v1", "fieldPath": "metadata.namespace"}}]}}
                    ], "defaultMode": 420}}));
                }
                for c in spec
                    .get_mut("containers")
                    .and_then(Value::as_array_mut)
                    .into_iter()
                    .flatten()
                {
                    let mounts = c
                        .as_object_mut()
                        .map(|m| m.entry("volumeMounts").or_insert_with(|| json!([])));
                    if let Some(Value::Array(a)) = mounts {
                        a.push(json!({"name": vol, "readOnly": true, "mountPath": "/var/run/secrets/kubernetes.io/serviceaccount"}));
                    }
                }
            }
            obj["status"] = json!({"phase": "Pending", "qosClass": "BestEffort"});
        }
        "Service" => {
            state.ip_seq += 1;
            let ip = format!(
                "10.96.{}.{}",
                (state.ip_seq / 250) % 250,
                state.ip_seq % 250 + 1
            );
            if let Some(spec) = obj.get_mut("spec").and_then(Value::as_object_mut) {
                if spec.get("clusterIP").is_none() {
                    spec.insert("clusterIP".into(), json!(ip));
                }
                let cip = spec["clusterIP"].clone();
                set_default(spec, "clusterIPs", json!([cip]));
                set_default(spec, "ipFamilies", json!(["IPv4"]));
                set_default(spec, "ipFamilyPolicy", json!("SingleStack"));
            }
            obj["status"] = json!({"loadBalancer": {}});
        }
        "Ingress" => obj["status"] = json!({"loadBalancer": {}}),
        // The storage-object-in-use admission plugin; the PV controller sets Available right after.
        "PersistentVolume" => {
            obj["metadata"]["finalizers"] = json!(["kubernetes.io/pv-protection"]);
            obj["status"] =
                json!({"phase": "Pending", "lastPhaseTransitionTime": rfc3339(now_nanos())});
        }
        "PersistentVolumeClaim" => {
            obj["metadata"]["finalizers"] = json!(["kubernetes.io/pvc-protection"]);
            obj["status"] = json!({"phase": "Pending"});
        }
        _ if res.has_status() => obj["status"] = json!({}),
        _ => {}
    }
}

const SUBDOMAIN_MSG: &str = "a lowercase RFC 1123 subdomain must consist of lower case alphanumeric characters, '-' or '.', and must start and end with an alphanumeric character (e.g. 'example.com', regex used for validation is '[a-z0-9]([-a-z0-9]*[a-z0-9])?(\\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*')";
const LABEL_MSG: &str = "a lowercase RFC 1123 label must consist of lower case alphanumeric characters or '-', and must start and end with an alphanumeric character (e.g. 'my-name',  or '123-abc', regex used for validation is '[a-z0-9]([-a-z0-9]*[a-z0-9])?')";
const DNS1035_MSG: &str = "a DNS-1035 label must consist of lower case alphanumeric characters or '-', start with an alphabetic character, and end with an alphanumeric character (e.g. 'my-name',  or 'abc-123', regex used for validation is '[a-z]([-a-z0-9]*[a-z0-9])?')";

fn is_label(s: &str) -> bool {
    !s.is_empty()
        && s.len() <= 63
        && s.bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-')
        && !s.starts_with('-')
        && !s.ends_with('-')
}

/// Validates an object name; returns the cause for `metadata.name`.
pub fn validate_name(kind: &str, name: &str) -> Option<Cause> {
    let (ok, msg, max) = match kind {
        "Namespace" => (is_label(name), LABEL_MSG, 63),
        "Service" => (
            is_label(name) && name.starts_with(|c: char| c.is_ascii_lowercase()),
            DNS1035_MSG,
            63,
        ),
        _ => (
            name.len() <= 253 && name.split('.').all(is_label),
            SUBDOMAIN_MSG,
            253,
        ),
    };
    if name.len() > max {
        return Some(Cause {
            reason: "FieldValueInvalid",
            message: format!("Invalid value: {name:?}: must be no more than {max} characters"),
            field: "metadata.name".into(),
        });
    }
    (!ok).then(|| Cause {
        reason: "FieldValueInvalid",
        message: format!("Invalid value: {name:?}: {msg}"),
        field: "metadata.name".into(),
    })
}

fn go_string_map(m: Option<&Value>) -> String {
    let mut pairs: Vec<(String, String)> = m
        .and_then(Value::as_object)
        .map(|m| {
            m.iter()
                .map(|(k, v)| (k.clone(), v.as_str().unwrap_or_default().to_string()))
                .collect()
        })
        .unwrap_or_default();
    pairs.sort();
    let inner: Vec<String> = pairs.iter().map(|(k, v)| format!("{k:?}:{v:?}")).collect();
    format!("map[string]string{{{}}}", inner.join(", "))
}

fn invalid(field: impl Into<String>, message: String) -> Cause {
    Cause {
        reason: "FieldValueInvalid",
        message,
        field: field.into(),
    }
}

fn validate_pod_spec(spec: &Value, prefix: &str, causes: &mut Vec<Cause>) {
    let containers = spec["containers"]
        .as_array()
        .map(Vec::as_slice)
        .unwrap_or_default();
    if containers.is_empty() {
        causes.push(Cause {
            reason: "FieldValueRequired",
            message: "Required value".into(),
            field: format!("{prefix}.containers"),
        });
    }
    for (i, c) in containers.iter().enumerate() {
        if c["image"].as_str().is_none_or(str::is_empty) {
            causes.push(Cause {
                reason: "FieldValueRequired",
                message: "Required value".into(),
                field: format!("{prefix}.containers[{i}].image"),
            });
        }
        for (j, p) in c["ports"].as_array().into_iter().flatten().enumerate() {
            let port = p["containerPort"].as_i64().unwrap_or(0);
            if !(1..=65535).contains(&port) {
                causes.push(invalid(
                    format!("{prefix}.containers[{i}].ports[{j}].containerPort"),
                    format!("Invalid value: {port}: must be between 1 and 65535, inclusive"),
                ));
            }
        }
    }
}

/// Validates an object (and, for updates, immutable fields against `old`).
pub fn validate(res: &ResourceDef, obj: &Value, old: Option<&Value>) -> Result<(), ApiError> {
    let name = obj
        .pointer("/metadata/name")
        .and_then(Value::as_str)
        .unwrap_or_default();
    let mut causes = Vec::new();
    if old.is_none()
        && let Some(c) = validate_name(res.kind, name)
    {
        causes.push(c);
    }
    match res.kind {
        "Deployment" | "ReplicaSet" | "StatefulSet" | "DaemonSet" => {
            if let Some(r) = obj.pointer("/spec/replicas").and_then(Value::as_i64)
                && r < 0
            {
                causes.push(invalid(
                    "spec.replicas",
                    format!("Invalid value: {r}: must be greater than or equal to 0"),
                ));
            }
            let selector = obj
                .pointer("/spec/selector/matchLabels")
                .and_then(Value::as_object);
            let labels = obj.pointer("/spec/template/metadata/labels");
            match selector {
                None if obj.pointer("/spec/selector").is_none() => causes.push(Cause {
                    reason: "FieldValueRequired",
                    message: "Required value".into(),
                    field: "spec.selector".into(),
                }),
                Some(sel) => {
                    let matches = sel
                        .iter()
                        .all(|(k, v)| labels.and_then(|l| l.get(k)) == Some(v));
                    if !matches {
                        causes.push(invalid(
                            "spec.template.metadata.labels",
                            format!(
                                "Invalid value: {}: `selector` does not match template `labels`",
                                go_string_map(labels)
                            ),
                        ));
                    }
                }
                None => {}
            }
            validate_pod_spec(
                &obj["spec"]["template"]["spec"],
                "spec.template.spec",
                &mut causes,
            );
            if let Some(old) = old
                && res.kind != "ReplicaSet"
                && old.pointer("/spec/selector") != obj.pointer("/spec/selector")
            {
                causes.push(invalid(
                    "spec.selector",
                    format!(
                        "Invalid value: v1.LabelSelector{{MatchLabels:{}, MatchExpressions:[]v1.LabelSelectorRequirement(nil)}}: field is immutable",
                        go_string_map(obj.pointer("/spec/selector/matchLabels"))
                    ),
                ));
            }
        }
        "Job" => {
            let rp = obj
                .pointer("/spec/template/spec/restartPolicy")
                .and_then(Value::as_str)
                .unwrap_or("Always");
            if rp != "Never" && rp != "OnFailure" {
                causes.push(Cause {
                    reason: "FieldValueNotSupported",
                    message: format!(
                        "Unsupported value: {rp:?}: supported values: \"OnFailure\", \"Never\""
                    ),
                    field: "spec.template.spec.restartPolicy".into(),
                });
            }
            validate_pod_spec(
                &obj["spec"]["template"]["spec"],
                "spec.template.spec",
                &mut causes,
            );
            if let Some(old) = old
                && old.pointer("/spec/template") != obj.pointer("/spec/template")
            {
                causes.push(invalid(
                    "spec.template",
                    format!(
                        "Invalid value: core.PodTemplateSpec{}: field is immutable",
                        obj["spec"]["template"]
                    ),
                ));
            }
        }
        "Pod" => {
            validate_pod_spec(&obj["spec"], "spec", &mut causes);
            if let Some(old) = old {
                let mutable_stripped = |spec: &Value| {
                    let mut s = spec.clone();
                    for field in ["containers", "initContainers"] {
                        for c in s
                            .get_mut(field)
                            .and_then(Value::as_array_mut)
                            .into_iter()
                            .flatten()
                        {
                            c["image"] = Value::Null;
                        }
                    }
                    if let Some(m) = s.as_object_mut() {
                        for f in [
                            "activeDeadlineSeconds",
                            "tolerations",
                            "terminationGracePeriodSeconds",
                        ] {
                            m.shift_remove(f);
                        }
                    }
                    s
                };
                if mutable_stripped(&old["spec"]) != mutable_stripped(&obj["spec"]) {
                    causes.push(Cause {
                        reason: "FieldValueForbidden",
                        message: format!(
                            "Forbidden: pod updates may not change fields other than `spec.containers[*].image`,`spec.initContainers[*].image`,`spec.activeDeadlineSeconds`,`spec.tolerations` (only additions to existing tolerations),`spec.terminationGracePeriodSeconds` (allow it to be set to 1 if it was previously negative)\n  core.PodSpec{{\n- {}\n+ {}\n  }}\n",
                            old["spec"], obj["spec"]
                        ),
                        field: "spec".into(),
                    });
                }
            }
        }
        _ => {}
    }
    if causes.is_empty() {
        Ok(())
    } else {
        Err(ApiError::invalid(res.kind, res.group, name, causes))
    }
}

fn allowed_top_level(kind: &str) -> &'static [&'static str] {
    match kind {
        "ConfigMap" => &["data", "binaryData", "immutable"],
        "Secret" => &["data", "stringData", "type", "immutable"],
        "ServiceAccount" => &[
            "secrets",
            "imagePullSecrets",
            "automountServiceAccountToken",
        ],
        "Event" => &[
            "involvedObject",
            "reason",
            "message",
            "source",
            "firstTimestamp",
            "lastTimestamp",
            "count",
            "type",
            "eventTime",
            "series",
            "action",
            "related",
            "reportingComponent",
            "reportingInstance",
        ],
        "StorageClass" => &[
            "provisioner",
            "parameters",
            "reclaimPolicy",
            "mountOptions",
            "allowVolumeExpansion",
            "volumeBindingMode",
            "allowedTopologies",
        ],
        _ => &["spec", "status"],
    }
}

const METADATA_FIELDS: &[&str] = &[
    "name",
    "generateName",
    "namespace",
    "uid",
    "resourceVersion",
    "generation",
    "creationTimestamp",
    "deletionTimestamp",
    "deletionGracePeriodSeconds",
    "labels",
    "annotations",
    "ownerReferences",
    "finalizers",
    "managedFields",
    "selfLink",
];

/// The typed-patch checks of server-side apply: unknown fields and non-string values in string maps → 500.
fn typed_check(
    res: &ResourceDef,
    obj: &Value,
    namespace: &str,
    name: &str,
) -> Result<(), ApiError> {
    let fail = |detail: String| {
        let id = if namespace.is_empty() {
            name.to_string()
        } else {
            format!("{namespace}/{name}")
        };
        ApiError::internal(format!(
            "failed to create typed patch object ({id}; {}/{}, Kind={}): {detail}",
            res.group, res.version, res.kind
        ))
    };
    let Some(m) = obj.as_object() else {
        return Err(ApiError::bad_request("Object 'Kind' is missing in 'null'"));
    };
    let allowed = allowed_top_level(res.kind);
    for k in m.keys() {
        if !["apiVersion", "kind", "metadata"].contains(&k.as_str())
            && !allowed.contains(&k.as_str())
        {
            return Err(fail(format!(".{k}: field not declared in schema")));
        }
    }
    if let Some(meta) = m.get("metadata").and_then(Value::as_object) {
        for k in meta.keys() {
            if !METADATA_FIELDS.contains(&k.as_str()) {
                return Err(fail(format!(".metadata.{k}: field not declared in schema")));
            }
        }
    }
    let string_maps: &[&str] = match res.kind {
        "ConfigMap" => &["/data"],
        "Secret" => &["/data", "/stringData"],
        _ => &[],
    };
    for ptr in string_maps
        .iter()
        .chain(&["/metadata/labels", "/metadata/annotations"])
    {
        for (k, v) in obj
            .pointer(ptr)
            .and_then(Value::as_object)
            .into_iter()
            .flatten()
        {
            if !v.is_string() {
                let dotted = ptr.replace('/', ".");
                return Err(fail(format!(
                    "{dotted}.{k}: expected string, got &value.valueUnstructured{{Value:{v}}}"
                )));
            }
        }
    }
    Ok(())
}

/// Namespace lifecycle admission for creates: missing → 404, terminating → 403 (09-*-in-terminating-namespace).
pub fn check_namespace(
    state: &State,
    res: &ResourceDef,
    namespace: &str,
    name: &str,
) -> Result<(), ApiError> {
    if !res.namespaced {
        return Ok(());
    }
    let ns_res = resources::find_kind("Namespace").expect("namespaces are in the table");
    match state.get(ns_res, "", namespace) {
        None => Err(ApiError::not_found("namespaces", "", namespace)),
        Some(ns) if ns.pointer("/status/phase") == Some(&json!("Terminating")) => {
            let mut d = Details::object(Some(name), res.group, res.plural);
            d.causes.push(Cause {
                reason: "NamespaceTerminating",
                message: format!("namespace {namespace} is being terminated"),
                field: "metadata.namespace".into(),
            });
            Err(ApiError::Status {
                code: 403,
                reason: Some("Forbidden"),
                message: format!(
                    "{} \"{name}\" is forbidden: unable to create new content in namespace {namespace} because it is being terminated",
                    qualified(res.plural, res.group)
                ),
                details: Some(Box::new(d)),
            })
        }
        Some(_) => Ok(()),
    }
}

fn identity_checks(
    res: &ResourceDef,
    body: &Value,
    namespace: &str,
    name: &str,
) -> Result<(), ApiError> {
    let api_version = body["apiVersion"].as_str().unwrap_or_default();
    let kind = body["kind"].as_str().unwrap_or_default();
    if kind.is_empty() {
        return Err(ApiError::bad_request(format!(
            "Object 'Kind' is missing in '{body}'"
        )));
    }
    if api_version != res.api_version() || kind != res.kind {
        return Err(ApiError::bad_request(format!(
            "the API version in the data ({api_version}) does not match the expected API version ({})",
            res.api_version()
        )));
    }
    let body_name = body
        .pointer("/metadata/name")
        .and_then(Value::as_str)
        .unwrap_or_default();
    if !name.is_empty() && body_name != name {
        return Err(ApiError::bad_request(format!(
            "the name of the object ({body_name}) does not match the name on the URL ({name})"
        )));
    }
    if res.namespaced
        && let Some(ns) = body.pointer("/metadata/namespace").and_then(Value::as_str)
        && !ns.is_empty()
        && ns != namespace
    {
        return Err(ApiError::bad_request(
            "the namespace of the provided object does not match the namespace sent on the request",
        ));
    }
    Ok(())
}

fn scope_of(res: &ResourceDef) -> Scope {
    if res.has_status() {
        Scope::Main
    } else {
        Scope::All
    }
}

/// Result of a successful write: HTTP status code and the object to return.
pub type WriteResult = Result<(u16, Value), ApiError>;

fn finish_write(
    state: &mut State,
    res: &'static ResourceDef,
    old: Option<&Value>,
    mut obj: Value,
    namespace: &str,
) -> WriteResult {
    obj["apiVersion"] = json!(res.api_version());
    obj["kind"] = json!(res.kind);
    if res.namespaced {
        obj["metadata"]["namespace"] = json!(namespace);
    } else if let Some(m) = obj.get_mut("metadata").and_then(Value::as_object_mut) {
        m.shift_remove("namespace");
    }
    defaults(res, &mut obj);
    let name = obj
        .pointer("/metadata/name")
        .and_then(Value::as_str)
        .unwrap_or_default()
        .to_string();
    match old {
        None => {
            check_namespace(state, res, namespace, &name)?;
            validate(res, &obj, None)?;
            admit_create(state, res, &mut obj);
            Ok((201, state.insert_new(res, obj)))
        }
        Some(old) => {
            if res.has_status() {
                obj["status"] = old.get("status").cloned().unwrap_or(Value::Null);
            }
            validate(res, &obj, Some(old))?;
            if obj == *old {
                return Ok((200, old.clone()));
            }
            Ok((200, state.replace(res, obj)))
        }
    }
}

/// `PATCH` with `application/apply-patch+yaml`.
pub fn apply(
    state: &mut State,
    res: &'static ResourceDef,
    namespace: &str,
    name: &str,
    body: &[u8],
    query: &[(String, String)],
) -> WriteResult {
    let param = |k: &str| query.iter().find(|(q, _)| q == k).map(|(_, v)| v.as_str());
    let manager = param("fieldManager").unwrap_or_default();
    if manager.is_empty() {
        let mut d = Details::object(None, "meta.k8s.io", "PatchOptions");
        d.causes.push(Cause {
            reason: "FieldValueRequired",
            message: "Required value: is required for apply patch".into(),
            field: "fieldManager".into(),
        });
        return Err(ApiError::Status {
            code: 422,
            reason: Some("Invalid"),
            message: "PatchOptions.meta.k8s.io \"\" is invalid: fieldManager: Required value: is required for apply patch".into(),
            details: Some(Box::new(d)),
        });
    }
    let force = param("force") == Some("true");
    let applied = parse_yaml(body)?;
    identity_checks(res, &applied, namespace, name)?;
    typed_check(res, &applied, namespace, name)?;

    let live = state.get(res, namespace, name).cloned();
    let mut stripped = applied.clone();
    if let Some(m) = stripped.as_object_mut() {
        m.shift_remove("apiVersion");
        m.shift_remove("kind");
        if res.has_status() {
            m.shift_remove("status");
        }
        if let Some(meta) = m.get_mut("metadata").and_then(Value::as_object_mut) {
            for f in [
                "uid",
                "resourceVersion",
                "generation",
                "creationTimestamp",
                "managedFields",
                "namespace",
                "name",
            ] {
                meta.shift_remove(f);
            }
        }
    }
    let base = live
        .clone()
        .unwrap_or_else(|| json!({"metadata": {"name": name}}));
    let now = rfc3339(now_nanos());
    let api_version = res.api_version();
    let writer = Writer {
        manager,
        api_version: &api_version,
        now: &now,
    };
    let outcome =
        fieldset::apply_ownership(res.kind, &base, &stripped, writer, force, scope_of(res))
            .map_err(conflict_error)?;
    let mut obj = outcome.object;
    fieldset::write_entries(&mut obj, &outcome.entries);
    if live.is_none() && res.namespaced {
        check_namespace(state, res, namespace, name)?;
    }
    finish_write(state, res, live.as_ref(), obj, namespace)
}

fn conflict_error(conflicts: Vec<fieldset::Conflict>) -> ApiError {
    let n = conflicts.len();
    let message = if n == 1 {
        format!(
            "Apply failed with 1 conflict: conflict with {}: {}",
            conflicts[0].manager,
            fieldset::path_string(&conflicts[0].path)
        )
    } else {
        let mut managers: Vec<&str> = conflicts.iter().map(|c| c.manager.as_str()).collect();
        managers.sort_unstable();
        managers.dedup();
        let mut lines = Vec::new();
        for m in managers {
            lines.push(format!("conflicts with {m}:"));
            for c in conflicts.iter().filter(|c| c.manager == m) {
                lines.push(format!("- {}", fieldset::path_string(&c.path)));
            }
        }
        format!("Apply failed with {n} conflicts: {}", lines.join("\n"))
    };
    let causes = conflicts
        .iter()
        .map(|c| Cause {
            reason: "FieldManagerConflict",
            message: format!("conflict with {}", c.manager),
            field: fieldset::path_string(&c.path),
        })
        .collect();
    ApiError::Status {
        code: 409,
        reason: Some("Conflict"),
        message,
        details: Some(Box::new(Details {
            causes,
            ..Default::default()
        })),
    }
}

/// RFC 7386 JSON merge patch.
pub fn merge_patch(target: &Value, patch: &Value) -> Value {
    match patch {
        Value::Object(p) => {
            let mut out = target.as_object().cloned().unwrap_or_default();
            for (k, v) in p {
                if v.is_null() {
                    out.shift_remove(k);
                } else {
                    let merged = merge_patch(out.get(k).unwrap_or(&Value::Null), v);
                    out.insert(k.clone(), merged);
                }
            }
            Value::Object(out)
        }
        other => other.clone(),
    }
}

/// `PATCH` with a merge patch (`application/merge-patch+json`; strategic merge patches are treated the same) on
/// the main resource (`status = false`) or the status subresource.
pub fn patch(
    state: &mut State,
    res: &'static ResourceDef,
    namespace: &str,
    name: &str,
    body: &[u8],
    query: &[(String, String)],
    status: bool,
) -> WriteResult {
    let live = state
        .get(res, namespace, name)
        .cloned()
        .ok_or_else(|| ApiError::not_found(res.plural, res.group, name))?;
    let p: Value = serde_json::from_slice(body)
        .map_err(|e| ApiError::bad_request(format!("error decoding patch: {e}")))?;
    let patched = merge_patch(&live, &p);
    write_update(state, res, namespace, &live, patched, query, status)
}

fn write_update(
    state: &mut State,
    res: &'static ResourceDef,
    namespace: &str,
    live: &Value,
    mut new: Value,
    query: &[(String, String)],
    status: bool,
) -> WriteResult {
    let manager = query
        .iter()
        .find(|(k, _)| k == "fieldManager")
        .map_or("unknown", |(_, v)| v.as_str());
    if status {
        let st = new.get("status").cloned().unwrap_or(Value::Null);
        new = live.clone();
        new["status"] = st;
    } else if res.has_status() {
        new["status"] = live.get("status").cloned().unwrap_or(Value::Null);
    }
    for f in [
        "uid",
        "creationTimestamp",
        "name",
        "namespace",
        "deletionTimestamp",
    ] {
        match live.pointer(&format!("/metadata/{f}")) {
            Some(v) => new["metadata"][f] = v.clone(),
            None => {
                if let Some(m) = new.get_mut("metadata").and_then(Value::as_object_mut) {
                    m.shift_remove(f);
                }
            }
        }
    }
    new["metadata"]["managedFields"] = live
        .pointer("/metadata/managedFields")
        .cloned()
        .unwrap_or(json!([]));
    let now = rfc3339(now_nanos());
    let api_version = res.api_version();
    let (subresource, scope) = if status {
        (Some("status"), Scope::Status)
    } else {
        (None, scope_of(res))
    };
    fieldset::update_ownership(
        res.kind,
        Some(live),
        &mut new,
        Writer {
            manager,
            api_version: &api_version,
            now: &now,
        },
        subresource,
        scope,
    );
    if status {
        if new == *live {
            return Ok((200, live.clone()));
        }
        return Ok((200, state.replace(res, new)));
    }
    finish_write(state, res, Some(live), new, namespace)
}

/// `PUT` of the main resource or the status subresource (optimistic concurrency on `metadata.resourceVersion`).
pub fn put(
    state: &mut State,
    res: &'static ResourceDef,
    namespace: &str,
    name: &str,
    body: &[u8],
    query: &[(String, String)],
    status: bool,
) -> WriteResult {
    let new: Value = serde_json::from_slice(body)
        .map_err(|e| ApiError::bad_request(format!("error decoding body: {e}")))?;
    identity_checks(res, &new, namespace, name)?;
    let live = state
        .get(res, namespace, name)
        .cloned()
        .ok_or_else(|| ApiError::not_found(res.plural, res.group, name))?;
    if let Some(rv) = new
        .pointer("/metadata/resourceVersion")
        .and_then(Value::as_str)
        && Some(rv)
            != live
                .pointer("/metadata/resourceVersion")
                .and_then(Value::as_str)
    {
        return Err(ApiError::Status {
            code: 409,
            reason: Some("Conflict"),
            message: format!(
                "Operation cannot be fulfilled on {} \"{name}\": the object has been modified; please apply your changes to the latest version and try again",
                qualified(res.plural, res.group)
            ),
            details: Some(Box::new(Details::object(Some(name), res.group, res.plural))),
        });
    }
    write_update(state, res, namespace, &live, new, query, status)
}

/// `POST` (create); `generateName` is honoured.
pub fn create(
    state: &mut State,
    res: &'static ResourceDef,
    namespace: &str,
    body: &[u8],
    query: &[(String, String)],
) -> WriteResult {
    let mut obj: Value = serde_json::from_slice(body)
        .map_err(|e| ApiError::bad_request(format!("error decoding body: {e}")))?;
    identity_checks(res, &obj, namespace, "")?;
    if obj
        .pointer("/metadata/name")
        .and_then(Value::as_str)
        .is_none_or(str::is_empty)
    {
        match obj
            .pointer("/metadata/generateName")
            .and_then(Value::as_str)
        {
            Some(g) => obj["metadata"]["name"] = json!(format!("{g}{}", name_suffix())),
            None => {
                return Err(ApiError::invalid(
                    res.kind,
                    res.group,
                    "",
                    vec![Cause {
                        reason: "FieldValueRequired",
                        message: "Required value: name or generateName is required".into(),
                        field: "metadata.name".into(),
                    }],
                ));
            }
        }
    }
    let name = obj["metadata"]["name"]
        .as_str()
        .unwrap_or_default()
        .to_string();
    if state.get(res, namespace, &name).is_some() {
        return Err(ApiError::already_exists(res.plural, res.group, &name));
    }
    check_namespace(state, res, namespace, &name)?;
    let manager = query
        .iter()
        .find(|(k, _)| k == "fieldManager")
        .map_or("unknown", |(_, v)| v.as_str());
    let now = rfc3339(now_nanos());
    let api_version = res.api_version();
    fieldset::update_ownership(
        res.kind,
        None,
        &mut obj,
        Writer {
            manager,
            api_version: &api_version,
            now: &now,
        },
        None,
        scope_of(res),
    );
    finish_write(state, res, None, obj, namespace)
}
