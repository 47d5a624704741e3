//! Verify, a stage: a blue/green release's new copy + its `verify:` check → [`Verified`] (one summary line) or a
//! [`VerifyError`] saying what answered what. `http.rs` GETs a path through a port-forward to every ready pod of
//! each copy until they all answer the expected status; `job.rs` runs a Job against the preview Service to
//! completion and deletes it. Talks to the cluster through the kube client only: it must not call another stage
//! (deploy, status, port-forward), print, or touch anything but the Job it creates.

mod error;
mod http;
mod job;

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use tokio_util::sync::CancellationToken;

use crate::config::blue_green::{Check, Verify};

pub use error::VerifyError;

/// A new copy of a Deployment and the labels its pods carry (its selector, colour included).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Copy {
    pub deployment: String,
    pub labels: BTreeMap<String, String>,
}

/// What a check needs to know about the release it checks.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct VerifyContext {
    pub namespace: String,
    /// The Service whose traffic is about to move.
    pub service: String,
    /// The new colour.
    pub color: String,
    pub copies: Vec<Copy>,
    /// `http://<service>-preview.<namespace>.svc:<port>`: the Job's `PREVIEW_URL`.
    pub preview_url: String,
    /// The Job's image, artifact names already resolved (`None`: nothing to run).
    pub job_image: Option<String>,
    /// Labels the Job carries: devloop's ownership labels and the set's `part-of`.
    pub labels: BTreeMap<String, String>,
}

/// A passed check.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Verified {
    /// One line, e.g. `GET /healthz → 200 from 2 pods of api-green in 140 ms`.
    pub summary: String,
}

/// Runs `check` against the new copies of `ctx` within its timeout. A cancelled `cancel` stops it at once (the
/// Job, if any, deleted) with [`VerifyError::Cancelled`].
pub async fn verify(
    client: &kube::Client,
    check: &Verify,
    ctx: &VerifyContext,
    cancel: &CancellationToken,
) -> Result<Verified, VerifyError> {
    let started = Instant::now();
    match &check.check {
        Check::Http { port, path, status } => {
            let probe = http::Probe {
                port,
                path,
                status: *status,
                timeout: check.timeout,
            };
            http::verify(client, &probe, ctx, cancel, started).await
        }
        Check::Job { command, .. } => {
            job::verify(client, command, check.timeout, ctx, cancel, started).await
        }
    }
}

/// A duration for a summary line: `140 ms`, `3.2 s`.
fn elapsed(d: Duration) -> String {
    if d < Duration::from_secs(1) {
        format!("{} ms", d.as_millis())
    } else {
        format!("{:.1} s", d.as_secs_f64())
    }
}

/// A configured duration as written in devloop.yaml: `60s`, `2m`, `1m30s`, `500ms`.
fn written(d: Duration) -> String {
    let secs = d.as_secs();
    if d.subsec_millis() != 0 || secs == 0 {
        return format!("{}ms", d.as_millis());
    }
    match (secs / 60, secs % 60) {
        (0, s) => format!("{s}s"),
        (m, 0) => format!("{m}m"),
        (m, s) => format!("{m}m{s}s"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn durations_read_as_written() {
        assert_eq!(written(Duration::from_secs(60)), "1m");
        assert_eq!(written(Duration::from_secs(90)), "1m30s");
        assert_eq!(written(Duration::from_secs(5)), "5s");
        assert_eq!(written(Duration::from_millis(1500)), "1500ms");
        assert_eq!(elapsed(Duration::from_millis(140)), "140 ms");
        assert_eq!(elapsed(Duration::from_millis(3240)), "3.2 s");
    }
}
