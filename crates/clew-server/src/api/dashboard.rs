//! Views for dashboards, useful to any client:
//!
//! * `GET /v1/jobs/{jid}/why`: why a job is not running, in plain words
//!   and as structured reasons.
//! * `GET /v1/overview`: every queue's counts, the last hour's throughput
//!   and failure rate per queue, failed groups and workers, in one call.
//! * `GET /v1/events/series`: lifecycle-event counts and
//!   `time_in_queue` / `time_to_perform` percentiles per time bucket, per
//!   group, for charts.
//!
//! All are computed from existing commands and the lifecycle log; nothing
//! new is stored. The log is read newest first
//! ([`analytics::scan_newest_first`]) and only as far back as needed: to
//! the queue's latest pop (`why`), to one hour ago (`overview`), to `since`
//! (`series`). Events are logged in time order, so the first event older
//! than the window ends the read.

use std::collections::BTreeMap;
use std::ops::ControlFlow;

use axum::extract::{Path, Query, State};
use axum::Json;
use clew_core::analytics::{self, Filter, GroupBy};
use clew_core::command::QueueCounts;
use clew_core::time::iso8601;
use clew_core::{Command, Job, JobState, LifecycleEvent, LifecycleKind, Reply, Timestamp};
use serde::Serialize;
use serde_json::{json, Map, Value};
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use super::{run, ApiQuery, ErrorBody};
use crate::error::ApiError;
use crate::state::{AppState, RequestNow};

/// A queue from which no job was handed out for this many seconds, while
/// a job waits in it, gets the `no_workers` reason.
pub const NO_WORKERS_AFTER_SECS: f64 = 300.0;
/// How far `why` looks for a waiting job's position in its queue.
pub const POSITION_SCAN_MAX: i64 = 10_000;
/// The window of the overview's throughput figures, seconds.
pub const OVERVIEW_WINDOW_SECS: f64 = 3600.0;
/// The most buckets one series request may ask for.
pub const MAX_BUCKETS: i64 = 500;
/// How many log entries one backwards read takes.
const LOG_PAGE: i64 = 10_000;

/// The dashboard routes.
pub fn routes() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(why_job))
        .routes(routes!(overview))
        .routes(routes!(event_series))
}

// --- times in words ----------------------------------------------------

/// A duration in words: `42s`, `5m 3s`, `2h 10m`, `3d 4h`.
fn span(secs: f64) -> String {
    let s = secs.max(0.0).round() as i64;
    match s {
        0..=59 => format!("{s}s"),
        60..=3599 => format!("{}m {}s", s / 60, s % 60),
        3600..=86_399 => format!("{}h {}m", s / 3600, s % 3600 / 60),
        _ => format!("{}d {}h", s / 86_400, s % 86_400 / 3600),
    }
}

// --- GET /v1/jobs/{jid}/why ----------------------------------------------

/// One reason: a code, a sentence, and the figures the sentence quotes.
fn reason(code: &str, text: String, fields: Value) -> Value {
    let mut m = Map::new();
    m.insert("code".into(), code.into());
    m.insert("text".into(), text.into());
    if let Value::Object(extra) = fields {
        m.extend(extra);
    }
    Value::Object(m)
}

/// What `why` knows about a job's queue.
struct QueueFacts {
    counts: QueueCounts,
    max_concurrency: i64,
}

async fn queue_facts(
    state: &AppState,
    now: &RequestNow,
    queue: &str,
) -> Result<QueueFacts, ApiError> {
    let counts = match run(
        state,
        now.clone(),
        Command::Queues {
            queue: Some(queue.to_owned()),
        },
    )
    .await?
    {
        Reply::Queue(q) => q,
        other => {
            return Err(ApiError::new(
                axum::http::StatusCode::INTERNAL_SERVER_ERROR,
                "internal",
                format!("queues answered {other:?}"),
            ))
        }
    };
    let key = format!("{queue}-max-concurrency");
    let max_concurrency =
        match run(state, now.clone(), Command::ConfigGet { key: Some(key) }).await? {
            Reply::ConfigValue(Some(v)) => config_number(&v) as i64,
            _ => 0,
        };
    Ok(QueueFacts {
        counts,
        max_concurrency,
    })
}

/// A config value as a number (stored values are text); 0 if not one.
fn config_number(v: &Value) -> f64 {
    match v {
        Value::Number(n) => n.as_f64().unwrap_or(0.0),
        Value::String(s) => s.trim().parse().unwrap_or(0.0),
        _ => 0.0,
    }
}

/// The time of the newest `dequeued` lifecycle event of `queue`, reading
/// the log backwards and stopping at the first one.
async fn last_pop(state: &AppState, queue: &str) -> Result<Option<Timestamp>, ApiError> {
    let store = state.engine().store().clone();
    let mut found = None;
    analytics::scan_newest_first(store.as_ref(), LOG_PAGE, |e| match e.lifecycle() {
        Some(ev) if ev.kind == LifecycleKind::Dequeued && ev.queue == queue => {
            found = Some(ev.at);
            ControlFlow::Break(())
        }
        _ => ControlFlow::Continue(()),
    })
    .await?;
    Ok(found)
}

/// The 1-based place of `jid` in its queue's work list (pop order), if
/// within the first [`POSITION_SCAN_MAX`].
async fn position(
    state: &AppState,
    now: &RequestNow,
    queue: &str,
    jid: &str,
) -> Result<Option<i64>, ApiError> {
    const PAGE: i64 = 1000;
    let mut offset = 0;
    while offset < POSITION_SCAN_MAX {
        let cmd = Command::Jobs {
            listing: clew_core::command::JobsListing::Waiting,
            queue: queue.to_owned(),
            offset,
            count: PAGE,
        };
        let Reply::Strings(jids) = run(state, now.clone(), cmd).await? else {
            return Ok(None);
        };
        if let Some(i) = jids.iter().position(|j| j == jid) {
            return Ok(Some(offset + i as i64 + 1));
        }
        if (jids.len() as i64) < PAGE {
            break;
        }
        offset += PAGE;
    }
    Ok(None)
}

fn paused_reason(queue: &str) -> Value {
    reason(
        "paused",
        format!("queue {queue} is paused: no worker gets jobs from it until it is resumed"),
        json!({ "queue": queue }),
    )
}

/// The reasons of a job that waits in its queue's work list (`waiting`,
/// or `stalled` after a timeout).
async fn waiting_reasons(
    state: &AppState,
    now: &RequestNow,
    job: &Job,
    facts: &QueueFacts,
) -> Result<Vec<Value>, ApiError> {
    let r = &job.record;
    let queue = r.queue.as_str();
    let mut out = Vec::new();
    if facts.counts.paused {
        out.push(paused_reason(queue));
    }
    let pos = position(state, now, queue, &r.jid).await?;
    let total = facts.counts.counts.waiting;
    let place = match pos {
        Some(p) => format!("position {p} of {total}"),
        None => format!("beyond the first {POSITION_SCAN_MAX} of {total}"),
    };
    let lead = if r.state == JobState::Stalled {
        format!("timed out and put back at the front of queue {queue}")
    } else {
        format!("waiting in queue {queue}")
    };
    out.push(reason(
        "waiting",
        format!("{lead}: {place} (priority {})", r.priority),
        json!({"queue": queue, "position": pos, "waiting": total, "priority": r.priority}),
    ));
    let running = facts.counts.counts.running;
    if facts.max_concurrency > 0 && running >= facts.max_concurrency {
        out.push(reason(
            "concurrency_limit",
            format!(
                "queue {queue} runs at most {} jobs at once and {running} are running",
                facts.max_concurrency
            ),
            json!({"queue": queue, "max_concurrency": facts.max_concurrency, "running": running}),
        ));
    }
    match last_pop(state, queue).await? {
        None => out.push(reason(
            "never_popped",
            format!(
                "no worker has ever taken a job from queue {queue} (in the kept event history)"
            ),
            json!({ "queue": queue }),
        )),
        Some(t) if now.0.secs_since(t) > NO_WORKERS_AFTER_SECS => out.push(reason(
            "no_workers",
            format!(
                "no worker has popped queue {queue} since {} ({} ago)",
                iso8601(t),
                span(now.0.secs_since(t))
            ),
            json!({"queue": queue, "last_pop": t.to_json()}),
        )),
        Some(_) => {}
    }
    Ok(out)
}

fn running_reasons(job: &Job, now: Timestamp) -> Vec<Value> {
    let r = &job.record;
    let mut out = vec![reason(
        "running",
        format!(
            "running on worker {} since {}, with the lock expiring at {}",
            r.worker,
            iso8601(r.time),
            iso8601(r.expires)
        ),
        json!({"worker": r.worker, "since": r.time.to_json(), "expires": r.expires.to_json()}),
    )];
    if r.expires < now {
        let next = if r.remaining <= 0 && r.grace {
            "the next pop of the queue fails it (no retries left)"
        } else {
            "the next pop hands it to another worker"
        };
        out.push(reason(
            "lock_expired",
            format!(
                "stalled: the lock expired at {}; {next}",
                iso8601(r.expires)
            ),
            json!({"worker": r.worker, "expires": r.expires.to_json(), "remaining": r.remaining}),
        ));
    }
    out
}

/// A throttled job: the throttle it waits for (named by its last
/// `throttled` history entry) with that throttle's running count and maximum.
async fn throttled_reasons(
    state: &AppState,
    now: &RequestNow,
    job: &Job,
) -> Result<Vec<Value>, ApiError> {
    let r = &job.record;
    let last = job.history.iter().rev().find(|h| h.what == "throttled");
    let name = last
        .and_then(|h| h.extra.get("throttle"))
        .and_then(Value::as_str)
        .unwrap_or_default()
        .to_owned();
    let by_rate = last
        .and_then(|h| h.extra.get("reason"))
        .and_then(Value::as_str)
        == Some("rate");
    let cmd = Command::ThrottleGet { name: name.clone() };
    let info = match run(state, now.clone(), cmd).await {
        Ok(Reply::Throttle(Some(t))) => Some(t),
        _ => None,
    };
    if let (true, Some(t)) = (by_rate, &info) {
        let (limit, period) = t.rate.map_or((0, 0), |r| (r.limit, r.period));
        return Ok(vec![reason(
            "throttled",
            format!(
                "held back by the rate limit of throttle {name}: {} of at most {limit} starts \
                 in the last {period}s, {} waiting; it goes back to queue {} when the window \
                 has room (at the next pop or peek)",
                t.started, t.pending, r.queue
            ),
            json!({"throttle": name, "reason": "rate", "started": t.started,
                   "rate": {"limit": limit, "period": period}, "pending": t.pending,
                   "throttles": r.throttles, "queue": r.queue}),
        )]);
    }
    let (running, max, pending) = info.map_or((0, 0, 0), |t| (t.running, t.max, t.pending));
    Ok(vec![reason(
        "throttled",
        format!(
            "held back by throttle {name}: {running} of at most {max} jobs holding it are \
             running, {pending} waiting; it goes back to queue {} when a slot frees",
            r.queue
        ),
        json!({"throttle": name, "running": running, "max": max, "pending": pending,
               "throttles": r.throttles, "queue": r.queue}),
    )])
}

async fn depends_reasons(state: &AppState, now: &RequestNow, job: &Job) -> Result<Value, ApiError> {
    let r = &job.record;
    let deps = &job.dependencies;
    let states: BTreeMap<String, String> =
        match run(state, now.clone(), Command::MultiGet { jids: deps.clone() }).await? {
            Reply::Jobs(jobs) => jobs
                .iter()
                .map(|j| (j.record.jid.clone(), j.record.state.as_str().to_owned()))
                .collect(),
            _ => BTreeMap::new(),
        };
    let named: Vec<String> = deps
        .iter()
        .map(|d| match states.get(d) {
            Some(s) => format!("{d} ({s})"),
            None => format!("{d} (gone)"),
        })
        .collect();
    let mut text = format!("waiting on jobs {}", named.join(", "));
    if let Some(t) = r.scheduled {
        text.push_str(&format!("; then delayed until {}", iso8601(t)));
    }
    Ok(reason(
        "depends",
        text,
        json!({"jids": deps, "states": states, "queue": r.queue}),
    ))
}

/// Why a job (or recurring template) is not running, as reasons.
async fn job_reasons(
    state: &AppState,
    now: &RequestNow,
    job: &Job,
) -> Result<Vec<Value>, ApiError> {
    let r = &job.record;
    let queue = r.queue.as_str();
    match r.state {
        JobState::Complete => Ok(vec![reason(
            "complete",
            format!("completed at {}", iso8601(r.sort_time)),
            json!({ "at": r.sort_time.to_json() }),
        )]),
        JobState::Failed => {
            let f = r.failure.as_ref();
            let group = f.map(|f| f.group.clone()).unwrap_or_default();
            let message = f.map(|f| f.message.clone()).unwrap_or_default();
            let when = f.map(|f| f.when).unwrap_or(r.time);
            Ok(vec![reason(
                "failed",
                format!("failed in group {group} at {}: {message}", iso8601(when)),
                json!({"group": group, "message": message, "when": when.to_json(),
                       "worker": f.map(|f| f.worker.clone()).unwrap_or_default()}),
            )])
        }
        JobState::Running => Ok(running_reasons(job, now.0)),
        JobState::Throttled => throttled_reasons(state, now, job).await,
        JobState::Waiting | JobState::Stalled => {
            let facts = queue_facts(state, now, queue).await?;
            waiting_reasons(state, now, job, &facts).await
        }
        JobState::Scheduled => {
            let facts = queue_facts(state, now, queue).await?;
            let mut out = Vec::new();
            if facts.counts.paused {
                out.push(paused_reason(queue));
            }
            out.push(reason(
                "scheduled",
                format!(
                    "scheduled for {} (in {}), in queue {queue}",
                    iso8601(r.sort_time),
                    span(r.sort_time.secs_since(now.0))
                ),
                json!({"at": r.sort_time.to_json(), "queue": queue}),
            ));
            Ok(out)
        }
        JobState::Depends => {
            let facts = queue_facts(state, now, queue).await?;
            let mut out = Vec::new();
            if facts.counts.paused {
                out.push(paused_reason(queue));
            }
            out.push(depends_reasons(state, now, job).await?);
            Ok(out)
        }
    }
}

async fn get_job(state: &AppState, now: &RequestNow, jid: &str) -> Result<Option<Job>, ApiError> {
    let cmd = Command::Get {
        jid: jid.to_owned(),
    };
    Ok(match run(state, now.clone(), cmd).await? {
        Reply::Job(j) => j.map(|j| *j),
        _ => None,
    })
}

/// A recurring template's answer, or None if `jid` is not one.
async fn recurring_answer(
    state: &AppState,
    now: &RequestNow,
    jid: &str,
) -> Result<Option<Value>, ApiError> {
    let cmd = Command::RecurGet {
        jid: jid.to_owned(),
    };
    let Reply::Recur(Some(t)) = run(state, now.clone(), cmd).await? else {
        return Ok(None);
    };
    let facts = queue_facts(state, now, &t.queue).await?;
    let mut reasons = Vec::new();
    if facts.counts.paused {
        reasons.push(paused_reason(&t.queue));
    }
    let (every, mut figures) = match &t.cron {
        Some(c) => (
            format!("on cron \"{}\" ({})", c.expr, c.zone_name()),
            json!({"cron": c.expr, "timezone": c.zone_name(), "missed": c.missed.as_str()}),
        ),
        None => (
            format!("every {}", span(t.interval)),
            json!({"interval": clew_core::time::secs_json(t.interval)}),
        ),
    };
    if let Some(m) = figures.as_object_mut() {
        m.insert("queue".into(), json!(t.queue));
        m.insert("next".into(), t.next_at.to_json());
        m.insert("count".into(), json!(t.count));
    }
    reasons.push(reason(
        "recurring",
        format!(
            "a recurring template, not a job: it puts a job into queue {} {every}; the next is due at {}",
            t.queue,
            iso8601(t.next_at)
        ),
        figures,
    ));
    Ok(Some(json!({
        "jid": jid, "state": "recur", "queue": t.queue, "now": now.0.to_json(), "reasons": reasons,
    })))
}

/// Why a job is not running, in plain words: each reason has a `code`, a
/// `text` (times in ISO-8601 UTC) and the figures it quotes (times in
/// seconds). Codes: `paused` (its queue is paused), `scheduled` (`at`),
/// `depends` (`jids` not yet complete, with their `states`), `waiting`
/// (`position` in pop order, `waiting`, `priority`), `concurrency_limit`,
/// `no_workers` (no job was popped from the queue in the last 5 minutes:
/// `last_pop`), `never_popped`, `running` (`worker`, `since`, `expires`),
/// `lock_expired` (stalled), `failed` (`group`, `message`, `when`),
/// `complete` (`at`), `recurring` (a recurring template: `interval`,
/// `next`). Looking promotes the queue's due scheduled jobs, as any
/// listing does.
#[utoipa::path(get, path = "/v1/jobs/{jid}/why", tag = "jobs",
    params(("jid" = String, Path, description = "The job (or recurring template)")),
    responses(
        (status = 200, description = "`{\"jid\", \"state\", \"queue\", \"now\", \"reasons\": [{\"code\", \"text\", ...}]}`", body = Object),
        (status = 404, description = "No such job or template", body = ErrorBody),
        (status = "4XX", description = "Refused", body = ErrorBody)))]
pub async fn why_job(
    State(state): State<AppState>,
    now: RequestNow,
    Path(jid): Path<String>,
) -> Result<Json<Value>, ApiError> {
    let Some(mut job) = get_job(&state, &now, &jid).await? else {
        return match recurring_answer(&state, &now, &jid).await? {
            Some(v) => Ok(Json(v)),
            None => Err(ApiError::not_found(format!("job {jid} does not exist"))),
        };
    };
    if job.record.state == JobState::Scheduled && job.record.sort_time <= now.0 {
        // Due: reading the queue's counts promotes it; read it again.
        queue_facts(&state, &now, &job.record.queue).await?;
        if let Some(j) = get_job(&state, &now, &jid).await? {
            job = j;
        }
    }
    let reasons = job_reasons(&state, &now, &job).await?;
    Ok(Json(json!({
        "jid": jid,
        "state": job.record.state.as_str(),
        "queue": job.record.queue,
        "now": now.0.to_json(),
        "reasons": reasons,
    })))
}

// --- GET /v1/overview ------------------------------------------------------

/// Completed and failed performs over a window.
#[derive(Debug, Default, Clone, Copy, Serialize)]
struct Outcomes {
    completed: u64,
    failed: u64,
}

impl Outcomes {
    fn add(&mut self, kind: LifecycleKind) {
        match kind {
            LifecycleKind::PerformFinished => self.completed += 1,
            LifecycleKind::Failed => self.failed += 1,
            _ => {}
        }
    }

    fn json(self) -> Value {
        let done = self.completed + self.failed;
        json!({
            "completed": self.completed,
            "failed": self.failed,
            "failure_rate": (done > 0).then(|| self.failed as f64 / done as f64),
        })
    }
}

/// Up to this many failed jobs in all, the overview counts them per queue
/// (reading each one's queue); beyond, per-queue `failed` is null.
pub const FAILED_BY_QUEUE_MAX: i64 = 10_000;

/// Outcomes per queue in `[since, now]`, one backwards pass over the log.
async fn outcomes_since(
    state: &AppState,
    since: Timestamp,
    now: Timestamp,
) -> Result<(BTreeMap<String, Outcomes>, Vec<LifecycleEvent>), ApiError> {
    let store = state.engine().store().clone();
    let mut per_queue: BTreeMap<String, Outcomes> = BTreeMap::new();
    let mut timed = Vec::new();
    analytics::scan_newest_first(store.as_ref(), LOG_PAGE, |e| {
        if e.at < since {
            return ControlFlow::Break(());
        }
        // Puts and starts count for neither outcomes nor timings: skip them
        // unparsed (a busy hour holds as many puts as everything else).
        let wanted = matches!(
            e.lifecycle_kind(),
            Some(LifecycleKind::Dequeued | LifecycleKind::PerformFinished | LifecycleKind::Failed)
        );
        if e.at <= now && wanted {
            if let Some(mut ev) = e.lifecycle() {
                per_queue.entry(ev.queue.clone()).or_default().add(ev.kind);
                if ev.time_in_queue.is_some() || ev.time_to_perform.is_some() {
                    // Only the timings are summarised: drop the payload.
                    ev.args = Value::Null;
                    ev.metadata.clear();
                    timed.push(ev);
                }
            }
        }
        ControlFlow::Continue(())
    })
    .await?;
    Ok((per_queue, timed))
}

/// Query of `GET /v1/overview`.
#[derive(Debug, serde::Deserialize, utoipa::IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub struct OverviewQuery {
    /// With this bucket width (seconds, 10 to 3600), the answer also holds
    /// `series`: the window's wait and run time percentiles per bucket, as
    /// `/v1/events/series` gives them (counting dequeues and performs), read
    /// in the same pass over the log.
    #[serde(default)]
    pub interval: Option<i64>,
}

/// The dashboard's home page in one call: every known queue with its
/// counts by state, paused flag and last hour's `completed`, `failed` and
/// `failure_rate` (failed / (completed + failed), null without either;
/// from the lifecycle log: perform_finished and failed events); failed
/// jobs per group; workers (name, running and stalled jobs, last seen);
/// and totals. A queue's `failed` (jobs now failed that ran in it) is
/// counted by reading the failed jobs, so it is null when more than 10000
/// jobs are failed in all; `failed.groups` is always exact.
#[utoipa::path(get, path = "/v1/overview", tag = "queues",
    params(OverviewQuery),
    responses(
        (status = 200, description = "`{\"now\", \"window\", \"queues\": [...], \"failed\": {\"total\", \"groups\"}, \"workers\": {\"count\", \"names\", \"list\"}, \"totals\": {...}, \"series\" (with interval)}`", body = Object),
        (status = "4XX", description = "Refused", body = ErrorBody)))]
pub async fn overview(
    State(state): State<AppState>,
    now: RequestNow,
    ApiQuery(q): ApiQuery<OverviewQuery>,
) -> Result<Json<Value>, ApiError> {
    if let Some(i) = q.interval {
        if !(10..=3600).contains(&i) {
            return Err(ApiError::invalid(format!(
                "interval: expected whole seconds from 10 to 3600, got {i}"
            )));
        }
    }
    let queues = match run(&state, now.clone(), Command::Queues { queue: None }).await? {
        Reply::Queues(v) => v,
        _ => Vec::new(),
    };
    let groups = match run(
        &state,
        now.clone(),
        Command::Failed {
            group: None,
            start: 0,
            limit: 0,
        },
    )
    .await?
    {
        Reply::FailedGroups(v) => v,
        _ => Vec::new(),
    };
    let workers = match run(
        &state,
        now.clone(),
        Command::Workers {
            worker: None,
            detail: true,
        },
    )
    .await?
    {
        Reply::Workers(v) => v,
        _ => Vec::new(),
    };
    let failed_in =
        crate::metrics::failed_by_queue(state.engine(), &groups, Some(FAILED_BY_QUEUE_MAX)).await?;
    let since = now.0.add_secs(-OVERVIEW_WINDOW_SECS);
    let (outcomes, timed) = outcomes_since(&state, since, now.0).await?;
    let series = q.interval.map(|interval| {
        let to = now.0.add_secs(1e-6);
        json!({
            "interval": interval,
            "series": analytics::series(&timed, &GroupBy::All, interval, since, to),
        })
    });

    let mut totals = [0i64; 6];
    let mut paused = 0;
    let queue_docs: Vec<Value> = queues
        .iter()
        .map(|q| {
            let c = &q.counts;
            for (t, v) in totals.iter_mut().zip([
                c.waiting,
                c.running,
                c.stalled,
                c.scheduled,
                c.depends,
                q.recurring,
            ]) {
                *t += v;
            }
            paused += i64::from(q.paused);
            let mut doc = q.to_json();
            doc["failed"] = match &failed_in {
                Some(m) => Value::from(m.get(&q.name).copied().unwrap_or(0)),
                None => Value::Null,
            };
            doc["last_hour"] = outcomes.get(&q.name).copied().unwrap_or_default().json();
            doc
        })
        .collect();
    let mut all = Outcomes::default();
    for o in outcomes.values() {
        all.completed += o.completed;
        all.failed += o.failed;
    }
    let failed_total: i64 = groups.iter().map(|(_, n)| n).sum();
    let mut doc = json!({
        "now": now.0.to_json(),
        "window": clew_core::time::secs_json(OVERVIEW_WINDOW_SECS),
        "queues": queue_docs,
        "failed": {
            "total": failed_total,
            "groups": groups.iter().map(|(g, n)| json!({"group": g, "count": n})).collect::<Vec<_>>(),
        },
        "workers": {
            "count": workers.len(),
            "names": workers.iter().map(|w| w.name.clone()).collect::<Vec<_>>(),
            "list": workers.iter().map(|w| json!({
                "name": w.name, "jobs": w.jobs, "stalled": w.stalled,
                "last_seen": w.last_seen.map(Timestamp::to_json),
            })).collect::<Vec<_>>(),
        },
        "totals": {
            "queues": queues.len(),
            "paused": paused,
            "waiting": totals[0],
            "running": totals[1],
            "stalled": totals[2],
            "scheduled": totals[3],
            "depends": totals[4],
            "recurring": totals[5],
            "failed": failed_total,
            "last_hour": all.json(),
        },
    });
    if let Some(series) = series {
        doc["series"] = series;
    }
    Ok(Json(doc))
}

// --- GET /v1/events/series -------------------------------------------------

/// Bucket widths tried, in order, when `interval` is not given.
const NICE_INTERVALS: [i64; 17] = [
    1, 5, 10, 15, 30, 60, 120, 300, 600, 900, 1800, 3600, 7200, 10_800, 21_600, 43_200, 86_400,
];

/// The smallest nice width that covers `[from, to)` in at most
/// [`MAX_BUCKETS`] buckets.
fn default_interval(from: Timestamp, to: Timestamp) -> i64 {
    NICE_INTERVALS
        .into_iter()
        .find(|&i| analytics::bucket_count(from, to, i) <= MAX_BUCKETS)
        .unwrap_or_else(|| {
            let days = (to.secs_since(from) / 86_400.0 / MAX_BUCKETS as f64).ceil() as i64 + 1;
            days * 86_400
        })
}

/// The series request, parsed.
struct SeriesParams {
    filter: Filter,
    interval: Option<i64>,
    by: GroupBy,
}

fn parse_series(pairs: Vec<(String, String)>) -> Result<SeriesParams, ApiError> {
    let mut p = SeriesParams {
        filter: Filter::default(),
        interval: None,
        by: GroupBy::All,
    };
    for (k, v) in pairs {
        match k.as_str() {
            "interval" => {
                let n = v.parse::<i64>().ok().filter(|n| *n >= 1).ok_or_else(|| {
                    ApiError::invalid(format!(
                        "interval: expected a whole number of seconds >= 1, got {v:?}"
                    ))
                })?;
                p.interval = Some(n);
            }
            "by" => {
                p.by = GroupBy::parse(&v).ok_or_else(|| {
                    ApiError::invalid(format!(
                        "by: expected class, queue or meta:<key>, got {v:?}"
                    ))
                })?;
            }
            key => {
                if !p.filter.set_param(key, &v).map_err(ApiError::invalid)? {
                    return Err(ApiError::invalid(format!(
                        "query string: unknown parameter {key:?}, expected one of \
                         since, until, queue, klass, type, jid, meta, interval, by"
                    )));
                }
            }
        }
    }
    if let (Some(s), Some(u)) = (p.filter.since, p.filter.until) {
        if u <= s {
            return Err(ApiError::invalid(format!(
                "until: expected a time after since ({}), got {}",
                s.as_secs_f64(),
                u.as_secs_f64()
            )));
        }
    }
    Ok(p)
}

/// The lifecycle events `f` matches, read newest first back to
/// `f.since` (or the whole log).
async fn events_in(state: &AppState, f: &Filter) -> Result<Vec<LifecycleEvent>, ApiError> {
    let store = state.engine().store().clone();
    let mut out = Vec::new();
    analytics::scan_newest_first(store.as_ref(), LOG_PAGE, |e| {
        if f.since.is_some_and(|s| e.at < s) {
            return ControlFlow::Break(());
        }
        if let Some(ev) = e.lifecycle().filter(|ev| analytics::matches(f, ev)) {
            out.push(ev);
        }
        ControlFlow::Continue(())
    })
    .await?;
    out.reverse();
    Ok(out)
}

/// Time series of the lifecycle events matching the filters (those of
/// `/v1/events/search`): per bucket of `interval` seconds (aligned on
/// multiples of it since the epoch; by default the smallest of 1 s, 5 s,
/// 10 s, ... 1 day giving at most 500 buckets), per group (`by`), the
/// event count and `time_in_queue` / `time_to_perform` as count, p50, p95,
/// p99 (nearest rank), max and mean. The range is `since` (default: the
/// oldest matching event) to `until` (default: now, or the newest event if
/// later); every bucket of it has a point, empty ones with count 0. More
/// than 500 buckets is refused.
#[utoipa::path(get, path = "/v1/events/series", tag = "events",
    params(
        super::events::EventFilterParams,
        ("interval" = Option<i64>, Query, description = "Bucket width in whole seconds (default: at most 500 buckets)"),
        ("by" = Option<String>, Query, description = "Group by class, queue or meta:<key>")),
    responses(
        (status = 200, description = "`{\"interval\", \"by\", \"from\", \"until\", \"series\": [{\"group\", \"points\": [{\"t\", \"count\", \"time_in_queue\", \"time_to_perform\"}]}]}`", body = Object),
        (status = "4XX", description = "Refused", body = ErrorBody)))]
pub async fn event_series(
    State(state): State<AppState>,
    now: RequestNow,
    query: Result<Query<Vec<(String, String)>>, axum::extract::rejection::QueryRejection>,
) -> Result<Json<Value>, ApiError> {
    let pairs = query
        .map(|Query(v)| v)
        .map_err(|e| ApiError::invalid(format!("query string: {}", e.body_text())))?;
    let p = parse_series(pairs)?;
    let events = events_in(&state, &p.filter).await?;
    let newest = events.last().map(|e| Timestamp(e.at.as_micros() + 1));
    let to = p
        .filter
        .until
        .unwrap_or_else(|| newest.map_or(now.0, |n| n.max(now.0)));
    let from = p
        .filter
        .since
        .or_else(|| events.first().map(|e| e.at))
        .unwrap_or(to)
        .min(to);
    let interval = p.interval.unwrap_or_else(|| default_interval(from, to));
    let buckets = analytics::bucket_count(from, to, interval);
    if buckets > MAX_BUCKETS {
        return Err(ApiError::invalid(format!(
            "interval: {interval} s gives {buckets} buckets from {} to {}, more than \
             {MAX_BUCKETS}; use a larger interval or a shorter range",
            from.as_secs_f64(),
            to.as_secs_f64()
        )));
    }
    let series = analytics::series(&events, &p.by, interval, from, to);
    Ok(Json(json!({
        "interval": interval,
        "by": p.by.name(),
        "from": from.to_json(),
        "until": to.to_json(),
        "series": series,
    })))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn iso8601_dates() {
        assert_eq!(iso8601(Timestamp::from_secs(0)), "1970-01-01T00:00:00Z");
        assert_eq!(
            iso8601(Timestamp::from_secs(1_700_000_000)),
            "2023-11-14T22:13:20Z"
        );
        // A leap day, and a fraction of a second dropped.
        assert_eq!(
            iso8601(Timestamp(951_782_400_999_999)),
            "2000-02-29T00:00:00Z"
        );
        assert_eq!(iso8601(Timestamp::from_secs(-1)), "1969-12-31T23:59:59Z");
    }

    #[test]
    fn spans_in_words() {
        assert_eq!(span(42.4), "42s");
        assert_eq!(span(303.0), "5m 3s");
        assert_eq!(span(7800.0), "2h 10m");
        assert_eq!(span(4.0 * 86_400.0 + 3600.0), "4d 1h");
        assert_eq!(span(-5.0), "0s");
    }

    #[test]
    fn default_intervals_stay_under_the_bucket_cap() {
        let t = Timestamp::from_secs;
        assert_eq!(default_interval(t(0), t(500)), 1);
        assert_eq!(default_interval(t(0), t(3600)), 10);
        assert_eq!(default_interval(t(0), t(86_400)), 300);
        let year = default_interval(t(0), t(365 * 86_400));
        assert!(analytics::bucket_count(t(0), t(365 * 86_400), year) <= MAX_BUCKETS);
    }
}
