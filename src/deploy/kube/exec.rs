//! Deploy, Kubernetes backend, exec: a command in a container of a running pod (`pods/exec` over WebSocket,
//! `v5.channel.k8s.io` with `v4` as fallback) → its stdout, stderr and how it ended; and the running pods of this
//! project. Runs what it is asked in containers this project deployed; never decides what to run.

use std::time::Duration;

use k8s_openapi::api::core::v1::Pod;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::Status;
use kube::api::{Api, AttachParams, ListParams};
use tokio::io::{AsyncReadExt, AsyncWriteExt};

use super::KubeTarget;
use crate::deploy::DeployError;

/// How long one command may take before devloop gives up on it.
const EXEC_DEADLINE: Duration = Duration::from_secs(120);

/// What a command run in a container did.
#[derive(Debug, Clone)]
pub struct ExecOutput {
    pub stdout: Vec<u8>,
    pub stderr: Vec<u8>,
    pub outcome: ExecOutcome,
}

/// How a command ended.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ExecOutcome {
    /// It ran and exited with this code (0: success).
    Exited(i32),
    /// The program is not in the container (the runtime could not start it); the runtime's words.
    ProgramMissing(String),
}

impl ExecOutput {
    pub fn success(&self) -> bool {
        self.outcome == ExecOutcome::Exited(0)
    }

    /// The last lines of stderr (else stdout), for a message.
    pub fn tail(&self, lines: usize) -> String {
        let text = if self.stderr.iter().any(|b| !b.is_ascii_whitespace()) {
            &self.stderr
        } else {
            &self.stdout
        };
        let text = String::from_utf8_lossy(text);
        let all: Vec<&str> = text.lines().filter(|l| !l.trim().is_empty()).collect();
        all[all.len().saturating_sub(lines)..].join("\n")
    }
}

/// A running container: its name, the image its spec names, and how often it restarted (a restart starts from
/// the image again).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RunningContainer {
    pub name: String,
    pub image: String,
    pub restarts: i32,
}

/// A running pod of this project: where it is and what its containers run.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RunningPod {
    pub namespace: String,
    pub name: String,
    pub uid: String,
    pub containers: Vec<RunningContainer>,
}

impl KubeTarget {
    /// Runs `argv` in `container` of pod `ns/pod`; `stdin`, when given, is written to the command and left open
    /// (protocol v4 cannot close it alone): the command must know where its input ends.
    pub async fn exec(
        &self,
        ns: &str,
        pod: &str,
        container: &str,
        argv: &[String],
        stdin: Option<bytes::Bytes>,
    ) -> Result<ExecOutput, DeployError> {
        let object = format!("pod/{pod} -n {ns}, container `{container}`");
        match tokio::time::timeout(
            EXEC_DEADLINE,
            self.exec_once(ns, pod, container, argv, stdin),
        )
        .await
        {
            Ok(r) => r.map_err(|message| exec_error(&object, argv, message)),
            Err(_) => Err(exec_error(
                &object,
                argv,
                format!("no answer within {} s", EXEC_DEADLINE.as_secs()),
            )),
        }
    }

    async fn exec_once(
        &self,
        ns: &str,
        pod: &str,
        container: &str,
        argv: &[String],
        stdin: Option<bytes::Bytes>,
    ) -> Result<ExecOutput, String> {
        let api: Api<Pod> = Api::namespaced(self.client.clone(), ns);
        let params = AttachParams::default()
            .container(container)
            .stdin(stdin.is_some())
            .stdout(true)
            .stderr(true);
        let mut attached = api
            .exec(pod, argv.iter().map(String::as_str), &params)
            .await
            .map_err(|e| upgrade_failure(&e))?;
        let status = attached
            .take_status()
            .ok_or_else(|| "the exec stream has no status channel".to_string())?;
        let mut out = attached.stdout();
        let mut err = attached.stderr();
        let mut writer = attached.stdin();
        let write = async {
            if let (Some(w), Some(data)) = (writer.as_mut(), stdin.as_ref()) {
                // A failed write means the command stopped reading; its status says why.
                let _ = w.write_all(data).await;
                let _ = w.flush().await;
            }
        };
        let read = |r: Option<tokio::io::ReadHalf<tokio::io::SimplexStream>>| async move {
            let mut buf = Vec::new();
            if let Some(mut r) = r {
                let _ = r.read_to_end(&mut buf).await;
            }
            buf
        };
        let ((), stdout, stderr, status) =
            tokio::join!(write, read(out.take()), read(err.take()), status);
        drop(writer);
        let outcome = match status {
            Some(s) => outcome_of(&s)?,
            None => return Err("the connection closed before the command ended".to_string()),
        };
        Ok(ExecOutput {
            stdout,
            stderr,
            outcome,
        })
    }

    /// The running pods of this project in `namespaces`, with their running containers.
    pub async fn running_pods(
        &self,
        namespaces: &[String],
    ) -> Result<Vec<RunningPod>, DeployError> {
        let mut pods = Vec::new();
        let params = ListParams::default().labels(&self.selector());
        for ns in namespaces {
            let api: Api<Pod> = Api::namespaced(self.client.clone(), ns);
            let list = api.list(&params).await.map_err(|e| DeployError::Api {
                message: format!("cannot list the pods of this project in namespace `{ns}`: {e}"),
                hint: None,
            })?;
            for p in list.items {
                if p.metadata.deletion_timestamp.is_some() {
                    continue;
                }
                let running: Vec<(String, i32)> = p
                    .status
                    .as_ref()
                    .and_then(|s| s.container_statuses.as_ref())
                    .into_iter()
                    .flatten()
                    .filter(|c| c.state.as_ref().is_some_and(|s| s.running.is_some()))
                    .map(|c| (c.name.clone(), c.restart_count))
                    .collect();
                let containers = p
                    .spec
                    .as_ref()
                    .map(|s| &s.containers[..])
                    .unwrap_or_default()
                    .iter()
                    .filter_map(|c| {
                        let (_, restarts) = running.iter().find(|(n, _)| *n == c.name)?;
                        Some(RunningContainer {
                            name: c.name.clone(),
                            image: c.image.clone().unwrap_or_default(),
                            restarts: *restarts,
                        })
                    })
                    .collect::<Vec<_>>();
                if containers.is_empty() {
                    continue;
                }
                pods.push(RunningPod {
                    namespace: ns.clone(),
                    name: p.metadata.name.clone().unwrap_or_default(),
                    uid: p.metadata.uid.clone().unwrap_or_default(),
                    containers,
                });
            }
        }
        Ok(pods)
    }
}

/// The channel-3 `Status` → how the command ended (or why it did not run).
fn outcome_of(s: &Status) -> Result<ExecOutcome, String> {
    if s.status.as_deref() == Some("Success") {
        return Ok(ExecOutcome::Exited(0));
    }
    let message = s.message.clone().unwrap_or_default();
    if s.reason.as_deref() == Some("NonZeroExitCode") {
        let code = s
            .details
            .as_ref()
            .and_then(|d| d.causes.as_ref())
            .into_iter()
            .flatten()
            .find(|c| c.reason.as_deref() == Some("ExitCode"))
            .and_then(|c| c.message.as_deref()?.parse().ok())
            .unwrap_or(1);
        return Ok(ExecOutcome::Exited(code));
    }
    // The runtime could not start the program: the recorded answers say `no such file or directory` for a
    // missing absolute path and `executable file not found` for a name not on PATH.
    if message.contains("no such file or directory")
        || message.contains("executable file not found")
        || message.contains("not found in $PATH")
    {
        return Ok(ExecOutcome::ProgramMissing(runtime_words(&message)));
    }
    Err(message)
}

/// The useful end of a runtime's error (`exec: "tar": executable file not found in $PATH`), without the
/// nested "Internal error occurred: … failed to start exec \"<id>\"" prefixes.
fn runtime_words(message: &str) -> String {
    let tail = message.rsplit("unable to start container process: ").next();
    let tail = tail.unwrap_or(message);
    tail.trim_end_matches(": unknown").to_string()
}

/// Why the upgrade was refused (kube reports only the HTTP status of a refused upgrade).
fn upgrade_failure(e: &kube::Error) -> String {
    use kube::client::UpgradeConnectionError as U;
    match e {
        kube::Error::UpgradeConnection(U::ProtocolSwitch(code)) => match code.as_u16() {
            403 => "exec is forbidden (403)".to_string(),
            404 => "the pod is gone (404)".to_string(),
            400 => "the container is not running (400)".to_string(),
            other => format!("the API server refused the exec ({other})"),
        },
        other => other.to_string(),
    }
}

fn exec_error(object: &str, argv: &[String], message: String) -> DeployError {
    let hint = message.contains("forbidden").then(|| {
        "your account may not exec into pods: `kubectl auth can-i create pods/exec` says; ask for that \
         permission, or devloop rebuilds instead of syncing"
            .to_string()
    });
    DeployError::Api {
        message: format!("{object}: cannot run `{}`: {message}", argv.join(" ")),
        hint,
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    fn status(json: &str) -> Status {
        serde_json::from_str(json).unwrap()
    }

    #[test]
    fn the_recorded_statuses_say_how_a_command_ended() {
        // 11-exec-ws.txt, cases A, C, E and D.
        let ok = status(r#"{"metadata":{},"status":"Success"}"#);
        assert_eq!(outcome_of(&ok), Ok(ExecOutcome::Exited(0)));
        let three = status(
            r#"{"metadata":{},"status":"Failure","message":"command terminated with non-zero exit code: command terminated with exit code 3","reason":"NonZeroExitCode","details":{"causes":[{"reason":"ExitCode","message":"3"}]}}"#,
        );
        assert_eq!(outcome_of(&three), Ok(ExecOutcome::Exited(3)));
        let missing = status(
            r#"{"metadata":{},"status":"Failure","message":"Internal error occurred: Internal error occurred: error executing command in container: failed to exec in container: failed to start exec \"7794\": OCI runtime exec failed: exec failed: unable to start container process: exec: \"/bin/tar\": stat /bin/tar: no such file or directory: unknown","reason":"InternalError","code":500}"#,
        );
        assert_eq!(
            outcome_of(&missing),
            Ok(ExecOutcome::ProgramMissing(
                "exec: \"/bin/tar\": stat /bin/tar: no such file or directory".into()
            ))
        );
        let other = status(
            r#"{"metadata":{},"status":"Failure","message":"container not found","reason":"InternalError","code":500}"#,
        );
        assert_eq!(outcome_of(&other), Err("container not found".into()));
    }

    #[test]
    fn the_tail_prefers_stderr() {
        let out = ExecOutput {
            stdout: b"a\nb\n".to_vec(),
            stderr: b"x\n\ny\nz\n".to_vec(),
            outcome: ExecOutcome::Exited(1),
        };
        assert_eq!(out.tail(2), "y\nz");
        let quiet = ExecOutput {
            stderr: Vec::new(),
            ..out
        };
        assert_eq!(quiet.tail(5), "a\nb");
    }
}
