//! Reading a log's files on two cores: a reader thread reads each file and
//! runs the [`Scanner`] over it (prefilter, header, message, and all the
//! cross-line context: kex pairs, `message repeated`/`last message
//! repeated`, duplicates), handing the events it finds, copied into
//! batches, to the calling thread, which counts them into the state (the
//! [`crate::parse::Clock`], the records, the history's batch) in the order
//! they were found.
//!
//! Exact by construction: the one scanner still sees every line of every
//! file in order, and the state sees every event in order; the split is
//! between two stages that share nothing but the events, so where a batch
//! ends cannot change what either stage makes of its input (the tests
//! compare it with the one-thread read on batch sizes from one event up).
//! Memory stays bounded: at most [`DEPTH`] batches are in flight, and
//! their buffers go back to the reader to be reused.

use std::net::IpAddr;
use std::path::PathBuf;
use std::sync::mpsc;

use crate::parse::{Event, Scanner, Stamp, What};
use crate::source::{Cursor, Progress, Reader};
use crate::Error;

/// Events per batch.
pub const BATCH: usize = 2048;
/// Batches in flight between the reader and the state.
const DEPTH: usize = 4;

/// Below this many unread bytes a log is read on the calling thread: a
/// thread costs more than it saves on a timer run's few new lines.
const MIN_BYTES: u64 = 4 << 20;

/// Whether `unread` bytes are worth a second thread: [`MIN_BYTES`] and
/// up, or anything when a debug build's `BADGUYS_PIPELINE_BATCH` is set.
pub fn worth(unread: u64) -> bool {
    unread >= MIN_BYTES || crate::debug_env("BADGUYS_PIPELINE_BATCH").is_some()
}

/// Whether reading on two cores is allowed: not when `BADGUYS_THREADS=1`
/// (the bench's self-check compares both ways), nor on one CPU.
pub fn allowed() -> bool {
    static ON: std::sync::OnceLock<bool> = std::sync::OnceLock::new();
    *ON.get_or_init(|| {
        std::env::var("BADGUYS_THREADS").map_or(true, |v| v.trim() != "1")
            && std::thread::available_parallelism().is_ok_and(|n| n.get() > 1)
    })
}

/// Events per batch: [`BATCH`], or `BADGUYS_PIPELINE_BATCH` in a debug
/// build (the tests cut the stream after every event or few).
fn batch_len() -> usize {
    crate::debug_env("BADGUYS_PIPELINE_BATCH").and_then(|v| v.parse().ok()).filter(|&n| n > 0).unwrap_or(BATCH)
}

/// A byte range in a batch's text.
type Span = (u32, u32);

/// One event, its borrowed parts copied into the batch's text.
struct Owned {
    what: What,
    ip: IpAddr,
    count: u32,
    pid: Option<u32>,
    user: Option<Span>,
    host: Span,
    /// 0 none, 1 syslog, 2 RFC 3339.
    stamp_kind: u8,
    stamp: Span,
}

/// Events found by the reader thread, in the order found.
#[derive(Default)]
struct EventBatch {
    events: Vec<Owned>,
    text: Vec<u8>,
}

impl EventBatch {
    fn put(&mut self, b: &[u8]) -> Span {
        let at = self.text.len() as u32;
        self.text.extend_from_slice(b);
        (at, b.len() as u32)
    }

    fn push(&mut self, ev: &Event<'_>) {
        let user = ev.user.map(|u| self.put(u));
        let host = self.put(ev.host);
        let (stamp_kind, stamp) = match ev.stamp {
            Stamp::None => (0, (0, 0)),
            Stamp::Syslog(s) => (1, self.put(s)),
            Stamp::Rfc3339(s) => (2, self.put(s)),
        };
        self.events.push(Owned {
            what: ev.what,
            ip: ev.ip,
            count: ev.count,
            pid: ev.pid,
            user,
            host,
            stamp_kind,
            stamp,
        });
    }

    fn replay(&self, apply: &mut dyn FnMut(&Event<'_>)) {
        let text = |(at, len): Span| &self.text[at as usize..(at + len) as usize];
        for o in &self.events {
            let stamp = match o.stamp_kind {
                1 => Stamp::Syslog(text(o.stamp)),
                2 => Stamp::Rfc3339(text(o.stamp)),
                _ => Stamp::None,
            };
            let ev = Event {
                what: o.what,
                ip: o.ip,
                user: o.user.map(text),
                count: o.count,
                host: text(o.host),
                pid: o.pid,
                stamp,
            };
            apply(&ev);
        }
    }

    fn clear(&mut self) {
        self.events.clear();
        self.text.clear();
    }
}

enum Msg {
    Events(EventBatch),
    /// One file read to its end (or its error), after all its events.
    File(PathBuf, bool, Result<Progress, Error>),
}

/// Whether a file's read error stops the step (a rotated file that
/// vanished between listing and opening does not).
pub fn fatal(err: &Error, live: bool) -> bool {
    match err {
        Error::Input { err, .. } => live || err.kind() != std::io::ErrorKind::NotFound,
        _ => true,
    }
}

/// Sends the batch `cur` to the counting thread and takes an emptied one
/// back in its place (or a new one while none has come back): false when
/// the counting thread is gone.
fn hand_over(tx: &mpsc::SyncSender<Msg>, back: &mpsc::Receiver<EventBatch>, cur: &mut EventBatch) -> bool {
    let next = back.try_recv().unwrap_or_default();
    tx.send(Msg::Events(std::mem::replace(cur, next))).is_ok()
}

/// Reads `files` (oldest first) with `reader` and `scanner` on a second
/// thread, calling `apply` with each event and then `done` with each
/// file's outcome on this one, in file order. Stops after the first file
/// whose outcome [`fatal`] calls fatal, or when `done` fails.
pub fn read_files(
    reader: &mut Reader,
    scanner: &mut Scanner,
    files: &[(PathBuf, bool)],
    known: &[Cursor],
    apply: &mut dyn FnMut(&Event<'_>),
    done: &mut dyn FnMut(PathBuf, bool, Result<Progress, Error>) -> Result<(), Error>,
) -> Result<(), Error> {
    let max = batch_len();
    std::thread::scope(|s| {
        let (tx, rx) = mpsc::sync_channel::<Msg>(DEPTH);
        let (back_tx, back_rx) = mpsc::channel::<EventBatch>();
        s.spawn(move || {
            let mut cur = EventBatch::default();
            for (path, live) in files {
                let cell = std::cell::RefCell::new(&mut *scanner);
                let mut gone = false;
                let res = reader.read_file(
                    path,
                    known,
                    *live,
                    &mut |c| {
                        let mut sc = cell.borrow_mut();
                        if max >= BATCH {
                            sc.scan(c, &mut |ev| cur.push(ev));
                            if cur.events.len() >= max {
                                gone |= !hand_over(&tx, &back_rx, &mut cur);
                            }
                        } else {
                            // Tests: a batch after every `max` events.
                            sc.scan(c, &mut |ev| {
                                cur.push(ev);
                                if cur.events.len() >= max {
                                    gone |= !hand_over(&tx, &back_rx, &mut cur);
                                }
                            });
                        }
                    },
                    &mut || cell.borrow_mut().note_overlong(),
                );
                if !cur.events.is_empty() {
                    gone |= !hand_over(&tx, &back_rx, &mut cur);
                }
                let stop = res.as_ref().err().is_some_and(|e| fatal(e, *live));
                if gone || tx.send(Msg::File(path.clone(), *live, res)).is_err() || stop {
                    return;
                }
            }
        });
        for msg in rx {
            match msg {
                Msg::Events(mut b) => {
                    b.replay(apply);
                    b.clear();
                    let _ = back_tx.send(b);
                }
                Msg::File(path, live, res) => done(path, live, res)?,
            }
        }
        Ok(())
    })
}
