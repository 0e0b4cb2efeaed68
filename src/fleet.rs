//! What a collector shows of its fleet: `export` (the list its rules and
//! manual bans make, with the `# badguys serial=… generated=… hosts=N`
//! header that
//! [`crate::include`] reads, inside the content `signify -S -e` signs),
//! `list --by-host`, and the per-host lines of the sync summary (events per
//! host, hosts gone silent).

use std::collections::BTreeSet;
use std::io::{self, Write};

use tracing::{info, warn};

use crate::addr::Net;
use crate::allow::Allowlist;
use crate::parse::time::iso;
use crate::state::State;

/// The list `export` prints: what this host's rules listed and its
/// manual bans, the allowlist and reserved ranges carved out as for the
/// list file. With `min_hosts`, only the addresses the rules listed from
/// the lines of at least that many hosts (a manual ban is the admin's and
/// always goes). Never the entries of this host's own `--include` lists:
/// each host fetches a public list itself, and a collector that includes
/// another's list would otherwise pass it on in a loop.
pub fn export_list(st: &State, allow: &Allowlist, min_hosts: Option<u32>) -> Vec<Net> {
    let mut set = BTreeSet::new();
    let enough = |n: usize| match min_hosts {
        Some(m) => n >= m as usize,
        None => true,
    };
    for (ip, r) in &st.records {
        if r.listed.is_some() && enough(r.hosts.len()) && allow.find(*ip).is_none() {
            set.insert(Net::host(*ip));
        }
    }
    for net in st.manual.keys() {
        set.extend(allow.carve(*net).0);
    }
    set.into_iter().collect()
}

/// Writes the header and the list. `serial` is the time of the export:
/// a later export always has a higher one (within a second, the same).
pub fn export(o: &mut impl Write, st: &State, list: &[Net], now: i64) -> io::Result<()> {
    let hosts = st.hosts.iter().filter(|h| !h.name.is_empty()).count();
    writeln!(o, "# badguys serial={now} generated={} hosts={hosts}", iso(now))?;
    o.write_all(&crate::store::render(list))
}

/// `list --by-host`: each host, its last event, and how many known and
/// listed addresses it reported.
pub fn by_host(o: &mut impl Write, st: &State) -> io::Result<()> {
    let mut known = vec![0usize; st.hosts.len()];
    let mut listed = vec![0usize; st.hosts.len()];
    for r in st.records.values() {
        for &h in &r.hosts {
            if let Some(k) = known.get_mut(h as usize) {
                *k += 1;
                if r.listed.is_some() {
                    listed[h as usize] += 1;
                }
            }
        }
    }
    writeln!(o, "{:<32} {:<20} {:>8} {:>8}", "host", "last event", "known", "listed")?;
    for (i, h) in st.hosts.iter().enumerate() {
        writeln!(o, "{:<32} {:<20} {:>8} {:>8}", st.host_name(i as u16), iso(h.seen), known[i], listed[i])?;
    }
    Ok(())
}

/// The sync summary's per-host part: sshd lines and events read from each
/// host in this run (when there is more than one host), and a warning for each host
/// silent for longer than `silence`.
pub fn summary(st: &State, silence: Option<i64>, now: i64) {
    let named: Vec<(usize, &crate::state::Host)> =
        st.hosts.iter().enumerate().filter(|(_, h)| !h.name.is_empty()).collect();
    if named.len() > 1 {
        let per: Vec<String> = named
            .iter()
            .map(|(i, h)| format!("{} {} lines {} events", st.host_name(*i as u16), h.lines, h.events))
            .collect();
        info!("per host: {}", per.join(", "));
    }
    let Some(max) = silence else { return };
    for (i, h) in named {
        if h.seen > 0 && now - h.seen > max {
            warn!(
                "host {} silent since {} ({} s, more than --host-silence {max} s): is its forwarding broken?",
                st.host_name(i as u16),
                iso(h.seen),
                now - h.seen
            );
        }
    }
}
