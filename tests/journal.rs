//! The systemd journal as a source, against real journal files that the
//! test makes with systemd-journal-remote from journal export format.

use std::process::{Command, Stdio};

use crate::harness::*;

const REMOTE: &str = "/lib/systemd/systemd-journal-remote";

fn available() -> bool {
    require("systemd-journal-remote (Debian package systemd-journal-remote)", std::path::Path::new(REMOTE).exists())
        && require("journalctl", have("journalctl"))
}

/// One entry from root (sshd's processes run as root) in journal export
/// format. `msg` may hold any bytes.
fn entry(seq: u64, comm: &str, pid: u32, msg: &[u8]) -> Vec<u8> {
    entry_as(0, seq, comm, pid, msg)
}

/// One entry from the process `comm` of user `uid`.
fn entry_as(uid: u32, seq: u64, comm: &str, pid: u32, msg: &[u8]) -> Vec<u8> {
    let mut e = Vec::new();
    let t = 1_727_793_771_000_000u64 + seq * 1_000_000;
    for (k, v) in [
        ("__REALTIME_TIMESTAMP", t.to_string()),
        ("__MONOTONIC_TIMESTAMP", (1000 + seq).to_string()),
        ("_BOOT_ID", "0123456789abcdef0123456789abcdef".to_string()),
        ("_HOSTNAME", "web1".to_string()),
        ("_PID", pid.to_string()),
        ("_UID", uid.to_string()),
        ("_COMM", comm.to_string()),
        ("SYSLOG_IDENTIFIER", comm.to_string()),
    ] {
        e.extend_from_slice(format!("{k}={v}\n").as_bytes());
    }
    if msg.contains(&b'\n') || std::str::from_utf8(msg).is_err() {
        // Binary-safe form: name, newline, little-endian length, data.
        e.extend_from_slice(b"MESSAGE\n");
        e.extend_from_slice(&(msg.len() as u64).to_le_bytes());
        e.extend_from_slice(msg);
        e.push(b'\n');
    } else {
        e.extend_from_slice(b"MESSAGE=");
        e.extend_from_slice(msg);
        e.push(b'\n');
    }
    e.push(b'\n');
    e
}

/// Appends `entries` to the journal file `file` (created when missing).
fn journal(file: &std::path::Path, entries: &[Vec<u8>]) {
    let mut c = Command::new(REMOTE)
        .arg(format!("--output={}", file.display()))
        .arg("-")
        .stdin(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    std::io::Write::write_all(c.stdin.as_mut().unwrap(), &entries.concat()).unwrap();
    drop(c.stdin.take());
    assert!(c.wait().unwrap().success());
}

/// `badguys COMMAND` with the test's paths but no `--log` (the journal
/// replaces it), then `extra`.
fn journal_args(e: &Env, command: &str, extra: &[&str]) -> Vec<String> {
    let mut args = e.sync_args(&[]);
    args[0] = command.into();
    let i = args.iter().position(|a| a == "--log").unwrap();
    args.drain(i..i + 2);
    args.extend(extra.iter().map(|s| s.to_string()));
    args
}

fn sync_journal(e: &Env, source: &[&str]) -> Run {
    run(e.cmd(journal_args(e, "sync", source)))
}

#[test]
fn sync_reads_the_journal_with_the_same_rules_and_a_cursor() {
    if !available() {
        return;
    }
    let e = Env::new();
    let j = e.path("sshd.journal");
    journal(
        &j,
        &[
            entry(1, "sshd", 100, b"Invalid user admin from 192.0.2.1 port 1"),
            entry(2, "cron", 101, b"Invalid user from 198.51.100.66 port 1 (not sshd)"),
            entry(3, "sshd-session", 4242, b"error: kex_exchange_identification: read: Connection reset by peer"),
            entry(4, "sshd-session", 4243, b"Connection reset by 198.51.100.5 port 2"),
            entry(5, "sshd-session", 4242, b"Connection reset by 2001:db8::5 port 2"),
            entry(6, "sshd", 104, b"Invalid user \xff\n x from 192.0.2.7 port 3"),
            entry(7, "sshd", 105, b"Disconnected from authenticating user root 192.0.2.8 port 4 [preauth]"),
        ],
    );
    let file = j.to_str().unwrap();
    // Six sshd entries (cron's is filtered out by journalctl).
    sync_journal(&e, &["--journal-file", file]).ok().stderr_has("6 new lines");
    assert_eq!(lines(&e.read("badguys")), ["192.0.2.1", "192.0.2.7", "192.0.2.8", "2001:db8::5"]);
    assert!(e.read("state").contains("journal\tcursor="));
    // The cursor: nothing is read twice.
    sync_journal(&e, &["--journal-file", file]).ok().stderr_has("0 new lines");
    journal(&j, &[entry(8, "sshd", 106, b"Invalid user b from 192.0.2.1 port 5")]);
    sync_journal(&e, &["--journal-file", file]).ok().stderr_has("1 new lines");
    e.command(&["explain", "192.0.2.1"]).ok().stdout_has("invalid-user: 2 hits");
    // A --log and --journal together is a usage error.
    e.sync(&["--journal"]).code(2).stderr_has("exclude each other");
}

/// Any local user can name a process sshd (prctl) and log as it: only
/// root's entries count, in journalctl's filter and in the conversion.
#[test]
fn entries_not_from_root_are_ignored() {
    if !available() {
        return;
    }
    let e = Env::new();
    let j = e.path("sshd.journal");
    journal(
        &j,
        &[
            entry_as(1000, 1, "sshd", 300, b"Invalid user a from 198.51.100.66 port 1"),
            entry_as(1000, 2, "sshd-session", 301, b"Invalid user a from 198.51.100.67 port 1"),
            entry(3, "sshd", 302, b"Invalid user a from 192.0.2.30 port 1"),
        ],
    );
    sync_journal(&e, &["--journal-file", j.to_str().unwrap()]).ok().stderr_has("1 new lines");
    assert_eq!(lines(&e.read("badguys")), ["192.0.2.30"]);
}

/// The same with a journalctl that does not filter: the conversion skips
/// the entry, says so, and still moves the cursor past it.
#[test]
fn a_journalctl_that_does_not_filter_still_gives_no_forged_line() {
    let e = Env::new();
    let fake = e.path("journalctl");
    let entry = |c: &str, uid: &str, ip: &str| {
        format!(
            r#"{{"__CURSOR":"{c}","__REALTIME_TIMESTAMP":"1727793771000000","_HOSTNAME":"h","_COMM":"sshd","_PID":"7",{uid}"MESSAGE":"Invalid user a from {ip} port 1"}}"#
        )
    };
    let out = [
        entry("c1", r#""_UID":"0","#, "192.0.2.44"),
        entry("c2", r#""_UID":"1000","#, "198.51.100.66"),
        entry("c3", "", "198.51.100.67"),
    ];
    std::fs::write(
        &fake,
        format!("#!/bin/sh\n[ \"$1\" = --version ] && exit 0\ncat <<'EOF'\n{}\nEOF\n", out.join("\n")),
    )
    .unwrap();
    std::fs::set_permissions(&fake, std::os::unix::fs::PermissionsExt::from_mode(0o755)).unwrap();
    let mut c = e.cmd(journal_args(&e, "sync", &["--journal"]));
    c.env("BADGUYS_JOURNALCTL", &fake);
    run(c).ok().stderr_has("2 entries not from root");
    assert_eq!(lines(&e.read("badguys")), ["192.0.2.44"]);
    assert!(e.read("state").contains("journal\tcursor=c3"), "{}", e.read("state"));
}

#[test]
fn a_vacuumed_cursor_falls_back_to_all_that_is_there() {
    if !available() {
        return;
    }
    let e = Env::new();
    let dir = e.path("journal");
    std::fs::create_dir(&dir).unwrap();
    journal(&dir.join("old.journal"), &[entry(1, "sshd", 100, b"Invalid user a from 192.0.2.1 port 1")]);
    let d = dir.to_str().unwrap();
    sync_journal(&e, &["--journal-dir", d]).ok();
    // Vacuumed: the file with the cursor's entry is gone, newer ones came.
    std::fs::remove_file(dir.join("old.journal")).unwrap();
    journal(&dir.join("new.journal"), &[entry(9, "sshd", 200, b"Invalid user a from 192.0.2.9 port 1")]);
    sync_journal(&e, &["--journal-dir", d])
        .ok()
        .stderr_has("no longer has the last entry read")
        .stderr_has("1 new lines");
    assert_eq!(lines(&e.read("badguys")), ["192.0.2.1", "192.0.2.9"]);
}

#[test]
fn journalctl_missing_or_failing_is_an_input_error() {
    let e = Env::new();
    for (prog, says) in [("/nonexistent/journalctl", "cannot run"), ("/bin/false", "exit status: 1")] {
        let mut c = e.cmd(journal_args(&e, "sync", &["--journal"]));
        c.env("BADGUYS_JOURNALCTL", prog);
        run(c).code(3).stderr_has("journalctl").stderr_has(says);
    }
    assert!(!e.out().exists());
}

#[test]
fn watch_follows_the_journal_and_restarts_journalctl() {
    if !available() {
        return;
    }
    let e = Env::new();
    let j = e.path("sshd.journal");
    journal(&j, &[entry(1, "sshd", 100, b"Invalid user a from 192.0.2.1 port 1")]);
    let args = journal_args(&e, "watch", &["--journal-file", j.to_str().unwrap()]);
    let mut d = Daemon::spawn(e.cmd(args), e.path("watch.err"));
    let listed = |a: &str| e.read("badguys").lines().any(|l| l == a);
    wait_for(10, "the first sync", || listed("192.0.2.1"));
    std::thread::sleep(std::time::Duration::from_millis(500));
    journal(&j, &[entry(2, "sshd", 101, b"Invalid user a from 192.0.2.2 port 1")]);
    wait_for(10, "a followed entry", || listed("192.0.2.2"));
    // journalctl killed: watch says so, restarts it, and loses nothing.
    let pat = format!("journalctl.*{}", j.display());
    assert!(Command::new("pkill").args(["-f", &pat]).status().unwrap().success());
    wait_for(10, "the restart message", || d.log().contains("restarting in"));
    journal(&j, &[entry(3, "sshd", 102, b"Invalid user a from 192.0.2.3 port 1")]);
    wait_for(15, "an entry after the restart", || listed("192.0.2.3"));
    assert_eq!(d.stop(), 0, "{}", d.log());
    assert!(d.log().contains("reading sshd's entries from the systemd journal"), "{}", d.log());
}

#[test]
fn the_journal_is_chosen_when_there_is_no_auth_log() {
    // The default log is a fixed path: the test needs a machine without it
    // (skipped elsewhere, a failure under CI=true).
    if !require("a machine without /var/log/auth.log", !std::path::Path::new("/var/log/auth.log").exists()) {
        return;
    }
    let e = Env::new();
    // A stand-in journalctl that prints one sshd entry whatever it is asked.
    let fake = e.path("journalctl");
    std::fs::write(
        &fake,
        "#!/bin/sh\n[ \"$1\" = --version ] && exit 0\necho '{\"__CURSOR\":\"c1\",\"__REALTIME_TIMESTAMP\":\"1727793771000000\",\"_HOSTNAME\":\"h\",\"_COMM\":\"sshd\",\"_PID\":\"7\",\"_UID\":\"0\",\"MESSAGE\":\"Invalid user a from 192.0.2.44 port 1\"}'\n",
    )
    .unwrap();
    std::fs::set_permissions(&fake, std::os::unix::fs::PermissionsExt::from_mode(0o755)).unwrap();
    let mut c = e.cmd(journal_args(&e, "sync", &[]));
    c.env("BADGUYS_JOURNALCTL", &fake);
    run(c).ok().stderr_has("/var/log/auth.log does not exist: reading sshd's entries from the systemd journal");
    assert_eq!(lines(&e.read("badguys")), ["192.0.2.44"]);
}
