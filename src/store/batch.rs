//! What one engine step adds to the history, per UTC day ([`DayBatch`]),
//! and how it is built from the step's events ([`DayBatch::add_event`],
//! [`DayBatch::add_change`]). Plain data: no I/O; [`super::history`]
//! writes it.
//!
//! # Memory
//!
//! A first run over a big log adds an event to the batch for every line,
//! so the batch is compact and bounded: a key is an address and an
//! interned host id (no allocation per key), its counters a short inline
//! list of (rule, count) (an address hits one or two rules), maps hash with
//! foldhash; and once it holds [`SPILL_KEYS`] keys
//! ([`DayBatch::is_full`]) the engine writes it into the history's open
//! transaction and starts an empty one (`engine/ingest.rs`).

use std::collections::{BTreeMap, HashMap};
use std::net::{IpAddr, Ipv6Addr};

use crate::addr::Net;
use crate::parse::{Rule, What};

/// Seconds per day.
pub const DAY: i64 = 86_400;

/// Keys (address and host, address changes, user names, logins) a batch
/// holds before [`DayBatch::is_full`] says to write it out: under 1 MB.
/// Two are alive while one is written out (`engine/spill.rs`); larger
/// ones (2^15, 2^16) made the 1 GB first sync no faster and its peak RSS
/// 2 and 6 MiB higher.
pub const SPILL_KEYS: usize = 1 << 14;

/// Distinct user names counted per day in a batch; the events of names
/// past it are summed in [`Day::users_rest`]. Twice the history's bound
/// (`history::TOP_USERS`), so that the most tried names of a batch are
/// among those kept.
pub const USERS_PER_DAY: usize = 2 * super::history::TOP_USERS;

type FastMap<K, V> = HashMap<K, V, foldhash::fast::RandomState>;

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

/// Events per rule of one (address, host) on one day: up to two rules
/// inline (most addresses hit one or two), every rule in a box past that
/// or past `u32::MAX` events.
#[derive(Clone, Debug, Default)]
pub struct Counts {
    /// (rule as u8, events); events 0: the slot is free.
    inline: [(u8, u32); 2],
    all: Option<Box<[u64; Rule::ALL.len()]>>,
}

impl Counts {
    /// Adds `n` events of `rule`.
    pub fn add(&mut self, rule: Rule, n: u64) {
        let r = rule as u8;
        if let Some(all) = self.all.as_deref_mut() {
            all[r as usize] += n;
            return;
        }
        for slot in &mut self.inline {
            if slot.1 == 0 || slot.0 == r {
                if let Some(v) = u32::try_from(n).ok().and_then(|n| slot.1.checked_add(n)) {
                    *slot = (r, v);
                    return;
                }
                break;
            }
        }
        let mut all = Box::new([0u64; Rule::ALL.len()]);
        for (r, v) in self.inline {
            all[r as usize] += u64::from(v);
        }
        all[rule as usize] += n;
        self.all = Some(all);
        self.inline = [(0, 0); 2];
    }

    /// Events of `rule`.
    pub fn get(&self, rule: Rule) -> u64 {
        match &self.all {
            Some(all) => all[rule as usize],
            None => self.inline.iter().filter(|s| s.1 > 0 && s.0 == rule as u8).map(|s| u64::from(s.1)).sum(),
        }
    }

    /// (rule index, events) of every rule with events, in rule order.
    pub fn iter(&self) -> impl Iterator<Item = (usize, u64)> + '_ {
        (0..Rule::ALL.len()).map(|i| (i, self.get(Rule::ALL[i]))).filter(|&(_, n)| n > 0)
    }
}

impl PartialEq for Counts {
    fn eq(&self, o: &Counts) -> bool {
        Rule::ALL.iter().all(|&r| self.get(r) == o.get(r))
    }
}

impl Eq for Counts {}

/// One day's additions. Keys are plain values; an address is the one
/// [`DayBatch::fold`] gives (for IPv6 folded by the caller, a network's
/// first address); [`DayBatch::key`] writes it.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Day {
    /// Events per rule (`Rule as usize`; [`Day::rules`] by name).
    pub rule_events: [u64; Rule::ALL.len()],
    /// Events per UTC hour (0–23; [`Day::hours`]).
    pub hour_events: [u64; 24],
    /// Events per (address or network, reporting host id into
    /// [`DayBatch::hosts`]) and rule: one hash lookup per event.
    pub addrs: FastMap<(IpAddr, u32), Counts>,
    /// Changes per (address, change).
    pub changes: FastMap<(IpAddr, Change), u64>,
    /// Successful logins of addresses that were ever listed, per (address,
    /// user, host): (count, last time).
    pub logins: BTreeMap<LoginKey, (u64, i64)>,
    /// Events per user name tried (attacker-controlled bytes), at most
    /// [`USERS_PER_DAY`] names.
    pub users: FastMap<Vec<u8>, u64>,
    /// Events of the names past [`USERS_PER_DAY`].
    pub users_rest: u64,
}

impl Day {
    /// (rule name, events) of the rules with events, in rule order.
    pub fn rules(&self) -> impl Iterator<Item = (&'static str, u64)> + '_ {
        Rule::ALL.iter().map(|&r| (r.name(), self.rule_events[r as usize])).filter(|&(_, n)| n > 0)
    }

    /// (hour, events) of the hours with events.
    pub fn hours(&self) -> impl Iterator<Item = (u8, u64)> + '_ {
        (0..24u8).map(|h| (h, self.hour_events[h as usize])).filter(|&(_, n)| n > 0)
    }
}

/// [`DayBatch::key`] of `ip` at `v6_prefix`: as `Display` writes the
/// address (or, for IPv6 folded, the network), by `textout`, not
/// `core::fmt`, which was 9% of a first sync's instructions.
pub fn key_of(v6_prefix: u8, ip: IpAddr) -> String {
    use crate::store::textout::{push_ip, push_net};
    let ip = crate::addr::canonical(ip);
    let mut b = Vec::with_capacity(16);
    match ip {
        IpAddr::V6(_) if v6_prefix < 128 => match Net::new(ip, v6_prefix) {
            Ok(n) => push_net(&mut b, n),
            Err(_) => push_ip(&mut b, ip),
        },
        _ => push_ip(&mut b, ip),
    }
    // Digits, hex, dots, colons and a slash: always UTF-8.
    String::from_utf8(b).unwrap_or_default()
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

/// The history's additions of one engine step (or of a part of it, see
/// the module doc), by UTC day.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct DayBatch {
    pub days: BTreeMap<i64, Day>,
    /// IPv6 addresses are counted per network of this prefix length (128:
    /// per address, the default; 64 folds each /64).
    pub v6_prefix: u8,
    /// Reporting host names by id (the ids of [`Day::addrs`]); kept when
    /// the batch is cleared.
    pub hosts: Vec<Vec<u8>>,
    /// `hosts` by name.
    host_ids: FastMap<Vec<u8>, u32>,
    /// The id [`DayBatch::host_id`] gave last.
    last_host: u32,
    /// Keys held (see [`SPILL_KEYS`]).
    keys: usize,
}

impl DayBatch {
    pub fn new() -> DayBatch {
        DayBatch { v6_prefix: 128, ..DayBatch::default() }
    }

    /// A batch that counts IPv6 addresses per network of `prefix` bits.
    pub fn with_v6_prefix(prefix: u8) -> DayBatch {
        DayBatch { v6_prefix: prefix.clamp(1, 128), ..DayBatch::default() }
    }

    pub fn is_empty(&self) -> bool {
        self.days.is_empty()
    }

    /// Keys held: address and host pairs, changes, user names, logins.
    pub fn keys(&self) -> usize {
        self.keys
    }

    /// Whether the batch holds [`SPILL_KEYS`] keys: time to write it out.
    pub fn is_full(&self) -> bool {
        self.keys >= spill_keys()
    }

    /// Empties the batch (after it was written); host ids stay valid.
    pub fn clear(&mut self) {
        self.days.clear();
        self.keys = 0;
    }

    /// Takes the host ids and IPv6 prefix of `other`, whose counts go
    /// elsewhere: what a batch that continues `other` needs.
    pub fn take_hosts_of(&mut self, other: &DayBatch) {
        self.v6_prefix = other.v6_prefix;
        self.hosts.clone_from(&other.hosts);
        self.host_ids.clone_from(&other.host_ids);
        self.last_host = other.last_host;
    }

    /// The id of reporting host `name`.
    pub fn host_id(&mut self, name: &[u8]) -> u32 {
        // Most logs come from one host: the last one first, without hashing.
        if self.hosts.get(self.last_host as usize).is_some_and(|h| h.as_slice() == name) {
            return self.last_host;
        }
        let id = match self.host_ids.get(name) {
            Some(&id) => id,
            None => {
                let id = self.hosts.len() as u32;
                self.hosts.push(name.to_vec());
                self.host_ids.insert(name.to_vec(), id);
                id
            }
        };
        self.last_host = id;
        id
    }

    /// The name of host id `id`.
    pub fn host(&self, id: u32) -> &[u8] {
        self.hosts.get(id as usize).map_or(&[], Vec::as_slice)
    }

    /// Events of (`ip`, `host`, `rule`) on `day` (0 when none).
    pub fn events(&self, day: i64, ip: IpAddr, host: &[u8], rule: Rule) -> u64 {
        let Some(id) = self.hosts.iter().position(|h| h.as_slice() == host) else { return 0 };
        let Some(d) = self.days.get(&day) else { return 0 };
        d.addrs.get(&(ip, id as u32)).map_or(0, |c| c.get(rule))
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
        key_of(self.v6_prefix, ip)
    }

    fn day(&mut self, t: i64) -> &mut Day {
        self.days.entry(day_of(t)).or_default()
    }

    /// Counts one event. Logins of never-listed addresses are not history.
    /// An attack on a counter that exists allocates nothing.
    pub fn add_event(&mut self, e: &HistEvent<'_>) {
        let n = u64::from(e.count.max(1));
        match e.what {
            What::Attack(rule) => {
                let ip = self.fold(e.addr);
                let host = self.host_id(e.host);
                let d = self.days.entry(day_of(e.time)).or_default();
                d.rule_events[rule as usize] += n;
                d.hour_events[e.time.rem_euclid(DAY).div_euclid(3600) as usize] += n;
                match d.addrs.get_mut(&(ip, host)) {
                    Some(c) => c.add(rule, n),
                    None => {
                        let mut c = Counts::default();
                        c.add(rule, n);
                        d.addrs.insert((ip, host), c);
                        self.keys += 1;
                    }
                }
                if let Some(u) = e.user {
                    let room = d.users.len() < USERS_PER_DAY;
                    match d.users.get_mut(u) {
                        Some(v) => *v += n,
                        None if room => {
                            d.users.insert(u.to_vec(), n);
                            self.keys += 1;
                        }
                        None => d.users_rest += n,
                    }
                }
            }
            What::Login if e.ever_listed => {
                let key = self.key(e.addr);
                let (user, host) = (e.user.unwrap_or_default().to_vec(), e.host.to_vec());
                let d = self.day(e.time);
                let v = d.logins.entry((key, user, host)).or_insert_with(|| (0, i64::MIN));
                let new = v.1 == i64::MIN;
                v.0 += n;
                v.1 = v.1.max(e.time);
                self.keys += usize::from(new);
            }
            What::Login => {}
        }
    }

    /// Counts a change of standing of `addr` at `time`.
    pub fn add_change(&mut self, addr: IpAddr, change: Change, time: i64) {
        let ip = self.fold(addr);
        let v = self.day(time).changes.entry((ip, change)).or_default();
        *v += 1;
        if *v == 1 {
            self.keys += 1;
        }
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

/// [`SPILL_KEYS`]; debug builds only: `BADGUYS_SPILL_KEYS=N`, so that the
/// kill -9 trials of the tests write batches out while reading.
fn spill_keys() -> usize {
    static N: std::sync::OnceLock<usize> = std::sync::OnceLock::new();
    *N.get_or_init(|| crate::debug_env("BADGUYS_SPILL_KEYS").and_then(|v| v.parse().ok()).unwrap_or(SPILL_KEYS))
}

/// The rule of a stored name, if this version knows it.
pub fn rule_named(name: &str) -> Option<Rule> {
    name.parse().ok()
}

#[cfg(test)]
#[path = "batch_tests.rs"]
mod tests;
