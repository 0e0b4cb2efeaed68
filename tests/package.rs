//! Installing like a system tool: `--version`, `make install` into a
//! staging root (GNU make and bmake), the OpenBSD port's generated files,
//! and the Debian package built by cargo-deb, installed with dpkg on this
//! machine, checked, and purged.

use std::collections::BTreeMap;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::Command;

use crate::firewall_nft::{nft_available, Netns};
use crate::harness::*;

/// The systemd units, as the repository and both installs name them.
const UNITS: [&str; 4] = ["badguys.service", "badguys-sync.service", "badguys-sync.timer", "badguys-reload.service"];

/// Every file the .deb holds, with its mode.
const DEB_FILES: &[(&str, u32)] = &[
    ("etc/badguys.allow", 0o644),
    ("usr/lib/systemd/system/badguys-reload.service", 0o644),
    ("usr/lib/systemd/system/badguys-sync.service", 0o644),
    ("usr/lib/systemd/system/badguys-sync.timer", 0o644),
    ("usr/lib/systemd/system/badguys.service", 0o644),
    ("usr/sbin/badguys", 0o755),
    ("usr/share/badguys/badguys.nft", 0o644),
    ("usr/share/doc/badguys/README.md", 0o644),
    ("usr/share/doc/badguys/README.nftables.md", 0o644),
    ("usr/share/doc/badguys/copyright", 0o644),
    ("usr/share/doc/badguys/examples/badguys.conf.example", 0o644),
    ("usr/share/doc/badguys/examples/hooks/README.md", 0o644),
    ("usr/share/doc/badguys/examples/hooks/mail", 0o644),
    ("usr/share/doc/badguys/examples/hooks/telegram", 0o644),
    ("usr/share/man/man8/badguys.8.gz", 0o644),
];

/// What `make install install-systemd install-rc PREFIX=/usr/local` puts
/// under DESTDIR on Linux.
const MAKE_FILES: &[(&str, u32)] = &[
    ("etc/rc.d/badguys", 0o555),
    ("usr/local/lib/systemd/system/badguys-reload.service", 0o644),
    ("usr/local/lib/systemd/system/badguys-sync.service", 0o644),
    ("usr/local/lib/systemd/system/badguys-sync.timer", 0o644),
    ("usr/local/lib/systemd/system/badguys.service", 0o644),
    ("usr/local/libexec/badguys/mail", 0o755),
    ("usr/local/libexec/badguys/telegram", 0o755),
    ("usr/local/sbin/badguys", 0o755),
    ("usr/local/share/badguys/badguys.nft", 0o644),
    ("usr/local/share/man/man8/badguys.8", 0o644),
];

fn listing(files: &[(&str, u32)]) -> BTreeMap<String, u32> {
    files.iter().map(|(p, m)| (p.to_string(), *m)).collect()
}

/// Regular files under `root` (relative paths) with their permission bits.
fn tree(root: &Path) -> BTreeMap<String, u32> {
    fn walk(root: &Path, dir: &Path, out: &mut BTreeMap<String, u32>) {
        for e in std::fs::read_dir(dir).unwrap() {
            let e = e.unwrap();
            let meta = std::fs::symlink_metadata(e.path()).unwrap();
            if meta.is_dir() {
                walk(root, &e.path(), out);
            } else {
                let rel = e.path().strip_prefix(root).unwrap().display().to_string();
                out.insert(rel, meta.permissions().mode() & 0o7777);
            }
        }
    }
    let mut out = BTreeMap::new();
    walk(root, root, &mut out);
    out
}

#[test]
fn version_names_the_commit_of_a_checkout() {
    let e = Env::new();
    let r = e.cmd(["--version"]).output().unwrap();
    let out = String::from_utf8_lossy(&r.stdout).into_owned();
    assert!(r.status.success(), "{out}");
    let want = format!("badguys {}", env!("CARGO_PKG_VERSION"));
    assert!(out.starts_with(&want), "{out:?} does not start with {want:?}");
    // Subcommands print the same (propagate_version).
    let sub = String::from_utf8_lossy(&e.cmd(["sync", "--version"]).output().unwrap().stdout).into_owned();
    assert!(sub.contains(out.trim_start_matches("badguys").trim()), "{sub:?} vs {out:?}");
    // Built from a checkout with git at hand, it names HEAD's commit; the
    // build script reruns when HEAD moves, so this is the commit tested.
    let head = Command::new("git").arg("-C").arg(repo_file("")).args(["rev-parse", "--short", "HEAD"]).output();
    match head {
        Ok(h) if h.status.success() && repo_file(".git").exists() => {
            let hash = String::from_utf8_lossy(&h.stdout).trim().to_string();
            assert_eq!(out.trim(), format!("{want} (commit {hash})"));
        }
        _ => assert_eq!(out.trim(), want, "no .git or no git: the bare version"),
    }
}

/// `MAKE -C repo ARGS…`
fn make(program: &str, args: &[&str]) -> Run {
    let mut c = Command::new(program);
    c.arg("-C").arg(repo_file("")).args(args).env_remove("MAKEFLAGS").env_remove("MFLAGS");
    run(c)
}

fn make_install_tree(program: &str) {
    let dest = tempfile::Builder::new().prefix("badguys-make.").tempdir().unwrap();
    let vars = [format!("DESTDIR={}", dest.path().display()), "PREFIX=/usr/local".to_string(), format!("BIN={BIN}")];
    let vars: Vec<&str> = vars.iter().map(String::as_str).collect();
    let mut args = vec!["install", "install-systemd", "install-rc"];
    args.extend(&vars);
    make(program, &args).ok();
    assert_eq!(tree(dest.path()), listing(MAKE_FILES), "{program}: the installed tree");

    // The units and the rc script name the binary where it was installed.
    for u in UNITS {
        let unit = std::fs::read_to_string(dest.path().join("usr/local/lib/systemd/system").join(u)).unwrap();
        let src = std::fs::read_to_string(repo_file("contrib/nftables").join(u)).unwrap();
        assert_eq!(unit, src.replace("/usr/sbin/badguys", "/usr/local/sbin/badguys"), "{u}");
        if u.ends_with(".service") {
            assert!(unit.contains("ExecStart=/usr/local/sbin/badguys "), "{u}");
        }
    }
    let rc = std::fs::read_to_string(dest.path().join("etc/rc.d/badguys")).unwrap();
    assert!(rc.contains("daemon=\"/usr/local/sbin/badguys\""), "{rc}");
    let bin = std::fs::read(dest.path().join("usr/local/sbin/badguys")).unwrap();
    assert!(bin == std::fs::read(BIN).unwrap(), "the binary is BIN");

    let mut args = vec!["uninstall"];
    args.extend(&vars);
    make(program, &args).ok();
    assert_eq!(tree(dest.path()), BTreeMap::new(), "{program}: uninstall leaves no file");
    assert!(!dest.path().join("usr/local/share/badguys").exists());
    assert!(!dest.path().join("usr/local/libexec/badguys").exists());

    // Another prefix: the binary and the paths in the units follow it.
    let args = ["install", "install-systemd"];
    let vars = [format!("DESTDIR={}", dest.path().display()), "PREFIX=/opt/bg".to_string(), format!("BIN={BIN}")];
    let all: Vec<&str> = args.iter().copied().chain(vars.iter().map(String::as_str)).collect();
    make(program, &all).ok();
    let unit = std::fs::read_to_string(dest.path().join("opt/bg/lib/systemd/system/badguys-sync.service")).unwrap();
    assert!(unit.contains("ExecStart=/opt/bg/sbin/badguys -q sync"), "{unit}");
    assert!(dest.path().join("opt/bg/sbin/badguys").is_file());
    assert!(dest.path().join("opt/bg/share/man/man8/badguys.8").is_file());
}

#[test]
fn make_install_gnu_make() {
    if !require("make (Debian package make)", have("make")) {
        return;
    }
    make_install_tree("make");
}

#[test]
fn make_install_bmake() {
    if !require("bmake (Debian package bmake)", have("bmake")) {
        return;
    }
    make_install_tree("bmake");
}

#[test]
fn make_install_without_a_binary_says_so() {
    if !require("make (Debian package make)", have("make")) {
        return;
    }
    let dest = tempfile::Builder::new().prefix("badguys-make.").tempdir().unwrap();
    let r = make("make", &["install", &format!("DESTDIR={}", dest.path().display()), "BIN=/nonexistent/badguys"]);
    assert_ne!(r.code, 0);
    assert!(r.stderr.contains("/nonexistent/badguys is missing: run make"), "{}", r.stderr);
    assert_eq!(tree(dest.path()), BTreeMap::new());
}

/// The port's rc script is contrib/pf/badguys.rc with the path in ports
/// terms, and crates.inc matches Cargo.lock: both regenerated by `make
/// port`, so there is one source of each.
#[test]
fn openbsd_port_generated_files_are_current() {
    let rc = std::fs::read_to_string(repo_file("contrib/pf/badguys.rc")).unwrap();
    let port_rc = std::fs::read_to_string(repo_file("contrib/openbsd/port/pkg/badguys.rc")).unwrap();
    assert!(rc.contains("daemon=\"/usr/local/sbin/badguys\""));
    assert_eq!(
        port_rc,
        rc.replace("/usr/local/sbin/badguys", "${TRUEPREFIX}/sbin/badguys"),
        "pkg/badguys.rc is stale: run make port"
    );
    let mut c = Command::new("sh");
    c.arg(repo_file("scripts/port-crates")).arg(repo_file("Cargo.lock"));
    let r = run(c);
    r.ok();
    let inc = std::fs::read_to_string(repo_file("contrib/openbsd/port/crates.inc")).unwrap();
    assert_eq!(inc, r.stdout, "crates.inc is stale: run make port");
    // Every crate of Cargo.lock from crates.io is there, and only those.
    let lock = std::fs::read_to_string(repo_file("Cargo.lock")).unwrap();
    let registry = lock.matches("source = \"registry+https://github.com/rust-lang/crates.io-index\"").count();
    assert_eq!(inc.lines().filter(|l| l.starts_with("MODCARGO_CRATES +=\t")).count(), registry);
    assert!(inc.contains("MODCARGO_CRATES +=\tclap\t"), "{inc}");
    assert!(!inc.contains("\tbadguys\t"), "the port's own package is not a crate to fetch");
}

/// Purges the package when dropped, so a failed test leaves the machine
/// as it found it.
struct Installed;

impl Drop for Installed {
    fn drop(&mut self) {
        let _ = Command::new("dpkg").args(["--purge", "badguys"]).output();
    }
}

fn installed() -> bool {
    Command::new("dpkg").args(["-s", "badguys"]).output().is_ok_and(|o| o.status.success())
}

/// Whether a process runs the binary at `exe`.
fn running(exe: &Path) -> bool {
    std::fs::read_dir("/proc")
        .unwrap()
        .flatten()
        .any(|p| std::fs::read_link(p.path().join("exe")).is_ok_and(|e| e == exe))
}

/// Links to badguys units in /etc/systemd/system (what `systemctl enable`
/// creates, e.g. timers.target.wants/badguys-sync.timer).
fn enabled_links() -> Vec<PathBuf> {
    fn walk(dir: &Path, out: &mut Vec<PathBuf>) {
        let Ok(rd) = std::fs::read_dir(dir) else { return };
        for e in rd.flatten() {
            let p = e.path();
            if p.is_dir() && !p.is_symlink() {
                walk(&p, out);
            } else if p.file_name().is_some_and(|n| n.to_string_lossy().starts_with("badguys")) {
                out.push(p);
            }
        }
    }
    let mut out = Vec::new();
    walk(Path::new("/etc/systemd/system"), &mut out);
    out
}

/// What a package must not leave behind or create by being installed.
const NEVER_WRITTEN: [&str; 4] = ["/etc/badguys", "/etc/badguys.lock", "/etc/badguys.conf", "/var/lib/badguys"];

#[test]
fn deb_installs_starts_nothing_and_purges_clean() {
    if !(require("root", is_root())
        && require("dpkg and dpkg-deb", have("dpkg") && have("dpkg-deb"))
        && require("cargo-deb (cargo install --locked cargo-deb)", have("cargo-deb"))
        && require("systemd-analyze (Debian package systemd)", have("systemd-analyze"))
        && nft_available())
    {
        return;
    }
    assert!(!installed(), "a badguys package is already installed here; this test installs and purges its own");
    for p in NEVER_WRITTEN {
        assert!(!Path::new(p).exists(), "{p} exists before the test: cannot show the package does not write it");
    }
    let out = tempfile::Builder::new().prefix("badguys-deb.").tempdir().unwrap();

    // The binary this test run built (target/debug), packaged as it is: a
    // release build would double the suite's build time. cargo-deb 3.8
    // warns that the dev profile is for testing only.
    let bin = Path::new(BIN);
    assert_eq!(bin.parent().and_then(Path::file_name).and_then(|n| n.to_str()), Some("debug"), "{BIN}");
    let mut c = Command::new("cargo-deb");
    c.args(["--no-build", "--profile", "dev", "--locked", "--quiet", "--manifest-path"])
        .arg(repo_file("Cargo.toml"))
        .arg("-o")
        .arg(out.path());
    run(c).ok();
    let deb = std::fs::read_dir(out.path())
        .unwrap()
        .flatten()
        .map(|e| e.path())
        .find(|p| p.extension().is_some_and(|x| x == "deb"));
    let deb = deb.expect("cargo-deb wrote no .deb");

    // The file list, against the one kept here.
    let mut c = Command::new("dpkg-deb");
    c.arg("-c").arg(&deb);
    let r = run(c);
    r.ok();
    let mut files = BTreeMap::new();
    for line in r.stdout.lines() {
        // -rw-r--r-- 0/0   143 2026-12-01 00:00 ./etc/badguys.allow
        let cols: Vec<&str> = line.split_whitespace().collect();
        let (perm, path) = (cols[0], cols[cols.len() - 1]);
        if let Some(bits) = perm.strip_prefix('-') {
            let mode = bits.chars().enumerate().fold(0, |m, (i, ch)| m | (u32::from(ch != '-') << (8 - i)));
            files.insert(path.trim_start_matches("./").to_string(), mode);
        } else {
            assert!(perm.starts_with('d'), "only files and directories: {line}");
        }
    }
    assert_eq!(files, listing(DEB_FILES), "dpkg-deb -c");

    // No maintainer scripts at all: nothing can enable or start a unit,
    // load a ruleset or write a file when the package is installed.
    let ctrl = out.path().join("control");
    let mut c = Command::new("dpkg-deb");
    c.arg("-e").arg(&deb).arg(&ctrl);
    run(c).ok();
    let mut members: Vec<String> =
        std::fs::read_dir(&ctrl).unwrap().flatten().map(|e| e.file_name().to_string_lossy().into_owned()).collect();
    members.sort();
    members.retain(|m| m != "md5sums");
    assert_eq!(members, ["conffiles", "control"], "control members");
    for script in ["preinst", "postinst", "prerm", "postrm", "config", "triggers"] {
        assert!(!ctrl.join(script).exists(), "the package has a {script}");
    }
    assert_eq!(std::fs::read_to_string(ctrl.join("conffiles")).unwrap(), "/etc/badguys.allow\n");

    // Install it for real.
    let guard = Installed;
    let mut c = Command::new("dpkg");
    c.arg("-i").arg(&deb).env("DEBIAN_FRONTEND", "noninteractive");
    run(c).ok();
    for (p, mode) in DEB_FILES {
        let meta = std::fs::metadata(Path::new("/").join(p)).unwrap_or_else(|e| panic!("/{p}: {e}"));
        assert_eq!(meta.permissions().mode() & 0o7777, *mode, "/{p}");
    }
    let mut c = Command::new("/usr/sbin/badguys");
    c.arg("--version");
    let v = run(c);
    let mut c = Command::new(BIN);
    c.arg("--version");
    assert_eq!(v.ok().stdout, run(c).stdout, "the installed binary is the one built");

    // Nothing started, nothing enabled, nothing written.
    assert!(!running(Path::new("/usr/sbin/badguys")), "a badguys process runs after dpkg -i");
    assert_eq!(enabled_links(), Vec::<PathBuf>::new(), "enabled units after dpkg -i");
    if have("systemctl") {
        // Reads the unit files; needs no running systemd.
        let mut c = Command::new("systemctl");
        c.arg("is-enabled").args(UNITS);
        let r = run(c);
        // "static": badguys-sync.service has no [Install]; the timer starts it.
        assert!(r.stdout.lines().all(|l| l == "disabled" || l == "static"), "systemctl is-enabled: {}", r.stdout);
        assert_eq!(r.stdout.lines().count(), UNITS.len(), "{r:#?}");
    }
    for p in NEVER_WRITTEN {
        assert!(!Path::new(p).exists(), "{p} exists after dpkg -i");
    }

    // The units point at what the package installed (verify fails on an
    // ExecStart= that is not executable).
    for u in UNITS {
        let unit = std::fs::read_to_string(Path::new("/usr/lib/systemd/system").join(u)).unwrap();
        let starts: Vec<&str> = unit.lines().filter(|l| l.starts_with("ExecStart=")).collect();
        assert_eq!(starts.len(), usize::from(u.ends_with(".service")), "{u}: {starts:?}");
        for exec in starts {
            assert!(exec.starts_with("ExecStart=/usr/sbin/badguys "), "{u}: {exec}");
        }
        assert!(!unit.contains("/usr/local/"), "{u} names a /usr/local path");
    }
    let mut c = Command::new("systemd-analyze");
    c.arg("verify").args(UNITS.map(|u| format!("/usr/lib/systemd/system/{u}")));
    let r = run(c);
    assert_eq!(r.code, 0, "systemd-analyze verify:\n{}", r.stderr);
    assert!(!r.stderr.contains("badguys"), "systemd-analyze verify says:\n{}", r.stderr);

    // badguys check, as the admin would run it after loading the shipped
    // ruleset: in a namespace of its own, so the host's firewall is untouched.
    let ns = Netns::new("deb");
    ns.nft(&["-f", "/usr/share/badguys/badguys.nft"]);
    let r = run(ns.cmd("/usr/sbin/badguys", ["check"]));
    assert_eq!((r.code, r.stdout.trim()), (0, "configuration OK"), "{r:#?}");
    drop(ns);
    for p in NEVER_WRITTEN {
        assert!(!Path::new(p).exists(), "{p} exists after badguys check");
    }

    // Purge: every file is gone, the conffile too.
    let mut c = Command::new("dpkg");
    c.args(["--purge", "badguys"]);
    run(c).ok();
    std::mem::forget(guard);
    assert!(!installed());
    for (p, _) in DEB_FILES {
        assert!(!Path::new("/").join(p).exists(), "/{p} is left after dpkg --purge");
    }
    for d in ["/usr/share/badguys", "/usr/share/doc/badguys"] {
        assert!(!Path::new(d).exists(), "{d} is left after dpkg --purge");
    }
    for p in NEVER_WRITTEN {
        assert!(!Path::new(p).exists(), "{p} exists after dpkg --purge");
    }
    assert!(!running(Path::new("/usr/sbin/badguys")));
}
