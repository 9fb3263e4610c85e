//! `clew bench`: throughput and latency of the store, in-process.
//!
//! Scenarios (each run `--repeat` times; every figure printed is the median
//! of the runs):
//! * `enqueue`: `--jobs` jobs put one per call by `--concurrency` tasks;
//!   jobs per second.
//! * `lifecycle`: `--jobs` no-op jobs put (as in `enqueue`), then popped
//!   `--batch` at a time and completed one by one by `--workers` tasks;
//!   jobs per second over the whole (put, pop and complete).
//! * `latency`: `--workers` idle tasks wait for jobs
//!   ([`clew_core::Engine::wait_for_jobs`], answered on the commit), while
//!   jobs are put one at a time every 5 ms (at most [`LATENCY_JOBS_MAX`]);
//!   enqueue-to-start p50 / p99 / max, from the put call's start to the
//!   pop's return.
//!
//! `--ceiling` (SQLite only) also runs, after each lifecycle run, the bare
//! SQL of a job's life directly with rusqlite on a fresh file next to the
//! store's (same pragmas), in the same batch sizes, and prints the
//! lifecycle figure as a ratio of it.
//!
//! Without `--db` on the command line, each run opens a fresh temporary
//! SQLite file (deleted after the run), so no run measures what an earlier
//! one left behind. With `--db`, every run uses that store, and whatever it
//! holds, in a queue of its own.

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use anyhow::Context;
use clap::parser::ValueSource;
use clap::ArgMatches;
use clew_core::command::{CompleteParams, PutParams};
use clew_core::engine::WaitFor;
use clew_core::{Engine, Error, Event, EventSink};
use indicatif::{ProgressBar, ProgressStyle};
use serde_json::{json, Map, Value};
use tokio::sync::watch;

use crate::store_url::{StoreOptions, StoreUrl};

/// The scenarios, in the order they run by default.
pub const SCENARIOS: [&str; 3] = ["enqueue", "lifecycle", "latency"];

/// The most jobs the latency scenario puts (one every 5 ms).
pub const LATENCY_JOBS_MAX: usize = 1000;

/// The pause between two puts of the latency scenario.
const LATENCY_SPACING: Duration = Duration::from_millis(5);

/// `clew bench`'s options.
#[derive(Debug, clap::Args)]
pub struct BenchArgs {
    /// A scenario to run: enqueue, lifecycle or latency; repeatable
    /// (default: all).
    #[arg(long = "scenario", value_name = "NAME")]
    pub scenarios: Vec<String>,
    /// Jobs per run (the latency scenario puts at most 1,000).
    #[arg(long, default_value_t = 10_000)]
    pub jobs: usize,
    /// Worker tasks popping and completing (lifecycle) or waiting (latency).
    #[arg(long, default_value_t = 4)]
    pub workers: usize,
    /// Jobs a worker pops at once (lifecycle).
    #[arg(long, default_value_t = 25)]
    pub batch: usize,
    /// Tasks putting jobs at once (enqueue, and the puts of lifecycle).
    #[arg(long, default_value_t = 16)]
    pub concurrency: usize,
    /// Runs of each scenario; the median is printed.
    #[arg(long, default_value_t = 3)]
    pub repeat: usize,
    /// Also measure the bare SQL of a job's life (SQLite only) and print
    /// the lifecycle figure as a ratio of it.
    #[arg(long)]
    pub ceiling: bool,
    /// Whether `--db` was given on the command line (else: a temporary
    /// SQLite file, never the ambient `CLEW_DB`).
    #[arg(skip)]
    pub db_given: bool,
}

/// Notes whether `--db` was given on the command line (see
/// [`BenchArgs::db_given`]).
pub fn note_db_source(mut cli: crate::Cli, matches: &ArgMatches) -> crate::Cli {
    if let crate::Cmd::Bench(args) = &mut cli.command {
        args.db_given = matches.value_source("db") == Some(ValueSource::CommandLine);
    }
    cli
}

/// The validated sizes of a bench.
#[derive(Clone, Debug)]
struct Plan {
    scenarios: Vec<&'static str>,
    jobs: usize,
    workers: usize,
    batch: usize,
    concurrency: usize,
    repeat: usize,
    ceiling: bool,
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
                        "--scenario: expected enqueue, lifecycle or latency, got {name:?}"
                    ))
                })?;
            if !scenarios.contains(known) {
                scenarios.push(*known);
            }
        }
        if scenarios.is_empty() {
            scenarios = SCENARIOS.to_vec();
        }
        at_least("--jobs", a.jobs, 1)?;
        at_least("--workers", a.workers, 1)?;
        at_least("--batch", a.batch, 1)?;
        at_least("--concurrency", a.concurrency, 1)?;
        at_least("--repeat", a.repeat, 1)?;
        if a.ceiling && !scenarios.contains(&"lifecycle") {
            return Err(Error::invalid(
                "--ceiling: compares the lifecycle scenario, which is not selected",
            )
            .into());
        }
        Ok(Plan {
            scenarios,
            jobs: a.jobs,
            workers: a.workers,
            batch: a.batch,
            concurrency: a.concurrency,
            repeat: a.repeat,
            ceiling: a.ceiling,
        })
    }
}

fn at_least(flag: &str, value: usize, min: usize) -> anyhow::Result<()> {
    if value < min {
        return Err(Error::invalid(format!("{flag}: expected {min} or more, got {value}")).into());
    }
    Ok(())
}

/// SQLite files (with their `-wal` and `-shm`) deleted on drop.
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
    let ceiling_dir = match (&given, plan.ceiling) {
        (Some(StoreUrl::Postgres { .. }), true) => {
            return Err(Error::invalid(
                "--ceiling: only on a SQLite store for now (--db sqlite:PATH)",
            )
            .into())
        }
        (Some(StoreUrl::Sqlite(path)), _) => file_dir(path),
        _ => std::env::temp_dir(),
    };
    let kind = match &given {
        Some(url) if url.is_shared() => "postgres",
        _ => "sqlite",
    };
    let setup = Setup {
        given,
        options: options.clone(),
        plan: plan.clone(),
        id: run_id(),
        ceiling_dir,
    };
    let report = setup.all().await?;
    let doc = report.to_json(kind, &plan);
    if json {
        crate::print_json(&doc)
    } else {
        crate::print_str(&report.to_table(kind, &plan))
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

/// What a bench measured.
#[derive(Debug, Default)]
struct Report {
    scenarios: Vec<(&'static str, usize, Figures)>,
    ceiling: Option<Figures>,
}

impl Report {
    fn ratio(&self) -> Option<f64> {
        let lifecycle = self
            .scenarios
            .iter()
            .find(|(n, _, _)| *n == "lifecycle")?
            .2
            .median("jobs_per_sec")?;
        Some(lifecycle / self.ceiling.as_ref()?.median("jobs_per_sec")?)
    }

    fn to_json(&self, store: &str, plan: &Plan) -> Value {
        let mut scenarios = Map::new();
        for (name, jobs, figures) in &self.scenarios {
            let mut v = figures.to_json();
            v["jobs"] = json!(jobs);
            scenarios.insert((*name).to_owned(), v);
        }
        let mut doc = json!({
            "store": store,
            "jobs": plan.jobs,
            "workers": plan.workers,
            "batch": plan.batch,
            "concurrency": plan.concurrency,
            "repeat": plan.repeat,
            "scenarios": scenarios,
        });
        if let Some(c) = &self.ceiling {
            let mut v = c.to_json();
            v["jobs"] = json!(plan.jobs);
            v["ratio"] = json!(self.ratio());
            doc["ceiling"] = v;
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
        for (name, _, figures) in &self.scenarios {
            add(name, figures);
        }
        if let Some(c) = &self.ceiling {
            add("ceiling", c);
        }
        let mut out = format!(
            "clew bench: {store} store, in-process; {} jobs, {} workers × batch {}, concurrency {}, median of {} run(s)\n",
            plan.jobs, plan.workers, plan.batch, plan.concurrency, plan.repeat
        );
        out.push_str(&t.render());
        if let Some(r) = self.ratio() {
            out.push_str(&format!(
                "lifecycle / ceiling: {:.2} ({:.0}% of the bare SQL)\n",
                r,
                r * 100.0
            ));
        }
        out
    }
}

/// A figure's name in the table.
fn label(name: &str) -> &str {
    match name {
        "jobs_per_sec" => "jobs/s",
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

impl Setup {
    /// Runs every scenario `--repeat` times (and the ceiling after each
    /// lifecycle run).
    async fn all(&self) -> anyhow::Result<Report> {
        let mut report = Report::default();
        let mut ceiling = Figures::default();
        for &scenario in &self.plan.scenarios {
            let jobs = match scenario {
                "latency" => self.plan.jobs.min(LATENCY_JOBS_MAX),
                _ => self.plan.jobs,
            };
            let mut figures = Figures::default();
            for rep in 1..=self.plan.repeat {
                figures.add(self.one(scenario, rep, jobs).await?);
                if self.plan.ceiling && scenario == "lifecycle" {
                    let path = self
                        .ceiling_dir
                        .join(format!("clew-bench-{}-ceiling-{rep}.db", self.id));
                    let _files = TempFiles(vec![path.clone()]);
                    let rate = self.ceiling(path, jobs, rep).await?;
                    ceiling.add(vec![("jobs_per_sec", rate)]);
                }
            }
            report.scenarios.push((scenario, jobs, figures));
        }
        if self.plan.ceiling {
            report.ceiling = Some(ceiling);
        }
        Ok(report)
    }

    /// One run of `scenario`, on the given store or a fresh temporary one.
    async fn one(
        &self,
        scenario: &str,
        rep: usize,
        jobs: usize,
    ) -> anyhow::Result<Vec<(&'static str, f64)>> {
        let mut files = TempFiles(Vec::new());
        let url = match &self.given {
            Some(url) => url.clone(),
            None => {
                let name = format!("clew-bench-{}-{scenario}-{rep}.db", self.id);
                let path = std::env::temp_dir().join(name);
                files.0.push(path.clone());
                StoreUrl::Sqlite(path)
            }
        };
        let store = url.open(&self.options)?;
        let (tx, commits) = watch::channel(0);
        let bench = Bench {
            engine: Engine::new(store).with_sink(Arc::new(CommitSink(tx))),
            commits,
            plan: self.plan.clone(),
        };
        let queue = format!("bench-{}-{scenario}-{rep}", self.id);
        let message = format!("{scenario} {rep}/{}", self.plan.repeat);
        let run = match scenario {
            "enqueue" => bench.enqueue(&queue, jobs, &message).await,
            "lifecycle" => bench.lifecycle(&queue, jobs, &message).await,
            _ => bench.latency(&queue, jobs, &message).await,
        };
        bench.engine.close().await?;
        drop(files);
        run
    }
}

/// One run in progress.
struct Bench {
    engine: Engine,
    commits: watch::Receiver<i64>,
    plan: Plan,
}

impl Bench {
    /// Puts `n` jobs into `queue`, one per call, from `--concurrency`
    /// tasks.
    async fn put_all(&self, queue: &str, n: usize, bar: &ProgressBar) -> anyhow::Result<()> {
        let next = Arc::new(AtomicUsize::new(0));
        let mut tasks = tokio::task::JoinSet::new();
        for _ in 0..self.plan.concurrency.min(n) {
            let (engine, next, queue, bar) = (
                self.engine.clone(),
                next.clone(),
                queue.to_owned(),
                bar.clone(),
            );
            tasks.spawn(async move {
                loop {
                    let i = next.fetch_add(1, Ordering::Relaxed);
                    if i >= n {
                        return Ok::<(), Error>(());
                    }
                    engine.put(put_params(&queue, i)).await?;
                    bar.inc(1);
                }
            });
        }
        while let Some(done) = tasks.join_next().await {
            done.context("a putting task panicked")??;
        }
        Ok(())
    }

    async fn enqueue(
        &self,
        queue: &str,
        n: usize,
        message: &str,
    ) -> anyhow::Result<Vec<(&'static str, f64)>> {
        let bar = bar(n, message.to_owned());
        let start = Instant::now();
        self.put_all(queue, n, &bar).await?;
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
        self.put_all(queue, n, &bar).await?;
        let mut tasks = tokio::task::JoinSet::new();
        for w in 0..self.plan.workers {
            let (engine, queue, bar) = (self.engine.clone(), queue.to_owned(), bar.clone());
            let worker = format!("{queue}-w{w}");
            let batch = self.plan.batch as i64;
            tasks.spawn(async move {
                let mut done = 0usize;
                loop {
                    let jobs = engine.pop(&queue, &worker, batch).await?;
                    if jobs.is_empty() {
                        return Ok::<usize, Error>(done);
                    }
                    for job in jobs {
                        engine
                            .complete(complete_params(&queue, &worker, job.jid()))
                            .await?;
                        done += 1;
                        bar.inc(1);
                    }
                }
            });
        }
        let mut completed = 0;
        while let Some(done) = tasks.join_next().await {
            completed += done.context("a worker task panicked")??;
        }
        let rate = n as f64 / start.elapsed().as_secs_f64();
        bar.finish_and_clear();
        if completed != n {
            anyhow::bail!("lifecycle: {completed} of {n} jobs completed");
        }
        Ok(vec![("jobs_per_sec", rate)])
    }

    async fn latency(
        &self,
        queue: &str,
        n: usize,
        message: &str,
    ) -> anyhow::Result<Vec<(&'static str, f64)>> {
        let bar = bar(n, message.to_owned());
        let started: Arc<Mutex<HashMap<String, Instant>>> = Arc::default();
        let (samples_tx, mut samples) = tokio::sync::mpsc::unbounded_channel();
        let (stop_tx, stop) = watch::channel(false);
        let mut workers = tokio::task::JoinSet::new();
        for w in 0..self.plan.workers {
            let waiter = Waiter {
                engine: self.engine.clone(),
                commits: self.commits.clone(),
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
        for i in 0..n {
            tick.tick().await;
            let params = put_params(queue, i);
            lock(&started).insert(params.jid.clone(), Instant::now());
            if let Err(e) = self.engine.put(params).await {
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
        got.sort();
        let ms = |d: Duration| d.as_secs_f64() * 1000.0;
        Ok(vec![
            ("p50_ms", ms(percentile(&got, 50))),
            ("p99_ms", ms(percentile(&got, 99))),
            ("max_ms", ms(got[got.len() - 1])),
        ])
    }
}

impl Setup {
    /// The bare SQL of `n` jobs' lives on a fresh file (see [`ceiling_run`]).
    async fn ceiling(&self, path: PathBuf, n: usize, rep: usize) -> anyhow::Result<f64> {
        let sizes = CeilingSizes {
            put: self.plan.concurrency,
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

/// The put of the bench's `i`th job into `queue`.
fn put_params(queue: &str, i: usize) -> PutParams {
    PutParams {
        worker: "clew-bench".to_owned(),
        queue: queue.to_owned(),
        jid: format!("{queue}-{i}"),
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
    /// Inserts: `--concurrency` (the most puts a group commit can batch).
    put: usize,
    /// Claims and finishes: `--batch` (a pop's count).
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
/// `synchronous` as the store): insert each job row and its history row in
/// transactions of `sizes.put` jobs; then claim `sizes.claim` jobs with one
/// UPDATE per transaction and finish them (an UPDATE and a history row
/// each) in one transaction, until none is left. Returns jobs per second.
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
    let start = Instant::now();
    for first in (0..n).step_by(sizes.put.max(1)) {
        let tx = conn.transaction()?;
        {
            let mut job = tx.prepare_cached(
                "INSERT INTO jobs (jid, queue, klass, data, state, priority, seq) \
                 VALUES (?1, 'q', 'Bench::Noop', '{}', 'waiting', 0, ?2)",
            )?;
            let mut history = tx.prepare_cached(
                "INSERT INTO history (jid, at, what, worker) VALUES (?1, ?2, 'put', 'clew-bench')",
            )?;
            for i in first..(first + sizes.put).min(n) {
                let jid = format!("ceiling-{i}");
                job.execute(rusqlite::params![jid, i as i64])?;
                history.execute(rusqlite::params![jid, now()])?;
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
            rows.collect::<Result<_, _>>()?
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
            let mut history = tx.prepare_cached(
                "INSERT INTO history (jid, at, what, worker) VALUES (?1, ?2, 'done', 'w')",
            )?;
            for jid in &jids {
                finish.execute([jid])?;
                history.execute(rusqlite::params![jid, now()])?;
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn medians_and_percentiles() {
        assert_eq!(median(&[3.0, 1.0, 2.0]), 2.0);
        assert_eq!(median(&[4.0, 1.0, 2.0, 3.0]), 2.5);
        let ms: Vec<Duration> = (1..=100).map(Duration::from_millis).collect();
        assert_eq!(percentile(&ms, 50), Duration::from_millis(50));
        assert_eq!(percentile(&ms, 99), Duration::from_millis(99));
        assert_eq!(percentile(&ms[..1], 99), Duration::from_millis(1));
    }
}
