//! Shared helpers of the resource-API tests: a real server on 127.0.0.1:0
//! over a temporary SQLite store, and a small JSON client.

#![allow(dead_code)] // Each test binary uses a different part.

use std::sync::Arc;

use clew_core::Engine;
use clew_server::{AppState, ServerConfig};
use reqwest::{Method, StatusCode};
use serde_json::Value;
use tempfile::TempDir;
use tokio::sync::oneshot;

/// A running server and a client for it.
pub struct Server {
    /// `http://127.0.0.1:PORT`.
    pub base: String,
    /// The HTTP client.
    pub http: reqwest::Client,
    /// Test mode: `X-Clew-Now` is sent with every request when set.
    pub now: Option<f64>,
    _dir: TempDir,
    _stop: oneshot::Sender<()>,
}

/// Starts a server (test mode or not) on a fresh store.
pub async fn start(test_mode: bool) -> Server {
    let (store, dir) = clew_sqlite::testing::temp_store();
    let engine = Engine::new(store as Arc<dyn clew_core::Store>);
    let config = ServerConfig {
        test_mode,
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
    Server {
        base: format!("http://{addr}"),
        http: reqwest::Client::new(),
        now: None,
        _dir: dir,
        _stop: stop,
    }
}

impl Server {
    /// Sends a request with an optional JSON body; returns status and body.
    pub async fn call(
        &self,
        method: Method,
        path: &str,
        body: Option<Value>,
    ) -> (StatusCode, Value) {
        let mut req = self.http.request(method, format!("{}{}", self.base, path));
        if let Some(now) = self.now {
            req = req.header("x-clew-now", now.to_string());
        }
        if let Some(b) = body {
            req = req.json(&b);
        }
        let resp = req.send().await.expect("request sent");
        let status = resp.status();
        let text = resp.text().await.expect("body read");
        let json = if text.is_empty() {
            Value::Null
        } else {
            serde_json::from_str(&text).unwrap_or_else(|e| panic!("non-JSON body {text:?}: {e}"))
        };
        (status, json)
    }

    /// Sends a raw body with a content type.
    pub async fn raw(&self, method: Method, path: &str, body: &str) -> (StatusCode, Value) {
        let resp = self
            .http
            .request(method, format!("{}{}", self.base, path))
            .header("content-type", "application/json")
            .body(body.to_owned())
            .send()
            .await
            .expect("request sent");
        let status = resp.status();
        let json = resp.json::<Value>().await.expect("JSON body");
        (status, json)
    }

    /// GET, expecting 200.
    pub async fn get(&self, path: &str) -> Value {
        let (s, v) = self.call(Method::GET, path, None).await;
        assert_eq!(s, StatusCode::OK, "GET {path}: {v}");
        v
    }

    /// POST, expecting a 2xx.
    pub async fn post(&self, path: &str, body: Value) -> Value {
        let (s, v) = self.call(Method::POST, path, Some(body)).await;
        assert!(s.is_success(), "POST {path}: {s} {v}");
        v
    }

    /// A request expecting a given status; returns the body.
    pub async fn expect(
        &self,
        status: StatusCode,
        method: Method,
        path: &str,
        body: Option<Value>,
    ) -> Value {
        let (s, v) = self.call(method.clone(), path, body).await;
        assert_eq!(s, status, "{method} {path}: {v}");
        v
    }

    /// Puts a job; returns its jid.
    pub async fn put(&self, queue: &str, body: Value) -> String {
        let v = self.post(&format!("/v1/queues/{queue}/jobs"), body).await;
        v["jid"].as_str().expect("jid in put answer").to_owned()
    }

    /// Pops one job for `worker`; returns the job documents.
    pub async fn pop(&self, queue: &str, worker: &str) -> Vec<Value> {
        let v = self
            .post(
                &format!("/v1/queues/{queue}/pop"),
                serde_json::json!({"worker": worker}),
            )
            .await;
        v.as_array().expect("pop answers an array").clone()
    }

    /// The job document.
    pub async fn job(&self, jid: &str) -> Value {
        self.get(&format!("/v1/jobs/{jid}")).await
    }
}

/// Asserts an error body: its code, and that its message mentions `needle`.
pub fn assert_error(body: &Value, code: &str, needle: &str) {
    assert_eq!(body["error"]["code"], code, "error code in {body}");
    let msg = body["error"]["message"].as_str().unwrap_or("");
    assert!(
        msg.contains(needle),
        "error message {msg:?} should mention {needle:?}"
    );
}
