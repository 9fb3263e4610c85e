//! The resource API's job operations, end to end against a real server.

mod api_common;

use api_common::{assert_error, start};
use reqwest::{Method, StatusCode};
use serde_json::json;

#[tokio::test(flavor = "multi_thread")]
async fn full_lifecycle_through_the_resource_api() {
    let s = start(true).await;

    // put (data as a JSON value, stored verbatim, returned as a value)
    let jid = s
        .put(
            "stage1",
            json!({"klass": "Resize", "data": {"w": 10, "tags": ["x"]}, "priority": 3, "tags": ["img"]}),
        )
        .await;
    assert_eq!(jid.len(), 32, "generated jid {jid}");
    let job = s.job(&jid).await;
    assert_eq!(job["state"], "waiting");
    assert_eq!(job["queue"], "stage1");
    assert_eq!(job["data"], json!({"w": 10, "tags": ["x"]}));
    assert_eq!(job["priority"], 3);
    assert_eq!(job["tags"], json!(["img"]));

    // pop
    let popped = s.pop("stage1", "w1").await;
    assert_eq!(popped.len(), 1);
    assert_eq!(popped[0]["jid"], jid.as_str());
    assert_eq!(popped[0]["worker"], "w1");
    assert_eq!(popped[0]["data"]["w"], 10);

    // heartbeat with new data
    let hb = s
        .post(
            &format!("/v1/jobs/{jid}/heartbeat"),
            json!({"worker": "w1", "data": {"w": 11}}),
        )
        .await;
    assert!(hb["expires"].as_i64().is_some_and(|e| e > 0), "{hb}");
    assert_eq!(s.job(&jid).await["data"], json!({"w": 11}));

    // complete into the next queue (queue and data default to the job's)
    let done = s
        .post(
            &format!("/v1/jobs/{jid}/complete"),
            json!({"worker": "w1", "next": "stage2"}),
        )
        .await;
    assert_eq!(done, json!({"jid": jid, "state": "waiting"}));
    let job = s.job(&jid).await;
    assert_eq!(job["queue"], "stage2");
    assert_eq!(job["data"], json!({"w": 11}));

    // pop from the next queue, then fail
    let popped = s.pop("stage2", "w2").await;
    assert_eq!(popped[0]["jid"], jid.as_str());
    s.post(
        &format!("/v1/jobs/{jid}/fail"),
        json!({"worker": "w2", "group": "IOError", "message": "disk full"}),
    )
    .await;
    let job = s.job(&jid).await;
    assert_eq!(job["state"], "failed");
    assert_eq!(job["failure"]["group"], "IOError");
    assert_eq!(job["failure"]["message"], "disk full");
    assert_eq!(s.get("/v1/failed").await, json!({"IOError": 1}));
    assert_eq!(
        s.get("/v1/failed/IOError").await,
        json!({"total": 1, "jobs": [jid]})
    );

    // unfail back into stage2
    let un = s
        .post("/v1/failed/IOError/unfail", json!({"queue": "stage2"}))
        .await;
    assert_eq!(un, json!({"unfailed": 1}));
    assert_eq!(s.job(&jid).await["state"], "waiting");
    assert_eq!(s.get("/v1/failed").await, json!({}));

    // pop and retry: back to waiting with one retry less
    s.pop("stage2", "w3").await;
    let before = s.job(&jid).await["remaining"].as_i64().expect("remaining");
    let r = s
        .post(
            &format!("/v1/jobs/{jid}/retry"),
            json!({"worker": "w3", "delay": 0}),
        )
        .await;
    assert_eq!(r["remaining"], before - 1);
    let job = s.job(&jid).await;
    assert_eq!(job["state"], "waiting");
    assert_eq!(job["remaining"], before - 1);

    // pop and complete for good
    s.pop("stage2", "w3").await;
    let done = s
        .post(
            &format!("/v1/jobs/{jid}/complete"),
            json!({"worker": "w3", "data": [1, 2]}),
        )
        .await;
    assert_eq!(done["state"], "complete");
    let job = s.job(&jid).await;
    assert_eq!(job["state"], "complete");
    assert_eq!(job["data"], json!([1, 2]));
    assert_eq!(s.get("/v1/completed").await, json!([jid]));

    // cancel a waiting job: it is gone (complete jobs are left alone, as
    // in qless)
    let other = s.put("stage1", json!({"klass": "K"})).await;
    let c = s
        .expect(
            StatusCode::OK,
            Method::DELETE,
            &format!("/v1/jobs/{other}"),
            None,
        )
        .await;
    assert_eq!(c, json!({"cancelled": [other]}));
    let gone = s
        .expect(
            StatusCode::NOT_FOUND,
            Method::GET,
            &format!("/v1/jobs/{other}"),
            None,
        )
        .await;
    assert_error(&gone, "not_found", &other);
    assert_eq!(s.get("/v1/queues/stage1").await["waiting"], 0);
}

#[tokio::test(flavor = "multi_thread")]
async fn put_options_jid_delay_depends_retries() {
    let s = start(true).await;
    let a = s.put("q", json!({"jid": "a", "klass": "K"})).await;
    assert_eq!(a, "a");
    // string data is a JSON string, stored verbatim
    s.put("q", json!({"jid": "s", "klass": "K", "data": "plain"}))
        .await;
    assert_eq!(s.job("s").await["data"], "plain");
    let b = s
        .put(
            "q",
            json!({"jid": "b", "klass": "K", "depends": ["a"], "retries": 2}),
        )
        .await;
    let job = s.job(&b).await;
    assert_eq!(job["state"], "depends");
    assert_eq!(job["dependencies"], json!(["a"]));
    assert_eq!(job["retries"], 2);
    s.put("q", json!({"jid": "later", "klass": "K", "delay": 60}))
        .await;
    assert_eq!(s.job("later").await["state"], "scheduled");
    assert_eq!(
        s.get("/v1/queues/q/jobs?state=scheduled").await,
        json!(["later"])
    );
    assert_eq!(s.get("/v1/queues/q/jobs?state=depends").await, json!(["b"]));

    // must_exist (qless requeue): moves an existing job, refuses a new one
    s.put("q", json!({"jid": "a", "klass": "K", "must_exist": true}))
        .await;
    let (st, b) = s
        .call(
            Method::POST,
            "/v1/queues/q/jobs",
            Some(json!({"jid": "new", "klass": "K", "must_exist": true})),
        )
        .await;
    assert_eq!(st, StatusCode::NOT_FOUND, "{b}");
    assert_error(&b, "not_found", "new");
    s.expect(StatusCode::NOT_FOUND, Method::GET, "/v1/jobs/new", None)
        .await;
}

#[tokio::test(flavor = "multi_thread")]
async fn multiget_peek_pop_count_and_cancel_many() {
    let s = start(true).await;
    for j in ["j1", "j2", "j3"] {
        s.put("q", json!({"jid": j, "klass": "K"})).await;
    }
    let many = s.get("/v1/jobs?jids=j1,nope,j3").await;
    let jids: Vec<&str> = many
        .as_array()
        .expect("array")
        .iter()
        .map(|j| j["jid"].as_str().expect("jid"))
        .collect();
    assert_eq!(jids, ["j1", "j3"]);

    let peek = s.get("/v1/queues/q/peek?count=2").await;
    assert_eq!(peek.as_array().map(Vec::len), Some(2));
    assert_eq!(s.job("j1").await["state"], "waiting", "peek takes nothing");

    let popped = s
        .post("/v1/queues/q/pop", json!({"worker": "w", "count": 2}))
        .await;
    assert_eq!(popped.as_array().map(Vec::len), Some(2));
    assert_eq!(
        s.get("/v1/queues/q/jobs?state=running")
            .await
            .as_array()
            .map(Vec::len),
        Some(2)
    );

    let c = s
        .expect(
            StatusCode::OK,
            Method::DELETE,
            "/v1/jobs?jids=j1,j2,j3",
            None,
        )
        .await;
    assert_eq!(c["cancelled"].as_array().map(Vec::len), Some(3));
    assert_eq!(s.get("/v1/jobs?jids=j1,j2,j3").await, json!([]));
}

#[tokio::test(flavor = "multi_thread")]
async fn depends_priority_timeout_log_tags_track() {
    let s = start(true).await;
    s.put("q", json!({"jid": "a", "klass": "K"})).await;
    s.put("q", json!({"jid": "b", "klass": "K"})).await;
    s.put("q", json!({"jid": "c", "klass": "K", "depends": ["a"]}))
        .await;

    // depends on / off
    let v = s.post("/v1/jobs/c/depends", json!({"jids": ["b"]})).await;
    assert_eq!(v, json!({"changed": true}));
    assert_eq!(s.job("c").await["dependencies"], json!(["a", "b"]));
    s.post("/v1/jobs/c/depends/remove", json!({"jids": ["a"]}))
        .await;
    assert_eq!(s.job("c").await["dependencies"], json!(["b"]));
    s.post("/v1/jobs/c/depends/remove", json!({"all": true}))
        .await;
    assert_eq!(s.job("c").await["state"], "waiting");

    // priority
    let v = s
        .expect(
            StatusCode::OK,
            Method::PUT,
            "/v1/jobs/b/priority",
            Some(json!({"priority": 9})),
        )
        .await;
    assert_eq!(v, json!({"priority": 9}));
    assert_eq!(s.job("b").await["priority"], 9);
    assert_eq!(
        s.pop("q", "w").await[0]["jid"],
        "b",
        "highest priority first"
    );

    // timeout: the running job becomes stalled at the front
    s.post("/v1/jobs/b/timeout", json!(null)).await;
    assert_eq!(s.job("b").await["state"], "stalled");

    // log
    s.post(
        "/v1/jobs/a/log",
        json!({"message": "checked", "data": {"by": "me"}}),
    )
    .await;
    let history = s.job("a").await["history"].clone();
    let last = history
        .as_array()
        .and_then(|h| h.last())
        .expect("history")
        .clone();
    assert_eq!(last["what"], "checked");
    assert_eq!(last["by"], "me");

    // tags add / remove, jobs by tag, top tags
    let v = s
        .post("/v1/jobs/a/tags", json!({"tags": ["red", "big"]}))
        .await;
    assert_eq!(v["tags"], json!(["red", "big"]));
    s.post("/v1/jobs/b/tags", json!({"tags": ["red"]})).await;
    let v = s
        .expect(
            StatusCode::OK,
            Method::DELETE,
            "/v1/jobs/a/tags",
            Some(json!({"tags": ["big"]})),
        )
        .await;
    assert_eq!(v["tags"], json!(["red"]));
    let page = s.get("/v1/tags/red/jobs?offset=0&count=10").await;
    assert_eq!(page["total"], 2);
    assert_eq!(page["jobs"].as_array().map(Vec::len), Some(2));
    assert_eq!(s.get("/v1/tags").await, json!(["red"]));

    // track / tracked / untrack
    let v = s
        .expect(StatusCode::OK, Method::PUT, "/v1/jobs/a/tracked", None)
        .await;
    assert_eq!(v, json!({"tracked": true}));
    assert_eq!(s.job("a").await["tracked"], true);
    let t = s.get("/v1/tracked").await;
    assert_eq!(t["jobs"][0]["jid"], "a");
    assert_eq!(t["expired"], json!([]));
    s.expect(StatusCode::OK, Method::DELETE, "/v1/jobs/a/tracked", None)
        .await;
    assert_eq!(s.get("/v1/tracked").await["jobs"], json!([]));
}

#[tokio::test(flavor = "multi_thread")]
async fn x_clew_now_is_honoured_in_test_mode() {
    let mut s = start(true).await;
    s.now = Some(1000.5);
    let jid = s.put("q", json!({"klass": "K"})).await;
    let job = s.job(&jid).await;
    assert_eq!(job["history"][0]["what"], "put");
    assert_eq!(job["history"][0]["when"], 1000);
    s.now = Some(2000.0);
    s.pop("q", "w").await;
    let job = s.job(&jid).await;
    assert_eq!(job["history"][1]["when"], 2000);
    // the lock runs from the request's time (default heartbeat 60 s)
    let expires = job["expires"].as_f64().expect("expires");
    assert!(
        (2000.0..2000.0 + 3600.0).contains(&expires),
        "expires {expires}"
    );

    // a bad header value is refused, naming the header
    let resp = s
        .http
        .get(format!("{}/v1/jobs/{jid}", s.base))
        .header("x-clew-now", "yesterday")
        .send()
        .await
        .expect("sent");
    assert_eq!(resp.status(), StatusCode::BAD_REQUEST);
    let body: serde_json::Value = resp.json().await.expect("json");
    assert_error(&body, "invalid_argument", "X-Clew-Now");
}

#[tokio::test(flavor = "multi_thread")]
async fn x_clew_now_is_ignored_outside_test_mode() {
    let mut s = start(false).await;
    s.now = Some(1000.0);
    let jid = s.put("q", json!({"klass": "K"})).await;
    let when = s.job(&jid).await["history"][0]["when"]
        .as_i64()
        .expect("when");
    let wall = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .expect("clock after 1970")
        .as_secs() as i64;
    assert!(
        (wall - when).abs() < 60,
        "put at server time {when}, wall {wall}"
    );
}
