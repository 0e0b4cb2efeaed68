//! Included lists signed by the real `signify` (Debian's signify-openbsd):
//! the embedded form verifies with its public key, a changed byte or
//! another key is refused, and the key number picks the key on rollover.

use std::process::Command;

use badguys::include::{load_key, Include, IncludeError, IncludeOpts};

use crate::harness::{require, which, Env};

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
