//! Tests of the rollout judgement: recorded timelines of Deployments, Jobs, Pods, StatefulSet and DaemonSet rules.

use serde_json::{Value, json};

use super::{READY, http_body, jsonl, progressing};
use crate::status::rollout::{OBSERVING, RolloutState, rollout_state};

#[test]
fn deployment_timeline_follows_kubectl_and_waits_for_scale_down() {
    let observing = progressing(OBSERVING);
    let expected = [
        // web: create (2 replicas)
        observing.clone(),
        observing.clone(),
        progressing("0 out of 2 new replicas have been updated"),
        progressing("0 of 2 updated replicas are available"),
        progressing("1 of 2 updated replicas are available"),
        READY,
        // web: v2 (template change), surge rollout
        observing.clone(),
        observing.clone(),
        progressing("0 out of 2 new replicas have been updated"),
        progressing("1 out of 2 new replicas have been updated"),
        progressing("1 out of 2 new replicas have been updated"),
        progressing("1 out of 2 new replicas have been updated"),
        progressing("1 old replicas are pending termination"),
        progressing("1 old replicas are pending termination"),
        READY,
        // web: scale to 1
        observing.clone(),
        progressing("1 extra replicas are pending termination (scaling down to 1)"),
        READY,
        // broken: image cannot be pulled, progressDeadlineSeconds 15
        observing.clone(),
        observing.clone(),
        progressing("0 out of 1 new replicas have been updated"),
        progressing("0 of 1 updated replicas are available"),
        RolloutState::Failed {
            reason: "ProgressDeadlineExceeded".into(),
            message: "ReplicaSet \"broken-6b487cdc65\" has timed out progressing.".into(),
        },
    ];
    let events: Vec<Value> = jsonl("05-deployment-status-timeline.jsonl")
        .into_iter()
        .filter(|e| e["type"] != "BOOKMARK")
        .collect();
    assert_eq!(events.len(), expected.len());
    for (i, (e, want)) in events.iter().zip(expected).enumerate() {
        let d = json!({
            "apiVersion": "apps/v1",
            "kind": "Deployment",
            "metadata": {"name": "web", "generation": e["generation"]},
            "spec": {"replicas": e["spec.replicas"]},
            "status": e["status"],
        });
        assert_eq!(rollout_state(&d), want, "line {i} (t={})", e["t"]);
    }
}

#[test]
fn recorded_deployments() {
    assert_eq!(
        rollout_state(&http_body("05-deployment-get-available-v1.http")),
        READY
    );
    assert_eq!(
        rollout_state(&http_body("05-deployment-get-after-scale.http")),
        READY
    );
    assert_eq!(
        rollout_state(&http_body("05-deployment-progress-deadline-exceeded.http")),
        RolloutState::Failed {
            reason: "ProgressDeadlineExceeded".into(),
            message: "ReplicaSet \"broken-6b487cdc65\" has timed out progressing.".into(),
        }
    );
    // What the apply answers for a new Deployment: nothing observed yet.
    assert_eq!(
        rollout_state(&http_body("02-ssa-deployment-create.http")),
        progressing(OBSERVING)
    );
}

#[test]
fn stale_progress_deadline_is_ignored_until_the_new_spec_is_observed() {
    let mut d = http_body("05-deployment-progress-deadline-exceeded.http");
    d["metadata"]["generation"] = json!(2);
    assert_eq!(rollout_state(&d), progressing(OBSERVING));
}

#[test]
fn deployment_defaults_to_one_replica_and_zero_replicas_is_done() {
    let mut d = json!({
        "apiVersion": "apps/v1", "kind": "Deployment",
        "metadata": {"generation": 1}, "spec": {},
        "status": {"observedGeneration": 1}
    });
    assert_eq!(
        rollout_state(&d),
        progressing("0 out of 1 new replicas have been updated")
    );
    d["spec"]["replicas"] = json!(0);
    assert_eq!(rollout_state(&d), READY);
}

#[test]
fn job_timeline() {
    let lines = jsonl("05-job-status-timeline.jsonl");
    let states: Vec<RolloutState> = lines
        .iter()
        .map(|l| {
            rollout_state(&json!({
                "apiVersion": "batch/v1", "kind": "Job",
                "metadata": {"name": l["job"], "generation": l["generation"]},
                "spec": {"completions": 1, "parallelism": 1},
                "status": l["status"],
            }))
        })
        .collect();
    let failed = RolloutState::Failed {
        reason: "BackoffLimitExceeded".into(),
        message: "Job has reached the specified backoff limit".into(),
    };
    assert_eq!(
        states,
        vec![
            progressing("0 of 1 completions succeeded, 1 active"),
            progressing("0 of 1 completions succeeded, 1 active"),
            progressing("0 of 1 completions succeeded, 1 active"),
            READY,
            progressing("0 of 1 completions succeeded, 1 active"),
            failed,
        ]
    );
}

#[test]
fn recorded_jobs() {
    assert_eq!(rollout_state(&http_body("05-job-get-complete.http")), READY);
    assert_eq!(
        rollout_state(&http_body("05-job-get-failed.http")),
        RolloutState::Failed {
            reason: "BackoffLimitExceeded".into(),
            message: "Job has reached the specified backoff limit".into(),
        }
    );
    assert_eq!(
        rollout_state(&http_body("02-ssa-job-create.http")),
        progressing("0 of 1 completions succeeded, 0 active")
    );
}

#[test]
fn recorded_pods_rollout_state() {
    assert_eq!(
        rollout_state(&http_body("05-pod-running-ready.http")),
        READY
    );
    assert_eq!(rollout_state(&http_body("05-pod-completed.http")), READY);
    assert_eq!(
        rollout_state(&http_body("05-pod-failed.http")),
        RolloutState::Failed {
            reason: "Error".into(),
            message: "container `main`: Error: exited with code 3".into()
        }
    );
    assert_eq!(
        rollout_state(&http_body("05-pod-not-ready.http")),
        progressing(
            "container `main`: NotReady: running but not ready: its readiness probe has not succeeded"
        )
    );
    assert_eq!(
        rollout_state(&http_body("05-pod-init-running.http")),
        progressing("container `init`: PodInitializing: init container is still running")
    );
    // Not-ready pods stay in progress however bad it looks; failing fast is the diagnosis' job.
    assert!(matches!(
        rollout_state(&http_body("05-pod-pull-fail.http")),
        RolloutState::Progressing(m) if m.starts_with("container `main`: ImagePullBackOff: Back-off pulling image")
    ));
}

#[test]
fn other_kinds_are_not_workloads() {
    assert_eq!(
        rollout_state(&http_body("02-ssa-cm-create.http")),
        RolloutState::NotWorkload
    );
    assert_eq!(
        rollout_state(&json!({"apiVersion": "example.com/v1", "kind": "Deployment"})),
        RolloutState::NotWorkload
    );
}

#[test]
fn statefulset_rules() {
    let mut s = json!({
        "apiVersion": "apps/v1", "kind": "StatefulSet",
        "metadata": {"generation": 2},
        "spec": {"replicas": 3, "updateStrategy": {"type": "RollingUpdate"}},
        "status": {"observedGeneration": 1, "replicas": 3, "readyReplicas": 3, "updatedReplicas": 3,
                   "currentRevision": "db-1", "updateRevision": "db-1"}
    });
    assert_eq!(rollout_state(&s), progressing(OBSERVING));
    s["status"] = json!({"observedGeneration": 2, "replicas": 3, "readyReplicas": 2, "updatedReplicas": 1,
                         "currentRevision": "db-1", "updateRevision": "db-2"});
    assert_eq!(rollout_state(&s), progressing("2 of 3 pods are ready"));
    s["status"]["readyReplicas"] = json!(3);
    assert_eq!(
        rollout_state(&s),
        progressing("1 of 3 pods updated to revision `db-2`")
    );
    s["status"]["currentRevision"] = json!("db-2");
    assert_eq!(rollout_state(&s), READY);
    s["spec"]["updateStrategy"] =
        json!({"type": "RollingUpdate", "rollingUpdate": {"partition": 2}});
    s["status"]["updatedReplicas"] = json!(0);
    assert_eq!(
        rollout_state(&s),
        progressing("partitioned rollout: 0 out of 1 new pods have been updated")
    );
    s["spec"]["updateStrategy"] = json!({"type": "OnDelete"});
    assert!(
        matches!(rollout_state(&s), RolloutState::Ready { note: Some(n) } if n.contains("OnDelete"))
    );
}

#[test]
fn daemonset_rules() {
    let mut d = json!({
        "apiVersion": "apps/v1", "kind": "DaemonSet",
        "metadata": {"generation": 1}, "spec": {},
        "status": {"observedGeneration": 1, "desiredNumberScheduled": 3, "updatedNumberScheduled": 2, "numberAvailable": 2}
    });
    assert_eq!(
        rollout_state(&d),
        progressing("2 out of 3 new pods have been updated")
    );
    d["status"]["updatedNumberScheduled"] = json!(3);
    assert_eq!(
        rollout_state(&d),
        progressing("2 of 3 updated pods are available")
    );
    d["status"]["numberAvailable"] = json!(3);
    assert_eq!(rollout_state(&d), READY);
    d["metadata"]["generation"] = json!(2);
    assert_eq!(rollout_state(&d), progressing(OBSERVING));
}
