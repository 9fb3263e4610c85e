//! clew-worker: the worker runtime.
//!
//! # Layout
//! * [`handler`]: the [`Handler`] trait, the [`Outcome`] it returns, the
//!   [`JobContext`] it gets, and [`NoopHandler`] (completes every job).
//! * [`backoff`]: exponential [`Backoff`] with jitter.
//! * `exec` (Unix): `ProcessHandler`, any program as a handler.
//! * [`reserver`]: the order queues are popped in ([`Reserver`]: ordered,
//!   round-robin, shuffled round-robin) and [`QueueOrder`], its pure state.
//! * [`middleware`]: the around-perform chain ([`Middleware`], [`Next`]).
//! * [`worker`]: the runtime ([`Worker`], [`WorkerConfig`], [`WorkerControl`],
//!   [`ShutdownReport`]): concurrency, heartbeats, time limits, retries with
//!   backoff, panics, stopping now or after the running jobs, pausing.
//! * `completer` (internal): one task per worker reporting outcomes in
//!   batches (those that pile up while a request is in flight go together,
//!   in one request and one store transaction).
//!
//! # Example
//!
//! ```
//! use async_trait::async_trait;
//! use clew_client::Client;
//! use clew_core::command::PutParams;
//! use clew_worker::{Handler, Job, JobContext, Outcome, Worker, WorkerConfig};
//!
//! struct SendEmail;
//!
//! #[async_trait]
//! impl Handler for SendEmail {
//!     async fn perform(&self, job: &Job, _ctx: &JobContext) -> Outcome {
//!         if job.data.contains("@") {
//!             Outcome::complete()
//!         } else {
//!             Outcome::fail("SendEmail:NoAddress", "no address in the data")
//!         }
//!     }
//! }
//!
//! # #[tokio::main(flavor = "multi_thread")]
//! # async fn main() -> clew_core::Result<()> {
//! # let dir = tempfile::tempdir().expect("temp dir");
//! # let path = dir.path().join("clew.db");
//! let client = Client::connect(&format!("sqlite:{}", path.display()))?;
//! let mut put = PutParams::new("emails", "SendEmail");
//! put.data = r#"{"to":"ada@example.com"}"#.to_owned();
//! let jid = client.put(put).await?;
//!
//! let mut config = WorkerConfig::new(["emails"]);
//! config.concurrency = 4;
//! config.poll_interval = std::time::Duration::from_millis(50);
//! let worker = Worker::new(client.clone(), SendEmail, config);
//! let control = worker.control();
//! let running = tokio::spawn(worker.run());
//!
//! // Wait for the job, then stop the worker after its running jobs.
//! while client.get(&jid).await?.map(|j| j.state) != Some("complete".to_owned()) {
//!     tokio::time::sleep(std::time::Duration::from_millis(10)).await;
//! }
//! control.stop_after_running();
//! let report = running.await.expect("worker task");
//! assert_eq!(report.completed, 1);
//! # Ok(())
//! # }
//! ```

pub mod backoff;
mod completer;
#[cfg(unix)]
pub mod exec;
pub mod handler;
pub mod middleware;
pub mod reserver;
pub mod worker;

pub use backoff::Backoff;
#[cfg(unix)]
pub use exec::{ExecConfig, ProcessHandler};
pub use handler::{Handler, Job, JobContext, NoopHandler, Outcome};
pub use middleware::{Middleware, Next};
pub use reserver::{QueueOrder, Reserver};
pub use worker::{
    default_worker_name, ShutdownReport, Worker, WorkerConfig, WorkerControl, WorkerState,
    WorkerStatus,
};
