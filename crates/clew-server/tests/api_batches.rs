//! Batches as objects over HTTP (`/v1/batches`): create with jobs and a
//! callback, progress, listing, the batch's jobs, cancel, and bad input,
//! against a real server on 127.0.0.1 over a temporary SQLite store.

mod api_common;

use api_common::{assert_error, start};
use reqwest::{Method, StatusCode};
use serde_json::{json, Value};

fn body(id: &str, jids: &[&str]) -> Value {
    json!({
        "id": id,
        "description": "nightly import",
        "metadata": {"owner": "ops"},
        "callback": {"queue": "cb", "klass": "Done", "jid": format!("{id}-cb"), "data": {"x": 1}},
        "jobs": jids.iter().map(|j| json!({"queue": "q", "jid": j, "klass": "K", "data": {"n": j}})).collect::<Vec<_>>(),
    })
}

#[tokio::test]
async fn a_batch_reports_progress_and_puts_its_callback_once() {
    let s = start(false).await;
    let created = s
        .expect(
            StatusCode::CREATED,
            Method::POST,
            "/v1/batches",
            Some(body("b1", &["a", "b"])),
        )
        .await;
    assert_eq!(created["jids"], json!(["a", "b"]));
    let b = &created["batch"];
    assert_eq!(b["id"], "b1");
    assert_eq!(b["total"], 2);
    assert_eq!(b["pending"], 2);
    assert_eq!(b["description"], "nightly import");
    assert_eq!(b["metadata"], json!({"owner": "ops"}));
    assert_eq!(b["callback"]["queue"], "cb");
    assert_eq!(b["callback_jid"], Value::Null);
    assert_eq!(s.job("a").await["batch"], "b1");

    // A job joins the open batch later.
    s.put("q", json!({"jid": "c", "klass": "K", "batch": "b1"}))
        .await;
    assert_eq!(s.get("/v1/batches/b1").await["total"], 3);
    assert_eq!(
        s.get("/v1/batches/b1/jobs").await,
        json!({"total": 3, "jobs": ["a", "b", "c"]})
    );
    assert_eq!(
        s.get("/v1/batches/b1/jobs?offset=1&count=1").await["jobs"],
        json!(["b"])
    );

    let popped = s
        .post("/v1/queues/q/pop", json!({"worker": "w", "count": 3}))
        .await;
    assert_eq!(popped.as_array().expect("jobs").len(), 3);
    s.post("/v1/jobs/a/complete", json!({"worker": "w"})).await;
    s.post(
        "/v1/jobs/b/fail",
        json!({"worker": "w", "group": "G", "message": "m"}),
    )
    .await;
    let b = s.get("/v1/batches/b1").await;
    assert_eq!(
        (
            b["pending"].clone(),
            b["complete"].clone(),
            b["failed"].clone()
        ),
        (json!(1), json!(1), json!(1))
    );
    assert_eq!(b["callback_jid"], Value::Null);
    s.post("/v1/jobs/c/complete", json!({"worker": "w"})).await;
    let b = s.get("/v1/batches/b1").await;
    assert_eq!(b["pending"], 0);
    assert_eq!(b["complete"], 2);
    assert_eq!(b["failed"], 1);
    assert!(b["finished"].is_number(), "{b}");
    assert_eq!(b["callback_jid"], "b1-cb");
    assert_eq!(b["callback_state"], "waiting");
    let cb = s.job("b1-cb").await;
    assert_eq!(cb["queue"], "cb");
    assert_eq!(
        cb["data"],
        json!({"x": 1, "batch": {"id": "b1", "total": 3, "complete": 2, "failed": 1, "canceled": 0}})
    );
    // A finished batch takes no new job.
    let (status, v) = s
        .call(
            Method::POST,
            "/v1/queues/q/jobs",
            Some(json!({"jid": "late", "klass": "K", "batch": "b1"})),
        )
        .await;
    assert_eq!(status, StatusCode::CONFLICT, "{v}");
    assert_error(&v, "conflict", "has finished");
}

#[tokio::test]
async fn batches_list_newest_first_and_cancel() {
    let mut s = start(true).await;
    s.now = Some(100.0);
    s.post("/v1/batches", body("old", &["a"])).await;
    s.now = Some(200.0);
    let created = s
        .post(
            "/v1/batches",
            json!({"jobs": [{"queue": "q", "klass": "K"}, {"queue": "q", "klass": "K"}]}),
        )
        .await;
    let id = created["batch"]["id"]
        .as_str()
        .expect("generated id")
        .to_owned();
    assert_eq!(id.len(), 32, "a new id: {id}");
    let list = s.get("/v1/batches").await;
    assert_eq!(list["total"], 2);
    let ids: Vec<&str> = list["batches"]
        .as_array()
        .expect("batches")
        .iter()
        .map(|b| b["id"].as_str().expect("id"))
        .collect();
    assert_eq!(ids, [id.as_str(), "old"]);
    assert_eq!(
        s.get("/v1/batches?offset=1&count=5").await["batches"][0]["id"],
        "old"
    );

    let canceled = s.post(&format!("/v1/batches/{id}/cancel"), json!({})).await;
    assert_eq!(canceled["canceled"].as_array().expect("jids").len(), 2);
    let b = s.get(&format!("/v1/batches/{id}")).await;
    assert_eq!(b["canceled"], 2);
    assert_eq!(b["pending"], 0);
    assert_eq!(b["finished"], 200);
    assert_eq!(b["callback"], Value::Null);
}

#[tokio::test]
async fn bad_batches_are_refused_and_change_nothing() {
    let s = start(false).await;
    let cases: Vec<(Value, StatusCode, &str, &str)> = vec![
        (
            json!({"jobs": []}),
            StatusCode::BAD_REQUEST,
            "invalid_argument",
            "expected 1 to",
        ),
        (
            json!({}),
            StatusCode::BAD_REQUEST,
            "invalid_argument",
            "jobs",
        ),
        (
            json!({"jobs": [{"klass": "K"}]}),
            StatusCode::BAD_REQUEST,
            "invalid_argument",
            "jobs[0].queue",
        ),
        (
            json!({"colour": 1, "jobs": [{"queue": "q", "klass": "K"}]}),
            StatusCode::BAD_REQUEST,
            "invalid_argument",
            "colour",
        ),
        (
            json!({"callback": {"queue": "cb"}, "jobs": [{"queue": "q", "klass": "K"}]}),
            StatusCode::BAD_REQUEST,
            "invalid_argument",
            "klass",
        ),
        (
            json!({"callback": {"queue": "cb", "klass": "K", "data": [1]}, "jobs": [{"queue": "q", "klass": "K"}]}),
            StatusCode::BAD_REQUEST,
            "invalid_argument",
            "data",
        ),
        (
            json!({"callback": {"queue": "", "klass": "K"}, "jobs": [{"queue": "q", "klass": "K"}]}),
            StatusCode::BAD_REQUEST,
            "invalid_argument",
            "callback.queue",
        ),
        (
            json!({"id": "x", "jobs": [{"queue": "q", "jid": "j", "klass": "K", "delay": -1}]}),
            StatusCode::BAD_REQUEST,
            "invalid_argument",
            "delay",
        ),
    ];
    for (b, status, code, needle) in cases {
        let (st, v) = s.call(Method::POST, "/v1/batches", Some(b.clone())).await;
        assert_eq!(st, status, "{b}: {v}");
        assert_error(&v, code, needle);
    }
    assert_eq!(s.get("/v1/batches").await["total"], 0);
    let (st, _) = s.call(Method::GET, "/v1/jobs/j", None).await;
    assert_eq!(st, StatusCode::NOT_FOUND);

    s.post("/v1/batches", body("b1", &["a"])).await;
    let (st, v) = s
        .call(Method::POST, "/v1/batches", Some(body("b1", &["z"])))
        .await;
    assert_eq!(st, StatusCode::CONFLICT, "{v}");
    assert_error(&v, "conflict", "exists");
    let (st, v) = s.call(Method::GET, "/v1/batches/nope", None).await;
    assert_eq!(st, StatusCode::NOT_FOUND);
    assert_error(&v, "not_found", "nope");
    let (st, _) = s.call(Method::GET, "/v1/batches/nope/jobs", None).await;
    assert_eq!(st, StatusCode::NOT_FOUND);
    let (st, _) = s
        .call(Method::POST, "/v1/batches/nope/cancel", Some(json!({})))
        .await;
    assert_eq!(st, StatusCode::NOT_FOUND);
    let (st, v) = s.call(Method::GET, "/v1/batches?count=-1", None).await;
    assert_eq!(st, StatusCode::BAD_REQUEST);
    assert_error(&v, "invalid_argument", "count");
}
