//! The resource API's queue, worker, stats, config and recurring-job
//! operations, against a real server.

mod api_common;

use api_common::{assert_error, start};
use reqwest::{Method, StatusCode};
use serde_json::json;

#[tokio::test(flavor = "multi_thread")]
async fn queues_counts_length_pause_forget() {
    let s = start(true).await;
    s.put("q", json!({"jid": "a", "klass": "K"})).await;
    s.put("q", json!({"jid": "b", "klass": "K"})).await;
    s.put("q", json!({"jid": "c", "klass": "K", "delay": 30}))
        .await;
    s.pop("q", "w").await;

    let q = s.get("/v1/queues/q").await;
    assert_eq!(q["name"], "q");
    assert_eq!(q["waiting"], 1);
    assert_eq!(q["running"], 1);
    assert_eq!(q["scheduled"], 1);
    assert_eq!(q["paused"], false);
    let all = s.get("/v1/queues").await;
    assert_eq!(all.as_array().map(Vec::len), Some(1));
    assert_eq!(all[0]["name"], "q");
    assert_eq!(s.get("/v1/queues/q/length").await, json!({"length": 3}));
    assert_eq!(s.get("/v1/queues/q/jobs?state=waiting").await, json!(["b"]));
    assert_eq!(s.get("/v1/queues/q/jobs?state=running").await, json!(["a"]));

    // pause: pop hands out nothing; unpause: it does again
    assert_eq!(
        s.post("/v1/queues/q/pause", json!(null)).await,
        json!({"paused": true})
    );
    assert_eq!(s.get("/v1/queues/q").await["paused"], true);
    assert!(s.pop("q", "w").await.is_empty());
    s.post("/v1/queues/q/unpause", json!(null)).await;
    assert_eq!(s.pop("q", "w").await[0]["jid"], "b");

    // forget: the queue name disappears from the list once empty
    s.put("empty", json!({"jid": "e", "klass": "K"})).await;
    s.expect(StatusCode::OK, Method::DELETE, "/v1/jobs/e", None)
        .await;
    let v = s
        .expect(StatusCode::OK, Method::DELETE, "/v1/queues/empty", None)
        .await;
    assert_eq!(v, json!({"forgotten": "empty"}));
    let names: Vec<String> = s
        .get("/v1/queues")
        .await
        .as_array()
        .expect("array")
        .iter()
        .map(|q| q["name"].as_str().unwrap_or("").to_owned())
        .collect();
    assert!(!names.contains(&"empty".to_owned()), "{names:?}");
}

#[tokio::test(flavor = "multi_thread")]
async fn workers_and_deregister() {
    let s = start(true).await;
    s.put("q", json!({"jid": "a", "klass": "K"})).await;
    s.pop("q", "w1").await;
    let mut all = s.get("/v1/workers").await;
    let seen = all[0]["last_seen"].take();
    assert!(seen.as_f64().is_some_and(|t| t > 0.0), "last_seen {seen}");
    all[0].as_object_mut().map(|o| o.remove("last_seen"));
    assert_eq!(all, json!([{"name": "w1", "jobs": 1, "stalled": 0}]));
    let mut one = s.get("/v1/workers/w1").await;
    assert_eq!(one["last_seen"], seen);
    one.as_object_mut().map(|o| o.remove("last_seen"));
    assert_eq!(one, json!({"jobs": ["a"], "stalled": []}));
    let v = s
        .expect(StatusCode::OK, Method::DELETE, "/v1/workers/w1", None)
        .await;
    assert_eq!(v, json!({"deregistered": "w1"}));
    assert_eq!(s.get("/v1/workers").await, json!([]));
}

#[tokio::test(flavor = "multi_thread")]
async fn stats_of_a_day() {
    let mut s = start(true).await;
    s.now = Some(86_400.0 * 100.0 + 10.0);
    s.put("q", json!({"jid": "a", "klass": "K"})).await;
    s.now = Some(86_400.0 * 100.0 + 15.0);
    s.pop("q", "w").await;
    let st = s.get("/v1/queues/q/stats").await;
    assert_eq!(st["wait"]["count"], 1);
    assert_eq!(st["wait"]["mean"], 5.0);
    assert_eq!(st["run"]["count"], 0);
    assert_eq!(st["wait"]["histogram"].as_array().map(Vec::len), Some(148));
    // another day has nothing
    let other = s.get("/v1/queues/q/stats?date=86400").await;
    assert_eq!(other["wait"]["count"], 0);
    // the same day by date
    let same = s
        .get(&format!("/v1/queues/q/stats?date={}", 86_400 * 100))
        .await;
    assert_eq!(same["wait"]["count"], 1);
}

#[tokio::test(flavor = "multi_thread")]
async fn config_get_set_unset() {
    let s = start(true).await;
    let all = s.get("/v1/config").await;
    let default_hb = all["heartbeat"].clone();
    assert!(!default_hb.is_null(), "heartbeat has a default: {all}");
    assert_eq!(
        s.get("/v1/config/heartbeat").await,
        json!({"key": "heartbeat", "value": default_hb})
    );
    let v = s
        .expect(
            StatusCode::OK,
            Method::PUT,
            "/v1/config/heartbeat",
            Some(json!({"value": 120})),
        )
        .await;
    assert_eq!(v["key"], "heartbeat");
    assert_eq!(v["value"].to_string().trim_matches('"'), "120");
    s.expect(
        StatusCode::OK,
        Method::PUT,
        "/v1/config/my-key",
        Some(json!({"value": "hello"})),
    )
    .await;
    assert_eq!(s.get("/v1/config/my-key").await["value"], "hello");
    assert_eq!(s.get("/v1/config").await["my-key"], "hello");

    let v = s
        .expect(StatusCode::OK, Method::DELETE, "/v1/config/heartbeat", None)
        .await;
    assert_eq!(v, json!({"unset": "heartbeat"}));
    assert_eq!(s.get("/v1/config/heartbeat").await["value"], default_hb);
    s.expect(StatusCode::OK, Method::DELETE, "/v1/config/my-key", None)
        .await;
    let b = s
        .expect(
            StatusCode::NOT_FOUND,
            Method::GET,
            "/v1/config/my-key",
            None,
        )
        .await;
    assert_error(&b, "not_found", "my-key");
}

#[tokio::test(flavor = "multi_thread")]
async fn recurring_jobs() {
    let mut s = start(true).await;
    s.now = Some(1000.0);
    let v = s
        .post(
            "/v1/queues/q/recurring",
            json!({"jid": "r1", "klass": "Tick", "data": {"n": 1}, "interval": 60, "tags": ["t1"], "priority": 2}),
        )
        .await;
    assert_eq!(v, json!({"jid": "r1"}));
    let r = s.get("/v1/recurring/r1").await;
    assert_eq!(r["klass"], "Tick");
    assert_eq!(r["state"], "recur");
    assert_eq!(r["queue"], "q");
    assert_eq!(r["data"], json!({"n": 1}), "data as a JSON value");
    assert_eq!(r["interval"], 60);
    assert_eq!(r["priority"], 2);

    // list per queue
    let list = s.get("/v1/queues/q/recurring").await;
    assert_eq!(list.as_array().map(Vec::len), Some(1));
    assert_eq!(list[0]["jid"], "r1");
    assert_eq!(
        s.get("/v1/queues/q/jobs?state=recurring").await,
        json!(["r1"])
    );

    // update
    let r = s
        .expect(
            StatusCode::OK,
            Method::PATCH,
            "/v1/recurring/r1",
            Some(json!({"priority": 5, "data": ["x"], "interval": 120})),
        )
        .await;
    assert_eq!(r["priority"], 5);
    assert_eq!(r["data"], json!(["x"]));
    assert_eq!(r["interval"], 120);

    // tag / untag
    let v = s
        .post("/v1/recurring/r1/tags", json!({"tags": ["t2"]}))
        .await;
    assert_eq!(v["tags"], json!(["t1", "t2"]));
    let v = s
        .expect(
            StatusCode::OK,
            Method::DELETE,
            "/v1/recurring/r1/tags",
            Some(json!({"tags": ["t1"]})),
        )
        .await;
    assert_eq!(v["tags"], json!(["t2"]));

    // children spawn when popped in time (the first was due at 1000; the
    // interval change moved it by 120 - 60)
    s.now = Some(1059.0);
    assert!(s.pop("q", "w").await.is_empty(), "not due yet");
    s.now = Some(1061.0);
    let popped = s.pop("q", "w").await;
    assert_eq!(popped.len(), 1);
    assert_eq!(popped[0]["klass"], "Tick");
    assert_eq!(popped[0]["spawned_from_jid"], "r1");

    // bad interval is refused by the engine, naming it
    let (st, b) = s
        .call(
            Method::POST,
            "/v1/queues/q/recurring",
            Some(json!({"klass": "K", "interval": 0})),
        )
        .await;
    assert_eq!(st, StatusCode::BAD_REQUEST);
    assert_error(&b, "invalid_argument", "interval");

    // delete
    let v = s
        .expect(StatusCode::OK, Method::DELETE, "/v1/recurring/r1", None)
        .await;
    assert_eq!(v, json!({"deleted": "r1"}));
    s.expect(StatusCode::NOT_FOUND, Method::GET, "/v1/recurring/r1", None)
        .await;
    assert_eq!(s.get("/v1/queues/q/recurring").await, json!([]));
}

#[tokio::test(flavor = "multi_thread")]
async fn failed_groups_paging_and_completed_paging() {
    let s = start(true).await;
    for i in 0..3 {
        let jid = format!("f{i}");
        s.put("q", json!({"jid": jid, "klass": "K"})).await;
        s.pop("q", "w").await;
        s.post(
            &format!("/v1/jobs/{jid}/fail"),
            json!({"worker": "w", "group": "Boom", "message": "no"}),
        )
        .await;
    }
    assert_eq!(s.get("/v1/failed").await, json!({"Boom": 3}));
    let page = s.get("/v1/failed/Boom?offset=1&count=1").await;
    assert_eq!(page["total"], 3);
    assert_eq!(page["jobs"].as_array().map(Vec::len), Some(1));
    let v = s
        .post("/v1/failed/Boom/unfail", json!({"queue": "q", "count": 2}))
        .await;
    assert_eq!(v, json!({"unfailed": 2}));
    assert_eq!(s.get("/v1/failed").await, json!({"Boom": 1}));

    for i in 0..2 {
        let jid = s.pop("q", "w").await[0]["jid"]
            .as_str()
            .expect("jid")
            .to_owned();
        s.post(
            &format!("/v1/jobs/{jid}/complete"),
            json!({"worker": "w", "queue": "q"}),
        )
        .await;
        let done = s.get("/v1/completed?count=1").await;
        assert_eq!(done, json!([jid]), "newest first after {i}");
    }
    assert_eq!(
        s.get("/v1/completed").await.as_array().map(Vec::len),
        Some(2)
    );
}
