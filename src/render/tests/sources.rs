//! Tests of every kind of source together: objects keep config order, a successful tool's stderr becomes a
//! warning.

use super::*;

#[test]
fn sources_keep_config_order() {
    let mut f = Fixture::new();
    overlay(&f);
    f.script("bin/helm", FAKE_HELM);
    f.prepend_path("bin");
    f.write(
        "raw.yaml",
        "apiVersion: v1\nkind: ConfigMap\nmetadata: {name: raw}\n",
    )
    .write(
        "t.yaml",
        "apiVersion: v1\nkind: ConfigMap\nmetadata: {name: tmpl}\n",
    );
    let mut manifests = helm_manifests(None, None);
    manifests.raw_yaml = vec!["raw.yaml".into()];
    manifests.templates = vec!["t.yaml".into()];
    manifests.kustomize = kustomize_manifests(Some("kubectl"), &[]).kustomize;
    let images = [artifact("app-api", "r/app-api:1")];
    let rendered = f.render(&manifests, &images, None).unwrap();
    let sources: Vec<String> = rendered
        .objects
        .iter()
        .map(|o| format!("{}:{}", o.source(), o.name().unwrap()))
        .collect();
    assert_eq!(
        sources,
        [
            "raw.yaml:raw",
            "t.yaml:tmpl",
            "kustomize output of `overlays/dev`:dev-web",
            "helm output of release `api`:api",
            "helm output of release `api`:api",
        ]
    );
    assert!(rendered.warnings.is_empty());
}

#[test]
fn stderr_of_a_successful_tool_becomes_a_warning() {
    let mut f = Fixture::new();
    f.script(
        "bin/helm",
        &format!("echo 'WARNING: this chart is deprecated' >&2\n{FAKE_HELM}"),
    );
    f.prepend_path("bin");
    let images = [artifact("app-api", "r/app-api:1")];
    let rendered = f
        .render(&helm_manifests(None, None), &images, None)
        .unwrap();
    let warnings: Vec<String> = rendered.warnings.iter().map(ToString::to_string).collect();
    assert_eq!(warnings.len(), 1, "{warnings:?}");
    assert!(
        warnings[0].starts_with("`helm template api charts/api --values "),
        "{}",
        warnings[0]
    );
    assert!(
        warnings[0].ends_with("` said:\nWARNING: this chart is deprecated"),
        "{}",
        warnings[0]
    );
}
