//! Tests of a failing pod's evidence: its own recent events, newest last.

use k8s_openapi::api::core::v1::Event as CoreEvent;
use serde_json::json;

use super::http_body;
use crate::status::evidence::{MAX_EVENTS, recent_events};

fn events_of(name: &str) -> Vec<CoreEvent> {
    serde_json::from_value(http_body(name)["items"].clone()).unwrap()
}

#[test]
fn recent_events_are_the_pods_own_newest_last() {
    let crash = events_of("07-events-pod-crash.http");
    let lines = recent_events(
        &crash,
        "Pod",
        "crash",
        Some("342756bb-bab1-429b-a321-a0a20a3e72a8"),
    );
    assert_eq!(lines.len(), 6);
    assert_eq!(
        lines[0],
        "Normal Scheduled: Successfully assigned kapi-pods/crash to vm"
    );
    assert_eq!(
        lines[1],
        "Warning BackOff: Back-off restarting failed container main in pod crash_kapi-pods(342756bb-bab1-429b-a321-a0a20a3e72a8) (x9)"
    );
    assert_eq!(lines[5], "Normal Started: Started container main (x7)");

    // Another pod's events and an older pod of the same name are left out.
    let mut mixed = events_of("07-events-pod-pull-fail.http");
    mixed.extend(crash.clone());
    assert_eq!(recent_events(&mixed, "Pod", "crash", None).len(), 6);
    assert!(recent_events(&mixed, "Pod", "crash", Some("other-uid")).is_empty());
    let pull = recent_events(&mixed, "Pod", "pull-fail", None);
    assert_eq!(pull.len(), 7);
    assert_eq!(
        pull[6],
        "Normal BackOff: Back-off pulling image \"127.0.0.1:5000/nope:1\" (x21)"
    );
}

#[test]
fn recent_events_keep_the_newest_eight() {
    let events: Vec<CoreEvent> = (0..12)
        .map(|i| {
            serde_json::from_value(json!({
                "metadata": {"name": format!("e{i}")},
                "involvedObject": {"kind": "Pod", "name": "p"},
                "reason": "R", "message": format!("m{i}"), "type": "Warning",
                "lastTimestamp": format!("2026-11-22T03:{:02}:00Z", 59 - i),
            }))
            .unwrap()
        })
        .collect();
    let lines = recent_events(&events, "Pod", "p", None);
    assert_eq!(lines.len(), MAX_EVENTS);
    assert_eq!(lines.first().unwrap(), "Warning R: m7");
    assert_eq!(lines.last().unwrap(), "Warning R: m0");
}
