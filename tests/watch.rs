//! `badguys watch` on real files: it follows appends, holds partial lines,
//! survives rename and copy-truncate rotation and a missing file, rereads
//! the allow file on SIGHUP, stops cleanly on SIGTERM, and runs hooks that
//! never delay blocking.

use std::fs::OpenOptions;

use crate::harness::*;

fn watch(e: &Env, extra: &[&str]) -> Daemon {
    let args = e.watch_args(extra);
    let mut c = e.cmd(args);
    c.arg("-v");
    Daemon::spawn(c, e.path("watch.err"))
}

fn listed(e: &Env, addr: &str) -> bool {
    e.read("badguys").lines().any(|l| l == addr)
}

#[test]
fn follows_appends_partial_lines_and_rotation() {
    let e = Env::new();
    e.write("auth.log", sshd(1, "Invalid user a from 192.0.2.1 port 1"));
    let mut d = watch(&e, &[]);
    wait_for(10, "the first sync", || listed(&e, "192.0.2.1"));

    e.append("auth.log", &sshd(2, "Invalid user a from 192.0.2.2 port 1"));
    wait_for(5, "an appended line", || listed(&e, "192.0.2.2"));

    e.append("auth.log", "Oct  1 14:42:51 gw sshd[3]: Invalid user b from 192.0.2.3 po");
    std::thread::sleep(std::time::Duration::from_millis(400));
    assert!(!listed(&e, "192.0.2.3"), "a partial line must wait for its newline");
    e.append("auth.log", "rt 3\n");
    wait_for(5, "the completed line", || listed(&e, "192.0.2.3"));

    // Rename rotation: the last lines of the old file, then the new file.
    e.append("auth.log", &sshd(4, "Invalid user a from 192.0.2.4 port 1"));
    std::fs::rename(e.log(), e.path("auth.log.1")).unwrap();
    e.append("auth.log", &sshd(5, "Invalid user a from 192.0.2.5 port 1"));
    wait_for(5, "both sides of a rename rotation", || listed(&e, "192.0.2.4") && listed(&e, "192.0.2.5"));

    // copytruncate: the file shrinks below the cursor and is read from 0.
    std::fs::copy(e.log(), e.path("auth.log.2")).unwrap();
    OpenOptions::new().write(true).open(e.log()).unwrap().set_len(0).unwrap();
    e.append("auth.log", &sshd(6, "Invalid user a from 192.0.2.6 port 1"));
    wait_for(5, "a line after copytruncate", || listed(&e, "192.0.2.6"));

    // Missing for a while, then back.
    std::fs::rename(e.log(), e.path("auth.log.3")).unwrap();
    std::thread::sleep(std::time::Duration::from_millis(300));
    e.append("auth.log", &sshd(7, "Invalid user a from 2001:db8::7 port 1"));
    wait_for(5, "a line in a log that was missing", || listed(&e, "2001:db8::7"));

    assert_eq!(d.stop(), 0, "{}", d.log());
    let log = d.log();
    assert!(log.contains("SIGTERM: finishing") && log.contains("stopped"), "{log}");
    // Each line counted once, whatever the rotations.
    let state = e.read("state");
    for i in 1..=6 {
        assert!(state.contains(&format!("addr\t192.0.2.{i}\t")), "{state}");
    }
    assert_eq!(state.matches("hits=invalid-user:1\t").count(), 7, "{state}");
}

#[test]
fn restart_counts_nothing_twice_and_loses_nothing() {
    let e = Env::new();
    e.write("auth.log", sshd(1, "Invalid user a from 192.0.2.1 port 1"));
    let mut d = watch(&e, &[]);
    wait_for(10, "the first sync", || listed(&e, "192.0.2.1"));
    assert_eq!(d.stop(), 0);
    // Written while it was down.
    e.append("auth.log", &sshd(2, "Invalid user a from 192.0.2.2 port 1"));
    let mut d = watch(&e, &[]);
    wait_for(10, "a line written while stopped", || listed(&e, "192.0.2.2"));
    e.append("auth.log", &sshd(3, "Invalid user a from 192.0.2.1 port 1"));
    wait_for(5, "the third line to be read", || d.log().contains("auth.log: read 65 bytes from offset 130"));
    // SIGTERM saves the state.
    assert_eq!(d.stop(), 0);
    let state = e.read("state");
    assert!(state.contains("addr\t192.0.2.1\t") && state.contains("addr\t192.0.2.2\t"), "{state}");
    assert_eq!(state.matches("hits=invalid-user:2\t").count(), 1, "{state}");
    assert_eq!(state.matches("hits=invalid-user:1\t").count(), 1, "{state}");
}

#[test]
fn sighup_rereads_the_allow_file() {
    let e = Env::new();
    e.write("allow", "");
    let allow = e.path("allow");
    e.write("auth.log", sshd(1, "Invalid user a from 192.0.2.1 port 1"));
    let d = watch(&e, &["--allow-file", allow.to_str().unwrap()]);
    wait_for(10, "the first sync", || listed(&e, "192.0.2.1"));
    e.write("allow", "192.0.2.0/24 # the office\n");
    d.signal(nix::sys::signal::Signal::SIGHUP);
    wait_for(5, "the allowed address to leave the list", || !listed(&e, "192.0.2.1"));
    assert!(d.log().contains("SIGHUP"), "{}", d.log());
}

#[test]
fn a_ban_by_hand_while_watching_is_kept() {
    let e = Env::new();
    e.write("auth.log", "");
    let mut d = watch(&e, &[]);
    wait_for(10, "the first sync", || e.path("badguys").exists());
    e.command(&["ban", "203.0.113.0/24"]).ok();
    e.append("auth.log", &sshd(2, "Invalid user a from 192.0.2.2 port 1"));
    wait_for(5, "the next ban", || listed(&e, "192.0.2.2"));
    assert!(listed(&e, "203.0.113.0/24"), "watch overwrote a manual ban:\n{}", e.read("badguys"));
    assert_eq!(d.stop(), 0);
    assert!(e.read("state").contains("manual\t203.0.113.0/24"));
}

/// A hook script that records its stdin and environment, after `delay`,
/// then exits with `code`.
fn hook(e: &Env, name: &str, delay: &str, code: i32) -> String {
    let p = e.path(name);
    let rec = e.path(&format!("{name}.out"));
    std::fs::write(
        &p,
        format!("#!/bin/sh\nsleep {delay}\n{{ echo \"event=$BADGUYS_EVENT count=$BADGUYS_COUNT addrs=$BADGUYS_ADDRS\"; cat; }} >> {}\nexit {code}\n", rec.display()),
    )
    .unwrap();
    std::fs::set_permissions(&p, std::os::unix::fs::PermissionsExt::from_mode(0o755)).unwrap();
    p.display().to_string()
}

#[test]
fn hooks_get_json_and_never_delay_blocking() {
    let e = Env::new();
    e.write("auth.log", "");
    let ok = hook(&e, "on-ban", "0", 0);
    let mut d = watch(&e, &["--on-ban", &ok, "--hook-timeout", "5"]);
    wait_for(10, "the first sync", || e.path("badguys").exists());
    e.append("auth.log", &sshd(1, "Invalid user admin from 192.0.2.1 port 1"));
    wait_for(5, "the hook to run", || e.read("on-ban.out").contains("\"last\""));
    let out = e.read("on-ban.out");
    assert!(out.contains("event=ban count=1 addrs=192.0.2.1"), "{out}");
    assert!(
        out.contains("\"event\":\"ban\"")
            && out.contains("\"addr\":\"192.0.2.1\"")
            && out.contains("\"users\":[\"admin\"]"),
        "{out}"
    );
    assert!(out.contains("\"rules\":{\"invalid-user\":1}"), "{out}");
    assert_eq!(d.stop(), 0);

    // A hook that hangs and one that fails: bans still land at once.
    let e = Env::new();
    e.write("auth.log", "");
    let slow = hook(&e, "slow", "30", 0);
    let mut d = watch(&e, &["--on-ban", &slow, "--hook-timeout", "10"]);
    wait_for(10, "the first sync", || e.path("badguys").exists());
    // Spaced past the file's 2 s flush interval (the firewall gets each ban
    // at once; the file may lag that long). Order, not speed: every ban
    // lands while the first run of the hook still hangs (it is killed only
    // after its 10 s).
    std::thread::sleep(std::time::Duration::from_millis(2100));
    let killed = |d: &Daemon| d.log().contains("timed out") || d.log().contains("killed");
    for i in 1..=3 {
        e.append("auth.log", &sshd(i, &format!("Invalid user a from 192.0.2.{i} port 1")));
        wait_for(10, "a ban while the hook hangs", || listed(&e, &format!("192.0.2.{i}")));
        assert!(!killed(&d), "ban {i} waited for the hook:\n{}", d.log());
        std::thread::sleep(std::time::Duration::from_millis(2100));
    }
    wait_for(20, "the hook to be killed", || killed(&d));
    assert_eq!(d.stop(), 0);

    let e = Env::new();
    e.write("auth.log", "");
    let bad = hook(&e, "bad", "0", 3);
    let mut d = watch(&e, &["--on-ban", &bad]);
    wait_for(10, "the first sync", || e.path("badguys").exists());
    e.append("auth.log", &sshd(1, "Invalid user a from 192.0.2.1 port 1"));
    wait_for(5, "the ban", || listed(&e, "192.0.2.1"));
    wait_for(5, "the failure to be logged", || d.log().contains("exit"));
    assert_eq!(d.stop(), 0);
}

#[test]
fn login_of_a_banned_address_raises_the_alarm() {
    let e = Env::new();
    e.write("auth.log", sshd(1, "Invalid user a from 192.0.2.1 port 1"));
    let alarm = hook(&e, "on-login", "0", 0);
    let mut d = watch(&e, &["--on-login", &alarm]);
    wait_for(10, "the first sync", || listed(&e, "192.0.2.1"));
    e.append("auth.log", &sshd(2, "Accepted password for root from 192.0.2.1 port 2 ssh2"));
    wait_for(5, "the alarm", || e.read("on-login.out").contains("\"event\":\"login\""));
    assert!(e.read("on-login.out").contains("\"user\":\"root\""));
    assert!(d.log().contains("login from previously banned 192.0.2.1 as root"), "{}", d.log());
    assert_eq!(d.stop(), 0);
}

#[test]
fn a_line_added_by_hand_while_watching_is_kept() {
    let e = Env::new();
    e.write("auth.log", sshd(1, "Invalid user a from 192.0.2.1 port 1"));
    let mut d = watch(&e, &[]);
    wait_for(10, "the first sync", || listed(&e, "192.0.2.1"));
    e.append("badguys", "192.0.2.99\n");
    e.append("auth.log", &sshd(2, "Invalid user a from 192.0.2.2 port 1"));
    wait_for(5, "the next ban", || listed(&e, "192.0.2.2"));
    std::thread::sleep(std::time::Duration::from_millis(2500));
    assert!(listed(&e, "192.0.2.99"), "watch dropped a line added by hand:\n{}\n{}", e.read("badguys"), d.log());
    assert_eq!(d.stop(), 0);
    assert!(e.read("state").contains("manual\t192.0.2.99\t"), "{}", e.read("state"));
}

#[test]
fn a_decision_survives_a_step_that_fails_after_counting() {
    let e = Env::new();
    e.write("auth.log", sshd(1, "Accepted publickey for me from 192.0.2.100 port 1 ssh2"));
    let mut d = watch(&e, &[]);
    wait_for(10, "the first sync", || e.path("badguys").exists());
    // Held lock: the attack line and the rotation land between two steps,
    // so the next step counts the line in auth.log.1, then fails on the
    // missing live log (rotation with a gap before the create).
    let lock = std::fs::OpenOptions::new().create(true).truncate(false).write(true).open(e.path("badguys.lock"));
    let lock = nix::fcntl::Flock::lock(lock.unwrap(), nix::fcntl::FlockArg::LockExclusive).unwrap();
    e.append("auth.log", &sshd(2, "Invalid user a from 192.0.2.1 port 1"));
    std::fs::rename(e.log(), e.path("auth.log.1")).unwrap();
    drop(lock);
    wait_for(10, "the failed step", || {
        d.log().contains("auth.log: No such file or directory (os error 2); waiting for it")
    });
    assert!(!listed(&e, "192.0.2.1"));
    // The live log is back, with nothing new in it: the address counted by
    // the failed step is listed now, not at the next reconcile (10 min).
    e.append("auth.log", &sshd(3, "Accepted publickey for me from 192.0.2.100 port 1 ssh2"));
    wait_for(5, "the decision of the failed step", || listed(&e, "192.0.2.1"));
    assert_eq!(d.stop(), 0, "{}", d.log());
    assert_eq!(d.log().matches("banned 192.0.2.1 ").count(), 1, "{}", d.log());
    assert_eq!(e.read("state").matches("hits=invalid-user:1\t").count(), 1, "counted once");
}

#[test]
fn a_truncated_gzip_under_a_cursor_does_not_stop_watch() {
    let e = Env::new();
    let mut text = String::new();
    for i in 0..5000u32 {
        text.push_str(&sshd(i, &format!("Invalid user u from 192.0.2.{} port {i}", i % 200 + 1)));
    }
    e.write("auth.log.1", &text);
    e.write("auth.log", "");
    e.sync(&[]).ok();
    // Compressed with the compression cut short: the cursor points past
    // the damage.
    std::fs::remove_file(e.path("auth.log.1")).unwrap();
    let gz = gzip(text.as_bytes());
    e.write("auth.log.2.gz", &gz[..gz.len() / 2]);
    let mut d = watch(&e, &[]);
    e.append("auth.log", &sshd(1, "Invalid user a from 198.51.100.1 port 1"));
    wait_for(20, "a line after the damaged file", || listed(&e, "198.51.100.1"));
    assert_eq!(d.stop(), 0, "{}", d.log());
    assert!(d.log().contains("auth.log.2.gz: damaged gzip"), "{}", d.log());
    assert!(!d.log().contains("incomplete deflate stream; waiting"), "{}", d.log());
    // Nothing of the damaged file was read again.
    assert_eq!(e.read("state").matches("hits=invalid-user:25\t").count(), 200, "{}", e.read("state"));
}

#[test]
fn hooks_carry_geo_and_the_report_is_rewritten_on_its_timer() {
    let e = Env::new();
    e.write("auth.log", "");
    let dbs = crate::geo::write_maxmind(e.dir.path(), crate::geo::BUILT);
    let ok = hook(&e, "on-ban", "0", 0);
    let report = e.path("report.html");
    let (g0, g1) = (dbs[0].to_str().unwrap(), dbs[1].to_str().unwrap());
    let r = report.to_str().unwrap();
    let mut d = watch(&e, &["--on-ban", &ok, "--geo", g0, "--geo", g1, "--report", r, "--report-every", "1s"]);
    wait_for(10, "the first sync", || e.path("badguys").exists());
    wait_for(10, "the first report", || report.exists());
    e.append("auth.log", &sshd(1, "Invalid user admin from 81.2.69.142 port 1"));
    wait_for(10, "the hook to run", || e.read("on-ban.out").contains("\"last\""));
    let out = e.read("on-ban.out");
    assert!(out.contains("\"country\":\"GB\",\"city\":\"London\",\"asn\":20712,\"org\":\"Andrews & Arnold\""), "{out}");
    // The report follows on its own timer, and reloads itself as often.
    wait_for(10, "the report to show the ban", || e.read("report.html").contains("81.2.69.142"));
    assert!(e.read("report.html").contains("<meta http-equiv=\"refresh\" content=\"1\">"));
    assert_eq!(d.stop(), 0);
    // The Telegram hook shows where the address is.
    let json: String = out.lines().filter(|l| l.starts_with('{')).collect::<Vec<_>>().join("\n");
    let tg = std::process::Command::new("sh")
        .arg(crate::harness::repo_file("contrib/hooks/telegram"))
        .arg("--print")
        .env("BADGUYS_HOST", "gw")
        .stdin(std::fs::File::open(e.write("events.json", json + "\n")).unwrap())
        .output()
        .unwrap();
    let text = String::from_utf8_lossy(&tg.stdout);
    assert!(text.contains("81.2.69.142 [GB London, AS20712 Andrews & Arnold]"), "{text}");
}
