//! Benchmarks' TLS front for the fake API server: 127.0.0.1:0 with a CA and server certificate made by the `openssl`
//! CLI for the run → each connection's TLS is terminated and its bytes copied to the fake; plus a kubeconfig for it.
//! kubectl (client-go) sends a kubeconfig's credentials only over TLS. The front follows the fake: while the fake
//! is unreachable, connections through the front fail too.

use std::fs;
use std::path::{Path, PathBuf};
use std::process::Command;

use anyhow::{Context as _, Result, bail};
use tokio::net::{TcpListener, TcpStream};

use crate::support::fake_apiserver::{FakeApiServer, TOKEN};

/// Starts a TLS front for the fake on 127.0.0.1:0 (each connection: TLS handshake, then bytes copied both ways to
/// the fake) and writes `dir/kubeconfig` for it: CA data, the fake's bearer token, namespace `default`.
///
/// kubectl (client-go) applies a kubeconfig's credentials only when the transport is TLS, so against the fake's
/// plain HTTP it would be anonymous; both clients go through the same front, as they would reach a real cluster.
pub async fn start(fake: &FakeApiServer, dir: &Path) -> Result<PathBuf> {
    let certs = dir.join("tls");
    fs::create_dir_all(&certs)?;
    let openssl = |args: &[&str]| -> Result<()> {
        let out = Command::new("openssl")
            .args(args)
            .current_dir(&certs)
            .output()
            .context("run `openssl` (needed to make the TLS front's certificate)")?;
        if !out.status.success() {
            bail!(
                "`openssl {}` failed: {}",
                args.join(" "),
                String::from_utf8_lossy(&out.stderr)
            );
        }
        Ok(())
    };
    let ec = [
        "-newkey",
        "ec",
        "-pkeyopt",
        "ec_paramgen_curve:prime256v1",
        "-nodes",
    ];
    openssl(
        &[
            &["req", "-x509"][..],
            &ec,
            &[
                "-keyout",
                "ca.key",
                "-out",
                "ca.crt",
                "-days",
                "2",
                "-subj",
                "/CN=deploybench-ca",
            ],
        ]
        .concat(),
    )?;
    openssl(
        &[
            &["req"][..],
            &ec,
            &[
                "-keyout",
                "server.key",
                "-out",
                "server.csr",
                "-subj",
                "/CN=fake-apiserver",
            ],
        ]
        .concat(),
    )?;
    fs::write(
        certs.join("server.ext"),
        "subjectAltName = IP:127.0.0.1\nbasicConstraints = critical, CA:FALSE\nkeyUsage = critical, digitalSignature\nextendedKeyUsage = serverAuth\n",
    )?;
    openssl(&[
        "x509",
        "-req",
        "-in",
        "server.csr",
        "-CA",
        "ca.crt",
        "-CAkey",
        "ca.key",
        "-CAcreateserial",
        "-days",
        "2",
        "-extfile",
        "server.ext",
        "-out",
        "server.crt",
    ])?;
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
    // No ALPN: the fake speaks HTTP/1.1 only, so both clients use HTTP/1.1 (a real API server offers h2).
    let acceptor = tokio_rustls::TlsAcceptor::from(std::sync::Arc::new(config));
    let upstream: std::net::SocketAddr = fake
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

/// Standard base64 with padding.
pub fn base64(data: &[u8]) -> String {
    const ALPHABET: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    let mut out = String::new();
    for chunk in data.chunks(3) {
        let b = [
            chunk[0],
            chunk.get(1).copied().unwrap_or(0),
            chunk.get(2).copied().unwrap_or(0),
        ];
        let n = (u32::from(b[0]) << 16) | (u32::from(b[1]) << 8) | u32::from(b[2]);
        for (i, shift) in [18, 12, 6, 0].into_iter().enumerate() {
            if i <= chunk.len() {
                out.push(char::from(ALPHABET[((n >> shift) & 63) as usize]));
            } else {
                out.push('=');
            }
        }
    }
    out
}
