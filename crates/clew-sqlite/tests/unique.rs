//! Uniqueness keys on SQLite under real concurrency: many concurrent puts
//! with one key, through two stores on one file (as two processes would),
//! yield exactly one job; and the unique partial index refuses a second
//! live holder written behind the logic's back.

use std::sync::Arc;

use clew_core::command::PutParams;
use clew_core::unique::{OnConflict, Unique};
use clew_core::{Engine, ErrorKind, Store};
use clew_sqlite::testing::{migrated_connection, temp_store, DB_FILE};
use clew_sqlite::{SqliteOptions, SqliteStore};
use clew_store_tests::unique_race;

/// Live jobs holding `key`, read straight from the file.
fn live_holders(path: &std::path::Path, key: &str) -> Vec<String> {
    let conn = migrated_connection(path).expect("connection");
    let mut stmt = conn
        .prepare(
            "SELECT jid FROM jobs WHERE unique_key = ?1
             AND state NOT IN ('failed', 'complete') ORDER BY jid",
        )
        .expect("prepare");
    let rows = stmt
        .query_map([key], |r| r.get::<_, String>(0))
        .expect("query");
    rows.map(|r| r.expect("row")).collect()
}

#[tokio::test]
async fn concurrent_puts_on_two_stores_yield_one_job() {
    let (a, dir) = temp_store();
    let path = dir.path().join(DB_FILE);
    let b = Arc::new(SqliteStore::open(&path, SqliteOptions::default()).expect("open b"));
    let engines = [Engine::new(a.clone()), Engine::new(b.clone())];
    for round in 0..5 {
        let key = format!("search:user-{round}");
        let results = unique_race(&engines, &key, round, 32).await;
        let holders = live_holders(&path, &key);
        assert_eq!(holders.len(), 1, "round {round}: {holders:?}");
        let holder = &holders[0];
        let mut refused = 0;
        for (policy, r) in results {
            match r {
                Ok(jid) => assert_eq!(&jid, holder, "round {round} {policy}"),
                Err(e) => {
                    assert_eq!(policy, OnConflict::Refuse, "round {round}: {e}");
                    assert_eq!(e.kind(), ErrorKind::Conflict, "{e}");
                    refused += 1;
                }
            }
        }
        assert!(refused >= 9, "round {round}: {refused} refusals of 10");
    }
    a.close().await.expect("close a");
    b.close().await.expect("close b");
}

#[tokio::test]
async fn the_index_refuses_a_second_live_holder() {
    let (store, dir) = temp_store();
    let engine = Engine::new(store.clone());
    engine
        .put(PutParams {
            jid: "a".into(),
            unique: Some(Unique::new("k")),
            ..PutParams::new("q", "K")
        })
        .await
        .expect("put");
    engine
        .put(PutParams {
            jid: "b".into(),
            ..PutParams::new("q", "K")
        })
        .await
        .expect("put");
    let conn = migrated_connection(dir.path().join(DB_FILE)).expect("connection");
    let e = conn
        .execute("UPDATE jobs SET unique_key = 'k' WHERE jid = 'b'", [])
        .expect_err("a second live holder");
    assert!(e.to_string().contains("UNIQUE"), "{e}");
    conn.execute(
        "UPDATE jobs SET unique_key = 'k', state = 'complete' WHERE jid = 'b'",
        [],
    )
    .expect("a complete job may carry the key");
    drop(conn);
    store.close().await.expect("close");
}
