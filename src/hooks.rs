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
//! turns the flag's value into an argv. The child is built by
//! [`crate::child::hook`]: no blocked or ignored signals, no inherited
//! descriptors, and a minimal environment (`PATH`, `LANG`, `TZ`, the
//! variables named with [`Hook::pass_env`], then the run's `BADGUYS_*`).

use std::ffi::OsString;
use std::io::{self, Read, Write};
use std::os::fd::{AsRawFd, RawFd};
use std::os::unix::process::CommandExt;
use std::process::{ChildStderr, ChildStdin, ExitStatus, Stdio};
use std::sync::{Arc, Condvar, Mutex, MutexGuard, PoisonError};
use std::thread;
use std::time::{Duration, Instant};

use nix::fcntl::{fcntl, FcntlArg, OFlag};
use nix::sys::signal::{killpg, pthread_sigmask, SigSet, SigmaskHow, Signal};
use nix::unistd::Pid;
use tracing::{debug, warn};

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

/// Splits a hook command line into an argv, without a shell. Whitespace
/// separates words; `'…'` quotes everything up to the next `'`; `"…"`
/// quotes too, and a backslash inside it escapes `"` and `\` (before any
/// other character it stays a backslash); outside quotes a backslash
/// escapes the next character. Quotes join with what touches them
/// (`a'b c'd` is one word) and `''` is an empty word. There is no variable,
/// glob or tilde expansion.
///
/// Errors: an unterminated quote, a trailing backslash, or no word at all.
pub fn split_command(s: &str) -> Result<Vec<String>, String> {
    let mut words = Vec::new();
    let mut word = String::new();
    let mut in_word = false;
    let mut chars = s.chars();
    while let Some(c) = chars.next() {
        match c {
            c if c.is_whitespace() => {
                if in_word {
                    words.push(std::mem::take(&mut word));
                    in_word = false;
                }
            }
            '\'' => {
                in_word = true;
                loop {
                    match chars.next() {
                        Some('\'') => break,
                        Some(c) => word.push(c),
                        None => return Err("unterminated ' quote".into()),
                    }
                }
            }
            '"' => {
                in_word = true;
                loop {
                    match chars.next() {
                        Some('"') => break,
                        Some('\\') => match chars.next() {
                            Some(c @ ('"' | '\\')) => word.push(c),
                            Some(c) => {
                                word.push('\\');
                                word.push(c);
                            }
                            None => return Err("unterminated \" quote".into()),
                        },
                        Some(c) => word.push(c),
                        None => return Err("unterminated \" quote".into()),
                    }
                }
            }
            '\\' => {
                in_word = true;
                match chars.next() {
                    Some(c) => word.push(c),
                    None => return Err("trailing backslash".into()),
                }
            }
            c => {
                in_word = true;
                word.push(c);
            }
        }
    }
    if in_word {
        words.push(word);
    }
    if words.is_empty() {
        return Err("empty command".into());
    }
    Ok(words)
}

/// One batch for one run, moved into its supervising thread.
struct Run {
    name: &'static str,
    argv: Arc<[String]>,
    timeout: Duration,
    stdin: Vec<u8>,
    env: Vec<(String, String)>,
    pass: Arc<[(OsString, OsString)]>,
}

/// Where a run is on its way to being killed.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Kill {
    None,
    Termed(Instant),
    Killed,
}

impl Run {
    fn supervise(self) {
        // A hook that exits without reading its input makes our writes fail
        // with EPIPE; the SIGPIPE that comes with them must not kill badguys,
        // whatever its disposition is. It is directed at this thread, so
        // blocking it here is enough. std does not clear the mask in the
        // child: crate::child does.
        let mut pipe = SigSet::empty();
        pipe.add(Signal::SIGPIPE);
        let _ = pthread_sigmask(SigmaskHow::SIG_BLOCK, Some(&pipe), None);

        let name = self.name;
        let Some((prog, args)) = self.argv.split_first() else {
            warn!("{name} hook: empty command");
            return;
        };
        // The command as the log shows it.
        let command = self.argv.join(" ");
        let started = Instant::now();
        let mut child = match crate::child::hook(prog, &self.pass)
            .args(args)
            .envs(self.env.iter().map(|(k, v)| (k, v)))
            .stdin(Stdio::piped())
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .process_group(0)
            .spawn()
        {
            Ok(child) => child,
            Err(e) => {
                warn!("{name} hook {command}: cannot run {prog}: {e}");
                return;
            }
        };
        // The child leads its group, so its pid is the group's id. Killing
        // the group is safe until the leader is reaped: the id cannot be
        // reused while the zombie holds it.
        // (A pid is a pid_t, an i32, on every Unix.)
        let group = Pid::from_raw(child.id() as i32);
        let mut input = child.stdin.take().filter(|p| nonblocking(name, &command, p.as_raw_fd()));
        let mut errors = child.stderr.take().filter(|p| nonblocking(name, &command, p.as_raw_fd()));
        let mut written = 0;
        let mut kept = Vec::new();
        let deadline = started + self.timeout;
        let mut kill = Kill::None;

        let status: Option<ExitStatus> = loop {
            let fed = feed(&mut input, &self.stdin, &mut written);
            let read = drain_stderr(&mut errors, &mut kept);
            match child.try_wait() {
                Ok(Some(status)) => break Some(status),
                Ok(None) => {}
                Err(e) => {
                    // Only if someone reaps our children (SIGCHLD ignored).
                    warn!("{name} hook {command}: cannot wait for it: {e}");
                    break None;
                }
            }
            let now = Instant::now();
            match kill {
                Kill::None if now >= deadline => {
                    let _ = killpg(group, Signal::SIGTERM);
                    kill = Kill::Termed(now + KILL_GRACE);
                    input = None;
                }
                Kill::Termed(at) if now >= at => {
                    let _ = killpg(group, Signal::SIGKILL);
                    kill = Kill::Killed;
                }
                _ => {}
            }
            if !fed && !read {
                thread::sleep(POLL);
            }
        };
        // What the child wrote before it exited is in the pipe; a background
        // process still holding the pipe cannot make this wait.
        drain_stderr(&mut errors, &mut kept);
        let stderr = if kept.is_empty() {
            String::new()
        } else {
            format!("; stderr: {:?}", String::from_utf8_lossy(&kept).trim_end())
        };
        let took = started.elapsed();
        match (kill, status) {
            (Kill::None, Some(status)) if status.success() => {
                debug!("{name} hook {command}: done in {} ms", took.as_millis());
            }
            (Kill::None, Some(status)) => warn!("{name} hook {command}: failed: {status}{stderr}"),
            (Kill::None, None) => {}
            (_, status) => {
                let how = if kill == Kill::Killed { "SIGKILL" } else { "SIGTERM" };
                let status = status.map(|s| format!(" ({s})")).unwrap_or_default();
                warn!(
                    "{name} hook {command}: still running after {} ms, killed with {how}{status}{stderr}",
                    self.timeout.as_millis()
                );
            }
        }
    }
}

/// Makes our end of a pipe non-blocking. On failure (not expected) the
/// pipe is given up, which is logged: a blocking pipe could hang the run.
fn nonblocking(name: &str, command: &str, fd: RawFd) -> bool {
    let set = fcntl(fd, FcntlArg::F_GETFL)
        .and_then(|flags| fcntl(fd, FcntlArg::F_SETFL(OFlag::from_bits_retain(flags) | OFlag::O_NONBLOCK)));
    if let Err(e) = set {
        warn!("{name} hook {command}: cannot make a pipe non-blocking, closing it: {e}");
    }
    set.is_ok()
}

/// Writes as much of `data[*written..]` as the pipe takes without blocking.
/// Closes the pipe once everything is written, or when the hook stopped
/// reading (EPIPE). Returns whether anything was written.
fn feed(pipe: &mut Option<ChildStdin>, data: &[u8], written: &mut usize) -> bool {
    let mut progress = false;
    while let Some(p) = pipe.as_mut() {
        if *written == data.len() {
            *pipe = None;
            break;
        }
        match p.write(&data[*written..]) {
            Ok(n) if n > 0 => {
                *written += n;
                progress = true;
            }
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(e) if e.kind() == io::ErrorKind::WouldBlock => break,
            // Ok(0), EPIPE and the like: the rest of the input is dropped.
            _ => *pipe = None,
        }
    }
    progress
}

/// Reads what the pipe holds without blocking, keeping the first
/// `STDERR_KEEP` bytes. Closes it at end of file. Reads at most 64 KiB per
/// call, so a chatty hook cannot keep the loop from its timeout. Returns
/// whether anything was read.
fn drain_stderr(pipe: &mut Option<ChildStderr>, kept: &mut Vec<u8>) -> bool {
    let mut buf = [0; 4096];
    let mut progress = false;
    for _ in 0..16 {
        let Some(p) = pipe.as_mut() else { break };
        match p.read(&mut buf) {
            Ok(0) => *pipe = None,
            Ok(n) => {
                let room = STDERR_KEEP.saturating_sub(kept.len());
                kept.extend_from_slice(&buf[..n.min(room)]);
                progress = true;
            }
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(e) if e.kind() == io::ErrorKind::WouldBlock => break,
            Err(_) => *pipe = None,
        }
    }
    progress
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::path::{Path, PathBuf};
    use std::process::Command;
    use std::sync::Once;

    /// Everything logged by any test; each test looks for its own temp dir
    /// in it.
    static LOG: Mutex<Vec<u8>> = Mutex::new(Vec::new());

    struct LogWriter;

    impl Write for LogWriter {
        fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
            LOG.lock().unwrap_or_else(PoisonError::into_inner).extend_from_slice(buf);
            Ok(buf.len())
        }
        fn flush(&mut self) -> io::Result<()> {
            Ok(())
        }
    }

    fn capture_log() {
        static ONCE: Once = Once::new();
        ONCE.call_once(|| {
            let subscriber = tracing_subscriber::fmt()
                .with_writer(|| LogWriter)
                .with_ansi(false)
                .with_max_level(tracing::Level::DEBUG)
                .finish();
            tracing::subscriber::set_global_default(subscriber).expect("only these tests set a subscriber");
        });
    }

    /// The log lines that mention `needle`.
    fn logged(needle: &str) -> Vec<String> {
        let log = LOG.lock().unwrap_or_else(PoisonError::into_inner);
        String::from_utf8_lossy(&log).lines().filter(|l| l.contains(needle)).map(String::from).collect()
    }

    /// A temp dir with `hook.sh` holding `body`, and the hook running it.
    fn script(body: &str, timeout: Duration, max_running: usize) -> (tempfile::TempDir, PathBuf, Hook) {
        capture_log();
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("hook.sh");
        std::fs::write(&path, format!("cd '{}' || exit 99\n{body}\n", dir.path().display())).unwrap();
        let argv = vec!["/bin/sh".to_string(), path.display().to_string()];
        (dir, path, Hook::new("on-ban", argv, timeout, max_running))
    }

    fn read(dir: &Path, name: &str) -> String {
        std::fs::read_to_string(dir.join(name)).unwrap_or_else(|e| panic!("{name}: {e}"))
    }

    const LONG: Duration = Duration::from_secs(10);

    #[test]
    fn gets_stdin_and_env() {
        let (dir, path, hook) =
            script(r#"cat > stdin.out; printf '%s|%s|%s\n' "$BADGUYS_EVENT" "$BADGUYS_COUNT" "$1" > env.out"#, LONG, 4);
        let input = b"{\"event\":\"ban\",\"addr\":\"198.51.100.7\"}\n{\"event\":\"ban\"}\n".to_vec();
        let env = vec![("BADGUYS_EVENT".into(), "ban".into()), ("BADGUYS_COUNT".into(), "2".into())];
        assert_eq!(hook.fire(input.clone(), env), Fired::Started);
        assert!(hook.drain(LONG));
        assert_eq!(read(dir.path(), "stdin.out").as_bytes(), &input[..]);
        assert_eq!(read(dir.path(), "env.out"), "ban|2|\n");
        // Success is not a warning.
        assert!(logged(&path.display().to_string()).iter().all(|l| !l.contains("WARN")));
    }

    #[test]
    fn large_stdin_is_written_whole() {
        let (dir, _, hook) = script("cat > stdin.out", LONG, 1);
        let input: Vec<u8> = (0..1_000_000u32).map(|i| b'a' + (i % 26) as u8).collect();
        assert_eq!(hook.fire(input.clone(), vec![]), Fired::Started);
        assert!(hook.drain(LONG));
        assert!(read(dir.path(), "stdin.out").as_bytes() == &input[..]);
    }

    #[test]
    fn empty_stdin_is_closed_at_once() {
        let (dir, _, hook) = script("wc -c < /dev/stdin > n.out", LONG, 1);
        assert_eq!(hook.fire(vec![], vec![]), Fired::Started);
        assert!(hook.drain(LONG));
        assert_eq!(read(dir.path(), "n.out").trim(), "0");
    }

    #[test]
    fn hook_that_ignores_its_input() {
        // Exits at once without reading 1 MB: EPIPE, no SIGPIPE, no warning.
        let (_dir, path, hook) = script("exit 0", LONG, 1);
        assert_eq!(hook.fire(vec![b'x'; 1 << 20], vec![]), Fired::Started);
        assert!(hook.drain(LONG));
        assert!(logged(&path.display().to_string()).iter().all(|l| !l.contains("WARN")));

        // Runs a while without reading: the full pipe does not stall anything.
        let (dir, _, hook) = script("sleep 0.3; echo done > done.out", LONG, 1);
        assert_eq!(hook.fire(vec![b'x'; 1 << 20], vec![]), Fired::Started);
        assert!(hook.drain(LONG));
        assert_eq!(read(dir.path(), "done.out"), "done\n");
    }

    #[test]
    fn sigpipe_cannot_kill_badguys() {
        // badguys may restore SIGPIPE's default action (a closed stdout is
        // then a quiet exit). Try that in a copy of this test binary, not
        // in the process the other tests share.
        if std::env::var_os("BADGUYS_TEST_SIGPIPE").is_some() {
            unsafe { nix::sys::signal::signal(Signal::SIGPIPE, nix::sys::signal::SigHandler::SigDfl) }.unwrap();
            let hook = Hook::new("on-ban", vec!["true".into()], LONG, 1);
            for _ in 0..5 {
                assert_eq!(hook.fire(vec![b'x'; 1 << 20], vec![]), Fired::Started);
                assert!(hook.drain(LONG));
            }
            return;
        }
        let out = Command::new(std::env::current_exe().unwrap())
            .args(["--exact", "hooks::tests::sigpipe_cannot_kill_badguys", "--test-threads=1"])
            .env("BADGUYS_TEST_SIGPIPE", "1")
            .output()
            .unwrap();
        assert!(out.status.success(), "{}: {}", out.status, String::from_utf8_lossy(&out.stdout));
        assert!(String::from_utf8_lossy(&out.stdout).contains("1 passed"));
    }

    #[test]
    fn slow_hook_is_killed_and_fire_does_not_wait() {
        let (dir, path, hook) = script("sleep 30 & echo $! > sleep.pid; wait", Duration::from_millis(300), 1);
        let t = Instant::now();
        assert_eq!(hook.fire(b"x\n".to_vec(), vec![]), Fired::Started);
        assert!(t.elapsed() < Duration::from_millis(50), "fire took {:?}", t.elapsed());
        assert!(hook.drain(Duration::from_secs(5)));
        let took = t.elapsed();
        assert!(took >= Duration::from_millis(300) && took < Duration::from_millis(1500), "took {took:?}");
        let lines = logged(&path.display().to_string());
        assert!(lines.iter().any(|l| l.contains("WARN") && l.contains("killed with SIGTERM")), "{lines:?}");
        // The shell's child got the signal too: it is gone, or a zombie
        // waiting for a reaper.
        #[cfg(target_os = "linux")]
        {
            let pid = read(dir.path(), "sleep.pid");
            let stat = std::fs::read_to_string(format!("/proc/{}/stat", pid.trim())).unwrap_or_default();
            assert!(stat.is_empty() || stat.contains(") Z "), "sleep still alive: {stat}");
        }
        let _ = dir;
    }

    #[test]
    fn hook_ignoring_sigterm_gets_sigkill() {
        let (_dir, path, hook) = script("trap '' TERM; sleep 30", Duration::from_millis(100), 1);
        let t = Instant::now();
        assert_eq!(hook.fire(vec![], vec![]), Fired::Started);
        assert!(hook.drain(Duration::from_secs(6)));
        let took = t.elapsed();
        assert!(took >= KILL_GRACE && took < Duration::from_secs(4), "took {took:?}");
        let lines = logged(&path.display().to_string());
        assert!(lines.iter().any(|l| l.contains("WARN") && l.contains("killed with SIGKILL")), "{lines:?}");
    }

    #[test]
    fn failing_hook_is_logged_with_its_stderr() {
        let (_dir, path, hook) = script("echo 'no token' >&2; exit 3", LONG, 1);
        assert_eq!(hook.fire(vec![], vec![]), Fired::Started);
        assert!(hook.drain(LONG));
        let lines = logged(&path.display().to_string());
        assert_eq!(lines.len(), 1, "{lines:?}");
        assert!(lines[0].contains("WARN"), "{lines:?}");
        assert!(
            lines[0].contains(&format!(
                "on-ban hook /bin/sh {}: failed: exit status: 3; stderr: \"no token\"",
                path.display()
            )),
            "{lines:?}"
        );
    }

    #[test]
    fn stderr_is_cut_at_512_bytes() {
        let (_dir, path, hook) =
            script("i=0; while [ $i -lt 100 ]; do printf xxxxxxxxxxxxxxxxxxxx >&2; i=$((i+1)); done; exit 1", LONG, 1);
        assert_eq!(hook.fire(vec![], vec![]), Fired::Started);
        assert!(hook.drain(LONG));
        let lines = logged(&path.display().to_string());
        assert_eq!(lines.len(), 1, "{lines:?}");
        assert!(lines[0].contains(&"x".repeat(512)) && !lines[0].contains(&"x".repeat(513)), "{lines:?}");
    }

    #[test]
    fn busy_hook_drops_the_next_batch() {
        let (dir, _, hook) = script("while [ ! -e gate ]; do sleep 0.02; done; cat >> seen.out", LONG, 1);
        assert_eq!(hook.fire(b"one\n".to_vec(), vec![]), Fired::Started);
        assert_eq!(hook.fire(b"two\n".to_vec(), vec![]), Fired::Dropped);
        assert!(!hook.drain(Duration::from_millis(100)));
        std::fs::write(dir.path().join("gate"), "").unwrap();
        assert!(hook.drain(LONG));
        assert_eq!(hook.fire(b"three\n".to_vec(), vec![]), Fired::Started);
        assert!(hook.drain(LONG));
        assert_eq!(read(dir.path(), "seen.out"), "one\nthree\n");
    }

    #[test]
    fn max_running_allows_that_many() {
        let (dir, _, hook) = script("while [ ! -e gate ]; do sleep 0.02; done", LONG, 2);
        assert_eq!(hook.fire(vec![], vec![]), Fired::Started);
        assert_eq!(hook.fire(vec![], vec![]), Fired::Started);
        assert_eq!(hook.fire(vec![], vec![]), Fired::Dropped);
        std::fs::write(dir.path().join("gate"), "").unwrap();
        assert!(hook.drain(LONG));
        // 0 means 1.
        let zero = Hook::new("on-login", vec!["true".into()], LONG, 0);
        assert_eq!(zero.fire(vec![], vec![]), Fired::Started);
        assert!(zero.drain(LONG));
    }

    #[test]
    fn drain_with_nothing_running() {
        let hook = Hook::new("on-ban", vec!["true".into()], LONG, 1);
        let t = Instant::now();
        assert!(hook.drain(Duration::from_secs(5)));
        assert!(t.elapsed() < Duration::from_millis(50));
    }

    #[test]
    fn missing_program_is_logged() {
        capture_log();
        let dir = tempfile::tempdir().unwrap();
        let prog = dir.path().join("no-such-hook").display().to_string();
        let hook = Hook::new("on-login", vec![prog.clone(), "--chat".into(), "1".into()], LONG, 1);
        assert_eq!(hook.fire(b"x\n".to_vec(), vec![]), Fired::Started);
        assert!(hook.drain(LONG));
        let lines = logged(&prog);
        assert!(
            lines.iter().any(|l| l.contains("WARN") && l.contains("on-login hook") && l.contains("cannot run")),
            "{lines:?}"
        );
        // And it can be fired again.
        assert_eq!(hook.fire(vec![], vec![]), Fired::Started);
        assert!(hook.drain(LONG));
    }

    #[test]
    fn empty_argv_is_logged_not_a_panic() {
        let hook = Hook::new("on-ban", vec![], LONG, 1);
        assert_eq!(hook.fire(vec![], vec![]), Fired::Started);
        assert!(hook.drain(LONG));
    }

    #[test]
    #[cfg(target_os = "linux")]
    fn hook_runs_in_its_own_group_with_a_clean_signal_mask() {
        let (dir, _, hook) = script(
            // The shell reads its own status itself: a forked grep could
            // catch it with all signals blocked around the fork.
            "cat /proc/$$/stat > stat.out; while read -r l; do case $l in SigBlk*) echo \"$l\";; esac; done < /proc/self/status > mask.out",
            LONG,
            1,
        );
        assert_eq!(hook.fire(vec![], vec![]), Fired::Started);
        assert!(hook.drain(LONG));
        // pid (comm) state ppid pgrp …
        let stat = read(dir.path(), "stat.out");
        let pid = stat.split_whitespace().next().unwrap();
        let pgrp = stat[stat.rfind(')').unwrap() + 1..].split_whitespace().nth(2).unwrap();
        assert_eq!(pid, pgrp, "not a group leader: {stat}");
        assert_ne!(pgrp, nix::unistd::getpgrp().to_string());
        // SIGPIPE, blocked in the supervising thread, is not blocked in the hook.
        assert_eq!(read(dir.path(), "mask.out").trim(), "SigBlk:\t0000000000000000");
    }

    fn split(s: &str) -> Result<Vec<String>, String> {
        split_command(s)
    }

    fn words(v: &[&str]) -> Result<Vec<String>, String> {
        Ok(v.iter().map(|s| s.to_string()).collect())
    }

    #[test]
    fn split_plain_words() {
        assert_eq!(
            split("/usr/local/libexec/badguys/telegram --chat 42"),
            words(&["/usr/local/libexec/badguys/telegram", "--chat", "42"])
        );
        assert_eq!(split("  a \t b\n c  "), words(&["a", "b", "c"]));
        assert_eq!(split("x"), words(&["x"]));
    }

    #[test]
    fn split_quotes() {
        assert_eq!(split("mail -s 'bad guys' root"), words(&["mail", "-s", "bad guys", "root"]));
        assert_eq!(split(r#"say "hello world""#), words(&["say", "hello world"]));
        assert_eq!(split(r#"a'b c'd"e f"g"#), words(&["ab cde fg"]));
        assert_eq!(split("'' \"\" x"), words(&["", "", "x"]));
        // No escapes inside '…'.
        assert_eq!(split(r"'a\b' 'c\'"), words(&[r"a\b", r"c\"]));
        // Inside "…" a backslash escapes " and \ only.
        assert_eq!(split(r#""a\"b" "c\\d" "e\nf" "$HOME""#), words(&[r#"a"b"#, r"c\d", r"e\nf", "$HOME"]));
        assert_eq!(split(r#""it's" 'say "hi"'"#), words(&["it's", r#"say "hi""#]));
    }

    #[test]
    fn split_bare_backslash() {
        assert_eq!(split(r"a\ b c"), words(&["a b", "c"]));
        assert_eq!(split(r#"\"x\" \'y \\z"#), words(&[r#""x""#, "'y", r"\z"]));
        assert_eq!(split(r"\n"), words(&["n"]));
    }

    #[test]
    fn split_errors() {
        assert_eq!(split(""), Err("empty command".to_string()));
        assert_eq!(split(" \t\n "), Err("empty command".to_string()));
        assert_eq!(split("a 'b c"), Err("unterminated ' quote".to_string()));
        assert_eq!(split(r#"a "b c"#), Err("unterminated \" quote".to_string()));
        assert_eq!(split(r#"a "b\""#), Err("unterminated \" quote".to_string()));
        assert_eq!(split(r#"a "b\"#), Err("unterminated \" quote".to_string()));
        assert_eq!(split(r"a \"), Err("trailing backslash".to_string()));
    }
}
