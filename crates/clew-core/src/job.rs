//! The job model: states, the stored record, and the job as callers see it.

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
    pub const ALL: [JobState; 7] = [
        JobState::Depends,
        JobState::Scheduled,
        JobState::Waiting,
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
    pub fn to_json(&self) -> Value {
        serde_json::json!({
            "group": self.group,
            "message": self.message,
            "when": self.when.floor_secs(),
            "worker": self.worker,
        })
    }
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

    /// The qless JSON shape: `{what, when (whole seconds), ...details}`.
    pub fn to_json(&self) -> Value {
        let mut m = Map::new();
        for (k, v) in &self.extra {
            m.insert(k.clone(), v.clone());
        }
        m.insert("what".into(), Value::from(self.what.clone()));
        m.insert("when".into(), Value::from(self.when.floor_secs()));
        Value::Object(m)
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
}

impl RecurRecord {
    /// The qless `recur.get` shape.
    pub fn to_json(&self) -> Value {
        serde_json::json!({
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
        })
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
    /// `spawned_from_jid` is `null`, no failure is `{}`).
    pub fn to_json(&self) -> Value {
        let r = &self.record;
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
            "history": self.history.iter().map(HistoryEntry::to_json).collect::<Vec<_>>(),
            "failure": r.failure.as_ref().map(Failure::to_json).unwrap_or_else(|| Value::Object(Map::new())),
            "tracked": self.tracked,
            "dependencies": self.dependencies,
            "dependents": self.dependents,
            "spawned_from_jid": r.spawned_from,
        });
        // Only when set, so a job without metadata keeps qless's exact shape.
        if !r.metadata.is_empty() {
            v["metadata"] = Value::Object(r.metadata.clone());
        }
        v
    }
}
