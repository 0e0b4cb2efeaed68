//! Rules that count apart (`--rule-threshold`, `maxstartups`) and the
//! bounds of the state (`--forget`, `--max-records`), through `sync` and
//! `explain`, with `BADGUYS_NOW` moving the clock.

use crate::harness::*;

/// A MaxStartups drop of `addr` (OpenSSH 9.8+).
fn drop_line(pid: u32, addr: &str) -> String {
    sshd(pid, &format!("drop connection #3 from [{addr}]:5{pid:04} on [198.51.100.1]:22 past MaxStartups"))
}

#[test]
fn maxstartups_lists_alone_at_twenty_and_never_joins_the_pool() {
    let e = Env::new();
    let log: String = (0..19).map(|i| drop_line(i, "192.0.2.1")).collect();
    e.write("auth.log", &log);
    e.sync(&["--rules", "all", "--threshold", "1"]).ok();
    assert_eq!(e.read("badguys"), "", "19 drops and nothing else");
    e.command(&["explain", "192.0.2.1"]).ok().stdout_has("maxstartups counts apart: 19 recent, 20 needed");
    e.append("auth.log", &drop_line(19, "192.0.2.1"));
    e.sync(&["--rules", "all", "--threshold", "1"]).ok();
    assert_eq!(lines(&e.read("badguys")), ["192.0.2.1"]);
    e.command(&["explain", "192.0.2.1"])
        .ok()
        .stdout_has("threshold met: maxstartups alone reached its own threshold 20");
    // 2 pooled attacks and 19 drops at --threshold 3: not listed; the
    // third pooled attack lists it, by the pool.
    let mut log: String = (0..19).map(|i| drop_line(100 + i, "192.0.2.2")).collect();
    log.push_str(&sshd(200, "Invalid user a from 192.0.2.2 port 1"));
    log.push_str(&sshd(201, "Invalid user b from 192.0.2.2 port 1"));
    e.append("auth.log", &log);
    e.sync(&["--rules", "all", "--threshold", "3"]).ok();
    assert_eq!(lines(&e.read("badguys")), ["192.0.2.1"]);
    e.append("auth.log", &sshd(202, "Invalid user c from 192.0.2.2 port 1"));
    e.sync(&["--rules", "all", "--threshold", "3"]).ok();
    assert_eq!(lines(&e.read("badguys")), ["192.0.2.1", "192.0.2.2"]);
    e.command(&["explain", "192.0.2.2", "--threshold", "3"]).ok().stdout_has("threshold met: --threshold 3");
}

#[test]
fn a_rule_threshold_from_the_flag_or_the_file_counts_apart_and_a_change_judges_again() {
    let e = Env::new();
    let mut log: String = (0..3).map(|i| drop_line(i, "192.0.2.1")).collect();
    for i in 0..2 {
        log.push_str(&sshd(10 + i, "Failed publickey for bob from 192.0.2.3 port 1 ssh2: ED25519 SHA256:x"));
    }
    e.write("auth.log", &log);
    e.sync(&["--rules", "all", "--threshold", "2", "--rule-threshold", "failed-publickey=3"]).ok();
    assert_eq!(e.read("badguys"), "", "3 drops of 20, 2 key failures of 3");
    // No new line, another threshold: the records are judged again.
    e.sync(&["--rules", "all", "--threshold", "2", "--rule-threshold", "maxstartups=3"]).ok().stderr_has("0 new lines");
    assert_eq!(lines(&e.read("badguys")), ["192.0.2.1", "192.0.2.3"], "failed-publickey back in the pool of 2");
    // The config file's key, repeatable.
    let f = Env::new();
    f.write("auth.log", &log);
    let conf =
        f.write("badguys.conf", "rules = all\nrule-threshold = failed-publickey=2\nrule-threshold = maxstartups=4\n");
    f.sync(&["--config", conf.to_str().unwrap(), "--threshold", "5"]).ok();
    assert_eq!(lines(&f.read("badguys")), ["192.0.2.3"]);
    f.command(&["explain", "192.0.2.3", "--config", conf.to_str().unwrap()])
        .ok()
        .stdout_has("failed-publickey alone reached its own threshold 2");
    let bad = f.write("bad.conf", "rule-threshold = no-such-rule=2\n");
    let r = f.sync(&["--config", bad.to_str().unwrap()]);
    assert_ne!(r.code, 0);
    r.stderr_has("bad.conf:1");
}

/// `sync` at `now` (RFC 3339) with `extra`.
fn sync_at(e: &Env, now: &str, extra: &[&str]) -> Run {
    let mut c = e.cmd(e.sync_args(extra));
    c.env("BADGUYS_NOW", now).env("TZ", "UTC");
    run(c)
}

#[test]
fn forget_drops_quiet_unlisted_records_but_never_listed_or_manual_ones() {
    let e = Env::new();
    let mut log = String::new();
    for (addr, n) in [("192.0.2.1", 1), ("192.0.2.2", 2), ("192.0.2.3", 1)] {
        for i in 0..n {
            log.push_str(&format!("Jan  1 10:00:0{i} gw sshd[1]: Invalid user a from {addr} port 1\n"));
        }
    }
    e.write("auth.log", &log);
    let flags = ["--threshold", "2", "--forget", "30d"];
    sync_at(&e, "2025-01-02T00:00:00Z", &flags).ok();
    assert_eq!(lines(&e.read("badguys")), ["192.0.2.2"]);
    e.command(&["ban", "192.0.2.3"]).ok();
    // 29 days quiet: kept.
    sync_at(&e, "2025-01-30T00:00:00Z", &flags).ok();
    e.command(&["explain", "192.0.2.1"]).ok().stdout_has("invalid-user: 1 hits");
    // 31 days: the unlisted, unbanned one is forgotten.
    sync_at(&e, "2025-02-01T00:00:00Z", &flags).ok().stderr_has("1 forgotten (1 quiet, 0 over --max-records)");
    e.command(&["explain", "192.0.2.1"]).ok().stdout_has("never seen in the logs read");
    e.command(&["explain", "192.0.2.2"]).ok().stdout_has("invalid-user: 2 hits");
    e.command(&["explain", "192.0.2.3"]).ok().stdout_has("invalid-user: 1 hits").stdout_has("manual ban");
    assert_eq!(lines(&e.read("badguys")), ["192.0.2.2", "192.0.2.3"]);
    // `never` keeps them for ever.
    let f = Env::new();
    f.write("auth.log", &log);
    sync_at(&f, "2025-01-02T00:00:00Z", &["--threshold", "2", "--forget", "never"]).ok();
    sync_at(&f, "2030-01-01T00:00:00Z", &["--threshold", "2", "--forget", "never"]).ok();
    f.command(&["explain", "192.0.2.1"]).ok().stdout_has("invalid-user: 1 hits");
}

#[test]
fn max_records_drops_the_least_recently_seen_unlisted_with_a_warning() {
    let e = Env::new();
    let mut log = String::new();
    for i in 1..=5 {
        log.push_str(&format!("Jan  1 10:00:0{i} gw sshd[1]: Invalid user a from 192.0.2.{i} port 1\n"));
    }
    // .1 is listed (two hits), however old.
    log.push_str("Jan  1 10:00:01 gw sshd[1]: Invalid user b from 192.0.2.1 port 1\n");
    e.write("auth.log", &log);
    sync_at(&e, "2025-01-02T00:00:00Z", &["--threshold", "2", "--max-records", "3"])
        .ok()
        .stderr_has("over --max-records 3: dropped the records of 2 addresses")
        .stderr_has("2 forgotten (0 quiet, 2 over --max-records)");
    for (addr, kept) in
        [("192.0.2.1", true), ("192.0.2.2", false), ("192.0.2.3", false), ("192.0.2.4", true), ("192.0.2.5", true)]
    {
        let r = e.command(&["explain", addr]);
        assert_eq!(!r.ok().stdout.contains("never seen"), kept, "{addr}: {}", r.stdout);
    }
    assert_eq!(lines(&e.read("badguys")), ["192.0.2.1"]);
}
