//! Lifecycle events in resque-clues' vocabulary: `enqueued`, `dequeued`,
//! `perform_started`, `perform_finished`, `failed`.
//!
//! The engine writes one [`LifecycleEvent`] per lifecycle step into the
//! store's durable lifecycle log, in the same transaction as the state
//! change; publishers (crate `clew-events`) read that log by sequence number
//! and marshal each event (resque-clues JSON by default).

use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};

use crate::time::Timestamp;

/// Which step of a job's life.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum LifecycleKind {
    /// Put into a queue.
    Enqueued,
    /// Handed to a worker (carries `time_in_queue`).
    Dequeued,
    /// The worker started performing it.
    PerformStarted,
    /// Performed successfully (carries `time_to_perform`).
    PerformFinished,
    /// The perform failed (carries `time_to_perform` and the error).
    Failed,
}

impl LifecycleKind {
    /// The resque-clues `event_type` name.
    pub fn as_str(self) -> &'static str {
        match self {
            LifecycleKind::Enqueued => "enqueued",
            LifecycleKind::Dequeued => "dequeued",
            LifecycleKind::PerformStarted => "perform_started",
            LifecycleKind::PerformFinished => "perform_finished",
            LifecycleKind::Failed => "failed",
        }
    }

    /// Parses an `event_type` name.
    pub fn parse(s: &str) -> Option<LifecycleKind> {
        [
            LifecycleKind::Enqueued,
            LifecycleKind::Dequeued,
            LifecycleKind::PerformStarted,
            LifecycleKind::PerformFinished,
            LifecycleKind::Failed,
        ]
        .into_iter()
        .find(|k| k.as_str() == s)
    }
}

/// Where an event happened: the host and process of the caller.
#[derive(Clone, Debug, Default, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct Origin {
    /// Host name.
    pub hostname: String,
    /// Process id.
    pub process: u32,
}

impl Origin {
    /// This process: the host name (from `/proc/sys/kernel/hostname`, then
    /// `HOSTNAME`, else `localhost`) and the process id.
    pub fn this_process() -> Origin {
        let hostname = std::fs::read_to_string("/proc/sys/kernel/hostname")
            .ok()
            .map(|h| h.trim().to_owned())
            .filter(|h| !h.is_empty())
            .or_else(|| std::env::var("HOSTNAME").ok().filter(|h| !h.is_empty()))
            .unwrap_or_else(|| "localhost".to_owned());
        Origin {
            hostname,
            process: std::process::id(),
        }
    }
}

/// The error of a `failed` event.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct LifecycleError {
    /// The error class (the failure group).
    pub class: String,
    /// The message.
    pub message: String,
    /// The backtrace, if any.
    pub backtrace: Option<String>,
}

/// One lifecycle event of one job.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct LifecycleEvent {
    /// Position in the store's lifecycle log (0 before the store numbers it).
    pub seq: i64,
    /// Which step.
    pub kind: LifecycleKind,
    /// When it happened.
    pub at: Timestamp,
    /// The job.
    pub jid: String,
    /// The queue.
    pub queue: String,
    /// The job class (`worker_class`).
    pub klass: String,
    /// The job's payload (`args`), as JSON.
    pub args: Value,
    /// User metadata (keys not starting with `_`).
    pub metadata: Map<String, Value>,
    /// Where it happened.
    pub origin: Origin,
    /// `dequeued`: seconds the job waited in its queue.
    pub time_in_queue: Option<f64>,
    /// `perform_finished` / `failed`: seconds from dequeue to the end.
    pub time_to_perform: Option<f64>,
    /// `failed`: the error.
    pub error: Option<LifecycleError>,
}
