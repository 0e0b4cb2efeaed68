//! `badguys test` on a small log with one line of each outcome: rule and
//! address, a rule left out, no rule, bad address, a kex half, another
//! program, a login; `--only-missed`; and nothing written.

use crate::harness::{repo_file, Env};

fn test_cmd(env: &Env, extra: &[&str]) -> String {
    env.write("empty.conf", "");
    let mut args = vec!["--config", "empty.conf", "test"];
    args.extend_from_slice(extra);
    let log = repo_file("tests/data/linetest.log");
    let log = log.to_str().unwrap().to_string();
    args.push(&log);
    let out = crate::harness::run(env.cmd(&args));
    out.ok();
    out.stdout.clone()
}

#[test]
fn each_line_says_what_it_does() {
    let env = Env::new();
    let out = test_cmd(&env, &[]);
    let want = [
        "1: invalid-user 192.0.2.7",
        "2: not an sshd line (CRON)",
        "3: no rule: failed-auth would take 192.0.2.8, but it is not in --rules: Failed keyboard-interactive/pam",
        "4: bad address (not counted): Invalid user admin from 192.0.2.999 port 5000",
        "5: kex error: waiting for the `Connection reset by` of the same process",
        "6: kex-reset 198.51.100.3",
        "7: no rule: Server listening on 0.0.0.0 port 22.",
        "8: login 203.0.113.9: spared",
        "9: invalid-user 192.0.2.7",
    ];
    for w in want {
        assert!(out.lines().any(|l| l.starts_with(w)), "{w:?} not in\n{out}");
    }
    assert!(out.contains("rules: invalid-user,root-disconnect,kex-reset"), "{out}");
    assert!(out.contains("--threshold 1"), "{out}");
    // Nothing but what the test wrote itself: no state, list or lock.
    let mut files: Vec<_> = std::fs::read_dir(env.dir.path()).unwrap().map(|e| e.unwrap().file_name()).collect();
    files.sort();
    assert_eq!(files, ["empty.conf"]);
}

#[test]
fn rules_and_threshold_change_the_summary() {
    let env = Env::new();
    let out = test_cmd(&env, &["--rules", "all", "--threshold", "2"]);
    assert!(out.contains("3: failed-auth 192.0.2.8"), "{out}");
    assert!(out.contains("--threshold 2"), "{out}");
    assert!(out.contains("1 addresses would be listed"), "{out}");
    assert!(
        out.lines().any(|l| l.contains("maxstartups") && l.contains("counts apart: its own threshold 20")),
        "{out}"
    );
}

#[test]
fn only_missed_prints_the_messages_no_rule_took() {
    let env = Env::new();
    let out = test_cmd(&env, &["--only-missed"]);
    assert_eq!(
        out.lines().collect::<Vec<_>>(),
        [
            "Failed keyboard-interactive/pam for root from 192.0.2.8 port 5001 ssh2",
            "Invalid user admin from 192.0.2.999 port 5000",
            "Server listening on 0.0.0.0 port 22.",
        ]
    );
}
