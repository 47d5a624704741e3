//! Tests of the PersistentVolumeClaims a pod waits for: told apart from other unschedulable pods, judged against
//! volumes and storage classes, failed only after the grace.

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use serde_json::{Value, json};

use super::{http_body, jsonl};
use crate::deploy::{AppliedObject, Change, ObjectRef};
use crate::event::EventSink;
use crate::status::PodProblem;
use crate::status::claim::{
    CLAIM_GRACE, ClaimOutlook, UnboundClaim, claim_outlook, claim_that_cannot_bind, pod_claims,
    quantity_bytes, waits_for_claims,
};
use crate::status::diagnosis::diagnose_pod;
use crate::status::failure::worst_of;
use crate::status::kind::WorkloadKind;
use crate::status::wait::evaluate;
use crate::status::watch::{MANAGED_BY, Source, Watched, Watches};
use crate::status::workload::Workload;

/// The recorded pods of 10-pvc-binding-timeline.jsonl as pod objects (name, phase, conditions).
fn recorded_pvc_pods() -> Vec<Value> {
    jsonl("10-pvc-binding-timeline.jsonl")
        .into_iter()
        .filter(|l| l.get("pod").is_some())
        .map(|l| {
            json!({
                "metadata": {"name": l["pod"]},
                "status": {"phase": l["phase"], "conditions": l["conditions"]}
            })
        })
        .collect()
}

fn pending_claim(size: &str, class: Option<&str>) -> Value {
    let mut c = json!({
        "metadata": {"name": "data", "namespace": "shop", "uid": "c1"},
        "spec": {"accessModes": ["ReadWriteOnce"], "resources": {"requests": {"storage": size}}},
        "status": {"phase": "Pending"}
    });
    if let Some(class) = class {
        c["spec"]["storageClassName"] = json!(class);
    }
    c
}

fn available_volume(name: &str, size: &str) -> Value {
    json!({
        "metadata": {"name": name},
        "spec": {"capacity": {"storage": size}, "accessModes": ["ReadWriteOnce"], "storageClassName": ""},
        "status": {"phase": "Available"}
    })
}

#[test]
fn unschedulable_for_claims_is_told_apart_from_other_unschedulable_pods() {
    let pods = recorded_pvc_pods();
    let stuck = pods
        .iter()
        .find(|p| {
            p["metadata"]["name"]
                .as_str()
                .unwrap()
                .starts_with("stuck-")
        })
        .unwrap();
    let problem = diagnose_pod(stuck).unwrap();
    assert_eq!(problem.reason, "Unschedulable");
    assert!(problem.fails_fast());
    assert!(waits_for_claims(&problem));
    // What the scheduler says about a claim that does not exist (kube-scheduler's volumebinding PreFilter).
    let missing = problem_with(
        "0/1 nodes are available: persistentvolumeclaim \"data\" not found. preemption: 0/1 nodes are available: 1 Preemption is not helpful for scheduling.",
    );
    assert!(waits_for_claims(&missing));
    // No node fits: nothing to wait for.
    let affinity = diagnose_pod(&http_body("05-pod-unschedulable.http")).unwrap();
    assert!(!waits_for_claims(&affinity));
    assert!(!waits_for_claims(&problem_with(
        "0/3 nodes are available: 3 Insufficient cpu. preemption: 0/3 nodes are available: 3 No preemption victims found for incoming pod."
    )));
}

fn problem_with(message: &str) -> PodProblem {
    PodProblem {
        pod: "p".into(),
        container: None,
        reason: "Unschedulable".into(),
        message: message.into(),
    }
}

#[test]
fn a_pods_claims_are_its_claim_volumes_and_ephemeral_volumes() {
    let pod = json!({
        "metadata": {"name": "db-0"},
        "spec": {"volumes": [
            {"name": "data", "persistentVolumeClaim": {"claimName": "db-data"}},
            {"name": "scratch", "ephemeral": {"volumeClaimTemplate": {"spec": {}}}},
            {"name": "config", "configMap": {"name": "settings"}},
        ]}
    });
    assert_eq!(pod_claims(&pod), ["db-data", "db-0-scratch"]);
}

#[test]
fn quantities_compare_across_units() {
    assert_eq!(quantity_bytes("1Gi"), Some(1024.0 * 1024.0 * 1024.0));
    assert_eq!(quantity_bytes("500Mi"), Some(500.0 * 1024.0 * 1024.0));
    assert_eq!(quantity_bytes("2G"), Some(2e9));
    assert_eq!(
        quantity_bytes("1.5Gi"),
        Some(1.5 * 1024.0 * 1024.0 * 1024.0)
    );
    assert_eq!(quantity_bytes("1024"), Some(1024.0));
    assert_eq!(quantity_bytes("lots"), None);
    assert!(quantity_bytes("1G").unwrap() < quantity_bytes("1Gi").unwrap());
}

#[test]
fn a_claim_may_bind_when_a_volume_fits_or_a_class_can_provision_it() {
    let claim = pending_claim("1Gi", Some(""));
    let fits = [available_volume("pv-a", "2Gi")];
    let may = |o: ClaimOutlook| matches!(o, ClaimOutlook::MayBind(_));
    assert!(may(claim_outlook(Some(&claim), Some(&fits), Some(&[]))));
    // Reserved for this claim (claimRef) even while another phase shows.
    let mut reserved = available_volume("pv-r", "1Gi");
    reserved["spec"]["claimRef"] = json!({"namespace": "shop", "name": "data"});
    reserved["status"]["phase"] = json!("Pending");
    assert!(may(claim_outlook(
        Some(&claim),
        Some(&[reserved]),
        Some(&[])
    )));
    // A storage class: a provisioner may create the volume.
    let classed = pending_claim("1Gi", Some("fast"));
    assert!(may(claim_outlook(Some(&classed), Some(&[]), Some(&[]))));
    // No class at all while a default StorageClass exists, or while classes cannot be listed.
    let classless = pending_claim("1Gi", None);
    let default = json!({"metadata": {"name": "standard", "annotations": {"storageclass.kubernetes.io/is-default-class": "true"}}});
    assert!(may(claim_outlook(
        Some(&classless),
        Some(&[]),
        Some(&[default])
    )));
    assert!(may(claim_outlook(Some(&classless), Some(&[]), None)));
    // PersistentVolumes cannot be listed (RBAC): no guess.
    assert!(may(claim_outlook(Some(&claim), None, Some(&[]))));
    // Bound already.
    let mut bound = claim.clone();
    bound["status"]["phase"] = json!("Bound");
    assert_eq!(
        claim_outlook(Some(&bound), Some(&[]), Some(&[])),
        ClaimOutlook::Bound
    );
}

#[test]
fn a_claim_cannot_bind_when_no_volume_fits_and_no_class_is_set() {
    let cannot = |o: ClaimOutlook| matches!(o, ClaimOutlook::CannotBind(_));
    // The recorded case: 5Gi, no volume that large, storageClassName "".
    let claim = pending_claim("5Gi", Some(""));
    assert_eq!(
        claim_outlook(
            Some(&claim),
            Some(&[available_volume("pv-a", "1Gi")]),
            Some(&[])
        ),
        ClaimOutlook::CannotBind(
            "no PersistentVolume fits it and no storage class is set to provision one".into()
        )
    );
    // Absent and "" are the same class when no default StorageClass exists.
    let classless = pending_claim("1Gi", None);
    assert!(!cannot(claim_outlook(
        Some(&classless),
        Some(&[available_volume("pv-a", "1Gi")]),
        Some(&[])
    )));
    let small = pending_claim("1Gi", Some(""));
    let mut other_class = available_volume("pv-m", "1Gi");
    other_class["spec"]["storageClassName"] = json!("manual");
    let mut read_many = available_volume("pv-x", "1Gi");
    read_many["spec"]["accessModes"] = json!(["ReadOnlyMany"]);
    let mut taken = available_volume("pv-t", "1Gi");
    taken["spec"]["claimRef"] = json!({"namespace": "other", "name": "data"});
    taken["status"]["phase"] = json!("Bound");
    let mut released = available_volume("pv-r", "1Gi");
    released["status"]["phase"] = json!("Released");
    for pv in [other_class, read_many, taken, released] {
        assert!(
            cannot(claim_outlook(
                Some(&small),
                Some(std::slice::from_ref(&pv)),
                Some(&[])
            )),
            "{pv}"
        );
    }
    let mut selective = small.clone();
    selective["spec"]["selector"] = json!({"matchLabels": {"disk": "ssd"}});
    assert!(cannot(claim_outlook(
        Some(&selective),
        Some(&[available_volume("pv-a", "1Gi")]),
        Some(&[])
    )));
    let mut named = small.clone();
    named["spec"]["volumeName"] = json!("pv-gone");
    assert!(cannot(claim_outlook(
        Some(&named),
        Some(&[available_volume("pv-a", "1Gi")]),
        Some(&[])
    )));
    assert_eq!(
        claim_outlook(None, Some(&[]), Some(&[])),
        ClaimOutlook::CannotBind("it does not exist".into())
    );
}

#[test]
fn a_claim_that_cannot_bind_fails_only_after_the_grace_and_says_who_said_why() {
    let claim = UnboundClaim {
        label: "persistentvolumeclaim `never-bound` (namespace `shop`; 5Gi, ReadWriteOnce, storageClassName \"\")".into(),
        outlook: ClaimOutlook::CannotBind("no PersistentVolume fits it and no storage class is set to provision one".into()),
        last_event: Some((
            "persistentvolume-controller".into(),
            "no persistent volumes available for this claim and no storage class is set".into(),
        )),
        events: Vec::new(),
        hint: String::new(),
        exists: true,
    };
    assert!(claim_that_cannot_bind(vec![claim.clone()], Duration::from_secs(1)).is_none());
    let failed = claim_that_cannot_bind(vec![claim], CLAIM_GRACE).unwrap();
    assert_eq!(
        failed.describe(),
        "persistentvolumeclaim `never-bound` (namespace `shop`; 5Gi, ReadWriteOnce, storageClassName \"\") cannot bind: no PersistentVolume fits it and no storage class is set to provision one; persistentvolume-controller: \"no persistent volumes available for this claim and no storage class is set\""
    );
    let waiting = UnboundClaim {
        label: "persistentvolumeclaim `db-data` (namespace `shop`; 1Gi, ReadWriteOnce, storageClassName \"\")".into(),
        outlook: ClaimOutlook::MayBind("PersistentVolume `pv-a` fits it".into()),
        last_event: None,
        events: Vec::new(),
        hint: String::new(),
        exists: true,
    };
    assert!(claim_that_cannot_bind(vec![waiting.clone()], Duration::from_secs(60)).is_none());
    assert_eq!(
        waiting.describe(),
        "persistentvolumeclaim `db-data` (namespace `shop`; 1Gi, ReadWriteOnce, storageClassName \"\") is not bound yet (PersistentVolume `pv-a` fits it); no event about it yet"
    );
}

#[test]
fn a_pod_held_back_by_its_claims_is_waited_for_and_other_unschedulable_pods_fail() {
    let applied = AppliedObject {
        reference: ObjectRef {
            api_version: "v1".into(),
            kind: "Pod".into(),
            namespace: Some("shop".into()),
            name: "db".into(),
        },
        change: Change::Created,
        generation: 0,
        object: json!({"metadata": {"name": "db"}}),
    };
    let judge = |message: &str| {
        let pod = json!({
            "metadata": {"name": "db"},
            "spec": {"volumes": [{"name": "data", "persistentVolumeClaim": {"claimName": "db-data"}}]},
            "status": {"phase": "Pending", "conditions": [{"type": "PodScheduled", "status": "False", "reason": "Unschedulable", "message": message}]}
        });
        let watches = Watches {
            watched: vec![Watched {
                source: Source::Pods {
                    namespace: "shop".into(),
                    selector: MANAGED_BY.into(),
                },
                objects: BTreeMap::from([("db".to_string(), pod)]),
                relist: None,
                synced: true,
            }],
        };
        let mut workloads = vec![Workload::new(&applied, WorkloadKind::Pod, "shop")];
        let failure = evaluate(
            &mut workloads,
            &watches,
            &EventSink::new(|_| {}),
            Instant::now(),
        );
        (failure.map(|f| f.reason), workloads[0].claim_wait.is_some())
    };
    assert_eq!(
        judge(
            "0/1 nodes are available: pod has unbound immediate PersistentVolumeClaims. not found"
        ),
        (None, true)
    );
    assert_eq!(
        judge(
            "0/1 nodes are available: 1 Insufficient cpu. preemption: 0/1 nodes are available: 1 No preemption victims found for incoming pod."
        ),
        (Some("Unschedulable".to_string()), false)
    );
    // A pod of the same workload that cannot start is reported before one waiting for its claim.
    let waiting = json!({
        "metadata": {"name": "db-a"},
        "status": {"phase": "Pending", "conditions": [{"type": "PodScheduled", "status": "False", "reason": "Unschedulable", "message": "0/1 nodes are available: pod has unbound immediate PersistentVolumeClaims. not found"}]}
    });
    let mut pulling = http_body("05-pod-pull-fail.http");
    pulling["metadata"]["name"] = json!("db-b");
    let (worst, _) = worst_of(vec![&waiting, &pulling]).unwrap();
    assert_eq!(worst.reason, "ImagePullBackOff");
}
