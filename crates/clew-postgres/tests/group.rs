//! Group commit in `PostgresStore`: commands queued behind one another run
//! in one transaction; a refused command in a group is rolled back alone
//! (no effect, no events) while the rest commit; event numbers stay in
//! commit order across groups and pool threads.
//!
//! To make a queue form on purpose, a test holds the schema's command lock
//! from a connection of its own: the store's thread waits for it with the
//! first command while the next ones queue up behind. Puts of new jobs run
//! next to pops and completes by default, not in groups
//! ([`PostgresOptions::concurrent_puts`]); the tests that group puts turn
//! that off ([`puts_alone_store`]).
//!
//! Each test uses its own temporary schema of the test database
//! (`CLEW_TEST_POSTGRES_URL`); without PostgreSQL they print why and pass,
//! unless `CI=true`.

mod common;
use common::{call, ok, page_log_until, CommandLock};
use std::io::Write as _;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Duration;

use clew_core::{
    Command, Engine, Error, Event, MemorySink, Origin, PendingEvent, Reply, Store, Timestamp, Tx,
};
use clew_postgres::testing::{self, TempSchema};
use clew_postgres::PostgresOptions;
use serde_json::Value;

/// A store of one pool thread whose puts hold the command lock
/// exclusively, as every command but pops, completes and plain puts does:
/// queued behind one another, they run as one group.
fn puts_alone_store(schema: &TempSchema) -> Arc<clew_postgres::PostgresStore> {
    let options = PostgresOptions {
        pool_size: 1,
        concurrent_puts: false,
        ..schema.options()
    };
    Arc::new(schema.open(options).expect("open"))
}

/// Every event of the log, paged.
async fn whole_log(store: &dyn Store) -> Vec<Event> {
    let mut out: Vec<Event> = Vec::new();
    loop {
        let after = out.last().map_or(0, |e| e.seq);
        let batch = store.events_after(after, 500).await.expect("events_after");
        if batch.is_empty() {
            return out;
        }
        out.extend(batch);
    }
}

/// Puts `jids` at once, each as its own call, while the command lock is
/// held, so they queue up behind the pool's thread; then releases the lock
/// and returns each put's result, in `jids` order.
async fn put_queued(
    engine: &Engine,
    schema: &TempSchema,
    jids: &[String],
) -> Vec<clew_core::Result<Value>> {
    let lock = CommandLock::hold(schema);
    let tasks: Vec<_> = jids
        .iter()
        .map(|jid| {
            let engine = engine.clone();
            let jid = jid.clone();
            tokio::spawn(async move {
                call(&engine, "put", 2.0, &["w", "q", &jid, "k", "{}", "0"]).await
            })
        })
        .collect();
    // Every call is queued on its first poll; leave them the time to be
    // polled. (No assertion depends on how long anything takes.)
    tokio::time::sleep(Duration::from_millis(500)).await;
    lock.release();
    let mut results = Vec::new();
    for task in tasks {
        results.push(task.await.expect("task"));
    }
    results
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn commands_queued_behind_one_another_commit_in_one_transaction() {
    if testing::skip() {
        return;
    }
    let schema = TempSchema::new();
    let store = puts_alone_store(&schema);
    let sink = MemorySink::default();
    let engine = Engine::new(store.clone()).with_sink(Arc::new(sink.clone()));
    let (commands, transactions) = (store.commands_run(), store.transactions_run());
    let round_trips = store.round_trips_run();

    let jids: Vec<String> = (0..40).map(|i| format!("job-{i:02}")).collect();
    let results = put_queued(&engine, &schema, &jids).await;
    let round_trips = store.round_trips_run() - round_trips;
    for (jid, result) in jids.iter().zip(results) {
        assert_eq!(result.expect("put"), Value::String(jid.clone()));
    }

    let commands = store.commands_run() - commands;
    let transactions = store.transactions_run() - transactions;
    assert_eq!(commands, 40);
    // They queue behind the lock and commit together: one transaction when
    // the pool's thread found them all queued, two when it took the first
    // one alone before the others arrived.
    assert!(
        transactions * 2 <= commands,
        "{commands} commands in {transactions} transactions"
    );
    let _ = writeln!(
        std::io::stderr().lock(),
        "{commands} commands in {transactions} transactions, {round_trips} round trips"
    );
    // A group's jobs (and placement values) are read in one query and its
    // events appended in one statement with the commit, not one round trip
    // per command (before: at least one per command; now 11 for 2
    // transactions, statements prepared on first use included).
    assert!(
        round_trips <= 6 * transactions,
        "{round_trips} round trips for {transactions} transactions"
    );
    // Every put committed, with its events, published once in log order.
    for jid in &jids {
        assert_eq!(ok(&engine, "get", 3.0, &[jid]).await["jid"], jid.as_str());
    }
    let log = whole_log(&*store).await;
    assert_eq!(sink.events(), log);
    for jid in &jids {
        assert!(
            log.iter().any(|e| e.message.contains(jid.as_str())),
            "no event of {jid}"
        );
    }
    store.close().await.expect("close");
}

/// The real logic, but a put whose jid starts with `refused` is refused
/// after the logic has written it (job row, history, pending events).
fn refuse_marked_puts(
    tx: &mut dyn Tx,
    now: Timestamp,
    origin: &Origin,
    command: &Command,
    events: &mut Vec<PendingEvent>,
) -> clew_core::Result<Reply> {
    let reply = clew_core::logic::apply(tx, now, origin, command, events)?;
    match command {
        Command::Put(put) if put.jid.starts_with("refused") => {
            Err(Error::invalid(format!("{} refused on purpose", put.jid)))
        }
        _ => Ok(reply),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_refused_command_in_a_group_has_no_effect_and_the_others_commit() {
    if testing::skip() {
        return;
    }
    let schema = TempSchema::new();
    let options = PostgresOptions {
        pool_size: 1,
        concurrent_puts: false,
        ..schema.options()
    };
    let store = Arc::new(
        schema
            .open_with_logic(options, refuse_marked_puts)
            .expect("open"),
    );
    let sink = MemorySink::default();
    let engine = Engine::new(store.clone()).with_sink(Arc::new(sink.clone()));
    let (commands, transactions) = (store.commands_run(), store.transactions_run());

    let jids: Vec<String> = ["a", "b", "refused-1", "c", "d", "refused-2", "e"]
        .iter()
        .map(|s| (*s).to_owned())
        .collect();
    let results = put_queued(&engine, &schema, &jids).await;
    for (jid, result) in jids.iter().zip(results) {
        if jid.starts_with("refused") {
            let e = result.expect_err("refused");
            assert!(e.message().contains("refused on purpose"), "{e}");
        } else {
            assert_eq!(result.expect("put"), Value::String(jid.clone()));
        }
    }
    let commands = store.commands_run() - commands;
    let transactions = store.transactions_run() - transactions;
    assert_eq!(commands, 7);
    let _ = writeln!(
        std::io::stderr().lock(),
        "{commands} commands in {transactions} transactions"
    );
    // The queued puts ran optimistically, were sent back by a refusal and
    // ran again with savepoints (two transactions, three if the first put
    // was taken alone before the others arrived): fewer transactions than
    // commands all the same.
    assert!(
        transactions < commands,
        "{commands} commands in {transactions} transactions"
    );

    let log = whole_log(&*store).await;
    assert_eq!(sink.events(), log, "published once each, in log order");
    assert!(log.windows(2).all(|w| w[0].seq < w[1].seq));
    for jid in &jids {
        let job = ok(&engine, "get", 3.0, &[jid]).await;
        let mentioned = log.iter().any(|e| e.message.contains(jid.as_str()));
        if jid.starts_with("refused") {
            assert_eq!(job, Value::Null, "{jid} left no job");
            assert!(!mentioned, "{jid} left no event");
        } else {
            assert_eq!(job["jid"], jid.as_str());
            assert!(mentioned, "no event of {jid}");
        }
    }
    // The queue holds exactly the committed puts.
    let popped = ok(&engine, "pop", 4.0, &["q", "w1", "100"]).await;
    let mut popped: Vec<&str> = popped
        .as_array()
        .expect("jobs")
        .iter()
        .filter_map(|job| job["jid"].as_str())
        .collect();
    popped.sort_unstable();
    assert_eq!(popped, ["a", "b", "c", "d", "e"]);
    store.close().await.expect("close");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn events_stay_in_commit_order_across_groups_and_threads() {
    events_stay_in_commit_order(false).await;
}

/// Puts running next to pops and completes (the default): every command of
/// the test numbers events while others do, and the reader must still
/// never see a number appear below one it has read.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn events_stay_in_commit_order_with_puts_next_to_pops_and_completes() {
    events_stay_in_commit_order(true).await;
}

/// Putters, poppers and completers on one store while a reader pages the
/// log; with `concurrent_puts` off the puts run in groups.
async fn events_stay_in_commit_order(concurrent_puts: bool) {
    if testing::skip() {
        return;
    }
    const PUTTERS: usize = 8;
    const PUTS: usize = 40;
    let total = PUTTERS * PUTS;
    let schema = TempSchema::new();
    let options = PostgresOptions {
        concurrent_puts,
        ..schema.options()
    };
    let store = Arc::new(schema.open(options).expect("open"));
    let sink = MemorySink::default();
    let engine = Engine::new(store.clone()).with_sink(Arc::new(sink.clone()));
    let (commands, transactions) = (store.commands_run(), store.transactions_run());

    // A reader pages the log by number while commands run: no event may
    // appear later below a number it has already read.
    let done = Arc::new(tokio::sync::Notify::new());
    let reader = tokio::spawn(page_log_until(store.clone(), done.clone()));

    let mut tasks = Vec::new();
    for p in 0..PUTTERS {
        let engine = engine.clone();
        tasks.push(tokio::spawn(async move {
            for i in 0..PUTS {
                let jid = format!("p{p}-{i:03}");
                let now = 10.0 + i as f64;
                let put = ok(&engine, "put", now, &["w", "q", &jid, "k", "{}", "0"]).await;
                assert_eq!(put, Value::String(jid));
            }
        }));
    }
    let completed = Arc::new(AtomicUsize::new(0));
    for w in 0..2 {
        let engine = engine.clone();
        let completed = completed.clone();
        tasks.push(tokio::spawn(async move {
            let worker = format!("w{w}");
            while completed.load(Ordering::SeqCst) < total {
                let jobs = ok(&engine, "pop", 100.0, &["q", &worker, "10"]).await;
                let jobs = jobs.as_array().cloned().unwrap_or_default();
                if jobs.is_empty() {
                    tokio::time::sleep(Duration::from_millis(5)).await;
                }
                for job in jobs {
                    let jid = job["jid"].as_str().expect("jid").to_owned();
                    ok(&engine, "complete", 101.0, &[&jid, &worker, "q", "{}"]).await;
                    completed.fetch_add(1, Ordering::SeqCst);
                }
            }
        }));
    }
    for task in tasks {
        task.await.expect("task");
    }
    done.notify_one();
    let seen = reader.await.expect("reader");

    let log = whole_log(&*store).await;
    assert!(log.windows(2).all(|w| w[0].seq < w[1].seq));
    let seqs = |events: &[Event]| events.iter().map(|e| e.seq).collect::<Vec<_>>();
    assert_eq!(seqs(&seen), seqs(&log), "the concurrent reader saw the log");
    assert_eq!(
        seqs(&sink.events()),
        seqs(&log),
        "published in commit order"
    );
    let completes = log
        .iter()
        .filter(|e| e.channel == "ql:log" && e.message.contains("\"completed\""))
        .count();
    assert_eq!(completes, total);

    let commands = store.commands_run() - commands;
    let transactions = store.transactions_run() - transactions;
    let _ = writeln!(
        std::io::stderr().lock(),
        "{commands} commands in {transactions} transactions"
    );
    if !concurrent_puts {
        assert!(
            transactions < commands,
            "{commands} commands in {transactions} transactions"
        );
    }
    store.close().await.expect("close");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_read_queued_among_commands_is_answered_after_their_group() {
    if testing::skip() {
        return;
    }
    let schema = TempSchema::new();
    let store = puts_alone_store(&schema);
    let engine = Engine::new(store.clone()).with_sink(Arc::new(MemorySink::default()));
    let lock = CommandLock::hold(&schema);
    let put = |jid: &'static str| {
        let engine = engine.clone();
        tokio::spawn(
            async move { call(&engine, "put", 2.0, &["w", "q", jid, "k", "{}", "0"]).await },
        )
    };
    let (a, b) = (put("a"), put("b"));
    tokio::time::sleep(Duration::from_millis(200)).await;
    let read = {
        let store = store.clone();
        tokio::spawn(async move { store.events_after(0, 1000).await })
    };
    tokio::time::sleep(Duration::from_millis(200)).await;
    let c = put("c");
    tokio::time::sleep(Duration::from_millis(200)).await;
    lock.release();
    for (jid, task) in [("a", a), ("b", b), ("c", c)] {
        assert_eq!(task.await.expect("task").expect("put"), jid);
    }
    // The read was taken while the group gathered and kept for after it:
    // it sees the group's commits whole (a and b), in number order.
    let read = read.await.expect("task").expect("events_after");
    assert!(read.windows(2).all(|w| w[0].seq < w[1].seq));
    for jid in ["a", "b"] {
        assert!(read
            .iter()
            .any(|e| e.message.contains(&format!("\"{jid}\""))));
    }
    assert!(whole_log(&*store).await.len() > read.len(), "c came after");
    store.close().await.expect("close");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_refused_batch_item_in_a_group_has_no_effect_and_the_rest_commits() {
    if testing::skip() {
        return;
    }
    let schema = TempSchema::new();
    let store = puts_alone_store(&schema);
    let sink = MemorySink::default();
    let engine = Engine::new(store.clone()).with_sink(Arc::new(sink.clone()));
    let put = |jid: &str, must_exist: bool| {
        let mut params = clew_core::command::PutParams::new("q", "k");
        params.jid = jid.to_owned();
        params.must_exist = must_exist;
        Command::Put(params)
    };
    // A put, a non-atomic batch whose middle item (a requeue of a job that
    // does not exist) is refused, a put: queued behind the lock, so they
    // run as one group, optimistically first (batch items without
    // savepoints), then again with savepoints.
    let lock = CommandLock::hold(&schema);
    let mut tasks = Vec::new();
    for command in [
        put("x", false),
        Command::Batch {
            commands: vec![put("b1", false), put("nope", true), put("b2", false)],
            atomic: false,
        },
        put("y", false),
    ] {
        let engine = engine.clone();
        tasks.push(tokio::spawn(async move {
            engine.execute_at(Timestamp::from_secs(2), command).await
        }));
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    tokio::time::sleep(Duration::from_millis(300)).await;
    lock.release();
    let mut replies = Vec::new();
    for task in tasks {
        replies.push(task.await.expect("task").expect("command"));
    }
    let Reply::Batch(items) = &replies[1] else {
        panic!("batch: {:?}", replies[1]);
    };
    let items: Vec<bool> = items.iter().map(Result::is_ok).collect();
    assert_eq!(items, [true, false, true]);

    let log = whole_log(&*store).await;
    assert_eq!(sink.events(), log, "published once each, in log order");
    for jid in ["x", "b1", "b2", "y"] {
        let job = ok(&engine, "get", 3.0, &[jid]).await;
        assert_eq!(job["jid"], jid, "{job}");
        assert_eq!(job["history"].as_array().map(Vec::len), Some(1), "{job}");
    }
    assert_eq!(ok(&engine, "get", 3.0, &["nope"]).await, Value::Null);
    assert!(!log.iter().any(|e| e.message.contains("nope")));
    let popped = ok(&engine, "pop", 4.0, &["q", "w1", "100"]).await;
    assert_eq!(popped.as_array().map(Vec::len), Some(4), "{popped}");
    store.close().await.expect("close");
}
