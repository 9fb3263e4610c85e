//! Tags: jobs carrying a tag, most used tags.

use axum::extract::{Path, State};
use axum::Json;
use clew_core::Command;
use serde_json::Value;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use super::{natural, run, ApiQuery, ErrorBody, JidPage, Paging};
use crate::error::ApiError;
use crate::state::{AppState, RequestNow};

/// The tag routes.
pub fn routes() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(top_tags))
        .routes(routes!(tagged_jobs))
}

/// The most used tags (used by at least two jobs), most used first.
#[utoipa::path(get, path = "/v1/tags", tag = "tags",
    params(Paging),
    responses(
        (status = 200, description = "The tags", body = Vec<String>),
        (status = "4XX", description = "Refused", body = ErrorBody)))]
pub async fn top_tags(
    State(state): State<AppState>,
    now: RequestNow,
    ApiQuery(page): ApiQuery<Paging>,
) -> Result<Json<Value>, ApiError> {
    let page = page.checked()?;
    let cmd = Command::TagTop {
        offset: page.offset,
        count: page.count,
    };
    let reply = run(&state, now, cmd).await?;
    Ok(Json(natural(&reply)))
}

/// Job ids carrying a tag, paged, with the total.
#[utoipa::path(get, path = "/v1/tags/{tag}/jobs", tag = "tags",
    params(("tag" = String, Path, description = "The tag"), Paging),
    responses(
        (status = 200, description = "A page of job ids", body = JidPage),
        (status = "4XX", description = "Refused", body = ErrorBody)))]
pub async fn tagged_jobs(
    State(state): State<AppState>,
    now: RequestNow,
    Path(tag): Path<String>,
    ApiQuery(page): ApiQuery<Paging>,
) -> Result<Json<Value>, ApiError> {
    let page = page.checked()?;
    let cmd = Command::TagGet {
        tag,
        offset: page.offset,
        count: page.count,
    };
    let reply = run(&state, now, cmd).await?;
    Ok(Json(natural(&reply)))
}
