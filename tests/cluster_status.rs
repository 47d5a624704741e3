//! `devloop status`: what a project has deployed where, read from the cluster only — nothing deployed, a plain
//! deploy (objects by kind, replicas, images, Secrets by name only), the same project in two namespaces, and a
//! blue/green Service whose switch the test performs itself as a release does (copies and the Service with its
//! selector colour and release annotations applied by devloop, the previous copy's scale-down by field manager
//! `devloop-blue-green`). Against the fake API server, or a real cluster when `DEVLOOP_TEST_KUBECONFIG` is set.
#![allow(clippy::unwrap_used)]

mod support;

use kube::api::{Api, DynamicObject, Patch, PatchParams};
use kube::core::GroupVersionKind;
use serde_json::{Value, json};
use support::cluster::{Cluster, assert_exit, configmap, deployment};
use support::{Project, events, events_of, stderr, stdout};

/// A project named `name` (unique per scenario) with `files` as its manifests.
fn named_project(name: &str, files: &[(&str, String)]) -> Project {
    let p = Project::new();
    p.write(
        "devloop.yaml",
        &format!("apiVersion: devloop/v1alpha1\nkind: Config\nmetadata:\n  name: {name}\nmanifests:\n  rawYaml: [\"k8s/*.yaml\"]\n"),
    );
    for (file, text) in files {
        p.write(&format!("k8s/{file}"), text);
    }
    p
}

fn service(name: &str, app: &str) -> String {
    format!(
        "apiVersion: v1\nkind: Service\nmetadata:\n  name: {name}\nspec:\n  selector: {{app: {app}}}\n  ports:\n    - {{name: http, port: 80, targetPort: 8080}}\n"
    )
}

/// The one `status` event of a `-o json` run.
fn status_of(out: &std::process::Output) -> Value {
    let all = events(out);
    let found = events_of(&all, "status");
    assert_eq!(found.len(), 1, "{}", stdout(out));
    found[0]["data"].clone()
}

fn names_of_kind(report: &Value, kind: &str) -> Vec<String> {
    report["members"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|m| m["kind"] == kind)
        .map(|m| m["name"].as_str().unwrap().to_string())
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn nothing_deployed_says_so_and_how_to_deploy() {
    let c = Cluster::start().await;
    let name = support::unique("quiet");
    let p = named_project(&name, &[("cm.yaml", configmap("settings", "1"))]);
    let out = c.devloop(&p, &["status"]).await;
    assert_exit(&out, 0);
    let text = stdout(&out);
    assert!(
        text.contains(&format!(
            "nothing of project `{name}` is deployed in context `"
        )) && text.contains(&format!("(namespace `{}`)", c.ns)),
        "{text}"
    );
    assert!(text.contains("hint: `devloop run`"), "{text}");
    let out = c.devloop(&p, &["status", "-o", "json"]).await;
    assert_exit(&out, 0);
    let report = status_of(&out);
    assert_eq!(report["project"], name.as_str());
    assert_eq!(report["namespace"], c.ns.as_str());
    assert_eq!(report["applyset"], Value::Null);
    assert_eq!(report["members"], json!([]));
    c.cleanup().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_deploy_shows_its_objects_replicas_and_images_and_never_secret_data() {
    let c = Cluster::start().await;
    let name = support::unique("shop");
    let image = c.ok_image();
    let web = deployment("web", &image).replace("replicas: 1", "replicas: 2");
    let secret = "apiVersion: v1\nkind: Secret\nmetadata:\n  name: creds\nstringData:\n  token: s3cr3t-t0ken-value\n";
    let p = named_project(
        &name,
        &[
            ("web.yaml", web),
            ("svc.yaml", service("web", "web")),
            ("cm.yaml", configmap("settings", "1")),
            ("secret.yaml", secret.to_string()),
        ],
    );
    assert_exit(&c.devloop(&p, &["deploy"]).await, 0);

    let out = c.devloop(&p, &["status"]).await;
    assert_exit(&out, 0);
    let text = stdout(&out);
    assert!(
        text.contains(&format!("project `{name}` in context `"))
            && text.contains(&format!("namespace `{}`", c.ns)),
        "{text}"
    );
    let line = |kind: &str, object: &str| {
        text.lines()
            .find(|l| {
                let mut words = l.split_whitespace();
                words.next() == Some(kind) && words.next() == Some(object)
            })
            .unwrap_or_else(|| panic!("no line for {kind} {object}:\n{text}"))
            .to_string()
    };
    let web_line = line("Deployment", "web");
    assert!(web_line.contains("2/2 ready"), "{text}");
    assert!(web_line.contains(&image), "{text}");
    line("Service", "web");
    line("ConfigMap", "settings");
    line("Secret", "creds");
    // One line per object, aligned: every object line starts its name in the same column.
    let columns: Vec<usize> = ["web", "settings", "creds"]
        .iter()
        .map(|n| {
            let l = text.lines().find(|l| l.contains(&format!(" {n}"))).unwrap();
            l.find(&format!(" {n}")).unwrap()
        })
        .collect();
    assert!(columns.windows(2).all(|w| w[0] == w[1]), "{text}");

    let out = c.devloop(&p, &["status", "-o", "json"]).await;
    assert_exit(&out, 0);
    let report = status_of(&out);
    assert_eq!(report["applyset"], format!("devloop-{name}").as_str());
    assert_eq!(report["namespaces"], json!([c.ns]));
    assert_eq!(names_of_kind(&report, "Deployment"), ["web"]);
    assert_eq!(names_of_kind(&report, "Service"), ["web"]);
    assert_eq!(names_of_kind(&report, "ConfigMap"), ["settings"]);
    assert_eq!(names_of_kind(&report, "Secret"), ["creds"]);
    let web = &report["deployments"][0];
    assert_eq!(web["name"], "web");
    assert_eq!(web["namespace"], c.ns.as_str());
    assert_eq!(
        (web["ready"].as_i64(), web["desired"].as_i64()),
        (Some(2), Some(2))
    );
    assert_eq!(web["images"], json!([image]));
    assert_eq!(report["blueGreen"], json!([]));
    // The record of the deployment is devloop's bookkeeping, not one of its objects.
    assert!(!names_of_kind(&report, "ConfigMap").contains(&format!("devloop-{name}")));

    for o in [&out, &c.devloop(&p, &["status"]).await] {
        let all = format!("{}{}", stdout(o), stderr(o));
        assert!(!all.contains("s3cr3t-t0ken-value"), "{all}");
        // base64 of the value, as the API server stores it.
        assert!(!all.contains("czNjcjN0LXQwa2VuLXZhbHVl"), "{all}");
    }
    c.cleanup().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn one_project_in_two_namespaces_shows_each_deployment_apart() {
    let c = Cluster::start().await;
    let other = format!("{}-b", c.ns);
    // Deliberately the same project name in both namespaces (two developers, one shared cluster).
    let name = support::unique("shared");
    let a = named_project(&name, &[("cm.yaml", configmap("only-in-a", "1"))]);
    let b = named_project(
        &name,
        &[
            ("cm.yaml", configmap("only-in-b", "1")),
            ("api.yaml", deployment("api", &c.ok_image())),
        ],
    );
    assert_exit(&c.devloop_in(&a, &["deploy"], Some(&c.ns)).await, 0);
    assert_exit(&c.devloop_in(&b, &["deploy"], Some(&other)).await, 0);

    let out = c
        .devloop_in(&a, &["status", "-o", "json"], Some(&c.ns))
        .await;
    assert_exit(&out, 0);
    let report = status_of(&out);
    assert_eq!(report["namespace"], c.ns.as_str());
    assert_eq!(names_of_kind(&report, "ConfigMap"), ["only-in-a"]);
    assert_eq!(names_of_kind(&report, "Deployment"), Vec::<String>::new());

    let out = c.devloop_in(&b, &["status"], Some(&other)).await;
    assert_exit(&out, 0);
    let text = stdout(&out);
    assert!(text.contains(&format!("namespace `{other}`")), "{text}");
    assert!(text.contains("only-in-b") && text.contains("api"), "{text}");
    assert!(!text.contains("only-in-a"), "{text}");
    c.delete_namespace(&other).await;
    c.cleanup().await;
}

/// The copy `api-<color>` of Deployment `api`, as a blue/green deploy applies it (design, step 2).
fn copy(color: &str, image: &str, commit: &str) -> String {
    format!(
        "apiVersion: apps/v1\nkind: Deployment\nmetadata:\n  name: api-{color}\n  labels: {{devloop.dev/color: {color}}}\n  annotations:\n    devloop.dev/copy-of: api\n    devloop.dev/commit: \"{commit}\"\n    devloop.dev/images: {image}\nspec:\n  replicas: 1\n  selector:\n    matchLabels: {{app: api, devloop.dev/color: {color}}}\n  template:\n    metadata:\n      labels: {{app: api, devloop.dev/color: {color}}}\n    spec:\n      containers:\n        - name: main\n          image: {image}\n"
    )
}

/// A server-side apply by the field manager `devloop-blue-green` (what a release scales a previous copy down with).
async fn switch_apply(c: &Cluster, api_version: &str, kind: &str, name: &str, body: Value) {
    let (group, version) = api_version.rsplit_once('/').unwrap_or(("", api_version));
    let (ar, _) =
        kube::discovery::pinned_kind(&c.client, &GroupVersionKind::gvk(group, version, kind))
            .await
            .unwrap();
    let api: Api<DynamicObject> = Api::namespaced_with(c.client.clone(), &c.ns, &ar);
    let mut body = body;
    body["apiVersion"] = json!(api_version);
    body["kind"] = json!(kind);
    body["metadata"]["name"] = json!(name);
    api.patch(
        name,
        &PatchParams::apply("devloop-blue-green").force(),
        &Patch::Apply(&body),
    )
    .await
    .unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_blue_green_service_shows_its_live_colour_commit_and_the_scaled_down_previous_copy() {
    let c = Cluster::start().await;
    let name = support::unique("bg");
    let image = c.ok_image();
    // Two releases of the same image: what tells them apart here is the commit.
    let p = named_project(
        &name,
        &[
            ("blue.yaml", copy("blue", &image, "1111111")),
            ("green.yaml", copy("green", &image, "2222222")),
            ("svc.yaml", service("api", "api")),
            ("cm.yaml", configmap("settings", "1")),
        ],
    );
    assert_exit(&c.devloop(&p, &["deploy"]).await, 0);
    // The switch to green as a release makes it: devloop's apply of the whole Service (its selector is one
    // atomic field) with the colour and the release annotations; then blue scaled to zero by the switch manager.
    p.write(
        "k8s/svc.yaml",
        &format!(
            "apiVersion: v1\nkind: Service\nmetadata:\n  name: api\n  annotations:\n    devloop.dev/live-color: green\n    devloop.dev/live-since: \"2026-01-02T03:04:05Z\"\n    devloop.dev/previous-color: blue\n    devloop.dev/commit: \"2222222\"\n    devloop.dev/images: {image}\nspec:\n  selector: {{app: api, devloop.dev/color: green}}\n  ports:\n    - {{name: http, port: 80, targetPort: 8080}}\n"
        ),
    );
    assert_exit(&c.devloop(&p, &["deploy"]).await, 0);
    switch_apply(
        &c,
        "apps/v1",
        "Deployment",
        "api-blue",
        json!({
            "metadata": {"annotations": {"devloop.dev/replicas": "1"}},
            "spec": {"replicas": 0},
        }),
    )
    .await;

    let out = c.devloop(&p, &["status", "-o", "json"]).await;
    assert_exit(&out, 0);
    let report = status_of(&out);
    // The copies are under their Service, not loose Deployments.
    assert_eq!(report["deployments"], json!([]));
    assert_eq!(
        names_of_kind(&report, "Deployment"),
        ["api-blue", "api-green"]
    );
    let bg = report["blueGreen"].as_array().unwrap();
    assert_eq!(bg.len(), 1, "{report}");
    let api = &bg[0];
    assert_eq!(api["service"], "api");
    assert_eq!(api["liveColor"], "green");
    assert_eq!(api["liveSince"], "2026-01-02T03:04:05Z");
    assert!(api["liveForSeconds"].as_u64().is_some(), "{api}");
    assert_eq!(api["commit"], "2222222");
    assert_eq!(api["images"], json!([image]));
    assert_eq!(api["previousColor"], "blue");
    let copies = api["copies"].as_array().unwrap();
    assert_eq!(copies.len(), 2, "{api}");
    assert_eq!(
        (
            &copies[0]["name"],
            &copies[0]["color"],
            &copies[0]["commit"]
        ),
        (&json!("api-green"), &json!("green"), &json!("2222222"))
    );
    assert_eq!(copies[0]["desired"], 1);
    assert_eq!(
        (
            &copies[1]["name"],
            &copies[1]["color"],
            &copies[1]["commit"]
        ),
        (&json!("api-blue"), &json!("blue"), &json!("1111111"))
    );
    assert_eq!(copies[1]["desired"], 0);
    assert_eq!(copies[1]["scaledDownFrom"], 1);

    let out = c.devloop(&p, &["status"]).await;
    assert_exit(&out, 0);
    let text = stdout(&out);
    let service_line = text
        .lines()
        .find(|l| l.trim_start().starts_with("Service"))
        .unwrap_or_else(|| panic!("{text}"));
    assert!(
        service_line.contains("live green since 2026-01-02T03:04:05Z (")
            && service_line.contains(" ago), commit 2222222")
            && service_line.contains("previous blue"),
        "{text}"
    );
    let green = text.lines().position(|l| l.contains("api-green (live)"));
    let blue = text.lines().position(|l| l.contains("api-blue (previous)"));
    let service = text
        .lines()
        .position(|l| l.trim_start().starts_with("Service"));
    assert!(
        service < green && green < blue,
        "copies under their Service:\n{text}"
    );
    let blue_line = text.lines().nth(blue.unwrap()).unwrap();
    assert!(blue_line.contains("scaled to zero (was 1)"), "{text}");
    assert!(blue_line.contains("commit 1111111"), "{text}");
    assert!(
        !text
            .lines()
            .any(|l| l.trim_start().starts_with("Deployment")),
        "no loose Deployment lines:\n{text}"
    );
    c.cleanup().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn status_writes_nothing_to_the_cluster() {
    let c = Cluster::start().await;
    let name = support::unique("ro");
    let p = named_project(&name, &[("cm.yaml", configmap("settings", "1"))]);
    assert_exit(&c.devloop(&p, &["deploy"]).await, 0);
    let before = c
        .get("v1", "ConfigMap", Some(&c.ns), &format!("devloop-{name}"))
        .await
        .unwrap();
    if let Some(fake) = &c.fake {
        fake.clear_requests();
    }
    assert_exit(&c.devloop(&p, &["status"]).await, 0);
    if let Some(fake) = &c.fake {
        let requests = fake.requests();
        assert!(!requests.is_empty());
        let writes: Vec<String> = requests
            .iter()
            .filter(|r| r.method != "GET")
            .map(|r| format!("{} {}", r.method, r.path))
            .collect();
        assert!(writes.is_empty(), "{writes:?}");
    }
    let after = c
        .get("v1", "ConfigMap", Some(&c.ns), &format!("devloop-{name}"))
        .await
        .unwrap();
    assert_eq!(
        before["metadata"]["resourceVersion"],
        after["metadata"]["resourceVersion"]
    );
    c.cleanup().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_docker_target_is_a_usage_error_that_points_at_its_containers() {
    let c = Cluster::start().await;
    let name = support::unique("local");
    let p = Project::new();
    p.write(
        "devloop.yaml",
        &format!("apiVersion: devloop/v1alpha1\nkind: Config\nmetadata:\n  name: {name}\ndeploy:\n  docker:\n    containers:\n      - name: web\n        image: busybox:1\n"),
    );
    let out = c.devloop(&p, &["status"]).await;
    assert_exit(&out, 2);
    let err = stderr(&out);
    assert!(
        err.contains("devloop.yaml: `deploy.docker` is configured: `devloop status` shows Kubernetes deployments"),
        "{err}"
    );
    assert!(
        err.contains(&format!(
            "hint: the project's containers: `docker ps -a --filter label=dev.devloop.project={name}`"
        )),
        "{err}"
    );
    c.cleanup().await;
}
