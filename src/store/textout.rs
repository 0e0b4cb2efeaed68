//! Writing integers, addresses and networks as text into a byte buffer
//! without `core::fmt`: the state file writes several per record, and a
//! callgrind profile of a first `sync` showed `core::fmt` integer and
//! address formatting as most of the state file's cost; the list file, the
//! state's `manual` and `published` lines and the nft scripts write one
//! network per entry (a perf profile of watch's reconcile at 1,000,000
//! entries had `Net`'s `Display` at 12%). The output is the same as
//! `Display` (a test compares them on many values).

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

use crate::addr::Net;

/// Appends `n` in decimal.
pub fn push_u64(out: &mut Vec<u8>, mut n: u64) {
    let mut buf = [0u8; 20];
    let mut i = buf.len();
    loop {
        i -= 1;
        buf[i] = b'0' + (n % 10) as u8;
        n /= 10;
        if n == 0 {
            break;
        }
    }
    out.extend_from_slice(&buf[i..]);
}

/// Appends `n` in decimal, with a `-` when negative.
pub fn push_i64(out: &mut Vec<u8>, n: i64) {
    if n < 0 {
        out.push(b'-');
    }
    push_u64(out, n.unsigned_abs());
}

/// Appends `n` as 16 lowercase hex digits (`{:016x}`).
pub fn push_hex16(out: &mut Vec<u8>, n: u64) {
    for i in (0..16).rev() {
        out.push(HEX[((n >> (i * 4)) & 0xf) as usize]);
    }
}

const HEX: &[u8; 16] = b"0123456789abcdef";

/// Appends `n` in lowercase hex without leading zeros (`{:x}`).
fn push_hex(out: &mut Vec<u8>, n: u16) {
    let mut started = false;
    for i in (0..4).rev() {
        let d = (n >> (i * 4)) & 0xf;
        if d != 0 || started || i == 0 {
            out.push(HEX[d as usize]);
            started = true;
        }
    }
}

pub fn push_v4(out: &mut Vec<u8>, ip: Ipv4Addr) {
    for (i, o) in ip.octets().into_iter().enumerate() {
        if i > 0 {
            out.push(b'.');
        }
        push_u64(out, u64::from(o));
    }
}

/// As `Ipv6Addr`'s `Display`: RFC 5952, the longest run of two or more
/// zero groups (the first of equals) as `::`, IPv4-mapped as
/// `::ffff:a.b.c.d`.
pub fn push_v6(out: &mut Vec<u8>, ip: Ipv6Addr) {
    if let Some(v4) = ip.to_ipv4_mapped() {
        out.extend_from_slice(b"::ffff:");
        push_v4(out, v4);
        return;
    }
    let s = ip.segments();
    let (mut best, mut best_len) = (0, 0);
    let mut i = 0;
    while i < 8 {
        if s[i] == 0 {
            let start = i;
            while i < 8 && s[i] == 0 {
                i += 1;
            }
            if i - start > best_len {
                (best, best_len) = (start, i - start);
            }
        } else {
            i += 1;
        }
    }
    let groups = |out: &mut Vec<u8>, g: &[u16]| {
        for (i, &x) in g.iter().enumerate() {
            if i > 0 {
                out.push(b':');
            }
            push_hex(out, x);
        }
    };
    if best_len > 1 {
        groups(out, &s[..best]);
        out.extend_from_slice(b"::");
        groups(out, &s[best + best_len..]);
    } else {
        groups(out, &s);
    }
}

pub fn push_ip(out: &mut Vec<u8>, ip: IpAddr) {
    match ip {
        IpAddr::V4(a) => push_v4(out, a),
        IpAddr::V6(a) => push_v6(out, a),
    }
}

/// As `Net`'s `Display`: the address, and `/PREFIX` for a network.
pub fn push_net(out: &mut Vec<u8>, net: Net) {
    push_ip(out, net.addr());
    if !net.is_host() {
        out.push(b'/');
        push_u64(out, u64::from(net.prefix()));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn s(f: impl FnOnce(&mut Vec<u8>)) -> String {
        let mut v = Vec::new();
        f(&mut v);
        String::from_utf8(v).unwrap()
    }

    #[test]
    fn integers_and_addresses_match_display() {
        let mut x: u64 = 0x9e37_79b9_7f4a_7c15;
        let mut next = || {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            x
        };
        for n in [0, 1, 9, 10, 99, 100, u64::MAX, i64::MAX as u64] {
            assert_eq!(s(|o| push_u64(o, n)), n.to_string());
            assert_eq!(s(|o| push_hex16(o, n)), format!("{n:016x}"));
        }
        for n in [0, -1, -10, i64::MIN, i64::MAX, 1_727_793_800] {
            assert_eq!(s(|o| push_i64(o, n)), n.to_string());
        }
        for _ in 0..20_000 {
            let r = next();
            let n = r >> (r % 64);
            assert_eq!(s(|o| push_u64(o, n)), n.to_string());
            assert_eq!(s(|o| push_i64(o, n as i64)), (n as i64).to_string());
            let v4 = Ipv4Addr::from((r >> 32) as u32);
            assert_eq!(s(|o| push_v4(o, v4)), v4.to_string());
            // Sparse groups so that runs of zeros of every length occur.
            let mut g = [0u16; 8];
            let mask = next();
            for (i, seg) in g.iter_mut().enumerate() {
                if mask >> i & 1 == 1 {
                    *seg = (next() >> (next() % 16)) as u16;
                }
            }
            let v6 = Ipv6Addr::from(g);
            assert_eq!(s(|o| push_v6(o, v6)), v6.to_string(), "{g:?}");
            for (ip, p) in [(IpAddr::V4(v4), (r % 33) as u8), (IpAddr::V6(v6), (r % 129) as u8)] {
                let net = Net::new(ip, p).unwrap();
                assert_eq!(s(|o| push_net(o, net)), net.to_string());
            }
        }
        for t in ["::", "::1", "1::", "::ffff:192.0.2.1", "::192.0.2.1", "2001:db8::1:0:0:1", "2001:db8:0:1:1:1:1:1"] {
            let v6: Ipv6Addr = t.parse().unwrap();
            assert_eq!(s(|o| push_ip(o, IpAddr::V6(v6))), v6.to_string());
        }
    }
}
