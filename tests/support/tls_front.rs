//! A TLS front for the fake API server, for benchmarks that run kubectl against it: the fake's address → a TLS
//! listener on 127.0.0.1:0 (certificate made by the `openssl` CLI) that copies bytes both ways, and a kubeconfig for
//! it. kubectl (client-go) sends a kubeconfig's credentials only over TLS; it must not change what it forwards.
#![allow(dead_code)]

use std::fs;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::Command;

use anyhow::{Context as _, Result, ensure};
use tokio::net::{TcpListener, TcpStream};

use super::fake_apiserver::{FakeApiServer, TOKEN};

/// Starts the front for `fake` on the current tokio runtime (call from within it) and writes `dir/kubeconfig`:
/// CA data, the fake's bearer token, namespace `default`. Both clients of a benchmark go through it, as they would
/// reach a real cluster.
pub async fn start(fake: &FakeApiServer, dir: &Path) -> Result<PathBuf> {
    let certs = dir.join("tls");
    fs::create_dir_all(&certs)?;
    let openssl = |args: &[&str]| -> Result<()> {
        let out = Command::new("openssl")
            .args(args)
            .current_dir(&certs)
            .output()
            .context("run `openssl` (needed to make the TLS front's certificate)")?;
        ensure!(
            out.status.success(),
            "openssl {} failed: {}",
            args.join(" "),
            String::from_utf8_lossy(&out.stderr)
        );
        Ok(())
    };
    let ec = [
        "-newkey",
        "ec",
        "-pkeyopt",
        "ec_paramgen_curve:prime256v1",
        "-nodes",
    ];
    let days = ["-days", "2"];
    openssl(
        &[
            &["req", "-x509"][..],
            &ec,
            &["-keyout", "ca.key", "-out", "ca.crt"],
            &days,
            &["-subj", "/CN=fake-apiserver-ca"],
        ]
        .concat(),
    )?;
    openssl(
        &[
            &["req"][..],
            &ec,
            &["-keyout", "server.key", "-out", "server.csr"],
            &["-subj", "/CN=fake-apiserver"],
        ]
        .concat(),
    )?;
    fs::write(
        certs.join("server.ext"),
        "subjectAltName = IP:127.0.0.1\nbasicConstraints = critical, CA:FALSE\nkeyUsage = critical, digitalSignature\nextendedKeyUsage = serverAuth\n",
    )?;
    openssl(
        &[
            &["x509", "-req", "-in", "server.csr", "-CA", "ca.crt"][..],
            &["-CAkey", "ca.key", "-CAcreateserial"],
            &days,
            &["-extfile", "server.ext", "-out", "server.crt"],
        ]
        .concat(),
    )?;
    openssl(&[
        "x509",
        "-in",
        "server.crt",
        "-outform",
        "der",
        "-out",
        "server.crt.der",
    ])?;
    openssl(&[
        "pkcs8",
        "-topk8",
        "-nocrypt",
        "-in",
        "server.key",
        "-outform",
        "der",
        "-out",
        "server.key.der",
    ])?;
    let cert = rustls::pki_types::CertificateDer::from(fs::read(certs.join("server.crt.der"))?);
    let key = rustls::pki_types::PrivateKeyDer::Pkcs8(rustls::pki_types::PrivatePkcs8KeyDer::from(
        fs::read(certs.join("server.key.der"))?,
    ));
    let config = rustls::ServerConfig::builder_with_provider(std::sync::Arc::new(
        rustls::crypto::ring::default_provider(),
    ))
    .with_safe_default_protocol_versions()?
    .with_no_client_auth()
    .with_single_cert(vec![cert], key)?;
    // No ALPN: the fake speaks HTTP/1.1 only, so every client uses HTTP/1.1 (a real API server offers h2).
    let acceptor = tokio_rustls::TlsAcceptor::from(std::sync::Arc::new(config));
    let upstream: SocketAddr = fake
        .url()
        .trim_start_matches("http://")
        .parse()
        .context("fake API server address")?;
    let listener = TcpListener::bind("127.0.0.1:0").await?;
    let addr = listener.local_addr()?;
    tokio::spawn(async move {
        loop {
            let Ok((tcp, _)) = listener.accept().await else {
                continue;
            };
            let acceptor = acceptor.clone();
            tokio::spawn(async move {
                // Small requests and answers must not wait for delayed ACKs.
                let _ = tcp.set_nodelay(true);
                let Ok(mut tls) = acceptor.accept(tcp).await else {
                    return;
                };
                let Ok(mut up) = TcpStream::connect(upstream).await else {
                    return;
                };
                let _ = up.set_nodelay(true);
                let _ = tokio::io::copy_bidirectional(&mut tls, &mut up).await;
            });
        }
    });
    let ca = base64(&fs::read(certs.join("ca.crt"))?);
    let path = dir.join("kubeconfig");
    fs::write(
        &path,
        format!(
            "apiVersion: v1\nkind: Config\nclusters:\n- name: fake\n  cluster:\n    server: https://{addr}\n    certificate-authority-data: {ca}\nusers:\n- name: fake\n  user:\n    token: {TOKEN}\ncontexts:\n- name: fake\n  context:\n    cluster: fake\n    user: fake\n    namespace: default\ncurrent-context: fake\n"
        ),
    )?;
    Ok(path)
}

/// Standard base64 with padding (kubeconfig `*-data` fields).
fn base64(data: &[u8]) -> String {
    use base64::Engine as _;
    base64::engine::general_purpose::STANDARD.encode(data)
}
