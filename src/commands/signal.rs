//! Signals, for commands: SIGINT, SIGTERM and SIGHUP → the command's stop token and exit code. The first signal
//! cancels the token (the command runs its bounded cleanup and returns, as on the first Ctrl-C), a second exits at
//! once with 128 + its number. The only code that reads signals; prints only through the console.

use std::convert::Infallible;
use std::future::Future;
use std::sync::OnceLock;

use tokio::signal::unix::{SignalKind, signal};
use tokio_util::sync::CancellationToken;

use crate::error::Error;
use crate::event::Event;
use crate::output::Console;

/// A signal that stops a command.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Signal {
    /// SIGINT: Ctrl-C.
    Interrupt,
    /// SIGTERM: `kill`, `timeout`, `docker stop`, an IDE's stop button.
    Terminate,
    /// SIGHUP: the terminal was closed.
    Hangup,
}

impl Signal {
    const ALL: [Signal; 3] = [Signal::Interrupt, Signal::Terminate, Signal::Hangup];

    /// The signal's number on Linux (and every Unix devloop runs on).
    pub fn number(self) -> u8 {
        match self {
            Signal::Hangup => 1,
            Signal::Interrupt => 2,
            Signal::Terminate => 15,
        }
    }

    /// `SIGINT`, `SIGTERM`, `SIGHUP`.
    pub fn name(self) -> &'static str {
        match self {
            Signal::Interrupt => "SIGINT",
            Signal::Terminate => "SIGTERM",
            Signal::Hangup => "SIGHUP",
        }
    }

    /// The exit code of a command this signal stopped: 128 + its number, as shells report it.
    pub fn exit_code(self) -> u8 {
        128 + self.number()
    }

    fn kind(self) -> SignalKind {
        match self {
            Signal::Interrupt => SignalKind::interrupt(),
            Signal::Terminate => SignalKind::terminate(),
            Signal::Hangup => SignalKind::hangup(),
        }
    }
}

/// The process's stop: signals are process-wide, so is the one token they cancel.
struct Stop {
    token: CancellationToken,
    first: OnceLock<Signal>,
}

static STOP: OnceLock<Stop> = OnceLock::new();

fn stop() -> &'static Stop {
    STOP.get_or_init(|| Stop {
        token: CancellationToken::new(),
        first: OnceLock::new(),
    })
}

/// The command's stop token: cancelled by the first signal. Commands pass it (or children of it) to the stages.
pub fn token() -> CancellationToken {
    stop().token.clone()
}

/// The first signal received, if any.
pub fn received() -> Option<Signal> {
    stop().first.get().copied()
}

/// Installs the handlers for SIGINT, SIGTERM and SIGHUP now (from then on they no longer kill the process) and
/// returns the future that serves them; it never completes, so race the command against it. A handler that cannot
/// be installed leaves that signal its default action.
pub fn listen(console: Console) -> impl Future<Output = Infallible> {
    let mut streams: Vec<(Signal, tokio::signal::unix::Signal)> = Vec::new();
    for s in Signal::ALL {
        match signal(s.kind()) {
            Ok(stream) => streams.push((s, stream)),
            Err(e) => {
                tracing::debug!(signal = s.name(), error = %e, "cannot listen for the signal")
            }
        }
    }
    async move {
        loop {
            if streams.is_empty() {
                return std::future::pending().await;
            }
            let next = futures_util::future::select_all(
                streams
                    .iter_mut()
                    .map(|(s, stream)| Box::pin(async move { stream.recv().await.map(|()| *s) })),
            );
            let Some(sig) = next.await.0 else {
                // No handler, or the runtime is shutting down: nothing more will arrive.
                return std::future::pending().await;
            };
            on_signal(sig, &console);
        }
    }
}

/// First signal: cancel the stop token. Any later one: exit now.
fn on_signal(sig: Signal, console: &Console) {
    let stop = stop();
    if stop.first.set(sig).is_ok() {
        console.info(&format!(
            "{}: stopping and cleaning up (again to exit at once)",
            sig.name()
        ));
        stop.token.cancel();
        return;
    }
    console.sink().emit(Event::Warning {
        message: format!(
            "{}: exiting without finishing the cleanup; `devloop delete` removes what is left",
            sig.name()
        ),
    });
    console.finish();
    std::process::exit(i32::from(sig.exit_code()));
}

/// A command's result once signals are accounted for: after a signal the exit code is 128 + its number whatever
/// the command returned; an error other than the cancellation itself is still reported.
pub fn outcome(result: Result<(), Error>) -> Result<(), Error> {
    match received() {
        None => result,
        Some(sig) => Err(Error::Interrupted {
            signal: sig.name(),
            code: sig.exit_code(),
            cause: result.err().filter(|e| !e.is_cancelled()).map(Box::new),
        }),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn exit_codes_are_128_plus_the_signal_number() {
        assert_eq!(Signal::Interrupt.exit_code(), 130);
        assert_eq!(Signal::Terminate.exit_code(), 143);
        assert_eq!(Signal::Hangup.exit_code(), 129);
    }
}
