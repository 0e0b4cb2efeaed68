//! Addresses and networks: the only values that ever reach the blocklist or
//! the firewall.
//!
//! Owns parsing a log token into an [`IpAddr`] (IPv4-mapped IPv6 becomes IPv4,
//! a `%zone` suffix is dropped), the [`Net`] type (an address or a CIDR block,
//! as pf table files and nftables interval sets hold them), the order the
//! blocklist is written in (IPv4 numerically, then IPv6), containment,
//! subtracting an allowed range from a blocked one, and the widest network
//! that may be blocked without `--force` ([`check_width`]).

use std::cmp::Ordering;
use std::fmt;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};
use std::str::FromStr;

/// Parses an address as sshd prints it. Accepts nothing but an IP address:
/// host names, ports, brackets and trailing junk are rejected.
pub fn parse_ip(token: &[u8]) -> Option<IpAddr> {
    // An address is at most 45 bytes (IPv6 with embedded IPv4) plus a zone.
    if token.is_empty() || token.len() > 64 {
        return None;
    }
    if let Some(v4) = parse_ipv4(token) {
        return Some(IpAddr::V4(v4));
    }
    let token = match memchr::memchr(b'%', token) {
        Some(i) => &token[..i],
        None => token,
    };
    let s = std::str::from_utf8(token).ok()?;
    let ip = IpAddr::from_str(s).ok()?;
    Some(canonical(ip))
}

/// Dotted-quad IPv4 straight from bytes, as strict as the standard
/// library's parser (four decimal octets up to 255, no leading zeros).
fn parse_ipv4(b: &[u8]) -> Option<Ipv4Addr> {
    if b.len() < 7 || b.len() > 15 {
        return None;
    }
    let mut octets = [0u8; 4];
    let mut parts = b.split(|&c| c == b'.');
    for o in &mut octets {
        let p = parts.next()?;
        if p.is_empty() || p.len() > 3 || (p.len() > 1 && p[0] == b'0') {
            return None;
        }
        let mut v: u16 = 0;
        for &d in p {
            if !d.is_ascii_digit() {
                return None;
            }
            v = v * 10 + u16::from(d - b'0');
        }
        *o = u8::try_from(v).ok()?;
    }
    parts.next().is_none().then_some(Ipv4Addr::from(octets))
}

/// IPv4-mapped IPv6 (`::ffff:a.b.c.d`) becomes plain IPv4; everything else
/// is returned as is.
pub fn canonical(ip: IpAddr) -> IpAddr {
    match ip {
        IpAddr::V6(v6) => match v6.to_ipv4_mapped() {
            Some(v4) => IpAddr::V4(v4),
            None => ip,
        },
        v4 => v4,
    }
}

/// An address (full-length prefix) or a CIDR network. The address is always
/// the network address: host bits are cleared on construction.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct Net {
    addr: IpAddr,
    prefix: u8,
}

/// Why a string is not a [`Net`].
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum NetError {
    #[error("not an IP address or CIDR network")]
    Syntax,
    #[error("prefix length /{0} is too long for this address family")]
    Prefix(u32),
    #[error("{net} is wider than /{min}: it would block a large part of the internet")]
    TooWide { net: Net, min: u8 },
}

/// The widest network blocked without `--force`: an IPv4 /8 (16 million
/// addresses, the largest block a registry ever handed out) and an IPv6
/// /32 (a registry's allocation to one provider).
pub const MIN_BLOCK_PREFIX_V4: u8 = 8;
pub const MIN_BLOCK_PREFIX_V6: u8 = 32;

/// Refuses a network to block that is wider than [`MIN_BLOCK_PREFIX_V4`] or
/// [`MIN_BLOCK_PREFIX_V6`] unless `force`: the one check for every way a
/// network enters the list (`ban`, lines of the list file, included lists).
pub fn check_width(net: Net, force: bool) -> Result<Net, NetError> {
    let min = if net.addr.is_ipv4() { MIN_BLOCK_PREFIX_V4 } else { MIN_BLOCK_PREFIX_V6 };
    if net.prefix < min && !force {
        return Err(NetError::TooWide { net, min });
    }
    Ok(net)
}

impl Net {
    /// A single address.
    pub fn host(ip: IpAddr) -> Net {
        let ip = canonical(ip);
        Net { addr: ip, prefix: max_prefix(ip) }
    }

    /// A network; host bits of `addr` are cleared.
    pub fn new(addr: IpAddr, prefix: u8) -> Result<Net, NetError> {
        let addr = canonical(addr);
        let max = max_prefix(addr);
        // An IPv4-mapped network given in IPv6 notation keeps its meaning.
        let prefix = match (addr, prefix) {
            (IpAddr::V4(_), p) if p > 32 && p <= 128 && max == 32 => return Err(NetError::Prefix(u32::from(p))),
            (_, p) => p,
        };
        if prefix > max {
            return Err(NetError::Prefix(u32::from(prefix)));
        }
        Ok(Net { addr: mask(addr, prefix), prefix })
    }

    pub fn addr(&self) -> IpAddr {
        self.addr
    }

    pub fn prefix(&self) -> u8 {
        self.prefix
    }

    pub fn is_host(&self) -> bool {
        self.prefix == max_prefix(self.addr)
    }

    /// Whether `ip` lies inside this network.
    pub fn contains_ip(&self, ip: IpAddr) -> bool {
        let ip = canonical(ip);
        same_family(self.addr, ip) && mask(ip, self.prefix) == self.addr
    }

    /// Whether `other` lies entirely inside this network.
    pub fn contains(&self, other: &Net) -> bool {
        other.prefix >= self.prefix && self.contains_ip(other.addr)
    }

    pub fn overlaps(&self, other: &Net) -> bool {
        self.contains(other) || other.contains(self)
    }

    /// This network minus `hole`: the smallest list of networks that covers
    /// exactly what is in `self` and not in `hole` (at most one per bit of
    /// prefix difference).
    pub fn subtract(&self, hole: &Net) -> Vec<Net> {
        if hole.contains(self) {
            return Vec::new();
        }
        if !self.contains(hole) {
            return vec![*self];
        }
        let mut out = Vec::new();
        let mut cur = *self;
        while cur.prefix < hole.prefix {
            let (lo, hi) = cur.halves();
            if lo.contains(hole) {
                out.push(hi);
                cur = lo;
            } else {
                out.push(lo);
                cur = hi;
            }
        }
        out.sort();
        out
    }

    fn halves(&self) -> (Net, Net) {
        let p = self.prefix + 1;
        let lo = Net { addr: self.addr, prefix: p };
        let hi_addr = match self.addr {
            IpAddr::V4(a) => IpAddr::V4(Ipv4Addr::from(u32::from(a) | (1u32 << (32 - u32::from(p))))),
            IpAddr::V6(a) => IpAddr::V6(Ipv6Addr::from(u128::from(a) | (1u128 << (128 - u32::from(p))))),
        };
        (lo, Net { addr: hi_addr, prefix: p })
    }
}

impl FromStr for Net {
    type Err = NetError;

    fn from_str(s: &str) -> Result<Net, NetError> {
        let s = s.trim();
        match s.split_once('/') {
            None => parse_ip(s.as_bytes()).map(Net::host).ok_or(NetError::Syntax),
            Some((a, p)) => {
                let addr = IpAddr::from_str(a).map_err(|_| NetError::Syntax)?;
                if p.is_empty() || p.len() > 3 || !p.bytes().all(|b| b.is_ascii_digit()) {
                    return Err(NetError::Syntax);
                }
                let p: u32 = p.parse().map_err(|_| NetError::Syntax)?;
                let p8 = u8::try_from(p).map_err(|_| NetError::Prefix(p))?;
                // `::ffff:192.0.2.0/120` means 192.0.2.0/24.
                match (addr, canonical(addr)) {
                    (IpAddr::V6(_), IpAddr::V4(v4)) => {
                        if !(96..=128).contains(&p) {
                            return Err(NetError::Prefix(p));
                        }
                        Net::new(IpAddr::V4(v4), p8 - 96)
                    }
                    _ => Net::new(addr, p8),
                }
            }
        }
    }
}

impl fmt::Display for Net {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.is_host() {
            write!(f, "{}", self.addr)
        } else {
            write!(f, "{}/{}", self.addr, self.prefix)
        }
    }
}

impl Ord for Net {
    /// IPv4 before IPv6, numerically by network address, then shorter
    /// prefix (the larger network) first.
    fn cmp(&self, other: &Net) -> Ordering {
        ip_order(self.addr, other.addr).then(self.prefix.cmp(&other.prefix))
    }
}

impl PartialOrd for Net {
    fn partial_cmp(&self, other: &Net) -> Option<Ordering> {
        Some(self.cmp(other))
    }
}

/// IPv4 numerically, then IPv6 numerically.
pub fn ip_order(a: IpAddr, b: IpAddr) -> Ordering {
    match (a, b) {
        (IpAddr::V4(a), IpAddr::V4(b)) => a.cmp(&b),
        (IpAddr::V6(a), IpAddr::V6(b)) => a.cmp(&b),
        (IpAddr::V4(_), IpAddr::V6(_)) => Ordering::Less,
        (IpAddr::V6(_), IpAddr::V4(_)) => Ordering::Greater,
    }
}

/// Drops every entry of a sorted list that another entry of the list
/// contains, so interval sets get no overlapping elements.
pub fn collapse(sorted: &[Net]) -> Vec<Net> {
    let mut out: Vec<Net> = Vec::with_capacity(sorted.len());
    for n in sorted {
        match out.last() {
            Some(last) if last.contains(n) => {}
            _ => out.push(*n),
        }
    }
    out
}

/// Ranges that are never listed, whatever the logs say: an entry here could
/// only be a spoofed or local address, and blocking it breaks the host.
pub fn reserved() -> Vec<(Net, &'static str)> {
    let n = |s: &str| s.parse::<Net>().expect("built-in network");
    vec![
        (n("0.0.0.0/32"), "unspecified"),
        (n("127.0.0.0/8"), "loopback"),
        (n("169.254.0.0/16"), "link-local"),
        (n("224.0.0.0/4"), "multicast"),
        (n("255.255.255.255/32"), "broadcast"),
        (n("::/128"), "unspecified"),
        (n("::1/128"), "loopback"),
        (n("fe80::/10"), "link-local"),
        (n("ff00::/8"), "multicast"),
    ]
}

fn max_prefix(ip: IpAddr) -> u8 {
    match ip {
        IpAddr::V4(_) => 32,
        IpAddr::V6(_) => 128,
    }
}

fn same_family(a: IpAddr, b: IpAddr) -> bool {
    a.is_ipv4() == b.is_ipv4()
}

fn mask(ip: IpAddr, prefix: u8) -> IpAddr {
    match ip {
        IpAddr::V4(a) => {
            let m = if prefix == 0 { 0 } else { u32::MAX << (32 - u32::from(prefix)) };
            IpAddr::V4(Ipv4Addr::from(u32::from(a) & m))
        }
        IpAddr::V6(a) => {
            let m = if prefix == 0 { 0 } else { u128::MAX << (128 - u32::from(prefix)) };
            IpAddr::V6(Ipv6Addr::from(u128::from(a) & m))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn n(s: &str) -> Net {
        s.parse().unwrap()
    }

    #[test]
    fn parses_and_normalizes() {
        assert_eq!(parse_ip(b"192.0.2.1"), Some("192.0.2.1".parse().unwrap()));
        assert_eq!(parse_ip(b"::ffff:192.0.2.1"), Some("192.0.2.1".parse().unwrap()));
        assert_eq!(parse_ip(b"fe80::1%em0"), Some("fe80::1".parse().unwrap()));
        for bad in [&b""[..], b"999.1.1.1", b"192.0.2.1.5", b"example.com", b"[::1]", b"1.2.3.4 ", b"\xff"] {
            assert_eq!(parse_ip(bad), None, "{:?}", bad.escape_ascii().to_string());
        }
    }

    #[test]
    fn ipv4_fast_path_agrees_with_std() {
        for s in [
            "0.0.0.0",
            "255.255.255.255",
            "192.0.2.1",
            "1.2.3.04",
            "1.2.3.256",
            "1.2.3",
            "1.2.3.4.",
            ".1.2.3",
            "1..2.3",
            "01.2.3.4",
            "1.2.3.-4",
            "1.2.3.4a",
            "1.2.3.+4",
        ] {
            assert_eq!(parse_ipv4(s.as_bytes()), s.parse::<Ipv4Addr>().ok(), "{s}");
        }
    }

    #[test]
    fn nets() {
        assert_eq!(n("192.0.2.77/24").to_string(), "192.0.2.0/24");
        assert_eq!(n("192.0.2.7/32").to_string(), "192.0.2.7");
        assert_eq!(n("::ffff:192.0.2.0/120").to_string(), "192.0.2.0/24");
        assert_eq!(n("2001:db8::1/32").to_string(), "2001:db8::/32");
        assert!("192.0.2.0/33".parse::<Net>().is_err());
        assert!("192.0.2.0/".parse::<Net>().is_err());
        assert!("192.0.2.0/-1".parse::<Net>().is_err());
        assert!("junk".parse::<Net>().is_err());
        assert!(n("192.0.2.0/24").contains(&n("192.0.2.9")));
        assert!(!n("192.0.2.0/24").contains(&n("198.51.100.9")));
        assert!(!n("::/0").contains(&n("192.0.2.9")));
    }

    #[test]
    fn order_is_v4_numeric_then_v6() {
        let mut v = vec![n("2001:db8::1"), n("10.0.0.2"), n("9.0.0.1"), n("10.0.0.0/8"), n("::2")];
        v.sort();
        let s: Vec<String> = v.iter().map(|x| x.to_string()).collect();
        assert_eq!(s, ["9.0.0.1", "10.0.0.0/8", "10.0.0.2", "::2", "2001:db8::1"]);
        assert_eq!(collapse(&v).len(), 4);
    }

    #[test]
    fn wide_networks_need_force() {
        for ok in ["192.0.2.1", "10.0.0.0/8", "2001:db8::/32", "2001:db8::1"] {
            assert_eq!(check_width(n(ok), false), Ok(n(ok)), "{ok}");
        }
        for wide in ["0.0.0.0/0", "0.0.0.0/1", "10.0.0.0/7", "::/0", "2001::/31", "::ffff:0.0.0.0/96"] {
            let e = check_width(n(wide), false).unwrap_err();
            assert!(matches!(e, NetError::TooWide { .. }), "{wide}: {e}");
            assert!(e.to_string().contains("large part of the internet"), "{e}");
            assert_eq!(check_width(n(wide), true), Ok(n(wide)));
        }
    }

    #[test]
    fn subtract_splits_around_hole() {
        let parts = n("192.0.2.0/24").subtract(&n("192.0.2.9"));
        assert_eq!(parts.len(), 8);
        assert!(parts.iter().all(|p| !p.contains_ip("192.0.2.9".parse().unwrap())));
        let covered: u32 = parts.iter().map(|p| 1u32 << (32 - u32::from(p.prefix()))).sum();
        assert_eq!(covered, 255);
        assert!(n("192.0.2.9").subtract(&n("192.0.2.0/24")).is_empty());
        assert_eq!(n("198.51.100.1").subtract(&n("192.0.2.0/24")), vec![n("198.51.100.1")]);
    }
}
