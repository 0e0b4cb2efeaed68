//! The one builder of child processes (nft, pfctl, journalctl, the hooks)
//! and the thread that takes `watch`'s signals.
//!
//! `watch` blocks SIGTERM, SIGINT and SIGHUP in every thread so that one
//! thread can take them with sigwait(), and a hook's supervising thread
//! blocks SIGPIPE. A child inherits its parent's signal mask and ignored
//! signals across fork and exec, and std resets only SIGPIPE's disposition,
//! never the mask (measured: a hook and journalctl then ignored the SIGTERM
//! meant to stop them). A child inherits every descriptor not marked
//! close-on-exec too, and the whole environment. So every [`Command`] is
//! made here, and each child starts the same way:
//!
//! - an empty signal mask, and every signal at its default action;
//! - no descriptor but 0, 1 and 2: the others are marked close-on-exec
//!   between fork and exec (closing them outright would also close std's
//!   own pipe that reports a failed exec to the parent);
//! - a defined environment: `PATH` (badguys' own, without the relative
//!   entries that would run programs from the working directory, or
//!   [`DEFAULT_PATH`]), `TZ` when set, and a locale. Tools get `LC_ALL=C`,
//!   so the messages badguys reads or logs are the same everywhere; hooks
//!   get badguys' `LANG`, the variables the configuration names
//!   (`hook-env`), and then their own `BADGUYS_*` ones.
//!
//! std runs the `pre_exec` closure after the child's standard streams are
//! in place (dup2 onto 0, 1 and 2) and after its process group is set, just
//! before exec; it does only async-signal-safe system calls.

use std::ffi::{OsStr, OsString};
use std::os::unix::ffi::OsStrExt;
use std::os::unix::process::CommandExt;
use std::process::Command;
use std::time::Duration;

use nix::sys::signal::{SaFlags, SigAction, SigHandler, SigSet, SigmaskHow, Signal};
use tracing::error;

/// `PATH` for children when badguys has none of its own.
pub const DEFAULT_PATH: &str = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin";

/// Highest descriptor the fallback loop marks close-on-exec, where
/// close_range(2) is missing (kernels before 5.11, the BSDs).
const FD_BOUND: i32 = 1 << 16;

/// A tool (nft, pfctl, journalctl): clean signals and descriptors, and
/// `PATH`, `TZ` and `LC_ALL=C` only.
pub fn command(program: impl AsRef<OsStr>) -> Command {
    let mut cmd = base(program);
    cmd.env("LC_ALL", "C").env("LANG", "C");
    cmd
}

/// A hook: clean signals and descriptors, `PATH`, `TZ`, badguys' `LANG`
/// when set, then `pass` (the variables the configuration names, with
/// their values).
pub fn hook(program: impl AsRef<OsStr>, pass: &[(OsString, OsString)]) -> Command {
    let mut cmd = base(program);
    if let Some(lang) = std::env::var_os("LANG") {
        cmd.env("LANG", lang);
    }
    cmd.envs(pass.iter().map(|(k, v)| (k, v)));
    cmd
}

/// The values of the variables `names` in badguys' environment, in order;
/// the names that are not set come back separately.
pub fn pass_env(names: &[String]) -> (Vec<(OsString, OsString)>, Vec<String>) {
    let mut pass = Vec::new();
    let mut unset = Vec::new();
    for n in names {
        match std::env::var_os(n) {
            Some(v) => pass.push((OsString::from(n), v)),
            None => unset.push(n.clone()),
        }
    }
    (pass, unset)
}

/// Whether `name` can be an environment variable's name here: a letter or
/// `_`, then letters, digits and `_`.
pub fn valid_env_name(name: &str) -> bool {
    let mut b = name.bytes();
    b.next().is_some_and(|c| c.is_ascii_alphabetic() || c == b'_') && b.all(|c| c.is_ascii_alphanumeric() || c == b'_')
}

/// badguys' `PATH` without empty or relative entries, or [`DEFAULT_PATH`].
fn child_path() -> OsString {
    let own = std::env::var_os("PATH").unwrap_or_default();
    let dirs: Vec<&[u8]> = own.as_bytes().split(|&b| b == b':').filter(|d| d.first() == Some(&b'/')).collect();
    if dirs.is_empty() {
        return DEFAULT_PATH.into();
    }
    OsStr::from_bytes(&dirs.join(&b':')).to_os_string()
}

fn base(program: impl AsRef<OsStr>) -> Command {
    let mut cmd = Command::new(program);
    cmd.env_clear().env("PATH", child_path());
    if let Some(tz) = std::env::var_os("TZ") {
        cmd.env("TZ", tz);
    }
    let fd_limit = fd_limit();
    // SAFETY: the closure runs in the forked child before exec and makes
    // only async-signal-safe system calls (sigaction, sigprocmask, fcntl,
    // close_range); it allocates nothing and takes no lock.
    unsafe {
        cmd.pre_exec(move || {
            reset_signals()?;
            cloexec_from_3(fd_limit);
            Ok(())
        });
    }
    cmd
}

/// Every signal at its default action, then none blocked.
fn reset_signals() -> std::io::Result<()> {
    let dfl = SigAction::new(SigHandler::SigDfl, SaFlags::empty(), SigSet::empty());
    for sig in Signal::iterator() {
        if !matches!(sig, Signal::SIGKILL | Signal::SIGSTOP) {
            // SAFETY: SIG_DFL installs no handler.
            let _ = unsafe { nix::sys::signal::sigaction(sig, &dfl) };
        }
    }
    nix::sys::signal::sigprocmask(SigmaskHow::SIG_SETMASK, Some(&SigSet::empty()), None).map_err(std::io::Error::from)
}

/// The highest descriptor number the fallback loop must cover (taken in
/// the parent: getrlimit is not on the async-signal-safe list).
fn fd_limit() -> i32 {
    let mut rl = nix::libc::rlimit { rlim_cur: 0, rlim_max: 0 };
    // SAFETY: getrlimit writes into the struct it is given.
    let ok = unsafe { nix::libc::getrlimit(nix::libc::RLIMIT_NOFILE, &mut rl) } == 0;
    if ok {
        i32::try_from(rl.rlim_cur).unwrap_or(FD_BOUND).min(FD_BOUND)
    } else {
        FD_BOUND
    }
}

/// Marks every descriptor from 3 on close-on-exec.
fn cloexec_from_3(limit: i32) {
    #[cfg(target_os = "linux")]
    {
        // SAFETY: close_range takes plain integers; CLOSE_RANGE_CLOEXEC
        // closes nothing now.
        let r =
            unsafe { nix::libc::syscall(nix::libc::SYS_close_range, 3u32, u32::MAX, nix::libc::CLOSE_RANGE_CLOEXEC) };
        if r == 0 {
            return;
        }
    }
    for fd in 3..limit {
        // EBADF for the descriptors that are not open: nothing to do.
        let _ = nix::fcntl::fcntl(fd, nix::fcntl::FcntlArg::F_SETFD(nix::fcntl::FdFlag::FD_CLOEXEC));
    }
}

/// Takes signals with `wait` (sigwait on the blocked set) and hands each to
/// `send` until it returns false. `wait` fails only on a bad signal set,
/// and then keeps failing: the first failure is logged, and the loop then
/// sleeps with `pause` (1 s, doubling up to a minute) instead of spinning.
pub fn take_signals(
    mut wait: impl FnMut() -> nix::Result<Signal>,
    mut send: impl FnMut(Signal) -> bool,
    mut pause: impl FnMut(Duration),
) {
    let mut backoff = Duration::ZERO;
    loop {
        match wait() {
            Ok(sig) => {
                backoff = Duration::ZERO;
                if !send(sig) {
                    return;
                }
            }
            Err(e) => {
                if backoff.is_zero() {
                    error!("cannot wait for signals: {e}; SIGTERM, SIGINT and SIGHUP may go unanswered");
                    backoff = Duration::from_secs(1);
                } else {
                    backoff = (backoff * 2).min(Duration::from_secs(60));
                }
                pause(backoff);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_failing_sigwait_backs_off_and_a_signal_gets_through() {
        let mut calls = 0;
        let mut pauses = Vec::new();
        let mut sent = Vec::new();
        take_signals(
            || {
                calls += 1;
                match calls {
                    1..=8 => Err(nix::Error::EINVAL),
                    9 => Ok(Signal::SIGHUP),
                    _ => Ok(Signal::SIGTERM),
                }
            },
            |s| {
                sent.push(s);
                s != Signal::SIGTERM
            },
            |d| pauses.push(d),
        );
        assert_eq!(sent, [Signal::SIGHUP, Signal::SIGTERM]);
        // One pause per failure, never shorter than the one before, capped.
        let secs: Vec<u64> = pauses.iter().map(Duration::as_secs).collect();
        assert_eq!(secs, [1, 2, 4, 8, 16, 32, 60, 60]);
    }

    #[test]
    fn path_keeps_absolute_entries_only() {
        assert!(valid_env_name("SECRET_TOKEN") && valid_env_name("_x1") && valid_env_name("https_proxy"));
        assert!(!valid_env_name("") && !valid_env_name("1X") && !valid_env_name("A=B") && !valid_env_name("A-B"));
        let p = child_path();
        let p = p.to_str().unwrap();
        assert!(p.split(':').all(|d| d.starts_with('/')), "{p}");
    }
}
