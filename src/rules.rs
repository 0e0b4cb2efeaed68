//! Who is listed. An address is listed once its attacks reach `--threshold`
//! within `--window`, unless the allowlist spares it or, without
//! `--ban-accepted`, it has logged in successfully. A listed address leaves
//! the list when it has not been seen for `--expire`, or by `unban`; manual
//! bans lapse at their `--for`. The blocklist is the listed addresses and
//! the manual bans, minus the allowlist.

use std::collections::BTreeSet;
use std::net::IpAddr;

use crate::addr::{ip_order, Net};
use crate::parse::What;
use crate::state::{AllowEntry, Allowlist, Record, State};

/// The knobs of the decision.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Policy {
    /// Attacks needed before an address is listed (at least 1).
    pub threshold: u32,
    /// Within this many seconds; any time span when `None`.
    pub window: Option<i64>,
    /// Listed addresses not seen for this many seconds leave the list.
    pub expire: Option<i64>,
    /// List addresses that logged in successfully, too.
    pub ban_accepted: bool,
}

impl Default for Policy {
    fn default() -> Policy {
        Policy { threshold: 1, window: None, expire: None, ban_accepted: false }
    }
}

/// Why an attacking address is not listed.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Spared {
    Allowed(AllowEntry),
    /// It logged in successfully.
    Accepted,
}

/// Counts one event into the state. Returns whether the address now meets
/// the threshold (and should be evaluated).
pub fn count(state: &mut State, policy: &Policy, what: What, ip: IpAddr, user: Option<&[u8]>, n: u32, t: i64) -> bool {
    let rec = state.record(ip);
    rec.add(what, user, n, t, policy.threshold as usize);
    matches!(what, What::Attack(_)) && qualifies(rec, policy)
}

/// Whether a record's recent attacks meet the threshold within the window.
pub fn qualifies(rec: &Record, policy: &Policy) -> bool {
    let need = policy.threshold.max(1) as usize;
    let r = &rec.recent;
    r.len() >= need && policy.window.is_none_or(|w| r.windows(need).any(|s| s[need - 1].saturating_sub(s[0]) <= w))
}

/// What one evaluation changed.
#[derive(Debug, Default)]
pub struct Outcome {
    /// Newly listed, sorted.
    pub listed: Vec<IpAddr>,
    /// Reached the threshold but spared, sorted.
    pub spared: Vec<(IpAddr, Spared)>,
    /// Left the list by expiry.
    pub expired: Vec<IpAddr>,
    /// Manual bans whose time ran out.
    pub lapsed: Vec<Net>,
}

/// Lists the addresses that meet the threshold unless spared, and expires
/// what is due at `now`. `only` limits the listing check to the addresses a
/// batch touched; `None` checks every record (a changed policy applies to
/// what is already known).
pub fn evaluate(state: &mut State, only: Option<&[IpAddr]>, allow: &Allowlist, policy: &Policy, now: i64) -> Outcome {
    let mut out = Outcome::default();
    let mut check: Vec<IpAddr> = match only {
        Some(ips) => ips.to_vec(),
        None => state
            .records
            .iter()
            .filter(|(_, r)| r.listed.is_none() && qualifies(r, policy))
            .map(|(ip, _)| *ip)
            .collect(),
    };
    check.sort_by(|a, b| ip_order(*a, *b));
    check.dedup();
    for ip in check {
        let Some(rec) = state.records.get_mut(&ip) else { continue };
        if rec.listed.is_some() || !qualifies(rec, policy) {
            continue;
        }
        if let Some(e) = allow.find(ip) {
            out.spared.push((ip, Spared::Allowed(e.clone())));
        } else if rec.logins > 0 && !policy.ban_accepted {
            out.spared.push((ip, Spared::Accepted));
        } else {
            rec.listed = Some(rec.last.min(now));
            rec.was_listed = true;
            out.listed.push(ip);
        }
    }
    if let Some(expire) = policy.expire {
        for (ip, rec) in state.records.iter_mut() {
            if rec.listed.is_some() && now.saturating_sub(rec.last) > expire {
                rec.listed = None;
                rec.recent.clear();
                out.expired.push(*ip);
            }
        }
        out.expired.sort_by(|a, b| ip_order(*a, *b));
    }
    state.manual.retain(|net, m| {
        let keep = m.until.is_none_or(|u| u > now);
        if !keep {
            out.lapsed.push(*net);
        }
        keep
    });
    out
}

/// Takes an address off the list ("it comes back only if it attacks
/// again"): its recent hits are forgotten. Returns whether anything changed.
pub fn unban(state: &mut State, net: &Net) -> bool {
    let mut changed = state.manual.remove(net).is_some();
    for (ip, rec) in state.records.iter_mut() {
        if net.contains_ip(*ip) && rec.listed.is_some() {
            rec.listed = None;
            rec.recent.clear();
            changed = true;
        }
    }
    changed
}

/// The blocklist: listed addresses and manual bans minus the allowlist,
/// sorted and deduplicated. `cut` is called for each entry the allowlist
/// carves something out of.
pub fn blocklist(state: &State, allow: &Allowlist, cut: &mut dyn FnMut(Net, &AllowEntry, usize)) -> Vec<Net> {
    let mut set: BTreeSet<Net> = BTreeSet::new();
    let hosts = state.records.iter().filter(|(_, r)| r.listed.is_some()).map(|(ip, _)| Net::host(*ip));
    for net in hosts.chain(state.manual.keys().copied()) {
        if net.is_host() {
            // The common case: one lookup instead of a carve.
            match allow.find(net.addr()) {
                Some(e) => cut(net, e, 0),
                None => {
                    set.insert(net);
                }
            }
            continue;
        }
        let (pieces, entries) = allow.carve(net);
        for e in entries {
            cut(net, e, pieces.len());
        }
        set.extend(pieces);
    }
    set.into_iter().collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::parse::Rule;

    const A: What = What::Attack(Rule::InvalidUser);

    fn ip(s: &str) -> IpAddr {
        s.parse().unwrap()
    }

    #[test]
    fn threshold_within_window() {
        let p = Policy { threshold: 3, window: Some(60), ..Policy::default() };
        let mut s = State::default();
        let x = ip("192.0.2.1");
        assert!(!count(&mut s, &p, A, x, None, 1, 0));
        assert!(!count(&mut s, &p, A, x, None, 1, 50));
        assert!(!count(&mut s, &p, A, x, None, 1, 100), "3 hits over 100 s");
        assert!(count(&mut s, &p, A, x, None, 1, 101), "50, 100, 101 within 60 s");
        let allow = Allowlist::new();
        let out = evaluate(&mut s, Some(&[x]), &allow, &p, 200);
        assert_eq!(out.listed, vec![x]);
        assert_eq!(blocklist(&s, &allow, &mut |_, _, _| {}), vec![Net::host(x)]);
        // A repeat counts N times.
        let y = ip("192.0.2.2");
        assert!(count(&mut s, &p, A, y, None, 3, 10));
    }

    #[test]
    fn expiry_and_unban_need_new_attacks() {
        let p = Policy { expire: Some(100), ..Policy::default() };
        let mut s = State::default();
        let x = ip("192.0.2.1");
        assert!(count(&mut s, &p, A, x, None, 1, 0));
        let allow = Allowlist::new();
        evaluate(&mut s, None, &allow, &p, 10);
        assert!(evaluate(&mut s, Some(&[]), &allow, &p, 50).expired.is_empty());
        assert_eq!(evaluate(&mut s, Some(&[]), &allow, &p, 101).expired, vec![x]);
        assert!(blocklist(&s, &allow, &mut |_, _, _| {}).is_empty());
        assert!(count(&mut s, &p, A, x, None, 1, 120));
        evaluate(&mut s, Some(&[x]), &allow, &p, 120);
        assert!(unban(&mut s, &Net::host(x)));
        assert!(blocklist(&s, &allow, &mut |_, _, _| {}).is_empty());
    }

    #[test]
    fn times_at_the_ends_of_the_clock_never_wrap() {
        // Times from a state file or a long --expire: sums and differences
        // saturate instead of wrapping (and panicking in debug builds).
        let p = Policy { threshold: 2, window: Some(60), expire: Some(100), ban_accepted: false };
        let mut s = State::default();
        let x = ip("192.0.2.1");
        count(&mut s, &p, A, x, None, 1, i64::MIN);
        assert!(!count(&mut s, &p, A, x, None, 1, i64::MAX), "a span of the whole clock is not within 60 s");
        let mut s = State::default();
        assert!(count(&mut s, &p, A, x, None, 2, 0));
        let allow = Allowlist::new();
        assert_eq!(evaluate(&mut s, None, &allow, &p, 0).listed, vec![x]);
        s.records.get_mut(&x).unwrap().last = i64::MIN;
        assert_eq!(evaluate(&mut s, Some(&[]), &allow, &p, i64::MAX).expired, vec![x]);
    }

    #[test]
    fn logins_and_allowlist_spare() {
        let p = Policy::default();
        let mut s = State::default();
        let (x, lo) = (ip("192.0.2.1"), ip("127.0.0.1"));
        count(&mut s, &p, What::Login, x, Some(b"admin"), 1, 0);
        assert!(count(&mut s, &p, A, x, Some(b"admn"), 1, 1));
        assert!(count(&mut s, &p, A, lo, None, 1, 1));
        let allow = Allowlist::new();
        let out = evaluate(&mut s, None, &allow, &p, 2);
        assert!(out.listed.is_empty());
        assert_eq!(out.spared.len(), 2);
    }
}
