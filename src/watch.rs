//! Wiring of the pipeline for `sync` and `watch`: the [`Engine`] loads the
//! state (or rebuilds it when it is corrupt), reads what is new in every log
//! through the cursors, counts events, decides, and publishes the blocklist,
//! the state and the firewall. `sync` is one engine step; [`watch`] runs a
//! first step, then follows the logs with notify (inotify, kqueue), batching
//! lines that arrive together into one firewall update, reconciling
//! everything periodically and on SIGHUP, and stopping cleanly on
//! SIGTERM/SIGINT.

use std::collections::BTreeSet;
use std::fs;
use std::io;
use std::net::IpAddr;
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};
use std::sync::mpsc;
use std::time::{Duration, Instant};

use tracing::{debug, info, warn};

use crate::addr::Net;
use crate::config::Config;
use crate::hooks::{Fired, Hook};
use crate::parse::{Clock, Rule, ScanStats, Scanner, What};
use crate::rules::{self, Outcome};
use crate::source::journal::{Feed, Follower, Journal};
use crate::source::{self, Reader};
use crate::state::{AllowEntry, Allowlist, Manual, Meta, Record, State};
use crate::store::{self, statefile};
use crate::Error;

/// What one [`Engine::ingest`] read and found. (The addresses that
/// reached the threshold stay in the engine until they are decided and
/// published: see [`Engine::evaluate`] and [`Engine::published`].)
#[derive(Debug, Default)]
pub struct Batch {
    /// Addresses that are or were listed and logged in successfully.
    pub alarms: Vec<(IpAddr, Vec<u8>)>,
    /// Files read (or found unchanged).
    pub files: usize,
    /// Damaged gzip files.
    pub damaged: usize,
    /// Whether anything new was read.
    pub progressed: bool,
}

/// The state, the readers and the scanners of one run.
pub struct Engine<'c> {
    pub cfg: &'c Config,
    pub state: State,
    reader: Reader,
    /// One scanner per log, kept across batches so that kex pairs split
    /// between two reads are kept.
    scanners: Vec<Scanner>,
    /// The state file as this engine last read or wrote it, to notice
    /// another process (`ban`, `sync`) writing it.
    state_seen: Option<(u64, u64, i64, i64)>,
    /// Why the state was rebuilt, when it was.
    pub rebuilt: Option<String>,
    /// Whether the state changed since it was last saved.
    pub dirty: bool,
    /// The allowlist (reloaded on SIGHUP).
    pub allow: Allowlist,
    /// Journal entries gathered by a follower (watch), read instead of
    /// running journalctl once.
    feed: Option<Feed>,
    /// A dry run: nothing is written, not even a corrupt state set aside.
    dry: bool,
    /// Addresses that reached the threshold and are not evaluated yet:
    /// kept when a step fails after counting, so the next step decides them.
    hot: Vec<IpAddr>,
    /// Addresses an evaluation listed whose publish (list file and
    /// firewall) has not succeeded yet: kept across failed steps.
    unpublished: Vec<IpAddr>,
    /// The list file or the firewall may lag behind the records: read from
    /// the state file, set while a full publish has not succeeded. A sync
    /// then neither skips ([`nothing_new`]) nor leaves the firewall alone.
    pub stale: bool,
}

impl<'c> Engine<'c> {
    /// Loads the state. A missing file is a first run; a corrupt one is
    /// reported, kept aside as `STATE.corrupt`, and rebuilt from the logs.
    pub fn open(cfg: &'c Config) -> Result<Engine<'c>, Error> {
        Engine::new(cfg, false)
    }

    /// Loads the state for a dry run, which writes nothing at all: a
    /// corrupt state is reported, left where it is, and read as empty.
    /// [`Engine::save`] refuses to write.
    pub fn open_dry_run(cfg: &'c Config) -> Result<Engine<'c>, Error> {
        Engine::new(cfg, true)
    }

    fn new(cfg: &'c Config, dry: bool) -> Result<Engine<'c>, Error> {
        let mut e = Engine {
            cfg,
            state: State::default(),
            reader: Reader::new(),
            scanners: Vec::new(),
            state_seen: None,
            rebuilt: None,
            dirty: false,
            allow: cfg.output.allow.clone(),
            feed: None,
            dry,
            hot: Vec::new(),
            unpublished: Vec::new(),
            stale: false,
        };
        e.load_state()?;
        Ok(e)
    }

    fn load_state(&mut self) -> Result<(), Error> {
        let path = &self.cfg.output.state;
        self.state_seen = identity(path);
        match statefile::read(path)? {
            None => self.state = State::default(),
            Some(Ok(st)) => self.state = st,
            Some(Err(why)) if self.dry => {
                warn!("state file {} is unusable ({why}); dry run: left as it is, read as empty", path.display());
                self.state = State::default();
                self.rebuilt = Some(why.to_string());
            }
            Some(Err(why)) => {
                let aside = corrupt_path(path);
                warn!(
                    "state file {} is unusable ({why}); kept as {}, rebuilding from the logs",
                    path.display(),
                    aside.display()
                );
                let _ = fs::rename(path, &aside);
                self.state = State::default();
                self.rebuilt = Some(why.to_string());
                self.dirty = true;
            }
        }
        self.stale = self.state.meta.stale;
        Ok(())
    }

    /// The state for a command that only looks (`list`, `explain`): a
    /// corrupt file is reported, left where it is, and read as empty.
    pub fn peek(cfg: &Config) -> Result<State, Error> {
        match statefile::read(&cfg.output.state)? {
            None => Ok(State::default()),
            Some(Ok(st)) => Ok(st),
            Some(Err(why)) => {
                warn!("state file {} is unusable ({why}); the next sync rebuilds it", cfg.output.state.display());
                Ok(State::default())
            }
        }
    }

    /// Reloads the state if another process wrote it since this engine
    /// last did (call with the lock held).
    pub fn refresh(&mut self) -> Result<bool, Error> {
        if identity(&self.cfg.output.state) == self.state_seen {
            return Ok(false);
        }
        debug!("state file changed on disk: reloading it");
        self.load_state()?;
        Ok(true)
    }

    /// Reads what is new in every log and counts it. Any log that cannot
    /// be read stops the step before anything is written.
    pub fn ingest(&mut self, clock: &mut Clock, stats: &mut ScanStats) -> Result<Batch, Error> {
        let cfg = self.cfg;
        let mut batch = Batch::default();
        // Addresses that reached the threshold; evaluate() sorts and dedups.
        let mut hot = Vec::new();
        if let Some(j) = &cfg.journal {
            let res = self.ingest_journal(j, clock, stats, &mut batch, &mut hot);
            self.keep_hot(hot);
            res?;
            if batch.progressed {
                self.dirty = true;
            }
            return Ok(batch);
        }
        let mut tracker = source::Tracker::new(std::mem::take(&mut self.state.cursors));
        while self.scanners.len() < cfg.logs.len() {
            self.scanners.push(Scanner::new(cfg.rules));
        }
        let result = (|| {
            for (li, log) in cfg.logs.iter().enumerate() {
                let scanner = &mut self.scanners[li];
                let before = scanner.stats().clone();
                let mut sink =
                    Sink { state: &mut self.state, cfg, clock: &mut *clock, hot: &mut hot, alarms: &mut batch.alarms };
                if source::is_stdin(log) {
                    let cell = std::cell::RefCell::new(&mut *scanner);
                    self.reader
                        .read_stream(
                            &mut io::stdin().lock(),
                            &mut |c| cell.borrow_mut().scan(c, &mut |ev| sink.event(ev)),
                            &mut || cell.borrow_mut().note_overlong(),
                        )
                        .map_err(|err| Error::Input { path: log.clone(), err })?;
                    batch.files += 1;
                    batch.progressed = true;
                } else {
                    if cfg.default_log && !log.exists() {
                        return Err(Error::NoDefaultLog { path: log.clone() });
                    }
                    let files = source::files(log, cfg.rotated);
                    source::delay_open();
                    for (path, live) in files {
                        let cell = std::cell::RefCell::new(&mut *scanner);
                        let res = self.reader.read_file(
                            &path,
                            tracker.known(),
                            live,
                            &mut |c| cell.borrow_mut().scan(c, &mut |ev| sink.event(ev)),
                            &mut || cell.borrow_mut().note_overlong(),
                        );
                        match res {
                            Ok(p) => {
                                batch.files += 1;
                                if let Some(why) = &p.stats.damaged {
                                    batch.damaged += 1;
                                    warn!("{}: damaged gzip, used what came before the damage: {why}", path.display());
                                }
                                if tracker.note(&p) {
                                    batch.progressed = true;
                                }
                                if p.stats.bytes > 0 {
                                    debug!("{}: read {} bytes from offset {}", path.display(), p.stats.bytes, p.from);
                                }
                            }
                            // A rotated file can vanish between listing and opening.
                            Err(Error::Input { err, .. }) if !live && err.kind() == io::ErrorKind::NotFound => {
                                debug!("{}: vanished while reading (rotation?)", path.display());
                            }
                            Err(e) => return Err(e),
                        }
                    }
                }
                add_stats(stats, &before, scanner.stats());
            }
            Ok(())
        })();
        // Also after a failed read: cursors of files not read now stay
        // while they may be read later (see Tracker::finish).
        self.state.cursors = tracker.finish(&cfg.logs, cfg.rotated);
        self.keep_hot(hot);
        result?;
        if batch.progressed {
            self.dirty = true;
        }
        Ok(batch)
    }

    /// What was counted stays counted even when the step then fails: the
    /// addresses wait in the engine for the next evaluation.
    fn keep_hot(&mut self, hot: Vec<IpAddr>) {
        if !hot.is_empty() {
            self.hot.extend(hot);
            self.dirty = true;
        }
    }

    fn ingest_journal(
        &mut self,
        j: &Journal,
        clock: &mut Clock,
        stats: &mut ScanStats,
        batch: &mut Batch,
        hot: &mut Vec<IpAddr>,
    ) -> Result<(), Error> {
        let cfg = self.cfg;
        if self.scanners.is_empty() {
            self.scanners.push(Scanner::new(cfg.rules));
        }
        let scanner = &mut self.scanners[0];
        let before = scanner.stats().clone();
        let mut sink = Sink { state: &mut self.state, cfg, clock, hot, alarms: &mut batch.alarms };
        batch.files = 1;
        let cursor = match &self.feed {
            Some(feed) => {
                let (lines, cursor) = feed.take();
                scanner.scan(&lines, &mut |ev| sink.event(ev));
                cursor
            }
            None => {
                let mut buf: Vec<u8> = Vec::with_capacity(256 * 1024);
                let from = sink.state.journal.clone();
                let r = {
                    let mut line = |l: &[u8]| {
                        buf.extend_from_slice(l);
                        if buf.len() >= 256 * 1024 {
                            scanner.scan(&buf, &mut |ev| sink.event(ev));
                            buf.clear();
                        }
                    };
                    j.read(from.as_deref(), &mut line)?
                };
                scanner.scan(&buf, &mut |ev| sink.event(ev));
                if r.vacuumed {
                    warn!("the journal no longer has the last entry read (vacuumed?): read all that is there");
                }
                if r.bad > 0 {
                    warn!("journal: {} entries were not JSON objects and were skipped", r.bad);
                }
                if r.not_root > 0 {
                    warn!("journal: {} entries not from root (_UID other than 0) were ignored", r.not_root);
                }
                debug!("journal: {} new entries", r.entries);
                r.cursor
            }
        };
        if let Some(c) = cursor {
            self.state.journal = Some(c);
            batch.progressed = true;
        }
        add_stats(stats, &before, self.scanners[0].stats());
        Ok(())
    }

    /// Follow the journal with `journalctl --follow` from the cursor on;
    /// `wake` is sent whenever entries arrive.
    fn follow_journal(&mut self, j: &Journal, wake: mpsc::Sender<Msg>) -> Follower {
        let feed = Feed::default();
        self.feed = Some(feed.clone());
        Follower::start(j.clone(), self.state.journal.clone(), feed, move || {
            let _ = wake.send(Msg::Fs);
        })
    }

    /// Lists, spares and expires (see [`rules::evaluate`]): every record
    /// when `all`, else the addresses that reached the threshold since the
    /// last evaluation (however many failed steps ago). Marks the state
    /// dirty when it changed; the newly listed wait for [`Engine::published`].
    pub fn evaluate(&mut self, all: bool, now: i64) -> Outcome {
        let hot = std::mem::take(&mut self.hot);
        let only = if all { None } else { Some(&hot[..]) };
        let out = rules::evaluate(&mut self.state, only, &self.allow, &self.cfg.policy, now);
        if !out.listed.is_empty() || !out.expired.is_empty() || !out.lapsed.is_empty() {
            self.dirty = true;
        }
        self.unpublished.extend_from_slice(&out.listed);
        out
    }

    /// The listed addresses not published yet, as hosts.
    pub fn unpublished(&self) -> Vec<Net> {
        let listed = |ip: &&IpAddr| self.state.records.get(ip).is_some_and(|r| r.listed.is_some());
        self.unpublished.iter().filter(listed).map(|ip| Net::host(*ip)).collect()
    }

    /// The list file and the firewall took everything decided so far (all
    /// of it when `full`): returns the newly listed addresses that are now
    /// published, sorted, for the log and the hooks.
    pub fn published(&mut self, full: bool) -> Vec<IpAddr> {
        let mut ips = std::mem::take(&mut self.unpublished);
        ips.retain(|ip| self.state.records.get(ip).is_some_and(|r| r.listed.is_some()));
        ips.sort_by(|a, b| crate::addr::ip_order(*a, *b));
        ips.dedup();
        if full {
            self.stale = false;
        }
        ips
    }

    /// Entries of the blocklist file that no rule or ban put there (added
    /// by hand, or the list of the script badguys replaces) become manual
    /// bans, so they are kept. An entry whose address has a record is
    /// badguys' own (expired or unbanned since) and is not taken back. A
    /// network wider than an IPv4 /8 or an IPv6 /32 is refused with a
    /// warning (only `ban --force` lists one).
    pub fn import(&mut self, current: &store::Current, now: i64) -> usize {
        let mut n = 0;
        // What the allowlist carved out of a manual network is listed in
        // pieces: a piece is that ban's, not a new one.
        let nets: Vec<Net> = self.state.manual.keys().filter(|m| !m.is_host()).copied().collect();
        for net in &current.entries {
            let own = net.is_host()
                && self.state.records.get(&net.addr()).is_some_and(|r| r.listed.is_some() || r.attacks() > 0);
            if own || self.state.manual.contains_key(net) || nets.iter().any(|m| m.contains(net)) {
                continue;
            }
            if let Err(e) = crate::addr::check_width(*net, false) {
                warn!("{}: {e}: dropped (`badguys ban --force {net}` lists it)", self.cfg.output.out.display());
                continue;
            }
            let reason = format!("found in {}", self.cfg.output.out.display());
            self.state.manual.insert(*net, Manual { since: now, until: None, reason });
            n += 1;
        }
        if n > 0 {
            self.dirty = true;
        }
        n
    }

    /// The blocklist the state calls for; `cut` hears of every entry the
    /// allowlist carves something out of (see [`rules::blocklist`]).
    pub fn blocklist(&self, cut: &mut dyn FnMut(Net, &AllowEntry, usize)) -> Vec<Net> {
        rules::blocklist(&self.state, &self.allow, cut)
    }

    pub fn set_allow(&mut self, allow: Allowlist) {
        self.allow = allow;
    }

    /// Writes the state file when it changed, or when what the next run
    /// needs to skip work (its meta line) changed.
    pub fn save(&mut self) -> Result<(), Error> {
        self.save_lagging(false)
    }

    /// [`Engine::save`], saying whether the list file is known to lag
    /// behind the firewall (watch writes the file at most every 2 s).
    pub fn save_lagging(&mut self, file_lags: bool) -> Result<(), Error> {
        if self.dry {
            return Ok(());
        }
        let meta = Meta {
            due: due(&self.state, self.cfg.policy.expire),
            policy: self.cfg.fingerprint(),
            out: list_identity(&self.cfg.output.out),
            stale: file_lags || self.stale || !self.hot.is_empty() || !self.unpublished.is_empty(),
        };
        if !self.dirty && meta == self.state.meta {
            return Ok(());
        }
        self.state.meta = meta;
        let path = &self.cfg.output.state;
        if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
            if !dir.exists() {
                fs::create_dir_all(dir).map_err(|err| Error::Output { path: dir.to_path_buf(), err })?;
                let _ = fs::set_permissions(dir, std::os::unix::fs::PermissionsExt::from_mode(0o700));
            }
        }
        store::write_atomic(path, &statefile::render(&self.state), 0o600)?;
        self.state_seen = identity(path);
        self.dirty = false;
        Ok(())
    }
}

/// Where an unusable state file is kept aside: `STATE.corrupt`, the whole
/// name kept (`badguys.state` becomes `badguys.state.corrupt`).
pub fn corrupt_path(state: &Path) -> PathBuf {
    let mut name = state.file_name().map(|n| n.to_os_string()).unwrap_or_default();
    name.push(".corrupt");
    state.with_file_name(name)
}

/// The earliest time something leaves the list without a new line.
fn due(st: &State, expire: Option<i64>) -> Option<i64> {
    let listed = st.records.values().filter(|r| r.listed.is_some());
    let expiries = expire.into_iter().flat_map(|e| listed.clone().map(move |r| r.last.saturating_add(e)));
    expiries.chain(st.manual.values().filter_map(|m| m.until)).min()
}

/// The identity of the blocklist file if it holds `content`, as watch
/// just wrote or read it; else one that matches no file, so that the next
/// step takes in what someone wrote there meanwhile (an edit between the
/// write and the stat would otherwise pass for watch's own).
fn seen_as(out: &Path, content: &[u8]) -> (u64, i64) {
    let seen = list_identity(out);
    match fs::read(out) {
        Ok(now) if now == content => seen,
        _ => (u64::MAX, i64::MIN),
    }
}

/// Size and modification time of the blocklist file.
fn list_identity(out: &Path) -> (u64, i64) {
    identity(out).map_or((0, 0), |(_, _, size, mtime)| (size as u64, mtime))
}

/// Whether a sync at `now` would find nothing to do: every log file is
/// exactly where its cursor left it, nothing falls due, the settings and
/// the blocklist file are as the state was saved with, and nothing decided
/// is waiting to be published (a failed reload, a failed watch step).
/// Reads only the head
/// of the state file; any doubt answers `None` (do the full run).
/// `Some(n)` is the number of files checked.
pub fn nothing_new(cfg: &Config, now: i64) -> Option<usize> {
    if cfg.journal.is_some() {
        return None;
    }
    let (cursors, meta) = statefile::read_head(&cfg.output.state)?;
    if meta.stale
        || meta.policy != cfg.fingerprint()
        || meta.due.is_some_and(|d| d <= now)
        || meta.out != list_identity(&cfg.output.out)
    {
        return None;
    }
    let mut n = 0;
    for log in &cfg.logs {
        if source::is_stdin(log) {
            return None;
        }
        let mut files = if cfg.rotated { source::rotated(log).0 } else { Vec::new() };
        files.push(log.clone());
        for f in files {
            let m = fs::metadata(&f).ok()?;
            cursors.iter().find(|c| {
                c.path == f
                    && (c.dev, c.ino, c.size) == (m.dev(), m.ino(), m.size())
                    && (c.done || c.offset == m.size())
            })?;
            n += 1;
        }
    }
    Some(n)
}

/// Collects events into the state while lines are scanned.
struct Sink<'a> {
    state: &'a mut State,
    cfg: &'a Config,
    clock: &'a mut Clock,
    hot: &'a mut Vec<IpAddr>,
    alarms: &'a mut Vec<(IpAddr, Vec<u8>)>,
}

impl Sink<'_> {
    fn event(&mut self, ev: &crate::parse::Event<'_>) {
        let t = self.clock.resolve(ev.stamp);
        if rules::count(self.state, &self.cfg.policy, ev.what, ev.ip, ev.user, ev.count, t) {
            self.hot.push(ev.ip);
        }
        let banned = |r: &Record| r.was_listed || r.listed.is_some();
        if ev.what == What::Login && self.state.records.get(&ev.ip).is_some_and(banned) {
            self.alarms.push((ev.ip, ev.user.unwrap_or_default().to_vec()));
        }
    }
}

fn add_stats(total: &mut ScanStats, before: &ScanStats, now: &ScanStats) {
    total.bytes += now.bytes - before.bytes;
    total.lines += now.lines - before.lines;
    total.candidates += now.candidates - before.candidates;
    total.logins += now.logins - before.logins;
    total.bad_address += now.bad_address - before.bad_address;
    total.overlong += now.overlong - before.overlong;
    total.bare_events += now.bare_events - before.bare_events;
    for r in Rule::ALL {
        total.hits[r as usize] += now.hits[r as usize] - before.hits[r as usize];
    }
}

/// Inode, device, size and mtime of a file, to notice it being replaced.
fn identity(path: &Path) -> Option<(u64, u64, i64, i64)> {
    fs::metadata(path).ok().map(|m| (m.dev(), m.ino(), m.size() as i64, m.mtime_nsec() + m.mtime() * 1_000_000_000))
}

/// A JSON line per address for hooks and `list --json`.
pub fn json_line(ip: &str, rec: Option<&Record>, event: &str, host: &str, extra: &[(&str, &str)]) -> String {
    let mut out = String::new();
    let mut o = crate::json::Obj::new(&mut out);
    o = o.str("event", event.as_bytes()).str("addr", ip.as_bytes()).str("host", host.as_bytes());
    if let Some(r) = rec {
        let mut rules_json = String::new();
        let mut ro = crate::json::Obj::new(&mut rules_json);
        for rule in Rule::ALL {
            if r.hits[rule as usize] > 0 {
                ro = ro.num(rule.name(), u64::from(r.hits[rule as usize]));
            }
        }
        ro.end();
        o = o
            .raw("rules", &rules_json)
            .strs("users", &r.users)
            .str("first", crate::parse::time::iso(r.first).as_bytes())
            .str("last", crate::parse::time::iso(r.last).as_bytes());
    }
    for (k, v) in extra {
        o = o.str(k, v.as_bytes());
    }
    o.end();
    out
}

/// The host name, for hook messages.
pub fn hostname() -> String {
    nix::unistd::gethostname().ok().and_then(|h| h.into_string().ok()).unwrap_or_else(|| "localhost".into())
}

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

    // A log that is not a regular file (a FIFO) is refused at the start,
    // as sync refuses it, rather than retried for ever.
    for log in cfg.logs.iter().filter(|l| cfg.journal.is_none() && !source::is_stdin(l)) {
        if let Ok(m) = fs::metadata(log) {
            source::check_log(&m, log)?;
        }
    }
    let mut engine = Engine::open(cfg)?;
    let host = hostname();
    let hook = |name, argv| Hook::new(name, argv, cfg.hooks.timeout, 2).pass_env(&cfg.hooks.env);
    let on_ban = cfg.hooks.on_ban.clone().map(|argv| hook("on-ban", argv));
    let on_login = cfg.hooks.on_login.clone().map(|argv| hook("on-login", argv));
    let mut published = Published::default();

    // The watcher: each log's directory, events filtered to the log's files.
    let names: Vec<(PathBuf, String)> = cfg
        .logs
        .iter()
        .filter(|_| cfg.journal.is_none())
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
    let source = match cfg.journal {
        Some(_) => "the systemd journal".to_string(),
        None => cfg.logs.iter().map(|l| l.display().to_string()).collect::<Vec<_>>().join(", "),
    };
    info!("watching {source} (firewall: {})", cfg.output.firewall.name());

    let mut follower: Option<Follower> = None;
    let mut retry: Option<Duration> = None;
    if cfg.journal.is_some() {
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
        match step(&mut engine, &mut published, full, &mut stats, &host, on_ban.as_ref(), on_login.as_ref()) {
            Ok(()) => {
                if full {
                    last_full = Instant::now();
                }
                full = false;
                retry = None;
                // The first step read the journal up to now: follow it from there.
                if let (None, Some(j)) = (&follower, &cfg.journal) {
                    follower = Some(engine.follow_journal(j, tx.clone()));
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
        if published.flush_due() == Some(Duration::ZERO) || (stop && published.file_dirty) {
            // Under the lock, and only over a file nobody else edited since.
            let lock = store::lock(&cfg.output.out, cfg.output.lock_timeout);
            let res = lock.and_then(|_l| {
                if list_identity(&cfg.output.out) == published.seen {
                    published.flush(&cfg.output.out, true)
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
            if let Err(e) = lock.and_then(|_l| engine.save_lagging(published.file_dirty)) {
                warn!("{e}");
            }
            last_save = Instant::now();
        }
        if stop {
            break;
        }
        // Wait for a change, a signal or the next reconcile; then gather
        // what else arrives within 25 ms into the same batch (a flood is
        // batched anyway: each step reads everything up to the end).
        let until_full = cfg.reconcile.saturating_sub(last_full.elapsed());
        let until_save = if engine.dirty { SAVE_EVERY.saturating_sub(last_save.elapsed()) } else { until_full };
        let until_flush = published.flush_due().unwrap_or(until_full);
        let wait =
            until_full.min(until_save).min(until_flush).min(retry.unwrap_or(until_full)).max(Duration::from_millis(50));
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

/// What the firewall and the blocklist file hold, as watch published them.
#[derive(Default)]
struct Published {
    /// The entries in the firewall (and, once flushed, in the file).
    set: BTreeSet<Net>,
    /// The file lags behind `set`.
    file_dirty: bool,
    last_write: Option<Instant>,
    /// Size and mtime of the file as watch last wrote or read it: anything
    /// else means someone edited it, and a full step takes their lines in.
    seen: (u64, i64),
}

/// The blocklist file is rewritten at most this often under a flood; the
/// firewall gets every batch at once.
const FILE_EVERY: Duration = Duration::from_secs(2);

/// The state file is written at most this often (and at exit); a crash in
/// between loses nothing: the cursors in the file are as old as its records.
const SAVE_EVERY: Duration = Duration::from_secs(10);

impl Published {
    fn flush_due(&self) -> Option<Duration> {
        self.file_dirty.then(|| self.last_write.map_or(Duration::ZERO, |t| FILE_EVERY.saturating_sub(t.elapsed())))
    }

    fn flush(&mut self, out: &Path, force: bool) -> Result<(), Error> {
        if self.file_dirty && (force || self.flush_due() == Some(Duration::ZERO)) {
            let list: Vec<Net> = self.set.iter().copied().collect();
            let content = store::render(&list);
            store::write_atomic(out, &content, 0o644)?;
            self.file_dirty = false;
            self.last_write = Some(Instant::now());
            self.seen = seen_as(out, &content);
        }
        Ok(())
    }
}

/// One watch step under the lock: read, decide, then either add the new
/// bans to the firewall (a batch) or, on a full step, replace everything.
fn step(
    engine: &mut Engine<'_>,
    published: &mut Published,
    full: bool,
    stats: &mut ScanStats,
    host: &str,
    on_ban: Option<&Hook>,
    on_login: Option<&Hook>,
) -> Result<(), Error> {
    let cfg = engine.cfg;
    let lock = store::lock(&cfg.output.out, cfg.output.lock_timeout)?;
    if full {
        lock.sweep(&[&cfg.output.out, &cfg.output.state]);
    }
    let reloaded = engine.refresh()?;
    let mut clock = Clock::system();
    let batch = engine.ingest(&mut clock, stats)?;
    let out = engine.evaluate(full, clock.now());
    let edited = list_identity(&cfg.output.out) != published.seen;
    let full = full || reloaded || edited || !out.expired.is_empty() || !out.lapsed.is_empty();
    if full {
        // Until the replace is through, file and firewall may lag.
        engine.stale = true;
        let current = store::read(&cfg.output.out)?;
        engine.import(&current, clock.now());
        let list = engine.blocklist(&mut |net, e, pieces| {
            if !net.is_host() {
                debug!("{net} overlaps allowed {}: {pieces} pieces kept", e.net);
            }
        });
        let content = store::render(&list);
        // Written when missing too: pf's `persist file` needs it to exist.
        if !current.exists || current.bytes != content {
            store::write_atomic(&cfg.output.out, &content, 0o644)?;
        }
        let new = crate::firewall::added(published.set.iter().chain(&current.entries), &list);
        cfg.output.firewall.replace(&list, &cfg.output.out, &new)?;
        debug!("{}: {} entries, full replace", cfg.output.firewall.name(), list.len());
        published.set = list.into_iter().collect();
        published.file_dirty = false;
        published.last_write = Some(Instant::now());
        published.seen = seen_as(&cfg.output.out, &content);
    } else {
        // Everything listed and not yet published, from this step or one
        // that failed: a decision survives until it is in the firewall.
        let mut new = engine.unpublished();
        new.retain(|n| !published.set.contains(n));
        new.sort();
        new.dedup();
        cfg.output.firewall.add(&new)?;
        if !new.is_empty() {
            published.set.extend(new);
            published.file_dirty = true;
        }
        published.flush(&cfg.output.out, false)?;
    }
    let banned = engine.published(full);
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
            .map(|ip| json_line(&ip.to_string(), engine.state.records.get(ip), "ban", host, &[]) + "\n")
            .collect();
        fire(h, "ban", lines, banned.iter().map(|ip| ip.to_string()).collect(), host);
    }
    if let Some(h) = on_login.filter(|_| !batch.alarms.is_empty()) {
        let lines: String = batch
            .alarms
            .iter()
            .map(|(ip, user)| {
                let user = String::from_utf8_lossy(user).into_owned();
                json_line(&ip.to_string(), engine.state.records.get(ip), "login", host, &[("user", &user)]) + "\n"
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
