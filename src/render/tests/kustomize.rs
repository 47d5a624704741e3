//! Tests of kustomize paths: `kubectl kustomize` as the fallback, a `kustomize` on PATH with build args,
//! failures.

use super::*;

#[test]
fn kustomize_falls_back_to_kubectl() {
    let f = Fixture::new();
    overlay(&f);
    let images = [artifact("app-api", "reg/app-api:2")];
    let rendered = f
        .render(&kustomize_manifests(None, &[]), &images, Some("dev"))
        .unwrap();
    assert_eq!(
        summary(&rendered),
        ["apps/v1 Deployment/dev-web Some(\"dev\") @kustomize output of `overlays/dev`#1None"]
    );
    assert_eq!(
        rendered.objects[0].value()["spec"]["template"]["spec"]["containers"][0]["image"],
        "reg/app-api:2"
    );
}

#[test]
fn kustomize_on_path_is_preferred_and_gets_build_args() {
    let mut f = Fixture::new();
    overlay(&f);
    f.script("bin/kustomize", "printf '%s\\n' \"$@\" > \"$(dirname \"$0\")/argv\"\nprintf 'apiVersion: v1\\nkind: ConfigMap\\nmetadata: {name: from-fake}\\n'\n");
    f.prepend_path("bin");
    let manifests = kustomize_manifests(None, &["--load-restrictor=LoadRestrictionsNone"]);
    let rendered = f.render(&manifests, &[], None).unwrap();
    assert_eq!(rendered.objects[0].name(), Some("from-fake"));
    let argv = fs::read_to_string(f.path().join("bin/argv")).unwrap();
    assert_eq!(
        argv,
        "build\noverlays/dev\n--load-restrictor=LoadRestrictionsNone\n"
    );
    // An explicit `kubectl` binary means `kubectl kustomize`.
    let rendered = f
        .render(&kustomize_manifests(Some("kubectl"), &[]), &[], None)
        .unwrap();
    assert_eq!(rendered.objects[0].name(), Some("dev-web"));
}

#[test]
fn kustomize_failures_are_reported() {
    let f = Fixture::new();
    overlay(&f);
    f.write(
        "overlays/broken/kustomization.yaml",
        "resources: [missing.yaml]\n",
    );
    let mut manifests = kustomize_manifests(Some("kubectl"), &[]);
    if let Some(k) = manifests.kustomize.as_mut() {
        k.paths = vec!["overlays/dev".into(), "overlays/broken".into()];
    }
    let err = f.render(&manifests, &[], None).unwrap_err();
    let RenderError::ToolFailed {
        command,
        code,
        stderr,
    } = &err
    else {
        panic!("{err:?}")
    };
    assert_eq!(command, "kubectl kustomize overlays/broken");
    assert_eq!(*code, Some(1));
    assert!(stderr.contains("missing.yaml"), "{stderr}");
    assert!(
        err.to_string()
            .starts_with("`kubectl kustomize overlays/broken` failed (exit code 1):\n"),
        "{err}"
    );

    if let Some(k) = manifests.kustomize.as_mut() {
        k.paths = vec!["overlays/nope".into()];
    }
    let err = f.render(&manifests, &[], None).unwrap_err();
    assert_eq!(
        err.to_string(),
        "devloop.yaml: manifests.kustomize.paths: directory `overlays/nope` does not exist"
    );

    let mut f = f;
    f.env.insert("PATH".into(), "/nonexistent".into());
    let err = f
        .render(&kustomize_manifests(None, &[]), &[], None)
        .unwrap_err();
    assert_eq!(
        err.to_string(),
        "`kustomize` is not installed (not found on PATH)\n\nhint: install kustomize or kubectl, or set `manifests.kustomize.binary` to its path"
    );
}
