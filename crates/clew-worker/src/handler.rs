//! What a worker runs: the [`Handler`] trait, the [`Outcome`] it returns and
//! the [`JobContext`] it gets; [`NoopHandler`], which completes every job.

use std::time::Duration;

use async_trait::async_trait;
use clew_client::{Client, JobView};
use serde_json::{Map, Value};
use tokio_util::sync::CancellationToken;

use crate::backoff::Backoff;

/// A job as a handler sees it (the natural job document: jid, klass, queue,
/// data as a JSON text, tags, retries, remaining, history...).
pub type Job = JobView;

/// What became of a job: the handler's decision, as a value.
#[derive(Clone, Debug, PartialEq)]
pub enum Outcome {
    /// Finished. `data` replaces the job's payload (a JSON text) when given.
    Complete {
        /// New payload, or `None` to keep the job's.
        data: Option<String>,
    },
    /// Finished here; continue in another queue.
    Advance {
        /// The next queue.
        queue: String,
        /// Seconds before it may run there.
        delay: f64,
        /// Jobs it must wait for there.
        depends: Vec<String>,
        /// New payload, or `None` to keep the job's.
        data: Option<String>,
    },
    /// Try again later (spends one of the job's retries; when none are left
    /// the job fails in `failed-retries-<queue>`, or in `group` if given).
    Retry {
        /// How long to wait; `None` uses the backoff policy.
        delay: Option<Duration>,
        /// Why (recorded as the failure group and message if retries run out).
        group: Option<String>,
        /// Why, in words.
        message: Option<String>,
    },
    /// Failed for good, into a failure group.
    Fail {
        /// The failure group, e.g. `Klass:ErrorClass`.
        group: String,
        /// The message (error text, backtrace).
        message: String,
    },
    /// Drop the job (cancel it).
    Cancel,
}

impl Outcome {
    /// Complete, keeping the payload.
    pub fn complete() -> Outcome {
        Outcome::Complete { data: None }
    }

    /// Complete into `queue`.
    pub fn advance(queue: impl Into<String>) -> Outcome {
        Outcome::Advance {
            queue: queue.into(),
            delay: 0.0,
            depends: Vec::new(),
            data: None,
        }
    }

    /// Retry after the backoff policy's delay.
    pub fn retry() -> Outcome {
        Outcome::Retry {
            delay: None,
            group: None,
            message: None,
        }
    }

    /// Retry after `delay`.
    pub fn retry_in(delay: Duration) -> Outcome {
        Outcome::Retry {
            delay: Some(delay),
            group: None,
            message: None,
        }
    }

    /// Fail into `group` with `message`.
    pub fn fail(group: impl Into<String>, message: impl Into<String>) -> Outcome {
        Outcome::Fail {
            group: group.into(),
            message: message.into(),
        }
    }
}

/// What a running job can use: its cancellation signal, a way to write to
/// its history, and the client.
#[derive(Clone, Debug)]
pub struct JobContext {
    jid: String,
    worker: String,
    client: Client,
    cancel: CancellationToken,
    metadata: std::sync::Arc<std::sync::Mutex<Map<String, Value>>>,
}

impl JobContext {
    /// A context for `jid` run by `worker`; `cancel` fires when the job must
    /// stop (lock lost, timed out, worker stopping now).
    pub fn new(
        jid: String,
        worker: String,
        client: Client,
        cancel: CancellationToken,
    ) -> JobContext {
        JobContext {
            jid,
            worker,
            client,
            cancel,
            metadata: Default::default(),
        }
    }

    /// The job id.
    pub fn jid(&self) -> &str {
        &self.jid
    }

    /// The worker's name.
    pub fn worker(&self) -> &str {
        &self.worker
    }

    /// The client the worker uses.
    pub fn client(&self) -> &Client {
        &self.client
    }

    /// Whether the job must stop (its result will be discarded).
    pub fn is_cancelled(&self) -> bool {
        self.cancel.is_cancelled()
    }

    /// Resolves when the job must stop.
    pub async fn cancelled(&self) {
        self.cancel.cancelled().await
    }

    /// The cancellation token (to hand to child tasks).
    pub fn cancel_token(&self) -> &CancellationToken {
        &self.cancel
    }

    /// Adds runtime metadata (resque-clues): it appears on the job's
    /// `perform_finished` or `failed` event and stays on the job. Keys
    /// starting with `_` are the system's and are ignored.
    pub fn add_metadata(&self, key: &str, value: impl Into<Value>) {
        if key.starts_with('_') {
            return;
        }
        if let Ok(mut m) = self.metadata.lock() {
            m.insert(key.to_owned(), value.into());
        }
    }

    /// The runtime metadata added so far (`None` when none).
    pub fn added_metadata(&self) -> Option<Map<String, Value>> {
        self.metadata
            .lock()
            .ok()
            .filter(|m| !m.is_empty())
            .map(|m| m.clone())
    }

    /// Appends an entry to the job's history (`what` = `message`, with the
    /// keys of `data`).
    pub async fn log(
        &self,
        message: &str,
        data: Option<Map<String, Value>>,
    ) -> clew_core::Result<()> {
        self.client
            .execute(clew_core::Command::Log {
                jid: self.jid.clone(),
                message: message.to_owned(),
                data,
            })
            .await
            .map(|_| ())
    }
}

/// Runs jobs. Implementations decide each job's [`Outcome`].
///
/// `perform` must watch [`JobContext::cancelled`] in long waits, or at least
/// not mind being dropped: when the job must stop, the worker stops polling
/// the future and discards its result.
#[async_trait]
pub trait Handler: Send + Sync + 'static {
    /// Runs one job.
    async fn perform(&self, job: &Job, ctx: &JobContext) -> Outcome;

    /// This job's time limit, overriding the worker's per-queue and default
    /// limits. Defaults to none.
    fn timeout(&self, _job: &Job) -> Option<Duration> {
        None
    }

    /// This job's retry backoff, overriding the worker's per-queue and
    /// default policies. Defaults to none.
    fn backoff(&self, _job: &Job) -> Option<Backoff> {
        None
    }
}

/// A handler that completes every job at once and runs nothing (`clew work
/// --noop`): for benchmarks and smoke tests of the runtime around it
/// (pops, heartbeats, lifecycle events, batched completion).
#[derive(Clone, Copy, Debug, Default)]
pub struct NoopHandler;

#[async_trait]
impl Handler for NoopHandler {
    async fn perform(&self, _job: &Job, _ctx: &JobContext) -> Outcome {
        Outcome::complete()
    }
}
