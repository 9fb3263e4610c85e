//! Jobs: put, get, multiget, pop, peek, heartbeat, complete, fail, retry,
//! release, cancel, dependencies, priority, timeout, log, tags, tracking;
//! and put, complete and fail of many jobs in one call (one transaction).

use std::collections::HashMap;

use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::Json;
use clew_core::command::{CompleteParams, DependsChange, PutParams};
use clew_core::{Command, Job, Reply};
use serde::Deserialize;
use serde_json::value::RawValue;
use serde_json::{Map, Value};
use utoipa::{IntoParams, ToSchema};
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use super::{
    data_text, existing_job, one, run, split_list, ApiJson, ApiQuery, ErrorBody, ErrorDetail,
    JobDoc, Natural,
};
use crate::error::ApiError;
use crate::state::{AppState, RequestNow};

/// The job routes.
pub fn routes() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(put_job))
        .routes(routes!(put_many))
        .routes(routes!(complete_many))
        .routes(routes!(fail_many))
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

/// Body of `POST /v1/queues/{queue}/jobs`, and each job of
/// `POST /v1/batch/put`.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct PutJob {
    /// The queue: required in each job of `POST /v1/batch/put`. In
    /// `POST /v1/queues/{queue}/jobs` the path names it (leave it out, or
    /// give the same name).
    #[serde(default)]
    pub queue: Option<String>,
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
    /// A uniqueness key (1 to 255 bytes, e.g. `search:user-42`): while a
    /// live job (neither failed nor complete) holds it, this put does what
    /// `on_conflict` says. Default none, or the existing job's.
    #[serde(default)]
    pub unique_key: Option<String>,
    /// With `unique_key`: `existing` (default: answer the holder's jid,
    /// change nothing), `replace` (replace the holder's data, and metadata
    /// if given; 409 if it is running) or `refuse` (409 naming the holder).
    #[serde(default)]
    #[schema(value_type = Option<String>, example = "existing")]
    pub on_conflict: Option<String>,
    /// The batch the job joins (it must exist and be open; a job stays in
    /// its batch). In `POST /v1/batches` the batch being created.
    #[serde(default)]
    pub batch: Option<String>,
    /// Named throttles the job must hold a slot of to run (see
    /// `/v1/throttles`); default none, or the existing job's.
    #[serde(default)]
    pub throttles: Option<Vec<String>>,
}

/// Answer of `POST /v1/queues/{queue}/jobs`.
#[derive(Debug, serde::Serialize, ToSchema)]
pub struct PutAnswer {
    /// The job id: the job put, or the live job holding `unique_key`.
    pub jid: String,
    /// Present, and true, when `jid` is another, existing job holding
    /// `unique_key` (the put created or moved nothing; with `replace` it
    /// replaced that job's data). Then the status is 200 instead of 201.
    #[serde(skip_serializing_if = "std::ops::Not::not")]
    #[schema(required = false)]
    pub existing: bool,
}

/// Puts a job into a queue (or moves an existing one there).
#[utoipa::path(post, path = "/v1/queues/{queue}/jobs", tag = "jobs",
    params(("queue" = String, Path, description = "The queue")),
    request_body = PutJob,
    responses(
        (status = 201, description = "Created or moved", body = PutAnswer),
        (status = 200, description = "Answered by the live job holding `unique_key` (`existing`: true)", body = PutAnswer),
        (status = "4XX", description = "Refused (409: `unique_key` held, with `refuse`, or by a running job, with `replace`)", body = ErrorBody)))]
pub async fn put_job(
    State(state): State<AppState>,
    now: RequestNow,
    headers: axum::http::HeaderMap,
    Path(queue): Path<String>,
    ApiJson(body): ApiJson<PutJob>,
) -> Result<(StatusCode, Json<PutAnswer>), ApiError> {
    if let Some(q) = body.queue.as_ref().filter(|q| **q != queue) {
        return Err(ApiError::invalid(format!(
            "queue: the path names queue {queue:?}, the body {q:?} (leave it out of the body)"
        )));
    }
    let params = put_params(queue, body).map_err(|e| ApiError::invalid(e.message()))?;
    let asked = params.jid.clone();
    let mut command = Command::Put(params);
    state.config().apply_header_metadata(&headers, &mut command);
    let reply = run(&state, now, command).await?;
    let jid = match reply {
        Reply::Str(jid) => jid,
        other => {
            return Err(clew_core::Error::store(format!(
                "put: unexpected reply {}",
                other.to_json()
            ))
            .into())
        }
    };
    let existing = jid != asked;
    let status = if existing {
        StatusCode::OK
    } else {
        StatusCode::CREATED
    };
    Ok((status, Json(PutAnswer { jid, existing })))
}

/// The put of `body` into `queue` (a new jid when it names none); refuses
/// a bad `on_conflict`, or one without `unique_key`.
pub(crate) fn put_params(queue: String, body: PutJob) -> clew_core::Result<PutParams> {
    let unique = match (body.unique_key, body.on_conflict) {
        (Some(key), policy) => Some(clew_core::unique::Unique {
            key,
            on_conflict: match policy {
                Some(p) => {
                    clew_core::unique::OnConflict::parse("on_conflict", &p).map_err(|_| {
                        clew_core::Error::invalid(format!(
                            "on_conflict: expected existing, replace or refuse, got {p:?}"
                        ))
                    })?
                }
                None => Default::default(),
            },
        }),
        (None, Some(_)) => {
            return Err(clew_core::Error::invalid(
                "on_conflict: only with unique_key",
            ))
        }
        (None, None) => None,
    };
    let mut p = PutParams::new(queue, body.klass);
    p.unique = unique;
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
    p.batch = body.batch;
    p.throttles = body.throttles;
    Ok(p)
}

/// The most jobs one call of `POST /v1/batch/put`, `/v1/batch/complete`
/// or `/v1/batch/fail` takes.
pub const MAX_BATCH: usize = 10_000;

/// Refuses an empty list of jobs or one longer than [`MAX_BATCH`].
pub(crate) fn batch_size(n: usize) -> Result<(), ApiError> {
    if n == 0 || n > MAX_BATCH {
        return Err(ApiError::invalid(format!(
            "jobs: expected 1 to {MAX_BATCH} jobs, got {n}"
        )));
    }
    Ok(())
}

/// The put of item `index` of a many-jobs body (each item names its
/// queue); a refusal names the item (`jobs[3]...`).
pub(crate) fn item_put(index: usize, mut job: PutJob) -> Result<PutParams, ApiError> {
    let Some(queue) = job.queue.take() else {
        return Err(ApiError::invalid(format!(
            "jobs[{index}].queue: missing (each job names its queue)"
        )));
    };
    put_params(queue, job).map_err(|e| item_error(index, e))
}

/// Runs a batch of commands at the request's time, keeping the engine's
/// error (a refused atomic batch is reported with the item it names).
async fn run_batch(
    state: &AppState,
    now: RequestNow,
    commands: Vec<Command>,
    atomic: bool,
) -> clew_core::Result<Vec<clew_core::Result<Reply>>> {
    let engine = state.engine();
    let origin = now.1.unwrap_or_else(|| engine.origin().clone());
    match engine
        .execute_as(now.0, origin, Command::Batch { commands, atomic })
        .await?
    {
        Reply::Batch(results) => Ok(results),
        other => Err(clew_core::Error::store(format!(
            "batch: unexpected reply {}",
            other.to_json()
        ))),
    }
}

/// An engine error as the API reports it, its message prefixed with the
/// item it concerns (`jobs[3]: ...`).
fn item_error(index: usize, e: clew_core::Error) -> ApiError {
    let api = ApiError::from(e.clone());
    if api.status() == StatusCode::INTERNAL_SERVER_ERROR {
        return api;
    }
    ApiError::new(
        api.status(),
        e.kind().code(),
        format!("jobs[{index}]: {}", e.message()),
    )
}

/// One job's refusal inside a `results` list: `{"code", "message"}`
/// (store failures hidden as for a whole request).
fn result_error(e: clew_core::Error) -> ErrorDetail {
    let api = ApiError::from(e.clone());
    let code = if api.status() == StatusCode::INTERNAL_SERVER_ERROR {
        "internal"
    } else {
        e.kind().code()
    };
    ErrorDetail {
        code: code.to_owned(),
        message: api.message().to_owned(),
    }
}

/// Body of `POST /v1/batch/put`.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct PutManyBody {
    /// The jobs (1 to 10,000), each as the body of
    /// `POST /v1/queues/{queue}/jobs` plus its `queue`.
    pub jobs: Vec<PutJob>,
}

/// Answer of `POST /v1/batch/put`.
#[derive(Debug, serde::Serialize, ToSchema)]
pub struct PutManyAnswer {
    /// The job ids, in the order of the request's jobs.
    pub jids: Vec<String>,
    /// Present when some job's answer is another, existing job holding its
    /// `unique_key` (see `POST /v1/queues/{queue}/jobs`): for each job, in
    /// order, whether it is.
    #[serde(skip_serializing_if = "no_existing")]
    #[schema(required = false)]
    pub existing: Vec<bool>,
}

/// Whether no put of a batch was answered by an existing holder.
fn no_existing(existing: &[bool]) -> bool {
    !existing.contains(&true)
}

/// Puts many jobs in one transaction: all of them or none.
///
/// Each job takes the fields of `POST /v1/queues/{queue}/jobs` plus its
/// `queue`. A refused job (bad field, a jid given twice in the call,
/// `must_exist` for a missing job) refuses the whole call, naming it
/// (`jobs[3]: ...`), and nothing is put. The request body is subject to
/// the server's body limit (413 beyond it).
#[utoipa::path(post, path = "/v1/batch/put", tag = "jobs",
    request_body = PutManyBody,
    responses(
        (status = 201, description = "All put, their jids in order", body = PutManyAnswer),
        (status = "4XX", description = "Refused, nothing put (400: a bad job, named; no jobs or more than 10,000)", body = ErrorBody)))]
pub async fn put_many(
    State(state): State<AppState>,
    now: RequestNow,
    headers: axum::http::HeaderMap,
    ApiJson(body): ApiJson<PutManyBody>,
) -> Result<(StatusCode, Json<PutManyAnswer>), ApiError> {
    batch_size(body.jobs.len())?;
    let mut commands = Vec::with_capacity(body.jobs.len());
    let mut first_of: HashMap<String, usize> = HashMap::with_capacity(body.jobs.len());
    for (i, job) in body.jobs.into_iter().enumerate() {
        let params = item_put(i, job)?;
        if let Some(first) = first_of.insert(params.jid.clone(), i) {
            return Err(ApiError::invalid(format!(
                "jobs[{i}].jid: {:?} is also the jid of jobs[{first}] (a call puts each job once)",
                params.jid
            )));
        }
        let mut command = Command::Put(params);
        clew_core::logic::validate(&command).map_err(|e| item_error(i, e))?;
        state.config().apply_header_metadata(&headers, &mut command);
        commands.push(command);
    }
    let commands_jids: Vec<String> = commands
        .iter()
        .map(|c| match c {
            Command::Put(p) => p.jid.clone(),
            _ => String::new(),
        })
        .collect();
    let results = match run_batch(&state, now, commands, true).await {
        Ok(results) => results,
        // The refusal names a job by its jid (`Requeue(): Job x does not
        // exist`): say which item that is.
        Err(e) => {
            let index = e
                .message()
                .split_whitespace()
                .find_map(|w| first_of.get(w).copied());
            return Err(match index {
                Some(i) => item_error(i, e),
                None => e.into(),
            });
        }
    };
    let mut out = Vec::with_capacity(results.len());
    let mut existing = Vec::with_capacity(results.len());
    let mut asked = commands_jids.into_iter();
    for result in results {
        match result? {
            Reply::Str(jid) => {
                existing.push(asked.next().is_some_and(|a| a != jid));
                out.push(jid);
            }
            other => {
                return Err(clew_core::Error::store(format!(
                    "put: unexpected reply {}",
                    other.to_json()
                ))
                .into())
            }
        }
    }
    Ok((
        StatusCode::CREATED,
        Json(PutManyAnswer {
            jids: out,
            existing,
        }),
    ))
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
) -> Result<Json<Natural>, ApiError> {
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
    Ok(Json(Natural(reply)))
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
/// Idle workers call it instead of polling: a commit that makes jobs
/// available answers as many waiting requests as it made jobs ready (the
/// others are answered by a later commit, or by their own re-look within
/// 250 ms if a released caller leaves a job unpopped). It hands out
/// nothing itself (another worker may pop the job first).
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
) -> Result<Json<Natural>, ApiError> {
    let count = count_arg(q.count, 1)?;
    let reply = run(&state, now, Command::Peek { queue, count }).await?;
    Ok(Json(Natural(reply)))
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
) -> Result<Json<Natural>, ApiError> {
    let job = existing_job(&state, now, &jid).await?;
    Ok(Json(Natural(Reply::Job(Some(Box::new(job))))))
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
) -> Result<Json<Natural>, ApiError> {
    let jids = split_list("jids", &q.jids)?;
    let reply = run(&state, now, Command::MultiGet { jids }).await?;
    Ok(Json(Natural(reply)))
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
    /// Metadata merged into the job's for its lifecycle events (keys
    /// starting with `_` are dropped).
    #[serde(default)]
    #[schema(value_type = Option<Object>)]
    pub metadata: Option<Map<String, Value>>,
}

/// One job of `POST /v1/batch/complete`: the fields of
/// `POST /v1/jobs/{jid}/complete` but `worker`, plus the `jid`.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct CompleteItem {
    /// The job id.
    pub jid: String,
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
    /// Metadata merged into the job's for its lifecycle events (keys
    /// starting with `_` are dropped).
    #[serde(default)]
    #[schema(value_type = Option<Object>)]
    pub metadata: Option<Map<String, Value>>,
}

impl CompleteItem {
    /// Whether the job must be read for a default (its queue or payload).
    fn needs_job(&self) -> bool {
        self.queue.is_none() || self.data.is_none()
    }

    /// The completion by `worker`, with the defaults taken from `job` (read
    /// when [`CompleteItem::needs_job`]; `None` then means it is missing).
    fn params(self, worker: &str, job: Option<&Job>) -> clew_core::Result<CompleteParams> {
        if self.jid.is_empty() {
            return Err(clew_core::Error::invalid(
                "jid: expected a job id, got \"\"",
            ));
        }
        let (queue, data) = match (self.queue, &self.data, job) {
            (Some(q), Some(d), _) => (q, data_text(d)),
            (q, d, Some(job)) => (
                q.unwrap_or_else(|| job.record.queue.clone()),
                d.as_deref()
                    .map(data_text)
                    .unwrap_or_else(|| job.record.data.clone()),
            ),
            (_, _, None) => {
                return Err(clew_core::Error::not_found(format!(
                    "job {} does not exist",
                    self.jid
                )))
            }
        };
        Ok(CompleteParams {
            jid: self.jid,
            worker: worker.to_owned(),
            queue,
            data,
            next: self.next,
            delay: self.delay.unwrap_or(0.0),
            depends: self.depends.unwrap_or_default(),
            metadata: self.metadata,
        })
    }
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
    let item = CompleteItem {
        jid: jid.clone(),
        queue: body.queue,
        data: body.data,
        next: body.next,
        delay: body.delay,
        depends: body.depends,
        metadata: body.metadata,
    };
    let job = match item.needs_job() {
        true => Some(existing_job(&state, now.clone(), &jid).await?),
        false => None,
    };
    let params = item.params(&body.worker, job.as_ref())?;
    let reply = run(&state, now, Command::Complete(params)).await?;
    Ok(Json(
        serde_json::json!({"jid": jid, "state": reply.to_json()}),
    ))
}

/// Body of `POST /v1/batch/complete`.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct CompleteManyBody {
    /// The worker holding the jobs.
    pub worker: String,
    /// The jobs (1 to 10,000).
    pub jobs: Vec<CompleteItem>,
}

/// One job's outcome in a `results` list: `{"jid", "state"}` or
/// `{"jid", "error": {"code", "message"}}`.
#[derive(Debug, serde::Serialize, ToSchema)]
pub struct ItemResult {
    /// The job id.
    pub jid: String,
    /// Its state now (absent when refused).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub state: Option<String>,
    /// Why it was refused (absent when done): the error body's inside.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub error: Option<ErrorDetail>,
}

impl ItemResult {
    fn done(jid: String, state: String) -> ItemResult {
        ItemResult {
            jid,
            state: Some(state),
            error: None,
        }
    }

    fn refused(jid: String, error: ErrorDetail) -> ItemResult {
        ItemResult {
            jid,
            state: None,
            error: Some(error),
        }
    }
}

/// Answer of `POST /v1/batch/complete` and `POST /v1/batch/fail`.
#[derive(Debug, serde::Serialize, ToSchema)]
pub struct ResultsAnswer {
    /// Each job's outcome, in the order of the request's jobs.
    pub results: Vec<ItemResult>,
}

/// Runs one command per job in one transaction, each on its own, and
/// answers their results. `commands[i]` is job `i`'s command, or its
/// refusal already; a done job's state is `done_state`, or else its
/// reply's text.
async fn each_on_its_own(
    state: &AppState,
    now: RequestNow,
    jids: Vec<String>,
    commands: Vec<Result<Command, ErrorDetail>>,
    done_state: Option<&str>,
) -> Result<Json<ResultsAnswer>, ApiError> {
    let mut slots = Vec::with_capacity(commands.len());
    let mut batch = Vec::with_capacity(commands.len());
    for c in commands {
        match c {
            Ok(command) => {
                batch.push(command);
                slots.push(None);
            }
            Err(error) => slots.push(Some(error)),
        }
    }
    let mut replies = if batch.is_empty() {
        Vec::new()
    } else {
        run_batch(state, now, batch, false).await?
    }
    .into_iter();
    let mut results = Vec::with_capacity(jids.len());
    for (jid, slot) in jids.into_iter().zip(slots) {
        let result = match slot {
            Some(error) => ItemResult::refused(jid, error),
            None => match replies.next() {
                Some(Ok(reply)) => {
                    let text = match (done_state, reply) {
                        (Some(s), _) => s.to_owned(),
                        (None, Reply::Str(s)) => s,
                        (None, other) => other.to_json().to_string(),
                    };
                    ItemResult::done(jid, text)
                }
                Some(Err(e)) => ItemResult::refused(jid, result_error(e)),
                None => {
                    return Err(
                        clew_core::Error::store("batch: fewer replies than commands").into(),
                    )
                }
            },
        };
        results.push(result);
    }
    Ok(Json(ResultsAnswer { results }))
}

/// Completes (or advances) many running jobs in one transaction, each on
/// its own.
///
/// A refused job (not running, held by another worker, missing) is
/// reported in its place and the others are done. Each job takes the
/// fields of `POST /v1/jobs/{jid}/complete` but `worker`, plus its `jid`.
/// A malformed body, or no jobs or more than 10,000, refuses the whole
/// call (400) and nothing changes. The request body is subject to the
/// server's body limit (413 beyond it).
#[utoipa::path(post, path = "/v1/batch/complete", tag = "jobs",
    request_body = CompleteManyBody,
    responses(
        (status = 200, description = "Each job's outcome, in order: `{\"jid\", \"state\"}` (`complete`, or its state in the next queue) or `{\"jid\", \"error\": {\"code\", \"message\"}}` (`conflict`: not running, or held by another worker; `not_found`; `invalid_argument`)", body = ResultsAnswer),
        (status = "4XX", description = "Refused, nothing changed", body = ErrorBody)))]
pub async fn complete_many(
    State(state): State<AppState>,
    now: RequestNow,
    ApiJson(body): ApiJson<CompleteManyBody>,
) -> Result<Json<ResultsAnswer>, ApiError> {
    batch_size(body.jobs.len())?;
    // The jobs whose queue or payload default to theirs, read at once.
    let wanted: Vec<String> = body
        .jobs
        .iter()
        .filter(|j| j.needs_job() && !j.jid.is_empty())
        .map(|j| j.jid.clone())
        .collect();
    let mut known: HashMap<String, Job> = HashMap::new();
    if !wanted.is_empty() {
        if let Reply::Jobs(jobs) =
            run(&state, now.clone(), Command::MultiGet { jids: wanted }).await?
        {
            known = jobs
                .into_iter()
                .map(|j| (j.record.jid.clone(), j))
                .collect();
        }
    }
    let jids = body.jobs.iter().map(|j| j.jid.clone()).collect();
    let commands = body
        .jobs
        .into_iter()
        .map(|item| {
            let job = known.get(&item.jid);
            item.params(&body.worker, job)
                .map(Command::Complete)
                .map_err(result_error)
        })
        .collect();
    each_on_its_own(&state, now, jids, commands, None).await
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
    /// Metadata merged into the job's for its lifecycle events (keys
    /// starting with `_` are dropped).
    #[serde(default)]
    #[schema(value_type = Option<Object>)]
    pub metadata: Option<Map<String, Value>>,
}

/// One job of `POST /v1/batch/fail`: the fields of
/// `POST /v1/jobs/{jid}/fail` but `worker`, plus the `jid`.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct FailItem {
    /// The job id.
    pub jid: String,
    /// The failure group (e.g. an exception type).
    pub group: String,
    /// The failure message.
    pub message: String,
    /// A new payload (any JSON value), if it changes.
    #[serde(default)]
    #[schema(value_type = Value)]
    pub data: Option<Box<RawValue>>,
    /// Metadata merged into the job's for its lifecycle events (keys
    /// starting with `_` are dropped).
    #[serde(default)]
    #[schema(value_type = Option<Object>)]
    pub metadata: Option<Map<String, Value>>,
}

impl FailItem {
    /// The failure by `worker`.
    fn command(self, worker: &str) -> Command {
        Command::Fail {
            jid: self.jid,
            worker: worker.to_owned(),
            group: self.group,
            message: self.message,
            data: self.data.as_deref().map(data_text),
            metadata: self.metadata,
        }
    }
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
    let item = FailItem {
        jid: jid.clone(),
        group: body.group,
        message: body.message,
        data: body.data,
        metadata: body.metadata,
    };
    run(&state, now, item.command(&body.worker)).await?;
    Ok(Json(one("jid", jid)))
}

/// Body of `POST /v1/batch/fail`.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct FailManyBody {
    /// The worker holding the jobs.
    pub worker: String,
    /// The jobs (1 to 10,000).
    pub jobs: Vec<FailItem>,
}

/// Fails many running jobs in one transaction, each on its own.
///
/// A refused job (not running, held by another worker) is reported in its
/// place and the others fail. Each job takes the fields of
/// `POST /v1/jobs/{jid}/fail` but `worker`, plus its `jid`. A malformed
/// body, or no jobs or more than 10,000, refuses the whole call (400) and
/// nothing changes. The request body is subject to the server's body
/// limit (413 beyond it).
#[utoipa::path(post, path = "/v1/batch/fail", tag = "jobs",
    request_body = FailManyBody,
    responses(
        (status = 200, description = "Each job's outcome, in order: `{\"jid\", \"state\": \"failed\"}` or `{\"jid\", \"error\": {\"code\", \"message\"}}`", body = ResultsAnswer),
        (status = "4XX", description = "Refused, nothing changed", body = ErrorBody)))]
pub async fn fail_many(
    State(state): State<AppState>,
    now: RequestNow,
    ApiJson(body): ApiJson<FailManyBody>,
) -> Result<Json<ResultsAnswer>, ApiError> {
    batch_size(body.jobs.len())?;
    let jids = body.jobs.iter().map(|j| j.jid.clone()).collect();
    let commands = body
        .jobs
        .into_iter()
        .map(|item| Ok(item.command(&body.worker)))
        .collect();
    each_on_its_own(&state, now, jids, commands, Some("failed")).await
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
) -> Result<Json<Natural>, ApiError> {
    let reply = run(&state, now, Command::Tracked).await?;
    Ok(Json(Natural(reply)))
}
