//! [`PostgresStore`]: the [`Store`] over one PostgreSQL schema, served by a
//! small pool of threads that each own one connection.

use std::fmt;
use std::panic::{catch_unwind, AssertUnwindSafe};
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::sync::mpsc;
use std::sync::{Arc, Condvar, Mutex, OnceLock, PoisonError, RwLock};
use std::thread::JoinHandle;

use async_trait::async_trait;
use clew_core::{
    Clock, Command, Error, Event, EventSink, Origin, PendingEvent, Reply, Result, Store,
    SystemClock, Timestamp, Tx,
};
use tokio::sync::{oneshot, watch};

use crate::config::{PostgresOptions, SchemaName, Target};
use crate::conn::PgConn;
use crate::schema::{connect, connect_pipelined, migrate};
use crate::tx::{send, Claim, Op, PgResult, PgTx, StatementCache, LOCK_SQL};

/// The semantic logic the pool runs for each command: normally
/// [`clew_core::logic::apply`]; tests may substitute their own.
pub type ApplyFn =
    fn(&mut dyn Tx, Timestamp, &Origin, &Command, &mut Vec<PendingEvent>) -> Result<Reply>;

/// A request to the pool.
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
    /// Count the jobs a pop would hand out (see [`ready_hint`]).
    ReadyHint {
        queue: String,
        at: Timestamp,
        limit: usize,
        reply: oneshot::Sender<Result<Option<usize>>>,
    },
}

/// One command to run, with where its events and reply go.
struct ExecuteRequest {
    now: Timestamp,
    origin: Origin,
    command: Command,
    sink: Arc<dyn EventSink>,
    reply: oneshot::Sender<Result<Reply>>,
}

/// Hands out turns in commit order and lets each command publish its events
/// only when every earlier turn is done, so a sink sees this process's
/// commits in the order they were made.
///
/// A command holding the command lock exclusively takes its turn right
/// after that lock is granted; the lock is held until the commit, and no
/// other command of the schema writes meanwhile, so its turn follows
/// every earlier writer's. A command running next to others takes its
/// turn as its events are numbered, under [`Shared::numbering`], so this
/// process's turns follow its event numbers (its commit may come before
/// an earlier-numbered one's: publication waits for that one's turn).
#[derive(Debug, Default)]
struct PublishOrder {
    next: AtomicU64,
    done: Mutex<u64>,
    changed: Condvar,
}

impl PublishOrder {
    /// Takes the next turn.
    fn take(self: &Arc<PublishOrder>) -> Turn {
        Turn {
            order: self.clone(),
            ticket: self.next.fetch_add(1, Ordering::SeqCst),
            finished: false,
        }
    }
}

/// One command's place in [`PublishOrder`]; dropping it unused (on an
/// error path) still lets the next turn go.
struct Turn {
    order: Arc<PublishOrder>,
    ticket: u64,
    finished: bool,
}

impl Turn {
    /// Waits for every earlier turn, runs `publish`, and lets the next go.
    fn finish(&mut self, publish: impl FnOnce()) {
        if self.finished {
            return;
        }
        self.finished = true;
        let order = &self.order;
        let mut done = order
            .done
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner());
        while *done != self.ticket {
            done = order
                .changed
                .wait(done)
                .unwrap_or_else(|poisoned| poisoned.into_inner());
        }
        publish();
        *done += 1;
        order.changed.notify_all();
    }
}

impl Drop for Turn {
    fn drop(&mut self) {
        self.finish(|| ());
    }
}

/// What the pool threads share.
struct Shared {
    target: Target,
    apply: ApplyFn,
    pool_size: usize,
    /// The request queue; each idle thread waits on it in turn.
    receiver: Mutex<mpsc::Receiver<Request>>,
    /// Threads waiting for a request that no call has claimed yet (an
    /// estimate once the pool is full and calls queue up).
    idle: AtomicUsize,
    order: Arc<PublishOrder>,
    /// Commands run so far (committed or refused).
    commands: AtomicU64,
    /// Transactions begun so far to run commands, groups and drains
    /// (committed or rolled back, a run again counted again).
    transactions: AtomicU64,
    /// Round trips to the server made so far by commands, groups and
    /// drains ([`PostgresStore::round_trips_run`]).
    round_trips: AtomicU64,
    /// Statements sent by the commands ([`PostgresStore::statements_run`]).
    statements: AtomicU64,
    /// The most commands run in one transaction
    /// ([`PostgresOptions::group_max`]).
    group_max: usize,
    /// The schema's command lock ([`SchemaName::command_lock_key`]), taken
    /// as a command's transaction begins ([`OpenTx::begin`]).
    command_lock: i64,
    /// Whether pops run concurrently ([`PostgresOptions::concurrent_pops`],
    /// [`OpenTx::begin_pop`]).
    concurrent_pops: bool,
    /// Whether completes run next to pops
    /// ([`PostgresOptions::concurrent_completes`]).
    concurrent_completes: bool,
    /// Whether puts of new jobs run next to pops
    /// ([`PostgresOptions::concurrent_puts`]).
    concurrent_puts: bool,
    /// The lock a concurrent pop takes before writing its events.
    event_lock: i64,
    /// Held by a command running next to others (a pop, say) from just
    /// before the round trip that numbers its events to its taking a
    /// publication turn: this process's turns follow its event numbers.
    /// Held for that round trip only, not to the commit (see
    /// [`run_claiming`]).
    numbering: Mutex<()>,
    /// The schema's notification channel (set once migrated).
    channel: OnceLock<String>,
    /// Whether a listener runs ([`PostgresOptions::listen`]).
    listening: bool,
    /// The latest committed event number known (this store's commits and,
    /// with a listener, every process's).
    commits: watch::Sender<i64>,
    /// The sink of the last command: where drains that no command asked for
    /// (the listener's) publish their events.
    last_sink: Mutex<Option<Arc<dyn EventSink>>>,
    /// The clock of drains that no command asked for.
    clock: RwLock<Arc<dyn Clock>>,
    /// Set when the store closes (stops the listener).
    stopped: Arc<AtomicBool>,
    /// The listener thread, if any.
    listener: Mutex<Option<JoinHandle<()>>>,
}

impl Shared {
    /// How `command` claims what it changes, if it runs next to pops
    /// (holding the command lock shared) rather than alone.
    fn claim(&self, command: &Command) -> Option<Claim> {
        match command {
            Command::Pop { .. } if self.concurrent_pops => Some(Claim::Pop),
            _ if self.concurrent_completes && completes_beside_pops(command) => {
                Some(Claim::Complete)
            }
            _ if self.concurrent_puts && puts_beside_pops(command) => Some(Claim::Put),
            _ => None,
        }
    }

    /// Records that events up to `seq` are committed.
    fn note_commit(&self, seq: i64) {
        self.commits.send_if_modified(|latest| {
            let newer = seq > *latest;
            if newer {
                *latest = seq;
            }
            newer
        });
    }

    /// Publishes `events` to `sink` (a panicking sink is logged) and notes
    /// the commit.
    fn publish(&self, sink: &dyn EventSink, events: &[Event]) {
        let Some(last) = events.last() else {
            return;
        };
        if catch_unwind(AssertUnwindSafe(|| sink.publish(events))).is_err() {
            tracing::error!("an event sink panicked; its events were dropped");
        }
        self.note_commit(last.seq);
    }
}

/// The pool: the sending end of the queue and the threads.
struct Pool {
    sender: Option<mpsc::Sender<Request>>,
    threads: Vec<JoinHandle<()>>,
}

/// The shared store: every clew object in one PostgreSQL schema, commands
/// run by a small pool of threads, one connection each. See the crate doc.
pub struct PostgresStore {
    shared: Arc<Shared>,
    options: PostgresOptions,
    pool: Mutex<Pool>,
    /// Publisher cursors and leadership (`cursors.rs`).
    coordinator: crate::cursors::Coordinator,
}

impl fmt::Debug for PostgresStore {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("PostgresStore")
            .field("schema", &self.shared.target.schema.as_str())
            .field("options", &self.options)
            .field("commands", &self.shared.commands.load(Ordering::Relaxed))
            .field(
                "transactions",
                &self.shared.transactions.load(Ordering::Relaxed),
            )
            .finish()
    }
}

/// The error of every call on a closed store.
fn closed() -> Error {
    Error::store("store is closed")
}

impl PostgresStore {
    /// Connects to the database at `url` (`postgres://user@host:port/db`,
    /// with an optional `?schema=name`), creates and migrates the schema if
    /// needed, and starts the pool. Blocks until the first connection is
    /// ready; safe to call from inside an async runtime (the connection is
    /// made on the pool's first thread).
    pub fn open(url: &str, options: PostgresOptions) -> Result<PostgresStore> {
        PostgresStore::open_with_logic(url, options, clew_core::logic::apply)
    }

    /// Like [`PostgresStore::open`] but the pool runs `apply` instead of
    /// [`clew_core::logic::apply`] (used by tests of the store itself).
    pub fn open_with_logic(
        url: &str,
        options: PostgresOptions,
        apply: ApplyFn,
    ) -> Result<PostgresStore> {
        let target = Target::parse(url, &options)?;
        let (sender, receiver) = mpsc::channel();
        let shared = Arc::new(Shared {
            apply,
            pool_size: options.pool_size.max(1),
            receiver: Mutex::new(receiver),
            idle: AtomicUsize::new(0),
            order: Arc::default(),
            commands: AtomicU64::new(0),
            transactions: AtomicU64::new(0),
            round_trips: AtomicU64::new(0),
            statements: AtomicU64::new(0),
            group_max: options.group_max.max(1),
            command_lock: target.schema.command_lock_key(),
            concurrent_pops: options.concurrent_pops,
            concurrent_completes: options.concurrent_completes,
            concurrent_puts: options.concurrent_puts,
            event_lock: target.schema.event_lock_key(),
            numbering: Mutex::new(()),
            channel: OnceLock::new(),
            listening: options.listen,
            commits: watch::channel(0).0,
            last_sink: Mutex::new(None),
            clock: RwLock::new(Arc::new(SystemClock)),
            stopped: Arc::new(AtomicBool::new(false)),
            listener: Mutex::new(None),
            target,
        });
        let (ready_tx, ready_rx) = mpsc::channel();
        let first = {
            let shared = shared.clone();
            spawn_worker(move || {
                // Migrated on a connection of the synchronous driver, closed
                // once done.
                let conn = connect(&shared.target).and_then(|mut client| {
                    migrate(&mut client, &shared.target.schema)?;
                    let _ = shared.channel.set(notify_channel(&mut client)?);
                    Conn::open(&shared.target)
                });
                match conn {
                    Ok(conn) => {
                        // Idle before the store is handed out, so its first
                        // call does not start a second thread.
                        shared.idle.fetch_add(1, Ordering::SeqCst);
                        let _ = ready_tx.send(Ok(()));
                        Worker::new(shared, Some(conn)).run();
                    }
                    Err(e) => {
                        let _ = ready_tx.send(Err(e));
                    }
                }
            })?
        };
        let ready = ready_rx
            .recv()
            .unwrap_or_else(|_| Err(Error::store("the PostgreSQL pool thread died at start")));
        if let Err(e) = ready {
            let _ = first.join();
            return Err(e);
        }
        if shared.listening {
            if let Err(e) = start_listener(&shared) {
                shared.stopped.store(true, Ordering::SeqCst);
                drop(sender);
                let _ = first.join();
                return Err(e);
            }
        }
        Ok(PostgresStore {
            coordinator: crate::cursors::Coordinator::new(shared.target.clone()),
            shared,
            options,
            pool: Mutex::new(Pool {
                sender: Some(sender),
                threads: vec![first],
            }),
        })
    }

    /// The schema the store lives in.
    pub fn schema(&self) -> &str {
        self.shared.target.schema.as_str()
    }

    /// The options it was opened with.
    pub fn options(&self) -> &PostgresOptions {
        &self.options
    }

    /// Commands committed or refused so far by this store.
    pub fn commands_run(&self) -> u64 {
        self.shared.commands.load(Ordering::Relaxed)
    }

    /// Transactions begun so far by this store's commands (and outbox
    /// drains): with group commit, concurrent commands share one, so this
    /// grows slower than [`PostgresStore::commands_run`]; a transaction run
    /// again (a pop that lost a deadlock, a group that a refused command
    /// sent back to run with savepoints) counts once per run.
    pub fn transactions_run(&self) -> u64 {
        self.shared.transactions.load(Ordering::Relaxed)
    }

    /// Round trips to the database made so far by this store's commands
    /// (and outbox drains): each statement, or pipeline of statements sent
    /// back to back before any answer is read ([`crate::PgConn::pipeline`]),
    /// counts one, `BEGIN` and `COMMIT` included, and so does preparing the
    /// statements a connection has not prepared yet (one pipeline). With
    /// commands serialized by the schema's lock, a command's time is mostly
    /// its round trips.
    pub fn round_trips_run(&self) -> u64 {
        self.shared.round_trips.load(Ordering::Relaxed)
    }

    /// Statements sent so far by this store's commands (and outbox
    /// drains), `BEGIN` and `COMMIT` included, preparations not: what the
    /// server executes one by one while the command holds the schema's
    /// lock.
    pub fn statements_run(&self) -> u64 {
        self.shared.statements.load(Ordering::Relaxed)
    }

    /// Sets the clock of the drains the listener runs when applications put
    /// jobs through the outbox and no command follows (default: the system
    /// clock; commands drain at their own `now`). See [`crate::outbox`].
    pub fn set_clock(&self, clock: Arc<dyn Clock>) {
        if let Ok(mut c) = self.shared.clock.write() {
            *c = clock;
        }
    }

    /// Connections (threads) the pool has opened so far.
    pub fn pool_threads(&self) -> usize {
        self.pool.lock().map(|p| p.threads.len()).unwrap_or(0)
    }

    /// Queues a request. It claims an idle pool thread if there is one,
    /// else starts another thread if the pool is not full, else waits for
    /// the first thread to finish its call.
    fn send(&self, request: Request) -> Result<()> {
        let mut pool = self.pool.lock().map_err(|_| closed())?;
        let sender = pool.sender.clone().ok_or_else(closed)?;
        let claimed = self
            .shared
            .idle
            .fetch_update(Ordering::SeqCst, Ordering::SeqCst, |n| n.checked_sub(1))
            .is_ok();
        if !claimed && pool.threads.len() < self.shared.pool_size {
            let shared = self.shared.clone();
            match spawn_worker(move || Worker::new(shared, None).run()) {
                Ok(thread) => pool.threads.push(thread),
                // The request still goes to a running thread.
                Err(e) => tracing::warn!(error = %e, "growing the PostgreSQL pool"),
            }
        }
        sender.send(request).map_err(|_| closed())
    }

    /// Stops taking requests; returns the threads to join (they finish the
    /// queued requests first).
    fn stop(&self) -> Vec<JoinHandle<()>> {
        self.shared.stopped.store(true, Ordering::SeqCst);
        let listener = self.shared.listener.lock().ok().and_then(|mut l| l.take());
        let mut threads = match self.pool.lock() {
            Ok(mut pool) => {
                pool.sender = None;
                std::mem::take(&mut pool.threads)
            }
            Err(_) => Vec::new(),
        };
        threads.extend(listener);
        threads
    }
}

/// Joins pool threads, unless called on one of them.
fn join_all(threads: Vec<JoinHandle<()>>) {
    let me = std::thread::current().id();
    for thread in threads {
        if thread.thread().id() != me {
            // A panic on a pool thread was reported by the panic hook.
            let _ = thread.join();
        }
    }
}

/// The schema's notification channel, as its SQL function names it.
fn notify_channel(client: &mut postgres::Client) -> Result<String> {
    client
        .query_one("SELECT notify_channel()", &[])
        .and_then(|row| row.try_get(0))
        .map_err(|e| {
            Error::store(format!(
                "reading the notification channel: {}",
                crate::tx::pg_err(e).message()
            ))
        })
}

/// Starts the listener thread (see [`crate::listen`]): commits announced by
/// any process wake [`Store::subscribe_commits`]; puts waiting in the
/// outbox are drained on the listener's connection.
fn start_listener(shared: &Arc<Shared>) -> Result<()> {
    let channel = shared
        .channel
        .get()
        .cloned()
        .ok_or_else(|| Error::store("the PostgreSQL notification channel is unknown"))?;
    let on_commit = {
        let shared = shared.clone();
        move |seq| shared.note_commit(seq)
    };
    let on_put = {
        let shared = shared.clone();
        move |conn: &mut Conn| drain_idle(conn, &shared)
    };
    let thread = crate::listen::Listener {
        target: shared.target.clone(),
        channel,
        stop: shared.stopped.clone(),
        on_commit,
        on_put,
    }
    .spawn()?;
    if let Ok(mut listener) = shared.listener.lock() {
        *listener = Some(thread);
    }
    Ok(())
}

/// Drains the outbox in a transaction of its own (no command asked for it)
/// at the store's clock; publishes the events to the last command's sink.
fn drain_idle(conn: &mut Conn, shared: &Shared) {
    let now = match shared.clock.read() {
        Ok(clock) => clock.now(),
        Err(_) => SystemClock.now(),
    };
    let mut turn = None;
    let outcome = run_command(conn, shared, now, None, &mut turn);
    let events = match outcome {
        Ok(outcome) => outcome.events,
        Err(e) => {
            tracing::error!(error = %e, "draining the PostgreSQL put outbox");
            Vec::new()
        }
    };
    let sink = shared.last_sink.lock().ok().and_then(|s| s.clone());
    let publish = || match &sink {
        Some(sink) => shared.publish(sink.as_ref(), &events),
        None => {
            if let Some(last) = events.last() {
                shared.note_commit(last.seq);
            }
        }
    };
    match turn {
        Some(mut turn) => turn.finish(publish),
        None => publish(),
    }
}

/// Starts a pool thread.
fn spawn_worker(body: impl FnOnce() + Send + 'static) -> Result<JoinHandle<()>> {
    std::thread::Builder::new()
        .name("clew-postgres".into())
        .spawn(body)
        .map_err(|e| Error::store(format!("starting a PostgreSQL pool thread: {e}")))
}

#[async_trait]
impl Store for PostgresStore {
    async fn execute_from(
        &self,
        now: Timestamp,
        origin: Origin,
        command: Command,
        sink: Arc<dyn EventSink>,
    ) -> Result<Reply> {
        if let Ok(mut last) = self.shared.last_sink.lock() {
            if !last.as_ref().is_some_and(|l| Arc::ptr_eq(l, &sink)) {
                *last = Some(sink.clone());
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

    /// With a listener ([`PostgresOptions::listen`]): the latest event
    /// number committed by any process on the schema, announced by
    /// `NOTIFY`.
    fn subscribe_commits(&self) -> Option<watch::Receiver<i64>> {
        self.shared
            .listening
            .then(|| self.shared.commits.subscribe())
    }

    async fn events_prune(&self, before_seq: i64) -> Result<u64> {
        let (reply, rx) = oneshot::channel();
        self.send(Request::EventsPrune {
            before: before_seq,
            reply,
        })?;
        rx.await.map_err(|_| closed())?
    }

    async fn ready_hint(&self, queue: &str, at: Timestamp, limit: usize) -> Result<Option<usize>> {
        let (reply, rx) = oneshot::channel();
        self.send(Request::ReadyHint {
            queue: queue.to_owned(),
            at,
            limit,
            reply,
        })?;
        rx.await.map_err(|_| closed())?
    }

    fn shared_cursors(&self) -> bool {
        true
    }

    async fn cursor_load(&self, name: &str) -> Result<Option<i64>> {
        self.coordinator.cursor_load(name).await
    }

    async fn cursor_save(&self, name: &str, seq: i64) -> Result<()> {
        self.coordinator.cursor_save(name, seq).await
    }

    async fn try_lead(&self, name: &str) -> Result<Option<clew_core::store::LeaderGuard>> {
        self.coordinator.try_lead(name).await
    }

    /// Finishes queued requests, closes every connection and stops the pool
    /// threads. Closing a closed store does nothing.
    async fn close(&self) -> Result<()> {
        self.coordinator.close();
        let threads = self.stop();
        if threads.is_empty() {
            return Ok(());
        }
        let (done, rx) = oneshot::channel();
        std::thread::Builder::new()
            .name("clew-postgres-close".into())
            .spawn(move || {
                join_all(threads);
                let _ = done.send(());
            })
            .map_err(|e| Error::store(format!("closing the PostgreSQL store: {e}")))?;
        rx.await
            .map_err(|_| Error::store("closing the PostgreSQL store: joiner thread died"))
    }
}

impl Drop for PostgresStore {
    fn drop(&mut self) {
        join_all(self.stop());
    }
}

/// One connection with its prepared statements.
pub(crate) struct Conn {
    pub(crate) client: PgConn,
    pub(crate) statements: StatementCache,
}

impl Conn {
    /// Connects with `search_path` set to the store's schema.
    pub(crate) fn open(target: &Target) -> Result<Conn> {
        Ok(Conn {
            client: connect_pipelined(target)?,
            statements: StatementCache::new(),
        })
    }

    /// Sends `ops` in one round trip ([`send`]); the first failure.
    pub(crate) fn send(&mut self, ops: Vec<Op<'_>>) -> Result<Vec<crate::conn::Answer>> {
        send(&mut self.client, &mut self.statements, ops).pg()
    }

    /// Primitives on this connection ([`PgTx`]).
    pub(crate) fn tx(&mut self) -> PgTx<'_> {
        PgTx::new(&mut self.client, &mut self.statements)
    }
}

/// One pool thread: serves queued requests on its connection, reconnecting
/// when the connection is lost.
struct Worker {
    shared: Arc<Shared>,
    conn: Option<Conn>,
    /// A request taken from the queue while gathering a group that could
    /// not join it (not a command): served next.
    pending: Option<Request>,
}

/// What a pool thread took from the queue.
enum Work {
    /// One request, served alone.
    One(Request),
    /// Two or more commands, run in one transaction.
    Group(Vec<ExecuteRequest>),
}

/// A command's outcome, ready to publish after its commit.
struct Outcome {
    result: Result<Reply>,
    events: Vec<Event>,
}

impl Worker {
    fn new(shared: Arc<Shared>, conn: Option<Conn>) -> Worker {
        Worker {
            shared,
            conn,
            pending: None,
        }
    }

    /// Serves requests until the store closes. A thread counts as idle
    /// (claimable by the next call, see [`PostgresStore::send`]) from just
    /// before it answers, so a caller's next call does not start another
    /// thread for nothing.
    ///
    /// A command other than a concurrent pop takes the commands already
    /// queued behind it (no waiting, [`Shared::group_max`] in all) and runs
    /// them in one transaction ([`Worker::execute_group`]).
    fn run(mut self) {
        loop {
            let work = match self.pending.take() {
                Some(request) => Work::One(request),
                None => match self.next() {
                    Some(work) => work,
                    // The store was closed or dropped and the queue is empty.
                    None => break,
                },
            };
            let (answer, served) = match work {
                Work::One(request) => (self.serve(request), 1),
                Work::Group(group) => {
                    let served = group.len();
                    (self.execute_group(group), served)
                }
            };
            self.shared.idle.fetch_add(served, Ordering::SeqCst);
            answer();
        }
    }

    /// Waits for the next request; when it is a command that may lead a
    /// group, also takes the commands queued behind it (stopping at a
    /// request of another kind, kept in [`Worker::pending`]). `None` once
    /// the store is closed and the queue empty.
    fn next(&mut self) -> Option<Work> {
        // Held while waiting: the idle threads take turns at the queue.
        let receiver = self.shared.receiver.lock().ok()?;
        let first = match receiver.recv().ok()? {
            // Commands next to pops and reads run on their own.
            Request::Execute(first)
                if self.shared.claim(&first.command).is_none() && !first.command.reads_only() =>
            {
                first
            }
            other => return Some(Work::One(other)),
        };
        let mut more = Vec::new();
        while more.len() + 1 < self.shared.group_max {
            match receiver.try_recv() {
                Ok(Request::Execute(request)) => more.push(*request),
                Ok(other) => {
                    self.pending = Some(other);
                    break;
                }
                Err(_) => break,
            }
        }
        Some(if more.is_empty() {
            Work::One(Request::Execute(first))
        } else {
            Work::Group(std::iter::once(*first).chain(more).collect())
        })
    }

    /// Serves one request; returns how to answer it.
    fn serve(&mut self, request: Request) -> Box<dyn FnOnce()> {
        match request {
            Request::Execute(request) => self.execute(*request),
            Request::EventsAfter {
                after,
                limit,
                reply,
            } => {
                let event_lock = self.shared.event_lock;
                let result = self.with_conn(|conn| events_after(conn, event_lock, after, limit));
                Box::new(move || {
                    let _ = reply.send(result);
                })
            }
            Request::Flush { reply } => {
                let schema = self.shared.target.schema.clone();
                let result = self.with_conn(|conn| flush(conn, &schema));
                Box::new(move || {
                    let _ = reply.send(result);
                })
            }
            Request::EventsPrune { before, reply } => {
                let result = self.with_conn(|conn| events_prune(conn, before));
                Box::new(move || {
                    let _ = reply.send(result);
                })
            }
            Request::ReadyHint {
                queue,
                at,
                limit,
                reply,
            } => {
                let result = self.with_conn(|conn| ready_hint(conn, &queue, at, limit));
                Box::new(move || {
                    let _ = reply.send(result);
                })
            }
        }
    }

    /// Runs `f` on the connection, opening one first if there is none (or
    /// the last one was lost); forgets a connection that `f` found broken.
    fn with_conn<T>(&mut self, f: impl FnOnce(&mut Conn) -> Result<T>) -> Result<T> {
        if self.conn.as_ref().is_none_or(|c| c.client.is_closed()) {
            self.conn = Some(Conn::open(&self.shared.target)?);
        }
        let conn = self.conn.as_mut().ok_or_else(closed)?;
        let result = f(conn);
        self.shared
            .round_trips
            .fetch_add(conn.statements.take_round_trips(), Ordering::Relaxed);
        self.shared
            .statements
            .fetch_add(conn.statements.take_sent(), Ordering::Relaxed);
        if conn.client.is_closed() {
            self.conn = None;
        }
        result
    }

    /// Runs one command in its own transaction; the answer publishes its
    /// events (in commit order) and replies.
    fn execute(&mut self, request: ExecuteRequest) -> Box<dyn FnOnce()> {
        let shared = self.shared.clone();
        let mut turn = None;
        let outcome = self.with_conn(|conn| {
            let job = Some((&request.origin, &request.command));
            run_command(conn, &shared, request.now, job, &mut turn)
        });
        shared.commands.fetch_add(1, Ordering::Relaxed);
        let (result, events) = match outcome {
            Ok(Outcome { result, events }) => (result, events),
            Err(e) => {
                tracing::error!(
                    error = %e,
                    command = request.command.name(),
                    "PostgreSQL command failed"
                );
                (Err(e), Vec::new())
            }
        };
        Box::new(move || {
            let publish = || shared.publish(request.sink.as_ref(), &events);
            match turn {
                Some(mut turn) => turn.finish(publish),
                None => publish(),
            }
            let _ = request.reply.send(result);
        })
    }
}

impl Worker {
    /// Runs several commands in one transaction ([`run_group`]); the answer
    /// publishes each command's events, in order, in the group's commit
    /// turn, then replies to each.
    fn execute_group(&mut self, group: Vec<ExecuteRequest>) -> Box<dyn FnOnce()> {
        let shared = self.shared.clone();
        let mut turn = None;
        let outcome = self.with_conn(|conn| run_group(conn, &shared, &group, &mut turn));
        shared
            .commands
            .fetch_add(group.len() as u64, Ordering::Relaxed);
        let outcomes = match outcome {
            Ok(outcomes) => outcomes,
            Err(e) => {
                tracing::error!(
                    error = %e,
                    commands = group.len(),
                    "PostgreSQL group of commands failed"
                );
                group
                    .iter()
                    .map(|_| Outcome {
                        result: Err(e.clone()),
                        events: Vec::new(),
                    })
                    .collect()
            }
        };
        Box::new(move || {
            let publish = || {
                for (request, outcome) in group.iter().zip(&outcomes) {
                    shared.publish(request.sink.as_ref(), &outcome.events);
                }
            };
            match turn {
                Some(mut turn) => turn.finish(publish),
                None => publish(),
            }
            for (request, outcome) in group.into_iter().zip(outcomes) {
                let _ = request.reply.send(outcome.result);
            }
        })
    }
}

/// How a command's transaction begins. READ COMMITTED whatever the
/// server's default: each statement then sees every commit made before the
/// lock was granted (a snapshot taken by the lock statement would predate
/// them).
pub(crate) const BEGIN_SQL: &str = "BEGIN ISOLATION LEVEL READ COMMITTED";

/// An open transaction on a connection: rolled back when dropped unless
/// committed, so no path leaves the connection inside a transaction.
struct OpenTx<'a> {
    conn: &'a mut Conn,
    open: bool,
}

impl<'a> OpenTx<'a> {
    /// Begins a transaction holding the command lock exclusively, and takes
    /// the first page of the outbox drain (one round trip: `BEGIN`, the
    /// lock and the drain pipelined); returns the outbox rows it took.
    fn begin(conn: &'a mut Conn, lock: i64) -> Result<(OpenTx<'a>, Vec<crate::outbox::OutboxRow>)> {
        let tx = OpenTx { conn, open: true };
        let answers = tx.conn.send(vec![
            Op::Text(BEGIN_SQL),
            Op::Exec(LOCK_SQL, vec![&lock]),
            Op::Query(crate::outbox::DRAIN_SQL, Vec::new()),
        ])?;
        let rows = crate::outbox::drained_rows(answers.into_iter().nth(2))?;
        Ok((tx, rows))
    }

    /// Begins the transaction of a command running next to pops
    /// ([`POP_LOCK_SQL`], one round trip); returns whether it holds the
    /// command lock exclusively (puts wait in the outbox) rather than
    /// shared.
    fn begin_pop(conn: &'a mut Conn, lock: i64) -> Result<(OpenTx<'a>, bool)> {
        let tx = OpenTx { conn, open: true };
        let answers = tx.conn.send(vec![
            Op::Text(BEGIN_SQL),
            Op::Query(POP_LOCK_SQL, vec![&lock]),
        ])?;
        let mut exclusive = false;
        for row in answers
            .into_iter()
            .nth(1)
            .map(crate::conn::Answer::rows)
            .unwrap_or_default()
        {
            let mode: String = row.try_get(0).pg()?;
            exclusive |= mode.starts_with('x');
        }
        Ok((tx, exclusive))
    }

    /// Begins the read-only snapshot of a command that only reads
    /// ([`run_read`]), taking no lock (one round trip); returns whether puts
    /// wait in the outbox (then it must run alone, draining them first).
    fn begin_read(conn: &'a mut Conn) -> Result<(OpenTx<'a>, bool)> {
        let tx = OpenTx { conn, open: true };
        let answers = tx.conn.send(vec![
            Op::Text("BEGIN ISOLATION LEVEL REPEATABLE READ, READ ONLY"),
            Op::Query(OUTBOX_WAITING_SQL, Vec::new()),
        ])?;
        let waiting = match answers
            .into_iter()
            .nth(1)
            .map(crate::conn::Answer::rows)
            .unwrap_or_default()
            .first()
        {
            Some(row) => row.try_get::<_, bool>(0).pg()?,
            None => true,
        };
        Ok((tx, waiting))
    }

    /// A concurrent pop's transaction whose beginning (`BEGIN` and
    /// [`POP_LOCK_SQL`]) goes with its first round trip
    /// ([`PgTx::begins_pop`]): nothing is sent yet.
    fn deferred_pop(conn: &'a mut Conn) -> OpenTx<'a> {
        OpenTx { conn, open: true }
    }

    /// Takes the next page of the outbox drain (one round trip).
    fn drain_page(&mut self) -> Result<Vec<crate::outbox::OutboxRow>> {
        let answers = self
            .conn
            .send(vec![Op::Query(crate::outbox::DRAIN_SQL, Vec::new())])?;
        crate::outbox::drained_rows(answers.into_iter().next())
    }

    /// Runs `sql` (a savepoint statement, no values) inside the transaction.
    fn run(&mut self, sql: &str) -> Result<()> {
        self.conn.send(vec![Op::Text(sql)]).map(drop)
    }

    /// Primitives inside the transaction.
    fn pg(&mut self) -> PgTx<'_> {
        self.conn.tx()
    }

    /// Notes that the transaction was committed (by statements sent with
    /// the last command's writes).
    fn committed(mut self) {
        self.open = false;
    }

    /// Ends the transaction with `ROLLBACK`.
    fn rollback(mut self) -> Result<()> {
        self.open = false;
        self.run("ROLLBACK")
    }

    /// Ends the transaction with `COMMIT`, notifying `channel` of
    /// `last_seq` first when the transaction wrote events (one round trip).
    fn commit(mut self, channel: Option<&str>, last_seq: Option<i64>) -> Result<()> {
        self.open = false;
        self.conn.tx().commit(channel, last_seq)
    }
}

impl Drop for OpenTx<'_> {
    fn drop(&mut self) {
        if self.open && !self.conn.client.is_closed() {
            if let Err(e) = self.conn.client.batch_execute("ROLLBACK") {
                tracing::warn!(error = %crate::tx::pg_err(e), "rolling back a failed command");
            }
        }
    }
}

/// A command's transaction: `BEGIN`, the schema's advisory lock and the
/// outbox drain (one round trip, then the drained puts, see
/// [`crate::outbox`]), the command's logic and events (none for a drain
/// alone), the commit notification and `COMMIT`. The outer `Err` is a
/// database failure (the transaction is rolled back); the inner result is
/// the command's own. A refused command is rolled back: all of it when
/// nothing was drained, else back to a savepoint after the drain, so the
/// drained puts still commit. A pop, when pops run concurrently, goes
/// through [`run_claiming`] instead, as does a complete next to pops.
fn run_command(
    conn: &mut Conn,
    shared: &Shared,
    now: Timestamp,
    job: Option<(&Origin, &Command)>,
    turn: &mut Option<Turn>,
) -> Result<Outcome> {
    if let Some((origin, command)) = job {
        if let Some(claim) = shared.claim(command) {
            return run_claiming(conn, shared, now, origin, command, claim, turn);
        }
        if command.reads_only() {
            if let Some(outcome) = run_read(conn, shared, now, origin, command)? {
                return Ok(outcome);
            }
        }
    }
    run_alone(conn, shared, now, job, turn)
}

/// Runs a command that only reads ([`Command::reads_only`]) in a read-only
/// `REPEATABLE READ` transaction, without the command lock: it sees one
/// committed state, as it would holding the lock, but neither waits for
/// the commands in flight nor makes every later command wait for it (a
/// benchmark looking at a queue's length every few milliseconds had each
/// look wait 12 ms for the pops and completes in flight, holding up all
/// that came after). `None` when it must run alone after all: puts wait
/// in the outbox (a command drains them first), or the logic wrote
/// (PostgreSQL refuses writes in a read-only transaction).
fn run_read(
    conn: &mut Conn,
    shared: &Shared,
    now: Timestamp,
    origin: &Origin,
    command: &Command,
) -> Result<Option<Outcome>> {
    shared.transactions.fetch_add(1, Ordering::Relaxed);
    let (mut tx, waiting) = OpenTx::begin_read(conn)?;
    if waiting {
        tx.rollback()?;
        return Ok(None);
    }
    let (outcome, wrote) = {
        let mut pg = tx.pg().reading();
        let outcome = apply_logic(
            &mut pg,
            shared.apply,
            now,
            origin,
            command,
            None,
            &mut || (),
        );
        (outcome, pg.failed_read_only())
    };
    match outcome {
        Ok((reply, events)) if events.is_empty() => {
            tx.commit(None, None)?;
            Ok(Some(Outcome {
                result: Ok(reply),
                events,
            }))
        }
        // Events are written: unreachable, as the insert fails; run alone.
        Ok(_) => {
            tx.rollback()?;
            Ok(None)
        }
        Err(_) if wrote => {
            tx.rollback()?;
            Ok(None)
        }
        Err(e) => {
            tx.rollback()?;
            Ok(Some(Outcome {
                result: Err(e),
                events: Vec::new(),
            }))
        }
    }
}

/// Whether puts wait in the outbox.
const OUTBOX_WAITING_SQL: &str = "SELECT EXISTS (SELECT 1 FROM put_outbox)";

/// Runs a command (or, with no `job`, drains the outbox) holding the
/// command lock exclusively: optimistically, then with savepoints if a
/// batch item was refused.
fn run_alone(
    conn: &mut Conn,
    shared: &Shared,
    now: Timestamp,
    job: Option<(&Origin, &Command)>,
    turn: &mut Option<Turn>,
) -> Result<Outcome> {
    for savepoints in [false, true] {
        shared.transactions.fetch_add(1, Ordering::Relaxed);
        let (tx, drained) = OpenTx::begin(conn, shared.command_lock)?;
        if let Some(outcome) = run_exclusive(tx, shared, now, drained, job, turn, savepoints)? {
            return Ok(outcome);
        }
    }
    Err(Error::store("internal error: a command ran out of passes"))
}

/// Several commands in one transaction (group commit): `BEGIN`, the
/// command lock held exclusively and the outbox drain (once, at the first
/// command's `now`, its events published with the first command's), each
/// command's logic and events at its own `now`, the commit notification
/// and one `COMMIT`. Returns each command's outcome, in order.
///
/// The group first runs optimistically, without a savepoint per command.
/// If a command is refused, that transaction is rolled back and the group
/// runs again in a new one with a savepoint per command: the logic is a
/// function of the store's state, `now` and the command, so the commands
/// before it do the same again, the refused one is rolled back to its
/// savepoint (no effect, no events) and the rest still commit. Pops in a
/// group run under the exclusive lock like any command. The outer `Err` is
/// a database failure: nothing committed, every command gets it.
fn run_group(
    conn: &mut Conn,
    shared: &Shared,
    group: &[ExecuteRequest],
    turn: &mut Option<Turn>,
) -> Result<Vec<Outcome>> {
    let now = group.first().map_or(Timestamp(0), |request| request.now);
    for savepoints in [false, true] {
        shared.transactions.fetch_add(1, Ordering::Relaxed);
        let (mut tx, drained) = OpenTx::begin(conn, shared.command_lock)?;
        *turn = Some(shared.order.take());
        let mut drained_events = Vec::new();
        drain(&mut tx, shared, now, drained, &mut drained_events)?;
        let mut outcomes = Vec::with_capacity(group.len());
        let mut committed = false;
        if savepoints {
            for request in group {
                tx.run("SAVEPOINT clew_command")?;
                let outcome = apply_request(&mut tx.pg(), shared, request);
                outcomes.push(match outcome {
                    Ok((reply, events)) => {
                        tx.run("RELEASE SAVEPOINT clew_command")?;
                        Outcome {
                            result: Ok(reply),
                            events,
                        }
                    }
                    Err(e) => {
                        tx.run(
                            "ROLLBACK TO SAVEPOINT clew_command; RELEASE SAVEPOINT clew_command",
                        )?;
                        Outcome {
                            result: Err(e),
                            events: Vec::new(),
                        }
                    }
                });
            }
        } else {
            // One PgTx for the whole pass: its config cache stays right,
            // as nothing is rolled back within the pass (batch items take
            // no savepoints either: a refused one sends the group to the
            // second pass too).
            // The last command commits with its last writes and events.
            let mut pg = tx.pg().optimistic();
            // The jobs the commands begin by reading, in one query.
            let jids: Vec<&str> = group
                .iter()
                .filter_map(|request| clew_core::logic::prefetch_hint(&request.command))
                .collect();
            if jids.len() > 1 {
                pg.prefetch_jobs(&jids)?;
            }
            // Nothing reads the event log meanwhile: every command's
            // events go in one insert after the last command, numbered in
            // command order, with the notification and `COMMIT`.
            let mut staged = Vec::with_capacity(group.len());
            for request in group {
                let mut pending = Vec::new();
                let applied = apply_caught(
                    &mut pg,
                    shared.apply,
                    request.now,
                    &request.origin,
                    &request.command,
                    &mut pending,
                );
                match applied {
                    Ok(reply) if !pg.item_refused() => staged.push((reply, pending, request.now)),
                    _ => break,
                }
            }
            if staged.len() == group.len() {
                let channel = shared.channel.get().map(String::as_str);
                let mut ats = Vec::new();
                let mut texts = Vec::new();
                for (_, pending, now) in &staged {
                    for event in pending {
                        ats.push(now.0);
                        texts.push((event.channel.as_str(), event.message.as_str()));
                    }
                }
                let sent = if texts.is_empty() {
                    let last_seq = drained_events.last().map(|e| e.seq);
                    pg.commit(channel, last_seq).map(|()| Vec::new())
                } else {
                    pg.events_append_at_then(&ats, &texts, Some(channel))
                };
                // A failure (of a buffered write, say) sends the group to
                // the pass with savepoints, as a refusal does.
                if let Ok(seqs) = sent {
                    committed = true;
                    let mut seqs = seqs.into_iter();
                    for (reply, pending, now) in staged {
                        let events = pending
                            .into_iter()
                            .zip(seqs.by_ref())
                            .map(|(PendingEvent { channel, message }, seq)| Event {
                                seq,
                                at: now,
                                channel,
                                message,
                            })
                            .collect();
                        outcomes.push(Outcome {
                            result: Ok(reply),
                            events,
                        });
                    }
                }
            }
        }
        if outcomes.len() < group.len() {
            // Refused in the optimistic pass: run again with savepoints.
            tx.rollback()?;
            *turn = None;
            continue;
        }
        if let Some(first) = outcomes.first_mut() {
            drained_events.append(&mut first.events);
            first.events = drained_events;
        }
        if committed {
            tx.committed();
            return Ok(outcomes);
        }
        let last_seq = outcomes
            .iter()
            .rev()
            .find_map(|outcome| outcome.events.last().map(|e| e.seq));
        tx.commit(shared.channel.get().map(String::as_str), last_seq)?;
        return Ok(outcomes);
    }
    Err(Error::store(
        "internal error: a group of commands ran out of passes",
    ))
}

/// Drains the outbox inside `tx` ([`crate::outbox::drain`]): `first` (the
/// page taken as the transaction began) and every further page.
fn drain(
    tx: &mut OpenTx<'_>,
    shared: &Shared,
    now: Timestamp,
    first: Vec<crate::outbox::OutboxRow>,
    events: &mut Vec<Event>,
) -> Result<usize> {
    let mut page = first;
    let mut taken = 0;
    loop {
        let full = page.len() >= crate::outbox::DRAIN_PAGE;
        taken += crate::outbox::drain(tx.conn, shared.apply, now, page, events)?;
        if !full {
            return Ok(taken);
        }
        page = tx.drain_page()?;
    }
}

/// Runs one request's logic (exclusive lock held) and appends its events.
fn apply_request(
    pg: &mut PgTx<'_>,
    shared: &Shared,
    request: &ExecuteRequest,
) -> Result<(Reply, Vec<Event>)> {
    apply_logic(
        pg,
        shared.apply,
        request.now,
        &request.origin,
        &request.command,
        None,
        &mut || (),
    )
}

/// The rest of a command's transaction once it holds the command lock
/// exclusively and took the outbox's first page (see [`run_command`]).
///
/// Without `savepoints` the items of a non-atomic batch run without
/// savepoints ([`PgTx::optimistic`]); if one is refused, the transaction
/// is rolled back and `None` returned: run it again with `savepoints`.
fn run_exclusive(
    mut tx: OpenTx<'_>,
    shared: &Shared,
    now: Timestamp,
    drained: Vec<crate::outbox::OutboxRow>,
    job: Option<(&Origin, &Command)>,
    turn: &mut Option<Turn>,
    savepoints: bool,
) -> Result<Option<Outcome>> {
    *turn = Some(shared.order.take());
    let mut events = Vec::new();
    let drained = drain(&mut tx, shared, now, drained, &mut events)?;
    let mut result = Ok(Reply::Nil);
    if let Some((origin, command)) = job {
        if drained > 0 {
            tx.run("SAVEPOINT clew_command")?;
        }
        let (outcome, item_refused) = {
            let mut pg = tx.pg();
            if !savepoints {
                pg = pg.optimistic();
            }
            // Committed with the command's last writes and events, unless
            // puts were drained: a failed write would make that `COMMIT`
            // (sent after it in the pipeline) roll the drained puts back
            // too, where only the command must go back to its savepoint.
            let commit = (drained == 0).then(|| Commit {
                channel: shared.channel.get().map(String::as_str),
                last_seq: events.last().map(|e| e.seq),
            });
            let outcome = apply_logic_then(
                &mut pg,
                shared.apply,
                now,
                origin,
                command,
                None,
                &mut || (),
                commit,
            );
            (outcome, pg.item_refused())
        };
        if item_refused {
            tx.rollback()?;
            *turn = None;
            return Ok(None);
        }
        match outcome {
            Ok((reply, command_events, true)) => {
                tx.committed();
                events.extend(command_events);
                return Ok(Some(Outcome {
                    result: Ok(reply),
                    events,
                }));
            }
            Ok((reply, command_events, false)) => {
                events.extend(command_events);
                result = Ok(reply);
            }
            Err(e) if drained == 0 => {
                tx.rollback()?;
                return Ok(Some(Outcome {
                    result: Err(e),
                    events: Vec::new(),
                }));
            }
            Err(e) => {
                tx.run("ROLLBACK TO SAVEPOINT clew_command")?;
                result = Err(e);
            }
        }
    }
    tx.commit(
        shared.channel.get().map(String::as_str),
        events.last().map(|e| e.seq),
    )?;
    Ok(Some(Outcome { result, events }))
}

/// What begins a concurrent pop's transaction, after `BEGIN`, in one
/// statement: the command lock (`$1`, the schema's key) in **shared**
/// mode, so pops run next to each other but never next to any other
/// command, unless committed puts wait in the outbox: those are drained by
/// a command holding the lock exclusively, so the pop takes it exclusively
/// and drains first (as every command did before).
pub(crate) const POP_LOCK_SQL: &str = "SELECT CASE WHEN EXISTS (SELECT 1 FROM put_outbox)
                THEN 'x' || pg_advisory_xact_lock($1)::text
                ELSE 's' || pg_advisory_xact_lock_shared($1)::text
           END AS command_lock";

/// Whether `command` may run next to pops as a complete
/// ([`PostgresOptions::concurrent_completes`]): a `complete` that finishes
/// its job (no next queue: that would add dependencies and register a
/// queue), or a non-atomic batch of only such (`complete_many`).
fn completes_beside_pops(command: &Command) -> bool {
    let finishes = |command: &Command| matches!(command, Command::Complete(p) if p.next.is_none());
    match command {
        Command::Batch {
            commands,
            atomic: false,
        } => !commands.is_empty() && commands.iter().all(finishes),
        _ => finishes(command),
    }
}

/// Whether `command` may run next to pops as a put
/// ([`PostgresOptions::concurrent_puts`]): a `put` that names no
/// dependencies (a complete finishing one of them next to it could miss the
/// new edge), unique key, batch or throttles (their rows are counted and
/// changed by commands holding the lock exclusively) and is not a requeue,
/// or a batch (atomic or not) of only such. Whether its job is new is only
/// known once it runs: [`Claim::Put`].
fn puts_beside_pops(command: &Command) -> bool {
    let plain = |command: &Command| match command {
        Command::Put(p) => {
            p.depends.as_ref().is_none_or(Vec::is_empty)
                && p.unique.is_none()
                && p.batch.is_none()
                && p.throttles.as_ref().is_none_or(Vec::is_empty)
                && !p.must_exist
        }
        _ => false,
    };
    match command {
        Command::Batch { commands, .. } => !commands.is_empty() && commands.iter().all(plain),
        _ => plain(command),
    }
}

/// How many times a command running next to pops that lost a deadlock
/// (with a pop) is run again before its error is returned.
const POP_ATTEMPTS: u32 = 8;

/// A command that runs next to pops ([`Shared::claim`]): a pop while pops
/// run concurrently ([`PostgresOptions::concurrent_pops`]), or a complete
/// ([`PostgresOptions::concurrent_completes`]).
///
/// It holds the command lock in shared mode (see [`POP_LOCK_SQL`]) and
/// claims what it changes as it selects it ([`PgTx::claiming`]). Such
/// commands commit concurrently, so an event number may commit after a
/// higher one; a reader paging the log by number must still never see an
/// event appear below one it has read. So, in the round trip that numbers
/// its events, the command first takes a second advisory lock
/// ([`crate::SchemaName::event_lock_key`]) in shared mode, held to its
/// commit, and a reader of the log ([`events_after`]) takes it
/// exclusively around its read: it reads once every command that has
/// numbered events has committed (or rolled back), and no command numbers
/// any while it reads. Commands that write events then commit next to each
/// other, and their commits share WAL flushes. The publication turn is
/// taken with the numbering, under [`Shared::numbering`] (held for that
/// round trip only). One that writes no events takes neither. One that
/// lost a deadlock is rolled back and run again. A batch of completes runs
/// without savepoints first ([`PgTx::optimistic`]), and again with them if
/// an item was refused.
fn run_claiming(
    conn: &mut Conn,
    shared: &Shared,
    now: Timestamp,
    origin: &Origin,
    command: &Command,
    claim: Claim,
    turn: &mut Option<Turn>,
) -> Result<Outcome> {
    let mut attempt = 1;
    // The beginning goes with the command's first round trip, unless that
    // found puts waiting in the outbox (then it begins on its own, and
    // drains them first).
    let mut deferred = true;
    let mut savepoints = false;
    loop {
        shared.transactions.fetch_add(1, Ordering::Relaxed);
        let (mut tx, exclusive) = if deferred {
            (OpenTx::deferred_pop(conn), false)
        } else {
            OpenTx::begin_pop(conn, shared.command_lock)?
        };
        if exclusive {
            let drained = tx.drain_page()?;
            return run_exclusive(
                tx,
                shared,
                now,
                drained,
                Some((origin, command)),
                turn,
                true,
            )?
            .ok_or_else(|| Error::store("internal error: a command ran out of passes"));
        }
        let (outcome, retryable, drain_first, item_refused, alone) = {
            let mut pg = tx.pg().claiming(shared.target.schema.as_str(), claim);
            if deferred {
                pg = pg.begins_pop(shared.command_lock);
            }
            if !savepoints {
                pg = pg.optimistic();
            }
            let mut locked = || *turn = Some(shared.order.take());
            let numbering = Some((shared.event_lock, &shared.numbering));
            let outcome = apply_logic(
                &mut pg,
                shared.apply,
                now,
                origin,
                command,
                numbering,
                &mut locked,
            );
            (
                outcome,
                pg.retryable(),
                pg.lock_came_exclusive(),
                pg.item_refused(),
                pg.must_run_alone(),
            )
        };
        if alone {
            // A put found its job (or another put inserted it first):
            // whatever it did is dropped, and it runs again, alone.
            tx.rollback()?;
            *turn = None;
            return run_alone(conn, shared, now, Some((origin, command)), turn);
        }
        if drain_first {
            tx.rollback()?;
            *turn = None;
            deferred = false;
            continue;
        }
        if item_refused {
            // A batch item was refused without savepoints: again, with.
            tx.rollback()?;
            *turn = None;
            savepoints = true;
            continue;
        }
        match outcome {
            Ok((reply, events)) => {
                tx.commit(
                    shared.channel.get().map(String::as_str),
                    events.last().map(|e| e.seq),
                )?;
                return Ok(Outcome {
                    result: Ok(reply),
                    events,
                });
            }
            Err(e) => {
                tx.rollback()?;
                *turn = None;
                if retryable && attempt < POP_ATTEMPTS {
                    tracing::debug!(error = %e, attempt, "a command next to pops lost a deadlock; running it again");
                    attempt += 1;
                    continue;
                }
                return Ok(Outcome {
                    result: Err(e),
                    events: Vec::new(),
                });
            }
        }
    }
}

/// Runs the logic for `command`, sends its buffered writes and appends its
/// events to the log (together: one round trip, two with `numbering`); any
/// error means roll back (the transaction or a savepoint). With `numbering` (the event
/// lock's key and [`Shared::numbering`]), the mutex is held from before
/// the round trip that numbers the events to `locked`'s return, and that
/// round trip first takes the event lock shared (see [`run_claiming`]).
pub(crate) fn apply_logic(
    tx: &mut PgTx<'_>,
    apply: ApplyFn,
    now: Timestamp,
    origin: &Origin,
    command: &Command,
    numbering: Option<(i64, &Mutex<()>)>,
    locked: &mut dyn FnMut(),
) -> Result<(Reply, Vec<Event>)> {
    apply_logic_then(tx, apply, now, origin, command, numbering, locked, None)
        .map(|(reply, events, _)| (reply, events))
}

/// How to commit in the round trip of a command's last writes and events
/// ([`apply_logic_then`]).
pub(crate) struct Commit<'a> {
    /// The schema's notification channel, if known.
    pub(crate) channel: Option<&'a str>,
    /// The last event appended earlier in the transaction, if any.
    pub(crate) last_seq: Option<i64>,
}

/// Runs the logic of `command` (a panic is a store error), collecting its
/// events in `pending`.
fn apply_caught(
    tx: &mut PgTx<'_>,
    apply: ApplyFn,
    now: Timestamp,
    origin: &Origin,
    command: &Command,
    pending: &mut Vec<PendingEvent>,
) -> Result<Reply> {
    catch_unwind(AssertUnwindSafe(|| {
        apply(tx, now, origin, command, pending)
    }))
    .unwrap_or_else(|_| {
        tracing::error!(command = command.name(), "command logic panicked");
        Err(Error::store(format!(
            "internal error: the {} command panicked",
            command.name()
        )))
    })
}

/// [`apply_logic`]; with `commit`, the transaction is also committed (with
/// its notification) in the same round trip as the command's last writes
/// and events when the logic succeeds; returns whether it was.
#[allow(clippy::too_many_arguments)]
pub(crate) fn apply_logic_then(
    tx: &mut PgTx<'_>,
    apply: ApplyFn,
    now: Timestamp,
    origin: &Origin,
    command: &Command,
    numbering: Option<(i64, &Mutex<()>)>,
    locked: &mut dyn FnMut(),
    commit: Option<Commit<'_>>,
) -> Result<(Reply, Vec<Event>, bool)> {
    let mut pending = Vec::new();
    let reply = apply_caught(tx, apply, now, origin, command, &mut pending)?;
    if tx.item_refused() {
        // The optimistic pass is lost (the owner runs it again): send
        // nothing more, commit nothing.
        return Err(Error::store(
            "a batch item was refused: the batch runs again with savepoints",
        ));
    }
    if pending.is_empty() {
        return match commit {
            Some(commit) => {
                tx.commit(commit.channel, commit.last_seq)?;
                Ok((reply, Vec::new(), true))
            }
            None => {
                tx.flush()?;
                Ok((reply, Vec::new(), false))
            }
        };
    }
    let texts: Vec<(&str, &str)> = pending
        .iter()
        .map(|p| (p.channel.as_str(), p.message.as_str()))
        .collect();
    let committed = commit.is_some();
    let guard = match numbering {
        Some((key, mutex)) => {
            // The buffered writes and the event lock (shared) first, in a
            // round trip of their own; then the numbering alone under the
            // mutex. Nothing sent under it may wait for anything: a write
            // waiting for a row that another thread of this process holds,
            // while that thread waits for the mutex, would be a deadlock
            // PostgreSQL cannot see. The insert of numbered events waits
            // for no lock.
            tx.advisory_lock_shared(key)?;
            Some(mutex.lock().unwrap_or_else(PoisonError::into_inner))
        }
        None => None,
    };
    let seqs = tx.events_append_then(now, &texts, commit.map(|commit| commit.channel))?;
    if guard.is_some() {
        locked();
    }
    drop(guard);
    Ok((
        reply,
        pending
            .into_iter()
            .zip(seqs)
            .map(|(PendingEvent { channel, message }, seq)| Event {
                seq,
                at: now,
                channel,
                message,
            })
            .collect(),
        committed,
    ))
}

/// Reads the event log: in one round trip, a transaction that takes the
/// event lock exclusively (`event_lock`), then reads. Commands running next
/// to each other number their events holding that lock shared, to their
/// commits ([`run_claiming`]); a command holding the command lock
/// exclusively writes alone. So the read comes once every event numbered
/// so far is committed or rolled back, and none is numbered while it
/// reads: no lower number can appear after it.
fn events_after(conn: &mut Conn, event_lock: i64, after: i64, limit: i64) -> Result<Vec<Event>> {
    let limit = limit.max(0);
    let answers = conn.send(vec![
        Op::Text("BEGIN ISOLATION LEVEL READ COMMITTED"),
        Op::Exec(LOCK_SQL, vec![&event_lock]),
        Op::Query(
            "SELECT seq, at, channel, message FROM events WHERE seq > $1
             ORDER BY seq LIMIT $2",
            vec![&after, &limit],
        ),
        Op::Text("COMMIT"),
    ]);
    let answers = match answers {
        Ok(answers) => answers,
        Err(e) => {
            // Whatever failed, the transaction ends here.
            let _ = conn.send(vec![Op::Text("ROLLBACK")]);
            return Err(e);
        }
    };
    answers
        .into_iter()
        .nth(2)
        .into_iter()
        .flat_map(crate::conn::Answer::rows)
        .map(|r| {
            Ok(Event {
                seq: r.try_get(0).pg()?,
                at: Timestamp(r.try_get(1).pg()?),
                channel: r.try_get(2).pg()?,
                message: r.try_get(3).pg()?,
            })
        })
        .collect()
}

/// How many jobs, up to `limit`, a pop of `queue` at `at` would hand out,
/// read from committed state in one statement, without the command lock (a
/// waiter's look: a peek would take the lock exclusively, queueing behind
/// every command and every command behind it, to write nothing in the
/// common case). It counts what a pop takes: locks
/// expired by `at`, the work list, scheduled jobs due and recurring
/// templates due, none when the queue is paused. `None` (the waiter peeks)
/// while the put outbox holds rows (a command drains them first) or a
/// rate-limited throttle holds jobs back (a pop or peek wakes them when
/// its window allows; no commit announces that).
fn ready_hint(conn: &mut Conn, queue: &str, at: Timestamp, limit: usize) -> Result<Option<usize>> {
    let limit = i64::try_from(limit).unwrap_or(i64::MAX);
    let answers = conn
        .send(vec![Op::Query(READY_HINT, vec![&queue, &at.0, &limit])])
        .map_err(|e| Error::store(format!("counting ready jobs: {}", e.message())))?;
    let row = answers
        .into_iter()
        .flat_map(crate::conn::Answer::rows)
        .next();
    let count: Option<i64> = match row {
        Some(r) => r.try_get(0).pg()?,
        None => None,
    };
    Ok(count.map(|n| usize::try_from(n).unwrap_or(0)))
}

/// See [`ready_hint`]: `$1` the queue, `$2` the time, `$3` the limit. The
/// jobs count as `pop` and `peek` list them: `loc` 2 (locked, `sort_time`
/// the expiry) and 3 (scheduled, `sort_time` when due) by `jobs_time`, 1
/// (the work list) by `jobs_work`.
const READY_HINT: &str = "
    SELECT CASE
        WHEN EXISTS (SELECT 1 FROM put_outbox)
          OR EXISTS (SELECT 1 FROM throttles t WHERE t.rate_limit > 0
                AND EXISTS (SELECT 1 FROM throttle_jobs j
                            WHERE j.throttle = t.name AND NOT j.holding))
            THEN NULL
        WHEN EXISTS (SELECT 1 FROM queues WHERE name = $1 AND paused) THEN 0
        ELSE (SELECT count(*) FROM (SELECT 1 FROM jobs
                 WHERE queue = $1 AND loc = 1 LIMIT $3) w)
           + (SELECT count(*) FROM (SELECT 1 FROM jobs
                 WHERE queue = $1 AND loc = 2 AND sort_time <= $2 LIMIT $3) l)
           + (SELECT count(*) FROM (SELECT 1 FROM jobs
                 WHERE queue = $1 AND loc = 3 AND sort_time <= $2 LIMIT $3) s)
           + (SELECT count(*) FROM (SELECT 1 FROM recurring
                 WHERE queue = $1 AND next_at <= $2 LIMIT $3) r)
    END";

/// Deletes every row of every clew table (the sequences keep counting).
pub(crate) const DELETE_ALL: &str = "
    DELETE FROM jobs; DELETE FROM history; DELETE FROM deps; DELETE FROM tags;
    DELETE FROM tag_counts; DELETE FROM tracked; DELETE FROM workers; DELETE FROM queues;
    DELETE FROM recurring; DELETE FROM stats_timing; DELETE FROM stats_hist;
    DELETE FROM stats_counters; DELETE FROM config; DELETE FROM events;
    DELETE FROM put_outbox; DELETE FROM put_rejected; DELETE FROM batches;
    DELETE FROM throttles; DELETE FROM throttle_jobs; DELETE FROM throttle_starts;";

/// Deletes every row of every table (not the sequences), under the command
/// lock, in one transaction (one round trip: a failed statement aborts the
/// transaction, and its `COMMIT` then rolls it back).
fn flush(conn: &mut Conn, schema: &SchemaName) -> Result<()> {
    let key = schema.command_lock_key();
    conn.send(vec![
        Op::Text(BEGIN_SQL),
        Op::Exec(LOCK_SQL, vec![&key]),
        Op::Text(DELETE_ALL),
        Op::Text("COMMIT"),
    ])
    .map(drop)
    .map_err(|e| Error::store(format!("flushing the PostgreSQL store: {}", e.message())))
}

/// Deletes the events below `before` (their numbers are never reused).
fn events_prune(conn: &mut Conn, before: i64) -> Result<u64> {
    conn.send(vec![Op::Exec(
        "DELETE FROM events WHERE seq < $1",
        vec![&before],
    )])
    .map(|answers| answers.first().map_or(0, crate::conn::Answer::count))
    .map_err(|e| Error::store(format!("pruning the event log: {}", e.message())))
}
