//! Tests of render errors: bad documents named by file and document, and every message's text (a snapshot).

use super::*;

#[test]
fn bad_documents_name_file_and_document() {
    let f = Fixture::new();
    f.write(
        "bad.yaml",
        "apiVersion: v1\nkind: ConfigMap\n---\n\n# second\nmetadata:\n  name: x\n  labels: [a\n",
    );
    let err = f.render(&raw(&["bad.yaml"]), &[], None).unwrap_err();
    let RenderError::Yaml {
        document: 2,
        line: Some(line),
        column: Some(_),
        ..
    } = err
    else {
        panic!("{err:?}")
    };
    assert!((8..=9).contains(&line), "{err}");
    assert!(
        err.to_string()
            .starts_with(&format!("bad.yaml: document 2: line {line}, column ")),
        "{err}"
    );

    f.write(
        "nokind.yaml",
        "apiVersion: v1\nkind: ConfigMap\n---\napiVersion: v1\nmetadata: {name: x}\n",
    );
    let err = f.render(&raw(&["nokind.yaml"]), &[], None).unwrap_err();
    assert_eq!(
        err.to_string(),
        "nokind.yaml: document 2: object has no `kind`\n\nhint: every document must be a Kubernetes object with `apiVersion` and `kind`"
    );
    f.write("noversion.yaml", "kind: ConfigMap\n");
    let err = f.render(&raw(&["noversion.yaml"]), &[], None).unwrap_err();
    assert!(
        matches!(
            err,
            RenderError::MissingField {
                field: "apiVersion",
                document: 1,
                ..
            }
        ),
        "{err}"
    );

    f.write("list.yaml", "apiVersion: v1\nkind: List\nitems:\n- apiVersion: v1\n  kind: ConfigMap\n- {apiVersion: v1}\n");
    let err = f.render(&raw(&["list.yaml"]), &[], None).unwrap_err();
    assert_eq!(
        err.to_string(),
        "list.yaml: document 1, item 1: object has no `kind`\n\nhint: every document must be a Kubernetes object with `apiVersion` and `kind`"
    );
    f.write("seq.yaml", "- a\n- b\n");
    let err = f.render(&raw(&["seq.yaml"]), &[], None).unwrap_err();
    assert_eq!(
        err.to_string(),
        "seq.yaml: document 1: expected a Kubernetes object, found a list"
    );

    f.write("empty.yaml", "---\n# nothing\n---\n...\n");
    assert!(
        f.render(&raw(&["empty.yaml"]), &[], None)
            .unwrap()
            .objects
            .is_empty()
    );
}

#[test]
fn error_messages() {
    let mut f = Fixture::new();
    f.write(
        "bad.yaml",
        "apiVersion: v1\nkind: ConfigMap\n---\nmetadata:\n  name: x\n  labels: {a: b\n",
    )
    .write("nokind.yaml", "apiVersion: v1\n")
    .write("scalar.yaml", "--- just text\n")
    .write(
        "ns.yaml",
        "apiVersion: v1\nkind: Secret\nmetadata: {name: s, namespace: prod}\n",
    )
    .write("t.yaml.tmpl", "a: ${A}\nb: ${B:-x}\nc: $C\n")
    .write(
        "overlays/broken/kustomization.yaml",
        "resources: [missing.yaml]\n",
    );
    let mut cases: Vec<(String, RenderError)> = Vec::new();
    for glob in [
        "bad.yaml",
        "nokind.yaml",
        "scalar.yaml",
        "t.yaml.tmpl",
        "nothing/*.yaml",
        "[x",
    ] {
        cases.push((
            format!("rawYaml {glob}"),
            f.render(&raw(&[glob]), &[], None).unwrap_err(),
        ));
    }
    cases.push((
        "namespace".into(),
        f.render(&raw(&["ns.yaml"]), &[], Some("dev")).unwrap_err(),
    ));
    // A fake kustomize: the real one's message carries a timestamp and a pid.
    f.script(
        "bin/kustomize",
        "echo 'Error: accumulating resources: missing.yaml' >&2\nexit 1\n",
    );
    let broken = Manifests {
        kustomize: Some(Kustomize {
            paths: vec!["overlays/broken".into()],
            build_args: vec![],
            binary: Some("bin/kustomize".into()),
        }),
        ..Manifests::default()
    };
    cases.push((
        "kustomize".into(),
        f.render(&broken, &[], None).unwrap_err(),
    ));
    let images = [
        artifact("app", "r/app:1"),
        artifact("docker.io/library/app", "r/app2:1"),
    ];
    cases.push((
        "artifacts".into(),
        f.render(&raw(&["ns.yaml"]), &images, None).unwrap_err(),
    ));
    f.env.insert("PATH".into(), "/nonexistent".into());
    cases.push((
        "helm".into(),
        f.render(&helm_manifests(None, None), &[], None)
            .unwrap_err(),
    ));

    let text: Vec<String> = cases
        .iter()
        .map(|(case, err)| format!("# {case}\n{err}\n"))
        .collect();
    let dir = f.path().display().to_string();
    insta::with_settings!({ filters => vec![(dir.as_str(), "[TMP]")] }, {
        insta::assert_snapshot!(text.join("\n"));
    });
}
