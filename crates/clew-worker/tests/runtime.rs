//! The worker runtime against a real temporary SQLite store: outcomes,
//! backoff, panics, middleware, reservers, visibility.

mod runtime_support;

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use async_trait::async_trait;
use clew_core::command::JobsListing;
use clew_core::{Command, Reply};
use clew_worker::{Backoff, Handler, Job, JobContext, Middleware, Next, Outcome, Reserver, Worker};
use runtime_support::*;

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_job_completes_and_its_data_can_be_replaced() {
    let (client, _dir) = store();
    let keep = put(&client, "q", "Keep", 5).await;
    let mut p = clew_core::command::PutParams::new("q", "Replace");
    p.data = r#"{"n":1}"#.into();
    let replace = client.put(p).await.expect("put");

    let handler = FnHandler(|job: Job, _ctx| async move {
        if job.klass == "Replace" {
            Outcome::Complete {
                data: Some(r#"{"n":2}"#.into()),
            }
        } else {
            Outcome::complete()
        }
    });
    let (control, run) = start(Worker::new(
        client.clone(),
        handler,
        config("w-complete", &["q"]),
    ));
    let kept = wait_state(&client, &keep, "complete").await;
    let replaced = wait_state(&client, &replace, "complete").await;
    let report = finish(&control, run).await;

    assert_eq!(kept.data, "{}");
    assert_eq!(replaced.data, r#"{"n":2}"#);
    assert_eq!(history_whats(&kept), ["put", "popped", "done"]);
    assert_eq!(report.completed, 2);
    assert_eq!(
        report.failed + report.retried + report.lost + report.errors,
        0
    );
    assert!(report.unfinished.is_empty());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn advance_moves_the_job_into_the_next_queue() {
    let (client, _dir) = store();
    let jid = put(&client, "first", "Step", 5).await;
    let handler = FnHandler(|_job, _ctx| async {
        Outcome::Advance {
            queue: "second".into(),
            delay: 0.0,
            depends: Vec::new(),
            data: Some(r#"{"step":2}"#.into()),
        }
    });
    let (control, run) = start(Worker::new(
        client.clone(),
        handler,
        config("w-adv", &["first"]),
    ));
    wait_for("the job to wait in the next queue", || async {
        job(&client, &jid)
            .await
            .is_some_and(|j| j.queue == "second" && j.state == "waiting")
    })
    .await;
    let report = finish(&control, run).await;
    let job = job(&client, &jid).await.expect("job");
    assert_eq!(history_whats(&job), ["put", "popped", "done", "put"]);
    assert_eq!(job.data, r#"{"step":2}"#);
    assert_eq!(report.completed, 1);
    let popped = client.pop("second", "other", 1).await.expect("pop");
    assert_eq!(popped.len(), 1);
    assert_eq!(popped[0].jid, jid);
}

/// Pops `queue` at `now + secs` on the store's engine (the clock of the
/// store is the machine's).
async fn pop_at(client: &clew_client::Client, queue: &str, secs: f64) -> Vec<String> {
    let engine = client.engine().expect("local client");
    let now = engine.now().add_secs(secs);
    match engine
        .execute_at(
            now,
            Command::Pop {
                queue: queue.into(),
                worker: "probe".into(),
                count: 10,
            },
        )
        .await
        .expect("pop")
    {
        Reply::Jobs(jobs) => jobs.iter().map(|j| j.jid().to_owned()).collect(),
        other => panic!("unexpected pop reply {other:?}"),
    }
}

async fn scheduled(client: &clew_client::Client, queue: &str) -> Vec<String> {
    let v = client
        .execute(Command::Jobs {
            listing: JobsListing::Scheduled,
            queue: queue.into(),
            offset: 0,
            count: 100,
        })
        .await
        .expect("jobs scheduled");
    serde_json::from_value(v).expect("a list of jids")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn retry_waits_for_the_queue_backoff_which_grows_with_the_attempt() {
    let (client, _dir) = store();
    let jid = put(&client, "q", "Flaky", 5).await;
    // One retry already spent elsewhere: the worker's retry is attempt 1,
    // so its delay is 30 s × 2 = 60 s.
    let taken = client.pop("q", "elsewhere", 1).await.expect("pop");
    assert_eq!(taken.len(), 1);
    assert_eq!(
        client
            .retry(&jid, "q", "elsewhere", 0.0)
            .await
            .expect("retry"),
        4
    );

    let handler = FnHandler(|_job, _ctx| async { Outcome::retry() });
    let mut cfg = config("w-retry", &["q"]);
    cfg.queue_backoffs =
        HashMap::from([("q".to_owned(), exact_backoff(Duration::from_secs(30), 2.0))]);
    let (control, run) = start(Worker::new(client.clone(), handler, cfg));
    let job = wait_state(&client, &jid, "scheduled").await;
    let report = finish(&control, run).await;

    assert_eq!(report.retried, 1);
    assert_eq!(job.remaining, 3);
    assert_eq!(scheduled(&client, "q").await, vec![jid.clone()]);
    assert!(
        pop_at(&client, "q", 50.0).await.is_empty(),
        "not before ~60 s"
    );
    assert_eq!(pop_at(&client, "q", 70.0).await, [jid]);
}

/// A handler whose own backoff overrides the worker's.
struct SlowBackoff;

#[async_trait]
impl Handler for SlowBackoff {
    async fn perform(&self, _job: &Job, _ctx: &JobContext) -> Outcome {
        Outcome::retry()
    }

    fn backoff(&self, _job: &Job) -> Option<Backoff> {
        Some(exact_backoff(Duration::from_secs(500), 2.0))
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_handler_backoff_overrides_the_queue_backoff_and_explicit_delays_win() {
    let (client, _dir) = store();
    let jid = put(&client, "q", "Slow", 5).await;
    let mut cfg = config("w-slow", &["q"]);
    cfg.queue_backoffs =
        HashMap::from([("q".to_owned(), exact_backoff(Duration::from_secs(1), 1.0))]);
    let (control, run) = start(Worker::new(client.clone(), SlowBackoff, cfg));
    wait_state(&client, &jid, "scheduled").await;
    finish(&control, run).await;
    assert!(
        pop_at(&client, "q", 400.0).await.is_empty(),
        "handler's 500 s"
    );
    assert_eq!(pop_at(&client, "q", 510.0).await, [jid]);

    // An explicit delay beats every policy.
    let jid = put(&client, "r", "Explicit", 5).await;
    let handler = FnHandler(|_job, _ctx| async { Outcome::retry_in(Duration::from_secs(7)) });
    let (control, run) = start(Worker::new(
        client.clone(),
        handler,
        config("w-explicit", &["r"]),
    ));
    wait_state(&client, &jid, "scheduled").await;
    finish(&control, run).await;
    assert!(pop_at(&client, "r", 5.0).await.is_empty());
    assert_eq!(pop_at(&client, "r", 8.0).await, [jid]);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn retry_without_retries_left_fails_the_job() {
    let (client, _dir) = store();
    let jid = put(&client, "q", "Doomed", 0).await;
    let handler = FnHandler(|_job, _ctx| async {
        Outcome::Retry {
            delay: None,
            group: Some("Doomed:Gone".into()),
            message: Some("upstream gone".into()),
        }
    });
    let (control, run) = start(Worker::new(
        client.clone(),
        handler,
        config("w-doomed", &["q"]),
    ));
    let job = wait_state(&client, &jid, "failed").await;
    let report = finish(&control, run).await;
    assert_eq!(job.failure_group(), Some("Doomed:Gone"));
    assert_eq!(report.failed, 1);
    assert_eq!(report.retried, 0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn fail_records_group_and_message() {
    let (client, _dir) = store();
    let jid = put(&client, "q", "Broken", 5).await;
    let handler = FnHandler(|_job, _ctx| async { Outcome::fail("Broken:KeyError", "no key 'x'") });
    let (control, run) = start(Worker::new(
        client.clone(),
        handler,
        config("w-fail", &["q"]),
    ));
    let job = wait_state(&client, &jid, "failed").await;
    let report = finish(&control, run).await;
    assert_eq!(job.failure_group(), Some("Broken:KeyError"));
    assert_eq!(job.failure["message"], "no key 'x'");
    assert_eq!(job.failure["worker"], "w-fail");
    assert_eq!(report.failed, 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn cancel_removes_the_job() {
    let (client, _dir) = store();
    let jid = put(&client, "q", "Unwanted", 5).await;
    let handler = FnHandler(|_job, _ctx| async { Outcome::Cancel });
    let (control, run) = start(Worker::new(
        client.clone(),
        handler,
        config("w-cancel", &["q"]),
    ));
    wait_for("the job to be cancelled", || async {
        job(&client, &jid).await.is_none()
    })
    .await;
    let report = finish(&control, run).await;
    assert_eq!(report.cancelled, 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_panic_fails_the_job_in_klass_panic() {
    let (client, _dir) = store();
    let jid = put(&client, "q", "Crashy", 5).await;
    let after = put(&client, "q", "Fine", 5).await;
    let handler = FnHandler(|job: Job, _ctx| async move {
        if job.klass == "Crashy" {
            panic!("index out of bounds: the len is 0");
        }
        Outcome::complete()
    });
    let (control, run) = start(Worker::new(
        client.clone(),
        handler,
        config("w-panic", &["q"]),
    ));
    let job = wait_state(&client, &jid, "failed").await;
    wait_state(&client, &after, "complete").await;
    let report = finish(&control, run).await;
    assert_eq!(job.failure_group(), Some("Crashy:panic"));
    let message = job.failure["message"].as_str().expect("message");
    assert!(message.contains("index out of bounds"), "{message}");
    assert_eq!((report.failed, report.completed), (1, 1));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn an_outcome_the_store_refuses_fails_the_job_with_the_reason() {
    let (client, _dir) = store();
    let jid = put(&client, "q", "BadData", 5).await;
    let handler = FnHandler(|_job, _ctx| async {
        Outcome::Complete {
            data: Some("not json".into()),
        }
    });
    let (control, run) = start(Worker::new(
        client.clone(),
        handler,
        config("w-bad", &["q"]),
    ));
    let job = wait_state(&client, &jid, "failed").await;
    let report = finish(&control, run).await;
    assert_eq!(job.failure_group(), Some("BadData:invalid-outcome"));
    assert!(
        job.failure["message"]
            .as_str()
            .unwrap_or("")
            .contains("data"),
        "{}",
        job.failure
    );
    assert_eq!(report.failed, 1);
}

type Trace = Arc<Mutex<Vec<String>>>;

struct Layer {
    name: &'static str,
    trace: Trace,
}

#[async_trait]
impl Middleware for Layer {
    async fn around(&self, job: &Job, ctx: &JobContext, next: Next<'_>) -> Outcome {
        self.trace
            .lock()
            .expect("trace")
            .push(format!("{} in", self.name));
        let out = next.run(job, ctx).await;
        self.trace
            .lock()
            .expect("trace")
            .push(format!("{} out", self.name));
        out
    }
}

/// Refuses jobs tagged `blocked` without running the handler, and turns
/// other failures into completions with a note.
struct Gate;

#[async_trait]
impl Middleware for Gate {
    async fn around(&self, job: &Job, ctx: &JobContext, next: Next<'_>) -> Outcome {
        if job.tags.iter().any(|t| t == "blocked") {
            return Outcome::fail("Gate:blocked", "refused by the gate");
        }
        match next.run(job, ctx).await {
            Outcome::Fail { message, .. } => Outcome::Complete {
                data: Some(serde_json::json!({ "swallowed": message }).to_string()),
            },
            other => other,
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn middleware_runs_outer_to_inner_and_can_short_circuit_or_rewrite() {
    let (client, _dir) = store();
    let plain = put(&client, "q", "Plain", 5).await;
    let trace = Trace::default();
    let handler = FnHandler({
        let trace = trace.clone();
        move |job: Job, _ctx| {
            let trace = trace.clone();
            async move {
                trace.lock().expect("trace").push("handler".into());
                if job.klass == "Failing" {
                    Outcome::fail("Failing:Err", "oops")
                } else {
                    Outcome::complete()
                }
            }
        }
    });
    let worker = Worker::new(client.clone(), handler, config("w-mw", &["q"]))
        .with_middleware(Layer {
            name: "outer",
            trace: trace.clone(),
        })
        .with_middleware(Layer {
            name: "inner",
            trace: trace.clone(),
        })
        .with_middleware(Gate);
    let (control, run) = start(worker);
    wait_state(&client, &plain, "complete").await;
    assert_eq!(
        *trace.lock().expect("trace"),
        ["outer in", "inner in", "handler", "inner out", "outer out"]
    );
    trace.lock().expect("trace").clear();

    let mut p = clew_core::command::PutParams::new("q", "Blocked");
    p.tags = Some(vec!["blocked".into()]);
    let blocked = client.put(p).await.expect("put");
    let job = wait_state(&client, &blocked, "failed").await;
    assert_eq!(job.failure_group(), Some("Gate:blocked"));
    assert_eq!(
        *trace.lock().expect("trace"),
        ["outer in", "inner in", "inner out", "outer out"],
        "the handler did not run"
    );

    let failing = put(&client, "q", "Failing", 5).await;
    let job = wait_state(&client, &failing, "complete").await;
    assert_eq!(job.data, r#"{"swallowed":"oops"}"#);
    let report = finish(&control, run).await;
    assert_eq!((report.completed, report.failed), (2, 1));
}

/// Runs a worker with `reserver` over queues `a` and `b` (3 jobs each, put
/// before it starts) and returns the queues in the order jobs ran.
async fn run_order(reserver: Reserver) -> Vec<String> {
    let (client, _dir) = store();
    let mut jids = Vec::new();
    for q in ["a", "b"] {
        for _ in 0..3 {
            jids.push(put(&client, q, "K", 5).await);
        }
    }
    let order: Trace = Trace::default();
    let handler = FnHandler({
        let order = order.clone();
        move |job: Job, _ctx| {
            let order = order.clone();
            async move {
                order.lock().expect("order").push(job.queue.clone());
                Outcome::complete()
            }
        }
    });
    let mut cfg = config("w-order", &["a", "b"]);
    cfg.reserver = reserver;
    let (control, run) = start(Worker::new(client.clone(), handler, cfg));
    for jid in &jids {
        wait_state(&client, jid, "complete").await;
    }
    finish(&control, run).await;
    let out = order.lock().expect("order").clone();
    out
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn reservers_choose_the_queue_order() {
    assert_eq!(
        run_order(Reserver::Ordered).await,
        ["a", "a", "a", "b", "b", "b"],
        "ordered drains the first queue first"
    );
    assert_eq!(
        run_order(Reserver::RoundRobin).await,
        ["a", "b", "a", "b", "a", "b"],
        "round robin alternates"
    );
    let shuffled = run_order(Reserver::ShuffledRoundRobin).await;
    assert!(
        shuffled == ["a", "b", "a", "b", "a", "b"] || shuffled == ["b", "a", "b", "a", "b", "a"],
        "shuffled round robin alternates too: {shuffled:?}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn workers_are_visible_idle_and_with_their_running_jobs() {
    let (client, _dir) = store();
    let started = Flag::default();
    let go = Flag::default();
    let handler = FnHandler({
        let (started, go) = (started.clone(), go.clone());
        move |_job, _ctx| {
            let (started, go) = (started.clone(), go.clone());
            async move {
                started.set();
                go.wait("the test to let the job finish").await;
                Outcome::complete()
            }
        }
    });
    let (control, run) = start(Worker::new(
        client.clone(),
        handler,
        config("w-seen", &["empty", "q"]),
    ));

    // Idle on empty queues, it still shows in `workers`.
    wait_for("the idle worker to be listed", || async {
        let v = client
            .execute(Command::Workers {
                worker: None,
                detail: true,
            })
            .await
            .expect("workers");
        v.as_array().is_some_and(|ws| {
            ws.iter()
                .any(|w| w["name"] == "w-seen" && w["last_seen"].as_f64().is_some_and(|t| t > 0.0))
        })
    })
    .await;

    let jid = put(&client, "q", "Visible", 5).await;
    started.wait("the job to start").await;
    let v = client
        .execute(Command::Workers {
            worker: Some("w-seen".into()),
            detail: true,
        })
        .await
        .expect("workers w-seen");
    assert_eq!(v["jobs"], serde_json::json!([jid.clone()]));
    assert!(v["last_seen"].as_f64().is_some_and(|t| t > 0.0), "{v}");
    let status = control.status();
    assert_eq!(status.running, vec![jid.clone()]);
    assert_eq!(status.state, clew_worker::WorkerState::Busy);

    go.set();
    wait_state(&client, &jid, "complete").await;
    let report = finish(&control, run).await;
    assert_eq!(report.completed, 1);
    assert_eq!(control.status().state, clew_worker::WorkerState::Stopped);
}
