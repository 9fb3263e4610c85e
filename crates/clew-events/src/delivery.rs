//! The delivery loop: durable lifecycle log → one sink, in order,
//! at-least-once, with a cursor that survives restarts.
//!
//! A [`Delivery`] serves one named sink. It reads events after the sink's
//! cursor from an [`EventSource`] (the store's lifecycle log), marshals and
//! publishes each in order, flushes the sink, and only then saves the
//! cursor through a [`CursorStore`] — held back by the sink's
//! [`Publisher::unconfirmed`] lines (a TCP sink's buffer and replay window),
//! so a restart sends them again rather than losing them. A failing sink is retried with
//! exponential backoff from the same event: nothing is skipped, and after
//! a crash or restart the loop resumes after the last saved cursor (events
//! published but not yet saved are sent again — at-least-once).
//!
//! The loop runs in its own task ([`Delivery::spawn`]); producers only poke
//! it through [`DeliveryHandle::wake`], so a slow sink never slows job
//! processing. [`DeliveryStatus::lag`] is how far behind the sink is.

use std::collections::{HashMap, VecDeque};
use std::path::PathBuf;
use std::sync::atomic::{AtomicI64, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use async_trait::async_trait;
use clew_core::{LifecycleEvent, Result};
use tokio::sync::Notify;
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;

use crate::marshal::Marshaller;
use crate::publish::Publisher;

/// Where the delivery loop reads events: the durable lifecycle log.
#[async_trait]
pub trait EventSource: Send + Sync {
    /// Up to `limit` events with `seq > seq`, in ascending `seq` order.
    async fn events_after(&self, seq: i64, limit: i64) -> Result<Vec<LifecycleEvent>>;

    /// The highest `seq` in the log, if the source knows it cheaply (used
    /// for the lag figure; `None` falls back to the highest seq read).
    async fn latest_seq(&self) -> Result<Option<i64>> {
        Ok(None)
    }
}

/// Where sinks' cursors are kept: the `seq` of the last event each sink
/// took (0 for a new sink).
pub trait CursorStore: Send + Sync {
    /// The cursor of sink `name` (0 if none saved).
    fn load(&self, name: &str) -> std::io::Result<i64>;
    /// Saves the cursor of sink `name`.
    fn save(&self, name: &str, seq: i64) -> std::io::Result<()>;
}

/// Cursors in memory (tests; lost on restart).
#[derive(Debug, Default)]
pub struct MemoryCursorStore {
    cursors: Mutex<HashMap<String, i64>>,
}

impl MemoryCursorStore {
    /// An empty store.
    pub fn new() -> MemoryCursorStore {
        MemoryCursorStore::default()
    }
}

impl CursorStore for MemoryCursorStore {
    fn load(&self, name: &str) -> std::io::Result<i64> {
        let map = self
            .cursors
            .lock()
            .map_err(|_| std::io::Error::other("cursor map poisoned"))?;
        Ok(map.get(name).copied().unwrap_or(0))
    }

    fn save(&self, name: &str, seq: i64) -> std::io::Result<()> {
        let mut map = self
            .cursors
            .lock()
            .map_err(|_| std::io::Error::other("cursor map poisoned"))?;
        map.insert(name.to_owned(), seq);
        Ok(())
    }
}

/// Cursors as small files in a directory, one per sink, each written
/// atomically (temporary file, fsync, rename), so a crash leaves either the
/// old or the new cursor. The file name is the sink name with characters
/// other than ASCII letters, digits, `-` and `_` replaced by `_`, plus a
/// short hash of the full name (so `tcp:a:1` and `tcp_a_1` differ).
#[derive(Debug, Clone)]
pub struct FileCursorStore {
    dir: PathBuf,
}

impl FileCursorStore {
    /// A store in `dir` (created if missing).
    pub fn new(dir: impl Into<PathBuf>) -> std::io::Result<FileCursorStore> {
        let dir = dir.into();
        std::fs::create_dir_all(&dir)?;
        Ok(FileCursorStore { dir })
    }

    /// The file holding sink `name`'s cursor.
    pub fn path_of(&self, name: &str) -> PathBuf {
        let safe: String = name
            .chars()
            .take(64)
            .map(|c| {
                if c.is_ascii_alphanumeric() || c == '-' || c == '_' {
                    c
                } else {
                    '_'
                }
            })
            .collect();
        let hash = &crate::md5::md5_hex(name.as_bytes())[..8];
        self.dir.join(format!("{safe}-{hash}.cursor"))
    }
}

impl CursorStore for FileCursorStore {
    fn load(&self, name: &str) -> std::io::Result<i64> {
        match std::fs::read_to_string(self.path_of(name)) {
            Ok(text) => text.trim().parse::<i64>().map_err(|e| {
                std::io::Error::new(
                    std::io::ErrorKind::InvalidData,
                    format!("cursor file of sink {name:?} is not a number: {e}"),
                )
            }),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(0),
            Err(e) => Err(e),
        }
    }

    fn save(&self, name: &str, seq: i64) -> std::io::Result<()> {
        use std::io::Write;
        let path = self.path_of(name);
        let tmp = path.with_extension("cursor.tmp");
        {
            let mut f = std::fs::File::create(&tmp)?;
            writeln!(f, "{seq}")?;
            f.sync_all()?;
        }
        std::fs::rename(&tmp, &path)?;
        // Make the rename durable too (best effort).
        if let Ok(d) = std::fs::File::open(&self.dir) {
            let _ = d.sync_all();
        }
        Ok(())
    }
}

/// An in-memory lifecycle log (tests and embedding): [`MemorySource::push`]
/// numbers events 1, 2, 3, ...
#[derive(Debug, Default)]
pub struct MemorySource {
    events: Mutex<Vec<LifecycleEvent>>,
}

impl MemorySource {
    /// An empty log.
    pub fn new() -> MemorySource {
        MemorySource::default()
    }

    /// Appends `event`, giving it the next `seq`, which is returned.
    pub fn push(&self, mut event: LifecycleEvent) -> i64 {
        let mut events = self.events.lock().unwrap_or_else(|p| p.into_inner());
        let seq = events.last().map_or(1, |e| e.seq + 1);
        event.seq = seq;
        events.push(event);
        seq
    }
}

#[async_trait]
impl EventSource for MemorySource {
    async fn events_after(&self, seq: i64, limit: i64) -> Result<Vec<LifecycleEvent>> {
        let events = self.events.lock().unwrap_or_else(|p| p.into_inner());
        Ok(events
            .iter()
            .filter(|e| e.seq > seq)
            .take(usize::try_from(limit.max(0)).unwrap_or(usize::MAX))
            .cloned()
            .collect())
    }

    async fn latest_seq(&self) -> Result<Option<i64>> {
        let events = self.events.lock().unwrap_or_else(|p| p.into_inner());
        Ok(Some(events.last().map_or(0, |e| e.seq)))
    }
}

/// Published seqs remembered to hold the saved cursor behind unconfirmed lines.
const RECENT_MAX: usize = 65_536;

/// Settings of a [`Delivery`].
#[derive(Clone, Debug)]
pub struct DeliveryOptions {
    /// Events read per batch; the cursor is saved after each batch.
    pub batch: i64,
    /// How often to look for new events when nobody wakes the loop.
    pub poll_interval: Duration,
    /// First retry delay after a sink or source failure; doubles after each.
    pub backoff_min: Duration,
    /// Largest retry delay.
    pub backoff_max: Duration,
}

impl Default for DeliveryOptions {
    fn default() -> DeliveryOptions {
        DeliveryOptions {
            batch: 100,
            poll_interval: Duration::from_secs(1),
            backoff_min: Duration::from_millis(100),
            backoff_max: Duration::from_secs(30),
        }
    }
}

/// Live figures of one delivery loop (cheap to read from any thread).
#[derive(Debug, Default)]
pub struct DeliveryStatus {
    cursor: AtomicI64,
    latest: AtomicI64,
    published: AtomicU64,
    failures: AtomicU64,
}

impl DeliveryStatus {
    /// The seq of the last event the sink took (saved or about to be).
    pub fn cursor(&self) -> i64 {
        self.cursor.load(Ordering::SeqCst)
    }

    /// The highest seq seen in the log.
    pub fn latest(&self) -> i64 {
        self.latest.load(Ordering::SeqCst)
    }

    /// How many events the sink is behind: latest seq seen − cursor.
    pub fn lag(&self) -> i64 {
        (self.latest() - self.cursor()).max(0)
    }

    /// Events published successfully by this loop (including repeats).
    pub fn published(&self) -> u64 {
        self.published.load(Ordering::SeqCst)
    }

    /// Failed publish, flush, read or cursor-save attempts.
    pub fn failures(&self) -> u64 {
        self.failures.load(Ordering::SeqCst)
    }

    fn see(&self, seq: i64) {
        self.latest.fetch_max(seq, Ordering::SeqCst);
    }
}

/// A handle on a running delivery loop: wake it, read its status, stop it.
#[derive(Clone, Debug)]
pub struct DeliveryHandle {
    name: String,
    wake: Arc<Notify>,
    status: Arc<DeliveryStatus>,
    stop: CancellationToken,
}

impl DeliveryHandle {
    /// The sink's name.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// Tells the loop new events exist (never blocks).
    pub fn wake(&self) {
        self.wake.notify_one();
    }

    /// Tells the loop an event with `seq` exists (updates the lag at once).
    pub fn notify_seq(&self, seq: i64) {
        self.status.see(seq);
        self.wake.notify_one();
    }

    /// The loop's figures.
    pub fn status(&self) -> &Arc<DeliveryStatus> {
        &self.status
    }

    /// Asks the loop to stop (a publish or flush in progress is abandoned;
    /// its event is sent again by the next loop: at-least-once).
    pub fn stop(&self) {
        self.stop.cancel();
    }
}

/// The delivery loop of one sink. See the [module docs](self).
pub struct Delivery {
    name: String,
    source: Arc<dyn EventSource>,
    publisher: Arc<dyn Publisher>,
    marshaller: Arc<dyn Marshaller>,
    cursors: Arc<dyn CursorStore>,
    options: DeliveryOptions,
    handle: DeliveryHandle,
}

impl Delivery {
    /// A loop delivering `source`'s events to `publisher` as `marshaller`
    /// lines, keeping the cursor of sink `name` in `cursors`.
    pub fn new(
        name: impl Into<String>,
        source: Arc<dyn EventSource>,
        publisher: Arc<dyn Publisher>,
        marshaller: Arc<dyn Marshaller>,
        cursors: Arc<dyn CursorStore>,
    ) -> Delivery {
        let name = name.into();
        Delivery {
            handle: DeliveryHandle {
                name: name.clone(),
                wake: Arc::new(Notify::new()),
                status: Arc::new(DeliveryStatus::default()),
                stop: CancellationToken::new(),
            },
            name,
            source,
            publisher,
            marshaller,
            cursors,
            options: DeliveryOptions::default(),
        }
    }

    /// Replaces the options.
    pub fn with_options(mut self, options: DeliveryOptions) -> Delivery {
        self.options = options;
        self
    }

    /// A handle on this loop (valid before and after [`Delivery::spawn`]).
    pub fn handle(&self) -> DeliveryHandle {
        self.handle.clone()
    }

    /// Runs the loop in its own task until [`DeliveryHandle::stop`].
    pub fn spawn(self) -> (DeliveryHandle, JoinHandle<()>) {
        let handle = self.handle();
        (handle, tokio::spawn(self.run()))
    }

    /// Sleeps `d` unless stopped first; returns false when stopped.
    async fn pause(&self, d: Duration) -> bool {
        tokio::select! {
            _ = self.handle.stop.cancelled() => false,
            _ = tokio::time::sleep(d) => true,
        }
    }

    fn next_backoff(&self, b: Duration) -> Duration {
        (b * 2).min(self.options.backoff_max)
    }

    /// Runs the loop in the current task until [`DeliveryHandle::stop`].
    pub async fn run(self) {
        let status = self.handle.status.clone();
        let mut backoff = self.options.backoff_min;
        // The cursor: last event the sink took; `saved`: last one persisted.
        let mut cursor = loop {
            match self.cursors.load(&self.name) {
                Ok(c) => break c,
                Err(e) => {
                    status.failures.fetch_add(1, Ordering::SeqCst);
                    tracing::warn!(sink = %self.name, error = %e, "cannot load cursor; retrying");
                    if !self.pause(backoff).await {
                        return;
                    }
                    backoff = self.next_backoff(backoff);
                }
            }
        };
        let mut saved = cursor;
        // Seqs published since the loop started (bounded), to keep the saved
        // cursor behind the sink's unconfirmed lines.
        let mut recent: VecDeque<i64> = VecDeque::new();
        status.cursor.store(cursor, Ordering::SeqCst);
        status.see(cursor);
        backoff = self.options.backoff_min;
        while !self.handle.stop.is_cancelled() {
            // Register for wake-ups before reading so none is missed.
            let woken = self.handle.wake.notified();
            tokio::pin!(woken);
            woken.as_mut().enable();
            if let Ok(Some(latest)) = self.source.latest_seq().await {
                status.see(latest);
            }
            let events = match self
                .source
                .events_after(cursor, self.options.batch.max(1))
                .await
            {
                Ok(events) => events,
                Err(e) => {
                    status.failures.fetch_add(1, Ordering::SeqCst);
                    tracing::warn!(sink = %self.name, error = %e, "cannot read lifecycle events; retrying");
                    if !self.pause(backoff).await {
                        return;
                    }
                    backoff = self.next_backoff(backoff);
                    continue;
                }
            };
            if events.is_empty() {
                if saved != cursor && !self.save(&recent, &mut saved, &mut backoff).await {
                    return;
                }
                tokio::select! {
                    _ = self.handle.stop.cancelled() => return,
                    _ = woken => {}
                    _ = tokio::time::sleep(self.options.poll_interval) => {}
                }
                continue;
            }
            if let Some(last) = events.last() {
                status.see(last.seq);
            }
            let start = cursor;
            for event in events.iter().filter(|e| e.seq > start) {
                let line = self.marshaller.marshal(event);
                loop {
                    let published = tokio::select! {
                        _ = self.handle.stop.cancelled() => return,
                        r = self.publisher.publish(&line) => r,
                    };
                    match published {
                        Ok(()) => break,
                        Err(e) => {
                            status.failures.fetch_add(1, Ordering::SeqCst);
                            tracing::warn!(sink = %self.name, seq = event.seq, error = %e, "publish failed; retrying");
                            if !self.pause(backoff).await {
                                return;
                            }
                            backoff = self.next_backoff(backoff);
                        }
                    }
                }
                backoff = self.options.backoff_min;
                cursor = event.seq;
                recent.push_back(cursor);
                if recent.len() > RECENT_MAX {
                    recent.pop_front();
                }
                status.published.fetch_add(1, Ordering::SeqCst);
                status.cursor.store(cursor, Ordering::SeqCst);
            }
            if !self.save(&recent, &mut saved, &mut backoff).await {
                return;
            }
        }
    }

    /// Flushes the sink and saves the cursor: the last published seq in
    /// `recent`, minus the sink's [`Publisher::unconfirmed`] lines (never
    /// moving backwards). A failed flush skips this save (the loop goes on
    /// and saves later; the sink's own buffer bound pushes back through
    /// `publish`); a failed cursor save is retried with backoff. Returns
    /// false when stopped first.
    async fn save(&self, recent: &VecDeque<i64>, saved: &mut i64, backoff: &mut Duration) -> bool {
        let flushed = tokio::select! {
            _ = self.handle.stop.cancelled() => return false,
            r = self.publisher.flush() => r,
        };
        if let Err(e) = flushed {
            self.handle.status.failures.fetch_add(1, Ordering::SeqCst);
            tracing::warn!(sink = %self.name, error = %e, "flush failed; cursor not saved yet");
            return true;
        }
        let held = self.publisher.unconfirmed();
        let cursor = if held == 0 {
            recent.back().copied().unwrap_or(*saved)
        } else if held < recent.len() {
            recent[recent.len() - 1 - held]
        } else {
            *saved
        }
        .max(*saved);
        if cursor == *saved {
            return true;
        }
        loop {
            match self.cursors.save(&self.name, cursor) {
                Ok(()) => {
                    *saved = cursor;
                    *backoff = self.options.backoff_min;
                    return true;
                }
                Err(e) => {
                    self.handle.status.failures.fetch_add(1, Ordering::SeqCst);
                    tracing::warn!(sink = %self.name, cursor, error = %e, "cannot save cursor; retrying");
                    if !self.pause(*backoff).await {
                        return false;
                    }
                    *backoff = self.next_backoff(*backoff);
                }
            }
        }
    }
}
