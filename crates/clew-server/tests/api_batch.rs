//! Many jobs in one call: `POST /v1/batch/put` (put, all or none),
//! `POST /v1/batch/complete` and `POST /v1/batch/fail` (each on its own),
//! end to end against a real server on 127.0.0.1; and the Rust client's
//! `put_many`/`complete_many` against that server over HTTP.
//!
//! The store under the server counts the commands it runs, so a test can
//! see that a call of many jobs is one command (one transaction).

use std::sync::{Arc, Mutex};

use async_trait::async_trait;
use clew_core::command::{CompleteParams, PutParams};
use clew_core::event::EventSink;
use clew_core::store::LeaderGuard;
use clew_core::{Command, Engine, Event, Origin, Reply, Store, Timestamp};
use clew_server::{AppState, ServerConfig};
use reqwest::{Method, StatusCode};
use serde_json::{json, Value};
use tokio::sync::oneshot;

const TOKEN: &str = "batch-token";

/// A store that records the name of every command it is asked to run,
/// then runs it on the SQLite store inside.
#[derive(Debug)]
struct CountingStore {
    inner: Arc<dyn Store>,
    commands: Arc<Mutex<Vec<&'static str>>>,
}

#[async_trait]
impl Store for CountingStore {
    async fn execute_from(
        &self,
        now: Timestamp,
        origin: Origin,
        command: Command,
        sink: Arc<dyn EventSink>,
    ) -> clew_core::Result<Reply> {
        self.commands.lock().expect("lock").push(command.name());
        self.inner.execute_from(now, origin, command, sink).await
    }

    async fn events_after(&self, after: i64, limit: i64) -> clew_core::Result<Vec<Event>> {
        self.inner.events_after(after, limit).await
    }

    async fn flush(&self) -> clew_core::Result<()> {
        self.inner.flush().await
    }

    fn subscribe_commits(&self) -> Option<tokio::sync::watch::Receiver<i64>> {
        self.inner.subscribe_commits()
    }

    async fn close(&self) -> clew_core::Result<()> {
        self.inner.close().await
    }

    async fn try_lead(&self, name: &str) -> clew_core::Result<Option<LeaderGuard>> {
        self.inner.try_lead(name).await
    }
}

/// A running server over a counting SQLite store.
struct Server {
    base: String,
    http: reqwest::Client,
    /// Sent as `Authorization: Bearer` when set.
    token: Option<String>,
    commands: Arc<Mutex<Vec<&'static str>>>,
    _dir: tempfile::TempDir,
    _stop: oneshot::Sender<()>,
}

async fn start(config: ServerConfig) -> Server {
    let (sqlite, dir) = clew_sqlite::testing::temp_store();
    let commands = Arc::new(Mutex::new(Vec::new()));
    let store = CountingStore {
        inner: sqlite,
        commands: commands.clone(),
    };
    let state = AppState::new(Engine::new(Arc::new(store)), config);
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind 127.0.0.1:0");
    let addr = listener.local_addr().expect("local addr");
    let (stop, stopped) = oneshot::channel::<()>();
    tokio::spawn(async move {
        let _ = clew_server::serve(listener, state, async {
            let _ = stopped.await;
        })
        .await;
    });
    Server {
        base: format!("http://{addr}"),
        http: reqwest::Client::new(),
        token: None,
        commands,
        _dir: dir,
        _stop: stop,
    }
}

impl Server {
    /// Sends a request (JSON body if any); the status and the JSON answer.
    async fn call(&self, method: Method, path: &str, body: Option<&Value>) -> (StatusCode, Value) {
        let mut req = self.http.request(method, format!("{}{path}", self.base));
        if let Some(t) = &self.token {
            req = req.bearer_auth(t);
        }
        if let Some(b) = body {
            req = req.json(b);
        }
        let resp = req.send().await.expect("request sent");
        let status = resp.status();
        let text = resp.text().await.expect("body read");
        let json = serde_json::from_str(&text)
            .unwrap_or_else(|e| panic!("non-JSON answer {status} {text:?}: {e}"));
        (status, json)
    }

    /// POST expecting `status`; the answer.
    async fn post(&self, status: StatusCode, path: &str, body: Value) -> Value {
        let (s, v) = self.call(Method::POST, path, Some(&body)).await;
        assert_eq!(s, status, "POST {path}: {v}");
        v
    }

    /// GET expecting 200.
    async fn get(&self, path: &str) -> Value {
        let (s, v) = self.call(Method::GET, path, None).await;
        assert_eq!(s, StatusCode::OK, "GET {path}: {v}");
        v
    }

    /// Pops up to `count` jobs of `queue` for `worker`; their jids.
    async fn pop(&self, queue: &str, worker: &str, count: i64) -> Vec<String> {
        let v = self
            .post(
                StatusCode::OK,
                &format!("/v1/queues/{queue}/pop"),
                json!({"worker": worker, "count": count}),
            )
            .await;
        v.as_array()
            .expect("pop answers an array")
            .iter()
            .map(|j| j["jid"].as_str().expect("jid").to_owned())
            .collect()
    }

    /// The names of the commands the store ran since the last call.
    fn take_commands(&self) -> Vec<&'static str> {
        std::mem::take(&mut *self.commands.lock().expect("lock"))
    }

    /// The queues the server knows (none until a job is put).
    async fn queues(&self) -> Value {
        self.get("/v1/queues").await
    }
}

/// Asserts an error answer: its code, and that its message mentions each
/// of `needles`.
fn assert_error(body: &Value, code: &str, needles: &[&str]) {
    assert_eq!(body["error"]["code"], code, "error code in {body}");
    let msg = body["error"]["message"].as_str().unwrap_or("");
    assert!(!msg.is_empty(), "an error message in {body}");
    for needle in needles {
        assert!(
            msg.contains(needle),
            "error message {msg:?} should mention {needle:?}"
        );
    }
}

fn no_token() -> ServerConfig {
    ServerConfig::default()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_hundred_jobs_are_put_by_one_command_with_their_fields() {
    let s = start(no_token()).await;
    let jobs: Vec<Value> = (0..100)
        .map(|i| {
            let mut job = json!({
                "queue": if i % 2 == 0 { "even" } else { "odd" },
                "klass": format!("K{}", i % 3),
                "data": {"i": i, "name": format!("job {i}")},
                "priority": i % 5,
                "tags": [format!("t{}", i % 4)],
                "retries": 3,
                "metadata": {"batch": "b1"},
            });
            if i % 10 == 0 {
                job["jid"] = json!(format!("given-{i}"));
            }
            if i == 99 {
                job["delay"] = json!(3600);
            }
            job
        })
        .collect();
    s.take_commands();
    let answer = s
        .post(StatusCode::CREATED, "/v1/batch/put", json!({"jobs": jobs}))
        .await;
    assert_eq!(
        s.take_commands(),
        vec!["batch"],
        "one store command for the hundred puts"
    );
    let jids: Vec<String> = answer["jids"]
        .as_array()
        .expect("jids")
        .iter()
        .map(|j| j.as_str().expect("jid").to_owned())
        .collect();
    assert_eq!(jids.len(), 100);
    for (i, jid) in jids.iter().enumerate() {
        if i % 10 == 0 {
            assert_eq!(jid, &format!("given-{i}"), "jids in the request's order");
        } else {
            assert_eq!(jid.len(), 32, "generated jid {jid}");
        }
    }

    let mut put_times = Vec::new();
    for (i, jid) in jids.iter().enumerate() {
        let job = s.get(&format!("/v1/jobs/{jid}")).await;
        assert_eq!(job["queue"], if i % 2 == 0 { "even" } else { "odd" });
        assert_eq!(job["klass"], format!("K{}", i % 3));
        assert_eq!(job["data"], json!({"i": i, "name": format!("job {i}")}));
        assert_eq!(job["priority"], i % 5);
        assert_eq!(job["tags"], json!([format!("t{}", i % 4)]));
        assert_eq!(
            (job["retries"].as_i64(), job["remaining"].as_i64()),
            (Some(3), Some(3))
        );
        let expected_state = if i == 99 { "scheduled" } else { "waiting" };
        assert_eq!(job["state"], expected_state, "job {i}");
        let put = &job["history"][0];
        assert_eq!(put["what"], "put");
        put_times.push(put["when"].clone());
    }
    assert!(
        put_times.iter().all(|t| *t == put_times[0]),
        "all put at one time: {put_times:?}"
    );
    let queues = s.queues().await;
    let waiting: i64 = queues
        .as_array()
        .expect("queues")
        .iter()
        .map(|q| q["waiting"].as_i64().expect("waiting"))
        .sum();
    assert_eq!(waiting, 99);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_bad_job_refuses_the_whole_put_and_is_named() {
    let s = start(no_token()).await;
    let good = |i: i64| json!({"queue": "q", "klass": "K", "data": {"i": i}});
    let with_bad =
        |bad: Value| -> Value { json!({"jobs": [good(0), good(1), good(2), bad, good(4)]}) };
    // Each refused before the store runs anything, naming jobs[3].
    let cases: Vec<(Value, &str, Vec<&str>)> = vec![
        (
            json!({"queue": "q"}),
            "invalid_argument",
            vec!["jobs[3]", "klass"],
        ),
        (
            json!({"queue": "q", "klass": ""}),
            "invalid_argument",
            vec!["jobs[3]", "klass"],
        ),
        (
            json!({"queue": "q", "klass": "K", "priority": "high"}),
            "invalid_argument",
            vec!["jobs[3].priority"],
        ),
        (
            json!({"queue": "q", "klass": "K", "colour": "red"}),
            "invalid_argument",
            vec!["jobs[3]", "colour"],
        ),
        (
            json!({"klass": "K"}),
            "invalid_argument",
            vec!["jobs[3].queue"],
        ),
        (
            json!({"queue": "q", "klass": "K", "delay": -1}),
            "invalid_argument",
            vec!["jobs[3]", "delay"],
        ),
        (
            json!({"queue": "q", "klass": "K", "jid": "j", "depends": ["j"]}),
            "invalid_argument",
            vec!["jobs[3]", "depends"],
        ),
    ];
    for (bad, code, needles) in cases {
        let (status, body) = s
            .call(Method::POST, "/v1/batch/put", Some(&with_bad(bad.clone())))
            .await;
        assert_eq!(status, StatusCode::BAD_REQUEST, "{bad}: {body}");
        assert_error(&body, code, &needles);
        assert!(s.take_commands().is_empty(), "{bad}: the store ran nothing");
    }

    // The same jid twice in one call.
    let dup = json!({"jobs": [
        {"queue": "q", "klass": "K", "jid": "a"},
        {"queue": "q", "klass": "K", "jid": "b"},
        {"queue": "q", "klass": "K", "jid": "a"},
    ]});
    let body = s.post(StatusCode::BAD_REQUEST, "/v1/batch/put", dup).await;
    assert_error(&body, "invalid_argument", &["jobs[2].jid", "jobs[0]"]);

    // Refused by the store in the middle (a requeue of a missing job): the
    // batch ran and was rolled back, and the answer names the job.
    let body = s
        .post(
            StatusCode::NOT_FOUND,
            "/v1/batch/put",
            json!({"jobs": [
                good(0),
                good(1),
                {"queue": "q", "klass": "K", "jid": "missing", "must_exist": true},
                good(3),
            ]}),
        )
        .await;
    assert_error(&body, "not_found", &["jobs[2]", "missing"]);
    assert_eq!(s.take_commands(), vec!["batch"]);

    assert_eq!(s.queues().await, json!([]), "nothing was put");
    assert_eq!(
        s.get("/v1/jobs?jids=a,b,missing").await,
        json!([]),
        "no job exists"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn complete_many_completes_each_on_its_own() {
    let s = start(no_token()).await;
    let put = s
        .post(
            StatusCode::CREATED,
            "/v1/batch/put",
            json!({"jobs": (0..5).map(|i| json!({"queue": "q", "klass": "K", "data": {"i": i}})).collect::<Vec<_>>()}),
        )
        .await;
    let jids: Vec<String> = serde_json::from_value(put["jids"].clone()).expect("jids");
    assert_eq!(s.pop("q", "w1", 2).await, jids[0..2]);
    assert_eq!(s.pop("q", "w2", 1).await, jids[2..3]);
    assert_eq!(s.pop("q", "w1", 2).await, jids[3..5]);

    s.take_commands();
    let answer = s
        .post(
            StatusCode::OK,
            "/v1/batch/complete",
            json!({"worker": "w1", "jobs": [
                {"jid": jids[0]},
                {"jid": jids[1], "data": {"done": true}},
                {"jid": jids[2]},
                {"jid": "no-such-job"},
                {"jid": ""},
                {"jid": jids[3], "next": "q2"},
                {"jid": jids[4], "queue": "q", "data": {"i": 4}, "metadata": {"k": "v"}},
            ]}),
        )
        .await;
    // One read of the jobs whose queue or payload default to theirs, one
    // batch for the completions.
    assert_eq!(s.take_commands(), vec!["multiget", "batch"]);
    let results = answer["results"].as_array().expect("results");
    assert_eq!(results.len(), 7);
    assert_eq!(results[0], json!({"jid": jids[0], "state": "complete"}));
    assert_eq!(results[1], json!({"jid": jids[1], "state": "complete"}));
    assert_eq!(results[2]["jid"], jids[2].as_str());
    assert!(results[2].get("state").is_none(), "{}", results[2]);
    assert_error(&results[2], "conflict", &[jids[2].as_str()]);
    assert_eq!(results[3]["jid"], "no-such-job");
    assert_eq!(results[3]["error"]["code"], "not_found");
    assert_eq!(results[4]["jid"], "");
    assert_eq!(results[4]["error"]["code"], "invalid_argument");
    assert_eq!(results[5], json!({"jid": jids[3], "state": "waiting"}));
    assert_eq!(results[6], json!({"jid": jids[4], "state": "complete"}));

    let paths: Vec<String> = jids.iter().map(|j| format!("/v1/jobs/{j}")).collect();
    let job = |i: usize| s.get(&paths[i]);
    assert_eq!(job(0).await["state"], "complete");
    assert_eq!(job(0).await["data"], json!({"i": 0}));
    assert_eq!(job(1).await["data"], json!({"done": true}));
    let held = job(2).await;
    assert_eq!(
        (held["state"].as_str(), held["worker"].as_str()),
        (Some("running"), Some("w2"))
    );
    let moved = job(3).await;
    assert_eq!(
        (moved["state"].as_str(), moved["queue"].as_str()),
        (Some("waiting"), Some("q2"))
    );
    assert_eq!(job(4).await["state"], "complete");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn fail_many_fails_each_on_its_own() {
    let s = start(no_token()).await;
    let put = s
        .post(
            StatusCode::CREATED,
            "/v1/batch/put",
            json!({"jobs": (0..3).map(|i| json!({"queue": "q", "klass": "K", "data": {"i": i}})).collect::<Vec<_>>()}),
        )
        .await;
    let jids: Vec<String> = serde_json::from_value(put["jids"].clone()).expect("jids");
    assert_eq!(s.pop("q", "w1", 2).await, jids[0..2]);

    s.take_commands();
    let answer = s
        .post(
            StatusCode::OK,
            "/v1/batch/fail",
            json!({"worker": "w1", "jobs": [
                {"jid": jids[0], "group": "IOError", "message": "disk full"},
                {"jid": jids[2], "group": "IOError", "message": "never popped"},
                {"jid": jids[1], "group": "Timeout", "message": "slow", "data": {"why": "x"}},
            ]}),
        )
        .await;
    assert_eq!(s.take_commands(), vec!["batch"]);
    let results = answer["results"].as_array().expect("results");
    assert_eq!(results[0], json!({"jid": jids[0], "state": "failed"}));
    assert_eq!(results[1]["jid"], jids[2].as_str());
    assert_eq!(results[1]["error"]["code"], "conflict", "{}", results[1]);
    assert_eq!(results[2], json!({"jid": jids[1], "state": "failed"}));

    assert_eq!(
        s.get("/v1/failed").await,
        json!({"IOError": 1, "Timeout": 1})
    );
    let failed = s.get(&format!("/v1/jobs/{}", jids[1])).await;
    assert_eq!(failed["failure"]["message"], "slow");
    assert_eq!(failed["data"], json!({"why": "x"}));
    assert_eq!(
        s.get(&format!("/v1/jobs/{}", jids[2])).await["state"],
        "waiting"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn limits_and_malformed_bodies_are_refused_with_400() {
    let s = start(no_token()).await;
    let too_many_puts: Vec<Value> = (0..10_001)
        .map(|_| json!({"queue": "q", "klass": "K"}))
        .collect();
    let too_many_jids: Vec<Value> = (0..10_001)
        .map(|i| json!({"jid": format!("j{i}"), "group": "g", "message": "m"}))
        .collect();
    let too_many_completes: Vec<Value> = (0..10_001)
        .map(|i| json!({"jid": format!("j{i}")}))
        .collect();
    let cases = [
        ("/v1/batch/put", json!({"jobs": []}), "got 0"),
        ("/v1/batch/put", json!({"jobs": too_many_puts}), "10000"),
        (
            "/v1/batch/complete",
            json!({"worker": "w", "jobs": []}),
            "got 0",
        ),
        (
            "/v1/batch/complete",
            json!({"worker": "w", "jobs": too_many_completes}),
            "10000",
        ),
        (
            "/v1/batch/fail",
            json!({"worker": "w", "jobs": []}),
            "got 0",
        ),
        (
            "/v1/batch/fail",
            json!({"worker": "w", "jobs": too_many_jids}),
            "10000",
        ),
        ("/v1/batch/put", json!({"job": []}), "jobs"),
        (
            "/v1/batch/complete",
            json!({"jobs": [{"jid": "j"}]}),
            "worker",
        ),
        (
            "/v1/batch/fail",
            json!({"worker": "w", "jobs": [{"jid": "j", "group": "g"}]}),
            "jobs[0]",
        ),
    ];
    for (path, body, needle) in cases {
        let (status, answer) = s.call(Method::POST, path, Some(&body)).await;
        assert_eq!(status, StatusCode::BAD_REQUEST, "{path}: {answer}");
        assert_error(&answer, "invalid_argument", &[needle]);
    }
    for path in ["/v1/batch/put", "/v1/batch/complete", "/v1/batch/fail"] {
        let resp = s
            .http
            .post(format!("{}{path}", s.base))
            .header("content-type", "application/json")
            .body("{\"jobs\": [")
            .send()
            .await
            .expect("request sent");
        assert_eq!(resp.status(), StatusCode::BAD_REQUEST, "{path}");
        let answer: Value = resp.json().await.expect("JSON answer");
        assert_error(&answer, "invalid_argument", &["request body"]);
    }
    assert!(s.take_commands().is_empty(), "the store ran nothing");
    assert_eq!(s.queues().await, json!([]));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_routes_need_the_token_when_the_server_has_one() {
    let mut s = start(ServerConfig {
        token: Some(TOKEN.to_owned()),
        ..ServerConfig::default()
    })
    .await;
    let calls = [
        (
            "/v1/batch/put",
            json!({"jobs": [{"queue": "q", "klass": "K", "jid": "j1"}]}),
        ),
        (
            "/v1/batch/complete",
            json!({"worker": "w", "jobs": [{"jid": "j1", "queue": "q", "data": {}}]}),
        ),
        (
            "/v1/batch/fail",
            json!({"worker": "w", "jobs": [{"jid": "j1", "group": "g", "message": "m"}]}),
        ),
    ];
    for token in [None, Some("wrong".to_owned())] {
        s.token = token;
        for (path, body) in &calls {
            let (status, answer) = s.call(Method::POST, path, Some(body)).await;
            assert_eq!(status, StatusCode::UNAUTHORIZED, "{path}: {answer}");
            assert_eq!(answer["error"]["code"], "unauthorized");
        }
    }
    assert!(s.take_commands().is_empty(), "refused calls ran nothing");

    s.token = Some(TOKEN.to_owned());
    let put = s
        .post(StatusCode::CREATED, calls[0].0, calls[0].1.clone())
        .await;
    assert_eq!(put, json!({"jids": ["j1"]}));
    for (path, body) in &calls[1..] {
        let answer = s.post(StatusCode::OK, path, body.clone()).await;
        // Not popped: refused per job, but the call itself is accepted.
        assert_eq!(
            answer["results"][0]["error"]["code"], "conflict",
            "{answer}"
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_rust_client_puts_and_completes_many_over_http() {
    let s = start(no_token()).await;
    let client = clew_client::Client::remote(&s.base, None).expect("remote client");
    assert!(client.is_remote());

    let jobs: Vec<PutParams> = (0..4)
        .map(|i| {
            let mut p = PutParams::new("rq", "K");
            p.data = json!({"i": i}).to_string();
            if i == 0 {
                p.jid = "first".to_owned();
            }
            p
        })
        .collect();
    s.take_commands();
    let jids = client.put_many(jobs).await.expect("put_many");
    assert_eq!(s.take_commands(), vec!["batch"], "one command over HTTP");
    assert_eq!(jids.len(), 4);
    assert_eq!(jids[0], "first");
    for (i, jid) in jids.iter().enumerate() {
        let job = s.get(&format!("/v1/jobs/{jid}")).await;
        assert_eq!(job["data"], json!({"i": i}));
        assert_eq!(job["queue"], "rq");
    }

    // An atomic refusal comes back as the call's error, nothing put.
    let mut bad = PutParams::new("rq", "K");
    bad.jid = "ghost".to_owned();
    bad.must_exist = true;
    let err = client
        .put_many(vec![PutParams::new("rq", "K"), bad])
        .await
        .expect_err("requeue of a missing job");
    assert_eq!(err.kind(), clew_core::ErrorKind::NotFound, "{err}");
    assert_eq!(
        s.get("/v1/queues/rq").await["waiting"],
        4,
        "nothing more put"
    );

    assert_eq!(s.pop("rq", "w1", 3).await, jids[0..3]);
    assert_eq!(s.pop("rq", "w2", 1).await, jids[3..4]);
    let done = |jid: &str| CompleteParams {
        jid: jid.to_owned(),
        worker: "w1".to_owned(),
        queue: "rq".to_owned(),
        data: "{\"done\":true}".to_owned(),
        next: None,
        delay: 0.0,
        depends: Vec::new(),
        metadata: None,
    };
    let results = client
        .complete_many(jids.iter().map(|j| done(j)).collect())
        .await
        .expect("complete_many");
    assert_eq!(results.len(), 4);
    for r in &results[0..3] {
        assert_eq!(r.as_deref().expect("completed"), "complete");
    }
    let refused = results[3].as_ref().expect_err("held by w2");
    assert_eq!(refused.kind(), clew_core::ErrorKind::Conflict, "{refused}");
    assert_eq!(
        s.get(&format!("/v1/jobs/{}", jids[3])).await["state"],
        "running"
    );
    assert_eq!(
        s.get(&format!("/v1/jobs/{}", jids[0])).await["data"],
        json!({"done": true})
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_single_routes_share_the_batch_items_fields() {
    let s = start(no_token()).await;
    // A put's body may repeat its path's queue, not name another.
    let body = s
        .post(
            StatusCode::BAD_REQUEST,
            "/v1/queues/q/jobs",
            json!({"queue": "other", "klass": "K"}),
        )
        .await;
    assert_error(&body, "invalid_argument", &["queue", "other"]);
    let put = s
        .post(
            StatusCode::CREATED,
            "/v1/queues/q/jobs",
            json!({"queue": "q", "klass": "K", "jid": "j1"}),
        )
        .await;
    assert_eq!(put, json!({"jid": "j1"}));
    // Complete and fail take metadata, as their batch items do.
    s.post(
        StatusCode::CREATED,
        "/v1/queues/q/jobs",
        json!({"klass": "K", "jid": "j2"}),
    )
    .await;
    assert_eq!(s.pop("q", "w", 2).await, ["j1", "j2"]);
    let done = s
        .post(
            StatusCode::OK,
            "/v1/jobs/j1/complete",
            json!({"worker": "w", "metadata": {"k": "v"}}),
        )
        .await;
    assert_eq!(done, json!({"jid": "j1", "state": "complete"}));
    let failed = s
        .post(
            StatusCode::OK,
            "/v1/jobs/j2/fail",
            json!({"worker": "w", "group": "g", "message": "m", "metadata": {"k": "v"}}),
        )
        .await;
    assert_eq!(failed, json!({"jid": "j2"}));
}

/// The batch routes live under `/v1/batch/`, so jobs whose jid is `batch`,
/// `put`, `complete` or `fail` stay reachable at `/v1/jobs/{jid}`.
#[tokio::test]
async fn jids_named_like_the_batch_routes_stay_reachable() {
    let s = start(no_token()).await;
    let names = ["batch", "put", "complete", "fail"];
    let jobs: Vec<Value> = names
        .iter()
        .map(|jid| json!({"queue": "q", "klass": "K", "jid": jid}))
        .collect();
    s.post(StatusCode::CREATED, "/v1/batch/put", json!({"jobs": jobs}))
        .await;
    for jid in names {
        let job = s.get(&format!("/v1/jobs/{jid}")).await;
        assert_eq!(job["jid"], json!(jid), "{job}");
    }
    let (status, body) = s.call(Method::DELETE, "/v1/jobs/complete", None).await;
    assert!(status.is_success(), "{status} {body}");
}
