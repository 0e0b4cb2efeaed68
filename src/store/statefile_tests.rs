//! Tests of the state file format: round trips, old files, corruption.
use super::*;
use crate::parse::Rule;
use crate::state::{RECENT_MAX, USERS_KEPT, USER_MAX};

fn sample() -> State {
    let mut st = State::default();
    st.cursors.push(Cursor {
        path: "/var/log/auth log".into(),
        file: FileId { dev: 1, ino: 2, size: 3, mtime: 0 },
        offset: 3,
        fingerprint: 0xdead,
        done: false,
    });
    let r = st.record("2001:db8::1".parse().unwrap());
    r.first = 10;
    r.last = 20;
    r.hits[Rule::KexReset as usize] = 2;
    r.recent = vec![10, 20];
    r.users = vec![b"a,b=c%d\t\xff".to_vec(), Vec::new(), b"%".to_vec()];
    r.listed = Some(20);
    r.was_listed = true;
    r.hosts = vec![1, 0];
    st.hosts = vec![Host { seen: 3, ..Host::default() }, Host { name: b"web 1".to_vec(), seen: 4, ..Host::default() }];
    st.includes.insert(
        "/etc/badguys fleet".into(),
        Included {
            serial: Some(77),
            time: 70,
            loaded: 71,
            key: Some("0011".into()),
            nets: vec!["192.0.2.9".parse().unwrap(), "2001:db8::/48".parse().unwrap()],
        },
    );
    st.dedup.seen(0xabc);
    st.dedup.seen(0xdef);
    st.manual
        .insert("198.51.100.0/24".parse().unwrap(), Manual { since: 5, until: Some(99), reason: "by hand\nx".into() });
    let out = FileId { size: 12, mtime: 34, ..FileId::default() };
    st.meta = Meta { due: Some(99), policy: 0xfeed, out, stale: true, generation: 7, published: true };
    st.published = Some(["198.51.100.0/24".parse().unwrap(), "2001:db8::1/128".parse().unwrap()].into());
    st
}

fn read_head_of(text: &[u8]) -> Option<Meta> {
    let d = tempfile::tempdir().unwrap();
    let p = d.path().join("state");
    std::fs::write(&p, text).unwrap();
    read_head(&p).map(|(_, m)| m)
}

#[test]
fn a_meta_line_without_generation_or_published_set_reads_as_zero_and_unknown() {
    let body = "badguys-state 1\nmeta\tdue=-\tpolicy=00000000000000ab\tout=1,2\tstale=0\n";
    let text = format!("{body}end\t0\tfnv={:016x}\n", crate::fnv1a(body.as_bytes()));
    let st = parse(text.as_bytes()).unwrap();
    assert_eq!((st.meta.generation, st.meta.published, st.published), (0, false, None));
    // An empty set that was recorded is not an unknown one.
    let mut empty = State { published: Some(Default::default()), ..State::default() };
    empty.meta.generation = 1;
    let back = parse(&render(&empty)).unwrap();
    assert_eq!((back.meta.generation, back.published), (1, Some(Default::default())));
}

#[test]
fn round_trip() {
    let st = sample();
    let text = render(&st);
    let back = parse(&text).unwrap();
    assert_eq!(back.cursors, st.cursors);
    assert_eq!(back.records, st.records);
    assert_eq!(back.manual, st.manual);
    assert_eq!(back.journal, st.journal);
    assert_eq!(back.meta, st.meta);
    assert_eq!(back.published, st.published);
    assert_eq!(back.hosts, st.hosts);
    assert_eq!(back.includes, st.includes);
    assert_eq!(back.dedup, st.dedup);
    assert_eq!(read_head_of(&text).map(|m| m.stale), Some(true));
    assert_eq!(read_head_of(&text).map(|m| m.generation), Some(7));
    assert_eq!(render(&back), text);
}

/// `text` with its trailer's checksum made to match its body again.
fn resum(text: &str) -> Vec<u8> {
    let start = text[..text.len() - 1].rfind('\n').unwrap() + 1;
    let (body, end) = text.split_at(start);
    let count = end.split('\t').nth(1).unwrap();
    format!("{body}end\t{count}\tfnv={:016x}\n", crate::fnv1a(body.as_bytes())).into_bytes()
}

#[test]
fn oversized_record_fields_keep_their_newest_part() {
    // What an older version (or a hand edit) may have written: more
    // times and names than counting keeps.
    let mut st = sample();
    let r = st.records.values_mut().next().unwrap();
    r.recent = (0..1500).collect();
    r.users = (0..8).map(|i| format!("u{i}").into_bytes()).collect();
    r.users.push(vec![b'x'; 1000]);
    let back = parse(&render(&st)).unwrap();
    let r = back.records.values().next().unwrap();
    assert_eq!((r.recent.len(), r.recent[0], r.recent[RECENT_MAX - 1]), (RECENT_MAX, 500, 1499));
    assert_eq!(r.users.len(), USERS_KEPT);
    assert_eq!(r.users[0], b"u4");
    assert_eq!(r.users[USERS_KEPT - 1], vec![b'x'; USER_MAX]);
}

#[test]
fn corruption_is_detected() {
    let text = render(&sample());
    let cut = text[..text.len() - 1].iter().rposition(|&b| b == b'\n').unwrap() + 1;
    assert_eq!(parse(&text[..cut]).unwrap_err(), Corrupt::Truncated);
    assert!(matches!(parse(&text[..text.len() - 8]).unwrap_err(), Corrupt::Line(_, _)));
    assert_eq!(parse(b"garbage\n").unwrap_err(), Corrupt::NoHeader);
    assert_eq!(parse(b"badguys-state 9\nend\t0\n").unwrap_err(), Corrupt::Newer(9));
    let t = String::from_utf8(text.clone()).unwrap().replace("first=10", "first=ten");
    assert_eq!(parse(t.as_bytes()).unwrap_err(), Corrupt::Checksum);
    assert!(matches!(parse(&resum(&t)).unwrap_err(), Corrupt::Line(_, _)));
    // Later versions' kinds and keys are ignored.
    let t =
        String::from_utf8(text).unwrap().replace("end\t", "future\tx=1\nend\t").replace("\twas=1", "\twas=1\tnew=2");
    assert!(parse(&resum(&t)).is_ok());
    assert!(parse(&[0xff, 0xfe, 0]).is_err());
}

#[test]
fn every_changed_byte_is_detected() {
    let text = render(&sample());
    assert!(parse(&text).is_ok());
    let mut t = text.clone();
    for i in 0..text.len() {
        for x in 1..=255u8 {
            t[i] ^= x;
            assert!(parse(&t).is_err(), "byte {i} ^ {x:#04x} went unnoticed:\n{}", String::from_utf8_lossy(&t));
            t[i] ^= x;
        }
    }
    // Nor is anything after the trailer, or a checksum that is not on
    // the last line, or spelled another way.
    let s = String::from_utf8(text.clone()).unwrap();
    assert!(parse(format!("{s}# more\n").as_bytes()).is_err());
    assert!(parse(format!("{s}\n").as_bytes()).is_err());
    let upper = s.rsplit_once("fnv=").map(|(a, h)| format!("{a}fnv={}", h.to_uppercase())).unwrap();
    assert_eq!(parse(upper.as_bytes()).unwrap_err(), Corrupt::Checksum);
}

#[test]
fn a_trailer_without_checksum_is_read_and_rewritten_with_one() {
    let text = String::from_utf8(render(&sample())).unwrap();
    let (old, _) = text.rsplit_once("\tfnv=").unwrap();
    let old = format!("{old}\n");
    assert!(old.ends_with("end\t3\n"), "{old}");
    let st = parse(old.as_bytes()).unwrap();
    assert_eq!(render(&st), text.as_bytes());
}

#[test]
fn read_refuses_an_untrusted_state_file() {
    use std::os::unix::fs::PermissionsExt;
    let d = tempfile::tempdir().unwrap();
    let p = d.path().join("state");
    std::fs::write(&p, render(&sample())).unwrap();
    std::fs::set_permissions(&p, std::fs::Permissions::from_mode(0o600)).unwrap();
    assert!(matches!(read(&p), Ok(Some(Ok(_)))));
    assert!(read_head(&p).is_some());
    std::fs::set_permissions(&p, std::fs::Permissions::from_mode(0o620)).unwrap();
    let e = read(&p).unwrap_err().to_string();
    assert!(e.contains("state: is writable by group or others (mode 0620)"), "{e}");
    assert!(read_head(&p).is_none());
    std::fs::set_permissions(&p, std::fs::Permissions::from_mode(0o600)).unwrap();
    let link = d.path().join("link");
    std::os::unix::fs::symlink(&p, &link).unwrap();
    assert!(read(&link).unwrap_err().to_string().contains("is a symbolic link"));
    assert!(read_head(&link).is_none());
    if nix::unistd::geteuid().is_root() {
        std::os::unix::fs::chown(&p, Some(65534), None).unwrap();
        assert!(read(&p).unwrap_err().to_string().contains("owned by uid 65534"));
    }
}

/// The renderer as it was before `textout`: plain `format!`, the
/// reference that `render` must match byte for byte.
fn render_reference(st: &State) -> Vec<u8> {
    use std::fmt::Write;
    let mut s = String::with_capacity(64 + st.records.len() * 160);
    let _ = writeln!(s, "{MAGIC} {VERSION}");
    s.push_str("# badguys state: written by badguys, read by badguys; see badguys(8).\n");
    for c in &st.cursors {
        let _ = writeln!(
            s,
            "cursor\tpath={}\tdev={}\tino={}\toffset={}\tsize={}\tfp={:016x}\tdone={}",
            escape(std::os::unix::ffi::OsStrExt::as_bytes(c.path.as_os_str())),
            c.file.dev,
            c.file.ino,
            c.offset,
            c.file.size,
            c.fingerprint,
            u8::from(c.done)
        );
    }
    if let Some(c) = &st.journal {
        let _ = writeln!(s, "journal\tcursor={}", escape(c.as_bytes()));
    }
    let m = &st.meta;
    let due = m.due.map_or("-".to_string(), |t| t.to_string());
    let _ = writeln!(
        s,
        "meta\tdue={due}\tpolicy={:016x}\tout={},{}\tstale={}\tgen={}\tpublished={}",
        m.policy,
        m.out.size,
        m.out.mtime,
        u8::from(m.stale),
        m.generation,
        u8::from(st.published.is_some())
    );
    let mut ips: Vec<&IpAddr> = st.records.keys().collect();
    ips.sort_by(|a, b| crate::addr::ip_order(**a, **b));
    for ip in ips {
        let r = &st.records[ip];
        let _ = write!(s, "addr\t{ip}\tfirst={}\tlast={}\thits=", r.first, r.last);
        let mut sep = "";
        for rule in Rule::ALL {
            if r.hits[rule as usize] > 0 {
                let _ = write!(s, "{sep}{}:{}", rule.name(), r.hits[rule as usize]);
                sep = ",";
            }
        }
        s.push_str("\trecent=");
        for (i, t) in r.recent.iter().enumerate() {
            let _ = write!(s, "{}{t}", if i > 0 { "," } else { "" });
        }
        s.push_str("\tusers=");
        for (i, u) in r.users.iter().enumerate() {
            // An empty user name is written as a lone "%".
            let _ = write!(s, "{}{}", if i > 0 { "," } else { "" }, if u.is_empty() { "%".into() } else { escape(u) });
        }
        let listed = r.listed.map_or("-".to_string(), |t| t.to_string());
        let _ =
            write!(s, "\tlogins={}\tlogin={}\tlisted={listed}\twas={}", r.logins, r.last_login, u8::from(r.was_listed));
        if !r.hosts.is_empty() {
            s.push_str("\thosts=");
            for (i, h) in r.hosts.iter().enumerate() {
                let _ = write!(s, "{}{h}", if i > 0 { "," } else { "" });
            }
        }
        s.push('\n');
    }
    for (net, m) in &st.manual {
        let until = m.until.map_or("-".to_string(), |t| t.to_string());
        let _ = writeln!(s, "manual\t{net}\tsince={}\tuntil={until}\treason={}", m.since, escape(m.reason.as_bytes()));
    }
    // Not counted in the end marker: a version that does not know the
    // kind skips these lines, and the checksum covers them anyway.
    for net in st.published.iter().flatten() {
        let _ = writeln!(s, "published\t{net}");
    }
    for h in &st.hosts {
        let name = if h.name.is_empty() { "%".into() } else { escape(&h.name) };
        let _ = writeln!(s, "host\t{name}\tseen={}", h.seen);
    }
    for (path, i) in &st.includes {
        let serial = i.serial.map_or("-".to_string(), |n| n.to_string());
        let _ = write!(
            s,
            "include\t{}\tserial={serial}\ttime={}\tloaded={}\tkey={}\tnets=",
            escape(std::os::unix::ffi::OsStrExt::as_bytes(path.as_os_str())),
            i.time,
            i.loaded,
            i.key.as_deref().unwrap_or("-")
        );
        for (n, net) in i.nets.iter().enumerate() {
            let _ = write!(s, "{}{net}", if n > 0 { "," } else { "" });
        }
        s.push('\n');
    }
    if !st.dedup.is_empty() {
        let (a, b) = st.dedup.secret();
        let _ = writeln!(s, "dedupkey\t{a:016x},{b:016x}");
        s.push_str("dedup\t");
        for (n, h) in st.dedup.kept().enumerate() {
            let _ = write!(s, "{}{h:016x}", if n > 0 { "," } else { "" });
        }
        s.push('\n');
    }
    let sum = crate::fnv1a(s.as_bytes());
    let _ = writeln!(s, "end\t{}\tfnv={sum:016x}", st.cursors.len() + st.records.len() + st.manual.len());
    s.into_bytes()
}

/// Percent-encodes everything but printable ASCII other than `%,= `.
fn escape(b: &[u8]) -> String {
    let mut s = String::with_capacity(b.len());
    for &c in b {
        if c.is_ascii_graphic() && !matches!(c, b'%' | b',' | b'=') {
            s.push(c as char);
        } else {
            s.push_str(&format!("%{c:02X}"));
        }
    }
    s
}

#[test]
fn render_matches_the_format_based_reference() {
    let mut st = sample();
    st.journal = Some("s=abc;i=1 x".into());
    st.cursors.push(Cursor {
        path: "/var/log/b\u{e9}=,%".into(),
        file: FileId { dev: u64::MAX, ino: 0, size: 1 << 40, mtime: 0 },
        offset: 1 << 40,
        fingerprint: 1,
        done: true,
    });
    st.meta.due = None;
    for (i, a) in [
        "192.0.2.1",
        "0.0.0.0",
        "255.255.255.255",
        "::",
        "::1",
        "2001:db8:0:0:1::",
        "2001:db8::ffff:0:1",
        "::ffff:198.51.100.9",
        "fe80::1:0:0:0",
    ]
    .iter()
    .enumerate()
    {
        let r = st.record(a.parse().unwrap());
        r.first = -(i as i64);
        r.last = i64::MAX - i as i64;
        for rule in Rule::ALL.iter().skip(i % 3).step_by(2) {
            r.hits[*rule as usize] = u32::MAX / (i as u32 + 1);
        }
        r.recent = (0..i as i64).map(|t| t * 1_000_003).collect();
        r.users = vec![vec![i as u8, 0xff, b' ', b'%'], b"root".to_vec(), Vec::new()];
        r.logins = i as u32;
        r.last_login = if i % 2 == 0 { 0 } else { 1_727_793_800 };
        r.listed = (i % 2 == 0).then_some(i as i64 * 7);
        r.was_listed = i % 3 == 0;
        r.hosts = (0..i as u16 % 4).collect();
    }
    st.manual.insert("2001:db8::/32".parse().unwrap(), Manual { since: -5, until: None, reason: "".into() });
    st.includes.insert("/etc/x".into(), Included { serial: None, time: 1, loaded: 2, key: None, nets: vec![] });
    let want = render_reference(&st);
    assert_eq!(String::from_utf8_lossy(&render(&st)), String::from_utf8_lossy(&want));
    assert_eq!(render(&st), want);
    let one = sample();
    assert_eq!(render(&one), render_reference(&one));
}

#[test]
fn a_repeat_offenders_ban_count_survives_the_file_and_older_files_read_as_none() {
    let mut st = sample();
    let ip: std::net::IpAddr = "192.0.2.3".parse().unwrap();
    let r = st.record(ip);
    (r.first, r.last, r.bans, r.quiet) = (1, 2, 3, 1_700_000_000);
    let text = render(&st);
    assert!(String::from_utf8_lossy(&text).contains("\tbans=3\tquiet=1700000000\n"));
    let back = parse(&text).unwrap();
    assert_eq!((back.records[&ip].bans, back.records[&ip].quiet), (3, 1_700_000_000));
    // A record never banned writes neither key, as before.
    let v6: std::net::IpAddr = "2001:db8::1".parse().unwrap();
    assert_eq!((back.records[&v6].bans, back.records[&v6].quiet), (0, 0));
    assert!(!String::from_utf8_lossy(&text).lines().any(|l| l.contains("2001:db8::1\t") && l.contains("bans=")));
}

#[test]
fn own_rule_times_round_trip_and_stay_bounded() {
    let mut st = sample();
    assert!(!render(&st).windows(5).any(|w| w == b"\town="), "no field without such times");
    let r = st.records.values_mut().next().unwrap();
    r.add_own_times(Rule::MaxStartups, 30, 2, 20);
    r.add_own_times(Rule::FailedPublickey, 25, 1, 3);
    let text = render(&st);
    assert!(String::from_utf8_lossy(&text).contains("\town=maxstartups:30,30/failed-publickey:25\n"));
    let back = parse(&text).unwrap();
    assert_eq!(back.records, st.records);
    // Too many times keep their newest; a rule of a later version is skipped.
    let many: Vec<String> = (0..1500).map(|t| t.to_string()).collect();
    let edited = String::from_utf8(text)
        .unwrap()
        .replace("own=maxstartups:30,30/", &format!("own=later-rule:1/maxstartups:{}/", many.join(",")));
    let back = parse(&resum(&edited)).unwrap();
    let own: Vec<(Rule, usize, i64)> =
        back.records.values().next().unwrap().own_times().map(|(r, t)| (r, t.len(), t[0])).collect();
    assert_eq!(own, [(Rule::MaxStartups, RECENT_MAX, 500), (Rule::FailedPublickey, 1, 25)]);
}

#[test]
fn the_duplicate_checks_key_travels_with_its_hashes_and_keyless_hashes_are_dropped() {
    let st = sample();
    let text = render(&st);
    let back = parse(&text).unwrap();
    assert_eq!(back.dedup.secret(), st.dedup.secret(), "the key is read back");
    assert_eq!(back.dedup, st.dedup);
    // A line hashes the same after the round trip, so a resend read by the
    // next run is still caught.
    let line = |d: &crate::parse::Dedup| d.key(b"s", b"h", b"sshd", Some(1), b"Invalid user a from 192.0.2.1 port 2");
    assert_eq!(line(&back.dedup), line(&st.dedup));
    // An older version's hashes, made without a key, match nothing: dropped.
    let old: String = String::from_utf8(text)
        .unwrap()
        .lines()
        .filter(|l| !l.starts_with("dedupkey"))
        .map(|l| format!("{l}\n"))
        .collect();
    let back = parse(&resum(&old)).unwrap();
    assert!(back.dedup.is_empty());
}

#[test]
fn a_state_past_one_chunk_is_written_in_chunks_with_one_checksum() {
    let mut st = sample();
    for i in 0..3000u32 {
        let r = st.record(std::net::IpAddr::V4((0xc633_6400 + i).into()));
        r.first = i64::from(i);
        r.last = i64::from(i) + 5;
        r.hits[Rule::InvalidUser as usize] = i;
        r.users = vec![format!("user{i}").into_bytes()];
    }
    for i in 0..200u32 {
        st.manual.insert(
            Net::new(std::net::IpAddr::V4((0xcb00_7100 + i).into()), 32).unwrap(),
            Manual { since: 1, until: None, reason: "from the list file".into() },
        );
    }
    let text = render(&st);
    assert!(text.len() > 2 * CHUNK, "{} bytes", text.len());
    // Written a few bytes at a time: the same bytes.
    struct Dribble(Vec<u8>);
    impl std::io::Write for Dribble {
        fn write(&mut self, b: &[u8]) -> std::io::Result<usize> {
            let n = b.len().min(7);
            self.0.extend_from_slice(&b[..n]);
            Ok(n)
        }
        fn flush(&mut self) -> std::io::Result<()> {
            Ok(())
        }
    }
    let mut d = Dribble(Vec::new());
    render_to(&st, &mut d).unwrap();
    assert_eq!(d.0, text);
    // The trailer sums every byte before it, across the chunks.
    let start = text[..text.len() - 1].iter().rposition(|&b| b == b'\n').unwrap() + 1;
    assert_eq!(verify(&text).unwrap(), Some(start));
    assert!(text[start..].ends_with(format!("fnv={:016x}\n", crate::fnv1a(&text[..start])).as_bytes()));
    let back = parse(&text).unwrap();
    assert_eq!(back.records.len(), st.records.len());
    assert_eq!(back.manual.len(), st.manual.len());
    assert_eq!(render(&back), text);
    // And through write_atomic_with, to a file.
    let dir = tempfile::tempdir().unwrap();
    let p = dir.path().join("state");
    crate::store::write_atomic_with(&p, 0o600, &mut |w| render_to(&st, w)).unwrap();
    assert_eq!(std::fs::read(&p).unwrap(), text);
}

#[test]
fn manual_bans_sharing_a_reason_write_it_once_and_read_it_back_shared() {
    let mut st = sample();
    let nets: Vec<Net> =
        ["192.0.2.1", "192.0.2.2", "192.0.2.3", "192.0.2.9"].iter().map(|n| n.parse().unwrap()).collect();
    let shared: std::sync::Arc<str> = "found in /etc/badguys".into();
    for n in &nets[..3] {
        st.manual.insert(*n, Manual { since: 1, until: None, reason: shared.clone() });
    }
    st.manual.insert(nets[3], Manual { since: 1, until: None, reason: "by hand".into() });
    let text = render(&st);
    let s = String::from_utf8_lossy(&text);
    assert_eq!(s.matches("reason=found%20in%20/etc/badguys").count(), 1, "{s}");
    assert_eq!(s.matches("\tsame=1").count(), 2, "{s}");
    let back = parse(&text).unwrap();
    assert_eq!(back.manual, st.manual);
    // One allocation for the three.
    let r = |i: usize| back.manual[&nets[i]].reason.clone();
    assert!(std::sync::Arc::ptr_eq(&r(0), &r(1)) && std::sync::Arc::ptr_eq(&r(1), &r(2)));
    assert_eq!(&*r(3), "by hand");
}
