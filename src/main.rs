//! The `badguys` command: parses flags, wires the stages together, prints
//! results, and maps errors to exit statuses. The only user of `anyhow`.

use std::collections::BTreeSet;
use std::io::{self, Write};
use std::net::IpAddr;
use std::path::Path;
use std::process::ExitCode;

use anyhow::Result;
use clap::Parser;
use tracing::{debug, info, warn};

use badguys::addr::Net;
use badguys::cli::{Cli, Command};
use badguys::config::{Config, Output};
use badguys::parse::{Rule, ScanStats, Scanner};
use badguys::rules::{decide, Spared};
use badguys::source::{self, Reader};
use badguys::state::{AllowSource, Tally};
use badguys::{exit, store, Error};

fn main() -> ExitCode {
    let cli = match Cli::try_parse() {
        Ok(c) => c,
        Err(e) => {
            let _ = e.print();
            return ExitCode::from(if e.use_stderr() { exit::USAGE as u8 } else { exit::OK as u8 });
        }
    };
    init_logging(cli.verbose, cli.quiet);
    let result = match &cli.command {
        Command::Sync(a) => Config::from_sync(a).map_err(Into::into).and_then(|c| sync(&c)),
        Command::Reload(a) => Output::from_args(a).map_err(Into::into).and_then(|o| reload(&o)),
        Command::Rules => rules(),
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) if is_broken_pipe(&e) => ExitCode::SUCCESS,
        Err(e) => {
            let code = e.downcast_ref::<Error>().map_or(exit::INTERNAL, Error::exit_code);
            eprintln!("badguys: error: {e:#}");
            ExitCode::from(code as u8)
        }
    }
}

fn init_logging(verbose: u8, quiet: bool) {
    let level = match (quiet, verbose) {
        (true, _) => tracing::Level::WARN,
        (false, 0) => tracing::Level::INFO,
        (false, 1) => tracing::Level::DEBUG,
        _ => tracing::Level::TRACE,
    };
    tracing_subscriber::fmt()
        .with_writer(io::stderr)
        .with_max_level(level)
        .with_target(false)
        .without_time()
        .with_ansi(false)
        .init();
}

fn is_broken_pipe(e: &anyhow::Error) -> bool {
    e.downcast_ref::<io::Error>().is_some_and(|e| e.kind() == io::ErrorKind::BrokenPipe)
}

/// What reading all logs gave.
struct Scanned {
    tally: Tally,
    stats: ScanStats,
    files: usize,
    damaged: usize,
}

/// Reads every log (rotated siblings first, oldest first) into a tally.
/// Any log that cannot be read stops the run before anything is written.
fn scan(cfg: &Config) -> Result<Scanned, Error> {
    let mut reader = Reader::new();
    let mut out = Scanned { tally: Tally::default(), stats: ScanStats::default(), files: 0, damaged: 0 };
    for log in &cfg.logs {
        if cfg.default_log && !log.exists() {
            return Err(Error::NoDefaultLog { path: log.clone() });
        }
        let mut files = Vec::new();
        if cfg.rotated && !source::is_stdin(log) {
            let (rotated, skipped) = source::rotated(log);
            for s in skipped {
                warn!("{}: skipped: {}", s.path.display(), s.why);
            }
            files.extend(rotated.into_iter().map(|p| (p, true)));
        }
        files.push((log.clone(), false));
        // One scanner per log, so kex pairs that straddle a rotation are kept.
        let mut scanner = Scanner::new(cfg.rules);
        for (path, is_rotated) in files {
            match read_one(&mut reader, &mut scanner, &mut out.tally, &path) {
                Ok(st) => {
                    out.files += 1;
                    if let Some(why) = st.damaged {
                        out.damaged += 1;
                        warn!("{}: damaged gzip, used what came before the damage: {why}", path.display());
                    }
                    debug!("{}: {} bytes{}", path.display(), st.bytes, if st.gzip { " (gzip)" } else { "" });
                }
                // A rotated file can vanish between listing and opening.
                Err(Error::Input { err, .. }) if is_rotated && err.kind() == io::ErrorKind::NotFound => {
                    warn!("{}: vanished while reading (rotation?)", path.display());
                }
                Err(e) => return Err(e),
            }
        }
        add_stats(&mut out.stats, scanner.stats());
    }
    Ok(out)
}

fn read_one(
    reader: &mut Reader,
    scanner: &mut Scanner,
    tally: &mut Tally,
    path: &Path,
) -> Result<source::FileStats, Error> {
    let cell = std::cell::RefCell::new(scanner);
    reader.read_path(path, &mut |chunk| cell.borrow_mut().scan(chunk, &mut |ev| tally.add(ev)), &mut || {
        cell.borrow_mut().note_overlong()
    })
}

fn add_stats(total: &mut ScanStats, s: &ScanStats) {
    total.bytes += s.bytes;
    total.lines += s.lines;
    total.candidates += s.candidates;
    total.logins += s.logins;
    total.bad_address += s.bad_address;
    total.overlong += s.overlong;
    total.bare_events += s.bare_events;
    for (t, h) in total.hits.iter_mut().zip(s.hits) {
        *t += h;
    }
}

fn sync(cfg: &Config) -> Result<()> {
    // Scan before locking: reading a large log needs no lock, and an input
    // error then leaves everything as it was.
    let scanned = scan(cfg)?;
    let verdict = decide(&scanned.tally, &cfg.allow, cfg.ban_accepted);
    let _lock = if cfg.dry_run { None } else { Some(store::lock(&cfg.output.out, cfg.output.lock_timeout)?) };
    let current = store::read(&cfg.output.out)?;
    for j in &current.junk {
        warn!("{}:{}: not an address or network, dropped: {:?}", cfg.output.out.display(), j.line, j.text);
    }

    // The existing entries minus the allowlist, plus the newly banned.
    let mut merged: BTreeSet<Net> = BTreeSet::new();
    for net in &current.entries {
        let (pieces, cut) = cfg.allow.carve(*net);
        for e in cut {
            warn!(
                "{}: {net} overlaps allowed {} ({}); {}",
                cfg.output.out.display(),
                e.net,
                allow_source(&e.source),
                if pieces.is_empty() { "removed".to_string() } else { format!("split into {} entries", pieces.len()) }
            );
        }
        merged.extend(pieces);
    }
    let before: BTreeSet<Net> = merged.clone();
    let mut added = Vec::new();
    for (ip, rec) in &verdict.banned {
        if merged.insert(Net::host(*ip)) {
            added.push((*ip, *rec));
        }
    }
    let list: Vec<Net> = merged.into_iter().collect();
    let content = store::render(&list);
    let changed = content != current.bytes;

    let mut stdout = io::BufWriter::with_capacity(64 * 1024, io::stdout().lock());
    if cfg.dry_run {
        for (ip, rec) in &added {
            write!(stdout, "+ {ip}\t{}", rec.rules_summary())?;
            for (i, u) in rec.users.iter().enumerate() {
                write!(stdout, "{}{}", if i == 0 { "\tusers: " } else { "," }, u.escape_ascii())?;
            }
            writeln!(stdout)?;
        }
        for (ip, rec, why) in &verdict.spared {
            writeln!(stdout, "= {ip}\t{}\tspared: {}", rec.rules_summary(), spared(why))?;
        }
    }
    if cfg.print {
        stdout.write_all(&content)?;
    }
    stdout.flush()?;
    drop(stdout);

    summary(cfg, &scanned, &verdict.spared, added.len(), list.len(), before.len());
    if cfg.dry_run {
        info!(
            "dry run: {} would be {}; firewall not reloaded",
            cfg.output.out.display(),
            if changed { "rewritten" } else { "left as it is" }
        );
        return Ok(());
    }
    if changed {
        store::write_atomic(&cfg.output.out, &content, 0o644)?;
        info!("wrote {} ({} entries)", cfg.output.out.display(), list.len());
    }
    if changed || cfg.force_reload {
        cfg.output.firewall.replace(&list, &cfg.output.out)?;
        if cfg.output.firewall.name() != "none" {
            info!("{} reloaded", cfg.output.firewall.name());
        }
    } else {
        info!("{} unchanged: nothing written, firewall not reloaded", cfg.output.out.display());
    }
    Ok(())
}

fn summary(
    cfg: &Config,
    s: &Scanned,
    spared_list: &[(IpAddr, &badguys::state::Record, Spared<'_>)],
    new: usize,
    total: usize,
    before: usize,
) {
    let st = &s.stats;
    let hits: Vec<String> = cfg.rules.iter().map(|r: Rule| format!("{}={}", r.name(), st.hits(r))).collect();
    let mut skipped = Vec::new();
    if st.overlong > 0 {
        skipped.push(format!("{} overlong lines", st.overlong));
    }
    if st.bad_address > 0 {
        skipped.push(format!("{} lines with an unparsable address", st.bad_address));
    }
    if s.damaged > 0 {
        skipped.push(format!("{} damaged gzip files", s.damaged));
    }
    if st.bare_events > 0 {
        warn!(
            "{} events came from bare lines (sshd -E): OpenSSH writes newlines in user names unescaped there, \
             so a crafted user name can forge a whole line; log to syslog or the journal where you can",
            st.bare_events
        );
    }
    let (mut allowed, mut accepted) = (0, 0);
    for (_, _, why) in spared_list {
        match why {
            Spared::Allowed(_) => allowed += 1,
            Spared::Accepted => accepted += 1,
        }
    }
    info!(
        "read {} files, {} lines, {:.1} MB; matches: {}; logins: {}{}",
        s.files,
        st.lines,
        st.bytes as f64 / 1e6,
        hits.join(" "),
        st.logins,
        if skipped.is_empty() { String::new() } else { format!("; skipped: {}", skipped.join(", ")) }
    );
    info!(
        "addresses: {} attacking, {} new, {} listed (was {}); spared {} ({} allowlist, {} accepted login)",
        s.tally.records.values().filter(|r| r.attacks() > 0).count(),
        new,
        total,
        before,
        allowed + accepted,
        allowed,
        accepted
    );
}

fn spared(why: &Spared<'_>) -> String {
    match why {
        Spared::Allowed(e) => format!("allowlist {} ({})", e.net, allow_source(&e.source)),
        Spared::Accepted => "logged in successfully (--ban-accepted lists it anyway)".to_string(),
    }
}

fn allow_source(s: &AllowSource) -> String {
    match s {
        AllowSource::Reserved(why) => format!("{why}, never listed"),
        AllowSource::Flag => "--allow".to_string(),
        AllowSource::File { path, line } => format!("{}:{line}", path.display()),
    }
}

fn reload(o: &Output) -> Result<()> {
    let _lock = store::lock(&o.out, o.lock_timeout)?;
    let current = store::read(&o.out)?;
    if !current.exists {
        return Err(Error::Output { path: o.out.clone(), err: io::Error::from(io::ErrorKind::NotFound) }.into());
    }
    for j in &current.junk {
        warn!("{}:{}: not an address or network, not loaded: {:?}", o.out.display(), j.line, j.text);
    }
    let mut list = current.entries;
    list.sort();
    list.dedup();
    if !current.junk.is_empty() {
        // pf reads the file itself: hand it a clean copy, never the junk.
        store::write_atomic(&o.out, &store::render(&list), 0o644)?;
    }
    o.firewall.replace(&list, &o.out)?;
    info!("{}: {} entries loaded into {}", o.out.display(), list.len(), o.firewall.name());
    Ok(())
}

fn rules() -> Result<()> {
    let mut out = io::stdout().lock();
    for r in Rule::ALL {
        let on = if r.default_on() { "default" } else { "opt-in " };
        writeln!(out, "{:<16} {on}  {}", r.name(), r.describe())?;
    }
    Ok(())
}
