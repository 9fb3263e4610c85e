//! [`Command`]: every operation of the job engine as data, and [`Reply`]: what
//! each returns.
//!
//! The commands are qless-core's 37, with typed arguments. The qless string
//! form (`put`, `0`, `worker`, `queue`, ...) is parsed into these by
//! [`crate::qless::parse`]; replies render to natural JSON with
//! [`Reply::to_json`].

use serde::ser::{SerializeMap, Serializer};
use serde::Serialize;
use serde_json::{Map, Value};

use crate::job::{to_value, Job, RecurRecord, Secs};
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
    /// A uniqueness key and its conflict policy (see [`crate::unique`]);
    /// `None` keeps the existing job's key (default none).
    pub unique: Option<crate::unique::Unique>,
    /// The batch the job joins (it must exist and not have finished; a job
    /// already in another batch is refused). `None` keeps the job's batch.
    pub batch: Option<String>,
    /// Named throttles the job must hold a slot of to run (see
    /// [`crate::throttle`]); `None` keeps the existing job's (default none).
    pub throttles: Option<Vec<String>>,
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

impl CompleteParams {
    /// `worker` finishing `jid` in `queue`, with data `{}` and nothing next.
    pub fn new(
        jid: impl Into<String>,
        worker: impl Into<String>,
        queue: impl Into<String>,
    ) -> CompleteParams {
        CompleteParams {
            jid: jid.into(),
            worker: worker.into(),
            queue: queue.into(),
            data: "{}".to_owned(),
            next: None,
            delay: 0.0,
            depends: Vec::new(),
            metadata: None,
        }
    }
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
    /// A 5-field cron expression instead of `interval` (which is then 0):
    /// the first child is due at the first tick strictly after now + offset.
    pub cron: Option<String>,
    /// The IANA zone of `cron` (default UTC).
    pub timezone: Option<String>,
    /// What a cron template does with missed ticks (default catch-up).
    pub missed: crate::cron::Missed,
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
    /// New cron expression (a template on `interval` switches to cron; the
    /// next spawn is the first tick after now).
    pub cron: Option<String>,
    /// New time zone of a cron template (the next spawn is recomputed).
    pub timezone: Option<String>,
    /// New handling of missed ticks of a cron template.
    pub missed: Option<crate::cron::Missed>,
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
    /// Jobs held back by a full throttle, by time (a clew addition).
    Throttled,
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
            "throttled" => JobsListing::Throttled,
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
    /// Create a batch with its first jobs, in one transaction (see
    /// [`crate::batch`]).
    BatchCreate(crate::batch::BatchParams),
    /// A batch's progress, or `None`.
    BatchGet {
        /// The batch.
        id: String,
    },
    /// Batches, newest first.
    BatchList {
        /// Skip this many.
        offset: i64,
        /// At most this many.
        count: i64,
    },
    /// The jids of a batch's jobs that still exist, in jid order.
    BatchJobs {
        /// The batch.
        id: String,
        /// Skip this many.
        offset: i64,
        /// At most this many.
        count: i64,
    },
    /// Cancel every job of a batch that is not complete.
    BatchCancel {
        /// The batch.
        id: String,
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
    /// The live job holding a uniqueness key (see [`crate::unique`]), or
    /// `None` (clew's `unique.get`).
    UniqueGet {
        /// The key.
        key: String,
    },
    /// Delete a recurring template.
    Unrecur {
        /// The template.
        jid: String,
    },
    /// Define a throttle or change its maximum (see [`crate::throttle`]).
    ThrottleSet {
        /// The throttle's name.
        name: String,
        /// At most this many jobs holding it run at once (0: unlimited).
        max: i64,
        /// At most this many starts per period (`None`: no rate limit).
        rate: Option<crate::throttle::ThrottleRate>,
    },
    /// One throttle with its counts.
    ThrottleGet {
        /// The throttle's name.
        name: String,
    },
    /// Forget a throttle: its waiting jobs go back to their queues.
    ThrottleDelete {
        /// The throttle's name.
        name: String,
    },
    /// Every defined throttle with its counts.
    ThrottleList,
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
    /// Whether the command only reads: job and queue lookups and listings,
    /// statistics, config and the like. A store may run these outside its
    /// write path (PostgreSQL in a read-only snapshot without the command
    /// lock, SQLite on a read connection beside the writer thread), falling
    /// back to it if the logic writes after all.
    pub fn reads_only(&self) -> bool {
        matches!(
            self,
            Command::Length { .. }
                | Command::Get { .. }
                | Command::MultiGet { .. }
                | Command::Jobs { .. }
                | Command::JobsComplete { .. }
                | Command::Failed { .. }
                | Command::Stats { .. }
                | Command::Queues { .. }
                | Command::ConfigGet { .. }
                | Command::TagGet { .. }
                | Command::TagTop { .. }
                | Command::RecurGet { .. }
                | Command::UniqueGet { .. }
                | Command::ThrottleGet { .. }
                | Command::BatchGet { .. }
                | Command::BatchList { .. }
                | Command::BatchJobs { .. }
        )
    }

    /// The qless name of the command.
    pub fn name(&self) -> &'static str {
        match self {
            Command::Batch { .. } => "batch",
            Command::BatchCreate(_) => "batch.create",
            Command::BatchGet { .. } => "batch.get",
            Command::BatchList { .. } => "batch.list",
            Command::BatchJobs { .. } => "batch.jobs",
            Command::BatchCancel { .. } => "batch.cancel",
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
            Command::ThrottleSet { .. } => "throttle.set",
            Command::ThrottleGet { .. } => "throttle.get",
            Command::ThrottleDelete { .. } => "throttle.delete",
            Command::ThrottleList => "throttle.list",
            Command::Timeout { .. } => "timeout",
            Command::Track { .. } | Command::Tracked | Command::Untrack { .. } => "track",
            Command::Unfail { .. } => "unfail",
            Command::Unpause { .. } => "unpause",
            Command::UniqueGet { .. } => "unique.get",
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
    /// The qless shape (see its `Serialize`).
    pub fn to_json(&self) -> Value {
        to_value(self)
    }
}

/// The qless shape: `{name, waiting, running, stalled, scheduled, depends,
/// recurring, paused}`.
impl Serialize for QueueCounts {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        let throttled = self.counts.throttled > 0;
        let mut m = s.serialize_map(Some(8 + usize::from(throttled)))?;
        m.serialize_entry("name", &self.name)?;
        m.serialize_entry("waiting", &self.counts.waiting)?;
        m.serialize_entry("running", &self.counts.running)?;
        m.serialize_entry("stalled", &self.counts.stalled)?;
        m.serialize_entry("scheduled", &self.counts.scheduled)?;
        m.serialize_entry("depends", &self.counts.depends)?;
        if throttled {
            // Only when some are (a clew addition; qless's shape otherwise).
            m.serialize_entry("throttled", &self.counts.throttled)?;
        }
        m.serialize_entry("recurring", &self.recurring)?;
        m.serialize_entry("paused", &self.paused)?;
        m.end()
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

/// `{count, mean, std, histogram}`.
impl Serialize for TimingReport {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        let mut m = s.serialize_map(Some(4))?;
        m.serialize_entry("count", &self.count)?;
        m.serialize_entry("mean", &self.mean)?;
        m.serialize_entry("std", &self.std)?;
        m.serialize_entry("histogram", &self.histogram)?;
        m.end()
    }
}

/// What each command returns.
#[derive(Clone, Debug, PartialEq)]
pub enum Reply {
    /// Each command's result of a [`Command::Batch`], in order.
    Batch(Vec<crate::error::Result<Reply>>),
    /// A batch (`batch.get`), or nothing.
    BatchInfo(Option<Box<crate::batch::BatchView>>),
    /// `batch.create`: the batch and its jobs' jids, in order.
    BatchCreated {
        /// The batch.
        batch: Box<crate::batch::BatchView>,
        /// The jids of the jobs put.
        jids: Vec<String>,
    },
    /// `batch.list`: how many batches there are, and a page of them.
    BatchList {
        /// How many in all.
        total: i64,
        /// This page, newest first.
        batches: Vec<crate::batch::BatchView>,
    },
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
    /// `throttle.get` (and `throttle.set`): the throttle, or nothing.
    Throttle(Option<crate::throttle::ThrottleInfo>),
    /// `throttle.list`.
    Throttles(Vec<crate::throttle::ThrottleInfo>),
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
    /// `[]`, nothing as `null`. The shape is defined once, by the reply's
    /// `Serialize` (servers write replies straight from it); this is for
    /// callers that want a tree.
    pub fn to_json(&self) -> Value {
        to_value(self)
    }
}

/// One item of a batch's reply: `{"ok": reply}` or `{"error": {code, message}}`.
struct BatchItem<'a>(&'a crate::error::Result<Reply>);

impl Serialize for BatchItem<'_> {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        let mut m = s.serialize_map(Some(1))?;
        match self.0 {
            Ok(reply) => m.serialize_entry("ok", reply)?,
            Err(e) => m.serialize_entry("error", &ErrorDoc(e))?,
        }
        m.end()
    }
}

struct ErrorDoc<'a>(&'a crate::error::Error);

impl Serialize for ErrorDoc<'_> {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        let mut m = s.serialize_map(Some(2))?;
        m.serialize_entry("code", self.0.kind().code())?;
        m.serialize_entry("message", self.0.message())?;
        m.end()
    }
}

/// `{name, jobs, stalled}`, and `last_seen` when known.
impl Serialize for WorkerSummary {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        let mut m = s.serialize_map(Some(3 + usize::from(self.last_seen.is_some())))?;
        m.serialize_entry("name", &self.name)?;
        m.serialize_entry("jobs", &self.jobs)?;
        m.serialize_entry("stalled", &self.stalled)?;
        if let Some(t) = self.last_seen {
            m.serialize_entry("last_seen", &Secs(t.as_secs_f64()))?;
        }
        m.end()
    }
}

/// The reply as natural JSON (see [`Reply::to_json`]).
impl Serialize for Reply {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        match self {
            Reply::Batch(results) => s.collect_seq(results.iter().map(BatchItem)),
            Reply::BatchInfo(b) => b.serialize(s),
            Reply::BatchCreated { batch, jids } => {
                let mut m = s.serialize_map(Some(2))?;
                m.serialize_entry("batch", batch)?;
                m.serialize_entry("jids", jids)?;
                m.end()
            }
            Reply::BatchList { total, batches } => {
                let mut m = s.serialize_map(Some(2))?;
                m.serialize_entry("total", total)?;
                m.serialize_entry("batches", batches)?;
                m.end()
            }
            Reply::Nil => s.serialize_unit(),
            Reply::Bool(b) => s.serialize_bool(*b),
            Reply::Int(i) => s.serialize_i64(*i),
            Reply::Str(v) => s.serialize_str(v),
            Reply::Expiry(t) => s.serialize_i64(t.floor_secs()),
            Reply::Strings(v) => v.serialize(s),
            Reply::Job(j) => j.serialize(s),
            Reply::Jobs(v) => v.serialize(s),
            Reply::ConfigValue(v) => v.serialize(s),
            Reply::ConfigAll(m) => m.serialize(s),
            // Through a map, as before (a group named twice is one key).
            Reply::FailedGroups(v) => v
                .iter()
                .map(|(g, c)| (g.clone(), Value::from(*c)))
                .collect::<Map<String, Value>>()
                .serialize(s),
            Reply::Page { total, jobs } => {
                let mut m = s.serialize_map(Some(2))?;
                m.serialize_entry("total", total)?;
                m.serialize_entry("jobs", jobs)?;
                m.end()
            }
            Reply::Queue(q) => q.serialize(s),
            Reply::Queues(v) => v.serialize(s),
            Reply::Recur(r) => r.as_ref().map(RecurRecord::to_json).serialize(s),
            Reply::Throttle(t) => t.serialize(s),
            Reply::Throttles(v) => v.serialize(s),
            Reply::Stats {
                retries,
                failed,
                failures,
                wait,
                run,
            } => {
                let mut m = s.serialize_map(Some(5))?;
                m.serialize_entry("retries", retries)?;
                m.serialize_entry("failed", failed)?;
                m.serialize_entry("failures", failures)?;
                m.serialize_entry("wait", wait)?;
                m.serialize_entry("run", run)?;
                m.end()
            }
            Reply::Tracked { jobs, expired } => {
                let mut m = s.serialize_map(Some(2))?;
                m.serialize_entry("jobs", jobs)?;
                m.serialize_entry("expired", expired)?;
                m.end()
            }
            Reply::WorkerJobs {
                jobs,
                stalled,
                last_seen,
            } => {
                let mut m = s.serialize_map(Some(2 + usize::from(last_seen.is_some())))?;
                m.serialize_entry("jobs", jobs)?;
                m.serialize_entry("stalled", stalled)?;
                if let Some(t) = last_seen {
                    m.serialize_entry("last_seen", &Secs(t.as_secs_f64()))?;
                }
                m.end()
            }
            Reply::Workers(v) => v.serialize(s),
        }
    }
}

#[cfg(test)]
mod tests {
    //! The JSON shape of replies is a public API: the serialised form must
    //! be, byte for byte, what the `Value` trees built before replies were
    //! serialised directly gave. The old builders are kept here verbatim.
    use super::*;
    use crate::error::Error;
    use crate::job::{Failure, HistoryEntry, JobRecord, JobState, Loc};

    fn old_failure(f: &Failure) -> Value {
        serde_json::json!({
            "group": f.group,
            "message": f.message,
            "when": f.when.floor_secs(),
            "worker": f.worker,
        })
    }

    fn old_history(h: &HistoryEntry) -> Value {
        let mut m = Map::new();
        for (k, v) in &h.extra {
            m.insert(k.clone(), v.clone());
        }
        m.insert("what".into(), Value::from(h.what.clone()));
        m.insert("when".into(), Value::from(h.when.floor_secs()));
        Value::Object(m)
    }

    fn old_job(job: &Job) -> Value {
        let r = &job.record;
        let mut v = serde_json::json!({
            "jid": r.jid,
            "klass": r.klass,
            "state": r.state.as_str(),
            "queue": r.queue,
            "worker": r.worker,
            "priority": r.priority,
            "expires": r.expires.to_json(),
            "retries": r.retries,
            "remaining": r.remaining,
            "data": r.data,
            "tags": r.tags,
            "history": job.history.iter().map(old_history).collect::<Vec<_>>(),
            "failure": r.failure.as_ref().map(old_failure).unwrap_or_else(|| Value::Object(Map::new())),
            "tracked": job.tracked,
            "dependencies": job.dependencies,
            "dependents": job.dependents,
            "spawned_from_jid": r.spawned_from,
        });
        if !r.metadata.is_empty() {
            v["metadata"] = Value::Object(r.metadata.clone());
        }
        v
    }

    fn old_queue(q: &QueueCounts) -> Value {
        serde_json::json!({
            "name": q.name,
            "waiting": q.counts.waiting,
            "running": q.counts.running,
            "stalled": q.counts.stalled,
            "scheduled": q.counts.scheduled,
            "depends": q.counts.depends,
            "recurring": q.recurring,
            "paused": q.paused,
        })
    }

    fn old_timing(t: &TimingReport) -> Value {
        serde_json::json!({
            "count": t.count,
            "mean": t.mean,
            "std": t.std,
            "histogram": t.histogram,
        })
    }

    fn old_reply(reply: &Reply) -> Value {
        match reply {
            Reply::Batch(results) => Value::Array(
                results
                    .iter()
                    .map(|r| match r {
                        Ok(reply) => serde_json::json!({"ok": old_reply(reply)}),
                        Err(e) => serde_json::json!({
                            "error": {"code": e.kind().code(), "message": e.message()}
                        }),
                    })
                    .collect(),
            ),
            // Shapes new with batches: no older tree to compare with.
            Reply::BatchInfo(_) | Reply::BatchCreated { .. } | Reply::BatchList { .. } => {
                serde_json::to_value(reply).unwrap()
            }
            Reply::Nil => Value::Null,
            Reply::Bool(b) => Value::Bool(*b),
            Reply::Int(i) => Value::from(*i),
            Reply::Str(s) => Value::from(s.clone()),
            Reply::Expiry(t) => Value::from(t.floor_secs()),
            Reply::Strings(v) => Value::from(v.clone()),
            Reply::Job(j) => j.as_ref().map(|j| old_job(j)).unwrap_or(Value::Null),
            Reply::Jobs(v) => Value::Array(v.iter().map(old_job).collect()),
            Reply::ConfigValue(v) => v.clone().unwrap_or(Value::Null),
            Reply::ConfigAll(m) => Value::Object(m.clone()),
            Reply::FailedGroups(v) => Value::Object(
                v.iter()
                    .map(|(g, c)| (g.clone(), Value::from(*c)))
                    .collect(),
            ),
            Reply::Page { total, jobs } => serde_json::json!({"total": total, "jobs": jobs}),
            Reply::Queue(q) => old_queue(q),
            Reply::Queues(v) => Value::Array(v.iter().map(old_queue).collect()),
            Reply::Recur(r) => r.as_ref().map(RecurRecord::to_json).unwrap_or(Value::Null),
            // New with throttles: no older builder.
            Reply::Throttle(_) | Reply::Throttles(_) => serde_json::to_value(reply).unwrap(),
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
                "wait": old_timing(wait),
                "run": old_timing(run),
            }),
            Reply::Tracked { jobs, expired } => serde_json::json!({
                "jobs": jobs.iter().map(old_job).collect::<Vec<_>>(),
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

    fn record(jid: &str, state: JobState) -> JobRecord {
        JobRecord {
            jid: jid.to_owned(),
            klass: "Klass".to_owned(),
            queue: "q".to_owned(),
            state,
            data: "{}".to_owned(),
            priority: 0,
            tags: Vec::new(),
            worker: String::new(),
            expires: Timestamp::ZERO,
            retries: 5,
            remaining: 5,
            time: Timestamp(1_700_000_000_000_000),
            grace: false,
            scheduled: None,
            failure: None,
            spawned_from: None,
            worker_listed: false,
            fail_group: None,
            fail_seq: 0,
            loc: Loc::Work,
            sort_prio: 0,
            sort_time: Timestamp::ZERO,
            seq: 0,
            metadata: Map::new(),
            unique_key: None,
            batch: None,
            batch_outcome: crate::batch::BatchOutcome::Pending,
            throttles: Vec::new(),
        }
    }

    fn job(record: JobRecord) -> Job {
        Job {
            record,
            history: Vec::new(),
            tracked: false,
            dependencies: Vec::new(),
            dependents: Vec::new(),
        }
    }

    /// Jobs in every state, with and without failure, dependencies, tags,
    /// history (including details named `what`/`when`), metadata, a spawning
    /// template, fractional and negative times, big and unicode payloads.
    fn jobs() -> Vec<Job> {
        let mut out = Vec::new();
        for (i, state) in JobState::ALL.into_iter().enumerate() {
            out.push(job(record(&format!("plain-{i}"), state)));
            let mut r = record(&format!("full-{i}"), state);
            r.priority = -3 + i as i64;
            r.tags = vec!["a".into(), "ünïcode ☃".into(), "quote\"back\\slash".into()];
            r.worker = "host-1234-w".into();
            r.expires = Timestamp(1_700_000_060_123_456);
            r.remaining = 2;
            r.data = format!(
                "{{\"n\": {i}, \"text\": \"日本語 \\u00e9 🎉\", \"nested\": {{\"x\": [1, 2.5, null, true]}}}}"
            );
            r.failure = Some(Failure {
                group: "Klass:Error".into(),
                message: "boom\n  at line 3 \u{0}\u{1f}".into(),
                when: Timestamp(1_700_000_001_999_999),
                worker: "w".into(),
            });
            r.spawned_from = Some("recur-1".into());
            if i % 2 == 0 {
                r.metadata.insert("trace".into(), Value::from("abc"));
                r.metadata
                    .insert("n".into(), serde_json::json!({"deep": [1.25, -7]}));
            }
            let mut j = job(r);
            j.tracked = i % 3 == 0;
            j.dependencies = vec!["dep-1".into(), "dep-2".into()];
            j.dependents = vec!["after-1".into()];
            j.history = vec![
                HistoryEntry::new(Timestamp(1_700_000_000_500_000), "put").with("q", "q"),
                HistoryEntry::new(Timestamp(1_700_000_001_000_000), "popped")
                    .with("worker", "host-1234-w"),
                HistoryEntry::new(Timestamp(-1_500_000), "log message ✓")
                    .with("when", "caller's when")
                    .with("extra", serde_json::json!({"k": [1, 2]}))
                    .with("what", 42),
                HistoryEntry::new(Timestamp(1_700_000_002_000_000), "failed")
                    .with("what", "first")
                    .with("group", "g"),
            ];
            out.push(j);
        }
        // A big payload, and a fractional negative lock expiry.
        let mut r = record("big", JobState::Running);
        r.data = serde_json::to_string(&serde_json::json!({
            "blob": "x".repeat(100_000),
            "list": (0..1000).collect::<Vec<_>>(),
            "uni": "ñ€𝄞".repeat(1000),
        }))
        .unwrap();
        r.expires = Timestamp(-2_250_000);
        out.push(job(r));
        // A payload that is not JSON text at all is still carried as a string.
        let mut r = record("odd", JobState::Waiting);
        r.data = "not json \u{7f} \"".into();
        out.push(job(r));
        out
    }

    fn same(reply: &Reply) {
        let old = old_reply(reply).to_string();
        let new = serde_json::to_string(reply).unwrap();
        assert_eq!(new, old, "serialised reply differs");
        assert_eq!(reply.to_json().to_string(), old, "to_json differs");
        assert_eq!(serde_json::to_vec(reply).unwrap(), old.as_bytes());
    }

    #[test]
    fn jobs_serialise_exactly_as_the_value_trees_did() {
        let jobs = jobs();
        for j in &jobs {
            assert_eq!(serde_json::to_string(j).unwrap(), old_job(j).to_string());
            assert_eq!(j.to_json().to_string(), old_job(j).to_string());
            same(&Reply::Job(Some(Box::new(j.clone()))));
        }
        same(&Reply::Job(None));
        same(&Reply::Jobs(jobs.clone()));
        same(&Reply::Jobs(Vec::new()));
        same(&Reply::Tracked {
            jobs: jobs[..3].to_vec(),
            expired: vec!["gone".into()],
        });
        for f in jobs.iter().filter_map(|j| j.record.failure.as_ref()) {
            assert_eq!(f.to_json().to_string(), old_failure(f).to_string());
        }
        for h in jobs.iter().flat_map(|j| &j.history) {
            assert_eq!(h.to_json().to_string(), old_history(h).to_string());
        }
    }

    #[test]
    fn every_reply_serialises_exactly_as_the_value_tree_did() {
        let jobs = jobs();
        let timing = |count, mean: f64| TimingReport {
            count,
            mean,
            std: mean / 3.0,
            histogram: (0..148).map(|i| i % 7).collect(),
        };
        let queue = |name: &str, paused| QueueCounts {
            name: name.into(),
            counts: LocCounts {
                waiting: 1,
                running: 2,
                stalled: 3,
                scheduled: 4,
                depends: 5,
                throttled: 0,
            },
            recurring: 6,
            paused,
        };
        let mut config = Map::new();
        config.insert("heartbeat".into(), Value::from(60));
        config.insert("application".into(), Value::from("qless"));
        config.insert("zeta".into(), Value::from(0.5));
        let replies = vec![
            Reply::Nil,
            Reply::Bool(true),
            Reply::Bool(false),
            Reply::Int(-42),
            Reply::Int(i64::MAX),
            Reply::Str("jid-ü".into()),
            Reply::Expiry(Timestamp(1_700_000_060_999_999)),
            Reply::Expiry(Timestamp(-1)),
            Reply::Strings(vec!["a".into(), "b".into()]),
            Reply::Strings(Vec::new()),
            Reply::ConfigValue(Some(Value::from("x"))),
            Reply::ConfigValue(Some(Value::from(1.5))),
            Reply::ConfigValue(None),
            Reply::ConfigAll(config),
            Reply::FailedGroups(vec![("b-group".into(), 3), ("a-group".into(), 1)]),
            Reply::FailedGroups(Vec::new()),
            Reply::Page {
                total: 10,
                jobs: vec!["j1".into()],
            },
            Reply::Queue(queue("q", false)),
            Reply::Queues(vec![queue("a", true), queue("b", false)]),
            Reply::Recur(None),
            Reply::Recur(Some(RecurRecord {
                jid: "r".into(),
                klass: "K".into(),
                queue: "q".into(),
                data: "{\"a\":1}".into(),
                priority: 1,
                tags: vec!["t".into()],
                retries: 2,
                interval: 1.5,
                next_at: Timestamp(1_700_000_000_000_000),
                count: 3,
                backlog: 0,
                cron: None,
            })),
            Reply::Stats {
                retries: 1,
                failed: 2,
                failures: 3,
                wait: timing(0, 0.0),
                run: timing(5, 1.0 / 3.0),
            },
            Reply::Stats {
                retries: 0,
                failed: 0,
                failures: 0,
                wait: timing(1, f64::NAN),
                run: timing(2, 2.0),
            },
            Reply::WorkerJobs {
                jobs: vec!["j".into()],
                stalled: Vec::new(),
                last_seen: None,
            },
            Reply::WorkerJobs {
                jobs: Vec::new(),
                stalled: vec!["s".into()],
                last_seen: Some(Timestamp(1_700_000_000_250_000)),
            },
            Reply::Workers(vec![
                WorkerSummary {
                    name: "w1".into(),
                    jobs: 1,
                    stalled: 0,
                    last_seen: None,
                },
                WorkerSummary {
                    name: "w2".into(),
                    jobs: 0,
                    stalled: 2,
                    last_seen: Some(Timestamp(1_700_000_000_000_000)),
                },
            ]),
            Reply::Jobs(jobs[..4].to_vec()),
        ];
        for r in &replies {
            same(r);
        }
        let mut items: Vec<crate::error::Result<Reply>> = replies.into_iter().map(Ok).collect();
        items.push(Err(Error::conflict("Job x is not running")));
        items.push(Err(Error::not_found("Job \"y\" does not exist")));
        same(&Reply::Batch(items.clone()));
        same(&Reply::Batch(vec![Ok(Reply::Batch(items))]));
        same(&Reply::Batch(Vec::new()));
    }
}
