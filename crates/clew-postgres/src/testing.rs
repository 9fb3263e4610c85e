//! Helpers for tests of this crate and of crates built on it: the test
//! database, temporary schemas, and direct access to the [`PgTx`]
//! primitives.
//!
//! The test database is `CLEW_TEST_POSTGRES_URL` (default
//! [`DEFAULT_TEST_URL`]). Tests that find no PostgreSQL there skip, saying
//! so, unless `CI=true`, where they fail.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, OnceLock};

use clew_core::{Error, Result};
use postgres::Client;

use crate::config::{PostgresOptions, SchemaName, Target};
use crate::schema::{connect, migrate};
use crate::store::{ApplyFn, PostgresStore};
use crate::tx::{pg_err, PgTx, StatementCache};

/// The variable naming the test database.
pub const TEST_URL_ENV: &str = "CLEW_TEST_POSTGRES_URL";

/// The test database when [`TEST_URL_ENV`] is not set.
pub const DEFAULT_TEST_URL: &str = "postgres://postgres@127.0.0.1:5432/test";

/// The test database's URL.
pub fn test_url() -> String {
    std::env::var(TEST_URL_ENV)
        .ok()
        .filter(|u| !u.is_empty())
        .unwrap_or_else(|| DEFAULT_TEST_URL.to_owned())
}

/// Whether tests must run (`CI=true`) rather than skip without PostgreSQL.
pub fn must_run() -> bool {
    std::env::var("CI").is_ok_and(|v| v == "true")
}

/// Whether the test database answers (checked once per process).
pub fn reachable() -> std::result::Result<(), String> {
    static REACHABLE: OnceLock<std::result::Result<(), String>> = OnceLock::new();
    REACHABLE
        .get_or_init(|| {
            let url = test_url();
            on_thread(move || {
                let target = Target::parse(&url, &PostgresOptions::default())?;
                let mut client = connect(&target.config, &target.schema)?;
                client.simple_query("SELECT 1").map_err(pg_err)?;
                Ok(())
            })
            .map_err(|e| e.to_string())
        })
        .clone()
}

/// `None` when the test database answers. Otherwise the line to print
/// (`SKIPPED: no PostgreSQL at URL: ERROR`) for a test that then passes.
///
/// # Panics
/// Without PostgreSQL when `CI=true`: there the tests must run.
pub fn skip_reason() -> Option<String> {
    let error = reachable().err()?;
    let line = format!("SKIPPED: no PostgreSQL at {}: {error}", test_url());
    if must_run() {
        panic!(
            "{line} (CI=true: PostgreSQL tests must run; start the server or set {TEST_URL_ENV})"
        );
    }
    Some(line)
}

/// A schema name no other test uses: `clew_t_<pid>_<counter>_<random>`.
pub fn unique_schema_name() -> String {
    static COUNTER: AtomicU64 = AtomicU64::new(0);
    format!(
        "clew_t_{}_{}_{:08x}",
        std::process::id(),
        COUNTER.fetch_add(1, Ordering::Relaxed),
        rand::random::<u32>()
    )
}

/// Runs `f` on a fresh thread and waits for it: the synchronous driver
/// must not run inside an async runtime, which a test may be in.
fn on_thread<T: Send + 'static>(f: impl FnOnce() -> Result<T> + Send + 'static) -> Result<T> {
    std::thread::spawn(f)
        .join()
        .unwrap_or_else(|_| Err(Error::store("a PostgreSQL test helper thread panicked")))
}

/// A schema in the test database, dropped (with everything in it) when this
/// guard is dropped.
#[derive(Debug)]
pub struct TempSchema {
    url: String,
    name: String,
}

impl TempSchema {
    /// A fresh, uniquely named schema (not created yet: opening a store on
    /// it creates it).
    pub fn new() -> TempSchema {
        TempSchema {
            url: test_url(),
            name: unique_schema_name(),
        }
    }

    /// The schema's name.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// The test database's URL.
    pub fn url(&self) -> &str {
        &self.url
    }

    /// Options selecting this schema.
    pub fn options(&self) -> PostgresOptions {
        PostgresOptions {
            schema: Some(self.name.clone()),
            ..PostgresOptions::default()
        }
    }

    /// Opens a store on this schema with `options` (its schema set to this
    /// one).
    pub fn open(&self, options: PostgresOptions) -> Result<PostgresStore> {
        let options = PostgresOptions {
            schema: Some(self.name.clone()),
            ..options
        };
        PostgresStore::open(&self.url, options)
    }

    /// A connection with `search_path` set to this schema (which must
    /// exist to be useful), made on a helper thread; use it outside async
    /// code.
    pub fn connect(&self) -> Result<Client> {
        let url = self.url.clone();
        let options = self.options();
        on_thread(move || {
            let target = Target::parse(&url, &options)?;
            connect(&target.config, &target.schema)
        })
    }

    /// A connection like [`TempSchema::connect`] that has also migrated the
    /// schema, as a store's own connection does.
    pub fn migrated_connection(&self) -> Result<Client> {
        let mut client = self.connect()?;
        migrate(&mut client, &SchemaName::new(&self.name)?)?;
        Ok(client)
    }
}

impl Default for TempSchema {
    fn default() -> TempSchema {
        TempSchema::new()
    }
}

impl Drop for TempSchema {
    fn drop(&mut self) {
        let url = self.url.clone();
        let options = self.options();
        let name = self.name.clone();
        let dropped = on_thread(move || {
            let target = Target::parse(&url, &options)?;
            let mut client = connect(&target.config, &target.schema)?;
            client
                .batch_execute(&format!(
                    "DROP SCHEMA IF EXISTS {} CASCADE",
                    target.schema.quoted()
                ))
                .map_err(pg_err)
        });
        if let Err(e) = dropped {
            eprintln!("warning: could not drop test schema {name}: {e}");
        }
    }
}

/// A fresh store in a new schema of the test database, with the default
/// options. Keep the guard alive as long as the store; dropping it drops
/// the schema.
///
/// # Panics
/// If the store cannot be opened (see [`skip_reason`] to skip first).
pub fn temp_store() -> (Arc<PostgresStore>, TempSchema) {
    temp_store_with(PostgresOptions::default(), clew_core::logic::apply)
}

/// Like [`temp_store`] with `options` (their schema is replaced) and the
/// pool running `apply` instead of [`clew_core::logic::apply`].
///
/// # Panics
/// If the store cannot be opened.
pub fn temp_store_with(
    options: PostgresOptions,
    apply: ApplyFn,
) -> (Arc<PostgresStore>, TempSchema) {
    let schema = TempSchema::new();
    let options = PostgresOptions {
        schema: Some(schema.name.clone()),
        ..options
    };
    let store = PostgresStore::open_with_logic(&schema.url, options, apply)
        .unwrap_or_else(|e| panic!("opening a store on {}: {e}", schema.url));
    (Arc::new(store), schema)
}

/// Runs `f` on the [`PgTx`] primitives in one transaction; commits if it
/// returns `Ok`, rolls back otherwise. Call outside async code.
pub fn in_tx<T>(client: &mut Client, f: impl FnOnce(&mut PgTx<'_, '_>) -> Result<T>) -> Result<T> {
    let mut statements = StatementCache::new();
    let mut tx = client.transaction().map_err(pg_err)?;
    let result = {
        let mut pg = PgTx::new(&mut tx, &mut statements);
        f(&mut pg)
    };
    match result {
        Ok(value) => {
            tx.commit().map_err(pg_err)?;
            Ok(value)
        }
        // Dropping the transaction rolls it back.
        Err(e) => Err(e),
    }
}
