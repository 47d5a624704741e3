//! Time, a leaf: the dates devloop reads and writes — RFC 3339 (Kubernetes timestamps, build times), HTTP dates
//! (the API server's `Date` header) and a civil UTC breakdown for tag policies — through jiff, never parsed by hand.
//! Imports nothing of the crate; owns no clock but the system's.

use k8s_openapi::jiff;
use k8s_openapi::jiff::fmt::rfc2822;
use k8s_openapi::jiff::tz::TimeZone;

/// `2026-11-22T03:04:05Z` (any RFC 3339 offset or fraction) → Unix seconds.
pub fn unix_from_rfc3339(s: &str) -> Option<i64> {
    s.parse::<jiff::Timestamp>().ok().map(|t| t.as_second())
}

/// The current time in Unix seconds.
pub fn unix_now() -> i64 {
    jiff::Timestamp::now().as_second()
}

/// `Sun, 22 Nov 2026 03:04:05 GMT` (the HTTP `Date` header) → Unix seconds.
pub fn unix_from_http_date(s: &str) -> Option<i64> {
    rfc2822::parse(s).ok().map(|z| z.timestamp().as_second())
}

/// A UTC wall-clock time, broken down, for `BUILD_TIME` and the `dateTime` tag policy.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Timestamp {
    pub year: i64,
    pub month: u32,
    pub day: u32,
    pub hour: u32,
    pub minute: u32,
    pub second: u32,
}

impl Timestamp {
    /// The current time.
    pub fn now() -> Timestamp {
        Timestamp::from_unix(jiff::Timestamp::now().as_second())
    }

    /// The civil UTC time of `secs` Unix seconds (the epoch for a time jiff cannot represent).
    pub fn from_unix(secs: i64) -> Timestamp {
        let at = jiff::Timestamp::from_second(secs).unwrap_or(jiff::Timestamp::UNIX_EPOCH);
        let dt = at.to_zoned(TimeZone::UTC).datetime();
        Timestamp {
            year: i64::from(dt.year()),
            month: dt.month().unsigned_abs().into(),
            day: dt.day().unsigned_abs().into(),
            hour: dt.hour().unsigned_abs().into(),
            minute: dt.minute().unsigned_abs().into(),
            second: dt.second().unsigned_abs().into(),
        }
    }

    /// RFC 3339 (`2026-11-22T03:04:05Z`).
    pub fn rfc3339(&self) -> String {
        self.format("%Y-%m-%dT%H:%M:%SZ")
    }

    /// strftime subset: `%Y %m %d %H %M %S %%`.
    pub fn format(&self, fmt: &str) -> String {
        let mut out = String::new();
        let mut chars = fmt.chars();
        while let Some(c) = chars.next() {
            if c != '%' {
                out.push(c);
                continue;
            }
            match chars.next() {
                Some('Y') => out.push_str(&format!("{:04}", self.year)),
                Some('m') => out.push_str(&format!("{:02}", self.month)),
                Some('d') => out.push_str(&format!("{:02}", self.day)),
                Some('H') => out.push_str(&format!("{:02}", self.hour)),
                Some('M') => out.push_str(&format!("{:02}", self.minute)),
                Some('S') => out.push_str(&format!("{:02}", self.second)),
                Some('%') => out.push('%'),
                Some(other) => {
                    out.push('%');
                    out.push(other);
                }
                None => out.push('%'),
            }
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn dates_are_read_as_kubernetes_and_http_write_them() {
        assert_eq!(
            unix_from_rfc3339("2026-11-22T03:04:05Z"),
            Some(1_795_316_645)
        );
        assert_eq!(
            unix_from_rfc3339("2026-11-22T03:04:05.789357079Z"),
            Some(1_795_316_645)
        );
        assert_eq!(unix_from_rfc3339("1970-01-01T00:00:00Z"), Some(0));
        assert_eq!(
            unix_from_http_date("Sun, 22 Nov 2026 03:04:05 GMT"),
            Some(1_795_316_645)
        );
        assert_eq!(unix_from_http_date("garbage"), None);
        assert_eq!(unix_from_rfc3339("2026-11-22"), None);
    }

    #[test]
    fn timestamps() {
        let t = Timestamp::from_unix(1_795_316_645);
        assert_eq!(t.rfc3339(), "2026-11-22T03:04:05Z");
        assert_eq!(Timestamp::from_unix(0).rfc3339(), "1970-01-01T00:00:00Z");
        assert_eq!(
            Timestamp::from_unix(951_782_400).format("%Y-%m-%d"),
            "2000-02-29"
        );
        assert_eq!(t.format("%Y%m%d-%H%M%S %% %q"), "20261122-030405 % %q");
    }
}
