//! The allowlist: networks that are never listed (the reserved ranges,
//! `--allow`, the allow file), where each entry came from, and carving a
//! network around them. No I/O but reading the allow file.

use std::net::IpAddr;
use std::path::{Path, PathBuf};

use crate::addr::{reserved, Net};
use crate::Error;

/// Where an allowlist entry came from, to say why an address was spared.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum AllowSource {
    /// A range that is never listed (loopback, link-local, …).
    Reserved(&'static str),
    /// `--allow` on the command line (or `allow` in the config file).
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

    /// The reserved ranges, `entries` (from flags and the config file),
    /// then the allow file's lines (see [`read_allow_file`]).
    pub fn load(
        entries: impl IntoIterator<Item = (Net, AllowSource)>,
        file: &Path,
        explicit: bool,
    ) -> Result<Allowlist, Error> {
        let mut allow = Allowlist::new();
        for (net, src) in entries {
            allow.push(net, src);
        }
        read_allow_file(file, &mut allow, explicit)?;
        Ok(allow)
    }

    /// This list with the allow file `file` read again (SIGHUP): its old
    /// lines are replaced, the other entries kept.
    pub fn reread(&self, file: &Path, explicit: bool) -> Result<Allowlist, Error> {
        let kept = self.entries.iter().filter_map(|e| match &e.source {
            AllowSource::Reserved(_) => None,
            AllowSource::File { path: p, .. } if p == file => None,
            src => Some((e.net, src.clone())),
        });
        Allowlist::load(kept, file, explicit)
    }
}

/// Adds the allow file's entries. A missing file is fine unless it was
/// named explicitly (a typo there could lock the admin out).
pub fn read_allow_file(path: &Path, allow: &mut Allowlist, explicit: bool) -> Result<(), Error> {
    let text = match std::fs::read(path) {
        Ok(t) => t,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound && !explicit => return Ok(()),
        Err(e) => return Err(Error::Config(format!("allow file {}: {e}", path.display()))),
    };
    for (i, raw) in text.split(|&b| b == b'\n').enumerate() {
        let line = String::from_utf8_lossy(raw);
        let entry = line.split('#').next().unwrap_or("").trim();
        if entry.is_empty() {
            continue;
        }
        let net = entry.parse::<Net>().map_err(|e| Error::ConfigLine {
            path: path.to_path_buf(),
            line: i + 1,
            msg: format!("{entry:?}: {e}"),
        })?;
        allow.push(net, AllowSource::File { path: path.to_path_buf(), line: i + 1 });
    }
    Ok(())
}
