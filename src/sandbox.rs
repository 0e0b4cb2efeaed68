//! Least privilege for `watch` on OpenBSD: after start-up, unveil(2) limits
//! the file system to what badguys reads, writes and runs, and pledge(2) to
//! the system calls it needs. Elsewhere this does nothing (systemd's unit
//! sandboxes the service instead). A refusal is a system error (exit 1),
//! not a usage error.

use crate::config::Config;
use crate::Error;

#[cfg(target_os = "openbsd")]
pub fn restrict(cfg: &Config) -> Result<(), Error> {
    use std::ffi::CString;
    use std::path::Path;

    fn unveil(path: &Path, perms: &str) -> Result<(), Error> {
        let p = CString::new(path.as_os_str().as_encoded_bytes()).map_err(|_| Error::Config("NUL in a path".into()))?;
        let m = CString::new(perms).expect("no NUL");
        // SAFETY: NUL-terminated strings that outlive the call.
        if unsafe { nix::libc::unveil(p.as_ptr(), m.as_ptr()) } == -1 {
            return Err(Error::System {
                what: format!("unveil {}", path.display()),
                err: std::io::Error::last_os_error(),
            });
        }
        Ok(())
    }
    // Script hooks exec interpreters and tools (sh, curl, mail) that an
    // unveil list cannot foresee: with hooks, pledge alone.
    let hooks = cfg.hooks.on_ban.is_some() || cfg.hooks.on_login.is_some();
    let dir = |p: &Path| p.parent().filter(|d| !d.as_os_str().is_empty()).unwrap_or(Path::new(".")).to_path_buf();
    // The state directory must exist before it is unveiled.
    let state_dir = dir(&cfg.output.state);
    std::fs::create_dir_all(&state_dir).map_err(|err| Error::Output { path: state_dir.clone(), err })?;
    // The directories above these two are checked now, while they can
    // still be seen (the store checks each write's own directory again).
    crate::store::check_dir(&cfg.output.out)?;
    crate::store::check_dir(&cfg.output.state)?;
    if hooks {
        return pledge();
    }
    for log in &cfg.logs {
        unveil(&dir(log), "r")?;
    }
    // Temp files are created beside the list and the state, then renamed.
    unveil(&dir(&cfg.output.out), "rwc")?;
    unveil(&dir(&cfg.output.state), "rwc")?;
    // The history (SQLite's -wal and -shm files beside it) and the report.
    if let Some(h) = &cfg.history {
        unveil(&dir(h), "rwc")?;
    }
    if let Some((r, _)) = &cfg.report {
        unveil(&dir(r), "rwc")?;
    }
    for g in &cfg.geo {
        unveil(g, "r")?;
    }
    unveil(&cfg.allow_file.0, "r")?;
    // Included lists are renamed into place by the pull job: their directory.
    for inc in &cfg.include.files {
        unveil(&dir(inc), "r")?;
    }
    unveil(Path::new("/sbin/pfctl"), "x")?;
    unveil(Path::new("/dev/null"), "rw")?;
    // SAFETY: two NULLs lock the unveil list.
    if unsafe { nix::libc::unveil(std::ptr::null(), std::ptr::null()) } == -1 {
        return Err(Error::System { what: "unveil".into(), err: std::io::Error::last_os_error() });
    }
    pledge()
}

#[cfg(target_os = "openbsd")]
fn pledge() -> Result<(), Error> {
    use std::ffi::CString;
    // stdio rpath wpath cpath fattr: read logs, write list and state, keep
    // modes; flock: the lock; proc exec: pfctl and hooks; inet is not needed.
    let promises = CString::new("stdio rpath wpath cpath fattr flock proc exec").expect("no NUL");
    // SAFETY: a NUL-terminated string; NULL leaves exec promises unset.
    if unsafe { nix::libc::pledge(promises.as_ptr(), std::ptr::null()) } == -1 {
        return Err(Error::System { what: "pledge".into(), err: std::io::Error::last_os_error() });
    }
    Ok(())
}

#[cfg(not(target_os = "openbsd"))]
pub fn restrict(_cfg: &Config) -> Result<(), Error> {
    Ok(())
}
