//! Child processes started by a real `badguys watch`, where SIGTERM, SIGINT
//! and SIGHUP are blocked in every thread: hooks start with no blocked or
//! ignored signals, no inherited descriptors and a minimal environment, a
//! hook's timeout SIGTERM stops it, and stopping watch leaves no
//! journalctl (or anything it started) behind.
//!
//! The hooks here are bash scripts: dash clears its signal mask when it
//! starts, so a dash hook would hide the mask it inherited, while bash
//! hands what it inherited on to the programs it runs (grep reads its own
//! status: bash's would show what bash itself blocks while it waits).

use std::os::fd::AsRawFd;
use std::os::unix::process::CommandExt;

use crate::harness::*;

fn executable(e: &Env, name: &str, body: &str) -> String {
    let p = e.write(name, body);
    std::fs::set_permissions(&p, std::os::unix::fs::PermissionsExt::from_mode(0o755)).unwrap();
    p.display().to_string()
}

fn watch_args(e: &Env, extra: &[&str]) -> Vec<String> {
    let mut args = e.watch_args(extra);
    args.push("-v".into());
    args
}

fn listed(e: &Env, addr: &str) -> bool {
    e.read("badguys").lines().any(|l| l == addr)
}

/// A signal's bit in a /proc/PID/status mask.
fn bit(sig: nix::sys::signal::Signal) -> u64 {
    1 << (sig as i32 - 1)
}

fn mask(status: &str, field: &str) -> u64 {
    let line = status.lines().find(|l| l.starts_with(field)).unwrap_or_else(|| panic!("no {field} in {status}"));
    u64::from_str_radix(line[field.len()..].trim(), 16).unwrap()
}

/// Whether process `pid` is gone (or a zombie waiting to be reaped).
fn dead(pid: &str) -> bool {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap_or_default();
    stat.is_empty() || stat[stat.rfind(')').unwrap() + 1..].trim_start().starts_with('Z')
}

#[test]
#[cfg(target_os = "linux")]
fn a_hook_from_watch_starts_clean() {
    use nix::sys::signal::{signal, SigHandler, Signal};
    if !require("bash", have("bash")) {
        return;
    }
    let e = Env::new();
    e.write("auth.log", "");
    let d = e.dir.path().display();
    let hook = executable(
        &e,
        "hook",
        &format!(
            "#!/usr/bin/env bash\n\
             grep -E '^Sig(Blk|Ign)' /proc/self/status > {d}/sig.out\n\
             env > {d}/env.out\n\
             ls -l /proc/self/fd > {d}/fd.out\n\
             echo done > {d}/done.out\n"
        ),
    );
    e.write("conf", "hook-env = NAMED_IN_CONF\n");
    let mut args = watch_args(&e, &["--on-ban", &hook]);
    args.extend(["--config".into(), e.path("conf").display().to_string()]);
    let mut c = e.cmd(args);
    c.env("SECRET_TOKEN", "hunter2").env("NAMED_IN_CONF", "passed on purpose");
    // watch inherits a descriptor without close-on-exec and, as under
    // nohup or a shell without job control, ignored signals.
    let leak = std::fs::File::create(e.path("leaked")).unwrap();
    let leak_fd = leak.as_raw_fd();
    unsafe {
        c.pre_exec(move || {
            nix::unistd::dup2(leak_fd, 9)?;
            for s in [Signal::SIGINT, Signal::SIGQUIT, Signal::SIGUSR1] {
                signal(s, SigHandler::SigIgn)?;
            }
            Ok(())
        });
    }
    let mut w = Daemon::spawn(c, e.path("watch.err"));
    wait_for(10, "the first sync", || e.path("badguys").exists());
    e.append("auth.log", &sshd(1, "Invalid user a from 192.0.2.1 port 1"));
    wait_for(10, "the hook to run", || e.read("done.out") == "done\n");
    assert_eq!(w.stop(), 0, "{}", w.log());

    let sig = e.read("sig.out");
    assert_eq!(mask(&sig, "SigBlk:"), 0, "blocked signals in the hook:\n{sig}");
    let ignored = mask(&sig, "SigIgn:");
    for s in [Signal::SIGTERM, Signal::SIGHUP, Signal::SIGINT, Signal::SIGQUIT, Signal::SIGUSR1, Signal::SIGPIPE] {
        assert_eq!(ignored & bit(s), 0, "{s} ignored in the hook:\n{sig}");
    }

    // ls lists its own descriptors: 0, 1, 2 and the directory it reads
    // (/proc/PID/fd); nothing else, and never watch's leaked file.
    let fds = e.read("fd.out");
    let mut seen = Vec::new();
    for l in fds.lines().filter(|l| l.contains(" -> ")) {
        let (left, target) = l.split_once(" -> ").unwrap();
        let fd: u32 = left.split_whitespace().last().unwrap().parse().unwrap();
        seen.push(fd);
        assert!(!target.contains("leaked"), "watch's descriptor reached the hook:\n{fds}");
        assert!(fd <= 2 || (target.starts_with("/proc/") && target.ends_with("/fd")), "inherited descriptor:\n{fds}");
    }
    assert!([0, 1, 2].iter().all(|f| seen.contains(f)), "{fds}");

    let env = e.read("env.out");
    let var = |name: &str| env.lines().find_map(|l| l.strip_prefix(&format!("{name}=")).map(str::to_string));
    assert_eq!(var("SECRET_TOKEN"), None, "an unnamed variable reached the hook:\n{env}");
    assert_eq!(var("NAMED_IN_CONF").as_deref(), Some("passed on purpose"), "{env}");
    assert_eq!(var("BADGUYS_EVENT").as_deref(), Some("ban"), "{env}");
    assert_eq!(var("BADGUYS_ADDRS").as_deref(), Some("192.0.2.1"), "{env}");
    assert!(var("PATH").is_some_and(|p| p.split(':').all(|d| d.starts_with('/'))), "{env}");
    drop(leak);
}

#[test]
fn hook_env_names_are_checked() {
    let e = Env::new();
    e.write("auth.log", "");
    run(e.cmd(watch_args(&e, &["--hook-env", "NOT-A-NAME"]))).code(2).stderr_has("--hook-env").stderr_has("NOT-A-NAME");
    e.write("conf", "hook-env = A=B\n");
    let mut args = watch_args(&e, &[]);
    args.extend(["--config".into(), e.path("conf").display().to_string()]);
    run(e.cmd(args)).code(2).stderr_has("conf:1: hook-env");
}

#[test]
#[cfg(target_os = "linux")]
fn a_hooks_timeout_sigterm_stops_it() {
    if !require("bash", have("bash")) {
        return;
    }
    let e = Env::new();
    e.write("auth.log", "");
    let d = e.dir.path().display();
    // Answers SIGTERM, and waits on a child that SIGTERM kills too.
    let hook = executable(
        &e,
        "hook",
        &format!(
            "#!/usr/bin/env bash\n\
             trap 'echo term > {d}/term.out; exit 143' TERM\n\
             sleep 30 &\n\
             echo $! > {d}/sleep.pid\n\
             wait\n"
        ),
    );
    let mut w = Daemon::spawn(e.cmd(watch_args(&e, &["--on-ban", &hook, "--hook-timeout", "1"])), e.path("watch.err"));
    wait_for(10, "the first sync", || e.path("badguys").exists());
    e.append("auth.log", &sshd(1, "Invalid user a from 192.0.2.1 port 1"));
    wait_for(10, "the ban", || listed(&e, "192.0.2.1"));
    wait_for(10, "the hook to be killed", || w.log().contains("killed with"));
    let log = w.log();
    assert!(log.contains("killed with SIGTERM"), "SIGTERM did not stop the hook:\n{log}");
    assert_eq!(e.read("term.out"), "term\n", "the hook never saw SIGTERM:\n{log}");
    let sleep = e.read("sleep.pid");
    wait_for(5, "the hook's child to die", || dead(sleep.trim()));
    assert_eq!(w.stop(), 0, "{}", w.log());
}

#[test]
fn stopping_watch_kills_a_restarted_journalctl_and_its_children() {
    let e = Env::new();
    let d = e.dir.path().display();
    // A stand-in journalctl: one-shot reads find nothing; the first
    // --follow ends at once (so watch restarts it); the next one records
    // its pid and its child's and waits on that child.
    let fake = executable(
        &e,
        "journalctl",
        &format!(
            "#!/bin/sh\n\
             case \" $* \" in *' --follow '*) ;; *) exit 0 ;; esac\n\
             if [ ! -e {d}/followed ]; then : > {d}/followed; exit 1; fi\n\
             sleep 1000 &\n\
             echo $$ $! > {d}/pids\n\
             wait\n"
        ),
    );
    let mut args = e.watch_args(&[]);
    let i = args.iter().position(|a| a == "--log").unwrap();
    args.drain(i..i + 2);
    args.extend(["--journal-file".into(), e.path("sshd.journal").display().to_string(), "-v".into()]);
    let mut c = e.cmd(args);
    c.env("BADGUYS_JOURNALCTL", &fake);
    let mut w = Daemon::spawn(c, e.path("watch.err"));
    wait_for(15, "journalctl to be restarted", || e.read("pids").ends_with('\n'));
    assert!(w.log().contains("journalctl --follow ended"), "{}", w.log());
    assert_eq!(w.stop(), 0, "{}", w.log());
    let pids: Vec<String> = e.read("pids").split_whitespace().map(String::from).collect();
    let until = std::time::Instant::now() + std::time::Duration::from_secs(5);
    while pids.iter().any(|p| !dead(p)) && std::time::Instant::now() < until {
        std::thread::sleep(std::time::Duration::from_millis(20));
    }
    let left: Vec<&String> = pids.iter().filter(|p| !dead(p)).collect();
    for p in &left {
        // Clean up what the failure left, by pid.
        let _ =
            nix::sys::signal::kill(nix::unistd::Pid::from_raw(p.parse().unwrap()), nix::sys::signal::Signal::SIGKILL);
    }
    assert!(left.is_empty(), "still running after watch stopped: {left:?} of {pids:?}");
}
