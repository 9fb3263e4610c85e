//! Helpers shared by the runtime tests: a temporary store, handlers from
//! closures, and waiting for conditions with a deadline.

#![allow(dead_code)]

use std::future::Future;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use clew_client::{Client, JobView};
use clew_core::command::PutParams;
use clew_core::{Command, Engine};
use clew_worker::{
    Backoff, Handler, Job, JobContext, Outcome, ShutdownReport, Worker, WorkerConfig, WorkerControl,
};
use serde_json::Value;
use tempfile::TempDir;
use tokio::task::JoinHandle;

/// How long any wait may take before the test fails.
pub const DEADLINE: Duration = Duration::from_secs(10);

/// A client over a fresh temporary SQLite store (keep the directory).
pub fn store() -> (Client, TempDir) {
    let (store, dir) = clew_sqlite::testing::temp_store();
    (Client::local(Engine::new(store)), dir)
}

/// Waits until `cond` holds, polling every 10 ms, up to [`DEADLINE`].
pub async fn wait_for<F, Fut>(what: &str, mut cond: F)
where
    F: FnMut() -> Fut,
    Fut: Future<Output = bool>,
{
    let start = tokio::time::Instant::now();
    while !cond().await {
        assert!(
            start.elapsed() < DEADLINE,
            "timed out after {DEADLINE:?} waiting for {what}"
        );
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
}

/// Waits for `jid` to reach `state`; returns the job.
pub async fn wait_state(client: &Client, jid: &str, state: &str) -> JobView {
    wait_for(&format!("job {jid} to be {state}"), || async {
        job(client, jid).await.map(|j| j.state) == Some(state.to_owned())
    })
    .await;
    job(client, jid).await.expect("job exists")
}

/// The job, or `None`.
pub async fn job(client: &Client, jid: &str) -> Option<JobView> {
    client.get(jid).await.expect("get")
}

/// Puts a job of class `klass` into `queue` with `retries`; returns its jid.
pub async fn put(client: &Client, queue: &str, klass: &str, retries: i64) -> String {
    let mut p = PutParams::new(queue, klass);
    p.retries = Some(retries);
    client.put(p).await.expect("put")
}

/// A worker configuration for tests: fast polling, a unique name.
pub fn config(name: &str, queues: &[&str]) -> WorkerConfig {
    let mut c = WorkerConfig::new(queues.iter().copied());
    c.name = name.to_owned();
    c.poll_interval = Duration::from_millis(20);
    c.shutdown_grace = Duration::from_secs(5);
    c
}

/// A backoff without jitter: `base` then ×`factor`.
pub fn exact_backoff(base: Duration, factor: f64) -> Backoff {
    Backoff {
        base,
        factor,
        max: Duration::from_secs(86_400),
        jitter: 0.0,
    }
}

/// Starts `worker` in a task.
pub fn start(worker: Worker) -> (WorkerControl, JoinHandle<ShutdownReport>) {
    let control = worker.control();
    (control, tokio::spawn(worker.run()))
}

/// Stops after the running jobs and returns the report.
pub async fn finish(control: &WorkerControl, run: JoinHandle<ShutdownReport>) -> ShutdownReport {
    control.stop_after_running();
    tokio::time::timeout(DEADLINE, run)
        .await
        .expect("the worker stops in time")
        .expect("the worker task does not panic")
}

/// Sets a configuration key.
pub async fn config_set(client: &Client, key: &str, value: &str) {
    client
        .execute(Command::ConfigSet {
            key: key.to_owned(),
            value: value.to_owned(),
        })
        .await
        .expect("config.set");
}

/// The `what` of each history entry.
pub fn history_whats(job: &JobView) -> Vec<String> {
    job.history
        .iter()
        .filter_map(|h| h.get("what").and_then(Value::as_str).map(str::to_owned))
        .collect()
}

/// A handler from a closure.
pub struct FnHandler<F>(pub F);

#[async_trait]
impl<F, Fut> Handler for FnHandler<F>
where
    F: Fn(Job, JobContext) -> Fut + Send + Sync + 'static,
    Fut: Future<Output = Outcome> + Send + 'static,
{
    async fn perform(&self, job: &Job, ctx: &JobContext) -> Outcome {
        (self.0)(job.clone(), ctx.clone()).await
    }
}

/// Sets its flag when dropped (to see that a handler's future was dropped).
pub struct DropFlag(pub Arc<AtomicBool>);

impl Drop for DropFlag {
    fn drop(&mut self) {
        self.0.store(true, Ordering::SeqCst);
    }
}

/// A flag that can be awaited.
#[derive(Clone, Default)]
pub struct Flag(pub Arc<AtomicBool>);

impl Flag {
    /// Sets the flag.
    pub fn set(&self) {
        self.0.store(true, Ordering::SeqCst);
    }

    /// Whether it is set.
    pub fn get(&self) -> bool {
        self.0.load(Ordering::SeqCst)
    }

    /// Waits (up to the deadline) for the flag.
    pub async fn wait(&self, what: &str) {
        wait_for(what, || async { self.get() }).await;
    }
}
