//! The `addr` line of the state file: one record, its fields as
//! `key=value` pairs (see [`super::statefile`] for the whole format). Kept
//! apart because records are what grows: every field a record gains is
//! read and written here. `own=maxstartups:T,T/failed-publickey:T` (only
//! when present) holds the recent times of the rules that count apart
//! (`--rule-threshold`); a reader without it ignores the key.

use std::net::IpAddr;

use super::statefile::{escape_into, fields, num, opt_into, opt_num, unescape};
use super::textout::{push_i64, push_ip, push_u64};
use crate::parse::Rule;
use crate::state::{OwnRecent, Record, HOSTS_KEPT, RECENT_MAX, USERS_KEPT, USER_MAX};

/// Reads the fields after `addr ADDR`.
pub(super) fn parse<'a>(f: impl Iterator<Item = &'a str>) -> Result<Record, String> {
    let mut r = Record::default();
    for (k, v) in fields(f) {
        match k {
            "first" => r.first = num(k, v)?,
            "last" => r.last = num(k, v)?,
            "hits" => {
                for h in v.split(',').filter(|h| !h.is_empty()) {
                    let (name, n) = h.split_once(':').ok_or_else(|| format!("hits entry {h:?}"))?;
                    // A rule from a later version is kept out of the counts.
                    if let Ok(rule) = name.parse::<Rule>() {
                        r.hits[rule as usize] = num(k, n)?;
                    }
                }
            }
            "recent" => {
                r.recent = v.split(',').filter(|t| !t.is_empty()).map(|t| num(k, t)).collect::<Result<_, _>>()?;
                r.recent.sort_unstable();
                // The newest are the ones a window can still use.
                r.recent.drain(..r.recent.len().saturating_sub(RECENT_MAX));
            }
            "users" => {
                // A lone "%" stands for an empty user name.
                r.users = v
                    .split(',')
                    .filter(|u| !u.is_empty())
                    .map(|u| if u == "%" { Ok(Vec::new()) } else { unescape(u) })
                    .collect::<Result<_, _>>()?;
                for u in &mut r.users {
                    u.truncate(USER_MAX);
                }
                // Oldest first: keep the newest, as counting does.
                r.users.drain(..r.users.len().saturating_sub(USERS_KEPT));
            }
            "logins" => r.logins = num(k, v)?,
            "login" => r.last_login = num(k, v)?,
            "listed" => r.listed = opt_num(k, v)?,
            "was" => r.was_listed = v == "1",
            "hosts" => {
                for id in v.split(',').filter(|h| !h.is_empty()) {
                    if r.hosts.len() < HOSTS_KEPT {
                        r.hosts.push(num(k, id)?);
                    }
                }
            }
            // Repeat offenders (older versions ignore both keys).
            "bans" => r.bans = num(k, v)?,
            "quiet" => r.quiet = num(k, v)?,
            "own" => r.own = parse_own(k, v)?,
            _ => {}
        }
    }
    Ok(r)
}

/// `own=maxstartups:10,11/failed-publickey:5`: the recent times of the
/// rules that count apart. A rule from a later version is skipped.
fn parse_own(k: &str, v: &str) -> Result<Option<Box<OwnRecent>>, String> {
    let mut own = OwnRecent::default();
    for part in v.split('/').filter(|p| !p.is_empty()) {
        let (name, times) = part.split_once(':').ok_or_else(|| format!("own entry {part:?}"))?;
        let Ok(rule) = name.parse::<Rule>() else { continue };
        let mut t: Vec<i64> =
            times.split(',').filter(|t| !t.is_empty()).map(|t| num(k, t)).collect::<Result<_, _>>()?;
        t.sort_unstable();
        t.drain(..t.len().saturating_sub(RECENT_MAX));
        if !t.is_empty() && !own.0.iter().any(|(r, _)| *r == rule) {
            own.0.push((rule, t));
        }
    }
    Ok((!own.0.is_empty()).then(|| Box::new(own)))
}

/// Appends the whole `addr` line of `r`, newline included.
pub(super) fn render(s: &mut Vec<u8>, ip: IpAddr, r: &Record) {
    s.extend_from_slice(b"addr\t");
    push_ip(s, ip);
    s.extend_from_slice(b"\tfirst=");
    push_i64(s, r.first);
    s.extend_from_slice(b"\tlast=");
    push_i64(s, r.last);
    s.extend_from_slice(b"\thits=");
    let mut first = true;
    for rule in Rule::ALL {
        let n = r.hits[rule as usize];
        if n > 0 {
            if !first {
                s.push(b',');
            }
            first = false;
            s.extend_from_slice(rule.name().as_bytes());
            s.push(b':');
            push_u64(s, u64::from(n));
        }
    }
    s.extend_from_slice(b"\trecent=");
    for (i, &t) in r.recent.iter().enumerate() {
        if i > 0 {
            s.push(b',');
        }
        push_i64(s, t);
    }
    s.extend_from_slice(b"\tusers=");
    for (i, u) in r.users.iter().enumerate() {
        if i > 0 {
            s.push(b',');
        }
        // An empty user name is written as a lone "%".
        if u.is_empty() {
            s.push(b'%');
        } else {
            escape_into(s, u);
        }
    }
    s.extend_from_slice(b"\tlogins=");
    push_u64(s, u64::from(r.logins));
    s.extend_from_slice(b"\tlogin=");
    push_i64(s, r.last_login);
    s.extend_from_slice(b"\tlisted=");
    opt_into(s, r.listed);
    s.extend_from_slice(if r.was_listed { b"\twas=1" } else { b"\twas=0" });
    if !r.hosts.is_empty() {
        s.extend_from_slice(b"\thosts=");
        for (i, &h) in r.hosts.iter().enumerate() {
            if i > 0 {
                s.push(b',');
            }
            push_u64(s, u64::from(h));
        }
    }
    if r.bans > 0 {
        s.extend_from_slice(b"\tbans=");
        push_u64(s, u64::from(r.bans));
        s.extend_from_slice(b"\tquiet=");
        push_i64(s, r.quiet);
    }
    render_own(s, r);
    s.push(b'\n');
}

/// The `own=` field, only when a rule that counts apart has times.
fn render_own(s: &mut Vec<u8>, r: &Record) {
    let mut first = true;
    for (rule, times) in r.own_times().filter(|(_, t)| !t.is_empty()) {
        s.extend_from_slice(if first { b"\town=" } else { b"/" });
        first = false;
        s.extend_from_slice(rule.name().as_bytes());
        s.push(b':');
        for (i, &t) in times.iter().enumerate() {
            if i > 0 {
                s.push(b',');
            }
            push_i64(s, t);
        }
    }
}
