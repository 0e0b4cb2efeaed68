//! Writing one generation into the history: the upserts that keep each
//! counter row's value from before the generation in `prev` (captured at
//! the generation's first write of the row, however many parts of a step
//! write it), the undo of a generation to replace it, and retention. The
//! transaction around them is [`super::history::History::begin`]'s. The
//! big tables' rows go in key order, many to a statement ([`upsert_rows`]).

use std::collections::{HashMap, HashSet};
use std::net::IpAddr;

use rusqlite::{params, Connection, OptionalExtension, Statement};

use super::batch::{Change, Counts, DayBatch};
use super::history::{LastDayMap, LastDays, TOP_USERS};

/// The upsert of a counter row of generation `?g`: the value before `g`
/// goes to `prev` the first time `g` writes the row.
macro_rules! upsert {
    ($table:literal, $keys:literal, $marks:literal, $col:literal) => {
        concat!(
            "INSERT INTO ",
            $table,
            " (",
            $keys,
            ", ",
            $col,
            ", gen, prev) VALUES (",
            $marks,
            ", 0) ",
            "ON CONFLICT (",
            $keys,
            ") DO UPDATE SET prev = CASE WHEN gen IS excluded.gen THEN prev ELSE ",
            $col,
            " END, gen = excluded.gen, ",
            $col,
            " = ",
            $col,
            " + excluded.",
            $col
        )
    };
}

const UP_RULE: &str = upsert!("rule_day", "day, rule", "?1, ?2, ?3, ?4", "events");
const UP_HOUR: &str = upsert!("hour_day", "day, hour", "?1, ?2, ?3, ?4", "events");
const UP_ADDR: &str = upsert!("addr_day", "day, addr, rule, host", "?1, ?2, ?3, ?4, ?5, ?6", "events");
const UP_CHANGE: &str = upsert!("change_day", "day, addr, kind", "?1, ?2, ?3, ?4, ?5", "n");
const UP_USER: &str = upsert!("user_day", "day, user", "?1, ?2, ?3, ?4", "events");
const UP_REST: &str = upsert!("user_rest", "day", "?1, ?2, ?3", "events");
const UP_HOST_DAY: &str = upsert!("host_day", "day, host", "?1, ?2, ?3, ?4", "events");
const UP_CHANGE_SUM: &str = upsert!("change_sum", "day, kind", "?1, ?2, ?3, ?4", "n");
const UP_LOGIN: &str = "INSERT INTO login_day (day, addr, user, host, n, last, gen, prev, prev_last) \
     VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, 0, NULL) ON CONFLICT (day, addr, user, host) DO UPDATE SET \
     prev = CASE WHEN gen IS excluded.gen THEN prev ELSE n END, \
     prev_last = CASE WHEN gen IS excluded.gen THEN prev_last ELSE last END, \
     gen = excluded.gen, n = n + excluded.n, last = max(coalesce(last, 0), excluded.last)";
const UP_HOST_ADDR: &str = "INSERT INTO host_addr (host, addr, last_day, gen, prev) VALUES (?1, ?2, ?3, ?4, NULL) \
     ON CONFLICT (host, addr) DO UPDATE SET \
     prev = CASE WHEN gen IS excluded.gen THEN prev ELSE last_day END, \
     gen = excluded.gen, last_day = max(last_day, excluded.last_day)";

/// An `addr_day` row to write: (address key, host, counters, batch key).
type AddrRow<'a> = (String, &'a [u8], &'a Counts, (IpAddr, u32));

/// Adds `batch` as generation `g`. User names past [`TOP_USERS`] on a day
/// go to `user_rest`.
/// Each address's last day per host goes into `last_days` (keyed by the
/// host ids `host_ids` maps the batch's to), for [`write_last_days`] at the
/// commit.
pub(super) fn write_batch(
    tx: &Connection,
    batch: &DayBatch,
    g: i64,
    rule_ids: &[i64],
    (host_ids, last_days): (&[u32], &mut LastDayMap),
) -> rusqlite::Result<()> {
    let mut rule = tx.prepare_cached(UP_RULE)?;
    let mut hour = tx.prepare_cached(UP_HOUR)?;
    let mut rest = tx.prepare_cached(UP_REST)?;
    let mut host_day = tx.prepare_cached(UP_HOST_DAY)?;
    let mut change_sum = tx.prepare_cached(UP_CHANGE_SUM)?;
    let mut login = tx.prepare_cached(UP_LOGIN)?;
    let mut day_users = tx.prepare_cached("SELECT user FROM user_day WHERE day = ?1")?;
    for (&day, d) in &batch.days {
        for (r, n) in d.rules() {
            rule.execute(params![day, r, n as i64, g])?;
        }
        for (h, n) in d.hours() {
            hour.execute(params![day, h, n as i64, g])?;
        }
        // In key order: the rows go into the B-tree in order.
        let mut rows: Vec<AddrRow<'_>> =
            d.addrs.iter().map(|(&(ip, h), c)| (batch.key(ip), batch.host(h), c, (ip, h))).collect();
        rows.sort_unstable_by(|x, y| (&x.0, x.1).cmp(&(&y.0, y.1)));
        // Events per batch host id (a map keyed by the name hashed it for
        // every row).
        let mut hosts = vec![0u64; batch.hosts.len()];
        for (_, _, counts, key) in &rows {
            let any: u64 = counts.iter().map(|(_, n)| n).sum();
            if any > 0 {
                if let Some(n) = hosts.get_mut(key.1 as usize) {
                    *n += any;
                }
                let key = (key.0, host_ids.get(key.1 as usize).copied().unwrap_or(u32::MAX));
                let v = last_days.entry(key).or_insert(day);
                *v = (*v).max(day);
            }
        }
        let addr_rows = rows.iter().flat_map(|(a, h, counts, _)| {
            counts.iter().map(move |(i, n)| (a.as_str(), rule_ids.get(i).copied().unwrap_or(0), *h, n as i64))
        });
        upsert_rows(tx, UP_ADDR, 6, addr_rows, |st, i, &(a, id, h, n)| {
            st.raw_bind_parameter(i, day)?;
            st.raw_bind_parameter(i + 1, a)?;
            st.raw_bind_parameter(i + 2, id)?;
            st.raw_bind_parameter(i + 3, h)?;
            st.raw_bind_parameter(i + 4, n)?;
            st.raw_bind_parameter(i + 5, g)
        })?;
        for (id, n) in hosts.into_iter().enumerate().filter(|&(_, n)| n > 0) {
            host_day.execute(params![day, batch.host(id as u32), n as i64, g])?;
        }
        let mut sums: HashMap<&str, u64> = HashMap::new();
        let mut changes: Vec<(String, Change, u64)> =
            d.changes.iter().map(|(&(ip, c), &n)| (batch.key(ip), c, n)).collect();
        // In key order (see `upsert_rows`): the kind as the table holds it,
        // by name.
        changes.sort_unstable_by(|x, y| (&x.0, x.1.name()).cmp(&(&y.0, y.1.name())));
        for (_, c, n) in &changes {
            *sums.entry(c.name()).or_default() += n;
        }
        upsert_rows(tx, UP_CHANGE, 5, &changes, |st, i, (a, c, n)| {
            st.raw_bind_parameter(i, day)?;
            st.raw_bind_parameter(i + 1, a)?;
            st.raw_bind_parameter(i + 2, c.name())?;
            st.raw_bind_parameter(i + 3, *n as i64)?;
            st.raw_bind_parameter(i + 4, g)
        })?;
        for (k, n) in sums {
            change_sum.execute(params![day, k, n as i64, g])?;
        }
        for ((a, u, h), &(n, last)) in &d.logins {
            login.execute(params![day, a, u, h, n as i64, last, g])?;
        }
        // The most tried first: they are the ones kept when the day fills.
        let mut users: Vec<(&Vec<u8>, u64)> = d.users.iter().map(|(u, &n)| (u, n)).collect();
        users.sort_unstable_by(|x, y| y.1.cmp(&x.1).then_with(|| x.0.cmp(y.0)));
        // The names the day holds already, asked once: a name joins them
        // while there is room; the events of the others are summed into
        // `user_rest` in one upsert.
        let mut rest_n = d.users_rest;
        if !users.is_empty() {
            let mut known: HashSet<Vec<u8>, foldhash::fast::RandomState> =
                day_users.query_map([day], |r| r.get::<_, Vec<u8>>(0))?.collect::<Result<_, _>>()?;
            let mut kept = Vec::with_capacity(users.len().min(TOP_USERS));
            for (u, n) in users {
                if known.contains(u.as_slice()) || (known.len() < TOP_USERS && known.insert(u.clone())) {
                    kept.push((u, n as i64));
                } else {
                    rest_n += n;
                }
            }
            // In key order (see `upsert_rows`).
            kept.sort_unstable();
            upsert_rows(tx, UP_USER, 4, &kept, |st, i, &(u, n)| {
                st.raw_bind_parameter(i, day)?;
                st.raw_bind_parameter(i + 1, u)?;
                st.raw_bind_parameter(i + 2, n)?;
                st.raw_bind_parameter(i + 3, g)
            })?;
        }
        if rest_n > 0 {
            rest.execute(params![day, rest_n as i64, g])?;
        }
    }
    Ok(())
}

/// Writes each address's last day per host of generation `g` to
/// `host_addr`, in key order.
pub(super) fn write_last_days(tx: &Connection, last: &LastDays, g: i64) -> rusqlite::Result<()> {
    let no_host: &[u8] = &[];
    let mut rows: Vec<(&[u8], String, i64)> = last
        .days
        .iter()
        .map(|(&(ip, h), &day)| {
            let host = last.hosts.get(h as usize).map_or(no_host, Vec::as_slice);
            (host, super::batch::key_of(last.v6_prefix, ip), day)
        })
        .collect();
    rows.sort_unstable();
    upsert_rows(tx, UP_HOST_ADDR, 4, &rows, |st, i, (h, a, day)| {
        st.raw_bind_parameter(i, h)?;
        st.raw_bind_parameter(i + 1, a)?;
        st.raw_bind_parameter(i + 2, day)?;
        st.raw_bind_parameter(i + 3, g)
    })
}

/// Rows per execution of an upsert made of many rows ([`upsert_rows`]).
pub(super) const CHUNK: usize = 64;

test_knob!(
    /// The tests write the same batches with other chunk sizes.
    TEST_CHUNK,
    chunk,
    CHUNK
);

/// Runs the one-row upsert `one` (`INSERT … VALUES (?1, …, ?k, …) …`) over
/// `rows`, [`CHUNK`] rows per execution of one statement that holds that
/// many rows' values, the rest one at a time; `bind(statement, i, row)`
/// binds a row's `k` values as parameters `i` to `i + k - 1`.
///
/// Within one execution SQLite keeps its cursor where the last row went:
/// a row in key order past the end of the table (a new day's, as most of
/// a first sync's are) goes in without descending the B-tree from its
/// root, and the statement's set-up and reset are paid once per chunk.
/// The rows are the same as one statement per row would write: a key met
/// twice updates, as the `ON CONFLICT` clause says, in order.
fn upsert_rows<T>(
    tx: &Connection,
    one: &str,
    k: usize,
    rows: impl IntoIterator<Item = T>,
    bind: impl Fn(&mut Statement<'_>, usize, &T) -> rusqlite::Result<()>,
) -> rusqlite::Result<()> {
    let n = chunk();
    // A chunk's rows, not the table's: memory stays that of one chunk.
    let mut buf: Vec<T> = Vec::with_capacity(n.min(CHUNK));
    let mut many = None;
    for row in rows {
        buf.push(row);
        if buf.len() == n {
            let st = match &mut many {
                Some(st) => st,
                None => many.insert(tx.prepare_cached(&many_rows(one, k, n))?),
            };
            for (j, row) in buf.iter().enumerate() {
                bind(st, 1 + j * k, row)?;
            }
            st.raw_execute()?;
            buf.clear();
        }
    }
    let mut st = tx.prepare_cached(one)?;
    for row in &buf {
        bind(&mut st, 1, row)?;
        st.raw_execute()?;
    }
    Ok(())
}

/// The upsert `one` with `rows` rows of values: its `VALUES (…)` group
/// repeated, the parameters `?1`…`?k` of copy `j` numbered from `j * k + 1`.
pub(super) fn many_rows(one: &str, k: usize, rows: usize) -> String {
    let start = one.find(" VALUES (").map_or(0, |i| i + " VALUES ".len());
    let end = start + one[start..].find(')').map_or(0, |i| i + 1);
    let (head, group, tail) = (&one[..start], &one[start..end], &one[end..]);
    let mut sql = String::with_capacity(one.len() + rows * (group.len() + 16));
    sql.push_str(head);
    for j in 0..rows {
        if j > 0 {
            sql.push_str(", ");
        }
        let mut rest = group;
        while let Some(q) = rest.find('?') {
            sql.push_str(&rest[..=q]);
            let digits = rest[q + 1..].bytes().take_while(u8::is_ascii_digit).count();
            let n: usize = rest[q + 1..q + 1 + digits].parse().unwrap_or(0);
            sql.push_str(&(j * k + n).to_string());
            rest = &rest[q + 1 + digits..];
        }
        sql.push_str(rest);
    }
    sql.push_str(tail);
    sql
}

/// Undoes generation `g` over days `a..=b`: every row it wrote gets its
/// value from before `g` back; the rows it created go.
pub(super) fn undo(tx: &Connection, g: i64, a: i64, b: i64) -> rusqlite::Result<()> {
    for (t, col) in [
        ("rule_day", "events"),
        ("hour_day", "events"),
        ("addr_day", "events"),
        ("change_day", "n"),
        ("user_day", "events"),
        ("user_rest", "events"),
        ("host_day", "events"),
        ("change_sum", "n"),
    ] {
        tx.execute(&format!("UPDATE {t} SET {col} = prev WHERE day BETWEEN ?1 AND ?2 AND gen = ?3"), params![a, b, g])?;
        tx.execute(
            &format!("DELETE FROM {t} WHERE day BETWEEN ?1 AND ?2 AND gen = ?3 AND {col} <= 0"),
            params![a, b, g],
        )?;
    }
    tx.execute(
        "UPDATE login_day SET n = prev, last = prev_last WHERE day BETWEEN ?1 AND ?2 AND gen = ?3",
        params![a, b, g],
    )?;
    tx.execute("DELETE FROM login_day WHERE day BETWEEN ?1 AND ?2 AND gen = ?3 AND n <= 0", params![a, b, g])?;
    // Rows of `g` have their last day in the batch's days or later.
    tx.execute("UPDATE host_addr SET last_day = prev WHERE gen = ?1 AND last_day >= ?2", params![g, a])?;
    tx.execute("DELETE FROM host_addr WHERE gen = ?1 AND last_day IS NULL", params![g])?;
    Ok(())
}

/// Deletes every day before `first_kept`: once per new first day (it is
/// remembered in `meta`), or when the batch wrote a day before it.
pub(super) fn prune(tx: &Connection, first_kept: i64, batch_first: i64) -> rusqlite::Result<()> {
    let done: Option<i64> =
        tx.query_row("SELECT value FROM meta WHERE key = 'kept_from'", [], |r| r.get(0)).optional()?;
    if done.is_some_and(|d| d >= first_kept) && batch_first >= first_kept {
        return Ok(());
    }
    for t in [
        "rule_day",
        "hour_day",
        "addr_day",
        "change_day",
        "login_day",
        "user_day",
        "user_rest",
        "host_day",
        "change_sum",
    ] {
        tx.prepare_cached(&format!("DELETE FROM {t} WHERE day < ?1"))?.execute([first_kept])?;
    }
    tx.prepare_cached("DELETE FROM host_addr WHERE last_day < ?1")?.execute([first_kept])?;
    tx.execute("INSERT OR REPLACE INTO meta VALUES ('kept_from', ?1)", [first_kept])?;
    Ok(())
}
