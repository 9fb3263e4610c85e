//! `GET /v1/jobs/{jid}/why`, `GET /v1/overview` and `GET /v1/events/series`
//! against a real server in test mode, every step at a hand-set time
//! (`X-Clew-Now`), checked against figures computed by hand.

mod api_common;

use api_common::{assert_error, start, Server};
use reqwest::{Method, StatusCode};
use serde_json::{json, Value};

/// 2023-11-14T22:13:20Z: the times in the texts below are `T0` plus the
/// step's offset.
const T0: f64 = 1_700_000_000.0;

/// Moves the test clock to `T0 + secs`.
fn at(s: &mut Server, secs: f64) {
    s.now = Some(T0 + secs);
}

async fn put(s: &Server, queue: &str, jid: &str, extra: Value) {
    let mut body = json!({"jid": jid, "klass": "Render", "data": {"n": jid}});
    if let (Some(b), Value::Object(e)) = (body.as_object_mut(), extra) {
        b.extend(e);
    }
    assert_eq!(s.put(queue, body).await, jid);
}

/// Pops one job of `queue` for `worker`, expecting `jid`.
async fn pop(s: &Server, queue: &str, worker: &str, jid: &str) {
    let popped = s.pop(queue, worker).await;
    assert_eq!(popped.len(), 1, "one job popped from {queue}");
    assert_eq!(popped[0]["jid"], jid, "popped from {queue}");
}

async fn complete(s: &Server, jid: &str, worker: &str) {
    s.post(
        &format!("/v1/jobs/{jid}/complete"),
        json!({ "worker": worker }),
    )
    .await;
}

async fn fail(s: &Server, jid: &str, worker: &str, group: &str) {
    s.post(
        &format!("/v1/jobs/{jid}/fail"),
        json!({"worker": worker, "group": group, "message": "it broke"}),
    )
    .await;
}

async fn why(s: &Server, jid: &str) -> Value {
    s.get(&format!("/v1/jobs/{jid}/why")).await
}

/// A time `T0 + x` as the API renders it (whole seconds as integers).
fn secs(x: f64) -> Value {
    json!((T0 + x) as i64)
}

fn codes(why: &Value) -> Vec<String> {
    why["reasons"]
        .as_array()
        .expect("reasons array")
        .iter()
        .map(|r| r["code"].as_str().expect("code").to_owned())
        .collect()
}

fn reason<'a>(why: &'a Value, code: &str) -> &'a Value {
    why["reasons"]
        .as_array()
        .expect("reasons array")
        .iter()
        .find(|r| r["code"] == code)
        .unwrap_or_else(|| panic!("no {code} reason in {why}"))
}

fn text(r: &Value) -> &str {
    r["text"].as_str().expect("text")
}

#[tokio::test(flavor = "multi_thread")]
async fn why_a_waiting_job_waits() {
    let mut s = start(true).await;
    at(&mut s, 0.0);
    put(&s, "q", "low", json!({})).await;
    put(&s, "q", "high", json!({"priority": 5})).await;

    // Nobody ever popped q: second in line behind the higher priority.
    at(&mut s, 10.0);
    let w = why(&s, "low").await;
    assert_eq!(w["state"], "waiting");
    assert_eq!(w["queue"], "q");
    assert_eq!(codes(&w), ["waiting", "never_popped"]);
    let r = reason(&w, "waiting");
    assert_eq!(
        (&r["position"], &r["waiting"], &r["priority"]),
        (&json!(2), &json!(2), &json!(0))
    );
    assert_eq!(text(r), "waiting in queue q: position 2 of 2 (priority 0)");

    // A worker takes `high` at T0+20 (lock for 60 s: until T0+80).
    at(&mut s, 20.0);
    pop(&s, "q", "w1", "high").await;
    at(&mut s, 30.0);
    let w = why(&s, "high").await;
    assert_eq!(w["state"], "running");
    assert_eq!(codes(&w), ["running"]);
    let r = reason(&w, "running");
    assert_eq!(r["worker"], "w1");
    assert_eq!(r["since"], secs(20.0));
    assert_eq!(r["expires"], secs(80.0));
    assert_eq!(
        text(r),
        "running on worker w1 since 2023-11-14T22:13:40Z, \
         with the lock expiring at 2023-11-14T22:14:40Z"
    );
    // `low` is now first, and the queue was popped 10 s ago: no complaint.
    let w = why(&s, "low").await;
    assert_eq!(codes(&w), ["waiting"]);
    assert_eq!(reason(&w, "waiting")["position"], 1);

    // 301 s after the pop: nobody has popped since.
    at(&mut s, 321.0);
    let w = why(&s, "low").await;
    assert_eq!(codes(&w), ["waiting", "no_workers"]);
    let r = reason(&w, "no_workers");
    assert_eq!(r["last_pop"], secs(20.0));
    assert_eq!(
        text(r),
        "no worker has popped queue q since 2023-11-14T22:13:40Z (5m 1s ago)"
    );
    // ... and `high`'s lock expired at T0+80.
    let w = why(&s, "high").await;
    assert_eq!(codes(&w), ["running", "lock_expired"]);
    assert_eq!(
        text(reason(&w, "lock_expired")),
        "stalled: the lock expired at 2023-11-14T22:14:40Z; \
         the next pop hands it to another worker"
    );

    // Paused: said first.
    at(&mut s, 330.0);
    s.post("/v1/queues/q/pause", json!({})).await;
    let w = why(&s, "low").await;
    assert_eq!(codes(&w), ["paused", "waiting", "no_workers"]);
    assert_eq!(reason(&w, "paused")["queue"], "q");
    s.post("/v1/queues/q/unpause", json!({})).await;

    // A timed-out job is back at the front.
    at(&mut s, 340.0);
    s.post("/v1/jobs/high/timeout", json!({})).await;
    let w = why(&s, "high").await;
    assert_eq!(w["state"], "stalled");
    assert_eq!(
        text(reason(&w, "waiting")),
        "timed out and put back at the front of queue q: position 1 of 2 (priority 5)"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn why_scheduled_depends_failed_complete_recurring_throttled() {
    let mut s = start(true).await;

    // Scheduled for T0+300; due later, the look promotes it.
    at(&mut s, 200.0);
    put(&s, "later", "sched", json!({"delay": 100})).await;
    at(&mut s, 250.0);
    let w = why(&s, "sched").await;
    assert_eq!(w["state"], "scheduled");
    assert_eq!(codes(&w), ["scheduled"]);
    let r = reason(&w, "scheduled");
    assert_eq!(r["at"], secs(300.0));
    assert_eq!(
        text(r),
        "scheduled for 2023-11-14T22:18:20Z (in 50s), in queue later"
    );
    at(&mut s, 350.0);
    let w = why(&s, "sched").await;
    assert_eq!(w["state"], "waiting");
    assert_eq!(codes(&w), ["waiting", "never_popped"]);

    // Depends on a waiting job, then on a failed one.
    at(&mut s, 400.0);
    put(&s, "work", "parent", json!({})).await;
    put(&s, "work", "child", json!({"depends": ["parent"]})).await;
    let w = why(&s, "child").await;
    assert_eq!(w["state"], "depends");
    let r = reason(&w, "depends");
    assert_eq!(r["jids"], json!(["parent"]));
    assert_eq!(r["states"], json!({"parent": "waiting"}));
    assert_eq!(text(r), "waiting on jobs parent (waiting)");

    at(&mut s, 500.0);
    pop(&s, "work", "w2", "parent").await;
    at(&mut s, 510.0);
    fail(&s, "parent", "w2", "Boom").await;
    let w = why(&s, "parent").await;
    assert_eq!(w["state"], "failed");
    let r = reason(&w, "failed");
    assert_eq!(
        (&r["group"], &r["message"], &r["when"], &r["worker"]),
        (
            &json!("Boom"),
            &json!("it broke"),
            &secs(510.0),
            &json!("w2")
        )
    );
    assert_eq!(
        text(r),
        "failed in group Boom at 2023-11-14T22:21:50Z: it broke"
    );
    let w = why(&s, "child").await;
    assert_eq!(reason(&w, "depends")["states"], json!({"parent": "failed"}));

    // Complete.
    at(&mut s, 600.0);
    put(&s, "work", "done", json!({})).await;
    at(&mut s, 601.0);
    pop(&s, "work", "w2", "done").await;
    at(&mut s, 605.0);
    complete(&s, "done", "w2").await;
    let w = why(&s, "done").await;
    assert_eq!(w["state"], "complete");
    assert_eq!(codes(&w), ["complete"]);
    assert_eq!(reason(&w, "complete")["at"], secs(605.0));
    assert_eq!(
        text(reason(&w, "complete")),
        "completed at 2023-11-14T22:23:25Z"
    );

    // A recurring template, in a paused queue.
    at(&mut s, 700.0);
    s.post(
        "/v1/queues/cron/recurring",
        json!({"jid": "tmpl", "klass": "Tick", "interval": 60, "offset": 30}),
    )
    .await;
    s.post("/v1/queues/cron/pause", json!({})).await;
    let w = why(&s, "tmpl").await;
    assert_eq!(w["state"], "recur");
    assert_eq!(codes(&w), ["paused", "recurring"]);
    let r = reason(&w, "recurring");
    assert_eq!((&r["interval"], &r["next"]), (&json!(60), &secs(730.0)));
    assert_eq!(
        text(r),
        "a recurring template, not a job: it puts a job into queue cron every 1m 0s; \
         the next is due at 2023-11-14T22:25:30Z"
    );

    // At the queue's concurrency limit.
    at(&mut s, 800.0);
    s.call(
        Method::PUT,
        "/v1/config/narrow-max-concurrency",
        Some(json!({"value": "1"})),
    )
    .await;
    put(&s, "narrow", "n1", json!({})).await;
    put(&s, "narrow", "n2", json!({})).await;
    pop(&s, "narrow", "w3", "n1").await;
    let w = why(&s, "n2").await;
    assert_eq!(codes(&w), ["waiting", "concurrency_limit"]);
    let r = reason(&w, "concurrency_limit");
    assert_eq!(
        (&r["max_concurrency"], &r["running"]),
        (&json!(1), &json!(1))
    );

    // Unknown: 404.
    let body = s
        .expect(
            StatusCode::NOT_FOUND,
            Method::GET,
            "/v1/jobs/nope/why",
            None,
        )
        .await;
    assert_error(&body, "not_found", "nope");
}

/// The overview at `N = T0 + 10000` (window `[N-3600, N]`):
///
/// | queue | jobs | in the window |
/// |-------|------|---------------|
/// | alpha | o1 done at T0+1000 (outside); a1, a2 done, a3 failed (G1) | 2 done, 1 failed |
/// | beta  | b1 failed (G2); b6 popped at N-500 (stalled); b5 running (renewed); b2 waiting; b3 scheduled; b4 depends on b2 | 0 done, 1 failed |
/// | gamma | g1 waiting; paused | nothing |
#[tokio::test(flavor = "multi_thread")]
async fn overview_counts_by_hand() {
    let mut s = start(true).await;
    let n = 10_000.0;
    at(&mut s, 1000.0);
    put(&s, "alpha", "o1", json!({})).await;
    pop(&s, "alpha", "w0", "o1").await;
    complete(&s, "o1", "w0").await;

    at(&mut s, n - 3000.0);
    for j in ["a1", "a2", "a3"] {
        put(&s, "alpha", j, json!({})).await;
    }
    at(&mut s, n - 2950.0);
    pop(&s, "alpha", "w1", "a1").await;
    at(&mut s, n - 2900.0);
    complete(&s, "a1", "w1").await;
    pop(&s, "alpha", "w1", "a2").await;
    at(&mut s, n - 2800.0);
    complete(&s, "a2", "w1").await;
    pop(&s, "alpha", "w1", "a3").await;
    at(&mut s, n - 2700.0);
    fail(&s, "a3", "w1", "G1").await;

    at(&mut s, n - 2000.0);
    put(&s, "beta", "b1", json!({})).await;
    pop(&s, "beta", "w2", "b1").await;
    at(&mut s, n - 1900.0);
    fail(&s, "b1", "w2", "G2").await;
    at(&mut s, n - 1800.0);
    put(&s, "beta", "b6", json!({})).await;
    put(&s, "beta", "b5", json!({})).await;
    // b6's lock expires at N-440; b5's, renewed at N-30, at N+30.
    at(&mut s, n - 500.0);
    pop(&s, "beta", "w3", "b6").await;
    at(&mut s, n - 470.0);
    pop(&s, "beta", "w3", "b5").await;
    at(&mut s, n - 30.0);
    s.post("/v1/jobs/b5/heartbeat", json!({"worker": "w3"}))
        .await;
    at(&mut s, n - 20.0);
    put(&s, "beta", "b2", json!({})).await;
    put(&s, "beta", "b3", json!({"delay": 5000})).await;
    put(&s, "beta", "b4", json!({"depends": ["b2"]})).await;

    at(&mut s, n - 10.0);
    put(&s, "gamma", "g1", json!({})).await;
    s.post("/v1/queues/gamma/pause", json!({})).await;

    at(&mut s, n);
    let o = s.get("/v1/overview").await;
    assert_eq!(o["now"], secs(n));
    assert_eq!(o["window"], json!(3600));
    let queues = o["queues"].as_array().expect("queues");
    let q = |name: &str| -> &Value {
        queues
            .iter()
            .find(|q| q["name"] == name)
            .unwrap_or_else(|| panic!("queue {name} in {o}"))
    };
    // Counts by state (and the failed jobs that ran in the queue).
    let counts = |name: &str| -> Value {
        let mut c = q(name).clone();
        for k in ["name", "last_hour"] {
            c.as_object_mut().expect("queue object").remove(k);
        }
        c
    };
    assert_eq!(queues.len(), 3);
    let zero = json!({"waiting": 0, "running": 0, "stalled": 0, "scheduled": 0,
                      "depends": 0, "recurring": 0, "failed": 0, "paused": false});
    let with = |changes: Value| {
        let mut c = zero.clone();
        for (k, v) in changes.as_object().expect("changes") {
            c[k] = v.clone();
        }
        c
    };
    assert_eq!(counts("alpha"), with(json!({"failed": 1})));
    assert_eq!(
        counts("beta"),
        with(
            json!({"waiting": 1, "running": 1, "stalled": 1, "scheduled": 1,
                    "depends": 1, "failed": 1})
        )
    );
    assert_eq!(counts("gamma"), with(json!({"waiting": 1, "paused": true})));
    assert_eq!(
        q("alpha")["last_hour"],
        json!({"completed": 2, "failed": 1, "failure_rate": 1.0 / 3.0})
    );
    assert_eq!(
        q("beta")["last_hour"],
        json!({"completed": 0, "failed": 1, "failure_rate": 1.0})
    );
    assert_eq!(
        q("gamma")["last_hour"],
        json!({"completed": 0, "failed": 0, "failure_rate": null})
    );

    assert_eq!(o["failed"]["total"], 2);
    let mut groups = o["failed"]["groups"].as_array().expect("groups").clone();
    groups.sort_by_key(|g| g["group"].as_str().unwrap_or("").to_owned());
    assert_eq!(
        groups,
        [
            json!({"group": "G1", "count": 1}),
            json!({"group": "G2", "count": 1})
        ]
    );

    assert_eq!(o["workers"]["count"], 4);
    let mut names: Vec<String> = o["workers"]["names"]
        .as_array()
        .expect("names")
        .iter()
        .map(|n| n.as_str().expect("name").to_owned())
        .collect();
    names.sort();
    assert_eq!(names, ["w0", "w1", "w2", "w3"]);
    let w3 = o["workers"]["list"]
        .as_array()
        .expect("list")
        .iter()
        .find(|w| w["name"] == "w3")
        .expect("w3 listed")
        .clone();
    assert_eq!(
        w3,
        json!({"name": "w3", "jobs": 1, "stalled": 1, "last_seen": secs(n - 30.0)})
    );

    assert_eq!(
        o["totals"],
        json!({
            "queues": 3, "paused": 1,
            "waiting": 2, "running": 1, "stalled": 1, "scheduled": 1, "depends": 1,
            "recurring": 0, "failed": 2,
            "last_hour": {"completed": 2, "failed": 2, "failure_rate": 0.5},
        })
    );
}

/// The series history (seconds after T0; `strategy` metadata):
///
/// | job | queue | strategy | put | pop | end        | in queue | perform |
/// |-----|-------|----------|-----|-----|------------|----------|---------|
/// | j1  | pdf   | chrome   | 0   | 1   | 3 done     | 1        | 2       |
/// | j4  | mail  | -        | 0   | 2   | 5 done     | 2        | 3       |
/// | j2  | pdf   | wk       | 1   | 5   | 15 done    | 4        | 10      |
/// | j3  | pdf   | chrome   | 2   | 12  | 13 failed  | 10       | 1       |
/// | j5  | pdf   | wk       | 20  | 25  | 29 done    | 5        | 4       |
///
/// plus 20 jobs of queue `bulk` put at 39 and popped at 40, 41, ... 59
/// (waits 1..=20). Each popped job has enqueued, dequeued and
/// perform_started events, and a finished one perform_finished or failed.
async fn seeded_series() -> Server {
    let mut s = start(true).await;
    let strategy = |v: &str| json!({"metadata": {"strategy": v}});
    at(&mut s, 0.0);
    put(&s, "pdf", "j1", strategy("chrome")).await;
    put(&s, "mail", "j4", json!({})).await;
    at(&mut s, 1.0);
    put(&s, "pdf", "j2", strategy("wk")).await;
    pop(&s, "pdf", "w", "j1").await;
    at(&mut s, 2.0);
    put(&s, "pdf", "j3", strategy("chrome")).await;
    pop(&s, "mail", "w", "j4").await;
    at(&mut s, 3.0);
    complete(&s, "j1", "w").await;
    at(&mut s, 5.0);
    pop(&s, "pdf", "w", "j2").await;
    complete(&s, "j4", "w").await;
    at(&mut s, 12.0);
    pop(&s, "pdf", "w", "j3").await;
    at(&mut s, 13.0);
    fail(&s, "j3", "w", "Boom").await;
    at(&mut s, 15.0);
    complete(&s, "j2", "w").await;
    at(&mut s, 20.0);
    put(&s, "pdf", "j5", strategy("wk")).await;
    at(&mut s, 25.0);
    pop(&s, "pdf", "w", "j5").await;
    at(&mut s, 29.0);
    complete(&s, "j5", "w").await;
    at(&mut s, 39.0);
    for k in 1..=20 {
        put(&s, "bulk", &format!("b{k:02}"), json!({})).await;
    }
    for k in 1..=20 {
        at(&mut s, 39.0 + f64::from(k));
        pop(&s, "bulk", "w", &format!("b{k:02}")).await;
    }
    at(&mut s, 100.0);
    s
}

fn summary(count: u64, p50: f64, p95: f64, p99: f64, max: f64, mean: f64) -> Value {
    json!({"count": count, "p50": p50, "p95": p95, "p99": p99, "max": max, "mean": mean})
}

fn empty_summary() -> Value {
    json!({"count": 0, "p50": null, "p95": null, "p99": null, "max": null, "mean": null})
}

fn series_path(query: &str) -> String {
    format!("/v1/events/series?{query}")
}

#[tokio::test(flavor = "multi_thread")]
async fn series_buckets_match_hand_computed_percentiles() {
    let s = seeded_series().await;
    let range = format!("since={T0}&until={}", T0 + 30.0);

    // One series, three buckets of 10 s.
    let v = s.get(&series_path(&format!("{range}&interval=10"))).await;
    assert_eq!(v["interval"], 10);
    assert_eq!(v["by"], Value::Null);
    let series = v["series"].as_array().expect("series");
    assert_eq!(series.len(), 1);
    assert_eq!(series[0]["group"], Value::Null);
    let p = series[0]["points"].as_array().expect("points");
    assert_eq!(
        p.iter().map(|p| p["t"].clone()).collect::<Vec<_>>(),
        [
            json!(T0 as i64),
            json!(T0 as i64 + 10),
            json!(T0 as i64 + 20)
        ]
    );
    // [0, 10): 4 enqueued, 3 dequeued, 3 started, 2 finished.
    assert_eq!(p[0]["count"], 12);
    assert_eq!(
        p[0]["time_in_queue"],
        summary(3, 2.0, 4.0, 4.0, 4.0, 7.0 / 3.0)
    );
    assert_eq!(p[0]["time_to_perform"], summary(2, 2.0, 3.0, 3.0, 3.0, 2.5));
    // [10, 20): j3 dequeued, started, failed; j2 finished.
    assert_eq!(p[1]["count"], 4);
    assert_eq!(
        p[1]["time_in_queue"],
        summary(1, 10.0, 10.0, 10.0, 10.0, 10.0)
    );
    assert_eq!(
        p[1]["time_to_perform"],
        summary(2, 1.0, 10.0, 10.0, 10.0, 5.5)
    );
    // [20, 30): j5 whole.
    assert_eq!(p[2]["count"], 4);
    assert_eq!(p[2]["time_in_queue"], summary(1, 5.0, 5.0, 5.0, 5.0, 5.0));
    assert_eq!(p[2]["time_to_perform"], summary(1, 4.0, 4.0, 4.0, 4.0, 4.0));

    // By queue: mail only in the first bucket.
    let v = s
        .get(&series_path(&format!("{range}&interval=10&by=queue")))
        .await;
    assert_eq!(v["by"], "queue");
    let series = v["series"].as_array().expect("series");
    assert_eq!(
        series
            .iter()
            .map(|g| g["group"].clone())
            .collect::<Vec<_>>(),
        [json!("mail"), json!("pdf")]
    );
    let mail = series[0]["points"].as_array().expect("points");
    assert_eq!(
        mail.iter().map(|p| p["count"].clone()).collect::<Vec<_>>(),
        [json!(4), json!(0), json!(0)]
    );
    assert_eq!(mail[1]["time_in_queue"], empty_summary());
    let pdf = series[1]["points"].as_array().expect("points");
    assert_eq!(pdf[0]["time_in_queue"], summary(2, 1.0, 4.0, 4.0, 4.0, 2.5));

    // By metadata: j4 has none (null group, first).
    let v = s
        .get(&series_path(&format!(
            "{range}&interval=10&by=meta:strategy"
        )))
        .await;
    let series = v["series"].as_array().expect("series");
    assert_eq!(
        series
            .iter()
            .map(|g| g["group"].clone())
            .collect::<Vec<_>>(),
        [Value::Null, json!("chrome"), json!("wk")]
    );
    let chrome = series[1]["points"].as_array().expect("points");
    assert_eq!(
        chrome
            .iter()
            .map(|p| p["count"].clone())
            .collect::<Vec<_>>(),
        [json!(5), json!(3), json!(0)]
    );
    assert_eq!(
        chrome[1]["time_to_perform"],
        summary(1, 1.0, 1.0, 1.0, 1.0, 1.0)
    );

    // Filters: dequeues of the pdf queue; metadata.
    let v = s
        .get(&series_path(&format!(
            "{range}&interval=10&type=dequeued&queue=pdf"
        )))
        .await;
    let counts: Vec<Value> = v["series"][0]["points"]
        .as_array()
        .expect("points")
        .iter()
        .map(|p| p["count"].clone())
        .collect();
    assert_eq!(counts, [json!(2), json!(1), json!(1)]);
    let v = s
        .get(&series_path(&format!(
            "{range}&interval=40&meta=strategy:wk&type=perform_finished"
        )))
        .await;
    assert_eq!(
        v["series"][0]["points"][0]["time_to_perform"],
        summary(2, 4.0, 10.0, 10.0, 10.0, 7.0)
    );

    // 20 waits 1..=20 in one bucket: nearest-rank p50 10, p95 19, p99 20.
    let v = s
        .get(&series_path(&format!(
            "since={}&until={}&interval=20&queue=bulk&type=dequeued",
            T0 + 40.0,
            T0 + 80.0
        )))
        .await;
    let p = v["series"][0]["points"].as_array().expect("points");
    assert_eq!(p.len(), 2);
    assert_eq!(p[0]["t"], json!(T0 as i64 + 40));
    assert_eq!(
        p[0]["time_in_queue"],
        summary(20, 10.0, 19.0, 20.0, 20.0, 10.5)
    );
    assert_eq!(p[1]["count"], 0);
}

#[tokio::test(flavor = "multi_thread")]
async fn series_default_interval_and_range() {
    let s = seeded_series().await;
    // An hour: 10 s buckets (360 of them).
    let v = s
        .get(&series_path(&format!("since={T0}&until={}", T0 + 3600.0)))
        .await;
    assert_eq!(v["interval"], 10);
    assert_eq!(
        v["series"][0]["points"].as_array().expect("points").len(),
        360
    );
    // No range: from the oldest event (T0) to now (T0+100), 1 s buckets.
    let v = s.get("/v1/events/series").await;
    assert_eq!(v["interval"], 1);
    assert_eq!((&v["from"], &v["until"]), (&secs(0.0), &secs(100.0)));
    let p = v["series"][0]["points"].as_array().expect("points");
    assert_eq!(p.len(), 100);
    let total: u64 = p.iter().map(|p| p["count"].as_u64().expect("count")).sum();
    // 5 jobs x 4 events, 20 bulk jobs x 3.
    assert_eq!(total, 20 + 60);
    // Grouped, nothing matching: no series at all.
    let v = s
        .get(&series_path(&format!(
            "since={T0}&until={}&by=queue&queue=none",
            T0 + 30.0
        )))
        .await;
    assert_eq!(v["series"], json!([]));
}

#[tokio::test(flavor = "multi_thread")]
async fn series_refuses_bad_parameters_by_name() {
    let s = start(true).await;
    for (query, needle) in [
        ("interval=0", "interval"),
        ("interval=abc", "interval"),
        ("interval=1.5", "interval"),
        ("by=nope", "by"),
        ("type=started", "type"),
        ("since=yesterday", "since"),
        ("until=x", "until"),
        ("meta=novalue", "meta"),
        ("queue=", "queue"),
        ("since=200&until=100", "until"),
        ("limit=3", "unknown parameter \"limit\""),
        ("since=0&until=1000&interval=1", "interval"),
    ] {
        let body = s
            .expect(
                StatusCode::BAD_REQUEST,
                Method::GET,
                &series_path(query),
                None,
            )
            .await;
        assert_error(&body, "invalid_argument", needle);
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn overview_series_equals_the_series_endpoint_over_the_same_hour() {
    let s = seeded_series().await;
    let ov = s.get("/v1/overview?interval=60").await;
    let now = T0 + 100.0;
    let since = now - 3600.0;
    let until = now + 0.000_001;
    let direct = s
        .get(&series_path(&format!(
            "since={since}&until={until}&interval=60"
        )))
        .await;
    assert_eq!(ov["series"]["interval"], 60);
    let a = ov["series"]["series"][0]["points"]
        .as_array()
        .expect("points");
    let b = direct["series"][0]["points"].as_array().expect("points");
    assert_eq!(a.len(), b.len());
    assert_eq!(a.len(), 61, "an hour of 60 s buckets, the last one partial");
    for (x, y) in a.iter().zip(b) {
        assert_eq!(x["t"], y["t"]);
        assert_eq!(x["time_in_queue"], y["time_in_queue"]);
        assert_eq!(x["time_to_perform"], y["time_to_perform"]);
    }
    // The seeded history: 25 waits (j1-j5 and 20 bulk jobs) and 5 runs
    // (j1, j2, j4, j5 finished, j3 failed).
    let waits: u64 = a
        .iter()
        .map(|p| p["time_in_queue"]["count"].as_u64().unwrap())
        .sum();
    let runs: u64 = a
        .iter()
        .map(|p| p["time_to_perform"]["count"].as_u64().unwrap())
        .sum();
    assert_eq!((waits, runs), (25, 5));
    // Without interval, no series; a bad one is refused.
    assert!(s.get("/v1/overview").await.get("series").is_none());
    let (status, bad) = s.call(Method::GET, "/v1/overview?interval=5", None).await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert_error(&bad, "invalid_argument", "interval");
}
