//! A store file written by a process killed with SIGKILL mid-write opens
//! cleanly and holds every job whose put was acknowledged.

use std::io::{BufRead, BufReader};
use std::process::{Command, Stdio};
use std::sync::Arc;

use clew_core::Engine;
use clew_sqlite::{SqliteOptions, SqliteStore};

#[test]
fn sigkilled_writer_leaves_a_store_that_opens_with_every_acknowledged_job() {
    let dir = tempfile::tempdir().expect("temp dir");
    let db = dir.path().join("crash.db");
    let mut acked: Vec<String> = Vec::new();
    for round in 0..3 {
        let mut child = Command::new(env!("CARGO_BIN_EXE_clew"))
            .args([
                "--db",
                &format!("sqlite:{}", db.display()),
                "put-loop",
                "crash",
            ])
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .expect("spawn clew put-loop");
        let stdout = child.stdout.take().expect("piped stdout");
        let mut lines = BufReader::new(stdout).lines();
        let target = acked.len() + 300;
        while acked.len() < target {
            let line = lines
                .next()
                .unwrap_or_else(|| panic!("round {round}: put-loop ended early"))
                .expect("utf-8 line");
            acked.push(line);
        }
        // SIGKILL while the writer is still busy committing more puts.
        child.kill().expect("kill put-loop");
        child.wait().expect("reap put-loop");
    }

    let store = SqliteStore::open(&db, SqliteOptions::default()).expect("reopen after crash");
    let engine = Engine::new(Arc::new(store));
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("runtime");
    rt.block_on(async {
        let mut missing = Vec::new();
        for jid in &acked {
            match engine.get(jid).await.expect("get") {
                Some(job) => assert_eq!(job.record.queue, "crash", "{jid}"),
                None => missing.push(jid.clone()),
            }
        }
        assert!(
            missing.is_empty(),
            "{} acknowledged jobs lost: {missing:?}",
            missing.len()
        );
        let counts = engine
            .qless("queues", None, &["crash".to_owned()])
            .await
            .expect("queues");
        let waiting = counts["waiting"].as_i64().expect("waiting count");
        assert!(
            waiting >= acked.len() as i64,
            "waiting {waiting} < acked {}",
            acked.len()
        );
        // The store still takes writes.
        let v = engine
            .qless(
                "put",
                None,
                &["w", "crash", "after", "K", "{}", "0"].map(String::from),
            )
            .await
            .expect("put after reopen");
        assert_eq!(v, serde_json::json!("after"));
        engine.close().await.expect("close");
    });
}
