//! The command line, as clap sees it. [`crate::config`] turns it into a
//! [`crate::config::Config`]; nothing else reads these structs.

use std::path::PathBuf;

use clap::{Args, Parser, Subcommand};

const EXIT_CODES: &str = "\
Exit status:
  0  success
  1  unexpected internal error
  2  usage or configuration error
  3  input error (a log is missing, unreadable or not a regular file)
  4  output or firewall error (the blocklist cannot be written, or the reload failed)
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
    #[command(subcommand)]
    pub command: Command,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Read sshd logs, merge attackers into the blocklist, reload the firewall.
    #[command(after_help = EXIT_CODES)]
    Sync(SyncArgs),
    /// Load the blocklist as it is into the firewall (e.g. at boot).
    #[command(after_help = EXIT_CODES)]
    Reload(OutputArgs),
    /// List the rules, their names and example messages.
    Rules,
}

#[derive(Debug, Args)]
pub struct SyncArgs {
    /// A log to read (repeatable; `-` is standard input). Default:
    /// /var/log/authlog on OpenBSD, /var/log/auth.log elsewhere.
    #[arg(long = "log", value_name = "PATH")]
    pub logs: Vec<PathBuf>,
    /// Do not read the rotated siblings of each log (auth.log.1, authlog.0.gz, …).
    #[arg(long)]
    pub no_rotated: bool,
    /// Rules to apply: comma-separated names, `default`, or `all`
    /// [default: invalid-user,root-disconnect,kex-reset].
    #[arg(long, value_name = "LIST")]
    pub rules: Option<String>,
    /// Never list this address or network (repeatable).
    #[arg(long = "allow", value_name = "ADDR|CIDR")]
    pub allow: Vec<String>,
    /// File of addresses/networks never to list, one per line, # comments
    /// [default: /etc/badguys.allow, which may be missing].
    #[arg(long, value_name = "PATH")]
    pub allow_file: Option<PathBuf>,
    /// Also list addresses that logged in successfully.
    #[arg(long)]
    pub ban_accepted: bool,
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
    pub output: OutputArgs,
}

#[derive(Debug, Args)]
pub struct OutputArgs {
    /// The blocklist file.
    #[arg(long, value_name = "PATH", default_value = "/etc/badguys")]
    pub out: PathBuf,
    /// Firewall to reload: pf, nftables or none [default: pf on OpenBSD, nftables elsewhere].
    #[arg(long, value_name = "KIND")]
    pub firewall: Option<String>,
    /// pf table name.
    #[arg(long, value_name = "NAME", default_value = "badhosts")]
    pub table: String,
    /// nftables table: "FAMILY NAME".
    #[arg(long, value_name = "FAMILY NAME", default_value = "inet badguys")]
    pub nft_table: String,
    /// nftables set for IPv4.
    #[arg(long, value_name = "NAME", default_value = "badguys4")]
    pub nft_set4: String,
    /// nftables set for IPv6.
    #[arg(long, value_name = "NAME", default_value = "badguys6")]
    pub nft_set6: String,
    /// Seconds to wait for another badguys to release the lock.
    #[arg(long, value_name = "SECONDS", default_value_t = 10)]
    pub lock_timeout: u64,
}
