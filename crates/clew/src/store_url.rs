//! `--db`: which store a command opens, and opening it.
//!
//! * `sqlite:PATH` or a bare `PATH`: the embedded SQLite store (one machine).
//!   `--synchronous` applies to it only.
//! * `postgres://USER@HOST:PORT/DB?schema=NAME` (or `postgresql://`): the
//!   shared PostgreSQL store, which any number of servers and workers can
//!   use at once. `schema` (default `clew`) selects the schema; `pool=N`
//!   (or `--pg-pool N`, which wins) the most connections this process opens.
//!
//! Anything else (`http://...`, an empty value) is refused with a message
//! that points at `--url` for a server.

use std::path::PathBuf;
use std::sync::Arc;

use anyhow::Context;
use clew_core::{Error, Store};
use clew_postgres::{PostgresOptions, PostgresStore};
use clew_sqlite::{SqliteOptions, SqliteStore, Synchronous};

/// A parsed `--db` value.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum StoreUrl {
    /// The embedded SQLite store in this file.
    Sqlite(PathBuf),
    /// The PostgreSQL store.
    Postgres {
        /// The connection URL without clew's own `pool` parameter (it keeps
        /// `schema`, which the store reads).
        url: String,
        /// `pool=N` from the URL.
        pool: Option<usize>,
    },
}

/// How to open a store, beyond its URL.
#[derive(Clone, Debug, Default)]
pub struct StoreOptions {
    /// `--synchronous` (SQLite only): `normal`, `full` or `off`; `None`
    /// keeps the default.
    pub synchronous: Option<String>,
    /// `--pg-pool` (PostgreSQL only): the most connections; wins over the
    /// URL's `pool=N`.
    pub pg_pool: Option<usize>,
}

impl StoreUrl {
    /// Parses a `--db` value (see the module doc).
    pub fn parse(db: &str) -> anyhow::Result<StoreUrl> {
        let refuse = || {
            Error::invalid(format!(
                "--db: expected sqlite:PATH or postgres://..., got {db} (for a server use --url)"
            ))
        };
        if db.starts_with("postgres://") || db.starts_with("postgresql://") {
            let (url, pool) = take_pool_param(db)?;
            return Ok(StoreUrl::Postgres { url, pool });
        }
        let path = db.strip_prefix("sqlite:").unwrap_or(db);
        if path.is_empty() || path.contains("://") {
            return Err(refuse().into());
        }
        Ok(StoreUrl::Sqlite(PathBuf::from(path)))
    }

    /// Whether this is the shared (PostgreSQL) store.
    pub fn is_shared(&self) -> bool {
        matches!(self, StoreUrl::Postgres { .. })
    }

    /// Where file cursors of `--publish` sinks go by default: next to a
    /// SQLite file (`PATH.cursors`). `None` for PostgreSQL, which keeps
    /// them in the database.
    pub fn default_cursor_dir(&self) -> Option<PathBuf> {
        match self {
            StoreUrl::Sqlite(path) => Some(PathBuf::from(format!("{}.cursors", path.display()))),
            StoreUrl::Postgres { .. } => None,
        }
    }

    /// Opens the store (creating and migrating it if needed).
    pub fn open(&self, options: &StoreOptions) -> anyhow::Result<Arc<dyn Store>> {
        match self {
            StoreUrl::Sqlite(path) => {
                let synchronous = match options.synchronous.as_deref() {
                    None => SqliteOptions::default().synchronous,
                    Some(s) => parse_synchronous(s)?,
                };
                let sqlite = SqliteOptions {
                    synchronous,
                    ..SqliteOptions::default()
                };
                let store = SqliteStore::open(path, sqlite)
                    .with_context(|| format!("opening {}", path.display()))?;
                Ok(Arc::new(store))
            }
            StoreUrl::Postgres { url, pool } => {
                let mut pg = PostgresOptions::default();
                if let Some(n) = options.pg_pool.or(*pool) {
                    pg.pool_size = check_pool("--pg-pool", n)?;
                }
                let store = PostgresStore::open(url, pg)?;
                Ok(Arc::new(store))
            }
        }
    }

    /// The schema version of an open store of this kind, as `clew migrate`
    /// reports it: the version this build migrates to (opening refuses a
    /// newer one and migrates an older one).
    pub fn schema_version(&self) -> i64 {
        match self {
            StoreUrl::Sqlite(_) => clew_sqlite::SCHEMA_VERSION,
            StoreUrl::Postgres { .. } => clew_postgres::SCHEMA_VERSION,
        }
    }
}

/// `--synchronous`'s value.
fn parse_synchronous(s: &str) -> anyhow::Result<Synchronous> {
    match s {
        "normal" => Ok(Synchronous::Normal),
        "full" => Ok(Synchronous::Full),
        "off" => Ok(Synchronous::Off),
        other => Err(Error::invalid(format!(
            "--synchronous: expected normal, full or off, got {other}"
        ))
        .into()),
    }
}

/// A pool size: 1 to 256.
fn check_pool(what: &str, n: usize) -> anyhow::Result<usize> {
    if !(1..=256).contains(&n) {
        return Err(Error::invalid(format!(
            "{what}: expected a number of connections from 1 to 256, got {n}"
        ))
        .into());
    }
    Ok(n)
}

/// Removes `pool=N` from a PostgreSQL URL's query string; returns the rest
/// and N.
fn take_pool_param(url: &str) -> anyhow::Result<(String, Option<usize>)> {
    let Some((base, query)) = url.split_once('?') else {
        return Ok((url.to_owned(), None));
    };
    let mut pool = None;
    let mut kept = Vec::new();
    for pair in query.split('&').filter(|p| !p.is_empty()) {
        match pair.split_once('=') {
            Some(("pool", value)) => {
                let n = value.parse::<usize>().map_err(|_| {
                    Error::invalid(format!(
                        "--db: pool={value}: expected a number of connections from 1 to 256"
                    ))
                })?;
                pool = Some(check_pool("--db: pool", n)?);
            }
            _ => kept.push(pair),
        }
    }
    let rest = if kept.is_empty() {
        base.to_owned()
    } else {
        format!("{base}?{}", kept.join("&"))
    };
    Ok((rest, pool))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sqlite_paths_with_or_without_the_prefix() {
        assert_eq!(
            StoreUrl::parse("sqlite:a/b.db").unwrap(),
            StoreUrl::Sqlite("a/b.db".into())
        );
        assert_eq!(
            StoreUrl::parse("b.db").unwrap(),
            StoreUrl::Sqlite("b.db".into())
        );
        assert_eq!(
            StoreUrl::parse("sqlite:x.db").unwrap().default_cursor_dir(),
            Some(PathBuf::from("x.db.cursors"))
        );
    }

    #[test]
    fn postgres_urls_keep_the_schema_and_lose_the_pool() {
        let u = StoreUrl::parse("postgres://u@h:5432/db?schema=s&pool=8").unwrap();
        assert_eq!(
            u,
            StoreUrl::Postgres {
                url: "postgres://u@h:5432/db?schema=s".into(),
                pool: Some(8)
            }
        );
        assert!(u.is_shared());
        assert_eq!(u.default_cursor_dir(), None);
        let u = StoreUrl::parse("postgresql://u@h/db?pool=2").unwrap();
        assert_eq!(
            u,
            StoreUrl::Postgres {
                url: "postgresql://u@h/db".into(),
                pool: Some(2)
            }
        );
    }

    #[test]
    fn anything_else_is_refused_clearly() {
        for bad in ["http://127.0.0.1:7400", "", "sqlite:", "mysql://h/db"] {
            let e = StoreUrl::parse(bad).unwrap_err().to_string();
            assert!(
                e.contains("expected sqlite:PATH or postgres://") && e.contains("--url"),
                "{bad}: {e}"
            );
        }
        for bad in ["pool=0", "pool=x", "pool=1000"] {
            let e = StoreUrl::parse(&format!("postgres://u@h/db?{bad}"))
                .unwrap_err()
                .to_string();
            assert!(e.contains("pool"), "{bad}: {e}");
        }
        let e = parse_synchronous("fast").unwrap_err().to_string();
        assert!(e.contains("--synchronous"), "{e}");
    }
}
