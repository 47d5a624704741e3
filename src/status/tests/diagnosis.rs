//! Tests of the pod diagnosis: recorded failing pods, and which problems fail fast.

use serde_json::{Value, json};

use super::{http_body, jsonl, problem};
use crate::status::diagnosis::{PodProblem, diagnose_pod};

#[test]
fn diagnoses_recorded_failing_pods() {
    let pull = diagnose_pod(&http_body("05-pod-pull-fail.http")).unwrap();
    assert_eq!(
        (pull.pod.as_str(), pull.container.as_deref()),
        ("pull-fail", Some("main"))
    );
    assert_eq!(pull.reason, "ImagePullBackOff");
    assert!(
        pull.message.contains("127.0.0.1:5000/nope:1: not found"),
        "{}",
        pull.message
    );
    assert!(pull.fails_fast());

    let crash = diagnose_pod(&http_body("05-pod-crash.http")).unwrap();
    assert_eq!(
        crash,
        problem(
            "crash",
            Some("main"),
            "CrashLoopBackOff",
            "exited with code 3 (Error), restarted 5 times"
        )
    );
    assert!(crash.fails_fast());

    let config = diagnose_pod(&http_body("05-pod-config-error.http")).unwrap();
    assert_eq!(
        config,
        problem(
            "config-error",
            Some("main"),
            "CreateContainerConfigError",
            "configmap \"missing-cm\" not found"
        )
    );
    assert!(config.fails_fast());
    let key = diagnose_pod(&http_body("05-pod-config-key-error.http")).unwrap();
    assert_eq!(
        key,
        problem(
            "config-key-error",
            Some("main"),
            "CreateContainerConfigError",
            "couldn't find key missing-key in ConfigMap kapi-pods/present-cm"
        )
    );

    let unschedulable = diagnose_pod(&http_body("05-pod-unschedulable.http")).unwrap();
    assert_eq!(unschedulable.pod, "unschedulable");
    assert_eq!(unschedulable.container, None);
    assert_eq!(unschedulable.reason, "Unschedulable");
    assert!(unschedulable.message.starts_with(
        "0/1 nodes are available: 1 node(s) didn't match Pod's node affinity/selector."
    ));
    assert!(unschedulable.fails_fast());

    let failed = diagnose_pod(&http_body("05-pod-failed.http")).unwrap();
    assert_eq!(
        failed,
        problem("failed", Some("main"), "Error", "exited with code 3")
    );
    assert!(!failed.fails_fast());
}

#[test]
fn healthy_and_slow_pods_do_not_fail_fast() {
    assert_eq!(diagnose_pod(&http_body("05-pod-running-ready.http")), None);
    assert_eq!(diagnose_pod(&http_body("05-pod-completed.http")), None);
    let not_ready = diagnose_pod(&http_body("05-pod-not-ready.http")).unwrap();
    assert_eq!(not_ready.reason, "NotReady");
    assert!(!not_ready.fails_fast());
    let init = diagnose_pod(&http_body("05-pod-init-running.http")).unwrap();
    assert_eq!(init.container.as_deref(), Some("init"));
    assert!(!init.fails_fast());
}

/// Every status change of the recorded pods, merged into the recorded pod objects (for their specs).
#[test]
fn pod_timeline_fails_fast_exactly_when_waiting_cannot_help() {
    // (reason or None when fine, fails fast)
    let expected: [(Option<&str>, bool); 29] = [
        (Some("ContainerCreating"), false), // completed
        (Some("ContainerCreating"), false), // config-error
        (Some("ContainerCreating"), false), // crash
        (Some("ContainerCreating"), false), // failed
        (Some("ContainerCreating"), false), // not-ready
        (Some("ContainerCreating"), false), // pull-fail
        (Some("ErrImagePull"), true),
        (Some("Completed"), false), // exited 0, phase still Pending for a moment
        (Some("CreateContainerConfigError"), true),
        (Some("Error"), false), // crash: first exit, no restart yet
        (Some("Error"), false), // failed: exited 3 under restartPolicy Never, phase still Pending
        (Some("NotReady"), false),
        (None, false),                    // completed: Succeeded
        (Some("CrashLoopBackOff"), true), // crash: terminated again after a restart
        (Some("Error"), false), // failed: phase Failed (the bare Pod's rollout state fails it)
        (Some("ImagePullBackOff"), true),
        (Some("CrashLoopBackOff"), true),
        (Some("CrashLoopBackOff"), true),
        (Some("ErrImagePull"), true),
        (Some("CrashLoopBackOff"), true),
        (Some("ImagePullBackOff"), true),
        (Some("CrashLoopBackOff"), true),
        (Some("ErrImagePull"), true),
        (Some("CrashLoopBackOff"), true),
        (Some("ImagePullBackOff"), true),
        (Some("CrashLoopBackOff"), true),
        (Some("ErrImagePull"), true),
        (Some("CrashLoopBackOff"), true),
        (Some("ImagePullBackOff"), true),
    ];
    let lines = jsonl("05-pod-status-timeline.jsonl");
    assert_eq!(lines.len(), expected.len());
    for (i, (line, (reason, fatal))) in lines.iter().zip(expected).enumerate() {
        let name = line["pod"].as_str().unwrap();
        let mut pod = http_body(&format!("05-pod-{name}.http"));
        pod["status"]["phase"] = line["phase"].clone();
        pod["status"]["conditions"] = line["conditions"].clone();
        pod["status"]["containerStatuses"] = line["containerStatuses"].clone();
        let got = diagnose_pod(&pod);
        assert_eq!(
            got.as_ref().map(|p| p.reason.as_str()),
            reason,
            "line {i}: {got:?}"
        );
        assert_eq!(
            got.as_ref().is_some_and(PodProblem::fails_fast),
            fatal,
            "line {i}: {got:?}"
        );
        if let Some(p) = got {
            assert_eq!(p.pod, name);
        }
    }
}

fn pod_with(statuses: Value, restart_policy: &str) -> Value {
    json!({
        "apiVersion": "v1", "kind": "Pod",
        "metadata": {"name": "p"},
        "spec": {"restartPolicy": restart_policy, "containers": [{"name": "app"}], "initContainers": [{"name": "init"}]},
        "status": {"phase": "Running", "conditions": [{"type": "PodScheduled", "status": "True"}], "containerStatuses": statuses}
    })
}

#[test]
fn oom_killed_is_named_even_inside_a_crash_loop() {
    let pod = pod_with(
        json!([{
            "name": "app", "ready": false, "restartCount": 2,
            "state": {"waiting": {"reason": "CrashLoopBackOff", "message": "back-off 20s"}},
            "lastState": {"terminated": {"exitCode": 137, "reason": "OOMKilled"}}
        }]),
        "Always",
    );
    let p = diagnose_pod(&pod).unwrap();
    assert_eq!(p.reason, "OOMKilled");
    assert_eq!(
        p.message,
        "killed for using more memory than its limit (exit code 137), restarted 2 times"
    );
    assert!(p.fails_fast());
    // Running again after an OOM kill: it may well stay up.
    let recovered = pod_with(
        json!([{
            "name": "app", "ready": false, "restartCount": 1, "started": true,
            "state": {"running": {}},
            "lastState": {"terminated": {"exitCode": 137, "reason": "OOMKilled"}}
        }]),
        "Always",
    );
    assert_eq!(diagnose_pod(&recovered).unwrap().reason, "NotReady");
}

#[test]
fn init_containers_are_diagnosed_first() {
    let mut pod = pod_with(
        json!([{"name": "app", "ready": false, "restartCount": 0, "state": {"waiting": {"reason": "PodInitializing"}}}]),
        "Always",
    );
    pod["status"]["phase"] = json!("Pending");
    pod["status"]["initContainerStatuses"] = json!([{
        "name": "init", "ready": false, "restartCount": 3,
        "state": {"waiting": {"reason": "CrashLoopBackOff"}},
        "lastState": {"terminated": {"exitCode": 1, "reason": "Error"}}
    }]);
    assert_eq!(
        diagnose_pod(&pod).unwrap(),
        problem(
            "p",
            Some("init"),
            "CrashLoopBackOff",
            "exited with code 1 (Error), restarted 3 times"
        )
    );
}

#[test]
fn run_and_create_container_errors_fail_fast() {
    for reason in [
        "RunContainerError",
        "CreateContainerError",
        "InvalidImageName",
    ] {
        let pod = pod_with(
            json!([{"name": "app", "ready": false, "restartCount": 0,
                    "state": {"waiting": {"reason": reason, "message": "exec: \"nope\": not found"}}}]),
            "Always",
        );
        let p = diagnose_pod(&pod).unwrap();
        assert_eq!((p.reason.as_str(), p.fails_fast()), (reason, true));
    }
}

#[test]
fn a_job_pod_that_finally_succeeds_is_not_a_crash_loop() {
    let pod = pod_with(
        json!([{"name": "app", "ready": false, "restartCount": 2,
                "state": {"terminated": {"exitCode": 0, "reason": "Completed"}},
                "lastState": {"terminated": {"exitCode": 1, "reason": "Error"}}}]),
        "OnFailure",
    );
    let p = diagnose_pod(&pod).unwrap();
    assert_eq!(p.reason, "Completed");
    assert!(!p.fails_fast());
}
