//! The history written by sync, watch, ban and unban: in the same step as
//! the state, across runs and rotation, never by a dry run; a history that
//! cannot be written stops sync before the state is saved; and kill -9 at
//! random moments never counts an event twice nor loses one.

use std::process::Command;
use std::time::{Duration, Instant};

use crate::harness::{run, sshd, Daemon, Env};

/// Events per table in the history: (rule_day, addr_day, hour_day, users).
fn totals(e: &Env) -> (i64, i64, i64, i64) {
    let c = rusqlite::Connection::open(e.path("history.sqlite")).unwrap();
    let q = |sql: &str| c.query_row(sql, [], |r| r.get::<_, Option<i64>>(0)).unwrap().unwrap_or(0);
    (
        q("SELECT sum(events) FROM rule_day"),
        q("SELECT sum(events) FROM addr_day"),
        q("SELECT sum(events) FROM hour_day"),
        q("SELECT sum(events) FROM user_day") + q("SELECT sum(events) FROM user_rest"),
    )
}

fn changes(e: &Env, kind: &str) -> i64 {
    let c = rusqlite::Connection::open(e.path("history.sqlite")).unwrap();
    c.query_row("SELECT coalesce(sum(n), 0) FROM change_day WHERE kind = ?1", [kind], |r| r.get(0)).unwrap()
}

/// `n` invalid-user lines, from addresses 198.51.100.0-99 (`first` offsets the pids).
fn lines(first: u32, n: u32) -> String {
    let mut t = String::with_capacity(n as usize * 90);
    for i in first..first + n {
        t += &sshd(i, &format!("Invalid user u{} from 198.51.100.{} port {}", i % 7, i % 100, i % 60000));
    }
    t
}

#[test]
fn sync_writes_history_across_runs_and_rotation() {
    let e = Env::new();
    e.write("auth.log", lines(0, 10));
    e.sync(&[]).ok();
    assert_eq!(totals(&e), (10, 10, 10, 10));
    assert_eq!(changes(&e, "first_seen"), 10);
    assert_eq!(changes(&e, "listed"), 10);
    // Nothing new: nothing added.
    e.sync(&[]).ok();
    assert_eq!(totals(&e).0, 10);
    e.append("auth.log", &lines(10, 5));
    e.sync(&[]).ok();
    assert_eq!(totals(&e), (15, 15, 15, 15));
    // Rotation: the old file is not read again.
    std::fs::rename(e.log(), e.path("auth.log.1")).unwrap();
    e.write("auth.log", lines(100, 3));
    e.sync(&[]).ok();
    assert_eq!(totals(&e), (18, 18, 18, 18));
    assert_eq!(changes(&e, "first_seen"), 15, "198.51.100.0-14 each seen once");
    // unban is history too.
    e.command(&["unban", "198.51.100.1"]).ok();
    assert_eq!(changes(&e, "unbanned"), 1);
}

/// Every row of the history's tables, without the undo columns.
fn dump(e: &Env) -> String {
    let c = rusqlite::Connection::open(e.path("history.sqlite")).unwrap();
    let mut out = String::new();
    for (t, cols) in [
        ("rule_day", "day, rule, events"),
        ("hour_day", "day, hour, events"),
        ("addr_day", "day, addr, rule, hex(host), events"),
        ("change_day", "day, addr, kind, n"),
        ("user_day", "day, hex(user), events"),
        ("user_rest", "day, events"),
        ("host_day", "day, hex(host), events"),
        ("host_addr", "hex(host), addr, last_day"),
        ("change_sum", "day, kind, n"),
    ] {
        let mut q = c.prepare(&format!("SELECT {cols} FROM {t} ORDER BY {cols}")).unwrap();
        let n = q.column_count();
        let rows = q.query_map([], |r| {
            (0..n)
                .map(|i| r.get::<_, rusqlite::types::Value>(i).map(|v| format!("{v:?}")))
                .collect::<Result<Vec<_>, _>>()
        });
        for row in rows.unwrap() {
            out += &format!("{t} {}\n", row.unwrap().join(" "));
        }
    }
    out
}

#[test]
fn a_batch_written_out_while_reading_gives_the_same_history() {
    // Two hosts, several days, a few rules: spilled every 3 keys or not at all.
    let mut log = String::new();
    for i in 0..600u32 {
        let (host, day) = (["gw1", "gw2"][i as usize % 2], 1 + i / 200);
        let msg = match i % 3 {
            0 => format!("Invalid user u{} from 198.51.100.{} port {}", i % 5, i % 40, 1000 + i),
            1 => {
                format!("Connection closed by authenticating user root 203.0.113.{} port {} [preauth]", i % 9, 2000 + i)
            }
            _ => {
                format!("Failed password for invalid user x{} from 198.51.100.{} port {} ssh2", i % 4, i % 40, 3000 + i)
            }
        };
        log += &format!("Mar  {day} 10:{:02}:{:02} {host} sshd[{}]: {msg}\n", i % 60, i % 60, 100 + i);
    }
    let whole = Env::new();
    let parts = Env::new();
    for (e, keys) in [(&whole, None), (&parts, Some("3"))] {
        e.write("auth.log", log.clone());
        let mut c = e.cmd(e.sync_args(&["--rules", "all"]));
        if let Some(k) = keys {
            c.env("BADGUYS_SPILL_KEYS", k);
        }
        run(c).ok();
    }
    let (a, b) = (dump(&whole), dump(&parts));
    // (gw2 in hex)
    assert!(a.contains("addr_day") && a.contains("677732"), "{a}");
    assert_eq!(a, b);
}

#[test]
fn dry_run_and_history_none_write_no_history() {
    let e = Env::new();
    e.write("auth.log", lines(0, 4));
    e.sync(&["--dry-run"]).ok();
    assert!(!e.path("history.sqlite").exists(), "a dry run wrote history");
    e.sync(&["--history", "none"]).ok();
    assert!(!e.path("history.sqlite").exists(), "--history none wrote history");
    let elsewhere = e.path("h2.sqlite");
    e.append("auth.log", &lines(4, 2));
    e.sync(&["--history", elsewhere.to_str().unwrap(), "--history-days", "30"]).ok();
    let c = rusqlite::Connection::open(&elsewhere).unwrap();
    let n: i64 = c.query_row("SELECT sum(events) FROM rule_day", [], |r| r.get(0)).unwrap();
    assert_eq!(n, 2, "only what the state had not counted yet");
    e.sync(&["--history-days", "0"]).code(2).stderr_has("number of days");
}

#[test]
fn a_history_that_cannot_be_written_stops_sync_before_the_state() {
    let e = Env::new();
    e.write("auth.log", lines(0, 4));
    let bad = e.path("no/such/dir/history.sqlite");
    e.sync(&["--history", bad.to_str().unwrap()]).code(4).stderr_has("no/such/dir");
    // A history that SQLite cannot open (a directory in its place).
    std::fs::create_dir(e.path("h.sqlite")).unwrap();
    e.sync(&["--history", e.path("h.sqlite").to_str().unwrap()]).code(4).stderr_has("h.sqlite");
    assert!(!e.path("state").exists(), "the state was saved without its history");
    assert!(!e.out().exists(), "the list was written without its history");
}

/// A small deterministic generator (the seed is printed on failure).
struct Lcg(u64);

impl Lcg {
    fn below(&mut self, n: u64) -> u64 {
        self.0 = self.0.wrapping_mul(6364136223846793005).wrapping_add(1442695040888963407);
        (self.0 >> 33) % n.max(1)
    }
}

fn seed() -> u64 {
    let t = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap();
    t.as_nanos() as u64 ^ u64::from(std::process::id())
}

fn killed_after(mut c: Command, wait: Duration) {
    let mut child = c.stdout(std::process::Stdio::null()).stderr(std::process::Stdio::null()).spawn().unwrap();
    std::thread::sleep(wait);
    let _ = child.kill(); // SIGKILL
    let _ = child.wait();
}

#[test]
fn kill_9_during_sync_never_counts_twice_nor_loses() {
    let e = Env::new();
    let mut total = 100_000u32;
    e.write("auth.log", lines(0, total));
    // How long a whole run takes here, to spread the kills over it.
    let start = Instant::now();
    let mut c = e.cmd(e.sync_args(&["--history-days", "400"]));
    c.env("BADGUYS_DELAY_SAVE", "200");
    c.env("BADGUYS_SPILL_KEYS", "64");
    let done = run(c);
    done.ok();
    let span = start.elapsed().as_millis() as u64 + 50;
    assert_eq!(totals(&e), (i64::from(total), i64::from(total), i64::from(total), i64::from(total)));
    let s = seed();
    let mut rng = Lcg(s);
    for trial in 0..30 {
        e.append("auth.log", &lines(total, 1000));
        total += 1000;
        let mut c = e.cmd(e.sync_args(&[]));
        c.env("BADGUYS_DELAY_SAVE", "200");
        // Batches written out while reading, into the step's transaction.
        c.env("BADGUYS_SPILL_KEYS", "64");
        killed_after(c, Duration::from_millis(rng.below(span)));
        if rng.below(3) == 0 {
            e.sync(&[]).ok();
            let t = i64::from(total);
            assert_eq!(totals(&e), (t, t, t, t), "trial {trial}, seed {s}");
        }
    }
    e.sync(&[]).ok();
    let t = i64::from(total);
    assert_eq!(totals(&e), (t, t, t, t), "seed {s}");
    assert_eq!(changes(&e, "first_seen"), 100, "seed {s}");
}

#[test]
fn kill_9_during_watch_never_counts_twice_nor_loses() {
    let e = Env::new();
    let mut total = 20_000u32;
    e.write("auth.log", lines(0, total));
    let s = seed();
    let mut rng = Lcg(s);
    for trial in 0..12 {
        let args = e.watch_args(&[]);
        let mut c = e.cmd(args);
        c.env("BADGUYS_DELAY_SAVE", "300");
        c.env("BADGUYS_SPILL_KEYS", "64");
        let mut d = Daemon::spawn(c, e.path("watch.err"));
        std::thread::sleep(Duration::from_millis(200 + rng.below(800)));
        e.append("auth.log", &lines(total, 500));
        total += 500;
        std::thread::sleep(Duration::from_millis(rng.below(300)));
        // SIGTERM saves; SIGKILL lands before, inside or after that save.
        d.signal(nix::sys::signal::Signal::SIGTERM);
        std::thread::sleep(Duration::from_millis(rng.below(500)));
        let _ = d.child.kill();
        let _ = d.child.wait();
        if trial % 3 == 2 {
            e.sync(&[]).ok();
            let t = i64::from(total);
            assert_eq!(totals(&e), (t, t, t, t), "trial {trial}, seed {s}");
        }
    }
    e.sync(&[]).ok();
    let t = i64::from(total);
    assert_eq!(totals(&e), (t, t, t, t), "seed {s}");
}
