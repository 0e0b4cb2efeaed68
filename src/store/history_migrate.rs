//! The upgrade of a history written by an older badguys, in place and in
//! one transaction, when [`super::history::History::open`] finds an older
//! schema. Schema 1 → 2: `gen`/`prev` columns on the counter tables,
//! `addr_day.rule` as an id of the `rule` table, the summary tables
//! (`host_day`, `host_addr`, `change_sum`) filled once from the per-address
//! rows, and schema 1's undo record (the last batch as JSON in `meta`)
//! turned into `gen`/`prev` marks, so that a batch written by the old
//! version can still be replaced by the new one.

use std::collections::HashMap;

use rusqlite::{params, Connection};

use super::history::{SCHEMA, SCHEMA_VERSION};

/// A row of schema 1's `last_batch` (its JSON form).
#[derive(serde::Deserialize)]
struct OldRow {
    t: String,
    day: i64,
    a: String,
    b: Vec<u8>,
    c: Vec<u8>,
    n: u64,
}

const V1_TO_V2: &str = "
ALTER TABLE rule_day ADD COLUMN gen INTEGER; ALTER TABLE rule_day ADD COLUMN prev INTEGER;
ALTER TABLE hour_day ADD COLUMN gen INTEGER; ALTER TABLE hour_day ADD COLUMN prev INTEGER;
ALTER TABLE change_day ADD COLUMN gen INTEGER; ALTER TABLE change_day ADD COLUMN prev INTEGER;
ALTER TABLE login_day ADD COLUMN gen INTEGER; ALTER TABLE login_day ADD COLUMN prev INTEGER;
ALTER TABLE login_day ADD COLUMN prev_last INTEGER;
ALTER TABLE user_day ADD COLUMN gen INTEGER; ALTER TABLE user_day ADD COLUMN prev INTEGER;
ALTER TABLE user_rest ADD COLUMN gen INTEGER; ALTER TABLE user_rest ADD COLUMN prev INTEGER;
ALTER TABLE addr_day RENAME TO addr_day_v1;
";

/// Upgrades from schema `from` to [`SCHEMA_VERSION`].
pub(super) fn upgrade(conn: &mut Connection, from: i64) -> rusqlite::Result<()> {
    let tx = conn.transaction()?;
    if from <= 1 {
        tx.execute_batch(V1_TO_V2)?;
        tx.execute_batch(SCHEMA)?;
        for r in crate::parse::Rule::ALL {
            tx.execute("INSERT OR IGNORE INTO rule (name) VALUES (?1)", [r.name()])?;
        }
        // Names this version does not know keep their name as a rule.
        tx.execute_batch(
            "INSERT OR IGNORE INTO rule (name) SELECT DISTINCT rule FROM addr_day_v1;
             INSERT INTO addr_day (day, addr, rule, host, events)
                 SELECT a.day, a.addr, r.id, a.host, a.events FROM addr_day_v1 a JOIN rule r ON r.name = a.rule;
             DROP TABLE addr_day_v1;
             INSERT INTO host_day (day, host, events) SELECT day, host, sum(events) FROM addr_day GROUP BY day, host;
             INSERT INTO host_addr (host, addr, last_day) SELECT host, addr, max(day) FROM addr_day GROUP BY host, addr;
             INSERT INTO change_sum (day, kind, n) SELECT day, kind, sum(n) FROM change_day GROUP BY day, kind;",
        )?;
        mark_last_batch(&tx)?;
    }
    tx.execute("INSERT OR REPLACE INTO meta VALUES ('schema', ?1)", [SCHEMA_VERSION])?;
    tx.commit()
}

/// Schema 1 kept the last batch's rows to subtract them on a replace; in
/// schema 2 the rows it touched carry its generation and their value
/// before it. (An address's last day per host before that batch is not
/// known: it keeps the batch's.)
fn mark_last_batch(tx: &rusqlite::Transaction<'_>) -> rusqlite::Result<()> {
    let get = |k: &str| -> rusqlite::Result<Option<String>> {
        use rusqlite::OptionalExtension;
        tx.query_row("SELECT CAST(value AS TEXT) FROM meta WHERE key = ?1", [k], |r| r.get(0)).optional()
    };
    let (Some(text), Some(g)) = (get("last_batch")?, get("generation")?) else { return Ok(()) };
    tx.execute("DELETE FROM meta WHERE key = 'last_batch'", [])?;
    let Ok(rows) = serde_json::from_str::<Vec<OldRow>>(&text) else { return Ok(()) };
    let g: i64 = g.parse().unwrap_or(0);
    let (mut lo, mut hi) = (i64::MAX, i64::MIN);
    let mut hosts: HashMap<(i64, Vec<u8>), i64> = HashMap::new();
    let mut kinds: HashMap<(i64, String), i64> = HashMap::new();
    for r in &rows {
        lo = lo.min(r.day);
        hi = hi.max(r.day);
        let n = r.n as i64;
        let b = String::from_utf8_lossy(&r.b).into_owned();
        match r.t.as_str() {
            "Rule" => mark(tx, "rule_day", "events", "day = ?1 AND rule = ?2", params![r.day, r.a, g, n])?,
            "Hour" => {
                let h: i64 = r.a.parse().unwrap_or(0);
                mark(tx, "hour_day", "events", "day = ?1 AND hour = ?2", params![r.day, h, g, n])?
            }
            "Addr" => {
                mark(
                    tx,
                    "addr_day",
                    "events",
                    "day = ?1 AND addr = ?2 AND rule = (SELECT id FROM rule WHERE name = ?5) AND host = ?6",
                    params![r.day, r.a, g, n, b, r.c],
                )?;
                *hosts.entry((r.day, r.c.clone())).or_default() += n;
                tx.execute(
                    "UPDATE host_addr SET gen = ?3, prev = last_day WHERE host = ?1 AND addr = ?2",
                    params![r.c, r.a, g],
                )?;
            }
            "Change" => {
                mark(tx, "change_day", "n", "day = ?1 AND addr = ?2 AND kind = ?5", params![r.day, r.a, g, n, b])?;
                *kinds.entry((r.day, b)).or_default() += n;
            }
            "Login" => {
                mark(
                    tx,
                    "login_day",
                    "n",
                    "day = ?1 AND addr = ?2 AND user = ?5 AND host = ?6",
                    params![r.day, r.a, g, n, r.b, r.c],
                )?;
                tx.execute(
                    "UPDATE login_day SET prev_last = CASE WHEN prev > 0 THEN last END \
                     WHERE day = ?1 AND addr = ?2 AND user = ?3 AND host = ?4",
                    params![r.day, r.a, r.b, r.c],
                )?;
            }
            "User" => {
                // Counted in user_day, or past the day's bound in user_rest.
                let hit = tx.execute(
                    "UPDATE user_day SET gen = ?3, prev = events - ?4 WHERE day = ?1 AND user = ?2",
                    params![r.day, r.b, g, n],
                )?;
                if hit == 0 {
                    tx.execute(
                        "UPDATE user_rest SET gen = ?2, prev = coalesce(prev, events) - ?3 \
                         WHERE day = ?1 AND gen IS ?2 OR day = ?1 AND gen IS NULL",
                        params![r.day, g, n],
                    )?;
                }
            }
            _ => {}
        }
    }
    for ((day, host), n) in hosts {
        mark(tx, "host_day", "events", "day = ?1 AND host = ?2", params![day, host, g, n])?;
    }
    for ((day, kind), n) in kinds {
        mark(tx, "change_sum", "n", "day = ?1 AND kind = ?2", params![day, kind, g, n])?;
    }
    if lo <= hi {
        tx.execute("INSERT OR REPLACE INTO meta VALUES ('batch_days', ?1)", [format!("{lo} {hi}")])?;
    }
    Ok(())
}

/// Marks the row of `table` matching `filter` as written by generation
/// `?3` with `?4` added: `prev` = its value less `?4`.
fn mark(
    tx: &rusqlite::Transaction<'_>,
    table: &str,
    col: &str,
    filter: &str,
    args: &[&dyn rusqlite::ToSql],
) -> rusqlite::Result<()> {
    tx.execute(&format!("UPDATE {table} SET gen = ?3, prev = {col} - ?4 WHERE {filter}"), args)?;
    Ok(())
}
