//! The OpenAPI document of the whole HTTP API, served at
//! `GET /v1/openapi.json` and committed as `crates/clew-server/openapi.json`
//! (the `openapi_drift` test fails when the two differ; regenerate with
//! `CLEW_UPDATE_OPENAPI=1 cargo test -p clew-server --test openapi_drift`).
//!
//! The resource routes describe themselves ([`crate::api::router_and_doc`]);
//! the health check, the qless compatibility endpoint, the event stream and
//! this document are described here by stubs.

use std::sync::OnceLock;

use axum::http::header;
use axum::response::IntoResponse;
use axum::routing::get;
use axum::Router;
use utoipa::OpenApi;

use crate::api::ErrorBody;
use crate::state::AppState;

/// The route serving the document.
pub fn routes() -> Router<AppState> {
    Router::new().route("/v1/openapi.json", get(openapi_json))
}

/// The document (built once).
pub fn document() -> &'static utoipa::openapi::OpenApi {
    static DOC: OnceLock<utoipa::openapi::OpenApi> = OnceLock::new();
    DOC.get_or_init(build)
}

/// The document as pretty-printed JSON with a final newline, as committed.
pub fn document_text() -> String {
    let mut text = serde_json::to_string_pretty(document())
        .unwrap_or_else(|e| format!("{{\"error\": \"rendering the document: {e}\"}}"));
    text.push('\n');
    text
}

fn build() -> utoipa::openapi::OpenApi {
    let mut doc = Stubs::openapi();
    doc.merge(crate::api::router_and_doc().1);
    doc
}

async fn openapi_json() -> impl IntoResponse {
    (
        [(header::CONTENT_TYPE, "application/json")],
        document_text(),
    )
}

#[derive(OpenApi)]
#[openapi(
    info(
        title = "clew",
        description = "clew's HTTP/JSON API: a resource-style API for every job-engine operation, \
the qless compatibility endpoint, and a Server-Sent Events stream.\n\n\
Errors are `{\"error\": {\"code\", \"message\"}}` with 400 (invalid argument; the message names \
the field), 401 (missing or wrong token), 404 (no such job or route), 409 (wrong state, lock held \
by another worker) or 413 (body too large); a 500 hides internals.\n\n\
Job payloads (`data`) are any JSON value in resource-API requests and are stored as their JSON \
text verbatim; resource-API responses carry `data` as the parsed JSON value, while the qless \
endpoint keeps it as a JSON text, as qless-core does.\n\n\
In test mode (`clew server --test-mode`), the `X-Clew-Now` header (float seconds) sets the time \
of any request; outside test mode it is ignored. When the server has an API token, every route but \
`/healthz` requires `Authorization: Bearer <token>`."
    ),
    paths(healthz, openapi_doc, qless_call, qless_events, qless_flush, events),
    components(schemas(ErrorBody, QlessCallDoc)),
    tags(
        (name = "jobs", description = "Jobs: put, pop, heartbeat, complete, fail, retry, cancel, ..."),
        (name = "queues", description = "Queues: counts, listings, pause, stats"),
        (name = "workers", description = "Workers"),
        (name = "failed", description = "Failed jobs by group"),
        (name = "tags", description = "Tags"),
        (name = "config", description = "Engine configuration"),
        (name = "recurring", description = "Recurring job templates"),
        (name = "batches", description = "Batches: jobs with progress and a callback job"),
        (name = "throttles", description = "Throttles: concurrency limits across queues"),
        (name = "qless", description = "The qless compatibility endpoint (an exact contract)"),
        (name = "system", description = "Health, events, this document"),
    )
)]
struct Stubs;

/// Body of `POST /v1/qless`.
#[derive(utoipa::ToSchema)]
#[allow(dead_code)] // Described only; the handler has its own type.
struct QlessCallDoc {
    /// A qless-core command name (one of its 37).
    command: String,
    /// The caller's clock, float seconds; honoured only in test mode.
    now: Option<f64>,
    /// The arguments after `now`, as strings (qless-core's order).
    args: Vec<String>,
}

/// Health check; never requires a token.
#[utoipa::path(get, path = "/healthz", tag = "system",
    responses((status = 200, description = "`{\"ok\": true, \"namespace\": NAME}`: the namespace this server serves", body = Object)))]
#[allow(dead_code)] // Described only; the route lives in lib.rs.
fn healthz() {}

/// This document.
#[utoipa::path(get, path = "/v1/openapi.json", tag = "system",
    responses((status = 200, description = "The OpenAPI document", body = Object)))]
#[allow(dead_code)] // Described only; the handler is `openapi_json`.
fn openapi_doc() {}

/// Runs one qless-core command: `{"result": V}` with V natural JSON.
#[utoipa::path(post, path = "/v1/qless", tag = "qless",
    request_body = QlessCallDoc,
    responses(
        (status = 200, description = "`{\"result\": V}`", body = Object),
        (status = "4XX", description = "qless-core's error wording", body = ErrorBody)))]
#[allow(dead_code)] // Described only; the handler lives in compat.rs.
fn qless_call() {}

/// Committed events with a sequence number greater than `after`, oldest
/// first: `{"events": [{"seq", "channel", "message"}]}`.
#[utoipa::path(get, path = "/v1/qless/events", tag = "qless",
    params(("after" = Option<i64>, Query, description = "List events after this sequence number (default 0)")),
    responses(
        (status = 200, description = "`{\"events\": [...]}`", body = Object),
        (status = "4XX", description = "Refused", body = ErrorBody)))]
#[allow(dead_code)] // Described only; the handler lives in compat.rs.
fn qless_events() {}

/// Wipes all state; only in test mode.
#[utoipa::path(post, path = "/v1/qless/flush", tag = "qless",
    responses(
        (status = 200, description = "Wiped", body = Object),
        (status = "4XX", description = "Refused (not in test mode)", body = ErrorBody)))]
#[allow(dead_code)] // Described only; the handler lives in compat.rs.
fn qless_flush() {}

/// The live event stream (Server-Sent Events), optionally filtered;
/// resumes after `Last-Event-ID` without gaps.
#[utoipa::path(get, path = "/v1/events", tag = "system",
    params(
        ("queue" = Option<String>, Query, description = "Only events about this queue"),
        ("jid" = Option<String>, Query, description = "Only events about this job"),
        ("worker" = Option<String>, Query, description = "Only events about this worker"),
        ("type" = Option<String>, Query, description = "Only events of this type"),
        ("Last-Event-ID" = Option<i64>, Header, description = "Resume after this event"),
    ),
    responses(
        (status = 200, description = "`text/event-stream`", content_type = "text/event-stream", body = String),
        (status = "4XX", description = "Refused", body = ErrorBody)))]
#[allow(dead_code)] // Described only; the handler lives in events.rs.
fn events() {}
