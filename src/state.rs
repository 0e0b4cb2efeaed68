//! What badguys knows, without I/O: one record per address (first and last
//! seen, hits per rule, recent hit times, user names tried, logins, whether
//! and since when it is listed), manual bans, the read cursors of each log
//! and the set last published. `store::statefile` persists it; `rules`
//! decides from it.

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::net::IpAddr;
use std::path::PathBuf;

use foldhash::fast::RandomState;

use crate::addr::Net;
use crate::parse::{Rule, What};
use crate::source::{Cursor, FileId};

/// How many user names are kept per address (the newest).
pub const USERS_KEPT: usize = 5;
/// The longest user name kept, in bytes. OpenSSH logs at most 100
/// characters of a name (`%.100s` in auth.c) and its logger escapes an
/// unprintable byte as `\ooo`, so a real line never carries more than 400;
/// a longer one is forged and is cut.
pub const USER_MAX: usize = 400;
/// The most hit times kept per address (bounds `--threshold`).
pub const RECENT_MAX: usize = 1000;
/// The most reporting hosts kept per address (`--min-hosts` counts up to it).
pub const HOSTS_KEPT: usize = 16;
/// The most host names in the state's host table; lines of further hosts
/// are counted, but under no name.
pub const HOSTS_MAX: usize = 4096;

/// What is known about one address. Nothing in it grows with the number of
/// events: counters saturate, `recent` holds at most `--threshold` times
/// (see [`crate::rules::count`]), `users` at most [`USERS_KEPT`] names of at
/// most [`USER_MAX`] bytes.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Record {
    /// First and last attack or login seen (seconds since the epoch).
    pub first: i64,
    pub last: i64,
    /// Events per rule, indexed by `Rule as usize`.
    pub hits: [u32; Rule::ALL.len()],
    /// Times of the most recent hits, oldest first (for `--window`).
    pub recent: Vec<i64>,
    /// The last few user names tried, oldest first, as logged.
    pub users: Vec<Vec<u8>>,
    /// Successful logins, and the last one.
    pub logins: u32,
    pub last_login: i64,
    /// Since when it is listed by the rules, if it is.
    pub listed: Option<i64>,
    /// Whether it was ever listed (for the login alarm).
    pub was_listed: bool,
    /// The hosts that reported it (ids into [`State::hosts`]), at most
    /// [`HOSTS_KEPT`], in the order first seen.
    pub hosts: Vec<u16>,
    /// Bans by the rules so far (repeat offenders; see
    /// [`crate::rules::repeat`]): the current ban's number while listed.
    pub bans: u32,
    /// When its quiet period began (the last ban's end, or a later attack),
    /// from which the ban count decays.
    pub quiet: i64,
    /// Recent hit times of the rules that count apart (their own
    /// threshold, [`crate::rules::Policy::rule_threshold`]); `None` until
    /// such a rule hits, so the common record pays one pointer.
    pub own: Option<Box<OwnRecent>>,
}

/// The recent hit times of each rule that counts apart, as `recent` is
/// for the pool: sorted, at most that rule's threshold (and
/// [`RECENT_MAX`]) of them.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct OwnRecent(pub Vec<(Rule, Vec<i64>)>);

impl Record {
    pub fn attacks(&self) -> u64 {
        self.hits.iter().map(|&h| u64::from(h)).sum()
    }

    /// `invalid-user=3 kex-reset=1`
    pub fn rules_summary(&self) -> RulesSummary<'_> {
        RulesSummary(self)
    }

    /// Counts one event (`count` times) at time `t`. An attack's time goes
    /// into `recent`, of which the newest `keep_times` are kept (at most
    /// [`RECENT_MAX`]); with `keep_times` 0 `recent` is left as it is.
    pub fn add(&mut self, what: What, user: Option<&[u8]>, count: u32, t: i64, keep_times: usize) {
        if self.first == 0 || t < self.first {
            self.first = t;
        }
        self.last = self.last.max(t);
        match what {
            What::Attack(rule) => {
                let h = &mut self.hits[rule as usize];
                *h = h.saturating_add(count);
                if keep_times > 0 {
                    self.add_times(t, count, keep_times.min(RECENT_MAX));
                }
                if let Some(user) = user {
                    let user = &user[..user.len().min(USER_MAX)];
                    if self.users.last().map(Vec::as_slice) != Some(user) {
                        // Full: recycle the oldest name's allocation.
                        let mut buf = if self.users.len() >= USERS_KEPT { self.users.remove(0) } else { Vec::new() };
                        buf.clear();
                        buf.extend_from_slice(user);
                        // Most addresses try one or two names: grow one at
                        // a time (a Vec's first push would make room for 4,
                        // 80 bytes of heap per record).
                        self.users.reserve_exact(1);
                        self.users.push(buf);
                    }
                }
            }
            What::Login => {
                self.logins = self.logins.saturating_add(count);
                self.last_login = self.last_login.max(t);
            }
        }
    }

    /// `count` hits at `t` into `recent`, keeping its newest `keep` times.
    fn add_times(&mut self, t: i64, count: u32, keep: usize) {
        // Lines can arrive out of order (several hosts, rotated files):
        // keep the list sorted.
        insert_times(&mut self.recent, t, count, keep);
    }

    /// `count` hits of `rule` (which counts apart) at `t`, keeping its
    /// newest `keep` times (at most [`RECENT_MAX`]).
    pub fn add_own_times(&mut self, rule: Rule, t: i64, count: u32, keep: usize) {
        let own = &mut self.own.get_or_insert_with(Box::default).0;
        let i = match own.iter().position(|(r, _)| *r == rule) {
            Some(i) => i,
            None => {
                own.push((rule, Vec::new()));
                own.len() - 1
            }
        };
        insert_times(&mut own[i].1, t, count, keep.clamp(1, RECENT_MAX));
    }

    /// The recent times of each rule that counts apart.
    pub fn own_times(&self) -> impl Iterator<Item = (Rule, &[i64])> + '_ {
        self.own.iter().flat_map(|o| o.0.iter().map(|(r, t)| (*r, &t[..])))
    }
}

/// Inserts `count` times `t` into the sorted `v`, keeping its newest `keep`.
/// The oldest go before the new ones come in, so that a full `v` is not
/// reallocated (a `Vec` over its capacity would double it).
fn insert_times(v: &mut Vec<i64>, t: i64, count: u32, keep: usize) {
    let mut at = v.partition_point(|&x| x <= t);
    let mut n = (count as usize).min(keep);
    let excess = (v.len() + n).saturating_sub(keep);
    let old = excess.min(at);
    v.drain(..old);
    at -= old;
    n -= (excess - old).min(n);
    v.reserve_exact(n);
    v.splice(at..at, std::iter::repeat_n(t, n));
    let excess = v.len().saturating_sub(keep);
    v.drain(..excess);
}

/// Displays a record's hits as `invalid-user=3 kex-reset=1`.
pub struct RulesSummary<'a>(&'a Record);

impl std::fmt::Display for RulesSummary<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let mut sep = "";
        for r in Rule::ALL {
            let h = self.0.hits[r as usize];
            if h > 0 {
                write!(f, "{sep}{}={h}", r.name())?;
                sep = " ";
            }
        }
        Ok(())
    }
}

/// A ban made by hand (`badguys ban`), or an entry found in the blocklist
/// file that no rule put there.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Manual {
    pub since: i64,
    /// When it lapses (`--for`); never when `None`.
    pub until: Option<i64>,
    /// Shared: the entries taken in from the list file all have one.
    pub reason: std::sync::Arc<str>,
}

/// What a run needs to tell, without reading the records, that nothing
/// can have changed since the state was written.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Meta {
    /// The earliest time an expiry or a lapsing manual ban falls due (or,
    /// to the day, a record is forgotten: `rules::forget_due`).
    pub due: Option<i64>,
    /// A hash of the settings the records were judged by.
    pub policy: u64,
    /// Size and modification time (ns) of the blocklist file as written.
    pub out: FileId,
    /// The blocklist file or the firewall may lag behind the records (a
    /// reload failed, a decision is not published yet): the next sync
    /// must not skip, and reloads the firewall.
    pub stale: bool,
    /// Incremented by every save: the history database records the
    /// generation it was last written with, in the same step.
    pub generation: u64,
    /// Whether the file records the published set (`State::published`).
    pub published: bool,
}

/// Everything that survives a restart.
#[derive(Clone, Debug, Default)]
pub struct State {
    pub records: HashMap<IpAddr, Record, RandomState>,
    pub manual: BTreeMap<Net, Manual>,
    pub cursors: Vec<Cursor>,
    /// Where reading the systemd journal got to.
    pub journal: Option<String>,
    pub meta: Meta,
    /// Exactly what badguys last put in the blocklist file and the
    /// firewall; a line of the file outside it is the admin's. `None`: not
    /// known (a state file written before it was recorded).
    pub published: Option<BTreeSet<Net>>,
    /// The host names seen in the logs (a collector's fleet file holds
    /// many), with when each last reported an event.
    pub hosts: Vec<Host>,
    /// The last good copy of each `--include` list.
    pub includes: BTreeMap<PathBuf, Included>,
    /// Hashes of the sshd lines read lately, to drop resent ones.
    pub dedup: crate::parse::Dedup,
    /// `hosts` by name (built when needed, not kept in the file).
    pub(crate) host_index: HashMap<Vec<u8>, u16, RandomState>,
}

/// A host name seen in the logs.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Host {
    /// As logged (empty for lines without one).
    pub name: Vec<u8>,
    /// Its last event (seconds since the epoch).
    pub seen: i64,
    /// Events read from it by this process (not kept in the state file).
    pub events: u64,
    /// sshd lines read from it by this process (those the prefilter let
    /// through; not kept in the state file).
    pub lines: u64,
}

/// The last good copy of an included list: its own source, replaced whole
/// when a newer copy passes every check.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Included {
    /// The header's serial (None without a badguys header).
    pub serial: Option<u64>,
    /// When the list was generated (or the file's mtime).
    pub time: i64,
    /// When this copy was accepted.
    pub loaded: i64,
    /// The signing key number (hex), None when unsigned.
    pub key: Option<String>,
    pub nets: Vec<Net>,
}

impl State {
    pub fn record(&mut self, ip: IpAddr) -> &mut Record {
        self.records.entry(ip).or_default()
    }

    /// The id of host `name`, added to the table if new (None when the
    /// table is full).
    pub fn host_id(&mut self, name: &[u8]) -> Option<u16> {
        if self.host_index.len() != self.hosts.len() {
            self.host_index = self.hosts.iter().enumerate().map(|(i, h)| (h.name.clone(), i as u16)).collect();
        }
        if let Some(&i) = self.host_index.get(name) {
            return Some(i);
        }
        if self.hosts.len() >= HOSTS_MAX {
            return None;
        }
        let id = self.hosts.len() as u16;
        self.hosts.push(Host { name: name.to_vec(), ..Host::default() });
        self.host_index.insert(name.to_vec(), id);
        Some(id)
    }

    /// A host's name for display (`-` for lines without one).
    pub fn host_name(&self, id: u16) -> String {
        match self.hosts.get(id as usize) {
            Some(h) if !h.name.is_empty() => h.name.escape_ascii().to_string(),
            _ => "-".into(),
        }
    }
}

impl Record {
    /// Notes that host `id` reported this address.
    pub fn add_host(&mut self, id: u16) {
        if !self.hosts.contains(&id) && self.hosts.len() < HOSTS_KEPT {
            self.hosts.push(id);
        }
    }
}
