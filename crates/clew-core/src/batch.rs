//! Batches: a group of jobs with an id, progress counters and a callback job
//! put once when every job of the batch has finished.
//!
//! A job joins a batch when it is put with [`crate::command::PutParams::batch`]
//! (all of a batch's first jobs join in the one transaction of
//! [`crate::Command::BatchCreate`]); it never leaves it. A batch counts its
//! jobs by outcome: pending (not finished), complete, failed, canceled.
//! "Finished" is complete, failed or canceled; a failed job put again,
//! retried or unfailed is pending again, and a job completed into another
//! queue (`complete ... next`) is not finished. When pending reaches 0 for
//! the first time the batch is finished: its callback job is put, in the same
//! transaction, exactly once. Jobs may be added while the batch is open (not
//! finished), as with Sidekiq Pro batches. The rules are in
//! `logic/batches.rs`; every job save passes through its one hook.

use serde::ser::{SerializeMap, Serializer};
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};

use crate::job::{JobState, Secs};
use crate::time::Timestamp;

/// How a batch counts one of its jobs.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
pub enum BatchOutcome {
    /// Not finished (waiting, scheduled, depends, running, stalled).
    #[default]
    Pending,
    /// Complete.
    Complete,
    /// Failed (until put again, retried or unfailed).
    Failed,
}

impl BatchOutcome {
    /// The outcome a job in `state` counts as.
    pub fn of(state: JobState) -> BatchOutcome {
        match state {
            JobState::Complete => BatchOutcome::Complete,
            JobState::Failed => BatchOutcome::Failed,
            _ => BatchOutcome::Pending,
        }
    }

    /// A stable small code for storage.
    pub fn code(self) -> i64 {
        match self {
            BatchOutcome::Pending => 0,
            BatchOutcome::Complete => 1,
            BatchOutcome::Failed => 2,
        }
    }

    /// The inverse of [`BatchOutcome::code`].
    pub fn from_code(code: i64) -> Option<BatchOutcome> {
        Some(match code {
            0 => BatchOutcome::Pending,
            1 => BatchOutcome::Complete,
            2 => BatchOutcome::Failed,
            _ => return None,
        })
    }
}

/// The job put when a batch finishes. Its data is `data` (a JSON object)
/// with the key `batch` set to `{id, total, complete, failed, canceled}`.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct CallbackSpec {
    /// The queue it is put into.
    pub queue: String,
    /// Its class.
    pub klass: String,
    /// Its jid (an empty one gets a new one at creation, as a put's does).
    #[serde(default)]
    pub jid: String,
    /// The caller's data, a JSON object (default `{}`).
    #[serde(default = "empty_object")]
    pub data: Map<String, Value>,
    /// Its priority (default 0).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub priority: Option<i64>,
    /// Its tags.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub tags: Vec<String>,
    /// Its retries (default 5).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub retries: Option<i64>,
}

fn empty_object() -> Map<String, Value> {
    Map::new()
}

/// What the caller says about a batch at creation (stored as one JSON text).
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct BatchSpec {
    /// Free text for people.
    #[serde(default)]
    pub description: String,
    /// The caller's metadata (a JSON object).
    #[serde(default)]
    pub metadata: Map<String, Value>,
    /// The callback job, if any.
    #[serde(default)]
    pub callback: Option<CallbackSpec>,
}

/// A batch as stored.
#[derive(Clone, Debug, PartialEq)]
pub struct BatchRecord {
    /// The batch id.
    pub id: String,
    /// When it was created.
    pub created: Timestamp,
    /// Description, metadata and callback.
    pub spec: BatchSpec,
    /// Jobs that ever joined it.
    pub total: i64,
    /// Jobs not finished.
    pub pending: i64,
    /// Jobs complete.
    pub complete: i64,
    /// Jobs failed.
    pub failed: i64,
    /// Jobs canceled.
    pub canceled: i64,
    /// When pending first reached 0 (the batch is closed to new jobs).
    pub finished: Option<Timestamp>,
    /// The callback's jid, once it was put.
    pub callback_jid: Option<String>,
}

impl BatchRecord {
    /// Adds `delta` to the counter of `outcome`.
    pub fn count(&mut self, outcome: BatchOutcome, delta: i64) {
        match outcome {
            BatchOutcome::Pending => self.pending += delta,
            BatchOutcome::Complete => self.complete += delta,
            BatchOutcome::Failed => self.failed += delta,
        }
    }
}

/// A batch as callers see it: the record and its callback job's state
/// (`None` before it is put, or once it expired or was canceled).
#[derive(Clone, Debug, PartialEq)]
pub struct BatchView {
    /// The record.
    pub batch: BatchRecord,
    /// The callback job's state when it exists.
    pub callback_state: Option<JobState>,
}

/// `{id, created, description, metadata, total, pending, complete, failed,
/// canceled, finished, callback, callback_jid, callback_state}` (times in
/// seconds; `finished`, `callback`, `callback_jid`, `callback_state` are
/// `null` when absent).
impl Serialize for BatchView {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        let b = &self.batch;
        let mut m = s.serialize_map(Some(13))?;
        m.serialize_entry("id", &b.id)?;
        m.serialize_entry("created", &Secs(b.created.as_secs_f64()))?;
        m.serialize_entry("description", &b.spec.description)?;
        m.serialize_entry("metadata", &b.spec.metadata)?;
        m.serialize_entry("total", &b.total)?;
        m.serialize_entry("pending", &b.pending)?;
        m.serialize_entry("complete", &b.complete)?;
        m.serialize_entry("failed", &b.failed)?;
        m.serialize_entry("canceled", &b.canceled)?;
        m.serialize_entry("finished", &b.finished.map(|t| Secs(t.as_secs_f64())))?;
        m.serialize_entry("callback", &b.spec.callback)?;
        m.serialize_entry("callback_jid", &b.callback_jid)?;
        m.serialize_entry("callback_state", &self.callback_state.map(JobState::as_str))?;
        m.end()
    }
}

/// Arguments of [`crate::Command::BatchCreate`].
#[derive(Clone, Debug, Default, PartialEq)]
pub struct BatchParams {
    /// The batch id (an empty one gets a new one from the engine).
    pub id: String,
    /// Description, metadata and callback.
    pub spec: BatchSpec,
    /// The first jobs (at least one); each joins the batch.
    pub jobs: Vec<crate::command::PutParams>,
}
