//! [`SqliteStore`]: the [`Store`] over one SQLite file, with one writer
//! thread and group commit.

use std::fmt;
use std::panic::{catch_unwind, AssertUnwindSafe};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::mpsc;
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;
use std::time::Duration;

use async_trait::async_trait;
use clew_core::{
    Command, Error, Event, EventSink, Origin, PendingEvent, Reply, Result, Store, Timestamp, Tx,
};
use rusqlite::{params, Connection};
use tokio::sync::{oneshot, watch};

use crate::reads::Readers;
use crate::schema::{open_connection, Synchronous};
use crate::tx::{SqlResult, SqliteTx, TxCache};

/// The semantic logic the writer runs for each command: normally
/// [`clew_core::logic::apply`]; tests may substitute their own.
pub type ApplyFn =
    fn(&mut dyn Tx, Timestamp, &Origin, &Command, &mut Vec<PendingEvent>) -> Result<Reply>;

/// Settings for [`SqliteStore::open`].
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SqliteOptions {
    /// How durably each commit reaches the disk (default
    /// [`Synchronous::Normal`]).
    pub synchronous: Synchronous,
    /// How long to wait for another process's write lock before failing a
    /// batch (default 5 s).
    pub busy_timeout: Duration,
    /// Most commands committed together in one transaction (default 256;
    /// 0 counts as 1).
    pub batch_max: usize,
}

impl Default for SqliteOptions {
    fn default() -> SqliteOptions {
        SqliteOptions {
            synchronous: Synchronous::Normal,
            busy_timeout: Duration::from_secs(5),
            batch_max: 256,
        }
    }
}

/// Counters of the writer thread's work, for tests and monitoring.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct WriterStats {
    /// Batch transactions committed.
    pub batches: u64,
    /// Commands that ran in committed batches (accepted or refused).
    pub commands: u64,
}

/// A request to the writer thread.
enum Request {
    /// Run a command (boxed: a command is large, the other variants small).
    Execute(Box<ExecuteRequest>),
    /// Read the event log.
    EventsAfter {
        after: i64,
        limit: i64,
        reply: oneshot::Sender<Result<Vec<Event>>>,
    },
    /// Delete all state (test mode).
    Flush { reply: oneshot::Sender<Result<()>> },
    /// Delete events below a sequence number (history retention).
    EventsPrune {
        before: i64,
        reply: oneshot::Sender<Result<u64>>,
    },
    /// Finish and close the connection.
    Close { reply: oneshot::Sender<Result<()>> },
}

/// One command to run, with where its events and reply go.
struct ExecuteRequest {
    now: Timestamp,
    origin: Origin,
    command: Command,
    sink: Arc<dyn EventSink>,
    reply: oneshot::Sender<Result<Reply>>,
}

/// How an optimistic batch (no savepoints) ended.
enum Optimistic {
    /// Committed.
    Done(Vec<Outcome>),
    /// A command was refused; rolled back, to be run with savepoints.
    Refused(Vec<ExecuteRequest>),
    /// The transaction failed; rolled back.
    Failed(Vec<ExecuteRequest>, Error),
}

/// The writer's shared counters.
#[derive(Debug, Default)]
struct Counters {
    batches: AtomicU64,
    commands: AtomicU64,
}

/// The embedded store: one SQLite file in WAL mode, written by one dedicated
/// thread that commits queued commands in groups. See the crate doc.
pub struct SqliteStore {
    path: PathBuf,
    options: SqliteOptions,
    /// The writer's queue; `None` once closed.
    sender: Mutex<Option<mpsc::Sender<Request>>>,
    /// The writer thread, until joined.
    thread: Mutex<Option<JoinHandle<()>>>,
    counters: Arc<Counters>,
    /// The last committed event number, announced by the writer after each
    /// commit ([`Store::subscribe_commits`]).
    commits: Arc<watch::Sender<i64>>,
    /// Announces other processes' commits to the same file; started by the
    /// first subscriber.
    watcher: Mutex<Option<Watcher>>,
    /// Read connections for commands that only read (`reads.rs`).
    readers: Arc<Readers>,
}

/// How often the watcher asks SQLite whether another connection committed.
const WATCH_EVERY: Duration = Duration::from_millis(5);

/// A thread with a read connection of its own that, every [`WATCH_EVERY`],
/// reads `PRAGMA data_version` (a counter that changes when another
/// connection commits; a local read, no I/O) and on a change announces the
/// file's last event number: commits by other processes on the same file
/// (`clew put --db`, a second `clew work --db`) wake waiters within a few
/// milliseconds instead of at their next timed look.
struct Watcher {
    stop: Option<mpsc::Sender<()>>,
    thread: Option<JoinHandle<()>>,
}

impl Watcher {
    fn start(
        path: &Path,
        options: &SqliteOptions,
        commits: Arc<watch::Sender<i64>>,
    ) -> Option<Watcher> {
        let conn = match open_connection(path, options.synchronous, options.busy_timeout) {
            Ok(conn) => conn,
            Err(e) => {
                tracing::warn!(error = %e, "no commit watcher; other processes' commits are seen at timed looks");
                return None;
            }
        };
        let (stop, stopped) = mpsc::channel::<()>();
        let thread = std::thread::Builder::new()
            .name("clew-sqlite-watch".into())
            .spawn(move || {
                let mut seen = None;
                while let Err(mpsc::RecvTimeoutError::Timeout) = stopped.recv_timeout(WATCH_EVERY) {
                    let Ok(version) =
                        conn.query_row("PRAGMA data_version", [], |r| r.get::<_, i64>(0))
                    else {
                        continue;
                    };
                    if seen == Some(version) {
                        continue;
                    }
                    seen = Some(version);
                    let last = conn.query_row(
                        "SELECT coalesce(max(seq), 0) FROM sqlite_sequence WHERE name = 'events'",
                        [],
                        |r| r.get::<_, i64>(0),
                    );
                    match last {
                        Ok(seq) => announce(&commits, seq),
                        Err(e) => tracing::debug!(error = %e, "reading the last event number"),
                    }
                }
            });
        match thread {
            Ok(thread) => Some(Watcher {
                stop: Some(stop),
                thread: Some(thread),
            }),
            Err(e) => {
                tracing::warn!(error = %e, "no commit watcher; other processes' commits are seen at timed looks");
                None
            }
        }
    }
}

impl Drop for Watcher {
    fn drop(&mut self) {
        drop(self.stop.take());
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
    }
}

/// Announces `seq` as the last committed event number if it is newer.
fn announce(commits: &watch::Sender<i64>, seq: i64) {
    commits.send_if_modified(|latest| {
        let newer = seq > *latest;
        if newer {
            *latest = seq;
        }
        newer
    });
}

impl fmt::Debug for SqliteStore {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("SqliteStore")
            .field("path", &self.path)
            .field("options", &self.options)
            .field("stats", &self.writer_stats())
            .finish()
    }
}

/// The error of every call on a closed store.
fn closed() -> Error {
    Error::store("store is closed")
}

impl SqliteStore {
    /// Opens (creating if needed) the store file at `path`, migrates its
    /// schema and starts the writer thread.
    pub fn open(path: impl AsRef<Path>, options: SqliteOptions) -> Result<SqliteStore> {
        SqliteStore::open_with_logic(path, options, clew_core::logic::apply)
    }

    /// Like [`SqliteStore::open`] but the writer runs `apply` instead of
    /// [`clew_core::logic::apply`] (used by tests of the writer itself).
    pub fn open_with_logic(
        path: impl AsRef<Path>,
        options: SqliteOptions,
        apply: ApplyFn,
    ) -> Result<SqliteStore> {
        let path = path.as_ref().to_path_buf();
        let conn = open_connection(&path, options.synchronous, options.busy_timeout)?;
        let checkpointer = Checkpointer::start(&path, &options);
        if checkpointer.is_some() {
            conn.pragma_update(None, "wal_autocheckpoint", 0).sql()?;
        }
        let (sender, receiver) = mpsc::channel();
        let counters = Arc::new(Counters::default());
        let commits = Arc::new(watch::channel(0).0);
        let writer = Writer {
            commits: commits.clone(),
            checkpointer,
            conn,
            cache: TxCache::new(),
            data_version: None,
            apply,
            batch_max: options.batch_max.max(1),
            counters: counters.clone(),
        };
        let thread = std::thread::Builder::new()
            .name("clew-sqlite-writer".into())
            .spawn(move || writer.run(receiver))
            .map_err(|e| Error::store(format!("starting the SQLite writer thread: {e}")))?;
        Ok(SqliteStore {
            readers: Arc::new(Readers::new(path.clone(), options.clone(), apply)),
            path,
            options,
            sender: Mutex::new(Some(sender)),
            thread: Mutex::new(Some(thread)),
            counters,
            commits,
            watcher: Mutex::new(None),
        })
    }

    /// The database file.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// The options it was opened with.
    pub fn options(&self) -> &SqliteOptions {
        &self.options
    }

    /// What the writer thread has done so far.
    pub fn writer_stats(&self) -> WriterStats {
        WriterStats {
            batches: self.counters.batches.load(Ordering::Relaxed),
            commands: self.counters.commands.load(Ordering::Relaxed),
        }
    }

    /// Queues a request for the writer.
    fn send(&self, request: Request) -> Result<()> {
        let guard = self.sender.lock().map_err(|_| closed())?;
        match guard.as_ref() {
            Some(sender) => sender.send(request).map_err(|_| closed()),
            None => Err(closed()),
        }
    }

    /// Stops the writer (after it finishes queued requests) and waits for it,
    /// unless called on the writer thread itself.
    fn stop_and_join(&self) {
        self.readers.close();
        if let Ok(mut watcher) = self.watcher.lock() {
            drop(watcher.take());
        }
        if let Ok(mut sender) = self.sender.lock() {
            sender.take();
        }
        let handle = self.thread.lock().ok().and_then(|mut h| h.take());
        if let Some(handle) = handle {
            if handle.thread().id() != std::thread::current().id() {
                // A panic on the writer has already been reported by the
                // panic hook; there is nothing more to do with it here.
                let _ = handle.join();
            }
        }
    }
}

#[async_trait]
impl Store for SqliteStore {
    async fn execute_from(
        &self,
        now: Timestamp,
        origin: Origin,
        command: Command,
        sink: Arc<dyn EventSink>,
    ) -> Result<Reply> {
        if command.reads_only() {
            let readers = self.readers.clone();
            let (origin, command) = (origin.clone(), command.clone());
            let read =
                tokio::task::spawn_blocking(move || readers.run(now, &origin, &command)).await;
            if let Ok(Some(reply)) = read {
                return reply;
            }
        }
        let (reply, rx) = oneshot::channel();
        self.send(Request::Execute(Box::new(ExecuteRequest {
            now,
            origin,
            command,
            sink,
            reply,
        })))?;
        rx.await.map_err(|_| closed())?
    }

    async fn events_after(&self, after: i64, limit: i64) -> Result<Vec<Event>> {
        let (reply, rx) = oneshot::channel();
        self.send(Request::EventsAfter {
            after,
            limit,
            reply,
        })?;
        rx.await.map_err(|_| closed())?
    }

    async fn flush(&self) -> Result<()> {
        let (reply, rx) = oneshot::channel();
        self.send(Request::Flush { reply })?;
        rx.await.map_err(|_| closed())?
    }

    /// The writer announces its own commits; the first subscriber also
    /// starts the `Watcher` for other processes' commits to the file.
    fn subscribe_commits(&self) -> Option<watch::Receiver<i64>> {
        let open = self.sender.lock().is_ok_and(|s| s.is_some());
        if let (true, Ok(mut watcher)) = (open, self.watcher.lock()) {
            if watcher.is_none() {
                *watcher = Watcher::start(&self.path, &self.options, self.commits.clone());
            }
        }
        Some(self.commits.subscribe())
    }

    async fn events_prune(&self, before_seq: i64) -> Result<u64> {
        let (reply, rx) = oneshot::channel();
        self.send(Request::EventsPrune {
            before: before_seq,
            reply,
        })?;
        rx.await.map_err(|_| closed())?
    }

    /// Finishes queued requests, checkpoints the WAL, closes the file and
    /// stops the writer thread. Closing a closed store does nothing.
    async fn close(&self) -> Result<()> {
        let sender = self.sender.lock().map_err(|_| closed())?.take();
        let Some(sender) = sender else {
            return Ok(());
        };
        let (reply, rx) = oneshot::channel();
        let result = match sender.send(Request::Close { reply }) {
            Ok(()) => rx.await.unwrap_or_else(|_| Err(closed())),
            Err(_) => Err(closed()),
        };
        drop(sender);
        // The writer replies as its last act, so this join is brief.
        self.stop_and_join();
        result
    }
}

impl Drop for SqliteStore {
    fn drop(&mut self) {
        self.stop_and_join();
    }
}

/// The writer thread's state: the only connection that writes.
struct Writer {
    /// Announces each commit's last event number.
    commits: Arc<watch::Sender<i64>>,
    /// Checkpoints the WAL off the writer's path (stopped before the
    /// connection closes); `None`: SQLite's automatic checkpoints at commit.
    checkpointer: Option<Checkpointer>,
    conn: Connection,
    cache: TxCache,
    /// `PRAGMA data_version` at the last batch: a change means another
    /// connection committed, so the cache is stale.
    data_version: Option<i64>,
    apply: ApplyFn,
    batch_max: usize,
    counters: Arc<Counters>,
}

/// How often the checkpointer copies committed WAL frames into the file.
const CHECKPOINT_EVERY: Duration = Duration::from_millis(250);

/// WAL frames (pages, 16 MB) past which the checkpointer asks the writer to
/// finish the checkpoint between two groups, so that its next transaction
/// starts the WAL over.
const WAL_RESTART_FRAMES: i64 = 4_096;

/// A thread with a connection of its own that runs passive WAL checkpoints
/// every [`CHECKPOINT_EVERY`]. SQLite's automatic checkpoint runs inside the
/// commit that crosses 1,000 WAL pages, so one command in a hundred or so
/// waited for it: enqueue-to-start p99 6.3 ms with it, 1.1-1.5 ms without,
/// in `clew bench --scenario latency`. A passive checkpoint never blocks
/// the writer; the WAL is reused from its start once fully checkpointed.
struct Checkpointer {
    /// Set when the WAL is long: the writer then checkpoints once itself.
    wanted: Arc<AtomicBool>,
    stop: Option<mpsc::Sender<()>>,
    thread: Option<JoinHandle<()>>,
}

impl Checkpointer {
    /// Starts the thread; `None` (with a warning) if its connection cannot
    /// be opened, and then SQLite checkpoints at commit as usual.
    fn start(path: &Path, options: &SqliteOptions) -> Option<Checkpointer> {
        let conn = match open_connection(path, options.synchronous, options.busy_timeout) {
            Ok(conn) => conn,
            Err(e) => {
                tracing::warn!(error = %e, "no checkpoint thread; checkpointing at commit");
                return None;
            }
        };
        let (stop, stopped) = mpsc::channel::<()>();
        let wanted = Arc::new(AtomicBool::new(false));
        let thread_wanted = wanted.clone();
        let thread = std::thread::Builder::new()
            .name("clew-sqlite-checkpoint".into())
            .spawn(move || {
                let wanted = thread_wanted;
                // Runs until told to stop, or the store is gone.
                while let Err(mpsc::RecvTimeoutError::Timeout) =
                    stopped.recv_timeout(CHECKPOINT_EVERY)
                {
                    let frames = conn
                        .query_row("PRAGMA wal_checkpoint(PASSIVE)", [], |r| r.get::<_, i64>(1));
                    match frames {
                        // Under sustained writes a passive checkpoint never
                        // catches up with the writer (frames keep coming
                        // while it copies), so the WAL would grow without
                        // end (680 MB in a 100,000-job lifecycle run): ask
                        // the writer to finish it between two groups.
                        Ok(frames) if frames > WAL_RESTART_FRAMES => {
                            wanted.store(true, Ordering::Relaxed);
                        }
                        Ok(_) => {}
                        Err(e) => tracing::debug!(error = %e, "passive WAL checkpoint"),
                    }
                }
            });
        match thread {
            Ok(thread) => Some(Checkpointer {
                wanted,
                stop: Some(stop),
                thread: Some(thread),
            }),
            Err(e) => {
                tracing::warn!(error = %e, "no checkpoint thread; checkpointing at commit");
                None
            }
        }
    }
}

impl Drop for Checkpointer {
    fn drop(&mut self) {
        drop(self.stop.take());
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
    }
}

/// A command's outcome inside a batch, before the commit.
struct Outcome {
    request: ExecuteRequest,
    result: Result<Reply>,
    events: Vec<Event>,
}

impl Writer {
    /// Serves requests until the store closes or is dropped.
    fn run(mut self, receiver: mpsc::Receiver<Request>) {
        let mut next: Option<Request> = None;
        loop {
            let request = match next.take() {
                Some(r) => r,
                None => match receiver.recv() {
                    Ok(r) => r,
                    // Every sender is gone: the store was dropped.
                    Err(_) => break,
                },
            };
            match request {
                Request::Execute(first) => {
                    let mut batch = vec![*first];
                    while batch.len() < self.batch_max {
                        match receiver.try_recv() {
                            Ok(Request::Execute(r)) => batch.push(*r),
                            Ok(other) => {
                                // Served after this batch, keeping queue order.
                                next = Some(other);
                                break;
                            }
                            Err(_) => break,
                        }
                    }
                    self.checkpoint_if_wanted();
                    self.run_batch(batch);
                }
                Request::EventsAfter {
                    after,
                    limit,
                    reply,
                } => {
                    let _ = reply.send(self.events_after(after, limit));
                }
                Request::Flush { reply } => {
                    let _ = reply.send(self.flush());
                }
                Request::EventsPrune { before, reply } => {
                    let _ = reply.send(self.events_prune(before));
                }
                Request::Close { reply } => {
                    // Requests queued behind the close are dropped with the
                    // receiver; their callers see "store is closed".
                    drop(receiver);
                    let result = self.close();
                    let _ = reply.send(result);
                    return;
                }
            }
        }
        if let Err(e) = self.close() {
            tracing::warn!(error = %e, "closing the SQLite store");
        }
    }

    /// Finishes a checkpoint the checkpointer could not (see
    /// [`WAL_RESTART_FRAMES`]): between groups nothing is written meanwhile,
    /// so it copies the frames left and the next transaction starts the WAL
    /// over.
    fn checkpoint_if_wanted(&mut self) {
        let wanted = self
            .checkpointer
            .as_ref()
            .is_some_and(|c| c.wanted.swap(false, Ordering::Relaxed));
        if wanted {
            if let Err(e) = self
                .conn
                .query_row("PRAGMA wal_checkpoint(PASSIVE)", [], |_| Ok(()))
            {
                tracing::debug!(error = %e, "WAL checkpoint on the writer");
            }
        }
    }

    /// Deletes every row of every table but the sequence counters, in one
    /// transaction.
    fn flush(&mut self) -> Result<()> {
        self.cache.clear();
        let sql = "BEGIN IMMEDIATE;
             DELETE FROM jobs; DELETE FROM deps; DELETE FROM tags;
             DELETE FROM tag_counts; DELETE FROM tracked; DELETE FROM workers; DELETE FROM queues;
             DELETE FROM recurring; DELETE FROM stats_timing; DELETE FROM stats_hist;
             DELETE FROM stats_counters; DELETE FROM config; DELETE FROM events;
             DELETE FROM counters; DELETE FROM batches; DELETE FROM throttles;
             DELETE FROM throttle_jobs; DELETE FROM throttle_starts;
             COMMIT;";
        self.conn.execute_batch(sql).map_err(|e| {
            let _ = self.conn.execute_batch("ROLLBACK");
            Error::store(format!("flushing the SQLite store: {e}"))
        })
    }

    /// Deletes the events below `before` (their sequence numbers are never
    /// reused); returns how many.
    fn events_prune(&mut self, before: i64) -> Result<u64> {
        let n = self
            .conn
            .execute("DELETE FROM events WHERE seq < ?1", params![before])
            .map_err(|e| Error::store(format!("pruning the event log: {e}")))?;
        Ok(n as u64)
    }

    /// Checkpoints the WAL into the main file and closes the connection.
    fn close(mut self) -> Result<()> {
        drop(self.checkpointer.take());
        // Truncating the WAL is a courtesy: if another connection is reading,
        // the checkpoint is partial and that is fine.
        if let Err(e) = self
            .conn
            .query_row("PRAGMA wal_checkpoint(TRUNCATE)", [], |_| Ok(()))
        {
            tracing::debug!(error = %e, "WAL checkpoint at close");
        }
        self.conn
            .close()
            .map_err(|(_, e)| Error::store(format!("closing the SQLite store: {e}")))
    }

    /// Reads the event log (outside any transaction: a consistent snapshot
    /// of committed data).
    fn events_after(&self, after: i64, limit: i64) -> Result<Vec<Event>> {
        let mut stmt = self
            .conn
            .prepare_cached(
                "SELECT seq, at, channel, message FROM events WHERE seq > ?1
                 ORDER BY seq LIMIT ?2",
            )
            .sql()?;
        let rows = stmt
            .query_map(params![after, limit.max(0)], |r| {
                Ok(Event {
                    seq: r.get(0)?,
                    at: Timestamp(r.get(1)?),
                    channel: r.get(2)?,
                    message: r.get(3)?,
                })
            })
            .sql()?;
        rows.collect::<rusqlite::Result<Vec<_>>>().sql()
    }

    /// Runs a batch of commands in one transaction, each in its own
    /// savepoint; after the commit publishes each command's events and
    /// replies, in order.
    fn run_batch(&mut self, batch: Vec<ExecuteRequest>) {
        let count = batch.len() as u64;
        let outcomes = match self.run_transaction(batch) {
            Ok(outcomes) => outcomes,
            Err((requests, e)) => {
                tracing::error!(error = %e, commands = requests.len(), "SQLite batch failed");
                self.cache.clear();
                for request in requests {
                    let _ = request.reply.send(Err(e.clone()));
                }
                return;
            }
        };
        self.counters.batches.fetch_add(1, Ordering::Relaxed);
        self.counters.commands.fetch_add(count, Ordering::Relaxed);
        let last = outcomes
            .iter()
            .filter_map(|o| o.events.last())
            .map(|e| e.seq)
            .max();
        if let Some(seq) = last {
            announce(&self.commits, seq);
        }
        for Outcome {
            request,
            result,
            events,
        } in outcomes
        {
            if !events.is_empty() {
                let sink = &request.sink;
                if catch_unwind(AssertUnwindSafe(|| sink.publish(&events))).is_err() {
                    tracing::error!("an event sink panicked; its events were dropped");
                }
            }
            let _ = request.reply.send(result);
        }
    }

    /// The batch transaction. On failure returns the requests (none has been
    /// answered) with the error.
    ///
    /// First optimistically, every command straight in the transaction: a
    /// savepoint per command costs a copy of every page it touches (a
    /// quarter of the writer's time in the lifecycle profile), and refusals
    /// are rare. If one is refused, the transaction is rolled back and the
    /// batch runs again with a savepoint per command (the logic is a pure
    /// function of the store and the request, so the second run decides the
    /// same); a batch of one just reports the refusal.
    #[allow(clippy::type_complexity)]
    fn run_transaction(
        &mut self,
        batch: Vec<ExecuteRequest>,
    ) -> std::result::Result<Vec<Outcome>, (Vec<ExecuteRequest>, Error)> {
        match self.run_optimistic(batch) {
            Optimistic::Done(outcomes) => Ok(outcomes),
            Optimistic::Refused(batch) => self.run_with_savepoints(batch),
            Optimistic::Failed(batch, e) => Err((batch, e)),
        }
    }

    /// [`Writer::run_transaction`] without savepoints.
    fn run_optimistic(&mut self, batch: Vec<ExecuteRequest>) -> Optimistic {
        if let Err(e) = self.begin() {
            return Optimistic::Failed(batch, e);
        }
        self.cache.set_optimistic(true);
        let outcome = self.run_optimistic_group(batch);
        self.cache.set_optimistic(false);
        outcome
    }

    /// The commands of [`Writer::run_optimistic`], in its open transaction.
    fn run_optimistic_group(&mut self, batch: Vec<ExecuteRequest>) -> Optimistic {
        let single = batch.len() == 1;
        let mut outcomes: Vec<Outcome> = Vec::with_capacity(batch.len());
        let mut requests = batch.into_iter();
        while let Some(request) = requests.next() {
            let applied = self.apply_request(&request);
            let item_refused = self.cache.take_item_refused();
            match applied {
                Ok((reply, events)) if !item_refused => outcomes.push(Outcome {
                    request,
                    result: Ok(reply),
                    events,
                }),
                applied => {
                    let _ = self.conn.execute_batch("ROLLBACK");
                    self.cache.clear();
                    if let (true, Err(e)) = (single && !item_refused, applied) {
                        return Optimistic::Done(vec![Outcome {
                            request,
                            result: Err(e),
                            events: Vec::new(),
                        }]);
                    }
                    let mut all: Vec<ExecuteRequest> =
                        outcomes.into_iter().map(|o| o.request).collect();
                    all.push(request);
                    all.extend(requests);
                    return Optimistic::Refused(all);
                }
            }
        }
        match self.finish() {
            Ok(()) => Optimistic::Done(outcomes),
            Err(e) => {
                if !self.conn.is_autocommit() {
                    let _ = self.conn.execute_batch("ROLLBACK");
                }
                Optimistic::Failed(outcomes.into_iter().map(|o| o.request).collect(), e)
            }
        }
    }

    /// [`Writer::run_transaction`] with a savepoint per command.
    #[allow(clippy::type_complexity)]
    fn run_with_savepoints(
        &mut self,
        batch: Vec<ExecuteRequest>,
    ) -> std::result::Result<Vec<Outcome>, (Vec<ExecuteRequest>, Error)> {
        if let Err(e) = self.begin() {
            return Err((batch, e));
        }
        let mut outcomes = Vec::with_capacity(batch.len());
        let mut failure = None;
        for request in batch {
            if failure.is_some() {
                outcomes.push(Outcome {
                    request,
                    result: Ok(Reply::Nil),
                    events: Vec::new(),
                });
                continue;
            }
            match self.run_one(&request) {
                Ok((result, events)) => outcomes.push(Outcome {
                    request,
                    result,
                    events,
                }),
                Err(e) => {
                    failure = Some(e);
                    outcomes.push(Outcome {
                        request,
                        result: Ok(Reply::Nil),
                        events: Vec::new(),
                    });
                }
            }
        }
        let finished = match failure {
            Some(e) => Err(e),
            None => self.finish(),
        };
        match finished {
            Ok(()) => Ok(outcomes),
            Err(e) => {
                // Nothing of this batch may stay: roll back if still open.
                if !self.conn.is_autocommit() {
                    let _ = self.conn.execute_batch("ROLLBACK");
                }
                Err((outcomes.into_iter().map(|o| o.request).collect(), e))
            }
        }
    }

    /// Begins the batch transaction and drops caches another connection may
    /// have made stale.
    fn begin(&mut self) -> Result<()> {
        self.conn.execute_batch("BEGIN IMMEDIATE").sql()?;
        // Under the write lock nobody else can commit, so this is exact.
        let version = self
            .conn
            .query_row("PRAGMA data_version", [], |r| r.get::<_, i64>(0));
        match version {
            Ok(v) => {
                if self.data_version != Some(v) {
                    self.cache.clear();
                    self.data_version = Some(v);
                }
                Ok(())
            }
            Err(e) => {
                let _ = self.conn.execute_batch("ROLLBACK");
                Err(crate::tx::sql_err(e))
            }
        }
    }

    /// Flushes the cache and commits the batch.
    fn finish(&mut self) -> Result<()> {
        SqliteTx::new(&self.conn, &mut self.cache).flush()?;
        self.conn.execute_batch("COMMIT").sql()
    }

    /// Runs one command in a savepoint. The outer `Err` is a failure of the
    /// savepoint machinery itself, which dooms the batch; the inner result is
    /// the command's own (a refused command is rolled back to the savepoint).
    fn run_one(&mut self, request: &ExecuteRequest) -> Result<(Result<Reply>, Vec<Event>)> {
        SqliteTx::new(&self.conn, &mut self.cache).flush_stats()?;
        self.conn.execute_batch("SAVEPOINT op").sql()?;
        let outcome = self.apply_request(request);
        match outcome {
            Ok((reply, events)) => {
                self.conn.execute_batch("RELEASE op").sql()?;
                Ok((Ok(reply), events))
            }
            Err(e) => {
                self.conn
                    .execute_batch("ROLLBACK TO op; RELEASE op")
                    .sql()?;
                self.cache.rolled_back();
                Ok((Err(e), Vec::new()))
            }
        }
    }

    /// Runs the logic and appends its events; any error means roll back.
    fn apply_request(&mut self, request: &ExecuteRequest) -> Result<(Reply, Vec<Event>)> {
        let apply = self.apply;
        let mut tx = SqliteTx::new(&self.conn, &mut self.cache);
        let mut pending = Vec::new();
        let reply = catch_unwind(AssertUnwindSafe(|| {
            apply(
                &mut tx,
                request.now,
                &request.origin,
                &request.command,
                &mut pending,
            )
        }))
        .unwrap_or_else(|_| {
            tracing::error!(command = request.command.name(), "command logic panicked");
            Err(Error::store(format!(
                "internal error: the {} command panicked",
                request.command.name()
            )))
        })?;
        let mut events = Vec::with_capacity(pending.len());
        for PendingEvent { channel, message } in pending {
            let seq = tx.event_append(request.now, &channel, &message)?;
            events.push(Event {
                seq,
                at: request.now,
                channel,
                message,
            });
        }
        Ok((reply, events))
    }
}
