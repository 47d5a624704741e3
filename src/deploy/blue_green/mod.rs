//! Deploy, blue/green releases, the plan: rendered objects + each configured Service's live colour (as the cluster
//! has it) → the objects a release applies (each Deployment behind the Service replaced by its copy in the new
//! colour, a `<service>-preview` Service for the new copy, the Service itself still on the live colour) and the
//! switches to make once the copies are ready. Pure: reads no cluster, changes nothing.

use std::collections::{BTreeMap, BTreeSet};

use serde_json::{Map, Value, json};

use super::{DeployError, ObjectRef};
use crate::config::blue_green::BlueGreen;
use crate::labels::{
    ANNOTATION_COMMIT, ANNOTATION_COPY_OF, ANNOTATION_IMAGES, ANNOTATION_LIVE_COLOR,
    ANNOTATION_LIVE_SINCE, ANNOTATION_PREVIOUS_COLOR, KUBE_COLOR,
};

/// The two colours a release alternates between.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum Color {
    Blue,
    Green,
}

impl Color {
    /// The label value.
    pub fn as_str(self) -> &'static str {
        match self {
            Color::Blue => "blue",
            Color::Green => "green",
        }
    }

    /// The label value read back.
    pub fn parse(s: &str) -> Option<Color> {
        match s {
            "blue" => Some(Color::Blue),
            "green" => Some(Color::Green),
            _ => None,
        }
    }

    /// The other colour.
    pub fn other(self) -> Color {
        match self {
            Color::Blue => Color::Green,
            Color::Green => Color::Blue,
        }
    }
}

impl std::fmt::Display for Color {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A configured Service as the cluster has it before the release.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct LiveService {
    /// The colour its selector sends traffic to; `None`: not switched by devloop yet.
    pub color: Option<Color>,
    /// devloop's release annotations on it (live colour, since, previous, commit, images), kept by the release's
    /// apply until the switch changes them.
    pub annotations: BTreeMap<String, String>,
}

/// One Deployment of the manifests and its copy in the new colour.
#[derive(Debug, Clone, PartialEq)]
pub struct Copy {
    /// The Deployment as the manifests name it.
    pub original: String,
    /// The copy applied now: `<original>-<new colour>`.
    pub name: String,
    /// The copy in the live colour (rollback target, scaled down after `keepPrevious`).
    pub previous: String,
    /// The labels of the copy's pods (its selector).
    pub pod_labels: BTreeMap<String, String>,
    /// The replicas it runs with.
    pub replicas: i64,
}

/// What a release does for one configured Service after the copies are ready.
#[derive(Debug, Clone, PartialEq)]
pub struct Switch {
    /// The configured entry.
    pub entry: BlueGreen,
    pub namespace: String,
    pub service: String,
    /// The colour traffic moves to.
    pub color: Color,
    /// The colour traffic is on now (`None`: the first release).
    pub live: Option<Color>,
    pub copies: Vec<Copy>,
    /// The rendered Service with the new colour in its selector and the new release annotations but
    /// `live-since`, which the switch sets when it happens.
    pub switched: Value,
    /// `http://<service>-preview.<namespace>.svc:<first port>`.
    pub preview_url: String,
}

/// A release's objects and switches.
#[derive(Debug, Clone, PartialEq)]
pub struct Release {
    /// What to apply: the rendered objects, each Deployment behind a configured Service replaced by its copy.
    pub objects: Vec<Value>,
    /// Objects prune must leave alone now: the live copies and the plain Deployments the copies replace (the
    /// Service may still send them traffic).
    pub keep: Vec<ObjectRef>,
    /// Objects applied with `force`: the copies (devloop's own; the switch may own their replicas).
    pub force: Vec<ObjectRef>,
    pub switches: Vec<Switch>,
}

/// Facts a release records on what it deploys.
#[derive(Debug, Clone, Default)]
pub struct Provenance {
    /// The commit deployed (`GIT_COMMIT`, else git's HEAD, else `unknown`).
    pub commit: String,
}

/// Turns `objects` into a release of every configured Service; `live[i]` is entry `i`'s Service in the cluster.
pub fn plan(
    objects: Vec<Value>,
    entries: &[BlueGreen],
    live: &[LiveService],
    provenance: &Provenance,
) -> Result<Release, DeployError> {
    let mut objects = objects;
    let mut release = Release {
        objects: Vec::new(),
        keep: Vec::new(),
        force: Vec::new(),
        switches: Vec::new(),
    };
    // Every entry's Service and Deployments, found in the objects as rendered (before any is renamed).
    let mut found = Vec::new();
    let mut claimed: BTreeMap<usize, &str> = BTreeMap::new();
    for entry in entries {
        let (si, namespace) = find_service(&objects, entry)?;
        let selector = selector_of(&objects[si], entry)?;
        let behind = deployments_behind(&objects, entry, &namespace, &selector)?;
        for di in &behind {
            if let Some(other) = claimed.insert(*di, &entry.field) {
                return Err(config_error(
                    entry,
                    format!(
                        "Deployment `{}` is behind the Services of both {other} and {}",
                        name_of(&objects[*di]),
                        entry.field
                    ),
                    "a Deployment can be released by one Service only: name the `deployments` of each",
                ));
            }
        }
        found.push((si, namespace, selector, behind));
    }
    let mut previews = Vec::new();
    for ((entry, live), (si, namespace, selector, behind)) in entries.iter().zip(live).zip(found) {
        let color = live.color.map(Color::other).unwrap_or(Color::Blue);
        let mut copies = Vec::new();
        for di in behind {
            let copy = copy_deployment(&mut objects[di], color, live.color, provenance);
            release.force.push(reference(&objects[di], &namespace));
            release
                .keep
                .push(deployment_ref(&namespace, &copy.previous));
            release
                .keep
                .push(deployment_ref(&namespace, &copy.original));
            copies.push(copy);
        }
        // A verify Job is created outside the plan: recorded as kept, so the deployment's parent lists Jobs and
        // `devloop delete` finds one a killed devloop left behind.
        if let Some(crate::config::blue_green::Verify {
            check: crate::config::blue_green::Check::Job { .. },
            ..
        }) = &entry.verify
        {
            release.keep.push(ObjectRef {
                api_version: "batch/v1".to_string(),
                kind: "Job".to_string(),
                namespace: Some(namespace.clone()),
                name: format!("{}-verify-{color}", entry.service),
            });
        }
        // The Service stays where the traffic is: the live colour, its release annotations kept.
        let rendered = objects[si].clone();
        if let Some(c) = live.color {
            set_selector_color(&mut objects[si], c);
            set_annotations(&mut objects[si], &live.annotations);
        }
        let mut switched = rendered.clone();
        set_selector_color(&mut switched, color);
        let mut annotations = BTreeMap::from([
            (ANNOTATION_LIVE_COLOR.to_string(), color.to_string()),
            (ANNOTATION_COMMIT.to_string(), provenance.commit.clone()),
            (ANNOTATION_IMAGES.to_string(), images_of(&objects, &copies)),
        ]);
        if let Some(c) = live.color {
            annotations.insert(ANNOTATION_PREVIOUS_COLOR.to_string(), c.to_string());
        }
        set_annotations(&mut switched, &annotations);
        let (preview, port) = preview_service(&rendered, &selector, color, entry)?;
        previews.push(preview);
        release.switches.push(Switch {
            entry: entry.clone(),
            preview_url: format!("http://{}-preview.{namespace}.svc:{port}", entry.service),
            namespace,
            service: entry.service.clone(),
            color,
            live: live.color,
            copies,
            switched,
        });
    }
    objects.extend(previews);
    release.objects = objects;
    Ok(release)
}

/// Keeps the traffic of a released Service where a release put it: `objects`' Service `name` in `namespace` gets
/// the colour and release annotations `live` has (nothing changes when it was never switched).
pub fn hold(objects: &mut [Value], namespace: &str, name: &str, live: &LiveService) {
    let Some(color) = live.color else {
        return;
    };
    for o in objects
        .iter_mut()
        .filter(|o| o["kind"] == "Service" && name_of(o) == name && namespace_of(o) == namespace)
    {
        set_selector_color(o, color);
        set_annotations(o, &live.annotations);
    }
}

/// `switched` with the moment of the switch recorded.
pub fn at_switch(switched: &Value, since: &str) -> Value {
    let mut v = switched.clone();
    set_annotations(
        &mut v,
        &BTreeMap::from([(ANNOTATION_LIVE_SINCE.to_string(), since.to_string())]),
    );
    v
}

/// The rendered Service a rollback applies: `rendered` sending traffic to `to`, with the release annotations of
/// `to` (`from` becomes the previous colour).
pub fn rolled_back(
    rendered: &Value,
    to: Color,
    from: Color,
    commit: &str,
    images: &str,
    since: &str,
) -> Value {
    let mut v = rendered.clone();
    set_selector_color(&mut v, to);
    set_annotations(
        &mut v,
        &BTreeMap::from([
            (ANNOTATION_LIVE_COLOR.to_string(), to.to_string()),
            (ANNOTATION_PREVIOUS_COLOR.to_string(), from.to_string()),
            (ANNOTATION_COMMIT.to_string(), commit.to_string()),
            (ANNOTATION_IMAGES.to_string(), images.to_string()),
            (ANNOTATION_LIVE_SINCE.to_string(), since.to_string()),
        ]),
    );
    v
}

/// The Deployments (as the manifests name them) behind the entry's Service among `objects` (rendered as they
/// are, not yet a release): what `rollback` looks for the copies of.
pub fn originals(objects: &[Value], entry: &BlueGreen) -> Result<Vec<String>, DeployError> {
    let (si, namespace) = find_service(objects, entry)?;
    let selector = selector_of(&objects[si], entry)?;
    Ok(deployments_behind(objects, entry, &namespace, &selector)?
        .into_iter()
        .map(|i| name_of(&objects[i]).to_string())
        .collect())
}

/// The index of entry's Service among `objects` and its namespace.
pub fn find_service(objects: &[Value], entry: &BlueGreen) -> Result<(usize, String), DeployError> {
    let found: Vec<(usize, String)> = objects
        .iter()
        .enumerate()
        .filter(|(_, o)| o["kind"] == "Service" && o["apiVersion"] == "v1")
        .filter(|(_, o)| name_of(o) == entry.service)
        .map(|(i, o)| (i, namespace_of(o).to_string()))
        .filter(|(_, ns)| entry.namespace.as_deref().is_none_or(|want| want == ns))
        .collect();
    match found.as_slice() {
        [one] => Ok(one.clone()),
        [] => Err(config_error(
            entry,
            format!(
                "no Service `{}`{} in the rendered manifests",
                entry.service,
                entry
                    .namespace
                    .as_deref()
                    .map(|n| format!(" in namespace `{n}`"))
                    .unwrap_or_default()
            ),
            "name a Service the manifests define (`devloop render` shows them)",
        )),
        many => Err(config_error(
            entry,
            format!(
                "Services `{}` in several namespaces: {}",
                entry.service,
                many.iter()
                    .map(|(_, n)| format!("`{n}`"))
                    .collect::<Vec<_>>()
                    .join(", ")
            ),
            "add `namespace:` to the entry",
        )),
    }
}

fn selector_of(
    service: &Value,
    entry: &BlueGreen,
) -> Result<BTreeMap<String, String>, DeployError> {
    let selector: BTreeMap<String, String> = service
        .pointer("/spec/selector")
        .and_then(Value::as_object)
        .map(|m| {
            m.iter()
                .filter_map(|(k, v)| Some((k.clone(), v.as_str()?.to_string())))
                .collect()
        })
        .unwrap_or_default();
    if selector.is_empty() {
        return Err(config_error(
            entry,
            format!("Service `{}` has no selector", entry.service),
            "a blue/green release switches the Service's selector: give it one that selects the Deployment's pods",
        ));
    }
    if selector.contains_key(KUBE_COLOR) {
        return Err(config_error(
            entry,
            format!(
                "Service `{}` already selects on `{KUBE_COLOR}`",
                entry.service
            ),
            "leave that label to devloop: remove it from the manifests",
        ));
    }
    Ok(selector)
}

/// The indexes of the Deployments behind the entry's Service.
fn deployments_behind(
    objects: &[Value],
    entry: &BlueGreen,
    namespace: &str,
    selector: &BTreeMap<String, String>,
) -> Result<Vec<usize>, DeployError> {
    let deployments: Vec<usize> = objects
        .iter()
        .enumerate()
        .filter(|(_, o)| o["kind"] == "Deployment" && namespace_of(o) == namespace)
        .map(|(i, _)| i)
        .collect();
    if !entry.deployments.is_empty() {
        let mut out = Vec::new();
        for want in &entry.deployments {
            match deployments.iter().find(|i| name_of(&objects[**i]) == want) {
                Some(i) => out.push(*i),
                None => {
                    return Err(config_error(
                        entry,
                        format!(
                            "no Deployment `{want}` in namespace `{namespace}` in the rendered manifests"
                        ),
                        "name Deployments the manifests define, in the Service's namespace",
                    ));
                }
            }
        }
        return Ok(out);
    }
    let selected: Vec<usize> = deployments
        .into_iter()
        .filter(|i| {
            let labels = objects[*i].pointer("/spec/template/metadata/labels");
            selector
                .iter()
                .all(|(k, v)| labels.and_then(|l| l.get(k)).and_then(Value::as_str) == Some(v))
        })
        .collect();
    if selected.is_empty() {
        return Err(config_error(
            entry,
            format!(
                "Service `{}` selects the pods of no Deployment in namespace `{namespace}`",
                entry.service
            ),
            "its selector must match a Deployment's pod labels, or list `deployments:`",
        ));
    }
    Ok(selected)
}

/// Makes `d` the copy of itself in `color`; returns what the release needs to know of it.
fn copy_deployment(
    d: &mut Value,
    color: Color,
    live: Option<Color>,
    provenance: &Provenance,
) -> Copy {
    let original = name_of(d).to_string();
    let name = format!("{original}-{color}");
    let replicas = d
        .pointer("/spec/replicas")
        .and_then(Value::as_i64)
        .unwrap_or(1);
    d["metadata"]["name"] = Value::String(name.clone());
    insert(d, &["metadata", "labels"], KUBE_COLOR, color.as_str());
    insert(
        d,
        &["spec", "selector", "matchLabels"],
        KUBE_COLOR,
        color.as_str(),
    );
    insert(
        d,
        &["spec", "template", "metadata", "labels"],
        KUBE_COLOR,
        color.as_str(),
    );
    d["spec"]["replicas"] = json!(replicas);
    let images = container_images(d).join(",");
    insert(
        d,
        &["metadata", "annotations"],
        ANNOTATION_COPY_OF,
        &original,
    );
    insert(
        d,
        &["metadata", "annotations"],
        ANNOTATION_COMMIT,
        &provenance.commit,
    );
    insert(d, &["metadata", "annotations"], ANNOTATION_IMAGES, &images);
    let pod_labels = d
        .pointer("/spec/selector/matchLabels")
        .and_then(Value::as_object)
        .map(|m| {
            m.iter()
                .filter_map(|(k, v)| Some((k.clone(), v.as_str()?.to_string())))
                .collect()
        })
        .unwrap_or_default();
    Copy {
        previous: format!("{original}-{}", live.unwrap_or(color.other())),
        original,
        name,
        pod_labels,
        replicas,
    }
}

/// `<service>-preview`: a ClusterIP Service of the new copy's pods.
fn preview_service(
    service: &Value,
    selector: &BTreeMap<String, String>,
    color: Color,
    entry: &BlueGreen,
) -> Result<(Value, String), DeployError> {
    let name = format!("{}-preview", entry.service);
    if name.len() > 63 {
        return Err(config_error(
            entry,
            format!(
                "Service name `{}` leaves no room for the preview Service `{name}`",
                entry.service
            ),
            "Service names have at most 63 characters: use a Service name of at most 55",
        ));
    }
    let ports: Vec<Value> = service
        .pointer("/spec/ports")
        .and_then(Value::as_array)
        .map(|ps| {
            ps.iter()
                .map(|p| {
                    let mut p = p.clone();
                    if let Some(m) = p.as_object_mut() {
                        m.remove("nodePort");
                    }
                    p
                })
                .collect()
        })
        .unwrap_or_default();
    let port = ports
        .first()
        .and_then(|p| p.get("port"))
        .map(|p| match p {
            Value::String(s) => s.clone(),
            other => other.to_string(),
        })
        .unwrap_or_else(|| "80".to_string());
    let mut selector: Map<String, Value> = selector
        .iter()
        .map(|(k, v)| (k.clone(), Value::String(v.clone())))
        .collect();
    selector.insert(KUBE_COLOR.to_string(), Value::String(color.to_string()));
    let mut metadata = json!({"name": name, "namespace": namespace_of(service)});
    if let Some(labels) = service.pointer("/metadata/labels") {
        metadata["labels"] = labels.clone();
    }
    Ok((
        json!({
            "apiVersion": "v1",
            "kind": "Service",
            "metadata": metadata,
            "spec": {"type": "ClusterIP", "selector": selector, "ports": ports},
        }),
        port,
    ))
}

fn images_of(objects: &[Value], copies: &[Copy]) -> String {
    let names: BTreeSet<&str> = copies.iter().map(|c| c.name.as_str()).collect();
    let images: BTreeSet<String> = objects
        .iter()
        .filter(|o| o["kind"] == "Deployment" && names.contains(name_of(o)))
        .flat_map(container_images)
        .collect();
    images.into_iter().collect::<Vec<_>>().join(",")
}

fn container_images(d: &Value) -> Vec<String> {
    d.pointer("/spec/template/spec/containers")
        .and_then(Value::as_array)
        .map(|cs| {
            cs.iter()
                .filter_map(|c| c["image"].as_str().map(str::to_string))
                .collect()
        })
        .unwrap_or_default()
}

fn set_selector_color(service: &mut Value, color: Color) {
    insert(service, &["spec", "selector"], KUBE_COLOR, color.as_str());
}

fn set_annotations(o: &mut Value, annotations: &BTreeMap<String, String>) {
    for (k, v) in annotations {
        insert(o, &["metadata", "annotations"], k, v);
    }
}

/// Sets `key: value` in the mapping at `path`, creating the mappings on the way.
fn insert(o: &mut Value, path: &[&str], key: &str, value: &str) {
    let mut at = o;
    for p in path {
        if !at.get(*p).is_some_and(Value::is_object) {
            at[*p] = Value::Object(Map::new());
        }
        at = &mut at[*p];
    }
    at[key] = Value::String(value.to_string());
}

fn name_of(o: &Value) -> &str {
    o.pointer("/metadata/name")
        .and_then(Value::as_str)
        .unwrap_or_default()
}

fn namespace_of(o: &Value) -> &str {
    o.pointer("/metadata/namespace")
        .and_then(Value::as_str)
        .unwrap_or_default()
}

fn reference(o: &Value, namespace: &str) -> ObjectRef {
    ObjectRef {
        api_version: o["apiVersion"].as_str().unwrap_or("apps/v1").to_string(),
        kind: o["kind"].as_str().unwrap_or("Deployment").to_string(),
        namespace: Some(namespace.to_string()),
        name: name_of(o).to_string(),
    }
}

/// `deployment/<name>` in `namespace`.
pub fn deployment_ref(namespace: &str, name: &str) -> ObjectRef {
    ObjectRef {
        api_version: "apps/v1".to_string(),
        kind: "Deployment".to_string(),
        namespace: Some(namespace.to_string()),
        name: name.to_string(),
    }
}

fn config_error(entry: &BlueGreen, message: String, hint: &str) -> DeployError {
    DeployError::Config {
        message: format!("{}: {message}", entry.field),
        hint: Some(hint.to_string()),
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests;
