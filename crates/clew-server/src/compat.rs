//! The qless compatibility endpoint, a contract tools outside this
//! repository depend on:
//!
//! * `POST /v1/qless` with `{"command": NAME, "now": SECONDS?, "args": [STRING...]}`
//!   runs one of qless-core's 37 commands and answers `{"result": V}` (natural
//!   JSON), or `{"error": {"code", "message"}}` with 400, 404 or 409 and
//!   qless-core's wording. `now` is honoured only in test mode.
//! * `GET /v1/qless/events?after=SEQ` lists committed events with a larger
//!   sequence number, oldest first: `{"events": [{"seq", "channel", "message"}]}`.
//! * `POST /v1/qless/flush` wipes all state; only in test mode.

use axum::extract::{Query, State};
use axum::routing::{get, post};
use axum::{Json, Router};
use clew_core::Timestamp;
use serde::Deserialize;
use serde_json::{json, Value};

use crate::error::ApiError;
use crate::state::AppState;

/// Most events one events request returns.
pub const EVENTS_PAGE: i64 = 10_000;

/// The routes of the compatibility endpoint.
pub fn routes() -> Router<AppState> {
    Router::new()
        .route("/v1/qless", post(call))
        .route("/v1/qless/events", get(events))
        .route("/v1/qless/flush", post(flush))
}

/// The body of `POST /v1/qless`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct QlessCall {
    /// The qless-core command name.
    pub command: String,
    /// The caller's clock (float seconds); used only in test mode.
    #[serde(default)]
    pub now: Option<Value>,
    /// The arguments after `now`, as strings (numbers and JSON documents
    /// are accepted and turned into their JSON text).
    #[serde(default)]
    pub args: Vec<Value>,
}

fn arg_text(v: Value) -> String {
    match v {
        Value::String(s) => s,
        other => other.to_string(),
    }
}

impl QlessCall {
    /// Reads a call from a JSON body, with a message naming the field and
    /// what was expected when the body has the wrong shape (serde would
    /// also accept an array for the struct, and its messages lack the
    /// field's name).
    pub fn from_json(body: Value) -> Result<QlessCall, ApiError> {
        let Value::Object(mut fields) = body else {
            return Err(ApiError::invalid(format!(
                "request body: expected a JSON object {{\"command\": NAME, \"now\": SECONDS, \"args\": [...]}}, got {}",
                kind_of(&body)
            )));
        };
        let command = match fields.remove("command") {
            Some(Value::String(c)) => c,
            Some(other) => {
                return Err(ApiError::invalid(format!(
                    "command: expected a qless command name (a string), got {}",
                    kind_of(&other)
                )))
            }
            None => {
                return Err(ApiError::invalid(
                    "command: missing (expected a qless command name, e.g. \"put\")",
                ))
            }
        };
        let now = fields.remove("now").filter(|n| !n.is_null());
        let args = match fields.remove("args") {
            None | Some(Value::Null) => Vec::new(),
            Some(Value::Array(a)) => a,
            Some(other) => {
                return Err(ApiError::invalid(format!(
                    "args: expected an array of strings, got {}",
                    kind_of(&other)
                )))
            }
        };
        if let Some(key) = fields.keys().next() {
            return Err(ApiError::invalid(format!(
                "{key}: unknown field (expected command, now, args)"
            )));
        }
        Ok(QlessCall { command, now, args })
    }
}

/// The error for a body that is not JSON: 413 when it is too large, 415
/// when it is not declared as JSON, else 400.
fn body_error(e: &axum::extract::rejection::JsonRejection, limit: usize) -> ApiError {
    use axum::http::StatusCode;
    match e.status() {
        StatusCode::PAYLOAD_TOO_LARGE => ApiError::new(
            StatusCode::PAYLOAD_TOO_LARGE,
            "body_too_large",
            format!("request body: larger than the server's limit of {limit} bytes"),
        ),
        StatusCode::UNSUPPORTED_MEDIA_TYPE => ApiError::new(
            StatusCode::UNSUPPORTED_MEDIA_TYPE,
            "unsupported_media_type",
            "request body: expected Content-Type: application/json",
        ),
        _ => ApiError::invalid(format!("request body: {}", e.body_text())),
    }
}

fn kind_of(v: &Value) -> &'static str {
    match v {
        Value::Null => "null",
        Value::Bool(_) => "a boolean",
        Value::Number(_) => "a number",
        Value::String(_) => "a string",
        Value::Array(_) => "an array",
        Value::Object(_) => "an object",
    }
}

async fn call(
    State(state): State<AppState>,
    headers: axum::http::HeaderMap,
    body: Result<Json<Value>, axum::extract::rejection::JsonRejection>,
) -> Result<Json<Answer>, ApiError> {
    let origin = match headers.get("x-clew-origin") {
        Some(v) => crate::state::parse_origin(v.to_str().unwrap_or("\u{fffd}"))?,
        None => state.engine().origin().clone(),
    };
    let Json(body) = body.map_err(|e| body_error(&e, state.config().body_limit))?;
    let body = QlessCall::from_json(body)?;
    let args: Vec<String> = body.args.into_iter().map(arg_text).collect();
    let now = match (&body.now, state.config().test_mode) {
        (Some(n), true) => {
            let secs = match n {
                Value::Number(x) => x.as_f64(),
                Value::String(s) => s.trim().parse::<f64>().ok(),
                _ => None,
            };
            Some(
                secs.filter(|s| Timestamp::from_secs_f64(*s).is_some())
                    .ok_or_else(|| {
                        ApiError::invalid(format!("now: expected a number of seconds, got {n}"))
                    })?,
            )
        }
        _ => None,
    };
    let engine = state.engine();
    let mut command = clew_core::qless::parse(&body.command, &args)?;
    state.config().apply_header_metadata(&headers, &mut command);
    let now = match now {
        Some(secs) => Timestamp::from_secs_f64(secs).ok_or_else(|| {
            ApiError::invalid(format!("now: expected a number of seconds, got {secs}"))
        })?,
        None => engine.now(),
    };
    let result = engine.execute_as(now, origin, command).await?;
    Ok(Json(Answer { result }))
}

/// `{"result": V}`: the reply is written straight from its `Serialize`
/// (no `Value` tree in between; the JSON is the same as `Reply::to_json`'s).
#[derive(Debug, serde::Serialize)]
pub struct Answer {
    /// The command's reply, as natural JSON.
    pub result: clew_core::Reply,
}

/// Query of `GET /v1/qless/events`.
#[derive(Debug, Deserialize)]
pub struct EventsQuery {
    /// Only events with a larger sequence number (default 0: all).
    #[serde(default)]
    pub after: i64,
}

async fn events(
    State(state): State<AppState>,
    q: Result<Query<EventsQuery>, axum::extract::rejection::QueryRejection>,
) -> Result<Json<Value>, ApiError> {
    let Query(q) = q.map_err(|e| {
        ApiError::invalid(format!("after: expected an integer ({})", e.body_text()))
    })?;
    // Only qless's channels (clew's lifecycle events share the log).
    let list: Vec<Value> = clew_core::store::events_after_matching(
        state.engine().store().as_ref(),
        q.after,
        EVENTS_PAGE,
        clew_core::Event::is_qless,
    )
    .await?
    .into_iter()
    .map(|e| json!({"seq": e.seq, "channel": e.channel, "message": e.message}))
    .collect();
    Ok(Json(json!({ "events": list })))
}

async fn flush(State(state): State<AppState>) -> Result<Json<Value>, ApiError> {
    if !state.config().test_mode {
        return Err(ApiError::new(
            axum::http::StatusCode::FORBIDDEN,
            "forbidden",
            "flush is only available in test mode (clew server --test-mode)",
        ));
    }
    state.engine().store().flush().await?;
    Ok(Json(json!({ "result": null })))
}
