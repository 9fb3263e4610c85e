//! `clew bench`: throughput and latency of the store, in-process or through
//! `clew server` with `clew work` workers.
//!
//! Scenarios (each run `--repeat` times; every figure printed is the median
//! of the runs):
//! * `enqueue`: `--jobs` jobs put one per call by `--concurrency` tasks
//!   (row `enqueue`), and, on a fresh store, the same number put
//!   `--put-batch` at a time with `put_many` by `--concurrency` tasks (row
//!   `enqueue-batch`); jobs per second.
//! * `lifecycle`: `--jobs` no-op jobs put `--put-batch` at a time, popped
//!   `--batch` at a time and completed with `complete_many` (one
//!   transaction per batch) by `--workers` tasks; jobs per second over the
//!   whole (put, pop and complete). In-process the puts come first, then
//!   the pops; through a server `--workers` `clew work --noop` processes
//!   (each running `--batch` jobs at once) are already waiting, and the
//!   figure runs from the first put to the last completion (the queue's
//!   length looked at less often while much is left, every [`POLL`] near
//!   the end: [`next_look`]).
//! * `latency`: idle workers wait for jobs while jobs are put one at a
//!   time every 5 ms (at most [`LATENCY_JOBS_MAX`]); enqueue-to-start p50 /
//!   p99 / max. In-process: `--workers` tasks waiting on the engine's
//!   commits ([`clew_core::Engine::wait_for_jobs`]), from the put call's
//!   start to the pop's return. Through a server: `clew work --noop`
//!   processes (waiting in `POST /v1/wait`), from the job's put to its pop
//!   on the server's clock (the `time_in_queue` of its `dequeued` lifecycle
//!   event, read back over HTTP).
//! * `depth` (only when asked for): for each D of `--depths`, the queue is
//!   first filled with D jobs (`put_many` of [`PREFILL_BATCH`], not
//!   timed), then `--jobs` jobs are put one per call by `--concurrency`
//!   tasks (row `depth-D`, figure put) and `--jobs` jobs popped `--batch`
//!   at a time and completed with `complete_many` by `--workers` tasks
//!   (figure pop); the queue holds D jobs again after each run, so the
//!   prefill is done once per depth. Then the ratio of the largest depth's
//!   rates to the smallest's, and, when the bench started the server, its
//!   resident memory after the largest prefill.
//!
//! `--ceiling` also runs, after each lifecycle run, the bare SQL of a job's
//! life directly on the same kind of store, in the same batch sizes, and
//! prints the lifecycle figure as a ratio of it: on SQLite with rusqlite on
//! a fresh file (same pragmas), on PostgreSQL with the `postgres` crate in
//! a temporary schema of the `--db` database (created and dropped by the
//! run), from `--workers` connections claiming with `FOR UPDATE SKIP
//! LOCKED`.
//!
//! Where: in-process on `--db` (without `--db` on the command line, a fresh
//! temporary SQLite file per run, deleted after it, so no run measures what
//! an earlier one left); `--server` starts `clew server` (this executable)
//! on that store for each run, on 127.0.0.1 with a free port, and talks to
//! it over HTTP with the remote [`Client`]; `--url` (on the command line)
//! benches a server already running (workers are still started). Every
//! child process is stopped at the end of its run, and killed when the
//! bench fails or is interrupted (ctrl-c, SIGTERM).

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use anyhow::Context;
use clap::parser::ValueSource;
use clap::ArgMatches;
use clew::Client;
use clew_core::command::{CompleteParams, JobsListing, PutParams};
use clew_core::engine::WaitFor;
use clew_core::{Command, Engine, Error, Event, EventSink};
use indicatif::{ProgressBar, ProgressStyle};
use serde_json::{json, Map, Value};
use tokio::io::AsyncBufReadExt;
use tokio::sync::watch;

use crate::store_url::{StoreOptions, StoreUrl};

/// The scenarios; all but `depth` run by default.
pub const SCENARIOS: [&str; 4] = ["enqueue", "lifecycle", "latency", "depth"];

/// The most jobs the latency scenario puts (one every 5 ms).
pub const LATENCY_JOBS_MAX: usize = 1000;

/// The pause between two puts of the latency scenario.
const LATENCY_SPACING: Duration = Duration::from_millis(5);

/// Jobs per `put_many` when filling a queue for the depth scenario.
pub const PREFILL_BATCH: usize = 1000;

/// How often a bench through a server looks at the queue's length.
const POLL: Duration = Duration::from_millis(2);

/// The longest a bench waits for a server or its workers to start, or for
/// a queue to drain once nothing is put any more.
const START_TIMEOUT: Duration = Duration::from_secs(30);
const DRAIN_TIMEOUT: Duration = Duration::from_secs(300);

/// Variables a child process must not inherit (they would change its
/// store, server or role).
const CHILD_ENV_CLEARED: [&str; 7] = [
    "CLEW_URL",
    "CLEW_DB",
    "CLEW_TOKEN",
    "CLEW_PG_POOL",
    "CLEW_LISTEN",
    "CLEW_WORKER_CHILD",
    "CLEW_WORKER_PARENT",
];

/// `clew bench`'s options.
#[derive(Debug, clap::Args)]
pub struct BenchArgs {
    /// A scenario to run: enqueue, lifecycle, latency or depth; repeatable
    /// (default: enqueue, lifecycle and latency).
    #[arg(long = "scenario", value_name = "NAME")]
    pub scenarios: Vec<String>,
    /// Jobs per run (the latency scenario puts at most 1,000; depth times
    /// this many puts and this many pops at each depth).
    #[arg(long, default_value_t = 10_000)]
    pub jobs: usize,
    /// Worker tasks popping and completing (lifecycle, depth) or waiting
    /// (latency); through a server, `clew work --noop` processes
    /// (lifecycle, latency).
    #[arg(long, default_value_t = 4)]
    pub workers: usize,
    /// Jobs a worker pops at once and completes in one `complete_many`
    /// (lifecycle, depth); through a server, each worker process's
    /// `--concurrency`.
    #[arg(long, default_value_t = 25)]
    pub batch: usize,
    /// Tasks putting jobs at once (enqueue, the puts of lifecycle and
    /// depth).
    #[arg(long, default_value_t = 16)]
    pub concurrency: usize,
    /// Jobs per `put_many` (enqueue-batch, the puts of lifecycle).
    #[arg(long, default_value_t = 100, value_name = "N")]
    pub put_batch: usize,
    /// The depths of the depth scenario: jobs already waiting,
    /// comma-separated.
    #[arg(
        long,
        value_delimiter = ',',
        default_value = "1000,1000000",
        value_name = "D,..."
    )]
    pub depths: Vec<usize>,
    /// Runs of each scenario; the median is printed.
    #[arg(long, default_value_t = 3)]
    pub repeat: usize,
    /// Also measure the bare SQL of a job's life (on a fresh SQLite file,
    /// or in a temporary PostgreSQL schema) and print the lifecycle figure
    /// as a ratio of it.
    #[arg(long)]
    pub ceiling: bool,
    /// Bench through `clew server` (started on the store for each run,
    /// on 127.0.0.1) with `clew work --noop` worker processes, over HTTP.
    #[arg(long)]
    pub server: bool,
    /// Whether `--db` was given on the command line (else: a temporary
    /// SQLite file, never the ambient `CLEW_DB`).
    #[arg(skip)]
    pub db_given: bool,
    /// `--url` when given on the command line (never the ambient
    /// `CLEW_URL`): the running server to bench.
    #[arg(skip)]
    pub url: Option<String>,
    /// `--token` / `CLEW_TOKEN`, sent to `--url`.
    #[arg(skip)]
    pub token: Option<String>,
}

/// Notes whether `--db` and `--url` were given on the command line (see
/// [`BenchArgs::db_given`], [`BenchArgs::url`]).
pub fn note_db_source(mut cli: crate::Cli, matches: &ArgMatches) -> crate::Cli {
    let url_given = matches.value_source("url") == Some(ValueSource::CommandLine);
    let (url, token) = (cli.url.clone(), cli.token.clone());
    if let crate::Cmd::Bench(args) = &mut cli.command {
        args.db_given = matches.value_source("db") == Some(ValueSource::CommandLine);
        args.url = url.filter(|u| url_given && !u.is_empty());
        args.token = token.filter(|t| !t.is_empty());
    }
    if let crate::Cmd::Chaos(args) = &mut cli.command {
        args.db_given = matches.value_source("db") == Some(ValueSource::CommandLine);
    }
    cli
}

/// Where the bench runs.
#[derive(Clone, Debug, PartialEq, Eq)]
enum Mode {
    /// An engine in this process.
    InProcess,
    /// A `clew server` this bench starts.
    Server,
    /// A server already running at this URL.
    Url(String),
}

impl Mode {
    fn name(&self) -> &'static str {
        match self {
            Mode::InProcess => "in-process",
            Mode::Server => "server",
            Mode::Url(_) => "url",
        }
    }
}

/// The validated sizes of a bench.
#[derive(Clone, Debug)]
struct Plan {
    scenarios: Vec<&'static str>,
    jobs: usize,
    workers: usize,
    batch: usize,
    concurrency: usize,
    put_batch: usize,
    depths: Vec<usize>,
    repeat: usize,
    ceiling: bool,
    mode: Mode,
    token: Option<String>,
}

impl Plan {
    fn from_args(a: &BenchArgs) -> anyhow::Result<Plan> {
        let mut scenarios = Vec::new();
        for name in &a.scenarios {
            let known = SCENARIOS
                .iter()
                .find(|s| **s == name.as_str())
                .ok_or_else(|| {
                    Error::invalid(format!(
                        "--scenario: expected enqueue, lifecycle, latency or depth, got {name:?}"
                    ))
                })?;
            if !scenarios.contains(known) {
                scenarios.push(*known);
            }
        }
        if scenarios.is_empty() {
            scenarios = SCENARIOS[..3].to_vec();
        }
        at_least("--jobs", a.jobs, 1)?;
        at_least("--workers", a.workers, 1)?;
        at_least("--batch", a.batch, 1)?;
        at_least("--concurrency", a.concurrency, 1)?;
        at_least("--put-batch", a.put_batch, 1)?;
        at_least("--repeat", a.repeat, 1)?;
        let mut depths = a.depths.clone();
        depths.sort_unstable();
        depths.dedup();
        if depths.is_empty() {
            return Err(Error::invalid("--depths: expected one or more numbers").into());
        }
        at_least("--depths", depths[0], 1)?;
        if a.ceiling && !scenarios.contains(&"lifecycle") {
            return Err(Error::invalid(
                "--ceiling: compares the lifecycle scenario, which is not selected",
            )
            .into());
        }
        let mode = match (&a.url, a.server) {
            (Some(_), true) => {
                return Err(Error::invalid(
                    "--server: starts a server of its own; with --url the bench uses that one (give one of them)",
                )
                .into())
            }
            (Some(url), false) => {
                if !url.starts_with("http://") {
                    return Err(Error::invalid(format!(
                        "--url: expected http://HOST:PORT, got {url}"
                    ))
                    .into());
                }
                if a.ceiling {
                    return Err(Error::invalid(
                        "--ceiling: not with --url (the store behind that server is unknown)",
                    )
                    .into());
                }
                Mode::Url(url.trim_end_matches('/').to_owned())
            }
            (None, true) => Mode::Server,
            (None, false) => Mode::InProcess,
        };
        Ok(Plan {
            scenarios,
            jobs: a.jobs,
            workers: a.workers,
            batch: a.batch,
            concurrency: a.concurrency,
            put_batch: a.put_batch,
            depths,
            repeat: a.repeat,
            ceiling: a.ceiling,
            mode,
            token: a.token.clone(),
        })
    }
}

fn at_least(flag: &str, value: usize, min: usize) -> anyhow::Result<()> {
    if value < min {
        return Err(Error::invalid(format!("{flag}: expected {min} or more, got {value}")).into());
    }
    Ok(())
}

/// Files (SQLite files with their `-wal` and `-shm`, logs) deleted on drop.
#[derive(Default)]
struct TempFiles(Vec<PathBuf>);

impl Drop for TempFiles {
    fn drop(&mut self) {
        for path in &self.0 {
            for suffix in ["", "-wal", "-shm", "-journal"] {
                let _ = std::fs::remove_file(format!("{}{suffix}", path.display()));
            }
        }
    }
}

/// A unique name for this process's bench files and queues.
fn run_id() -> String {
    uuid::Uuid::new_v4().simple().to_string()[..12].to_owned()
}

/// Runs `clew bench` on `db` (used only when given on the command line).
pub async fn run(
    args: &BenchArgs,
    db: &str,
    options: &StoreOptions,
    json: bool,
) -> anyhow::Result<()> {
    let plan = Plan::from_args(args)?;
    let given = if args.db_given {
        Some(StoreUrl::parse(db)?)
    } else {
        None
    };
    let ceiling_dir = match &given {
        Some(StoreUrl::Sqlite(path)) => file_dir(path),
        _ => std::env::temp_dir(),
    };
    let kind = match (&plan.mode, &given) {
        (Mode::Url(_), _) => "server",
        (_, Some(url)) if url.is_shared() => "postgres",
        _ => "sqlite",
    };
    let setup = Setup {
        given,
        options: options.clone(),
        plan: plan.clone(),
        id: run_id(),
        ceiling_dir,
    };
    // An interruption drops the bench's future, and with it every child
    // process (killed on drop) and temporary file.
    let report = tokio::select! {
        report = setup.all() => report?,
        signal = interrupted() => {
            anyhow::bail!("interrupted by {signal}; child processes killed")
        }
    };
    let doc = report.to_json(kind, &plan);
    if json {
        crate::print_json(&doc)
    } else {
        crate::print_str(&report.to_table(kind, &plan))
    }
}

/// Resolves on ctrl-c or SIGTERM with the signal's name.
async fn interrupted() -> &'static str {
    use tokio::signal::unix::{signal, SignalKind};
    let mut term = match signal(SignalKind::terminate()) {
        Ok(s) => s,
        Err(_) => {
            let _ = tokio::signal::ctrl_c().await;
            return "SIGINT";
        }
    };
    tokio::select! {
        _ = tokio::signal::ctrl_c() => "SIGINT",
        _ = term.recv() => "SIGTERM",
    }
}

/// The directory of a SQLite file (where the ceiling's files go).
fn file_dir(path: &Path) -> PathBuf {
    match path.parent() {
        Some(p) if !p.as_os_str().is_empty() => p.to_owned(),
        _ => PathBuf::from("."),
    }
}

/// Announces every commit of the bench's engine (what idle workers wait on).
#[derive(Debug)]
struct CommitSink(watch::Sender<i64>);

impl EventSink for CommitSink {
    fn publish(&self, events: &[Event]) {
        if let Some(last) = events.last() {
            self.0.send_replace(last.seq);
        }
    }
}

/// One figure's value in each run.
#[derive(Debug, Default)]
struct Figures(Vec<(&'static str, Vec<f64>)>);

impl Figures {
    fn add(&mut self, run: Vec<(&'static str, f64)>) {
        for (name, value) in run {
            match self.0.iter_mut().find(|(n, _)| *n == name) {
                Some((_, values)) => values.push(value),
                None => self.0.push((name, vec![value])),
            }
        }
    }

    fn median(&self, name: &str) -> Option<f64> {
        self.0
            .iter()
            .find(|(n, _)| *n == name)
            .map(|(_, v)| median(v))
    }

    fn to_json(&self) -> Value {
        let mut figures = Map::new();
        let mut runs = Map::new();
        for (name, values) in &self.0 {
            figures.insert((*name).to_owned(), json!(median(values)));
            runs.insert((*name).to_owned(), json!(values));
        }
        json!({ "median": figures, "runs": runs })
    }
}

/// The median (the mean of the two middle values of an even count).
fn median(values: &[f64]) -> f64 {
    let mut v = values.to_vec();
    v.sort_by(f64::total_cmp);
    match v.len() {
        0 => f64::NAN,
        n if n % 2 == 1 => v[n / 2],
        n => (v[n / 2 - 1] + v[n / 2]) / 2.0,
    }
}

/// One row group of the report: a scenario (or a depth) and its figures.
#[derive(Debug)]
struct Row {
    name: String,
    jobs: usize,
    depth: Option<usize>,
    figures: Figures,
}

/// What a bench measured.
#[derive(Debug, Default)]
struct Report {
    rows: Vec<Row>,
    ceiling: Option<Figures>,
    /// The server's resident memory (kB) after the largest prefill of the
    /// depth scenario, when the bench started the server.
    server_rss_kb: Option<u64>,
}

impl Report {
    fn row(&self, name: &str) -> Option<&Row> {
        self.rows.iter().find(|r| r.name == name)
    }

    fn ratio(&self) -> Option<f64> {
        let lifecycle = self.row("lifecycle")?.figures.median("jobs_per_sec")?;
        Some(lifecycle / self.ceiling.as_ref()?.median("jobs_per_sec")?)
    }

    /// The largest depth's median `figure` over the smallest's.
    fn depth_ratio(&self, figure: &str) -> Option<(usize, usize, f64)> {
        let depths: Vec<&Row> = self.rows.iter().filter(|r| r.depth.is_some()).collect();
        let (low, high) = (depths.first()?, depths.last()?);
        if low.depth == high.depth {
            return None;
        }
        let ratio = high.figures.median(figure)? / low.figures.median(figure)?;
        Some((low.depth?, high.depth?, ratio))
    }

    fn to_json(&self, store: &str, plan: &Plan) -> Value {
        let mut scenarios = Map::new();
        for row in &self.rows {
            let mut v = row.figures.to_json();
            v["jobs"] = json!(row.jobs);
            if let Some(d) = row.depth {
                v["depth"] = json!(d);
            }
            scenarios.insert(row.name.clone(), v);
        }
        let mut doc = json!({
            "store": store,
            "mode": plan.mode.name(),
            "jobs": plan.jobs,
            "workers": plan.workers,
            "batch": plan.batch,
            "concurrency": plan.concurrency,
            "put_batch": plan.put_batch,
            "repeat": plan.repeat,
            "scenarios": scenarios,
        });
        if let Some(c) = &self.ceiling {
            let mut v = c.to_json();
            v["jobs"] = json!(plan.jobs);
            v["ratio"] = json!(self.ratio());
            doc["ceiling"] = v;
        }
        if plan.scenarios.contains(&"depth") {
            let mut depth = json!({
                "depths": plan.depths,
                "server_rss_kb": self.server_rss_kb,
            });
            for (key, figure) in [("put_ratio", "put_per_sec"), ("pop_ratio", "pop_per_sec")] {
                depth[key] = json!(self.depth_ratio(figure).map(|(_, _, r)| r));
            }
            doc["depth"] = depth;
        }
        doc
    }

    fn to_table(&self, store: &str, plan: &Plan) -> String {
        let mut t = clew::table::Table::new(["SCENARIO", "FIGURE", "MEDIAN", "RUNS"]);
        let mut add = |scenario: &str, figures: &Figures| {
            for (name, values) in &figures.0 {
                let runs: Vec<String> = values.iter().map(|v| show(name, *v)).collect();
                t.row([
                    scenario.to_owned(),
                    label(name).to_owned(),
                    show(name, median(values)),
                    runs.join(" "),
                ]);
            }
        };
        for row in &self.rows {
            add(&row.name, &row.figures);
        }
        if let Some(c) = &self.ceiling {
            add("ceiling", c);
        }
        let place = match &plan.mode {
            Mode::InProcess => "in-process".to_owned(),
            Mode::Server => format!(
                "through clew server (lifecycle, latency: {} clew work --noop process(es) × concurrency {})",
                plan.workers, plan.batch
            ),
            Mode::Url(url) => format!(
                "through {url} (lifecycle, latency: {} clew work --noop process(es) × concurrency {})",
                plan.workers, plan.batch
            ),
        };
        let mut out = format!(
            "clew bench: {store} store, {place}; {} jobs, {} workers × batch {}, concurrency {}, put batch {}, median of {} run(s)\n",
            plan.jobs, plan.workers, plan.batch, plan.concurrency, plan.put_batch, plan.repeat
        );
        out.push_str(&t.render());
        if let Some(r) = self.ratio() {
            out.push_str(&format!(
                "lifecycle / ceiling: {:.2} ({:.0}% of the bare SQL)\n",
                r,
                r * 100.0
            ));
        }
        for (what, figure) in [("put", "put_per_sec"), ("pop", "pop_per_sec")] {
            if let Some((low, high, r)) = self.depth_ratio(figure) {
                out.push_str(&format!(
                    "depth {what}: {r:.2} (rate at {high} waiting / rate at {low})\n"
                ));
            }
        }
        if let Some(kb) = self.server_rss_kb {
            out.push_str(&format!(
                "server resident memory after the largest prefill: {:.1} MB\n",
                kb as f64 / 1024.0
            ));
        }
        out
    }
}

/// A figure's name in the table.
fn label(name: &str) -> &str {
    match name {
        "jobs_per_sec" => "jobs/s",
        "put_per_sec" => "put jobs/s",
        "pop_per_sec" => "pop jobs/s",
        "p50_ms" => "p50 ms",
        "p99_ms" => "p99 ms",
        "max_ms" => "max ms",
        other => other,
    }
}

/// A figure's value in the table.
fn show(name: &str, v: f64) -> String {
    if name.ends_with("_ms") {
        format!("{v:.3}")
    } else {
        format!("{v:.0}")
    }
}

/// A progress bar on stderr (hidden when stderr is not a terminal).
fn bar(len: usize, message: String) -> ProgressBar {
    use std::io::IsTerminal;
    if !std::io::stderr().is_terminal() {
        return ProgressBar::hidden();
    }
    let bar = ProgressBar::new(len as u64);
    if let Ok(style) = ProgressStyle::with_template("{msg:24} [{bar:40}] {pos}/{len} ({per_sec})") {
        bar.set_style(style.progress_chars("=> "));
    }
    bar.set_message(message);
    bar
}

/// The engine or the server a run talks to.
#[derive(Clone)]
enum Conn {
    Engine(Engine),
    Client(Client),
}

impl Conn {
    async fn execute(&self, command: Command) -> Result<Value, Error> {
        match self {
            Conn::Engine(e) => Ok(e.execute(command).await?.to_json()),
            Conn::Client(c) => c.execute(command).await,
        }
    }

    async fn put(&self, params: PutParams) -> Result<(), Error> {
        match self {
            Conn::Engine(e) => e.put(params).await.map(drop),
            Conn::Client(c) => c.put(params).await.map(drop),
        }
    }

    async fn put_many(&self, jobs: Vec<PutParams>) -> Result<(), Error> {
        match self {
            Conn::Engine(e) => e.put_many(jobs).await.map(drop),
            Conn::Client(c) => c.put_many(jobs).await.map(drop),
        }
    }

    /// Pops up to `count` jobs; their jids.
    async fn pop(&self, queue: &str, worker: &str, count: usize) -> Result<Vec<String>, Error> {
        let count = count as i64;
        Ok(match self {
            Conn::Engine(e) => e
                .pop(queue, worker, count)
                .await?
                .iter()
                .map(|j| j.jid().to_owned())
                .collect(),
            Conn::Client(c) => c
                .pop(queue, worker, count)
                .await?
                .into_iter()
                .map(|j| j.jid)
                .collect(),
        })
    }

    /// Completes jobs in one transaction; fails on the first refusal.
    async fn complete_many(&self, jobs: Vec<CompleteParams>) -> Result<(), Error> {
        let results = match self {
            Conn::Engine(e) => e.complete_many(jobs).await?,
            Conn::Client(c) => c.complete_many(jobs).await?,
        };
        results.into_iter().try_for_each(|r| r.map(drop))
    }

    /// Running + waiting + scheduled jobs of `queue`.
    async fn length(&self, queue: &str) -> Result<i64, Error> {
        let v = self
            .execute(Command::Length {
                queue: queue.to_owned(),
            })
            .await?;
        v.as_i64()
            .ok_or_else(|| Error::store(format!("length: unexpected reply {v}")))
    }

    /// Jobs of `queue` completed on the days of `times` (from its stats).
    async fn completed(&self, queue: &str, times: &[clew_core::Timestamp]) -> Result<i64, Error> {
        let mut days: Vec<clew_core::Timestamp> = Vec::new();
        for t in times {
            if !days.iter().any(|d| d.day() == t.day()) {
                days.push(*t);
            }
        }
        let mut n = 0;
        for date in days {
            let v = self
                .execute(Command::Stats {
                    queue: queue.to_owned(),
                    date,
                })
                .await?;
            n += v.pointer("/run/count").and_then(Value::as_i64).unwrap_or(0);
        }
        Ok(n)
    }
}

/// A child process of the bench (a server or a worker): stopped with
/// SIGTERM by [`Proc::stop`], killed when dropped.
struct Proc {
    child: tokio::process::Child,
    what: String,
    log: PathBuf,
}

impl Proc {
    /// Spawns `exe ARGS...` with stdout to `stdout` and stderr appended to
    /// `log`; killed on drop.
    fn spawn(
        what: String,
        args: &[String],
        log: &Path,
        stdout: Stdio,
        env: &[(&str, &str)],
    ) -> anyhow::Result<Proc> {
        let exe = std::env::current_exe().context("finding the clew executable")?;
        let err = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(log)
            .with_context(|| format!("opening {}", log.display()))?;
        let mut cmd = tokio::process::Command::new(exe);
        for var in CHILD_ENV_CLEARED {
            cmd.env_remove(var);
        }
        for (k, v) in env {
            cmd.env(k, v);
        }
        cmd.args(args)
            .stdin(Stdio::null())
            .stdout(stdout)
            .stderr(err)
            .kill_on_drop(true);
        let child = cmd.spawn().with_context(|| format!("starting {what}"))?;
        Ok(Proc {
            child,
            what,
            log: log.to_owned(),
        })
    }

    fn pid(&self) -> Option<u32> {
        self.child.id()
    }

    /// An error if the process has exited, with the end of its log.
    fn check_alive(&mut self) -> anyhow::Result<()> {
        if let Ok(Some(status)) = self.child.try_wait() {
            anyhow::bail!("{} exited ({status}): {}", self.what, log_tail(&self.log));
        }
        Ok(())
    }

    /// SIGTERM, then SIGKILL after `grace`.
    async fn stop(mut self, grace: Duration) {
        terminate(&mut self.child, grace).await;
    }
}

/// The jids of a reply that lists them (`jobs`), in order; nothing for any
/// other reply.
pub(crate) fn jid_list(v: &Value) -> Vec<String> {
    v.as_array()
        .map(|a| {
            a.iter()
                .filter_map(|j| j.as_str().map(str::to_owned))
                .collect()
        })
        .unwrap_or_default()
}

/// Stops a child process: SIGTERM, then SIGKILL after `grace`; reaps it.
/// (`clew bench` and `clew chaos` stop their servers and workers so.)
pub(crate) async fn terminate(child: &mut tokio::process::Child, grace: Duration) {
    if let Some(pid) = child.id() {
        let _ = nix::sys::signal::kill(
            nix::unistd::Pid::from_raw(pid as i32),
            nix::sys::signal::Signal::SIGTERM,
        );
        if tokio::time::timeout(grace, child.wait()).await.is_err() {
            let _ = child.kill().await;
        }
    }
}

/// The last lines of a child's log (for an error message).
fn log_tail(log: &Path) -> String {
    let text = std::fs::read_to_string(log).unwrap_or_default();
    let lines: Vec<&str> = text.lines().filter(|l| !l.trim().is_empty()).collect();
    let tail = lines[lines.len().saturating_sub(5)..].join(" | ");
    if tail.is_empty() {
        "(nothing logged)".to_owned()
    } else {
        tail
    }
}

/// A server process's resident memory in kB (`VmRSS` of /proc/PID/status).
fn resident_kb(pid: u32) -> Option<u64> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    let line = status.lines().find(|l| l.starts_with("VmRSS:"))?;
    line.split_whitespace().nth(1)?.parse().ok()
}

/// What every run of a bench opens and uses.
struct Setup {
    /// `--db` when given on the command line; else each run opens a fresh
    /// temporary SQLite file.
    given: Option<StoreUrl>,
    options: StoreOptions,
    plan: Plan,
    /// Names this bench's files and queues.
    id: String,
    /// Where the ceiling's files go (next to the store's).
    ceiling_dir: PathBuf,
}

/// One run's store, and the processes serving it.
struct Session {
    conn: Conn,
    /// In-process: the engine's commits (what idle workers wait on).
    commits: Option<watch::Receiver<i64>>,
    /// The server's URL (a started one or `--url`).
    url: Option<String>,
    token: Option<String>,
    workers: Vec<Proc>,
    server: Option<Proc>,
    /// Temporary store and log files; dropped after the processes.
    files: TempFiles,
}

impl Session {
    /// Stops the workers, then the server (or closes the engine).
    async fn close(mut self) -> anyhow::Result<()> {
        for w in std::mem::take(&mut self.workers) {
            w.stop(Duration::from_secs(10)).await;
        }
        if let Some(server) = self.server.take() {
            server.stop(Duration::from_secs(30)).await;
        }
        if let Conn::Engine(engine) = &self.conn {
            engine.close().await?;
        }
        Ok(())
    }

    /// Fails if a child process has exited.
    fn check_children(&mut self) -> anyhow::Result<()> {
        for p in self.workers.iter_mut().chain(self.server.as_mut()) {
            p.check_alive()?;
        }
        Ok(())
    }

    /// Waits until `queue` holds nothing waiting, running or scheduled.
    /// A look is a `length` command (three counts in the store, served by
    /// the same writer or lock as the jobs being measured), so it looks
    /// rarely while much is left: after each look it sleeps half the time
    /// the rest would take at the rate seen so far ([`next_look`]), never
    /// less than [`POLL`] nor more than [`POLL_MAX`]. The end is still
    /// seen within [`POLL`] of the last completion, as long as the rate
    /// does not more than double.
    async fn drained(&mut self, queue: &str, timeout: Duration) -> anyhow::Result<()> {
        let started = Instant::now();
        let deadline = started + timeout;
        let mut first: Option<i64> = None;
        loop {
            let left = self.conn.length(queue).await?;
            if left == 0 {
                return Ok(());
            }
            self.check_children()?;
            if Instant::now() > deadline {
                anyhow::bail!("{queue}: not drained after {} s", timeout.as_secs());
            }
            let first = *first.get_or_insert(left);
            tokio::time::sleep(next_look(first, left, started.elapsed())).await;
        }
    }
}

/// The longest [`Session::drained`] sleeps between two looks.
const POLL_MAX: Duration = Duration::from_millis(100);

/// The pause before the next look at a draining queue: `first` jobs were
/// left at the first look, `left` now, `elapsed` since the first look.
/// Half the time the `left` jobs take at the rate so far, within
/// [`POLL`]..=[`POLL_MAX`]; [`POLL`] while no progress is seen.
fn next_look(first: i64, left: i64, elapsed: Duration) -> Duration {
    let done = first - left;
    if done <= 0 || left <= 0 {
        return POLL;
    }
    let rest = elapsed.mul_f64(left as f64 / done as f64 / 2.0);
    rest.clamp(POLL, POLL_MAX)
}

impl Setup {
    /// Runs every scenario `--repeat` times (and the ceiling after each
    /// lifecycle run).
    async fn all(&self) -> anyhow::Result<Report> {
        let mut report = Report::default();
        let mut ceiling = Figures::default();
        for &scenario in &self.plan.scenarios {
            if scenario == "depth" {
                self.depth(&mut report).await?;
                continue;
            }
            let jobs = match scenario {
                "latency" => self.plan.jobs.min(LATENCY_JOBS_MAX),
                _ => self.plan.jobs,
            };
            let parts: &[&'static str] = match scenario {
                "enqueue" => &["enqueue", "enqueue-batch"],
                "lifecycle" => &["lifecycle"],
                _ => &["latency"],
            };
            for &part in parts {
                let mut figures = Figures::default();
                for rep in 1..=self.plan.repeat {
                    figures.add(self.one(part, rep, jobs).await?);
                    if self.plan.ceiling && part == "lifecycle" {
                        let rate = match &self.given {
                            Some(StoreUrl::Postgres { url, .. }) => {
                                self.pg_ceiling(url, jobs, rep).await?
                            }
                            _ => {
                                let path = self
                                    .ceiling_dir
                                    .join(format!("clew-bench-{}-ceiling-{rep}.db", self.id));
                                let _files = TempFiles(vec![path.clone()]);
                                self.ceiling(path, jobs, rep).await?
                            }
                        };
                        ceiling.add(vec![("jobs_per_sec", rate)]);
                    }
                }
                report.rows.push(Row {
                    name: part.to_owned(),
                    jobs,
                    depth: None,
                    figures,
                });
            }
        }
        if self.plan.ceiling {
            report.ceiling = Some(ceiling);
        }
        Ok(report)
    }

    /// Opens the run's store (the given one or a fresh temporary file) and,
    /// through a server, starts it (unless `--url`).
    async fn open(&self, tag: &str) -> anyhow::Result<Session> {
        let mut files = TempFiles::default();
        let url = match &self.given {
            Some(url) => url.clone(),
            None => {
                let name = format!("clew-bench-{}-{tag}.db", self.id);
                let path = std::env::temp_dir().join(name);
                files.0.push(path.clone());
                StoreUrl::Sqlite(path)
            }
        };
        match &self.plan.mode {
            Mode::InProcess => {
                let store = url.open(&self.options)?;
                let (tx, commits) = watch::channel(0);
                let engine = Engine::new(store).with_sink(Arc::new(CommitSink(tx)));
                Ok(Session {
                    conn: Conn::Engine(engine),
                    commits: Some(commits),
                    url: None,
                    token: None,
                    workers: Vec::new(),
                    server: None,
                    files,
                })
            }
            Mode::Url(server) => Ok(Session {
                conn: Conn::Client(Client::remote(server, self.plan.token.clone())?),
                commits: None,
                url: Some(server.clone()),
                token: self.plan.token.clone(),
                workers: Vec::new(),
                server: None,
                files,
            }),
            Mode::Server => {
                let log = std::env::temp_dir().join(format!("clew-bench-{}-{tag}.log", self.id));
                files.0.push(log.clone());
                let (server, base) = self.start_server(&url, &log).await?;
                Ok(Session {
                    conn: Conn::Client(Client::remote(&base, None)?),
                    commits: None,
                    url: Some(base),
                    token: None,
                    workers: Vec::new(),
                    server: Some(server),
                    files,
                })
            }
        }
    }

    /// Starts `clew server` on `store` on a free loopback port; waits for
    /// its listening line and `/healthz`. Returns it and its base URL.
    async fn start_server(&self, store: &StoreUrl, log: &Path) -> anyhow::Result<(Proc, String)> {
        let mut args = vec!["--db".to_owned()];
        match store {
            StoreUrl::Sqlite(path) => args.push(format!("sqlite:{}", path.display())),
            StoreUrl::Postgres { url, pool } => {
                args.push(url.clone());
                if let Some(n) = self.options.pg_pool.or(*pool) {
                    args.extend(["--pg-pool".to_owned(), n.to_string()]);
                }
            }
        }
        if let Some(s) = &self.options.synchronous {
            args.extend(["--synchronous".to_owned(), s.clone()]);
        }
        args.extend(["server", "--listen", "127.0.0.1:0"].map(str::to_owned));
        let mut server = Proc::spawn("clew server".to_owned(), &args, log, Stdio::piped(), &[])?;
        let stdout = server.child.stdout.take().context("the server's stdout")?;
        let mut lines = tokio::io::BufReader::new(stdout).lines();
        let first = tokio::time::timeout(START_TIMEOUT, lines.next_line()).await;
        let base = match first {
            Ok(Ok(Some(line))) => line
                .trim()
                .strip_prefix("clew server listening on ")
                .map(str::to_owned),
            _ => None,
        };
        let Some(base) = base else {
            tokio::time::sleep(Duration::from_millis(100)).await;
            anyhow::bail!("clew server did not start: {}", log_tail(log));
        };
        // Keep reading its stdout, so a later line never blocks it.
        tokio::spawn(async move { while let Ok(Some(_)) = lines.next_line().await {} });
        let http = reqwest::Client::new();
        let deadline = Instant::now() + START_TIMEOUT;
        loop {
            let ok = http
                .get(format!("{base}/healthz"))
                .send()
                .await
                .is_ok_and(|r| r.status().is_success());
            if ok {
                break;
            }
            server.check_alive()?;
            if Instant::now() > deadline {
                anyhow::bail!("clew server at {base}: /healthz did not answer");
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        Ok((server, base))
    }

    /// Starts `--workers` `clew work --noop` processes on `queue` (each
    /// running `--batch` jobs at once) and waits until every one has popped
    /// a job (warm-up jobs, put into `queue` until each worker shows up in
    /// the store's worker list).
    async fn start_workers(&self, s: &mut Session, queue: &str) -> anyhow::Result<()> {
        let base = s.url.clone().context("workers need a server")?;
        let log = std::env::temp_dir().join(format!("clew-bench-{}-{queue}-workers.log", self.id));
        s.files.0.push(log.clone());
        let mut names = Vec::new();
        for w in 0..self.plan.workers {
            let name = format!("{queue}-w{w}");
            let args = [
                "--url",
                &base,
                "work",
                "--noop",
                "--queue",
                queue,
                "--concurrency",
                &self.plan.batch.to_string(),
                "--name",
                &name,
            ]
            .map(str::to_owned);
            let env: Vec<(&str, &str)> = s
                .token
                .as_deref()
                .map(|t| ("CLEW_TOKEN", t))
                .into_iter()
                .collect();
            let what = format!("clew work ({name})");
            s.workers
                .push(Proc::spawn(what, &args, &log, Stdio::null(), &env)?);
            names.push(name);
        }
        let deadline = Instant::now() + START_TIMEOUT;
        loop {
            let jobs = (0..self.plan.workers * self.plan.batch)
                .map(|_| put_params(queue))
                .collect();
            s.conn.put_many(jobs).await?;
            s.drained(queue, START_TIMEOUT).await?;
            let seen = s
                .conn
                .execute(Command::Workers {
                    worker: None,
                    detail: false,
                })
                .await?;
            let seen: Vec<&str> = seen
                .as_array()
                .map(|a| a.iter().filter_map(|w| w["name"].as_str()).collect())
                .unwrap_or_default();
            if names.iter().all(|n| seen.contains(&n.as_str())) {
                break;
            }
            if Instant::now() > deadline {
                anyhow::bail!(
                    "workers: {} of {} seen after {} s: {}",
                    names.iter().filter(|n| seen.contains(&n.as_str())).count(),
                    names.len(),
                    START_TIMEOUT.as_secs(),
                    log_tail(&log)
                );
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        Ok(())
    }

    /// One run of `scenario`.
    async fn one(
        &self,
        scenario: &str,
        rep: usize,
        jobs: usize,
    ) -> anyhow::Result<Vec<(&'static str, f64)>> {
        let mut s = self.open(&format!("{scenario}-{rep}")).await?;
        let queue = format!("bench-{}-{scenario}-{rep}", self.id);
        let message = format!("{scenario} {rep}/{}", self.plan.repeat);
        let bench = Bench {
            conn: s.conn.clone(),
            plan: self.plan.clone(),
        };
        let run = match scenario {
            "enqueue" => bench.enqueue(&queue, jobs, &message, false).await,
            "enqueue-batch" => bench.enqueue(&queue, jobs, &message, true).await,
            "lifecycle" if s.url.is_some() => {
                self.lifecycle_served(&mut s, &queue, jobs, &message).await
            }
            "lifecycle" => bench.lifecycle(&queue, jobs, &message).await,
            _ if s.url.is_some() => self.latency_served(&mut s, &queue, jobs, &message).await,
            _ => bench.latency(&s, &queue, jobs, &message).await,
        };
        let closed = s.close().await;
        let figures = run?;
        closed?;
        Ok(figures)
    }

    /// Lifecycle through a server: `clew work` processes already waiting;
    /// from the first put to the queue's drain.
    async fn lifecycle_served(
        &self,
        s: &mut Session,
        queue: &str,
        n: usize,
        message: &str,
    ) -> anyhow::Result<Vec<(&'static str, f64)>> {
        self.start_workers(s, queue).await?;
        let warm = s.conn.completed(queue, &[wall_now()]).await?;
        let bar = bar(n, message.to_owned());
        let first = wall_now();
        let start = Instant::now();
        let bench = Bench {
            conn: s.conn.clone(),
            plan: self.plan.clone(),
        };
        bench.put_batched(queue, n, &bar).await?;
        s.drained(queue, DRAIN_TIMEOUT).await?;
        let rate = n as f64 / start.elapsed().as_secs_f64();
        bar.finish_and_clear();
        let done = s.conn.completed(queue, &[first, wall_now()]).await? - warm;
        if done != n as i64 {
            anyhow::bail!("lifecycle: {done} of {n} jobs completed");
        }
        Ok(vec![("jobs_per_sec", rate)])
    }

    /// Latency through a server: idle `clew work` processes; each job's
    /// wait on the server's clock (its `dequeued` event's `time_in_queue`).
    async fn latency_served(
        &self,
        s: &mut Session,
        queue: &str,
        n: usize,
        message: &str,
    ) -> anyhow::Result<Vec<(&'static str, f64)>> {
        self.start_workers(s, queue).await?;
        let bar = bar(n, message.to_owned());
        let mut tick = tokio::time::interval(LATENCY_SPACING);
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        let mut jids = Vec::with_capacity(n);
        for _ in 0..n {
            tick.tick().await;
            let params = put_params(queue);
            jids.push(params.jid.clone());
            s.conn.put(params).await?;
            bar.inc(1);
        }
        s.drained(queue, DRAIN_TIMEOUT).await?;
        bar.finish_and_clear();
        let base = s.url.clone().context("a server")?;
        let waits = dequeue_waits(&base, s.token.as_deref(), queue).await?;
        let mut got: Vec<Duration> = jids
            .iter()
            .filter_map(|jid| waits.get(jid))
            .map(|secs| Duration::from_secs_f64(secs.max(0.0)))
            .collect();
        if got.len() < n {
            anyhow::bail!("latency: {} of {n} jobs have a dequeued event", got.len());
        }
        Ok(latency_figures(&mut got))
    }

    /// The depth scenario: per depth, one store filled once, then
    /// `--repeat` timed runs of puts and pops.
    async fn depth(&self, report: &mut Report) -> anyhow::Result<()> {
        let largest = *self.plan.depths.last().unwrap_or(&0);
        for &depth in &self.plan.depths {
            let mut s = self.open(&format!("depth-{depth}")).await?;
            let queue = format!("bench-{}-depth-{depth}", self.id);
            let bench = Bench {
                conn: s.conn.clone(),
                plan: self.plan.clone(),
            };
            let result = async {
                bench.prefill(&queue, depth).await?;
                if depth == largest {
                    report.server_rss_kb =
                        s.server.as_ref().and_then(Proc::pid).and_then(resident_kb);
                }
                let mut figures = Figures::default();
                for rep in 1..=self.plan.repeat {
                    let message = format!("depth {depth} {rep}/{}", self.plan.repeat);
                    figures.add(bench.depth_run(&queue, &message).await?);
                    s.check_children()?;
                }
                // A store of the user's (--db, --url) keeps no bench jobs.
                if self.given.is_some() || matches!(self.plan.mode, Mode::Url(_)) {
                    bench.cleanup(&queue).await?;
                }
                anyhow::Ok(figures)
            }
            .await;
            let closed = s.close().await;
            let figures = result?;
            closed?;
            report.rows.push(Row {
                name: format!("depth-{depth}"),
                jobs: self.plan.jobs,
                depth: Some(depth),
                figures,
            });
        }
        Ok(())
    }
}

/// The `time_in_queue` of every `dequeued` lifecycle event of `queue`, by
/// jid, read from the server's `GET /v1/events/search` page by page.
async fn dequeue_waits(
    base: &str,
    token: Option<&str>,
    queue: &str,
) -> anyhow::Result<HashMap<String, f64>> {
    let http = reqwest::Client::new();
    let mut waits = HashMap::new();
    let mut after = 0i64;
    loop {
        let mut rb = http.get(format!(
            "{base}/v1/events/search?queue={queue}&type=dequeued&limit=10000&after={after}"
        ));
        if let Some(t) = token {
            rb = rb.bearer_auth(t);
        }
        let resp = rb.send().await.context("GET /v1/events/search")?;
        let status = resp.status();
        let v: Value = resp.json().await.context("/v1/events/search: JSON")?;
        if !status.is_success() {
            anyhow::bail!("/v1/events/search: {status}: {v}");
        }
        for ev in v["events"].as_array().into_iter().flatten() {
            if let (Some(jid), Some(wait)) = (ev["jid"].as_str(), ev["time_in_queue"].as_f64()) {
                waits.insert(jid.to_owned(), wait);
            }
        }
        match v["next"].as_i64() {
            Some(next) if next > after => after = next,
            _ => return Ok(waits),
        }
    }
}

/// p50, p99 and max of `got` (sorted here), in milliseconds.
fn latency_figures(got: &mut [Duration]) -> Vec<(&'static str, f64)> {
    got.sort();
    let ms = |d: Duration| d.as_secs_f64() * 1000.0;
    vec![
        ("p50_ms", ms(percentile(got, 50))),
        ("p99_ms", ms(percentile(got, 99))),
        ("max_ms", ms(got[got.len() - 1])),
    ]
}

/// One run in progress.
struct Bench {
    conn: Conn,
    plan: Plan,
}

impl Bench {
    /// Puts `n` jobs into `queue`, one per call, from `--concurrency` tasks.
    async fn put_each(&self, queue: &str, n: usize, bar: &ProgressBar) -> anyhow::Result<()> {
        self.put_tasks(queue, n, 1, self.plan.concurrency, bar)
            .await
    }

    /// Puts `n` jobs into `queue`, `--put-batch` per `put_many`, from
    /// `--concurrency` tasks.
    async fn put_batched(&self, queue: &str, n: usize, bar: &ProgressBar) -> anyhow::Result<()> {
        self.put_tasks(queue, n, self.plan.put_batch, self.plan.concurrency, bar)
            .await
    }

    /// Puts `n` jobs into `queue`, `per_call` per call (one: `put`, more:
    /// `put_many`), from `tasks` tasks. Jids are clew's own (`new_jid`), as
    /// when a client leaves them out: their order decides how the stores'
    /// jid indexes grow, so a bench with jids of its own would not measure
    /// what users get.
    async fn put_tasks(
        &self,
        queue: &str,
        n: usize,
        per_call: usize,
        tasks: usize,
        bar: &ProgressBar,
    ) -> anyhow::Result<()> {
        let next = Arc::new(AtomicUsize::new(0));
        let mut set = tokio::task::JoinSet::new();
        for _ in 0..tasks.min(n.div_ceil(per_call)) {
            let (conn, next, queue, bar) = (
                self.conn.clone(),
                next.clone(),
                queue.to_owned(),
                bar.clone(),
            );
            set.spawn(async move {
                loop {
                    let first = next.fetch_add(per_call, Ordering::Relaxed);
                    if first >= n {
                        return Ok::<(), Error>(());
                    }
                    let last = (first + per_call).min(n);
                    if per_call == 1 {
                        conn.put(put_params(&queue)).await?;
                    } else {
                        let jobs = (first..last).map(|_| put_params(&queue)).collect();
                        conn.put_many(jobs).await?;
                    }
                    bar.inc((last - first) as u64);
                }
            });
        }
        while let Some(done) = set.join_next().await {
            done.context("a putting task panicked")??;
        }
        Ok(())
    }

    /// Pops and completes (`complete_many` of each pop) `n` jobs of
    /// `queue`, `--batch` at a time, from `--workers` tasks; stops early
    /// when the queue has nothing left to hand out. Returns the count
    /// completed.
    async fn pop_complete(
        &self,
        queue: &str,
        n: usize,
        bar: &ProgressBar,
    ) -> anyhow::Result<usize> {
        let left = Arc::new(AtomicUsize::new(n));
        let mut tasks = tokio::task::JoinSet::new();
        for w in 0..self.plan.workers {
            let (conn, queue, bar, left) = (
                self.conn.clone(),
                queue.to_owned(),
                bar.clone(),
                left.clone(),
            );
            let worker = format!("{queue}-w{w}");
            let batch = self.plan.batch;
            tasks.spawn(async move {
                let mut done = 0usize;
                loop {
                    let want = take(&left, batch);
                    if want == 0 {
                        return Ok::<usize, Error>(done);
                    }
                    let jids = conn.pop(&queue, &worker, want).await?;
                    left.fetch_add(want - jids.len(), Ordering::Relaxed);
                    if jids.is_empty() {
                        return Ok(done);
                    }
                    let count = jids.len();
                    let completes = jids
                        .iter()
                        .map(|jid| complete_params(&queue, &worker, jid))
                        .collect();
                    conn.complete_many(completes).await?;
                    done += count;
                    bar.inc(count as u64);
                }
            });
        }
        let mut completed = 0;
        while let Some(done) = tasks.join_next().await {
            completed += done.context("a worker task panicked")??;
        }
        Ok(completed)
    }

    async fn enqueue(
        &self,
        queue: &str,
        n: usize,
        message: &str,
        batched: bool,
    ) -> anyhow::Result<Vec<(&'static str, f64)>> {
        let bar = bar(n, message.to_owned());
        let start = Instant::now();
        if batched {
            self.put_batched(queue, n, &bar).await?;
        } else {
            self.put_each(queue, n, &bar).await?;
        }
        let rate = n as f64 / start.elapsed().as_secs_f64();
        bar.finish_and_clear();
        Ok(vec![("jobs_per_sec", rate)])
    }

    async fn lifecycle(
        &self,
        queue: &str,
        n: usize,
        message: &str,
    ) -> anyhow::Result<Vec<(&'static str, f64)>> {
        let bar = bar(2 * n, message.to_owned());
        let start = Instant::now();
        self.put_batched(queue, n, &bar).await?;
        let completed = self.pop_complete(queue, n, &bar).await?;
        let rate = n as f64 / start.elapsed().as_secs_f64();
        bar.finish_and_clear();
        if completed != n {
            anyhow::bail!("lifecycle: {completed} of {n} jobs completed");
        }
        Ok(vec![("jobs_per_sec", rate)])
    }

    async fn latency(
        &self,
        s: &Session,
        queue: &str,
        n: usize,
        message: &str,
    ) -> anyhow::Result<Vec<(&'static str, f64)>> {
        let (Conn::Engine(engine), Some(commits)) = (&self.conn, &s.commits) else {
            anyhow::bail!("latency in-process: no engine");
        };
        let bar = bar(n, message.to_owned());
        let started: Arc<Mutex<HashMap<String, Instant>>> = Arc::default();
        let (samples_tx, mut samples) = tokio::sync::mpsc::unbounded_channel();
        let (stop_tx, stop) = watch::channel(false);
        let mut workers = tokio::task::JoinSet::new();
        for w in 0..self.plan.workers {
            let waiter = Waiter {
                engine: engine.clone(),
                commits: commits.clone(),
                stop: stop.clone(),
                queue: queue.to_owned(),
                worker: format!("{queue}-w{w}"),
                started: started.clone(),
                samples: samples_tx.clone(),
            };
            workers.spawn(waiter.run());
        }
        drop(samples_tx);
        let mut tick = tokio::time::interval(LATENCY_SPACING);
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        let mut put_error = None;
        for _ in 0..n {
            tick.tick().await;
            let params = put_params(queue);
            lock(&started).insert(params.jid.clone(), Instant::now());
            if let Err(e) = engine.put(params).await {
                put_error = Some(e);
                break;
            }
        }
        let mut got = Vec::with_capacity(n);
        while put_error.is_none() && got.len() < n {
            match samples.recv().await {
                Some(d) => {
                    got.push(d);
                    bar.inc(1);
                }
                None => break,
            }
        }
        stop_tx.send_replace(true);
        while let Some(done) = workers.join_next().await {
            done.context("a waiting worker panicked")??;
        }
        bar.finish_and_clear();
        if let Some(e) = put_error {
            return Err(e.into());
        }
        if got.len() < n {
            anyhow::bail!("latency: {} of {n} jobs started", got.len());
        }
        Ok(latency_figures(&mut got))
    }

    /// Fills `queue` with `depth` jobs, [`PREFILL_BATCH`] per `put_many`
    /// (not timed).
    async fn prefill(&self, queue: &str, depth: usize) -> anyhow::Result<()> {
        let bar = bar(depth, format!("prefill {depth}"));
        let tasks = self.plan.concurrency.min(4);
        self.put_tasks(queue, depth, PREFILL_BATCH, tasks, &bar)
            .await?;
        bar.finish_and_clear();
        Ok(())
    }

    /// One timed run at depth: `--jobs` puts one per call, then `--jobs`
    /// pops (completed in batches).
    async fn depth_run(
        &self,
        queue: &str,
        message: &str,
    ) -> anyhow::Result<Vec<(&'static str, f64)>> {
        let n = self.plan.jobs;
        let bar = bar(2 * n, message.to_owned());
        let start = Instant::now();
        self.put_tasks(queue, n, 1, self.plan.concurrency, &bar)
            .await?;
        let put = n as f64 / start.elapsed().as_secs_f64();
        let start = Instant::now();
        let popped = self.pop_complete(queue, n, &bar).await?;
        let pop = n as f64 / start.elapsed().as_secs_f64();
        bar.finish_and_clear();
        if popped != n {
            anyhow::bail!("depth: {popped} of {n} jobs popped");
        }
        Ok(vec![("put_per_sec", put), ("pop_per_sec", pop)])
    }

    /// Cancels what is left in `queue` (on a store given with --db).
    async fn cleanup(&self, queue: &str) -> anyhow::Result<()> {
        loop {
            let v = self
                .conn
                .execute(Command::Jobs {
                    listing: JobsListing::Waiting,
                    queue: queue.to_owned(),
                    offset: 0,
                    count: PREFILL_BATCH as i64,
                })
                .await?;
            let jids = jid_list(&v);
            if jids.is_empty() {
                return Ok(());
            }
            self.conn.execute(Command::Cancel { jids }).await?;
        }
    }
}

/// Takes up to `most` from `left`; what was taken.
fn take(left: &AtomicUsize, most: usize) -> usize {
    let mut taken = 0;
    let _ = left.fetch_update(Ordering::Relaxed, Ordering::Relaxed, |l| {
        taken = l.min(most);
        Some(l - taken)
    });
    taken
}

impl Setup {
    /// The bare SQL of `n` jobs' lives on a fresh file (see [`ceiling_run`]).
    async fn ceiling(&self, path: PathBuf, n: usize, rep: usize) -> anyhow::Result<f64> {
        let sizes = CeilingSizes {
            put: self.plan.put_batch,
            claim: self.plan.batch,
        };
        let synchronous = self
            .options
            .synchronous
            .clone()
            .unwrap_or_else(|| "normal".to_owned());
        let bar = bar(2 * n, format!("ceiling {rep}/{}", self.plan.repeat));
        let progress = bar.clone();
        let rate = tokio::task::spawn_blocking(move || {
            ceiling_run(&path, &synchronous, n, sizes, &progress)
                .with_context(|| format!("ceiling on {}", path.display()))
        })
        .await
        .context("the ceiling task panicked")??;
        bar.finish_and_clear();
        Ok(rate)
    }
}

/// The time now (the servers' clock: the same machine's).
fn wall_now() -> clew_core::Timestamp {
    use clew_core::Clock;
    clew_core::SystemClock.now()
}

impl Setup {
    /// The bare SQL of `n` jobs' lives on PostgreSQL at `url`, in a
    /// temporary schema (see [`pg_ceiling_run`]).
    async fn pg_ceiling(&self, url: &str, n: usize, rep: usize) -> anyhow::Result<f64> {
        let run = PgCeiling {
            url: without_params(url, &["schema", "pool"]),
            schema: format!("clew_bench_ceiling_{}_{rep}", self.id),
            sizes: CeilingSizes {
                put: self.plan.put_batch,
                claim: self.plan.batch,
            },
            connections: self.plan.workers,
        };
        let bar = bar(2 * n, format!("ceiling {rep}/{}", self.plan.repeat));
        let progress = bar.clone();
        let rate = tokio::task::spawn_blocking(move || {
            let schema = run.schema.clone();
            pg_ceiling_run(&run, n, &progress)
                .with_context(|| format!("ceiling in PostgreSQL schema {schema}"))
        })
        .await
        .context("the ceiling task panicked")??;
        bar.finish_and_clear();
        Ok(rate)
    }
}

/// The nearest-rank percentile `p` of sorted, non-empty `values`.
fn percentile(values: &[Duration], p: usize) -> Duration {
    let rank = (values.len() * p).div_ceil(100).max(1);
    values[rank - 1]
}

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
}

/// An idle worker of the latency scenario.
struct Waiter {
    engine: Engine,
    commits: watch::Receiver<i64>,
    stop: watch::Receiver<bool>,
    queue: String,
    worker: String,
    started: Arc<Mutex<HashMap<String, Instant>>>,
    samples: tokio::sync::mpsc::UnboundedSender<Duration>,
}

impl Waiter {
    /// Waits for a job, pops it (one), notes the time since its put began,
    /// completes it; until told to stop.
    async fn run(self) -> Result<(), Error> {
        let queues = [self.queue.clone()];
        while !*self.stop.borrow() {
            self.engine
                .wait_for_jobs(WaitFor {
                    queues: &queues,
                    timeout: Duration::from_secs(1),
                    start: self.engine.now(),
                    commits: Some(self.commits.clone()),
                    stop: Some(self.stop.clone()),
                })
                .await?;
            for job in self.engine.pop(&self.queue, &self.worker, 1).await? {
                let popped = Instant::now();
                if let Some(at) = lock(&self.started).remove(job.jid()) {
                    let _ = self.samples.send(popped - at);
                }
                self.engine
                    .complete(complete_params(&self.queue, &self.worker, job.jid()))
                    .await?;
            }
        }
        Ok(())
    }
}

/// The put of a bench job `jid` into `queue`.
fn put_params(queue: &str) -> PutParams {
    PutParams {
        worker: "clew-bench".to_owned(),
        queue: queue.to_owned(),
        jid: clew_core::engine::new_jid(),
        klass: "Bench::Noop".to_owned(),
        data: "{}".to_owned(),
        ..PutParams::default()
    }
}

/// `worker`'s completion of `jid`.
fn complete_params(queue: &str, worker: &str, jid: &str) -> CompleteParams {
    CompleteParams {
        jid: jid.to_owned(),
        worker: worker.to_owned(),
        queue: queue.to_owned(),
        data: "{}".to_owned(),
        next: None,
        delay: 0.0,
        depends: Vec::new(),
        metadata: None,
    }
}

/// Jobs per transaction of the ceiling.
#[derive(Clone, Copy, Debug)]
struct CeilingSizes {
    /// Inserts: `--put-batch` (a `put_many`).
    put: usize,
    /// Claims and finishes: `--batch` (a pop's count, a `complete_many`).
    claim: usize,
}

const CEILING_SCHEMA: &str = "
CREATE TABLE jobs (
    jid TEXT PRIMARY KEY,
    queue TEXT NOT NULL,
    klass TEXT NOT NULL,
    data TEXT NOT NULL,
    state TEXT NOT NULL,
    priority INTEGER NOT NULL,
    seq INTEGER NOT NULL,
    worker TEXT NOT NULL DEFAULT '',
    expires INTEGER NOT NULL DEFAULT 0
);
CREATE INDEX jobs_waiting ON jobs (queue, state, priority DESC, seq);
CREATE TABLE history (
    id INTEGER PRIMARY KEY,
    jid TEXT NOT NULL,
    at INTEGER NOT NULL,
    what TEXT NOT NULL,
    worker TEXT NOT NULL
);
CREATE INDEX history_jid ON history (jid);
";

/// Runs the bare SQL of `n` jobs' lives on a fresh file at `path` (WAL,
/// `synchronous` as the store): insert each job row and its `put` history
/// row in transactions of `sizes.put` jobs; then, until none is left, claim
/// `sizes.claim` jobs with one UPDATE and a `popped` history row each in
/// one transaction, and finish them (an UPDATE and a `done` history row
/// each) in another. Returns jobs per second.
fn ceiling_run(
    path: &Path,
    synchronous: &str,
    n: usize,
    sizes: CeilingSizes,
    bar: &ProgressBar,
) -> anyhow::Result<f64> {
    let mut conn = rusqlite::Connection::open(path)?;
    conn.query_row("PRAGMA journal_mode = WAL", [], |_| Ok(()))?;
    conn.pragma_update(None, "synchronous", synchronous)?;
    conn.execute_batch(CEILING_SCHEMA)?;
    let now = || {
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.as_micros() as i64)
            .unwrap_or(0)
    };
    const HISTORY: &str = "INSERT INTO history (jid, at, what, worker) VALUES (?1, ?2, ?3, ?4)";
    let start = Instant::now();
    for first in (0..n).step_by(sizes.put.max(1)) {
        let tx = conn.transaction()?;
        {
            let mut job = tx.prepare_cached(
                "INSERT INTO jobs (jid, queue, klass, data, state, priority, seq) \
                 VALUES (?1, 'q', 'Bench::Noop', '{}', 'waiting', 0, ?2)",
            )?;
            let mut history = tx.prepare_cached(HISTORY)?;
            for i in first..(first + sizes.put).min(n) {
                let jid = format!("ceiling-{i}");
                job.execute(rusqlite::params![jid, i as i64])?;
                history.execute(rusqlite::params![jid, now(), "put", "clew-bench"])?;
            }
        }
        tx.commit()?;
        bar.inc(((first + sizes.put).min(n) - first) as u64);
    }
    let mut finished = 0;
    loop {
        let tx = conn.transaction()?;
        let jids: Vec<String> = {
            let mut claim = tx.prepare_cached(
                "UPDATE jobs SET state = 'running', worker = 'w', expires = ?1 \
                 WHERE jid IN (SELECT jid FROM jobs WHERE queue = 'q' AND state = 'waiting' \
                 ORDER BY priority DESC, seq LIMIT ?2) RETURNING jid",
            )?;
            let rows =
                claim.query_map(rusqlite::params![now(), sizes.claim as i64], |r| r.get(0))?;
            let jids: Vec<String> = rows.collect::<Result<_, _>>()?;
            let mut history = tx.prepare_cached(HISTORY)?;
            for jid in &jids {
                history.execute(rusqlite::params![jid, now(), "popped", "w"])?;
            }
            jids
        };
        tx.commit()?;
        if jids.is_empty() {
            break;
        }
        let tx = conn.transaction()?;
        {
            let mut finish = tx.prepare_cached(
                "UPDATE jobs SET state = 'complete', worker = '', expires = 0 \
                 WHERE jid = ?1 AND worker = 'w'",
            )?;
            let mut history = tx.prepare_cached(HISTORY)?;
            for jid in &jids {
                finish.execute([jid])?;
                history.execute(rusqlite::params![jid, now(), "done", "w"])?;
            }
        }
        tx.commit()?;
        finished += jids.len();
        bar.inc(jids.len() as u64);
    }
    let rate = n as f64 / start.elapsed().as_secs_f64();
    if finished != n {
        anyhow::bail!("{finished} of {n} jobs finished");
    }
    Ok(rate)
}

/// A PostgreSQL ceiling run: where, and how much at once.
#[derive(Clone, Debug)]
struct PgCeiling {
    /// The connection URL (no `schema` or `pool` parameter).
    url: String,
    /// The temporary schema (created, then dropped).
    schema: String,
    sizes: CeilingSizes,
    /// Connections inserting, then claiming and finishing, at once.
    connections: usize,
}

/// `url` without the query parameters named in `names`.
fn without_params(url: &str, names: &[&str]) -> String {
    let Some((base, query)) = url.split_once('?') else {
        return url.to_owned();
    };
    let kept: Vec<&str> = query
        .split('&')
        .filter(|p| !p.is_empty())
        .filter(|p| !names.contains(&p.split_once('=').map_or(*p, |(k, _)| k)))
        .collect();
    if kept.is_empty() {
        base.to_owned()
    } else {
        format!("{base}?{}", kept.join("&"))
    }
}

const PG_CEILING_SCHEMA: &str = "
CREATE TABLE jobs (
    jid TEXT PRIMARY KEY,
    queue TEXT NOT NULL,
    klass TEXT NOT NULL,
    data TEXT NOT NULL,
    state TEXT NOT NULL,
    priority BIGINT NOT NULL,
    seq BIGINT NOT NULL,
    worker TEXT NOT NULL DEFAULT '',
    expires BIGINT NOT NULL DEFAULT 0
);
CREATE INDEX jobs_waiting ON jobs (queue, state, priority DESC, seq);
CREATE TABLE history (
    id BIGSERIAL PRIMARY KEY,
    jid TEXT NOT NULL,
    at BIGINT NOT NULL,
    what TEXT NOT NULL,
    worker TEXT NOT NULL
);
CREATE INDEX history_jid ON history (jid);
";

/// Drops the ceiling's schema when the run ends (or fails).
struct DropSchema<'a> {
    url: &'a str,
    schema: &'a str,
}

impl Drop for DropSchema<'_> {
    fn drop(&mut self) {
        if let Ok(mut c) = postgres::Client::connect(self.url, postgres::NoTls) {
            let _ = c.batch_execute(&format!(
                "DROP SCHEMA IF EXISTS \"{}\" CASCADE",
                self.schema
            ));
        }
    }
}

/// Runs the bare SQL of `n` jobs' lives in a temporary schema (default
/// `synchronous_commit`, as the store): `connections` connections insert
/// the job rows and their `put` history rows in transactions of `sizes.put`
/// jobs; then each, until none is left, claims `sizes.claim` jobs (one
/// UPDATE of a `FOR UPDATE SKIP LOCKED` selection, and their `popped`
/// history rows) in one transaction and finishes them (an UPDATE and the
/// `done` history rows) in another. Every step is one set-based statement
/// (arrays bound with `unnest` / `ANY`), so each transaction costs a few
/// round trips whatever its size: the database's limit, not the driver's.
/// Returns jobs per second.
fn pg_ceiling_run(run: &PgCeiling, n: usize, bar: &ProgressBar) -> anyhow::Result<f64> {
    let connect = || -> anyhow::Result<postgres::Client> {
        let mut c = postgres::Client::connect(&run.url, postgres::NoTls)
            .with_context(|| format!("connecting to {}", run.url))?;
        c.batch_execute(&format!("SET search_path TO \"{}\"", run.schema))?;
        Ok(c)
    };
    let mut admin = postgres::Client::connect(&run.url, postgres::NoTls)
        .with_context(|| format!("connecting to {}", run.url))?;
    let _drop = DropSchema {
        url: &run.url,
        schema: &run.schema,
    };
    admin.batch_execute(&format!(
        "CREATE SCHEMA \"{0}\"; SET search_path TO \"{0}\"; {PG_CEILING_SCHEMA}",
        run.schema
    ))?;
    let mut conns = (0..run.connections.max(1))
        .map(|_| connect())
        .collect::<anyhow::Result<Vec<_>>>()?;
    let now = || {
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.as_micros() as i64)
            .unwrap_or(0)
    };
    // Set-based: each step is one statement (one round trip) for the whole
    // batch, arrays bound as parameters; `now()` per statement, as the
    // store stamps one time per command.
    const HISTORY: &str = "INSERT INTO history (jid, at, what, worker) \
         SELECT j, $2, $3, $4 FROM unnest($1::text[]) AS j";
    let next = AtomicUsize::new(0);
    let start = Instant::now();
    std::thread::scope(|scope| -> anyhow::Result<()> {
        let mut threads = Vec::new();
        for c in conns.iter_mut() {
            let next = &next;
            threads.push(scope.spawn(move || -> anyhow::Result<()> {
                let job = c.prepare(
                    "INSERT INTO jobs (jid, queue, klass, data, state, priority, seq) \
                     SELECT j, 'q', 'Bench::Noop', '{}', 'waiting', 0, s \
                     FROM unnest($1::text[], $2::bigint[]) AS t(j, s)",
                )?;
                let history = c.prepare(HISTORY)?;
                loop {
                    let first = next.fetch_add(run.sizes.put, Ordering::Relaxed);
                    if first >= n {
                        return Ok(());
                    }
                    let last = (first + run.sizes.put).min(n);
                    let jids: Vec<String> = (first..last).map(|i| format!("ceiling-{i}")).collect();
                    let seqs: Vec<i64> = (first..last).map(|i| i as i64).collect();
                    let mut tx = c.transaction()?;
                    tx.execute(&job, &[&jids, &seqs])?;
                    tx.execute(&history, &[&jids, &now(), &"put", &"clew-bench"])?;
                    tx.commit()?;
                    bar.inc((last - first) as u64);
                }
            }));
        }
        for t in threads {
            t.join()
                .map_err(|_| anyhow::anyhow!("a ceiling thread panicked"))??;
        }
        Ok(())
    })?;
    let finished = AtomicUsize::new(0);
    std::thread::scope(|scope| -> anyhow::Result<()> {
        let mut threads = Vec::new();
        for (w, c) in conns.iter_mut().enumerate() {
            let finished = &finished;
            threads.push(scope.spawn(move || -> anyhow::Result<()> {
                let worker = format!("w{w}");
                let claim = c.prepare(
                    "UPDATE jobs SET state = 'running', worker = $1, expires = $2 \
                     WHERE jid IN (SELECT jid FROM jobs WHERE queue = 'q' AND state = 'waiting' \
                     ORDER BY priority DESC, seq LIMIT $3 FOR UPDATE SKIP LOCKED) RETURNING jid",
                )?;
                let finish = c.prepare(
                    "UPDATE jobs SET state = 'complete', worker = '', expires = 0 \
                     WHERE jid = ANY($1::text[]) AND worker = $2",
                )?;
                let history = c.prepare(HISTORY)?;
                loop {
                    let mut tx = c.transaction()?;
                    let rows = tx.query(&claim, &[&worker, &now(), &(run.sizes.claim as i64)])?;
                    let jids: Vec<String> = rows.iter().map(|r| r.get(0)).collect();
                    if jids.is_empty() {
                        tx.commit()?;
                        return Ok(());
                    }
                    tx.execute(&history, &[&jids, &now(), &"popped", &worker])?;
                    tx.commit()?;
                    let mut tx = c.transaction()?;
                    tx.execute(&finish, &[&jids, &worker])?;
                    tx.execute(&history, &[&jids, &now(), &"done", &worker])?;
                    tx.commit()?;
                    finished.fetch_add(jids.len(), Ordering::Relaxed);
                    bar.inc(jids.len() as u64);
                }
            }));
        }
        for t in threads {
            t.join()
                .map_err(|_| anyhow::anyhow!("a ceiling thread panicked"))??;
        }
        Ok(())
    })?;
    let rate = n as f64 / start.elapsed().as_secs_f64();
    let finished = finished.into_inner();
    if finished != n {
        anyhow::bail!("{finished} of {n} jobs finished");
    }
    drop(conns);
    Ok(rate)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_draining_queue_is_looked_at_rarely_early_and_often_late() {
        let ms = Duration::from_millis;
        // No progress seen yet: the shortest pause.
        assert_eq!(next_look(1000, 1000, ms(50)), POLL);
        // 100 of 10,000 done in 10 ms: the rest takes ~1 s, capped.
        assert_eq!(next_look(10_000, 9_900, ms(10)), POLL_MAX);
        // Half done in 400 ms: half of the ~400 ms left.
        assert_eq!(next_look(10_000, 5_000, ms(400)), ms(200).min(POLL_MAX));
        // 9,000 of 10,000 done in 900 ms: 50 ms (half of the ~100 ms left).
        assert_eq!(next_look(10_000, 1_000, ms(900)), ms(50));
        // Near the end: never less than POLL.
        assert_eq!(next_look(10_000, 1, ms(1000)), POLL);
    }

    #[test]
    fn medians_and_percentiles() {
        assert_eq!(median(&[3.0, 1.0, 2.0]), 2.0);
        assert_eq!(median(&[4.0, 1.0, 2.0, 3.0]), 2.5);
        let ms: Vec<Duration> = (1..=100).map(Duration::from_millis).collect();
        assert_eq!(percentile(&ms, 50), Duration::from_millis(50));
        assert_eq!(percentile(&ms, 99), Duration::from_millis(99));
        assert_eq!(percentile(&ms[..1], 99), Duration::from_millis(1));
    }

    #[test]
    fn pg_urls_lose_clews_own_parameters() {
        let names = ["schema", "pool"];
        assert_eq!(
            without_params("postgres://u@h/db?schema=s&pool=2", &names),
            "postgres://u@h/db"
        );
        assert_eq!(
            without_params("postgres://u@h/db?sslmode=disable&schema=s", &names),
            "postgres://u@h/db?sslmode=disable"
        );
        assert_eq!(
            without_params("postgres://u@h/db", &names),
            "postgres://u@h/db"
        );
    }

    #[test]
    fn take_hands_out_at_most_what_is_left() {
        let left = AtomicUsize::new(5);
        assert_eq!(take(&left, 3), 3);
        assert_eq!(take(&left, 3), 2);
        assert_eq!(take(&left, 3), 0);
    }
}
