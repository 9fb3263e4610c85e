//! qless semantics, written once over [`Tx`].
//!
//! [`apply`] runs one [`Command`] inside the caller's transaction: it reads
//! and writes through the backend's [`Tx`] primitives and collects the events
//! the command emits. It never commits or rolls back; a backend rolls the
//! transaction (or savepoint) back when `apply` returns an error, so a refused
//! command changes nothing. Section numbers (§) refer to
//! `shared/reference/qless-core-semantics.md`; deliberate differences are
//! listed in `docs/qless-compat.md`.

use serde_json::{json, Map, Value};

use crate::command::{
    Command, CompleteParams, DependsChange, JobsListing, PutParams, QueueCounts, RecurParams,
    RecurUpdate, Reply, TimingReport, WorkerSummary,
};
use crate::config;
use crate::error::{Error, ErrorKind, Result};
use crate::event::PendingEvent;
use crate::job::{Failure, HistoryEntry, Job, JobRecord, JobState, Loc, RecurRecord};
use crate::lifecycle::{LifecycleError, LifecycleKind, Origin};
use crate::stats;
use crate::time::Timestamp;
use crate::tx::{Counter, StatKind, TimeRange, Tx};
use crate::unique::OnConflict;

mod batches;

mod throttle;

/// "No limit" for listing primitives.
const ALL: i64 = i64::MAX;

/// The job `command` begins by reading (the jid of a put, complete, fail,
/// heartbeat, retry, release or get), if any: what a backend may read
/// ahead for several commands at once ([`Tx::prefetch_jobs`]) before
/// running them one by one, as [`Command::Batch`] does for its items and
/// a store may for a group of commands it runs in one transaction.
pub fn prefetch_hint(command: &Command) -> Option<&str> {
    match command {
        Command::Put(p) => Some(p.jid.as_str()),
        Command::Complete(p) => Some(p.jid.as_str()),
        Command::Fail { jid, .. }
        | Command::Heartbeat { jid, .. }
        | Command::Retry { jid, .. }
        | Command::Release { jid, .. }
        | Command::Get { jid } => Some(jid.as_str()),
        _ => None,
    }
}

/// Applies one command at `now` inside the caller's transaction, appending
/// the events it emits to `events`.
pub fn apply(
    tx: &mut dyn Tx,
    now: Timestamp,
    origin: &Origin,
    command: &Command,
    events: &mut Vec<PendingEvent>,
) -> Result<Reply> {
    validate(command)?;
    let mut cx = Cx {
        tx,
        now,
        origin,
        events,
    };
    match command {
        Command::Batch { commands, atomic } => cx.batch(commands, *atomic),
        Command::BatchCreate(p) => cx.batch_create(p),
        Command::BatchGet { id } => cx.batch_get(id),
        Command::BatchList { offset, count } => cx.batch_list(*offset, *count),
        Command::BatchJobs { id, offset, count } => {
            let (total, jobs) = cx.tx.batch_jobs(id, *offset, *count)?;
            Ok(Reply::Page { total, jobs })
        }
        Command::BatchCancel { id } => cx.batch_cancel(id),
        Command::Cancel { jids } => cx.cancel(jids),
        Command::Complete(p) => cx.complete(p),
        Command::ConfigGet { key } => cx.config_get(key.as_deref()),
        Command::ConfigSet { key, value } => {
            cx.tx.config_set(key, value)?;
            cx.emit(
                "ql:log",
                json!({"event": "config_set", "option": key, "value": value}),
            );
            Ok(Reply::Nil)
        }
        Command::ConfigUnset { key } => {
            cx.tx.config_unset(key)?;
            cx.emit("ql:log", json!({"event": "config_unset", "option": key}));
            Ok(Reply::Nil)
        }
        Command::Depends { jid, change } => cx.depends(jid, change),
        Command::Fail {
            jid,
            worker,
            group,
            message,
            data,
            metadata,
        } => cx.fail(
            jid,
            worker,
            group,
            message,
            data.as_deref(),
            metadata.as_ref(),
        ),
        Command::Failed {
            group,
            start,
            limit,
        } => match group {
            None => Ok(Reply::FailedGroups(cx.tx.failed_groups()?)),
            Some(g) => Ok(Reply::Page {
                total: cx.tx.failed_count(g)?,
                jobs: cx.tx.failed_list(g, *start, *limit)?,
            }),
        },
        Command::Get { jid } => match cx.tx.job_get(jid)? {
            Some(rec) => Ok(Reply::Job(Some(Box::new(cx.view(rec)?)))),
            None => Ok(Reply::Job(None)),
        },
        Command::Heartbeat { jid, worker, data } => cx.heartbeat(jid, worker, data.as_deref()),
        Command::Jobs {
            listing,
            queue,
            offset,
            count,
        } => cx.jobs(*listing, queue, *offset, *count),
        Command::JobsComplete { offset, count } => Ok(Reply::Strings(cx.tx.job_list_rev(
            "",
            Loc::Complete,
            TimeRange::ALL,
            *offset,
            *count,
        )?)),
        Command::Length { queue } => {
            let mut n = 0;
            for loc in [Loc::Locked, Loc::Work, Loc::Scheduled] {
                n += cx.tx.job_count(queue, loc, TimeRange::ALL)?;
            }
            Ok(Reply::Int(n))
        }
        Command::Log { jid, message, data } => {
            cx.must_get("Log", jid)?;
            let mut entry = HistoryEntry::new(cx.now, message);
            if let Some(d) = data {
                crate::qless::merge_log_data(&mut entry.extra, d);
            }
            cx.history(jid, entry)?;
            Ok(Reply::Nil)
        }
        Command::MultiGet { jids } => {
            let mut out = Vec::new();
            for jid in jids {
                if let Some(rec) = cx.tx.job_get(jid)? {
                    out.push(cx.view(rec)?);
                }
            }
            Ok(Reply::Jobs(out))
        }
        Command::Pause { queues } => {
            for q in queues {
                cx.tx.queue_set_paused(q, true)?;
            }
            Ok(Reply::Nil)
        }
        Command::Peek { queue, count } => cx.peek(queue, *count),
        Command::Pop {
            queue,
            worker,
            count,
        } => cx.pop(queue, worker, *count),
        Command::Priority { jid, priority } => {
            let mut rec = cx.must_get("Priority", jid)?;
            rec.priority = *priority;
            if rec.loc == Loc::Work {
                // qless re-scores to exactly the priority, dropping the time
                // component: the job goes ahead of its equals.
                rec.sort_prio = *priority;
                rec.sort_time = Timestamp::ZERO;
            }
            cx.save(&mut rec)?;
            Ok(Reply::Int(*priority))
        }
        Command::Put(p) => cx.put(p),
        Command::Queues { queue } => match queue {
            Some(q) => Ok(Reply::Queue(cx.queue_counts(q)?)),
            None => {
                let mut out = Vec::new();
                for q in cx.tx.queue_list()? {
                    out.push(cx.queue_counts(&q)?);
                }
                Ok(Reply::Queues(out))
            }
        },
        Command::QueueForget { queues } => {
            for q in queues {
                cx.tx.queue_forget(q)?;
            }
            Ok(Reply::Nil)
        }
        Command::Recur(p) => cx.recur(p),
        Command::RecurGet { jid } => Ok(Reply::Recur(cx.tx.recur_get(jid)?)),
        Command::UniqueGet { key } => {
            let holder = match cx.tx.unique_holder(key)? {
                Some(jid) => cx.tx.job_get(&jid)?,
                None => None,
            };
            match holder {
                Some(rec) => Ok(Reply::Job(Some(Box::new(cx.view(rec)?)))),
                None => Ok(Reply::Job(None)),
            }
        }
        Command::RecurTag { jid, tags } => {
            let mut r = cx.must_recur(jid)?;
            for t in tags {
                if !r.tags.contains(t) {
                    r.tags.push(t.clone());
                }
            }
            too_many_tags("Recur.tag", &r.tags)?;
            cx.tx.recur_save(&r)?;
            Ok(Reply::Strings(r.tags))
        }
        Command::RecurUntag { jid, tags } => {
            let mut r = cx.must_recur(jid)?;
            r.tags.retain(|t| !tags.contains(t));
            cx.tx.recur_save(&r)?;
            Ok(Reply::Strings(r.tags))
        }
        Command::RecurUpdate { jid, update } => cx.recur_update(jid, update),
        Command::Release { jid, worker } => cx.release(jid, worker),
        Command::Retry {
            jid,
            queue,
            worker,
            delay,
            group,
            message,
        } => cx.retry(
            jid,
            queue,
            worker,
            *delay,
            group.as_deref(),
            message.as_deref(),
        ),
        Command::Stats { queue, date } => cx.stats(queue, *date),
        Command::TagAdd { jid, tags } => {
            let mut rec = cx.must_get("Tag", jid)?;
            for t in dedup(tags) {
                if !rec.tags.contains(&t) {
                    rec.tags.push(t.clone());
                    cx.tx.tag_count_add(&t, 1)?;
                }
                cx.tx.tag_index_add(&t, jid, cx.now)?;
            }
            too_many_tags("Tag", &rec.tags)?;
            cx.save(&mut rec)?;
            Ok(Reply::Strings(rec.tags))
        }
        Command::TagGet { tag, offset, count } => {
            let (total, jobs) = cx.tx.tag_jobs(tag, *offset, *count)?;
            Ok(Reply::Page { total, jobs })
        }
        Command::TagRemove { jid, tags } => {
            let mut rec = cx.must_get("Tag", jid)?;
            for t in dedup(tags) {
                if let Some(i) = rec.tags.iter().position(|x| *x == t) {
                    rec.tags.remove(i);
                    cx.tx.tag_index_remove(&t, jid)?;
                    cx.tx.tag_count_add(&t, -1)?;
                }
            }
            cx.save(&mut rec)?;
            Ok(Reply::Strings(rec.tags))
        }
        Command::TagTop { offset, count } => Ok(Reply::Strings(cx.tx.tag_top(2, *offset, *count)?)),
        Command::ThrottleSet { .. }
        | Command::ThrottleGet { .. }
        | Command::ThrottleDelete { .. }
        | Command::ThrottleList => cx.throttle_command(command),
        Command::Timeout { jids } => cx.timeout(jids),
        Command::Track { jid } => {
            cx.must_get("Track", jid)?;
            cx.emit_raw("ql:track", jid);
            let new = cx.tx.tracked_add(jid, cx.now)?;
            Ok(Reply::Int(i64::from(new)))
        }
        Command::Tracked => {
            let mut jobs = Vec::new();
            let mut expired = Vec::new();
            for jid in cx.tx.tracked_list()? {
                match cx.tx.job_get(&jid)? {
                    Some(rec) => jobs.push(cx.view(rec)?),
                    None => expired.push(jid),
                }
            }
            Ok(Reply::Tracked { jobs, expired })
        }
        Command::Unfail {
            queue,
            group,
            count,
        } => cx.unfail(queue, group, *count),
        Command::Unpause { queues } => {
            for q in queues {
                cx.tx.queue_set_paused(q, false)?;
            }
            Ok(Reply::Nil)
        }
        Command::Unrecur { jid } => {
            cx.tx.recur_delete(jid)?;
            Ok(Reply::Bool(true))
        }
        Command::Untrack { jid } => {
            cx.must_get("Track", jid)?;
            cx.emit_raw("ql:untrack", jid);
            let was = cx.tx.tracked_remove(jid)?;
            Ok(Reply::Int(i64::from(was)))
        }
        Command::WorkerDeregister { workers } => {
            for w in workers {
                cx.tx.worker_remove(w)?;
            }
            Ok(Reply::Nil)
        }
        Command::Workers { worker, detail } => cx.workers(worker.as_deref(), *detail),
    }
}

/// Checks a typed command the way the qless parser checks strings, so that
/// callers of the typed API get the same errors.
pub fn validate(command: &Command) -> Result<()> {
    fn name(cmd: &str, arg: &str, v: &str) -> Result<()> {
        if v.is_empty() {
            return Err(Error::invalid(format!("{cmd}(): Arg \"{arg}\" missing")));
        }
        Ok(())
    }
    fn json(cmd: &str, arg: &str, v: &str) -> Result<()> {
        crate::qless::json_text(cmd, arg, v).map(|_| ())
    }
    fn delay(cmd: &str, d: f64) -> Result<()> {
        if !d.is_finite() || d < 0.0 {
            return Err(Error::invalid(format!(
                "{cmd}(): Arg \"delay\" must not be negative: {d}"
            )));
        }
        Ok(())
    }
    match command {
        Command::Put(p) => {
            let c = if p.must_exist { "Requeue" } else { "Put" };
            name(c, "worker", &p.worker)?;
            name(c, "queue", &p.queue)?;
            name(c, "jid", &p.jid)?;
            name(c, "klass", &p.klass)?;
            if let Some(b) = &p.batch {
                name(c, "batch", b)?;
            }
            json(c, "data", &p.data)?;
            delay(c, p.delay)?;
            if p.retries.is_some_and(|r| r < 0) {
                return Err(Error::invalid(format!(
                    "{c}(): Arg \"retries\" must not be negative"
                )));
            }
            if let Some(u) = &p.unique {
                crate::unique::validate_key(c, &u.key)?;
            }
            if p.throttles
                .as_ref()
                .is_some_and(|t| t.iter().any(String::is_empty))
            {
                return Err(Error::invalid(format!(
                    "{c}(): Arg \"throttles\": a throttle name must not be empty"
                )));
            }
            if p.depends.as_ref().is_some_and(|d| d.contains(&p.jid)) {
                return Err(Error::invalid(format!(
                    "{c}(): Arg \"depends\": job {} cannot depend on itself",
                    p.jid
                )));
            }
        }
        Command::Complete(p) => {
            name("Complete", "jid", &p.jid)?;
            name("Complete", "worker", &p.worker)?;
            name("Complete", "queue", &p.queue)?;
            json("Complete", "data", &p.data)?;
            delay("Complete", p.delay)?;
            if p.next.is_none() && (p.delay > 0.0 || !p.depends.is_empty()) {
                return Err(Error::invalid(
                    "Complete(): \"delay\" and \"depends\" can only be used with \"next\"",
                ));
            }
        }
        Command::Batch { commands, .. }
            if commands.iter().any(|c| matches!(c, Command::Batch { .. })) =>
        {
            return Err(Error::invalid("Batch(): batches do not nest"));
        }
        Command::BatchCreate(p) => batches::validate_create(p)?,
        Command::BatchGet { id } | Command::BatchCancel { id } | Command::BatchJobs { id, .. } => {
            name("Batch", "id", id)?
        }
        Command::ThrottleSet { name: n, max, rate } => {
            name("Throttle.set", "name", n)?;
            if *max < 0 {
                return Err(Error::invalid(format!(
                    "Throttle.set(): Arg \"max\" must not be negative: {max}"
                )));
            }
            throttle::validate_rate(rate.as_ref())?;
        }
        Command::ThrottleGet { name: n } => name("Throttle.get", "name", n)?,
        Command::ThrottleDelete { name: n } => name("Throttle.delete", "name", n)?,
        Command::Pop { queue, worker, .. } => {
            name("Pop", "queue", queue)?;
            name("Pop", "worker", worker)?;
        }
        Command::Heartbeat { data: Some(d), .. } => json("Heartbeat", "data", d)?,
        Command::Fail { data: Some(d), .. } => json("Fail", "data", d)?,
        Command::Retry { delay: d, .. } => delay("Retry", *d)?,
        Command::UniqueGet { key } => crate::unique::validate_key("Unique.get", key)?,
        Command::Recur(p) => {
            name("Recur", "queue", &p.queue)?;
            name("Recur", "jid", &p.jid)?;
            name("Recur", "klass", &p.klass)?;
            json("Recur", "data", &p.data)?;
            if p.cron.is_some() || p.timezone.is_some() || p.missed != Default::default() {
                crate::cron::validate_recur(p)?;
            } else if !(p.interval > 0.0 && p.interval.is_finite()) {
                return Err(Error::invalid(format!(
                    "Recur(): Arg \"interval\" must be greater than 0: {}",
                    p.interval
                )));
            }
            if !p.offset.is_finite() {
                return Err(Error::invalid("Recur(): Arg \"offset\" not a number"));
            }
        }
        Command::RecurUpdate { update, .. } => {
            if let Some(d) = &update.data {
                json("Recur.update", "data", d)?;
            }
            if update.interval.is_some_and(|i| !(i > 0.0 && i.is_finite())) {
                return Err(Error::invalid(
                    "Recur.update(): Arg \"interval\" must be greater than 0",
                ));
            }
            crate::cron::validate_update(update)?;
        }
        _ => {}
    }
    crate::limits::check(command)
}

/// The user's part of `metadata`: keys starting with `_` are the system's
/// and are dropped.
fn user_metadata(metadata: &Map<String, Value>) -> Map<String, Value> {
    metadata
        .iter()
        .filter(|(k, _)| !k.starts_with('_'))
        .map(|(k, v)| (k.clone(), v.clone()))
        .collect()
}

/// A failure as a lifecycle error: the group is the class; the message's
/// first line is the message and the rest, if any, the backtrace.
fn split_error(group: &str, message: &str) -> LifecycleError {
    let (first, rest) = match message.split_once('\n') {
        Some((a, b)) if !b.trim().is_empty() => (a, Some(b.to_owned())),
        _ => (message, None),
    };
    LifecycleError {
        class: group.to_owned(),
        message: first.to_owned(),
        backtrace: rest,
    }
}

/// Refuses a job or recurring job that would carry more than
/// [`crate::limits::MAX_TAGS`] tags after adding some.
fn too_many_tags(cmd: &str, tags: &[String]) -> Result<()> {
    if tags.len() > crate::limits::MAX_TAGS {
        return Err(Error::invalid(format!(
            "{cmd}(): the job would have {} tags, at most {} allowed",
            tags.len(),
            crate::limits::MAX_TAGS
        )));
    }
    Ok(())
}

fn dedup(items: &[String]) -> Vec<String> {
    let mut out: Vec<String> = Vec::with_capacity(items.len());
    for i in items {
        if !out.contains(i) {
            out.push(i.clone());
        }
    }
    out
}

/// The channel of lifecycle events in the store's event log (not a qless
/// channel: the qless events endpoint leaves it out).
pub const LIFECYCLE_CHANNEL: &str = "clew:lifecycle";

/// One command's working context.
struct Cx<'a> {
    tx: &'a mut dyn Tx,
    now: Timestamp,
    origin: &'a Origin,
    events: &'a mut Vec<PendingEvent>,
}

impl Cx<'_> {
    // --- small helpers --------------------------------------------------

    fn emit(&mut self, channel: &str, payload: Value) {
        self.events.push(PendingEvent {
            channel: channel.to_owned(),
            message: payload.to_string(),
        });
    }

    /// Emits `{"jid", "event", "queue"}` on `ql:log`, the text written
    /// directly: the same bytes as `emit` of the `json!` object, without
    /// building it (one a put and one a complete).
    fn log_step(&mut self, jid: &str, event: &str, queue: &str) {
        self.events.push(PendingEvent {
            channel: "ql:log".to_owned(),
            message: step_log_json(jid, event, queue),
        });
    }

    fn emit_raw(&mut self, channel: &str, message: &str) {
        self.events.push(PendingEvent {
            channel: channel.to_owned(),
            message: message.to_owned(),
        });
    }

    /// Emits a resque-clues lifecycle event for `rec` in `queue`.
    fn lifecycle(
        &mut self,
        kind: LifecycleKind,
        rec: &JobRecord,
        queue: &str,
        time_in_queue: Option<f64>,
        time_to_perform: Option<f64>,
        error: Option<LifecycleError>,
    ) {
        // The payload is valid JSON (checked at put); as a raw value it is
        // written as stored, without a parse into a tree and a print.
        let null = serde_json::value::RawValue::NULL;
        let args: &serde_json::value::RawValue = serde_json::from_str(&rec.data).unwrap_or(null);
        let event = crate::lifecycle::LifecycleEventRef {
            seq: 0,
            kind,
            at: self.now,
            jid: &rec.jid,
            queue,
            klass: &rec.klass,
            args,
            metadata: &rec.metadata,
            origin: self.origin,
            time_in_queue,
            time_to_perform,
            error: error.as_ref(),
        };
        let message = event.to_json();
        self.events.push(PendingEvent {
            channel: LIFECYCLE_CHANNEL.to_owned(),
            message,
        });
    }

    fn lock_lost(&mut self, jid: &str, worker: &str) {
        let payload = json!({"jid": jid, "event": "lock_lost", "worker": worker});
        self.emit(&format!("ql:w:{worker}"), payload.clone());
        self.emit("ql:log", payload);
    }

    /// A numeric config value, or `default` when unset or not a number.
    fn config_num(&mut self, key: &str, default: f64) -> Result<f64> {
        Ok(self
            .tx
            .config_get(key)?
            .and_then(|v| v.trim().parse::<f64>().ok())
            .filter(|v| v.is_finite())
            .unwrap_or(default))
    }

    fn heartbeat_for(&mut self, queue: &str) -> Result<f64> {
        let global = self.config_num("heartbeat", 60.0)?;
        self.config_num(&format!("{queue}-heartbeat"), global)
    }

    fn must_get(&mut self, cmd: &str, jid: &str) -> Result<JobRecord> {
        self.tx
            .job_get(jid)?
            .ok_or_else(|| Error::not_found(format!("{cmd}(): Job {jid} does not exist")))
    }

    fn must_recur(&mut self, jid: &str) -> Result<RecurRecord> {
        self.tx
            .recur_get(jid)?
            .ok_or_else(|| Error::not_found(format!("Recur(): No recurring job {jid}")))
    }

    fn tracked(&mut self, jid: &str) -> Result<bool> {
        self.tx.tracked_has(jid)
    }

    /// Appends a history entry, keeping the first entry and the newest ones
    /// within `max-job-history` (§3.1).
    fn history(&mut self, jid: &str, entry: HistoryEntry) -> Result<()> {
        self.tx.history_append(jid, &entry)?;
        let cap = self.config_num("max-job-history", config::MAX_JOB_HISTORY as f64)? as i64;
        if cap > 0 && self.tx.history_count(jid)? > cap {
            self.tx.history_trim(jid, (cap - 1).max(0))?;
        }
        Ok(())
    }

    fn view(&mut self, record: JobRecord) -> Result<Job> {
        let jid = record.jid.clone();
        Ok(Job {
            history: self.tx.history_list(&jid)?,
            tracked: self.tx.tracked_has(&jid)?,
            dependencies: self.tx.deps_of(&jid)?,
            dependents: self.tx.dependents_of(&jid)?,
            record,
        })
    }

    fn views(&mut self, jids: Vec<String>) -> Result<Vec<Job>> {
        let mut out = Vec::with_capacity(jids.len());
        for jid in jids {
            if let Some(rec) = self.tx.job_get(&jid)? {
                out.push(self.view(rec)?);
            }
        }
        Ok(out)
    }

    /// Places a job at the back of its priority in the work list.
    fn place_work(&mut self, rec: &mut JobRecord, at: Timestamp) -> Result<()> {
        rec.loc = Loc::Work;
        rec.sort_prio = rec.priority;
        rec.sort_time = at;
        rec.seq = self.tx.seq_next()?;
        Ok(())
    }

    fn place(&mut self, rec: &mut JobRecord, loc: Loc, at: Timestamp) -> Result<()> {
        rec.loc = loc;
        rec.sort_prio = 0;
        rec.sort_time = at;
        rec.seq = self.tx.seq_next()?;
        Ok(())
    }

    fn record_stat(&mut self, queue: &str, kind: StatKind, secs: f64) -> Result<()> {
        let day = self.now.day();
        self.tx.stats_timing_add(queue, day, kind, secs)?;
        self.tx
            .stats_hist_add(queue, day, kind, &stats::bucket(secs))
    }

    fn count(&mut self, queue: &str, day: Timestamp, counter: Counter, delta: i64) -> Result<()> {
        self.tx.stats_counter_add(queue, day, counter, delta)
    }

    fn remove_tags(&mut self, rec: &JobRecord) -> Result<()> {
        for t in &rec.tags {
            self.tx.tag_index_remove(t, &rec.jid)?;
            self.tx.tag_count_add(t, -1)?;
        }
        Ok(())
    }

    /// Takes a failed job off its failure list and un-counts it from the
    /// `failed` stat of the day (and queue) it failed in.
    fn unlist_failure(&mut self, rec: &mut JobRecord) -> Result<()> {
        if rec.fail_group.take().is_some() {
            let day = rec.failure.as_ref().map_or(self.now, |f| f.when).day();
            let queue = rec.queue.clone();
            self.count(&queue, day, Counter::Failed, -1)?;
        }
        rec.fail_seq = 0;
        Ok(())
    }

    /// Marks a job failed into `group` and lists it there (newest first).
    fn fail_into(
        &mut self,
        rec: &mut JobRecord,
        group: &str,
        message: &str,
        worker: &str,
    ) -> Result<()> {
        rec.loc = Loc::None;
        rec.sort_prio = 0;
        rec.sort_time = self.now;
        rec.state = JobState::Failed;
        rec.worker = String::new();
        rec.worker_listed = false;
        rec.expires = Timestamp::ZERO;
        rec.grace = false;
        rec.failure = Some(Failure {
            group: group.to_owned(),
            message: message.to_owned(),
            when: self.now,
            worker: worker.to_owned(),
        });
        rec.fail_group = Some(group.to_owned());
        rec.fail_seq = self.tx.seq_next()?;
        let queue = rec.queue.clone();
        let day = self.now.day();
        self.count(&queue, day, Counter::Failures, 1)?;
        self.count(&queue, day, Counter::Failed, 1)
    }

    /// Deletes a job and everything hanging off it except dependency edges
    /// and tracking (§9: expiry; cancel unlinks edges itself).
    /// Saves a job row. Every job write of the logic passes through here,
    /// so what follows a job's state and placement follows every change:
    /// its batch's counters (`batches.rs`) before the write, its throttle
    /// slots and their waiting jobs (`throttle.rs`) after it.
    fn save(&mut self, rec: &mut JobRecord) -> Result<()> {
        self.batch_track(rec)?;
        self.tx.job_save(rec)?;
        self.throttle_track(rec)
    }

    fn delete_job(&mut self, rec: &JobRecord) -> Result<()> {
        self.remove_tags(rec)?;
        if !rec.throttles.is_empty() {
            self.throttle_release(&rec.jid)?;
        }
        self.tx.history_delete(&rec.jid)?;
        self.tx.job_delete(&rec.jid)
    }

    // --- put / requeue (§7.1, §7.2) ------------------------------------

    fn put(&mut self, p: &PutParams) -> Result<Reply> {
        let now = self.now;
        let existing = self.tx.job_get(&p.jid)?;
        if p.must_exist && existing.is_none() {
            return Err(Error::not_found(format!(
                "Requeue(): Job {} does not exist",
                p.jid
            )));
        }
        if let Some(holder) = self.unique_conflict(p, existing.as_ref())? {
            return self.unique_resolve(p, holder);
        }
        let priority = p
            .priority
            .or(existing.as_ref().map(|e| e.priority))
            .unwrap_or(0);
        let tags = match (&p.tags, &existing) {
            (Some(t), _) => dedup(t),
            (None, Some(e)) => e.tags.clone(),
            (None, None) => Vec::new(),
        };
        let retries = p
            .retries
            .or(existing.as_ref().map(|e| e.retries))
            .unwrap_or(5);

        let throttles = match (&p.throttles, &existing) {
            (Some(t), _) => dedup(t),
            (None, Some(e)) => e.throttles.clone(),
            (None, None) => Vec::new(),
        };
        let created = existing.is_none();
        let mut rec = match existing {
            Some(old) => {
                self.remove_tags(&old)?;
                if !old.throttles.is_empty() {
                    // Out of the lock set or the throttled placement.
                    self.throttle_release(&old.jid)?;
                }
                old
            }
            None => JobRecord {
                jid: p.jid.clone(),
                klass: p.klass.clone(),
                queue: p.queue.clone(),
                state: JobState::Waiting,
                data: p.data.clone(),
                priority,
                tags: Vec::new(),
                worker: String::new(),
                expires: Timestamp::ZERO,
                retries,
                remaining: retries,
                time: now,
                grace: false,
                scheduled: None,
                failure: None,
                spawned_from: None,
                worker_listed: false,
                fail_group: None,
                fail_seq: 0,
                loc: Loc::None,
                sort_prio: 0,
                sort_time: now,
                seq: 0,
                metadata: Map::new(),
                unique_key: None,
                batch: None,
                batch_outcome: Default::default(),
                throttles: Vec::new(),
            },
        };
        // Whether the job held its key before this put (then it still does).
        let held_key = !created && crate::unique::holds_key(rec.state);
        if let Some(b) = &p.batch {
            self.batch_join(&mut rec, b)?;
        }
        self.log_step(&p.jid, "put", &p.queue);
        let entry = HistoryEntry::new(now, "put").with("q", p.queue.clone());
        if created {
            // A new job has no history: one entry needs no cap check.
            self.tx.history_append_first(&p.jid, &entry)?;
        } else {
            self.history(&p.jid, entry)?;
        }
        if !rec.worker.is_empty() {
            rec.worker_listed = false;
            if rec.worker != p.worker {
                let old = rec.worker.clone();
                self.lock_lost(&p.jid, &old);
            }
        }
        for t in &tags {
            self.tx.tag_index_add(t, &p.jid, now)?;
            self.tx.tag_count_add(t, 1)?;
        }
        if rec.state == JobState::Failed {
            self.unlist_failure(&mut rec)?;
        }
        rec.klass = p.klass.clone();
        rec.queue = p.queue.clone();
        rec.data = p.data.clone();
        rec.priority = priority;
        rec.tags = tags;
        rec.throttles = throttles;
        rec.worker = String::new();
        rec.worker_listed = false;
        rec.expires = Timestamp::ZERO;
        rec.retries = retries;
        rec.remaining = retries;
        rec.time = now;
        rec.grace = false;
        rec.scheduled = None;
        if let Some(m) = &p.metadata {
            rec.metadata = user_metadata(m);
        }
        match &p.unique {
            // Checked free by `unique_conflict`.
            Some(u) => rec.unique_key = Some(u.key.clone()),
            None if !held_key => self.claim_key(&mut rec)?,
            None => {}
        }

        if let Some(deps) = &p.depends {
            let wanted = dedup(deps);
            for old in self.tx.deps_of(&p.jid)? {
                if !wanted.contains(&old) {
                    self.tx.dep_remove(&p.jid, &old)?;
                }
            }
            for d in wanted {
                if let Some(dj) = self.tx.job_get(&d)? {
                    if dj.state != JobState::Complete {
                        self.tx.dep_add(&p.jid, &d)?;
                    }
                }
            }
        }
        let waiting_on = !self.tx.deps_of(&p.jid)?.is_empty();
        let run_at = now.add_secs(p.delay);
        if waiting_on {
            rec.state = JobState::Depends;
            if p.delay > 0.0 {
                rec.scheduled = Some(run_at);
            }
            self.place(&mut rec, Loc::Depends, now)?;
        } else if p.delay > 0.0 {
            rec.state = JobState::Scheduled;
            self.place(&mut rec, Loc::Scheduled, run_at)?;
        } else {
            rec.state = JobState::Waiting;
            self.place_work(&mut rec, now)?;
        }
        self.save(&mut rec)?;
        self.tx.queue_register(&p.queue, now)?;
        if self.tracked(&p.jid)? {
            self.emit_raw("ql:put", &p.jid);
        }
        self.lifecycle(LifecycleKind::Enqueued, &rec, &p.queue, None, None, None);
        Ok(Reply::Str(p.jid.clone()))
    }

    // --- uniqueness keys (crate::unique) --------------------------------

    /// The live job other than `p.jid` holding the key `p` asks for, if
    /// any. A put without `unique` asks for none (a key it inherits is
    /// checked by [`Cx::claim_key`]).
    fn unique_conflict(
        &mut self,
        p: &PutParams,
        existing: Option<&JobRecord>,
    ) -> Result<Option<String>> {
        let Some(u) = &p.unique else {
            return Ok(None);
        };
        // A live job holding the key itself needs no look-up.
        if existing.is_some_and(|e| {
            e.unique_key.as_deref() == Some(u.key.as_str()) && crate::unique::holds_key(e.state)
        }) {
            return Ok(None);
        }
        Ok(self.tx.unique_holder(&u.key)?.filter(|h| *h != p.jid))
    }

    /// A put whose key `holder` holds, as its policy says.
    fn unique_resolve(&mut self, p: &PutParams, holder: String) -> Result<Reply> {
        let c = if p.must_exist { "Requeue" } else { "Put" };
        let u = p.unique.as_ref().expect("a conflict needs a key");
        match u.on_conflict {
            OnConflict::Existing => Ok(Reply::Str(holder)),
            OnConflict::Refuse => Err(crate::unique::refused(c, &p.jid, &u.key, &holder)),
            OnConflict::Replace => {
                let mut rec = self.must_get(c, &holder)?;
                if rec.state == JobState::Running {
                    return Err(crate::unique::running(c, &p.jid, &u.key, &holder));
                }
                rec.data = p.data.clone();
                if let Some(m) = &p.metadata {
                    rec.metadata = user_metadata(m);
                }
                self.history(
                    &holder,
                    HistoryEntry::new(self.now, "replaced").with("unique_key", u.key.clone()),
                )?;
                self.save(&mut rec)?;
                self.emit(
                    "ql:log",
                    json!({"jid": holder, "event": "replaced", "unique_key": u.key}),
                );
                Ok(Reply::Str(holder))
            }
        }
    }

    /// A job becoming live again (re-put without `unique`, unfail) keeps
    /// its key unless another live job holds it; then it drops the key,
    /// with a `unique-dropped` history entry naming the holder.
    fn claim_key(&mut self, rec: &mut JobRecord) -> Result<()> {
        let Some(key) = rec.unique_key.clone() else {
            return Ok(());
        };
        if let Some(holder) = self.tx.unique_holder(&key)? {
            if holder != rec.jid {
                rec.unique_key = None;
                let entry = HistoryEntry::new(self.now, "unique-dropped")
                    .with("unique_key", key)
                    .with("holder", holder);
                self.history(&rec.jid, entry)?;
            }
        }
        Ok(())
    }

    // --- pop / peek (§7.3, §7.4, §8) -----------------------------------

    fn pop(&mut self, queue: &str, worker: &str, count: i64) -> Result<Reply> {
        let now = self.now;
        if self.tx.queue_paused(queue)? {
            return Ok(Reply::Jobs(Vec::new()));
        }
        self.tx.worker_touch(worker, now)?;
        let mut count = count.max(0);
        let max = self.config_num(&format!("{queue}-max-concurrency"), 0.0)? as i64;
        if max > 0 {
            let running = self
                .tx
                .job_count(queue, Loc::Locked, TimeRange::from(now))?;
            count = count.min(max - running);
            if count <= 0 {
                return Ok(Reply::Jobs(Vec::new()));
            }
        }

        // 1. Lock invalidation: expired locks get a courtesy step (grace
        //    period) first, then are handed over or failed (§8).
        let mut handed: Vec<JobRecord> = Vec::new();
        let grace = self.config_num("grace-period", 10.0)?;
        // A placement value per job it may hand out, taken with the
        // listing below (unused ones are skipped).
        self.tx.seq_reserve(usize::try_from(count).unwrap_or(0))?;
        for mut rec in
            self.tx
                .job_list_records(queue, Loc::Locked, TimeRange::up_to(now), 0, count)?
        {
            let jid = rec.jid.clone();
            rec.worker_listed = false;
            if !rec.grace || grace <= 0.0 {
                if self.tracked(&jid)? {
                    self.emit_raw("ql:stalled", &jid);
                }
                self.history(&jid, HistoryEntry::new(now, "timed-out"))?;
                rec.grace = true;
                let old = rec.worker.clone();
                self.lock_lost(&jid, &old);
                rec.expires = now.add_secs(grace);
                rec.sort_time = rec.expires;
                self.count(queue, now.day(), Counter::Retries, 1)?;
                if grace > 0.0 {
                    self.save(&mut rec)?;
                    continue;
                }
            }
            rec.grace = false;
            rec.remaining -= 1;
            if rec.remaining < 0 {
                let group = format!("failed-retries-{queue}");
                let message = format!("Job exhausted retries in queue \"{queue}\"");
                let old = rec.worker.clone();
                self.history(
                    &jid,
                    HistoryEntry::new(now, "failed").with("group", group.clone()),
                )?;
                self.fail_into(&mut rec, &group, &message, "")?;
                if self.tracked(&jid)? {
                    self.emit_raw("ql:failed", &jid);
                }
                self.emit(
                    "ql:log",
                    json!({"jid": jid, "event": "failed", "group": group, "worker": old, "message": message}),
                );
                self.save(&mut rec)?;
                let ran = now.secs_since(rec.time).max(0.0);
                let error = LifecycleError {
                    class: group.clone(),
                    message: message.clone(),
                    backtrace: None,
                };
                self.lifecycle(
                    LifecycleKind::Failed,
                    &rec,
                    queue,
                    None,
                    Some(ran),
                    Some(error),
                );
                continue;
            }
            handed.push(rec);
        }

        // 2-4. Recurring spawns, scheduled promotion, then the work list.
        let need = count - handed.len() as i64;
        if need > 0 {
            self.spawn_recurring(queue, need)?;
            self.promote_scheduled(queue, need)?;
            self.throttle_rate_wake()?;
            self.take_work(queue, count, &mut handed)?;
        }

        let hb = self.heartbeat_for(queue)?;
        self.tx.seq_reserve(handed.len())?;
        let mut out = Vec::with_capacity(handed.len());
        for mut rec in handed {
            let jid = rec.jid.clone();
            self.history(
                &jid,
                HistoryEntry::new(now, "popped").with("worker", worker),
            )?;
            let waited = now.secs_since(rec.time);
            self.record_stat(queue, StatKind::Wait, waited)?;
            self.lifecycle(
                LifecycleKind::Dequeued,
                &rec,
                queue,
                Some(waited.max(0.0)),
                None,
                None,
            );
            self.lifecycle(LifecycleKind::PerformStarted, &rec, queue, None, None, None);
            rec.time = now;
            rec.worker = worker.to_owned();
            rec.worker_listed = true;
            rec.expires = now.add_secs(hb);
            rec.state = JobState::Running;
            let expires = rec.expires;
            self.place(&mut rec, Loc::Locked, expires)?;
            self.save(&mut rec)?;
            if self.tracked(&jid)? {
                self.emit_raw("ql:popped", &jid);
            }
            out.push(self.view(rec)?);
        }
        Ok(Reply::Jobs(out))
    }

    fn peek(&mut self, queue: &str, count: i64) -> Result<Reply> {
        let count = count.max(0);
        let mut jids =
            self.tx
                .job_list(queue, Loc::Locked, TimeRange::up_to(self.now), 0, count)?;
        let need = count - jids.len() as i64;
        if need > 0 {
            self.spawn_recurring(queue, need)?;
            self.promote_scheduled(queue, need)?;
            self.throttle_rate_wake()?;
            jids.extend(
                self.tx
                    .job_list(queue, Loc::Work, TimeRange::ALL, 0, need)?,
            );
        }
        Ok(Reply::Jobs(self.views(jids)?))
    }

    /// Moves up to `limit` due scheduled jobs into the work list at `now`.
    fn promote_scheduled(&mut self, queue: &str, limit: i64) -> Result<()> {
        let now = self.now;
        for jid in self
            .tx
            .job_list(queue, Loc::Scheduled, TimeRange::up_to(now), 0, limit)?
        {
            if let Some(mut rec) = self.tx.job_get(&jid)? {
                rec.state = JobState::Waiting;
                self.place_work(&mut rec, now)?;
                self.save(&mut rec)?;
            }
        }
        Ok(())
    }

    /// Spawns up to `limit` children of due recurring templates (§7.9).
    fn spawn_recurring(&mut self, queue: &str, limit: i64) -> Result<()> {
        let now = self.now;
        let mut moved = 0;
        for tjid in self.tx.recur_list(queue, TimeRange::up_to(now), 0, limit)? {
            let Some(mut r) = self.tx.recur_get(&tjid)? else {
                continue;
            };
            if r.cron.is_some() {
                // One child at most per template and call (crate::cron).
                if let Some(tick) = crate::cron::due_tick(&mut r, now)? {
                    r.count += 1;
                    moved += 1;
                    self.spawn_child(&r, tick)?;
                }
                self.tx.recur_save(&r)?;
                if moved >= limit {
                    break;
                }
                continue;
            }
            let step = (r.interval * 1_000_000.0).round() as i64;
            let mut score = r.next_at;
            if r.backlog != 0 {
                let behind = now.secs_since(score) / r.interval;
                if behind > r.backlog as f64 {
                    let skip = (behind - r.backlog as f64).ceil() as i64;
                    score = Timestamp(score.0.saturating_add(skip.saturating_mul(step)));
                }
            }
            while score <= now && moved < limit {
                r.count += 1;
                moved += 1;
                self.spawn_child(&r, score)?;
                score = Timestamp(score.0.saturating_add(step));
            }
            r.next_at = score;
            self.tx.recur_save(&r)?;
            if moved >= limit {
                break;
            }
        }
        Ok(())
    }

    // --- running jobs (§7.5–§7.8, §7.13) ---------------------------------

    fn heartbeat(&mut self, jid: &str, worker: &str, data: Option<&str>) -> Result<Reply> {
        let mut rec = self.must_get("Heartbeat", jid)?;
        if rec.state != JobState::Running {
            return Err(Error::conflict(format!(
                "Heartbeat(): Job {jid} not currently running: {}",
                rec.state
            )));
        }
        if rec.worker.is_empty() || rec.worker != worker {
            return Err(Error::conflict(format!(
                "Heartbeat(): Job {jid} given out to another worker: {}",
                rec.worker
            )));
        }
        let hb = self.heartbeat_for(&rec.queue.clone())?;
        let expires = self.now.add_secs(hb);
        rec.expires = expires;
        rec.sort_time = expires;
        rec.worker_listed = true;
        if let Some(d) = data {
            rec.data = d.to_owned();
        }
        self.save(&mut rec)?;
        self.tx.worker_touch(worker, self.now)?;
        Ok(Reply::Expiry(expires))
    }

    fn check_running(&mut self, cmd: &str, jid: &str, worker: &str) -> Result<JobRecord> {
        let rec = self.must_get(cmd, jid)?;
        if rec.state != JobState::Running {
            let wording = if cmd == "Fail" {
                "not currently running"
            } else {
                "is not currently running"
            };
            return Err(Error::conflict(format!(
                "{cmd}(): Job {jid} {wording}: {}",
                rec.state
            )));
        }
        if rec.worker != worker {
            let wording = match cmd {
                "Complete" => "has been handed out to another worker",
                "Fail" => "running with another worker",
                _ => "has been given to another worker",
            };
            return Err(Error::conflict(format!(
                "{cmd}(): Job {jid} {wording}: {}",
                rec.worker
            )));
        }
        Ok(rec)
    }

    fn complete(&mut self, p: &CompleteParams) -> Result<Reply> {
        let now = self.now;
        let mut rec = self.check_running("Complete", &p.jid, &p.worker)?;
        if rec.queue != p.queue {
            return Err(Error::conflict(format!(
                "Complete(): Job {} running in another queue: {}",
                p.jid, rec.queue
            )));
        }
        let jid = p.jid.clone();
        self.history(&jid, HistoryEntry::new(now, "done"))?;
        rec.data = p.data.clone();
        if let Some(m) = &p.metadata {
            rec.metadata.extend(user_metadata(m));
        }
        let ran = now.secs_since(rec.time);
        let queue = rec.queue.clone();
        self.record_stat(&queue, StatKind::Run, ran)?;
        self.lifecycle(
            LifecycleKind::PerformFinished,
            &rec,
            &queue,
            None,
            Some(ran.max(0.0)),
            None,
        );
        rec.time = now;
        rec.worker = String::new();
        rec.worker_listed = false;
        rec.expires = Timestamp::ZERO;
        rec.failure = None;
        rec.remaining = rec.retries;
        rec.grace = false;
        if self.tracked(&jid)? {
            self.emit_raw("ql:completed", &jid);
        }

        if let Some(next) = &p.next {
            self.emit(
                "ql:log",
                json!({"jid": jid, "event": "advanced", "queue": queue, "to": next}),
            );
            self.history(&jid, HistoryEntry::new(now, "put").with("q", next.clone()))?;
            self.tx.queue_register(next, now)?;
            rec.queue = next.clone();
            for d in dedup(&p.depends) {
                if d == jid {
                    continue;
                }
                if let Some(dj) = self.tx.job_get(&d)? {
                    if dj.state != JobState::Complete {
                        self.tx.dep_add(&jid, &d)?;
                    }
                }
            }
            let run_at = now.add_secs(p.delay);
            let state = if !self.tx.deps_of(&jid)?.is_empty() {
                rec.scheduled = (p.delay > 0.0).then_some(run_at);
                self.place(&mut rec, Loc::Depends, now)?;
                JobState::Depends
            } else if p.delay > 0.0 {
                self.place(&mut rec, Loc::Scheduled, run_at)?;
                JobState::Scheduled
            } else {
                self.place_work(&mut rec, now)?;
                JobState::Waiting
            };
            rec.state = state;
            self.save(&mut rec)?;
            self.lifecycle(LifecycleKind::Enqueued, &rec, next, None, None, None);
            return Ok(Reply::Str(state.as_str().to_owned()));
        }

        self.log_step(&jid, "completed", &queue);
        rec.state = JobState::Complete;
        rec.queue = String::new();
        self.place(&mut rec, Loc::Complete, now)?;
        self.save(&mut rec)?;
        self.expire_completed()?;
        for dependent in self.tx.dependents_of(&jid)? {
            self.tx.dep_remove(&dependent, &jid)?;
            if !self.tx.deps_of(&dependent)?.is_empty() {
                continue;
            }
            if let Some(mut d) = self.tx.job_get(&dependent)? {
                if d.state != JobState::Depends {
                    continue;
                }
                match d.scheduled.take() {
                    Some(at) => {
                        d.state = JobState::Scheduled;
                        self.place(&mut d, Loc::Scheduled, at)?;
                    }
                    None => {
                        d.state = JobState::Waiting;
                        self.place_work(&mut d, now)?;
                    }
                }
                self.save(&mut d)?;
            }
        }
        Ok(Reply::Str("complete".to_owned()))
    }

    /// Deletes completed jobs beyond `jobs-history` seconds and beyond the
    /// newest `jobs-history-count` (§9).
    /// [`Command::Batch`]: each command through [`apply`]; a non-atomic
    /// batch runs each in a savepoint and keeps refusals as results (a store
    /// failure still fails the whole batch).
    fn batch(&mut self, commands: &[Command], atomic: bool) -> Result<Reply> {
        let jids: Vec<&str> = commands.iter().filter_map(prefetch_hint).collect();
        if jids.len() > 1 {
            self.tx.prefetch_jobs(&jids)?;
        }
        let mut results = Vec::with_capacity(commands.len());
        for command in commands {
            if atomic {
                results.push(Ok(apply(
                    &mut *self.tx,
                    self.now,
                    self.origin,
                    command,
                    self.events,
                )?));
                continue;
            }
            let mark = self.events.len();
            self.tx.savepoint()?;
            match apply(&mut *self.tx, self.now, self.origin, command, self.events) {
                Ok(reply) => {
                    self.tx.savepoint_release()?;
                    results.push(Ok(reply));
                }
                Err(e) => {
                    self.tx.savepoint_rollback()?;
                    self.events.truncate(mark);
                    if e.kind() == ErrorKind::Store {
                        return Err(e);
                    }
                    results.push(Err(e));
                }
            }
        }
        Ok(Reply::Batch(results))
    }

    fn expire_completed(&mut self) -> Result<()> {
        let age = self.config_num("jobs-history", 604_800.0)?;
        let cutoff = self.now.add_secs(-age);
        let mut doomed = self
            .tx
            .job_list("", Loc::Complete, TimeRange::up_to(cutoff), 0, ALL)?;
        let keep = self.config_num("jobs-history-count", 50_000.0)?.max(0.0) as i64;
        // Past the count limit, the oldest beyond it (read from the old end:
        // the counter makes this O(excess), not O(completed)).
        let past_age = doomed.len() as i64;
        let excess = self.tx.complete_count()? - past_age - keep;
        if excess > 0 {
            doomed.extend(
                self.tx
                    .job_list("", Loc::Complete, TimeRange::ALL, past_age, excess)?,
            );
        }
        for jid in doomed {
            if let Some(rec) = self.tx.job_get(&jid)? {
                if rec.state == JobState::Complete {
                    self.delete_job(&rec)?;
                }
            }
        }
        Ok(())
    }

    fn fail(
        &mut self,
        jid: &str,
        worker: &str,
        group: &str,
        message: &str,
        data: Option<&str>,
        metadata: Option<&Map<String, Value>>,
    ) -> Result<Reply> {
        let mut rec = self.check_running("Fail", jid, worker)?;
        self.emit(
            "ql:log",
            json!({"jid": jid, "event": "failed", "worker": worker, "group": group, "message": message}),
        );
        if self.tracked(jid)? {
            self.emit_raw("ql:failed", jid);
        }
        self.history(
            jid,
            HistoryEntry::new(self.now, "failed")
                .with("worker", worker)
                .with("group", group),
        )?;
        if let Some(d) = data {
            rec.data = d.to_owned();
        }
        if let Some(m) = metadata {
            rec.metadata.extend(user_metadata(m));
        }
        let ran = self.now.secs_since(rec.time).max(0.0);
        let queue = rec.queue.clone();
        self.lifecycle(
            LifecycleKind::Failed,
            &rec,
            &queue,
            None,
            Some(ran),
            Some(split_error(group, message)),
        );
        self.fail_into(&mut rec, group, message, worker)?;
        self.save(&mut rec)?;
        Ok(Reply::Str(jid.to_owned()))
    }

    fn retry(
        &mut self,
        jid: &str,
        queue: &str,
        worker: &str,
        delay: f64,
        group: Option<&str>,
        message: Option<&str>,
    ) -> Result<Reply> {
        let now = self.now;
        let mut rec = self.check_running("Retry", jid, worker)?;
        if rec.queue != queue {
            return Err(Error::conflict(format!(
                "Retry(): Job {jid} running in another queue: {}",
                rec.queue
            )));
        }
        rec.remaining -= 1;
        rec.grace = false;
        rec.worker_listed = false;
        let remaining = rec.remaining;
        {
            let ran = now.secs_since(rec.time).max(0.0);
            let class = group
                .filter(|g| !g.is_empty())
                .map_or_else(|| format!("{}:retry", rec.klass), str::to_owned);
            let error = split_error(&class, message.unwrap_or("retried"));
            let q = rec.queue.clone();
            self.lifecycle(
                LifecycleKind::Failed,
                &rec,
                &q,
                None,
                Some(ran),
                Some(error),
            );
        }
        if remaining < 0 {
            let group = group
                .filter(|g| !g.is_empty())
                .map(str::to_owned)
                .unwrap_or_else(|| format!("failed-retries-{queue}"));
            let message = message
                .map(str::to_owned)
                .unwrap_or_else(|| format!("Job exhausted retries in queue \"{}\"", rec.queue));
            self.history(
                jid,
                HistoryEntry::new(now, "failed").with("group", group.clone()),
            )?;
            self.fail_into(&mut rec, &group, &message, "")?;
            self.emit(
                "ql:log",
                json!({"jid": jid, "event": "failed", "worker": worker, "group": group, "message": message}),
            );
            if self.tracked(jid)? {
                self.emit_raw("ql:failed", jid);
            }
        } else {
            rec.worker = String::new();
            rec.expires = Timestamp::ZERO;
            if delay > 0.0 {
                rec.state = JobState::Scheduled;
                self.place(&mut rec, Loc::Scheduled, now.add_secs(delay))?;
            } else {
                rec.state = JobState::Waiting;
                self.place_work(&mut rec, now)?;
            }
            if let (Some(g), Some(m)) = (group, message) {
                rec.failure = Some(Failure {
                    group: g.to_owned(),
                    message: m.to_owned(),
                    when: now,
                    worker: worker.to_owned(),
                });
            }
        }
        self.save(&mut rec)?;
        Ok(Reply::Int(remaining))
    }

    /// Hands a running job back to the front of its priority in its queue:
    /// no retry spent, no failure recorded (a worker shutting down).
    fn release(&mut self, jid: &str, worker: &str) -> Result<Reply> {
        let now = self.now;
        let mut rec = self.check_running("Release", jid, worker)?;
        self.history(
            jid,
            HistoryEntry::new(now, "released").with("worker", worker),
        )?;
        self.emit(
            "ql:log",
            json!({"jid": jid, "event": "released", "worker": worker, "queue": rec.queue}),
        );
        rec.state = JobState::Waiting;
        rec.worker = String::new();
        rec.worker_listed = false;
        rec.expires = Timestamp::ZERO;
        rec.grace = false;
        self.place_work(&mut rec, Timestamp::ZERO)?;
        self.save(&mut rec)?;
        Ok(Reply::Str(JobState::Waiting.as_str().to_owned()))
    }

    fn timeout(&mut self, jids: &[String]) -> Result<Reply> {
        let now = self.now;
        for jid in jids {
            let mut rec = self.must_get("Timeout", jid)?;
            if rec.state != JobState::Running {
                return Err(Error::conflict(format!(
                    "Timeout(): Job {jid} not running: {}",
                    rec.state
                )));
            }
            self.history(jid, HistoryEntry::new(now, "timed-out"))?;
            rec.state = JobState::Stalled;
            rec.expires = Timestamp::ZERO;
            rec.worker_listed = false;
            rec.loc = Loc::Work;
            rec.sort_prio = i64::MAX;
            rec.sort_time = now;
            rec.seq = self.tx.seq_next()?;
            self.save(&mut rec)?;
            let old = rec.worker.clone();
            self.lock_lost(jid, &old);
        }
        Ok(Reply::Nil)
    }

    // --- cancel / depends (§7.10, §7.11) ---------------------------------

    fn cancel(&mut self, jids: &[String]) -> Result<Reply> {
        for jid in jids {
            for dependent in self.tx.dependents_of(jid)? {
                if !jids.contains(&dependent) {
                    return Err(Error::conflict(format!(
                        "Cancel(): {jid} is a dependency of {dependent} but is not mentioned to be canceled"
                    )));
                }
            }
        }
        for jid in jids {
            let Some(mut rec) = self.tx.job_get(jid)? else {
                continue;
            };
            if rec.state == JobState::Complete {
                continue;
            }
            let payload =
                json!({"jid": jid, "event": "canceled", "worker": rec.worker, "queue": rec.queue});
            self.emit("ql:log", payload.clone());
            if !rec.worker.is_empty() {
                self.emit(&format!("ql:w:{}", rec.worker), payload);
            }
            if rec.state == JobState::Failed {
                self.unlist_failure(&mut rec)?;
            }
            for d in self.tx.deps_of(jid)? {
                self.tx.dep_remove(jid, &d)?;
            }
            if self.tracked(jid)? {
                self.emit_raw("ql:canceled", jid);
            }
            self.batch_move(&mut rec, None)?;
            self.delete_job(&rec)?;
        }
        Ok(Reply::Strings(jids.to_vec()))
    }

    fn depends(&mut self, jid: &str, change: &DependsChange) -> Result<Reply> {
        let mut rec = self.must_get("Depends", jid)?;
        if rec.state != JobState::Depends {
            return Err(Error::conflict(format!(
                "Depends(): Job {jid} not in the depends state: {}",
                rec.state
            )));
        }
        match change {
            DependsChange::On(list) => {
                for d in list {
                    if d == jid {
                        continue;
                    }
                    if let Some(dj) = self.tx.job_get(d)? {
                        if dj.state != JobState::Complete {
                            self.tx.dep_add(jid, d)?;
                        }
                    }
                }
                return Ok(Reply::Bool(true));
            }
            DependsChange::Off(list) => {
                for d in list {
                    self.tx.dep_remove(jid, d)?;
                }
            }
            DependsChange::OffAll => {
                for d in self.tx.deps_of(jid)? {
                    self.tx.dep_remove(jid, &d)?;
                }
            }
        }
        if self.tx.deps_of(jid)?.is_empty() {
            match rec.scheduled.take() {
                Some(at) => {
                    rec.state = JobState::Scheduled;
                    self.place(&mut rec, Loc::Scheduled, at)?;
                }
                None => {
                    rec.state = JobState::Waiting;
                    let now = self.now;
                    self.place_work(&mut rec, now)?;
                }
            }
            self.save(&mut rec)?;
        }
        Ok(Reply::Bool(true))
    }

    // --- failures (§7.18) ------------------------------------------------

    fn unfail(&mut self, queue: &str, group: &str, count: i64) -> Result<Reply> {
        let now = self.now;
        let jids = self.tx.failed_oldest(group, count)?;
        let n = jids.len() as i64;
        for jid in jids {
            let Some(mut rec) = self.tx.job_get(&jid)? else {
                continue;
            };
            self.history(&jid, HistoryEntry::new(now, "put").with("q", queue))?;
            self.claim_key(&mut rec)?;
            self.unlist_failure(&mut rec)?;
            rec.state = JobState::Waiting;
            rec.worker = String::new();
            rec.worker_listed = false;
            rec.expires = Timestamp::ZERO;
            rec.queue = queue.to_owned();
            rec.remaining = rec.retries;
            rec.time = now;
            self.place_work(&mut rec, now)?;
            self.save(&mut rec)?;
            self.lifecycle(LifecycleKind::Enqueued, &rec, queue, None, None, None);
        }
        if n > 0 {
            self.tx.queue_register(queue, now)?;
        }
        Ok(Reply::Int(n))
    }

    // --- queues, jobs, workers, stats, config (§7.19–§7.22) --------------

    fn queue_counts(&mut self, queue: &str) -> Result<QueueCounts> {
        self.promote_scheduled(queue, ALL)?;
        Ok(QueueCounts {
            name: queue.to_owned(),
            counts: self.tx.job_loc_counts(queue, self.now)?,
            recurring: self.tx.recur_count(queue)?,
            paused: self.tx.queue_paused(queue)?,
        })
    }

    fn jobs(
        &mut self,
        listing: JobsListing,
        queue: &str,
        offset: i64,
        count: i64,
    ) -> Result<Reply> {
        let now = self.now;
        let jids = match listing {
            JobsListing::Running => {
                self.tx
                    .job_list(queue, Loc::Locked, TimeRange::from(now), offset, count)?
            }
            JobsListing::Stalled => {
                self.tx
                    .job_list(queue, Loc::Locked, TimeRange::up_to(now), offset, count)?
            }
            JobsListing::Scheduled => {
                self.promote_scheduled(queue, ALL)?;
                self.tx
                    .job_list(queue, Loc::Scheduled, TimeRange::ALL, offset, count)?
            }
            JobsListing::Depends => {
                self.tx
                    .job_list(queue, Loc::Depends, TimeRange::ALL, offset, count)?
            }
            JobsListing::Waiting => {
                self.tx
                    .job_list(queue, Loc::Work, TimeRange::ALL, offset, count)?
            }
            JobsListing::Throttled => {
                self.tx
                    .job_list(queue, Loc::Throttled, TimeRange::ALL, offset, count)?
            }
            JobsListing::Recurring => self.tx.recur_list(queue, TimeRange::ALL, offset, count)?,
        };
        Ok(Reply::Strings(jids))
    }

    fn workers(&mut self, worker: Option<&str>, detail: bool) -> Result<Reply> {
        let now = self.now;
        let age = self.config_num("max-worker-age", config::MAX_WORKER_AGE)?;
        let cutoff = now.add_secs(-age);
        let mut alive = Vec::new();
        for (name, seen) in self.tx.worker_list()? {
            if seen <= cutoff {
                self.tx.worker_remove(&name)?;
                self.tx.job_worker_unlist_all(&name)?;
            } else {
                alive.push((name, seen));
            }
        }
        let seen_of = |name: &str| -> Option<Timestamp> {
            alive
                .iter()
                .find(|(n, _)| n == name)
                .map(|(_, t)| *t)
                .filter(|_| detail)
        };
        match worker {
            Some(w) => {
                let mut held = self.tx.job_worker_list(w)?;
                let mut stalled: Vec<(String, Timestamp)> =
                    held.iter().filter(|(_, e)| *e <= now).cloned().collect();
                held.retain(|(_, e)| *e > now);
                held.sort_by(|a, b| b.1.cmp(&a.1).then_with(|| b.0.cmp(&a.0)));
                stalled.sort_by(|a, b| a.1.cmp(&b.1).then_with(|| a.0.cmp(&b.0)));
                Ok(Reply::WorkerJobs {
                    jobs: held.into_iter().map(|(j, _)| j).collect(),
                    stalled: stalled.into_iter().map(|(j, _)| j).collect(),
                    last_seen: seen_of(w),
                })
            }
            None => {
                let mut out = Vec::new();
                for (name, _) in &alive {
                    let held = self.tx.job_worker_list(name)?;
                    let running = held.iter().filter(|(_, e)| *e > now).count() as i64;
                    let stalled = held.len() as i64 - running;
                    out.push(WorkerSummary {
                        name: name.clone(),
                        jobs: running,
                        stalled,
                        last_seen: seen_of(name),
                    });
                }
                Ok(Reply::Workers(out))
            }
        }
    }

    fn stats(&mut self, queue: &str, date: Timestamp) -> Result<Reply> {
        let day = date.day();
        let (failures, failed, retries) = self.tx.stats_counters(queue, day)?;
        let mut report = |kind: StatKind| -> Result<TimingReport> {
            let s = self.tx.stats_timing(queue, day, kind)?;
            let hist = self.tx.stats_hist(queue, day, kind)?;
            let histogram = stats::report_buckets()
                .iter()
                .map(|b| hist.iter().find(|(k, _)| k == b).map_or(0, |(_, c)| *c))
                .collect();
            let std = if s.count > 1 {
                (s.vk / (s.count - 1) as f64).max(0.0).sqrt()
            } else {
                0.0
            };
            Ok(TimingReport {
                count: s.count,
                mean: s.mean,
                std,
                histogram,
            })
        };
        let wait = report(StatKind::Wait)?;
        let run = report(StatKind::Run)?;
        Ok(Reply::Stats {
            retries,
            failed,
            failures,
            wait,
            run,
        })
    }

    fn config_get(&mut self, key: Option<&str>) -> Result<Reply> {
        match key {
            Some(k) => Ok(Reply::ConfigValue(
                self.tx
                    .config_get(k)?
                    .map(Value::from)
                    .or_else(|| config::default_for(k)),
            )),
            None => {
                let mut m = Map::new();
                m.insert("application".into(), Value::from(config::APPLICATION));
                for (k, v) in config::DEFAULTS {
                    m.insert(k.into(), Value::from(v));
                }
                for (k, v) in self.tx.config_all()? {
                    m.insert(k, Value::from(v));
                }
                Ok(Reply::ConfigAll(m))
            }
        }
    }

    // --- recurring (§7.9) -------------------------------------------------

    /// Spawns child number `r.count` of template `r`, put at `tick`.
    fn spawn_child(&mut self, r: &RecurRecord, tick: Timestamp) -> Result<()> {
        let now = self.now;
        let child = format!("{}-{}", r.jid, r.count);
        if let Some(old) = self.tx.job_get(&child)? {
            self.remove_tags(&old)?;
        }
        for t in &r.tags {
            self.tx.tag_index_add(t, &child, now)?;
            self.tx.tag_count_add(t, 1)?;
        }
        let mut rec = JobRecord {
            jid: child.clone(),
            klass: r.klass.clone(),
            queue: r.queue.clone(),
            state: JobState::Waiting,
            data: r.data.clone(),
            priority: r.priority,
            tags: r.tags.clone(),
            worker: String::new(),
            expires: Timestamp::ZERO,
            retries: r.retries,
            remaining: r.retries,
            time: tick,
            grace: false,
            scheduled: None,
            failure: None,
            spawned_from: Some(r.jid.clone()),
            worker_listed: false,
            fail_group: None,
            fail_seq: 0,
            loc: Loc::None,
            sort_prio: 0,
            sort_time: tick,
            seq: 0,
            metadata: Map::new(),
            unique_key: None,
            batch: None,
            batch_outcome: Default::default(),
            throttles: Vec::new(),
        };
        self.history(
            &child,
            HistoryEntry::new(tick, "put").with("q", r.queue.clone()),
        )?;
        self.place_work(&mut rec, tick)?;
        self.save(&mut rec)?;
        let q = rec.queue.clone();
        self.lifecycle(LifecycleKind::Enqueued, &rec, &q, None, None, None);
        Ok(())
    }

    fn recur(&mut self, p: &RecurParams) -> Result<Reply> {
        let count = self.tx.recur_get(&p.jid)?.map_or(0, |r| r.count);
        let r = RecurRecord {
            jid: p.jid.clone(),
            klass: p.klass.clone(),
            queue: p.queue.clone(),
            data: p.data.clone(),
            priority: p.priority,
            tags: dedup(&p.tags),
            retries: p.retries,
            interval: p.interval,
            next_at: self.now.add_secs(p.offset),
            count,
            backlog: p.backlog,
            cron: None,
        };
        let r = crate::cron::recur_record(r, p, self.now)?;
        self.tx.recur_save(&r)?;
        self.tx.queue_register(&p.queue, self.now)?;
        Ok(Reply::Str(p.jid.clone()))
    }

    fn recur_update(&mut self, jid: &str, u: &RecurUpdate) -> Result<Reply> {
        let mut r = self.must_recur(jid)?;
        crate::cron::apply_update(&mut r, u, self.now)?;
        if let Some(p) = u.priority {
            r.priority = p;
        }
        if let Some(i) = u.interval.filter(|_| r.cron.is_none()) {
            r.next_at = r.next_at.add_secs(i - r.interval);
            r.interval = i;
        }
        if let Some(x) = u.retries {
            r.retries = x;
        }
        if let Some(d) = &u.data {
            r.data = d.clone();
        }
        if let Some(k) = &u.klass {
            r.klass = k.clone();
        }
        if let Some(b) = u.backlog {
            r.backlog = b;
        }
        if let Some(q) = &u.queue {
            r.queue = q.clone();
            self.tx.queue_register(q, self.now)?;
        }
        self.tx.recur_save(&r)?;
        Ok(Reply::Bool(true))
    }
}

/// The text of [`Cx::log_step`]'s event.
fn step_log_json(jid: &str, event: &str, queue: &str) -> String {
    let mut message = String::with_capacity(40 + jid.len() + queue.len());
    message.push_str("{\"jid\":");
    crate::lifecycle::push_json_str(&mut message, jid);
    message.push_str(",\"event\":");
    crate::lifecycle::push_json_str(&mut message, event);
    message.push_str(",\"queue\":");
    crate::lifecycle::push_json_str(&mut message, queue);
    message.push('}');
    message
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn step_log_text_is_the_json_objects() {
        for (jid, queue) in [
            ("0192f0c1a2b34c5d8e9f001122334455", "emails"),
            ("order \"42\"", "back\\slash"),
            ("tab\there", "é ü 日本"),
            ("", "ctl\u{1}\u{7f}\u{85}"),
        ] {
            let expected = json!({"jid": jid, "event": "put", "queue": queue}).to_string();
            assert_eq!(step_log_json(jid, "put", queue), expected);
        }
    }
}
