//! The library's error type and the exit status each kind maps to.

use std::io;
use std::path::PathBuf;

/// Everything that can stop a run, by the stage that failed.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// A bad flag value, allow entry or config line.
    #[error("{0}")]
    Config(String),
    /// A config or allow file line that does not parse.
    #[error("{}:{line}: {msg}", path.display())]
    ConfigLine { path: PathBuf, line: usize, msg: String },
    /// A log that cannot be opened or read.
    #[error("{}: {err}", path.display())]
    Input { path: PathBuf, err: io::Error },
    /// A log path that is not a regular file.
    #[error("{}: {what}", path.display())]
    NotRegular { path: PathBuf, what: &'static str },
    /// No log given and the default one is missing.
    #[error("no log to read: {} does not exist (give one with --log PATH)", path.display())]
    NoDefaultLog { path: PathBuf },
    /// journalctl failed (missing, killed, or it refused a cursor).
    #[error("journalctl: {status}{}", if stderr.is_empty() { String::new() } else { format!(": {stderr}") })]
    Journal { status: String, stderr: String },
    /// The blocklist or a file beside it cannot be read or written.
    #[error("{}: {err}", path.display())]
    Output { path: PathBuf, err: io::Error },
    /// The firewall command failed.
    #[error("{command}: {status}{}", if stderr.is_empty() { String::new() } else { format!(": {stderr}") })]
    Firewall { command: String, status: String, stderr: String },
    /// A list, state or lock path that badguys refuses to read or write
    /// (a symlink, another user's file, a directory others can write).
    #[error("{}: {why}", path.display())]
    Unsafe { path: PathBuf, why: String },
    /// A geolocation database that cannot be opened or read.
    #[error("{}: {msg}", path.display())]
    Geo { path: PathBuf, msg: String },
    /// The history database cannot be opened, read or written.
    #[error("{}: {msg}", path.display())]
    History { path: PathBuf, msg: String },
    /// Another badguys holds the lock.
    #[error("another badguys is running: {} is locked; gave up after {secs}s", lock.display())]
    Busy { lock: PathBuf, secs: u64 },
    /// The system refused something badguys needs to run at all, whatever
    /// its configuration: blocking signals, watching files (inotify,
    /// kqueue), pledge(2) or unveil(2).
    #[error("{what}: {err}")]
    System { what: String, err: io::Error },
}

/// Exit statuses, documented in the README, `--help` and badguys(8).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[repr(u8)]
pub enum ExitCode {
    Ok = 0,
    /// Anything not foreseen below, and the system refusing what badguys
    /// needs to run (signals, file watching, the sandbox).
    Internal = 1,
    /// Bad usage, flag value or configuration.
    Usage = 2,
    /// A log cannot be read.
    Input = 3,
    /// The blocklist cannot be written or the firewall reload failed.
    Output = 4,
    /// Another badguys holds the lock.
    Busy = 5,
}

impl From<ExitCode> for std::process::ExitCode {
    fn from(c: ExitCode) -> std::process::ExitCode {
        std::process::ExitCode::from(c as u8)
    }
}

impl Error {
    pub fn exit_code(&self) -> ExitCode {
        match self {
            Error::Config(_) | Error::ConfigLine { .. } | Error::Geo { .. } => ExitCode::Usage,
            Error::Input { .. } | Error::NotRegular { .. } | Error::NoDefaultLog { .. } | Error::Journal { .. } => {
                ExitCode::Input
            }
            Error::Output { .. } | Error::Unsafe { .. } | Error::Firewall { .. } | Error::History { .. } => {
                ExitCode::Output
            }
            Error::Busy { .. } => ExitCode::Busy,
            Error::System { .. } => ExitCode::Internal,
        }
    }

    /// Writing to a closed pipe (`badguys list | head`): a clean exit.
    pub fn is_broken_pipe(&self) -> bool {
        matches!(self, Error::System { err, .. } if err.kind() == io::ErrorKind::BrokenPipe)
    }
}
