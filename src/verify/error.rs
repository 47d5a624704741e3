//! Verify: why a new copy did not pass its check ([`VerifyError`]), worded for the person deciding whether to ship
//! it. Hints through `crate::hint`; it must not print, nor carry an HTTP body or more than a few log lines.

use crate::hint::Hint;

/// Why a blue/green check did not pass.
#[derive(Debug, thiserror::Error)]
pub enum VerifyError {
    #[error(
        "blue/green `{service}`: verify.job: no image to run{}",
        Hint("set `verify.job.image` to an artifact's image or to an image the nodes can pull")
    )]
    NoJobImage { service: String },
    #[error(
        "blue/green `{service}`: verify.http.port: pod `{pod}` has no container port named `{port}` (its ports: {available}){}",
        Hint(
            "set `verify.http.port` to a port number or to the name of a container port of the Deployment"
        )
    )]
    NoNamedPort {
        service: String,
        pod: String,
        port: String,
        available: String,
    },
    #[error(
        "blue/green `{service}`: verify: GET `{path}` did not get {expected} from every pod of the new copy within {timeout}:{failing}{}",
        Hint("the pods' logs may say why; `verify.timeout` sets how long devloop keeps asking")
    )]
    HttpTimeout {
        service: String,
        path: String,
        /// `` `200` `` or `a 2xx status`.
        expected: String,
        timeout: String,
        /// One indented line per pod (or copy without ready pods) with its last answer.
        failing: String,
    },
    #[error(
        "blue/green `{service}`: verify: job `{job}` failed: {reason}{logs}{}",
        Hint(format_args!("the job runs `verify.job.command` against `{preview_url}`; it must exit 0"))
    )]
    JobFailed {
        service: String,
        job: String,
        /// The Job's `Failed` condition and its pod's exit, e.g. `BackoffLimitExceeded: … (exit code 3)`.
        reason: String,
        /// The last lines of its pod's log, indented under a heading, or nothing.
        logs: String,
        preview_url: String,
    },
    #[error(
        "blue/green `{service}`: verify: job `{job}` did not finish within {timeout}{state}{}",
        Hint("`verify.timeout` sets how long the job may run")
    )]
    JobTimeout {
        service: String,
        job: String,
        timeout: String,
        /// What its pod was doing then (`; pod `x` is waiting: ImagePullBackOff`), or nothing.
        state: String,
    },
    #[error(
        "blue/green `{service}`: verify: job `{job}` already exists and devloop did not create it{}",
        Hint(
            "devloop runs its check as the Job `<service>-verify-<colour>`: rename or delete that Job"
        )
    )]
    ForeignJob { service: String, job: String },
    #[error("blue/green `{service}`: verify: cannot {action}: {message}")]
    Api {
        service: String,
        /// What was being done, e.g. ``list the pods of `api-green` ``.
        action: String,
        message: String,
    },
    #[error("blue/green: verify stopped by a signal")]
    Cancelled,
}

impl VerifyError {
    pub(super) fn api(service: &str, action: impl Into<String>, e: &kube::Error) -> Self {
        let message = match e {
            kube::Error::Api(s) => s.message.clone(),
            other => crate::connectivity::root_cause(other),
        };
        VerifyError::Api {
            service: service.to_string(),
            action: action.into(),
            message,
        }
    }
}
