//! Fake API server, exec: `GET|POST pods/NAME/exec?command=…` with a WebSocket upgrade → the program really run in
//! the container's root (`chroot`), its stdin/stdout/stderr on channels 0/1/2 and the end as a `Status` on
//! channel 3, framed as recorded in 11-exec-ws.txt (v5 through the apiserver's stream translator, v4 and older
//! straight from the kubelet); must not run anything outside the container's root, nor answer what the apiserver
//! or kubelet would refuse.

use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::sync::{Arc, MutexGuard, OnceLock};
use std::time::Duration;

use bytes::Bytes;
use futures_util::{SinkExt, StreamExt};
use hyper::upgrade::OnUpgrade;
use hyper::{HeaderMap, Response};
use serde_json::{Map, Value, json};
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWriteExt};
use tokio::sync::{mpsc, oneshot, watch};
use tokio::task::JoinSet;
use tokio_tungstenite::tungstenite::Message;
use tokio_tungstenite::tungstenite::protocol::frame::CloseFrame;
use tokio_tungstenite::tungstenite::protocol::frame::coding::CloseCode;

use super::pods::PodState;
use super::rootfs::{self, DEFAULT_PATH};
use super::server::{Body, Shared};
use super::state::State;
use super::status::ApiError;
use super::util::random_u64;
use super::websocket::{self, Framing, Ws, text_response};

/// The stream-close protocol; the apiserver translates it to SPDY towards the kubelet.
const V5: &str = "v5.channel.k8s.io";
/// What the kubelet's own WebSocket server speaks (v4 writes the end as a JSON Status, older ones as text).
const KUBELET_PROTOCOLS: [&str; 4] = [
    "v4.channel.k8s.io",
    "v4.base64.channel.k8s.io",
    "channel.k8s.io",
    "base64.channel.k8s.io",
];

const STDIN: u8 = 0;
const STDOUT: u8 = 1;
const STDERR: u8 = 2;
const ERROR: u8 = 3;
/// v5: `[255, channel]` closes that stream (`[255, 0]` = end of stdin).
const CLOSE: u8 = 255;

/// How long the server reads a closing connection for the client's Close reply.
const CLOSE_DRAIN: Duration = Duration::from_secs(1);

/// A process still running after this long is killed (its exit code then says so).
const DEADLINE: Duration = Duration::from_secs(60);

/// How the end of the command is reported.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Protocol {
    /// `v5.channel.k8s.io`: the apiserver's translator; JSON Status, stdin can be half-closed.
    V5,
    /// `v4.*`: the kubelet; JSON Status in its own wording.
    V4,
    /// `channel.k8s.io`, `base64.channel.k8s.io` or none: the kubelet writes only a failure's message, as text.
    V1,
}

/// The streams the client asked for (`stdin`, `stdout`, `stderr`, `tty` query parameters).
#[derive(Debug, Clone, Copy)]
struct Streams {
    stdin: bool,
    stdout: bool,
    stderr: bool,
    tty: bool,
}

impl Streams {
    /// The apiserver's parse (Go's `strconv.ParseBool`); with a terminal the kubelet drops stderr.
    fn parse(query: &[(String, String)]) -> Self {
        let flag = |k: &str| {
            query
                .iter()
                .rev()
                .find(|(key, _)| key == k)
                .is_some_and(|(_, v)| {
                    matches!(v.as_str(), "1" | "t" | "T" | "true" | "TRUE" | "True")
                })
        };
        let tty = flag("tty");
        Streams {
            stdin: flag("stdin"),
            stdout: flag("stdout"),
            stderr: flag("stderr") && !tty,
            tty,
        }
    }

    /// The channel of the empty frame that tells the client the connection is up: the lowest writable one.
    fn first_channel(self) -> u8 {
        if self.stdout {
            STDOUT
        } else if self.stderr {
            STDERR
        } else {
            ERROR
        }
    }
}

/// What the kubelet answers before any process runs, or `None` when it would start the command.
fn kubelet_refusal(
    st: &State,
    uid: &str,
    container: &str,
    streams: Streams,
) -> Option<(u16, String)> {
    if !streams.stdin && !streams.stdout && !streams.stderr {
        return Some((
            400,
            "you must specify at least 1 of stdin, stdout, stderr".into(),
        ));
    }
    let running = st.pods.get(uid).and_then(|sim| {
        sim.containers
            .iter()
            .find(|c| c.name == container)
            .filter(|c| matches!(c.state, PodState::Running | PodState::NotReady))
    });
    match running {
        Some(_) if st.rootfs.root(uid, container).is_some() => None,
        _ => Some((500, format!("container not found (\"{container}\")"))),
    }
}

/// The container the apiserver picks: the named one (it must exist in the pod), or the only one.
fn pick_container(pod: &Value, name: &str, wanted: Option<&str>) -> Result<String, ApiError> {
    let names = |field: &str| -> Vec<String> {
        pod["spec"][field]
            .as_array()
            .into_iter()
            .flatten()
            .filter_map(|c| c["name"].as_str().map(str::to_string))
            .collect()
    };
    let (apps, inits) = (names("containers"), names("initContainers"));
    match wanted.filter(|w| !w.is_empty()) {
        Some(w) => {
            let known = apps
                .iter()
                .chain(&inits)
                .chain(&names("ephemeralContainers"))
                .any(|n| n == w);
            if known {
                Ok(w.to_string())
            } else {
                Err(ApiError::bad_request(format!(
                    "container {w} is not valid for pod {name}"
                )))
            }
        }
        None if apps.len() == 1 => Ok(apps[0].clone()),
        None if apps.is_empty() => Err(ApiError::bad_request(format!(
            "a container name must be specified for pod {name}"
        ))),
        None => {
            let mut message = format!(
                "a container name must be specified for pod {name}, choose one of: [{}]",
                apps.join(" ")
            );
            if !inits.is_empty() {
                message.push_str(&format!(
                    " or one of the init containers: [{}]",
                    inits.join(" ")
                ));
            }
            Err(ApiError::bad_request(message))
        }
    }
}

/// Answers an exec request for pod `name`; `st` is the locked store (dropped before the session starts).
#[allow(clippy::too_many_arguments)]
pub fn serve(
    shared: &Arc<Shared>,
    st: MutexGuard<'_, State>,
    namespace: &str,
    name: &str,
    query: &[(String, String)],
    headers: &HeaderMap,
    upgrade: Option<OnUpgrade>,
    shutdown: watch::Receiver<bool>,
) -> Result<Response<Body>, ApiError> {
    let pod_res = super::resources::find_kind("Pod").ok_or_else(ApiError::resource_not_found)?;
    let pod = st
        .get(pod_res, namespace, name)
        .cloned()
        .ok_or_else(|| ApiError::not_found("pods", "", name))?;
    let container = pick_container(
        &pod,
        name,
        query
            .iter()
            .find(|(k, _)| k == "container")
            .map(|(_, v)| v.as_str()),
    )?;
    if pod.pointer("/spec/nodeName").is_none() {
        return Err(ApiError::bad_request(format!(
            "pod {name} does not have a host assigned"
        )));
    }
    let (Some(key), Some(upgrade)) = (websocket::upgrade_key(headers, upgrade.as_ref()), upgrade)
    else {
        return Err(ApiError::bad_request("Upgrade request required"));
    };
    let uid = pod
        .pointer("/metadata/uid")
        .and_then(Value::as_str)
        .unwrap_or_default()
        .to_string();
    let streams = Streams::parse(query);
    let command: Vec<String> = query
        .iter()
        .filter(|(k, _)| k == "command")
        .map(|(_, v)| v.clone())
        .collect();
    let refusal = kubelet_refusal(&st, &uid, &container, streams);
    let root = st.rootfs.root(&uid, &container);
    drop(st);
    // The apiserver upgrades a v5 client itself and reports what the kubelet refuses on the error channel;
    // anything else is proxied to the kubelet, which refuses in plain text before upgrading.
    let (protocol, chosen, framing) = if websocket::offered(headers).iter().any(|p| p == V5) {
        (Protocol::V5, Some(V5), Framing::Binary)
    } else {
        if let Some((code, text)) = &refusal {
            return Ok(text_response(*code, text));
        }
        let Ok(chosen) = websocket::negotiate(headers, &KUBELET_PROTOCOLS) else {
            return Ok(websocket::no_protocol_response());
        };
        let framing = match chosen {
            Some(p) if p.contains("base64") => Framing::Base64,
            _ => Framing::Binary,
        };
        let protocol = match chosen {
            Some(p) if p.starts_with("v4.") => Protocol::V4,
            _ => Protocol::V1,
        };
        (protocol, chosen, framing)
    };
    let session = Session {
        shared: Arc::clone(shared),
        pod: name.to_string(),
        uid,
        container,
        command,
        streams,
        protocol,
        framing,
        root,
    };
    tokio::spawn(async move {
        if let Some(ws) = websocket::accept(upgrade).await {
            session.run(ws, refusal, shutdown).await;
        }
    });
    Ok(websocket::switching_protocols(&key, chosen))
}

/// How to enter a container root: `chroot` (root), else an unprivileged user namespace.
#[derive(Debug)]
enum Launcher {
    Chroot(&'static str),
    Unshare(&'static str),
}

impl Launcher {
    /// The command running `program args…` inside `root` with cwd `/`.
    fn command(&self, root: &Path, program: &str, args: &[String]) -> tokio::process::Command {
        let mut cmd = match self {
            Launcher::Chroot(bin) => {
                let mut c = tokio::process::Command::new(bin);
                c.arg(root);
                c
            }
            Launcher::Unshare(bin) => {
                let mut c = tokio::process::Command::new(bin);
                c.arg("--map-root-user")
                    .arg(format!("--root={}", root.display()))
                    .arg("--wd=/");
                c
            }
        };
        cmd.arg(program).args(args).current_dir("/").env_clear();
        cmd
    }
}

/// Finds a way into a root once per process: each candidate must get as far as failing to find a program in an
/// empty root (exit 127); a message saying why none works otherwise.
fn launcher() -> &'static Result<Launcher, String> {
    static LAUNCHER: OnceLock<Result<Launcher, String>> = OnceLock::new();
    LAUNCHER.get_or_init(|| {
        let empty = tempfile::tempdir().map_err(|e| format!("temporary directory: {e}"))?;
        let probe = "/fake-apiserver-exec-probe";
        let mut answers = Vec::new();
        let candidates: [(Launcher, Vec<String>); 4] = [
            (Launcher::Chroot("chroot"), vec![empty.path().display().to_string()]),
            (Launcher::Chroot("/usr/sbin/chroot"), vec![empty.path().display().to_string()]),
            (
                Launcher::Unshare("unshare"),
                vec!["--map-root-user".into(), format!("--root={}", empty.path().display()), "--wd=/".into()],
            ),
            (
                Launcher::Unshare("/usr/bin/unshare"),
                vec!["--map-root-user".into(), format!("--root={}", empty.path().display()), "--wd=/".into()],
            ),
        ];
        for (launcher, args) in candidates {
            let bin = match &launcher {
                Launcher::Chroot(b) | Launcher::Unshare(b) => *b,
            };
            match std::process::Command::new(bin).args(&args).arg(probe).output() {
                Ok(out) if out.status.code() == Some(127) => return Ok(launcher),
                Ok(out) => answers.push(format!(
                    "`{bin}` exited with {}: {}",
                    out.status,
                    String::from_utf8_lossy(&out.stderr).trim()
                )),
                Err(e) => answers.push(format!("`{bin}`: {e}")),
            }
        }
        Err(format!(
            "fake API server: cannot run a process inside a container root ({}); run the tests as root (chroot \
             needs CAP_SYS_CHROOT) or allow unprivileged user namespaces",
            answers.join("; ")
        ))
    })
}

/// Go's `exec.LookPath` inside the root, as runc runs it: the program's path inside, or runc's error text.
fn look_path(root: &Path, program: &str) -> Result<String, String> {
    use std::os::unix::fs::PermissionsExt;
    // `Err(None)`: there, but a directory or without an execute bit.
    let executable = |inside: &str| -> Result<(), Option<rootfs::Missing>> {
        let host = rootfs::resolve(root, inside).map_err(Some)?;
        let meta = std::fs::metadata(host).map_err(|_| Some(rootfs::Missing::NotFound))?;
        if !meta.is_dir() && meta.permissions().mode() & 0o111 != 0 {
            Ok(())
        } else {
            Err(None)
        }
    };
    if program.contains('/') {
        return match executable(program) {
            Ok(()) => Ok(program.to_string()),
            Err(None) => Err(format!("exec: \"{program}\": permission denied")),
            Err(Some(m)) => Err(format!("exec: \"{program}\": stat {program}: {}", m.text())),
        };
    }
    DEFAULT_PATH
        .split(':')
        .map(|dir| format!("{dir}/{program}"))
        .find(|p| executable(p).is_ok())
        .ok_or_else(|| format!("exec: \"{program}\": executable file not found in $PATH"))
}

/// Go's `encoding/json` output of a Status: compact, fields in struct order, `<`, `>` and `&` escaped.
fn go_json(v: &Value) -> String {
    v.to_string()
        .replace('<', "\\u003c")
        .replace('>', "\\u003e")
        .replace('&', "\\u0026")
}

fn failure(message: String, reason: &str, causes: Vec<Value>, code: Option<u16>) -> Value {
    let mut m = Map::new();
    m.insert("metadata".into(), json!({}));
    m.insert("status".into(), json!("Failure"));
    m.insert("message".into(), json!(message));
    m.insert("reason".into(), json!(reason));
    m.insert("details".into(), json!({ "causes": causes }));
    if let Some(c) = code {
        m.insert("code".into(), json!(c));
    }
    Value::Object(m)
}

/// `NewInternalError(err)`: message `Internal error occurred: err`, the error itself as the only cause.
fn internal_error(err: &str) -> Value {
    failure(
        format!("Internal error occurred: {err}"),
        "InternalError",
        vec![json!({ "message": err })],
        Some(500),
    )
}

/// How a command ended, before it is worded for a protocol.
enum Outcome {
    Exited(i32),
    /// The runtime could not start the program (runc's text after `OCI runtime exec failed: `).
    NotStarted(String),
    /// The kubelet refused before starting anything (its text).
    Refused(String),
    /// The fake cannot enter container roots on this machine.
    Broken(String),
}

impl Outcome {
    /// The Status on the error channel (`None`: nothing is written).
    fn status(&self, protocol: Protocol, command: &[String]) -> Option<Value> {
        let status = match self {
            Outcome::Exited(0) => json!({"metadata": {}, "status": "Success"}),
            Outcome::Exited(code) => {
                // The translator rewords the SPDY client's error; the kubelet passes on containerd's.
                let err = match protocol {
                    Protocol::V5 => format!("command terminated with exit code {code}"),
                    _ => format!(
                        "error executing command [{}], exit code {code}",
                        command.join(" ")
                    ),
                };
                failure(
                    format!("command terminated with non-zero exit code: {err}"),
                    "NonZeroExitCode",
                    vec![json!({"reason": "ExitCode", "message": code.to_string()})],
                    None,
                )
            }
            Outcome::NotStarted(runc) => {
                let exec_id = (0..4)
                    .map(|_| format!("{:016x}", random_u64()))
                    .collect::<String>();
                let kubelet = format!(
                    "Internal error occurred: error executing command in container: failed to exec in container: \
                     failed to start exec \"{exec_id}\": OCI runtime exec failed: {runc}: unknown"
                );
                match protocol {
                    Protocol::V5 => internal_error(&kubelet),
                    _ => internal_error(kubelet.trim_start_matches("Internal error occurred: ")),
                }
            }
            Outcome::Refused(text) => {
                internal_error(&format!("unable to upgrade connection: {text}"))
            }
            Outcome::Broken(text) => internal_error(text),
        };
        match protocol {
            Protocol::V1 if status["status"] == "Success" => None,
            _ => Some(status),
        }
    }
}

/// One upgraded exec connection.
struct Session {
    shared: Arc<Shared>,
    pod: String,
    uid: String,
    container: String,
    command: Vec<String>,
    streams: Streams,
    protocol: Protocol,
    framing: Framing,
    root: Option<PathBuf>,
}

/// What the process side reports to the session.
enum Io {
    Out(u8, Bytes),
    Eof,
}

fn forward(
    tasks: &mut JoinSet<()>,
    tx: &mpsc::Sender<Io>,
    channel: u8,
    mut from: impl AsyncRead + Unpin + Send + 'static,
) {
    let tx = tx.clone();
    tasks.spawn(async move {
        let mut buf = vec![0u8; 32 * 1024];
        loop {
            match from.read(&mut buf).await {
                Ok(0) | Err(_) => break,
                Ok(n) => {
                    if tx
                        .send(Io::Out(channel, Bytes::copy_from_slice(&buf[..n])))
                        .await
                        .is_err()
                    {
                        return;
                    }
                }
            }
        }
        let _ = tx.send(Io::Eof).await;
    });
}

/// Kills every process of the exec's process group (a container stop kills all its processes, and children
/// left behind would hold the output open).
async fn kill_group(pid: Option<u32>) {
    let Some(pid) = pid else {
        return;
    };
    let _ = tokio::process::Command::new("kill")
        .args(["-KILL", "--", &format!("-{pid}")])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .await;
}

impl Session {
    async fn send(&self, ws: &mut Ws, channel: u8, data: &[u8]) -> bool {
        ws.send(self.framing.frame(channel, data)).await.is_ok()
    }

    /// Writes the Status (when the protocol has one), then Close 1000; dropping the stream ends TCP.
    async fn finish(&self, mut ws: Ws, outcome: &Outcome) {
        if let Some(status) = outcome.status(self.protocol, &self.command) {
            let text = match self.protocol {
                Protocol::V1 => status["message"].as_str().unwrap_or_default().to_string(),
                _ => go_json(&status),
            };
            if !self.send(&mut ws, ERROR, text.as_bytes()).await {
                return;
            }
        }
        let close = CloseFrame {
            code: CloseCode::Normal,
            reason: "".into(),
        };
        if ws.send(Message::Close(Some(close))).await.is_err() {
            return;
        }
        // Read what the client still sends (stdin the program never read, its Close reply) before the socket
        // closes: unread input would turn the close into a reset that can destroy the frames just sent. The
        // apiserver reads the connection continuously, so its clients never see that.
        let drain = async { while let Some(Ok(_)) = ws.next().await {} };
        let _ = tokio::time::timeout(CLOSE_DRAIN, drain).await;
    }

    /// Whether this start of the container is still running (a deleted pod or a stopped container ends the exec).
    fn alive(&self, root: &Path) -> bool {
        let st = self.shared.lock();
        st.rootfs.root(&self.uid, &self.container).as_deref() == Some(root)
            && st.pods.get(&self.uid).is_some_and(|sim| {
                sim.containers.iter().any(|c| {
                    c.name == self.container
                        && matches!(c.state, PodState::Running | PodState::NotReady)
                })
            })
    }

    async fn run(
        self,
        mut ws: Ws,
        refusal: Option<(u16, String)>,
        shutdown: watch::Receiver<bool>,
    ) {
        if !self.send(&mut ws, self.streams.first_channel(), &[]).await {
            return;
        }
        let outcome = match (refusal, &self.root) {
            (Some((_, text)), _) => Outcome::Refused(text),
            (None, None) => {
                Outcome::Refused(format!("container not found (\"{}\")", self.container))
            }
            (None, Some(root)) => match self.start(root) {
                Ok(child) => {
                    let root = root.clone();
                    match self.attend(&mut ws, child, &root, shutdown).await {
                        Some(code) => Outcome::Exited(code),
                        None => return,
                    }
                }
                Err(outcome) => outcome,
            },
        };
        self.finish(ws, &outcome).await;
    }

    /// Starts the command inside `root` (pipes for the requested streams) or says why it cannot start.
    fn start(&self, root: &Path) -> Result<tokio::process::Child, Outcome> {
        let Some(program) = self.command.first() else {
            // Nothing before runc checks the command; runc validates the process spec before it looks for the
            // program (`validateProcessSpec`).
            return Err(Outcome::NotStarted(
                "exec failed: args must not be empty".into(),
            ));
        };
        // The launcher's execvp finds the same file with the same PATH, and the program keeps its argv[0]
        // (busybox names itself by it: `sh: tar: not found`).
        let path = look_path(root, program).map_err(|e| {
            Outcome::NotStarted(format!(
                "exec failed: unable to start container process: {e}"
            ))
        })?;
        let launcher = launcher()
            .as_ref()
            .map_err(|e| Outcome::Broken(e.clone()))?;
        let pipe = |on: bool| if on { Stdio::piped() } else { Stdio::null() };
        let mut cmd = launcher.command(root, program, &self.command[1..]);
        cmd.env("PATH", DEFAULT_PATH)
            .env("HOSTNAME", &self.pod)
            .env("HOME", "/root")
            .stdin(pipe(self.streams.stdin))
            .stdout(pipe(self.streams.stdout || self.streams.tty))
            .stderr(pipe(self.streams.stderr || self.streams.tty))
            .process_group(0)
            .kill_on_drop(true);
        cmd.spawn()
            .map_err(|e| Outcome::Broken(format!("fake API server: starting {}: {e}", path)))
    }

    /// Relays the streams until the process ended and its output is drained; the exit code (128 + signal when
    /// killed), or `None` when the server shut down.
    async fn attend(
        &self,
        ws: &mut Ws,
        mut child: tokio::process::Child,
        root: &Path,
        mut shutdown: watch::Receiver<bool>,
    ) -> Option<i32> {
        let mut tasks = JoinSet::new();
        let (io_tx, mut io_rx) = mpsc::channel::<Io>(16);
        let mut outputs = 0;
        // With a terminal everything the process writes reaches the client as the terminal's output.
        let err_channel = if self.streams.tty { STDOUT } else { STDERR };
        if let Some(out) = child.stdout.take() {
            forward(&mut tasks, &io_tx, STDOUT, out);
            outputs += 1;
        }
        if let Some(err) = child.stderr.take() {
            forward(&mut tasks, &io_tx, err_channel, err);
            outputs += 1;
        }
        drop(io_tx);
        let mut stdin_tx = child.stdin.take().map(|mut stdin| {
            let (tx, mut rx) = mpsc::unbounded_channel::<Vec<u8>>();
            tasks.spawn(async move {
                while let Some(chunk) = rx.recv().await {
                    if stdin.write_all(&chunk).await.is_err() {
                        break;
                    }
                }
            });
            tx
        });
        let pid = child.id();
        let (exit_tx, mut exit_rx) = oneshot::channel::<i32>();
        tasks.spawn(async move {
            use std::os::unix::process::ExitStatusExt;
            let code = child.wait().await.map_or(137, |s| {
                s.code().unwrap_or_else(|| 128 + s.signal().unwrap_or(9))
            });
            let _ = exit_tx.send(code);
        });
        let mut killed = false;
        let deadline = tokio::time::Instant::now() + DEADLINE;
        let mut exit: Option<i32> = None;
        let mut client_open = true;
        while exit.is_none() || outputs > 0 {
            let changed = self.shared.changed.notified();
            tokio::pin!(changed);
            changed.as_mut().enable();
            if !killed && !self.alive(root) {
                killed = true;
                kill_group(pid).await;
            }
            tokio::select! {
                msg = ws.next(), if client_open => match msg {
                    Some(Ok(m)) if m.is_close() => {
                        // The reply to the client's Close is queued; flushing sends it. Without v5 a client can
                        // only end stdin this way, and the command still runs to its end.
                        let _ = ws.flush().await;
                        client_open = false;
                        stdin_tx = None;
                    }
                    Some(Ok(m)) => match self.framing.unframe(m, true) {
                        Some((STDIN, data)) => {
                            if let Some(tx) = &stdin_tx && !data.is_empty() {
                                let _ = tx.send(data);
                            }
                        }
                        Some((CLOSE, data)) if self.protocol == Protocol::V5 && data.first() == Some(&STDIN) => {
                            stdin_tx = None;
                        }
                        // Resize (no terminal here), and writes to output channels, are dropped.
                        _ => {}
                    },
                    Some(Err(_)) | None => {
                        client_open = false;
                        stdin_tx = None;
                    }
                },
                io = io_rx.recv(), if outputs > 0 => match io {
                    Some(Io::Out(channel, data)) => {
                        if client_open && !self.send(ws, channel, &data).await {
                            client_open = false;
                        }
                    }
                    Some(Io::Eof) | None => outputs -= 1,
                },
                code = &mut exit_rx, if exit.is_none() => exit = Some(code.unwrap_or(137)),
                () = tokio::time::sleep_until(deadline) => {
                    // Stuck: kill it and whatever it left behind; what was written so far has been sent.
                    kill_group(pid).await;
                    outputs = 0;
                    if exit.is_none() {
                        exit = Some((&mut exit_rx).await.unwrap_or(137));
                    }
                }
                () = &mut changed => {}
                _ = shutdown.changed() => {
                    kill_group(pid).await;
                    return None;
                }
            }
        }
        drop(stdin_tx);
        client_open.then_some(exit.unwrap_or(137))
    }
}
