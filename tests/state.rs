//! State across runs: incremental reading through cursors (appends, partial
//! lines, rename and copy-truncate rotation, gzip rotation), nothing counted
//! twice, thresholds, windows, expiry, manual bans, corrupt state.

use std::fs::OpenOptions;

use crate::harness::*;

/// `badguys explain ADDR EXTRA…` with the test's state.
fn explain(e: &Env, addr: &str, extra: &[&str]) -> Run {
    let mut args = vec!["explain", addr];
    args.extend_from_slice(extra);
    e.command(&args)
}

fn cmd(e: &Env, args: &[&str]) -> Run {
    e.command(args)
}

#[test]
fn appends_and_partial_lines_are_read_once() {
    let e = Env::new();
    e.append("auth.log", &sshd(1, "Invalid user a from 192.0.2.1 port 1"));
    e.sync(&[]).ok().stderr_has("1 new lines");
    e.sync(&[]).ok().stderr_has("0 new lines").stderr_has("unchanged");
    // A line still being written is held back until its newline.
    e.append("auth.log", "Oct  1 14:42:51 gw sshd[2]: Invalid user b from 192.0.2.2 po");
    e.sync(&[]).ok().stderr_has("0 new lines");
    assert_eq!(lines(&e.read("badguys")), ["192.0.2.1"]);
    e.append("auth.log", "rt 2\n");
    e.append("auth.log", &sshd(3, "Invalid user c from 192.0.2.1 port 1"));
    e.sync(&[]).ok().stderr_has("2 new lines");
    assert_eq!(lines(&e.read("badguys")), ["192.0.2.1", "192.0.2.2"]);
    explain(&e, "192.0.2.1", &[]).ok().stdout_has("invalid-user: 2 hits").stdout_has("\"a\", \"c\"");
    explain(&e, "192.0.2.2", &[]).ok().stdout_has("invalid-user: 1 hits");
}

#[test]
fn rename_rotation_copytruncate_and_gzip_lose_nothing_and_count_once() {
    let e = Env::new();
    e.append("auth.log", &sshd(1, "Invalid user a from 192.0.2.1 port 1"));
    e.sync(&[]).ok();
    // Lines written just before a rename rotation, then the new file.
    e.append("auth.log", &sshd(2, "Invalid user a from 192.0.2.2 port 1"));
    std::fs::rename(e.log(), e.path("auth.log.1")).unwrap();
    e.append("auth.log", &sshd(3, "Invalid user a from 192.0.2.3 port 1"));
    e.sync(&[]).ok().stderr_has("2 new lines");
    // copytruncate: copy, then truncate in place, then more lines.
    e.append("auth.log", &sshd(4, "Invalid user a from 192.0.2.4 port 1"));
    std::fs::rename(e.path("auth.log.1"), e.path("auth.log.2")).unwrap();
    std::fs::copy(e.log(), e.path("auth.log.1")).unwrap();
    OpenOptions::new().write(true).open(e.log()).unwrap().set_len(0).unwrap();
    e.append("auth.log", &sshd(5, "Invalid user a from 192.0.2.5 port 1"));
    e.sync(&[]).ok().stderr_has("2 new lines");
    // The rotated file gets compressed between two runs: nothing is re-read.
    let gz = gzip(&std::fs::read(e.path("auth.log.2")).unwrap());
    std::fs::write(e.path("auth.log.2.gz"), gz).unwrap();
    std::fs::remove_file(e.path("auth.log.2")).unwrap();
    e.append("auth.log", &sshd(6, "Invalid user a from 192.0.2.6 port 1"));
    e.sync(&[]).ok().stderr_has("1 new lines");
    e.sync(&[]).ok().stderr_has("0 new lines");
    assert_eq!(
        lines(&e.read("badguys")),
        ["192.0.2.1", "192.0.2.2", "192.0.2.3", "192.0.2.4", "192.0.2.5", "192.0.2.6"]
    );
    for i in 1..=6 {
        explain(&e, &format!("192.0.2.{i}"), &[]).ok().stdout_has("invalid-user: 1 hits");
    }
}

#[test]
fn a_gzip_rotated_before_the_first_read_is_finished_once() {
    let e = Env::new();
    e.append("auth.log", &sshd(1, "Invalid user a from 192.0.2.1 port 1"));
    e.sync(&[]).ok();
    e.append("auth.log", &sshd(2, "Invalid user a from 192.0.2.2 port 1"));
    // Rotated and compressed in one go (newsyslog), tail unread.
    let gz = gzip(&std::fs::read(e.log()).unwrap());
    std::fs::write(e.path("auth.log.0.gz"), gz).unwrap();
    std::fs::write(e.log(), sshd(3, "Invalid user a from 192.0.2.3 port 1")).unwrap();
    e.sync(&[]).ok().stderr_has("2 new lines");
    explain(&e, "192.0.2.1", &[]).ok().stdout_has("invalid-user: 1 hits");
    assert_eq!(lines(&e.read("badguys")), ["192.0.2.1", "192.0.2.2", "192.0.2.3"]);
}

#[test]
fn threshold_within_a_window() {
    let e = Env::new();
    let at = |t: &str, ip: &str| format!("2024-10-01T{t}+00:00 gw sshd[1]: Invalid user a from {ip} port 1\n");
    // .1: three attempts within a minute; .2: three spread over an hour.
    let log = [at("10:00:00", "192.0.2.1"), at("10:00:20", "192.0.2.1"), at("10:00:40", "192.0.2.1")].concat()
        + &[at("10:00:00", "192.0.2.2"), at("10:30:00", "192.0.2.2"), at("11:00:00", "192.0.2.2")].concat();
    e.write("auth.log", log);
    e.sync(&["--threshold", "3", "--window", "1m"]).ok();
    assert_eq!(lines(&e.read("badguys")), ["192.0.2.1"]);
    explain(&e, "192.0.2.2", &["--threshold", "3", "--window", "1m"]).ok().stdout_has("not listed");
    // Without a window, three attacks are enough whenever they came.
    e.sync(&["--threshold", "3"]).ok();
    assert_eq!(lines(&e.read("badguys")), ["192.0.2.1", "192.0.2.2"]);
}

#[test]
fn expiry_and_year_rollover() {
    let e = Env::new();
    // A December line read on 2 January belongs to last year.
    e.write("auth.log", "Dec 31 23:59:00 gw sshd[1]: Invalid user a from 192.0.2.1 port 1\n");
    let mut c = e.cmd(e.sync_args(&["--expire", "2d"]));
    c.env("BADGUYS_NOW", "2025-01-02T12:00:00Z").env("TZ", "UTC");
    run(c).ok();
    assert_eq!(lines(&e.read("badguys")), ["192.0.2.1"]);
    let r = cmd(&e, &["list"]);
    r.ok().stdout_has("192.0.2.1").stdout_has("2024-12-31T23:59:00Z");
    // Three days later it has not been seen again: it leaves the list.
    let mut c = e.cmd(e.sync_args(&["--expire", "2d"]));
    c.env("BADGUYS_NOW", "2025-01-03T12:00:00Z").env("TZ", "UTC");
    run(c).ok().stderr_has("1 expired");
    assert_eq!(e.read("badguys"), "");
    // It comes back when it attacks again.
    e.append("auth.log", "Jan  3 13:00:00 gw sshd[2]: Invalid user a from 192.0.2.1 port 1\n");
    let mut c = e.cmd(e.sync_args(&["--expire", "2d"]));
    c.env("BADGUYS_NOW", "2025-01-03T14:00:00Z").env("TZ", "UTC");
    run(c).ok();
    assert_eq!(lines(&e.read("badguys")), ["192.0.2.1"]);
}

#[test]
fn ban_unban_list_explain() {
    let e = Env::new();
    e.write("auth.log", sshd(1, "Invalid user x from 192.0.2.1 port 1"));
    e.sync(&[]).ok();
    cmd(&e, &["ban", "198.51.100.0/24", "--for", "1h", "--reason", "scanner net"]).ok();
    assert_eq!(lines(&e.read("badguys")), ["192.0.2.1", "198.51.100.0/24"]);
    let r = cmd(&e, &["list"]);
    r.ok().stdout_has("198.51.100.0/24").stdout_has("manual").stdout_has("scanner net").stdout_has("invalid-user=1");
    let r = cmd(&e, &["list", "--json"]);
    r.ok().stdout_has("\"addr\":\"192.0.2.1\"").stdout_has("\"source\":\"manual\"");
    assert_eq!(r.stdout.lines().count(), 2);
    explain(&e, "198.51.100.7", &[]).ok().stdout_has("manual ban of 198.51.100.0/24").stdout_has("scanner net");
    explain(&e, "192.0.2.1", &[]).ok().stdout_has("listed in").stdout_has("invalid-user: 1 hits").stdout_has("\"x\"");
    explain(&e, "203.0.113.1", &[]).ok().stdout_has("never seen");
    // Unban: out at once; back only if it attacks again.
    cmd(&e, &["unban", "192.0.2.1"]).ok().stderr_has("unbanned 192.0.2.1");
    cmd(&e, &["unban", "198.51.100.0/24"]).ok();
    assert_eq!(e.read("badguys"), "");
    e.sync(&[]).ok();
    assert_eq!(e.read("badguys"), "", "old lines do not bring it back");
    e.append("auth.log", &sshd(2, "Invalid user y from 192.0.2.1 port 1"));
    e.sync(&[]).ok();
    assert_eq!(lines(&e.read("badguys")), ["192.0.2.1"]);
    cmd(&e, &["ban", "not-an-address"]).code(2);
}

#[test]
fn a_corrupt_state_is_reported_and_rebuilt_without_emptying_the_list() {
    let e = Env::new();
    e.write("auth.log", sshd(1, "Invalid user x from 192.0.2.1 port 1"));
    e.sync(&[]).ok();
    cmd(&e, &["ban", "203.0.113.0/24"]).ok();
    // Truncated mid-way, as a full disk would leave it (not that badguys would).
    let st = std::fs::read(e.path("state")).unwrap();
    std::fs::write(e.path("state"), &st[..st.len() / 2]).unwrap();
    // Cut mid-line: "line N: …"; cut at a line end: "truncated".
    e.sync(&[]).ok().stderr_has("is unusable (").stderr_has("rebuilding from the logs");
    assert_eq!(lines(&e.read("badguys")), ["192.0.2.1", "203.0.113.0/24"]);
    assert!(e.path("state.corrupt").exists());
    explain(&e, "192.0.2.1", &[]).ok().stdout_has("invalid-user: 1 hits");
    // Cut exactly at a line end: the end marker is missing.
    let st = std::fs::read(e.path("state")).unwrap();
    let cut = st[..st.len() - 1].iter().rposition(|&b| b == b'\n').unwrap() + 1;
    std::fs::write(e.path("state"), &st[..cut]).unwrap();
    e.sync(&[]).ok().stderr_has("unusable (truncated: no end marker)");
    // Garbage, too.
    std::fs::write(e.path("state"), b"\x00\xff garbage").unwrap();
    e.sync(&[]).ok().stderr_has("not a badguys state file");
    assert_eq!(lines(&e.read("badguys")), ["192.0.2.1", "203.0.113.0/24"]);
}

#[test]
fn check_says_what_is_wrong() {
    let e = Env::new();
    e.write("auth.log", "");
    cmd(&e, &["check", "--log", e.log().to_str().unwrap()]).ok().stdout_has("configuration OK");
    let r = cmd(&e, &["check", "--log", "/nonexistent/auth.log"]);
    r.code(2).stdout_has("log /nonexistent/auth.log: No such file");
    e.write("conf", "threshold = many\n");
    let conf = e.path("conf");
    cmd(&e, &["--config", conf.to_str().unwrap(), "check"]).code(2).stderr_has("conf:1: threshold:");
}

#[test]
fn a_dry_run_writes_nothing_not_even_a_corrupt_state_aside() {
    let e = Env::new();
    e.write("auth.log", sshd(1, "Invalid user x from 192.0.2.1 port 1"));
    // A first dry run creates nothing: no list, no state, no lock file.
    e.sync(&["--dry-run"]).ok().stdout_has("+ 192.0.2.1");
    let names = || {
        let mut v: Vec<String> =
            std::fs::read_dir(e.dir.path()).unwrap().map(|d| d.unwrap().file_name().into_string().unwrap()).collect();
        v.sort();
        v
    };
    assert_eq!(names(), ["auth.log"]);
    e.sync(&[]).ok();
    std::fs::remove_file(e.path("badguys.lock")).unwrap();
    std::fs::write(e.path("state"), b"\x00\xff garbage").unwrap();
    e.append("auth.log", &sshd(2, "Invalid user x from 192.0.2.2 port 1"));
    let before = names();
    e.sync(&["--dry-run"]).ok().stderr_has("dry run: left as it is").stdout_has("+ 192.0.2.2");
    assert_eq!(names(), before, "no .corrupt copy, no lock file, no temp file");
    assert_eq!(std::fs::read(e.path("state")).unwrap(), b"\x00\xff garbage");
    assert_eq!(lines(&e.read("badguys")), ["192.0.2.1"]);
}

#[test]
fn a_corrupt_state_is_kept_aside_under_its_whole_name() {
    let e = Env::new();
    e.write("auth.log", sshd(1, "Invalid user x from 192.0.2.1 port 1"));
    let state = e.path("badguys.state");
    let st = state.to_str().unwrap();
    e.sync(&["--state", st]).ok();
    std::fs::write(&state, b"garbage").unwrap();
    e.sync(&["--state", st]).ok().stderr_has("kept as").stderr_has("badguys.state.corrupt");
    assert_eq!(std::fs::read(e.path("badguys.state.corrupt")).unwrap(), b"garbage");
    assert!(!e.path("badguys.corrupt").exists());
}

#[test]
fn durations_are_at_most_100_years() {
    let e = Env::new();
    e.write("auth.log", "");
    // now + d wrapped: "banned", and the ban lapsed at once.
    for long in ["9223372036854775807s", "99999999999999999999d", "36600d"] {
        cmd(&e, &["ban", "192.0.2.9", "--for", long]).code(2).stderr_has("longer than 100 years");
    }
    e.sync(&["--expire", "9223372036854775807s"]).code(2).stderr_has("longer than 100 years");
    e.sync(&["--window", "0s"]).code(2).stderr_has("not a positive duration");
    let mut w = e.cmd(e.sync_args(&[]));
    w.args(["--lock-timeout", "18446744073709551615"]);
    run(w).code(2).stderr_has("longer than 100 years");
    e.write("conf", "expire = 9223372036854775807\n");
    let conf = e.path("conf");
    let mut c = e.cmd(["--config", conf.to_str().unwrap()]);
    c.args(e.sync_args(&[]));
    run(c).code(2).stderr_has("conf:1: expire:").stderr_has("longer than 100 years");
    assert!(!e.out().exists());
    // The longest ban there is, is one.
    cmd(&e, &["ban", "192.0.2.9", "--for", "36500d"]).ok().stderr_has("banned 192.0.2.9 until 21");
    assert_eq!(lines(&e.read("badguys")), ["192.0.2.9"]);
    e.sync(&[]).ok();
    assert_eq!(lines(&e.read("badguys")), ["192.0.2.9"]);
}

#[test]
fn networks_wider_than_8_or_32_need_force() {
    let e = Env::new();
    e.write("auth.log", "");
    for wide in ["0.0.0.0/0", "0.0.0.0/1", "10.0.0.0/7", "::/0", "2001:d00::/24"] {
        cmd(&e, &["ban", wide]).code(2).stderr_has("is wider than").stderr_has("--force");
    }
    assert!(!e.out().exists());
    cmd(&e, &["ban", "10.0.0.0/8"]).ok();
    cmd(&e, &["ban", "2001:db8::/32"]).ok();
    cmd(&e, &["ban", "64.0.0.0/3", "--force"]).ok();
    let listed = ["10.0.0.0/8", "64.0.0.0/3", "2001:db8::/32"];
    assert_eq!(lines(&e.read("badguys")), listed);
    // Lines an admin adds to the list file go through the same check.
    e.append("badguys", "0.0.0.0/0\n::/0\n198.51.100.0/24\n");
    e.sync(&[]).ok().stderr_has("0.0.0.0/0 is wider than /8").stderr_has("::/0 is wider than /32");
    assert_eq!(lines(&e.read("badguys")), ["10.0.0.0/8", "64.0.0.0/3", "198.51.100.0/24", "2001:db8::/32"]);
    // The forced ban stays, and so does a network the allowlist carves
    // into wide pieces.
    cmd(&e, &["ban", "0.0.0.0/1", "--force"]).ok();
    let out = e.read("badguys");
    assert!(out.lines().any(|l| l == "32.0.0.0/3") && !out.contains("127.0.0.0/8"), "{out}");
    let r = e.sync(&[]);
    assert!(!r.ok().stderr.contains("wider than"), "{}", r.stderr);
    assert_eq!(e.read("badguys"), out);
    // reload loads no wide line that is not a forced ban.
    e.append("badguys", "128.0.0.0/1\n");
    cmd(&e, &["reload"]).ok().stderr_has("128.0.0.0/1 is wider than /8: it would block");
    assert_eq!(e.read("badguys"), out);
}

#[test]
fn a_changed_byte_in_the_state_is_noticed_and_rebuilt() {
    let e = Env::new();
    e.write("auth.log", sshd(1, "Invalid user x from 192.0.2.1 port 1"));
    e.sync(&[]).ok();
    cmd(&e, &["ban", "203.0.113.0/24"]).ok();
    // One flipped bit turns the manual ban into one of a network no log
    // and no admin named.
    let st = e.read("state");
    assert!(st.lines().last().unwrap().contains("\tfnv="), "{st}");
    std::fs::write(e.path("state"), st.replace("manual\t203.0.113.0/24", "manual\t203.0.112.0/24")).unwrap();
    e.append("auth.log", &sshd(2, "Invalid user y from 192.0.2.2 port 1"));
    e.sync(&[]).ok().stderr_has("is unusable (checksum mismatch: damaged)").stderr_has("rebuilding from the logs");
    assert_eq!(lines(&e.read("badguys")), ["192.0.2.1", "192.0.2.2", "203.0.113.0/24"]);
    assert!(e.path("state.corrupt").exists());
}

#[test]
fn a_state_file_without_checksum_is_read_and_rewritten_with_one() {
    let e = Env::new();
    e.write("auth.log", sshd(1, "Invalid user x from 192.0.2.1 port 1"));
    e.sync(&[]).ok();
    cmd(&e, &["ban", "203.0.113.0/24"]).ok();
    let st = e.read("state");
    let (old, _) = st.rsplit_once("\tfnv=").unwrap();
    std::fs::write(e.path("state"), format!("{old}\n")).unwrap();
    e.append("auth.log", &sshd(2, "Invalid user y from 192.0.2.2 port 1"));
    let r = e.sync(&[]);
    r.ok();
    assert!(!r.stderr.contains("unusable"), "{}", r.stderr);
    assert_eq!(lines(&e.read("badguys")), ["192.0.2.1", "192.0.2.2", "203.0.113.0/24"]);
    assert!(e.read("state").lines().last().unwrap().contains("\tfnv="));
}

#[test]
fn a_state_file_badguys_cannot_trust_is_refused() {
    use std::os::unix::fs::PermissionsExt;
    let e = Env::new();
    e.write("auth.log", sshd(1, "Invalid user x from 192.0.2.1 port 1"));
    e.sync(&[]).ok();
    let state = e.path("state");
    let list = e.read("badguys");
    // Others can write it: they could add bans.
    std::fs::set_permissions(&state, std::fs::Permissions::from_mode(0o622)).unwrap();
    e.sync(&[]).code(4).stderr_has("state: is writable by group or others (mode 0622)");
    cmd(&e, &["list"]).code(4).stderr_has("writable by group or others");
    std::fs::set_permissions(&state, std::fs::Permissions::from_mode(0o600)).unwrap();
    // A symlink, to a file or to nothing: never read, never replaced.
    let real = e.path("real-state");
    std::fs::rename(&state, &real).unwrap();
    std::os::unix::fs::symlink(&real, &state).unwrap();
    let before = std::fs::read(&real).unwrap();
    e.sync(&[]).code(4).stderr_has("state: is a symbolic link");
    assert_eq!(std::fs::read(&real).unwrap(), before);
    std::fs::remove_file(&real).unwrap();
    e.sync(&[]).code(4).stderr_has("state: is a symbolic link");
    assert!(!real.exists(), "created through the symlink");
    std::fs::remove_file(&state).unwrap();
    std::fs::write(&state, before).unwrap();
    std::fs::set_permissions(&state, std::fs::Permissions::from_mode(0o600)).unwrap();
    if is_root() {
        std::os::unix::fs::chown(&state, Some(65534), None).unwrap();
        e.sync(&[]).code(4).stderr_has("state: is owned by uid 65534, neither root nor the running user");
    }
    assert_eq!(e.read("badguys"), list, "the list is left alone");
}

#[test]
fn a_line_added_by_hand_for_an_address_with_a_record_is_kept() {
    let e = Env::new();
    // 192.0.2.1 is listed; 192.0.2.2 attacked once, below the threshold;
    // 192.0.2.3 was listed, then unbanned.
    e.write(
        "auth.log",
        sshd(1, "Invalid user a from 192.0.2.1 port 1")
            + &sshd(2, "Invalid user b from 192.0.2.1 port 1")
            + &sshd(3, "Invalid user c from 192.0.2.2 port 1")
            + &sshd(4, "Invalid user d from 192.0.2.3 port 1")
            + &sshd(5, "Invalid user e from 192.0.2.3 port 1"),
    );
    e.sync(&["--threshold", "2"]).ok();
    assert_eq!(lines(&e.read("badguys")), ["192.0.2.1", "192.0.2.3"]);
    cmd(&e, &["unban", "192.0.2.3"]).ok();
    assert_eq!(lines(&e.read("badguys")), ["192.0.2.1"]);
    // The admin adds both by hand: neither is a line badguys published.
    e.append("badguys", "192.0.2.2\n192.0.2.3\n");
    e.sync(&["--threshold", "2"]).ok().stderr_has("kept 2 entries");
    assert_eq!(lines(&e.read("badguys")), ["192.0.2.1", "192.0.2.2", "192.0.2.3"]);
    let st = e.read("state");
    assert!(st.contains("manual\t192.0.2.2/32") || st.contains("manual\t192.0.2.2\t"), "{st}");
    // badguys' own line is still badguys': no manual ban for it.
    assert!(!st.lines().any(|l| l.starts_with("manual\t192.0.2.1")), "{st}");
    // The next run sees the same thing (the set it published is recorded).
    e.sync(&["--threshold", "2"]).ok();
    assert_eq!(lines(&e.read("badguys")), ["192.0.2.1", "192.0.2.2", "192.0.2.3"]);
}

#[test]
fn lines_added_by_hand_out_of_order_are_told_from_badguys_own() {
    let e = Env::new();
    e.write(
        "auth.log",
        sshd(1, "Invalid user a from 192.0.2.1 port 1")
            + &sshd(2, "Invalid user b from 192.0.2.1 port 1")
            + &sshd(3, "Invalid user c from 192.0.2.5 port 1")
            + &sshd(4, "Invalid user d from 192.0.2.5 port 1"),
    );
    e.sync(&["--threshold", "2"]).ok();
    assert_eq!(lines(&e.read("badguys")), ["192.0.2.1", "192.0.2.5"]);
    // After badguys' sorted lines: one in order, one out of order, and a
    // copy of one of badguys' own out of order; one more before them all.
    std::fs::write(e.out(), "192.0.0.9\n192.0.2.1\n192.0.2.5\n198.51.100.9\n192.0.2.3\n192.0.2.5\n").unwrap();
    e.sync(&["--threshold", "2"]).ok().stderr_has("kept 3 entries");
    assert_eq!(lines(&e.read("badguys")), ["192.0.0.9", "192.0.2.1", "192.0.2.3", "192.0.2.5", "198.51.100.9"]);
    let st = e.read("state");
    let manual: Vec<&str> =
        st.lines().filter_map(|l| l.strip_prefix("manual\t")).map(|l| l.split('\t').next().unwrap()).collect();
    assert_eq!(manual, ["192.0.0.9", "192.0.2.3", "198.51.100.9"], "{st}");
}
