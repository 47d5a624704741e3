//! Cache stage, tests of explain: exactly the changed inputs, worded without build-arg values.

use super::*;

#[test]
fn explain_reports_exactly_the_changed_inputs() {
    let files = sample_files(20);
    let mut inputs = KeyInputs::new(files.digest(), b"FROM a\n", &IgnoreRules::default());
    inputs.build_args = build_arg_digests([("TOKEN", "hunter2"), ("MODE", "dev")]);
    inputs.base_images = BTreeMap::from([(
        "alpine:3".into(),
        Some("sha256:0123456789abcdef0123".into()),
    )]);
    inputs.required = BTreeMap::from([("api".into(), CacheKey::from(Digest::of(b"api1")))]);
    let record = Record {
        artifact: "web".into(),
        project_dir: "/p".into(),
        key: key(&inputs),
        inputs: inputs.clone(),
        image_id: "sha256:1".into(),
        tag: "web:1".into(),
        pushed_digest: None,
        recorded_at: 0,
    };
    let previous = LastBuild {
        record,
        files: files.clone(),
    };
    assert_eq!(
        explain(None, &inputs, &files),
        vec![Change::NoPreviousBuild]
    );
    assert_eq!(explain(Some(&previous), &inputs, &files), vec![]);

    let mut now_files = files.clone();
    now_files.0.retain(|f| f.rel != "dir1/file1.txt");
    for f in now_files
        .0
        .iter_mut()
        .filter(|f| f.rel.starts_with("dir2/"))
    {
        f.content = Content::File(Digest::of(b"new"));
    }
    now_files
        .0
        .iter_mut()
        .find(|f| f.rel == "zlink")
        .unwrap()
        .mode = 0o120755;
    now_files.0.push(FileDigest {
        rel: "new.txt".into(),
        mode: 0o100644,
        content: Content::Dir,
    });
    now_files.0.sort_by(|a, b| a.rel.cmp(&b.rel));
    let mut now = inputs.clone();
    now.context_digest = now_files.digest();
    now.build_args = build_arg_digests([("TOKEN", "hunter3"), ("EXTRA", "1")]);
    now.base_images.insert(
        "alpine:3".into(),
        Some("sha256:fedcba9876543210fedc".into()),
    );
    now.base_images.insert("busybox".into(), None);
    now.platform = Some("linux/amd64".into());
    now.required
        .insert("api".into(), CacheKey::from(Digest::of(b"api2")));

    let changes = explain(Some(&previous), &now, &now_files);
    let text: Vec<String> = changes.iter().map(ToString::to_string).collect();
    let api = |s: &[u8]| CacheKey::from(Digest::of(s)).short().to_owned();
    assert_eq!(
        text,
        vec![
            "file added: `new.txt`".to_owned(),
            "file removed: `dir1/file1.txt`".to_owned(),
            "files modified: `dir2/file16.txt`, `dir2/file2.txt`, `dir2/file9.txt` and 1 more"
                .to_owned(),
            "build arg `EXTRA` added".to_owned(),
            "build arg `MODE` removed".to_owned(),
            "build arg `TOKEN` changed".to_owned(),
            "platform changed from (none) to `linux/amd64`".to_owned(),
            "base image `alpine:3` changed from `0123456789ab` to `fedcba987654`".to_owned(),
            "base image `busybox` changed from (not used) to (not present locally)".to_owned(),
            format!(
                "required artifact `api` changed from `{}` to `{}`",
                api(b"api1"),
                api(b"api2")
            ),
        ]
    );
    assert!(matches!(&changes[2], Change::FilesModified(s) if s.more == 1 && s.paths.len() == 3));
    assert!(text.iter().all(|t| !t.contains("hunter")));

    let mut only_docker = inputs.clone();
    only_docker.dockerfile_digest = Digest::of(b"FROM b\n");
    only_docker.target = Some("dev".into());
    only_docker.ignore_digest = Digest::of(b"x");
    assert_eq!(
        explain(Some(&previous), &only_docker, &files),
        vec![
            Change::Dockerfile,
            Change::Target {
                previous: None,
                current: Some("dev".into())
            },
            Change::IgnoreRules
        ]
    );
}
