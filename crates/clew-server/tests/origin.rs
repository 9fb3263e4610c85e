//! Lifecycle events name the caller's host and process: `X-Clew-Origin:
//! HOST:PID` on the qless endpoint and the resource API (the Rust client
//! sends it), the server's own otherwise; a malformed header is a 400.

mod server_harness;

use reqwest::StatusCode;
use serde_json::json;
use server_harness::{assert_error, json_of, test_mode, TestServer};

fn lifecycle(server: &TestServer) -> Vec<clew_core::LifecycleEvent> {
    let store = server.state.engine().store().clone();
    let events = tokio::task::block_in_place(|| {
        tokio::runtime::Handle::current().block_on(store.events_after(0, 10_000))
    })
    .expect("events");
    events
        .iter()
        .filter_map(clew_core::Event::lifecycle)
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn lifecycle_events_name_the_callers_origin() {
    let server = TestServer::start(test_mode()).await;
    // No header: the server's own host and process.
    server
        .ok(0.0, "put", &["w", "q", "j", "K", "{}", "0"])
        .await;
    let put = lifecycle(&server).pop().expect("enqueued");
    assert_eq!(put.origin.process, std::process::id());

    // The qless endpoint with a header.
    let resp = server
        .client
        .post(server.url("/v1/qless"))
        .header("x-clew-origin", "worker-7.example:4242")
        .json(&json!({"command": "pop", "now": 1, "args": ["q", "w", "1"]}))
        .send()
        .await
        .expect("pop");
    assert_eq!(resp.status(), StatusCode::OK);
    let started = lifecycle(&server).pop().expect("perform_started");
    assert_eq!(started.kind, clew_core::LifecycleKind::PerformStarted);
    assert_eq!(started.origin.hostname, "worker-7.example");
    assert_eq!(started.origin.process, 4242);

    // The resource API with a header.
    let resp = server
        .client
        .post(server.url("/v1/jobs/j/complete"))
        .header("x-clew-origin", "worker-8:99")
        .json(&json!({"worker": "w"}))
        .send()
        .await
        .expect("complete");
    assert_eq!(resp.status(), StatusCode::OK, "{:?}", json_of(resp).await);
    let done = lifecycle(&server).pop().expect("perform_finished");
    assert_eq!(done.kind, clew_core::LifecycleKind::PerformFinished);
    assert_eq!(
        (done.origin.hostname.as_str(), done.origin.process),
        ("worker-8", 99)
    );

    // The Rust client sends its own process.
    let client = clew_client::Client::connect(&server.url("")).expect("client");
    let mut p = clew_core::command::PutParams::new("q", "K");
    p.jid = "k".into();
    client.put(p).await.expect("put");
    let last = lifecycle(&server).pop().expect("enqueued");
    assert_eq!(last.jid, "k");
    assert_eq!(last.origin, clew_core::Origin::this_process());
    server.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_malformed_origin_header_is_refused_and_changes_nothing() {
    let server = TestServer::start(test_mode()).await;
    for bad in ["no-pid", "host:abc", ":12", "two words:1"] {
        let resp = server
            .client
            .post(server.url("/v1/qless"))
            .header("x-clew-origin", bad)
            .json(&json!({"command": "put", "args": ["w", "q", "j", "K", "{}", "0"]}))
            .send()
            .await
            .expect("put");
        assert_error(
            &json_of(resp).await,
            StatusCode::BAD_REQUEST,
            "X-Clew-Origin",
        );
    }
    assert_eq!(server.ok(0.0, "get", &["j"]).await, serde_json::Value::Null);
    server.shutdown().await;
}
