//! The blocklist file on disk. Owns reading it (entries kept, junk reported),
//! rendering it (sorted, one entry per line: what pf's `table … persist file`
//! reads), writing it atomically (temp file in the same directory, fsync,
//! rename, fsync of the directory, permission bits kept), the lock that keeps
//! two runs from interleaving, and removing the temp files a killed run left.
//! [`statefile`] is the state file's format; [`trust`] decides which paths
//! the store reads and writes at all; [`history`] the history database, fed
//! with [`batch::DayBatch`]es.

/// `test_knob!(NAME, get, DEFAULT)`: `get()` is `DEFAULT`, or in the
/// tests what they set in the thread-local `NAME` for their own thread
/// (to write the same rows along another path and compare).
macro_rules! test_knob {
    ($(#[$doc:meta])* $name:ident, $get:ident, $default:expr) => {
        #[cfg(test)]
        thread_local! {
            $(#[$doc])*
            pub(super) static $name: std::cell::Cell<usize> = const { std::cell::Cell::new($default) };
        }

        #[cfg(not(test))]
        fn $get() -> usize {
            $default
        }

        #[cfg(test)]
        fn $get() -> usize {
            $name.with(std::cell::Cell::get)
        }
    };
}

pub mod batch;
pub mod history;
mod history_migrate;
mod history_views;
mod history_write;
mod record_line;
pub mod statefile;
pub(crate) mod textout;
pub mod trust;

use std::fs::{self, File, Permissions};
use std::io::{self, Read, Write};
use std::os::unix::ffi::OsStrExt;
use std::os::unix::fs::{MetadataExt, PermissionsExt};
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant, SystemTime};

use nix::fcntl::{Flock, FlockArg};
use tracing::{debug, info};

use crate::addr::Net;
use crate::Error;

pub use trust::check_dir;
use trust::parent;

/// A line of the blocklist that is not an address or network.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Junk {
    pub line: usize,
    /// The line's first [`JUNK_SHOWN`] bytes, escaped (`\xNN`), with `…`
    /// when cut: safe to log, and never a whole line of whatever file the
    /// list path names.
    pub text: String,
}

/// How much of a junk line is shown.
pub const JUNK_SHOWN: usize = 16;

/// What the blocklist file holds now.
#[derive(Clone, Debug, Default)]
pub struct Current {
    /// The raw bytes, to tell whether a rewrite would change anything.
    pub bytes: Vec<u8>,
    pub entries: Vec<Net>,
    pub junk: Vec<Junk>,
    pub exists: bool,
}

/// Reads the blocklist; a missing file is an empty list. Its entries become
/// manual bans, so it is read as trusted input ([`trust`]).
pub fn read(path: &Path) -> Result<Current, Error> {
    let bytes = read_trusted(path)?;
    let Some(bytes) = bytes else { return Ok(Current::default()) };
    let mut cur = Current { exists: true, ..Current::default() };
    for (i, raw) in bytes.split(|&b| b == b'\n').enumerate() {
        let t = raw.trim_ascii();
        if t.is_empty() {
            continue;
        }
        match std::str::from_utf8(t).ok().and_then(|s| s.parse::<Net>().ok()) {
            Some(n) => cur.entries.push(n),
            None => cur.junk.push(Junk { line: i + 1, text: shown(t) }),
        }
    }
    cur.bytes = bytes;
    Ok(cur)
}

/// The whole of a trusted file ([`trust::open_trusted`]); `None` when missing.
pub(crate) fn read_trusted(path: &Path) -> Result<Option<Vec<u8>>, Error> {
    let Some(mut f) = trust::open_trusted(path)? else { return Ok(None) };
    let mut bytes = Vec::new();
    f.read_to_end(&mut bytes).map_err(|err| Error::Output { path: path.to_path_buf(), err })?;
    Ok(Some(bytes))
}

/// The first [`JUNK_SHOWN`] bytes of `line`, escaped, `…` when cut.
fn shown(line: &[u8]) -> String {
    let mut s = line[..line.len().min(JUNK_SHOWN)].escape_ascii().to_string();
    if line.len() > JUNK_SHOWN {
        s.push('…');
    }
    s
}

/// One entry per line, sorted and deduplicated by the caller.
pub fn render(entries: &[Net]) -> Vec<u8> {
    let mut out = Vec::with_capacity(entries.len() * 16);
    for e in entries {
        textout::push_net(&mut out, *e);
        out.push(b'\n');
    }
    out
}

/// Replaces `path` with `content` so that a reader, or a crash at any point,
/// sees either the old or the new complete file. The target's permission
/// bits (0o777: never setuid, setgid or sticky) are kept; a new file gets
/// `new_mode`. A symlink, a file of another user, or a directory others can
/// write is refused ([`trust`]).
pub fn write_atomic(path: &Path, content: &[u8], new_mode: u32) -> Result<(), Error> {
    write_atomic_with(path, new_mode, &mut |w| w.write_all(content))
}

/// [`write_atomic`] of what `fill` writes, through a buffer: the content
/// is never held in memory whole (the state file of a big first run).
pub fn write_atomic_with(
    path: &Path,
    new_mode: u32,
    fill: &mut dyn FnMut(&mut dyn Write) -> io::Result<()>,
) -> Result<(), Error> {
    write_atomic_then(path, new_mode, fill, &mut || Ok(()))
}

/// [`write_atomic_with`], renaming the new file into place only once
/// `before` succeeded, which runs when the content is on disk in its temp
/// file; when it fails, its error is returned and the temp file removed.
/// (The state file waits so for the history's commit, which runs beside
/// its writing.)
pub fn write_atomic_then(
    path: &Path,
    new_mode: u32,
    fill: &mut dyn FnMut(&mut dyn Write) -> io::Result<()>,
    before: &mut dyn FnMut() -> Result<(), Error>,
) -> Result<(), Error> {
    let out = |err| Error::Output { path: path.to_path_buf(), err };
    let dir = parent(path);
    trust::check_dir(path)?;
    let mode = trust::target(path)?.map_or(new_mode, |m| m.mode()) & 0o777;
    let name = path.file_name().map(|n| n.to_string_lossy().into_owned()).unwrap_or_default();
    let mut tmp = tempfile::Builder::new()
        .prefix(&format!(".{name}."))
        .rand_bytes(TEMP_RAND)
        .suffix(TEMP_SUFFIX)
        .tempfile_in(dir)
        .map_err(out)?;
    {
        let mut w = io::BufWriter::with_capacity(64 * 1024, tmp.as_file_mut());
        fill(&mut w).map_err(out)?;
        w.flush().map_err(out)?;
    }
    tmp.as_file().set_permissions(Permissions::from_mode(mode)).map_err(out)?;
    tmp.as_file().sync_all().map_err(out)?;
    before()?;
    tmp.persist(path).map_err(|e| out(e.error))?;
    sync_dir(dir).map_err(out)
}

/// Temp files are `.NAME.XXXXXX.tmp` (six letters or digits) beside NAME.
const TEMP_RAND: usize = 6;
const TEMP_SUFFIX: &str = ".tmp";
/// A temp file this old is no write in progress: a write takes moments.
const STALE_AFTER: Duration = Duration::from_secs(60);

/// Whether `file` is one of [`write_atomic`]'s temp files for `name`.
fn is_temp_of(file: &[u8], name: &[u8]) -> bool {
    let Some(rest) = file.strip_prefix(b".").and_then(|r| r.strip_prefix(name)).and_then(|r| r.strip_prefix(b"."))
    else {
        return false;
    };
    rest.strip_suffix(TEMP_SUFFIX.as_bytes())
        .is_some_and(|r| r.len() == TEMP_RAND && r.iter().all(u8::is_ascii_alphanumeric))
}

fn sync_dir(dir: &Path) -> io::Result<()> {
    File::open(dir)?.sync_all()
}

/// An exclusive lock on `OUT.lock`, held until dropped.
#[derive(Debug)]
pub struct Lock {
    _flock: Flock<File>,
    pub path: PathBuf,
    /// When it was taken: how long it was held is logged (debug) when it
    /// is let go.
    since: Instant,
}

impl Drop for Lock {
    fn drop(&mut self) {
        tracing::debug!("{}: lock held {} ms", self.path.display(), self.since.elapsed().as_millis());
    }
}

impl Lock {
    /// Removes the temp files a killed run left beside each of `targets`
    /// (the list, the state): only `.NAME.XXXXXX.tmp` for those names,
    /// regular files of the running user older than a minute, in a
    /// directory [`check_dir`] accepts. Needs the lock, since every write
    /// happens under it. Returns how many were removed; failures are only
    /// logged.
    pub fn sweep(&self, targets: &[&Path]) -> usize {
        let now = SystemTime::now();
        let euid = nix::unistd::geteuid().as_raw();
        let mut removed = 0;
        for target in targets {
            let (dir, Some(name)) = (parent(target), target.file_name()) else { continue };
            if check_dir(target).is_err() {
                continue;
            }
            let Ok(entries) = fs::read_dir(dir) else { continue };
            for entry in entries.flatten() {
                if !is_temp_of(entry.file_name().as_bytes(), name.as_bytes()) {
                    continue;
                }
                let path = entry.path();
                let Ok(md) = fs::symlink_metadata(&path) else { continue };
                let old = md.modified().ok().and_then(|m| now.duration_since(m).ok()).is_some_and(|a| a >= STALE_AFTER);
                if !md.file_type().is_file() || md.uid() != euid || !old {
                    continue;
                }
                match fs::remove_file(&path) {
                    Ok(()) => {
                        info!("removed {}, a temporary file left by an interrupted run", path.display());
                        removed += 1;
                    }
                    Err(e) => debug!("{}: {e}", path.display()),
                }
            }
        }
        removed
    }
}

/// The lock file that guards `out`.
pub fn lock_path(out: &Path) -> PathBuf {
    let mut name = out.file_name().map(|n| n.to_os_string()).unwrap_or_default();
    name.push(".lock");
    parent(out).join(name)
}

/// Takes the lock beside `out`, waiting up to `timeout` for another run to
/// finish. The lock file is left in place (removing it would race). It is
/// opened without following a symlink, created with mode 0600, and must be
/// a regular file of the running user ([`trust`]).
pub fn lock(out: &Path, timeout: Duration) -> Result<Lock, Error> {
    let path = lock_path(out);
    let outerr = |err| Error::Output { path: path.clone(), err };
    let started = Instant::now();
    trust::check_dir(&path)?;
    let mut file = trust::open_lock(&path)?;
    loop {
        match Flock::lock(file, FlockArg::LockExclusiveNonblock) {
            Ok(flock) => return Ok(Lock { _flock: flock, path, since: Instant::now() }),
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
    fn junk_shows_only_an_escaped_prefix() {
        let d = tempfile::tempdir().unwrap();
        let p = d.path().join("badguys");
        let hash = "root:$6$Zr9xQk2b$Vq0mF7yYc1oJ3eWbT8s5uLhGdNi4aPzK:19700:0:99999:7:::";
        fs::write(&p, [format!("192.0.2.1\n{hash}\n").as_bytes(), b"\x1b[2J\xff\tx\n0123456789abcdef\n"].concat())
            .unwrap();
        let cur = read(&p).unwrap();
        assert_eq!(
            cur.junk,
            [
                Junk { line: 2, text: "root:$6$Zr9xQk2b…".into() },
                Junk { line: 3, text: "\\x1b[2J\\xff\\tx".into() },
                Junk { line: 4, text: "0123456789abcdef".into() },
            ]
        );
        assert!(!cur.junk.iter().any(|j| j.text.contains("Vq0mF7")), "never the whole line");
    }

    #[test]
    fn atomic_write_drops_setuid_setgid_and_sticky() {
        let d = tempfile::tempdir().unwrap();
        let p = d.path().join("badguys");
        fs::write(&p, "").unwrap();
        fs::set_permissions(&p, Permissions::from_mode(0o7755)).unwrap();
        write_atomic(&p, b"192.0.2.1\n", 0o644).unwrap();
        assert_eq!(fs::metadata(&p).unwrap().permissions().mode() & 0o7777, 0o755);
        write_atomic(&d.path().join("new"), b"", 0o4644).unwrap();
        assert_eq!(fs::metadata(d.path().join("new")).unwrap().permissions().mode() & 0o7777, 0o644);
    }

    #[test]
    fn atomic_write_refuses_a_symlink_and_leaves_its_target_alone() {
        let d = tempfile::tempdir().unwrap();
        let target = d.path().join("elsewhere");
        fs::write(&target, "precious\n").unwrap();
        let p = d.path().join("badguys");
        std::os::unix::fs::symlink(&target, &p).unwrap();
        let e = write_atomic(&p, b"192.0.2.1\n", 0o644).unwrap_err();
        assert!(matches!(e, Error::Unsafe { .. }), "{e}");
        assert!(e.to_string().contains("is a symbolic link") && e.to_string().contains("badguys"), "{e}");
        assert!(fs::symlink_metadata(&p).unwrap().file_type().is_symlink(), "the symlink is left");
        assert_eq!(fs::read(&target).unwrap(), b"precious\n");
        // Reading it is refused too: its lines never reach a log.
        assert!(matches!(read(&p).unwrap_err(), Error::Unsafe { .. }));
        // A dangling one as well (it would have been created).
        let p2 = d.path().join("state");
        std::os::unix::fs::symlink(d.path().join("created"), &p2).unwrap();
        assert!(write_atomic(&p2, b"x", 0o600).is_err());
        assert!(!d.path().join("created").exists());
        // Never a directory, FIFO or device.
        assert!(write_atomic(d.path(), b"x", 0o600).is_err());
    }

    #[test]
    fn atomic_write_refuses_a_directory_others_can_write() {
        let d = tempfile::tempdir().unwrap();
        let w = d.path().join("w");
        fs::create_dir(&w).unwrap();
        fs::set_permissions(&w, Permissions::from_mode(0o777)).unwrap();
        let e = write_atomic(&w.join("badguys"), b"x", 0o644).unwrap_err();
        assert!(e.to_string().contains("without the sticky bit"), "{e}");
        assert_eq!(fs::read_dir(&w).unwrap().count(), 0, "nothing created");
        let e = lock(&w.join("badguys"), Duration::from_secs(1)).unwrap_err();
        assert!(e.to_string().contains("without the sticky bit"), "{e}");
        // Sticky, as /tmp: nobody else can remove or rename our files.
        fs::set_permissions(&w, Permissions::from_mode(0o1777)).unwrap();
        write_atomic(&w.join("badguys"), b"x", 0o644).unwrap();
    }

    #[test]
    fn atomic_write_refuses_another_users_file() {
        if !nix::unistd::geteuid().is_root() {
            eprintln!("SKIPPED: needs root to give a file away");
            return;
        }
        let d = tempfile::tempdir().unwrap();
        let p = d.path().join("badguys");
        fs::write(&p, "192.0.2.1\n").unwrap();
        std::os::unix::fs::chown(&p, Some(65534), None).unwrap();
        let e = write_atomic(&p, b"x", 0o644).unwrap_err();
        assert!(e.to_string().contains("owned by uid 65534"), "{e}");
        assert_eq!(fs::read(&p).unwrap(), b"192.0.2.1\n");
        let l = lock_path(&p);
        fs::write(&l, "").unwrap();
        std::os::unix::fs::chown(&l, Some(65534), None).unwrap();
        assert!(lock(&p, Duration::from_secs(1)).unwrap_err().to_string().contains("owned by uid 65534"));
    }

    #[test]
    fn lock_never_follows_a_symlink() {
        let d = tempfile::tempdir().unwrap();
        let p = d.path().join("badguys");
        let victim = d.path().join("victim");
        std::os::unix::fs::symlink(&victim, lock_path(&p)).unwrap();
        let e = lock(&p, Duration::from_secs(1)).unwrap_err();
        assert!(matches!(e, Error::Unsafe { .. }), "{e}");
        assert!(e.to_string().contains("badguys.lock: is a symbolic link"), "{e}");
        assert!(!victim.exists(), "the symlink's target was created");
        // A new lock file is private; an old one is made private.
        let q = d.path().join("other");
        drop(lock(&q, Duration::from_secs(1)).unwrap());
        assert_eq!(fs::metadata(lock_path(&q)).unwrap().permissions().mode() & 0o777, 0o600);
        fs::set_permissions(lock_path(&q), Permissions::from_mode(0o644)).unwrap();
        drop(lock(&q, Duration::from_secs(1)).unwrap());
        assert_eq!(fs::metadata(lock_path(&q)).unwrap().permissions().mode() & 0o777, 0o600);
    }

    #[test]
    fn sweep_removes_only_our_stale_temp_files() {
        let d = tempfile::tempdir().unwrap();
        let (out, state) = (d.path().join("badguys"), d.path().join("sub/state"));
        fs::create_dir(d.path().join("sub")).unwrap();
        let old = SystemTime::now() - Duration::from_secs(3600);
        let make = |p: PathBuf, age: SystemTime| {
            let f = File::create(&p).unwrap();
            f.set_modified(age).unwrap();
            p
        };
        let stale =
            [make(d.path().join(".badguys.aB3xZ9.tmp"), old), make(d.path().join("sub/.state.000000.tmp"), old)];
        let kept = [
            make(d.path().join(".badguys.aB3xZ9.tmp.keep"), old),
            make(d.path().join(".badguys.aB3xZ.tmp"), old),
            make(d.path().join(".other.aB3xZ9.tmp"), old),
            make(d.path().join(".state.aB3xZ9.tmp"), old),
            make(d.path().join(".badguys.a-3xZ9.tmp"), old),
            // A write in progress, maybe by a run with another lock.
            make(d.path().join(".badguys.nEwOne.tmp"), SystemTime::now()),
        ];
        let link = d.path().join(".badguys.LiNk00.tmp");
        std::os::unix::fs::symlink(&kept[0], &link).unwrap();
        let lock = lock(&out, Duration::from_secs(1)).unwrap();
        assert_eq!(lock.sweep(&[&out, &state]), 2);
        for p in &stale {
            assert!(!p.exists(), "{} left", p.display());
        }
        for p in kept.iter().chain([&link]) {
            assert!(fs::symlink_metadata(p).is_ok(), "{} removed", p.display());
        }
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
        // The temp files are named as the sweep expects.
        let t = tempfile::Builder::new()
            .prefix(".badguys.")
            .rand_bytes(TEMP_RAND)
            .suffix(TEMP_SUFFIX)
            .tempfile_in(d.path())
            .unwrap();
        assert!(is_temp_of(t.path().file_name().unwrap().as_bytes(), b"badguys"), "{}", t.path().display());
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
