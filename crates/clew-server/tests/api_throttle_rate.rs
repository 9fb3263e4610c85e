//! Throttle rate limits through the resource API against a real server:
//! `PUT /v1/throttles/{name}` with `rate`, a job over the rate is held back
//! and `why` names the rate; bad rates are 400s.

mod api_common;

use api_common::{assert_error, start};
use reqwest::{Method, StatusCode};
use serde_json::json;

#[tokio::test(flavor = "multi_thread")]
async fn a_rate_limit_holds_jobs_back_and_why_names_it() {
    let s = start(true).await;
    let t = s
        .expect(
            StatusCode::OK,
            Method::PUT,
            "/v1/throttles/api",
            Some(json!({"max": 0, "rate": {"limit": 1, "period": 3600}})),
        )
        .await;
    assert_eq!(
        t,
        json!({"name": "api", "max": 0, "running": 0, "pending": 0,
               "rate": {"limit": 1, "period": 3600}, "started": 0})
    );
    for jid in ["a", "b"] {
        s.put("q", json!({"jid": jid, "klass": "K", "throttles": ["api"]}))
            .await;
    }
    assert_eq!(s.pop("q", "w1").await[0]["jid"], "a");
    // The slot is free once a completes, but the hour's one start is used.
    s.post("/v1/jobs/a/complete", json!({"worker": "w1"})).await;
    assert!(s.pop("q", "w2").await.is_empty());
    assert_eq!(s.job("b").await["state"], "throttled");
    let t = s.get("/v1/throttles/api").await;
    assert_eq!(
        (t["started"].clone(), t["pending"].clone()),
        (json!(1), json!(1))
    );

    let why = s.get("/v1/jobs/b/why").await;
    let reason = &why["reasons"][0];
    assert_eq!(reason["code"], "throttled", "{why}");
    assert_eq!(reason["reason"], "rate");
    assert_eq!(reason["rate"], json!({"limit": 1, "period": 3600}));
    let text = reason["text"].as_str().unwrap_or("");
    assert!(
        text.contains("rate limit") && text.contains("1 of at most 1 starts in the last 3600s"),
        "{text}"
    );

    // Setting it without a rate lifts the rate: b goes back to its queue.
    let t = s
        .expect(
            StatusCode::OK,
            Method::PUT,
            "/v1/throttles/api",
            Some(json!({"max": 0})),
        )
        .await;
    assert!(t.get("rate").is_none(), "{t}");
    assert_eq!(s.job("b").await["state"], "waiting");
}

#[tokio::test(flavor = "multi_thread")]
async fn bad_rates_are_400s() {
    let s = start(true).await;
    for (body, needle) in [
        (
            json!({"max": 1, "rate": {"limit": 0, "period": 60}}),
            "limit",
        ),
        (
            json!({"max": 1, "rate": {"limit": 2, "period": 0}}),
            "period",
        ),
        (json!({"max": 1, "rate": {"limit": 2}}), "period"),
    ] {
        let v = s
            .expect(
                StatusCode::BAD_REQUEST,
                Method::PUT,
                "/v1/throttles/t",
                Some(body),
            )
            .await;
        assert_error(&v, "invalid_argument", needle);
    }
    assert_eq!(s.get("/v1/throttles").await, json!([]));
}
