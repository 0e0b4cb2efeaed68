//! One run of a hook, in its supervising thread: spawn the child (in its
//! own process group, built by [`crate::child::hook`]), feed its stdin and
//! drain its stderr through non-blocking pipes, poll for the exit, kill it
//! past the timeout, and log how it ended.

use std::ffi::OsString;
use std::io::{self, Read, Write};
use std::os::fd::{AsRawFd, RawFd};
use std::os::unix::process::CommandExt;
use std::process::{ChildStderr, ChildStdin, ExitStatus, Stdio};
use std::sync::Arc;
use std::thread;
use std::time::{Duration, Instant};

use nix::fcntl::{fcntl, FcntlArg, OFlag};
use nix::sys::signal::{killpg, pthread_sigmask, SigSet, SigmaskHow, Signal};
use nix::unistd::Pid;
use tracing::{debug, warn};

use super::{KILL_GRACE, POLL, STDERR_KEEP};

/// One batch for one run, moved into its supervising thread.
pub(super) struct Run {
    pub(super) name: &'static str,
    pub(super) argv: Arc<[String]>,
    pub(super) timeout: Duration,
    pub(super) stdin: Vec<u8>,
    pub(super) env: Vec<(String, String)>,
    pub(super) pass: Arc<[(OsString, OsString)]>,
}

/// Where a run is on its way to being killed.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Kill {
    None,
    Termed(Instant),
    Killed,
}

impl Run {
    pub(super) fn supervise(self) {
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
        let command = shlex::try_join(self.argv.iter().map(String::as_str)).unwrap_or_else(|_| self.argv.join(" "));
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
