//! genlog: a deterministic generator of realistic sshd / auth.log text, for the
//! throughput bench (`scripts/bench`) and for trying the parser on volume.
//!
//! ```text
//! cargo run --release --example genlog -- --size 100M --seed 1 --style classic \
//!     --attackers 50000 --out target/bench/auth.log
//! ```
//!
//! The same options give the same bytes on every machine: the only randomness is
//! a splitmix64 generator seeded from `--seed`; nothing reads the clock or the
//! environment. Standard library only (examples get no dependencies of their own).
//!
//! What a file holds, with the syslog styles:
//! - about 45% of lines from other programs: `CRON[pid]: pam_unix(cron:session)`,
//!   `systemd-logind`, `sudo` (one admin greps the log for `Invalid user`),
//!   `postfix/smtpd` and `kernel: [UFW BLOCK] ... SRC=addr`, the last two with
//!   addresses in them;
//! - about 20% benign sshd lines: logins by publickey or password with their pam
//!   session lines and clean disconnects, the odd mistyped password, probes that
//!   close before auth (`Connection closed by ADDR port N [preauth]`);
//! - about 35% lines from attackers, a few percent of each rule the seed shell
//!   script knew (`Invalid user`, `Disconnected from authenticating user root`,
//!   the `kex_exchange_identification` pairs) and of the ones it did not
//!   (`Failed password for invalid user`, `banner exchange`, `Unable to
//!   negotiate`, `maximum authentication attempts exceeded`, rsyslog's
//!   `message repeated N times: [ ... ]` and BSD syslogd's untagged `last message
//!   repeated N times`, the OpenSSH 9.8 listener's `drop connection #N ... penalty:`).
//!
//! About 30% of connections log as `sshd-session` (OpenSSH 9.8+), the rest as
//! `sshd`. Every connection has its own pid, drawn from one rising counter shared
//! with cron and postfix. Up to eight connections are open at once and their
//! lines interleave, so a `kex_exchange_identification` error is usually not
//! directly followed by its `Connection reset by` line.
//!
//! `--attackers N` addresses are drawn from the public IPv4 space (private,
//! shared, loopback, link-local, documentation, benchmark, multicast and reserved
//! ranges excluded) and, for about 15% of them, from 2000::/3 (without the
//! documentation, 6to4 and IETF-protocol blocks). New attackers keep arriving
//! over the whole file, slightly ahead of schedule, so all N show up in a file
//! big enough to hold them; a repeat visit picks an earlier attacker with a
//! Zipf-like (log-uniform) skew, so a few are very noisy and most are seen once
//! or twice. Each attacker prefers one kind of attack. Benign users connect from
//! private and from a few public addresses. The addresses are only text.
//!
//! User names come from a list of names scanners try, plus random ones, the
//! empty name (`Invalid user  from`), and, rarely, names carrying a spoofed
//! ` from ADDR` (sshd logs the name as the client sent it, spaces included); the
//! real address is always the one just before ` port N`.
//!
//! `--truth FILE` writes, for each attacker, how many attack events the lines
//! written for it hold, by the project's rules with every rule on: one per
//! evidence line, N for a repeat line (`message repeated N times`, `PAM N
//! more authentication failures`), one per kex error and reset pair. Lines
//! that only echo an attack already counted are not evidence (`Disconnecting
//! … Too many authentication failures` after max-auth's own line, `PAM
//! service(sshd) ignoring max retries`, `check pass; user unknown`, the
//! VERBOSE `Connection from`), nor is a connection closed before its
//! identification (`kex_exchange_identification: Connection closed by remote
//! host`, then `Connection closed by ADDR port N`): what a load balancer's
//! health check writes too, which no rule counts. Only lines actually written
//! count (the file ends in the middle of sessions).
//!
//! `--style bare` writes what `sshd -E FILE` writes: no header, sshd lines only
//! (no pam, no other programs, no syslog repeat lines), and `\r\n` line ends, as
//! OpenSSH's log.c does for its stderr and `-E` output.

use std::collections::HashSet;
use std::fmt::Write as _;
use std::fs::File;
use std::io::{self, Write};
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};
use std::process::ExitCode;

const USAGE: &str = "\
usage: genlog [--size N[K|M|G]] [--seed N] [--style classic|rfc3339|mixed|bare]
              [--attackers N] [--start YYYY-MM-DD[THH:MM:SS]] [--out FILE]
              [--families] [--truth FILE]

  --size       bytes to write, K/M/G = 2^10/2^20/2^30 (default 10M); the file
               ends with the first line that reaches it
  --seed       generator seed (default 1); same options => same bytes
  --style      header style (default classic):
                 classic  Oct  1 14:42:51 web1 sshd[11294]: ...
                 rfc3339  2024-10-01T14:42:51.123456+00:00 web1 sshd[11294]: ...
                 mixed    either, chosen per line
                 bare     no header, sshd lines only, CRLF (as sshd -E writes)
  --attackers  distinct attacking addresses (default 50000)
  --start      UTC time of the first line (default 2024-09-30T22:00:00)
  --out        output file (default stdout)
  --families   also the opt-in rule families' attacks (keyboard-interactive,
               PAM, not allowed, root refused, timeouts, protocol errors,
               tcp_wrappers, past MaxStartups) and users' refused keys
               before their login; without it the bytes stay as before
  --truth      also write FILE: `ADDR N` for each attacking address, N the
               attack events its lines written to the log hold (see below)
";

fn main() -> ExitCode {
    let opts = match Opts::parse(std::env::args().skip(1)) {
        Ok(Some(o)) => o,
        Ok(None) => {
            print!("{USAGE}");
            return ExitCode::SUCCESS;
        }
        Err(e) => {
            eprintln!("genlog: {e} (see --help)");
            return ExitCode::from(2);
        }
    };
    let out: Box<dyn Write> = match &opts.out {
        Some(path) => match File::create(path) {
            Ok(f) => Box::new(f),
            Err(e) => {
                eprintln!("genlog: {path}: {e}");
                return ExitCode::FAILURE;
            }
        },
        None => Box::new(io::stdout().lock()),
    };
    match Gen::new(&opts, out).run() {
        Ok(()) => ExitCode::SUCCESS,
        // `genlog | head` is a normal way to look at the output.
        Err(e) if e.kind() == io::ErrorKind::BrokenPipe => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("genlog: write: {e}");
            ExitCode::FAILURE
        }
    }
}

// ---------------------------------------------------------------- options

#[derive(Clone, Copy, PartialEq, Eq)]
enum Style {
    Classic,
    Rfc3339,
    Mixed,
    Bare,
}

struct Opts {
    size: u64,
    seed: u64,
    style: Style,
    attackers: usize,
    /// Unix seconds of the first line.
    start: i64,
    out: Option<String>,
    families: bool,
    truth: Option<String>,
}

impl Opts {
    /// `Ok(None)` means `--help`.
    fn parse(mut args: impl Iterator<Item = String>) -> Result<Option<Opts>, String> {
        let mut o = Opts {
            size: 10 << 20,
            seed: 1,
            style: Style::Classic,
            attackers: 50_000,
            start: days_from_civil(2024, 9, 30) * 86_400 + 22 * 3600,
            out: None,
            families: false,
            truth: None,
        };
        while let Some(arg) = args.next() {
            if arg == "-h" || arg == "--help" {
                return Ok(None);
            }
            let (name, inline) = match arg.split_once('=') {
                Some((n, v)) => (n.to_string(), Some(v.to_string())),
                None => (arg.clone(), None),
            };
            let mut value = || inline.clone().or_else(|| args.next()).ok_or(format!("{name} needs a value"));
            match name.as_str() {
                "--size" => o.size = parse_size(&value()?)?,
                "--seed" => o.seed = value()?.parse().map_err(|_| "--seed: not a number")?,
                "--attackers" => o.attackers = value()?.parse().map_err(|_| "--attackers: not a number")?,
                "--out" => o.out = Some(value()?),
                "--families" => o.families = true,
                "--truth" => o.truth = Some(value()?),
                "--start" => o.start = parse_start(&value()?)?,
                "--style" => {
                    o.style = match value()?.as_str() {
                        "classic" => Style::Classic,
                        "rfc3339" => Style::Rfc3339,
                        "mixed" => Style::Mixed,
                        "bare" => Style::Bare,
                        s => return Err(format!("--style: unknown style {s:?}")),
                    }
                }
                _ => return Err(format!("unknown argument {arg:?}")),
            }
        }
        Ok(Some(o))
    }
}

fn parse_size(s: &str) -> Result<u64, String> {
    let (digits, shift) = match s.as_bytes().last().map(u8::to_ascii_uppercase) {
        Some(b'K') => (&s[..s.len() - 1], 10),
        Some(b'M') => (&s[..s.len() - 1], 20),
        Some(b'G') => (&s[..s.len() - 1], 30),
        _ => (s, 0),
    };
    let n: u64 = digits.parse().map_err(|_| format!("--size: bad size {s:?}"))?;
    n.checked_mul(1 << shift).ok_or(format!("--size: too big {s:?}"))
}

fn parse_start(s: &str) -> Result<i64, String> {
    let bad = || format!("--start: expected YYYY-MM-DD or YYYY-MM-DDTHH:MM:SS, got {s:?}");
    let (date, time) = s.split_once('T').unwrap_or((s, "00:00:00"));
    let d: Vec<i64> = date.split('-').map(str::parse).collect::<Result<_, _>>().map_err(|_| bad())?;
    let t: Vec<i64> = time.split(':').map(str::parse).collect::<Result<_, _>>().map_err(|_| bad())?;
    match (d.as_slice(), t.as_slice()) {
        ([y, m @ 1..=12, day @ 1..=31], [hh @ 0..=23, mm @ 0..=59, ss @ 0..=59]) => {
            Ok(days_from_civil(*y, *m as u32, *day as u32) * 86_400 + hh * 3600 + mm * 60 + ss)
        }
        _ => Err(bad()),
    }
}

// ---------------------------------------------------------------- randomness

/// splitmix64: tiny, fast, and good enough for text that only has to look random.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        mix(self.0)
    }
    /// Uniform in `0..n` (multiply-shift; the bias is far below what matters here).
    fn below(&mut self, n: u64) -> u64 {
        ((u128::from(self.next()) * u128::from(n)) >> 64) as u64
    }
    fn between(&mut self, lo: u64, hi: u64) -> u64 {
        lo + self.below(hi - lo + 1)
    }
    fn unit(&mut self) -> f64 {
        (self.next() >> 11) as f64 / (1u64 << 53) as f64
    }
    fn chance(&mut self, p: f64) -> bool {
        self.unit() < p
    }
    fn pick<'a, T>(&mut self, xs: &'a [T]) -> &'a T {
        &xs[self.below(xs.len() as u64) as usize]
    }
    fn weighted<T: Copy>(&mut self, table: &[(T, u32)]) -> T {
        let total: u32 = table.iter().map(|e| e.1).sum();
        let mut r = self.below(u64::from(total)) as u32;
        for &(k, w) in table {
            if r < w {
                return k;
            }
            r -= w;
        }
        unreachable!("weighted() on an empty table")
    }
}

/// The splitmix64 finalizer, also used to hash a seed with an index.
fn mix(mut z: u64) -> u64 {
    z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    z ^ (z >> 31)
}

// ---------------------------------------------------------------- addresses

/// Ranges that never appear as a source on the internet (RFC 6890 and friends).
const RESERVED_V4: [(u32, u32); 15] = [
    (0x0000_0000, 8),  // 0.0.0.0/8 "this network"
    (0x0A00_0000, 8),  // 10.0.0.0/8 private
    (0x6440_0000, 10), // 100.64.0.0/10 shared (CGN)
    (0x7F00_0000, 8),  // 127.0.0.0/8 loopback
    (0xA9FE_0000, 16), // 169.254.0.0/16 link local
    (0xAC10_0000, 12), // 172.16.0.0/12 private
    (0xC000_0000, 24), // 192.0.0.0/24 IETF protocol assignments
    (0xC000_0200, 24), // 192.0.2.0/24 TEST-NET-1
    (0xC058_6300, 24), // 192.88.99.0/24 6to4 relay anycast
    (0xC0A8_0000, 16), // 192.168.0.0/16 private
    (0xC612_0000, 15), // 198.18.0.0/15 benchmarking
    (0xC633_6400, 24), // 198.51.100.0/24 TEST-NET-2
    (0xCB00_7100, 24), // 203.0.113.0/24 TEST-NET-3
    (0xE000_0000, 4),  // 224.0.0.0/4 multicast
    (0xF000_0000, 4),  // 240.0.0.0/4 reserved and broadcast
];

fn public_v4(rng: &mut Rng) -> Ipv4Addr {
    loop {
        let a = rng.next() as u32;
        // .0 and .255 are valid hosts inside bigger blocks but look odd in a log.
        let last = a & 0xff;
        if last != 0 && last != 255 && !RESERVED_V4.iter().any(|&(net, len)| (a ^ net) >> (32 - len) == 0) {
            return Ipv4Addr::from(a);
        }
    }
}

/// An address in 2000::/3 shaped like the ones seen in logs: a first hextet from
/// the blocks the RIRs hand out, then either a server-style `::N` interface id
/// or a random (SLAAC privacy) one.
fn public_v6(rng: &mut Rng) -> Ipv6Addr {
    let first: u16 = match rng.below(10) {
        0..=1 => 0x2001,
        2..=3 => 0x2400 + rng.below(0x10) as u16,
        4..=5 => 0x2600 + rng.below(0x10) as u16,
        6 => 0x2800 + rng.below(4) as u16,
        _ => 0x2a00 + rng.below(0x15) as u16,
    };
    let mut h = [first, 0, 0, 0, 0, 0, 0, 0];
    // 2001::/23 is IETF protocol space (Teredo, ORCHID...), 2001:db8::/32 documentation.
    h[1] = if first == 0x2001 { 0x0200 + rng.below(0x1000) as u16 } else { rng.below(0x1000) as u16 };
    if h[1] == 0x0db8 {
        h[1] = 0x0db9;
    }
    h[2] = rng.next() as u16;
    h[3] = if rng.chance(0.5) { rng.below(0x100) as u16 } else { rng.next() as u16 };
    match rng.below(10) {
        0..=3 => h[7] = rng.between(1, 0xff) as u16,
        4..=5 => {
            h[6] = rng.between(1, 0xf) as u16;
            h[7] = rng.between(1, 0xfff) as u16;
        }
        _ => {
            for x in &mut h[4..] {
                *x = rng.next() as u16;
            }
        }
    }
    Ipv6Addr::from(h)
}

// ---------------------------------------------------------------- fixed text

const MONTHS: [&[u8; 3]; 12] =
    [b"Jan", b"Feb", b"Mar", b"Apr", b"May", b"Jun", b"Jul", b"Aug", b"Sep", b"Oct", b"Nov", b"Dec"];
const HOST: &[u8] = b"web1";
/// The server's own addresses, as sshd's VERBOSE `Connection from` lines show them.
const LOCAL_V4: &str = "10.0.0.5";
const LOCAL_V6: &str = "2001:db8:5::22";

/// Names scanners try (as seen in honeypot and auth.log lists), separated by white space.
const NAMES: &str = "\
    admin test user oracle ubuntu postgres git pi support guest ftpuser deploy debian centos \
    ec2-user hadoop mysql nagios tomcat jenkins minecraft steam ts3 teamspeak ubnt \
    administrator dev developer docker elastic es ftp test1 test2 testuser user1 user2 \
    vagrant zabbix odoo sol solana validator node nexus gitlab gitlab-runner backup sftp web \
    www demo student sysadmin operator usuario alex john david michael dell huawei \
    telecomadmin super default service hdfs spark kafka redis mongodb ansible azureuser \
    cisco esuser runner steamcmd mc bitcoin trader ftpadmin webmaster postmaster info sales \
    admin1 123456 1234 0 ali ftp_user pgsql openvpn vpn share apache nginx ubuntu1 ts \
    ftptest hive odoo17 dolphinscheduler orangepi vyos sonar wang zhang daniel kali sshd";
/// User names with a spoofed address in them; sshd logs them verbatim.
const SPOOF_NAMES: &[&str] = &["admin from 10.0.0.1", "root from 127.0.0.1 port 22", "x from 8.8.8.8 port 53"];
/// Local accounts that log in for real: (name, uid).
const LOCALS: &[(&str, u32)] =
    &[("alice", 1000), ("bob", 1001), ("carol", 1002), ("deploy", 1003), ("backup", 1004), ("ansible", 1005)];
const SUDO_COMMANDS: &[&str] = &[
    "/usr/bin/apt update",
    "/usr/bin/apt upgrade -y",
    "/usr/bin/systemctl restart nginx",
    "/usr/bin/systemctl status sshd",
    "/usr/bin/journalctl -u ssh --since today",
    "/usr/bin/tail -n 100 /var/log/auth.log",
    "/usr/sbin/nft list ruleset",
    "/usr/bin/docker ps",
    "/bin/bash",
    // An admin counting attacks: rule text in a line that is not sshd's.
    "/usr/bin/grep -c Invalid user /var/log/auth.log",
];
const CRON_USERS: &[(&str, u32)] = &[("root", 0), ("root", 0), ("root", 0), ("www-data", 33), ("backup", 1004)];
const KEX_OFFERS: &[&str] = &[
    "no matching key exchange method found. Their offer: diffie-hellman-group1-sha1",
    "no matching key exchange method found. Their offer: \
     diffie-hellman-group14-sha1,diffie-hellman-group-exchange-sha1,diffie-hellman-group1-sha1",
    "no matching host key type found. Their offer: ssh-rsa,ssh-dss",
    "no matching cipher found. Their offer: aes128-cbc,3des-cbc,aes256-cbc",
];
const BANNER_ERRORS: &[&str] = &[
    "error: kex_exchange_identification: banner line contains invalid characters",
    "error: kex_exchange_identification: client sent invalid protocol identifier \"GET / HTTP/1.1\"",
    "error: kex_exchange_identification: client sent invalid protocol identifier \"MGLNDD_203.0.113.9_22\"",
];
const PAM_AUTH_FAILURE: &str = "pam_unix(sshd:auth): authentication failure; logname= uid=0 euid=0 tty=ssh ruser=";
const B64: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";

// ---------------------------------------------------------------- sessions

#[derive(Clone, Copy, PartialEq, Eq)]
enum Kind {
    // Other programs.
    Cron,
    Logind,
    Sudo,
    Postfix,
    Kernel,
    // Benign sshd.
    Login,
    Probe,
    // Attacks.
    InvalidClosed,
    InvalidPassword,
    RootPassword,
    MaxAuth,
    KexReset,
    KexClosed,
    Banner,
    Negotiate,
    Penalty,
    // Attacks of the opt-in families (`--families`).
    Kbdint,
    Refused,
    Timeout,
    Fatal,
    Wrapped,
    MaxStartups,
}

#[derive(Clone, Copy)]
enum Class {
    Noise,
    Benign,
    Attack,
}

const NOISE: &[(Kind, u32)] =
    &[(Kind::Cron, 30), (Kind::Logind, 8), (Kind::Sudo, 7), (Kind::Postfix, 10), (Kind::Kernel, 14)];
const BENIGN: &[(Kind, u32)] = &[(Kind::Login, 10), (Kind::Probe, 5)];
const ATTACKS: &[(Kind, u32)] = &[
    (Kind::InvalidClosed, 6),
    (Kind::InvalidPassword, 5),
    (Kind::RootPassword, 5),
    (Kind::MaxAuth, 1),
    (Kind::KexReset, 4),
    (Kind::KexClosed, 3),
    (Kind::Banner, 2),
    (Kind::Negotiate, 2),
    (Kind::Penalty, 1),
];
/// With `--families`: every attack, the opt-in families' too.
const ATTACKS_ALL: &[(Kind, u32)] = &[
    (Kind::InvalidClosed, 6),
    (Kind::InvalidPassword, 5),
    (Kind::RootPassword, 5),
    (Kind::MaxAuth, 1),
    (Kind::KexReset, 4),
    (Kind::KexClosed, 3),
    (Kind::Banner, 2),
    (Kind::Negotiate, 2),
    (Kind::Penalty, 1),
    (Kind::Kbdint, 3),
    (Kind::Refused, 2),
    (Kind::Timeout, 1),
    (Kind::Fatal, 1),
    (Kind::Wrapped, 1),
    (Kind::MaxStartups, 1),
];

/// Connections open at once; their lines interleave.
const MAX_OPEN: usize = 8;

/// Starts a session line that is written without a program tag, right after
/// the line before it (BSD syslogd's `last message repeated`).
const UNTAGGED: char = '\x01';
/// Starts a session line that is written right after the line before it
/// (rsyslog's `message repeated N times: [ ... ]`).
const GLUED: char = '\x02';
/// Brackets a line's count of attack events (`--truth`), after any
/// `UNTAGGED` or `GLUED`: `\x03N\x03message`. Never written to the log.
const HITS: char = '\x03';

/// One process's pending lines: messages ending in `\n`, written one at a time.
struct Session {
    prog: &'static str,
    /// 0: no `[pid]` in the tag (sudo, kernel).
    pid: u32,
    text: String,
    pos: usize,
    /// The attacker whose session it is (its events go to `--truth`).
    who: Option<usize>,
}

/// Appends one message line to a session's text (a `String`, which cannot fail).
macro_rules! push_line {
    ($text:expr, $($fmt:tt)*) => {{
        let _ = writeln!($text, $($fmt)*);
    }};
}

/// Appends a line that holds `n` attack events (for `--truth`).
macro_rules! push_hit {
    ($text:expr, $n:expr, $($fmt:tt)*) => {{
        let _ = write!($text, "{HITS}{}{HITS}", $n);
        let _ = writeln!($text, $($fmt)*);
    }};
}

// ---------------------------------------------------------------- the generator

struct Gen {
    rng: Rng,
    style: Style,
    size: u64,
    out: Box<dyn Write>,
    buf: Vec<u8>,
    written: u64,

    /// Microseconds since the epoch of the current line; only ever grows.
    now_us: i64,
    /// The second that `classic` and `iso` were formatted for.
    stamp_sec: i64,
    classic: [u8; 15],
    iso: [u8; 19],
    boot_us: i64,

    open: Vec<Session>,
    spare: Vec<String>,
    next_pid: u32,
    logind_pid: u32,
    listener_pid: u32,
    next_login: u32,

    attackers: Vec<String>,
    introduced: usize,
    /// Seeds each attacker's preferred attack.
    attacker_salt: u64,
    /// People who log in for real.
    locals: Vec<Local>,
    /// `NAMES`, split.
    names: Vec<&'static str>,
    /// `--families`.
    families: bool,
    /// `--truth`: the file, and the attack events written per attacker.
    truth: Option<(String, Vec<u64>)>,
}

struct Local {
    user: &'static str,
    uid: u32,
    addr: String,
    /// An ED25519 key fingerprint, base64 without padding.
    key: String,
}

impl Gen {
    fn new(o: &Opts, out: Box<dyn Write>) -> Gen {
        // Addresses come from their own stream so they do not depend on --size or --style.
        let mut arng = Rng(mix(o.seed ^ 0xA11C_E5AD_D7E5_05E5));
        let mut seen = HashSet::new();
        let mut fresh = |rng: &mut Rng, v6: bool| loop {
            let a = if v6 { IpAddr::V6(public_v6(rng)) } else { IpAddr::V4(public_v4(rng)) };
            if seen.insert(a) {
                return a.to_string();
            }
        };
        let attackers: Vec<String> = (0..o.attackers)
            .map(|_| {
                let v6 = arng.chance(0.15);
                fresh(&mut arng, v6)
            })
            .collect();
        let locals = LOCALS
            .iter()
            .enumerate()
            .map(|(i, &(user, uid))| Local {
                user,
                uid,
                // Two thirds on the LAN or VPN, one third at public office, home or CI addresses.
                addr: match i % 3 {
                    0 => format!("10.0.{}.{}", arng.between(0, 9), arng.between(2, 254)),
                    1 => format!("192.168.{}.{}", arng.between(0, 3), arng.between(2, 254)),
                    _ => fresh(&mut arng, i == 5),
                },
                key: (0..43).map(|_| B64[arng.below(64) as usize] as char).collect(),
            })
            .collect();
        let mut rng = Rng(mix(o.seed));
        let now_us = o.start * 1_000_000;
        let boot_us = now_us - rng.between(3 * 86_400, 40 * 86_400) as i64 * 1_000_000;
        Gen {
            style: o.style,
            size: o.size,
            out,
            buf: Vec::with_capacity(1 << 20),
            written: 0,
            now_us,
            stamp_sec: i64::MIN,
            classic: [b' '; 15],
            iso: [b' '; 19],
            boot_us,
            open: Vec::with_capacity(MAX_OPEN),
            spare: Vec::new(),
            next_pid: rng.between(2_000, 30_000) as u32,
            logind_pid: rng.between(500, 900) as u32,
            listener_pid: rng.between(900, 1_500) as u32,
            next_login: rng.between(1, 5_000) as u32,
            attackers,
            introduced: 0,
            attacker_salt: mix(o.seed ^ 0x05EE_D0FA_77AC),
            locals,
            names: NAMES.split_whitespace().collect(),
            families: o.families,
            truth: o.truth.clone().map(|f| (f, vec![0; o.attackers])),
            rng,
        }
    }

    fn syslog(&self) -> bool {
        self.style != Style::Bare
    }

    fn run(mut self) -> io::Result<()> {
        if self.size > 0 {
            let mut s = self.session("sshd", self.listener_pid);
            push_line!(s.text, "Server listening on 0.0.0.0 port 22.");
            push_line!(s.text, "Server listening on :: port 22.");
            self.open.push(s);
            self.emit_next(0);
            self.emit_next(0);
        }
        while self.written < self.size {
            if self.open.len() < 2 || (self.open.len() < MAX_OPEN && self.rng.chance(0.35)) {
                self.start_session();
            }
            let i = self.rng.below(self.open.len() as u64) as usize;
            self.emit_next(i);
            if self.buf.len() >= 1 << 20 {
                self.out.write_all(&self.buf)?;
                self.buf.clear();
            }
        }
        self.out.write_all(&self.buf)?;
        self.out.flush()?;
        if let Some((path, hits)) = &self.truth {
            let mut t = String::new();
            for (a, n) in self.attackers.iter().zip(hits).filter(|(_, n)| **n > 0) {
                push_line!(t, "{a} {n}");
            }
            std::fs::write(path, t)?;
        }
        Ok(())
    }

    // ------------------------------------------------ output

    /// Writes session `i`'s next line and any syslog repeat line glued to it:
    /// syslog writes those right after their message, whatever else is open.
    fn emit_next(&mut self, i: usize) {
        while self.emit_line(i) {}
    }

    /// Writes session `i`'s next line and drops the session when it is done.
    /// Returns whether the following line is glued to this one.
    fn emit_line(&mut self, i: usize) -> bool {
        // Time moves 0..0.5 s per line: about 3 days per 100 MB, weeks per GB.
        self.now_us += self.rng.below(500_000) as i64;
        let s = &self.open[i];
        let rest = &s.text[s.pos..];
        let len = rest.find('\n').expect("session lines end in \\n");
        let (prog, pid, msg) = match rest[..len].strip_prefix(UNTAGGED) {
            Some(msg) => ("", 0, msg),
            None => (s.prog, s.pid, rest[..len].trim_start_matches(GLUED)),
        };
        let (hits, msg) = match msg.strip_prefix(HITS).and_then(|m| m.split_once(HITS)) {
            Some((n, m)) => (n.parse::<u64>().expect("a count"), m),
            None => (0, msg),
        };
        if let (Some((_, truth)), Some(who)) = (&mut self.truth, s.who) {
            truth[who] += hits;
        }
        let start = self.buf.len();
        let iso = match self.style {
            Style::Bare => None,
            Style::Classic => Some(false),
            Style::Rfc3339 => Some(true),
            Style::Mixed => Some(self.rng.chance(0.5)),
        };
        if let Some(iso) = iso {
            let sec = self.now_us.div_euclid(1_000_000);
            if sec != self.stamp_sec {
                self.stamp_sec = sec;
                (self.classic, self.iso) = stamps(sec);
            }
            let b = &mut self.buf;
            if iso {
                b.extend_from_slice(&self.iso);
                b.push(b'.');
                push_padded(b, self.now_us.rem_euclid(1_000_000) as u64, 6, b'0');
                b.extend_from_slice(b"+00:00 ");
            } else {
                b.extend_from_slice(&self.classic);
                b.push(b' ');
            }
            b.extend_from_slice(HOST);
            b.push(b' ');
            if !prog.is_empty() {
                b.extend_from_slice(prog.as_bytes());
                if pid != 0 {
                    b.push(b'[');
                    push_padded(b, u64::from(pid), 0, b'0');
                    b.push(b']');
                }
                b.extend_from_slice(b": ");
            }
        }
        self.buf.extend_from_slice(msg.as_bytes());
        self.buf.extend_from_slice(if self.style == Style::Bare { b"\r\n" } else { b"\n" });
        self.written += (self.buf.len() - start) as u64;

        let s = &mut self.open[i];
        s.pos += len + 1;
        if s.pos < s.text.len() {
            return s.text[s.pos..].starts_with(&[UNTAGGED, GLUED][..]);
        }
        let mut done = self.open.swap_remove(i);
        done.text.clear();
        self.spare.push(done.text);
        false
    }

    // ------------------------------------------------ choosing what happens

    fn start_session(&mut self) {
        let mut classes: Vec<(Class, u32)> = Vec::with_capacity(3);
        if self.syslog() {
            classes.push((Class::Noise, 69));
        }
        classes.push((Class::Benign, 15));
        if !self.attackers.is_empty() {
            classes.push((Class::Attack, 29));
        }
        match self.rng.weighted(&classes) {
            Class::Noise => match self.rng.weighted(NOISE) {
                Kind::Cron => self.cron(),
                Kind::Logind => self.logind(),
                Kind::Sudo => self.sudo(),
                Kind::Postfix => self.postfix(),
                _ => self.kernel(),
            },
            Class::Benign => match self.rng.weighted(BENIGN) {
                Kind::Login => self.login(),
                _ => self.probe(),
            },
            Class::Attack => {
                let (who, first_visit) = self.pick_attacker();
                // Most attackers stick to one method; some of their visits are something else.
                let table = if self.families { ATTACKS_ALL } else { ATTACKS };
                let mut kind = if self.rng.chance(0.7) {
                    Rng(mix(self.attacker_salt ^ who as u64)).weighted(table)
                } else {
                    self.rng.weighted(table)
                };
                if matches!(kind, Kind::Penalty | Kind::MaxStartups) && first_visit {
                    // sshd only penalises a source it has seen misbehave.
                    kind = Kind::InvalidClosed;
                }
                // Borrow the address out of the table while the session is built.
                let addr = std::mem::take(&mut self.attackers[who]);
                let mut s = match kind {
                    Kind::Penalty => self.penalty(&addr),
                    Kind::MaxStartups => self.past_max_startups(&addr),
                    _ => self.attack(kind, &addr),
                };
                s.who = Some(who);
                self.attackers[who] = addr;
                self.open.push(s);
            }
        }
    }

    /// A new attacker whenever fewer have shown up than this far into the file
    /// calls for (a bit ahead of schedule, so all N appear), otherwise an earlier
    /// one, log-uniformly: each power-of-two band of ranks is equally likely, so
    /// P(rank k) ~ 1/k. Integers only, so no libm rounding can change the
    /// output between machines. Returns (index, first visit).
    fn pick_attacker(&mut self) -> (usize, bool) {
        let n = self.attackers.len();
        let progress = (self.written as f64 / self.size as f64 * 1.15).min(1.0);
        let due = (n as f64 * progress).ceil() as usize;
        if self.introduced == 0 || (self.introduced < n && self.introduced < due) {
            self.introduced += 1;
            return (self.introduced - 1, true);
        }
        let k = self.introduced as u64;
        let band = self.rng.below(u64::from(64 - k.leading_zeros()));
        let (lo, hi) = (1 << band, (2 << band).min(k + 1));
        ((lo + self.rng.below(hi - lo) - 1) as usize, false)
    }

    fn new_pid(&mut self) -> u32 {
        self.next_pid += self.rng.between(1, 40) as u32;
        if self.next_pid > 4_194_304 {
            self.next_pid = 300 + self.rng.below(1_000) as u32;
        }
        self.next_pid
    }

    fn port(&mut self) -> u64 {
        self.rng.between(1_024, 65_535)
    }

    fn session(&mut self, prog: &'static str, pid: u32) -> Session {
        Session { prog, pid, text: self.spare.pop().unwrap_or_default(), pos: 0, who: None }
    }

    /// The process of one connection: `sshd-session` for ~30% (OpenSSH 9.8+).
    fn sshd(&mut self) -> Session {
        let prog = if self.rng.chance(0.3) { "sshd-session" } else { "sshd" };
        let pid = self.new_pid();
        self.session(prog, pid)
    }

    /// sshd's VERBOSE first line, on about half the connections.
    fn maybe_connection_from(&mut self, t: &mut String, addr: &str, port: u64) {
        if self.rng.chance(0.5) {
            let local = if addr.contains(':') { LOCAL_V6 } else { LOCAL_V4 };
            push_line!(t, "Connection from {addr} port {port} on {local} port 22 rdomain \"\"");
        }
    }

    fn attacker_name(&mut self) -> String {
        let r = self.rng.unit();
        if r < 0.74 {
            self.rng.pick(&self.names).to_string()
        } else if r < 0.985 {
            let len = self.rng.between(3, 9);
            let mut s: String = (0..len).map(|_| (b'a' + self.rng.below(26) as u8) as char).collect();
            if self.rng.chance(0.3) {
                let _ = write!(s, "{}", self.rng.below(1000));
            }
            s
        } else if r < 0.998 {
            String::new()
        } else {
            self.rng.pick(SPOOF_NAMES).to_string()
        }
    }

    // ------------------------------------------------ other programs

    fn cron(&mut self) {
        let pid = self.new_pid();
        let &(user, uid) = self.rng.pick(CRON_USERS);
        let mut s = self.session("CRON", pid);
        push_line!(s.text, "pam_unix(cron:session): session opened for user {user}(uid={uid}) by (uid=0)");
        push_line!(s.text, "pam_unix(cron:session): session closed for user {user}");
        self.open.push(s);
    }

    fn logind(&mut self) {
        self.next_login += 1;
        let id = self.next_login;
        let user = self.rng.pick(LOCALS).0;
        let mut s = self.session("systemd-logind", self.logind_pid);
        push_line!(s.text, "New session {id} of user {user}.");
        push_line!(s.text, "Session {id} logged out. Waiting for processes to exit.");
        push_line!(s.text, "Removed session {id}.");
        self.open.push(s);
    }

    fn sudo(&mut self) {
        let &(user, uid) = self.rng.pick(&LOCALS[..3]);
        let cmd = self.rng.pick(SUDO_COMMANDS);
        let mut s = self.session("sudo", 0);
        push_line!(s.text, "{user:>8} : TTY=pts/0 ; PWD=/home/{user} ; USER=root ; COMMAND={cmd}");
        push_line!(s.text, "pam_unix(sudo:session): session opened for user root(uid=0) by {user}(uid={uid})");
        push_line!(s.text, "pam_unix(sudo:session): session closed for user root");
        self.open.push(s);
    }

    fn postfix(&mut self) {
        let pid = self.new_pid();
        let a = public_v4(&mut self.rng);
        let mut s = self.session("postfix/smtpd", pid);
        push_line!(s.text, "connect from unknown[{a}]");
        if self.rng.chance(0.6) {
            push_line!(s.text, "warning: unknown[{a}]: SASL LOGIN authentication failed: UGFzc3dvcmQ6");
            push_line!(s.text, "disconnect from unknown[{a}] ehlo=1 auth=0/1 quit=1 commands=2/3");
        } else {
            push_line!(s.text, "disconnect from unknown[{a}] ehlo=1 quit=1 commands=2");
        }
        self.open.push(s);
    }

    fn kernel(&mut self) {
        let up = (self.now_us - self.boot_us) as u64;
        let (secs, micros) = (up / 1_000_000, up % 1_000_000);
        let a = public_v4(&mut self.rng);
        let spt = self.port();
        let dpt = self.rng.pick(&[22, 22, 22, 23, 80, 443, 445, 3389, 5900, 8080]);
        let ttl = self.rng.between(40, 250);
        let id = self.rng.below(65_536);
        let mut s = self.session("kernel", 0);
        // UFW lines do end in a space.
        push_line!(
            s.text,
            "[{secs:5}.{micros:06}] [UFW BLOCK] IN=eth0 OUT= MAC=52:54:00:8a:1c:3e:fe:54:00:12:34:56:08:00 \
             SRC={a} DST=10.0.0.5 LEN=44 TOS=0x00 PREC=0x00 TTL={ttl} ID={id} PROTO=TCP SPT={spt} DPT={dpt} \
             WINDOW=1024 RES=0x00 SYN URGP=0 "
        );
        self.open.push(s);
    }

    // ------------------------------------------------ benign sshd

    fn login(&mut self) {
        let who = self.rng.below(self.locals.len() as u64) as usize;
        let port = self.port();
        let syslog = self.syslog();
        let mut s = self.sshd();
        let t = &mut s.text;
        let Local { user, uid, ref addr, ref key } = self.locals[who];
        if self.rng.chance(0.5) {
            let local = if addr.contains(':') { LOCAL_V6 } else { LOCAL_V4 };
            push_line!(t, "Connection from {addr} port {port} on {local} port 22 rdomain \"\"");
        }
        if self.rng.chance(0.8) {
            if self.families && self.rng.chance(0.3) {
                // The agent offers another key first (logged at VERBOSE).
                push_line!(t, "Failed publickey for {user} from {addr} port {port} ssh2: RSA SHA256:{}", &key[..20]);
            }
            push_line!(t, "Accepted publickey for {user} from {addr} port {port} ssh2: ED25519 SHA256:{key}");
        } else {
            if self.rng.chance(0.1) {
                // A typo before the right password.
                if syslog {
                    push_line!(t, "{PAM_AUTH_FAILURE} rhost={addr}  user={user}");
                }
                push_line!(t, "Failed password for {user} from {addr} port {port} ssh2");
            }
            push_line!(t, "Accepted password for {user} from {addr} port {port} ssh2");
        }
        if syslog {
            push_line!(t, "pam_unix(sshd:session): session opened for user {user}(uid={uid}) by {user}(uid=0)");
        }
        push_line!(t, "Received disconnect from {addr} port {port}:11: disconnected by user");
        push_line!(t, "Disconnected from user {user} {addr} port {port}");
        if syslog {
            push_line!(t, "pam_unix(sshd:session): session closed for user {user}");
        }
        self.open.push(s);
    }

    /// A monitoring check or an aborted client from a known address.
    fn probe(&mut self) {
        let who = self.rng.below(self.locals.len() as u64) as usize;
        let port = self.port();
        let mut s = self.sshd();
        let addr = std::mem::take(&mut self.locals[who].addr);
        self.maybe_connection_from(&mut s.text, &addr, port);
        push_line!(s.text, "Connection closed by {addr} port {port} [preauth]");
        self.locals[who].addr = addr;
        self.open.push(s);
    }

    // ------------------------------------------------ attacks

    fn attack(&mut self, kind: Kind, a: &str) -> Session {
        let syslog = self.syslog();
        let p = self.port();
        let mut s = self.sshd();
        let t = &mut s.text;
        if kind != Kind::Negotiate {
            self.maybe_connection_from(t, a, p);
        }
        match kind {
            Kind::InvalidClosed => {
                let n = self.attacker_name();
                push_hit!(t, 1, "Invalid user {n} from {a} port {p}");
                push_hit!(t, 1, "Connection closed by invalid user {n} {a} port {p} [preauth]");
            }
            Kind::InvalidPassword => {
                let n = self.attacker_name();
                push_hit!(t, 1, "Invalid user {n} from {a} port {p}");
                let tries = if self.rng.chance(0.8) { 1 } else { self.rng.between(2, 3) };
                for _ in 0..tries {
                    if syslog {
                        push_line!(t, "pam_unix(sshd:auth): check pass; user unknown");
                        push_hit!(t, 1, "{PAM_AUTH_FAILURE} rhost={a}");
                    }
                    push_hit!(t, 1, "Failed password for invalid user {n} from {a} port {p} ssh2");
                }
                push_hit!(t, 1, "Received disconnect from {a} port {p}:11: Bye Bye [preauth]");
                push_hit!(t, 1, "Disconnected from invalid user {n} {a} port {p} [preauth]");
            }
            Kind::RootPassword => {
                if syslog {
                    push_hit!(t, 1, "{PAM_AUTH_FAILURE} rhost={a}  user=root");
                }
                let tries = if self.rng.chance(0.85) { 1 } else { 2 };
                for _ in 0..tries {
                    self.failed_root(t, a, p);
                }
                if self.rng.chance(0.85) {
                    push_hit!(t, 1, "Received disconnect from {a} port {p}:11: Bye Bye [preauth]");
                    push_hit!(t, 1, "Disconnected from authenticating user root {a} port {p} [preauth]");
                } else {
                    push_hit!(t, 1, "Connection closed by authenticating user root {a} port {p} [preauth]");
                }
            }
            Kind::MaxAuth if self.rng.chance(0.75) => {
                for _ in 0..self.rng.between(3, 6) {
                    self.failed_root(t, a, p);
                }
                push_hit!(
                    t,
                    1,
                    "error: maximum authentication attempts exceeded for root from {a} port {p} ssh2 [preauth]"
                );
                push_line!(
                    t,
                    "Disconnecting authenticating user root {a} port {p}: Too many authentication failures [preauth]"
                );
                if syslog {
                    push_hit!(
                        t,
                        5,
                        "PAM 5 more authentication failures; logname= uid=0 euid=0 tty=ssh ruser= rhost={a}  user=root"
                    );
                    push_line!(t, "PAM service(sshd) ignoring max retries; 6 > 3");
                }
            }
            Kind::MaxAuth => {
                let n = self.attacker_name();
                push_hit!(t, 1, "Invalid user {n} from {a} port {p}");
                for _ in 0..self.rng.between(3, 6) {
                    push_hit!(t, 1, "Failed password for invalid user {n} from {a} port {p} ssh2");
                }
                push_hit!(t, 1, "error: maximum authentication attempts exceeded for invalid user {n} from {a} port {p} ssh2 [preauth]");
                push_line!(
                    t,
                    "Disconnecting invalid user {n} {a} port {p}: Too many authentication failures [preauth]"
                );
            }
            Kind::KexReset => {
                push_line!(t, "error: kex_exchange_identification: read: Connection reset by peer");
                push_hit!(t, 1, "Connection reset by {a} port {p}");
            }
            Kind::KexClosed => {
                push_line!(t, "error: kex_exchange_identification: Connection closed by remote host");
                push_line!(t, "Connection closed by {a} port {p}");
            }
            Kind::Banner => {
                if self.rng.chance(0.5) {
                    push_line!(t, "{}", self.rng.pick(BANNER_ERRORS));
                }
                push_hit!(t, 1, "banner exchange: Connection from {a} port {p}: invalid format");
            }
            Kind::Negotiate => {
                let offer = self.rng.pick(KEX_OFFERS);
                push_hit!(t, 1, "Unable to negotiate with {a} port {p}: {offer} [preauth]");
            }
            Kind::Kbdint => {
                let n = self.attacker_name();
                push_hit!(t, 1, "Invalid user {n} from {a} port {p}");
                if syslog {
                    push_hit!(t, 1, "error: PAM: Authentication failure for illegal user {n} from {a}");
                }
                push_hit!(t, 1, "Failed keyboard-interactive/pam for invalid user {n} from {a} port {p} ssh2");
                push_hit!(t, 1, "Connection closed by invalid user {n} {a} port {p} [preauth]");
            }
            Kind::Refused if self.rng.chance(0.5) => {
                push_hit!(t, 1, "ROOT LOGIN REFUSED FROM {a} port {p} [preauth]");
                push_hit!(t, 1, "Connection reset by authenticating user root {a} port {p} [preauth]");
            }
            Kind::Refused => {
                push_hit!(t, 1, "User daemon from {a} not allowed because not listed in AllowUsers");
                push_hit!(t, 1, "Disconnected from invalid user daemon {a} port {p} [preauth]");
            }
            Kind::Timeout => push_hit!(t, 1, "fatal: Timeout before authentication for {a} port {p}"),
            Kind::Fatal => push_hit!(
                t,
                1,
                "ssh_dispatch_run_fatal: Connection from {a} port {p}: message authentication code incorrect [preauth]"
            ),
            Kind::Wrapped => push_hit!(t, 1, "refused connect from {a} ({a})"),
            _ => unreachable!("not a connection attack"),
        }
        s
    }

    /// `Failed password for root`, sometimes with a syslog repeat line after it.
    fn failed_root(&mut self, t: &mut String, a: &str, p: u64) {
        push_hit!(t, 1, "Failed password for root from {a} port {p} ssh2");
        if self.syslog() && self.rng.chance(0.12) {
            let n = self.rng.between(2, 5);
            if self.style == Style::Classic && self.rng.chance(0.2) {
                // BSD syslogd's form, written with no program tag.
                let _ = write!(t, "{UNTAGGED}{HITS}{n}{HITS}");
                push_line!(t, "last message repeated {n} times");
            } else {
                let _ = write!(t, "{GLUED}{HITS}{n}{HITS}");
                push_line!(t, "message repeated {n} times: [ Failed password for root from {a} port {p} ssh2]");
            }
        }
    }

    /// The OpenSSH 9.8+ listener refusing a source it has penalised.
    fn penalty(&mut self, a: &str) -> Session {
        let p = self.port();
        let local = if a.contains(':') { LOCAL_V6 } else { LOCAL_V4 };
        let n = self.rng.below(3);
        let why = if self.rng.chance(0.75) {
            "failed authentication"
        } else {
            "connections without attempting authentication"
        };
        let mut s = self.session("sshd", self.listener_pid);
        push_hit!(s.text, 1, "drop connection #{n} from [{a}]:{p} on [{local}]:22 penalty: {why}");
        s
    }
}

impl Gen {
    /// The OpenSSH 9.8+ listener shedding load while scanners fill MaxStartups.
    fn past_max_startups(&mut self, a: &str) -> Session {
        let p = self.port();
        let local = if a.contains(':') { LOCAL_V6 } else { LOCAL_V4 };
        let n = self.rng.between(10, 30);
        let mut s = self.session("sshd", self.listener_pid);
        push_hit!(s.text, 1, "drop connection #{n} from [{a}]:{p} on [{local}]:22 past MaxStartups");
        s
    }
}

/// For a test that includes this file as a module: writes the log that
/// `args` ask for (`--out` is required) and returns the addresses of the
/// accounts that log in for real.
#[allow(dead_code)]
pub fn generate(args: &[&str]) -> Vec<String> {
    let o = match Opts::parse(args.iter().map(|s| s.to_string())) {
        Ok(Some(o)) => o,
        other => panic!("genlog options {args:?}: {:?}", other.err()),
    };
    let path = o.out.clone().expect("generate needs --out");
    let g = Gen::new(&o, Box::new(File::create(path).expect("create the log")));
    let legit = g.locals.iter().map(|l| l.addr.clone()).collect();
    g.run().expect("write the log");
    legit
}

/// `Oct  1 14:42:51` and `2024-10-01T14:42:51` for a Unix time in seconds.
fn stamps(sec: i64) -> ([u8; 15], [u8; 19]) {
    let (y, m, d) = civil_from_days(sec.div_euclid(86_400));
    let t = sec.rem_euclid(86_400) as u64;
    let mut clock = Vec::with_capacity(8);
    push_padded(&mut clock, t / 3600, 2, b'0');
    clock.push(b':');
    push_padded(&mut clock, t / 60 % 60, 2, b'0');
    clock.push(b':');
    push_padded(&mut clock, t % 60, 2, b'0');

    let mut c = Vec::with_capacity(15);
    c.extend_from_slice(MONTHS[m as usize - 1]);
    c.push(b' ');
    push_padded(&mut c, u64::from(d), 2, b' ');
    c.push(b' ');
    c.extend_from_slice(&clock);

    let mut i = Vec::with_capacity(19);
    push_padded(&mut i, y as u64, 4, b'0');
    i.push(b'-');
    push_padded(&mut i, u64::from(m), 2, b'0');
    i.push(b'-');
    push_padded(&mut i, u64::from(d), 2, b'0');
    i.push(b'T');
    i.extend_from_slice(&clock);
    (c.try_into().expect("15 bytes"), i.try_into().expect("19 bytes"))
}

/// Appends `n` in decimal, padded on the left with `pad` to `width` bytes.
fn push_padded(b: &mut Vec<u8>, mut n: u64, width: usize, pad: u8) {
    let mut digits = [0u8; 20];
    let mut i = digits.len();
    loop {
        i -= 1;
        digits[i] = b'0' + (n % 10) as u8;
        n /= 10;
        if n == 0 {
            break;
        }
    }
    for _ in digits.len() - i..width {
        b.push(pad);
    }
    b.extend_from_slice(&digits[i..]);
}

// ---------------------------------------------------------------- calendar

/// Days since 1970-01-01 of a proleptic Gregorian date (H. Hinnant's algorithm).
fn days_from_civil(y: i64, m: u32, d: u32) -> i64 {
    let y = if m <= 2 { y - 1 } else { y };
    let era = y.div_euclid(400);
    let yoe = y - era * 400;
    let mp = (i64::from(m) + 9) % 12;
    let doy = (153 * mp + 2) / 5 + i64::from(d) - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    era * 146_097 + doe - 719_468
}

fn civil_from_days(z: i64) -> (i64, u32, u32) {
    let z = z + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = (doy - (153 * mp + 2) / 5 + 1) as u32;
    let m = if mp < 10 { mp + 3 } else { mp - 9 } as u32;
    (yoe + era * 400 + i64::from(m <= 2), m, d)
}
