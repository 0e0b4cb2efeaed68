//! Which addresses the events condemn: an address with at least one attack
//! is banned unless the allowlist spares it or, without `--ban-accepted`, it
//! logged in successfully in the logs read.

use std::net::IpAddr;

use crate::addr::ip_order;
use crate::state::{AllowEntry, Allowlist, Record, Tally};

/// Why an attacking address is not banned.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Spared<'a> {
    Allowed(&'a AllowEntry),
    /// It logged in successfully in the logs read.
    Accepted,
}

/// The outcome for every attacking address, sorted by address.
#[derive(Debug, Default)]
pub struct Verdict<'a> {
    pub banned: Vec<(IpAddr, &'a Record)>,
    pub spared: Vec<(IpAddr, &'a Record, Spared<'a>)>,
}

pub fn decide<'a>(tally: &'a Tally, allow: &'a Allowlist, ban_accepted: bool) -> Verdict<'a> {
    let mut v = Verdict::default();
    for (ip, rec) in &tally.records {
        if rec.attacks() == 0 {
            continue;
        }
        if let Some(e) = allow.find(*ip) {
            v.spared.push((*ip, rec, Spared::Allowed(e)));
        } else if rec.logins > 0 && !ban_accepted {
            v.spared.push((*ip, rec, Spared::Accepted));
        } else {
            v.banned.push((*ip, rec));
        }
    }
    v.banned.sort_by(|a, b| ip_order(a.0, b.0));
    v.spared.sort_by(|a, b| ip_order(a.0, b.0));
    v
}
