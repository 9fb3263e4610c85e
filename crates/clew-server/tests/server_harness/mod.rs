//! Shared by the server's integration tests: a real server on 127.0.0.1
//! port 0 over a temporary SQLite store, an HTTP client, and a small
//! Server-Sent Events reader.
#![allow(dead_code)]

use std::future::Future;
use std::time::{Duration, Instant};

use clew_core::Engine;
use clew_server::{AppState, ServerConfig};
use reqwest::StatusCode;
use serde_json::{json, Value};
use tokio::sync::oneshot;
use tokio::task::JoinHandle;

/// How long any wait in these tests may take before the test fails.
pub const DEADLINE: Duration = Duration::from_secs(10);

/// A running server.
pub struct TestServer {
    /// `http://127.0.0.1:PORT`.
    pub base: String,
    /// A client without a token.
    pub client: reqwest::Client,
    /// The server's state (its engine reads the store directly).
    pub state: AppState,
    stop: Option<oneshot::Sender<()>>,
    task: Option<JoinHandle<std::io::Result<()>>>,
    _dir: tempfile::TempDir,
}

/// Test mode on, no token.
pub fn test_mode() -> ServerConfig {
    ServerConfig {
        test_mode: true,
        ..ServerConfig::default()
    }
}

/// Test mode off, no token.
pub fn production() -> ServerConfig {
    ServerConfig::default()
}

impl TestServer {
    /// Starts a server with `config` on a fresh store.
    pub async fn start(config: ServerConfig) -> TestServer {
        let (store, dir) = clew_sqlite::testing::temp_store();
        let state = AppState::new(Engine::new(store), config);
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .expect("bind 127.0.0.1:0");
        let addr = listener.local_addr().expect("local addr");
        let (stop, stopped) = oneshot::channel::<()>();
        let task = tokio::spawn(clew_server::serve(listener, state.clone(), async move {
            let _ = stopped.await;
        }));
        TestServer {
            base: format!("http://{addr}"),
            client: reqwest::Client::new(),
            state,
            stop: Some(stop),
            task: Some(task),
            _dir: dir,
        }
    }

    /// The URL of `path`.
    pub fn url(&self, path: &str) -> String {
        format!("{}{path}", self.base)
    }

    /// `POST /v1/qless` with `body`; the status and the JSON answer.
    pub async fn post_qless(&self, body: Value) -> (StatusCode, Value) {
        let resp = self
            .client
            .post(self.url("/v1/qless"))
            .json(&body)
            .send()
            .await
            .expect("POST /v1/qless");
        json_of(resp).await
    }

    /// Runs a qless command with string arguments at `now`; the status and
    /// the JSON answer.
    pub async fn qless_at(&self, now: f64, command: &str, args: &[&str]) -> (StatusCode, Value) {
        self.post_qless(json!({"command": command, "now": now, "args": args}))
            .await
    }

    /// Runs a qless command that must succeed; its `result`.
    pub async fn ok(&self, now: f64, command: &str, args: &[&str]) -> Value {
        let (status, body) = self.qless_at(now, command, args).await;
        assert_eq!(status, StatusCode::OK, "{command} {args:?}: {body}");
        body["result"].clone()
    }

    /// `GET /v1/qless/events?after=SEQ`: the events list.
    pub async fn events_after(&self, after: i64) -> Vec<Value> {
        let resp = self
            .client
            .get(self.url(&format!("/v1/qless/events?after={after}")))
            .send()
            .await
            .expect("GET /v1/qless/events");
        let (status, body) = json_of(resp).await;
        assert_eq!(status, StatusCode::OK, "{body}");
        body["events"].as_array().expect("events array").clone()
    }

    /// Stops the server gracefully; fails the test if that takes longer
    /// than [`DEADLINE`].
    pub async fn shutdown(mut self) {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
        if let Some(task) = self.task.take() {
            tokio::time::timeout(DEADLINE, task)
                .await
                .expect("graceful shutdown finished in time")
                .expect("server task")
                .expect("server result");
        }
    }
}

/// The status and JSON body of a response (fails the test if the body is
/// not JSON).
pub async fn json_of(resp: reqwest::Response) -> (StatusCode, Value) {
    let status = resp.status();
    let ctype = resp
        .headers()
        .get(reqwest::header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .unwrap_or("")
        .to_owned();
    let text = resp.text().await.expect("response body");
    let body: Value = serde_json::from_str(&text)
        .unwrap_or_else(|e| panic!("status {status}: body is not JSON ({e}): {text:?}"));
    assert!(
        ctype.starts_with("application/json"),
        "status {status}: content type {ctype:?} for {text}"
    );
    (status, body)
}

/// Asserts an error answer: `status`, and `{"error": {"code", "message"}}`
/// whose message contains `wording`.
pub fn assert_error(got: &(StatusCode, Value), status: StatusCode, wording: &str) {
    let (s, body) = got;
    assert_eq!(*s, status, "{body}");
    let message = body["error"]["message"]
        .as_str()
        .unwrap_or_else(|| panic!("no error.message in {body}"));
    assert!(body["error"]["code"].is_string(), "no error.code in {body}");
    assert!(
        message.contains(wording),
        "message {message:?} lacks {wording:?}"
    );
}

/// Polls `check` every 10 ms until it returns `Some`, failing after
/// [`DEADLINE`].
pub async fn wait_for<T, F, Fut>(what: &str, mut check: F) -> T
where
    F: FnMut() -> Fut,
    Fut: Future<Output = Option<T>>,
{
    let start = Instant::now();
    loop {
        if let Some(v) = check().await {
            return v;
        }
        assert!(start.elapsed() < DEADLINE, "timed out waiting for {what}");
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
}

/// One Server-Sent Event.
#[derive(Clone, Debug, PartialEq)]
pub struct SseMessage {
    /// The `id:` field.
    pub id: Option<String>,
    /// The `event:` field.
    pub event: Option<String>,
    /// The `data:` lines, joined by newlines.
    pub data: String,
}

impl SseMessage {
    /// The data as JSON.
    pub fn json(&self) -> Value {
        serde_json::from_str(&self.data).expect("SSE data is JSON")
    }
}

/// Reads an SSE response frame by frame.
pub struct SseReader {
    resp: reqwest::Response,
    buf: String,
    /// Comment lines seen so far (without the leading colon).
    pub comments: Vec<String>,
    ended: bool,
}

impl SseReader {
    /// Opens `GET url` with `headers`; asserts a 200 event stream.
    pub async fn open(client: &reqwest::Client, url: &str, headers: &[(&str, &str)]) -> SseReader {
        let mut req = client.get(url).header("accept", "text/event-stream");
        for (k, v) in headers {
            req = req.header(*k, *v);
        }
        let resp = req.send().await.expect("GET event stream");
        assert_eq!(resp.status(), StatusCode::OK, "{url}");
        let ctype = resp
            .headers()
            .get(reqwest::header::CONTENT_TYPE)
            .and_then(|v| v.to_str().ok())
            .unwrap_or("")
            .to_owned();
        assert!(ctype.starts_with("text/event-stream"), "{ctype}");
        let mut reader = SseReader {
            resp,
            buf: String::new(),
            comments: Vec::new(),
            ended: false,
        };
        // The stream opens with a comment naming its cursor; once it is
        // here the cursor is set.
        reader.fill_until(|r| !r.comments.is_empty()).await;
        reader
    }

    async fn read_chunk(&mut self, within: Duration) -> bool {
        if self.ended {
            return false;
        }
        match tokio::time::timeout(within, self.resp.chunk()).await {
            Ok(Ok(Some(bytes))) => {
                self.buf.push_str(&String::from_utf8_lossy(&bytes));
                true
            }
            Ok(Ok(None)) => {
                self.ended = true;
                false
            }
            Ok(Err(e)) => panic!("reading the event stream: {e}"),
            Err(_) => false,
        }
    }

    async fn fill_until(&mut self, done: impl Fn(&SseReader) -> bool) {
        let start = Instant::now();
        while !done(self) {
            let left = DEADLINE.saturating_sub(start.elapsed());
            assert!(!left.is_zero(), "timed out reading the event stream");
            self.parse_comments_only();
            if done(self) {
                break;
            }
            if !self.read_chunk(left).await && self.ended {
                panic!("event stream ended early");
            }
        }
    }

    /// Moves leading comment-only frames out of the buffer.
    fn parse_comments_only(&mut self) {
        while let Some(end) = self.buf.find("\n\n") {
            let frame = &self.buf[..end];
            if !frame.lines().all(|l| l.starts_with(':')) {
                break;
            }
            let comments: Vec<String> = frame
                .lines()
                .map(|l| l.trim_start_matches(':').trim().to_owned())
                .collect();
            self.comments.extend(comments);
            self.buf.drain(..end + 2);
        }
    }

    fn take_frame(&mut self) -> Option<SseMessage> {
        loop {
            let end = self.buf.find("\n\n")?;
            let frame: String = self.buf.drain(..end + 2).collect();
            let mut msg = SseMessage {
                id: None,
                event: None,
                data: String::new(),
            };
            let mut has_field = false;
            for line in frame.lines() {
                if let Some(c) = line.strip_prefix(':') {
                    self.comments.push(c.trim().to_owned());
                    continue;
                }
                let (name, value) = line.split_once(':').unwrap_or((line, ""));
                let value = value.strip_prefix(' ').unwrap_or(value);
                has_field = true;
                match name {
                    "id" => msg.id = Some(value.to_owned()),
                    "event" => msg.event = Some(value.to_owned()),
                    "data" => {
                        if !msg.data.is_empty() {
                            msg.data.push('\n');
                        }
                        msg.data.push_str(value);
                    }
                    _ => {}
                }
            }
            if has_field {
                return Some(msg);
            }
        }
    }

    /// The next event, or `None` if none arrives within `within` (or the
    /// stream ended).
    pub async fn next_within(&mut self, within: Duration) -> Option<SseMessage> {
        let start = Instant::now();
        loop {
            if let Some(m) = self.take_frame() {
                return Some(m);
            }
            let left = within.saturating_sub(start.elapsed());
            if left.is_zero() || !self.read_chunk(left).await && self.ended {
                return None;
            }
        }
    }

    /// The next event; fails the test after [`DEADLINE`].
    pub async fn next(&mut self) -> SseMessage {
        self.next_within(DEADLINE)
            .await
            .expect("an event within the deadline")
    }

    /// The next `n` events.
    pub async fn take(&mut self, n: usize) -> Vec<SseMessage> {
        let mut out = Vec::with_capacity(n);
        for _ in 0..n {
            out.push(self.next().await);
        }
        out
    }

    /// Whether the server ended the stream (waits up to `within`).
    pub async fn ends_within(&mut self, within: Duration) -> bool {
        let start = Instant::now();
        while !self.ended {
            let left = within.saturating_sub(start.elapsed());
            if left.is_zero() {
                return false;
            }
            self.read_chunk(left).await;
        }
        true
    }
}
