//! clew-core: the job model, qless semantics and the seams every other clew
//! crate builds on. It knows no database, HTTP or CLI crate.
//!
//! # Layout
//! * [`time`]: [`Timestamp`], the [`Clock`] seam, [`SystemClock`], [`ManualClock`].
//! * [`error`]: [`Error`] with its [`ErrorKind`] (invalid, not found, conflict, store).
//! * [`job`]: [`JobState`], the stored [`JobRecord`], the caller's [`Job`], history.
//! * [`command`]: every operation as a [`Command`], and its [`Reply`].
//! * [`tx`]: [`Tx`], the storage primitives a backend implements.
//! * [`batch`]: batches of jobs with progress counters and a callback job.
//! * [`logic`]: qless semantics, once, over [`Tx`] ([`logic::apply`]).
//! * [`store`]: [`Store`], the async seam the [`Engine`] calls.
//! * [`lifecycle`]: resque-clues lifecycle events ([`LifecycleEvent`]).
//! * [`event`]: [`Event`]s and the [`EventSink`] they are handed to.
//! * [`engine`]: [`Engine`], the only door to a store.
//! * [`qless`]: qless-core's string calling convention: argument parsing and
//!   error wording.
//! * [`stats`]: histogram buckets and the reported statistics.
//! * [`config`]: the configuration defaults.
//! * [`unique`]: uniqueness keys ([`unique::Unique`], [`unique::OnConflict`]).
//! * [`cron`]: cron schedules of recurring templates.
//! * [`analytics`]: search and statistics over the lifecycle history.
//! * [`throttle`]: named throttles (concurrency limits across queues).

pub mod analytics;
pub mod batch;
pub mod command;
pub mod config;
pub mod cron;
pub mod engine;
pub mod error;
pub mod event;
pub mod job;
pub mod lifecycle;
pub mod limits;
pub mod logic;
pub mod qless;
pub mod stats;
pub mod store;
pub mod throttle;
pub mod time;
pub mod tx;
pub mod unique;

pub use command::{Command, Reply};
pub use engine::{Engine, Preprocessor};
pub use error::{Error, ErrorKind, Result};
pub use event::{Event, EventSink, MemorySink, NullSink, PendingEvent};
pub use job::{Failure, HistoryEntry, Job, JobRecord, JobState, Loc, RecurRecord};
pub use lifecycle::{LifecycleError, LifecycleEvent, LifecycleKind, Origin};
pub use store::Store;
pub use time::{Clock, ManualClock, SystemClock, Timestamp};
pub use tx::Tx;
