//! The cluster a scenario runs against: the fake API server in `tests/support`, or a real cluster when
//! `DEVLOOP_TEST_KUBECONFIG` names its kubeconfig (same scenarios, same assertions), and the manifests the
//! scenarios deploy.
//!
//! Real-cluster notes: each test uses its own namespace `devloop-test-<pid>-<n>` and deletes it at the end;
//! `DEVLOOP_TEST_IMAGE` names an image the nodes can run (default `registry.k8s.io/pause:3.10`), and failure
//! scenarios use images that really fail there (an unpullable reference).
#![allow(dead_code, clippy::unwrap_used)]

use std::path::PathBuf;
use std::process::Output;

use k8s_openapi::api::core::v1::Pod;
use kube::api::{Api, AttachParams, DynamicObject};
use kube::core::GroupVersionKind;
use serde_json::Value;
use tokio::io::AsyncReadExt;

use super::fake_apiserver::{FakeApiServer, PodState};
use super::{Project, stderr, stdout};

/// The cluster a scenario runs against.
pub struct Cluster {
    pub fake: Option<FakeApiServer>,
    pub kubeconfig: PathBuf,
    pub client: kube::Client,
    /// The test's namespace.
    pub ns: String,
    pub _dir: tempfile::TempDir,
}

impl Cluster {
    pub async fn start() -> Cluster {
        let dir = tempfile::tempdir().unwrap();
        let ns = super::unique("devloop-test");
        match std::env::var_os("DEVLOOP_TEST_KUBECONFIG") {
            Some(path) => {
                let kubeconfig = PathBuf::from(path);
                let kc = kube::config::Kubeconfig::read_from(&kubeconfig).unwrap();
                let config = kube::Config::from_custom_kubeconfig(kc, &Default::default())
                    .await
                    .unwrap();
                let client = kube::Client::try_from(config).unwrap();
                Cluster {
                    fake: None,
                    kubeconfig,
                    client,
                    ns,
                    _dir: dir,
                }
            }
            None => {
                let fake = FakeApiServer::start();
                let kubeconfig = fake.kubeconfig(dir.path());
                let client = fake.client().await;
                Cluster {
                    fake: Some(fake),
                    kubeconfig,
                    client,
                    ns,
                    _dir: dir,
                }
            }
        }
    }

    /// An image pods can run.
    pub fn ok_image(&self) -> String {
        std::env::var("DEVLOOP_TEST_IMAGE")
            .unwrap_or_else(|_| "registry.k8s.io/pause:3.10".to_string())
    }

    /// Makes pods of images containing `image_part` end up in `state` (on a real cluster the image itself fails).
    pub fn fail_image(&self, image_part: &str, state: PodState) {
        if let Some(f) = &self.fake {
            f.set_image_pod_state(image_part, state);
        }
    }

    /// Makes containers of images containing `image_part` start with the directory tree `template` as their
    /// filesystem (on a real cluster the image itself holds its files: nothing to do).
    pub fn set_image_root(&self, image_part: &str, template: &std::path::Path) {
        if let Some(f) = &self.fake {
            f.set_image_root(image_part, template);
        }
    }

    /// The content of `path` in `container` of `pod` (test namespace) as the running container sees it; `None`
    /// when it has no such file. On a real cluster this execs `cat` in the container (its image needs one).
    pub async fn read_file(&self, pod: &str, container: &str, path: &str) -> Option<Vec<u8>> {
        self.read_file_in(&self.ns, pod, container, path).await
    }

    /// [`Cluster::read_file`] for a pod in namespace `ns`.
    pub async fn read_file_in(
        &self,
        ns: &str,
        pod: &str,
        container: &str,
        path: &str,
    ) -> Option<Vec<u8>> {
        if let Some(f) = &self.fake {
            return f
                .container_file(ns, pod, container, path)
                .map(|(bytes, _)| bytes);
        }
        let pods: Api<Pod> = Api::namespaced(self.client.clone(), ns);
        let params = AttachParams::default().container(container).stderr(false);
        let mut attached = pods.exec(pod, ["cat", path], &params).await.ok()?;
        let mut stdout = attached.stdout()?;
        let status = attached.take_status()?;
        let mut bytes = Vec::new();
        stdout.read_to_end(&mut bytes).await.ok()?;
        let status = status.await?;
        (status.status.as_deref() == Some("Success")).then_some(bytes)
    }

    /// How often `container` of `pod` (test namespace) restarted, as the pod's status says.
    pub async fn restart_count(&self, pod: &str, container: &str) -> Option<u32> {
        let pods: Api<Pod> = Api::namespaced(self.client.clone(), &self.ns);
        let pod = pods.get_opt(pod).await.unwrap()?;
        let statuses = pod.status?.container_statuses?;
        let status = statuses.into_iter().find(|s| s.name == container)?;
        u32::try_from(status.restart_count).ok()
    }

    /// Runs devloop in `project` against this cluster, in the test's namespace.
    pub async fn devloop(&self, project: &Project, args: &[&str]) -> Output {
        self.devloop_in(project, args, Some(&self.ns)).await
    }

    /// Runs devloop in `project` against this cluster with `-n namespace`, or without `-n` (the context's
    /// namespace is then only the default for objects that name none).
    pub async fn devloop_in(
        &self,
        project: &Project,
        args: &[&str],
        namespace: Option<&str>,
    ) -> Output {
        let mut full: Vec<String> = args.iter().map(|s| s.to_string()).collect();
        full.extend(["--kubeconfig".into(), self.kubeconfig.display().to_string()]);
        if let Some(ns) = namespace {
            full.extend(["-n".into(), ns.to_string()]);
        }
        let dir = project.path().to_path_buf();
        let cache = project.cache.path().to_path_buf();
        tokio::task::spawn_blocking(move || {
            std::process::Command::new(env!("CARGO_BIN_EXE_devloop"))
                .args(&full)
                .current_dir(dir)
                .env("DEVLOOP_CACHE_DIR", cache)
                .env("NO_COLOR", "1")
                .env_remove("KUBECONFIG")
                .output()
                .unwrap()
        })
        .await
        .unwrap()
    }

    /// The object as the cluster has it.
    pub async fn get(
        &self,
        api_version: &str,
        kind: &str,
        namespace: Option<&str>,
        name: &str,
    ) -> Option<Value> {
        let (group, version) = api_version.rsplit_once('/').unwrap_or(("", api_version));
        let (ar, caps) = kube::discovery::pinned_kind(
            &self.client,
            &GroupVersionKind::gvk(group, version, kind),
        )
        .await
        .unwrap();
        let api: Api<DynamicObject> = match (caps.scope, namespace) {
            (kube::discovery::Scope::Namespaced, Some(ns)) => {
                Api::namespaced_with(self.client.clone(), ns, &ar)
            }
            _ => Api::all_with(self.client.clone(), &ar),
        };
        api.get_opt(name)
            .await
            .unwrap()
            .map(|o| serde_json::to_value(o).unwrap())
    }

    /// The names of every object of `kind` in `namespace`.
    pub async fn list(&self, api_version: &str, kind: &str, namespace: &str) -> Vec<String> {
        let (group, version) = api_version.rsplit_once('/').unwrap_or(("", api_version));
        let (ar, _) = kube::discovery::pinned_kind(
            &self.client,
            &GroupVersionKind::gvk(group, version, kind),
        )
        .await
        .unwrap();
        let api: Api<DynamicObject> = Api::namespaced_with(self.client.clone(), namespace, &ar);
        match api.list(&Default::default()).await {
            Ok(list) => list
                .items
                .into_iter()
                .filter_map(|o| o.metadata.name)
                .collect(),
            Err(kube::Error::Api(s)) if s.code == 404 => Vec::new(),
            Err(e) => panic!("list {kind} in {namespace}: {e}"),
        }
    }

    /// Creates an object the way another tool would (not devloop): via the API, without devloop's labels, in
    /// the test's namespace (created first when missing).
    pub async fn create_foreign_configmap(&self, name: &str) {
        let namespaces: Api<k8s_openapi::api::core::v1::Namespace> = Api::all(self.client.clone());
        if namespaces.get_opt(&self.ns).await.unwrap().is_none() {
            let mut ns = k8s_openapi::api::core::v1::Namespace::default();
            ns.metadata.name = Some(self.ns.clone());
            namespaces.create(&Default::default(), &ns).await.unwrap();
        }
        let api: Api<k8s_openapi::api::core::v1::ConfigMap> =
            Api::namespaced(self.client.clone(), &self.ns);
        let mut cm = k8s_openapi::api::core::v1::ConfigMap::default();
        cm.metadata.name = Some(name.to_string());
        cm.data = Some([("owner".to_string(), "someone else".to_string())].into());
        api.create(&Default::default(), &cm).await.unwrap();
    }

    /// Deletes another namespace a test used (on a real cluster; the fake goes away with the test).
    pub async fn delete_namespace(&self, name: &str) {
        if self.fake.is_none() {
            let api: Api<k8s_openapi::api::core::v1::Namespace> = Api::all(self.client.clone());
            let _ = api.delete(name, &Default::default()).await;
        }
    }

    pub async fn cleanup(&self) {
        if self.fake.is_none() {
            let api: Api<k8s_openapi::api::core::v1::Namespace> = Api::all(self.client.clone());
            let _ = api.delete(&self.ns, &Default::default()).await;
        }
    }
}

/// A project with no artifacts whose manifests are `files` (name → YAML).
pub fn project(files: &[(&str, String)]) -> Project {
    let p = Project::new();
    p.write("devloop.yaml", "apiVersion: devloop/v1alpha1\nkind: Config\nmetadata:\n  name: shop\nmanifests:\n  rawYaml: [\"k8s/*.yaml\"]\n");
    for (name, text) in files {
        p.write(&format!("k8s/{name}"), text);
    }
    p
}

pub fn deployment(name: &str, image: &str) -> String {
    format!(
        "apiVersion: apps/v1\nkind: Deployment\nmetadata:\n  name: {name}\nspec:\n  replicas: 1\n  selector:\n    matchLabels: {{app: {name}}}\n  template:\n    metadata:\n      labels: {{app: {name}}}\n    spec:\n      containers:\n        - name: main\n          image: {image}\n"
    )
}

pub fn configmap(name: &str, value: &str) -> String {
    format!(
        "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: {name}\ndata:\n  value: \"{value}\"\n"
    )
}

pub fn job(name: &str, image: &str, arg: &str) -> String {
    format!(
        "apiVersion: batch/v1\nkind: Job\nmetadata:\n  name: {name}\nspec:\n  backoffLimit: 0\n  template:\n    spec:\n      restartPolicy: Never\n      containers:\n        - name: main\n          image: {image}\n          args: [\"{arg}\"]\n"
    )
}

#[track_caller]
pub fn assert_exit(o: &Output, code: i32) {
    assert_eq!(
        o.status.code(),
        Some(code),
        "stdout:\n{}\nstderr:\n{}",
        stdout(o),
        stderr(o)
    );
}

impl Cluster {
    /// Creates the test's namespace unless it exists.
    pub async fn ensure_namespace(&self) {
        let api: Api<k8s_openapi::api::core::v1::Namespace> = Api::all(self.client.clone());
        if api.get_opt(&self.ns).await.unwrap().is_none() {
            let mut ns = k8s_openapi::api::core::v1::Namespace::default();
            ns.metadata.name = Some(self.ns.clone());
            match api.create(&Default::default(), &ns).await {
                Ok(_) => {}
                Err(kube::Error::Api(s)) if s.code == 409 => {}
                Err(e) => panic!("create namespace {}: {e}", self.ns),
            }
        }
    }

    /// Plays the program of the pod the Job `job` (test namespace) starts: on the fake, waits for that pod to
    /// run, writes `lines` to the log of its container `container` and ends it with `exit_code` (0: Completed).
    /// On a real cluster the Job's own command does that: nothing to do.
    pub async fn play_job_pod(&self, job: &str, container: &str, lines: &[String], exit_code: i32) {
        let Some(fake) = &self.fake else {
            return;
        };
        let pods: Api<Pod> = Api::namespaced(self.client.clone(), &self.ns);
        let lp = kube::api::ListParams::default().labels(&format!("job-name={job}"));
        for _ in 0..600 {
            let running = pods.list(&lp).await.unwrap().items.into_iter().find(|p| {
                p.metadata.deletion_timestamp.is_none()
                    && p.status.as_ref().and_then(|s| s.phase.as_deref()) == Some("Running")
            });
            if let Some(pod) = running {
                let name = pod.metadata.name.unwrap();
                for line in lines {
                    assert!(fake.append_log(&self.ns, &name, container, line));
                }
                let state = if exit_code == 0 {
                    PodState::Completed
                } else {
                    PodState::Failed { exit_code }
                };
                assert!(fake.set_pod_state(&self.ns, &name, state));
                return;
            }
            tokio::time::sleep(std::time::Duration::from_millis(50)).await;
        }
        panic!("no running pod of job {job}");
    }
}
