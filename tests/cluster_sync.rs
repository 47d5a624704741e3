//! File sync into Kubernetes pods during `devloop dev`, against the fake API server (whose containers have a
//! filesystem and really run the exec'd commands) or a real cluster (`DEVLOOP_TEST_KUBECONFIG`; the image is pushed
//! to `DEVLOOP_TEST_REGISTRY`, skipped without one). What a user sees: an edit is in every replica without a
//! build, a new pod or a restart; a deletion too; a file no rule takes rebuilds; an image without `tar` still
//! syncs through its shell; an image without a shell rebuilds and says why; a pod replaced after a sync gets
//! everything synced since the build at once, without another save.
#![allow(clippy::unwrap_used, clippy::print_stderr)]

mod support;

use std::path::Path;

use k8s_openapi::api::core::v1::Pod;
use kube::api::{Api, DeleteParams, ListParams};
use serde_json::Value;
use support::Project;
use support::cluster::Cluster;
use support::dev::Dev;

/// The busybox applets of a "full" image.
const FULL: &[&str] = &[
    "sh", "tar", "mkdir", "mv", "rm", "head", "chmod", "cat", "httpd",
];
/// An image with a shell and coreutils but no tar.
const NO_TAR: &[&str] = &["sh", "mkdir", "mv", "rm", "head", "chmod", "cat", "httpd"];

/// A project whose image is busybox with `applets` linked, serving `www/`, synced by a `sync.manual` rule, run by
/// a Deployment of `replicas` pods.
fn project(image: &str, applets: &[&str], replicas: u32) -> Project {
    project_with(image, applets, replicas, "")
}

/// [`project`] with more keys under the artifact's `sync:` (YAML lines indented for it).
fn project_with(image: &str, applets: &[&str], replicas: u32, sync_extra: &str) -> Project {
    let p = Project::new();
    p.with_busybox("bin/busybox");
    link_applets(&p.path().join("bin"), applets);
    p.write(
        "devloop.yaml",
        &format!(
            "apiVersion: devloop/v1alpha1\nkind: Config\nmetadata:\n  name: {image}\nbuild:\n  artifacts:\n    - image: {image}\n      sync:\n        manual:\n          - {{src: \"www/**\", dest: /www, strip: \"www/\"}}\n{sync_extra}manifests:\n  rawYaml: [\"k8s/*.yaml\"]\n"
        ),
    );
    p.write(
        "Dockerfile",
        "FROM scratch\nCOPY bin/ /bin/\nCOPY www /www\nCMD [\"/bin/busybox\", \"httpd\", \"-f\", \"-p\", \"8080\", \"-h\", \"/www\"]\n",
    );
    p.write(".dockerignore", "k8s\n");
    p.write("www/index.html", "v1\n");
    p.write(
        "k8s/web.yaml",
        &format!(
            "apiVersion: apps/v1\nkind: Deployment\nmetadata:\n  name: web\nspec:\n  replicas: {replicas}\n  selector:\n    matchLabels: {{app: web}}\n  template:\n    metadata:\n      labels: {{app: web}}\n    spec:\n      containers:\n        - name: web\n          image: {image}\n          ports: [{{containerPort: 8080}}]\n"
        ),
    );
    p
}

#[cfg(unix)]
fn link_applets(bin: &Path, applets: &[&str]) {
    for a in applets {
        std::os::unix::fs::symlink("busybox", bin.join(a)).unwrap();
    }
}

/// What the image contains, for the fake's containers: the same files the Dockerfile copies.
fn image_root(p: &Project) -> tempfile::TempDir {
    let root = tempfile::tempdir().unwrap();
    let copy = |from: &str, to: &str| {
        let status = std::process::Command::new("cp")
            .args(["-a", &p.path().join(from).display().to_string()])
            .arg(root.path().join(to))
            .status()
            .unwrap();
        assert!(status.success());
    };
    copy("bin", "bin");
    copy("www", "www");
    root
}

/// Starts `devloop dev` for `p` in the cluster's namespace, pushing to `DEVLOOP_TEST_REGISTRY` when set; `None`
/// on a real cluster without a registry (the image could not reach the nodes).
async fn start(c: &Cluster, p: &Project, image: &str) -> Option<(Dev, tempfile::TempDir)> {
    let registry = std::env::var("DEVLOOP_TEST_REGISTRY").ok();
    if c.fake.is_none() && registry.is_none() {
        eprintln!(
            "skipped on a real cluster without DEVLOOP_TEST_REGISTRY: the built image must reach the nodes"
        );
        return None;
    }
    let root = image_root(p);
    c.set_image_root(image, root.path());
    let mut args: Vec<String> = vec!["--debounce".into(), "50".into()];
    args.extend(["--kubeconfig".into(), c.kubeconfig.display().to_string()]);
    args.extend(["-n".into(), c.ns.clone()]);
    if let Some(r) = registry {
        args.extend(["--default-repo".into(), r]);
    }
    let mut dev = Dev::spawn(p.path(), p.cache.path(), &args, &[("NO_COLOR", "1")]);
    dev.until("the first deploy to be ready", |e| e["type"] == "iteration")
        .await;
    Some((dev, root))
}

/// The running pods of the Deployment `web`: `(name, restart count of container web)`.
async fn pods(c: &Cluster) -> Vec<(String, i32)> {
    pods_in(c, &c.ns).await
}

/// [`pods`] in namespace `ns`.
async fn pods_in(c: &Cluster, ns: &str) -> Vec<(String, i32)> {
    let api: Api<Pod> = Api::namespaced(c.client.clone(), ns);
    let list = api
        .list(&ListParams::default().labels("app=web"))
        .await
        .unwrap();
    let mut out: Vec<(String, i32)> = list
        .items
        .iter()
        .filter(|p| p.metadata.deletion_timestamp.is_none())
        .filter(|p| p.status.as_ref().and_then(|s| s.phase.as_deref()) == Some("Running"))
        .map(|p| {
            let restarts = p
                .status
                .as_ref()
                .and_then(|s| s.container_statuses.as_ref())
                .and_then(|cs| cs.iter().find(|c| c.name == "web"))
                .map(|c| c.restart_count)
                .unwrap_or(0);
            (p.metadata.name.clone().unwrap(), restarts)
        })
        .collect();
    out.sort();
    out
}

/// How a save ended: the `synced` event when files were synced (and nothing rebuilt), else the `iteration` (or
/// `iterationFailed`) event that ended its iteration.
async fn next_outcome(dev: &mut Dev) -> Value {
    let from = dev.seen();
    let end = dev
        .until("the iteration of the save", |e| {
            e["type"] == "iteration" || e["type"] == "iterationFailed"
        })
        .await;
    let synced = dev.events_since(from, "synced");
    match synced.as_slice() {
        [one] if end["data"]["rebuilt"] == serde_json::json!([]) => one.clone(),
        _ => end,
    }
}

async fn file(c: &Cluster, pod: &str, path: &str) -> Option<String> {
    c.read_file(pod, "web", path)
        .await
        .map(|b| String::from_utf8_lossy(&b).into_owned())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_edit_reaches_every_replica_without_a_build_a_new_pod_or_a_restart() {
    support::require_docker();
    let c = Cluster::start().await;
    let image = support::unique("devloop-sync");
    let p = project(&image, FULL, 2);
    let Some((mut dev, _root)) = start(&c, &p, &image).await else {
        return;
    };
    let before = pods(&c).await;
    assert_eq!(before.len(), 2, "{}", dev.transcript());
    let from = dev.seen();

    p.write("www/index.html", "v2\n");
    let e = next_outcome(&mut dev).await;
    assert_eq!(e["type"], "synced", "{}", dev.transcript());
    assert_eq!(e["data"]["containers"], 2);
    for (pod, _) in &before {
        assert_eq!(
            file(&c, pod, "/www/index.html").await.as_deref(),
            Some("v2\n")
        );
    }

    // A new file in a new directory, its mode kept.
    p.write("www/app/run.sh", "echo hi\n");
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        let f = p.path().join("www/app/run.sh");
        std::fs::set_permissions(&f, std::fs::Permissions::from_mode(0o751)).unwrap();
    }
    let e = next_outcome(&mut dev).await;
    assert_eq!(e["type"], "synced", "{}", dev.transcript());
    for (pod, _) in &before {
        assert_eq!(
            file(&c, pod, "/www/app/run.sh").await.as_deref(),
            Some("echo hi\n")
        );
        if let Some(fake) = &c.fake {
            let (_, mode) = fake
                .container_file(&c.ns, pod, "web", "/www/app/run.sh")
                .unwrap();
            assert_eq!(mode & 0o777, 0o751, "the file's mode is kept");
            // Nothing half-written is left behind.
            assert!(
                fake.container_file(&c.ns, pod, "web", "/www/app/.run.sh.devloop-sync")
                    .is_none()
            );
        }
    }

    // A deletion is a deletion in the container, not a rebuild.
    std::fs::remove_file(p.path().join("www/app/run.sh")).unwrap();
    let e = next_outcome(&mut dev).await;
    assert_eq!(e["type"], "synced", "{}", dev.transcript());
    for (pod, _) in &before {
        assert_eq!(file(&c, pod, "/www/app/run.sh").await, None);
        assert_eq!(
            file(&c, pod, "/www/index.html").await.as_deref(),
            Some("v2\n")
        );
    }
    assert!(
        dev.events_since(from, "buildStarted").is_empty(),
        "{}",
        dev.transcript()
    );
    assert_eq!(pods(&c).await, before, "same pods, no restart");

    // A file no rule takes is built into a new image.
    p.write("bin/motd", "hello\n");
    let e = next_outcome(&mut dev).await;
    assert_eq!(e["type"], "iteration", "{}", dev.transcript());
    assert_eq!(e["data"]["rebuilt"], serde_json::json!([image]));
    assert_eq!(dev.stop().await, Some(130));
    c.cleanup().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_image_without_tar_syncs_through_its_shell() {
    support::require_docker();
    let c = Cluster::start().await;
    let image = support::unique("devloop-sync-notar");
    let p = project(&image, NO_TAR, 1);
    let Some((mut dev, _root)) = start(&c, &p, &image).await else {
        return;
    };
    let before = pods(&c).await;
    for round in ["v2\n", "v3\n"] {
        p.write("www/index.html", round);
        let e = next_outcome(&mut dev).await;
        assert_eq!(e["type"], "synced", "{}", dev.transcript());
        assert_eq!(
            file(&c, &before[0].0, "/www/index.html").await.as_deref(),
            Some(round)
        );
    }
    assert_eq!(pods(&c).await, before);
    assert_eq!(dev.stop().await, Some(130));
    c.cleanup().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_image_without_a_shell_rebuilds_and_says_why() {
    support::require_docker();
    let c = Cluster::start().await;
    let image = support::unique("devloop-sync-bare");
    let p = project(&image, &["httpd"], 1);
    let Some((mut dev, _root)) = start(&c, &p, &image).await else {
        return;
    };
    let from = dev.seen();
    p.write("www/index.html", "v2\n");
    let e = next_outcome(&mut dev).await;
    assert_eq!(e["type"], "iteration", "{}", dev.transcript());
    assert_eq!(e["data"]["rebuilt"], serde_json::json!([image]));
    let warnings = dev.events_since(from, "warning");
    assert_eq!(warnings.len(), 1, "{}", dev.transcript());
    let message = warnings[0]["data"]["message"].as_str().unwrap();
    assert!(message.contains("no `sh` and `head`"), "{message}");
    assert_eq!(dev.stop().await, Some(130));
    c.cleanup().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_pod_replaced_after_a_sync_gets_everything_synced_since_the_build_without_another_save() {
    support::require_docker();
    let c = Cluster::start().await;
    let image = support::unique("devloop-sync-replaced");
    let p = project(&image, FULL, 1);
    let Some((mut dev, _root)) = start(&c, &p, &image).await else {
        return;
    };
    p.write("www/a.txt", "a\n");
    assert_eq!(
        next_outcome(&mut dev).await["type"],
        "synced",
        "{}",
        dev.transcript()
    );
    let old = pods(&c).await;
    let api: Api<Pod> = Api::namespaced(c.client.clone(), &c.ns);
    api.delete(&old[0].0, &DeleteParams::default().grace_period(0))
        .await
        .unwrap();
    // The Deployment replaces it with a pod started from the image, without `a.txt`.
    let mut replacement = None;
    for _ in 0..1200 {
        let now = pods(&c).await;
        replacement = now.into_iter().map(|(n, _)| n).find(|n| *n != old[0].0);
        if replacement.is_some() {
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    }
    let replacement =
        replacement.expect("the Deployment replaces the deleted pod within 2 minutes");
    // No save: devloop sees the new container start and gives it what was synced since the build.
    let from = dev.seen();
    let e = dev
        .until("the synced files replayed into the new pod", |e| {
            e["type"] == "syncReplayed"
        })
        .await;
    assert_eq!(e["data"]["containers"], 1, "{}", dev.transcript());
    assert_eq!(
        file(&c, &replacement, "/www/a.txt").await.as_deref(),
        Some("a\n")
    );
    assert!(
        dev.events_since(from, "buildStarted").is_empty(),
        "{}",
        dev.transcript()
    );
    p.write("www/b.txt", "b\n");
    let e = next_outcome(&mut dev).await;
    assert_eq!(e["type"], "synced", "{}", dev.transcript());
    assert_eq!(
        file(&c, &replacement, "/www/a.txt").await.as_deref(),
        Some("a\n")
    );
    assert_eq!(
        file(&c, &replacement, "/www/b.txt").await.as_deref(),
        Some("b\n")
    );
    assert_eq!(dev.stop().await, Some(130));
    c.cleanup().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sync_hooks_run_in_each_synced_container_around_the_files() {
    support::require_docker();
    let c = Cluster::start().await;
    let image = support::unique("devloop-sync-hooks");
    let hooks = "        hooks:\n          before:\n            - container: {command: [sh, -c, \"cat /www/index.html > /www/before.txt\"]}\n          after:\n            - container: {command: [sh, -c, \"cat /www/index.html > /www/after.txt\"]}\n";
    let p = project_with(&image, FULL, 2, hooks);
    let Some((mut dev, _root)) = start(&c, &p, &image).await else {
        return;
    };
    p.write("www/index.html", "v2\n");
    let e = next_outcome(&mut dev).await;
    assert_eq!(e["type"], "synced", "{}", dev.transcript());
    assert_eq!(e["data"]["containers"], 2);
    for (pod, _) in pods(&c).await {
        assert_eq!(
            file(&c, &pod, "/www/before.txt").await.as_deref(),
            Some("v1\n"),
            "before the files"
        );
        assert_eq!(
            file(&c, &pod, "/www/after.txt").await.as_deref(),
            Some("v2\n"),
            "after the files"
        );
    }
    assert_eq!(dev.stop().await, Some(130));
    c.cleanup().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_pod_a_deploy_starts_from_the_same_image_gets_the_synced_files() {
    support::require_docker();
    let c = Cluster::start().await;
    let image = support::unique("devloop-sync-scaled");
    let p = project(&image, FULL, 1);
    let Some((mut dev, _root)) = start(&c, &p, &image).await else {
        return;
    };
    p.write("www/a.txt", "a\n");
    assert_eq!(
        next_outcome(&mut dev).await["type"],
        "synced",
        "{}",
        dev.transcript()
    );
    let before = pods(&c).await;
    // A manifest edit: one more replica of the same image, no rebuild.
    let manifest = std::fs::read_to_string(p.path().join("k8s/web.yaml")).unwrap();
    p.write(
        "k8s/web.yaml",
        &manifest.replace("replicas: 1", "replicas: 2"),
    );
    let e = next_outcome(&mut dev).await;
    assert_eq!(e["type"], "iteration", "{}", dev.transcript());
    assert_eq!(
        e["data"]["rebuilt"],
        serde_json::json!([]),
        "{}",
        dev.transcript()
    );
    let now = pods(&c).await;
    assert_eq!(now.len(), 2, "{}", dev.transcript());
    let new = now
        .iter()
        .find(|(n, _)| !before.iter().any(|(b, _)| b == n))
        .unwrap();
    assert_eq!(
        file(&c, &new.0, "/www/a.txt").await.as_deref(),
        Some("a\n"),
        "{}",
        dev.transcript()
    );
    assert_eq!(dev.stop().await, Some(130));
    c.cleanup().await;
}

/// Needs the fake (a test cannot take a real account's permissions away): skipped with `DEVLOOP_TEST_KUBECONFIG`.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn exec_forbidden_by_rbac_rebuilds_and_says_which_permission_is_missing() {
    support::require_docker();
    let c = Cluster::start().await;
    let Some(fake) = &c.fake else {
        eprintln!("skipped on a real cluster: needs the fake to forbid pods/exec");
        return;
    };
    let image = support::unique("devloop-sync-rbac");
    let p = project(&image, FULL, 1);
    let Some((mut dev, _root)) = start(&c, &p, &image).await else {
        return;
    };
    fake.deny("create", "pods/exec", Some(&c.ns));
    let from = dev.seen();
    p.write("www/index.html", "v2\n");
    let e = next_outcome(&mut dev).await;
    assert_eq!(e["type"], "iteration", "{}", dev.transcript());
    assert_eq!(e["data"]["rebuilt"], serde_json::json!([image]));
    let warnings = dev.events_since(from, "warning");
    assert_eq!(warnings.len(), 1, "{}", dev.transcript());
    let message = warnings[0]["data"]["message"].as_str().unwrap();
    assert!(
        message.contains("file sync failed, rebuilding instead"),
        "{message}"
    );
    assert!(
        message.contains("kubectl auth can-i create pods/exec"),
        "{message}"
    );
    assert_eq!(dev.stop().await, Some(130));
    c.cleanup().await;
}

/// The same project deployed in a second namespace (a colleague's, or `devloop run` of another branch): a sync in
/// the first never writes into the second's pods.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_sync_never_reaches_the_same_project_in_another_namespace() {
    support::require_docker();
    let c = Cluster::start().await;
    let image = support::unique("devloop-sync-twice");
    let p = project(&image, FULL, 1);
    let Some((mut dev, _root)) = start(&c, &p, &image).await else {
        return;
    };
    let other = format!("{}-b", c.ns);
    let mut args = vec!["run"];
    let registry = std::env::var("DEVLOOP_TEST_REGISTRY").ok();
    if let Some(r) = &registry {
        args.extend(["--default-repo", r.as_str()]);
    }
    let out = c.devloop_in(&p, &args, Some(&other)).await;
    assert_eq!(out.status.code(), Some(0), "{}", support::stderr(&out));
    let theirs = pods_in(&c, &other).await;
    assert_eq!(theirs.len(), 1);

    p.write("www/index.html", "v2\n");
    let e = next_outcome(&mut dev).await;
    assert_eq!(e["type"], "synced", "{}", dev.transcript());
    assert_eq!(e["data"]["containers"], 1, "only this namespace's pod");
    let mine = pods(&c).await;
    assert_eq!(
        file(&c, &mine[0].0, "/www/index.html").await.as_deref(),
        Some("v2\n")
    );
    let read = c
        .read_file_in(&other, &theirs[0].0, "web", "/www/index.html")
        .await;
    assert_eq!(
        read.as_deref(),
        Some(&b"v1\n"[..]),
        "the other namespace's pod is untouched"
    );
    assert_eq!(dev.stop().await, Some(130));
    c.delete_namespace(&other).await;
    c.cleanup().await;
}

/// Runs `script` under `sh -c` in container `web` of `pod` (test namespace), as `kubectl exec` would.
async fn sh(c: &Cluster, pod: &str, script: &str) {
    use tokio::io::AsyncReadExt;
    let pods: Api<Pod> = Api::namespaced(c.client.clone(), &c.ns);
    let params = kube::api::AttachParams::default()
        .container("web")
        .stderr(false);
    let mut attached = pods.exec(pod, ["sh", "-c", script], &params).await.unwrap();
    let mut stdout = attached.stdout().unwrap();
    let status = attached.take_status().unwrap();
    let mut out = Vec::new();
    stdout.read_to_end(&mut out).await.unwrap();
    let status = status.await.unwrap();
    assert_eq!(status.status.as_deref(), Some("Success"), "{status:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_sync_that_fails_in_the_container_rebuilds_says_why_and_leaves_no_half_file() {
    support::require_docker();
    let c = Cluster::start().await;
    let image = support::unique("devloop-sync-fails");
    let p = project(&image, FULL, 1);
    let Some((mut dev, _root)) = start(&c, &p, &image).await else {
        return;
    };
    let before = pods(&c).await;
    // Something in the container (a process, a volume) made `/www/sub` a file: the new `sub/` directory cannot be
    // made there, and the copy fails.
    sh(&c, &before[0].0, "echo keep > /www/sub").await;
    let from = dev.seen();
    p.write("www/sub/page.html", "new\n");
    let w = dev
        .until("the failed sync's warning", |e| e["type"] == "warning")
        .await;
    let message = w["data"]["message"].as_str().unwrap();
    assert!(
        message.contains("file sync failed, rebuilding instead"),
        "{message}"
    );
    // The container the copy failed in still has what it had: nothing half-written in its place.
    assert_eq!(
        file(&c, &before[0].0, "/www/sub").await.as_deref(),
        Some("keep\n")
    );
    let e = dev
        .until("the iteration of the save", |e| {
            e["type"] == "iteration" || e["type"] == "iterationFailed"
        })
        .await;
    assert_eq!(e["type"], "iteration", "{}", dev.transcript());
    assert_eq!(e["data"]["rebuilt"], serde_json::json!([image]));
    assert_eq!(
        dev.events_since(from, "warning").len(),
        1,
        "{}",
        dev.transcript()
    );
    assert!(dev.events_since(from, "synced").is_empty());
    assert_eq!(dev.stop().await, Some(130));
    c.cleanup().await;
}
