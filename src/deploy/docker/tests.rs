//! Deploy, Docker backend, unit tests: start order, state assessment, bind mounts and sync, bind sources.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use bollard::models::{
    ContainerInspectResponse, ContainerState, ContainerStateStatusEnum, Health, HealthStatusEnum,
    HealthcheckResult,
};

use super::assessment::{Assessment, Want, assess};
use super::order::levels;
use super::plan::clean;
use super::sync::bind_mounted;
use crate::config::deploy::{Condition, Container, Dependency, Restart, Volume};

fn container(name: &str, deps: &[&str]) -> Container {
    Container {
        name: name.into(),
        image: "x".into(),
        ports: Vec::new(),
        env: BTreeMap::new(),
        volumes: Vec::new(),
        command: None,
        args: None,
        healthcheck: None,
        depends_on: deps
            .iter()
            .map(|d| Dependency {
                name: d.to_string(),
                condition: Condition::Started,
            })
            .collect(),
        restart: Restart::No,
        init: false,
    }
}

fn state(
    status: ContainerStateStatusEnum,
    exit: i64,
    health: Option<HealthStatusEnum>,
) -> ContainerInspectResponse {
    ContainerInspectResponse {
        state: Some(ContainerState {
            status: Some(status),
            running: Some(status == ContainerStateStatusEnum::RUNNING),
            exit_code: Some(exit),
            health: health.map(|h| Health {
                status: Some(h),
                failing_streak: Some(3),
                log: Some(vec![HealthcheckResult {
                    exit_code: Some(1),
                    output: Some("connection refused\n".into()),
                    ..Default::default()
                }]),
            }),
            ..Default::default()
        }),
        restart_count: Some(0),
        ..Default::default()
    }
}

#[test]
fn levels_follow_dependencies() {
    let cs = vec![
        container("api", &["db", "migrate"]),
        container("migrate", &["db"]),
        container("db", &[]),
        container("web", &[]),
    ];
    assert_eq!(levels(&cs), vec![vec![2, 3], vec![1], vec![0]]);
}

#[test]
fn assessment_of_states() {
    use ContainerStateStatusEnum as S;
    use HealthStatusEnum as H;
    assert_eq!(
        assess(&state(S::RUNNING, 0, None), Want::Ready, Restart::No),
        Assessment::Ready
    );
    assert_eq!(
        assess(
            &state(S::RUNNING, 0, Some(H::STARTING)),
            Want::Ready,
            Restart::No
        ),
        Assessment::Pending("running, healthcheck starting".into())
    );
    assert_eq!(
        assess(
            &state(S::RUNNING, 0, Some(H::STARTING)),
            Want::Started,
            Restart::No
        ),
        Assessment::Ready
    );
    let Assessment::Failed { reason, message } = assess(
        &state(S::RUNNING, 0, Some(H::UNHEALTHY)),
        Want::Healthy,
        Restart::No,
    ) else {
        panic!("unhealthy must fail")
    };
    assert_eq!(reason, "Unhealthy");
    assert_eq!(
        message,
        "healthcheck failed 3 times in a row (last: exit code 1: connection refused)"
    );
    assert!(matches!(
        assess(&state(S::RUNNING, 0, None), Want::Healthy, Restart::No),
        Assessment::Failed { reason, .. } if reason == "NoHealthcheck"
    ));
    assert_eq!(
        assess(&state(S::EXITED, 0, None), Want::Ready, Restart::No),
        Assessment::Ready
    );
    assert_eq!(
        assess(&state(S::EXITED, 0, None), Want::Completed, Restart::No),
        Assessment::Ready
    );
    assert_eq!(
        assess(&state(S::RUNNING, 0, None), Want::Completed, Restart::No),
        Assessment::Pending("running".into())
    );
    assert_eq!(
        assess(&state(S::EXITED, 3, None), Want::Ready, Restart::No),
        Assessment::Failed {
            reason: "Error".into(),
            message: "exited with code 3".into()
        }
    );
    let mut looping = state(S::RUNNING, 2, None);
    looping.restart_count = Some(1);
    assert!(matches!(
        assess(&looping, Want::Ready, Restart::Always),
        Assessment::Failed { reason, .. } if reason == "CrashLoop"
    ));
}

#[test]
fn files_under_a_bind_mount_are_not_synced() {
    let mut c = container("web", &[]);
    c.volumes.push(Volume::Bind {
        source: PathBuf::from("/project/www"),
        target: "/www".into(),
        read_only: false,
    });
    c.volumes.push(Volume::Named {
        name: "data".into(),
        target: "/data".into(),
        read_only: false,
    });
    assert!(bind_mounted(&c, "/www/index.html"));
    assert!(bind_mounted(&c, "/www"));
    assert!(!bind_mounted(&c, "/wwwroot/index.html"));
    assert!(!bind_mounted(&c, "/data/x"));
    assert!(!bind_mounted(&c, "/app/main.py"));
}

#[test]
fn bind_sources_are_cleaned() {
    assert_eq!(
        clean(Path::new("/p/./www/../data")),
        PathBuf::from("/p/data")
    );
}
