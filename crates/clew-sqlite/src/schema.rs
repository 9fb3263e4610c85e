//! Opening a database file: connection settings and schema migrations.
//!
//! The schema version lives in `PRAGMA user_version`. Each migration runs in
//! one `BEGIN IMMEDIATE` transaction that also bumps the version, so two
//! processes opening a new file at once cannot both apply it, and a crash in
//! the middle leaves the previous version intact.

use std::path::Path;
use std::time::Duration;

use clew_core::{Error, Result};
use rusqlite::Connection;

use crate::tx::SqlResult;

/// The migrations, in order; migration `i` brings the schema to version `i + 1`.
const MIGRATIONS: &[&str] = &[
    include_str!("../migrations/0001_init.sql"),
    include_str!("../migrations/0002_job_metadata.sql"),
    include_str!("../migrations/0003_complete_count.sql"),
    include_str!("../migrations/0004_partial_job_indexes.sql"),
    include_str!("../migrations/0005_complete_count_in_writer.sql"),
    include_str!("../migrations/0006_unique_key.sql"),
    include_str!("../migrations/0007_recur_cron.sql"),
    include_str!("../migrations/0008_batches.sql"),
    include_str!("../migrations/0009_throttles.sql"),
    include_str!("../migrations/0010_throttle_rate.sql"),
    include_str!("../migrations/0011_history_in_row.sql"),
];

/// The schema version this build writes and understands.
pub const SCHEMA_VERSION: i64 = MIGRATIONS.len() as i64;

/// Statements kept prepared per connection (the [`crate::SqliteTx`]
/// primitives use about seventy).
const STATEMENT_CACHE: usize = 128;

/// How durably a commit reaches the disk (SQLite's `PRAGMA synchronous`, in
/// WAL mode).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
pub enum Synchronous {
    /// No syncs: a commit survives a crash of the process but an operating
    /// system crash or power loss may corrupt the file.
    Off,
    /// Syncs at checkpoints only: a commit survives a crash of the process;
    /// after power loss the last commits may be rolled back, but the file
    /// stays consistent. The default.
    #[default]
    Normal,
    /// Syncs the WAL at every commit: a commit survives power loss.
    Full,
}

impl Synchronous {
    /// The pragma value.
    fn pragma(self) -> &'static str {
        match self {
            Synchronous::Off => "OFF",
            Synchronous::Normal => "NORMAL",
            Synchronous::Full => "FULL",
        }
    }
}

/// Opens `path` (creating it if absent), applies the connection settings
/// (WAL, `synchronous`, busy timeout, no foreign keys) and migrates the
/// schema to [`SCHEMA_VERSION`].
pub(crate) fn open_connection(
    path: &Path,
    synchronous: Synchronous,
    busy_timeout: Duration,
) -> Result<Connection> {
    let conn = Connection::open(path)
        .map_err(|e| Error::store(format!("opening {}: {e}", path.display())))?;
    conn.busy_timeout(busy_timeout).sql()?;
    conn.set_prepared_statement_cache_capacity(STATEMENT_CACHE);
    // Query planner stability: without it SQLite plans `LIMIT ?` with the
    // bound value and expires the statement whenever that value is bound
    // again, so every listing was prepared anew (8% of the writer's time in
    // the lifecycle benchmark).
    conn.set_db_config(
        rusqlite::config::DbConfig::SQLITE_DBCONFIG_ENABLE_QPSG,
        true,
    )
    .sql()?;
    let mode: String = conn
        .query_row("PRAGMA journal_mode = WAL", [], |r| r.get(0))
        .map_err(|e| Error::store(format!("opening {}: {e}", path.display())))?;
    if !mode.eq_ignore_ascii_case("wal") {
        return Err(Error::store(format!(
            "opening {}: journal mode is {mode}, WAL is required",
            path.display()
        )));
    }
    conn.pragma_update(None, "synchronous", synchronous.pragma())
        .sql()?;
    conn.pragma_update(None, "foreign_keys", "OFF").sql()?;
    // Temporary files in memory: above all the statement journal each
    // command's savepoint needs, which otherwise spills to a temp file and
    // took 45% of the writer's time in `job_save` in the lifecycle profile.
    conn.pragma_update(None, "temp_store", "MEMORY").sql()?;
    migrate(&conn)?;
    Ok(conn)
}

/// The schema version of the open file.
fn user_version(conn: &Connection) -> Result<i64> {
    conn.query_row("PRAGMA user_version", [], |r| r.get(0))
        .sql()
}

/// Applies every migration the file lacks, each in its own transaction.
fn migrate(conn: &Connection) -> Result<()> {
    loop {
        // Cheap check without a write lock: nothing to do for an up-to-date file.
        let version = user_version(conn)?;
        check_version(version)?;
        if version == SCHEMA_VERSION {
            return Ok(());
        }
        conn.execute_batch("BEGIN IMMEDIATE").sql()?;
        let applied = apply_next(conn);
        match applied {
            Ok(()) => conn.execute_batch("COMMIT").sql()?,
            Err(e) => {
                // The rollback's own failure would hide the real error.
                let _ = conn.execute_batch("ROLLBACK");
                return Err(e);
            }
        }
    }
}

/// Refuses files written by a newer clew.
fn check_version(version: i64) -> Result<()> {
    if !(0..=SCHEMA_VERSION).contains(&version) {
        return Err(Error::store(format!(
            "database schema version {version} is not supported (this build knows 0 to \
             {SCHEMA_VERSION}); was it written by a newer clew?"
        )));
    }
    Ok(())
}

/// Inside a write transaction: applies the one migration after the current
/// version (re-read under the lock, in case another process migrated first).
fn apply_next(conn: &Connection) -> Result<()> {
    let version = user_version(conn)?;
    check_version(version)?;
    let Some(sql) = usize::try_from(version)
        .ok()
        .and_then(|v| MIGRATIONS.get(v))
    else {
        return Ok(());
    };
    conn.execute_batch(sql)
        .map_err(|e| Error::store(format!("migrating schema to version {}: {e}", version + 1)))?;
    conn.pragma_update(None, "user_version", version + 1)
        .sql()?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::tx::{SqliteTx, TxCache};
    use clew_core::Tx;

    /// Migration 0011 moves each job's history rows into its row, in
    /// order, details and all, and drops the entries of jobs that are gone.
    #[test]
    fn history_rows_move_into_their_jobs() {
        let dir = tempfile::tempdir().unwrap();
        let conn = Connection::open(dir.path().join("old.db")).unwrap();
        for sql in &MIGRATIONS[..10] {
            conn.execute_batch(sql).unwrap();
        }
        conn.pragma_update(None, "user_version", 10).unwrap();
        conn.execute_batch(
            "INSERT INTO jobs (jid, klass, queue, state, data, priority, tags, worker,
                 expires, retries, remaining, time, grace, worker_listed, fail_seq, loc,
                 sort_prio, sort_time, seq)
             VALUES ('a', 'K', 'q', 'running', '{}', 0, '[]', 'w', 9, 5, 5, 2, 0, 1, 0, 2,
                     0, 9, 2),
                    ('b', 'K', 'q', 'waiting', '{}', 0, '[]', '', 0, 5, 5, 1, 0, 0, 0, 1,
                     0, 1, 1);
             INSERT INTO history (id, jid, at, what, extra) VALUES
                 (3, 'a', 2, 'popped', '{\"worker\":\"w\"}'),
                 (1, 'a', 1, 'put', '{\"q\":\"q\"}'),
                 (2, 'gone', 1, 'put', '{}'),
                 (4, 'a', 3, 'note \"quoted\"', '{\"n\":[1,2]}');",
        )
        .unwrap();
        migrate(&conn).unwrap();
        assert_eq!(user_version(&conn).unwrap(), SCHEMA_VERSION);
        let tables: i64 = conn
            .query_row(
                "SELECT COUNT(*) FROM sqlite_schema WHERE name = 'history'",
                [],
                |r| r.get(0),
            )
            .unwrap();
        assert_eq!(tables, 0);
        let mut cache = TxCache::new();
        let mut tx = SqliteTx::new(&conn, &mut cache);
        let a = tx.history_list("a").unwrap();
        let whats: Vec<_> = a.iter().map(|e| e.what.as_str()).collect();
        assert_eq!(whats, ["put", "popped", "note \"quoted\""]);
        assert_eq!(a[0].when.0, 1);
        assert_eq!(a[1].extra["worker"], "w");
        assert_eq!(a[2].extra["n"], serde_json::json!([1, 2]));
        assert!(tx.history_list("b").unwrap().is_empty());
        assert!(tx.history_list("gone").unwrap().is_empty());
    }
}
