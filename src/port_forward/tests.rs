//! Unit tests of the port-forward stage: specs as kubectl writes them, local ports, pod readiness, port names.

use super::*;
use std::net::{IpAddr, Ipv4Addr};

use k8s_openapi::api::core::v1::{Pod, Service};

use super::listener::bind;
use super::port::{pod_port, service_port};
use super::target::is_ready;

fn spec(port: PortRef, local_port: Option<u16>) -> ForwardSpec {
    ForwardSpec {
        resource_type: ResourceType::Service,
        name: "api".into(),
        namespace: "shop".into(),
        port,
        local_port,
        address: IpAddr::V4(Ipv4Addr::LOCALHOST),
    }
}

#[test]
fn resource_types_read_like_kubectl() {
    assert_eq!(ResourceType::parse("Service"), Some(ResourceType::Service));
    assert_eq!(ResourceType::parse("svc"), Some(ResourceType::Service));
    assert_eq!(
        ResourceType::parse("deploy"),
        Some(ResourceType::Deployment)
    );
    assert_eq!(
        ResourceType::parse("StatefulSet"),
        Some(ResourceType::StatefulSet)
    );
    assert_eq!(ResourceType::parse("po"), Some(ResourceType::Pod));
    assert_eq!(ResourceType::parse("job"), None);
    assert_eq!(
        spec(PortRef::Name("http".into()), None).target(),
        "service/api:http"
    );
}

#[tokio::test]
async fn a_taken_port_falls_to_the_next_free_one() {
    let taken = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let port = taken.local_addr().unwrap().port();
    let s = spec(PortRef::Number(80), Some(port));
    let (_socket, local) = bind(&s, port).await.unwrap();
    assert!(local.port() > port, "{local} after taken {port}");
    assert!(local.port() <= port + PORT_SEARCH);
    assert_eq!(local.ip(), IpAddr::V4(Ipv4Addr::LOCALHOST));
}

#[tokio::test]
async fn an_address_that_is_not_local_is_an_error() {
    let mut s = spec(PortRef::Number(80), Some(8080));
    // TEST-NET-1: never an address of this machine.
    s.address = IpAddr::V4(Ipv4Addr::new(192, 0, 2, 1));
    let e = bind(&s, 8080).await.unwrap_err();
    assert!(
        e.to_string()
            .starts_with("port-forward `service/api:80`: cannot listen on `192.0.2.1:8080`"),
        "{e}"
    );
}

fn pod(name: &str, created: &str, ready: bool, deleting: bool) -> Pod {
    serde_json::from_value(serde_json::json!({
        "metadata": {
            "name": name,
            "creationTimestamp": created,
            "deletionTimestamp": if deleting { Some(created) } else { None },
        },
        "spec": {"containers": [{"name": "main", "ports": [{"name": "http", "containerPort": 8080}]}]},
        "status": {"phase": "Running", "conditions": [{"type": "Ready", "status": if ready { "True" } else { "False" }}]}
    }))
    .unwrap()
}

#[test]
fn only_running_ready_pods_that_are_not_deleted_take_connections() {
    assert!(is_ready(&pod("a", "2026-01-01T00:00:00Z", true, false)));
    assert!(!is_ready(&pod("a", "2026-01-01T00:00:00Z", false, false)));
    assert!(!is_ready(&pod("a", "2026-01-01T00:00:00Z", true, true)));
}

#[test]
fn named_ports_resolve_through_container_ports() {
    let p = pod("a", "2026-01-01T00:00:00Z", true, false);
    assert_eq!(
        pod_port(&p, &PortRef::Name("http".into()), "t").unwrap(),
        8080
    );
    assert_eq!(pod_port(&p, &PortRef::Number(9000), "t").unwrap(), 9000);
    let e = pod_port(&p, &PortRef::Name("grpc".into()), "service/api:grpc").unwrap_err();
    assert_eq!(
        e.to_string(),
        "port-forward `service/api:grpc`: no container of `pod/a` declares a port named `grpc`"
    );
}

#[test]
fn every_tcp_port_of_a_service_with_a_selector_is_forwarded() {
    let objects = [
        serde_json::json!({"apiVersion": "v1", "kind": "Service", "metadata": {"name": "api", "namespace": "shop"},
            "spec": {"selector": {"app": "api"}, "ports": [{"port": 80}, {"port": 53, "protocol": "UDP"}, {"port": 9090, "protocol": "TCP"}]}}),
        serde_json::json!({"apiVersion": "v1", "kind": "Service", "metadata": {"name": "ext", "namespace": "shop"},
            "spec": {"ports": [{"port": 443}]}}),
        serde_json::json!({"apiVersion": "apps/v1", "kind": "Deployment", "metadata": {"name": "api", "namespace": "shop"}}),
    ];
    let specs = service_specs(&objects, IpAddr::V4(Ipv4Addr::LOCALHOST));
    let targets: Vec<String> = specs.iter().map(ForwardSpec::target).collect();
    assert_eq!(targets, ["service/api:80", "service/api:9090"]);
    assert!(
        specs
            .iter()
            .all(|s| s.namespace == "shop" && s.local_port.is_none())
    );
}

#[test]
fn service_ports_match_by_number_or_name_and_list_the_choices() {
    let svc: Service = serde_json::from_value(serde_json::json!({
        "metadata": {"name": "api"},
        "spec": {"ports": [{"name": "http", "port": 80, "targetPort": "web"}, {"port": 9090}]}
    }))
    .unwrap();
    assert_eq!(
        service_port(&svc, &PortRef::Number(80), "t", "api")
            .unwrap()
            .port,
        80
    );
    assert_eq!(
        service_port(&svc, &PortRef::Name("http".into()), "t", "api")
            .unwrap()
            .port,
        80
    );
    let e = service_port(&svc, &PortRef::Number(81), "service/api:81", "api").unwrap_err();
    assert_eq!(
        e.to_string(),
        "port-forward `service/api:81`: service `api` has no port `81`\n\nhint: its ports are `80` (http), `9090`"
    );
}
