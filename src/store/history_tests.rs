//! Tests of the history database: batches applied, replaced by generation, and read back.

use super::*;
use crate::parse::{Rule, What};
use crate::store::batch::{Change, HistEvent, DAY};
use rusqlite::params;

fn ev(addr: &str, day: i64, user: &'static [u8]) -> HistEvent<'static> {
    HistEvent {
        what: What::Attack(Rule::InvalidUser),
        addr: addr.parse().unwrap(),
        user: Some(user),
        time: day * DAY + 3600,
        host: b"gw",
        count: 1,
        ever_listed: false,
    }
}

fn batch(evs: &[HistEvent<'static>]) -> DayBatch {
    DayBatch::from_events(evs.iter().copied(), [])
}

fn total(h: &History) -> u64 {
    h.rules(0).unwrap().iter().map(|r| r.1).sum()
}

#[test]
fn same_generation_counts_once_and_replaces() {
    let d = tempfile::tempdir().unwrap();
    let mut h = History::open(&d.path().join(FILE_NAME)).unwrap();
    let b1 = batch(&[ev("192.0.2.1", 100, b"root"), ev("192.0.2.2", 100, b"admin")]);
    assert_eq!(h.apply(&b1, 1).unwrap(), Applied::Added);
    // The crash case: history committed generation 1, the state did not;
    // the same lines are read and applied again as generation 1.
    assert_eq!(h.apply(&b1, 1).unwrap(), Applied::Replaced);
    assert_eq!(total(&h), 2);
    assert_eq!(h.top_addrs(0, 10).unwrap().len(), 2);
    // A rerun that read one more line replaces the batch with the larger one.
    let mut b1b = b1.clone();
    b1b.add_event(&ev("192.0.2.3", 100, b"root"));
    b1b.add_change("192.0.2.3".parse().unwrap(), Change::FirstSeen, 100 * DAY);
    assert_eq!(h.apply(&b1b, 1).unwrap(), Applied::Replaced);
    assert_eq!(total(&h), 3);
    assert_eq!(h.top_users(0, 10).unwrap().0, vec![(b"root".to_vec(), 2), (b"admin".to_vec(), 1)]);
    assert_eq!(h.timeline(By::Day, 0).unwrap()[0].first_seen, 1);
    assert_eq!(h.apply(&batch(&[ev("192.0.2.9", 101, b"x")]), 2).unwrap(), Applied::Added);
    assert_eq!(total(&h), 4);
    // Older than held: refused, nothing written.
    assert_eq!(h.apply(&b1, 1).unwrap(), Applied::Stale);
    assert_eq!(total(&h), 4);
    assert_eq!(h.generation().unwrap(), 2);
    drop(h);
    // It survives reopening.
    let h = History::open(&d.path().join(FILE_NAME)).unwrap();
    assert_eq!((total(&h), h.generation().unwrap()), (4, 2));
    let mode: String = h.conn.query_row("PRAGMA journal_mode", [], |r| r.get(0)).unwrap();
    assert_eq!(mode, "wal");
}

#[test]
fn retention_drops_old_days() {
    let d = tempfile::tempdir().unwrap();
    let mut h = History::open(&d.path().join(FILE_NAME)).unwrap();
    h.keep_days = 10;
    h.apply(&batch(&[ev("192.0.2.1", 100, b"a")]), 1).unwrap();
    h.apply(&batch(&[ev("192.0.2.1", 105, b"a")]), 2).unwrap();
    assert_eq!(h.span().unwrap(), Some((100, 105)));
    h.apply(&batch(&[ev("192.0.2.1", 110, b"a")]), 3).unwrap();
    assert_eq!(h.span().unwrap(), Some((105, 110)), "day 100 is 11 days before day 110");
    assert_eq!(h.top_users(0, 5).unwrap().0, vec![(b"a".to_vec(), 2)]);
}

#[test]
fn user_names_are_bounded_per_day() {
    let d = tempfile::tempdir().unwrap();
    let mut h = History::open(&d.path().join(FILE_NAME)).unwrap();
    let names: Vec<&'static [u8]> =
        (0..TOP_USERS + 5).map(|i| &*Box::leak(format!("user{i:05}").into_bytes().into_boxed_slice())).collect();
    let evs: Vec<_> = names.iter().map(|u| ev("192.0.2.1", 7, u)).collect();
    h.apply(&batch(&evs), 1).unwrap();
    let kept: i64 = h.conn.query_row("SELECT count(*) FROM user_day", [], |r| r.get(0)).unwrap();
    assert_eq!(kept as usize, TOP_USERS);
    let (top, rest) = h.top_users(0, 10).unwrap();
    assert_eq!((top.len(), rest), (10, (TOP_USERS + 5 - 10) as u64));
    // Replacing the batch undoes the overflow too.
    h.apply(&batch(&evs[..3]), 1).unwrap();
    let (top, rest) = h.top_users(0, 10).unwrap();
    assert_eq!((top.len(), rest), (3, 0));
}

#[test]
fn timelines_by_month_and_year() {
    let d = tempfile::tempdir().unwrap();
    let mut h = History::open(&d.path().join(FILE_NAME)).unwrap();
    // 2024-01-31, 2024-02-01, 2024-02-02 (days 19753..19755).
    let evs = [ev("192.0.2.1", 19753, b"a"), ev("192.0.2.1", 19754, b"a"), ev("192.0.2.2", 19755, b"a")];
    h.apply(&batch(&evs), 1).unwrap();
    let m = h.timeline(By::Month, 0).unwrap();
    assert_eq!(m.iter().map(|p| (p.label.as_str(), p.events)).collect::<Vec<_>>(), [("2024-01", 1), ("2024-02", 2)]);
    assert_eq!(h.timeline(By::Year, 0).unwrap()[0].label, "2024");
    assert_eq!(h.timeline(By::Day, 19755).unwrap().len(), 1);
    assert_eq!(h.hours(0).unwrap()[1], 3);
    assert_eq!(h.hosts(0).unwrap()[0], HostRow { host: b"gw".to_vec(), events: 3, addrs: 2 });
}

#[test]
fn logins_of_listed_addresses_only() {
    let d = tempfile::tempdir().unwrap();
    let mut h = History::open(&d.path().join(FILE_NAME)).unwrap();
    let mut a = ev("192.0.2.1", 5, b"deploy");
    a.what = What::Login;
    let mut b = a;
    b.ever_listed = true;
    b.time += 60;
    h.apply(&batch(&[a, b]), 1).unwrap();
    let l = h.logins(0).unwrap();
    assert_eq!(l.len(), 1);
    assert_eq!((l[0].count, l[0].last, l[0].user.as_slice()), (1, 5 * DAY + 3660, &b"deploy"[..]));
}

#[test]
fn path_beside_the_state() {
    assert_eq!(
        path_for(Path::new("/var/lib/badguys/state"), None),
        Some(PathBuf::from("/var/lib/badguys/history.sqlite"))
    );
    assert_eq!(path_for(Path::new("/x/state"), Some(Path::new("none"))), None);
}

/// Schema 1, as the first version wrote it.
const SCHEMA_1: &str = "
CREATE TABLE meta (key TEXT PRIMARY KEY, value) WITHOUT ROWID;
CREATE TABLE rule_day (day INTEGER, rule TEXT, events INTEGER, PRIMARY KEY (day, rule)) WITHOUT ROWID;
CREATE TABLE hour_day (day INTEGER, hour INTEGER, events INTEGER, PRIMARY KEY (day, hour)) WITHOUT ROWID;
CREATE TABLE addr_day (day INTEGER, addr TEXT, rule TEXT, host BLOB, events INTEGER,
    PRIMARY KEY (day, addr, rule, host)) WITHOUT ROWID;
CREATE TABLE change_day (day INTEGER, addr TEXT, kind TEXT, n INTEGER, PRIMARY KEY (day, addr, kind)) WITHOUT ROWID;
CREATE TABLE login_day (day INTEGER, addr TEXT, user BLOB, host BLOB, n INTEGER, last INTEGER,
    PRIMARY KEY (day, addr, user, host)) WITHOUT ROWID;
CREATE TABLE user_day (day INTEGER, user BLOB, events INTEGER, PRIMARY KEY (day, user)) WITHOUT ROWID;
CREATE TABLE user_rest (day INTEGER PRIMARY KEY, events INTEGER);
INSERT INTO meta VALUES ('schema', 1);
";

/// Writes `b` into a schema 1 database the way schema 1 did (adding to the
/// counters); returns its rows in schema 1's `last_batch` JSON.
fn write_v1(c: &Connection, b: &DayBatch) -> String {
    let mut rows = Vec::new();
    let add = |sql: &str, p: &[&dyn rusqlite::ToSql]| c.execute(sql, p).unwrap();
    for (&day, d) in &b.days {
        for (r, n) in d.rules() {
            add(
                "INSERT INTO rule_day VALUES (?1, ?2, ?3) ON CONFLICT DO UPDATE SET events = events + ?3",
                params![day, r, n as i64],
            );
            rows.push(serde_json::json!({"t": "Rule", "day": day, "a": r, "b": [], "c": [], "n": n, "last": 0}));
        }
        for (h, n) in d.hours() {
            add(
                "INSERT INTO hour_day VALUES (?1, ?2, ?3) ON CONFLICT DO UPDATE SET events = events + ?3",
                params![day, h, n as i64],
            );
            rows.push(
                serde_json::json!({"t": "Hour", "day": day, "a": h.to_string(), "b": [], "c": [], "n": n, "last": 0}),
            );
        }
        for ((ip, host), counts) in &d.addrs {
            let host = b.host(*host);
            for r in Rule::ALL {
                let n = counts.get(r);
                if n > 0 {
                    let a = b.key(*ip);
                    add("INSERT INTO addr_day VALUES (?1, ?2, ?3, ?4, ?5) ON CONFLICT DO UPDATE SET events = events + ?5",
                        params![day, a, r.name(), host, n as i64]);
                    rows.push(serde_json::json!({"t": "Addr", "day": day, "a": a, "b": r.name().as_bytes(), "c": host, "n": n, "last": 0}));
                }
            }
        }
        for ((ip, k), &n) in &d.changes {
            let a = b.key(*ip);
            add(
                "INSERT INTO change_day VALUES (?1, ?2, ?3, ?4) ON CONFLICT DO UPDATE SET n = n + ?4",
                params![day, a, k.name(), n as i64],
            );
            rows.push(serde_json::json!({"t": "Change", "day": day, "a": a, "b": k.name().as_bytes(), "c": [], "n": n, "last": 0}));
        }
        for (u, &n) in &d.users {
            add(
                "INSERT INTO user_day VALUES (?1, ?2, ?3) ON CONFLICT DO UPDATE SET events = events + ?3",
                params![day, u, n as i64],
            );
            rows.push(serde_json::json!({"t": "User", "day": day, "a": "", "b": u, "c": [], "n": n, "last": 0}));
        }
    }
    serde_json::to_string(&rows).unwrap()
}

/// Every figure the views show, for comparing two databases.
fn figures(h: &History) -> String {
    format!(
        "{:?}\n{:?}\n{:?}\n{:?}\n{:?}\n{:?}\n{:?}\n{:?}",
        h.timeline(By::Day, 0).unwrap(),
        h.timeline(By::Month, 0).unwrap(),
        h.rules(0).unwrap(),
        h.hours(0).unwrap(),
        h.top_users(0, 10).unwrap(),
        h.hosts(0).unwrap(),
        h.hosts(101).unwrap(),
        h.top_addrs(0, 10).unwrap(),
    )
}

fn two_batches() -> (DayBatch, DayBatch) {
    let mut b1 = batch(&[ev("192.0.2.1", 100, b"root"), ev("192.0.2.2", 100, b"admin"), ev("192.0.2.1", 101, b"x")]);
    b1.add_change("192.0.2.1".parse().unwrap(), Change::FirstSeen, 100 * DAY);
    let mut other = ev("192.0.2.3", 102, b"root");
    other.host = b"web";
    let mut b2 = batch(&[ev("192.0.2.1", 102, b"root"), other]);
    b2.add_change("192.0.2.3".parse().unwrap(), Change::Listed, 102 * DAY);
    (b1, b2)
}

#[test]
fn schema_1_is_upgraded_in_place_with_the_same_figures() {
    let d = tempfile::tempdir().unwrap();
    let (b1, b2) = two_batches();
    // Written by this version.
    let mut now = History::open(&d.path().join("new.sqlite")).unwrap();
    now.apply(&b1, 1).unwrap();
    now.apply(&b2, 2).unwrap();
    // The same batches as schema 1 wrote them, generation 2 last.
    let old = d.path().join("old.sqlite");
    {
        let c = Connection::open(&old).unwrap();
        c.execute_batch(SCHEMA_1).unwrap();
        write_v1(&c, &b1);
        let last = write_v1(&c, &b2);
        c.execute("INSERT INTO meta VALUES ('generation', 2), ('last_batch', ?1)", [last]).unwrap();
    }
    let mut up = History::open(&old).unwrap();
    let v: i64 = up.conn.query_row("SELECT value FROM meta WHERE key = 'schema'", [], |r| r.get(0)).unwrap();
    assert_eq!(v, SCHEMA_VERSION);
    assert_eq!(figures(&up), figures(&now));
    assert_eq!(up.hosts(0).unwrap()[0], HostRow { host: b"gw".to_vec(), events: 4, addrs: 2 });
    // The batch schema 1 wrote last is still replaced, not added to.
    let mut b2b = b2.clone();
    b2b.add_event(&ev("192.0.2.9", 102, b"admin"));
    assert_eq!(up.apply(&b2b, 2).unwrap(), Applied::Replaced);
    assert_eq!(now.apply(&b2b, 2).unwrap(), Applied::Replaced);
    assert_eq!(figures(&up), figures(&now));
    drop(up);
    // Reopening does not upgrade twice.
    let up = History::open(&old).unwrap();
    assert_eq!(figures(&up), figures(&now));
}

#[test]
fn replacing_a_batch_restores_the_summaries() {
    let d = tempfile::tempdir().unwrap();
    let (b1, b2) = two_batches();
    let mut h = History::open(&d.path().join(FILE_NAME)).unwrap();
    h.apply(&b1, 1).unwrap();
    let one = figures(&h);
    // Generation 2 written, then replaced by an empty rerun: as after 1.
    h.apply(&b2, 2).unwrap();
    assert_eq!(h.hosts(0).unwrap().len(), 2);
    assert_eq!(h.apply(&DayBatch::new(), 2).unwrap(), Applied::Replaced);
    assert_eq!(figures(&h), one);
    // Distinct addresses per host from a day on: 192.0.2.1 was seen on day 101.
    assert_eq!(h.hosts(101).unwrap()[0], HostRow { host: b"gw".to_vec(), events: 1, addrs: 1 });
    let t = h.timeline(By::Day, 0).unwrap();
    assert_eq!(t.iter().map(|p| (p.day, p.events, p.first_seen)).collect::<Vec<_>>(), [(100, 2, 1), (101, 1, 0)]);
}

#[test]
fn a_generation_written_in_parts_counts_as_one_batch() {
    let users: [&'static [u8]; 3] = [b"root", b"admin", b"oracle"];
    let evs: Vec<_> =
        (0..30i64).map(|i| ev(&format!("192.0.2.{}", i % 7), 100 + i % 3, users[i as usize % 3])).collect();
    let d = tempfile::tempdir().unwrap();
    let mut one = History::open(&d.path().join("one.sqlite")).unwrap();
    one.apply(&batch(&evs), 1).unwrap();
    one.apply(&batch(&evs[..12]), 2).unwrap();
    let mut parts = History::open(&d.path().join("parts.sqlite")).unwrap();
    let in_parts = |h: &mut History, g: u64, evs: &[HistEvent<'static>]| {
        assert_eq!(h.begin_step(g).unwrap(), g);
        for c in evs.chunks(4) {
            h.write(&batch(c)).unwrap();
            // A step's transaction stays open until its commit.
            assert_eq!(h.begin_step(g + 5).unwrap(), g);
        }
        h.commit().unwrap();
    };
    in_parts(&mut parts, 1, &evs);
    // Generation 2 touches rows of generation 1 in several parts: `prev`
    // keeps the value from before its first touch.
    in_parts(&mut parts, 2, &evs[..12]);
    assert_eq!(figures(&one), figures(&parts));
    // A rerun after a crash replaces generation 2, again in parts.
    assert_eq!(parts.begin(2).unwrap(), Applied::Replaced);
    parts.abort();
    in_parts(&mut parts, 2, &evs[..12]);
    assert_eq!(figures(&one), figures(&parts));
    // A state file that failed to be written after generation 3 was
    // committed: the next save adds what came since to generation 3.
    one.apply(&batch(&evs[..20]), 3).unwrap();
    parts.apply(&batch(&evs[..8]), 3).unwrap();
    parts.unsaved = Some(3);
    assert_eq!(parts.apply(&batch(&evs[8..20]), 3).unwrap(), Applied::Added);
    assert_eq!(figures(&one), figures(&parts));
    // And a crash then (a rerun from the state of generation 2) replaces all of it.
    parts.unsaved = None;
    assert_eq!(parts.apply(&batch(&evs[..20]), 3).unwrap(), Applied::Replaced);
    assert_eq!(figures(&one), figures(&parts));
}

#[test]
fn distinct_addresses_per_host_agree_between_the_bare_count_and_the_grouping() {
    let d = tempfile::tempdir().unwrap();
    let mut h = History::open(&d.path().join(FILE_NAME)).unwrap();
    // One host: 192.0.2.1 last on day 10, .2 on day 12, .3 on days 11 and 13.
    let evs =
        [ev("192.0.2.1", 10, b"a"), ev("192.0.2.3", 11, b"a"), ev("192.0.2.2", 12, b"a"), ev("192.0.2.3", 13, b"a")];
    h.apply(&batch(&evs), 1).unwrap();
    // From the first day: every row counts (the bare count).
    assert_eq!(h.hosts(0).unwrap(), [HostRow { host: b"gw".to_vec(), events: 4, addrs: 3 }]);
    // From day 12: .1 was last seen before it, so the grouping counts.
    assert_eq!(h.hosts(12).unwrap(), [HostRow { host: b"gw".to_vec(), events: 2, addrs: 2 }]);
    assert_eq!(h.hosts(13).unwrap(), [HostRow { host: b"gw".to_vec(), events: 1, addrs: 1 }]);
    // A second host: never the bare count of both.
    let mut other = ev("192.0.2.9", 13, b"a");
    other.host = b"web";
    h.apply(&batch(&[other]), 2).unwrap();
    let mut rows = h.hosts(0).unwrap();
    rows.sort_by(|a, b| a.host.cmp(&b.host));
    assert_eq!(
        rows,
        [HostRow { host: b"gw".to_vec(), events: 4, addrs: 3 }, HostRow { host: b"web".to_vec(), events: 1, addrs: 1 }]
    );
}

#[test]
fn many_rows_numbers_each_copy_of_the_values() {
    let one = "INSERT INTO t (a, b, c) VALUES (?1, ?2, 0) ON CONFLICT (a) DO UPDATE SET b = excluded.b";
    assert_eq!(
        crate::store::history_write::many_rows(one, 2, 3),
        "INSERT INTO t (a, b, c) VALUES (?1, ?2, 0), (?3, ?4, 0), (?5, ?6, 0) ON CONFLICT (a) DO UPDATE SET b = excluded.b"
    );
    assert_eq!(crate::store::history_write::many_rows(one, 2, 1), one);
}

/// Every row of the tables written in chunks, with `gen` and `prev`.
fn rows_of(h: &History) -> String {
    let mut out = String::new();
    for q in [
        "SELECT day, addr, rule, host, events, gen, prev FROM addr_day ORDER BY day, addr, rule, host",
        "SELECT day, addr, kind, n, gen, prev FROM change_day ORDER BY day, addr, kind",
        "SELECT host, addr, last_day, gen, prev FROM host_addr ORDER BY host, addr",
        "SELECT day, user, events, gen, prev FROM user_day ORDER BY day, user",
    ] {
        let mut st = h.conn.prepare(q).unwrap();
        let n = st.column_count();
        let rows = st
            .query_map([], |r| {
                (0..n)
                    .map(|i| r.get::<_, rusqlite::types::Value>(i).map(|v| format!("{v:?}")))
                    .collect::<Result<Vec<_>, _>>()
            })
            .unwrap();
        for r in rows {
            out.push_str(&r.unwrap().join(" "));
            out.push('\n');
        }
    }
    out
}

#[test]
fn rows_written_in_chunks_are_the_rows_written_one_by_one() {
    // 700 addresses on two hosts over three days, some on two rules; a
    // second generation in parts over half of them and 100 new ones; then
    // that generation replaced.
    let evs: Vec<HistEvent<'static>> = (0..1400i64)
        .map(|i| {
            let user: &'static [u8] = Box::leak(format!("u{}", i % 300).into_bytes().into_boxed_slice());
            let mut e = ev(&format!("10.{}.{}.{}", i % 3, (i / 3) % 250, i % 700 / 250), 100 + i % 3, user);
            if i % 5 == 0 {
                e.what = What::Attack(Rule::RootDisconnect);
            }
            if i % 2 == 0 {
                e.host = b"web";
            }
            e
        })
        .collect();
    let later: Vec<HistEvent<'static>> =
        evs[..700].iter().chain(&evs[1300..]).map(|e| HistEvent { time: e.time + DAY, ..*e }).collect();
    let run = |chunk: usize| {
        crate::store::history_write::TEST_CHUNK.with(|c| c.set(chunk));
        let d = tempfile::tempdir().unwrap();
        let mut h = History::open(&d.path().join(FILE_NAME)).unwrap();
        let mut b = batch(&evs);
        for e in &evs {
            b.add_change(e.addr, Change::FirstSeen, e.time);
        }
        h.apply(&b, 1).unwrap();
        let mut seen = vec![rows_of(&h)];
        let parts = |h: &mut History| {
            h.begin_step(2).unwrap();
            for c in later.chunks(300) {
                let mut b = batch(c);
                for e in c {
                    b.add_change(e.addr, Change::Listed, e.time);
                }
                h.write(&b).unwrap();
            }
            h.commit().unwrap();
        };
        parts(&mut h);
        seen.push(rows_of(&h));
        assert_eq!(h.begin(2).unwrap(), Applied::Replaced);
        h.abort();
        parts(&mut h);
        seen.push(rows_of(&h));
        seen.push(figures(&h));
        crate::store::history_write::TEST_CHUNK.with(|c| c.set(crate::store::history_write::CHUNK));
        seen
    };
    let by_row = run(usize::MAX);
    assert!(by_row[0].lines().count() > 1000, "{} rows", by_row[0].lines().count());
    assert_eq!(run(7), by_row);
    assert_eq!(run(crate::store::history_write::CHUNK), by_row);
}

#[test]
fn temporary_files_stay_in_memory() {
    // A many-row upsert's statement journal went to a temporary file past
    // 64 KiB: 30 times the writes of the database itself on a first sync.
    let d = tempfile::tempdir().unwrap();
    let h = History::open(&d.path().join(FILE_NAME)).unwrap();
    let store: i64 = h.conn.query_row("PRAGMA temp_store", [], |r| r.get(0)).unwrap();
    assert_eq!(store, 2, "temp_store = MEMORY");
}

#[test]
fn the_index_of_a_first_syncs_host_addr_rows_is_built_after_them_as_the_schema_makes_it() {
    let evs: Vec<HistEvent<'static>> = (0..1500i64)
        .map(|i| {
            let mut e = ev(&format!("10.9.{}.{}", i / 250, i % 250), 100 + i % 4, b"u");
            if i % 3 == 0 {
                e.host = b"web";
            }
            e
        })
        .collect();
    let index_sql = |h: &History| -> String {
        h.conn.query_row("SELECT sql FROM sqlite_master WHERE name = 'host_addr_last'", [], |r| r.get(0)).unwrap()
    };
    let run = |min: usize| {
        TEST_REBUILD_MIN.with(|c| c.set(min));
        let d = tempfile::tempdir().unwrap();
        let mut h = History::open(&d.path().join(FILE_NAME)).unwrap();
        let made = index_sql(&h);
        h.apply(&batch(&evs), 1).unwrap();
        // A second generation into the table no longer empty: row by row.
        h.apply(&batch(&evs[..700]), 2).unwrap();
        assert_eq!(index_sql(&h), made);
        let plan: String = h
            .conn
            .query_row("EXPLAIN QUERY PLAN SELECT 1 FROM host_addr WHERE last_day < 101", [], |r| r.get(3))
            .unwrap();
        assert!(plan.contains("host_addr_last"), "{plan}");
        TEST_REBUILD_MIN.with(|c| c.set(REBUILD_MIN));
        (rows_of(&h), figures(&h), h.hosts(102).unwrap())
    };
    assert_eq!(run(0), run(usize::MAX));
}
