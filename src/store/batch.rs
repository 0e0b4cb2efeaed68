//! What one engine step adds to the history, per UTC day ([`DayBatch`]),
//! and how it is built from the step's events ([`DayBatch::add_event`],
//! [`DayBatch::add_change`]). Plain data: no I/O; [`super::history`]
//! writes it.

use std::collections::BTreeMap;
use std::net::IpAddr;

use crate::addr::Net;
use crate::parse::{Rule, What};

/// Seconds per day.
pub const DAY: i64 = 86_400;

/// The UTC day number (days since 1970-01-01) of a time in seconds.
pub fn day_of(t: i64) -> i64 {
    t.div_euclid(DAY)
}

/// A change in an address's standing, counted per day.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Change {
    /// Seen in the logs for the first time.
    FirstSeen,
    /// Put on the list by the rules.
    Listed,
    /// Left the list (`--expire`).
    Expired,
    /// Taken off by `badguys unban`.
    Unbanned,
}

impl Change {
    pub const ALL: [Change; 4] = [Change::FirstSeen, Change::Listed, Change::Expired, Change::Unbanned];

    /// The `kind` column of `change_day`.
    pub fn name(self) -> &'static str {
        match self {
            Change::FirstSeen => "first_seen",
            Change::Listed => "listed",
            Change::Expired => "expired",
            Change::Unbanned => "unbanned",
        }
    }

    pub fn from_name(s: &str) -> Option<Change> {
        Change::ALL.into_iter().find(|c| c.name() == s)
    }
}

/// (address, user, host) of a login.
pub type LoginKey = (String, Vec<u8>, Vec<u8>);

/// One day's additions. Keys are plain values; `addr` is an address or,
/// for IPv6 folded by the caller, a network (`2001:db8:1::/64`).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Day {
    /// Events per rule name.
    pub rules: BTreeMap<&'static str, u64>,
    /// Events per UTC hour (0–23).
    pub hours: BTreeMap<u8, u64>,
    /// Events per (address, rule name, reporting host).
    pub addrs: BTreeMap<(String, &'static str, Vec<u8>), u64>,
    /// Changes per (address, change).
    pub changes: BTreeMap<(String, Change), u64>,
    /// Successful logins of addresses that were ever listed, per (address,
    /// user, host): (count, last time).
    pub logins: BTreeMap<LoginKey, (u64, i64)>,
    /// Events per user name tried (attacker-controlled bytes).
    pub users: BTreeMap<Vec<u8>, u64>,
}

/// One event as the engine sees it, in plain types: the history's input.
#[derive(Clone, Copy, Debug)]
pub struct HistEvent<'a> {
    pub what: What,
    pub addr: IpAddr,
    /// The user name as logged, where the message has one.
    pub user: Option<&'a [u8]>,
    /// Seconds since the epoch.
    pub time: i64,
    /// The reporting host (syslog header), empty when unknown.
    pub host: &'a [u8],
    /// `message repeated N times`.
    pub count: u32,
    /// For a login: whether the address is or was ever listed (only those
    /// logins are kept).
    pub ever_listed: bool,
}

/// The history's additions of one engine step, by UTC day.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct DayBatch {
    pub days: BTreeMap<i64, Day>,
    /// IPv6 addresses are counted per network of this prefix length (128:
    /// per address, the default; 64 folds each /64).
    pub v6_prefix: u8,
}

impl DayBatch {
    pub fn new() -> DayBatch {
        DayBatch { days: BTreeMap::new(), v6_prefix: 128 }
    }

    /// A batch that counts IPv6 addresses per network of `prefix` bits.
    pub fn with_v6_prefix(prefix: u8) -> DayBatch {
        DayBatch { days: BTreeMap::new(), v6_prefix: prefix.clamp(1, 128) }
    }

    pub fn is_empty(&self) -> bool {
        self.days.is_empty()
    }

    /// The key an address is counted under.
    pub fn key(&self, ip: IpAddr) -> String {
        let ip = crate::addr::canonical(ip);
        match ip {
            IpAddr::V6(_) if self.v6_prefix < 128 => {
                Net::new(ip, self.v6_prefix).map_or_else(|_| ip.to_string(), |n| n.to_string())
            }
            _ => ip.to_string(),
        }
    }

    fn day(&mut self, t: i64) -> &mut Day {
        self.days.entry(day_of(t)).or_default()
    }

    /// Counts one event. Logins of never-listed addresses are not history.
    pub fn add_event(&mut self, e: &HistEvent<'_>) {
        let key = self.key(e.addr);
        let n = u64::from(e.count.max(1));
        let d = self.day(e.time);
        match e.what {
            What::Attack(rule) => {
                let name = rule.name();
                *d.rules.entry(name).or_default() += n;
                *d.hours.entry(e.time.rem_euclid(DAY).div_euclid(3600) as u8).or_default() += n;
                *d.addrs.entry((key, name, e.host.to_vec())).or_default() += n;
                if let Some(u) = e.user {
                    *d.users.entry(u.to_vec()).or_default() += n;
                }
            }
            What::Login if e.ever_listed => {
                let v = d.logins.entry((key, e.user.unwrap_or_default().to_vec(), e.host.to_vec())).or_default();
                v.0 += n;
                v.1 = v.1.max(e.time);
            }
            What::Login => {}
        }
    }

    /// Counts a change of standing of `addr` at `time`.
    pub fn add_change(&mut self, addr: IpAddr, change: Change, time: i64) {
        let key = self.key(addr);
        *self.day(time).changes.entry((key, change)).or_default() += 1;
    }

    /// A batch from a step's events and changes.
    pub fn from_events<'a>(
        events: impl IntoIterator<Item = HistEvent<'a>>,
        changes: impl IntoIterator<Item = (IpAddr, Change, i64)>,
    ) -> DayBatch {
        let mut b = DayBatch::new();
        for e in events {
            b.add_event(&e);
        }
        for (ip, c, t) in changes {
            b.add_change(ip, c, t);
        }
        b
    }

    /// The batch as rows of the tables (see `history`), for writing and
    /// for undoing.
    pub(crate) fn rows(&self) -> Vec<Row> {
        let mut v = Vec::new();
        for (&day, d) in &self.days {
            for (r, &n) in &d.rules {
                v.push(Row { t: T::Rule, day, a: r.to_string(), b: vec![], c: vec![], n, last: 0 });
            }
            for (&h, &n) in &d.hours {
                v.push(Row { t: T::Hour, day, a: h.to_string(), b: vec![], c: vec![], n, last: 0 });
            }
            for ((addr, rule, host), &n) in &d.addrs {
                v.push(Row {
                    t: T::Addr,
                    day,
                    a: addr.clone(),
                    b: rule.as_bytes().to_vec(),
                    c: host.clone(),
                    n,
                    last: 0,
                });
            }
            for ((addr, c), &n) in &d.changes {
                v.push(Row { t: T::Change, day, a: addr.clone(), b: c.name().into(), c: vec![], n, last: 0 });
            }
            for ((addr, user, host), &(n, last)) in &d.logins {
                v.push(Row { t: T::Login, day, a: addr.clone(), b: user.clone(), c: host.clone(), n, last });
            }
            for (u, &n) in &d.users {
                v.push(Row { t: T::User, day, a: String::new(), b: u.clone(), c: vec![], n, last: 0 });
            }
        }
        v
    }
}

/// Which table a row goes to.
#[derive(Clone, Copy, Debug, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub(crate) enum T {
    Rule,
    Hour,
    Addr,
    Change,
    Login,
    User,
}

/// One counter of one table; `a`, `b`, `c` are that table's key columns.
#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub(crate) struct Row {
    pub t: T,
    pub day: i64,
    pub a: String,
    pub b: Vec<u8>,
    pub c: Vec<u8>,
    pub n: u64,
    pub last: i64,
}

/// The rule of a stored name, if this version knows it.
pub fn rule_named(name: &str) -> Option<Rule> {
    name.parse().ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn events_to_days() {
        let ip: IpAddr = "2001:db8:1:2::7".parse().unwrap();
        let mut b = DayBatch::with_v6_prefix(64);
        let ev = |what, time, user: Option<&'static [u8]>| HistEvent {
            what,
            addr: ip,
            user,
            time,
            host: b"h1",
            count: 2,
            ever_listed: true,
        };
        b.add_event(&ev(What::Attack(Rule::InvalidUser), 86_400 + 3_600 * 5, Some(b"root")));
        b.add_event(&ev(What::Attack(Rule::InvalidUser), 2 * 86_400 - 1, Some(b"root")));
        b.add_event(&ev(What::Login, 2 * 86_400, Some(b"admin")));
        b.add_change(ip, Change::FirstSeen, 86_400);
        assert_eq!(b.days.len(), 2);
        let d1 = &b.days[&1];
        assert_eq!(d1.rules["invalid-user"], 4);
        assert_eq!((d1.hours[&5], d1.hours[&23]), (2, 2));
        assert_eq!(d1.addrs[&("2001:db8:1:2::/64".to_string(), "invalid-user", b"h1".to_vec())], 4);
        assert_eq!(d1.users[&b"root".to_vec()], 4);
        assert_eq!(d1.changes[&("2001:db8:1:2::/64".to_string(), Change::FirstSeen)], 1);
        assert_eq!(b.days[&2].logins.values().next(), Some(&(2, 2 * 86_400)));
        assert_eq!(b.rows().len(), 7);
    }
}
