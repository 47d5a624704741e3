//! Watch stage, the collector thread: the backend's raw events (notify) or its walks (polling) → filtered by the
//! [`Rules`], merged and published into the pending set ([`Shared`]). Registers everything before the thread
//! starts, so every change made after the start is seen; turns to polling when inotify runs out of watches or
//! cannot start, and says so with a [`WatchWarning`]. Never blocks on the consumer and decides nothing about
//! timing (that is `debounce.rs`).

use std::collections::BTreeSet;
use std::path::PathBuf;
use std::sync::mpsc::{self, Receiver, RecvTimeoutError, Sender};
use std::sync::{Arc, Mutex};
use std::time::Instant;

use notify::EventKind;
use notify::event::{MetadataKind, ModifyKind, RenameMode};

use super::change_set::{Found, Shared, SourceGuard};
use super::error::WatchError;
use super::mode::{Status, WatchMode};
use super::notifier::{Fail, Msg, Notifier, describe};
use super::poller::Poller;
use super::rules::Rules;
use super::spec::{Trigger, WatchSpec};
use super::warning::WatchWarning;
use super::{Options, RECHECK};

/// At most this many notify events are merged before they are published to the consumer.
const DRAIN_MAX: usize = 4096;

/// The consumer's side of a running collector thread.
pub(super) struct CollectorHandle {
    tx: Sender<Msg>,
    pub(super) status: Arc<Mutex<Status>>,
}

impl CollectorHandle {
    /// Registers everything synchronously, then hands the backend to a thread. `None` in manual mode.
    pub(super) fn start(
        spec: &WatchSpec,
        shared: &Arc<Shared>,
        options: Options,
    ) -> Result<(Option<CollectorHandle>, Vec<WatchWarning>), WatchError> {
        let rules = Rules::compile(spec)?;
        let status = Arc::new(Mutex::new(Status {
            mode: WatchMode::Manual,
            watched: BTreeSet::new(),
        }));
        let (tx, rx) = mpsc::channel();
        let mut warnings = Vec::new();
        let backend = match spec.trigger {
            Trigger::Manual => return Ok((None, warnings)),
            Trigger::Polling => Backend::Polling(Poller::new(&rules, &status, &mut warnings)),
            Trigger::Notify => match Notifier::new(&rules, &tx, &status, options, &mut warnings) {
                Ok(notifier) => Backend::Notify(notifier),
                Err(Fail::Limit(path)) => {
                    let poller = Poller::new(&rules, &status, &mut warnings);
                    warnings.push(WatchWarning::WatchLimit {
                        path,
                        interval: rules.poll_interval,
                    });
                    Backend::Polling(poller)
                }
                Err(Fail::Unavailable(message)) => {
                    let poller = Poller::new(&rules, &status, &mut warnings);
                    warnings.push(WatchWarning::NotifyUnavailable {
                        message,
                        interval: rules.poll_interval,
                    });
                    Backend::Polling(poller)
                }
                Err(Fail::Watch(path, source)) => {
                    return Err(WatchError::Register { path, source });
                }
            },
        };
        let mut collector = Collector {
            rules,
            backend,
            status: Arc::clone(&status),
            source: SourceGuard::new(shared),
        };
        std::thread::Builder::new()
            .name("devloop-watch".into())
            .spawn(move || collector.run(&rx))
            .map_err(|source| WatchError::Thread {
                what: "watch",
                source,
            })?;
        Ok((Some(CollectorHandle { tx, status }), warnings))
    }

    pub(super) fn stop(self) {
        // The thread may be in the middle of a polling walk: it sees this when done, no need to wait.
        let _ = self.tx.send(Msg::Stop);
    }
}

/// The backend in use; notify turns to polling on a fallback.
enum Backend {
    Notify(Notifier),
    Polling(Poller),
}

/// The collector thread's state: the rules, the backend, and its way to publish.
struct Collector {
    rules: Rules,
    backend: Backend,
    status: Arc<Mutex<Status>>,
    /// Keeps the stream open while the thread lives; also the way to publish.
    source: SourceGuard,
}

impl Collector {
    fn run(&mut self, rx: &Receiver<Msg>) {
        loop {
            let timeout = match &self.backend {
                Backend::Notify(n) if n.missing.is_empty() => None,
                Backend::Notify(_) => Some(RECHECK),
                Backend::Polling(p) => Some(p.next_scan.saturating_duration_since(Instant::now())),
            };
            let msg = match timeout {
                None => rx.recv().map_err(|_| RecvTimeoutError::Disconnected),
                Some(t) => rx.recv_timeout(t),
            };
            let mut found = Found::default();
            let mut stop = false;
            match msg {
                Ok(Msg::Stop) | Err(RecvTimeoutError::Disconnected) => return,
                Ok(Msg::Event(event)) => {
                    self.on_event(event, &mut found);
                    for _ in 0..DRAIN_MAX {
                        match rx.try_recv() {
                            Ok(Msg::Event(event)) => self.on_event(event, &mut found),
                            Ok(Msg::Stop) => {
                                stop = true;
                                break;
                            }
                            Err(_) => break,
                        }
                    }
                }
                Err(RecvTimeoutError::Timeout) => {}
            }
            self.on_tick(&mut found);
            self.source.shared.publish(found);
            if stop {
                return;
            }
        }
    }

    fn on_event(&mut self, event: notify::Result<notify::Event>, found: &mut Found) {
        let event = match event {
            Ok(event) => event,
            Err(e) if matches!(e.kind, notify::ErrorKind::MaxFilesWatch) => {
                let path = e
                    .paths
                    .first()
                    .cloned()
                    .unwrap_or_else(|| self.rules.base_dir.clone());
                self.fall_back(path, found);
                return;
            }
            Err(e) => {
                found.warnings.push(WatchWarning::Failed {
                    message: describe(&e),
                });
                return;
            }
        };
        if event.need_rescan() {
            found.warnings.push(WatchWarning::EventsLost);
            found
                .paths
                .extend(self.rules.roots.iter().map(|r| r.path.clone()));
            if let Backend::Notify(n) = &mut self.backend {
                for i in 0..self.rules.roots.len() {
                    if let Err(fail) = n.register_root(&self.rules, i, found) {
                        self.on_fail(fail, found);
                        return;
                    }
                }
            }
        }
        #[derive(Clone, Copy)]
        enum Seen {
            Appeared,
            Removed,
            Changed,
            Either,
        }
        let seen = match event.kind {
            EventKind::Access(_)
            | EventKind::Modify(ModifyKind::Metadata(MetadataKind::AccessTime))
            // Reported as a `From` and a `To` of their own as well.
            | EventKind::Modify(ModifyKind::Name(RenameMode::Both)) => return,
            EventKind::Create(_) | EventKind::Modify(ModifyKind::Name(RenameMode::To)) => Seen::Appeared,
            EventKind::Remove(_) | EventKind::Modify(ModifyKind::Name(RenameMode::From)) => Seen::Removed,
            EventKind::Modify(ModifyKind::Name(_)) => Seen::Either,
            EventKind::Modify(_) | EventKind::Any | EventKind::Other => Seen::Changed,
        };
        for path in event.paths {
            let seen = match seen {
                Seen::Either if path.symlink_metadata().is_ok() => Seen::Appeared,
                Seen::Either => Seen::Removed,
                s => s,
            };
            let accepted = self.rules.accepts(&path);
            let Backend::Notify(n) = &mut self.backend else {
                if accepted {
                    found.paths.push(path);
                }
                continue;
            };
            match seen {
                Seen::Appeared if accepted => {
                    let result = n.appeared(&self.rules, &path, found);
                    found.paths.push(path);
                    if let Err(fail) = result {
                        self.on_fail(fail, found);
                        return;
                    }
                }
                Seen::Removed => {
                    n.removed(&self.rules, &path);
                    if accepted {
                        found.paths.push(path);
                    }
                }
                _ if accepted => found.paths.push(path),
                _ => {}
            }
        }
    }

    fn on_tick(&mut self, found: &mut Found) {
        let result = match &mut self.backend {
            Backend::Notify(n) => n.recheck_missing(&self.rules, found),
            Backend::Polling(p) => {
                p.poll(&self.rules, found, &self.status);
                Ok(())
            }
        };
        if let Err(fail) = result {
            self.on_fail(fail, found);
        }
    }

    fn on_fail(&mut self, fail: Fail, found: &mut Found) {
        match fail {
            Fail::Limit(path) => self.fall_back(path, found),
            Fail::Watch(path, e) => found.warnings.push(WatchWarning::Unwatchable {
                path,
                message: e.to_string(),
            }),
            Fail::Unavailable(message) => found.warnings.push(WatchWarning::Failed { message }),
        }
    }

    /// Out of inotify watches: drop them all and poll. Events may have been missed between the failure and the
    /// first snapshot, so every root is reported.
    fn fall_back(&mut self, path: PathBuf, found: &mut Found) {
        if matches!(self.backend, Backend::Polling(_)) {
            return;
        }
        tracing::debug!(path = %path.display(), "inotify watch limit reached, polling");
        self.backend =
            Backend::Polling(Poller::new(&self.rules, &self.status, &mut found.warnings));
        found.warnings.push(WatchWarning::WatchLimit {
            path,
            interval: self.rules.poll_interval,
        });
        found
            .paths
            .extend(self.rules.roots.iter().map(|r| r.path.clone()));
    }
}
