//! The limits of `clew_core::limits` over HTTP: 400 `invalid_argument`
//! JSON naming the argument and the limit, on the resource API and the
//! qless endpoint alike, and nothing changes.

mod server_harness;

use reqwest::StatusCode;
use serde_json::{json, Value};
use server_harness::{assert_error, json_of, TestServer};

use clew_server::ServerConfig;

async fn send(s: &TestServer, path: &str, body: Value) -> (StatusCode, Value) {
    json_of(
        s.client
            .post(s.url(path))
            .json(&body)
            .send()
            .await
            .expect("request"),
    )
    .await
}

async fn picture(s: &TestServer) -> Value {
    let engine = s.state.engine();
    let events = engine.store().events_after(0, 1000).await.expect("events");
    json!({
        "queues": engine.qless("queues", None, &[]).await.expect("queues"),
        "job": engine.qless("get", None, &["j1".to_owned()]).await.expect("get"),
        "events": events.len(),
    })
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn limits_are_400_naming_the_argument_and_change_nothing() {
    // A body limit above the data limit, so that the data limit is reached.
    let s = TestServer::start(ServerConfig {
        body_limit: 4 << 20,
        ..ServerConfig::default()
    })
    .await;
    let (st, _) = send(&s, "/v1/queues/q/jobs", json!({"klass": "K", "jid": "j1"})).await;
    assert_eq!(st, StatusCode::CREATED);
    let before = picture(&s).await;

    let long = "x".repeat(256);
    let tags: Vec<String> = (0..65).map(|i| format!("t{i}")).collect();
    let big = "y".repeat(1 << 20);
    for (path, body, wording) in [
        (
            format!("/v1/queues/{long}/jobs"),
            json!({"klass": "K"}),
            "Arg \"queue\" is 256 bytes long, at most 255 allowed",
        ),
        (
            "/v1/queues/q%00x/jobs".to_owned(),
            json!({"klass": "K"}),
            "Arg \"queue\" must not contain control characters: U+0000",
        ),
        (
            "/v1/queues/q/jobs".to_owned(),
            json!({"klass": long, "jid": "j2"}),
            "Arg \"klass\" is 256 bytes long",
        ),
        (
            "/v1/queues/q/jobs".to_owned(),
            json!({"klass": "K", "jid": "j\n2"}),
            "Arg \"jid\" must not contain control characters: U+000A",
        ),
        (
            "/v1/queues/q/jobs".to_owned(),
            json!({"klass": "K", "tags": tags}),
            "Arg \"tags\" has 65 tags, at most 64 allowed",
        ),
        (
            "/v1/queues/q/jobs".to_owned(),
            json!({"klass": "K", "data": {"blob": big}}),
            "Arg \"data\" is 1048587 bytes long, at most 1048576 allowed",
        ),
        (
            "/v1/queues/q/pop".to_owned(),
            json!({"worker": long}),
            "Arg \"worker\" is 256 bytes long",
        ),
        (
            "/v1/jobs/j1/tags".to_owned(),
            json!({"tags": ["ok", "bad\u{7f}"]}),
            "must not contain control characters: U+007F",
        ),
        (
            "/v1/qless".to_owned(),
            json!({"command": "put", "args": ["w", "q", "j\u{0}3", "K", "{}", "0"]}),
            "Put(): Arg \"jid\" must not contain control characters: U+0000",
        ),
    ] {
        let got = send(&s, &path, body).await;
        assert_error(&got, StatusCode::BAD_REQUEST, wording);
        assert_eq!(got.1["error"]["code"], "invalid_argument", "{path}");
    }
    // A lookup with a NUL is refused the same way on every store.
    let got = json_of(
        s.client
            .get(s.url("/v1/jobs/j%001"))
            .send()
            .await
            .expect("request"),
    )
    .await;
    assert_error(&got, StatusCode::BAD_REQUEST, "U+0000");
    assert_eq!(
        before,
        picture(&s).await,
        "a refused request changed the store"
    );
}
