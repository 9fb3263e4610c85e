//! `clew chaos`: a bounded chaos test of the whole system, on one store.
//!
//! Producers put jobs over HTTP into a real `clew server` while real `clew
//! work --exec` processes run them; the run kills workers and the server
//! with SIGKILL at random moments, again and again, and restarts them. At
//! the end it restarts a clean server and workers, waits until every job is
//! final, stops them, opens the store directly and checks:
//!
//! * every acknowledged put (a 2xx answer) exists and is final (complete or
//!   failed, as its class asks): a missing one is **lost**;
//! * each job's history begins with `put` and holds exactly one final
//!   entry (`done` or `failed`) matching its state; no handler ran without
//!   a `popped` entry, and no job was popped again without a lock expiry
//!   (`timed-out`), a release or a retry in between;
//! * a job whose handler *finished* more than once is a **duplicate**; each
//!   extra finish must be explained by a lock expiry in its history (else
//!   it is a mismatch too);
//! * per-queue counts equal the listings, daily stats equal what the
//!   histories say, and the lifecycle event log agrees with the histories.
//!
//! Any disagreement is a **mismatch**. The run prints one summary line and
//! fails (exit 1) when a job was lost or anything mismatched.

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use anyhow::Context;
use clap::Args;
use clew::Client;
use clew_core::command::PutParams;
use clew_core::lifecycle::LifecycleKind;
use clew_core::{Command, Engine, Error, Timestamp};
use serde_json::{json, Value};
use tokio::io::AsyncBufReadExt;

use crate::store_url::{StoreOptions, StoreUrl};

/// The classes the producers put, with how the handler treats them.
const OK: &str = "ChaosOk";
/// Exits 3: fails into `ChaosFail:exit-3`.
const FAIL: &str = "ChaosFail";
/// Asks for a retry (exit 75) on its first run, then completes.
const RETRY: &str = "ChaosRetry";
/// The group a `ChaosFail` job fails into.
const FAIL_GROUP: &str = "ChaosFail:exit-3";
/// Retries every job is put with (lock expiries spend them too).
const RETRIES: i64 = 5;
/// Lock length of the chaos queues, seconds (`<queue>-heartbeat`): short,
/// so the jobs of killed workers come back quickly.
const HEARTBEAT: &str = "2";
/// `grace-period` during the run, seconds.
const GRACE: &str = "1";
/// The maximum of the chaos throttle.
const THROTTLE_MAX: i64 = 3;
/// The most the final phase waits for every job to become final.
const DRAIN_TIMEOUT: Duration = Duration::from_secs(180);
/// The most a process start (its listening line) may take.
const START_TIMEOUT: Duration = Duration::from_secs(30);
/// The most one put may take before it counts as unknown.
const PUT_TIMEOUT: Duration = Duration::from_secs(10);
/// Mismatches printed in full.
const SHOWN: usize = 20;

/// `clew chaos`'s options.
#[derive(Debug, Args)]
pub struct ChaosArgs {
    /// Kill cycles: each kills a worker, the server, both, or every
    /// worker with SIGKILL and restarts them after a random short pause.
    #[arg(long, default_value_t = 20)]
    pub cycles: usize,
    /// Bound on the kill phase in seconds: it stops after this long even
    /// if fewer cycles ran (the summary gives the number done). The final
    /// phase waits at most 3 more minutes for the jobs to finish.
    #[arg(long, default_value_t = 600.0)]
    pub seconds: f64,
    /// `clew work` processes.
    #[arg(long, default_value_t = 2)]
    pub workers: usize,
    /// Jobs each worker runs at once.
    #[arg(long, default_value_t = 4)]
    pub concurrency: usize,
    /// Concurrent producers putting jobs over HTTP.
    #[arg(long, default_value_t = 2)]
    pub producers: usize,
    /// Seed of the random choices (kill moments, victims, pauses, job
    /// mix); default: from the clock. The summary names it.
    #[arg(long)]
    pub seed: Option<u64>,
    /// Keep the run's directory (logs, the handler's run records, the
    /// default SQLite file) even when the run passes.
    #[arg(long)]
    pub keep: bool,
    /// Whether `--db` was given on the command line (else: a temporary
    /// SQLite file, never the ambient `CLEW_DB`).
    #[arg(skip)]
    pub db_given: bool,
}

/// A small deterministic generator (SplitMix64): the run is reproducible
/// from its seed as far as the scheduling of processes allows.
#[derive(Clone, Debug)]
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^ (z >> 31)
    }

    /// A number in `0..n` (`n` > 0).
    fn below(&mut self, n: u64) -> u64 {
        self.next() % n.max(1)
    }

    /// A fraction in `[0, 1)`.
    fn unit(&mut self) -> f64 {
        (self.next() >> 11) as f64 / (1u64 << 53) as f64
    }

    /// A duration between `lo` and `hi` milliseconds.
    fn millis(&mut self, lo: u64, hi: u64) -> Duration {
        Duration::from_millis(lo + self.below(hi - lo + 1))
    }
}

/// The run's result, as printed.
#[derive(Debug, Default)]
struct Summary {
    store: &'static str,
    seed: u64,
    cycles: usize,
    server_kills: usize,
    worker_kills: usize,
    acknowledged: usize,
    unknown: usize,
    unknown_existing: usize,
    lost: usize,
    duplicates: usize,
    unexplained_duplicates: usize,
    lock_expiries: usize,
    mismatches: Vec<String>,
    complete: usize,
    failed: usize,
    seconds: f64,
}

impl Summary {
    fn line(&self) -> String {
        let dup = if self.unexplained_duplicates == 0 {
            "(all after lock expiry)".to_owned()
        } else {
            format!("({} without lock expiry)", self.unexplained_duplicates)
        };
        format!(
            "chaos: store={} cycles={} acknowledged={} unknown={} ({} exist) lost={} duplicates={} {dup} mismatches={} time={:.1}s seed={}",
            self.store,
            self.cycles,
            self.acknowledged,
            self.unknown,
            self.unknown_existing,
            self.lost,
            self.duplicates,
            self.mismatches.len(),
            self.seconds,
            self.seed
        )
    }

    fn to_json(&self) -> Value {
        json!({
            "store": self.store,
            "seed": self.seed,
            "cycles": self.cycles,
            "server_kills": self.server_kills,
            "worker_kills": self.worker_kills,
            "acknowledged": self.acknowledged,
            "unknown": self.unknown,
            "unknown_existing": self.unknown_existing,
            "lost": self.lost,
            "duplicates": self.duplicates,
            "duplicates_without_lock_expiry": self.unexplained_duplicates,
            "lock_expiries": self.lock_expiries,
            "complete": self.complete,
            "failed": self.failed,
            "mismatches": self.mismatches.len(),
            "mismatch_details": self.mismatches.iter().take(SHOWN).collect::<Vec<_>>(),
            "seconds": (self.seconds * 10.0).round() / 10.0,
        })
    }
}

/// `clew chaos`.
pub async fn run(
    args: &ChaosArgs,
    db: &str,
    options: &StoreOptions,
    synchronous: &str,
    json_out: bool,
) -> anyhow::Result<()> {
    check_args(args)?;
    let seed = args.seed.unwrap_or_else(|| {
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.as_nanos() as u64)
            .unwrap_or(1)
    });
    let id = format!("{}-{:04x}", std::process::id(), seed & 0xffff);
    let dir = std::env::temp_dir().join(format!("clew-chaos-{id}"));
    std::fs::create_dir_all(&dir).with_context(|| format!("creating {}", dir.display()))?;
    let store = if args.db_given {
        StoreUrl::parse(db)?
    } else {
        StoreUrl::Sqlite(dir.join("chaos.db"))
    };
    let run = Run {
        args,
        store,
        options: options.clone(),
        synchronous: synchronous.to_owned(),
        dir: dir.clone(),
        queues: [format!("chaos-{id}-a"), format!("chaos-{id}-b")],
        runs_file: dir.join("runs.log"),
        id,
    };
    let started = Instant::now();
    let result = tokio::select! {
        r = run.go(seed) => r,
        signal = interrupted() => Err(anyhow::anyhow!("interrupted by {signal}; child processes killed")),
    };
    let mut summary = match result {
        Ok(s) => s,
        Err(e) => return Err(e.context(format!("chaos run failed (logs in {})", dir.display()))),
    };
    summary.seconds = started.elapsed().as_secs_f64();
    if json_out {
        println!("{}", summary.to_json());
    } else {
        for m in summary.mismatches.iter().take(SHOWN) {
            eprintln!("mismatch: {m}");
        }
        if summary.mismatches.len() > SHOWN {
            eprintln!(
                "mismatch: ... and {} more",
                summary.mismatches.len() - SHOWN
            );
        }
        println!("{}", summary.line());
    }
    if summary.lost > 0 || !summary.mismatches.is_empty() {
        anyhow::bail!(
            "chaos: {} lost, {} mismatches (logs and run records in {})",
            summary.lost,
            summary.mismatches.len(),
            dir.display()
        );
    }
    if !args.keep {
        let _ = std::fs::remove_dir_all(&dir);
    }
    Ok(())
}

/// Refuses options that make no run.
fn check_args(args: &ChaosArgs) -> anyhow::Result<()> {
    let bad = |what: String| -> anyhow::Result<()> { Err(Error::invalid(what).into()) };
    if args.cycles > 100_000 {
        return bad(format!(
            "--cycles: expected 0 to 100000, got {}",
            args.cycles
        ));
    }
    if !(args.seconds.is_finite() && args.seconds > 0.0) {
        return bad(format!(
            "--seconds: expected a positive number, got {}",
            args.seconds
        ));
    }
    for (flag, n) in [
        ("--workers", args.workers),
        ("--producers", args.producers),
        ("--concurrency", args.concurrency),
    ] {
        if !(1..=64).contains(&n) {
            return bad(format!("{flag}: expected 1 to 64, got {n}"));
        }
    }
    Ok(())
}

async fn interrupted() -> &'static str {
    use tokio::signal::unix::{signal, SignalKind};
    let (Ok(mut int), Ok(mut term)) = (
        signal(SignalKind::interrupt()),
        signal(SignalKind::terminate()),
    ) else {
        return std::future::pending().await;
    };
    tokio::select! {
        _ = int.recv() => "SIGINT",
        _ = term.recv() => "SIGTERM",
    }
}

/// One run's fixed facts.
struct Run<'a> {
    args: &'a ChaosArgs,
    store: StoreUrl,
    options: StoreOptions,
    synchronous: String,
    dir: PathBuf,
    queues: [String; 2],
    runs_file: PathBuf,
    id: String,
}

/// A child process (`clew server` or `clew work`), killed when dropped.
struct Proc {
    child: tokio::process::Child,
}

impl Proc {
    /// SIGKILL, and reap it.
    async fn kill(mut self) {
        let _ = self.child.start_kill();
        let _ = self.child.wait().await;
    }

    /// SIGTERM, then SIGKILL after `grace`.
    async fn stop(mut self, grace: Duration) {
        crate::bench::terminate(&mut self.child, grace).await;
    }

    fn exited(&mut self) -> bool {
        matches!(self.child.try_wait(), Ok(Some(_)))
    }
}

/// What the producers share.
#[derive(Default)]
struct Produced {
    acked: Vec<String>,
    unknown: Vec<String>,
    /// The jids of each `put_many` whose answer was lost: all or none of
    /// each must exist (one transaction).
    unknown_batches: Vec<Vec<String>>,
    /// Each jid's class.
    klass: HashMap<String, &'static str>,
}

/// Environment variables that would change a child's target.
const CHILD_ENV_CLEARED: [&str; 8] = [
    "CLEW_URL",
    "CLEW_DB",
    "CLEW_TOKEN",
    "CLEW_PG_POOL",
    "CLEW_LISTEN",
    "CLEW_NAMESPACE",
    "CLEW_WORKER_CHILD",
    "CLEW_WORKER_PARENT",
];

impl Run<'_> {
    fn command(&self, log: &str) -> anyhow::Result<tokio::process::Command> {
        let exe = std::env::current_exe().context("finding the clew executable")?;
        let path = self.dir.join(log);
        let err = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(&path)
            .with_context(|| format!("opening {}", path.display()))?;
        let mut cmd = tokio::process::Command::new(exe);
        for var in CHILD_ENV_CLEARED {
            cmd.env_remove(var);
        }
        cmd.stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(err)
            .kill_on_drop(true);
        Ok(cmd)
    }

    /// The `--db` arguments of a child opening the store.
    fn db_args(&self) -> Vec<String> {
        let mut args = vec!["--db".to_owned()];
        match &self.store {
            StoreUrl::Sqlite(path) => {
                args.push(format!("sqlite:{}", path.display()));
                args.extend(["--synchronous".to_owned(), self.synchronous.clone()]);
            }
            StoreUrl::Postgres { url, pool } => {
                args.push(url.clone());
                if let Some(n) = self.options.pg_pool.or(*pool) {
                    args.extend(["--pg-pool".to_owned(), n.to_string()]);
                }
            }
        }
        args
    }

    /// Starts `clew server` on `listen` and waits for its listening line
    /// (trying again while the port is not free yet).
    async fn start_server(&self, listen: &str) -> anyhow::Result<(Proc, String)> {
        let deadline = Instant::now() + START_TIMEOUT;
        loop {
            let mut cmd = self.command("server.log")?;
            cmd.args(self.db_args())
                .args(["server", "--listen", listen])
                .stdout(Stdio::piped());
            let mut child = cmd.spawn().context("starting clew server")?;
            let stdout = child.stdout.take().context("the server's stdout")?;
            let mut lines = tokio::io::BufReader::new(stdout).lines();
            let left = deadline.saturating_duration_since(Instant::now());
            if let Ok(Ok(Some(line))) = tokio::time::timeout(left, lines.next_line()).await {
                if let Some(base) = line.trim().strip_prefix("clew server listening on ") {
                    let base = base.to_owned();
                    tokio::spawn(async move { while let Ok(Some(_)) = lines.next_line().await {} });
                    return Ok((Proc { child }, base));
                }
            }
            let _ = child.start_kill();
            let _ = child.wait().await;
            if Instant::now() > deadline {
                anyhow::bail!(
                    "clew server did not start within {} s: {}",
                    START_TIMEOUT.as_secs(),
                    log_tail(&self.dir.join("server.log"))
                );
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }

    /// Starts worker `n` (its `gen`-th incarnation) against `url`.
    fn start_worker(&self, url: &str, n: usize, generation: usize) -> anyhow::Result<Proc> {
        let mut cmd = self.command("workers.log")?;
        let queues = self.queues.join(",");
        cmd.args([
            "--url",
            url,
            "work",
            "--queue",
            &queues,
            "--reserver",
            "round-robin",
            "--concurrency",
            &self.args.concurrency.to_string(),
            "--poll-interval",
            "0.2",
            "--backoff-base",
            "0.1",
            "--backoff-max",
            "0.5",
            "--grace",
            "5",
            "--name",
            &format!("chaos-{}-w{n}-{generation}", self.id),
            "--shell",
            "--exec",
            &handler_script(&self.runs_file),
        ]);
        let child = cmd.spawn().context("starting clew work")?;
        Ok(Proc { child })
    }

    /// The whole run: set up, kill cycles, drain, check.
    async fn go(&self, seed: u64) -> anyhow::Result<Summary> {
        let mut rng = Rng(seed);
        let port = free_port()?;
        let listen = format!("127.0.0.1:{port}");
        let (server, url) = self.start_server(&listen).await?;
        let mut server = Some(server);
        let client = Client::remote(&url, None)?;
        let saved = self.configure(&client).await?;
        let mut workers: Vec<Option<Proc>> = Vec::new();
        let mut generation = 0;
        for n in 0..self.args.workers {
            workers.push(Some(self.start_worker(&url, n, generation)?));
        }

        let produced = Arc::new(Mutex::new(Produced::default()));
        let stop = Arc::new(AtomicBool::new(false));
        let mut producers = Vec::new();
        for p in 0..self.args.producers {
            let ctx = Producer {
                client: Client::remote(&url, None)?,
                queues: self.queues.clone(),
                prefix: format!("{}-p{p}", self.id),
                throttle: self.throttle(),
                produced: produced.clone(),
                stop: stop.clone(),
                rng: Rng(seed ^ (p as u64 + 1).wrapping_mul(0x1234_5678_9abc_def1)),
            };
            producers.push(tokio::spawn(ctx.run()));
        }

        let mut summary = Summary {
            store: if self.store.is_shared() {
                "postgres"
            } else {
                "sqlite"
            },
            seed,
            ..Summary::default()
        };
        let bound = Instant::now() + Duration::from_secs_f64(self.args.seconds);
        let started_at = wall_now();
        while summary.cycles < self.args.cycles && Instant::now() < bound {
            tokio::time::sleep(rng.millis(300, 1500)).await;
            let r = rng.unit();
            let kill_server = (0.40..0.85).contains(&r) || (r >= 0.95);
            let victims: Vec<usize> = if r < 0.40 || (0.65..0.85).contains(&r) {
                vec![rng.below(workers.len() as u64) as usize]
            } else if r >= 0.85 {
                (0..workers.len()).collect()
            } else {
                Vec::new()
            };
            if kill_server {
                if let Some(s) = server.take() {
                    s.kill().await;
                    summary.server_kills += 1;
                }
            }
            for &v in &victims {
                if let Some(w) = workers[v].take() {
                    w.kill().await;
                    summary.worker_kills += 1;
                }
            }
            tokio::time::sleep(rng.millis(0, 400)).await;
            if server.is_none() {
                server = Some(self.start_server(&listen).await?.0);
            }
            generation += 1;
            for (n, slot) in workers.iter_mut().enumerate() {
                if slot.as_mut().is_none_or(Proc::exited) {
                    *slot = Some(self.start_worker(&url, n, generation)?);
                }
            }
            summary.cycles += 1;
        }

        // The end: no more puts; a clean server and workers finish the rest.
        stop.store(true, Ordering::SeqCst);
        for p in producers {
            p.await.context("a producer panicked")?;
        }
        if server.as_mut().is_none_or(Proc::exited) {
            server = Some(self.start_server(&listen).await?.0);
        }
        generation += 1;
        for (n, slot) in workers.iter_mut().enumerate() {
            if slot.as_mut().is_none_or(Proc::exited) {
                *slot = Some(self.start_worker(&url, n, generation)?);
            }
        }
        let drained = self.drain(&client).await;
        for w in workers.into_iter().flatten() {
            w.stop(Duration::from_secs(10)).await;
        }
        if let Some(s) = server.take() {
            s.stop(Duration::from_secs(30)).await;
        }
        client.close().await?;

        let produced = std::mem::take(&mut *produced.lock().unwrap_or_else(|e| e.into_inner()));
        summary.acknowledged = produced.acked.len();
        summary.unknown = produced.unknown.len();
        if let Err(e) = drained {
            summary.mismatches.push(e.to_string());
        }
        let engine = Engine::new(self.store.open(&self.options)?);
        let checked = self
            .check(&engine, &produced, started_at, &mut summary)
            .await;
        let restored = restore(&engine, &saved).await;
        engine.close().await?;
        checked?;
        restored?;
        Ok(summary)
    }

    /// Sets the chaos queues' short lock and the run's config; returns the
    /// global values it changed, to restore them at the end.
    async fn configure(&self, client: &Client) -> anyhow::Result<Vec<(String, Value)>> {
        let mut saved = Vec::new();
        for (key, value) in [("grace-period", GRACE), ("jobs-history-count", "100000000")] {
            let old = client.qless("config.get", &[key.to_owned()]).await?;
            saved.push((key.to_owned(), old));
            client
                .qless("config.set", &[key.to_owned(), value.to_owned()])
                .await?;
        }
        client
            .qless("throttle.set", &[self.throttle(), THROTTLE_MAX.to_string()])
            .await?;
        for q in &self.queues {
            let key = format!("{q}-heartbeat");
            saved.push((key.clone(), Value::Null));
            client
                .qless("config.set", &[key, HEARTBEAT.to_owned()])
                .await?;
        }
        Ok(saved)
    }

    /// The throttle some jobs name (at most [`THROTTLE_MAX`] of them run at
    /// once).
    fn throttle(&self) -> String {
        format!("chaos-{}", self.id)
    }

    /// Waits until no job of the chaos queues is anything but final.
    async fn drain(&self, client: &Client) -> anyhow::Result<()> {
        let deadline = Instant::now() + DRAIN_TIMEOUT;
        loop {
            let mut live = 0;
            let mut last = Value::Null;
            for q in &self.queues {
                match client.qless("queues", std::slice::from_ref(q)).await {
                    Ok(v) => {
                        live += live_count(&v);
                        last = v;
                    }
                    Err(_) => live += 1,
                }
            }
            if live == 0 {
                return Ok(());
            }
            if Instant::now() > deadline {
                anyhow::bail!(
                    "after {} s, {live} jobs are still not final (last counts {last})",
                    DRAIN_TIMEOUT.as_secs()
                );
            }
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
    }

    /// The checks on the store itself (see the module doc).
    async fn check(
        &self,
        engine: &Engine,
        produced: &Produced,
        started_at: Timestamp,
        s: &mut Summary,
    ) -> anyhow::Result<()> {
        let runs = read_runs(&self.runs_file)?;
        let mut jobs: HashMap<String, clew_core::job::Job> = HashMap::new();
        for jid in &produced.acked {
            match engine.get(jid).await? {
                Some(job) => {
                    jobs.insert(jid.clone(), job);
                }
                None => {
                    s.lost += 1;
                    s.mismatches.push(format!("{jid}: acknowledged but lost"));
                }
            }
        }
        for jid in &produced.unknown {
            if let Some(job) = engine.get(jid).await? {
                s.unknown_existing += 1;
                jobs.insert(jid.clone(), job);
            }
        }
        for batch in &produced.unknown_batches {
            let there = batch.iter().filter(|j| jobs.contains_key(*j)).count();
            if there != 0 && there != batch.len() {
                s.mismatches.push(format!(
                    "a batch put of {} jobs whose answer was lost is there in part: {there} of {batch:?}",
                    batch.len()
                ));
            }
        }
        // Runs of jobs that do not exist (an unknown put that was not
        // committed cannot have run).
        for jid in runs.keys() {
            if !jobs.contains_key(jid) {
                s.mismatches
                    .push(format!("{jid}: the handler ran a job that does not exist"));
            }
        }

        // Per job.
        let mut per_queue: HashMap<&str, Tally> = HashMap::new();
        let mut sorted: Vec<&String> = jobs.keys().collect();
        sorted.sort();
        for jid in sorted {
            let job = &jobs[jid];
            let klass = produced.klass.get(jid.as_str()).copied().unwrap_or(OK);
            let ran = runs.get(jid.as_str()).cloned().unwrap_or_default();
            let t = per_queue.entry(home_queue(job)).or_default();
            check_job(jid, klass, job, &ran, t, s);
        }
        s.complete = per_queue.values().map(|t| t.complete).sum();
        s.failed = per_queue.values().map(|t| t.failed).sum();
        s.lock_expiries = per_queue.values().map(|t| t.timed_out).sum();

        // Per queue: counts against listings and the day's stats.
        let complete_listed = list_complete(engine).await?;
        let failed_listed = list_failed(engine).await?;
        let today = wall_now();
        for q in &self.queues {
            let t = per_queue.get(q.as_str()).cloned().unwrap_or_default();
            let counts = engine
                .qless("queues", None, std::slice::from_ref(q))
                .await?;
            if live_count(&counts) != 0 {
                s.mismatches
                    .push(format!("queue {q}: jobs not final at the end: {counts}"));
            }
            let in_q = |jid: &String| jobs.get(jid).is_some_and(|j| home_queue(j) == q);
            let listed_complete = complete_listed.iter().filter(|j| in_q(j)).count();
            if listed_complete != t.complete {
                s.mismatches.push(format!(
                    "queue {q}: {} complete jobs, the complete listing shows {listed_complete}",
                    t.complete
                ));
            }
            let listed_failed = failed_listed.iter().filter(|(_, j)| in_q(j)).count();
            if listed_failed != t.failed {
                s.mismatches.push(format!(
                    "queue {q}: {} failed jobs, the failed groups list {listed_failed}",
                    t.failed
                ));
            }
            for (group, jid) in failed_listed.iter().filter(|(_, j)| in_q(j)) {
                let shown = jobs[jid].record.failure.as_ref().map(|f| f.group.as_str());
                if shown != Some(group.as_str()) {
                    s.mismatches.push(format!(
                        "{jid}: listed in failed group {group}, its failure says {shown:?}"
                    ));
                }
            }
            let stats = stats_sum(engine, q, started_at, today).await?;
            for (what, got, want) in [
                ("run count (completions)", stats.run, t.done),
                ("wait count (pops)", stats.wait, t.popped),
                ("failed", stats.failed, t.failed_entries),
                ("failures", stats.failures, t.failed_entries),
                ("retries (lock expiries)", stats.retries, t.timed_out),
            ] {
                if got != want as i64 {
                    s.mismatches.push(format!(
                        "queue {q}: stats {what} {got}, the histories say {want}"
                    ));
                }
            }
        }

        // No throttle slot held or waited for once every job is final.
        let throttle = self.throttle();
        let v = engine
            .qless("throttle.get", None, std::slice::from_ref(&throttle))
            .await?;
        for key in ["running", "pending"] {
            if v[key].as_i64() != Some(0) {
                s.mismatches.push(format!(
                    "throttle {throttle}: {key} {} with every job final",
                    v[key]
                ));
            }
        }
        engine.qless("throttle.delete", None, &[throttle]).await?;

        // The lifecycle event log against the histories.
        let events = lifecycle_counts(engine, &jobs).await?;
        for (jid, job) in &jobs {
            let e = events.get(jid.as_str()).copied().unwrap_or_default();
            let h = |what: &str| job.history.iter().filter(|x| x.what == what).count();
            for (kind, got, want) in [
                ("enqueued", e.enqueued, h("put")),
                ("dequeued", e.dequeued, h("popped")),
                ("perform_started", e.started, h("popped")),
                ("perform_finished", e.finished, h("done")),
            ] {
                if got != want {
                    s.mismatches.push(format!(
                        "{jid}: {got} {kind} events, the history says {want}"
                    ));
                }
            }
        }
        Ok(())
    }
}

/// The queue a job was put into: a complete job's record names none
/// (qless), its `put` history entry does (chaos jobs never move).
fn home_queue(job: &clew_core::job::Job) -> &str {
    if !job.record.queue.is_empty() {
        return &job.record.queue;
    }
    job.history
        .iter()
        .find(|h| h.what == "put")
        .and_then(|h| h.extra.get("q"))
        .and_then(Value::as_str)
        .unwrap_or("")
}

/// What a queue's jobs add up to.
#[derive(Clone, Debug, Default)]
struct Tally {
    complete: usize,
    failed: usize,
    done: usize,
    popped: usize,
    failed_entries: usize,
    timed_out: usize,
}

/// One handler run, as the handler recorded it.
#[derive(Clone, Debug, Default)]
struct Ran {
    ok: usize,
    retry: usize,
    fail: usize,
}

/// Checks one job against its class, its history and its runs.
fn check_job(
    jid: &str,
    klass: &str,
    job: &clew_core::job::Job,
    ran: &Ran,
    t: &mut Tally,
    s: &mut Summary,
) {
    let mut bad = |m: String| s.mismatches.push(format!("{jid}: {m}"));
    let count = |what: &str| job.history.iter().filter(|h| h.what == what).count();
    let (done, failed, popped) = (count("done"), count("failed"), count("popped"));
    let (timed_out, released) = (count("timed-out"), count("released"));
    t.done += done;
    t.popped += popped;
    t.failed_entries += failed;
    t.timed_out += timed_out;
    let state = job.record.state.as_str();
    match state {
        "complete" => t.complete += 1,
        "failed" => t.failed += 1,
        other => bad(format!("not final: {other}")),
    }
    if job.history.first().map(|h| h.what.as_str()) != Some("put") {
        bad(format!(
            "history does not begin with put: {:?}",
            job.history.first().map(|h| &h.what)
        ));
    }
    if done + failed != 1 {
        bad(format!(
            "{done} done and {failed} failed entries in its history (one final entry expected)"
        ));
    }
    let last_final = job
        .history
        .iter()
        .rev()
        .find(|h| h.what == "done" || h.what == "failed")
        .map(|h| h.what.as_str());
    let want_entry = match state {
        "complete" => Some("done"),
        "failed" => Some("failed"),
        _ => None,
    };
    if want_entry.is_some() && last_final != want_entry {
        bad(format!(
            "state {state} but the last final history entry is {last_final:?}"
        ));
    }
    let group = job.record.failure.as_ref().map(|f| f.group.as_str());
    let exhausted = group.is_some_and(|g| g.starts_with("failed-retries-")) && timed_out > 0;
    let expected = match (klass, state) {
        (OK | RETRY, "complete") => true,
        (FAIL, "failed") => group == Some(FAIL_GROUP) || exhausted,
        (_, "failed") => exhausted,
        _ => false,
    };
    if !expected && matches!(state, "complete" | "failed") {
        bad(format!(
            "class {klass} ended {state} (group {group:?}, {timed_out} lock expiries)"
        ));
    }
    // Every handler run was a pop; no pop without the last one ending.
    let runs = ran.ok + ran.retry + ran.fail;
    if runs > popped {
        bad(format!(
            "the handler ran {runs} times, popped {popped} times"
        ));
    }
    if popped > 1 + timed_out + released + ran.retry {
        bad(format!(
            "popped {popped} times with {timed_out} lock expiries, {released} releases and {} retries",
            ran.retry
        ));
    }
    // Finishes: the runs that decided the job's end.
    let finishes = match klass {
        FAIL => ran.fail,
        _ => ran.ok,
    };
    if finishes > 1 {
        s.duplicates += 1;
        if timed_out < finishes - 1 {
            s.unexplained_duplicates += 1;
            s.mismatches.push(format!(
                "{jid}: finished {finishes} times with only {timed_out} lock expiries"
            ));
        }
    }
    let decided_by_handler = match (klass, state) {
        (OK | RETRY, "complete") => true,
        (FAIL, "failed") => group == Some(FAIL_GROUP),
        _ => false,
    };
    if decided_by_handler && finishes == 0 {
        s.mismatches
            .push(format!("{jid}: {state} but the handler never finished it"));
    }
}

/// Generates jobs until told to stop.
struct Producer {
    client: Client,
    queues: [String; 2],
    prefix: String,
    /// The throttle one job in five names.
    throttle: String,
    produced: Arc<Mutex<Produced>>,
    stop: Arc<AtomicBool>,
    rng: Rng,
}

impl Producer {
    async fn run(mut self) {
        let mut n = 0u64;
        while !self.stop.load(Ordering::SeqCst) {
            let size = if self.rng.below(5) == 0 {
                2 + self.rng.below(7) as usize
            } else {
                1
            };
            let mut jobs = Vec::with_capacity(size);
            for _ in 0..size {
                n += 1;
                let klass = match self.rng.below(10) {
                    0 => FAIL,
                    1 => RETRY,
                    _ => OK,
                };
                let queue = &self.queues[self.rng.below(2) as usize];
                let mut p = PutParams::new(queue, klass);
                p.jid = format!("{}-{n}", self.prefix);
                p.retries = Some(RETRIES);
                p.worker = "chaos".to_owned();
                if self.rng.below(5) == 0 {
                    p.throttles = Some(vec![self.throttle.clone()]);
                }
                jobs.push(p);
            }
            let jids: Vec<String> = jobs.iter().map(|p| p.jid.clone()).collect();
            let klasses: Vec<&'static str> = jobs.iter().map(|p| class_of(&p.klass)).collect();
            let answer = if size == 1 {
                let one = jobs.pop().map(|p| self.client.put(p));
                match one {
                    Some(f) => tokio::time::timeout(PUT_TIMEOUT, f)
                        .await
                        .map(|r| r.map(|j| vec![j])),
                    None => continue,
                }
            } else {
                tokio::time::timeout(PUT_TIMEOUT, self.client.put_many(jobs)).await
            };
            let ok = matches!(&answer, Ok(Ok(got)) if *got == jids);
            {
                let mut produced = self.produced.lock().unwrap_or_else(|e| e.into_inner());
                for (jid, k) in jids.iter().zip(&klasses) {
                    produced.klass.insert(jid.clone(), k);
                }
                if ok {
                    produced.acked.extend(jids);
                } else {
                    if jids.len() > 1 {
                        produced.unknown_batches.push(jids.clone());
                    }
                    produced.unknown.extend(jids);
                }
            }
            let pause = if ok {
                self.rng.millis(2, 12)
            } else {
                Duration::from_millis(50)
            };
            tokio::time::sleep(pause).await;
        }
    }
}

fn class_of(klass: &str) -> &'static str {
    match klass {
        FAIL => FAIL,
        RETRY => RETRY,
        _ => OK,
    }
}

/// The handler (run with `sh -c`): records `JID OUTCOME` in the runs
/// file (one `write` with O_APPEND, so lines never mix), then exits as its
/// class asks: `ChaosFail` 3, `ChaosRetry` 75 on its first run, else 0.
fn handler_script(runs: &Path) -> String {
    let path = runs.display().to_string().replace('\'', r"'\''");
    format!(
        r#"case "$CLEW_KLASS" in
  {FAIL}) o=fail ;;
  {RETRY}) if [ "$CLEW_REMAINING" = "$CLEW_RETRIES" ]; then o=retry; else o=ok; fi ;;
  *) o=ok ;;
esac
printf '%s %s\n' "$CLEW_JID" "$o" >> '{path}'
case "$o" in fail) exit 3 ;; retry) exit 75 ;; esac
exit 0"#
    )
}

/// The handler's records: per jid, its runs by outcome.
fn read_runs(path: &Path) -> anyhow::Result<HashMap<String, Ran>> {
    let text = match std::fs::read_to_string(path) {
        Ok(t) => t,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => String::new(),
        Err(e) => return Err(e).with_context(|| format!("reading {}", path.display())),
    };
    let mut runs: HashMap<String, Ran> = HashMap::new();
    for line in text.lines() {
        let Some((jid, outcome)) = line.split_once(' ') else {
            anyhow::bail!("{}: unreadable line {line:?}", path.display());
        };
        let r = runs.entry(jid.to_owned()).or_default();
        match outcome {
            "ok" => r.ok += 1,
            "retry" => r.retry += 1,
            "fail" => r.fail += 1,
            other => anyhow::bail!("{}: unknown outcome {other:?}", path.display()),
        }
    }
    Ok(runs)
}

/// Jobs of a `queues` answer that are not final.
fn live_count(counts: &Value) -> i64 {
    [
        "waiting",
        "running",
        "stalled",
        "scheduled",
        "depends",
        "throttled",
    ]
    .iter()
    .filter_map(|k| counts.get(*k).and_then(Value::as_i64))
    .sum()
}

/// Every complete job's jid (the qless listing, paged).
async fn list_complete(engine: &Engine) -> anyhow::Result<Vec<String>> {
    let mut out = Vec::new();
    let page = 10_000;
    loop {
        let v = engine
            .qless(
                "jobs",
                None,
                &[
                    "complete".to_owned(),
                    out.len().to_string(),
                    page.to_string(),
                ],
            )
            .await?;
        let got = crate::bench::jid_list(&v);
        let n = got.len();
        out.extend(got);
        if n < page {
            return Ok(out);
        }
    }
}

/// Every failed job as (group, jid), from the failed-group listings.
async fn list_failed(engine: &Engine) -> anyhow::Result<Vec<(String, String)>> {
    let groups = engine.qless("failed", None, &[]).await?;
    let mut out = Vec::new();
    let Some(groups) = groups.as_object() else {
        return Ok(out);
    };
    for group in groups.keys() {
        let mut start = 0usize;
        let page = 10_000usize;
        loop {
            let v = engine
                .qless(
                    "failed",
                    None,
                    &[group.clone(), start.to_string(), page.to_string()],
                )
                .await?;
            let jobs = v["jobs"].as_array().cloned().unwrap_or_default();
            for j in &jobs {
                let jid = j.as_str().or_else(|| j["jid"].as_str()).unwrap_or_default();
                out.push((group.clone(), jid.to_owned()));
            }
            start += jobs.len();
            if jobs.len() < page {
                break;
            }
        }
    }
    Ok(out)
}

/// A queue's daily stats summed over the run's days.
#[derive(Debug, Default)]
struct StatsSum {
    run: i64,
    wait: i64,
    failed: i64,
    failures: i64,
    retries: i64,
}

async fn stats_sum(
    engine: &Engine,
    queue: &str,
    from: Timestamp,
    to: Timestamp,
) -> anyhow::Result<StatsSum> {
    let mut sum = StatsSum::default();
    let mut day = from.day();
    while day <= to.day() {
        let v = engine
            .execute(Command::Stats {
                queue: queue.to_owned(),
                date: day,
            })
            .await?
            .to_json();
        let n = |p: &str| v.pointer(p).and_then(Value::as_i64).unwrap_or(0);
        sum.run += n("/run/count");
        sum.wait += n("/wait/count");
        sum.failed += n("/failed");
        sum.failures += n("/failures");
        sum.retries += n("/retries");
        day = day.add_secs(86_400.0).day();
    }
    Ok(sum)
}

/// Lifecycle events of one job, by kind.
#[derive(Clone, Copy, Debug, Default)]
struct EventCounts {
    enqueued: usize,
    dequeued: usize,
    started: usize,
    finished: usize,
}

/// Reads the whole event log; counts the lifecycle events of `jobs`.
async fn lifecycle_counts(
    engine: &Engine,
    jobs: &HashMap<String, clew_core::job::Job>,
) -> anyhow::Result<HashMap<String, EventCounts>> {
    let mut out: HashMap<String, EventCounts> = HashMap::new();
    let mut after = 0;
    loop {
        let page = engine.store().events_after(after, 10_000).await?;
        let Some(last) = page.last() else {
            return Ok(out);
        };
        after = last.seq;
        for event in &page {
            let Some(ev) = event.lifecycle() else {
                continue;
            };
            if !jobs.contains_key(&ev.jid) {
                continue;
            }
            let c = out.entry(ev.jid).or_default();
            match ev.kind {
                LifecycleKind::Enqueued => c.enqueued += 1,
                LifecycleKind::Dequeued => c.dequeued += 1,
                LifecycleKind::PerformStarted => c.started += 1,
                LifecycleKind::PerformFinished => c.finished += 1,
                LifecycleKind::Failed => {}
            }
        }
    }
}

/// Puts back the config values the run changed.
async fn restore(engine: &Engine, saved: &[(String, Value)]) -> anyhow::Result<()> {
    for (key, old) in saved {
        match old {
            Value::Null => {
                engine
                    .qless("config.unset", None, std::slice::from_ref(key))
                    .await?
            }
            v => {
                let text = match v {
                    Value::String(s) => s.clone(),
                    other => other.to_string(),
                };
                engine
                    .qless("config.set", None, &[key.clone(), text])
                    .await?
            }
        };
    }
    Ok(())
}

/// A loopback port free right now (the server is restarted on it).
fn free_port() -> anyhow::Result<u16> {
    let listener =
        std::net::TcpListener::bind("127.0.0.1:0").context("finding a free loopback port")?;
    Ok(listener.local_addr()?.port())
}

/// The time now (the servers' clock: the same machine's).
fn wall_now() -> Timestamp {
    use clew_core::Clock;
    clew_core::SystemClock.now()
}

/// The last lines of a log (for an error message).
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_generator_is_deterministic_and_in_range() {
        let (mut a, mut b) = (Rng(7), Rng(7));
        for _ in 0..1000 {
            let x = a.below(10);
            assert_eq!(x, b.below(10));
            assert!(x < 10);
            let u = a.unit();
            assert_eq!(u, b.unit());
            assert!((0.0..1.0).contains(&u));
            let d = a.millis(5, 9);
            assert_eq!(d, b.millis(5, 9));
            assert!((5..=9).contains(&d.as_millis()));
        }
    }

    #[test]
    fn run_records_are_read_per_job() {
        let dir = std::env::temp_dir().join(format!("clew-chaos-unit-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let path = dir.join("runs.log");
        std::fs::write(&path, "a ok\nb retry\nb ok\na ok\nc fail\n").unwrap();
        let runs = read_runs(&path).unwrap();
        assert_eq!(runs["a"].ok, 2);
        assert_eq!((runs["b"].retry, runs["b"].ok), (1, 1));
        assert_eq!(runs["c"].fail, 1);
        std::fs::write(&path, "a maybe\n").unwrap();
        assert!(read_runs(&path).unwrap_err().to_string().contains("maybe"));
        std::fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn bad_options_are_refused_by_name() {
        let args = |f: fn(&mut ChaosArgs)| {
            let mut a = ChaosArgs {
                cycles: 1,
                seconds: 10.0,
                workers: 1,
                concurrency: 1,
                producers: 1,
                seed: None,
                keep: false,
                db_given: false,
            };
            f(&mut a);
            check_args(&a).map_err(|e| e.to_string())
        };
        assert!(args(|_| {}).is_ok());
        assert!(args(|a| a.workers = 0).unwrap_err().contains("--workers"));
        assert!(args(|a| a.producers = 65)
            .unwrap_err()
            .contains("--producers"));
        assert!(args(|a| a.seconds = 0.0).unwrap_err().contains("--seconds"));
        assert!(args(|a| a.cycles = 1_000_000)
            .unwrap_err()
            .contains("--cycles"));
    }
}
