//! Batches under concurrency on PostgreSQL: two `PostgresStore`s on one
//! schema (two servers), many callers finishing the last jobs of a batch at
//! once. The counters stay exact and the callback is put exactly once:
//! completes and pops (which fail jobs whose lock expired) run next to each
//! other under the shared command lock, and meet on the batch row, which
//! `batch_get` locks `FOR UPDATE`.
//!
//! Without PostgreSQL these print why and pass, unless `CI=true`.

mod common;
use common::ok;
use std::sync::Arc;

use clew_core::{Engine, Timestamp};
use clew_postgres::testing::{self, TempSchema};
use clew_postgres::PostgresOptions;
use serde_json::{json, Value};

const SPEC: &str = r#"{"callback":{"queue":"cb","klass":"Done","jid":"cbj"}}"#;

/// Two engines, each on its own store (pool of 4) on `schema`.
fn two_engines(schema: &TempSchema) -> (Engine, Engine) {
    let open = || {
        let options = PostgresOptions {
            pool_size: 4,
            ..schema.options()
        };
        Engine::new(Arc::new(schema.open(options).expect("open")))
    };
    (open(), open())
}

/// Creates batch `b1` of `n` jobs `j00...` spread over `queues` queues
/// `q0...` (with `put_extra` options on each put).
async fn create(engine: &Engine, n: usize, queues: usize, put_extra: &[&str]) -> Vec<String> {
    let jids: Vec<String> = (0..n).map(|i| format!("j{i:02}")).collect();
    let puts: Vec<String> = jids
        .iter()
        .enumerate()
        .map(|(i, j)| {
            let queue = format!("q{}", i % queues);
            let mut p = vec!["put", "w", &queue, j, "K", "{}", "0"];
            p.extend(put_extra);
            json!(p).to_string()
        })
        .collect();
    let mut args = vec!["b1", SPEC];
    args.extend(puts.iter().map(String::as_str));
    ok(engine, "batch.create", 1.0, &args).await;
    jids
}

/// Checks the batch's counters and that the callback was put once.
async fn check_finished(engine: &Engine, complete: i64, failed: i64) {
    let b = ok(engine, "batch.get", 200.0, &["b1"]).await;
    assert_eq!(b["pending"], 0, "{b}");
    assert_eq!(b["complete"], complete, "{b}");
    assert_eq!(b["failed"], failed, "{b}");
    assert_eq!(b["callback_jid"], "cbj", "{b}");
    let cb = ok(engine, "get", 200.0, &["cbj"]).await;
    let puts = cb["history"]
        .as_array()
        .expect("history")
        .iter()
        .filter(|h| h["what"] == "put")
        .count();
    assert_eq!(puts, 1, "the callback is put once: {cb}");
    let mut finished = 0;
    for e in engine
        .store()
        .events_after(0, 1_000_000)
        .await
        .expect("log")
    {
        if let Ok(v) = serde_json::from_str::<Value>(&e.message) {
            if v["event"] == "batch_finished" {
                finished += 1;
            }
        }
    }
    assert_eq!(finished, 1, "one batch_finished event");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn concurrent_completes_from_two_stores_put_one_callback() {
    if testing::skip() {
        return;
    }
    let schema = TempSchema::new();
    let (a, b) = two_engines(&schema);
    let jids = create(&a, 40, 1, &[]).await;
    let popped = ok(&a, "pop", 2.0, &["q0", "w", "40"]).await;
    assert_eq!(popped.as_array().expect("jobs").len(), 40);
    let mut tasks = Vec::new();
    for (i, jid) in jids.into_iter().enumerate() {
        let engine = if i % 2 == 0 { a.clone() } else { b.clone() };
        tasks.push(tokio::spawn(async move {
            ok(&engine, "complete", 3.0, &[&jid, "w", "q0", "{}"]).await
        }));
    }
    for t in tasks {
        assert_eq!(t.await.expect("task"), json!("complete"));
    }
    check_finished(&a, 40, 0).await;
    check_finished(&b, 40, 0).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn concurrent_pops_failing_expired_jobs_put_one_callback() {
    if testing::skip() {
        return;
    }
    let schema = TempSchema::new();
    let (a, b) = two_engines(&schema);
    ok(&a, "config.set", 0.0, &["grace-period", "0"]).await;
    ok(&a, "config.set", 0.0, &["heartbeat", "10"]).await;
    // One queue per pop: the pops share no stats row, only the batch's.
    create(&a, 40, 20, &["retries", "0"]).await;
    for q in 0..20 {
        let popped = ok(&a, "pop", 2.0, &[&format!("q{q}"), "w", "2"]).await;
        assert_eq!(popped.as_array().expect("jobs").len(), 2);
    }
    // Every lock expired at 12; 20 concurrent pops from two stores each
    // fail the two expired jobs of their queue.
    let now = Timestamp::from_secs_f64(100.0).expect("now");
    let mut tasks = Vec::new();
    for i in 0..20 {
        let engine = if i % 2 == 0 { a.clone() } else { b.clone() };
        tasks.push(tokio::spawn(async move {
            engine
                .execute_at(
                    now,
                    clew_core::Command::Pop {
                        queue: format!("q{i}"),
                        worker: format!("w{i}"),
                        count: 2,
                    },
                )
                .await
        }));
    }
    for t in tasks {
        t.await.expect("task").expect("pop");
    }
    check_finished(&a, 0, 40).await;
}
