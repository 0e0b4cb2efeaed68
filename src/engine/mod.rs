//! The [`Engine`]: the one wiring of the pipeline for every command that
//! changes something. It opens the state (or rebuilds a corrupt one),
//! ingests what is new in the logs ([`ingest`]), decides
//! ([`Engine::evaluate`]), takes in the list file's lines that badguys did
//! not put there ([`Engine::import`]), and publishes through one
//! [`Engine::publish`]: the list file, the firewall and the state, either
//! replacing everything ([`Mode::Replace`]: sync, ban, unban, reload,
//! watch's full steps) or adding the new bans ([`Mode::Add`]: watch
//! batches). The caller holds the lock for the step. `watch.rs` is the only
//! other wiring.

mod includes;
pub mod ingest;
mod persist;
mod pipeline;
mod spill;
use persist::open_history;

pub use persist::nothing_new;

use std::collections::BTreeSet;
use std::fs;
use std::net::IpAddr;
use std::path::{Path, PathBuf};

use tracing::{debug, info, warn};

use crate::addr::Net;
use crate::allow::{AllowEntry, Allowlist};
use crate::config::Config;
use crate::parse::Scanner;
use crate::retention::{self, Retention};
use crate::rules::{self, Outcome};
use crate::source::journal::{Feed, Follower, Journal};
use crate::source::{FileId, Reader};
use crate::state::{Manual, State};
use crate::store::batch::{Change, DayBatch};
use crate::store::history::History;
use crate::store::{self, statefile, Current};
use crate::Error;

pub use ingest::Batch;

/// How [`Engine::publish`] brings the list file and the firewall up to date.
pub enum Mode<'a> {
    /// `list` replaces what the file and the firewall hold. The file is
    /// written when it differs from `current` (or is missing: pf's `persist
    /// file` needs it); the firewall is replaced when the file changed,
    /// when `reload` asks, or when the firewall may lag (`stale`). With
    /// `kill`, entries not published before get their connections cut.
    Replace { list: Vec<Net>, current: &'a Current, reload: bool, kill: bool },
    /// The decided and not yet published bans are added to the firewall;
    /// the file follows within [`Engine::write_file`]'s caller's interval.
    Add,
}

/// When [`Engine::publish`] saves the state.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Save {
    /// Now, also when the firewall failed (marked stale, so that the next
    /// sync reloads).
    Now,
    /// Later: watch saves on its own timer.
    Later,
    /// Not at all (`reload` reads the state and changes nothing in it).
    Never,
}

/// How the engine reads the state file.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Open {
    /// A corrupt file is kept aside as `STATE.corrupt` and rebuilt.
    Write,
    /// A dry run: nothing is written, a corrupt file is left where it is.
    DryRun,
    /// Only looking (`reload`): a corrupt file is left for the next sync.
    Look,
}

/// What one [`Engine::publish`] did.
#[derive(Debug, Default)]
pub struct Published {
    /// The list file was (re)written.
    pub written: bool,
    /// The firewall was replaced (or added to).
    pub reloaded: bool,
    /// The newly listed addresses now published, sorted.
    pub banned: Vec<IpAddr>,
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
    state_seen: Option<FileId>,
    /// Why the state was rebuilt, when it was.
    pub rebuilt: Option<String>,
    /// Whether the state changed since it was last saved.
    pub dirty: bool,
    /// The allowlist (reloaded on SIGHUP).
    pub allow: Allowlist,
    /// Journal entries gathered by a follower (watch), read instead of
    /// running journalctl once.
    feed: Option<Feed>,
    open: Open,
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
    /// The list file lags behind the published set (watch adds to the
    /// firewall at once and writes the file at most every 2 s).
    pub file_lags: bool,
    /// Size and mtime of the list file as this engine last wrote it:
    /// anything else means someone edited it.
    pub list_seen: FileId,
    /// Say at info level what publishing did (sync); else at debug.
    pub loud: bool,
    /// The firewall holds the published set: this engine's last replace
    /// went through, so the next one need only send the difference.
    fw_known: bool,
    /// journalctl answered its `--version` probe (asked only when the
    /// journal was chosen for want of the default log).
    journal_probed: bool,
    /// The history database (none in a dry run, nor with `--history none`).
    history: Option<History>,
    /// What the history gets at the next [`Engine::save`]: every event
    /// counted and every change of standing since the last one.
    pub(crate) day_batch: DayBatch,
    /// A failure to write the batch out while reading (`persist::spill`),
    /// reported by the next save.
    pub(crate) history_err: Option<Error>,
}

impl<'c> Engine<'c> {
    /// Loads the state. A missing file is a first run; a corrupt one is
    /// reported, kept aside as `STATE.corrupt`, and rebuilt from the logs.
    pub fn open(cfg: &'c Config) -> Result<Engine<'c>, Error> {
        Engine::new(cfg, Open::Write)
    }

    /// Loads the state for a dry run, which writes nothing at all: a
    /// corrupt state is reported, left where it is, and read as empty.
    /// [`Engine::save`] refuses to write.
    pub fn open_dry_run(cfg: &'c Config) -> Result<Engine<'c>, Error> {
        Engine::new(cfg, Open::DryRun)
    }

    /// Loads the state to publish without changing it (`reload`): a
    /// corrupt file is reported and left for the next sync to rebuild.
    pub fn open_to_look(cfg: &'c Config) -> Result<Engine<'c>, Error> {
        Engine::new(cfg, Open::Look)
    }

    fn new(cfg: &'c Config, open: Open) -> Result<Engine<'c>, Error> {
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
            open,
            hot: Vec::new(),
            unpublished: Vec::new(),
            stale: false,
            file_lags: false,
            list_seen: FileId::stamp_of(&cfg.output.out),
            loud: false,
            fw_known: false,
            journal_probed: false,
            history: None,
            day_batch: DayBatch::new(),
            history_err: None,
        };
        e.load_state()?;
        // Opened now: a history that cannot be opened stops the run before
        // anything is read or written.
        if let Some(path) = cfg.history.as_deref().filter(|_| open == Open::Write) {
            let mut h = open_history(path, &cfg.output.state)?;
            h.keep_days = cfg.history_days;
            e.history = Some(h);
        }
        Ok(e)
    }

    fn load_state(&mut self) -> Result<(), Error> {
        let path = &self.cfg.output.state;
        self.state_seen = FileId::of(path);
        match statefile::read(path)? {
            None => self.state = State::default(),
            Some(Ok(st)) => self.state = st,
            Some(Err(why)) if self.open == Open::Look => {
                warn!("state file {} is unusable ({why}); the next sync rebuilds it", path.display());
                self.state = State::default();
            }
            Some(Err(why)) if self.open == Open::DryRun => {
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
        Ok(Engine::open_to_look(cfg)?.state)
    }

    /// Reloads the state if another process wrote it since this engine
    /// last did (call with the lock held).
    pub fn refresh(&mut self) -> Result<bool, Error> {
        if FileId::of(&self.cfg.output.state) == self.state_seen {
            return Ok(false);
        }
        debug!("state file changed on disk: reloading it");
        self.load_state()?;
        Ok(true)
    }

    /// Follow the journal with `journalctl --follow` from the cursor on;
    /// `wake` is called whenever entries arrive.
    pub fn follow_journal(&mut self, j: &Journal, wake: impl Fn() + Send + 'static) -> Follower {
        let feed = Feed::default();
        self.feed = Some(feed.clone());
        Follower::start(j.clone(), self.state.journal.clone(), feed, wake)
    }

    /// Lists, spares and expires (see [`rules::evaluate`]): every record
    /// when `all`, else the addresses that reached the threshold since the
    /// last evaluation (however many failed steps ago). Marks the state
    /// dirty when it changed; the newly listed wait for [`Engine::publish`].
    pub fn evaluate(&mut self, all: bool, now: i64) -> Outcome {
        let hot = std::mem::take(&mut self.hot);
        let only = if all { None } else { Some(&hot[..]) };
        let mut out = rules::evaluate(&mut self.state, only, &self.allow, &self.cfg.policy, now);
        // The quiet are looked for in a full evaluation; the cap is checked always.
        if all || self.state.records.len() > self.cfg.retention.max_records {
            let keep = if all { self.cfg.retention } else { Retention { forget: None, ..self.cfg.retention } };
            (out.forgotten, out.capped) = retention::forget(&mut self.state, &keep, now);
            if out.capped > 0 {
                warn!(
                    "over --max-records {}: dropped the records of {} addresses seen least recently (not listed)",
                    self.cfg.retention.max_records, out.capped
                );
            }
            if out.forgotten + out.capped > 0 {
                self.dirty = true;
            }
        }
        if !out.listed.is_empty() || !out.expired.is_empty() || !out.lapsed.is_empty() {
            self.dirty = true;
        }
        self.unpublished.extend_from_slice(&out.listed);
        if self.history.is_some() {
            for ip in &out.listed {
                self.day_batch.add_change(*ip, Change::Listed, now);
            }
            for ip in &out.expired {
                self.day_batch.add_change(*ip, Change::Expired, now);
            }
        }
        out
    }

    /// Notes a change of standing for the history (`unban`).
    pub fn note_change(&mut self, ip: IpAddr, change: Change, now: i64) {
        if self.history.is_some() {
            self.day_batch.add_change(ip, change, now);
        }
    }

    /// The list file, its junk lines warned about (`what` says what
    /// happens to them: "dropped", "not loaded").
    pub fn read_list(&self, what: Option<&str>) -> Result<Current, Error> {
        let out = &self.cfg.output.out;
        let current = store::read(out)?;
        for j in current.junk.iter().filter(|_| what.is_some()) {
            warn!("{}:{}: not an address or network, {}: \"{}\"", out.display(), j.line, what.unwrap_or(""), j.text);
        }
        Ok(current)
    }

    /// Entries of the blocklist file that badguys did not put there (added
    /// by hand, or the list of the script badguys replaces) become manual
    /// bans, so they are kept: every line outside the set badguys last
    /// published. (A state written before that set was recorded falls back
    /// to the records: an entry whose address has one is badguys' own.) A
    /// network wider than an IPv4 /8 or an IPv6 /32 is refused with a
    /// warning (only `ban --force` lists one).
    pub fn import(&mut self, current: &Current, now: i64) -> usize {
        let mut n = 0;
        // What the allowlist carved out of a manual network is listed in
        // pieces: a piece is that ban's, not a new one.
        let nets: Vec<Net> = self.state.manual.keys().filter(|m| !m.is_host()).copied().collect();
        // The file is sorted as badguys wrote it, but for lines added since:
        // walked beside the published set, with a lookup only for a line
        // out of order.
        let mut walk = self.state.published.iter().flatten().peekable();
        let mut prev: Option<&Net> = None;
        let mut reason: Option<std::sync::Arc<str>> = None;
        for net in &current.entries {
            let own = match &self.state.published {
                Some(set) if prev.is_some_and(|p| p > net) => set.contains(net),
                Some(_) => {
                    prev = Some(net);
                    while walk.next_if(|p| *p < net).is_some() {}
                    walk.peek() == Some(&net)
                }
                None => {
                    (net.is_host() || *net == self.cfg.policy.net(net.addr()))
                        && self.state.records.get(&net.addr()).is_some_and(|r| r.listed.is_some() || r.attacks() > 0)
                }
            };
            // An included list's entries are its own, never manual bans.
            let included = || self.state.includes.values().any(|i| i.nets.iter().any(|n| n.contains(net)));
            if own || self.state.manual.contains_key(net) || nets.iter().any(|m| m.contains(net)) || included() {
                continue;
            }
            if let Err(e) = crate::addr::check_width(*net, false) {
                warn!("{}: {e}: dropped (`badguys ban --force {net}` lists it)", self.cfg.output.out.display());
                continue;
            }
            let reason = reason.get_or_insert_with(|| format!("found in {}", self.cfg.output.out.display()).into());
            self.state.manual.insert(*net, Manual { since: now, until: None, reason: reason.clone() });
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
        rules::blocklist(&self.state, &self.cfg.policy, &self.allow, cut)
    }

    /// Whether one of `listed` makes or joins a `--subnet-after` network:
    /// then the whole list is published, not the hosts added.
    pub fn escalates(&self, listed: &[IpAddr]) -> bool {
        if self.cfg.policy.subnet.is_none() || listed.is_empty() {
            return false;
        }
        let esc = rules::subnet::escalated(&self.state, &self.cfg.policy, &self.allow);
        rules::subnet::touches(&esc, listed)
    }

    pub fn set_allow(&mut self, allow: Allowlist) {
        self.allow = allow;
    }

    /// The one way into the list file, the firewall and the state (see
    /// [`Mode`] and [`Save`]). The state is saved (when `save` says so)
    /// even when the firewall failed, marked stale; the firewall's error
    /// is returned after that.
    pub fn publish(&mut self, mode: Mode<'_>, save: Save) -> Result<Published, Error> {
        let cfg = self.cfg;
        let out = &cfg.output.out;
        let mut done = Published::default();
        let replace = matches!(mode, Mode::Replace { .. });
        let fw = match mode {
            Mode::Replace { list, current, reload, kill } => {
                let content = store::render(&list);
                done.written = !current.exists || content != current.bytes;
                if done.written {
                    store::write_atomic(out, &content, 0o644)?;
                    self.say(format_args!("wrote {} ({} entries)", out.display(), list.len()));
                    self.list_seen = seen_as(out, &content);
                } else {
                    self.list_seen = FileId::stamp_of(out);
                }
                self.file_lags = false;
                let before = self.state.published.replace(list.iter().copied().collect());
                if before.as_ref() != self.state.published.as_ref() {
                    self.dirty = true;
                }
                if !done.written && self.stale && !reload {
                    self.say(format_args!(
                        "{} unchanged, but the firewall may lag behind it (a failed reload or watch step): reloading",
                        out.display()
                    ));
                }
                if done.written || reload || self.stale {
                    let known = before.as_ref().filter(|_| self.fw_known && !self.stale);
                    let previous: Option<Vec<Net>> = known.map(|s| s.iter().copied().collect());
                    // Until the replace is through, file and firewall may lag.
                    self.stale = true;
                    // Entries the last run did not publish get their open
                    // connections cut.
                    let new = if kill && cfg.output.firewall.kills() {
                        crate::firewall::added(before.as_ref(), &current.entries, &list)
                    } else {
                        Vec::new()
                    };
                    let res = cfg.output.firewall.replace(&list, out, &new, previous.as_deref());
                    debug!("{}: {} entries, full replace", cfg.output.firewall.name(), list.len());
                    done.reloaded = res.is_ok();
                    self.fw_known = res.is_ok();
                    res
                } else {
                    self.say(format_args!("{} unchanged: nothing written, firewall not reloaded", out.display()));
                    Ok(())
                }
            }
            Mode::Add => {
                // Everything listed and not yet published, from this step or
                // one that failed: a decision survives until it is in the
                // firewall.
                let mut new = self.unpublished();
                let set = self.state.published.get_or_insert_with(BTreeSet::new);
                new.retain(|n| !set.contains(n));
                new.sort();
                new.dedup();
                cfg.output.firewall.add(&new)?;
                done.reloaded = !new.is_empty();
                if !new.is_empty() {
                    self.state.published.get_or_insert_with(BTreeSet::new).extend(new);
                    self.file_lags = true;
                    self.dirty = true;
                }
                Ok(())
            }
        };
        match &fw {
            Ok(()) => done.banned = self.published(replace),
            Err(_) => self.stale = true,
        }
        if save == Save::Now {
            self.save()?;
        }
        fw.map(|()| done)
    }

    fn say(&self, msg: std::fmt::Arguments<'_>) {
        if self.loud {
            info!("{msg}");
        } else {
            debug!("{msg}");
        }
    }

    /// Writes the published set to the list file (watch, when the file
    /// lags behind the firewall).
    pub fn write_file(&mut self) -> Result<(), Error> {
        let list: Vec<Net> = self.state.published.iter().flatten().copied().collect();
        let content = store::render(&list);
        store::write_atomic(&self.cfg.output.out, &content, 0o644)?;
        self.file_lags = false;
        self.list_seen = seen_as(&self.cfg.output.out, &content);
        Ok(())
    }

    /// Whether the list file is as this engine last wrote it.
    pub fn list_unedited(&self) -> bool {
        FileId::stamp_of(&self.cfg.output.out) == self.list_seen
    }

    /// The listed addresses not published yet, as hosts.
    fn unpublished(&self) -> Vec<Net> {
        let listed = |ip: &&IpAddr| self.state.records.get(ip).is_some_and(|r| r.listed.is_some());
        self.unpublished.iter().filter(listed).map(|ip| self.cfg.policy.net(*ip)).collect()
    }

    /// The list file and the firewall took everything decided so far (all
    /// of it when `full`): returns the newly listed addresses that are now
    /// published, sorted, for the log and the hooks.
    fn published(&mut self, full: bool) -> Vec<IpAddr> {
        let mut ips = std::mem::take(&mut self.unpublished);
        ips.retain(|ip| self.state.records.get(ip).is_some_and(|r| r.listed.is_some()));
        ips.sort_by(|a, b| crate::addr::ip_order(*a, *b));
        ips.dedup();
        if full {
            self.stale = false;
        }
        ips
    }
}

/// Where an unusable state file is kept aside: `STATE.corrupt`, the whole
/// name kept (`badguys.state` becomes `badguys.state.corrupt`).
pub fn corrupt_path(state: &Path) -> PathBuf {
    let mut name = state.file_name().map(|n| n.to_os_string()).unwrap_or_default();
    name.push(".corrupt");
    state.with_file_name(name)
}

/// The stamp of the blocklist file if it holds `content`, as the engine
/// just wrote it; else one that matches no file, so that the next step
/// takes in what someone wrote there meanwhile (an edit between the write
/// and the stat would otherwise pass for badguys' own).
fn seen_as(out: &Path, content: &[u8]) -> FileId {
    let seen = FileId::stamp_of(out);
    match fs::read(out) {
        Ok(now) if now == content => seen,
        _ => FileId { size: u64::MAX, mtime: i64::MIN, ..FileId::default() },
    }
}
