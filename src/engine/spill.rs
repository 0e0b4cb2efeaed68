//! Writing a step's full history batches out while reading goes on: a
//! first run over a big log fills the [`DayBatch`] many times
//! ([`DayBatch::is_full`]), and each full one is written into the step's
//! open transaction on a thread of its own, while the engine counts the
//! next into an empty batch. At most one part is being written at a time
//! (a second full batch waits for the first), so memory stays at two
//! batches; the last part and the commit stay with [`super::Engine::save`],
//! after [`Spiller::finish`] has given the history back.
//!
//! A timer run's few new lines never fill a batch: no thread is started.

use std::thread::JoinHandle;

use crate::store::batch::DayBatch;
use crate::store::history::History;
use crate::Error;

/// What a writing thread gives back: the history, the batch it wrote
/// (emptied, for reuse), and how the write went.
type Back = (History, DayBatch, Result<(), Error>);

/// The history while a step reads: idle, or lent to a writing thread.
pub(super) struct Spiller {
    idle: Option<History>,
    running: Option<JoinHandle<Back>>,
    /// An emptied batch to count into next.
    spare: Option<DayBatch>,
    /// The first failure to write a part (the step's transaction was then
    /// rolled back: later parts are not written).
    failed: Option<Error>,
    /// The database's path, for errors.
    path: std::path::PathBuf,
}

impl Spiller {
    /// Holds `history` for a step; `failed` is a failure already met.
    pub fn new(history: Option<History>, failed: Option<Error>) -> Spiller {
        let path = history.as_ref().map(|h| h.path().to_path_buf()).unwrap_or_default();
        Spiller { idle: history, running: None, spare: None, failed, path }
    }

    /// Whether the step writes a history.
    pub fn on(&self) -> bool {
        self.idle.is_some() || self.running.is_some()
    }

    /// Writes the full `batch` as part of generation `next` on a thread,
    /// leaving an empty batch with the same host ids in its place; first
    /// waits for the part being written, if any. After a failure the batch
    /// is only emptied: the step's history is lost, and said at the save.
    pub fn spill(&mut self, batch: &mut DayBatch, next: u64) {
        self.wait();
        if self.failed.is_some() {
            batch.clear();
            return;
        }
        let Some(mut h) = self.idle.take() else { return };
        let mut fresh = self.spare.take().unwrap_or_default();
        fresh.clear();
        fresh.take_hosts_of(batch);
        let full = std::mem::replace(batch, fresh);
        let spawned = std::thread::Builder::new().name("history".into()).spawn(move || {
            let mut full = full;
            let res = super::persist::spill(&mut h, &mut full, next);
            (h, full, res)
        });
        match spawned {
            Ok(t) => self.running = Some(t),
            // No thread to be had: the part is lost with the history
            // itself, which went with the closure; said at the save.
            Err(e) => {
                self.failed =
                    Some(Error::History { path: self.path.clone(), msg: format!("no thread to write it: {e}") })
            }
        }
    }

    /// Waits for the part being written, if any.
    fn wait(&mut self) {
        let Some(t) = self.running.take() else { return };
        match t.join() {
            Ok((h, b, res)) => {
                self.idle = Some(h);
                self.spare = Some(b);
                if let Err(e) = res {
                    self.failed.get_or_insert(e);
                }
            }
            Err(_) => {
                self.failed.get_or_insert(Error::History {
                    path: self.path.clone(),
                    msg: "the thread writing it stopped unexpectedly".into(),
                });
            }
        }
    }

    /// Waits for the part being written and gives the history back, with
    /// the first failure met.
    pub fn finish(mut self) -> (Option<History>, Option<Error>) {
        self.wait();
        (self.idle.take(), self.failed.take())
    }
}
