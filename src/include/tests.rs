//! Included lists: formats, signatures with keys made here, replay, age,
//! width and the cap.

use std::path::Path;

use ed25519_dalek::SigningKey;

use super::signify::sign_for_test;
use super::*;

const NOW: i64 = 1_796_000_000;

fn key(seed: u8, keynum: &[u8; 8]) -> (SigningKey, PublicKey) {
    let sk = SigningKey::from_bytes(&[seed; 32]);
    let (pubfile, _) = sign_for_test(&sk, *keynum, b"");
    (sk, PublicKey::parse(&pubfile).unwrap())
}

fn opts(keys: Vec<PublicKey>) -> IncludeOpts {
    IncludeOpts { keys, now: NOW, ..IncludeOpts::default() }
}

fn nets(l: &IncludedList) -> Vec<String> {
    l.nets.iter().map(ToString::to_string).collect()
}

fn export(serial: u64) -> Vec<u8> {
    format!("# badguys serial={serial} generated=2026-12-01T20:00:00Z hosts=3\n192.0.2.7\n198.51.100.0/24\n")
        .into_bytes()
}

#[test]
fn signed_export_is_accepted_with_its_header() {
    let (sk, pk) = key(1, b"AAAAAAAA");
    let (_, signed) = sign_for_test(&sk, *b"AAAAAAAA", &export(1_796_000_000));
    let l = parse(Path::new("f"), &signed, 0, &opts(vec![pk])).unwrap();
    assert_eq!(nets(&l), ["192.0.2.7", "198.51.100.0/24"]);
    let h = l.header.unwrap();
    assert_eq!((h.serial, h.hosts), (1_796_000_000, 3));
    assert_eq!(l.time, h.generated);
    assert_eq!(l.signed_by.as_deref(), Some("4141414141414141"));
}

#[test]
fn rollover_picks_the_key_by_number() {
    let (_, old) = key(1, b"oldoldol");
    let (sk, new) = key(2, b"newnewne");
    let (_, signed) = sign_for_test(&sk, *b"newnewne", &export(5));
    assert!(parse(Path::new("f"), &signed, 0, &opts(vec![old.clone(), new])).is_ok());
    assert!(matches!(parse(Path::new("f"), &signed, 0, &opts(vec![old])), Err(IncludeError::UnknownKey { .. })));
}

#[test]
fn tampered_wrong_key_and_unsigned_are_refused() {
    let (sk, pk) = key(1, b"AAAAAAAA");
    let (_, mut signed) = sign_for_test(&sk, *b"AAAAAAAA", &export(5));
    let o = opts(vec![pk]);
    let n = signed.len();
    signed[n - 3] ^= 1;
    assert!(matches!(parse(Path::new("f"), &signed, 0, &o), Err(IncludeError::Tampered { .. })));
    // Same key number, other key: a forged signature.
    let (_, impostor) = key(9, b"AAAAAAAA");
    let (_, good) = sign_for_test(&sk, *b"AAAAAAAA", &export(5));
    assert!(matches!(parse(Path::new("f"), &good, 0, &opts(vec![impostor])), Err(IncludeError::Tampered { .. })));
    assert!(matches!(parse(Path::new("f"), &good, 0, &opts(vec![])), Err(IncludeError::NoKey { .. })));
    assert!(matches!(parse(Path::new("f"), &export(5), 0, &o), Err(IncludeError::Unsigned { .. })));
    let unsigned = IncludeOpts { allow_unsigned: true, ..o };
    assert_eq!(nets(&parse(Path::new("f"), &export(5), 0, &unsigned).unwrap()).len(), 2);
    // Allowing unsigned lists does not let a bad signature through.
    assert!(matches!(parse(Path::new("f"), &signed, 0, &unsigned), Err(IncludeError::Tampered { .. })));
}

#[test]
fn replay_and_stale() {
    let (sk, pk) = key(1, b"AAAAAAAA");
    let (_, signed) = sign_for_test(&sk, *b"AAAAAAAA", &export(100));
    let o = IncludeOpts { last_serial: Some(101), ..opts(vec![pk.clone()]) };
    assert!(matches!(parse(Path::new("f"), &signed, 0, &o), Err(IncludeError::Replay { serial: 100, last: 101, .. })));
    let o = IncludeOpts { last_serial: Some(100), ..opts(vec![pk.clone()]) };
    assert!(parse(Path::new("f"), &signed, 0, &o).is_ok());
    let generated = chrono::DateTime::parse_from_rfc3339("2026-12-01T20:00:00Z").unwrap().timestamp();
    let o = IncludeOpts { max_age: Some(3600), now: generated + 3601, ..opts(vec![pk.clone()]) };
    match parse(Path::new("f"), &signed, 0, &o) {
        Err(IncludeError::Stale { list, age: 3601, max_age: 3600 }) => assert_eq!(list.nets.len(), 2),
        other => panic!("{other:?}"),
    }
    let o = IncludeOpts { max_age: Some(3600), now: generated + 3600, ..opts(vec![pk]) };
    assert!(parse(Path::new("f"), &signed, 0, &o).is_ok());
    // Without a header the file's modification time counts.
    let o = IncludeOpts { allow_unsigned: true, max_age: Some(10), now: 1000, ..IncludeOpts::default() };
    assert!(parse(Path::new("f"), b"192.0.2.1\n", 995, &o).is_ok());
    assert!(matches!(parse(Path::new("f"), b"192.0.2.1\n", 900, &o), Err(IncludeError::Stale { .. })));
}

#[test]
fn public_list_formats() {
    let o = IncludeOpts { allow_unsigned: true, ..IncludeOpts::default() };
    let drop = b"; Spamhaus DROP List 2026/12/01 - (c) 2026 The Spamhaus Project\n; Last-Modified: Tue, 01 Dec 2026\n\
        192.0.2.0/24 ; SBL000001\r\n198.51.100.0/22 ; SBL000002\n";
    assert_eq!(nets(&parse(Path::new("drop"), drop, 0, &o).unwrap()), ["192.0.2.0/24", "198.51.100.0/22"]);
    let netset = b"#\n# firehol_level1\n#\n# Source URL: https://example.org/\n203.0.113.0/24\n2001:db8::/48\n  \n";
    assert_eq!(nets(&parse(Path::new("n"), netset, 0, &o).unwrap()), ["203.0.113.0/24", "2001:db8::/48"]);
    let de = b"192.0.2.5\n192.0.2.6\n192.0.2.5\n2001:db8::5\n";
    assert_eq!(nets(&parse(Path::new("de"), de, 0, &o).unwrap()), ["192.0.2.5", "192.0.2.6", "2001:db8::5"]);
}

#[test]
fn bad_and_wide_entries_are_skipped_and_counted() {
    let o = IncludeOpts { allow_unsigned: true, ..IncludeOpts::default() };
    let l = parse(Path::new("f"), b"example.com\n0.0.0.0/0\n192.0.2.1 junk\n10.0.0.0/7\n2001:db8::/16\n\xff\n", 0, &o)
        .unwrap();
    assert_eq!(nets(&l), ["192.0.2.1"]);
    assert_eq!(l.skipped, 5);
    assert!(l.skipped_samples[0].starts_with("line 1: example.com: "), "{:?}", l.skipped_samples);
    assert!(l.skipped_samples[1].contains("wider than /8"), "{:?}", l.skipped_samples);
    let wide = IncludeOpts { allow_wide: true, ..o };
    assert_eq!(parse(Path::new("f"), b"10.0.0.0/7\n", 0, &wide).unwrap().nets.len(), 1);
}

#[test]
fn cap_and_bad_header() {
    let o = IncludeOpts { allow_unsigned: true, max_entries: 2, ..IncludeOpts::default() };
    assert!(parse(Path::new("f"), b"192.0.2.1\n192.0.2.2\n192.0.2.1\n", 0, &o).is_ok());
    assert!(matches!(
        parse(Path::new("f"), b"192.0.2.1\n192.0.2.2\n192.0.2.3\n", 0, &o),
        Err(IncludeError::TooMany { max: 2, .. })
    ));
    assert!(matches!(
        parse(Path::new("f"), b"# badguys serial=x generated=now hosts=1\n", 0, &o),
        Err(IncludeError::BadHeader { .. })
    ));
}

#[test]
fn files_missing_and_gzip() {
    let dir = tempfile::tempdir().unwrap();
    let o = IncludeOpts { allow_unsigned: true, ..IncludeOpts::default() };
    assert!(matches!(Include::load(&dir.path().join("none"), &o), Err(IncludeError::Missing { .. })));
    let (sk, pk) = key(3, b"gzgzgzgz");
    let (pubfile, signed) = sign_for_test(&sk, *b"gzgzgzgz", &export(7));
    let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
    std::io::Write::write_all(&mut gz, &signed).unwrap();
    std::fs::write(dir.path().join("list.gz"), gz.finish().unwrap()).unwrap();
    std::fs::write(dir.path().join("k.pub"), pubfile).unwrap();
    assert_eq!(load_key(&dir.path().join("k.pub")).unwrap(), pk);
    let l = Include::load(&dir.path().join("list.gz"), &opts(vec![pk])).unwrap();
    assert_eq!(l.nets.len(), 2);
}
