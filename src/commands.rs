//! One function per command, called by `main.rs` with the resolved
//! [`Config`]: each takes the lock when it changes something, drives the
//! [`Engine`] and prints through [`crate::show`].

use std::io::{self, Write};

use tracing::{info, warn};

use crate::addr::{check_width, parse_ip, Net};
use crate::cli::{BanArgs, ExplainArgs, ExportArgs, ListArgs, ReportArgs, StatsArgs, SyncArgs, UnbanArgs, ViewArgs};
use crate::config::Config;
use crate::engine::{self, Engine, Mode, Save};
use crate::parse::time::iso;
use crate::parse::{Clock, ScanStats};
use crate::show::{self, allow_source};
use crate::state::Manual;
use crate::store::{self, statefile};
use crate::Error;

/// `sync`: one engine step, published with [`Mode::Replace`].
pub fn sync(cfg: &Config, a: &SyncArgs) -> Result<(), Error> {
    // The lock covers state, list and firewall; a dry run writes nothing
    // at all (not even the lock file, nor a corrupt state set aside).
    let lock = if a.dry_run { None } else { Some(store::lock(&cfg.output.out, cfg.output.lock_timeout)?) };
    if let Some(l) = &lock {
        l.sweep(&[&cfg.output.out, &cfg.output.state]);
    }
    // The timer's common case: nothing new anywhere. Decided from the
    // head of the state file alone.
    if !a.dry_run && !a.reload && !a.print {
        if let Some(files) = engine::nothing_new(cfg, Clock::system().now()) {
            info!(
                "read {files} files, 0 new lines; {} unchanged: nothing written, firewall not reloaded",
                cfg.output.out.display()
            );
            return Ok(());
        }
    }
    let mut engine = if a.dry_run { Engine::open_dry_run(cfg)? } else { Engine::open(cfg)? };
    engine.loud = true;
    let mut clock = Clock::system();
    let mut stats = ScanStats::default();
    let batch = engine.ingest(&mut clock, &mut stats)?;
    let out = engine.evaluate(true, clock.now());
    let current = engine.read_list(Some("dropped"))?;
    engine.load_includes(clock.now());
    let imported = engine.import(&current, clock.now());
    if imported > 0 {
        info!("kept {imported} entries of {} that badguys did not put there, as manual bans", cfg.output.out.display());
    }
    let list = engine.blocklist(&mut |net, e, pieces| {
        let what = if pieces == 0 { "not listed".to_string() } else { format!("{pieces} pieces listed") };
        info!("{net} overlaps allowed {} ({}): {what}", e.net, allow_source(&e.source));
    });
    let mut stdout = io::BufWriter::with_capacity(64 * 1024, io::stdout().lock());
    let content = (a.print || a.dry_run).then(|| store::render(&list));
    let mut print = || -> io::Result<()> {
        if a.dry_run {
            show::dry_run(&mut stdout, &engine.state, &out)?;
        }
        if a.print {
            stdout.write_all(content.as_deref().unwrap_or_default())?;
        }
        stdout.flush()
    };
    print().map_err(stdout_error)?;
    show::summary(cfg, &stats, &batch, &out, list.len(), engine.state.records.len());
    crate::fleet::summary(&engine.state, cfg.host_silence, clock.now());
    if a.dry_run {
        let changed = !current.exists || content.as_deref() != Some(&current.bytes[..]);
        info!(
            "dry run: {} would be {}; state and firewall left as they are",
            cfg.output.out.display(),
            if changed { "rewritten" } else { "left as it is" }
        );
        return Ok(());
    }
    let done = engine.publish(Mode::Replace { list, current: &current, reload: a.reload, kill: true }, Save::Now);
    // The process ends here: freeing tens of thousands of records one by
    // one would only cost time.
    std::mem::forget(engine);
    if done?.reloaded && cfg.output.firewall.name() != "none" {
        info!("{} reloaded", cfg.output.firewall.name());
    }
    Ok(())
}

/// Standard output failing: unforeseen (exit 1), or a closed pipe (`|
/// head`), which `main` takes as a clean exit.
fn stdout_error(err: io::Error) -> Error {
    Error::System { what: "cannot write to standard output".into(), err }
}

/// Changes the state under the lock, then publishes list, firewall and
/// state (`ban`, `unban`); false when `f` changed nothing.
fn change(cfg: &Config, f: impl FnOnce(&mut Engine<'_>, i64) -> Result<bool, Error>) -> Result<bool, Error> {
    let _lock = store::lock(&cfg.output.out, cfg.output.lock_timeout)?;
    let mut engine = Engine::open(cfg)?;
    let now = Clock::system().now();
    let current = engine.read_list(None)?;
    engine.import(&current, now);
    if !f(&mut engine, now)? {
        return Ok(false);
    }
    engine.dirty = true;
    engine.evaluate(false, now);
    let list = engine.blocklist(&mut |_, _, _| {});
    engine.publish(Mode::Replace { list, current: &current, reload: true, kill: true }, Save::Now)?;
    Ok(true)
}

fn target(s: &str) -> Result<Net, Error> {
    s.parse::<Net>().map_err(|e| Error::Config(format!("{s:?}: {e}")))
}

pub fn ban(cfg: &Config, a: &BanArgs) -> Result<(), Error> {
    let net = target(&a.target)?;
    check_width(net, a.force).map_err(|e| Error::Config(format!("{e}; --force bans it anyway")))?;
    if let Some(e) = cfg.output.allow.entries().iter().find(|e| e.net.overlaps(&net)) {
        warn!("{net} overlaps allowed {} ({}): that part stays unblocked", e.net, allow_source(&e.source));
    }
    // --for is at most 100 years (the value parser), and the sum saturates.
    let mut until = None;
    change(cfg, |engine, now| {
        let reason = a.reason.clone().unwrap_or_else(|| "banned by hand".into());
        until = a.duration.map(|d| now.saturating_add(d));
        engine.state.manual.insert(net, Manual { since: now, until, reason: reason.into() });
        Ok(true)
    })?;
    info!("banned {net}{}", until.map(|u| format!(" until {}", iso(u))).unwrap_or_default());
    Ok(())
}

pub fn unban(cfg: &Config, a: &UnbanArgs) -> Result<(), Error> {
    let net = target(&a.target)?;
    let unban = |engine: &mut Engine<'_>, now| {
        let listed: Vec<_> = engine
            .state
            .records
            .iter()
            .filter(|(ip, r)| net.contains_ip(**ip) && r.listed.is_some())
            .map(|(ip, _)| *ip)
            .collect();
        for ip in listed {
            engine.note_change(ip, crate::store::batch::Change::Unbanned, now);
        }
        Ok(crate::rules::unban(&mut engine.state, &net))
    };
    if change(cfg, unban)? {
        info!("unbanned {net}: it comes back only if it attacks again");
    } else {
        info!("{net} was not banned");
    }
    Ok(())
}

/// Loads the list file into the firewall, through the same filters as
/// every other way into it: the allowlist (and the reserved ranges) is
/// carved out, and a network wider than /8 or /32 loads only when it is a
/// manual ban given with `--force` (in the state). The state is read, not
/// written.
pub fn reload(cfg: &Config) -> Result<(), Error> {
    let o = &cfg.output;
    let _lock = store::lock(&o.out, o.lock_timeout)?;
    let mut engine = Engine::open_to_look(cfg)?;
    let current = engine.read_list(Some("not loaded"))?;
    if !current.exists {
        return Err(Error::Output { path: o.out.clone(), err: io::Error::from(io::ErrorKind::NotFound) });
    }
    // Manual bans (wide ones were given with --force), and the pieces the
    // allowlist carved out of them.
    let forced = |net: &Net| engine.state.manual.keys().any(|m| m.contains(net));
    let mut entries = current.entries.clone();
    entries.sort();
    entries.dedup();
    let mut list = Vec::with_capacity(entries.len());
    for net in &entries {
        if let Err(e) = check_width(*net, forced(net)) {
            warn!("{}: {e}: not loaded (`badguys ban --force {net}` lists it)", o.out.display());
            continue;
        }
        let (pieces, cut) = o.allow.carve(*net);
        for e in cut {
            let what =
                if pieces.is_empty() { "not loaded".to_string() } else { format!("{} pieces loaded", pieces.len()) };
            warn!("{net} overlaps allowed {} ({}): {what}", e.net, allow_source(&e.source));
        }
        list.extend(pieces);
    }
    list.sort();
    list.dedup();
    let n = list.len();
    // pf reads the file itself: it gets a clean copy, never the junk nor
    // an allowed address. The list as it was: nothing is new, no state is
    // killed.
    engine.publish(Mode::Replace { list, current: &current, reload: true, kill: false }, Save::Never)?;
    info!("{}: {n} entries loaded into {}", o.out.display(), o.firewall.name());
    Ok(())
}

pub fn list(cfg: &Config, a: &ListArgs) -> Result<(), Error> {
    let st = Engine::peek(cfg)?;
    let mut out = io::BufWriter::new(io::stdout().lock());
    if a.by_host {
        return crate::fleet::by_host(&mut out, &st).and_then(|()| out.flush()).map_err(stdout_error);
    }
    show::list(&mut out, cfg, &st, a.all, a.json).and_then(|()| out.flush()).map_err(stdout_error)
}

/// `export`: the published list with its header, for `signify -S -e`.
pub fn export(cfg: &Config, a: &ExportArgs) -> Result<(), Error> {
    let st = Engine::peek(cfg)?;
    let list = crate::fleet::export_list(&st, &cfg.output.allow, a.min_hosts);
    let mut o = io::BufWriter::new(io::stdout().lock());
    crate::fleet::export(&mut o, &st, &list, Clock::system().now()).and_then(|()| o.flush()).map_err(stdout_error)
}

pub fn explain(cfg: &Config, a: &ExplainArgs) -> Result<(), Error> {
    let ip = parse_ip(a.addr.as_bytes()).ok_or_else(|| Error::Config(format!("{:?} is not an IP address", a.addr)))?;
    let st = Engine::peek(cfg)?;
    let listed = store::read(&cfg.output.out)?.entries.iter().any(|n| n.contains_ip(ip));
    let mut o = io::BufWriter::new(io::stdout().lock());
    show::explain(&mut o, cfg, &st, ip, listed.then_some(cfg.output.out.as_path()))
        .and_then(|()| o.flush())
        .map_err(stdout_error)
}

/// `check`: every problem found, printed; an error when there is one.
pub fn check(cfg: &Config) -> Result<(), Error> {
    let mut problems: Vec<String> = Vec::new();
    // A journal chosen for want of the default log is read only if
    // journalctl runs; else the log is what is missing.
    let runs = cfg.journal.is_some() && crate::source::journal::available();
    if cfg.journal.is_some() && !cfg.journal_auto && !runs {
        problems.push(format!("journal: {} cannot be run", crate::source::journal::program()));
    }
    let read_logs = cfg.journal.is_none() || (cfg.journal_auto && !runs);
    for log in cfg.logs.iter().filter(|l| read_logs && !crate::source::is_stdin(l)) {
        // Never blocks, even on a FIFO.
        if let Err(e) = crate::source::open_log(log) {
            problems.push(format!("log {e}"));
        }
    }
    let out_dir = cfg.output.out.parent().filter(|d| !d.as_os_str().is_empty()).unwrap_or(std::path::Path::new("."));
    if nix::unistd::access(out_dir, nix::unistd::AccessFlags::W_OK).is_err() {
        problems.push(format!(
            "blocklist {}: directory {} is not writable",
            cfg.output.out.display(),
            out_dir.display()
        ));
    }
    // Where badguys will refuse to write (a missing state directory is created).
    for path in [&cfg.output.out, &cfg.output.state] {
        if !path.parent().is_some_and(|d| !d.as_os_str().is_empty() && !d.exists()) {
            if let Err(e) = store::check_dir(path) {
                problems.push(e.to_string());
            }
        }
    }
    match statefile::read(&cfg.output.state) {
        Ok(Some(Err(why))) => problems.push(format!("state {}: {why}", cfg.output.state.display())),
        Err(e) => problems.push(format!("state: {e}")),
        _ => {}
    }
    match store::read(&cfg.output.out) {
        Ok(cur) => problems.extend(
            cur.junk.iter().map(|j| format!("{}:{}: not an address: \"{}\"", cfg.output.out.display(), j.line, j.text)),
        ),
        Err(e) => problems.push(e.to_string()),
    }
    if let Err(e) = cfg.output.firewall.check() {
        problems.push(format!("firewall: {e}"));
    }
    show::check(&mut io::stdout().lock(), &problems).map_err(stdout_error)?;
    if problems.is_empty() {
        return Ok(());
    }
    Err(Error::Config(format!("{} problems found", problems.len())))
}

pub fn rules() -> Result<(), Error> {
    show::rules(&mut io::stdout().lock()).map_err(stdout_error)
}

/// `test`: each line of FILE (or standard input) through the scanner;
/// reads the configuration, writes nothing (no state, list or lock).
pub fn test(cfg: &Config, a: &crate::cli::TestArgs) -> Result<(), Error> {
    let opt = crate::linetest::Options { rules: cfg.rules, policy: cfg.policy, only_missed: a.only_missed };
    let mut input: Box<dyn io::BufRead> = match a.file.as_deref().filter(|p| !crate::source::is_stdin(p)) {
        Some(p) => Box::new(io::BufReader::with_capacity(
            256 * 1024,
            std::fs::File::open(p).map_err(|err| Error::Input { path: p.to_path_buf(), err })?,
        )),
        None => Box::new(io::stdin().lock()),
    };
    let mut o = io::BufWriter::with_capacity(64 * 1024, io::stdout().lock());
    crate::linetest::run(&mut input, &mut o, &opt).and_then(|()| o.flush()).map_err(stdout_error)
}

/// `watch`: the sandbox, then the loop.
pub fn watch(cfg: &Config) -> Result<(), Error> {
    crate::sandbox::restrict(cfg)?;
    crate::watch::watch(cfg)
}

/// The figures `stats` and `report` show.
fn view_data(cfg: &Config, v: &ViewArgs) -> Result<crate::report::Data, Error> {
    let now = Clock::system().now();
    let o = crate::report::Options { now, since: v.since.map(|s| now - s), top: v.top.unwrap_or(10), max_dots: 400 };
    let d = crate::report::data::gather(&cfg.output.state, cfg.history.as_deref(), &cfg.geo, &o)?;
    if let Some(n) = &d.geo_note {
        info!("{n}");
    }
    for a in d.attributions.iter().filter(|a| a.stale) {
        warn!("{}: built {}, over 90 days ago: update it", a.path.display(), iso(a.built));
    }
    Ok(d)
}

pub fn stats(cfg: &Config, a: &StatsArgs) -> Result<(), Error> {
    let d = view_data(cfg, &a.view)?;
    let top = a.view.top.unwrap_or(10);
    let text = if a.json {
        format!("{}\n", crate::stats::json(&d, a.by, top))
    } else if a.prometheus {
        crate::stats::prometheus(&d)
    } else {
        crate::stats::text(&d, a.by, top)
    };
    io::stdout().lock().write_all(text.as_bytes()).map_err(stdout_error)
}

pub fn report(cfg: &Config, a: &ReportArgs) -> Result<(), Error> {
    let refresh = a.refresh.map(|s| std::time::Duration::from_secs(s.max(1) as u64));
    let d = view_data(cfg, &a.view)?;
    let path = a.file.clone().unwrap_or_else(|| "badguys-report.html".into());
    crate::report::write(&path, &d, refresh)?;
    info!("wrote {}", path.display());
    Ok(())
}
