//! `--ipv6-prefix`: IPv6 attackers counted, recorded and listed per
//! network (default /64); 128 restores per-address records.

use crate::harness::{sshd, Env};

fn flood(env: &Env, n: u32) {
    let mut log = String::new();
    for i in 0..n {
        log.push_str(&sshd(100 + i, &format!("Invalid user admin from 2001:db8:1:2::{:x} port 5000", i + 1)));
    }
    // Another /64, and an IPv4 address, stay on their own.
    log.push_str(&sshd(9, "Invalid user admin from 2001:db8:1:3::1 port 5000"));
    log.push_str(&sshd(9, "Invalid user admin from 192.0.2.7 port 5000"));
    env.write("auth.log", log);
}

fn records(env: &Env) -> Vec<String> {
    let r = env.command(&["list", "--all"]);
    r.ok();
    r.stdout.lines().skip(1).map(|l| l.split_whitespace().next().unwrap().to_string()).collect()
}

#[test]
fn one_record_and_one_entry_per_64() {
    let env = Env::new();
    flood(&env, 1000);
    env.sync(&["--ipv6-prefix", "64"]).ok();
    assert_eq!(
        env.read("badguys").lines().collect::<Vec<_>>(),
        ["192.0.2.7", "2001:db8:1:2::/64", "2001:db8:1:3::/64"]
    );
    assert_eq!(records(&env), ["192.0.2.7", "2001:db8:1:2::/64", "2001:db8:1:3::/64"]);
    let r = env.command(&["explain", "2001:db8:1:2::77"]);
    assert!(r.stdout.contains("invalid-user"), "{}", r.stdout);
}

#[test]
fn prefix_128_counts_each_address() {
    let env = Env::new();
    flood(&env, 1000);
    env.sync(&["--ipv6-prefix", "128"]).ok();
    assert_eq!(env.read("badguys").lines().count(), 1002);
    assert!(env.read("badguys").lines().any(|l| l == "2001:db8:1:2::3e8"));
}

#[test]
fn a_login_spares_its_whole_64_and_the_allowlist_carves() {
    let env = Env::new();
    let log = [
        sshd(1, "Invalid user admin from 2001:db8:1:2::1 port 5000"),
        sshd(2, "Accepted publickey for alice from 2001:db8:1:2::99 port 5000 ssh2: ED25519 SHA256:x"),
        sshd(3, "Invalid user admin from 2001:db8:1:4::1 port 5000"),
    ]
    .concat();
    env.write("auth.log", log);
    env.sync(&["--ipv6-prefix", "64", "--allow", "2001:db8:1:4::8/128"]).ok();
    let list = env.read("badguys");
    assert!(!list.contains("2001:db8:1:2::"), "{list}");
    assert!(list.contains("2001:db8:1:4::"), "{list}");
    assert!(!list.lines().any(|l| l == "2001:db8:1:4::/64"), "carved: {list}");
}
