//! [`SqliteTx`]: the [`Tx`] primitives as SQL statements on one connection.
//!
//! Every primitive is at most one or two cached prepared statements
//! ([`Connection::prepare_cached`]); many need none, answered or buffered
//! by the [`TxCache`] (events are written many rows per statement by
//! [`SqliteTx::flush_stats`]; a job's history entries go into its row with
//! its next save). The caller owns the
//! transaction: the store's writer thread runs a group of commands in one
//! batch transaction and calls [`SqliteTx::flush`] before committing;
//! tests use [`crate::testing::in_tx`].

use std::collections::{HashMap as StdHashMap, HashSet as StdHashSet};
use std::sync::OnceLock;

use clew_core::batch::{BatchOutcome, BatchRecord};
use clew_core::cron::{CronSpec, Missed};
use clew_core::throttle::ThrottleRate;
use clew_core::tx::{Counter, LocCounts, StatKind, TimeRange, TimingStat};
use clew_core::{Error, Failure, HistoryEntry, JobRecord, JobState, Loc, RecurRecord, Result};
use clew_core::{Timestamp, Tx};
use rusqlite::types::Type;
use rusqlite::{params, Connection, OptionalExtension, Row};
use serde_json::{Map, Value};

/// Most config keys remembered by a [`TxCache`] before it starts over
/// (callers may ask for arbitrary keys).
const CONFIG_CACHE_MAX: usize = 256;

/// Most per-job history counts remembered by a [`TxCache`] before it
/// starts over (a small map stays in the CPU's caches; a count forgotten
/// is read again from the history text, usually known with the row).
const HISTORY_COUNTS_MAX: usize = 16_384;

/// Most job rows and placements remembered by a [`TxCache`] (counted
/// together) before it starts over.
const JOB_ROWS_MAX: usize = 16_384;

/// Rows per multi-row `INSERT` of buffered events and history entries (a
/// remainder goes in statements of [`ROWS_SMALL`] rows, then one by one).
const ROWS_LARGE: usize = 32;

/// The middle size of a multi-row `INSERT`.
const ROWS_SMALL: usize = 8;

/// The [`TxCache`]'s maps: keyed by jids, queue names and config keys,
/// hashed for every job a command touches, with foldhash (seeded per map,
/// much cheaper than the standard SipHash on short strings).
type HashMap<K, V> = StdHashMap<K, V, foldhash::fast::RandomState>;

/// The [`TxCache`]'s sets (see [`HashMap`]).
type HashSet<T> = StdHashSet<T, foldhash::fast::RandomState>;

/// A job's history entries not yet written into its row.
#[derive(Debug, Default)]
struct PendingHistory {
    /// The entries in the row are to go (the history was deleted or
    /// trimmed): the row's history becomes `entries` alone.
    reset: bool,
    /// Entries to append, oldest first.
    entries: Vec<HistoryEntry>,
}

impl PendingHistory {
    /// How a save writes it into a row whose `history` is `old` (`None`:
    /// not known): the `UPDATE`'s bit and the text bound for it, the whole
    /// array ([`HISTORY_SET`]) or the entries to append without brackets
    /// ([`HISTORY_APPEND`], only when `old` is not known).
    fn write(&self, old: Option<&str>) -> Result<(u32, String)> {
        let old = if self.reset { Some("[]") } else { old };
        let mut text = String::with_capacity(old.map_or(0, str::len) + 64 * self.entries.len());
        if let Some(old) = old {
            // The old array without its closing bracket.
            text.push_str(&old[..old.len() - 1]);
        }
        for entry in &self.entries {
            if !matches!(text.as_bytes().last(), None | Some(b'[')) {
                text.push(',');
            }
            push_history_entry(&mut text, entry)?;
        }
        Ok(match old {
            Some(_) => {
                text.push(']');
                (HISTORY_SET, text)
            }
            None => (HISTORY_APPEND, text),
        })
    }
}

/// Appends `entry` as stored in a `history` array: `[at,"what",{extra}]`.
fn push_history_entry(out: &mut String, entry: &HistoryEntry) -> Result<()> {
    use std::fmt::Write as _;
    let _ = write!(out, "[{},", entry.when.0);
    let what = entry.what.as_str();
    if what
        .bytes()
        .all(|b| b >= 0x20 && b != b'"' && b != b'\\' && b < 0x7f)
    {
        // The usual (`put`, `popped`, `done`): no escaping needed.
        out.push('"');
        out.push_str(what);
        out.push('"');
    } else {
        out.push_str(&to_json_text(what)?);
    }
    out.push(',');
    if entry.extra.is_empty() {
        out.push_str("{}");
    } else {
        out.push_str(&to_json_text(&entry.extra)?);
    }
    out.push(']');
    Ok(())
}

/// A `history` column's entries (see migration 0011: `[at, what, extra]`
/// arrays, oldest first).
fn history_from_text(text: &str) -> Result<Vec<HistoryEntry>> {
    if text == "[]" {
        return Ok(Vec::new());
    }
    let entries: Vec<(i64, String, Map<String, Value>)> = serde_json::from_str(text)
        .map_err(|e| Error::store(format!("sqlite: a job's history is not valid: {e}")))?;
    Ok(entries
        .into_iter()
        .map(|(at, what, extra)| HistoryEntry {
            when: Timestamp(at),
            what,
            extra,
        })
        .collect())
}

/// The number of entries in a `history` column, without building them.
fn history_len(text: &str) -> Result<i64> {
    if text == "[]" {
        return Ok(0);
    }
    let entries: Vec<serde::de::IgnoredAny> = serde_json::from_str(text)
        .map_err(|e| Error::store(format!("sqlite: a job's history is not valid: {e}")))?;
    Ok(entries.len() as i64)
}

/// Turns a SQLite error into clew's store error.
pub(crate) fn sql_err(e: rusqlite::Error) -> Error {
    Error::store(format!("sqlite: {e}"))
}

/// `.sql()`: [`sql_err`] as a method on rusqlite results.
pub(crate) trait SqlResult<T> {
    /// Maps the error to a store error.
    fn sql(self) -> Result<T>;
}

impl<T> SqlResult<T> for rusqlite::Result<T> {
    fn sql(self) -> Result<T> {
        self.map_err(sql_err)
    }
}

/// A conversion failure for a column holding something this crate did not
/// write (a corrupt or foreign row).
fn corrupt(col: usize, what: String) -> rusqlite::Error {
    rusqlite::Error::FromSqlConversionFailure(col, Type::Text, what.into())
}

/// Parses a JSON column.
fn json_col<T: serde::de::DeserializeOwned>(row: &Row<'_>, col: usize) -> rusqlite::Result<T> {
    // Borrowed from the row: no String allocated for the text.
    let text: &str = row.get_ref(col)?.as_str()?;
    serde_json::from_str(text)
        .map_err(|e| rusqlite::Error::FromSqlConversionFailure(col, Type::Text, Box::new(e)))
}

/// Parses a JSON array-of-strings column (`tags`, `throttles`), most often
/// `[]`, which needs no parser.
fn json_strings_col(row: &Row<'_>, col: usize) -> rusqlite::Result<Vec<String>> {
    match row.get_ref(col)?.as_str()? {
        "[]" => Ok(Vec::new()),
        _ => json_col(row, col),
    }
}

/// Parses a JSON object column (`metadata`, a history entry's `extra`),
/// most often `{}`, which needs no parser.
fn json_map_col(row: &Row<'_>, col: usize) -> rusqlite::Result<Map<String, Value>> {
    match row.get_ref(col)?.as_str()? {
        "{}" => Ok(Map::new()),
        _ => json_col(row, col),
    }
}

/// Serializes a value for a JSON column.
fn to_json_text<T: serde::Serialize + ?Sized>(value: &T) -> Result<String> {
    serde_json::to_string(value).map_err(|e| Error::store(format!("encoding JSON column: {e}")))
}

/// [`to_json_text`] of an array of strings (`[]` when empty, the usual).
fn strings_json(value: &[String]) -> Result<String> {
    if value.is_empty() {
        return Ok("[]".to_owned());
    }
    to_json_text(value)
}

/// [`to_json_text`] of an object (`{}` when empty, the usual).
fn map_json(value: &Map<String, Value>) -> Result<String> {
    if value.is_empty() {
        return Ok("{}".to_owned());
    }
    to_json_text(value)
}

/// The bounds of a [`TimeRange`] as inclusive microseconds.
fn bounds(range: TimeRange) -> (i64, i64) {
    (
        range.min.map_or(i64::MIN, |t| t.0),
        range.max.map_or(i64::MAX, |t| t.0),
    )
}

/// A `LIMIT` that means "at most `limit`" (SQLite reads a negative limit as
/// "no limit"; here it means none).
fn limit(limit: i64) -> i64 {
    limit.max(0)
}

/// An `OFFSET` (negative offsets skip nothing).
fn offset(offset: i64) -> i64 {
    offset.max(0)
}

/// What a [`SqliteTx`] remembers between transactions of one connection.
///
/// * the placement sequence (`seq_next`), loaded from the `meta` table once
///   and written back by [`SqliteTx::flush`];
/// * config values read or written;
/// * statistics, the complete counter, lookups (tracked, dependencies,
///   queues, placements), per-job history counts and the oldest completed
///   time (see the fields);
/// * the job rows read in the current group, so that a save writes only
///   the columns that differ from them;
/// * events (numbered here) and history entries not yet written.
///
/// The owner must call [`TxCache::clear`] when the file may have been changed
/// behind its back (another connection committed, or its own commit failed)
/// and [`TxCache::rolled_back`] after rolling back a savepoint.
#[derive(Debug, Default)]
pub struct TxCache {
    /// The last sequence value handed out, once loaded.
    seq: Option<i64>,
    /// Whether `seq` is ahead of the `meta` row.
    seq_dirty: bool,
    /// Config values by key (`None`: known to be unset).
    config: HashMap<String, Option<String>>,
    /// `Some(true)` when the tracked set is known to be empty (the common
    /// case: then no job's tracking needs a query).
    tracked_empty: Option<bool>,
    /// `Some(true)` when no job has a dependency (the common case: then
    /// no job's dependencies need a query).
    deps_empty: Option<bool>,
    /// Timing statistics read or written lately, each with whether it is
    /// ahead of its row (written back by [`SqliteTx::flush`] and before any
    /// savepoint).
    timing: HashMap<(String, i64, StatKind), (TimingStat, bool)>,
    /// Histogram increments not yet written.
    hist: HashMap<(String, i64, StatKind, String), i64>,
    /// Each job's placement (`loc` code, `None`: no such job) as last read
    /// or written, so a save knows whether the job leaves or enters the
    /// complete set without reading its row again (kept as `rows` is).
    locs: HashMap<String, Option<i64>>,
    /// Job rows as read (by `job_get` and `job_list_records`) or saved,
    /// so that `job_get` needs no query for them (a complete finds the row
    /// its pop saved) and `job_save` can write only the columns that
    /// differ: fewer values bound, and the indexes over unchanged columns
    /// left alone. Kept from group to group (the writer is the only one
    /// writing, and [`TxCache::clear`] runs when it is not); dropped on
    /// the job's delete, by any other write to `jobs`, and with `locs` past
    /// [`JOB_ROWS_MAX`].
    rows: HashMap<String, JobRecord>,
    /// The text of the `UPDATE` setting each set of columns (a bit per
    /// [`JOB_COLS`] entry) written so far.
    update_sql: HashMap<u32, String>,
    /// The change to the `complete` counter not yet written back.
    complete_delta: i64,
    /// The `complete` counter's row, once read (kept up to date by the
    /// write-backs).
    complete_base: Option<i64>,
    /// Queues known to be registered (`known = 1`).
    known_queues: HashSet<String>,
    /// The last event sequence number handed out (written or pending),
    /// once loaded: the single writer numbers events itself.
    event_seq: Option<i64>,
    /// Events appended but not yet written: `(seq, at, channel, message)`.
    events: Vec<(i64, i64, String, String)>,
    /// History entries appended (or a reset) not yet written into their
    /// jobs' rows: the job's next save writes them with the rest of its
    /// row, [`SqliteTx::flush_stats`] whatever is left.
    history: HashMap<String, PendingHistory>,
    /// The `history` column of job rows as read (with the row by `job_get`
    /// and `job_list_records`, or alone to list or count it) and kept up to
    /// date by their saves, so that a pop's reply lists its jobs' histories
    /// without another query. Kept and dropped as `rows` is.
    history_texts: HashMap<String, String>,
    /// Each job's number of history entries (written and pending), as
    /// last counted or kept up to date since; forgotten when the map is
    /// large and nothing is pending.
    history_counts: HashMap<String, i64>,
    /// No job with `queue = ''` and `loc = 5` (the complete set) has a
    /// `sort_time` below this, once known (a lower bound: lowered when a
    /// job enters the set, never raised by one leaving it), so expiring
    /// completed jobs older than a cutoff below it needs no query.
    complete_floor: Option<i64>,
    /// Batch items run without savepoints (the writer's optimistic pass,
    /// which is rolled back and run again if anything is refused).
    optimistic: bool,
    /// In the optimistic pass, a batch item was refused: the writer must
    /// roll back and run the group again with savepoints.
    item_refused: bool,
}

impl TxCache {
    /// An empty cache: everything is read from the database on first use.
    pub fn new() -> TxCache {
        TxCache::default()
    }

    /// Forgets everything, so the next transaction reads the database again.
    pub fn clear(&mut self) {
        *self = TxCache::default();
    }

    /// Forgets what a rolled-back savepoint may have changed (config
    /// values). The sequence is kept: values handed out inside the savepoint
    /// are simply skipped.
    pub fn rolled_back(&mut self) {
        self.config.clear();
        self.tracked_empty = None;
        self.deps_empty = None;
        self.known_queues.clear();
        // Statistics and the counter were written back before the
        // savepoint: whatever is pending now was done inside it.
        self.timing.clear();
        self.hist.clear();
        self.locs.clear();
        self.rows.clear();
        self.complete_delta = 0;
        // Buffered rows were written before the savepoint too: what is
        // pending now belongs to it.
        self.event_seq = None;
        self.events.clear();
        self.history.clear();
        self.history_texts.clear();
        self.history_counts.clear();
        self.complete_floor = None;
    }

    /// Starts (or ends) the optimistic pass: batch items then take no
    /// savepoints, and a refused one is noted (see
    /// [`TxCache::take_item_refused`]) instead of rolled back.
    pub fn set_optimistic(&mut self, optimistic: bool) {
        self.optimistic = optimistic;
        self.item_refused = false;
    }

    /// Whether a batch item was refused in the optimistic pass (and resets
    /// the note).
    pub fn take_item_refused(&mut self) -> bool {
        std::mem::take(&mut self.item_refused)
    }

    /// Whether sequence values were handed out, or statistics changed, that
    /// [`SqliteTx::flush`] has not yet written back.
    pub fn is_dirty(&self) -> bool {
        self.seq_dirty
            || !self.events.is_empty()
            || !self.history.is_empty()
            || self.complete_delta != 0
            || !self.hist.is_empty()
            || self.timing.values().any(|(_, dirty)| *dirty)
    }
}

/// The [`Tx`] primitives over one SQLite connection, inside a transaction the
/// caller has begun.
///
/// Call [`SqliteTx::flush`] before committing: it writes the cached
/// placement sequence back to the database.
#[derive(Debug)]
pub struct SqliteTx<'a> {
    conn: &'a Connection,
    cache: &'a mut TxCache,
}

impl<'a> SqliteTx<'a> {
    /// Primitives on `conn`, remembering values in `cache`.
    pub fn new(conn: &'a Connection, cache: &'a mut TxCache) -> SqliteTx<'a> {
        SqliteTx { conn, cache }
    }

    /// The connection.
    pub fn connection(&self) -> &Connection {
        self.conn
    }

    /// Writes cached state (the placement sequence) back to the database.
    /// Must run inside the transaction, before it commits.
    pub fn flush(&mut self) -> Result<()> {
        self.flush_stats()?;
        if let (true, Some(seq)) = (self.cache.seq_dirty, self.cache.seq) {
            self.conn
                .prepare_cached(
                    "INSERT INTO meta (key, value) VALUES ('seq', ?1)
                     ON CONFLICT (key) DO UPDATE SET value = max(value, excluded.value)",
                )
                .and_then(|mut s| s.execute(params![seq]))
                .sql()?;
        }
        self.cache.seq_dirty = false;
        Ok(())
    }

    /// Writes back the statistics kept in the cache. Called by
    /// [`SqliteTx::flush`] and before every savepoint, so that rolling a
    /// savepoint back only ever discards what was done inside it.
    pub fn flush_stats(&mut self) -> Result<()> {
        self.write_rows()?;
        for ((queue, day, kind), (stat, dirty)) in self.cache.timing.iter_mut() {
            if !*dirty {
                continue;
            }
            self.conn
                .prepare_cached(
                    "INSERT OR REPLACE INTO stats_timing (queue, day, kind, count, mean, vk)
                     VALUES (?1, ?2, ?3, ?4, ?5, ?6)",
                )
                .and_then(|mut st| {
                    st.execute(params![
                        queue,
                        day,
                        kind.as_str(),
                        stat.count,
                        stat.mean,
                        stat.vk
                    ])
                })
                .sql()?;
            *dirty = false;
        }
        if self.cache.complete_delta != 0 {
            self.conn
                .prepare_cached(
                    "INSERT INTO counters (name, n) VALUES ('complete', ?1)
                     ON CONFLICT (name) DO UPDATE SET n = n + excluded.n",
                )
                .and_then(|mut st| st.execute(params![self.cache.complete_delta]))
                .sql()?;
            if let Some(base) = &mut self.cache.complete_base {
                *base += self.cache.complete_delta;
            }
            self.cache.complete_delta = 0;
        }
        if self.cache.rows.len() + self.cache.locs.len() > JOB_ROWS_MAX {
            self.cache.locs.clear();
            self.cache.rows.clear();
            self.cache.history_texts.clear();
        }
        for ((queue, day, kind, bucket), n) in self.cache.hist.drain() {
            self.conn
                .prepare_cached(
                    "INSERT INTO stats_hist (queue, day, kind, bucket, count)
                     VALUES (?1, ?2, ?3, ?4, ?5)
                     ON CONFLICT (queue, day, kind, bucket) DO UPDATE SET count = count + ?5",
                )
                .and_then(|mut st| st.execute(params![queue, day, kind.as_str(), bucket, n]))
                .sql()?;
        }
        Ok(())
    }

    /// Writes the buffered events and history entries, many rows per
    /// statement (the rows are the same as one `INSERT` each would write:
    /// events with the numbers handed out, history in append order).
    fn write_rows(&mut self) -> Result<()> {
        let events = std::mem::take(&mut self.cache.events);
        let mut rest = &events[..];
        while !rest.is_empty() {
            let n = chunk(rest.len());
            let sql = rows_sql(
                &EVENT_ROWS,
                "INSERT INTO events (seq, at, channel, message) VALUES ",
                n,
            );
            let mut stmt = self.conn.prepare_cached(sql).sql()?;
            for (i, (seq, at, channel, message)) in rest[..n].iter().enumerate() {
                let p = i * 4;
                stmt.raw_bind_parameter(p + 1, seq).sql()?;
                stmt.raw_bind_parameter(p + 2, at).sql()?;
                stmt.raw_bind_parameter(p + 3, channel.as_str()).sql()?;
                stmt.raw_bind_parameter(p + 4, message.as_str()).sql()?;
            }
            stmt.raw_execute().sql()?;
            rest = &rest[n..];
        }
        // History entries whose jobs were not saved after them (a save
        // writes them with its row).
        let history = std::mem::take(&mut self.cache.history);
        for (jid, pending) in history {
            let (bit, text) = pending.write(None)?;
            let sql = self
                .cache
                .update_sql
                .entry(bit)
                .or_insert_with(|| update_sql(bit));
            self.conn
                .prepare_cached(sql)
                .and_then(|mut s| s.execute(params![jid, text]))
                .sql()?;
            self.cache.history_texts.remove(&jid);
        }
        if self.cache.history_counts.len() >= HISTORY_COUNTS_MAX {
            // Nothing is pending from here on: any count may go.
            self.cache.history_counts.clear();
        }
        Ok(())
    }

    /// Runs a statement returning nothing; returns the number of changed rows.
    fn exec(&self, sql: &str, params: impl rusqlite::Params) -> Result<usize> {
        self.conn
            .prepare_cached(sql)
            .and_then(|mut s| s.execute(params))
            .sql()
    }

    /// Runs a query returning one column of strings.
    fn strings(&self, sql: &str, params: impl rusqlite::Params) -> Result<Vec<String>> {
        let mut stmt = self.conn.prepare_cached(sql).sql()?;
        let rows = stmt.query_map(params, |r| r.get::<_, String>(0)).sql()?;
        rows.collect::<rusqlite::Result<Vec<_>>>().sql()
    }

    /// A job's placement code before this write (`None`: no such job),
    /// from the cache or else its row.
    fn loc_of(&mut self, jid: &str) -> Result<Option<i64>> {
        if let Some(loc) = self.cache.locs.get(jid) {
            return Ok(*loc);
        }
        self.conn
            .prepare_cached("SELECT loc FROM jobs WHERE jid = ?1")
            .and_then(|mut s| s.query_row(params![jid], |r| r.get(0)).optional())
            .sql()
    }

    /// Notes a job's new placement and counts it into or out of the
    /// complete set.
    fn placed(&mut self, jid: &str, old: Option<i64>, new: Option<i64>) {
        let complete = Some(Loc::Complete.code());
        self.cache.complete_delta += i64::from(new == complete) - i64::from(old == complete);
        self.cache.locs.insert(jid.to_owned(), new);
    }

    /// No completed job (`queue = ''`, `loc = 5`) has a `sort_time` below
    /// this (read once, then kept: see `TxCache::complete_floor`).
    fn complete_floor(&mut self) -> Result<i64> {
        if let Some(floor) = self.cache.complete_floor {
            return Ok(floor);
        }
        // `loc <> 1` literally: a seek in the `jobs_time` index.
        let oldest: Option<i64> = self
            .conn
            .prepare_cached(
                "SELECT min(sort_time) FROM jobs WHERE queue = '' AND loc = 5 AND loc <> 1",
            )
            .and_then(|mut s| s.query_row([], |r| r.get(0)))
            .sql()?;
        let floor = oldest.unwrap_or(i64::MAX);
        self.cache.complete_floor = Some(floor);
        Ok(floor)
    }

    /// Whether no job has a dependency (remembered until one is added or
    /// removed).
    fn no_deps(&mut self) -> Result<bool> {
        if let Some(empty) = self.cache.deps_empty {
            return Ok(empty);
        }
        let empty = !self.exists("SELECT 1 FROM deps LIMIT 1", [])?;
        self.cache.deps_empty = Some(empty);
        Ok(empty)
    }

    /// Runs a query returning one integer (`COUNT(*)` and the like).
    fn int(&self, sql: &str, params: impl rusqlite::Params) -> Result<i64> {
        self.conn
            .prepare_cached(sql)
            .and_then(|mut s| s.query_row(params, |r| r.get::<_, i64>(0)))
            .sql()
    }

    /// Whether a query returns a row.
    fn exists(&self, sql: &str, params: impl rusqlite::Params) -> Result<bool> {
        self.conn
            .prepare_cached(sql)
            .and_then(|mut s| s.exists(params))
            .sql()
    }
}

impl SqliteTx<'_> {
    /// After a save: notes the job's placement (`old`: before it) and, for
    /// a running job (whose next command reads it: a complete, a failure,
    /// a heartbeat), its row as saved.
    fn saved(&mut self, job: &JobRecord, old: Option<i64>) {
        self.placed(&job.jid, old, Some(job.loc.code()));
        if job.state == JobState::Running {
            self.cache.rows.insert(job.jid.clone(), job.clone());
        }
        if job.loc == Loc::Complete && job.queue.is_empty() {
            if let Some(floor) = &mut self.cache.complete_floor {
                *floor = (*floor).min(job.sort_time.0);
            }
        }
    }

    /// Updates the row of `job`, setting the [`JOB_COLS`] in `mask` and
    /// writing `history` (a [`PendingHistory::write`]) into it; nothing to
    /// set: no statement. False if there was no such row after all (then
    /// nothing was written).
    fn job_update(
        &mut self,
        mask: u32,
        job: &JobRecord,
        history: Option<&(u32, String)>,
    ) -> Result<bool> {
        let mask = mask | history.map_or(0, |(bit, _)| *bit);
        if mask == 0 {
            return Ok(true);
        }
        let sql = self
            .cache
            .update_sql
            .entry(mask)
            .or_insert_with(|| update_sql(mask));
        let mut stmt = self.conn.prepare_cached(sql).sql()?;
        stmt.raw_bind_parameter(1, job.jid.as_str()).sql()?;
        let mut param = 2;
        for col in 0..JOB_COLS.len() {
            if mask & (1 << col) != 0 {
                bind_job_col(&mut stmt, param, col, job)?;
                param += 1;
            }
        }
        if let Some((_, text)) = history {
            stmt.raw_bind_parameter(param, text.as_str()).sql()?;
        }
        Ok(stmt.raw_execute().sql()? == 1)
    }

    /// After a save that wrote `history` (see [`SqliteTx::job_update`])
    /// into the row of `jid`, which held `old` (`None`: not known).
    fn history_saved(&mut self, jid: &str, old: Option<String>, history: Option<(u32, String)>) {
        let text = match history {
            Some((HISTORY_SET, text)) => text,
            Some(_) => return,
            None => match old {
                Some(old) => old,
                None => return,
            },
        };
        self.cache.history_texts.insert(jid.to_owned(), text);
    }

    /// The `history` column of `jid`'s row (`[]` without a row), from the
    /// cache or else the row.
    fn history_text(&mut self, jid: &str) -> Result<&str> {
        if !self.cache.history_texts.contains_key(jid) {
            let text: Option<String> = self
                .conn
                .prepare_cached("SELECT history FROM jobs WHERE jid = ?1")
                .and_then(|mut s| s.query_row(params![jid], |r| r.get(0)).optional())
                .sql()?;
            self.cache
                .history_texts
                .insert(jid.to_owned(), text.unwrap_or_else(|| "[]".to_owned()));
        }
        Ok(&self.cache.history_texts[jid])
    }
}

/// [`update_sql`]'s bit for `history` set to a bound JSON array.
const HISTORY_SET: u32 = 1 << JOB_COLS.len();

/// [`update_sql`]'s bit for bound entries (JSON texts separated by commas)
/// appended to `history`, without reading it into the client.
const HISTORY_APPEND: u32 = 1 << (JOB_COLS.len() + 1);

/// Every [`JOB_COLS`] bit.
const ALL_COLS: u32 = (1 << JOB_COLS.len()) - 1;

/// The `jobs` columns but `jid`, in [`job_cols_but_jid!`] order.
const JOB_COLS: [&str; 27] = [
    "klass",
    "queue",
    "state",
    "data",
    "priority",
    "tags",
    "worker",
    "expires",
    "retries",
    "remaining",
    "time",
    "grace",
    "scheduled",
    "failure",
    "spawned_from",
    "worker_listed",
    "fail_group",
    "fail_seq",
    "loc",
    "sort_prio",
    "sort_time",
    "seq",
    "metadata",
    "unique_key",
    "batch",
    "batch_outcome",
    "throttles",
];

/// The [`JOB_COLS`] whose stored values differ between `old` and `new`,
/// a bit each. JSON columns compare as the text they are stored as (an
/// object's key order counts).
fn changed_cols(old: &JobRecord, new: &JobRecord) -> Result<u32> {
    let map_differs = |a: &Map<String, Value>, b: &Map<String, Value>| -> Result<bool> {
        Ok(match (a.is_empty(), b.is_empty()) {
            (true, true) => false,
            (false, false) => map_json(a)? != map_json(b)?,
            _ => true,
        })
    };
    let failure_differs = match (&old.failure, &new.failure) {
        (None, None) => false,
        (Some(a), Some(b)) => to_json_text(a)? != to_json_text(b)?,
        _ => true,
    };
    let differs = [
        old.klass != new.klass,
        old.queue != new.queue,
        old.state != new.state,
        old.data != new.data,
        old.priority != new.priority,
        old.tags != new.tags,
        old.worker != new.worker,
        old.expires != new.expires,
        old.retries != new.retries,
        old.remaining != new.remaining,
        old.time != new.time,
        old.grace != new.grace,
        old.scheduled != new.scheduled,
        failure_differs,
        old.spawned_from != new.spawned_from,
        old.worker_listed != new.worker_listed,
        old.fail_group != new.fail_group,
        old.fail_seq != new.fail_seq,
        old.loc != new.loc,
        old.sort_prio != new.sort_prio,
        old.sort_time != new.sort_time,
        old.seq != new.seq,
        map_differs(&old.metadata, &new.metadata)?,
        old.unique_key != new.unique_key,
        old.batch != new.batch,
        old.batch_outcome != new.batch_outcome,
        old.throttles != new.throttles,
    ];
    Ok(differs
        .iter()
        .enumerate()
        .filter(|(_, d)| **d)
        .fold(0, |mask, (col, _)| mask | (1 << col)))
}

/// `UPDATE jobs` setting the [`JOB_COLS`] in `mask` to `?2`, `?3`... in
/// column order, then `history` ([`HISTORY_SET`] or [`HISTORY_APPEND`])
/// from the next parameter, `WHERE jid = ?1`.
fn update_sql(mask: u32) -> String {
    let mut sql = String::from("UPDATE jobs SET ");
    let mut param = 2;
    for (col, name) in JOB_COLS.iter().enumerate() {
        if mask & (1 << col) != 0 {
            if param > 2 {
                sql.push_str(", ");
            }
            sql.push_str(name);
            sql.push_str(" = ?");
            sql.push_str(&param.to_string());
            param += 1;
        }
    }
    if mask & (HISTORY_SET | HISTORY_APPEND) != 0 {
        if param > 2 {
            sql.push_str(", ");
        }
        let p = format!("?{param}");
        if mask & HISTORY_SET != 0 {
            sql.push_str(&format!("history = {p}"));
        } else {
            // The array's closing bracket replaced by the entries and one
            // of its own.
            sql.push_str(&format!(
                "history = CASE history WHEN '[]' THEN '[' || {p} || ']' \
                 ELSE substr(history, 1, length(history) - 1) || ',' || {p} || ']' END"
            ));
        }
    }
    sql.push_str(" WHERE jid = ?1");
    sql
}

/// Binds `job`'s value of [`JOB_COLS`] entry `col` as parameter `param`.
fn bind_job_col(
    stmt: &mut rusqlite::Statement<'_>,
    param: usize,
    col: usize,
    job: &JobRecord,
) -> Result<()> {
    match col {
        0 => stmt.raw_bind_parameter(param, job.klass.as_str()),
        1 => stmt.raw_bind_parameter(param, job.queue.as_str()),
        2 => stmt.raw_bind_parameter(param, job.state.as_str()),
        3 => stmt.raw_bind_parameter(param, job.data.as_str()),
        4 => stmt.raw_bind_parameter(param, job.priority),
        5 => stmt.raw_bind_parameter(param, strings_json(&job.tags)?),
        6 => stmt.raw_bind_parameter(param, job.worker.as_str()),
        7 => stmt.raw_bind_parameter(param, job.expires.0),
        8 => stmt.raw_bind_parameter(param, job.retries),
        9 => stmt.raw_bind_parameter(param, job.remaining),
        10 => stmt.raw_bind_parameter(param, job.time.0),
        11 => stmt.raw_bind_parameter(param, job.grace),
        12 => stmt.raw_bind_parameter(param, job.scheduled.map(|t| t.0)),
        13 => stmt.raw_bind_parameter(param, job.failure.as_ref().map(to_json_text).transpose()?),
        14 => stmt.raw_bind_parameter(param, job.spawned_from.as_deref()),
        15 => stmt.raw_bind_parameter(param, job.worker_listed),
        16 => stmt.raw_bind_parameter(param, job.fail_group.as_deref()),
        17 => stmt.raw_bind_parameter(param, job.fail_seq),
        18 => stmt.raw_bind_parameter(param, job.loc.code()),
        19 => stmt.raw_bind_parameter(param, job.sort_prio),
        20 => stmt.raw_bind_parameter(param, job.sort_time.0),
        21 => stmt.raw_bind_parameter(param, job.seq),
        22 => stmt.raw_bind_parameter(param, map_json(&job.metadata)?),
        23 => stmt.raw_bind_parameter(param, job.unique_key.as_deref()),
        24 => stmt.raw_bind_parameter(param, job.batch.as_deref()),
        25 => stmt.raw_bind_parameter(param, job.batch_outcome.code()),
        _ => stmt.raw_bind_parameter(param, strings_json(&job.throttles)?),
    }
    .sql()
}

/// How many buffered rows the next multi-row `INSERT` takes out of `left`.
fn chunk(left: usize) -> usize {
    if left >= ROWS_LARGE {
        ROWS_LARGE
    } else if left >= ROWS_SMALL {
        ROWS_SMALL
    } else {
        1
    }
}

/// The texts of one table's multi-row `INSERT`s, one per [`chunk`] size
/// (1, [`ROWS_SMALL`], [`ROWS_LARGE`]), built on first use.
type RowsSql = OnceLock<[String; 3]>;

/// [`RowsSql`] of the events.
static EVENT_ROWS: RowsSql = OnceLock::new();

/// `head` followed by `rows` (a [`chunk`] size) groups of four numbered
/// parameters, from `texts` (built once, not at every write).
fn rows_sql(texts: &'static RowsSql, head: &str, rows: usize) -> &'static str {
    let texts = texts.get_or_init(|| {
        [
            rows_text(head, 4, 1),
            rows_text(head, 4, ROWS_SMALL),
            rows_text(head, 4, ROWS_LARGE),
        ]
    });
    debug_assert!([1, ROWS_SMALL, ROWS_LARGE].contains(&rows));
    match rows {
        ROWS_LARGE => &texts[2],
        ROWS_SMALL => &texts[1],
        _ => &texts[0],
    }
}

/// `head` followed by `rows` groups of `cols` numbered parameters.
fn rows_text(head: &str, cols: usize, rows: usize) -> String {
    let mut sql = String::with_capacity(head.len() + rows * cols * 5);
    sql.push_str(head);
    for r in 0..rows {
        if r > 0 {
            sql.push(',');
        }
        sql.push('(');
        for c in 0..cols {
            if c > 0 {
                sql.push(',');
            }
            sql.push('?');
            sql.push_str(&(r * cols + c + 1).to_string());
        }
        sql.push(')');
    }
    sql
}

/// The `jobs` columns in [`job_from_row`]'s order.
/// `job_list`'s conditions and order for waiting jobs (`?2` is 1), with
/// `loc = 1` literally: the partial index `jobs_work`'s condition.
macro_rules! list_work {
    () => {
        " WHERE queue = ?1 AND loc = 1 AND ?2 = 1 AND sort_time BETWEEN ?3 AND ?4 \
         ORDER BY sort_prio DESC, sort_time, seq LIMIT ?6 OFFSET ?5"
    };
}

/// `job_list`'s conditions and order for every other placement, with
/// `loc <> 1` literally: the partial index `jobs_time`'s condition.
macro_rules! list_other {
    () => {
        " WHERE queue = ?1 AND loc = ?2 AND loc <> 1 AND sort_time BETWEEN ?3 AND ?4 \
         ORDER BY sort_time, jid LIMIT ?6 OFFSET ?5"
    };
}

macro_rules! job_cols {
    () => {
        concat!("jid, ", job_cols_but_jid!())
    };
}

/// [`job_cols!`] without the first, `jid`.
macro_rules! job_cols_but_jid {
    () => {
        "klass, queue, state, data, priority, tags, worker, expires, retries, \
         remaining, time, grace, scheduled, failure, spawned_from, worker_listed, \
         fail_group, fail_seq, loc, sort_prio, sort_time, seq, metadata, unique_key, batch, batch_outcome,
         throttles"
    };
}

/// Reads a job row selected with [`job_cols!`] then `history`.
fn job_and_history(row: &Row<'_>) -> rusqlite::Result<(JobRecord, String)> {
    Ok((job_from_row(row)?, row.get(28)?))
}

/// Reads a job row selected with [`job_cols!`].
fn job_from_row(row: &Row<'_>) -> rusqlite::Result<JobRecord> {
    let state: String = row.get(3)?;
    let state =
        JobState::parse(&state).ok_or_else(|| corrupt(3, format!("job state {state:?}")))?;
    let failure: Option<String> = row.get(14)?;
    let failure =
        match failure {
            None => None,
            Some(text) => Some(serde_json::from_str::<Failure>(&text).map_err(|e| {
                rusqlite::Error::FromSqlConversionFailure(14, Type::Text, Box::new(e))
            })?),
        };
    let loc: i64 = row.get(19)?;
    let loc = Loc::from_code(loc).ok_or_else(|| corrupt(19, format!("job loc {loc}")))?;
    Ok(JobRecord {
        jid: row.get(0)?,
        klass: row.get(1)?,
        queue: row.get(2)?,
        state,
        data: row.get(4)?,
        priority: row.get(5)?,
        tags: json_strings_col(row, 6)?,
        worker: row.get(7)?,
        expires: Timestamp(row.get(8)?),
        retries: row.get(9)?,
        remaining: row.get(10)?,
        time: Timestamp(row.get(11)?),
        grace: row.get(12)?,
        scheduled: row.get::<_, Option<i64>>(13)?.map(Timestamp),
        failure,
        spawned_from: row.get(15)?,
        worker_listed: row.get(16)?,
        fail_group: row.get(17)?,
        fail_seq: row.get(18)?,
        loc,
        sort_prio: row.get(20)?,
        sort_time: Timestamp(row.get(21)?),
        seq: row.get(22)?,
        metadata: json_map_col(row, 23)?,
        unique_key: row.get(24)?,
        batch: row.get(25)?,
        batch_outcome: {
            let code: i64 = row.get(26)?;
            BatchOutcome::from_code(code)
                .ok_or_else(|| corrupt(26, format!("job batch outcome {code}")))?
        },
        throttles: json_strings_col(row, 27)?,
    })
}

/// Reads a batch row (columns in table order).
fn batch_from_row(row: &Row<'_>) -> rusqlite::Result<BatchRecord> {
    Ok(BatchRecord {
        id: row.get(0)?,
        created: Timestamp(row.get(1)?),
        spec: json_col(row, 2)?,
        total: row.get(3)?,
        pending: row.get(4)?,
        complete: row.get(5)?,
        failed: row.get(6)?,
        canceled: row.get(7)?,
        finished: row.get::<_, Option<i64>>(8)?.map(Timestamp),
        callback_jid: row.get(9)?,
    })
}

/// Reads a recurring template row (columns in table order).
fn recur_from_row(row: &Row<'_>) -> rusqlite::Result<RecurRecord> {
    Ok(RecurRecord {
        jid: row.get(0)?,
        klass: row.get(1)?,
        queue: row.get(2)?,
        data: row.get(3)?,
        priority: row.get(4)?,
        tags: json_col(row, 5)?,
        retries: row.get(6)?,
        interval: row.get(7)?,
        next_at: Timestamp(row.get(8)?),
        count: row.get(9)?,
        backlog: row.get(10)?,
        cron: match row.get::<_, Option<String>>(11)? {
            None => None,
            Some(expr) => Some(Box::new(CronSpec {
                expr,
                timezone: row.get(12)?,
                missed: Missed::parse("recurring", &row.get::<_, String>(13)?).unwrap_or_default(),
            })),
        },
    })
}

impl Tx for SqliteTx<'_> {
    // --- savepoints ------------------------------------------------------

    fn savepoint(&mut self) -> Result<()> {
        if self.cache.optimistic {
            return Ok(());
        }
        self.flush_stats()?;
        self.conn.execute_batch("SAVEPOINT batch_item").sql()
    }

    fn savepoint_release(&mut self) -> Result<()> {
        if self.cache.optimistic {
            return Ok(());
        }
        self.conn.execute_batch("RELEASE batch_item").sql()
    }

    fn savepoint_rollback(&mut self) -> Result<()> {
        if self.cache.optimistic {
            // Nothing to undo here: the writer rolls the whole group back
            // and runs it again with savepoints.
            self.cache.item_refused = true;
            return Ok(());
        }
        self.cache.rolled_back();
        self.conn
            .execute_batch("ROLLBACK TO batch_item; RELEASE batch_item")
            .sql()
    }

    // --- batches ---------------------------------------------------------

    fn batch_get(&mut self, id: &str) -> Result<Option<BatchRecord>> {
        self.conn
            .prepare_cached("SELECT * FROM batches WHERE id = ?1")
            .and_then(|mut s| s.query_row(params![id], batch_from_row).optional())
            .sql()
    }

    fn batch_save(&mut self, b: &BatchRecord) -> Result<()> {
        let spec = to_json_text(&b.spec)?;
        self.exec(
            "INSERT OR REPLACE INTO batches (id, created, spec, total, pending, complete, \
             failed, canceled, finished, callback_jid) VALUES (?1,?2,?3,?4,?5,?6,?7,?8,?9,?10)",
            params![
                b.id,
                b.created.0,
                spec,
                b.total,
                b.pending,
                b.complete,
                b.failed,
                b.canceled,
                b.finished.map(|t| t.0),
                b.callback_jid,
            ],
        )?;
        Ok(())
    }

    fn batch_list(&mut self, off: i64, lim: i64) -> Result<(i64, Vec<BatchRecord>)> {
        let total = self.int("SELECT COUNT(*) FROM batches", [])?;
        let list = self
            .conn
            .prepare_cached(
                "SELECT * FROM batches ORDER BY created DESC, id DESC LIMIT ?2 OFFSET ?1",
            )
            .and_then(|mut s| {
                s.query_map(params![offset(off), limit(lim)], batch_from_row)?
                    .collect::<rusqlite::Result<Vec<_>>>()
            })
            .sql()?;
        Ok((total, list))
    }

    fn batch_jobs(&mut self, id: &str, off: i64, lim: i64) -> Result<(i64, Vec<String>)> {
        let total = self.int(
            "SELECT COUNT(*) FROM jobs WHERE batch = ?1 AND batch IS NOT NULL",
            params![id],
        )?;
        let jids = self.strings(
            "SELECT jid FROM jobs WHERE batch = ?1 AND batch IS NOT NULL \
             ORDER BY jid LIMIT ?3 OFFSET ?2",
            params![id, offset(off), limit(lim)],
        )?;
        Ok((total, jids))
    }

    // --- configuration -------------------------------------------------

    fn config_all(&mut self) -> Result<Vec<(String, String)>> {
        let mut stmt = self
            .conn
            .prepare_cached("SELECT key, value FROM config ORDER BY key")
            .sql()?;
        let rows = stmt.query_map([], |r| Ok((r.get(0)?, r.get(1)?))).sql()?;
        rows.collect::<rusqlite::Result<Vec<_>>>().sql()
    }

    fn config_get(&mut self, key: &str) -> Result<Option<String>> {
        if let Some(v) = self.cache.config.get(key) {
            return Ok(v.clone());
        }
        let value: Option<String> = self
            .conn
            .prepare_cached("SELECT value FROM config WHERE key = ?1")
            .and_then(|mut s| s.query_row(params![key], |r| r.get(0)).optional())
            .sql()?;
        if self.cache.config.len() >= CONFIG_CACHE_MAX {
            self.cache.config.clear();
        }
        self.cache.config.insert(key.to_owned(), value.clone());
        Ok(value)
    }

    fn config_set(&mut self, key: &str, value: &str) -> Result<()> {
        // Forget first: if the write fails the cache must not claim it.
        self.cache.config.remove(key);
        self.exec(
            "INSERT INTO config (key, value) VALUES (?1, ?2)
             ON CONFLICT (key) DO UPDATE SET value = excluded.value",
            params![key, value],
        )?;
        self.cache
            .config
            .insert(key.to_owned(), Some(value.to_owned()));
        Ok(())
    }

    fn config_unset(&mut self, key: &str) -> Result<()> {
        self.cache.config.remove(key);
        self.exec("DELETE FROM config WHERE key = ?1", params![key])?;
        self.cache.config.insert(key.to_owned(), None);
        Ok(())
    }

    // --- dependencies --------------------------------------------------

    fn dep_add(&mut self, jid: &str, dep: &str) -> Result<()> {
        self.exec(
            "INSERT OR IGNORE INTO deps (jid, dep) VALUES (?1, ?2)",
            params![jid, dep],
        )?;
        self.cache.deps_empty = Some(false);
        Ok(())
    }

    fn dep_remove(&mut self, jid: &str, dep: &str) -> Result<()> {
        self.cache.deps_empty = None;
        self.exec(
            "DELETE FROM deps WHERE jid = ?1 AND dep = ?2",
            params![jid, dep],
        )?;
        Ok(())
    }

    fn deps_of(&mut self, jid: &str) -> Result<Vec<String>> {
        if self.no_deps()? {
            return Ok(Vec::new());
        }
        self.strings(
            "SELECT dep FROM deps WHERE jid = ?1 ORDER BY dep",
            params![jid],
        )
    }

    fn dependents_of(&mut self, dep: &str) -> Result<Vec<String>> {
        if self.no_deps()? {
            return Ok(Vec::new());
        }
        self.strings(
            "SELECT jid FROM deps WHERE dep = ?1 ORDER BY jid",
            params![dep],
        )
    }

    // --- events --------------------------------------------------------

    /// Numbers the event (the writer is the only one appending while it
    /// holds the write lock) and buffers it: the rows are written many per
    /// statement at commit, and before any savepoint or read of the log.
    fn event_append(&mut self, at: Timestamp, channel: &str, message: &str) -> Result<i64> {
        let last = match self.cache.event_seq {
            Some(last) => last,
            // AUTOINCREMENT: never below a number used before (the rows of
            // the highest numbers may have been pruned).
            None => self.int(
                "SELECT max(coalesce((SELECT max(seq) FROM events), 0),
                            coalesce((SELECT seq FROM sqlite_sequence WHERE name = 'events'), 0))",
                [],
            )?,
        };
        let seq = last
            .checked_add(1)
            .ok_or_else(|| Error::store("event sequence exhausted"))?;
        self.cache.event_seq = Some(seq);
        self.cache
            .events
            .push((seq, at.0, channel.to_owned(), message.to_owned()));
        Ok(seq)
    }

    // --- failure lists -------------------------------------------------

    fn failed_groups(&mut self) -> Result<Vec<(String, i64)>> {
        let mut stmt = self
            .conn
            .prepare_cached(
                "SELECT fail_group, COUNT(*) FROM jobs WHERE fail_group IS NOT NULL
                 GROUP BY fail_group ORDER BY fail_group",
            )
            .sql()?;
        let rows = stmt.query_map([], |r| Ok((r.get(0)?, r.get(1)?))).sql()?;
        rows.collect::<rusqlite::Result<Vec<_>>>().sql()
    }

    fn failed_list(&mut self, group: &str, off: i64, lim: i64) -> Result<Vec<String>> {
        self.strings(
            "SELECT jid FROM jobs WHERE fail_group = ?1
             ORDER BY fail_seq DESC, jid DESC LIMIT ?3 OFFSET ?2",
            params![group, offset(off), limit(lim)],
        )
    }

    fn failed_oldest(&mut self, group: &str, lim: i64) -> Result<Vec<String>> {
        self.strings(
            "SELECT jid FROM jobs WHERE fail_group = ?1
             ORDER BY fail_seq, jid LIMIT ?2",
            params![group, limit(lim)],
        )
    }

    fn failed_count(&mut self, group: &str) -> Result<i64> {
        self.int(
            "SELECT COUNT(*) FROM jobs WHERE fail_group = ?1",
            params![group],
        )
    }

    // --- history -------------------------------------------------------

    /// Buffered (written many per statement at commit, see
    /// [`SqliteTx::flush_stats`]). The job's count is kept: a job with
    /// buffered entries always has one (see `TxCache::history_counts`).
    fn history_append(&mut self, jid: &str, entry: &HistoryEntry) -> Result<()> {
        let count = self.history_count(jid)?;
        self.cache.history_counts.insert(jid.to_owned(), count + 1);
        self.cache
            .history
            .entry(jid.to_owned())
            .or_default()
            .entries
            .push(entry.clone());
        Ok(())
    }

    /// A new job's count is one: no query.
    fn history_append_first(&mut self, jid: &str, entry: &HistoryEntry) -> Result<()> {
        if !self.cache.history_counts.contains_key(jid) {
            // None written or pending (the contract).
            self.cache.history_counts.insert(jid.to_owned(), 0);
        }
        self.history_append(jid, entry)
    }

    /// Counted once, then kept up to date by appends, so a job's later
    /// entries need no count.
    fn history_count(&mut self, jid: &str) -> Result<i64> {
        if let Some(n) = self.cache.history_counts.get(jid) {
            return Ok(*n);
        }
        let (reset, pending) = self
            .cache
            .history
            .get(jid)
            .map_or((false, 0), |p| (p.reset, p.entries.len() as i64));
        let stored = if reset {
            0
        } else {
            history_len(self.history_text(jid)?)?
        };
        let n = stored + pending;
        self.cache.history_counts.insert(jid.to_owned(), n);
        Ok(n)
    }

    /// Written by the job's next save (or at the flush): a job deleted
    /// with its history (the logic's way) costs no statement for it.
    fn history_delete(&mut self, jid: &str) -> Result<()> {
        self.cache.history.insert(
            jid.to_owned(),
            PendingHistory {
                reset: true,
                entries: Vec::new(),
            },
        );
        self.cache.history_texts.remove(jid);
        self.cache.history_counts.insert(jid.to_owned(), 0);
        Ok(())
    }

    /// The entries in the row, then the pending ones (appended after them).
    fn history_list(&mut self, jid: &str) -> Result<Vec<HistoryEntry>> {
        let reset = self.cache.history.get(jid).is_some_and(|p| p.reset);
        let mut entries = if reset {
            Vec::new()
        } else {
            history_from_text(self.history_text(jid)?)?
        };
        if let Some(pending) = self.cache.history.get(jid) {
            entries.extend(pending.entries.iter().cloned());
        }
        Ok(entries)
    }

    fn history_trim(&mut self, jid: &str, keep_last: i64) -> Result<()> {
        let mut entries = self.history_list(jid)?;
        let keep_last = usize::try_from(keep_last).unwrap_or(0);
        if entries.len() <= keep_last + 1 {
            return Ok(());
        }
        entries.drain(1..entries.len() - keep_last);
        self.cache
            .history_counts
            .insert(jid.to_owned(), entries.len() as i64);
        self.cache.history_texts.remove(jid);
        self.cache.history.insert(
            jid.to_owned(),
            PendingHistory {
                reset: true,
                entries,
            },
        );
        Ok(())
    }

    // --- jobs ----------------------------------------------------------

    fn job_count(&mut self, queue: &str, loc: Loc, range: TimeRange) -> Result<i64> {
        let (min, max) = bounds(range);
        // `loc = 1` / `loc <> 1` literally: the partial indexes' conditions.
        let sql = if loc == Loc::Work {
            "SELECT COUNT(*) FROM jobs
             WHERE queue = ?1 AND loc = 1 AND sort_time BETWEEN ?3 AND ?4 AND ?2 = 1"
        } else {
            "SELECT COUNT(*) FROM jobs
             WHERE queue = ?1 AND loc = ?2 AND loc <> 1 AND sort_time BETWEEN ?3 AND ?4"
        };
        self.int(sql, params![queue, loc.code(), min, max])
    }

    /// The history goes with the row.
    fn job_delete(&mut self, jid: &str) -> Result<()> {
        let old = self.loc_of(jid)?;
        self.cache.rows.remove(jid);
        self.cache.history.remove(jid);
        self.cache.history_texts.remove(jid);
        self.cache.history_counts.remove(jid);
        self.exec("DELETE FROM jobs WHERE jid = ?1", params![jid])?;
        self.placed(jid, old, None);
        Ok(())
    }

    /// A row read or saved before (this group or an earlier one) comes from
    /// the cache: a complete finds the row its pop saved.
    fn job_get(&mut self, jid: &str) -> Result<Option<JobRecord>> {
        if let Some(job) = self.cache.rows.get(jid) {
            return Ok(Some(job.clone()));
        }
        let job = self
            .conn
            .prepare_cached(concat!(
                "SELECT ",
                job_cols!(),
                ", history FROM jobs WHERE jid = ?1"
            ))
            .and_then(|mut s| s.query_row(params![jid], job_and_history).optional())
            .sql()?;
        self.cache
            .locs
            .insert(jid.to_owned(), job.as_ref().map(|(j, _)| j.loc.code()));
        Ok(match job {
            Some((job, history)) => {
                self.cache.rows.insert(jid.to_owned(), job.clone());
                self.cache.history_texts.insert(jid.to_owned(), history);
                Some(job)
            }
            None => {
                self.cache.rows.remove(jid);
                None
            }
        })
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
        let completed = loc == Loc::Complete && queue.is_empty();
        if completed && max < self.complete_floor()? {
            // Expiry's "completed before the cutoff", usually none.
            return Ok(Vec::new());
        }
        // `loc = 1` / `loc <> 1` literally: the partial indexes' conditions.
        let sql = if loc == Loc::Work {
            // Walks `jobs_work` in pop order, filtering on the time.
            concat!("SELECT jid FROM jobs", list_work!())
        } else {
            concat!("SELECT jid FROM jobs", list_other!())
        };
        let jids = self.strings(
            sql,
            params![queue, loc.code(), min, max, offset(off), limit(lim)],
        )?;
        if completed && jids.is_empty() && min == i64::MIN && off <= 0 && lim > 0 {
            // None at or before `max`.
            let floor = self.cache.complete_floor.unwrap_or(i64::MIN);
            self.cache.complete_floor = Some(floor.max(max.saturating_add(1)));
        }
        Ok(jids)
    }

    /// One query instead of [`Tx::job_list`] then a [`Tx::job_get`] per jid.
    fn job_list_records(
        &mut self,
        queue: &str,
        loc: Loc,
        range: TimeRange,
        off: i64,
        lim: i64,
    ) -> Result<Vec<JobRecord>> {
        let (min, max) = bounds(range);
        // As in `job_list`, with the whole rows and their histories.
        let sql = if loc == Loc::Work {
            concat!("SELECT ", job_cols!(), ", history FROM jobs", list_work!())
        } else {
            concat!("SELECT ", job_cols!(), ", history FROM jobs", list_other!())
        };
        let rows = {
            let mut stmt = self.conn.prepare_cached(sql).sql()?;
            let rows = stmt
                .query_map(
                    params![queue, loc.code(), min, max, offset(off), limit(lim)],
                    job_and_history,
                )
                .sql()?;
            rows.collect::<rusqlite::Result<Vec<_>>>().sql()?
        };
        let mut records = Vec::with_capacity(rows.len());
        for (job, history) in rows {
            self.cache
                .locs
                .insert(job.jid.clone(), Some(job.loc.code()));
            self.cache.rows.insert(job.jid.clone(), job.clone());
            self.cache.history_texts.insert(job.jid.clone(), history);
            records.push(job);
        }
        Ok(records)
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
        // `loc = 1` / `loc <> 1` literally: the partial indexes' conditions.
        let sql = if loc == Loc::Work {
            "SELECT jid FROM jobs
             WHERE queue = ?1 AND loc = 1 AND ?2 = 1 AND sort_time BETWEEN ?3 AND ?4
             ORDER BY sort_time DESC, jid DESC LIMIT ?6 OFFSET ?5"
        } else {
            "SELECT jid FROM jobs
             WHERE queue = ?1 AND loc = ?2 AND loc <> 1 AND sort_time BETWEEN ?3 AND ?4
             ORDER BY sort_time DESC, jid DESC LIMIT ?6 OFFSET ?5"
        };
        self.strings(
            sql,
            params![queue, loc.code(), min, max, offset(off), limit(lim)],
        )
    }

    fn job_loc_counts(&mut self, queue: &str, now: Timestamp) -> Result<LocCounts> {
        let mut stmt = self
            .conn
            .prepare_cached(
                // `loc = 1` / `loc <> 1` literally: the partial indexes.
                "SELECT ?3, 0, COUNT(*) FROM jobs WHERE queue = ?1 AND loc = 1
                 UNION ALL
                 SELECT loc, sort_time > ?2 AS live, COUNT(*) FROM jobs
                 WHERE queue = ?1 AND loc <> 1 AND loc IN (?4, ?5, ?6, ?7)
                 GROUP BY loc, live",
            )
            .sql()?;
        let rows = stmt
            .query_map(
                params![
                    queue,
                    now.0,
                    Loc::Work.code(),
                    Loc::Locked.code(),
                    Loc::Scheduled.code(),
                    Loc::Depends.code(),
                    Loc::Throttled.code()
                ],
                |r| {
                    Ok((
                        r.get::<_, i64>(0)?,
                        r.get::<_, bool>(1)?,
                        r.get::<_, i64>(2)?,
                    ))
                },
            )
            .sql()?;
        let mut counts = LocCounts::default();
        for row in rows {
            let (code, live, n) = row.sql()?;
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
        let base = match self.cache.complete_base {
            Some(base) => base,
            None => {
                let mut stmt = self
                    .conn
                    .prepare_cached("SELECT n FROM counters WHERE name = 'complete'")
                    .sql()?;
                let n: Option<i64> = stmt.query_row([], |r| r.get(0)).optional().sql()?;
                let base = n.unwrap_or(0);
                self.cache.complete_base = Some(base);
                base
            }
        };
        Ok(base + self.cache.complete_delta)
    }

    fn job_save(&mut self, job: &JobRecord) -> Result<()> {
        let old = self.loc_of(&job.jid)?;
        // The history entries appended since the last save go with the
        // row: the whole new array when the old one is known (read with the
        // row, the usual), else appended in SQL.
        let old_history = self.cache.history_texts.remove(&job.jid);
        let history = match self.cache.history.remove(&job.jid) {
            Some(pending) => Some(pending.write(old_history.as_deref())?),
            None => None,
        };
        let read = self.cache.rows.remove(&job.jid);
        if let Some(read) = read.filter(|r| old == Some(r.loc.code())) {
            // The row is as read: set only what changed.
            if self.job_update(changed_cols(&read, job)?, job, history.as_ref())? {
                self.saved(job, old);
                self.history_saved(&job.jid, old_history, history);
                return Ok(());
            }
        }
        if old.is_some() && self.job_update(ALL_COLS, job, history.as_ref())? {
            self.saved(job, old);
            self.history_saved(&job.jid, old_history, history);
            return Ok(());
        }
        // No row: the entries are the whole history.
        let history = match history {
            Some((HISTORY_SET, text)) => text,
            Some((_, text)) => format!("[{text}]"),
            None => "[]".to_owned(),
        };
        let tags = strings_json(&job.tags)?;
        let metadata = map_json(&job.metadata)?;
        let throttles = strings_json(&job.throttles)?;
        let failure = job.failure.as_ref().map(to_json_text).transpose()?;
        let params = params![
            job.jid,
            job.klass,
            job.queue,
            job.state.as_str(),
            job.data,
            job.priority,
            tags,
            job.worker,
            job.expires.0,
            job.retries,
            job.remaining,
            job.time.0,
            job.grace,
            job.scheduled.map(|t| t.0),
            failure,
            job.spawned_from,
            job.worker_listed,
            job.fail_group,
            job.fail_seq,
            job.loc.code(),
            job.sort_prio,
            job.sort_time.0,
            job.seq,
            metadata,
            job.unique_key,
            job.batch,
            job.batch_outcome.code(),
            throttles,
            history,
        ];
        // The placement read before told whether the row exists: a plain
        // INSERT instead of an upsert's failed insert first. A row that
        // exists after all fails this loudly (primary key).
        self.exec(
            concat!(
                "INSERT INTO jobs (",
                job_cols!(),
                ", history) VALUES (?1,?2,?3,?4,?5,?6,?7,?8,?9,?10,?11,?12,?13,?14,?15,?16,?17,\
                 ?18,?19,?20,?21,?22,?23,?24,?25,?26,?27,?28,?29)"
            ),
            params,
        )?;
        self.saved(job, old);
        self.cache.history_texts.insert(job.jid.clone(), history);
        Ok(())
    }

    fn job_worker_list(&mut self, worker: &str) -> Result<Vec<(String, Timestamp)>> {
        let mut stmt = self
            .conn
            .prepare_cached(
                "SELECT jid, expires FROM jobs WHERE worker = ?1 AND worker_listed = 1
                 ORDER BY expires, jid",
            )
            .sql()?;
        let rows = stmt
            .query_map(params![worker], |r| Ok((r.get(0)?, Timestamp(r.get(1)?))))
            .sql()?;
        rows.collect::<rusqlite::Result<Vec<_>>>().sql()
    }

    fn job_worker_unlist_all(&mut self, worker: &str) -> Result<()> {
        self.cache.rows.clear();
        self.exec(
            "UPDATE jobs SET worker_listed = 0 WHERE worker = ?1 AND worker_listed = 1",
            params![worker],
        )?;
        Ok(())
    }

    // --- queues --------------------------------------------------------

    fn queue_forget(&mut self, queue: &str) -> Result<()> {
        self.cache.known_queues.remove(queue);
        // An unpaused forgotten queue needs no row at all.
        self.exec(
            "DELETE FROM queues WHERE name = ?1 AND paused = 0",
            params![queue],
        )?;
        self.exec(
            "UPDATE queues SET known = 0 WHERE name = ?1",
            params![queue],
        )?;
        Ok(())
    }

    fn queue_list(&mut self) -> Result<Vec<String>> {
        self.strings(
            "SELECT name FROM queues WHERE known = 1 ORDER BY first_seen, name",
            [],
        )
    }

    fn queue_paused(&mut self, queue: &str) -> Result<bool> {
        self.exists(
            "SELECT 1 FROM queues WHERE name = ?1 AND paused = 1",
            params![queue],
        )
    }

    fn queue_register(&mut self, queue: &str, now: Timestamp) -> Result<()> {
        if self.cache.known_queues.contains(queue) {
            return Ok(());
        }
        self.exec(
            "INSERT INTO queues (name, known, first_seen, paused) VALUES (?1, 1, ?2, 0)
             ON CONFLICT (name) DO UPDATE SET known = 1, first_seen = excluded.first_seen
             WHERE known = 0",
            params![queue, now.0],
        )?;
        self.cache.known_queues.insert(queue.to_owned());
        Ok(())
    }

    fn queue_set_paused(&mut self, queue: &str, paused: bool) -> Result<()> {
        self.exec(
            "INSERT INTO queues (name, known, first_seen, paused) VALUES (?1, 0, 0, ?2)
             ON CONFLICT (name) DO UPDATE SET paused = excluded.paused",
            params![queue, paused],
        )?;
        // An unknown, unpaused queue needs no row.
        self.exec(
            "DELETE FROM queues WHERE name = ?1 AND known = 0 AND paused = 0",
            params![queue],
        )?;
        Ok(())
    }

    // --- recurring templates -------------------------------------------

    fn recur_count(&mut self, queue: &str) -> Result<i64> {
        self.int(
            "SELECT COUNT(*) FROM recurring WHERE queue = ?1",
            params![queue],
        )
    }

    fn recur_delete(&mut self, jid: &str) -> Result<()> {
        self.exec("DELETE FROM recurring WHERE jid = ?1", params![jid])?;
        Ok(())
    }

    fn recur_get(&mut self, jid: &str) -> Result<Option<RecurRecord>> {
        self.conn
            .prepare_cached(
                "SELECT jid, klass, queue, data, priority, tags, retries, interval,
                        next_at, count, backlog, cron, timezone, missed
                 FROM recurring WHERE jid = ?1",
            )
            .and_then(|mut s| s.query_row(params![jid], recur_from_row).optional())
            .sql()
    }

    fn recur_list(
        &mut self,
        queue: &str,
        range: TimeRange,
        off: i64,
        lim: i64,
    ) -> Result<Vec<String>> {
        let (min, max) = bounds(range);
        self.strings(
            "SELECT jid FROM recurring WHERE queue = ?1 AND next_at BETWEEN ?2 AND ?3
             ORDER BY next_at, jid LIMIT ?5 OFFSET ?4",
            params![queue, min, max, offset(off), limit(lim)],
        )
    }

    fn recur_save(&mut self, recur: &RecurRecord) -> Result<()> {
        let tags = to_json_text(&recur.tags)?;
        self.exec(
            "INSERT OR REPLACE INTO recurring
               (jid, klass, queue, data, priority, tags, retries, interval, next_at,
                count, backlog, cron, timezone, missed)
             VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13, ?14)",
            params![
                recur.jid,
                recur.klass,
                recur.queue,
                recur.data,
                recur.priority,
                tags,
                recur.retries,
                recur.interval,
                recur.next_at.0,
                recur.count,
                recur.backlog,
                recur.cron.as_ref().map(|c| &c.expr),
                recur.cron.as_ref().and_then(|c| c.timezone.as_ref()),
                recur
                    .cron
                    .as_ref()
                    .map_or(Missed::default(), |c| c.missed)
                    .as_str(),
            ],
        )?;
        Ok(())
    }

    // --- sequence ------------------------------------------------------

    fn seq_next(&mut self) -> Result<i64> {
        let last = match self.cache.seq {
            Some(v) => v,
            None => self
                .conn
                .prepare_cached("SELECT value FROM meta WHERE key = 'seq'")
                .and_then(|mut s| s.query_row([], |r| r.get::<_, i64>(0)).optional())
                .sql()?
                .unwrap_or(0),
        };
        let next = last
            .checked_add(1)
            .ok_or_else(|| Error::store("placement sequence exhausted"))?;
        self.cache.seq = Some(next);
        self.cache.seq_dirty = true;
        Ok(next)
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
                "INSERT INTO stats_counters (queue, day, failures) VALUES (?1, ?2, ?3)
                 ON CONFLICT (queue, day) DO UPDATE SET failures = failures + excluded.failures"
            }
            Counter::Failed => {
                "INSERT INTO stats_counters (queue, day, failed) VALUES (?1, ?2, ?3)
                 ON CONFLICT (queue, day) DO UPDATE SET failed = failed + excluded.failed"
            }
            Counter::Retries => {
                "INSERT INTO stats_counters (queue, day, retries) VALUES (?1, ?2, ?3)
                 ON CONFLICT (queue, day) DO UPDATE SET retries = retries + excluded.retries"
            }
        };
        self.exec(sql, params![queue, day.0, delta])?;
        Ok(())
    }

    fn stats_counters(&mut self, queue: &str, day: Timestamp) -> Result<(i64, i64, i64)> {
        let row = self
            .conn
            .prepare_cached(
                "SELECT failures, failed, retries FROM stats_counters
                 WHERE queue = ?1 AND day = ?2",
            )
            .and_then(|mut s| {
                s.query_row(params![queue, day.0], |r| {
                    Ok((r.get(0)?, r.get(1)?, r.get(2)?))
                })
                .optional()
            })
            .sql()?;
        Ok(row.unwrap_or((0, 0, 0)))
    }

    fn stats_hist_add(
        &mut self,
        queue: &str,
        day: Timestamp,
        kind: StatKind,
        bucket: &str,
    ) -> Result<()> {
        *self
            .cache
            .hist
            .entry((queue.to_owned(), day.0, kind, bucket.to_owned()))
            .or_insert(0) += 1;
        Ok(())
    }

    fn stats_hist(
        &mut self,
        queue: &str,
        day: Timestamp,
        kind: StatKind,
    ) -> Result<Vec<(String, i64)>> {
        self.flush_stats()?;
        let mut stmt = self
            .conn
            .prepare_cached(
                "SELECT bucket, count FROM stats_hist
                 WHERE queue = ?1 AND day = ?2 AND kind = ?3 ORDER BY bucket",
            )
            .sql()?;
        let rows = stmt
            .query_map(params![queue, day.0, kind.as_str()], |r| {
                Ok((r.get(0)?, r.get(1)?))
            })
            .sql()?;
        rows.collect::<rusqlite::Result<Vec<_>>>().sql()
    }

    fn stats_timing(&mut self, queue: &str, day: Timestamp, kind: StatKind) -> Result<TimingStat> {
        let key = (queue.to_owned(), day.0, kind);
        if let Some((stat, _)) = self.cache.timing.get(&key) {
            return Ok(*stat);
        }
        let row = self
            .conn
            .prepare_cached(
                "SELECT count, mean, vk FROM stats_timing
                 WHERE queue = ?1 AND day = ?2 AND kind = ?3",
            )
            .and_then(|mut s| {
                s.query_row(params![queue, day.0, kind.as_str()], |r| {
                    Ok(TimingStat {
                        count: r.get(0)?,
                        mean: r.get(1)?,
                        vk: r.get(2)?,
                    })
                })
                .optional()
            })
            .sql()?;
        let stat = row.unwrap_or_default();
        self.cache.timing.insert(key, (stat, false));
        Ok(stat)
    }

    fn stats_timing_save(
        &mut self,
        queue: &str,
        day: Timestamp,
        kind: StatKind,
        stat: &TimingStat,
    ) -> Result<()> {
        self.cache
            .timing
            .insert((queue.to_owned(), day.0, kind), (*stat, true));
        Ok(())
    }

    // --- tags ----------------------------------------------------------

    fn tag_count_add(&mut self, tag: &str, delta: i64) -> Result<()> {
        self.exec(
            "INSERT INTO tag_counts (tag, count) VALUES (?1, ?2)
             ON CONFLICT (tag) DO UPDATE SET count = count + excluded.count",
            params![tag, delta],
        )?;
        self.exec(
            "DELETE FROM tag_counts WHERE tag = ?1 AND count <= 0",
            params![tag],
        )?;
        Ok(())
    }

    fn tag_index_add(&mut self, tag: &str, jid: &str, at: Timestamp) -> Result<()> {
        self.exec(
            "INSERT INTO tags (tag, jid, at) VALUES (?1, ?2, ?3)
             ON CONFLICT (tag, jid) DO UPDATE SET at = excluded.at",
            params![tag, jid, at.0],
        )?;
        Ok(())
    }

    fn tag_index_remove(&mut self, tag: &str, jid: &str) -> Result<()> {
        self.exec(
            "DELETE FROM tags WHERE tag = ?1 AND jid = ?2",
            params![tag, jid],
        )?;
        Ok(())
    }

    fn tag_jobs(&mut self, tag: &str, off: i64, lim: i64) -> Result<(i64, Vec<String>)> {
        let total = self.int("SELECT COUNT(*) FROM tags WHERE tag = ?1", params![tag])?;
        let jids = self.strings(
            "SELECT jid FROM tags WHERE tag = ?1 ORDER BY at, jid LIMIT ?3 OFFSET ?2",
            params![tag, offset(off), limit(lim)],
        )?;
        Ok((total, jids))
    }

    fn tag_top(&mut self, min_count: i64, off: i64, lim: i64) -> Result<Vec<String>> {
        self.strings(
            "SELECT tag FROM tag_counts WHERE count >= ?1
             ORDER BY count DESC, tag LIMIT ?3 OFFSET ?2",
            params![min_count, offset(off), limit(lim)],
        )
    }

    // --- throttles -----------------------------------------------------

    fn throttle_get(&mut self, name: &str) -> Result<Option<i64>> {
        self.conn
            .prepare_cached("SELECT max FROM throttles WHERE name = ?1")
            .and_then(|mut s| s.query_row(params![name], |r| r.get(0)).optional())
            .sql()
    }

    fn throttle_set(&mut self, name: &str, max: i64) -> Result<()> {
        self.exec(
            "INSERT INTO throttles (name, max) VALUES (?1, ?2)
             ON CONFLICT (name) DO UPDATE SET max = excluded.max",
            params![name, max],
        )?;
        Ok(())
    }

    fn throttle_delete(&mut self, name: &str) -> Result<()> {
        self.exec("DELETE FROM throttles WHERE name = ?1", params![name])?;
        self.exec(
            "DELETE FROM throttle_starts WHERE throttle = ?1",
            params![name],
        )?;
        Ok(())
    }

    fn throttle_list(&mut self) -> Result<Vec<(String, i64)>> {
        let mut stmt = self
            .conn
            .prepare_cached("SELECT name, max FROM throttles ORDER BY name")
            .sql()?;
        let rows = stmt.query_map([], |r| Ok((r.get(0)?, r.get(1)?))).sql()?;
        rows.collect::<rusqlite::Result<Vec<_>>>().sql()
    }

    fn throttle_held(&mut self, name: &str) -> Result<i64> {
        // One writer: no lock needed.
        self.int(
            "SELECT COUNT(*) FROM throttle_jobs WHERE throttle = ?1 AND holding = 1",
            params![name],
        )
    }

    fn throttle_pending_count(&mut self, name: &str) -> Result<i64> {
        self.int(
            "SELECT COUNT(*) FROM throttle_jobs WHERE throttle = ?1 AND holding = 0",
            params![name],
        )
    }

    fn throttle_hold(&mut self, jid: &str, names: &[String]) -> Result<()> {
        for name in names {
            self.exec(
                "INSERT INTO throttle_jobs (throttle, jid, holding, prio, time, seq)
                 VALUES (?1, ?2, 1, 0, 0, 0)
                 ON CONFLICT (throttle, jid) DO UPDATE SET holding = 1",
                params![name, jid],
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
        self.exec(
            "INSERT INTO throttle_jobs (throttle, jid, holding, prio, time, seq)
             VALUES (?1, ?2, 0, ?3, ?4, ?5)
             ON CONFLICT (throttle, jid) DO UPDATE SET holding = 0, prio = excluded.prio,
               time = excluded.time, seq = excluded.seq",
            params![name, jid, prio, time.0, seq],
        )?;
        Ok(())
    }

    fn throttle_release(&mut self, jid: &str) -> Result<Vec<String>> {
        let held = self.strings(
            "SELECT throttle FROM throttle_jobs WHERE jid = ?1 AND holding = 1 ORDER BY throttle",
            params![jid],
        )?;
        self.exec("DELETE FROM throttle_jobs WHERE jid = ?1", params![jid])?;
        Ok(held)
    }

    fn throttle_pending(&mut self, name: &str, lim: i64) -> Result<Vec<String>> {
        self.strings(
            "SELECT jid FROM throttle_jobs WHERE throttle = ?1 AND holding = 0
             ORDER BY prio DESC, time, seq, jid LIMIT ?2",
            params![name, limit(lim)],
        )
    }

    fn throttle_rate(&mut self, name: &str) -> Result<Option<ThrottleRate>> {
        let row: Option<(i64, i64)> = self
            .conn
            .prepare_cached("SELECT rate_limit, rate_period FROM throttles WHERE name = ?1")
            .and_then(|mut s| {
                s.query_row(params![name], |r| Ok((r.get(0)?, r.get(1)?)))
                    .optional()
            })
            .sql()?;
        Ok(row
            .filter(|(limit, _)| *limit > 0)
            .map(|(limit, period)| ThrottleRate { limit, period }))
    }

    fn throttle_rate_set(&mut self, name: &str, rate: Option<ThrottleRate>) -> Result<()> {
        let (limit, period) = rate.map_or((0, 0), |r| (r.limit, r.period));
        self.exec(
            "UPDATE throttles SET rate_limit = ?2, rate_period = ?3 WHERE name = ?1",
            params![name, limit, period],
        )?;
        Ok(())
    }

    fn throttle_rate_waiting(&mut self) -> Result<Vec<String>> {
        self.strings(
            "SELECT name FROM throttles t WHERE rate_limit > 0 AND EXISTS
               (SELECT 1 FROM throttle_jobs j WHERE j.throttle = t.name AND j.holding = 0)
             ORDER BY name",
            params![],
        )
    }

    fn throttle_starts(&mut self, name: &str, since: Timestamp) -> Result<i64> {
        // One writer: no lock needed.
        self.int(
            "SELECT COUNT(*) FROM throttle_starts WHERE throttle = ?1 AND at > ?2",
            params![name, since.0],
        )
    }

    fn throttle_start(&mut self, name: &str, at: Timestamp, prune: Timestamp) -> Result<()> {
        self.exec(
            "DELETE FROM throttle_starts WHERE throttle = ?1 AND at <= ?2",
            params![name, prune.0],
        )?;
        self.exec(
            "INSERT INTO throttle_starts (throttle, at) VALUES (?1, ?2)",
            params![name, at.0],
        )?;
        Ok(())
    }

    // --- tracking ------------------------------------------------------

    fn tracked_add(&mut self, jid: &str, at: Timestamp) -> Result<bool> {
        let existed = self.tracked_has(jid)?;
        self.exec(
            "INSERT INTO tracked (jid, at) VALUES (?1, ?2)
             ON CONFLICT (jid) DO UPDATE SET at = excluded.at",
            params![jid, at.0],
        )?;
        self.cache.tracked_empty = Some(false);
        Ok(!existed)
    }

    fn tracked_has(&mut self, jid: &str) -> Result<bool> {
        let empty = match self.cache.tracked_empty {
            Some(empty) => empty,
            None => {
                let empty = !self.exists("SELECT 1 FROM tracked LIMIT 1", [])?;
                self.cache.tracked_empty = Some(empty);
                empty
            }
        };
        if empty {
            return Ok(false);
        }
        self.exists("SELECT 1 FROM tracked WHERE jid = ?1", params![jid])
    }

    fn tracked_list(&mut self) -> Result<Vec<String>> {
        self.strings("SELECT jid FROM tracked ORDER BY at, jid", [])
    }

    fn tracked_remove(&mut self, jid: &str) -> Result<bool> {
        self.cache.tracked_empty = None;
        Ok(self.exec("DELETE FROM tracked WHERE jid = ?1", params![jid])? > 0)
    }

    // --- workers -------------------------------------------------------

    fn worker_list(&mut self) -> Result<Vec<(String, Timestamp)>> {
        let mut stmt = self
            .conn
            .prepare_cached(
                "SELECT name, last_seen FROM workers ORDER BY last_seen DESC, name DESC",
            )
            .sql()?;
        let rows = stmt
            .query_map([], |r| Ok((r.get(0)?, Timestamp(r.get(1)?))))
            .sql()?;
        rows.collect::<rusqlite::Result<Vec<_>>>().sql()
    }

    fn worker_remove(&mut self, worker: &str) -> Result<()> {
        self.exec("DELETE FROM workers WHERE name = ?1", params![worker])?;
        Ok(())
    }

    fn unique_holder(&mut self, key: &str) -> Result<Option<String>> {
        // The condition is the unique partial index's (jobs_unique_live),
        // named literally so the planner uses it.
        let mut stmt = self
            .conn
            .prepare_cached(
                "SELECT jid FROM jobs WHERE unique_key = ?1
                 AND unique_key IS NOT NULL AND state NOT IN ('failed', 'complete')",
            )
            .sql()?;
        stmt.query_row([key], |r| r.get(0)).optional().sql()
    }

    fn worker_touch(&mut self, worker: &str, now: Timestamp) -> Result<()> {
        self.exec(
            "INSERT INTO workers (name, last_seen) VALUES (?1, ?2)
             ON CONFLICT (name) DO UPDATE SET last_seen = excluded.last_seen",
            params![worker, now.0],
        )?;
        Ok(())
    }
}
