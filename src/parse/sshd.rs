//! sshd messages: which shape a message has and which address it names.
//!
//! Every matcher is anchored where sshd's own format puts the address. Where
//! an attacker-chosen user name comes before the address (`Invalid user NAME
//! from ADDR port N`), the address is taken from the end of the message, so a
//! user name such as `x from 198.51.100.9 port 22` can never name a third
//! party. Where the address comes first (`Unable to negotiate with ADDR port
//! N: … Their offer: …`), it is taken from the start. The authentication
//! messages (`Accepted`, `Failed password`, `maximum authentication attempts
//! exceeded`) share one tail, read by [`super::authlog`]. Only what parses as
//! an IP address is returned.

use std::net::IpAddr;

use super::authlog::{self, Found, Lead};
use super::families;
use super::Rule;
use crate::addr::parse_ip;

/// What one sshd message says.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Message<'a> {
    /// An attack by `ip`, with the user name when the message carries one.
    Attack { rule: Rule, ip: IpAddr, user: Option<&'a [u8]> },
    /// `n` attacks by `ip` told in one message (`PAM N more authentication
    /// failures`).
    Attacks { rule: Rule, ip: IpAddr, n: u32 },
    /// A successful login (`Accepted METHOD for USER from ADDR port N ssh2`).
    Accepted { ip: IpAddr, user: &'a [u8] },
    /// `error: kex_exchange_identification: …`: the first half of kex-reset.
    KexError,
    /// `Connection reset by ADDR port N`: the second half of kex-reset, or,
    /// with ` [preauth]` and no kex error before it, a preauth-disconnect.
    Reset { ip: IpAddr, preauth: bool },
    /// The shape of a known message, but the address does not parse
    /// (a host name with UseDNS, or a mangled line).
    BadAddress,
    /// Nothing badguys knows.
    Other,
}

/// The literals every message that [`classify`] recognizes as `rule`
/// contains; the prefilter searches a whole buffer for these before any
/// line is split.
pub fn needles(rule: Rule) -> &'static [&'static [u8]] {
    match rule {
        Rule::InvalidUser => &[b"Invalid user ", b"Illegal user "],
        Rule::RootDisconnect => &[b"Disconnected from authenticating user root "],
        Rule::KexReset => &[b"kex_exchange_identification: ", b"Connection reset by "],
        Rule::FailedPassword => &[b"Failed password for "],
        Rule::MaxAuth => &[b"maximum authentication attempts exceeded for "],
        Rule::NoIdent => &[b"Did not receive identification string from "],
        Rule::BadBanner => &[b"banner exchange: Connection from "],
        Rule::Negotiation => &[b"Unable to negotiate with "],
        Rule::Penalty | Rule::MaxStartups => &[b"drop connection #"],
        Rule::FailedAuth => &[b"Failed "],
        Rule::FailedPublickey => &[b"Failed publickey for "],
        Rule::PamFailure => &[b"PAM: ", b"authentication failure; logname=", b" more authentication failure"],
        Rule::NotAllowed => &[b" not allowed because "],
        Rule::RootRefused => &[b"ROOT LOGIN REFUSED FROM "],
        Rule::PreauthDisconnect => &[
            b"Connection closed by ",
            b"Disconnected from ",
            b"Connection reset by ",
            b"Disconnecting ",
            b"Received disconnect from ",
        ],
        Rule::PreauthTimeout => &[b"Timeout before authentication for "],
        Rule::PreauthFatal => &[b"ssh_dispatch_run_fatal: Connection from "],
        Rule::TcpWrappers => &[b"refused connect from "],
    }
}

/// Needles that are not rules: logins (to spare an address) and repeats.
pub const ACCEPTED_NEEDLE: &[u8] = b"Accepted ";
pub const REPEAT_NEEDLE: &[u8] = b"message repeated ";

/// Classifies one message (the text after `sshd[pid]: `, or a bare line),
/// with any ` [preauth]` suffix already removed; `preauth` says whether
/// there was one (the privilege-separated child writes it before
/// authentication).
pub fn classify(m: &[u8], preauth: bool) -> Message<'_> {
    // log.c prefixes error- and fatal-level messages with "error: " and
    // "fatal: " only when the process writes to syslog itself (not through
    // the monitor, and not with `sshd -E FILE`): accept both forms.
    let m = m.strip_prefix(b"error: ").or_else(|| m.strip_prefix(b"fatal: ")).unwrap_or(m);
    let Some(&first) = m.first() else { return Message::Other };
    // Dispatch on the first byte so a line pays for one or two prefix checks.
    let r = match first {
        b'I' => strip(m, b"Invalid user ").or_else(|| strip(m, b"Illegal user ")).map(invalid_user),
        b'D' => strip(m, b"Disconnected from ")
            .map(|rest| disconnected(rest, preauth))
            .or_else(|| strip(m, b"Did not receive identification string from ").map(no_ident))
            .or_else(|| strip(m, b"Disconnecting ").map(|rest| families::disconnecting(rest, preauth))),
        b'k' => m.starts_with(b"kex_exchange_identification: ").then_some(Message::KexError),
        b'm' => strip(m, b"maximum authentication attempts exceeded for ")
            .map(|rest| auth_attack(rest, Lead::Server, Rule::MaxAuth)),
        b'C' => strip(m, b"Connection reset by ")
            .map(|rest| match families::remote_id(rest) {
                Some((families::Peer::Anonymous, _, addr)) => match parse_ip(addr) {
                    Some(ip) => Message::Reset { ip, preauth },
                    None => Message::BadAddress,
                },
                id => families::preauth_id(Rule::PreauthDisconnect, id, preauth),
            })
            .or_else(|| {
                strip(m, b"Connection closed by ")
                    .map(|rest| families::preauth_id(Rule::PreauthDisconnect, families::remote_id(rest), preauth))
            }),
        // The method of a failure may be the client's own text (see authlog).
        b'F' => strip(m, b"Failed ").map(families::failed),
        b'A' => strip(m, b"Accepted ").map(accepted),
        b'b' => strip(m, b"banner exchange: Connection from ").map(|rest| lead_addr_port(rest, Rule::BadBanner)),
        b'U' => strip(m, b"Unable to negotiate with ")
            .map(|rest| lead_addr_port(rest, Rule::Negotiation))
            .or_else(|| strip(m, b"User ").map(families::not_allowed)),
        b'd' => strip(m, b"drop connection #").map(drop_connection),
        b'P' => strip(m, b"PAM: ").map(families::pam_error).or_else(|| strip(m, b"PAM ").map(families::pam_more)),
        // pam_unix logs its count at cleanup, as "PAM N more …" when no
        // module is current (pam_end), else with its own prefix.
        b'p' => strip(m, b"pam_unix(sshd:auth): ").map(|r| match strip(r, b"authentication failure; ") {
            Some(f) => families::pam_unix(f, 1),
            None => families::pam_more(r),
        }),
        b'R' => strip(m, b"ROOT LOGIN REFUSED FROM ")
            .map(|rest| families::addr_maybe_port(Rule::RootRefused, rest))
            .or_else(|| strip(m, b"Received disconnect from ").map(|r| families::received_disconnect(r, preauth))),
        b'T' => strip(m, b"Timeout before authentication for ")
            .map(|rest| families::addr_maybe_port(Rule::PreauthTimeout, rest)),
        b's' => {
            strip(m, b"ssh_dispatch_run_fatal: Connection from ").map(|rest| families::dispatch_fatal(rest, preauth))
        }
        b'r' => strip(m, b"refused connect from ").map(families::refused_connect),
        _ => None,
    };
    r.unwrap_or(Message::Other)
}

/// `Disconnected from ID` (packet.c, SSH_ERR_DISCONNECTED): root while
/// authenticating is root-disconnect, with or without ` [preauth]`; the
/// other pre-authentication peers are preauth-disconnect.
fn disconnected(rest: &[u8], preauth: bool) -> Message<'_> {
    if let Some(r) = rest.strip_prefix(b"authenticating user root ") {
        if let Some(ip) = addr_port(r) {
            return attack(Rule::RootDisconnect, ip, Some(b"root"));
        }
        if !r.contains(&b' ') {
            return Message::BadAddress;
        }
    }
    families::preauth_id(Rule::PreauthDisconnect, families::remote_id(rest), preauth)
}

/// An attack told by the shared authentication tail.
fn auth_attack(rest: &[u8], lead: Lead, rule: Rule) -> Message<'_> {
    match authlog::tail(rest, lead) {
        Found::Addr { user, ip } => attack(rule, ip, Some(user)),
        Found::BadAddress => Message::BadAddress,
        Found::NoMatch => Message::Other,
    }
}

fn attack(rule: Rule, ip: IpAddr, user: Option<&[u8]>) -> Message<'_> {
    Message::Attack { rule, ip, user }
}

fn strip<'a>(m: &'a [u8], prefix: &[u8]) -> Option<&'a [u8]> {
    m.strip_prefix(prefix)
}

/// `NAME from ADDR port N` (or `NAME from ADDR`, as OpenSSH before 7.4
/// wrote it), anchored at the end.
fn invalid_user(rest: &[u8]) -> Message<'_> {
    let head = match rsplit(rest, b" port ") {
        Some((h, p)) if is_port(p) => h,
        _ => rest,
    };
    let Some((name, addr)) = rsplit(head, b" from ") else { return Message::Other };
    match parse_ip(addr) {
        Some(ip) => attack(Rule::InvalidUser, ip, Some(name)),
        None => Message::BadAddress,
    }
}

/// Exactly `ADDR port N`, nothing before or after.
fn addr_port(rest: &[u8]) -> Option<IpAddr> {
    let (addr, port) = rsplit(rest, b" port ")?;
    if !is_port(port) {
        return None;
    }
    parse_ip(addr)
}

/// `ADDR port N: …`, anchored at the start (what follows may be the
/// client's own words).
fn lead_addr_port(rest: &[u8], rule: Rule) -> Message<'_> {
    let Some(sp) = memchr::memchr(b' ', rest) else { return Message::Other };
    let (addr, tail) = (&rest[..sp], &rest[sp..]);
    let Some(tail) = tail.strip_prefix(b" port ") else { return Message::Other };
    let digits = tail.iter().take_while(|b| b.is_ascii_digit()).count();
    if !is_port(&tail[..digits]) || tail.get(digits) != Some(&b':') {
        return Message::Other;
    }
    match parse_ip(addr) {
        Some(ip) => attack(rule, ip, None),
        None => Message::BadAddress,
    }
}

/// `ADDR port N`, or `ADDR` alone (OpenSSH before 7.4).
fn no_ident(rest: &[u8]) -> Message<'_> {
    let ip = match rsplit(rest, b" port ") {
        Some((addr, port)) if is_port(port) => parse_ip(addr),
        _ => parse_ip(rest),
    };
    ip.map_or(Message::BadAddress, |ip| attack(Rule::NoIdent, ip, None))
}

/// `N from [ADDR]:PORT on [ADDR]:PORT REASON` (sshd.c drop_connection,
/// OpenSSH 9.8+): `penalty: …` is penalty, `past MaxStartups` is
/// maxstartups (load shedding: whoever arrives while the slots are full).
/// Other reasons (`too many penalised addresses`) name no culprit.
fn drop_connection(rest: &[u8]) -> Message<'_> {
    let digits = rest.iter().take_while(|b| b.is_ascii_digit()).count();
    let Some(rest) = rest[digits..].strip_prefix(b" from [") else { return Message::Other };
    let Some((client, rest)) = bracketed_addr_port(rest) else { return Message::Other };
    let Some(rest) = rest.strip_prefix(b" on [") else { return Message::Other };
    let Some((_, reason)) = bracketed_addr_port(rest) else { return Message::Other };
    let rule = if reason.starts_with(b" penalty: ") {
        Rule::Penalty
    } else if reason == b" past MaxStartups" {
        Rule::MaxStartups
    } else {
        return Message::Other;
    };
    if digits == 0 {
        return Message::Other;
    }
    parse_ip(client).map_or(Message::BadAddress, |ip| attack(rule, ip, None))
}

/// `ADDR]:PORT` (the `[` already taken): the address and what follows the port.
fn bracketed_addr_port(b: &[u8]) -> Option<(&[u8], &[u8])> {
    let close = memchr::memchr(b']', b)?;
    let rest = b[close..].strip_prefix(b"]:")?;
    let digits = rest.iter().take_while(|b| b.is_ascii_digit()).count();
    is_port(&rest[..digits]).then(|| (&b[..close], &rest[digits..]))
}

/// `METHOD for USER from ADDR port N ssh2[: INFO]`. A success is logged with
/// the method's own name (auth2.c userauth_finish), one word.
fn accepted(rest: &[u8]) -> Message<'_> {
    let Some(sp) = memchr::memchr(b' ', rest) else { return Message::Other };
    let Some(rest) = rest[sp..].strip_prefix(b" for ") else { return Message::Other };
    match authlog::tail(rest, Lead::Server) {
        Found::Addr { user, ip } => Message::Accepted { ip, user },
        Found::BadAddress => Message::BadAddress,
        Found::NoMatch => Message::Other,
    }
}

/// Splits at the last `sep` (which starts with a space). The separators
/// sit a few words from the end of short messages, so walking the spaces
/// backwards beats a general substring search.
pub(super) fn rsplit<'a>(b: &'a [u8], sep: &[u8]) -> Option<(&'a [u8], &'a [u8])> {
    debug_assert_eq!(sep.first(), Some(&b' '));
    let i = memchr::memrchr_iter(b' ', b).find(|&i| b[i..].starts_with(sep))?;
    Some((&b[..i], &b[i + sep.len()..]))
}

pub(super) fn is_port(p: &[u8]) -> bool {
    !p.is_empty() && p.len() <= 5 && p.iter().all(u8::is_ascii_digit) && {
        let v = p.iter().fold(0u32, |v, d| v * 10 + u32::from(d - b'0'));
        v <= 65535
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn classify_t(m: &[u8]) -> Message<'_> {
        classify(m, false)
    }

    fn ip(s: &str) -> IpAddr {
        s.parse().unwrap()
    }

    #[test]
    fn anchors_at_the_end() {
        let m = classify_t(b"Invalid user x from 198.51.100.9 port 22 from 203.0.113.5 port 5555");
        assert_eq!(m, attack(Rule::InvalidUser, ip("203.0.113.5"), Some(b"x from 198.51.100.9 port 22")));
        assert_eq!(classify_t(b"Invalid user  from 192.0.2.1"), attack(Rule::InvalidUser, ip("192.0.2.1"), Some(b"")));
        assert_eq!(classify_t(b"Invalid user x from host.example port 22"), Message::BadAddress);
        assert_eq!(classify_t(b"Connection reset by authenticating user root 192.0.2.1 port 2"), Message::Other);
    }

    #[test]
    fn accepted_with_details() {
        let m = classify_t(b"Accepted publickey for alice from 2001:db8::5 port 50522 ssh2: ED25519 SHA256:abc");
        assert_eq!(m, Message::Accepted { ip: ip("2001:db8::5"), user: b"alice" });
        assert_eq!(classify_t(b"Accepted password for bob from 192.0.2.4 port 1 ssh2x"), Message::Other);
    }

    #[test]
    fn leading_address_shapes() {
        assert_eq!(
            classify_t(b"Unable to negotiate with 192.0.2.3 port 4: no matching host key type found. Their offer: from 198.51.100.1 port 1"),
            attack(Rule::Negotiation, ip("192.0.2.3"), None)
        );
        assert_eq!(
            classify_t(
                b"drop connection #0 from [2001:db8::7]:51022 on [2001:db8::1]:22 penalty: exceeded LoginGraceTime"
            ),
            attack(Rule::Penalty, ip("2001:db8::7"), None)
        );
        assert!(is_port(b"65535") && !is_port(b"65536") && !is_port(b"") && !is_port(b"22a"));
    }

    /// `scripts/bench` times ripgrep finding the lines that hold the
    /// default rules' needles (the floor under a first sync): its list
    /// must stay the prefilter's.
    #[test]
    fn the_bench_floor_searches_the_default_needles() {
        let script = std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/scripts/bench")).unwrap();
        let start = script.find("\nneedles=(").expect("scripts/bench sets needles=(...)") + "\nneedles=(".len();
        let list = &script[start..start + script[start..].find(')').unwrap()];
        let bench: Vec<&str> = list.split('"').skip(1).step_by(2).collect();
        let mut code: Vec<&[u8]> = vec![ACCEPTED_NEEDLE, REPEAT_NEEDLE];
        for r in crate::parse::RuleSet::default().iter() {
            code.extend_from_slice(needles(r));
        }
        let code: Vec<&str> = code.iter().map(|n| std::str::from_utf8(n).unwrap()).collect();
        assert_eq!(bench, code);
    }
}
