//! Transactional enqueue on a real PostgreSQL: jobs put by an application
//! inside its own transaction (the `put` SQL function, `put_in`,
//! `put_in_async`) exist if and only if that transaction commits, and then
//! are exactly normal puts (history, the `put` event, the lifecycle
//! `enqueued` event); concurrent application transactions and a popping
//! store; clear errors for bad arguments; refused puts moved to
//! `put_rejected` without blocking anything.
//!
//! Each test uses its own temporary schema of the test database
//! (`CLEW_TEST_POSTGRES_URL`); without PostgreSQL they print why and pass,
//! unless `CI=true`.

use std::collections::BTreeSet;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};

use clew_core::command::PutParams;
use clew_core::{Command, Engine, ErrorKind, Event, LifecycleKind, MemorySink, Store, Timestamp};
use clew_postgres::testing::{self, TempSchema};
use clew_postgres::{PostgresStore, SchemaName};
use postgres::Client;

/// A runtime for the store's async calls; the application's synchronous
/// client is used outside it.
fn runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("runtime")
}

/// A store (no listener: only commands drain here) and an engine over it
/// whose events land in the returned sink.
fn store_and_engine(schema: &TempSchema) -> (Arc<PostgresStore>, Engine, Arc<MemorySink>) {
    let store = Arc::new(schema.open(schema.options()).expect("open"));
    let sink = Arc::new(MemorySink::default());
    let engine = Engine::new(store.clone()).with_sink(sink.clone());
    (store, engine, sink)
}

/// An application connection: plain `postgres::Client`, default
/// `search_path` (so every clew name below is schema-qualified).
fn app_client() -> Client {
    std::thread::spawn(|| {
        postgres::Client::connect(&testing::test_url(), postgres::NoTls).expect("app connection")
    })
    .join()
    .expect("connect thread")
}

/// `<schema>.put(queue, klass, data, options)` on the application's
/// transaction.
fn sql_put(
    tx: &mut impl postgres::GenericClient,
    schema: &str,
    queue: &str,
    klass: &str,
    data: &str,
    options: &str,
) -> Result<String, postgres::Error> {
    let schema = SchemaName::new(schema).expect("schema").quoted();
    let sql = format!("SELECT {schema}.put($1, $2, $3::text::jsonb, $4::text::jsonb)");
    tx.query_one(&sql, &[&queue, &klass, &data, &options])
        .map(|row| row.get(0))
}

/// A count of rows of `table` in `schema`.
fn count(client: &mut Client, schema: &str, table: &str) -> i64 {
    let schema = SchemaName::new(schema).expect("schema").quoted();
    client
        .query_one(&format!("SELECT COUNT(*) FROM {schema}.{table}"), &[])
        .expect("count")
        .get(0)
}

/// The whole event log.
async fn whole_log(store: &dyn Store) -> Vec<Event> {
    store.events_after(0, 100_000).await.expect("events")
}

/// The log's events about `jid`: (channel, qless event name or lifecycle
/// kind).
fn about(log: &[Event], jid: &str) -> Vec<(String, String)> {
    log.iter()
        .filter(|e| e.message.contains(jid))
        .map(|e| match e.lifecycle() {
            Some(l) => (e.channel.clone(), format!("{:?}", l.kind)),
            None => {
                let v: serde_json::Value = serde_json::from_str(&e.message).unwrap_or_default();
                (
                    e.channel.clone(),
                    v["event"].as_str().unwrap_or("").to_owned(),
                )
            }
        })
        .collect()
}

#[test]
fn a_rolled_back_put_never_exists_and_a_committed_one_is_a_normal_put() {
    if testing::skip() {
        return;
    }
    let schema = TempSchema::new();
    let (store, engine, sink) = store_and_engine(&schema);
    let rt = runtime();
    let mut app = app_client();

    // Rolled back: no job, no row, no event, ever.
    let mut tx = app.transaction().expect("begin");
    let jid = sql_put(
        &mut tx,
        schema.name(),
        "q",
        "K",
        "{}",
        r#"{"jid": "rolled"}"#,
    )
    .expect("put");
    assert_eq!(jid, "rolled");
    tx.rollback().expect("rollback");
    let got = rt.block_on(engine.get("rolled")).expect("get");
    assert!(got.is_none(), "a rolled-back put made a job: {got:?}");
    assert_eq!(count(&mut app, schema.name(), "put_outbox"), 0);
    assert!(rt.block_on(whole_log(store.as_ref())).is_empty());
    assert!(sink.events().is_empty());

    // Committed: a normal put, made by the next command at its own now.
    let mut tx = app.transaction().expect("begin");
    let jid = sql_put(
        &mut tx,
        schema.name(),
        "q",
        "Mailer",
        r#"{"to": "a@example.com"}"#,
        r#"{"priority": 5, "tags": ["t1"], "retries": 2, "metadata": {"order": 7}}"#,
    )
    .expect("put");
    assert_eq!(jid.len(), 32, "a generated jid is 32 hex characters: {jid}");
    assert!(jid.bytes().all(|b| b.is_ascii_hexdigit()), "{jid}");
    // A UUID v7: version nibble 7, variant 10xx, and the first 48 bits are
    // the put's time in Unix milliseconds (so jids sort by creation).
    assert_eq!(&jid[12..13], "7", "a version-7 UUID: {jid}");
    assert!(
        matches!(&jid[16..17], "8" | "9" | "a" | "b"),
        "variant: {jid}"
    );
    let made_ms = i64::from_str_radix(&jid[..12], 16).expect("hex");
    let now_ms = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .expect("clock")
        .as_millis() as i64;
    assert!(
        (now_ms - 60_000..=now_ms + 60_000).contains(&made_ms),
        "the jid's time {made_ms} ms is not about now ({now_ms} ms): {jid}"
    );
    // Not visible to the store before the commit.
    assert!(rt.block_on(engine.get(&jid)).expect("get").is_none());
    tx.commit().expect("commit");

    let now = Timestamp::from_secs(1_700_000_000);
    let job = rt
        .block_on(engine.execute_at(now, Command::Get { jid: jid.clone() }))
        .expect("get");
    let clew_core::Reply::Job(Some(job)) = job else {
        panic!("the committed put is no job: {job:?}");
    };
    assert_eq!(job.record.queue, "q");
    assert_eq!(job.record.klass, "Mailer");
    assert_eq!(job.record.priority, 5);
    assert_eq!(job.record.retries, 2);
    assert_eq!(job.record.tags, vec!["t1".to_owned()]);
    assert_eq!(job.record.metadata["order"], 7);
    // jsonb normalizes the text (documented): key order and spacing are
    // PostgreSQL's.
    assert_eq!(job.record.data, r#"{"to": "a@example.com"}"#);
    assert_eq!(job.history.len(), 1);
    assert_eq!(job.history[0].what, "put");
    assert_eq!(job.history[0].when, now);
    assert_eq!(job.record.time, now);

    let log = rt.block_on(whole_log(store.as_ref()));
    assert_eq!(
        about(&log, &jid),
        vec![
            ("ql:log".to_owned(), "put".to_owned()),
            ("clew:lifecycle".to_owned(), "Enqueued".to_owned()),
        ]
    );
    let enqueued = log
        .iter()
        .find_map(Event::lifecycle)
        .expect("the enqueued event");
    assert_eq!(enqueued.kind, LifecycleKind::Enqueued);
    assert_eq!(enqueued.at, now);
    assert_eq!(enqueued.args["to"], "a@example.com");
    assert!(!enqueued.origin.hostname.is_empty());
    assert_eq!(enqueued.origin.process, 0, "SQL puts name no process");
    // The engine's sink got the same events, after the commit.
    assert_eq!(sink.events(), log);
    assert_eq!(count(&mut app, schema.name(), "put_outbox"), 0);
}

#[test]
fn a_drained_put_survives_a_refused_command_and_a_pop_always_sees_committed_jobs() {
    if testing::skip() {
        return;
    }
    let schema = TempSchema::new();
    let (_store, engine, _sink) = store_and_engine(&schema);
    let rt = runtime();
    let mut app = app_client();

    let mut tx = app.transaction().expect("begin");
    sql_put(&mut tx, schema.name(), "q", "K", "{}", r#"{"jid": "x"}"#).expect("put");
    tx.commit().expect("commit");
    // The command that drains is refused (x is waiting, not running): the
    // command rolls back, the drained put stays.
    let refused = rt.block_on(engine.execute(Command::Complete(
        clew_core::command::CompleteParams {
            jid: "x".into(),
            worker: "nobody".into(),
            queue: "q".into(),
            data: "{}".into(),
            next: None,
            delay: 0.0,
            depends: Vec::new(),
            metadata: None,
        },
    )));
    assert!(refused.is_err(), "{refused:?}");
    let job = rt
        .block_on(engine.get("x"))
        .expect("get")
        .expect("x exists");
    assert_eq!(job.history.len(), 1);

    // Commit then pop at once: the pop's own transaction drains first.
    for i in 0..5 {
        let mut tx = app.transaction().expect("begin");
        let jid = format!("p{i}");
        sql_put(
            &mut tx,
            schema.name(),
            "p",
            "K",
            "{}",
            &format!(r#"{{"jid": "{jid}"}}"#),
        )
        .expect("put");
        tx.commit().expect("commit");
        let popped = rt.block_on(engine.pop("p", "w", 1)).expect("pop");
        let jids: Vec<&str> = popped.iter().map(|j| j.jid()).collect();
        assert_eq!(jids, vec![jid.as_str()]);
    }
}

#[test]
fn concurrent_app_transactions_put_while_a_store_pops_every_committed_job_exactly_once() {
    if testing::skip() {
        return;
    }
    const APPS: usize = 4;
    const TXS: usize = 30;
    let schema = TempSchema::new();
    let (_store, engine, _sink) = store_and_engine(&schema);
    let committed = Arc::new(Mutex::new(BTreeSet::new()));
    let rolled = Arc::new(Mutex::new(BTreeSet::new()));
    let finished = Arc::new(AtomicUsize::new(0));
    let apps: Vec<_> = (0..APPS)
        .map(|app_no| {
            let (name, committed, rolled, finished) = (
                schema.name().to_owned(),
                committed.clone(),
                rolled.clone(),
                finished.clone(),
            );
            std::thread::spawn(move || {
                let mut app = postgres::Client::connect(&testing::test_url(), postgres::NoTls)
                    .expect("app connection");
                for t in 0..TXS {
                    let mut tx = app.transaction().expect("begin");
                    // Two jobs per transaction: both or neither.
                    let jids: Vec<String> = (0..2)
                        .map(|k| {
                            let data = format!(r#"{{"app": {app_no}, "tx": {t}, "k": {k}}}"#);
                            sql_put(&mut tx, &name, "load", "K", &data, "{}").expect("put")
                        })
                        .collect();
                    if t % 3 == 2 {
                        tx.rollback().expect("rollback");
                        rolled.lock().unwrap().extend(jids);
                    } else {
                        tx.commit().expect("commit");
                        committed.lock().unwrap().extend(jids);
                    }
                }
                finished.fetch_add(1, Ordering::SeqCst);
            })
        })
        .collect();

    let popped = runtime().block_on(async {
        let mut popped: Vec<String> = Vec::new();
        loop {
            // Read before popping: once every app is done, an empty pop
            // means nothing committed is left.
            let apps_done = finished.load(Ordering::SeqCst) == APPS;
            let jobs = engine.pop("load", "w", 7).await.expect("pop");
            if jobs.is_empty() {
                if apps_done {
                    return popped;
                }
                // Pacing only: the next pop checks again.
                tokio::time::sleep(std::time::Duration::from_millis(2)).await;
            }
            popped.extend(jobs.iter().map(|j| j.jid().to_owned()));
        }
    });
    for app in apps {
        app.join().expect("app thread");
    }
    let unique: BTreeSet<String> = popped.iter().cloned().collect();
    assert_eq!(unique.len(), popped.len(), "a job was popped twice");
    let committed = committed.lock().unwrap().clone();
    let rolled = rolled.lock().unwrap().clone();
    assert_eq!(committed.len(), APPS * TXS / 3 * 2 * 2);
    assert_eq!(
        unique, committed,
        "popped jobs are exactly the committed ones"
    );
    assert!(unique.is_disjoint(&rolled));
    let mut app = app_client();
    assert_eq!(count(&mut app, schema.name(), "put_outbox"), 0);
    assert_eq!(count(&mut app, schema.name(), "put_rejected"), 0);
}

#[test]
fn bad_arguments_are_clear_sql_errors_naming_the_argument() {
    if testing::skip() {
        return;
    }
    let schema = TempSchema::new();
    let (_store, _engine, _sink) = store_and_engine(&schema);
    let mut app = app_client();
    let cases: &[(&str, &str, &str, &str, &str)] = &[
        ("", "K", "{}", "{}", r#"argument "queue" is missing"#),
        ("q", "", "{}", "{}", r#"argument "klass" is missing"#),
        (
            "q",
            "K",
            "{}",
            "[1]",
            r#"argument "options" must be a JSON object"#,
        ),
        ("q", "K", "{}", r#"{"prio": 1}"#, r#"unknown option "prio""#),
        (
            "q",
            "K",
            "{}",
            r#"{"priority": "high"}"#,
            r#"option "priority" must be an integer"#,
        ),
        (
            "q",
            "K",
            "{}",
            r#"{"priority": 1.5}"#,
            r#"option "priority" must be an integer"#,
        ),
        (
            "q",
            "K",
            "{}",
            r#"{"retries": -1}"#,
            r#"option "retries" must not be negative"#,
        ),
        (
            "q",
            "K",
            "{}",
            r#"{"delay": "soon"}"#,
            r#"option "delay" must be a number"#,
        ),
        (
            "q",
            "K",
            "{}",
            r#"{"delay": -2}"#,
            r#"option "delay" must not be negative"#,
        ),
        (
            "q",
            "K",
            "{}",
            r#"{"tags": "a"}"#,
            r#"option "tags" must be a JSON array of strings"#,
        ),
        (
            "q",
            "K",
            "{}",
            r#"{"depends": [1]}"#,
            r#"option "depends" must be a JSON array"#,
        ),
        (
            "q",
            "K",
            "{}",
            r#"{"jid": ""}"#,
            r#"option "jid" must be a non-empty string"#,
        ),
        (
            "q",
            "K",
            "{}",
            r#"{"metadata": []}"#,
            r#"option "metadata" must be a JSON object"#,
        ),
        (
            "q",
            "K",
            "{}",
            r#"{"jid": "a", "depends": ["a"]}"#,
            "job a cannot depend on itself",
        ),
    ];
    for (queue, klass, data, options, expected) in cases {
        let mut tx = app.transaction().expect("begin");
        let e = sql_put(&mut tx, schema.name(), queue, klass, data, options).expect_err(&format!(
            "put({queue:?}, {klass:?}, {data}, {options}) was accepted"
        ));
        let db = e.as_db_error().expect("a database error");
        assert!(
            db.message().contains(expected),
            "{options}: {:?} does not say {expected:?}",
            db.message()
        );
        assert_eq!(db.code().code(), "22023", "invalid_parameter_value");
        tx.rollback().expect("rollback");
    }
    // NULL data and data that is not JSON.
    let name = SchemaName::new(schema.name()).expect("schema").quoted();
    let e = app
        .query_one(&format!("SELECT {name}.put('q', 'K', NULL)"), &[])
        .expect_err("NULL data");
    assert!(
        e.as_db_error().expect("db").message().contains(r#""data""#),
        "{e}"
    );
    let e = app
        .query_one(&format!("SELECT {name}.put('q', 'K', 'not json')"), &[])
        .expect_err("bad data");
    let message = e.as_db_error().expect("db").message();
    assert!(message.contains("json"), "{message}");
    assert_eq!(count(&mut app, schema.name(), "put_outbox"), 0);
}

#[test]
fn put_in_keeps_the_data_text_verbatim_and_names_this_process() {
    if testing::skip() {
        return;
    }
    let schema = TempSchema::new();
    let (store, engine, _sink) = store_and_engine(&schema);
    let rt = runtime();
    let mut app = app_client();
    let data = "{\"b\": 1,   \"a\" : [2,1],\n \"c\":\"\\u00e9\"}";

    let mut put = PutParams::new("q", "K");
    put.data = data.to_owned();
    put.jid = "rolled".to_owned();
    let mut tx = app.transaction().expect("begin");
    assert_eq!(
        clew_postgres::put_in(&mut tx, schema.name(), &put).expect("put_in"),
        "rolled"
    );
    tx.rollback().expect("rollback");
    assert!(rt.block_on(engine.get("rolled")).expect("get").is_none());

    put.jid = String::new();
    put.tags = Some(vec!["a".into(), "b".into()]);
    put.delay = 30.0;
    put.depends = Some(vec!["missing".into()]);
    let mut tx = app.transaction().expect("begin");
    let jid = clew_postgres::put_in(&mut tx, schema.name(), &put).expect("put_in");
    tx.commit().expect("commit");
    let job = rt
        .block_on(engine.get(&jid))
        .expect("get")
        .expect("the job");
    assert_eq!(job.record.data, data, "byte for byte");
    assert_eq!(job.record.tags, vec!["a".to_owned(), "b".to_owned()]);
    // A dependency on a job that does not exist is dropped (qless's rule),
    // and the delay makes it scheduled.
    assert_eq!(job.state(), clew_core::JobState::Scheduled);
    let log = rt.block_on(whole_log(store.as_ref()));
    let enqueued = log
        .iter()
        .filter_map(Event::lifecycle)
        .find(|l| l.jid == jid)
        .expect("enqueued");
    assert_eq!(enqueued.origin.process, std::process::id());

    // put_in refuses what a put refuses, before writing anything.
    let mut bad = PutParams::new("q", "K");
    bad.data = "{not json".to_owned();
    let mut tx = app.transaction().expect("begin");
    let e = clew_postgres::put_in(&mut tx, schema.name(), &bad).expect_err("bad data");
    assert_eq!(e.kind(), ErrorKind::Invalid);
    assert!(e.message().contains("\"data\""), "{e}");
    let e = clew_postgres::put_in(&mut tx, "", &put).expect_err("bad schema");
    assert!(e.message().contains("schema"), "{e}");
    tx.rollback().expect("rollback");
}

#[test]
fn put_in_async_works_on_tokio_postgres() {
    if testing::skip() {
        return;
    }
    let schema = TempSchema::new();
    let (_store, engine, _sink) = store_and_engine(&schema);
    runtime().block_on(async {
        let (mut client, connection) =
            tokio_postgres::connect(&testing::test_url(), tokio_postgres::NoTls)
                .await
                .expect("connect");
        tokio::spawn(connection);
        let mut put = PutParams::new("q", "K");
        put.data = r#"{"z":1, "a":2}"#.to_owned();
        let tx = client.transaction().await.expect("begin");
        let jid = clew_postgres::put_in_async(&tx, schema.name(), &put)
            .await
            .expect("put_in_async");
        assert!(
            engine.get(&jid).await.expect("get").is_none(),
            "not before commit"
        );
        tx.commit().await.expect("commit");
        let job = engine.get(&jid).await.expect("get").expect("the job");
        assert_eq!(job.record.data, r#"{"z":1, "a":2}"#);
    });
}

#[test]
fn a_refused_put_lands_in_put_rejected_and_blocks_nothing() {
    if testing::skip() {
        return;
    }
    let schema = TempSchema::new();
    let (_store, engine, _sink) = store_and_engine(&schema);
    let rt = runtime();
    let mut app = app_client();
    let name = SchemaName::new(schema.name()).expect("schema").quoted();
    // Rows that bypass the function's checks (written straight into the
    // outbox), between two good puts, in one transaction.
    let mut tx = app.transaction().expect("begin");
    sql_put(
        &mut tx,
        schema.name(),
        "q",
        "K",
        "{}",
        r#"{"jid": "good1"}"#,
    )
    .expect("put");
    tx.execute(
        &format!(
            "INSERT INTO {name}.put_outbox (jid, queue, klass, data, options)
             VALUES ('bad-data', 'q', 'K', 'not json', '{{}}'),
                    ('bad-priority', 'q', 'K', '{{}}', '{{\"priority\": \"high\"}}')"
        ),
        &[],
    )
    .expect("insert");
    sql_put(
        &mut tx,
        schema.name(),
        "q",
        "K",
        "{}",
        r#"{"jid": "good2"}"#,
    )
    .expect("put");
    tx.commit().expect("commit");

    let popped = rt.block_on(engine.pop("q", "w", 10)).expect("pop");
    let jids: Vec<&str> = popped.iter().map(|j| j.jid()).collect();
    assert_eq!(jids, vec!["good1", "good2"]);
    let rejected: Vec<(String, String, String)> = app
        .query(
            &format!("SELECT jid, data, error FROM {name}.put_rejected ORDER BY id"),
            &[],
        )
        .expect("rejected")
        .iter()
        .map(|r| (r.get(0), r.get(1), r.get(2)))
        .collect();
    assert_eq!(rejected.len(), 2, "{rejected:?}");
    assert_eq!(rejected[0].0, "bad-data");
    assert_eq!(rejected[0].1, "not json", "the row is kept as it was");
    assert!(rejected[0].2.contains("\"data\""), "{}", rejected[0].2);
    assert_eq!(rejected[1].0, "bad-priority");
    assert!(rejected[1].2.contains("\"priority\""), "{}", rejected[1].2);
    assert!(rt.block_on(engine.get("bad-data")).expect("get").is_none());
    assert_eq!(count(&mut app, schema.name(), "put_outbox"), 0);
}
