//! What is known about addresses, without I/O: the allowlist (built-in
//! reserved ranges, `--allow`, the allow file) and the tally of events per
//! address gathered while scanning.

use std::collections::HashMap;
use std::net::IpAddr;

use foldhash::fast::RandomState;
use std::path::PathBuf;

use crate::addr::{reserved, Net};
use crate::parse::{Event, Rule, What};

/// Where an allowlist entry came from, to say why an address was spared.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum AllowSource {
    /// A range that is never listed (loopback, link-local, …).
    Reserved(&'static str),
    /// `--allow` on the command line.
    Flag,
    /// A line of the allow file.
    File { path: PathBuf, line: usize },
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct AllowEntry {
    pub net: Net,
    pub source: AllowSource,
}

/// Networks that are never listed.
#[derive(Clone, Debug)]
pub struct Allowlist {
    entries: Vec<AllowEntry>,
}

impl Default for Allowlist {
    fn default() -> Allowlist {
        Allowlist::new()
    }
}

impl Allowlist {
    /// The built-in reserved ranges only.
    pub fn new() -> Allowlist {
        let entries =
            reserved().into_iter().map(|(net, why)| AllowEntry { net, source: AllowSource::Reserved(why) }).collect();
        Allowlist { entries }
    }

    pub fn push(&mut self, net: Net, source: AllowSource) {
        self.entries.push(AllowEntry { net, source });
    }

    /// The entry that spares `ip`, if any.
    pub fn find(&self, ip: IpAddr) -> Option<&AllowEntry> {
        self.entries.iter().find(|e| e.net.contains_ip(ip))
    }

    /// `net` minus every allowed range: the pieces that may be blocked, and
    /// the entries that cut something out of it.
    pub fn carve(&self, net: Net) -> (Vec<Net>, Vec<&AllowEntry>) {
        let mut pieces = vec![net];
        let mut cut = Vec::new();
        for e in &self.entries {
            if !pieces.iter().any(|p| p.overlaps(&e.net)) {
                continue;
            }
            cut.push(e);
            pieces = pieces.iter().flat_map(|p| p.subtract(&e.net)).collect();
        }
        (pieces, cut)
    }

    pub fn entries(&self) -> &[AllowEntry] {
        &self.entries
    }
}

/// How many user names are kept per address.
const USERS_KEPT: usize = 5;

/// What the logs say about one address.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Record {
    /// Events per rule, indexed by `Rule as usize`.
    pub hits: [u32; Rule::ALL.len()],
    /// Successful logins.
    pub logins: u32,
    /// The last few user names tried, oldest first, as logged.
    pub users: Vec<Vec<u8>>,
}

impl Record {
    pub fn attacks(&self) -> u64 {
        self.hits.iter().map(|&h| u64::from(h)).sum()
    }

    /// `invalid-user=3 kex-reset=1`
    pub fn rules_summary(&self) -> RulesSummary<'_> {
        RulesSummary(self)
    }
}

/// Events gathered per address.
#[derive(Clone, Debug, Default)]
pub struct Tally {
    pub records: HashMap<IpAddr, Record, RandomState>,
}

impl Tally {
    pub fn add(&mut self, ev: &Event<'_>) {
        let rec = self.records.entry(ev.ip).or_default();
        match ev.what {
            What::Attack(rule) => {
                let h = &mut rec.hits[rule as usize];
                *h = h.saturating_add(ev.count);
                if let Some(user) = ev.user {
                    if rec.users.last().map(Vec::as_slice) != Some(user) {
                        // Full: recycle the oldest name's allocation.
                        let mut buf = if rec.users.len() == USERS_KEPT { rec.users.remove(0) } else { Vec::new() };
                        buf.clear();
                        buf.extend_from_slice(user);
                        rec.users.push(buf);
                    }
                }
            }
            What::Login => rec.logins = rec.logins.saturating_add(ev.count),
        }
    }
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
