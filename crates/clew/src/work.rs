//! `clew work`: runs a program as the handler of jobs from a list of queues,
//! as one worker process or a supervised pool of them.
//!
//! * One worker (no `--processes`): a [`Worker`] with a [`ProcessHandler`]
//!   (or, with `--noop`, a [`NoopHandler`] completing every job at once),
//!   controlled by signals: TERM/INT stop now (running jobs are released
//!   back to their queues), QUIT stops after the running jobs, USR2 pauses,
//!   CONT resumes, HUP reopens `--log-file`. On the way out it prints what
//!   it could not finish.
//! * A pool (`--processes N`): the parent keeps N child `clew work`
//!   processes (the same arguments, without `--processes`) alive,
//!   restarting any that dies (after a growing delay when they keep dying
//!   young), forwards those signals to them, and exits once they have all
//!   exited after a stop signal.
//!
//! With `--publish SPEC`, the process (the pool's parent, never its
//! children) also delivers lifecycle events to sinks, as `clew server
//! --publish` does: from the store itself with `--db`, or from the
//! server's log over HTTP with `--url` (see [`crate::publish`]).
//!
//! Each process shows its state as its name in `ps`/`top` (`clew:run 2/4`,
//! `clew:waiting`, `clew:paused`, `clew:stopping`; `clew:pool 3/3` for the
//! parent), and logs the full title (`clew-worker NAME: running 2/4 jobs
//! (q1,q2)`) when it changes.

use std::ffi::OsString;
use std::fs::{File, OpenOptions};
use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use anyhow::Context;
use clap::Args;
use clew_core::Error;
use clew_events::{DeliveryHandle, EventSource};
use clew_worker::{
    default_worker_name, ExecConfig, NoopHandler, ProcessHandler, Reserver, ShutdownReport, Worker,
    WorkerConfig, WorkerControl, WorkerState, WorkerStatus,
};
use nix::sys::signal::{kill, Signal};
use nix::unistd::Pid;
use tokio::signal::unix::{signal, SignalKind};

use crate::publish::{Cursors, HttpSource, Publishing, StoreSource};
use crate::store_url::{StoreOptions, StoreUrl};

/// Set in a supervised child's environment: its slot number (1..=N).
const CHILD_ENV: &str = "CLEW_WORKER_CHILD";
/// Set in a supervised child's environment: the supervisor's pid.
const PARENT_ENV: &str = "CLEW_WORKER_PARENT";
/// A child that dies sooner than this after its start counts as crashing.
const HEALTHY_RUN: Duration = Duration::from_secs(10);
/// First restart delay of a crashing child; doubles up to [`MAX_RESTART_DELAY`].
const FIRST_RESTART_DELAY: Duration = Duration::from_millis(100);
/// Longest restart delay.
const MAX_RESTART_DELAY: Duration = Duration::from_secs(30);
/// How long past the grace period a stopping pool waits before killing
/// children that have not exited.
const KILL_MARGIN: Duration = Duration::from_secs(10);

/// `clew work`'s options.
#[derive(Debug, Args)]
pub struct WorkArgs {
    /// The queues to work, comma-separated (or repeated), in order.
    #[arg(long, short = 'q', value_delimiter = ',')]
    pub(crate) queue: Vec<String>,
    /// The handler: PROGRAM and its ARGS; everything after --exec is passed
    /// to the program, so put clew's options before it. The job arrives as
    /// JSON on stdin and in CLEW_* variables; exit 0 completes, the retry
    /// status retries, anything else fails. Required unless --noop (on the
    /// command line or `noop = true` in --config).
    #[arg(
        long,
        num_args = 1..,
        allow_hyphen_values = true,
        value_name = "PROGRAM [ARGS]..."
    )]
    pub(crate) exec: Vec<OsString>,
    /// Run the handler through `sh -c` (PROGRAM is then a command line).
    #[arg(long)]
    pub(crate) shell: bool,
    /// For benchmarks and smoke tests: complete every job at once without
    /// running any program (instead of --exec). Everything else is the
    /// same worker: pops, heartbeats, lifecycle events, batched
    /// completions.
    #[arg(long)]
    pub(crate) noop: bool,
    /// Jobs run at once by each process.
    #[arg(long, short = 'c', default_value_t = 1)]
    pub(crate) concurrency: usize,
    /// The order queues are popped in: ordered (drain the first queue
    /// before the next), round-robin or shuffled.
    #[arg(long, default_value = "ordered")]
    pub(crate) reserver: String,
    /// Time limit of each job, in seconds: past it the program is killed
    /// and the job retried.
    #[arg(long)]
    pub(crate) timeout: Option<f64>,
    /// The exit status that retries a job.
    #[arg(long, default_value_t = clew_worker::exec::DEFAULT_RETRY_EXIT_CODE)]
    pub(crate) retry_exit_code: i32,
    /// Longest line of the handler's stdout read whole, in bytes: a longer
    /// line is cut (so a `clew:data` line longer than this is ignored) and
    /// the job's history notes it ("output cut"). 1 to 67108864.
    #[arg(long, default_value_t = 1024 * 1024, value_name = "BYTES")]
    pub(crate) max_output_line: usize,
    /// Bytes of the end of the handler's stderr kept as the failure message
    /// (the rest is dropped and the message says how much). 1 to 1048576.
    #[arg(long, default_value_t = 4096, value_name = "BYTES")]
    pub(crate) stderr_tail: usize,
    /// Delay of the first retry, in seconds (then doubling, with jitter).
    #[arg(long)]
    pub(crate) backoff_base: Option<f64>,
    /// Longest retry delay, in seconds.
    #[arg(long)]
    pub(crate) backoff_max: Option<f64>,
    /// The worker's name (default: host-pid). Supervised children add
    /// `-N` to a given name.
    #[arg(long)]
    pub(crate) name: Option<String>,
    /// Keep this many worker processes running, restarting any that dies.
    #[arg(long)]
    pub(crate) processes: Option<usize>,
    /// Seconds a stopping worker waits for running jobs (QUIT) or for their
    /// release (TERM) before giving up on them.
    #[arg(long, default_value_t = 30.0)]
    pub(crate) grace: f64,
    /// Seconds an idle worker waits between pops.
    #[arg(long, default_value_t = 1.0)]
    pub(crate) poll_interval: f64,
    /// Write the log here instead of stderr (reopened on SIGHUP, for log
    /// rotation).
    #[arg(long)]
    pub(crate) log_file: Option<PathBuf>,
    /// Read options from this TOML file (keys named like the flags: queue,
    /// concurrency, publish, marshal, cursor_dir, ...); flags given here
    /// win.
    #[arg(long, value_name = "PATH")]
    pub(crate) config: Option<PathBuf>,
    /// Publish lifecycle events (resque-clues) to a sink, as `clew server
    /// --publish` does; repeatable: `stdout`, `file:PATH`, `tcp:HOST:PORT`,
    /// `udp:HOST:PORT`, `http:URL`. With --db the events are read from the
    /// store, with --url from the server's log. Both read the same durable
    /// log: configure each sink in one place only (on the server when
    /// there is one; on a worker when there is no server, or when the sink
    /// is only reachable from the worker's host). A pool publishes once,
    /// from its parent.
    #[arg(long = "publish", value_name = "SPEC")]
    pub(crate) publish: Vec<String>,
    /// Event format for --publish: `json` (resque-clues) or `logfmt`.
    #[arg(long, default_value = "json")]
    pub(crate) marshal: String,
    /// Directory keeping each sink's cursor, so a restart resumes where
    /// each sink stopped. Default with --db: the store file's path +
    /// `.cursors` (the server's default); required with --url.
    #[arg(long, value_name = "DIR")]
    pub(crate) cursor_dir: Option<PathBuf>,
}

/// Where `clew work` connects: the server or the store, as given on the
/// command line.
#[derive(Clone, Debug)]
pub struct Target {
    /// `--url` / `CLEW_URL`.
    pub url: Option<String>,
    /// `--db` / `CLEW_DB`.
    pub db: String,
    /// `--token` / `CLEW_TOKEN`.
    pub token: Option<String>,
    /// How to open `db` (`--synchronous`, `--pg-pool`).
    pub open: StoreOptions,
    /// `--namespace`: sent to a server as `X-Clew-Namespace` (`db` is
    /// already the namespace's).
    pub namespace: Option<String>,
}

fn seconds(flag: &str, v: f64, allow_zero: bool) -> anyhow::Result<Duration> {
    if !v.is_finite() || v < 0.0 || (!allow_zero && v == 0.0) || v > 1e9 {
        let what = if allow_zero { ">= 0" } else { "> 0" };
        return Err(Error::invalid(format!(
            "{flag}: expected a number of seconds {what}, got {v}"
        ))
        .into());
    }
    Ok(Duration::from_secs_f64(v))
}

/// Checks the options; the worker configuration and the handler's (`None`:
/// `--noop`).
fn configure(args: &WorkArgs) -> anyhow::Result<(WorkerConfig, Option<ExecConfig>)> {
    let queues: Vec<String> = args
        .queue
        .iter()
        .map(|q| q.trim().to_owned())
        .filter(|q| !q.is_empty())
        .collect();
    if queues.is_empty() {
        return Err(Error::invalid(
            "--queue: expected one or more queue names (or queue = [...] in --config)",
        )
        .into());
    }
    if args.concurrency == 0 {
        return Err(Error::invalid("--concurrency: expected 1 or more, got 0").into());
    }
    if args.processes == Some(0) {
        return Err(Error::invalid("--processes: expected 1 or more, got 0").into());
    }
    let reserver: Reserver = args
        .reserver
        .parse()
        .map_err(|e: String| Error::invalid(format!("--{e}")))?;
    if args.noop && !args.exec.is_empty() {
        return Err(Error::invalid("--noop: cannot be used with --exec (one handler)").into());
    }
    if args.noop && args.shell {
        return Err(Error::invalid("--noop: cannot be used with --shell (no program runs)").into());
    }
    let program = if args.noop {
        None
    } else {
        let Some((program, rest)) = args.exec.split_first() else {
            return Err(Error::invalid("--exec: expected PROGRAM [ARGS]... (or --noop)").into());
        };
        if program.is_empty() {
            return Err(Error::invalid("--exec: expected a program, got an empty string").into());
        }
        Some((program, rest))
    };
    let mut config = WorkerConfig::new(queues);
    config.reserver = reserver;
    config.concurrency = args.concurrency;
    config.poll_interval = seconds("--poll-interval", args.poll_interval, false)?;
    config.shutdown_grace = seconds("--grace", args.grace, true)?;
    if let Some(t) = args.timeout {
        config.timeout = Some(seconds("--timeout", t, false)?);
    }
    if let Some(b) = args.backoff_base {
        config.backoff.base = seconds("--backoff-base", b, true)?;
    }
    if let Some(m) = args.backoff_max {
        config.backoff.max = seconds("--backoff-max", m, true)?;
    }
    if config.backoff.max < config.backoff.base {
        return Err(Error::invalid(format!(
            "--backoff-max: expected at least the base delay ({} s), got {} s",
            config.backoff.base.as_secs_f64(),
            config.backoff.max.as_secs_f64()
        ))
        .into());
    }
    let child = std::env::var(CHILD_ENV).ok().filter(|c| !c.is_empty());
    config.name = match (&args.name, &child) {
        (Some(name), Some(n)) => format!("{name}-{n}"),
        (Some(name), None) => name.clone(),
        (None, _) => default_worker_name(),
    };
    if config.name.trim().is_empty() {
        return Err(Error::invalid("--name: expected a non-empty name").into());
    }
    let Some((program, rest)) = program else {
        return Ok((config, None));
    };
    if !args.shell && !runnable(program) {
        return Err(Error::invalid(format!(
            "--exec: expected a program to run, but {} is not an executable file{}",
            program.to_string_lossy(),
            if Path::new(program).components().count() > 1 {
                ""
            } else {
                " on PATH"
            }
        ))
        .into());
    }
    let mut exec = ExecConfig::new(program.clone(), rest.iter().cloned());
    exec.shell = args.shell;
    exec.retry_exit_code = args.retry_exit_code;
    exec.max_line = bytes("--max-output-line", args.max_output_line, 64 << 20)?;
    exec.stderr_tail = bytes(
        "--stderr-tail",
        args.stderr_tail,
        clew_core::limits::MAX_DATA_BYTES,
    )?;
    Ok((config, Some(exec)))
}

/// A byte count flag, checked to be in 1..=max.
fn bytes(flag: &str, n: usize, max: usize) -> anyhow::Result<usize> {
    if n == 0 || n > max {
        return Err(Error::invalid(format!("{flag}: expected 1 to {max} bytes, got {n}")).into());
    }
    Ok(n)
}

/// Whether `program` names an executable file (looked up on `PATH` when
/// it is a bare name, as the handler will be).
fn runnable(program: &std::ffi::OsStr) -> bool {
    use std::os::unix::fs::PermissionsExt;
    let executable = |p: &Path| {
        std::fs::metadata(p)
            .map(|m| m.is_file() && m.permissions().mode() & 0o111 != 0)
            .unwrap_or(false)
    };
    let path = Path::new(program);
    if path.components().count() > 1 {
        return executable(path);
    }
    std::env::var_os("PATH")
        .map(|paths| std::env::split_paths(&paths).any(|dir| executable(&dir.join(program))))
        .unwrap_or(false)
}

/// Where a worker connects, checked.
enum Endpoint {
    /// A server: `http://HOST:PORT`.
    Server(String),
    /// A store (`--db`), opened with these options.
    Store(StoreUrl, StoreOptions),
}

impl Endpoint {
    fn of(target: &Target) -> anyhow::Result<Endpoint> {
        if let Some(url) = target.url.as_deref().filter(|u| !u.is_empty()) {
            if !url.starts_with("http://") {
                return Err(
                    Error::invalid(format!("--url: expected http://HOST:PORT, got {url}")).into(),
                );
            }
            return Ok(Endpoint::Server(url.to_owned()));
        }
        Ok(Endpoint::Store(
            StoreUrl::parse(&target.db)?,
            target.open.clone(),
        ))
    }
}

/// Wakes the delivery loops whenever this process commits events.
#[derive(Debug)]
struct WakeOnCommit(Vec<DeliveryHandle>);

impl clew_core::EventSink for WakeOnCommit {
    fn publish(&self, events: &[clew_core::Event]) {
        if let Some(seq) = events.iter().map(|e| e.seq).max() {
            for h in &self.0 {
                h.notify_seq(seq);
            }
        }
    }
}

/// Starts `--publish` delivery on `endpoint`'s lifecycle log (`store`: the
/// already opened store, if any).
async fn start_publishing(
    args: &WorkArgs,
    endpoint: &Endpoint,
    store: Option<Arc<dyn clew_core::Store>>,
    token: Option<String>,
) -> anyhow::Result<Publishing> {
    if args.publish.is_empty() {
        return Ok(Publishing::none());
    }
    let (source, cursors): (Arc<dyn EventSource>, Option<Cursors>) = match endpoint {
        Endpoint::Server(url) => (
            Arc::new(HttpSource::new(url, token)?),
            args.cursor_dir.clone().map(Cursors::Files),
        ),
        Endpoint::Store(url, options) => {
            let store = match store {
                Some(s) => s,
                None => url.open(options)?,
            };
            let dir = args.cursor_dir.clone().or(url.default_cursor_dir());
            (
                Arc::new(StoreSource(store.clone())),
                Cursors::for_store(&store, dir),
            )
        }
    };
    let cursors = cursors.ok_or_else(|| {
        Error::invalid(
            "--cursor-dir: required with --url and --publish (the directory keeping each sink's cursor)",
        )
    })?;
    Publishing::start(source, &args.publish, &args.marshal, cursors).await
}

/// Runs `clew work`.
pub async fn run(args: &WorkArgs, target: &Target) -> anyhow::Result<()> {
    let (config, exec) = configure(args)?;
    let endpoint = Endpoint::of(target)?;
    // Handlers first: a signal must never find the default action (exit)
    // once children or jobs exist.
    let signals = Signals::new()?;
    let log = LogSink::open(args.log_file.clone())?;
    log.install();
    let supervised_child = std::env::var_os(CHILD_ENV).is_some();
    let pool = args.processes.filter(|_| !supervised_child);
    // The store, when this process works jobs from it.
    let store = match (&endpoint, pool) {
        (Endpoint::Store(url, options), None) => Some(url.open(options)?),
        _ => None,
    };
    // A pool's children never publish: the parent does, once.
    let publishing = if supervised_child {
        Publishing::none()
    } else {
        start_publishing(args, &endpoint, store.clone(), target.token.clone()).await?
    };
    let mut reopeners = Vec::new();
    for p in publishing.publishers() {
        reopeners.push(clew_events::reopen_on_sighup(p).context("installing the SIGHUP handler")?);
    }
    let result = match pool {
        Some(n) => supervise(n, args.grace, &log, signals).await,
        None => {
            let client = match (&endpoint, store) {
                (Endpoint::Server(url), _) => {
                    let client =
                        clew_client::Client::connect_with_token(url, target.token.clone())?
                            .with_namespace(target.namespace.as_deref())?;
                    if target.namespace.is_some() {
                        // A server serving another namespace refuses every
                        // call: say so now rather than retry forever.
                        if let Err(e) = client.qless("config.get", &["heartbeat".into()]).await {
                            if e.message().contains("X-Clew-Namespace") {
                                return Err(e.into());
                            }
                        }
                    }
                    client
                }
                (Endpoint::Store(..), Some(store)) => {
                    let wake = Arc::new(WakeOnCommit(publishing.handles()));
                    clew_client::Client::local(clew_core::Engine::new(store).with_sink(wake))
                }
                (Endpoint::Store(url, options), None) => {
                    clew_client::Client::local(clew_core::Engine::new(url.open(options)?))
                }
            };
            let worked = work(config, exec, &client, &log, signals).await;
            publishing.stop().await;
            client.close().await?;
            for r in reopeners {
                r.abort();
            }
            return worked;
        }
    };
    publishing.stop().await;
    for r in reopeners {
        r.abort();
    }
    result
}

async fn work(
    config: WorkerConfig,
    exec: Option<ExecConfig>,
    client: &clew_client::Client,
    log: &LogSink,
    mut signals: Signals,
) -> anyhow::Result<()> {
    let name = config.name.clone();
    let queues = config.queues.join(",");
    let concurrency = config.concurrency;
    let handler: Arc<dyn clew_worker::Handler> = match exec {
        Some(exec) => Arc::new(ProcessHandler::new(exec)),
        None => Arc::new(NoopHandler),
    };
    let worker = Worker::with_handler(client.clone(), handler, config);
    let control = worker.control();
    let mut status = control.watch_status();
    let parent = std::env::var(PARENT_ENV)
        .ok()
        .and_then(|p| p.parse::<i32>().ok());
    let run = worker.run();
    tokio::pin!(run);
    let mut orphan_check = tokio::time::interval(Duration::from_secs(1));
    let mut shown = String::new();
    let mut title = |s: &WorkerStatus, control: &WorkerControl| {
        let (short, long) = describe(s, control, concurrency);
        set_comm(&short);
        // A change of state is news; a change of the running count is not.
        let word = long.split([' ', ',']).next().unwrap_or("").to_owned();
        if word != shown {
            tracing::info!("clew-worker {name}: {long} ({queues})");
            shown = word;
        } else {
            tracing::debug!("clew-worker {name}: {long} ({queues})");
        }
    };
    title(&status.borrow_and_update().clone(), &control);
    let mut last = describe(&control.status(), &control, concurrency).1;
    let report = loop {
        tokio::select! {
            report = &mut run => break report,
            Some(sig) = signals.recv() => {
                match sig {
                    Sig::Term | Sig::Int => {
                        tracing::info!("clew-worker {name}: {}: stopping now, releasing running jobs", if sig == Sig::Term { "TERM" } else { "INT" });
                        control.stop_now();
                    }
                    Sig::Quit => {
                        tracing::info!("clew-worker {name}: QUIT: stopping after the running jobs");
                        control.stop_after_running();
                    }
                    Sig::Usr2 => {
                        tracing::info!("clew-worker {name}: USR2: paused, taking no new jobs");
                        control.pause();
                    }
                    Sig::Cont => {
                        tracing::info!("clew-worker {name}: CONT: resumed");
                        control.resume();
                    }
                    Sig::Hup => log.reopen(),
                }
                let s = control.status();
                last = describe(&s, &control, concurrency).1;
                title(&s, &control);
            }
            Ok(()) = status.changed() => {
                // Borrowed, not cloned: the status changes on every turn of
                // a busy worker, and the title needs only its counts.
                let s = status.borrow_and_update();
                let long = describe(&s, &control, concurrency).1;
                if long != last {
                    last = long;
                    title(&s, &control);
                }
            }
            _ = orphan_check.tick(), if parent.is_some() => {
                let ppid = nix::unistd::getppid().as_raw();
                if Some(ppid) != parent && !control.is_stopping() {
                    tracing::warn!("clew-worker {name}: its supervisor is gone: stopping now");
                    control.stop_now();
                }
            }
        }
    };
    set_comm("clew:stopped");
    print_report(&name, &report, log);
    Ok(())
}

/// The short title (a process name: at most 15 bytes) and the long one.
fn describe(s: &WorkerStatus, control: &WorkerControl, concurrency: usize) -> (String, String) {
    let n = s.running.len();
    if control.is_stopping() || matches!(s.state, WorkerState::Stopping | WorkerState::Stopped) {
        return ("clew:stopping".into(), format!("stopping, {n} running"));
    }
    if control.is_paused() || s.state == WorkerState::Paused {
        return (
            "clew:paused".into(),
            format!("paused, {n}/{concurrency} running"),
        );
    }
    if s.state == WorkerState::Starting {
        return ("clew:starting".into(), "starting".into());
    }
    if n == 0 {
        return ("clew:waiting".into(), "waiting for jobs".into());
    }
    (
        format!("clew:run {n}/{concurrency}"),
        format!("running {n}/{concurrency} jobs"),
    )
}

/// Sets the process name `ps` and `top` show (Linux: the main thread's
/// `comm`, at most 15 bytes; elsewhere nothing).
fn set_comm(title: &str) {
    let mut end = title.len().min(15);
    while !title.is_char_boundary(end) {
        end -= 1;
    }
    // /proc/self/comm names the main thread whichever thread writes it.
    let _ = std::fs::write("/proc/self/comm", &title[..end]);
}

fn print_report(name: &str, r: &ShutdownReport, log: &LogSink) {
    let mut text = format!(
        "clew work {name}: stopped: {} completed, {} failed, {} retried, {} cancelled, \
         {} released, {} lost, {} not reported\n",
        r.completed, r.failed, r.retried, r.cancelled, r.released, r.lost, r.errors
    );
    for jid in &r.unfinished {
        if r.not_released.contains(jid) {
            text.push_str(&format!(
                "clew work {name}: unfinished job {jid}: not released (its lock will expire)\n"
            ));
        } else {
            text.push_str(&format!(
                "clew work {name}: unfinished job {jid}: released back to its queue\n"
            ));
        }
    }
    let mut err = std::io::stderr().lock();
    let _ = err.write_all(text.as_bytes());
    let _ = err.flush();
    if log.path.is_some() {
        for line in text.lines() {
            tracing::info!("{line}");
        }
    }
}

/// What a signal asks of a worker.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Sig {
    Term,
    Int,
    Quit,
    Usr2,
    Cont,
    Hup,
}

/// The signals `clew work` acts on.
struct Signals {
    term: tokio::signal::unix::Signal,
    int: tokio::signal::unix::Signal,
    quit: tokio::signal::unix::Signal,
    usr2: tokio::signal::unix::Signal,
    cont: tokio::signal::unix::Signal,
    hup: tokio::signal::unix::Signal,
}

impl Signals {
    fn new() -> anyhow::Result<Signals> {
        let on = |k: SignalKind, name: &str| {
            signal(k).with_context(|| format!("cannot handle SIG{name}"))
        };
        Ok(Signals {
            term: on(SignalKind::terminate(), "TERM")?,
            int: on(SignalKind::interrupt(), "INT")?,
            quit: on(SignalKind::quit(), "QUIT")?,
            usr2: on(SignalKind::user_defined2(), "USR2")?,
            cont: on(SignalKind::from_raw(Signal::SIGCONT as i32), "CONT")?,
            hup: on(SignalKind::hangup(), "HUP")?,
        })
    }

    /// The next signal received.
    async fn recv(&mut self) -> Option<Sig> {
        tokio::select! {
            Some(()) = self.term.recv() => Some(Sig::Term),
            Some(()) = self.int.recv() => Some(Sig::Int),
            Some(()) = self.quit.recv() => Some(Sig::Quit),
            Some(()) = self.usr2.recv() => Some(Sig::Usr2),
            Some(()) = self.cont.recv() => Some(Sig::Cont),
            Some(()) = self.hup.recv() => Some(Sig::Hup),
            else => None,
        }
    }
}

/// The log destination: stderr or a file reopened on demand.
#[derive(Clone)]
struct LogSink {
    path: Option<PathBuf>,
    file: Arc<Mutex<Option<File>>>,
}

impl LogSink {
    fn open(path: Option<PathBuf>) -> anyhow::Result<LogSink> {
        let file = match &path {
            Some(p) => Some(open_log(p)?),
            None => None,
        };
        Ok(LogSink {
            path,
            file: Arc::new(Mutex::new(file)),
        })
    }

    /// Installs the log as the tracing subscriber (level from `CLEW_LOG`,
    /// default `info`).
    fn install(&self) {
        let ansi = self.path.is_none() && std::io::IsTerminal::is_terminal(&std::io::stderr());
        let _ = tracing_subscriber::fmt()
            .with_env_filter(
                tracing_subscriber::EnvFilter::try_from_env("CLEW_LOG")
                    .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info")),
            )
            .with_writer(self.clone())
            .with_ansi(ansi)
            .try_init();
    }

    /// Reopens the log file (after it was moved away by log rotation).
    fn reopen(&self) {
        let Some(path) = &self.path else {
            return;
        };
        match open_log(path) {
            Ok(f) => {
                *self.file.lock().unwrap_or_else(|e| e.into_inner()) = Some(f);
                tracing::info!("reopened the log file {}", path.display());
            }
            Err(e) => tracing::error!("cannot reopen the log file: {e:#}"),
        }
    }
}

fn open_log(path: &std::path::Path) -> anyhow::Result<File> {
    OpenOptions::new()
        .create(true)
        .append(true)
        .open(path)
        .with_context(|| format!("--log-file: cannot open {}", path.display()))
}

impl Write for LogSink {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        let mut file = self.file.lock().unwrap_or_else(|e| e.into_inner());
        match file.as_mut() {
            Some(f) => f.write(buf),
            None => std::io::stderr().write(buf),
        }
    }

    fn flush(&mut self) -> std::io::Result<()> {
        let mut file = self.file.lock().unwrap_or_else(|e| e.into_inner());
        match file.as_mut() {
            Some(f) => f.flush(),
            None => std::io::stderr().flush(),
        }
    }
}

impl<'a> tracing_subscriber::fmt::MakeWriter<'a> for LogSink {
    type Writer = LogSink;

    fn make_writer(&'a self) -> LogSink {
        self.clone()
    }
}

/// The arguments of a supervised child: this process's, without
/// `--processes` (before `--exec`: what follows belongs to the program).
fn child_args() -> Vec<OsString> {
    let mut out = Vec::new();
    let mut args = std::env::args_os().skip(1);
    while let Some(a) = args.next() {
        let s = a.to_string_lossy();
        if s == "--exec" || s.starts_with("--exec=") {
            out.push(a);
            out.extend(args);
            break;
        }
        if s == "--processes" {
            args.next();
            continue;
        }
        if s.starts_with("--processes=") {
            continue;
        }
        out.push(a);
    }
    out
}

/// One child process slot of the pool.
struct Slot {
    pid: Option<Pid>,
    started: Instant,
    delay: Duration,
    restart_at: Option<Instant>,
}

async fn supervise(
    n: usize,
    grace: f64,
    log: &LogSink,
    mut signals: Signals,
) -> anyhow::Result<()> {
    let exe = std::env::current_exe().context("cannot find the clew executable")?;
    let args = child_args();
    let me = std::process::id();
    let (exits, mut exited) = tokio::sync::mpsc::unbounded_channel::<(usize, Pid, String)>();
    let spawn = |i: usize| -> anyhow::Result<Pid> {
        let mut child = tokio::process::Command::new(&exe)
            .args(&args)
            .env(CHILD_ENV, i.to_string())
            .env(PARENT_ENV, me.to_string())
            .spawn()
            .with_context(|| format!("cannot start worker process {i}"))?;
        let pid = child
            .id()
            .and_then(|p| i32::try_from(p).ok())
            .map(Pid::from_raw)
            .context("a started worker process has no pid")?;
        let exits = exits.clone();
        tokio::spawn(async move {
            let how = match child.wait().await {
                Ok(s) => s.to_string(),
                Err(e) => format!("lost: {e}"),
            };
            let _ = exits.send((i, pid, how));
        });
        tracing::info!("clew-pool: started worker process {i} (pid {pid})");
        Ok(pid)
    };
    let mut slots = Vec::with_capacity(n);
    for i in 1..=n {
        slots.push(Slot {
            pid: Some(spawn(i)?),
            started: Instant::now(),
            delay: Duration::ZERO,
            restart_at: None,
        });
    }
    let mut stopping: Option<Instant> = None;
    let grace = Duration::from_secs_f64(grace.max(0.0));
    let mut killed = false;
    let pool_title = |slots: &[Slot]| {
        let alive = slots.iter().filter(|s| s.pid.is_some()).count();
        set_comm(&format!("clew:pool {alive}/{n}"));
    };
    pool_title(&slots);
    let forward = |slots: &[Slot], sig: Signal| {
        for s in slots {
            if let Some(pid) = s.pid {
                let _ = kill(pid, sig);
            }
        }
    };
    loop {
        if stopping.is_some() && slots.iter().all(|s| s.pid.is_none()) {
            break;
        }
        let next_restart = slots.iter().filter_map(|s| s.restart_at).min();
        let kill_at = stopping.map(|t| t + grace + KILL_MARGIN);
        tokio::select! {
            Some(sig) = signals.recv() => {
                let (forwarded, stop) = match sig {
                    Sig::Term => (Signal::SIGTERM, true),
                    Sig::Int => (Signal::SIGINT, true),
                    Sig::Quit => (Signal::SIGQUIT, true),
                    Sig::Usr2 => (Signal::SIGUSR2, false),
                    Sig::Cont => (Signal::SIGCONT, false),
                    Sig::Hup => {
                        log.reopen();
                        (Signal::SIGHUP, false)
                    }
                };
                if stop && stopping.is_none() {
                    tracing::info!("clew-pool: {forwarded}: stopping the worker processes");
                    stopping = Some(Instant::now());
                    for s in slots.iter_mut() {
                        s.restart_at = None;
                    }
                    set_comm("clew:pool stop");
                }
                forward(&slots, forwarded);
            }
            Some((i, pid, how)) = exited.recv() => {
                let slot = &mut slots[i - 1];
                if slot.pid == Some(pid) {
                    slot.pid = None;
                }
                if stopping.is_some() {
                    tracing::info!("clew-pool: worker process {i} (pid {pid}) exited: {how}");
                } else {
                    slot.delay = if slot.started.elapsed() >= HEALTHY_RUN {
                        Duration::ZERO
                    } else if slot.delay.is_zero() {
                        FIRST_RESTART_DELAY
                    } else {
                        (slot.delay * 2).min(MAX_RESTART_DELAY)
                    };
                    tracing::warn!(
                        "clew-pool: worker process {i} (pid {pid}) exited: {how}; restarting in {:.1} s",
                        slot.delay.as_secs_f64()
                    );
                    slot.restart_at = Some(Instant::now() + slot.delay);
                    pool_title(&slots);
                }
            }
            _ = sleep_until(next_restart), if next_restart.is_some() && stopping.is_none() => {
                let now = Instant::now();
                for (i, slot) in slots.iter_mut().enumerate() {
                    if slot.restart_at.is_some_and(|t| t <= now) {
                        slot.restart_at = None;
                        match spawn(i + 1) {
                            Ok(pid) => {
                                slot.pid = Some(pid);
                                slot.started = Instant::now();
                            }
                            Err(e) => {
                                tracing::error!("clew-pool: {e:#}");
                                slot.delay = (slot.delay * 2).clamp(FIRST_RESTART_DELAY, MAX_RESTART_DELAY);
                                slot.restart_at = Some(Instant::now() + slot.delay);
                            }
                        }
                    }
                }
                pool_title(&slots);
            }
            _ = sleep_until(kill_at), if kill_at.is_some() && !killed => {
                tracing::warn!("clew-pool: worker processes still running past the grace period: killing them");
                forward(&slots, Signal::SIGKILL);
                killed = true;
            }
        }
    }
    tracing::info!("clew-pool: every worker process has exited");
    let _ = std::io::stderr().flush();
    Ok(())
}

async fn sleep_until(at: Option<Instant>) {
    match at {
        Some(at) => tokio::time::sleep_until(at.into()).await,
        None => std::future::pending().await,
    }
}
