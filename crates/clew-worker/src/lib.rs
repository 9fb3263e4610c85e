//! clew-worker: the worker runtime.
//!
//! # Layout
//! * [`handler`]: the [`Handler`] trait, the [`Outcome`] it returns and the
//!   [`JobContext`] it gets.
//! * [`backoff`]: exponential [`Backoff`] with jitter.

pub mod backoff;
pub mod handler;

pub use backoff::Backoff;
pub use handler::{Handler, Job, JobContext, Outcome};
