//! [`AppState`]: what every handler shares.

use std::sync::Arc;

use clew_core::{Engine, Event, EventSink, Timestamp};
use tokio::sync::watch;

use crate::metrics::{Metrics, SinkLags};

/// Server settings.
#[derive(Clone, Debug)]
pub struct ServerConfig {
    /// Test mode: callers may supply `now` (the compatibility endpoint's
    /// `now` field, the `X-Clew-Now` header elsewhere) and may flush all
    /// state. Refused unless bound to a loopback address (the binary checks).
    /// Defaults to off.
    pub test_mode: bool,
    /// The API token: when set, every route but `/healthz` requires
    /// `Authorization: Bearer <token>`. Required when binding a non-loopback
    /// address (the binary checks). Defaults to none.
    pub token: Option<String>,
    /// Largest request body accepted, in bytes; larger bodies get 413.
    /// Defaults to 1 MiB.
    pub body_limit: usize,
    /// Request headers whose values become metadata of every job put
    /// through the server (resque-clues' item preprocessor, header-derived):
    /// `(header name, metadata key)` pairs. The put's own metadata wins.
    /// Defaults to none.
    pub metadata_headers: Vec<(String, String)>,
    /// The namespace this server serves (`clew --namespace`); requests
    /// naming another in `X-Clew-Namespace` get 409. Defaults to `default`.
    pub namespace: String,
}

impl ServerConfig {
    /// The metadata that `headers` carry under [`ServerConfig::metadata_headers`].
    pub fn header_metadata(
        &self,
        headers: &axum::http::HeaderMap,
    ) -> serde_json::Map<String, serde_json::Value> {
        let mut m = serde_json::Map::new();
        for (name, key) in &self.metadata_headers {
            if let Some(v) = headers.get(name.as_str()).and_then(|v| v.to_str().ok()) {
                m.insert(key.clone(), serde_json::Value::from(v.trim()));
            }
        }
        m
    }

    /// Adds the header-derived metadata to a put (the put's own keys win).
    pub fn apply_header_metadata(
        &self,
        headers: &axum::http::HeaderMap,
        command: &mut clew_core::Command,
    ) {
        if let clew_core::Command::Put(p) = command {
            let extra = self.header_metadata(headers);
            if !extra.is_empty() {
                let m = p.metadata.get_or_insert_with(Default::default);
                for (k, v) in extra {
                    m.entry(k).or_insert(v);
                }
            }
        }
    }
}

impl Default for ServerConfig {
    fn default() -> ServerConfig {
        ServerConfig {
            test_mode: false,
            token: None,
            body_limit: 1024 * 1024,
            metadata_headers: Vec::new(),
            namespace: crate::namespace::DEFAULT.to_owned(),
        }
    }
}

/// The engine, the settings, the latest committed event number (which
/// wakes event streams), and the shutdown flag (which ends them).
///
/// Cheap to clone (one shared allocation): axum clones it for every
/// middleware layer and extractor of every request.
#[derive(Clone)]
pub struct AppState {
    inner: Arc<StateInner>,
}

struct StateInner {
    engine: Engine,
    config: ServerConfig,
    latest: watch::Receiver<i64>,
    shutdown: Arc<watch::Sender<bool>>,
    metrics: Metrics,
    sink_lags: Option<SinkLags>,
    session_key: crate::ui::session::SessionKey,
}

impl std::fmt::Debug for AppState {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("AppState")
            .field("engine", &self.inner.engine)
            .field("config", &self.inner.config)
            .field("latest", &self.inner.latest)
            .field("shutdown", &self.inner.shutdown)
            .field("metrics", &self.inner.metrics)
            .field("sink_lags", &self.inner.sink_lags.is_some())
            .finish()
    }
}

/// The sink the server's engine publishes to: it records the latest event
/// number so that event streams wake up and read the durable log, and
/// counts them into the server's [`Metrics`].
#[derive(Debug)]
struct WakeSink(watch::Sender<i64>, Metrics);

impl EventSink for WakeSink {
    fn publish(&self, events: &[Event]) {
        self.1.observe(events);
        if let Some(last) = events.last() {
            self.0.send_if_modified(|seq| {
                let newer = last.seq > *seq;
                if newer {
                    *seq = last.seq;
                }
                newer
            });
        }
    }
}

/// Wakes event streams when any process sharing the store commits (a
/// store that announces commits: [`clew_core::Store::subscribe_commits`]),
/// rather than at their next poll. Needs a Tokio runtime (without one,
/// streams poll); ends with the store's announcements or the server state.
fn forward_commits(mut commits: watch::Receiver<i64>, wake: watch::Sender<i64>) {
    let Ok(runtime) = tokio::runtime::Handle::try_current() else {
        tracing::debug!("no Tokio runtime: event streams poll for other processes' commits");
        return;
    };
    runtime.spawn(async move {
        loop {
            tokio::select! {
                changed = commits.changed() => if changed.is_err() { return },
                () = wake.closed() => return,
            }
            let seq = *commits.borrow_and_update();
            wake.send_if_modified(|latest| {
                let newer = seq > *latest;
                if newer {
                    *latest = seq;
                }
                newer
            });
        }
    });
}

impl AppState {
    /// State for `engine` (whose event sink is replaced by the server's).
    pub fn new(engine: Engine, config: ServerConfig) -> AppState {
        let (tx, rx) = watch::channel(0);
        if let Some(commits) = engine.store().subscribe_commits() {
            forward_commits(commits, tx.clone());
        }
        let metrics = Metrics::new();
        let engine = engine
            .map_store(|store| metrics.timed_store(store))
            .with_sink(Arc::new(WakeSink(tx, metrics.clone())));
        let session_key = crate::ui::session::SessionKey::for_token(config.token.as_deref());
        AppState {
            inner: Arc::new(StateInner {
                engine,
                config,
                latest: rx,
                shutdown: Arc::new(watch::channel(false).0),
                metrics,
                sink_lags: None,
                session_key,
            }),
        }
    }

    /// Sets the provider of `clew_sink_lag_events` figures: `(sink name,
    /// events behind)` pairs read at every `/metrics` scrape.
    pub fn with_sink_lags(self, provider: SinkLags) -> AppState {
        let inner = match Arc::try_unwrap(self.inner) {
            Ok(mut inner) => {
                inner.sink_lags = Some(provider);
                inner
            }
            // Shared already (a clone is held elsewhere): a new state with
            // the same parts.
            Err(shared) => StateInner {
                engine: shared.engine.clone(),
                config: shared.config.clone(),
                latest: shared.latest.clone(),
                shutdown: shared.shutdown.clone(),
                metrics: shared.metrics.clone(),
                sink_lags: Some(provider),
                session_key: shared.session_key.clone(),
            },
        };
        AppState {
            inner: Arc::new(inner),
        }
    }

    /// The sink lags (none unless [`AppState::with_sink_lags`] was called).
    pub fn sink_lags(&self) -> Vec<(String, i64)> {
        self.inner
            .sink_lags
            .as_ref()
            .map(|f| f())
            .unwrap_or_default()
    }

    /// The key that signs dashboard sessions and CSRF tokens.
    pub fn session_key(&self) -> &crate::ui::session::SessionKey {
        &self.inner.session_key
    }

    /// The server's counters and histograms.
    pub fn metrics(&self) -> &Metrics {
        &self.inner.metrics
    }

    /// The engine.
    pub fn engine(&self) -> &Engine {
        &self.inner.engine
    }

    /// The settings.
    pub fn config(&self) -> &ServerConfig {
        &self.inner.config
    }

    /// A receiver that changes whenever events are committed.
    pub fn event_wakeups(&self) -> watch::Receiver<i64> {
        self.inner.latest.clone()
    }

    /// A receiver whose value turns `true` once the server begins shutting
    /// down; long-lived responses (event streams) end when it does, so that
    /// a graceful shutdown does not wait for them forever.
    pub fn shutting_down(&self) -> watch::Receiver<bool> {
        self.inner.shutdown.subscribe()
    }

    /// Marks the server as shutting down (see [`AppState::shutting_down`]).
    /// Calling it again does nothing.
    pub fn begin_shutdown(&self) {
        self.inner
            .shutdown
            .send_if_modified(|down| !std::mem::replace(down, true));
    }

    /// The server clock's time.
    pub fn now(&self) -> Timestamp {
        self.inner.engine.now()
    }
}

/// The time a request runs at: the caller's `X-Clew-Now` header (float
/// seconds) in test mode, else the server's clock (outside test mode the
/// header is ignored); and the caller's origin from `X-Clew-Origin:
/// HOST:PID` (the host and process its lifecycle events name), if sent.
#[derive(Clone, Debug)]
pub struct RequestNow(pub Timestamp, pub Option<clew_core::Origin>);

/// Parses an `X-Clew-Origin: HOST:PID` header value.
pub fn parse_origin(text: &str) -> Result<clew_core::Origin, crate::error::ApiError> {
    let bad = || {
        crate::error::ApiError::invalid(format!(
            "X-Clew-Origin: expected HOST:PID (a host name and a process id), got {text:?}"
        ))
    };
    let (host, pid) = text.trim().rsplit_once(':').ok_or_else(bad)?;
    let process = pid.parse::<u32>().map_err(|_| bad())?;
    if host.is_empty()
        || host.len() > 255
        || host.chars().any(|c| c.is_control() || c.is_whitespace())
    {
        return Err(bad());
    }
    Ok(clew_core::Origin {
        hostname: host.to_owned(),
        process,
    })
}

fn request_origin(
    parts: &axum::http::request::Parts,
) -> Result<Option<clew_core::Origin>, crate::error::ApiError> {
    match parts.headers.get("x-clew-origin") {
        None => Ok(None),
        Some(v) => parse_origin(v.to_str().unwrap_or("\u{fffd}")).map(Some),
    }
}

impl axum::extract::FromRequestParts<AppState> for RequestNow {
    type Rejection = crate::error::ApiError;

    async fn from_request_parts(
        parts: &mut axum::http::request::Parts,
        state: &AppState,
    ) -> Result<RequestNow, Self::Rejection> {
        if state.config().test_mode {
            if let Some(v) = parts.headers.get("x-clew-now") {
                let text = v.to_str().unwrap_or("");
                let t = text
                    .trim()
                    .parse::<f64>()
                    .ok()
                    .and_then(Timestamp::from_secs_f64)
                    .ok_or_else(|| {
                        crate::error::ApiError::invalid(format!(
                            "X-Clew-Now: expected a number of seconds, got {text:?}"
                        ))
                    })?;
                return Ok(RequestNow(t, request_origin(parts)?));
            }
        }
        Ok(RequestNow(state.now(), request_origin(parts)?))
    }
}
