//! `GET /metrics`: the figures match the jobs run through the server, the
//! token rule applies, and a real Prometheus scrapes and stores them.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::{Duration, Instant};

use clew_core::Engine;
use clew_server::{AppState, ServerConfig};
use reqwest::StatusCode;
use serde_json::{json, Value};
use tempfile::TempDir;
use tokio::sync::oneshot;

const TOKEN: &str = "metrics-test-token";

/// A running test-mode server with a token, on a fresh SQLite store.
struct Server {
    base: String,
    addr: std::net::SocketAddr,
    http: reqwest::Client,
    _dir: TempDir,
    _stop: oneshot::Sender<()>,
}

async fn start(lags: Option<Vec<(String, i64)>>) -> Server {
    let (store, dir) = clew_sqlite::testing::temp_store();
    let engine = Engine::new(store as Arc<dyn clew_core::Store>);
    let config = ServerConfig {
        test_mode: true,
        token: Some(TOKEN.to_owned()),
        ..ServerConfig::default()
    };
    let mut state = AppState::new(engine, config);
    if let Some(lags) = lags {
        state = state.with_sink_lags(Arc::new(move || lags.clone()));
    }
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
        addr,
        http: reqwest::Client::new(),
        _dir: dir,
        _stop: stop,
    }
}

impl Server {
    /// POST with the token at test time `now` (the server's clock when
    /// `None`); expects a 2xx.
    async fn post_at(&self, now: Option<f64>, path: &str, body: Value) -> Value {
        let mut req = self
            .http
            .post(format!("{}{}", self.base, path))
            .bearer_auth(TOKEN);
        if let Some(now) = now {
            req = req.header("x-clew-now", now.to_string());
        }
        let resp = req.json(&body).send().await.expect("request sent");
        let status = resp.status();
        let v: Value = resp.json().await.expect("JSON body");
        assert!(status.is_success(), "POST {path}: {status} {v}");
        v
    }

    /// POST with the token at test time `now`; expects a 2xx.
    async fn post(&self, now: f64, path: &str, body: Value) -> Value {
        self.post_at(Some(now), path, body).await
    }

    async fn put(&self, now: f64, queue: &str, retries: i64) -> String {
        let v = self
            .post(
                now,
                &format!("/v1/queues/{queue}/jobs"),
                json!({"klass": "Work", "data": {}, "retries": retries}),
            )
            .await;
        v["jid"].as_str().expect("jid").to_owned()
    }

    async fn pop(&self, now: f64, queue: &str) -> String {
        let v = self
            .post(
                now,
                &format!("/v1/queues/{queue}/pop"),
                json!({"worker": "w1"}),
            )
            .await;
        v[0]["jid"].as_str().expect("a popped job").to_owned()
    }

    /// GET /metrics with the token: the text.
    async fn metrics_text(&self) -> String {
        let resp = self
            .http
            .get(format!("{}/metrics", self.base))
            .bearer_auth(TOKEN)
            .send()
            .await
            .expect("request sent");
        assert_eq!(resp.status(), StatusCode::OK);
        let ct = resp
            .headers()
            .get("content-type")
            .and_then(|v| v.to_str().ok())
            .unwrap_or("")
            .to_owned();
        assert!(ct.starts_with("text/plain; version=0.0.4"), "{ct}");
        resp.text().await.expect("body")
    }
}

/// Parses the text format into `name{labels}` → value (comments checked
/// for shape, samples for a parseable value).
fn parse(text: &str) -> BTreeMap<String, f64> {
    let mut out = BTreeMap::new();
    for line in text.lines() {
        if line.is_empty() {
            continue;
        }
        if let Some(rest) = line.strip_prefix('#') {
            assert!(
                rest.starts_with(" HELP ") || rest.starts_with(" TYPE "),
                "bad comment line {line:?}"
            );
            continue;
        }
        let (key, value) = line.rsplit_once(' ').expect("sample line has a value");
        let v = match value {
            "+Inf" => f64::INFINITY,
            v => v.parse::<f64>().unwrap_or_else(|e| panic!("{line:?}: {e}")),
        };
        assert!(out.insert(key.to_owned(), v).is_none(), "duplicate {key}");
    }
    out
}

fn get(m: &BTreeMap<String, f64>, key: &str) -> f64 {
    *m.get(key)
        .unwrap_or_else(|| panic!("no sample {key}; have {:?}", m.keys()))
}

/// Runs `completed` jobs to completion (2 s waiting, 3 s running), `failed`
/// to failure (1 s waiting, 0.5 s running), one retried attempt, and leaves
/// `waiting` jobs waiting, all in queue `q` at test time 1000; one job in
/// `other` stays waiting; one in `live` runs (at the server's time).
async fn run_jobs(s: &Server, completed: usize, failed: usize, waiting: usize) {
    let t = 1000.0;
    for _ in 0..completed {
        s.put(t, "q", 5).await;
        let jid = s.pop(t + 2.0, "q").await;
        s.post(
            t + 5.0,
            &format!("/v1/jobs/{jid}/complete"),
            json!({"worker": "w1"}),
        )
        .await;
    }
    for _ in 0..failed {
        s.put(t, "q", 5).await;
        let jid = s.pop(t + 1.0, "q").await;
        s.post(
            t + 1.5,
            &format!("/v1/jobs/{jid}/fail"),
            json!({"worker": "w1", "group": "Boom", "message": "it broke"}),
        )
        .await;
    }
    // One retried attempt: the job goes back to waiting.
    s.put(t, "q", 5).await;
    let jid = s.pop(t + 1.0, "q").await;
    s.post(
        t + 1.25,
        &format!("/v1/jobs/{jid}/retry"),
        json!({"worker": "w1"}),
    )
    .await;
    for _ in 0..waiting {
        s.put(t, "q", 5).await;
    }
    s.put(t, "other", 5).await;
    // One job running now (server clock), so worker w1 counts as live.
    s.post_at(None, "/v1/queues/live/jobs", json!({"klass": "Work"}))
        .await;
    s.post_at(None, "/v1/queues/live/pop", json!({"worker": "w1"}))
        .await;
}

#[tokio::test]
async fn metrics_match_the_jobs_run() {
    let s = start(Some(vec![("file".to_owned(), 7)])).await;
    // Without the token: 401 and the JSON error body.
    let resp = s
        .http
        .get(format!("{}/metrics", s.base))
        .send()
        .await
        .expect("request sent");
    assert_eq!(resp.status(), StatusCode::UNAUTHORIZED);
    let body: Value = resp.json().await.expect("JSON error");
    assert!(body["error"]["code"].is_string(), "{body}");

    let (n, m, w) = (4, 3, 2);
    run_jobs(&s, n, m, w).await;
    let text = s.metrics_text().await;
    let mx = parse(&text);

    let q = |name: &str, labels: &str| get(&mx, &format!("{name}{{{labels}}}"));
    assert_eq!(
        q("clew_jobs_total", r#"queue="q",outcome="completed""#),
        n as f64
    );
    assert_eq!(
        q("clew_jobs_total", r#"queue="q",outcome="failed""#),
        m as f64
    );
    assert_eq!(q("clew_jobs_total", r#"queue="q",outcome="retried""#), 1.0);
    assert!(!mx.keys().any(|k| k.contains(r#"queue="other",outcome"#)));
    assert_eq!(
        q(
            "clew_lifecycle_events_total",
            r#"queue="q",kind="enqueued""#
        ),
        (n + m + 1 + w) as f64
    );
    assert_eq!(
        q(
            "clew_lifecycle_events_total",
            r#"queue="q",kind="dequeued""#
        ),
        (n + m + 1) as f64
    );

    // Gauges from the store: the retried job is waiting again.
    assert_eq!(
        q("clew_jobs", r#"queue="q",state="waiting""#),
        (w + 1) as f64
    );
    assert_eq!(q("clew_jobs", r#"queue="q",state="running""#), 0.0);
    assert_eq!(q("clew_jobs", r#"queue="other",state="waiting""#), 1.0);
    assert_eq!(q("clew_jobs", r#"queue="live",state="running""#), 1.0);
    assert_eq!(q("clew_queue_paused", r#"queue="q""#), 0.0);
    assert_eq!(q("clew_failed_jobs", r#"group="Boom""#), m as f64);
    assert_eq!(get(&mx, "clew_workers"), 1.0);
    assert_eq!(q("clew_sink_lag_events", r#"sink="file""#), 7.0);

    // Wait times: n × 2 s, (m + 1) × 1 s. Run times: n × 3 s, m × 0.5 s,
    // 1 × 0.25 s.
    let wait = |labels: &str| q("clew_job_wait_seconds_bucket", labels);
    assert_eq!(
        q("clew_job_wait_seconds_count", r#"queue="q""#),
        (n + m + 1) as f64
    );
    assert_eq!(
        q("clew_job_wait_seconds_sum", r#"queue="q""#),
        (2 * n + m + 1) as f64
    );
    assert_eq!(wait(r#"queue="q",le="1""#), (m + 1) as f64);
    assert_eq!(wait(r#"queue="q",le="2.5""#), (n + m + 1) as f64);
    assert_eq!(wait(r#"queue="q",le="+Inf""#), (n + m + 1) as f64);
    assert_eq!(
        q("clew_job_run_seconds_count", r#"queue="q""#),
        (n + m + 1) as f64
    );
    assert_eq!(
        q("clew_job_run_seconds_sum", r#"queue="q""#),
        3.0 * n as f64 + 0.5 * m as f64 + 0.25
    );
    assert_eq!(
        q("clew_job_run_seconds_bucket", r#"queue="q",le="0.25""#),
        1.0
    );
    assert_eq!(
        q("clew_job_run_seconds_bucket", r#"queue="q",le="0.5""#),
        (m + 1) as f64
    );

    // HTTP request time: one observation per request on the route.
    assert_eq!(
        q(
            "clew_http_request_seconds_count",
            r#"route="/v1/queues/{queue}/pop""#
        ),
        (n + m + 2) as f64 // and the pop in `live`
    );
    assert_eq!(
        q(
            "clew_http_request_seconds_count",
            r#"route="/v1/jobs/{jid}/complete""#
        ),
        n as f64
    );
    assert!(!text.contains(r#"route="/metrics""#));

    // Store time: one observation per store call, by command. Puts: n + m
    // + 1 + w in q, one in other, one in live.
    let store = |command: &str| {
        q(
            "clew_store_seconds_count",
            &format!("command=\"{command}\""),
        )
    };
    assert_eq!(store("put"), (n + m + w + 3) as f64);
    assert_eq!(store("pop"), (n + m + 2) as f64);
    assert_eq!(store("complete"), n as f64);
    assert_eq!(store("fail"), m as f64);
    assert_eq!(store("retry"), 1.0);
    for command in ["put", "pop", "complete"] {
        let labels = format!("command=\"{command}\",le=\"+Inf\"");
        assert_eq!(q("clew_store_seconds_bucket", &labels), store(command));
        let sum = q("clew_store_seconds_sum", &format!("command=\"{command}\""));
        assert!(sum > 0.0 && sum.is_finite(), "{command}: {sum}");
    }
}

#[tokio::test]
async fn failed_jobs_are_counted_per_queue() {
    let s = start(None).await;
    let t = 1000.0;
    // Two failed in a (groups Boom and Bang), one in b, and a retried one
    // that is not failed.
    for (queue, group) in [("a", "Boom"), ("a", "Bang"), ("b", "Boom")] {
        s.put(t, queue, 0).await;
        let jid = s.pop(t + 1.0, queue).await;
        s.post(
            t + 2.0,
            &format!("/v1/jobs/{jid}/fail"),
            json!({"worker": "w1", "group": group, "message": "no"}),
        )
        .await;
    }
    s.put(t, "c", 5).await;
    let mx = parse(&s.metrics_text().await);
    let failed = |queue: &str| {
        get(
            &mx,
            &format!("clew_jobs{{queue=\"{queue}\",state=\"failed\"}}"),
        )
    };
    assert_eq!(failed("a"), 2.0);
    assert_eq!(failed("b"), 1.0);
    assert_eq!(failed("c"), 0.0);
    assert_eq!(get(&mx, r#"clew_failed_jobs{group="Boom"}"#), 2.0);
    assert_eq!(get(&mx, r#"clew_failed_jobs{group="Bang"}"#), 1.0);

    // Retrying one of a's puts it back: a's failed count drops.
    let page = s
        .post(
            t + 3.0,
            "/v1/qless",
            json!({"command": "failed", "args": ["Bang"]}),
        )
        .await;
    let jid = page["result"]["jobs"][0]
        .as_str()
        .expect("a Bang job")
        .to_owned();
    s.post(
        t + 3.0,
        "/v1/qless",
        json!({"command": "unfail", "args": ["a", "Bang", "10"]}),
    )
    .await;
    let mx = parse(&s.metrics_text().await);
    assert_eq!(
        get(&mx, r#"clew_jobs{queue="a",state="failed"}"#),
        1.0,
        "{jid}"
    );
    assert_eq!(get(&mx, r#"clew_jobs{queue="a",state="waiting"}"#), 1.0);
}

/// A free port on 127.0.0.1 (bound, read, released).
fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .expect("free port")
        .port()
}

/// Kills the child process when dropped.
struct Child(std::process::Child);

impl Drop for Child {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// One instant query against Prometheus: the single value of `expr`, if
/// the answer has exactly one sample.
async fn query(http: &reqwest::Client, base: &str, expr: &str) -> Option<f64> {
    let resp = http
        .get(format!("{base}/api/v1/query"))
        .query(&[("query", expr)])
        .send()
        .await
        .ok()?;
    let v: Value = resp.json().await.ok()?;
    let result = v["data"]["result"].as_array()?;
    if result.len() != 1 {
        return None;
    }
    result[0]["value"][1].as_str()?.parse().ok()
}

#[tokio::test]
async fn a_real_prometheus_scrapes_the_metrics() {
    let Ok(found) = which("prometheus") else {
        assert!(
            std::env::var("CI").as_deref() != Ok("true"),
            "the prometheus binary is required when CI=true (apt-get install prometheus)"
        );
        println!("SKIPPED: no prometheus binary on PATH");
        return;
    };
    let s = start(None).await;
    let (n, m, w) = (5, 2, 3);
    run_jobs(&s, n, m, w).await;

    let dir = tempfile::tempdir().expect("tempdir");
    let config = dir.path().join("prometheus.yml");
    std::fs::write(
        &config,
        format!(
            "global:\n  scrape_interval: 1s\n  evaluation_interval: 1s\n\
             scrape_configs:\n  - job_name: clew\n    scrape_interval: 1s\n    \
             authorization:\n      type: Bearer\n      credentials: {TOKEN}\n    \
             static_configs:\n      - targets: ['{}']\n",
            s.addr
        ),
    )
    .expect("write config");
    let port = free_port();
    let log = std::fs::File::create(dir.path().join("prometheus.log")).expect("log file");
    let child = std::process::Command::new(found)
        .arg(format!("--config.file={}", config.display()))
        .arg(format!(
            "--storage.tsdb.path={}",
            dir.path().join("data").display()
        ))
        .arg(format!("--web.listen-address=127.0.0.1:{port}"))
        .stdout(std::process::Stdio::null())
        .stderr(log)
        .spawn()
        .expect("start prometheus");
    let _child = Child(child);

    let base = format!("http://127.0.0.1:{port}");
    let http = reqwest::Client::new();
    let want = [
        (
            r#"sum(clew_jobs_total{job="clew",outcome="completed"})"#,
            n as f64,
        ),
        (
            r#"sum(clew_jobs_total{job="clew",outcome="failed"})"#,
            m as f64,
        ),
        (
            r#"clew_jobs{job="clew",queue="q",state="waiting"}"#,
            (w + 1) as f64,
        ),
        (
            r#"clew_job_wait_seconds_count{job="clew",queue="q"}"#,
            (n + m + 1) as f64,
        ),
        (r#"clew_workers{job="clew"}"#, 1.0),
        (
            r#"clew_jobs{job="clew",queue="q",state="failed"}"#,
            m as f64,
        ),
        (
            r#"clew_store_seconds_count{job="clew",command="complete"}"#,
            n as f64,
        ),
    ];
    let deadline = Instant::now() + Duration::from_secs(60);
    let mut last = Vec::new();
    loop {
        last.clear();
        for (expr, _) in &want {
            last.push(query(&http, &base, expr).await);
        }
        if want.iter().zip(&last).all(|((_, w), got)| *got == Some(*w)) {
            break;
        }
        if Instant::now() > deadline {
            let log =
                std::fs::read_to_string(dir.path().join("prometheus.log")).unwrap_or_default();
            panic!("Prometheus answers {last:?}, want {want:?}; its log:\n{log}");
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// The path of `program` on `PATH`.
fn which(program: &str) -> Result<std::path::PathBuf, ()> {
    let path = std::env::var_os("PATH").ok_or(())?;
    std::env::split_paths(&path)
        .map(|d| d.join(program))
        .find(|p| p.is_file())
        .ok_or(())
}

#[tokio::test]
async fn a_retry_out_of_retries_counts_as_failed_not_retried() {
    let s = start(None).await;
    let jid = s.put(1000.0, "q", 0).await;
    assert_eq!(s.pop(1001.0, "q").await, jid);
    s.post(
        1002.0,
        &format!("/v1/jobs/{jid}/retry"),
        json!({"worker": "w1"}),
    )
    .await;
    let mx = parse(&s.metrics_text().await);
    assert_eq!(
        get(&mx, r#"clew_jobs_total{queue="q",outcome="failed"}"#),
        1.0
    );
    assert!(
        !mx.contains_key(r#"clew_jobs_total{queue="q",outcome="retried"}"#),
        "{mx:?}"
    );
    assert_eq!(
        get(&mx, r#"clew_failed_jobs{group="failed-retries-q"}"#),
        1.0
    );
    assert_eq!(get(&mx, r#"clew_jobs{queue="q",state="waiting"}"#), 0.0);
    // Nothing ran at the server's clock: no live workers.
    assert_eq!(get(&mx, "clew_workers"), 0.0);
}
