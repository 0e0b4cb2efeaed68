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
    out.sort_by(|a, b| a.net.cmp(&b.net));
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
pub fn covering<'a>(esc: &'a [Escalated], ip: IpAddr) -> Option<&'a Escalated> {
    esc.iter().find(|e| e.net.contains_ip(ip))
}
