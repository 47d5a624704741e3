//! Events, the sink: where stages send their events → a function (the output, or memory in tests). Cheap to
//! clone, thread-safe; it formats nothing.

use std::sync::{Arc, Mutex};

use super::Event;

type Emit = dyn Fn(Event) + Send + Sync;

/// Where stages send their events. Cheap to clone; thread-safe.
#[derive(Clone)]
pub struct EventSink(Arc<Emit>);

impl EventSink {
    /// A sink that hands every event to `f`.
    pub fn new(f: impl Fn(Event) + Send + Sync + 'static) -> Self {
        EventSink(Arc::new(f))
    }

    /// A sink that keeps events in memory, for tests.
    pub fn collector() -> (EventSink, Arc<Mutex<Vec<Event>>>) {
        let events = Arc::new(Mutex::new(Vec::new()));
        let store = Arc::clone(&events);
        let sink = EventSink::new(move |e| {
            if let Ok(mut v) = store.lock() {
                v.push(e);
            }
        });
        (sink, events)
    }

    /// Reports one event.
    pub fn emit(&self, event: Event) {
        (self.0)(event)
    }
}

impl std::fmt::Debug for EventSink {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("EventSink")
    }
}
