//! Cron schedules through the recurring-job routes, against a real server:
//! create with `cron`/`timezone`/`missed`, the document's fields, children
//! at each tick, update (and switching to an interval), and 400s naming the
//! problem.

mod api_common;

use api_common::{assert_error, start};
use reqwest::{Method, StatusCode};
use serde_json::json;

/// Monday 2026-01-05 10:02:00 UTC.
const T0: f64 = 1_767_607_320.0;

#[tokio::test(flavor = "multi_thread")]
async fn cron_templates_through_the_api() {
    let mut s = start(true).await;
    s.now = Some(T0);
    let v = s
        .post(
            "/v1/queues/q/recurring",
            json!({"jid": "c", "klass": "Report", "cron": "*/5 * * * *",
                   "timezone": "Europe/Paris", "missed": "skip"}),
        )
        .await;
    assert_eq!(v, json!({"jid": "c"}));
    let r = s.get("/v1/recurring/c").await;
    assert_eq!(r["cron"], "*/5 * * * *");
    assert_eq!(r["timezone"], "Europe/Paris");
    assert_eq!(r["missed"], "skip");
    assert_eq!(r["interval"], 0);
    assert_eq!(r["next_run"].as_f64(), Some(T0 + 180.0));
    assert_eq!(r["next_at"].as_f64(), Some(T0 + 180.0));
    let list = s.get("/v1/queues/q/recurring").await;
    assert_eq!(list[0]["cron"], "*/5 * * * *");

    // The tick at 10:05 spawns one child, put at the tick.
    s.now = Some(T0 + 179.0);
    assert!(s.pop("q", "w").await.is_empty(), "not due yet");
    s.now = Some(T0 + 200.0);
    let popped = s.pop("q", "w").await;
    assert_eq!(popped.len(), 1);
    assert_eq!(popped[0]["jid"], "c-1");
    assert_eq!(popped[0]["spawned_from_jid"], "c");
    assert_eq!(popped[0]["history"][0]["when"].as_f64(), Some(T0 + 180.0));
    assert!(s.pop("q", "w").await.is_empty(), "one child per tick");

    // Update: another expression and catch-up; then back to an interval.
    let r = s
        .expect(
            StatusCode::OK,
            Method::PATCH,
            "/v1/recurring/c",
            Some(json!({"cron": "0 * * * *", "missed": "catch-up", "timezone": "UTC"})),
        )
        .await;
    assert_eq!(r["cron"], "0 * * * *");
    assert_eq!(r["missed"], "catch-up");
    assert_eq!(r["timezone"], "UTC");
    assert_eq!(r["next_run"].as_f64(), Some(T0 + 58.0 * 60.0));
    let r = s
        .expect(
            StatusCode::OK,
            Method::PATCH,
            "/v1/recurring/c",
            Some(json!({"interval": 30})),
        )
        .await;
    assert!(r.get("cron").is_none(), "{r}");
    assert_eq!(r["interval"], 30);
    assert_eq!(r["next_run"].as_f64(), Some(T0 + 230.0));

    // Refusals name the problem, and change nothing.
    for (body, needle) in [
        (json!({"klass": "K", "cron": "* * * *"}), "5 fields"),
        (json!({"klass": "K", "cron": "99 * * * *"}), "cron"),
        (
            json!({"klass": "K", "cron": "* * * * *", "timezone": "Mars/Base"}),
            "timezone",
        ),
        (
            json!({"klass": "K", "cron": "* * * * *", "missed": "later"}),
            "missed",
        ),
        (
            json!({"klass": "K", "cron": "* * * * *", "interval": 5}),
            "not both",
        ),
        (json!({"klass": "K"}), "required"),
        (
            json!({"klass": "K", "interval": 5, "timezone": "UTC"}),
            "timezone",
        ),
    ] {
        let (st, b) = s
            .call(Method::POST, "/v1/queues/q/recurring", Some(body.clone()))
            .await;
        assert_eq!(st, StatusCode::BAD_REQUEST, "{body}: {b}");
        assert_error(&b, "invalid_argument", needle);
    }
    for (body, needle) in [
        (json!({"cron": "nope"}), "cron"),
        (json!({"missed": "skip"}), "missed"),
        (json!({"missed": "never"}), "missed"),
    ] {
        let (st, b) = s
            .call(Method::PATCH, "/v1/recurring/c", Some(body.clone()))
            .await;
        assert_eq!(st, StatusCode::BAD_REQUEST, "{body}: {b}");
        assert_error(&b, "invalid_argument", needle);
    }
    assert_eq!(s.get("/v1/recurring/c").await["interval"], 30);
    assert_eq!(
        s.get("/v1/queues/q/recurring")
            .await
            .as_array()
            .map(Vec::len),
        Some(1)
    );
}
