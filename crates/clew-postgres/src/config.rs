//! What [`crate::PostgresStore::open`] takes: the connection URL (with its
//! optional `schema` parameter), [`PostgresOptions`], and the schema name
//! with the advisory lock keys derived from it.

use std::str::FromStr;
use std::time::Duration;

use clew_core::{Error, Result};

/// The schema used when neither the URL nor the options name one.
pub const DEFAULT_SCHEMA: &str = "clew";

/// Longest schema name PostgreSQL keeps without truncating (`NAMEDATALEN - 1`).
const MAX_SCHEMA_LEN: usize = 63;

/// Settings for [`crate::PostgresStore::open`].
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PostgresOptions {
    /// The schema holding every clew object. `None`: the URL's `schema`
    /// parameter, else [`DEFAULT_SCHEMA`]. When both are given, this wins.
    pub schema: Option<String>,
    /// Most connections (and threads) the store opens (default 4; 0 counts
    /// as 1). Connections are opened as concurrent calls need them.
    pub pool_size: usize,
    /// How long to wait for a connection when the URL sets no
    /// `connect_timeout` (default 10 s).
    pub connect_timeout: Duration,
    /// Whether a commit waits for its WAL record to reach the disk
    /// (PostgreSQL's `synchronous_commit`; default `true`). `false` keeps
    /// every guarantee but durability: a server crash may lose the last
    /// commits (never half of one). The test helpers use `false`.
    pub synchronous_commit: bool,
    /// Whether the store keeps one more connection that `LISTEN`s on the
    /// schema's channel (default `true`): other processes' commits then
    /// wake [`clew_core::Store::subscribe_commits`] at once, and jobs that
    /// applications put through the outbox (see [`crate::outbox`]) are
    /// drained as soon as their transaction commits, even with no other
    /// traffic. Without it, such jobs appear at the next command. The test
    /// helpers turn it off (one connection less per test store).
    pub listen: bool,
    /// Whether pops run concurrently with each other (default `true`): a
    /// pop takes the schema's command lock in shared mode and claims the
    /// rows it changes with `FOR UPDATE SKIP LOCKED`, while every other
    /// command still takes it exclusively. `false`: every command,
    /// pops included, runs alone. See the crate doc.
    pub concurrent_pops: bool,
    /// Whether completes run next to pops and to each other (default
    /// `true`): a `complete` that moves no job on to another queue, and a
    /// `complete_many` of such completes, take the command lock in shared
    /// mode (as a pop does) and read the job rows they change `FOR
    /// UPDATE`. `false`: they hold the command lock exclusively, as every
    /// other command does. See the crate doc.
    pub concurrent_completes: bool,
    /// Whether puts of new jobs run next to pops, completes and each other
    /// (default `true`): a `put` (or an atomic or non-atomic batch of
    /// puts, `put_many`) that names no dependencies, unique key, batch or
    /// throttles and is not a requeue takes the command lock in shared
    /// mode. If its job turns out to exist already (it would move it), or
    /// another put inserts the same jid first, it rolls back and runs
    /// again alone. `false`: puts hold the command lock exclusively. See
    /// the crate doc.
    pub concurrent_puts: bool,
    /// The most commands a pool thread runs in one transaction (group
    /// commit, default 64; 0 counts as 1). A thread that takes a command
    /// other than a concurrent pop also takes the commands already queued
    /// behind it, up to this many in all, and commits them together: they
    /// hold the same exclusive lock one after another anyway, and share one
    /// `COMMIT` (one WAL flush) instead of paying one each. See the crate
    /// doc.
    pub group_max: usize,
}

impl Default for PostgresOptions {
    fn default() -> PostgresOptions {
        PostgresOptions {
            schema: None,
            pool_size: 4,
            connect_timeout: Duration::from_secs(10),
            synchronous_commit: true,
            listen: true,
            concurrent_pops: true,
            concurrent_completes: true,
            concurrent_puts: true,
            group_max: 64,
        }
    }
}

/// The schema a store lives in, quoted for SQL, with its lock keys.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SchemaName {
    name: String,
}

impl SchemaName {
    /// Checks a schema name: non-empty, at most 63 bytes, no NUL.
    pub fn new(name: &str) -> Result<SchemaName> {
        if name.is_empty() {
            return Err(Error::invalid("PostgreSQL schema name is empty"));
        }
        if name.len() > MAX_SCHEMA_LEN {
            return Err(Error::invalid(format!(
                "PostgreSQL schema name {name:?} is longer than {MAX_SCHEMA_LEN} bytes"
            )));
        }
        if name.contains('\0') {
            return Err(Error::invalid(format!(
                "PostgreSQL schema name {name:?} contains a NUL character"
            )));
        }
        Ok(SchemaName {
            name: name.to_owned(),
        })
    }

    /// The name as given.
    pub fn as_str(&self) -> &str {
        &self.name
    }

    /// The name as a quoted SQL identifier (`"my""schema"`).
    pub fn quoted(&self) -> String {
        format!("\"{}\"", self.name.replace('"', "\"\""))
    }

    /// The advisory lock every command's transaction takes: commands on one
    /// schema run one at a time, across every process.
    pub fn command_lock_key(&self) -> i64 {
        fnv1a64("clew:commands:", &self.name)
    }

    /// The advisory lock a concurrent pop takes, exclusively, right before
    /// writing its events and holds to its commit: event-writing commits
    /// then follow sequence order (see the crate doc).
    pub fn event_lock_key(&self) -> i64 {
        fnv1a64("clew:events:", &self.name)
    }

    /// The advisory lock held while migrating the schema.
    pub fn migration_lock_key(&self) -> i64 {
        fnv1a64("clew:migrate:", &self.name)
    }
}

/// FNV-1a (64 bits) of `prefix` then `name`, as a signed advisory lock key.
/// Stable across builds and platforms, so every process derives the same key.
fn fnv1a64(prefix: &str, name: &str) -> i64 {
    let mut hash: u64 = 0xcbf2_9ce4_8422_2325;
    for byte in prefix.bytes().chain(name.bytes()) {
        hash ^= u64::from(byte);
        hash = hash.wrapping_mul(0x0000_0100_0000_01b3);
    }
    i64::from_ne_bytes(hash.to_ne_bytes())
}

/// A connection URL split into the driver's configuration and the `schema`
/// parameter (which the driver does not know).
#[derive(Clone, Debug)]
pub(crate) struct Target {
    pub(crate) config: tokio_postgres::Config,
    pub(crate) schema: SchemaName,
    pub(crate) synchronous_commit: bool,
}

impl Target {
    /// Parses `url` (`postgres://user@host:port/db?schema=name&...` or the
    /// `key=value` form, where `schema=name` is also accepted) and applies
    /// `options`.
    pub(crate) fn parse(url: &str, options: &PostgresOptions) -> Result<Target> {
        let (rest, url_schema) = take_schema_param(url)?;
        let mut config = tokio_postgres::Config::from_str(&rest)
            .map_err(|e| Error::invalid(format!("PostgreSQL URL {}: {e}", redact(url))))?;
        if config.get_connect_timeout().is_none() {
            config.connect_timeout(options.connect_timeout);
        }
        if config.get_application_name().is_none() {
            config.application_name("clew");
        }
        let name = options
            .schema
            .clone()
            .or(url_schema)
            .unwrap_or_else(|| DEFAULT_SCHEMA.to_owned());
        Ok(Target {
            config,
            schema: SchemaName::new(&name)?,
            synchronous_commit: options.synchronous_commit,
        })
    }
}

/// The URL without its password, for error messages.
pub(crate) fn redact(url: &str) -> String {
    let Some((scheme, rest)) = url.split_once("://") else {
        return url.to_owned();
    };
    let (authority, tail) = match rest.find(['/', '?']) {
        Some(i) => rest.split_at(i),
        None => (rest, ""),
    };
    match authority.rsplit_once('@') {
        Some((userinfo, host)) => {
            let user = userinfo.split(':').next().unwrap_or("");
            if userinfo.contains(':') {
                format!("{scheme}://{user}:***@{host}{tail}")
            } else {
                url.to_owned()
            }
        }
        None => url.to_owned(),
    }
}

/// Where a configuration connects (user, hosts, ports, database; never the
/// password), for error messages.
pub(crate) fn redact_config(config: &tokio_postgres::Config) -> String {
    let hosts: Vec<String> = config
        .get_hosts()
        .iter()
        .map(|h| match h {
            tokio_postgres::config::Host::Tcp(name) => name.clone(),
            #[cfg(unix)]
            tokio_postgres::config::Host::Unix(path) => path.display().to_string(),
        })
        .collect();
    let ports: Vec<String> = config.get_ports().iter().map(u16::to_string).collect();
    format!(
        "postgres://{}@{}:{}/{}",
        config.get_user().unwrap_or(""),
        hosts.join(","),
        ports.join(","),
        config.get_dbname().unwrap_or("")
    )
}

/// Removes the `schema` parameter from a URL's query string (or a
/// `schema=...` pair from the `key=value` form); returns the rest and the
/// decoded schema name, if any.
fn take_schema_param(url: &str) -> Result<(String, Option<String>)> {
    if !(url.starts_with("postgres://") || url.starts_with("postgresql://")) {
        return Ok(take_schema_pair(url));
    }
    let Some((base, query)) = url.split_once('?') else {
        return Ok((url.to_owned(), None));
    };
    let mut schema = None;
    let mut kept = Vec::new();
    for pair in query.split('&').filter(|p| !p.is_empty()) {
        match pair.split_once('=') {
            Some(("schema", value)) => schema = Some(percent_decode(value)?),
            _ => kept.push(pair),
        }
    }
    let rest = if kept.is_empty() {
        base.to_owned()
    } else {
        format!("{base}?{}", kept.join("&"))
    };
    Ok((rest, schema))
}

/// The `key=value` form: removes a whitespace-separated `schema=...` pair.
fn take_schema_pair(conninfo: &str) -> (String, Option<String>) {
    let mut schema = None;
    let mut kept = Vec::new();
    for word in conninfo.split_whitespace() {
        match word.strip_prefix("schema=") {
            Some(value) => schema = Some(value.trim_matches('\'').to_owned()),
            None => kept.push(word),
        }
    }
    (kept.join(" "), schema)
}

/// Decodes `%XX` escapes (and `+` as a space is *not* applied: URLs here are
/// not form data).
fn percent_decode(value: &str) -> Result<String> {
    let bytes = value.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] == b'%' {
            let hex = value
                .get(i + 1..i + 3)
                .and_then(|h| u8::from_str_radix(h, 16).ok())
                .ok_or_else(|| {
                    Error::invalid(format!("schema parameter {value:?}: bad % escape"))
                })?;
            out.push(hex);
            i += 3;
        } else {
            out.push(bytes[i]);
            i += 1;
        }
    }
    String::from_utf8(out)
        .map_err(|_| Error::invalid(format!("schema parameter {value:?} is not UTF-8")))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_schema_parameter_is_taken_out_of_the_url() {
        let (rest, schema) = take_schema_param("postgres://u@h:5432/db?schema=a%20b").unwrap();
        assert_eq!(rest, "postgres://u@h:5432/db");
        assert_eq!(schema.as_deref(), Some("a b"));
        let (rest, schema) =
            take_schema_param("postgres://u@h/db?sslmode=disable&schema=x&connect_timeout=3")
                .unwrap();
        assert_eq!(rest, "postgres://u@h/db?sslmode=disable&connect_timeout=3");
        assert_eq!(schema.as_deref(), Some("x"));
        let (rest, schema) = take_schema_param("host=h dbname=db schema=s user=u").unwrap();
        assert_eq!(rest, "host=h dbname=db user=u");
        assert_eq!(schema.as_deref(), Some("s"));
    }

    #[test]
    fn options_win_over_the_url_and_the_default_is_clew() {
        let t = Target::parse("postgres://u@h/db", &PostgresOptions::default()).unwrap();
        assert_eq!(t.schema.as_str(), DEFAULT_SCHEMA);
        let t = Target::parse("postgres://u@h/db?schema=s1", &PostgresOptions::default()).unwrap();
        assert_eq!(t.schema.as_str(), "s1");
        let options = PostgresOptions {
            schema: Some("s2".into()),
            ..PostgresOptions::default()
        };
        let t = Target::parse("postgres://u@h/db?schema=s1", &options).unwrap();
        assert_eq!(t.schema.as_str(), "s2");
    }

    #[test]
    fn bad_names_and_urls_are_refused_clearly() {
        assert!(SchemaName::new("").is_err());
        assert!(SchemaName::new(&"x".repeat(64)).is_err());
        let e =
            Target::parse("postgres://u@h/db?schema=%zz", &PostgresOptions::default()).unwrap_err();
        assert!(e.message().contains("bad % escape"), "{e}");
        let e = Target::parse(
            "postgres://u:secret@h/db?bogus=1",
            &PostgresOptions::default(),
        )
        .unwrap_err();
        assert!(!e.message().contains("secret"), "{e}");
    }

    #[test]
    fn identifiers_are_quoted_and_keys_differ_per_schema() {
        let s = SchemaName::new("a\"b").unwrap();
        assert_eq!(s.quoted(), "\"a\"\"b\"");
        let t = SchemaName::new("clew").unwrap();
        assert_ne!(s.command_lock_key(), t.command_lock_key());
        assert_ne!(t.command_lock_key(), t.migration_lock_key());
        assert_ne!(t.command_lock_key(), t.event_lock_key());
        assert_ne!(t.event_lock_key(), t.migration_lock_key());
        assert_eq!(t.command_lock_key(), fnv1a64("clew:commands:", "clew"));
    }
}
