//! Batched completion against a real temporary SQLite store: many jobs
//! complete exactly once in fewer store commands than one per report, a job
//! whose lock was lost gets its refusal while the others complete, a store
//! failure of a whole batch is tried again, stopping while completions are
//! in flight loses none, and batches go through a real `clew server` too.

mod runtime_support;

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use clew_client::Client;
use clew_core::{Command, Engine, Error, Origin, PendingEvent, Reply, Result, Timestamp, Tx};
use clew_sqlite::{SqliteOptions, SqliteStore};
use clew_worker::{NoopHandler, Outcome, ShutdownReport, Worker, WorkerControl};
use runtime_support::*;
use tempfile::TempDir;

/// A client over a fresh store whose writer runs `apply`, and the store
/// (for its writer statistics).
fn store_with(apply: clew_sqlite::ApplyFn) -> (Client, Arc<SqliteStore>, TempDir) {
    let (store, dir) = clew_sqlite::testing::temp_store_with_logic(SqliteOptions::default(), apply);
    (Client::local(Engine::new(store.clone())), store, dir)
}

/// The `done` entries of `jid`'s history.
async fn dones(client: &Client, jid: &str) -> usize {
    let job = job(client, jid).await.expect("job");
    history_whats(&job).iter().filter(|w| *w == "done").count()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn many_jobs_complete_once_each_in_fewer_commands_than_reports() {
    const JOBS: usize = 300;
    let (client, store, _dir) = store_with(clew_core::logic::apply);
    let mut jids = Vec::with_capacity(JOBS);
    for _ in 0..JOBS {
        jids.push(put(&client, "q", "Noop", 5).await);
    }
    let before = store.writer_stats();
    // Counts the jobs performed, so that waiting for them does not add
    // commands of its own to the store's count.
    let performed = Arc::new(AtomicUsize::new(0));
    let handler = FnHandler({
        let performed = performed.clone();
        move |_job, _ctx| {
            performed.fetch_add(1, Ordering::SeqCst);
            async { Outcome::complete() }
        }
    });
    let mut cfg = config("w-many", &["q"]);
    cfg.concurrency = 32;
    let (control, run) = start(Worker::new(client.clone(), handler, cfg));
    wait_for("every job to be performed", || async {
        performed.load(Ordering::SeqCst) == JOBS
    })
    .await;
    let report = finish(&control, run).await;
    let after = store.writer_stats();
    let commands = after.commands - before.commands;
    let transactions = after.batches - before.batches;
    eprintln!(
        "{JOBS} jobs, concurrency 32: {commands} store commands in {transactions} transactions"
    );
    assert_eq!(report.completed, JOBS, "{report:?}");
    assert_eq!(report.errors + report.lost + report.failed, 0, "{report:?}");
    for jid in &jids {
        let j = job(&client, jid).await.expect("job");
        assert_eq!(j.state, "complete", "{jid}");
        assert_eq!(dones(&client, jid).await, 1, "{jid} completed once");
    }
    // One request per completion would be JOBS commands for the
    // completions alone (plus the pops); batched, the whole run takes
    // fewer (76 here on one run; 577 with batches of one).
    assert!(
        commands < JOBS as u64,
        "{commands} store commands for {JOBS} jobs"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_job_whose_lock_was_lost_is_refused_and_the_others_complete() {
    const JOBS: usize = 8;
    let (client, _dir) = store();
    let mut jids = Vec::with_capacity(JOBS);
    for _ in 0..JOBS {
        jids.push(put(&client, "q", "Together", 5).await);
    }
    let victim = jids[3].clone();
    // Every handler waits until all are running, then they all return
    // together (their completions pile up in the completer). Before
    // returning, the victim's handler has its job timed out and taken by
    // another worker.
    let barrier = Arc::new(tokio::sync::Barrier::new(JOBS));
    let stolen = Flag::default();
    let handler = FnHandler({
        let client = client.clone();
        let victim = victim.clone();
        let stolen = stolen.clone();
        move |job: clew_worker::Job, _ctx| {
            let client = client.clone();
            let victim = victim.clone();
            let barrier = barrier.clone();
            let stolen = stolen.clone();
            async move {
                barrier.wait().await;
                if job.jid == victim {
                    client
                        .execute(Command::Timeout {
                            jids: vec![victim.clone()],
                        })
                        .await
                        .expect("timeout");
                    let taken = client.pop("q", "thief", 1).await.expect("pop");
                    assert_eq!(taken.len(), 1);
                    assert_eq!(taken[0].jid, victim);
                    stolen.set();
                } else {
                    stolen.wait("the victim to be taken").await;
                }
                Outcome::complete()
            }
        }
    });
    let mut cfg = config("w-lost", &["q"]);
    cfg.concurrency = JOBS;
    let (control, run) = start(Worker::new(client.clone(), handler, cfg));
    wait_for("the other jobs to complete", || async {
        for jid in jids.iter().filter(|j| **j != victim) {
            if job(&client, jid).await.map(|j| j.state) != Some("complete".to_owned()) {
                return false;
            }
        }
        true
    })
    .await;
    let report = finish(&control, run).await;
    assert_eq!(report.completed, JOBS - 1, "{report:?}");
    assert_eq!(report.lost, 1, "{report:?}");
    assert_eq!(report.errors, 0, "{report:?}");
    let v = job(&client, &victim).await.expect("victim");
    assert_eq!(v.state, "running");
    assert_eq!(v.worker, "thief", "the thief keeps it");
    assert_eq!(dones(&client, &victim).await, 0);
    for jid in jids.iter().filter(|j| **j != victim) {
        assert_eq!(dones(&client, jid).await, 1, "{jid}");
    }
}

/// Whether [`flaky_apply`] has failed a batch yet.
static FAILED_ONCE: AtomicBool = AtomicBool::new(false);

/// The store's logic, except that the first batch fails with a store error.
fn flaky_apply(
    tx: &mut dyn Tx,
    now: Timestamp,
    origin: &Origin,
    command: &Command,
    events: &mut Vec<PendingEvent>,
) -> Result<Reply> {
    if matches!(command, Command::Batch { .. }) && !FAILED_ONCE.swap(true, Ordering::SeqCst) {
        return Err(Error::store("injected: the disk is on fire"));
    }
    clew_core::logic::apply(tx, now, origin, command, events)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_store_failure_of_a_whole_batch_is_tried_again() {
    const JOBS: usize = 40;
    let (client, _store, _dir) = store_with(flaky_apply);
    let mut jids = Vec::with_capacity(JOBS);
    for _ in 0..JOBS {
        jids.push(put(&client, "q", "Noop", 5).await);
    }
    let mut cfg = config("w-flaky", &["q"]);
    cfg.concurrency = JOBS;
    let (control, run) = start(Worker::new(client.clone(), NoopHandler, cfg));
    for jid in &jids {
        wait_state(&client, jid, "complete").await;
    }
    let report = finish(&control, run).await;
    assert!(
        FAILED_ONCE.load(Ordering::SeqCst),
        "a batch was sent (and failed once)"
    );
    assert_eq!(report.completed, JOBS, "{report:?}");
    assert_eq!(report.errors + report.lost, 0, "{report:?}");
    for jid in &jids {
        assert_eq!(dones(&client, jid).await, 1, "{jid}");
    }
}

/// Worker name → commands of its first batch, recorded by
/// [`slow_batch_apply`] when that batch starts (the worker name is the one
/// its completions carry).
static IN_FLIGHT: Mutex<BTreeMap<String, usize>> = Mutex::new(BTreeMap::new());

/// The store's logic, with batches taking a while (so that completions are
/// in flight when the worker is told to stop) and recorded in
/// [`IN_FLIGHT`] as they start.
fn slow_batch_apply(
    tx: &mut dyn Tx,
    now: Timestamp,
    origin: &Origin,
    command: &Command,
    events: &mut Vec<PendingEvent>,
) -> Result<Reply> {
    if let Command::Batch { commands, .. } = command {
        let worker = commands.iter().find_map(|c| match c {
            Command::Complete(p) => Some(p.worker.clone()),
            _ => None,
        });
        if let Some(worker) = worker {
            in_flight().entry(worker).or_insert(commands.len());
        }
        std::thread::sleep(Duration::from_millis(300));
    }
    clew_core::logic::apply(tx, now, origin, command, events)
}

fn in_flight() -> std::sync::MutexGuard<'static, BTreeMap<String, usize>> {
    IN_FLIGHT.lock().unwrap_or_else(|p| p.into_inner())
}

/// What [`stop_with_completions_in_flight`] saw.
struct Stopped {
    report: ShutdownReport,
    /// Jobs complete in the store after the worker returned.
    complete: usize,
    /// Completions in the batch in flight when the stop was asked for.
    in_flight: usize,
}

const GATED: usize = 32;

/// Runs [`GATED`] jobs at once, lets them all return, and as soon as a
/// batch of their completions is in flight calls `stop`; once the worker
/// returned, drops the runtime (as a process exiting would: nothing left
/// running in it can report anything any more) and checks that no
/// completion was lost: every job is complete exactly once, or listed as
/// unfinished in the report.
fn stop_with_completions_in_flight(
    name: &str,
    grace: Duration,
    stop: impl FnOnce(&WorkerControl),
) -> Stopped {
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(4)
        .enable_all()
        .build()
        .expect("runtime");
    let (client, _store, _dir) = rt.block_on(async { store_with(slow_batch_apply) });
    let (jids, report) = rt.block_on(async {
        let mut jids = Vec::with_capacity(GATED);
        for _ in 0..GATED {
            jids.push(put(&client, "q", "Gated", 5).await);
        }
        let go = Flag::default();
        let handler = FnHandler({
            let go = go.clone();
            move |_job, _ctx| {
                let go = go.clone();
                async move {
                    go.wait("the gate to open").await;
                    Outcome::complete()
                }
            }
        });
        let mut cfg = config(name, &["q"]);
        cfg.concurrency = GATED;
        cfg.shutdown_grace = grace;
        let worker = Worker::new(client.clone(), handler, cfg);
        let control = worker.control();
        let run = tokio::spawn(worker.run());
        wait_for("every job to run", || async {
            control.status().running.len() == GATED
        })
        .await;
        go.set();
        wait_for("a batch of completions in flight", || async {
            in_flight().contains_key(name)
        })
        .await;
        stop(&control);
        let report = tokio::time::timeout(DEADLINE, run)
            .await
            .expect("stops in time")
            .expect("no panic");
        (jids, report)
    });
    drop(rt);

    let rt = tokio::runtime::Runtime::new().expect("runtime");
    let complete = rt.block_on(async {
        let mut complete = 0;
        for jid in &jids {
            let j = job(&client, jid).await.expect("job");
            if j.state == "complete" {
                complete += 1;
                assert_eq!(dones(&client, jid).await, 1, "{jid}");
                assert!(
                    !report.unfinished.contains(jid),
                    "{jid} is complete but reported unfinished: {report:?}"
                );
            } else {
                assert!(
                    report.unfinished.contains(jid),
                    "{jid} is {} but not reported unfinished: {report:?}",
                    j.state
                );
            }
        }
        complete
    });
    let in_flight = in_flight().get(name).copied().unwrap_or_default();
    eprintln!(
        "{name}: {complete} of {GATED} complete, {in_flight} in flight at the stop; {report:?}"
    );
    assert!(complete >= in_flight, "the batch in flight was not lost");
    Stopped {
        report,
        complete,
        in_flight,
    }
}

#[test]
fn stopping_after_the_running_jobs_waits_for_completions_in_flight() {
    let s = stop_with_completions_in_flight("w-quit", Duration::from_secs(5), |c| {
        c.stop_after_running()
    });
    assert!(s.in_flight > 0);
    assert_eq!(s.complete, GATED);
    assert_eq!(s.report.completed, GATED, "{:?}", s.report);
    assert!(s.report.unfinished.is_empty(), "{:?}", s.report);
}

#[test]
fn stopping_now_waits_for_completions_in_flight() {
    let s = stop_with_completions_in_flight("w-term", Duration::from_secs(5), |c| c.stop_now());
    // Handlers that had not returned yet were stopped and their jobs
    // released; every completion handed over was made.
    assert_eq!(s.report.completed, s.complete, "{:?}", s.report);
    assert_eq!(
        s.report.completed + s.report.released,
        GATED,
        "{:?}",
        s.report
    );
    assert_eq!(s.report.errors + s.report.lost, 0, "{:?}", s.report);
}

#[test]
fn a_worker_giving_up_at_once_still_sends_the_completions_handed_over() {
    // No grace at all: job tasks still waiting for their completions'
    // answers are aborted, but what they handed to the completer is sent
    // before the worker returns, and the report counts it.
    let s = stop_with_completions_in_flight("w-nograce", Duration::ZERO, |c| c.stop_now());
    assert!(s.complete >= s.in_flight, "{:?}", s.report);
    assert_eq!(s.report.completed, s.complete, "{:?}", s.report);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn over_a_server_completions_go_in_batches_too() {
    const JOBS: usize = 200;
    let (store, _dir) = clew_sqlite::testing::temp_store();
    let state = clew_server::AppState::new(
        Engine::new(store.clone()),
        clew_server::ServerConfig::default(),
    );
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind");
    let url = format!("http://{}", listener.local_addr().expect("address"));
    let stop = tokio_util::sync::CancellationToken::new();
    let server = tokio::spawn(clew_server::serve(listener, state, {
        let stop = stop.clone();
        async move { stop.cancelled().await }
    }));
    let client = Client::remote(&url, None).expect("client");
    let mut jids = Vec::with_capacity(JOBS);
    for _ in 0..JOBS {
        jids.push(put(&client, "q", "Noop", 5).await);
    }
    let before = store.writer_stats();
    let performed = Arc::new(AtomicUsize::new(0));
    let handler = FnHandler({
        let performed = performed.clone();
        move |_job, _ctx| {
            performed.fetch_add(1, Ordering::SeqCst);
            async { Outcome::complete() }
        }
    });
    let mut cfg = config("w-remote", &["q"]);
    cfg.concurrency = 32;
    let (control, run) = start(Worker::new(client.clone(), handler, cfg));
    wait_for("every job to be performed", || async {
        performed.load(Ordering::SeqCst) == JOBS
    })
    .await;
    let report = finish(&control, run).await;
    let commands = store.writer_stats().commands - before.commands;
    eprintln!("over HTTP, {JOBS} jobs, concurrency 32: {commands} store commands");
    assert_eq!(report.completed, JOBS, "{report:?}");
    assert!(commands < JOBS as u64, "{commands} store commands");
    for jid in &jids {
        assert_eq!(dones(&client, jid).await, 1, "{jid}");
    }
    stop.cancel();
    server.await.expect("server task").expect("server ran");
}

/// Like `clew_core::logic::apply`, with batches of outcomes 20 ms slower
/// (so that jobs wait to be reported while the worker pops more).
fn slowish_batch_apply(
    tx: &mut dyn Tx,
    now: Timestamp,
    origin: &Origin,
    command: &Command,
    events: &mut Vec<PendingEvent>,
) -> Result<Reply> {
    if matches!(command, Command::Batch { atomic: false, .. }) {
        std::thread::sleep(Duration::from_millis(20));
    }
    clew_core::logic::apply(tx, now, origin, command, events)
}

/// A slot is free once its handler is done, so pops overlap the reports
/// of finished jobs: handlers never exceed the concurrency, the jobs the
/// worker holds (running or being reported) never exceed twice it, and
/// every job completes exactly once.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn pops_overlap_reports_within_twice_the_concurrency() {
    const JOBS: usize = 120;
    const N: usize = 4;
    let (client, _store, _dir) = store_with(slowish_batch_apply);
    let mut jids = Vec::with_capacity(JOBS);
    for _ in 0..JOBS {
        jids.push(put(&client, "q", "Quick", 5).await);
    }
    let active = Arc::new(AtomicUsize::new(0));
    let most_active = Arc::new(AtomicUsize::new(0));
    let performed = Arc::new(AtomicUsize::new(0));
    let handler = FnHandler({
        let (active, most_active, performed) =
            (active.clone(), most_active.clone(), performed.clone());
        move |_job, _ctx| {
            let (active, most_active, performed) =
                (active.clone(), most_active.clone(), performed.clone());
            async move {
                let now = active.fetch_add(1, Ordering::SeqCst) + 1;
                most_active.fetch_max(now, Ordering::SeqCst);
                tokio::task::yield_now().await;
                active.fetch_sub(1, Ordering::SeqCst);
                performed.fetch_add(1, Ordering::SeqCst);
                Outcome::complete()
            }
        }
    });
    let mut cfg = config("w-overlap", &["q"]);
    cfg.concurrency = N;
    let (control, run) = start(Worker::new(client.clone(), handler, cfg));
    let mut most_held = 0;
    let deadline = tokio::time::Instant::now() + DEADLINE;
    while performed.load(Ordering::SeqCst) < JOBS {
        assert!(
            tokio::time::Instant::now() < deadline,
            "jobs not performed in time"
        );
        most_held = most_held.max(control.status().running.len());
        tokio::time::sleep(Duration::from_millis(1)).await;
    }
    let report = finish(&control, run).await;
    eprintln!("concurrency {N}: at most {most_held} jobs held at once");
    assert_eq!(report.completed, JOBS, "{report:?}");
    assert!(
        most_active.load(Ordering::SeqCst) <= N,
        "handlers exceed the concurrency"
    );
    assert!(most_held <= 2 * N, "{most_held} jobs held, concurrency {N}");
    for jid in &jids {
        assert_eq!(dones(&client, jid).await, 1, "{jid} completed once");
    }
}
