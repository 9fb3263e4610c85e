//! One server serves one namespace ([`crate::ServerConfig::namespace`]).
//! A request may name the namespace it means in the `X-Clew-Namespace`
//! header; naming another one is refused (409 `namespace_mismatch`), so a
//! client can never work the wrong partition by mistake. No header means
//! the server's own.

use axum::body::Body;
use axum::extract::State;
use axum::http::{Request, StatusCode};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};

use crate::error::ApiError;
use crate::state::AppState;

/// The request header naming the namespace a client means.
pub const HEADER: &str = "x-clew-namespace";

/// The namespace of a store opened without one.
pub const DEFAULT: &str = "default";

/// Middleware: refuses a request whose `X-Clew-Namespace` names another
/// namespace than the server's (409, naming both).
pub async fn check_namespace(
    State(state): State<AppState>,
    req: Request<Body>,
    next: Next,
) -> Response {
    let served = state.config().namespace.as_str();
    if let Some(value) = req.headers().get(HEADER) {
        let asked = value.to_str().unwrap_or("").trim();
        let asked = if asked.is_empty() { DEFAULT } else { asked };
        if asked != served {
            return ApiError::new(
                StatusCode::CONFLICT,
                "namespace_mismatch",
                format!(
                    "this server serves namespace {served:?}, the request names namespace {asked:?} (X-Clew-Namespace)"
                ),
            )
            .into_response();
        }
    }
    next.run(req).await
}
