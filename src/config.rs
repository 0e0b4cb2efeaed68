//! Flags and config file to [`Config`], once, at the edge. The config file
//! (`/etc/badguys.conf` when it exists, or `--config PATH`) holds `key =
//! value` lines whose keys are the long flag names (`threshold = 5`, `allow
//! = 192.0.2.0/24`, `on-ban = /usr/local/libexec/badguys/telegram`); a flag
//! given on the command line overrides the key (a repeatable flag replaces
//! all of the file's values). Per-OS defaults, rule selection, the
//! allowlist and the firewall target are resolved and validated here; the
//! rest of the program sees only plain structs.

use std::path::{Path, PathBuf};
use std::time::Duration;

use crate::addr::Net;
use crate::cli::{OutputArgs, ScanArgs, WatchArgs};
use crate::firewall::{Firewall, NftTarget, PfTarget};
use crate::parse::RuleSet;
use crate::rules::Policy;
use crate::source::journal::{self, Journal};
use crate::state::{AllowSource, Allowlist};
use crate::Error;

/// The default config file; it may be missing.
pub const DEFAULT_CONFIG: &str = "/etc/badguys.conf";
/// The default allow file; it may be missing.
pub const DEFAULT_ALLOW_FILE: &str = "/etc/badguys.allow";
/// The default blocklist.
pub const DEFAULT_OUT: &str = "/etc/badguys";

/// Where the list goes and how the firewall is told.
#[derive(Clone, Debug)]
pub struct Output {
    /// The blocklist file.
    pub out: PathBuf,
    /// The state file.
    pub state: PathBuf,
    /// The firewall to reload after a change.
    pub firewall: Firewall,
    /// How long to wait for another run's lock.
    pub lock_timeout: Duration,
    /// Never listed.
    pub allow: Allowlist,
}

/// Alert hooks of `watch`.
#[derive(Clone, Debug, Default)]
pub struct Hooks {
    pub on_ban: Option<Vec<String>>,
    pub on_login: Option<Vec<String>>,
    pub timeout: Duration,
}

/// Everything a command needs.
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
    /// Threshold, window, expiry, --ban-accepted.
    pub policy: Policy,
    pub output: Output,
    pub hooks: Hooks,
    /// Log to syslog instead of stderr (watch).
    pub syslog: bool,
    /// Full reconcile interval of watch.
    pub reconcile: Duration,
    /// The config file that was read, if any.
    pub file: Option<PathBuf>,
    /// The allow file, and whether it was named (then it must exist).
    pub allow_file: (PathBuf, bool),
    /// Read the systemd journal instead of `logs`.
    pub journal: Option<Journal>,
    /// The journal was chosen because the default log does not exist.
    pub journal_auto: bool,
}

impl Config {
    /// A hash of everything the records are judged by: when it differs
    /// from the one saved with the state, every record is judged again.
    pub fn fingerprint(&self) -> u64 {
        let nets: Vec<String> = self.output.allow.entries().iter().map(|e| e.net.to_string()).collect();
        let text = format!(
            "{}|{:?}|{:?}|{}|{:?}|{:?}|{}|{}",
            self.rules,
            self.policy,
            nets,
            self.rotated,
            self.logs,
            self.journal,
            self.output.out.display(),
            env!("CARGO_PKG_VERSION")
        );
        crate::fnv1a(text.as_bytes())
    }

    /// The allowlist with the allow file read again (SIGHUP).
    pub fn reload_allow(&self) -> Result<Allowlist, Error> {
        let (path, explicit) = &self.allow_file;
        let mut allow = Allowlist::new();
        for e in self.output.allow.entries() {
            match &e.source {
                AllowSource::Reserved(_) => {}
                AllowSource::File { path: p, .. } if p == path => {}
                src => allow.push(e.net, src.clone()),
            }
        }
        read_allow_file(path, &mut allow, *explicit)?;
        Ok(allow)
    }
}

/// Settings gathered from the file and the flags, typed but not resolved.
#[derive(Default)]
struct Raw {
    logs: Vec<PathBuf>,
    journal: bool,
    journal_dir: Option<PathBuf>,
    journal_files: Vec<PathBuf>,
    no_rotated: bool,
    rules: Option<RuleSet>,
    ban_accepted: bool,
    threshold: Option<u32>,
    window: Option<i64>,
    expire: Option<i64>,
    out: Option<PathBuf>,
    state: Option<PathBuf>,
    firewall: Option<String>,
    table: Option<String>,
    nft_table: Option<String>,
    nft_set4: Option<String>,
    nft_set6: Option<String>,
    lock_timeout: Option<u64>,
    allow: Vec<(Net, AllowSource)>,
    allow_file: Option<PathBuf>,
    on_ban: Option<Vec<String>>,
    on_login: Option<Vec<String>>,
    hook_timeout: Option<u64>,
    syslog: bool,
    reconcile: Option<i64>,
}

impl Raw {
    /// Sets `key` (a long flag name) from its text.
    fn apply(&mut self, key: &str, v: &str, source: AllowSource) -> Result<(), String> {
        let path = || PathBuf::from(v);
        let yes = || match v {
            "yes" | "true" | "on" | "1" => Ok(true),
            "no" | "false" | "off" | "0" => Ok(false),
            _ => Err(format!("{v:?} is not yes or no")),
        };
        let num = |what: &str| v.parse::<u64>().map_err(|_| format!("{v:?} is not {what}"));
        match key {
            "log" => self.logs.push(path()),
            "journal" => self.journal = yes()?,
            "journal-dir" => self.journal_dir = Some(path()),
            "journal-file" => self.journal_files.push(path()),
            "no-rotated" => self.no_rotated = yes()?,
            "rules" => self.rules = Some(v.parse().map_err(|e: crate::parse::UnknownRule| e.to_string())?),
            "ban-accepted" => self.ban_accepted = yes()?,
            "threshold" => {
                let n = num("a number of attacks")?;
                if n == 0 || n > crate::state::RECENT_MAX as u64 {
                    return Err(format!("{n} is not between 1 and {}", crate::state::RECENT_MAX));
                }
                self.threshold = Some(n as u32);
            }
            "window" => self.window = Some(parse_duration(v)?),
            "expire" => self.expire = Some(parse_duration(v)?),
            "out" => self.out = Some(path()),
            "state" => self.state = Some(path()),
            "firewall" => self.firewall = Some(v.to_string()),
            "table" => self.table = Some(v.to_string()),
            "nft-table" => self.nft_table = Some(v.to_string()),
            "nft-set4" => self.nft_set4 = Some(v.to_string()),
            "nft-set6" => self.nft_set6 = Some(v.to_string()),
            "lock-timeout" => self.lock_timeout = Some(num("a number of seconds")?),
            "allow" => self.allow.push((v.parse::<Net>().map_err(|e| format!("{v:?}: {e}"))?, source)),
            "allow-file" => self.allow_file = Some(path()),
            "on-ban" => self.on_ban = Some(crate::hooks::split_command(v)?),
            "on-login" => self.on_login = Some(crate::hooks::split_command(v)?),
            "hook-timeout" => self.hook_timeout = Some(num("a number of seconds")?),
            "syslog" => self.syslog = yes()?,
            "reconcile" => self.reconcile = Some(parse_duration(v)?),
            _ => return Err(format!("unknown setting {key:?}")),
        }
        Ok(())
    }

    fn read_file(&mut self, path: &Path) -> Result<(), Error> {
        let text = std::fs::read(path).map_err(|e| Error::Config(format!("config file {}: {e}", path.display())))?;
        for (i, raw) in text.split(|&b| b == b'\n').enumerate() {
            let err = |msg: String| Error::ConfigLine { path: path.to_path_buf(), line: i + 1, msg };
            let line = std::str::from_utf8(raw).map_err(|_| err("not UTF-8".into()))?.trim();
            if line.is_empty() || line.starts_with('#') {
                continue;
            }
            let (k, v) = line.split_once('=').ok_or_else(|| err(format!("expected `key = value`, found {line:?}")))?;
            let (k, v) = (k.trim(), unquote(v.trim()));
            self.apply(k, v, AllowSource::File { path: path.to_path_buf(), line: i + 1 }).map_err(|m| {
                // "unknown setting" already names the key.
                err(if m.starts_with("unknown setting") { m } else { format!("{k}: {m}") })
            })?;
        }
        Ok(())
    }

    fn apply_flags(
        &mut self,
        scan: Option<&ScanArgs>,
        out: &OutputArgs,
        watch: Option<&WatchArgs>,
    ) -> Result<(), Error> {
        let mut set = |k: &str, v: &str| {
            self.apply(k, v, AllowSource::Flag).map_err(|m| Error::Config(format!("--{k} {v:?}: {m}")))
        };
        let mut pairs: Vec<(&str, String)> = Vec::new();
        if let Some(s) = scan {
            pairs.extend(s.rules.iter().map(|v| ("rules", v.clone())));
            pairs.extend(s.threshold.iter().map(|v| ("threshold", v.to_string())));
            pairs.extend(s.window.iter().map(|v| ("window", v.clone())));
            pairs.extend(s.expire.iter().map(|v| ("expire", v.clone())));
            if s.no_rotated {
                pairs.push(("no-rotated", "yes".into()));
            }
            if s.journal {
                pairs.push(("journal", "yes".into()));
            }
            pairs.extend(s.journal_dir.iter().map(|d| ("journal-dir", d.display().to_string())));
            if s.ban_accepted {
                pairs.push(("ban-accepted", "yes".into()));
            }
        }
        let p = |o: &Option<PathBuf>| o.as_ref().map(|p| p.display().to_string());
        for (k, v) in [
            ("out", p(&out.out)),
            ("state", p(&out.state)),
            ("allow-file", p(&out.allow_file)),
            ("firewall", out.firewall.clone()),
            ("table", out.table.clone()),
            ("nft-table", out.nft_table.clone()),
            ("nft-set4", out.nft_set4.clone()),
            ("nft-set6", out.nft_set6.clone()),
            ("lock-timeout", out.lock_timeout.map(|n| n.to_string())),
        ] {
            pairs.extend(v.map(|v| (k, v)));
        }
        if let Some(w) = watch {
            pairs.extend(w.on_ban.iter().map(|v| ("on-ban", v.clone())));
            pairs.extend(w.on_login.iter().map(|v| ("on-login", v.clone())));
            pairs.extend(w.hook_timeout.iter().map(|v| ("hook-timeout", v.to_string())));
            pairs.extend(w.reconcile.iter().map(|v| ("reconcile", v.clone())));
            if w.syslog {
                pairs.push(("syslog", "yes".into()));
            }
        }
        for (k, v) in pairs {
            set(k, &v)?;
        }
        // Repeatable flags replace the file's values; a source given as a
        // flag (log files or the journal) replaces the file's other one.
        if let Some(s) = scan.filter(|s| !s.logs.is_empty()) {
            self.logs = s.logs.clone();
            if !(s.journal || s.journal_dir.is_some() || !s.journal_files.is_empty()) {
                (self.journal, self.journal_dir) = (false, None);
                self.journal_files.clear();
            }
        } else if scan.is_some_and(|s| s.journal || s.journal_dir.is_some() || !s.journal_files.is_empty()) {
            self.logs.clear();
        }
        if let Some(s) = scan.filter(|s| !s.journal_files.is_empty()) {
            self.journal_files = s.journal_files.clone();
        }
        if !out.allow.is_empty() {
            self.allow.retain(|(_, src)| !matches!(src, AllowSource::File { .. }));
            for v in &out.allow {
                let net = v.parse::<Net>().map_err(|e| Error::Config(format!("--allow {v:?}: {e}")))?;
                self.allow.push((net, AllowSource::Flag));
            }
        }
        Ok(())
    }
}

fn unquote(v: &str) -> &str {
    for q in ['"', '\''] {
        if let Some(inner) = v.strip_prefix(q).and_then(|r| r.strip_suffix(q)) {
            return inner;
        }
    }
    v
}

/// `90`, `90s`, `10m`, `2h`, `7d`, `2w` to seconds.
pub fn parse_duration(v: &str) -> Result<i64, String> {
    let v = v.trim();
    let digits = v.bytes().take_while(u8::is_ascii_digit).count();
    let n: i64 = v[..digits].parse().map_err(|_| format!("{v:?} is not a duration such as 90s, 10m, 2h, 7d"))?;
    let unit = match &v[digits..] {
        "" | "s" => 1,
        "m" => 60,
        "h" => 3600,
        "d" => 86400,
        "w" => 7 * 86400,
        _ => return Err(format!("{v:?} is not a duration such as 90s, 10m, 2h, 7d")),
    };
    n.checked_mul(unit).filter(|&s| s > 0).ok_or_else(|| format!("{v:?} is not a positive duration"))
}

impl Config {
    /// Resolves the settings of a command: the config file, then the flags.
    pub fn load(
        config: Option<&Path>,
        scan: Option<&ScanArgs>,
        out: &OutputArgs,
        watch: Option<&WatchArgs>,
    ) -> Result<Config, Error> {
        let mut raw = Raw::default();
        let file = match config {
            Some(p) => Some(p.to_path_buf()),
            None => Some(PathBuf::from(DEFAULT_CONFIG)).filter(|p| p.exists()),
        };
        if let Some(f) = &file {
            raw.read_file(f)?;
        }
        raw.apply_flags(scan, out, watch)?;

        let default_log = raw.logs.is_empty();
        let logs = if default_log { vec![crate::source::default_log()] } else { raw.logs.clone() };
        let asked = raw.journal || raw.journal_dir.is_some() || !raw.journal_files.is_empty();
        if asked && !default_log {
            return Err(Error::Config("--journal and --log exclude each other: read the journal or log files".into()));
        }
        // Debian 12, Fedora, Arch: sshd logs only to the journal.
        let auto = !asked && default_log && cfg!(target_os = "linux") && !logs[0].exists() && journal::available();
        let journal =
            (asked || auto).then(|| Journal { dir: raw.journal_dir.clone(), files: raw.journal_files.clone() });
        let mut allow = Allowlist::new();
        for (net, src) in raw.allow.drain(..) {
            allow.push(net, src);
        }
        let allow_file = match &raw.allow_file {
            Some(p) => (p.clone(), true),
            None => (PathBuf::from(DEFAULT_ALLOW_FILE), false),
        };
        read_allow_file(&allow_file.0, &mut allow, allow_file.1)?;
        let policy = Policy {
            threshold: raw.threshold.unwrap_or(1),
            window: raw.window,
            expire: raw.expire,
            ban_accepted: raw.ban_accepted,
        };
        Ok(Config {
            logs,
            default_log,
            rotated: !raw.no_rotated,
            rules: raw.rules.unwrap_or_default(),
            policy,
            output: Output {
                out: raw.out.clone().unwrap_or_else(|| PathBuf::from(DEFAULT_OUT)),
                state: raw.state.clone().unwrap_or_else(crate::store::statefile::default_path),
                firewall: firewall(&raw)?,
                lock_timeout: Duration::from_secs(raw.lock_timeout.unwrap_or(10)),
                allow,
            },
            hooks: Hooks {
                on_ban: raw.on_ban.clone(),
                on_login: raw.on_login.clone(),
                timeout: Duration::from_secs(raw.hook_timeout.unwrap_or(30)),
            },
            syslog: raw.syslog,
            reconcile: Duration::from_secs(raw.reconcile.unwrap_or(600) as u64),
            file,
            allow_file,
            journal,
            journal_auto: auto,
        })
    }
}

fn firewall(raw: &Raw) -> Result<Firewall, Error> {
    let kind = raw.firewall.as_deref().unwrap_or(Firewall::default_kind());
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
                if !crate::firewall::valid_name(name) {
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn durations() {
        assert_eq!(parse_duration("90"), Ok(90));
        assert_eq!(parse_duration("10m"), Ok(600));
        assert_eq!(parse_duration("7d"), Ok(604800));
        assert!(parse_duration("0s").is_err() && parse_duration("5y").is_err() && parse_duration("").is_err());
    }

    #[test]
    fn file_then_flags() {
        let d = tempfile::tempdir().unwrap();
        let conf = d.path().join("badguys.conf");
        let allow = d.path().join("allow");
        std::fs::write(&allow, "").unwrap();
        std::fs::write(
            &conf,
            format!(
                "# comment\nthreshold = 3\nwindow = 10m\nlog = /a\nlog = /b\nallow = 192.0.2.0/24\nallow-file = {}\nfirewall = none\non-ban = \"/x/telegram --chat 1\"\n",
                allow.display()
            ),
        )
        .unwrap();
        let c = Config::load(Some(&conf), Some(&ScanArgs::default()), &OutputArgs::default(), None).unwrap();
        assert_eq!((c.policy.threshold, c.policy.window), (3, Some(600)));
        assert_eq!(c.logs, [PathBuf::from("/a"), PathBuf::from("/b")]);
        assert!(c.output.allow.find("192.0.2.9".parse().unwrap()).is_some());
        let scan = ScanArgs { logs: vec!["/c".into()], threshold: Some(5), ..ScanArgs::default() };
        let c = Config::load(Some(&conf), Some(&scan), &OutputArgs::default(), None).unwrap();
        assert_eq!((c.policy.threshold, c.logs.clone()), (5, vec![PathBuf::from("/c")]));

        std::fs::write(&conf, "threshold = 3\nbogus = 1\n").unwrap();
        let e = Config::load(Some(&conf), None, &OutputArgs::default(), None).unwrap_err().to_string();
        assert!(e.ends_with("badguys.conf:2: unknown setting \"bogus\""), "{e}");
        std::fs::write(&conf, "window = soon\n").unwrap();
        let e = Config::load(Some(&conf), None, &OutputArgs::default(), None).unwrap_err().to_string();
        assert!(e.contains("badguys.conf:1: window:"), "{e}");
    }
}
