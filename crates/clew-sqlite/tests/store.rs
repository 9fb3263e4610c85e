//! `SqliteStore`: the writer thread, group commit, savepoint rollback,
//! closing, reopening and crash recovery, on real database files.
//!
//! Most tests run the writer with a small stand-in for the qless logic
//! (`test_logic`), so that they exercise the store's machinery on their own:
//! * `ConfigSet { key: "ok:..", value }` stores the value, takes a sequence
//!   number, emits one event `key=value` and replies with the number;
//! * `ConfigSet { key: "fail:..", .. }` does the same, then refuses;
//! * `ConfigSet { key: "panic:..", .. }` does the same, then panics;
//! * `ConfigSet { key: "gate", .. }` meets the test at [`ENTERED`], then
//!   waits for [`GATE`] (to hold the writer while requests queue up);
//! * `ConfigGet { key: Some(k) }` reads a stored value (it only reads:
//!   the store runs it on a read connection beside the writer), except
//!   `touch:..`, which also writes the value `touched` first.

use std::future::Future;
use std::pin::Pin;
use std::sync::{Arc, Barrier, Mutex};
use std::task::{Context, Poll, Waker};

use clew_core::{
    Command, Error, ErrorKind, Event, MemorySink, NullSink, PendingEvent, Reply, Result, Store,
    Timestamp, Tx,
};
use clew_sqlite::testing::{
    in_tx, migrated_connection, temp_store, temp_store_with_logic, DB_FILE,
};
use clew_sqlite::{SqliteOptions, SqliteStore};
use serde_json::Value;

/// Held by a test while the writer is parked on a `gate` command.
static GATE: Mutex<()> = Mutex::new(());
/// Where the writer and the test meet once the writer is inside `gate`.
static ENTERED: Barrier = Barrier::new(2);
/// Serializes the tests that use the gate (they share the statics).
static GATE_TESTS: Mutex<()> = Mutex::new(());

fn test_logic(
    tx: &mut dyn Tx,
    _now: Timestamp,
    _origin: &clew_core::Origin,
    command: &Command,
    events: &mut Vec<PendingEvent>,
) -> Result<Reply> {
    match command {
        Command::ConfigSet { key, .. } if key == "gate" => {
            ENTERED.wait();
            drop(GATE.lock());
            Ok(Reply::Nil)
        }
        Command::ConfigSet { key, value } => {
            tx.config_set(key, value)?;
            let seq = tx.seq_next()?;
            events.push(PendingEvent {
                channel: "test".into(),
                message: format!("{key}={value}"),
            });
            if key.starts_with("fail:") {
                return Err(Error::conflict(format!("refused {key}")));
            }
            if key.starts_with("panic:") {
                panic!("test logic panics on purpose");
            }
            Ok(Reply::Int(seq))
        }
        Command::ConfigGet { key: Some(key) } => {
            if key.starts_with("touch:") {
                tx.config_set(key, "touched")?;
            }
            Ok(Reply::ConfigValue(tx.config_get(key)?.map(Value::from)))
        }
        other => Err(Error::invalid(format!("test logic: {}", other.name()))),
    }
}

fn set(key: &str, value: &str) -> Command {
    Command::ConfigSet {
        key: key.into(),
        value: value.into(),
    }
}

fn get(key: &str) -> Command {
    Command::ConfigGet {
        key: Some(key.into()),
    }
}

fn now() -> Timestamp {
    Timestamp::from_secs(1_700_000_000)
}

async fn value(store: &SqliteStore, key: &str) -> Option<Value> {
    match store.execute(now(), get(key), Arc::new(NullSink)).await {
        Ok(Reply::ConfigValue(v)) => v,
        other => panic!("unexpected reply {other:?}"),
    }
}

/// A runtime for tests that must hold a lock around their async body.
fn runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_current_thread()
        .enable_time()
        .build()
        .unwrap()
}

/// Polls a future once (to get its request queued) without a runtime.
fn poll_once<F: Future + ?Sized>(fut: Pin<&mut F>) -> Poll<F::Output> {
    fut.poll(&mut Context::from_waker(Waker::noop()))
}

type BoxFut<T> = Pin<Box<dyn Future<Output = T>>>;

/// Starts `execute` calls and polls each once, so that their requests are
/// queued in order; returns the futures to await.
fn queue_up(
    store: &Arc<SqliteStore>,
    commands: Vec<Command>,
    sink: &MemorySink,
) -> Vec<BoxFut<Result<Reply>>> {
    commands
        .into_iter()
        .map(|command| {
            let store = store.clone();
            let sink = Arc::new(sink.clone());
            let mut fut: BoxFut<Result<Reply>> =
                Box::pin(async move { store.execute(now(), command, sink).await });
            assert!(poll_once(fut.as_mut()).is_pending(), "the writer is parked");
            fut
        })
        .collect()
}

#[tokio::test]
async fn a_refused_command_leaves_a_fresh_store_unchanged() {
    // The real logic: a heartbeat of a job that does not exist is refused
    // whatever else it does.
    let (store, dir) = temp_store();
    let command = Command::Heartbeat {
        jid: "missing".into(),
        worker: "w".into(),
        data: None,
    };
    let sink = MemorySink::default();
    let result = store.execute(now(), command, Arc::new(sink.clone())).await;
    assert!(result.is_err(), "{result:?}");
    assert!(sink.events().is_empty());
    assert!(store.events_after(0, 100).await.unwrap().is_empty());
    store.close().await.unwrap();
    let conn = migrated_connection(dir.path().join(DB_FILE)).unwrap();
    let rows: i64 = conn
        .query_row(
            "SELECT (SELECT COUNT(*) FROM jobs) + (SELECT COUNT(*) FROM events) + (SELECT COUNT(*) FROM queues)
                  + (SELECT COUNT(*) FROM workers)",
            [],
            |r| r.get(0),
        )
        .unwrap();
    assert_eq!(rows, 0);
}

#[tokio::test]
async fn accepted_commands_commit_and_publish_numbered_events_in_order() {
    let (store, _dir) = temp_store_with_logic(SqliteOptions::default(), test_logic);
    let sink = MemorySink::default();
    let mut seqs = Vec::new();
    for i in 0..3 {
        let reply = store
            .execute(now(), set(&format!("ok:{i}"), "v"), Arc::new(sink.clone()))
            .await
            .unwrap();
        let Reply::Int(seq) = reply else {
            panic!("{reply:?}")
        };
        seqs.push(seq);
        // Published before the reply.
        assert_eq!(sink.events().len(), i + 1);
    }
    assert!(seqs.windows(2).all(|w| w[0] < w[1]), "{seqs:?}");
    let published = sink.events();
    let logged = store.events_after(0, 100).await.unwrap();
    assert_eq!(published, logged);
    let messages: Vec<_> = logged.iter().map(|e| e.message.as_str()).collect();
    assert_eq!(messages, ["ok:0=v", "ok:1=v", "ok:2=v"]);
    assert!(logged.windows(2).all(|w| w[0].seq < w[1].seq));
    assert!(logged.iter().all(|e| e.at == now() && e.channel == "test"));
    assert_eq!(value(&store, "ok:1").await, Some(Value::from("v")));

    // Paging through the log.
    let after_first = store.events_after(logged[0].seq, 1).await.unwrap();
    assert_eq!(after_first, logged[1..2]);
    assert!(store
        .events_after(logged[2].seq, 100)
        .await
        .unwrap()
        .is_empty());
    assert!(store.events_after(0, 0).await.unwrap().is_empty());
}

#[tokio::test]
async fn a_refused_command_rolls_back_its_writes_and_events() {
    let (store, _dir) = temp_store_with_logic(SqliteOptions::default(), test_logic);
    let sink = MemorySink::default();
    let err = store
        .execute(now(), set("fail:x", "v"), Arc::new(sink.clone()))
        .await
        .unwrap_err();
    assert_eq!(err.kind(), ErrorKind::Conflict);
    assert_eq!(err.message(), "refused fail:x");
    assert!(sink.events().is_empty());
    assert!(store.events_after(0, 100).await.unwrap().is_empty());
    assert_eq!(value(&store, "fail:x").await, None);
    // The store goes on normally.
    store
        .execute(now(), set("ok:y", "v"), Arc::new(sink.clone()))
        .await
        .unwrap();
    assert_eq!(store.events_after(0, 100).await.unwrap().len(), 1);
}

#[tokio::test]
async fn a_panicking_command_is_refused_and_rolled_back() {
    let (store, _dir) = temp_store_with_logic(SqliteOptions::default(), test_logic);
    let err = store
        .execute(now(), set("panic:x", "v"), Arc::new(NullSink))
        .await
        .unwrap_err();
    assert_eq!(err.kind(), ErrorKind::Store);
    assert!(err.message().contains("panicked"), "{err}");
    assert_eq!(value(&store, "panic:x").await, None);
    assert!(store.events_after(0, 10).await.unwrap().is_empty());
    // The writer thread survived.
    assert!(matches!(
        store
            .execute(now(), set("ok:z", "1"), Arc::new(NullSink))
            .await,
        Ok(Reply::Int(_))
    ));
}

#[test]
fn queued_commands_commit_as_one_batch_in_queue_order() {
    let _serial = GATE_TESTS.lock().unwrap_or_else(|e| e.into_inner());
    runtime().block_on(queued_commands_commit_as_one_batch_in_queue_order_body());
}

async fn queued_commands_commit_as_one_batch_in_queue_order_body() {
    let (store, _dir) = temp_store_with_logic(SqliteOptions::default(), test_logic);
    let sink = MemorySink::default();
    let before = store.writer_stats();

    let gate = GATE.lock().unwrap();
    let mut parked = queue_up(&store, vec![set("gate", "")], &sink);
    ENTERED.wait();
    // The writer is inside the gate command; these queue up behind it.
    let commands = vec![
        set("ok:a", "1"),
        set("fail:b", "2"),
        set("ok:c", "3"),
        set("panic:d", "4"),
        set("ok:e", "5"),
    ];
    let queued = queue_up(&store, commands, &sink);
    drop(gate);
    parked.pop().unwrap().await.unwrap();
    let mut replies = Vec::new();
    for fut in queued {
        replies.push(fut.await);
    }

    let after = store.writer_stats();
    assert_eq!(after.batches - before.batches, 2, "gate batch + one group");
    assert_eq!(after.commands - before.commands, 6);

    let ints: Vec<i64> = [0, 2, 4]
        .iter()
        .map(|&i| match replies[i] {
            Ok(Reply::Int(n)) => n,
            ref other => panic!("{other:?}"),
        })
        .collect();
    assert!(ints.windows(2).all(|w| w[0] < w[1]), "{ints:?}");
    assert_eq!(replies[1].as_ref().unwrap_err().kind(), ErrorKind::Conflict);
    assert_eq!(replies[3].as_ref().unwrap_err().kind(), ErrorKind::Store);

    // Only the accepted commands' events, in queue order, numbered in order.
    let published = sink.events();
    let messages: Vec<_> = published.iter().map(|e| e.message.as_str()).collect();
    assert_eq!(messages, ["ok:a=1", "ok:c=3", "ok:e=5"]);
    assert_eq!(store.events_after(0, 100).await.unwrap(), published);
    assert_eq!(value(&store, "ok:c").await, Some(Value::from("3")));
    assert_eq!(value(&store, "fail:b").await, None);
    assert_eq!(value(&store, "panic:d").await, None);
}

#[test]
fn reads_answer_while_the_writer_is_busy() {
    let _serial = GATE_TESTS.lock().unwrap_or_else(|e| e.into_inner());
    runtime().block_on(reads_answer_while_the_writer_is_busy_body());
}

// The gate is held across the read on purpose: the writer is parked on it.
#[allow(clippy::await_holding_lock)]
async fn reads_answer_while_the_writer_is_busy_body() {
    let (store, _dir) = temp_store_with_logic(SqliteOptions::default(), test_logic);
    let sink = MemorySink::default();
    store
        .execute(now(), set("ok:a", "1"), Arc::new(NullSink))
        .await
        .unwrap();
    let gate = GATE.lock().unwrap();
    let mut parked = queue_up(&store, vec![set("gate", "")], &sink);
    ENTERED.wait();
    // The writer is inside the gate command: a read does not queue behind
    // it (it would wait for the gate, which this thread holds).
    let read =
        tokio::time::timeout(std::time::Duration::from_secs(10), value(&store, "ok:a")).await;
    assert_eq!(
        read.expect("a read answers beside the writer"),
        Some(Value::from("1"))
    );
    drop(gate);
    parked.pop().unwrap().await.unwrap();
    // A read whose logic writes after all goes to the writer, which runs it.
    assert_eq!(value(&store, "touch:b").await, Some(Value::from("touched")));
    assert_eq!(value(&store, "touch:b").await, Some(Value::from("touched")));
}

#[test]
fn batch_max_caps_the_group_size() {
    let _serial = GATE_TESTS.lock().unwrap_or_else(|e| e.into_inner());
    runtime().block_on(batch_max_caps_the_group_size_body());
}

async fn batch_max_caps_the_group_size_body() {
    let options = SqliteOptions {
        batch_max: 2,
        ..SqliteOptions::default()
    };
    let (store, _dir) = temp_store_with_logic(options, test_logic);
    let sink = MemorySink::default();
    let before = store.writer_stats();

    let gate = GATE.lock().unwrap();
    let mut parked = queue_up(&store, vec![set("gate", "")], &sink);
    ENTERED.wait();
    let queued = queue_up(
        &store,
        (0..5).map(|i| set(&format!("ok:{i}"), "v")).collect(),
        &sink,
    );
    drop(gate);
    parked.pop().unwrap().await.unwrap();
    for fut in queued {
        assert!(matches!(fut.await, Ok(Reply::Int(_))));
    }
    let after = store.writer_stats();
    // The gate alone, then 2 + 2 + 1.
    assert_eq!(after.batches - before.batches, 4);
    assert_eq!(after.commands - before.commands, 6);
    let messages: Vec<_> = sink.events().into_iter().map(|e| e.message).collect();
    assert_eq!(messages, ["ok:0=v", "ok:1=v", "ok:2=v", "ok:3=v", "ok:4=v"]);
}

#[tokio::test]
async fn reopening_a_file_keeps_data_and_numbering() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join(DB_FILE);
    let store = SqliteStore::open_with_logic(&path, SqliteOptions::default(), test_logic).unwrap();
    let Reply::Int(first) = store
        .execute(now(), set("ok:k", "v1"), Arc::new(NullSink))
        .await
        .unwrap()
    else {
        panic!()
    };
    let events = store.events_after(0, 10).await.unwrap();
    store.close().await.unwrap();

    let store = SqliteStore::open_with_logic(&path, SqliteOptions::default(), test_logic).unwrap();
    assert_eq!(store.path(), path.as_path());
    assert_eq!(value(&store, "ok:k").await, Some(Value::from("v1")));
    assert_eq!(store.events_after(0, 10).await.unwrap(), events);
    let Reply::Int(second) = store
        .execute(now(), set("ok:k", "v2"), Arc::new(NullSink))
        .await
        .unwrap()
    else {
        panic!()
    };
    assert!(second > first, "sequence continues: {second} > {first}");
    let all = store.events_after(0, 10).await.unwrap();
    assert_eq!(all.len(), 2);
    assert!(all[1].seq > events[0].seq);
    store.close().await.unwrap();
}

#[tokio::test]
async fn calls_after_close_fail_and_close_is_idempotent() {
    let (store, _dir) = temp_store_with_logic(SqliteOptions::default(), test_logic);
    store.close().await.unwrap();
    let err = store
        .execute(now(), set("ok:k", "v"), Arc::new(NullSink))
        .await
        .unwrap_err();
    assert_eq!(err.kind(), ErrorKind::Store);
    assert_eq!(err.message(), "store is closed");
    let err = store.events_after(0, 10).await.unwrap_err();
    assert_eq!(err.message(), "store is closed");
    store.close().await.unwrap();
}

/// An `execute` call polled once.
enum Started {
    /// Queued: await it.
    Pending(BoxFut<Result<Reply>>),
    /// Already answered.
    Done(Result<Reply>),
}

#[tokio::test]
async fn close_finishes_queued_commands_first() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join(DB_FILE);
    let store = Arc::new(
        SqliteStore::open_with_logic(&path, SqliteOptions::default(), test_logic).unwrap(),
    );
    let sink = MemorySink::default();
    let queued: Vec<_> = (0..20)
        .map(|i| {
            let store = store.clone();
            let sink = Arc::new(sink.clone());
            let mut fut: BoxFut<Result<Reply>> = Box::pin(async move {
                store
                    .execute(now(), set(&format!("ok:{i}"), "v"), sink)
                    .await
            });
            // Queued, or, if the writer is quick, already answered.
            match poll_once(fut.as_mut()) {
                Poll::Ready(result) => Started::Done(result),
                Poll::Pending => Started::Pending(fut),
            }
        })
        .collect();
    store.close().await.unwrap();
    for started in queued {
        let result = match started {
            Started::Pending(fut) => fut.await,
            Started::Done(result) => result,
        };
        assert!(matches!(result, Ok(Reply::Int(_))), "{result:?}");
    }
    assert_eq!(sink.events().len(), 20);
    // Closed cleanly: the WAL was checkpointed and removed.
    assert!(!dir.path().join(format!("{DB_FILE}-wal")).exists());
    let conn = migrated_connection(&path).unwrap();
    let n: i64 = conn
        .query_row("SELECT COUNT(*) FROM config", [], |r| r.get(0))
        .unwrap();
    assert_eq!(n, 20);
}

#[tokio::test]
async fn dropping_the_store_stops_the_writer_and_closes_the_file() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join(DB_FILE);
    let store = SqliteStore::open_with_logic(&path, SqliteOptions::default(), test_logic).unwrap();
    store
        .execute(now(), set("ok:k", "v"), Arc::new(NullSink))
        .await
        .unwrap();
    assert!(dir.path().join(format!("{DB_FILE}-wal")).exists());
    drop(store);
    // The writer was joined and closed the last connection.
    assert!(!dir.path().join(format!("{DB_FILE}-wal")).exists());
    let store = SqliteStore::open_with_logic(&path, SqliteOptions::default(), test_logic).unwrap();
    assert_eq!(value(&store, "ok:k").await, Some(Value::from("v")));
}

#[tokio::test]
async fn writes_by_another_connection_are_seen() {
    let (store, dir) = temp_store_with_logic(SqliteOptions::default(), test_logic);
    let Reply::Int(first) = store
        .execute(now(), set("ok:a", "1"), Arc::new(NullSink))
        .await
        .unwrap()
    else {
        panic!()
    };
    // Cache the value of "shared" as absent.
    assert_eq!(value(&store, "shared").await, None);

    // Another process (a CLI next to a server) writes the same file.
    let other = migrated_connection(dir.path().join(DB_FILE)).unwrap();
    let (theirs, their_event) = in_tx(&other, |tx| {
        tx.seq_next()?;
        let seq = tx.seq_next()?;
        tx.config_set("shared", "theirs")?;
        let ev = tx.event_append(now(), "other", "hello")?;
        Ok((seq, ev))
    })
    .unwrap();
    assert!(theirs > first);

    assert_eq!(value(&store, "shared").await, Some(Value::from("theirs")));
    let Reply::Int(next) = store
        .execute(now(), set("ok:b", "2"), Arc::new(NullSink))
        .await
        .unwrap()
    else {
        panic!()
    };
    assert!(
        next > theirs,
        "{next} must follow the other writer's {theirs}"
    );
    let events: Vec<Event> = store.events_after(0, 10).await.unwrap();
    let seqs: Vec<_> = events.iter().map(|e| e.seq).collect();
    assert_eq!(events.len(), 3);
    assert_eq!(events[1].seq, their_event);
    assert!(seqs.windows(2).all(|w| w[0] < w[1]));
}

#[tokio::test]
async fn a_job_changed_by_another_connection_is_read_again() {
    // The writer keeps the rows it saves (a pop's, for the complete that
    // follows); another process's commit must make it read them again.
    let (store, dir) = temp_store();
    let run = |command: Command| store.execute(now(), command, Arc::new(NullSink));
    let mut put = clew_core::command::PutParams::new("q", "K");
    put.jid = "j".into();
    run(Command::Put(put)).await.unwrap();
    let popped = run(Command::Pop {
        queue: "q".into(),
        worker: "w".into(),
        count: 1,
    })
    .await
    .unwrap();
    assert!(
        matches!(&popped, Reply::Jobs(jobs) if jobs.len() == 1),
        "{popped:?}"
    );

    // Another process deletes the job (a CLI's cancel, say).
    let other = migrated_connection(dir.path().join(DB_FILE)).unwrap();
    in_tx(&other, |tx| {
        tx.history_delete("j")?;
        tx.job_delete("j")
    })
    .unwrap();

    let complete = clew_core::command::CompleteParams::new("j", "w", "q");
    let err = run(Command::Complete(complete)).await.unwrap_err();
    assert_eq!(err.kind(), ErrorKind::NotFound, "{err}");
    let rows: i64 = other
        .query_row("SELECT COUNT(*) FROM jobs", [], |r| r.get(0))
        .unwrap();
    assert_eq!(rows, 0, "the complete must not bring the job back");
}

#[tokio::test]
async fn open_refuses_newer_schemas_and_foreign_files() {
    let dir = tempfile::tempdir().unwrap();
    let newer = dir.path().join("newer.db");
    let conn = migrated_connection(&newer).unwrap();
    conn.pragma_update(None, "user_version", 1000).unwrap();
    drop(conn);
    let err = SqliteStore::open(&newer, SqliteOptions::default()).unwrap_err();
    assert_eq!(err.kind(), ErrorKind::Store);
    assert!(err.message().contains("schema version 1000"), "{err}");

    let garbage = dir.path().join("garbage.db");
    std::fs::write(&garbage, vec![0x5a_u8; 8192]).unwrap();
    let err = SqliteStore::open(&garbage, SqliteOptions::default()).unwrap_err();
    assert_eq!(err.kind(), ErrorKind::Store);
}

/// Set in the child process of [`a_file_left_by_a_killed_process_reopens`].
const CRASH_DIR_ENV: &str = "CLEW_SQLITE_TEST_CRASH_DIR";

#[tokio::test]
async fn a_file_left_by_a_killed_process_reopens() {
    if let Some(dir) = std::env::var_os(CRASH_DIR_ENV) {
        // The child: commit through the store, then die without closing.
        let path = std::path::Path::new(&dir).join(DB_FILE);
        let store =
            SqliteStore::open_with_logic(&path, SqliteOptions::default(), test_logic).unwrap();
        for i in 0..10 {
            store
                .execute(now(), set(&format!("ok:{i}"), "v"), Arc::new(NullSink))
                .await
                .unwrap();
        }
        std::process::abort();
    }

    let dir = tempfile::tempdir().unwrap();
    let status = std::process::Command::new(std::env::current_exe().unwrap())
        .args([
            "--exact",
            "a_file_left_by_a_killed_process_reopens",
            "--nocapture",
        ])
        .env(CRASH_DIR_ENV, dir.path())
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .status()
        .unwrap();
    assert!(!status.success(), "the child must die: {status:?}");
    let wal = dir.path().join(format!("{DB_FILE}-wal"));
    assert!(
        wal.metadata().map(|m| m.len() > 0).unwrap_or(false),
        "the child left its commits in the WAL"
    );

    let store = SqliteStore::open_with_logic(
        dir.path().join(DB_FILE),
        SqliteOptions::default(),
        test_logic,
    )
    .unwrap();
    assert_eq!(store.events_after(0, 100).await.unwrap().len(), 10);
    assert_eq!(value(&store, "ok:9").await, Some(Value::from("v")));
    assert!(matches!(
        store
            .execute(now(), set("ok:after", "v"), Arc::new(NullSink))
            .await,
        Ok(Reply::Int(_))
    ));
    store.close().await.unwrap();
}

/// With the real logic: completes sent at once commit in groups, some of
/// them refused (wrong worker), so groups run optimistically and again with
/// savepoints; the day's statistics (kept in the writer's cache between
/// write-backs) count exactly the accepted completes, and the wait
/// histogram every pop.
#[tokio::test]
async fn statistics_stay_exact_through_grouped_and_refused_commands() {
    use clew_core::command::{CompleteParams, PutParams};
    use clew_core::Engine;
    let (store, _dir) = temp_store();
    let engine = Engine::new(store.clone());
    let jobs: Vec<PutParams> = (0..60)
        .map(|i| PutParams {
            jid: format!("j{i}"),
            ..PutParams::new("q", "K")
        })
        .collect();
    engine.put_many(jobs).await.expect("put_many");
    let popped = engine.pop("q", "w", 60).await.expect("pop");
    assert_eq!(popped.len(), 60);
    let params = |i: usize, jid: &str| {
        CompleteParams::new(jid, if i % 6 == 3 { "intruder" } else { "w" }, "q")
    };
    // Half in one batch (refused items in its middle), half as single
    // commands sent at once (grouped by the writer).
    let (first, second) = popped.split_at(30);
    let batch: Vec<CompleteParams> = first
        .iter()
        .enumerate()
        .map(|(i, job)| params(i, &job.record.jid))
        .collect();
    let results = engine.complete_many(batch).await.expect("complete_many");
    let mut accepted = results.iter().filter(|r| r.is_ok()).count();
    let mut refused = results.len() - accepted;
    let singles: Vec<_> = second
        .iter()
        .enumerate()
        .map(|(i, job)| {
            let engine = engine.clone();
            let p = params(i, &job.record.jid);
            tokio::spawn(async move { engine.complete(p).await })
        })
        .collect();
    for handle in singles {
        match handle.await.expect("task") {
            Ok(_) => accepted += 1,
            Err(e) => {
                assert_eq!(e.kind(), ErrorKind::Conflict, "{e}");
                refused += 1;
            }
        }
    }
    assert_eq!((accepted, refused), (50, 10));
    let today = engine.now().day().floor_secs().to_string();
    let stats = engine
        .qless("stats", None, &["q".into(), today])
        .await
        .expect("stats");
    assert_eq!(stats["run"]["count"], 50, "{stats}");
    assert_eq!(stats["wait"]["count"], 60, "{stats}");
    let hist_total: i64 = stats["wait"]["histogram"]
        .as_array()
        .expect("histogram")
        .iter()
        .map(|v| v.as_i64().unwrap_or(0))
        .sum();
    assert_eq!(hist_total, 60, "{stats}");
    let run_total: i64 = stats["run"]["histogram"]
        .as_array()
        .expect("histogram")
        .iter()
        .map(|v| v.as_i64().unwrap_or(0))
        .sum();
    assert_eq!(run_total, 50, "{stats}");
}

/// Events and history entries are buffered by the writer (numbered by it,
/// written many rows per statement), each job's history count is kept, and
/// the oldest completed time is remembered: through grouped commands,
/// refused batch items (the optimistic pass rolled back and run again with
/// savepoints), trimmed histories, a pruned log and a reopened file, the
/// log holds exactly what the sink received, numbered upwards, and every
/// history is what one statement per row would have written.
#[tokio::test]
async fn events_and_history_stay_exact_through_grouped_and_refused_commands() {
    use clew_core::command::{CompleteParams, PutParams};
    use clew_core::Engine;
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join(DB_FILE);
    let store = Arc::new(SqliteStore::open(&path, SqliteOptions::default()).unwrap());
    let sink = Arc::new(MemorySink::default());
    let engine = Engine::new(store.clone()).with_sink(sink.clone());
    engine
        .qless("config.set", None, &["max-job-history".into(), "3".into()])
        .await
        .expect("config.set");
    let jobs: Vec<PutParams> = (0..60)
        .map(|i| PutParams {
            jid: format!("j{i}"),
            ..PutParams::new("q", "K")
        })
        .collect();
    engine.put_many(jobs).await.expect("put_many");
    // One job put again four times in one transaction, into other queues:
    // its history is trimmed to the first entry and the newest two.
    let again: Vec<PutParams> = (1..5)
        .map(|i| PutParams {
            jid: "again".into(),
            ..PutParams::new(format!("r{i}"), "K")
        })
        .collect();
    engine
        .put(PutParams {
            jid: "again".into(),
            ..PutParams::new("r0", "K")
        })
        .await
        .expect("put");
    engine.put_many(again).await.expect("put_many again");
    let popped = engine.pop("q", "w", 60).await.expect("pop");
    assert_eq!(popped.len(), 60);
    for job in &popped {
        let what: Vec<&str> = job.history.iter().map(|h| h.what.as_str()).collect();
        assert_eq!(what, ["put", "popped"], "{}", job.record.jid);
    }
    let params = |i: usize, jid: &str| {
        CompleteParams::new(jid, if i % 6 == 3 { "intruder" } else { "w" }, "q")
    };
    let (first, second) = popped.split_at(30);
    let batch: Vec<CompleteParams> = first
        .iter()
        .enumerate()
        .map(|(i, job)| params(i, &job.record.jid))
        .collect();
    let results = engine.complete_many(batch).await.expect("complete_many");
    let mut done: Vec<String> = first
        .iter()
        .zip(&results)
        .filter(|(_, r)| r.is_ok())
        .map(|(job, _)| job.record.jid.clone())
        .collect();
    let singles: Vec<_> = second
        .iter()
        .enumerate()
        .map(|(i, job)| {
            let engine = engine.clone();
            let p = params(i, &job.record.jid);
            let jid = job.record.jid.clone();
            tokio::spawn(async move { (jid, engine.complete(p).await) })
        })
        .collect();
    for handle in singles {
        let (jid, result) = handle.await.expect("task");
        if result.is_ok() {
            done.push(jid);
        }
    }
    assert_eq!(done.len(), 50);
    for job in &popped {
        let jid = &job.record.jid;
        let got = engine.get(jid).await.expect("get").expect("job");
        let what: Vec<&str> = got.history.iter().map(|h| h.what.as_str()).collect();
        let want: &[&str] = if done.contains(jid) {
            &["put", "popped", "done"]
        } else {
            &["put", "popped"]
        };
        assert_eq!(what, want, "{jid}");
    }
    let again = engine.get("again").await.expect("get").expect("again");
    let queues: Vec<&str> = again
        .history
        .iter()
        .map(|h| h.extra["q"].as_str().unwrap_or(""))
        .collect();
    assert_eq!(queues, ["r0", "r3", "r4"]);

    // The log is exactly what was published, numbered upwards.
    let published = sink.events();
    let log = store.events_after(0, 100_000).await.expect("events");
    assert_eq!(log, published);
    assert!(log.windows(2).all(|w| w[0].seq < w[1].seq));
    let completed = log
        .iter()
        .filter(|e| e.message.contains("\"event\":\"completed\""))
        .count();
    assert_eq!(completed, 50);

    // Numbers are never reused, even when the newest rows are pruned and
    // the file is reopened.
    let last = log.last().expect("events").seq;
    store.events_prune(last + 1).await.expect("prune");
    store.close().await.expect("close");
    drop(engine);
    let store = Arc::new(SqliteStore::open(&path, SqliteOptions::default()).unwrap());
    let engine = Engine::new(store.clone());
    engine.put(PutParams::new("q", "K")).await.expect("put");
    let log = store.events_after(0, 100).await.expect("events");
    assert!(!log.is_empty() && log[0].seq > last, "{log:?}");
    store.close().await.expect("close");
}

/// Under sustained writes (no pause for the passive checkpoints to catch
/// up) the WAL still starts over: it stays bounded instead of growing with
/// every write (it grew to 680 MB in a 100,000-job lifecycle benchmark).
#[tokio::test]
async fn the_wal_stays_bounded_under_sustained_writes() {
    use clew_core::command::PutParams;
    use clew_core::Engine;
    let (store, dir) = temp_store();
    let engine = Engine::new(store.clone());
    let data = format!("{{\"pad\":\"{}\"}}", "x".repeat(2000));
    let wal = dir.path().join(format!("{DB_FILE}-wal"));
    let started = std::time::Instant::now();
    let mut written = 0u64;
    let mut round = 0;
    // Past 30 MB of payload (the restart threshold is about 16 MB of WAL)
    // and a few checkpoint intervals.
    while written < 30 << 20 || started.elapsed() < std::time::Duration::from_secs(2) {
        let jobs: Vec<PutParams> = (0..100)
            .map(|i| PutParams {
                jid: format!("j{round}-{i}"),
                data: data.clone(),
                ..PutParams::new("q", "K")
            })
            .collect();
        engine.put_many(jobs).await.expect("put_many");
        written += 100 * data.len() as u64;
        round += 1;
    }
    let size = std::fs::metadata(&wal).expect("the WAL file").len();
    let db = std::fs::metadata(dir.path().join(DB_FILE))
        .expect("the database file")
        .len();
    // Every page of the file went through the WAL (most more than once):
    // a WAL never started over is larger than the file (147 MB to 124 MB
    // without the writer's checkpoint; 32-56 MB with it).
    assert!(
        size < db,
        "the WAL is {size} bytes, the database {db} bytes, after {written} bytes of payload"
    );
}

/// The WAL is checkpointed off the writer's path: with a pause after each
/// burst of writes, the next burst starts the WAL over, so the file stays
/// about one burst long (SQLite's commit-time checkpoint is off: without
/// the checkpoint thread it would grow by every burst).
#[tokio::test]
async fn the_wal_is_checkpointed_in_the_background() {
    use clew_core::command::PutParams;
    use clew_core::Engine;
    let (store, dir) = temp_store();
    let engine = Engine::new(store.clone());
    let data = format!("{{\"pad\":\"{}\"}}", "x".repeat(2000));
    let wal = dir.path().join(format!("{DB_FILE}-wal"));
    let mut sizes = Vec::new();
    for round in 0..8 {
        let jobs: Vec<PutParams> = (0..100)
            .map(|i| PutParams {
                jid: format!("j{round}-{i}"),
                data: data.clone(),
                ..PutParams::new("q", "K")
            })
            .collect();
        engine.put_many(jobs).await.expect("put_many");
        sizes.push(std::fs::metadata(&wal).expect("the WAL file").len());
        // More than one checkpoint interval.
        tokio::time::sleep(std::time::Duration::from_millis(400)).await;
    }
    let first = sizes[0];
    let last = sizes[sizes.len() - 1];
    assert!(
        last < first * 3,
        "the WAL grew with every burst: {sizes:?} bytes"
    );
}
