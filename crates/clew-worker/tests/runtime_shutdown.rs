//! The worker runtime against a real temporary SQLite store: stopping now,
//! stopping after the running jobs, the grace period, pausing.

mod runtime_support;

use std::time::Duration;

use async_trait::async_trait;
use clew_worker::{Handler, Job, JobContext, Outcome, Worker, WorkerState};
use runtime_support::*;

/// A handler that signals `started` and then waits for `go` (forever when
/// `go` is never set).
struct Gated {
    started: Flag,
    go: Flag,
}

#[async_trait]
impl Handler for Gated {
    async fn perform(&self, _job: &Job, _ctx: &JobContext) -> Outcome {
        self.started.set();
        while !self.go.get() {
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
        Outcome::complete()
    }
}

fn gated(started: &Flag, go: &Flag) -> Gated {
    Gated {
        started: started.clone(),
        go: go.clone(),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn stop_now_releases_running_jobs_at_once() {
    let (client, _dir) = store();
    let a = put(&client, "q", "Slow", 5).await;
    let b = put(&client, "q", "Slow", 5).await;
    let started = Flag::default();
    let never = Flag::default();
    let mut cfg = config("w-now", &["q"]);
    cfg.concurrency = 2;
    let (control, run) = start(Worker::new(client.clone(), gated(&started, &never), cfg));
    wait_for("both jobs to run", || async {
        control.status().running.len() == 2
    })
    .await;

    control.stop_now();
    let report = tokio::time::timeout(DEADLINE, run)
        .await
        .expect("stops in time")
        .expect("no panic");
    let mut both = vec![a.clone(), b.clone()];
    both.sort();
    assert_eq!(report.released, 2, "{report:?}");
    assert_eq!(report.unfinished, both);
    assert!(report.not_released.is_empty());
    assert_eq!(report.completed, 0);
    for jid in [&a, &b] {
        let j = job(&client, jid).await.expect("job");
        assert_eq!(j.state, "waiting", "back in its queue, not left to expire");
        assert_eq!(j.worker, "");
        assert_eq!(j.remaining, 5, "no retry spent");
        assert_eq!(
            history_whats(&j).last().map(String::as_str),
            Some("released")
        );
    }
    assert_eq!(control.status().state, WorkerState::Stopped);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn stop_after_running_waits_for_the_running_job_and_takes_no_more() {
    let (client, _dir) = store();
    let first = put(&client, "q", "Slow", 5).await;
    let started = Flag::default();
    let go = Flag::default();
    let (control, run) = start(Worker::new(
        client.clone(),
        gated(&started, &go),
        config("w-after", &["q"]),
    ));
    started.wait("the first job to start").await;
    let second = put(&client, "q", "Slow", 5).await;

    control.stop_after_running();
    wait_for("the worker to be stopping", || async {
        control.status().state == WorkerState::Stopping
    })
    .await;
    assert!(!run.is_finished(), "waits for the running job");
    assert_eq!(job(&client, &first).await.expect("job").state, "running");

    go.set();
    let report = tokio::time::timeout(DEADLINE, run)
        .await
        .expect("stops in time")
        .expect("no panic");
    assert_eq!(report.completed, 1);
    assert!(report.unfinished.is_empty(), "{report:?}");
    assert_eq!(job(&client, &first).await.expect("job").state, "complete");
    let second = job(&client, &second).await.expect("job");
    assert_eq!(second.state, "waiting", "no new job taken while stopping");
    assert_eq!(history_whats(&second), ["put"]);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn stop_after_running_releases_what_outlives_the_grace_period() {
    let (client, _dir) = store();
    let jid = put(&client, "q", "Endless", 3).await;
    let started = Flag::default();
    let never = Flag::default();
    let mut cfg = config("w-grace", &["q"]);
    cfg.shutdown_grace = Duration::from_millis(300);
    let (control, run) = start(Worker::new(client.clone(), gated(&started, &never), cfg));
    started.wait("the job to start").await;

    control.stop_after_running();
    let report = tokio::time::timeout(DEADLINE, run)
        .await
        .expect("stops in time")
        .expect("no panic");
    assert_eq!(report.released, 1);
    assert_eq!(report.unfinished, vec![jid.clone()], "listed as unfinished");
    assert!(report.not_released.is_empty());
    let j = job(&client, &jid).await.expect("job");
    assert_eq!((j.state.as_str(), j.remaining), ("waiting", 3));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn stop_now_during_a_graceful_stop_releases_at_once() {
    let (client, _dir) = store();
    let jid = put(&client, "q", "Endless", 3).await;
    let started = Flag::default();
    let never = Flag::default();
    let mut cfg = config("w-escalate", &["q"]);
    cfg.shutdown_grace = Duration::from_secs(3600);
    let (control, run) = start(Worker::new(client.clone(), gated(&started, &never), cfg));
    started.wait("the job to start").await;
    control.stop_after_running();
    wait_for("the worker to be stopping", || async {
        control.status().state == WorkerState::Stopping
    })
    .await;
    control.stop_now();
    let report = tokio::time::timeout(DEADLINE, run)
        .await
        .expect("stops long before the hour of grace")
        .expect("no panic");
    assert_eq!(report.released, 1);
    assert_eq!(job(&client, &jid).await.expect("job").state, "waiting");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn pause_takes_no_new_jobs_until_resume() {
    let (client, _dir) = store();
    let worker = Worker::new(
        client.clone(),
        FnHandler(|_job, _ctx| async { Outcome::complete() }),
        config("w-pause", &["q"]),
    );
    let control = worker.control();
    control.pause();
    assert!(control.is_paused());
    let run = tokio::spawn(worker.run());
    let jid = put(&client, "q", "Later", 5).await;

    // Let the paused worker go round its loop several times.
    wait_for("the worker to be paused", || async {
        control.status().state == WorkerState::Paused
    })
    .await;
    let turns = control.status().turns;
    wait_for("a few more turns", || async {
        control.status().turns >= turns + 5
    })
    .await;
    let j = job(&client, &jid).await.expect("job");
    assert_eq!(j.state, "waiting", "not taken while paused");
    assert_eq!(control.status().state, WorkerState::Paused);

    control.resume();
    assert!(!control.is_paused());
    wait_state(&client, &jid, "complete").await;
    let report = finish(&control, run).await;
    assert_eq!(report.completed, 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_worker_stopped_before_it_runs_returns_at_once() {
    let (client, _dir) = store();
    let jid = put(&client, "q", "Untouched", 5).await;
    let worker = Worker::new(
        client.clone(),
        FnHandler(|_job, _ctx| async { Outcome::complete() }),
        config("w-never", &["q"]),
    );
    worker.control().stop_now();
    let report = tokio::time::timeout(DEADLINE, worker.run())
        .await
        .expect("returns");
    assert_eq!(report, clew_worker::ShutdownReport::default());
    assert_eq!(job(&client, &jid).await.expect("job").state, "waiting");
}
