//! Workers: all with counts, one worker's jobs, deregister.

use axum::extract::{Path, State};
use axum::Json;
use clew_core::Command;
use serde_json::Value;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use super::{natural, one, run, ErrorBody};
use crate::error::ApiError;
use crate::state::{AppState, RequestNow};

/// The worker routes.
pub fn routes() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(list_workers))
        .routes(routes!(get_worker, deregister))
}

/// Every known worker with its running and stalled job counts and when it
/// was last seen (its last pop or heartbeat, in seconds).
#[utoipa::path(get, path = "/v1/workers", tag = "workers",
    responses(
        (status = 200, description = "`[{\"name\", \"jobs\", \"stalled\", \"last_seen\"}, ...]`", body = Vec<Object>),
        (status = "4XX", description = "Refused", body = ErrorBody)))]
pub async fn list_workers(
    State(state): State<AppState>,
    now: RequestNow,
) -> Result<Json<Value>, ApiError> {
    let reply = run(
        &state,
        now,
        Command::Workers {
            worker: None,
            detail: true,
        },
    )
    .await?;
    Ok(Json(natural(&reply)))
}

/// One worker's jobs: those with a live lock and those whose lock expired.
#[utoipa::path(get, path = "/v1/workers/{worker}", tag = "workers",
    params(("worker" = String, Path, description = "The worker")),
    responses(
        (status = 200, description = "`{\"jobs\": [jid...], \"stalled\": [jid...], \"last_seen\": seconds}` (`last_seen` absent for an unknown worker)", body = Object),
        (status = "4XX", description = "Refused", body = ErrorBody)))]
pub async fn get_worker(
    State(state): State<AppState>,
    now: RequestNow,
    Path(worker): Path<String>,
) -> Result<Json<Value>, ApiError> {
    let reply = run(
        &state,
        now,
        Command::Workers {
            worker: Some(worker),
            detail: true,
        },
    )
    .await?;
    Ok(Json(natural(&reply)))
}

/// Forgets a worker (its jobs are not touched).
#[utoipa::path(delete, path = "/v1/workers/{worker}", tag = "workers",
    params(("worker" = String, Path, description = "The worker")),
    responses(
        (status = 200, description = "`{\"deregistered\": worker}`", body = Object),
        (status = "4XX", description = "Refused", body = ErrorBody)))]
pub async fn deregister(
    State(state): State<AppState>,
    now: RequestNow,
    Path(worker): Path<String>,
) -> Result<Json<Value>, ApiError> {
    run(
        &state,
        now,
        Command::WorkerDeregister {
            workers: vec![worker.clone()],
        },
    )
    .await?;
    Ok(Json(one("deregistered", worker)))
}
