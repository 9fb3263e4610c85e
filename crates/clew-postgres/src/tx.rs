//! [`PgTx`]: the [`Tx`] primitives as SQL statements inside one PostgreSQL
//! transaction.
//!
//! Every primitive is one or two prepared statements, prepared once per
//! connection ([`StatementCache`]) and run with bound parameters: no value
//! ever becomes SQL text. The caller owns the transaction (and the advisory
//! lock that serializes commands): the store's pool threads wrap each
//! command in its own transaction; tests use [`crate::testing::in_tx`].

use std::collections::{BTreeMap, HashMap};

use clew_core::batch::{BatchOutcome, BatchRecord};
use clew_core::cron::{CronSpec, Missed};
use clew_core::throttle::ThrottleRate;
use clew_core::tx::{Counter, LocCounts, StatKind, TimeRange, TimingStat};
use clew_core::{Error, Failure, HistoryEntry, JobRecord, JobState, Loc, RecurRecord, Result};
use clew_core::{Timestamp, Tx};
use serde_json::{Map, Value};
use tokio_postgres::error::SqlState;
use tokio_postgres::types::ToSql;
use tokio_postgres::{Row, Statement};

use crate::conn::{Answer, PgConn, PgError, Step};

/// The error of a NUL character in text: PostgreSQL's text cannot hold one
/// (SQLite's can), so the caller's input, not the store, is at fault (HTTP
/// 400, not 500).
fn nul_error() -> Error {
    Error::invalid("text must not contain a NUL character (\\u0000): PostgreSQL cannot store it")
}

/// Turns a driver error into clew's store error, with the server's message,
/// detail and hint when it has them.
pub(crate) fn pg_err(e: PgError) -> Error {
    if let Some(db) = e.as_db_error() {
        if *db.code() == SqlState::CHARACTER_NOT_IN_REPERTOIRE && db.message().contains("0x00") {
            return nul_error();
        }
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

impl<T> PgResult<T> for std::result::Result<T, PgError> {
    fn pg(self) -> Result<T> {
        self.map_err(pg_err)
    }
}

/// Owned copies of a buffered write's parameters; a text holding a NUL is
/// refused (see [`PgTx::write`]).
fn bound_checked(params: &[Arg<'_>]) -> Result<Vec<Bound>> {
    if params.iter().any(Arg::has_nul) {
        return Err(nul_error());
    }
    Ok(params.iter().map(Arg::bound).collect())
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

/// A value of a buffered write ([`PgTx::write`]), as the caller has it;
/// kept as a [`Bound`] until the write is sent, as a bound parameter.
#[derive(Clone, Copy, Debug)]
enum Arg<'a> {
    Str(&'a str),
    OptStr(Option<&'a str>),
    Int(i64),
    OptInt(Option<i64>),
    Bool(bool),
    Float(f64),
}

impl Arg<'_> {
    /// Whether the value is text holding a NUL (PostgreSQL refuses it).
    fn has_nul(&self) -> bool {
        matches!(self, Arg::Str(v) | Arg::OptStr(Some(v)) if v.contains('\0'))
    }

    /// The value, owned until the write is sent.
    fn bound(&self) -> Bound {
        match *self {
            Arg::Str(v) => Bound::Str(v.to_owned()),
            Arg::OptStr(v) => Bound::OptStr(v.map(str::to_owned)),
            Arg::Int(v) => Bound::Int(v),
            Arg::OptInt(v) => Bound::OptInt(v),
            Arg::Bool(v) => Bound::Bool(v),
            Arg::Float(v) => Bound::Float(v),
        }
    }
}

/// An owned parameter of a buffered write.
#[derive(Clone, Debug)]
enum Bound {
    Str(String),
    OptStr(Option<String>),
    Int(i64),
    OptInt(Option<i64>),
    Bool(bool),
    Float(f64),
}

impl Bound {
    /// The value as a statement parameter.
    fn param(&self) -> &(dyn ToSql + Sync) {
        match self {
            Bound::Str(v) => v,
            Bound::OptStr(v) => v,
            Bound::Int(v) => v,
            Bound::OptInt(v) => v,
            Bound::Bool(v) => v,
            Bound::Float(v) => v,
        }
    }
}

/// A buffered write ([`PgTx::write`]).
#[derive(Debug)]
enum Write {
    /// A prepared statement and its parameters.
    Exec(&'static str, Vec<Bound>),
    /// One row of a kind many of which may go as one statement
    /// ([`coalesce`]). A [`RowKind::JobUpdate`] must change exactly one
    /// row (a plain `UPDATE` of a job row the transaction knows exists):
    /// any other count fails the round trip, so the command rolls back
    /// instead of losing a write.
    Row(RowKind, Vec<Bound>),
    /// SQL text without values (`RELEASE SAVEPOINT`).
    Text(&'static str),
}

/// One statement of a round trip ([`send`]): its SQL (prepared once per
/// connection) and borrowed parameters, or SQL text without values.
pub(crate) enum Op<'a> {
    /// SQL text without values (`BEGIN`, `COMMIT`, savepoints), simple
    /// query protocol.
    Text(&'a str),
    /// A statement whose changed-row count is the answer.
    Exec(&'static str, Vec<&'a (dyn ToSql + Sync)>),
    /// A statement whose rows are the answer.
    Query(&'static str, Vec<&'a (dyn ToSql + Sync)>),
}

/// Sends `ops` in one round trip (pipelined, [`PgConn::pipeline`]),
/// preparing first, in one more round trip, the statements this
/// connection has not prepared yet. Returns each op's answer, or the first
/// failure (a later op of a failed transaction fails only because it is
/// aborted).
pub(crate) fn send(
    conn: &mut PgConn,
    statements: &mut StatementCache,
    ops: Vec<Op<'_>>,
) -> std::result::Result<Vec<Answer>, PgError> {
    if ops.is_empty() {
        return Ok(Vec::new());
    }
    let mut missing: Vec<&'static str> = Vec::new();
    for op in &ops {
        if let Op::Exec(sql, _) | Op::Query(sql, _) = op {
            if !statements.statements.contains_key(sql) && !missing.contains(sql) {
                missing.push(sql);
                // Prepared together: a batch's first set of rows then
                // costs no preparation round trip of its own.
                if let Some(other) = RowKind::companion(sql) {
                    if !statements.statements.contains_key(other) && !missing.contains(&other) {
                        missing.push(other);
                    }
                }
            }
        }
    }
    if !missing.is_empty() {
        statements.round_trips += 1;
        let prepared = conn.prepare_all(&missing);
        for (sql, statement) in missing.into_iter().zip(prepared) {
            statements.statements.insert(sql, statement?);
        }
    }
    let steps_len = ops.len() as u64;
    let cache = &statements.statements;
    let steps = ops
        .into_iter()
        .map(|op| match op {
            Op::Text(sql) => Step::Text(sql),
            Op::Exec(sql, params) => Step::Execute(&cache[sql], params),
            Op::Query(sql, params) => Step::Query(&cache[sql], params),
        })
        .collect();
    let results = conn.pipeline(steps);
    statements.round_trips += 1;
    statements.sent += steps_len;
    crate::conn::first_error(results)
}

/// The facts of [`FACTS_SQL`] but the placement value.
macro_rules! facts_sql {
    () => {
        "SELECT 'c'::text, key, value FROM config
    UNION ALL SELECT 't', NULL, (EXISTS (SELECT 1 FROM tracked))::text
    UNION ALL SELECT 'd', NULL, (EXISTS (SELECT 1 FROM deps))::text
    UNION ALL SELECT 'w', NULL, (EXISTS (SELECT 1 FROM throttles t WHERE t.rate_limit > 0
        AND EXISTS (SELECT 1 FROM throttle_jobs j WHERE j.throttle = t.name AND NOT j.holding)))::text"
    };
}

/// What a transaction reads once, in one statement, with its first query
/// ([`PgTx`]'s `send`): every config row (`c`), whether any job is tracked
/// (`t`) or has a dependency (`d`), one placement sequence value (`s`, for
/// the first `seq_next`; an unused one is simply skipped), and whether any
/// rate-limited throttle has jobs waiting (`w`, for
/// `throttle_rate_waiting`, asked by every pop and peek). Config, tracking
/// and dependencies change only under the store's lock held exclusively
/// (never by a pop holding it shared), so they hold for the transaction,
/// which notes its own changes. Waiting jobs of a throttle may also be
/// added by a concurrent pop: one committed after this transaction's first
/// query is promoted by the next pop or peek, as one committed after the
/// query of `throttle_rate_waiting` always was.
const FACTS_SQL: &str = concat!(
    facts_sql!(),
    " UNION ALL SELECT 's', NULL, nextval('placement_seq')::text"
);

/// [`FACTS_SQL`] without a placement value, for a command that only reads
/// ([`PgTx::reading`]: a read-only transaction may not take one).
const FACTS_READ_SQL: &str = facts_sql!();

/// What a transaction reads once per queue, with the first query about
/// the queue that needs it (`queue_paused`, a listing of its stalled
/// locks): whether it is paused, has recurring templates, has scheduled
/// jobs. Templates are only created by commands holding the store's lock
/// exclusively (a pop spawns children into the work list and moves
/// scheduled jobs out), so "none" holds for the transaction, which notes
/// its own additions; pausing is noted too. Scheduled jobs are also put by
/// puts running next to pops ([`Claim::Put`]): one committed after the
/// read is not due yet for a pop that read "none" (it acts as if it ran
/// before that put, as one that read before its commit does).
const QUEUE_FACTS_SQL: &str = "SELECT EXISTS (SELECT 1 FROM queues WHERE name = $1 AND paused),
    EXISTS (SELECT 1 FROM recurring WHERE queue = $1),
    EXISTS (SELECT 1 FROM jobs WHERE queue = $1 AND loc = $2)";

/// A queue's facts ([`QUEUE_FACTS_SQL`]).
#[derive(Clone, Copy, Debug)]
struct QueueFacts {
    paused: bool,
    /// It may have recurring templates (`false`: none).
    recurring: bool,
    /// It may have scheduled jobs (`false`: none).
    scheduled: bool,
}

/// A block of `$1` placement sequence values.
const SEQ_BLOCK_SQL: &str =
    "SELECT nextval('placement_seq') FROM generate_series(1::int8, $1::int8)";

/// The values of [`SEQ_BLOCK_SQL`]'s rows.
fn placement_values(rows: &[Row]) -> Result<Vec<i64>> {
    rows.iter().map(|r| r.try_get::<_, i64>(0).pg()).collect()
}

/// The notification of a commit that wrote events: the schema's channel
/// and the number of the last event.
pub(crate) const NOTIFY_SQL: &str = "SELECT pg_notify($1, $2)";

/// [`NOTIFY_SQL`] sent right after the transaction's last events were
/// inserted: the number is this session's current value of the event
/// sequence.
const NOTIFY_CURRENT_SQL: &str =
    "SELECT pg_notify($1, currval(pg_get_serial_sequence('events', 'seq'))::text)";

/// A transaction-level exclusive advisory lock.
pub(crate) const LOCK_SQL: &str = "SELECT pg_advisory_xact_lock($1)";

/// A transaction-level shared advisory lock (the event lock, as a command
/// running next to others numbers its events).
const SHARED_LOCK_SQL: &str = "SELECT pg_advisory_xact_lock_shared($1)";

/// How a command running next to pops (holding the command lock shared)
/// claims the rows it changes ([`PgTx::claiming`]).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Claim {
    /// A pop: it selects what it takes `FOR UPDATE SKIP LOCKED` and keeps
    /// no placements of its own (`locs`): other pops change rows next to it.
    Pop,
    /// A complete: it reads every job row `FOR UPDATE` (waiting for a pop
    /// or complete that holds it, then reading its new version), a
    /// dependent's before reading its dependencies, lists the complete set
    /// without claiming it, and keeps placements and prefetched rows as a
    /// command running alone does (pops never move jobs into or out of the
    /// complete set, nor change dependencies). Its complete count is of
    /// what was committed when read, plus its own: completes in flight
    /// next to it are not in it.
    Complete,
    /// A put of a new job ([`crate::PostgresOptions::concurrent_puts`]):
    /// it reads job rows plainly and keeps placements and prefetched rows
    /// as a complete does (no one else moves a job that does not exist
    /// yet). If a job it reads exists (the put would move it: that runs
    /// alone), or its insert meets a row another put inserted meanwhile
    /// (a unique violation), it is to run again holding the lock
    /// exclusively ([`PgTx::must_run_alone`]).
    Put,
}

/// Locks job rows by jid (`$1`, an array), in jid order, before a complete
/// next to pops reads them (a statement of its own, so the read that
/// follows sees what a pop holding one committed meanwhile).
const LOCK_JOBS_SQL: &str =
    "SELECT jid FROM jobs WHERE jid = ANY($1::text[]) ORDER BY jid FOR UPDATE";

/// How many jobs are complete (the `counters` rows a trigger keeps:
/// `complete` and its shards `complete:0` to `complete:15`, migration
/// 0011).
const COMPLETE_COUNT_SQL: &str = "SELECT COALESCE(SUM(n), 0)::int8 FROM counters
     WHERE name = 'complete' OR (name >= 'complete:' AND name < 'complete;')";

/// [`LOCK_JOBS_SQL`] for one job (`$1`).
const LOCK_JOB_SQL: &str = "SELECT jid FROM jobs WHERE jid = $1 FOR UPDATE";

/// Appends events, numbered in the order given: one statement whatever
/// their number (the channels and messages are two bound arrays).
const EVENTS_SQL: &str = "INSERT INTO events (at, channel, message)
     SELECT $1, e.channel, e.message
     FROM unnest($2::text[], $3::text[]) WITH ORDINALITY AS e(channel, message, n)
     ORDER BY e.n
     RETURNING seq";

/// [`EVENTS_SQL`] with a time per event (the events of a group of
/// commands, each at its own `now`): three bound arrays.
const EVENTS_AT_SQL: &str = "INSERT INTO events (at, channel, message)
     SELECT e.at, e.channel, e.message
     FROM unnest($1::int8[], $2::text[], $3::text[]) WITH ORDINALITY AS e(at, channel, message, n)
     ORDER BY e.n
     RETURNING seq";

/// The times of events inserted together ([`PgTx::events_insert`]).
enum EventTimes<'a> {
    /// One for all.
    One(Timestamp),
    /// One per event, in order.
    Each(&'a [i64]),
}

/// Statements prepared on one connection, by SQL text. Prepared statements
/// belong to the connection, not to a transaction, so they survive commits
/// and rollbacks.
#[derive(Debug, Default)]
pub struct StatementCache {
    statements: HashMap<&'static str, Statement>,
    /// Round trips to the server made through this cache since the owner
    /// last took the count ([`StatementCache::take_round_trips`]).
    round_trips: u64,
    /// Statements sent (not counting preparations) since the owner last
    /// took the count ([`StatementCache::take_sent`]).
    sent: u64,
}

impl StatementCache {
    /// An empty cache.
    pub fn new() -> StatementCache {
        StatementCache::default()
    }

    /// The round trips counted since the last call (and resets the count).
    pub(crate) fn take_round_trips(&mut self) -> u64 {
        std::mem::take(&mut self.round_trips)
    }

    /// The statements sent since the last call (and resets the count).
    pub(crate) fn take_sent(&mut self) -> u64 {
        std::mem::take(&mut self.sent)
    }
}

/// The [`Tx`] primitives on a [`PgConn`] inside a transaction the caller
/// has begun.
///
/// Config values read or written are remembered for the transaction's
/// lifetime: the command holds the store's advisory lock (exclusively, or
/// shared by concurrent pops, none of which writes config), so nobody else
/// changes them meanwhile. So are the other facts of `FACTS_SQL`, timing
/// statistics and the histories of the jobs read.
///
/// **Buffered writes** ([`PgTx::flush`]): a write whose result the logic
/// does not need is kept (its prepared statement and owned parameters)
/// and sent with the next read, savepoint or the events: the writes and
/// the read are pipelined ([`PgConn::pipeline`]), one round trip, every
/// value a bound parameter. The owner must call [`PgTx::flush`] (or append
/// events, or commit, through it) before committing.
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
/// * a timing statistic gets the pop's samples merged into it in SQL
///   ([`Tx::stats_timing_add`]: count, mean and squared differences of
///   the transaction's samples, merged with the last round trip), so its
///   row is held only from there to the commit; one the logic reads is
///   read `FOR UPDATE` (its row created first if missing), so concurrent
///   updates queue up instead of losing one; counters and histogram
///   buckets are incremented in SQL.
///
/// A complete claims too (`Claim::Complete`, next to pops and other
/// completes): it locks each job row `FOR UPDATE` before it reads it (a
/// dependent's before it reads what the dependent still waits for), and
/// lists the complete set plainly (see `Claim`).
pub struct PgTx<'t> {
    conn: &'t mut PgConn,
    statements: &'t mut StatementCache,
    config: HashMap<String, Option<String>>,
    /// Whether `config` holds every config row (absent keys are unset).
    config_loaded: bool,
    /// Writes not sent yet ([`PgTx::write`]), in order.
    pending: Vec<Write>,
    /// `Some(true)` when no job is tracked (then tracking needs no query).
    tracked_empty: Option<bool>,
    /// `Some(true)` when no job has a dependency.
    deps_empty: Option<bool>,
    /// `Some(true)` when no rate-limited throttle has waiting jobs (then
    /// `throttle_rate_waiting` needs no query); `Some(false)` once this
    /// transaction may have added some.
    rate_idle: Option<bool>,
    /// Jobs' whole histories (stored and appended since), as read with
    /// their rows or listed in this transaction: the command holds the
    /// store's lock exclusively, or (a claiming pop) the job's row, so no
    /// one else writes them meanwhile.
    history: HashMap<String, Vec<HistoryEntry>>,
    /// Timing statistics read or written in this transaction.
    timing: HashMap<(String, i64, StatKind), TimingStat>,
    /// Timing statistics saved since the last round trip: written once
    /// each, with the next one ([`PgTx::stage_stats`]), however often the
    /// logic saved them (a pop or `complete_many` saves its queue's once
    /// per job).
    timing_dirty: Vec<(String, i64, StatKind)>,
    /// A pop's command lock key whose `BEGIN` and lock statement
    /// ([`crate::store::POP_LOCK_SQL`]) go first with the next round trip
    /// ([`PgTx::begins_pop`]).
    lead: Option<i64>,
    /// That lock statement took the lock exclusively: puts wait in the
    /// outbox, and the pop must drain them first (its first round trip
    /// failed on purpose; the caller rolls back and begins again).
    lead_exclusive: bool,
    /// A claiming pop's work list, read ahead with its listing of expired
    /// locks (queue, limit, rows claimed): the next listing of that work
    /// list from its start, up to that limit, is answered from it once.
    work_ahead: Option<(String, i64, Vec<JobRecord>)>,
    /// Samples added ([`Tx::stats_timing_add`]) to statistics this
    /// transaction has not read, summed up per statistic (count, mean and
    /// squared differences of the samples alone) since the last round
    /// trip: merged into the stored rows with the next one, in SQL, so a
    /// pop or a complete neither reads them nor (a claiming pop) holds
    /// them before its last round trip.
    timing_adds: BTreeMap<(String, i64, StatKind), TimingStat>,
    /// Histogram increments since the last round trip, added up by bucket
    /// (queue, day, kind, bucket): one statement per bucket, sent with the
    /// next one, in bucket order.
    hist_adds: BTreeMap<(String, i64, &'static str, String), i64>,
    /// Whether [`FACTS_SQL`] was read (since the last savepoint rollback).
    facts_loaded: bool,
    /// A placement sequence value taken with the facts and not used yet.
    next_seq: Option<i64>,
    /// Placement sequence values taken in a block and not used yet, the
    /// smallest last.
    seqs: Vec<i64>,
    /// The size of the last block.
    seq_block: i64,
    /// Placement values announced ([`Tx::seq_reserve`]) beyond those held:
    /// taken with the next read, or as the next block.
    seq_want: i64,
    /// When claiming rows (see above): the schema name (for the per-queue
    /// and per-throttle locks) and how this command claims.
    claims: Option<(String, Claim)>,
    /// The SQLSTATE of the last statement that failed.
    failed: Option<SqlState>,
    /// No job in the complete set (`queue = ''`, `loc` complete) has a
    /// `sort_time` below this, once known: learnt when listing the set up
    /// to a cutoff found none, lowered when this transaction saves a
    /// complete job, forgotten with a rolled-back savepoint. Expiring
    /// completed jobs below it needs no query (each complete of a batch
    /// expires at the same cutoff). Not kept by a claiming pop. (A
    /// complete running next to others keeps it: they add complete jobs
    /// at their own `now`, above any cutoff.)
    complete_floor: Option<i64>,
    /// Queues' facts ([`QUEUE_FACTS_SQL`]), as read and kept since.
    queues: HashMap<String, QueueFacts>,
    /// Queues this transaction registered (known from then on, unless it
    /// forgets them): registering them again changes nothing, so it is
    /// not sent (a `put_many` registers its queue once, not per job).
    registered: std::collections::HashSet<String>,
    /// Rows read ahead by [`Tx::prefetch_jobs`] (`None`: no such job) and
    /// not asked for yet: `job_get` takes a job's row from here once; this
    /// transaction's own writes of a job drop it (`job_save`, `job_delete`),
    /// as do writes of several rows and a rolled-back savepoint. Kept by a
    /// command holding the store's lock exclusively (no one else writes
    /// jobs meanwhile) and by a complete (it read the rows locked), not by
    /// a claiming pop.
    prefetched: HashMap<String, Option<JobRecord>>,
    /// The `loc` of each job this transaction read or wrote, as it is now
    /// (`None`: no row), so that its own writes keep [`PgTx::complete_n`]
    /// and `job_save` knows whether to update or insert the row.
    locs: HashMap<String, Option<Loc>>,
    /// How many jobs are complete, once read (the `counters` row kept by
    /// a trigger), kept up to date from this transaction's own writes of
    /// jobs whose `loc` it knows (`locs`), forgotten on a write of one it
    /// does not know or a rolled-back savepoint. Only moves into or out of
    /// the complete set change it, and those are made under the store's
    /// lock held exclusively or by completes (a claiming pop keeps no
    /// count); a complete's count misses what completes next to it have
    /// not committed yet when it reads it (see [`Claim::Complete`]).
    complete_n: Option<i64>,
    /// A claiming put met an existing job ([`Claim::Put`]): its outcome is
    /// dropped and it runs again alone.
    alone: bool,
    /// The command only reads, in a read-only transaction
    /// ([`PgTx::reading`]).
    reading: bool,
    /// Batch items run without savepoints ([`PgTx::optimistic`]).
    optimistic: bool,
    /// In the optimistic pass, a batch item was refused.
    item_refused: bool,
}

impl std::fmt::Debug for PgTx<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PgTx")
            .field("prepared", &self.statements.statements.len())
            .field("pending", &self.pending.len())
            .finish()
    }
}

impl<'t> PgTx<'t> {
    /// In a concurrent pop ([`PgTx::claiming`]): takes throttle `name`'s
    /// advisory lock, held to the commit, before its slots or starts are
    /// counted, so pops of jobs naming it count (and take slots and starts)
    /// one after another. Other commands hold the store's lock exclusively
    /// and need none.
    fn throttle_lock(&mut self, name: &str) -> Result<()> {
        if let Some((schema, _)) = self.claims.clone() {
            self.exec(
                "SELECT pg_advisory_xact_lock(hashtext('clew:throttle:' || $1), hashtext($2))",
                &[&schema, &name],
            )?;
        }
        Ok(())
    }

    /// Primitives on `conn`, preparing statements into `statements`.
    pub fn new(conn: &'t mut PgConn, statements: &'t mut StatementCache) -> PgTx<'t> {
        PgTx {
            conn,
            statements,
            config: HashMap::new(),
            config_loaded: false,
            pending: Vec::new(),
            tracked_empty: None,
            deps_empty: None,
            rate_idle: None,
            timing: HashMap::new(),
            timing_dirty: Vec::new(),
            hist_adds: BTreeMap::new(),
            history: HashMap::new(),
            facts_loaded: false,
            next_seq: None,
            seqs: Vec::new(),
            seq_block: 1,
            seq_want: 0,
            lead: None,
            lead_exclusive: false,
            timing_adds: BTreeMap::new(),
            work_ahead: None,
            claims: None,
            failed: None,
            complete_floor: None,
            queues: HashMap::new(),
            registered: std::collections::HashSet::new(),
            prefetched: HashMap::new(),
            locs: HashMap::new(),
            complete_n: None,
            alone: false,
            reading: false,
            optimistic: false,
            item_refused: false,
        }
    }

    /// Runs the items of non-atomic batches without savepoints (the
    /// optimistic pass): a refused item is only noted
    /// ([`PgTx::item_refused`]), after which the next item fails at once;
    /// the owner must then roll the transaction back and run the command
    /// again with savepoints (as the store's groups do). Refusals are rare,
    /// and a savepoint per item costs a round trip and a subtransaction.
    pub fn optimistic(mut self) -> PgTx<'t> {
        self.optimistic = true;
        self
    }

    /// Whether a batch item was refused in the optimistic pass: what this
    /// transaction did must be rolled back and run again with savepoints.
    pub fn item_refused(&self) -> bool {
        self.item_refused
    }

    /// Sends the buffered writes followed by `ops`, in one round trip
    /// ([`send`]); returns the answers to `ops`. The transaction's facts
    /// ([`FACTS_SQL`]) come first with its first query, free of a round
    /// trip of their own. On a failure, what was buffered is gone (the
    /// caller rolls back).
    fn send(&mut self, ops: Vec<Op<'_>>) -> Result<Vec<Answer>> {
        self.send_facts(ops, false)
    }

    /// [`PgTx::send`]; with `facts`, the facts come first even without a
    /// query (if not read yet).
    fn send_facts(&mut self, ops: Vec<Op<'_>>, facts: bool) -> Result<Vec<Answer>> {
        // A claiming command's statistics go with its last round trip (its
        // events, its commit or its last flush), or with a savepoint (a
        // rollback to it drops only what came after), so the rows they
        // lock are held from there to the commit: pops and completes of a
        // queue meet on its statistics rows only then.
        if self.claims.is_none() || ops.iter().any(|op| matches!(op, Op::Text(_))) {
            self.stage_stats();
        }
        let with_facts =
            !self.facts_loaded && (facts || ops.iter().any(|op| matches!(op, Op::Query(..))));
        // Placement values announced ahead go with a read (not with a
        // bare flush or the commit, which need none).
        let want = if self.seq_want > 0 && ops.iter().any(|op| matches!(op, Op::Query(..))) {
            std::mem::take(&mut self.seq_want)
        } else {
            0
        };
        let pending = coalesce(std::mem::take(&mut self.pending));
        let lead = self.lead.take();
        let mut all: Vec<Op<'_>> = Vec::with_capacity(pending.len() + ops.len() + 4);
        if let Some(lock) = &lead {
            all.push(Op::Text(crate::store::BEGIN_SQL));
            all.push(Op::Query(crate::store::POP_LOCK_SQL, vec![lock]));
        }
        if with_facts {
            let facts = if self.reading {
                FACTS_READ_SQL
            } else {
                FACTS_SQL
            };
            all.push(Op::Query(facts, Vec::new()));
        }
        all.extend(pending.iter().map(Sent::op));
        all.extend(ops);
        if want > 0 {
            all.push(Op::Query(SEQ_BLOCK_SQL, vec![&want]));
        }
        let mut answers = match send(self.conn, self.statements, all) {
            Ok(answers) => answers,
            Err(e) => return Err(self.failure(e)),
        };
        if lead.is_some() {
            if answers.len() < 2 {
                return Err(corrupt("no answer to BEGIN and the lock".to_owned()));
            }
            let mut lead_answers = answers.drain(..2);
            let mode = lead_answers
                .nth(1)
                .map(Answer::rows)
                .unwrap_or_default()
                .first()
                .map(|row| row.try_get::<_, String>(0))
                .transpose()
                .pg()?
                .unwrap_or_default();
            drop(lead_answers);
            if mode.starts_with('x') {
                self.lead_exclusive = true;
                return Err(Error::store(
                    "puts wait in the outbox: the pop begins again, draining them",
                ));
            }
        }
        if want > 0 {
            let block = answers
                .pop()
                .ok_or_else(|| corrupt("no placement block".to_owned()))?;
            // Taken after every value held: handed out after them.
            self.seqs.extend(placement_values(&block.rows())?);
            self.seqs.sort_unstable_by(|a, b| b.cmp(a));
        }
        let mut answers = answers.into_iter();
        if with_facts {
            let facts = answers
                .next()
                .ok_or_else(|| corrupt("no facts".to_owned()))?
                .rows();
            self.note_facts(&facts)?;
        }
        for (write, answer) in pending.iter().zip(answers.by_ref()) {
            if let (Some((rows, sql)), Answer::Done(n)) = (write.exact(), &answer) {
                if *n != rows {
                    return Err(corrupt(format!(
                        "{n} rows changed, {rows} expected, by: {}",
                        sql.split_whitespace().take(4).collect::<Vec<_>>().join(" ")
                    )));
                }
            }
        }
        Ok(answers.collect())
    }

    /// Buffers the writes of the statistics kept back since the last round
    /// trip (timing statistics saved, histogram increments), so the round
    /// trip about to go sends them first: whatever it reads or ends sees them.
    fn stage_stats(&mut self) {
        for key in std::mem::take(&mut self.timing_dirty) {
            let Some(stat) = self.timing.get(&key).copied() else {
                continue;
            };
            self.pending.push(timing_write(
                "INSERT INTO stats_timing (queue, day, kind, count, mean, vk)
                 VALUES ($1, $2, $3, $4, $5, $6)
                 ON CONFLICT (queue, day, kind) DO UPDATE SET count = excluded.count,
                   mean = excluded.mean, vk = excluded.vk",
                key,
                &stat,
            ));
        }
        for (key, add) in std::mem::take(&mut self.timing_adds) {
            // Chan et al.'s merge of two (count, mean, squared differences)
            // summaries; every right-hand side reads the row as it was.
            self.pending.push(timing_write(
                "INSERT INTO stats_timing (queue, day, kind, count, mean, vk)
                 VALUES ($1, $2, $3, $4, $5, $6)
                 ON CONFLICT (queue, day, kind) DO UPDATE SET
                   count = stats_timing.count + excluded.count,
                   mean = stats_timing.mean + (excluded.mean - stats_timing.mean)
                     * excluded.count::float8 / (stats_timing.count + excluded.count)::float8,
                   vk = stats_timing.vk + excluded.vk
                     + (excluded.mean - stats_timing.mean) * (excluded.mean - stats_timing.mean)
                     * stats_timing.count::float8 * excluded.count::float8
                     / (stats_timing.count + excluded.count)::float8",
                key,
                &add,
            ));
        }
        for ((queue, day, kind, bucket), n) in std::mem::take(&mut self.hist_adds) {
            self.pending.push(Write::Exec(
                "INSERT INTO stats_hist (queue, day, kind, bucket, count) VALUES ($1, $2, $3, $4, $5)
                 ON CONFLICT (queue, day, kind, bucket)
                 DO UPDATE SET count = stats_hist.count + excluded.count",
                vec![
                    Bound::Str(queue),
                    Bound::Int(day),
                    Bound::Str(kind.to_owned()),
                    Bound::Str(bucket),
                    Bound::Int(n),
                ],
            ));
        }
    }

    /// Sends the buffered writes (one round trip), if any.
    pub fn flush(&mut self) -> Result<()> {
        self.stage_stats();
        self.send(Vec::new()).map(drop)
    }

    /// Sends the buffered writes followed by `sql` (SQL text without
    /// values, returning no rows) in one round trip.
    fn flush_with(&mut self, sql: &str) -> Result<()> {
        self.send(vec![Op::Text(sql)]).map(drop)
    }

    /// Sends the buffered writes, the notification of the commit (on
    /// `channel`, when the transaction wrote events, the last being
    /// `last_seq`) and `COMMIT`, in one round trip.
    pub fn commit(&mut self, channel: Option<&str>, last_seq: Option<i64>) -> Result<()> {
        let seq = last_seq.map(|seq| seq.to_string());
        let mut ops = Vec::new();
        if let (Some(channel), Some(seq)) = (&channel, &seq) {
            ops.push(Op::Exec(NOTIFY_SQL, vec![channel, seq]));
        }
        ops.push(Op::Text("COMMIT"));
        self.send(ops).map(drop)
    }

    /// Takes in the rows of [`FACTS_SQL`]; fills in only what this
    /// transaction does not know yet (its own writes are noted already).
    fn note_facts(&mut self, rows: &[Row]) -> Result<()> {
        let mut config = Vec::new();
        for row in rows {
            let kind: String = row.try_get(0).pg()?;
            let value: String = row.try_get(2).pg()?;
            match kind.as_str() {
                "c" => config.push((row.try_get::<_, String>(1).pg()?, value)),
                "t" => {
                    self.tracked_empty.get_or_insert(value == "false");
                }
                "d" => {
                    self.deps_empty.get_or_insert(value == "false");
                }
                "w" => {
                    self.rate_idle.get_or_insert(value == "false");
                }
                "s" => {
                    self.next_seq = Some(
                        value
                            .parse()
                            .map_err(|e| corrupt(format!("placement value {value:?}: {e}")))?,
                    );
                }
                other => return Err(corrupt(format!("fact {other:?}"))),
            }
        }
        if !self.config_loaded {
            for (key, value) in config {
                self.config.entry(key).or_insert(Some(value));
            }
            self.config_loaded = true;
        }
        self.facts_loaded = true;
        Ok(())
    }

    /// Reads the transaction's facts ([`FACTS_SQL`]) now, with the
    /// buffered writes.
    fn load_facts(&mut self) -> Result<()> {
        if !self.facts_loaded {
            self.send_facts(Vec::new(), true)?;
        }
        Ok(())
    }

    /// A write whose result the logic does not need: buffered (the
    /// statement and its parameters) and sent with the next read,
    /// savepoint or [`PgTx::flush`], so consecutive writes cost one round
    /// trip. Text holding a NUL is refused here, as PostgreSQL would refuse
    /// it, before anything is sent: the error stays the write's own (a
    /// batch item's, say), not that of the statement it would be sent with.
    fn write(&mut self, sql: &'static str, params: &[Arg<'_>]) -> Result<()> {
        let params = bound_checked(params)?;
        self.pending.push(Write::Exec(sql, params));
        Ok(())
    }

    /// [`PgTx::write`] of a row of `kind` ([`Write::Row`]).
    fn write_row(&mut self, kind: RowKind, params: &[Arg<'_>]) -> Result<()> {
        let params = bound_checked(params)?;
        self.pending.push(Write::Row(kind, params));
        Ok(())
    }

    /// Whether no job has a dependency (asked once per transaction:
    /// dependencies change only under the lock held exclusively, never by
    /// a pop; this transaction's own additions are noted).
    fn no_deps(&mut self) -> Result<bool> {
        if self.deps_empty.is_none() {
            self.facts_loaded = false;
            self.load_facts()?;
        }
        Ok(self.deps_empty == Some(true))
    }

    /// Notes that job `jid` is now in `loc` (`None`: its row is gone),
    /// keeping the complete count ([`PgTx::complete_n`]) when its former
    /// `loc` is known, forgetting the count when not. Drops the job's
    /// prefetched row.
    fn note_write(&mut self, jid: &str, loc: Option<Loc>) {
        self.prefetched.remove(jid);
        if !self.keeps_locs() {
            return;
        }
        let complete = |loc: Option<Loc>| i64::from(loc == Some(Loc::Complete));
        match self.locs.insert(jid.to_owned(), loc) {
            Some(old) => {
                if let Some(n) = &mut self.complete_n {
                    *n += complete(loc) - complete(old);
                }
            }
            None => self.complete_n = None,
        }
    }

    /// Job `jid` from a row of [`job_cols!`] and [`history_col!`] (its
    /// columns NULL: no such job), its history and `loc` noted as read.
    fn job_read(&mut self, jid: &str, row: &Row) -> Result<Option<JobRecord>> {
        let job = match row.try_get::<_, Option<String>>(0).pg()? {
            Some(_) => Some(job_from_row(row)?),
            None => None,
        };
        let history: Option<String> = row.try_get(HISTORY_COL).pg()?;
        let history = history_from_json(history.as_deref())?;
        self.history.insert(jid.to_owned(), history);
        self.note_read(jid, job.as_ref().map(|job| job.loc));
        Ok(job)
    }

    /// Notes job `jid`'s `loc` (`None`: no row) as just read.
    fn note_read(&mut self, jid: &str, loc: Option<Loc>) {
        if self.keeps_locs() {
            self.locs.insert(jid.to_owned(), loc);
        }
    }

    /// Sends `op` (a query about `queue`), preceded, if this transaction
    /// has not read them yet, by the queue's facts ([`QUEUE_FACTS_SQL`]),
    /// in one round trip; returns `op`'s rows.
    fn with_queue_facts(&mut self, queue: &str, op: Option<Op<'_>>) -> Result<Vec<Row>> {
        let scheduled = Loc::Scheduled.code();
        let mut ops = Vec::with_capacity(2);
        let load = !self.queues.contains_key(queue);
        if load {
            ops.push(Op::Query(QUEUE_FACTS_SQL, vec![&queue, &scheduled]));
        }
        ops.extend(op);
        let mut answers = self.send(ops)?.into_iter();
        if load {
            let rows = answers.next().map(Answer::rows).unwrap_or_default();
            let row = rows
                .first()
                .ok_or_else(|| corrupt("no queue facts".to_owned()))?;
            let facts = QueueFacts {
                paused: row.try_get(0).pg()?,
                recurring: row.try_get(1).pg()?,
                scheduled: row.try_get(2).pg()?,
            };
            self.queues.insert(queue.to_owned(), facts);
        }
        Ok(answers.next().map(Answer::rows).unwrap_or_default())
    }

    /// Forgets what a rolled-back savepoint may have changed.
    fn rolled_back(&mut self) {
        self.pending.clear();
        self.config.clear();
        self.config_loaded = false;
        self.tracked_empty = None;
        self.deps_empty = None;
        self.rate_idle = None;
        self.timing.clear();
        self.timing_dirty.clear();
        self.timing_adds.clear();
        self.work_ahead = None;
        self.hist_adds.clear();
        self.history.clear();
        // The savepoint may have deleted complete jobs below it.
        self.complete_floor = None;
        self.queues.clear();
        self.registered.clear();
        self.prefetched.clear();
        self.locs.clear();
        self.complete_n = None;
        // Read again (a sequence value taken stays good: values may skip).
        self.facts_loaded = false;
    }

    /// Appends events to the log in one statement, sent with the buffered
    /// writes (one round trip); returns their sequence numbers, in order.
    /// With `commit` (`Some(channel)`), the commit too in the same round
    /// trip: the notification of the last
    /// event's number on the channel (if any), then `COMMIT`. A failure is
    /// an error; on success the transaction is committed.
    pub fn events_append_then(
        &mut self,
        at: Timestamp,
        events: &[(&str, &str)],
        commit: Option<Option<&str>>,
    ) -> Result<Vec<i64>> {
        self.events_insert(EventTimes::One(at), events, commit)
    }

    /// [`PgTx::events_append_then`] for events each at its own time
    /// (`ats`, one per event): the events of a group of commands, appended
    /// at once after the last command, numbered in the order given, then
    /// (with `commit`) the commit, in one round trip.
    pub fn events_append_at_then(
        &mut self,
        ats: &[i64],
        events: &[(&str, &str)],
        commit: Option<Option<&str>>,
    ) -> Result<Vec<i64>> {
        if ats.len() != events.len() {
            return Err(Error::store("internal error: one time per event"));
        }
        self.events_insert(EventTimes::Each(ats), events, commit)
    }

    /// Inserts `events` at `at`, see [`PgTx::events_append_then`].
    fn events_insert(
        &mut self,
        at: EventTimes<'_>,
        events: &[(&str, &str)],
        commit: Option<Option<&str>>,
    ) -> Result<Vec<i64>> {
        if events
            .iter()
            .any(|(c, m)| c.contains('\0') || m.contains('\0'))
        {
            return Err(nul_error());
        }
        let channels: Vec<&str> = events.iter().map(|(channel, _)| *channel).collect();
        let messages: Vec<&str> = events.iter().map(|(_, message)| *message).collect();
        let mut ops = Vec::new();
        let insert_at = ops.len();
        if !events.is_empty() {
            ops.push(match &at {
                EventTimes::One(at) => Op::Query(EVENTS_SQL, vec![&at.0, &channels, &messages]),
                EventTimes::Each(ats) => Op::Query(EVENTS_AT_SQL, vec![ats, &channels, &messages]),
            });
        }
        let channel = commit.flatten();
        if let Some(channel) = &channel {
            let notify = if events.is_empty() {
                // Nothing numbered in this round trip: nothing to notify
                // from the session's sequence.
                None
            } else {
                Some(Op::Exec(NOTIFY_CURRENT_SQL, vec![channel]))
            };
            ops.extend(notify);
        }
        if commit.is_some() {
            ops.push(Op::Text("COMMIT"));
        }
        self.stage_stats();
        let answers = self.send(ops)?;
        if events.is_empty() {
            return Ok(Vec::new());
        }
        let seqs = answers
            .into_iter()
            .nth(insert_at)
            .map(Answer::rows)
            .unwrap_or_default()
            .iter()
            .map(|row| row.try_get::<_, i64>(0).pg())
            .collect::<Result<Vec<i64>>>()?;
        // Rows are inserted (and numbered) in the order given; check it.
        if seqs.len() != events.len() || seqs.windows(2).any(|w| w[0] >= w[1]) {
            return Err(Error::store(format!(
                "postgres: events numbered out of order: {seqs:?}"
            )));
        }
        Ok(seqs)
    }

    /// The jobs of listed rows (with their histories, kept).
    fn listed(&mut self, rows: Vec<Row>) -> Result<Vec<JobRecord>> {
        let mut jobs = Vec::with_capacity(rows.len());
        for row in &rows {
            let history: Option<String> = row.try_get(HISTORY_COL).pg()?;
            jobs.push((job_from_row(row)?, history_from_json(history.as_deref())?));
        }
        Ok(jobs
            .into_iter()
            .map(|(job, history)| {
                self.history.insert(job.jid.clone(), history);
                self.note_read(&job.jid, Some(job.loc));
                job
            })
            .collect())
    }

    /// Begins the transaction (a concurrent pop's, on the command lock
    /// `lock`) with its first round trip instead of one of its own. If the
    /// lock came exclusive, that round trip fails and
    /// [`PgTx::lock_came_exclusive`] says so.
    pub fn begins_pop(mut self, lock: i64) -> PgTx<'t> {
        self.lead = Some(lock);
        self
    }

    /// Whether the first round trip found puts waiting in the outbox (the
    /// pop's lock came exclusive): roll back and begin again, draining.
    pub fn lock_came_exclusive(&self) -> bool {
        self.lead_exclusive
    }

    /// Claims the rows a pop may change as it selects them (see the type
    /// doc); `schema` names the per-queue locks.
    pub fn claiming(mut self, schema: &str, claim: Claim) -> PgTx<'t> {
        self.claims = Some((schema.to_owned(), claim));
        self
    }

    /// Whether this transaction keeps the placements (`locs`) of the jobs
    /// it reads and writes, the complete count and prefetched rows: not a
    /// claiming pop (other pops change rows next to it).
    fn keeps_locs(&self) -> bool {
        self.claim() != Some(Claim::Pop)
    }

    /// How this transaction claims rows, if it does.
    fn claim(&self) -> Option<Claim> {
        self.claims.as_ref().map(|(_, claim)| *claim)
    }

    /// Whether job listings claim the rows they list (`FOR UPDATE SKIP
    /// LOCKED`): a pop's. A complete lists only the complete set (to
    /// expire it) and locks each job it then reads.
    fn claims_lists(&self) -> bool {
        self.claim() == Some(Claim::Pop)
    }

    /// Whether job rows are read `FOR UPDATE` ([`Claim::Complete`]).
    fn locks_jobs(&self) -> bool {
        self.claim() == Some(Claim::Complete)
    }

    /// Whether the last failed statement failed only because of concurrent
    /// transactions (a deadlock or serialization failure): the whole
    /// transaction can be rolled back and run again.
    pub fn retryable(&self) -> bool {
        self.failed.as_ref().is_some_and(|code| {
            *code == SqlState::T_R_DEADLOCK_DETECTED || *code == SqlState::T_R_SERIALIZATION_FAILURE
        })
    }

    /// Takes a transaction-level exclusive advisory lock (with the
    /// buffered writes).
    pub fn advisory_lock(&mut self, key: i64) -> Result<()> {
        self.exec(LOCK_SQL, &[&key]).map(drop)
    }

    /// Takes a transaction-level shared advisory lock (with the buffered
    /// writes, the statistics kept back included). A claiming command takes
    /// the event lock so right before numbering its events under the
    /// process's numbering mutex, and nothing sent under that mutex may wait
    /// for a row: its statistics' upserts (a queue's `stats_timing` row,
    /// which every complete of the queue writes) go here, not with the
    /// events. Sent with the events, they waited for another complete's row
    /// lock while that complete waited for the mutex: a deadlock
    /// PostgreSQL cannot see (`complete_race.rs` hung on it).
    pub fn advisory_lock_shared(&mut self, key: i64) -> Result<()> {
        self.stage_stats();
        self.exec(SHARED_LOCK_SQL, &[&key]).map(drop)
    }

    /// For a command that only reads, in a read-only transaction: the
    /// facts come without a placement value (taking one writes).
    pub fn reading(mut self) -> PgTx<'t> {
        self.reading = true;
        self
    }

    /// Whether a statement failed because the transaction is read-only
    /// (the logic wrote in a command run as a read).
    pub fn failed_read_only(&self) -> bool {
        self.failed
            .as_ref()
            .is_some_and(|code| *code == SqlState::READ_ONLY_SQL_TRANSACTION)
    }

    /// Whether this claiming put met an existing job (`Claim::Put`):
    /// roll back and run the command again holding the lock exclusively.
    pub fn must_run_alone(&self) -> bool {
        self.alone
    }

    /// Records a failed statement's SQLSTATE and turns the error into a
    /// store error.
    fn failure(&mut self, e: PgError) -> Error {
        if let Some(code) = e.code() {
            if *code == SqlState::UNIQUE_VIOLATION && self.claim() == Some(Claim::Put) {
                // Another put inserted this job first.
                self.alone = true;
            }
            self.failed = Some(code.clone());
        }
        pg_err(e)
    }

    /// Runs a statement (with the buffered writes); returns the number of
    /// changed rows.
    fn exec(&mut self, sql: &'static str, params: &[&(dyn ToSql + Sync)]) -> Result<u64> {
        let answers = self.send(vec![Op::Exec(sql, params.to_vec())])?;
        Ok(answers.first().map_or(0, Answer::count))
    }

    /// Runs a query (with the buffered writes, one round trip).
    fn rows(&mut self, sql: &'static str, params: &[&(dyn ToSql + Sync)]) -> Result<Vec<Row>> {
        let answers = self.send(vec![Op::Query(sql, params.to_vec())])?;
        Ok(answers
            .into_iter()
            .next()
            .map(Answer::rows)
            .unwrap_or_default())
    }

    /// Runs a query returning at most one row.
    fn row(&mut self, sql: &'static str, params: &[&(dyn ToSql + Sync)]) -> Result<Option<Row>> {
        let mut rows = self.rows(sql, params)?;
        if rows.len() > 1 {
            return Err(corrupt(format!("more than one row from {sql:?}")));
        }
        Ok(rows.pop())
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
        let rows = self.rows(sql, params)?;
        one_int(&rows, sql)
    }

    /// Reads a timing statistic (claimed `FOR UPDATE` when claiming).
    fn stats_timing_read(
        &mut self,
        queue: &str,
        day: Timestamp,
        kind: StatKind,
    ) -> Result<TimingStat> {
        let row = if self.claims.is_some() {
            // Samples added and not written yet go first.
            self.stage_stats();
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

/// A write of the timing statistic `key` (queue, day, kind) as `stat`'s
/// count, mean and squared differences (`$4` to `$6`), by `sql`.
fn timing_write(sql: &'static str, key: (String, i64, StatKind), stat: &TimingStat) -> Write {
    let (queue, day, kind) = key;
    Write::Exec(
        sql,
        vec![
            Bound::Str(queue),
            Bound::Int(day),
            Bound::Str(kind.as_str().to_owned()),
            Bound::Int(stat.count),
            Bound::Float(stat.mean),
            Bound::Float(stat.vk),
        ],
    )
}

/// The `jobs` columns in [`job_from_row`]'s order.
/// `job_list`'s conditions and order for waiting jobs (pop order).
macro_rules! list_work {
    () => {
        " WHERE queue = $1 AND loc = $2 AND sort_time BETWEEN $3 AND $4 \
         ORDER BY sort_prio DESC, sort_time, seq LIMIT $6 OFFSET $5"
    };
}

/// `job_list`'s conditions and order for every other placement (by time).
macro_rules! list_other {
    () => {
        " WHERE queue = $1 AND loc = $2 AND sort_time BETWEEN $3 AND $4 \
         ORDER BY sort_time, jid LIMIT $6 OFFSET $5"
    };
}

macro_rules! job_cols {
    () => {
        "jid, klass, queue, state, data, priority, tags, worker, expires, retries, \
         remaining, time, grace, scheduled, failure, spawned_from, worker_listed, \
         fail_group, fail_seq, loc, sort_prio, sort_time, seq, metadata, unique_key, batch, batch_outcome,
         throttles"
    };
}

/// The upsert of a job row's columns ([`job_cols!`]) from `excluded`.
macro_rules! job_upsert_set {
    () => {
        " ON CONFLICT (jid) DO UPDATE SET klass = excluded.klass,
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
           seq = excluded.seq, metadata = excluded.metadata,
           unique_key = excluded.unique_key,
           batch = excluded.batch, batch_outcome = excluded.batch_outcome,
           throttles = excluded.throttles"
    };
}

/// A job row's values as bound parameters, in [`job_cols!`] order.
macro_rules! job_values {
    () => {
        " VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, \
         $15, $16, $17, $18, $19, $20, $21, $22, $23, $24, $25, $26, $27, $28)"
    };
}

/// Job rows as bound arrays, one per column of [`job_cols!`] (one element
/// per row): the same parameters as [`job_values!`], typed as arrays.
macro_rules! job_arrays {
    () => {
        "unnest($1::text[], $2::text[], $3::text[], $4::text[], $5::text[], $6::int8[], \
         $7::text[], $8::text[], $9::int8[], $10::int8[], $11::int8[], $12::int8[], \
         $13::bool[], $14::int8[], $15::text[], $16::text[], $17::bool[], $18::text[], \
         $19::int8[], $20::int8[], $21::int8[], $22::int8[], $23::int8[], $24::text[], \
         $25::text[], $26::text[], $27::int8[], $28::text[])"
    };
}

/// A kind of single-row write of which a round trip often carries many
/// (a batch's job saves and history entries): buffered as
/// [`Write::Row`], and several of one kind go as one statement over
/// bound arrays ([`coalesce`]), which the server runs as one plan instead
/// of one execution per row while the command holds the schema's lock.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum RowKind {
    /// A job row the transaction knows does not exist.
    JobInsert,
    /// A job row the transaction knows exists: every one must change
    /// exactly one row ([`Write::Row`]).
    JobUpdate,
    /// A job row that may exist (a claiming pop keeps no locations).
    JobUpsert,
    /// A history entry, appended after the job's earlier ones (`id`).
    History,
}

impl RowKind {
    /// The statement of one row.
    fn one_sql(self) -> &'static str {
        match self {
            RowKind::JobInsert => concat!("INSERT INTO jobs (", job_cols!(), ")", job_values!()),
            RowKind::JobUpdate => {
                "UPDATE jobs SET klass = $2, queue = $3, state = $4, data = $5,
                   priority = $6, tags = $7, worker = $8, expires = $9, retries = $10,
                   remaining = $11, time = $12, grace = $13, scheduled = $14, failure = $15,
                   spawned_from = $16, worker_listed = $17, fail_group = $18, fail_seq = $19,
                   loc = $20, sort_prio = $21, sort_time = $22, seq = $23, metadata = $24,
                   unique_key = $25, batch = $26, batch_outcome = $27, throttles = $28
                 WHERE jid = $1"
            }
            RowKind::JobUpsert => concat!(
                "INSERT INTO jobs (",
                job_cols!(),
                ")",
                job_values!(),
                job_upsert_set!()
            ),
            RowKind::History => {
                "INSERT INTO history (jid, at, what, extra) VALUES ($1, $2, $3, $4)"
            }
        }
    }

    /// The statement of many rows: the same parameters, each an array of
    /// the rows' values. No two rows of one statement have the same job
    /// ([`coalesce`]): an `UPDATE ... FROM` would apply only one of them,
    /// an upsert would fail.
    fn set_sql(self) -> &'static str {
        match self {
            RowKind::JobInsert => concat!(
                "INSERT INTO jobs (",
                job_cols!(),
                ") SELECT * FROM ",
                job_arrays!()
            ),
            RowKind::JobUpdate => concat!(
                "UPDATE jobs SET klass = v.klass, queue = v.queue, state = v.state,
                   data = v.data, priority = v.priority, tags = v.tags, worker = v.worker,
                   expires = v.expires, retries = v.retries, remaining = v.remaining,
                   time = v.time, grace = v.grace, scheduled = v.scheduled,
                   failure = v.failure, spawned_from = v.spawned_from,
                   worker_listed = v.worker_listed, fail_group = v.fail_group,
                   fail_seq = v.fail_seq, loc = v.loc, sort_prio = v.sort_prio,
                   sort_time = v.sort_time, seq = v.seq, metadata = v.metadata,
                   unique_key = v.unique_key, batch = v.batch,
                   batch_outcome = v.batch_outcome, throttles = v.throttles
                 FROM ",
                job_arrays!(),
                " AS v(",
                job_cols!(),
                ") WHERE jobs.jid = v.jid"
            ),
            RowKind::JobUpsert => concat!(
                "INSERT INTO jobs (",
                job_cols!(),
                ") SELECT * FROM ",
                job_arrays!(),
                job_upsert_set!()
            ),
            // In the order given: `id` orders a job's entries.
            RowKind::History => {
                "INSERT INTO history (jid, at, what, extra)
                 SELECT v.jid, v.at, v.what, v.extra
                 FROM unnest($1::text[], $2::int8[], $3::text[], $4::text[])
                   WITH ORDINALITY AS v(jid, at, what, extra, n)
                 ORDER BY v.n"
            }
        }
    }

    /// The other statement of the kind whose one-row or many-row
    /// statement `sql` is.
    fn companion(sql: &str) -> Option<&'static str> {
        [
            RowKind::JobInsert,
            RowKind::JobUpdate,
            RowKind::JobUpsert,
            RowKind::History,
        ]
        .into_iter()
        .find_map(|kind| {
            if sql == kind.one_sql() {
                Some(kind.set_sql())
            } else if sql == kind.set_sql() {
                Some(kind.one_sql())
            } else {
                None
            }
        })
    }

    /// The table written.
    fn table(self) -> &'static str {
        match self {
            RowKind::JobInsert | RowKind::JobUpdate | RowKind::JobUpsert => "jobs",
            RowKind::History => "history",
        }
    }

    /// Whether the first parameter names the one row written (a job's
    /// `jid`); a history entry is a new row, never one written before.
    fn keyed(self) -> bool {
        self != RowKind::History
    }

    /// Whether every row must change exactly one row ([`Write::Row`]).
    fn exact(self) -> bool {
        self == RowKind::JobUpdate
    }
}

/// The table a buffered single-table write changes (`INSERT INTO t`,
/// `UPDATE t`, `DELETE FROM t`), when that is all it touches; `None` for
/// anything else (a statement reading another table, say), which no
/// [`Write::Row`] may then pass ([`coalesce`]).
fn written_table(sql: &str) -> Option<&str> {
    let upper = sql.to_ascii_uppercase();
    if ["SELECT", "USING", "RETURNING"]
        .iter()
        .any(|w| upper.contains(w))
    {
        return None;
    }
    let mut words = upper.split_whitespace();
    let at = match (words.next()?, words.next()?) {
        ("INSERT", "INTO") | ("DELETE", "FROM") => 2,
        ("UPDATE", _) => 1,
        _ => return None,
    };
    if words.any(|w| w == "FROM") {
        return None;
    }
    let table = sql.split_whitespace().nth(at)?.split('(').next()?;
    // A quoted or qualified name could name a set's table unrecognized.
    (!table.contains(['"', '.'])).then_some(table)
}

/// One column of the rows of a [`Write::Row`] set, as a bound array.
#[derive(Debug)]
enum Column {
    Text(Vec<Option<String>>),
    Int(Vec<Option<i64>>),
    Bool(Vec<bool>),
    Float(Vec<f64>),
}

impl Column {
    /// An empty column of `value`'s type, room for `rows` values.
    fn of(value: &Bound, rows: usize) -> Column {
        match value {
            Bound::Str(_) | Bound::OptStr(_) => Column::Text(Vec::with_capacity(rows)),
            Bound::Int(_) | Bound::OptInt(_) => Column::Int(Vec::with_capacity(rows)),
            Bound::Bool(_) => Column::Bool(Vec::with_capacity(rows)),
            Bound::Float(_) => Column::Float(Vec::with_capacity(rows)),
        }
    }

    /// Appends `value` (of the column's type: one kind's rows all bind the
    /// same types).
    fn push(&mut self, value: Bound) {
        match (self, value) {
            (Column::Text(c), Bound::Str(v)) => c.push(Some(v)),
            (Column::Text(c), Bound::OptStr(v)) => c.push(v),
            (Column::Int(c), Bound::Int(v)) => c.push(Some(v)),
            (Column::Int(c), Bound::OptInt(v)) => c.push(v),
            (Column::Bool(c), Bound::Bool(v)) => c.push(v),
            (Column::Float(c), Bound::Float(v)) => c.push(v),
            (column, value) => unreachable!("{value:?} in a column {column:?}"),
        }
    }

    /// The column as a statement parameter.
    fn param(&self) -> &(dyn ToSql + Sync) {
        match self {
            Column::Text(v) => v,
            Column::Int(v) => v,
            Column::Bool(v) => v,
            Column::Float(v) => v,
        }
    }
}

/// A statement of a round trip built from the buffered writes
/// ([`coalesce`]).
#[derive(Debug)]
enum Sent {
    /// One buffered write, as it was buffered.
    One(Write),
    /// Several [`Write::Row`]s of one kind, as one statement over arrays.
    Set {
        kind: RowKind,
        columns: Vec<Column>,
        rows: u64,
    },
}

impl Sent {
    /// The statement and its parameters.
    fn op(&self) -> Op<'_> {
        match self {
            Sent::One(Write::Exec(sql, params)) => {
                Op::Exec(sql, params.iter().map(Bound::param).collect())
            }
            Sent::One(Write::Row(kind, params)) => {
                Op::Exec(kind.one_sql(), params.iter().map(Bound::param).collect())
            }
            Sent::One(Write::Text(sql)) => Op::Text(sql),
            Sent::Set { kind, columns, .. } => {
                Op::Exec(kind.set_sql(), columns.iter().map(Column::param).collect())
            }
        }
    }

    /// The rows the statement must change, if it must change an exact
    /// number of them, and its first words (for the error).
    fn exact(&self) -> Option<(u64, &'static str)> {
        match self {
            Sent::One(Write::Row(kind, _)) if kind.exact() => Some((1, kind.one_sql())),
            Sent::Set { kind, rows, .. } if kind.exact() => Some((*rows, kind.set_sql())),
            _ => None,
        }
    }
}

/// A set being gathered by [`coalesce`].
struct OpenSet {
    kind: RowKind,
    /// Its place among the statements.
    at: usize,
    /// The jobs of its rows.
    keys: std::collections::HashSet<String>,
    /// Jobs written since (on its table) by another statement: a row of
    /// one of them must not move before that write.
    passed: std::collections::HashSet<String>,
    /// Its table was written since by a statement of unknown rows: no
    /// later row may join.
    closed: bool,
}

/// A statement being gathered by [`coalesce`].
enum Slot {
    One(Write),
    Rows(RowKind, Vec<Vec<Bound>>),
}

/// The statements of the buffered writes: each [`Write::Row`] joins the
/// earlier rows of its kind into one statement when it can move up to
/// them without passing a write it does not commute with (one to its
/// table of unknown rows, one to the same job, SQL text), so what a
/// job's row ends up holding, and the order of a job's history, are those
/// of the writes one by one. A set keeps its first row's place.
fn coalesce(pending: Vec<Write>) -> Vec<Sent> {
    let mut slots: Vec<Slot> = Vec::with_capacity(pending.len());
    let mut open: Vec<OpenSet> = Vec::new();
    for write in pending {
        match write {
            Write::Row(kind, params) => {
                let key = match (kind.keyed(), params.first()) {
                    (true, Some(Bound::Str(jid))) => Some(jid.clone()),
                    _ => None,
                };
                let joins = open.iter().find(|set| {
                    set.kind == kind
                        && !set.closed
                        && key
                            .as_ref()
                            .is_none_or(|k| !set.keys.contains(k) && !set.passed.contains(k))
                });
                let at = match joins {
                    Some(set) => set.at,
                    None => {
                        open.retain(|set| set.kind != kind);
                        open.push(OpenSet {
                            kind,
                            at: slots.len(),
                            keys: Default::default(),
                            passed: Default::default(),
                            closed: false,
                        });
                        slots.push(Slot::Rows(kind, Vec::new()));
                        slots.len() - 1
                    }
                };
                for set in &mut open {
                    if set.at == at {
                        set.keys.extend(key.clone());
                    } else if set.kind.table() == kind.table() {
                        match &key {
                            Some(k) => {
                                set.passed.insert(k.clone());
                            }
                            None => set.closed = true,
                        }
                    }
                }
                if let Slot::Rows(_, rows) = &mut slots[at] {
                    rows.push(params);
                }
            }
            other => {
                match &other {
                    Write::Exec(sql, _) => match written_table(sql) {
                        Some(table) => {
                            open.retain(|set| !set.kind.table().eq_ignore_ascii_case(table))
                        }
                        None => open.clear(),
                    },
                    _ => open.clear(),
                }
                slots.push(Slot::One(other));
            }
        }
    }
    slots
        .into_iter()
        .map(|slot| match slot {
            Slot::One(write) => Sent::One(write),
            Slot::Rows(kind, mut rows) if rows.len() == 1 => {
                Sent::One(Write::Row(kind, rows.pop().unwrap_or_default()))
            }
            Slot::Rows(kind, rows) => {
                let n = rows.len();
                let mut columns: Vec<Column> = rows
                    .first()
                    .map(|row| row.iter().map(|v| Column::of(v, n)).collect())
                    .unwrap_or_default();
                for row in rows {
                    for (column, value) in columns.iter_mut().zip(row) {
                        column.push(value);
                    }
                }
                Sent::Set {
                    kind,
                    columns,
                    rows: n as u64,
                }
            }
        })
        .collect()
}

/// The column of [`history_col!`] after [`job_cols!`].
const HISTORY_COL: usize = 28;

/// The row of the job `wanted.want`, as a lateral subquery named `jobs`
/// that the planner cannot flatten (`OFFSET 0`): looked up by key, one
/// probe per wanted jid, whatever the plan cached for the statement. As a
/// plain join, the plan a connection caches after a few executions (a
/// generic plan, costed with the table as small as it was then and the
/// array as ten elements) was a hash join over a scan of the whole table,
/// kept as the table grew: 6 ms median for 100 jids at 20,000 rows, a
/// third of the server's statement time in the lifecycle benchmark.
macro_rules! job_by_want {
    () => {
        "(SELECT * FROM jobs WHERE jobs.jid = wanted.want OFFSET 0) AS jobs"
    };
}

/// A job's whole history as one JSON text column (`[[at, what, extra], …]`
/// in order, NULL when it has none), selected with its row, so the logic's
/// history count and list need no query of their own (see [`PgTx`]'s
/// `history`). `$jid` is the SQL naming the job.
macro_rules! history_col {
    ($jid:literal) => {
        concat!(
            "(SELECT json_agg(json_build_array(h.at, h.what, h.extra) ORDER BY h.id)
              FROM history h WHERE h.jid = ",
            $jid,
            ")::text"
        )
    };
}

/// The one integer answering `sql` (`COUNT(*)` and the like), from its
/// rows.
fn one_int(rows: &[Row], sql: &str) -> Result<i64> {
    match rows {
        [row] => row.try_get::<_, i64>(0).pg(),
        [] => Err(corrupt(format!("no value from {sql:?}"))),
        _ => Err(corrupt(format!("more than one row from {sql:?}"))),
    }
}

/// Reads [`history_col!`]'s text.
fn history_from_json(text: Option<&str>) -> Result<Vec<HistoryEntry>> {
    let Some(text) = text else {
        return Ok(Vec::new());
    };
    let rows: Vec<(i64, String, String)> =
        serde_json::from_str(text).map_err(|e| corrupt(format!("job history: {e}")))?;
    rows.into_iter()
        .map(|(at, what, extra)| {
            Ok(HistoryEntry {
                when: Timestamp(at),
                what,
                extra: serde_json::from_str(&extra)
                    .map_err(|e| corrupt(format!("history entry: {e}")))?,
            })
        })
        .collect()
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
        unique_key: row.try_get(24).pg()?,
        batch: row.try_get(25).pg()?,
        batch_outcome: outcome(row.try_get(26).pg()?)?,
        throttles: json_col(row, 27)?,
    })
}

/// A job's [`BatchOutcome`] from its code.
fn outcome(code: i64) -> Result<BatchOutcome> {
    BatchOutcome::from_code(code).ok_or_else(|| corrupt(format!("job batch outcome {code}")))
}

/// Reads a batch row selected with [`batch_cols!`].
fn batch_from_row(row: &Row) -> Result<BatchRecord> {
    let spec: String = row.try_get(2).pg()?;
    Ok(BatchRecord {
        id: row.try_get(0).pg()?,
        created: Timestamp(row.try_get(1).pg()?),
        spec: serde_json::from_str(&spec).map_err(|e| corrupt(format!("batch spec: {e}")))?,
        total: row.try_get(3).pg()?,
        pending: row.try_get(4).pg()?,
        complete: row.try_get(5).pg()?,
        failed: row.try_get(6).pg()?,
        canceled: row.try_get(7).pg()?,
        finished: row.try_get::<_, Option<i64>>(8).pg()?.map(Timestamp),
        callback_jid: row.try_get(9).pg()?,
    })
}

/// The `batches` columns in [`batch_from_row`]'s order.
macro_rules! batch_cols {
    () => {
        "id, created, spec, total, pending, complete, failed, canceled, finished, callback_jid"
    };
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
        cron: match row.try_get::<_, Option<String>>(11).pg()? {
            None => None,
            Some(expr) => Some(Box::new(CronSpec {
                expr,
                timezone: row.try_get(12).pg()?,
                missed: Missed::parse("recurring", row.try_get(13).pg()?).unwrap_or_default(),
            })),
        },
    })
}

impl PgTx<'_> {
    /// A job's row, with its history (`Tx::job_get`, without the check
    /// of a claiming put).
    fn job_get_row(&mut self, jid: &str) -> Result<Option<JobRecord>> {
        if let Some(job) = self.prefetched.remove(jid) {
            // Read ahead, with its history (in `history` since).
            return Ok(job);
        }
        // No FOR UPDATE: a command holding the store's lock exclusively is
        // alone, and a claiming pop locked the row when it listed it. A
        // complete next to pops locks it first, in a statement of its own.
        // One row whether or not the job exists: its history comes too.
        const SQL: &str = concat!(
            "SELECT ",
            job_cols!(),
            ", ",
            history_col!("wanted.want"),
            " FROM (SELECT $1::text AS want) AS wanted
             LEFT JOIN LATERAL ",
            job_by_want!(),
            " ON true"
        );
        let row = if self.locks_jobs() && !jid.contains('\0') {
            let mut answers = self.send(vec![
                Op::Exec(LOCK_JOB_SQL, vec![&jid]),
                Op::Query(SQL, vec![&jid]),
            ])?;
            let rows = answers.pop().map(Answer::rows).unwrap_or_default();
            if rows.len() > 1 {
                return Err(corrupt("more than one row for a job".to_owned()));
            }
            rows.into_iter().next()
        } else {
            self.row(SQL, &[&jid])?
        };
        let row = row.ok_or_else(|| corrupt("no row for a job".to_owned()))?;
        self.job_read(jid, &row)
    }
}

impl Tx for PgTx<'_> {
    // --- savepoints ------------------------------------------------------

    fn savepoint(&mut self) -> Result<()> {
        if self.optimistic {
            if self.item_refused {
                // The pass is lost: stop the batch here.
                return Err(Error::store(
                    "a batch item was refused: the batch runs again with savepoints",
                ));
            }
            return Ok(());
        }
        self.flush_with("SAVEPOINT batch_item")
    }

    fn savepoint_release(&mut self) -> Result<()> {
        if self.optimistic {
            return Ok(());
        }
        // Sent with the next statement: the next item's savepoint, or
        // the events (a later rollback to a savepoint is always sent
        // after it).
        self.pending
            .push(Write::Text("RELEASE SAVEPOINT batch_item"));
        Ok(())
    }

    fn savepoint_rollback(&mut self) -> Result<()> {
        if self.optimistic {
            // Nothing to undo here: the owner rolls the transaction back
            // and runs the command again with savepoints.
            self.item_refused = true;
            return Ok(());
        }
        // What is buffered was done inside the savepoint: dropped.
        self.rolled_back();
        self.flush_with("ROLLBACK TO SAVEPOINT batch_item; RELEASE SAVEPOINT batch_item")
    }

    // --- batches ---------------------------------------------------------

    fn batch_get(&mut self, id: &str) -> Result<Option<BatchRecord>> {
        // FOR UPDATE: two concurrent pops may each fail a job of the batch.
        self.row(
            concat!(
                "SELECT ",
                batch_cols!(),
                " FROM batches WHERE id = $1 FOR UPDATE"
            ),
            &[&id],
        )?
        .as_ref()
        .map(batch_from_row)
        .transpose()
    }

    fn batch_save(&mut self, b: &BatchRecord) -> Result<()> {
        let spec = to_json_text(&b.spec)?;
        self.write(
            concat!(
                "INSERT INTO batches (",
                batch_cols!(),
                ") VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10)
                 ON CONFLICT (id) DO UPDATE SET created = excluded.created,
                   spec = excluded.spec, total = excluded.total,
                   pending = excluded.pending, complete = excluded.complete,
                   failed = excluded.failed, canceled = excluded.canceled,
                   finished = excluded.finished, callback_jid = excluded.callback_jid"
            ),
            &[
                Arg::Str(&b.id),
                Arg::Int(b.created.0),
                Arg::Str(&spec),
                Arg::Int(b.total),
                Arg::Int(b.pending),
                Arg::Int(b.complete),
                Arg::Int(b.failed),
                Arg::Int(b.canceled),
                Arg::OptInt(b.finished.map(|t| t.0)),
                Arg::OptStr(b.callback_jid.as_deref()),
            ],
        )
    }

    fn batch_list(&mut self, off: i64, lim: i64) -> Result<(i64, Vec<BatchRecord>)> {
        let total = self.int("SELECT COUNT(*) FROM batches", &[])?;
        let rows = self.rows(
            concat!(
                "SELECT ",
                batch_cols!(),
                " FROM batches ORDER BY created DESC, id DESC LIMIT $2 OFFSET $1"
            ),
            &[&offset(off), &limit(lim)],
        )?;
        let list = rows
            .iter()
            .map(batch_from_row)
            .collect::<Result<Vec<_>>>()?;
        Ok((total, list))
    }

    fn batch_jobs(&mut self, id: &str, off: i64, lim: i64) -> Result<(i64, Vec<String>)> {
        let total = self.int(
            "SELECT COUNT(*) FROM jobs WHERE batch = $1 AND batch IS NOT NULL",
            &[&id],
        )?;
        let jids = self.strings(
            "SELECT jid FROM jobs WHERE batch = $1 AND batch IS NOT NULL
             ORDER BY jid LIMIT $3 OFFSET $2",
            &[&id, &offset(off), &limit(lim)],
        )?;
        Ok((total, jids))
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
        if !self.config_loaded {
            // Every row at once (a handful), with the other facts.
            self.facts_loaded = false;
            self.load_facts()?;
        }
        Ok(self.config.get(key).cloned().flatten())
    }

    fn config_set(&mut self, key: &str, value: &str) -> Result<()> {
        // Forget first: if the write fails the cache must not claim it.
        self.config.remove(key);
        self.write(
            "INSERT INTO config (key, value) VALUES ($1, $2)
             ON CONFLICT (key) DO UPDATE SET value = excluded.value",
            &[Arg::Str(key), Arg::Str(value)],
        )?;
        self.config.insert(key.to_owned(), Some(value.to_owned()));
        Ok(())
    }

    fn config_unset(&mut self, key: &str) -> Result<()> {
        self.config.remove(key);
        self.write("DELETE FROM config WHERE key = $1", &[Arg::Str(key)])?;
        self.config.insert(key.to_owned(), None);
        Ok(())
    }

    // --- dependencies --------------------------------------------------

    fn dep_add(&mut self, jid: &str, dep: &str) -> Result<()> {
        self.deps_empty = Some(false);
        self.write(
            "INSERT INTO deps (jid, dep) VALUES ($1, $2) ON CONFLICT DO NOTHING",
            &[Arg::Str(jid), Arg::Str(dep)],
        )
    }

    fn dep_remove(&mut self, jid: &str, dep: &str) -> Result<()> {
        if self.locks_jobs() {
            // Completes run next to each other: two completing the last
            // two dependencies of one job each read its dependencies after
            // the other's removal commits (the row held from here), so one
            // of them sees none left and releases it.
            self.write(LOCK_JOB_SQL, &[Arg::Str(jid)])?;
        }
        self.write(
            "DELETE FROM deps WHERE jid = $1 AND dep = $2",
            &[Arg::Str(jid), Arg::Str(dep)],
        )
    }

    fn deps_of(&mut self, jid: &str) -> Result<Vec<String>> {
        if self.no_deps()? {
            return Ok(Vec::new());
        }
        self.strings("SELECT dep FROM deps WHERE jid = $1 ORDER BY dep", &[&jid])
    }

    fn dependents_of(&mut self, dep: &str) -> Result<Vec<String>> {
        if self.no_deps()? {
            return Ok(Vec::new());
        }
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
        if let Some(list) = self.history.get_mut(jid) {
            list.push(entry.clone());
        }
        self.write_row(
            RowKind::History,
            &[
                Arg::Str(jid),
                Arg::Int(entry.when.0),
                Arg::Str(&entry.what),
                Arg::Str(&extra),
            ],
        )
    }

    fn history_count(&mut self, jid: &str) -> Result<i64> {
        if let Some(list) = self.history.get(jid) {
            return Ok(list.len() as i64);
        }
        self.int("SELECT COUNT(*) FROM history WHERE jid = $1", &[&jid])
    }

    fn history_delete(&mut self, jid: &str) -> Result<()> {
        self.history.insert(jid.to_owned(), Vec::new());
        self.write("DELETE FROM history WHERE jid = $1", &[Arg::Str(jid)])
    }

    fn history_list(&mut self, jid: &str) -> Result<Vec<HistoryEntry>> {
        if let Some(list) = self.history.get(jid) {
            return Ok(list.clone());
        }
        const SQL: &str = "SELECT at, what, extra FROM history WHERE jid = $1 ORDER BY id";
        self.rows(SQL, &[&jid])?
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
        self.history.remove(jid);
        self.write(
            "DELETE FROM history WHERE jid = $1
               AND id > (SELECT MIN(id) FROM history WHERE jid = $1)
               AND id NOT IN (SELECT id FROM history WHERE jid = $1
                              ORDER BY id DESC LIMIT $2)",
            &[Arg::Str(jid), Arg::Int(limit(keep_last))],
        )
    }

    // --- jobs ----------------------------------------------------------

    fn job_count(&mut self, queue: &str, loc: Loc, range: TimeRange) -> Result<i64> {
        if let Some((schema, _)) = self.claims.clone() {
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
        self.write("DELETE FROM jobs WHERE jid = $1", &[Arg::Str(jid)])?;
        self.note_write(jid, None);
        Ok(())
    }

    fn job_get(&mut self, jid: &str) -> Result<Option<JobRecord>> {
        let job = self.job_get_row(jid)?;
        if job.is_some() && self.claim() == Some(Claim::Put) {
            self.alone = true;
            return Err(Error::store(format!(
                "job {jid} exists: the put runs again alone"
            )));
        }
        Ok(job)
    }

    fn prefetch_jobs(&mut self, jids: &[&str]) -> Result<()> {
        if !self.keeps_locs() {
            return Ok(());
        }
        let mut wanted: Vec<&str> = Vec::with_capacity(jids.len());
        for jid in jids {
            if !wanted.contains(jid) && !self.prefetched.contains_key(*jid) {
                wanted.push(jid);
            }
        }
        if wanted.is_empty() {
            return Ok(());
        }
        if wanted.iter().any(|jid| jid.contains('\0')) {
            // Such a job cannot exist; its command reports the NUL.
            return Ok(());
        }
        // `job_get`'s query for every wanted jid at once (sent with the
        // buffered writes, so it sees them).
        const SQL: &str = concat!(
            "SELECT ",
            job_cols!(),
            ", ",
            history_col!("wanted.want"),
            ", wanted.want FROM unnest($1::text[]) AS wanted(want)
             LEFT JOIN LATERAL ",
            job_by_want!(),
            " ON true"
        );
        // And as many placement values as these commands may take (one
        // each, as a put or a complete does), in the same round trip.
        let have = self.seqs.len() + usize::from(self.next_seq.is_some());
        let block = i64::try_from(jids.len().saturating_sub(have)).unwrap_or(0);
        let mut ops = Vec::with_capacity(3);
        let locks = self.locks_jobs();
        if locks {
            // A complete next to pops: the rows locked first (see job_get).
            ops.push(Op::Exec(LOCK_JOBS_SQL, vec![&wanted]));
        }
        ops.push(Op::Query(SQL, vec![&wanted]));
        if block > 0 {
            ops.push(Op::Query(SEQ_BLOCK_SQL, vec![&block]));
        }
        let mut answers = self.send(ops)?.into_iter();
        if locks {
            answers.next();
        }
        let rows = answers.next().map(Answer::rows).unwrap_or_default();
        if let Some(seqs) = answers.next() {
            // Taken after every value held: handed out after them.
            self.seqs.extend(placement_values(&seqs.rows())?);
            self.seqs.sort_unstable_by(|a, b| b.cmp(a));
        }
        if rows.len() != wanted.len() {
            return Err(corrupt(format!(
                "{} rows for {} prefetched jobs",
                rows.len(),
                wanted.len()
            )));
        }
        for row in &rows {
            let jid: String = row.try_get(HISTORY_COL + 1).pg()?;
            let job = self.job_read(&jid, row)?;
            self.prefetched.insert(jid, job);
        }
        Ok(())
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
        let sql = match (loc == Loc::Work, self.claims_lists()) {
            (true, false) => {
                concat!("SELECT jid FROM jobs", list_work!())
            }
            (true, true) => {
                concat!(
                    "SELECT jid FROM jobs",
                    list_work!(),
                    " FOR UPDATE SKIP LOCKED"
                )
            }
            (false, false) => {
                concat!("SELECT jid FROM jobs", list_other!())
            }
            (false, true) => {
                concat!(
                    "SELECT jid FROM jobs",
                    list_other!(),
                    " FOR UPDATE SKIP LOCKED"
                )
            }
        };
        let complete_set = queue.is_empty() && loc == Loc::Complete && self.keeps_locs();
        if complete_set && self.complete_floor.is_some_and(|floor| max < floor) {
            return Ok(Vec::new());
        }
        if loc == Loc::Scheduled && self.queues.get(queue).is_some_and(|facts| !facts.scheduled) {
            return Ok(Vec::new());
        }
        // With buffered writes: sent with them, in one round trip (a
        // listing of stalled locks, a peek's first query, with the queue's
        // facts).
        let code = loc.code();
        let (off, lim) = (offset(off), limit(lim));
        let params: Vec<&(dyn ToSql + Sync)> = vec![&queue, &code, &min, &max, &off, &lim];
        let rows = if loc == Loc::Locked && !queue.contains('\0') {
            self.with_queue_facts(queue, Some(Op::Query(sql, params)))?
        } else if complete_set && self.complete_n.is_none() {
            // Expiry: the complete count is read next (to cap the set), so
            // it comes in this round trip too.
            let mut answers = self
                .send(vec![
                    Op::Query(sql, params),
                    Op::Query(COMPLETE_COUNT_SQL, vec![]),
                ])?
                .into_iter();
            let rows = answers.next().map(Answer::rows).unwrap_or_default();
            let count = answers.next().map(Answer::rows).unwrap_or_default();
            self.complete_n = Some(one_int(&count, COMPLETE_COUNT_SQL)?);
            rows
        } else {
            self.rows(sql, &params)?
        };
        let jids = rows
            .iter()
            .map(|r| r.try_get::<_, String>(0).pg())
            .collect::<Result<Vec<String>>>()?;
        if complete_set && jids.is_empty() && off == 0 && lim > 0 {
            // None up to `max`: every complete job sorts after it.
            let floor = max.saturating_add(1);
            self.complete_floor = Some(self.complete_floor.map_or(floor, |f| f.max(floor)));
        }
        Ok(jids)
    }

    fn job_list_records(
        &mut self,
        queue: &str,
        loc: Loc,
        range: TimeRange,
        off: i64,
        lim: i64,
    ) -> Result<Vec<JobRecord>> {
        // `job_list`'s queries, returning the rows (locked as they are
        // selected when claiming, so a row changed by another pop meanwhile
        // comes back as its latest version, re-checked).
        let (min, max) = bounds(range);
        if loc == Loc::Work && off == 0 {
            if let Some((q, l, mut jobs)) = self.work_ahead.take() {
                if q == queue && limit(lim) <= l && range == TimeRange::ALL {
                    jobs.truncate(usize::try_from(limit(lim)).unwrap_or(0));
                    return Ok(jobs);
                }
            }
        }
        // A claiming pop lists its queue's expired locks, then (nothing
        // else changing the work list in between when the queue has no
        // recurring templates, no scheduled jobs and no rate-limited
        // throttle holds jobs back) its work list from the start: both go
        // in one round trip. The work rows it does not take stay claimed
        // until its commit (other pops skip them meanwhile).
        let ahead = loc == Loc::Locked
            && off == 0
            && self.claims_lists()
            && self.rate_idle == Some(true)
            && self
                .queues
                .get(queue)
                .is_some_and(|facts| !facts.recurring && !facts.scheduled);
        const WORK_CLAIMED: &str = concat!(
            "SELECT ",
            job_cols!(),
            ", ",
            history_col!("jobs.jid"),
            " FROM jobs",
            list_work!(),
            " FOR UPDATE SKIP LOCKED"
        );
        let sql = match (loc == Loc::Work, self.claims_lists()) {
            (true, false) => concat!(
                "SELECT ",
                job_cols!(),
                ", ",
                history_col!("jobs.jid"),
                " FROM jobs",
                list_work!()
            ),
            (true, true) => WORK_CLAIMED,
            (false, false) => concat!(
                "SELECT ",
                job_cols!(),
                ", ",
                history_col!("jobs.jid"),
                " FROM jobs",
                list_other!()
            ),
            (false, true) => concat!(
                "SELECT ",
                job_cols!(),
                ", ",
                history_col!("jobs.jid"),
                " FROM jobs",
                list_other!(),
                " FOR UPDATE SKIP LOCKED"
            ),
        };
        let (code, skip, most) = (loc.code(), offset(off), limit(lim));
        let (work, first) = (Loc::Work.code(), 0i64);
        let (all_min, all_max) = bounds(TimeRange::ALL);
        let mut ops = vec![Op::Query(
            sql,
            vec![&queue, &code, &min, &max, &skip, &most],
        )];
        if ahead {
            ops.push(Op::Query(
                WORK_CLAIMED,
                vec![&queue, &work, &all_min, &all_max, &first, &most],
            ));
        }
        let mut answers = self.send(ops)?.into_iter();
        let jobs = self.listed(answers.next().map(Answer::rows).unwrap_or_default())?;
        if ahead {
            let work_jobs = self.listed(answers.next().map(Answer::rows).unwrap_or_default())?;
            self.work_ahead = Some((queue.to_owned(), most, work_jobs));
        }
        Ok(jobs)
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
             WHERE queue = $1 AND loc IN ($3, $4, $5, $6, $7)
             GROUP BY loc, live",
            &[
                &queue,
                &now.0,
                &Loc::Work.code(),
                &Loc::Locked.code(),
                &Loc::Scheduled.code(),
                &Loc::Depends.code(),
                &Loc::Throttled.code(),
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
                Some(Loc::Throttled) => counts.throttled += n,
                _ => {}
            }
        }
        Ok(counts)
    }

    fn complete_count(&mut self) -> Result<i64> {
        if let Some(n) = self.complete_n {
            return Ok(n);
        }
        // Sent with the buffered writes: counts them.
        let n = self.int(COMPLETE_COUNT_SQL, &[])?;
        if self.keeps_locs() {
            self.complete_n = Some(n);
        }
        Ok(n)
    }

    fn job_save(&mut self, job: &JobRecord) -> Result<()> {
        if job.loc == Loc::Work {
            // A job joining the work list (a throttle's waiting job
            // promoted when a failed job released it, say): the list read
            // ahead may miss it.
            self.work_ahead = None;
        }
        // Whether the row exists, if this transaction knows (not a
        // claiming pop: it keeps no `locs`): then a plain UPDATE or INSERT
        // does, without the upsert's speculative insertion.
        let exists = if self.keeps_locs() {
            self.locs.get(&job.jid).map(Option::is_some)
        } else {
            None
        };
        if job.loc == Loc::Scheduled {
            if let Some(facts) = self.queues.get_mut(&job.queue) {
                facts.scheduled = true;
            }
        }
        if job.loc == Loc::Complete {
            if let Some(floor) = &mut self.complete_floor {
                *floor = (*floor).min(job.sort_time.0);
            }
        }
        let tags = to_json_text(&job.tags)?;
        let metadata = to_json_text(&job.metadata)?;
        let throttles = to_json_text(&job.throttles)?;
        let failure = job.failure.as_ref().map(to_json_text).transpose()?;
        let scheduled = job.scheduled.map(|t| t.0);
        let kind = match exists {
            Some(true) => RowKind::JobUpdate,
            Some(false) => RowKind::JobInsert,
            None => RowKind::JobUpsert,
        };
        let args = [
            Arg::Str(&job.jid),
            Arg::Str(&job.klass),
            Arg::Str(&job.queue),
            Arg::Str(job.state.as_str()),
            Arg::Str(&job.data),
            Arg::Int(job.priority),
            Arg::Str(&tags),
            Arg::Str(&job.worker),
            Arg::Int(job.expires.0),
            Arg::Int(job.retries),
            Arg::Int(job.remaining),
            Arg::Int(job.time.0),
            Arg::Bool(job.grace),
            Arg::OptInt(scheduled),
            Arg::OptStr(failure.as_deref()),
            Arg::OptStr(job.spawned_from.as_deref()),
            Arg::Bool(job.worker_listed),
            Arg::OptStr(job.fail_group.as_deref()),
            Arg::Int(job.fail_seq),
            Arg::Int(job.loc.code()),
            Arg::Int(job.sort_prio),
            Arg::Int(job.sort_time.0),
            Arg::Int(job.seq),
            Arg::Str(&metadata),
            Arg::OptStr(job.unique_key.as_deref()),
            Arg::OptStr(job.batch.as_deref()),
            Arg::Int(job.batch_outcome.code()),
            Arg::Str(&throttles),
        ];
        self.write_row(kind, &args)?;
        self.note_write(&job.jid, Some(job.loc));
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
        // Changes rows other than by `job_save`.
        self.prefetched.clear();
        self.write(
            "UPDATE jobs SET worker_listed = false WHERE worker = $1 AND worker_listed",
            &[Arg::Str(worker)],
        )
    }

    // --- queues --------------------------------------------------------

    fn queue_forget(&mut self, queue: &str) -> Result<()> {
        self.registered.remove(queue);
        // An unpaused forgotten queue needs no row at all.
        self.write(
            "DELETE FROM queues WHERE name = $1 AND NOT paused",
            &[Arg::Str(queue)],
        )?;
        self.write(
            "UPDATE queues SET known = false WHERE name = $1",
            &[Arg::Str(queue)],
        )
    }

    fn queue_list(&mut self) -> Result<Vec<String>> {
        self.strings(
            "SELECT name FROM queues WHERE known ORDER BY first_seen, name",
            &[],
        )
    }

    fn queue_paused(&mut self, queue: &str) -> Result<bool> {
        if queue.contains('\0') {
            return Err(nul_error());
        }
        self.with_queue_facts(queue, None)?;
        Ok(self.queues.get(queue).is_some_and(|facts| facts.paused))
    }

    fn queue_register(&mut self, queue: &str, now: Timestamp) -> Result<()> {
        if self.registered.contains(queue) {
            return Ok(());
        }
        // Nothing (no row lock) when the queue is known already: puts
        // into one queue running next to each other do not queue up on
        // its row ([`Claim::Put`]).
        self.write(
            "INSERT INTO queues (name, known, first_seen, paused)
             SELECT $1::text, true, $2::int8, false
             WHERE NOT EXISTS (SELECT 1 FROM queues WHERE name = $1::text AND known)
             ON CONFLICT (name) DO UPDATE SET known = true, first_seen = excluded.first_seen
             WHERE NOT queues.known",
            &[Arg::Str(queue), Arg::Int(now.0)],
        )?;
        self.registered.insert(queue.to_owned());
        Ok(())
    }

    fn queue_set_paused(&mut self, queue: &str, paused: bool) -> Result<()> {
        if let Some(facts) = self.queues.get_mut(queue) {
            facts.paused = paused;
        }
        self.write(
            "INSERT INTO queues (name, known, first_seen, paused) VALUES ($1, false, 0, $2)
             ON CONFLICT (name) DO UPDATE SET paused = excluded.paused",
            &[Arg::Str(queue), Arg::Bool(paused)],
        )?;
        // An unknown, unpaused queue needs no row.
        self.write(
            "DELETE FROM queues WHERE name = $1 AND NOT known AND NOT paused",
            &[Arg::Str(queue)],
        )
    }

    // --- recurring templates -------------------------------------------

    fn recur_count(&mut self, queue: &str) -> Result<i64> {
        self.int("SELECT COUNT(*) FROM recurring WHERE queue = $1", &[&queue])
    }

    fn recur_delete(&mut self, jid: &str) -> Result<()> {
        self.write("DELETE FROM recurring WHERE jid = $1", &[Arg::Str(jid)])
    }

    fn recur_get(&mut self, jid: &str) -> Result<Option<RecurRecord>> {
        self.row(
            "SELECT jid, klass, queue, data, priority, tags, retries, interval,
                    next_at, count, backlog, cron, timezone, missed
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
        if self.queues.get(queue).is_some_and(|facts| !facts.recurring) {
            return Ok(Vec::new());
        }
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
        if let Some(facts) = self.queues.get_mut(&recur.queue) {
            facts.recurring = true;
        }
        let tags = to_json_text(&recur.tags)?;
        self.write(
            "INSERT INTO recurring
               (jid, klass, queue, data, priority, tags, retries, interval, next_at,
                count, backlog, cron, timezone, missed)
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14)
             ON CONFLICT (jid) DO UPDATE SET klass = excluded.klass,
               queue = excluded.queue, data = excluded.data, priority = excluded.priority,
               tags = excluded.tags, retries = excluded.retries,
               interval = excluded.interval, next_at = excluded.next_at,
               count = excluded.count, backlog = excluded.backlog,
               cron = excluded.cron, timezone = excluded.timezone,
               missed = excluded.missed",
            &[
                Arg::Str(&recur.jid),
                Arg::Str(&recur.klass),
                Arg::Str(&recur.queue),
                Arg::Str(&recur.data),
                Arg::Int(recur.priority),
                Arg::Str(&tags),
                Arg::Int(recur.retries),
                Arg::Float(recur.interval),
                Arg::Int(recur.next_at.0),
                Arg::Int(recur.count),
                Arg::Int(recur.backlog),
                Arg::OptStr(recur.cron.as_ref().map(|c| c.expr.as_str())),
                Arg::OptStr(recur.cron.as_ref().and_then(|c| c.timezone.as_deref())),
                Arg::Str(
                    recur
                        .cron
                        .as_ref()
                        .map_or(Missed::default(), |c| c.missed)
                        .as_str(),
                ),
            ],
        )
    }

    // --- sequence ------------------------------------------------------

    fn seq_next(&mut self) -> Result<i64> {
        if !self.facts_loaded && self.next_seq.is_none() {
            self.load_facts()?;
        }
        if let Some(seq) = self.next_seq.take() {
            return Ok(seq);
        }
        if let Some(seq) = self.seqs.pop() {
            return Ok(seq);
        }
        // A block of the values announced, or twice as many as last time
        // (a batch of puts or a pop of many jobs takes one per job); values
        // not used are skipped.
        let block = if self.seq_want > 0 {
            std::mem::take(&mut self.seq_want)
        } else {
            self.seq_block = (self.seq_block * 2).clamp(2, 256);
            self.seq_block
        };
        let mut seqs = placement_values(&self.rows(SEQ_BLOCK_SQL, &[&block])?)?;
        // Handed out smallest first (popped from the end).
        seqs.sort_unstable_by(|a, b| b.cmp(a));
        let seq = seqs
            .pop()
            .ok_or_else(|| corrupt("no placement sequence value".to_owned()))?;
        self.seqs = seqs;
        Ok(seq)
    }

    fn seq_reserve(&mut self, n: usize) -> Result<()> {
        let have = self.seqs.len() + usize::from(self.next_seq.is_some());
        self.seq_want = i64::try_from(n.saturating_sub(have)).unwrap_or(0);
        Ok(())
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
        self.write(sql, &[Arg::Str(queue), Arg::Int(day.0), Arg::Int(delta)])
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
        if queue.contains('\0') || bucket.contains('\0') {
            return Err(nul_error());
        }
        // Added up, written with the next round trip (`stage_stats`).
        *self
            .hist_adds
            .entry((queue.to_owned(), day.0, kind.as_str(), bucket.to_owned()))
            .or_insert(0) += 1;
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
        // Read once per transaction: the command holds the store's lock
        // exclusively, or (a claiming pop) the row `FOR UPDATE`.
        let key = (queue.to_owned(), day.0, kind);
        if let Some(stat) = self.timing.get(&key) {
            return Ok(*stat);
        }
        let stat = self.stats_timing_read(queue, day, kind)?;
        self.timing.insert(key, stat);
        Ok(stat)
    }

    fn stats_timing_save(
        &mut self,
        queue: &str,
        day: Timestamp,
        kind: StatKind,
        stat: &TimingStat,
    ) -> Result<()> {
        if queue.contains('\0') {
            return Err(nul_error());
        }
        // Written once, with the next round trip (`stage_stats`).
        let key = (queue.to_owned(), day.0, kind);
        if !self.timing_dirty.contains(&key) {
            self.timing_dirty.push(key.clone());
        }
        self.timing.insert(key, *stat);
        Ok(())
    }

    fn stats_timing_add(
        &mut self,
        queue: &str,
        day: Timestamp,
        kind: StatKind,
        secs: f64,
    ) -> Result<()> {
        if queue.contains('\0') {
            return Err(nul_error());
        }
        let key = (queue.to_owned(), day.0, kind);
        if let Some(mut stat) = self.timing.get(&key).copied() {
            // Read in this transaction: kept whole, written whole.
            stat.add(secs);
            return self.stats_timing_save(queue, day, kind, &stat);
        }
        self.timing_adds.entry(key).or_default().add(secs);
        Ok(())
    }

    // --- tags ----------------------------------------------------------

    fn tag_count_add(&mut self, tag: &str, delta: i64) -> Result<()> {
        self.write(
            "INSERT INTO tag_counts (tag, count) VALUES ($1, $2)
             ON CONFLICT (tag) DO UPDATE SET count = tag_counts.count + excluded.count",
            &[Arg::Str(tag), Arg::Int(delta)],
        )?;
        self.write(
            "DELETE FROM tag_counts WHERE tag = $1 AND count <= 0",
            &[Arg::Str(tag)],
        )
    }

    fn tag_index_add(&mut self, tag: &str, jid: &str, at: Timestamp) -> Result<()> {
        self.write(
            "INSERT INTO tags (tag, jid, at) VALUES ($1, $2, $3)
             ON CONFLICT (tag, jid) DO UPDATE SET at = excluded.at",
            &[Arg::Str(tag), Arg::Str(jid), Arg::Int(at.0)],
        )
    }

    fn tag_index_remove(&mut self, tag: &str, jid: &str) -> Result<()> {
        self.write(
            "DELETE FROM tags WHERE tag = $1 AND jid = $2",
            &[Arg::Str(tag), Arg::Str(jid)],
        )
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

    // --- throttles -----------------------------------------------------

    fn throttle_get(&mut self, name: &str) -> Result<Option<i64>> {
        // Definitions change only under the store's lock held exclusively.
        match self.row("SELECT max FROM throttles WHERE name = $1", &[&name])? {
            Some(row) => Ok(Some(row.try_get(0).pg()?)),
            None => Ok(None),
        }
    }

    fn throttle_set(&mut self, name: &str, max: i64) -> Result<()> {
        self.write(
            "INSERT INTO throttles (name, max) VALUES ($1, $2)
             ON CONFLICT (name) DO UPDATE SET max = excluded.max",
            &[Arg::Str(name), Arg::Int(max)],
        )
    }

    fn throttle_delete(&mut self, name: &str) -> Result<()> {
        self.write("DELETE FROM throttles WHERE name = $1", &[Arg::Str(name)])?;
        self.write(
            "DELETE FROM throttle_starts WHERE throttle = $1",
            &[Arg::Str(name)],
        )
    }

    fn throttle_list(&mut self) -> Result<Vec<(String, i64)>> {
        self.rows("SELECT name, max FROM throttles ORDER BY name", &[])?
            .iter()
            .map(|r| Ok((r.try_get(0).pg()?, r.try_get(1).pg()?)))
            .collect()
    }

    fn throttle_held(&mut self, name: &str) -> Result<i64> {
        self.throttle_lock(name)?;
        self.int(
            "SELECT COUNT(*) FROM throttle_jobs WHERE throttle = $1 AND holding",
            &[&name],
        )
    }

    fn throttle_pending_count(&mut self, name: &str) -> Result<i64> {
        self.int(
            "SELECT COUNT(*) FROM throttle_jobs WHERE throttle = $1 AND NOT holding",
            &[&name],
        )
    }

    fn throttle_hold(&mut self, jid: &str, names: &[String]) -> Result<()> {
        for name in names {
            self.write(
                "INSERT INTO throttle_jobs (throttle, jid, holding, prio, time, seq)
                 VALUES ($1, $2, true, 0, 0, 0)
                 ON CONFLICT (throttle, jid) DO UPDATE SET holding = true",
                &[Arg::Str(name), Arg::Str(jid)],
            )?;
        }
        Ok(())
    }

    fn throttle_pend(
        &mut self,
        jid: &str,
        name: &str,
        prio: i64,
        time: Timestamp,
        seq: i64,
    ) -> Result<()> {
        self.rate_idle = Some(false);
        self.write(
            "INSERT INTO throttle_jobs (throttle, jid, holding, prio, time, seq)
             VALUES ($1, $2, false, $3, $4, $5)
             ON CONFLICT (throttle, jid) DO UPDATE SET holding = false, prio = excluded.prio,
               time = excluded.time, seq = excluded.seq",
            &[
                Arg::Str(name),
                Arg::Str(jid),
                Arg::Int(prio),
                Arg::Int(time.0),
                Arg::Int(seq),
            ],
        )
    }

    fn throttle_release(&mut self, jid: &str) -> Result<Vec<String>> {
        let mut held: Vec<String> = self
            .rows(
                "DELETE FROM throttle_jobs WHERE jid = $1 RETURNING throttle, holding",
                &[&jid],
            )?
            .iter()
            .filter_map(|r| match r.try_get::<_, bool>(1) {
                Ok(true) => Some(r.try_get::<_, String>(0).pg()),
                Ok(false) => None,
                Err(e) => Some(Err(pg_err(e))),
            })
            .collect::<Result<_>>()?;
        held.sort();
        Ok(held)
    }

    fn throttle_pending(&mut self, name: &str, lim: i64) -> Result<Vec<String>> {
        if self.claims.is_some() {
            // A pop promotes: claim the jobs (another pop promoting the
            // same job through another throttle skips it).
            return self.strings(
                "SELECT t.jid FROM throttle_jobs t JOIN jobs j ON j.jid = t.jid
                 WHERE t.throttle = $1 AND NOT t.holding
                 ORDER BY t.prio DESC, t.time, t.seq, t.jid LIMIT $2
                 FOR UPDATE OF j SKIP LOCKED",
                &[&name, &limit(lim)],
            );
        }
        self.strings(
            "SELECT jid FROM throttle_jobs WHERE throttle = $1 AND NOT holding
             ORDER BY prio DESC, time, seq, jid LIMIT $2",
            &[&name, &limit(lim)],
        )
    }

    fn throttle_rate(&mut self, name: &str) -> Result<Option<ThrottleRate>> {
        let Some(row) = self.row(
            "SELECT rate_limit, rate_period FROM throttles WHERE name = $1",
            &[&name],
        )?
        else {
            return Ok(None);
        };
        let limit: i64 = row.try_get(0).pg()?;
        let period: i64 = row.try_get(1).pg()?;
        Ok((limit > 0).then_some(ThrottleRate { limit, period }))
    }

    fn throttle_rate_set(&mut self, name: &str, rate: Option<ThrottleRate>) -> Result<()> {
        self.rate_idle = Some(false);
        let (limit, period) = rate.map_or((0, 0), |r| (r.limit, r.period));
        self.write(
            "UPDATE throttles SET rate_limit = $2, rate_period = $3 WHERE name = $1",
            &[Arg::Str(name), Arg::Int(limit), Arg::Int(period)],
        )
    }

    fn throttle_rate_waiting(&mut self) -> Result<Vec<String>> {
        if self.rate_idle.is_none() {
            self.facts_loaded = false;
            self.load_facts()?;
        }
        if self.rate_idle == Some(true) {
            return Ok(Vec::new());
        }
        self.strings(
            "SELECT name FROM throttles t WHERE rate_limit > 0 AND EXISTS
               (SELECT 1 FROM throttle_jobs j WHERE j.throttle = t.name AND NOT j.holding)
             ORDER BY name",
            &[],
        )
    }

    fn throttle_starts(&mut self, name: &str, since: Timestamp) -> Result<i64> {
        self.throttle_lock(name)?;
        self.int(
            "SELECT COUNT(*) FROM throttle_starts WHERE throttle = $1 AND at > $2",
            &[&name, &since.0],
        )
    }

    fn throttle_start(&mut self, name: &str, at: Timestamp, prune: Timestamp) -> Result<()> {
        self.write(
            "DELETE FROM throttle_starts WHERE throttle = $1 AND at <= $2",
            &[Arg::Str(name), Arg::Int(prune.0)],
        )?;
        self.write(
            "INSERT INTO throttle_starts (throttle, at) VALUES ($1, $2)",
            &[Arg::Str(name), Arg::Int(at.0)],
        )
    }

    // --- tracking ------------------------------------------------------

    fn tracked_add(&mut self, jid: &str, at: Timestamp) -> Result<bool> {
        let existed = self.tracked_has(jid)?;
        self.tracked_empty = Some(false);
        self.write(
            "INSERT INTO tracked (jid, at) VALUES ($1, $2)
             ON CONFLICT (jid) DO UPDATE SET at = excluded.at",
            &[Arg::Str(jid), Arg::Int(at.0)],
        )?;
        Ok(!existed)
    }

    fn tracked_has(&mut self, jid: &str) -> Result<bool> {
        if self.tracked_empty.is_none() {
            // Tracking changes only under the lock held exclusively (never
            // by a pop), so the answer holds for the transaction.
            self.facts_loaded = false;
            self.load_facts()?;
        }
        if self.tracked_empty == Some(true) {
            return Ok(false);
        }
        Ok(self
            .row("SELECT 1 FROM tracked WHERE jid = $1", &[&jid])?
            .is_some())
    }

    fn tracked_list(&mut self) -> Result<Vec<String>> {
        self.strings("SELECT jid FROM tracked ORDER BY at, jid", &[])
    }

    fn tracked_remove(&mut self, jid: &str) -> Result<bool> {
        self.tracked_empty = None;
        Ok(self.exec("DELETE FROM tracked WHERE jid = $1", &[&jid])? > 0)
    }

    // --- uniqueness keys -----------------------------------------------

    fn unique_holder(&mut self, key: &str) -> Result<Option<String>> {
        // The condition is the unique partial index's (jobs_unique_live).
        const SQL: &str = "SELECT jid FROM jobs WHERE unique_key = $1
             AND unique_key IS NOT NULL AND state NOT IN ('failed', 'complete')";
        Ok(self.strings(SQL, &[&key])?.into_iter().next())
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
        self.write("DELETE FROM workers WHERE name = $1", &[Arg::Str(worker)])
    }

    fn worker_touch(&mut self, worker: &str, now: Timestamp) -> Result<()> {
        self.write(
            "INSERT INTO workers (name, last_seen) VALUES ($1, $2)
             ON CONFLICT (name) DO UPDATE SET last_seen = excluded.last_seen",
            &[Arg::Str(worker), Arg::Int(now.0)],
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn row(kind: RowKind, jid: &str) -> Write {
        let mut params = vec![Bound::Str(jid.to_owned())];
        if kind == RowKind::History {
            params.extend([
                Bound::Int(1),
                Bound::Str("x".to_owned()),
                Bound::Str("{}".to_owned()),
            ]);
        }
        Write::Row(kind, params)
    }

    /// The statements as (kind or SQL's first word, jids).
    fn shape(sent: &[Sent]) -> Vec<(String, Vec<String>)> {
        sent.iter()
            .map(|s| match s {
                Sent::One(Write::Row(kind, params)) => (
                    format!("{kind:?}"),
                    match &params[0] {
                        Bound::Str(jid) => vec![jid.clone()],
                        _ => Vec::new(),
                    },
                ),
                Sent::One(Write::Exec(sql, _) | Write::Text(sql)) => (
                    sql.split_whitespace().next().unwrap_or("").to_owned(),
                    Vec::new(),
                ),
                Sent::Set { kind, columns, .. } => (
                    format!("{kind:?}"),
                    match &columns[0] {
                        Column::Text(jids) => jids.iter().flatten().cloned().collect(),
                        _ => Vec::new(),
                    },
                ),
            })
            .collect()
    }

    fn s(kind: &str, jids: &[&str]) -> (String, Vec<String>) {
        (
            kind.to_owned(),
            jids.iter().map(|j| (*j).to_owned()).collect(),
        )
    }

    #[test]
    fn rows_of_a_kind_join_across_other_tables_and_other_jobs() {
        use RowKind::*;
        let sent = coalesce(vec![
            row(JobUpdate, "a"),
            row(History, "a"),
            Write::Exec(
                "INSERT INTO tags (tag, jid, at) VALUES ($1, $2, $3)",
                Vec::new(),
            ),
            row(JobUpdate, "b"),
            row(History, "b"),
            row(JobInsert, "c"),
            row(JobUpdate, "d"),
        ]);
        assert_eq!(
            shape(&sent),
            [
                s("JobUpdate", &["a", "b", "d"]),
                s("History", &["a", "b"]),
                s("INSERT", &[]),
                s("JobInsert", &["c"]),
            ]
        );
    }

    #[test]
    fn a_row_does_not_pass_a_write_to_its_job_or_to_unknown_rows() {
        use RowKind::*;
        let sent = coalesce(vec![
            row(JobUpdate, "a"),
            row(JobUpdate, "a"),
            row(JobInsert, "b"),
            row(JobUpdate, "b"),
            row(JobUpdate, "c"),
            Write::Exec(
                "UPDATE jobs SET worker_listed = false WHERE worker = $1",
                Vec::new(),
            ),
            row(JobUpdate, "d"),
            row(History, "d"),
            Write::Exec("DELETE FROM history WHERE jid = $1", Vec::new()),
            row(History, "e"),
            Write::Text("RELEASE SAVEPOINT batch_item"),
            row(JobUpdate, "f"),
        ]);
        assert_eq!(
            shape(&sent),
            [
                s("JobUpdate", &["a"]),
                s("JobUpdate", &["a"]),
                s("JobInsert", &["b"]),
                s("JobUpdate", &["b", "c"]),
                s("UPDATE", &[]),
                s("JobUpdate", &["d"]),
                s("History", &["d"]),
                s("DELETE", &[]),
                s("History", &["e"]),
                s("RELEASE", &[]),
                s("JobUpdate", &["f"]),
            ]
        );
    }

    #[test]
    fn the_written_table_is_known_only_for_single_table_writes() {
        assert_eq!(
            written_table("DELETE FROM tags WHERE tag = $1"),
            Some("tags")
        );
        assert_eq!(written_table("update jobs set a = 1"), Some("jobs"));
        assert_eq!(
            written_table("INSERT INTO queues (name) VALUES ($1)"),
            Some("queues")
        );
        assert_eq!(
            written_table("INSERT INTO queues(name) VALUES ($1)"),
            Some("queues")
        );
        for sql in [
            "DELETE FROM history WHERE id > (SELECT MIN(id) FROM history)",
            "UPDATE jobs SET a = t.a FROM t WHERE t.jid = jobs.jid",
            "UPDATE jobs SET a = t.a\n FROM t WHERE t.jid = jobs.jid",
            "INSERT INTO events (at) VALUES ($1) RETURNING seq",
            "WITH x AS (DELETE FROM jobs) SELECT 1",
            "DELETE FROM \"jobs\" WHERE jid = $1",
            "UPDATE clew.jobs SET a = 1",
        ] {
            assert_eq!(written_table(sql), None, "{sql}");
        }
    }
}
