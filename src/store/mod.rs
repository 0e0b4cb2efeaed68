//! The blocklist file on disk. Owns reading it (entries kept, junk reported),
//! rendering it (sorted, one entry per line: what pf's `table … persist file`
//! reads), writing it atomically (temp file in the same directory, fsync,
//! rename, fsync of the directory, mode kept), and the lock that keeps two
//! runs from interleaving. [`statefile`] is the state file's format;
//! [`history`] the history database, fed with [`batch::DayBatch`]es.

pub mod batch;
pub mod history;
pub mod statefile;

use std::fs::{self, File, OpenOptions, Permissions};
use std::io::{self, Write};
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use nix::fcntl::{Flock, FlockArg};

use crate::addr::Net;
use crate::Error;

/// A line of the blocklist that is not an address or network.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Junk {
    pub line: usize,
    pub text: String,
}

/// What the blocklist file holds now.
#[derive(Clone, Debug, Default)]
pub struct Current {
    /// The raw bytes, to tell whether a rewrite would change anything.
    pub bytes: Vec<u8>,
    pub entries: Vec<Net>,
    pub junk: Vec<Junk>,
    pub exists: bool,
}

/// Reads the blocklist; a missing file is an empty list.
pub fn read(path: &Path) -> Result<Current, Error> {
    let bytes = match fs::read(path) {
        Ok(b) => b,
        Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(Current::default()),
        Err(err) => return Err(Error::Output { path: path.to_path_buf(), err }),
    };
    let mut cur = Current { exists: true, ..Current::default() };
    for (i, raw) in bytes.split(|&b| b == b'\n').enumerate() {
        let text = String::from_utf8_lossy(raw);
        let t = text.trim();
        if t.is_empty() {
            continue;
        }
        match t.parse::<Net>() {
            Ok(n) => cur.entries.push(n),
            Err(_) => cur.junk.push(Junk { line: i + 1, text: t.chars().take(80).collect() }),
        }
    }
    cur.bytes = bytes;
    Ok(cur)
}

/// One entry per line, sorted and deduplicated by the caller.
pub fn render(entries: &[Net]) -> Vec<u8> {
    let mut out = Vec::with_capacity(entries.len() * 16);
    for e in entries {
        // Writing to a Vec cannot fail.
        let _ = writeln!(out, "{e}");
    }
    out
}

/// Replaces `path` with `content` so that a reader, or a crash at any point,
/// sees either the old or the new complete file. The target's mode is kept;
/// a new file gets `new_mode`.
pub fn write_atomic(path: &Path, content: &[u8], new_mode: u32) -> Result<(), Error> {
    let out = |err| Error::Output { path: path.to_path_buf(), err };
    let dir = parent(path);
    let mode = match fs::metadata(path) {
        Ok(m) => m.permissions().mode() & 0o7777,
        Err(e) if e.kind() == io::ErrorKind::NotFound => new_mode,
        Err(e) => return Err(out(e)),
    };
    let name = path.file_name().map(|n| n.to_string_lossy().into_owned()).unwrap_or_default();
    let mut tmp = tempfile::Builder::new().prefix(&format!(".{name}.")).suffix(".tmp").tempfile_in(dir).map_err(out)?;
    tmp.write_all(content).map_err(out)?;
    tmp.as_file().set_permissions(Permissions::from_mode(mode)).map_err(out)?;
    tmp.as_file().sync_all().map_err(out)?;
    tmp.persist(path).map_err(|e| out(e.error))?;
    sync_dir(dir).map_err(out)
}

fn parent(path: &Path) -> &Path {
    match path.parent() {
        Some(p) if !p.as_os_str().is_empty() => p,
        _ => Path::new("."),
    }
}

fn sync_dir(dir: &Path) -> io::Result<()> {
    File::open(dir)?.sync_all()
}

/// An exclusive lock on `OUT.lock`, held until dropped.
#[derive(Debug)]
pub struct Lock {
    _flock: Flock<File>,
    pub path: PathBuf,
}

/// The lock file that guards `out`.
pub fn lock_path(out: &Path) -> PathBuf {
    let mut name = out.file_name().map(|n| n.to_os_string()).unwrap_or_default();
    name.push(".lock");
    parent(out).join(name)
}

/// Takes the lock beside `out`, waiting up to `timeout` for another run to
/// finish. The lock file is left in place (removing it would race).
pub fn lock(out: &Path, timeout: Duration) -> Result<Lock, Error> {
    let path = lock_path(out);
    let outerr = |err| Error::Output { path: path.clone(), err };
    let started = Instant::now();
    let mut file = OpenOptions::new().create(true).truncate(false).write(true).open(&path).map_err(outerr)?;
    loop {
        match Flock::lock(file, FlockArg::LockExclusiveNonblock) {
            Ok(flock) => return Ok(Lock { _flock: flock, path }),
            Err((f, nix::errno::Errno::EWOULDBLOCK)) | Err((f, nix::errno::Errno::EINTR)) => {
                if started.elapsed() >= timeout {
                    return Err(Error::Busy { lock: path, secs: timeout.as_secs() });
                }
                file = f;
                std::thread::sleep(Duration::from_millis(50));
            }
            Err((_, errno)) => return Err(outerr(io::Error::from(errno))),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_entries_and_junk() {
        let d = tempfile::tempdir().unwrap();
        let p = d.path().join("badguys");
        fs::write(&p, "198.51.100.0/24\n# note\n\nnot-an-ip\n192.0.2.7\n").unwrap();
        let cur = read(&p).unwrap();
        assert_eq!(cur.entries.len(), 2);
        assert_eq!(cur.junk, vec![Junk { line: 2, text: "# note".into() }, Junk { line: 4, text: "not-an-ip".into() }]);
        assert!(!read(&d.path().join("missing")).unwrap().exists);
    }

    #[test]
    fn atomic_write_keeps_mode() {
        let d = tempfile::tempdir().unwrap();
        let p = d.path().join("badguys");
        write_atomic(&p, b"192.0.2.1\n", 0o644).unwrap();
        assert_eq!(fs::metadata(&p).unwrap().permissions().mode() & 0o777, 0o644);
        fs::set_permissions(&p, Permissions::from_mode(0o600)).unwrap();
        write_atomic(&p, b"192.0.2.2\n", 0o644).unwrap();
        assert_eq!(fs::metadata(&p).unwrap().permissions().mode() & 0o777, 0o600);
        assert_eq!(fs::read(&p).unwrap(), b"192.0.2.2\n");
        assert_eq!(fs::read_dir(d.path()).unwrap().count(), 1, "no temp file left behind");
    }

    #[test]
    fn lock_times_out() {
        let d = tempfile::tempdir().unwrap();
        let p = d.path().join("badguys");
        let _held = lock(&p, Duration::from_secs(1)).unwrap();
        let err = lock(&p, Duration::from_millis(100)).unwrap_err();
        assert!(matches!(err, Error::Busy { .. }), "{err}");
    }
}
