//! Rotation under load: the real `badguys watch` follows a log written at a
//! few thousand lines a second while it is rotated every way logrotate and
//! syslog daemons do it (rename and create with the daemon still writing to
//! the old file for a while, copytruncate, rename then gzip written in
//! pieces). Every attacker written is listed, and none is counted twice.

use std::collections::BTreeMap;
use std::fs::{File, OpenOptions};
use std::io::Write;
use std::path::Path;
use std::time::{Duration, Instant};

use crate::harness::*;

/// Lines between an attacker's first and second line (a third of a second).
const LAG: usize = 1000;
/// Attackers; each is written twice.
const ATTACKERS: usize = 9000;
/// Lines written per 10 ms tick: 3,000 lines/s.
const PER_TICK: usize = 30;
/// Lines between rotations (about 0.6 s).
const ROTATE_EVERY: usize = 1800;
/// The old file keeps being written this long after a rename, before the
/// new one is created (a syslog daemon that has not reopened yet).
const GAP: Duration = Duration::from_millis(300);
/// Rotated files kept.
const KEEP: u32 = 4;

fn addr(i: usize) -> String {
    let n = i + 0x100;
    std::net::Ipv6Addr::new(0x2001, 0xdb8, 0, 0, 0, 0, (n >> 16) as u16, n as u16).to_string()
}

/// `auth.log.N[.gz]` -> `auth.log.N+1[.gz]`, the oldest removed.
fn shift(dir: &Path) {
    for n in (1..=KEEP).rev() {
        for ext in ["", ".gz"] {
            let from = dir.join(format!("auth.log.{n}{ext}"));
            if !from.exists() {
                continue;
            }
            if n == KEEP {
                std::fs::remove_file(&from).unwrap();
            } else {
                std::fs::rename(&from, dir.join(format!("auth.log.{}{ext}", n + 1))).unwrap();
            }
        }
    }
}

/// Compresses `auth.log.1` into `auth.log.1.gz` the way gzip does: the
/// archive grows in pieces beside the original, which goes last.
fn compress(dir: &Path) {
    let plain = dir.join("auth.log.1");
    let gz = gzip(&std::fs::read(&plain).unwrap());
    let mut f = File::create(dir.join("auth.log.1.gz")).unwrap();
    let half = gz.len() / 2;
    f.write_all(&gz[..half]).unwrap();
    std::thread::sleep(Duration::from_millis(50));
    f.write_all(&gz[half..]).unwrap();
    drop(f);
    std::fs::remove_file(plain).unwrap();
}

fn append(p: &Path) -> File {
    OpenOptions::new().create(true).append(true).open(p).unwrap()
}

/// Writes every attacker's two lines, rotating as it goes; returns the
/// number of rotations of each kind.
fn write_log(dir: &Path) -> [u32; 3] {
    let log = dir.join("auth.log");
    let mut out = append(&log);
    let mut kinds = [0u32; 3];
    // A rename whose new file is not created yet: when, and whether to
    // compress the renamed file once it is.
    let mut pending: Option<(Instant, bool)> = None;
    let total = 2 * ATTACKERS;
    let (mut j, mut pid) = (0usize, 0u32);
    let mut next_tick = Instant::now();
    while j < total || pending.is_some() {
        for _ in 0..PER_TICK {
            if j >= total {
                break;
            }
            // Line j: the first line of attacker j/2, or the second line of
            // the attacker whose first came LAG lines earlier (of the last
            // ones, at the start).
            let i = if j % 2 == 0 { j / 2 } else { (j / 2 + ATTACKERS - LAG / 2) % ATTACKERS };
            pid += 1;
            out.write_all(sshd(pid, &format!("Invalid user u{i} from {} port 22", addr(i))).as_bytes()).unwrap();
            j += 1;
            if j % ROTATE_EVERY == 0 && pending.is_none() {
                let kind = (j / ROTATE_EVERY) % 3;
                kinds[kind] += 1;
                shift(dir);
                match kind {
                    0 | 2 => {
                        std::fs::rename(&log, dir.join("auth.log.1")).unwrap();
                        pending = Some((Instant::now() + GAP, kind == 2));
                    }
                    _ => {
                        std::fs::copy(&log, dir.join("auth.log.1")).unwrap();
                        out.set_len(0).unwrap();
                    }
                }
            }
        }
        if let Some((at, gz)) = pending {
            if Instant::now() >= at {
                out = append(&log);
                if gz {
                    compress(dir);
                }
                pending = None;
            }
        }
        next_tick += Duration::from_millis(10);
        if let Some(d) = next_tick.checked_duration_since(Instant::now()) {
            std::thread::sleep(d);
        }
    }
    kinds
}

// Fails today with some attackers counted (exactly twice) but never listed:
// their lines were read by a watch step that then failed (the live log
// missing in the gap between rename and create), and the step's decisions
// were dropped. Verified by making watch reconcile after a failed step: it
// then passes.
#[test]
fn rotation_under_load() {
    let e = Env::new();
    e.write("auth.log", "");
    let args = e.watch_args(&[]);
    let mut c = e.cmd(args);
    // Each step waits between listing the files and opening them, so that
    // rotations land there too (debug builds only).
    c.arg("-v").env("BADGUYS_DELAY_OPEN", "20");
    let mut d = Daemon::spawn(c, e.path("watch.err"));
    wait_for(20, "the first sync", || e.path("badguys").exists());

    let dir = e.dir.path().to_path_buf();
    let kinds = std::thread::spawn(move || write_log(&dir)).join().unwrap();
    assert!(kinds.iter().all(|&k| k >= 2), "rotations of each kind: {kinds:?}");

    // Every attacker listed (the bound only keeps a failure from hanging).
    let want: Vec<String> = (0..ATTACKERS).map(addr).collect();
    let missing = |e: &Env| {
        let listed: std::collections::BTreeSet<String> = e.read("badguys").lines().map(str::to_string).collect();
        want.iter().filter(|a| !listed.contains(*a)).cloned().collect::<Vec<_>>()
    };
    let until = Instant::now() + Duration::from_secs(15);
    while !missing(&e).is_empty() && Instant::now() < until {
        std::thread::sleep(Duration::from_millis(50));
    }
    let missing_now = missing(&e);
    assert_eq!(d.stop(), 0, "{}", d.log());

    // Counts as the state has them: each attacker's two lines, once each.
    let r = e.command(&["list", "--json", "--all"]);
    r.ok();
    let mut counts: BTreeMap<String, u64> = BTreeMap::new();
    let mut unlisted = Vec::new();
    for l in r.stdout.lines() {
        let v: serde_json::Value = serde_json::from_str(l).unwrap();
        let a = v["addr"].as_str().unwrap().to_string();
        if v["source"] == "seen" {
            unlisted.push(a.clone());
        }
        counts.insert(a, v["rules"]["invalid-user"].as_u64().unwrap_or(0));
    }
    let wrong: Vec<_> = want.iter().filter(|a| counts.get(*a) != Some(&2)).map(|a| (a, counts.get(a))).collect();
    assert!(
        missing_now.is_empty() && wrong.is_empty(),
        "{} of {ATTACKERS} attackers not listed (of them, counted but not listed: {}), e.g. {:?}; \
         {} not counted exactly twice, e.g. {:?}",
        missing_now.len(),
        missing_now.iter().filter(|a| counts.contains_key(*a)).count(),
        &missing_now[..missing_now.len().min(5)],
        wrong.len(),
        &wrong[..wrong.len().min(5)]
    );
    assert_eq!(counts.len(), ATTACKERS, "addresses that were never written");
    assert!(unlisted.is_empty(), "{unlisted:?}");
}
