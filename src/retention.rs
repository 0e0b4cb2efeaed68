//! The bounds of the state: records of addresses that are neither listed
//! nor under a manual ban are dropped when quiet for `--forget`, and the
//! least recently seen of them beyond `--max-records` ("a quiet period of
//! `--forget` forgets the offender"). No I/O; the engine calls [`forget`]
//! after each evaluation, and [`forget_due`] tells an unchanged timer run
//! when to do it.

use std::collections::BTreeMap;
use std::net::IpAddr;

use crate::addr::{ip_order, Net};
use crate::state::{Manual, Record, State};

/// The bounds of the state (see [`forget`]).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Retention {
    /// Records not listed and quiet for longer are dropped (`--forget`);
    /// never when `None`.
    pub forget: Option<i64>,
    /// At most this many records (`--max-records`).
    pub max_records: usize,
}

/// `--forget` without a value: 30 days.
pub const DEFAULT_FORGET: i64 = 30 * 86400;
/// `--max-records` without a value. A record costs about 780 bytes of peak
/// memory in a sync (README, Performance) and 80 in the state file: a
/// million is about 750 MiB, what a small host can still spare, and far
/// more addresses than attack one host in a month.
pub const DEFAULT_MAX_RECORDS: usize = 1_000_000;

impl Default for Retention {
    fn default() -> Retention {
        Retention { forget: Some(DEFAULT_FORGET), max_records: DEFAULT_MAX_RECORDS }
    }
}

/// Bounds the state ("a quiet period of `--forget` forgets the
/// offender"): drops the records that are not listed, not under a manual
/// ban, and not seen (attack or login) for longer than `forget` at `now`;
/// then, while more than `max_records` remain, those of them seen least
/// recently. A listed record and a manual ban are never dropped, so the
/// cap can be exceeded by them. Returns (quiet, capped) counts.
pub fn forget(state: &mut State, keep: &Retention, now: i64) -> (usize, usize) {
    let manual = Banned::new(&state.manual);
    let droppable = |ip: &IpAddr, r: &Record| droppable(&manual, ip, r);
    let before = state.records.len();
    if let Some(f) = keep.forget {
        state.records.retain(|ip, r| !(now.saturating_sub(r.last) > f && droppable(ip, r)));
    }
    let quiet = before - state.records.len();
    let excess = state.records.len().saturating_sub(keep.max_records);
    if excess == 0 {
        return (quiet, 0);
    }
    let mut old: Vec<(i64, IpAddr)> =
        state.records.iter().filter(|(ip, r)| droppable(ip, r)).map(|(ip, r)| (r.last, *ip)).collect();
    let n = excess.min(old.len());
    if n < old.len() {
        old.select_nth_unstable_by(n, |a, b| a.0.cmp(&b.0).then(ip_order(a.1, b.1)));
    }
    for (_, ip) in &old[..n] {
        state.records.remove(ip);
    }
    (quiet, n)
}

/// Whether [`forget`] may drop a record: neither listed nor under a manual ban.
fn droppable(manual: &Banned, ip: &IpAddr, r: &Record) -> bool {
    r.listed.is_none() && !manual.covers(*ip)
}

/// The manual bans, asked whether one covers an address: one map lookup
/// per prefix length in use, where asking each ban in turn made every
/// save and evaluation cost records × bans (an imported list of 100,000
/// entries beside 50,000 records: 5·10⁹ comparisons).
struct Banned<'a> {
    lens: Vec<u8>,
    manual: &'a BTreeMap<Net, Manual>,
}

impl<'a> Banned<'a> {
    fn new(manual: &'a BTreeMap<Net, Manual>) -> Banned<'a> {
        let mut lens: Vec<u8> = manual.keys().map(Net::prefix).collect();
        lens.sort_unstable();
        lens.dedup();
        Banned { lens, manual }
    }

    /// Whether a manual ban holds `ip`: `Net::new` masks `ip` to each
    /// length as a ban's key is masked, so the key is found exactly when
    /// that ban contains it (`Net::contains_ip`).
    fn covers(&self, ip: IpAddr) -> bool {
        self.lens.iter().any(|&p| Net::new(ip, p).is_ok_and(|n| self.manual.contains_key(&n)))
    }
}

/// When [`forget`] next has a record to drop without a new line, rounded
/// up to the next whole day (UTC), so that a timer run reads every record
/// at most once a day for it and otherwise keeps its shortcut.
pub fn forget_due(state: &State, keep: &Retention) -> Option<i64> {
    let f = keep.forget?;
    let manual = Banned::new(&state.manual);
    let last = state.records.iter().filter(|(ip, r)| droppable(&manual, ip, r)).map(|(_, r)| r.last).min()?;
    let t = last.saturating_add(f).saturating_add(1);
    Some(t.saturating_add(86399) / 86400 * 86400)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::allow::Allowlist;
    use crate::parse::{Rule, What};
    use crate::rules::{count, evaluate, Policy};

    const A: What = What::Attack(Rule::InvalidUser);

    fn ip(s: &str) -> IpAddr {
        s.parse().unwrap()
    }

    #[test]
    fn a_manual_ban_covers_an_address_exactly_when_it_contains_it() {
        let mut manual = BTreeMap::new();
        for n in ["192.0.2.0/24", "198.51.100.7/32", "2001:db8:1::/48", "2001:db8::5/128", "10.0.0.0/8"] {
            manual.insert(n.parse::<Net>().unwrap(), Manual { since: 0, until: None, reason: "".into() });
        }
        let banned = Banned::new(&manual);
        for a in [
            "192.0.2.9",
            "192.0.3.1",
            "198.51.100.7",
            "198.51.100.8",
            "2001:db8:1:ff::1",
            "2001:db8:2::1",
            "2001:db8::5",
            "2001:db8::6",
            "::ffff:192.0.2.1",
            "::ffff:203.0.113.1",
            "10.1.2.3",
            "11.1.2.3",
        ] {
            let ip = ip(a);
            assert_eq!(banned.covers(ip), manual.keys().any(|n| n.contains_ip(ip)), "{a}");
        }
    }

    #[test]
    fn forget_drops_quiet_unlisted_records_and_caps_the_rest() {
        let p = Policy { threshold: 2, ..Policy::default() };
        let mut s = State::default();
        let ips: Vec<IpAddr> = (1..=6).map(|i| ip(&format!("192.0.2.{i}"))).collect();
        for (i, x) in ips.iter().enumerate() {
            count(&mut s, &p, A, *x, None, 1, 1000 * i as i64);
        }
        // .1 is listed, .2 under a manual ban: both quiet, both kept.
        count(&mut s, &p, A, ips[0], None, 1, 0);
        evaluate(&mut s, None, &Allowlist::new(), &p, 0);
        s.manual.insert(Net::host(ips[1]), crate::state::Manual { since: 0, until: None, reason: "x".into() });
        let keep = Retention { forget: Some(2500), max_records: 100 };
        // At 5000: .3 (seen 2000) is quiet for longer than 2500 s.
        assert_eq!(forget(&mut s, &keep, 5000), (1, 0));
        assert!(!s.records.contains_key(&ips[2]) && s.records.contains_key(&ips[0]) && s.records.contains_key(&ips[1]));
        // A cap of 3: of the unlisted, unbanned .4 .5 .6 the oldest two go.
        let cap = Retention { forget: None, max_records: 3 };
        assert_eq!(forget(&mut s, &cap, 5000), (0, 2));
        let mut left: Vec<IpAddr> = s.records.keys().copied().collect();
        left.sort();
        assert_eq!(left, [ips[0], ips[1], ips[5]]);
        // Never the listed nor the manual, even over the cap.
        assert_eq!(forget(&mut s, &Retention { forget: Some(1), max_records: 1 }, i64::MAX), (1, 0));
        assert_eq!(s.records.len(), 2);
        // Only the listed and the manual are left: nothing falls due, so an
        // unchanged timer run keeps its shortcut.
        assert_eq!(forget_due(&s, &Retention { forget: Some(1), max_records: 1 }), None);
        count(&mut s, &p, A, ips[3], None, 1, 86_400 * 3 + 5);
        assert_eq!(
            forget_due(&s, &keep),
            Some(86_400 * 4),
            "seen at 3 days + 5 s, due at the next whole day after 2500 s"
        );
    }
}
