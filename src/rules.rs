//! Who is listed. An address is listed once its attacks reach `--threshold`
//! within `--window`, unless the allowlist spares it or, without
//! `--ban-accepted`, it has logged in successfully. A listed address leaves
//! the list when it has not been seen for `--expire`, or by `unban`; manual
//! bans lapse at their `--for`. The blocklist is the listed addresses and
//! the manual bans, minus the allowlist.
//!
//! Two opt-in escalations: a repeat offender's n-th ban lasts longer
//! ([`repeat`]: `--expire-factor`, `--expire-max`, `--decay`), and K listed
//! addresses in one network list the network ([`subnet`]: `--subnet-after`).

use std::net::IpAddr;

use crate::addr::{ip_order, Net};
use crate::allow::{AllowEntry, Allowlist};
use crate::parse::{Rule, What};
use crate::state::{Record, State};

pub mod repeat;
pub mod subnet;

pub use repeat::Repeat;
pub use subnet::Subnet;

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
    /// IPv6 addresses are counted, recorded and listed per network of this
    /// length (`--ipv6-prefix`, 128 = per address): a record's key is the
    /// network address.
    pub ipv6_prefix: u8,
    /// How much longer each ban of a repeat offender lasts.
    pub repeat: Repeat,
    /// `--subnet-after`: list a network of K listed addresses instead.
    pub subnet: Option<Subnet>,
    /// The rules that count apart, indexed by `Rule as usize`: a rule's
    /// own threshold (`--rule-threshold RULE=N`, and by default the
    /// recommended one of every rule that is no evidence alone), or 0 for a
    /// rule whose hits go to the shared `--threshold` pool.
    pub rule_threshold: [u32; Rule::ALL.len()],
}

impl Policy {
    /// The record key of an address: itself for IPv4, its /ipv6_prefix
    /// network address for IPv6.
    pub fn key(&self, ip: IpAddr) -> IpAddr {
        match ip {
            IpAddr::V6(_) if self.ipv6_prefix < 128 => Net::new(ip, self.ipv6_prefix).map_or(ip, |n| n.addr()),
            _ => ip,
        }
    }

    /// What a record's key lists: the host, or its IPv6 network. A key
    /// that is no network address of this length was made per address
    /// (by a `sync --ipv6-prefix 128` that a later `ban` or `list` was not
    /// told of): it stays a host, never widens.
    pub fn net(&self, key: IpAddr) -> Net {
        match key {
            IpAddr::V6(_) if self.ipv6_prefix < 128 && self.key(key) == key => {
                Net::new(key, self.ipv6_prefix).unwrap_or(Net::host(key))
            }
            _ => Net::host(key),
        }
    }
}

impl Default for Policy {
    fn default() -> Policy {
        Policy {
            threshold: 1,
            window: None,
            expire: None,
            ban_accepted: false,
            ipv6_prefix: 64,
            repeat: Repeat::default(),
            subnet: None,
            rule_threshold: Policy::own_defaults(),
        }
    }
}

impl Policy {
    /// The own thresholds without `--rule-threshold`: load-shedding rules
    /// (`RuleInfo::peer_ban` false, `maxstartups`) never join the pool and
    /// count apart at their recommended threshold.
    pub fn own_defaults() -> [u32; Rule::ALL.len()] {
        let mut t = [0; Rule::ALL.len()];
        for r in Rule::ALL.iter().filter(|r| !r.info().peer_ban) {
            t[*r as usize] = r.info().threshold;
        }
        t
    }

    /// The threshold of a rule that counts apart from the pool.
    pub fn own_threshold(&self, rule: Rule) -> Option<u32> {
        Some(self.rule_threshold[rule as usize]).filter(|&n| n > 0)
    }
}

/// Which threshold a record meets.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Met {
    /// The shared pool of the rules without their own threshold reached `--threshold`.
    Pool,
    /// This rule alone reached its own threshold.
    Rule(Rule, u32),
}

/// Why an attacking address is not listed.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Spared {
    Allowed(AllowEntry),
    /// It logged in successfully.
    Accepted,
}

/// Counts one event into the state. Returns true only when this event makes
/// an address that is not listed reach the threshold: once per crossing, not
/// once per attack after it, so a caller collecting these addresses holds
/// each one once. An address that leaves the list (expiry, `unban`) forgets
/// its recent hits and crosses again when it comes back.
///
/// How many hit times a record needs: `--threshold` of them. With hits in
/// time order, a hit can only complete a window as its newest member, and the window check asks whether
/// the newest `threshold` hits fall within `--window`; older times can never
/// matter again. (`threshold - 1` times would do if the check were only made
/// as a hit arrives, but `evaluate` over every record, after a policy change
/// or a restart, and `explain` must answer from the record alone.) Without
/// a window, the times only count the attacks since the address last left
/// the list, up to the threshold. (A hit logged out of order, older than the
/// newest `threshold` times, can only complete a window they still hold.)
///
/// An address that qualifies but is not listed yet (it waits for `evaluate`,
/// or it is spared) keeps the times that made it qualify: later hits could
/// otherwise push the qualifying window out before `evaluate` sees it, and
/// one read of a whole log would then decide differently from `watch`
/// reading it line by line.
pub fn count(state: &mut State, policy: &Policy, what: What, ip: IpAddr, user: Option<&[u8]>, n: u32, t: i64) -> bool {
    count_into(state.record(ip), policy, what, user, n, t)
}

/// [`count`] into the record at hand.
pub fn count_into(rec: &mut Record, policy: &Policy, what: What, user: Option<&[u8]>, n: u32, t: i64) -> bool {
    let attack = matches!(what, What::Attack(_));
    let waiting = attack && rec.listed.is_none() && qualifies(rec, policy);
    let keep = if waiting { 0 } else { policy.threshold.max(1) as usize };
    if attack {
        repeat::note_attack(rec, policy, t);
    }
    // A rule with its own threshold keeps its times apart: none go to the pool.
    let apart = match what {
        What::Attack(r) => policy.own_threshold(r).map(|n| (r, n)),
        What::Login => None,
    };
    if let Some((rule, own)) = apart {
        rec.add(what, user, n, t, 0);
        if !waiting {
            rec.add_own_times(rule, t, n, own as usize);
        }
        return !waiting && rec.listed.is_none() && qualifies(rec, policy);
    }
    rec.add(what, user, n, t, keep);
    attack && !waiting && rec.listed.is_none() && qualifies(rec, policy)
}

/// Whether a record's recent attacks meet a threshold within the window:
/// the pool's, or a rule's own.
pub fn qualifies(rec: &Record, policy: &Policy) -> bool {
    met(rec, policy).is_some()
}

/// Which threshold a record's recent attacks meet within the window, the
/// pool's first. Times kept apart for a rule that no longer has its own
/// threshold (a changed `--rule-threshold`) count in the pool again; the
/// hits of a rule newly given one stay in the pool's times until they age
/// out.
pub fn met(rec: &Record, policy: &Policy) -> Option<Met> {
    if within(&rec.recent, policy.threshold, policy.window) {
        return Some(Met::Pool);
    }
    if rec.own_times().any(|(r, _)| policy.own_threshold(r).is_none()) {
        let mut pool = rec.recent.clone();
        for (_, t) in rec.own_times().filter(|(r, _)| policy.own_threshold(*r).is_none()) {
            pool.extend_from_slice(t);
        }
        pool.sort_unstable();
        if within(&pool, policy.threshold, policy.window) {
            return Some(Met::Pool);
        }
    }
    rec.own_times().find_map(|(rule, times)| {
        let need = policy.own_threshold(rule)?;
        within(times, need, policy.window).then_some(Met::Rule(rule, need))
    })
}

/// Whether `need` of the sorted times `r` fall within `window`.
fn within(r: &[i64], need: u32, window: Option<i64>) -> bool {
    let need = need.max(1) as usize;
    r.len() >= need && window.is_none_or(|w| r.windows(need).any(|s| s[need - 1].saturating_sub(s[0]) <= w))
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
    /// Records dropped by [`crate::retention::forget`]: quiet for `--forget`, and over `--max-records`.
    pub forgotten: usize,
    pub capped: usize,
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
            repeat::note_listed(rec);
            out.listed.push(ip);
        }
    }
    if let Some(expire) = policy.expire {
        for (ip, rec) in state.records.iter_mut() {
            // The n-th ban of a repeat offender lasts longer.
            let expire = policy.ban_length(rec.bans).unwrap_or(expire);
            if rec.listed.is_some() && now.saturating_sub(rec.last) > expire {
                rec.listed = None;
                rec.recent.clear();
                repeat::note_ended(rec, rec.last.saturating_add(expire));
                rec.own = None;
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
/// again"): its recent hits are forgotten, and its ban count (the admin
/// forgave it: its next ban is a first one). Returns whether anything
/// changed.
pub fn unban(state: &mut State, net: &Net) -> bool {
    let mut changed = state.manual.remove(net).is_some();
    for (ip, rec) in state.records.iter_mut() {
        if net.contains_ip(*ip) && rec.bans > 0 {
            repeat::forgive(rec);
            changed = true;
        }
        if net.contains_ip(*ip) && rec.listed.is_some() {
            rec.listed = None;
            rec.recent.clear();
            rec.own = None;
            changed = true;
        }
    }
    changed
}

/// The blocklist: listed addresses and manual bans minus the allowlist,
/// sorted and deduplicated. `cut` is called for each entry the allowlist
/// carves something out of.
pub fn blocklist(
    state: &State,
    policy: &Policy,
    allow: &Allowlist,
    cut: &mut dyn FnMut(Net, &AllowEntry, usize),
) -> Vec<Net> {
    // Gathered, then sorted once (a BTreeSet insert per entry was 10% of a
    // watch reconcile at 1,000,000 entries in a perf profile).
    let mut set: Vec<Net> = Vec::new();
    // --subnet-after: networks listed in place of their members.
    let esc = subnet::escalated(state, policy, allow);
    for e in &esc {
        let (pieces, entries) = allow.carve(e.net);
        let pieces = subnet::carve_spared(pieces, &e.spared);
        for a in entries {
            cut(e.net, a, pieces.len());
        }
        set.extend(pieces);
    }
    let member = subnet::Members::new(&esc, policy);
    let member = |ip: &IpAddr| member.contains(*ip);
    let hosts = state.records.iter().filter(|(ip, r)| r.listed.is_some() && !member(ip)).map(|(ip, _)| policy.net(*ip));
    let included = state.includes.values().flat_map(|i| i.nets.iter().copied());
    for net in hosts.chain(state.manual.keys().copied()).chain(included) {
        if net.is_host() {
            // The common case: one lookup instead of a carve.
            match allow.find(net.addr()) {
                Some(e) => cut(net, e, 0),
                None => set.push(net),
            }
            continue;
        }
        let (pieces, entries) = allow.carve(net);
        for e in entries {
            cut(net, e, pieces.len());
        }
        set.extend(pieces);
    }
    set.sort();
    set.dedup();
    set
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
        assert_eq!(blocklist(&s, &Policy::default(), &allow, &mut |_, _, _| {}), vec![Net::host(x)]);
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
        assert!(blocklist(&s, &Policy::default(), &allow, &mut |_, _, _| {}).is_empty());
        assert!(count(&mut s, &p, A, x, None, 1, 120));
        evaluate(&mut s, Some(&[x]), &allow, &p, 120);
        assert!(unban(&mut s, &Net::host(x)));
        assert!(blocklist(&s, &Policy::default(), &allow, &mut |_, _, _| {}).is_empty());
    }

    #[test]
    fn crossing_is_reported_once_per_listing() {
        // What watch pushes into its batch's `hot`: one entry, however many
        // attacks follow the crossing.
        let p = Policy { threshold: 3, window: Some(60), ..Policy::default() };
        let mut s = State::default();
        let x = ip("192.0.2.1");
        let hot: Vec<i64> = (0..10_000).filter(|&t| count(&mut s, &p, A, x, None, 1, t)).collect();
        assert_eq!(hot, vec![2], "crossed at the third attack, and only then");
        let allow = Allowlist::new();
        assert_eq!(evaluate(&mut s, Some(&[x]), &allow, &p, 10_000).listed, vec![x]);
        assert!((10_000..20_000).all(|t| !count(&mut s, &p, A, x, None, 1, t)), "listed: never again");
        // Unbanned, it crosses again, once.
        assert!(unban(&mut s, &Net::host(x)));
        let hot: Vec<i64> = (20_000..30_000).filter(|&t| count(&mut s, &p, A, x, None, 1, t)).collect();
        assert_eq!(hot, vec![20_002]);
        // Spared (allowlisted): once too, not once per attack.
        let lo = ip("127.0.0.1");
        assert_eq!((0..10_000).filter(|&t| count(&mut s, &p, A, lo, None, 1, t)).count(), 1);
        let spared = evaluate(&mut s, Some(&[lo]), &allow, &p, 10_000).spared;
        assert_eq!(spared.len(), 1);
        assert!(matches!(&spared[0], (a, Spared::Allowed(e)) if *a == lo && e.net.contains_ip(lo)), "{spared:?}");
        assert_eq!((10_000..20_000).filter(|&t| count(&mut s, &p, A, lo, None, 1, t)).count(), 0);
    }

    #[test]
    fn a_qualifying_window_is_not_pushed_out_before_evaluate() {
        // 3 attacks within 60 s, then one long after, all in one read (one
        // sync of a whole log): listed, as watch reading them one by one
        // would have listed it.
        let p = Policy { threshold: 3, window: Some(60), ..Policy::default() };
        let mut s = State::default();
        let x = ip("192.0.2.1");
        let crossed: Vec<bool> = [0, 10, 20, 1000].iter().map(|&t| count(&mut s, &p, A, x, None, 1, t)).collect();
        assert_eq!(crossed, [false, false, true, false]);
        let out = evaluate(&mut s, None, &Allowlist::new(), &p, 2000);
        assert_eq!(out.listed, vec![x]);
        assert_eq!(s.records[&x].last, 1000);
    }

    #[test]
    fn records_stay_bounded_after_10000_events() {
        use crate::state::{RECENT_MAX, USERS_KEPT, USER_MAX};
        let long = vec![b'u'; 64 * 1024];
        for (threshold, window) in [(1, None), (5, Some(60)), (5, None), (1000, Some(3600)), (1000, None)] {
            let p = Policy { threshold, window, ..Policy::default() };
            let mut s = State::default();
            let (x, y) = (ip("192.0.2.1"), ip("192.0.2.2"));
            for i in 0..10_000i64 {
                // Distinct names, some of them a whole line long; times out
                // of order; repeats counted many times at once.
                let name = if i % 7 == 0 { long.clone() } else { format!("user{i}").into_bytes() };
                let t = if i % 3 == 0 { 50_000 - i } else { i * 10 };
                count(&mut s, &p, A, x, Some(&name), 1 + (i % 4) as u32 * 1000, t);
                count(&mut s, &p, A, y, Some(&name), 1, i);
                if i % 1000 == 999 {
                    evaluate(&mut s, Some(&[x, y]), &Allowlist::new(), &p, 100_000);
                    unban(&mut s, &Net::host(y));
                }
            }
            for r in s.records.values() {
                assert!(r.recent.len() <= (threshold as usize).min(RECENT_MAX), "{threshold}: {}", r.recent.len());
                assert!(r.recent.windows(2).all(|w| w[0] <= w[1]), "sorted");
                assert!(r.users.len() <= USERS_KEPT);
                assert!(r.users.iter().all(|u| u.len() <= USER_MAX));
            }
        }
    }

    #[test]
    fn times_at_the_ends_of_the_clock_never_wrap() {
        // Times from a state file or a long --expire: sums and differences
        // saturate instead of wrapping (and panicking in debug builds).
        let p = Policy { threshold: 2, window: Some(60), expire: Some(100), ban_accepted: false, ..Policy::default() };
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
        // And why: the loopback by the reserved range, the other by its login.
        let why: Vec<(IpAddr, String)> = out
            .spared
            .iter()
            .map(|(ip, w)| match w {
                Spared::Allowed(e) => (*ip, format!("allowed {} {:?}", e.net, e.source)),
                Spared::Accepted => (*ip, "accepted".into()),
            })
            .collect();
        assert_eq!(why, [(lo, "allowed 127.0.0.0/8 Reserved(\"loopback\")".to_string()), (x, "accepted".to_string())]);
    }

    #[test]
    fn ipv6_keys_are_networks_and_per_address_keys_stay_hosts() {
        let p = Policy::default();
        let a: IpAddr = "2001:db8:1:2::77".parse().unwrap();
        let k = p.key(a);
        assert_eq!(k, "2001:db8:1:2::".parse::<IpAddr>().unwrap());
        assert_eq!(p.net(k).to_string(), "2001:db8:1:2::/64");
        // A key made per address is listed as the host, never widened.
        assert_eq!(p.net(a).to_string(), "2001:db8:1:2::77");
        let v4: IpAddr = "192.0.2.7".parse().unwrap();
        assert_eq!((p.key(v4), p.net(v4).to_string()), (v4, "192.0.2.7".to_string()));
        let per = Policy { ipv6_prefix: 128, ..Policy::default() };
        assert_eq!((per.key(a), per.net(a).to_string()), (a, "2001:db8:1:2::77".to_string()));
    }

    /// One attack at `t` on `x`, then an evaluation at `now`.
    fn attack_at(s: &mut State, p: &Policy, x: IpAddr, t: i64, now: i64) -> Outcome {
        count(s, p, A, x, None, 1, t);
        evaluate(s, Some(&[x]), &Allowlist::new(), p, now)
    }

    #[test]
    fn repeat_offenders_get_longer_bans_up_to_the_cap() {
        const H: i64 = 3600;
        let p = Policy {
            expire: Some(H),
            repeat: Repeat { factor: 4, max: Some(30 * 86400), decay: Some(30 * 86400) },
            ..Policy::default()
        };
        let mut s = State::default();
        let x = ip("192.0.2.1");
        // Each ban: listed at t, still listed at t + length, gone after.
        let mut t = 0;
        for (n, len) in [(1, H), (2, 4 * H), (3, 16 * H), (4, 64 * H), (5, 256 * H), (6, 720 * H), (7, 720 * H)] {
            assert_eq!(attack_at(&mut s, &p, x, t, t).listed, vec![x], "ban {n}");
            assert_eq!(s.records[&x].bans, n);
            assert!(evaluate(&mut s, Some(&[]), &Allowlist::new(), &p, t + len).expired.is_empty(), "ban {n}");
            assert_eq!(evaluate(&mut s, Some(&[]), &Allowlist::new(), &p, t + len + 1).expired, vec![x], "ban {n}");
            assert_eq!(s.records[&x].quiet, t + len, "the ban ended at its length");
            t += len + 60;
        }
    }

    #[test]
    fn the_ban_count_decays_when_quiet_and_unban_resets_it() {
        const H: i64 = 3600;
        const D: i64 = 86400;
        let p = Policy {
            expire: Some(H),
            repeat: Repeat { factor: 2, max: Some(30 * D), decay: Some(10 * D) },
            ..Policy::default()
        };
        let allow = Allowlist::new();
        let mut s = State::default();
        let x = ip("192.0.2.1");
        for (t, len) in [(0, H), (2 * H, 2 * H), (5 * H, 4 * H), (10 * H, 8 * H)] {
            attack_at(&mut s, &p, x, t, t);
            evaluate(&mut s, Some(&[]), &allow, &p, t + len + 1);
        }
        assert_eq!((s.records[&x].bans, s.records[&x].quiet), (4, 18 * H));
        // 25 quiet days after the 4th ban: halved twice, 4 -> 1; the next
        // ban is the 2nd.
        let t = 18 * H + 25 * D;
        assert_eq!(attack_at(&mut s, &p, x, t, t).listed, vec![x]);
        assert_eq!(s.records[&x].bans, 2);
        assert_eq!(p.ban_length(s.records[&x].bans), Some(2 * H));
        // An unban by the admin forgets the count: the next ban is a 1st.
        assert!(unban(&mut s, &Net::host(x)));
        assert_eq!(s.records[&x].bans, 0);
        assert_eq!(attack_at(&mut s, &p, x, t + 60, t + 60).listed, vec![x]);
        assert_eq!(s.records[&x].bans, 1);
        // Factor 1 (the default): every ban lasts --expire, as before.
        let plain = Policy { expire: Some(H), ..Policy::default() };
        let mut s = State::default();
        for i in 0..3 {
            let t = i * 10 * H;
            attack_at(&mut s, &plain, x, t, t);
            assert_eq!(evaluate(&mut s, Some(&[]), &allow, &plain, t + H + 1).expired, vec![x]);
        }
        assert_eq!(s.records[&x].bans, 3);
    }

    const MS: What = What::Attack(Rule::MaxStartups);

    #[test]
    fn maxstartups_counts_apart_at_its_own_threshold() {
        // --threshold 1, no --rule-threshold: 19 drops list nothing, the 20th does.
        let p = Policy::default();
        let mut s = State::default();
        let x = ip("192.0.2.1");
        assert_eq!((0..19).filter(|&t| count(&mut s, &p, MS, x, None, 1, t)).count(), 0);
        assert!(evaluate(&mut s, None, &Allowlist::new(), &p, 100).listed.is_empty());
        assert!(s.records[&x].recent.is_empty(), "no time went to the pool");
        assert!(count(&mut s, &p, MS, x, None, 1, 19));
        assert_eq!(met(&s.records[&x], &p), Some(Met::Rule(Rule::MaxStartups, 20)));
        assert_eq!(evaluate(&mut s, None, &Allowlist::new(), &p, 100).listed, vec![x]);
        // --rule-threshold maxstartups=2 overrides it.
        let mut two = Policy::default();
        two.rule_threshold[Rule::MaxStartups as usize] = 2;
        let y = ip("192.0.2.2");
        assert!(!count(&mut s, &two, MS, y, None, 1, 0));
        assert!(count(&mut s, &two, MS, y, None, 1, 1));
    }

    #[test]
    fn maxstartups_never_completes_the_pool() {
        let p = Policy { threshold: 3, ..Policy::default() };
        let mut s = State::default();
        let x = ip("192.0.2.1");
        count(&mut s, &p, A, x, None, 2, 0);
        assert!(!count(&mut s, &p, MS, x, None, 19, 1), "2 pooled hits and 19 drops");
        assert!(!qualifies(&s.records[&x], &p));
        assert!(count(&mut s, &p, A, x, None, 1, 2), "the third pooled hit");
        assert_eq!(met(&s.records[&x], &p), Some(Met::Pool));
    }

    #[test]
    fn a_rule_threshold_counts_apart_within_the_window() {
        let mut p = Policy { threshold: 2, window: Some(60), ..Policy::default() };
        p.rule_threshold[Rule::FailedPublickey as usize] = 3;
        let pk = What::Attack(Rule::FailedPublickey);
        let mut s = State::default();
        let x = ip("192.0.2.1");
        // Five key failures spread out, one pooled attack: neither threshold.
        for t in [0, 100, 200, 300] {
            assert!(!count(&mut s, &p, pk, x, None, 1, t));
        }
        assert!(!count(&mut s, &p, A, x, None, 1, 310));
        assert_eq!(s.records[&x].recent, [310], "its own hits stay out of the pool");
        assert!(!count(&mut s, &p, pk, x, None, 1, 330), "300, 330: two within 60 s");
        assert!(count(&mut s, &p, pk, x, None, 1, 340), "300, 330, 340");
        let r = &s.records[&x];
        assert_eq!(r.own_times().collect::<Vec<_>>(), [(Rule::FailedPublickey, &[300, 330, 340][..])], "bounded");
        assert_eq!(met(r, &p), Some(Met::Rule(Rule::FailedPublickey, 3)));
        assert_eq!(evaluate(&mut s, None, &Allowlist::new(), &p, 400).listed, vec![x]);
        // Leaving the list forgets its own times too.
        assert!(unban(&mut s, &Net::host(x)));
        assert!(s.records[&x].own.is_none());
    }
}
