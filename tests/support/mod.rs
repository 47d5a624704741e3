//! Test support: temp projects, the devloop binary, a Docker daemon check, and local registries.
#![allow(dead_code, clippy::unwrap_used)]

pub mod cluster;
pub mod dev;
pub mod fake_apiserver;
pub mod registry;
pub mod traffic;

use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::sync::atomic::{AtomicUsize, Ordering};

/// A unique name for images and other shared resources of one test.
pub fn unique(prefix: &str) -> String {
    static N: AtomicUsize = AtomicUsize::new(0);
    format!(
        "{prefix}-{}-{}",
        std::process::id(),
        N.fetch_add(1, Ordering::SeqCst)
    )
}

/// A TCP port on 127.0.0.1 that was free a moment ago (for containers to publish on).
pub fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// GET / on 127.0.0.1:`port` over plain TCP: the body, or `None` until something answers with one.
pub fn http_body(port: u16) -> Option<String> {
    use std::io::{Read as _, Write as _};
    let mut s = std::net::TcpStream::connect(("127.0.0.1", port)).ok()?;
    s.set_read_timeout(Some(std::time::Duration::from_secs(2)))
        .ok()?;
    write!(s, "GET / HTTP/1.0\r\nHost: localhost\r\n\r\n").ok()?;
    let mut out = String::new();
    s.read_to_string(&mut out).ok()?;
    out.split("\r\n\r\n").nth(1).map(str::to_string)
}

/// Removes every tag of `repository` (by reference, never by image ID: BuildKit makes the same image, with one ID,
/// from the same inputs, so another test's tags may share it and must stay).
pub fn remove_repository(repository: &str) {
    let out = Command::new("docker")
        .args(["images", "--format", "{{.Repository}}:{{.Tag}}", "--filter"])
        .arg(format!("reference={repository}"))
        .output()
        .unwrap();
    let references: Vec<String> = String::from_utf8_lossy(&out.stdout)
        .split_whitespace()
        .filter(|r| !r.ends_with(":<none>"))
        .map(str::to_string)
        .collect();
    if !references.is_empty() {
        let _ = Command::new("docker")
            .args(["rmi", "-f"])
            .args(&references)
            .output();
    }
}

/// Waits (bounded, 30 s) until `port` on 127.0.0.1 serves `body`.
pub fn serves(port: u16, body: &str) -> bool {
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(30);
    while std::time::Instant::now() < deadline {
        if http_body(port).as_deref() == Some(body) {
            return true;
        }
        std::thread::sleep(std::time::Duration::from_millis(50));
    }
    false
}

/// `docker inspect --format FORMAT NAME`, trimmed; `None` when there is no such object.
pub fn docker_inspect(name: &str, format: &str) -> Option<String> {
    let out = Command::new("docker")
        .args(["inspect", "--format", format, name])
        .output()
        .unwrap();
    out.status
        .success()
        .then(|| String::from_utf8_lossy(&out.stdout).trim().to_string())
}

/// Fails the test (never skips) when no Docker daemon answers: CI guarantees one.
pub fn require_docker() {
    let ok = Command::new("docker")
        .args(["info", "--format", "{{.ServerVersion}}"])
        .output()
        .map(|o| o.status.success());
    assert!(
        matches!(ok, Ok(true)),
        "no Docker daemon: these tests need one (run `.ci/services` to install and start it)"
    );
}

/// The static busybox test images are built from.
pub fn busybox() -> PathBuf {
    let p = PathBuf::from("/bin/busybox");
    assert!(
        p.exists(),
        "/bin/busybox is missing: install Debian's busybox-static (`.ci/services`)"
    );
    p
}

/// A temporary project directory with its own devloop cache.
pub struct Project {
    pub dir: tempfile::TempDir,
    pub cache: tempfile::TempDir,
    /// Images to remove when the test ends.
    pub images: Vec<String>,
}

impl Project {
    pub fn new() -> Project {
        Project {
            dir: tempfile::tempdir().unwrap(),
            cache: tempfile::tempdir().unwrap(),
            images: Vec::new(),
        }
    }

    pub fn path(&self) -> &Path {
        self.dir.path()
    }

    /// Writes a file (creating parent directories).
    pub fn write(&self, rel: &str, content: &str) -> &Self {
        let p = self.dir.path().join(rel);
        std::fs::create_dir_all(p.parent().unwrap()).unwrap();
        std::fs::write(p, content).unwrap();
        self
    }

    /// Copies the static busybox into the project at `rel`.
    pub fn with_busybox(&self, rel: &str) -> &Self {
        let p = self.dir.path().join(rel);
        std::fs::create_dir_all(p.parent().unwrap()).unwrap();
        std::fs::copy(busybox(), p).unwrap();
        self
    }

    /// Runs the devloop binary in the project with an isolated cache directory.
    pub fn devloop(&self, args: &[&str]) -> Output {
        self.devloop_env(args, &[])
    }

    pub fn devloop_env(&self, args: &[&str], env: &[(&str, &str)]) -> Output {
        let mut cmd = Command::new(env!("CARGO_BIN_EXE_devloop"));
        cmd.args(args)
            .current_dir(self.path())
            .env("DEVLOOP_CACHE_DIR", self.cache.path())
            .env("NO_COLOR", "1");
        cmd.env_remove("DEVLOOP_DEFAULT_REPO")
            .env_remove("RUST_LOG");
        for (k, v) in env {
            cmd.env(k, v);
        }
        cmd.output().unwrap()
    }

    /// Registers an image for removal at the end of the test.
    pub fn cleanup_image(&mut self, reference: &str) {
        self.images.push(reference.to_string());
    }
}

impl Drop for Project {
    fn drop(&mut self) {
        if !self.images.is_empty() {
            let _ = Command::new("docker")
                .arg("rmi")
                .arg("-f")
                .args(&self.images)
                .output();
        }
    }
}

/// stdout as text.
pub fn stdout(o: &Output) -> String {
    String::from_utf8_lossy(&o.stdout).to_string()
}

/// stderr as text.
pub fn stderr(o: &Output) -> String {
    String::from_utf8_lossy(&o.stderr).to_string()
}

/// Asserts success, showing both streams otherwise.
#[track_caller]
pub fn assert_ok(o: &Output) {
    assert!(
        o.status.success(),
        "exit {:?}\nstdout:\n{}\nstderr:\n{}",
        o.status.code(),
        stdout(o),
        stderr(o)
    );
}

/// The JSON events of a `--output json` run.
pub fn events(o: &Output) -> Vec<serde_json::Value> {
    stdout(o)
        .lines()
        .map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("not a JSON line: {l}: {e}")))
        .collect()
}

/// The events of one type.
pub fn events_of<'a>(all: &'a [serde_json::Value], ty: &str) -> Vec<&'a serde_json::Value> {
    all.iter().filter(|e| e["type"] == ty).collect()
}

/// Files (not directories) under `root` inside an image: `docker create` + `docker export`.
pub fn image_files(image: &str, root: &str) -> Vec<String> {
    let id = Command::new("docker")
        .args(["create", image, "/nonexistent"])
        .output()
        .unwrap();
    assert!(
        id.status.success(),
        "docker create {image}: {}",
        String::from_utf8_lossy(&id.stderr)
    );
    let id = String::from_utf8_lossy(&id.stdout).trim().to_string();
    let export = Command::new("docker")
        .args(["export", &id])
        .output()
        .unwrap();
    let _ = Command::new("docker").args(["rm", "-f", &id]).output();
    assert!(export.status.success());
    let mut archive = tar::Archive::new(&export.stdout[..]);
    let mut out = Vec::new();
    for entry in archive.entries().unwrap() {
        let entry = entry.unwrap();
        let path = entry.path().unwrap().to_string_lossy().to_string();
        if let Some(rest) = path.strip_prefix(root)
            && !entry.header().entry_type().is_dir()
        {
            out.push(rest.to_string());
        }
    }
    out.sort();
    out
}

/// Reads one file out of an image.
pub fn image_file(image: &str, path: &str) -> Option<String> {
    let id = Command::new("docker")
        .args(["create", image, "/nonexistent"])
        .output()
        .unwrap();
    let id = String::from_utf8_lossy(&id.stdout).trim().to_string();
    let export = Command::new("docker")
        .args(["export", &id])
        .output()
        .unwrap();
    let _ = Command::new("docker").args(["rm", "-f", &id]).output();
    let mut archive = tar::Archive::new(&export.stdout[..]);
    for entry in archive.entries().unwrap() {
        let mut entry = entry.unwrap();
        if entry.path().unwrap().to_string_lossy() == path.trim_start_matches('/') {
            let mut s = String::new();
            std::io::Read::read_to_string(&mut entry, &mut s).unwrap();
            return Some(s);
        }
    }
    None
}
