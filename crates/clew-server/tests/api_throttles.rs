//! Throttles through the resource API against a real server: define,
//! list, get, raise, delete; jobs put with `throttles` are held back in the
//! `throttled` state and `why` names the throttle.

mod api_common;

use api_common::{assert_error, start};
use reqwest::{Method, StatusCode};
use serde_json::json;

#[tokio::test(flavor = "multi_thread")]
async fn throttles_hold_jobs_back_across_queues() {
    let s = start(true).await;
    let t = s
        .expect(
            StatusCode::OK,
            Method::PUT,
            "/v1/throttles/customer-7",
            Some(json!({"max": 1})),
        )
        .await;
    assert_eq!(
        t,
        json!({"name": "customer-7", "max": 1, "running": 0, "pending": 0})
    );
    s.put(
        "emails",
        json!({"jid": "a", "klass": "K", "throttles": ["customer-7"]}),
    )
    .await;
    s.put(
        "reports",
        json!({"jid": "b", "klass": "K", "throttles": ["customer-7"]}),
    )
    .await;
    assert_eq!(s.job("a").await["throttles"], json!(["customer-7"]));

    assert_eq!(s.pop("emails", "w1").await[0]["jid"], "a");
    assert!(s.pop("reports", "w2").await.is_empty());
    assert_eq!(s.job("b").await["state"], "throttled");
    assert_eq!(
        s.get("/v1/queues/reports/jobs?state=throttled").await,
        json!(["b"])
    );
    assert_eq!(s.get("/v1/queues/reports").await["throttled"], 1);
    assert_eq!(
        s.get("/v1/throttles/customer-7").await,
        json!({"name": "customer-7", "max": 1, "running": 1, "pending": 1})
    );
    assert_eq!(
        s.get("/v1/throttles").await,
        json!([{"name": "customer-7", "max": 1, "running": 1, "pending": 1}])
    );

    // why: the throttle, its count and maximum
    let why = s.get("/v1/jobs/b/why").await;
    let reason = &why["reasons"][0];
    assert_eq!(reason["code"], "throttled", "{why}");
    assert_eq!(reason["throttle"], "customer-7");
    assert_eq!(reason["running"], 1);
    assert_eq!(reason["max"], 1);
    let text = reason["text"].as_str().unwrap_or("");
    assert!(
        text.contains("customer-7") && text.contains("1 of at most 1"),
        "{text}"
    );

    // completing a frees the slot: b goes back to its queue
    s.post("/v1/jobs/a/complete", json!({"worker": "w1"})).await;
    assert_eq!(s.job("b").await["state"], "waiting");
    assert_eq!(s.pop("reports", "w2").await[0]["jid"], "b");

    // raise, then delete
    let t = s
        .expect(
            StatusCode::OK,
            Method::PUT,
            "/v1/throttles/customer-7",
            Some(json!({"max": 5})),
        )
        .await;
    assert_eq!(t["max"], 5);
    let v = s
        .expect(
            StatusCode::OK,
            Method::DELETE,
            "/v1/throttles/customer-7",
            None,
        )
        .await;
    assert_eq!(v, json!({"deleted": "customer-7"}));
    assert_eq!(s.get("/v1/throttles").await, json!([]));
}

#[tokio::test(flavor = "multi_thread")]
async fn throttle_errors_are_clear() {
    let s = start(true).await;
    let v = s
        .expect(
            StatusCode::NOT_FOUND,
            Method::GET,
            "/v1/throttles/nope",
            None,
        )
        .await;
    assert_error(&v, "not_found", "nope");
    let v = s
        .expect(
            StatusCode::NOT_FOUND,
            Method::DELETE,
            "/v1/throttles/nope",
            None,
        )
        .await;
    assert_error(&v, "not_found", "nope");
    let v = s
        .expect(
            StatusCode::BAD_REQUEST,
            Method::PUT,
            "/v1/throttles/t",
            Some(json!({"max": -2})),
        )
        .await;
    assert_error(&v, "invalid_argument", "max");
    let v = s
        .expect(
            StatusCode::BAD_REQUEST,
            Method::PUT,
            "/v1/throttles/t",
            Some(json!({"max": "many"})),
        )
        .await;
    assert_error(&v, "invalid_argument", "max");
    let v = s
        .expect(
            StatusCode::BAD_REQUEST,
            Method::POST,
            "/v1/queues/q/jobs",
            Some(json!({"klass": "K", "throttles": ["ok", ""]})),
        )
        .await;
    assert_error(&v, "invalid_argument", "throttles");
    assert_eq!(s.get("/v1/queues/q/length").await, json!({"length": 0}));
}
