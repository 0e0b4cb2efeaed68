//! Tests of the hooks: real child processes (shell scripts in a temp dir).

use super::*;
use std::io::{self, Write};
use std::time::Instant;

use nix::sys::signal::Signal;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::Once;

/// Everything logged by any test; each test looks for its own temp dir
/// in it.
static LOG: Mutex<Vec<u8>> = Mutex::new(Vec::new());

struct LogWriter;

impl Write for LogWriter {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        LOG.lock().unwrap_or_else(PoisonError::into_inner).extend_from_slice(buf);
        Ok(buf.len())
    }
    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}

fn capture_log() {
    static ONCE: Once = Once::new();
    ONCE.call_once(|| {
        let subscriber = tracing_subscriber::fmt()
            .with_writer(|| LogWriter)
            .with_ansi(false)
            .with_max_level(tracing::Level::DEBUG)
            .finish();
        tracing::subscriber::set_global_default(subscriber).expect("only these tests set a subscriber");
    });
}

/// The log lines that mention `needle`.
fn logged(needle: &str) -> Vec<String> {
    let log = LOG.lock().unwrap_or_else(PoisonError::into_inner);
    String::from_utf8_lossy(&log).lines().filter(|l| l.contains(needle)).map(String::from).collect()
}

/// A temp dir with `hook.sh` holding `body`, and the hook running it.
fn script(body: &str, timeout: Duration, max_running: usize) -> (tempfile::TempDir, PathBuf, Hook) {
    capture_log();
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("hook.sh");
    std::fs::write(&path, format!("cd '{}' || exit 99\n{body}\n", dir.path().display())).unwrap();
    let argv = vec!["/bin/sh".to_string(), path.display().to_string()];
    (dir, path, Hook::new("on-ban", argv, timeout, max_running))
}

fn read(dir: &Path, name: &str) -> String {
    std::fs::read_to_string(dir.join(name)).unwrap_or_else(|e| panic!("{name}: {e}"))
}

const LONG: Duration = Duration::from_secs(10);

#[test]
fn gets_stdin_and_env() {
    let (dir, path, hook) =
        script(r#"cat > stdin.out; printf '%s|%s|%s\n' "$BADGUYS_EVENT" "$BADGUYS_COUNT" "$1" > env.out"#, LONG, 4);
    let input = b"{\"event\":\"ban\",\"addr\":\"198.51.100.7\"}\n{\"event\":\"ban\"}\n".to_vec();
    let env = vec![("BADGUYS_EVENT".into(), "ban".into()), ("BADGUYS_COUNT".into(), "2".into())];
    assert_eq!(hook.fire(input.clone(), env), Fired::Started);
    assert!(hook.drain(LONG));
    assert_eq!(read(dir.path(), "stdin.out").as_bytes(), &input[..]);
    assert_eq!(read(dir.path(), "env.out"), "ban|2|\n");
    // Success is not a warning.
    assert!(logged(&path.display().to_string()).iter().all(|l| !l.contains("WARN")));
}

#[test]
fn large_stdin_is_written_whole() {
    let (dir, _, hook) = script("cat > stdin.out", LONG, 1);
    let input: Vec<u8> = (0..1_000_000u32).map(|i| b'a' + (i % 26) as u8).collect();
    assert_eq!(hook.fire(input.clone(), vec![]), Fired::Started);
    assert!(hook.drain(LONG));
    assert!(read(dir.path(), "stdin.out").as_bytes() == &input[..]);
}

#[test]
fn empty_stdin_is_closed_at_once() {
    let (dir, _, hook) = script("wc -c < /dev/stdin > n.out", LONG, 1);
    assert_eq!(hook.fire(vec![], vec![]), Fired::Started);
    assert!(hook.drain(LONG));
    assert_eq!(read(dir.path(), "n.out").trim(), "0");
}

#[test]
fn hook_that_ignores_its_input() {
    // Exits at once without reading 1 MB: EPIPE, no SIGPIPE, no warning.
    let (_dir, path, hook) = script("exit 0", LONG, 1);
    assert_eq!(hook.fire(vec![b'x'; 1 << 20], vec![]), Fired::Started);
    assert!(hook.drain(LONG));
    assert!(logged(&path.display().to_string()).iter().all(|l| !l.contains("WARN")));

    // Runs a while without reading: the full pipe does not stall anything.
    let (dir, _, hook) = script("sleep 0.3; echo done > done.out", LONG, 1);
    assert_eq!(hook.fire(vec![b'x'; 1 << 20], vec![]), Fired::Started);
    assert!(hook.drain(LONG));
    assert_eq!(read(dir.path(), "done.out"), "done\n");
}

#[test]
fn sigpipe_cannot_kill_badguys() {
    // badguys may restore SIGPIPE's default action (a closed stdout is
    // then a quiet exit). Try that in a copy of this test binary, not
    // in the process the other tests share.
    if std::env::var_os("BADGUYS_TEST_SIGPIPE").is_some() {
        unsafe { nix::sys::signal::signal(Signal::SIGPIPE, nix::sys::signal::SigHandler::SigDfl) }.unwrap();
        let hook = Hook::new("on-ban", vec!["true".into()], LONG, 1);
        for _ in 0..5 {
            assert_eq!(hook.fire(vec![b'x'; 1 << 20], vec![]), Fired::Started);
            assert!(hook.drain(LONG));
        }
        return;
    }
    let out = Command::new(std::env::current_exe().unwrap())
        .args(["--exact", "hooks::tests::sigpipe_cannot_kill_badguys", "--test-threads=1"])
        .env("BADGUYS_TEST_SIGPIPE", "1")
        .output()
        .unwrap();
    assert!(out.status.success(), "{}: {}", out.status, String::from_utf8_lossy(&out.stdout));
    assert!(String::from_utf8_lossy(&out.stdout).contains("1 passed"));
}

#[test]
fn slow_hook_is_killed_and_fire_does_not_wait() {
    let (dir, path, hook) = script("sleep 30 & echo $! > sleep.pid; wait", Duration::from_millis(300), 1);
    let t = Instant::now();
    assert_eq!(hook.fire(b"x\n".to_vec(), vec![]), Fired::Started);
    // fire returned while the run is still going: it did not wait.
    assert!(!hook.drain(Duration::ZERO), "fire waited for the hook");
    assert!(hook.drain(Duration::from_secs(5)));
    // Killed once its timeout was over, and by SIGTERM (no grace needed).
    assert!(t.elapsed() >= Duration::from_millis(300), "killed early: {:?}", t.elapsed());
    let lines = logged(&path.display().to_string());
    assert!(lines.iter().any(|l| l.contains("WARN") && l.contains("killed with SIGTERM")), "{lines:?}");
    assert!(!lines.iter().any(|l| l.contains("SIGKILL")), "{lines:?}");
    // The shell's child got the signal too: it is gone, or a zombie
    // waiting for a reaper.
    #[cfg(target_os = "linux")]
    {
        let pid = read(dir.path(), "sleep.pid");
        let stat = std::fs::read_to_string(format!("/proc/{}/stat", pid.trim())).unwrap_or_default();
        assert!(stat.is_empty() || stat.contains(") Z "), "sleep still alive: {stat}");
    }
    let _ = dir;
}

#[test]
fn hook_ignoring_sigterm_gets_sigkill() {
    let (_dir, path, hook) = script("trap '' TERM; sleep 30", Duration::from_millis(100), 1);
    let t = Instant::now();
    assert_eq!(hook.fire(vec![], vec![]), Fired::Started);
    assert!(hook.drain(Duration::from_secs(6)));
    // SIGKILL came only after the grace that SIGTERM was given.
    assert!(t.elapsed() >= KILL_GRACE, "took {:?}", t.elapsed());
    let lines = logged(&path.display().to_string());
    assert!(lines.iter().any(|l| l.contains("WARN") && l.contains("killed with SIGKILL")), "{lines:?}");
}

#[test]
fn failing_hook_is_logged_with_its_stderr() {
    let (_dir, path, hook) = script("echo 'no token' >&2; exit 3", LONG, 1);
    assert_eq!(hook.fire(vec![], vec![]), Fired::Started);
    assert!(hook.drain(LONG));
    let lines = logged(&path.display().to_string());
    assert_eq!(lines.len(), 1, "{lines:?}");
    assert!(lines[0].contains("WARN"), "{lines:?}");
    assert!(
        lines[0]
            .contains(&format!("on-ban hook /bin/sh {}: failed: exit status: 3; stderr: \"no token\"", path.display())),
        "{lines:?}"
    );
}

#[test]
fn stderr_is_cut_at_512_bytes() {
    let (_dir, path, hook) =
        script("i=0; while [ $i -lt 100 ]; do printf xxxxxxxxxxxxxxxxxxxx >&2; i=$((i+1)); done; exit 1", LONG, 1);
    assert_eq!(hook.fire(vec![], vec![]), Fired::Started);
    assert!(hook.drain(LONG));
    let lines = logged(&path.display().to_string());
    assert_eq!(lines.len(), 1, "{lines:?}");
    assert!(lines[0].contains(&"x".repeat(512)) && !lines[0].contains(&"x".repeat(513)), "{lines:?}");
}

#[test]
fn busy_hook_drops_the_next_batch() {
    let (dir, _, hook) = script("while [ ! -e gate ]; do sleep 0.02; done; cat >> seen.out", LONG, 1);
    assert_eq!(hook.fire(b"one\n".to_vec(), vec![]), Fired::Started);
    assert_eq!(hook.fire(b"two\n".to_vec(), vec![]), Fired::Dropped);
    assert!(!hook.drain(Duration::from_millis(100)));
    std::fs::write(dir.path().join("gate"), "").unwrap();
    assert!(hook.drain(LONG));
    assert_eq!(hook.fire(b"three\n".to_vec(), vec![]), Fired::Started);
    assert!(hook.drain(LONG));
    assert_eq!(read(dir.path(), "seen.out"), "one\nthree\n");
}

#[test]
fn max_running_allows_that_many() {
    let (dir, _, hook) = script("while [ ! -e gate ]; do sleep 0.02; done", LONG, 2);
    assert_eq!(hook.fire(vec![], vec![]), Fired::Started);
    assert_eq!(hook.fire(vec![], vec![]), Fired::Started);
    assert_eq!(hook.fire(vec![], vec![]), Fired::Dropped);
    std::fs::write(dir.path().join("gate"), "").unwrap();
    assert!(hook.drain(LONG));
    // 0 means 1.
    let zero = Hook::new("on-login", vec!["true".into()], LONG, 0);
    assert_eq!(zero.fire(vec![], vec![]), Fired::Started);
    assert!(zero.drain(LONG));
}

#[test]
fn drain_with_nothing_running() {
    let hook = Hook::new("on-ban", vec!["true".into()], LONG, 1);
    // Nothing to wait for: true without waiting at all.
    assert!(hook.drain(Duration::ZERO));
    assert!(hook.drain(Duration::from_secs(5)));
}

#[test]
fn missing_program_is_logged() {
    capture_log();
    let dir = tempfile::tempdir().unwrap();
    let prog = dir.path().join("no-such-hook").display().to_string();
    let hook = Hook::new("on-login", vec![prog.clone(), "--chat".into(), "1".into()], LONG, 1);
    assert_eq!(hook.fire(b"x\n".to_vec(), vec![]), Fired::Started);
    assert!(hook.drain(LONG));
    let lines = logged(&prog);
    assert!(
        lines.iter().any(|l| l.contains("WARN") && l.contains("on-login hook") && l.contains("cannot run")),
        "{lines:?}"
    );
    // And it can be fired again.
    assert_eq!(hook.fire(vec![], vec![]), Fired::Started);
    assert!(hook.drain(LONG));
}

#[test]
fn empty_argv_is_logged_not_a_panic() {
    let hook = Hook::new("on-ban", vec![], LONG, 1);
    assert_eq!(hook.fire(vec![], vec![]), Fired::Started);
    assert!(hook.drain(LONG));
}

#[test]
#[cfg(target_os = "linux")]
fn hook_runs_in_its_own_group_with_a_clean_signal_mask() {
    let (dir, _, hook) = script(
        // The shell reads its own status itself: a forked grep could
        // catch it with all signals blocked around the fork.
        "cat /proc/$$/stat > stat.out; while read -r l; do case $l in SigBlk*) echo \"$l\";; esac; done < /proc/self/status > mask.out",
        LONG,
        1,
    );
    assert_eq!(hook.fire(vec![], vec![]), Fired::Started);
    assert!(hook.drain(LONG));
    // pid (comm) state ppid pgrp …
    let stat = read(dir.path(), "stat.out");
    let pid = stat.split_whitespace().next().unwrap();
    let pgrp = stat[stat.rfind(')').unwrap() + 1..].split_whitespace().nth(2).unwrap();
    assert_eq!(pid, pgrp, "not a group leader: {stat}");
    assert_ne!(pgrp, nix::unistd::getpgrp().to_string());
    // SIGPIPE, blocked in the supervising thread, is not blocked in the hook.
    assert_eq!(read(dir.path(), "mask.out").trim(), "SigBlk:\t0000000000000000");
}

fn split(s: &str) -> Result<Vec<String>, String> {
    split_command(s)
}

fn words(v: &[&str]) -> Result<Vec<String>, String> {
    Ok(v.iter().map(|s| s.to_string()).collect())
}

#[test]
fn split_plain_words() {
    assert_eq!(
        split("/usr/local/libexec/badguys/telegram --chat 42"),
        words(&["/usr/local/libexec/badguys/telegram", "--chat", "42"])
    );
    assert_eq!(split("  a \t b\n c  "), words(&["a", "b", "c"]));
    assert_eq!(split("x"), words(&["x"]));
}

#[test]
fn split_quotes() {
    assert_eq!(split("mail -s 'bad guys' root"), words(&["mail", "-s", "bad guys", "root"]));
    assert_eq!(split(r#"say "hello world""#), words(&["say", "hello world"]));
    assert_eq!(split(r#"a'b c'd"e f"g"#), words(&["ab cde fg"]));
    assert_eq!(split("'' \"\" x"), words(&["", "", "x"]));
    // No escapes inside '…'.
    assert_eq!(split(r"'a\b' 'c\'"), words(&[r"a\b", r"c\"]));
    // Inside "…" a backslash escapes " and \ only.
    assert_eq!(split(r#""a\"b" "c\\d" "e\nf" "$HOME""#), words(&[r#"a"b"#, r"c\d", r"e\nf", "$HOME"]));
    assert_eq!(split(r#""it's" 'say "hi"'"#), words(&["it's", r#"say "hi""#]));
}

#[test]
fn split_bare_backslash() {
    assert_eq!(split(r"a\ b c"), words(&["a b", "c"]));
    assert_eq!(split(r#"\"x\" \'y \\z"#), words(&[r#""x""#, "'y", r"\z"]));
    assert_eq!(split(r"\n"), words(&["n"]));
}

#[test]
fn split_errors() {
    assert_eq!(split(""), Err("empty command".to_string()));
    assert_eq!(split(" \t\n "), Err("empty command".to_string()));
    assert_eq!(split("a 'b c"), Err("unterminated ' quote".to_string()));
    assert_eq!(split(r#"a "b c"#), Err("unterminated \" quote".to_string()));
    assert_eq!(split(r#"a "b\""#), Err("unterminated \" quote".to_string()));
    assert_eq!(split(r#"a "b\"#), Err("unterminated \" quote".to_string()));
    assert_eq!(split(r"a \"), Err("trailing backslash".to_string()));
}
