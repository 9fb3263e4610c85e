//! clew-postgres: clew's shared store, one PostgreSQL schema that any
//! number of processes can use at once.
//!
//! [`PostgresStore`] implements [`clew_core::Store`]. The qless semantics are
//! not here: they live once in [`clew_core::logic`], written against the
//! [`clew_core::Tx`] primitives, which [`PgTx`] implements as prepared
//! statements on this crate's schema (`migrations/`).
//!
//! # Design
//! * **One schema.** Every clew object lives in one schema (default
//!   [`DEFAULT_SCHEMA`]; `postgres://…/db?schema=name` or
//!   [`PostgresOptions::schema`]). Connections set `search_path` to it, so
//!   the SQL names no schema. Text columns that order a listing use
//!   `COLLATE "C"`, so listings sort by bytes like the SQLite store, whatever
//!   the database's collation. Times are `BIGINT` microseconds
//!   ([`clew_core::Timestamp`]); job data is `TEXT`, kept byte for byte.
//! * **Migrations** are embedded and run at open, in one transaction, under
//!   an advisory lock derived from the schema name, with the applied
//!   versions in the schema's `clew_migrations` table: several processes
//!   starting at once migrate exactly once.
//! * **A small pool of threads, one connection each** (at most
//!   [`PostgresOptions::pool_size`], default 4, opened as concurrent calls
//!   need them). The [`clew_core::Tx`] trait is synchronous, so each pool
//!   thread owns its connection, a [`PgConn`]: a `tokio-postgres` client
//!   driven by a current-thread runtime of the thread's own, used through
//!   blocking calls. Async callers only await a oneshot reply (as with the
//!   SQLite store's writer thread): no async runtime is blocked, and the
//!   store works under any runtime, current-thread included.
//! * **Bound parameters only.** Every value (text, number, JSON) goes to
//!   the server as a bound parameter of a statement prepared once per
//!   connection (the extended protocol); SQL text carries only fixed
//!   statements, `BEGIN`/`COMMIT`/savepoints, and the schema name as a
//!   validated, quoted identifier ([`SchemaName`]). Text holding a NUL,
//!   which PostgreSQL cannot store, is the caller's error (invalid, HTTP
//!   400), refused before it is sent.
//! * **Few round trips** ([`PgTx`], [`PostgresStore::round_trips_run`]).
//!   Writes whose result the logic does not need are buffered (statement
//!   and owned parameters) and **pipelined** with the next read,
//!   savepoint, the command's events (one insert of two bound arrays) or
//!   its commit: [`PgConn::pipeline`] sends every request before reading
//!   any answer, so they cost one round trip, and reports the first
//!   failure. Config, "anything tracked", "any dependency" and a
//!   placement value are read once per transaction with its first query,
//!   and whether a queue is paused, has recurring templates or scheduled
//!   jobs with the first query about it; timing statistics and histogram
//!   buckets are written once per round trip, however often a pop or a
//!   batch changes them;
//!   a job's history comes with its row; the jobs the items of a batch (or
//!   the commands of a group) begin by reading are read ahead in one query
//!   ([`clew_core::Tx::prefetch_jobs`]) with a placement value for each,
//!   each row answering its job's next read unless this transaction wrote
//!   the job since; a job row it knows is updated or inserted without an
//!   upsert; a queue is registered once per transaction; the complete count
//!   is read once and kept from the transaction's own writes; the last
//!   command's events go with the notification and `COMMIT`; the items of
//!   a non-atomic batch run without savepoints unless one is refused (then
//!   the transaction runs again with a savepoint per item). (Warm, one
//!   command per transaction: put 13 → 3 round trips, pop of 100 jobs
//!   1,514 → 5, complete 19 → 5, `put_many` of 100 110 → 4,
//!   `complete_many` of 100 611 → 5.)
//! * **Commands serialized, except pops.** A
//!   command's transaction begins with `SELECT pg_advisory_xact_lock(key)`,
//!   the key derived from the schema name, and holds it until its commit.
//!   So commands on one schema run one at a time across every process
//!   sharing the database, atomic and serial as they were in Redis, and the
//!   event log's sequence numbers (an identity column, taken under the
//!   lock) commit in increasing order: a reader paging the log by sequence
//!   number never sees an event appear below one it has already read.
//! * **Group commit** ([`PostgresOptions::group_max`], default 64). Since
//!   those commands run one at a time anyway, a pool thread that takes a
//!   command (other than a concurrent pop) also takes the commands already
//!   queued behind it, without waiting, and runs them in one transaction:
//!   `BEGIN`, the lock and the outbox drain once, each command's logic at
//!   its own `now`, then every command's events (each at its command's
//!   `now`, numbered in command order) in one insert with one notification
//!   and one `COMMIT` (one round trip, one WAL flush for the group). The
//!   group runs optimistically, without a savepoint per command; if a
//!   command is refused (or that last round trip fails), the transaction is
//!   rolled back and the group runs again with a savepoint per command
//!   (the logic is a function of the state, `now` and the command), so the
//!   refused one has no effect and no events and the others commit.
//!   Replies and events go out after the commit, each command's to its own
//!   caller and sink, in order. A pop queued in a group runs under the
//!   exclusive lock like any command. [`PostgresStore::transactions_run`]
//!   counts the transactions next to [`PostgresStore::commands_run`]. (`clew
//!   bench --scenario enqueue --jobs 5000`, 16 callers putting one job per
//!   call: 10,132 commits in the database before, 3,014 with groups.)
//! * **Concurrent pops** ([`PostgresOptions::concurrent_pops`], on by
//!   default). A pop takes that lock in *shared* mode
//!   (`pg_advisory_xact_lock_shared`), so pops run next to each other but
//!   never next to any other command, and claims every row it may change as
//!   it selects it ([`PgTx::claiming`]): stalled locks, due scheduled jobs,
//!   the work list and due recurring templates `FOR UPDATE SKIP LOCKED`,
//!   timing statistics merged in SQL with its last round trip, counters
//!   incremented in SQL, and a
//!   capped queue's running count under a per-queue advisory lock. Just
//!   before writing its events it takes a second advisory lock
//!   (`SchemaName::event_lock_key`) in *shared* mode, held to its commit;
//!   a reader of the event log takes that lock exclusively around its read,
//!   so it reads once every event numbered so far is committed (or rolled
//!   back) and none is numbered meanwhile: commands numbering events next
//!   to each other commit at once (sharing WAL flushes) and a reader
//!   paging by number still never skips one. Within a process a mutex held
//!   for the round trip of the events' insert alone (the writes and the
//!   lock go in the round trip before) makes publication turns follow
//!   event numbers. A pop that finds committed puts waiting in the outbox takes
//!   the lock exclusively and drains them first, like any command; a pop
//!   that loses a deadlock to another pop is run again. Its `BEGIN` and
//!   lock statement go with its first query (when the lock comes
//!   exclusive, that round trip fails on purpose and the pop begins
//!   again, draining). Pops of different queues gain most: pops of one
//!   queue still queue up on that queue's statistics rows from their last
//!   round trip to their commit.
//! * **Completes next to pops** ([`PostgresOptions::concurrent_completes`],
//!   on by default). A `complete` that finishes its job (no next queue)
//!   and a `complete_many` of such take the command lock shared, like a
//!   pop (the statement after `BEGIN`, sent with the first query), so
//!   completes run next to pops and to each other. A complete reads each
//!   job row after locking it `FOR UPDATE` (a statement of its own before
//!   the read, so the read sees what a pop holding the row committed): a
//!   pop handing over an expired lock skips a row a complete holds, and a
//!   complete waiting for a pop's row reads the handed-over job and is
//!   refused. It locks a dependent job's row before reading what it still
//!   waits for, so of two completes removing its last two dependencies
//!   one sees the other's removal and releases it. The complete count is
//!   kept in 17 rows (migration 0011: one per transaction id modulo 16,
//!   plus the first), so completes do not queue on one counter row; a
//!   complete's count is what was committed when it read it plus its own,
//!   so completes in flight at once may leave the complete set a few jobs
//!   above `jobs-history-count` until the next complete (never below: they
//!   expire the same oldest rows, each locked and re-read before its
//!   deletion). Pops never move jobs into or out of the complete set or
//!   change dependencies, so a complete keeps placements and prefetched
//!   rows as a command running alone does. It writes its events under the
//!   event lock and commits in a round trip of its own, as a pop does, and
//!   a claiming command's statistics go with that last round trip, so the
//!   rows are held from there to the commit (`tests/complete_race.rs`).
//! * **Puts next to pops** ([`PostgresOptions::concurrent_puts`], on by
//!   default). A `put` that names no dependencies, unique key, batch or
//!   throttles and is not a requeue, and a batch of such (`put_many`,
//!   atomic or not), take the command lock shared too: puts run next to
//!   pops, completes and each other. Whether its job is new is only known
//!   as it runs: a put that reads an existing job, or whose insert meets a
//!   row another put inserted meanwhile (a unique violation), rolls back
//!   and runs again holding the lock exclusively (`tests/put_race.rs`).
//!   Queue registration takes no row lock once the queue is known.
//! * **Reads take no command lock.** `length`, `get`, `multiget`, job
//!   listings, failed groups, statistics, config and the like run in a
//!   read-only `REPEATABLE READ` transaction, one snapshot, without the
//!   command lock (unless puts wait in the outbox: then they run alone,
//!   draining first), so a dashboard or a benchmark looking at a queue
//!   does not queue behind every command and every command behind it.
//! * **Events** are appended in the command's transaction; after the commit
//!   each command hands its numbered events to its sink and replies, and
//!   within one process sinks see events in number order (a turn taken
//!   under the exclusive lock, or with the numbering, orders publication). A refused command rolls its whole
//!   transaction back and publishes nothing.
//! * **Connections** are plain TCP or Unix sockets (`NoTls`); a lost
//!   connection is reopened on the next request of its thread.
//! * **Transactional enqueue** ([`outbox`], migration 0002). Applications
//!   put jobs inside their own transaction through the SQL function
//!   `<schema>.put(queue, klass, data jsonb, options jsonb)` or [`put_in`]
//!   / [`put_in_async`], which only insert a row into `put_outbox`. The
//!   qless rules are not written again in PL/pgSQL: every command's
//!   transaction begins (same round trip as `BEGIN` and the lock) by
//!   deleting the committed outbox rows and running each as a real
//!   [`clew_core::Command::Put`] through [`clew_core::logic::apply`], in a
//!   savepoint, at the command's `now`. So the job exists if and only if
//!   the application's transaction committed, a command issued after that
//!   commit always sees it, and it is a normal put in every respect
//!   (history, events, the lifecycle `enqueued` event). A row the logic
//!   refuses moves to `put_rejected` (logged) and blocks nothing; a refused
//!   command after a drain rolls back to a savepoint, so the drained puts
//!   still commit.
//! * **LISTEN/NOTIFY** ([`PostgresOptions::listen`], on by default). A
//!   command that committed events sends `pg_notify(<channel>, <latest
//!   seq>)` in its transaction (channel `clew_<schema>`, from the schema's
//!   `notify_channel()`); the SQL `put` sends `put`. One more connection
//!   per store listens: sequence numbers feed
//!   [`clew_core::Store::subscribe_commits`] (servers wake their event
//!   streams and publishers on any process's commit instead of polling),
//!   and `put` makes it drain the outbox in a transaction of its own, at
//!   the store's clock ([`PostgresStore::set_clock`]), publishing to the
//!   last command's sink, so jobs put through SQL appear without other
//!   traffic.
//!
//! # Example
//! ```no_run
//! use std::sync::Arc;
//! use clew_postgres::{PostgresOptions, PostgresStore};
//!
//! let store = PostgresStore::open(
//!     "postgres://clew@db.internal:5432/jobs?schema=clew",
//!     PostgresOptions::default(),
//! )?;
//! let engine = clew_core::Engine::new(Arc::new(store));
//! # Ok::<(), clew_core::Error>(())
//! ```

mod config;
mod conn;
mod cursors;
mod listen;
pub mod outbox;
mod schema;
mod store;
pub mod testing;
mod tx;

pub use config::{PostgresOptions, SchemaName, DEFAULT_SCHEMA};
pub use conn::PgConn;
pub use outbox::{put_in, put_in_async};
pub use schema::SCHEMA_VERSION;
pub use store::{ApplyFn, PostgresStore};
pub use tx::{PgTx, StatementCache};
