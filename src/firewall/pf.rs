//! pf: one `pfctl -t TABLE -T replace -f FILE`, as pfctl(8) documents it.
//! The table is swapped whole, like spamd does; never one call per address.

use std::path::Path;

use crate::Error;

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PfTarget {
    /// The table name (`badhosts`, as in the seed's pf.conf).
    pub table: String,
}

impl PfTarget {
    pub fn replace(&self, file: &Path) -> Result<(), Error> {
        let file =
            file.to_str().ok_or_else(|| Error::Config(format!("{}: pfctl needs a UTF-8 path", file.display())))?;
        super::run("pfctl", &["-t", &self.table, "-T", "replace", "-f", file], None)
    }
}
