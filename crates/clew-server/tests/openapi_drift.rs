//! The committed OpenAPI document (`crates/clew-server/openapi.json`) must
//! match the one the code renders, and the served `/v1/openapi.json` must be
//! that document. Regenerate it with
//! `CLEW_UPDATE_OPENAPI=1 cargo test -p clew-server --test openapi_drift`.

use std::path::PathBuf;
use std::sync::Arc;

use clew_core::Engine;
use clew_server::{AppState, ServerConfig};
use serde_json::Value;

fn committed_path() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("openapi.json")
}

#[test]
fn committed_document_matches_the_code() {
    let rendered = clew_server::openapi::document_text();
    let path = committed_path();
    if std::env::var_os("CLEW_UPDATE_OPENAPI").is_some() {
        std::fs::write(&path, &rendered).expect("writing openapi.json");
        return;
    }
    let committed = std::fs::read_to_string(&path).unwrap_or_default();
    if committed != rendered {
        let first = committed
            .lines()
            .zip(rendered.lines())
            .position(|(a, b)| a != b)
            .unwrap_or_else(|| committed.lines().count().min(rendered.lines().count()));
        panic!(
            "crates/clew-server/openapi.json differs from the document the code renders \
             (first difference at line {}). If the API change is intended, regenerate it with\n\n    \
             CLEW_UPDATE_OPENAPI=1 cargo test -p clew-server --test openapi_drift\n\nand commit the file.",
            first + 1
        );
    }
}

/// Every documented operation is served by the router: a request with the
/// documented method to the documented path (placeholders filled in) never
/// meets the router's fallback (`no such route`) or a 405.
#[tokio::test(flavor = "multi_thread")]
async fn every_documented_operation_is_routed() {
    let (store, _dir) = clew_sqlite::testing::temp_store();
    let engine = Engine::new(store as Arc<dyn clew_core::Store>);
    let state = AppState::new(
        engine,
        ServerConfig {
            test_mode: true,
            ..ServerConfig::default()
        },
    );
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind");
    let base = format!("http://{}", listener.local_addr().expect("addr"));
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    let server = tokio::spawn(clew_server::serve(listener, state, async {
        let _ = stopped.await;
    }));
    let http = reqwest::Client::builder()
        .timeout(std::time::Duration::from_secs(5))
        .build()
        .expect("client");

    let doc: Value = serde_json::from_str(&clew_server::openapi::document_text()).expect("JSON");
    let paths = doc["paths"].as_object().expect("paths");
    let mut checked = 0;
    for (path, item) in paths {
        let url = path
            .split('/')
            .map(|seg| if seg.starts_with('{') { "x" } else { seg })
            .collect::<Vec<_>>()
            .join("/");
        for method in ["get", "post", "put", "patch", "delete"] {
            if item.get(method).is_none() {
                continue;
            }
            if path == "/v1/events" {
                // A stream: only check that the route answers.
                let resp = http.get(format!("{base}{url}")).send().await.expect("sent");
                assert_ne!(
                    resp.status(),
                    reqwest::StatusCode::NOT_FOUND,
                    "{method} {path}"
                );
                checked += 1;
                continue;
            }
            let m = reqwest::Method::from_bytes(method.to_uppercase().as_bytes()).expect("method");
            let resp = http
                .request(m, format!("{base}{url}"))
                .send()
                .await
                .expect("sent");
            let status = resp.status();
            let body: Value = resp.json().await.unwrap_or(Value::Null);
            assert_ne!(
                status,
                reqwest::StatusCode::METHOD_NOT_ALLOWED,
                "{method} {path}: {body}"
            );
            assert_ne!(
                body["error"]["message"], "no such route",
                "{method} {path} is documented but not routed"
            );
            checked += 1;
        }
    }
    assert!(checked > 40, "only {checked} operations documented");
    let _ = stop.send(());
    let _ = server.await;
}

/// The document is served at `/v1/openapi.json`.
#[tokio::test(flavor = "multi_thread")]
async fn document_is_served() {
    let (store, _dir) = clew_sqlite::testing::temp_store();
    let state = AppState::new(
        Engine::new(store as Arc<dyn clew_core::Store>),
        ServerConfig::default(),
    );
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind");
    let base = format!("http://{}", listener.local_addr().expect("addr"));
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    let server = tokio::spawn(clew_server::serve(listener, state, async {
        let _ = stopped.await;
    }));
    let resp = reqwest::get(format!("{base}/v1/openapi.json"))
        .await
        .expect("sent");
    assert_eq!(resp.status(), reqwest::StatusCode::OK);
    let text = resp.text().await.expect("body");
    assert_eq!(text, clew_server::openapi::document_text());
    let doc: Value = serde_json::from_str(&text).expect("JSON");
    assert!(doc["openapi"].as_str().is_some_and(|v| v.starts_with("3.")));
    for p in [
        "/v1/queues/{queue}/jobs",
        "/v1/qless",
        "/v1/events",
        "/healthz",
    ] {
        assert!(
            doc["paths"].get(p).is_some(),
            "{p} missing from the document"
        );
    }
    // operation ids are unique (client generators need that)
    let mut ids: Vec<&str> = doc["paths"]
        .as_object()
        .expect("paths")
        .values()
        .flat_map(|item| item.as_object().into_iter().flat_map(|m| m.values()))
        .filter_map(|op| op["operationId"].as_str())
        .collect();
    let n = ids.len();
    assert!(n > 40, "only {n} operation ids");
    ids.sort_unstable();
    ids.dedup();
    assert_eq!(ids.len(), n, "duplicate operationId in the document");
    let _ = stop.send(());
    let _ = server.await;
}
