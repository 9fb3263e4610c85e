//! Uniqueness keys on PostgreSQL under real concurrency: two stores (as two
//! servers would) on one schema, many concurrent puts with one key: exactly
//! one job; and the unique partial index refuses a second live holder
//! written behind the logic's back.
//!
//! Each test uses its own temporary schema of the test database
//! (`CLEW_TEST_POSTGRES_URL`); without PostgreSQL they print why and pass,
//! unless `CI=true`.

mod common;
use std::sync::Arc;

use clew_core::command::PutParams;
use clew_core::unique::{OnConflict, Unique};
use clew_core::{Engine, ErrorKind, Store};
use clew_postgres::testing::{self, TempSchema};
use clew_postgres::PostgresStore;
use clew_store_tests::unique_race;

/// Runs `f` on a plain thread (the synchronous client must not run inside
/// the runtime).
fn on_thread<T: Send>(f: impl FnOnce() -> T + Send) -> T {
    std::thread::scope(|s| s.spawn(f).join().expect("thread"))
}

/// Live jobs holding `key`, read straight from the schema.
fn live_holders(schema: &TempSchema, key: &str) -> Vec<String> {
    on_thread(|| live_holders_now(schema, key))
}

fn live_holders_now(schema: &TempSchema, key: &str) -> Vec<String> {
    let mut client = schema.connect().expect("connect");
    client
        .query(
            "SELECT jid FROM jobs WHERE unique_key = $1
             AND state NOT IN ('failed', 'complete') ORDER BY jid",
            &[&key],
        )
        .expect("query")
        .iter()
        .map(|r| r.get(0))
        .collect()
}

/// Jobs of any state carrying `key`.
fn all_with_key(schema: &TempSchema, key: &str) -> i64 {
    on_thread(|| all_with_key_now(schema, key))
}

fn all_with_key_now(schema: &TempSchema, key: &str) -> i64 {
    let mut client = schema.connect().expect("connect");
    client
        .query_one("SELECT COUNT(*) FROM jobs WHERE unique_key = $1", &[&key])
        .expect("count")
        .get(0)
}

#[tokio::test]
async fn concurrent_puts_on_two_stores_yield_one_job() {
    if testing::skip() {
        return;
    }
    let schema = TempSchema::new();
    let a: Arc<PostgresStore> = Arc::new(schema.open(schema.options()).expect("open a"));
    let b: Arc<PostgresStore> = Arc::new(schema.open(schema.options()).expect("open b"));
    let engines = [Engine::new(a.clone()), Engine::new(b.clone())];
    for round in 0..5 {
        let key = format!("search:user-{round}");
        let results = unique_race(&engines, &key, round, 32).await;
        let holders = live_holders(&schema, &key);
        assert_eq!(holders.len(), 1, "round {round}: {holders:?}");
        assert_eq!(all_with_key(&schema, &key), 1, "round {round}");
        let holder = &holders[0];
        for (policy, r) in results {
            match r {
                Ok(jid) => assert_eq!(&jid, holder, "round {round} {policy}"),
                Err(e) => {
                    assert_eq!(policy, OnConflict::Refuse, "round {round}: {e}");
                    assert_eq!(e.kind(), ErrorKind::Conflict, "{e}");
                    assert!(e.message().contains(holder.as_str()), "{e}");
                }
            }
        }
    }
    // Once the holder completes, the key is free again: one more race gives
    // one more job.
    let key = "search:user-0";
    let holder = live_holders(&schema, key).remove(0);
    let popped = common::ok(&engines[0], "pop", 100.0, &["q", "w", "100"]).await;
    assert!(popped
        .as_array()
        .expect("jobs")
        .iter()
        .any(|j| j["jid"] == *holder));
    common::ok(&engines[1], "complete", 101.0, &[&holder, "w", "q", "{}"]).await;
    assert!(live_holders(&schema, key).is_empty());
    unique_race(&engines, key, 9, 16).await;
    let holders = live_holders(&schema, key);
    assert_eq!(holders.len(), 1, "{holders:?}");
    assert_ne!(holders[0], holder);
    a.close().await.expect("close a");
    b.close().await.expect("close b");
}

#[tokio::test]
async fn the_index_refuses_a_second_live_holder() {
    if testing::skip() {
        return;
    }
    let schema = TempSchema::new();
    let store: Arc<PostgresStore> = Arc::new(schema.open(schema.options()).expect("open"));
    let engine = Engine::new(store.clone());
    let p = PutParams {
        jid: "a".into(),
        unique: Some(Unique::new("k")),
        ..PutParams::new("q", "K")
    };
    engine.put(p).await.expect("put");
    engine
        .put(PutParams {
            jid: "b".into(),
            ..PutParams::new("q", "K")
        })
        .await
        .expect("put");
    on_thread(|| {
        let mut client = schema.connect().expect("connect");
        // Behind the logic's back: giving b the key a holds is refused.
        let e = client
            .execute("UPDATE jobs SET unique_key = 'k' WHERE jid = 'b'", &[])
            .expect_err("a second live holder");
        let e = format!("{e:?}");
        assert!(e.contains("jobs_unique_live"), "{e}");
        // A complete job may keep the key beside a live holder.
        client
            .execute(
                "UPDATE jobs SET unique_key = 'k', state = 'complete' WHERE jid = 'b'",
                &[],
            )
            .expect("a complete job may carry the key");
    });
    store.close().await.expect("close");
}

/// Puts made with `put_in` in the application's transactions carry their
/// key through the outbox: the drain applies it like any put (the second
/// answered by the first, a refused one lands in `put_rejected`).
#[test]
fn put_in_carries_the_key_through_the_outbox() {
    if testing::skip() {
        return;
    }
    let schema = TempSchema::new();
    let store: Arc<PostgresStore> = Arc::new(schema.open(schema.options()).expect("open"));
    let engine = Engine::new(store.clone());
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("runtime");
    let mut app = std::thread::spawn(|| {
        postgres::Client::connect(&testing::test_url(), postgres::NoTls).expect("app connection")
    })
    .join()
    .expect("connect thread");
    for (jid, policy) in [
        ("a1", OnConflict::Existing),
        ("a2", OnConflict::Existing),
        ("a3", OnConflict::Refuse),
    ] {
        let put = PutParams {
            jid: jid.into(),
            unique: Some(Unique::new("k").on_conflict(policy)),
            ..PutParams::new("q", "K")
        };
        let mut tx = app.transaction().expect("begin");
        assert_eq!(
            clew_postgres::put_in(&mut tx, schema.name(), &put).expect("put_in"),
            jid
        );
        tx.commit().expect("commit");
    }
    // A command drains the outbox first.
    let a1 = rt.block_on(engine.get("a1")).expect("get").expect("a1");
    assert_eq!(a1.record.unique_key.as_deref(), Some("k"));
    assert!(rt.block_on(engine.get("a2")).expect("get").is_none());
    assert!(rt.block_on(engine.get("a3")).expect("get").is_none());
    let name = clew_postgres::SchemaName::new(schema.name())
        .expect("schema")
        .quoted();
    let rejected: Vec<(String, String)> = app
        .query(
            &format!("SELECT jid, error FROM {name}.put_rejected ORDER BY id"),
            &[],
        )
        .expect("put_rejected")
        .iter()
        .map(|r| (r.get(0), r.get(1)))
        .collect();
    assert_eq!(rejected.len(), 1, "{rejected:?}");
    assert_eq!(rejected[0].0, "a3");
    assert!(rejected[0].1.contains("held by job a1"), "{rejected:?}");
    rt.block_on(store.close()).expect("close");
}
