//! Firewall backends. Each one knows how to make the kernel's table or sets
//! hold exactly a given list; none knows where the list came from. Commands
//! run directly (no shell), built by `crate::child` (clean signals and
//! descriptors, `LC_ALL=C`), with their stderr captured for the error.

mod nftables;
mod pf;

use std::collections::HashSet;
use std::io::Write;
use std::path::Path;
use std::process::Stdio;

use crate::addr::Net;
use crate::Error;

pub use nftables::{diff_script as nft_diff_script, script as nft_script, valid_name, NftTarget};
pub use pf::PfTarget;

/// The firewall settings as given (`--firewall`, `--table`, `--nft-table`,
/// `--nft-set4`, `--nft-set6` or their config keys), not yet checked.
#[derive(Clone, Debug, Default)]
pub struct Names {
    pub kind: Option<String>,
    pub table: Option<String>,
    pub nft_table: Option<String>,
    pub nft_set4: Option<String>,
    pub nft_set6: Option<String>,
}

/// Which firewall to reload, and its names.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Firewall {
    Pf(PfTarget),
    Nftables(NftTarget),
    None,
}

impl Firewall {
    /// The firewall the settings name, its names validated. `out` is the
    /// list file (pfctl is given it by name, so it must be UTF-8).
    pub fn from_names(raw: &Names, out: &Path) -> Result<Firewall, Error> {
        let kind = raw.kind.as_deref().unwrap_or(Firewall::default_kind());
        Ok(match kind {
            "pf" => {
                let t = raw.table.clone().unwrap_or_else(|| "badhosts".into());
                // pfctl takes the name as one argv entry; pf limits it to 31 bytes.
                if t.is_empty()
                    || t.len() > 31
                    || t.starts_with('-')
                    || t.bytes().any(|b| b.is_ascii_whitespace() || b.is_ascii_control())
                {
                    return Err(Error::Config(format!("--table {t:?}: not a valid table name")));
                }
                // pfctl is given the list file by name, as one argv string.
                if out.to_str().is_none() {
                    return Err(Error::Config(format!(
                        "--out {}: not UTF-8, and pfctl is given the list file by name",
                        out.display()
                    )));
                }
                Firewall::Pf(PfTarget { table: t })
            }
            "nftables" | "nft" => {
                let spec = raw.nft_table.clone().unwrap_or_else(|| "inet badguys".into());
                let (family, table) = spec.split_once(' ').map(|(f, t)| (f.trim(), t.trim())).ok_or_else(|| {
                    Error::Config(format!("--nft-table {spec:?}: expected \"FAMILY NAME\", e.g. \"inet badguys\""))
                })?;
                if family != "inet" {
                    return Err(Error::Config(format!(
                        "--nft-table {spec:?}: the family must be inet (one table holds the IPv4 and the IPv6 set)"
                    )));
                }
                let set4 = raw.nft_set4.clone().unwrap_or_else(|| "badguys4".into());
                let set6 = raw.nft_set6.clone().unwrap_or_else(|| "badguys6".into());
                for (flag, name) in [("--nft-table", table), ("--nft-set4", &set4), ("--nft-set6", &set6)] {
                    if !valid_name(name) {
                        return Err(Error::Config(format!(
                            "{flag} {name:?}: not a valid nftables name (letters, digits, _; at most 58)"
                        )));
                    }
                }
                Firewall::Nftables(NftTarget { family: family.to_string(), table: table.to_string(), set4, set6 })
            }
            "none" => Firewall::None,
            other => return Err(Error::Config(format!("--firewall {other:?}: expected pf, nftables or none"))),
        })
    }

    /// pf on OpenBSD (and the other BSDs that ship it), nftables elsewhere.
    pub fn default_kind() -> &'static str {
        if cfg!(any(target_os = "openbsd", target_os = "freebsd", target_os = "netbsd", target_os = "macos")) {
            "pf"
        } else {
            "nftables"
        }
    }

    pub fn name(&self) -> &'static str {
        match self {
            Firewall::Pf(_) => "pf",
            Firewall::Nftables(_) => "nftables",
            Firewall::None => "none",
        }
    }

    /// Makes the firewall hold exactly `entries` (sorted), which `file`
    /// (the blocklist just written) also holds. `new` are the entries that
    /// were not published before (see [`added`]): pf kills their states.
    /// nftables needs nothing more: the badguys chains look at every
    /// packet, those of connections already open included.
    ///
    /// `previous` is what the firewall holds now, when the caller knows it
    /// (its own last publish): nftables then sends only the difference,
    /// and falls back to flushing and refilling the sets when that fails.
    /// pf always swaps the table whole (`-T replace` is atomic and fast).
    pub fn replace(&self, entries: &[Net], file: &Path, new: &[Net], previous: Option<&[Net]>) -> Result<(), Error> {
        match self {
            Firewall::Pf(t) => t.replace(file, new),
            Firewall::Nftables(t) => t.replace(entries, previous),
            Firewall::None => Ok(()),
        }
    }

    /// Whether [`Firewall::replace`] uses its `new` entries (pf kills
    /// their states): else the caller need not work them out.
    pub fn kills(&self) -> bool {
        matches!(self, Firewall::Pf(_))
    }

    /// Adds `entries` (none of them already in the firewall) in one call.
    pub fn add(&self, entries: &[Net]) -> Result<(), Error> {
        if entries.is_empty() {
            return Ok(());
        }
        match self {
            Firewall::Pf(t) => t.add(entries),
            Firewall::Nftables(t) => t.add(entries),
            Firewall::None => Ok(()),
        }
    }

    /// Checks that the table or sets exist; the error says what is missing.
    pub fn check(&self) -> Result<(), Error> {
        match self {
            Firewall::Pf(t) => t.check(),
            Firewall::Nftables(t) => t.check(),
            Firewall::None => Ok(()),
        }
    }
}

/// The entries of `now` (sorted) that neither `published` (sorted: the set
/// published last, when known) nor `file` (the list file's entries, in any
/// order) holds: what a replace newly lists. `now` and `published` are
/// walked side by side; only what that leaves is looked up in `file`
/// (a hash set of 2,000,000 entries took 41% of a watch reconcile at
/// 1,000,000 in a perf profile).
pub fn added<'a>(published: Option<impl IntoIterator<Item = &'a Net>>, file: &[Net], now: &[Net]) -> Vec<Net> {
    let mut new: Vec<Net> = match published {
        None => now.to_vec(),
        Some(p) => {
            let mut p = p.into_iter().peekable();
            let mut new = Vec::new();
            for n in now {
                while p.next_if(|b| *b < n).is_some() {}
                if p.next_if_eq(&n).is_none() {
                    new.push(*n);
                }
            }
            new
        }
    };
    if !new.is_empty() {
        let candidates: HashSet<Net> = new.iter().copied().collect();
        let listed: HashSet<Net> = file.iter().filter(|n| candidates.contains(n)).copied().collect();
        new.retain(|n| !listed.contains(n));
    }
    new
}

/// Runs `program args…` with `stdin` fed to it; an error names the command
/// and carries its stderr.
pub(crate) fn run(program: &str, args: &[&str], stdin: Option<&[u8]>) -> Result<(), Error> {
    let command = std::iter::once(program).chain(args.iter().copied()).collect::<Vec<_>>().join(" ");
    let fail = |status: String, stderr: &[u8]| Error::Firewall {
        command: command.clone(),
        status,
        stderr: String::from_utf8_lossy(&stderr[..stderr.len().min(4096)]).trim().to_string(),
    };
    let mut child = crate::child::command(program)
        .args(args)
        .stdin(if stdin.is_some() { Stdio::piped() } else { Stdio::null() })
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .map_err(|e| fail(format!("cannot run: {e}"), b""))?;
    let writer = stdin.map(|data| {
        let mut pipe = child.stdin.take().expect("stdin is piped");
        let data = data.to_vec();
        std::thread::spawn(move || pipe.write_all(&data))
    });
    let output = child.wait_with_output().map_err(|e| fail(format!("cannot wait: {e}"), b""))?;
    if let Some(w) = writer {
        // A write error (EPIPE) only matters if the command also failed.
        let _ = w.join();
    }
    if output.status.success() {
        Ok(())
    } else {
        Err(fail(output.status.to_string(), &output.stderr))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn added_is_what_neither_the_published_set_nor_the_file_holds() {
        let nets = |v: &[&str]| -> Vec<Net> {
            let mut v: Vec<Net> = v.iter().map(|s| s.parse().unwrap()).collect();
            v.sort();
            v
        };
        let now = nets(&["192.0.2.1", "192.0.2.0/24", "198.51.100.7", "2001:db8::1", "2001:db8::/64"]);
        let published = nets(&["192.0.2.0/24", "198.51.100.7", "2001:db8::9"]);
        let file = nets(&["2001:db8::1", "203.0.113.5"]);
        assert_eq!(added(Some(&published), &file, &now), nets(&["192.0.2.1", "2001:db8::/64"]));
        assert_eq!(
            added(None::<&[Net]>, &file, &now),
            nets(&["192.0.2.1", "192.0.2.0/24", "198.51.100.7", "2001:db8::/64"])
        );
        assert_eq!(added(Some(&now), &[], &now), Vec::<Net>::new());
        // Against the plain definition on a larger mix.
        let all: Vec<Net> = (0..400u32)
            .map(|i| {
                let ip = std::net::IpAddr::from(std::net::Ipv4Addr::from(0xc000_0200 + (i % 97) * 3));
                Net::new(ip, if i % 7 == 0 { 24 } else { 32 }).unwrap()
            })
            .collect();
        let pick = |k: usize| -> Vec<Net> {
            let mut v: Vec<Net> = all.iter().enumerate().filter(|(i, _)| i % k == 1).map(|(_, n)| *n).collect();
            v.sort();
            v.dedup();
            v
        };
        let (now, published, file) = (pick(2), pick(3), pick(5));
        let plain: Vec<Net> = now.iter().filter(|n| !published.contains(n) && !file.contains(n)).copied().collect();
        assert_eq!(added(Some(&published), &file, &now), plain);
    }
}
