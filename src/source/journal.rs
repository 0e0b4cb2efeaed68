//! The systemd journal as a source, for Linux hosts without
//! /var/log/auth.log. Owns running `journalctl -o json` filtered to sshd,
//! turning each entry into the RFC 3339 syslog line the parser already
//! reads (`2024-10-01T14:42:51.000000+00:00 HOST COMM[PID]: MESSAGE`), so
//! every rule, kex pairing by pid included, applies unchanged; the
//! journal cursor that lets the next run start after the last entry read;
//! and the [`Follower`] that keeps a `journalctl --follow` running for
//! `watch`.
//!
//! Entries are chosen by `_COMM` (or the unit), which any local process can
//! give itself (`prctl(PR_SET_NAME)`), so only entries whose trusted `_UID`
//! is 0 count: sshd logs from root processes (the privilege-separated child
//! hands its messages to the root monitor). journalctl is asked for `_UID=0`
//! and [`convert`] skips any other entry, so a forged one never becomes a
//! line.

use std::io::{BufRead, BufReader, Read};
use std::os::unix::process::CommandExt;
use std::path::PathBuf;
use std::process::{Child, Command, ExitStatus, Stdio};
use std::sync::{Arc, Condvar, Mutex, MutexGuard, PoisonError};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use nix::sys::signal::{killpg, Signal};
use nix::unistd::Pid;
use tracing::warn;

use crate::Error;

/// Which journal to read.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Journal {
    /// `journalctl -D DIR`: a directory of journal files.
    pub dir: Option<PathBuf>,
    /// `journalctl --file FILE` (repeatable).
    pub files: Vec<PathBuf>,
}

/// The match every group of journalctl's filter carries.
const ROOT: &str = "_UID=0";

/// The journalctl program (`BADGUYS_JOURNALCTL` overrides it in debug
/// builds, for tests).
pub fn program() -> String {
    crate::debug_env("BADGUYS_JOURNALCTL").unwrap_or_else(|| "journalctl".to_string())
}

/// Whether journalctl can be run.
pub fn available() -> bool {
    crate::child::command(program())
        .arg("--version")
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .is_ok_and(|s| s.success())
}

impl Journal {
    /// The arguments: JSON output, sshd's entries only (the sshd programs
    /// by name, or the ssh/sshd units, each from root), from `start`.
    pub fn args(&self, start: Start<'_>) -> Vec<String> {
        let mut a: Vec<String> = vec!["-o".into(), "json".into(), "--no-pager".into()];
        if let Some(d) = &self.dir {
            a.push(format!("--directory={}", d.display()));
        }
        for f in &self.files {
            a.push(format!("--file={}", f.display()));
        }
        match start {
            Start::All => {}
            Start::At(c) => a.push(format!("--cursor={c}")),
            Start::After(c) => a.extend([format!("--after-cursor={c}"), "--follow".into()]),
            Start::New => a.extend(["--lines=0".into(), "--follow".into()]),
        }
        // Same field: OR; different fields: AND; "+": OR between groups.
        for m in [
            "_COMM=sshd",
            "_COMM=sshd-session",
            "_COMM=sshd-auth",
            ROOT,
            "+",
            "_SYSTEMD_UNIT=ssh.service",
            ROOT,
            "+",
            "_SYSTEMD_UNIT=sshd.service",
            ROOT,
        ] {
            a.push(m.into());
        }
        a
    }

    /// journalctl with its arguments, stdin from /dev/null, stdout piped.
    pub fn command(&self, start: Start<'_>) -> Command {
        let mut cmd = crate::child::command(program());
        cmd.args(self.args(start)).stdin(Stdio::null()).stdout(Stdio::piped());
        cmd
    }

    /// Starts journalctl with its output and its errors piped.
    pub fn spawn(&self, start: Start<'_>) -> Result<Child, Error> {
        self.command(start).stderr(Stdio::piped()).spawn().map_err(cannot_run)
    }

    /// Reads every entry after `cursor` (all when `None`), calling `line`
    /// with each as a syslog line.
    ///
    /// journalctl given a cursor it no longer has (vacuumed) seeks near it
    /// and says nothing, so the read starts *at* the cursor and checks that
    /// the first entry is that one. If it is not, everything still there is
    /// read, and `vacuumed` says so: the entries before a lost cursor were
    /// vacuumed with it, so what remains is what was never read.
    pub fn read(&self, cursor: Option<&str>, line: &mut dyn FnMut(&[u8])) -> Result<JournalRead, Error> {
        if let Some(c) = cursor {
            let r = self.read_from(Start::At(c), Some(c), line)?;
            if r.found_cursor {
                return Ok(r);
            }
            let mut r = self.read_from(Start::All, None, line)?;
            r.vacuumed = true;
            return Ok(r);
        }
        self.read_from(Start::All, None, line)
    }

    fn read_from(
        &self,
        start: Start<'_>,
        expect: Option<&str>,
        line: &mut dyn FnMut(&[u8]),
    ) -> Result<JournalRead, Error> {
        let mut child = self.spawn(start)?;
        let stdout = child.stdout.take().expect("piped");
        let mut stderr = child.stderr.take().expect("piped");
        let err_thread = std::thread::spawn(move || {
            let mut s = Vec::new();
            let _ = (&mut stderr).take(64 * 1024).read_to_end(&mut s);
            s
        });
        let mut out = JournalRead::default();
        let mut buf = Vec::new();
        let mut l = Vec::with_capacity(512);
        let mut first = true;
        let res = follow_lines(BufReader::with_capacity(256 * 1024, stdout), &mut buf, &mut |entry| {
            l.clear();
            let converted = convert(entry, &mut l);
            if std::mem::take(&mut first) {
                if let Some(want) = expect {
                    // The entry at the cursor was read last time: skip it.
                    out.found_cursor = matches!(&converted, Ok(Converted { cursor: Some(c), .. }) if c == want);
                    return;
                }
            }
            if expect.is_some() && !out.found_cursor {
                return;
            }
            out.entries += 1;
            match converted {
                Ok(c) => {
                    out.cursor = c.cursor.or(out.cursor.take());
                    out.not_root += u64::from(!c.from_root);
                    if !l.is_empty() {
                        line(&l);
                    }
                }
                Err(_) => out.bad += 1,
            }
        });
        let status = reap(&mut child, res.is_err());
        let stderr = String::from_utf8_lossy(&err_thread.join().unwrap_or_default()).trim().to_string();
        let failed = |status: String| Error::Journal { status, stderr: stderr.clone() };
        res.map_err(|e| failed(format!("reading its output: {e}")))?;
        let status = status.map_err(|e| failed(format!("waiting for it: {e}")))?;
        // A cursor journalctl cannot parse at all also means "start over".
        let cursor_refused = expect.is_some() && stderr.contains("cursor");
        if !status.success() && !cursor_refused {
            return Err(failed(status.to_string()));
        }
        Ok(out)
    }
}

/// The error for a journalctl that cannot be started.
pub fn cannot_run(e: std::io::Error) -> Error {
    Error::Journal { status: format!("cannot run {}: {e}", program()), stderr: String::new() }
}

/// Waits for journalctl to exit, killing it first when its output could
/// not be read (`failed`): nothing reads it any more, and a
/// `journalctl --follow` with nothing new to write would never notice.
pub fn reap(child: &mut Child, failed: bool) -> std::io::Result<ExitStatus> {
    if failed {
        // Not yet reaped, so the pid is still this child's.
        let _ = child.kill();
    }
    child.wait()
}

/// Where journalctl starts.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Start<'a> {
    /// From the oldest entry.
    All,
    /// At this cursor (inclusive), to check it still exists.
    At(&'a str),
    /// Following, after this cursor.
    After(&'a str),
    /// Following, from now on.
    New,
}

/// What one read found.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct JournalRead {
    /// The cursor of the last entry.
    pub cursor: Option<String>,
    /// The cursor read from was found.
    pub found_cursor: bool,
    /// It was not: everything still in the journal was read.
    pub vacuumed: bool,
    pub entries: u64,
    /// Entries that were not JSON objects or had no usable MESSAGE.
    pub bad: u64,
    /// Entries skipped because they did not come from root (`_UID=0`).
    pub not_root: u64,
}

/// Journal lines gathered by a [`Follower`], with the cursor of the last.
#[derive(Clone, Debug, Default)]
pub struct Feed(Arc<Mutex<(Vec<u8>, Option<String>)>>);

impl Feed {
    fn push(&self, line: &[u8], cursor: Option<String>) {
        let mut g = self.0.lock().unwrap_or_else(PoisonError::into_inner);
        g.0.extend_from_slice(line);
        if cursor.is_some() {
            g.1 = cursor;
        }
    }

    /// The lines gathered since the last call, and the cursor of the last.
    pub fn take(&self) -> (Vec<u8>, Option<String>) {
        let mut g = self.0.lock().unwrap_or_else(PoisonError::into_inner);
        (std::mem::take(&mut g.0), g.1.take())
    }
}

/// How long dropping a [`Follower`] waits for its thread.
const STOP_WAIT: Duration = Duration::from_secs(5);

/// A `journalctl --follow` kept running by a thread of its own: its entries
/// go into a [`Feed`], it is restarted with backoff when it exits or is
/// killed, and it is stopped when the follower is dropped.
///
/// The stop flag and the running journalctl sit behind one mutex, and the
/// thread starts journalctl while holding it after checking the flag: a
/// drop either comes first, and no journalctl starts, or finds the one that
/// started and kills it. journalctl leads its own process group, and the
/// whole group is killed (a wrapper script's children too), so its output
/// pipe closes and the thread ends; the drop then joins it, waiting at
/// most 5 s.
#[derive(Debug)]
pub struct Follower {
    shared: Arc<Shared>,
    thread: Option<JoinHandle<()>>,
}

#[derive(Debug, Default)]
struct Shared {
    slot: Mutex<Slot>,
    changed: Condvar,
}

#[derive(Debug, Default)]
struct Slot {
    stop: bool,
    /// The journalctl running, until its thread is done reading it. The
    /// thread takes it out before reaping it, so a kill through here never
    /// reaches a reused pid.
    child: Option<Child>,
    /// The thread has ended.
    done: bool,
}

impl Shared {
    fn lock(&self) -> MutexGuard<'_, Slot> {
        self.slot.lock().unwrap_or_else(PoisonError::into_inner)
    }
}

/// Kills journalctl's process group. The caller has not reaped it.
fn kill_group(c: &Child) {
    // A pid is a pid_t, an i32, on every Unix; journalctl leads its group.
    let _ = killpg(Pid::from_raw(c.id() as i32), Signal::SIGKILL);
}

/// Marks the thread done, however it ends.
struct Done(Arc<Shared>);

impl Drop for Done {
    fn drop(&mut self) {
        self.0.lock().done = true;
        self.0.changed.notify_all();
    }
}

impl Follower {
    /// Follows `j` from after `cursor` (from now on without one). `wake` is
    /// called after each entry put into `feed`.
    pub fn start(j: Journal, cursor: Option<String>, feed: Feed, wake: impl Fn() + Send + 'static) -> Follower {
        let shared = Arc::new(Shared::default());
        let done = Done(Arc::clone(&shared));
        let thread = std::thread::Builder::new().name("journalctl".into()).spawn(move || {
            let shared = Arc::clone(&done.0);
            let _done = done;
            follow(&j, cursor, &feed, &wake, &shared);
        });
        let thread = match thread {
            Ok(t) => Some(t),
            Err(e) => {
                warn!("cannot start a thread to follow the journal: {e}");
                None
            }
        };
        Follower { shared, thread }
    }
}

/// The follower's thread: start journalctl, read it, restart it, until
/// told to stop.
fn follow(j: &Journal, mut cursor: Option<String>, feed: &Feed, wake: &dyn Fn(), shared: &Shared) {
    let mut backoff = Duration::from_secs(1);
    loop {
        let started = Instant::now();
        let out = {
            let mut g = shared.lock();
            if g.stop {
                return;
            }
            let start = cursor.as_deref().map_or(Start::New, Start::After);
            // Its errors go to ours: nothing would drain a pipe, and a full
            // one would stall it.
            match j.command(start).stderr(Stdio::inherit()).process_group(0).spawn() {
                Ok(mut c) => {
                    let out = c.stdout.take();
                    g.child = Some(c);
                    out
                }
                Err(e) => {
                    warn!("{}; retrying in {}s", cannot_run(e), backoff.as_secs());
                    None
                }
            }
        };
        if let Some(out) = out {
            let mut buf = Vec::new();
            let mut l = Vec::with_capacity(512);
            let res = follow_lines(BufReader::new(out), &mut buf, &mut |entry| {
                l.clear();
                if let Ok(Converted { cursor: c, .. }) = convert(entry, &mut l) {
                    if c.is_some() {
                        cursor.clone_from(&c);
                    }
                    feed.push(&l, c);
                    wake();
                }
            });
            let child = shared.lock().child.take();
            let status = child.map(|mut c| {
                if res.is_err() {
                    // Nothing reads it any more: it would wait for ever.
                    kill_group(&c);
                }
                c.wait()
            });
            if shared.lock().stop {
                return;
            }
            let how = match (res, status) {
                (Err(e), _) => format!("reading its output: {e}"),
                (Ok(()), Some(Ok(st))) => st.to_string(),
                (Ok(()), Some(Err(e))) => e.to_string(),
                (Ok(()), None) => "gone".into(),
            };
            warn!("journalctl --follow ended ({how}); restarting in {}s", backoff.as_secs());
        }
        if started.elapsed() > Duration::from_secs(60) {
            backoff = Duration::from_secs(1);
        }
        let g = shared.lock();
        let (g, _) = shared.changed.wait_timeout_while(g, backoff, |s| !s.stop).unwrap_or_else(PoisonError::into_inner);
        if g.stop {
            return;
        }
        backoff = (backoff * 2).min(Duration::from_secs(30));
    }
}

impl Drop for Follower {
    fn drop(&mut self) {
        let mut g = self.shared.lock();
        g.stop = true;
        if let Some(c) = &g.child {
            kill_group(c);
        }
        self.shared.changed.notify_all();
        let (g, _) =
            self.shared.changed.wait_timeout_while(g, STOP_WAIT, |s| !s.done).unwrap_or_else(PoisonError::into_inner);
        let done = g.done;
        drop(g);
        match self.thread.take() {
            Some(t) if done => {
                let _ = t.join();
            }
            Some(_) => warn!("the journal follower did not stop within {}s", STOP_WAIT.as_secs()),
            None => {}
        }
    }
}

/// Calls `entry` with each line of `r` (JSON objects, one per line).
pub fn follow_lines(mut r: impl BufRead, buf: &mut Vec<u8>, entry: &mut dyn FnMut(&[u8])) -> std::io::Result<()> {
    loop {
        buf.clear();
        if r.read_until(b'\n', buf)? == 0 {
            return Ok(());
        }
        let l = buf.strip_suffix(b"\n").unwrap_or(buf);
        if !l.is_empty() {
            entry(l);
        }
    }
}

/// Why an entry is unusable.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum BadEntry {
    #[error("not a JSON object")]
    NotJson,
}

/// What [`convert`] made of one entry.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Converted {
    /// Its cursor.
    pub cursor: Option<String>,
    /// Its `_UID` is 0. Any other entry (no `_UID` included) gives no line:
    /// any local user can name a process sshd.
    pub from_root: bool,
}

/// Appends the syslog line for one journal entry from root to `out`
/// (nothing for an entry without a message or from another user) and
/// returns its cursor.
pub fn convert(json: &[u8], out: &mut Vec<u8>) -> Result<Converted, BadEntry> {
    use std::io::Write;
    let v: serde_json::Map<String, serde_json::Value> = serde_json::from_slice(json).map_err(|_| BadEntry::NotJson)?;
    let cursor = v.get("__CURSOR").and_then(|c| c.as_str()).map(str::to_string);
    let field = |k: &str| v.get(k).and_then(bytes).filter(|b| !b.is_empty());
    if field("_UID").as_deref() != Some(b"0") {
        let uid = field("_UID").unwrap_or_default();
        let comm = field("_COMM").unwrap_or_default();
        tracing::debug!(
            "journal: skipped an entry of _COMM={:.32} with _UID={:.16}: not root",
            comm.escape_ascii().to_string(),
            uid.escape_ascii().to_string()
        );
        return Ok(Converted { cursor, from_root: false });
    }
    let Some(msg) = v.get("MESSAGE").and_then(bytes) else { return Ok(Converted { cursor, from_root: true }) };
    let prog = field("_COMM").or_else(|| field("SYSLOG_IDENTIFIER")).unwrap_or_else(|| b"sshd".to_vec());
    let host = field("_HOSTNAME").unwrap_or_else(|| b"localhost".to_vec());
    let pid = field("_PID").or_else(|| field("SYSLOG_PID"));
    let usec: i64 = v.get("__REALTIME_TIMESTAMP").and_then(|t| t.as_str()).and_then(|t| t.parse().ok()).unwrap_or(0);
    let stamp = chrono::DateTime::from_timestamp_micros(usec).unwrap_or_default();
    let _ = write!(out, "{} ", stamp.format("%Y-%m-%dT%H:%M:%S%.6f+00:00"));
    // Fields are written as one line: the journal keeps messages whole, so
    // a newline in them is data, never a line of its own.
    let clean = |b: &[u8], out: &mut Vec<u8>| {
        out.extend(b.iter().map(|&c| if c == b'\n' || c == b'\r' || c == 0 { b' ' } else { c }))
    };
    clean(&host.iter().copied().filter(|c| *c != b' ').collect::<Vec<u8>>(), out);
    out.push(b' ');
    clean(&prog.iter().copied().filter(|c| !matches!(c, b' ' | b'[' | b':')).collect::<Vec<u8>>(), out);
    if let Some(pid) = pid.filter(|p| p.iter().all(u8::is_ascii_digit)) {
        out.push(b'[');
        out.extend_from_slice(&pid);
        out.push(b']');
    }
    out.extend_from_slice(b": ");
    clean(&msg, out);
    out.push(b'\n');
    Ok(Converted { cursor, from_root: true })
}

/// A journal field: a string, or an array of byte values (non-UTF-8 or
/// binary data). A field with several values is an array of those: the
/// first is used.
fn bytes(v: &serde_json::Value) -> Option<Vec<u8>> {
    match v {
        serde_json::Value::String(s) => Some(s.as_bytes().to_vec()),
        serde_json::Value::Array(a) if a.iter().all(|x| x.is_u64()) => {
            a.iter().map(|x| x.as_u64().and_then(|n| u8::try_from(n).ok())).collect()
        }
        serde_json::Value::Array(a) => a.first().and_then(bytes),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// journal-upload resends the entry at its cursor; journal-remote
    /// stores it again under a new cursor. Same `_HOSTNAME`, `_PID`,
    /// `MESSAGE` and `__REALTIME_TIMESTAMP` to the microsecond (what
    /// `_BOOT_ID` and `__MONOTONIC_TIMESTAMP` pin down): the same line, so
    /// the scanner counts it once.
    #[test]
    fn a_resent_entry_is_counted_once() {
        let entry = |cursor: &str| {
            format!(
                r#"{{"__CURSOR":"{cursor}","__REALTIME_TIMESTAMP":"1727793771123456","__MONOTONIC_TIMESTAMP":"99","_BOOT_ID":"b","_HOSTNAME":"web1","_COMM":"sshd","_PID":"7","_UID":"0","MESSAGE":"Invalid user a from 192.0.2.1 port 1"}}"#
            )
        };
        let mut out = Vec::new();
        convert(entry("s=1").as_bytes(), &mut out).unwrap();
        convert(entry("s=2").as_bytes(), &mut out).unwrap();
        let mut sc = crate::parse::Scanner::new(crate::parse::RuleSet::all());
        let mut n = 0;
        sc.scan(&out, &mut |_| n += 1);
        assert_eq!((n, sc.stats().duplicates), (1, 1));
    }

    #[test]
    fn entries_become_syslog_lines() {
        let mut out = Vec::new();
        let c = convert(
            br#"{"__CURSOR":"s=1;i=2","__REALTIME_TIMESTAMP":"1727793771000000","_HOSTNAME":"web1","_COMM":"sshd-session","_PID":"4242","_UID":"0","MESSAGE":"Invalid user a from 192.0.2.1 port 1"}"#,
            &mut out,
        )
        .unwrap();
        assert_eq!(c, Converted { cursor: Some("s=1;i=2".into()), from_root: true });
        assert_eq!(
            out,
            b"2024-10-01T14:42:51.000000+00:00 web1 sshd-session[4242]: Invalid user a from 192.0.2.1 port 1\n"
        );
        out.clear();
        convert(br#"{"MESSAGE":[73,110,118,255,10,65],"_COMM":"sshd","_PID":"1","_UID":"0"}"#, &mut out).unwrap();
        assert!(out.ends_with(b" sshd[1]: Inv\xff A\n"), "{}", out.escape_ascii());
        out.clear();
        assert_eq!(
            convert(br#"{"__CURSOR":"x","_UID":"0"}"#, &mut out),
            Ok(Converted { cursor: Some("x".into()), from_root: true })
        );
        assert!(out.is_empty());
        assert_eq!(convert(b"garbage", &mut out), Err(BadEntry::NotJson));
        let a = Journal { dir: Some("/j".into()), files: vec![] }.args(Start::At("c"));
        assert!(a.contains(&"--directory=/j".to_string()) && a.contains(&"--cursor=c".to_string()));
    }

    #[test]
    fn a_failed_read_kills_before_waiting() {
        use std::os::unix::process::ExitStatusExt;
        // Stands for a `journalctl --follow` with nothing to write: waiting
        // alone would never return.
        let mut c = crate::child::command("sleep").arg("1000").stdout(Stdio::piped()).spawn().unwrap();
        drop(c.stdout.take());
        assert_eq!(reap(&mut c, true).unwrap().signal(), Some(Signal::SIGKILL as i32));
        let mut c = crate::child::command("true").spawn().unwrap();
        assert!(reap(&mut c, false).unwrap().success());
    }

    #[test]
    fn only_root_entries_become_lines() {
        let forged = |uid: &str| {
            format!(
                r#"{{"__CURSOR":"c",{uid}"_COMM":"sshd","_PID":"9","MESSAGE":"Invalid user a from 192.0.2.1 port 1"}}"#
            )
        };
        for uid in [r#""_UID":"1000","#, "", r#""_UID":"","#, r#""_UID":"00","#, r#""_UID":["1000","0"],"#] {
            let mut out = Vec::new();
            let c = convert(forged(uid).as_bytes(), &mut out).unwrap();
            assert_eq!(c, Converted { cursor: Some("c".into()), from_root: false }, "{uid}");
            assert!(out.is_empty(), "{uid}");
        }
        // journalctl is asked for root's entries in every group of its filter.
        let a = Journal::default().args(Start::All);
        let groups: Vec<&[String]> = a.split(|x| x == "+").collect();
        assert_eq!(groups.len(), 3);
        assert!(groups.iter().all(|g| g.contains(&"_UID=0".to_string())), "{a:?}");
    }
}
