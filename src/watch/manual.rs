//! Watch stage, the manual trigger (`--trigger manual`, Enter): lines read from an input on a thread of its own
//! → a manual change in the pending set, released at once. The input counts as a producer while it is open, so
//! in manual mode the stream ends with it. Never reads signals and never prints.

use std::io::{BufRead, BufReader, Read};
use std::sync::Arc;

use super::change_set::{Shared, SourceGuard};
use super::error::WatchError;

/// Starts the thread that turns each line of `input` into a manual trigger. The thread ends at end of input (a
/// blocked read of stdin cannot be interrupted; it ends with the process).
pub(super) fn read_triggers<R: Read + Send + 'static>(
    shared: &Arc<Shared>,
    input: R,
) -> Result<(), WatchError> {
    let guard = SourceGuard::new(shared);
    std::thread::Builder::new()
        .name("devloop-manual".into())
        .spawn(move || {
            let mut input = BufReader::new(input);
            let mut line = Vec::new();
            loop {
                line.clear();
                match input.read_until(b'\n', &mut line) {
                    Ok(0) => break,
                    Ok(_) => guard.shared.publish_manual(),
                    Err(e) => {
                        tracing::debug!(error = %e, "manual trigger input failed");
                        break;
                    }
                }
            }
        })
        .map_err(|source| WatchError::Thread {
            what: "manual trigger",
            source,
        })?;
    Ok(())
}
