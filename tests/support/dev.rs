//! A running `devloop dev -o json` for scenarios: its JSON events as they come (and all of them so far), its
//! stderr lines, waiting (bounded) for an event, and stopping it as a user does (Ctrl-C, then its exit code).
#![allow(dead_code, clippy::unwrap_used)]

use std::path::Path;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use serde_json::Value;
use tokio::io::{AsyncBufReadExt, BufReader};
use tokio::sync::mpsc;

/// How long a scenario waits for one event before it fails.
const EVENT_DEADLINE: Duration = Duration::from_secs(120);

/// Everything devloop wrote, in order.
#[derive(Default)]
pub struct Written {
    pub events: Vec<Value>,
    pub stderr: Vec<String>,
}

pub struct Dev {
    child: tokio::process::Child,
    events: mpsc::UnboundedReceiver<Value>,
    pub written: Arc<Mutex<Written>>,
}

impl Dev {
    /// `devloop dev -o json ARGS…` in `dir` with `cache` as its cache directory and `env` set.
    pub fn spawn(dir: &Path, cache: &Path, args: &[String], env: &[(&str, &str)]) -> Dev {
        let mut cmd = tokio::process::Command::new(env!("CARGO_BIN_EXE_devloop"));
        cmd.args(["dev", "-o", "json"])
            .args(args)
            .current_dir(dir)
            .env("DEVLOOP_CACHE_DIR", cache)
            .env_remove("RUST_LOG")
            .env_remove("KUBECONFIG")
            .stdout(std::process::Stdio::piped())
            .stderr(std::process::Stdio::piped())
            .kill_on_drop(true);
        for (k, v) in env {
            cmd.env(k, v);
        }
        let mut child = cmd.spawn().unwrap();
        let written = Arc::new(Mutex::new(Written::default()));
        let (tx, events) = mpsc::unbounded_channel();
        let mut stdout = BufReader::new(child.stdout.take().unwrap()).lines();
        let w = Arc::clone(&written);
        tokio::spawn(async move {
            while let Ok(Some(line)) = stdout.next_line().await {
                let e: Value =
                    serde_json::from_str(&line).unwrap_or_else(|e| panic!("not JSON: {line}: {e}"));
                w.lock().unwrap().events.push(e.clone());
                let _ = tx.send(e);
            }
        });
        let mut stderr = BufReader::new(child.stderr.take().unwrap()).lines();
        let w = Arc::clone(&written);
        tokio::spawn(async move {
            while let Ok(Some(line)) = stderr.next_line().await {
                w.lock().unwrap().stderr.push(line);
            }
        });
        Dev {
            child,
            events,
            written,
        }
    }

    /// Receives events until one satisfies `pred` (bounded); returns it.
    pub async fn until(&mut self, what: &str, pred: impl Fn(&Value) -> bool) -> Value {
        let deadline = Instant::now() + EVENT_DEADLINE;
        loop {
            let left = deadline.saturating_duration_since(Instant::now());
            let e = match tokio::time::timeout(left, self.events.recv()).await {
                Ok(Some(e)) => e,
                Ok(None) => panic!("devloop exited waiting for {what}:\n{}", self.transcript()),
                Err(_) => panic!("timed out waiting for {what}:\n{}", self.transcript()),
            };
            if pred(&e) {
                return e;
            }
        }
    }

    /// Waits for an event of type `ty`.
    pub async fn until_type(&mut self, ty: &str) -> Value {
        self.until(ty, |e| e["type"] == ty).await
    }

    /// How many events so far.
    pub fn seen(&self) -> usize {
        self.written.lock().unwrap().events.len()
    }

    /// The events of type `ty` after the first `from`.
    pub fn events_since(&self, from: usize, ty: &str) -> Vec<Value> {
        self.written.lock().unwrap().events[from..]
            .iter()
            .filter(|e| e["type"] == ty)
            .cloned()
            .collect()
    }

    /// Events and stderr so far, for a failure message.
    pub fn transcript(&self) -> String {
        let w = self.written.lock().unwrap();
        let events: Vec<String> = w.events.iter().map(Value::to_string).collect();
        format!(
            "events:\n{}\nstderr:\n{}",
            events.join("\n"),
            w.stderr.join("\n")
        )
    }

    /// How many events and stderr lines so far.
    pub fn counts(&self) -> (usize, usize) {
        let w = self.written.lock().unwrap();
        (w.events.len(), w.stderr.len())
    }

    /// Ctrl-C (SIGINT), as a user in the terminal.
    pub fn interrupt(&self) {
        if let Some(pid) = self.child.id() {
            let _ = std::process::Command::new("kill")
                .args(["-INT", &pid.to_string()])
                .status();
        }
    }

    /// The exit code, once devloop exits (bounded).
    pub async fn exit_code(&mut self) -> Option<i32> {
        match tokio::time::timeout(EVENT_DEADLINE, self.child.wait()).await {
            Ok(status) => status.unwrap().code(),
            Err(_) => panic!("devloop did not exit:\n{}", self.transcript()),
        }
    }

    /// Ctrl-C, then the exit code once devloop has cleaned up (bounded).
    pub async fn stop(mut self) -> Option<i32> {
        self.interrupt();
        self.exit_code().await
    }
}
