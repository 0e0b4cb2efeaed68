//! Included lists signed by the real `signify` (Debian's signify-openbsd):
//! the embedded form verifies with its public key, a changed byte or
//! another key is refused, and the key number picks the key on rollover.

use std::process::Command;

use badguys::include::{load_key, Include, IncludeError, IncludeOpts};

use crate::harness::{lines, require, which, Env};

fn signify() -> Option<std::path::PathBuf> {
    which("signify-openbsd").or_else(|| which("signify"))
}

fn keypair(env: &Env, bin: &std::path::Path, name: &str) {
    let st = Command::new(bin)
        .args(["-G", "-n", "-c", "badguys test key", "-p"])
        .arg(env.path(&format!("{name}.pub")))
        .arg("-s")
        .arg(env.path(&format!("{name}.sec")))
        .status()
        .unwrap();
    assert!(st.success(), "signify -G failed");
}

#[test]
fn real_signify_embedded_signature() {
    let Some(bin) = signify() else {
        require("signify (Debian package signify-openbsd)", false);
        return;
    };
    let env = Env::new();
    keypair(&env, &bin, "fleet");
    keypair(&env, &bin, "other");
    env.write("list", "# badguys serial=1796000000 generated=2026-12-01T20:00:00Z hosts=2\n192.0.2.7\n2001:db8::7\n");
    let st = Command::new(&bin)
        .args(["-S", "-e", "-s"])
        .arg(env.path("fleet.sec"))
        .arg("-m")
        .arg(env.path("list"))
        .arg("-x")
        .arg(env.path("list.sig"))
        .status()
        .unwrap();
    assert!(st.success(), "signify -S -e failed");
    let fleet = load_key(&env.path("fleet.pub")).unwrap();
    let other = load_key(&env.path("other.pub")).unwrap();
    let opts = IncludeOpts { keys: vec![other.clone(), fleet.clone()], ..IncludeOpts::default() };
    let l = Include::load(&env.path("list.sig"), &opts).unwrap();
    let nets: Vec<String> = l.nets.iter().map(ToString::to_string).collect();
    assert_eq!(nets, ["192.0.2.7", "2001:db8::7"]);
    assert_eq!(l.header.unwrap().serial, 1_796_000_000);

    // A changed byte in the list (192.0.2.7 -> 192.0.2.8) is refused.
    let signed = std::fs::read(env.path("list.sig")).unwrap();
    let at = signed.windows(9).position(|w| w == b"192.0.2.7").unwrap() + 8;
    let mut bad = signed.clone();
    bad[at] = b'8';
    env.write("bad.sig", &bad);
    let e = Include::load(&env.path("bad.sig"), &opts).unwrap_err();
    assert!(matches!(e, IncludeError::Tampered { .. }), "{e}");
    assert!(e.to_string().contains("tampered"), "{e}");
    // signify agrees.
    let st = Command::new(&bin)
        .args(["-V", "-e", "-q", "-p"])
        .arg(env.path("fleet.pub"))
        .arg("-x")
        .arg(env.path("bad.sig"))
        .arg("-m")
        .arg(env.path("bad.out"))
        .stderr(std::process::Stdio::null())
        .status()
        .unwrap();
    assert!(!st.success());

    // Only the other key: refused, saying which key signed it.
    let e =
        Include::load(&env.path("list.sig"), &IncludeOpts { keys: vec![other], ..IncludeOpts::default() }).unwrap_err();
    assert!(matches!(e, IncludeError::UnknownKey { .. }), "{e}");
    // Unsigned content is refused unless allowed.
    let e = Include::load(&env.path("list"), &IncludeOpts { keys: vec![fleet], ..IncludeOpts::default() }).unwrap_err();
    assert!(matches!(e, IncludeError::Unsigned { .. }), "{e}");
}

fn sign(env: &Env, bin: &std::path::Path, key: &str, list: &str, signed: &str) {
    let st = Command::new(bin)
        .args(["-S", "-e", "-s"])
        .arg(env.path(&format!("{key}.sec")))
        .arg("-m")
        .arg(env.path(list))
        .arg("-x")
        .arg(env.path(signed))
        .status()
        .unwrap();
    assert!(st.success(), "signify -S -e failed");
}

fn fleet_line(host: &str, pid: u32, msg: &str) -> String {
    format!("2026-12-01T19:47:14.000000+00:00 {host} sshd[{pid}]: {msg}\n")
}

/// A collector's fleet file read, exported (per host, `--min-hosts`),
/// signed by the real signify and included on a host: the included
/// entries are listed under their own source and named by `explain`; a
/// tampered copy, an older serial and an unsigned file are refused with
/// the previous list kept; the allowlist carves included entries; they
/// never become manual bans and leave with their `--include`.
#[test]
fn export_sign_include_and_refusals() {
    let Some(bin) = signify() else {
        require("signify (Debian package signify-openbsd)", false);
        return;
    };
    let c = Env::new();
    keypair(&c, &bin, "fleet");
    c.append("auth.log", &fleet_line("web1", 10, "Invalid user a from 192.0.2.7 port 1"));
    c.append("auth.log", &fleet_line("web1", 11, "Invalid user b from 192.0.2.8 port 2"));
    c.append("auth.log", &fleet_line("db1", 12, "Invalid user c from 192.0.2.8 port 3"));
    c.sync(&["--host-silence", "1h"])
        .ok()
        .stderr_has("per host: web1 2 lines 2 events, db1 1 lines 1 events")
        .stderr_has("host web1 silent since");
    c.command(&["list", "--by-host"]).ok().stdout_has("web1").stdout_has("db1");
    c.command(&["explain", "192.0.2.8"]).ok().stdout_has("reported by 2 hosts: web1, db1");
    let all = c.command(&["export"]).ok().stdout.clone();
    let head = all.lines().next().unwrap();
    assert!(head.starts_with("# badguys serial=") && head.ends_with(" hosts=2"), "{head}");
    assert_eq!(all.lines().skip(1).collect::<Vec<_>>(), ["192.0.2.7", "192.0.2.8"]);
    let two = c.command(&["export", "--min-hosts", "2"]).ok().stdout.clone();
    assert_eq!(two.lines().skip(1).collect::<Vec<_>>(), ["192.0.2.8"]);
    // A manual ban always goes; a list the collector includes never does.
    c.command(&["ban", "203.0.113.0/24"]).ok();
    c.write("pub.txt", "# a public list\n198.51.100.0/24\n");
    let public = c.path("pub.txt").display().to_string();
    c.sync(&["--include", &public, "--include-unsigned"]).ok();
    assert!(lines(&c.read("badguys")).contains(&"198.51.100.0/24"));
    let two = c.command(&["export", "--min-hosts", "2"]).ok().stdout.clone();
    assert_eq!(two.lines().skip(1).collect::<Vec<_>>(), ["192.0.2.8", "203.0.113.0/24"]);
    c.write("list", &all);
    sign(&c, &bin, "fleet", "list", "list.sig");

    // The host: its own log is empty.
    let h = Env::new();
    h.write("auth.log", "");
    let inc = c.path("list.sig").display().to_string();
    let key = c.path("fleet.pub").display().to_string();
    let with = |extra: &[&str]| {
        let mut a = vec!["--include", inc.as_str(), "--include-key", key.as_str()];
        a.extend_from_slice(extra);
        h.sync(&a)
    };
    with(&[]).ok().stderr_has("2 entries, serial");
    assert_eq!(lines(&h.read("badguys")), ["192.0.2.7", "192.0.2.8"]);
    let serial = head.split_whitespace().nth(2).unwrap().trim_start_matches("serial=").to_string();
    h.command(&["explain", "192.0.2.7"]).ok().stdout_has(&format!("included list {inc} (serial {serial}"));
    h.command(&["list"]).ok().stdout_has(&format!("include:{inc}"));

    // Tampered: refused, the last good copy stays.
    let good = std::fs::read(c.path("list.sig")).unwrap();
    let at = good.windows(9).position(|w| w == b"192.0.2.7").unwrap() + 8;
    let mut bad = good.clone();
    bad[at] = b'9';
    c.write("list.sig", &bad);
    with(&[]).ok().stderr_has("tampered").stderr_has("the last good copy stays (2 entries");
    assert_eq!(lines(&h.read("badguys")), ["192.0.2.7", "192.0.2.8"]);

    // An older serial, properly signed: a replay, refused.
    c.write("old", "# badguys serial=1000 generated=2026-12-01T00:00:00Z hosts=1\n192.0.2.99\n");
    sign(&c, &bin, "fleet", "old", "list.sig");
    with(&[]).ok().stderr_has("older than the last accepted").stderr_has("last good copy stays");
    assert_eq!(lines(&h.read("badguys")), ["192.0.2.7", "192.0.2.8"]);

    // Unsigned: refused without --include-unsigned.
    c.write("list.sig", "# badguys serial=99999999999 generated=2026-12-01T00:00:00Z hosts=1\n192.0.2.98\n");
    with(&[]).ok().stderr_has("not signed");
    assert_eq!(lines(&h.read("badguys")), ["192.0.2.7", "192.0.2.8"]);

    // Missing: the same.
    std::fs::remove_file(c.path("list.sig")).unwrap();
    with(&[]).ok().stderr_has("missing").stderr_has("last good copy stays");
    assert_eq!(lines(&h.read("badguys")), ["192.0.2.7", "192.0.2.8"]);

    // A newer list, but stale: used, with a warning; the allowlist carves it.
    c.write("new", "# badguys serial=99999999999 generated=2026-01-01T00:00:00Z hosts=2\n192.0.2.7\n192.0.2.8\n");
    sign(&c, &bin, "fleet", "new", "list.sig");
    with(&["--include-max-age", "60", "--allow", "192.0.2.8"]).ok().stderr_has("stale");
    assert_eq!(lines(&h.read("badguys")), ["192.0.2.7"]);

    // Without --include its entries leave: never manual bans.
    h.sync(&[]).ok();
    assert_eq!(h.read("badguys"), "");
    h.command(&["list"]).ok();
    assert!(!h.command(&["list"]).stdout.contains("manual"));
}
