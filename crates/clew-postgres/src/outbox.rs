//! Transactional enqueue: the put outbox (migration `0002_outbox.sql`).
//!
//! An application puts a job inside its own transaction: the SQL function
//! `<schema>.put(queue, klass, data, options)` (any language), or
//! [`put_in`] / [`put_in_async`] (Rust). Either only inserts a row into
//! `<schema>.put_outbox` and sends a `put` notification, both of which take
//! effect when, and only if, the application's transaction commits.
//!
//! The store **drains** the outbox at the start of every command's
//! transaction, right after taking the command lock (a concurrent pop
//! first checks whether committed rows wait, and if so takes the lock
//! exclusively and drains like any command): it deletes the
//! committed rows (in `id` order) and runs each as a real put through the
//! same logic as every other put ([`clew_core::logic::apply`] with
//! [`Command::Put`]) at the command's `now`. So the job, its history, its
//! events and its lifecycle `enqueued` event are exactly those of a normal
//! put, and a command that runs after the application's commit (a `get`, a
//! `pop`) always finds the job. A store that listens (see
//! [`crate::PostgresOptions::listen`]) also drains when a `put`
//! notification arrives, so such jobs appear without other traffic.
//!
//! Each drained put runs in its own savepoint. One the logic refuses (an
//! invalid option that bypassed the SQL function's checks, say) is moved to
//! `<schema>.put_rejected` with the error and logged; it never blocks the
//! puts behind it or the command that drained it.

use std::sync::OnceLock;

use clew_core::command::PutParams;
use clew_core::unique::{OnConflict, Unique};
use clew_core::{Command, Error, Event, Origin, Result, Timestamp};
use postgres::types::Type;
use serde_json::{Map, Value};
use tokio_postgres::Row;

use crate::config::SchemaName;
use crate::conn::Answer;
use crate::store::{apply_logic, ApplyFn, Conn};
use crate::tx::{pg_err, Op};

/// Most rows one drain statement takes; a full page is followed by another
/// in the same transaction, so a drain always empties the outbox.
pub(crate) const DRAIN_PAGE: usize = 1_000;

/// One drain statement: deletes the oldest committed rows and returns them.
/// Uses the primary key's index, so it costs next to nothing when the
/// outbox is empty.
pub(crate) const DRAIN_SQL: &str = "DELETE FROM put_outbox WHERE id IN
     (SELECT id FROM put_outbox ORDER BY id LIMIT 1000)
     RETURNING id AS outbox_id, jid, queue, klass, data, options::text, origin_host,
               origin_pid, enqueued_at::text";

/// The worker name of a put whose options name none (as
/// [`PutParams::new`]).
const DEFAULT_WORKER: &str = "clew";

/// One row taken from the outbox.
#[derive(Clone, Debug)]
pub(crate) struct OutboxRow {
    id: i64,
    jid: String,
    queue: String,
    klass: String,
    data: String,
    options: String,
    origin_host: String,
    origin_pid: i64,
    enqueued_at: String,
}

impl OutboxRow {
    /// Reads a row of [`DRAIN_SQL`].
    fn from_row(row: &Row) -> Result<OutboxRow> {
        let text = |i: usize| -> Result<String> {
            row.try_get(i)
                .map_err(|e| Error::store(format!("put_outbox: column {i}: {}", pg_err(e))))
        };
        let int = |i: usize| -> Result<i64> {
            row.try_get(i)
                .map_err(|e| Error::store(format!("put_outbox: column {i}: {}", pg_err(e))))
        };
        Ok(OutboxRow {
            id: int(0)?,
            jid: text(1)?,
            queue: text(2)?,
            klass: text(3)?,
            data: text(4)?,
            options: text(5)?,
            origin_host: text(6)?,
            origin_pid: int(7)?,
            enqueued_at: text(8)?,
        })
    }

    /// Where the put came from: the application's host (its connection's
    /// client address) and process (0 when put through SQL).
    fn origin(&self) -> Origin {
        Origin {
            hostname: self.origin_host.clone(),
            process: u32::try_from(self.origin_pid).unwrap_or(0),
        }
    }

    /// The put this row asks for.
    fn put_params(&self) -> Result<PutParams> {
        let options: Map<String, Value> = serde_json::from_str(&self.options)
            .map_err(|e| Error::invalid(format!("put(): options are not a JSON object: {e}")))?;
        let mut p = PutParams::new(self.queue.clone(), self.klass.clone());
        p.jid = self.jid.clone();
        p.data = self.data.clone();
        let mut on_conflict = None;
        for (key, value) in options {
            match key.as_str() {
                "priority" => p.priority = Some(integer(&key, &value)?),
                "retries" => p.retries = Some(integer(&key, &value)?),
                "delay" => p.delay = number(&key, &value)?,
                "tags" => p.tags = Some(strings(&key, &value)?),
                "depends" => p.depends = Some(strings(&key, &value)?),
                "worker" => p.worker = string(&key, &value)?,
                "batch" => p.batch = Some(string(&key, &value)?),
                "metadata" => match value {
                    Value::Object(m) => p.metadata = Some(m),
                    other => return Err(bad_option(&key, "a JSON object", &other)),
                },
                // Written by put_in only (the SQL function does not take them).
                "unique_key" => p.unique = Some(Unique::new(string(&key, &value)?)),
                "on_conflict" => {
                    on_conflict = Some(OnConflict::parse("put", &string(&key, &value)?)?)
                }
                _ => {
                    return Err(Error::invalid(format!(
                        "put(): unknown option {key:?} (known: priority, tags, delay, retries, \
                         depends, metadata, worker, unique_key, on_conflict, batch)"
                    )))
                }
            }
        }
        match (&mut p.unique, on_conflict) {
            (Some(u), Some(policy)) => u.on_conflict = policy,
            (None, Some(_)) => {
                return Err(Error::invalid(
                    "put(): option \"on_conflict\" needs \"unique_key\"",
                ))
            }
            _ => {}
        }
        Ok(p)
    }
}

/// An option of the wrong type.
fn bad_option(key: &str, expected: &str, got: &Value) -> Error {
    Error::invalid(format!(
        "put(): option {key:?} must be {expected}, got {got}"
    ))
}

/// An integer option (`3` or `3.0`).
fn integer(key: &str, value: &Value) -> Result<i64> {
    value
        .as_i64()
        .or_else(|| {
            value
                .as_f64()
                .filter(|f| f.fract() == 0.0 && f.abs() < 9.2e18)
                .map(|f| f as i64)
        })
        .ok_or_else(|| bad_option(key, "an integer", value))
}

/// A number option.
fn number(key: &str, value: &Value) -> Result<f64> {
    value
        .as_f64()
        .ok_or_else(|| bad_option(key, "a number", value))
}

/// A string option.
fn string(key: &str, value: &Value) -> Result<String> {
    value
        .as_str()
        .map(str::to_owned)
        .ok_or_else(|| bad_option(key, "a string", value))
}

/// A list-of-strings option.
fn strings(key: &str, value: &Value) -> Result<Vec<String>> {
    let items = value
        .as_array()
        .ok_or_else(|| bad_option(key, "a JSON array of strings", value))?;
    items
        .iter()
        .map(|v| {
            v.as_str()
                .map(str::to_owned)
                .ok_or_else(|| bad_option(key, "a JSON array of strings", value))
        })
        .collect()
}

/// The outbox rows of an answer to [`DRAIN_SQL`].
pub(crate) fn drained_rows(answer: Option<Answer>) -> Result<Vec<OutboxRow>> {
    answer
        .map(Answer::rows)
        .unwrap_or_default()
        .iter()
        .map(OutboxRow::from_row)
        .collect()
}

/// Runs `page` (rows taken from the outbox) as puts at `now`, in `id`
/// order, each in its own savepoint; appends their events to `events`. A
/// put the logic refuses is recorded in `put_rejected`. Returns how many
/// rows were taken. An `Err` is a database failure: the caller rolls the
/// transaction back, and the rows stay in the outbox.
pub(crate) fn drain(
    conn: &mut Conn,
    apply: ApplyFn,
    now: Timestamp,
    mut page: Vec<OutboxRow>,
    events: &mut Vec<Event>,
) -> Result<usize> {
    page.sort_by_key(|row| row.id);
    for row in &page {
        drain_one(conn, apply, now, row, events)?;
    }
    Ok(page.len())
}

/// Runs one outbox row as a put, in a savepoint.
fn drain_one(
    conn: &mut Conn,
    apply: ApplyFn,
    now: Timestamp,
    row: &OutboxRow,
    events: &mut Vec<Event>,
) -> Result<()> {
    conn.send(vec![Op::Text("SAVEPOINT clew_put")])?;
    let outcome = row.put_params().and_then(|params| {
        apply_logic(
            &mut conn.tx(),
            apply,
            now,
            &row.origin(),
            &Command::Put(params),
            None,
            &mut || (),
        )
    });
    match outcome {
        Ok((_, put_events)) => {
            conn.send(vec![Op::Text("RELEASE SAVEPOINT clew_put")])?;
            events.extend(put_events);
            Ok(())
        }
        Err(e) if !conn.client.is_closed() => {
            conn.send(vec![Op::Text("ROLLBACK TO SAVEPOINT clew_put")])?;
            reject(conn, row, &e)
        }
        Err(e) => Err(e),
    }
}

/// Records a refused put in `put_rejected` and logs it.
fn reject(conn: &mut Conn, row: &OutboxRow, error: &Error) -> Result<()> {
    tracing::warn!(
        jid = row.jid,
        queue = row.queue,
        klass = row.klass,
        error = %error,
        "a put from the outbox was refused; it is recorded in put_rejected"
    );
    let message = error.message();
    conn.send(vec![Op::Exec(
        "INSERT INTO put_rejected (jid, queue, klass, data, options, origin_host, origin_pid,
                                   enqueued_at, error)
         VALUES ($1, $2, $3, $4, $5::text::jsonb, $6, $7, $8::text::timestamptz, $9)",
        vec![
            &row.jid,
            &row.queue,
            &row.klass,
            &row.data,
            &row.options,
            &row.origin_host,
            &row.origin_pid,
            &row.enqueued_at,
            &message,
        ],
    )])
    .map(drop)
    .map_err(|e| {
        Error::store(format!(
            "recording a refused put in put_rejected: {}",
            e.message()
        ))
    })
}

// --- put_in -------------------------------------------------------------

/// The row [`put_in`] inserts: the jid (generated if empty) and the
/// options object, after the same checks as any put.
fn outbox_entry(params: &PutParams) -> Result<(String, String)> {
    if params.must_exist {
        return Err(Error::invalid(
            "put_in(): requeue (must_exist) is not supported: the job may not exist until the \
             transaction commits",
        ));
    }
    let mut params = params.clone();
    if params.jid.is_empty() {
        params.jid = clew_core::engine::new_jid();
    }
    if params.worker.is_empty() {
        params.worker = DEFAULT_WORKER.to_owned();
    }
    let command = Command::Put(params);
    clew_core::logic::validate(&command)?;
    let Command::Put(params) = command else {
        unreachable!("built as a put above")
    };
    let mut options = Map::new();
    if let Some(priority) = params.priority {
        options.insert("priority".into(), priority.into());
    }
    if let Some(tags) = &params.tags {
        options.insert("tags".into(), tags.clone().into());
    }
    if params.delay > 0.0 {
        options.insert("delay".into(), params.delay.into());
    }
    if let Some(retries) = params.retries {
        options.insert("retries".into(), retries.into());
    }
    if let Some(depends) = &params.depends {
        options.insert("depends".into(), depends.clone().into());
    }
    if let Some(metadata) = &params.metadata {
        options.insert("metadata".into(), Value::Object(metadata.clone()));
    }
    if params.worker != DEFAULT_WORKER {
        options.insert("worker".into(), params.worker.clone().into());
    }
    if let Some(u) = &params.unique {
        options.insert("unique_key".into(), u.key.clone().into());
        options.insert("on_conflict".into(), u.on_conflict.as_str().into());
    }
    if let Some(batch) = &params.batch {
        options.insert("batch".into(), batch.clone().into());
    }
    let options = serde_json::to_string(&Value::Object(options))
        .map_err(|e| Error::invalid(format!("put_in(): encoding the options: {e}")))?;
    Ok((params.jid, options))
}

/// The statement [`put_in`] runs: insert the row and notify listeners (one
/// round trip, typed parameters, nothing to prepare).
fn put_in_sql(schema: &str) -> Result<String> {
    let schema = SchemaName::new(schema)?.quoted();
    Ok(format!(
        "WITH row AS (
             INSERT INTO {schema}.put_outbox
                 (jid, queue, klass, data, options, origin_host, origin_pid)
             VALUES ($1, $2, $3, $4, $5::jsonb, $6, $7) RETURNING jid)
         SELECT pg_notify({schema}.notify_channel(), 'put') FROM row"
    ))
}

/// The parameter types of [`put_in_sql`].
const PUT_IN_TYPES: [Type; 7] = [
    Type::TEXT,
    Type::TEXT,
    Type::TEXT,
    Type::TEXT,
    Type::TEXT,
    Type::TEXT,
    Type::INT8,
];

/// This process, as the origin of the puts it makes.
fn this_process() -> &'static Origin {
    static ORIGIN: OnceLock<Origin> = OnceLock::new();
    ORIGIN.get_or_init(Origin::this_process)
}

/// Puts a job inside the caller's open transaction `tx` on the database of
/// a clew store living in `schema`: the job exists if and only if `tx`
/// commits (see the module doc). Returns the jid (`params.jid`, or a new
/// one when empty).
///
/// `params.data` is stored byte for byte. The put is checked as
/// [`clew_core::Engine::put`] checks it (names, JSON data, delay, retries,
/// self-dependency); a requeue (`must_exist`) is refused. The job's
/// lifecycle events name this process as their origin. A uniqueness key
/// (`params.unique`) is applied when the store drains the put: the jid
/// returned here is then the one asked for, and a put the drain answers
/// with another holder changes nothing (`existing`, `replace` aside) or,
/// refused, lands in `put_rejected`.
///
/// ```no_run
/// # fn main() -> clew_core::Result<()> {
/// use clew_core::command::PutParams;
/// let mut client = postgres::Client::connect("postgres://app@db/app", postgres::NoTls)
///     .map_err(|e| clew_core::Error::store(e.to_string()))?;
/// let mut tx = client.transaction().map_err(|e| clew_core::Error::store(e.to_string()))?;
/// // ... the application's own writes ...
/// let mut put = PutParams::new("emails", "SendWelcome");
/// put.data = r#"{"user": 42}"#.to_owned();
/// let jid = clew_postgres::put_in(&mut tx, "clew", &put)?;
/// tx.commit().map_err(|e| clew_core::Error::store(e.to_string()))?;
/// # let _ = jid;
/// # Ok(())
/// # }
/// ```
pub fn put_in(
    tx: &mut postgres::Transaction<'_>,
    schema: &str,
    params: &PutParams,
) -> Result<String> {
    let row = PutInRow::new(schema, params)?;
    tx.query_typed(&row.sql, &row.typed(params))
        .map_err(|e| put_in_error(schema, e))?;
    Ok(row.jid)
}

/// [`put_in`] for an async application on `tokio-postgres`.
pub async fn put_in_async(
    tx: &tokio_postgres::Transaction<'_>,
    schema: &str,
    params: &PutParams,
) -> Result<String> {
    let row = PutInRow::new(schema, params)?;
    tx.query_typed(&row.sql, &row.typed(params))
        .await
        .map_err(|e| put_in_error(schema, e))?;
    Ok(row.jid)
}

/// The outbox insert of [`put_in`] / [`put_in_async`]: its SQL and the
/// values it binds besides the put's own fields.
struct PutInRow {
    sql: String,
    jid: String,
    options: String,
    pid: i64,
}

impl PutInRow {
    fn new(schema: &str, params: &PutParams) -> Result<PutInRow> {
        let sql = put_in_sql(schema)?;
        let (jid, options) = outbox_entry(params)?;
        let pid = i64::from(this_process().process);
        Ok(PutInRow {
            sql,
            jid,
            options,
            pid,
        })
    }

    /// The bound values with their types, in the SQL's order.
    fn typed<'a>(
        &'a self,
        params: &'a PutParams,
    ) -> Vec<(&'a (dyn postgres::types::ToSql + Sync), Type)> {
        let values: [&(dyn postgres::types::ToSql + Sync); 7] = [
            &self.jid,
            &params.queue,
            &params.klass,
            &params.data,
            &self.options,
            &this_process().hostname,
            &self.pid,
        ];
        values.into_iter().zip(PUT_IN_TYPES).collect()
    }
}

/// A failed [`put_in`] statement, with the schema it wrote to.
fn put_in_error(schema: &str, e: postgres::Error) -> Error {
    Error::store(format!(
        "put_in(): inserting into the outbox of schema {schema:?}: {}",
        pg_err(e).message()
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn row(options: &str) -> OutboxRow {
        OutboxRow {
            id: 1,
            jid: "j".into(),
            queue: "q".into(),
            klass: "K".into(),
            data: "{\"b\": 1,\"a\":2}".into(),
            options: options.into(),
            origin_host: "app".into(),
            origin_pid: 7,
            enqueued_at: "2024-01-01 00:00:00+00".into(),
        }
    }

    #[test]
    fn options_become_put_params() {
        let p = row(
            r#"{"priority": 3.0, "tags": ["a"], "delay": 1.5, "retries": 2,
                "depends": ["d"], "metadata": {"k": "v"}, "worker": "w"}"#,
        )
        .put_params()
        .unwrap();
        assert_eq!(p.priority, Some(3));
        assert_eq!(p.tags, Some(vec!["a".to_owned()]));
        assert_eq!(p.delay, 1.5);
        assert_eq!(p.retries, Some(2));
        assert_eq!(p.depends, Some(vec!["d".to_owned()]));
        assert_eq!(p.worker, "w");
        assert_eq!(p.data, "{\"b\": 1,\"a\":2}");
        assert_eq!(p.jid, "j");
        let p = row("{}").put_params().unwrap();
        assert_eq!(
            (p.priority, p.tags, p.worker.as_str()),
            (None, None, "clew")
        );
    }

    #[test]
    fn bad_options_are_named() {
        let e = row(r#"{"priority": "high"}"#).put_params().unwrap_err();
        assert!(
            e.message().contains("\"priority\" must be an integer"),
            "{e}"
        );
        let e = row(r#"{"tags": [1]}"#).put_params().unwrap_err();
        assert!(e.message().contains("\"tags\""), "{e}");
        let e = row(r#"{"prio": 1}"#).put_params().unwrap_err();
        assert!(e.message().contains("unknown option \"prio\""), "{e}");
    }

    #[test]
    fn put_in_checks_like_put_and_keeps_options_compact() {
        let mut p = PutParams::new("q", "K");
        p.priority = Some(2);
        p.tags = Some(vec!["t".into()]);
        let (jid, options) = outbox_entry(&p).unwrap();
        assert_eq!(jid.len(), 32);
        assert_eq!(options, r#"{"priority":2,"tags":["t"]}"#);
        p.data = "not json".into();
        let e = outbox_entry(&p).unwrap_err();
        assert!(e.message().contains("\"data\""), "{e}");
        let mut p = PutParams::new("q", "K");
        p.must_exist = true;
        assert!(outbox_entry(&p).is_err());
        assert!(put_in_sql("").is_err());
    }

    #[test]
    fn the_drain_statement_takes_pages_of_drain_page_rows() {
        assert!(
            DRAIN_SQL.contains(&format!("LIMIT {DRAIN_PAGE})")),
            "{DRAIN_SQL}"
        );
    }
}
