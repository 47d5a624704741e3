//! Cache stage, tests of keys: every input changes the key, and the encoding behind every key is canonical.

use super::*;

#[test]
fn every_input_changes_the_key() {
    let (_s, store) = store();
    let project = project();
    let p = project.path();
    let context_key = |store: &Store| {
        let context = walk(p);
        let digest = store.digest_context(&context).unwrap();
        key(&inputs(&digest, &context))
    };
    let base_key = context_key(&store);
    let mut keys = BTreeSet::from([base_key.clone()]);
    let mut expect_new =
        |k: CacheKey, what: &str| assert!(keys.insert(k), "{what} did not change the key");

    // Context changes, each on top of the previous ones.
    fs::write(p.join("a.txt"), "ALPHA\n").unwrap(); // same size, new content
    expect_new(context_key(&store), "content");
    fs::set_permissions(p.join("a.txt"), fs::Permissions::from_mode(0o755)).unwrap();
    expect_new(context_key(&store), "mode");
    fs::rename(p.join("src/main.rs"), p.join("src/main2.rs")).unwrap();
    expect_new(context_key(&store), "rename");
    fs::create_dir(p.join("newdir")).unwrap();
    expect_new(context_key(&store), "new empty dir");
    fs::remove_file(p.join("link")).unwrap();
    symlink("src/lib.rs", p.join("link")).unwrap();
    expect_new(context_key(&store), "symlink target");

    let context = walk(p);
    let base = inputs(&store.digest_context(&context).unwrap(), &context);
    let variant = |change: &dyn Fn(&mut KeyInputs)| {
        let mut i = base.clone();
        change(&mut i);
        key(&i)
    };
    expect_new(
        variant(&|i| i.dockerfile_digest = Digest::of(b"FROM scratch\n")),
        "dockerfile",
    );
    expect_new(variant(&|i| i.target = Some("dev".into())), "target");
    expect_new(
        variant(&|i| i.build_args = build_arg_digests([("A", "1")])),
        "build arg",
    );
    let one = base.build_args.clone();
    expect_new(
        variant(&|i| i.build_args = build_arg_digests([("A", "2")])),
        "build arg value",
    );
    assert!(one.is_empty());
    expect_new(
        variant(&|i| {
            i.ignore_digest = ignore_digest(&IgnoreRules {
                source: None,
                text: "*.md\n".into(),
            })
        }),
        "ignore rules",
    );
    expect_new(
        variant(&|i| i.platform = Some("linux/arm64".into())),
        "platform",
    );
    let img = |id: Option<&str>| BTreeMap::from([("alpine:3".to_owned(), id.map(str::to_owned))]);
    expect_new(variant(&|i| i.base_images = img(None)), "base image absent");
    expect_new(
        variant(&|i| i.base_images = img(Some("sha256:aaa"))),
        "base image id",
    );
    expect_new(
        variant(&|i| i.base_images = img(Some("sha256:bbb"))),
        "other base image id",
    );
    let req = |k: &CacheKey| BTreeMap::from([("api".to_owned(), k.clone())]);
    expect_new(variant(&|i| i.required = req(&base_key)), "required key");
    expect_new(
        variant(&|i| i.required = req(&key(&base))),
        "other required key",
    );
    expect_new(variant(&|i| i.key_version += 1), "key version");
}

/// Regression guard: the canonical encoding (and so every key) must not change without a
/// `KEY_VERSION` bump.
#[test]
fn key_encoding_is_canonical() {
    let mut inputs = KeyInputs::new(Digest([1; 32]), b"", &IgnoreRules::default());
    inputs.build_args = build_arg_digests([("Z", "z"), ("A", "a")]);
    inputs.base_images =
        BTreeMap::from([("b".into(), None), ("a".into(), Some("sha256:1".into()))]);
    let json = serde_json::to_string(&inputs).unwrap();
    let empty = Digest::of(b"");
    assert_eq!(
        json,
        format!(
            r#"{{"key_version":1,"context_digest":"{}","dockerfile_digest":"{empty}","target":null,"build_args":{{"A":"{}","Z":"{}"}},"ignore_digest":"{empty}","platform":null,"required":{{}},"base_images":{{"a":"sha256:1","b":null}}}}"#,
            "01".repeat(32),
            Digest::of(b"a"),
            Digest::of(b"z"),
        )
    );
    assert_eq!(key(&inputs).as_str(), Digest::of(json.as_bytes()).to_hex());
    assert_eq!(
        key(&inputs).short(),
        &Digest::of(json.as_bytes()).to_hex()[..12]
    );
    let back: KeyInputs = serde_json::from_str(&json).unwrap();
    assert_eq!(back, inputs);
}
