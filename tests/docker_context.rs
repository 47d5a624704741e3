//! Conformance of `context::walk` + `context::write_tar` with the docker CLI: each tricky context is built
//! `FROM scratch` + `COPY . /ctx/` twice — once by `docker build` itself, once from devloop's tar stream on
//! stdin — and the files of the two images must be identical. Needs a Docker daemon (a failure, not a skip).
#![allow(clippy::unwrap_used, clippy::print_stderr)]

use std::collections::BTreeMap;
use std::fs;
use std::io::{Read, Write};
use std::os::unix::fs::{PermissionsExt, symlink};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::atomic::{AtomicUsize, Ordering};

use devloop::context::{walk, write_tar};

const DOCKERFILE: &str = "FROM scratch\nCOPY . /ctx/\n";

static COUNTER: AtomicUsize = AtomicUsize::new(0);

/// Image tags created by one test; removed on drop.
struct Images(Vec<String>);

impl Images {
    fn tag(&mut self) -> String {
        let tag = format!(
            "devloop-test-ctx-{}-{}",
            std::process::id(),
            COUNTER.fetch_add(1, Ordering::SeqCst)
        );
        self.0.push(tag.clone());
        tag
    }
}

impl Drop for Images {
    fn drop(&mut self) {
        if !self.0.is_empty() {
            let _ = Command::new("docker")
                .args(["rmi", "-f"])
                .args(&self.0)
                .output();
        }
    }
}

fn docker_available() {
    let out = Command::new("docker")
        .args(["info", "--format", "{{.ServerVersion}}"])
        .output();
    match out {
        Ok(out) if out.status.success() => {}
        Ok(out) => panic!(
            "docker daemon unreachable: {}",
            String::from_utf8_lossy(&out.stderr)
        ),
        Err(e) => panic!("cannot run `docker`: {e}"),
    }
}

fn run(cmd: &mut Command, stdin: Option<Vec<u8>>) -> Vec<u8> {
    cmd.stdin(if stdin.is_some() {
        Stdio::piped()
    } else {
        Stdio::null()
    });
    cmd.stdout(Stdio::piped()).stderr(Stdio::piped());
    cmd.env("DOCKER_BUILDKIT", "0");
    let mut child = cmd.spawn().unwrap();
    let writer = stdin.map(|data| {
        let mut pipe = child.stdin.take().unwrap();
        std::thread::spawn(move || {
            let _ = pipe.write_all(&data);
        })
    });
    let out = child.wait_with_output().unwrap();
    if let Some(writer) = writer {
        writer.join().unwrap();
    }
    assert!(
        out.status.success(),
        "{cmd:?} failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    out.stdout
}

/// Everything under `/ctx` in `image`: path → (type, permission bits, link target, size, first bytes).
type Listing = BTreeMap<String, (char, u32, String, u64, String)>;

fn list_ctx(image: &str) -> Listing {
    let id = String::from_utf8(run(
        Command::new("docker").args(["create", image, "none"]),
        None,
    ))
    .unwrap();
    let id = id.trim().to_owned();
    let export = Command::new("docker")
        .args(["export", &id])
        .output()
        .unwrap();
    let _ = Command::new("docker").args(["rm", "-f", &id]).output();
    assert!(
        export.status.success(),
        "docker export: {}",
        String::from_utf8_lossy(&export.stderr)
    );
    let generated_name = regex::Regex::new(r"\.dockerfile\.[0-9a-f]{20}").unwrap();
    let mut listing = Listing::new();
    let mut archive = tar::Archive::new(export.stdout.as_slice());
    for entry in archive.entries().unwrap() {
        let mut entry = entry.unwrap();
        let path = String::from_utf8(entry.path_bytes().into_owned()).unwrap();
        let path = path
            .trim_start_matches("./")
            .trim_start_matches('/')
            .trim_end_matches('/')
            .to_owned();
        let Some(rel) = path.strip_prefix("ctx/") else {
            continue;
        };
        let header = entry.header();
        let kind = match header.entry_type() {
            tar::EntryType::Regular => 'f',
            tar::EntryType::Directory => 'd',
            tar::EntryType::Symlink => 'l',
            tar::EntryType::Link => 'h',
            other => panic!("unexpected entry type {other:?} for {path}"),
        };
        let mode = header.mode().unwrap() & 0o7777;
        let link = entry
            .link_name_bytes()
            .map(|l| String::from_utf8_lossy(&l).into_owned())
            .unwrap_or_default();
        let mut data = Vec::new();
        entry.read_to_end(&mut data).unwrap();
        // The docker CLI names an outside Dockerfile randomly, devloop by its digest: compare the rest.
        let head = String::from_utf8_lossy(&data[..data.len().min(40)]).into_owned();
        let head = generated_name
            .replace_all(&head, ".dockerfile.<name>")
            .into_owned();
        listing.insert(rel.to_owned(), (kind, mode, link, data.len() as u64, head));
    }
    listing
}

/// Builds the context both ways and asserts the images hold the same files; returns that listing.
fn conform(context: &Path, dockerfile: &Path) -> Listing {
    docker_available();
    let mut images = Images(Vec::new());

    // `--no-cache`: tests of this file running at once may build the same files; a cache hit on an image that
    // another test's drop is removing fails with "unable to find image".
    let cli_tag = images.tag();
    run(
        Command::new("docker")
            .args(["build", "--no-cache", "-q", "-t", &cli_tag, "-f"])
            .arg(dockerfile)
            .arg(context),
        None,
    );

    let files = walk(context, dockerfile).unwrap();
    let mut stream = Vec::new();
    let name = write_tar(&files, dockerfile, &mut stream).unwrap();
    let ours_tag = images.tag();
    run(
        Command::new("docker").args([
            "build",
            "--no-cache",
            "-q",
            "-t",
            &ours_tag,
            "-f",
            &name,
            "-",
        ]),
        Some(stream),
    );

    let cli = list_ctx(&cli_tag);
    let ours = list_ctx(&ours_tag);
    if cli != ours {
        for (path, v) in &cli {
            if ours.get(path) != Some(v) {
                eprintln!(
                    "docker CLI only / different: {path} {v:?} vs {:?}",
                    ours.get(path)
                );
            }
        }
        for (path, v) in &ours {
            if !cli.contains_key(path) {
                eprintln!("devloop only: {path} {v:?}");
            }
        }
    }
    assert_eq!(
        cli, ours,
        "docker CLI (left) and devloop (right) sent different contexts"
    );
    cli
}

fn write(root: &Path, rel: &str, content: &str) {
    let path = root.join(rel);
    fs::create_dir_all(path.parent().unwrap()).unwrap();
    fs::write(path, content).unwrap();
}

fn context_with(ignore: &str, files: &[&str]) -> (tempfile::TempDir, PathBuf) {
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path().to_owned();
    write(&root, "Dockerfile", DOCKERFILE);
    if !ignore.is_empty() {
        write(&root, ".dockerignore", ignore);
    }
    for file in files {
        write(&root, file, &format!("content of {file}\n"));
    }
    (dir, root)
}

fn has(listing: &Listing, path: &str) -> bool {
    listing.contains_key(path)
}

#[test]
fn nested_excludes_with_reincludes() {
    let (_dir, root) = context_with(
        "docs\n!docs/keep.md\nvendor/**\n!vendor/a/**\n*.log\n!important.log\nbuild/\n",
        &[
            "docs/keep.md",
            "docs/drop.md",
            "docs/sub/x.md",
            "vendor/a/b/c.go",
            "vendor/b/d.go",
            "app.log",
            "important.log",
            "sub/app.log",
            "build/out.o",
            "src/main.go",
        ],
    );
    let listing = conform(&root, &root.join("Dockerfile"));
    assert!(has(&listing, "docs/keep.md") && !has(&listing, "docs/drop.md"));
    assert!(has(&listing, "vendor/a/b/c.go") && !has(&listing, "vendor/b/d.go"));
    assert!(has(&listing, "sub/app.log") && !has(&listing, "app.log"));
}

#[test]
fn double_star_patterns() {
    let (_dir, root) = context_with(
        "**/*.tmp\n**/node_modules\nsrc/**/gen\n**file\n",
        &[
            "a.tmp",
            "x/y/z.tmp",
            "node_modules/p/i.js",
            "web/node_modules/q.js",
            "src/gen/a",
            "src/x/gen/b",
            "src/x/keep",
            "gen/notsrc",
            "d/myfile",
            "d/file.txt",
        ],
    );
    let listing = conform(&root, &root.join("Dockerfile"));
    assert!(!has(&listing, "x/y/z.tmp") && !has(&listing, "web/node_modules/q.js"));
    assert!(has(&listing, "src/x/keep") && has(&listing, "gen/notsrc"));
    assert!(!has(&listing, "d/myfile"), "`**file` is a suffix match");
}

#[test]
fn star_does_not_cross_slash() {
    let (_dir, root) = context_with(
        "*.txt\n*/*.md\n?\n",
        &[
            "a.txt",
            "dd/a.txt",
            "dd/b.md",
            "dd/e/c.md",
            "top.md",
            "q",
            "qq",
            "r/x",
        ],
    );
    let listing = conform(&root, &root.join("Dockerfile"));
    assert!(!has(&listing, "a.txt") && has(&listing, "dd/a.txt") && has(&listing, "top.md"));
    assert!(!has(&listing, "dd/b.md") && has(&listing, "dd/e/c.md"));
    assert!(
        !has(&listing, "q") && has(&listing, "qq") && !has(&listing, "r/x"),
        "`?` excludes the directory `r`"
    );
}

#[test]
fn bracket_classes_bang_and_caret() {
    let (_dir, root) = context_with(
        "[!x]*.c\n[^y]*.h\na[*]\n",
        &[
            "!one.c", "xtwo.c", "three.c", "yfour.h", "five.h", "a]", "a*",
        ],
    );
    let listing = conform(&root, &root.join("Dockerfile"));
    assert!(!has(&listing, "!one.c") && !has(&listing, "xtwo.c") && has(&listing, "three.c"));
    assert!(has(&listing, "yfour.h") && !has(&listing, "five.h"));
    assert!(!has(&listing, "a]") && has(&listing, "a*"));
}

#[test]
fn parent_directory_matching() {
    let (_dir, root) = context_with("a/b\n", &["a/b/c/d", "a/bc", "a/x"]);
    let listing = conform(&root, &root.join("Dockerfile"));
    assert!(!has(&listing, "a/b/c/d") && !has(&listing, "a/b") && has(&listing, "a/bc"));
}

#[test]
fn ignored_dockerfile_and_dockerignore() {
    let (_dir, root) = context_with(".dockerignore\nDockerfile\n*\n!keep\n", &["keep", "other"]);
    let listing = conform(&root, &root.join("Dockerfile"));
    assert_eq!(listing.keys().collect::<Vec<_>>(), ["keep"]);
}

#[test]
fn dockerfile_in_excluded_directory() {
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path();
    write(root, ".dockerignore", "deploy\n");
    write(root, "deploy/Dockerfile", DOCKERFILE);
    write(root, "deploy/other", "x");
    write(root, "app", "x");
    conform(root, &root.join("deploy/Dockerfile"));
}

#[test]
fn pruning_of_excluded_directories() {
    let (_dir, root) = context_with(
        "*\n!**/*.go\n!lib/**/*.rs\n",
        &[
            "main.go",
            "src/x.go",
            "src/a/b.go",
            "lib/x.rs",
            "lib/a/y.rs",
            "lib/z.go",
        ],
    );
    let listing = conform(&root, &root.join("Dockerfile"));
    assert!(has(&listing, "main.go") && !has(&listing, "src/x.go"));
    assert!(has(&listing, "lib/x.rs") && has(&listing, "lib/z.go") && !has(&listing, "lib/a/y.rs"));
}

#[test]
fn symlinks_are_sent_as_links() {
    let outside = tempfile::tempdir().unwrap();
    write(outside.path(), "secret/data.txt", "outside");
    let (_dir, root) = context_with("secret\n", &["real/file", "secret"]);
    symlink(outside.path().join("secret"), root.join("escape")).unwrap();
    symlink("real", root.join("inner")).unwrap();
    symlink("does/not/exist", root.join("dangling")).unwrap();
    symlink("secret", root.join("to-excluded")).unwrap();
    symlink(format!("{}/x", "t".repeat(140)), root.join("long-target")).unwrap();
    let listing = conform(&root, &root.join("Dockerfile"));
    assert_eq!(listing["escape"].0, 'l');
    assert!(!has(&listing, "escape/data.txt"));
}

#[test]
fn empty_dirs_spaces_unicode_modes_and_long_names() {
    let (_dir, root) = context_with(
        "with space/*.tmp\n",
        &[
            "with space/a b.txt",
            "with space/c.tmp",
            "ünï cødé.txt",
            "bin/run.sh",
            "private/key",
        ],
    );
    fs::create_dir_all(root.join("empty/nested")).unwrap();
    let long = format!("{}/{}", "d".repeat(90), "f".repeat(120));
    write(&root, &long, "long");
    fs::set_permissions(root.join("bin/run.sh"), fs::Permissions::from_mode(0o755)).unwrap();
    fs::set_permissions(root.join("private/key"), fs::Permissions::from_mode(0o600)).unwrap();
    fs::set_permissions(root.join("private"), fs::Permissions::from_mode(0o700)).unwrap();
    fs::hard_link(root.join("bin/run.sh"), root.join("bin/run-again.sh")).unwrap();
    let listing = conform(&root, &root.join("Dockerfile"));
    assert!(has(&listing, "empty/nested") && has(&listing, &long));
    assert_eq!(listing["private/key"].1, 0o600);
}

#[test]
fn dockerignore_syntax_details() {
    let (_dir, root) = context_with(
        "# comment\r\n  /abs  \r\n ./dot/../rel/ \n# x\n !abs/keep\n\\[x\\]\na\\*b\n",
        &[
            "abs/drop", "abs/keep", "rel/x", "dot/y", "# x", "[x]", "a*b", "a-b",
        ],
    );
    let listing = conform(&root, &root.join("Dockerfile"));
    assert!(has(&listing, "abs/keep") && !has(&listing, "abs/drop") && !has(&listing, "rel/x"));
    assert!(
        has(&listing, "# x")
            && !has(&listing, "[x]")
            && !has(&listing, "a*b")
            && has(&listing, "a-b")
    );
}

#[test]
fn dockerfile_outside_the_context() {
    let dir = tempfile::tempdir().unwrap();
    let context = dir.path().join("api");
    write(&context, "main.go", "package main\n");
    write(&context, "sub/x", "x");
    write(dir.path(), "deploy/docker/api.Dockerfile", DOCKERFILE);
    let dockerfile = dir.path().join("deploy/docker/api.Dockerfile");
    let listing = conform(&context, &dockerfile);
    assert_eq!(
        listing.keys().collect::<Vec<_>>(),
        ["main.go", "sub", "sub/x"]
    );
    // With a .dockerignore of its own, which the daemon keeps unless it lists itself.
    write(&context, ".dockerignore", "sub\n");
    let listing = conform(&context, &dockerfile);
    assert_eq!(
        listing.keys().collect::<Vec<_>>(),
        [".dockerignore", "main.go"]
    );
}
