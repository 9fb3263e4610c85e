//! Completes running next to pops ([`PostgresOptions::concurrent_completes`]):
//! a complete holds the command lock shared, as pops do, so it races the
//! pops that hand over jobs whose lock expired. It reads the job's row
//! `FOR UPDATE` first: either the complete takes the row (and the pop skips
//! it) or the pop does (and the complete, reading the row the pop
//! committed, is refused: the job was handed to another worker). Never
//! both. Completes also run next to each other: the last test completes
//! the two dependencies of many jobs at once.
//!
//! Uses its own temporary schema of the test database
//! (`CLEW_TEST_POSTGRES_URL`); without PostgreSQL it prints why and passes,
//! unless `CI=true`.

mod common;
use common::{ok, on_thread};

use std::collections::BTreeSet;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Barrier};

use clew_core::command::CompleteParams;
use clew_core::{Command, Engine, Reply, Timestamp};
use clew_postgres::testing::{self, TempSchema};
use clew_postgres::PostgresOptions;

/// Jobs per round.
const JOBS: usize = 400;

/// Rounds of the race, each on a queue of its own.
const ROUNDS: usize = 4;

/// Jobs per `complete_many`.
const BATCH: usize = 10;

/// When every lock of the first worker has expired (grace period 0).
const LATE: i64 = 1_000;

fn complete(queue: &str, jid: &str) -> Command {
    Command::Complete(CompleteParams {
        jid: jid.to_owned(),
        worker: "wa".to_owned(),
        queue: queue.to_owned(),
        data: "{}".to_owned(),
        next: None,
        delay: 0.0,
        depends: Vec::new(),
        metadata: None,
    })
}

/// Two engines, each on a store of its own (pool of 4) on `schema`: two
/// servers on one database.
fn two_engines(schema: &TempSchema) -> (Engine, Engine) {
    let open = || {
        let options = PostgresOptions {
            pool_size: 4,
            ..schema.options()
        };
        let store = schema.open(options).expect("store");
        assert!(
            store.options().concurrent_completes,
            "completes next to pops"
        );
        Engine::new(Arc::new(store))
    };
    (open(), open())
}

/// 600 jobs popped by `wa`, whose locks then expire: two threads complete
/// them for `wa` (`complete_many` of 20 from the last job back, through
/// one store) while two
/// threads pop the queue as `wb0`/`wb1` (four at a time, through another
/// store), handing the expired jobs over. Every job ends either complete
/// (its complete succeeded, no pop handed it out) or running with a `wb`
/// worker (handed over, its complete refused); the statistics count each
/// once.
#[test]
fn a_complete_and_a_pop_handing_over_its_expired_job_never_both_win() {
    if testing::skip() {
        return;
    }
    let schema = TempSchema::new();
    let runtime = tokio::runtime::Runtime::new().expect("runtime");
    let (ea, eb) = two_engines(&schema);
    runtime.block_on(async {
        ok(&ea, "config.set", 0.0, &["grace-period", "0"]).await;
    });
    for round in 0..ROUNDS {
        race(&runtime, &ea, &eb, &format!("q{round}"));
    }
}

/// One round of the race on `queue` (see the test).
fn race(runtime: &tokio::runtime::Runtime, ea: &Engine, eb: &Engine, queue: &str) {
    let jids: Vec<String> = (0..JOBS).map(|i| format!("{queue}-j{i:04}")).collect();
    runtime.block_on(async {
        for jid in &jids {
            ok(ea, "put", 1.0, &["m", queue, jid, "k", "{}", "0"]).await;
        }
        let mut popped = 0;
        while popped < JOBS {
            let got = ok(ea, "pop", 2.0, &[queue, "wa", "100"]).await;
            popped += got.as_array().map_or(0, Vec::len);
        }
    });

    let start = Arc::new(Barrier::new(4));
    let completing = Arc::new(AtomicBool::new(true));
    let completers: Vec<_> = (0..2)
        .map(|c| {
            let (engine, start, queue) = (ea.clone(), start.clone(), queue.to_owned());
            // Each completer takes every other batch, from the last:
            // the pops hand over from the first, so they meet in between.
            let mine: Vec<String> = jids
                .chunks(BATCH)
                .rev()
                .skip(c)
                .step_by(2)
                .flatten()
                .cloned()
                .collect();
            on_thread(move || {
                start.wait();
                async move {
                    let mut done = Vec::new();
                    for chunk in mine.chunks(BATCH) {
                        let commands = chunk.iter().map(|jid| complete(&queue, jid)).collect();
                        let batch = Command::Batch {
                            commands,
                            atomic: false,
                        };
                        let reply = engine
                            .execute_at(Timestamp::from_secs(LATE), batch)
                            .await
                            .expect("complete_many");
                        let Reply::Batch(results) = reply else {
                            panic!("complete_many: {reply:?}");
                        };
                        for (jid, result) in chunk.iter().zip(results) {
                            match result {
                                Ok(_) => done.push(jid.clone()),
                                Err(e) => {
                                    assert!(e.to_string().contains("another worker"), "{jid}: {e}")
                                }
                            }
                        }
                    }
                    done
                }
            })
        })
        .collect();
    let poppers: Vec<_> = (0..2)
        .map(|p| {
            let (engine, start, completing) = (eb.clone(), start.clone(), completing.clone());
            let queue = queue.to_owned();
            on_thread(move || {
                start.wait();
                async move {
                    let worker = format!("wb{p}");
                    let mut handed = Vec::new();
                    loop {
                        let finishing = !completing.load(Ordering::SeqCst);
                        let got = ok(&engine, "pop", LATE as f64, &[&queue, &worker, "4"]).await;
                        let got = got.as_array().cloned().unwrap_or_default();
                        if got.is_empty() && finishing {
                            return handed;
                        }
                        for job in got {
                            handed.push(job["jid"].as_str().expect("jid").to_owned());
                        }
                    }
                }
            })
        })
        .collect();
    let completed: Vec<String> = completers
        .into_iter()
        .flat_map(|c| c.join().expect("completer"))
        .collect();
    completing.store(false, Ordering::SeqCst);
    let handed: Vec<String> = poppers
        .into_iter()
        .flat_map(|p| p.join().expect("popper"))
        .collect();

    let completed_set: BTreeSet<&String> = completed.iter().collect();
    let handed_set: BTreeSet<&String> = handed.iter().collect();
    assert_eq!(handed_set.len(), handed.len(), "a job was handed out twice");
    let both: Vec<&&String> = completed_set.intersection(&handed_set).collect();
    assert!(both.is_empty(), "completed and handed over: {both:?}");
    assert_eq!(
        completed.len() + handed.len(),
        JOBS,
        "every job either completed or handed over"
    );
    eprintln!(
        "complete race: {} completed by wa, {} handed over to wb",
        completed.len(),
        handed.len()
    );
    assert!(
        !completed.is_empty() && !handed.is_empty(),
        "the completes and the pops met"
    );

    runtime.block_on(async {
        for jid in &jids {
            let job = ok(ea, "get", LATE as f64 + 1.0, &[jid]).await;
            let history = job["history"].as_array().expect("history");
            let count = |what: &str| history.iter().filter(|h| h["what"] == what).count();
            if completed_set.contains(jid) {
                assert_eq!(job["state"], "complete", "{jid}: {job}");
                assert_eq!((count("done"), count("timed-out")), (1, 0), "{jid}: {job}");
            } else {
                assert_eq!(job["state"], "running", "{jid}: {job}");
                let worker = job["worker"].as_str().expect("worker");
                assert!(worker.starts_with("wb"), "{jid}: {job}");
                assert_eq!((count("done"), count("timed-out")), (0, 1), "{jid}: {job}");
            }
        }
        let stats = ok(eb, "stats", LATE as f64 + 1.0, &[queue, &LATE.to_string()]).await;
        // A wait sample per pop: wa's first and the hand-overs.
        assert_eq!(stats["wait"]["count"], JOBS + handed.len(), "{stats}");
        assert_eq!(stats["run"]["count"], completed.len(), "{stats}");
    });
}

/// Completes run next to each other too: 150 jobs each wait for two
/// others, and two threads (one store each) complete the first and the
/// second of every pair at once, in batches of 5 begun together. Each
/// complete removes
/// its dependency and looks at what the waiting job still waits for; the
/// waiting job's row is locked before that look, so one of the two always
/// sees the other's removal and releases it: every waiting job ends
/// `waiting`, none stays in `depends`.
#[test]
fn two_completes_of_a_jobs_last_dependencies_release_it() {
    if testing::skip() {
        return;
    }
    const PAIRS: usize = 150;
    let schema = TempSchema::new();
    let runtime = tokio::runtime::Runtime::new().expect("runtime");
    let (ea, eb) = two_engines(&schema);
    runtime.block_on(async {
        for i in 0..PAIRS {
            let (x, y, z) = (format!("x{i:03}"), format!("y{i:03}"), format!("z{i:03}"));
            ok(&ea, "put", 1.0, &["m", "d", &x, "k", "{}", "0"]).await;
            ok(&ea, "put", 1.0, &["m", "d", &y, "k", "{}", "0"]).await;
            let deps = serde_json::json!([x, y]).to_string();
            ok(
                &ea,
                "put",
                1.0,
                &["m", "later", &z, "k", "{}", "0", "depends", &deps],
            )
            .await;
        }
        let mut popped = 0;
        while popped < 2 * PAIRS {
            let got = ok(&ea, "pop", 2.0, &["d", "wa", "100"]).await;
            popped += got.as_array().map_or(0, Vec::len);
        }
    });
    let start = Arc::new(Barrier::new(2));
    let threads: Vec<_> = [("x", ea.clone()), ("y", eb.clone())]
        .into_iter()
        .map(|(prefix, engine)| {
            let start = start.clone();
            on_thread(move || async move {
                let jids: Vec<String> = (0..PAIRS).map(|i| format!("{prefix}{i:03}")).collect();
                for chunk in jids.chunks(5) {
                    // Both threads begin each batch together.
                    start.wait();
                    let commands = chunk.iter().map(|jid| complete("d", jid)).collect();
                    let batch = Command::Batch {
                        commands,
                        atomic: false,
                    };
                    let reply = engine
                        .execute_at(Timestamp::from_secs(3), batch)
                        .await
                        .expect("complete_many");
                    let Reply::Batch(results) = reply else {
                        panic!("complete_many: {reply:?}");
                    };
                    for (jid, result) in chunk.iter().zip(results) {
                        assert!(result.is_ok(), "{jid}: {result:?}");
                    }
                }
            })
        })
        .collect();
    for thread in threads {
        thread.join().expect("completer");
    }
    runtime.block_on(async {
        let mut stuck = Vec::new();
        for i in 0..PAIRS {
            let z = format!("z{i:03}");
            let job = ok(&ea, "get", 4.0, &[&z]).await;
            if job["state"] != "waiting" {
                stuck.push(format!("{z}: {} {}", job["state"], job["dependencies"]));
            }
        }
        assert!(stuck.is_empty(), "not released: {stuck:?}");
        let counts = ok(&eb, "queues", 4.0, &["later"]).await;
        assert_eq!(counts["waiting"], PAIRS, "{counts}");
        assert_eq!(counts["depends"], 0, "{counts}");
    });
}
