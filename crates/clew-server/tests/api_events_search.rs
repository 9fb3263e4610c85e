//! `GET /v1/events/search` and `GET /v1/events/stats` against a real server
//! over a seeded history whose figures are computed by hand.
//!
//! The history (seconds; every job has metadata `strategy` except `j4`):
//!
//! | job | queue | class  | strategy | put | pop | end        | in queue | perform |
//! |-----|-------|--------|----------|-----|-----|------------|----------|---------|
//! | j1  | pdf   | Render | chrome   | 100 | 101 | 103 done   | 1        | 2       |
//! | j2  | pdf   | Render | wk       | 101 | 105 | 115 done   | 4        | 10      |
//! | j3  | pdf   | Render | chrome   | 102 | 112 | 113 failed | 10       | 1       |
//! | j4  | mail  | Mail   | -        | 100 | 102 | 105 done   | 2        | 3       |
//!
//! Each job has four events (enqueued, dequeued, perform_started, and
//! perform_finished or failed): 16 in all.

use std::sync::Arc;

use clew_core::command::{CompleteParams, PutParams};
use clew_core::{Command, Engine, Timestamp};
use clew_server::{AppState, ServerConfig};
use serde_json::{json, Map, Value};
use tempfile::TempDir;
use tokio::sync::oneshot;

const T0: i64 = 1_700_000_000;

fn at(s: f64) -> Timestamp {
    Timestamp::from_secs(T0).add_secs(s)
}

struct Server {
    base: String,
    http: reqwest::Client,
    _dir: TempDir,
    _stop: oneshot::Sender<()>,
}

impl Server {
    async fn call(&self, path: &str) -> (reqwest::StatusCode, Value) {
        let resp = self
            .http
            .get(format!("{}{}", self.base, path))
            .send()
            .await
            .expect("request sent");
        let status = resp.status();
        (status, resp.json().await.expect("JSON body"))
    }

    async fn get(&self, path: &str) -> Value {
        let (s, v) = self.call(path).await;
        assert_eq!(s, reqwest::StatusCode::OK, "GET {path}: {v}");
        v
    }

    async fn prune(&self, now: f64, body: Value) -> (reqwest::StatusCode, Value) {
        let resp = self
            .http
            .post(format!("{}/v1/events/prune", self.base))
            .header("x-clew-now", now.to_string())
            .json(&body)
            .send()
            .await
            .expect("request sent");
        let status = resp.status();
        (status, resp.json().await.expect("JSON body"))
    }

    async fn refused(&self, path: &str, needle: &str) {
        let (s, v) = self.call(path).await;
        assert_eq!(s, reqwest::StatusCode::BAD_REQUEST, "GET {path}: {v}");
        assert_eq!(v["error"]["code"], "invalid_argument", "{v}");
        let msg = v["error"]["message"].as_str().unwrap_or("");
        assert!(msg.contains(needle), "{msg:?} should mention {needle:?}");
    }
}

async fn put(e: &Engine, t: f64, jid: &str, queue: &str, klass: &str, strategy: Option<&str>) {
    let mut p = PutParams::new(queue, klass);
    p.jid = jid.to_owned();
    p.data = format!("{{\"n\":\"{jid}\"}}");
    if let Some(s) = strategy {
        let mut m = Map::new();
        m.insert("pdf_generation_strategy".into(), json!(s));
        p.metadata = Some(m);
    }
    e.execute_at(at(t), Command::Put(p)).await.expect("put");
}

async fn pop(e: &Engine, t: f64, queue: &str, jid: &str) {
    let reply = e
        .execute_at(
            at(t),
            Command::Pop {
                queue: queue.into(),
                worker: "w".into(),
                count: 1,
            },
        )
        .await
        .expect("pop");
    assert!(reply.to_json().to_string().contains(jid), "popped {jid}");
}

async fn complete(e: &Engine, t: f64, queue: &str, jid: &str) {
    let p = CompleteParams {
        jid: jid.into(),
        worker: "w".into(),
        queue: queue.into(),
        data: "{}".into(),
        next: None,
        delay: 0.0,
        depends: vec![],
        metadata: None,
    };
    e.execute_at(at(t), Command::Complete(p))
        .await
        .expect("complete");
}

/// Starts a server over a store holding the history of the module doc.
async fn seeded() -> Server {
    seeded_with_engine().await.0
}

/// Like [`seeded`], in test mode, also returning the engine.
async fn seeded_with_engine() -> (Server, Engine) {
    let (store, dir) = clew_sqlite::testing::temp_store();
    let engine = Engine::new(store as Arc<dyn clew_core::Store>);
    let e = &engine;
    put(e, 100.0, "j1", "pdf", "Render", Some("chrome")).await;
    put(e, 100.0, "j4", "mail", "Mail", None).await;
    put(e, 101.0, "j2", "pdf", "Render", Some("wk")).await;
    pop(e, 101.0, "pdf", "j1").await;
    put(e, 102.0, "j3", "pdf", "Render", Some("chrome")).await;
    pop(e, 102.0, "mail", "j4").await;
    complete(e, 103.0, "pdf", "j1").await;
    pop(e, 105.0, "pdf", "j2").await;
    complete(e, 105.0, "mail", "j4").await;
    pop(e, 112.0, "pdf", "j3").await;
    e.execute_at(
        at(113.0),
        Command::Fail {
            jid: "j3".into(),
            worker: "w".into(),
            group: "Boom".into(),
            message: "it broke".into(),
            data: None,
            metadata: None,
        },
    )
    .await
    .expect("fail");
    complete(e, 115.0, "pdf", "j2").await;

    let kept = engine.clone();
    let config = ServerConfig {
        test_mode: true,
        ..ServerConfig::default()
    };
    let state = AppState::new(engine, config);
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
    let server = Server {
        base: format!("http://{addr}"),
        http: reqwest::Client::new(),
        _dir: dir,
        _stop: stop,
    };
    (server, kept)
}

fn field(events: &Value, name: &str) -> Vec<Value> {
    events["events"]
        .as_array()
        .expect("events array")
        .iter()
        .map(|e| e[name].clone())
        .collect()
}

fn secs(s: f64) -> f64 {
    (T0 as f64) + s
}

#[tokio::test(flavor = "multi_thread")]
async fn search_filters_and_pages() {
    let s = seeded().await;
    let all = s.get("/v1/events/search?limit=100").await;
    assert_eq!(field(&all, "seq").len(), 16);
    assert_eq!(all["next"], Value::Null);

    // Every filter on its own.
    let deq = s.get("/v1/events/search?type=dequeued&queue=pdf").await;
    assert_eq!(
        field(&deq, "jid"),
        vec![json!("j1"), json!("j2"), json!("j3")]
    );
    assert_eq!(
        field(&deq, "time_in_queue"),
        vec![json!(1.0), json!(4.0), json!(10.0)]
    );
    let failed = s
        .get("/v1/events/search?meta=pdf_generation_strategy:chrome&type=failed")
        .await;
    assert_eq!(field(&failed, "jid"), vec![json!("j3")]);
    let f = &failed["events"][0];
    assert_eq!(f["event_type"], "failed");
    assert_eq!(f["klass"], "Render");
    assert_eq!(f["timestamp"], json!(secs(113.0)));
    assert_eq!(f["time_to_perform"], json!(1.0));
    assert_eq!(f["error"]["class"], "Boom");
    assert_eq!(f["error"]["message"], "it broke");
    assert_eq!(f["args"], json!({"n": "j3"}));
    assert_eq!(f["metadata"], json!({"pdf_generation_strategy": "chrome"}));
    assert!(f["origin"]["hostname"].is_string());
    let j4 = s.get("/v1/events/search?jid=j4").await;
    assert_eq!(
        field(&j4, "event_type"),
        vec![
            json!("enqueued"),
            json!("dequeued"),
            json!("perform_started"),
            json!("perform_finished")
        ]
    );
    let mail = s.get("/v1/events/search?klass=Mail").await;
    assert_eq!(field(&mail, "jid").len(), 4);
    // Two metadata criteria must both hold.
    let none = s
        .get(
            "/v1/events/search?meta=pdf_generation_strategy:chrome&meta=pdf_generation_strategy:wk",
        )
        .await;
    assert_eq!(field(&none, "jid").len(), 0);

    // Time range: since inclusive, until exclusive.
    let range = s
        .get(&format!(
            "/v1/events/search?since={}&until={}",
            secs(103.0),
            secs(113.0)
        ))
        .await;
    assert_eq!(
        field(&range, "event_type"),
        vec![
            json!("perform_finished"),
            json!("dequeued"),
            json!("perform_started"),
            json!("perform_finished"),
            json!("dequeued"),
            json!("perform_started"),
        ]
    );
    assert_eq!(
        field(&range, "jid"),
        vec![
            json!("j1"),
            json!("j2"),
            json!("j2"),
            json!("j4"),
            json!("j3"),
            json!("j3")
        ]
    );

    // Paging oldest first by seq, then newest first.
    let seqs = field(&all, "seq");
    let p1 = s.get("/v1/events/search?limit=10").await;
    assert_eq!(field(&p1, "seq"), seqs[..10].to_vec());
    assert_eq!(p1["next"], seqs[9]);
    let p2 = s
        .get(&format!("/v1/events/search?limit=10&after={}", seqs[9]))
        .await;
    assert_eq!(field(&p2, "seq"), seqs[10..].to_vec());
    assert_eq!(p2["next"], Value::Null);
    let d1 = s.get("/v1/events/search?order=desc&limit=3").await;
    assert_eq!(
        field(&d1, "jid"),
        vec![json!("j2"), json!("j3"), json!("j3")]
    );
    let d2 = s
        .get(&format!(
            "/v1/events/search?order=desc&limit=3&before={}",
            d1["next"]
        ))
        .await;
    let mut rev: Vec<Value> = seqs.clone();
    rev.reverse();
    assert_eq!(field(&d2, "seq"), rev[3..6].to_vec());
}

#[tokio::test(flavor = "multi_thread")]
async fn stats_match_hand_computed_figures() {
    let s = seeded().await;
    let v = s.get("/v1/events/stats?by=class&sla=4").await;
    assert_eq!(v["by"], "class");
    assert_eq!(v["sla_seconds"], json!(4.0));
    assert_eq!(
        v["groups"],
        json!([
            {
                "group": "Mail", "count": 4,
                "time_in_queue": {"count": 1, "p50": 2.0, "p95": 2.0, "p99": 2.0, "max": 2.0, "mean": 2.0},
                "time_to_perform": {"count": 1, "p50": 3.0, "p95": 3.0, "p99": 3.0, "max": 3.0, "mean": 3.0},
                "sla": {"seconds": 4.0, "within": 1, "total": 1, "share": 1.0}
            },
            {
                // in queue [1, 4, 10]: nearest rank p50 = 2nd = 4, p95 = 3rd.
                "group": "Render", "count": 12,
                "time_in_queue": {"count": 3, "p50": 4.0, "p95": 10.0, "p99": 10.0, "max": 10.0, "mean": 5.0},
                // perform [1, 2, 10]
                "time_to_perform": {"count": 3, "p50": 2.0, "p95": 10.0, "p99": 10.0, "max": 10.0, "mean": 13.0 / 3.0},
                "sla": {"seconds": 4.0, "within": 2, "total": 3, "share": 2.0 / 3.0}
            }
        ])
    );

    // By metadata: j4 has no strategy, so it is the null group.
    let m = s
        .get("/v1/events/stats?by=meta:pdf_generation_strategy")
        .await;
    let groups = m["groups"].as_array().expect("groups");
    let names: Vec<&Value> = groups.iter().map(|g| &g["group"]).collect();
    assert_eq!(names, vec![&Value::Null, &json!("chrome"), &json!("wk")]);
    assert_eq!(groups[1]["count"], 8);
    assert_eq!(groups[1]["time_in_queue"]["p50"], 1.0);
    assert_eq!(groups[1]["time_in_queue"]["p95"], 10.0);
    assert_eq!(groups[1]["time_to_perform"]["mean"], 1.5);
    assert_eq!(groups[1]["sla"], Value::Null);
    assert_eq!(groups[2]["time_in_queue"]["max"], 4.0);

    // By queue, filtered to a time range (dequeues at 105 and 112 only).
    let q = s
        .get(&format!(
            "/v1/events/stats?by=queue&type=dequeued&since={}&until={}&sla=5",
            secs(105.0),
            secs(113.0)
        ))
        .await;
    assert_eq!(
        q["groups"],
        json!([{
            "group": "pdf", "count": 2,
            "time_in_queue": {"count": 2, "p50": 4.0, "p95": 10.0, "p99": 10.0, "max": 10.0, "mean": 7.0},
            "time_to_perform": {"count": 0, "p50": null, "p95": null, "p99": null, "max": null, "mean": null},
            "sla": {"seconds": 5.0, "within": 1, "total": 2, "share": 0.5}
        }])
    );

    // No grouping: one null group over everything.
    let all = s.get("/v1/events/stats").await;
    assert_eq!(all["by"], Value::Null);
    assert_eq!(all["groups"][0]["group"], Value::Null);
    assert_eq!(all["groups"][0]["count"], 16);
    assert_eq!(all["groups"][0]["time_in_queue"]["p50"], 2.0);
    assert_eq!(all["groups"][0]["time_in_queue"]["mean"], 17.0 / 4.0);
    // Nothing matches: no groups.
    let empty = s.get("/v1/events/stats?queue=nope").await;
    assert_eq!(empty["groups"], json!([]));
}

#[tokio::test(flavor = "multi_thread")]
async fn bad_parameters_are_refused_by_name() {
    let s = seeded().await;
    s.refused("/v1/events/search?type=bogus", "type").await;
    s.refused("/v1/events/search?meta=nokey", "meta").await;
    s.refused("/v1/events/search?since=yesterday", "since")
        .await;
    s.refused("/v1/events/search?limit=0", "limit").await;
    s.refused("/v1/events/search?after=-1", "after").await;
    s.refused("/v1/events/search?order=up", "order").await;
    s.refused("/v1/events/search?by=class", "by").await;
    s.refused("/v1/events/stats?by=color", "by").await;
    s.refused("/v1/events/stats?sla=-1", "sla").await;
    s.refused("/v1/events/stats?limit=3", "limit").await;
    s.refused("/v1/events/stats?queue=", "queue").await;
}

/// Every (seq, at) in the store's event log.
async fn log(e: &Engine) -> Vec<(i64, Timestamp)> {
    e.store()
        .events_after(0, 100_000)
        .await
        .expect("events")
        .into_iter()
        .map(|ev| (ev.seq, ev.at))
        .collect()
}

#[tokio::test(flavor = "multi_thread")]
async fn retention_by_size_then_age() {
    let (s, e) = seeded_with_engine().await;
    let before = log(&e).await;
    assert!(
        before.len() > 16,
        "qless and lifecycle events: {}",
        before.len()
    );

    // Refused bodies delete nothing.
    for (body, needle) in [
        (json!({}), "max_age or max_events"),
        (json!({"max_age": -1}), "max_age"),
        (json!({"max_events": "x"}), "max_events"),
        (json!({"keep": 1}), "keep"),
    ] {
        let (st, v) = s.prune(secs(200.0), body).await;
        assert_eq!(st, reqwest::StatusCode::BAD_REQUEST, "{v}");
        let msg = v["error"]["message"].as_str().unwrap_or("");
        assert!(msg.contains(needle), "{msg:?} should mention {needle:?}");
    }
    assert_eq!(log(&e).await, before);

    // Size: keep the newest 20 log entries, whatever their channel.
    let n = before.len();
    let (st, v) = s.prune(secs(200.0), json!({"max_events": 20})).await;
    assert_eq!(st, reqwest::StatusCode::OK, "{v}");
    assert_eq!(v, json!({"deleted": n - 20}));
    assert_eq!(log(&e).await, before[n - 20..].to_vec());
    // Nothing more to do: 0 deleted.
    let (_, v) = s.prune(secs(200.0), json!({"max_events": 20})).await;
    assert_eq!(v, json!({"deleted": 0}));

    // Age: at T0+115, keep 10 s: events at or after T0+105 stay.
    let (st, v) = s.prune(secs(115.0), json!({"max_age": 10})).await;
    assert_eq!(st, reqwest::StatusCode::OK, "{v}");
    let after = log(&e).await;
    assert!(after.iter().all(|(_, t)| *t >= at(105.0)), "{after:?}");
    let expected: Vec<(i64, Timestamp)> = before
        .iter()
        .filter(|(_, t)| *t >= at(105.0))
        .copied()
        .collect();
    assert_eq!(after, expected);
    let kept = s.get("/v1/events/search").await;
    assert_eq!(
        field(&kept, "jid"),
        vec![
            json!("j2"),
            json!("j2"),
            json!("j4"),
            json!("j3"),
            json!("j3"),
            json!("j3"),
            json!("j2")
        ]
    );
    // The figures follow the kept history: dequeues 4 and 10 only.
    let st = s.get("/v1/events/stats?type=dequeued").await;
    assert_eq!(st["groups"][0]["time_in_queue"]["mean"], 7.0);

    // New events keep counting up from where the log was.
    put(&e, 120.0, "j9", "pdf", "Render", None).await;
    let last = log(&e).await.last().map(|(s, _)| *s).unwrap_or(0);
    assert!(last > before[n - 1].0);

    // Everything older than the age goes, even the whole log.
    let (_, v) = s.prune(secs(1000.0), json!({"max_age": 1})).await;
    assert!(v["deleted"].as_u64().is_some_and(|d| d > 0), "{v}");
    assert_eq!(log(&e).await, vec![]);
}
