//! Hints, a leaf: the `hint: …` line that ends a devloop message when the user can do something. Imports nothing
//! of the crate; every stage's errors use it, so no stage needs the aggregate error to word one.

use std::fmt;

/// A hint ending a message: displays as a blank line, then `hint: …`. Use it in an error's format string
/// (`#[error("… is not writable{}", Hint("fix its permissions"))]`) so the wording of every hint has one source.
#[derive(Debug, Clone, Copy)]
pub struct Hint<T>(pub T);

impl<T: fmt::Display> fmt::Display for Hint<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "\n\nhint: {}", self.0)
    }
}

/// An optional hint: nothing when there is none, else the same ending as [`Hint`].
pub fn suffix(hint: &Option<String>) -> String {
    hint.as_deref()
        .map(|h| Hint(h).to_string())
        .unwrap_or_default()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_hint_follows_a_blank_line() {
        assert_eq!(format!("bad{}", Hint("fix it")), "bad\n\nhint: fix it");
        assert_eq!(suffix(&Some("x".into())), "\n\nhint: x");
        assert_eq!(suffix(&None), "");
    }
}
