//! The `badguys` command: parses flags, runs the command, prints results,
//! and maps errors to exit statuses. The only user of `anyhow`.

use std::io::{self, Write};
use std::net::IpAddr;
use std::process::ExitCode;

use anyhow::Result;
use clap::Parser;
use tracing::{info, warn};

use badguys::addr::{check_width, ip_order, parse_ip, Net};
use badguys::cli::{BanArgs, CheckArgs, Cli, Command, ExplainArgs, ListArgs, SyncArgs, UnbanArgs, WatchArgs};
use badguys::config::{parse_duration, Config};
use badguys::parse::time::iso;
use badguys::parse::{Clock, Rule, ScanStats};
use badguys::rules::{self, Spared};
use badguys::state::{AllowSource, Manual, Record};
use badguys::store::{self, statefile};
use badguys::watch::{json_line, Engine};
use badguys::{exit, Error};

fn main() -> ExitCode {
    let cli = match Cli::try_parse() {
        Ok(c) => c,
        Err(e) => {
            let _ = e.print();
            return ExitCode::from(if e.use_stderr() { exit::USAGE as u8 } else { exit::OK as u8 });
        }
    };
    let conf = cli.config.as_deref();
    // Logging starts once the config is read: `syslog = yes` may be there.
    let mut syslog = false;
    let mut start = |cfg: Result<Config, Error>| -> Result<Config> {
        syslog = cfg.as_ref().is_ok_and(|c| c.syslog);
        badguys::logging::init(cli.verbose, cli.quiet, syslog);
        Ok(cfg?)
    };
    let result = match &cli.command {
        Command::Sync(a) => start(Config::load(conf, Some(&a.scan), &a.output, None)).and_then(|c| sync(&c, a)),
        Command::Watch(a) => start(Config::load(conf, Some(&a.scan), &a.output, Some(a))).and_then(|c| watch(&c, a)),
        Command::Ban(a) => start(Config::load(conf, None, &a.output, None)).and_then(|c| ban(&c, a)),
        Command::Unban(a) => start(Config::load(conf, None, &a.output, None)).and_then(|c| unban(&c, a)),
        Command::List(a) => start(Config::load(conf, None, &a.output, None)).and_then(|c| list(&c, a)),
        Command::Explain(a) => start(Config::load(conf, Some(&a.scan), &a.output, None)).and_then(|c| explain(&c, a)),
        Command::Check(a) => {
            badguys::logging::init(cli.verbose, cli.quiet, false);
            check(conf, a)
        }
        Command::Reload(a) => start(Config::load(conf, None, a, None)).and_then(|c| reload(&c)),
        Command::Rules => {
            badguys::logging::init(cli.verbose, cli.quiet, false);
            rules_cmd()
        }
        Command::Stats(a) => start(Config::load(conf, None, &a.output, None)).and_then(|c| stats(&c, a)),
        Command::Report(a) => start(Config::load(conf, None, &a.output, None)).and_then(|c| report(&c, a)),
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) if is_broken_pipe(&e) => ExitCode::SUCCESS,
        Err(e) => {
            let code = e.downcast_ref::<Error>().map_or(exit::INTERNAL, Error::exit_code);
            if syslog {
                tracing::error!("{e:#}");
            } else {
                eprintln!("badguys: error: {e:#}");
            }
            ExitCode::from(code as u8)
        }
    }
}

fn is_broken_pipe(e: &anyhow::Error) -> bool {
    e.downcast_ref::<io::Error>().is_some_and(|e| e.kind() == io::ErrorKind::BrokenPipe)
}

fn sync(cfg: &Config, a: &SyncArgs) -> Result<()> {
    // The lock covers state, list and firewall; a dry run writes nothing
    // at all (not even the lock file, nor a corrupt state set aside).
    let lock = if a.dry_run { None } else { Some(store::lock(&cfg.output.out, cfg.output.lock_timeout)?) };
    if let Some(l) = &lock {
        l.sweep(&[&cfg.output.out, &cfg.output.state]);
    }
    // The timer's common case: nothing new anywhere. Decided from the
    // head of the state file alone.
    if !a.dry_run && !a.reload && !a.print {
        if let Some(files) = badguys::watch::nothing_new(cfg, Clock::system().now()) {
            info!(
                "read {files} files, 0 new lines; {} unchanged: nothing written, firewall not reloaded",
                cfg.output.out.display()
            );
            return Ok(());
        }
    }
    if cfg.journal_auto {
        info!("{} does not exist: reading sshd's entries from the systemd journal", cfg.logs[0].display());
    }
    let mut engine = if a.dry_run { Engine::open_dry_run(cfg)? } else { Engine::open(cfg)? };
    let mut clock = Clock::system();
    let mut stats = ScanStats::default();
    let batch = engine.ingest(&mut clock, &mut stats)?;
    let out = engine.evaluate(true, clock.now());
    let current = store::read(&cfg.output.out)?;
    for j in &current.junk {
        warn!("{}:{}: not an address or network, dropped: \"{}\"", cfg.output.out.display(), j.line, j.text);
    }
    let imported = engine.import(&current, clock.now());
    if imported > 0 {
        info!("kept {imported} entries of {} that badguys did not put there, as manual bans", cfg.output.out.display());
    }
    let list = engine.blocklist(&mut |net, e, pieces| {
        let what = if pieces == 0 { "not listed".to_string() } else { format!("{pieces} pieces listed") };
        info!("{net} overlaps allowed {} ({}): {what}", e.net, allow_source(&e.source));
    });
    let content = store::render(&list);
    // A missing file is written even when empty: pf's `persist file` needs it.
    let changed = !current.exists || content != current.bytes;

    let mut stdout = io::BufWriter::with_capacity(64 * 1024, io::stdout().lock());
    if a.dry_run {
        for ip in &out.listed {
            let rec = &engine.state.records[ip];
            write!(stdout, "+ {ip}\t{}", rec.rules_summary())?;
            for (i, u) in rec.users.iter().enumerate() {
                write!(stdout, "{}{}", if i == 0 { "\tusers: " } else { "," }, u.escape_ascii())?;
            }
            writeln!(stdout)?;
        }
        for (ip, why) in &out.spared {
            writeln!(stdout, "= {ip}\t{}\tspared: {}", engine.state.records[ip].rules_summary(), spared(why))?;
        }
        for ip in &out.expired {
            writeln!(stdout, "- {ip}\texpired")?;
        }
    }
    if a.print {
        stdout.write_all(&content)?;
    }
    stdout.flush()?;
    drop(stdout);

    summary(cfg, &stats, &batch, &out, list.len(), &engine);
    if a.dry_run {
        info!(
            "dry run: {} would be {}; state and firewall left as they are",
            cfg.output.out.display(),
            if changed { "rewritten" } else { "left as it is" }
        );
        return Ok(());
    }
    if changed {
        store::write_atomic(&cfg.output.out, &content, 0o644)?;
        info!("wrote {} ({} entries)", cfg.output.out.display(), list.len());
    }
    if !changed && engine.stale {
        info!(
            "{} unchanged, but the firewall may lag behind it (a failed reload or watch step): reloading",
            cfg.output.out.display()
        );
    }
    let reloaded = if changed || a.reload || engine.stale {
        // Entries the last run did not publish get their open connections cut.
        let new = badguys::firewall::added(&current.entries, &list);
        cfg.output.firewall.replace(&list, &cfg.output.out, &new).map(|()| true)
    } else {
        info!("{} unchanged: nothing written, firewall not reloaded", cfg.output.out.display());
        Ok(false)
    };
    // The state is saved even when the reload failed (the list is
    // written), marked so that the next sync reloads.
    match &reloaded {
        Ok(_) => {
            engine.published(true);
        }
        Err(_) => engine.stale = true,
    }
    engine.save()?;
    // The process ends here: freeing tens of thousands of records one by
    // one would only cost time.
    std::mem::forget(engine);
    if reloaded? && cfg.output.firewall.name() != "none" {
        info!("{} reloaded", cfg.output.firewall.name());
    }
    Ok(())
}

fn summary(
    cfg: &Config,
    st: &ScanStats,
    b: &badguys::watch::Batch,
    out: &rules::Outcome,
    total: usize,
    e: &Engine<'_>,
) {
    let hits: Vec<String> = cfg.rules.iter().map(|r: Rule| format!("{}={}", r.name(), st.hits(r))).collect();
    let mut skipped = Vec::new();
    if st.overlong > 0 {
        skipped.push(format!("{} overlong lines", st.overlong));
    }
    if st.bad_address > 0 {
        skipped.push(format!("{} lines with an unparsable address", st.bad_address));
    }
    if b.damaged > 0 {
        skipped.push(format!("{} damaged gzip files", b.damaged));
    }
    if st.bare_events > 0 {
        warn!(
            "{} events came from bare lines (sshd -E): OpenSSH writes newlines in user names unescaped there, \
             so a crafted user name can forge a whole line; log to syslog or the journal where you can",
            st.bare_events
        );
    }
    let (allowed, accepted) = out.spared.iter().fold((0, 0), |(a, l), (_, why)| match why {
        Spared::Allowed(_) => (a + 1, l),
        Spared::Accepted => (a, l + 1),
    });
    info!(
        "read {} files, {} new lines, {:.1} MB; matches: {}; logins: {}{}",
        b.files,
        st.lines,
        st.bytes as f64 / 1e6,
        hits.join(" "),
        st.logins,
        if skipped.is_empty() { String::new() } else { format!("; skipped: {}", skipped.join(", ")) }
    );
    let mut expired = String::new();
    if !out.expired.is_empty() || !out.lapsed.is_empty() {
        expired = format!(", {} expired", out.expired.len() + out.lapsed.len());
    }
    info!(
        "addresses: {} new{expired}, {} listed, {} known; spared {} ({} allowlist, {} accepted login)",
        out.listed.len(),
        total,
        e.state.records.len(),
        allowed + accepted,
        allowed,
        accepted
    );
}

fn spared(why: &Spared) -> String {
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

fn watch(cfg: &Config, _a: &WatchArgs) -> Result<()> {
    badguys::sandbox::restrict(cfg)?;
    badguys::watch::watch(cfg)?;
    Ok(())
}

/// Changes the state under the lock, then writes state, list and firewall.
fn change(cfg: &Config, f: impl FnOnce(&mut Engine<'_>, i64) -> Result<bool>) -> Result<bool> {
    let _lock = store::lock(&cfg.output.out, cfg.output.lock_timeout)?;
    let mut engine = Engine::open(cfg)?;
    let now = Clock::system().now();
    let current = store::read(&cfg.output.out)?;
    engine.import(&current, now);
    if !f(&mut engine, now)? {
        return Ok(false);
    }
    engine.dirty = true;
    engine.evaluate(false, now);
    let list = engine.blocklist(&mut |_, _, _| {});
    let content = store::render(&list);
    if content != current.bytes {
        store::write_atomic(&cfg.output.out, &content, 0o644)?;
    }
    // Saved after the reload, marked stale when it failed, so that the
    // next sync reloads even though the list is unchanged.
    let reloaded =
        cfg.output.firewall.replace(&list, &cfg.output.out, &badguys::firewall::added(&current.entries, &list));
    match &reloaded {
        Ok(()) => {
            engine.published(true);
        }
        Err(_) => engine.stale = true,
    }
    engine.save()?;
    reloaded?;
    Ok(true)
}

fn target(s: &str) -> Result<Net> {
    s.parse::<Net>().map_err(|e| Error::Config(format!("{s:?}: {e}")).into())
}

fn ban(cfg: &Config, a: &BanArgs) -> Result<()> {
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
        engine.state.manual.insert(net, Manual { since: now, until, reason });
        Ok(true)
    })?;
    info!("banned {net}{}", until.map(|u| format!(" until {}", iso(u))).unwrap_or_default());
    Ok(())
}

fn unban(cfg: &Config, a: &UnbanArgs) -> Result<()> {
    let net = target(&a.target)?;
    if change(cfg, |engine, _| Ok(rules::unban(&mut engine.state, &net)))? {
        info!("unbanned {net}: it comes back only if it attacks again");
    } else {
        info!("{net} was not banned");
    }
    Ok(())
}

/// Rows of `list`: (entry, record or manual ban).
fn list(cfg: &Config, a: &ListArgs) -> Result<()> {
    let st = &Engine::peek(cfg)?;
    let mut ips: Vec<(&IpAddr, &Record)> = st.records.iter().filter(|(_, r)| a.all || r.listed.is_some()).collect();
    ips.sort_by(|x, y| ip_order(*x.0, *y.0));
    let expire =
        |r: &Record| cfg.policy.expire.map(|e| iso(r.last.saturating_add(e))).unwrap_or_else(|| "never".into());
    let host = badguys::watch::hostname();
    let mut out = io::BufWriter::new(io::stdout().lock());
    if !a.json {
        writeln!(out, "{:<40} {:<20} {:<20} {:<8} {:<20} hits", "address", "first", "last", "source", "expires")?;
    }
    for (ip, r) in ips {
        let source = if r.listed.is_some() { "rule" } else { "seen" };
        if a.json {
            let exp = expire(r);
            writeln!(
                out,
                "{}",
                json_line(&ip.to_string(), Some(r), "listed", &host, &[("source", source), ("expires", &exp)])
            )?;
        } else {
            writeln!(
                out,
                "{:<40} {:<20} {:<20} {:<8} {:<20} {}",
                ip.to_string(),
                iso(r.first),
                iso(r.last),
                source,
                expire(r),
                r.rules_summary()
            )?;
        }
    }
    for (net, m) in &st.manual {
        let until = m.until.map(iso).unwrap_or_else(|| "never".into());
        if a.json {
            let since = iso(m.since);
            let fields = [("source", "manual"), ("since", &since), ("expires", &until), ("reason", &m.reason)];
            writeln!(out, "{}", json_line(&net.to_string(), None, "listed", &host, &fields))?;
        } else {
            writeln!(
                out,
                "{:<40} {:<20} {:<20} {:<8} {:<20} {}",
                net.to_string(),
                iso(m.since),
                "-",
                "manual",
                until,
                m.reason
            )?;
        }
    }
    out.flush()?;
    Ok(())
}

fn explain(cfg: &Config, a: &ExplainArgs) -> Result<()> {
    let ip = parse_ip(a.addr.as_bytes()).ok_or_else(|| Error::Config(format!("{:?} is not an IP address", a.addr)))?;
    let st = &Engine::peek(cfg)?;
    let mut o = io::BufWriter::new(io::stdout().lock());
    let listed_file = store::read(&cfg.output.out)?.entries.iter().any(|n| n.contains_ip(ip));
    writeln!(
        o,
        "{ip}: {}",
        if listed_file { format!("listed in {}", cfg.output.out.display()) } else { "not listed".into() }
    )?;
    for (net, m) in st.manual.iter().filter(|(n, _)| n.contains_ip(ip)) {
        let until = m.until.map(iso).unwrap_or_else(|| "never".into());
        writeln!(o, "  manual ban of {net} since {} until {until}: {}", iso(m.since), m.reason)?;
    }
    match st.records.get(&ip) {
        None => writeln!(o, "  never seen in the logs read")?,
        Some(r) => {
            writeln!(o, "  seen {} to {}", iso(r.first), iso(r.last))?;
            for rule in Rule::ALL.iter().filter(|x| r.hits[**x as usize] > 0) {
                let on = if cfg.rules.contains(*rule) { "" } else { " (rule not enabled now)" };
                writeln!(o, "  {}: {} hits{on}", rule.name(), r.hits[*rule as usize])?;
            }
            if !r.users.is_empty() {
                let users: Vec<String> =
                    r.users.iter().map(|u| format!("{:?}", u.escape_ascii().to_string())).collect();
                writeln!(o, "  user names tried (latest last): {}", users.join(", "))?;
            }
            if r.logins > 0 {
                writeln!(o, "  logged in successfully {} times, last {}", r.logins, iso(r.last_login))?;
            }
            let p = &cfg.policy;
            let window = p.window.map(|w| format!(" within {w}s")).unwrap_or_default();
            match r.listed {
                Some(t) => {
                    writeln!(o, "  listed since {} by the rules", iso(t))?;
                    if let Some(e) = p.expire {
                        writeln!(o, "  leaves the list at {} unless seen again", iso(r.last.saturating_add(e)))?;
                    }
                }
                None if rules::qualifies(r, p) => {
                    writeln!(o, "  meets the threshold ({}{window}) but is not listed", p.threshold)?
                }
                None => writeln!(
                    o,
                    "  below the threshold: {} recent attacks, {} needed{window}",
                    r.recent.len(),
                    p.threshold
                )?,
            }
            if r.logins > 0 && !p.ban_accepted {
                writeln!(o, "  spared: it logged in successfully (--ban-accepted lists it anyway)")?;
            }
        }
    }
    if let Some(e) = cfg.output.allow.find(ip) {
        writeln!(o, "  spared: allowlist {} ({})", e.net, allow_source(&e.source))?;
    }
    o.flush()?;
    Ok(())
}

fn check(conf: Option<&std::path::Path>, a: &CheckArgs) -> Result<()> {
    let cfg = Config::load(conf, Some(&a.scan), &a.output, None)?;
    let mut problems: Vec<String> = Vec::new();
    if cfg.journal.is_some() && !badguys::source::journal::available() {
        problems.push(format!("journal: {} cannot be run", badguys::source::journal::program()));
    }
    for log in cfg.logs.iter().filter(|l| cfg.journal.is_none() && !badguys::source::is_stdin(l)) {
        // Never blocks, even on a FIFO.
        if let Err(e) = badguys::source::open_log(log) {
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
    if problems.is_empty() {
        println!("configuration OK");
        return Ok(());
    }
    for p in &problems {
        println!("{p}");
    }
    Err(Error::Config(format!("{} problems found", problems.len())).into())
}

/// Loads the list file into the firewall, through the same filters as
/// every other way into it: the allowlist (and the reserved ranges) is
/// carved out, and a network wider than /8 or /32 loads only when it is a
/// manual ban given with `--force` (in the state).
fn reload(cfg: &Config) -> Result<()> {
    let o = &cfg.output;
    let _lock = store::lock(&o.out, o.lock_timeout)?;
    let current = store::read(&o.out)?;
    if !current.exists {
        return Err(Error::Output { path: o.out.clone(), err: io::Error::from(io::ErrorKind::NotFound) }.into());
    }
    for j in &current.junk {
        warn!("{}:{}: not an address or network, not loaded: \"{}\"", o.out.display(), j.line, j.text);
    }
    // Manual bans (wide ones were given with --force), and the pieces the
    // allowlist carved out of them.
    let manual: Vec<Net> = Engine::peek(cfg)?.manual.into_keys().collect();
    let forced = |net: &Net| manual.iter().any(|m| m.contains(net));
    let mut entries = current.entries;
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
    if !current.junk.is_empty() || list != entries {
        // pf reads the file itself: hand it a clean copy, never the junk
        // nor an allowed address.
        store::write_atomic(&o.out, &store::render(&list), 0o644)?;
    }
    // The list as it was: nothing is new, no state is killed.
    o.firewall.replace(&list, &o.out, &[])?;
    info!("{}: {} entries loaded into {}", o.out.display(), list.len(), o.firewall.name());
    Ok(())
}

fn rules_cmd() -> Result<()> {
    let mut out = io::stdout().lock();
    for r in Rule::ALL {
        let on = if r.default_on() { "default" } else { "opt-in " };
        writeln!(out, "{:<16} {on}  {}", r.name(), r.describe())?;
    }
    Ok(())
}

/// The figures `stats` and `report` show.
fn view_data(cfg: &Config, v: &badguys::cli::ViewArgs) -> Result<badguys::report::Data> {
    let now = Clock::system().now();
    let since =
        v.since.as_deref().map(parse_duration).transpose().map_err(|e| Error::Config(format!("--since: {e}")))?;
    let o = badguys::report::Options { now, since: since.map(|s| now - s), top: v.top.unwrap_or(10), max_dots: 400 };
    let history = store::history::path_for(&cfg.output.state, v.history.as_deref());
    let d = badguys::report::data::gather(&cfg.output.state, history.as_deref(), &v.geo, &o)?;
    if let Some(n) = &d.geo_note {
        info!("{n}");
    }
    for a in d.attributions.iter().filter(|a| a.stale) {
        warn!("{}: built {}, over 90 days ago: update it", a.path.display(), iso(a.built));
    }
    Ok(d)
}

fn stats(cfg: &Config, a: &badguys::cli::StatsArgs) -> Result<()> {
    let by: badguys::stats::By = a.by.parse().map_err(|e| Error::Config(format!("--by: {e}")))?;
    let d = view_data(cfg, &a.view)?;
    let top = a.view.top.unwrap_or(10);
    let text = if a.json {
        format!("{}\n", badguys::stats::json(&d, by, top))
    } else if a.prometheus {
        badguys::stats::prometheus(&d)
    } else {
        badguys::stats::text(&d, by, top)
    };
    io::stdout().lock().write_all(text.as_bytes())?;
    Ok(())
}

fn report(cfg: &Config, a: &badguys::cli::ReportArgs) -> Result<()> {
    let refresh = a
        .refresh
        .as_deref()
        .map(parse_duration)
        .transpose()
        .map_err(|e| Error::Config(format!("--refresh: {e}")))?
        .map(|s| std::time::Duration::from_secs(s.max(1) as u64));
    let d = view_data(cfg, &a.view)?;
    let path = a.file.clone().unwrap_or_else(|| "badguys-report.html".into());
    badguys::report::write(&path, &d, refresh)?;
    info!("wrote {}", path.display());
    Ok(())
}
