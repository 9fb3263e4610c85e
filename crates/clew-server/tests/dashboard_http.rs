//! The dashboard over plain HTTP: embedded assets, security headers,
//! sessions, the token rule for browsers, and the CSRF rule.

mod server_harness;

use reqwest::header::{COOKIE, ORIGIN, SET_COOKIE};
use reqwest::StatusCode;
use serde_json::Value;
use server_harness::{json_of, TestServer};

use clew_server::ServerConfig;

const TOKEN: &str = "dash-token";

fn with_token() -> ServerConfig {
    ServerConfig {
        token: Some(TOKEN.to_owned()),
        ..ServerConfig::default()
    }
}

/// A session from `GET /ui/session` (no-token server): cookie and CSRF token.
async fn session(s: &TestServer) -> (String, String) {
    let r = s.client.get(s.url("/ui/session")).send().await.unwrap();
    let cookie = set_cookie(&r);
    let (status, body) = json_of(r).await;
    assert_eq!(status, StatusCode::OK);
    (cookie, body["csrf"].as_str().expect("csrf").to_owned())
}

fn set_cookie(r: &reqwest::Response) -> String {
    let v = r
        .headers()
        .get(SET_COOKIE)
        .expect("a session cookie")
        .to_str()
        .unwrap();
    assert!(
        v.contains("HttpOnly") && v.contains("SameSite=Strict"),
        "{v}"
    );
    v.split(';').next().unwrap().to_owned()
}

async fn paused(s: &TestServer, queue: &str) -> bool {
    let r = s
        .client
        .get(s.url(&format!("/v1/queues/{queue}")))
        .bearer_auth(TOKEN)
        .send()
        .await
        .unwrap();
    json_of(r).await.1["paused"] == Value::Bool(true)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_page_and_its_assets_are_embedded_with_security_headers() {
    let s = TestServer::start(ServerConfig::default()).await;
    for (path, kind) in [
        ("/", "text/html"),
        ("/ui/app.css", "text/css"),
        ("/ui/js/app.js", "text/javascript"),
        ("/ui/js/core.js", "text/javascript"),
        ("/ui/js/pages/job.js", "text/javascript"),
        ("/ui/favicon.svg", "image/svg+xml"),
    ] {
        let r = s.client.get(s.url(path)).send().await.unwrap();
        assert_eq!(r.status(), StatusCode::OK, "{path}");
        let h = r.headers();
        assert!(
            h["content-type"].to_str().unwrap().starts_with(kind),
            "{path}"
        );
        let csp = h["content-security-policy"].to_str().unwrap();
        assert!(csp.contains("script-src 'self'"), "{csp}");
        assert_eq!(h["x-content-type-options"], "nosniff");
        assert_eq!(h["x-frame-options"], "DENY");
    }
    let r = s.client.get(s.url("/ui/nope.js")).send().await.unwrap();
    assert_eq!(r.status(), StatusCode::NOT_FOUND);
    let page = s
        .client
        .get(s.url("/"))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(page.contains("/ui/js/app.js") && !page.contains("http"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn browser_writes_need_the_session_csrf_token_programs_do_not() {
    let s = TestServer::start(ServerConfig::default()).await;
    let pause = |q: &str| s.url(&format!("/v1/queues/{q}/pause"));
    // A program (no cookie, no Origin) is not a browser: unaffected.
    let r = s.client.post(pause("plain")).send().await.unwrap();
    assert_eq!(r.status(), StatusCode::OK);
    // A browser request from another site: refused.
    for (name, value) in [
        ("origin", "http://evil.example"),
        ("origin", "null"),
        ("sec-fetch-site", "cross-site"),
    ] {
        let r = s
            .client
            .post(pause("q1"))
            .header(name, value)
            .send()
            .await
            .unwrap();
        let (status, body) = json_of(r).await;
        assert_eq!(status, StatusCode::FORBIDDEN, "{name}: {value}");
        assert_eq!(body["error"]["code"], "csrf");
    }
    // The session cookie alone (what a cross-site form would carry, if
    // SameSite did not stop it) is not enough; with the token it is.
    let (cookie, csrf) = session(&s).await;
    let r = s
        .client
        .post(pause("q1"))
        .header(COOKIE, &cookie)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::FORBIDDEN);
    let r = s
        .client
        .post(pause("q1"))
        .header(COOKIE, &cookie)
        .header("x-csrf-token", "0".repeat(64))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::FORBIDDEN);
    assert!(!paused(&s, "q1").await, "refused requests changed nothing");
    let r = s
        .client
        .post(pause("q1"))
        .header(COOKIE, &cookie)
        .header(ORIGIN, s.base.as_str())
        .header("x-csrf-token", &csrf)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::OK);
    assert!(paused(&s, "q1").await);
    // Reads never need the token.
    let r = s
        .client
        .get(s.url("/v1/queues"))
        .header(ORIGIN, "http://evil.example")
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::OK);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn with_a_token_the_browser_logs_in_and_its_session_passes_the_token_rule() {
    let s = TestServer::start(with_token()).await;
    // The page itself loads (it shows the login form); the API does not.
    let r = s.client.get(s.url("/")).send().await.unwrap();
    assert_eq!(r.status(), StatusCode::OK);
    let (status, body) = json_of(s.client.get(s.url("/ui/session")).send().await.unwrap()).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(body["auth_required"], true);
    assert_eq!(body["logged_in"], false);
    assert_eq!(body["csrf"], Value::Null);
    let r = s.client.get(s.url("/v1/queues")).send().await.unwrap();
    assert_eq!(r.status(), StatusCode::UNAUTHORIZED);

    let login = |token: &str, origin: &str| {
        s.client
            .post(s.url("/ui/login"))
            .header(ORIGIN, origin)
            .json(&serde_json::json!({ "token": token }))
            .send()
    };
    let r = login("wrong", &s.base).await.unwrap();
    assert_eq!(r.status(), StatusCode::UNAUTHORIZED);
    let r = login(TOKEN, "http://evil.example").await.unwrap();
    assert_eq!(r.status(), StatusCode::FORBIDDEN, "cross-origin login");
    let r = login(TOKEN, &s.base).await.unwrap();
    assert_eq!(r.status(), StatusCode::OK);
    let cookie = set_cookie(&r);
    let csrf = json_of(r).await.1["csrf"].as_str().unwrap().to_owned();

    let r = s
        .client
        .get(s.url("/v1/queues"))
        .header(COOKIE, &cookie)
        .send()
        .await
        .unwrap();
    assert_eq!(
        r.status(),
        StatusCode::OK,
        "the session passes the token rule"
    );
    let r = s
        .client
        .post(s.url("/v1/queues/q/pause"))
        .header(COOKIE, &cookie)
        .header("x-csrf-token", &csrf)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::OK);
    // A forged cookie passes nothing.
    let forged = format!("clew_session=abc-{}.{}", 1, "f".repeat(64));
    let r = s
        .client
        .get(s.url("/v1/queues"))
        .header(COOKIE, forged)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::UNAUTHORIZED);
    // The bearer token still works, from a browser context too.
    let r = s
        .client
        .post(s.url("/v1/queues/q/unpause"))
        .bearer_auth(TOKEN)
        .header(ORIGIN, "http://elsewhere.example")
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::OK);
    // Logging out clears the cookie.
    let r = s
        .client
        .post(s.url("/ui/logout"))
        .header(COOKIE, &cookie)
        .header("x-csrf-token", &csrf)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::OK);
    assert!(r.headers()[SET_COOKIE]
        .to_str()
        .unwrap()
        .contains("Max-Age=0"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn config_keys_describe_every_default_the_config_reports() {
    let s = TestServer::start(ServerConfig::default()).await;
    let (_, keys) = json_of(s.client.get(s.url("/v1/config-keys")).send().await.unwrap()).await;
    let (_, config) = json_of(s.client.get(s.url("/v1/config")).send().await.unwrap()).await;
    let keys = keys["keys"].as_array().expect("keys");
    let reported: Vec<&Value> = keys.iter().filter(|k| k["reported"] == true).collect();
    // Every key GET /v1/config lists unset is described, with its default.
    assert_eq!(reported.len(), config.as_object().unwrap().len());
    for k in reported {
        let key = k["key"].as_str().unwrap();
        assert_eq!(config[key], k["default"], "{key}");
        assert!(!k["description"].as_str().unwrap().is_empty());
    }
    assert!(keys
        .iter()
        .any(|k| k["key"] == "max-job-history" && k["default"] == 100));
}
