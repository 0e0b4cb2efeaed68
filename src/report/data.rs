//! The figures behind `stats` and `report`, as one plain struct
//! ([`Data`]) built from the state, the history (if any) and the
//! geolocation databases (if any). Nothing here knows the engine: the
//! state comes from `store::statefile::read`.

use std::collections::HashMap;
use std::net::IpAddr;

use crate::geo::{Attribution, Geo, Place};
use crate::parse::Rule;
use crate::state::State;
use crate::store::batch::{day_of, DAY};
use crate::store::history::{By, History, HostRow, LoginRow, Period};
use crate::Error;

/// Totals over the state.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Totals {
    /// Addresses in the state (seen in the logs).
    pub seen: u64,
    /// Listed by the rules.
    pub listed: u64,
    /// Manual bans (and entries imported from the blocklist).
    pub manual: u64,
    /// Addresses first seen in the last 24 hours, 7 days, 30 days.
    pub new_24h: u64,
    pub new_7d: u64,
    pub new_30d: u64,
    /// Events counted, over all rules.
    pub events: u64,
}

/// An address in a table.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Offender {
    pub addr: String,
    pub events: u64,
    pub first: i64,
    pub last: i64,
    /// Since when it is listed, if it is.
    pub listed: Option<i64>,
    /// `invalid-user=3 kex-reset=1`
    pub rules: String,
    pub place: Place,
}

/// A country's or a network's share.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Share {
    /// ISO code, or `AS64500 Example`.
    pub key: String,
    pub addrs: u64,
    pub events: u64,
}

/// A manual ban.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ManualRow {
    pub net: String,
    pub since: i64,
    pub until: Option<i64>,
    pub reason: String,
}

/// A map dot: a grid cell's centre and how many addresses fall in it.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Dot {
    pub lat: f64,
    pub lon: f64,
    pub addrs: u64,
}

/// Everything the views show.
#[derive(Clone, Debug, Default)]
pub struct Data {
    /// When it was made, and by which host.
    pub generated: i64,
    pub hostname: String,
    /// The first day counted (`--since`), if limited.
    pub since: Option<i64>,
    pub totals: Totals,
    /// Events per rule name (history when there is one, else the state's totals).
    pub rules: Vec<(String, u64)>,
    /// Timelines by day (last 60 days), month, year.
    pub by_day: Vec<Period>,
    pub by_month: Vec<Period>,
    pub by_year: Vec<Period>,
    /// Events per UTC hour of day.
    pub hours: [u64; 24],
    pub countries: Vec<Share>,
    pub networks: Vec<Share>,
    /// Most tried user names and the events of all the others.
    pub users: Vec<(Vec<u8>, u64)>,
    pub users_rest: u64,
    pub hosts: Vec<HostRow>,
    pub offenders: Vec<Offender>,
    pub newest: Vec<Offender>,
    /// Logins of addresses that were ever listed: the intrusion alarm.
    pub logins: Vec<LoginRow>,
    pub manual: Vec<ManualRow>,
    pub dots: Vec<Dot>,
    /// The days the history holds.
    pub span: Option<(i64, i64)>,
    pub history: bool,
    pub attributions: Vec<Attribution>,
    /// Set when no geolocation database was found.
    pub geo_note: Option<String>,
    /// Whether the databases can place addresses on the map.
    pub has_city: bool,
    /// All-time events per rule, from the state (a counter that never drops).
    pub rule_totals: Vec<(String, u64)>,
    /// Bytes of log read, over all cursors.
    pub bytes_read: u64,
    /// When the state was last written (set by the caller from the file).
    pub state_written: Option<i64>,
}

/// Options of a view.
#[derive(Clone, Copy, Debug)]
pub struct Options {
    pub now: i64,
    /// Only count from this time on.
    pub since: Option<i64>,
    /// Rows per table.
    pub top: usize,
    /// Most dots on the map.
    pub max_dots: usize,
}

impl Default for Options {
    fn default() -> Options {
        Options { now: 0, since: None, top: 10, max_dots: 400 }
    }
}

impl Data {
    /// Gathers the figures.
    pub fn build(st: &State, history: Option<&History>, geo: &Geo, o: &Options) -> Result<Data, Error> {
        let now = o.now;
        let since_t = o.since.unwrap_or(i64::MIN);
        let mut d = Data {
            generated: now,
            hostname: crate::show::hostname(),
            since: o.since,
            history: history.is_some(),
            attributions: geo.attributions(now),
            geo_note: geo.is_empty().then(|| crate::geo::HOW_TO_INSTALL.to_string()),
            has_city: geo.kinds().city,
            ..Data::default()
        };
        let t = &mut d.totals;
        t.manual = st.manual.len() as u64;
        let mut rules = [0u64; Rule::ALL.len()];
        let mut countries: HashMap<String, (u64, u64)> = HashMap::new();
        let mut networks: HashMap<String, (u64, u64)> = HashMap::new();
        let mut cells: HashMap<(i32, i32), u64> = HashMap::new();
        let mut all: Vec<(&IpAddr, &crate::state::Record)> = Vec::new();
        for (ip, r) in &st.records {
            if r.last < since_t {
                continue;
            }
            t.seen += 1;
            t.listed += u64::from(r.listed.is_some());
            let age = now - r.first;
            t.new_24h += u64::from(age <= DAY);
            t.new_7d += u64::from(age <= 7 * DAY);
            t.new_30d += u64::from(age <= 30 * DAY);
            let ev = r.attacks();
            t.events += ev;
            for (i, h) in r.hits.iter().enumerate() {
                rules[i] += u64::from(*h);
            }
            if !geo.is_empty() {
                let p = geo.lookup(*ip);
                let c = countries.entry(p.country.clone().unwrap_or_else(|| "??".into())).or_default();
                c.0 += 1;
                c.1 += ev;
                if let Some(n) = p.network() {
                    let c = networks.entry(n).or_default();
                    c.0 += 1;
                    c.1 += ev;
                }
                if let Some((lat, lon)) = p.coords {
                    *cells.entry(((lat / 2.0).floor() as i32, (lon / 2.0).floor() as i32)).or_default() += 1;
                }
            }
            all.push((ip, r));
        }
        d.rules = Rule::ALL.iter().map(|r| (r.name().to_string(), rules[*r as usize])).filter(|x| x.1 > 0).collect();
        d.rules.sort_by(|a, b| b.1.cmp(&a.1).then(a.0.cmp(&b.0)));
        d.rule_totals = Rule::ALL
            .iter()
            .map(|r| (r.name().to_string(), st.records.values().map(|x| u64::from(x.hits[*r as usize])).sum()))
            .collect();
        d.bytes_read = st.cursors.iter().map(|c| c.offset).sum();
        // Every country: the map shades them all; tables take the top.
        d.countries = shares(countries, usize::MAX);
        d.networks = shares(networks, o.top);
        let mut dots: Vec<Dot> = cells
            .into_iter()
            .map(|((a, b), n)| Dot { lat: f64::from(a) * 2.0 + 1.0, lon: f64::from(b) * 2.0 + 1.0, addrs: n })
            .collect();
        dots.sort_by(|a, b| b.addrs.cmp(&a.addrs).then(a.lat.total_cmp(&b.lat)).then(a.lon.total_cmp(&b.lon)));
        dots.truncate(o.max_dots);
        d.dots = dots;

        let offender = |ip: &IpAddr, r: &crate::state::Record| Offender {
            addr: ip.to_string(),
            events: r.attacks(),
            first: r.first,
            last: r.last,
            listed: r.listed,
            rules: r.rules_summary().to_string(),
            place: geo.lookup(*ip),
        };
        // Only the top `o.top` of each order are shown: picked with a
        // partial selection, then sorted (two full sorts of every record,
        // summing its hits in each comparison, were a quarter of `stats` on
        // 50,000 addresses).
        let mut by_events: Vec<(u64, &IpAddr, &crate::state::Record)> =
            all.iter().map(|(ip, r)| (r.attacks(), *ip, *r)).collect();
        let most = |a: &(u64, &IpAddr, &crate::state::Record), b: &(u64, &IpAddr, &crate::state::Record)| {
            b.0.cmp(&a.0).then(crate::addr::ip_order(*a.1, *b.1))
        };
        top_by(&mut by_events, o.top, most);
        d.offenders = by_events.iter().map(|(_, ip, r)| offender(ip, r)).collect();
        all.retain(|(_, r)| r.listed.is_some());
        top_by(&mut all, o.top, |a, b| b.1.listed.cmp(&a.1.listed).then(crate::addr::ip_order(*a.0, *b.0)));
        d.newest = all.iter().map(|(ip, r)| offender(ip, r)).collect();
        d.manual = st
            .manual
            .iter()
            .map(|(n, m)| ManualRow {
                net: n.to_string(),
                since: m.since,
                until: m.until,
                reason: m.reason.to_string(),
            })
            .collect();

        // The alarm from the state: listed once, logged in since.
        for (ip, r) in &st.records {
            if r.was_listed && r.logins > 0 && r.last_login >= since_t {
                d.logins.push(LoginRow {
                    addr: ip.to_string(),
                    user: Vec::new(),
                    host: Vec::new(),
                    count: u64::from(r.logins),
                    last: r.last_login,
                });
            }
        }
        if let Some(h) = history {
            let since_day = o.since.map_or(i64::MIN, day_of);
            let today = day_of(now);
            d.span = h.span()?;
            d.by_day = h.timeline(By::Day, since_day.max(today - 59))?;
            d.by_month = h.timeline(By::Month, since_day)?;
            d.by_year = h.timeline(By::Year, since_day)?;
            d.hours = h.hours(since_day)?;
            let (users, rest) = h.top_users(since_day, o.top)?;
            d.users = users;
            d.users_rest = rest;
            d.hosts = h.hosts(since_day)?;
            let hr = h.rules(since_day)?;
            if !hr.is_empty() {
                d.rules = hr;
            }
            // History has the user and host of each login: it replaces the state's rows.
            let hl = h.logins(since_day)?;
            if !hl.is_empty() {
                d.logins.retain(|l| !hl.iter().any(|x| x.addr == l.addr));
                d.logins.extend(hl);
            }
        } else {
            // Without history: the user names the state keeps per address.
            let mut users: HashMap<&[u8], u64> = HashMap::new();
            for (_, r) in st.records.iter().filter(|(_, r)| r.last >= since_t) {
                for u in &r.users {
                    *users.entry(u.as_slice()).or_default() += 1;
                }
            }
            let mut v: Vec<(Vec<u8>, u64)> = users.into_iter().map(|(u, n)| (u.to_vec(), n)).collect();
            v.sort_by(|a, b| b.1.cmp(&a.1).then(a.0.cmp(&b.0)));
            d.users_rest = v.iter().skip(o.top).map(|x| x.1).sum();
            v.truncate(o.top);
            d.users = v;
        }
        d.logins.sort_by(|a, b| b.last.cmp(&a.last).then(a.addr.cmp(&b.addr)));
        Ok(d)
    }
}

fn shares(m: HashMap<String, (u64, u64)>, top: usize) -> Vec<Share> {
    let mut v: Vec<Share> = m.into_iter().map(|(key, (addrs, events))| Share { key, addrs, events }).collect();
    v.sort_by(|a, b| b.addrs.cmp(&a.addrs).then(b.events.cmp(&a.events)).then(a.key.cmp(&b.key)));
    v.truncate(top);
    v
}

/// What the views read, gathered: the state at `state` (missing: empty),
/// the history at `history` (`None` or a missing file: none), the
/// databases `geo` (empty: the default search).
pub fn gather(
    state: &std::path::Path,
    history: Option<&std::path::Path>,
    geo: &[std::path::PathBuf],
    o: &Options,
) -> Result<Data, Error> {
    gather_with(state, history, &Geo::open(geo)?, o)
}

fn gather_with(
    state: &std::path::Path,
    history: Option<&std::path::Path>,
    geo: &Geo,
    o: &Options,
) -> Result<Data, Error> {
    let st = match crate::store::statefile::read(state)? {
        Some(Ok(st)) => st,
        Some(Err(why)) => return Err(Error::Config(format!("state {}: {why}", state.display()))),
        None => State::default(),
    };
    let h = match history {
        Some(p) => History::open_existing(p)?,
        None => None,
    };
    let mut d = Data::build(&st, h.as_ref(), geo, o)?;
    d.state_written = std::fs::metadata(state)
        .and_then(|m| m.modified())
        .ok()
        .and_then(|t| t.duration_since(std::time::UNIX_EPOCH).ok())
        .map(|t| t.as_secs() as i64);
    Ok(d)
}

/// Keeps the first `n` of `v` in the order `cmp`, sorted: a selection,
/// then a sort of those `n` only.
fn top_by<T>(v: &mut Vec<T>, n: usize, mut cmp: impl FnMut(&T, &T) -> std::cmp::Ordering) {
    if n == 0 {
        v.clear();
        return;
    }
    if v.len() > n {
        v.select_nth_unstable_by(n - 1, &mut cmp);
        v.truncate(n);
    }
    v.sort_by(cmp);
}
