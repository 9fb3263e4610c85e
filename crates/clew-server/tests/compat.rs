//! The qless compatibility endpoint: `POST /v1/qless` (result shapes,
//! errors with qless-core's wording, `now` in and out of test mode, loose
//! argument types, malformed bodies), `GET /v1/qless/events` and
//! `POST /v1/qless/flush`.

mod server_harness;

use std::time::{SystemTime, UNIX_EPOCH};

use reqwest::StatusCode;
use serde_json::{json, Value};
use server_harness::{assert_error, json_of, production, test_mode, TestServer};

const NOW: f64 = 1_700_000_000.0;

fn put_args<'a>(queue: &'a str, jid: &'a str) -> [&'a str; 6] {
    ["w1", queue, jid, "Klass", "{}", "0"]
}

fn wall_clock() -> f64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .expect("clock after 1970")
        .as_secs_f64()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn results_are_natural_json_of_each_shape() {
    let server = TestServer::start(test_mode()).await;

    // A bare string: put returns the jid.
    let jid = server.ok(NOW, "put", &put_args("q", "j1")).await;
    assert_eq!(jid, json!("j1"));

    // Numbers.
    assert_eq!(server.ok(NOW, "length", &["q"]).await, json!(1));
    assert_eq!(server.ok(NOW, "priority", &["j1", "7"]).await, json!(7));

    // A document, with empty lists as [] and absent values as null.
    let job = server.ok(NOW, "get", &["j1"]).await;
    assert!(job.is_object(), "{job}");
    assert_eq!(job["jid"], "j1");
    assert_eq!(job["queue"], "q");
    assert_eq!(job["state"], "waiting");
    assert_eq!(job["priority"], 7);
    assert_eq!(job["data"], "{}");
    assert_eq!(job["tags"], json!([]));
    assert_eq!(job["dependents"], json!([]));
    assert_eq!(job["dependencies"], json!([]));
    assert_eq!(job["spawned_from_jid"], Value::Null);
    let counts = server.ok(NOW, "queues", &["q"]).await;
    assert_eq!(counts["name"], "q");
    assert_eq!(counts["waiting"], 1);
    let config = server.ok(NOW, "config.get", &[]).await;
    assert!(config.is_object(), "{config}");
    assert!(config.get("heartbeat").is_some(), "{config}");
    let stats = server.ok(NOW, "stats", &["q", &NOW.to_string()]).await;
    assert!(stats["wait"].is_object(), "{stats}");
    assert!(stats["run"]["histogram"].is_array(), "{stats}");

    // Arrays.
    assert_eq!(server.ok(NOW, "jobs", &["complete"]).await, json!([]));
    let all = server.ok(NOW, "queues", &[]).await;
    assert_eq!(all.as_array().map(Vec::len), Some(1), "{all}");
    let popped = server.ok(NOW + 1.0, "pop", &["q", "w1", "5"]).await;
    let popped = popped.as_array().expect("pop returns an array");
    assert_eq!(popped.len(), 1);
    assert_eq!(popped[0]["jid"], "j1");
    assert_eq!(popped[0]["worker"], "w1");

    // A number again: heartbeat returns the new expiry (whole seconds).
    let expires = server.ok(NOW + 2.0, "heartbeat", &["j1", "w1"]).await;
    assert_eq!(expires.as_f64(), Some(NOW + 2.0 + 60.0), "{expires}");

    // The new state as a bare string.
    let state = server
        .ok(NOW + 3.0, "complete", &["j1", "w1", "q", "{}"])
        .await;
    assert_eq!(state, json!("complete"));
    assert_eq!(server.ok(NOW, "jobs", &["complete"]).await, json!(["j1"]));

    server.ok(NOW, "put", &put_args("q", "j2")).await;
    assert_eq!(
        server.ok(NOW, "cancel", &["j2", "nope"]).await,
        json!(["j2", "nope"])
    );

    // null: commands that return nothing, and a missing job.
    assert_eq!(server.ok(NOW, "pause", &["q"]).await, Value::Null);
    assert_eq!(server.ok(NOW, "get", &["j2"]).await, Value::Null);
    assert_eq!(server.ok(NOW, "queues", &["q"]).await["paused"], true);
    server.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn errors_carry_qless_wording_and_status_and_change_nothing() {
    let server = TestServer::start(test_mode()).await;
    server.ok(NOW, "put", &put_args("q", "j1")).await;
    server.ok(NOW, "pop", &["q", "w1", "1"]).await;
    let before_job = server.ok(NOW, "get", &["j1"]).await;
    let before_events = server.events_after(0).await;

    let got = server.qless_at(NOW, "put", &["w1", "q"]).await;
    assert_error(&got, StatusCode::BAD_REQUEST, r#"Put(): Arg "jid" missing"#);
    let got = server
        .qless_at(NOW, "put", &["w1", "q", "j9", "K", "{bad", "0"])
        .await;
    assert_error(
        &got,
        StatusCode::BAD_REQUEST,
        r#"Put(): Arg "data" not JSON"#,
    );
    let got = server
        .qless_at(
            NOW,
            "put",
            &["w1", "q", "j9", "K", "{}", "0", "priority", "abc"],
        )
        .await;
    assert_error(
        &got,
        StatusCode::BAD_REQUEST,
        r#"Put(): Arg "priority" not a number: abc"#,
    );
    let got = server.qless_at(NOW, "heartbeat", &["nope", "w1"]).await;
    assert_error(
        &got,
        StatusCode::NOT_FOUND,
        "Heartbeat(): Job nope does not exist",
    );
    let got = server
        .qless_at(NOW, "complete", &["j1", "w2", "q", "{}"])
        .await;
    assert_error(
        &got,
        StatusCode::CONFLICT,
        "Complete(): Job j1 has been handed out to another worker: w1",
    );
    let got = server.qless_at(NOW, "frobnicate", &[]).await;
    assert_error(&got, StatusCode::BAD_REQUEST, "Unknown command frobnicate");

    assert_eq!(server.ok(NOW, "get", &["j1"]).await, before_job);
    assert_eq!(server.ok(NOW, "get", &["j9"]).await, Value::Null);
    assert_eq!(server.events_after(0).await, before_events);
    server.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn now_is_honoured_in_test_mode() {
    let server = TestServer::start(test_mode()).await;
    server.ok(1000.0, "put", &put_args("q", "j1")).await;
    let job = server.ok(1000.0, "get", &["j1"]).await;
    assert_eq!(job["history"][0]["when"], 1000, "{job}");
    // `now` as a numeric string is accepted too.
    let (status, body) = server
        .post_qless(json!({"command": "put", "now": "2000", "args": put_args("q", "j2")}))
        .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    let job = server.ok(0.0, "get", &["j2"]).await;
    assert_eq!(job["history"][0]["when"], 2000, "{job}");
    // A `now` that is not a number is refused.
    let got = server
        .post_qless(json!({"command": "put", "now": "soon", "args": put_args("q", "j3")}))
        .await;
    assert_error(&got, StatusCode::BAD_REQUEST, "now: expected a number");
    assert_eq!(server.ok(0.0, "get", &["j3"]).await, Value::Null);
    server.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn now_is_ignored_outside_test_mode() {
    let server = TestServer::start(production()).await;
    let before = wall_clock().floor();
    server.ok(1000.0, "put", &put_args("q", "j1")).await;
    let after = wall_clock().ceil();
    let job = server.ok(1000.0, "get", &["j1"]).await;
    let when = job["history"][0]["when"].as_f64().expect("when");
    assert!(
        (before..=after).contains(&when),
        "put ran at the server's clock: {when} not in {before}..={after}"
    );
    // Even a malformed `now` is ignored, not refused.
    let (status, body) = server
        .post_qless(json!({"command": "length", "now": "soon", "args": ["q"]}))
        .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(body["result"], 1);
    server.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn arguments_given_as_numbers_or_documents_are_accepted() {
    let server = TestServer::start(test_mode()).await;
    let (status, body) = server
        .post_qless(json!({
            "command": "put",
            "now": NOW,
            "args": ["w1", "q", "j1", "Klass", {"n": 1, "list": [1, 2]}, 0, "priority", 5, "retries", 2]
        }))
        .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(body["result"], "j1");
    let job = server.ok(NOW, "get", &["j1"]).await;
    let data: Value = serde_json::from_str(job["data"].as_str().expect("data")).expect("JSON data");
    assert_eq!(data, json!({"n": 1, "list": [1, 2]}));
    assert_eq!(job["priority"], 5);
    assert_eq!(job["retries"], 2);
    let (status, body) = server
        .post_qless(json!({"command": "pop", "now": NOW, "args": ["q", "w1", 3]}))
        .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(body["result"][0]["jid"], "j1");
    server.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn malformed_bodies_are_400_json_and_change_nothing() {
    let server = TestServer::start(test_mode()).await;
    server.ok(NOW, "put", &put_args("q", "j1")).await;
    let before = server.events_after(0).await;
    let raw = |body: &'static str| {
        let req = server
            .client
            .post(server.url("/v1/qless"))
            .header("content-type", "application/json")
            .body(body);
        async move { json_of(req.send().await.expect("POST")).await }
    };
    for (body, wording) in [
        ("{not json", "request body"),
        ("", "request body"),
        (r#"{"args": []}"#, "command"),
        (r#"{"command": 5}"#, "command"),
        (r#"{"command": "put", "args": "w1 q j2 K {} 0"}"#, "args"),
        (
            r#"{"command": "put", "args": [], "colour": "red"}"#,
            "colour",
        ),
        (r#"["put"]"#, "request body"),
    ] {
        assert_error(&raw(body).await, StatusCode::BAD_REQUEST, wording);
    }
    assert_eq!(server.events_after(0).await, before);
    assert_eq!(server.ok(NOW, "length", &["q"]).await, 1);
    server.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn events_are_listed_in_order_as_soon_as_their_command_answers() {
    let server = TestServer::start(test_mode()).await;
    assert_eq!(server.events_after(0).await, Vec::<Value>::new());
    let mut last = 0;
    for i in 0..20 {
        let jid = format!("j{i}");
        server.ok(NOW, "put", &put_args("q", &jid)).await;
        // Read once, right after the answer: no waiting allowed.
        let new = server.events_after(last).await;
        assert_eq!(new.len(), 1, "put {jid}: {new:?}");
        let e = &new[0];
        let keys: Vec<&str> = e
            .as_object()
            .expect("event object")
            .keys()
            .map(String::as_str)
            .collect();
        assert_eq!(keys, ["seq", "channel", "message"]);
        let seq = e["seq"].as_i64().expect("seq");
        assert!(seq > last);
        assert_eq!(e["channel"], "ql:log");
        let payload: Value =
            serde_json::from_str(e["message"].as_str().expect("message")).expect("JSON payload");
        assert_eq!(payload, json!({"jid": jid, "event": "put", "queue": "q"}));
        last = seq;
    }
    let all = server.events_after(0).await;
    assert_eq!(all.len(), 20);
    let seqs: Vec<i64> = all
        .iter()
        .map(|e| e["seq"].as_i64().expect("seq"))
        .collect();
    assert!(seqs.windows(2).all(|w| w[0] < w[1]), "{seqs:?}");
    let tail = server.events_after(seqs[14]).await;
    assert_eq!(tail, all[15..].to_vec());

    // Worker and tracking channels.
    server.ok(NOW, "track", &["track", "j0"]).await;
    server.ok(NOW, "pop", &["q", "w1", "1"]).await;
    let more = server.events_after(last).await;
    let channels: Vec<&str> = more
        .iter()
        .map(|e| e["channel"].as_str().expect("channel"))
        .collect();
    assert_eq!(channels, ["ql:track", "ql:popped"], "{more:?}");
    assert_eq!(more[0]["message"], "j0");

    let resp = server
        .client
        .get(server.url("/v1/qless/events?after=soon"))
        .send()
        .await
        .expect("GET");
    assert_error(&json_of(resp).await, StatusCode::BAD_REQUEST, "after");
    server.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn flush_wipes_everything_in_test_mode() {
    let server = TestServer::start(test_mode()).await;
    server.ok(NOW, "put", &put_args("q", "j1")).await;
    server.ok(NOW, "config.set", &["heartbeat", "30"]).await;
    let last = server.events_after(0).await.last().expect("events")["seq"]
        .as_i64()
        .expect("seq");
    let resp = server
        .client
        .post(server.url("/v1/qless/flush"))
        .send()
        .await
        .expect("flush");
    let (status, body) = json_of(resp).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(body, json!({"result": null}));
    assert_eq!(server.ok(NOW, "get", &["j1"]).await, Value::Null);
    assert_eq!(server.ok(NOW, "queues", &[]).await, json!([]));
    assert_eq!(server.ok(NOW, "config.get", &["heartbeat"]).await, 60);
    assert_eq!(server.events_after(0).await, Vec::<Value>::new());
    // Event numbers keep increasing, so readers' cursors stay valid.
    server.ok(NOW, "put", &put_args("q", "j2")).await;
    let after = server.events_after(last).await;
    assert_eq!(after.len(), 1);
    assert!(after[0]["seq"].as_i64().expect("seq") > last);
    server.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn flush_is_refused_outside_test_mode() {
    let server = TestServer::start(production()).await;
    server.ok(NOW, "put", &put_args("q", "j1")).await;
    let resp = server
        .client
        .post(server.url("/v1/qless/flush"))
        .send()
        .await
        .expect("flush");
    assert_error(&json_of(resp).await, StatusCode::FORBIDDEN, "test mode");
    assert_eq!(server.ok(NOW, "get", &["j1"]).await["jid"], "j1");
    assert_eq!(server.events_after(0).await.len(), 1);
    server.shutdown().await;
}
