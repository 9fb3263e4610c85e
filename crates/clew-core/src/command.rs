//! [`Command`]: every operation of the job engine as data, and [`Reply`]: what
//! each returns.
//!
//! The commands are qless-core's 37, with typed arguments. The qless string
//! form (`put`, `0`, `worker`, `queue`, ...) is parsed into these by
//! [`crate::qless::parse`]; replies render to natural JSON with
//! [`Reply::to_json`].

use serde_json::{Map, Value};

use crate::job::{Job, RecurRecord};
use crate::time::Timestamp;
use crate::tx::LocCounts;

/// Arguments of `put` and `requeue`.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct PutParams {
    /// The caller (a worker name, or any name): if another worker held the
    /// job, that worker is told it lost its lock.
    pub worker: String,
    /// The target queue.
    pub queue: String,
    /// The job id.
    pub jid: String,
    /// The job class.
    pub klass: String,
    /// The payload: a JSON text, stored verbatim.
    pub data: String,
    /// Seconds to wait before the job may run (>= 0).
    pub delay: f64,
    /// Priority; `None` keeps the existing job's (default 0).
    pub priority: Option<i64>,
    /// Tags; `None` keeps the existing job's (default none).
    pub tags: Option<Vec<String>>,
    /// Retries; `None` keeps the existing job's (default 5).
    pub retries: Option<i64>,
    /// Dependencies; `None` keeps the existing ones, `Some` replaces them.
    pub depends: Option<Vec<String>>,
    /// `requeue`: refuse if the job does not exist.
    pub must_exist: bool,
    /// User metadata for the job's lifecycle events; `None` keeps the
    /// existing job's (default none). Keys starting with `_` are dropped.
    pub metadata: Option<Map<String, Value>>,
}

impl PutParams {
    /// A put of a new job of class `klass` into `queue`, with data `{}`, no
    /// delay, a generated jid (when put through [`crate::Engine::put`]) and
    /// the defaults for everything else.
    pub fn new(queue: impl Into<String>, klass: impl Into<String>) -> PutParams {
        PutParams {
            worker: "clew".to_owned(),
            queue: queue.into(),
            klass: klass.into(),
            data: "{}".to_owned(),
            ..PutParams::default()
        }
    }
}

/// Arguments of `complete`.
#[derive(Clone, Debug, PartialEq)]
pub struct CompleteParams {
    /// The job.
    pub jid: String,
    /// The worker that holds it.
    pub worker: String,
    /// The queue it runs in.
    pub queue: String,
    /// The new payload (JSON text).
    pub data: String,
    /// Advance into this queue instead of finishing.
    pub next: Option<String>,
    /// With `next`: seconds before it may run there.
    pub delay: f64,
    /// With `next`: jobs it must wait for there.
    pub depends: Vec<String>,
    /// Runtime metadata the handler adds (merged into the job's; keys
    /// starting with `_` are dropped).
    pub metadata: Option<Map<String, Value>>,
}

/// Arguments of `recur`.
#[derive(Clone, Debug, PartialEq)]
pub struct RecurParams {
    /// The queue children go to.
    pub queue: String,
    /// The template id.
    pub jid: String,
    /// The children's class.
    pub klass: String,
    /// The children's payload (JSON text).
    pub data: String,
    /// Seconds between children (> 0).
    pub interval: f64,
    /// Seconds from now until the first child.
    pub offset: f64,
    /// Priority (default 0).
    pub priority: i64,
    /// Tags (default none).
    pub tags: Vec<String>,
    /// Retries of each child (default 5).
    pub retries: i64,
    /// Catch-up cap after idle periods (default 0 = no cap).
    pub backlog: i64,
}

/// Changes for `recur.update` (each `None` is left alone).
#[derive(Clone, Debug, Default, PartialEq)]
pub struct RecurUpdate {
    /// New priority.
    pub priority: Option<i64>,
    /// New interval (the next spawn moves by new − old).
    pub interval: Option<f64>,
    /// New retries.
    pub retries: Option<i64>,
    /// New payload (JSON text).
    pub data: Option<String>,
    /// New class.
    pub klass: Option<String>,
    /// New queue (the next spawn time is kept).
    pub queue: Option<String>,
    /// New backlog.
    pub backlog: Option<i64>,
}

/// How `depends` changes a job's dependencies.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum DependsChange {
    /// Add these.
    On(Vec<String>),
    /// Remove these.
    Off(Vec<String>),
    /// Remove all.
    OffAll,
}

/// Which listing `jobs` returns.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum JobsListing {
    /// Running jobs (lock not expired), by expiry.
    Running,
    /// Jobs whose lock expired, by expiry.
    Stalled,
    /// Scheduled jobs, by due time (due ones are promoted first).
    Scheduled,
    /// Jobs waiting on dependencies.
    Depends,
    /// Recurring templates, by next spawn.
    Recurring,
    /// Waiting jobs in pop order (a clew addition).
    Waiting,
}

impl JobsListing {
    /// Parses a qless listing name.
    pub fn parse(s: &str) -> Option<JobsListing> {
        Some(match s {
            "running" => JobsListing::Running,
            "stalled" => JobsListing::Stalled,
            "scheduled" => JobsListing::Scheduled,
            "depends" => JobsListing::Depends,
            "recurring" => JobsListing::Recurring,
            "waiting" => JobsListing::Waiting,
            _ => return None,
        })
    }
}

/// Every operation of the engine.
#[derive(Clone, Debug, PartialEq)]
pub enum Command {
    /// Several commands in one transaction. `atomic`: all of them or none
    /// (the first refusal refuses the batch). Otherwise each runs in its own
    /// savepoint and a refused one leaves the others in place; the reply
    /// holds each command's own result, in order. Batches do not nest.
    Batch {
        /// The commands, run in order.
        commands: Vec<Command>,
        /// All or nothing.
        atomic: bool,
    },
    /// Cancel jobs (refused if another job depends on one and is not listed).
    Cancel {
        /// The jobs.
        jids: Vec<String>,
    },
    /// Finish a running job, or advance it into another queue.
    Complete(CompleteParams),
    /// Read all config values (defaults overlaid with stored ones), or one.
    ConfigGet {
        /// One key, or all when `None`.
        key: Option<String>,
    },
    /// Store a config value.
    ConfigSet {
        /// The key.
        key: String,
        /// The value.
        value: String,
    },
    /// Delete a stored config value (the default shows through).
    ConfigUnset {
        /// The key.
        key: String,
    },
    /// Change a `depends` job's dependencies.
    Depends {
        /// The job.
        jid: String,
        /// The change.
        change: DependsChange,
    },
    /// Fail a running job into a group.
    Fail {
        /// The job.
        jid: String,
        /// The worker that holds it.
        worker: String,
        /// The failure group.
        group: String,
        /// The message.
        message: String,
        /// New payload (JSON text).
        data: Option<String>,
        /// Runtime metadata the handler adds (merged into the job's; keys
        /// starting with `_` are dropped).
        metadata: Option<Map<String, Value>>,
    },
    /// Failure groups with counts, or one group's jids.
    Failed {
        /// One group (paged), or all groups when `None`.
        group: Option<String>,
        /// Skip this many.
        start: i64,
        /// At most this many.
        limit: i64,
    },
    /// One job, or `None`.
    Get {
        /// The job.
        jid: String,
    },
    /// Renew a running job's lock.
    Heartbeat {
        /// The job.
        jid: String,
        /// The worker that holds it.
        worker: String,
        /// New payload (JSON text).
        data: Option<String>,
    },
    /// Jids in one listing of a queue.
    Jobs {
        /// Which listing.
        listing: JobsListing,
        /// The queue.
        queue: String,
        /// Skip this many.
        offset: i64,
        /// At most this many.
        count: i64,
    },
    /// Completed jids, newest first.
    JobsComplete {
        /// Skip this many.
        offset: i64,
        /// At most this many.
        count: i64,
    },
    /// Running + waiting + scheduled jobs of a queue.
    Length {
        /// The queue.
        queue: String,
    },
    /// Append a history entry to a job.
    Log {
        /// The job.
        jid: String,
        /// The entry's `what`.
        message: String,
        /// Keys merged into the entry.
        data: Option<Map<String, Value>>,
    },
    /// Several jobs (missing ones skipped).
    MultiGet {
        /// The jobs.
        jids: Vec<String>,
    },
    /// Stop handing out jobs from queues.
    Pause {
        /// The queues.
        queues: Vec<String>,
    },
    /// The jobs a pop would hand out, without taking them.
    Peek {
        /// The queue.
        queue: String,
        /// At most this many.
        count: i64,
    },
    /// Hand out up to `count` jobs to a worker.
    Pop {
        /// The queue.
        queue: String,
        /// The worker.
        worker: String,
        /// At most this many.
        count: i64,
    },
    /// Set a job's priority.
    Priority {
        /// The job.
        jid: String,
        /// The new priority.
        priority: i64,
    },
    /// Create or move a job (`put`, `requeue`).
    Put(PutParams),
    /// Counts of one queue or of all known queues.
    Queues {
        /// One queue, or all when `None`.
        queue: Option<String>,
    },
    /// Forget queue names.
    QueueForget {
        /// The queues.
        queues: Vec<String>,
    },
    /// Create or replace a recurring template.
    Recur(RecurParams),
    /// A recurring template, or `None`.
    RecurGet {
        /// The template.
        jid: String,
    },
    /// Add tags to a template.
    RecurTag {
        /// The template.
        jid: String,
        /// The tags.
        tags: Vec<String>,
    },
    /// Remove tags from a template.
    RecurUntag {
        /// The template.
        jid: String,
        /// The tags.
        tags: Vec<String>,
    },
    /// Change a template.
    RecurUpdate {
        /// The template.
        jid: String,
        /// The changes.
        update: RecurUpdate,
    },
    /// Hand a running job back to its queue at once, ahead of its equals,
    /// without spending a retry (a worker shutting down). A clew extension:
    /// qless-core has no such command.
    Release {
        /// The job.
        jid: String,
        /// The worker that holds it.
        worker: String,
    },
    /// Put a running job back (or fail it when out of retries).
    Retry {
        /// The job.
        jid: String,
        /// The queue it runs in.
        queue: String,
        /// The worker that holds it.
        worker: String,
        /// Seconds before it may run again.
        delay: f64,
        /// Failure group (used if retries are exhausted).
        group: Option<String>,
        /// Failure message.
        message: Option<String>,
    },
    /// A queue's stats for the day containing `date`.
    Stats {
        /// The queue.
        queue: String,
        /// Any time in the day.
        date: Timestamp,
    },
    /// Add tags to a job.
    TagAdd {
        /// The job.
        jid: String,
        /// The tags.
        tags: Vec<String>,
    },
    /// Jobs carrying a tag.
    TagGet {
        /// The tag.
        tag: String,
        /// Skip this many.
        offset: i64,
        /// At most this many.
        count: i64,
    },
    /// Remove tags from a job.
    TagRemove {
        /// The job.
        jid: String,
        /// The tags.
        tags: Vec<String>,
    },
    /// Most used tags (used at least twice).
    TagTop {
        /// Skip this many.
        offset: i64,
        /// At most this many.
        count: i64,
    },
    /// Time out running jobs: they go to the front of their queue as `stalled`.
    Timeout {
        /// The jobs.
        jids: Vec<String>,
    },
    /// Track a job.
    Track {
        /// The job.
        jid: String,
    },
    /// Tracked jobs, and tracked jids whose job is gone.
    Tracked,
    /// Move the oldest failed jobs of a group back into a queue.
    Unfail {
        /// The target queue.
        queue: String,
        /// The group.
        group: String,
        /// At most this many.
        count: i64,
    },
    /// Resume handing out jobs from queues.
    Unpause {
        /// The queues.
        queues: Vec<String>,
    },
    /// Delete a recurring template.
    Unrecur {
        /// The template.
        jid: String,
    },
    /// Stop tracking a job.
    Untrack {
        /// The job.
        jid: String,
    },
    /// Forget workers.
    WorkerDeregister {
        /// The workers.
        workers: Vec<String>,
    },
    /// All workers with counts, or one worker's jobs.
    Workers {
        /// One worker, or all when `None`.
        worker: Option<String>,
        /// Also report each worker's last-seen time (`workers.detail`, a clew
        /// extension; qless's `workers` leaves it out).
        detail: bool,
    },
}

impl Command {
    /// The qless name of the command.
    pub fn name(&self) -> &'static str {
        match self {
            Command::Batch { .. } => "batch",
            Command::Cancel { .. } => "cancel",
            Command::Complete(_) => "complete",
            Command::ConfigGet { .. } => "config.get",
            Command::ConfigSet { .. } => "config.set",
            Command::ConfigUnset { .. } => "config.unset",
            Command::Depends { .. } => "depends",
            Command::Fail { .. } => "fail",
            Command::Failed { .. } => "failed",
            Command::Get { .. } => "get",
            Command::Heartbeat { .. } => "heartbeat",
            Command::Jobs { .. } | Command::JobsComplete { .. } => "jobs",
            Command::Length { .. } => "length",
            Command::Log { .. } => "log",
            Command::MultiGet { .. } => "multiget",
            Command::Pause { .. } => "pause",
            Command::Peek { .. } => "peek",
            Command::Pop { .. } => "pop",
            Command::Priority { .. } => "priority",
            Command::Put(p) if p.must_exist => "requeue",
            Command::Put(_) => "put",
            Command::Queues { .. } => "queues",
            Command::QueueForget { .. } => "queue.forget",
            Command::Recur(_) => "recur",
            Command::RecurGet { .. } => "recur.get",
            Command::RecurTag { .. } => "recur.tag",
            Command::RecurUntag { .. } => "recur.untag",
            Command::RecurUpdate { .. } => "recur.update",
            Command::Release { .. } => "release",
            Command::Retry { .. } => "retry",
            Command::Stats { .. } => "stats",
            Command::TagAdd { .. }
            | Command::TagGet { .. }
            | Command::TagRemove { .. }
            | Command::TagTop { .. } => "tag",
            Command::Timeout { .. } => "timeout",
            Command::Track { .. } | Command::Tracked | Command::Untrack { .. } => "track",
            Command::Unfail { .. } => "unfail",
            Command::Unpause { .. } => "unpause",
            Command::Unrecur { .. } => "unrecur",
            Command::WorkerDeregister { .. } => "worker.deregister",
            Command::Workers { detail: true, .. } => "workers.detail",
            Command::Workers { .. } => "workers",
        }
    }
}

/// Counts of one queue (the `queues` command).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct QueueCounts {
    /// The queue.
    pub name: String,
    /// Set sizes.
    pub counts: LocCounts,
    /// Recurring templates.
    pub recurring: i64,
    /// Whether the queue is paused.
    pub paused: bool,
}

impl QueueCounts {
    /// The qless shape.
    pub fn to_json(&self) -> Value {
        serde_json::json!({
            "name": self.name,
            "waiting": self.counts.waiting,
            "running": self.counts.running,
            "stalled": self.counts.stalled,
            "scheduled": self.counts.scheduled,
            "depends": self.counts.depends,
            "recurring": self.recurring,
            "paused": self.paused,
        })
    }
}

/// A timing statistic as reported by `stats`.
#[derive(Clone, Debug, PartialEq)]
pub struct TimingReport {
    /// Number of samples.
    pub count: i64,
    /// Mean, seconds.
    pub mean: f64,
    /// Sample standard deviation, seconds (0 with fewer than 2 samples).
    pub std: f64,
    /// The 148 buckets: s0–s59, m1–m59, h1–h23, d1–d6.
    pub histogram: Vec<i64>,
}

impl TimingReport {
    fn to_json(&self) -> Value {
        serde_json::json!({
            "count": self.count,
            "mean": self.mean,
            "std": self.std,
            "histogram": self.histogram,
        })
    }
}

/// What each command returns.
#[derive(Clone, Debug, PartialEq)]
pub enum Reply {
    /// Each command's result of a [`Command::Batch`], in order.
    Batch(Vec<crate::error::Result<Reply>>),
    /// No value (`pause`, `timeout`, `log`, `config.set`, ...).
    Nil,
    /// A boolean (`depends`, `recur.update`, `unrecur`).
    Bool(bool),
    /// A number (`priority`, `length`, `unfail`, `retry`, `track`).
    Int(i64),
    /// A bare string (`put` returns the jid, `complete` the new state).
    Str(String),
    /// A lock expiry (`heartbeat`; rendered as whole seconds, truncated).
    Expiry(Timestamp),
    /// A list of strings (`jobs`, `cancel`, `tag add/remove/top`, `recur.tag`).
    Strings(Vec<String>),
    /// One job or nothing (`get`).
    Job(Option<Box<Job>>),
    /// Jobs (`pop`, `peek`, `multiget`).
    Jobs(Vec<Job>),
    /// Config: one value (string or default) or nothing.
    ConfigValue(Option<Value>),
    /// Config: every key with its value.
    ConfigAll(Map<String, Value>),
    /// `failed` without a group.
    FailedGroups(Vec<(String, i64)>),
    /// `failed` with a group, and `tag get`: a total and a page of jids.
    Page {
        /// How many in all.
        total: i64,
        /// This page.
        jobs: Vec<String>,
    },
    /// `queues` for one queue.
    Queue(QueueCounts),
    /// `queues` for all queues.
    Queues(Vec<QueueCounts>),
    /// `recur.get`.
    Recur(Option<RecurRecord>),
    /// `stats`.
    Stats {
        /// Lost locks.
        retries: i64,
        /// Jobs currently failed from that day.
        failed: i64,
        /// Failures recorded.
        failures: i64,
        /// Wait times.
        wait: TimingReport,
        /// Run times.
        run: TimingReport,
    },
    /// `track` without arguments.
    Tracked {
        /// Tracked jobs that exist.
        jobs: Vec<Job>,
        /// Tracked jids whose job is gone.
        expired: Vec<String>,
    },
    /// `workers` for one worker.
    WorkerJobs {
        /// Jids with a live lock, newest expiry first.
        jobs: Vec<String>,
        /// Jids whose lock expired.
        stalled: Vec<String>,
        /// When the worker was last seen (with `detail`; `None` if unknown).
        last_seen: Option<Timestamp>,
    },
    /// `workers` for all workers.
    Workers(Vec<WorkerSummary>),
}

/// One worker in the `workers` listing.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct WorkerSummary {
    /// The worker's name.
    pub name: String,
    /// Jobs it holds with a live lock.
    pub jobs: i64,
    /// Jobs it holds whose lock expired.
    pub stalled: i64,
    /// When it last popped or heartbeat (with `detail` only).
    pub last_seen: Option<Timestamp>,
}

impl Reply {
    /// The reply as natural JSON: documents as documents, empty lists as
    /// `[]`, nothing as `null`.
    pub fn to_json(&self) -> Value {
        match self {
            Reply::Batch(results) => Value::Array(
                results
                    .iter()
                    .map(|r| match r {
                        Ok(reply) => serde_json::json!({"ok": reply.to_json()}),
                        Err(e) => serde_json::json!({
                            "error": {"code": e.kind().code(), "message": e.message()}
                        }),
                    })
                    .collect(),
            ),
            Reply::Nil => Value::Null,
            Reply::Bool(b) => Value::Bool(*b),
            Reply::Int(i) => Value::from(*i),
            Reply::Str(s) => Value::from(s.clone()),
            Reply::Expiry(t) => Value::from(t.floor_secs()),
            Reply::Strings(v) => Value::from(v.clone()),
            Reply::Job(j) => j.as_ref().map(|j| j.to_json()).unwrap_or(Value::Null),
            Reply::Jobs(v) => Value::Array(v.iter().map(Job::to_json).collect()),
            Reply::ConfigValue(v) => v.clone().unwrap_or(Value::Null),
            Reply::ConfigAll(m) => Value::Object(m.clone()),
            Reply::FailedGroups(v) => Value::Object(
                v.iter()
                    .map(|(g, c)| (g.clone(), Value::from(*c)))
                    .collect(),
            ),
            Reply::Page { total, jobs } => serde_json::json!({"total": total, "jobs": jobs}),
            Reply::Queue(q) => q.to_json(),
            Reply::Queues(v) => Value::Array(v.iter().map(QueueCounts::to_json).collect()),
            Reply::Recur(r) => r.as_ref().map(RecurRecord::to_json).unwrap_or(Value::Null),
            Reply::Stats {
                retries,
                failed,
                failures,
                wait,
                run,
            } => serde_json::json!({
                "retries": retries,
                "failed": failed,
                "failures": failures,
                "wait": wait.to_json(),
                "run": run.to_json(),
            }),
            Reply::Tracked { jobs, expired } => serde_json::json!({
                "jobs": jobs.iter().map(Job::to_json).collect::<Vec<_>>(),
                "expired": expired,
            }),
            Reply::WorkerJobs {
                jobs,
                stalled,
                last_seen,
            } => {
                let mut v = serde_json::json!({"jobs": jobs, "stalled": stalled});
                if let Some(t) = last_seen {
                    v["last_seen"] = t.to_json();
                }
                v
            }
            Reply::Workers(v) => Value::Array(
                v.iter()
                    .map(|w| {
                        let mut v = serde_json::json!({"name": w.name, "jobs": w.jobs, "stalled": w.stalled});
                        if let Some(t) = w.last_seen {
                            v["last_seen"] = t.to_json();
                        }
                        v
                    })
                    .collect(),
            ),
        }
    }
}
