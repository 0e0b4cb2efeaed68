//! Flags and config file to [`Config`], once, at the edge. The config file
//! (`/etc/badguys.conf` when it exists, or `--config PATH`) holds `key =
//! value` lines whose keys are the long flag names (`threshold = 5`, `allow
//! = 192.0.2.0/24`, `on-ban = /usr/local/libexec/badguys/telegram`); a flag
//! given on the command line overrides the key (a repeatable flag replaces
//! all of the file's values). Per-OS defaults, rule selection, the
//! allowlist and the firewall target are resolved and validated here; the
//! rest of the program sees only plain structs. No process is run here
//! (whether journalctl runs is asked where the journal is opened).

use std::path::{Path, PathBuf};
use std::time::Duration;

use crate::addr::Net;
use crate::allow::{AllowSource, Allowlist};
use crate::cli::{
    parse_command, parse_days, parse_duration, parse_env_name, parse_net, parse_rules, parse_seconds, parse_threshold,
    parse_yes, HistoryArgs, OutputArgs, ScanArgs, WatchArgs,
};
use crate::firewall::{Firewall, Names};
use crate::parse::RuleSet;
use crate::retention::{Retention, DEFAULT_FORGET, DEFAULT_MAX_RECORDS};
use crate::rules::Policy;
use crate::source::journal::Journal;
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
    /// Variables of badguys' environment that hooks get (`hook-env`); they
    /// get no others but PATH, LANG, TZ and their BADGUYS_* ones.
    pub env: Vec<String>,
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
    /// The journal was chosen because the default log does not exist: read
    /// only if journalctl runs (else the default log, which may be back).
    pub journal_auto: bool,
    /// The history database (`history = none`: none); beside the state
    /// file by default.
    pub history: Option<PathBuf>,
    /// Days of history kept.
    pub history_days: u32,
    /// Geolocation databases named (`geo`, repeatable); empty: the default
    /// search of [`crate::geo`].
    pub geo: Vec<PathBuf>,
    /// The HTML report watch rewrites, and how often.
    pub report: Option<(PathBuf, Duration)>,
    /// `--include` lists and how they are checked.
    pub include: Includes,
    /// Warn about a host silent for longer than this (`--host-silence`).
    pub host_silence: Option<i64>,
    /// How many records are kept, and for how long.
    pub retention: Retention,
}

/// The flags of the history and the views, for [`Config::load`]: sync,
/// watch, ban and unban write the history; stats and report read it and
/// geolocate (watch too, for its hooks and its report).
#[derive(Clone, Copy, Default)]
pub struct SeeFlags<'a> {
    pub history: Option<&'a HistoryArgs>,
    pub geo: &'a [PathBuf],
}

/// The `--include` settings.
#[derive(Clone, Debug, Default)]
pub struct Includes {
    pub files: Vec<PathBuf>,
    pub keys: Vec<crate::include::PublicKey>,
    pub unsigned: bool,
    pub max_age: Option<i64>,
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
        self.output.allow.reread(path, *explicit)
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
    ipv6_prefix: Option<u8>,
    rule_threshold: Vec<(crate::parse::Rule, u32)>,
    forget: Option<i64>,
    max_records: Option<usize>,
    window: Option<i64>,
    expire: Option<i64>,
    expire_factor: Option<u32>,
    expire_max: Option<i64>,
    decay: Option<i64>,
    subnet_after: Option<u32>,
    subnet_v4: Option<u8>,
    subnet_v6: Option<u8>,
    out: Option<PathBuf>,
    state: Option<PathBuf>,
    fw: Names,
    lock_timeout: Option<u64>,
    allow: Vec<(Net, AllowSource)>,
    allow_file: Option<PathBuf>,
    on_ban: Option<Vec<String>>,
    on_login: Option<Vec<String>>,
    hook_timeout: Option<u64>,
    hook_env: Vec<String>,
    syslog: bool,
    reconcile: Option<i64>,
    history: Option<PathBuf>,
    history_days: Option<u32>,
    geo: Vec<PathBuf>,
    report: Option<PathBuf>,
    report_every: Option<i64>,
    include: Vec<PathBuf>,
    include_key: Vec<PathBuf>,
    include_unsigned: bool,
    include_max_age: Option<i64>,
    host_silence: Option<i64>,
}

impl Raw {
    /// Sets `key` (a long flag name) from its text, through the value
    /// parsers the flags use.
    fn apply(&mut self, key: &str, v: &str, source: AllowSource) -> Result<(), String> {
        let path = || PathBuf::from(v);
        match key {
            "log" => self.logs.push(path()),
            "journal" => self.journal = parse_yes(v)?,
            "journal-dir" => self.journal_dir = Some(path()),
            "journal-file" => self.journal_files.push(path()),
            "no-rotated" => self.no_rotated = parse_yes(v)?,
            "rules" => self.rules = Some(parse_rules(v)?),
            "ban-accepted" => self.ban_accepted = parse_yes(v)?,
            "threshold" => self.threshold = Some(parse_threshold(v)?),
            "ipv6-prefix" => self.ipv6_prefix = Some(crate::cli::parse_ipv6_prefix(v)?),
            "rule-threshold" => self.rule_threshold.push(crate::cli::parse_rule_threshold(v)?),
            "forget" => self.forget = Some(crate::cli::parse_forget(v)?),
            "max-records" => self.max_records = Some(crate::cli::parse_max_records(v)?),
            "window" => self.window = Some(parse_duration(v)?),
            "expire" => self.expire = Some(parse_duration(v)?),
            "expire-factor" => self.expire_factor = Some(crate::cli::parse_expire_factor(v)?),
            "expire-max" => self.expire_max = Some(parse_duration(v)?),
            "decay" => self.decay = Some(parse_duration(v)?),
            "subnet-after" => self.subnet_after = Some(crate::cli::parse_subnet_after(v)?),
            "subnet-v4" => self.subnet_v4 = Some(crate::cli::parse_subnet_v4(v)?),
            "subnet-v6" => self.subnet_v6 = Some(crate::cli::parse_subnet_v6(v)?),
            "out" => self.out = Some(path()),
            "state" => self.state = Some(path()),
            "firewall" => self.fw.kind = Some(v.to_string()),
            "table" => self.fw.table = Some(v.to_string()),
            "nft-table" => self.fw.nft_table = Some(v.to_string()),
            "nft-set4" => self.fw.nft_set4 = Some(v.to_string()),
            "nft-set6" => self.fw.nft_set6 = Some(v.to_string()),
            "lock-timeout" => self.lock_timeout = Some(parse_seconds(v)?),
            "allow" => self.allow.push((parse_net(v)?, source)),
            "allow-file" => self.allow_file = Some(path()),
            "on-ban" => self.on_ban = Some(parse_command(v)?.0),
            "on-login" => self.on_login = Some(parse_command(v)?.0),
            "hook-timeout" => self.hook_timeout = Some(parse_seconds(v)?),
            "hook-env" => self.hook_env.push(parse_env_name(v)?),
            "syslog" => self.syslog = parse_yes(v)?,
            "reconcile" => self.reconcile = Some(parse_duration(v)?),
            "history" => self.history = Some(path()),
            "history-days" => self.history_days = Some(parse_days(v)?),
            "geo" => self.geo.push(path()),
            "report" => self.report = Some(path()),
            "report-every" => self.report_every = Some(parse_duration(v)?),
            "include" => self.include.push(path()),
            "include-key" => self.include_key.push(path()),
            "include-unsigned" => self.include_unsigned = parse_yes(v)?,
            "include-max-age" => self.include_max_age = Some(parse_duration(v)?),
            "host-silence" => self.host_silence = Some(parse_duration(v)?),
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

    /// The flags over the file's values: typed by clap's value parsers
    /// already, so only merged here. A repeatable flag replaces all of the
    /// file's values.
    fn apply_flags(&mut self, scan: Option<&ScanArgs>, out: &OutputArgs, watch: Option<&WatchArgs>, see: SeeFlags<'_>) {
        fn over<T: Clone>(flag: &Option<T>, file: &mut Option<T>) {
            if flag.is_some() {
                file.clone_from(flag);
            }
        }
        if let Some(s) = scan {
            over(&s.rules, &mut self.rules);
            over(&s.threshold, &mut self.threshold);
            over(&s.ipv6_prefix, &mut self.ipv6_prefix);
            if !s.rule_threshold.is_empty() {
                self.rule_threshold.clone_from(&s.rule_threshold);
            }
            over(&s.forget, &mut self.forget);
            over(&s.max_records, &mut self.max_records);
            self.no_rotated |= s.no_rotated;
            self.journal |= s.journal;
            self.ban_accepted |= s.ban_accepted;
            over(&s.journal_dir, &mut self.journal_dir);
            over(&s.window, &mut self.window);
            over(&s.expire, &mut self.expire);
            over(&s.expire_factor, &mut self.expire_factor);
            over(&s.expire_max, &mut self.expire_max);
            over(&s.decay, &mut self.decay);
            over(&s.subnet_after, &mut self.subnet_after);
            over(&s.subnet_v4, &mut self.subnet_v4);
            over(&s.subnet_v6, &mut self.subnet_v6);
            let i = &s.include;
            if !i.files.is_empty() {
                self.include.clone_from(&i.files);
            }
            if !i.keys.is_empty() {
                self.include_key.clone_from(&i.keys);
            }
            self.include_unsigned |= i.include_unsigned;
            over(&i.include_max_age, &mut self.include_max_age);
            over(&i.host_silence, &mut self.host_silence);
        }
        over(&out.firewall, &mut self.fw.kind);
        over(&out.table, &mut self.fw.table);
        over(&out.nft_table, &mut self.fw.nft_table);
        over(&out.nft_set4, &mut self.fw.nft_set4);
        over(&out.nft_set6, &mut self.fw.nft_set6);
        // Paths are taken as they are (a path need not be UTF-8).
        over(&out.out, &mut self.out);
        over(&out.state, &mut self.state);
        over(&out.allow_file, &mut self.allow_file);
        over(&out.lock_timeout, &mut self.lock_timeout);
        if let Some(w) = watch {
            over(&w.on_ban.as_ref().map(|a| a.0.clone()), &mut self.on_ban);
            over(&w.on_login.as_ref().map(|a| a.0.clone()), &mut self.on_login);
            if !w.hook_env.is_empty() {
                self.hook_env.clone_from(&w.hook_env);
            }
            self.syslog |= w.syslog;
            over(&w.hook_timeout, &mut self.hook_timeout);
            over(&w.reconcile, &mut self.reconcile);
            over(&w.report, &mut self.report);
            over(&w.report_every, &mut self.report_every);
        }
        if let Some(h) = see.history {
            over(&h.history, &mut self.history);
            over(&h.history_days, &mut self.history_days);
        }
        let geo = watch.map_or(see.geo, |w| &w.geo[..]);
        if !geo.is_empty() {
            self.geo = geo.to_vec();
        }
        // A source given as a flag (log files or the journal) replaces the
        // file's other one.
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
            self.allow.extend(out.allow.iter().map(|net| (*net, AllowSource::Flag)));
        }
    }
}

/// The own thresholds: the defaults ([`Policy::own_defaults`]) with each
/// `rule-threshold` over them, the last one of a rule winning.
fn own_thresholds(given: &[(crate::parse::Rule, u32)]) -> [u32; crate::parse::Rule::ALL.len()] {
    let mut t = Policy::own_defaults();
    for (rule, n) in given {
        t[*rule as usize] = *n;
    }
    t
}

fn unquote(v: &str) -> &str {
    for q in ['"', '\''] {
        if let Some(inner) = v.strip_prefix(q).and_then(|r| r.strip_suffix(q)) {
            return inner;
        }
    }
    v
}

impl Config {
    /// Resolves the settings of a command: the config file, then the flags.
    pub fn load(
        config: Option<&Path>,
        scan: Option<&ScanArgs>,
        out: &OutputArgs,
        watch: Option<&WatchArgs>,
        see: SeeFlags<'_>,
    ) -> Result<Config, Error> {
        let mut raw = Raw::default();
        let file = match config {
            Some(p) => Some(p.to_path_buf()),
            None => Some(PathBuf::from(DEFAULT_CONFIG)).filter(|p| p.exists()),
        };
        if let Some(f) = &file {
            raw.read_file(f)?;
        }
        raw.apply_flags(scan, out, watch, see);

        let default_log = raw.logs.is_empty();
        let logs = if default_log { vec![crate::source::default_log()] } else { raw.logs.clone() };
        let asked = raw.journal || raw.journal_dir.is_some() || !raw.journal_files.is_empty();
        if asked && !default_log {
            return Err(Error::Config("--journal and --log exclude each other: read the journal or log files".into()));
        }
        // Debian 12, Fedora, Arch: sshd logs only to the journal. Whether
        // journalctl runs is found out where the journal is opened
        // (`Engine::ingest`); without it the default log is read after all.
        let auto = !asked && default_log && cfg!(target_os = "linux") && !logs[0].exists();
        let journal =
            (asked || auto).then(|| Journal { dir: raw.journal_dir.clone(), files: raw.journal_files.clone() });
        let allow_file = match &raw.allow_file {
            Some(p) => (p.clone(), true),
            None => (PathBuf::from(DEFAULT_ALLOW_FILE), false),
        };
        let allow = Allowlist::load(raw.allow.drain(..), &allow_file.0, allow_file.1)?;
        let policy = Policy {
            threshold: raw.threshold.unwrap_or(1),
            window: raw.window,
            expire: raw.expire,
            ban_accepted: raw.ban_accepted,
            ipv6_prefix: raw.ipv6_prefix.unwrap_or(64),
            repeat: crate::rules::Repeat::resolve(raw.expire, raw.expire_factor, raw.expire_max, raw.decay)
                .map_err(Error::Config)?,
            subnet: crate::rules::Subnet::resolve(raw.subnet_after, raw.subnet_v4, raw.subnet_v6, raw.ipv6_prefix)
                .map_err(Error::Config)?,
            rule_threshold: own_thresholds(&raw.rule_threshold),
        };
        let state = raw.state.clone().unwrap_or_else(crate::store::statefile::default_path);
        let history = crate::store::history::path_for(&state, raw.history.as_deref());
        let mut include = Includes {
            files: raw.include.clone(),
            keys: Vec::new(),
            unsigned: raw.include_unsigned,
            max_age: raw.include_max_age,
        };
        for k in &raw.include_key {
            include.keys.push(crate::include::load_key(k).map_err(|e| Error::Config(format!("include-key {e}")))?);
        }
        Ok(Config {
            include,
            host_silence: raw.host_silence,
            retention: Retention {
                forget: match raw.forget {
                    None => Some(DEFAULT_FORGET),
                    Some(0) => None,
                    Some(s) => Some(s),
                },
                max_records: raw.max_records.unwrap_or(DEFAULT_MAX_RECORDS),
            },
            logs,
            default_log,
            rotated: !raw.no_rotated,
            rules: raw.rules.unwrap_or_default(),
            policy,
            output: Output {
                out: raw.out.clone().unwrap_or_else(|| PathBuf::from(DEFAULT_OUT)),
                state,
                firewall: Firewall::from_names(&raw.fw, raw.out.as_deref().unwrap_or(Path::new(DEFAULT_OUT)))?,
                lock_timeout: Duration::from_secs(raw.lock_timeout.unwrap_or(10)),
                allow,
            },
            hooks: Hooks {
                on_ban: raw.on_ban.clone(),
                on_login: raw.on_login.clone(),
                timeout: Duration::from_secs(raw.hook_timeout.unwrap_or(30)),
                env: raw.hook_env.clone(),
            },
            syslog: raw.syslog,
            reconcile: Duration::from_secs(raw.reconcile.unwrap_or(600) as u64),
            file,
            allow_file,
            journal,
            journal_auto: auto,
            history,
            history_days: raw.history_days.unwrap_or(crate::store::history::DEFAULT_DAYS),
            geo: raw.geo.clone(),
            report: raw.report.clone().map(|p| (p, Duration::from_secs(raw.report_every.unwrap_or(300) as u64))),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::cli::parse_duration;

    #[test]
    fn durations() {
        assert_eq!(parse_duration("90"), Ok(90));
        assert_eq!(parse_duration("10m"), Ok(600));
        assert_eq!(parse_duration("7d"), Ok(604800));
        assert!(parse_duration("0s").is_err() && parse_duration("5y").is_err() && parse_duration("").is_err());
        assert!(parse_duration("m").is_err() && parse_duration("-5s").is_err());
        assert_eq!(parse_duration("36500d"), Ok(36500 * 86400));
        for long in ["9223372036854775807s", "9223372036854775807", "99999999999999999999d", "5300w", "36600d"] {
            let e = parse_duration(long).unwrap_err();
            assert!(e.contains("longer than 100 years"), "{long}: {e}");
        }
        assert_eq!(parse_seconds("30"), Ok(30));
        assert!(parse_seconds("18446744073709551615").unwrap_err().contains("100 years"));
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
        let c =
            Config::load(Some(&conf), Some(&ScanArgs::default()), &OutputArgs::default(), None, SeeFlags::default())
                .unwrap();
        assert_eq!((c.policy.threshold, c.policy.window), (3, Some(600)));
        assert_eq!(c.logs, [PathBuf::from("/a"), PathBuf::from("/b")]);
        assert!(c.output.allow.find("192.0.2.9".parse().unwrap()).is_some());
        let scan = ScanArgs { logs: vec!["/c".into()], threshold: Some(5), ..ScanArgs::default() };
        let c = Config::load(Some(&conf), Some(&scan), &OutputArgs::default(), None, SeeFlags::default()).unwrap();
        assert_eq!((c.policy.threshold, c.logs.clone()), (5, vec![PathBuf::from("/c")]));

        // The fleet's keys; a repeatable flag replaces the file's values.
        std::fs::write(&conf, "include = /f1\ninclude = /f2\ninclude-max-age = 1h\nhost-silence = 2h\n").unwrap();
        let c =
            Config::load(Some(&conf), Some(&ScanArgs::default()), &OutputArgs::default(), None, SeeFlags::default())
                .unwrap();
        assert_eq!(c.include.files, [PathBuf::from("/f1"), PathBuf::from("/f2")]);
        assert_eq!((c.include.max_age, c.host_silence, c.include.unsigned), (Some(3600), Some(7200), false));
        let mut scan = ScanArgs::default();
        scan.include.files = vec!["/f3".into()];
        let c = Config::load(Some(&conf), Some(&scan), &OutputArgs::default(), None, SeeFlags::default()).unwrap();
        assert_eq!(c.include.files, [PathBuf::from("/f3")]);

        std::fs::write(&conf, "threshold = 3\nbogus = 1\n").unwrap();
        let e =
            Config::load(Some(&conf), None, &OutputArgs::default(), None, SeeFlags::default()).unwrap_err().to_string();
        assert!(e.ends_with("badguys.conf:2: unknown setting \"bogus\""), "{e}");
        std::fs::write(&conf, "window = soon\n").unwrap();
        let e =
            Config::load(Some(&conf), None, &OutputArgs::default(), None, SeeFlags::default()).unwrap_err().to_string();
        assert!(e.contains("badguys.conf:1: window:"), "{e}");
    }

    #[test]
    fn repeat_and_subnet_keys_and_their_defaults() {
        use crate::rules::{Repeat, Subnet};
        let d = tempfile::tempdir().unwrap();
        let conf = d.path().join("badguys.conf");
        let load = |text: &str| {
            std::fs::write(&conf, text).unwrap();
            Config::load(Some(&conf), Some(&ScanArgs::default()), &OutputArgs::default(), None, SeeFlags::default())
        };
        let c = load("expire = 1h\nexpire-factor = 4\n").unwrap();
        assert_eq!(c.policy.repeat, Repeat { factor: 4, max: Some(30 * 86400), decay: Some(30 * 86400) });
        assert_eq!(c.policy.subnet, None);
        let c = load("expire = 60d\n").unwrap();
        assert_eq!(c.policy.repeat, Repeat { factor: 1, max: Some(60 * 86400), decay: Some(60 * 86400) });
        let c = load("expire = 1h\nexpire-max = 2d\ndecay = 7d\nsubnet-after = 5\nsubnet-v6 = 40\n").unwrap();
        assert_eq!(c.policy.repeat, Repeat { factor: 1, max: Some(2 * 86400), decay: Some(7 * 86400) });
        assert_eq!(c.policy.subnet, Some(Subnet { after: 5, v4: 24, v6: 40 }));
        for (bad, msg) in [
            ("expire-factor = 2\n", "need --expire"),
            ("expire = 2h\nexpire-max = 1h\n", "shorter than --expire"),
            ("subnet-after = 1\n", "subnet-after:"),
            ("subnet-after = 2\nsubnet-v4 = 7\n", "subnet-v4:"),
            ("subnet-after = 2\nsubnet-v6 = 31\n", "subnet-v6:"),
            ("subnet-v4 = 16\n", "need --subnet-after"),
            ("subnet-after = 2\nipv6-prefix = 48\n", "shorter than --ipv6-prefix"),
        ] {
            let e = load(bad).unwrap_err().to_string();
            assert!(e.contains(msg), "{bad}: {e}");
        }
    }
}
