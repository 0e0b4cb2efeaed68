//! `badguys stats`: the figures of a [`Data`] for the terminal, as one
//! JSON object, or in the Prometheus text format (node_exporter's
//! textfile collector).
//!
//! The JSON object (`--json`), one line:
//!
//! ```text
//! {"generated": T, "host": S, "since": T|null,
//!  "totals": {"seen","listed","manual","new_24h","new_7d","new_30d","events"},
//!  "rules": {RULE: N, …},
//!  "timeline": [{"period": S, "events","first_seen","listed","expired","unbanned"}, …],
//!  "countries": [{"key": CC, "addrs", "events"}, …], "networks": [same, key "AS… org"],
//!  "users": [{"user": S, "events": N}, …], "users_rest": N,
//!  "hosts": [{"host": S, "events", "addrs"}, …],
//!  "newest_bans": [{"addr","listed","events","rules","country","network"}, …],
//!  "logins_of_listed": [{"addr","user","host","count","last"}, …],
//!  "history": {"days": [FIRST, LAST]|null}, "geo": [{"path","type","kinds","built","licence","stale"}, …],
//!  "geo_note": S|null}
//! ```
//!
//! Times are seconds since the epoch; user and host names are the logged
//! bytes with control characters and invalid UTF-8 as `\xNN`.

use std::fmt::Write;

use serde_json::{json, Value};

use crate::parse::time::iso;
use crate::report::{printable, Data};
use crate::store::history::Period;

/// Which timeline the terminal view shows.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum By {
    /// The last 14 days.
    Day,
    Month,
    Year,
}

impl std::str::FromStr for By {
    type Err = String;
    fn from_str(s: &str) -> Result<By, String> {
        match s {
            "day" => Ok(By::Day),
            "month" => Ok(By::Month),
            "year" => Ok(By::Year),
            _ => Err(format!("{s:?}: expected day, month or year")),
        }
    }
}

fn timeline(d: &Data, by: By) -> Vec<&Period> {
    match by {
        By::Day => d.by_day.iter().rev().take(14).rev().collect(),
        By::Month => d.by_month.iter().collect(),
        By::Year => d.by_year.iter().collect(),
    }
}

fn day(t: i64) -> String {
    iso(t).chars().take(10).collect()
}

/// The terminal summary.
pub fn text(d: &Data, by: By, top: usize) -> String {
    let mut o = String::new();
    let t = &d.totals;
    let _ = writeln!(o, "badguys on {}, {}", printable(d.hostname.as_bytes()), iso(d.generated));
    for l in &d.logins {
        let who = if l.user.is_empty() { String::new() } else { format!(" as {:?}", printable(&l.user)) };
        let on = if l.host.is_empty() { String::new() } else { format!(" on {}", printable(&l.host)) };
        let _ = writeln!(
            o,
            "!!! INTRUSION ALARM: {} was listed and logged in successfully{who}{on}: {} times, last {}",
            l.addr,
            l.count,
            iso(l.last)
        );
    }
    let _ = writeln!(
        o,
        "addresses: {} seen, {} listed, {} manual bans; new: {} in 24 h, {} in 7 d, {} in 30 d; {} events",
        t.seen, t.listed, t.manual, t.new_24h, t.new_7d, t.new_30d, t.events
    );
    let rules: Vec<String> = d.rules.iter().map(|(r, n)| format!("{r} {n}")).collect();
    let _ = writeln!(o, "rules: {}", if rules.is_empty() { "no events".into() } else { rules.join(", ") });
    let periods = timeline(d, by);
    if d.history {
        let max = periods.iter().map(|p| p.first_seen.max(p.listed)).max().unwrap_or(0).max(1);
        let _ = writeln!(o, "\n{:<12} {:>8} {:>8} {:>10}", "period", "new", "listed", "events");
        for p in &periods {
            let bar = "#".repeat(((p.first_seen.max(p.listed) * 30).div_ceil(max)) as usize);
            let _ = writeln!(o, "{:<12} {:>8} {:>8} {:>10}  {bar}", p.label, p.first_seen, p.listed, p.events);
        }
    } else {
        let _ = writeln!(o, "\n(no history database: per-day figures need it)");
    }
    let list = |o: &mut String, title: &str, rows: Vec<String>| {
        if !rows.is_empty() {
            let _ = writeln!(o, "\n{title}:");
            for r in rows {
                let _ = writeln!(o, "  {r}");
            }
        }
    };
    list(
        &mut o,
        "top countries",
        d.countries
            .iter()
            .take(top)
            .map(|c| format!("{:<6} {:>8} addresses {:>10} events", c.key, c.addrs, c.events))
            .collect(),
    );
    list(
        &mut o,
        "top networks",
        d.networks
            .iter()
            .take(top)
            .map(|c| format!("{:>8} addresses  {}", c.addrs, printable(c.key.as_bytes())))
            .collect(),
    );
    let mut users: Vec<String> = d.users.iter().take(top).map(|(u, n)| format!("{n:>8}  {:?}", printable(u))).collect();
    if d.users_rest > 0 && !users.is_empty() {
        users.push(format!("{:>8}  (other names)", d.users_rest));
    }
    list(&mut o, "top user names", users);
    list(
        &mut o,
        "per reporting host",
        d.hosts
            .iter()
            .map(|h| format!("{:<24} {:>10} events {:>8} addresses", printable(&h.host), h.events, h.addrs))
            .collect(),
    );
    list(
        &mut o,
        "newest bans",
        d.newest
            .iter()
            .take(top)
            .map(|r| {
                format!(
                    "{:<40} {}  {:<3} {}",
                    r.addr,
                    r.listed.map(iso).unwrap_or_default(),
                    r.place.country.as_deref().unwrap_or("-"),
                    printable(r.place.network().unwrap_or_default().as_bytes())
                )
            })
            .collect(),
    );
    if let Some((a, b)) = d.span {
        let _ = writeln!(o, "\nhistory: {} to {}", day(a * 86_400), day(b * 86_400));
    }
    for a in &d.attributions {
        let stale = if a.stale { " — over 90 days old, update it" } else { "" };
        let _ = writeln!(
            o,
            "geolocation: {} ({}, {}), built {}: {}{stale}",
            a.path.display(),
            printable(a.database_type.as_bytes()),
            a.kinds.names(),
            day(a.built),
            a.licence
        );
    }
    if let Some(n) = &d.geo_note {
        let _ = writeln!(o, "geolocation: {n}");
    }
    o
}

/// The `--json` object (documented in the module doc).
pub fn json(d: &Data, by: By, top: usize) -> Value {
    let t = &d.totals;
    let share = |v: &[crate::report::data::Share]| -> Vec<Value> {
        v.iter().take(top).map(|c| json!({"key": c.key, "addrs": c.addrs, "events": c.events})).collect()
    };
    json!({
        "generated": d.generated,
        "host": d.hostname,
        "since": d.since,
        "totals": {"seen": t.seen, "listed": t.listed, "manual": t.manual, "new_24h": t.new_24h,
                   "new_7d": t.new_7d, "new_30d": t.new_30d, "events": t.events},
        "rules": d.rules.iter().map(|(r, n)| (r.clone(), json!(n))).collect::<serde_json::Map<_, _>>(),
        "timeline": timeline(d, by).iter().map(|p| json!({"period": p.label, "events": p.events,
            "first_seen": p.first_seen, "listed": p.listed, "expired": p.expired, "unbanned": p.unbanned})).collect::<Vec<_>>(),
        "countries": share(&d.countries),
        "networks": share(&d.networks),
        "users": d.users.iter().take(top).map(|(u, n)| json!({"user": printable(u), "events": n})).collect::<Vec<_>>(),
        "users_rest": d.users_rest,
        "hosts": d.hosts.iter().map(|h| json!({"host": printable(&h.host), "events": h.events, "addrs": h.addrs})).collect::<Vec<_>>(),
        "newest_bans": d.newest.iter().take(top).map(|r| json!({"addr": r.addr, "listed": r.listed, "events": r.events,
            "rules": r.rules, "country": r.place.country, "network": r.place.network()})).collect::<Vec<_>>(),
        "logins_of_listed": d.logins.iter().map(|l| json!({"addr": l.addr, "user": printable(&l.user),
            "host": printable(&l.host), "count": l.count, "last": l.last})).collect::<Vec<_>>(),
        "history": {"days": d.span.map(|(a, b)| [a, b])},
        "geo": d.attributions.iter().map(|a| json!({"path": a.path.display().to_string(), "type": a.database_type,
            "kinds": a.kinds.names(), "built": a.built, "licence": a.licence, "stale": a.stale})).collect::<Vec<_>>(),
        "geo_note": d.geo_note,
    })
}

/// A label value in the exposition format: `\`, `"` and newlines escaped.
fn label(s: &str) -> String {
    s.replace('\\', "\\\\").replace('"', "\\\"").replace('\n', "\\n")
}

/// The Prometheus text format, for node_exporter's textfile collector
/// (write it to `*.prom` atomically).
pub fn prometheus(d: &Data) -> String {
    let mut o = String::new();
    let mut metric = |name: &str, kind: &str, help: &str, rows: Vec<(String, u64)>| {
        let _ = writeln!(o, "# HELP {name} {help}\n# TYPE {name} {kind}");
        for (labels, v) in rows {
            let _ = writeln!(o, "{name}{labels} {v}");
        }
    };
    let t = &d.totals;
    metric("badguys_listed_addresses", "gauge", "Addresses listed by the rules.", vec![(String::new(), t.listed)]);
    metric("badguys_known_addresses", "gauge", "Addresses in the state.", vec![(String::new(), t.seen)]);
    metric("badguys_manual_bans", "gauge", "Manual bans.", vec![(String::new(), t.manual)]);
    metric(
        "badguys_events_total",
        "counter",
        "Events counted per rule since the state began.",
        d.rule_totals.iter().map(|(r, n)| (format!("{{rule=\"{}\"}}", label(r)), *n)).collect(),
    );
    let bans: u64 = d.by_year.iter().map(|p| p.listed).sum();
    metric(
        "badguys_bans_recorded",
        "gauge",
        "Addresses newly listed, over the days the history keeps.",
        vec![(String::new(), bans)],
    );
    metric(
        "badguys_login_alarms",
        "gauge",
        "Addresses that were listed and logged in successfully.",
        vec![(String::new(), d.logins.len() as u64)],
    );
    metric(
        "badguys_log_bytes_read",
        "gauge",
        "Bytes of log read, over all read cursors.",
        vec![(String::new(), d.bytes_read)],
    );
    if let Some(w) = d.state_written {
        metric(
            "badguys_last_sync_timestamp_seconds",
            "gauge",
            "When the state was last written.",
            vec![(String::new(), w.max(0) as u64)],
        );
    }
    o
}
