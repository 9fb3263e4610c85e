//! The worker runtime against a real temporary SQLite store: concurrency,
//! heartbeats, refused heartbeats, time limits.

mod runtime_support;

use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use async_trait::async_trait;
use clew_core::command::PutParams;
use clew_core::Command;
use clew_worker::{Handler, Job, JobContext, Outcome, Worker};
use runtime_support::*;

#[tokio::test(flavor = "multi_thread", worker_threads = 8)]
async fn concurrency_n_runs_n_at_once_and_never_more() {
    const N: usize = 3;
    let (client, _dir) = store();
    let mut jids = Vec::new();
    for _ in 0..(2 * N + 1) {
        jids.push(put(&client, "q", "Par", 5).await);
    }
    let now = Arc::new(AtomicUsize::new(0));
    let max = Arc::new(AtomicUsize::new(0));
    let handler = FnHandler({
        let (now, max) = (now.clone(), max.clone());
        move |_job, _ctx| {
            let (now, max) = (now.clone(), max.clone());
            async move {
                let cur = now.fetch_add(1, Ordering::SeqCst) + 1;
                max.fetch_max(cur, Ordering::SeqCst);
                // Hold the slot until N jobs have run at the same time.
                wait_for("N jobs at once", || async {
                    max.load(Ordering::SeqCst) >= N
                })
                .await;
                now.fetch_sub(1, Ordering::SeqCst);
                Outcome::complete()
            }
        }
    });
    let mut cfg = config("w-par", &["q"]);
    cfg.concurrency = N;
    let (control, run) = start(Worker::new(client.clone(), handler, cfg));
    for jid in &jids {
        wait_state(&client, jid, "complete").await;
    }
    let report = finish(&control, run).await;
    assert_eq!(max.load(Ordering::SeqCst), N, "N at once, never N+1");
    assert_eq!(report.completed, 2 * N + 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn heartbeats_keep_a_short_lock_alive_through_a_long_job() {
    let (client, _dir) = store();
    config_set(&client, "heartbeat", "1").await;
    config_set(&client, "grace-period", "0").await;
    let jid = put(&client, "q", "Long", 5).await;
    let started = Flag::default();
    let runs = Arc::new(AtomicUsize::new(0));
    let handler = FnHandler({
        let (started, runs) = (started.clone(), runs.clone());
        move |_job, _ctx| {
            let (started, runs) = (started.clone(), runs.clone());
            async move {
                runs.fetch_add(1, Ordering::SeqCst);
                started.set();
                // Three lock lengths of work.
                tokio::time::sleep(Duration::from_secs(3)).await;
                Outcome::complete()
            }
        }
    });
    let (control, run) = start(Worker::new(
        client.clone(),
        handler,
        config("w-beat", &["q"]),
    ));
    started.wait("the job to start").await;

    // Another worker keeps trying to take the job while it runs: with its
    // lock expired it would get it.
    let mut stolen = Vec::new();
    while job(&client, &jid).await.expect("job").state == "running" {
        stolen.extend(client.pop("q", "thief", 1).await.expect("pop"));
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let done = wait_state(&client, &jid, "complete").await;
    let report = finish(&control, run).await;
    assert!(stolen.is_empty(), "the lock never lapsed: {stolen:?}");
    assert_eq!(runs.load(Ordering::SeqCst), 1, "ran once");
    let whats = history_whats(&done);
    assert_eq!(whats, ["put", "popped", "done"], "no timed-out entry");
    assert_eq!(report.completed, 1);
}

/// What another client does to a running job.
#[derive(Clone, Copy, Debug)]
enum Interference {
    TimeOut,
    Cancel,
    MoveElsewhere,
}

async fn refused_heartbeat_cancels_and_discards(how: Interference) {
    let (client, _dir) = store();
    config_set(&client, "heartbeat", "1").await;
    let jid = put(&client, "q", "Victim", 5).await;
    let started = Flag::default();
    let dropped = Arc::new(AtomicBool::new(false));
    let handler = FnHandler({
        let (started, dropped) = (started.clone(), dropped.clone());
        move |_job, ctx: JobContext| {
            let (started, dropped) = (started.clone(), dropped.clone());
            async move {
                let _guard = DropFlag(dropped);
                started.set();
                ctx.cancelled().await;
                // Were this result used, the job would complete.
                Outcome::complete()
            }
        }
    });
    let (control, run) = start(Worker::new(
        client.clone(),
        handler,
        config("w-victim", &["q"]),
    ));
    started.wait("the job to start").await;
    // Take no new jobs (a timed-out job goes back to its queue, and this
    // worker would take it again).
    control.pause();

    match how {
        Interference::TimeOut => {
            client
                .execute(Command::Timeout {
                    jids: vec![jid.clone()],
                })
                .await
                .expect("timeout");
        }
        Interference::Cancel => {
            client
                .cancel(std::slice::from_ref(&jid))
                .await
                .expect("cancel");
        }
        Interference::MoveElsewhere => {
            let mut p = PutParams::new("elsewhere", "Victim");
            p.jid = jid.clone();
            client.put(p).await.expect("put elsewhere");
        }
    }
    wait_for("the handler's future to be dropped", || async {
        dropped.load(Ordering::SeqCst)
    })
    .await;
    wait_for("the worker to drop the job", || async {
        control.status().running.is_empty()
    })
    .await;
    let report = finish(&control, run).await;
    assert_eq!(report.lost, 1, "{how:?}: {report:?}");
    assert_eq!(report.completed, 0, "{how:?}: result discarded");

    let after = job(&client, &jid).await;
    match how {
        Interference::TimeOut => {
            let j = after.expect("job");
            assert_eq!(j.state, "stalled");
            assert!(!history_whats(&j).contains(&"done".to_owned()));
        }
        Interference::Cancel => assert!(after.is_none()),
        Interference::MoveElsewhere => {
            let j = after.expect("job");
            assert_eq!(
                (j.state.as_str(), j.queue.as_str()),
                ("waiting", "elsewhere")
            );
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn refused_heartbeat_after_a_timeout_cancels_the_handler() {
    refused_heartbeat_cancels_and_discards(Interference::TimeOut).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn refused_heartbeat_after_a_cancel_cancels_the_handler() {
    refused_heartbeat_cancels_and_discards(Interference::Cancel).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn refused_heartbeat_after_a_move_cancels_the_handler() {
    refused_heartbeat_cancels_and_discards(Interference::MoveElsewhere).await;
}

/// Retries left and failure group, as a run of a job saw them.
type Seen = (i64, Option<String>);

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_job_that_hangs_past_its_queue_limit_is_retried_and_frees_its_slot() {
    let (client, _dir) = store();
    let hangs = put(&client, "q", "Hang", 5).await;
    let next = put(&client, "q", "Quick", 5).await;
    let dropped = Arc::new(AtomicBool::new(false));
    // (retries left, failure group) as each run of `Hang` saw its job.
    let seen: Arc<Mutex<Vec<Seen>>> = Arc::default();
    let handler = FnHandler({
        let (dropped, seen) = (dropped.clone(), seen.clone());
        move |job: Job, _ctx| {
            let (dropped, seen) = (dropped.clone(), seen.clone());
            async move {
                if job.klass == "Hang" {
                    seen.lock()
                        .expect("seen")
                        .push((job.remaining, job.failure_group().map(str::to_owned)));
                    if job.remaining == job.retries {
                        let _guard = DropFlag(dropped);
                        // Ignores cancellation: only dropping stops it.
                        std::future::pending::<()>().await;
                    }
                }
                Outcome::complete()
            }
        }
    });
    let mut cfg = config("w-limit", &["q"]);
    cfg.queue_timeouts = HashMap::from([("q".to_owned(), Duration::from_millis(300))]);
    cfg.backoff = exact_backoff(Duration::ZERO, 1.0);
    // One slot: `Quick` only runs if the hung job gives its slot back.
    cfg.concurrency = 1;
    let (control, run) = start(Worker::new(client.clone(), handler, cfg));
    wait_state(&client, &next, "complete").await;
    let done = wait_state(&client, &hangs, "complete").await;
    let report = finish(&control, run).await;

    assert!(
        dropped.load(Ordering::SeqCst),
        "the hung future was dropped"
    );
    assert_eq!(
        *seen.lock().expect("seen"),
        [(5, None), (4, Some("Hang:timeout".to_owned()))],
        "retried once, with the time limit as the reason"
    );
    let whats = history_whats(&done);
    assert_eq!(
        whats.iter().filter(|w| *w == "popped").count(),
        2,
        "{whats:?}"
    );
    assert_eq!((report.retried, report.completed), (1, 2));
}

/// Gives every job 200 ms, whatever the worker says.
struct Impatient;

#[async_trait]
impl Handler for Impatient {
    async fn perform(&self, _job: &Job, ctx: &JobContext) -> Outcome {
        ctx.cancelled().await;
        Outcome::complete()
    }

    fn timeout(&self, _job: &Job) -> Option<Duration> {
        Some(Duration::from_millis(200))
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_handler_time_limit_overrides_the_worker_and_out_of_retries_fails() {
    let (client, _dir) = store();
    let jid = put(&client, "q", "Stuck", 0).await;
    let mut cfg = config("w-impatient", &["q"]);
    cfg.timeout = Some(Duration::from_secs(3600));
    let (control, run) = start(Worker::new(client.clone(), Impatient, cfg));
    let job = wait_state(&client, &jid, "failed").await;
    let report = finish(&control, run).await;
    assert_eq!(job.failure_group(), Some("Stuck:timeout"));
    assert_eq!(job.failure["message"], "timed out after 0.2 s");
    assert_eq!(report.failed, 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_handler_blocking_its_thread_past_the_limit_still_gives_its_slot_back() {
    let (client, _dir) = store();
    let blocker = put(&client, "q", "Blocker", 5).await;
    let quick = put(&client, "q", "Quick", 5).await;
    let (unblock, blocked) = std::sync::mpsc::channel::<()>();
    let blocked = Arc::new(Mutex::new(blocked));
    let returned = Flag::default();
    let handler = FnHandler({
        let (blocked, returned) = (blocked.clone(), returned.clone());
        move |job: Job, _ctx| {
            let (blocked, returned) = (blocked.clone(), returned.clone());
            async move {
                if job.klass == "Blocker" && job.remaining == job.retries {
                    // Blocks the runtime thread (no await point) until the
                    // test lets it go.
                    let _ = blocked.lock().expect("channel").recv_timeout(DEADLINE);
                    returned.set();
                }
                Outcome::complete()
            }
        }
    });
    let mut cfg = config("w-blocked", &["q"]);
    cfg.concurrency = 1;
    cfg.timeout = Some(Duration::from_millis(200));
    cfg.backoff = exact_backoff(Duration::ZERO, 1.0);
    let (control, run) = start(Worker::new(client.clone(), handler, cfg));

    wait_state(&client, &quick, "complete").await;
    assert!(!returned.get(), "the blocked handler is still blocked");
    let done = wait_state(&client, &blocker, "complete").await;
    assert!(
        !returned.get(),
        "its retry completed while it was still blocked"
    );
    unblock.send(()).expect("unblock");
    returned.wait("the blocked handler to return").await;
    let report = finish(&control, run).await;
    let whats = history_whats(&done);
    assert_eq!(
        whats.iter().filter(|w| *w == "popped").count(),
        2,
        "{whats:?}"
    );
    assert_eq!((report.retried, report.completed), (1, 2));
}
