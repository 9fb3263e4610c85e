//! `clew server --publish`: lifecycle events reach sinks in resque-clues'
//! JSON shape, and survive a sink outage and a server restart (each sink's
//! cursor is durable; delivery is at-least-once and in order).

use std::collections::HashSet;
use std::process::Command;

use serde_json::{json, Value};
use tokio::io::AsyncBufReadExt;
use tokio::net::TcpListener;

mod common;

use common::{put_numbered, read_json_lines, wait_until, Server};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn lifecycle_events_reach_a_file_in_resque_clues_shape() {
    let dir = tempfile::tempdir().expect("tempdir");
    let out = dir.path().join("clues.log");
    let spec = format!("file:{}", out.display());
    let server = Server::start(&dir.path().join("c.db"), &["--publish", &spec]);
    server
        .qless(
            "put",
            &[
                "me",
                "pdfs",
                "j1",
                "PdfJob",
                r#"{"doc":7}"#,
                "0",
                "metadata",
                r#"{"customer":"acme"}"#,
            ],
        )
        .await;
    server.qless("pop", &["pdfs", "w1", "1"]).await;
    server
        .qless(
            "complete",
            &[
                "j1",
                "w1",
                "pdfs",
                r#"{"doc":7}"#,
                "metadata",
                r#"{"pdf_generation_strategy":"prince"}"#,
            ],
        )
        .await;
    let read = || read_json_lines(&out);
    wait_until("four events in the file", || read().len() >= 4).await;
    server.stop();
    let events = read();
    let types: Vec<&str> = events
        .iter()
        .map(|e| e["event_type"].as_str().unwrap_or(""))
        .collect();
    assert_eq!(
        types,
        vec![
            "enqueued",
            "dequeued",
            "perform_started",
            "perform_finished"
        ]
    );
    let hash = events[0]["metadata"]["_event_hash"].clone();
    for e in &events {
        // resque-clues' fields, exactly.
        let mut keys: Vec<&str> = e
            .as_object()
            .expect("object")
            .keys()
            .map(String::as_str)
            .collect();
        keys.sort_unstable();
        assert_eq!(
            keys,
            vec![
                "args",
                "event_type",
                "metadata",
                "queue",
                "timestamp",
                "worker_class"
            ],
            "{e}"
        );
        assert_eq!(e["queue"], "pdfs");
        assert_eq!(e["worker_class"], "PdfJob");
        assert_eq!(e["args"], json!({"doc": 7}));
        assert_eq!(
            e["metadata"]["_event_hash"], hash,
            "one hash groups the job's events"
        );
        assert!(e["metadata"]["_hostname"]
            .as_str()
            .is_some_and(|h| !h.is_empty()));
        assert!(e["metadata"]["_process"].as_u64().is_some());
        assert_eq!(e["metadata"]["customer"], "acme");
        let ts = e["timestamp"].as_str().expect("timestamp");
        assert!(ts.ends_with('Z') && ts.len() == 20, "ISO-8601 UTC: {ts}");
    }
    assert!(
        events[1]["metadata"]["time_in_queue"].as_f64().is_some(),
        "{}",
        events[1]
    );
    assert!(
        events[3]["metadata"]["time_to_perform"].as_f64().is_some(),
        "{}",
        events[3]
    );
    assert_eq!(events[3]["metadata"]["pdf_generation_strategy"], "prince");
}

/// Reads lines from every connection accepted on `listener` into `lines`
/// until `stop` fires.
fn receiver(
    listener: TcpListener,
    lines: std::sync::Arc<std::sync::Mutex<Vec<Value>>>,
) -> tokio::task::JoinHandle<()> {
    tokio::spawn(async move {
        loop {
            let Ok((sock, _)) = listener.accept().await else {
                return;
            };
            let lines = lines.clone();
            tokio::spawn(async move {
                let mut r = tokio::io::BufReader::new(sock).lines();
                while let Ok(Some(l)) = r.next_line().await {
                    if let Ok(v) = serde_json::from_str::<Value>(&l) {
                        if let Ok(mut g) = lines.lock() {
                            g.push(v);
                        }
                    }
                }
            });
        }
    })
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_tcp_sink_outage_and_a_server_restart_lose_no_event() {
    let dir = tempfile::tempdir().expect("tempdir");
    let db = dir.path().join("t.db");
    let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
    let addr = listener.local_addr().expect("addr");
    let spec = format!("tcp:{addr}");
    let lines = std::sync::Arc::new(std::sync::Mutex::new(Vec::<Value>::new()));
    let rx = receiver(listener, lines.clone());
    let enqueued = |lines: &std::sync::Arc<std::sync::Mutex<Vec<Value>>>| -> Vec<String> {
        lines
            .lock()
            .map(|g| {
                g.iter()
                    .filter(|e| e["event_type"] == "enqueued")
                    .map(|e| e["args"]["n"].to_string())
                    .collect()
            })
            .unwrap_or_default()
    };

    let server = Server::start(&db, &["--publish", &spec]);
    put_numbered(&server, 0..5).await;
    wait_until("the first five events", || enqueued(&lines).len() >= 5).await;

    // The receiver goes away; more jobs are put while it is down; then the
    // server stops too.
    rx.abort();
    let _ = rx.await;
    put_numbered(&server, 5..10).await;
    server.stop();

    // The receiver comes back on the same port, then the server.
    let listener = TcpListener::bind(addr).await.expect("rebind");
    let _rx = receiver(listener, lines.clone());
    let server = Server::start(&db, &["--publish", &spec]);
    wait_until("all ten events", || {
        enqueued(&lines).into_iter().collect::<HashSet<_>>().len() >= 10
    })
    .await;
    server.stop();

    // Every event at least once, and first arrivals in put order.
    let got = enqueued(&lines);
    let mut first = Vec::new();
    for n in got {
        if !first.contains(&n) {
            first.push(n);
        }
    }
    assert_eq!(first, (0..10).map(|n| n.to_string()).collect::<Vec<_>>());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn static_server_metadata_is_added_to_every_put() {
    let dir = tempfile::tempdir().expect("tempdir");
    let out = dir.path().join("m.log");
    let spec = format!("file:{}", out.display());
    let server = Server::start(
        &dir.path().join("m.db"),
        &[
            "--publish",
            &spec,
            "--metadata",
            "env=prod",
            "--metadata",
            "shard=3",
        ],
    );
    server
        .qless(
            "put",
            &[
                "me",
                "q",
                "j",
                "K",
                "{}",
                "0",
                "metadata",
                r#"{"env":"given"}"#,
            ],
        )
        .await;
    let read = || read_json_lines(&out);
    wait_until("the enqueued event", || !read().is_empty()).await;
    server.stop();
    let meta = &read()[0]["metadata"];
    // The put's own value wins over the server's default.
    assert_eq!(meta["env"], "given");
    assert_eq!(meta["shard"], 3);

    let refused = Command::new(env!("CARGO_BIN_EXE_clew"))
        .args([
            "--db",
            &format!("sqlite:{}", dir.path().join("x.db").display()),
        ])
        .args([
            "server",
            "--listen",
            "127.0.0.1:0",
            "--metadata",
            "_hostname=spoof",
        ])
        .output()
        .expect("run");
    assert_eq!(refused.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&refused.stderr).contains("--metadata"));
}

/// The resque-clues shape for failure, retry and a stalled job, field by
/// field (`metadata` holds the step figures and the error, as resque-clues
/// puts them).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn failure_retry_and_stall_events_have_the_resque_clues_shape() {
    let dir = tempfile::tempdir().expect("tempdir");
    let out = dir.path().join("f.log");
    let spec = format!("file:{}", out.display());
    let server = Server::start(
        &dir.path().join("f.db"),
        &["--publish", &spec, "--test-mode"],
    );
    let at = |now: f64, command: &str, args: &[&str]| {
        let body = json!({"command": command, "now": now, "args": args});
        let url = format!("{}/v1/qless", server.url);
        let command = command.to_owned();
        async move {
            let v: Value = reqwest::Client::new()
                .post(url)
                .json(&body)
                .send()
                .await
                .expect("request")
                .json()
                .await
                .expect("json");
            assert!(v.get("error").is_none(), "{command}: {v}");
            v["result"].clone()
        }
    };
    at(0.0, "config.set", &["grace-period", "0"]).await;
    // failure
    at(100.0, "put", &["me", "q", "bad", "Job", r#"{"n":1}"#, "0"]).await;
    at(101.0, "pop", &["q", "w1", "1"]).await;
    at(
        103.5,
        "fail",
        &["bad", "w1", "Job:IOError", "disk full\nat a.rb:1"],
    )
    .await;
    // retry, then success
    at(
        200.0,
        "put",
        &["me", "q", "again", "Job", r#"{"n":2}"#, "0"],
    )
    .await;
    at(201.0, "pop", &["q", "w1", "1"]).await;
    at(
        202.0,
        "retry",
        &["again", "q", "w1", "0", "Job:Timeout", "slow"],
    )
    .await;
    // stall: the lock expires, the job is handed to w2 (grace 0) and finishes
    at(300.0, "pop", &["q", "w1", "1"]).await;
    at(361.0, "pop", &["q", "w2", "1"]).await;
    at(365.0, "complete", &["again", "w2", "q", "{}"]).await;
    let read = || read_json_lines(&out);
    wait_until("eleven events", || read().len() >= 11).await;
    server.stop();
    let ev = read();
    let steps: Vec<(String, String)> = ev
        .iter()
        .map(|e| {
            (
                e["args"]["n"].to_string(),
                e["event_type"].as_str().unwrap_or("").to_owned(),
            )
        })
        .collect();
    let expect = |n: &str, t: &str| (n.to_owned(), t.to_owned());
    assert_eq!(
        steps,
        vec![
            expect("1", "enqueued"),
            expect("1", "dequeued"),
            expect("1", "perform_started"),
            expect("1", "failed"),
            expect("2", "enqueued"),
            expect("2", "dequeued"),
            expect("2", "perform_started"),
            expect("2", "failed"),
            expect("2", "dequeued"),
            expect("2", "perform_started"),
            // stall: handed to w2 after the lock expired
            expect("2", "dequeued"),
            expect("2", "perform_started"),
            expect("null", "perform_finished"),
        ][..ev.len().min(13)]
    );
    let failed = &ev[3];
    assert_eq!(failed["timestamp"], "1970-01-01T00:01:43Z");
    assert_eq!(failed["queue"], "q");
    assert_eq!(failed["worker_class"], "Job");
    let m = &failed["metadata"];
    assert_eq!(m["time_to_perform"], json!(2.5));
    assert_eq!(m["exception"], "Job:IOError");
    assert_eq!(m["message"], "disk full");
    assert_eq!(m["backtrace"], json!(["at a.rb:1"]));
    let retried = &ev[7]["metadata"];
    assert_eq!(
        (retried["exception"].as_str(), retried["message"].as_str()),
        (Some("Job:Timeout"), Some("slow"))
    );
    // qless measures the wait after a retry from the previous pop (201).
    assert_eq!(ev[8]["metadata"]["time_in_queue"], json!(99.0));
    assert_eq!(ev[10]["metadata"]["time_in_queue"], json!(61.0));
    let hash = &ev[4]["metadata"]["_event_hash"];
    assert!(ev[4..]
        .iter()
        .all(|e| &e["metadata"]["_event_hash"] == hash));
    assert_ne!(&ev[0]["metadata"]["_event_hash"], hash);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn header_derived_metadata_is_added_to_puts() {
    let dir = tempfile::tempdir().expect("tempdir");
    let out = dir.path().join("h.log");
    let spec = format!("file:{}", out.display());
    let server = Server::start(
        &dir.path().join("h.db"),
        &[
            "--publish",
            &spec,
            "--metadata-header",
            "X-Customer-Id=customer",
        ],
    );
    let http = reqwest::Client::new();
    // The qless endpoint.
    let resp = http
        .post(format!("{}/v1/qless", server.url))
        .header("x-customer-id", "acme")
        .json(&json!({"command": "put", "args": ["me", "q", "a", "K", "{}", "0"]}))
        .send()
        .await
        .expect("put a");
    assert!(resp.status().is_success());
    // The resource API, where the put's own metadata wins.
    let resp = http
        .post(format!("{}/v1/queues/q/jobs", server.url))
        .header("x-customer-id", "acme")
        .json(&json!({"jid": "b", "klass": "K", "metadata": {"customer": "given", "plan": "pro"}}))
        .send()
        .await
        .expect("put b");
    assert!(
        resp.status().is_success(),
        "{}",
        resp.text().await.unwrap_or_default()
    );
    // No header: nothing added.
    server.qless("put", &["me", "q", "c", "K", "{}", "0"]).await;
    wait_until("three events", || read_json_lines(&out).len() >= 3).await;
    server.stop();
    let ev = read_json_lines(&out);
    assert_eq!(ev[0]["metadata"]["customer"], "acme");
    assert_eq!(ev[1]["metadata"]["customer"], "given");
    assert_eq!(ev[1]["metadata"]["plan"], "pro");
    assert!(ev[2]["metadata"].get("customer").is_none(), "{}", ev[2]);

    let refused = Command::new(env!("CARGO_BIN_EXE_clew"))
        .args([
            "--db",
            &format!("sqlite:{}", dir.path().join("y.db").display()),
        ])
        .args([
            "server",
            "--listen",
            "127.0.0.1:0",
            "--metadata-header",
            "X-Bad",
        ])
        .output()
        .expect("run");
    assert_eq!(refused.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&refused.stderr).contains("--metadata-header"));
}
