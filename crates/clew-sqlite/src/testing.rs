//! Helpers for tests of this crate and of crates built on it: temporary
//! stores, and direct access to the [`SqliteTx`] primitives.

use std::path::Path;
use std::sync::Arc;

use clew_core::{Error, Result};
use rusqlite::Connection;
use tempfile::TempDir;

use crate::schema::open_connection;
use crate::store::{ApplyFn, SqliteOptions, SqliteStore};
use crate::tx::{SqlResult, SqliteTx, TxCache};

/// The file name the helpers use inside their temporary directory.
pub const DB_FILE: &str = "clew.db";

/// A fresh temporary directory for a store.
fn temp_dir() -> Result<TempDir> {
    tempfile::Builder::new()
        .prefix("clew-sqlite-")
        .tempdir()
        .map_err(|e| Error::store(format!("creating a temporary directory: {e}")))
}

/// A fresh store in a new temporary directory (file [`DB_FILE`]), with the
/// default options. Keep the directory alive as long as the store.
///
/// # Panics
/// If the directory or the store cannot be created (a broken test machine).
pub fn temp_store() -> (Arc<SqliteStore>, TempDir) {
    let dir = temp_dir().expect("temporary directory");
    let store = SqliteStore::open(dir.path().join(DB_FILE), SqliteOptions::default())
        .expect("opening a temporary store");
    (Arc::new(store), dir)
}

/// Like [`temp_store`] but the writer runs `apply` instead of
/// [`clew_core::logic::apply`], with `options`.
///
/// # Panics
/// If the directory or the store cannot be created.
pub fn temp_store_with_logic(
    options: SqliteOptions,
    apply: ApplyFn,
) -> (Arc<SqliteStore>, TempDir) {
    let dir = temp_dir().expect("temporary directory");
    let store = SqliteStore::open_with_logic(dir.path().join(DB_FILE), options, apply)
        .expect("opening a temporary store");
    (Arc::new(store), dir)
}

/// A connection to `path` set up and migrated exactly as the store's own,
/// for using [`SqliteTx`] directly (or to play another process writing the
/// same file).
pub fn migrated_connection(path: impl AsRef<Path>) -> Result<Connection> {
    let defaults = SqliteOptions::default();
    open_connection(path.as_ref(), defaults.synchronous, defaults.busy_timeout)
}

/// Runs `f` on the [`SqliteTx`] primitives in one `BEGIN IMMEDIATE`
/// transaction with a fresh cache; commits (after flushing the cache) if it
/// returns `Ok`, rolls back otherwise.
pub fn in_tx<T>(conn: &Connection, f: impl FnOnce(&mut SqliteTx<'_>) -> Result<T>) -> Result<T> {
    conn.execute_batch("BEGIN IMMEDIATE").sql()?;
    let mut cache = TxCache::new();
    let mut tx = SqliteTx::new(conn, &mut cache);
    let result = f(&mut tx).and_then(|value| tx.flush().map(|()| value));
    match result {
        Ok(value) => {
            conn.execute_batch("COMMIT").sql()?;
            Ok(value)
        }
        Err(e) => {
            // The caller's error matters more than a failed rollback.
            let _ = conn.execute_batch("ROLLBACK");
            Err(e)
        }
    }
}
