//! The history database: `history.sqlite` beside the state file, SQLite in
//! WAL mode (readers never block the writer; a crash leaves the last
//! committed batch). Owns the schema (documented in badguys(8), HISTORY
//! DATABASE), applying a [`DayBatch`] once per state generation, and
//! retention; the queries behind `stats` and `report` are in
//! `history_views.rs`, the upgrade of an older schema in
//! `history_migrate.rs`, the rows a generation writes (upserts, undo,
//! retention) in `history_write.rs`.
//!
//! # How the engine writes it
//!
//! Each engine step that changes the state:
//!
//! 1. builds a [`DayBatch`] from the step's events and changes
//!    ([`DayBatch::add_event`] for every event, with `ever_listed` from the
//!    record; [`DayBatch::add_change`] when a record is created, listed,
//!    expired or unbanned);
//! 2. writes it as generation `g` = the state's generation + 1, in one
//!    SQLite transaction that holds the batch and `g`: begun
//!    ([`History::begin_step`]) when the batch, grown to its bound while
//!    reading, is written out and emptied ([`History::write`]; memory stays
//!    flat on a first run over a big log), and committed with the rest of
//!    the batch at the save ([`History::commit`]);
//! 3. writes the state file carrying generation `g` and renames it into place.
//!
//! A crash between 2 and 3 leaves history at `g` and the state at `g - 1`.
//! The next run starts from the state's (older) cursors, reads the same
//! lines again and applies its batch with generation `g` again:
//! [`History::apply`] with the generation it already holds *replaces* that
//! batch instead of adding it twice. A generation below the stored one is
//! refused ([`Applied::Stale`]). So no event is counted twice or lost,
//! whatever the moment of the crash.
//!
//! # How a batch is replaced
//!
//! Every counter row carries `gen`, the generation that last changed it,
//! and `prev`, its value before that generation. Writing generation `g`
//! into a row whose `gen` is not `g` first moves the value to `prev`;
//! undoing `g` puts `prev` back (and deletes the rows `g` created), over
//! the days the batch covered (kept in `meta`). Nothing else is stored to
//! undo a batch.
//!
//! # Summaries
//!
//! The views never read the per-address tables: `host_day` (events per
//! host and day), `host_addr` (each address's last day per host: distinct
//! addresses per host since any day) and `change_sum` (changes per day and
//! kind) are written in the same transaction as the rows they sum.

use std::path::{Path, PathBuf};

use rusqlite::{Connection, OpenFlags, OptionalExtension};

use super::batch::DayBatch;
use super::history_write::{prune, undo, write_batch, write_last_days};
use crate::parse::Rule;
use crate::Error;

/// The file name beside the state file.
pub const FILE_NAME: &str = "history.sqlite";
/// Default `--history-days`.
pub const DEFAULT_DAYS: u32 = 400;
/// User names kept per day; the rest are summed in `user_rest`.
pub const TOP_USERS: usize = 1000;
/// 1: the first (undo kept as JSON in `meta`); 2: `gen`/`prev` columns,
/// integer rule ids in `addr_day`, the summary tables.
pub(super) const SCHEMA_VERSION: i64 = 2;

/// Schema 2. Counter tables carry `gen` and `prev` (see the module doc).
/// `user_day_user` lets the top user names be summed in name order from
/// the index instead of sorting every day's 1,000 names (0.18 s to 0.05 s
/// over a year of history); `host_addr_last` tells at once whether any
/// address was last seen before a `--since`. A database made before them
/// gets them at the next open for writing.
pub(super) const SCHEMA: &str = "
CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS rule (id INTEGER PRIMARY KEY, name TEXT UNIQUE NOT NULL);
CREATE TABLE IF NOT EXISTS rule_day (day INTEGER, rule TEXT, events INTEGER, gen INTEGER, prev INTEGER,
    PRIMARY KEY (day, rule)) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS hour_day (day INTEGER, hour INTEGER, events INTEGER, gen INTEGER, prev INTEGER,
    PRIMARY KEY (day, hour)) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS addr_day (day INTEGER, addr TEXT, rule INTEGER, host BLOB, events INTEGER,
    gen INTEGER, prev INTEGER, PRIMARY KEY (day, addr, rule, host)) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS change_day (day INTEGER, addr TEXT, kind TEXT, n INTEGER, gen INTEGER, prev INTEGER,
    PRIMARY KEY (day, addr, kind)) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS login_day (day INTEGER, addr TEXT, user BLOB, host BLOB, n INTEGER, last INTEGER,
    gen INTEGER, prev INTEGER, prev_last INTEGER, PRIMARY KEY (day, addr, user, host)) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS user_day (day INTEGER, user BLOB, events INTEGER, gen INTEGER, prev INTEGER,
    PRIMARY KEY (day, user)) WITHOUT ROWID;
CREATE INDEX IF NOT EXISTS user_day_user ON user_day (user, day, events);
CREATE TABLE IF NOT EXISTS user_rest (day INTEGER PRIMARY KEY, events INTEGER, gen INTEGER, prev INTEGER);
CREATE TABLE IF NOT EXISTS host_day (day INTEGER, host BLOB, events INTEGER, gen INTEGER, prev INTEGER,
    PRIMARY KEY (day, host)) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS host_addr (host BLOB, addr TEXT, last_day INTEGER, gen INTEGER, prev INTEGER,
    PRIMARY KEY (host, addr)) WITHOUT ROWID;
CREATE INDEX IF NOT EXISTS host_addr_last ON host_addr (last_day);
CREATE TABLE IF NOT EXISTS change_sum (day INTEGER, kind TEXT, n INTEGER, gen INTEGER, prev INTEGER,
    PRIMARY KEY (day, kind)) WITHOUT ROWID;
";

/// The index of `host_addr` by last day, as [`SCHEMA`] makes it (built
/// again after a first sync's rows, see [`History::commit`]).
pub(super) const HOST_ADDR_LAST: &str = "CREATE INDEX IF NOT EXISTS host_addr_last ON host_addr (last_day);";

/// Rows of `host_addr` from which an empty table's index is built after
/// them rather than row by row.
const REBUILD_MIN: usize = 4096;

test_knob!(
    /// The tests write the same rows with and without the rebuild.
    TEST_REBUILD_MIN,
    rebuild_min,
    REBUILD_MIN
);

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
    pub(super) conn: Connection,
    pub(super) path: PathBuf,
    /// `addr_day.rule` ids of this version's rules, by `Rule as usize`.
    rule_ids: Vec<i64>,
    /// Days kept, counted back from the newest day written.
    pub keep_days: u32,
    /// The transaction being written, between [`History::begin`] and
    /// [`History::commit`].
    open: Option<Open>,
    /// A generation this handle committed whose state file then failed to
    /// be written: the engine applies it again, with only what came since.
    pub unsaved: Option<u64>,
    /// Each address's last day per host in the open transaction, written
    /// to `host_addr` once, at the commit, however many parts the step was
    /// written in (a first run over a big log writes it in several).
    last_days: LastDays,
}

/// (address, host id) to a day.
pub(super) type LastDayMap = std::collections::HashMap<(std::net::IpAddr, u32), i64, foldhash::fast::RandomState>;

/// (address, host id into `hosts`) to the last day the open transaction
/// wrote for it, and the IPv6 prefix its addresses were folded at.
#[derive(Default)]
pub(super) struct LastDays {
    pub(super) days: LastDayMap,
    pub(super) hosts: Vec<Vec<u8>>,
    pub(super) v6_prefix: u8,
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

pub(super) fn db_err(path: &Path) -> impl Fn(rusqlite::Error) -> Error + '_ {
    move |e| Error::History { path: path.to_path_buf(), msg: e.to_string() }
}

impl History {
    /// Opens (creating it if needed) the database at `path`, in WAL mode;
    /// an older schema is upgraded in place (`history_migrate.rs`).
    pub fn open(path: &Path) -> Result<History, Error> {
        let err = db_err(path);
        let mut conn = Connection::open(path).map_err(&err)?;
        conn.busy_timeout(std::time::Duration::from_secs(10)).map_err(&err)?;
        // Durable before the state file is renamed: history never behind it.
        // A bounded page cache (4 MiB): a big transaction spills to the WAL,
        // not to memory. Pages of 16 KiB in a new database (an existing one
        // keeps its own): a first sync's hundreds of thousands of upserts
        // split fewer pages (the 1 GB first sync 0.94x the wall time with
        // the default rules and with every rule).
        // Temporary files in memory: an upsert of many rows keeps a
        // statement journal (to undo that statement alone), which past
        // 64 KiB went to a temporary file, 30 writes per statement.
        conn.execute_batch(
            "PRAGMA page_size = 16384; PRAGMA journal_mode = WAL; PRAGMA synchronous = FULL; PRAGMA cache_size = -4096; \
             PRAGMA temp_store = MEMORY;",
        )
            .map_err(&err)?;
        conn.execute_batch("CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value) WITHOUT ROWID;")
            .map_err(&err)?;
        let v: Option<i64> =
            conn.query_row("SELECT value FROM meta WHERE key = 'schema'", [], |r| r.get(0)).optional().map_err(&err)?;
        match v {
            None => {
                let tx = conn.transaction().map_err(&err)?;
                tx.execute_batch(SCHEMA).map_err(&err)?;
                tx.execute("INSERT OR REPLACE INTO meta VALUES ('schema', ?1)", [SCHEMA_VERSION]).map_err(&err)?;
                tx.commit().map_err(&err)?;
            }
            Some(v) if v > SCHEMA_VERSION => {
                return Err(Error::History {
                    path: path.to_path_buf(),
                    msg: format!("written by a newer badguys (history schema {v}; this one knows {SCHEMA_VERSION})"),
                })
            }
            Some(v) if v < SCHEMA_VERSION => super::history_migrate::upgrade(&mut conn, v).map_err(&err)?,
            Some(_) => {}
        }
        for r in Rule::ALL {
            conn.execute("INSERT OR IGNORE INTO rule (name) VALUES (?1)", [r.name()]).map_err(&err)?;
        }
        History::with(conn, path)
    }

    /// A handle on the open connection `conn` to the database at `path`.
    fn with(conn: Connection, path: &Path) -> Result<History, Error> {
        // Room for every statement a generation's write prepares (the
        // upserts one row and many at a time, retention's deletes): none
        // is prepared again for each part.
        conn.set_prepared_statement_cache_capacity(32);
        let rule_ids = rule_ids(&conn).map_err(db_err(path))?;
        Ok(History {
            conn,
            path: path.to_path_buf(),
            rule_ids,
            keep_days: DEFAULT_DAYS,
            open: None,
            unsaved: None,
            last_days: LastDays::default(),
        })
    }

    /// Opens an existing database for the views; `None` when there is none.
    pub fn open_existing(path: &Path) -> Result<Option<History>, Error> {
        if !path.exists() {
            return Ok(None);
        }
        match History::open(path) {
            Ok(h) => Ok(Some(h)),
            // A reader without write access to the directory (or to an
            // older schema it cannot upgrade): schema 2 is read as is.
            Err(e) => {
                let err = db_err(path);
                let conn = Connection::open_with_flags(path, OpenFlags::SQLITE_OPEN_READ_ONLY).map_err(&err)?;
                let v: Option<i64> = conn
                    .query_row("SELECT value FROM meta WHERE key = 'schema'", [], |r| r.get(0))
                    .optional()
                    .map_err(&err)?;
                if v != Some(SCHEMA_VERSION) {
                    return Err(e);
                }
                History::with(conn, path).map(Some)
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
    /// the newest day written. ([`History::begin`], [`History::write`] and
    /// [`History::commit`] in one call.)
    pub fn apply(&mut self, batch: &DayBatch, generation: u64) -> Result<Applied, Error> {
        let outcome = self.begin(generation)?;
        if outcome == Applied::Stale {
            return Ok(outcome);
        }
        self.write(batch)?;
        self.commit()?;
        Ok(outcome)
    }

    /// The generation a step whose state is to carry `next` writes: `next`,
    /// or past the held one when the history is ahead of the state by more
    /// than the one generation a crash leaves (a state rebuilt, deleted or
    /// restored from a backup; the logs read again are counted again, said
    /// in a warning). Begins its transaction ([`History::begin`]) unless
    /// one is open, whose generation it then returns.
    pub fn begin_step(&mut self, next: u64) -> Result<u64, Error> {
        if let Some(o) = &self.open {
            return Ok(o.g as u64);
        }
        let held = self.generation()?;
        let g = if held > next {
            tracing::warn!(
                "history {} is ahead of the state (generation {held}, state {}): the state was rebuilt or restored; \
                 what is read again from the logs is counted again in the history",
                self.path.display(),
                next - 1
            );
            held + 1
        } else {
            next
        };
        if self.begin(g)? == Applied::Replaced {
            tracing::debug!("history: generation {g} replaced (the last run stopped before saving its state)");
        }
        Ok(g)
    }

    /// Begins the one transaction that writes generation `generation`
    /// (nothing when it is open already): a new generation adds; the held
    /// one is undone first, to be replaced, unless this handle committed it
    /// itself and its state file was not written ([`History::unsaved`]):
    /// then it is added to, since the engine's batch was emptied at that
    /// commit. An older one is refused ([`Applied::Stale`]).
    pub fn begin(&mut self, generation: u64) -> Result<Applied, Error> {
        if let Some(o) = &self.open {
            return Ok(o.outcome);
        }
        let path = self.path.clone();
        let err = db_err(&path);
        let held = self.generation()?;
        if generation < held {
            return Ok(Applied::Stale);
        }
        let g = generation as i64;
        // IMMEDIATE: the write lock now, not at a first write mid-step.
        self.conn.execute_batch("BEGIN IMMEDIATE").map_err(&err)?;
        let mut open = Open { g, outcome: Applied::Added, span: None, first: None };
        let r = (|| {
            if generation == held && held > 0 {
                let days: Option<String> = self
                    .conn
                    .query_row("SELECT value FROM meta WHERE key = 'batch_days'", [], |r| r.get(0))
                    .optional()?;
                open.span = days.as_deref().and_then(parse_days);
                if self.unsaved != Some(generation) {
                    if let Some((a, b)) = open.span {
                        undo(&self.conn, g, a, b)?;
                    }
                    open.outcome = Applied::Replaced;
                }
            }
            Ok(())
        })();
        if let Err(e) = r {
            let _ = self.conn.execute_batch("ROLLBACK");
            return Err(err(e));
        }
        self.open = Some(open);
        Ok(open.outcome)
    }

    /// Writes `batch` into the open transaction (see [`History::begin`]);
    /// a row written twice in one generation keeps the `prev` of its first
    /// write. A failure rolls the whole transaction back.
    pub fn write(&mut self, batch: &DayBatch) -> Result<(), Error> {
        let Some(mut o) = self.open else {
            return Err(Error::History { path: self.path.clone(), msg: "no transaction open to write in".into() });
        };
        let ld = &mut self.last_days;
        ld.v6_prefix = batch.v6_prefix;
        // The batch's host ids as ids into `ld.hosts`.
        let ids: Vec<u32> = batch
            .hosts
            .iter()
            .map(|name| match ld.hosts.iter().position(|h| h == name) {
                Some(i) => i as u32,
                None => {
                    ld.hosts.push(name.clone());
                    (ld.hosts.len() - 1) as u32
                }
            })
            .collect();
        if let Err(e) = write_batch(&self.conn, batch, o.g, &self.rule_ids, (&ids, &mut ld.days)) {
            self.abort();
            return Err(db_err(&self.path)(e));
        }
        if let (Some(&a), Some(&b)) = (batch.days.keys().next(), batch.days.keys().next_back()) {
            o.span = Some(o.span.map_or((a, b), |(x, y)| (x.min(a), y.max(b))));
            o.first = Some(o.first.map_or(a, |f: i64| f.min(a)));
        }
        self.open = Some(o);
        Ok(())
    }

    /// Commits the open transaction with its generation and the days the
    /// next replace of it undoes (those written, and those of the batch it
    /// replaced), after dropping days older than `keep_days`.
    pub fn commit(&mut self) -> Result<(), Error> {
        let Some(o) = self.open else { return Ok(()) };
        let r = (|| {
            let days = o.span.map(|(a, b)| format!("{a} {b}")).unwrap_or_default();
            // Into an empty table (a first sync), many rows: the index on
            // `last_day` is built once after them, a sort, instead of one
            // insertion per row in no order (most of the time `host_addr`
            // took). The same statement as in the schema, in the same
            // transaction.
            let rebuild = self.last_days.days.len() >= rebuild_min()
                && self.conn.query_row("SELECT NOT EXISTS (SELECT 1 FROM host_addr)", [], |r| r.get::<_, bool>(0))?;
            if rebuild {
                self.conn.execute_batch("DROP INDEX IF EXISTS host_addr_last")?;
            }
            write_last_days(&self.conn, &self.last_days, o.g)?;
            if rebuild {
                self.conn.execute_batch(HOST_ADDR_LAST)?;
            }
            self.conn.execute("INSERT OR REPLACE INTO meta VALUES ('batch_days', ?1)", [days])?;
            self.conn.execute("INSERT OR REPLACE INTO meta VALUES ('generation', ?1)", [o.g])?;
            let newest: Option<i64> =
                self.conn.query_row("SELECT max(day) FROM rule_day", [], |r| r.get(0)).optional()?.flatten();
            if let Some(newest) = newest {
                prune(&self.conn, newest - i64::from(self.keep_days) + 1, o.first.unwrap_or(i64::MAX))?;
            }
            self.conn.execute_batch("COMMIT")
        })();
        if let Err(e) = r {
            self.abort();
            return Err(db_err(&self.path)(e));
        }
        self.open = None;
        self.last_days = LastDays::default();
        Ok(())
    }

    /// Rolls back the open transaction, if any.
    pub fn abort(&mut self) {
        self.last_days = LastDays::default();
        if self.open.take().is_some() {
            let _ = self.conn.execute_batch("ROLLBACK");
        }
    }
}

/// The transaction a generation is being written in.
#[derive(Clone, Copy, Debug)]
struct Open {
    g: i64,
    outcome: Applied,
    /// The days written (and those of the batch replaced or added to).
    span: Option<(i64, i64)>,
    /// The first day written.
    first: Option<i64>,
}

/// `addr_day.rule` ids by `Rule as usize` (0 for a rule missing from the table).
fn rule_ids(conn: &Connection) -> rusqlite::Result<Vec<i64>> {
    let mut ids = vec![0; Rule::ALL.len()];
    let mut q = conn.prepare("SELECT id, name FROM rule")?;
    for r in q.query_map([], |r| Ok((r.get::<_, i64>(0)?, r.get::<_, String>(1)?)))? {
        let (id, name) = r?;
        if let Some(rule) = super::batch::rule_named(&name) {
            ids[rule as usize] = id;
        }
    }
    Ok(ids)
}

fn parse_days(s: &str) -> Option<(i64, i64)> {
    let (a, b) = s.split_once(' ')?;
    Some((a.parse().ok()?, b.parse().ok()?))
}

#[cfg(test)]
#[path = "history_tests.rs"]
mod tests;
