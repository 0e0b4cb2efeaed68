//! Log line headers: classic syslog (`Oct  1 14:42:51 host prog[pid]: `,
//! with or without fractional seconds), RFC 3339 (`2024-10-01T14:42:51.123456+00:00
//! host prog[pid]: `), RFC 5424 as a collector stores it when it writes the
//! frame as received (`<38>1 STAMP HOST APP PROCID MSGID SD MSG`), and bare
//! messages as `sshd -E FILE` writes them. The shapes collectors produce are
//! read too: no host name (`STAMP sshd[1]: `), no pid (`sshd:`, `sshd[-]:`),
//! Solaris' `[ID 800047 auth.info] ` after the tag, rsyslog's file template
//! for RFC 5424 input (`host sshd[6003] msg`, no colon) and a second host
//! name (an OpenBSD collector receiving from a sender run with `-h`).
//! Owns splitting a line into time stamp, host, program, pid and message;
//! never allocates.

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

/// How a header departed from the plain shapes, for the scan's counters.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Shape {
    /// A shape read as is.
    Plain,
    /// `STAMP COLLECTOR SENDER prog[pid]: `: read with the sender's name,
    /// counted so the summary can say how to fix the sender (`-h` is only
    /// for collectors that are not OpenBSD syslogd).
    DoubleHost,
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
    split_shape(line).0
}

/// Splits `line` (without its newline) and says how its header was shaped.
pub fn split_shape(line: &[u8]) -> (Line<'_>, Shape) {
    if let Some(l) = rfc5424(line) {
        return (l, Shape::Plain);
    }
    let (stamp, rest) = match stamp(line) {
        Some(x) => x,
        None => return (Line::Bare(line), Shape::Plain),
    };
    // No host name: the first word is already the tag (`sshd[123]: `).
    if let Some((program, pid, message)) = tag(rest) {
        return (Line::Tagged { stamp, host: b"", program, pid, message: solaris(message) }, Shape::Plain);
    }
    let Some((host, rest)) = token(rest) else {
        return (Line::Bare(line), Shape::Plain);
    };
    if let Some((program, pid, message)) = tag(rest) {
        return (Line::Tagged { stamp, host, program, pid, message: solaris(message) }, Shape::Plain);
    }
    if let Some((sender, after)) = token(rest) {
        if is_host_name(sender) {
            if let Some((program, pid, message)) = tag(after) {
                let message = solaris(message);
                return (Line::Tagged { stamp, host: sender, program, pid, message }, Shape::DoubleHost);
            }
        }
    }
    (Line::Untagged { stamp, host, text: rest }, Shape::Plain)
}

/// `<PRI>1 STAMP HOST APP PROCID MSGID SD MSG` (RFC 5424, section 6), as a
/// collector writes a frame as received. `-` is a missing field; an
/// optional BOM starts MSG.
fn rfc5424(b: &[u8]) -> Option<Line<'_>> {
    let rest = b.strip_prefix(b"<")?;
    let close = memchr::memchr(b'>', rest)?;
    if close == 0 || close > 3 || !rest[..close].iter().all(u8::is_ascii_digit) {
        return None;
    }
    let rest = rest[close + 1..].strip_prefix(b"1 ")?;
    let (ts, rest) = token(rest)?;
    let stamp = match ts {
        b"-" => Stamp::None,
        t if t.len() >= 19 && t[4] == b'-' && t[10] == b'T' && is_clock(&t[11..19]) => Stamp::Rfc3339(t),
        _ => return None,
    };
    let (host, rest) = token(rest)?;
    let host: &[u8] = if host == b"-" { b"" } else { host };
    let (program, rest) = token(rest)?;
    let (procid, rest) = token(rest)?;
    let (_msgid, rest) = token(rest)?;
    let msg = structured_data(rest)?;
    let msg = msg.strip_prefix(b"\xEF\xBB\xBF").unwrap_or(msg);
    // rsyslog's RFC 5424 forwarding format keeps the space an RFC 3164
    // message starts with (`- -  Invalid user`); sshd's never does.
    let msg = &msg[msg.iter().take_while(|&&c| c == b' ').count()..];
    let pid = if procid == b"-" { None } else { Some(number(procid)?) };
    Some(Line::Tagged { stamp, host, program, pid, message: msg })
}

/// Skips `-` or one or more `[id k="v" …]` elements (`\]` escapes a
/// bracket in a value) and the space after them; returns MSG.
fn structured_data(b: &[u8]) -> Option<&[u8]> {
    if let Some(rest) = b.strip_prefix(b"-") {
        return Some(rest.strip_prefix(b" ").unwrap_or(rest));
    }
    let mut i = 0;
    while b.get(i) == Some(&b'[') {
        let mut in_value = false;
        i += 1;
        loop {
            match *b.get(i)? {
                b'\\' if in_value => i += 1,
                b'"' => in_value = !in_value,
                b']' if !in_value => break,
                _ => {}
            }
            i += 1;
        }
        i += 1;
    }
    if i == 0 {
        return None;
    }
    let rest = &b[i..];
    Some(rest.strip_prefix(b" ").unwrap_or(rest))
}

/// Solaris syslogd's message id after the tag: `[ID 800047 auth.info] `.
fn solaris(msg: &[u8]) -> &[u8] {
    let Some(rest) = msg.strip_prefix(b"[ID ") else { return msg };
    let digits = rest.iter().take_while(|b| b.is_ascii_digit()).count();
    if digits == 0 || rest.get(digits) != Some(&b' ') {
        return msg;
    }
    let rest = &rest[digits + 1..];
    let Some(close) = memchr::memchr(b']', rest) else { return msg };
    let facility = &rest[..close];
    if facility.is_empty() || !facility.iter().all(|&c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == b'.') {
        return msg;
    }
    rest[close + 1..].strip_prefix(b" ").unwrap_or(msg)
}

/// A word that can be a host name or address as syslogd writes it (letters,
/// digits, `.-_:`), and not a tag.
fn is_host_name(w: &[u8]) -> bool {
    !w.is_empty()
        && w.len() <= 255
        && w.iter().all(|&c| c.is_ascii_alphanumeric() || matches!(c, b'.' | b'-' | b'_' | b':'))
        && w.last() != Some(&b':')
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
        if !is_clock(&t[..8]) {
            return None;
        }
        // The stamp keeps whole seconds; a fraction (`19:46:06.123`, as
        // syslog-ng's `frac_digits` writes it) is skipped.
        let mut after = day_end + 9;
        if b.get(after) == Some(&b'.') {
            let digits = b[after + 1..].iter().take_while(|c| c.is_ascii_digit()).count();
            if digits == 0 || digits > 9 {
                return None;
            }
            after += 1 + digits;
        }
        if b.get(after) == Some(&b' ') {
            return Some((Stamp::Syslog(&b[..day_end + 9]), &b[after + 1..]));
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

/// `prog[pid]: msg`, `prog[-]: msg` or `prog: msg`, and `prog[pid] msg`
/// (rsyslog's file template for RFC 5424 input writes no colon; only the
/// bracketed form is taken without one, or any text would be a tag).
fn tag(b: &[u8]) -> Option<(&[u8], Option<u32>, &[u8])> {
    let end = memchr::memchr2(b':', b' ', b)?;
    if end == 0 {
        return None;
    }
    let message = match (b[end], b.get(end + 1)) {
        (b':', Some(b' ')) => &b[end + 2..],
        (b':', None) => &b[end + 1..],
        (b' ', _) if b[end - 1] == b']' => &b[end + 1..],
        _ => return None,
    };
    let t = &b[..end];
    if let Some(open) = memchr::memchr(b'[', t) {
        if t.last() != Some(&b']') || open == 0 {
            return None;
        }
        let digits = &t[open + 1..t.len() - 1];
        if digits == b"-" {
            return Some((&t[..open], None, message));
        }
        Some((&t[..open], Some(number(digits)?), message))
    } else {
        Some((t, None, message))
    }
}

/// A pid: 1 to 10 digits that fit a u32.
fn number(digits: &[u8]) -> Option<u32> {
    if digits.is_empty() || digits.len() > 10 || !digits.iter().all(u8::is_ascii_digit) {
        return None;
    }
    digits.iter().try_fold(0u32, |v, &d| v.checked_mul(10)?.checked_add(u32::from(d - b'0')))
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

    #[test]
    fn collector_shapes() {
        // Fractional seconds on a classic stamp: the stamp keeps whole seconds.
        let (s, h, p, pid, m) = tagged(b"Dec  1 19:46:06.123 host sshd[1]: hi");
        assert_eq!(
            (s, h, p, pid, m),
            (Stamp::Syslog(b"Dec  1 19:46:06"), &b"host"[..], &b"sshd"[..], Some(1), &b"hi"[..])
        );
        assert!(matches!(split(b"Dec  1 19:46:06. host sshd[1]: hi"), Line::Bare(_)));
        // No host name.
        let (_, h, p, pid, m) = tagged(b"Feb 17 17:40:17 sshd[123]: hi there");
        assert_eq!((h, p, pid, m), (&b""[..], &b"sshd"[..], Some(123), &b"hi there"[..]));
        // No pid.
        let (_, h, _, pid, _) = tagged(b"Feb 17 17:40:17 h sshd[-]: hi");
        assert_eq!((h, pid), (&b"h"[..], None));
        // Solaris message id.
        let (_, _, _, pid, m) = tagged(b"Dec  1 19:46:06 sol sshd[9]: [ID 800047 auth.info] Invalid user x");
        assert_eq!((pid, m), (Some(9), &b"Invalid user x"[..]));
        let (.., m) = tagged(b"Dec  1 19:46:06 sol sshd[9]: [ID x auth.info] y");
        assert_eq!(m, b"[ID x auth.info] y");
        // rsyslog's file template for RFC 5424 input: no colon.
        let (_, h, p, pid, m) = tagged(b"2026-12-01T19:47:14.000000+00:00 host sshd[6003] Invalid user x");
        assert_eq!((h, p, pid, m), (&b"host"[..], &b"sshd"[..], Some(6003), &b"Invalid user x"[..]));
        assert!(matches!(split(b"Dec  1 19:46:06 host sshd Invalid user x"), Line::Untagged { .. }));
    }

    #[test]
    fn rfc5424_as_received() {
        let (s, h, p, pid, m) = tagged(b"<38>1 2026-12-01T19:47:14.000000+00:00 host sshd 6003 - - Invalid user x");
        assert_eq!(s, Stamp::Rfc3339(b"2026-12-01T19:47:14.000000+00:00"));
        assert_eq!((h, p, pid, m), (&b"host"[..], &b"sshd"[..], Some(6003), &b"Invalid user x"[..]));
        let (s, h, _, pid, m) = tagged(b"<38>1 - - sshd - ID47 [a b=\"]\\\"\"][c] \xEF\xBB\xBFmsg");
        assert_eq!((s, h, pid, m), (Stamp::None, &b""[..], None, &b"msg"[..]));
        assert!(matches!(split(b"<38>1 2026-12-01T19:47:14Z host sshd x - - m"), Line::Bare(_)));
        assert!(matches!(split(b"<38>2 2026-12-01T19:47:14Z host sshd 1 - - m"), Line::Bare(_)));
        assert!(matches!(split(b"<38>1 2026-12-01T19:47:14Z host sshd 1 - [unterminated m"), Line::Bare(_)));
    }

    #[test]
    fn double_host_is_read_and_flagged() {
        let (l, shape) = split_shape(b"Dec  1 19:46:06 collector web1 sshd[1]: Invalid user x");
        assert_eq!(shape, Shape::DoubleHost);
        assert!(matches!(l, Line::Tagged { host: b"web1", pid: Some(1), message: b"Invalid user x", .. }));
        assert_eq!(split_shape(b"Dec  1 19:46:06 web1 sshd[1]: x").1, Shape::Plain);
        assert_eq!(split_shape(b"Dec  1 19:46:06 bsd last message repeated 2 times").1, Shape::Plain);
    }

    #[test]
    fn scanner_counts_odd_headers() {
        use crate::parse::{RuleSet, Scanner};
        let mut sc = Scanner::new(RuleSet::all());
        let mut n = 0;
        sc.scan(
            b"Dec  1 19:46:06 collector web1 sshd[1]: Invalid user x from 192.0.2.7 port 2\n\
              Dec  1 19:46:06 web1 sshd Invalid user x from 192.0.2.8 port 2\n\
              12 <38>Dec  1 19:46:06 sshd[1]: Invalid user x from 192.0.2.9 port 2\n\
              Dec  1 19:46:07 web1 sshd[2]: Invalid user y from 192.0.2.10 port 2\n",
            &mut |_| n += 1,
        );
        assert_eq!(n, 2);
        assert_eq!(sc.stats().double_host, 1);
        assert_eq!(sc.stats().unrecognised_header, 2);
    }
}
