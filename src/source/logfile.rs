//! Which files make up a log and which can be read: the default log, `-`
//! for standard input, the rotated siblings (newsyslog's `authlog.0.gz`,
//! logrotate's `auth.log.1`, `auth.log.2.gz`, dateext's
//! `auth.log-20241001.gz`), and opening a log without ever waiting on it:
//! only regular files are logs, and a FIFO is refused before it can block.

use std::fs::{File, Metadata, OpenOptions};
use std::os::unix::fs::{FileTypeExt, OpenOptionsExt};
use std::path::{Path, PathBuf};

use crate::Error;

/// The default log: `/var/log/authlog` on OpenBSD, `/var/log/auth.log` elsewhere.
pub fn default_log() -> PathBuf {
    if cfg!(target_os = "openbsd") {
        PathBuf::from("/var/log/authlog")
    } else {
        PathBuf::from("/var/log/auth.log")
    }
}

/// `-` as a log path means standard input.
pub fn is_stdin(path: &Path) -> bool {
    path.as_os_str() == "-"
}

/// Opens the log file `path` for reading, refusing (with
/// [`Error::NotRegular`]) anything but a regular file, and never waiting:
/// the type is checked before opening (opening a device can do things, a
/// FIFO waits for a writer), and the open itself does not block, in case
/// the path was replaced in between.
pub fn open_log(path: &Path) -> Result<(File, Metadata), Error> {
    let input = |err| Error::Input { path: path.to_path_buf(), err };
    check_log(&std::fs::metadata(path).map_err(input)?, path)?;
    let nonblock = nix::fcntl::OFlag::O_NONBLOCK.bits();
    let file = OpenOptions::new().read(true).custom_flags(nonblock).open(path).map_err(input)?;
    let meta = file.metadata().map_err(input)?;
    check_log(&meta, path)?;
    Ok((file, meta))
}

/// Whether a log path that exists can be read: only regular files can.
pub fn check_log(meta: &Metadata, path: &Path) -> Result<(), Error> {
    let t = meta.file_type();
    let what = if t.is_file() {
        return Ok(());
    } else if t.is_dir() {
        "is a directory"
    } else if t.is_fifo() {
        "is a FIFO (named pipe), not a log file: to read a pipe, give `--log -` and redirect it to \
         standard input (`--log - < FIFO`)"
    } else if t.is_socket() {
        "is a socket, not a log file"
    } else {
        "is a device, not a log file"
    };
    Err(Error::NotRegular { path: path.to_path_buf(), what })
}

/// A rotated sibling that was found but cannot be read.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Skipped {
    pub path: PathBuf,
    pub why: &'static str,
}

/// The rotated siblings of `log`, oldest first, and those it cannot read.
pub fn rotated(log: &Path) -> (Vec<PathBuf>, Vec<Skipped>) {
    let (Some(dir), Some(base)) = (log.parent(), log.file_name().and_then(|b| b.to_str())) else {
        return (Vec::new(), Vec::new());
    };
    let dir = if dir.as_os_str().is_empty() { Path::new(".") } else { dir };
    let Ok(entries) = std::fs::read_dir(dir) else {
        return (Vec::new(), Vec::new());
    };
    let mut found: Vec<(u8, u64, PathBuf)> = Vec::new();
    let mut skipped = Vec::new();
    for e in entries.flatten() {
        let name = e.file_name();
        let Some(name) = name.to_str() else { continue };
        let Some(suffix) = name.strip_prefix(base) else { continue };
        let (stem, compressed) = match suffix.rsplit_once('.') {
            Some((s, "gz")) => (s, None),
            Some((s, ext @ ("bz2" | "xz" | "zst" | "lz4" | "Z"))) => (s, Some(ext)),
            _ => (suffix, None),
        };
        let key = if let Some(n) = stem.strip_prefix('.').filter(|n| is_digits(n, 1..=6)) {
            // authlog.0.gz is newer than authlog.1.gz: sort descending.
            (1u8, u64::MAX - n.parse::<u64>().unwrap_or(0))
        } else if let Some(d) = stem.strip_prefix('-').filter(|d| is_digits(d, 8..=14)) {
            (0u8, d.parse::<u64>().unwrap_or(0))
        } else {
            continue;
        };
        let path = dir.join(name);
        if compressed.is_some() {
            skipped.push(Skipped { path, why: "compression other than gzip is not supported" });
            continue;
        }
        // A stat, which never blocks, even on a FIFO.
        if !std::fs::metadata(&path).is_ok_and(|m| m.is_file()) {
            skipped.push(Skipped { path, why: "not a regular file" });
            continue;
        }
        found.push((key.0, key.1, path));
    }
    found.sort();
    skipped.sort_by(|a, b| a.path.cmp(&b.path));
    (found.into_iter().map(|(_, _, p)| p).collect(), skipped)
}

fn is_digits(s: &str, len: std::ops::RangeInclusive<usize>) -> bool {
    len.contains(&s.len()) && s.bytes().all(|b| b.is_ascii_digit())
}

/// The files of `log` a step reads, oldest first, each with whether it is
/// the live log (the one written to, last); with `rotated`, its rotated
/// siblings too. Siblings that cannot be read are logged and left out.
pub fn files(log: &Path, rotated_too: bool) -> Vec<(PathBuf, bool)> {
    let mut files: Vec<(PathBuf, bool)> = Vec::new();
    if rotated_too {
        let (found, skipped) = rotated(log);
        for s in skipped {
            tracing::debug!("{}: skipped: {}", s.path.display(), s.why);
        }
        files.extend(found.into_iter().map(|p| (p, false)));
    }
    files.push((log.to_path_buf(), true));
    files
}

/// In debug builds (those the integration tests run), `BADGUYS_DELAY_OPEN=MS`
/// waits that long between listing a log's files and opening them, so that
/// a test can land rotations there.
pub fn delay_open() {
    if cfg!(debug_assertions) {
        static MS: std::sync::OnceLock<u64> = std::sync::OnceLock::new();
        let ms = *MS.get_or_init(|| std::env::var("BADGUYS_DELAY_OPEN").ok().and_then(|v| v.parse().ok()).unwrap_or(0));
        if ms > 0 {
            std::thread::sleep(std::time::Duration::from_millis(ms));
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_fifo_is_refused_without_waiting_for_a_writer() {
        let d = tempfile::tempdir().unwrap();
        let p = d.path().join("auth.log");
        nix::unistd::mkfifo(&p, nix::sys::stat::Mode::from_bits_truncate(0o600)).unwrap();
        let err = super::super::Reader::new().read_file(&p, &[], true, &mut |_| {}, &mut || {}).unwrap_err();
        assert!(matches!(err, Error::NotRegular { .. }) && err.to_string().contains("--log -"), "{err}");
        // Nor is one listed among the rotated siblings.
        nix::unistd::mkfifo(&d.path().join("auth.log.1"), nix::sys::stat::Mode::from_bits_truncate(0o600)).unwrap();
        let (found, skipped) = rotated(&p);
        assert!(found.is_empty() && skipped.len() == 1, "{found:?} {skipped:?}");
    }

    #[test]
    fn rotated_order() {
        let d = tempfile::tempdir().unwrap();
        for n in [
            "auth.log",
            "auth.log.1",
            "auth.log.2.gz",
            "auth.log.10.gz",
            "auth.log-20240101.gz",
            "auth.log.3.xz",
            "auth.logx",
            "auth.log.old",
        ] {
            std::fs::write(d.path().join(n), "").unwrap();
        }
        let (found, skipped) = rotated(&d.path().join("auth.log"));
        let names: Vec<_> = found.iter().map(|p| p.file_name().unwrap().to_str().unwrap().to_string()).collect();
        assert_eq!(names, ["auth.log-20240101.gz", "auth.log.10.gz", "auth.log.2.gz", "auth.log.1"]);
        assert_eq!(skipped.len(), 1);
    }
}
