//! Wiring of lifecycle-event publishing (`--publish SPEC`, `--marshal`) for
//! `clew server` and `clew work`: one delivery loop per sink, reading the
//! durable lifecycle log after that sink's cursor, so a restarted process
//! resumes where each sink stopped.
//!
//! Where cursors live ([`Cursors`]):
//! * **Files** under the cursor directory (the SQLite store, one machine;
//!   a worker on `--url`).
//! * **The store** when it keeps them itself ([`Store::shared_cursors`]:
//!   PostgreSQL). Then several processes on one database may configure the
//!   same sink, and each sink is delivered by one of them at a time: its
//!   loop reads the log only while [`Store::try_lead`] made this process
//!   the sink's leader ([`LeadSource`]; others retry every
//!   [`LEAD_RETRY`]), starting from the cursor in the database, so a
//!   failover resumes where the previous leader stopped.
//!
//! The log is read from the store itself ([`StoreSource`]: the server, or a
//! worker on `--db`) or from a server over HTTP ([`HttpSource`]: a worker on
//! `--url`, paging `GET /v1/events/search` by sequence number). Either way
//! it is the same log, so a sink is configured in one place only.

use std::path::PathBuf;
use std::sync::atomic::{AtomicI64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use anyhow::Context;
use async_trait::async_trait;
use clew_core::lifecycle::{LifecycleError, LifecycleKind, Origin};
use clew_core::store::LeaderGuard;
use clew_core::{Error, Event, LifecycleEvent, Store, Timestamp};
use clew_events::{CursorStore, Delivery, DeliveryHandle, EventSource, FileCursorStore};
use serde_json::Value;
use tokio::task::JoinHandle;

/// How long [`Publishing::stop`] waits for the sinks to catch up.
const DRAIN: Duration = Duration::from_secs(3);

/// How often a process that does not lead a sink tries to take it over.
pub const LEAD_RETRY: Duration = Duration::from_secs(1);

/// The store's durable event log, as lifecycle events only.
pub struct StoreSource(pub Arc<dyn Store>);

#[async_trait]
impl EventSource for StoreSource {
    async fn events_after(&self, seq: i64, limit: i64) -> clew_core::Result<Vec<LifecycleEvent>> {
        let events = clew_core::store::events_after_matching(self.0.as_ref(), seq, limit, |e| {
            e.channel == clew_core::logic::LIFECYCLE_CHANNEL
        })
        .await?;
        Ok(events.iter().filter_map(Event::lifecycle).collect())
    }
}

/// A server's lifecycle log, read over HTTP: `GET /v1/events/search`
/// paged by sequence number (`after`, `limit`), with the API token.
pub struct HttpSource {
    http: reqwest::Client,
    base: String,
    token: Option<String>,
}

impl HttpSource {
    /// The log of the server at `base` (`http://HOST:PORT`).
    pub fn new(base: &str, token: Option<String>) -> anyhow::Result<HttpSource> {
        let http = reqwest::Client::builder()
            .timeout(Duration::from_secs(30))
            .build()
            .context("cannot build an HTTP client")?;
        Ok(HttpSource {
            http,
            base: base.trim_end_matches('/').to_owned(),
            token: token.filter(|t| !t.is_empty()),
        })
    }
}

#[async_trait]
impl EventSource for HttpSource {
    async fn events_after(&self, seq: i64, limit: i64) -> clew_core::Result<Vec<LifecycleEvent>> {
        let url = format!("{}/v1/events/search", self.base);
        let limit = limit.clamp(1, 10_000);
        let mut req = self
            .http
            .get(&url)
            .query(&[("after", seq.to_string()), ("limit", limit.to_string())]);
        if let Some(t) = &self.token {
            req = req.bearer_auth(t);
        }
        let resp = req
            .send()
            .await
            .map_err(|e| Error::store(format!("{url}: {e}")))?;
        let status = resp.status();
        let body: Value = resp
            .json()
            .await
            .map_err(|e| Error::store(format!("{url}: unexpected reply: {e}")))?;
        if !status.is_success() {
            let msg = body["error"]["message"].as_str().unwrap_or("no message");
            return Err(Error::store(format!("{url}: {status}: {msg}")));
        }
        body["events"]
            .as_array()
            .ok_or_else(|| Error::store(format!("{url}: reply without an events list")))?
            .iter()
            .map(event_from_json)
            .collect()
    }
}

/// A lifecycle event from the search endpoint's JSON (the inverse of
/// `clew_core::analytics::event_json`).
pub fn event_from_json(v: &Value) -> clew_core::Result<LifecycleEvent> {
    let bad = |what: &str| Error::store(format!("lifecycle event with {what}: {v}"));
    let text = |k: &str| v[k].as_str().map(str::to_owned).ok_or_else(|| bad(k));
    let error = match &v["error"] {
        Value::Null => None,
        e => Some(LifecycleError {
            class: e["class"].as_str().unwrap_or_default().to_owned(),
            message: e["message"].as_str().unwrap_or_default().to_owned(),
            backtrace: e["backtrace"].as_str().map(str::to_owned),
        }),
    };
    Ok(LifecycleEvent {
        seq: v["seq"].as_i64().ok_or_else(|| bad("no seq"))?,
        kind: v["event_type"]
            .as_str()
            .and_then(LifecycleKind::parse)
            .ok_or_else(|| bad("an unknown event_type"))?,
        at: v["timestamp"]
            .as_f64()
            .and_then(Timestamp::from_secs_f64)
            .ok_or_else(|| bad("no timestamp"))?,
        jid: text("jid")?,
        queue: text("queue")?,
        klass: text("klass")?,
        args: v["args"].clone(),
        metadata: v["metadata"].as_object().cloned().unwrap_or_default(),
        origin: Origin {
            hostname: v["origin"]["hostname"]
                .as_str()
                .unwrap_or_default()
                .to_owned(),
            process: v["origin"]["process"]
                .as_u64()
                .and_then(|p| u32::try_from(p).ok())
                .unwrap_or(0),
        },
        time_in_queue: v["time_in_queue"].as_f64(),
        time_to_perform: v["time_to_perform"].as_f64(),
        error,
    })
}

/// Where the sinks' cursors are kept.
pub enum Cursors {
    /// One file per sink in this directory.
    Files(PathBuf),
    /// In the store, shared by every process using it; each sink delivered
    /// only while this process leads it.
    Store(Arc<dyn Store>),
}

impl Cursors {
    /// The store's own cursors when it keeps them
    /// ([`Store::shared_cursors`]), else files in `dir`; `None` when files
    /// are needed and no directory was given.
    pub fn for_store(store: &Arc<dyn Store>, dir: Option<PathBuf>) -> Option<Cursors> {
        if store.shared_cursors() {
            Some(Cursors::Store(store.clone()))
        } else {
            dir.map(Cursors::Files)
        }
    }
}

/// Runs a store call from the synchronous [`CursorStore`] methods, which
/// the delivery loop calls inside its task: on a multi-threaded runtime the
/// task's thread blocks in place, otherwise the call runs on a helper
/// thread with a runtime of its own.
fn block_on<T: Send>(f: impl std::future::Future<Output = T> + Send) -> std::io::Result<T> {
    use tokio::runtime::{Handle, RuntimeFlavor};
    match Handle::try_current() {
        Ok(h) if h.runtime_flavor() == RuntimeFlavor::MultiThread => {
            Ok(tokio::task::block_in_place(|| h.block_on(f)))
        }
        _ => std::thread::scope(|scope| {
            scope
                .spawn(|| {
                    tokio::runtime::Builder::new_current_thread()
                        .enable_all()
                        .build()
                        .map(|rt| rt.block_on(f))
                })
                .join()
                .map_err(|_| std::io::Error::other("cursor helper thread panicked"))?
        }),
    }
}

/// Sinks' cursors kept in the store ([`Store::cursor_load`],
/// [`Store::cursor_save`]).
pub struct StoreCursors(pub Arc<dyn Store>);

impl CursorStore for StoreCursors {
    fn load(&self, name: &str) -> std::io::Result<i64> {
        block_on(self.0.cursor_load(name))?
            .map(|c| c.unwrap_or(0))
            .map_err(std::io::Error::other)
    }

    fn save(&self, name: &str, seq: i64) -> std::io::Result<()> {
        block_on(self.0.cursor_save(name, seq))?.map_err(std::io::Error::other)
    }
}

/// The lifecycle log as one sink's delivery loop sees it on a shared
/// store: empty unless this process leads the sink. Leadership is tried
/// at most every [`LEAD_RETRY`] and checked before every read; on taking
/// it, reading starts after the cursor saved in the store (the previous
/// leader's progress), or after the loop's own if that is further.
pub struct LeadSource {
    inner: Arc<dyn EventSource>,
    store: Arc<dyn Store>,
    name: String,
    guard: Mutex<Option<LeaderGuard>>,
    /// The store's cursor when the leadership was taken.
    floor: AtomicI64,
    next_try: Mutex<Instant>,
}

impl LeadSource {
    /// `inner` for sink `name`, led through `store`.
    pub fn new(inner: Arc<dyn EventSource>, store: Arc<dyn Store>, name: &str) -> LeadSource {
        LeadSource {
            inner,
            store,
            name: name.to_owned(),
            guard: Mutex::new(None),
            floor: AtomicI64::new(0),
            next_try: Mutex::new(Instant::now()),
        }
    }

    /// Whether this process leads the sink now.
    pub fn leading(&self) -> bool {
        self.guard
            .lock()
            .map(|g| g.as_ref().is_some_and(LeaderGuard::is_held))
            .unwrap_or(false)
    }

    /// Gives the leadership up (another process takes the sink over).
    pub fn resign(&self) {
        if let Ok(mut g) = self.guard.lock() {
            if g.take().is_some() {
                tracing::info!(sink = %self.name, "handing the sink over");
            }
        }
    }

    /// Whether this process leads the sink, trying to take it if the
    /// last try is old enough.
    async fn ensure_leading(&self) -> clew_core::Result<bool> {
        {
            let mut g = self.guard.lock().map_err(|_| poisoned())?;
            match g.as_ref() {
                Some(guard) if guard.is_held() => return Ok(true),
                Some(_) => {
                    tracing::warn!(sink = %self.name, "lost the leadership of the sink");
                    *g = None;
                }
                None => {}
            }
        }
        {
            let mut next = self.next_try.lock().map_err(|_| poisoned())?;
            let now = Instant::now();
            if now < *next {
                return Ok(false);
            }
            *next = now + LEAD_RETRY;
        }
        let Some(guard) = self.store.try_lead(&self.name).await? else {
            return Ok(false);
        };
        // On an error the guard is dropped: the leadership is given back.
        let floor = self.store.cursor_load(&self.name).await?.unwrap_or(0);
        self.floor.store(floor, Ordering::SeqCst);
        tracing::info!(sink = %self.name, cursor = floor, "leading the sink");
        *self.guard.lock().map_err(|_| poisoned())? = Some(guard);
        Ok(true)
    }
}

fn poisoned() -> Error {
    Error::store("publishing state poisoned")
}

#[async_trait]
impl EventSource for LeadSource {
    async fn events_after(&self, seq: i64, limit: i64) -> clew_core::Result<Vec<LifecycleEvent>> {
        if !self.ensure_leading().await? {
            return Ok(Vec::new());
        }
        let from = seq.max(self.floor.load(Ordering::SeqCst));
        self.inner.events_after(from, limit).await
    }

    async fn latest_seq(&self) -> clew_core::Result<Option<i64>> {
        self.inner.latest_seq().await
    }
}

/// Wakes `handles` whenever any process sharing the store commits
/// ([`Store::subscribe_commits`]), so a leader delivers other servers'
/// events at once rather than at its next poll.
fn wake_on_commits(
    mut commits: tokio::sync::watch::Receiver<i64>,
    handles: Vec<DeliveryHandle>,
) -> JoinHandle<()> {
    tokio::spawn(async move {
        while commits.changed().await.is_ok() {
            let seq = *commits.borrow_and_update();
            for h in &handles {
                h.notify_seq(seq);
            }
        }
    })
}

/// One sink's running loop.
struct Loop {
    handle: DeliveryHandle,
    task: JoinHandle<()>,
    /// Its leadership, on a shared store.
    lead: Option<Arc<LeadSource>>,
}

/// Running delivery loops.
pub struct Publishing {
    loops: Vec<Loop>,
    publishers: Vec<Arc<dyn clew_events::Publisher>>,
    cursors: Option<Keeper>,
    source: Option<Arc<dyn EventSource>>,
    /// Wakes the loops on other processes' commits (a shared store that
    /// announces them).
    waker: Option<JoinHandle<()>>,
}

/// Where [`Publishing`] keeps and reads back saved cursors.
enum Keeper {
    Files(Arc<FileCursorStore>),
    Store(Arc<dyn Store>),
}

/// What one sink's delivery loop reads, where it saves its cursor, and its
/// leadership (on a shared store).
type SinkWiring = (
    Arc<dyn EventSource>,
    Arc<dyn CursorStore>,
    Option<Arc<LeadSource>>,
);

impl Keeper {
    /// The wiring of sink `spec` over `source`.
    fn for_sink(&self, source: &Arc<dyn EventSource>, spec: &str) -> SinkWiring {
        match self {
            Keeper::Files(files) => (source.clone(), files.clone(), None),
            Keeper::Store(store) => {
                let lead = Arc::new(LeadSource::new(source.clone(), store.clone(), spec));
                (
                    lead.clone(),
                    Arc::new(StoreCursors(store.clone())),
                    Some(lead),
                )
            }
        }
    }
}

impl Publishing {
    /// No sinks.
    pub fn none() -> Publishing {
        Publishing {
            loops: Vec::new(),
            publishers: Vec::new(),
            cursors: None,
            source: None,
            waker: None,
        }
    }

    /// Starts one delivery loop per spec on `source`, keeping cursors as
    /// `cursors` says.
    pub async fn start(
        source: Arc<dyn EventSource>,
        specs: &[String],
        marshal: &str,
        cursors: Cursors,
    ) -> anyhow::Result<Publishing> {
        let mut loops = Vec::new();
        let mut publishers = Vec::new();
        if specs.is_empty() {
            return Ok(Publishing::none());
        }
        let marshaller = clew_events::marshaller_from_name(marshal)
            .map_err(|e| Error::invalid(format!("--marshal: {e}")))?;
        let keeper = match cursors {
            Cursors::Files(dir) => {
                Keeper::Files(Arc::new(FileCursorStore::new(&dir).with_context(|| {
                    format!("--cursor-dir: cannot create {}", dir.display())
                })?))
            }
            Cursors::Store(store) => Keeper::Store(store),
        };
        for spec in specs {
            let publisher = clew_events::publisher_from_spec(spec)
                .await
                .map_err(|e| Error::invalid(format!("--publish: {e}")))?;
            publishers.push(publisher.clone());
            let (loop_source, cursor_store, lead) = keeper.for_sink(&source, spec);
            let delivery = Delivery::new(
                spec.clone(),
                loop_source,
                publisher,
                marshaller.clone(),
                cursor_store,
            );
            let (handle, task) = delivery.spawn();
            loops.push(Loop { handle, task, lead });
        }
        let waker = match &keeper {
            Keeper::Store(store) => store.subscribe_commits().map(|commits| {
                wake_on_commits(commits, loops.iter().map(|l| l.handle.clone()).collect())
            }),
            Keeper::Files(_) => None,
        };
        Ok(Publishing {
            loops,
            publishers,
            cursors: Some(keeper),
            source: Some(source),
            waker,
        })
    }

    /// Handles on the loops (to wake them).
    pub fn handles(&self) -> Vec<DeliveryHandle> {
        self.loops.iter().map(|l| l.handle.clone()).collect()
    }

    /// The publishers (to reopen files on SIGHUP).
    pub fn publishers(&self) -> Vec<Arc<dyn clew_events::Publisher>> {
        self.publishers.clone()
    }

    /// The saved cursor of sink `name`.
    async fn saved(keeper: &Keeper, name: &str) -> Option<i64> {
        match keeper {
            Keeper::Files(files) => files.load(name).ok(),
            Keeper::Store(store) => store.cursor_load(name).await.ok().map(|c| c.unwrap_or(0)),
        }
    }

    /// Whether every sink this process delivers has taken every event in
    /// the log and its saved cursor says so (a sink led by another
    /// process is that process's to drain).
    async fn drained(&self) -> bool {
        let (Some(keeper), Some(source)) = (&self.cursors, &self.source) else {
            return true;
        };
        for l in &self.loops {
            if l.lead.as_ref().is_some_and(|lead| !lead.leading()) {
                continue;
            }
            let cursor = l.handle.status().cursor();
            let Some(saved) = Publishing::saved(keeper, l.handle.name()).await else {
                return false;
            };
            // A shared cursor may be ahead of this loop's (taken over from
            // the previous leader, nothing new since); never behind it.
            let caught_up = match keeper {
                Keeper::Files(_) => saved == cursor,
                Keeper::Store(_) => saved >= cursor,
            };
            if !caught_up {
                return false;
            }
            match source.events_after(saved.max(cursor), 1).await {
                Ok(more) if more.is_empty() => {}
                _ => return false,
            }
        }
        true
    }

    /// Stops the loops and waits for them: first gives the sinks up to a
    /// few seconds to catch up and save their cursors (so a restart does
    /// not send the last events again), then stops them wherever they are
    /// (delivery stays at-least-once), and gives up their leadership.
    pub async fn stop(self) {
        let deadline = Instant::now() + DRAIN;
        for l in &self.loops {
            l.handle.wake();
        }
        while Instant::now() < deadline && !self.drained().await {
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        for l in &self.loops {
            l.handle.stop();
        }
        if let Some(waker) = &self.waker {
            waker.abort();
        }
        for l in self.loops {
            let _ = l.task.await;
            if let Some(lead) = l.lead {
                lead.resign();
            }
        }
    }
}
