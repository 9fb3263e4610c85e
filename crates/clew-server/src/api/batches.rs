//! Batches as objects: create one with its jobs and a callback job, read
//! its progress, list batches, list a batch's jobs, cancel a batch (see
//! `clew_core::batch`). (`/v1/batch/*` are the bulk operations: many puts,
//! completes or fails in one call.)

use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::Json;
use clew_core::batch::{BatchParams, BatchSpec, CallbackSpec};
use clew_core::{Command, Reply};
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};
use utoipa::ToSchema;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use super::jobs::{batch_size, item_put, PutJob};
use super::{natural, run, ApiJson, ApiQuery, ErrorBody, JidPage, Paging};
use crate::error::ApiError;
use crate::state::{AppState, RequestNow};

/// The batch routes.
pub fn routes() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(batch_create, batch_list))
        .routes(routes!(batch_get))
        .routes(routes!(batch_jobs))
        .routes(routes!(batch_cancel))
}

/// The callback job of a batch: put once, when every job of the batch has
/// finished (complete, failed or canceled).
#[derive(Debug, Deserialize, Serialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct CallbackBody {
    /// The queue it is put into.
    pub queue: String,
    /// Its class.
    pub klass: String,
    /// Its job id (a new one when absent).
    #[serde(default)]
    pub jid: Option<String>,
    /// Its payload, a JSON object (default `{}`); the key `batch` is set to
    /// `{id, total, complete, failed, canceled}` when it is put.
    #[serde(default)]
    #[schema(value_type = Option<Object>)]
    pub data: Option<Map<String, Value>>,
    /// Its priority (default 0).
    #[serde(default)]
    pub priority: Option<i64>,
    /// Its tags.
    #[serde(default)]
    pub tags: Option<Vec<String>>,
    /// Its retries (default 5).
    #[serde(default)]
    pub retries: Option<i64>,
}

/// Body of `POST /v1/batches`.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct CreateBatch {
    /// The batch id (a new one when absent); an existing id is refused (409).
    #[serde(default)]
    pub id: Option<String>,
    /// Free text for people.
    #[serde(default)]
    pub description: Option<String>,
    /// The caller's metadata (a JSON object).
    #[serde(default)]
    #[schema(value_type = Option<Object>)]
    pub metadata: Option<Map<String, Value>>,
    /// The callback job, if any.
    #[serde(default)]
    pub callback: Option<CallbackBody>,
    /// The jobs (1 to 10,000), each as the body of
    /// `POST /v1/queues/{queue}/jobs` plus its `queue`.
    pub jobs: Vec<PutJob>,
}

/// A batch's progress.
#[derive(Debug, Serialize, ToSchema)]
pub struct BatchDoc {
    /// The batch id.
    pub id: String,
    /// When it was created (seconds since the epoch).
    pub created: f64,
    /// Free text.
    pub description: String,
    /// The caller's metadata.
    #[schema(value_type = Object)]
    pub metadata: Value,
    /// Jobs that ever joined it.
    pub total: i64,
    /// Jobs not finished.
    pub pending: i64,
    /// Jobs complete.
    pub complete: i64,
    /// Jobs failed.
    pub failed: i64,
    /// Jobs canceled.
    pub canceled: i64,
    /// When every job had finished (seconds), or null.
    pub finished: Option<f64>,
    /// The callback spec, or null.
    pub callback: Option<CallbackBody>,
    /// The callback's job id once it was put, or null.
    pub callback_jid: Option<String>,
    /// The callback job's state while it exists, or null.
    pub callback_state: Option<String>,
}

/// Answer of `POST /v1/batches`.
#[derive(Debug, Serialize, ToSchema)]
pub struct CreatedBatch {
    /// The batch.
    pub batch: BatchDoc,
    /// The jobs' ids, in the order of the request's jobs.
    pub jids: Vec<String>,
}

/// A page of batches, newest first.
#[derive(Debug, Serialize, ToSchema)]
pub struct BatchPage {
    /// How many batches there are.
    pub total: i64,
    /// This page.
    pub batches: Vec<BatchDoc>,
}

/// Creates a batch with its jobs in one transaction: all of them or none.
///
/// Each job joins the batch. When every job has finished (complete, failed
/// or canceled; a failed job retried is pending again) the callback job is
/// put, once. More jobs may join later while it is open
/// (`POST /v1/queues/{queue}/jobs` with `batch`).
#[utoipa::path(post, path = "/v1/batches", tag = "batches",
    request_body = CreateBatch,
    responses(
        (status = 201, description = "Created, with its jobs' ids", body = CreatedBatch),
        (status = "4XX", description = "Refused, nothing put (409: the id exists)", body = ErrorBody)))]
pub async fn batch_create(
    State(state): State<AppState>,
    now: RequestNow,
    headers: axum::http::HeaderMap,
    ApiJson(body): ApiJson<CreateBatch>,
) -> Result<(StatusCode, Json<Value>), ApiError> {
    let n = body.jobs.len();
    batch_size(n)?;
    let mut jobs = Vec::with_capacity(n);
    for (i, job) in body.jobs.into_iter().enumerate() {
        let mut command = Command::Put(item_put(i, job)?);
        state.config().apply_header_metadata(&headers, &mut command);
        if let Command::Put(p) = command {
            jobs.push(p);
        }
    }
    let callback = body.callback.map(|c| CallbackSpec {
        queue: c.queue,
        klass: c.klass,
        jid: c.jid.unwrap_or_default(),
        data: c.data.unwrap_or_default(),
        priority: c.priority,
        tags: c.tags.unwrap_or_default(),
        retries: c.retries,
    });
    let params = BatchParams {
        id: body.id.unwrap_or_default(),
        spec: BatchSpec {
            description: body.description.unwrap_or_default(),
            metadata: body.metadata.unwrap_or_default(),
            callback,
        },
        jobs,
    };
    let reply = run(&state, now, Command::BatchCreate(params)).await?;
    Ok((StatusCode::CREATED, Json(natural(&reply))))
}

/// Batches, newest first, paged, with the total.
#[utoipa::path(get, path = "/v1/batches", tag = "batches",
    params(Paging),
    responses(
        (status = 200, description = "A page of batches", body = BatchPage),
        (status = "4XX", description = "Refused", body = ErrorBody)))]
pub async fn batch_list(
    State(state): State<AppState>,
    now: RequestNow,
    ApiQuery(page): ApiQuery<Paging>,
) -> Result<Json<Value>, ApiError> {
    let page = page.checked()?;
    let cmd = Command::BatchList {
        offset: page.offset,
        count: page.count,
    };
    Ok(Json(natural(&run(&state, now, cmd).await?)))
}

/// One batch's progress: counts by outcome, when it finished, its callback.
#[utoipa::path(get, path = "/v1/batches/{id}", tag = "batches",
    params(("id" = String, Path, description = "The batch id")),
    responses(
        (status = 200, description = "The batch", body = BatchDoc),
        (status = 404, description = "No such batch", body = ErrorBody)))]
pub async fn batch_get(
    State(state): State<AppState>,
    now: RequestNow,
    Path(id): Path<String>,
) -> Result<Json<Value>, ApiError> {
    match run(&state, now, Command::BatchGet { id: id.clone() }).await? {
        reply @ Reply::BatchInfo(Some(_)) => Ok(Json(natural(&reply))),
        _ => Err(not_found(&id)),
    }
}

/// The ids of a batch's jobs that still exist (completed jobs expire), by
/// job id, paged, with the total.
#[utoipa::path(get, path = "/v1/batches/{id}/jobs", tag = "batches",
    params(("id" = String, Path, description = "The batch id"), Paging),
    responses(
        (status = 200, description = "A page of job ids", body = JidPage),
        (status = 404, description = "No such batch", body = ErrorBody)))]
pub async fn batch_jobs(
    State(state): State<AppState>,
    now: RequestNow,
    Path(id): Path<String>,
    ApiQuery(page): ApiQuery<Paging>,
) -> Result<Json<Value>, ApiError> {
    let page = page.checked()?;
    if !matches!(
        run(&state, now.clone(), Command::BatchGet { id: id.clone() }).await?,
        Reply::BatchInfo(Some(_))
    ) {
        return Err(not_found(&id));
    }
    let cmd = Command::BatchJobs {
        id,
        offset: page.offset,
        count: page.count,
    };
    Ok(Json(natural(&run(&state, now, cmd).await?)))
}

/// Cancels every job of a batch that is not complete (refused with 409 if
/// a job outside the batch depends on one); answers their ids.
#[utoipa::path(post, path = "/v1/batches/{id}/cancel", tag = "batches",
    params(("id" = String, Path, description = "The batch id")),
    responses(
        (status = 200, description = "`{\"canceled\": [jid, ...]}`", body = Object),
        (status = "4XX", description = "Refused (404: no such batch)", body = ErrorBody)))]
pub async fn batch_cancel(
    State(state): State<AppState>,
    now: RequestNow,
    Path(id): Path<String>,
) -> Result<Json<Value>, ApiError> {
    let reply = run(&state, now, Command::BatchCancel { id }).await?;
    Ok(Json(super::one("canceled", reply.to_json())))
}

fn not_found(id: &str) -> ApiError {
    ApiError::not_found(format!("batch {id} does not exist"))
}
