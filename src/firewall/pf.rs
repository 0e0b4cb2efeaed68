//! pf, exactly as pfctl(8) documents it: `pfctl -t TABLE -T replace -f FILE`
//! swaps the table whole, like spamd does; `pfctl -t TABLE -T add -f -`
//! adds a batch read from standard input, and `pfctl -k HOST` then kills
//! the states of each new address (pf passes packets of an existing state
//! without looking at the rules again). `pfctl -t TABLE -T show` checks that
//! the table exists.

use std::path::Path;

use crate::addr::Net;
use crate::Error;

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PfTarget {
    /// The table name (`badhosts`, as in the seed's pf.conf).
    pub table: String,
}

impl PfTarget {
    pub fn replace(&self, file: &Path) -> Result<(), Error> {
        // Config refuses such a path already; should one get here, it is a
        // reload that cannot happen (exit 4), not a usage error.
        let file = file.to_str().ok_or_else(|| Error::Firewall {
            command: format!("pfctl -t {} -T replace -f {}", self.table, file.display()),
            status: "not run: pfctl needs a UTF-8 path".into(),
            stderr: String::new(),
        })?;
        super::run("pfctl", &["-t", &self.table, "-T", "replace", "-f", file], None)
    }

    pub fn add(&self, entries: &[Net]) -> Result<(), Error> {
        let list: String = entries.iter().map(|n| format!("{n}\n")).collect();
        super::run("pfctl", &["-t", &self.table, "-T", "add", "-f", "-"], Some(list.as_bytes()))?;
        for n in entries.iter().filter(|n| n.is_host()) {
            super::run("pfctl", &["-k", &n.addr().to_string()], None)?;
        }
        Ok(())
    }

    pub fn check(&self) -> Result<(), Error> {
        super::run("pfctl", &["-t", &self.table, "-T", "show"], None)
    }
}
