//! Connectivity: what the long-lived streams (pod watch, log streams, port-forwards) learn about reaching the API
//! server → one `clusterUnreachable` event when the first of them cannot connect and one `clusterReachable` when
//! the server answers again, however many streams notice; plus the jittered exponential backoff they reconnect
//! with. Emits events only (never prints), spawns nothing: every wait runs in the caller's task.

use std::error::Error as StdError;
use std::fmt;
use std::hash::{BuildHasher, RandomState};
use std::pin::Pin;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use futures_util::stream::{Stream, StreamExt};
use kube::Client;
use tokio::sync::Notify;
use tokio::time::Instant;

use crate::event::{Event, EventSink};

/// First reconnect delay.
const FIRST_DELAY: Duration = Duration::from_millis(250);
/// Longest reconnect delay: a returning server is noticed within this long (plus the jitter's share of it).
const MAX_DELAY: Duration = Duration::from_secs(4);

/// Exponential backoff with jitter: 250 ms doubling up to 4 s, each delay drawn from its upper half so that
/// streams that broke together do not reconnect together.
#[derive(Debug, Clone)]
pub struct Backoff {
    next: Duration,
    first: Duration,
    max: Duration,
}

impl Backoff {
    /// The backoff devloop's streams reconnect with.
    pub fn new() -> Self {
        Backoff::with_bounds(FIRST_DELAY, MAX_DELAY)
    }

    /// A backoff from `first` doubling up to `max`.
    pub fn with_bounds(first: Duration, max: Duration) -> Self {
        Backoff {
            next: first,
            first,
            max,
        }
    }

    /// The next delay (jittered), and the one after it doubles.
    pub fn next_delay(&mut self) -> Duration {
        let base = self.next;
        self.next = (self.next * 2).min(self.max);
        jitter(base)
    }

    /// Back to the first delay (after a success).
    pub fn reset(&mut self) {
        self.next = self.first;
    }
}

/// So kube's `StreamBackoff` (`WatchStreamExt::backoff`) can pace a watcher with it.
impl Iterator for Backoff {
    type Item = Duration;

    fn next(&mut self) -> Option<Duration> {
        Some(self.next_delay())
    }
}

impl kube::runtime::utils::Backoff for Backoff {
    fn reset(&mut self) {
        Backoff::reset(self);
    }
}

impl Default for Backoff {
    fn default() -> Self {
        Backoff::new()
    }
}

/// `d` scaled by a random factor in [0.5, 1.0).
pub fn jitter(d: Duration) -> Duration {
    // A fresh `RandomState` is randomly keyed: enough randomness for spreading retries, no dependency.
    let r = RandomState::new().hash_one(Instant::now());
    let fraction = (r % 1000) as f64 / 2000.0;
    d.mul_f64(0.5 + fraction)
}

/// Whether a kube error means the request did not reach the API server (refused, reset, timed out, DNS, TLS) as
/// opposed to an answer from it.
pub fn is_connection_error(e: &kube::Error) -> bool {
    matches!(e, kube::Error::Service(_) | kube::Error::HyperError(_))
}

/// The innermost cause of an error: `Connection refused (os error 111)` rather than `client error (Connect)`.
pub fn root_cause(e: &(dyn StdError + 'static)) -> String {
    let mut cause = e;
    while let Some(next) = cause.source() {
        cause = next;
    }
    cause.to_string()
}

/// The shared view of whether the cluster's API server can be reached. Cheap to clone.
#[derive(Clone)]
pub struct Connectivity(Arc<Inner>);

struct Inner {
    client: Client,
    server: String,
    events: EventSink,
    /// Since when the server has been unreachable (`None`: reachable).
    down: Mutex<Option<Instant>>,
    /// Woken when the server is found reachable again.
    back: Notify,
}

impl fmt::Debug for Connectivity {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Connectivity")
            .field("server", &self.0.server)
            .finish()
    }
}

impl Connectivity {
    /// A monitor for the API server at `server` (its URL, for messages) that `client` talks to.
    pub fn new(client: Client, server: impl Into<String>, events: EventSink) -> Self {
        Connectivity(Arc::new(Inner {
            client,
            server: server.into(),
            events,
            down: Mutex::new(None),
            back: Notify::new(),
        }))
    }

    /// The client the streams use.
    pub fn client(&self) -> &Client {
        &self.0.client
    }

    fn down(&self) -> std::sync::MutexGuard<'_, Option<Instant>> {
        self.0
            .down
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    /// Whether the server is currently known to be unreachable.
    pub fn is_unreachable(&self) -> bool {
        self.down().is_some()
    }

    /// A stream could not connect: the first report since the server was last reachable becomes the event.
    pub fn lost(&self, error: &str) {
        let first = {
            let mut down = self.down();
            let first = down.is_none();
            if first {
                *down = Some(Instant::now());
            }
            first
        };
        if first {
            self.0.events.emit(Event::ClusterUnreachable {
                server: self.0.server.clone(),
                error: error.to_string(),
            });
        }
    }

    /// A request got an answer: if the server was unreachable, it is back (reported once).
    pub fn found(&self) {
        let since = self.down().take();
        if let Some(since) = since {
            self.0.events.emit(Event::ClusterReachable {
                server: self.0.server.clone(),
                down_ms: u64::try_from(since.elapsed().as_millis()).unwrap_or(u64::MAX),
            });
            self.0.back.notify_waiters();
        }
    }

    /// Waits `delay`, or less when another stream finds the server reachable meanwhile.
    pub async fn pause(&self, delay: Duration) {
        let back = self.0.back.notified();
        if !self.is_unreachable() {
            tokio::time::sleep(delay).await;
            return;
        }
        tokio::select! {
            () = back => {}
            () = tokio::time::sleep(delay) => {}
        }
    }

    /// Waits until the API server answers (`GET /version`), probing with `backoff`; returns at once when another
    /// stream found it reachable meanwhile.
    pub async fn recover(&self, backoff: &mut Backoff) {
        while self.is_unreachable() {
            self.pause(backoff.next_delay()).await;
            if !self.is_unreachable() {
                break;
            }
            match self.0.client.apiserver_version().await {
                Ok(_) => self.found(),
                Err(e) => tracing::debug!(error = %e, "API server probe failed"),
            }
        }
        backoff.reset();
    }

    /// A kube watcher stream that survives the API server going away: errors are not passed on; a connection
    /// error is reported and the stream waits (probing with backoff) until the server answers, other errors wait
    /// the backoff; then the watcher resumes where it was (it re-lists when the server says 410 Gone).
    pub fn resilient<T, S>(&self, stream: S) -> Pin<Box<dyn Stream<Item = T> + Send>>
    where
        T: Send + 'static,
        S: Stream<Item = Result<T, kube::runtime::watcher::Error>> + Send + 'static,
    {
        let state = (Box::pin(stream), Backoff::new(), self.clone());
        futures_util::stream::unfold(state, |(mut stream, mut backoff, conn)| async move {
            loop {
                match stream.next().await? {
                    Ok(item) => {
                        backoff.reset();
                        conn.found();
                        return Some((item, (stream, backoff, conn)));
                    }
                    Err(e) => {
                        tracing::debug!(error = %e, "watch error");
                        match watch_cause(&e) {
                            Some(k) if is_connection_error(k) => {
                                conn.lost(&root_cause(k));
                                conn.recover(&mut backoff).await;
                            }
                            _ => conn.pause(backoff.next_delay()).await,
                        }
                    }
                }
            }
        })
        .boxed()
    }
}

/// The client error behind a watcher error, if it has one.
fn watch_cause(e: &kube::runtime::watcher::Error) -> Option<&kube::Error> {
    use kube::runtime::watcher::Error as W;
    match e {
        W::InitialListFailed(k) | W::WatchStartFailed(k) | W::WatchFailed(k) => Some(k),
        _ => None,
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn backoff_doubles_up_to_the_cap_with_jitter_in_the_upper_half() {
        let mut b = Backoff::with_bounds(Duration::from_millis(100), Duration::from_millis(400));
        let bases = [100, 200, 400, 400, 400];
        for base in bases {
            let d = b.next_delay().as_millis() as u64;
            assert!(d >= base / 2 && d < base, "{d} for base {base}");
        }
        b.reset();
        assert!(b.next_delay() < Duration::from_millis(100));
    }

    #[tokio::test]
    async fn many_reports_make_one_event_each_way() {
        let (events, seen) = EventSink::collector();
        let client =
            Client::try_from(kube::Config::new("http://127.0.0.1:9".parse().unwrap())).unwrap();
        let conn = Connectivity::new(client, "http://127.0.0.1:9", events);
        conn.found();
        for _ in 0..50 {
            conn.lost("Connection refused (os error 111)");
        }
        for _ in 0..50 {
            conn.found();
        }
        let seen = seen.lock().unwrap();
        assert_eq!(seen.len(), 2, "{seen:?}");
        assert!(
            matches!(&seen[0], Event::ClusterUnreachable { error, .. } if error.contains("refused"))
        );
        assert!(matches!(&seen[1], Event::ClusterReachable { .. }));
    }
}
