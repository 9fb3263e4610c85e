//! The resource-style API under `/v1`.
//!
//! One route per engine operation; each handler builds a
//! [`clew_core::Command`], runs it at the request's time ([`RequestNow`]:
//! the `X-Clew-Now` header in test mode, else the server clock) and answers
//! natural JSON.
//!
//! # Conventions
//! * Request bodies are JSON objects with typed fields; unknown fields,
//!   malformed JSON and wrong types are refused with 400 and a message that
//!   names the field ([`ApiJson`]). Query strings likewise ([`ApiQuery`]).
//! * Job payloads (`data`) are any JSON value in requests; their JSON text
//!   is stored verbatim (a JSON string is stored as a JSON string, quotes
//!   and all). In responses, job and recurring-job documents carry `data` as
//!   the parsed JSON value (the qless endpoint keeps it as a string).
//! * Errors: `{"error": {"code", "message"}}` with 400 (invalid argument),
//!   404 (no such job, template or route) or 409 (wrong state, lock held by
//!   another worker).
//!
//! The routes and their OpenAPI descriptions are built together
//! ([`router_and_doc`]), so they cannot drift apart; [`crate::openapi`]
//! adds the routes documented elsewhere and serves the document.

use axum::extract::rejection::{JsonRejection, QueryRejection};
use axum::extract::{FromRequest, FromRequestParts, Request};
use axum::http::request::Parts;
use axum::Router;
use clew_core::{Command, Job, Reply, Timestamp};
use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};
use serde_json::value::RawValue;
use serde_json::{Map, Value};
use utoipa::{IntoParams, ToSchema};
use utoipa_axum::router::OpenApiRouter;

use crate::error::ApiError;
use crate::state::{AppState, RequestNow};

pub mod batches;
pub mod config;
pub mod dashboard;
pub mod events;
pub mod failed;
pub mod jobs;
pub mod queues;
pub mod recurring;
pub mod tags;
pub mod throttles;
pub mod unique;
pub mod workers;

/// The resource routes (including `GET /v1/openapi.json`).
pub fn routes() -> Router<AppState> {
    router_and_doc().0.merge(crate::openapi::routes())
}

/// The resource routes and their OpenAPI description, built together.
pub fn router_and_doc() -> (Router<AppState>, utoipa::openapi::OpenApi) {
    OpenApiRouter::new()
        .merge(jobs::routes())
        .merge(queues::routes())
        .merge(workers::routes())
        .merge(failed::routes())
        .merge(tags::routes())
        .merge(config::routes())
        .merge(recurring::routes())
        .merge(batches::routes())
        .merge(events::routes())
        .merge(dashboard::routes())
        .merge(unique::routes())
        .merge(throttles::routes())
        .split_for_parts()
}

/// A JSON request body whose rejections (malformed JSON, wrong types,
/// missing or unknown fields, wrong content type) become [`ApiError`]s
/// naming the field.
#[derive(Debug, Clone, Copy, Default)]
pub struct ApiJson<T>(pub T);

impl<S, T> FromRequest<S> for ApiJson<T>
where
    T: DeserializeOwned,
    S: Send + Sync,
{
    type Rejection = ApiError;

    async fn from_request(req: Request, state: &S) -> Result<Self, Self::Rejection> {
        match axum::Json::<T>::from_request(req, state).await {
            Ok(axum::Json(v)) => Ok(ApiJson(v)),
            Err(e) => Err(json_rejection(e)),
        }
    }
}

fn json_rejection(e: JsonRejection) -> ApiError {
    let text = e.body_text();
    let detail = text
        .strip_prefix("Failed to deserialize the JSON body into the target type: ")
        .or_else(|| text.strip_prefix("Failed to parse the request body as JSON: "))
        .unwrap_or(&text);
    let code = match e.status() {
        axum::http::StatusCode::UNSUPPORTED_MEDIA_TYPE => "unsupported_media_type",
        axum::http::StatusCode::PAYLOAD_TOO_LARGE => "body_too_large",
        _ => "invalid_argument",
    };
    // Malformed JSON, wrong types and missing or unknown fields are all 400
    // (axum says 422 for some); wrong content type stays 415.
    let status = match e.status() {
        s @ (axum::http::StatusCode::UNSUPPORTED_MEDIA_TYPE
        | axum::http::StatusCode::PAYLOAD_TOO_LARGE) => s,
        _ => axum::http::StatusCode::BAD_REQUEST,
    };
    ApiError::new(
        status,
        code,
        format!("request body: {}", plain_types(detail)),
    )
}

/// Says "a number" and "an integer" where serde names Rust types.
fn plain_types(text: &str) -> String {
    text.replace("expected f64", "expected a number")
        .replace("expected i64", "expected an integer")
        .replace("expected u64", "expected an integer >= 0")
}

/// A query string whose rejections become [`ApiError`]s naming the
/// parameter.
#[derive(Debug, Clone, Copy, Default)]
pub struct ApiQuery<T>(pub T);

impl<S, T> FromRequestParts<S> for ApiQuery<T>
where
    T: DeserializeOwned,
    S: Send + Sync,
{
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, Self::Rejection> {
        match axum::extract::Query::<T>::from_request_parts(parts, state).await {
            Ok(axum::extract::Query(v)) => Ok(ApiQuery(v)),
            Err(e) => Err(query_rejection(e)),
        }
    }
}

fn query_rejection(e: QueryRejection) -> ApiError {
    let text = e.body_text();
    let detail = text
        .strip_prefix("Failed to deserialize query string: ")
        .unwrap_or(&text);
    ApiError::invalid(format!("query string: {}", plain_types(detail)))
}

/// The error body every route returns on failure.
#[derive(Debug, Serialize, ToSchema)]
pub struct ErrorBody {
    /// The error.
    pub error: ErrorDetail,
}

/// The inside of [`ErrorBody`].
#[derive(Debug, Serialize, ToSchema)]
pub struct ErrorDetail {
    /// A short snake_case code: `invalid_argument`, `not_found`,
    /// `conflict`, `unauthorized`, `body_too_large`, `internal`, ...
    pub code: String,
    /// What went wrong, naming the field or argument.
    pub message: String,
}

/// Paging of a listing: `offset` (default 0) and `count` (default 25).
#[derive(Debug, Clone, Copy, Deserialize, IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub struct Paging {
    /// Skip this many (default 0).
    #[serde(default)]
    pub offset: i64,
    /// At most this many (default 25).
    #[serde(default = "default_count")]
    pub count: i64,
}

fn default_count() -> i64 {
    25
}

impl Paging {
    /// Refuses negative values, naming the parameter.
    pub fn checked(self) -> Result<Paging, ApiError> {
        if self.offset < 0 {
            return Err(ApiError::invalid(format!(
                "offset: expected a number >= 0, got {}",
                self.offset
            )));
        }
        if self.count < 0 {
            return Err(ApiError::invalid(format!(
                "count: expected a number >= 0, got {}",
                self.count
            )));
        }
        Ok(self)
    }
}

/// A page of job ids with the total.
#[derive(Debug, Serialize, ToSchema)]
pub struct JidPage {
    /// How many in all.
    pub total: i64,
    /// This page's job ids.
    pub jobs: Vec<String>,
}

/// A job document. `data` is the payload as a JSON value (the qless
/// endpoint returns it as a JSON text instead).
#[derive(Debug, Serialize, ToSchema)]
pub struct JobDoc {
    /// The job id.
    pub jid: String,
    /// The job class.
    pub klass: String,
    /// `waiting`, `running`, `scheduled`, `depends`, `throttled`,
    /// `stalled`, `failed` or `complete`.
    pub state: String,
    /// The queue (empty when complete).
    pub queue: String,
    /// The worker holding it (empty if none).
    pub worker: String,
    /// Priority (higher runs first).
    pub priority: i64,
    /// Lock expiry (seconds) or 0.
    pub expires: f64,
    /// Retries allowed per queue.
    pub retries: i64,
    /// Retries left.
    pub remaining: i64,
    /// The payload.
    #[schema(value_type = Value)]
    pub data: Value,
    /// Tags.
    pub tags: Vec<String>,
    /// History entries `{"what", "when", ...}`.
    #[schema(value_type = Vec<Object>)]
    pub history: Vec<Value>,
    /// `{"group", "message", "when", "worker"}`, or `{}`.
    #[schema(value_type = Object)]
    pub failure: Value,
    /// Whether tracked.
    pub tracked: bool,
    /// Jobs it waits for.
    pub dependencies: Vec<String>,
    /// Jobs waiting for it.
    pub dependents: Vec<String>,
    /// The recurring template that spawned it, if any.
    pub spawned_from_jid: Option<String>,
    /// Its uniqueness key, present only when it has one (it holds the key
    /// while neither failed nor complete).
    #[schema(required = false)]
    pub unique_key: Option<String>,
    /// The batch it belongs to (absent when none).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub batch: Option<String>,
    /// Named throttles it must hold a slot of to run (present only when it
    /// has some).
    #[schema(required = false)]
    pub throttles: Vec<String>,
}

/// A recurring template. `data` is the payload as a JSON value.
#[derive(Debug, Serialize, ToSchema)]
pub struct RecurDoc {
    /// The template id.
    pub jid: String,
    /// The children's class.
    pub klass: String,
    /// Always `recur`.
    pub state: String,
    /// The queue children go to.
    pub queue: String,
    /// Children's priority.
    pub priority: i64,
    /// Seconds between children (0 for a cron template).
    pub interval: f64,
    /// A cron template's 5-field expression (absent on interval templates).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub cron: Option<String>,
    /// A cron template's IANA time zone.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub timezone: Option<String>,
    /// A cron template's handling of missed ticks: `catch-up` or `skip`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub missed: Option<String>,
    /// A cron template's next tick (the same as `next_run`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub next_at: Option<f64>,
    /// Children's retries.
    pub retries: i64,
    /// Children spawned so far.
    pub count: i64,
    /// The children's payload.
    #[schema(value_type = Value)]
    pub data: Value,
    /// Tags.
    pub tags: Vec<String>,
    /// Catch-up cap (0 = none).
    pub backlog: i64,
    /// When the next child is due (seconds since the epoch).
    pub next_run: f64,
}

/// Counts of one queue.
#[derive(Debug, Serialize, ToSchema)]
pub struct QueueDoc {
    /// The queue.
    pub name: String,
    /// Waiting jobs.
    pub waiting: i64,
    /// Running jobs.
    pub running: i64,
    /// Jobs whose lock expired.
    pub stalled: i64,
    /// Scheduled jobs.
    pub scheduled: i64,
    /// Jobs waiting on dependencies.
    pub depends: i64,
    /// Jobs held back by a full throttle (present only when there are some).
    #[schema(required = false)]
    pub throttled: i64,
    /// Recurring templates.
    pub recurring: i64,
    /// Whether paused.
    pub paused: bool,
}

/// Parses a job or template document's `data` text into a JSON value
/// (left as is if it is not JSON, which the engine never stores).
fn parse_data(mut doc: Value) -> Value {
    if let Some(Value::String(text)) = doc.get("data") {
        if let Ok(v) = serde_json::from_str::<Value>(text) {
            if let Some(obj) = doc.as_object_mut() {
                obj.insert("data".into(), v);
            }
        }
    }
    doc
}

/// A job as the resource API shows it: the qless job object
/// ([`Job::serialize_with_data`]) with `data` as a JSON value (left as its
/// text if it is not JSON, which the engine never stores).
struct ResourceJob<'a>(&'a Job);

impl Serialize for ResourceJob<'_> {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        // Parsed into a value (not copied raw) so the text is normalised as
        // it always was.
        match serde_json::from_str::<Value>(&self.0.record.data) {
            Ok(data) => self.0.serialize_with_data(&data, s),
            Err(_) => self.0.serialize(s),
        }
    }
}

/// A reply as the resource API shows it: like the reply's own JSON
/// ([`Reply::to_json`]) but job and template documents carry `data` as a
/// JSON value. Handlers answer `Json(Natural(reply))`: written straight
/// from the reply, no `Value` tree in between.
#[derive(Debug)]
pub struct Natural(pub Reply);

impl Serialize for Natural {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        NaturalRef(&self.0).serialize(s)
    }
}

struct NaturalRef<'a>(&'a Reply);

impl Serialize for NaturalRef<'_> {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        use serde::ser::SerializeMap;
        match self.0 {
            Reply::Job(Some(j)) => ResourceJob(j).serialize(s),
            Reply::Jobs(v) => s.collect_seq(v.iter().map(ResourceJob)),
            Reply::Recur(Some(r)) => {
                let mut doc = parse_data(r.to_json());
                if let Some(obj) = doc.as_object_mut() {
                    obj.insert("next_run".into(), r.next_at.to_json());
                }
                doc.serialize(s)
            }
            Reply::Tracked { jobs, expired } => {
                let mut m = s.serialize_map(Some(2))?;
                m.serialize_entry("jobs", &JobList(jobs))?;
                m.serialize_entry("expired", expired)?;
                m.end()
            }
            other => other.serialize(s),
        }
    }
}

struct JobList<'a>(&'a [Job]);

impl Serialize for JobList<'_> {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_seq(self.0.iter().map(ResourceJob))
    }
}

/// A view serialised to a tree (it holds only JSON: cannot fail).
fn tree<T: Serialize>(v: T) -> Value {
    serde_json::to_value(v).expect("a JSON view serialises to a Value")
}

/// A job as the resource API shows it, as a tree (see [`Natural`]).
pub fn job_json(job: &Job) -> Value {
    tree(ResourceJob(job))
}

/// A reply as the resource API shows it, as a tree (see [`Natural`]).
pub fn natural(reply: &Reply) -> Value {
    tree(NaturalRef(reply))
}

/// Runs a command at the request's time.
pub async fn run(state: &AppState, now: RequestNow, cmd: Command) -> Result<Reply, ApiError> {
    let engine = state.engine();
    let origin = now.1.unwrap_or_else(|| engine.origin().clone());
    Ok(engine.execute_as(now.0, origin, cmd).await?)
}

/// Reads a job (for defaults such as its queue), or 404.
pub async fn existing_job(state: &AppState, now: RequestNow, jid: &str) -> Result<Job, ApiError> {
    match run(
        state,
        now,
        Command::Get {
            jid: jid.to_owned(),
        },
    )
    .await?
    {
        Reply::Job(Some(j)) => Ok(*j),
        _ => Err(ApiError::not_found(format!("job {jid} does not exist"))),
    }
}

/// The JSON text of a payload given as a JSON value.
pub fn data_text(data: &RawValue) -> String {
    data.get().to_owned()
}

/// Wraps one value in an object under `key`.
pub fn one(key: &str, v: impl Into<Value>) -> Value {
    let mut m = Map::new();
    m.insert(key.to_owned(), v.into());
    Value::Object(m)
}

/// Splits a comma-separated list parameter, refusing an empty one.
pub fn split_list(name: &str, text: &str) -> Result<Vec<String>, ApiError> {
    let items: Vec<String> = text
        .split(',')
        .map(str::trim)
        .filter(|s| !s.is_empty())
        .map(str::to_owned)
        .collect();
    if items.is_empty() {
        return Err(ApiError::invalid(format!(
            "{name}: expected a comma-separated list of names, got {text:?}"
        )));
    }
    Ok(items)
}

/// Parses a time given as float seconds.
pub fn timestamp(name: &str, secs: f64) -> Result<Timestamp, ApiError> {
    Timestamp::from_secs_f64(secs).ok_or_else(|| {
        ApiError::invalid(format!("{name}: expected a number of seconds, got {secs}"))
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use clew_core::{Failure, HistoryEntry, JobRecord, JobState, Loc, RecurRecord};

    /// The resource API's documents as they were built before replies were
    /// serialised directly: the reply's tree, `data` parsed in place.
    fn old_natural(reply: &Reply) -> Value {
        let job = |j: &Job| parse_data(j.to_json());
        match reply {
            Reply::Job(Some(j)) => job(j),
            Reply::Jobs(v) => Value::Array(v.iter().map(job).collect()),
            Reply::Recur(Some(r)) => {
                let mut doc = parse_data(r.to_json());
                if let Some(obj) = doc.as_object_mut() {
                    obj.insert("next_run".into(), r.next_at.to_json());
                }
                doc
            }
            Reply::Tracked { jobs, expired } => serde_json::json!({
                "jobs": jobs.iter().map(job).collect::<Vec<_>>(),
                "expired": expired,
            }),
            other => other.to_json(),
        }
    }

    fn job(jid: &str, state: JobState, data: &str) -> Job {
        let mut metadata = Map::new();
        metadata.insert("m".into(), Value::from("ü"));
        Job {
            record: JobRecord {
                jid: jid.into(),
                klass: "K".into(),
                queue: "q".into(),
                state,
                data: data.into(),
                priority: 2,
                tags: vec!["t".into()],
                worker: "w".into(),
                expires: Timestamp(1_700_000_000_500_000),
                retries: 5,
                remaining: 4,
                time: Timestamp::ZERO,
                grace: false,
                scheduled: None,
                failure: Some(Failure {
                    group: "g".into(),
                    message: "m".into(),
                    when: Timestamp(1_700_000_000_900_000),
                    worker: "w".into(),
                }),
                spawned_from: None,
                worker_listed: true,
                fail_group: None,
                fail_seq: 0,
                loc: Loc::Locked,
                sort_prio: 0,
                sort_time: Timestamp::ZERO,
                seq: 1,
                metadata,
                unique_key: None,
                batch: None,
                batch_outcome: Default::default(),
                throttles: vec![],
            },
            history: vec![HistoryEntry::new(Timestamp(1_700_000_000_000_000), "put").with("q", "q")],
            tracked: true,
            dependencies: vec!["d".into()],
            dependents: Vec::new(),
        }
    }

    #[test]
    fn resource_documents_serialise_exactly_as_the_trees_did() {
        let jobs: Vec<Job> = [
            "{}",
            "{ \"spaced\" : [1, 2.50, 1e3, \"日本\"], \"dup\": 1, \"dup\": 2 }",
            "[1,2]",
            "\"a string\"",
            "12",
            "not json",
            "1e400",
            "",
        ]
        .iter()
        .enumerate()
        .map(|(i, d)| job(&format!("j{i}"), JobState::ALL[i % 7], d))
        .collect();
        let mut replies: Vec<Reply> = jobs
            .iter()
            .map(|j| Reply::Job(Some(Box::new(j.clone()))))
            .collect();
        replies.push(Reply::Job(None));
        replies.push(Reply::Jobs(jobs.clone()));
        replies.push(Reply::Tracked {
            jobs: jobs.clone(),
            expired: vec!["x".into()],
        });
        replies.push(Reply::Recur(Some(RecurRecord {
            jid: "r".into(),
            klass: "K".into(),
            queue: "q".into(),
            data: "{\"a\": 1}".into(),
            priority: 0,
            tags: Vec::new(),
            retries: 0,
            interval: 60.0,
            next_at: Timestamp(1_700_000_000_250_000),
            count: 1,
            backlog: 0,
            cron: None,
        })));
        replies.push(Reply::Recur(None));
        replies.push(Reply::Int(3));
        replies.push(Reply::Strings(vec!["a".into()]));
        for reply in replies {
            let old = old_natural(&reply).to_string();
            assert_eq!(natural(&reply).to_string(), old);
            assert_eq!(serde_json::to_string(&Natural(reply)).unwrap(), old);
        }
        for j in &jobs {
            assert_eq!(
                job_json(j).to_string(),
                old_natural(&Reply::Job(Some(Box::new(j.clone())))).to_string()
            );
        }
    }
}
