//! Unit tests of the status stage, by concept, against objects recorded from a real kube-apiserver
//! (shared/kube-api); this file holds the fixtures they share.

mod claim;
mod diagnosis;
mod evidence;
mod failure;
mod rollout;
mod workload;

use std::path::{Path, PathBuf};

use serde_json::Value;

use super::*;

/// A recorded file of shared/kube-api: `../shared` beside the repository (CI), or two levels up (scratch).
fn kube_api(name: &str) -> PathBuf {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let near = root.join("../shared/kube-api").join(name);
    if near.exists() {
        return near;
    }
    root.join("../../shared/kube-api").join(name)
}

/// The JSON body of a recorded `.http` response (after the first blank line).
fn http_body(name: &str) -> Value {
    let text = std::fs::read_to_string(kube_api(name)).unwrap();
    let (_, body) = text.split_once("\n\n").unwrap();
    serde_json::from_str(body).unwrap()
}

fn jsonl(name: &str) -> Vec<Value> {
    std::fs::read_to_string(kube_api(name))
        .unwrap()
        .lines()
        .map(|l| serde_json::from_str::<Value>(l).unwrap())
        .filter(|v| v.get("_note").is_none())
        .collect()
}

fn progressing(m: &str) -> RolloutState {
    RolloutState::Progressing(m.to_string())
}

const READY: RolloutState = RolloutState::Ready { note: None };

fn problem(pod: &str, container: Option<&str>, reason: &str, message: &str) -> PodProblem {
    PodProblem {
        pod: pod.into(),
        container: container.map(str::to_string),
        reason: reason.into(),
        message: message.into(),
    }
}
