//! The bearer-token rule: when the server has a token, every route but the
//! health check and the dashboard's own page, assets and login requires
//! `Authorization: Bearer <token>` or a dashboard session cookie issued by
//! logging in with that token ([`crate::ui::session`]).

use axum::body::Body;
use axum::extract::State;
use axum::http::{HeaderMap, Request, StatusCode};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};

use crate::error::ApiError;
use crate::state::AppState;

/// Compares two byte strings in time independent of where they differ.
pub fn constant_time_eq(a: &[u8], b: &[u8]) -> bool {
    if a.len() != b.len() {
        return false;
    }
    a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

/// The bearer token the request carries, if any.
fn bearer(headers: &HeaderMap) -> Option<&str> {
    headers
        .get(axum::http::header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.trim().split_once(' '))
        // The scheme is case-insensitive (RFC 9110 §11.1).
        .filter(|(scheme, _)| scheme.eq_ignore_ascii_case("bearer"))
        .map(|(_, token)| token.trim())
}

/// Whether the request carries the server's token (false when the server
/// has none).
pub fn bearer_ok(state: &AppState, headers: &HeaderMap) -> bool {
    match (state.config().token.as_deref(), bearer(headers)) {
        (Some(token), Some(given)) => constant_time_eq(given.as_bytes(), token.as_bytes()),
        _ => false,
    }
}

/// Middleware: refuses requests without the right token or a logged-in
/// dashboard session (401).
pub async fn require_token(
    State(state): State<AppState>,
    req: Request<Body>,
    next: Next,
) -> Response {
    if state.config().token.is_none() || bearer_ok(&state, req.headers()) {
        return next.run(req).await;
    }
    if crate::ui::session::session_id(&state, req.headers()).is_some() {
        return next.run(req).await;
    }
    let message = if bearer(req.headers()).is_some() {
        "invalid API token"
    } else {
        "missing API token: send Authorization: Bearer <token>"
    };
    ApiError::new(StatusCode::UNAUTHORIZED, "unauthorized", message).into_response()
}
