//! Log line headers: classic syslog (`Oct  1 14:42:51 host prog[pid]: `),
//! RFC 3339 (`2024-10-01T14:42:51.123456+00:00 host prog[pid]: `), and bare
//! messages as `sshd -E FILE` writes them. Owns splitting a line into time
//! stamp, host, program, pid and message; never allocates.

/// The time stamp of a line, unparsed: most lines never need it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Stamp<'a> {
    /// `Oct  1 14:42:51` (no year, local time).
    Syslog(&'a [u8]),
    /// `2024-10-01T14:42:51.123456+00:00`.
    Rfc3339(&'a [u8]),
    /// A bare line: the time it was read.
    None,
}

/// A line split at its header.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Line<'a> {
    /// `STAMP HOST PROG[PID]: MESSAGE` or `STAMP HOST PROG: MESSAGE`.
    Tagged { stamp: Stamp<'a>, host: &'a [u8], program: &'a [u8], pid: Option<u32>, message: &'a [u8] },
    /// `STAMP HOST TEXT` with no program tag, as syslogd writes
    /// `last message repeated N times`.
    Untagged { stamp: Stamp<'a>, host: &'a [u8], text: &'a [u8] },
    /// No header: the whole line is the message.
    Bare(&'a [u8]),
}

/// Splits `line` (without its newline).
pub fn split(line: &[u8]) -> Line<'_> {
    let (stamp, rest) = match stamp(line) {
        Some(x) => x,
        None => return Line::Bare(line),
    };
    let Some((host, rest)) = token(rest) else {
        return Line::Bare(line);
    };
    match tag(rest) {
        Some((program, pid, message)) => Line::Tagged { stamp, host, program, pid, message },
        None => Line::Untagged { stamp, host, text: rest },
    }
}

/// Recognizes a time stamp at the start of the line and returns it with the
/// rest after the following space.
fn stamp(line: &[u8]) -> Option<(Stamp<'_>, &[u8])> {
    let b = line;
    if b.len() >= 16
        && b[0].is_ascii_uppercase()
        && b[1].is_ascii_lowercase()
        && b[2].is_ascii_lowercase()
        && b[3] == b' '
    {
        // Day: " 1", "01", "1" (unpadded) or "10".
        let (day_end, ok) = match (b[4], b[5]) {
            (b' ', d) if d.is_ascii_digit() => (6, true),
            (d1, d2) if d1.is_ascii_digit() && d2.is_ascii_digit() => (6, true),
            (d, b' ') if d.is_ascii_digit() => (5, true),
            _ => (0, false),
        };
        if !ok || b.get(day_end) != Some(&b' ') {
            return None;
        }
        let t = b.get(day_end + 1..day_end + 10)?;
        if is_clock(&t[..8]) && t[8] == b' ' {
            return Some((Stamp::Syslog(&b[..day_end + 9]), &b[day_end + 10..]));
        }
        return None;
    }
    if b.len() >= 20 && b[..4].iter().all(u8::is_ascii_digit) && b[4] == b'-' && b[7] == b'-' && b[10] == b'T' {
        let end = memchr::memchr(b' ', b)?;
        if is_clock(&b[11..19]) {
            return Some((Stamp::Rfc3339(&b[..end]), &b[end + 1..]));
        }
    }
    None
}

fn is_clock(t: &[u8]) -> bool {
    t.len() == 8 && t[2] == b':' && t[5] == b':' && [0, 1, 3, 4, 6, 7].iter().all(|&i| t[i].is_ascii_digit())
}

/// A non-empty token up to the next space; returns it and what follows the space.
fn token(b: &[u8]) -> Option<(&[u8], &[u8])> {
    let end = memchr::memchr(b' ', b)?;
    if end == 0 {
        return None;
    }
    Some((&b[..end], &b[end + 1..]))
}

/// `prog[pid]: msg` or `prog: msg`.
fn tag(b: &[u8]) -> Option<(&[u8], Option<u32>, &[u8])> {
    let end = memchr::memchr2(b':', b' ', b)?;
    if b[end] != b':' || end == 0 {
        return None;
    }
    let message = match b.get(end + 1) {
        Some(b' ') => &b[end + 2..],
        None => &b[end + 1..],
        Some(_) => return None,
    };
    let t = &b[..end];
    if let Some(open) = memchr::memchr(b'[', t) {
        if t.last() != Some(&b']') || open == 0 {
            return None;
        }
        let digits = &t[open + 1..t.len() - 1];
        if digits.is_empty() || digits.len() > 10 || !digits.iter().all(u8::is_ascii_digit) {
            return None;
        }
        let pid = digits.iter().try_fold(0u32, |v, &d| v.checked_mul(10)?.checked_add(u32::from(d - b'0')))?;
        Some((&t[..open], Some(pid), message))
    } else {
        Some((t, None, message))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn tagged(l: &[u8]) -> (Stamp<'_>, &[u8], &[u8], Option<u32>, &[u8]) {
        match split(l) {
            Line::Tagged { stamp, host, program, pid, message } => (stamp, host, program, pid, message),
            other => panic!("not tagged: {other:?}"),
        }
    }

    #[test]
    fn classic() {
        let (s, h, p, pid, m) = tagged(b"Oct  1 14:42:51 flvbox sshd[11294]: Invalid user x");
        assert_eq!(s, Stamp::Syslog(b"Oct  1 14:42:51"));
        assert_eq!((h, p, pid, m), (&b"flvbox"[..], &b"sshd"[..], Some(11294), &b"Invalid user x"[..]));
        let (s, ..) = tagged(b"Oct 1 14:42:51 h sshd[1]: x");
        assert_eq!(s, Stamp::Syslog(b"Oct 1 14:42:51"));
        let (s, ..) = tagged(b"Oct 11 14:42:51 h sshd[1]: x");
        assert_eq!(s, Stamp::Syslog(b"Oct 11 14:42:51"));
    }

    #[test]
    fn rfc3339_and_no_pid() {
        let (s, h, p, pid, m) = tagged(b"2024-10-01T14:42:51.123456+00:00 web1 sshd-session[7]: hi");
        assert_eq!(s, Stamp::Rfc3339(b"2024-10-01T14:42:51.123456+00:00"));
        assert_eq!((h, p, pid, m), (&b"web1"[..], &b"sshd-session"[..], Some(7), &b"hi"[..]));
        let (_, _, p, pid, _) = tagged(b"2024-10-01T14:42:51Z web1 kernel: hi");
        assert_eq!((p, pid), (&b"kernel"[..], None));
    }

    #[test]
    fn untagged_and_bare() {
        assert!(matches!(
            split(b"Oct  1 14:42:51 bsd last message repeated 2 times"),
            Line::Untagged { text: b"last message repeated 2 times", .. }
        ));
        assert_eq!(split(b"Invalid user x from 192.0.2.1 port 2"), Line::Bare(b"Invalid user x from 192.0.2.1 port 2"));
        assert!(matches!(split(b"Oct  1 14:42:51 h sshd[x]: m"), Line::Untagged { .. }));
        assert_eq!(split(b""), Line::Bare(b""));
        assert_eq!(split(b"Oct"), Line::Bare(b"Oct"));
    }
}
