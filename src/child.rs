//! Child processes (nft, pfctl, journalctl) start with no blocked signals.
//! `watch` blocks SIGTERM, SIGINT and SIGHUP in every thread so that one
//! thread can take them with sigwait(); a child would inherit that mask
//! (measured: journalctl then ignored SIGTERM), so it is cleared between
//! fork and exec.

use std::os::unix::process::CommandExt;
use std::process::Command;

use nix::sys::signal::{SigSet, SigmaskHow};

/// Makes `cmd` start with an empty signal mask.
pub fn clean_signals(cmd: &mut Command) -> &mut Command {
    // SAFETY: sigprocmask is async-signal-safe, as a pre_exec hook must be.
    unsafe {
        cmd.pre_exec(|| {
            nix::sys::signal::sigprocmask(SigmaskHow::SIG_SETMASK, Some(&SigSet::empty()), None)
                .map_err(std::io::Error::from)
        })
    }
}
