//! The PostgreSQL store sends every value as a bound parameter of a
//! prepared statement (the extended protocol, writes pipelined with the
//! read that follows, see `PgTx` and `PgConn::pipeline`): no value is ever
//! written into SQL text. Hostile text in every field a caller controls
//! must come back exactly as written and never act as SQL: quotes,
//! backslashes, `$$`, comment markers, statement separators, control
//! characters, non-ASCII text and a string of every character from 1 to
//! 0x2FF (in chunks of 100, as names are at most 255 bytes); a NUL only
//! inside job data (JSON text escapes it). Names (class, tags, worker,
//! group) carry each text without its control characters, which
//! `clew_core::limits` refuses in names before any store sees them; data,
//! messages and config values carry it whole. A NUL in a text column is
//! refused (PostgreSQL cannot store one) as the caller's error, and refuses
//! only its own command, or its own item of a batch.
//!
//! Uses its own temporary schema of the test database
//! (`CLEW_TEST_POSTGRES_URL`); without PostgreSQL it prints why and passes,
//! unless `CI=true`.

mod common;
use common::ok;

use clew_core::command::PutParams;
use clew_core::{Command, Engine, Reply, Timestamp};
use clew_postgres::testing::{self, TempSchema};
use serde_json::{json, Value};
use std::sync::Arc;

fn hostile() -> Vec<String> {
    let all: Vec<char> = (1u32..0x300)
        .filter_map(char::from_u32)
        .chain(['\u{1F600}', '\u{FFFD}', '\u{10FFFF}'])
        .collect();
    let mut texts: Vec<String> = vec![
        "it's".into(),
        "''".into(),
        "\\".into(),
        "\\'".into(),
        "'\\''".into(),
        "E'\\x27'".into(),
        "x'); DROP TABLE jobs; --".into(),
        "$$; DROP TABLE jobs; $$".into(),
        "$tag$ '' $tag$".into(),
        "/* unterminated comment".into(),
        "-- comment\nnext line\r\ttab".into(),
        "NULL".into(),
        "(1)::int8".into(),
        "Grüße, 東京, ☃".into(),
    ];
    texts.extend(all.chunks(100).map(|c| c.iter().collect::<String>()));
    texts
}

/// `text` as a name: without the control characters names refuse.
fn as_name(text: &str) -> String {
    text.chars().filter(|c| !c.is_control()).collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn hostile_text_comes_back_exactly_and_never_runs() {
    if testing::skip() {
        return;
    }
    let schema = TempSchema::new();
    let store = Arc::new(schema.open(schema.options()).expect("open"));
    let engine = Engine::new(store.clone());
    for (i, text) in hostile().iter().enumerate() {
        let jid = format!("hostile-{i}");
        let queue = format!("q{i}");
        let data = json!({ "text": text }).to_string();
        let name = as_name(text);
        assert!(name.len() <= 255, "{name:?}");
        let tags = json!([name]).to_string();
        ok(
            &engine,
            "put",
            1.0,
            &["w", &queue, &jid, &name, &data, "0", "tags", &tags],
        )
        .await;
        ok(&engine, "config.set", 1.0, &[&format!("k{i}"), text]).await;
        let popped = ok(&engine, "pop", 2.0, &[&queue, &name, "1"]).await;
        assert_eq!(
            popped.as_array().map(Vec::len),
            Some(1),
            "{text:?}: {popped}"
        );
        ok(&engine, "fail", 3.0, &[&jid, &name, &name, text, &data]).await;

        let job = ok(&engine, "get", 4.0, &[&jid]).await;
        let job: Value = match job {
            Value::String(s) => serde_json::from_str(&s).expect("job JSON"),
            v => v,
        };
        assert_eq!(job["klass"], json!(name), "class of {text:?}");
        let job_data: Value = match &job["data"] {
            Value::String(s) => serde_json::from_str(s).expect("data JSON"),
            v => v.clone(),
        };
        assert_eq!(job_data["text"], json!(text), "data of {text:?}");
        assert_eq!(job["tags"], json!([name]), "tags of {text:?}");
        assert_eq!(job["failure"]["group"], json!(name), "group of {text:?}");
        assert_eq!(
            job["failure"]["message"],
            json!(text),
            "message of {text:?}"
        );
        assert_eq!(job["failure"]["worker"], json!(name), "worker of {text:?}");
        let value = ok(&engine, "config.get", 4.0, &[&format!("k{i}")]).await;
        assert_eq!(value, json!(text), "config value {text:?}");
        let tagged = ok(&engine, "tag", 4.0, &["get", &name]).await;
        assert_eq!(
            tagged["jobs"],
            json!([jid]),
            "tag index of {text:?}: {tagged}"
        );
    }
    // A NUL in job data survives (the JSON text carries it escaped).
    let data = json!({ "text": "nul \0 inside" }).to_string();
    ok(&engine, "put", 6.0, &["w", "qn", "nul", "k", &data, "0"]).await;
    let job = ok(&engine, "get", 6.0, &["nul"]).await;
    let job: Value = match job {
        Value::String(s) => serde_json::from_str(&s).expect("job JSON"),
        v => v,
    };
    let job_data: Value = match &job["data"] {
        Value::String(s) => serde_json::from_str(s).expect("data JSON"),
        v => v.clone(),
    };
    assert_eq!(job_data["text"], json!("nul \0 inside"));
    // A NUL in a name is the caller's error (400), not the store's (500),
    // and refuses only that command.
    let err = common::call(
        &engine,
        "put",
        6.0,
        &["w", "qn", "nul-klass", "A\0B", "{}", "0"],
    )
    .await
    .expect_err("a NUL in a class");
    assert_eq!(err.kind(), clew_core::ErrorKind::Invalid, "{err}");
    assert!(err.to_string().contains("U+0000"), "{err}");
    let gone = ok(&engine, "get", 6.0, &["nul-klass"]).await;
    assert!(gone.is_null(), "nothing was put: {gone}");
    // Every job is still there: nothing ran as SQL.
    let failed = ok(&engine, "failed", 5.0, &[]).await;
    let total: i64 = failed
        .as_object()
        .expect("failed groups")
        .values()
        .map(|n| n.as_i64().unwrap_or(0))
        .sum();
    assert_eq!(total, hostile().len() as i64, "{failed}");
}

/// Commands grouped into one transaction with a put whose class holds a
/// NUL: that put alone is refused; the others commit.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_nul_refuses_only_its_own_command_in_a_group() {
    if testing::skip() {
        return;
    }
    let schema = TempSchema::new();
    let store = Arc::new(schema.open(schema.options()).expect("open"));
    let engine = Engine::new(store.clone());
    for round in 0..5 {
        let mut calls = tokio::task::JoinSet::new();
        for i in 0..16 {
            let engine = engine.clone();
            calls.spawn(async move {
                let jid = format!("r{round}-{i}");
                let klass = if i == 7 { "bad\0class" } else { "Good" };
                let args = ["w", "q", jid.as_str(), klass, "{}", "0"];
                (i, common::call(&engine, "put", 1.0, &args).await)
            });
        }
        while let Some(done) = calls.join_next().await {
            let (i, result) = done.expect("call");
            if i == 7 {
                let err = result.expect_err("the NUL put");
                assert_eq!(err.kind(), clew_core::ErrorKind::Invalid, "{err}");
            } else {
                result.unwrap_or_else(|e| panic!("put {i} of round {round}: {e}"));
            }
        }
    }
    let length = ok(&engine, "length", 2.0, &["q"]).await;
    assert_eq!(length, json!(5 * 15));
    println!("transactions for 80 puts: {}", store.transactions_run());
}

/// A non-atomic batch of puts whose middle item's class holds a NUL: that
/// item alone is refused (the caller's error), the others commit, and the
/// refusal names the NUL, whether the batch runs alone or is run again
/// with savepoints.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_nul_refuses_only_its_own_item_of_a_batch() {
    if testing::skip() {
        return;
    }
    let schema = TempSchema::new();
    let store = common::one_thread_store(&schema);
    let engine = Engine::new(store.clone());
    let put = |jid: &str, klass: &str| {
        let mut params = PutParams::new("qb", klass);
        params.jid = jid.to_owned();
        params.worker = "w".to_owned();
        Command::Put(params)
    };
    let commands = vec![
        put("b-0", "Good"),
        put("b-1", "bad\0class"),
        put("b-2", "Good"),
        put("b-3", "Good"),
    ];
    let reply = engine
        .execute_at(
            Timestamp::from_secs(1),
            Command::Batch {
                commands,
                atomic: false,
            },
        )
        .await
        .expect("the batch itself succeeds");
    let Reply::Batch(results) = reply else {
        panic!("batch: {reply:?}")
    };
    assert_eq!(results.len(), 4);
    for (i, result) in results.iter().enumerate() {
        if i == 1 {
            let err = result.as_ref().expect_err("the NUL item");
            assert_eq!(err.kind(), clew_core::ErrorKind::Invalid, "{err}");
            // `clew_core::limits` refuses it before the store does
            // ("U+0000"); the store's own refusal says "NUL".
            let text = err.to_string();
            assert!(text.contains("NUL") || text.contains("U+0000"), "{err}");
        } else {
            assert!(result.is_ok(), "item {i}: {result:?}");
        }
    }
    for (jid, exists) in [("b-0", true), ("b-1", false), ("b-2", true), ("b-3", true)] {
        let job = ok(&engine, "get", 2.0, &[jid]).await;
        assert_eq!(!job.is_null(), exists, "{jid}: {job}");
    }
    assert_eq!(ok(&engine, "length", 2.0, &["qb"]).await, json!(3));
}
