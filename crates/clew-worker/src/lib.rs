//! clew-worker: the worker runtime.
//!
//! # Layout
//! * [`handler`]: the [`Handler`] trait, the [`Outcome`] it returns and the
//!   [`JobContext`] it gets.
//! * [`backoff`]: exponential [`Backoff`] with jitter.

pub mod backoff;
#[cfg(unix)]
pub mod exec;
pub mod handler;

pub use backoff::Backoff;
#[cfg(unix)]
pub use exec::{ExecConfig, ProcessHandler};
pub use handler::{Handler, Job, JobContext, Outcome};
