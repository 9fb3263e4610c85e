//! Search and statistics over the lifecycle history:
//! `GET /v1/events/search` and `GET /v1/events/stats` (see
//! [`clew_core::analytics`]). Both read the whole lifecycle log and filter
//! it in memory (linear in the size of the log).

use axum::extract::{Query, State};
use axum::Json;
use clew_core::analytics::{self, Filter, GroupBy};
use serde_json::{json, Value};
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use super::{ApiJson, ErrorBody};
use crate::error::ApiError;
use crate::state::{AppState, RequestNow};

/// The most events one search page returns.
pub const MAX_LIMIT: usize = 10_000;
/// The events a search page returns by default.
pub const DEFAULT_LIMIT: usize = 100;

/// The event search and statistics routes.
pub fn routes() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(search_events))
        .routes(routes!(event_stats))
        .routes(routes!(prune_events))
}

/// The query parameters, parsed.
#[derive(Default)]
struct Params {
    filter: Filter,
    limit: Option<usize>,
    after: Option<i64>,
    before: Option<i64>,
    newest_first: bool,
    by: Option<GroupBy>,
    sla: Option<f64>,
}

fn parse_secs(name: &str, v: &str) -> Result<f64, ApiError> {
    v.parse::<f64>()
        .ok()
        .filter(|f| f.is_finite())
        .ok_or_else(|| {
            ApiError::invalid(format!("{name}: expected a number of seconds, got {v:?}"))
        })
}

fn parse_int(name: &str, v: &str) -> Result<i64, ApiError> {
    v.parse::<i64>()
        .ok()
        .filter(|n| *n >= 0)
        .ok_or_else(|| ApiError::invalid(format!("{name}: expected an integer >= 0, got {v:?}")))
}

/// Parses the query; `stats` says which extra parameters are allowed.
fn parse(pairs: Vec<(String, String)>, stats: bool) -> Result<Params, ApiError> {
    let mut p = Params::default();
    for (k, v) in pairs {
        let v = v.as_str();
        if p.filter.set_param(&k, v).map_err(ApiError::invalid)? {
            continue;
        }
        match k.as_str() {
            "limit" if !stats => {
                let n = parse_int("limit", v)? as usize;
                if n == 0 || n > MAX_LIMIT {
                    return Err(ApiError::invalid(format!(
                        "limit: expected an integer from 1 to {MAX_LIMIT}, got {v:?}"
                    )));
                }
                p.limit = Some(n);
            }
            "after" if !stats => p.after = Some(parse_int("after", v)?),
            "before" if !stats => p.before = Some(parse_int("before", v)?),
            "order" if !stats => {
                p.newest_first = match v {
                    "asc" | "oldest" => false,
                    "desc" | "newest" => true,
                    _ => {
                        return Err(ApiError::invalid(format!(
                            "order: expected asc or desc, got {v:?}"
                        )))
                    }
                }
            }
            "by" if stats => {
                p.by = Some(GroupBy::parse(v).ok_or_else(|| {
                    ApiError::invalid(format!(
                        "by: expected class, queue or meta:<key>, got {v:?}"
                    ))
                })?)
            }
            "sla" if stats => {
                let s = parse_secs("sla", v)?;
                if s < 0.0 {
                    return Err(ApiError::invalid(format!(
                        "sla: expected a number of seconds >= 0, got {v:?}"
                    )));
                }
                p.sla = Some(s);
            }
            other => {
                let allowed = if stats {
                    "since, until, queue, klass, type, jid, meta, by, sla"
                } else {
                    "since, until, queue, klass, type, jid, meta, limit, after, before, order"
                };
                return Err(ApiError::invalid(format!(
                    "query string: unknown parameter {other:?}, expected one of {allowed}"
                )));
            }
        }
    }
    Ok(p)
}

fn raw_pairs(
    q: Result<Query<Vec<(String, String)>>, axum::extract::rejection::QueryRejection>,
) -> Result<Vec<(String, String)>, ApiError> {
    q.map(|Query(v)| v)
        .map_err(|e| ApiError::invalid(format!("query string: {}", e.body_text())))
}

/// The lifecycle-event filters that `/v1/events/search`, `/stats` and
/// `/series` share, as the OpenAPI document describes them. (The handlers
/// read the query pairwise with [`Filter::set_param`], since `meta`
/// repeats; this type is never built.)
#[derive(utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
#[allow(dead_code)]
pub struct EventFilterParams {
    /// Events at or after this time (seconds)
    since: Option<f64>,
    /// Events before this time (seconds)
    until: Option<f64>,
    /// Only this queue
    queue: Option<String>,
    /// Only this job class
    klass: Option<String>,
    /// Only this event type: enqueued, dequeued, perform_started, perform_finished, failed
    r#type: Option<String>,
    /// Only this job
    jid: Option<String>,
    /// key:value metadata criterion (repeatable; all must hold)
    meta: Option<Vec<String>>,
}

/// Lifecycle events matching the filters, oldest first (or newest first
/// with `order=desc`), a page at a time. Page on with `after` (ascending)
/// or `before` (descending) set to the returned `next`. Oldest first, a
/// page costs only the log it covers, so a reader can follow the log by
/// sequence number (`after` = the last `seq` it took), as `clew work --url
/// ... --publish` does.
#[utoipa::path(get, path = "/v1/events/search", tag = "events",
    params(
        EventFilterParams,
        ("limit" = Option<i64>, Query, description = "At most this many events (default 100, at most 10000)"),
        ("after" = Option<i64>, Query, description = "Only events with a sequence number above this"),
        ("before" = Option<i64>, Query, description = "Only events with a sequence number below this"),
        ("order" = Option<String>, Query, description = "asc (oldest first, default) or desc (newest first)")),
    responses(
        (status = 200, description = "`{\"events\": [...], \"next\": seq or null}`", body = Object),
        (status = "4XX", description = "Refused", body = ErrorBody)))]
pub async fn search_events(
    State(state): State<AppState>,
    query: Result<Query<Vec<(String, String)>>, axum::extract::rejection::QueryRejection>,
) -> Result<Json<Value>, ApiError> {
    let p = parse(raw_pairs(query)?, false)?;
    let store = state.engine().store().clone();
    let limit = p.limit.unwrap_or(DEFAULT_LIMIT);
    let after = p.after.unwrap_or(0);
    let events = if p.newest_first || p.before.is_some() {
        analytics::scan(store.as_ref(), &p.filter, after).await?
    } else {
        // Oldest first: read only as far as the page (and one more, to
        // know whether there is a next page) needs.
        scan_forward(store.as_ref(), &p.filter, after, limit + 1).await?
    };
    let (events, next) = analytics::page(events, p.before, p.newest_first, limit);
    Ok(Json(json!({
        "events": events.iter().map(analytics::event_json).collect::<Vec<_>>(),
        "next": next,
    })))
}

/// Up to `want` lifecycle events after `after` matching `filter`, oldest
/// first, reading the log only as far as needed (a reader following the
/// log page by page, such as a worker's publisher, costs what it reads).
async fn scan_forward(
    store: &dyn clew_core::Store,
    filter: &Filter,
    after: i64,
    want: usize,
) -> clew_core::Result<Vec<clew_core::LifecycleEvent>> {
    const PAGE: i64 = 1_000;
    let mut cursor = after;
    let mut out = Vec::new();
    while out.len() < want {
        let page = store.events_after(cursor, PAGE).await?;
        let Some(last) = page.last() else { break };
        cursor = last.seq;
        out.extend(
            page.iter()
                .filter_map(|e| e.lifecycle())
                .filter(|ev| analytics::matches(filter, ev)),
        );
        if (page.len() as i64) < PAGE {
            break;
        }
    }
    out.truncate(want);
    Ok(out)
}

/// Statistics of the lifecycle events matching the filters, per group
/// (`by`: class, queue or meta:`<key>`; one group if omitted): event count,
/// `time_in_queue` (of dequeues) and `time_to_perform` (of finished and
/// failed performs) as count, p50, p95, p99 (nearest rank), max and mean,
/// and with `sla=N` the share of dequeues that waited at most N seconds.
#[utoipa::path(get, path = "/v1/events/stats", tag = "events",
    params(
        EventFilterParams,
        ("by" = Option<String>, Query, description = "Group by class, queue or meta:<key>"),
        ("sla" = Option<f64>, Query, description = "SLA threshold in seconds")),
    responses(
        (status = 200, description = "`{\"by\", \"sla_seconds\", \"groups\": [{group, count, time_in_queue, time_to_perform, sla}]}`", body = Object),
        (status = "4XX", description = "Refused", body = ErrorBody)))]
pub async fn event_stats(
    State(state): State<AppState>,
    query: Result<Query<Vec<(String, String)>>, axum::extract::rejection::QueryRejection>,
) -> Result<Json<Value>, ApiError> {
    let p = parse(raw_pairs(query)?, true)?;
    let store = state.engine().store().clone();
    let events = analytics::scan(store.as_ref(), &p.filter, 0).await?;
    let by = p.by.unwrap_or(GroupBy::All);
    let groups = analytics::stats(&events, &by, p.sla);
    Ok(Json(json!({
        "by": by.name(),
        "sla_seconds": p.sla,
        "groups": groups,
    })))
}

/// Body of `POST /v1/events/prune`: at least one limit.
#[derive(Debug, serde::Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct PruneBody {
    /// Drop events older than this many seconds.
    #[serde(default)]
    pub max_age: Option<f64>,
    /// Keep at most this many events (the newest).
    #[serde(default)]
    pub max_events: Option<u64>,
}

/// History retention: deletes the events older than `max_age` seconds and
/// all but the newest `max_events` (the whole event log counts: qless and
/// lifecycle events). Answers `{"deleted": n}`. Publishers whose cursor is
/// behind the cut lose the deleted events.
#[utoipa::path(post, path = "/v1/events/prune", tag = "events",
    request_body = PruneBody,
    responses(
        (status = 200, description = "`{\"deleted\": n}`", body = Object),
        (status = "4XX", description = "Refused", body = ErrorBody)))]
pub async fn prune_events(
    State(state): State<AppState>,
    now: RequestNow,
    ApiJson(body): ApiJson<PruneBody>,
) -> Result<Json<Value>, ApiError> {
    if let Some(a) = body.max_age {
        if !(a.is_finite() && a >= 0.0) {
            return Err(ApiError::invalid(format!(
                "max_age: expected a number of seconds >= 0, got {a}"
            )));
        }
    }
    if body.max_age.is_none() && body.max_events.is_none() {
        return Err(ApiError::invalid(
            "request body: expected max_age or max_events (or both)",
        ));
    }
    let r = analytics::Retention {
        max_age: body.max_age,
        max_events: body.max_events,
    };
    let store = state.engine().store().clone();
    let deleted = analytics::prune(store.as_ref(), now.0, &r).await?;
    Ok(Json(json!({ "deleted": deleted })))
}
