//! PersistentVolume scenarios of `devloop deploy` against a Kubernetes API: the fake API server in
//! `tests/support`, or a real cluster when `DEVLOOP_TEST_KUBECONFIG` names its kubeconfig (same scenarios, same
//! assertions). A claim that binds seconds after its pod was created is waited out; one that can never bind fails
//! fast, naming the claim and quoting the PV controller.
//!
//! Real-cluster notes: PersistentVolumes are cluster-scoped, so each test names its own (`devloop-pv-<pid>-<n>`,
//! a hostPath under /tmp) and deletes it at the end; claims use `storageClassName: ""` so that a default
//! StorageClass does not provision them.
#![allow(clippy::unwrap_used)]

mod support;

use std::process::Stdio;

use k8s_openapi::api::core::v1::{PersistentVolume, Pod};
use kube::api::{Api, ListParams, PostParams};
use serde_json::Value;

use support::cluster::{Cluster, assert_exit};
use support::{Project, stderr, unique};

/// The message the PV controller records on a claim no volume fits when no storage class is set.
const NO_VOLUME_NO_CLASS: &str =
    "no persistent volumes available for this claim and no storage class is set";

/// A project with a unique name whose one manifest file holds `docs` in the given order.
fn volume_project(docs: &[String]) -> Project {
    let p = Project::new();
    p.write(
        "devloop.yaml",
        &format!(
            "apiVersion: devloop/v1alpha1\nkind: Config\nmetadata:\n  name: {}\nmanifests:\n  rawYaml: [\"k8s/*.yaml\"]\n",
            unique("vols")
        ),
    );
    p.write("k8s/all.yaml", &docs.join("---\n"));
    p
}

fn volume(name: &str, size: &str) -> String {
    format!(
        "apiVersion: v1\nkind: PersistentVolume\nmetadata:\n  name: {name}\nspec:\n  capacity: {{storage: {size}}}\n  accessModes: [ReadWriteOnce]\n  persistentVolumeReclaimPolicy: Retain\n  storageClassName: \"\"\n  hostPath: {{path: /tmp/{name}}}\n"
    )
}

fn claim(name: &str, size: &str) -> String {
    format!(
        "apiVersion: v1\nkind: PersistentVolumeClaim\nmetadata:\n  name: {name}\nspec:\n  accessModes: [ReadWriteOnce]\n  storageClassName: \"\"\n  resources: {{requests: {{storage: {size}}}}}\n"
    )
}

/// A Deployment whose pod mounts claim `claim` at /data.
fn deployment_with_claim(name: &str, image: &str, claim: &str) -> String {
    format!(
        "apiVersion: apps/v1\nkind: Deployment\nmetadata:\n  name: {name}\nspec:\n  replicas: 1\n  selector:\n    matchLabels: {{app: {name}}}\n  template:\n    metadata:\n      labels: {{app: {name}}}\n    spec:\n      containers:\n        - name: main\n          image: {image}\n          volumeMounts: [{{name: data, mountPath: /data}}]\n      volumes:\n        - name: data\n          persistentVolumeClaim: {{claimName: {claim}}}\n"
    )
}

/// Deletes a test's PersistentVolume (cluster-scoped: the namespace's deletion does not take it along).
async fn delete_volume(c: &Cluster, name: &str) {
    let api: Api<PersistentVolume> = Api::all(c.client.clone());
    let _ = api.delete(name, &Default::default()).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn pv_pvc_and_deployment_applied_together_become_ready() {
    let c = Cluster::start().await;
    let pv = unique("devloop-pv");
    // As a user writes it: the workload first, its claim, then the volume, in one file.
    let p = volume_project(&[
        deployment_with_claim("db", &c.ok_image(), "db-data"),
        claim("db-data", "1Gi"),
        volume(&pv, "1Gi"),
    ]);
    let out = c
        .devloop(&p, &["deploy", "--status-check-deadline", "2m"])
        .await;
    assert_exit(&out, 0);
    let err = stderr(&out);
    assert!(
        err.contains("deployment/db") && err.contains("ready") && !err.contains("failed"),
        "{err}"
    );
    let bound = c
        .get("v1", "PersistentVolumeClaim", Some(&c.ns), "db-data")
        .await
        .unwrap();
    assert_eq!(bound["status"]["phase"], "Bound");
    assert_eq!(bound["spec"]["volumeName"], pv.as_str());
    c.cleanup().await;
    delete_volume(&c, &pv).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_claim_that_can_never_bind_fails_fast_naming_it() {
    let c = Cluster::start().await;
    let p = volume_project(&[
        deployment_with_claim("stuck", &c.ok_image(), "never-bound"),
        claim("never-bound", "5Gi"),
    ]);
    let out = c
        .devloop(&p, &["deploy", "--status-check-deadline", "2m"])
        .await;
    assert_exit(&out, 1);
    let err = stderr(&out);
    assert!(
        !err.contains("deadline"),
        "fails before the deadline:\n{err}"
    );
    assert!(
        err.contains("persistentvolumeclaim `never-bound`")
            && err.contains(&format!("namespace `{}`", c.ns))
            && err.contains("5Gi")
            && err.contains(NO_VOLUME_NO_CLASS)
            && err.contains("pod `stuck-")
            && err.contains("hint: create a PersistentVolume"),
        "names the claim and quotes the PV controller:\n{err}"
    );
    c.cleanup().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_claim_bound_after_the_deploy_started_lets_its_pod_become_ready() {
    let c = Cluster::start().await;
    let pv = unique("devloop-pv");
    let p = volume_project(&[
        claim("db-data", "1Gi"),
        deployment_with_claim("db", &c.ok_image(), "db-data"),
    ]);
    let mut child = tokio::process::Command::new(env!("CARGO_BIN_EXE_devloop"))
        .args(["deploy", "-o", "json", "--status-check-deadline", "2m"])
        .arg("--kubeconfig")
        .arg(&c.kubeconfig)
        .args(["-n", &c.ns])
        .current_dir(p.path())
        .env("DEVLOOP_CACHE_DIR", p.cache.path())
        .env("NO_COLOR", "1")
        .env_remove("KUBECONFIG")
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .kill_on_drop(true)
        .spawn()
        .unwrap();
    // The pod waits for its claim (what devloop sees too) before the volume exists.
    let pods: Api<Pod> = Api::namespaced(c.client.clone(), &c.ns);
    loop {
        let list = pods
            .list(&ListParams::default().labels("app=db"))
            .await
            .unwrap();
        let held_back = list.items.iter().any(|pod| {
            pod.status
                .as_ref()
                .and_then(|s| s.conditions.as_ref())
                .is_some_and(|conds| {
                    conds.iter().any(|cond| {
                        cond.type_ == "PodScheduled"
                            && cond.reason.as_deref() == Some("Unschedulable")
                            && cond
                                .message
                                .as_deref()
                                .is_some_and(|m| m.contains("PersistentVolumeClaims"))
                    })
                })
        });
        if held_back {
            break;
        }
        assert!(
            child.try_wait().unwrap().is_none(),
            "devloop ended before the pod was held back by its claim"
        );
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    }
    // Now the volume appears, as another step of the user's setup would create it.
    let volume_object: PersistentVolume = serde_saphyr::from_str(&volume(&pv, "1Gi")).unwrap();
    Api::<PersistentVolume>::all(c.client.clone())
        .create(&PostParams::default(), &volume_object)
        .await
        .unwrap();
    let out = child.wait_with_output().await.unwrap();
    let rest: Vec<Value> = String::from_utf8_lossy(&out.stdout)
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    assert_eq!(
        out.status.code(),
        Some(0),
        "events: {rest:#?}\nstderr:\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(
        rest.iter()
            .any(|e| e["type"] == "rolloutReady" && e["data"]["object"] == "deployment/db"),
        "{rest:#?}"
    );
    c.cleanup().await;
    delete_volume(&c, &pv).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn without_rights_to_list_volumes_the_deadline_names_the_unbound_claim() {
    let c = Cluster::start().await;
    // A developer on a shared cluster who may not list PersistentVolumes (cluster-scoped): devloop cannot tell
    // whether the claim will bind, so it waits; the fake stands in for that RBAC setup.
    let Some(fake) = &c.fake else { return };
    fake.deny("list", "persistentvolumes", None);
    let p = volume_project(&[
        deployment_with_claim("stuck", &c.ok_image(), "never-bound"),
        claim("never-bound", "5Gi"),
    ]);
    let out = c
        .devloop(&p, &["deploy", "--status-check-deadline", "8s"])
        .await;
    assert_exit(&out, 1);
    let err = stderr(&out);
    assert!(
        err.contains("status check deadline of 8s exceeded")
            && err.contains("waits for its claim: persistentvolumeclaim `never-bound`")
            && err.contains("PersistentVolumes cannot be listed")
            && err.contains(NO_VOLUME_NO_CLASS)
            && err.contains("hint: create a PersistentVolume that fits the claim"),
        "the deadline names the claim and quotes the PV controller:\n{err}"
    );
    c.cleanup().await;
}
