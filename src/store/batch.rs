//! What one engine step adds to the history, per UTC day ([`DayBatch`]),
//! and how it is built from the step's events ([`DayBatch::add_event`],
//! [`DayBatch::add_change`]). Plain data: no I/O; [`super::history`]
//! writes it.

use std::collections::{BTreeMap, HashMap};
use std::net::{IpAddr, Ipv6Addr};

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
    /// Events per (address or network, reporting host), one counter per
    /// rule (`Rule as usize`): one hash lookup per event. The address is
    /// the one [`DayBatch::fold`] gives; [`DayBatch::key`] writes it.
    pub addrs: HashMap<(IpAddr, Vec<u8>), [u64; Rule::ALL.len()]>,
    /// Changes per (address, change).
    pub changes: BTreeMap<(String, Change), u64>,
    /// Successful logins of addresses that were ever listed, per (address,
    /// user, host): (count, last time).
    pub logins: BTreeMap<LoginKey, (u64, i64)>,
    /// Events per user name tried (attacker-controlled bytes).
    pub users: BTreeMap<Vec<u8>, u64>,
}

/// [`DayBatch::key`] of `ip` at `v6_prefix`, appended to `out`.
fn key_into(v6_prefix: u8, ip: IpAddr, out: &mut String) {
    use std::fmt::Write;
    let ip = crate::addr::canonical(ip);
    let _ = match ip {
        IpAddr::V6(_) if v6_prefix < 128 => match Net::new(ip, v6_prefix) {
            Ok(n) => write!(out, "{n}"),
            Err(_) => write!(out, "{ip}"),
        },
        _ => write!(out, "{ip}"),
    };
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
    /// Reused key buffers of [`DayBatch::add_event`].
    scratch: Scratch,
}

/// The key [`DayBatch::add_event`] looks up, built in place so that an
/// event of an (address, rule, host) already counted allocates nothing
/// (the history is written on every event of a first run). Not part of
/// the batch's value: equal for every batch.
#[derive(Clone, Debug)]
struct Scratch {
    addr: (IpAddr, Vec<u8>),
}

impl Default for Scratch {
    fn default() -> Scratch {
        Scratch { addr: (IpAddr::V6(Ipv6Addr::UNSPECIFIED), Vec::new()) }
    }
}

impl PartialEq for Scratch {
    fn eq(&self, _: &Scratch) -> bool {
        true
    }
}

impl Eq for Scratch {}

impl DayBatch {
    pub fn new() -> DayBatch {
        DayBatch { days: BTreeMap::new(), v6_prefix: 128, scratch: Scratch::default() }
    }

    /// A batch that counts IPv6 addresses per network of `prefix` bits.
    pub fn with_v6_prefix(prefix: u8) -> DayBatch {
        DayBatch { days: BTreeMap::new(), v6_prefix: prefix.clamp(1, 128), scratch: Scratch::default() }
    }

    pub fn is_empty(&self) -> bool {
        self.days.is_empty()
    }

    /// The address (or, for IPv6 folded by [`DayBatch::v6_prefix`], the
    /// network's first address) an address is counted under.
    pub fn fold(&self, ip: IpAddr) -> IpAddr {
        match crate::addr::canonical(ip) {
            IpAddr::V6(a) if self.v6_prefix < 128 => {
                let bits = u128::from(a) & (u128::MAX << (128 - u32::from(self.v6_prefix.max(1))));
                IpAddr::V6(Ipv6Addr::from(bits))
            }
            other => other,
        }
    }

    /// The key an address is counted under (as written to the tables).
    pub fn key(&self, ip: IpAddr) -> String {
        let mut s = String::new();
        key_into(self.v6_prefix, ip, &mut s);
        s
    }

    fn day(&mut self, t: i64) -> &mut Day {
        self.days.entry(day_of(t)).or_default()
    }

    /// Counts one event. Logins of never-listed addresses are not history.
    /// An attack on a counter that exists allocates nothing: the key is
    /// built in a reused buffer (formatted again only for a new address)
    /// and looked up by reference.
    pub fn add_event(&mut self, e: &HistEvent<'_>) {
        let n = u64::from(e.count.max(1));
        match e.what {
            What::Attack(rule) => {
                let name = rule.name();
                let ip = self.fold(e.addr);
                let d = self.days.entry(day_of(e.time)).or_default();
                *d.rules.entry(name).or_default() += n;
                *d.hours.entry(e.time.rem_euclid(DAY).div_euclid(3600) as u8).or_default() += n;
                let k = &mut self.scratch.addr;
                k.0 = ip;
                k.1.clear();
                k.1.extend_from_slice(e.host);
                match d.addrs.get_mut(&*k) {
                    Some(v) => v[rule as usize] += n,
                    None => {
                        let mut v = [0; Rule::ALL.len()];
                        v[rule as usize] = n;
                        d.addrs.insert(k.clone(), v);
                    }
                }
                if let Some(u) = e.user {
                    match d.users.get_mut(u) {
                        Some(v) => *v += n,
                        None => {
                            d.users.insert(u.to_vec(), n);
                        }
                    }
                }
            }
            What::Login if e.ever_listed => {
                let key = self.key(e.addr);
                let d = self.day(e.time);
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
        let net: IpAddr = "2001:db8:1:2::".parse().unwrap();
        assert_eq!(b.key(net), "2001:db8:1:2::/64");
        assert_eq!(d1.addrs[&(net, b"h1".to_vec())][Rule::InvalidUser as usize], 4);
        assert_eq!(d1.users[&b"root".to_vec()], 4);
        assert_eq!(d1.changes[&("2001:db8:1:2::/64".to_string(), Change::FirstSeen)], 1);
        assert_eq!(b.days[&2].logins.values().next(), Some(&(2, 2 * 86_400)));
    }

    #[test]
    fn interleaved_addresses_and_hosts_count_under_their_own_keys() {
        let a: IpAddr = "192.0.2.1".parse().unwrap();
        let v6: IpAddr = "2001:db8:1:2::7".parse().unwrap();
        let mut b = DayBatch::new();
        let ev = |addr, host: &'static [u8], rule| HistEvent {
            what: What::Attack(rule),
            addr,
            user: Some(b"root"),
            time: 10,
            host,
            count: 1,
            ever_listed: false,
        };
        for (addr, host, rule) in [
            (a, &b"h1"[..], Rule::InvalidUser),
            (v6, b"h1", Rule::InvalidUser),
            (a, b"h2", Rule::InvalidUser),
            (a, b"h2", Rule::KexReset),
            (a, b"h1", Rule::InvalidUser),
        ] {
            b.add_event(&ev(addr, host, rule));
        }
        // The key follows a change of prefix, not the address alone.
        b.v6_prefix = 64;
        b.add_event(&ev(v6, b"h1", Rule::InvalidUser));
        let d = &b.days[&0];
        let n = |k: &str, r: Rule, h: &[u8]| {
            d.addrs.get(&(k.parse::<IpAddr>().unwrap(), h.to_vec())).map(|c| c[r as usize]).filter(|&n| n > 0)
        };
        assert_eq!(n("192.0.2.1", Rule::InvalidUser, b"h1"), Some(2));
        assert_eq!(n("192.0.2.1", Rule::InvalidUser, b"h2"), Some(1));
        assert_eq!(n("192.0.2.1", Rule::KexReset, b"h2"), Some(1));
        assert_eq!(n("2001:db8:1:2::7", Rule::InvalidUser, b"h1"), Some(1));
        assert_eq!(n("2001:db8:1:2::", Rule::InvalidUser, b"h1"), Some(1));
        assert_eq!(d.addrs.len(), 4);
        assert_eq!(d.users[&b"root".to_vec()], 6);
        // The reused buffers are not part of a batch's value.
        let mut c = DayBatch::new();
        c.days = b.days.clone();
        c.v6_prefix = 64;
        assert_eq!(b, c);
    }
}
