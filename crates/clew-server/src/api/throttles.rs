//! Throttles (see `clew_core::throttle`): list, get, set, delete.
//!
//! A throttle is a name with a maximum: at most that many jobs naming it
//! in their `throttles` run at once, across queues. Jobs held back wait in
//! the `throttled` state and go back to their queue, in order, as slots
//! free.

use axum::extract::{Path, State};
use axum::Json;
use clew_core::{Command, Reply};
use serde::{Deserialize, Serialize};
use serde_json::Value;
use utoipa::ToSchema;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use super::{natural, run, ApiJson, ErrorBody};
use crate::error::ApiError;
use crate::state::{AppState, RequestNow};

/// The throttle routes.
pub fn routes() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(throttle_list))
        .routes(routes!(throttle_get, throttle_set, throttle_delete))
}

/// A throttle with its counts.
#[derive(Debug, Serialize, ToSchema)]
pub struct ThrottleDoc {
    /// The throttle's name.
    pub name: String,
    /// At most this many jobs holding it run at once (0: unlimited).
    pub max: i64,
    /// Jobs holding a slot (running, or stalled until a pop hands them over).
    pub running: i64,
    /// Jobs waiting for a slot (state `throttled`).
    pub pending: i64,
    /// The rate limit, if any.
    pub rate: Option<RateDoc>,
    /// Starts in the current rate window (present with `rate`).
    pub started: Option<i64>,
}

/// A throttle's rate limit: at most `limit` starts in any `period` seconds
/// (a sliding window).
#[derive(Debug, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct RateDoc {
    /// Starts allowed per window (>= 1).
    pub limit: i64,
    /// The window's length in seconds (>= 1).
    pub period: i64,
}

/// Body of `PUT /v1/throttles/{name}`.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct SetThrottle {
    /// At most this many jobs holding the throttle run at once (>= 0; 0:
    /// unlimited). Raising it lets waiting jobs go back to their queues.
    pub max: i64,
    /// Optional rate limit: at most `limit` starts per `period` seconds
    /// (absent: none; setting a throttle without it clears it).
    #[serde(default)]
    pub rate: Option<RateDoc>,
}

/// Every throttle with its counts, by name.
#[utoipa::path(get, path = "/v1/throttles", tag = "throttles",
    responses(
        (status = 200, description = "The throttles", body = Vec<ThrottleDoc>),
        (status = "4XX", description = "Refused", body = ErrorBody)))]
pub async fn throttle_list(
    State(state): State<AppState>,
    now: RequestNow,
) -> Result<Json<Value>, ApiError> {
    let reply = run(&state, now, Command::ThrottleList).await?;
    Ok(Json(natural(&reply)))
}

/// One throttle with its counts; 404 if it is not defined.
#[utoipa::path(get, path = "/v1/throttles/{name}", tag = "throttles",
    params(("name" = String, Path, description = "The throttle")),
    responses(
        (status = 200, description = "The throttle", body = ThrottleDoc),
        (status = "4XX", description = "Refused", body = ErrorBody)))]
pub async fn throttle_get(
    State(state): State<AppState>,
    now: RequestNow,
    Path(name): Path<String>,
) -> Result<Json<Value>, ApiError> {
    let reply = run(&state, now, Command::ThrottleGet { name }).await?;
    Ok(Json(natural(&reply)))
}

/// Defines a throttle or changes its maximum; answers it with its counts.
#[utoipa::path(put, path = "/v1/throttles/{name}", tag = "throttles",
    params(("name" = String, Path, description = "The throttle")),
    request_body = SetThrottle,
    responses(
        (status = 200, description = "The throttle", body = ThrottleDoc),
        (status = "4XX", description = "Refused", body = ErrorBody)))]
pub async fn throttle_set(
    State(state): State<AppState>,
    now: RequestNow,
    Path(name): Path<String>,
    ApiJson(body): ApiJson<SetThrottle>,
) -> Result<Json<Value>, ApiError> {
    let reply = run(
        &state,
        now,
        Command::ThrottleSet {
            name,
            max: body.max,
            rate: body.rate.map(|r| clew_core::throttle::ThrottleRate {
                limit: r.limit,
                period: r.period,
            }),
        },
    )
    .await?;
    Ok(Json(natural(&reply)))
}

/// Forgets a throttle: its waiting jobs go back to their queues; 404 if
/// it is not defined.
#[utoipa::path(delete, path = "/v1/throttles/{name}", tag = "throttles",
    params(("name" = String, Path, description = "The throttle")),
    responses(
        (status = 200, description = "`{\"deleted\": name}`", body = Object),
        (status = "4XX", description = "Refused", body = ErrorBody)))]
pub async fn throttle_delete(
    State(state): State<AppState>,
    now: RequestNow,
    Path(name): Path<String>,
) -> Result<Json<Value>, ApiError> {
    let reply = run(&state, now, Command::ThrottleDelete { name: name.clone() }).await?;
    debug_assert!(matches!(reply, Reply::Nil));
    Ok(Json(super::one("deleted", name)))
}
