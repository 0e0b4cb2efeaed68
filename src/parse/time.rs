//! From a line's time stamp to seconds since the epoch. Owns year inference
//! for syslog stamps (which carry none: a December line read in January is
//! last year's; no line is ever placed in the future), RFC 3339 offsets, and
//! the read time for bare lines. Consecutive lines mostly share a stamp, so
//! the last answer is cached.

use chrono::{DateTime, Datelike, FixedOffset, Local, NaiveDate, NaiveDateTime, TimeZone, Timelike, Utc};

use super::Stamp;

/// Resolves stamps relative to a fixed "now".
pub struct Clock {
    now: DateTime<Utc>,
    /// The local year of "now".
    year: i32,
    cache: Vec<u8>,
    cached: i64,
    /// The last syslog stamp parsed in full, less its two digits of
    /// seconds, when it fell in this year: a stamp of the same minute is
    /// `minute_base` plus its seconds (a first sync meets a new stamp at
    /// nearly every event, and the full parse was a fifth of counting one).
    minute: Vec<u8>,
    minute_base: i64,
    /// Local UTC offset for one local hour: DST changes fall on hour
    /// boundaries, so an hour's offset serves all its seconds.
    hour: Option<((i32, u32, u32, u32), i64)>,
}

/// Slack for clocks that disagree a little (a log written by another host).
const FUTURE_SLACK: i64 = 24 * 3600;

impl Clock {
    pub fn new(now: DateTime<Utc>) -> Clock {
        Clock {
            now,
            year: now.with_timezone(&Local).year(),
            cache: Vec::new(),
            cached: 0,
            minute: Vec::new(),
            minute_base: 0,
            hour: None,
        }
    }

    /// A clock at the current time, or at `BADGUYS_NOW` (RFC 3339) when
    /// that is set in a debug build: tests use it to replay a year rollover
    /// or an expiry.
    pub fn system() -> Clock {
        let now = crate::debug_env("BADGUYS_NOW")
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
            Stamp::Syslog(b) => self.same_minute(b).or_else(|| self.syslog(b)),
            Stamp::Rfc3339(b) => rfc3339(b),
            Stamp::None => None,
        };
        let t = t.unwrap_or(self.now()).min(self.now());
        self.cache.clear();
        self.cache.extend_from_slice(raw);
        self.cached = t;
        t
    }

    /// `b` as [`Clock::syslog`] reads it, when it is of the minute it read
    /// last in full: the same month, day, hour and minute of this year,
    /// seconds 0 to 59, and not past the slack (else the full parse decides).
    fn same_minute(&self, b: &[u8]) -> Option<i64> {
        let (head, ss) = b.split_at_checked(b.len().checked_sub(2)?)?;
        if self.minute.is_empty() || head != self.minute.as_slice() || !ss.iter().all(u8::is_ascii_digit) {
            return None;
        }
        let sec = i64::from(ss[0] - b'0') * 10 + i64::from(ss[1] - b'0');
        let t = self.minute_base + sec;
        (sec < 60 && t <= self.now() + FUTURE_SLACK).then_some(t)
    }

    /// `Oct  1 14:42:51` in local time: this year, unless that would be
    /// more than a day in the future, then last year.
    fn syslog(&mut self, b: &[u8]) -> Option<i64> {
        let (month, day, h, m, sec) = syslog_fields(b)?;
        for y in [self.year, self.year - 1] {
            let Some(date) = NaiveDate::from_ymd_opt(y, month, day).and_then(|d| d.and_hms_opt(h, m, sec)) else {
                continue;
            };
            let key = (y, month, day, h);
            let offset = match self.hour {
                Some((k, off)) if k == key => off,
                _ => {
                    let hour_start = date.with_minute(0).and_then(|d| d.with_second(0)).unwrap_or(date);
                    let off = hour_start.and_utc().timestamp() - local(hour_start)?;
                    self.hour = Some((key, off));
                    off
                }
            };
            let t = date.and_utc().timestamp() - offset;
            if t <= self.now() + FUTURE_SLACK {
                if y == self.year && b.len() >= 3 && b[b.len() - 3] == b':' {
                    self.minute.clear();
                    self.minute.extend_from_slice(&b[..b.len() - 2]);
                    self.minute_base = t - i64::from(sec);
                }
                return Some(t);
            }
        }
        None
    }
}

/// Month, day, hour, minute, second of `Oct  1 14:42:51` / `Oct 1 14:42:51`.
fn syslog_fields(b: &[u8]) -> Option<(u32, u32, u32, u32, u32)> {
    const MONTHS: [&[u8; 3]; 12] =
        [b"Jan", b"Feb", b"Mar", b"Apr", b"May", b"Jun", b"Jul", b"Aug", b"Sep", b"Oct", b"Nov", b"Dec"];
    let month = MONTHS.iter().position(|m| b.get(..3) == Some(&m[..]))? as u32 + 1;
    let rest = b.get(4..)?;
    let rest = rest.strip_prefix(b" ").unwrap_or(rest);
    let sp = rest.iter().position(|&c| c == b' ')?;
    let num = |d: &[u8]| -> Option<u32> {
        (!d.is_empty() && d.len() <= 2 && d.iter().all(u8::is_ascii_digit))
            .then(|| d.iter().fold(0, |v, &c| v * 10 + u32::from(c - b'0')))
    };
    let day = num(&rest[..sp])?;
    let t = rest.get(sp + 1..)?;
    if t.len() != 8 || t[2] != b':' || t[5] != b':' {
        return None;
    }
    Some((month, day, num(&t[..2])?, num(&t[3..5])?, num(&t[6..8])?))
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
    fn hand_parsed_stamps_agree_with_chrono() {
        let mut c = at("2025-07-15T12:00:00Z");
        for s in [
            "Jan  1 00:00:00",
            "Feb 29 12:30:59",
            "Mar 30 02:30:00",
            "Oct 26 02:30:00",
            "Jul 15 11:59:59",
            "Dec 31 23:59:59",
            "Jun 9 07:05:03",
        ] {
            let slow = [2025, 2024].into_iter().find_map(|y| {
                let d = NaiveDateTime::parse_from_str(&format!("{y} {s}"), "%Y %b %e %H:%M:%S").ok()?;
                local(d).filter(|&t| t <= c.now() + FUTURE_SLACK)
            });
            assert_eq!(c.resolve(Stamp::Syslog(s.as_bytes())), slow.unwrap_or(c.now()).min(c.now()), "{s}");
        }
        for bad in ["Foo  1 00:00:00", "Jan 32 00:00:00", "Jan  1 24:00:00", "Jan  1 0:00:00", "Jan"] {
            assert_eq!(c.resolve(Stamp::Syslog(bad.as_bytes())), c.now(), "{bad}");
        }
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

    /// The minute cache gives what a full parse gives, on runs of stamps
    /// that share minutes, straddle the slack past "now" and the new year,
    /// and carry impossible seconds and dates.
    #[test]
    fn the_minute_cache_answers_as_the_full_parse() {
        const MONTHS: [&str; 4] = ["Dec", "Jan", "Feb", "Mar"];
        for now in ["2025-01-01T00:30:00Z", "2024-02-29T12:00:00Z", "2025-03-01T23:59:30Z"] {
            let mut cached = at(now);
            let mut seed = 0x9e37_79b9_7f4a_7c15u64;
            let mut next = |n: u64| {
                seed ^= seed << 13;
                seed ^= seed >> 7;
                seed ^= seed << 17;
                seed % n
            };
            let (mut m, mut d, mut h, mut mi) = (0, 1, 0, 0);
            for _ in 0..20_000 {
                // Mostly the same minute as the line before, now and then another.
                if next(8) == 0 {
                    (m, d, h, mi) = (next(4) as usize, 1 + next(31), next(24), next(60));
                }
                let sec = next(62);
                let sep = if d < 10 && next(2) == 0 { "  " } else { " " };
                let stamp = format!("{}{sep}{d} {h:02}:{mi:02}:{sec:02}", MONTHS[m]);
                let want = at(now).resolve(Stamp::Syslog(stamp.as_bytes()));
                assert_eq!(cached.resolve(Stamp::Syslog(stamp.as_bytes())), want, "{stamp} at {now}");
            }
        }
    }
}
