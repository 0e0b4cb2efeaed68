//! The history database: `history.sqlite` beside the state file, SQLite in
//! WAL mode (readers never block the writer; a crash leaves the last
//! committed batch). Owns the schema (documented in badguys(8), HISTORY),
//! applying a [`DayBatch`] once per state generation, retention, and the
//! queries behind `stats` and `report`, which return plain structs.
//!
//! # How the engine writes it
//!
//! Each engine step that changes the state:
//!
//! 1. builds a [`DayBatch`] from the step's events and changes
//!    ([`DayBatch::add_event`] for every event, with `ever_listed` from the
//!    record; [`DayBatch::add_change`] when a record is created, listed,
//!    expired or unbanned);
//! 2. calls `history.apply(&batch, g)` with `g` = the state's generation + 1:
//!    one SQLite transaction holds the batch and `g`;
//! 3. writes the state file carrying generation `g` and renames it into place.
//!
//! A crash between 2 and 3 leaves history at `g` and the state at `g - 1`.
//! The next run starts from the state's (older) cursors, reads the same
//! lines again and applies its batch with generation `g` again:
//! [`History::apply`] with the generation it already holds *replaces* that
//! batch (it keeps the last batch's rows to subtract them) instead of
//! adding it twice. A generation below the stored one is refused
//! ([`Applied::Stale`]). So no event is counted twice or lost, whatever the
//! moment of the crash.

use std::collections::HashMap;
use std::path::{Path, PathBuf};

use rusqlite::{params, Connection, OpenFlags, OptionalExtension, Transaction};

use super::batch::{Change, DayBatch, Row, DAY, T};
use crate::Error;

/// The file name beside the state file.
pub const FILE_NAME: &str = "history.sqlite";
/// Default `--history-days`.
pub const DEFAULT_DAYS: u32 = 400;
/// User names kept per day; the rest are summed in `user_rest`.
pub const TOP_USERS: usize = 1000;
const SCHEMA_VERSION: i64 = 1;

const SCHEMA: &str = "
CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS rule_day (day INTEGER, rule TEXT, events INTEGER, PRIMARY KEY (day, rule)) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS hour_day (day INTEGER, hour INTEGER, events INTEGER, PRIMARY KEY (day, hour)) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS addr_day (day INTEGER, addr TEXT, rule TEXT, host BLOB, events INTEGER,
    PRIMARY KEY (day, addr, rule, host)) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS change_day (day INTEGER, addr TEXT, kind TEXT, n INTEGER,
    PRIMARY KEY (day, addr, kind)) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS login_day (day INTEGER, addr TEXT, user BLOB, host BLOB, n INTEGER, last INTEGER,
    PRIMARY KEY (day, addr, user, host)) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS user_day (day INTEGER, user BLOB, events INTEGER, PRIMARY KEY (day, user)) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS user_rest (day INTEGER PRIMARY KEY, events INTEGER);
";

/// User names with their events, most first, and the events of the rest.
pub type TopUsers = (Vec<(Vec<u8>, u64)>, u64);

/// What [`History::apply`] did.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Applied {
    /// A new generation: added.
    Added,
    /// The generation already held: its batch was replaced by this one.
    Replaced,
    /// Older than the generation held: nothing written.
    Stale,
}

/// An open history database.
pub struct History {
    conn: Connection,
    path: PathBuf,
    /// Days kept, counted back from the newest day written.
    pub keep_days: u32,
}

/// Where the history lives: `flag` (`none` switches it off), else beside
/// the state file.
pub fn path_for(state: &Path, flag: Option<&Path>) -> Option<PathBuf> {
    match flag {
        Some(p) if p == Path::new("none") => None,
        Some(p) => Some(p.to_path_buf()),
        None => Some(state.parent().unwrap_or(Path::new(".")).join(FILE_NAME)),
    }
}

/// One period of a timeline.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Period {
    /// `2024-06-01`, `2024-06` or `2024`.
    pub label: String,
    /// Its first day (day number).
    pub day: i64,
    pub events: u64,
    /// Addresses seen for the first time, newly listed, expired, unbanned.
    pub first_seen: u64,
    pub listed: u64,
    pub expired: u64,
    pub unbanned: u64,
}

/// Timeline granularity.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum By {
    Day,
    Month,
    Year,
}

/// A reporting host's share.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct HostRow {
    pub host: Vec<u8>,
    pub events: u64,
    pub addrs: u64,
}

/// A successful login of an address that was ever listed.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct LoginRow {
    pub addr: String,
    pub user: Vec<u8>,
    pub host: Vec<u8>,
    pub count: u64,
    /// The last one (seconds since the epoch).
    pub last: i64,
}

fn db_err(path: &Path) -> impl Fn(rusqlite::Error) -> Error + '_ {
    move |e| Error::History { path: path.to_path_buf(), msg: e.to_string() }
}

impl History {
    /// Opens (creating it if needed) the database at `path`, in WAL mode.
    pub fn open(path: &Path) -> Result<History, Error> {
        let err = db_err(path);
        let conn = Connection::open(path).map_err(&err)?;
        conn.busy_timeout(std::time::Duration::from_secs(10)).map_err(&err)?;
        // Durable before the state file is renamed: history never behind it.
        conn.execute_batch("PRAGMA journal_mode = WAL; PRAGMA synchronous = FULL;").map_err(&err)?;
        conn.execute_batch(SCHEMA).map_err(&err)?;
        let v: Option<i64> =
            conn.query_row("SELECT value FROM meta WHERE key = 'schema'", [], |r| r.get(0)).optional().map_err(&err)?;
        match v {
            None => {
                conn.execute("INSERT INTO meta VALUES ('schema', ?1)", [SCHEMA_VERSION]).map_err(&err)?;
            }
            Some(v) if v > SCHEMA_VERSION => {
                return Err(Error::History {
                    path: path.to_path_buf(),
                    msg: format!("written by a newer badguys (history schema {v}; this one knows {SCHEMA_VERSION})"),
                })
            }
            Some(_) => {}
        }
        Ok(History { conn, path: path.to_path_buf(), keep_days: DEFAULT_DAYS })
    }

    /// Opens an existing database for the views; `None` when there is none.
    pub fn open_existing(path: &Path) -> Result<Option<History>, Error> {
        if !path.exists() {
            return Ok(None);
        }
        match History::open(path) {
            Ok(h) => Ok(Some(h)),
            // A reader without write access to the directory.
            Err(_) => {
                let err = db_err(path);
                let conn = Connection::open_with_flags(path, OpenFlags::SQLITE_OPEN_READ_ONLY).map_err(&err)?;
                Ok(Some(History { conn, path: path.to_path_buf(), keep_days: DEFAULT_DAYS }))
            }
        }
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    /// The generation of the last batch applied (0: none).
    pub fn generation(&self) -> Result<u64, Error> {
        let g: Option<i64> = self
            .conn
            .query_row("SELECT value FROM meta WHERE key = 'generation'", [], |r| r.get(0))
            .optional()
            .map_err(db_err(&self.path))?;
        Ok(g.unwrap_or(0) as u64)
    }

    /// Applies `batch` as generation `generation`, in one transaction (see
    /// the module doc): a new generation adds, the held one replaces, an
    /// older one is refused. Then drops days older than `keep_days` before
    /// the newest day written.
    pub fn apply(&mut self, batch: &DayBatch, generation: u64) -> Result<Applied, Error> {
        let path = self.path.clone();
        let err = db_err(&path);
        let held = self.generation()?;
        if generation < held {
            return Ok(Applied::Stale);
        }
        let tx = self.conn.transaction().map_err(&err)?;
        let mut outcome = Applied::Added;
        if generation == held && held > 0 {
            let last: Option<String> = tx
                .query_row("SELECT value FROM meta WHERE key = 'last_batch'", [], |r| r.get(0))
                .optional()
                .map_err(&err)?;
            if let Some(text) = last {
                let rows: Vec<Row> = serde_json::from_str(&text)
                    .map_err(|e| Error::History { path: path.clone(), msg: format!("last batch: {e}") })?;
                write_rows(&tx, &rows, -1).map_err(&err)?;
            }
            outcome = Applied::Replaced;
        }
        let rows = batch.rows();
        write_rows(&tx, &rows, 1).map_err(&err)?;
        let text = serde_json::to_string(&rows).unwrap_or_else(|_| "[]".into());
        tx.execute("INSERT OR REPLACE INTO meta VALUES ('last_batch', ?1)", [text]).map_err(&err)?;
        tx.execute("INSERT OR REPLACE INTO meta VALUES ('generation', ?1)", [generation as i64]).map_err(&err)?;
        let newest: Option<i64> =
            tx.query_row("SELECT max(day) FROM rule_day", [], |r| r.get(0)).optional().map_err(&err)?.flatten();
        if let Some(newest) = newest {
            prune(&tx, newest - i64::from(self.keep_days) + 1).map_err(&err)?;
        }
        tx.commit().map_err(&err)?;
        Ok(outcome)
    }

    /// The first and last day held.
    pub fn span(&self) -> Result<Option<(i64, i64)>, Error> {
        let r: (Option<i64>, Option<i64>) = self
            .conn
            .query_row("SELECT min(day), max(day) FROM rule_day", [], |r| Ok((r.get(0)?, r.get(1)?)))
            .map_err(db_err(&self.path))?;
        Ok(r.0.zip(r.1))
    }

    /// Events and changes per day, month or year, from day `since` on.
    pub fn timeline(&self, by: By, since: i64) -> Result<Vec<Period>, Error> {
        let err = db_err(&self.path);
        let mut days: std::collections::BTreeMap<i64, Period> = std::collections::BTreeMap::new();
        let mut q =
            self.conn.prepare("SELECT day, sum(events) FROM rule_day WHERE day >= ?1 GROUP BY day").map_err(&err)?;
        for r in q.query_map([since], |r| Ok((r.get::<_, i64>(0)?, r.get::<_, i64>(1)?))).map_err(&err)? {
            let (d, n) = r.map_err(&err)?;
            days.entry(d).or_default().events = n as u64;
        }
        let mut q = self
            .conn
            .prepare("SELECT day, kind, sum(n) FROM change_day WHERE day >= ?1 GROUP BY day, kind")
            .map_err(&err)?;
        for r in q
            .query_map([since], |r| Ok((r.get::<_, i64>(0)?, r.get::<_, String>(1)?, r.get::<_, i64>(2)?)))
            .map_err(&err)?
        {
            let (d, k, n) = r.map_err(&err)?;
            let p = days.entry(d).or_default();
            match Change::from_name(&k) {
                Some(Change::FirstSeen) => p.first_seen = n as u64,
                Some(Change::Listed) => p.listed = n as u64,
                Some(Change::Expired) => p.expired = n as u64,
                Some(Change::Unbanned) => p.unbanned = n as u64,
                None => {}
            }
        }
        let mut out: Vec<Period> = Vec::new();
        for (d, p) in days {
            let (label, first) = label(by, d);
            match out.last_mut() {
                Some(last) if last.label == label => {
                    last.events += p.events;
                    last.first_seen += p.first_seen;
                    last.listed += p.listed;
                    last.expired += p.expired;
                    last.unbanned += p.unbanned;
                }
                _ => out.push(Period { label, day: first, ..p }),
            }
        }
        Ok(out)
    }

    /// Events per rule name, most first.
    pub fn rules(&self, since: i64) -> Result<Vec<(String, u64)>, Error> {
        self.pairs(
            "SELECT rule, sum(events) s FROM rule_day WHERE day >= ?1 GROUP BY rule ORDER BY s DESC, rule",
            since,
            None,
        )
    }

    /// Events per UTC hour of day.
    pub fn hours(&self, since: i64) -> Result<[u64; 24], Error> {
        let mut h = [0u64; 24];
        for (k, n) in self.pairs("SELECT hour, sum(events) FROM hour_day WHERE day >= ?1 GROUP BY hour", since, None)? {
            if let Some(slot) = k.parse::<usize>().ok().and_then(|i| h.get_mut(i)) {
                *slot = n;
            }
        }
        Ok(h)
    }

    /// The `n` addresses (or networks) with the most events.
    pub fn top_addrs(&self, since: i64, n: usize) -> Result<Vec<(String, u64)>, Error> {
        self.pairs(
            "SELECT addr, sum(events) s FROM addr_day WHERE day >= ?1 GROUP BY addr ORDER BY s DESC, addr LIMIT ?2",
            since,
            Some(n),
        )
    }

    /// The `n` most tried user names, and the events of all the others
    /// (including those past the per-day bound).
    pub fn top_users(&self, since: i64, n: usize) -> Result<TopUsers, Error> {
        let err = db_err(&self.path);
        let mut q = self
            .conn
            .prepare("SELECT user, sum(events) s FROM user_day WHERE day >= ?1 GROUP BY user ORDER BY s DESC, user")
            .map_err(&err)?;
        let mut top = Vec::new();
        let mut rest = 0u64;
        for r in q.query_map([since], |r| Ok((r.get::<_, Vec<u8>>(0)?, r.get::<_, i64>(1)?))).map_err(&err)? {
            let (u, c) = r.map_err(&err)?;
            if top.len() < n {
                top.push((u, c as u64));
            } else {
                rest += c as u64;
            }
        }
        let past: Option<i64> = self
            .conn
            .query_row("SELECT sum(events) FROM user_rest WHERE day >= ?1", [since], |r| r.get(0))
            .map_err(&err)?;
        Ok((top, rest + past.unwrap_or(0) as u64))
    }

    /// Events and distinct addresses per reporting host.
    pub fn hosts(&self, since: i64) -> Result<Vec<HostRow>, Error> {
        let err = db_err(&self.path);
        let mut q = self
            .conn
            .prepare(
                "SELECT host, sum(events) s, count(DISTINCT addr) FROM addr_day WHERE day >= ?1 \
                 GROUP BY host ORDER BY s DESC",
            )
            .map_err(&err)?;
        let rows = q
            .query_map([since], |r| {
                Ok(HostRow { host: r.get(0)?, events: r.get::<_, i64>(1)? as u64, addrs: r.get::<_, i64>(2)? as u64 })
            })
            .map_err(&err)?;
        rows.collect::<Result<_, _>>().map_err(&err)
    }

    /// Logins of ever-listed addresses, newest first.
    pub fn logins(&self, since: i64) -> Result<Vec<LoginRow>, Error> {
        let err = db_err(&self.path);
        let mut q = self
            .conn
            .prepare(
                "SELECT addr, user, host, sum(n), max(last) l FROM login_day WHERE day >= ?1 \
                 GROUP BY addr, user, host ORDER BY l DESC",
            )
            .map_err(&err)?;
        let rows = q
            .query_map([since], |r| {
                Ok(LoginRow {
                    addr: r.get(0)?,
                    user: r.get(1)?,
                    host: r.get(2)?,
                    count: r.get::<_, i64>(3)? as u64,
                    last: r.get(4)?,
                })
            })
            .map_err(&err)?;
        rows.collect::<Result<_, _>>().map_err(&err)
    }

    fn pairs(&self, sql: &str, since: i64, limit: Option<usize>) -> Result<Vec<(String, u64)>, Error> {
        let err = db_err(&self.path);
        let mut q = self.conn.prepare(sql).map_err(&err)?;
        let map = |r: &rusqlite::Row<'_>| {
            let k: rusqlite::types::Value = r.get(0)?;
            let k = match k {
                rusqlite::types::Value::Integer(i) => i.to_string(),
                rusqlite::types::Value::Text(t) => t,
                rusqlite::types::Value::Blob(b) => String::from_utf8_lossy(&b).into_owned(),
                _ => String::new(),
            };
            Ok((k, r.get::<_, i64>(1)? as u64))
        };
        let rows = match limit {
            Some(n) => q.query_map(params![since, n as i64], map),
            None => q.query_map(params![since], map),
        }
        .map_err(&err)?;
        rows.collect::<Result<_, _>>().map_err(&err)
    }
}

/// `2024-06-01` / `2024-06` / `2024`, and the first day of that period.
fn label(by: By, day: i64) -> (String, i64) {
    use chrono::Datelike;
    let date = chrono::DateTime::from_timestamp(day * DAY, 0).map(|t| t.date_naive()).unwrap_or_default();
    let first = match by {
        By::Day => date,
        By::Month => date.with_day(1).unwrap_or(date),
        By::Year => date.with_ordinal(1).unwrap_or(date),
    };
    let label = match by {
        By::Day => first.format("%Y-%m-%d").to_string(),
        By::Month => first.format("%Y-%m").to_string(),
        By::Year => first.format("%Y").to_string(),
    };
    let epoch = chrono::NaiveDate::from_ymd_opt(1970, 1, 1).unwrap_or_default();
    (label, (first - epoch).num_days())
}

/// Adds (`sign` 1) or subtracts (-1) `rows`; a counter that reaches zero
/// is deleted. User names past [`TOP_USERS`] on a day go to `user_rest`.
fn write_rows(tx: &Transaction<'_>, rows: &[Row], sign: i64) -> rusqlite::Result<()> {
    let mut users_per_day: HashMap<i64, usize> = HashMap::new();
    for r in rows {
        let n = r.n as i64 * sign;
        let (a, b, c, day) = (&r.a, &r.b, &r.c, r.day);
        match r.t {
            T::Rule => counter(tx, "rule_day", &["day", "rule"], "events", params![day, a], n)?,
            T::Hour => {
                let h: i64 = a.parse().unwrap_or(0);
                counter(tx, "hour_day", &["day", "hour"], "events", params![day, h], n)?
            }
            T::Addr => {
                let rule = String::from_utf8_lossy(b);
                counter(tx, "addr_day", &["day", "addr", "rule", "host"], "events", params![day, a, rule, c], n)?
            }
            T::Change => {
                let kind = String::from_utf8_lossy(b);
                counter(tx, "change_day", &["day", "addr", "kind"], "n", params![day, a, kind], n)?
            }
            T::Login => {
                counter(tx, "login_day", &["day", "addr", "user", "host"], "n", params![day, a, b, c], n)?;
                if sign > 0 {
                    tx.prepare_cached(
                        "UPDATE login_day SET last = max(coalesce(last, 0), ?5) \
                         WHERE day = ?1 AND addr = ?2 AND user = ?3 AND host = ?4",
                    )?
                    .execute(params![day, a, b, c, r.last])?;
                }
            }
            T::User => {
                let exists = tx
                    .prepare_cached("SELECT 1 FROM user_day WHERE day = ?1 AND user = ?2")?
                    .query_row(params![day, b], |_| Ok(()))
                    .optional()?
                    .is_some();
                let count = match users_per_day.get(&day) {
                    Some(&c) => c,
                    None => {
                        let c: i64 = tx
                            .prepare_cached("SELECT count(*) FROM user_day WHERE day = ?1")?
                            .query_row([day], |r| r.get(0))?;
                        c as usize
                    }
                };
                if exists || (sign > 0 && count < TOP_USERS) {
                    counter(tx, "user_day", &["day", "user"], "events", params![day, b], n)?;
                    let still = tx
                        .prepare_cached("SELECT 1 FROM user_day WHERE day = ?1 AND user = ?2")?
                        .query_row(params![day, b], |_| Ok(()))
                        .optional()?
                        .is_some();
                    let now = match (exists, still) {
                        (false, true) => count + 1,
                        (true, false) => count.saturating_sub(1),
                        _ => count,
                    };
                    users_per_day.insert(day, now);
                } else {
                    users_per_day.insert(day, count);
                    counter(tx, "user_rest", &["day"], "events", params![day], n)?;
                }
            }
        }
    }
    Ok(())
}

/// Adds `n` to the counter `col` of the row of `table` whose key columns
/// `keys` hold `vals`: an upsert when adding; when subtracting, an update
/// and the deletion of a row that falls to zero.
fn counter(
    tx: &Transaction<'_>,
    table: &str,
    keys: &[&str],
    col: &str,
    vals: &[&dyn rusqlite::ToSql],
    n: i64,
) -> rusqlite::Result<()> {
    let k = keys.len();
    let filter: Vec<String> = keys.iter().enumerate().map(|(i, key)| format!("{key} = ?{}", i + 1)).collect();
    let filter = filter.join(" AND ");
    let mut args: Vec<&dyn rusqlite::ToSql> = vals.to_vec();
    if n > 0 {
        let marks: Vec<String> = (1..=k + 1).map(|i| format!("?{i}")).collect();
        let sql = format!(
            "INSERT INTO {table} ({}, {col}) VALUES ({}) ON CONFLICT ({}) DO UPDATE SET {col} = {col} + excluded.{col}",
            keys.join(", "),
            marks.join(", "),
            keys.join(", ")
        );
        args.push(&n);
        tx.prepare_cached(&sql)?.execute(args.as_slice())?;
    } else if n < 0 {
        args.push(&n);
        tx.prepare_cached(&format!("UPDATE {table} SET {col} = {col} + ?{} WHERE {filter}", k + 1))?
            .execute(args.as_slice())?;
        tx.prepare_cached(&format!("DELETE FROM {table} WHERE {filter} AND {col} <= 0"))?.execute(vals)?;
    }
    Ok(())
}

/// Deletes every day before `first_kept`.
fn prune(tx: &Transaction<'_>, first_kept: i64) -> rusqlite::Result<()> {
    for t in ["rule_day", "hour_day", "addr_day", "change_day", "login_day", "user_day", "user_rest"] {
        tx.execute(&format!("DELETE FROM {t} WHERE day < ?1"), [first_kept])?;
    }
    Ok(())
}

#[cfg(test)]
#[path = "history_tests.rs"]
mod tests;
