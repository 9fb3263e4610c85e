//! Prometheus metrics: `GET /metrics` in the text exposition format 0.0.4.
//!
//! Two kinds of figures:
//! * counted as events are committed through this server's engine (by a
//!   task of their own, which a scrape waits for: exact for the jobs run
//!   through this server since it started; see [`Metrics::observe`]): `clew_jobs_total{queue,outcome}`,
//!   `clew_lifecycle_events_total{queue,kind}`, and the histograms
//!   `clew_job_wait_seconds{queue}` (a job's time in the queue, from its
//!   `dequeued` event) and `clew_job_run_seconds{queue}` (its time to
//!   perform, from `perform_finished` and `failed`);
//! * read from the store at scrape time: `clew_jobs{queue,state}` (waiting,
//!   running, stalled, scheduled, depends, recurring, failed),
//!   `clew_queue_paused`, `clew_failed_jobs{group}`, `clew_workers`, and
//!   `clew_sink_lag_events` (from the provider given to
//!   [`crate::AppState::with_sink_lags`]). The failed count per queue reads
//!   every failed job's queue (linear in the number of failed jobs).
//!
//! Latency: `clew_store_seconds{command}` times each call into the store
//! itself (one qless command, or `events_after` / `events_prune` /
//! `flush`; [`Metrics::timed_store`] wraps the engine's store), and
//! `clew_http_request_seconds{route}` each whole HTTP request, by matched
//! route pattern.

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Instant;

use async_trait::async_trait;

use axum::extract::{MatchedPath, Request, State};
use axum::http::{header, StatusCode};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::Router;
use clew_core::{Command, Event, EventSink, LifecycleKind, Origin, Reply, Store, Timestamp};

use crate::error::ApiError;
use crate::state::AppState;

/// Upper bounds of the job wait and run time histograms, in seconds.
pub const JOB_BUCKETS: &[f64] = &[
    0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0, 120.0, 300.0, 600.0,
    1800.0, 3600.0,
];

/// Upper bounds of the store latency histogram, in seconds.
pub const LATENCY_BUCKETS: &[f64] = &[
    0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0,
];

/// A provider of sink lags: `(sink name, events behind)` pairs, read at
/// every scrape.
pub type SinkLags = Arc<dyn Fn() -> Vec<(String, i64)> + Send + Sync>;

/// A cumulative histogram with fixed bucket bounds.
#[derive(Clone, Debug)]
struct Histogram {
    bounds: &'static [f64],
    /// Observations at most `bounds[i]` (not cumulative; summed on output).
    counts: Vec<u64>,
    count: u64,
    sum: f64,
}

impl Histogram {
    fn new(bounds: &'static [f64]) -> Histogram {
        Histogram {
            bounds,
            counts: vec![0; bounds.len()],
            count: 0,
            sum: 0.0,
        }
    }

    fn observe(&mut self, v: f64) {
        let v = if v.is_finite() { v.max(0.0) } else { 0.0 };
        if let Some(i) = self.bounds.iter().position(|b| v <= *b) {
            self.counts[i] += 1;
        }
        self.count += 1;
        self.sum += v;
    }

    fn render(&self, out: &mut String, name: &str, label: &str, value: &str) {
        let mut cumulative = 0;
        for (b, c) in self.bounds.iter().zip(&self.counts) {
            cumulative += c;
            let _ = writeln!(
                out,
                "{name}_bucket{{{label}=\"{}\",le=\"{}\"}} {cumulative}",
                escape(value),
                float(*b)
            );
        }
        let _ = writeln!(
            out,
            "{name}_bucket{{{label}=\"{}\",le=\"+Inf\"}} {}",
            escape(value),
            self.count
        );
        let _ = writeln!(
            out,
            "{name}_sum{{{label}=\"{}\"}} {}",
            escape(value),
            float(self.sum)
        );
        let _ = writeln!(
            out,
            "{name}_count{{{label}=\"{}\"}} {}",
            escape(value),
            self.count
        );
    }
}

#[derive(Debug, Default)]
struct Inner {
    /// queue → outcome → count.
    outcomes: BTreeMap<String, BTreeMap<&'static str, u64>>,
    /// queue → lifecycle kind → count.
    kinds: BTreeMap<String, BTreeMap<&'static str, u64>>,
    wait: BTreeMap<String, Histogram>,
    run: BTreeMap<String, Histogram>,
    /// Route → HTTP request time.
    latency: BTreeMap<String, Histogram>,
    /// Store call (command name) → time.
    store: BTreeMap<&'static str, Histogram>,
}

/// The server's counters and histograms (cheap to clone: shared).
#[derive(Clone, Debug, Default)]
pub struct Metrics {
    inner: Arc<Mutex<Inner>>,
    /// Where committed events go to be counted off the store's writer
    /// thread (`None` outside a Tokio runtime: counted where published).
    counter: Option<Counter>,
}

/// The task counting committed events, and how far it has got.
#[derive(Clone, Debug)]
struct Counter {
    tx: tokio::sync::mpsc::UnboundedSender<Vec<Event>>,
    progress: Arc<Progress>,
}

/// Batches handed to the counting task and counted by it.
#[derive(Debug, Default)]
struct Progress {
    sent: AtomicU64,
    counted: AtomicU64,
    notify: tokio::sync::Notify,
}

impl Metrics {
    /// Empty metrics. Inside a Tokio runtime, committed events are counted
    /// by a task of their own, so that the parsing is not done by the
    /// thread publishing them (the SQLite store's writer: 4.7% of its time
    /// through the server in a lifecycle profile).
    pub fn new() -> Metrics {
        let mut metrics = Metrics::default();
        if let Ok(runtime) = tokio::runtime::Handle::try_current() {
            let (tx, mut rx) = tokio::sync::mpsc::unbounded_channel::<Vec<Event>>();
            let progress = Arc::new(Progress::default());
            let counting = metrics.clone();
            let counted = progress.clone();
            runtime.spawn(async move {
                while let Some(events) = rx.recv().await {
                    counting.count(&events);
                    counted.counted.fetch_add(1, Ordering::SeqCst);
                    counted.notify.notify_waiters();
                }
            });
            metrics.counter = Some(Counter { tx, progress });
        }
        metrics
    }

    /// Waits (at most a second) until every batch of events handed over
    /// before the call has been counted, so that a scrape right after a
    /// command sees it.
    pub async fn settled(&self) {
        let Some(counter) = &self.counter else {
            return;
        };
        let progress = &counter.progress;
        let target = progress.sent.load(Ordering::SeqCst);
        let wait = async {
            loop {
                let notified = progress.notify.notified();
                tokio::pin!(notified);
                notified.as_mut().enable();
                if progress.counted.load(Ordering::SeqCst) >= target {
                    return;
                }
                notified.await;
            }
        };
        let _ = tokio::time::timeout(std::time::Duration::from_secs(1), wait).await;
    }

    fn lock(&self) -> MutexGuard<'_, Inner> {
        // A panic while holding the lock leaves plain counters behind: still
        // usable.
        self.inner.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Counts the events of one committed command: hands them to the
    /// counting task (see [`Metrics::new`]; a scrape waits for it,
    /// [`Metrics::settled`]).
    ///
    /// Outcomes (`clew_jobs_total{outcome}`): `completed` for each
    /// `perform_finished` event; for each lifecycle `failed` event,
    /// `failed` when the same command also logged the job's qless `failed`
    /// event (the job landed in a failed group), else `retried` (a failed
    /// attempt that will run again).
    pub fn observe(&self, events: &[Event]) {
        // This runs on the store's writer thread (the engine's event sink),
        // after each command: only a copy of the events counted is made
        // here, for the counting task.
        let Some(counter) = &self.counter else {
            self.count(events);
            return;
        };
        let counted: Vec<Event> = events
            .iter()
            .filter(|e| {
                e.channel == clew_core::logic::LIFECYCLE_CHANNEL
                    || (e.channel == "ql:log" && e.message.contains("\"failed\""))
            })
            .cloned()
            .collect();
        if counted.is_empty() {
            return;
        }
        match counter.tx.send(counted) {
            Ok(()) => {
                counter.progress.sent.fetch_add(1, Ordering::SeqCst);
            }
            // The task is gone (its runtime shut down): count here.
            Err(tokio::sync::mpsc::error::SendError(events)) => self.count(&events),
        }
    }

    /// Counts the events of one committed command: reads only the few
    /// fields counted, never the payload or metadata, and allocates only
    /// for a queue seen first.
    fn count(&self, events: &[Event]) {
        let mut failed_jids: Vec<String> = Vec::new();
        let mut briefs: Vec<LifecycleBrief<'_>> = Vec::new();
        for e in events {
            if e.channel == "ql:log" {
                // Only qless's `failed` log entries matter; most are not.
                if e.message.contains("\"failed\"") {
                    if let Ok(log) = serde_json::from_str::<LogBrief<'_>>(&e.message) {
                        if log.event == "failed" {
                            if let Some(jid) = log.jid {
                                failed_jids.push(jid.into_owned());
                            }
                        }
                    }
                }
            } else if e.channel == clew_core::logic::LIFECYCLE_CHANNEL {
                if let Ok(brief) = serde_json::from_str::<LifecycleBrief<'_>>(&e.message) {
                    briefs.push(brief);
                }
            }
        }
        if briefs.is_empty() {
            return;
        }
        let mut inner = self.lock();
        let inner = &mut *inner;
        for ev in &briefs {
            let queue: &str = &ev.queue;
            *per_queue(&mut inner.kinds, queue)
                .entry(ev.kind.as_str())
                .or_default() += 1;
            let outcome = match ev.kind {
                LifecycleKind::PerformFinished => Some("completed"),
                LifecycleKind::Failed if failed_jids.iter().any(|j| *j == ev.jid) => Some("failed"),
                LifecycleKind::Failed => Some("retried"),
                _ => None,
            };
            if let Some(outcome) = outcome {
                *per_queue(&mut inner.outcomes, queue)
                    .entry(outcome)
                    .or_default() += 1;
            }
            if let Some(t) = ev.time_in_queue {
                histogram(&mut inner.wait, queue).observe(t);
            }
            if let Some(t) = ev.time_to_perform {
                histogram(&mut inner.run, queue).observe(t);
            }
        }
    }

    /// Records the time of one store call.
    pub fn observe_store(&self, call: &'static str, seconds: f64) {
        self.lock()
            .store
            .entry(call)
            .or_insert_with(|| Histogram::new(LATENCY_BUCKETS))
            .observe(seconds);
    }

    /// `store`, with every call timed into `clew_store_seconds`.
    pub fn timed_store(&self, store: Arc<dyn Store>) -> Arc<dyn Store> {
        Arc::new(TimedStore {
            inner: store,
            metrics: self.clone(),
        })
    }

    /// Records the time of one request on `route`.
    pub fn observe_latency(&self, route: &str, seconds: f64) {
        self.lock()
            .latency
            .entry(route.to_owned())
            .or_insert_with(|| Histogram::new(LATENCY_BUCKETS))
            .observe(seconds);
    }

    /// The counted figures in the text format.
    fn render_counted(&self, out: &mut String) {
        let inner = self.lock();
        header_line(
            out,
            "clew_jobs_total",
            "counter",
            "Jobs that finished an attempt through this server, by queue and outcome (completed, failed, retried).",
        );
        for (queue, outcomes) in &inner.outcomes {
            for (outcome, n) in outcomes {
                let _ = writeln!(
                    out,
                    "clew_jobs_total{{queue=\"{}\",outcome=\"{outcome}\"}} {n}",
                    escape(queue)
                );
            }
        }
        header_line(
            out,
            "clew_lifecycle_events_total",
            "counter",
            "Lifecycle events committed through this server, by queue and kind.",
        );
        for (queue, kinds) in &inner.kinds {
            for (kind, n) in kinds {
                let _ = writeln!(
                    out,
                    "clew_lifecycle_events_total{{queue=\"{}\",kind=\"{kind}\"}} {n}",
                    escape(queue)
                );
            }
        }
        for (name, help, map) in [
            (
                "clew_job_wait_seconds",
                "Time jobs spent in the queue before being handed to a worker.",
                &inner.wait,
            ),
            (
                "clew_job_run_seconds",
                "Time jobs took to perform (finished or failed attempts).",
                &inner.run,
            ),
        ] {
            header_line(out, name, "histogram", help);
            for (queue, h) in map {
                h.render(out, name, "queue", queue);
            }
        }
        header_line(
            out,
            "clew_store_seconds",
            "histogram",
            "Time of each call into the store, by command.",
        );
        for (call, h) in &inner.store {
            h.render(out, "clew_store_seconds", "command", call);
        }
        header_line(
            out,
            "clew_http_request_seconds",
            "histogram",
            "Time the server spent on each HTTP request, by route.",
        );
        for (route, h) in &inner.latency {
            h.render(out, "clew_http_request_seconds", "route", route);
        }
    }
}

/// The fields of a lifecycle event the metrics count (the payload,
/// metadata and the rest are skipped, not built).
#[derive(serde::Deserialize)]
struct LifecycleBrief<'a> {
    kind: LifecycleKind,
    #[serde(borrow)]
    jid: std::borrow::Cow<'a, str>,
    #[serde(borrow)]
    queue: std::borrow::Cow<'a, str>,
    #[serde(default)]
    time_in_queue: Option<f64>,
    #[serde(default)]
    time_to_perform: Option<f64>,
}

/// The fields of a qless `ql:log` entry that tell a failure.
#[derive(serde::Deserialize)]
struct LogBrief<'a> {
    #[serde(borrow)]
    event: std::borrow::Cow<'a, str>,
    #[serde(default, borrow)]
    jid: Option<std::borrow::Cow<'a, str>>,
}

/// `map[queue]`, created empty the first time (the only allocation).
fn per_queue<'m, V: Default>(map: &'m mut BTreeMap<String, V>, queue: &str) -> &'m mut V {
    if !map.contains_key(queue) {
        map.insert(queue.to_owned(), V::default());
    }
    map.get_mut(queue).expect("just inserted")
}

/// The job time histogram of `queue`, created empty the first time.
fn histogram<'m>(map: &'m mut BTreeMap<String, Histogram>, queue: &str) -> &'m mut Histogram {
    if !map.contains_key(queue) {
        map.insert(queue.to_owned(), Histogram::new(JOB_BUCKETS));
    }
    map.get_mut(queue).expect("just inserted")
}

/// A store whose every call is timed into [`Metrics`].
#[derive(Debug)]
struct TimedStore {
    inner: Arc<dyn Store>,
    metrics: Metrics,
}

impl TimedStore {
    fn record<T>(&self, call: &'static str, started: Instant, r: T) -> T {
        self.metrics
            .observe_store(call, started.elapsed().as_secs_f64());
        r
    }
}

#[async_trait]
impl Store for TimedStore {
    async fn execute_from(
        &self,
        now: Timestamp,
        origin: Origin,
        command: Command,
        sink: Arc<dyn EventSink>,
    ) -> clew_core::Result<Reply> {
        let (call, started) = (command.name(), Instant::now());
        let r = self.inner.execute_from(now, origin, command, sink).await;
        self.record(call, started, r)
    }

    async fn execute(
        &self,
        now: Timestamp,
        command: Command,
        sink: Arc<dyn EventSink>,
    ) -> clew_core::Result<Reply> {
        let (call, started) = (command.name(), Instant::now());
        let r = self.inner.execute(now, command, sink).await;
        self.record(call, started, r)
    }

    async fn events_after(&self, after: i64, limit: i64) -> clew_core::Result<Vec<Event>> {
        let started = Instant::now();
        let r = self.inner.events_after(after, limit).await;
        self.record("events_after", started, r)
    }

    async fn flush(&self) -> clew_core::Result<()> {
        let started = Instant::now();
        let r = self.inner.flush().await;
        self.record("flush", started, r)
    }

    async fn events_prune(&self, before_seq: i64) -> clew_core::Result<u64> {
        let started = Instant::now();
        let r = self.inner.events_prune(before_seq).await;
        self.record("events_prune", started, r)
    }

    async fn ready_hint(
        &self,
        queue: &str,
        at: Timestamp,
        limit: usize,
    ) -> clew_core::Result<Option<usize>> {
        let started = Instant::now();
        let r = self.inner.ready_hint(queue, at, limit).await;
        self.record("ready_hint", started, r)
    }

    fn subscribe_commits(&self) -> Option<tokio::sync::watch::Receiver<i64>> {
        self.inner.subscribe_commits()
    }

    fn shared_cursors(&self) -> bool {
        self.inner.shared_cursors()
    }

    async fn cursor_load(&self, name: &str) -> clew_core::Result<Option<i64>> {
        self.inner.cursor_load(name).await
    }

    async fn cursor_save(&self, name: &str, seq: i64) -> clew_core::Result<()> {
        self.inner.cursor_save(name, seq).await
    }

    async fn try_lead(
        &self,
        name: &str,
    ) -> clew_core::Result<Option<clew_core::store::LeaderGuard>> {
        self.inner.try_lead(name).await
    }

    async fn close(&self) -> clew_core::Result<()> {
        self.inner.close().await
    }
}

/// Failed jobs per queue: every failed group's jids, then their jobs'
/// queues (a page of jids at a time). `None` when more than `max` jobs are
/// failed in all (the cost grows with the number of failed jobs).
pub(crate) async fn failed_by_queue(
    engine: &clew_core::Engine,
    groups: &[(String, i64)],
    max: Option<i64>,
) -> Result<Option<BTreeMap<String, u64>>, ApiError> {
    const PAGE: i64 = 500;
    if max.is_some_and(|max| groups.iter().map(|(_, n)| n).sum::<i64>() > max) {
        return Ok(None);
    }
    let mut out = BTreeMap::new();
    for (group, _) in groups {
        let mut start = 0;
        loop {
            let page = engine
                .execute(Command::Failed {
                    group: Some(group.clone()),
                    start,
                    limit: PAGE,
                })
                .await?;
            let Reply::Page { jobs: jids, .. } = page else {
                break;
            };
            let n = jids.len() as i64;
            if n > 0 {
                if let Reply::Jobs(jobs) = engine.execute(Command::MultiGet { jids }).await? {
                    for job in jobs {
                        *out.entry(job.record.queue.clone()).or_default() += 1;
                    }
                }
            }
            if n < PAGE {
                break;
            }
            start += n;
        }
    }
    Ok(Some(out))
}

fn header_line(out: &mut String, name: &str, kind: &str, help: &str) {
    let _ = writeln!(out, "# HELP {name} {help}");
    let _ = writeln!(out, "# TYPE {name} {kind}");
}

/// Escapes a label value (backslash, double quote, newline).
fn escape(v: &str) -> String {
    v.replace('\\', "\\\\")
        .replace('"', "\\\"")
        .replace('\n', "\\n")
}

/// A float in the text format (`+Inf`, `-Inf`, `NaN` spelled out).
fn float(v: f64) -> String {
    if v.is_nan() {
        "NaN".to_owned()
    } else if v == f64::INFINITY {
        "+Inf".to_owned()
    } else if v == f64::NEG_INFINITY {
        "-Inf".to_owned()
    } else {
        format!("{v}")
    }
}

/// The `/metrics` route.
pub fn routes() -> Router<AppState> {
    Router::new().route("/metrics", get(scrape))
}

/// `GET /metrics`: every figure in the Prometheus text format.
pub async fn scrape(State(state): State<AppState>) -> Result<Response, ApiError> {
    let engine = state.engine();
    let mut out = String::new();

    let failed = engine
        .execute(Command::Failed {
            group: None,
            start: 0,
            limit: 0,
        })
        .await?;
    let groups = match failed {
        Reply::FailedGroups(groups) => groups,
        _ => Vec::new(),
    };
    let mut failed_in = failed_by_queue(engine, &groups, None)
        .await?
        .unwrap_or_default();

    let queues = engine.execute(Command::Queues { queue: None }).await?;
    header_line(
        &mut out,
        "clew_jobs",
        "gauge",
        "Jobs by queue and state (recurring: templates).",
    );
    let mut paused = String::new();
    if let Reply::Queues(qs) = &queues {
        for q in qs {
            let name = escape(&q.name);
            let failed = failed_in.remove(&q.name).unwrap_or(0);
            for (st, n) in [
                ("waiting", q.counts.waiting),
                ("running", q.counts.running),
                ("stalled", q.counts.stalled),
                ("scheduled", q.counts.scheduled),
                ("depends", q.counts.depends),
                ("recurring", q.recurring),
                ("failed", failed as i64),
            ] {
                let _ = writeln!(out, "clew_jobs{{queue=\"{name}\",state=\"{st}\"}} {n}");
            }
            let _ = writeln!(
                paused,
                "clew_queue_paused{{queue=\"{name}\"}} {}",
                u8::from(q.paused)
            );
        }
    }
    // Failed jobs of queues the queue list no longer shows.
    for (queue, n) in failed_in {
        let _ = writeln!(
            out,
            "clew_jobs{{queue=\"{}\",state=\"failed\"}} {n}",
            escape(&queue)
        );
    }
    header_line(
        &mut out,
        "clew_queue_paused",
        "gauge",
        "1 when the queue is paused.",
    );
    out.push_str(&paused);

    header_line(
        &mut out,
        "clew_failed_jobs",
        "gauge",
        "Failed jobs by failure group.",
    );
    for (group, n) in &groups {
        let _ = writeln!(out, "clew_failed_jobs{{group=\"{}\"}} {n}", escape(group));
    }

    let workers = engine
        .execute(Command::Workers {
            worker: None,
            detail: false,
        })
        .await?;
    header_line(&mut out, "clew_workers", "gauge", "Known workers.");
    if let Reply::Workers(ws) = &workers {
        let _ = writeln!(out, "clew_workers {}", ws.len());
    }

    header_line(
        &mut out,
        "clew_sink_lag_events",
        "gauge",
        "Lifecycle events each publishing sink is behind.",
    );
    for (sink, lag) in state.sink_lags() {
        let _ = writeln!(
            out,
            "clew_sink_lag_events{{sink=\"{}\"}} {lag}",
            escape(&sink)
        );
    }

    state.metrics().settled().await;
    state.metrics().render_counted(&mut out);
    Ok((
        StatusCode::OK,
        [(
            header::CONTENT_TYPE,
            "text/plain; version=0.0.4; charset=utf-8",
        )],
        out,
    )
        .into_response())
}

/// Middleware recording each request's time under its matched route.
pub async fn time_requests(State(state): State<AppState>, req: Request, next: Next) -> Response {
    let route = req
        .extensions()
        .get::<MatchedPath>()
        .map(|p| p.as_str().to_owned());
    let started = Instant::now();
    let resp = next.run(req).await;
    if let Some(route) = route {
        state
            .metrics()
            .observe_latency(&route, started.elapsed().as_secs_f64());
    }
    resp
}
