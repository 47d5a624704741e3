//! `devloop version`: devloop's own version; with `-v`, what the Docker daemon and the API server of the kube
//! context answer, or why they could not be asked — never a failure of the command. Against the fake API server, or
//! a real cluster with `DEVLOOP_TEST_KUBECONFIG`.
#![allow(clippy::unwrap_used)]

mod support;

use std::process::Command;

use serde_json::Value;
use support::cluster::Cluster;
use support::{Project, assert_ok, require_docker, stdout};

#[tokio::test]
async fn version_alone_is_devloop_and_nothing_else() {
    let cluster = Cluster::start().await;
    let out = cluster
        .devloop_in(&Project::new(), &["version"], None)
        .await;
    assert_ok(&out);
    assert_eq!(
        stdout(&out),
        format!("devloop {}\n", env!("CARGO_PKG_VERSION"))
    );
}

#[tokio::test]
async fn verbose_version_names_the_daemon_and_the_cluster_devloop_talks_to() {
    require_docker();
    let cluster = Cluster::start().await;
    let daemon = Command::new("docker")
        .args(["version", "--format", "{{.Server.Version}}"])
        .output()
        .unwrap();
    let daemon = String::from_utf8_lossy(&daemon.stdout).trim().to_string();
    let server = cluster
        .client
        .apiserver_version()
        .await
        .unwrap()
        .git_version;
    let out = cluster
        .devloop_in(&Project::new(), &["-v", "version"], None)
        .await;
    assert_ok(&out);
    let text = stdout(&out);
    let lines: Vec<&str> = text.lines().collect();
    assert_eq!(
        lines[0],
        format!("devloop {}", env!("CARGO_PKG_VERSION")),
        "{text}"
    );
    assert!(
        lines[1].starts_with(&format!("docker {daemon} (API ")),
        "{text}"
    );
    assert!(
        lines[2].starts_with(&format!("kubernetes {server} at https://"))
            || lines[2].starts_with(&format!("kubernetes {server} at http://")),
        "{text}"
    );
    assert!(lines[2].contains("(context `"), "{text}");

    let out = cluster
        .devloop_in(&Project::new(), &["-v", "-o", "json", "version"], None)
        .await;
    assert_ok(&out);
    let event: Value = stdout(&out)
        .lines()
        .map(|l| serde_json::from_str::<Value>(l).unwrap())
        .find(|e| e["type"] == "version")
        .unwrap();
    assert_eq!(event["data"]["devloop"], env!("CARGO_PKG_VERSION"));
    assert_eq!(event["data"]["docker"]["version"], daemon.as_str());
    assert_eq!(event["data"]["kubernetes"]["version"], server.as_str());
}

#[tokio::test]
async fn an_unreachable_cluster_is_reported_not_failed() {
    let cluster = Cluster::start().await;
    // A kubeconfig whose server nobody listens on.
    let port = support::free_port();
    let text = std::fs::read_to_string(&cluster.kubeconfig).unwrap();
    let mut kc: serde_json::Value = serde_saphyr::from_str(&text).unwrap();
    kc["clusters"][0]["cluster"]["server"] = Value::String(format!("http://127.0.0.1:{port}"));
    let dir = tempfile::tempdir().unwrap();
    let gone = dir.path().join("gone.yaml");
    std::fs::write(&gone, serde_json::to_string(&kc).unwrap()).unwrap();
    let out = Command::new(env!("CARGO_BIN_EXE_devloop"))
        .args(["-v", "version", "--kubeconfig", gone.to_str().unwrap()])
        .env_remove("KUBECONFIG")
        .output()
        .unwrap();
    assert_ok(&out);
    let text = stdout(&out);
    let line = text.lines().find(|l| l.starts_with("kubernetes")).unwrap();
    assert!(line.starts_with("kubernetes: not reached"), "{text}");
    assert!(
        line.contains(&port.to_string()) || line.contains("context"),
        "{text}"
    );
}
