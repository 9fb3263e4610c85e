//! Puts running next to pops, completes and each other
//! ([`PostgresOptions::concurrent_puts`]), and reads that take no command
//! lock at all:
//!
//! * two stores putting the same new jids at once: one insert meets the
//!   other's row, and that put runs again alone (as a put of an existing
//!   job), so both succeed and each job is put twice;
//! * a read (`length`, `get`) runs while another session holds the command
//!   lock exclusively, where a write waits for it;
//! * a read with puts waiting in the outbox runs alone after all (a command
//!   drains them first), so it counts them.
//!
//! Uses its own temporary schema of the test database
//! (`CLEW_TEST_POSTGRES_URL`); without PostgreSQL it prints why and passes,
//! unless `CI=true`.

mod common;
use common::{ok, on_thread, CommandLock};

use std::sync::{Arc, Barrier};
use std::time::Duration;

use clew_core::command::PutParams;
use clew_core::{Command, Engine, Reply, Timestamp};
use clew_postgres::testing::{self, TempSchema};
use clew_postgres::{PostgresOptions, SchemaName};
use serde_json::Value;

/// Jobs per round, put by each store in one `put_many`.
const JOBS: usize = 60;

/// Rounds of the race, each on a queue of its own.
const ROUNDS: usize = 6;

/// An atomic batch putting `jids` into `queue` with data naming `by`.
fn put_many(queue: &str, jids: &[String], by: &str) -> Command {
    Command::Batch {
        commands: jids
            .iter()
            .map(|jid| {
                let mut params = PutParams::new(queue, "k");
                params.jid = jid.clone();
                params.data = format!(r#"{{"by":"{by}"}}"#);
                Command::Put(params)
            })
            .collect(),
        atomic: true,
    }
}

/// An engine on a store of its own (pool of 4) on `schema`.
fn engine(schema: &TempSchema) -> Engine {
    let options = PostgresOptions {
        pool_size: 4,
        ..schema.options()
    };
    let store = schema.open(options).expect("store");
    assert!(store.options().concurrent_puts, "puts next to pops");
    Engine::new(Arc::new(store))
}

/// Two threads, each on a store of its own, put the same 60 new jids in
/// one `put_many` each, begun together, 6 times: both calls succeed, and
/// every job is waiting with two `put` entries in its history (the second
/// put moved the job the first made) and the data of one of them.
#[test]
fn two_stores_putting_the_same_new_jobs_at_once_both_succeed() {
    if testing::skip() {
        return;
    }
    let schema = TempSchema::new();
    let (ea, eb) = (engine(&schema), engine(&schema));
    let runtime = tokio::runtime::Runtime::new().expect("runtime");
    for round in 0..ROUNDS {
        let queue = format!("q{round}");
        let jids: Vec<String> = (0..JOBS).map(|i| format!("{queue}-j{i:03}")).collect();
        let barrier = Arc::new(Barrier::new(2));
        let threads: Vec<_> = [(ea.clone(), "a"), (eb.clone(), "b")]
            .into_iter()
            .map(|(engine, by)| {
                let (barrier, command) = (barrier.clone(), put_many(&queue, &jids, by));
                on_thread(move || {
                    barrier.wait();
                    async move { engine.execute_at(Timestamp::from_secs(1), command).await }
                })
            })
            .collect();
        for thread in threads {
            match thread.join().expect("thread") {
                Ok(Reply::Batch(items)) => {
                    assert_eq!(items.len(), JOBS);
                    assert!(items.iter().all(Result::is_ok), "{items:?}");
                }
                other => panic!("put_many in {queue}: {other:?}"),
            }
        }
        runtime.block_on(async {
            let length = ok(&ea, "length", 2.0, &[&queue]).await;
            assert_eq!(length, Value::from(JOBS), "{queue}");
            for jid in &jids {
                let job = ok(&ea, "get", 2.0, &[jid]).await;
                assert_eq!(job["state"], "waiting", "{jid}: {job}");
                let puts = job["history"]
                    .as_array()
                    .expect("history")
                    .iter()
                    .filter(|entry| entry["what"] == "put")
                    .count();
                assert_eq!(puts, 2, "{jid} put twice: {job}");
                let data = job["data"].as_str().unwrap_or_default().to_owned();
                assert!(
                    data == r#"{"by":"a"}"# || data == r#"{"by":"b"}"#,
                    "{jid}: {data}"
                );
            }
        });
    }
}

/// While another session holds the command lock exclusively, `length` and
/// `get` answer; a `pause` (a write) waits for the lock and runs once it
/// is released.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_read_runs_while_a_command_holds_the_lock() {
    if testing::skip() {
        return;
    }
    let schema = TempSchema::new();
    let engine = engine(&schema);
    ok(&engine, "put", 1.0, &["w", "q", "j1", "k", "{}", "0"]).await;
    let lock = CommandLock::hold(&schema);

    let read = async {
        let length = ok(&engine, "length", 2.0, &["q"]).await;
        let job = ok(&engine, "get", 2.0, &["j1"]).await;
        (length, job)
    };
    // Generous: a read that waited for the lock would wait for ever.
    let (length, job) = tokio::time::timeout(Duration::from_secs(20), read)
        .await
        .expect("the reads waited for the command lock");
    assert_eq!(length, Value::from(1));
    assert_eq!(job["jid"], "j1");

    let pause = {
        let engine = engine.clone();
        tokio::spawn(async move { ok(&engine, "pause", 3.0, &["q"]).await })
    };
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert!(!pause.is_finished(), "a write ran while the lock was held");
    lock.release();
    pause.await.expect("pause");
    let queues = ok(&engine, "queues", 4.0, &["q"]).await;
    assert_eq!(queues["paused"], true, "{queues}");
}

/// A put made in SQL (`put()`, waiting in the outbox: the test stores run
/// no listener to drain it) is counted by the next `length`: the read sees
/// the outbox is not empty and runs alone, draining it first.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_read_with_puts_waiting_in_the_outbox_counts_them() {
    if testing::skip() {
        return;
    }
    let schema = TempSchema::new();
    let engine = engine(&schema);
    assert_eq!(ok(&engine, "length", 1.0, &["q"]).await, Value::from(0));
    let quoted = SchemaName::new(schema.name()).expect("schema").quoted();
    let mut client = schema.connect().expect("connect");
    let jid: String = tokio::task::spawn_blocking(move || {
        client
            .query_one(
                &format!("SELECT {quoted}.put('q', 'k', '{{}}'::jsonb, '{{}}'::jsonb)"),
                &[],
            )
            .expect("put()")
            .get(0)
    })
    .await
    .expect("put thread");
    assert_eq!(ok(&engine, "length", 2.0, &["q"]).await, Value::from(1));
    let job = ok(&engine, "get", 2.0, &[&jid]).await;
    assert_eq!(job["state"], "waiting", "{job}");
}
