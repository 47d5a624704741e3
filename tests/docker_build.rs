//! `devloop build` against the real Docker daemon and local registries (tier "docker" in docs/testing.md).
#![allow(clippy::unwrap_used)]

mod support;

use std::process::Command;

use support::{
    Project, assert_ok, events, events_of, image_file, image_files, stderr, stdout, unique,
};

/// A project with one FROM-scratch artifact named `image` serving `www/`.
fn web_project(image: &str) -> Project {
    let p = Project::new();
    p.with_busybox("bin/busybox");
    p.write(
        "devloop.yaml",
        &format!("apiVersion: devloop/v1alpha1\nkind: Config\nbuild:\n  artifacts:\n    - image: {image}\n"),
    );
    p.write(
        "Dockerfile",
        "FROM scratch\nCOPY bin/busybox /bin/busybox\nCOPY www /www\n",
    );
    p.write(".dockerignore", "notes/\n*.log\n");
    p.write("www/index.html", "v1\n");
    p.write("notes/todo.txt", "ignored\n");
    p
}

fn built_ref(o: &std::process::Output) -> String {
    let out = stdout(o);
    let lines: Vec<_> = out.lines().collect();
    assert_eq!(
        lines.len(),
        1,
        "one reference per artifact on stdout, got: {out}"
    );
    lines[0].to_string()
}

#[test]
fn build_then_cache_hit_then_rebuild_on_change_only() {
    support::require_docker();
    let image = unique("devloop-test-web");
    let mut p = web_project(&image);

    let first = p.devloop(&["build", "--output", "json"]);
    assert_ok(&first);
    let ev = events(&first);
    assert_eq!(events_of(&ev, "buildStarted").len(), 1);
    let finished = events_of(&ev, "buildFinished");
    assert_eq!(finished.len(), 1);
    let reference = finished[0]["data"]["tag"].as_str().unwrap().to_string();
    p.cleanup_image(&reference);
    assert!(reference.starts_with(&format!("{image}:")), "{reference}");
    assert_eq!(
        image_file(&reference, "/www/index.html").as_deref(),
        Some("v1\n")
    );

    // Nothing changed: a cache hit, zero builds, the same reference on stdout.
    let second = p.devloop(&["build"]);
    assert_ok(&second);
    assert_eq!(built_ref(&second), reference);
    assert!(stderr(&second).contains("cached"), "{}", stderr(&second));
    let second_json = p.devloop(&["build", "-o", "json"]);
    let ev = events(&second_json);
    assert!(
        events_of(&ev, "buildStarted").is_empty(),
        "no build expected: {ev:?}"
    );
    assert_eq!(events_of(&ev, "buildCached").len(), 1);

    // Touching a file or changing an ignored one keeps the key.
    let idx = p.path().join("www/index.html");
    let f = std::fs::File::options().append(true).open(&idx).unwrap();
    f.set_modified(std::time::SystemTime::now() + std::time::Duration::from_secs(5))
        .unwrap();
    drop(f);
    p.write("notes/todo.txt", "changed, still ignored\n");
    let third = p.devloop(&["build", "-o", "json"]);
    assert_ok(&third);
    assert!(events_of(&events(&third), "buildStarted").is_empty());

    // A content change rebuilds, says why, and changes the tag.
    p.write("www/index.html", "v2\n");
    let fourth = p.devloop(&["build", "-o", "json"]);
    assert_ok(&fourth);
    let ev = events(&fourth);
    let started = events_of(&ev, "buildStarted");
    assert_eq!(started.len(), 1);
    let reasons = started[0]["data"]["reasons"].to_string();
    assert!(
        reasons.contains("www/index.html"),
        "the reason names the changed file: {reasons}"
    );
    let new_ref = events_of(&ev, "buildFinished")[0]["data"]["tag"]
        .as_str()
        .unwrap()
        .to_string();
    p.cleanup_image(&new_ref);
    assert_ne!(new_ref, reference);
    assert_eq!(
        image_file(&new_ref, "/www/index.html").as_deref(),
        Some("v2\n")
    );
}

#[test]
fn requires_builds_the_base_first_and_passes_its_reference() {
    support::require_docker();
    let base = unique("devloop-test-base");
    let app = unique("devloop-test-app");
    let mut p = Project::new();
    p.with_busybox("base/bin/busybox");
    p.write(
        "devloop.yaml",
        &format!(
            "apiVersion: devloop/v1alpha1\nkind: Config\nbuild:\n  artifacts:\n    - image: {app}\n      context: app\n      requires:\n        - image: {base}\n          alias: BASE\n    - image: {base}\n      context: base\n"
        ),
    );
    p.write(
        "base/Dockerfile",
        "FROM scratch\nCOPY bin/busybox /bin/busybox\nCOPY base.txt /base.txt\n",
    );
    p.write("base/base.txt", "from base\n");
    p.write(
        "app/Dockerfile",
        "ARG BASE\nFROM $BASE\nCOPY app.txt /app.txt\n",
    );
    p.write("app/app.txt", "from app\n");
    let out = p.devloop(&["build", "-o", "json"]);
    assert_ok(&out);
    let ev = events(&out);
    let finished: Vec<_> = events_of(&ev, "buildFinished")
        .iter()
        .map(|e| e["data"]["image"].as_str().unwrap().to_string())
        .collect();
    assert_eq!(
        finished,
        vec![base.clone(), app.clone()],
        "the base is built before the app"
    );
    let refs: Vec<String> = events_of(&ev, "buildFinished")
        .iter()
        .map(|e| e["data"]["tag"].as_str().unwrap().to_string())
        .collect();
    for r in &refs {
        p.cleanup_image(r);
    }
    assert_eq!(
        image_file(&refs[1], "/base.txt").as_deref(),
        Some("from base\n")
    );
    assert_eq!(
        image_file(&refs[1], "/app.txt").as_deref(),
        Some("from app\n")
    );

    // Changing the base changes the app's key too: both rebuild.
    p.write("base/base.txt", "base v2\n");
    let out = p.devloop(&["build", "-o", "json"]);
    assert_ok(&out);
    let ev = events(&out);
    assert_eq!(events_of(&ev, "buildStarted").len(), 2);
    for e in events_of(&ev, "buildFinished") {
        p.cleanup_image(e["data"]["tag"].as_str().unwrap());
    }
    // `-b app` alone still builds what it requires (here: cached).
    let out = p.devloop(&["build", "-b", &app, "-o", "json"]);
    assert_ok(&out);
    assert_eq!(events_of(&events(&out), "buildCached").len(), 2);
}

#[test]
fn push_to_registry_prints_the_registry_digest() {
    support::require_docker();
    let registry = support::registry::Registry::start(None);
    let image = unique("devloop-test-push");
    let mut p = web_project(&image);
    let out = p.devloop(&[
        "build",
        "--push",
        "--default-repo",
        &registry.addr,
        "--file-output",
        "notes/artifacts.json",
    ]);
    assert_ok(&out);
    let reference = built_ref(&out);
    let (name_tag, digest) = reference.split_once('@').unwrap();
    let (repo, tag) = name_tag.rsplit_once(':').unwrap();
    p.cleanup_image(name_tag);
    assert_eq!(repo, format!("{}/{image}", registry.addr));
    let path = repo.split_once('/').unwrap().1;
    assert_eq!(
        registry.manifest_digest(path, tag, None).as_deref(),
        Some(digest),
        "the printed digest is the registry's"
    );
    let file: serde_json::Value = serde_json::from_str(
        &std::fs::read_to_string(p.path().join("notes/artifacts.json")).unwrap(),
    )
    .unwrap();
    assert_eq!(file["builds"][0]["imageName"], image.as_str());
    assert_eq!(file["builds"][0]["tag"], reference.as_str());

    // Pushed and unchanged: cached, nothing pushed again, the same immutable reference.
    let again = p.devloop(&[
        "build",
        "--push",
        "--default-repo",
        &registry.addr,
        "-o",
        "json",
    ]);
    assert_ok(&again);
    let ev = events(&again);
    assert!(events_of(&ev, "pushStarted").is_empty(), "{ev:?}");
    assert_eq!(
        events_of(&ev, "buildsComplete")[0]["data"]["builds"][0]["tag"],
        reference.as_str()
    );
}

#[test]
fn push_with_htpasswd_auth_uses_docker_config_credentials() {
    support::require_docker();
    let registry = support::registry::Registry::start(Some(("ci", "s3cret-pw")));
    let image = unique("devloop-test-auth");
    let mut p = web_project(&image);

    // Without credentials: exit 1, the registry's refusal, and how to log in. Never the password.
    let empty = tempfile::tempdir().unwrap();
    std::fs::write(empty.path().join("config.json"), "{}").unwrap();
    let denied = p.devloop_env(
        &["build", "--push", "--default-repo", &registry.addr],
        &[("DOCKER_CONFIG", empty.path().to_str().unwrap())],
    );
    assert_eq!(denied.status.code(), Some(1), "{}", stderr(&denied));
    let err = stderr(&denied);
    assert!(err.contains("docker login"), "{err}");
    p.cleanup_image(&format!("{}/{image}", registry.addr));

    let config = tempfile::tempdir().unwrap();
    let auth = support::registry::base64("ci:s3cret-pw");
    std::fs::write(
        config.path().join("config.json"),
        format!(
            "{{\"auths\": {{\"{}\": {{\"auth\": \"{auth}\"}}}}}}",
            registry.addr
        ),
    )
    .unwrap();
    let out = p.devloop_env(
        &["build", "--push", "--default-repo", &registry.addr, "-v"],
        &[("DOCKER_CONFIG", config.path().to_str().unwrap())],
    );
    assert_ok(&out);
    let all = format!("{}{}", stdout(&out), stderr(&out));
    assert!(
        !all.contains("s3cret-pw") && !all.contains(&auth),
        "credentials must never be printed"
    );
    let reference = built_ref(&out);
    let (name_tag, digest) = reference.split_once('@').unwrap();
    p.cleanup_image(name_tag);
    let (repo, tag) = name_tag.rsplit_once(':').unwrap();
    let path = repo.split_once('/').unwrap().1;
    assert_eq!(
        registry
            .manifest_digest(path, tag, Some(("ci", "s3cret-pw")))
            .as_deref(),
        Some(digest)
    );
}

#[test]
fn a_failing_step_exits_1_with_its_output() {
    support::require_docker();
    let image = unique("devloop-test-fail");
    let p = Project::new();
    p.with_busybox("bin/busybox");
    p.write("devloop.yaml", &format!("apiVersion: devloop/v1alpha1\nkind: Config\nbuild:\n  artifacts:\n    - image: {image}\n"));
    p.write(
        "Dockerfile",
        "FROM scratch\nCOPY bin/busybox /bin/busybox\nRUN [\"/bin/busybox\", \"sh\", \"-c\", \"echo compiling; echo 'boom: missing semicolon' >&2; exit 3\"]\n",
    );
    let out = p.devloop(&["build"]);
    assert_eq!(out.status.code(), Some(1), "{}", stderr(&out));
    let err = stderr(&out);
    assert!(
        err.contains("boom: missing semicolon"),
        "the failing step's output is shown: {err}"
    );
    assert!(err.contains("RUN"), "the failing step is named: {err}");
    assert!(stdout(&out).is_empty());
}

#[test]
fn daemon_unreachable_is_an_environment_error() {
    let p = web_project("devloop-test-nodaemon");
    let out = p.devloop_env(
        &["build"],
        &[("DOCKER_HOST", "unix:///nonexistent/docker.sock")],
    );
    assert_eq!(out.status.code(), Some(2));
    let err = stderr(&out);
    assert!(
        err.contains("cannot reach the Docker daemon") && err.contains("/nonexistent/docker.sock"),
        "{err}"
    );
    assert!(err.contains("hint: is dockerd running"), "{err}");
}

/// The image devloop builds holds exactly the files `docker build` (classic) puts in the same image, for a
/// context whose ignore rules exercise Docker's matching semantics.
#[test]
fn dockerignore_conformance_with_docker_build() {
    support::require_docker();
    let image = unique("devloop-test-ignore");
    let mut p = Project::new();
    p.write("devloop.yaml", &format!("apiVersion: devloop/v1alpha1\nkind: Config\nbuild:\n  artifacts:\n    - image: {image}\n"));
    p.write("Dockerfile", "FROM scratch\nCOPY . /ctx/\n");
    p.write(
        ".dockerignore",
        "# comment\n**/*.tmp\nlogs\n!logs/keep.log\nsrc/*/generated\ndocs/[!a]*.md\n/secret.txt\nvendor/\n!vendor/a/b/keep.go\n*.md\n!README.md\nDockerfile\n",
    );
    for f in [
        "a.tmp",
        "x/y/z.tmp",
        "logs/one.log",
        "logs/keep.log",
        "src/a/generated/g.rs",
        "src/a/b/generated/h.rs",
        "src/main.rs",
        "docs/a.md",
        "docs/b.md",
        "docs/[a].txt",
        "secret.txt",
        "sub/secret.txt",
        "vendor/a/b/keep.go",
        "vendor/a/b/drop.go",
        "README.md",
        "CHANGES.md",
        "sub dir/with space.txt",
    ] {
        p.write(f, f);
    }
    std::os::unix::fs::symlink("../outside", p.path().join("link")).unwrap();
    let out = p.devloop(&["build"]);
    assert_ok(&out);
    let ours = built_ref(&out);
    p.cleanup_image(&ours);
    let theirs = format!("{image}:docker");
    let status = Command::new("docker")
        .args(["build", "-q", "-t", &theirs, "."])
        .env("DOCKER_BUILDKIT", "0")
        .current_dir(p.path())
        .output()
        .unwrap();
    assert!(
        status.status.success(),
        "{}",
        String::from_utf8_lossy(&status.stderr)
    );
    p.cleanup_image(&theirs);
    let (a, b) = (image_files(&ours, "ctx/"), image_files(&theirs, "ctx/"));
    assert!(!a.is_empty());
    assert_eq!(
        a, b,
        "devloop's image and docker build's image hold the same files"
    );
}

#[test]
fn buildkit_builds_through_the_engine_api_session() {
    support::require_docker();
    let image = unique("devloop-test-buildkit");
    let mut p = Project::new();
    p.with_busybox("bin/busybox");
    p.write(
        "devloop.yaml",
        &format!(
            "apiVersion: devloop/v1alpha1\nkind: Config\nbuild:\n  useBuildkit: true\n  artifacts:\n    - image: {image}\n      docker:\n        target: app\n        buildArgs: {{GREETING: hello-buildkit}}\n"
        ),
    );
    p.write(
        "Dockerfile",
        "FROM scratch AS tools\nCOPY bin/busybox /bin/busybox\nFROM tools AS app\nARG GREETING\nRUN [\"/bin/busybox\", \"sh\", \"-c\", \"echo $GREETING > /greeting\"]\nFROM tools AS unused\nRUN [\"/bin/busybox\", \"false\"]\n",
    );
    let out = p.devloop(&["build", "-o", "json"]);
    assert_ok(&out);
    let ev = events(&out);
    let tag = events_of(&ev, "buildFinished")[0]["data"]["tag"]
        .as_str()
        .unwrap()
        .to_string();
    p.cleanup_image(&tag);
    assert!(
        events_of(&ev, "buildStep")
            .iter()
            .any(|e| e["data"]["step"].as_str().unwrap().contains("RUN")),
        "BuildKit vertices are reported as steps"
    );
    assert_eq!(
        image_file(&tag, "/greeting").as_deref(),
        Some("hello-buildkit\n")
    );
    let again = p.devloop(&["build", "-o", "json"]);
    assert_eq!(events_of(&events(&again), "buildCached").len(), 1);
}

#[test]
fn buildkit_is_the_default_and_skips_stages_the_target_does_not_need() {
    support::require_docker();
    let image = unique("devloop-test-buildkit-default");
    let mut p = Project::new();
    p.with_busybox("bin/busybox");
    p.write("www/index.html", "hi\n");
    // A stage nothing needs, which cannot build: BuildKit (what `docker build` uses since Engine 23) leaves it
    // out; the classic builder builds every stage and fails on it.
    p.write(
        "Dockerfile",
        "FROM scratch AS unused\nCOPY no-such-file /x\nFROM scratch\nCOPY www /www\n",
    );
    let config = |extra: &str| {
        format!(
            "apiVersion: devloop/v1alpha1\nkind: Config\nbuild:\n{extra}  artifacts:\n    - image: {image}\n"
        )
    };
    // An allow-list `.dockerignore` leaves the Dockerfile out of what `COPY` may see; no instruction here could
    // copy it, so BuildKit still builds.
    p.write(".dockerignore", "*\n!www\n");
    p.write("devloop.yaml", &config(""));
    let out = p.devloop(&["build", "-o", "json"]);
    assert_ok(&out);
    let tag = events_of(&events(&out), "buildFinished")[0]["data"]["tag"]
        .as_str()
        .unwrap()
        .to_string();
    p.cleanup_image(&tag);
    assert_eq!(image_file(&tag, "/www/index.html").as_deref(), Some("hi\n"));
    p.write("devloop.yaml", &config("  useBuildkit: false\n"));
    p.write("www/index.html", "classic\n");
    let classic = p.devloop(&["build", "-o", "json"]);
    assert!(
        !classic.status.success(),
        "the classic builder builds the unused stage too"
    );
}
