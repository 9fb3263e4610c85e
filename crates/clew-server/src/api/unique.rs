//! Uniqueness keys: which live job holds a key.

use axum::extract::{Path, State};
use axum::Json;
use clew_core::{Command, Reply};
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use super::{run, ErrorBody, JobDoc, Natural};
use crate::error::ApiError;
use crate::state::{AppState, RequestNow};

/// The uniqueness-key routes.
pub fn routes() -> OpenApiRouter<AppState> {
    OpenApiRouter::new().routes(routes!(unique_holder))
}

/// The live job (neither failed nor complete) holding a uniqueness key.
#[utoipa::path(get, path = "/v1/unique/{key}", tag = "jobs",
    params(("key" = String, Path, description = "The key (percent-encoded in the path)")),
    responses(
        (status = 200, description = "The job holding the key", body = JobDoc),
        (status = 404, description = "No live job holds the key", body = ErrorBody),
        (status = 400, description = "A bad key (empty, longer than 255 bytes)", body = ErrorBody)))]
pub async fn unique_holder(
    State(state): State<AppState>,
    now: RequestNow,
    Path(key): Path<String>,
) -> Result<Json<Natural>, ApiError> {
    let reply = run(&state, now, Command::UniqueGet { key: key.clone() }).await?;
    match reply {
        Reply::Job(Some(_)) => Ok(Json(Natural(reply))),
        _ => Err(ApiError::not_found(format!(
            "no live job holds unique key {key:?}"
        ))),
    }
}
