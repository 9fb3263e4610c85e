//! Uniqueness keys through the resource API: `unique_key` and
//! `on_conflict` on puts (single and batch), the `existing` answer, the
//! 409 and 400 refusals, end to end against a real server.

mod api_common;

use api_common::{assert_error, start};
use reqwest::{Method, StatusCode};
use serde_json::json;

#[tokio::test(flavor = "multi_thread")]
async fn put_with_a_unique_key() {
    let s = start(true).await;
    let put = |body: serde_json::Value| {
        let s = &s;
        async move { s.call(Method::POST, "/v1/queues/q/jobs", Some(body)).await }
    };

    // The first put creates the job (201, no `existing`).
    let (st, v) = put(json!({"jid": "a", "klass": "K", "data": {"n": 1}, "unique_key": "k"})).await;
    assert_eq!(st, StatusCode::CREATED);
    assert_eq!(v, json!({"jid": "a"}));
    assert_eq!(s.job("a").await["unique_key"], "k");

    // existing (the default): 200, the holder's jid, nothing changes.
    let (st, v) = put(json!({"jid": "b", "klass": "K", "data": {"n": 2}, "unique_key": "k"})).await;
    assert_eq!(st, StatusCode::OK);
    assert_eq!(v, json!({"jid": "a", "existing": true}));
    assert_eq!(s.job("a").await["data"], json!({"n": 1}));
    s.expect(StatusCode::NOT_FOUND, Method::GET, "/v1/jobs/b", None)
        .await;

    // replace: the holder's data.
    let (st, v) =
        put(json!({"klass": "K", "data": {"n": 3}, "unique_key": "k", "on_conflict": "replace"}))
            .await;
    assert_eq!(st, StatusCode::OK);
    assert_eq!(v, json!({"jid": "a", "existing": true}));
    assert_eq!(s.job("a").await["data"], json!({"n": 3}));

    // refuse: 409 naming the key and the holder.
    let (st, v) =
        put(json!({"jid": "c", "klass": "K", "unique_key": "k", "on_conflict": "refuse"})).await;
    assert_eq!(st, StatusCode::CONFLICT, "{v}");
    assert_error(&v, "conflict", "held by job a");

    // replace of a running holder: 409.
    assert_eq!(s.pop("q", "w1").await[0]["jid"], "a");
    let (st, v) = put(json!({"klass": "K", "unique_key": "k", "on_conflict": "replace"})).await;
    assert_eq!(st, StatusCode::CONFLICT, "{v}");
    assert_error(&v, "conflict", "running");

    // Once complete, the key is free.
    s.post("/v1/jobs/a/complete", json!({"worker": "w1"})).await;
    let (st, v) =
        put(json!({"jid": "d", "klass": "K", "unique_key": "k", "on_conflict": "refuse"})).await;
    assert_eq!(st, StatusCode::CREATED, "{v}");
    assert_eq!(v, json!({"jid": "d"}));
}

#[tokio::test(flavor = "multi_thread")]
async fn bad_unique_options_are_400() {
    let s = start(true).await;
    let long = "k".repeat(256);
    for (body, needle) in [
        (
            json!({"klass": "K", "unique_key": "k", "on_conflict": "merge"}),
            "on_conflict",
        ),
        (
            json!({"klass": "K", "on_conflict": "refuse"}),
            "only with unique_key",
        ),
        (
            json!({"klass": "K", "unique_key": ""}),
            "\"unique\" must not be empty",
        ),
        (json!({"klass": "K", "unique_key": long}), "at most 255"),
    ] {
        let v = s
            .expect(
                StatusCode::BAD_REQUEST,
                Method::POST,
                "/v1/queues/q/jobs",
                Some(body),
            )
            .await;
        assert_error(&v, "invalid_argument", needle);
    }
    let v = s
        .expect(
            StatusCode::BAD_REQUEST,
            Method::POST,
            "/v1/batch/put",
            Some(json!({"jobs": [
                {"queue": "q", "klass": "K"},
                {"queue": "q", "klass": "K", "unique_key": "k", "on_conflict": "nope"}
            ]})),
        )
        .await;
    assert_error(&v, "invalid_argument", "jobs[1]: on_conflict");
    assert_eq!(s.get("/v1/queues/q").await["waiting"], 0);
}

#[tokio::test(flavor = "multi_thread")]
async fn batch_put_with_one_key_twice() {
    let s = start(true).await;
    let v = s
        .expect(
            StatusCode::CREATED,
            Method::POST,
            "/v1/batch/put",
            Some(json!({"jobs": [
                {"queue": "q", "jid": "x", "klass": "K", "unique_key": "k"},
                {"queue": "q", "jid": "y", "klass": "K", "unique_key": "k"},
                {"queue": "q", "jid": "z", "klass": "K"}
            ]})),
        )
        .await;
    assert_eq!(
        v,
        json!({"jids": ["x", "x", "z"], "existing": [false, true, false]})
    );
    // Without a conflict the answer keeps its plain shape.
    let v = s
        .expect(
            StatusCode::CREATED,
            Method::POST,
            "/v1/batch/put",
            Some(json!({"jobs": [{"queue": "q", "jid": "w", "klass": "K", "unique_key": "k2"}]})),
        )
        .await;
    assert_eq!(v, json!({"jids": ["w"]}));
    // refuse inside an atomic batch refuses it all, naming the item.
    let v = s
        .expect(
            StatusCode::CONFLICT,
            Method::POST,
            "/v1/batch/put",
            Some(json!({"jobs": [
                {"queue": "q", "jid": "p", "klass": "K", "unique_key": "k3"},
                {"queue": "q", "jid": "r", "klass": "K", "unique_key": "k3", "on_conflict": "refuse"}
            ]})),
        )
        .await;
    assert_error(&v, "conflict", "jobs[1]: ");
    assert_error(&v, "conflict", "held by job p");
    s.expect(StatusCode::NOT_FOUND, Method::GET, "/v1/jobs/p", None)
        .await;
}

#[tokio::test(flavor = "multi_thread")]
async fn get_the_holder_of_a_key() {
    let s = start(true).await;
    let path = "/v1/unique/search%3Auser%2F42";
    let v = s
        .expect(StatusCode::NOT_FOUND, Method::GET, path, None)
        .await;
    assert_error(&v, "not_found", "search:user/42");
    s.put(
        "q",
        json!({"jid": "a", "klass": "K", "data": {"n": 1}, "unique_key": "search:user/42"}),
    )
    .await;
    let job = s.get(path).await;
    assert_eq!(job["jid"], "a");
    assert_eq!(job["data"], json!({"n": 1}));
    assert_eq!(job["unique_key"], "search:user/42");
    s.pop("q", "w").await;
    s.post("/v1/jobs/a/complete", json!({"worker": "w"})).await;
    s.expect(StatusCode::NOT_FOUND, Method::GET, path, None)
        .await;
    let long = format!("/v1/unique/{}", "k".repeat(256));
    let v = s
        .expect(StatusCode::BAD_REQUEST, Method::GET, &long, None)
        .await;
    assert_error(&v, "invalid_argument", "at most 255");
}
