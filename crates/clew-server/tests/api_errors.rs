//! Refused requests on the resource API: clear 4xx JSON errors naming the
//! field, and no state change.

mod api_common;

use api_common::{assert_error, start, Server};
use reqwest::{Method, StatusCode};
use serde_json::{json, Value};

/// Everything a client can observe: queues, the job, completed jobs,
/// failures, workers, and the committed events.
async fn snapshot(s: &Server, jid: &str) -> Value {
    json!({
        "queues": s.get("/v1/queues").await,
        "job": s.job(jid).await,
        "completed": s.get("/v1/completed").await,
        "failed": s.get("/v1/failed").await,
        "workers": s.get("/v1/workers").await,
        "config": s.get("/v1/config").await,
        "events": s.get("/v1/qless/events?after=0").await,
    })
}

#[tokio::test(flavor = "multi_thread")]
async fn malformed_bodies_name_the_field_and_change_nothing() {
    let s = start(true).await;
    let jid = s.put("q", json!({"jid": "j1", "klass": "K"})).await;
    s.pop("q", "w1").await;
    let before = snapshot(&s, &jid).await;
    let put = "/v1/queues/q/jobs";

    // malformed JSON
    let (st, b) = s.raw(Method::POST, put, "{\"klass\": ").await;
    assert_eq!(st, StatusCode::BAD_REQUEST);
    assert_error(&b, "invalid_argument", "request body");

    // missing field
    let (st, b) = s.raw(Method::POST, put, "{\"data\": {}}").await;
    assert_eq!(st, StatusCode::BAD_REQUEST);
    assert_error(&b, "invalid_argument", "klass");

    // wrong type
    let (st, b) = s
        .raw(Method::POST, put, r#"{"klass": "K", "priority": "high"}"#)
        .await;
    assert_eq!(st, StatusCode::BAD_REQUEST);
    assert_error(&b, "invalid_argument", "priority");
    assert_error(&b, "invalid_argument", "expected an integer");
    let (st, b) = s.raw(Method::POST, put, r#"{"klass": 7}"#).await;
    assert_eq!(st, StatusCode::BAD_REQUEST);
    assert_error(&b, "invalid_argument", "klass");

    // unknown field
    let (st, b) = s
        .raw(Method::POST, put, r#"{"klass": "K", "colour": "red"}"#)
        .await;
    assert_eq!(st, StatusCode::BAD_REQUEST);
    assert_error(&b, "invalid_argument", "colour");

    // not JSON at all / no content type
    let resp = s
        .http
        .post(format!("{}{put}", s.base))
        .body("klass=K")
        .send()
        .await
        .expect("sent");
    assert_eq!(resp.status(), StatusCode::UNSUPPORTED_MEDIA_TYPE);
    let b: Value = resp.json().await.expect("JSON error body");
    assert_error(&b, "unsupported_media_type", "Content-Type");

    // other bodies
    let (st, b) = s.raw(Method::POST, "/v1/queues/q/pop", "{}").await;
    assert_eq!(st, StatusCode::BAD_REQUEST);
    assert_error(&b, "invalid_argument", "worker");
    let (st, b) = s
        .raw(
            Method::POST,
            "/v1/jobs/j1/heartbeat",
            r#"{"worker": ["w1"]}"#,
        )
        .await;
    assert_eq!(st, StatusCode::BAD_REQUEST);
    assert_error(&b, "invalid_argument", "worker");
    let (st, b) = s
        .raw(
            Method::POST,
            "/v1/jobs/j1/fail",
            r#"{"worker": "w1", "group": "G"}"#,
        )
        .await;
    assert_eq!(st, StatusCode::BAD_REQUEST);
    assert_error(&b, "invalid_argument", "message");
    let (st, b) = s
        .raw(Method::PUT, "/v1/jobs/j1/priority", r#"{"priority": 1.5}"#)
        .await;
    assert_eq!(st, StatusCode::BAD_REQUEST);
    assert_error(&b, "invalid_argument", "priority");
    let (st, b) = s
        .raw(Method::POST, "/v1/jobs/j1/depends/remove", r#"{}"#)
        .await;
    assert_eq!(st, StatusCode::BAD_REQUEST);
    assert_error(&b, "invalid_argument", "jids");
    let (st, b) = s
        .raw(Method::PUT, "/v1/config/heartbeat", r#"{"value": [1]}"#)
        .await;
    assert_eq!(st, StatusCode::BAD_REQUEST);
    assert_error(&b, "invalid_argument", "value");

    // refused by the engine: negative delay, self-dependency
    let (st, b) = s
        .raw(Method::POST, put, r#"{"klass": "K", "delay": -1}"#)
        .await;
    assert_eq!(st, StatusCode::BAD_REQUEST);
    assert_error(&b, "invalid_argument", "delay");
    let (st, b) = s
        .raw(
            Method::POST,
            put,
            r#"{"jid": "x", "klass": "K", "depends": ["x"]}"#,
        )
        .await;
    assert_eq!(st, StatusCode::BAD_REQUEST);
    assert_error(&b, "invalid_argument", "depends");

    assert_eq!(
        snapshot(&s, &jid).await,
        before,
        "a refused request changed state"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn bad_query_strings_name_the_parameter() {
    let s = start(true).await;
    let jid = s.put("q", json!({"jid": "j1", "klass": "K"})).await;
    let before = snapshot(&s, &jid).await;
    let cases = [
        ("/v1/queues/q/jobs?state=bogus", "state"),
        ("/v1/queues/q/jobs", "state"),
        ("/v1/queues/q/jobs?state=waiting&count=abc", "count"),
        ("/v1/tags?count=-1", "count"),
        ("/v1/tags?offset=-3", "offset"),
        ("/v1/failed/G?page=2", "page"),
        ("/v1/jobs", "jids"),
        ("/v1/jobs?jids=,", "jids"),
        ("/v1/queues/q/peek?count=-2", "count"),
        ("/v1/queues/q/stats?date=noon", "date"),
    ];
    for (path, field) in cases {
        let b = s
            .expect(StatusCode::BAD_REQUEST, Method::GET, path, None)
            .await;
        assert_error(&b, "invalid_argument", field);
    }
    let b = s
        .expect(StatusCode::BAD_REQUEST, Method::DELETE, "/v1/jobs", None)
        .await;
    assert_error(&b, "invalid_argument", "jids");
    assert_eq!(snapshot(&s, &jid).await, before);
}

#[tokio::test(flavor = "multi_thread")]
async fn unknown_things_are_404() {
    let s = start(true).await;
    let jid = s.put("q", json!({"jid": "j1", "klass": "K"})).await;
    let before = snapshot(&s, &jid).await;
    for (method, path, body) in [
        (Method::GET, "/v1/jobs/nope", None),
        (
            Method::POST,
            "/v1/jobs/nope/complete",
            Some(json!({"worker": "w"})),
        ),
        (
            Method::POST,
            "/v1/jobs/nope/retry",
            Some(json!({"worker": "w"})),
        ),
        (Method::GET, "/v1/recurring/nope", None),
        (
            Method::PATCH,
            "/v1/recurring/nope",
            Some(json!({"priority": 1})),
        ),
        (Method::DELETE, "/v1/recurring/nope", None),
        (Method::GET, "/v1/config/no-such-key", None),
        (Method::GET, "/v1/no/such/route", None),
    ] {
        let b = s.expect(StatusCode::NOT_FOUND, method, path, body).await;
        assert_error(&b, "not_found", "");
    }
    let b = s
        .expect(
            StatusCode::NOT_FOUND,
            Method::POST,
            "/v1/jobs/nope/heartbeat",
            Some(json!({"worker": "w"})),
        )
        .await;
    assert_error(&b, "not_found", "nope");
    assert_eq!(snapshot(&s, &jid).await, before);
}

#[tokio::test(flavor = "multi_thread")]
async fn wrong_state_is_409() {
    let s = start(true).await;
    s.put("q", json!({"jid": "a", "klass": "K"})).await;
    s.put("q", json!({"jid": "b", "klass": "K", "depends": ["a"]}))
        .await;
    let before = snapshot(&s, "a").await;

    // heartbeat / complete / fail of a job that is not running
    for (path, body) in [
        ("/v1/jobs/a/heartbeat", json!({"worker": "w"})),
        ("/v1/jobs/a/complete", json!({"worker": "w"})),
        (
            "/v1/jobs/a/fail",
            json!({"worker": "w", "group": "G", "message": "m"}),
        ),
    ] {
        let b = s
            .expect(StatusCode::CONFLICT, Method::POST, path, Some(body))
            .await;
        assert_error(&b, "conflict", "a");
    }
    // depends on a job that is not in the depends state
    let b = s
        .expect(
            StatusCode::CONFLICT,
            Method::POST,
            "/v1/jobs/a/depends",
            Some(json!({"jids": ["b"]})),
        )
        .await;
    assert_error(&b, "conflict", "depends");
    // cancelling a dependency alone
    let b = s
        .expect(StatusCode::CONFLICT, Method::DELETE, "/v1/jobs/a", None)
        .await;
    assert_error(&b, "conflict", "b");
    assert_eq!(snapshot(&s, "a").await, before);

    // a lock held by another worker
    s.pop("q", "w1").await;
    let before = snapshot(&s, "a").await;
    let b = s
        .expect(
            StatusCode::CONFLICT,
            Method::POST,
            "/v1/jobs/a/complete",
            Some(json!({"worker": "w2"})),
        )
        .await;
    assert_error(&b, "conflict", "w1");
    assert_eq!(snapshot(&s, "a").await, before);
}
