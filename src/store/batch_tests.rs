//! Tests of the batch: events and changes to days, compact counters, bounds.

use super::*;

#[test]
fn events_to_days() {
    let ip: IpAddr = "2001:db8:1:2::7".parse().unwrap();
    let mut b = DayBatch::with_v6_prefix(64);
    let ev = |what, time, user: Option<&'static [u8]>| HistEvent {
        what,
        addr: ip,
        user,
        time,
        host: b"h1",
        count: 2,
        ever_listed: true,
    };
    b.add_event(&ev(What::Attack(Rule::InvalidUser), 86_400 + 3_600 * 5, Some(b"root")));
    b.add_event(&ev(What::Attack(Rule::InvalidUser), 2 * 86_400 - 1, Some(b"root")));
    b.add_event(&ev(What::Login, 2 * 86_400, Some(b"admin")));
    b.add_change(ip, Change::FirstSeen, 86_400);
    assert_eq!(b.days.len(), 2);
    let d1 = &b.days[&1];
    assert_eq!(d1.rules().collect::<Vec<_>>(), vec![("invalid-user", 4)]);
    assert_eq!(d1.hours().collect::<Vec<_>>(), vec![(5, 2), (23, 2)]);
    let net: IpAddr = "2001:db8:1:2::".parse().unwrap();
    assert_eq!(b.key(net), "2001:db8:1:2::/64");
    assert_eq!(b.events(1, net, b"h1", Rule::InvalidUser), 4);
    assert_eq!(d1.users[&b"root".to_vec()], 4);
    assert_eq!(d1.changes[&(net, Change::FirstSeen)], 1);
    assert_eq!(b.days[&2].logins.values().next(), Some(&(2, 2 * 86_400)));
}

#[test]
fn interleaved_addresses_and_hosts_count_under_their_own_keys() {
    let a: IpAddr = "192.0.2.1".parse().unwrap();
    let v6: IpAddr = "2001:db8:1:2::7".parse().unwrap();
    let mut b = DayBatch::new();
    let ev = |addr, host: &'static [u8], rule| HistEvent {
        what: What::Attack(rule),
        addr,
        user: Some(b"root"),
        time: 10,
        host,
        count: 1,
        ever_listed: false,
    };
    for (addr, host, rule) in [
        (a, &b"h1"[..], Rule::InvalidUser),
        (v6, b"h1", Rule::InvalidUser),
        (a, b"h2", Rule::InvalidUser),
        (a, b"h2", Rule::KexReset),
        (a, b"h1", Rule::InvalidUser),
    ] {
        b.add_event(&ev(addr, host, rule));
    }
    // The key follows a change of prefix, not the address alone.
    b.v6_prefix = 64;
    b.add_event(&ev(v6, b"h1", Rule::InvalidUser));
    let n = |k: &str, r: Rule, h: &[u8]| Some(b.events(0, k.parse().unwrap(), h, r)).filter(|&n| n > 0);
    assert_eq!(n("192.0.2.1", Rule::InvalidUser, b"h1"), Some(2));
    assert_eq!(n("192.0.2.1", Rule::InvalidUser, b"h2"), Some(1));
    assert_eq!(n("192.0.2.1", Rule::KexReset, b"h2"), Some(1));
    assert_eq!(n("2001:db8:1:2::7", Rule::InvalidUser, b"h1"), Some(1));
    assert_eq!(n("2001:db8:1:2::", Rule::InvalidUser, b"h1"), Some(1));
    let d = &b.days[&0];
    assert_eq!(d.addrs.len(), 4);
    assert_eq!(d.users[&b"root".to_vec()], 6);
}

#[test]
fn counts_stay_exact_past_two_rules_and_past_u32() {
    let mut c = Counts::default();
    c.add(Rule::InvalidUser, 3);
    c.add(Rule::KexReset, 1);
    c.add(Rule::InvalidUser, 2);
    assert_eq!((c.get(Rule::InvalidUser), c.get(Rule::KexReset), c.all.is_none()), (5, 1, true));
    let mut d = c.clone();
    // A third rule moves every counter into the box, unchanged.
    d.add(Rule::ALL[Rule::ALL.len() - 1], 7);
    assert!(d.all.is_some());
    assert_eq!((d.get(Rule::InvalidUser), d.get(Rule::KexReset), d.get(Rule::ALL[Rule::ALL.len() - 1])), (5, 1, 7));
    assert_eq!(d.iter().map(|(_, n)| n).sum::<u64>(), 13);
    // Past u32::MAX events too.
    c.add(Rule::KexReset, u64::from(u32::MAX));
    assert_eq!(c.get(Rule::KexReset), 1 + u64::from(u32::MAX));
    assert_eq!(c.get(Rule::InvalidUser), 5);
    // Equal by value, whatever the layout.
    let (mut x, mut y) = (Counts::default(), Counts::default());
    x.add(Rule::InvalidUser, 1);
    x.add(Rule::KexReset, 1);
    y.add(Rule::KexReset, 1);
    y.add(Rule::InvalidUser, 1);
    assert_eq!(x, y);
}

#[test]
fn user_names_and_keys_are_bounded() {
    let mut b = DayBatch::new();
    let names: Vec<Vec<u8>> = (0..USERS_PER_DAY + 3).map(|i| format!("u{i}").into_bytes()).collect();
    for u in &names {
        b.add_event(&HistEvent {
            what: What::Attack(Rule::InvalidUser),
            addr: "192.0.2.1".parse().unwrap(),
            user: Some(u),
            time: 10,
            host: b"h",
            count: 2,
            ever_listed: false,
        });
    }
    let d = &b.days[&0];
    assert_eq!((d.users.len(), d.users_rest), (USERS_PER_DAY, 6));
    assert_eq!(d.users.values().sum::<u64>() + d.users_rest, 2 * names.len() as u64);
    assert!(!b.is_full());
    for i in 0..SPILL_KEYS as u32 {
        b.add_change(IpAddr::V4(i.into()), Change::FirstSeen, 10);
    }
    assert!(b.is_full());
    b.clear();
    assert!(b.is_empty() && !b.is_full());
    assert_eq!(b.host(0), b"h");
}

#[test]
fn keys_are_written_as_display_writes_them() {
    use std::fmt::Write;
    for (a, prefix) in [
        ("192.0.2.7", 128),
        ("0.0.0.0", 128),
        ("255.255.255.255", 64),
        ("2001:db8::1", 128),
        ("2001:db8:0:0:1:0:0:1", 128),
        ("::ffff:192.0.2.9", 128),
        ("::1", 128),
        ("2001:db8:aa:bb:cc:dd:ee:ff", 64),
        ("2001:db8:aa:bb:cc:dd:ee:ff", 48),
        ("2001:db8:aa:bb:cc:dd:ee:ff", 1),
    ] {
        let ip: IpAddr = a.parse().unwrap();
        let c = crate::addr::canonical(ip);
        let mut want = String::new();
        let _ = match c {
            IpAddr::V6(_) if prefix < 128 => write!(want, "{}", Net::new(c, prefix).unwrap()),
            _ => write!(want, "{c}"),
        };
        assert_eq!(key_of(prefix, ip), want, "{a}/{prefix}");
    }
}
