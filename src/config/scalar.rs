//! Config, values as written: a port (a number or a name) and a duration (`5s`, `1m30s`, `250ms`). Leaves of the
//! config folder: they import nothing of it.

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

/// A port as written: a number or a name.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize, Serialize, JsonSchema)]
#[serde(untagged)]
pub enum RawPort {
    Number(u16),
    Name(String),
}

impl Default for RawPort {
    fn default() -> Self {
        RawPort::Number(0)
    }
}

/// Parses `5s`, `1m30s`, `250ms` into nanoseconds.
pub fn parse_duration_ns(s: &str) -> Option<i64> {
    let mut total: i64 = 0;
    let mut number = String::new();
    let mut chars = s.chars().peekable();
    while let Some(c) = chars.next() {
        if c.is_ascii_digit() {
            number.push(c);
            continue;
        }
        let n: i64 = number.parse().ok()?;
        number.clear();
        let unit = match (c, chars.peek()) {
            ('m', Some('s')) => {
                chars.next();
                1_000_000
            }
            ('h', _) => 3_600_000_000_000,
            ('m', _) => 60_000_000_000,
            ('s', _) => 1_000_000_000,
            _ => return None,
        };
        total = total.checked_add(n.checked_mul(unit)?)?;
    }
    (number.is_empty() && !s.is_empty()).then_some(total)
}
