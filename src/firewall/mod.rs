//! Firewall backends. Each one knows how to make the kernel's table or sets
//! hold exactly a given list; none knows where the list came from. Commands
//! run directly (no shell), built by `crate::child` (clean signals and
//! descriptors, `LC_ALL=C`), with their stderr captured for the error.

mod nftables;
mod pf;

use std::io::Write;
use std::path::Path;
use std::process::Stdio;

use crate::addr::Net;
use crate::Error;

pub use nftables::{script as nft_script, valid_name, NftTarget};
pub use pf::PfTarget;

/// Which firewall to reload, and its names.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Firewall {
    Pf(PfTarget),
    Nftables(NftTarget),
    None,
}

impl Firewall {
    /// pf on OpenBSD (and the other BSDs that ship it), nftables elsewhere.
    pub fn default_kind() -> &'static str {
        if cfg!(any(target_os = "openbsd", target_os = "freebsd", target_os = "netbsd", target_os = "macos")) {
            "pf"
        } else {
            "nftables"
        }
    }

    pub fn name(&self) -> &'static str {
        match self {
            Firewall::Pf(_) => "pf",
            Firewall::Nftables(_) => "nftables",
            Firewall::None => "none",
        }
    }

    /// Makes the firewall hold exactly `entries` (sorted), which `file`
    /// (the blocklist just written) also holds. `new` are the entries that
    /// were not published before (see [`added`]): pf kills their states.
    /// nftables needs nothing more: the badguys chains look at every
    /// packet, those of connections already open included.
    pub fn replace(&self, entries: &[Net], file: &Path, new: &[Net]) -> Result<(), Error> {
        match self {
            Firewall::Pf(t) => t.replace(file, new),
            Firewall::Nftables(t) => t.replace(entries),
            Firewall::None => Ok(()),
        }
    }

    /// Adds `entries` (none of them already in the firewall) in one call.
    pub fn add(&self, entries: &[Net]) -> Result<(), Error> {
        if entries.is_empty() {
            return Ok(());
        }
        match self {
            Firewall::Pf(t) => t.add(entries),
            Firewall::Nftables(t) => t.add(entries),
            Firewall::None => Ok(()),
        }
    }

    /// Checks that the table or sets exist; the error says what is missing.
    pub fn check(&self) -> Result<(), Error> {
        match self {
            Firewall::Pf(t) => t.check(),
            Firewall::Nftables(t) => t.check(),
            Firewall::None => Ok(()),
        }
    }
}

/// The entries of `now` that `before` does not hold: what a replace newly
/// lists.
pub fn added<'a>(before: impl IntoIterator<Item = &'a Net>, now: &[Net]) -> Vec<Net> {
    let before: std::collections::HashSet<&Net> = before.into_iter().collect();
    now.iter().filter(|n| !before.contains(n)).copied().collect()
}

/// Runs `program args…` with `stdin` fed to it; an error names the command
/// and carries its stderr.
pub(crate) fn run(program: &str, args: &[&str], stdin: Option<&[u8]>) -> Result<(), Error> {
    let command = std::iter::once(program).chain(args.iter().copied()).collect::<Vec<_>>().join(" ");
    let fail = |status: String, stderr: &[u8]| Error::Firewall {
        command: command.clone(),
        status,
        stderr: String::from_utf8_lossy(&stderr[..stderr.len().min(4096)]).trim().to_string(),
    };
    let mut child = crate::child::command(program)
        .args(args)
        .stdin(if stdin.is_some() { Stdio::piped() } else { Stdio::null() })
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .map_err(|e| fail(format!("cannot run: {e}"), b""))?;
    let writer = stdin.map(|data| {
        let mut pipe = child.stdin.take().expect("stdin is piped");
        let data = data.to_vec();
        std::thread::spawn(move || pipe.write_all(&data))
    });
    let output = child.wait_with_output().map_err(|e| fail(format!("cannot wait: {e}"), b""))?;
    if let Some(w) = writer {
        // A write error (EPIPE) only matters if the command also failed.
        let _ = w.join();
    }
    if output.status.success() {
        Ok(())
    } else {
        Err(fail(output.status.to_string(), &output.stderr))
    }
}
