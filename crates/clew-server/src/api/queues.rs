//! Queues: counts, listings by state, length, pause/unpause, forget,
//! stats; completed jobs.

use axum::extract::{Path, State};
use axum::Json;
use clew_core::command::JobsListing;
use clew_core::Command;
use serde::Deserialize;
use serde_json::Value;
use utoipa::IntoParams;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use super::{natural, one, run, timestamp, ApiQuery, ErrorBody, Paging, QueueDoc};
use crate::error::ApiError;
use crate::state::{AppState, RequestNow};

/// The queue routes.
pub fn routes() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(list_queues))
        .routes(routes!(get_queue, forget_queue))
        .routes(routes!(queue_jobs))
        .routes(routes!(completed))
        .routes(routes!(length))
        .routes(routes!(pause))
        .routes(routes!(unpause))
        .routes(routes!(stats))
}

/// Counts of every known queue.
#[utoipa::path(get, path = "/v1/queues", tag = "queues",
    responses(
        (status = 200, description = "Every queue's counts", body = Vec<QueueDoc>),
        (status = "4XX", description = "Refused", body = ErrorBody)))]
pub async fn list_queues(
    State(state): State<AppState>,
    now: RequestNow,
) -> Result<Json<Value>, ApiError> {
    let reply = run(&state, now, Command::Queues { queue: None }).await?;
    Ok(Json(natural(&reply)))
}

/// Counts of one queue (zeros for a queue never used).
#[utoipa::path(get, path = "/v1/queues/{queue}", tag = "queues",
    params(("queue" = String, Path, description = "The queue")),
    responses(
        (status = 200, description = "The queue's counts", body = QueueDoc),
        (status = "4XX", description = "Refused", body = ErrorBody)))]
pub async fn get_queue(
    State(state): State<AppState>,
    now: RequestNow,
    Path(queue): Path<String>,
) -> Result<Json<Value>, ApiError> {
    let reply = run(&state, now, Command::Queues { queue: Some(queue) }).await?;
    Ok(Json(natural(&reply)))
}

/// Forgets a queue name (its jobs are not touched).
#[utoipa::path(delete, path = "/v1/queues/{queue}", tag = "queues",
    params(("queue" = String, Path, description = "The queue")),
    responses(
        (status = 200, description = "`{\"forgotten\": queue}`", body = Object),
        (status = "4XX", description = "Refused", body = ErrorBody)))]
pub async fn forget_queue(
    State(state): State<AppState>,
    now: RequestNow,
    Path(queue): Path<String>,
) -> Result<Json<Value>, ApiError> {
    run(
        &state,
        now,
        Command::QueueForget {
            queues: vec![queue.clone()],
        },
    )
    .await?;
    Ok(Json(one("forgotten", queue)))
}

/// Query of `GET /v1/queues/{queue}/jobs`.
#[derive(Debug, Deserialize, IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub struct StateQuery {
    /// `waiting`, `running`, `stalled`, `scheduled`, `depends` or
    /// `recurring`.
    pub state: String,
    /// Skip this many (default 0).
    #[serde(default)]
    pub offset: i64,
    /// At most this many (default 25).
    #[serde(default = "super::default_count")]
    pub count: i64,
}

/// Job ids of a queue in one state, in that listing's order.
#[utoipa::path(get, path = "/v1/queues/{queue}/jobs", tag = "queues",
    params(("queue" = String, Path, description = "The queue"), StateQuery),
    responses(
        (status = 200, description = "The job ids", body = Vec<String>),
        (status = "4XX", description = "Refused", body = ErrorBody)))]
pub async fn queue_jobs(
    State(state): State<AppState>,
    now: RequestNow,
    Path(queue): Path<String>,
    ApiQuery(q): ApiQuery<StateQuery>,
) -> Result<Json<Value>, ApiError> {
    let listing = JobsListing::parse(&q.state).ok_or_else(|| {
        ApiError::invalid(format!(
            "state: expected one of waiting, running, stalled, scheduled, depends, recurring; got {:?}",
            q.state
        ))
    })?;
    let page = Paging {
        offset: q.offset,
        count: q.count,
    }
    .checked()?;
    let cmd = Command::Jobs {
        listing,
        queue,
        offset: page.offset,
        count: page.count,
    };
    let reply = run(&state, now, cmd).await?;
    Ok(Json(natural(&reply)))
}

/// Completed job ids, newest first.
#[utoipa::path(get, path = "/v1/completed", tag = "queues",
    params(Paging),
    responses(
        (status = 200, description = "The job ids", body = Vec<String>),
        (status = "4XX", description = "Refused", body = ErrorBody)))]
pub async fn completed(
    State(state): State<AppState>,
    now: RequestNow,
    ApiQuery(page): ApiQuery<Paging>,
) -> Result<Json<Value>, ApiError> {
    let page = page.checked()?;
    let cmd = Command::JobsComplete {
        offset: page.offset,
        count: page.count,
    };
    let reply = run(&state, now, cmd).await?;
    Ok(Json(natural(&reply)))
}

/// Running + waiting + scheduled jobs of a queue.
#[utoipa::path(get, path = "/v1/queues/{queue}/length", tag = "queues",
    params(("queue" = String, Path, description = "The queue")),
    responses(
        (status = 200, description = "`{\"length\": n}`", body = Object),
        (status = "4XX", description = "Refused", body = ErrorBody)))]
pub async fn length(
    State(state): State<AppState>,
    now: RequestNow,
    Path(queue): Path<String>,
) -> Result<Json<Value>, ApiError> {
    let reply = run(&state, now, Command::Length { queue }).await?;
    Ok(Json(one("length", reply.to_json())))
}

/// Stops handing out jobs from a queue.
#[utoipa::path(post, path = "/v1/queues/{queue}/pause", tag = "queues",
    params(("queue" = String, Path, description = "The queue")),
    responses(
        (status = 200, description = "`{\"paused\": true}`", body = Object),
        (status = "4XX", description = "Refused", body = ErrorBody)))]
pub async fn pause(
    State(state): State<AppState>,
    now: RequestNow,
    Path(queue): Path<String>,
) -> Result<Json<Value>, ApiError> {
    run(
        &state,
        now,
        Command::Pause {
            queues: vec![queue],
        },
    )
    .await?;
    Ok(Json(one("paused", true)))
}

/// Resumes handing out jobs from a queue.
#[utoipa::path(post, path = "/v1/queues/{queue}/unpause", tag = "queues",
    params(("queue" = String, Path, description = "The queue")),
    responses(
        (status = 200, description = "`{\"paused\": false}`", body = Object),
        (status = "4XX", description = "Refused", body = ErrorBody)))]
pub async fn unpause(
    State(state): State<AppState>,
    now: RequestNow,
    Path(queue): Path<String>,
) -> Result<Json<Value>, ApiError> {
    run(
        &state,
        now,
        Command::Unpause {
            queues: vec![queue],
        },
    )
    .await?;
    Ok(Json(one("paused", false)))
}

/// Query of `GET /v1/queues/{queue}/stats`.
#[derive(Debug, Deserialize, IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub struct StatsQuery {
    /// Any time (seconds) in the day wanted (default: now).
    #[serde(default)]
    pub date: Option<f64>,
}

/// A queue's stats for one day: retries, failures, wait and run times.
#[utoipa::path(get, path = "/v1/queues/{queue}/stats", tag = "queues",
    params(("queue" = String, Path, description = "The queue"), StatsQuery),
    responses(
        (status = 200, description = "`{\"retries\", \"failed\", \"failures\", \"wait\": {\"count\", \"mean\", \"std\", \"histogram\"}, \"run\": {...}}`", body = Object),
        (status = "4XX", description = "Refused", body = ErrorBody)))]
pub async fn stats(
    State(state): State<AppState>,
    now: RequestNow,
    Path(queue): Path<String>,
    ApiQuery(q): ApiQuery<StatsQuery>,
) -> Result<Json<Value>, ApiError> {
    let date = match q.date {
        Some(d) => timestamp("date", d)?,
        None => now.0,
    };
    let reply = run(&state, now, Command::Stats { queue, date }).await?;
    Ok(Json(natural(&reply)))
}
