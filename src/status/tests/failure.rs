//! Tests of the failure texts: the object, pod, container and reason line, and durations as flags write them.

use std::time::Duration;

use super::problem;
use crate::deploy::ObjectRef;
use crate::status::deadline::human_duration;
use crate::status::failure::failure_line;

#[test]
fn failure_text_names_object_pod_container_and_reason() {
    let reference = ObjectRef {
        api_version: "apps/v1".into(),
        kind: "Deployment".into(),
        namespace: Some("demo".into()),
        name: "web".into(),
    };
    let p = problem(
        "web-1",
        Some("main"),
        "ImagePullBackOff",
        "Back-off pulling image \"x\"",
    );
    assert_eq!(
        failure_line(&reference, &p.reason, &p.message, Some(&p)),
        "deployment/web (namespace `demo`): pod `web-1`, container `main`: ImagePullBackOff: Back-off pulling image \"x\""
    );
    let job = ObjectRef {
        api_version: "batch/v1".into(),
        kind: "Job".into(),
        ..reference
    };
    let p = problem("migrate-x", Some("main"), "Error", "exited with code 3");
    assert_eq!(
        failure_line(
            &job,
            "BackoffLimitExceeded",
            "Job has reached the specified backoff limit",
            Some(&p)
        ),
        "job/web (namespace `demo`): BackoffLimitExceeded: Job has reached the specified backoff limit; pod `migrate-x`, container `main`: Error: exited with code 3"
    );
}

#[test]
fn durations_read_like_flags() {
    assert_eq!(human_duration(Duration::from_secs(600)), "10m");
    assert_eq!(human_duration(Duration::from_secs(90)), "1m30s");
    assert_eq!(human_duration(Duration::from_secs(3600)), "1h");
    assert_eq!(human_duration(Duration::from_millis(300)), "300ms");
}
