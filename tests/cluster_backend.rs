//! The typical backend (tests/fixtures/backend): kustomize base + a dev overlay that sets `namespace:` and
//! `namePrefix:`, an API Deployment ×2 + Service, a database Deployment with a PersistentVolumeClaim bound to a
//! static PersistentVolume + Service, ConfigMap and Secret generators, a one-shot migration Pod; images built by
//! devloop from the repository root. `devloop run` on a context without `-n` must bring all of it up, and
//! `devloop delete --wait` must leave nothing of it. Against the fake API server (images built by the real Docker
//! daemon), or a real cluster when `DEVLOOP_TEST_KUBECONFIG` is set (images pushed to `DEVLOOP_TEST_REGISTRY`).
#![allow(clippy::unwrap_used)]

mod support;

use std::path::Path;

use support::cluster::{Cluster, assert_exit};
use support::fake_apiserver::PodState;
use support::{Project, stderr, unique};

/// Copies the fixture into a fresh project and writes the parts that name this test: devloop.yaml (a unique
/// project and image names) and the dev overlay (the test's namespace, its own PersistentVolume).
fn backend(c: &Cluster, project: &str, pv: &str) -> Project {
    let p = Project::new();
    copy_dir(
        &Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/backend"),
        p.path(),
    );
    p.with_busybox("bin/busybox");
    p.write(
        "devloop.yaml",
        &format!(
            "apiVersion: devloop/v1alpha1\nkind: Config\nmetadata:\n  name: {project}\nbuild:\n  artifacts:\n    - image: backend-api\n      context: .\n      docker:\n        dockerfile: deploy/docker/api.Dockerfile\n    - image: backend-migrate\n      context: .\n      docker:\n        dockerfile: deploy/docker/migrate.Dockerfile\nmanifests:\n  kustomize:\n    paths: [deploy/k8s/overlays/dev]\n"
        ),
    );
    p.write(
        "deploy/k8s/overlays/dev/kustomization.yaml",
        &format!(
            "namespace: {ns}\nnamePrefix: dev-\nresources:\n  - ../../base\n  - pv.yaml\nimages:\n  - name: DB_IMAGE\n    newName: {db}\npatches:\n  - target: {{kind: PersistentVolumeClaim, name: db-data}}\n    patch: |-\n      - op: add\n        path: /spec/volumeName\n        value: {pv}\n",
            ns = c.ns,
            db = c.ok_image(),
        ),
    );
    // `namePrefix` renames the PV too; the claim's `volumeName` above names the prefixed one.
    let pv_base = pv.strip_prefix("dev-").unwrap();
    p.write(
        "deploy/k8s/overlays/dev/pv.yaml",
        &format!(
            "apiVersion: v1\nkind: PersistentVolume\nmetadata:\n  name: {pv_base}\nspec:\n  capacity:\n    storage: 1Gi\n  accessModes: [ReadWriteOnce]\n  storageClassName: \"\"\n  persistentVolumeReclaimPolicy: Delete\n  hostPath:\n    path: /tmp/{pv_base}\n    type: DirectoryOrCreate\n"
        ),
    );
    p
}

fn copy_dir(from: &Path, to: &Path) {
    for entry in std::fs::read_dir(from).unwrap() {
        let entry = entry.unwrap();
        let target = to.join(entry.file_name());
        if entry.file_type().unwrap().is_dir() {
            std::fs::create_dir_all(&target).unwrap();
            copy_dir(&entry.path(), &target);
        } else {
            std::fs::copy(entry.path(), target).unwrap();
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_typical_backend_runs_with_devloop_run_and_delete_leaves_nothing() {
    support::require_docker();
    let c = Cluster::start().await;
    // The migration runs to completion (on a real cluster its image does exactly that).
    c.fail_image("backend-migrate", PodState::Completed);
    let project = unique("backend");
    let pv = format!("dev-{}", c.ns);
    let mut p = backend(&c, &project, &pv);
    let mut args = vec!["run", "--status-check-deadline", "3m"];
    let registry = std::env::var("DEVLOOP_TEST_REGISTRY").ok();
    if let Some(r) = &registry {
        args.extend(["--default-repo", r.as_str()]);
    }
    let out = c.devloop_in(&p, &args, None).await;
    let ns = Some(c.ns.as_str());
    // The images the run built go with the test (their references, as deployed, without a digest).
    let deployed_image = |o: Option<serde_json::Value>, pointer: &str| {
        o.and_then(|o| {
            o.pointer(pointer)
                .and_then(|i| i.as_str())
                .map(str::to_string)
        })
    };
    for image in [
        deployed_image(
            c.get("apps/v1", "Deployment", ns, "dev-api").await,
            "/spec/template/spec/containers/0/image",
        ),
        deployed_image(
            c.get("v1", "Pod", ns, "dev-migrate").await,
            "/spec/containers/0/image",
        ),
    ]
    .into_iter()
    .flatten()
    {
        p.cleanup_image(image.split('@').next().unwrap_or(&image));
    }
    assert_exit(&out, 0);
    let err = stderr(&out);

    let api = c.get("apps/v1", "Deployment", ns, "dev-api").await.unwrap();
    assert_eq!(api["status"]["readyReplicas"], 2, "{err}");
    let image = api["spec"]["template"]["spec"]["containers"][0]["image"]
        .as_str()
        .unwrap();
    assert!(image.contains("backend-api:"), "the built image: {image}");
    let claim = c
        .get("v1", "PersistentVolumeClaim", ns, "dev-db-data")
        .await
        .unwrap();
    assert_eq!(claim["status"]["phase"], "Bound", "{err}");
    assert_eq!(claim["spec"]["volumeName"], pv.as_str());
    let db = c.get("apps/v1", "Deployment", ns, "dev-db").await.unwrap();
    assert_eq!(db["status"]["readyReplicas"], 1, "{err}");
    let migrate = c.get("v1", "Pod", ns, "dev-migrate").await.unwrap();
    assert_eq!(migrate["status"]["phase"], "Succeeded", "{err}");
    for (kind, name) in [("Service", "dev-api"), ("Service", "dev-db")] {
        assert!(c.get("v1", kind, ns, name).await.is_some(), "{kind} {name}");
    }

    let out = c.devloop_in(&p, &["delete", "--wait"], None).await;
    assert_exit(&out, 0);
    let err = stderr(&out);
    for (api_version, kind, name) in [
        ("apps/v1", "Deployment", "dev-api"),
        ("apps/v1", "Deployment", "dev-db"),
        ("v1", "Service", "dev-api"),
        ("v1", "Service", "dev-db"),
        ("v1", "Pod", "dev-migrate"),
        ("v1", "PersistentVolumeClaim", "dev-db-data"),
    ] {
        assert!(
            c.get(api_version, kind, ns, name).await.is_none(),
            "{kind} {name} is left: {err}"
        );
    }
    assert!(
        c.get("v1", "PersistentVolume", None, &pv).await.is_none(),
        "the PersistentVolume is left: {err}"
    );
    assert!(
        c.get("v1", "ConfigMap", ns, &format!("devloop-{project}"))
            .await
            .is_none(),
        "devloop's record is left: {err}"
    );
    // Generated ConfigMaps and Secrets carry a content hash in their names: none of them is left either.
    for kind in ["ConfigMap", "Secret"] {
        let left = c.list("v1", kind, &c.ns).await;
        assert!(
            left.iter().all(|n| !n.starts_with("dev-")),
            "{kind}s left: {left:?}"
        );
    }
    c.cleanup().await;
}
