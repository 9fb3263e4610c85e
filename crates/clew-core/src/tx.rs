//! [`Tx`]: the storage primitives a backend implements inside one transaction.
//!
//! All qless semantics live once, in [`crate::logic`], written against this
//! trait. A backend (SQLite, PostgreSQL) implements each primitive as one
//! statement on its own schema; it never decides anything about job states.
//! The backend runs each command's logic inside a transaction (or savepoint)
//! and rolls it back when the logic returns an error, so a rejected call
//! leaves the store exactly as it was.
//!
//! Ordering rules every backend must follow (the conformance suite checks
//! them):
//! * work list of a queue: `sort_prio` descending, then `sort_time`
//!   ascending, then `seq` ascending;
//! * the other sets (locks, scheduled, depends, complete): `sort_time`
//!   ascending, then jid ascending (byte order), unless a method says
//!   otherwise.
//!
//! This trait is internal: it is defined by the conformance suite and may
//! change freely between versions.

use crate::batch::BatchRecord;
use crate::error::Result;
use crate::job::{HistoryEntry, JobRecord, Loc, RecurRecord};
use crate::time::Timestamp;

/// A range over `sort_time`, both ends inclusive; `None` is unbounded.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct TimeRange {
    /// Lowest `sort_time` included.
    pub min: Option<Timestamp>,
    /// Highest `sort_time` included.
    pub max: Option<Timestamp>,
}

impl TimeRange {
    /// Every time.
    pub const ALL: TimeRange = TimeRange {
        min: None,
        max: None,
    };

    /// Times at or before `t`.
    pub fn up_to(t: Timestamp) -> TimeRange {
        TimeRange {
            min: None,
            max: Some(t),
        }
    }

    /// Times at or after `t`.
    pub fn from(t: Timestamp) -> TimeRange {
        TimeRange {
            min: Some(t),
            max: None,
        }
    }
}

/// Per-queue, per-day timing statistic (Welford's streaming variance).
#[derive(Clone, Copy, Debug, Default, PartialEq)]
pub struct TimingStat {
    /// Number of samples.
    pub count: i64,
    /// Running mean, seconds.
    pub mean: f64,
    /// Welford's sum of squared differences.
    pub vk: f64,
}

impl TimingStat {
    /// Adds one sample (Welford's update).
    pub fn add(&mut self, secs: f64) {
        self.count += 1;
        if self.count == 1 {
            self.mean = secs;
            self.vk = 0.0;
        } else {
            let old = self.mean;
            self.mean += (secs - old) / self.count as f64;
            self.vk += (secs - self.mean) * (secs - old);
        }
    }
}

/// Which timing statistic.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum StatKind {
    /// Time from entering the queue to being popped.
    Wait,
    /// Time from being popped to completing.
    Run,
}

impl StatKind {
    /// `wait` or `run`.
    pub fn as_str(self) -> &'static str {
        match self {
            StatKind::Wait => "wait",
            StatKind::Run => "run",
        }
    }
}

/// Per-queue, per-day counters.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Counter {
    /// Failures ever recorded that day.
    Failures,
    /// Jobs currently failed from that day (decremented when they are put
    /// again, cancelled or unfailed).
    Failed,
    /// Lost locks detected that day.
    Retries,
}

impl Counter {
    /// `failures`, `failed` or `retries`.
    pub fn as_str(self) -> &'static str {
        match self {
            Counter::Failures => "failures",
            Counter::Failed => "failed",
            Counter::Retries => "retries",
        }
    }
}

/// Counts of one queue's sets at a moment (the `queues` command).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct LocCounts {
    /// Work list size (includes timed-out jobs).
    pub waiting: i64,
    /// Locks with expiry after `now`.
    pub running: i64,
    /// Locks with expiry at or before `now`.
    pub stalled: i64,
    /// Scheduled set size.
    pub scheduled: i64,
    /// Depends set size.
    pub depends: i64,
    /// Jobs held back by a full throttle ([`crate::Loc::Throttled`]).
    pub throttled: i64,
}

/// The storage primitives of one transaction. See the module doc.
pub trait Tx {
    // --- savepoints ------------------------------------------------------
    /// Opens a savepoint inside the transaction (one item of a non-atomic
    /// [`crate::Command::Batch`]). Savepoints do not nest.
    fn savepoint(&mut self) -> Result<()>;
    /// Keeps what was done since [`Tx::savepoint`] and closes the savepoint.
    fn savepoint_release(&mut self) -> Result<()>;
    /// Undoes what was done since [`Tx::savepoint`] and closes the savepoint
    /// (caches the store keeps must forget what it undid).
    fn savepoint_rollback(&mut self) -> Result<()>;

    // --- batches (see [`crate::batch`]) ---------------------------------
    /// A batch. A backend with concurrent writers locks the row (a pop
    /// may fail a batch's job while another pop does too).
    fn batch_get(&mut self, id: &str) -> Result<Option<BatchRecord>>;
    /// Inserts or replaces a batch.
    fn batch_save(&mut self, batch: &BatchRecord) -> Result<()>;
    /// Batches newest `created` first (ties: id descending), skipping
    /// `offset`, at most `limit`, with how many there are.
    fn batch_list(&mut self, offset: i64, limit: i64) -> Result<(i64, Vec<BatchRecord>)>;
    /// Jids of the existing jobs whose `batch` is `id`, by jid ascending,
    /// skipping `offset`, at most `limit`, with how many there are.
    fn batch_jobs(&mut self, id: &str, offset: i64, limit: i64) -> Result<(i64, Vec<String>)>;

    // --- configuration -------------------------------------------------
    /// All stored config values (not the defaults), sorted by key.
    fn config_all(&mut self) -> Result<Vec<(String, String)>>;
    /// One stored config value.
    fn config_get(&mut self, key: &str) -> Result<Option<String>>;
    /// Stores a config value.
    fn config_set(&mut self, key: &str, value: &str) -> Result<()>;
    /// Deletes a stored config value.
    fn config_unset(&mut self, key: &str) -> Result<()>;

    // --- dependencies (one edge = `jid` waits for `dep`) ----------------
    /// Adds the edge (no-op if present).
    fn dep_add(&mut self, jid: &str, dep: &str) -> Result<()>;
    /// Removes the edge (no-op if absent).
    fn dep_remove(&mut self, jid: &str, dep: &str) -> Result<()>;
    /// Jids `jid` waits for, sorted.
    fn deps_of(&mut self, jid: &str) -> Result<Vec<String>>;
    /// Jids waiting for `dep`, sorted.
    fn dependents_of(&mut self, dep: &str) -> Result<Vec<String>>;

    // --- events --------------------------------------------------------
    /// Appends an event to the durable event log; returns its sequence
    /// number (strictly increasing, never reused).
    fn event_append(&mut self, at: Timestamp, channel: &str, message: &str) -> Result<i64>;

    // --- failure lists -------------------------------------------------
    /// Non-empty failure groups with their sizes, sorted by group name.
    fn failed_groups(&mut self) -> Result<Vec<(String, i64)>>;
    /// Jids in a failure group, newest (`fail_seq` highest) first.
    fn failed_list(&mut self, group: &str, offset: i64, limit: i64) -> Result<Vec<String>>;
    /// Jids in a failure group, oldest first.
    fn failed_oldest(&mut self, group: &str, limit: i64) -> Result<Vec<String>>;
    /// Size of a failure group.
    fn failed_count(&mut self, group: &str) -> Result<i64>;

    // --- history -------------------------------------------------------
    /// Appends an entry to a job's history.
    fn history_append(&mut self, jid: &str, entry: &HistoryEntry) -> Result<()>;
    /// Appends the first entry of a job being created (logic deletes a
    /// job's history with its row, so it has none). The default is
    /// [`Tx::history_append`]; a backend keeping counts knows it is one.
    fn history_append_first(&mut self, jid: &str, entry: &HistoryEntry) -> Result<()> {
        self.history_append(jid, entry)
    }
    /// Number of entries in a job's history.
    fn history_count(&mut self, jid: &str) -> Result<i64>;
    /// Deletes every entry of a job's history.
    fn history_delete(&mut self, jid: &str) -> Result<()>;
    /// A job's history, oldest first.
    fn history_list(&mut self, jid: &str) -> Result<Vec<HistoryEntry>>;
    /// Keeps the first entry and the newest `keep_last` entries; deletes the rest.
    fn history_trim(&mut self, jid: &str, keep_last: i64) -> Result<()>;

    // --- jobs ----------------------------------------------------------
    /// Number of jobs of `queue` in `loc` with `sort_time` in `range`.
    fn job_count(&mut self, queue: &str, loc: Loc, range: TimeRange) -> Result<i64>;
    /// How many jobs are complete, without counting them (the store keeps
    /// a counter).
    fn complete_count(&mut self) -> Result<i64>;
    /// Deletes a job's row (not its tags or edges). Its history goes too
    /// where a backend keeps it in the row (SQLite); the logic deletes it
    /// first either way ([`Tx::history_delete`]).
    fn job_delete(&mut self, jid: &str) -> Result<()>;
    /// A job's row. A backend with concurrent writers locks the row.
    fn job_get(&mut self, jid: &str) -> Result<Option<JobRecord>>;
    /// A hint that the logic is about to [`Tx::job_get`] these jobs (the
    /// items of a batch, in order; a jid may repeat). A backend may read
    /// them now, in one query, and answer their `job_get`s from what it
    /// read, provided it keeps that true through its own later writes
    /// (what `job_get` returns must not change). The default does nothing.
    fn prefetch_jobs(&mut self, jids: &[&str]) -> Result<()> {
        let _ = jids;
        Ok(())
    }
    /// Jids of `queue` in `loc` with `sort_time` in `range`, in the set's
    /// order (see the module doc), skipping `offset`, at most `limit`.
    fn job_list(
        &mut self,
        queue: &str,
        loc: Loc,
        range: TimeRange,
        offset: i64,
        limit: i64,
    ) -> Result<Vec<String>>;
    /// The rows of the jobs [`Tx::job_list`] lists, in its order (a job
    /// whose row is gone is skipped). The default reads each listed row
    /// with [`Tx::job_get`]; a backend may read them in the same query.
    fn job_list_records(
        &mut self,
        queue: &str,
        loc: Loc,
        range: TimeRange,
        offset: i64,
        limit: i64,
    ) -> Result<Vec<JobRecord>> {
        let jids = self.job_list(queue, loc, range, offset, limit)?;
        let mut records = Vec::with_capacity(jids.len());
        for jid in jids {
            if let Some(record) = self.job_get(&jid)? {
                records.push(record);
            }
        }
        Ok(records)
    }
    /// Like [`Tx::job_list`] but newest `sort_time` first (ties: jid descending).
    fn job_list_rev(
        &mut self,
        queue: &str,
        loc: Loc,
        range: TimeRange,
        offset: i64,
        limit: i64,
    ) -> Result<Vec<String>>;
    /// Counts of one queue's sets at `now`.
    fn job_loc_counts(&mut self, queue: &str, now: Timestamp) -> Result<LocCounts>;
    /// Inserts or replaces a job's row.
    fn job_save(&mut self, job: &JobRecord) -> Result<()>;
    /// Jids whose worker is `worker` and that are in that worker's job set,
    /// with their lock expiry.
    fn job_worker_list(&mut self, worker: &str) -> Result<Vec<(String, Timestamp)>>;
    /// Takes every job out of `worker`'s job set (sets `worker_listed` false).
    fn job_worker_unlist_all(&mut self, worker: &str) -> Result<()>;

    // --- queues --------------------------------------------------------
    /// Forgets a queue name (it stays paused if it was).
    fn queue_forget(&mut self, queue: &str) -> Result<()>;
    /// Known queue names in first-seen order (ties: name ascending).
    fn queue_list(&mut self) -> Result<Vec<String>>;
    /// Whether the queue is paused.
    fn queue_paused(&mut self, queue: &str) -> Result<bool>;
    /// Registers a queue name first seen at `now` (no-op if known).
    fn queue_register(&mut self, queue: &str, now: Timestamp) -> Result<()>;
    /// Pauses or unpauses a queue (known or not).
    fn queue_set_paused(&mut self, queue: &str, paused: bool) -> Result<()>;

    // --- recurring templates -------------------------------------------
    /// Number of templates in a queue.
    fn recur_count(&mut self, queue: &str) -> Result<i64>;
    /// Deletes a template (no-op if absent).
    fn recur_delete(&mut self, jid: &str) -> Result<()>;
    /// A template.
    fn recur_get(&mut self, jid: &str) -> Result<Option<RecurRecord>>;
    /// Template jids of a queue with `next_at` in `range`, by `next_at`
    /// ascending then jid, skipping `offset`, at most `limit`.
    fn recur_list(
        &mut self,
        queue: &str,
        range: TimeRange,
        offset: i64,
        limit: i64,
    ) -> Result<Vec<String>>;
    /// Inserts or replaces a template.
    fn recur_save(&mut self, recur: &RecurRecord) -> Result<()>;

    // --- sequence ------------------------------------------------------
    /// The next value of the store's placement sequence (strictly increasing).
    fn seq_next(&mut self) -> Result<i64>;
    /// A hint that the logic is about to take `n` values with
    /// [`Tx::seq_next`] (a pop, one per job it hands out). A backend may
    /// take them ahead, with its next read. The default does nothing.
    fn seq_reserve(&mut self, n: usize) -> Result<()> {
        let _ = n;
        Ok(())
    }

    // --- stats ---------------------------------------------------------
    /// Adds `delta` to a counter of `queue` for the day starting at `day`.
    fn stats_counter_add(
        &mut self,
        queue: &str,
        day: Timestamp,
        counter: Counter,
        delta: i64,
    ) -> Result<()>;
    /// The three counters (`failures`, `failed`, `retries`) of a queue's day.
    fn stats_counters(&mut self, queue: &str, day: Timestamp) -> Result<(i64, i64, i64)>;
    /// Adds one to a histogram bucket (for example `s12`, `m3`, `h1`, `d2`).
    fn stats_hist_add(
        &mut self,
        queue: &str,
        day: Timestamp,
        kind: StatKind,
        bucket: &str,
    ) -> Result<()>;
    /// Every histogram bucket with its count for a queue's day.
    fn stats_hist(
        &mut self,
        queue: &str,
        day: Timestamp,
        kind: StatKind,
    ) -> Result<Vec<(String, i64)>>;
    /// Reads a timing statistic.
    fn stats_timing(&mut self, queue: &str, day: Timestamp, kind: StatKind) -> Result<TimingStat>;
    /// Writes a timing statistic.
    fn stats_timing_save(
        &mut self,
        queue: &str,
        day: Timestamp,
        kind: StatKind,
        stat: &TimingStat,
    ) -> Result<()>;
    /// Adds one sample of `secs` to a timing statistic
    /// ([`TimingStat::add`]). The default reads it, adds and writes it; a
    /// backend may instead add up the transaction's samples and merge them
    /// into the stored statistic when it writes (no read, and, with
    /// concurrent writers, no row held from a read to the commit).
    fn stats_timing_add(
        &mut self,
        queue: &str,
        day: Timestamp,
        kind: StatKind,
        secs: f64,
    ) -> Result<()> {
        let mut stat = self.stats_timing(queue, day, kind)?;
        stat.add(secs);
        self.stats_timing_save(queue, day, kind, &stat)
    }

    // --- tags ----------------------------------------------------------
    /// Adds `delta` to a tag's usage counter (a counter reaching 0 or less
    /// may be deleted).
    fn tag_count_add(&mut self, tag: &str, delta: i64) -> Result<()>;
    /// Indexes `jid` under `tag` at time `at` (updates the time if present).
    fn tag_index_add(&mut self, tag: &str, jid: &str, at: Timestamp) -> Result<()>;
    /// Removes `jid` from `tag`'s index.
    fn tag_index_remove(&mut self, tag: &str, jid: &str) -> Result<()>;
    /// Jids under `tag` by time ascending then jid, skipping `offset`, at
    /// most `limit`, with the total count.
    fn tag_jobs(&mut self, tag: &str, offset: i64, limit: i64) -> Result<(i64, Vec<String>)>;
    /// Tags whose counter is at least `min_count`, highest counter first
    /// (ties: tag ascending), skipping `offset`, at most `limit`.
    fn tag_top(&mut self, min_count: i64, offset: i64, limit: i64) -> Result<Vec<String>>;

    // --- throttles (see crate::throttle) -------------------------------
    /// A throttle's maximum, if the throttle is defined.
    fn throttle_get(&mut self, name: &str) -> Result<Option<i64>>;
    /// Defines a throttle or changes its maximum.
    fn throttle_set(&mut self, name: &str, max: i64) -> Result<()>;
    /// Forgets a throttle's definition (no-op if absent; its slot rows stay).
    fn throttle_delete(&mut self, name: &str) -> Result<()>;
    /// Defined throttles with their maxima, by name (byte order).
    fn throttle_list(&mut self) -> Result<Vec<(String, i64)>>;
    /// How many jobs hold a slot of the throttle. A backend with concurrent
    /// pops first takes a lock on the throttle, held to the commit, so that
    /// pops count (and take slots) one after another.
    fn throttle_held(&mut self, name: &str) -> Result<i64>;
    /// How many jobs wait for a slot of the throttle.
    fn throttle_pending_count(&mut self, name: &str) -> Result<i64>;
    /// Records that `jid` holds a slot of each throttle (no-op for a slot
    /// it holds already).
    fn throttle_hold(&mut self, jid: &str, names: &[String]) -> Result<()>;
    /// Records that `jid` waits for a slot of `name`, ordered among the
    /// throttle's waiters by `prio` descending, then `time`, then `seq`
    /// (its work-list place).
    fn throttle_pend(
        &mut self,
        jid: &str,
        name: &str,
        prio: i64,
        time: Timestamp,
        seq: i64,
    ) -> Result<()>;
    /// Deletes every slot and waiting row of `jid`; returns the names of
    /// the throttles whose slot it held (sorted).
    fn throttle_release(&mut self, jid: &str) -> Result<Vec<String>>;
    /// The first `limit` jobs waiting for `name`, in order. A backend with
    /// concurrent pops claims their rows as it selects them (skipping rows
    /// another pop holds).
    fn throttle_pending(&mut self, name: &str, limit: i64) -> Result<Vec<String>>;
    /// A defined throttle's rate limit, if it has one.
    fn throttle_rate(&mut self, name: &str) -> Result<Option<crate::throttle::ThrottleRate>>;
    /// Sets (or clears) a defined throttle's rate limit.
    fn throttle_rate_set(
        &mut self,
        name: &str,
        rate: Option<crate::throttle::ThrottleRate>,
    ) -> Result<()>;
    /// Names of throttles with a rate limit and waiting jobs, by name.
    fn throttle_rate_waiting(&mut self) -> Result<Vec<String>>;
    /// How many starts of `name` are later than `since`. A backend with
    /// concurrent pops takes the same lock as [`Tx::throttle_held`] first.
    fn throttle_starts(&mut self, name: &str, since: Timestamp) -> Result<i64>;
    /// Records a start of `name` at `at` and forgets its starts at or
    /// before `prune` (out of every window from now on).
    fn throttle_start(&mut self, name: &str, at: Timestamp, prune: Timestamp) -> Result<()>;

    // --- tracking ------------------------------------------------------
    /// Adds a jid to the tracked set; returns whether it was new.
    fn tracked_add(&mut self, jid: &str, at: Timestamp) -> Result<bool>;
    /// Whether a jid is tracked.
    fn tracked_has(&mut self, jid: &str) -> Result<bool>;
    /// Tracked jids by tracking time (ties: jid ascending).
    fn tracked_list(&mut self) -> Result<Vec<String>>;
    /// Removes a jid from the tracked set; returns whether it was there.
    fn tracked_remove(&mut self, jid: &str) -> Result<bool>;

    // --- uniqueness keys -----------------------------------------------
    /// The jid of the live job (state neither `failed` nor `complete`)
    /// whose `unique_key` is `key`, if any (the logic keeps at most one;
    /// see [`crate::unique`]). Sees this transaction's own writes.
    fn unique_holder(&mut self, key: &str) -> Result<Option<String>>;

    // --- workers -------------------------------------------------------
    /// Known workers with their last-seen time, most recent first (ties:
    /// name descending).
    fn worker_list(&mut self) -> Result<Vec<(String, Timestamp)>>;
    /// Forgets a worker (its jobs keep their rows).
    fn worker_remove(&mut self, worker: &str) -> Result<()>;
    /// Records a worker as seen at `now`.
    fn worker_touch(&mut self, worker: &str, now: Timestamp) -> Result<()>;
}
