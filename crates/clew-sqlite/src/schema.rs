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
