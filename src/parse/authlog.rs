//! The tail that sshd's authentication messages share, and where its
//! address is: `for [invalid user ]USER from ADDR port N ssh2[: INFO]`.
//!
//! Written by auth.c `auth_log()` (`"%s %s%s%s for %s%.100s from %.200s port
//! %d ssh2%s%s"`: `Accepted`, `Failed`, `Partial`, `Postponed`) and
//! `auth_maxtries_exceeded()` (`"maximum authentication attempts exceeded
//! for %s%.100s from %.200s port %d ssh2"`). Three client-controlled parts
//! can surround the address:
//!
//! - USER: auth2.c `input_userauth_request()` cuts the user name at its
//!   first `:`, so USER never holds a colon (and `ADDR port N` never holds
//!   `ssh2: `). The first ` ssh2: ` after `for ` therefore ends the part the
//!   server wrote; INFO (key type and fingerprint, a certificate's key ID,
//!   hostbased `client user "…", client host "…"`) follows it, and the
//!   address is taken from before it, anchored on ` port N ssh2` at its end.
//! - INFO: partly the client's. Never read for the address.
//! - The method: `userauth_finish()` logs a failure with the method name
//!   exactly as the client sent it when no method matched (and then no method
//!   ran, so there is no INFO). A `Failed` line can thus carry client text
//!   before the real ` for `, colons included; its address is then the one at
//!   the end. Callers say whether the text before `for ` is the server's
//!   ([`Lead::Server`]: a success, whose method `userauth_finish()` replaces
//!   by its own name, or a fixed prefix) or possibly the client's
//!   ([`Lead::Client`]). When the two readings of a `Lead::Client` line
//!   name different addresses, the line is ambiguous and names none.

use std::net::IpAddr;

use crate::addr::parse_ip;

/// Who wrote the text before the `for ` that starts the tail.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Lead {
    /// sshd itself: a method name sshd chose, or a fixed prefix.
    Server,
    /// Possibly the client: the method of a `Failed` line.
    Client,
}

/// What the tail names.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Found<'a> {
    /// The user name as logged (without `invalid user `) and the address.
    Addr { user: &'a [u8], ip: IpAddr },
    /// The shape is right but the address does not parse, or the line can
    /// be read two ways that name different addresses.
    BadAddress,
    /// Not this shape.
    NoMatch,
}

/// `rest` is the text after `for `.
pub fn tail(rest: &[u8], lead: Lead) -> Found<'_> {
    let info = memchr::memmem::find(rest, b" ssh2: ");
    let server = reading(info.map_or(rest, |i| &rest[..i + b" ssh2".len()]));
    if lead == Lead::Server || info.is_none() {
        return server;
    }
    // A client's method may have put the colon there; then there is no INFO
    // and the address is the one at the end.
    let end = if method_may_precede(rest) { reading(rest) } else { Found::NoMatch };
    match (server, end) {
        (Found::Addr { ip: a, .. }, Found::Addr { ip: b, .. }) if a != b => Found::BadAddress,
        (found @ Found::Addr { .. }, _) | (_, found @ Found::Addr { .. }) => found,
        (Found::BadAddress, _) | (_, Found::BadAddress) => Found::BadAddress,
        _ => Found::NoMatch,
    }
}

/// `[invalid user ]USER from ADDR port N ssh2`, anchored at its end (USER may
/// hold ` from `; ADDR never does).
fn reading(head: &[u8]) -> Found<'_> {
    let Some(head) = head.strip_suffix(b" ssh2") else { return Found::NoMatch };
    let Some((head, port)) = super::sshd::rsplit(head, b" port ") else { return Found::NoMatch };
    if !super::sshd::is_port(port) {
        return Found::NoMatch;
    }
    let Some((name, addr)) = super::sshd::rsplit(head, b" from ") else { return Found::NoMatch };
    // OpenSSH before 3.9 wrote `illegal user `; auth-pam.c still does.
    let user = name.strip_prefix(b"invalid user ").or_else(|| name.strip_prefix(b"illegal user ")).unwrap_or(name);
    match parse_ip(addr) {
        Some(ip) => Found::Addr { user, ip },
        None => Found::BadAddress,
    }
}

/// Whether `rest` can be the end of a client's method followed by ` for
/// USER from ADDR port N ssh2`: the user name, which has no colon, must
/// start after the last colon before the final ` from `.
fn method_may_precede(rest: &[u8]) -> bool {
    let Some((before, _)) = super::sshd::rsplit(rest, b" from ") else { return false };
    match memchr::memrchr(b':', before) {
        None => true,
        Some(c) => memchr::memmem::find(&before[c..], b" for ").is_some(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn addr<'a>(user: &'a [u8], ip: &str) -> Found<'a> {
        Found::Addr { user, ip: ip.parse().unwrap() }
    }

    #[test]
    fn info_never_names_the_address() {
        let hostile = b"u from 192.0.2.5 port 2 ssh2: HOSTBASED, client user \"x from 198.51.100.9 port 22 ssh2\"";
        assert_eq!(tail(hostile, Lead::Server), addr(b"u", "192.0.2.5"));
        assert_eq!(tail(hostile, Lead::Client), addr(b"u", "192.0.2.5"));
        let ends_like_a_tail = b"u from 192.0.2.5 port 2 ssh2: RSA SHA256:x ID y from 198.51.100.9 port 22 ssh2";
        assert_eq!(tail(ends_like_a_tail, Lead::Server), addr(b"u", "192.0.2.5"));
        // Without a ` for ` after the colon no client method can explain it.
        assert_eq!(tail(ends_like_a_tail, Lead::Client), addr(b"u", "192.0.2.5"));
    }

    #[test]
    fn a_client_method_with_a_colon_is_ambiguous() {
        // Method "password for root from 198.51.100.9 port 22 ssh2: x".
        let m = b"root from 198.51.100.9 port 22 ssh2: x for invalid user y from 192.0.2.7 port 5 ssh2";
        assert_eq!(tail(m, Lead::Client), Found::BadAddress);
        assert_eq!(tail(m, Lead::Server), addr(b"root", "198.51.100.9"));
        // Without the colon both readings agree on the sender.
        let m = b"root from 198.51.100.9 port 22 ssh2 for y from 192.0.2.7 port 5 ssh2";
        assert!(matches!(tail(m, Lead::Client), Found::Addr { ip, .. } if ip.to_string() == "192.0.2.7"));
        // A colon that no reading can use leaves the one at the end.
        let m = b"a: b for y from 192.0.2.7 port 5 ssh2";
        assert!(matches!(tail(m, Lead::Client), Found::Addr { ip, .. } if ip.to_string() == "192.0.2.7"));
    }

    #[test]
    fn shapes() {
        assert_eq!(tail(b"invalid user x from 2001:db8:: port 1 ssh2", Lead::Client), addr(b"x", "2001:db8::"));
        assert_eq!(tail(b"x from 2001:db8:: port 1 ssh2: RSA SHA256:k", Lead::Server), addr(b"x", "2001:db8::"));
        assert_eq!(tail(b"x from host.example port 1 ssh2", Lead::Server), Found::BadAddress);
        assert_eq!(tail(b"x from 192.0.2.1 port 1", Lead::Server), Found::NoMatch);
        assert_eq!(tail(b"x from 192.0.2.1 port 1 ssh2x", Lead::Server), Found::NoMatch);
        assert_eq!(tail(b"x from 192.0.2.1 port 99999 ssh2", Lead::Server), Found::NoMatch);
        assert_eq!(tail(b"", Lead::Client), Found::NoMatch);
    }
}
