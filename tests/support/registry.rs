//! A Docker registry (Debian `docker-registry`, distribution 2.8) on a free loopback port, optionally with
//! htpasswd auth, stopped and deleted on drop.
#![allow(dead_code, clippy::unwrap_used)]

use std::io::{BufRead, BufReader};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

pub struct Registry {
    child: Child,
    pub addr: String,
    _dir: tempfile::TempDir,
}

impl Registry {
    /// Starts a registry; with `auth = Some((user, password))` it requires basic auth.
    pub fn start(auth: Option<(&str, &str)>) -> Registry {
        let dir = tempfile::tempdir().unwrap();
        let mut config = format!(
            "version: 0.1\nlog:\n  level: info\nstorage:\n  filesystem:\n    rootdirectory: {}\n  delete:\n    enabled: true\nhttp:\n  addr: 127.0.0.1:0\n",
            dir.path().join("data").display()
        );
        if let Some((user, password)) = auth {
            let htpasswd = dir.path().join("htpasswd");
            let out = Command::new("htpasswd")
                .args(["-Bbn", user, password])
                .output()
                .expect("htpasswd (apache2-utils) is needed");
            assert!(out.status.success());
            std::fs::write(&htpasswd, &out.stdout).unwrap();
            config.push_str(&format!(
                "auth:\n  htpasswd:\n    realm: devloop-test\n    path: {}\n",
                htpasswd.display()
            ));
        }
        let config_path = dir.path().join("config.yml");
        std::fs::write(&config_path, config).unwrap();
        let mut child = Command::new("docker-registry")
            .arg("serve")
            .arg(&config_path)
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .expect("docker-registry is needed (`.ci/services` installs it)");
        let stderr = child.stderr.take().unwrap();
        let (tx, rx) = std::sync::mpsc::channel();
        std::thread::spawn(move || {
            let mut sent = false;
            for line in BufReader::new(stderr).lines().map_while(Result::ok) {
                if !sent && let Some(i) = line.find("listening on ") {
                    let addr: String = line[i + 13..]
                        .chars()
                        .take_while(|c| !c.is_whitespace() && *c != '"')
                        .collect();
                    let _ = tx.send(addr);
                    sent = true;
                }
            }
        });
        let addr = rx
            .recv_timeout(Duration::from_secs(20))
            .expect("the registry did not report its address");
        let reg = Registry {
            child,
            addr,
            _dir: dir,
        };
        reg.wait_ready(auth.is_some());
        reg
    }

    fn wait_ready(&self, auth: bool) {
        let deadline = Instant::now() + Duration::from_secs(20);
        let want = if auth { "401" } else { "200" };
        while Instant::now() < deadline {
            if let Some(status) = http_status(&self.addr, "/v2/")
                && status == want
            {
                return;
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        panic!(
            "registry at {} did not answer GET /v2/ with {want}",
            self.addr
        );
    }

    /// The manifest digest the registry holds for `repo:tag` (`Docker-Content-Digest`).
    pub fn manifest_digest(
        &self,
        repo: &str,
        tag: &str,
        basic: Option<(&str, &str)>,
    ) -> Option<String> {
        use std::io::{Read, Write};
        let mut s = std::net::TcpStream::connect(&self.addr).ok()?;
        let auth = basic
            .map(|(u, p)| format!("Authorization: Basic {}\r\n", base64(&format!("{u}:{p}"))))
            .unwrap_or_default();
        write!(
            s,
            "HEAD /v2/{repo}/manifests/{tag} HTTP/1.1\r\nHost: {}\r\nAccept: application/vnd.docker.distribution.manifest.v2+json, application/vnd.oci.image.manifest.v1+json\r\n{auth}Connection: close\r\n\r\n",
            self.addr
        )
        .ok()?;
        let mut resp = String::new();
        s.read_to_string(&mut resp).ok()?;
        resp.lines().find_map(|l| {
            l.to_ascii_lowercase()
                .starts_with("docker-content-digest:")
                .then(|| l[22..].trim().to_string())
        })
    }
}

fn http_status(addr: &str, path: &str) -> Option<String> {
    use std::io::{Read, Write};
    let mut s = std::net::TcpStream::connect(addr).ok()?;
    s.set_read_timeout(Some(Duration::from_secs(2))).ok()?;
    write!(
        s,
        "GET {path} HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\n\r\n"
    )
    .ok()?;
    let mut resp = String::new();
    s.read_to_string(&mut resp).ok()?;
    resp.split_whitespace().nth(1).map(str::to_string)
}

/// Standard base64 (for a basic-auth header in tests).
pub fn base64(s: &str) -> String {
    const T: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    let b = s.as_bytes();
    let mut out = String::new();
    for chunk in b.chunks(3) {
        let n = (chunk[0] as u32) << 16
            | (*chunk.get(1).unwrap_or(&0) as u32) << 8
            | *chunk.get(2).unwrap_or(&0) as u32;
        out.push(T[(n >> 18) as usize & 63] as char);
        out.push(T[(n >> 12) as usize & 63] as char);
        out.push(if chunk.len() > 1 {
            T[(n >> 6) as usize & 63] as char
        } else {
            '='
        });
        out.push(if chunk.len() > 2 {
            T[n as usize & 63] as char
        } else {
            '='
        });
    }
    out
}

impl Drop for Registry {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}
