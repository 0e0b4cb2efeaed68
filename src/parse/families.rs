//! The opt-in rule families beyond the seed rules: every `Failed METHOD`,
//! PAM's failure lines, the refusals (`not allowed because`, `ROOT LOGIN
//! REFUSED`), the pre-authentication disconnects, timeouts and protocol
//! errors, tcp_wrappers' `refused connect` and `past MaxStartups`.
//!
//! Each parser is anchored on what sshd (or PAM, or libwrap) writes itself:
//!
//! - `Failed METHOD for …`: the method may be the client's own text, so the
//!   tail is read by [`super::authlog`] with [`Lead::Client`].
//! - The connection id of packet.c `sshpkt_fmt_connection_id()`
//!   (`[invalid user U |authenticating user U |user U ]ADDR port N`): the
//!   user name is the client's and may hold spaces, but never a colon
//!   (auth2.c cuts it at the first `:`), and ADDR holds no space. At the end
//!   of a message the address is the last word before ` port N`; when text
//!   follows (`: REASON`), the first colon either sits inside an IPv6 ADDR
//!   or right after N.
//! - pam_unix writes `rhost=` before the client's `user=`, and everything
//!   before `rhost=` (logname, uid, euid, tty, an empty ruser) is not the
//!   client's: the first ` ruser= rhost=` is the real one.
//! - `User U from HOST not allowed because REASON`: REASON is one of
//!   auth.c `allowed_user()`'s fixed texts, stripped from the end.
//!
//! A host name where an address belongs (UseDNS, PAM's rhost, tcp_wrappers)
//! is never resolved: it is a bad address.

use std::net::IpAddr;

use super::authlog::{self, Found, Lead};
use super::sshd::{is_port, rsplit, Message};
use super::Rule;
use crate::addr::parse_ip;

fn attack(rule: Rule, ip: IpAddr, user: Option<&[u8]>) -> Message<'_> {
    Message::Attack { rule, ip, user }
}

fn addr_or_bad<'a>(rule: Rule, addr: &[u8], user: Option<&'a [u8]>) -> Message<'a> {
    parse_ip(addr).map_or(Message::BadAddress, |ip| attack(rule, ip, user))
}

fn digits(b: &[u8]) -> usize {
    b.iter().take_while(|b| b.is_ascii_digit()).count()
}

/// `METHOD for [invalid user ]USER from ADDR port N ssh2[: INFO]` (the text
/// after `Failed `; auth.c `auth_log()`). Password failures are
/// `failed-password`; a publickey failure of an existing user is
/// `failed-publickey`; the `none` probe of an existing user, which every
/// client sends first (logged at VERBOSE), is no attack.
pub fn failed(rest: &[u8]) -> Message<'_> {
    let Some(sp) = memchr::memchr(b' ', rest) else { return Message::Other };
    let (method, tail) = (&rest[..sp], &rest[sp..]);
    let Some(tail) = tail.strip_prefix(b" for ") else { return Message::Other };
    let invalid = tail.starts_with(b"invalid user ") || tail.starts_with(b"illegal user ");
    let rule = match method {
        b"password" => Rule::FailedPassword,
        b"publickey" if !invalid => Rule::FailedPublickey,
        b"none" if !invalid => return Message::Other,
        _ => Rule::FailedAuth,
    };
    match authlog::tail(tail, Lead::Client) {
        Found::Addr { user, ip } => attack(rule, ip, Some(user)),
        Found::BadAddress => Message::BadAddress,
        Found::NoMatch => Message::Other,
    }
}

/// auth-pam.c `sshpam_query()`: `PAM: MSG for [illegal user ]USER from HOST`
/// (the text after `PAM: `). HOST is `auth_get_canonical_hostname()`: the
/// address, or with UseDNS a name. USER may hold ` from `; HOST never does.
pub fn pam_error(rest: &[u8]) -> Message<'_> {
    const MSGS: [&[u8]; 2] =
        [b"Authentication failure for ", b"User not known to the underlying authentication module for "];
    let Some(rest) = MSGS.iter().find_map(|m| rest.strip_prefix(*m)) else { return Message::Other };
    let Some((user, host)) = rsplit(rest, b" from ") else { return Message::Other };
    let user = user.strip_prefix(b"illegal user ").unwrap_or(user);
    addr_or_bad(Rule::PamFailure, host, Some(user))
}

/// pam_unix's `authentication failure; logname=… uid=N euid=N tty=ssh
/// ruser= rhost=HOST  user=USER` and `PAM N more authentication failures;
/// …` (the text after the fixed lead): the number of failures and the
/// message.
pub fn pam_unix(fields: &[u8], n: u32) -> Message<'_> {
    // Everything before ` ruser= ` is the server's; sshd sets no PAM_RUSER.
    let Some(at) = memchr::memmem::find(fields, b" ruser= rhost=") else { return Message::Other };
    if !fields.starts_with(b"logname=") {
        return Message::Other;
    }
    let host = &fields[at + b" ruser= rhost=".len()..];
    let end = memchr::memchr(b' ', host).unwrap_or(host.len());
    let (host, after) = (&host[..end], &host[end..]);
    // `rhost=H ` then ` user=U` (U is the client's), or nothing.
    if !(after.is_empty() || after == b" " || after.starts_with(b"  user=")) {
        return Message::BadAddress;
    }
    match parse_ip(host) {
        Some(ip) if n == 1 => attack(Rule::PamFailure, ip, None),
        Some(ip) => Message::Attacks { rule: Rule::PamFailure, ip, n },
        None => Message::BadAddress,
    }
}

/// `N more authentication failure[s]; FIELDS` (after `PAM `).
pub fn pam_more(rest: &[u8]) -> Message<'_> {
    let d = digits(rest);
    if d == 0 || d > 6 {
        return Message::Other;
    }
    let n: u32 = rest[..d].iter().fold(0, |v, b| v * 10 + u32::from(b - b'0'));
    let t = &rest[d..];
    let Some(fields) = t
        .strip_prefix(b" more authentication failures; ")
        .or_else(|| t.strip_prefix(b" more authentication failure; "))
    else {
        return Message::Other;
    };
    if n == 0 {
        return Message::Other;
    }
    pam_unix(fields, n)
}

/// `USER from HOST not allowed because REASON` (after `User `), auth.c
/// `allowed_user()`. The shell and locked-account refusals name no host.
pub fn not_allowed(rest: &[u8]) -> Message<'_> {
    const REASONS: [&[u8]; 5] = [
        b" not allowed because listed in DenyUsers",
        b" not allowed because not listed in AllowUsers",
        b" not allowed because not in any group",
        b" not allowed because a group is listed in DenyGroups",
        b" not allowed because none of user's groups are listed in AllowGroups",
    ];
    let Some(head) = REASONS.iter().find_map(|r| rest.strip_suffix(*r)) else { return Message::Other };
    let Some((user, host)) = rsplit(head, b" from ") else { return Message::Other };
    addr_or_bad(Rule::NotAllowed, host, Some(user))
}

/// `ADDR port N`, or `ADDR` alone (older releases).
pub fn addr_maybe_port(rule: Rule, rest: &[u8]) -> Message<'_> {
    let addr = match rsplit(rest, b" port ") {
        Some((addr, port)) if is_port(port) => addr,
        _ => rest,
    };
    if addr.contains(&b' ') {
        return Message::Other;
    }
    addr_or_bad(rule, addr, None)
}

/// Who packet.c's connection id says the peer is.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Peer {
    /// No user yet: `ADDR port N`.
    Anonymous,
    /// `invalid user U ADDR port N`
    Invalid,
    /// `authenticating user U ADDR port N` (an existing user, not yet in).
    Authenticating,
    /// `user U ADDR port N`: logged in; never an attack.
    LoggedIn,
}

/// A connection id: who, the user name, and the address text.
pub type ConnId<'a> = (Peer, Option<&'a [u8]>, &'a [u8]);

/// A connection id that ends the text: `[WHO ]ADDR port N`.
pub fn remote_id(id: &[u8]) -> Option<ConnId<'_>> {
    let (head, port) = rsplit(id, b" port ")?;
    if !is_port(port) {
        return None;
    }
    let Some(sp) = memchr::memrchr(b' ', head) else { return Some((Peer::Anonymous, None, head)) };
    // `who` without the space before ADDR: `invalid user NAME`, where an
    // empty NAME leaves `invalid user ` (sshd writes two spaces).
    let (who, addr) = (&head[..sp], &head[sp + 1..]);
    let (peer, user) = if let Some(u) = who.strip_prefix(b"invalid user ") {
        (Peer::Invalid, u)
    } else if let Some(u) = who.strip_prefix(b"authenticating user ") {
        (Peer::Authenticating, u)
    } else if let Some(u) = who.strip_prefix(b"user ") {
        (Peer::LoggedIn, u)
    } else {
        return None;
    };
    Some((peer, Some(user), addr))
}

/// The connection id at the start of `ID: TEXT` (TEXT may be the client's):
/// the text up to the end of `port N`. A user name holds no colon, so the
/// first colon is inside an IPv6 ADDR (`… 2001:db8::1 port 22: …`) or
/// right after N (`… 192.0.2.1 port 22: …`).
pub fn lead_id(rest: &[u8]) -> Option<&[u8]> {
    let k = memchr::memchr(b':', rest)?;
    let e = memchr::memchr(b' ', &rest[k..]).map_or(rest.len(), |i| k + i);
    // The colon inside a word: an IPv6 address, which ` port N:` follows.
    if k + 1 < e {
        let t = rest[e..].strip_prefix(b" port ")?;
        let d = digits(t);
        return (d > 0 && t.get(d) == Some(&b':')).then(|| &rest[..e + b" port ".len() + d]);
    }
    Some(&rest[..k])
}

/// A pre-authentication message about a connection id, as `rule`. The
/// root-disconnect shape stays its own rule (one line, one rule).
pub fn preauth_id<'a>(rule: Rule, id: Option<ConnId<'a>>, preauth: bool) -> Message<'a> {
    match id {
        None => Message::Other,
        Some((Peer::LoggedIn, _, _)) => Message::Other,
        Some(_) if !preauth => Message::Other,
        Some((_, user, addr)) => addr_or_bad(rule, addr, user),
    }
}

/// `Disconnecting ID: REASON` (packet.c `ssh_packet_disconnect()`). `Too
/// many authentication failures` follows auth.c `auth_maxtries_exceeded()`'s
/// own line, which max-auth counts.
pub fn disconnecting(rest: &[u8], preauth: bool) -> Message<'_> {
    let Some(id) = lead_id(rest) else { return Message::Other };
    let reason = &rest[id.len()..];
    if reason.starts_with(b": Too many authentication failures") {
        return Message::Other;
    }
    preauth_id(Rule::PreauthDisconnect, remote_id(id), preauth)
}

/// `ADDR port N:CODE: TEXT` (after `Received disconnect from `; packet.c,
/// the address is `ssh_remote_ipaddr()`, TEXT the client's).
pub fn received_disconnect(rest: &[u8], preauth: bool) -> Message<'_> {
    let Some(sp) = memchr::memchr(b' ', rest) else { return Message::Other };
    let (addr, t) = (&rest[..sp], &rest[sp..]);
    let Some(t) = t.strip_prefix(b" port ") else { return Message::Other };
    let d = digits(t);
    if !is_port(&t[..d]) || t.get(d) != Some(&b':') {
        return Message::Other;
    }
    let c = digits(&t[d + 1..]);
    if c == 0 || t.get(d + 1 + c) != Some(&b':') || !preauth {
        return Message::Other;
    }
    addr_or_bad(Rule::PreauthDisconnect, addr, None)
}

/// `ssh_dispatch_run_fatal: Connection from ID: ERROR` (packet.c
/// `sshpkt_vfatal()`), before authentication only.
pub fn dispatch_fatal(rest: &[u8], preauth: bool) -> Message<'_> {
    let Some(id) = lead_id(rest) else { return Message::Other };
    preauth_id(Rule::PreauthFatal, remote_id(id), preauth)
}

/// tcp_wrappers `refused connect from CLIENT`: Debian's `NAME (ADDR)`, or
/// upstream's `[USER@]HOST` (USER from an ident lookup is the client's).
pub fn refused_connect(rest: &[u8]) -> Message<'_> {
    if let Some(inner) = rest.strip_suffix(b")") {
        if let Some((_, addr)) = rsplit(inner, b" (") {
            return addr_or_bad(Rule::TcpWrappers, addr, None);
        }
    }
    let host = memchr::memrchr(b'@', rest).map_or(rest, |i| &rest[i + 1..]);
    if host.contains(&b' ') {
        return Message::BadAddress;
    }
    addr_or_bad(Rule::TcpWrappers, host, None)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lead_id_finds_the_end_of_port() {
        assert_eq!(
            lead_id(b"invalid user a b 192.0.2.1 port 22: x: y"),
            Some(&b"invalid user a b 192.0.2.1 port 22"[..])
        );
        assert_eq!(lead_id(b"2001:db8:: port 22: x"), Some(&b"2001:db8:: port 22"[..]));
        assert_eq!(lead_id(b"user x port 2001:db8::1 port 5: y"), Some(&b"user x port 2001:db8::1 port 5"[..]));
        // A user name "198.51.100.9 port" before an IPv6 address.
        let id = lead_id(b"invalid user 198.51.100.9 port 2001:db8::1 port 5: y").unwrap();
        assert_eq!(remote_id(id).map(|r| r.2), Some(&b"2001:db8::1"[..]));
        assert_eq!(lead_id(b"no colon"), None);
    }

    /// Every rule's documented example is a line of that rule.
    #[test]
    fn every_example_is_its_rule() {
        for rule in Rule::ALL {
            if rule == Rule::KexReset {
                continue; // two lines; the corpus pairs them
            }
            let ex = rule.info().example.as_bytes();
            let (m, preauth) = match ex.strip_suffix(b" [preauth]") {
                Some(m) => (m, true),
                None => (ex, false),
            };
            match super::super::sshd::classify(m, preauth) {
                Message::Attack { rule: r, .. } | Message::Attacks { rule: r, .. } => assert_eq!(r, rule),
                other => panic!("{rule}: {other:?}"),
            }
            assert!(rule.info().threshold > 0 && !rule.info().risk.is_empty());
        }
    }

    #[test]
    fn remote_id_shapes() {
        assert_eq!(remote_id(b"192.0.2.1 port 2"), Some((Peer::Anonymous, None, &b"192.0.2.1"[..])));
        assert_eq!(
            remote_id(b"invalid user  192.0.2.1 port 2"),
            Some((Peer::Invalid, Some(&b""[..]), &b"192.0.2.1"[..]))
        );
        assert_eq!(remote_id(b"user a b 192.0.2.1 port 2").map(|r| r.0), Some(Peer::LoggedIn));
        assert_eq!(remote_id(b"somebody 192.0.2.1 port 2"), None);
        // No name field at all is not sshd's shape (found by the fuzzer:
        // it used to underflow).
        assert_eq!(remote_id(b"invalid user 192.0.2.1 port 2"), None);
        assert_eq!(remote_id(b"user 192.0.2.1 port 2"), None);
        assert_eq!(remote_id(b"192.0.2.1 port 99999"), None);
    }
}
