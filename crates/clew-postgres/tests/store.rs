//! `PostgresStore` on a real PostgreSQL: migrations (twice, and from two
//! threads at once), data round trips, rollback of refused commands, the
//! event log's order across two stores sharing a schema, exactly-once pops
//! under concurrent load, the pool's size, and closing.
//!
//! Each test uses its own temporary schema of the test database
//! (`CLEW_TEST_POSTGRES_URL`); without PostgreSQL they print why and pass,
//! unless `CI=true`.

mod common;
use common::{call, ok, page_log_until};
use std::collections::BTreeSet;
use std::io::Write as _;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Barrier};

use clew_core::{Engine, Event, NullSink, Store, Timestamp};
use clew_postgres::testing::{self, TempSchema};
use clew_postgres::{PostgresOptions, PostgresStore, SCHEMA_VERSION};
use serde_json::Value;

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
    if testing::skip() {
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
        tables, 23,
        "the 14 tables of 0001, put_outbox and put_rejected (0002), publisher_cursors (0003), \
         counters (0004), batches (0007), throttles and throttle_jobs (0008), throttle_starts \
         (0009) and clew_migrations"
    );
}

#[test]
fn a_schema_from_a_newer_clew_is_refused() {
    if testing::skip() {
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
    if testing::skip() {
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
    if testing::skip() {
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
    if testing::skip() {
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
    if testing::skip() {
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
    let reader = tokio::spawn(page_log_until(a.clone(), done.clone()));
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
    if testing::skip() {
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
    if testing::skip() {
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
    if testing::skip() {
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

/// What one popping thread of the stress test did.
#[derive(Default)]
struct WorkerLog {
    /// Every jid a pop handed out, in order.
    handed: Vec<String>,
    /// Jids whose `complete` succeeded.
    completed: Vec<String>,
    /// Jids left running on purpose.
    kept: Vec<String>,
}

/// The numeric part of a stress-test jid (`j0042` → 42).
fn jid_number(jid: &str) -> usize {
    jid[1..].parse().expect("numbered jid")
}

/// One popping thread: pops four at a time until the mutator is done and
/// the queue is empty; completes every job but every 50th (kept running).
fn stress_worker(engine: Engine, worker: String, mutator_done: Arc<AtomicBool>) -> WorkerLog {
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("runtime");
    runtime.block_on(async move {
        let mut log = WorkerLog::default();
        loop {
            let finishing = mutator_done.load(Ordering::SeqCst);
            let popped = ok(&engine, "pop", 2.0, &["q", &worker, "4"]).await;
            let jobs = popped.as_array().cloned().unwrap_or_default();
            if jobs.is_empty() {
                if finishing {
                    return log;
                }
                tokio::task::yield_now().await;
                continue;
            }
            for job in jobs {
                let jid = job["jid"].as_str().expect("jid").to_owned();
                log.handed.push(jid.clone());
                if jid_number(&jid).is_multiple_of(50) {
                    log.kept.push(jid);
                    continue;
                }
                // A job cancelled while it ran refuses the completion.
                if call(&engine, "complete", 3.0, &[&jid, &worker, "q", "{}"])
                    .await
                    .is_ok()
                {
                    log.completed.push(jid);
                }
            }
        }
    })
}

/// The stress test's third party: puts 400 more jobs, cancels 400 of the
/// first ones and changes the priority of 400 others (from the back of the
/// queue, so many are still waiting), interleaved; returns the jids it put.
fn stress_mutator(engine: Engine, done: Arc<AtomicBool>) -> Vec<String> {
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("runtime");
    let added = runtime.block_on(async move {
        let mut added = Vec::new();
        for i in 0..400 {
            let jid = format!("x{i:04}");
            let priority = (i % 3).to_string();
            ok(
                &engine,
                "put",
                1.5,
                &["m", "q", &jid, "k", "{}", "0", "priority", &priority],
            )
            .await;
            added.push(jid);
            ok(&engine, "cancel", 1.5, &[&format!("j{:04}", 1996 - i * 5)]).await;
            let priority = ((i % 7) as i64 - 3).to_string();
            ok(
                &engine,
                "priority",
                1.5,
                &[&format!("j{:04}", 1998 - i * 5), &priority],
            )
            .await;
        }
        added
    });
    done.store(true, Ordering::SeqCst);
    added
}

/// 2,000 jobs on one queue popped by eight threads through two stores while
/// a third store puts, cancels and re-prioritizes jobs, and a reader pages
/// the event log: no job is handed out twice, every job ends in exactly one
/// place (complete, running, or gone because cancelled), the queue counts
/// match the listings, the stats count every pop and completion, and the
/// reader saw exactly the final log. Prints the pop throughput.
#[test]
fn eight_threads_on_two_stores_pop_each_job_at_most_once_under_concurrent_changes() {
    if testing::skip() {
        return;
    }
    const JOBS: usize = 2_000;
    let schema = TempSchema::new();
    let runtime = tokio::runtime::Runtime::new().expect("runtime");
    let open = || Arc::new(schema.open(schema.options()).expect("store"));
    let (a, b, c) = (open(), open(), open());
    let (ea, eb, ec) = (engine(a.clone()), engine(b.clone()), engine(c.clone()));
    let originals: Vec<String> = (0..JOBS).map(|i| format!("j{i:04}")).collect();
    runtime.block_on(async {
        for jid in &originals {
            ok(&ea, "put", 1.0, &["m", "q", jid, "k", "{}", "0"]).await;
        }
    });

    let reader_done = Arc::new(tokio::sync::Notify::new());
    let reader = runtime.spawn(page_log_until(b.clone(), reader_done.clone()));
    let mutator_done = Arc::new(AtomicBool::new(false));
    let started = std::time::Instant::now();
    let workers: Vec<_> = (0..8)
        .map(|w| {
            let engine = if w < 4 { ea.clone() } else { eb.clone() };
            let done = mutator_done.clone();
            std::thread::spawn(move || stress_worker(engine, format!("w{w}"), done))
        })
        .collect();
    let mutator = {
        let done = mutator_done.clone();
        let engine = ec.clone();
        std::thread::spawn(move || stress_mutator(engine, done))
    };
    let added = mutator.join().expect("mutator");
    let logs: Vec<WorkerLog> = workers
        .into_iter()
        .map(|w| w.join().expect("worker"))
        .collect();
    let elapsed = started.elapsed();
    reader_done.notify_one();
    let seen = runtime.block_on(reader).expect("reader");

    let handed: Vec<&String> = logs.iter().flat_map(|l| &l.handed).collect();
    let _ = writeln!(
        std::io::stderr().lock(),
        "stress: {} jobs handed out in {:.2?} ({:.0} jobs/s, {} mode)",
        handed.len(),
        elapsed,
        handed.len() as f64 / elapsed.as_secs_f64(),
        if a.options().concurrent_pops {
            "concurrent-pop"
        } else {
            "serial"
        }
    );
    let unique: BTreeSet<&String> = handed.iter().copied().collect();
    assert_eq!(unique.len(), handed.len(), "a job was handed out twice");
    let completed: BTreeSet<String> = logs.iter().flat_map(|l| l.completed.clone()).collect();
    let kept: BTreeSet<String> = logs.iter().flat_map(|l| l.kept.clone()).collect();

    runtime.block_on(async {
        let mut running = BTreeSet::new();
        for jid in originals.iter().chain(&added) {
            let job = ok(&ea, "get", 4.0, &[jid]).await;
            let was_handed = unique.contains(jid);
            match job["state"].as_str() {
                None => assert!(!completed.contains(jid), "{jid}: gone but it completed"),
                Some("complete") => {
                    assert!(
                        completed.contains(jid),
                        "{jid}: complete without a completion"
                    );
                    let history = job["history"].as_array().expect("history");
                    let count = |what: &str| history.iter().filter(|h| h["what"] == what).count();
                    assert_eq!(
                        (count("popped"), count("done")),
                        (1, 1),
                        "{jid}: {history:?}"
                    );
                }
                Some("running") => {
                    assert!(
                        was_handed && kept.contains(jid),
                        "{jid}: running unexpectedly"
                    );
                    running.insert(jid.clone());
                }
                Some(other) => panic!("{jid}: left {other} ({job})"),
            }
            if !was_handed {
                assert!(
                    job.is_null(),
                    "{jid} was never handed out, so it was cancelled"
                );
            }
        }
        let list = |listing: &'static str| {
            let ea = ea.clone();
            async move {
                let jids = ok(&ea, "jobs", 4.0, &[listing, "q", "0", "100000"]).await;
                jids.as_array().map_or(0, Vec::len) as i64
            }
        };
        let counts = ok(&ea, "queues", 4.0, &["q"]).await;
        assert_eq!(counts["waiting"], list("waiting").await);
        assert_eq!(counts["running"], list("running").await);
        assert_eq!(counts["stalled"], list("stalled").await);
        assert_eq!(counts["scheduled"], list("scheduled").await);
        assert_eq!(counts["depends"], list("depends").await);
        assert_eq!(counts["waiting"], 0);
        assert_eq!(counts["running"], running.len() as i64);
        let complete = ok(&eb, "jobs", 4.0, &["complete", "0", "100000"]).await;
        assert_eq!(complete.as_array().map(Vec::len), Some(completed.len()));

        let stats = ok(&ec, "stats", 4.0, &["q", "2"]).await;
        assert_eq!(
            stats["wait"]["count"],
            handed.len(),
            "a wait sample per pop"
        );
        assert_eq!(
            stats["run"]["count"],
            completed.len(),
            "a run sample per completion"
        );
        let histogram_sum = |kind: &str| -> i64 {
            stats[kind]["histogram"]
                .as_array()
                .expect("histogram")
                .iter()
                .map(|n| n.as_i64().expect("bucket"))
                .sum()
        };
        assert_eq!(histogram_sum("wait"), handed.len() as i64);
        assert_eq!(histogram_sum("run"), completed.len() as i64);

        let whole = whole_log(&*c, 1000).await;
        assert!(whole.windows(2).all(|w| w[0].seq < w[1].seq));
        assert_eq!(
            seen.len(),
            whole.len(),
            "the concurrent reader missed events"
        );
        assert!(seen == whole, "the concurrent reader saw exactly the log");
        for store in [&a, &b, &c] {
            store.close().await.expect("close");
        }
    });
}
