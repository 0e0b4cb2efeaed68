//! `badguys sync` on real files: rotation, gzip, merging, allowlist,
//! idempotence, atomicity, locking.

use std::os::unix::fs::MetadataExt;
use std::time::Duration;

use crate::harness::*;

#[test]
fn reads_plain_rotated_and_gzip_oldest_first() {
    let e = Env::new();
    e.write("auth.log.2.gz", gzip(sshd(1, "Invalid user a from 192.0.2.2 port 1").as_bytes()));
    // A kex pair that straddles the rotation: error in .1, reset in the live log.
    e.write(
        "auth.log.1",
        sshd(5, "Invalid user b from 192.0.2.1 port 1")
            + &sshd(9, "error: kex_exchange_identification: read: Connection reset by peer"),
    );
    e.write(
        "auth.log",
        sshd(9, "Connection reset by 2001:db8::9 port 2") + &sshd(7, "Invalid user c from 198.51.100.3 port 1"),
    );
    e.sync(&[]).ok().stderr_has("read 3 files");
    assert_eq!(lines(&e.read("badguys")), ["192.0.2.1", "192.0.2.2", "198.51.100.3", "2001:db8::9"]);

    let e2 = Env::new();
    std::fs::copy(e.log(), e2.log()).unwrap();
    std::fs::copy(e.path("auth.log.1"), e2.path("auth.log.1")).unwrap();
    e2.sync(&["--no-rotated"]).ok().stderr_has("read 1 files");
    assert_eq!(lines(&e2.read("badguys")), ["198.51.100.3"], "no kex-reset without its first half");
}

#[test]
fn merges_into_existing_file_keeping_cidrs_dropping_junk() {
    let e = Env::new();
    e.write("badguys", "203.0.113.0/24\nthis is not an address\n2001:db8:1::/48\n192.0.2.200\n");
    e.write(
        "auth.log",
        sshd(1, "Invalid user x from 192.0.2.100 port 1") + &sshd(2, "Invalid user x from 2001:db8:2::1 port 1"),
    );
    // Line number and a short escaped prefix only: the list path may name
    // a file whose lines must not reach the log.
    let r = e.sync(&[]);
    r.ok().stderr_has("badguys:2: not an address or network, dropped: \"this is not an a…\"");
    assert!(!r.stderr.contains("this is not an address"), "{}", r.stderr);
    assert_eq!(
        lines(&e.read("badguys")),
        ["192.0.2.100", "192.0.2.200", "203.0.113.0/24", "2001:db8:1::/48", "2001:db8:2::1"]
    );
}

#[test]
fn allowlist_and_accepted_logins_spare() {
    let e = Env::new();
    let log = [
        sshd(1, "Invalid user a from 192.0.2.1 port 1"),
        sshd(2, "Invalid user a from 192.0.2.2 port 1"),
        sshd(3, "Invalid user a from 198.51.100.7 port 1"),
        sshd(4, "Invalid user a from 127.0.0.1 port 1"),
        sshd(5, "Invalid user a from fe80::1%eth0 port 1"),
        sshd(6, "Invalid user a from 203.0.113.9 port 1"),
        sshd(7, "Accepted publickey for admin from 203.0.113.9 port 5 ssh2: ED25519 SHA256:AAAA"),
        sshd(8, "Invalid user a from 198.51.100.199 port 1"),
    ]
    .concat();
    e.write("auth.log", log);
    e.write("allow", "# admins\n198.51.100.0/25   # office\n\n");
    let allow = e.path("allow");
    let r = e.sync(&["--allow", "192.0.2.2", "--allow-file", allow.to_str().unwrap(), "--dry-run"]);
    r.ok()
        .stdout_has("+ 192.0.2.1\t")
        .stdout_has("= 192.0.2.2\tinvalid-user=1\tspared: allowlist 192.0.2.2 (--allow)")
        .stdout_has("spared: allowlist 198.51.100.0/25 (")
        .stdout_has("= 127.0.0.1\tinvalid-user=1\tspared: allowlist 127.0.0.0/8 (loopback, never listed)")
        .stdout_has("= fe80::1\t")
        .stdout_has("= 203.0.113.9\tinvalid-user=1\tspared: logged in successfully")
        .stdout_has("+ 198.51.100.199\t")
        .stderr_has("spared 5 (4 allowlist, 1 accepted login)");
    assert!(!e.out().exists(), "dry run wrote the file");

    e.sync(&["--allow", "192.0.2.2", "--allow-file", allow.to_str().unwrap()]).ok();
    assert_eq!(lines(&e.read("badguys")), ["192.0.2.1", "198.51.100.199"]);
    e.sync(&["--allow", "192.0.2.2", "--allow-file", allow.to_str().unwrap(), "--ban-accepted"]).ok();
    assert_eq!(lines(&e.read("badguys")), ["192.0.2.1", "198.51.100.199", "203.0.113.9"]);
}

#[test]
fn allowlist_carves_existing_networks() {
    let e = Env::new();
    e.write("badguys", "192.0.2.0/24\n198.51.100.5\n");
    e.write("auth.log", "");
    e.sync(&["--allow", "192.0.2.128/25", "--allow", "198.51.100.5"])
        .ok()
        .stderr_has("192.0.2.0/24 overlaps allowed 192.0.2.128/25");
    assert_eq!(lines(&e.read("badguys")), ["192.0.2.0/25"]);
}

#[test]
fn second_run_writes_nothing() {
    let e = Env::new();
    e.write("auth.log", sshd(1, "Invalid user a from 192.0.2.1 port 1"));
    e.sync(&[]).ok().stderr_has("wrote");
    let before = std::fs::metadata(e.out()).unwrap();
    std::thread::sleep(Duration::from_millis(20));
    e.sync(&[]).ok().stderr_has("unchanged: nothing written, firewall not reloaded");
    let after = std::fs::metadata(e.out()).unwrap();
    assert_eq!((before.ino(), before.mtime_nsec()), (after.ino(), after.mtime_nsec()));
}

#[test]
fn print_and_mode() {
    let e = Env::new();
    e.write("auth.log", sshd(1, "Invalid user a from 192.0.2.1 port 1"));
    e.sync(&["--print"]).ok().stdout_has("192.0.2.1\n");
    assert_eq!(std::fs::metadata(e.out()).unwrap().mode() & 0o777, 0o644);
}

#[test]
fn concurrent_reader_never_sees_a_partial_file() {
    let e = Env::new();
    // 4000 IPv6 attackers; a run with 2001:db8::800/117 allowed carves 1953
    // of them out of the file, the next run without it puts them back.
    let mut big = String::new();
    for i in 1..=4000u32 {
        big.push_str(&sshd(i, &format!("Invalid user u from 2001:db8::{i:x} port 1")));
    }
    e.write("auth.log", big);
    e.sync(&[]).ok();
    let out = e.out();
    let stop = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
    // Reads of each file, by its line count; shared so that each sync waits
    // until the reader has read what it wrote.
    let seen = std::sync::Arc::new(std::sync::Mutex::new(std::collections::BTreeMap::<usize, u32>::new()));
    let reader = {
        let (out, stop, seen) = (out.clone(), stop.clone(), seen.clone());
        std::thread::spawn(move || {
            while !stop.load(std::sync::atomic::Ordering::Relaxed) {
                let s = std::fs::read_to_string(&out).expect("the file is always there");
                assert!(s.ends_with('\n'), "partial file of {} bytes", s.len());
                let n = s.lines().count();
                assert!(n == 4000 || n == 2047, "a file with {n} lines");
                *seen.lock().unwrap().entry(n).or_insert(0u32) += 1;
            }
        })
    };
    let reads = |n: usize| seen.lock().unwrap().get(&n).copied().unwrap_or(0);
    for i in 0..10 {
        let (args, n): (&[&str], usize) =
            if i % 2 == 0 { (&["--allow", "2001:db8::800/117"], 2047) } else { (&[], 4000) };
        let before = reads(n);
        e.sync(args).ok().stderr_has("wrote");
        wait_for(30, "the reader to read the file just written", || reads(n) > before || reader.is_finished());
    }
    stop.store(true, std::sync::atomic::Ordering::Relaxed);
    reader.join().expect("the reader saw a partial file");
    // Both files were read, after every one of the five writes of each.
    let seen = seen.lock().unwrap().clone();
    assert_eq!(seen.keys().copied().collect::<Vec<_>>(), [2047, 4000], "reader saw {seen:?}");
    assert!(seen.values().all(|&c| c >= 5), "reader saw {seen:?}");
}

#[test]
fn lock_contention_waits_then_gives_up() {
    let e = Env::new();
    e.write("auth.log", sshd(1, "Invalid user a from 192.0.2.1 port 1"));
    let held = badguys::store::lock(&e.out(), Duration::from_secs(1)).unwrap();
    let started = std::time::Instant::now();
    e.sync(&["--lock-timeout", "1"]).code(5).stderr_has("another badguys is running").stderr_has("badguys.lock");
    assert!(started.elapsed() >= Duration::from_millis(900));
    assert!(!e.out().exists());
    // Released while the second run waits: it proceeds.
    let t = std::thread::spawn(move || {
        std::thread::sleep(Duration::from_millis(300));
        drop(held);
    });
    e.sync(&["--lock-timeout", "5"]).ok();
    t.join().unwrap();
    assert_eq!(lines(&e.read("badguys")), ["192.0.2.1"]);
}

/// The README's first command, as the README writes it, run in a copy of
/// the checkout's sample: it prints what the README promises and writes
/// only under its own `target/demo/`.
#[test]
fn readme_sample_command() {
    let readme = std::fs::read_to_string(repo_file("README.md")).unwrap();
    let line = readme.lines().find(|l| l.contains("cargo run --release -- sync")).expect("the command in README.md");
    let (mkdir, cargo) = line.split_once(" && ").expect("mkdir -p DIR && cargo run …");
    let demo = mkdir.strip_prefix("mkdir -p ").expect("mkdir -p DIR");
    assert_eq!(demo, "target/demo");
    let args: Vec<&str> = cargo.strip_prefix("cargo run --release -- ").unwrap().split_whitespace().collect();
    assert!(!line.contains("/tmp"), "{line}");

    let e = Env::new();
    let sample = e.path("tests/data/sample");
    std::fs::create_dir_all(&sample).unwrap();
    for f in std::fs::read_dir(repo_file("tests/data/sample")).unwrap() {
        let f = f.unwrap();
        std::fs::copy(f.path(), sample.join(f.file_name())).unwrap();
    }
    std::fs::create_dir_all(e.path(demo)).unwrap();
    let before = tree(e.dir.path());
    let r = run(e.cmd(&args));
    r.ok().stderr_has("read 3 files").stderr_has("spared 2 (1 allowlist, 1 accepted login)");
    assert_eq!(
        lines(&r.stdout),
        [
            "198.51.100.23",
            "198.51.100.77",
            "203.0.113.45",
            "203.0.113.200",
            // Per /64 by default (--ipv6-prefix).
            "2001:db8:4:7::/64",
            "2001:db8:9::/64"
        ]
    );
    let new: Vec<_> = tree(e.dir.path()).into_iter().filter(|p| !before.contains(p)).collect();
    let demo = e.path(demo);
    assert!(new.iter().all(|p| p.starts_with(&demo)), "written outside {}: {new:?}", demo.display());
    assert!(new.contains(&demo.join("badguys")) && new.contains(&demo.join("badguys.state")), "{new:?}");
}

/// Every path under `dir`.
fn tree(dir: &std::path::Path) -> Vec<std::path::PathBuf> {
    let mut all = Vec::new();
    for entry in std::fs::read_dir(dir).unwrap() {
        let p = entry.unwrap().path();
        if p.is_dir() {
            all.extend(tree(&p));
        }
        all.push(p);
    }
    all
}

#[test]
fn symlinks_at_the_list_and_lock_paths_are_refused() {
    let e = Env::new();
    e.write("auth.log", sshd(1, "Invalid user a from 192.0.2.1 port 1"));
    // The lock: root would create (or open) the file it points to.
    let victim = e.path("victim");
    std::os::unix::fs::symlink(&victim, e.path("badguys.lock")).unwrap();
    e.sync(&[]).code(4).stderr_has("badguys.lock: is a symbolic link");
    assert!(!victim.exists(), "the lock symlink's target was created");
    std::fs::remove_file(e.path("badguys.lock")).unwrap();
    // The list: neither read (its lines would reach the log) nor replaced.
    e.write("victim", "secret line\n");
    std::os::unix::fs::symlink(&victim, e.out()).unwrap();
    let r = e.sync(&[]);
    r.code(4).stderr_has("badguys: is a symbolic link");
    assert!(!r.stderr.contains("secret"), "{}", r.stderr);
    assert!(std::fs::symlink_metadata(e.out()).unwrap().file_type().is_symlink());
    assert_eq!(e.read("victim"), "secret line\n");
}

#[test]
fn a_directory_others_can_write_is_refused() {
    use std::os::unix::fs::PermissionsExt;
    let e = Env::new();
    e.write("auth.log", sshd(1, "Invalid user a from 192.0.2.1 port 1"));
    let w = e.path("w");
    std::fs::create_dir(&w).unwrap();
    std::fs::set_permissions(&w, std::fs::Permissions::from_mode(0o777)).unwrap();
    let (out, state) = (w.join("badguys"), e.path("state"));
    e.sync(&["--out", out.to_str().unwrap()])
        .code(4)
        .stderr_has("is writable by group or others without the sticky bit (mode 0777)");
    e.sync(&["--state", w.join("state").to_str().unwrap()]).code(4).stderr_has("without the sticky bit");
    assert_eq!(std::fs::read_dir(&w).unwrap().count(), 0, "nothing written there");
    assert!(!state.exists());
    // With the sticky bit (as /tmp) nobody else can remove or rename our files.
    std::fs::set_permissions(&w, std::fs::Permissions::from_mode(0o1777)).unwrap();
    e.sync(&["--out", out.to_str().unwrap()]).ok();
    assert_eq!(std::fs::read_to_string(&out).unwrap(), "192.0.2.1\n");
}

#[test]
fn stale_temp_files_of_a_killed_run_are_removed() {
    let e = Env::new();
    e.write("auth.log", sshd(1, "Invalid user a from 192.0.2.1 port 1"));
    e.sync(&[]).ok();
    // What a run killed between creating and renaming its temp files
    // leaves, an hour ago; and one a run of another lock writes now.
    let old = std::time::SystemTime::now() - Duration::from_secs(3600);
    let stale = [e.write(".badguys.Xy7Qp2.tmp", "192.0.2."), e.write(".state.a1B2c3.tmp", "badguys-state 1\n")];
    for p in &stale {
        std::fs::File::options().write(true).open(p).unwrap().set_modified(old).unwrap();
    }
    let fresh = e.write(".badguys.N0wNow.tmp", "");
    let other = e.write(".badguys.Xy7Qp2.tmp.mine", "");
    std::fs::File::options().write(true).open(&other).unwrap().set_modified(old).unwrap();
    // Even a run with nothing new to do sweeps.
    e.sync(&[]).ok().stderr_has("unchanged").stderr_has("a temporary file left by an interrupted run");
    assert!(stale.iter().all(|p| !p.exists()));
    assert!(fresh.exists() && other.exists());
    // A dry run writes, and removes, nothing.
    std::fs::write(&stale[0], "").unwrap();
    std::fs::File::options().write(true).open(&stale[0]).unwrap().set_modified(old).unwrap();
    e.sync(&["--dry-run"]).ok();
    assert!(stale[0].exists());
}
