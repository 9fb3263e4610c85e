//! Connections and schema migrations.
//!
//! Every connection sets `search_path` to the store's schema, so the SQL of
//! this crate names no schema. Migrations run at open in one transaction
//! under an advisory lock derived from the schema name: processes that open
//! the same schema at once wait for each other, the first one migrates, and
//! the others find the schema current. The applied versions are rows of
//! `clew_migrations` in the schema; a crash mid-migration rolls the whole
//! transaction back (PostgreSQL's DDL is transactional).

use clew_core::{Error, Result};
use postgres::{Client, NoTls};

use crate::config::{redact_config, SchemaName, Target};
use crate::conn::PgConn;
use crate::tx::pg_err;

/// The migrations, in order; migration `i` brings the schema to version `i + 1`.
const MIGRATIONS: &[&str] = &[
    include_str!("../migrations/0001_init.sql"),
    include_str!("../migrations/0002_outbox.sql"),
    include_str!("../migrations/0003_cursors.sql"),
    include_str!("../migrations/0004_complete_count.sql"),
    include_str!("../migrations/0005_unique_key.sql"),
    include_str!("../migrations/0006_recur_cron.sql"),
    include_str!("../migrations/0007_batches.sql"),
    include_str!("../migrations/0008_throttles.sql"),
    include_str!("../migrations/0009_throttle_rate.sql"),
    include_str!("../migrations/0010_put_jid_v7.sql"),
    include_str!("../migrations/0011_complete_count_shards.sql"),
];

/// The schema version this build writes and understands.
pub const SCHEMA_VERSION: i64 = MIGRATIONS.len() as i64;

/// What every connection runs first: `search_path` set to the schema
/// (an identifier, validated by [`SchemaName`] and quoted), and
/// `synchronous_commit` when turned off.
fn setup_sql(target: &Target) -> String {
    let mut setup = format!("SET search_path TO {};", target.schema.quoted());
    if !target.synchronous_commit {
        setup.push_str("SET synchronous_commit TO off;");
    }
    setup
}

/// The error of a failed connection attempt.
fn connect_error(target: &Target, e: &Error) -> Error {
    Error::store(format!(
        "connecting to PostgreSQL at {}: {}",
        redact_config(&target.config),
        e.message()
    ))
}

/// Opens a connection of the synchronous driver to `target` with
/// `search_path` set to its schema (migrations, the coordination thread,
/// tests).
pub(crate) fn connect(target: &Target) -> Result<Client> {
    let mut client = postgres::Config::from(target.config.clone())
        .connect(NoTls)
        .map_err(|e| connect_error(target, &pg_err(e)))?;
    client
        .batch_execute(&setup_sql(target))
        .map_err(|e| Error::store(format!("setting up a connection: {}", pg_err(e).message())))?;
    Ok(client)
}

/// Opens a pipelining connection ([`PgConn`]) to `target` with
/// `search_path` set to its schema (the pool threads, the listener).
pub(crate) fn connect_pipelined(target: &Target) -> Result<PgConn> {
    let mut conn = PgConn::connect(&target.config).map_err(|e| connect_error(target, &e))?;
    conn.batch_execute(&setup_sql(target))
        .map_err(|e| Error::store(format!("setting up a connection: {}", pg_err(e).message())))?;
    Ok(conn)
}

/// Creates the schema if needed and applies every migration it lacks, in one
/// transaction under the schema's migration lock.
pub(crate) fn migrate(client: &mut Client, schema: &SchemaName) -> Result<()> {
    let context = |e: postgres::Error| {
        Error::store(format!(
            "migrating PostgreSQL schema {}: {}",
            schema.quoted(),
            pg_err(e).message()
        ))
    };
    // READ COMMITTED: after waiting for the lock, see what another
    // process's migration committed meanwhile.
    let mut tx = client
        .build_transaction()
        .isolation_level(postgres::IsolationLevel::ReadCommitted)
        .start()
        .map_err(context)?;
    tx.execute(
        "SELECT pg_advisory_xact_lock($1)",
        &[&schema.migration_lock_key()],
    )
    .map_err(context)?;
    // CREATE SCHEMA needs the CREATE privilege on the database even with IF
    // NOT EXISTS, so a role that may only use an existing schema skips it.
    let row = tx
        .query_one(
            "SELECT EXISTS (SELECT 1 FROM pg_namespace WHERE nspname = $1),
                    to_regclass(quote_ident($1) || '.clew_migrations') IS NOT NULL",
            &[&schema.as_str()],
        )
        .map_err(context)?;
    let (schema_exists, table_exists): (bool, bool) = (
        row.try_get(0).map_err(context)?,
        row.try_get(1).map_err(context)?,
    );
    let mut setup = String::new();
    if !schema_exists {
        setup.push_str(&format!("CREATE SCHEMA {};", schema.quoted()));
    }
    if !table_exists {
        setup.push_str(
            "CREATE TABLE clew_migrations (
                 version    BIGINT PRIMARY KEY,
                 applied_at TIMESTAMPTZ NOT NULL DEFAULT now()
             );",
        );
    }
    if !setup.is_empty() {
        tx.batch_execute(&setup).map_err(context)?;
    }
    let version: i64 = tx
        .query_one("SELECT COALESCE(MAX(version), 0) FROM clew_migrations", &[])
        .and_then(|row| row.try_get(0))
        .map_err(context)?;
    check_version(version)?;
    for (index, sql) in MIGRATIONS.iter().enumerate().skip(version as usize) {
        let next = index as i64 + 1;
        tx.batch_execute(sql).map_err(|e| {
            Error::store(format!(
                "migrating PostgreSQL schema {} to version {next}: {}",
                schema.quoted(),
                pg_err(e).message()
            ))
        })?;
        tx.execute(
            "INSERT INTO clew_migrations (version) VALUES ($1)",
            &[&next],
        )
        .map_err(context)?;
    }
    tx.commit().map_err(context)
}

/// Refuses schemas written by a newer clew.
fn check_version(version: i64) -> Result<()> {
    if !(0..=SCHEMA_VERSION).contains(&version) {
        return Err(Error::store(format!(
            "PostgreSQL schema version {version} is not supported (this build knows 0 to \
             {SCHEMA_VERSION}); was it written by a newer clew?"
        )));
    }
    Ok(())
}
