//! The worker: pops jobs with a [`Reserver`], runs up to `concurrency` of
//! them at once through the middleware chain and the [`Handler`],
//! heartbeats each one, enforces time limits, and reports their outcomes.
//!
//! Every job runs in its own task with its own cancellation token. Its
//! handler runs in a task of its own too, so that a handler that hangs (or
//! blocks its thread) never keeps the job's slot: when the job must stop —
//! its heartbeat was refused, it timed out, or the worker is stopping now —
//! the token is cancelled, the handler task is aborted (its future dropped)
//! and:
//! * lock lost (heartbeat refused: the job was timed out, cancelled, moved or
//!   handed to another worker): the result is discarded;
//! * timed out: the job is retried after its backoff delay (failed in
//!   `<klass>:timeout` when no retries are left);
//! * stopping now: the job is released back to its queue (no retry spent).
//!
//! Outcomes (complete, advance, retry, fail, release) are reported through
//! the worker's completer task (see `completer.rs`), which sends the ones
//! that pile up while a request is in flight together, in one request and
//! one store transaction, each command on its own.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use clew_client::Client;
use clew_core::command::CompleteParams;
use clew_core::{Command, Error, ErrorKind};
use tokio::sync::{watch, OwnedSemaphorePermit, Semaphore};
use tokio::task::JoinSet;
use tokio_util::sync::CancellationToken;

use crate::backoff::Backoff;
use crate::completer::Completer;
use crate::handler::{Handler, Job, JobContext, Outcome};
use crate::middleware::{Middleware, Next};
use crate::reserver::{QueueOrder, Reserver};

/// The shortest interval between two heartbeats of a job.
const MIN_BEAT: Duration = Duration::from_millis(100);

/// How long a stopping worker waits for releases to be acknowledged after
/// the grace period ran out, and for the completer's last answers.
const RELEASE_WAIT: Duration = Duration::from_secs(10);

/// Attempts at reporting an outcome when the store or server fails.
const REPORT_ATTEMPTS: u32 = 3;

/// qless's default lock length (`heartbeat` unset).
const DEFAULT_LOCK: Duration = Duration::from_secs(60);

/// The lock length assumed when the server's configuration cannot be read:
/// short, so that jobs are heartbeaten often enough for most settings.
const UNKNOWN_LOCK: Duration = Duration::from_secs(10);

/// How long a lock length read from the server is used before it is read
/// again (so that a changed `heartbeat` setting is picked up).
const LOCK_TTL: Duration = Duration::from_secs(60);

/// How a [`Worker`] runs.
#[derive(Clone, Debug)]
pub struct WorkerConfig {
    /// The worker's name, as qless shows it. Defaults to `host-pid`
    /// ([`default_worker_name`]).
    pub name: String,
    /// The queues to pop from.
    pub queues: Vec<String>,
    /// The order queues are tried in. Defaults to [`Reserver::Ordered`].
    pub reserver: Reserver,
    /// Jobs run at once. Defaults to 1 (0 counts as 1).
    pub concurrency: usize,
    /// How long an idle worker waits before popping again. Defaults to 1 s.
    /// On a server the wait ends as soon as a job is ready (`POST /v1/wait`
    /// answers on the commit that makes one available), so this bounds how
    /// often an idle worker asks, not how late it starts a job. On a local
    /// store the worker peeks after every commit the store announces
    /// (PostgreSQL's LISTEN/NOTIFY) and at least every 250 ms. An idle
    /// worker keeps popping, so it stays in the `workers` list.
    pub poll_interval: Duration,
    /// Time limit of every job. Defaults to none.
    pub timeout: Option<Duration>,
    /// Time limits by queue (over [`WorkerConfig::timeout`]; a handler's
    /// [`Handler::timeout`] overrides both).
    pub queue_timeouts: HashMap<String, Duration>,
    /// Retry delays of every job. Defaults to [`Backoff::default`].
    pub backoff: Backoff,
    /// Retry delays by queue (over [`WorkerConfig::backoff`]; a handler's
    /// [`Handler::backoff`] overrides both).
    pub queue_backoffs: HashMap<String, Backoff>,
    /// How long [`WorkerControl::stop_after_running`] waits for running jobs
    /// (and [`WorkerControl::stop_now`] for releases). Defaults to 30 s.
    pub shutdown_grace: Duration,
    /// The lock length to assume, instead of asking the server
    /// (`config.get <queue>-heartbeat`, then `heartbeat`, read at start and
    /// again every minute). Jobs are heartbeaten every half of it (at most
    /// every 100 ms).
    pub lock_length: Option<Duration>,
}

impl Default for WorkerConfig {
    fn default() -> WorkerConfig {
        WorkerConfig {
            name: default_worker_name(),
            queues: Vec::new(),
            reserver: Reserver::Ordered,
            concurrency: 1,
            poll_interval: Duration::from_secs(1),
            timeout: None,
            queue_timeouts: HashMap::new(),
            backoff: Backoff::default(),
            queue_backoffs: HashMap::new(),
            shutdown_grace: Duration::from_secs(30),
            lock_length: None,
        }
    }
}

impl WorkerConfig {
    /// The defaults, popping from `queues`.
    pub fn new<Q: Into<String>>(queues: impl IntoIterator<Item = Q>) -> WorkerConfig {
        WorkerConfig {
            queues: queues.into_iter().map(Into::into).collect(),
            ..WorkerConfig::default()
        }
    }
}

/// `host-pid`: the name a worker gives itself by default.
pub fn default_worker_name() -> String {
    format!("{}-{}", hostname(), std::process::id())
}

/// This machine's host name (`localhost` when it cannot be found).
fn hostname() -> String {
    std::fs::read_to_string("/proc/sys/kernel/hostname")
        .ok()
        .or_else(|| std::env::var("HOSTNAME").ok())
        .or_else(|| std::env::var("COMPUTERNAME").ok())
        .map(|h| h.trim().to_owned())
        .filter(|h| !h.is_empty())
        .unwrap_or_else(|| "localhost".to_owned())
}

/// What a worker is doing, for process titles and status pages.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum WorkerState {
    /// Not yet running, or reading the server's configuration.
    Starting,
    /// Waiting for jobs (free slots, empty queues).
    Idle,
    /// Running jobs.
    Busy,
    /// Paused: taking no new jobs.
    Paused,
    /// Shutting down.
    Stopping,
    /// [`Worker::run`] returned.
    Stopped,
}

impl WorkerState {
    /// A lower-case word for the state (`idle`, `busy`, ...).
    pub fn name(self) -> &'static str {
        match self {
            WorkerState::Starting => "starting",
            WorkerState::Idle => "idle",
            WorkerState::Busy => "busy",
            WorkerState::Paused => "paused",
            WorkerState::Stopping => "stopping",
            WorkerState::Stopped => "stopped",
        }
    }
}

/// A snapshot of a worker, from [`WorkerControl::status`].
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct WorkerStatus {
    /// The state.
    pub state: WorkerState,
    /// The jids of the running jobs, sorted.
    pub running: Vec<String>,
    /// Turns of the worker's main loop so far (each turn pops, unless
    /// paused or full, then waits for a job to end, a control request or
    /// the poll interval).
    pub turns: u64,
}

#[derive(Debug)]
struct ControlInner {
    stop_now: CancellationToken,
    stop_after: CancellationToken,
    paused: watch::Sender<bool>,
    status: watch::Sender<WorkerStatus>,
}

/// Controls a running [`Worker`] from elsewhere (a signal handler, a test).
/// Cheap to clone.
#[derive(Clone, Debug)]
pub struct WorkerControl {
    inner: Arc<ControlInner>,
}

impl WorkerControl {
    fn new() -> WorkerControl {
        WorkerControl {
            inner: Arc::new(ControlInner {
                stop_now: CancellationToken::new(),
                stop_after: CancellationToken::new(),
                paused: watch::Sender::new(false),
                status: watch::Sender::new(WorkerStatus {
                    state: WorkerState::Starting,
                    running: Vec::new(),
                    turns: 0,
                }),
            }),
        }
    }

    /// Stops now: running handlers are cancelled and their jobs released
    /// back to their queues at once (no retry spent); then `run` returns.
    pub fn stop_now(&self) {
        self.inner.stop_now.cancel();
    }

    /// Stops after the running jobs: takes no new jobs and waits for the
    /// running ones, up to the shutdown grace period (then releases what is
    /// left).
    pub fn stop_after_running(&self) {
        self.inner.stop_after.cancel();
    }

    /// Takes no new jobs until [`WorkerControl::resume`]; running jobs go on.
    pub fn pause(&self) {
        self.inner.paused.send_replace(true);
    }

    /// Takes jobs again after [`WorkerControl::pause`].
    pub fn resume(&self) {
        self.inner.paused.send_replace(false);
    }

    /// Whether the worker is paused.
    pub fn is_paused(&self) -> bool {
        *self.inner.paused.borrow()
    }

    /// Whether a stop was requested (either kind).
    pub fn is_stopping(&self) -> bool {
        self.inner.stop_now.is_cancelled() || self.inner.stop_after.is_cancelled()
    }

    /// What the worker is doing now.
    pub fn status(&self) -> WorkerStatus {
        self.inner.status.borrow().clone()
    }

    /// A receiver that sees every status change (for a process title).
    pub fn watch_status(&self) -> watch::Receiver<WorkerStatus> {
        self.inner.status.subscribe()
    }

    fn set_status(&self, f: impl FnOnce(&mut WorkerStatus)) {
        self.inner.status.send_modify(f);
    }
}

/// What a worker did, returned by [`Worker::run`].
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct ShutdownReport {
    /// Jobs completed (including advanced into another queue).
    pub completed: usize,
    /// Jobs failed (by the handler, a panic, or out of retries).
    pub failed: usize,
    /// Jobs put back for a retry (by the handler or a time limit).
    pub retried: usize,
    /// Jobs cancelled by the handler.
    pub cancelled: usize,
    /// Jobs released back to their queues because the worker stopped.
    pub released: usize,
    /// Jobs whose result was discarded because their lock was lost (the job
    /// was timed out, cancelled, moved or given to another worker).
    pub lost: usize,
    /// Jobs whose outcome could not be reported (the store or server
    /// failed); their locks expire and another worker gets them.
    pub errors: usize,
    /// Jobs running when the worker stopped that it did not finish: released
    /// ones, and those it could not release (see `not_released`).
    pub unfinished: Vec<String>,
    /// The unfinished jobs it could not hand back within the grace period
    /// (their locks will expire).
    pub not_released: Vec<String>,
}

/// Runs jobs from a list of queues through a [`Handler`].
///
/// ```no_run
/// # async fn demo(client: clew_client::Client, handler: impl clew_worker::Handler) {
/// use clew_worker::{Worker, WorkerConfig};
///
/// let mut config = WorkerConfig::new(["emails", "reports"]);
/// config.concurrency = 4;
/// let worker = Worker::new(client, handler, config);
/// let control = worker.control(); // stop_now() / stop_after_running() / pause()
/// let report = worker.run().await;
/// # let _ = (control, report);
/// # }
/// ```
pub struct Worker {
    client: Client,
    handler: Arc<dyn Handler>,
    middleware: Vec<Arc<dyn Middleware>>,
    config: WorkerConfig,
    control: WorkerControl,
}

impl std::fmt::Debug for Worker {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Worker")
            .field("config", &self.config)
            .field("middleware", &self.middleware.len())
            .finish()
    }
}

/// What the worker loop shares with job tasks.
struct Shared {
    client: Client,
    name: String,
    handler: Arc<dyn Handler>,
    middleware: Vec<Arc<dyn Middleware>>,
    config: WorkerConfig,
    /// Lock length by queue.
    locks: LockCache,
    /// Cancelled when running jobs must be released (stop now, or the grace
    /// period ran out).
    halt: CancellationToken,
    /// Reports outcomes, batched.
    completer: Completer,
    /// Signalled when a job's handler is done and its slot free (its
    /// outcome may still be on its way to the store).
    freed: tokio::sync::Notify,
}

impl Shared {
    fn timeout_for(&self, job: &Job) -> Option<Duration> {
        self.handler
            .timeout(job)
            .or_else(|| self.config.queue_timeouts.get(&job.queue).copied())
            .or(self.config.timeout)
    }

    fn backoff_for(&self, job: &Job) -> Backoff {
        self.handler
            .backoff(job)
            .or_else(|| self.config.queue_backoffs.get(&job.queue).copied())
            .unwrap_or(self.config.backoff)
    }

    /// The policy's delay before this job's next retry.
    fn retry_delay(&self, job: &Job) -> Duration {
        let attempt = (job.retries - job.remaining).clamp(0, i64::from(u32::MAX)) as u32;
        self.backoff_for(job).delay(attempt, &mut rand::rng())
    }

    /// How often to heartbeat a job of `queue`: half its lock length.
    async fn beat_every(&self, queue: &str) -> Duration {
        let lock = self.locks.get(&self.client, queue).await;
        (lock / 2).max(MIN_BEAT)
    }
}

/// How a job ended, as the job task reports it.
#[derive(Debug)]
enum JobEnd {
    Completed,
    Failed,
    Retried,
    Cancelled,
    Released,
    NotReleased,
    Lost,
    Error,
}

/// How a job's run stopped.
enum Stopped {
    Outcome(Outcome),
    Panicked(String),
    LockLost,
    TimedOut(Duration),
    Halted,
}

impl Worker {
    /// A worker popping with `client` and running jobs through `handler`.
    pub fn new(client: Client, handler: impl Handler, config: WorkerConfig) -> Worker {
        Worker::with_handler(client, Arc::new(handler), config)
    }

    /// Like [`Worker::new`], with a shared handler.
    pub fn with_handler(client: Client, handler: Arc<dyn Handler>, config: WorkerConfig) -> Worker {
        Worker {
            client,
            handler,
            middleware: Vec::new(),
            config,
            control: WorkerControl::new(),
        }
    }

    /// Adds `middleware` inside those added before (the first added is the
    /// outermost).
    pub fn with_middleware(mut self, middleware: impl Middleware) -> Worker {
        self.middleware.push(Arc::new(middleware));
        self
    }

    /// Adds a shared middleware (see [`Worker::with_middleware`]).
    pub fn with_shared_middleware(mut self, middleware: Arc<dyn Middleware>) -> Worker {
        self.middleware.push(middleware);
        self
    }

    /// The worker's name.
    pub fn name(&self) -> &str {
        &self.config.name
    }

    /// The configuration.
    pub fn config(&self) -> &WorkerConfig {
        &self.config
    }

    /// A handle to stop, pause or watch the worker.
    pub fn control(&self) -> WorkerControl {
        self.control.clone()
    }

    /// Runs until stopped through [`WorkerControl`]; returns what it did.
    pub async fn run(self) -> ShutdownReport {
        let Worker {
            client,
            handler,
            middleware,
            mut config,
            control,
        } = self;
        config.concurrency = config.concurrency.max(1);
        let (completer, completer_task) = Completer::start(client.clone());
        let shared = Arc::new(Shared {
            client,
            completer,
            name: config.name.clone(),
            handler,
            middleware,
            locks: LockCache::new(config.lock_length),
            halt: CancellationToken::new(),
            freed: tokio::sync::Notify::new(),
            config,
        });
        // Read the lock lengths once at start (and report problems early).
        for q in &shared.config.queues {
            shared.locks.get(&shared.client, q).await;
        }
        let mut order = QueueOrder::new(shared.config.reserver, shared.config.queues.clone());
        let slots = Arc::new(Semaphore::new(shared.config.concurrency));
        // A slot is free once its handler is done, while its outcome is
        // still being reported, so the next pop overlaps the last batch's
        // completions; jobs held (running or being reported) stay within
        // twice the concurrency.
        let held_max = 2 * shared.config.concurrency;
        let free_slots = |tasks: &JoinSet<JobEnd>| {
            slots
                .available_permits()
                .min(held_max.saturating_sub(tasks.len()))
        };
        let mut tasks: JoinSet<JobEnd> = JoinSet::new();
        let mut running: HashMap<tokio::task::Id, String> = HashMap::new();
        let mut report = ShutdownReport::default();
        let mut paused_rx = control.inner.paused.subscribe();
        let stop_now = control.inner.stop_now.clone();
        let stop_after = control.inner.stop_after.clone();
        tracing::info!(
            worker = %shared.name,
            queues = ?shared.config.queues,
            reserver = %shared.config.reserver,
            concurrency = shared.config.concurrency,
            "worker started"
        );

        // `woke`: the last idle wait ended because a job was ready; if the
        // pop that follows gets nothing (another worker was first, or the
        // queue is paused or at its concurrency limit), the next wait is a
        // plain sleep, so a job that stays visible but not poppable cannot
        // make the loop spin.
        let mut woke = false;
        while !stop_now.is_cancelled() && !stop_after.is_cancelled() {
            let paused = *paused_rx.borrow_and_update();
            let mut popped = 0;
            if !paused {
                let free = free_slots(&tasks);
                if free > 0 {
                    for job in reserve(&shared, &mut order, free).await {
                        let Ok(permit) = slots.clone().try_acquire_owned() else {
                            // Cannot happen: no more jobs than free slots are
                            // popped, and only this loop takes permits. Hand
                            // the job back rather than run too many.
                            release_quietly(&shared, &job).await;
                            continue;
                        };
                        popped += 1;
                        let jid = job.jid.clone();
                        let handle = tasks.spawn(run_job(shared.clone(), job, permit));
                        running.insert(handle.id(), jid);
                    }
                }
            }
            publish(&control, &running, paused, false);
            let woke_for_nothing = std::mem::take(&mut woke) && popped == 0;
            if popped > 0 && !paused && free_slots(&tasks) > 0 {
                // More may be waiting: pop again at once.
                continue;
            }
            let free = free_slots(&tasks);
            tokio::select! {
                biased;
                _ = stop_now.cancelled() => {}
                _ = stop_after.cancelled() => {}
                Some(ended) = tasks.join_next_with_id(), if !tasks.is_empty() => {
                    tally(&mut report, &mut running, ended, false);
                    // Others that end with it too (one batch's answers wake
                    // them together, on other runtime threads), so that the
                    // next pop asks for all the free slots at once rather
                    // than one pop per job.
                    for _ in 0..2 {
                        tokio::task::yield_now().await;
                    }
                    while let Some(ended) = tasks.try_join_next_with_id() {
                        tally(&mut report, &mut running, ended, false);
                    }
                }
                _ = paused_rx.changed() => {}
                () = shared.freed.notified(), if !paused && free == 0 => {
                    // Other handlers that finish with it too, so that the
                    // next pop asks for all the free slots at once.
                    for _ in 0..2 {
                        tokio::task::yield_now().await;
                    }
                    while let Some(ended) = tasks.try_join_next_with_id() {
                        tally(&mut report, &mut running, ended, false);
                    }
                }
                ready = idle_wait(&shared, !paused && free > 0 && !woke_for_nothing) => {
                    woke = ready;
                    continue;
                }
            }
        }

        // Shutting down.
        publish(&control, &running, false, true);
        let grace = shared.config.shutdown_grace;
        if stop_now.is_cancelled() {
            tracing::info!(worker = %shared.name, running = running.len(), "stopping now: releasing running jobs");
            shared.halt.cancel();
            drain(&mut tasks, &mut running, &mut report, grace, true, &control).await;
        } else {
            tracing::info!(worker = %shared.name, running = running.len(), "stopping after the running jobs");
            let finished = drain_until(
                &mut tasks,
                &mut running,
                &mut report,
                grace,
                &stop_now,
                &control,
            )
            .await;
            if !finished {
                tracing::warn!(
                    worker = %shared.name,
                    running = running.len(),
                    "jobs still running: releasing them"
                );
                shared.halt.cancel();
                let wait = if stop_now.is_cancelled() {
                    grace
                } else {
                    RELEASE_WAIT
                };
                drain(&mut tasks, &mut running, &mut report, wait, true, &control).await;
            }
        }
        // Tasks that did not end in time: abort them; their jobs' locks
        // expire.
        tasks.abort_all();
        while let Some(ended) = tasks.join_next_with_id().await {
            tally(&mut report, &mut running, ended, true);
        }
        // No job task is left to hand the completer anything: let it send
        // what is still queued (outcomes of tasks aborted above included),
        // then stop; outcomes of aborted tasks count as what they did.
        for (command, result) in completer_task.finish(RELEASE_WAIT).await {
            reclaim(&mut report, &command, result);
        }
        // A job task aborted after its answer came, but before it ran on to
        // return how it ended, was tallied as unfinished: the store knows
        // whether its job completed.
        let _ = tokio::time::timeout(
            RELEASE_WAIT,
            reconcile_completed(&shared.client, &mut report),
        )
        .await;
        report.unfinished.sort();
        report.not_released.sort();
        control.set_status(|s| {
            s.state = WorkerState::Stopped;
            s.running.clear();
        });
        tracing::info!(worker = %shared.name, ?report, "worker stopped");
        report
    }
}

/// Lock lengths by queue, read from the server (`config.get
/// <queue>-heartbeat`, then `heartbeat`) and read again once they are older
/// than [`LOCK_TTL`], unless the configuration fixes one.
#[derive(Debug)]
struct LockCache {
    fixed: Option<Duration>,
    entries: Mutex<HashMap<String, (Duration, Instant)>>,
}

impl LockCache {
    fn new(fixed: Option<Duration>) -> LockCache {
        LockCache {
            fixed,
            entries: Mutex::new(HashMap::new()),
        }
    }

    /// The lock length of jobs popped from `queue`.
    async fn get(&self, client: &Client, queue: &str) -> Duration {
        if let Some(d) = self.fixed {
            return d;
        }
        let cached = self.entries().get(queue).copied();
        if let Some((d, at)) = cached {
            if at.elapsed() < LOCK_TTL {
                return d;
            }
        }
        match read_lock(client, queue).await {
            Ok(d) => {
                self.entries().insert(queue.to_owned(), (d, Instant::now()));
                d
            }
            Err(e) => {
                let d = cached.map_or(UNKNOWN_LOCK, |(d, _)| d);
                tracing::warn!(queue, error = %e, assumed = ?d, "cannot read the lock length");
                d
            }
        }
    }

    fn entries(&self) -> std::sync::MutexGuard<'_, HashMap<String, (Duration, Instant)>> {
        // The map stays consistent even if a holder panicked (single
        // inserts), so a poisoned lock is still usable.
        self.entries.lock().unwrap_or_else(|p| p.into_inner())
    }
}

/// Reads `queue`'s lock length from the server's configuration.
async fn read_lock(client: &Client, queue: &str) -> Result<Duration, Error> {
    if let Some(d) = config_secs(client, &format!("{queue}-heartbeat")).await? {
        return Ok(d);
    }
    Ok(config_secs(client, "heartbeat")
        .await?
        .unwrap_or(DEFAULT_LOCK))
}

/// A numeric configuration value, in seconds (`None` when unset or not a
/// positive number).
async fn config_secs(client: &Client, key: &str) -> Result<Option<Duration>, Error> {
    let v = client
        .execute(Command::ConfigGet {
            key: Some(key.to_owned()),
        })
        .await?;
    let secs = match &v {
        serde_json::Value::Number(n) => n.as_f64(),
        serde_json::Value::String(s) => s.trim().parse::<f64>().ok(),
        _ => None,
    };
    Ok(secs
        .filter(|s| s.is_finite() && *s > 0.0)
        .map(Duration::from_secs_f64))
}

/// Waits while idle: with `watch`, until a job is ready in one of the
/// worker's queues (see [`clew_client::Client::wait_for_jobs`]; at most
/// `poll_interval`), else a plain `poll_interval` sleep.
/// Returns whether a job was reported ready.
async fn idle_wait(shared: &Shared, watch: bool) -> bool {
    let interval = shared.config.poll_interval;
    if !watch {
        tokio::time::sleep(interval).await;
        return false;
    }
    let started = tokio::time::Instant::now();
    match shared
        .client
        .wait_for_jobs(&shared.config.queues, interval)
        .await
    {
        Ok(ready) => ready,
        Err(e) => {
            tracing::warn!(worker = %shared.name, error = %e, "waiting for jobs failed");
            tokio::time::sleep_until(started + interval).await;
            false
        }
    }
}

/// Pops up to `free` jobs, trying queues as `order` says.
async fn reserve(shared: &Shared, order: &mut QueueOrder, free: usize) -> Vec<Job> {
    let mut got: Vec<Job> = Vec::new();
    // Round robin over one queue is popping it: as many as fit at once.
    if order.reserver().one_at_a_time() && shared.config.queues.len() > 1 {
        while got.len() < free {
            let mut found = false;
            let queues: Vec<String> = order.next_order().into_iter().map(str::to_owned).collect();
            for q in queues {
                order.tried(&q);
                let jobs = pop(shared, &q, 1).await;
                if !jobs.is_empty() {
                    got.extend(jobs);
                    found = true;
                    break;
                }
            }
            if !found {
                break;
            }
        }
    } else {
        let queues: Vec<String> = order.next_order().into_iter().map(str::to_owned).collect();
        for q in queues {
            let want = free - got.len();
            if want == 0 {
                break;
            }
            got.extend(pop(shared, &q, want as i64).await);
        }
    }
    got.truncate(free);
    got
}

async fn pop(shared: &Shared, queue: &str, count: i64) -> Vec<Job> {
    match shared.client.pop(queue, &shared.name, count).await {
        Ok(jobs) => jobs,
        Err(e) => {
            tracing::warn!(worker = %shared.name, queue, error = %e, "pop failed");
            Vec::new()
        }
    }
}

/// Publishes the worker's status.
fn publish(
    control: &WorkerControl,
    running: &HashMap<tokio::task::Id, String>,
    paused: bool,
    stopping: bool,
) {
    let mut jids: Vec<String> = running.values().cloned().collect();
    jids.sort();
    control.set_status(|s| {
        s.state = if stopping {
            WorkerState::Stopping
        } else if paused {
            WorkerState::Paused
        } else if jids.is_empty() {
            WorkerState::Idle
        } else {
            WorkerState::Busy
        };
        s.running = jids;
        s.turns += 1;
    });
}

/// Records how a job task ended. `stopping`: the worker was shutting down
/// when the task ended, so an aborted task is an unfinished job.
fn tally(
    report: &mut ShutdownReport,
    running: &mut HashMap<tokio::task::Id, String>,
    ended: Result<(tokio::task::Id, JobEnd), tokio::task::JoinError>,
    stopping: bool,
) {
    let (id, end) = match ended {
        Ok((id, end)) => (id, Some(end)),
        Err(e) => (e.id(), None),
    };
    let jid = running.remove(&id).unwrap_or_default();
    match end {
        Some(JobEnd::Completed) => report.completed += 1,
        Some(JobEnd::Failed) => report.failed += 1,
        Some(JobEnd::Retried) => report.retried += 1,
        Some(JobEnd::Cancelled) => report.cancelled += 1,
        Some(JobEnd::Released) => {
            report.released += 1;
            report.unfinished.push(jid);
        }
        Some(JobEnd::NotReleased) => {
            report.unfinished.push(jid.clone());
            report.not_released.push(jid);
        }
        Some(JobEnd::Lost) => report.lost += 1,
        Some(JobEnd::Error) => report.errors += 1,
        None if stopping => {
            report.unfinished.push(jid.clone());
            report.not_released.push(jid);
        }
        None => {
            // A job task cannot panic (the handler runs in a task of its
            // own); count it as an error all the same.
            tracing::error!(jid, "job task ended abnormally");
            report.errors += 1;
        }
    }
}

/// Counts the outcome of a job task that was aborted at shutdown while its
/// outcome's command was with the completer (the task was tallied as an
/// unfinished job it could not release).
fn reclaim(
    report: &mut ShutdownReport,
    command: &Command,
    result: Result<serde_json::Value, Error>,
) {
    let jid = match command {
        Command::Complete(p) => p.jid.as_str(),
        Command::Fail { jid, .. } | Command::Retry { jid, .. } | Command::Release { jid, .. } => {
            jid.as_str()
        }
        _ => return,
    };
    let Some(at) = report.not_released.iter().position(|j| j == jid) else {
        return;
    };
    let end = match (command, result) {
        (Command::Complete(_), Ok(_)) => JobEnd::Completed,
        (Command::Fail { .. }, Ok(_)) => JobEnd::Failed,
        (Command::Retry { .. }, Ok(left)) if left.as_i64().is_some_and(|n| n < 0) => JobEnd::Failed,
        (Command::Retry { .. }, Ok(_)) => JobEnd::Retried,
        (Command::Release { .. }, Ok(_)) => JobEnd::Released,
        (_, Err(e)) if lock_gone(&e) => JobEnd::Lost,
        // Not reported: still unfinished, its lock will expire.
        _ => return,
    };
    report.not_released.remove(at);
    if !matches!(end, JobEnd::Released) {
        report.unfinished.retain(|j| j != jid);
    }
    match end {
        JobEnd::Completed => report.completed += 1,
        JobEnd::Failed => report.failed += 1,
        JobEnd::Retried => report.retried += 1,
        JobEnd::Released => report.released += 1,
        _ => report.lost += 1,
    }
}

/// Counts as completed the jobs tallied as unfinished and not released
/// that the store shows complete (see the shutdown in `Worker::run`).
async fn reconcile_completed(client: &Client, report: &mut ShutdownReport) {
    for jid in report.not_released.clone() {
        let Ok(Some(job)) = client.get(&jid).await else {
            continue;
        };
        if job.state == "complete" {
            report.not_released.retain(|j| j != &jid);
            report.unfinished.retain(|j| j != &jid);
            report.completed += 1;
        }
    }
}

/// Waits up to `wait` for every job task to end.
async fn drain(
    tasks: &mut JoinSet<JobEnd>,
    running: &mut HashMap<tokio::task::Id, String>,
    report: &mut ShutdownReport,
    wait: Duration,
    stopping: bool,
    control: &WorkerControl,
) {
    let deadline = tokio::time::Instant::now() + wait;
    while !tasks.is_empty() {
        match tokio::time::timeout_at(deadline, tasks.join_next_with_id()).await {
            Ok(Some(ended)) => {
                tally(report, running, ended, stopping);
                publish(control, running, false, true);
            }
            Ok(None) | Err(_) => return,
        }
    }
}

/// Waits up to `wait` for every job task to end, or for `stop_now`; returns
/// whether all ended.
async fn drain_until(
    tasks: &mut JoinSet<JobEnd>,
    running: &mut HashMap<tokio::task::Id, String>,
    report: &mut ShutdownReport,
    wait: Duration,
    stop_now: &CancellationToken,
    control: &WorkerControl,
) -> bool {
    let deadline = tokio::time::Instant::now() + wait;
    while !tasks.is_empty() {
        tokio::select! {
            biased;
            _ = stop_now.cancelled() => return false,
            _ = tokio::time::sleep_until(deadline) => return false,
            ended = tasks.join_next_with_id() => match ended {
                Some(ended) => {
                    tally(report, running, ended, true);
                    publish(control, running, false, true);
                }
                None => return true,
            },
        }
    }
    true
}

/// Aborts a task when dropped.
struct AbortOnDrop(tokio::task::AbortHandle);

impl Drop for AbortOnDrop {
    fn drop(&mut self) {
        self.0.abort();
    }
}

/// Runs one job: handler, heartbeats, time limit; then reports the outcome.
async fn run_job(shared: Arc<Shared>, job: Job, slot: OwnedSemaphorePermit) -> JobEnd {
    let cancel = CancellationToken::new();
    let ctx = JobContext::new(
        job.jid.clone(),
        shared.name.clone(),
        shared.client.clone(),
        cancel.clone(),
    );
    let lost = CancellationToken::new();
    let _beat = AbortOnDrop(
        tokio::spawn(heartbeat_loop(
            shared.client.clone(),
            job.jid.clone(),
            shared.name.clone(),
            shared.beat_every(&job.queue).await,
            lost.clone(),
        ))
        .abort_handle(),
    );
    let mut perform = tokio::spawn({
        let shared = shared.clone();
        let job = job.clone();
        let ctx = ctx.clone();
        async move {
            Next::new(&shared.middleware, shared.handler.as_ref())
                .run(&job, &ctx)
                .await
        }
    });
    let _perform_guard = AbortOnDrop(perform.abort_handle());
    let limit = shared.timeout_for(&job);
    let time_limit = async {
        match limit {
            Some(d) => tokio::time::sleep(d).await,
            None => std::future::pending().await,
        }
    };

    let stopped = tokio::select! {
        biased;
        r = &mut perform => match r {
            Ok(outcome) => Stopped::Outcome(outcome),
            Err(e) if e.is_panic() => Stopped::Panicked(panic_message(e.into_panic())),
            // Only this task aborts the handler, after leaving the select.
            Err(_) => Stopped::Halted,
        },
        _ = lost.cancelled() => Stopped::LockLost,
        _ = shared.halt.cancelled() => Stopped::Halted,
        _ = time_limit => Stopped::TimedOut(limit.unwrap_or_default()),
    };
    // Whatever happened, the job's token fires (child tasks stop) and the
    // handler's future is dropped if it is still running.
    cancel.cancel();
    perform.abort();
    drop(_beat);
    // The handler is done: its slot is free for the next pop while the
    // outcome is reported.
    drop(slot);
    shared.freed.notify_one();

    let jid = job.jid.as_str();
    match stopped {
        Stopped::Outcome(outcome) => {
            report_outcome(&shared, &job, outcome, ctx.added_metadata()).await
        }
        Stopped::Panicked(message) => {
            tracing::error!(jid, klass = %job.klass, %message, "handler panicked");
            report_outcome(
                &shared,
                &job,
                Outcome::fail(format!("{}:panic", job.klass), message),
                ctx.added_metadata(),
            )
            .await
        }
        Stopped::LockLost => {
            tracing::warn!(jid, "lock lost: handler cancelled, result discarded");
            JobEnd::Lost
        }
        Stopped::TimedOut(limit) => {
            tracing::warn!(jid, ?limit, "job timed out: retrying");
            report_outcome(
                &shared,
                &job,
                Outcome::Retry {
                    delay: None,
                    group: Some(format!("{}:timeout", job.klass)),
                    message: Some(format!(
                        "timed out after {} s",
                        trim_secs(limit.as_secs_f64())
                    )),
                },
                ctx.added_metadata(),
            )
            .await
        }
        Stopped::Halted => release(&shared, &job).await,
    }
}

fn trim_secs(s: f64) -> String {
    let t = format!("{s:.3}");
    t.trim_end_matches('0').trim_end_matches('.').to_owned()
}

/// The text of a panic payload.
fn panic_message(payload: Box<dyn std::any::Any + Send>) -> String {
    if let Some(s) = payload.downcast_ref::<&str>() {
        (*s).to_owned()
    } else if let Some(s) = payload.downcast_ref::<String>() {
        s.clone()
    } else {
        "handler panicked".to_owned()
    }
}

/// Heartbeats `jid` every `every` until the lock is refused (then cancels
/// `lost` and returns). Store failures are logged and the beat tried again.
async fn heartbeat_loop(
    client: Client,
    jid: String,
    worker: String,
    every: Duration,
    lost: CancellationToken,
) {
    loop {
        tokio::time::sleep(every).await;
        match client.heartbeat(&jid, &worker).await {
            Ok(_) => {}
            Err(e) if lock_gone(&e) => {
                tracing::warn!(jid, error = %e, "heartbeat refused");
                lost.cancel();
                return;
            }
            Err(e) => tracing::warn!(jid, error = %e, "heartbeat failed; trying again"),
        }
    }
}

/// Whether an error says the job is no longer ours (not running, given to
/// another worker, moved, cancelled).
fn lock_gone(e: &Error) -> bool {
    matches!(e.kind(), ErrorKind::Conflict | ErrorKind::NotFound)
}

/// Reports `outcome` for `job`.
async fn report_outcome(
    shared: &Shared,
    job: &Job,
    outcome: Outcome,
    metadata: Option<serde_json::Map<String, serde_json::Value>>,
) -> JobEnd {
    let jid = job.jid.as_str();
    let worker = shared.name.as_str();
    // What a refused report may find when an earlier attempt of it did
    // commit (its answer lost): the job's state and history entry.
    let ended = match &outcome {
        Outcome::Complete { .. } => Some(("complete", "done")),
        Outcome::Fail { .. } => Some(("failed", "failed")),
        _ => None,
    };
    let result: Result<JobEnd, Error> = match outcome {
        Outcome::Complete { data } => {
            let params = CompleteParams {
                jid: jid.to_owned(),
                worker: worker.to_owned(),
                queue: job.queue.clone(),
                data: data.unwrap_or_else(|| job.data.clone()),
                next: None,
                delay: 0.0,
                depends: Vec::new(),
                metadata: metadata.clone(),
            };
            shared
                .completer
                .submit(Command::Complete(params))
                .await
                .map(|_| JobEnd::Completed)
        }
        Outcome::Advance {
            queue,
            delay,
            depends,
            data,
        } => {
            let params = CompleteParams {
                jid: jid.to_owned(),
                worker: worker.to_owned(),
                queue: job.queue.clone(),
                data: data.unwrap_or_else(|| job.data.clone()),
                next: Some(queue),
                delay,
                depends,
                metadata: metadata.clone(),
            };
            shared
                .completer
                .submit(Command::Complete(params))
                .await
                .map(|_| JobEnd::Completed)
        }
        Outcome::Retry {
            delay,
            group,
            message,
        } => {
            let delay = delay.unwrap_or_else(|| shared.retry_delay(job));
            let command = Command::Retry {
                jid: jid.to_owned(),
                queue: job.queue.clone(),
                worker: worker.to_owned(),
                delay: delay.as_secs_f64(),
                group,
                message,
            };
            shared
                .completer
                .submit(command)
                .await
                .map(|left| match left.as_i64() {
                    Some(n) if n < 0 => JobEnd::Failed,
                    _ => JobEnd::Retried,
                })
        }
        Outcome::Fail { group, message } => {
            let command = Command::Fail {
                jid: jid.to_owned(),
                worker: worker.to_owned(),
                group,
                message,
                data: None,
                metadata: metadata.clone(),
            };
            shared
                .completer
                .submit(command)
                .await
                .map(|_| JobEnd::Failed)
        }
        Outcome::Cancel => {
            // `cancel` does not check the lock: make sure the job is still
            // ours first.
            let jids = [jid.to_owned()];
            match persist(|| shared.client.heartbeat(jid, worker)).await {
                Ok(_) => persist(|| shared.client.cancel(&jids))
                    .await
                    .map(|_| JobEnd::Cancelled),
                Err(e) => Err(e),
            }
        }
    };
    match result {
        Ok(end) => end,
        Err(e) if lock_gone(&e) => {
            if let Some((state, entry)) = ended {
                if outcome_landed(shared, jid, state, entry).await {
                    tracing::info!(
                        jid,
                        "the outcome was recorded by an earlier attempt whose answer was lost"
                    );
                    return if state == "complete" {
                        JobEnd::Completed
                    } else {
                        JobEnd::Failed
                    };
                }
            }
            tracing::warn!(jid, error = %e, "lock lost before the outcome was reported: result discarded");
            JobEnd::Lost
        }
        Err(e) if e.kind() == ErrorKind::Invalid => {
            // The outcome itself is malformed (a bad queue name, data that
            // is not JSON...): fail the job with the reason.
            tracing::error!(jid, error = %e, "outcome refused: failing the job");
            let command = Command::Fail {
                jid: jid.to_owned(),
                worker: worker.to_owned(),
                group: format!("{}:invalid-outcome", job.klass),
                message: e.message().to_owned(),
                data: None,
                metadata: None,
            };
            match shared.completer.submit(command).await {
                Ok(_) => JobEnd::Failed,
                Err(e2) if lock_gone(&e2) => JobEnd::Lost,
                Err(e2) => {
                    tracing::error!(jid, error = %e2, "cannot fail the job");
                    JobEnd::Error
                }
            }
        }
        Err(e) => {
            tracing::error!(jid, error = %e, "cannot report the outcome; the lock will expire");
            JobEnd::Error
        }
    }
}

/// Whether a report refused as "not running" was in fact recorded by an
/// earlier attempt of the same report: that attempt committed, but its
/// answer was lost (the server died right after the commit) and
/// [`persist`] tried again. True when the job is in `state` and, after
/// this worker's `popped` entry (the job's last), its history holds
/// `entry` and no lock expiry, so no one else can have ended it.
async fn outcome_landed(shared: &Shared, jid: &str, state: &str, entry: &str) -> bool {
    let Ok(Some(job)) = shared.client.get(jid).await else {
        return false;
    };
    if job.state != state {
        return false;
    }
    let what = |h: &serde_json::Value| h["what"].as_str().map(str::to_owned);
    let Some(pop) = job
        .history
        .iter()
        .rposition(|h| what(h).as_deref() == Some("popped"))
    else {
        return false;
    };
    let after = &job.history[pop + 1..];
    job.history[pop]["worker"].as_str() == Some(shared.name.as_str())
        && after.iter().any(|h| what(h).as_deref() == Some(entry))
        && !after
            .iter()
            .any(|h| what(h).as_deref() == Some("timed-out"))
}

/// Runs `op`, trying again (a few times, with short pauses) when the store
/// or server fails.
pub(crate) async fn persist<T, F, Fut>(mut op: F) -> Result<T, Error>
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = Result<T, Error>>,
{
    let mut attempt = 1;
    loop {
        match op().await {
            Err(e) if e.kind() == ErrorKind::Store && attempt < REPORT_ATTEMPTS => {
                tracing::warn!(error = %e, attempt, "store error; trying again");
                tokio::time::sleep(Duration::from_millis(200 * u64::from(attempt))).await;
                attempt += 1;
            }
            other => return other,
        }
    }
}

/// Hands a running job back to its queue (the worker is stopping).
async fn release(shared: &Shared, job: &Job) -> JobEnd {
    let command = Command::Release {
        jid: job.jid.clone(),
        worker: shared.name.clone(),
    };
    match shared.completer.submit(command).await {
        Ok(_) => {
            tracing::info!(jid = %job.jid, "released");
            JobEnd::Released
        }
        Err(e) if lock_gone(&e) => {
            tracing::warn!(jid = %job.jid, error = %e, "not released: the lock was already lost");
            JobEnd::Lost
        }
        Err(e) => {
            tracing::error!(jid = %job.jid, error = %e, "cannot release; the lock will expire");
            JobEnd::NotReleased
        }
    }
}

/// Releases a job that will not run, logging failures.
async fn release_quietly(shared: &Shared, job: &Job) {
    let _ = release(shared, job).await;
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn default_name_is_host_dash_pid() {
        let name = default_worker_name();
        let pid = std::process::id().to_string();
        assert!(name.ends_with(&format!("-{pid}")), "{name}");
        assert!(name.len() > pid.len() + 1, "{name}");
    }

    #[test]
    fn panic_payloads_become_messages() {
        assert_eq!(panic_message(Box::new("static")), "static");
        assert_eq!(panic_message(Box::new(String::from("owned"))), "owned");
        assert_eq!(panic_message(Box::new(42)), "handler panicked");
    }

    #[test]
    fn seconds_are_printed_short() {
        assert_eq!(trim_secs(0.25), "0.25");
        assert_eq!(trim_secs(2.0), "2");
    }

    #[tokio::test]
    async fn lock_lengths_come_from_the_queue_then_the_global_setting() {
        let (store, _dir) = clew_sqlite::testing::temp_store();
        let client = Client::local(clew_core::Engine::new(store));
        let set = |key: &str, value: &str| {
            client.execute(Command::ConfigSet {
                key: key.to_owned(),
                value: value.to_owned(),
            })
        };
        assert_eq!(
            LockCache::new(None).get(&client, "q").await,
            DEFAULT_LOCK,
            "qless's default"
        );
        set("heartbeat", "7").await.expect("set");
        set("q-heartbeat", "3").await.expect("set");
        set("r-heartbeat", "not a number").await.expect("set");
        let cache = LockCache::new(None);
        assert_eq!(cache.get(&client, "q").await, Duration::from_secs(3));
        assert_eq!(cache.get(&client, "other").await, Duration::from_secs(7));
        assert_eq!(cache.get(&client, "r").await, Duration::from_secs(7));
        // Cached: a change shows only after the TTL.
        set("q-heartbeat", "5").await.expect("set");
        assert_eq!(cache.get(&client, "q").await, Duration::from_secs(3));
        assert_eq!(
            LockCache::new(None).get(&client, "q").await,
            Duration::from_secs(5)
        );
        // A fixed length wins.
        let fixed = LockCache::new(Some(Duration::from_secs(2)));
        assert_eq!(fixed.get(&client, "q").await, Duration::from_secs(2));
    }

    #[tokio::test]
    async fn an_unreadable_configuration_assumes_a_short_lock() {
        // A port that was just free and is closed again: nothing listens.
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .and_then(|l| l.local_addr())
            .expect("a free port")
            .port();
        let client = Client::remote(&format!("http://127.0.0.1:{port}"), None).expect("client");
        assert_eq!(LockCache::new(None).get(&client, "q").await, UNKNOWN_LOCK);
    }

    #[test]
    fn states_have_names() {
        assert_eq!(WorkerState::Paused.name(), "paused");
        assert_eq!(WorkerState::Busy.name(), "busy");
    }
}
