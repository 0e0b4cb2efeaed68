//! Where log messages go: stderr (systemd's journal keeps it), or syslog(3)
//! with the daemon facility for `watch --syslog`, as a daemon started by
//! rc.d on OpenBSD has no stderr worth writing to.

use std::ffi::CString;
use std::io::{self, Write};

use tracing::Level;
use tracing_subscriber::fmt::MakeWriter;

/// Sets up the global subscriber once, at start.
pub fn init(verbose: u8, quiet: bool, syslog: bool) {
    let level = match (quiet, verbose) {
        (true, _) => Level::WARN,
        (false, 0) => Level::INFO,
        (false, 1) => Level::DEBUG,
        _ => Level::TRACE,
    };
    let builder = tracing_subscriber::fmt().with_max_level(level).with_target(false).without_time().with_ansi(false);
    if syslog {
        // syslog adds the time and the program; the level becomes the priority.
        let ident = CString::new("badguys").expect("no NUL");
        // SAFETY: openlog keeps the pointer, so the string is leaked on purpose.
        unsafe {
            nix::libc::openlog(Box::leak(ident.into_boxed_c_str()).as_ptr(), nix::libc::LOG_PID, nix::libc::LOG_DAEMON)
        };
        builder.with_level(false).with_writer(Syslog).init();
    } else {
        builder.with_writer(io::stderr).init();
    }
}

/// Hands each formatted event to syslog(3) at its level's priority.
struct Syslog;

struct Line {
    priority: nix::libc::c_int,
    buf: Vec<u8>,
}

impl<'a> MakeWriter<'a> for Syslog {
    type Writer = Line;
    fn make_writer(&'a self) -> Line {
        Line { priority: nix::libc::LOG_INFO, buf: Vec::new() }
    }
    fn make_writer_for(&'a self, meta: &tracing::Metadata<'_>) -> Line {
        let priority = match *meta.level() {
            Level::ERROR => nix::libc::LOG_ERR,
            Level::WARN => nix::libc::LOG_WARNING,
            Level::INFO => nix::libc::LOG_INFO,
            _ => nix::libc::LOG_DEBUG,
        };
        Line { priority, buf: Vec::new() }
    }
}

impl Write for Line {
    fn write(&mut self, b: &[u8]) -> io::Result<usize> {
        self.buf.extend_from_slice(b);
        Ok(b.len())
    }
    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}

impl Drop for Line {
    fn drop(&mut self) {
        let text: Vec<u8> = self.buf.iter().copied().filter(|&b| b != 0 && b != b'\n').collect();
        if text.is_empty() {
            return;
        }
        if let Ok(msg) = CString::new(text) {
            // SAFETY: both strings are NUL-terminated; "%s" takes one argument.
            unsafe { nix::libc::syslog(self.priority, c"%s".as_ptr(), msg.as_ptr()) };
        }
    }
}
