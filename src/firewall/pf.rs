//! pf, exactly as pfctl(8) documents it: `pfctl -t TABLE -T replace -f FILE`
//! swaps the table whole, like spamd does; `pfctl -t TABLE -T add -f -`
//! adds a batch read from standard input. After either, `pfctl -k host` or
//! `pfctl -k network` kills the states originating from each newly listed
//! entry: pf passes the packets of an existing state without looking at the
//! rules again, so an open connection would survive the ban. `pfctl -t
//! TABLE -T show` checks that the table exists.

use std::path::Path;

use crate::addr::Net;
use crate::Error;

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PfTarget {
    /// The table name (`badhosts`, as in the seed's pf.conf).
    pub table: String,
}

impl PfTarget {
    /// Replaces the table with `file`, then kills the states of `new`.
    pub fn replace(&self, file: &Path, new: &[Net]) -> Result<(), Error> {
        // Config refuses such a path already; should one get here, it is a
        // reload that cannot happen (exit 4), not a usage error.
        let file = file.to_str().ok_or_else(|| Error::Firewall {
            command: format!("pfctl -t {} -T replace -f {}", self.table, file.display()),
            status: "not run: pfctl needs a UTF-8 path".into(),
            stderr: String::new(),
        })?;
        super::run("pfctl", &["-t", &self.table, "-T", "replace", "-f", file], None)?;
        kill_states(new)
    }

    pub fn add(&self, entries: &[Net]) -> Result<(), Error> {
        let list: String = entries.iter().map(|n| format!("{n}\n")).collect();
        super::run("pfctl", &["-t", &self.table, "-T", "add", "-f", "-"], Some(list.as_bytes()))?;
        kill_states(entries)
    }

    pub fn check(&self) -> Result<(), Error> {
        super::run("pfctl", &["-t", &self.table, "-T", "show"], None)
    }
}

/// One `pfctl -k ENTRY` per entry (a host, or a network with its prefix
/// length). A failure does not spare the entries after it; the first one
/// is returned.
fn kill_states(entries: &[Net]) -> Result<(), Error> {
    let mut result = Ok(());
    for n in entries {
        let r = super::run("pfctl", &["-k", &n.to_string()], None);
        result = result.and(r);
    }
    result
}
