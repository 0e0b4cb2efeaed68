//! What the store agrees to read, write and lock. badguys runs as root, and
//! the list and the state are trusted input (their entries become bans), so:
//!
//! - the list, the state and the lock file are never reached through a
//!   symbolic link (`O_NOFOLLOW`; a symlink there is refused, not replaced);
//! - a file read as trusted input (list, state) must be a regular file with
//!   one link, owned by root or the running user, not writable by group or
//!   others;
//! - a file is only created or replaced in a directory that is, with every
//!   directory above it, owned by root or the running user and not writable
//!   by group or others unless it has the sticky bit (as `/tmp`): nobody
//!   else can have put a file or a symlink there, or swapped a directory;
//! - an existing target must be a regular file owned by root or the running
//!   user; the lock file must be a regular file owned by the running user.

use std::fs::{self, File, Metadata, OpenOptions};
use std::io;
use std::os::unix::fs::{MetadataExt, OpenOptionsExt, PermissionsExt};
use std::path::{Path, PathBuf};
use std::sync::Mutex;

use crate::Error;

/// `open(2)` flags for every file the store opens: never through a
/// symlink, never blocking on a FIFO, never inherited by a child.
const FLAGS: i32 = nix::libc::O_NOFOLLOW | nix::libc::O_NONBLOCK | nix::libc::O_CLOEXEC;

fn unsafe_(path: &Path, why: String) -> Error {
    Error::Unsafe { path: path.to_path_buf(), why }
}

fn euid() -> u32 {
    nix::unistd::geteuid().as_raw()
}

fn trusted_owner(uid: u32) -> bool {
    uid == 0 || uid == euid()
}

fn is_symlink(path: &Path) -> bool {
    fs::symlink_metadata(path).is_ok_and(|m| m.file_type().is_symlink())
}

fn symlink_refused(path: &Path) -> Error {
    unsafe_(
        path,
        "is a symbolic link; badguys never follows one for the list, the state or the lock \
         (give the file's real path with --out or --state)"
            .into(),
    )
}

/// The directory a file is created in.
pub(crate) fn parent(path: &Path) -> &Path {
    match path.parent() {
        Some(p) if !p.as_os_str().is_empty() => p,
        _ => Path::new("."),
    }
}

/// Opens `path` for reading as trusted input; `None` when it does not exist.
pub(crate) fn open_trusted(path: &Path) -> Result<Option<File>, Error> {
    let file = match OpenOptions::new().read(true).custom_flags(FLAGS).open(path) {
        Ok(f) => f,
        Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(None),
        Err(_) if is_symlink(path) => return Err(symlink_refused(path)),
        Err(err) => return Err(Error::Output { path: path.to_path_buf(), err }),
    };
    let md = file.metadata().map_err(|err| Error::Output { path: path.to_path_buf(), err })?;
    if !md.file_type().is_file() {
        return Err(unsafe_(path, "is not a regular file".into()));
    }
    owned(path, &md)?;
    let mode = md.permissions().mode();
    if mode & 0o022 != 0 {
        return Err(unsafe_(
            path,
            format!("is writable by group or others (mode {:04o}); make it private with chmod go-w", mode & 0o7777),
        ));
    }
    if md.nlink() != 1 {
        return Err(unsafe_(path, format!("has {} hard links; badguys reads it only with one", md.nlink())));
    }
    Ok(Some(file))
}

fn owned(path: &Path, md: &Metadata) -> Result<(), Error> {
    if trusted_owner(md.uid()) {
        return Ok(());
    }
    Err(unsafe_(path, format!("is owned by uid {}, neither root nor the running user (uid {})", md.uid(), euid())))
}

/// What `path` is now, before it is replaced: `None` when missing. A
/// symlink, anything but a regular file, and a file of another user are
/// refused.
pub(crate) fn target(path: &Path) -> Result<Option<Metadata>, Error> {
    let md = match fs::symlink_metadata(path) {
        Ok(m) => m,
        Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(None),
        Err(err) => return Err(Error::Output { path: path.to_path_buf(), err }),
    };
    if md.file_type().is_symlink() {
        return Err(symlink_refused(path));
    }
    if !md.file_type().is_file() {
        return Err(unsafe_(path, "is not a regular file".into()));
    }
    owned(path, &md)?;
    Ok(Some(md))
}

/// Opens (creating it, mode 0600) the lock file: a regular file of the
/// running user, made private if it was not.
pub(crate) fn open_lock(path: &Path) -> Result<File, Error> {
    let outerr = |err| Error::Output { path: path.to_path_buf(), err };
    let file = match OpenOptions::new()
        .read(true)
        .write(true)
        .create(true)
        .truncate(false)
        .mode(0o600)
        .custom_flags(FLAGS)
        .open(path)
    {
        Ok(f) => f,
        Err(_) if is_symlink(path) => return Err(symlink_refused(path)),
        Err(err) => return Err(outerr(err)),
    };
    let md = file.metadata().map_err(outerr)?;
    if !md.file_type().is_file() {
        return Err(unsafe_(path, "is not a regular file".into()));
    }
    if md.uid() != euid() {
        return Err(unsafe_(path, format!("is owned by uid {}, not by the running user (uid {})", md.uid(), euid())));
    }
    if md.permissions().mode() & 0o077 != 0 {
        // Anyone who can open it can flock it and stall every run.
        file.set_permissions(fs::Permissions::from_mode(0o600)).map_err(outerr)?;
    }
    Ok(file)
}

/// Directories whose ancestors were checked: under unveil(2) on OpenBSD,
/// `watch` can no longer stat them, so they are checked once, before.
static CHECKED: Mutex<Vec<PathBuf>> = Mutex::new(Vec::new());

/// Whether badguys may create or replace `target` in its directory: that
/// directory and each one above it (as written and as resolved) is owned by
/// root or the running user and not writable by group or others unless it
/// has the sticky bit.
pub fn check_dir(target: &Path) -> Result<(), Error> {
    let dir = parent(target);
    check_one(target, dir)?;
    let mut checked = CHECKED.lock().unwrap_or_else(|e| e.into_inner());
    if checked.iter().any(|d| d == dir) {
        return Ok(());
    }
    let outerr = |err| Error::Output { path: dir.to_path_buf(), err };
    let written =
        if dir.is_absolute() { dir.to_path_buf() } else { std::env::current_dir().map_err(outerr)?.join(dir) };
    let resolved = fs::canonicalize(dir).map_err(outerr)?;
    for d in written.ancestors().chain(resolved.ancestors()) {
        check_one(target, d)?;
    }
    checked.push(dir.to_path_buf());
    Ok(())
}

fn check_one(target: &Path, dir: &Path) -> Result<(), Error> {
    let md = fs::metadata(dir).map_err(|err| Error::Output { path: dir.to_path_buf(), err })?;
    if !trusted_owner(md.uid()) {
        return Err(unsafe_(
            target,
            format!(
                "directory {} is owned by uid {}, neither root nor the running user (uid {})",
                dir.display(),
                md.uid(),
                euid()
            ),
        ));
    }
    let mode = md.permissions().mode();
    if mode & 0o022 != 0 && mode & 0o1000 == 0 {
        return Err(unsafe_(
            target,
            format!(
                "directory {} is writable by group or others without the sticky bit (mode {:04o})",
                dir.display(),
                mode & 0o7777
            ),
        ));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::fs::symlink;

    fn chmod(p: &Path, mode: u32) {
        fs::set_permissions(p, fs::Permissions::from_mode(mode)).unwrap();
    }

    #[test]
    fn trusted_input_is_a_private_regular_file() {
        let d = tempfile::tempdir().unwrap();
        let p = d.path().join("state");
        assert!(open_trusted(&p).unwrap().is_none(), "missing is fine");
        fs::write(&p, "x").unwrap();
        chmod(&p, 0o644);
        assert!(open_trusted(&p).unwrap().is_some());
        for mode in [0o664, 0o646, 0o666] {
            chmod(&p, mode);
            let e = open_trusted(&p).unwrap_err().to_string();
            assert!(e.contains("writable by group or others"), "{e}");
        }
        chmod(&p, 0o600);
        let link = d.path().join("link");
        symlink(&p, &link).unwrap();
        let e = open_trusted(&link).unwrap_err().to_string();
        assert!(e.contains("is a symbolic link") && e.contains("link"), "{e}");
        let hard = d.path().join("hard");
        fs::hard_link(&p, &hard).unwrap();
        assert!(open_trusted(&p).unwrap_err().to_string().contains("2 hard links"));
        fs::remove_file(&hard).unwrap();
        assert!(open_trusted(d.path()).unwrap_err().to_string().contains("not a regular file"));
        nix::unistd::mkfifo(&hard, nix::sys::stat::Mode::from_bits_truncate(0o600)).unwrap();
        assert!(open_trusted(&hard).unwrap_err().to_string().contains("not a regular file"), "a FIFO never blocks");
        if euid() == 0 {
            std::os::unix::fs::chown(&p, Some(65534), None).unwrap();
            let e = open_trusted(&p).unwrap_err().to_string();
            assert!(e.contains("owned by uid 65534"), "{e}");
            assert!(target(&p).unwrap_err().to_string().contains("owned by uid 65534"));
        }
    }

    #[test]
    fn directories_others_can_write_are_refused() {
        let d = tempfile::tempdir().unwrap();
        let w = d.path().join("w");
        fs::create_dir(&w).unwrap();
        chmod(&w, 0o755);
        check_dir(&w.join("badguys")).unwrap();
        // Checked every time, not only the first.
        chmod(&w, 0o777);
        let e = check_dir(&w.join("badguys")).unwrap_err().to_string();
        assert!(e.contains("writable by group or others without the sticky bit (mode 0777)"), "{e}");
        chmod(&w, 0o1777);
        check_dir(&w.join("badguys")).unwrap();
        // A directory above, too.
        let sub = w.join("sub");
        fs::create_dir(&sub).unwrap();
        chmod(&w, 0o775);
        let e = check_dir(&sub.join("badguys")).unwrap_err().to_string();
        assert!(e.contains(&format!("directory {} is writable", w.display())), "{e}");
        if euid() == 0 {
            chmod(&w, 0o755);
            std::os::unix::fs::chown(&sub, Some(65534), None).unwrap();
            let e = check_dir(&sub.join("state")).unwrap_err().to_string();
            assert!(e.contains("is owned by uid 65534"), "{e}");
        }
    }
}
