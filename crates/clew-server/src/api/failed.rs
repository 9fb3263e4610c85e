//! Failed jobs: groups, one group's jobs, unfail.

use axum::extract::{Path, State};
use axum::Json;
use clew_core::Command;
use serde::Deserialize;
use serde_json::Value;
use utoipa::ToSchema;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use super::{natural, one, run, ApiJson, ApiQuery, ErrorBody, JidPage, Paging};
use crate::error::ApiError;
use crate::state::{AppState, RequestNow};

/// The failed-job routes.
pub fn routes() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(failed_groups))
        .routes(routes!(failed_group))
        .routes(routes!(unfail))
}

/// Failure groups with their job counts.
#[utoipa::path(get, path = "/v1/failed", tag = "failed",
    responses(
        (status = 200, description = "`{group: count, ...}`", body = Object),
        (status = "4XX", description = "Refused", body = ErrorBody)))]
pub async fn failed_groups(
    State(state): State<AppState>,
    now: RequestNow,
) -> Result<Json<Value>, ApiError> {
    let cmd = Command::Failed {
        group: None,
        start: 0,
        limit: 0,
    };
    let reply = run(&state, now, cmd).await?;
    Ok(Json(natural(&reply)))
}

/// One failure group's job ids, paged, with the total.
#[utoipa::path(get, path = "/v1/failed/{group}", tag = "failed",
    params(("group" = String, Path, description = "The failure group"), Paging),
    responses(
        (status = 200, description = "A page of the group", body = JidPage),
        (status = "4XX", description = "Refused", body = ErrorBody)))]
pub async fn failed_group(
    State(state): State<AppState>,
    now: RequestNow,
    Path(group): Path<String>,
    ApiQuery(page): ApiQuery<Paging>,
) -> Result<Json<Value>, ApiError> {
    let page = page.checked()?;
    let cmd = Command::Failed {
        group: Some(group),
        start: page.offset,
        limit: page.count,
    };
    let reply = run(&state, now, cmd).await?;
    Ok(Json(natural(&reply)))
}

/// Body of `POST /v1/failed/{group}/unfail`.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct UnfailBody {
    /// The queue the jobs go back to.
    pub queue: String,
    /// At most this many, oldest first (default 25).
    #[serde(default)]
    pub count: Option<i64>,
}

/// Moves the oldest failed jobs of a group back into a queue.
#[utoipa::path(post, path = "/v1/failed/{group}/unfail", tag = "failed",
    params(("group" = String, Path, description = "The failure group")),
    request_body = UnfailBody,
    responses(
        (status = 200, description = "`{\"unfailed\": n}`", body = Object),
        (status = "4XX", description = "Refused", body = ErrorBody)))]
pub async fn unfail(
    State(state): State<AppState>,
    now: RequestNow,
    Path(group): Path<String>,
    ApiJson(body): ApiJson<UnfailBody>,
) -> Result<Json<Value>, ApiError> {
    let count = body.count.unwrap_or(25);
    if count < 0 {
        return Err(ApiError::invalid(format!(
            "count: expected a number >= 0, got {count}"
        )));
    }
    let cmd = Command::Unfail {
        queue: body.queue,
        group,
        count,
    };
    let reply = run(&state, now, cmd).await?;
    Ok(Json(one("unfailed", reply.to_json())))
}
