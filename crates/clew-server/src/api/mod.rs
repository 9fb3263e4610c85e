//! The resource-style API under `/v1`.

use axum::Router;

use crate::state::AppState;

/// The resource routes.
pub fn routes() -> Router<AppState> {
    Router::new()
}
