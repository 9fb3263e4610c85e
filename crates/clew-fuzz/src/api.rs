//! API request bodies and query strings: the server's own routes
//! (`clew_server::app`, test mode) over a real store, driven in-process.
//!
//! Input: byte 0 picks an operation of the OpenAPI document (every route
//! of the resource API) or `POST /v1/qless`; byte 1 picks the path
//! parameters (from a small pool, so calls meet the same jobs, queues and
//! workers); byte 2 moves the clock forward (`X-Clew-Now`, 0 to 255 s);
//! the rest is the request body (operations with one) or the query string.
//! `POST /v1/wait` is left out (it waits up to 30 s by design), as are the
//! event streams.
//!
//! Properties: no answer is a 5xx; an error answer is JSON
//! `{"error": {"code", "message"}}` with both non-empty; a success is JSON
//! (or the empty body of a 204); every few calls the store invariants hold
//! (`clew_store_tests::invariants`).

use std::sync::OnceLock;

use axum::body::Body;
use axum::http::{Method, Request, StatusCode};
use tower::ServiceExt;

/// Values for path parameters.
const NAMES: [&str; 3] = ["a", "b", "c"];

/// Config keys for `{key}` of `/v1/config/{key}`.
const KEYS: [&str; 6] = [
    "heartbeat",
    "grace-period",
    "a-max-concurrency",
    "jobs-history-count",
    "max-job-history",
    "a-heartbeat",
];

/// Invariants are checked every this many calls.
const CHECK_EVERY: u64 = 8;

/// One operation: method, path template, whether it takes a JSON body.
#[derive(Clone, Debug)]
pub struct Operation {
    /// The method.
    pub method: Method,
    /// The path, with `{param}`s.
    pub path: String,
    /// Takes a JSON request body (else the input is its query string).
    pub body: bool,
}

/// Routes left out of the fuzzing (see the module's doc).
pub const LEFT_OUT: [&str; 1] = ["/v1/wait"];

/// Every operation fuzzed, in a stable order: the OpenAPI document's
/// (sorted by path, then method) and `POST /v1/qless`.
pub fn operations() -> &'static [Operation] {
    static OPS: OnceLock<Vec<Operation>> = OnceLock::new();
    OPS.get_or_init(|| {
        let doc = serde_json::to_value(clew_server::api::router_and_doc().1).expect("openapi");
        let mut ops = Vec::new();
        if let Some(paths) = doc["paths"].as_object() {
            for (path, item) in paths {
                if LEFT_OUT.contains(&path.as_str()) {
                    continue;
                }
                for m in ["get", "post", "put", "patch", "delete"] {
                    if let Some(op) = item.get(m) {
                        ops.push(Operation {
                            method: Method::from_bytes(m.to_uppercase().as_bytes())
                                .expect("method"),
                            path: path.clone(),
                            body: op.get("requestBody").is_some(),
                        });
                    }
                }
            }
        }
        ops.sort_by(|a, b| (&a.path, a.method.as_str()).cmp(&(&b.path, b.method.as_str())));
        ops.push(Operation {
            method: Method::POST,
            path: "/v1/qless".into(),
            body: true,
        });
        ops
    })
}

/// `template` with its `{params}` filled from the pools by `pick`.
fn fill(template: &str, pick: u8) -> String {
    let mut out = String::new();
    let mut rest = template;
    let mut i = 0u32;
    while let Some(open) = rest.find('{') {
        out.push_str(&rest[..open]);
        let close = rest[open..].find('}').map_or(rest.len(), |c| open + c);
        let name = &rest[open + 1..close];
        let k = usize::from(pick.rotate_right(2 * i));
        out.push_str(if name == "key" {
            KEYS[k % KEYS.len()]
        } else {
            NAMES[k % NAMES.len()]
        });
        rest = &rest[(close + 1).min(rest.len())..];
        i += 1;
    }
    out.push_str(rest);
    out
}

/// The target.
pub fn run(data: &[u8]) {
    let [op, pick, step, rest @ ..] = data else {
        return;
    };
    let ops = operations();
    let op = &ops[usize::from(*op) % ops.len()];
    let mut uri = fill(&op.path, *pick);
    let mut builder = Request::builder().method(op.method.clone());
    let body = if op.body {
        builder = builder.header("content-type", "application/json");
        Body::from(rest.to_vec())
    } else {
        // A query string: only what a URI can carry.
        let Ok(q) = std::str::from_utf8(rest) else {
            return;
        };
        if !q.is_empty() {
            if q.bytes().any(|b| b <= b' ' || b >= 0x7f || b == b'#') {
                return;
            }
            uri.push('?');
            uri.push_str(q);
        }
        Body::empty()
    };
    crate::world::with_world(|w| {
        w.now += f64::from(*step);
        let request = builder
            .uri(&uri)
            .header("x-clew-now", w.now.to_string())
            .body(body);
        let Ok(request) = request else {
            return;
        };
        let what = format!("{} {uri} {:?}", op.method, String::from_utf8_lossy(rest));
        let response = crate::world::block_on(w.app.clone().oneshot(request)).expect("infallible");
        let status = response.status();
        let bytes = crate::world::block_on(axum::body::to_bytes(response.into_body(), usize::MAX))
            .expect("response body");
        check_answer(&what, status, &bytes);
        if w.calls % CHECK_EVERY == 0 {
            w.check_invariants(&what);
        }
    });
}

fn check_answer(what: &str, status: StatusCode, bytes: &[u8]) {
    let text = String::from_utf8_lossy(bytes);
    assert!(!status.is_server_error(), "{what}: {status} {text}");
    if status == StatusCode::NO_CONTENT && bytes.is_empty() {
        return;
    }
    let json: serde_json::Value = serde_json::from_slice(bytes)
        .unwrap_or_else(|e| panic!("{what}: {status}: not JSON ({e}): {text}"));
    if status.is_client_error() {
        let code = json["error"]["code"].as_str().unwrap_or("");
        let message = json["error"]["message"].as_str().unwrap_or("");
        assert!(
            !code.is_empty() && !message.trim().is_empty(),
            "{what}: {status} without an error code and message: {text}"
        );
    }
}
