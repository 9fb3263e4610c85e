//! Security defaults: the API token on every route but `/healthz`, the
//! request-body limit, malformed and mistyped bodies, none of which change
//! any state.

mod server_harness;

use reqwest::{Method, StatusCode};
use serde_json::{json, Value};
use server_harness::{assert_error, json_of, SseReader, TestServer};

use clew_server::ServerConfig;

const TOKEN: &str = "s3cret-token";

fn with_token() -> ServerConfig {
    ServerConfig {
        token: Some(TOKEN.to_owned()),
        ..ServerConfig::default()
    }
}

/// One request of every route group.
fn routes() -> Vec<(Method, &'static str, Option<Value>)> {
    let put = json!({"command": "put", "args": ["w", "q", "j1", "K", "{}", "0"]});
    vec![
        (Method::POST, "/v1/qless", Some(put)),
        (Method::GET, "/v1/qless/events?after=0", None),
        (Method::POST, "/v1/qless/flush", None),
        (Method::GET, "/v1/events", None),
        (Method::GET, "/v1/queues", None),
        (
            Method::POST,
            "/v1/queues/q/jobs",
            Some(json!({"klass": "K", "jid": "j2"})),
        ),
        (Method::GET, "/v1/jobs/j1", None),
        (Method::GET, "/v1/openapi.json", None),
        (Method::GET, "/v1/no/such/route", None),
        (Method::GET, "/not-v1-either", None),
    ]
}

/// Whether any job or event exists, read through the engine itself.
async fn state_is_empty(server: &TestServer) -> bool {
    let engine = server.state.engine();
    let events = engine.store().events_after(0, 10).await.expect("events");
    let queues = engine.qless("queues", None, &[]).await.expect("queues");
    events.is_empty() && queues == json!([])
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_route_but_healthz_needs_the_token() {
    let server = TestServer::start(with_token()).await;
    let bad_auth: [Option<String>; 4] = [
        None,
        Some("Bearer wrong-token".to_owned()),
        Some(format!("Basic {TOKEN}")),
        Some(format!("Bearer {TOKEN}x")),
    ];
    for (method, path, body) in routes() {
        for auth in &bad_auth {
            let mut req = server.client.request(method.clone(), server.url(path));
            if let Some(b) = &body {
                req = req.json(b);
            }
            if let Some(a) = auth {
                req = req.header("authorization", a);
            }
            let got = json_of(req.send().await.expect("request")).await;
            assert_error(&got, StatusCode::UNAUTHORIZED, "token");
            assert_eq!(got.1["error"]["code"], "unauthorized", "{method} {path}");
        }
    }
    assert!(
        state_is_empty(&server).await,
        "refused requests changed nothing"
    );

    // The health check is open.
    let resp = server
        .client
        .get(server.url("/healthz"))
        .send()
        .await
        .expect("healthz");
    let (status, body) = json_of(resp).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(body["ok"], true);

    // With the token every route group answers (an event stream opens).
    let auth = format!("Bearer {TOKEN}");
    for (method, path, body) in routes() {
        if path == "/v1/events" {
            let s = SseReader::open(
                &server.client,
                &server.url(path),
                &[("authorization", &auth)],
            )
            .await;
            assert!(!s.comments.is_empty());
            continue;
        }
        let mut req = server
            .client
            .request(method.clone(), server.url(path))
            .header("authorization", &auth);
        if let Some(b) = &body {
            req = req.json(b);
        }
        let resp = req.send().await.expect("request");
        assert_ne!(resp.status(), StatusCode::UNAUTHORIZED, "{method} {path}");
        let expected_ok =
            !path.contains("no/such") && !path.contains("not-v1") && !path.ends_with("flush");
        assert_eq!(
            resp.status().is_success(),
            expected_ok,
            "{method} {path}: {}",
            resp.status()
        );
    }
    // The scheme is case-insensitive.
    let resp = server
        .client
        .get(server.url("/v1/queues"))
        .header("authorization", format!("bearer {TOKEN}"))
        .send()
        .await
        .expect("GET");
    assert_eq!(resp.status(), StatusCode::OK);
    assert_eq!(
        server
            .state
            .engine()
            .get("j1")
            .await
            .expect("get")
            .map(|j| j.record.queue),
        Some("q".to_owned())
    );
    server.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_body_over_the_limit_is_a_413_json_error_and_changes_nothing() {
    let server = TestServer::start(ServerConfig {
        body_limit: 1024,
        ..ServerConfig::default()
    })
    .await;
    let big = "x".repeat(4096);
    let data = json!({"blob": big}).to_string();
    let compat = json!({"command": "put", "args": ["w", "q", "big", "K", data, "0"]});
    let resource = json!({"klass": "K", "jid": "big2", "data": {"blob": big}});
    for (path, body) in [("/v1/qless", compat), ("/v1/queues/q/jobs", resource)] {
        let resp = server
            .client
            .post(server.url(path))
            .json(&body)
            .send()
            .await
            .expect("POST");
        let got = json_of(resp).await;
        assert_error(&got, StatusCode::PAYLOAD_TOO_LARGE, "");
        assert_eq!(
            got.1["error"]["code"], "body_too_large",
            "{path}: {}",
            got.1
        );
    }
    assert!(state_is_empty(&server).await, "nothing was put");

    // A body under the limit goes through.
    let (status, body) = server
        .post_qless(json!({"command": "put", "args": ["w", "q", "small", "K", "{}", "0"]}))
        .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    server.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn malformed_or_mistyped_bodies_are_4xx_json_and_change_nothing() {
    let server = TestServer::start(ServerConfig::default()).await;
    let valid_put = r#"{"command": "put", "args": ["w", "q", "j1", "K", "{}", "0"]}"#;
    let valid_job = r#"{"klass": "K", "jid": "j2"}"#;
    let cases: Vec<(&str, Option<&str>, &str)> = vec![
        (
            "/v1/qless",
            Some("application/json"),
            r#"{"command": "put", "args": ["#,
        ),
        ("/v1/qless", Some("application/json"), "\u{0}\u{1}binary"),
        ("/v1/qless", Some("text/plain"), valid_put),
        ("/v1/qless", None, valid_put),
        (
            "/v1/queues/q/jobs",
            Some("application/json"),
            r#"{"klass": "#,
        ),
        ("/v1/queues/q/jobs", Some("text/plain"), valid_job),
        ("/v1/queues/q/jobs", None, valid_job),
        (
            "/v1/queues/q/jobs",
            Some("application/json"),
            r#"{"klass": 5, "jid": "j2"}"#,
        ),
    ];
    for (path, ctype, body) in cases {
        let mut req = server.client.post(server.url(path)).body(body);
        if let Some(c) = ctype {
            req = req.header("content-type", c);
        }
        let (status, answer) = json_of(req.send().await.expect("POST")).await;
        assert!(
            status.is_client_error(),
            "{path} {ctype:?} {body:?}: {status} {answer}"
        );
        let message = answer["error"]["message"].as_str().unwrap_or("");
        assert!(!message.is_empty(), "{path}: a message: {answer}");
        assert!(answer["error"]["code"].is_string(), "{answer}");
    }
    assert!(state_is_empty(&server).await, "nothing was put");

    // A method a route does not take is a JSON 405.
    let resp = server
        .client
        .delete(server.url("/v1/qless"))
        .send()
        .await
        .expect("DELETE");
    let (status, body) = json_of(resp).await;
    assert_eq!(status, StatusCode::METHOD_NOT_ALLOWED, "{body}");
    assert!(body["error"]["message"].is_string(), "{body}");
    server.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn job_data_is_stored_and_returned_verbatim() {
    let server = TestServer::start(ServerConfig::default()).await;
    // Text that would do something if anything evaluated it.
    let data = r#"{"script":"<script>alert(1)</script>","lua":"redis.call('FLUSHALL')","shell":"$(rm -rf /)","n":1.50}"#;
    let (status, body) = server
        .post_qless(json!({"command": "put", "args": ["w", "q", "j1", "K", data, "0"]}))
        .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    let (status, body) = server
        .post_qless(json!({"command": "get", "args": ["j1"]}))
        .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(body["result"]["data"], data);
    server.shutdown().await;
}
