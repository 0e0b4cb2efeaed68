//! `--subnet-after K`: K listed addresses in one IPv4 /24 (IPv6 /48) list
//! the network instead, minus the allowlist and the addresses that logged
//! in; the network leaves when fewer than K members are listed.

use crate::harness::{lines, run, sshd, Env, Run};

fn attack(a: &str) -> String {
    sshd(1, &format!("Invalid user admin from {a} port 5000"))
}

fn sync_at(e: &Env, now: &str, extra: &[&str]) -> Run {
    let mut c = e.cmd(e.sync_args(extra));
    c.env("BADGUYS_NOW", now).env("TZ", "UTC");
    run(c)
}

#[test]
fn k_members_list_their_24_with_the_allowlist_and_logins_carved_out() {
    let e = Env::new();
    let mut log = [attack("192.0.2.1"), attack("192.0.2.2"), attack("198.51.100.9")].concat();
    log.push_str(&sshd(2, "Accepted publickey for alice from 192.0.2.77 port 5000 ssh2: ED25519 SHA256:x"));
    e.write("auth.log", &log);
    let flags = ["--subnet-after", "3", "--allow", "192.0.2.128/25"];
    e.sync(&flags).ok();
    assert_eq!(lines(&e.read("badguys")), ["192.0.2.1", "192.0.2.2", "198.51.100.9"], "K-1 members");
    e.append("auth.log", &attack("192.0.2.3"));
    e.sync(&flags).ok();
    // 192.0.2.0/24 minus 192.0.2.77 (alice) and minus 192.0.2.128/25.
    assert_eq!(
        lines(&e.read("badguys")),
        [
            "192.0.2.0/26",
            "192.0.2.64/29",
            "192.0.2.72/30",
            "192.0.2.76",
            "192.0.2.78/31",
            "192.0.2.80/28",
            "192.0.2.96/27",
            "198.51.100.9"
        ]
    );
    let r = e.command(&["explain", "192.0.2.50", "--subnet-after", "3"]);
    r.ok()
        .stdout_has("covered by the escalated network 192.0.2.0/24: 3 of its addresses are listed (--subnet-after 3)");
    let r = e.command(&["explain", "192.0.2.77", "--subnet-after", "3"]);
    r.ok().stdout_has("but 192.0.2.77 is carved out of it: it logged in successfully");
    e.write("conf", "subnet-after = 3\nallow = 192.0.2.128/25\n");
    let conf = e.path("conf").display().to_string();
    let r = e.command(&["list", "--json", "--config", &conf]);
    r.ok()
        .stdout_has(r#""addr":"192.0.2.0/24","host":"#)
        .stdout_has(r#""source":"subnet","reason":"3 listed addresses (--subnet-after)"}"#);
    // Without the option the addresses are listed one by one.
    e.sync(&["--allow", "192.0.2.128/25"]).ok();
    assert_eq!(lines(&e.read("badguys")), ["192.0.2.1", "192.0.2.2", "192.0.2.3", "198.51.100.9"]);
}

#[test]
fn the_network_leaves_when_members_expire() {
    let e = Env::new();
    e.write(
        "auth.log",
        "Jan  1 00:00:00 gw sshd[1]: Invalid user a from 203.0.113.1 port 1\n\
         Jan  1 00:00:00 gw sshd[1]: Invalid user a from 203.0.113.2 port 1\n\
         Jan  1 02:00:00 gw sshd[1]: Invalid user a from 203.0.113.3 port 1\n",
    );
    let flags = ["--subnet-after", "2", "--expire", "1h"];
    sync_at(&e, "2025-01-01T02:01:00Z", &flags).ok().stderr_has("2 expired");
    assert_eq!(lines(&e.read("badguys")), ["203.0.113.3"]);
    e.append("auth.log", "Jan  1 02:30:00 gw sshd[1]: Invalid user a from 203.0.113.200 port 1\n");
    sync_at(&e, "2025-01-01T02:31:00Z", &flags).ok();
    assert_eq!(lines(&e.read("badguys")), ["203.0.113.0/24"]);
    sync_at(&e, "2025-01-01T03:01:00Z", &flags).ok();
    assert_eq!(lines(&e.read("badguys")), ["203.0.113.200"], "one member left: the network left");
}

#[test]
fn ipv6_64_records_escalate_to_their_48() {
    let e = Env::new();
    let log = [attack("2001:db8:1:2::7"), attack("2001:db8:1:3::7"), attack("2001:db8:2::1")].concat();
    e.write("auth.log", log);
    e.sync(&["--ipv6-prefix", "64", "--subnet-after", "2"]).ok();
    assert_eq!(lines(&e.read("badguys")), ["2001:db8:1::/48", "2001:db8:2::/64"]);
    let r = e.command(&["explain", "2001:db8:1:99::1", "--ipv6-prefix", "64", "--subnet-after", "2"]);
    r.ok().stdout_has("covered by the escalated network 2001:db8:1::/48: 2 of its addresses are listed");
    e.sync(&["--ipv6-prefix", "64", "--subnet-after", "2", "--subnet-v6", "40"]).ok();
    assert_eq!(lines(&e.read("badguys")), ["2001:db8::/40"]);
}

#[test]
fn sizes_wider_than_8_or_32_and_k_below_2_are_refused() {
    let e = Env::new();
    e.write("auth.log", attack("192.0.2.1"));
    e.sync(&["--subnet-after", "2", "--subnet-v4", "7"]).code(2).stderr_has("between 8 and 31");
    e.sync(&["--subnet-after", "2", "--subnet-v6", "31"]).code(2).stderr_has("between 32 and 127");
    e.sync(&["--subnet-after", "1"]).code(2).stderr_has("between 2 and 65536");
    e.sync(&["--subnet-v4", "16"]).code(2).stderr_has("need --subnet-after");
    e.sync(&["--ipv6-prefix", "48", "--subnet-after", "2"]).code(2).stderr_has("shorter than --ipv6-prefix");
    e.write("conf", "subnet-after = 2\nsubnet-v4 = 7\n");
    let conf = e.path("conf").display().to_string();
    e.sync(&["--config", &conf]).code(2).stderr_has("subnet-v4:");
}

#[test]
fn watch_lists_the_network_as_the_kth_member_comes() {
    use crate::harness::{wait_for, Daemon};
    let e = Env::new();
    e.write("auth.log", attack("192.0.2.1"));
    let mut c = e.cmd(e.watch_args(&["--subnet-after", "2"]));
    c.arg("-v");
    let mut d = Daemon::spawn(c, e.path("watch.err"));
    wait_for(10, "the first sync", || e.read("badguys") == "192.0.2.1\n");
    e.append("auth.log", &attack("192.0.2.2"));
    wait_for(5, "the network in place of its members", || e.read("badguys") == "192.0.2.0/24\n");
    assert_eq!(d.stop(), 0, "{}", d.log());
}
