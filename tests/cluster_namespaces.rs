//! Namespaces and a deployment's identity, as users meet them on real clusters: kubeconfig contexts without a
//! namespace, kustomizations that set `namespace:`, `-n` that contradicts a manifest, and the same project
//! deployed twice in one cluster (one namespace per developer) — neither deployment may touch the other.
//! Against the fake API server, or a real cluster when `DEVLOOP_TEST_KUBECONFIG` is set.
#![allow(clippy::unwrap_used)]

mod support;

use std::process::Stdio;
use std::time::{Duration, Instant};

use serde_json::Value;
use support::cluster::{Cluster, assert_exit, configmap, deployment, project};
use support::{Project, stderr, stdout};
use tokio::io::{AsyncBufReadExt, BufReader};

/// A project whose kustomization puts everything into `namespace` with `namePrefix: dev-`.
fn overlay_project(name: &str, namespace: &str, image: &str) -> Project {
    let p = Project::new();
    p.write(
        "devloop.yaml",
        &format!("apiVersion: devloop/v1alpha1\nkind: Config\nmetadata:\n  name: {name}\nmanifests:\n  kustomize:\n    paths: [k8s/overlays/dev]\n"),
    );
    p.write(
        "k8s/base/kustomization.yaml",
        "resources: [api.yaml, settings.yaml]\n",
    );
    p.write("k8s/base/api.yaml", &deployment("api", image));
    p.write("k8s/base/settings.yaml", &configmap("settings", "1"));
    p.write(
        "k8s/overlays/dev/kustomization.yaml",
        &format!("namespace: {namespace}\nnamePrefix: dev-\nresources: [../../base]\n"),
    );
    p
}

/// Regression (real clusters): "namespace `shop` conflicts with the requested namespace `default`" — a
/// kustomization's `namespace:` was refused on a context without a namespace.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_kustomize_overlay_with_its_own_namespace_deploys_there_on_a_context_without_one() {
    let c = Cluster::start().await;
    let name = support::unique("shop");
    let p = overlay_project(&name, &c.ns, &c.ok_image());
    let out = c.devloop_in(&p, &["run"], None).await;
    assert_exit(&out, 0);
    assert!(
        c.get("apps/v1", "Deployment", Some(&c.ns), "dev-api")
            .await
            .is_some(),
        "{}",
        stderr(&out)
    );
    assert!(
        c.get("v1", "ConfigMap", Some(&c.ns), "dev-settings")
            .await
            .is_some()
    );
    assert!(
        c.get("apps/v1", "Deployment", Some("default"), "dev-api")
            .await
            .is_none(),
        "nothing goes to the context's namespace"
    );
    // The human summary names where it went.
    assert!(stderr(&out).contains(&c.ns), "{}", stderr(&out));
    // delete finds the deployment where the overlay put it, with nothing but the kubeconfig.
    let out = c.devloop_in(&p, &["delete", "--wait"], None).await;
    assert_exit(&out, 0);
    assert!(
        c.get("apps/v1", "Deployment", Some(&c.ns), "dev-api")
            .await
            .is_none(),
        "{}",
        stderr(&out)
    );
    assert!(
        c.get("v1", "ConfigMap", Some(&c.ns), &format!("devloop-{name}"))
            .await
            .is_none(),
        "devloop's record of the deployment goes last"
    );
    c.cleanup().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn n_that_contradicts_a_manifest_is_a_usage_error_in_kubectl_words() {
    let c = Cluster::start().await;
    let mut cm: Value = serde_saphyr::from_str(&configmap("settings", "1")).unwrap();
    cm["metadata"]["namespace"] = Value::String("somewhere-else".into());
    let p = project(&[("cm.yaml", serde_json::to_string(&cm).unwrap())]);
    let out = c.devloop(&p, &["deploy", "--images", "unused=x:1"]).await;
    assert_exit(&out, 2);
    let err = stderr(&out);
    assert!(
        err.contains(&format!(
            "the namespace from the provided object `somewhere-else` does not match the namespace `{}`",
            c.ns
        )),
        "{err}"
    );
    assert!(err.contains("hint: pass `-n somewhere-else`"), "{err}");
    assert!(
        c.get("v1", "ConfigMap", Some("somewhere-else"), "settings")
            .await
            .is_none(),
        "nothing applied"
    );
    c.cleanup().await;
}

/// Regression (real clusters): the tests of this very file, all named `shop` in their own namespaces, pruned
/// each other's objects: the inventory was every object in the cluster with the project label.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn one_project_in_two_namespaces_never_touches_the_other() {
    let c = Cluster::start().await;
    let other = format!("{}-b", c.ns);
    // Deliberately the same project name in both namespaces (two developers, one shared cluster).
    let name = support::unique("shared");
    let full = |p: &Project| {
        p.write("k8s/api.yaml", &deployment("api", &c.ok_image()));
        p.write("k8s/settings.yaml", &configmap("settings", "1"));
        p.write("k8s/extra.yaml", &configmap("extra", "1"));
    };
    let alice = named_project(&name);
    full(&alice);
    let bob = named_project(&name);
    full(&bob);
    assert_exit(
        &c.devloop_in(&alice, &["deploy", "--images", "x=y:1"], Some(&c.ns))
            .await,
        0,
    );
    assert_exit(
        &c.devloop_in(&bob, &["deploy", "--images", "x=y:1"], Some(&other))
            .await,
        0,
    );

    // Alice drops a ConfigMap: pruned in her namespace only.
    std::fs::remove_file(alice.path().join("k8s/extra.yaml")).unwrap();
    let out = c
        .devloop_in(&alice, &["deploy", "--images", "x=y:1"], Some(&c.ns))
        .await;
    assert_exit(&out, 0);
    assert!(
        c.get("v1", "ConfigMap", Some(&c.ns), "extra")
            .await
            .is_none(),
        "{}",
        stderr(&out)
    );
    assert!(
        c.get("v1", "ConfigMap", Some(&other), "extra")
            .await
            .is_some(),
        "bob's ConfigMap was pruned by alice's deploy: {}",
        stderr(&out)
    );

    // Alice deletes: bob's deployment is whole.
    let out = c
        .devloop_in(&alice, &["delete", "--wait"], Some(&c.ns))
        .await;
    assert_exit(&out, 0);
    assert!(
        !stderr(&out).contains(&other),
        "delete reached bob's namespace: {}",
        stderr(&out)
    );
    for (kind, api_version, name) in [
        ("Deployment", "apps/v1", "api"),
        ("ConfigMap", "v1", "settings"),
        ("ConfigMap", "v1", "extra"),
    ] {
        assert!(
            c.get(api_version, kind, Some(&c.ns), name).await.is_none(),
            "alice's {kind} {name} is left"
        );
        assert!(
            c.get(api_version, kind, Some(&other), name).await.is_some(),
            "bob's {kind} {name} is gone"
        );
    }

    // Alice's `dev` session cleans up only hers on exit, too.
    let session = DevSession::start(&c, &alice, &c.ns).await;
    session.stop().await;
    assert!(
        c.get("apps/v1", "Deployment", Some(&c.ns), "api")
            .await
            .is_none(),
        "dev cleaned up its own deployment"
    );
    assert!(
        c.get("apps/v1", "Deployment", Some(&other), "api")
            .await
            .is_some(),
        "dev cleanup reached bob's deployment"
    );
    let out = c
        .devloop_in(&bob, &["delete", "--wait"], Some(&other))
        .await;
    assert_exit(&out, 0);
    c.cleanup().await;
    c.delete_namespace(&other).await;
}

/// A project with no artifacts named `name`, whose manifests are `k8s/*.yaml`.
fn named_project(name: &str) -> Project {
    let p = Project::new();
    p.write(
        "devloop.yaml",
        &format!("apiVersion: devloop/v1alpha1\nkind: Config\nmetadata:\n  name: {name}\nmanifests:\n  rawYaml: [\"k8s/*.yaml\"]\n"),
    );
    p
}

/// A `devloop dev -o json` child, up to its first ready iteration.
struct DevSession {
    child: tokio::process::Child,
}

impl DevSession {
    async fn start(c: &Cluster, p: &Project, namespace: &str) -> DevSession {
        let mut child = tokio::process::Command::new(env!("CARGO_BIN_EXE_devloop"))
            .args(["dev", "-o", "json", "--kubeconfig"])
            .arg(&c.kubeconfig)
            .args(["-n", namespace])
            .current_dir(p.path())
            .env("DEVLOOP_CACHE_DIR", p.cache.path())
            .env_remove("KUBECONFIG")
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .kill_on_drop(true)
            .spawn()
            .unwrap();
        let mut lines = BufReader::new(child.stdout.take().unwrap()).lines();
        let deadline = Instant::now() + Duration::from_secs(120);
        loop {
            let left = deadline.saturating_duration_since(Instant::now());
            let line = tokio::time::timeout(left, lines.next_line())
                .await
                .expect("the first iteration in time")
                .unwrap()
                .expect("devloop dev exited before its first iteration");
            let event: Value = serde_json::from_str(&line).unwrap();
            if event["type"] == "iteration" {
                break;
            }
        }
        DevSession { child }
    }

    /// Ctrl-C, and the exit after the cleanup.
    async fn stop(mut self) {
        let pid = self.child.id().unwrap().to_string();
        let kill = std::process::Command::new("kill")
            .args(["-INT", &pid])
            .status()
            .unwrap();
        assert!(kill.success());
        let status = tokio::time::timeout(Duration::from_secs(90), self.child.wait())
            .await
            .expect("devloop dev exits after Ctrl-C")
            .unwrap();
        assert!(status.code().is_some(), "exited, not killed: {status:?}");
    }
}

/// Manifests broken after the deploy must not keep what they deployed in the cluster.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn delete_works_when_the_manifests_no_longer_render() {
    let c = Cluster::start().await;
    let p = named_project(&support::unique("broken"));
    p.write("k8s/settings.yaml", &configmap("settings", "1"));
    assert_exit(&c.devloop(&p, &["deploy", "--images", "x=y:1"]).await, 0);
    p.write(
        "k8s/settings.yaml",
        "apiVersion: v1\nkind: ConfigMap\nmetadata: [not, a, mapping\n",
    );
    let out = c.devloop(&p, &["delete", "--wait"]).await;
    assert_exit(&out, 0);
    let err = stderr(&out);
    assert!(err.contains("cannot render the manifests"), "{err}");
    assert!(
        c.get("v1", "ConfigMap", Some(&c.ns), "settings")
            .await
            .is_none(),
        "{err}"
    );
    c.cleanup().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_configmap_of_the_users_that_has_the_record_name_is_never_taken_over() {
    let c = Cluster::start().await;
    let name = support::unique("shop");
    c.create_foreign_configmap(&format!("devloop-{name}")).await;
    let p = named_project(&name);
    p.write("k8s/settings.yaml", &configmap("settings", "1"));
    let out = c.devloop(&p, &["deploy", "--images", "x=y:1"]).await;
    assert_exit(&out, 1);
    let err = stderr(&out);
    assert!(
        err.contains(&format!("configmap/devloop-{name}"))
            && err.contains("is not devloop's record"),
        "{err}"
    );
    let theirs = c
        .get("v1", "ConfigMap", Some(&c.ns), &format!("devloop-{name}"))
        .await
        .unwrap();
    assert_eq!(theirs["data"]["owner"], "someone else", "{}", stdout(&out));
    c.cleanup().await;
}
