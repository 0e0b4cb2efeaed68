//! The systemd journal as a source, for Linux hosts without
//! /var/log/auth.log. Owns running `journalctl -o json` filtered to sshd,
//! turning each entry into the RFC 3339 syslog line the parser already
//! reads (`2024-10-01T14:42:51.000000+00:00 HOST COMM[PID]: MESSAGE`), so
//! every rule, kex pairing by pid included, applies unchanged; and the
//! journal cursor that lets the next run start after the last entry read.

use std::io::{BufRead, BufReader, Read};
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};

use crate::Error;

/// Which journal to read.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Journal {
    /// `journalctl -D DIR`: a directory of journal files.
    pub dir: Option<PathBuf>,
    /// `journalctl --file FILE` (repeatable).
    pub files: Vec<PathBuf>,
}

/// The journalctl program (`BADGUYS_JOURNALCTL` overrides it in debug
/// builds, for tests).
pub fn program() -> String {
    crate::debug_env("BADGUYS_JOURNALCTL").unwrap_or_else(|| "journalctl".to_string())
}

/// Whether journalctl can be run.
pub fn available() -> bool {
    Command::new(program())
        .arg("--version")
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .is_ok_and(|s| s.success())
}

impl Journal {
    /// The arguments: JSON output, sshd's entries only (the sshd programs
    /// by name, or the ssh/sshd units), from `start`.
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
        // Same field: OR; "+": OR between groups.
        for m in [
            "_COMM=sshd",
            "_COMM=sshd-session",
            "_COMM=sshd-auth",
            "+",
            "_SYSTEMD_UNIT=ssh.service",
            "+",
            "_SYSTEMD_UNIT=sshd.service",
        ] {
            a.push(m.into());
        }
        a
    }

    /// Starts journalctl with its output piped.
    pub fn spawn(&self, start: Start<'_>) -> Result<Child, Error> {
        crate::child::clean_signals(&mut Command::new(program()))
            .args(self.args(start))
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .map_err(|e| Error::Journal { status: format!("cannot run {}: {e}", program()), stderr: String::new() })
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
                    out.found_cursor = matches!(&converted, Ok(Some(c)) if c == want);
                    return;
                }
            }
            if expect.is_some() && !out.found_cursor {
                return;
            }
            out.entries += 1;
            match converted {
                Ok(c) => {
                    out.cursor = c.or(out.cursor.take());
                    if !l.is_empty() {
                        line(&l);
                    }
                }
                Err(_) => out.bad += 1,
            }
        });
        let status = child.wait();
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

/// Appends the syslog line for one journal entry to `out` (nothing for an
/// entry without a message) and returns its cursor.
pub fn convert(json: &[u8], out: &mut Vec<u8>) -> Result<Option<String>, BadEntry> {
    use std::io::Write;
    let v: serde_json::Map<String, serde_json::Value> = serde_json::from_slice(json).map_err(|_| BadEntry::NotJson)?;
    let cursor = v.get("__CURSOR").and_then(|c| c.as_str()).map(str::to_string);
    let Some(msg) = v.get("MESSAGE").and_then(bytes) else { return Ok(cursor) };
    let field = |k: &str| v.get(k).and_then(bytes).filter(|b| !b.is_empty());
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
    Ok(cursor)
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

    #[test]
    fn entries_become_syslog_lines() {
        let mut out = Vec::new();
        let c = convert(
            br#"{"__CURSOR":"s=1;i=2","__REALTIME_TIMESTAMP":"1727793771000000","_HOSTNAME":"web1","_COMM":"sshd-session","_PID":"4242","MESSAGE":"Invalid user a from 192.0.2.1 port 1"}"#,
            &mut out,
        )
        .unwrap();
        assert_eq!(c.as_deref(), Some("s=1;i=2"));
        assert_eq!(
            out,
            b"2024-10-01T14:42:51.000000+00:00 web1 sshd-session[4242]: Invalid user a from 192.0.2.1 port 1\n"
        );
        out.clear();
        convert(br#"{"MESSAGE":[73,110,118,255,10,65],"_COMM":"sshd","_PID":"1"}"#, &mut out).unwrap();
        assert!(out.ends_with(b" sshd[1]: Inv\xff A\n"), "{}", out.escape_ascii());
        out.clear();
        assert_eq!(convert(br#"{"__CURSOR":"x"}"#, &mut out), Ok(Some("x".into())));
        assert!(out.is_empty());
        assert_eq!(convert(b"garbage", &mut out), Err(BadEntry::NotJson));
        let a = Journal { dir: Some("/j".into()), files: vec![] }.args(Start::At("c"));
        assert!(a.contains(&"--directory=/j".to_string()) && a.contains(&"--cursor=c".to_string()));
    }
}
