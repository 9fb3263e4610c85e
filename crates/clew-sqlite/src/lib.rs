//! clew-sqlite: clew's embedded store, one SQLite file.
//!
//! [`SqliteStore`] implements [`clew_core::Store`]. The qless semantics are
//! not here: they live once in [`clew_core::logic`], written against the
//! [`clew_core::Tx`] primitives, which [`SqliteTx`] implements as cached
//! prepared statements on this crate's schema (`migrations/`).
//!
//! # How it differs from a client/server database backend
//! * **One writer thread.** The store owns a single connection, on a
//!   dedicated thread. [`clew_core::Store::execute`] queues the command and
//!   awaits the reply, so async callers never block on SQLite and commands
//!   never contend for locks inside the process.
//! * **Group commit.** The writer takes every command queued when it wakes
//!   (at most [`SqliteOptions::batch_max`]) and commits them in one
//!   transaction. Each command runs inside its own savepoint: a refused
//!   command is rolled back to its savepoint and leaves the store exactly as
//!   before, while the others of the batch still commit. Only after the
//!   commit does each command, in queue order, hand its numbered events to
//!   its sink and get its reply, so sinks see events in commit order and
//!   nobody is told about a change that did not reach the file. If the
//!   commit fails, every command of the batch fails with a store error.
//! * **Reads beside the writer.** A command that only reads
//!   ([`clew_core::Command::reads_only`]: a length, a job, listings,
//!   statistics, config) runs on a `query_only` read connection of its own
//!   (a few kept open), not in the writer's queue; one whose logic writes
//!   after all goes to the writer.
//! * **WAL.** The file is in write-ahead-log mode: readers (this store's
//!   and other processes', a CLI next to a server) do not block the writer. Other
//!   processes may also write; the writer notices (`PRAGMA data_version`)
//!   and reloads its caches, and waits up to [`SqliteOptions::busy_timeout`]
//!   for their write lock.
//! * **Durability** follows [`SqliteOptions::synchronous`]:
//!   [`Synchronous::Full`] survives power loss, [`Synchronous::Normal`] (the
//!   default) survives a crash of the process but may lose the last commits
//!   on power loss, [`Synchronous::Off`] survives only a process crash. A
//!   file left by a killed process opens normally (SQLite replays the WAL).
//! * **Caches.** The placement sequence ([`clew_core::Tx::seq_next`]) and
//!   config values are kept in memory between batches; the sequence is
//!   written back before every commit. The job rows read, and those of
//!   running jobs saved, are remembered from batch to batch, so saving one
//!   sets only the columns that changed and a complete finds the row its
//!   pop saved without a query. A job's history is a column of its row.
//!
//! # Example
//! ```no_run
//! use std::sync::Arc;
//! use clew_sqlite::{SqliteOptions, SqliteStore};
//!
//! let store = SqliteStore::open("clew.db", SqliteOptions::default())?;
//! let engine = clew_core::Engine::new(Arc::new(store));
//! # Ok::<(), clew_core::Error>(())
//! ```

mod reads;
mod schema;
mod store;
pub mod testing;
mod tx;

pub use schema::{Synchronous, SCHEMA_VERSION};
pub use store::{ApplyFn, SqliteOptions, SqliteStore, WriterStats};
pub use tx::{SqliteTx, TxCache};
