//! The command line, as clap sees it. Every setting is optional here so that
//! [`crate::config`] can tell a flag from a config-file value from a
//! default; nothing but `config` and `main` reads these structs.

use std::path::PathBuf;

use clap::{Args, Parser, Subcommand};

const EXIT_CODES: &str = "\
Exit status:
  0  success
  1  unexpected internal error
  2  usage or configuration error
  3  input error (a log is missing, unreadable or not a regular file)
  4  output or firewall error (the blocklist or state cannot be written, or the reload failed)
  5  another badguys holds the lock (gave up after --lock-timeout)";

/// Turn sshd log lines into a firewall blocklist.
#[derive(Debug, Parser)]
#[command(name = "badguys", version, about, after_help = EXIT_CODES, propagate_version = true)]
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
    #[arg(long, value_name = "SECONDS")]
    pub lock_timeout: Option<u64>,
    /// Never list this address or network (repeatable).
    #[arg(long = "allow", value_name = "ADDR|CIDR")]
    pub allow: Vec<String>,
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
    #[arg(long, value_name = "LIST")]
    pub rules: Option<String>,
    /// Also list addresses that logged in successfully.
    #[arg(long)]
    pub ban_accepted: bool,
    /// Attacks needed before an address is listed [default: 1].
    #[arg(long, value_name = "N")]
    pub threshold: Option<u32>,
    /// ... within this time (e.g. 10m, 1h) [default: any time].
    #[arg(long, value_name = "DURATION")]
    pub window: Option<String>,
    /// Addresses not seen for this long leave the list (e.g. 7d) [default: never].
    #[arg(long, value_name = "DURATION")]
    pub expire: Option<String>,
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
}

#[derive(Debug, Args)]
pub struct WatchArgs {
    /// Run this program (no shell) with each batch of new bans as JSON lines on stdin.
    #[arg(long, value_name = "CMD")]
    pub on_ban: Option<String>,
    /// Run this program when an address that is or was listed logs in successfully.
    #[arg(long, value_name = "CMD")]
    pub on_login: Option<String>,
    /// Seconds a hook may run before it is killed [default: 30].
    #[arg(long, value_name = "SECONDS")]
    pub hook_timeout: Option<u64>,
    /// Log to syslog(3) (daemon facility) instead of stderr, as a detached daemon must.
    #[arg(long)]
    pub syslog: bool,
    /// How often the firewall is fully reconciled with state and file [default: 10m].
    #[arg(long, value_name = "DURATION")]
    pub reconcile: Option<String>,
    #[command(flatten)]
    pub scan: ScanArgs,
    #[command(flatten)]
    pub output: OutputArgs,
}

#[derive(Debug, Args)]
pub struct BanArgs {
    /// The address or network.
    #[arg(value_name = "ADDR|CIDR")]
    pub target: String,
    /// Lift the ban after this long (e.g. 1h, 30d) [default: never].
    #[arg(long = "for", value_name = "DURATION")]
    pub duration: Option<String>,
    /// Why, for `list` and `explain`.
    #[arg(long, value_name = "TEXT")]
    pub reason: Option<String>,
    #[command(flatten)]
    pub output: OutputArgs,
}

#[derive(Debug, Args)]
pub struct UnbanArgs {
    /// The address or network.
    #[arg(value_name = "ADDR|CIDR")]
    pub target: String,
    #[command(flatten)]
    pub output: OutputArgs,
}

#[derive(Debug, Args)]
pub struct ListArgs {
    /// One JSON object per line instead of a table.
    #[arg(long)]
    pub json: bool,
    /// Also list addresses seen but not banned.
    #[arg(long)]
    pub all: bool,
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
