//! The Server-Sent Events stream `GET /v1/events`.

use axum::Router;

use crate::state::AppState;

/// The event-stream routes.
pub fn routes() -> Router<AppState> {
    Router::new()
}
