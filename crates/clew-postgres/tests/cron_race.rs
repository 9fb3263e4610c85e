//! A cron tick spawns once with two servers on one PostgreSQL: two
//! `PostgresStore`s (two servers) on one schema, many concurrent pops and
//! peeks from both around several ticks, exactly one child per tick.
//!
//! Uses its own temporary schema of the test database
//! (`CLEW_TEST_POSTGRES_URL`); without PostgreSQL it prints why and passes,
//! unless `CI=true`.

mod common;
use common::{call, ok};
use std::sync::Arc;

use clew_core::{Engine, MemorySink};
use clew_postgres::testing::{self, TempSchema};
use serde_json::{json, Value};

/// Monday 2026-01-05 10:02:00 UTC.
const T0: f64 = 1_767_607_320.0;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_cron_tick_spawns_once_with_two_servers_on_one_postgresql() {
    if testing::skip() {
        return;
    }
    let schema = TempSchema::new();
    let servers: Vec<Engine> = (0..2)
        .map(|_| {
            let store = Arc::new(schema.open(schema.options()).expect("open"));
            Engine::new(store).with_sink(Arc::new(MemorySink::default()))
        })
        .collect();
    // Two templates in one queue, one catching up and one skipping.
    ok(
        &servers[0],
        "recur",
        T0,
        &["q", "a", "k", "{}", "cron", "* * * * *", "0"],
    )
    .await;
    ok(
        &servers[1],
        "recur",
        T0,
        &[
            "q",
            "b",
            "k",
            "{}",
            "cron",
            "*/2 * * * *",
            "0",
            "missed",
            "skip",
        ],
    )
    .await;

    let ticks = 6;
    let first = T0 + 60.0; // 10:03
    for k in 0..ticks {
        let tick = first + f64::from(k) * 60.0;
        let mut tasks = Vec::new();
        for i in 0..24u32 {
            let engine = servers[(i % 2) as usize].clone();
            let now = tick + f64::from(i % 6) * 0.5;
            tasks.push(tokio::spawn(async move {
                if i % 3 == 2 && k % 2 == 1 {
                    call(&engine, "peek", now, &["q", "2"]).await
                } else {
                    call(&engine, "pop", now, &["q", &format!("w{i}"), "1"]).await
                }
            }));
        }
        for t in tasks {
            t.await.expect("task").expect("pop or peek");
        }
    }

    // `a` fires every minute: 10:03 ... 10:08; `b` on even minutes: 10:04,
    // 10:06, 10:08.
    let a = ok(&servers[0], "recur.get", 0.0, &["a"]).await;
    assert_eq!(a["count"], json!(ticks), "{a}");
    let b = ok(&servers[1], "recur.get", 0.0, &["b"]).await;
    assert_eq!(b["count"], json!(3), "{b}");
    for (jid, at) in (0..ticks)
        .map(|k| (format!("a-{}", k + 1), first + f64::from(k) * 60.0))
        .chain((0..3).map(|k| (format!("b-{}", k + 1), T0 + 120.0 + f64::from(k) * 120.0)))
    {
        let job = ok(&servers[1], "get", 0.0, &[&jid]).await;
        assert_eq!(job["history"][0]["what"], json!("put"), "{jid}: {job}");
        let puts = job["history"]
            .as_array()
            .expect("history")
            .iter()
            .filter(|h| h["what"] == json!("put"))
            .count();
        assert_eq!(puts, 1, "{jid} spawned more than once: {job}");
        assert_eq!(job["history"][0]["when"].as_f64(), Some(at), "{jid}");
    }
    for extra in [format!("a-{}", ticks + 1), "b-4".to_owned()] {
        assert_eq!(ok(&servers[0], "get", 0.0, &[&extra]).await, Value::Null);
    }
}
