//! nftables: one `nft -f -` transaction that flushes and refills an IPv4 and
//! an IPv6 interval set. nft applies a whole input as one netlink batch, so
//! the sets are never seen half-filled. Each set gets one `add element`
//! statement: measured on nft 1.0.6 with 100k addresses, one statement took
//! 0.76-0.82 s and statements of 8192 took 0.95-1.09 s, with the same peak
//! memory; the kernel needs no chunking at that size.

use std::fmt::Write;
use std::net::IpAddr;

use crate::addr::{collapse, Net};
use crate::Error;

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct NftTarget {
    /// `inet` (the only family that can hold both sets in one table).
    pub family: String,
    pub table: String,
    pub set4: String,
    pub set6: String,
}

impl NftTarget {
    pub fn replace(&self, entries: &[Net]) -> Result<(), Error> {
        super::run("nft", &["-f", "-"], Some(script(self, entries).as_bytes()))
    }

    /// One transaction adding `entries` to the sets.
    pub fn add(&self, entries: &[Net]) -> Result<(), Error> {
        let mut s = String::new();
        let (v4, v6): (Vec<&Net>, Vec<&Net>) = entries.iter().partition(|n| n.addr().is_ipv4());
        for (set, list) in [(&self.set4, v4), (&self.set6, v6)] {
            if !list.is_empty() {
                let items: Vec<String> = list.iter().map(|n| n.to_string()).collect();
                let _ = writeln!(s, "add element {} {} {} {{ {} }}", self.family, self.table, set, items.join(", "));
            }
        }
        super::run("nft", &["-f", "-"], Some(s.as_bytes()))
    }

    pub fn check(&self) -> Result<(), Error> {
        for set in [&self.set4, &self.set6] {
            super::run("nft", &["list", "set", &self.family, &self.table, set], None)?;
        }
        Ok(())
    }
}

/// The transaction for `entries` (sorted). Networks that another entry
/// contains are left out: interval sets refuse overlapping elements.
pub fn script(t: &NftTarget, entries: &[Net]) -> String {
    let entries = collapse(entries);
    let (v4, v6): (Vec<Net>, Vec<Net>) = entries.iter().partition(|n| matches!(n.addr(), IpAddr::V4(_)));
    let mut s = String::with_capacity(64 + entries.len() * 20);
    for (set, list) in [(&t.set4, &v4), (&t.set6, &v6)] {
        let _ = writeln!(s, "flush set {} {} {}", t.family, t.table, set);
        if list.is_empty() {
            continue;
        }
        let _ = write!(s, "add element {} {} {} {{ ", t.family, t.table, set);
        for (i, n) in list.iter().enumerate() {
            if i > 0 {
                s.push_str(", ");
            }
            let _ = write!(s, "{n}");
        }
        s.push_str(" }\n");
    }
    s
}

/// Whether `name` is safe to put in an nft script: a letter, then letters,
/// digits and underscores.
pub fn valid_name(name: &str) -> bool {
    let mut b = name.bytes();
    b.next().is_some_and(|c| c.is_ascii_alphabetic())
        && b.all(|c| c.is_ascii_alphanumeric() || c == b'_')
        && name.len() <= 64
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn script_shape() {
        let t = NftTarget {
            family: "inet".into(),
            table: "badguys".into(),
            set4: "badguys4".into(),
            set6: "badguys6".into(),
        };
        let mut e: Vec<Net> =
            ["192.0.2.0/24", "192.0.2.7", "198.51.100.1", "2001:db8::1"].iter().map(|s| s.parse().unwrap()).collect();
        e.sort();
        assert_eq!(
            script(&t, &e),
            "flush set inet badguys badguys4\nadd element inet badguys badguys4 { 192.0.2.0/24, 198.51.100.1 }\n\
             flush set inet badguys badguys6\nadd element inet badguys badguys6 { 2001:db8::1 }\n"
        );
        assert_eq!(script(&t, &[]), "flush set inet badguys badguys4\nflush set inet badguys badguys6\n");
        assert!(valid_name("badguys4") && !valid_name("x; flush ruleset") && !valid_name("") && !valid_name("4x"));
    }
}
