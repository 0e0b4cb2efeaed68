//! The command line, as clap sees it, and the value parsers that type every
//! setting once: durations, seconds, addresses and networks, rule lists,
//! thresholds, hook commands, variable names. The config file's keys go
//! through the same functions ([`crate::config`]). Every setting is
//! optional here so that `config` can tell a flag from a config-file value
//! from a default; nothing but `config`, `commands` and `main` reads these
//! structs.

use std::path::PathBuf;

use clap::{Args, Parser, Subcommand};

use crate::addr::Net;
use crate::parse::{Rule, RuleSet};
use crate::stats::By;

const EXIT_CODES: &str = "\
Exit status:
  0  success
  1  unexpected internal error, or the system refused signals, file watching or the sandbox
  2  usage or configuration error
  3  input error (a log is missing, unreadable or not a regular file)
  4  output or firewall error (the blocklist or state cannot be written, or the reload failed)
  5  another badguys holds the lock (gave up after --lock-timeout)";

/// Turn sshd log lines into a firewall blocklist.
#[derive(Debug, Parser)]
#[command(name = "badguys", version = env!("BADGUYS_VERSION"), about, after_help = EXIT_CODES, propagate_version = true)]
pub struct Cli {
    /// More log output on stderr (-v: debug, -vv: trace).
    #[arg(short, long, action = clap::ArgAction::Count, global = true)]
    pub verbose: u8,
    /// Only warnings and errors on stderr.
    #[arg(short, long, global = true, conflicts_with = "verbose")]
    pub quiet: bool,
    /// Config file of `key = value` lines [default: /etc/badguys.conf, if it exists].
    #[arg(long, value_name = "PATH", global = true)]
    pub config: Option<PathBuf>,
    #[command(subcommand)]
    pub command: Command,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Read what is new in the sshd logs, update state and blocklist, reload the firewall.
    #[command(after_help = EXIT_CODES)]
    Sync(SyncArgs),
    /// Sync, then follow the logs and block new attackers within a second.
    #[command(after_help = EXIT_CODES)]
    Watch(WatchArgs),
    /// Ban an address or network by hand.
    #[command(after_help = EXIT_CODES)]
    Ban(BanArgs),
    /// Take an address or network off the list (it comes back only if it attacks again).
    #[command(after_help = EXIT_CODES)]
    Unban(UnbanArgs),
    /// List the banned addresses: first and last seen, hits by rule, source, expiry.
    List(ListArgs),
    /// Print the list of the rules and manual bans with a `# badguys serial=… generated=… hosts=N` header, for signing.
    Export(ExportArgs),
    /// Say why an address is or is not listed.
    Explain(ExplainArgs),
    /// Validate configuration, paths, state and the firewall table or sets.
    #[command(after_help = EXIT_CODES)]
    Check(CheckArgs),
    /// Load the blocklist as it is into the firewall (e.g. at boot).
    #[command(after_help = EXIT_CODES)]
    Reload(OutputArgs),
    /// List the rules, their names and example messages.
    Rules,
    /// Show what each line of a log does: the rule and address, or why nothing matched.
    Test(TestArgs),
    /// Summarise state and history: totals, rules, days, countries, networks, users, hosts, bans.
    Stats(StatsArgs),
    /// Write one self-contained HTML report with charts and a world map.
    #[command(after_help = EXIT_CODES)]
    Report(ReportArgs),
}

/// Where the list and state live and how the firewall is told.
#[derive(Debug, Args, Default, Clone)]
pub struct OutputArgs {
    /// The blocklist file [default: /etc/badguys].
    #[arg(long, value_name = "PATH")]
    pub out: Option<PathBuf>,
    /// The state file [default: /var/db/badguys/state on OpenBSD, /var/lib/badguys/state elsewhere].
    #[arg(long, value_name = "PATH")]
    pub state: Option<PathBuf>,
    /// Firewall to reload: pf, nftables or none [default: pf on OpenBSD, nftables elsewhere].
    #[arg(long, value_name = "KIND")]
    pub firewall: Option<String>,
    /// pf table name [default: badhosts].
    #[arg(long, value_name = "NAME")]
    pub table: Option<String>,
    /// nftables table, "FAMILY NAME" [default: "inet badguys"].
    #[arg(long, value_name = "FAMILY NAME")]
    pub nft_table: Option<String>,
    /// nftables interval set for IPv4 networks; hosts go to NAME_hosts [default: badguys4].
    #[arg(long, value_name = "NAME")]
    pub nft_set4: Option<String>,
    /// nftables interval set for IPv6 networks; hosts go to NAME_hosts [default: badguys6].
    #[arg(long, value_name = "NAME")]
    pub nft_set6: Option<String>,
    /// Seconds to wait for another badguys to release the lock [default: 10].
    #[arg(long, value_name = "SECONDS", value_parser = parse_seconds)]
    pub lock_timeout: Option<u64>,
    /// Never list this address or network (repeatable).
    #[arg(long = "allow", value_name = "ADDR|CIDR", value_parser = parse_net)]
    pub allow: Vec<Net>,
    /// File of addresses/networks never to list, one per line, # comments
    /// [default: /etc/badguys.allow, which may be missing].
    #[arg(long, value_name = "PATH")]
    pub allow_file: Option<PathBuf>,
}

/// What to read and how to judge it.
#[derive(Debug, Args, Default, Clone)]
pub struct ScanArgs {
    /// A log to read (repeatable; `-` is standard input). Default:
    /// /var/log/authlog on OpenBSD, /var/log/auth.log elsewhere.
    #[arg(long = "log", value_name = "PATH")]
    pub logs: Vec<PathBuf>,
    /// Read sshd's entries from the systemd journal instead of log files
    /// (chosen by itself on Linux when no --log is given and /var/log/auth.log does not exist).
    #[arg(long)]
    pub journal: bool,
    /// Read the journal files in DIR (as journalctl -D does); implies --journal.
    #[arg(long, value_name = "DIR")]
    pub journal_dir: Option<PathBuf>,
    /// Read this journal file (repeatable, as journalctl --file does); implies --journal.
    #[arg(long = "journal-file", value_name = "FILE")]
    pub journal_files: Vec<PathBuf>,
    /// Do not read the rotated siblings of each log (auth.log.1, authlog.0.gz, …).
    #[arg(long)]
    pub no_rotated: bool,
    /// Rules to apply: comma-separated names, `default`, or `all`
    /// [default: invalid-user,root-disconnect,kex-reset].
    #[arg(long, value_name = "LIST", value_parser = parse_rules)]
    pub rules: Option<RuleSet>,
    /// Also list addresses that logged in successfully.
    #[arg(long)]
    pub ban_accepted: bool,
    /// Attacks needed before an address is listed [default: 1].
    #[arg(long, value_name = "N", value_parser = parse_threshold)]
    pub threshold: Option<u32>,
    /// Count, record and list IPv6 attackers per network of this length
    /// (128 = per address) [default: 64].
    #[arg(long, value_name = "LEN", value_parser = parse_ipv6_prefix)]
    pub ipv6_prefix: Option<u8>,
    /// ... within this time (e.g. 10m, 1h; at most 100 years) [default: any time].
    #[arg(long, value_name = "DURATION", value_parser = parse_duration)]
    pub window: Option<i64>,
    /// Addresses not seen for this long leave the list (e.g. 7d) [default: never].
    #[arg(long, value_name = "DURATION", value_parser = parse_duration)]
    pub expire: Option<i64>,
    /// Repeat offenders: each ban by the rules lasts this many times the one
    /// before (the n-th: --expire × N^(n-1)); needs --expire; `unban` resets
    /// an address's count [default: 1].
    #[arg(long, value_name = "N", value_parser = parse_expire_factor)]
    pub expire_factor: Option<u32>,
    /// No ban by the rules lasts longer than this [default: 30d, or --expire if longer].
    #[arg(long, value_name = "DURATION", value_parser = parse_duration)]
    pub expire_max: Option<i64>,
    /// Each full period this long in which an address neither attacks nor is
    /// listed halves its ban count [default: --expire-max].
    #[arg(long, value_name = "DURATION", value_parser = parse_duration)]
    pub decay: Option<i64>,
    /// List a whole network once this many of its addresses are listed by the
    /// rules (at least 2; allowlisted and logged-in addresses stay reachable) [default: off].
    #[arg(long, value_name = "K", value_parser = parse_subnet_after)]
    pub subnet_after: Option<u32>,
    /// The IPv4 network size of --subnet-after, 8 to 31 [default: 24].
    #[arg(long, value_name = "LEN", value_parser = parse_subnet_v4)]
    pub subnet_v4: Option<u8>,
    /// The IPv6 network size of --subnet-after, 32 to 127, shorter than
    /// --ipv6-prefix [default: 48].
    #[arg(long, value_name = "LEN", value_parser = parse_subnet_v6)]
    pub subnet_v6: Option<u8>,
    /// Give RULE its own threshold (repeatable): its hits count apart, not
    /// toward --threshold, and an address is listed when that rule alone
    /// reaches N within --window [default: maxstartups=20, which never
    /// joins the other rules].
    #[arg(long = "rule-threshold", value_name = "RULE=N", value_parser = parse_rule_threshold)]
    pub rule_threshold: Vec<(Rule, u32)>,
    /// Drop the records of addresses that are not listed and were not seen
    /// for this long (`never` or 0: keep them) [default: 30d].
    #[arg(long, value_name = "DURATION", value_parser = parse_forget)]
    pub forget: Option<i64>,
    /// Keep at most N records: beyond it the least recently seen addresses
    /// that are not listed are dropped, with a warning [default: 1000000].
    #[arg(long, value_name = "N", value_parser = parse_max_records)]
    pub max_records: Option<usize>,
    #[command(flatten)]
    pub include: IncludeArgs,
}

/// Lists merged into the blocklist, and the fleet's per-host checks.
#[derive(Debug, Args, Default, Clone)]
pub struct IncludeArgs {
    /// Merge this list into the blocklist (repeatable): a fleet list (`badguys export`
    /// signed with `signify -S -e`), or with --include-unsigned a public one; plain or gzip.
    #[arg(long = "include", value_name = "FILE")]
    pub files: Vec<PathBuf>,
    /// A signify public key the included lists are verified with (repeatable, for key rollover).
    #[arg(long = "include-key", value_name = "PUBKEY")]
    pub keys: Vec<PathBuf>,
    /// Accept included lists without a signature (public lists fetched over HTTPS).
    #[arg(long)]
    pub include_unsigned: bool,
    /// Warn when an included list is older than this (e.g. 1h) [default: never].
    #[arg(long, value_name = "DURATION", value_parser = parse_duration)]
    pub include_max_age: Option<i64>,
    /// Warn about a host whose last event is older than this (e.g. 1h) [default: never].
    #[arg(long, value_name = "DURATION", value_parser = parse_duration)]
    pub host_silence: Option<i64>,
}

/// `badguys test`: reads a log, writes nothing.
#[derive(Debug, Args)]
pub struct TestArgs {
    /// Rules to try: comma-separated names, `default`, or `all`
    /// [default: the configured rules (`rules` in the config file), else the default rules].
    #[arg(long, value_name = "LIST", value_parser = parse_rules)]
    pub rules: Option<RuleSet>,
    /// Threshold the summary explains [default: the configured one].
    #[arg(long, value_name = "N", value_parser = parse_threshold)]
    pub threshold: Option<u32>,
    /// Own thresholds the summary explains, as sync takes them (repeatable)
    /// [default: the configured ones].
    #[arg(long = "rule-threshold", value_name = "RULE=N", value_parser = parse_rule_threshold)]
    pub rule_threshold: Vec<(Rule, u32)>,
    /// Print only the messages of sshd lines that no rule took, one per line
    /// (for `sort | uniq -c`).
    #[arg(long)]
    pub only_missed: bool,
    /// The log to read; `-` or nothing is standard input.
    #[arg(value_name = "FILE|-")]
    pub file: Option<PathBuf>,
}

#[derive(Debug, Args)]
pub struct SyncArgs {
    /// Show what would be added (with rules and hit counts); write and reload nothing.
    #[arg(long, short = 'n')]
    pub dry_run: bool,
    /// Print the resulting list on stdout.
    #[arg(long)]
    pub print: bool,
    /// Reload the firewall even when the list did not change.
    #[arg(long)]
    pub reload: bool,
    #[command(flatten)]
    pub scan: ScanArgs,
    #[command(flatten)]
    pub output: OutputArgs,
    #[command(flatten)]
    pub history: HistoryArgs,
}

#[derive(Debug, Args)]
pub struct WatchArgs {
    /// Run this program (no shell) with each batch of new bans as JSON lines on stdin.
    #[arg(long, value_name = "CMD", value_parser = parse_command)]
    pub on_ban: Option<Argv>,
    /// Run this program when an address that is or was listed logs in successfully.
    #[arg(long, value_name = "CMD", value_parser = parse_command)]
    pub on_login: Option<Argv>,
    /// Seconds a hook may run before it is killed [default: 30].
    #[arg(long, value_name = "SECONDS", value_parser = parse_seconds)]
    pub hook_timeout: Option<u64>,
    /// Pass this variable of badguys' environment to the hooks (repeatable; they get no others).
    #[arg(long, value_name = "NAME", value_parser = parse_env_name)]
    pub hook_env: Vec<String>,
    /// Log to syslog(3) (daemon facility) instead of stderr, as a detached daemon must.
    #[arg(long)]
    pub syslog: bool,
    /// How often the firewall is fully reconciled with state and file [default: 10m].
    #[arg(long, value_name = "DURATION", value_parser = parse_duration)]
    pub reconcile: Option<i64>,
    /// A geolocation database for the hooks' JSON and the report (.mmdb, repeatable)
    /// [default: every .mmdb in /var/db/dbip, /var/lib/GeoIP, /usr/share/GeoIP].
    #[arg(long = "geo", value_name = "FILE")]
    pub geo: Vec<PathBuf>,
    /// Rewrite this HTML report (atomically) every --report-every, for a web server to serve.
    #[arg(long, value_name = "FILE")]
    pub report: Option<PathBuf>,
    /// How often --report is rewritten; the page reloads itself as often [default: 5m].
    #[arg(long, value_name = "DURATION", value_parser = parse_duration)]
    pub report_every: Option<i64>,
    #[command(flatten)]
    pub scan: ScanArgs,
    #[command(flatten)]
    pub output: OutputArgs,
    #[command(flatten)]
    pub history: HistoryArgs,
}

#[derive(Debug, Args)]
pub struct BanArgs {
    /// The address or network.
    #[arg(value_name = "ADDR|CIDR")]
    pub target: String,
    /// Lift the ban after this long (e.g. 1h, 30d; at most 100 years) [default: never].
    #[arg(long = "for", value_name = "DURATION", value_parser = parse_duration)]
    pub duration: Option<i64>,
    /// Why, for `list` and `explain`.
    #[arg(long, value_name = "TEXT")]
    pub reason: Option<String>,
    /// Ban a network wider than an IPv4 /8 or an IPv6 /32 too.
    #[arg(long)]
    pub force: bool,
    #[command(flatten)]
    pub output: OutputArgs,
    #[command(flatten)]
    pub history: HistoryArgs,
}

#[derive(Debug, Args)]
pub struct UnbanArgs {
    /// The address or network.
    #[arg(value_name = "ADDR|CIDR")]
    pub target: String,
    #[command(flatten)]
    pub output: OutputArgs,
    #[command(flatten)]
    pub history: HistoryArgs,
}

#[derive(Debug, Args)]
pub struct ListArgs {
    /// One JSON object per line instead of a table.
    #[arg(long)]
    pub json: bool,
    /// Also list addresses seen but not banned.
    #[arg(long)]
    pub all: bool,
    /// The hosts of the logs (a collector's fleet file): events, last seen, addresses reported.
    #[arg(long)]
    pub by_host: bool,
    #[command(flatten)]
    pub output: OutputArgs,
}

#[derive(Debug, Args)]
pub struct ExportArgs {
    /// Only addresses the rules listed from the lines of at least N hosts (a compromised
    /// host cannot list an address alone).
    #[arg(long, value_name = "N", value_parser = clap::value_parser!(u32).range(1..=16))]
    pub min_hosts: Option<u32>,
    #[command(flatten)]
    pub output: OutputArgs,
}

#[derive(Debug, Args)]
pub struct ExplainArgs {
    /// The address.
    #[arg(value_name = "ADDR")]
    pub addr: String,
    #[command(flatten)]
    pub scan: ScanArgs,
    #[command(flatten)]
    pub output: OutputArgs,
}

#[derive(Debug, Args)]
pub struct CheckArgs {
    #[command(flatten)]
    pub scan: ScanArgs,
    #[command(flatten)]
    pub output: OutputArgs,
}

/// Where `stats` and `report` read from, and how much they show.
#[derive(Debug, Args, Default, Clone)]
pub struct ViewArgs {
    /// A geolocation database (.mmdb, repeatable) [default: every .mmdb in
    /// /var/db/dbip, /var/lib/GeoIP, /usr/share/GeoIP].
    #[arg(long = "geo", value_name = "FILE")]
    pub geo: Vec<PathBuf>,
    #[command(flatten)]
    pub history: HistoryArgs,
    /// Count only what happened in this last stretch (e.g. 24h, 30d) [default: everything].
    #[arg(long, value_name = "DURATION", value_parser = parse_duration)]
    pub since: Option<i64>,
    /// Rows per table [default: 10].
    #[arg(long, value_name = "N")]
    pub top: Option<usize>,
}

#[derive(Debug, Args)]
pub struct StatsArgs {
    /// One JSON object instead of text (see badguys(8) for its fields).
    #[arg(long)]
    pub json: bool,
    /// The Prometheus text format, for node_exporter's textfile collector.
    #[arg(long, conflicts_with = "json")]
    pub prometheus: bool,
    /// Timeline: the last 14 days, every month, or every year.
    #[arg(long, value_name = "day|month|year", default_value = "day", value_parser = clap::value_parser!(By))]
    pub by: By,
    #[command(flatten)]
    pub view: ViewArgs,
    #[command(flatten)]
    pub output: OutputArgs,
}

#[derive(Debug, Args)]
pub struct ReportArgs {
    /// The HTML file to write (atomically) [default: badguys-report.html].
    #[arg(short = 'o', long = "output", value_name = "FILE")]
    pub file: Option<PathBuf>,
    /// Make the page reload itself this often (e.g. 5m), for a report served and rewritten.
    #[arg(long, value_name = "DURATION", value_parser = parse_duration)]
    pub refresh: Option<i64>,
    #[command(flatten)]
    pub view: ViewArgs,
    #[command(flatten)]
    pub output: OutputArgs,
}

/// The history database's flags: sync, watch, ban and unban write it;
/// stats and report read it.
#[derive(Debug, Args, Default, Clone)]
pub struct HistoryArgs {
    /// The history database; `none` switches it off [default: history.sqlite beside the state file].
    #[arg(long, value_name = "PATH")]
    pub history: Option<PathBuf>,
    /// Days of history kept [default: 400].
    #[arg(long, value_name = "DAYS", value_parser = parse_days)]
    pub history_days: Option<u32>,
}

/// A command split into words ([`crate::hooks::split_command`]): one
/// value, however many words.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Argv(pub Vec<String>);

/// The longest duration any setting takes: 100 years. Longer is a typo or
/// an attempt to overflow the clock (`now + d` must never wrap).
pub const MAX_DURATION: i64 = 100 * 36525 * 864;

/// `90`, `90s`, `10m`, `2h`, `7d`, `2w` to seconds, from 1 s up to
/// [`MAX_DURATION`]. The one parser of durations: clap's value parser for
/// the flags and the config file's keys both call it.
pub fn parse_duration(v: &str) -> Result<i64, String> {
    let v = v.trim();
    let digits = v.bytes().take_while(u8::is_ascii_digit).count();
    let bad = || format!("{v:?} is not a duration such as 90s, 10m, 2h, 7d");
    let unit = match &v[digits..] {
        "" | "s" => 1,
        "m" => 60,
        "h" => 3600,
        "d" => 86400,
        "w" => 7 * 86400,
        _ => return Err(bad()),
    };
    if digits == 0 {
        return Err(bad());
    }
    let too_long = || format!("{v:?} is longer than 100 years");
    // More digits than an i64 holds is too long too, not "not a duration".
    let n: i64 = v[..digits].parse().map_err(|_| too_long())?;
    match n.checked_mul(unit) {
        Some(0) => Err(format!("{v:?} is not a positive duration")),
        Some(s) if s <= MAX_DURATION => Ok(s),
        _ => Err(too_long()),
    }
}

/// A number of seconds (`--lock-timeout`, `--hook-timeout`), up to
/// [`MAX_DURATION`].
pub fn parse_seconds(v: &str) -> Result<u64, String> {
    let n = v.parse::<u64>().map_err(|_| format!("{v:?} is not a number of seconds"))?;
    if n > MAX_DURATION as u64 {
        return Err(format!("{v:?} is longer than 100 years"));
    }
    Ok(n)
}

/// An address or network (`192.0.2.7`, `198.51.100.0/24`, `2001:db8::/32`).
/// A number of days, 1 to 36,500 (`--history-days`).
pub fn parse_days(v: &str) -> Result<u32, String> {
    match v.parse::<u32>() {
        Ok(n) if (1..=36_500).contains(&n) => Ok(n),
        _ => Err(format!("{v:?}: expected a number of days from 1 to 36500")),
    }
}

pub fn parse_net(v: &str) -> Result<Net, String> {
    v.parse::<Net>().map_err(|e| format!("{v:?}: {e}"))
}

/// `invalid-user,kex-reset`, `default`, `all`.
pub fn parse_rules(v: &str) -> Result<RuleSet, String> {
    v.parse().map_err(|e: crate::parse::UnknownRule| e.to_string())
}

/// Attacks before an address is listed: 1 up to [`crate::state::RECENT_MAX`].
pub fn parse_threshold(v: &str) -> Result<u32, String> {
    let n = v.parse::<u64>().map_err(|_| format!("{v:?} is not a number of attacks"))?;
    if n == 0 || n > crate::state::RECENT_MAX as u64 {
        return Err(format!("{n} is not between 1 and {}", crate::state::RECENT_MAX));
    }
    Ok(n as u32)
}

/// `--rule-threshold RULE=N`: a rule name and a threshold as
/// [`parse_threshold`] takes it.
pub fn parse_rule_threshold(v: &str) -> Result<(Rule, u32), String> {
    let (name, n) = v.split_once('=').ok_or_else(|| format!("{v:?} is not RULE=N (e.g. maxstartups=20)"))?;
    let rule = name.trim().parse::<Rule>().map_err(|e| e.to_string())?;
    Ok((rule, parse_threshold(n.trim())?))
}

/// `--forget`: a duration, or `never` (also 0) for never, which is 0.
pub fn parse_forget(v: &str) -> Result<i64, String> {
    match v.trim() {
        "never" | "0" => Ok(0),
        d => parse_duration(d),
    }
}

/// `--max-records`: 1 up to 100,000,000.
pub fn parse_max_records(v: &str) -> Result<usize, String> {
    match v.replace('_', "").parse::<usize>() {
        Ok(n) if (1..=100_000_000).contains(&n) => Ok(n),
        _ => Err(format!("{v:?} is not a number of records from 1 to 100000000")),
    }
}

/// `--ipv6-prefix`: 32 to 128 (a network wider than /32 is never listed).
pub fn parse_ipv6_prefix(v: &str) -> Result<u8, String> {
    match v.parse::<u8>() {
        Ok(n) if (32..=128).contains(&n) => Ok(n),
        _ => Err(format!("{v:?} is not a prefix length between 32 and 128")),
    }
}

/// `--expire-factor`: 1 (every ban lasts --expire) to 1000.
pub fn parse_expire_factor(v: &str) -> Result<u32, String> {
    match v.parse::<u32>() {
        Ok(n) if (1..=1000).contains(&n) => Ok(n),
        _ => Err(format!("{v:?} is not a whole factor between 1 and 1000")),
    }
}

/// `--subnet-after`: 2 to 65536 listed members (1 would list a network
/// for a single attacker).
pub fn parse_subnet_after(v: &str) -> Result<u32, String> {
    match v.parse::<u32>() {
        Ok(n) if (2..=65536).contains(&n) => Ok(n),
        _ => Err(format!("{v:?} is not a number of addresses between 2 and 65536")),
    }
}

/// `--subnet-v4`: never wider than the /8 that may be blocked without `--force`.
pub fn parse_subnet_v4(v: &str) -> Result<u8, String> {
    let (lo, hi) = crate::rules::subnet::V4_RANGE;
    match v.parse::<u8>() {
        Ok(n) if (lo..=hi).contains(&n) => Ok(n),
        _ => Err(format!("{v:?} is not an IPv4 prefix length between {lo} and {hi}")),
    }
}

/// `--subnet-v6`: never wider than the /32 that may be blocked without `--force`.
pub fn parse_subnet_v6(v: &str) -> Result<u8, String> {
    let (lo, hi) = crate::rules::subnet::V6_RANGE;
    match v.parse::<u8>() {
        Ok(n) if (lo..=hi).contains(&n) => Ok(n),
        _ => Err(format!("{v:?} is not an IPv6 prefix length between {lo} and {hi}")),
    }
}

/// A hook command line, split into words without a shell.
pub fn parse_command(v: &str) -> Result<Argv, String> {
    crate::hooks::split_command(v).map(Argv)
}

/// The name of an environment variable (letters, digits and `_`).
pub fn parse_env_name(v: &str) -> Result<String, String> {
    if crate::child::valid_env_name(v) {
        Ok(v.to_string())
    } else {
        Err(format!("{v:?} is not a variable name (letters, digits and _)"))
    }
}

/// `yes`/`no` (also `true`/`false`, `on`/`off`, `1`/`0`): the config file's
/// switches (flags are switches by being there).
pub fn parse_yes(v: &str) -> Result<bool, String> {
    match v {
        "yes" | "true" | "on" | "1" => Ok(true),
        "no" | "false" | "off" | "0" => Ok(false),
        _ => Err(format!("{v:?} is not yes or no")),
    }
}
