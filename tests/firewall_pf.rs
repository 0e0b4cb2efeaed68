//! pf through a recording `pfctl` on PATH: pf cannot run on Linux, so the
//! test checks the exact calls pfctl(8) documents, one per change.

use std::path::PathBuf;

use crate::harness::*;

/// A fake pfctl that appends its arguments (one call per line, tab
/// separated) to `pfctl.calls`, copies the table file it is given to
/// `pfctl.file`, and exits with the status in `pfctl.exit` (default 0).
fn fake_pfctl(e: &Env) -> PathBuf {
    let bin = e.path("bin");
    std::fs::create_dir_all(&bin).unwrap();
    let script = format!(
        r#"#!/bin/sh
d={dir}
(IFS="$(printf '\t')"; printf '%s\n' "$*") >> "$d/pfctl.calls"
if [ "$5" = "-f" ] && [ "$6" = "-" ]; then cat >> "$d/pfctl.stdin"; elif [ "$5" = "-f" ]; then cp "$6" "$d/pfctl.file"; fi
code=$(cat "$d/pfctl.exit" 2>/dev/null || echo 0)
[ "$code" = 0 ] || echo "pfctl: Table does not exist." >&2
exit "$code"
"#,
        dir = e.dir.path().display()
    );
    let p = bin.join("pfctl");
    std::fs::write(&p, script).unwrap();
    std::fs::set_permissions(&p, std::os::unix::fs::PermissionsExt::from_mode(0o755)).unwrap();
    bin
}

/// `badguys sync --firewall pf ARGS` (or `badguys reload --firewall pf
/// ARGS` when ARGS starts with `reload`) with the fake pfctl first on PATH.
fn with_path(e: &Env, bin: &std::path::Path, args: &[&str]) -> Run {
    let path = format!("{}:{}", bin.display(), std::env::var("PATH").unwrap_or_default());
    let all: Vec<String> = if args.first() == Some(&"reload") {
        let (out, state) = (e.out().display().to_string(), e.path("state").display().to_string());
        let all = ["reload", "--out", &out, "--state", &state, "--firewall", "pf"];
        all.iter().chain(&args[1..]).map(|s| s.to_string()).collect()
    } else {
        let mut a = vec!["--firewall", "pf"];
        a.extend_from_slice(args);
        e.sync_args(&a)
    };
    let mut c = e.cmd(all);
    c.env("PATH", path);
    run(c)
}

#[test]
fn one_replace_per_change_exactly_as_pfctl_documents() {
    let e = Env::new();
    let bin = fake_pfctl(&e);
    e.write(
        "auth.log",
        sshd(1, "Invalid user a from 192.0.2.1 port 1") + &sshd(2, "Invalid user a from 2001:db8::1 port 1"),
    );
    with_path(&e, &bin, &[]).ok().stderr_has("pf reloaded");
    let out = e.out();
    // Both entries are new: the replace, then their states are killed.
    assert_eq!(
        e.read("pfctl.calls"),
        format!("-t\tbadhosts\t-T\treplace\t-f\t{}\n-k\t192.0.2.1\n-k\t2001:db8::1\n", out.display())
    );
    assert_eq!(e.read("pfctl.file"), "192.0.2.1\n2001:db8::1\n", "the file is complete before pfctl reads it");

    // Unchanged: no call at all.
    with_path(&e, &bin, &[]).ok();
    assert_eq!(e.read("pfctl.calls").lines().count(), 3);

    // Another table name; --reload forces a call without a change, and
    // kills nothing: nothing is new.
    with_path(&e, &bin, &["--table", "ssh_abusers", "--reload"]).ok();
    assert_eq!(
        e.read("pfctl.calls").lines().skip(3).collect::<Vec<_>>(),
        [format!("-t\tssh_abusers\t-T\treplace\t-f\t{}", out.display())]
    );

    with_path(&e, &bin, &["reload"]).ok().stderr_has("2 entries loaded into pf");
    assert_eq!(e.read("pfctl.calls").lines().count(), 5);
}

/// A cron `sync` that lists a new address kills its states, as `watch`
/// does: an open connection of a newly listed host must not survive. Only
/// the new entries: the states of the old ones were killed when they were
/// listed.
#[test]
fn sync_kills_the_states_of_new_entries_only() {
    let e = Env::new();
    let bin = fake_pfctl(&e);
    e.write(
        "auth.log",
        sshd(1, "Invalid user a from 192.0.2.1 port 1") + &sshd(2, "Invalid user a from 2001:db8::1 port 1"),
    );
    with_path(&e, &bin, &[]).ok();
    let before = e.read("pfctl.calls").lines().count();
    e.append("auth.log", &sshd(3, "Invalid user b from 198.51.100.7 port 1"));
    e.append("auth.log", &sshd(4, "Invalid user c from 192.0.2.1 port 1"));
    with_path(&e, &bin, &[]).ok().stderr_has("pf reloaded");
    let calls: Vec<String> = e.read("pfctl.calls").lines().skip(before).map(String::from).collect();
    assert_eq!(calls, [format!("-t\tbadhosts\t-T\treplace\t-f\t{}", e.out().display()), "-k\t198.51.100.7".into()]);

    // A network entered by hand: pfctl -k takes it with its prefix length.
    let path = format!("{}:{}", bin.display(), std::env::var("PATH").unwrap_or_default());
    let (out, state) = (e.out().display().to_string(), e.path("state").display().to_string());
    let mut c = e.cmd(["ban", "203.0.113.0/24", "--out", &out, "--state", &state, "--firewall", "pf"]);
    c.env("PATH", path);
    run(c).ok();
    let calls: Vec<String> = e.read("pfctl.calls").lines().skip(before + 2).map(String::from).collect();
    assert_eq!(calls, [format!("-t\tbadhosts\t-T\treplace\t-f\t{out}"), "-k\t203.0.113.0/24".into()]);
}

#[test]
fn failed_reload_keeps_the_file_and_exits_4() {
    let e = Env::new();
    let bin = fake_pfctl(&e);
    e.write("pfctl.exit", "1");
    e.write("auth.log", sshd(1, "Invalid user a from 192.0.2.1 port 1"));
    with_path(&e, &bin, &[])
        .code(4)
        .stderr_has("pfctl -t badhosts -T replace -f")
        .stderr_has("exit status: 1")
        .stderr_has("pfctl: Table does not exist.");
    assert_eq!(e.read("badguys"), "192.0.2.1\n");
}

#[test]
fn missing_pfctl_is_a_firewall_error() {
    let e = Env::new();
    e.write("auth.log", sshd(1, "Invalid user a from 192.0.2.1 port 1"));
    let empty = e.path("empty-bin");
    std::fs::create_dir_all(&empty).unwrap();
    let mut c = e.cmd(e.sync_args(&["--firewall", "pf"]));
    c.env("PATH", &empty);
    run(c).code(4).stderr_has("cannot run");
}

#[test]
fn watch_adds_batches_and_kills_states() {
    let e = Env::new();
    let bin = fake_pfctl(&e);
    e.write("auth.log", "");
    let path = format!("{}:{}", bin.display(), std::env::var("PATH").unwrap_or_default());
    let args = e.watch_args(&["--firewall", "pf"]);
    let mut c = e.cmd(args);
    c.env("PATH", path);
    let mut d = Daemon::spawn(c, e.path("watch.err"));
    let out = e.out();
    let replace = format!("-t\tbadhosts\t-T\treplace\t-f\t{}", out.display());
    wait_for(10, "the first full replace", || e.read("pfctl.calls").lines().any(|l| l == replace));
    std::fs::write(
        e.log(),
        sshd(1, "Invalid user a from 192.0.2.1 port 1") + &sshd(2, "Invalid user a from 2001:db8::2 port 1"),
    )
    .unwrap();
    wait_for(5, "the states to be killed", || e.read("pfctl.calls").contains("-k\t2001:db8::2"));
    assert_eq!(d.stop(), 0, "{}", d.log());
    let calls: Vec<String> = e.read("pfctl.calls").lines().map(String::from).collect();
    assert_eq!(
        calls,
        [replace.as_str(), "-t\tbadhosts\t-T\tadd\t-f\t-", "-k\t192.0.2.1", "-k\t2001:db8::2"],
        "{calls:?}"
    );
    assert_eq!(e.read("pfctl.stdin"), "192.0.2.1\n2001:db8::2\n");
}

#[test]
fn reload_applies_the_allowlist() {
    let e = Env::new();
    let bin = fake_pfctl(&e);
    // An admin allowlists their own address, which an older list holds.
    e.write("badguys", "192.0.2.1\n198.51.100.0/24\n127.0.0.1\n203.0.113.5\n");
    e.write("allow", "192.0.2.1\n198.51.100.7\n");
    let allow = e.path("allow");
    with_path(&e, &bin, &["reload", "--allow-file", allow.to_str().unwrap()])
        .ok()
        .stderr_has("overlaps allowed 192.0.2.1")
        .stderr_has("overlaps allowed 127.0.0.0/8");
    let loaded = e.read("pfctl.file");
    for spared in ["192.0.2.1", "127.0.0.1", "198.51.100.0/24", "198.51.100.7\n"] {
        assert!(!loaded.lines().any(|l| l == spared.trim()), "{spared} reached pf:\n{loaded}");
    }
    assert!(loaded.lines().any(|l| l == "203.0.113.5") && loaded.lines().any(|l| l == "198.51.100.128/25"), "{loaded}");
    assert_eq!(loaded.lines().filter(|l| l.starts_with("198.51.100.")).count(), 8, "{loaded}");
    assert_eq!(e.read("badguys"), loaded, "pf reads the file: it holds what was loaded");
}

#[test]
fn a_failed_reload_is_retried_by_the_next_sync() {
    let e = Env::new();
    let bin = fake_pfctl(&e);
    e.write("auth.log", sshd(1, "Invalid user a from 192.0.2.1 port 1"));
    e.write("pfctl.exit", "1");
    with_path(&e, &bin, &[]).code(4);
    assert_eq!(e.read("badguys"), "192.0.2.1\n");
    std::fs::remove_file(e.path("pfctl.exit")).unwrap();
    // The list is unchanged, but pf never got it: this sync reloads.
    with_path(&e, &bin, &[]).ok().stderr_has("pf reloaded");
    assert_eq!(e.read("pfctl.calls").lines().count(), 2);
    assert_eq!(e.read("pfctl.file"), "192.0.2.1\n");
    // And then there is nothing to do.
    with_path(&e, &bin, &[]).ok().stderr_has("unchanged");
    assert_eq!(e.read("pfctl.calls").lines().count(), 2);
    // A ban by hand whose reload failed is retried the same way.
    e.write("pfctl.exit", "1");
    let mut c = e.cmd(["ban", "203.0.113.9", "--firewall", "pf", "--allow-file", "/dev/null"]);
    c.args(["--out", e.out().to_str().unwrap(), "--state", e.path("state").to_str().unwrap()]);
    c.env("PATH", format!("{}:{}", bin.display(), std::env::var("PATH").unwrap_or_default()));
    run(c).code(4);
    std::fs::remove_file(e.path("pfctl.exit")).unwrap();
    with_path(&e, &bin, &[]).ok().stderr_has("pf reloaded");
    assert_eq!(e.read("pfctl.file"), "192.0.2.1\n203.0.113.9\n");
}

#[test]
fn a_ban_whose_watch_step_failed_is_published_by_the_next_sync() {
    let e = Env::new();
    let bin = fake_pfctl(&e);
    e.write("auth.log", "");
    let path = format!("{}:{}", bin.display(), std::env::var("PATH").unwrap_or_default());
    let args = e.watch_args(&["--firewall", "pf"]);
    let mut c = e.cmd(args);
    c.env("PATH", &path);
    let mut d = Daemon::spawn(c, e.path("watch.err"));
    wait_for(10, "the first full replace", || e.read("pfctl.calls").contains("replace"));
    // pf refuses the batch (and the full replaces watch retries with).
    e.write("pfctl.exit", "1");
    e.append("auth.log", &sshd(1, "Invalid user a from 192.0.2.1 port 1"));
    wait_for(10, "the failed add", || d.log().contains("Table does not exist"));
    assert_eq!(d.stop(), 0, "{}", d.log());
    std::fs::remove_file(e.path("pfctl.exit")).unwrap();
    let calls = e.read("pfctl.calls").lines().count();
    // Counted and decided, never in pf: the next sync must not say "unchanged".
    with_path(&e, &bin, &[]).ok().stderr_has("pf reloaded");
    assert_eq!(e.read("pfctl.calls").lines().count(), calls + 1);
    assert_eq!(e.read("pfctl.file"), "192.0.2.1\n");
}
