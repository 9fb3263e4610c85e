//! The job model: states, the stored record, and the job as callers see it.

use serde::ser::{SerializeMap, Serializer};
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};

use crate::time::Timestamp;

/// A job's lifecycle state, in lifecycle order.
///
/// "Stalled" has two meanings in qless and so in clew: a `running` job whose
/// lock has expired is *shown* as stalled in counts and listings while its
/// state still says `running`; the state `stalled` itself is set only by the
/// `timeout` command, which puts the job at the front of its queue.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum JobState {
    /// Waiting on unfinished dependencies; enters `waiting` (or `scheduled`)
    /// when the last one completes.
    Depends,
    /// Delayed until a time; promoted to `waiting` by the first pop, peek,
    /// queues or `jobs scheduled` call at or after that time.
    Scheduled,
    /// In its queue's work list, ready to be popped.
    Waiting,
    /// Held back by a full throttle at pop (see [`crate::throttle`]): out
    /// of the work list until a slot of the throttle frees.
    Throttled,
    /// Timed out by the `timeout` command: at the front of the work list.
    Stalled,
    /// Held by a worker under a lock that heartbeats extend.
    Running,
    /// Failed by its worker, by exhausted retries or by an expired lock with no
    /// retries left; stays until put again, unfailed or cancelled.
    Failed,
    /// Finished; kept for `jobs-history` seconds and at most
    /// `jobs-history-count` jobs, then deleted.
    Complete,
}

impl JobState {
    /// Every state, in lifecycle order.
    pub const ALL: [JobState; 8] = [
        JobState::Depends,
        JobState::Scheduled,
        JobState::Waiting,
        JobState::Throttled,
        JobState::Stalled,
        JobState::Running,
        JobState::Failed,
        JobState::Complete,
    ];

    /// The qless name of the state.
    pub fn as_str(self) -> &'static str {
        match self {
            JobState::Depends => "depends",
            JobState::Scheduled => "scheduled",
            JobState::Waiting => "waiting",
            JobState::Throttled => "throttled",
            JobState::Stalled => "stalled",
            JobState::Running => "running",
            JobState::Failed => "failed",
            JobState::Complete => "complete",
        }
    }

    /// Parses a qless state name.
    pub fn parse(s: &str) -> Option<JobState> {
        JobState::ALL.into_iter().find(|st| st.as_str() == s)
    }
}

impl std::fmt::Display for JobState {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Where a job sits in its queue: which of qless's per-queue sets holds it.
///
/// This is kept apart from [`JobState`] because qless lets the two differ
/// (a timed-out job is `stalled` but sits in the work list).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Loc {
    /// In no queue set (failed jobs, and jobs being moved).
    None,
    /// The work list, ordered by `sort_prio` descending, `sort_time`, `seq`.
    Work,
    /// The lock set: running; `sort_time` is the lock expiry.
    Locked,
    /// The scheduled set; `sort_time` is when it becomes due.
    Scheduled,
    /// The depends set; `sort_time` is when it started waiting.
    Depends,
    /// The completed set (queue is empty); `sort_time` is the completion time.
    Complete,
    /// Held back by a full throttle: out of the work list, keeping its
    /// work-list `sort_prio`, `sort_time` and `seq` so that it goes back to
    /// its place when promoted (see [`crate::throttle`]).
    Throttled,
}

impl Loc {
    /// A stable small code for storage.
    pub fn code(self) -> i64 {
        match self {
            Loc::None => 0,
            Loc::Work => 1,
            Loc::Locked => 2,
            Loc::Scheduled => 3,
            Loc::Depends => 4,
            Loc::Complete => 5,
            Loc::Throttled => 6,
        }
    }

    /// The inverse of [`Loc::code`].
    pub fn from_code(code: i64) -> Option<Loc> {
        Some(match code {
            0 => Loc::None,
            1 => Loc::Work,
            2 => Loc::Locked,
            3 => Loc::Scheduled,
            4 => Loc::Depends,
            5 => Loc::Complete,
            6 => Loc::Throttled,
            _ => return None,
        })
    }
}

/// Why a job last failed: the group, the message, when, and which worker.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Failure {
    /// The failure group (for example `Klass:ErrorClass` or `failed-retries-<queue>`).
    pub group: String,
    /// The message (error text, often with a backtrace).
    pub message: String,
    /// When it failed.
    pub when: Timestamp,
    /// The worker that reported it (`""` when none did).
    pub worker: String,
}

impl Failure {
    /// The qless JSON shape: `{group, message, when (whole seconds), worker}`.
    ///
    /// (`Failure`'s own `Serialize` is the stored form; this view is
    /// `FailureView`.)
    pub fn to_json(&self) -> Value {
        to_value(&FailureView(self))
    }
}

/// A failure as the qless job object shows it.
struct FailureView<'a>(&'a Failure);

impl Serialize for FailureView<'_> {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        let f = self.0;
        let mut m = s.serialize_map(Some(4))?;
        m.serialize_entry("group", &f.group)?;
        m.serialize_entry("message", &f.message)?;
        m.serialize_entry("when", &f.when.floor_secs())?;
        m.serialize_entry("worker", &f.worker)?;
        m.end()
    }
}

/// Seconds rendered as [`crate::time::secs_json`] renders them (an integer
/// when whole, a float otherwise).
pub(crate) struct Secs(pub(crate) f64);

impl Serialize for Secs {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        // A number Value holds no heap data: the rule stays in one place.
        crate::time::secs_json(self.0).serialize(s)
    }
}

/// `{}`.
struct EmptyObject;

impl Serialize for EmptyObject {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_map(Some(0))?.end()
    }
}

/// A view serialised to a `Value` (the views write only strings, numbers,
/// and JSON values, so this cannot fail).
pub(crate) fn to_value<T: Serialize + ?Sized>(v: &T) -> Value {
    serde_json::to_value(v).expect("a JSON view serialises to a Value")
}

/// One entry of a job's history: what happened, when, and event details.
#[derive(Clone, Debug, PartialEq)]
pub struct HistoryEntry {
    /// When it happened (full precision; qless views floor it to seconds).
    pub when: Timestamp,
    /// What happened: `put`, `popped`, `done`, `failed`, `timed-out`, or a
    /// caller's log message.
    pub what: String,
    /// Event details (`q`, `worker`, `group`, or a log entry's data).
    pub extra: Map<String, Value>,
}

impl HistoryEntry {
    /// An entry with no details.
    pub fn new(when: Timestamp, what: &str) -> HistoryEntry {
        HistoryEntry {
            when,
            what: what.to_owned(),
            extra: Map::new(),
        }
    }

    /// Adds a detail.
    pub fn with(mut self, key: &str, value: impl Into<Value>) -> HistoryEntry {
        self.extra.insert(key.to_owned(), value.into());
        self
    }

    /// The qless JSON shape: `{what, when (whole seconds), ...details}`
    /// (see its `Serialize`).
    pub fn to_json(&self) -> Value {
        to_value(self)
    }
}

/// The qless JSON shape of a history entry: its details in order, then
/// `what` and `when` (whole seconds). A detail named `what` or `when` keeps
/// its place and takes the entry's value (as inserting into the ordered map
/// did).
impl Serialize for HistoryEntry {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        let when = self.when.floor_secs();
        let has_what = self.extra.contains_key("what");
        let has_when = self.extra.contains_key("when");
        let len = self.extra.len() + usize::from(!has_what) + usize::from(!has_when);
        let mut m = s.serialize_map(Some(len))?;
        for (k, v) in &self.extra {
            match k.as_str() {
                "what" => m.serialize_entry(k, &self.what)?,
                "when" => m.serialize_entry(k, &when)?,
                _ => m.serialize_entry(k, v)?,
            }
        }
        if !has_what {
            m.serialize_entry("what", &self.what)?;
        }
        if !has_when {
            m.serialize_entry("when", &when)?;
        }
        m.end()
    }
}

/// A job as stored: every field a store keeps in the job's row.
///
/// Stores persist this whole; the logic in [`crate::logic`] is the only code
/// that changes it. `loc`, `sort_prio`, `sort_time` and `seq` place the job in
/// its queue's sets (see [`Loc`]).
#[derive(Clone, Debug, PartialEq)]
pub struct JobRecord {
    /// The job id.
    pub jid: String,
    /// The job class (opaque to clew).
    pub klass: String,
    /// The queue (empty once complete).
    pub queue: String,
    /// The lifecycle state.
    pub state: JobState,
    /// The payload: a JSON text, stored exactly as given.
    pub data: String,
    /// Higher is popped sooner. May be negative.
    pub priority: i64,
    /// Tags in insertion order, no duplicates.
    pub tags: Vec<String>,
    /// The worker holding or last holding the job, or `""`.
    pub worker: String,
    /// Lock expiry while running, else [`Timestamp::ZERO`].
    pub expires: Timestamp,
    /// Allowed retries per queue.
    pub retries: i64,
    /// Retries left.
    pub remaining: i64,
    /// When the job last entered a wait or run phase (drives wait/run stats).
    pub time: Timestamp,
    /// Set when a lost lock has been given its grace period.
    pub grace: bool,
    /// A delay remembered while the job waits on dependencies.
    pub scheduled: Option<Timestamp>,
    /// The last failure (kept across a re-put until the job completes).
    pub failure: Option<Failure>,
    /// The recurring template that spawned the job.
    pub spawned_from: Option<String>,
    /// Whether the job is in its worker's job set.
    pub worker_listed: bool,
    /// The failure group list holding the job, if any.
    pub fail_group: Option<String>,
    /// Position in that list (newest is highest).
    pub fail_seq: i64,
    /// Which queue set holds the job.
    pub loc: Loc,
    /// Ordering priority in the work list (the job's priority, or
    /// `i64::MAX` for the front).
    pub sort_prio: i64,
    /// Ordering time within `loc` (see [`Loc`]).
    pub sort_time: Timestamp,
    /// Tie-breaker: placement sequence number (FIFO within equal times).
    pub seq: i64,
    /// User metadata (resque-clues metadata: set at put, added to by a
    /// running handler; keys starting with `_` are the system's and never
    /// stored). Carried on the job's lifecycle events.
    pub metadata: Map<String, Value>,
    /// The uniqueness key the job carries (see [`crate::unique`]); it holds
    /// the key only while it is neither failed nor complete.
    pub unique_key: Option<String>,
    /// The batch the job belongs to (see [`crate::batch`]).
    pub batch: Option<String>,
    /// How the batch counts the job now (kept by the logic's one save
    /// hook; meaningless without `batch`).
    pub batch_outcome: crate::batch::BatchOutcome,
    /// Named throttles the job must hold a slot of to run (see
    /// [`crate::throttle`]); no duplicates.
    pub throttles: Vec<String>,
}

/// A recurring job template.
#[derive(Clone, Debug, PartialEq)]
pub struct RecurRecord {
    /// The template's id; children are `<jid>-<count>`.
    pub jid: String,
    /// The children's class.
    pub klass: String,
    /// The queue the children go to.
    pub queue: String,
    /// The children's payload (JSON text).
    pub data: String,
    /// The children's priority.
    pub priority: i64,
    /// The children's tags.
    pub tags: Vec<String>,
    /// The children's retries.
    pub retries: i64,
    /// Seconds between spawns (> 0).
    pub interval: f64,
    /// When the next child is due.
    pub next_at: Timestamp,
    /// How many children have been spawned (survives a re-recur).
    pub count: i64,
    /// If non-zero, at most about `backlog + 1` children are spawned after a
    /// long idle period.
    pub backlog: i64,
    /// The cron schedule; when set the template fires on its ticks (and
    /// `interval` is 0 and unused). Boxed: most templates have none.
    pub cron: Option<Box<crate::cron::CronSpec>>,
}

impl RecurRecord {
    /// The qless `recur.get` shape; a cron template adds `cron`, `timezone`,
    /// `missed` and `next_at`.
    pub fn to_json(&self) -> Value {
        let mut v = serde_json::json!({
            "jid": self.jid,
            "klass": self.klass,
            "state": "recur",
            "queue": self.queue,
            "priority": self.priority,
            "interval": crate::time::secs_json(self.interval),
            "retries": self.retries,
            "count": self.count,
            "data": self.data,
            "tags": self.tags,
            "backlog": self.backlog,
        });
        if let (Some(cron), serde_json::Value::Object(m)) = (&self.cron, &mut v) {
            m.insert("cron".into(), cron.expr.clone().into());
            m.insert("timezone".into(), cron.zone_name().into());
            m.insert("missed".into(), cron.missed.as_str().into());
            m.insert("next_at".into(), self.next_at.to_json());
        }
        v
    }
}

/// A job as callers see it (`get`, `peek`, `pop`, `multiget`, `track`).
#[derive(Clone, Debug, PartialEq)]
pub struct Job {
    /// The stored record.
    pub record: JobRecord,
    /// The history, oldest first.
    pub history: Vec<HistoryEntry>,
    /// Whether the job is tracked.
    pub tracked: bool,
    /// Jids this job waits for.
    pub dependencies: Vec<String>,
    /// Jids waiting for this job.
    pub dependents: Vec<String>,
}

impl Job {
    /// The job id.
    pub fn jid(&self) -> &str {
        &self.record.jid
    }

    /// The state.
    pub fn state(&self) -> JobState {
        self.record.state
    }

    /// The qless job object, in natural JSON (empty lists are `[]`, a missing
    /// `spawned_from_jid` is `null`, no failure is `{}`). The shape is
    /// defined once, by [`Job::serialize_with_data`]; replies are written
    /// straight from it (`serde_json::to_vec(&job)`), this is for callers
    /// that want a tree.
    pub fn to_json(&self) -> Value {
        to_value(self)
    }

    /// Writes the qless job object with `data` in place of the payload text
    /// (the resource API shows the payload as a JSON value).
    ///
    /// Keys, in order: `jid`, `klass`, `state`, `queue`, `worker`,
    /// `priority`, `expires`, `retries`, `remaining`, `data`, `tags`,
    /// `history`, `failure`, `tracked`, `dependencies`, `dependents`,
    /// `spawned_from_jid`, `metadata` and `throttles` only when there are
    /// some, `unique_key` only when the job has one and `batch` only when
    /// the job belongs to one (so other jobs keep qless's exact shape).
    pub fn serialize_with_data<D, S>(&self, data: &D, s: S) -> Result<S::Ok, S::Error>
    where
        D: Serialize + ?Sized,
        S: Serializer,
    {
        let r = &self.record;
        let with_metadata = !r.metadata.is_empty();
        let with_throttles = !r.throttles.is_empty();
        let extra = usize::from(with_metadata)
            + usize::from(with_throttles)
            + usize::from(r.unique_key.is_some())
            + usize::from(r.batch.is_some());
        let mut m = s.serialize_map(Some(17 + extra))?;
        m.serialize_entry("jid", &r.jid)?;
        m.serialize_entry("klass", &r.klass)?;
        m.serialize_entry("state", r.state.as_str())?;
        m.serialize_entry("queue", &r.queue)?;
        m.serialize_entry("worker", &r.worker)?;
        m.serialize_entry("priority", &r.priority)?;
        m.serialize_entry("expires", &Secs(r.expires.as_secs_f64()))?;
        m.serialize_entry("retries", &r.retries)?;
        m.serialize_entry("remaining", &r.remaining)?;
        m.serialize_entry("data", data)?;
        m.serialize_entry("tags", &r.tags)?;
        m.serialize_entry("history", &self.history)?;
        match &r.failure {
            Some(f) => m.serialize_entry("failure", &FailureView(f))?,
            None => m.serialize_entry("failure", &EmptyObject)?,
        }
        m.serialize_entry("tracked", &self.tracked)?;
        m.serialize_entry("dependencies", &self.dependencies)?;
        m.serialize_entry("dependents", &self.dependents)?;
        m.serialize_entry("spawned_from_jid", &r.spawned_from)?;
        if with_metadata {
            m.serialize_entry("metadata", &r.metadata)?;
        }
        if with_throttles {
            m.serialize_entry("throttles", &r.throttles)?;
        }
        if let Some(key) = &r.unique_key {
            m.serialize_entry("unique_key", key)?;
        }
        if let Some(b) = &r.batch {
            m.serialize_entry("batch", b)?;
        }
        m.end()
    }
}

/// The qless job object (see [`Job::serialize_with_data`]), payload as its text.
impl Serialize for Job {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        self.serialize_with_data(self.record.data.as_str(), s)
    }
}
