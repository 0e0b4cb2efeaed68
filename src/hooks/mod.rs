//! Alert hooks (`--on-ban`, `--on-login`): external commands that get a
//! batch of events on their standard input. This module owns starting them,
//! feeding them, bounding how long and how many of them run, and reporting
//! their failures in the log. It never delays blocking: [`Hook::fire`]
//! only hands the batch to a new supervising thread and returns, and a batch
//! that arrives while the hook is still busy with `max_running` earlier ones
//! is dropped rather than queued.
//!
//! Each run has one thread and no more: the child's stdin and stderr pipes
//! are non-blocking on our side, and the thread feeds the one, drains the
//! other and polls for the exit every 20 ms. A hook that never reads its
//! input, or leaves a background process holding its pipes, cannot hang
//! that thread. The child leads its own process group, so a timeout
//! (SIGTERM, then SIGKILL 2 s later) also reaches what a shell-script hook
//! started. Commands run directly, never through a shell; [`split_command`]
//! turns the flag's value into an argv. [`run`] owns one run: spawning,
//! feeding, draining, the timeout and the report. The child is built by
//! [`crate::child::hook`]: no blocked or ignored signals, no inherited
//! descriptors, and a minimal environment (`PATH`, `LANG`, `TZ`, the
//! variables named with [`Hook::pass_env`], then the run's `BADGUYS_*`).

use std::ffi::OsString;
use std::sync::{Arc, Condvar, Mutex, MutexGuard, PoisonError};
use std::thread;
use std::time::Duration;

use tracing::warn;

mod run;
#[cfg(test)]
mod tests;

use run::Run;

/// How often a supervising thread looks at its child.
const POLL: Duration = Duration::from_millis(20);
/// Time between SIGTERM and SIGKILL once a run is over its timeout.
const KILL_GRACE: Duration = Duration::from_secs(2);
/// How much of a failed run's stderr goes into the log.
const STDERR_KEEP: usize = 512;

/// A command to run on events, e.g.
/// `--on-ban "/usr/local/libexec/badguys/telegram --chat 42"`.
///
/// `Hook` is `Send + Sync`; share it by reference or in an `Arc`. Every
/// run started by [`Hook::fire`] counts against `max_running` until its
/// process has exited and been reaped.
#[derive(Debug)]
pub struct Hook {
    name: &'static str,
    argv: Arc<[String]>,
    timeout: Duration,
    max_running: usize,
    running: Arc<Running>,
    /// Variables of badguys' environment passed on, with their values.
    pass: Arc<[(OsString, OsString)]>,
}

/// Whether [`Hook::fire`] started a run.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[must_use = "a dropped batch should be logged"]
pub enum Fired {
    /// A supervising thread took the batch. Failures from here on (the
    /// program is missing, exits non-zero, times out) are logged by it.
    Started,
    /// The batch was not started: `max_running` runs of the hook are still
    /// going (or, rarely, no thread could be created, which is logged).
    Dropped,
}

/// The number of runs going, and a signal when it drops to zero.
#[derive(Debug, Default)]
struct Running {
    count: Mutex<usize>,
    idle: Condvar,
}

impl Running {
    fn lock(&self) -> MutexGuard<'_, usize> {
        self.count.lock().unwrap_or_else(PoisonError::into_inner)
    }
}

/// One run's claim on the count, given back when the supervising thread
/// ends, however it ends.
struct Slot(Arc<Running>);

impl Drop for Slot {
    fn drop(&mut self) {
        let mut n = self.0.lock();
        *n -= 1;
        if *n == 0 {
            self.0.idle.notify_all();
        }
    }
}

impl Hook {
    /// `argv[0]` is run directly (no shell; a name without `/` is looked up
    /// in the child's `PATH`: badguys' own without relative entries), with
    /// `argv[1..]` as its arguments. `name` (`"on-ban"`, `"on-login"`)
    /// prefixes the log messages. A `max_running` of 0 is
    /// taken as 1. An empty `argv` makes every run fail with a warning;
    /// [`split_command`] never returns one.
    #[must_use]
    pub fn new(name: &'static str, argv: Vec<String>, timeout: Duration, max_running: usize) -> Hook {
        Hook {
            name,
            argv: argv.into(),
            timeout,
            max_running: max_running.max(1),
            running: Arc::default(),
            pass: Arc::new([]),
        }
    }

    /// Passes the variables `names` of badguys' environment, as they are
    /// now, to every run (a hook gets none of the others). A name that is
    /// not set is logged with a warning and left out.
    #[must_use]
    pub fn pass_env(mut self, names: &[String]) -> Hook {
        let (pass, unset) = crate::child::pass_env(names);
        for n in unset {
            warn!("{} hook: hook-env {n}: not set in badguys' environment", self.name);
        }
        self.pass = pass.into();
        self
    }

    /// Starts the command in the background with `stdin` written to its
    /// standard input (which is then closed) and `env` added to its
    /// minimal environment. Returns at once and never waits on the child.
    ///
    /// If `max_running` runs of this hook are still going, the batch is not
    /// started and [`Fired::Dropped`] is returned for the caller to log.
    /// A run that exceeds the timeout is killed (SIGTERM to its process
    /// group, SIGKILL 2 s later); that, a non-zero exit (with the first 512
    /// bytes of its stderr) and a command that cannot be started are logged
    /// with `warn!`. The hook's stdout is discarded, and so is input it does
    /// not read.
    pub fn fire(&self, stdin: Vec<u8>, env: Vec<(String, String)>) -> Fired {
        {
            let mut n = self.running.lock();
            if *n >= self.max_running {
                return Fired::Dropped;
            }
            *n += 1;
        }
        let slot = Slot(Arc::clone(&self.running));
        let run = Run {
            name: self.name,
            argv: Arc::clone(&self.argv),
            timeout: self.timeout,
            stdin,
            env,
            pass: Arc::clone(&self.pass),
        };
        let spawned = thread::Builder::new().name(format!("hook {}", self.name)).spawn(move || {
            let _slot = slot;
            run.supervise();
        });
        match spawned {
            Ok(_) => Fired::Started,
            // The closure, and the slot in it, is dropped: the count is back.
            Err(e) => {
                warn!("{} hook: cannot start a thread to run it: {e}", self.name);
                Fired::Dropped
            }
        }
    }

    /// Waits until no run of this hook is going, at most `limit`; returns
    /// whether all have finished. For shutdown and tests. Runs still going
    /// are left alone: in their own process groups, they outlive badguys
    /// if it exits now.
    pub fn drain(&self, limit: Duration) -> bool {
        let n = self.running.lock();
        let (n, _) = self.running.idle.wait_timeout_while(n, limit, |n| *n > 0).unwrap_or_else(PoisonError::into_inner);
        *n == 0
    }
}

/// Splits a hook command line into an argv, without a shell, as POSIX sh
/// words (the `shlex` crate): spaces, tabs and newlines separate words;
/// `'…'` quotes everything up to the next `'`; inside `"…"` a backslash
/// escapes `"`, `\`, `$` and `` ` `` (before any other character it stays
/// a backslash); outside quotes a backslash escapes the next character.
/// Quotes join with what touches them (`a'b c'd` is one word) and `''` is
/// an empty word; a word starting with `#` starts a comment. There is no
/// variable, glob or tilde expansion.
///
/// Errors: an unterminated quote, a trailing backslash, or no word at all.
pub fn split_command(s: &str) -> Result<Vec<String>, String> {
    let Some(words) = shlex::split(s) else {
        // shlex says only that the line does not end as a whole word: tell
        // which way by what would complete it.
        return Err(if shlex::split(&format!("{s}x")).is_some() {
            "trailing backslash".into()
        } else if shlex::split(&format!("{s}'")).is_some() {
            "unterminated ' quote".into()
        } else {
            "unterminated \" quote".into()
        });
    };
    if words.is_empty() {
        return Err("empty command".into());
    }
    Ok(words)
}
