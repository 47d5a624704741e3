//! Time, a leaf: the dates devloop reads and writes — RFC 3339 (Kubernetes timestamps, build times), HTTP dates
//! (the API server's `Date` header) and a civil UTC breakdown for tag policies — through jiff, never parsed by hand.
//! Imports nothing of the crate; owns no clock but the system's.

pub use k8s_openapi::jiff::Timestamp;
use k8s_openapi::jiff::fmt::rfc2822;
use k8s_openapi::jiff::tz::TimeZone;

/// `2026-11-22T03:04:05Z` (any RFC 3339 offset or fraction) → Unix seconds.
pub fn unix_from_rfc3339(s: &str) -> Option<i64> {
    s.parse::<Timestamp>().ok().map(|t| t.as_second())
}

/// `Sun, 22 Nov 2026 03:04:05 GMT` (the HTTP `Date` header) → Unix seconds.
pub fn unix_from_http_date(s: &str) -> Option<i64> {
    rfc2822::parse(s).ok().map(|z| z.timestamp().as_second())
}

/// A UTC wall-clock time broken down into its civil fields.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Civil {
    pub year: i64,
    pub month: u32,
    pub day: u32,
    pub hour: u32,
    pub minute: u32,
    pub second: u32,
}

impl Civil {
    /// The civil UTC time of `secs` Unix seconds (the epoch for a time jiff cannot represent).
    pub fn from_unix(secs: i64) -> Civil {
        let at = Timestamp::from_second(secs).unwrap_or(Timestamp::UNIX_EPOCH);
        let dt = at.to_zoned(TimeZone::UTC).datetime();
        Civil {
            year: i64::from(dt.year()),
            month: dt.month().unsigned_abs().into(),
            day: dt.day().unsigned_abs().into(),
            hour: dt.hour().unsigned_abs().into(),
            minute: dt.minute().unsigned_abs().into(),
            second: dt.second().unsigned_abs().into(),
        }
    }

    /// The current civil UTC time.
    pub fn now() -> Civil {
        Civil::from_unix(Timestamp::now().as_second())
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
    fn civil_fields_of_unix_seconds() {
        let c = Civil::from_unix(1_795_316_645);
        assert_eq!(
            (c.year, c.month, c.day, c.hour, c.minute, c.second),
            (2026, 11, 22, 3, 4, 5)
        );
        let leap = Civil::from_unix(951_782_400); // 2000-02-29T00:00:00Z
        assert_eq!((leap.year, leap.month, leap.day), (2000, 2, 29));
        assert_eq!(Civil::from_unix(0).year, 1970);
    }
}
