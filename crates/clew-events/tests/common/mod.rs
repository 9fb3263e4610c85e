//! Shared test helpers.
#![allow(dead_code)]

use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use tokio::io::AsyncBufReadExt;
use tokio::net::{TcpListener, TcpSocket};

use clew_core::{LifecycleError, LifecycleEvent, LifecycleKind, Origin, Timestamp};
use serde_json::{json, Map, Value};

/// A lifecycle event of job `jid` with recognisable fields.
pub fn event(kind: LifecycleKind, jid: &str) -> LifecycleEvent {
    let mut metadata = Map::new();
    metadata.insert("customer_id".into(), json!(42));
    metadata.insert("_hostname".into(), json!("spoofed")); // system key: ignored
    metadata.insert("pdf_generation_strategy".into(), json!("fast lane"));
    LifecycleEvent {
        seq: 0,
        kind,
        at: Timestamp::from_secs_f64(1_370_379_598.75).unwrap(),
        jid: jid.to_owned(),
        queue: "test_queue".into(),
        klass: "TestWorker".into(),
        args: json!([1, 2]),
        metadata,
        origin: Origin {
            hostname: "Lances-MacBook-Air.local".into(),
            process: 30731,
        },
        time_in_queue: (kind == LifecycleKind::Dequeued).then_some(1.5),
        time_to_perform: matches!(kind, LifecycleKind::PerformFinished | LifecycleKind::Failed)
            .then_some(0.25),
        error: (kind == LifecycleKind::Failed).then(|| LifecycleError {
            class: "RuntimeError".into(),
            message: "boom \"quoted\"".into(),
            backtrace: Some("job.rb:1:in `perform'\nworker.rb:2:in `run'".into()),
        }),
    }
}

/// A numbered event: jid `j{n}`, args `[n]`.
pub fn numbered(n: i64) -> LifecycleEvent {
    let mut e = event(LifecycleKind::Enqueued, &format!("j{n}"));
    e.args = Value::from(vec![n]);
    e
}

/// Polls `cond` every 10 ms until it holds or 10 s pass.
pub async fn wait_for(what: &str, mut cond: impl FnMut() -> bool) {
    let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
    while !cond() {
        assert!(
            tokio::time::Instant::now() < deadline,
            "timed out waiting for {what}"
        );
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
}

/// A line receiver on `addr` that records the `args[0]` of each JSON line;
/// with `stop_after`, it closes its connection and listener after that many.
pub async fn receiver(listener: TcpListener, got: Arc<Mutex<Vec<i64>>>, stop_after: Option<usize>) {
    let mut count = 0;
    loop {
        let Ok((stream, _)) = listener.accept().await else {
            return;
        };
        let mut lines = tokio::io::BufReader::new(stream).lines();
        while let Ok(Some(line)) = lines.next_line().await {
            let v: Value = serde_json::from_str(&line).expect("JSON line");
            got.lock().unwrap().push(v["args"][0].as_i64().unwrap());
            count += 1;
            if stop_after == Some(count) {
                return; // drops the connection (unread data and all) and the listener
            }
        }
    }
}

pub fn rebind(addr: SocketAddr) -> TcpListener {
    let socket = TcpSocket::new_v4().unwrap();
    socket.set_reuseaddr(true).unwrap();
    socket.bind(addr).unwrap();
    socket.listen(128).unwrap()
}

pub fn first_occurrences(seen: &[i64]) -> Vec<i64> {
    let mut out: Vec<i64> = Vec::new();
    for &n in seen {
        if !out.contains(&n) {
            out.push(n);
        }
    }
    out
}
