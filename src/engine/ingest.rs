//! Reading what is new into the state: every log through the cursors (or
//! the journal, read once or fed by a follower), each event counted by
//! [`rules::count`]; the addresses that reached the threshold wait in the
//! engine for the next evaluation.

use std::io;
use std::net::IpAddr;

use tracing::{debug, info, warn};

use crate::config::Config;
use crate::parse::{Clock, Rule, ScanStats, Scanner, What};
use crate::rules;
use crate::source::journal::Journal;
use crate::source::{self};
use crate::state::{Record, State};
use crate::store::batch::{Change, DayBatch, HistEvent};
use crate::Error;

use super::spill::Spiller;
use super::{pipeline, Engine};

/// What one [`Engine::ingest`] read and found. (The addresses that
/// reached the threshold stay in the engine until they are decided and
/// published: see [`Engine::evaluate`] and [`Engine::publish`].)
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

impl Engine<'_> {
    /// Reads what is new in every log and counts it. Any log that cannot
    /// be read stops the step before anything is written.
    pub fn ingest(&mut self, clock: &mut Clock, stats: &mut ScanStats) -> Result<Batch, Error> {
        let cfg = self.cfg;
        let mut batch = Batch::default();
        // Addresses that reached the threshold; evaluate() sorts and dedups.
        let mut hot = Vec::new();
        // Full history batches are written out on a thread of their own.
        let mut spiller = Spiller::new(self.history.take(), self.history_err.take());
        if let Some(j) = cfg.journal.as_ref().filter(|_| !cfg.journal_auto || self.journal_runs()) {
            let res = self.ingest_journal(j, clock, stats, &mut batch, &mut hot, &mut spiller);
            (self.history, self.history_err) = spiller.finish();
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
                // One set of recent lines for every log, kept in the state.
                std::mem::swap(&mut scanner.dedup, &mut self.state.dedup);
                let before = scanner.stats().clone();
                let mut sink = Sink {
                    state: &mut self.state,
                    cfg,
                    clock: &mut *clock,
                    hot: &mut hot,
                    alarms: &mut batch.alarms,
                    hist: spiller.on().then_some((&mut spiller, &mut self.day_batch)),
                };
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
                    let known = tracker.known().to_vec();
                    let mut done = |path: std::path::PathBuf, live: bool, res: Result<source::Progress, Error>| {
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
                                Ok(())
                            }
                            // A rotated file can vanish between listing and opening.
                            Err(e) if !pipeline::fatal(&e, live) => {
                                debug!("{}: vanished while reading (rotation?)", path.display());
                                Ok(())
                            }
                            Err(e) => Err(e),
                        }
                    };
                    if pipeline::allowed() && pipeline::worth(unread(&files, &known)) {
                        // Two cores: read and scan on one, count on this one.
                        debug!("{}: reading on two threads", log.display());
                        pipeline::read_files(
                            &mut self.reader,
                            scanner,
                            &files,
                            &known,
                            &mut |ev| sink.event(ev),
                            &mut done,
                        )?;
                    } else {
                        for (path, live) in files {
                            let cell = std::cell::RefCell::new(&mut *scanner);
                            let res = self.reader.read_file(
                                &path,
                                &known,
                                live,
                                &mut |c| cell.borrow_mut().scan(c, &mut |ev| sink.event(ev)),
                                &mut || cell.borrow_mut().note_overlong(),
                            );
                            done(path, live, res)?;
                        }
                    }
                }
                add_stats(stats, &before, scanner.stats());
                std::mem::swap(&mut scanner.dedup, &mut self.state.dedup);
                count_host_lines(&mut self.state, scanner);
            }
            Ok(())
        })();
        (self.history, self.history_err) = spiller.finish();
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

    /// Whether journalctl runs, asked once (the `--version` probe of a
    /// journal chosen because the default log does not exist).
    fn journal_runs(&mut self) -> bool {
        if !self.journal_probed {
            self.journal_probed = crate::source::journal::available();
            if self.journal_probed && self.loud {
                info!("{} does not exist: reading sshd's entries from the systemd journal", self.cfg.logs[0].display());
            }
        }
        self.journal_probed
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
        spiller: &mut Spiller,
    ) -> Result<(), Error> {
        let cfg = self.cfg;
        if self.scanners.is_empty() {
            self.scanners.push(Scanner::new(cfg.rules));
        }
        let scanner = &mut self.scanners[0];
        std::mem::swap(&mut scanner.dedup, &mut self.state.dedup);
        let before = scanner.stats().clone();
        let mut sink = Sink {
            state: &mut self.state,
            cfg,
            clock,
            hot,
            alarms: &mut batch.alarms,
            hist: spiller.on().then_some((spiller, &mut self.day_batch)),
        };
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
        std::mem::swap(&mut self.scanners[0].dedup, &mut self.state.dedup);
        count_host_lines(&mut self.state, &mut self.scanners[0]);
        Ok(())
    }
}

/// Collects events into the state while lines are scanned.
struct Sink<'a> {
    state: &'a mut State,
    cfg: &'a Config,
    clock: &'a mut Clock,
    hot: &'a mut Vec<IpAddr>,
    alarms: &'a mut Vec<(IpAddr, Vec<u8>)>,
    /// The history's writer and its batch (none without a history).
    hist: Option<(&'a mut Spiller, &'a mut DayBatch)>,
}

impl Sink<'_> {
    fn event(&mut self, ev: &crate::parse::Event<'_>) {
        let t = self.clock.resolve(ev.stamp);
        // IPv6 counts per --ipv6-prefix network.
        let ip = self.cfg.policy.key(ev.ip);
        let host = self.state.host_id(ev.host);
        // One lookup of the record for all that follows.
        let (rec, new) = match self.state.records.entry(ip) {
            std::collections::hash_map::Entry::Occupied(o) => (o.into_mut(), false),
            std::collections::hash_map::Entry::Vacant(v) => (v.insert(Record::default()), true),
        };
        if rules::count_into(rec, &self.cfg.policy, ev.what, ev.user, ev.count, t) {
            self.hot.push(ip);
        }
        let ever_listed = ev.what == What::Login && (rec.was_listed || rec.listed.is_some());
        // Which host reported it, and when that host was last heard of.
        if let Some(id) = host {
            rec.add_host(id);
            let h = &mut self.state.hosts[id as usize];
            h.seen = h.seen.max(t);
            h.events += u64::from(ev.count);
        }
        if ever_listed {
            self.alarms.push((ip, ev.user.unwrap_or_default().to_vec()));
        }
        if let Some((spiller, h)) = self.hist.as_mut() {
            let host = ev.host;
            let e = HistEvent { what: ev.what, addr: ip, user: ev.user, time: t, host, count: ev.count, ever_listed };
            h.add_event(&e);
            if new {
                h.add_change(ip, Change::FirstSeen, t);
            }
            // Memory stays flat: a full batch goes into the step's open
            // transaction (committed by the save, with the state).
            if h.is_full() {
                spiller.spill(h, self.state.meta.generation + 1);
            }
        }
    }
}

/// Roughly how many bytes of `files` are not read yet: their sizes less
/// the offsets of the cursors kept for their paths.
fn unread(files: &[(std::path::PathBuf, bool)], known: &[source::Cursor]) -> u64 {
    files
        .iter()
        .map(|(p, _)| {
            let size = std::fs::metadata(p).map_or(0, |m| m.len());
            let at = known.iter().filter(|c| &c.path == p).map(|c| c.offset).max().unwrap_or(0);
            size.saturating_sub(at)
        })
        .sum()
}

/// The scanner's sshd lines per host into the host table.
fn count_host_lines(state: &mut State, scanner: &mut Scanner) {
    for (name, n) in scanner.take_host_lines() {
        if let Some(id) = state.host_id(&name) {
            state.hosts[id as usize].lines += n;
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
    total.unrecognised_header += now.unrecognised_header - before.unrecognised_header;
    total.double_host += now.double_host - before.double_host;
    total.duplicates += now.duplicates - before.duplicates;
    for r in Rule::ALL {
        total.hits[r as usize] += now.hits[r as usize] - before.hits[r as usize];
    }
}
