//! Verify, the HTTP check: every ready pod of each new copy → a port-forward to its port, a hand-written HTTP/1.1
//! `GET` and the status line of the answer, tried again (a fresh tunnel each time) until every pod answered the
//! expected status or the timeout passed. Reads at most a few KiB of an answer and keeps only its status line: a
//! body may hold secrets, so it must never reach a message.

use std::collections::{BTreeMap, BTreeSet};
use std::time::{Duration, Instant};

use futures_util::future::join_all;
use k8s_openapi::api::core::v1::Pod;
use kube::api::{Api, ListParams, Portforwarder};
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWriteExt};
use tokio::time::Instant as Deadline;
use tokio_util::sync::CancellationToken;

use super::{Verified, VerifyContext, VerifyError, elapsed, written};

/// Pause between two rounds of requests.
const RETRY: Duration = Duration::from_millis(500);
/// How long one request may take before it counts as unanswered.
const REQUEST_LIMIT: Duration = Duration::from_secs(5);
/// How much of an answer is read looking for its status line.
const MAX_ANSWER: usize = 4096;
/// After a connection closed without an answer, how long the kubelet's error message may take to arrive.
const ERROR_GRACE: Duration = Duration::from_millis(500);
/// How long a round may overrun the deadline (a list call in flight) before its answers are given up.
const OVERRUN: Duration = Duration::from_secs(2);

/// `verify.http`, borrowed.
pub(super) struct Probe<'a> {
    /// A number or a container port's name.
    pub port: &'a str,
    pub path: &'a str,
    /// `None`: any 2xx.
    pub status: Option<u16>,
    pub timeout: Duration,
}

impl Probe<'_> {
    fn accepts(&self, code: u16) -> bool {
        match self.status {
            Some(s) => code == s,
            None => (200..300).contains(&code),
        }
    }

    fn expected(&self) -> String {
        match self.status {
            Some(s) => format!("`{s}`"),
            None => "a 2xx status".to_string(),
        }
    }
}

/// What one request got.
enum Answer {
    /// The status line and its code.
    Status(String, u16),
    /// No HTTP answer: why.
    Failed(String),
}

/// One round's outcome: every ready pod passed (with the count per copy), or the last answer of what did not.
enum Round {
    Passed(Vec<(String, usize)>),
    Failing(BTreeMap<String, String>),
}

pub(super) async fn verify(
    client: &kube::Client,
    probe: &Probe<'_>,
    ctx: &VerifyContext,
    cancel: &CancellationToken,
    started: Instant,
) -> Result<Verified, VerifyError> {
    let deadline = Deadline::now() + probe.timeout;
    let pods: Api<Pod> = Api::namespaced(client.clone(), &ctx.namespace);
    let mut passed = BTreeSet::new();
    let mut failing = BTreeMap::new();
    loop {
        let round = tokio::select! {
            biased;
            () = cancel.cancelled() => return Err(VerifyError::Cancelled),
            () = tokio::time::sleep_until(deadline + OVERRUN) => None,
            r = run_round(&pods, probe, ctx, deadline, &mut passed) => Some(r?),
        };
        match round {
            Some(Round::Passed(counts)) => {
                return Ok(Verified {
                    summary: summary(probe, &counts, started),
                });
            }
            Some(Round::Failing(f)) => failing = f,
            None => {}
        }
        if Deadline::now() + RETRY >= deadline {
            return Err(timed_out(probe, ctx, &failing));
        }
        tokio::select! {
            biased;
            () = cancel.cancelled() => return Err(VerifyError::Cancelled),
            () = tokio::time::sleep(RETRY) => {}
        }
    }
}

/// Asks every ready pod that has not passed yet, once.
async fn run_round(
    pods: &Api<Pod>,
    probe: &Probe<'_>,
    ctx: &VerifyContext,
    deadline: Deadline,
    passed: &mut BTreeSet<String>,
) -> Result<Round, VerifyError> {
    let mut failing = BTreeMap::new();
    let mut counts = Vec::new();
    let mut asks = Vec::new();
    for copy in &ctx.copies {
        let selector = copy
            .labels
            .iter()
            .map(|(k, v)| format!("{k}={v}"))
            .collect::<Vec<_>>()
            .join(",");
        let listed = pods
            .list(&ListParams::default().labels(&selector))
            .await
            .map_err(|e| {
                VerifyError::api(
                    &ctx.service,
                    format!("list the pods of `{}`", copy.deployment),
                    &e,
                )
            })?;
        let ready: Vec<Pod> = listed.items.into_iter().filter(is_ready).collect();
        if ready.is_empty() {
            failing.insert(format!("`{}`", copy.deployment), "no ready pod".to_string());
        }
        counts.push((copy.deployment.clone(), ready.len()));
        for pod in ready {
            let name = pod.metadata.name.clone().unwrap_or_default();
            if passed.contains(&name) {
                continue;
            }
            let port = pod_port(&pod, probe.port, &ctx.service)?;
            asks.push((name, port));
        }
    }
    let limit = deadline
        .saturating_duration_since(Deadline::now())
        .clamp(Duration::from_millis(100), REQUEST_LIMIT);
    let answers = join_all(
        asks.iter()
            .map(|(pod, port)| ask(pods, pod, *port, probe.path, limit)),
    )
    .await;
    for ((pod, _), answer) in asks.into_iter().zip(answers) {
        match answer {
            Answer::Status(_, code) if probe.accepts(code) => {
                passed.insert(pod);
            }
            Answer::Status(line, _) => {
                failing.insert(format!("pod `{pod}`"), format!("`{line}`"));
            }
            Answer::Failed(why) => {
                failing.insert(format!("pod `{pod}`"), why);
            }
        }
    }
    Ok(if failing.is_empty() {
        Round::Passed(counts)
    } else {
        Round::Failing(failing)
    })
}

/// Ready (condition `Ready` true) and not terminating.
fn is_ready(pod: &Pod) -> bool {
    pod.metadata.deletion_timestamp.is_none()
        && pod
            .status
            .iter()
            .flat_map(|s| s.conditions.iter().flatten())
            .any(|c| c.type_ == "Ready" && c.status == "True")
}

/// `port` as a number, or the container port of that name in the pod's spec.
fn pod_port(pod: &Pod, port: &str, service: &str) -> Result<u16, VerifyError> {
    if let Ok(n) = port.parse::<u16>() {
        return Ok(n);
    }
    let ports: Vec<_> = pod
        .spec
        .iter()
        .flat_map(|s| s.containers.iter())
        .flat_map(|c| c.ports.iter().flatten())
        .collect();
    ports
        .iter()
        .find(|p| p.name.as_deref() == Some(port))
        .and_then(|p| u16::try_from(p.container_port).ok())
        .ok_or_else(|| VerifyError::NoNamedPort {
            service: service.to_string(),
            pod: pod.metadata.name.clone().unwrap_or_default(),
            port: port.to_string(),
            available: if ports.is_empty() {
                "none".to_string()
            } else {
                ports
                    .iter()
                    .map(|p| match &p.name {
                        Some(n) => format!("`{}` ({n})", p.container_port),
                        None => format!("`{}`", p.container_port),
                    })
                    .collect::<Vec<_>>()
                    .join(", ")
            },
        })
}

/// One `GET` through a fresh tunnel, within `limit`.
async fn ask(pods: &Api<Pod>, pod: &str, port: u16, path: &str, limit: Duration) -> Answer {
    let exchange = async {
        let mut forwarder = match pods.portforward(pod, &[port]).await {
            Ok(f) => f,
            Err(e) => return Answer::Failed(format!("port-forward failed: {}", api_message(&e))),
        };
        let answer = talk(&mut forwarder, port, path).await;
        // The answer is in: nothing more is read, the tunnel's task need not close cleanly.
        forwarder.abort();
        answer
    };
    match tokio::time::timeout(limit, exchange).await {
        Ok(answer) => answer,
        Err(_) => Answer::Failed(format!("no answer within {}", written(limit))),
    }
}

async fn talk(forwarder: &mut Portforwarder, port: u16, path: &str) -> Answer {
    let (Some(mut stream), Some(error)) = (forwarder.take_stream(port), forwarder.take_error(port))
    else {
        return Answer::Failed("the port-forward opened no stream".to_string());
    };
    let request = format!(
        "GET {path} HTTP/1.1\r\nHost: localhost\r\nUser-Agent: devloop\r\nAccept: */*\r\nConnection: close\r\n\r\n"
    );
    let exchange = async {
        stream.write_all(request.as_bytes()).await?;
        stream.flush().await?;
        status_line(&mut stream).await
    };
    tokio::pin!(exchange);
    tokio::pin!(error);
    let mut error_done = false;
    loop {
        tokio::select! {
            biased;
            r = &mut exchange => {
                if let Ok(Some(line)) = &r {
                    return parse(line);
                }
                // No answer: the kubelet's error channel says why when it knows (nothing listening).
                if !error_done
                    && let Ok(Some(text)) = tokio::time::timeout(ERROR_GRACE, &mut error).await
                {
                    return Answer::Failed(kubelet_error(&text, port));
                }
                return match r {
                    Err(e) => Answer::Failed(format!("connection error: {e}")),
                    _ => Answer::Failed("the connection closed without an answer".to_string()),
                };
            }
            message = &mut error, if !error_done => match message {
                Some(text) => return Answer::Failed(kubelet_error(&text, port)),
                None => error_done = true,
            },
        }
    }
}

/// The answer's first line (at most [`MAX_ANSWER`] bytes read); `None` when nothing came.
async fn status_line<R: AsyncRead + Unpin>(stream: &mut R) -> std::io::Result<Option<String>> {
    let mut buf = Vec::with_capacity(512);
    let mut chunk = [0u8; 512];
    while buf.len() < MAX_ANSWER {
        let n = stream.read(&mut chunk).await?;
        if n == 0 {
            break;
        }
        buf.extend_from_slice(&chunk[..n]);
        if buf.contains(&b'\n') {
            break;
        }
    }
    if buf.is_empty() {
        return Ok(None);
    }
    let end = buf.iter().position(|b| *b == b'\n').unwrap_or(buf.len());
    let line = String::from_utf8_lossy(&buf[..end]).trim_end().to_string();
    Ok(Some(line))
}

/// `HTTP/1.1 503 Service Unavailable` → its code; anything else is not an HTTP answer (and is not shown).
fn parse(line: &str) -> Answer {
    let mut words = line.split(' ');
    let (Some(version), Some(code)) = (words.next(), words.next()) else {
        return Answer::Failed("not an HTTP answer".to_string());
    };
    match code.parse::<u16>() {
        Ok(c) if version.starts_with("HTTP/") && code.len() == 3 => {
            let shown: String = line.chars().take(80).filter(|c| !c.is_control()).collect();
            Answer::Status(shown, c)
        }
        _ => Answer::Failed("not an HTTP answer".to_string()),
    }
}

/// The kubelet's error-channel text, shortened: nothing listening is the common case.
fn kubelet_error(text: &str, port: u16) -> String {
    if text.contains("connection refused") {
        return format!("connection refused on port {port}");
    }
    let short: String = text.trim().chars().take(200).collect();
    format!("port-forward error: {short}")
}

fn api_message(e: &kube::Error) -> String {
    match e {
        kube::Error::Api(s) => s.message.clone(),
        other => crate::connectivity::root_cause(other),
    }
}

fn summary(probe: &Probe<'_>, counts: &[(String, usize)], started: Instant) -> String {
    let status = probe
        .status
        .map_or_else(|| "2xx".to_string(), |s| s.to_string());
    let pods = counts
        .iter()
        .map(|(copy, n)| format!("{n} pod{} of {copy}", if *n == 1 { "" } else { "s" }))
        .collect::<Vec<_>>()
        .join(", ");
    format!(
        "GET {} → {status} from {pods} in {}",
        probe.path,
        elapsed(started.elapsed())
    )
}

fn timed_out(
    probe: &Probe<'_>,
    ctx: &VerifyContext,
    failing: &BTreeMap<String, String>,
) -> VerifyError {
    let mut lines = String::new();
    for (what, answer) in failing {
        lines.push_str(&format!("\n  {what}: {answer}"));
    }
    if failing.is_empty() {
        lines.push_str("\n  no round of requests finished");
    }
    VerifyError::HttpTimeout {
        service: ctx.service.clone(),
        path: probe.path.to_string(),
        expected: probe.expected(),
        timeout: written(probe.timeout),
        failing: lines,
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn a_status_line_gives_its_code_and_nothing_else_does() {
        assert!(
            matches!(parse("HTTP/1.1 503 Service Unavailable"), Answer::Status(l, 503) if l == "HTTP/1.1 503 Service Unavailable")
        );
        assert!(matches!(parse("HTTP/1.0 200"), Answer::Status(_, 200)));
        assert!(matches!(parse("SSH-2.0-OpenSSH_9.6"), Answer::Failed(_)));
        assert!(matches!(parse("HTTP/1.1 2000 x"), Answer::Failed(_)));
    }

    #[tokio::test]
    async fn only_the_first_line_of_an_answer_is_kept() {
        let answer = b"HTTP/1.1 200 OK\r\nSet-Cookie: secret\r\n\r\nbody".to_vec();
        let line = status_line(&mut &answer[..]).await.unwrap();
        assert_eq!(line.as_deref(), Some("HTTP/1.1 200 OK"));
        let empty: &[u8] = &[];
        assert_eq!(status_line(&mut &empty[..]).await.unwrap(), None);
    }

    #[test]
    fn a_refused_connection_reads_short() {
        let text = "error forwarding port 8080 to pod 1234, uid : failed to execute portforward in network namespace \"/var/run/netns/cni-1\": failed to connect to localhost:8080 inside namespace \"1234\", IPv4: dial tcp4 127.0.0.1:8080: connect: connection refused IPv6 dial tcp6: address localhost: no suitable address found ";
        assert_eq!(kubelet_error(text, 8080), "connection refused on port 8080");
    }

    #[test]
    fn the_expected_status_is_exact_or_any_2xx() {
        let probe = |status| Probe {
            port: "8080",
            path: "/",
            status,
            timeout: Duration::from_secs(1),
        };
        assert!(probe(None).accepts(204));
        assert!(!probe(None).accepts(301));
        assert!(probe(Some(301)).accepts(301));
        assert!(!probe(Some(200)).accepts(201));
    }
}
