//! Tests of the tar stream: deterministic and faithful, an outside Dockerfile, changed files, writer failures.

use std::fs;
use std::io::{self, Read, Write};
use std::os::unix::fs::{PermissionsExt, symlink};

use sha2::{Digest, Sha256};

use super::*;
use crate::context::tar_writer::TAR_MTIME;

fn tar_entries(bytes: &[u8]) -> Vec<(String, tar::EntryType, u32, String, Vec<u8>)> {
    let mut archive = tar::Archive::new(bytes);
    archive
        .entries()
        .unwrap()
        .map(|e| {
            let mut e = e.unwrap();
            let path = String::from_utf8(e.path_bytes().into_owned()).unwrap();
            let link = e
                .link_name_bytes()
                .map(|l| String::from_utf8(l.into_owned()).unwrap())
                .unwrap_or_default();
            let header = e.header();
            let (kind, mode) = (header.entry_type(), header.mode().unwrap());
            assert_eq!((header.uid().unwrap(), header.gid().unwrap()), (0, 0));
            assert_eq!(header.mtime().unwrap(), TAR_MTIME);
            let mut data = Vec::new();
            e.read_to_end(&mut data).unwrap();
            (path, kind, mode, link, data)
        })
        .collect()
}

#[test]
fn tar_is_deterministic_and_faithful() {
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path();
    write(root, "Dockerfile", "FROM scratch\nCOPY . /ctx/\n");
    write(root, "bin/run.sh", "#!/bin/sh\n");
    fs::set_permissions(root.join("bin/run.sh"), fs::Permissions::from_mode(0o750)).unwrap();
    write(root, "with space.txt", "s p a c e");
    let long_dir = "d".repeat(60);
    let long_name = format!("{long_dir}/{}", "f".repeat(80));
    write(root, &long_name, "long");
    symlink("../../escape/./x/", root.join("link")).unwrap();
    symlink("t".repeat(150), root.join("longlink")).unwrap();
    fs::hard_link(root.join("with space.txt"), root.join("z-hardlink")).unwrap();
    let files = walk(root, &root.join("Dockerfile")).unwrap();
    let mut first = Vec::new();
    let name = write_tar(&files, &root.join("Dockerfile"), &mut first).unwrap();
    assert_eq!(name, "Dockerfile");
    let mut second = Vec::new();
    write_tar(
        &walk(root, &root.join("Dockerfile")).unwrap(),
        &root.join("Dockerfile"),
        &mut second,
    )
    .unwrap();
    assert_eq!(first, second, "two runs give the same bytes");

    let entries = tar_entries(&first);
    let names: Vec<&str> = entries.iter().map(|e| e.0.as_str()).collect();
    assert_eq!(
        names,
        [
            "Dockerfile",
            "bin/",
            "bin/run.sh",
            &format!("{long_dir}/"),
            &long_name,
            "link",
            "longlink",
            "with space.txt",
            "z-hardlink"
        ]
    );
    let by_name = |n: &str| entries.iter().find(|e| e.0 == n).unwrap();
    assert_eq!(by_name("bin/run.sh").2, 0o750);
    assert_eq!(by_name("bin/run.sh").4, b"#!/bin/sh\n");
    assert_eq!(by_name("bin/").1, tar::EntryType::Directory);
    assert_eq!(by_name(&long_name).4, b"long");
    assert_eq!(
        (by_name("link").1, by_name("link").3.as_str()),
        (tar::EntryType::Symlink, "../../escape/./x/")
    );
    assert_eq!(by_name("longlink").3, "t".repeat(150));
    assert_eq!(by_name("with space.txt").4, b"s p a c e");
    assert_eq!(
        (by_name("z-hardlink").1, by_name("z-hardlink").3.as_str()),
        (tar::EntryType::Link, "with space.txt")
    );
}

#[test]
fn tar_adds_an_outside_dockerfile_like_the_docker_cli() {
    let dir = tempfile::tempdir().unwrap();
    let context = dir.path().join("api");
    write(&context, "main.go", "package main\n");
    let dockerfile = dir.path().join("deploy/docker/api.Dockerfile");
    write(
        dir.path(),
        "deploy/docker/api.Dockerfile",
        "FROM scratch\nCOPY . /ctx/\n",
    );
    let files = walk(&context, &dockerfile).unwrap();
    assert_eq!(rels(&files), ["main.go"]);
    let mut bytes = Vec::new();
    let name = write_tar(&files, &dockerfile, &mut bytes).unwrap();
    let digest = Sha256::digest(b"FROM scratch\nCOPY . /ctx/\n");
    let hex: String = digest.iter().map(|b| format!("{b:02x}")).collect();
    assert_eq!(name, format!(".dockerfile.{}", &hex[..20]));
    let entries = tar_entries(&bytes);
    let names: Vec<&str> = entries.iter().map(|e| e.0.as_str()).collect();
    assert_eq!(
        names,
        [
            ".dockerfile.".to_owned() + &hex[..20],
            ".dockerignore".to_owned(),
            "main.go".to_owned()
        ]
    );
    assert_eq!(entries[0].4, b"FROM scratch\nCOPY . /ctx/\n");
    assert_eq!(entries[0].2, 0o600);
    assert_eq!(
        String::from_utf8(entries[1].4.clone()).unwrap(),
        format!(".dockerignore\n{name}\n")
    );

    // An existing .dockerignore gets the name appended, keeping its content and mode.
    write(&context, ".dockerignore", "*.tmp");
    fs::set_permissions(
        context.join(".dockerignore"),
        fs::Permissions::from_mode(0o644),
    )
    .unwrap();
    let files = walk(&context, &dockerfile).unwrap();
    let mut bytes = Vec::new();
    write_tar(&files, &dockerfile, &mut bytes).unwrap();
    let entries = tar_entries(&bytes);
    let ignore = entries.iter().find(|e| e.0 == ".dockerignore").unwrap();
    assert_eq!(
        String::from_utf8(ignore.4.clone()).unwrap(),
        format!("*.tmp\n{name}\n")
    );
    assert_eq!(ignore.2, 0o644);
    assert_eq!(entries.len(), 3);
}

#[test]
fn tar_refuses_a_file_that_changed_since_the_walk() {
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path();
    write(root, "Dockerfile", "FROM scratch\n");
    write(root, "data", "12345");
    let files = walk(root, &root.join("Dockerfile")).unwrap();
    write(root, "data", "1234567890");
    let err = write_tar(&files, &root.join("Dockerfile"), Vec::new()).unwrap_err();
    match &err {
        ContextError::FileChanged { path, detail } => {
            assert_eq!(path, &files.root.join("data"));
            assert_eq!(detail, "size was 5 bytes, now 10");
        }
        other => panic!("unexpected {other:?}"),
    }
    assert!(
        err.to_string()
            .contains("changed while the build context was being sent")
    );
}

#[test]
fn tar_needs_the_dockerfile_in_the_walked_set() {
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path();
    write(root, "x", "1");
    let files = walk(root, &root.join("x")).unwrap();
    write(root, "Dockerfile", "FROM scratch\n");
    let err = write_tar(&files, &root.join("Dockerfile"), Vec::new()).unwrap_err();
    assert!(
        matches!(err, ContextError::DockerfileNotInContext { .. }),
        "{err:?}"
    );
}

#[test]
fn tar_reports_writer_failures() {
    struct Broken;
    impl Write for Broken {
        fn write(&mut self, _: &[u8]) -> io::Result<usize> {
            Err(io::Error::new(io::ErrorKind::BrokenPipe, "receiver gone"))
        }
        fn flush(&mut self) -> io::Result<()> {
            Ok(())
        }
    }
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path();
    write(root, "Dockerfile", &"x".repeat(300_000));
    let files = walk(root, &root.join("Dockerfile")).unwrap();
    let err = write_tar(&files, &root.join("Dockerfile"), Broken).unwrap_err();
    assert_eq!(
        err.to_string(),
        "cannot write the build context tar stream: receiver gone"
    );
}
