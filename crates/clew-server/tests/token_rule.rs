//! The token rule on every route: each path and method of the OpenAPI
//! document (plus the routes it does not list: `/metrics`, the dashboard's
//! and unknown ones) answers 401 JSON without the token, with a wrong one,
//! and with one of the right length but wrong content; only `/healthz` and
//! the dashboard's page, assets and login (documented public in README.md,
//! "Security") answer without it. None of the refused requests changes
//! anything. Likewise the CSRF rule on every state-changing route: a
//! browser request (session cookie) without the session's CSRF token,
//! with a wrong one, or from a foreign origin is refused (403 `csrf`) and
//! changes nothing.

mod server_harness;

use reqwest::{Method, StatusCode};
use serde_json::{json, Value};
use server_harness::{json_of, TestServer};

use clew_server::ServerConfig;

const TOKEN: &str = "s3cret-token-0123456789";

/// Every (method, path) of the OpenAPI document, with `{param}`s filled in.
async fn documented_routes(server: &TestServer) -> Vec<(Method, String)> {
    let doc: Value = server
        .client
        .get(server.url("/v1/openapi.json"))
        .bearer_auth(TOKEN)
        .send()
        .await
        .expect("openapi")
        .json()
        .await
        .expect("openapi json");
    let paths = doc["paths"].as_object().expect("paths");
    let mut out = Vec::new();
    for (path, item) in paths {
        let filled: String = path
            .split('/')
            .map(|seg| if seg.starts_with('{') { "x1" } else { seg })
            .collect::<Vec<_>>()
            .join("/");
        for method in item.as_object().expect("path item").keys() {
            let m = match method.as_str() {
                "get" => Method::GET,
                "post" => Method::POST,
                "put" => Method::PUT,
                "delete" => Method::DELETE,
                "patch" => Method::PATCH,
                _ => continue,
            };
            out.push((m, filled.clone()));
        }
    }
    out
}

/// A picture of the store through the engine: queues, events, config.
async fn store_picture(server: &TestServer) -> Value {
    let engine = server.state.engine();
    let events = engine.store().events_after(0, 1000).await.expect("events");
    json!({
        "queues": engine.qless("queues", None, &[]).await.expect("queues"),
        "config": engine.qless("config.get", None, &[]).await.expect("config"),
        "workers": engine.qless("workers", None, &[]).await.expect("workers"),
        "events": events.len(),
    })
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_documented_route_needs_the_token() {
    let server = TestServer::start(ServerConfig {
        token: Some(TOKEN.to_owned()),
        ..ServerConfig::default()
    })
    .await;
    // Something to protect: a job in a queue.
    let put = server
        .client
        .post(server.url("/v1/queues/q/jobs"))
        .bearer_auth(TOKEN)
        .json(&json!({"klass": "K", "jid": "x1"}))
        .send()
        .await
        .expect("put");
    assert_eq!(put.status(), StatusCode::CREATED);
    let before = store_picture(&server).await;

    // `/healthz` is in the document and public by design.
    let mut routes: Vec<_> = documented_routes(&server)
        .await
        .into_iter()
        .filter(|(_, p)| p != "/healthz")
        .collect();
    assert!(
        routes.len() >= 40,
        "the document lists only {} operations",
        routes.len()
    );
    for extra in [
        "/metrics",
        "/v1/no/such/route",
        "/not-v1-either",
        "/v1/qless",
    ] {
        routes.push((Method::GET, extra.to_owned()));
        routes.push((Method::POST, extra.to_owned()));
    }
    // Same length as the token, different content; and the token's prefix.
    let same_len: String = TOKEN
        .chars()
        .map(|c| if c == 'x' { 'y' } else { 'x' })
        .collect();
    assert_eq!(same_len.len(), TOKEN.len());
    let last_differs = format!("{}X", &TOKEN[..TOKEN.len() - 1]);
    let bad_auth: Vec<Option<String>> = vec![
        None,
        Some("Bearer wrong".to_owned()),
        Some(format!("Bearer {same_len}")),
        Some(format!("Bearer {last_differs}")),
        Some(format!("Bearer {}", &TOKEN[..TOKEN.len() - 1])),
        Some(format!("Basic {TOKEN}")),
        Some(TOKEN.to_owned()),
    ];
    let mut checked = 0;
    for (method, path) in &routes {
        for auth in &bad_auth {
            let mut req = server
                .client
                .request(method.clone(), server.url(path))
                .json(&json!({"klass": "K", "worker": "w", "command": "cancel", "args": ["x1"]}));
            if let Some(a) = auth {
                req = req.header("authorization", a);
            }
            let got = json_of(req.send().await.expect("request")).await;
            assert_eq!(
                got.0,
                StatusCode::UNAUTHORIZED,
                "{method} {path} with {auth:?}: {}",
                got.1
            );
            assert_eq!(got.1["error"]["code"], "unauthorized", "{method} {path}");
            checked += 1;
        }
    }
    assert_eq!(
        before,
        store_picture(&server).await,
        "a refused request changed the store"
    );

    // What is public, and nothing else.
    for (path, status) in [
        ("/healthz", StatusCode::OK),
        ("/", StatusCode::OK),
        ("/ui/session", StatusCode::OK),
    ] {
        let r = server
            .client
            .get(server.url(path))
            .send()
            .await
            .expect("get");
        assert_eq!(r.status(), status, "{path} is public");
    }
    // The right token opens every documented route (no 401).
    let r = server
        .client
        .get(server.url("/v1/queues"))
        .bearer_auth(TOKEN)
        .send()
        .await
        .expect("get");
    assert_eq!(r.status(), StatusCode::OK);
    assert!(checked >= 40 * bad_auth.len(), "{checked} requests");
}

#[test]
fn constant_time_eq_compares_whole_strings() {
    use clew_server::auth::constant_time_eq;
    assert!(constant_time_eq(b"", b""));
    assert!(constant_time_eq(b"s3cret", b"s3cret"));
    assert!(!constant_time_eq(b"s3cret", b"s3creT"));
    assert!(!constant_time_eq(b"s3cret", b"S3cret"));
    assert!(!constant_time_eq(b"s3cret", b"s3cre"));
    assert!(!constant_time_eq(b"s3cret", b"s3cretx"));
    assert!(!constant_time_eq(b"", b"x"));
    // Every single-bit difference at every position is seen.
    let token = b"0123456789abcdef";
    for i in 0..token.len() {
        for bit in 0..8 {
            let mut other = *token;
            other[i] ^= 1 << bit;
            assert!(!constant_time_eq(token, &other), "byte {i} bit {bit}");
        }
    }
}

/// The session cookie and CSRF token of a no-token server's dashboard.
async fn browser_session(s: &TestServer) -> (String, String) {
    let r = s
        .client
        .get(s.url("/ui/session"))
        .send()
        .await
        .expect("session");
    let cookie = r
        .headers()
        .get(reqwest::header::SET_COOKIE)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.split(';').next())
        .expect("a session cookie")
        .to_owned();
    let body: Value = r.json().await.expect("session json");
    (cookie, body["csrf"].as_str().expect("csrf").to_owned())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_state_changing_route_needs_the_csrf_token_from_a_browser() {
    let server = TestServer::start(ServerConfig::default()).await;
    let put = server
        .client
        .post(server.url("/v1/queues/q/jobs"))
        .json(&json!({"klass": "K", "jid": "x1"}))
        .send()
        .await
        .expect("put");
    assert_eq!(put.status(), StatusCode::CREATED);
    let before = store_picture(&server).await;
    let (cookie, csrf) = browser_session(&server).await;
    let writes: Vec<(Method, String)> = documented_routes(&server)
        .await
        .into_iter()
        .filter(|(m, _)| *m != Method::GET)
        .collect();
    assert!(writes.len() >= 30, "only {} writes", writes.len());
    let origin = server.base.clone();
    // (header name, value) sets a browser could send; none may pass.
    let refused: Vec<Vec<(&str, String)>> = vec![
        vec![("cookie", cookie.clone())],
        vec![("cookie", cookie.clone()), ("origin", origin.clone())],
        vec![
            ("cookie", cookie.clone()),
            ("origin", origin.clone()),
            ("x-csrf-token", "0".repeat(csrf.len())),
        ],
        vec![
            ("cookie", cookie.clone()),
            ("origin", "http://evil.example".to_owned()),
            ("x-csrf-token", csrf.clone()),
        ],
        vec![("origin", "http://evil.example".to_owned())],
        vec![("sec-fetch-site", "cross-site".to_owned())],
    ];
    for (method, path) in &writes {
        for headers in &refused {
            let mut req = server
                .client
                .request(method.clone(), server.url(path))
                .json(&json!({"klass": "K", "worker": "w", "command": "cancel", "args": ["x1"]}));
            for (k, v) in headers {
                req = req.header(*k, v);
            }
            let got = json_of(req.send().await.expect("request")).await;
            assert_eq!(
                got.0,
                StatusCode::FORBIDDEN,
                "{method} {path} with {headers:?}: {}",
                got.1
            );
            assert_eq!(got.1["error"]["code"], "csrf", "{method} {path}");
        }
    }
    assert_eq!(
        before,
        store_picture(&server).await,
        "a refused browser request changed the store"
    );
    // The same browser with its token and origin gets through.
    let r = server
        .client
        .post(server.url("/v1/queues/q/pause"))
        .header("cookie", &cookie)
        .header("origin", &origin)
        .header("x-csrf-token", &csrf)
        .send()
        .await
        .expect("pause");
    assert_eq!(r.status(), StatusCode::OK);
}
