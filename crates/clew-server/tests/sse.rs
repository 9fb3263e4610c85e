//! The live event stream `GET /v1/events`: live delivery, filters, gapless
//! resume with `Last-Event-ID`, bad requests, clean end on shutdown.

mod server_harness;

use std::time::Duration;

use reqwest::StatusCode;
use serde_json::{json, Value};
use server_harness::{assert_error, json_of, test_mode, SseMessage, SseReader, TestServer};

const NOW: f64 = 1_700_000_000.0;
const QUIET: Duration = Duration::from_millis(300);

fn put_args<'a>(queue: &'a str, jid: &'a str) -> [&'a str; 6] {
    ["w1", queue, jid, "Klass", "{}", "0"]
}

fn seq_of(m: &SseMessage) -> i64 {
    m.id.as_deref()
        .expect("event id")
        .parse()
        .expect("numeric id")
}

fn seqs(list: &[SseMessage]) -> Vec<i64> {
    list.iter().map(seq_of).collect()
}

fn log_seqs(list: &[Value]) -> Vec<i64> {
    list.iter()
        .map(|e| e["seq"].as_i64().expect("seq"))
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn events_put_by_another_client_arrive_live() {
    let server = TestServer::start(test_mode()).await;
    // An event from before the stream opened is not sent.
    server.ok(NOW, "put", &put_args("q", "old")).await;
    let mut stream = SseReader::open(&server.client, &server.url("/v1/events"), &[]).await;

    // Another client (its own connection pool) puts a job.
    let other = reqwest::Client::new();
    let resp = other
        .post(server.url("/v1/qless"))
        .json(&json!({"command": "put", "now": NOW, "args": put_args("q", "new")}))
        .send()
        .await
        .expect("put from another client");
    assert_eq!(resp.status(), StatusCode::OK);

    let m = stream.next().await;
    assert_eq!(m.event.as_deref(), Some("ql:log"));
    let data = m.json();
    assert_eq!(data["channel"], "ql:log");
    assert_eq!(data["type"], "put");
    assert_eq!(data["seq"].as_i64(), Some(seq_of(&m)));
    assert_eq!(data["at"].as_f64(), Some(NOW));
    let payload: Value =
        serde_json::from_str(data["message"].as_str().expect("message string")).expect("payload");
    assert_eq!(payload["jid"], "new");
    assert_eq!(payload["queue"], "q");
    // The same event the compatibility endpoint lists.
    let listed = server.events_after(seq_of(&m) - 1).await;
    assert_eq!(listed.len(), 1);
    assert_eq!(listed[0]["seq"], data["seq"]);
    assert_eq!(listed[0]["channel"], data["channel"]);
    assert_eq!(listed[0]["message"], data["message"]);
    assert!(
        stream.next_within(QUIET).await.is_none(),
        "only one event was committed after the stream opened"
    );
    server.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn after_replays_the_log_then_continues_live() {
    let server = TestServer::start(test_mode()).await;
    for jid in ["a", "b", "c"] {
        server.ok(NOW, "put", &put_args("q", jid)).await;
    }
    let log = server.events_after(0).await;
    assert_eq!(log.len(), 3);
    let first = log[0]["seq"].as_i64().expect("seq");
    let url = server.url(&format!("/v1/events?after={first}"));
    let mut stream = SseReader::open(&server.client, &url, &[]).await;
    let replayed = stream.take(2).await;
    assert_eq!(seqs(&replayed), log_seqs(&log[1..]));
    server.ok(NOW, "put", &put_args("q", "d")).await;
    let live = stream.next().await;
    let all = server.events_after(0).await;
    assert_eq!(seq_of(&live), all[3]["seq"].as_i64().expect("seq"));
    assert!(stream.next_within(QUIET).await.is_none());
    server.shutdown().await;
}

/// Runs a little scenario touching two queues, two workers and a tracked
/// job; returns the whole event log it produced.
async fn scenario(server: &TestServer) -> Vec<Value> {
    server.ok(NOW, "put", &put_args("qa", "j1")).await;
    server.ok(NOW, "put", &put_args("qb", "j2")).await;
    server.ok(NOW, "track", &["track", "j2"]).await;
    server.ok(NOW + 1.0, "pop", &["qa", "wa", "1"]).await;
    server.ok(NOW + 1.0, "pop", &["qb", "wb", "1"]).await;
    server
        .ok(NOW + 2.0, "complete", &["j2", "wb", "qb", "{}"])
        .await;
    server
        .ok(NOW + 2.0, "fail", &["j1", "wa", "boom", "it broke", "{}"])
        .await;
    // Re-putting a running job would lose its lock; j3 runs on wa first.
    server.ok(NOW + 3.0, "put", &put_args("qa", "j3")).await;
    server.ok(NOW + 3.0, "pop", &["qa", "wa", "1"]).await;
    server.ok(NOW + 4.0, "put", &put_args("qb", "j3")).await;
    server.events_after(0).await
}

fn payload(e: &Value) -> Option<Value> {
    serde_json::from_str::<Value>(e["message"].as_str()?)
        .ok()
        .filter(Value::is_object)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn filters_select_by_queue_jid_worker_and_type() {
    let server = TestServer::start(test_mode()).await;
    type Expect = fn(&Value) -> bool;
    let cases: Vec<(&str, Expect)> = vec![
        ("queue=qa", |e| {
            payload(e).is_some_and(|p| p["queue"] == "qa" || p["to"] == "qa")
        }),
        ("jid=j2", |e| {
            payload(e).map_or(e["message"] == "j2", |p| p["jid"] == "j2")
        }),
        ("worker=wa", |e| {
            e["channel"] == "ql:w:wa" || payload(e).is_some_and(|p| p["worker"] == "wa")
        }),
        ("type=failed", |e| {
            payload(e).map_or(e["channel"] == "ql:failed", |p| p["event"] == "failed")
        }),
        ("type=ql:track", |e| e["channel"] == "ql:track"),
        ("queue=qb&type=put", |e| {
            payload(e).is_some_and(|p| p["queue"] == "qb" && p["event"] == "put")
        }),
    ];
    let mut streams = Vec::new();
    for (query, _) in &cases {
        let url = server.url(&format!("/v1/events?{query}"));
        streams.push(SseReader::open(&server.client, &url, &[]).await);
    }
    let log = scenario(&server).await;
    // The scenario must exercise every filter.
    assert!(log.iter().any(|e| e["channel"] == "ql:w:wa"), "{log:?}");
    assert!(log.iter().any(|e| e["channel"] == "ql:track"), "{log:?}");
    assert!(
        log.iter().any(|e| e["channel"] == "ql:completed"),
        "{log:?}"
    );
    for ((query, expect), stream) in cases.iter().zip(streams.iter_mut()) {
        let wanted: Vec<i64> = log_seqs(
            &log.iter()
                .filter(|e| expect(e))
                .cloned()
                .collect::<Vec<_>>(),
        );
        assert!(
            !wanted.is_empty(),
            "{query}: the scenario has events to match"
        );
        assert!(
            wanted.len() < log.len(),
            "{query}: the filter drops something"
        );
        let got = stream.take(wanted.len()).await;
        assert_eq!(seqs(&got), wanted, "{query}");
        assert!(
            stream.next_within(QUIET).await.is_none(),
            "{query}: nothing else passes"
        );
    }
    server.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn reconnecting_with_last_event_id_resumes_without_gap_or_duplicate() {
    let server = TestServer::start(test_mode()).await;
    let mut stream = SseReader::open(&server.client, &server.url("/v1/events"), &[]).await;
    for i in 0..3 {
        server
            .ok(NOW, "put", &put_args("q", &format!("a{i}")))
            .await;
    }
    let before = stream.take(3).await;
    let last = before.last().expect("three events").id.clone().expect("id");
    drop(stream); // disconnect

    for i in 0..5 {
        server
            .ok(NOW, "put", &put_args("q", &format!("b{i}")))
            .await;
    }
    // after= is ignored when Last-Event-ID is sent (the header resumes).
    let url = server.url("/v1/events?after=0");
    let mut resumed = SseReader::open(&server.client, &url, &[("Last-Event-ID", &last)]).await;
    let missed = resumed.take(5).await;
    server.ok(NOW, "put", &put_args("q", "c0")).await;
    let live = resumed.next().await;
    assert!(resumed.next_within(QUIET).await.is_none(), "no duplicates");

    let mut got = seqs(&before);
    got.extend(seqs(&missed));
    got.push(seq_of(&live));
    let log = server.events_after(0).await;
    assert_eq!(got, log_seqs(&log), "every event exactly once, in order");
    let jids: Vec<String> = missed
        .iter()
        .map(|m| {
            payload(&m.json()).expect("payload")["jid"]
                .as_str()
                .expect("jid")
                .to_owned()
        })
        .collect();
    assert_eq!(jids, ["b0", "b1", "b2", "b3", "b4"]);
    server.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_long_backlog_is_sent_in_order_across_pages() {
    let server = TestServer::start(test_mode()).await;
    let engine = server.state.engine().clone();
    let puts = (0..2500).map(|i| {
        let engine = engine.clone();
        async move {
            let args: Vec<String> = ["w", "bulk", &format!("j{i}"), "K", "{}", "0"]
                .iter()
                .map(|s| (*s).to_owned())
                .collect();
            engine.qless("put", None, &args).await.expect("put");
        }
    });
    futures_util::future::join_all(puts).await;
    let mut stream = SseReader::open(&server.client, &server.url("/v1/events?after=0"), &[]).await;
    let got = stream.take(2500).await;
    let s = seqs(&got);
    assert!(s.windows(2).all(|w| w[0] < w[1]), "strictly increasing");
    let mut jids: Vec<String> = got
        .iter()
        .map(|m| {
            payload(&m.json()).expect("payload")["jid"]
                .as_str()
                .expect("jid")
                .to_owned()
        })
        .collect();
    jids.sort();
    jids.dedup();
    assert_eq!(jids.len(), 2500, "every put's event, once");
    assert!(stream.next_within(QUIET).await.is_none());
    server.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn graceful_shutdown_ends_open_streams() {
    let server = TestServer::start(test_mode()).await;
    let mut a = SseReader::open(&server.client, &server.url("/v1/events"), &[]).await;
    let mut b = SseReader::open(&server.client, &server.url("/v1/events?jid=x"), &[]).await;
    // Fails the test if the shutdown waits on the streams.
    server.shutdown().await;
    assert!(
        a.ends_within(Duration::from_secs(5)).await,
        "stream a ended"
    );
    assert!(
        b.ends_within(Duration::from_secs(5)).await,
        "stream b ended"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bad_stream_requests_are_clear_400s() {
    let server = TestServer::start(test_mode()).await;
    let get = |path: &str, last: Option<&str>| {
        let mut req = server.client.get(server.url(path));
        if let Some(l) = last {
            req = req.header("Last-Event-ID", l);
        }
        async move { json_of(req.send().await.expect("GET")).await }
    };
    assert_error(
        &get("/v1/events?after=abc", None).await,
        StatusCode::BAD_REQUEST,
        "after",
    );
    assert_error(
        &get("/v1/events?after=-3", None).await,
        StatusCode::BAD_REQUEST,
        "after: expected a non-negative integer",
    );
    assert_error(
        &get("/v1/events?color=red", None).await,
        StatusCode::BAD_REQUEST,
        "color",
    );
    assert_error(
        &get("/v1/events", Some("twelve")).await,
        StatusCode::BAD_REQUEST,
        "Last-Event-ID: expected a non-negative integer",
    );
    server.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn events_committed_elsewhere_are_found_and_the_default_start_is_the_log_end() {
    let server = TestServer::start(test_mode()).await;
    // Another engine on the same store (as another process would be): its
    // commits do not wake the server's streams, and the server has never
    // seen its events when the stream opens.
    let elsewhere = clew_core::Engine::new(server.state.engine().store().clone());
    let put = |jid: String| {
        let e = elsewhere.clone();
        async move {
            let args: Vec<String> = ["w", "q", jid.as_str(), "K", "{}", "0"]
                .iter()
                .map(|s| (*s).to_owned())
                .collect();
            e.qless("put", None, &args).await.expect("put elsewhere");
        }
    };
    for i in 0..37 {
        put(format!("old{i}")).await;
    }
    let mut stream = SseReader::open(&server.client, &server.url("/v1/events"), &[]).await;
    // Each put logs two events: qless's `put` and the lifecycle `enqueued`.
    assert!(
        stream.comments[0].ends_with(" after 74"),
        "starts at the log's end: {:?}",
        stream.comments
    );
    put("new".to_owned()).await;
    // Found by the stream's periodic read of the log.
    let m = stream.next().await;
    assert_eq!(seq_of(&m), 75);
    assert_eq!(payload(&m.json()).expect("payload")["jid"], "new");
    assert!(stream.next_within(QUIET).await.is_none());
    server.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn lifecycle_true_adds_the_lifecycle_events_such_as_an_untracked_pop() {
    let server = TestServer::start(test_mode()).await;
    server.ok(NOW, "put", &put_args("q", "j1")).await;
    let mut plain = SseReader::open(&server.client, &server.url("/v1/events"), &[]).await;
    let url = server.url("/v1/events?lifecycle=true&queue=q");
    let mut with = SseReader::open(&server.client, &url, &[]).await;
    server.ok(NOW + 2.0, "pop", &["q", "w1", "1"]).await;
    // An untracked pop writes no qless event: the plain stream stays quiet.
    assert!(plain.next_within(QUIET).await.is_none());
    let m = with.next().await;
    assert_eq!(m.event.as_deref(), Some("clew:lifecycle"));
    let data = m.json();
    assert_eq!(data["type"], "dequeued");
    let event: Value =
        serde_json::from_str(data["message"].as_str().expect("message")).expect("event JSON");
    assert_eq!(event["jid"], "j1");
    assert_eq!(event["time_in_queue"].as_f64(), Some(2.0));
    server.shutdown().await;
}
