//! Runner, what a dev session watches and forwards: the config → the watcher's spec (each artifact's context minus
//! what its `.dockerignore` excludes, Dockerfiles, manifest sources, devloop.yaml) and the port-forwards to keep
//! open. Pure: reads ignore files, starts nothing, prints nothing.

use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use crate::config::Config;
use crate::context::{DockerIgnore, read_ignore_rules};
use crate::port_forward::{ForwardSpec, PortRef, ResourceType};
use crate::render::inputs::{Input, inputs};
use crate::watch::{Trigger, WatchRoot, WatchSpec};

/// The port-forwards of a session.
#[derive(Debug, Clone, Default)]
pub struct Forwards {
    pub specs: Vec<ForwardSpec>,
    /// `--port-forward` found no Service with a selector to forward to.
    pub no_service: bool,
}

/// The forwards `devloop dev` keeps open: `portForward:` entries (in `namespace` when they name none), plus every
/// Service port among `objects` with `--port-forward`.
pub fn forward_specs(
    cfg: &Config,
    namespace: &str,
    objects: &[serde_json::Value],
    all_services: bool,
) -> Forwards {
    let mut specs = Vec::new();
    for p in &cfg.port_forwards {
        let Some(resource_type) = ResourceType::parse(&p.resource_type) else {
            continue;
        };
        let port = match p.port.parse::<u16>() {
            Ok(n) => PortRef::Number(n),
            Err(_) => PortRef::Name(p.port.clone()),
        };
        specs.push(ForwardSpec {
            resource_type,
            name: p.resource_name.clone(),
            namespace: p.namespace.clone().unwrap_or_else(|| namespace.to_string()),
            port,
            local_port: p.local_port,
            address: p.address,
        });
    }
    let mut no_service = false;
    if all_services {
        let found = crate::port_forward::service_specs(
            objects.iter(),
            std::net::IpAddr::from([127, 0, 0, 1]),
        );
        no_service = found.is_empty();
        specs.extend(found);
    }
    Forwards { specs, no_service }
}

/// What `devloop dev` watches: each artifact's context (minus what its `.dockerignore` excludes) and Dockerfile,
/// the manifest sources, and the config file.
pub fn watch_spec(cfg: &Config, debounce: Duration, trigger: Trigger) -> WatchSpec {
    let mut spec = WatchSpec::new(&cfg.base_dir);
    spec.debounce = debounce;
    spec.trigger = trigger;
    for a in &cfg.build.artifacts {
        let mut root = WatchRoot::dir(&a.context);
        // Directories may only be skipped when no `!` rule can bring something below them back.
        if let Ok(rules) = read_ignore_rules(&a.context, &a.dockerfile)
            && let Ok(ignore) = DockerIgnore::from_rules(&rules)
            && !ignore.has_exceptions()
        {
            let ignore = Arc::new(ignore);
            root = root.with_exclude(move |rel: &Path| ignore.is_excluded(&rel.to_string_lossy()));
        }
        spec.roots.push(root);
        if !a.dockerfile.starts_with(&a.context) {
            spec.roots.push(WatchRoot::file(&a.dockerfile));
        }
    }
    for input in inputs(&cfg.manifests, &cfg.base_dir) {
        match input {
            Input::Dir(d) if d.is_dir() => spec.roots.push(WatchRoot::dir(d)),
            Input::File(f) => spec.roots.push(WatchRoot::file(f)),
            Input::Dir(_) => {}
        }
    }
    spec.roots.push(WatchRoot::file(
        std::path::absolute(&cfg.file).unwrap_or_else(|_| cfg.base_dir.join("devloop.yaml")),
    ));
    spec
}
