//! Wiring of lifecycle-event publishing (`--publish SPEC`, `--marshal`) for
//! `clew server` and `clew work`: one delivery loop per sink, reading the
//! durable lifecycle log after that sink's cursor (kept in files under the
//! cursor directory, so a restarted process resumes where each sink
//! stopped).
//!
//! The log is read from the store itself ([`StoreSource`]: the server, or a
//! worker on `--db`) or from a server over HTTP ([`HttpSource`]: a worker on
//! `--url`, paging `GET /v1/events/search` by sequence number). Either way
//! it is the same log, so a sink is configured in one place only.

use std::path::PathBuf;
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::Context;
use async_trait::async_trait;
use clew_core::lifecycle::{LifecycleError, LifecycleKind, Origin};
use clew_core::{Error, Event, LifecycleEvent, Store, Timestamp};
use clew_events::{CursorStore, Delivery, DeliveryHandle, EventSource, FileCursorStore};
use serde_json::Value;
use tokio::task::JoinHandle;

/// How long [`Publishing::stop`] waits for the sinks to catch up.
const DRAIN: Duration = Duration::from_secs(3);

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

/// Running delivery loops.
pub struct Publishing {
    loops: Vec<(DeliveryHandle, JoinHandle<()>)>,
    publishers: Vec<Arc<dyn clew_events::Publisher>>,
    cursors: Option<Arc<FileCursorStore>>,
    source: Option<Arc<dyn EventSource>>,
}

impl Publishing {
    /// No sinks.
    pub fn none() -> Publishing {
        Publishing {
            loops: Vec::new(),
            publishers: Vec::new(),
            cursors: None,
            source: None,
        }
    }

    /// Starts one delivery loop per spec on `source`, keeping cursors in
    /// `cursor_dir`.
    pub async fn start(
        source: Arc<dyn EventSource>,
        specs: &[String],
        marshal: &str,
        cursor_dir: PathBuf,
    ) -> anyhow::Result<Publishing> {
        let mut loops = Vec::new();
        let mut publishers = Vec::new();
        if specs.is_empty() {
            return Ok(Publishing::none());
        }
        let marshaller = clew_events::marshaller_from_name(marshal)
            .map_err(|e| Error::invalid(format!("--marshal: {e}")))?;
        let cursors =
            Arc::new(FileCursorStore::new(&cursor_dir).with_context(|| {
                format!("--cursor-dir: cannot create {}", cursor_dir.display())
            })?);
        for spec in specs {
            let publisher = clew_events::publisher_from_spec(spec)
                .await
                .map_err(|e| Error::invalid(format!("--publish: {e}")))?;
            publishers.push(publisher.clone());
            let delivery = Delivery::new(
                spec.clone(),
                source.clone(),
                publisher,
                marshaller.clone(),
                cursors.clone(),
            );
            loops.push(delivery.spawn());
        }
        Ok(Publishing {
            loops,
            publishers,
            cursors: Some(cursors),
            source: Some(source),
        })
    }

    /// Handles on the loops (to wake them).
    pub fn handles(&self) -> Vec<DeliveryHandle> {
        self.loops.iter().map(|(h, _)| h.clone()).collect()
    }

    /// The publishers (to reopen files on SIGHUP).
    pub fn publishers(&self) -> Vec<Arc<dyn clew_events::Publisher>> {
        self.publishers.clone()
    }

    /// Whether every sink has taken every event in the log and its cursor
    /// file says so.
    async fn drained(&self) -> bool {
        let (Some(cursors), Some(source)) = (&self.cursors, &self.source) else {
            return true;
        };
        for (h, _) in &self.loops {
            let cursor = h.status().cursor();
            if cursors.load(h.name()).ok() != Some(cursor) {
                return false;
            }
            match source.events_after(cursor, 1).await {
                Ok(more) if more.is_empty() => {}
                _ => return false,
            }
        }
        true
    }

    /// Stops the loops and waits for them: first gives the sinks up to a
    /// few seconds to catch up and save their cursors (so a restart does
    /// not send the last events again), then stops them wherever they are
    /// (delivery stays at-least-once).
    pub async fn stop(self) {
        let deadline = Instant::now() + DRAIN;
        for (h, _) in &self.loops {
            h.wake();
        }
        while Instant::now() < deadline && !self.drained().await {
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        for (h, _) in &self.loops {
            h.stop();
        }
        for (_, task) in self.loops {
            let _ = task.await;
        }
    }
}
