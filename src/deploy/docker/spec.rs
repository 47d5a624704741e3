//! Deploy, Docker backend, the create request: a planned container → the Engine API body that creates it (its
//! labels, port bindings, mounts, restart policy, healthcheck, the project's network with the container's name as
//! alias; or, in a sandbox, the sandbox's network namespace instead of ports and network). Pure: talks to no
//! daemon.

use std::collections::HashMap;

use bollard::models::{
    ContainerCreateBody, EndpointSettings, HealthConfig, HostConfig, Mount, MountType,
    NetworkingConfig, PortBinding, RestartPolicy, RestartPolicyNameEnum,
};

use super::DockerTarget;
use super::labels::{ARTIFACT_LABEL, CONFIG_LABEL, CONTAINER_LABEL};
use super::plan::Planned;
use crate::config::deploy::{Container, Restart, Volume};

impl DockerTarget {
    pub(super) fn create_body(&self, p: &Planned, grace: u64) -> ContainerCreateBody {
        let c = &p.container;
        let network = self.network_name();
        let mut labels = self.labels();
        labels.insert(CONTAINER_LABEL.to_string(), c.name.clone());
        labels.insert(CONFIG_LABEL.to_string(), p.digest.clone());
        if p.built {
            labels.insert(ARTIFACT_LABEL.to_string(), "true".into());
        }
        // In a sandbox, the sandbox owns the network namespace: its ports and its place on the network (Docker
        // rejects port bindings, exposed ports and a hostname with a `container:` network mode).
        let ((port_bindings, exposed_ports), network_mode, networking_config) = match &p.sandbox {
            Some(s) => ((None, None), format!("container:{}", s.name), None),
            None => (
                port_bindings(c),
                network.clone(),
                Some(on_network(network, &c.name)),
            ),
        };
        let mounts: Vec<Mount> = c
            .volumes
            .iter()
            .map(|v| match v {
                Volume::Bind {
                    source,
                    target,
                    read_only,
                } => Mount {
                    typ: Some(MountType::BIND),
                    source: Some(source.to_string_lossy().to_string()),
                    target: Some(target.clone()),
                    read_only: Some(*read_only),
                    ..Default::default()
                },
                Volume::Named {
                    name,
                    target,
                    read_only,
                } => Mount {
                    typ: Some(MountType::VOLUME),
                    source: Some(name.clone()),
                    target: Some(target.clone()),
                    read_only: Some(*read_only),
                    ..Default::default()
                },
            })
            .collect();
        ContainerCreateBody {
            image: Some(c.image.clone()),
            env: Some(c.env.iter().map(|(k, v)| format!("{k}={v}")).collect()),
            entrypoint: c.command.clone(),
            cmd: c.args.clone(),
            exposed_ports,
            healthcheck: c.healthcheck.as_ref().map(|h| HealthConfig {
                test: Some(h.test.clone()),
                interval: Some(h.interval_ns),
                timeout: Some(h.timeout_ns),
                retries: Some(h.retries),
                start_period: Some(h.start_period_ns),
                start_interval: None,
            }),
            labels: Some(labels),
            stop_timeout: Some(i64::try_from(grace).unwrap_or(i64::MAX)),
            host_config: Some(HostConfig {
                port_bindings,
                mounts: (!mounts.is_empty()).then_some(mounts),
                restart_policy: Some(restart_policy(c.restart)),
                network_mode: Some(network_mode),
                init: c.init.then_some(true),
                ..Default::default()
            }),
            networking_config,
            ..Default::default()
        }
    }
}

/// The port bindings of `c`'s `ports` and the container ports they expose (`None` when it has no ports).
pub(super) fn port_bindings(c: &Container) -> (Option<PortMap>, Option<Vec<String>>) {
    let mut bindings: PortMap = HashMap::new();
    for port in &c.ports {
        bindings
            .entry(format!("{}/{}", port.container_port, port.protocol))
            .or_insert_with(|| Some(Vec::new()))
            .get_or_insert_with(Vec::new)
            .push(PortBinding {
                host_ip: Some(port.host_ip.clone()),
                host_port: Some(port.host_port.to_string()),
            });
    }
    let mut exposed: Vec<String> = bindings.keys().cloned().collect();
    exposed.sort();
    if bindings.is_empty() {
        (None, None)
    } else {
        (Some(bindings), Some(exposed))
    }
}

/// The project network with `alias` as the container's name on it.
pub(super) fn on_network(network: String, alias: &str) -> NetworkingConfig {
    NetworkingConfig {
        endpoints_config: Some(HashMap::from([(
            network,
            EndpointSettings {
                aliases: Some(vec![alias.to_string()]),
                ..Default::default()
            },
        )])),
    }
}

pub(super) fn restart_policy(restart: Restart) -> RestartPolicy {
    RestartPolicy {
        name: Some(match restart {
            Restart::No => RestartPolicyNameEnum::NO,
            Restart::Always => RestartPolicyNameEnum::ALWAYS,
            Restart::OnFailure => RestartPolicyNameEnum::ON_FAILURE,
            Restart::UnlessStopped => RestartPolicyNameEnum::UNLESS_STOPPED,
        }),
        maximum_retry_count: None,
    }
}

/// A port map of the Engine API: `"8080/tcp"` → its bindings.
type PortMap = HashMap<String, Option<Vec<PortBinding>>>;
