//! LISTEN/NOTIFY on a real PostgreSQL: a store's commits reach another
//! store on the same schema through `Store::subscribe_commits` (and a
//! server built on it wakes its event streams); a job put through the SQL
//! function appears with no other traffic, drained by the listener.
//!
//! Waits are bounded (a deadline for failure, never a timing assertion).
//! Each test uses its own temporary schema of the test database
//! (`CLEW_TEST_POSTGRES_URL`); without PostgreSQL they print why and pass,
//! unless `CI=true`.

use std::sync::Arc;
use std::time::Duration;

use clew_core::command::PutParams;
use clew_core::{Command, Engine, MemorySink, NullSink, Store};
use clew_postgres::testing::{self, TempSchema};
use clew_postgres::{PostgresOptions, PostgresStore, SchemaName};
use tokio::sync::watch;

/// How long a notification may take before the test fails.
const DEADLINE: Duration = Duration::from_secs(20);

/// A store on `schema` with its listener on.
fn listening(schema: &TempSchema) -> Arc<PostgresStore> {
    let options = PostgresOptions {
        listen: true,
        ..schema.options()
    };
    Arc::new(schema.open(options).expect("open"))
}

/// Waits until `rx` shows at least `seq`.
async fn until_at_least(rx: &mut watch::Receiver<i64>, seq: i64, what: &str) {
    tokio::time::timeout(DEADLINE, rx.wait_for(|latest| *latest >= seq))
        .await
        .unwrap_or_else(|_| panic!("{what}: no notification of seq {seq} within {DEADLINE:?}"))
        .expect("the store is gone");
}

#[tokio::test]
async fn a_second_store_sees_the_first_stores_commits() {
    if testing::skip() {
        return;
    }
    let schema = TempSchema::new();
    let first = listening(&schema);
    let second = listening(&schema);
    let quiet = Arc::new(schema.open(schema.options()).expect("open"));
    assert!(
        quiet.subscribe_commits().is_none(),
        "no listener, no announcements"
    );
    let mut rx = second
        .subscribe_commits()
        .expect("a listening store announces commits");

    let engine = Engine::new(first.clone()).with_sink(Arc::new(NullSink));
    for i in 0..3 {
        let jid = engine
            .put(PutParams::new("q", format!("K{i}")))
            .await
            .expect("put");
        let latest = first.events_after(0, 1_000).await.expect("events");
        let seq = latest.last().expect("the put's events").seq;
        until_at_least(&mut rx, seq, &jid).await;
    }

    // A server over the second store wakes its event streams too.
    let state = clew_server::AppState::new(
        Engine::new(second.clone()),
        clew_server::ServerConfig::default(),
    );
    let mut wake = state.event_wakeups();
    engine.put(PutParams::new("q", "K")).await.expect("put");
    let seq = first
        .events_after(0, 1_000)
        .await
        .expect("events")
        .last()
        .expect("events")
        .seq;
    until_at_least(&mut wake, seq, "the server's wake-ups").await;
    for store in [first, second, quiet] {
        store.close().await.expect("close");
    }
}

#[tokio::test]
async fn a_put_through_sql_appears_with_no_other_traffic() {
    if testing::skip() {
        return;
    }
    let schema = TempSchema::new();
    let store = listening(&schema);
    let sink = Arc::new(MemorySink::default());
    let engine = Engine::new(store.clone()).with_sink(sink.clone());
    // One command, so the store knows the engine's sink.
    engine.get("nothing").await.expect("get");
    let mut rx = store.subscribe_commits().expect("announces commits");

    let name = SchemaName::new(schema.name()).expect("schema").quoted();
    // The synchronous driver must not run on a runtime's thread.
    let jid = std::thread::spawn(move || {
        let mut app = postgres::Client::connect(&testing::test_url(), postgres::NoTls)
            .expect("app connection");
        let mut tx = app.transaction().expect("begin");
        let jid: String = tx
            .query_one(&format!("SELECT {name}.put('q', 'K', '{{\"n\": 1}}')"), &[])
            .expect("put")
            .get(0);
        tx.commit().expect("commit");
        jid
    })
    .join()
    .expect("app thread");

    // No command runs: the listener drains and announces the events.
    until_at_least(&mut rx, 2, "the drain").await;
    let log = store.events_after(0, 100).await.expect("events");
    let enqueued = log
        .iter()
        .find_map(clew_core::Event::lifecycle)
        .expect("the enqueued event");
    assert_eq!(enqueued.jid, jid);
    assert_eq!(enqueued.args["n"], 1);
    // The engine's sink got the drained events as well.
    let deadline = tokio::time::Instant::now() + DEADLINE;
    while sink.events() != log {
        assert!(
            tokio::time::Instant::now() < deadline,
            "the sink missed the drain"
        );
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    let job = engine.get(&jid).await.expect("get").expect("the job");
    assert_eq!(job.history.len(), 1);
    store.close().await.expect("close");
}

#[tokio::test]
async fn a_burst_of_sql_puts_is_drained_completely_with_no_other_traffic() {
    if testing::skip() {
        return;
    }
    const PUTS: usize = 25;
    let schema = TempSchema::new();
    let store = listening(&schema);
    let mut rx = store.subscribe_commits().expect("announces commits");
    let name = SchemaName::new(schema.name()).expect("schema").quoted();
    // The synchronous driver must not run on a runtime's thread.
    let jids: Vec<String> = std::thread::spawn(move || {
        let mut app = postgres::Client::connect(&testing::test_url(), postgres::NoTls)
            .expect("app connection");
        (0..PUTS)
            .map(|i| {
                let mut tx = app.transaction().expect("begin");
                let jid: String = tx
                    .query_one(
                        &format!("SELECT {name}.put('q', 'K', '{{\"i\": {i}}}')"),
                        &[],
                    )
                    .expect("put")
                    .get(0);
                tx.commit().expect("commit");
                jid
            })
            .collect()
    })
    .join()
    .expect("app thread");

    // Each put makes two events (the qless `put` and `enqueued`).
    until_at_least(&mut rx, 2 * PUTS as i64, "the drains").await;
    let enqueued: Vec<String> = store
        .events_after(0, 1_000)
        .await
        .expect("events")
        .iter()
        .filter_map(clew_core::Event::lifecycle)
        .map(|l| l.jid)
        .collect();
    assert_eq!(enqueued, jids, "every put, once, in commit order");
    store.close().await.expect("close");
}

/// An idle worker on the database (no server) waits through
/// `Engine::wait_for_jobs` on its store's announcements: a put by another
/// process ends the wait, long before its timeout.
#[tokio::test]
async fn a_waiting_engine_is_woken_by_another_stores_put() {
    if testing::skip() {
        return;
    }
    let schema = TempSchema::new();
    let producer = Engine::new(listening(&schema)).with_sink(Arc::new(NullSink));
    let worker = Engine::new(listening(&schema)).with_sink(Arc::new(NullSink));
    let queues = vec!["wake".to_owned()];
    let waiting = {
        let worker = worker.clone();
        let queues = queues.clone();
        tokio::spawn(async move {
            let started = std::time::Instant::now();
            let ready = worker
                .wait_for_jobs(clew_core::engine::WaitFor {
                    queues: &queues,
                    timeout: Duration::from_secs(60),
                    start: worker.now(),
                    commits: worker.store().subscribe_commits(),
                    stop: None,
                })
                .await
                .expect("wait");
            (ready, started.elapsed())
        })
    };
    tokio::time::sleep(Duration::from_millis(100)).await;
    producer
        .put(PutParams::new("wake", "K"))
        .await
        .expect("put");
    let (ready, took) = tokio::time::timeout(DEADLINE, waiting)
        .await
        .expect("woken within the deadline")
        .expect("task");
    assert_eq!(ready.as_deref(), Some("wake"));
    assert!(
        took < Duration::from_secs(50),
        "woken by the put, not the timeout"
    );
    producer.close().await.expect("close");
    worker.close().await.expect("close");
}

/// A waiter's look ([`Store::ready_hint`]) counts what a pop would take,
/// read without the command lock: the work list up to the limit, nothing
/// from a paused queue, a scheduled job once due, a lock once expired, a
/// recurring template once due; and declines (the waiter peeks) while the
/// put outbox holds rows or a rate-limited throttle holds jobs back.
#[tokio::test]
async fn the_ready_hint_counts_what_a_pop_would_take() {
    if testing::skip() {
        return;
    }
    let schema = TempSchema::new();
    let store = Arc::new(schema.open(schema.options()).expect("open"));
    let engine = Engine::new(store.clone()).with_sink(Arc::new(NullSink));
    let now = engine.now();
    let hint = |queue: &'static str, at: clew_core::Timestamp, limit: usize| {
        let store = store.clone();
        async move { store.ready_hint(queue, at, limit).await.expect("hint") }
    };
    let run = |command: Command| {
        let engine = engine.clone();
        async move { engine.execute(command).await.expect("command") }
    };
    let strings = |names: &[&str]| names.iter().map(|s| (*s).to_owned()).collect::<Vec<_>>();

    assert_eq!(hint("q", now, 10).await, Some(0), "an empty queue");
    for _ in 0..3 {
        engine.put(PutParams::new("q", "K")).await.expect("put");
    }
    assert_eq!(hint("q", now, 10).await, Some(3));
    assert_eq!(hint("q", now, 2).await, Some(2), "at most the limit");
    // The server's timing wrapper passes it on (else its waiters peek).
    let timed = clew_server::metrics::Metrics::new().timed_store(store.clone());
    assert_eq!(timed.ready_hint("q", now, 10).await.expect("hint"), Some(3));
    let peeked = match run(Command::Peek {
        queue: "q".into(),
        count: 10,
    })
    .await
    {
        clew_core::Reply::Jobs(jobs) => jobs.len(),
        other => panic!("peek: {other:?}"),
    };
    assert_eq!(peeked, 3, "the peek agrees");
    run(Command::Pause {
        queues: strings(&["q"]),
    })
    .await;
    assert_eq!(hint("q", now, 10).await, Some(0), "a paused queue");
    run(Command::Unpause {
        queues: strings(&["q"]),
    })
    .await;
    assert_eq!(hint("q", now, 10).await, Some(3), "unpaused");

    let mut later = PutParams::new("s", "K");
    later.delay = 100.0;
    engine.put(later).await.expect("put");
    assert_eq!(hint("s", now, 10).await, Some(0), "not yet due");
    assert_eq!(hint("s", now.add_secs(200.0), 10).await, Some(1), "due");

    engine.put(PutParams::new("l", "K")).await.expect("put");
    let popped = engine.pop("l", "w", 1).await.expect("pop");
    let expires = popped[0].record.expires;
    assert_eq!(hint("l", engine.now(), 10).await, Some(0), "locked");
    assert_eq!(
        hint("l", expires.add_secs(1.0), 10).await,
        Some(1),
        "the lock expired"
    );

    let recur = clew_core::qless::parse(
        "recur",
        &strings(&["r", "every-minute", "K", "{}", "interval", "60", "0"]),
    )
    .expect("recur");
    run(recur).await;
    assert_eq!(hint("r", now.add_secs(120.0), 10).await, Some(1), "due");

    run(Command::ThrottleSet {
        name: "t".into(),
        max: 0,
        rate: Some(clew_core::throttle::ThrottleRate {
            limit: 1,
            period: 3600,
        }),
    })
    .await;
    for _ in 0..2 {
        let mut p = PutParams::new("t", "K");
        p.throttles = Some(strings(&["t"]));
        engine.put(p).await.expect("put");
    }
    assert_eq!(engine.pop("t", "w", 2).await.expect("pop").len(), 1);
    assert_eq!(
        hint("t", engine.now(), 10).await,
        None,
        "a job held back by a rate limit: the waiter peeks"
    );
    run(Command::ThrottleDelete { name: "t".into() }).await;
    assert_eq!(hint("q", engine.now(), 10).await, Some(3));

    let name = SchemaName::new(schema.name()).expect("schema").quoted();
    let mut app = schema.connect().expect("connect");
    tokio::task::spawn_blocking(move || {
        app.query_one(
            &format!("SELECT {name}.put('q', 'K', '{{}}'::jsonb, '{{}}'::jsonb)"),
            &[],
        )
        .expect("sql put");
    })
    .await
    .expect("thread");
    assert_eq!(
        hint("q", engine.now(), 10).await,
        None,
        "an undrained outbox: the waiter peeks"
    );
    engine.close().await.expect("close");
}
