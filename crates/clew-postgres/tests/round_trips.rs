//! Round trips to the database per command ([`PostgresStore::round_trips_run`]):
//! a put, a pop of 100 jobs, a complete. Commands on one schema run one at
//! a time, so their round trips bound the store's throughput; these bounds
//! catch a change that adds statements to the common commands.
//!
//! Uses its own temporary schema of the test database
//! (`CLEW_TEST_POSTGRES_URL`); without PostgreSQL it prints why and passes,
//! unless `CI=true`.

mod common;
use common::ok;
use std::sync::Arc;

use clew_core::command::{CompleteParams, PutParams};
use clew_core::{Command, Engine, Reply, Timestamp};
use clew_postgres::testing::{self, TempSchema};
use clew_postgres::PostgresOptions;
use serde_json::Value;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn round_trips_of_put_pop_and_complete() {
    if testing::skip() {
        return;
    }
    let schema = TempSchema::new();
    let store = common::one_thread_store(&schema);
    let engine = Engine::new(store.clone());
    // Warm up (statements prepared, queue known, statistics rows exist).
    ok(&engine, "put", 1.0, &["w", "q", "warm", "k", "{}", "0"]).await;
    ok(&engine, "pop", 1.0, &["q", "w", "1"]).await;
    ok(&engine, "complete", 1.0, &["warm", "w", "q", "{}"]).await;

    let mut puts = Vec::new();
    for i in 0..100 {
        let jid = format!("job-{i:03}");
        let before = store.round_trips_run();
        ok(&engine, "put", 2.0, &["w", "q", &jid, "k", "{}", "0"]).await;
        puts.push(store.round_trips_run() - before);
    }
    let (before, sent) = (store.round_trips_run(), store.statements_run());
    let popped = ok(&engine, "pop", 3.0, &["q", "w", "100"]).await;
    let pop = store.round_trips_run() - before;
    let pop_statements = store.statements_run() - sent;
    let Value::Array(popped) = popped else {
        panic!("pop: {popped}")
    };
    assert_eq!(popped.len(), 100);
    let mut completes = Vec::new();
    let sent = store.statements_run();
    for i in 0..100 {
        let jid = format!("job-{i:03}");
        let before = store.round_trips_run();
        ok(&engine, "complete", 4.0, &[&jid, "w", "q", "{}"]).await;
        completes.push(store.round_trips_run() - before);
    }
    let complete_statements = store.statements_run() - sent;
    let put = puts.iter().max().copied().unwrap_or(0);
    let complete = completes.iter().max().copied().unwrap_or(0);
    println!("round trips: put {put}, pop of 100 {pop}, complete {complete}");
    println!("statements: pop of 100 {pop_statements}, 100 completes {complete_statements}");
    // Before buffered writes and the transaction's facts: 13, 1514, 19;
    // before the commit went with the last writes and events: 5, 17, 9;
    // before every read was pipelined with the writes before it (bound
    // parameters): 4, 18, 7; before a pop skipped the rate-limited
    // throttles' query when none has waiting jobs (a transaction fact):
    // 3, 17, 6; before a queue's facts (paused, any recurring template,
    // any scheduled job) came in one query: 3, 16, 6; before a pop took
    // its placement values with one read (`Tx::seq_reserve`) instead of
    // blocks doubling from 2 to 64: 3, 14, 6; before timing statistics
    // were merged in SQL instead of read first (`Tx::stats_timing_add`)
    // and a concurrent pop's `BEGIN` and lock went with its first query:
    // 3, 8, 6; before a claiming pop read its work list ahead with its
    // expired locks: 3, 6, 5; before a complete ran next to pops (its
    // `BEGIN` and locks with its first query, its `COMMIT` on its own
    // after its events) and expiry read the complete count with its
    // listing: 3, 5, 5; before commands next to pops numbered their
    // events under the event lock held shared, their writes and that lock
    // in a round trip of their own before the numbering (so that the
    // process's numbering mutex is held for the insert of the events
    // alone): 3, 5, 4. Now 4, 6, 5.
    assert!(put <= 4, "put: {put} round trips");
    assert!(pop <= 6, "pop of 100: {pop} round trips");
    assert!(complete <= 5, "complete: {complete} round trips");
    // Statements the server runs one by one under the schema's lock:
    // before a round trip's job saves and history entries of one kind went
    // as one statement over arrays, 232 for the pop of 100 (a job save and
    // a history entry per job), 47 before the placement values came in
    // one read (each block's round trip sent its own sets); 18 before the
    // timing statistic was merged in SQL instead of read. Now 16.
    assert!(
        pop_statements <= 16,
        "pop of 100: {pop_statements} statements"
    );
}

/// Round trips of the batches workers and producers send: `put_many` (an
/// atomic batch of 100 puts) and `complete_many` (a non-atomic batch of
/// 100 completes, each item on its own); and a refused item of such a batch
/// leaves nothing behind while the others commit.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn round_trips_of_batches_of_puts_and_completes() {
    if testing::skip() {
        return;
    }
    let schema = TempSchema::new();
    let store = common::one_thread_store(&schema);
    let engine = Engine::new(store.clone());
    ok(&engine, "put", 1.0, &["w", "q", "warm", "k", "{}", "0"]).await;
    ok(&engine, "pop", 1.0, &["q", "w", "1"]).await;
    ok(&engine, "complete", 1.0, &["warm", "w", "q", "{}"]).await;

    let put = |jid: String| {
        let mut params = PutParams::new("q", "k");
        params.jid = jid;
        params.worker = "w".to_owned();
        Command::Put(params)
    };
    let complete = |jid: String| {
        Command::Complete(CompleteParams {
            jid,
            worker: "w".to_owned(),
            queue: "q".to_owned(),
            data: "{}".to_owned(),
            next: None,
            delay: 0.0,
            depends: Vec::new(),
            metadata: None,
        })
    };
    let batch = |commands: Vec<Command>, atomic: bool| Command::Batch { commands, atomic };
    let results = |reply: Reply| match reply {
        Reply::Batch(results) => results,
        other => panic!("batch: {other:?}"),
    };
    // Warm up the batches too (their statements prepared).
    let warm: Vec<Command> = ["warm-1", "warm-2"]
        .iter()
        .map(|jid| put((*jid).to_owned()))
        .collect();
    engine
        .execute_at(Timestamp::from_secs(1), batch(warm, true))
        .await
        .expect("put_many");
    ok(&engine, "pop", 1.0, &["q", "w", "2"]).await;
    let warm: Vec<Command> = ["warm-1", "warm-2"]
        .iter()
        .map(|jid| complete((*jid).to_owned()))
        .collect();
    let reply = engine
        .execute_at(Timestamp::from_secs(1), batch(warm, false))
        .await
        .expect("complete_many");
    assert!(results(reply).iter().all(Result::is_ok));

    let (before, sent) = (store.round_trips_run(), store.statements_run());
    let puts: Vec<Command> = (0..100).map(|i| put(format!("job-{i:03}"))).collect();
    let reply = engine
        .execute_at(Timestamp::from_secs(2), batch(puts, true))
        .await
        .expect("put_many");
    let put_many = store.round_trips_run() - before;
    let put_many_statements = store.statements_run() - sent;
    assert!(results(reply).iter().all(Result::is_ok));
    let popped = ok(&engine, "pop", 3.0, &["q", "w", "100"]).await;
    assert_eq!(popped.as_array().map(Vec::len), Some(100));

    let (before, transactions_before) = (store.round_trips_run(), store.transactions_run());
    let sent = store.statements_run();
    let completes: Vec<Command> = (0..100).map(|i| complete(format!("job-{i:03}"))).collect();
    let reply = engine
        .execute_at(Timestamp::from_secs(4), batch(completes, false))
        .await
        .expect("complete_many");
    let complete_many = store.round_trips_run() - before;
    let complete_many_statements = store.statements_run() - sent;
    assert!(results(reply).iter().all(Result::is_ok));
    assert_eq!(store.transactions_run(), transactions_before + 1);
    println!("round trips: put_many of 100 {put_many}, complete_many of 100 {complete_many}");
    println!(
        "statements: put_many of 100 {put_many_statements}, \
         complete_many of 100 {complete_many_statements}"
    );
    // Before batch items ran without savepoints, expiry listed with the
    // writes and remembered an empty complete set, and the commit went
    // with the last writes and events: 110 and 611; before every read
    // was pipelined with the writes before it: 109 and 211; before the
    // items' jobs were read ahead in one query and the complete count
    // kept by the transaction: 109 and 210; before placement values came
    // with them: 11 and 12; before the timing statistic was merged in
    // SQL instead of read first: 4 and 6; before a complete ran next to
    // pops (its `BEGIN` and locks with its first query, its `COMMIT` on
    // its own after its events) and expiry read the complete count with
    // its listing: 4 and 5. Now 3 and 4, the batches' statements
    // prepared by a warm-up first (before it, `put_many`'s 4 included
    // their preparation). 4 and 5 since their events are numbered in a
    // round trip of their own (see the test above).
    assert!(put_many <= 4, "put_many of 100: {put_many} round trips");
    assert!(
        complete_many <= 5,
        "complete_many of 100: {complete_many} round trips"
    );
    // Before a round trip's job saves and history entries of one kind
    // went as one statement over arrays: 210 and 216; 12 and 20 before
    // the timing statistic was merged in SQL; 12 and 19 before a complete
    // next to pops locked its jobs' rows first (a statement of its own).
    // 14 and 20 since a `put_many` runs next to pops (it takes the
    // command lock shared and, before numbering its events, the event
    // lock shared: the statement the exclusive path saved by draining the
    // outbox with its lock, and one more).
    assert!(
        put_many_statements <= 14,
        "put_many of 100: {put_many_statements} statements"
    );
    assert!(
        complete_many_statements <= 20,
        "complete_many of 100: {complete_many_statements} statements"
    );

    // A refused item (a job never popped) among good ones: the others
    // complete, the refused one changes nothing.
    for i in 0..3 {
        ok(
            &engine,
            "put",
            5.0,
            &["w", "r", &format!("r-{i}"), "k", "{}", "0"],
        )
        .await;
    }
    ok(&engine, "pop", 5.0, &["r", "w", "2"]).await;
    let mut completes: Vec<Command> = (0..3).map(|i| complete(format!("r-{i}"))).collect();
    for c in &mut completes {
        if let Command::Complete(params) = c {
            params.queue = "r".to_owned();
        }
    }
    let transactions = store.transactions_run();
    let reply = engine
        .execute_at(Timestamp::from_secs(6), batch(completes, false))
        .await
        .expect("complete_many");
    // Optimistically without savepoints, then again with them.
    assert_eq!(store.transactions_run() - transactions, 2);
    let states: Vec<bool> = results(reply).iter().map(Result::is_ok).collect();
    assert_eq!(states, [true, true, false]);
    for (jid, state, history) in [
        ("r-0", "complete", 3),
        ("r-1", "complete", 3),
        ("r-2", "waiting", 1),
    ] {
        let job = ok(&engine, "get", 7.0, &[jid]).await;
        assert_eq!(job["state"], state, "{job}");
        assert_eq!(
            job["history"].as_array().map(Vec::len),
            Some(history),
            "{job}"
        );
    }
}

/// The logic, except that a `get` of jid `refuse` first writes (a worker
/// row and a history entry: statements buffered, prepared in the same
/// batch) and then is refused.
fn refusing(
    tx: &mut dyn clew_core::Tx,
    now: clew_core::Timestamp,
    origin: &clew_core::Origin,
    command: &clew_core::Command,
    events: &mut Vec<clew_core::PendingEvent>,
) -> clew_core::Result<clew_core::Reply> {
    if let clew_core::Command::Get { jid } = command {
        if jid == "refuse" {
            tx.worker_touch("refuser", now)?;
            tx.history_append("refuse", &clew_core::HistoryEntry::new(now, "x"))?;
            return Err(clew_core::Error::invalid("refused on purpose"));
        }
    }
    clew_core::logic::apply(tx, now, origin, command, events)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn writes_buffered_by_a_refused_command_leave_nothing_behind() {
    if testing::skip() {
        return;
    }
    let schema = TempSchema::new();
    let options = PostgresOptions {
        pool_size: 1,
        ..schema.options()
    };
    let store = Arc::new(schema.open_with_logic(options, refusing).expect("open"));
    let engine = Engine::new(store.clone());
    // First use of the statements on this connection is in the refused
    // command: they must be prepared again, not assumed prepared.
    let refused = common::call(&engine, "get", 1.0, &["refuse"]).await;
    assert!(refused.is_err(), "{refused:?}");
    ok(&engine, "put", 2.0, &["w", "q", "a", "k", "{}", "0"]).await;
    ok(&engine, "pop", 3.0, &["q", "w", "1"]).await;
    let workers = ok(&engine, "workers", 4.0, &[]).await;
    assert!(!workers.to_string().contains("refuser"), "{workers}");
    let job = ok(&engine, "get", 5.0, &["a"]).await;
    assert_eq!(job["history"].as_array().map(Vec::len), Some(2), "{job}");
}
