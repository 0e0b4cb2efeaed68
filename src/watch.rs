//! `badguys watch`: a first full step, then follow the logs with notify
//! (inotify, kqueue) or the journal follower, batching lines that arrive
//! together into one engine step that adds the new bans to the firewall;
//! a full step (replace) every `--reconcile`, on SIGHUP and whenever the
//! list file or the state was changed by someone else; a clean stop on
//! SIGTERM/SIGINT. Owns the timers and the hooks; the engine does the rest.

use std::collections::BTreeSet;
use std::fs;
use std::io;
use std::path::{Path, PathBuf};
use std::sync::mpsc;
use std::time::{Duration, Instant};

use tracing::{debug, info, warn};

use crate::config::Config;
use crate::engine::{Engine, Mode, Save};
use crate::hooks::{Fired, Hook};
use crate::parse::{Clock, ScanStats};
use crate::show::{hostname, json_line, Extra};
use crate::source;
use crate::source::journal::Follower;
use crate::store;
use crate::Error;

/// Messages for the watch loop.
enum Msg {
    Fs,
    Signal(nix::sys::signal::Signal),
}

/// `badguys watch`: a first sync, then follow the logs until SIGTERM/SIGINT.
pub fn watch(cfg: &Config) -> Result<(), Error> {
    use nix::sys::signal::{SigSet, Signal};
    use notify::Watcher;

    // Signals are taken by one thread with sigwait(): handlers that only
    // set a flag, without the flag.
    let mut sigs = SigSet::empty();
    for s in [Signal::SIGTERM, Signal::SIGINT, Signal::SIGHUP] {
        sigs.add(s);
    }
    sigs.thread_block().map_err(|e| Error::System { what: "cannot block signals".into(), err: e.into() })?;
    let (tx, rx) = mpsc::channel::<Msg>();
    {
        let tx = tx.clone();
        std::thread::spawn(move || {
            crate::child::take_signals(|| sigs.wait(), |sig| tx.send(Msg::Signal(sig)).is_ok(), std::thread::sleep)
        });
    }

    // The journal, when it was chosen for want of the default log, is
    // followed only if journalctl runs (the probe happens here, where the
    // journal is opened); else the log is waited for.
    let journal = cfg.journal.is_some() && (!cfg.journal_auto || crate::source::journal::available());
    // A log that is not a regular file (a FIFO) is refused at the start,
    // as sync refuses it, rather than retried for ever.
    for log in cfg.logs.iter().filter(|l| !journal && !source::is_stdin(l)) {
        if let Ok(m) = fs::metadata(log) {
            source::check_log(&m, log)?;
        }
    }
    let mut engine = Engine::open(cfg)?;
    // Opened before the sandbox closes the file system: the hooks' JSON
    // and the report say where the addresses are.
    let geo = crate::geo::Geo::open(&cfg.geo)?;
    let mut report = cfg.report.as_ref().map(|(path, every)| Report { path: path.clone(), every: *every, last: None });
    let host = hostname();
    let hook = |name, argv| Hook::new(name, argv, cfg.hooks.timeout, 2).pass_env(&cfg.hooks.env);
    let on_ban = cfg.hooks.on_ban.clone().map(|argv| hook("on-ban", argv));
    let on_login = cfg.hooks.on_login.clone().map(|argv| hook("on-login", argv));
    let mut file = FileTimer::default();

    // The watcher: each log's directory, events filtered to the log's files.
    let names: Vec<(PathBuf, String)> = cfg
        .logs
        .iter()
        .filter(|_| !journal)
        .filter(|l| !source::is_stdin(l))
        .filter_map(|l| Some((parent(l).to_path_buf(), l.file_name()?.to_str()?.to_string())))
        .collect();
    let watch_tx = tx.clone();
    let filter = names.clone();
    let mut watcher = notify::recommended_watcher(move |res: notify::Result<notify::Event>| {
        if let Ok(ev) = res {
            let ours = ev.paths.iter().any(|p| {
                filter.iter().any(|(_, base)| {
                    p.file_name().and_then(|n| n.to_str()).is_some_and(|n| n.starts_with(base.as_str()))
                })
            });
            if ours && !matches!(ev.kind, notify::EventKind::Access(_)) {
                let _ = watch_tx.send(Msg::Fs);
            }
        }
    })
    .map_err(|e| Error::System { what: "cannot watch files".into(), err: notify_error(e) })?;
    let dirs: BTreeSet<PathBuf> = names.iter().map(|(d, _)| d.clone()).collect();
    for d in &dirs {
        watcher
            .watch(d, notify::RecursiveMode::NonRecursive)
            .map_err(|e| Error::Input { path: d.clone(), err: io::Error::other(e.to_string()) })?;
    }
    let source = if journal {
        "the systemd journal".to_string()
    } else {
        cfg.logs.iter().map(|l| l.display().to_string()).collect::<Vec<_>>().join(", ")
    };
    info!("watching {source} (firewall: {})", cfg.output.firewall.name());

    let mut follower: Option<Follower> = None;
    let mut retry: Option<Duration> = None;
    if journal {
        info!(
            "reading sshd's entries from the systemd journal{}",
            if cfg.journal_auto { " (no /var/log/auth.log here)" } else { "" }
        );
    }
    let mut stats = ScanStats::default();
    let mut full = true; // the first step reconciles everything
    let mut last_full = Instant::now();
    let mut last_save = Instant::now();
    let mut stop = false;
    loop {
        // One step: under the lock, read, decide, publish.
        let hooks = Hooks { host: &host, on_ban: on_ban.as_ref(), on_login: on_login.as_ref(), geo: &geo };
        match step(&mut engine, &mut file, full, &mut stats, &hooks) {
            Ok(()) => {
                if full {
                    last_full = Instant::now();
                }
                full = false;
                retry = None;
                // The first step read the journal up to now: follow it from there.
                if let (None, Some(j), true) = (&follower, &cfg.journal, journal) {
                    let wake = tx.clone();
                    follower = Some(engine.follow_journal(j, move || {
                        let _ = wake.send(Msg::Fs);
                    }));
                }
            }
            Err(e @ (Error::Input { .. } | Error::NoDefaultLog { .. })) => {
                // The log missing for a while (rotation without create): wait.
                debug!("{e}; waiting for it");
                retry = Some(Duration::from_secs(5));
            }
            Err(e) => {
                warn!("{e}; trying again in {}s", retry.map_or(1, |r| r.as_secs().min(30) * 2));
                retry = Some(retry.map_or(Duration::from_secs(1), |r| (r * 2).min(Duration::from_secs(60))));
                full = true;
            }
        }
        if file.due(&engine) == Some(Duration::ZERO) || (stop && engine.file_lags) {
            // Under the lock, and only over a file nobody else edited since.
            let lock = store::lock(&cfg.output.out, cfg.output.lock_timeout);
            let res = lock.and_then(|_l| {
                if engine.list_unedited() {
                    file.write(&mut engine)
                } else {
                    full = true;
                    Ok(())
                }
            });
            if let Err(e) = res {
                warn!("{e}");
            }
        }
        if engine.dirty && (last_save.elapsed() >= SAVE_EVERY || stop) {
            let lock = store::lock(&cfg.output.out, cfg.output.lock_timeout);
            if let Err(e) = lock.and_then(|_l| engine.save()) {
                warn!("{e}");
            }
            last_save = Instant::now();
        }
        if let Some(r) = report.as_mut().filter(|r| r.due() == Duration::ZERO) {
            r.write(cfg, &engine.state, &geo);
        }
        if stop {
            break;
        }
        // Wait for a change, a signal or the next reconcile; then gather
        // what else arrives within 25 ms into the same batch (a flood is
        // batched anyway: each step reads everything up to the end).
        let until_full = cfg.reconcile.saturating_sub(last_full.elapsed());
        let until_save = if engine.dirty { SAVE_EVERY.saturating_sub(last_save.elapsed()) } else { until_full };
        let until_flush = file.due(&engine).unwrap_or(until_full);
        let until_report = report.as_ref().map_or(until_full, Report::due);
        let wait = until_full
            .min(until_save)
            .min(until_flush)
            .min(until_report)
            .min(retry.unwrap_or(until_full))
            .max(Duration::from_millis(50));
        let mut got = match rx.recv_timeout(wait) {
            Ok(m) => vec![m],
            Err(mpsc::RecvTimeoutError::Timeout) => {
                if last_full.elapsed() >= cfg.reconcile || retry.is_some() {
                    full = true;
                }
                Vec::new()
            }
            Err(mpsc::RecvTimeoutError::Disconnected) => break,
        };
        if !got.is_empty() {
            let deadline = Instant::now() + Duration::from_millis(25);
            while let Some(left) = deadline.checked_duration_since(Instant::now()) {
                match rx.recv_timeout(left) {
                    Ok(m) => got.push(m),
                    Err(_) => break,
                }
            }
        }
        for m in got {
            match m {
                Msg::Fs => {}
                Msg::Signal(Signal::SIGHUP) => {
                    info!("SIGHUP: rereading the allow file and reconciling");
                    full = true;
                    // The allow file is part of the configuration: reload it.
                    match cfg.reload_allow() {
                        Ok(allow) => engine.set_allow(allow),
                        Err(e) => warn!("{e}; keeping the old allowlist"),
                    }
                }
                Msg::Signal(sig) => {
                    info!("{sig}: finishing");
                    stop = true;
                }
            }
        }
    }
    drop(follower);
    if let Some(h) = &on_ban {
        h.drain(Duration::from_secs(5));
    }
    if let Some(h) = &on_login {
        h.drain(Duration::from_secs(5));
    }
    info!("stopped");
    Ok(())
}

/// The HTML report watch rewrites on its own timer (`--report FILE
/// --report-every D`), never on every batch: the page reloads itself as
/// often.
struct Report {
    path: PathBuf,
    every: Duration,
    last: Option<Instant>,
}

impl Report {
    fn due(&self) -> Duration {
        self.last.map_or(Duration::ZERO, |t| self.every.saturating_sub(t.elapsed()))
    }

    /// Writes it from the state as it is in memory and the history as
    /// saved (at most [`SAVE_EVERY`] behind); a failure is warned about
    /// and tried again at the next interval.
    fn write(&mut self, cfg: &Config, state: &crate::state::State, geo: &crate::geo::Geo) {
        self.last = Some(Instant::now());
        let now = Clock::system().now();
        let o = crate::report::Options { now, since: None, top: 10, max_dots: 400 };
        let res = (|| {
            let h = match cfg.history.as_deref() {
                Some(p) => store::history::History::open_existing(p)?,
                None => None,
            };
            let d = crate::report::Data::build(state, h.as_ref(), geo, &o)?;
            crate::report::write(&self.path, &d, Some(self.every))
        })();
        match res {
            Ok(()) => debug!("wrote {}", self.path.display()),
            Err(e) => warn!("report: {e}"),
        }
    }
}

/// What a step needs to fire the hooks.
struct Hooks<'a> {
    host: &'a str,
    on_ban: Option<&'a Hook>,
    on_login: Option<&'a Hook>,
    geo: &'a crate::geo::Geo,
}

/// When watch last wrote the blocklist file: under a flood it is
/// rewritten at most every [`FILE_EVERY`]; the firewall gets every batch at
/// once.
#[derive(Default)]
struct FileTimer {
    last_write: Option<Instant>,
}

/// The blocklist file is rewritten at most this often under a flood.
const FILE_EVERY: Duration = Duration::from_secs(2);

/// The state file is written at most this often (and at exit); a crash in
/// between loses nothing: the cursors in the file are as old as its records.
const SAVE_EVERY: Duration = Duration::from_secs(10);

impl FileTimer {
    /// How long until the lagging file is due to be written.
    fn due(&self, engine: &Engine<'_>) -> Option<Duration> {
        engine.file_lags.then(|| self.last_write.map_or(Duration::ZERO, |t| FILE_EVERY.saturating_sub(t.elapsed())))
    }

    fn write(&mut self, engine: &mut Engine<'_>) -> Result<(), Error> {
        engine.write_file()?;
        self.last_write = Some(Instant::now());
        Ok(())
    }
}

/// One watch step under the lock: read, decide, then either add the new
/// bans to the firewall (a batch) or, on a full step, replace everything.
fn step(
    engine: &mut Engine<'_>,
    file: &mut FileTimer,
    full: bool,
    stats: &mut ScanStats,
    hooks: &Hooks<'_>,
) -> Result<(), Error> {
    let (host, on_ban, on_login) = (hooks.host, hooks.on_ban, hooks.on_login);
    let place = |ip: &std::net::IpAddr| hooks.geo.lookup(*ip);
    let cfg = engine.cfg;
    let lock = store::lock(&cfg.output.out, cfg.output.lock_timeout)?;
    if full {
        lock.sweep(&[&cfg.output.out, &cfg.output.state]);
    }
    let reloaded = engine.refresh()?;
    let mut clock = Clock::system();
    let batch = engine.ingest(&mut clock, stats)?;
    let out = engine.evaluate(full, clock.now());
    let edited = !engine.list_unedited();
    let full = full || reloaded || edited || !out.expired.is_empty() || !out.lapsed.is_empty();
    let full = full || engine.escalates(&out.listed);
    let done = if full {
        let current = engine.read_list(None)?;
        engine.load_includes(clock.now());
        engine.import(&current, clock.now());
        let list = engine.blocklist(&mut |net, e, pieces| {
            if !net.is_host() {
                debug!("{net} overlaps allowed {}: {pieces} pieces kept", e.net);
            }
        });
        let done = engine.publish(Mode::Replace { list, current: &current, reload: true, kill: true }, Save::Later)?;
        file.last_write = Some(Instant::now());
        done
    } else {
        let done = engine.publish(Mode::Add, Save::Later)?;
        if file.due(engine) == Some(Duration::ZERO) {
            file.write(engine)?;
        }
        done
    };
    let banned = done.banned;
    for ip in &banned {
        info!("banned {ip} ({})", engine.state.records[ip].rules_summary());
    }
    for ip in &out.expired {
        info!("expired {ip}");
    }
    for net in &out.lapsed {
        info!("manual ban of {net} lapsed");
    }
    drop(lock);
    if let Some(h) = on_ban.filter(|_| !banned.is_empty()) {
        let lines: String = banned
            .iter()
            .map(|ip| {
                let extra = Extra::default().at(place(ip));
                json_line(&ip.to_string(), engine.state.records.get(ip), "ban", host, extra) + "\n"
            })
            .collect();
        fire(h, "ban", lines, banned.iter().map(|ip| ip.to_string()).collect(), host);
    }
    if let Some(h) = on_login.filter(|_| !batch.alarms.is_empty()) {
        let lines: String = batch
            .alarms
            .iter()
            .map(|(ip, user)| {
                let extra = Extra { user: Some(user), ..Extra::default() }.at(place(ip));
                json_line(&ip.to_string(), engine.state.records.get(ip), "login", host, extra) + "\n"
            })
            .collect();
        for (ip, user) in &batch.alarms {
            warn!("login from previously banned {ip} as {}", user.escape_ascii());
        }
        fire(h, "login", lines, batch.alarms.iter().map(|(ip, _)| ip.to_string()).collect(), host);
    }
    Ok(())
}

fn fire(h: &Hook, event: &str, lines: String, addrs: Vec<String>, host: &str) {
    let env = vec![
        ("BADGUYS_EVENT".to_string(), event.to_string()),
        ("BADGUYS_COUNT".to_string(), addrs.len().to_string()),
        ("BADGUYS_ADDRS".to_string(), addrs.iter().take(50).cloned().collect::<Vec<_>>().join(" ")),
        ("BADGUYS_HOST".to_string(), host.to_string()),
    ];
    if let Fired::Dropped = h.fire(lines.into_bytes(), env) {
        warn!("{event} hook still busy: dropped a batch of {} addresses", addrs.len());
    }
}

/// notify's error as the I/O error underneath, where there is one.
fn notify_error(e: notify::Error) -> io::Error {
    match e.kind {
        notify::ErrorKind::Io(err) => err,
        _ => io::Error::other(e.to_string()),
    }
}

fn parent(p: &Path) -> &Path {
    match p.parent() {
        Some(d) if !d.as_os_str().is_empty() => d,
        _ => Path::new("."),
    }
}
