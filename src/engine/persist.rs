//! What an engine leaves behind: the state file written when it changed,
//! the history of the step committed first under the same generation (so a
//! crash between the two leaves the history one generation ahead, never
//! behind), and the reading of the state file's head alone that lets an
//! unchanged timer run stop in milliseconds ([`nothing_new`]).

use std::fs;
use std::path::Path;

use super::{Engine, Open};
use crate::config::Config;
use crate::source::{self, FileId};
use crate::state::{Meta, State};
use crate::store::batch::DayBatch;
use crate::store::history::History;
use crate::store::{self, statefile};
use crate::Error;

impl Engine<'_> {
    /// Writes the state file when it changed, or when what the next run
    /// needs to skip work (its meta line) changed. The history of the step
    /// (what was not written out while reading, see `DayBatch::is_full`)
    /// is written and committed on a thread while the state file is
    /// written, and the state file renamed into place only after the
    /// commit, so that a crash between the two leaves the history one
    /// generation ahead, never behind.
    pub fn save(&mut self) -> Result<(), Error> {
        if self.open != Open::Write {
            return Ok(());
        }
        let mut meta = Meta {
            due: earliest(
                due(&self.state, &self.cfg.policy),
                crate::retention::forget_due(&self.state, &self.cfg.retention),
            ),
            policy: self.cfg.fingerprint(),
            out: FileId::stamp_of(&self.cfg.output.out),
            stale: self.file_lags || self.stale || !self.hot.is_empty() || !self.unpublished.is_empty(),
            generation: self.state.meta.generation,
            published: self.state.published.is_some(),
        };
        if !self.dirty && meta == self.state.meta {
            return Ok(());
        }
        if let Some(e) = self.history_err.take() {
            // What was written out while reading was rolled back with it,
            // and the state is not saved: `sync` stops, and its next run
            // reads those lines again; a `watch` going on has lost this
            // step's events from the history (said by the error).
            self.day_batch.clear();
            return Err(e);
        }
        // The generation the history writes (past the held one when it is
        // ahead: History::begin_step) is the one the state is to carry.
        if let Some(h) = self.history.as_mut() {
            meta.generation = h.begin_step(meta.generation + 1)?;
        } else {
            meta.generation += 1;
        }
        let meta_generation = meta.generation;
        let before = std::mem::replace(&mut self.state.meta, meta);
        let path = &self.cfg.output.state;
        let state = &self.state;
        let batch = &self.day_batch;
        let hist_path = self.history.as_ref().map(|h| h.path().to_path_buf()).unwrap_or_default();
        // A big last part and its commit run beside the writing of the
        // state file (a small one, as a timer run's or a watch step's, is
        // written first, on this thread: a thread per save grew watch's
        // resident memory by a malloc arena); the state file is renamed
        // into place only after the commit either way: a crash between the
        // two leaves the history one generation ahead, never behind.
        let threaded = batch.keys() >= THREADED_KEYS;
        let (written, history_failed) = std::thread::scope(|s| {
            let mut job = match self.history.as_mut() {
                Some(h) if threaded => Job::Running(s.spawn(move || -> Result<(), Error> {
                    h.write(batch)?;
                    h.commit()
                })),
                Some(h) => Job::Done(h.write(batch).and_then(|()| h.commit())),
                None => Job::None,
            };
            // Whether the hook below waited for the history, and whether it
            // had failed (its error is then the one `written` carries).
            let (mut waited, mut failed) = (false, false);
            let wait = |job: &mut Job<'_>| match std::mem::replace(job, Job::None) {
                Job::None => None,
                Job::Done(r) => Some(r),
                Job::Running(j) => Some(j.join().unwrap_or_else(|_| {
                    Err(Error::History {
                        path: hist_path.clone(),
                        msg: "the thread committing it stopped unexpectedly".into(),
                    })
                })),
            };
            let written = (|| {
                if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
                    if !dir.exists() {
                        fs::create_dir_all(dir).map_err(|err| Error::Output { path: dir.to_path_buf(), err })?;
                        let _ = fs::set_permissions(dir, std::os::unix::fs::PermissionsExt::from_mode(0o700));
                    }
                }
                store::write_atomic_then(path, 0o600, &mut |w| statefile::render_to(state, w), &mut || {
                    waited = true;
                    let r = wait(&mut job).unwrap_or(Ok(()));
                    match r {
                        Ok(()) => delay_save(),
                        Err(_) => failed = true,
                    }
                    r
                })
            })();
            // The state file failed before the history was waited for.
            if !waited {
                if let Some(Err(e)) = wait(&mut job) {
                    return (Err(e), true);
                }
            }
            (written, failed)
        });
        match written {
            // The history failed (and was rolled back): nothing of the step
            // is kept.
            Err(e) if history_failed => {
                self.state.meta = before;
                return Err(e);
            }
            Err(e) => {
                // The history holds this generation, the state file the one
                // before: the next save applies this generation again, adding
                // what came since to what was committed (a rerun after a crash
                // from the older state's cursors replaces it all).
                if let Some(h) = self.history.as_mut() {
                    h.unsaved = Some(meta_generation);
                }
                self.day_batch.clear();
                self.state.meta.generation = before.generation;
                return Err(e);
            }
            Ok(()) => self.day_batch.clear(),
        }
        if let Some(h) = self.history.as_mut() {
            h.unsaved = None;
        }
        self.state_seen = FileId::of(path);
        self.dirty = false;
        Ok(())
    }
}

/// Keys of a history batch from which its last part and commit run on a
/// thread beside the writing of the state file.
const THREADED_KEYS: usize = 4096;

/// The history's last part and commit during a save: none (no history),
/// done already on the saving thread, or running beside it.
enum Job<'scope> {
    None,
    Done(Result<(), Error>),
    Running(std::thread::ScopedJoinHandle<'scope, Result<(), Error>>),
}

/// Writes the engine's batch into the step's open history transaction
/// (begun here if need be) and empties it: what keeps memory flat on a
/// first run over a big log. The commit stays with [`Engine::save`].
pub(super) fn spill(h: &mut History, batch: &mut DayBatch, next: u64) -> Result<(), Error> {
    h.begin_step(next)?;
    h.write(batch)?;
    batch.clear();
    Ok(())
}

/// Opens the history for writing, with the care the state file gets: its
/// directory (created when it is the state's own, as the first save
/// would) must be safe to write in, and the file itself not a symlink.
pub(super) fn open_history(path: &Path, state: &Path) -> Result<History, Error> {
    let dir = |p: &Path| p.parent().filter(|d| !d.as_os_str().is_empty()).unwrap_or(Path::new(".")).to_path_buf();
    let d = dir(path);
    if !d.exists() && d == dir(state) {
        fs::create_dir_all(&d).map_err(|err| Error::Output { path: d.clone(), err })?;
        let _ = fs::set_permissions(&d, std::os::unix::fs::PermissionsExt::from_mode(0o700));
    }
    store::check_dir(path)?;
    if fs::symlink_metadata(path).is_ok_and(|m| m.file_type().is_symlink()) {
        return Err(Error::Unsafe {
            path: path.to_path_buf(),
            why: "is a symlink: refusing to write through it".into(),
        });
    }
    History::open(path)
}

/// Debug builds only: `BADGUYS_DELAY_SAVE=MS` waits between the history's
/// commit and the state file's rename, so that the kill -9 trials of the
/// tests land in that window often.
fn delay_save() {
    static MS: std::sync::OnceLock<u64> = std::sync::OnceLock::new();
    let ms = *MS.get_or_init(|| crate::debug_env("BADGUYS_DELAY_SAVE").and_then(|v| v.parse().ok()).unwrap_or(0));
    if ms > 0 {
        std::thread::sleep(std::time::Duration::from_millis(ms));
    }
}

/// The earliest time something leaves the list without a new line.
fn due(st: &State, policy: &crate::rules::Policy) -> Option<i64> {
    let listed = st.records.values().filter(|r| r.listed.is_some());
    // A repeat offender's ban lasts longer (`--expire-factor`).
    let expiries = listed.filter_map(|r| policy.ban_length(r.bans).map(|e| r.last.saturating_add(e)));
    expiries.chain(st.manual.values().filter_map(|m| m.until)).min()
}

/// The earlier of two times that may be unknown.
fn earliest(a: Option<i64>, b: Option<i64>) -> Option<i64> {
    a.into_iter().chain(b).min()
}

/// Whether a sync at `now` would find nothing to do: every log file is
/// exactly where its cursor left it, nothing falls due, the settings and
/// the blocklist file are as the state was saved with, and nothing decided
/// is waiting to be published (a failed reload, a failed watch step).
/// Reads only the head of the state file; any doubt answers `None` (do the
/// full run). `Some(n)` is the number of files checked.
pub fn nothing_new(cfg: &Config, now: i64) -> Option<usize> {
    // An included list may have been fetched since.
    if cfg.journal.is_some() || !cfg.include.files.is_empty() {
        return None;
    }
    let (cursors, meta) = statefile::read_head(&cfg.output.state)?;
    if meta.stale
        || meta.policy != cfg.fingerprint()
        || meta.due.is_some_and(|d| d <= now)
        || meta.out != FileId::stamp_of(&cfg.output.out)
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
            let id = FileId::of(&f)?;
            cursors
                .iter()
                .find(|c| c.path == f && c.file.same_inode_and_size(&id) && (c.done || c.offset == id.size))?;
            n += 1;
        }
    }
    Some(n)
}
