//! Lifecycle hooks, host side: a step's hooks (`config::hooks`) + the step's variables → host commands run with
//! tokio::process (the argv as given, no shell, in the hook's `dir`, devloop's environment plus the step's
//! variables), their output as `hookOutput` events, a failure as a [`HookError`] with the exit code and the last
//! lines; the event and error words container hooks share (the runner runs those through the deploy target).
//! Hooks run one after another, in order; the first failure stops the list. Never puts the environment into
//! events or errors; decides nothing about when hooks run.

use std::collections::VecDeque;
use std::process::Stdio;
use std::time::Instant;

use tokio::io::{AsyncBufRead, AsyncBufReadExt, BufReader};
use tokio_util::sync::CancellationToken;

use crate::config::hooks::{Hook, HostHook};
use crate::deploy::DeployError;
use crate::event::{Event, EventSink};
use crate::hint::Hint;

/// How many of a failed hook's last lines its error carries.
pub const TAIL_LINES: usize = 20;

/// When a hook runs.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Phase {
    BeforeBuild,
    AfterBuild,
    BeforeSync,
    AfterSync,
    BeforeDeploy,
    AfterDeploy,
}

impl Phase {
    /// Skaffold's name for it: `before-build`, …
    pub fn name(self) -> &'static str {
        match self {
            Phase::BeforeBuild => "before-build",
            Phase::AfterBuild => "after-build",
            Phase::BeforeSync => "before-sync",
            Phase::AfterSync => "after-sync",
            Phase::BeforeDeploy => "before-deploy",
            Phase::AfterDeploy => "after-deploy",
        }
    }

    /// What a failure of this phase's hooks means for the step.
    fn consequence(self) -> &'static str {
        match self {
            Phase::BeforeBuild => "the image was not built",
            Phase::AfterBuild => "the image was built, but the build counts as failed",
            Phase::BeforeSync => "no file was synced",
            Phase::AfterSync => "the files were synced, but the sync counts as failed",
            Phase::BeforeDeploy => "nothing was deployed",
            Phase::AfterDeploy => "the deploy was applied, but counts as failed",
        }
    }
}

/// Why a hook failed.
#[derive(Debug, thiserror::Error)]
pub enum HookError {
    #[error(
        "{hook} `{command}` exited with {}: {}{}{}",
        code.map_or_else(|| "no exit code (a signal ended it)".to_string(), |c| format!("code {c}")),
        phase.consequence(),
        last_lines(output),
        Hint("the hook's output is above; run the command by hand to see why it fails")
    )]
    Failed {
        hook: String,
        phase: Phase,
        command: String,
        code: Option<i64>,
        output: Vec<String>,
    },
    #[error("{hook} `{command}` could not start in `{dir}`: {message}: {}{}", phase.consequence(), Hint(hint))]
    Start {
        hook: String,
        phase: Phase,
        command: String,
        dir: String,
        message: String,
        hint: String,
    },
    #[error("{hook}: {source}")]
    Container {
        hook: String,
        #[source]
        source: DeployError,
    },
    #[error("{hook} was stopped")]
    Cancelled { hook: String },
}

impl HookError {
    /// The first line of the message: which hook, and how it ended (the last lines and the hint left out).
    pub fn summary(&self) -> String {
        let full = match self {
            HookError::Failed {
                hook,
                command,
                code,
                ..
            } => {
                let how = code.map_or_else(|| "no exit code".to_string(), |c| format!("code {c}"));
                return format!("{hook} `{command}` exited with {how}");
            }
            other => other.to_string(),
        };
        full.lines().next().unwrap_or_default().to_string()
    }

    /// The hook's last lines (for a `buildFailed` event).
    pub fn output(&self) -> Vec<String> {
        match self {
            HookError::Failed { output, .. } => output.clone(),
            _ => Vec::new(),
        }
    }
}

fn last_lines(output: &[String]) -> String {
    if output.is_empty() {
        return String::new();
    }
    let mut s = String::from("; its last lines:");
    for l in output {
        s.push_str("\n  │ ");
        s.push_str(l);
    }
    s
}

/// Which hooks run, and what they know: the phase, the artifact (build and sync hooks) and the variables.
#[derive(Debug, Clone)]
pub struct HookRun<'a> {
    pub phase: Phase,
    /// The artifact's image name as configured (build and sync hooks).
    pub image: Option<&'a str>,
    /// Added to devloop's own environment for host hooks.
    pub env: Vec<(String, String)>,
    pub events: &'a EventSink,
    /// Stops a running hook (dropping the future stops it too: the process is killed).
    pub cancel: CancellationToken,
}

impl HookRun<'_> {
    /// `` `api` before-build hook 1 ``: how messages name hook `index`.
    pub fn hook_name(&self, index: usize) -> String {
        match self.image {
            Some(i) => format!("`{i}` {} hook {index}", self.phase.name()),
            None => format!("{} hook {index}", self.phase.name()),
        }
    }

    /// Reports that hook `index` starts (in `container`, for container hooks).
    pub fn started(&self, index: usize, command: &[String], container: Option<String>) {
        self.events.emit(Event::HookStarted {
            phase: self.phase.name().into(),
            image: self.image.map(str::to_string),
            index,
            command: command.to_vec(),
            container,
        });
    }

    /// Reports one line hook `index` wrote.
    pub fn line(&self, index: usize, container: &Option<String>, line: String) {
        self.events.emit(Event::HookOutput {
            phase: self.phase.name().into(),
            image: self.image.map(str::to_string),
            index,
            container: container.clone(),
            line,
        });
    }

    /// Reports that hook `index` exited with code 0.
    pub fn finished(&self, index: usize, container: Option<String>, started: Instant) {
        self.events.emit(Event::HookFinished {
            phase: self.phase.name().into(),
            image: self.image.map(str::to_string),
            index,
            container,
            duration_ms: started.elapsed().as_millis() as u64,
        });
    }

    /// Reports that hook `index` failed.
    pub fn failed(&self, index: usize, container: Option<String>, e: &HookError) {
        let exit_code = match e {
            HookError::Failed { code, .. } => *code,
            _ => None,
        };
        let message = match e {
            HookError::Failed { code: Some(c), .. } => format!("exit code {c}"),
            HookError::Failed { code: None, .. } => "a signal ended it".to_string(),
            HookError::Start { message, .. } => message.clone(),
            HookError::Container { source, .. } => source.to_string(),
            HookError::Cancelled { .. } => "stopped".to_string(),
        };
        self.events.emit(Event::HookFailed {
            phase: self.phase.name().into(),
            image: self.image.map(str::to_string),
            index,
            container,
            exit_code,
            message,
            output: e.output(),
        });
    }

    /// Runs the host hooks of `hooks` in order (build hooks are host hooks only); container hooks are skipped.
    pub async fn run_host(&self, hooks: &[Hook]) -> Result<(), HookError> {
        for (i, h) in hooks.iter().enumerate() {
            if let Hook::Host(h) = h {
                self.host(i + 1, h).await?;
            }
        }
        Ok(())
    }

    /// Runs host hook `index` (from 1): reports its start, its lines and how it ended.
    pub async fn host(&self, index: usize, h: &HostHook) -> Result<(), HookError> {
        let started = Instant::now();
        self.started(index, &h.command, None);
        let outcome = self.spawn_host(index, h).await;
        match &outcome {
            Ok(()) => self.finished(index, None, started),
            Err(e) => self.failed(index, None, e),
        }
        outcome
    }

    async fn spawn_host(&self, index: usize, h: &HostHook) -> Result<(), HookError> {
        let hook = self.hook_name(index);
        let command = h.command.join(" ");
        let mut cmd = tokio::process::Command::new(&h.command[0]);
        cmd.args(&h.command[1..])
            .current_dir(&h.dir)
            .envs(self.env.iter().map(|(k, v)| (k, v)))
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .kill_on_drop(true);
        let mut child = cmd.spawn().map_err(|e| HookError::Start {
            hook: hook.clone(),
            phase: self.phase,
            command: command.clone(),
            dir: h.dir.display().to_string(),
            message: e.to_string(),
            hint: if e.kind() == std::io::ErrorKind::NotFound {
                format!(
                    "is `{}` installed and on PATH? hooks run no shell: write `[sh, -c, \"…\"]` for one",
                    h.command[0]
                )
            } else {
                "check the command and its permissions".to_string()
            },
        })?;
        let (Some(out), Some(err)) = (child.stdout.take(), child.stderr.take()) else {
            return Err(HookError::Start {
                hook,
                phase: self.phase,
                command,
                dir: h.dir.display().to_string(),
                message: "its output could not be read".to_string(),
                hint: "check that devloop may create pipes (open files limit)".to_string(),
            });
        };
        let mut tail = VecDeque::new();
        let read = self.read_lines(index, BufReader::new(out), BufReader::new(err), &mut tail);
        let status = tokio::select! {
            _ = self.cancel.cancelled() => {
                // kill_on_drop ends the child with the future.
                return Err(HookError::Cancelled { hook });
            }
            status = async { read.await; child.wait().await } => status,
        };
        let status = status.map_err(|e| HookError::Start {
            hook: hook.clone(),
            phase: self.phase,
            command: command.clone(),
            dir: h.dir.display().to_string(),
            message: e.to_string(),
            hint: "check the command and its permissions".to_string(),
        })?;
        if status.success() {
            return Ok(());
        }
        Err(HookError::Failed {
            hook,
            phase: self.phase,
            command,
            code: status.code().map(i64::from),
            output: tail.into(),
        })
    }

    /// Emits each line of stdout and stderr as it comes, keeping the last [`TAIL_LINES`] in `tail`.
    async fn read_lines(
        &self,
        index: usize,
        mut out: impl AsyncBufRead + Unpin,
        mut err: impl AsyncBufRead + Unpin,
        tail: &mut VecDeque<String>,
    ) {
        let (mut out_open, mut err_open) = (true, true);
        let (mut a, mut b) = (Vec::new(), Vec::new());
        while out_open || err_open {
            let line = tokio::select! {
                l = next_line(&mut out, &mut a), if out_open => l.or_else(|| { out_open = false; None }),
                l = next_line(&mut err, &mut b), if err_open => l.or_else(|| { err_open = false; None }),
            };
            if let Some(line) = line {
                keep(tail, &line);
                self.line(index, &None, line);
            }
        }
    }
}

/// Keeps `line` among the last [`TAIL_LINES`].
pub fn keep(tail: &mut VecDeque<String>, line: &str) {
    if tail.len() == TAIL_LINES {
        tail.pop_front();
    }
    tail.push_back(line.to_string());
}

/// The next line (without its end), invalid UTF-8 replaced; `None` at the end of the stream.
async fn next_line(r: &mut (impl AsyncBufRead + Unpin), buf: &mut Vec<u8>) -> Option<String> {
    buf.clear();
    match r.read_until(b'\n', buf).await {
        Ok(0) | Err(_) => None,
        Ok(_) => {
            let text = String::from_utf8_lossy(buf);
            Some(text.trim_end_matches(['\n', '\r']).to_string())
        }
    }
}

/// The variables build hooks get: `IMAGE` (the reference built), `PUSH_IMAGE`, `IMAGE_REPO`, `IMAGE_TAG`,
/// `BUILD_CONTEXT` (absolute), each also under Skaffold's `SKAFFOLD_` name.
pub fn build_env(
    repository: &str,
    tag: &str,
    push: bool,
    context: &std::path::Path,
) -> Vec<(String, String)> {
    let context = std::path::absolute(context).unwrap_or_else(|_| context.to_path_buf());
    both(vec![
        ("IMAGE", crate::tag::with_tag(repository, tag)),
        ("PUSH_IMAGE", push.to_string()),
        ("IMAGE_REPO", repository.to_string()),
        ("IMAGE_TAG", tag.to_string()),
        ("BUILD_CONTEXT", context.display().to_string()),
    ])
}

/// The variables sync hooks get: `IMAGE` (the running reference), `BUILD_CONTEXT`, `FILES_ADDED_OR_MODIFIED` and
/// `FILES_DELETED` (absolute paths joined by `;`), each also under Skaffold's `SKAFFOLD_` name.
pub fn sync_env(
    image: &str,
    context: &std::path::Path,
    changed: &[std::path::PathBuf],
    deleted: &[std::path::PathBuf],
) -> Vec<(String, String)> {
    let join = |paths: &[std::path::PathBuf]| {
        paths
            .iter()
            .map(|p| p.display().to_string())
            .collect::<Vec<_>>()
            .join(";")
    };
    let context = std::path::absolute(context).unwrap_or_else(|_| context.to_path_buf());
    both(vec![
        ("IMAGE", image.to_string()),
        ("BUILD_CONTEXT", context.display().to_string()),
        ("FILES_ADDED_OR_MODIFIED", join(changed)),
        ("FILES_DELETED", join(deleted)),
    ])
}

/// Each variable under its name and under `SKAFFOLD_<name>`, so hooks written for Skaffold run unchanged.
pub fn both(vars: Vec<(&str, String)>) -> Vec<(String, String)> {
    let mut out = Vec::with_capacity(vars.len() * 2);
    for (k, v) in vars {
        out.push((format!("SKAFFOLD_{k}"), v.clone()));
        out.push((k.to_string(), v));
    }
    out
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    fn run(events: &EventSink) -> HookRun<'_> {
        HookRun {
            phase: Phase::BeforeDeploy,
            image: None,
            env: both(vec![("NAMESPACES", "a,b".to_string())]),
            events,
            cancel: CancellationToken::new(),
        }
    }

    fn host(script: &str) -> HostHook {
        HostHook {
            command: vec!["sh".into(), "-c".into(), script.into()],
            dir: std::env::temp_dir(),
        }
    }

    #[tokio::test]
    async fn lines_come_as_written_and_a_failure_keeps_the_last_twenty() {
        let (events, seen) = EventSink::collector();
        let script = "i=1; while [ $i -le 30 ]; do echo line $i; i=$((i+1)); done; printf 'bad \\377 byte\\r\\n'; exit 9";
        let e = run(&events).host(1, &host(script)).await.unwrap_err();
        let HookError::Failed { code, output, .. } = &e else {
            panic!("{e}");
        };
        assert_eq!(*code, Some(9));
        assert_eq!(output.len(), TAIL_LINES);
        assert_eq!(output[0], "line 12");
        assert_eq!(
            output[19], "bad \u{fffd} byte",
            "invalid UTF-8 replaced, CRLF trimmed"
        );
        let lines = seen
            .lock()
            .unwrap()
            .iter()
            .filter(|e| matches!(e, Event::HookOutput { .. }))
            .count();
        assert_eq!(lines, 31, "every line is shown");
        assert_eq!(
            e.summary(),
            "before-deploy hook 1 `sh -c i=1; while [ $i -le 30 ]; do echo line $i; i=$((i+1)); done; printf 'bad \\377 byte\\r\\n'; exit 9` exited with code 9"
        );
    }

    #[tokio::test]
    async fn a_hook_sees_devloops_environment_and_the_steps_variables_under_both_names() {
        let (events, seen) = EventSink::collector();
        run(&events)
            .host(
                1,
                &host("echo \"$NAMESPACES $SKAFFOLD_NAMESPACES ${PATH:+path}\""),
            )
            .await
            .unwrap();
        let said: Vec<String> = seen
            .lock()
            .unwrap()
            .iter()
            .filter_map(|e| match e {
                Event::HookOutput { line, .. } => Some(line.clone()),
                _ => None,
            })
            .collect();
        assert_eq!(said, ["a,b a,b path"]);
    }

    #[tokio::test]
    async fn a_cancelled_hook_is_stopped() {
        let (events, _) = EventSink::collector();
        let r = run(&events);
        r.cancel.cancel();
        let e = r.host(1, &host("sleep 30")).await.unwrap_err();
        assert!(matches!(e, HookError::Cancelled { .. }), "{e}");
    }
}
