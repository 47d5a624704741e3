//! Tests of helm releases against a fake `helm`: its arguments, namespaces, value templates, a missing or
//! failing binary.

use super::*;

#[test]
fn helm_template_is_invoked_with_release_values_and_image_variables() {
    let mut f = Fixture::new();
    f.script("bin/helm", FAKE_HELM);
    f.prepend_path("bin");
    let images = [artifact("app-api", "127.0.0.1:5000/app-api:1.10")];
    let rendered = f
        .render(&helm_manifests(None, Some("backend")), &images, None)
        .unwrap();
    let argv = fs::read_to_string(f.path().join("bin/argv")).unwrap();
    assert_eq!(
        argv.lines().collect::<Vec<_>>(),
        [
            "template",
            "api",
            "charts/api",
            "--namespace",
            "backend",
            "--values",
            "charts/api/values-dev.yaml",
            "--values",
            "more values.yaml",
            "--set",
            "a.b={x,y}",
            "--set",
            "replicaCount=2",
            "--set-string",
            "image.repository=127.0.0.1:5000/app-api",
            "--set-string",
            "image.tag=1.10",
            "--set-string",
            "note=a\\,b\\\\c none",
        ]
    );
    assert_eq!(
        summary(&rendered),
        [
            "v1 Service/api Some(\"backend\") @helm output of release `api`#1None",
            "apps/v1 Deployment/api Some(\"backend\") @helm output of release `api`#2None",
        ]
    );
    let deployment = rendered.objects[1].value();
    assert_eq!(
        deployment["spec"]["template"]["spec"]["containers"][0]["image"],
        "127.0.0.1:5000/app-api:1.10"
    );
    assert_eq!(
        deployment["spec"]["template"]["metadata"]["labels"]["devloop.dev/run"],
        "run-1"
    );
}

#[test]
fn helm_gets_the_requested_namespace_when_the_release_has_none() {
    let mut f = Fixture::new();
    f.script("tools/my-helm", FAKE_HELM);
    f.env.insert("USER_NOTE".into(), "hi".into());
    let images = [artifact("app-api", "r/app-api:1")];
    let rendered = f
        .render(
            &helm_manifests(Some("tools/my-helm"), None),
            &images,
            Some("dev"),
        )
        .unwrap();
    let argv = fs::read_to_string(f.path().join("tools/argv")).unwrap();
    assert!(argv.contains("--namespace\ndev\n"), "{argv}");
    assert!(
        argv.contains("--set-string\nnote=a\\,b\\\\c hi\n"),
        "{argv}"
    );
    assert!(
        rendered
            .objects
            .iter()
            .all(|o| o.namespace() == Some("dev"))
    );
}

#[test]
fn helm_value_templates_with_unset_variables_fail() {
    let mut f = Fixture::new();
    f.script("bin/helm", FAKE_HELM);
    f.prepend_path("bin");
    let err = f
        .render(&helm_manifests(None, None), &[], None)
        .unwrap_err();
    assert_eq!(
        err.to_string(),
        "devloop.yaml: manifests.helm.releases[0].setValueTemplates.image.repository: unset field `{{.IMAGE_REPO_app_api}}`\n\nhint: image fields exist for built artifacts only; other names are environment variables"
    );
    assert!(!f.path().join("bin/argv").exists(), "helm must not run");

    let mut manifests = helm_manifests(None, None);
    if let Some(helm) = manifests.helm.as_mut() {
        helm.releases[0].set_value_templates =
            BTreeMap::from([("tag".to_owned(), "{{.IMAGE_TAG_app_api".to_owned())]);
    }
    let err = f
        .render(&manifests, &[artifact("app-api", "r/app-api:1")], None)
        .unwrap_err();
    assert_eq!(
        err.to_string(),
        "devloop.yaml: manifests.helm.releases[0].setValueTemplates.tag: unclosed `{{` in `{{.IMAGE_TAG_app_api`"
    );
}

#[test]
fn helm_not_installed_is_a_clear_error() {
    let mut f = Fixture::new();
    fs::create_dir_all(f.path().join("empty")).unwrap();
    f.env
        .insert("PATH".into(), f.path().join("empty").display().to_string());
    let err = f
        .render(&helm_manifests(None, None), &[], None)
        .unwrap_err();
    assert_eq!(
        err.to_string(),
        "`helm` is not installed (not found on PATH)\n\nhint: install helm (https://helm.sh/docs/intro/install/), or set `manifests.helm.binary` to its path"
    );
    // A configured path that is not there, or not executable, is the same error.
    f.write("tools/helm", "not executable");
    let err = f
        .render(&helm_manifests(Some("tools/helm"), None), &[], None)
        .unwrap_err();
    assert!(
        matches!(err, RenderError::ToolNotFound { ref program, .. } if program == "tools/helm"),
        "{err}"
    );
}

#[test]
fn helm_failure_shows_exit_code_and_stderr() {
    let mut f = Fixture::new();
    f.script(
        "bin/helm",
        "echo 'Error: chart \"charts/api\" not found' >&2\necho partial\nexit 3\n",
    );
    f.prepend_path("bin");
    let images = [artifact("app-api", "r/app-api:1")];
    let err = f
        .render(&helm_manifests(None, None), &images, None)
        .unwrap_err();
    assert!(
        matches!(err, RenderError::ToolFailed { code: Some(3), .. }),
        "{err:?}"
    );
    let text = err.to_string();
    assert!(
        text.starts_with("`helm template api charts/api --values charts/api/values-dev.yaml "),
        "{text}"
    );
    assert!(
        text.ends_with(" failed (exit code 3):\nError: chart \"charts/api\" not found"),
        "{text}"
    );
}
