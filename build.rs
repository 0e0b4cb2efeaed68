//! Build script: the version string `badguys --version` prints.
//!
//! `BADGUYS_VERSION` is the package version, followed by the git commit
//! it was built from when that is known: the source tree has a `.git`
//! (a checkout or a worktree) and git can be run. Tarballs (`cargo
//! package`, the OpenBSD port, a Debian source package) have no `.git`
//! and get the bare version; a missing or failing git never fails the
//! build. Looking for `.git` in the package's own directory, not asking
//! git from wherever the tree was unpacked, keeps an enclosing repository's
//! commit out of the version.

use std::path::Path;
use std::process::Command;

fn main() {
    println!("cargo:rerun-if-changed=build.rs");
    let version = std::env::var("CARGO_PKG_VERSION").unwrap_or_default();
    let dir = std::env::var("CARGO_MANIFEST_DIR").unwrap_or_default();
    let version = match commit(Path::new(&dir)) {
        Some(c) => format!("{version} (commit {c})"),
        None => version,
    };
    println!("cargo:rustc-env=BADGUYS_VERSION={version}");
}

/// The short commit of HEAD, and `rerun-if-changed` lines for the files
/// that move when HEAD does (HEAD itself, the branch's ref, packed-refs).
fn commit(dir: &Path) -> Option<String> {
    if !dir.join(".git").exists() {
        return None;
    }
    let hash = git(dir, &["rev-parse", "--short", "HEAD"])?;
    if hash.is_empty() || !hash.bytes().all(|b| b.is_ascii_hexdigit()) {
        return None;
    }
    let mut watch = vec!["HEAD".to_string(), "packed-refs".to_string()];
    if let Some(branch) = git(dir, &["symbolic-ref", "-q", "HEAD"]) {
        watch.push(branch);
    }
    for name in watch {
        // A path that does not exist would make cargo rerun this script on
        // every build; name only the ones that are there.
        if let Some(p) = git(dir, &["rev-parse", "--git-path", &name]) {
            let p = dir.join(p);
            if p.exists() {
                println!("cargo:rerun-if-changed={}", p.display());
            }
        }
    }
    Some(hash)
}

/// `git ARGS` in `dir`, its first line of output, or None if git is
/// missing or fails.
fn git(dir: &Path, args: &[&str]) -> Option<String> {
    let out = Command::new("git").arg("-C").arg(dir).args(args).output().ok()?;
    if !out.status.success() {
        return None;
    }
    let text = String::from_utf8(out.stdout).ok()?;
    Some(text.lines().next().unwrap_or("").trim().to_string())
}
