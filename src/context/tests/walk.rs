//! Tests of the walk: rules applied on disk, build files kept, symlinks, ignore-file precedence, errors.

use std::fs;
use std::os::unix::fs::{MetadataExt, PermissionsExt, symlink};

use super::*;

#[test]
fn walk_applies_rules_and_sorts_by_bytes() {
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path();
    write(root, "Dockerfile", "FROM scratch\n");
    write(
        root,
        ".dockerignore",
        "*.log\nvendor\n!vendor/keep.txt\nnode_modules\n",
    );
    write(root, "a.log", "x");
    write(root, "a-b", "x");
    write(root, "a/b", "x");
    write(root, "src/app.log", "kept: *.log does not cross /");
    write(root, "vendor/keep.txt", "kept");
    write(root, "vendor/drop.txt", "dropped");
    write(root, "node_modules/x/y.js", "dropped");
    fs::create_dir(root.join("empty")).unwrap();
    let files = walk(root, &root.join("Dockerfile")).unwrap();
    assert_eq!(
        rels(&files),
        [
            ".dockerignore",
            "Dockerfile",
            "a",
            "a-b",
            "a/b",
            "empty",
            "src",
            "src/app.log",
            "vendor/keep.txt"
        ]
    );
    assert_eq!(files.root, fs::canonicalize(root).unwrap());
    assert_eq!(files.ignore.source, Some(files.root.join(".dockerignore")));
    let a_b = &files.entries[3];
    assert_eq!(a_b.kind, EntryKind::File);
    assert_eq!(a_b.size, 1);
    let meta = fs::symlink_metadata(root.join("a-b")).unwrap();
    assert_eq!(
        (a_b.ino, a_b.dev, a_b.mode),
        (meta.ino(), meta.dev(), meta.mode())
    );
    assert_eq!(
        a_b.mtime_ns,
        meta.mtime() * 1_000_000_000 + meta.mtime_nsec()
    );
    let empty = files.entries.iter().find(|e| e.rel == "empty").unwrap();
    assert_eq!((empty.kind.clone(), empty.size), (EntryKind::Dir, 0));
}

#[test]
fn walk_keeps_ignored_dockerfile_and_dockerignore() {
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path();
    write(root, "deploy/api.Dockerfile", "FROM scratch\n");
    write(
        root,
        ".dockerignore",
        ".dockerignore\ndeploy\n**/*.Dockerfile\n",
    );
    write(root, "deploy/other", "x");
    write(root, "src/x", "x");
    let files = walk(root, &root.join("deploy/api.Dockerfile")).unwrap();
    assert_eq!(
        rels(&files),
        [".dockerignore", "deploy/api.Dockerfile", "src", "src/x"]
    );
}

#[test]
fn walk_keeps_dockerfile_even_where_docker_would_prune_it() {
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path();
    write(root, "a/b/c/Dockerfile", "FROM scratch\n");
    write(root, ".dockerignore", "**/c\n");
    let files = walk(root, &root.join("a/b/c/Dockerfile")).unwrap();
    assert_eq!(
        rels(&files),
        [".dockerignore", "a", "a/b", "a/b/c/Dockerfile"]
    );
}

#[test]
fn walk_keeps_symlinks_as_links_and_never_leaves_the_context() {
    let outside = tempfile::tempdir().unwrap();
    write(outside.path(), "secret/data.txt", "outside");
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path();
    write(root, "Dockerfile", "FROM scratch\n");
    write(root, "real/file", "x");
    symlink(outside.path().join("secret"), root.join("escape")).unwrap();
    symlink("real", root.join("inner")).unwrap();
    symlink("does/not/exist", root.join("dangling")).unwrap();
    let files = walk(root, &root.join("Dockerfile")).unwrap();
    assert_eq!(
        rels(&files),
        [
            "Dockerfile",
            "dangling",
            "escape",
            "inner",
            "real",
            "real/file"
        ]
    );
    let escape = files.entries.iter().find(|e| e.rel == "escape").unwrap();
    assert_eq!(
        escape.kind,
        EntryKind::Symlink {
            target: outside.path().join("secret").to_str().unwrap().to_owned()
        }
    );
    assert_eq!(escape.mode & 0o170000, 0o120000);
    let inner = files.entries.iter().find(|e| e.rel == "inner").unwrap();
    assert_eq!(
        inner.kind,
        EntryKind::Symlink {
            target: "real".to_owned()
        }
    );
}

#[test]
fn dockerfile_specific_ignore_file_takes_precedence() {
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path();
    write(root, "deploy/docker/api.Dockerfile", "FROM scratch\n");
    write(root, "deploy/docker/api.Dockerfile.dockerignore", "web\n");
    write(root, ".dockerignore", "api\n");
    write(root, "api/main.go", "x");
    write(root, "web/index.html", "x");
    let dockerfile = root.join("deploy/docker/api.Dockerfile");
    let rules = read_ignore_rules(root, &dockerfile).unwrap();
    assert_eq!(
        rules.source,
        Some(root.join("deploy/docker/api.Dockerfile.dockerignore"))
    );
    assert_eq!(rules.text, "web\n");
    let files = walk(root, &dockerfile).unwrap();
    assert!(rels(&files).contains(&"api/main.go"));
    assert!(!rels(&files).contains(&"web/index.html"));
    // Without it, the context's own file applies.
    fs::remove_file(root.join("deploy/docker/api.Dockerfile.dockerignore")).unwrap();
    let files = walk(root, &dockerfile).unwrap();
    assert!(!rels(&files).contains(&"api/main.go"));
    assert!(rels(&files).contains(&"web/index.html"));
    // Neither file: no rules.
    fs::remove_file(root.join(".dockerignore")).unwrap();
    assert_eq!(
        read_ignore_rules(root, &dockerfile).unwrap(),
        IgnoreRules::default()
    );
}

#[test]
fn walk_errors_name_the_path() {
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path();
    write(root, "Dockerfile", "FROM scratch\n");
    let missing = root.join("nope");
    let err = walk(&missing, &root.join("Dockerfile")).unwrap_err();
    assert_eq!(
        err.to_string(),
        format!("build context `{}` does not exist", missing.display())
    );
    let err = walk(&root.join("Dockerfile"), &root.join("Dockerfile")).unwrap_err();
    assert!(
        matches!(err, ContextError::ContextNotDirectory { .. }),
        "{err:?}"
    );
    let err = walk(root, &root.join("Missing.Dockerfile")).unwrap_err();
    assert!(
        matches!(err, ContextError::DockerfileMissing { .. }),
        "{err:?}"
    );
    write(root, ".dockerignore", "a\n[\n");
    let err = walk(root, &root.join("Dockerfile")).unwrap_err();
    assert!(
        err.to_string()
            .contains(".dockerignore:2: invalid pattern `[`"),
        "{err}"
    );
}

#[test]
fn non_utf8_names_error_unless_excluded() {
    use std::os::unix::ffi::OsStrExt;
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path();
    write(root, "Dockerfile", "FROM scratch\n");
    let bad = root.join(std::ffi::OsStr::from_bytes(b"bad\xffname"));
    fs::write(&bad, "x").unwrap();
    let err = walk(root, &root.join("Dockerfile")).unwrap_err();
    assert!(matches!(err, ContextError::NonUtf8Path { .. }), "{err:?}");
    write(root, ".dockerignore", "bad*\n");
    let files = walk(root, &root.join("Dockerfile")).unwrap();
    assert_eq!(rels(&files), [".dockerignore", "Dockerfile"]);
}

#[test]
fn unreadable_directory_is_an_error_unless_only_walked_for_exceptions() {
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path();
    write(root, "Dockerfile", "FROM scratch\n");
    write(root, "locked/file", "x");
    fs::set_permissions(root.join("locked"), fs::Permissions::from_mode(0o000)).unwrap();
    let readable = fs::read_dir(root.join("locked")).is_ok(); // true when running as root
    let result = walk(root, &root.join("Dockerfile"));
    fs::set_permissions(root.join("locked"), fs::Permissions::from_mode(0o755)).unwrap();
    if readable {
        assert!(result.is_ok());
    } else {
        let err = result.unwrap_err();
        assert!(err.to_string().starts_with("cannot read `"), "{err}");
        assert!(err.to_string().contains("locked"), "{err}");
    }
}

#[test]
fn build_files_only_for_the_build_are_told_apart() {
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path();
    write(root, "Dockerfile", "FROM scratch\n");
    write(root, "app.txt", "x");
    let dockerfile = root.join("Dockerfile");
    assert!(!walk(root, &dockerfile).unwrap().build_files_excluded);
    write(root, ".dockerignore", "*.log\n");
    assert!(!walk(root, &dockerfile).unwrap().build_files_excluded);
    // Sent although excluded: the classic builder drops them again, BuildKit would not.
    write(root, ".dockerignore", "Dockerfile\n");
    assert!(walk(root, &dockerfile).unwrap().build_files_excluded);
    write(root, ".dockerignore", ".dockerignore\n");
    assert!(walk(root, &dockerfile).unwrap().build_files_excluded);
    fs::remove_file(root.join(".dockerignore")).unwrap();
    let outside = tempfile::tempdir().unwrap();
    write(outside.path(), "Dockerfile", "FROM scratch\n");
    assert!(
        walk(root, &outside.path().join("Dockerfile"))
            .unwrap()
            .build_files_excluded
    );
}
