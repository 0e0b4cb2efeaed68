//! Repeat offenders (`--expire-factor`, `--expire-max`, `--decay`): the
//! n-th ban lasts longer, the count survives restarts (every run here is a
//! new process reading the state file), decays when quiet, and `unban`
//! resets it. Time moves with BADGUYS_NOW.

use crate::harness::{lines, run, Env, Run};

/// `badguys ARGS…` at `now` (UTC), with the config file `conf` and the
/// usual files; `sync` gets the harness's sync defaults.
fn at(e: &Env, now: &str, args: &[&str]) -> Run {
    let conf = e.path("conf").display().to_string();
    let mut all: Vec<String> = if args[0] == "sync" {
        e.sync_args(&args[1..])
    } else {
        let (out, state) = (e.out().display().to_string(), e.path("state").display().to_string());
        let mut a: Vec<String> = args.iter().map(|s| s.to_string()).collect();
        a.extend(["--out".into(), out, "--state".into(), state, "--firewall".into(), "none".into()]);
        a.extend(["--allow-file".into(), "/dev/null".into()]);
        a
    };
    all.extend(["--config".into(), conf]);
    let mut c = e.cmd(all);
    c.env("BADGUYS_NOW", now).env("TZ", "UTC");
    run(c)
}

/// An attack by 192.0.2.1 at `hhmm` on 1 January (day `d`).
fn attack(e: &Env, d: u32, hhmm: &str) {
    e.append("auth.log", &format!("Jan {d:>2} {hhmm}:00 gw sshd[1]: Invalid user a from 192.0.2.1 port 1\n"));
}

fn listed(e: &Env) -> Vec<String> {
    lines(&e.read("badguys")).iter().map(|s| s.to_string()).collect()
}

#[test]
fn each_ban_lasts_factor_times_longer_up_to_the_cap_and_across_restarts() {
    let e = Env::new();
    e.write("conf", "expire = 1h\nexpire-factor = 4\nexpire-max = 10h\n");
    let x = ["192.0.2.1".to_string()];
    // 1st ban: 1h.
    attack(&e, 1, "00:00");
    at(&e, "2025-01-01T00:10:00Z", &["sync"]).ok();
    assert_eq!(listed(&e), x);
    at(&e, "2025-01-01T00:10:00Z", &["explain", "192.0.2.1"]).ok().stdout_has("1st ban: lasts 1h\n");
    at(&e, "2025-01-01T01:01:00Z", &["sync"]).ok().stderr_has("1 expired");
    assert!(listed(&e).is_empty());
    // 2nd ban: 4h, so still listed 3h59 later.
    attack(&e, 1, "02:00");
    at(&e, "2025-01-01T02:01:00Z", &["sync"]).ok();
    at(&e, "2025-01-01T02:01:00Z", &["explain", "192.0.2.1"])
        .ok()
        .stdout_has("2nd ban: lasts 4h = 1h × 4¹\n")
        .stdout_has("leaves the list at 2025-01-01T06:00:00Z");
    at(&e, "2025-01-01T05:59:00Z", &["sync"]).ok();
    assert_eq!(listed(&e), x);
    at(&e, "2025-01-01T06:01:00Z", &["sync"]).ok().stderr_has("1 expired");
    assert!(listed(&e).is_empty());
    assert!(e.read("state").contains("\tbans=2\tquiet="), "the count is in the state file");
    // It is not listed now: explain tells its past and its next ban.
    at(&e, "2025-01-01T06:30:00Z", &["explain", "192.0.2.1"])
        .ok()
        .stdout_has("banned 2 times by the rules, the last ending 2025-01-01T06:00:00Z; a next ban would be the 3rd ban: lasts 10h = 1h × 4², capped at 10h");
    // 3rd ban: 16h, capped at 10h.
    attack(&e, 1, "07:00");
    at(&e, "2025-01-01T07:01:00Z", &["sync"]).ok();
    at(&e, "2025-01-01T07:01:00Z", &["explain", "192.0.2.1"])
        .ok()
        .stdout_has("3rd ban: lasts 10h = 1h × 4², capped at 10h\n");
    let json = at(&e, "2025-01-01T07:01:00Z", &["list", "--json"]);
    json.ok().stdout_has("\"expires\":\"2025-01-01T17:00:00Z\",\"ban\":3");
    at(&e, "2025-01-01T16:59:00Z", &["sync"]).ok();
    assert_eq!(listed(&e), x);
    at(&e, "2025-01-01T17:01:00Z", &["sync"]).ok().stderr_has("1 expired");
}

#[test]
fn the_count_halves_per_quiet_decay_and_unban_resets_it() {
    let e = Env::new();
    // --decay defaults to --expire-max: one day here.
    e.write("conf", "expire = 1h\nexpire-factor = 2\nexpire-max = 1d\n");
    // Each ban expires (a sync takes it off) before the address comes back.
    for (h, now, gone) in [("00:00", "00:01", "01:01"), ("02:00", "02:01", "04:01")] {
        attack(&e, 1, h);
        at(&e, &format!("2025-01-01T{now}:00Z"), &["sync"]).ok();
        at(&e, &format!("2025-01-01T{gone}:00Z"), &["sync"]).ok().stderr_has("1 expired");
    }
    attack(&e, 1, "05:00");
    at(&e, "2025-01-01T05:01:00Z", &["sync"]).ok();
    at(&e, "2025-01-01T05:01:00Z", &["explain", "192.0.2.1"]).ok().stdout_has("3rd ban: lasts 4h = 1h × 2²");
    at(&e, "2025-01-01T09:01:00Z", &["sync"]).ok().stderr_has("1 expired");
    // Quiet from 09:00 on the 1st to 10:00 on the 3rd: two full days, 3 -> 0.
    at(&e, "2025-01-03T10:00:00Z", &["explain", "192.0.2.1"])
        .ok()
        .stdout_has("banned 3 times by the rules, the last ending 2025-01-01T09:00:00Z, 0 after the quiet time since; a next ban would be the 1st ban: lasts 1h");
    attack(&e, 3, "10:00");
    at(&e, "2025-01-03T10:01:00Z", &["sync"]).ok();
    at(&e, "2025-01-03T10:01:00Z", &["explain", "192.0.2.1"]).ok().stdout_has("1st ban: lasts 1h\n");
    // A full quiet day halves the count again: 1 -> 0.
    at(&e, "2025-01-03T11:01:00Z", &["sync"]).ok().stderr_has("1 expired");
    attack(&e, 4, "12:00");
    at(&e, "2025-01-04T12:01:00Z", &["sync"]).ok();
    at(&e, "2025-01-04T12:01:00Z", &["explain", "192.0.2.1"]).ok().stdout_has("1st ban: lasts 1h\n");
    // An unban by the admin resets the count: the next ban is a 1st.
    attack(&e, 4, "12:10");
    at(&e, "2025-01-04T12:11:00Z", &["sync"]).ok();
    at(&e, "2025-01-04T14:00:00Z", &["sync"]).ok().stderr_has("1 expired");
    attack(&e, 4, "14:10");
    at(&e, "2025-01-04T14:11:00Z", &["sync"]).ok();
    at(&e, "2025-01-04T14:11:00Z", &["explain", "192.0.2.1"]).ok().stdout_has("2nd ban: lasts 2h");
    at(&e, "2025-01-04T14:12:00Z", &["unban", "192.0.2.1"]).ok();
    assert!(!e.read("state").contains("\tbans="), "unban forgets the count");
    attack(&e, 4, "14:20");
    at(&e, "2025-01-04T14:21:00Z", &["sync"]).ok();
    at(&e, "2025-01-04T14:21:00Z", &["explain", "192.0.2.1"]).ok().stdout_has("1st ban: lasts 1h\n");
}

#[test]
fn factor_and_cap_are_checked_and_change_the_policy_hash() {
    let e = Env::new();
    e.write("conf", "");
    attack(&e, 1, "00:00");
    at(&e, "2025-01-01T00:01:00Z", &["sync", "--expire-factor", "4"]).code(2).stderr_has("need --expire");
    at(&e, "2025-01-01T00:01:00Z", &["sync", "--expire", "2h", "--expire-max", "1h"])
        .code(2)
        .stderr_has("shorter than --expire");
    at(&e, "2025-01-01T00:01:00Z", &["sync", "--expire", "1h", "--expire-factor", "0"]).code(2);
    at(&e, "2025-01-01T00:01:00Z", &["sync", "--expire", "1h"]).ok();
    let meta = |e: &Env| e.read("state").lines().find(|l| l.starts_with("meta")).unwrap().to_string();
    let before = meta(&e);
    at(&e, "2025-01-01T00:02:00Z", &["sync", "--expire", "1h", "--expire-factor", "4"]).ok();
    let policy = |m: &str| m.split('\t').find(|f| f.starts_with("policy=")).unwrap().to_string();
    assert_ne!(policy(&before), policy(&meta(&e)));
}
