//! Command line to [`Config`], once, at the edge: per-OS defaults, rule
//! selection, the allowlist (flags and allow file) and the firewall target
//! are resolved and validated here; the rest of the program sees only the
//! plain structs.

use std::path::{Path, PathBuf};
use std::time::Duration;

use crate::addr::Net;
use crate::cli::{OutputArgs, SyncArgs};
use crate::firewall::{Firewall, NftTarget, PfTarget};
use crate::parse::RuleSet;
use crate::state::{AllowSource, Allowlist};
use crate::Error;

/// The default allow file; it may be missing.
pub const DEFAULT_ALLOW_FILE: &str = "/etc/badguys.allow";

/// Where the list goes and how the firewall is told.
#[derive(Clone, Debug)]
pub struct Output {
    /// The blocklist file.
    pub out: PathBuf,
    /// The firewall to reload after a change.
    pub firewall: Firewall,
    /// How long to wait for another run's lock.
    pub lock_timeout: Duration,
}

/// Everything `sync` needs.
#[derive(Clone, Debug)]
pub struct Config {
    /// Logs to read, in order; each is read after its rotated siblings.
    pub logs: Vec<PathBuf>,
    /// Whether `logs` is the built-in default (a missing default gets its own message).
    pub default_log: bool,
    /// Read rotated siblings too.
    pub rotated: bool,
    /// Rules whose matches count.
    pub rules: RuleSet,
    /// Never listed.
    pub allow: Allowlist,
    /// List addresses that logged in successfully too.
    pub ban_accepted: bool,
    /// Write and reload nothing; show what would be added.
    pub dry_run: bool,
    /// Print the resulting list.
    pub print: bool,
    /// Reload even when nothing changed.
    pub force_reload: bool,
    pub output: Output,
}

impl Config {
    pub fn from_sync(a: &SyncArgs) -> Result<Config, Error> {
        let default_log = a.logs.is_empty();
        let logs = if default_log { vec![crate::source::default_log()] } else { a.logs.clone() };
        let rules = match &a.rules {
            Some(s) => s.parse().map_err(|e| Error::Config(format!("--rules: {e}")))?,
            None => RuleSet::defaults(),
        };
        let mut allow = Allowlist::new();
        for s in &a.allow {
            let net = s.parse::<Net>().map_err(|e| Error::Config(format!("--allow {s:?}: {e}")))?;
            allow.push(net, AllowSource::Flag);
        }
        match &a.allow_file {
            Some(p) => read_allow_file(p, &mut allow, true)?,
            None => read_allow_file(Path::new(DEFAULT_ALLOW_FILE), &mut allow, false)?,
        }
        Ok(Config {
            logs,
            default_log,
            rotated: !a.no_rotated,
            rules,
            allow,
            ban_accepted: a.ban_accepted,
            dry_run: a.dry_run,
            print: a.print,
            force_reload: a.reload,
            output: Output::from_args(&a.output)?,
        })
    }
}

impl Output {
    pub fn from_args(a: &OutputArgs) -> Result<Output, Error> {
        let kind = a.firewall.as_deref().unwrap_or(Firewall::default_kind());
        let firewall = match kind {
            "pf" => {
                // pfctl takes the name as one argv entry; pf limits it to 31 bytes.
                let t = &a.table;
                if t.is_empty()
                    || t.len() > 31
                    || t.starts_with('-')
                    || t.bytes().any(|b| b.is_ascii_whitespace() || b.is_ascii_control())
                {
                    return Err(Error::Config(format!("--table {:?}: not a valid table name", a.table)));
                }
                Firewall::Pf(PfTarget { table: a.table.clone() })
            }
            "nftables" | "nft" => {
                let (family, table) =
                    a.nft_table.split_once(' ').map(|(f, t)| (f.trim(), t.trim())).ok_or_else(|| {
                        Error::Config(format!(
                            "--nft-table {:?}: expected \"FAMILY NAME\", e.g. \"inet badguys\"",
                            a.nft_table
                        ))
                    })?;
                if family != "inet" {
                    return Err(Error::Config(format!(
                        "--nft-table {:?}: the family must be inet (one table holds the IPv4 and the IPv6 set)",
                        a.nft_table
                    )));
                }
                for (flag, name) in [("--nft-table", table), ("--nft-set4", &a.nft_set4), ("--nft-set6", &a.nft_set6)] {
                    if !crate::firewall::valid_name(name) {
                        return Err(Error::Config(format!(
                            "{flag} {name:?}: not a valid nftables name (letters, digits, _)"
                        )));
                    }
                }
                Firewall::Nftables(NftTarget {
                    family: family.to_string(),
                    table: table.to_string(),
                    set4: a.nft_set4.clone(),
                    set6: a.nft_set6.clone(),
                })
            }
            "none" => Firewall::None,
            other => return Err(Error::Config(format!("--firewall {other:?}: expected pf, nftables or none"))),
        };
        Ok(Output { out: a.out.clone(), firewall, lock_timeout: Duration::from_secs(a.lock_timeout) })
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
