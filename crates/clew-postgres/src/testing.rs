//! Helpers for tests of this crate and of crates built on it: the test
//! database, temporary schemas, and direct access to the [`PgTx`]
//! primitives.
//!
//! The test database is `CLEW_TEST_POSTGRES_URL` (default
//! [`DEFAULT_TEST_URL`]). Tests that find no PostgreSQL there skip, saying
//! so, unless `CI=true`, where they fail.
//!
//! # Temporary schemas are recycled
//! Creating a schema's tables costs tens of milliseconds of DDL, and
//! dropping them as much again, which would dominate the conformance suite.
//! So a [`TempSchema`] is uniquely named (`clew_t_<pid>_<counter>_<random>`)
//! and created on first use, but when its guard is dropped it is *reset*
//! (every row deleted, every sequence restarted: indistinguishable from a
//! fresh one) and kept for the next [`TempSchema`] of the same process,
//! rather than dropped. A process keeps one extra connection open for its
//! lifetime, named `clew-test-<pid>_<random>`; the first helper call of a
//! process drops every `clew_t_` schema whose process has no such
//! connection any more (ended or killed). So a test database holds at most
//! a few schemas per test process that ran last.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, OnceLock};

use clew_core::{Error, Result};
use postgres::Client;

use crate::config::{PostgresOptions, SchemaName, Target};
use crate::conn::PgConn;
use crate::schema::{connect, migrate, SCHEMA_VERSION};
use crate::store::{ApplyFn, PostgresStore, DELETE_ALL};
use crate::tx::{pg_err, PgTx, StatementCache};

/// The variable naming the test database.
pub const TEST_URL_ENV: &str = "CLEW_TEST_POSTGRES_URL";

/// The test database when [`TEST_URL_ENV`] is not set.
pub const DEFAULT_TEST_URL: &str = "postgres://postgres@127.0.0.1:5432/test";

/// Prefix of every temporary schema's name.
const TEMP_PREFIX: &str = "clew_t_";

/// Prefix of the `application_name` of a test process's keep-alive
/// connection.
const PRESENCE_PREFIX: &str = "clew-test-";

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
        .get_or_init(|| on_thread(|| with_registry(|_| Ok(()))).map_err(|e| e.message().to_owned()))
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

/// True, after printing the [`skip_reason`] line past the test harness's
/// output capture (so the skip shows), when a test must skip.
///
/// # Panics
/// Without PostgreSQL when `CI=true` (see [`skip_reason`]).
pub fn skip() -> bool {
    use std::io::Write as _;
    match skip_reason() {
        Some(line) => {
            let _ = writeln!(std::io::stderr().lock(), "{line}");
            true
        }
        None => false,
    }
}

/// This process's tag: its pid and a random number (pids repeat).
fn process_tag() -> &'static str {
    static TAG: OnceLock<String> = OnceLock::new();
    TAG.get_or_init(|| format!("{}_{:08x}", std::process::id(), rand::random::<u32>()))
}

/// A schema name no other test uses: `clew_t_<pid>_<counter>_<random>`.
pub fn unique_schema_name() -> String {
    static COUNTER: AtomicU64 = AtomicU64::new(0);
    let (pid, random) = process_tag().split_once('_').unwrap_or(("0", "0"));
    format!(
        "{TEMP_PREFIX}{pid}_{}_{random}",
        COUNTER.fetch_add(1, Ordering::Relaxed)
    )
}

/// The process tag (`<pid>_<random>`) of a temporary schema's name.
fn tag_of(schema: &str) -> Option<String> {
    let rest = schema.strip_prefix(TEMP_PREFIX)?;
    let mut parts = rest.split('_');
    let (pid, _counter, random) = (parts.next()?, parts.next()?, parts.next()?);
    Some(format!("{pid}_{random}"))
}

/// Runs `f` on a fresh thread and waits for it: the synchronous driver
/// must not run inside an async runtime, which a test may be in.
fn on_thread<T: Send + 'static>(f: impl FnOnce() -> Result<T> + Send + 'static) -> Result<T> {
    std::thread::spawn(f)
        .join()
        .unwrap_or_else(|_| Err(Error::store("a PostgreSQL test helper thread panicked")))
}

/// The process's keep-alive connection and its recycled schemas.
struct Registry {
    admin: Client,
    free: Vec<String>,
}

/// The registry, created (and stale schemas swept) on first use.
static REGISTRY: Mutex<Option<Registry>> = Mutex::new(None);

/// Runs `f` on the registry, connecting first if needed. Call on a helper
/// thread ([`on_thread`]).
fn with_registry<T>(f: impl FnOnce(&mut Registry) -> Result<T>) -> Result<T> {
    let mut guard = REGISTRY.lock().unwrap_or_else(|p| p.into_inner());
    if guard.as_ref().is_none_or(|r| r.admin.is_closed()) {
        let free = guard.take().map(|r| r.free).unwrap_or_default();
        let mut admin = admin_connection()?;
        sweep_stale_schemas(&mut admin)?;
        *guard = Some(Registry { admin, free });
    }
    let registry = guard
        .as_mut()
        .ok_or_else(|| Error::store("no test registry"))?;
    f(registry)
}

/// The keep-alive connection, named after this process.
fn admin_connection() -> Result<Client> {
    let mut target = Target::parse(&test_url(), &PostgresOptions::default())?;
    target
        .config
        .application_name(format!("{PRESENCE_PREFIX}{}", process_tag()));
    target.synchronous_commit = false;
    connect(&target)
}

/// Drops the temporary schemas of processes that are gone. Lists the
/// schemas before the live connections: a schema's process connected
/// before creating it, so a live one is always seen.
fn sweep_stale_schemas(admin: &mut Client) -> Result<()> {
    let schemas: Vec<String> = admin
        .query(
            "SELECT nspname::text FROM pg_namespace WHERE starts_with(nspname, $1)",
            &[&TEMP_PREFIX],
        )
        .map_err(pg_err)?
        .iter()
        .map(|r| r.get(0))
        .collect();
    let live: Vec<String> = admin
        .query(
            "SELECT substr(application_name, length($1) + 1) FROM pg_stat_activity
             WHERE starts_with(application_name, $1)",
            &[&PRESENCE_PREFIX],
        )
        .map_err(pg_err)?
        .iter()
        .map(|r| r.get(0))
        .collect();
    for schema in schemas {
        let stale = tag_of(&schema).is_some_and(|tag| !live.contains(&tag));
        if stale {
            let quoted = SchemaName::new(&schema)?.quoted();
            // Another process may be sweeping the same schema.
            if let Err(e) = admin.batch_execute(&format!("DROP SCHEMA IF EXISTS {quoted} CASCADE"))
            {
                tracing::debug!(schema, error = %pg_err(e), "dropping a stale test schema");
            }
        }
    }
    Ok(())
}

/// Empties a schema as if new: every row deleted, every sequence restarted.
/// Refuses a schema whose migrations are not exactly this build's (a test
/// may have tampered with them).
fn reset_schema(admin: &mut Client, schema: &SchemaName) -> Result<()> {
    let version: Option<i64> = admin
        .query_one(
            &format!(
                "SELECT MAX(version) FROM {}.clew_migrations",
                schema.quoted()
            ),
            &[],
        )
        .and_then(|r| r.try_get(0))
        .map_err(pg_err)?;
    if version != Some(SCHEMA_VERSION) {
        return Err(Error::store(format!(
            "schema version {version:?}, expected {SCHEMA_VERSION}"
        )));
    }
    let sql = format!(
        "BEGIN; SET LOCAL search_path TO {};
         {DELETE_ALL}
         DELETE FROM publisher_cursors;
         SELECT setval('placement_seq', 1, false);
         SELECT setval(pg_get_serial_sequence('events', 'seq'), 1, false);
         SELECT setval(pg_get_serial_sequence('history', 'id'), 1, false);
         SELECT setval(pg_get_serial_sequence('put_outbox', 'id'), 1, false);
         SELECT setval(pg_get_serial_sequence('put_rejected', 'id'), 1, false);
         COMMIT;",
        schema.quoted()
    );
    let result = admin.batch_execute(&sql).map_err(pg_err);
    if result.is_err() {
        // Leave the connection usable for the next call.
        let _ = admin.batch_execute("ROLLBACK");
    }
    result
}

/// A schema in the test database for one test. Dropping the guard empties
/// it for the next test of the process (see the module doc).
#[derive(Debug)]
pub struct TempSchema {
    url: String,
    name: String,
}

impl TempSchema {
    /// A clean, uniquely named schema: a recycled one, or a new name (the
    /// schema is created when a store opens it).
    ///
    /// # Panics
    /// If the test database cannot be reached (see [`skip_reason`]).
    pub fn new() -> TempSchema {
        let recycled = on_thread(|| with_registry(|r| Ok(r.free.pop())))
            .unwrap_or_else(|e| panic!("PostgreSQL test database at {}: {e}", test_url()));
        TempSchema {
            url: test_url(),
            name: recycled.unwrap_or_else(unique_schema_name),
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

    /// The test options for this schema: it selected, commits not waiting
    /// for the disk, no listener connection (tests of notifications and
    /// idle drains turn [`PostgresOptions::listen`] back on).
    pub fn options(&self) -> PostgresOptions {
        PostgresOptions {
            schema: Some(self.name.clone()),
            synchronous_commit: false,
            listen: false,
            ..PostgresOptions::default()
        }
    }

    /// Opens a store on this schema with `options` (its schema set to this
    /// one).
    pub fn open(&self, options: PostgresOptions) -> Result<PostgresStore> {
        self.open_with_logic(options, clew_core::logic::apply)
    }

    /// Like [`TempSchema::open`], the pool running `apply`.
    pub fn open_with_logic(
        &self,
        options: PostgresOptions,
        apply: ApplyFn,
    ) -> Result<PostgresStore> {
        let options = PostgresOptions {
            schema: Some(self.name.clone()),
            ..options
        };
        PostgresStore::open_with_logic(&self.url, options, apply)
    }

    /// A connection with `search_path` set to this schema, made on a
    /// helper thread. Use (and drop) it outside async code.
    pub fn connect(&self) -> Result<Client> {
        let target = Target::parse(&self.url, &self.options())?;
        on_thread(move || connect(&target))
    }

    /// A pipelining connection ([`PgConn`], as the store's pool threads
    /// use) with `search_path` set to this schema, made on a helper thread.
    /// Use (and drop) it outside async code.
    pub fn pipelined_connection(&self) -> Result<PgConn> {
        let target = Target::parse(&self.url, &self.options())?;
        on_thread(move || crate::schema::connect_pipelined(&target))
    }

    /// A connection like [`TempSchema::connect`] that has also created and
    /// migrated the schema, as a store's first connection does.
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
        let Ok(schema) = SchemaName::new(&self.name) else {
            return;
        };
        let recycled = on_thread(move || {
            with_registry(|r| {
                let exists = r
                    .admin
                    .query_opt(
                        "SELECT 1 FROM pg_namespace WHERE nspname = $1",
                        &[&schema.as_str()],
                    )
                    .map_err(pg_err)?
                    .is_some();
                if !exists {
                    return Ok(());
                }
                match reset_schema(&mut r.admin, &schema) {
                    Ok(()) => r.free.push(schema.as_str().to_owned()),
                    Err(e) => {
                        tracing::warn!(schema = schema.as_str(), error = %e, "resetting a test schema; dropping it");
                        r.admin
                            .batch_execute(&format!(
                                "DROP SCHEMA IF EXISTS {} CASCADE",
                                schema.quoted()
                            ))
                            .map_err(pg_err)?;
                    }
                }
                Ok(())
            })
        });
        if let Err(e) = recycled {
            eprintln!("warning: could not reset test schema {}: {e}", self.name);
        }
    }
}

/// A fresh store in a clean schema of the test database, with the test
/// options ([`TempSchema::options`]). Keep the guard alive as long as the
/// store.
///
/// # Panics
/// If the store cannot be opened (see [`skip_reason`] to skip first).
pub fn temp_store() -> (Arc<PostgresStore>, TempSchema) {
    let schema = TempSchema::new();
    let store = schema
        .open(schema.options())
        .unwrap_or_else(|e| panic!("opening a store on {}: {e}", schema.url));
    (Arc::new(store), schema)
}

/// Runs `f` on the [`PgTx`] primitives in one transaction on `conn`
/// (see [`TempSchema::pipelined_connection`]); commits if it returns `Ok`,
/// rolls back otherwise. Call outside async code.
pub fn in_tx<T>(conn: &mut PgConn, f: impl FnOnce(&mut PgTx<'_>) -> Result<T>) -> Result<T> {
    let mut statements = StatementCache::new();
    conn.batch_execute("BEGIN").map_err(pg_err)?;
    let value = {
        let mut pg = PgTx::new(conn, &mut statements);
        f(&mut pg).and_then(|value| {
            pg.commit(None, None)?;
            Ok(value)
        })
    };
    if value.is_err() && !conn.is_closed() {
        conn.batch_execute("ROLLBACK").map_err(pg_err)?;
    }
    value
}
