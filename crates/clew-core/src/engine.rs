//! [`Engine`]: the only door to a [`Store`].
//!
//! It stamps every command with `now` from its [`Clock`], runs it on the store
//! (which validates and applies it atomically) and has the store hand the
//! command's events to the engine's [`EventSink`] after the commit. The HTTP
//! server, the CLI and workers all go through an engine.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use serde_json::Value;
use tokio::sync::OnceCell;

use crate::command::{Command, CompleteParams, PutParams, Reply};
use crate::error::{Error, Result};
use crate::event::{EventSink, NullSink};
use crate::job::Job;
use crate::lifecycle::Origin;
use crate::store::Store;
use crate::time::{Clock, SystemClock, Timestamp};

/// The job engine: a store, a clock and an event sink.
#[derive(Clone)]
pub struct Engine {
    store: Arc<dyn Store>,
    clock: Arc<dyn Clock>,
    sink: Arc<dyn EventSink>,
    origin: Origin,
    preprocessors: Vec<Preprocessor>,
    peeks: Arc<SharedPeeks>,
}

/// The looks at a queue that waiters woken by the same commit share (see
/// [`Engine::wait_for_jobs`]): per queue, the commit number last looked
/// after, that look, and how many waiters watch the queue now.
#[derive(Default)]
struct SharedPeeks {
    by_queue: Mutex<HashMap<String, QueueLooks>>,
}

/// [`SharedPeeks`] of one queue.
#[derive(Default)]
struct QueueLooks {
    seq: i64,
    look: Option<SharedLook>,
    waiting: usize,
}

/// One look, computed by the first waiter that asks: how many jobs a pop
/// would hand out (counting up to the number of waiters), and how many
/// waiters it has released so far.
#[derive(Default)]
struct Look {
    ready: OnceCell<usize>,
    taken: std::sync::atomic::AtomicUsize,
}

type SharedLook = Arc<Look>;

/// The most jobs a shared look counts (the most waiters one commit wakes).
const SHARED_LOOK_MAX: usize = 100;

impl SharedPeeks {
    fn queues(&self) -> std::sync::MutexGuard<'_, HashMap<String, QueueLooks>> {
        self.by_queue.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// The shared look at `queue` after commit `seq`, and the number of
    /// jobs it should count; None when a later commit's look has started
    /// already (the caller looks on its own).
    fn cell(&self, queue: &str, seq: i64) -> Option<(SharedLook, usize)> {
        let mut map = self.queues();
        let q = map.entry(queue.to_owned()).or_default();
        let want = q.waiting.clamp(1, SHARED_LOOK_MAX);
        match &q.look {
            Some(look) if q.seq == seq => Some((look.clone(), want)),
            Some(_) if q.seq > seq => None,
            _ => {
                let look = SharedLook::default();
                q.seq = seq;
                q.look = Some(look.clone());
                Some((look, want))
            }
        }
    }

    /// Counts a waiter in on `queues` until the guard drops.
    fn enter<'a>(&'a self, queues: &'a [String]) -> Waiting<'a> {
        let mut map = self.queues();
        for queue in queues {
            map.entry(queue.clone()).or_default().waiting += 1;
        }
        Waiting {
            peeks: self,
            queues,
        }
    }
}

/// A waiter counted in [`QueueLooks::waiting`] (see [`SharedPeeks::enter`]).
struct Waiting<'a> {
    peeks: &'a SharedPeeks,
    queues: &'a [String],
}

impl Drop for Waiting<'_> {
    fn drop(&mut self) {
        let mut map = self.peeks.queues();
        for queue in self.queues {
            if let Some(q) = map.get_mut(queue) {
                q.waiting = q.waiting.saturating_sub(1);
                if q.waiting == 0 {
                    map.remove(queue);
                }
            }
        }
    }
}

/// A hook run on every put before it reaches the store (resque-clues' item
/// preprocessor): it may add metadata (keys starting with `_` are dropped
/// later) or adjust other put options.
pub type Preprocessor = Arc<dyn Fn(&mut PutParams) + Send + Sync>;

impl std::fmt::Debug for Engine {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Engine")
            .field("store", &self.store)
            .field("clock", &self.clock)
            .field("sink", &self.sink)
            .field("origin", &self.origin)
            .field("preprocessors", &self.preprocessors.len())
            .finish()
    }
}

impl Engine {
    /// An engine on `store` with the system clock and no event sink.
    pub fn new(store: Arc<dyn Store>) -> Engine {
        Engine {
            store,
            clock: Arc::new(SystemClock),
            sink: Arc::new(NullSink),
            origin: Origin::this_process(),
            preprocessors: Vec::new(),
            peeks: Arc::default(),
        }
    }

    /// Replaces the clock (a [`crate::ManualClock`] in tests).
    pub fn with_clock(mut self, clock: Arc<dyn Clock>) -> Engine {
        self.clock = clock;
        self
    }

    /// Replaces the event sink.
    pub fn with_sink(mut self, sink: Arc<dyn EventSink>) -> Engine {
        self.sink = sink;
        self
    }

    /// Replaces the store by `wrap(store)`: a decorator around it (the
    /// server's metrics time every store call this way).
    pub fn map_store(mut self, wrap: impl FnOnce(Arc<dyn Store>) -> Arc<dyn Store>) -> Engine {
        self.store = wrap(self.store);
        self
    }

    /// Replaces the origin (host and process) that lifecycle events name.
    /// Defaults to this process.
    pub fn with_origin(mut self, origin: Origin) -> Engine {
        self.origin = origin;
        self
    }

    /// Adds a preprocessor, run (in the order added) on every put and
    /// requeue before it reaches the store.
    pub fn with_preprocessor(mut self, hook: Preprocessor) -> Engine {
        self.preprocessors.push(hook);
        self
    }

    /// The origin lifecycle events of this engine's calls name.
    pub fn origin(&self) -> &Origin {
        &self.origin
    }

    /// The store.
    pub fn store(&self) -> &Arc<dyn Store> {
        &self.store
    }

    /// The clock's current time.
    pub fn now(&self) -> Timestamp {
        self.clock.now()
    }

    /// Runs a command now.
    pub async fn execute(&self, command: Command) -> Result<Reply> {
        self.execute_at(self.clock.now(), command).await
    }

    /// Waits until one of `w.queues` has a job a pop would hand out
    /// (returns its name) or `w.timeout` passes (returns None). It looks at
    /// the queues (the store's lock-free count, [`Store::ready_hint`], or
    /// else a peek), then again after every commit `w.commits` announces
    /// (one look shared by the waiters that commit woke, which releases as
    /// many of them as it found jobs; the rest keep waiting) and at least
    /// every [`WAIT_RECHECK`] (for delays that end and locks that expire,
    /// which no commit announces); `w.stop` turning true ends it. It hands
    /// out nothing: another worker may pop the job first.
    pub async fn wait_for_jobs(&self, w: WaitFor<'_>) -> Result<Option<String>> {
        let started = tokio::time::Instant::now();
        let deadline = started + w.timeout;
        let (mut commits, mut stop) = (w.commits, w.stop);
        let _counted = self.peeks.enter(w.queues);
        // Woken by a commit: every waiter of this engine woken by the same
        // commit shares one look per queue (many idle workers or `/v1/wait`
        // callers would otherwise each run a peek through the store after
        // every commit), and only as many of them as it found jobs are
        // released: the others would pop nothing, each in a transaction of
        // its own before or after the one that gets the job. The first
        // look and the timed re-looks are the waiter's own (time, not a
        // commit, may have made a job ready; a released waiter that pops
        // nothing after all is covered by them).
        let mut after_commit = None;
        loop {
            if let Some(c) = commits.as_mut() {
                let seq = *c.borrow_and_update();
                after_commit = after_commit.map(|_| seq);
            }
            let at = w.start.add_secs(started.elapsed().as_secs_f64());
            for queue in w.queues {
                let shared = after_commit.and_then(|seq| self.peeks.cell(queue, seq));
                let ready = match shared {
                    Some((look, want)) => {
                        let jobs = *look
                            .ready
                            .get_or_try_init(|| self.ready(at, queue, want))
                            .await?;
                        look.taken
                            .fetch_add(1, std::sync::atomic::Ordering::Relaxed)
                            < jobs
                    }
                    None => self.ready(at, queue, 1).await? > 0,
                };
                if ready {
                    return Ok(Some(queue.clone()));
                }
            }
            let now = tokio::time::Instant::now();
            if now >= deadline || stop.as_ref().is_some_and(|s| *s.borrow()) {
                return Ok(None);
            }
            after_commit = None;
            tokio::select! {
                () = changed(&mut commits) => after_commit = Some(0),
                () = changed(&mut stop) => {}
                () = tokio::time::sleep_until(deadline.min(now + WAIT_RECHECK)) => {}
            }
        }
    }

    /// How many jobs, up to `count`, a pop of `queue` at `at` would hand
    /// out: the store's lock-free count ([`Store::ready_hint`]) where it
    /// has one, else a peek.
    async fn ready(&self, at: Timestamp, queue: &str, count: usize) -> Result<usize> {
        if let Some(n) = self.store.ready_hint(queue, at, count).await? {
            return Ok(n.min(count));
        }
        let peek = Command::Peek {
            queue: queue.to_owned(),
            count: count as i64,
        };
        Ok(match self.execute_at(at, peek).await? {
            Reply::Jobs(jobs) => jobs.len(),
            _ => 0,
        })
    }

    /// Runs a command at a caller-given time (test mode and qless clients).
    pub async fn execute_at(&self, now: Timestamp, command: Command) -> Result<Reply> {
        self.execute_as(now, self.origin.clone(), command).await
    }

    /// Runs a command at `now` on behalf of a caller at `origin` (a server
    /// passes its client's host and process).
    pub async fn execute_as(
        &self,
        now: Timestamp,
        origin: Origin,
        mut command: Command,
    ) -> Result<Reply> {
        match &mut command {
            Command::Put(p) => self.preprocess(p),
            Command::BatchCreate(b) => {
                if b.id.is_empty() {
                    b.id = new_jid();
                }
                if let Some(cb) = &mut b.spec.callback {
                    if cb.jid.is_empty() {
                        cb.jid = new_jid();
                    }
                }
                for p in &mut b.jobs {
                    if p.jid.is_empty() {
                        p.jid = new_jid();
                    }
                    self.preprocess(p);
                }
            }
            Command::Batch { commands, .. } => {
                for c in commands {
                    if let Command::Put(p) = c {
                        if p.jid.is_empty() {
                            p.jid = new_jid();
                        }
                        self.preprocess(p);
                    }
                }
            }
            _ => {}
        }
        let name = command.name();
        let result = self
            .store
            .execute_from(now, origin, command, self.sink.clone())
            .await;
        if let Err(e) = &result {
            tracing::debug!(command = name, error = %e, "command refused");
        }
        result
    }

    /// Runs the put preprocessors on a put's parameters.
    fn preprocess(&self, params: &mut PutParams) {
        for hook in &self.preprocessors {
            hook(params);
        }
    }

    /// Runs commands in one transaction (see [`Command::Batch`]); an empty
    /// jid of a put gets a new one. Returns each command's result.
    pub async fn batch(&self, commands: Vec<Command>, atomic: bool) -> Result<Vec<Result<Reply>>> {
        match self.execute(Command::Batch { commands, atomic }).await? {
            Reply::Batch(results) => Ok(results),
            other => Err(unexpected("batch", &other)),
        }
    }

    /// Puts jobs in one transaction, all or none; returns their jids in
    /// order (an empty jid gets a new one).
    pub async fn put_many(&self, jobs: Vec<PutParams>) -> Result<Vec<String>> {
        let commands = jobs.into_iter().map(Command::Put).collect();
        self.batch(commands, true)
            .await?
            .into_iter()
            .map(|r| match r? {
                Reply::Str(jid) => Ok(jid),
                other => Err(unexpected("put", &other)),
            })
            .collect()
    }

    /// Completes (or advances) jobs in one transaction, each on its own: a
    /// refused one (lock lost, say) leaves the others done. Returns each
    /// job's new state name or refusal, in order.
    pub async fn complete_many(&self, jobs: Vec<CompleteParams>) -> Result<Vec<Result<String>>> {
        let commands = jobs.into_iter().map(Command::Complete).collect();
        Ok(self
            .batch(commands, false)
            .await?
            .into_iter()
            .map(|r| match r? {
                Reply::Str(state) => Ok(state),
                other => Err(unexpected("complete", &other)),
            })
            .collect())
    }

    /// Runs one qless-core command in its string calling convention
    /// (`args` as qless-core takes them after `now`) and returns natural
    /// JSON. `now` (float seconds) overrides the clock when given.
    pub async fn qless(&self, command: &str, now: Option<f64>, args: &[String]) -> Result<Value> {
        self.qless_from(command, now, self.origin.clone(), args)
            .await
    }

    /// [`Engine::qless`] on behalf of a caller at `origin`.
    pub async fn qless_from(
        &self,
        command: &str,
        now: Option<f64>,
        origin: Origin,
        args: &[String],
    ) -> Result<Value> {
        let now = match now {
            Some(n) => Timestamp::from_secs_f64(n).ok_or_else(|| {
                Error::invalid(format!("now: expected a number of seconds, got {n}"))
            })?,
            None => self.clock.now(),
        };
        let cmd = crate::qless::parse(command, args)?;
        Ok(self.execute_as(now, origin, cmd).await?.to_json())
    }

    /// Puts a job; returns its jid. An empty `jid` gets a new one (a UUID
    /// in lower-case hex, as qless clients make). With `params.unique`,
    /// the jid returned may be another job's: the live holder of the key
    /// (see [`crate::unique`]).
    pub async fn put(&self, mut params: PutParams) -> Result<String> {
        if params.jid.is_empty() {
            params.jid = new_jid();
        }
        match self.execute(Command::Put(params)).await? {
            Reply::Str(jid) => Ok(jid),
            other => Err(unexpected("put", &other)),
        }
    }

    /// Pops up to `count` jobs from `queue` for `worker`.
    pub async fn pop(&self, queue: &str, worker: &str, count: i64) -> Result<Vec<Job>> {
        let cmd = Command::Pop {
            queue: queue.to_owned(),
            worker: worker.to_owned(),
            count,
        };
        match self.execute(cmd).await? {
            Reply::Jobs(jobs) => Ok(jobs),
            other => Err(unexpected("pop", &other)),
        }
    }

    /// Renews a lock; returns the new expiry.
    pub async fn heartbeat(
        &self,
        jid: &str,
        worker: &str,
        data: Option<String>,
    ) -> Result<Timestamp> {
        let cmd = Command::Heartbeat {
            jid: jid.to_owned(),
            worker: worker.to_owned(),
            data,
        };
        match self.execute(cmd).await? {
            Reply::Expiry(t) => Ok(t),
            other => Err(unexpected("heartbeat", &other)),
        }
    }

    /// Completes (or advances) a job; returns its new state name.
    pub async fn complete(&self, params: CompleteParams) -> Result<String> {
        match self.execute(Command::Complete(params)).await? {
            Reply::Str(s) => Ok(s),
            other => Err(unexpected("complete", &other)),
        }
    }

    /// Fails a running job.
    pub async fn fail(&self, jid: &str, worker: &str, group: &str, message: &str) -> Result<()> {
        let cmd = Command::Fail {
            jid: jid.to_owned(),
            worker: worker.to_owned(),
            group: group.to_owned(),
            message: message.to_owned(),
            data: None,
            metadata: None,
        };
        self.execute(cmd).await.map(|_| ())
    }

    /// One job.
    pub async fn get(&self, jid: &str) -> Result<Option<Job>> {
        match self
            .execute(Command::Get {
                jid: jid.to_owned(),
            })
            .await?
        {
            Reply::Job(j) => Ok(j.map(|b| *b)),
            other => Err(unexpected("get", &other)),
        }
    }

    /// Cancels jobs; returns the jids given.
    pub async fn cancel(&self, jids: &[&str]) -> Result<Vec<String>> {
        let cmd = Command::Cancel {
            jids: jids.iter().map(|s| (*s).to_owned()).collect(),
        };
        match self.execute(cmd).await? {
            Reply::Strings(v) => Ok(v),
            other => Err(unexpected("cancel", &other)),
        }
    }

    /// Closes the store.
    pub async fn close(&self) -> Result<()> {
        self.store.close().await
    }
}

/// A new job id: a UUID in lower-case hex without dashes, as qless's
/// clients make them, but of version 7: a millisecond timestamp first, then
/// 74 random bits. Ids made later sort later (within this process, UUID v7
/// as `uuid` makes them is strictly increasing), so the stores' indexes on
/// `jid` (the jobs' key, the history's index by job) grow at their right
/// edge instead of taking each new job on a random page: a random (v4) jid
/// dirtied a page of each of those B-trees per job, and SQLite lifecycle ran
/// at 0.66 of the rate with v7 jids (`clew bench`, 20,000 jobs, medians of 3,
/// two invocations: 11,539 and 10,900 against 17,903 and 16,235 jobs/s).
pub fn new_jid() -> String {
    uuid::Uuid::now_v7().simple().to_string()
}

fn unexpected(cmd: &str, reply: &Reply) -> Error {
    Error::store(format!("{cmd}: unexpected reply from store: {reply:?}"))
}

/// What [`Engine::wait_for_jobs`] waits for.
#[derive(Debug)]
pub struct WaitFor<'a> {
    /// The queues to watch.
    pub queues: &'a [String],
    /// The longest wait.
    pub timeout: std::time::Duration,
    /// The time of the first look (later looks add the time waited).
    pub start: Timestamp,
    /// Announces commits (the server's wake-up channel, or
    /// [`Store::subscribe_commits`]); None: look every [`WAIT_RECHECK`].
    pub commits: Option<tokio::sync::watch::Receiver<i64>>,
    /// Turns true when the wait should end early (server shutdown).
    pub stop: Option<tokio::sync::watch::Receiver<bool>>,
}

/// How often [`Engine::wait_for_jobs`] looks again without a commit notice.
pub const WAIT_RECHECK: std::time::Duration = std::time::Duration::from_millis(250);

/// Resolves when `rx` changes; never when it is None or its sender is gone
/// (then it is set to None, so a closed channel cannot make a loop spin).
async fn changed<T>(rx: &mut Option<tokio::sync::watch::Receiver<T>>) {
    match rx.as_mut() {
        Some(r) => {
            if r.changed().await.is_err() {
                *rx = None;
                std::future::pending::<()>().await;
            }
        }
        None => std::future::pending::<()>().await,
    }
}
