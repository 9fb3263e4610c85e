//! Commands that only read ([`Command::reads_only`]: a queue's length, a
//! job, listings, statistics, config, ...) run on read connections beside
//! the writer thread, not in its queue: WAL lets readers see the last
//! commit while the writer writes, so a dashboard or a benchmark looking at
//! a queue's length neither waits for the groups in flight nor takes the
//! writer's time (a look at a length every 2 ms was 2.4% of the writer's
//! time in a lifecycle run through the server).
//!
//! A read connection is `query_only`: if the logic writes after all, or
//! hands out events or buffered writes, or meets any store error, the read
//! is dropped (rolled back) and the command goes to the writer as before.

use std::panic::{catch_unwind, AssertUnwindSafe};
use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Mutex;

use clew_core::{Command, ErrorKind, Origin, Reply, Result, Timestamp};
use rusqlite::Connection;

use crate::schema::open_connection;
use crate::store::{ApplyFn, SqliteOptions};
use crate::tx::{SqliteTx, TxCache};

/// Idle read connections kept for the next reads.
const IDLE_MAX: usize = 4;

/// The read connections of one store.
pub(crate) struct Readers {
    path: PathBuf,
    options: SqliteOptions,
    apply: ApplyFn,
    idle: Mutex<Vec<Connection>>,
    closed: AtomicBool,
}

impl Readers {
    /// Read connections to the file at `path`, opened as reads need them.
    pub(crate) fn new(path: PathBuf, options: SqliteOptions, apply: ApplyFn) -> Readers {
        Readers {
            path,
            options,
            apply,
            idle: Mutex::new(Vec::new()),
            closed: AtomicBool::new(false),
        }
    }

    /// Runs `command` on a read connection (blocking): `None` when it must
    /// go to the writer instead (see the module doc).
    pub(crate) fn run(
        &self,
        now: Timestamp,
        origin: &Origin,
        command: &Command,
    ) -> Option<Result<Reply>> {
        let conn = self.take()?;
        let outcome = read_on(&conn, self.apply, now, origin, command);
        if conn.is_autocommit() {
            self.give_back(conn);
        }
        outcome
    }

    /// Closes the idle connections; later reads go to the writer (which
    /// answers that the store is closed).
    pub(crate) fn close(&self) {
        self.closed.store(true, Ordering::SeqCst);
        if let Ok(mut idle) = self.idle.lock() {
            idle.clear();
        }
    }

    fn take(&self) -> Option<Connection> {
        if self.closed.load(Ordering::SeqCst) {
            return None;
        }
        if let Some(conn) = self.idle.lock().ok()?.pop() {
            return Some(conn);
        }
        let conn = open_connection(
            &self.path,
            self.options.synchronous,
            self.options.busy_timeout,
        )
        .ok()?;
        conn.pragma_update(None, "query_only", true).ok()?;
        Some(conn)
    }

    fn give_back(&self, conn: Connection) {
        if self.closed.load(Ordering::SeqCst) {
            return;
        }
        if let Ok(mut idle) = self.idle.lock() {
            if idle.len() < IDLE_MAX {
                idle.push(conn);
            }
        }
    }
}

/// `command` in one read transaction on `conn`, always rolled back.
fn read_on(
    conn: &Connection,
    apply: ApplyFn,
    now: Timestamp,
    origin: &Origin,
    command: &Command,
) -> Option<Result<Reply>> {
    conn.execute_batch("BEGIN").ok()?;
    let mut cache = TxCache::new();
    let mut events = Vec::new();
    let result = catch_unwind(AssertUnwindSafe(|| {
        let mut tx = SqliteTx::new(conn, &mut cache);
        apply(&mut tx, now, origin, command, &mut events)
    }));
    let rolled_back = conn.execute_batch("ROLLBACK").is_ok();
    // A panic is the writer's to report, if it happens there too.
    let result = result.ok()?;
    if !rolled_back || !events.is_empty() || cache.is_dirty() {
        return None;
    }

    match result {
        Err(e) if e.kind() == ErrorKind::Store => None,
        answered => Some(answered),
    }
}
