//! nftables: four sets in one table, an IPv4 and an IPv6 pair. Single
//! addresses go to plain hash sets (`badguys4_hosts`, `badguys6_hosts`),
//! networks to interval sets with auto-merge (`badguys4`, `badguys6`, the
//! names older rulesets had for one set holding both). An interval set with
//! auto-merge costs nft a read of the whole set for every change: one
//! `add element` of one address into an interval set of 1,000,000 entries
//! took 96-189 s; into a hash set it takes 30-76 ms (figures in the
//! README's Performance section, from `scripts/nft-bench`).
//!
//! A replace is one `nft -f -` transaction that flushes and refills all
//! four: nft applies a whole input as one netlink batch, so the sets are
//! never seen half-filled. Each set gets one `add element` statement: the
//! kernel needs no chunking at these sizes.
//!
//! That flush and refill holds the lock for seconds at 1,000,000 entries,
//! so when the caller knows what the sets hold (the list it published
//! last) a replace sends only the difference: one transaction of `delete
//! element` then `add element` statements. A `delete element` of an
//! element the set does not hold (removed by hand, merged by auto-merge
//! into a wider interval) fails the whole transaction, which then changes
//! nothing: the replace falls back to the flush and refill.

use std::cmp::Ordering;
use std::fmt::Write;

use tracing::{debug, warn};

use crate::addr::{collapse, Net};
use crate::Error;

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct NftTarget {
    /// `inet` (the only family that can hold both sets in one table).
    pub family: String,
    pub table: String,
    /// The IPv4 interval set: networks (`--nft-set4`).
    pub set4: String,
    /// The IPv6 interval set: networks (`--nft-set6`).
    pub set6: String,
}

/// The name of the host set beside the network set `set`.
pub fn host_set(set: &str) -> String {
    format!("{set}_hosts")
}

impl NftTarget {
    /// Makes the sets hold `entries` (sorted): the difference from
    /// `previous` (sorted, what the sets hold) when given, else or when
    /// that fails a flush and refill.
    pub fn replace(&self, entries: &[Net], previous: Option<&[Net]>) -> Result<(), Error> {
        if let Some(previous) = previous {
            let diff = diff_script(self, previous, entries);
            if diff.is_empty() {
                return Ok(());
            }
            match super::run("nft", &["-f", "-"], Some(diff.as_bytes())) {
                Ok(()) => {
                    debug!("nftables: {} entries, difference sent", entries.len());
                    return Ok(());
                }
                Err(e) => warn!("nftables: the sets differ from the last publish ({e}): flushing and refilling them"),
            }
        }
        super::run("nft", &["-f", "-"], Some(script(self, entries).as_bytes()))
    }

    /// One transaction adding `entries` to the sets, each to its own.
    pub fn add(&self, entries: &[Net]) -> Result<(), Error> {
        let mut s = String::new();
        for (set, list) in self.split(entries) {
            if !list.is_empty() {
                let items: Vec<String> = list.iter().map(|n| n.to_string()).collect();
                let _ = writeln!(s, "add element {} {} {} {{ {} }}", self.family, self.table, set, items.join(", "));
            }
        }
        super::run("nft", &["-f", "-"], Some(s.as_bytes()))
    }

    /// Each of the four sets must exist. A table from an older ruleset has
    /// only the interval sets: the error says to load the new one.
    pub fn check(&self) -> Result<(), Error> {
        for set in self.sets() {
            super::run("nft", &["list", "set", &self.family, &self.table, &set], None).map_err(|e| match e {
                Error::Firewall { command, status, stderr } if set.ends_with("_hosts") => Error::Firewall {
                    command,
                    status,
                    stderr: format!(
                        "{stderr} (a ruleset from before badguys kept hosts and networks apart: \
                         load the new badguys.nft, then run badguys reload)"
                    ),
                },
                e => e,
            })?;
        }
        Ok(())
    }

    /// The four set names, in the order a replace fills them.
    pub fn sets(&self) -> [String; 4] {
        [host_set(&self.set4), self.set4.clone(), host_set(&self.set6), self.set6.clone()]
    }

    /// `entries` by set, in the order of [`NftTarget::sets`].
    fn split<'a>(&self, entries: &'a [Net]) -> [(String, Vec<&'a Net>); 4] {
        let mut by = [Vec::new(), Vec::new(), Vec::new(), Vec::new()];
        for n in entries {
            by[usize::from(!n.addr().is_ipv4()) * 2 + usize::from(!n.is_host())].push(n);
        }
        let [a, b, c, d] = by;
        let [s0, s1, s2, s3] = self.sets();
        [(s0, a), (s1, b), (s2, c), (s3, d)]
    }
}

/// The transaction for `entries` (sorted). Entries that another entry
/// contains are left out: interval sets refuse overlapping elements, and a
/// host inside a listed network needs no element of its own.
pub fn script(t: &NftTarget, entries: &[Net]) -> String {
    let entries = collapse(entries);
    let mut s = String::with_capacity(256 + entries.len() * 20);
    let mut buf = Vec::new();
    for (set, list) in t.split(&entries) {
        let _ = writeln!(s, "flush set {} {} {}", t.family, t.table, set);
        if list.is_empty() {
            continue;
        }
        let _ = write!(s, "add element {} {} {} {{ ", t.family, t.table, set);
        for (i, n) in list.iter().enumerate() {
            if i > 0 {
                s.push_str(", ");
            }
            push_net(&mut s, &mut buf, **n);
        }
        s.push_str(" }\n");
    }
    s
}

/// The transaction that turns sets holding `before` into sets holding
/// `now` (both sorted, compared as [`script`] would fill them): the
/// deletions first, so that a network can give way to a narrower one.
/// Empty when nothing changes.
pub fn diff_script(t: &NftTarget, before: &[Net], now: &[Net]) -> String {
    let (before, now) = (collapse(before), collapse(now));
    let (mut removed, mut added) = (Vec::new(), Vec::new());
    let (mut b, mut n) = (before.iter().peekable(), now.iter().peekable());
    loop {
        match (b.peek(), n.peek()) {
            (Some(x), Some(y)) if x == y => {
                b.next();
                n.next();
            }
            (Some(x), Some(y)) if x.cmp(y) == Ordering::Greater => added.extend(n.next()),
            (Some(_), _) => removed.extend(b.next()),
            (None, Some(_)) => added.extend(n.next()),
            (None, None) => break,
        }
    }
    let (mut s, mut buf) = (String::new(), Vec::new());
    for (verb, list) in [("delete", &removed), ("add", &added)] {
        for (set, list) in t.split(list) {
            if list.is_empty() {
                continue;
            }
            let _ = write!(s, "{verb} element {} {} {} {{ ", t.family, t.table, set);
            for (k, n) in list.iter().enumerate() {
                if k > 0 {
                    s.push_str(", ");
                }
                push_net(&mut s, &mut buf, **n);
            }
            s.push_str(" }\n");
        }
    }
    s
}

/// Appends `n` as its `Display` would, without `core::fmt` (a million of
/// them in a full replace), through `buf`, reused.
fn push_net(s: &mut String, buf: &mut Vec<u8>, n: Net) {
    buf.clear();
    crate::store::textout::push_net(buf, n);
    // ASCII digits, dots, colons and a slash.
    s.push_str(std::str::from_utf8(buf).unwrap_or_default());
}

/// Whether `name` is safe to put in an nft script: a letter, then letters,
/// digits and underscores; short enough that its host set's name (six
/// more bytes) stays within nft's 64.
pub fn valid_name(name: &str) -> bool {
    let mut b = name.bytes();
    b.next().is_some_and(|c| c.is_ascii_alphabetic())
        && b.all(|c| c.is_ascii_alphanumeric() || c == b'_')
        && name.len() <= 58
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
        let mut e: Vec<Net> = ["192.0.2.0/24", "192.0.2.7", "198.51.100.1", "2001:db8::1", "2001:db8:1::/48"]
            .iter()
            .map(|s| s.parse().unwrap())
            .collect();
        e.sort();
        assert_eq!(
            script(&t, &e),
            "flush set inet badguys badguys4_hosts\nadd element inet badguys badguys4_hosts { 198.51.100.1 }\n\
             flush set inet badguys badguys4\nadd element inet badguys badguys4 { 192.0.2.0/24 }\n\
             flush set inet badguys badguys6_hosts\nadd element inet badguys badguys6_hosts { 2001:db8::1 }\n\
             flush set inet badguys badguys6\nadd element inet badguys badguys6 { 2001:db8:1::/48 }\n"
        );
        assert_eq!(
            script(&t, &[]),
            "flush set inet badguys badguys4_hosts\nflush set inet badguys badguys4\n\
             flush set inet badguys badguys6_hosts\nflush set inet badguys badguys6\n"
        );
        let before = e.clone();
        let mut now: Vec<Net> = ["192.0.2.0/24", "198.51.100.3", "2001:db8::1", "2001:db8:1::/48"]
            .iter()
            .map(|s| s.parse().unwrap())
            .collect();
        now.sort();
        assert_eq!(
            diff_script(&t, &before, &now),
            "delete element inet badguys badguys4_hosts { 198.51.100.1 }\n\
             add element inet badguys badguys4_hosts { 198.51.100.3 }\n"
        );
        assert_eq!(diff_script(&t, &now, &now), "");
        assert_eq!(diff_script(&t, &[], &now[..1]), "add element inet badguys badguys4 { 192.0.2.0/24 }\n",);
        assert!(valid_name("badguys4") && !valid_name("x; flush ruleset") && !valid_name("") && !valid_name("4x"));
        assert!(valid_name(&"a".repeat(58)) && !valid_name(&"a".repeat(59)));
    }
}
