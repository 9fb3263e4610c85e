//! Jobs: put, get, multiget, pop, peek, heartbeat, complete, fail, retry,
//! release, cancel, dependencies, priority, timeout, log, tags, tracking.

use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::Json;
use clew_core::command::{CompleteParams, DependsChange, PutParams};
use clew_core::Command;
use serde::Deserialize;
use serde_json::value::RawValue;
use serde_json::{Map, Value};
use utoipa::{IntoParams, ToSchema};
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use super::{
    data_text, existing_job, job_json, natural, one, run, split_list, ApiJson, ApiQuery, ErrorBody,
    JobDoc,
};
use crate::error::ApiError;
use crate::state::{AppState, RequestNow};

/// The job routes.
pub fn routes() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(put_job))
        .routes(routes!(pop))
        .routes(routes!(peek))
        .routes(routes!(wait_for_jobs))
        .routes(routes!(get_job, cancel_job))
        .routes(routes!(multiget, cancel_jobs))
        .routes(routes!(heartbeat))
        .routes(routes!(complete))
        .routes(routes!(fail))
        .routes(routes!(retry))
        .routes(routes!(release))
        .routes(routes!(depends_add))
        .routes(routes!(depends_remove))
        .routes(routes!(set_priority))
        .routes(routes!(timeout))
        .routes(routes!(log))
        .routes(routes!(tags_add, tags_remove))
        .routes(routes!(track, untrack))
        .routes(routes!(tracked))
}

/// Body of `POST /v1/queues/{queue}/jobs`.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct PutJob {
    /// The job id; a new one (32 hex digits) is made when absent. Putting an
    /// existing jid moves that job into this queue.
    #[serde(default)]
    pub jid: Option<String>,
    /// The job class.
    pub klass: String,
    /// The payload: any JSON value, stored as its JSON text verbatim
    /// (default `{}`).
    #[serde(default)]
    #[schema(value_type = Value)]
    pub data: Option<Box<RawValue>>,
    /// Seconds before it may run (default 0).
    #[serde(default)]
    pub delay: Option<f64>,
    /// Priority, higher first (default 0, or the existing job's).
    #[serde(default)]
    pub priority: Option<i64>,
    /// Tags (default none, or the existing job's).
    #[serde(default)]
    pub tags: Option<Vec<String>>,
    /// Retries (default 5, or the existing job's).
    #[serde(default)]
    pub retries: Option<i64>,
    /// Jobs it must wait for (replaces existing ones when given).
    #[serde(default)]
    pub depends: Option<Vec<String>>,
    /// Who puts it (default `clew`): a worker that held the job is told it
    /// lost its lock.
    #[serde(default)]
    pub worker: Option<String>,
    /// Refuse (404) unless a job with this `jid` exists (qless `requeue`).
    #[serde(default)]
    pub must_exist: bool,
    /// User metadata for the job's lifecycle events (keys starting with `_`
    /// are dropped); default none, or the existing job's.
    #[serde(default)]
    #[schema(value_type = Option<Object>)]
    pub metadata: Option<serde_json::Map<String, Value>>,
}

/// Answer of `POST /v1/queues/{queue}/jobs`.
#[derive(Debug, serde::Serialize, ToSchema)]
pub struct PutAnswer {
    /// The job id.
    pub jid: String,
}

/// Puts a job into a queue (or moves an existing one there).
#[utoipa::path(post, path = "/v1/queues/{queue}/jobs", tag = "jobs",
    params(("queue" = String, Path, description = "The queue")),
    request_body = PutJob,
    responses(
        (status = 201, description = "Created or moved", body = PutAnswer),
        (status = "4XX", description = "Refused", body = ErrorBody)))]
pub async fn put_job(
    State(state): State<AppState>,
    now: RequestNow,
    headers: axum::http::HeaderMap,
    Path(queue): Path<String>,
    ApiJson(body): ApiJson<PutJob>,
) -> Result<(StatusCode, Json<Value>), ApiError> {
    let mut p = PutParams::new(queue, body.klass);
    p.jid = match body.jid {
        Some(j) => j,
        None => clew_core::engine::new_jid(),
    };
    if let Some(d) = &body.data {
        p.data = data_text(d);
    }
    if let Some(w) = body.worker {
        p.worker = w;
    }
    p.delay = body.delay.unwrap_or(0.0);
    p.priority = body.priority;
    p.tags = body.tags;
    p.retries = body.retries;
    p.depends = body.depends;
    p.must_exist = body.must_exist;
    p.metadata = body.metadata;
    let mut command = Command::Put(p);
    state.config().apply_header_metadata(&headers, &mut command);
    let reply = run(&state, now, command).await?;
    Ok((StatusCode::CREATED, Json(one("jid", reply.to_json()))))
}

/// Body of `POST /v1/queues/{queue}/pop`.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct PopBody {
    /// The worker taking the jobs.
    pub worker: String,
    /// At most this many (default 1).
    #[serde(default)]
    pub count: Option<i64>,
}

/// Hands out up to `count` jobs of a queue to a worker.
#[utoipa::path(post, path = "/v1/queues/{queue}/pop", tag = "jobs",
    params(("queue" = String, Path, description = "The queue")),
    request_body = PopBody,
    responses(
        (status = 200, description = "The jobs now running for the worker (possibly none)", body = Vec<JobDoc>),
        (status = "4XX", description = "Refused", body = ErrorBody)))]
pub async fn pop(
    State(state): State<AppState>,
    now: RequestNow,
    Path(queue): Path<String>,
    ApiJson(body): ApiJson<PopBody>,
) -> Result<Json<Value>, ApiError> {
    let count = count_arg(body.count, 1)?;
    let reply = run(
        &state,
        now,
        Command::Pop {
            queue,
            worker: body.worker,
            count,
        },
    )
    .await?;
    Ok(Json(natural(&reply)))
}

/// Body of `POST /v1/wait`.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct WaitBody {
    /// The queues to watch (1 to 100).
    pub queues: Vec<String>,
    /// Longest wait in seconds (0 to 30).
    pub timeout: f64,
}

/// The longest `POST /v1/wait` may wait.
pub const MAX_WAIT_SECS: f64 = 30.0;

/// Waits until one of the queues has a job a pop would hand out, or the
/// timeout passes: `{"ready": true, "queue": name}` or `{"ready": false}`.
/// Idle workers call it instead of polling: the request is answered as
/// soon as a commit makes a job available. It hands out nothing itself
/// (another worker may pop the job first).
#[utoipa::path(post, path = "/v1/wait", tag = "jobs",
    request_body = WaitBody,
    responses(
        (status = 200, description = "`{\"ready\": bool, \"queue\": name}`", body = Object),
        (status = "4XX", description = "Refused", body = ErrorBody)))]
pub async fn wait_for_jobs(
    State(state): State<AppState>,
    now: RequestNow,
    ApiJson(body): ApiJson<WaitBody>,
) -> Result<Json<Value>, ApiError> {
    if body.queues.is_empty() || body.queues.len() > 100 {
        return Err(ApiError::invalid(format!(
            "queues: expected 1 to 100 queue names, got {}",
            body.queues.len()
        )));
    }
    if !(body.timeout.is_finite() && (0.0..=MAX_WAIT_SECS).contains(&body.timeout)) {
        return Err(ApiError::invalid(format!(
            "timeout: expected seconds from 0 to {MAX_WAIT_SECS}, got {}",
            body.timeout
        )));
    }
    let ready = state
        .engine()
        .wait_for_jobs(clew_core::engine::WaitFor {
            queues: &body.queues,
            timeout: std::time::Duration::from_secs_f64(body.timeout),
            start: now.0,
            commits: Some(state.event_wakeups()),
            stop: Some(state.shutting_down()),
        })
        .await?;
    Ok(Json(match ready {
        Some(queue) => serde_json::json!({"ready": true, "queue": queue}),
        None => serde_json::json!({"ready": false}),
    }))
}

fn count_arg(count: Option<i64>, default: i64) -> Result<i64, ApiError> {
    match count {
        None => Ok(default),
        Some(c) if c >= 0 => Ok(c),
        Some(c) => Err(ApiError::invalid(format!(
            "count: expected a number >= 0, got {c}"
        ))),
    }
}

/// Query of `GET /v1/queues/{queue}/peek`.
#[derive(Debug, Deserialize, IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub struct CountQuery {
    /// At most this many (default 1).
    #[serde(default)]
    pub count: Option<i64>,
}

/// The jobs a pop would hand out, without taking them.
#[utoipa::path(get, path = "/v1/queues/{queue}/peek", tag = "jobs",
    params(("queue" = String, Path, description = "The queue"), CountQuery),
    responses(
        (status = 200, description = "The next jobs", body = Vec<JobDoc>),
        (status = "4XX", description = "Refused", body = ErrorBody)))]
pub async fn peek(
    State(state): State<AppState>,
    now: RequestNow,
    Path(queue): Path<String>,
    ApiQuery(q): ApiQuery<CountQuery>,
) -> Result<Json<Value>, ApiError> {
    let count = count_arg(q.count, 1)?;
    let reply = run(&state, now, Command::Peek { queue, count }).await?;
    Ok(Json(natural(&reply)))
}

/// One job.
#[utoipa::path(get, path = "/v1/jobs/{jid}", tag = "jobs",
    params(("jid" = String, Path, description = "The job id")),
    responses(
        (status = 200, description = "The job", body = JobDoc),
        (status = 404, description = "No such job", body = ErrorBody)))]
pub async fn get_job(
    State(state): State<AppState>,
    now: RequestNow,
    Path(jid): Path<String>,
) -> Result<Json<Value>, ApiError> {
    let job = existing_job(&state, now, &jid).await?;
    Ok(Json(job_json(&job)))
}

/// Cancels one job (and forgets it). Refused (409) if another job depends
/// on it.
#[utoipa::path(delete, path = "/v1/jobs/{jid}", tag = "jobs",
    params(("jid" = String, Path, description = "The job id")),
    responses(
        (status = 200, description = "`{\"cancelled\": [jid]}`", body = Object),
        (status = "4XX", description = "Refused", body = ErrorBody)))]
pub async fn cancel_job(
    State(state): State<AppState>,
    now: RequestNow,
    Path(jid): Path<String>,
) -> Result<Json<Value>, ApiError> {
    let reply = run(&state, now, Command::Cancel { jids: vec![jid] }).await?;
    Ok(Json(one("cancelled", reply.to_json())))
}

/// Query naming several jobs.
#[derive(Debug, Deserialize, IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub struct JidsQuery {
    /// Comma-separated job ids.
    pub jids: String,
}

/// Several jobs (missing ones are left out).
#[utoipa::path(get, path = "/v1/jobs", tag = "jobs",
    params(JidsQuery),
    responses(
        (status = 200, description = "The jobs that exist", body = Vec<JobDoc>),
        (status = "4XX", description = "Refused", body = ErrorBody)))]
pub async fn multiget(
    State(state): State<AppState>,
    now: RequestNow,
    ApiQuery(q): ApiQuery<JidsQuery>,
) -> Result<Json<Value>, ApiError> {
    let jids = split_list("jids", &q.jids)?;
    let reply = run(&state, now, Command::MultiGet { jids }).await?;
    Ok(Json(natural(&reply)))
}

/// Cancels several jobs at once. Refused (409) if a job outside the list
/// depends on one of them.
#[utoipa::path(delete, path = "/v1/jobs", tag = "jobs",
    params(JidsQuery),
    responses(
        (status = 200, description = "`{\"cancelled\": [jid, ...]}`", body = Object),
        (status = "4XX", description = "Refused", body = ErrorBody)))]
pub async fn cancel_jobs(
    State(state): State<AppState>,
    now: RequestNow,
    ApiQuery(q): ApiQuery<JidsQuery>,
) -> Result<Json<Value>, ApiError> {
    let jids = split_list("jids", &q.jids)?;
    let reply = run(&state, now, Command::Cancel { jids }).await?;
    Ok(Json(one("cancelled", reply.to_json())))
}

/// Body of `POST /v1/jobs/{jid}/heartbeat`.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct HeartbeatBody {
    /// The worker holding the job.
    pub worker: String,
    /// A new payload (any JSON value), if it changes.
    #[serde(default)]
    #[schema(value_type = Value)]
    pub data: Option<Box<RawValue>>,
}

/// Renews a running job's lock.
#[utoipa::path(post, path = "/v1/jobs/{jid}/heartbeat", tag = "jobs",
    params(("jid" = String, Path, description = "The job id")),
    request_body = HeartbeatBody,
    responses(
        (status = 200, description = "`{\"expires\": seconds}`: the new lock expiry", body = Object),
        (status = "4XX", description = "Refused (409: not running, or held by another worker)", body = ErrorBody)))]
pub async fn heartbeat(
    State(state): State<AppState>,
    now: RequestNow,
    Path(jid): Path<String>,
    ApiJson(body): ApiJson<HeartbeatBody>,
) -> Result<Json<Value>, ApiError> {
    let cmd = Command::Heartbeat {
        jid,
        worker: body.worker,
        data: body.data.as_deref().map(data_text),
    };
    let reply = run(&state, now, cmd).await?;
    Ok(Json(one("expires", reply.to_json())))
}

/// Body of `POST /v1/jobs/{jid}/complete`.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct CompleteBody {
    /// The worker holding the job.
    pub worker: String,
    /// The queue it runs in (default: the job's queue).
    #[serde(default)]
    pub queue: Option<String>,
    /// A new payload (any JSON value; default: unchanged).
    #[serde(default)]
    #[schema(value_type = Value)]
    pub data: Option<Box<RawValue>>,
    /// Advance into this queue instead of finishing.
    #[serde(default)]
    pub next: Option<String>,
    /// With `next`: seconds before it may run there.
    #[serde(default)]
    pub delay: Option<f64>,
    /// With `next`: jobs it must wait for there.
    #[serde(default)]
    pub depends: Option<Vec<String>>,
}

/// Finishes a running job, or advances it into the `next` queue.
#[utoipa::path(post, path = "/v1/jobs/{jid}/complete", tag = "jobs",
    params(("jid" = String, Path, description = "The job id")),
    request_body = CompleteBody,
    responses(
        (status = 200, description = "`{\"jid\", \"state\"}`: `complete`, or its state in the next queue", body = Object),
        (status = "4XX", description = "Refused (409: not running, or held by another worker)", body = ErrorBody)))]
pub async fn complete(
    State(state): State<AppState>,
    now: RequestNow,
    Path(jid): Path<String>,
    ApiJson(body): ApiJson<CompleteBody>,
) -> Result<Json<Value>, ApiError> {
    let (queue, data) = match (body.queue, &body.data) {
        (Some(q), Some(d)) => (q, data_text(d)),
        (q, d) => {
            let job = existing_job(&state, now.clone(), &jid).await?;
            (
                q.unwrap_or_else(|| job.record.queue.clone()),
                d.as_deref()
                    .map(data_text)
                    .unwrap_or_else(|| job.record.data.clone()),
            )
        }
    };
    let params = CompleteParams {
        jid: jid.clone(),
        worker: body.worker,
        queue,
        data,
        next: body.next,
        delay: body.delay.unwrap_or(0.0),
        depends: body.depends.unwrap_or_default(),
        metadata: None,
    };
    let reply = run(&state, now, Command::Complete(params)).await?;
    Ok(Json(
        serde_json::json!({"jid": jid, "state": reply.to_json()}),
    ))
}

/// Body of `POST /v1/jobs/{jid}/fail`.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct FailBody {
    /// The worker holding the job.
    pub worker: String,
    /// The failure group (e.g. an exception type).
    pub group: String,
    /// The failure message.
    pub message: String,
    /// A new payload (any JSON value), if it changes.
    #[serde(default)]
    #[schema(value_type = Value)]
    pub data: Option<Box<RawValue>>,
}

/// Fails a running job into a failure group.
#[utoipa::path(post, path = "/v1/jobs/{jid}/fail", tag = "jobs",
    params(("jid" = String, Path, description = "The job id")),
    request_body = FailBody,
    responses(
        (status = 200, description = "`{\"jid\"}`", body = Object),
        (status = "4XX", description = "Refused (409: not running, or held by another worker)", body = ErrorBody)))]
pub async fn fail(
    State(state): State<AppState>,
    now: RequestNow,
    Path(jid): Path<String>,
    ApiJson(body): ApiJson<FailBody>,
) -> Result<Json<Value>, ApiError> {
    let cmd = Command::Fail {
        jid: jid.clone(),
        worker: body.worker,
        group: body.group,
        message: body.message,
        data: body.data.as_deref().map(data_text),
        metadata: None,
    };
    run(&state, now, cmd).await?;
    Ok(Json(one("jid", jid)))
}

/// Body of `POST /v1/jobs/{jid}/retry`.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct RetryBody {
    /// The worker holding the job.
    pub worker: String,
    /// The queue it runs in (default: the job's queue).
    #[serde(default)]
    pub queue: Option<String>,
    /// Seconds before it may run again (default 0).
    #[serde(default)]
    pub delay: Option<f64>,
    /// Failure group if it is out of retries.
    #[serde(default)]
    pub group: Option<String>,
    /// Failure message if it is out of retries.
    #[serde(default)]
    pub message: Option<String>,
}

/// Puts a running job back into its queue (or fails it when out of
/// retries).
#[utoipa::path(post, path = "/v1/jobs/{jid}/retry", tag = "jobs",
    params(("jid" = String, Path, description = "The job id")),
    request_body = RetryBody,
    responses(
        (status = 200, description = "`{\"remaining\": n}`: retries left (negative: it failed)", body = Object),
        (status = "4XX", description = "Refused", body = ErrorBody)))]
pub async fn retry(
    State(state): State<AppState>,
    now: RequestNow,
    Path(jid): Path<String>,
    ApiJson(body): ApiJson<RetryBody>,
) -> Result<Json<Value>, ApiError> {
    let queue = match body.queue {
        Some(q) => q,
        None => existing_job(&state, now.clone(), &jid).await?.record.queue,
    };
    let cmd = Command::Retry {
        jid,
        queue,
        worker: body.worker,
        delay: body.delay.unwrap_or(0.0),
        group: body.group,
        message: body.message,
    };
    let reply = run(&state, now, cmd).await?;
    Ok(Json(one("remaining", reply.to_json())))
}

/// Body of `POST /v1/jobs/{jid}/release`.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ReleaseBody {
    /// The worker holding the job.
    pub worker: String,
}

/// Hands a running job back to the front of its queue without spending a
/// retry or recording a failure (a clew extension, for a worker that stops
/// now).
#[utoipa::path(post, path = "/v1/jobs/{jid}/release", tag = "jobs",
    params(("jid" = String, Path, description = "The job id")),
    request_body = ReleaseBody,
    responses(
        (status = 200, description = "`{\"jid\", \"state\": \"waiting\"}`", body = Object),
        (status = "4XX", description = "Refused (404: no such job; 409: not running, or held by another worker)", body = ErrorBody)))]
pub async fn release(
    State(state): State<AppState>,
    now: RequestNow,
    Path(jid): Path<String>,
    ApiJson(body): ApiJson<ReleaseBody>,
) -> Result<Json<Value>, ApiError> {
    let cmd = Command::Release {
        jid: jid.clone(),
        worker: body.worker,
    };
    let reply = run(&state, now, cmd).await?;
    Ok(Json(
        serde_json::json!({"jid": jid, "state": reply.to_json()}),
    ))
}

/// A list of job ids.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct JidList {
    /// The job ids.
    pub jids: Vec<String>,
}

/// Adds dependencies to a job in the `depends` state.
#[utoipa::path(post, path = "/v1/jobs/{jid}/depends", tag = "jobs",
    params(("jid" = String, Path, description = "The job id")),
    request_body = JidList,
    responses(
        (status = 200, description = "`{\"changed\": bool}`", body = Object),
        (status = "4XX", description = "Refused", body = ErrorBody)))]
pub async fn depends_add(
    State(state): State<AppState>,
    now: RequestNow,
    Path(jid): Path<String>,
    ApiJson(body): ApiJson<JidList>,
) -> Result<Json<Value>, ApiError> {
    let cmd = Command::Depends {
        jid,
        change: DependsChange::On(body.jids),
    };
    let reply = run(&state, now, cmd).await?;
    Ok(Json(one("changed", reply.to_json())))
}

/// Body of `POST /v1/jobs/{jid}/depends/remove`.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct DependsRemove {
    /// The dependencies to remove.
    #[serde(default)]
    pub jids: Option<Vec<String>>,
    /// Remove all dependencies (instead of `jids`).
    #[serde(default)]
    pub all: bool,
}

/// Removes dependencies from a job (some, or all).
#[utoipa::path(post, path = "/v1/jobs/{jid}/depends/remove", tag = "jobs",
    params(("jid" = String, Path, description = "The job id")),
    request_body = DependsRemove,
    responses(
        (status = 200, description = "`{\"changed\": bool}`", body = Object),
        (status = "4XX", description = "Refused", body = ErrorBody)))]
pub async fn depends_remove(
    State(state): State<AppState>,
    now: RequestNow,
    Path(jid): Path<String>,
    ApiJson(body): ApiJson<DependsRemove>,
) -> Result<Json<Value>, ApiError> {
    let change = match (body.jids, body.all) {
        (None, true) => DependsChange::OffAll,
        (Some(j), false) => DependsChange::Off(j),
        _ => {
            return Err(ApiError::invalid(
                "jids, all: expected either \"jids\" (a list of job ids) or \"all\": true",
            ))
        }
    };
    let reply = run(&state, now, Command::Depends { jid, change }).await?;
    Ok(Json(one("changed", reply.to_json())))
}

/// Body of `PUT /v1/jobs/{jid}/priority`.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct PriorityBody {
    /// The new priority (higher runs first).
    pub priority: i64,
}

/// Sets a job's priority.
#[utoipa::path(put, path = "/v1/jobs/{jid}/priority", tag = "jobs",
    params(("jid" = String, Path, description = "The job id")),
    request_body = PriorityBody,
    responses(
        (status = 200, description = "`{\"priority\": n}`", body = Object),
        (status = "4XX", description = "Refused", body = ErrorBody)))]
pub async fn set_priority(
    State(state): State<AppState>,
    now: RequestNow,
    Path(jid): Path<String>,
    ApiJson(body): ApiJson<PriorityBody>,
) -> Result<Json<Value>, ApiError> {
    let reply = run(
        &state,
        now,
        Command::Priority {
            jid,
            priority: body.priority,
        },
    )
    .await?;
    Ok(Json(one("priority", reply.to_json())))
}

/// Times out a running job: it goes to the front of its queue as stalled.
#[utoipa::path(post, path = "/v1/jobs/{jid}/timeout", tag = "jobs",
    params(("jid" = String, Path, description = "The job id")),
    responses(
        (status = 200, description = "`{\"jid\"}`", body = Object),
        (status = "4XX", description = "Refused (409: not running)", body = ErrorBody)))]
pub async fn timeout(
    State(state): State<AppState>,
    now: RequestNow,
    Path(jid): Path<String>,
) -> Result<Json<Value>, ApiError> {
    run(
        &state,
        now,
        Command::Timeout {
            jids: vec![jid.clone()],
        },
    )
    .await?;
    Ok(Json(one("jid", jid)))
}

/// Body of `POST /v1/jobs/{jid}/log`.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct LogBody {
    /// The entry's `what`.
    pub message: String,
    /// Keys merged into the entry.
    #[serde(default)]
    #[schema(value_type = Object)]
    pub data: Option<Map<String, Value>>,
}

/// Appends a history entry to a job.
#[utoipa::path(post, path = "/v1/jobs/{jid}/log", tag = "jobs",
    params(("jid" = String, Path, description = "The job id")),
    request_body = LogBody,
    responses(
        (status = 200, description = "`{\"jid\"}`", body = Object),
        (status = "4XX", description = "Refused", body = ErrorBody)))]
pub async fn log(
    State(state): State<AppState>,
    now: RequestNow,
    Path(jid): Path<String>,
    ApiJson(body): ApiJson<LogBody>,
) -> Result<Json<Value>, ApiError> {
    let cmd = Command::Log {
        jid: jid.clone(),
        message: body.message,
        data: body.data,
    };
    run(&state, now, cmd).await?;
    Ok(Json(one("jid", jid)))
}

/// A list of tags.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct TagList {
    /// The tags.
    pub tags: Vec<String>,
}

/// Adds tags to a job.
#[utoipa::path(post, path = "/v1/jobs/{jid}/tags", tag = "jobs",
    params(("jid" = String, Path, description = "The job id")),
    request_body = TagList,
    responses(
        (status = 200, description = "`{\"tags\": [...]}`: the job's tags now", body = Object),
        (status = "4XX", description = "Refused", body = ErrorBody)))]
pub async fn tags_add(
    State(state): State<AppState>,
    now: RequestNow,
    Path(jid): Path<String>,
    ApiJson(body): ApiJson<TagList>,
) -> Result<Json<Value>, ApiError> {
    let reply = run(
        &state,
        now,
        Command::TagAdd {
            jid,
            tags: body.tags,
        },
    )
    .await?;
    Ok(Json(one("tags", reply.to_json())))
}

/// Removes tags from a job.
#[utoipa::path(delete, path = "/v1/jobs/{jid}/tags", tag = "jobs",
    params(("jid" = String, Path, description = "The job id")),
    request_body = TagList,
    responses(
        (status = 200, description = "`{\"tags\": [...]}`: the job's tags now", body = Object),
        (status = "4XX", description = "Refused", body = ErrorBody)))]
pub async fn tags_remove(
    State(state): State<AppState>,
    now: RequestNow,
    Path(jid): Path<String>,
    ApiJson(body): ApiJson<TagList>,
) -> Result<Json<Value>, ApiError> {
    let reply = run(
        &state,
        now,
        Command::TagRemove {
            jid,
            tags: body.tags,
        },
    )
    .await?;
    Ok(Json(one("tags", reply.to_json())))
}

/// Tracks a job.
#[utoipa::path(put, path = "/v1/jobs/{jid}/tracked", tag = "jobs",
    params(("jid" = String, Path, description = "The job id")),
    responses(
        (status = 200, description = "`{\"tracked\": true}`", body = Object),
        (status = "4XX", description = "Refused", body = ErrorBody)))]
pub async fn track(
    State(state): State<AppState>,
    now: RequestNow,
    Path(jid): Path<String>,
) -> Result<Json<Value>, ApiError> {
    run(&state, now, Command::Track { jid }).await?;
    Ok(Json(one("tracked", true)))
}

/// Stops tracking a job.
#[utoipa::path(delete, path = "/v1/jobs/{jid}/tracked", tag = "jobs",
    params(("jid" = String, Path, description = "The job id")),
    responses(
        (status = 200, description = "`{\"tracked\": false}`", body = Object),
        (status = "4XX", description = "Refused", body = ErrorBody)))]
pub async fn untrack(
    State(state): State<AppState>,
    now: RequestNow,
    Path(jid): Path<String>,
) -> Result<Json<Value>, ApiError> {
    run(&state, now, Command::Untrack { jid }).await?;
    Ok(Json(one("tracked", false)))
}

/// Tracked jobs, and tracked job ids whose job is gone.
#[utoipa::path(get, path = "/v1/tracked", tag = "jobs",
    responses(
        (status = 200, description = "`{\"jobs\": [job...], \"expired\": [jid...]}`", body = Object),
        (status = "4XX", description = "Refused", body = ErrorBody)))]
pub async fn tracked(
    State(state): State<AppState>,
    now: RequestNow,
) -> Result<Json<Value>, ApiError> {
    let reply = run(&state, now, Command::Tracked).await?;
    Ok(Json(natural(&reply)))
}
