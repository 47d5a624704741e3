//! Fake API server, exec: kube-rs 5's `Api::<Pod>::exec` and a raw tokio-tungstenite client against
//! `support::fake_apiserver`'s `pods/exec` and container filesystems, compared byte for byte with the exchanges
//! recorded from a real kube-apiserver in shared/kube-api/11-exec-ws.txt.
#![allow(clippy::unwrap_used)]

mod support;

use std::path::PathBuf;
use std::time::Duration;

use futures_util::{SinkExt, StreamExt};
use k8s_openapi::api::core::v1::Pod;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::Status;
use kube::api::{Api, AttachParams, DeleteParams};
use serde_json::{Value, json};
use support::fake_apiserver::{FakeApiServer, PodState, TOKEN, busybox_image};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio_tungstenite::tungstenite::Message;
use tokio_tungstenite::tungstenite::client::IntoClientRequest;
use tokio_tungstenite::tungstenite::protocol::frame::coding::CloseCode;

const NS: &str = "kapi-exec";
const IMAGE: &str = "registry.local/web:1";

/// shared/kube-api/, found above this crate.
fn recorded_dir() -> PathBuf {
    let here = PathBuf::from(env!("CARGO_MANIFEST_DIR"));
    here.ancestors()
        .map(|a| a.join("shared/kube-api"))
        .find(|p| p.is_dir())
        .expect("shared/kube-api next to the crate")
}

/// The payloads (without the channel byte) the real server sent on `channel` in exchange `case` ("A".."E") of
/// 11-exec-ws.txt, unquoted from the recording's Python-style string literals.
fn recorded_frames(case: &str, channel: u8) -> Vec<Vec<u8>> {
    let text = std::fs::read_to_string(recorded_dir().join("11-exec-ws.txt")).unwrap();
    let mut current = String::new();
    let mut frames = Vec::new();
    let mut lines = text.lines();
    while let Some(line) = lines.next() {
        let bytes = line.as_bytes();
        if bytes.len() > 4
            && line.starts_with("# ")
            && bytes[2].is_ascii_uppercase()
            && bytes[3] == b'.'
        {
            current = line[2..3].to_string();
        }
        if current == case
            && line.contains("ws-frame header")
            && line.ends_with(&format!("channel={channel}"))
        {
            let literal = lines.next().unwrap().trim().strip_prefix("text: ").unwrap();
            frames.push(unquote(literal).into_bytes());
        }
    }
    assert!(
        !frames.is_empty(),
        "no channel {channel} frame recorded in case {case}"
    );
    frames
}

fn unquote(literal: &str) -> String {
    let inner = &literal[1..literal.len() - 1];
    let mut out = String::new();
    let mut chars = inner.chars();
    while let Some(c) = chars.next() {
        if c == '\\' {
            match chars.next() {
                Some('n') => out.push('\n'),
                Some(other) => out.push(other),
                None => {}
            }
        } else {
            out.push(c);
        }
    }
    out
}

/// Replaces containerd's exec id (the hex digits after `failed to start exec "`, quote escaped or not) so two
/// answers compare.
fn without_exec_id(text: &str) -> String {
    let marker = "failed to start exec ";
    let mut out = String::new();
    let mut rest = text;
    while let Some(at) = rest.find(marker) {
        let mut end = at + marker.len();
        end += rest[end..]
            .chars()
            .take_while(|c| matches!(c, '\\' | '"'))
            .count();
        out.push_str(&rest[..end]);
        out.push_str("EXEC-ID");
        rest = rest[end..].trim_start_matches(|c: char| c.is_ascii_hexdigit());
    }
    out.push_str(rest);
    out
}

/// A Status with its exec ids replaced.
fn normalized(v: &Value) -> Value {
    serde_json::from_str(&without_exec_id(&v.to_string())).unwrap()
}

async fn eventually<T>(what: &str, mut f: impl FnMut() -> Option<T>) -> T {
    for _ in 0..500 {
        if let Some(v) = f() {
            return v;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    panic!("timed out waiting for {what}");
}

/// A fake cluster with namespace `NS`, images containing `IMAGE`'s repository holding only `/bin/busybox` plus
/// the named applets (like the recorded `FROM scratch` image).
struct Setup {
    server: FakeApiServer,
    client: kube::Client,
    _images: tempfile::TempDir,
}

impl Setup {
    async fn new(applets: &[&str]) -> Setup {
        let server = FakeApiServer::start();
        let images = tempfile::tempdir().unwrap();
        let template = busybox_image(&images.path().join("web"), applets);
        server.set_image_root("registry.local/web", &template);
        server
            .put_object(json!({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": NS}}))
            .unwrap();
        let client = server.client().await;
        Setup {
            server,
            client,
            _images: images,
        }
    }

    /// Creates pod `name` (one container `web` of `image`) and waits until its container runs.
    async fn pod(&self, name: &str, image: &str) -> PathBuf {
        self.server
            .put_object(json!({
                "apiVersion": "v1", "kind": "Pod", "metadata": {"name": name, "namespace": NS},
                "spec": {"containers": [{"name": "web", "image": image}]},
            }))
            .unwrap();
        eventually("the container to start", || {
            self.server.container_root(NS, name, "web")
        })
        .await
    }

    fn pods(&self) -> Api<Pod> {
        Api::namespaced(self.client.clone(), NS)
    }
}

/// What an exec through kube-rs gave back.
#[derive(Debug)]
struct Ran {
    stdout: Vec<u8>,
    stderr: Vec<u8>,
    status: Option<Status>,
}

/// Runs `command` in `pod` through kube-rs (it offers v5 then v4), sending `stdin` when given.
async fn exec(pods: &Api<Pod>, pod: &str, command: &[&str], stdin: Option<&[u8]>) -> Ran {
    let params = AttachParams::default()
        .container("web")
        .stdin(stdin.is_some());
    let mut attached = pods.exec(pod, command.to_vec(), &params).await.unwrap();
    let mut out = attached.stdout().unwrap();
    let mut err = attached.stderr().unwrap();
    let status = attached.take_status().unwrap();
    if let Some(data) = stdin {
        let mut writer = attached.stdin().unwrap();
        writer.write_all(data).await.unwrap();
        writer.shutdown().await.unwrap();
    }
    let (mut stdout, mut stderr) = (Vec::new(), Vec::new());
    let (a, b) = tokio::join!(out.read_to_end(&mut stdout), err.read_to_end(&mut stderr));
    a.unwrap();
    b.unwrap();
    let status = status.await;
    Ran {
        stdout,
        stderr,
        status,
    }
}

/// A tar stream holding `www/index.html` (mode 0644) with `content`, padded to a 10 KiB record like GNU tar's.
fn index_tar(content: &[u8]) -> Vec<u8> {
    let mut builder = tar::Builder::new(Vec::new());
    let mut header = tar::Header::new_gnu();
    header.set_size(content.len() as u64);
    header.set_mode(0o644);
    header.set_cksum();
    builder
        .append_data(&mut header, "www/index.html", content)
        .unwrap();
    let mut bytes = builder.into_inner().unwrap();
    bytes.resize(10240, 0);
    bytes
}

/// A Status as kube-rs decoded it, without the `kind`/`apiVersion` its serializer adds (the error channel's
/// Status carries neither).
fn status_json(s: &Status) -> Value {
    let mut v = serde_json::to_value(s).unwrap();
    let m = v.as_object_mut().unwrap();
    m.remove("kind");
    m.remove("apiVersion");
    v
}

#[tokio::test]
async fn recorded_exchanges_through_kube_rs() {
    let s = Setup::new(&[]).await;
    s.pod("web", IMAGE).await;
    let pods = s.pods();

    // A: tar from stdin, stdin ended with the v5 close signal.
    let tar = index_tar(b"synced by devloop\n");
    let a = exec(
        &pods,
        "web",
        &["/bin/busybox", "tar", "xf", "-", "-C", "/"],
        Some(&tar),
    )
    .await;
    let recorded_a: Value = serde_json::from_slice(&recorded_frames("A", 3)[0]).unwrap();
    assert_eq!(status_json(a.status.as_ref().unwrap()), recorded_a, "{a:?}");
    assert_eq!(
        s.server.container_file(NS, "web", "web", "/www/index.html"),
        Some((b"synced by devloop\n".to_vec(), 0o644))
    );

    // B: read it back.
    let b = exec(
        &pods,
        "web",
        &["/bin/busybox", "cat", "/www/index.html"],
        None,
    )
    .await;
    assert_eq!(b.stdout, b"synced by devloop\n");
    assert_eq!(b.stdout, recorded_frames("B", 1)[1]);
    assert_eq!(status_json(b.status.as_ref().unwrap()), recorded_a);

    // C: a non-zero exit with stderr.
    let c = exec(
        &pods,
        "web",
        &["/bin/busybox", "sh", "-c", "echo oops >&2; exit 3"],
        None,
    )
    .await;
    assert_eq!(c.stderr, recorded_frames("C", 2)[0]);
    assert!(c.stdout.is_empty());
    let recorded_c: Value = serde_json::from_slice(&recorded_frames("C", 3)[0]).unwrap();
    assert_eq!(status_json(c.status.as_ref().unwrap()), recorded_c);

    // D: a program the image lacks.
    let d = exec(&pods, "web", &["/bin/tar", "--version"], None).await;
    let recorded_d: Value = serde_json::from_slice(&recorded_frames("D", 3)[0]).unwrap();
    let got_d = status_json(d.status.as_ref().unwrap());
    assert_eq!(normalized(&got_d), normalized(&recorded_d));
    assert_eq!(got_d["code"], 500);
}

/// Every WebSocket message of an exec over a raw client, until the server closes.
async fn raw_exec(
    server: &FakeApiServer,
    path: &str,
    protocols: &str,
    client_frames: Vec<Vec<u8>>,
) -> (String, Vec<Message>) {
    let mut request = format!("{}{path}", server.url().replace("http://", "ws://"))
        .into_client_request()
        .unwrap();
    let headers = request.headers_mut();
    headers.insert("Authorization", format!("Bearer {TOKEN}").parse().unwrap());
    headers.insert("Sec-WebSocket-Protocol", protocols.parse().unwrap());
    let (mut ws, response) = tokio_tungstenite::connect_async(request).await.unwrap();
    let chosen = response
        .headers()
        .get("sec-websocket-protocol")
        .map(|v| v.to_str().unwrap().to_string())
        .unwrap_or_default();
    for frame in client_frames {
        ws.send(Message::binary(frame)).await.unwrap();
    }
    let mut messages = Vec::new();
    while let Some(Ok(m)) = ws.next().await {
        messages.push(m);
    }
    (chosen, messages)
}

fn data_frame(channel: u8, text: &[u8]) -> Message {
    let mut bytes = vec![channel];
    bytes.extend_from_slice(text);
    Message::binary(bytes)
}

fn close_1000(m: &Message) -> bool {
    matches!(m, Message::Close(Some(f)) if f.code == CloseCode::Normal && f.reason.is_empty())
}

#[tokio::test]
async fn raw_frames_match_the_recording_for_v5_and_v4() {
    let s = Setup::new(&[]).await;
    s.pod("web", IMAGE).await;
    let base = format!("/api/v1/namespaces/{NS}/pods/web/exec");

    // A over v5: the empty stdout frame, the Success status, Close 1000, end.
    let mut stdin = vec![0u8];
    stdin.extend(index_tar(b"synced by devloop\n"));
    let (chosen, frames) = raw_exec(
        &s.server,
        &format!(
            "{base}?command=%2Fbin%2Fbusybox&command=tar&command=xf&command=-&command=-C&command=%2F&container=web&stdout=true&stderr=true&stdin=true"
        ),
        "v5.channel.k8s.io, v4.channel.k8s.io",
        vec![stdin, vec![255, 0]],
    )
    .await;
    assert_eq!(chosen, "v5.channel.k8s.io");
    assert_eq!(frames.len(), 3, "{frames:?}");
    assert_eq!(frames[0], data_frame(1, b""));
    assert_eq!(frames[1], data_frame(3, &recorded_frames("A", 3)[0]));
    assert!(close_1000(&frames[2]), "{frames:?}");

    // B: stdout bytes as recorded.
    let (_, frames) = raw_exec(
        &s.server,
        &format!(
            "{base}?command=%2Fbin%2Fbusybox&command=cat&command=%2Fwww%2Findex.html&container=web&stdout=true&stderr=true"
        ),
        "v5.channel.k8s.io, v4.channel.k8s.io",
        vec![],
    )
    .await;
    let expected: Vec<Message> = recorded_frames("B", 1)
        .into_iter()
        .map(|f| data_frame(1, &f))
        .chain([data_frame(3, &recorded_frames("B", 3)[0])])
        .collect();
    assert_eq!(&frames[..2], &expected[..2]);
    assert_eq!(frames[2], expected[2]);
    assert!(close_1000(&frames[3]));

    // C: stderr, then the exact NonZeroExitCode bytes.
    let (_, frames) = raw_exec(
        &s.server,
        &format!(
            "{base}?command=%2Fbin%2Fbusybox&command=sh&command=-c&command=echo%20oops%20%3E%262%3B%20exit%203&container=web&stdout=true&stderr=true"
        ),
        "v5.channel.k8s.io, v4.channel.k8s.io",
        vec![],
    )
    .await;
    assert_eq!(frames[0], data_frame(1, b""));
    assert_eq!(frames[1], data_frame(2, &recorded_frames("C", 2)[0]));
    assert_eq!(frames[2], data_frame(3, &recorded_frames("C", 3)[0]));
    assert!(close_1000(&frames[3]));
    assert_eq!(frames.len(), 4);

    // E: only v4 offered, no close signal: tar fails first, the v4 wording names the command.
    let mut stdin = vec![0u8];
    stdin.extend(index_tar(b"synced by devloop\n"));
    let (chosen, frames) = raw_exec(
        &s.server,
        &format!(
            "{base}?command=%2Fbin%2Fbusybox&command=tar&command=xf&command=-&command=-C&command=%2Ftmp&container=web&stdout=true&stderr=true&stdin=true"
        ),
        "v4.channel.k8s.io",
        vec![stdin],
    )
    .await;
    assert_eq!(chosen, "v4.channel.k8s.io");
    assert_eq!(frames[0], data_frame(1, b""));
    assert_eq!(frames[1], data_frame(2, &recorded_frames("E", 2)[0]));
    assert_eq!(frames[2], data_frame(3, &recorded_frames("E", 3)[0]));
    assert!(close_1000(&frames[3]));
    assert_eq!(frames.len(), 4);

    // The kubelet's base64 variant: text frames, '0'+channel then base64, same bytes inside.
    let (chosen, frames) = raw_exec(
        &s.server,
        &format!(
            "{base}?command=%2Fbin%2Fbusybox&command=cat&command=%2Fwww%2Findex.html&container=web&stdout=true&stderr=true"
        ),
        "v4.base64.channel.k8s.io",
        vec![],
    )
    .await;
    assert_eq!(chosen, "v4.base64.channel.k8s.io");
    let b64 = |channel: char, data: &[u8]| {
        use base64::Engine;
        Message::text(format!(
            "{channel}{}",
            base64::engine::general_purpose::STANDARD.encode(data)
        ))
    };
    assert_eq!(frames[0], b64('1', b""));
    assert_eq!(frames[1], b64('1', b"synced by devloop\n"));
    assert_eq!(frames[2], b64('3', &recorded_frames("B", 3)[0]));
    assert!(close_1000(&frames[3]));

    // D over v4: the kubelet's own InternalError (wrapped once, not twice as through the v5 translator).
    let (_, frames) = raw_exec(
        &s.server,
        &format!(
            "{base}?command=%2Fbin%2Ftar&command=--version&container=web&stdout=true&stderr=true"
        ),
        "v4.channel.k8s.io",
        vec![],
    )
    .await;
    let Message::Binary(status) = &frames[1] else {
        panic!("{frames:?}")
    };
    let status: Value = serde_json::from_slice(&status[1..]).unwrap();
    let recorded: Value = serde_json::from_slice(&recorded_frames("D", 3)[0]).unwrap();
    let inner = recorded["details"]["causes"][0]["message"]
        .as_str()
        .unwrap();
    assert_eq!(
        without_exec_id(status["message"].as_str().unwrap()),
        without_exec_id(inner)
    );
    assert_eq!(status["code"], 500);
}

#[tokio::test]
async fn program_lookup_follows_path_and_fails_like_runc() {
    let s = Setup::new(&["cat", "sh"]).await;
    s.pod("web", IMAGE).await;
    s.pod("bare", "registry.local/distroless:1").await;
    let pods = s.pods();

    // A bare name resolves through PATH to the applet link; tar has no link.
    let sh = exec(
        &pods,
        "web",
        &["sh", "-c", "echo hi > /note; cat /note"],
        None,
    )
    .await;
    assert_eq!(sh.stdout, b"hi\n");
    assert_eq!(sh.status.unwrap().status.as_deref(), Some("Success"));
    let tar = exec(&pods, "web", &["tar", "--version"], None).await;
    let status = tar.status.unwrap();
    assert_eq!(status.reason.as_deref(), Some("InternalError"));
    assert!(
        status
            .message
            .as_deref()
            .unwrap()
            .ends_with("exec failed: unable to start container process: exec: \"tar\": executable file not found in $PATH: unknown"),
        "{status:?}"
    );
    // Busybox's sh runs only linked applets: `tar` is not found there either.
    let in_sh = exec(&pods, "web", &["sh", "-c", "tar --version"], None).await;
    assert_eq!(in_sh.stderr, b"sh: tar: not found\n");
    assert_eq!(
        status_json(in_sh.status.as_ref().unwrap())["details"]["causes"][0]["message"],
        "127"
    );

    // An image without a template has nothing to run.
    let none = exec(&pods, "bare", &["/bin/sh", "-c", "true"], None).await;
    let message = none.status.unwrap().message.unwrap();
    assert!(
        message.ends_with("exec: \"/bin/sh\": stat /bin/sh: no such file or directory: unknown"),
        "{message}"
    );
}

#[tokio::test]
async fn refusals_before_and_after_the_upgrade() {
    let s = Setup::new(&[]).await;
    s.pod("web", IMAGE).await;
    let pods = s.pods();
    let params = AttachParams::default().container("web");
    let api_status = |e: kube::Error| match e {
        kube::Error::Api(s) => *s,
        other => panic!("expected an API error, got {other:?}"),
    };

    let missing = api_status(pods.exec("nope", ["true"], &params).await.err().unwrap());
    assert_eq!(
        (missing.code, missing.message.as_str()),
        (404, "pods \"nope\" not found")
    );
    let wrong = api_status(
        pods.exec("web", ["true"], &AttachParams::default().container("db"))
            .await
            .err()
            .unwrap(),
    );
    assert_eq!(
        (wrong.code, wrong.reason.as_str(), wrong.message.as_str()),
        (400, "BadRequest", "container db is not valid for pod web")
    );

    // RBAC: exec needs `create pods/exec` (also for the GET kube-rs sends).
    s.server.deny("create", "pods/exec", Some(NS));
    let forbidden = api_status(pods.exec("web", ["true"], &params).await.err().unwrap());
    assert_eq!(forbidden.code, 403);
    assert_eq!(
        forbidden.message,
        "pods \"web\" is forbidden: User \"kubernetes-admin\" cannot create resource \"pods/exec\" in API group \"\" in the namespace \"kapi-exec\""
    );
    let s = Setup::new(&[]).await;
    s.pod("web", IMAGE).await;
    let pods = s.pods();

    // Without an upgrade the apiserver refuses in JSON.
    let plain = reqwest_like_get(
        &s.server,
        &format!("/api/v1/namespaces/{NS}/pods/web/exec?command=true&stdout=true"),
    )
    .await;
    assert!(plain.starts_with("HTTP/1.1 400"), "{plain}");
    assert!(
        plain.contains("\"message\":\"Upgrade request required\""),
        "{plain}"
    );

    // Nothing before the runtime checks the command or the streams: v5 hears about both after the upgrade.
    let base = format!("/api/v1/namespaces/{NS}/pods/web/exec");
    let v5 = "v5.channel.k8s.io, v4.channel.k8s.io";
    let (_, frames) = raw_exec(&s.server, &format!("{base}?stdout=true"), v5, vec![]).await;
    assert_eq!(frames[0], data_frame(1, b""));
    let Message::Binary(status) = &frames[1] else {
        panic!("{frames:?}")
    };
    let status: Value = serde_json::from_slice(&status[1..]).unwrap();
    assert!(
        status["message"]
            .as_str()
            .unwrap()
            .ends_with("OCI runtime exec failed: exec failed: args must not be empty: unknown"),
        "{status}"
    );
    let (_, frames) = raw_exec(&s.server, &format!("{base}?command=true"), v5, vec![]).await;
    assert_eq!(
        frames[0],
        data_frame(3, b""),
        "no stream: the empty frame goes to the error channel"
    );
    assert_eq!(
        frames[1],
        data_frame(3, br#"{"metadata":{},"status":"Failure","message":"Internal error occurred: unable to upgrade connection: you must specify at least 1 of stdin, stdout, stderr","reason":"InternalError","details":{"causes":[{"message":"unable to upgrade connection: you must specify at least 1 of stdin, stdout, stderr"}]},"code":500}"#)
    );

    // A container that is not running: v5 hears the kubelet's refusal on the error channel, v4 in plain text.
    assert!(
        s.server
            .set_container_state(NS, "web", "web", PodState::Pending)
    );
    let refused = exec(&pods, "web", &["true"], None).await;
    let status = status_json(refused.status.as_ref().unwrap());
    assert_eq!(
        status,
        json!({"metadata": {}, "status": "Failure",
            "message": "Internal error occurred: unable to upgrade connection: container not found (\"web\")",
            "reason": "InternalError",
            "details": {"causes": [{"message": "unable to upgrade connection: container not found (\"web\")"}]},
            "code": 500})
    );
    let mut request = format!(
        "{}/api/v1/namespaces/{NS}/pods/web/exec?command=true&stdout=true",
        s.server.url().replace("http://", "ws://")
    )
    .into_client_request()
    .unwrap();
    request
        .headers_mut()
        .insert("Authorization", format!("Bearer {TOKEN}").parse().unwrap());
    request.headers_mut().insert(
        "Sec-WebSocket-Protocol",
        "v4.channel.k8s.io".parse().unwrap(),
    );
    match tokio_tungstenite::connect_async(request).await {
        Err(tokio_tungstenite::tungstenite::Error::Http(response)) => {
            assert_eq!(response.status(), 500);
            assert_eq!(
                response.body().as_deref(),
                Some(&b"container not found (\"web\")"[..])
            );
        }
        other => panic!("expected the kubelet's 500, got {other:?}"),
    }
}

/// A raw HTTP/1.1 GET (no upgrade); the whole answer as text.
async fn reqwest_like_get(server: &FakeApiServer, path: &str) -> String {
    let addr = server.url().replace("http://", "");
    let mut stream = tokio::net::TcpStream::connect(&addr).await.unwrap();
    let request = format!(
        "GET {path} HTTP/1.1\r\nHost: {addr}\r\nAuthorization: Bearer {TOKEN}\r\nConnection: close\r\n\r\n"
    );
    stream.write_all(request.as_bytes()).await.unwrap();
    let mut answer = Vec::new();
    stream.read_to_end(&mut answer).await.unwrap();
    String::from_utf8_lossy(&answer).into_owned()
}

#[tokio::test]
async fn a_new_start_begins_from_the_image_and_roots_go_with_their_pods() {
    let s = Setup::new(&["sh"]).await;
    let first = s.pod("web", IMAGE).await;
    let pods = s.pods();
    let wrote = exec(&pods, "web", &["sh", "-c", "echo edited > /bin/note"], None).await;
    assert_eq!(wrote.status.unwrap().status.as_deref(), Some("Success"));
    assert!(
        s.server
            .container_file(NS, "web", "web", "/bin/note")
            .is_some()
    );

    // A restarted container starts from the image again.
    assert!(s.server.set_container_state(
        NS,
        "web",
        "web",
        PodState::CrashLoopBackOff { restarts: 1 }
    ));
    assert!(
        s.server
            .set_container_state(NS, "web", "web", PodState::Running)
    );
    let restarted = s.server.container_root(NS, "web", "web").unwrap();
    assert_ne!(restarted, first);
    assert!(!first.exists(), "the previous start's root is removed");
    assert_eq!(s.server.container_file(NS, "web", "web", "/bin/note"), None);
    let (busybox, mode) = s
        .server
        .container_file(NS, "web", "web", "/bin/sh")
        .unwrap();
    assert_eq!(
        (busybox.len() as u64, mode),
        (std::fs::metadata("/bin/busybox").unwrap().len(), 0o755)
    );

    // A replaced pod (same name, new uid) too; the old pod's root goes with it.
    pods.delete("web", &DeleteParams::default().grace_period(0))
        .await
        .unwrap();
    eventually("the pod to go", || {
        s.server.object("Pod", NS, "web").is_none().then_some(())
    })
    .await;
    assert!(!restarted.exists());
    let replaced = s.pod("web", IMAGE).await;
    assert!(replaced.join("bin/busybox").is_file());
    assert_eq!(s.server.container_file(NS, "web", "web", "/bin/note"), None);

    // The server takes every root with it.
    drop(s);
    assert!(!replaced.exists());
}

#[tokio::test]
async fn concurrent_execs_in_two_pods_stay_apart() {
    let s = Setup::new(&["sh", "cat"]).await;
    s.pod("one", IMAGE).await;
    s.pod("two", IMAGE).await;
    let pods = s.pods();
    let (a, b) = tokio::join!(
        exec(
            &pods,
            "one",
            &["sh", "-c", "cat > /mark; cat /mark"],
            Some(b"first pod\n")
        ),
        exec(
            &pods,
            "two",
            &["sh", "-c", "cat > /mark; cat /mark"],
            Some(b"second pod\n")
        ),
    );
    assert_eq!(
        (a.stdout.as_slice(), b.stdout.as_slice()),
        (&b"first pod\n"[..], &b"second pod\n"[..])
    );
    assert_eq!(
        s.server
            .container_file(NS, "one", "web", "/mark")
            .unwrap()
            .0,
        b"first pod\n"
    );
    assert_eq!(
        s.server
            .container_file(NS, "two", "web", "/mark")
            .unwrap()
            .0,
        b"second pod\n"
    );
}

#[tokio::test]
async fn an_exec_ends_when_its_container_stops() {
    let s = Setup::new(&["sh", "sleep"]).await;
    s.pod("web", IMAGE).await;
    let pods = s.pods();
    let mut attached = pods
        .exec(
            "web",
            ["sh", "-c", "echo started; sleep 30"],
            &AttachParams::default().container("web"),
        )
        .await
        .unwrap();
    let mut out = attached.stdout().unwrap();
    let status = attached.take_status().unwrap();
    let mut line = [0u8; 8];
    out.read_exact(&mut line).await.unwrap();
    assert_eq!(&line, b"started\n");
    assert!(
        s.server
            .set_container_state(NS, "web", "web", PodState::Completed)
    );
    let status = status_json(&status.await.unwrap());
    assert_eq!(status["reason"], "NonZeroExitCode");
    assert_eq!(status["details"]["causes"][0]["message"], "137");
}

#[tokio::test]
async fn cluster_helpers_read_files_and_restart_counts() {
    let c = support::cluster::Cluster::start().await;
    let Some(fake) = &c.fake else {
        // On a real cluster these helpers exec `cat` in images that have one; the scenarios using them cover it.
        return;
    };
    let images = tempfile::tempdir().unwrap();
    let template = busybox_image(&images.path().join("img"), &["cat"]);
    std::fs::create_dir_all(template.join("etc")).unwrap();
    std::fs::write(template.join("etc/motd"), "from the image\n").unwrap();
    c.set_image_root("registry.local/helpers", &template);
    fake.put_object(json!({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": c.ns}}))
        .unwrap();
    fake.put_object(json!({
        "apiVersion": "v1", "kind": "Pod", "metadata": {"name": "p", "namespace": c.ns},
        "spec": {"containers": [{"name": "main", "image": "registry.local/helpers:1"}]},
    }))
    .unwrap();
    eventually("the container to start", || {
        fake.container_root(&c.ns, "p", "main")
    })
    .await;
    assert_eq!(
        c.read_file("p", "main", "/etc/motd").await,
        Some(b"from the image\n".to_vec())
    );
    assert_eq!(c.read_file("p", "main", "/etc/none").await, None);
    assert_eq!(c.restart_count("p", "main").await, Some(0));
    assert!(fake.set_container_state(
        &c.ns,
        "p",
        "main",
        PodState::CrashLoopBackOff { restarts: 2 }
    ));
    assert_eq!(c.restart_count("p", "main").await, Some(2));
}

#[tokio::test]
async fn a_root_served_through_a_port_forward_shows_what_exec_wrote() {
    let s = Setup::new(&["sh"]).await;
    let root = s.pod("web", IMAGE).await;
    // The container's web server, run on the host over its root, reached through the pod port.
    let port = support::free_port();
    let _httpd = tokio::process::Command::new("/bin/busybox")
        .args(["httpd", "-f", "-p", &format!("127.0.0.1:{port}"), "-h"])
        .arg(&root)
        .kill_on_drop(true)
        .spawn()
        .unwrap();
    let upstream: std::net::SocketAddr = format!("127.0.0.1:{port}").parse().unwrap();
    for _ in 0..250 {
        if tokio::net::TcpStream::connect(upstream).await.is_ok() {
            break;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    s.server.serve_pod_port(NS, "web", 8080, upstream);
    let pods = s.pods();
    let wrote = exec(
        &pods,
        "web",
        &["sh", "-c", "echo 'served after exec' > /index.html"],
        None,
    )
    .await;
    assert_eq!(wrote.status.unwrap().status.as_deref(), Some("Success"));

    let mut forwarder = pods.portforward("web", &[8080]).await.unwrap();
    let mut stream = forwarder.take_stream(8080).unwrap();
    stream
        .write_all(b"GET /index.html HTTP/1.0\r\n\r\n")
        .await
        .unwrap();
    let mut answer = Vec::new();
    stream.read_to_end(&mut answer).await.unwrap();
    let answer = String::from_utf8_lossy(&answer);
    assert!(answer.starts_with("HTTP/1.1 200 OK"), "{answer}");
    assert!(answer.ends_with("\r\n\r\nserved after exec\n"), "{answer}");
}
