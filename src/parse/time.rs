//! From a line's time stamp to seconds since the epoch. Owns year inference
//! for syslog stamps (which carry none: a December line read in January is
//! last year's; no line is ever placed in the future), RFC 3339 offsets, and
//! the read time for bare lines. Consecutive lines mostly share a stamp, so
//! the last answer is cached.

use chrono::{DateTime, Datelike, FixedOffset, Local, NaiveDateTime, TimeZone, Utc};

use super::Stamp;

/// Resolves stamps relative to a fixed "now".
pub struct Clock {
    now: DateTime<Utc>,
    cache: Vec<u8>,
    cached: i64,
}

/// Slack for clocks that disagree a little (a log written by another host).
const FUTURE_SLACK: i64 = 24 * 3600;

impl Clock {
    pub fn new(now: DateTime<Utc>) -> Clock {
        Clock { now, cache: Vec::new(), cached: 0 }
    }

    /// A clock at the current time, or at `BADGUYS_NOW` (RFC 3339) when
    /// that is set: tests use it to replay a year rollover or an expiry.
    pub fn system() -> Clock {
        let now = std::env::var("BADGUYS_NOW")
            .ok()
            .and_then(|s| DateTime::parse_from_rfc3339(&s).ok())
            .map_or_else(Utc::now, |t| t.with_timezone(&Utc));
        Clock::new(now)
    }

    pub fn now(&self) -> i64 {
        self.now.timestamp()
    }

    /// Seconds since the epoch for `stamp`; the read time ("now") when it
    /// is missing or cannot be understood. Never later than now.
    pub fn resolve(&mut self, stamp: Stamp<'_>) -> i64 {
        let raw = match stamp {
            Stamp::Syslog(b) | Stamp::Rfc3339(b) => b,
            Stamp::None => return self.now(),
        };
        if raw == self.cache.as_slice() {
            return self.cached;
        }
        let t = match stamp {
            Stamp::Syslog(b) => self.syslog(b),
            Stamp::Rfc3339(b) => rfc3339(b),
            Stamp::None => None,
        };
        let t = t.unwrap_or(self.now()).min(self.now());
        self.cache.clear();
        self.cache.extend_from_slice(raw);
        self.cached = t;
        t
    }

    /// `Oct  1 14:42:51` in local time: this year, unless that would be
    /// more than a day in the future, then last year.
    fn syslog(&self, b: &[u8]) -> Option<i64> {
        let s = std::str::from_utf8(b).ok()?;
        let year = self.now.with_timezone(&Local).year();
        for y in [year, year - 1] {
            let date = NaiveDateTime::parse_from_str(&format!("{y} {s}"), "%Y %b %e %H:%M:%S").ok()?;
            let t = local(date)?;
            if t <= self.now() + FUTURE_SLACK {
                return Some(t);
            }
        }
        None
    }
}

fn local(date: NaiveDateTime) -> Option<i64> {
    // A time skipped by a DST change does not exist locally: take the hour after.
    Local
        .from_local_datetime(&date)
        .earliest()
        .or_else(|| Local.from_local_datetime(&(date + chrono::Duration::hours(1))).earliest())
        .map(|t| t.timestamp())
}

fn rfc3339(b: &[u8]) -> Option<i64> {
    let s = std::str::from_utf8(b).ok()?;
    DateTime::parse_from_rfc3339(s)
        .or_else(|_| DateTime::<FixedOffset>::parse_from_str(s, "%Y-%m-%dT%H:%M:%S%.f%z"))
        .ok()
        .map(|t| t.timestamp())
}

/// `YYYY-MM-DD` for reports (UTC).
pub fn day(t: i64) -> String {
    DateTime::from_timestamp(t, 0).map_or_else(|| "?".into(), |d| d.format("%Y-%m-%d").to_string())
}

/// RFC 3339 in UTC, seconds precision, for output.
pub fn iso(t: i64) -> String {
    DateTime::from_timestamp(t, 0).map_or_else(|| "?".into(), |d| d.format("%Y-%m-%dT%H:%M:%SZ").to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn at(s: &str) -> Clock {
        Clock::new(DateTime::parse_from_rfc3339(s).unwrap().with_timezone(&Utc))
    }

    #[test]
    fn rfc3339_offsets_are_respected() {
        let mut c = at("2025-01-01T00:00:00Z");
        let a = c.resolve(Stamp::Rfc3339(b"2024-10-01T14:42:51.123456+02:00"));
        let b = c.resolve(Stamp::Rfc3339(b"2024-10-01T12:42:51Z"));
        assert_eq!(a, b);
        assert_eq!(c.resolve(Stamp::Rfc3339(b"2024-10-01T14:42:51+0200")), a);
    }

    #[test]
    fn year_rollover_and_never_in_the_future() {
        let mut c = at("2025-01-02T12:00:00Z");
        let dec = c.resolve(Stamp::Syslog(b"Dec 31 23:59:00"));
        assert_eq!(DateTime::from_timestamp(dec, 0).unwrap().with_timezone(&Local).year(), 2024);
        let jan = c.resolve(Stamp::Syslog(b"Jan  2 10:00:00"));
        assert_eq!(DateTime::from_timestamp(jan, 0).unwrap().with_timezone(&Local).year(), 2025);
        // A future RFC 3339 stamp (skewed clock) is clamped to now.
        assert_eq!(c.resolve(Stamp::Rfc3339(b"2030-01-01T00:00:00Z")), c.now());
        assert_eq!(c.resolve(Stamp::None), c.now());
        assert_eq!(c.resolve(Stamp::Syslog(b"Foo 99 99:99:99")), c.now());
    }
}
