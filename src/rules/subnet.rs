//! Network escalation (`--subnet-after K`, opt-in): when K addresses that
//! the rules list (not allowlisted) share one IPv4 /`--subnet-v4` or IPv6
//! /`--subnet-v6` network (24 and 48 by default; with `--ipv6-prefix 64`
//! the members are /64 records), the blocklist lists that network instead
//! of them. The allowlist is carved out of it, as out of every network,
//! and so is every address that logged in successfully and is spared (no
//! `--ban-accepted`): K attackers next to a real user must not get the
//! user blocked. Nothing is stored: the networks follow from the listed
//! records, so one leaves as soon as fewer than K of its members are
//! listed.

use std::collections::HashMap;
use std::net::IpAddr;

use super::Policy;
use crate::addr::{Net, MIN_BLOCK_PREFIX_V4, MIN_BLOCK_PREFIX_V6};
use crate::allow::Allowlist;
use crate::state::State;

/// The escalation knobs of a [`Policy`].
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Subnet {
    /// Listed members that make a network listed (at least 2).
    pub after: u32,
    /// The network sizes (prefix lengths) for IPv4 and IPv6.
    pub v4: u8,
    pub v6: u8,
}

/// The default network sizes.
pub const DEFAULT_V4: u8 = 24;
pub const DEFAULT_V6: u8 = 48;

/// The prefix lengths `--subnet-v4`/`--subnet-v6` accept: never wider than
/// what may be blocked without `--force` ([`crate::addr::check_width`]),
/// never a single address.
pub const V4_RANGE: (u8, u8) = (MIN_BLOCK_PREFIX_V4, 31);
pub const V6_RANGE: (u8, u8) = (MIN_BLOCK_PREFIX_V6, 127);

/// A network listed in place of its members.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Escalated {
    pub net: Net,
    /// Its listed members (record keys), sorted.
    pub members: Vec<IpAddr>,
    /// What is carved out of it for addresses that logged in (spared).
    pub spared: Vec<Net>,
}

impl Subnet {
    /// The settings resolved ([`crate::config`]); `None` without `after`.
    pub fn resolve(
        after: Option<u32>,
        v4: Option<u8>,
        v6: Option<u8>,
        ipv6_prefix: Option<u8>,
    ) -> Result<Option<Subnet>, String> {
        let Some(after) = after else {
            if v4.is_some() || v6.is_some() {
                return Err("--subnet-v4 and --subnet-v6 need --subnet-after".into());
            }
            return Ok(None);
        };
        let (v4, v6, prefix) = (v4.unwrap_or(DEFAULT_V4), v6.unwrap_or(DEFAULT_V6), ipv6_prefix.unwrap_or(64));
        if v6 >= prefix {
            return Err(format!(
                "--subnet-v6 {v6} must be shorter than --ipv6-prefix {prefix} (records are /{prefix} networks)"
            ));
        }
        Ok(Some(Subnet { after, v4, v6 }))
    }

    /// The network a record key falls in.
    fn group(&self, key: IpAddr) -> Option<Net> {
        let len = if key.is_ipv4() { self.v4 } else { self.v6 };
        Net::new(key, len).ok()
    }
}

/// The networks that escalate now, sorted.
pub fn escalated(state: &State, policy: &Policy, allow: &Allowlist) -> Vec<Escalated> {
    let Some(sub) = policy.subnet else { return Vec::new() };
    let mut groups: HashMap<Net, Vec<IpAddr>> = HashMap::new();
    for (ip, r) in &state.records {
        if r.listed.is_none() || allow.find(*ip).is_some() {
            continue;
        }
        let Some(g) = sub.group(*ip) else { continue };
        // A record wider than the network (an IPv6 record of a shorter
        // --ipv6-prefix) is listed as it is.
        if g.contains(&policy.net(*ip)) {
            groups.entry(g).or_default().push(*ip);
        }
    }
    groups.retain(|_, m| m.len() >= sub.after.max(2) as usize);
    if groups.is_empty() {
        return Vec::new();
    }
    let mut spared: HashMap<Net, Vec<Net>> = HashMap::new();
    if !policy.ban_accepted {
        for (ip, r) in &state.records {
            if r.logins == 0 || r.listed.is_some() {
                continue;
            }
            if let Some(g) = sub.group(*ip).filter(|g| groups.contains_key(g)) {
                spared.entry(g).or_default().push(policy.net(*ip));
            }
        }
    }
    let mut out: Vec<Escalated> = groups
        .into_iter()
        .map(|(net, mut members)| {
            members.sort_by(|a, b| crate::addr::ip_order(*a, *b));
            let mut s = spared.remove(&net).unwrap_or_default();
            s.sort();
            Escalated { net, members, spared: s }
        })
        .collect();
    out.sort_by_key(|e| e.net);
    out
}

/// `net` minus the spared addresses (after the allowlist's carve).
pub(super) fn carve_spared(pieces: Vec<Net>, spared: &[Net]) -> Vec<Net> {
    let mut pieces = pieces;
    for hole in spared {
        if pieces.iter().any(|p| p.overlaps(hole)) {
            pieces = pieces.iter().flat_map(|p| p.subtract(hole)).collect();
        }
    }
    pieces
}

/// The record keys an escalated network lists, for a lookup per record.
pub(super) struct Members<'a> {
    nets: std::collections::HashSet<Net>,
    policy: &'a Policy,
}

impl<'a> Members<'a> {
    pub(super) fn new(esc: &[Escalated], policy: &'a Policy) -> Members<'a> {
        Members { nets: esc.iter().map(|e| e.net).collect(), policy }
    }

    /// Whether the record `key` is listed through its network.
    pub(super) fn contains(&self, key: IpAddr) -> bool {
        let Some(sub) = self.policy.subnet.filter(|_| !self.nets.is_empty()) else { return false };
        sub.group(key).is_some_and(|g| self.nets.contains(&g) && g.contains(&self.policy.net(key)))
    }
}

/// Whether one of `listed` (just listed) is in a network that escalates
/// now: `watch` then publishes the whole list instead of adding hosts.
pub fn touches(esc: &[Escalated], listed: &[IpAddr]) -> bool {
    esc.iter().any(|e| listed.iter().any(|ip| e.net.contains_ip(*ip)))
}

/// The escalated network that covers `ip`, if any.
pub fn covering(esc: &[Escalated], ip: IpAddr) -> Option<&Escalated> {
    esc.iter().find(|e| e.net.contains_ip(ip))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::allow::AllowSource;
    use crate::parse::{Rule, What};
    use crate::rules::{blocklist, count, evaluate};

    const A: What = What::Attack(Rule::InvalidUser);

    fn ip(s: &str) -> IpAddr {
        s.parse().unwrap()
    }

    fn list(s: &State, p: &Policy, allow: &Allowlist) -> Vec<String> {
        blocklist(s, p, allow, &mut |_, _, _| {}).iter().map(|n| n.to_string()).collect()
    }

    fn attack(s: &mut State, p: &Policy, allow: &Allowlist, addrs: &[&str], t: i64) {
        let ips: Vec<IpAddr> = addrs.iter().map(|a| p.key(ip(a))).collect();
        for x in &ips {
            count(s, p, A, *x, None, 1, t);
        }
        evaluate(s, Some(&ips), allow, p, t);
    }

    #[test]
    fn k_listed_neighbours_list_their_network_minus_allowed_and_logged_in() {
        let p = Policy { subnet: Some(Subnet { after: 3, v4: 24, v6: 48 }), expire: Some(100), ..Policy::default() };
        let mut allow = Allowlist::new();
        allow.push("192.0.2.200".parse().unwrap(), AllowSource::Flag);
        let mut s = State::default();
        // A user who logged in from the same /24.
        count(&mut s, &p, What::Login, ip("192.0.2.128"), Some(b"alice"), 1, 0);
        attack(&mut s, &p, &allow, &["192.0.2.1", "192.0.2.2", "198.51.100.1"], 10);
        assert_eq!(list(&s, &p, &allow), ["192.0.2.1", "192.0.2.2", "198.51.100.1"], "K-1 members");
        attack(&mut s, &p, &allow, &["192.0.2.3"], 20);
        let l = list(&s, &p, &allow);
        assert!(l.contains(&"198.51.100.1".to_string()) && !l.contains(&"192.0.2.1".to_string()), "{l:?}");
        let nets: Vec<Net> = l.iter().map(|n| n.parse().unwrap()).collect();
        let covered = |a: &str| nets.iter().any(|n| n.contains_ip(ip(a)));
        for a in ["192.0.2.1", "192.0.2.3", "192.0.2.99", "192.0.2.255"] {
            assert!(covered(a), "{a}: {l:?}");
        }
        assert!(!covered("192.0.2.128"), "the logged-in user stays reachable: {l:?}");
        assert!(!covered("192.0.2.200"), "the allowlisted address stays reachable: {l:?}");
        let esc = escalated(&s, &p, &allow);
        assert_eq!(esc.len(), 1);
        assert_eq!((esc[0].net.to_string(), esc[0].members.len()), ("192.0.2.0/24".to_string(), 3));
        assert_eq!(esc[0].spared, [Net::host(ip("192.0.2.128"))]);
        assert!(touches(&esc, &[ip("192.0.2.3")]) && !touches(&esc, &[ip("198.51.100.1")]));
        // The first two expire: fewer than K members, the network leaves.
        evaluate(&mut s, Some(&[]), &allow, &p, 115);
        assert_eq!(list(&s, &p, &allow), ["192.0.2.3"]);
        // With --ban-accepted nothing is carved for the login.
        let p = Policy { ban_accepted: true, ..p };
        attack(&mut s, &p, &allow, &["192.0.2.1", "192.0.2.2"], 120);
        assert!(escalated(&s, &p, &allow)[0].spared.is_empty());
    }

    #[test]
    fn ipv6_64_records_escalate_to_their_48() {
        let p = Policy { subnet: Some(Subnet { after: 2, v4: 24, v6: 48 }), ..Policy::default() };
        let allow = Allowlist::new();
        let mut s = State::default();
        attack(&mut s, &p, &allow, &["2001:db8:1:2::7", "2001:db8:2:1::1"], 0);
        assert_eq!(list(&s, &p, &allow), ["2001:db8:1:2::/64", "2001:db8:2:1::/64"]);
        attack(&mut s, &p, &allow, &["2001:db8:1:ffff::1"], 0);
        assert_eq!(list(&s, &p, &allow), ["2001:db8:1::/48", "2001:db8:2:1::/64"]);
        // A login in the /48 spares its whole /64.
        count(&mut s, &p, What::Login, p.key(ip("2001:db8:1:5::9")), Some(b"bob"), 1, 1);
        let l = list(&s, &p, &allow);
        let nets: Vec<Net> = l.iter().map(|n| n.parse().unwrap()).collect();
        assert!(!nets.iter().any(|n| n.overlaps(&"2001:db8:1:5::/64".parse().unwrap())), "{l:?}");
        assert!(nets.iter().any(|n| n.contains_ip(ip("2001:db8:1:6::1"))), "{l:?}");
    }
}
