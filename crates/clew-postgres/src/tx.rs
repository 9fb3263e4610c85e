//! [`PgTx`]: the [`Tx`] primitives as SQL statements inside one PostgreSQL
//! transaction.
//!
//! Every primitive is one or two prepared statements, prepared once per
//! connection ([`StatementCache`]). The caller owns the transaction (and the
//! advisory lock that serializes commands): the store's pool threads wrap
//! each command in its own transaction; tests use [`crate::testing::in_tx`].

use std::collections::HashMap;

use clew_core::tx::{Counter, LocCounts, StatKind, TimeRange, TimingStat};
use clew_core::{Error, Failure, HistoryEntry, JobRecord, JobState, Loc, RecurRecord, Result};
use clew_core::{Timestamp, Tx};
use postgres::error::SqlState;
use postgres::types::ToSql;
use postgres::{GenericClient, Row, Statement};
use serde_json::{Map, Value};

/// Turns a driver error into clew's store error, with the server's message,
/// detail and hint when it has them.
pub(crate) fn pg_err(e: postgres::Error) -> Error {
    if let Some(db) = e.as_db_error() {
        let mut message = format!("postgres: {}: {}", db.severity(), db.message());
        if let Some(detail) = db.detail() {
            message.push_str(&format!(" ({detail})"));
        }
        if let Some(hint) = db.hint() {
            message.push_str(&format!(" hint: {hint}"));
        }
        return Error::store(message);
    }
    let mut message = format!("postgres: {e}");
    let mut source = std::error::Error::source(&e);
    while let Some(cause) = source {
        let text = cause.to_string();
        if !message.contains(&text) {
            message.push_str(&format!(": {text}"));
        }
        source = cause.source();
    }
    Error::store(message)
}

/// `.pg()`: [`pg_err`] as a method on driver results.
pub(crate) trait PgResult<T> {
    /// Maps the error to a store error.
    fn pg(self) -> Result<T>;
}

impl<T> PgResult<T> for std::result::Result<T, postgres::Error> {
    fn pg(self) -> Result<T> {
        self.map_err(pg_err)
    }
}

/// A column holding something this crate did not write (a corrupt or
/// foreign row).
fn corrupt(what: String) -> Error {
    Error::store(format!("postgres: unexpected stored value: {what}"))
}

/// Parses a JSON text column.
fn json_col<T: serde::de::DeserializeOwned>(row: &Row, col: usize) -> Result<T> {
    let text: String = row.try_get(col).pg()?;
    serde_json::from_str(&text).map_err(|e| corrupt(format!("JSON column {col}: {e}")))
}

/// Serializes a value for a JSON column.
fn to_json_text<T: serde::Serialize + ?Sized>(value: &T) -> Result<String> {
    serde_json::to_string(value).map_err(|e| Error::store(format!("encoding JSON column: {e}")))
}

/// The bounds of a [`TimeRange`] as inclusive microseconds.
fn bounds(range: TimeRange) -> (i64, i64) {
    (
        range.min.map_or(i64::MIN, |t| t.0),
        range.max.map_or(i64::MAX, |t| t.0),
    )
}

/// A `LIMIT` meaning "at most `limit`" (a negative one means none).
fn limit(limit: i64) -> i64 {
    limit.max(0)
}

/// An `OFFSET` (negative offsets skip nothing).
fn offset(offset: i64) -> i64 {
    offset.max(0)
}

/// Statements prepared on one connection, by SQL text. Prepared statements
/// belong to the connection, not to a transaction, so they survive commits
/// and rollbacks.
#[derive(Debug, Default)]
pub struct StatementCache {
    statements: HashMap<&'static str, Statement>,
}

impl StatementCache {
    /// An empty cache.
    pub fn new() -> StatementCache {
        StatementCache::default()
    }
}

/// The [`Tx`] primitives on a client (a [`postgres::Client`] or
/// [`postgres::Transaction`]) inside a transaction the caller has begun.
///
/// Config values read or written are remembered for the transaction's
/// lifetime: the command holds the store's advisory lock (exclusively, or
/// shared by concurrent pops, none of which writes config), so nobody else
/// changes them meanwhile.
///
/// **Claiming** ([`PgTx::claiming`], for a pop holding the lock in shared
/// mode next to other pops): every row the pop may change is locked as it
/// is selected, so two concurrent pops never act on the same row.
/// * the job lists a pop takes jobs from (stalled locks, due scheduled
///   jobs, the work list) and the due recurring templates are selected
///   `FOR UPDATE SKIP LOCKED`: a row another pop holds is skipped, and a
///   row another pop changed and committed meanwhile is re-checked against
///   the query's conditions on its new version (READ COMMITTED), so a job
///   it took is never handed out again and a template it advanced is not
///   spawned twice; what is read after the claim (`job_get`, `recur_get`)
///   is the latest committed row;
/// * the queue's running count (read for `max-concurrency`) is taken under
///   a per-queue exclusive advisory lock held to the commit, so pops of a
///   capped queue count one after another;
/// * a timing statistic, read then written back by the logic (Welford's
///   update), is read `FOR UPDATE` (its row created first if missing), so
///   concurrent updates queue up instead of losing one; counters and
///   histogram buckets are incremented in SQL.
pub struct PgTx<'t, C: GenericClient> {
    client: &'t mut C,
    statements: &'t mut StatementCache,
    config: HashMap<String, Option<String>>,
    /// The schema name when claiming rows (see above).
    claims: Option<String>,
    /// The SQLSTATE of the last statement that failed.
    failed: Option<SqlState>,
}

impl<C: GenericClient> std::fmt::Debug for PgTx<'_, C> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PgTx")
            .field("prepared", &self.statements.statements.len())
            .finish()
    }
}

impl<'t, C: GenericClient> PgTx<'t, C> {
    /// Primitives on `client`, preparing statements into `statements`.
    pub fn new(client: &'t mut C, statements: &'t mut StatementCache) -> PgTx<'t, C> {
        PgTx {
            client,
            statements,
            config: HashMap::new(),
            claims: None,
            failed: None,
        }
    }

    /// Claims the rows a pop may change as it selects them (see the type
    /// doc); `schema` names the per-queue locks.
    pub fn claiming(mut self, schema: &str) -> PgTx<'t, C> {
        self.claims = Some(schema.to_owned());
        self
    }

    /// Whether the last failed statement failed only because of concurrent
    /// transactions (a deadlock or serialization failure): the whole
    /// transaction can be rolled back and run again.
    pub fn retryable(&self) -> bool {
        self.failed.as_ref().is_some_and(|code| {
            *code == SqlState::T_R_DEADLOCK_DETECTED || *code == SqlState::T_R_SERIALIZATION_FAILURE
        })
    }

    /// Takes a transaction-level exclusive advisory lock.
    pub fn advisory_lock(&mut self, key: i64) -> Result<()> {
        self.exec("SELECT pg_advisory_xact_lock($1)", &[&key])?;
        Ok(())
    }

    /// Records a failed statement's SQLSTATE and turns the error into a
    /// store error.
    fn failure(&mut self, e: postgres::Error) -> Error {
        if let Some(code) = e.code() {
            self.failed = Some(code.clone());
        }
        pg_err(e)
    }

    /// The client.
    pub fn client(&mut self) -> &mut C {
        self.client
    }

    /// The prepared statement for `sql`, preparing it on first use.
    fn prepared(&mut self, sql: &'static str) -> Result<Statement> {
        if let Some(statement) = self.statements.statements.get(sql) {
            return Ok(statement.clone());
        }
        let prepared = self.client.prepare(sql);
        let statement = prepared.map_err(|e| self.failure(e))?;
        self.statements.statements.insert(sql, statement.clone());
        Ok(statement)
    }

    /// Runs a statement returning nothing; returns the number of changed rows.
    fn exec(&mut self, sql: &'static str, params: &[&(dyn ToSql + Sync)]) -> Result<u64> {
        let statement = self.prepared(sql)?;
        let result = self.client.execute(&statement, params);
        result.map_err(|e| self.failure(e))
    }

    /// Runs a query.
    fn rows(&mut self, sql: &'static str, params: &[&(dyn ToSql + Sync)]) -> Result<Vec<Row>> {
        let statement = self.prepared(sql)?;
        let result = self.client.query(&statement, params);
        result.map_err(|e| self.failure(e))
    }

    /// Runs a query returning at most one row.
    fn row(&mut self, sql: &'static str, params: &[&(dyn ToSql + Sync)]) -> Result<Option<Row>> {
        let statement = self.prepared(sql)?;
        let result = self.client.query_opt(&statement, params);
        result.map_err(|e| self.failure(e))
    }

    /// Runs a query returning one column of strings.
    fn strings(
        &mut self,
        sql: &'static str,
        params: &[&(dyn ToSql + Sync)],
    ) -> Result<Vec<String>> {
        self.rows(sql, params)?
            .iter()
            .map(|r| r.try_get::<_, String>(0).pg())
            .collect()
    }

    /// Runs a query returning one integer (`COUNT(*)` and the like).
    fn int(&mut self, sql: &'static str, params: &[&(dyn ToSql + Sync)]) -> Result<i64> {
        let statement = self.prepared(sql)?;
        let result = self
            .client
            .query_one(&statement, params)
            .and_then(|r| r.try_get::<_, i64>(0));
        result.map_err(|e| self.failure(e))
    }

    /// Reads a timing statistic `FOR UPDATE`, creating its (empty) row
    /// first if there is none, so the row stays locked until the commit and
    /// the logic's read-then-write cannot lose a concurrent pop's update.
    fn claim_timing(&mut self, queue: &str, day: Timestamp, kind: StatKind) -> Result<Option<Row>> {
        const SELECT: &str = "SELECT count, mean, vk FROM stats_timing
             WHERE queue = $1 AND day = $2 AND kind = $3 FOR UPDATE";
        let params: [&(dyn ToSql + Sync); 3] = [&queue, &day.0, &kind.as_str()];
        if let Some(row) = self.row(SELECT, &params)? {
            return Ok(Some(row));
        }
        self.exec(
            "INSERT INTO stats_timing (queue, day, kind, count, mean, vk)
             VALUES ($1, $2, $3, 0, 0, 0) ON CONFLICT DO NOTHING",
            &params,
        )?;
        self.row(SELECT, &params)
    }

    /// Runs a query returning (string, integer) pairs.
    fn pairs(
        &mut self,
        sql: &'static str,
        params: &[&(dyn ToSql + Sync)],
    ) -> Result<Vec<(String, i64)>> {
        self.rows(sql, params)?
            .iter()
            .map(|r| Ok((r.try_get(0).pg()?, r.try_get(1).pg()?)))
            .collect()
    }
}

/// The `jobs` columns in [`job_from_row`]'s order.
macro_rules! job_cols {
    () => {
        "jid, klass, queue, state, data, priority, tags, worker, expires, retries, \
         remaining, time, grace, scheduled, failure, spawned_from, worker_listed, \
         fail_group, fail_seq, loc, sort_prio, sort_time, seq, metadata"
    };
}

/// Reads a job row selected with [`job_cols!`].
fn job_from_row(row: &Row) -> Result<JobRecord> {
    let state: String = row.try_get(3).pg()?;
    let state = JobState::parse(&state).ok_or_else(|| corrupt(format!("job state {state:?}")))?;
    let failure: Option<String> = row.try_get(14).pg()?;
    let failure = match failure {
        None => None,
        Some(text) => Some(
            serde_json::from_str::<Failure>(&text)
                .map_err(|e| corrupt(format!("job failure: {e}")))?,
        ),
    };
    let loc: i64 = row.try_get(19).pg()?;
    let loc = Loc::from_code(loc).ok_or_else(|| corrupt(format!("job loc {loc}")))?;
    Ok(JobRecord {
        jid: row.try_get(0).pg()?,
        klass: row.try_get(1).pg()?,
        queue: row.try_get(2).pg()?,
        state,
        data: row.try_get(4).pg()?,
        priority: row.try_get(5).pg()?,
        tags: json_col(row, 6)?,
        worker: row.try_get(7).pg()?,
        expires: Timestamp(row.try_get(8).pg()?),
        retries: row.try_get(9).pg()?,
        remaining: row.try_get(10).pg()?,
        time: Timestamp(row.try_get(11).pg()?),
        grace: row.try_get(12).pg()?,
        scheduled: row.try_get::<_, Option<i64>>(13).pg()?.map(Timestamp),
        failure,
        spawned_from: row.try_get(15).pg()?,
        worker_listed: row.try_get(16).pg()?,
        fail_group: row.try_get(17).pg()?,
        fail_seq: row.try_get(18).pg()?,
        loc,
        sort_prio: row.try_get(20).pg()?,
        sort_time: Timestamp(row.try_get(21).pg()?),
        seq: row.try_get(22).pg()?,
        metadata: json_col(row, 23)?,
    })
}

/// Reads a recurring template row (columns in table order).
fn recur_from_row(row: &Row) -> Result<RecurRecord> {
    Ok(RecurRecord {
        jid: row.try_get(0).pg()?,
        klass: row.try_get(1).pg()?,
        queue: row.try_get(2).pg()?,
        data: row.try_get(3).pg()?,
        priority: row.try_get(4).pg()?,
        tags: json_col(row, 5)?,
        retries: row.try_get(6).pg()?,
        interval: row.try_get(7).pg()?,
        next_at: Timestamp(row.try_get(8).pg()?),
        count: row.try_get(9).pg()?,
        backlog: row.try_get(10).pg()?,
    })
}

impl<C: GenericClient> Tx for PgTx<'_, C> {
    // --- savepoints ------------------------------------------------------

    fn savepoint(&mut self) -> Result<()> {
        let result = self.client.batch_execute("SAVEPOINT batch_item");
        result.map_err(|e| self.failure(e))
    }

    fn savepoint_release(&mut self) -> Result<()> {
        let result = self.client.batch_execute("RELEASE SAVEPOINT batch_item");
        result.map_err(|e| self.failure(e))
    }

    fn savepoint_rollback(&mut self) -> Result<()> {
        let result = self
            .client
            .batch_execute("ROLLBACK TO SAVEPOINT batch_item; RELEASE SAVEPOINT batch_item");
        self.config.clear();
        result.map_err(|e| self.failure(e))
    }

    // --- configuration -------------------------------------------------

    fn config_all(&mut self) -> Result<Vec<(String, String)>> {
        self.rows("SELECT key, value FROM config ORDER BY key", &[])?
            .iter()
            .map(|r| Ok((r.try_get(0).pg()?, r.try_get(1).pg()?)))
            .collect()
    }

    fn config_get(&mut self, key: &str) -> Result<Option<String>> {
        if let Some(v) = self.config.get(key) {
            return Ok(v.clone());
        }
        let value = self
            .row("SELECT value FROM config WHERE key = $1", &[&key])?
            .map(|r| r.try_get::<_, String>(0))
            .transpose()
            .pg()?;
        self.config.insert(key.to_owned(), value.clone());
        Ok(value)
    }

    fn config_set(&mut self, key: &str, value: &str) -> Result<()> {
        // Forget first: if the write fails the cache must not claim it.
        self.config.remove(key);
        self.exec(
            "INSERT INTO config (key, value) VALUES ($1, $2)
             ON CONFLICT (key) DO UPDATE SET value = excluded.value",
            &[&key, &value],
        )?;
        self.config.insert(key.to_owned(), Some(value.to_owned()));
        Ok(())
    }

    fn config_unset(&mut self, key: &str) -> Result<()> {
        self.config.remove(key);
        self.exec("DELETE FROM config WHERE key = $1", &[&key])?;
        self.config.insert(key.to_owned(), None);
        Ok(())
    }

    // --- dependencies --------------------------------------------------

    fn dep_add(&mut self, jid: &str, dep: &str) -> Result<()> {
        self.exec(
            "INSERT INTO deps (jid, dep) VALUES ($1, $2) ON CONFLICT DO NOTHING",
            &[&jid, &dep],
        )?;
        Ok(())
    }

    fn dep_remove(&mut self, jid: &str, dep: &str) -> Result<()> {
        self.exec(
            "DELETE FROM deps WHERE jid = $1 AND dep = $2",
            &[&jid, &dep],
        )?;
        Ok(())
    }

    fn deps_of(&mut self, jid: &str) -> Result<Vec<String>> {
        self.strings("SELECT dep FROM deps WHERE jid = $1 ORDER BY dep", &[&jid])
    }

    fn dependents_of(&mut self, dep: &str) -> Result<Vec<String>> {
        self.strings("SELECT jid FROM deps WHERE dep = $1 ORDER BY jid", &[&dep])
    }

    // --- events --------------------------------------------------------

    fn event_append(&mut self, at: Timestamp, channel: &str, message: &str) -> Result<i64> {
        self.int(
            "INSERT INTO events (at, channel, message) VALUES ($1, $2, $3) RETURNING seq",
            &[&at.0, &channel, &message],
        )
    }

    // --- failure lists -------------------------------------------------

    fn failed_groups(&mut self) -> Result<Vec<(String, i64)>> {
        self.pairs(
            "SELECT fail_group, COUNT(*) FROM jobs WHERE fail_group IS NOT NULL
             GROUP BY fail_group ORDER BY fail_group",
            &[],
        )
    }

    fn failed_list(&mut self, group: &str, off: i64, lim: i64) -> Result<Vec<String>> {
        self.strings(
            "SELECT jid FROM jobs WHERE fail_group = $1
             ORDER BY fail_seq DESC, jid DESC LIMIT $3 OFFSET $2",
            &[&group, &offset(off), &limit(lim)],
        )
    }

    fn failed_oldest(&mut self, group: &str, lim: i64) -> Result<Vec<String>> {
        self.strings(
            "SELECT jid FROM jobs WHERE fail_group = $1
             ORDER BY fail_seq, jid LIMIT $2",
            &[&group, &limit(lim)],
        )
    }

    fn failed_count(&mut self, group: &str) -> Result<i64> {
        self.int("SELECT COUNT(*) FROM jobs WHERE fail_group = $1", &[&group])
    }

    // --- history -------------------------------------------------------

    fn history_append(&mut self, jid: &str, entry: &HistoryEntry) -> Result<()> {
        let extra = to_json_text(&entry.extra)?;
        self.exec(
            "INSERT INTO history (jid, at, what, extra) VALUES ($1, $2, $3, $4)",
            &[&jid, &entry.when.0, &entry.what, &extra],
        )?;
        Ok(())
    }

    fn history_count(&mut self, jid: &str) -> Result<i64> {
        self.int("SELECT COUNT(*) FROM history WHERE jid = $1", &[&jid])
    }

    fn history_delete(&mut self, jid: &str) -> Result<()> {
        self.exec("DELETE FROM history WHERE jid = $1", &[&jid])?;
        Ok(())
    }

    fn history_list(&mut self, jid: &str) -> Result<Vec<HistoryEntry>> {
        self.rows(
            "SELECT at, what, extra FROM history WHERE jid = $1 ORDER BY id",
            &[&jid],
        )?
        .iter()
        .map(|r| {
            Ok(HistoryEntry {
                when: Timestamp(r.try_get(0).pg()?),
                what: r.try_get(1).pg()?,
                extra: json_col::<Map<String, Value>>(r, 2)?,
            })
        })
        .collect()
    }

    fn history_trim(&mut self, jid: &str, keep_last: i64) -> Result<()> {
        self.exec(
            "DELETE FROM history WHERE jid = $1
               AND id > (SELECT MIN(id) FROM history WHERE jid = $1)
               AND id NOT IN (SELECT id FROM history WHERE jid = $1
                              ORDER BY id DESC LIMIT $2)",
            &[&jid, &limit(keep_last)],
        )?;
        Ok(())
    }

    // --- jobs ----------------------------------------------------------

    fn job_count(&mut self, queue: &str, loc: Loc, range: TimeRange) -> Result<i64> {
        if let Some(schema) = self.claims.clone() {
            // A pop counts a capped queue's running jobs: pops of the queue
            // count (and take jobs) one after another from here.
            self.exec(
                "SELECT pg_advisory_xact_lock(hashtext('clew:queue:' || $1), hashtext($2))",
                &[&schema, &queue],
            )?;
        }
        let (min, max) = bounds(range);
        self.int(
            "SELECT COUNT(*) FROM jobs
             WHERE queue = $1 AND loc = $2 AND sort_time BETWEEN $3 AND $4",
            &[&queue, &loc.code(), &min, &max],
        )
    }

    fn job_delete(&mut self, jid: &str) -> Result<()> {
        self.exec("DELETE FROM jobs WHERE jid = $1", &[&jid])?;
        Ok(())
    }

    fn job_get(&mut self, jid: &str) -> Result<Option<JobRecord>> {
        // No FOR UPDATE: a command holding the store's lock exclusively is
        // alone, and a claiming pop locked the row when it listed it.
        self.row(
            concat!("SELECT ", job_cols!(), " FROM jobs WHERE jid = $1"),
            &[&jid],
        )?
        .as_ref()
        .map(job_from_row)
        .transpose()
    }

    fn job_list(
        &mut self,
        queue: &str,
        loc: Loc,
        range: TimeRange,
        off: i64,
        lim: i64,
    ) -> Result<Vec<String>> {
        let (min, max) = bounds(range);
        let sql = match (loc == Loc::Work, self.claims.is_some()) {
            (true, false) => {
                "SELECT jid FROM jobs
                 WHERE queue = $1 AND loc = $2 AND sort_time BETWEEN $3 AND $4
                 ORDER BY sort_prio DESC, sort_time, seq LIMIT $6 OFFSET $5"
            }
            (true, true) => {
                "SELECT jid FROM jobs
                 WHERE queue = $1 AND loc = $2 AND sort_time BETWEEN $3 AND $4
                 ORDER BY sort_prio DESC, sort_time, seq LIMIT $6 OFFSET $5
                 FOR UPDATE SKIP LOCKED"
            }
            (false, false) => {
                "SELECT jid FROM jobs
                 WHERE queue = $1 AND loc = $2 AND sort_time BETWEEN $3 AND $4
                 ORDER BY sort_time, jid LIMIT $6 OFFSET $5"
            }
            (false, true) => {
                "SELECT jid FROM jobs
                 WHERE queue = $1 AND loc = $2 AND sort_time BETWEEN $3 AND $4
                 ORDER BY sort_time, jid LIMIT $6 OFFSET $5
                 FOR UPDATE SKIP LOCKED"
            }
        };
        self.strings(
            sql,
            &[&queue, &loc.code(), &min, &max, &offset(off), &limit(lim)],
        )
    }

    fn job_list_rev(
        &mut self,
        queue: &str,
        loc: Loc,
        range: TimeRange,
        off: i64,
        lim: i64,
    ) -> Result<Vec<String>> {
        let (min, max) = bounds(range);
        self.strings(
            "SELECT jid FROM jobs
             WHERE queue = $1 AND loc = $2 AND sort_time BETWEEN $3 AND $4
             ORDER BY sort_time DESC, jid DESC LIMIT $6 OFFSET $5",
            &[&queue, &loc.code(), &min, &max, &offset(off), &limit(lim)],
        )
    }

    fn job_loc_counts(&mut self, queue: &str, now: Timestamp) -> Result<LocCounts> {
        let rows = self.rows(
            "SELECT loc, sort_time > $2 AS live, COUNT(*) FROM jobs
             WHERE queue = $1 AND loc IN ($3, $4, $5, $6)
             GROUP BY loc, live",
            &[
                &queue,
                &now.0,
                &Loc::Work.code(),
                &Loc::Locked.code(),
                &Loc::Scheduled.code(),
                &Loc::Depends.code(),
            ],
        )?;
        let mut counts = LocCounts::default();
        for row in rows {
            let code: i64 = row.try_get(0).pg()?;
            let live: bool = row.try_get(1).pg()?;
            let n: i64 = row.try_get(2).pg()?;
            match Loc::from_code(code) {
                Some(Loc::Work) => counts.waiting += n,
                Some(Loc::Locked) if live => counts.running += n,
                Some(Loc::Locked) => counts.stalled += n,
                Some(Loc::Scheduled) => counts.scheduled += n,
                Some(Loc::Depends) => counts.depends += n,
                _ => {}
            }
        }
        Ok(counts)
    }

    fn complete_count(&mut self) -> Result<i64> {
        let row = self.row("SELECT n FROM counters WHERE name = 'complete'", &[])?;
        match row {
            Some(r) => r.try_get(0).pg(),
            None => Ok(0),
        }
    }

    fn job_save(&mut self, job: &JobRecord) -> Result<()> {
        let tags = to_json_text(&job.tags)?;
        let metadata = to_json_text(&job.metadata)?;
        let failure = job.failure.as_ref().map(to_json_text).transpose()?;
        let scheduled = job.scheduled.map(|t| t.0);
        self.exec(
            concat!(
                "INSERT INTO jobs (",
                job_cols!(),
                ") VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, \
                 $15, $16, $17, $18, $19, $20, $21, $22, $23, $24)
                 ON CONFLICT (jid) DO UPDATE SET klass = excluded.klass,
                   queue = excluded.queue, state = excluded.state, data = excluded.data,
                   priority = excluded.priority, tags = excluded.tags,
                   worker = excluded.worker, expires = excluded.expires,
                   retries = excluded.retries, remaining = excluded.remaining,
                   time = excluded.time, grace = excluded.grace,
                   scheduled = excluded.scheduled, failure = excluded.failure,
                   spawned_from = excluded.spawned_from,
                   worker_listed = excluded.worker_listed, fail_group = excluded.fail_group,
                   fail_seq = excluded.fail_seq, loc = excluded.loc,
                   sort_prio = excluded.sort_prio, sort_time = excluded.sort_time,
                   seq = excluded.seq, metadata = excluded.metadata"
            ),
            &[
                &job.jid,
                &job.klass,
                &job.queue,
                &job.state.as_str(),
                &job.data,
                &job.priority,
                &tags,
                &job.worker,
                &job.expires.0,
                &job.retries,
                &job.remaining,
                &job.time.0,
                &job.grace,
                &scheduled,
                &failure,
                &job.spawned_from,
                &job.worker_listed,
                &job.fail_group,
                &job.fail_seq,
                &job.loc.code(),
                &job.sort_prio,
                &job.sort_time.0,
                &job.seq,
                &metadata,
            ],
        )?;
        Ok(())
    }

    fn job_worker_list(&mut self, worker: &str) -> Result<Vec<(String, Timestamp)>> {
        self.rows(
            "SELECT jid, expires FROM jobs WHERE worker = $1 AND worker_listed
             ORDER BY expires, jid",
            &[&worker],
        )?
        .iter()
        .map(|r| Ok((r.try_get(0).pg()?, Timestamp(r.try_get(1).pg()?))))
        .collect()
    }

    fn job_worker_unlist_all(&mut self, worker: &str) -> Result<()> {
        self.exec(
            "UPDATE jobs SET worker_listed = false WHERE worker = $1 AND worker_listed",
            &[&worker],
        )?;
        Ok(())
    }

    // --- queues --------------------------------------------------------

    fn queue_forget(&mut self, queue: &str) -> Result<()> {
        // An unpaused forgotten queue needs no row at all.
        self.exec(
            "DELETE FROM queues WHERE name = $1 AND NOT paused",
            &[&queue],
        )?;
        self.exec("UPDATE queues SET known = false WHERE name = $1", &[&queue])?;
        Ok(())
    }

    fn queue_list(&mut self) -> Result<Vec<String>> {
        self.strings(
            "SELECT name FROM queues WHERE known ORDER BY first_seen, name",
            &[],
        )
    }

    fn queue_paused(&mut self, queue: &str) -> Result<bool> {
        Ok(self
            .row("SELECT 1 FROM queues WHERE name = $1 AND paused", &[&queue])?
            .is_some())
    }

    fn queue_register(&mut self, queue: &str, now: Timestamp) -> Result<()> {
        self.exec(
            "INSERT INTO queues (name, known, first_seen, paused) VALUES ($1, true, $2, false)
             ON CONFLICT (name) DO UPDATE SET known = true, first_seen = excluded.first_seen
             WHERE NOT queues.known",
            &[&queue, &now.0],
        )?;
        Ok(())
    }

    fn queue_set_paused(&mut self, queue: &str, paused: bool) -> Result<()> {
        self.exec(
            "INSERT INTO queues (name, known, first_seen, paused) VALUES ($1, false, 0, $2)
             ON CONFLICT (name) DO UPDATE SET paused = excluded.paused",
            &[&queue, &paused],
        )?;
        // An unknown, unpaused queue needs no row.
        self.exec(
            "DELETE FROM queues WHERE name = $1 AND NOT known AND NOT paused",
            &[&queue],
        )?;
        Ok(())
    }

    // --- recurring templates -------------------------------------------

    fn recur_count(&mut self, queue: &str) -> Result<i64> {
        self.int("SELECT COUNT(*) FROM recurring WHERE queue = $1", &[&queue])
    }

    fn recur_delete(&mut self, jid: &str) -> Result<()> {
        self.exec("DELETE FROM recurring WHERE jid = $1", &[&jid])?;
        Ok(())
    }

    fn recur_get(&mut self, jid: &str) -> Result<Option<RecurRecord>> {
        self.row(
            "SELECT jid, klass, queue, data, priority, tags, retries, interval,
                    next_at, count, backlog
             FROM recurring WHERE jid = $1",
            &[&jid],
        )?
        .as_ref()
        .map(recur_from_row)
        .transpose()
    }

    fn recur_list(
        &mut self,
        queue: &str,
        range: TimeRange,
        off: i64,
        lim: i64,
    ) -> Result<Vec<String>> {
        let (min, max) = bounds(range);
        let sql = if self.claims.is_some() {
            // A template another pop is spawning is skipped: that pop
            // spawns it (and a committed advance is re-checked here).
            "SELECT jid FROM recurring WHERE queue = $1 AND next_at BETWEEN $2 AND $3
             ORDER BY next_at, jid LIMIT $5 OFFSET $4
             FOR UPDATE SKIP LOCKED"
        } else {
            "SELECT jid FROM recurring WHERE queue = $1 AND next_at BETWEEN $2 AND $3
             ORDER BY next_at, jid LIMIT $5 OFFSET $4"
        };
        self.strings(sql, &[&queue, &min, &max, &offset(off), &limit(lim)])
    }

    fn recur_save(&mut self, recur: &RecurRecord) -> Result<()> {
        let tags = to_json_text(&recur.tags)?;
        self.exec(
            "INSERT INTO recurring
               (jid, klass, queue, data, priority, tags, retries, interval, next_at,
                count, backlog)
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11)
             ON CONFLICT (jid) DO UPDATE SET klass = excluded.klass,
               queue = excluded.queue, data = excluded.data, priority = excluded.priority,
               tags = excluded.tags, retries = excluded.retries,
               interval = excluded.interval, next_at = excluded.next_at,
               count = excluded.count, backlog = excluded.backlog",
            &[
                &recur.jid,
                &recur.klass,
                &recur.queue,
                &recur.data,
                &recur.priority,
                &tags,
                &recur.retries,
                &recur.interval,
                &recur.next_at.0,
                &recur.count,
                &recur.backlog,
            ],
        )?;
        Ok(())
    }

    // --- sequence ------------------------------------------------------

    fn seq_next(&mut self) -> Result<i64> {
        self.int("SELECT nextval('placement_seq')", &[])
    }

    // --- stats ---------------------------------------------------------

    fn stats_counter_add(
        &mut self,
        queue: &str,
        day: Timestamp,
        counter: Counter,
        delta: i64,
    ) -> Result<()> {
        let sql = match counter {
            Counter::Failures => {
                "INSERT INTO stats_counters (queue, day, failures) VALUES ($1, $2, $3)
                 ON CONFLICT (queue, day)
                 DO UPDATE SET failures = stats_counters.failures + excluded.failures"
            }
            Counter::Failed => {
                "INSERT INTO stats_counters (queue, day, failed) VALUES ($1, $2, $3)
                 ON CONFLICT (queue, day)
                 DO UPDATE SET failed = stats_counters.failed + excluded.failed"
            }
            Counter::Retries => {
                "INSERT INTO stats_counters (queue, day, retries) VALUES ($1, $2, $3)
                 ON CONFLICT (queue, day)
                 DO UPDATE SET retries = stats_counters.retries + excluded.retries"
            }
        };
        self.exec(sql, &[&queue, &day.0, &delta])?;
        Ok(())
    }

    fn stats_counters(&mut self, queue: &str, day: Timestamp) -> Result<(i64, i64, i64)> {
        let row = self.row(
            "SELECT failures, failed, retries FROM stats_counters
             WHERE queue = $1 AND day = $2",
            &[&queue, &day.0],
        )?;
        match row {
            None => Ok((0, 0, 0)),
            Some(r) => Ok((r.try_get(0).pg()?, r.try_get(1).pg()?, r.try_get(2).pg()?)),
        }
    }

    fn stats_hist_add(
        &mut self,
        queue: &str,
        day: Timestamp,
        kind: StatKind,
        bucket: &str,
    ) -> Result<()> {
        self.exec(
            "INSERT INTO stats_hist (queue, day, kind, bucket, count) VALUES ($1, $2, $3, $4, 1)
             ON CONFLICT (queue, day, kind, bucket)
             DO UPDATE SET count = stats_hist.count + 1",
            &[&queue, &day.0, &kind.as_str(), &bucket],
        )?;
        Ok(())
    }

    fn stats_hist(
        &mut self,
        queue: &str,
        day: Timestamp,
        kind: StatKind,
    ) -> Result<Vec<(String, i64)>> {
        self.pairs(
            "SELECT bucket, count FROM stats_hist
             WHERE queue = $1 AND day = $2 AND kind = $3 ORDER BY bucket",
            &[&queue, &day.0, &kind.as_str()],
        )
    }

    fn stats_timing(&mut self, queue: &str, day: Timestamp, kind: StatKind) -> Result<TimingStat> {
        let row = if self.claims.is_some() {
            self.claim_timing(queue, day, kind)?
        } else {
            self.row(
                "SELECT count, mean, vk FROM stats_timing
                 WHERE queue = $1 AND day = $2 AND kind = $3",
                &[&queue, &day.0, &kind.as_str()],
            )?
        };
        match row {
            None => Ok(TimingStat::default()),
            Some(r) => Ok(TimingStat {
                count: r.try_get(0).pg()?,
                mean: r.try_get(1).pg()?,
                vk: r.try_get(2).pg()?,
            }),
        }
    }

    fn stats_timing_save(
        &mut self,
        queue: &str,
        day: Timestamp,
        kind: StatKind,
        stat: &TimingStat,
    ) -> Result<()> {
        self.exec(
            "INSERT INTO stats_timing (queue, day, kind, count, mean, vk)
             VALUES ($1, $2, $3, $4, $5, $6)
             ON CONFLICT (queue, day, kind) DO UPDATE SET count = excluded.count,
               mean = excluded.mean, vk = excluded.vk",
            &[
                &queue,
                &day.0,
                &kind.as_str(),
                &stat.count,
                &stat.mean,
                &stat.vk,
            ],
        )?;
        Ok(())
    }

    // --- tags ----------------------------------------------------------

    fn tag_count_add(&mut self, tag: &str, delta: i64) -> Result<()> {
        self.exec(
            "INSERT INTO tag_counts (tag, count) VALUES ($1, $2)
             ON CONFLICT (tag) DO UPDATE SET count = tag_counts.count + excluded.count",
            &[&tag, &delta],
        )?;
        self.exec(
            "DELETE FROM tag_counts WHERE tag = $1 AND count <= 0",
            &[&tag],
        )?;
        Ok(())
    }

    fn tag_index_add(&mut self, tag: &str, jid: &str, at: Timestamp) -> Result<()> {
        self.exec(
            "INSERT INTO tags (tag, jid, at) VALUES ($1, $2, $3)
             ON CONFLICT (tag, jid) DO UPDATE SET at = excluded.at",
            &[&tag, &jid, &at.0],
        )?;
        Ok(())
    }

    fn tag_index_remove(&mut self, tag: &str, jid: &str) -> Result<()> {
        self.exec(
            "DELETE FROM tags WHERE tag = $1 AND jid = $2",
            &[&tag, &jid],
        )?;
        Ok(())
    }

    fn tag_jobs(&mut self, tag: &str, off: i64, lim: i64) -> Result<(i64, Vec<String>)> {
        let total = self.int("SELECT COUNT(*) FROM tags WHERE tag = $1", &[&tag])?;
        let jids = self.strings(
            "SELECT jid FROM tags WHERE tag = $1 ORDER BY at, jid LIMIT $3 OFFSET $2",
            &[&tag, &offset(off), &limit(lim)],
        )?;
        Ok((total, jids))
    }

    fn tag_top(&mut self, min_count: i64, off: i64, lim: i64) -> Result<Vec<String>> {
        self.strings(
            "SELECT tag FROM tag_counts WHERE count >= $1
             ORDER BY count DESC, tag LIMIT $3 OFFSET $2",
            &[&min_count, &offset(off), &limit(lim)],
        )
    }

    // --- tracking ------------------------------------------------------

    fn tracked_add(&mut self, jid: &str, at: Timestamp) -> Result<bool> {
        let existed = self.tracked_has(jid)?;
        self.exec(
            "INSERT INTO tracked (jid, at) VALUES ($1, $2)
             ON CONFLICT (jid) DO UPDATE SET at = excluded.at",
            &[&jid, &at.0],
        )?;
        Ok(!existed)
    }

    fn tracked_has(&mut self, jid: &str) -> Result<bool> {
        Ok(self
            .row("SELECT 1 FROM tracked WHERE jid = $1", &[&jid])?
            .is_some())
    }

    fn tracked_list(&mut self) -> Result<Vec<String>> {
        self.strings("SELECT jid FROM tracked ORDER BY at, jid", &[])
    }

    fn tracked_remove(&mut self, jid: &str) -> Result<bool> {
        Ok(self.exec("DELETE FROM tracked WHERE jid = $1", &[&jid])? > 0)
    }

    // --- workers -------------------------------------------------------

    fn worker_list(&mut self) -> Result<Vec<(String, Timestamp)>> {
        self.rows(
            "SELECT name, last_seen FROM workers ORDER BY last_seen DESC, name DESC",
            &[],
        )?
        .iter()
        .map(|r| Ok((r.try_get(0).pg()?, Timestamp(r.try_get(1).pg()?))))
        .collect()
    }

    fn worker_remove(&mut self, worker: &str) -> Result<()> {
        self.exec("DELETE FROM workers WHERE name = $1", &[&worker])?;
        Ok(())
    }

    fn worker_touch(&mut self, worker: &str, now: Timestamp) -> Result<()> {
        self.exec(
            "INSERT INTO workers (name, last_seen) VALUES ($1, $2)
             ON CONFLICT (name) DO UPDATE SET last_seen = excluded.last_seen",
            &[&worker, &now.0],
        )?;
        Ok(())
    }
}
