//! Recurring jobs: create, list per queue, get, update, tag, untag, delete.

use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::Json;
use clew_core::command::{JobsListing, RecurParams, RecurUpdate};
use clew_core::cron::Missed;
use clew_core::{Command, Reply};
use serde::Deserialize;
use serde_json::value::RawValue;
use serde_json::Value;
use utoipa::ToSchema;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use super::jobs::TagList;
use super::{data_text, natural, one, run, ApiJson, ErrorBody, RecurDoc};
use crate::error::ApiError;
use crate::state::{AppState, RequestNow};

/// The recurring-job routes.
pub fn routes() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(recur_create, recur_list))
        .routes(routes!(recur_get, recur_update, recur_delete))
        .routes(routes!(recur_tag, recur_untag))
}

/// Body of `POST /v1/queues/{queue}/recurring`.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct CreateRecur {
    /// The template id (generated when absent); an existing one is
    /// replaced.
    #[serde(default)]
    pub jid: Option<String>,
    /// The children's class.
    pub klass: String,
    /// The children's payload: any JSON value, stored verbatim (default
    /// `{}`).
    #[serde(default)]
    #[schema(value_type = Value)]
    pub data: Option<Box<RawValue>>,
    /// Seconds between children (> 0); give this or `cron`.
    #[serde(default)]
    pub interval: Option<f64>,
    /// A 5-field cron expression (`minute hour day-of-month month
    /// day-of-week`, or `@hourly`, `@daily`...) instead of `interval`.
    #[serde(default)]
    pub cron: Option<String>,
    /// The IANA time zone `cron` is read in (default `UTC`).
    #[serde(default)]
    pub timezone: Option<String>,
    /// What a cron template does with ticks missed during downtime:
    /// `catch-up` (default: one child for all of them) or `skip` (none).
    #[serde(default)]
    pub missed: Option<String>,
    /// Seconds from now until the first child (default 0); with `cron`, the
    /// first child is at the first tick after now + offset.
    #[serde(default)]
    pub offset: Option<f64>,
    /// Children's priority (default 0).
    #[serde(default)]
    pub priority: Option<i64>,
    /// Tags (default none).
    #[serde(default)]
    pub tags: Option<Vec<String>>,
    /// Children's retries (default 5).
    #[serde(default)]
    pub retries: Option<i64>,
    /// Catch-up cap after idle periods (default 0 = no cap).
    #[serde(default)]
    pub backlog: Option<i64>,
}

/// Creates (or replaces) a recurring job template in a queue.
#[utoipa::path(post, path = "/v1/queues/{queue}/recurring", tag = "recurring",
    params(("queue" = String, Path, description = "The queue children go to")),
    request_body = CreateRecur,
    responses(
        (status = 201, description = "`{\"jid\"}`", body = Object),
        (status = "4XX", description = "Refused", body = ErrorBody)))]
pub async fn recur_create(
    State(state): State<AppState>,
    now: RequestNow,
    Path(queue): Path<String>,
    ApiJson(body): ApiJson<CreateRecur>,
) -> Result<(StatusCode, Json<Value>), ApiError> {
    let interval = match (&body.cron, body.interval) {
        (Some(_), Some(_)) => {
            return Err(ApiError::invalid("give \"interval\" or \"cron\", not both"))
        }
        (None, None) => {
            return Err(ApiError::invalid(
                "\"interval\" (seconds) or \"cron\" (an expression) is required",
            ))
        }
        (_, i) => i.unwrap_or(0.0),
    };
    let missed = match &body.missed {
        Some(m) => Missed::parse("Recur", m).map_err(ApiError::from)?,
        None => Missed::default(),
    };
    let jid = body.jid.unwrap_or_else(clew_core::engine::new_jid);
    let params = RecurParams {
        queue,
        jid: jid.clone(),
        klass: body.klass,
        data: body
            .data
            .as_deref()
            .map(data_text)
            .unwrap_or_else(|| "{}".to_owned()),
        interval,
        offset: body.offset.unwrap_or(0.0),
        priority: body.priority.unwrap_or(0),
        tags: body.tags.unwrap_or_default(),
        retries: body.retries.unwrap_or(5),
        backlog: body.backlog.unwrap_or(0),
        cron: body.cron,
        timezone: body.timezone,
        missed,
    };
    run(&state, now, Command::Recur(params)).await?;
    Ok((StatusCode::CREATED, Json(one("jid", jid))))
}

/// The recurring templates of a queue, by next spawn time.
#[utoipa::path(get, path = "/v1/queues/{queue}/recurring", tag = "recurring",
    params(("queue" = String, Path, description = "The queue")),
    responses(
        (status = 200, description = "The templates", body = Vec<RecurDoc>),
        (status = "4XX", description = "Refused", body = ErrorBody)))]
pub async fn recur_list(
    State(state): State<AppState>,
    now: RequestNow,
    Path(queue): Path<String>,
) -> Result<Json<Value>, ApiError> {
    let cmd = Command::Jobs {
        listing: JobsListing::Recurring,
        queue,
        offset: 0,
        count: i64::MAX,
    };
    let jids = match run(&state, now.clone(), cmd).await? {
        Reply::Strings(v) => v,
        _ => Vec::new(),
    };
    let mut out = Vec::with_capacity(jids.len());
    for jid in jids {
        let reply = run(&state, now.clone(), Command::RecurGet { jid }).await?;
        if let Reply::Recur(Some(_)) = reply {
            out.push(natural(&reply));
        }
    }
    Ok(Json(Value::Array(out)))
}

/// One recurring template.
#[utoipa::path(get, path = "/v1/recurring/{jid}", tag = "recurring",
    params(("jid" = String, Path, description = "The template id")),
    responses(
        (status = 200, description = "The template", body = RecurDoc),
        (status = 404, description = "No such template", body = ErrorBody)))]
pub async fn recur_get(
    State(state): State<AppState>,
    now: RequestNow,
    Path(jid): Path<String>,
) -> Result<Json<Value>, ApiError> {
    match run(&state, now, Command::RecurGet { jid: jid.clone() }).await? {
        reply @ Reply::Recur(Some(_)) => Ok(Json(natural(&reply))),
        _ => Err(not_found(&jid)),
    }
}

fn not_found(jid: &str) -> ApiError {
    ApiError::not_found(format!("recurring job {jid} does not exist"))
}

/// Body of `PATCH /v1/recurring/{jid}`: the fields to change.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct UpdateRecur {
    /// New priority.
    #[serde(default)]
    pub priority: Option<i64>,
    /// New interval, seconds (> 0).
    #[serde(default)]
    pub interval: Option<f64>,
    /// New retries.
    #[serde(default)]
    pub retries: Option<i64>,
    /// New payload (any JSON value).
    #[serde(default)]
    #[schema(value_type = Value)]
    pub data: Option<Box<RawValue>>,
    /// New class.
    #[serde(default)]
    pub klass: Option<String>,
    /// New queue.
    #[serde(default)]
    pub queue: Option<String>,
    /// New backlog.
    #[serde(default)]
    pub backlog: Option<i64>,
    /// New cron expression (an interval template switches to cron; the next
    /// child is at the first tick after now). `interval` switches back.
    #[serde(default)]
    pub cron: Option<String>,
    /// New IANA time zone of a cron template.
    #[serde(default)]
    pub timezone: Option<String>,
    /// New handling of missed ticks of a cron template: `catch-up` or `skip`.
    #[serde(default)]
    pub missed: Option<String>,
}

/// Changes a recurring template.
#[utoipa::path(patch, path = "/v1/recurring/{jid}", tag = "recurring",
    params(("jid" = String, Path, description = "The template id")),
    request_body = UpdateRecur,
    responses(
        (status = 200, description = "The template after the change", body = RecurDoc),
        (status = "4XX", description = "Refused", body = ErrorBody)))]
pub async fn recur_update(
    State(state): State<AppState>,
    now: RequestNow,
    Path(jid): Path<String>,
    ApiJson(body): ApiJson<UpdateRecur>,
) -> Result<Json<Value>, ApiError> {
    let update = RecurUpdate {
        priority: body.priority,
        interval: body.interval,
        retries: body.retries,
        data: body.data.as_deref().map(data_text),
        klass: body.klass,
        queue: body.queue,
        backlog: body.backlog,
        cron: body.cron,
        timezone: body.timezone,
        missed: body
            .missed
            .as_deref()
            .map(|m| Missed::parse("Recur.update", m))
            .transpose()
            .map_err(ApiError::from)?,
    };
    let cmd = Command::RecurUpdate {
        jid: jid.clone(),
        update,
    };
    match run(&state, now.clone(), cmd).await? {
        Reply::Bool(false) => Err(not_found(&jid)),
        _ => recur_get(State(state), now, Path(jid)).await,
    }
}

/// Deletes a recurring template (children already spawned stay).
#[utoipa::path(delete, path = "/v1/recurring/{jid}", tag = "recurring",
    params(("jid" = String, Path, description = "The template id")),
    responses(
        (status = 200, description = "`{\"deleted\": jid}`", body = Object),
        (status = "4XX", description = "Refused", body = ErrorBody)))]
pub async fn recur_delete(
    State(state): State<AppState>,
    now: RequestNow,
    Path(jid): Path<String>,
) -> Result<Json<Value>, ApiError> {
    if let Reply::Recur(None) =
        run(&state, now.clone(), Command::RecurGet { jid: jid.clone() }).await?
    {
        return Err(not_found(&jid));
    }
    run(&state, now, Command::Unrecur { jid: jid.clone() }).await?;
    Ok(Json(one("deleted", jid)))
}

/// Adds tags to a recurring template.
#[utoipa::path(post, path = "/v1/recurring/{jid}/tags", tag = "recurring",
    params(("jid" = String, Path, description = "The template id")),
    request_body = TagList,
    responses(
        (status = 200, description = "`{\"tags\": [...]}`: the template's tags now", body = Object),
        (status = "4XX", description = "Refused", body = ErrorBody)))]
pub async fn recur_tag(
    State(state): State<AppState>,
    now: RequestNow,
    Path(jid): Path<String>,
    ApiJson(body): ApiJson<TagList>,
) -> Result<Json<Value>, ApiError> {
    let reply = run(
        &state,
        now,
        Command::RecurTag {
            jid,
            tags: body.tags,
        },
    )
    .await?;
    Ok(Json(one("tags", reply.to_json())))
}

/// Removes tags from a recurring template.
#[utoipa::path(delete, path = "/v1/recurring/{jid}/tags", tag = "recurring",
    params(("jid" = String, Path, description = "The template id")),
    request_body = TagList,
    responses(
        (status = 200, description = "`{\"tags\": [...]}`: the template's tags now", body = Object),
        (status = "4XX", description = "Refused", body = ErrorBody)))]
pub async fn recur_untag(
    State(state): State<AppState>,
    now: RequestNow,
    Path(jid): Path<String>,
    ApiJson(body): ApiJson<TagList>,
) -> Result<Json<Value>, ApiError> {
    let reply = run(
        &state,
        now,
        Command::RecurUntag {
            jid,
            tags: body.tags,
        },
    )
    .await?;
    Ok(Json(one("tags", reply.to_json())))
}
