//! `PostgresStore` on a real PostgreSQL: migrations (twice, and from two
//! threads at once), data round trips, rollback of refused commands, the
//! event log's order across two stores sharing a schema, exactly-once pops
//! under concurrent load, the pool's size, and closing.
//!
//! Each test uses its own temporary schema of the test database
//! (`CLEW_TEST_POSTGRES_URL`); without PostgreSQL they print why and pass,
//! unless `CI=true`.

use std::collections::BTreeSet;
use std::io::Write as _;
use std::sync::{Arc, Barrier};

use clew_core::{Engine, Event, NullSink, Store, Timestamp};
use clew_postgres::testing::{self, TempSchema};
use clew_postgres::{PostgresOptions, PostgresStore, SCHEMA_VERSION};
use serde_json::Value;

/// True (after printing the reason) when the test must skip.
fn skip() -> bool {
    match testing::skip_reason() {
        Some(line) => {
            // Past the harness's capture, so the skip shows.
            let _ = writeln!(std::io::stderr().lock(), "{line}");
            true
        }
        None => false,
    }
}

/// Runs a qless command at `now` seconds.
async fn call(engine: &Engine, command: &str, now: f64, args: &[&str]) -> clew_core::Result<Value> {
    let args: Vec<String> = args.iter().map(|s| (*s).to_owned()).collect();
    engine.qless(command, Some(now), &args).await
}

/// Runs a qless command that must succeed.
async fn ok(engine: &Engine, command: &str, now: f64, args: &[&str]) -> Value {
    call(engine, command, now, args)
        .await
        .unwrap_or_else(|e| panic!("{command} {args:?}: {e}"))
}

/// An engine over `store`.
fn engine(store: Arc<PostgresStore>) -> Engine {
    Engine::new(store).with_sink(Arc::new(NullSink))
}

/// The whole event log, read in pages of `page`.
async fn whole_log(store: &dyn Store, page: i64) -> Vec<Event> {
    let mut out: Vec<Event> = Vec::new();
    loop {
        let after = out.last().map_or(0, |e| e.seq);
        let batch = store.events_after(after, page).await.expect("events_after");
        if batch.is_empty() {
            return out;
        }
        out.extend(batch);
    }
}

#[test]
fn migrating_twice_and_from_two_threads_at_once_applies_each_version_once() {
    if skip() {
        return;
    }
    let schema = TempSchema::new();
    let barrier = Arc::new(Barrier::new(2));
    let threads: Vec<_> = (0..2)
        .map(|_| {
            let schema_name = schema.name().to_owned();
            let url = schema.url().to_owned();
            let barrier = barrier.clone();
            std::thread::spawn(move || {
                barrier.wait();
                let options = PostgresOptions {
                    schema: Some(schema_name),
                    ..PostgresOptions::default()
                };
                PostgresStore::open(&url, options).map(|s| s.schema().to_owned())
            })
        })
        .collect();
    for thread in threads {
        let opened = thread.join().expect("thread");
        assert_eq!(opened.expect("open").as_str(), schema.name());
    }
    // A third open finds the schema current and changes nothing.
    let mut client = schema.migrated_connection().expect("migrating again");
    let versions: Vec<i64> = client
        .query("SELECT version FROM clew_migrations ORDER BY version", &[])
        .expect("versions")
        .iter()
        .map(|r| r.get(0))
        .collect();
    assert_eq!(versions, (1..=SCHEMA_VERSION).collect::<Vec<_>>());
    let tables: i64 = client
        .query_one(
            "SELECT COUNT(*) FROM pg_tables WHERE schemaname = $1",
            &[&schema.name()],
        )
        .expect("tables")
        .get(0);
    assert_eq!(
        tables, 18,
        "the 14 tables of 0001, put_outbox and put_rejected (0002), publisher_cursors (0003) \
         and clew_migrations"
    );
}

#[test]
fn a_schema_from_a_newer_clew_is_refused() {
    if skip() {
        return;
    }
    let schema = TempSchema::new();
    let mut client = schema.migrated_connection().expect("migrating");
    client
        .execute(
            "INSERT INTO clew_migrations (version) VALUES ($1)",
            &[&(SCHEMA_VERSION + 1)],
        )
        .expect("pretend a newer clew migrated");
    drop(client);
    let e = schema.open(schema.options()).expect_err("newer schema");
    assert!(e.message().contains("newer clew"), "{e}");
}

#[tokio::test]
async fn the_url_schema_parameter_selects_the_schema() {
    if skip() {
        return;
    }
    let schema = TempSchema::new();
    let url = format!("{}?schema={}", schema.url(), schema.name());
    let options = PostgresOptions {
        synchronous_commit: false,
        ..PostgresOptions::default()
    };
    let store = PostgresStore::open(&url, options).expect("open");
    assert_eq!(store.schema(), schema.name());
    store.close().await.expect("close");
}

#[tokio::test]
async fn unreachable_servers_and_bad_urls_fail_with_clear_errors() {
    let e = PostgresStore::open(
        "postgres://u:secret@127.0.0.1:1/db",
        PostgresOptions::default(),
    )
    .expect_err("nothing listens on port 1");
    assert!(e.message().contains("connecting to PostgreSQL at"), "{e}");
    assert!(!e.message().contains("secret"), "{e}");
    let e = PostgresStore::open("postgres://u@h/db?nonsense=1", PostgresOptions::default())
        .expect_err("unknown parameter");
    assert_eq!(e.kind(), clew_core::ErrorKind::Invalid, "{e}");
}

#[tokio::test]
async fn job_data_and_fields_round_trip_byte_for_byte_across_reopening() {
    if skip() {
        return;
    }
    let schema = TempSchema::new();
    let data = "{ \"z\":1,\"a\" : [1.50, 1e3, -0.0],\n\t\"s\":\"\u{e9}\\u00e9\\n \u{1F600}\", \"n\":12345678901234567890 }";
    {
        let store = Arc::new(schema.open(schema.options()).expect("open"));
        let engine = engine(store.clone());
        ok(
            &engine,
            "put",
            1_700_000_000.123456,
            &[
                "w",
                "q\u{e9}",
                "jid-1",
                "Kl\u{e4}ss",
                data,
                "0",
                "priority",
                "-7",
                "tags",
                "[\"t\u{fc}\",\"b\"]",
                "retries",
                "3",
            ],
        )
        .await;
        store.close().await.expect("close");
    }
    let store = Arc::new(schema.open(schema.options()).expect("reopen"));
    let engine = engine(store.clone());
    let job = ok(&engine, "get", 1_700_000_001.0, &["jid-1"]).await;
    assert_eq!(job["data"].as_str(), Some(data));
    assert_eq!(job["klass"], "Kl\u{e4}ss");
    assert_eq!(job["queue"], "q\u{e9}");
    assert_eq!(job["priority"], -7);
    assert_eq!(job["tags"], serde_json::json!(["t\u{fc}", "b"]));
    assert_eq!(job["retries"], 3);
    assert_eq!(job["history"][0]["what"], "put");
    let popped = ok(&engine, "pop", 1_700_000_002.5, &["q\u{e9}", "w1", "1"]).await;
    assert_eq!(popped[0]["data"].as_str(), Some(data));
    // Times keep their microseconds.
    let events = store.events_after(0, 100).await.expect("events");
    assert!(events
        .iter()
        .any(|e| e.at == Timestamp(1_700_000_000_123_456)));
    store.close().await.expect("close");
}

#[tokio::test]
async fn a_refused_command_changes_nothing_and_numbers_stay_increasing() {
    if skip() {
        return;
    }
    let (store, _schema) = testing::temp_store();
    let engine = engine(store.clone());
    ok(&engine, "put", 1.0, &["w", "q", "j1", "k", "{}", "0"]).await;
    let before = whole_log(&*store, 100).await;
    // Popped by w1, then a complete from another worker is refused.
    ok(&engine, "pop", 2.0, &["q", "w1", "1"]).await;
    let after_pop = whole_log(&*store, 100).await;
    let e = call(&engine, "complete", 3.0, &["j1", "w2", "q", "{}"])
        .await
        .expect_err("wrong worker");
    assert_eq!(e.kind(), clew_core::ErrorKind::Conflict, "{e}");
    assert_eq!(whole_log(&*store, 100).await, after_pop);
    assert_eq!(ok(&engine, "get", 3.0, &["j1"]).await["worker"], "w1");
    assert!(after_pop.len() > before.len());
    ok(&engine, "complete", 4.0, &["j1", "w1", "q", "{}"]).await;
    let all = whole_log(&*store, 100).await;
    assert!(all.windows(2).all(|w| w[0].seq < w[1].seq));
    store.close().await.expect("close");
}

#[tokio::test]
async fn two_stores_on_one_schema_pop_every_job_exactly_once_and_log_in_order() {
    if skip() {
        return;
    }
    const JOBS: usize = 60;
    let schema = TempSchema::new();
    let a = Arc::new(schema.open(schema.options()).expect("store a"));
    let b = Arc::new(schema.open(schema.options()).expect("store b"));
    let (ea, eb) = (engine(a.clone()), engine(b.clone()));
    for i in 0..JOBS {
        let engine = if i % 2 == 0 { &ea } else { &eb };
        ok(
            engine,
            "put",
            1.0,
            &["w", "q", &format!("j{i:03}"), "k", "{}", "0"],
        )
        .await;
    }
    // A reader pages the log while four workers (two per store) pop and
    // complete concurrently: it must end with exactly the whole log, so no
    // event ever appeared below a number it had already read.
    let done = Arc::new(tokio::sync::Notify::new());
    let reader = {
        let a = a.clone();
        let done = done.clone();
        tokio::spawn(async move {
            let mut seen: Vec<Event> = Vec::new();
            let finished = done.notified();
            tokio::pin!(finished);
            loop {
                let after = seen.last().map_or(0, |e| e.seq);
                let page = a.events_after(after, 7).await.expect("page");
                let idle = page.is_empty();
                seen.extend(page);
                if idle {
                    tokio::select! {
                        _ = &mut finished => break,
                        _ = tokio::task::yield_now() => {}
                    }
                }
            }
            // Whatever committed after the last empty page.
            loop {
                let after = seen.last().map_or(0, |e| e.seq);
                let page = a.events_after(after, 7).await.expect("page");
                if page.is_empty() {
                    return seen;
                }
                seen.extend(page);
            }
        })
    };
    let mut workers = Vec::new();
    for w in 0..4 {
        let engine = if w % 2 == 0 { ea.clone() } else { eb.clone() };
        workers.push(tokio::spawn(async move {
            let worker = format!("w{w}");
            let mut mine = Vec::new();
            loop {
                let popped = ok(&engine, "pop", 2.0, &["q", &worker, "2"]).await;
                let jobs = popped.as_array().cloned().unwrap_or_default();
                if jobs.is_empty() {
                    return mine;
                }
                for job in jobs {
                    let jid = job["jid"].as_str().expect("jid").to_owned();
                    ok(&engine, "complete", 3.0, &[&jid, &worker, "q", "{}"]).await;
                    mine.push(jid);
                }
            }
        }));
    }
    let mut popped = Vec::new();
    for worker in workers {
        popped.extend(worker.await.expect("worker"));
    }
    done.notify_one();
    let seen = reader.await.expect("reader");
    let unique: BTreeSet<&String> = popped.iter().collect();
    assert_eq!(popped.len(), JOBS, "every job popped once: {popped:?}");
    assert_eq!(unique.len(), JOBS);
    let whole = whole_log(&*b, 1000).await;
    assert_eq!(seen, whole, "the concurrent reader saw exactly the log");
    assert!(whole.windows(2).all(|w| w[0].seq < w[1].seq));
    let counts = ok(&ea, "queues", 4.0, &["q"]).await;
    assert_eq!(counts["waiting"], 0);
    assert_eq!(counts["running"], 0);
    let complete = ok(&eb, "jobs", 4.0, &["complete", "0", "1000"]).await;
    assert_eq!(complete.as_array().map(Vec::len), Some(JOBS));
    a.close().await.expect("close a");
    b.close().await.expect("close b");
}

#[tokio::test]
async fn the_pool_grows_only_as_needed_up_to_its_size() {
    if skip() {
        return;
    }
    let schema = TempSchema::new();
    let options = PostgresOptions {
        pool_size: 2,
        ..schema.options()
    };
    let store = Arc::new(schema.open(options).expect("open"));
    let engine = engine(store.clone());
    for i in 0..5 {
        ok(
            &engine,
            "put",
            1.0,
            &["w", "q", &format!("j{i}"), "k", "{}", "0"],
        )
        .await;
    }
    assert_eq!(
        store.pool_threads(),
        1,
        "sequential calls need one connection"
    );
    let calls: Vec<_> = (0..16)
        .map(|i| {
            let engine = engine.clone();
            tokio::spawn(async move {
                ok(
                    &engine,
                    "put",
                    2.0,
                    &["w", "q", &format!("k{i}"), "k", "{}", "0"],
                )
                .await
            })
        })
        .collect();
    for call in calls {
        call.await.expect("call");
    }
    assert!(store.pool_threads() <= 2, "{}", store.pool_threads());
    assert_eq!(ok(&engine, "length", 3.0, &["q"]).await, 21);
    store.close().await.expect("close");
}

#[tokio::test]
async fn calls_after_close_fail_and_close_is_idempotent() {
    if skip() {
        return;
    }
    let (store, _schema) = testing::temp_store();
    let engine = engine(store.clone());
    ok(&engine, "put", 1.0, &["w", "q", "j1", "k", "{}", "0"]).await;
    store.close().await.expect("close");
    store.close().await.expect("second close");
    let e = call(&engine, "get", 1.0, &["j1"])
        .await
        .expect_err("closed");
    assert!(e.message().contains("closed"), "{e}");
    assert!(store.events_after(0, 10).await.is_err());
}

#[tokio::test]
async fn flush_empties_the_store_and_prune_drops_old_events_keeping_numbers() {
    if skip() {
        return;
    }
    let (store, _schema) = testing::temp_store();
    let engine = engine(store.clone());
    for i in 0..3 {
        ok(
            &engine,
            "put",
            1.0,
            &["w", "q", &format!("j{i}"), "k", "{}", "0"],
        )
        .await;
    }
    let log = whole_log(&*store, 100).await;
    let cut = log[log.len() / 2].seq;
    let pruned = store.events_prune(cut).await.expect("prune");
    assert_eq!(pruned as usize, log.iter().filter(|e| e.seq < cut).count());
    let kept = whole_log(&*store, 100).await;
    assert_eq!(kept.first().map(|e| e.seq), Some(cut));
    store.flush().await.expect("flush");
    assert_eq!(ok(&engine, "get", 2.0, &["j0"]).await, Value::Null);
    assert!(whole_log(&*store, 100).await.is_empty());
    ok(&engine, "put", 3.0, &["w", "q", "j9", "k", "{}", "0"]).await;
    let after = whole_log(&*store, 100).await;
    assert!(after[0].seq > log.last().expect("events").seq);
    store.close().await.expect("close");
}
