//! Publishers: where marshalled lines go.
//!
//! Every publisher takes one line (no trailing newline) per event. Stream
//! sinks (stdout, file, TCP) add the newline, so a custom
//! [`crate::Marshaller`] must not put newlines inside a line (the built-in
//! ones escape them); UDP sends one datagram per line; HTTP POSTs one
//! request per line. [`publisher_from_spec`] builds one from a `--publish`
//! spec; [`reopen_on_sighup`] wires logrotate's signal to
//! [`Publisher::reopen`].

use std::collections::VecDeque;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use async_trait::async_trait;
use tokio::io::AsyncWriteExt;
use tokio::net::{TcpStream, UdpSocket};
use tokio::sync::Notify;
use tokio_util::sync::{CancellationToken, DropGuard};

/// Why a publisher did not take a line.
#[derive(Debug, thiserror::Error)]
pub enum PublishError {
    /// An I/O error on the sink named by `sink`.
    #[error("{sink}: {source}")]
    Io {
        /// The sink (e.g. `file:/var/log/clues.log`).
        sink: String,
        /// The underlying error.
        #[source]
        source: std::io::Error,
    },
    /// The sink is down and its buffer holds `capacity` lines already.
    #[error("{sink}: buffer full ({capacity} lines) while the sink is down")]
    BufferFull {
        /// The sink.
        sink: String,
        /// The buffer bound.
        capacity: usize,
    },
    /// A flush did not complete within its time limit.
    #[error("{sink}: {pending} line(s) still unsent after {waited:?}")]
    Timeout {
        /// The sink.
        sink: String,
        /// Lines not yet written.
        pending: usize,
        /// How long the flush waited.
        waited: Duration,
    },
    /// The HTTP sink kept failing (last status or error in `message`).
    #[error("{sink}: {message}")]
    Http {
        /// The sink.
        sink: String,
        /// What the last attempt got.
        message: String,
    },
    /// Some members of a [`CompositePublisher`] failed (the others took the line).
    #[error("{} of {total} sinks failed: {}", .failures.len(), .failures.iter().map(|e| e.to_string()).collect::<Vec<_>>().join("; "))]
    Composite {
        /// Number of members.
        total: usize,
        /// The members' errors.
        failures: Vec<PublishError>,
    },
}

/// A `--publish` spec or marshaller name that cannot be used.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{0}")]
pub struct SpecError(pub String);

/// Sends marshalled lines to a sink.
#[async_trait]
pub trait Publisher: Send + Sync {
    /// Sends (or queues) one line. Must not block the caller for long.
    async fn publish(&self, line: &str) -> Result<(), PublishError>;

    /// Waits until every line taken so far has left the process (written to
    /// the file, socket, ...). The delivery loop saves its cursor only after
    /// a successful flush.
    async fn flush(&self) -> Result<(), PublishError> {
        Ok(())
    }

    /// How many of the lines taken most recently the sink cannot yet vouch
    /// for: queued, or written where a receiver may not have read them (TCP
    /// replays those after a break within this process). The delivery loop
    /// keeps its saved cursor that many events back, so a restart sends
    /// them again instead of losing them. 0 for sinks whose `flush` proves
    /// delivery.
    fn unconfirmed(&self) -> usize {
        0
    }

    /// Reopens the sink's file (for logrotate; wired to SIGHUP). A no-op for
    /// sinks without one.
    async fn reopen(&self) -> Result<(), PublishError> {
        Ok(())
    }

    /// The sink's spec-like name, for logs and metrics (e.g. `tcp:host:9000`).
    fn name(&self) -> String;
}

/// Writes each line to standard output.
#[derive(Debug, Default)]
pub struct StdoutPublisher {
    lock: tokio::sync::Mutex<()>,
}

impl StdoutPublisher {
    /// A stdout publisher.
    pub fn new() -> StdoutPublisher {
        StdoutPublisher::default()
    }
}

#[async_trait]
impl Publisher for StdoutPublisher {
    async fn publish(&self, line: &str) -> Result<(), PublishError> {
        let _guard = self.lock.lock().await;
        let mut out = tokio::io::stdout();
        let mut buf = String::with_capacity(line.len() + 1);
        buf.push_str(line);
        buf.push('\n');
        let res = async {
            out.write_all(buf.as_bytes()).await?;
            out.flush().await
        }
        .await;
        res.map_err(|source| PublishError::Io {
            sink: self.name(),
            source,
        })
    }

    fn name(&self) -> String {
        "stdout".to_owned()
    }
}

/// Appends each line to a file; [`Publisher::reopen`] reopens the path (after
/// logrotate renamed the old file away).
#[derive(Debug)]
pub struct FilePublisher {
    path: PathBuf,
    file: tokio::sync::Mutex<Option<tokio::fs::File>>,
}

async fn open_append(path: &Path) -> std::io::Result<tokio::fs::File> {
    tokio::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(path)
        .await
}

impl FilePublisher {
    /// Opens (creating if needed) `path` for appending.
    pub async fn open(path: impl Into<PathBuf>) -> Result<FilePublisher, PublishError> {
        let path = path.into();
        let file = open_append(&path)
            .await
            .map_err(|source| PublishError::Io {
                sink: format!("file:{}", path.display()),
                source,
            })?;
        Ok(FilePublisher {
            path,
            file: tokio::sync::Mutex::new(Some(file)),
        })
    }

    /// The file's path.
    pub fn path(&self) -> &Path {
        &self.path
    }

    fn io(&self, source: std::io::Error) -> PublishError {
        PublishError::Io {
            sink: self.name(),
            source,
        }
    }
}

#[async_trait]
impl Publisher for FilePublisher {
    async fn publish(&self, line: &str) -> Result<(), PublishError> {
        let mut guard = self.file.lock().await;
        if guard.is_none() {
            *guard = Some(open_append(&self.path).await.map_err(|e| self.io(e))?);
        }
        let mut buf = String::with_capacity(line.len() + 1);
        buf.push_str(line);
        buf.push('\n');
        let res = match guard.as_mut() {
            Some(file) => {
                async {
                    file.write_all(buf.as_bytes()).await?;
                    file.flush().await
                }
                .await
            }
            None => Ok(()),
        };
        if let Err(e) = res {
            // Reopen on the next line: the file may have been removed.
            *guard = None;
            return Err(self.io(e));
        }
        Ok(())
    }

    async fn flush(&self) -> Result<(), PublishError> {
        let mut guard = self.file.lock().await;
        if let Some(file) = guard.as_mut() {
            file.flush().await.map_err(|e| self.io(e))?;
        }
        Ok(())
    }

    async fn reopen(&self) -> Result<(), PublishError> {
        let mut guard = self.file.lock().await;
        if let Some(mut old) = guard.take() {
            let _ = old.flush().await;
        }
        *guard = Some(open_append(&self.path).await.map_err(|e| self.io(e))?);
        Ok(())
    }

    fn name(&self) -> String {
        format!("file:{}", self.path.display())
    }
}

/// Fans each line out to several publishers. One failing member does not
/// stop the others; the failures come back together as
/// [`PublishError::Composite`].
///
/// With the delivery loop, prefer one [`crate::Delivery`] per sink: a
/// composite's cursor waits for its slowest member, and a retry repeats the
/// line on the members that already took it.
pub struct CompositePublisher {
    members: Vec<Arc<dyn Publisher>>,
}

impl CompositePublisher {
    /// A composite of `members`.
    pub fn new(members: Vec<Arc<dyn Publisher>>) -> CompositePublisher {
        CompositePublisher { members }
    }

    /// The members.
    pub fn members(&self) -> &[Arc<dyn Publisher>] {
        &self.members
    }

    async fn each<'a, F, Fut>(&'a self, f: F) -> Result<(), PublishError>
    where
        F: Fn(&'a Arc<dyn Publisher>) -> Fut,
        Fut: std::future::Future<Output = Result<(), PublishError>> + 'a,
    {
        let results = futures_util::future::join_all(self.members.iter().map(f)).await;
        let failures: Vec<PublishError> = results.into_iter().filter_map(Result::err).collect();
        if failures.is_empty() {
            Ok(())
        } else {
            Err(PublishError::Composite {
                total: self.members.len(),
                failures,
            })
        }
    }
}

#[async_trait]
impl Publisher for CompositePublisher {
    async fn publish(&self, line: &str) -> Result<(), PublishError> {
        self.each(|p| p.publish(line)).await
    }

    async fn flush(&self) -> Result<(), PublishError> {
        self.each(|p| p.flush()).await
    }

    async fn reopen(&self) -> Result<(), PublishError> {
        self.each(|p| p.reopen()).await
    }

    fn unconfirmed(&self) -> usize {
        self.members
            .iter()
            .map(|m| m.unconfirmed())
            .max()
            .unwrap_or(0)
    }

    fn name(&self) -> String {
        let names: Vec<String> = self.members.iter().map(|m| m.name()).collect();
        format!("composite[{}]", names.join(","))
    }
}

/// Settings of a [`TcpPublisher`].
#[derive(Clone, Debug)]
pub struct TcpOptions {
    /// Lines held while the receiver is down; beyond it `publish` fails with
    /// [`PublishError::BufferFull`] (the delivery loop then retries later).
    pub capacity: usize,
    /// First reconnect delay; doubles after each failed attempt.
    pub backoff_min: Duration,
    /// Largest reconnect delay.
    pub backoff_max: Duration,
    /// Limit on one connect attempt and on one write.
    pub io_timeout: Duration,
    /// Longest [`Publisher::flush`] waits for the buffer to drain.
    pub flush_timeout: Duration,
    /// Lines written on a connection that are sent again on the next one
    /// when it breaks: TCP gives no proof that the receiver read them, so
    /// they are replayed (at-least-once; the receiver may see duplicates).
    pub replay: usize,
}

impl Default for TcpOptions {
    fn default() -> TcpOptions {
        TcpOptions {
            capacity: 10_000,
            backoff_min: Duration::from_millis(100),
            backoff_max: Duration::from_secs(10),
            io_timeout: Duration::from_secs(5),
            flush_timeout: Duration::from_secs(5),
            replay: 64,
        }
    }
}

struct TcpShared {
    name: String,
    queue: Mutex<VecDeque<String>>,
    /// Lines taken off the queue and being written right now.
    writing: AtomicBool,
    wake_writer: Notify,
    drained: Notify,
    connected: AtomicBool,
    reconnects: AtomicU64,
    /// Lines in the replay window.
    replayable: AtomicUsize,
}

impl TcpShared {
    fn pending(&self) -> usize {
        self.queue.lock().map(|q| q.len()).unwrap_or(0)
            + usize::from(self.writing.load(Ordering::SeqCst))
    }
}

/// Newline-delimited lines over TCP. `publish` only queues the line (never
/// waits on the network); a background task writes it, reconnecting with
/// exponential backoff while the receiver is down, and replays the last
/// [`TcpOptions::replay`] lines on a new connection after a break. Those
/// lines count as [`Publisher::unconfirmed`], so the delivery loop's saved
/// cursor stays behind them and a restarted process sends them again.
///
/// Must be created inside a tokio runtime; the writer task stops when the
/// publisher is dropped.
pub struct TcpPublisher {
    shared: Arc<TcpShared>,
    options: TcpOptions,
    _stop: DropGuard,
}

impl TcpPublisher {
    /// A publisher to `addr` (`host:port`) with default options.
    pub fn new(addr: impl Into<String>) -> TcpPublisher {
        TcpPublisher::with_options(addr, TcpOptions::default())
    }

    /// A publisher to `addr` with `options`.
    pub fn with_options(addr: impl Into<String>, options: TcpOptions) -> TcpPublisher {
        let addr = addr.into();
        let shared = Arc::new(TcpShared {
            name: format!("tcp:{addr}"),
            queue: Mutex::new(VecDeque::new()),
            writing: AtomicBool::new(false),
            wake_writer: Notify::new(),
            drained: Notify::new(),
            connected: AtomicBool::new(false),
            reconnects: AtomicU64::new(0),
            replayable: AtomicUsize::new(0),
        });
        let stop = CancellationToken::new();
        tokio::spawn(tcp_writer(
            addr,
            shared.clone(),
            options.clone(),
            stop.clone(),
        ));
        TcpPublisher {
            shared,
            options,
            _stop: stop.drop_guard(),
        }
    }

    /// Whether the writer holds a live connection.
    pub fn is_connected(&self) -> bool {
        self.shared.connected.load(Ordering::SeqCst)
    }

    /// Lines queued or being written.
    pub fn pending(&self) -> usize {
        self.shared.pending()
    }

    /// Connections made so far.
    pub fn connections(&self) -> u64 {
        self.shared.reconnects.load(Ordering::SeqCst)
    }
}

/// Whether the peer closed `stream` (a non-blocking read sees EOF or an error).
fn peer_closed(stream: &TcpStream) -> bool {
    let mut buf = [0u8; 512];
    loop {
        match stream.try_read(&mut buf) {
            Ok(0) => return true,
            Ok(_) => continue, // the receiver talks back: ignore it
            Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => return false,
            Err(_) => return true,
        }
    }
}

async fn tcp_writer(
    addr: String,
    shared: Arc<TcpShared>,
    opt: TcpOptions,
    stop: CancellationToken,
) {
    let mut conn: Option<TcpStream> = None;
    let mut backoff = opt.backoff_min;
    let mut sent: VecDeque<String> = VecDeque::new();
    loop {
        if stop.is_cancelled() {
            return;
        }
        let Some(stream) = conn.as_mut() else {
            match tokio::time::timeout(opt.io_timeout, TcpStream::connect(&addr)).await {
                Ok(Ok(s)) => {
                    let _ = s.set_nodelay(true);
                    conn = Some(s);
                    backoff = opt.backoff_min;
                    shared.connected.store(true, Ordering::SeqCst);
                    shared.reconnects.fetch_add(1, Ordering::SeqCst);
                }
                Ok(Err(e)) => {
                    tracing::debug!(sink = %shared.name, error = %e, "connect failed");
                    tokio::select! {
                        _ = stop.cancelled() => return,
                        _ = tokio::time::sleep(backoff) => {}
                    }
                    backoff = (backoff * 2).min(opt.backoff_max);
                }
                Err(_) => {
                    backoff = (backoff * 2).min(opt.backoff_max);
                }
            }
            continue;
        };
        let next = match shared.queue.lock() {
            Ok(mut q) => {
                let line = q.pop_front();
                if line.is_some() {
                    shared.writing.store(true, Ordering::SeqCst);
                }
                line
            }
            Err(_) => return,
        };
        let Some(line) = next else {
            shared.drained.notify_waiters();
            tokio::select! {
                _ = stop.cancelled() => return,
                _ = shared.wake_writer.notified() => {}
                // Notice a receiver that went away while idle.
                _ = stream.readable() => {
                    if peer_closed(stream) {
                        conn = None;
                        shared.connected.store(false, Ordering::SeqCst);
                        requeue_sent(&shared, &mut sent, None);
                    }
                }
            }
            continue;
        };
        let ok = !peer_closed(stream)
            && matches!(
                tokio::time::timeout(opt.io_timeout, stream.write_all(line.as_bytes())).await,
                Ok(Ok(()))
            );
        if ok {
            sent.push_back(line);
            while sent.len() > opt.replay {
                sent.pop_front();
            }
            shared.replayable.store(sent.len(), Ordering::SeqCst);
            shared.writing.store(false, Ordering::SeqCst);
        } else {
            tracing::debug!(sink = %shared.name, "connection lost; reconnecting");
            conn = None;
            shared.connected.store(false, Ordering::SeqCst);
            requeue_sent(&shared, &mut sent, Some(line));
            shared.writing.store(false, Ordering::SeqCst);
        }
        if shared.pending() == 0 {
            shared.drained.notify_waiters();
        }
    }
}

/// Puts the lines sent on a broken connection (then `current`) back at the
/// front of the queue, in order.
fn requeue_sent(shared: &TcpShared, sent: &mut VecDeque<String>, current: Option<String>) {
    if let Ok(mut q) = shared.queue.lock() {
        if let Some(line) = current {
            q.push_front(line);
        }
        while let Some(line) = sent.pop_back() {
            q.push_front(line);
        }
        shared.replayable.store(0, Ordering::SeqCst);
    }
}

#[async_trait]
impl Publisher for TcpPublisher {
    async fn publish(&self, line: &str) -> Result<(), PublishError> {
        {
            let mut q = self.shared.queue.lock().map_err(|_| PublishError::Io {
                sink: self.name(),
                source: std::io::Error::other("writer state poisoned"),
            })?;
            if q.len() >= self.options.capacity {
                return Err(PublishError::BufferFull {
                    sink: self.name(),
                    capacity: self.options.capacity,
                });
            }
            let mut buf = String::with_capacity(line.len() + 1);
            buf.push_str(line);
            buf.push('\n');
            q.push_back(buf);
        }
        self.shared.wake_writer.notify_one();
        Ok(())
    }

    async fn flush(&self) -> Result<(), PublishError> {
        let deadline = tokio::time::Instant::now() + self.options.flush_timeout;
        loop {
            let drained = self.shared.drained.notified();
            tokio::pin!(drained);
            drained.as_mut().enable();
            let pending = self.shared.pending();
            if pending == 0 {
                return Ok(());
            }
            self.shared.wake_writer.notify_one();
            if tokio::time::timeout_at(deadline, drained).await.is_err() {
                return Err(PublishError::Timeout {
                    sink: self.name(),
                    pending: self.shared.pending(),
                    waited: self.options.flush_timeout,
                });
            }
        }
    }

    fn unconfirmed(&self) -> usize {
        self.shared.pending() + self.shared.replayable.load(Ordering::SeqCst)
    }

    fn name(&self) -> String {
        self.shared.name.clone()
    }
}

/// Default largest UDP datagram: 8 KiB.
pub const DEFAULT_UDP_MAX: usize = 8 * 1024;

/// One datagram per line. Lines longer than the cap (default 8 KiB) are
/// dropped and counted ([`UdpPublisher::dropped`]), not retried. A send
/// error (for example an earlier datagram was refused by the port) is
/// returned, so the delivery loop retries that event.
pub struct UdpPublisher {
    addr: String,
    max: usize,
    socket: tokio::sync::Mutex<Option<UdpSocket>>,
    dropped: AtomicU64,
}

impl UdpPublisher {
    /// A publisher to `addr` (`host:port`) with the 8 KiB cap.
    pub fn new(addr: impl Into<String>) -> UdpPublisher {
        UdpPublisher::with_max(addr, DEFAULT_UDP_MAX)
    }

    /// A publisher to `addr` dropping lines longer than `max` bytes.
    pub fn with_max(addr: impl Into<String>, max: usize) -> UdpPublisher {
        UdpPublisher {
            addr: addr.into(),
            max,
            socket: tokio::sync::Mutex::new(None),
            dropped: AtomicU64::new(0),
        }
    }

    /// Lines dropped for being over the cap.
    pub fn dropped(&self) -> u64 {
        self.dropped.load(Ordering::SeqCst)
    }

    fn io(&self, source: std::io::Error) -> PublishError {
        PublishError::Io {
            sink: self.name(),
            source,
        }
    }
}

#[async_trait]
impl Publisher for UdpPublisher {
    async fn publish(&self, line: &str) -> Result<(), PublishError> {
        if line.len() > self.max {
            self.dropped.fetch_add(1, Ordering::SeqCst);
            tracing::warn!(sink = %self.name(), size = line.len(), max = self.max, "event over the datagram cap dropped");
            return Ok(());
        }
        let mut guard = self.socket.lock().await;
        if guard.is_none() {
            let target = tokio::net::lookup_host(&self.addr)
                .await
                .map_err(|e| self.io(e))?
                .next()
                .ok_or_else(|| {
                    self.io(std::io::Error::new(
                        std::io::ErrorKind::NotFound,
                        "host resolves to no address",
                    ))
                })?;
            let local = if target.is_ipv4() {
                "0.0.0.0:0"
            } else {
                "[::]:0"
            };
            let socket = UdpSocket::bind(local).await.map_err(|e| self.io(e))?;
            socket.connect(target).await.map_err(|e| self.io(e))?;
            *guard = Some(socket);
        }
        if let Some(socket) = guard.as_ref() {
            if let Err(e) = socket.send(line.as_bytes()).await {
                *guard = None;
                return Err(self.io(e));
            }
        }
        Ok(())
    }

    fn name(&self) -> String {
        format!("udp:{}", self.addr)
    }
}

/// Settings of an [`HttpPublisher`].
#[derive(Clone, Debug)]
pub struct HttpOptions {
    /// Attempts per line (the first plus retries) on 5xx, 429 or connection errors.
    pub attempts: u32,
    /// Delay before the first retry; doubles after each.
    pub backoff_min: Duration,
    /// Largest delay between retries.
    pub backoff_max: Duration,
    /// Limit on one request.
    pub timeout: Duration,
    /// `Content-Type` of the requests (the marshaller's).
    pub content_type: String,
}

impl Default for HttpOptions {
    fn default() -> HttpOptions {
        HttpOptions {
            attempts: 5,
            backoff_min: Duration::from_millis(100),
            backoff_max: Duration::from_secs(5),
            timeout: Duration::from_secs(10),
            content_type: "application/json".to_owned(),
        }
    }
}

/// POSTs each line to a URL (a webhook), retrying with exponential backoff
/// on 5xx, 429 and connection errors; other 4xx fail at once.
pub struct HttpPublisher {
    url: String,
    client: reqwest::Client,
    options: HttpOptions,
}

impl HttpPublisher {
    /// A publisher to `url` with default options.
    pub fn new(url: impl Into<String>) -> HttpPublisher {
        HttpPublisher::with_options(url, HttpOptions::default())
    }

    /// A publisher to `url` with `options`.
    pub fn with_options(url: impl Into<String>, options: HttpOptions) -> HttpPublisher {
        let client = reqwest::Client::builder()
            .timeout(options.timeout)
            .build()
            .unwrap_or_else(|_| reqwest::Client::new());
        HttpPublisher {
            url: url.into(),
            client,
            options,
        }
    }
}

#[async_trait]
impl Publisher for HttpPublisher {
    async fn publish(&self, line: &str) -> Result<(), PublishError> {
        let mut backoff = self.options.backoff_min;
        let mut last = String::new();
        for attempt in 1..=self.options.attempts.max(1) {
            let res = self
                .client
                .post(&self.url)
                .header(reqwest::header::CONTENT_TYPE, &self.options.content_type)
                .body(line.to_owned())
                .send()
                .await;
            let retry = match res {
                Ok(resp) if resp.status().is_success() => return Ok(()),
                Ok(resp) => {
                    let status = resp.status();
                    last = format!("HTTP {status}");
                    status.is_server_error() || status == reqwest::StatusCode::TOO_MANY_REQUESTS
                }
                Err(e) => {
                    last = e.to_string();
                    true
                }
            };
            if !retry {
                break;
            }
            if attempt < self.options.attempts {
                tracing::debug!(sink = %self.name(), attempt, error = %last, "retrying");
                tokio::time::sleep(backoff).await;
                backoff = (backoff * 2).min(self.options.backoff_max);
            }
        }
        Err(PublishError::Http {
            sink: self.name(),
            message: last,
        })
    }

    fn name(&self) -> String {
        format!("http:{}", self.url)
    }
}

fn host_port(kind: &str, rest: &str, spec: &str) -> Result<String, SpecError> {
    let ok = rest
        .rsplit_once(':')
        .is_some_and(|(host, port)| !host.is_empty() && port.parse::<u16>().is_ok_and(|p| p > 0));
    if ok {
        Ok(rest.to_owned())
    } else {
        Err(SpecError(format!(
            "invalid publish spec {spec:?}: expected {kind}:HOST:PORT with a port from 1 to 65535"
        )))
    }
}

/// Builds a publisher from a `--publish` spec: `stdout`, `file:PATH`,
/// `tcp:HOST:PORT`, `udp:HOST:PORT` or `http:URL` (`http:http://...`;
/// `http://...` alone is accepted too). HTTP requests are sent as
/// `application/json`; see [`publisher_from_spec_with`].
///
/// Must be called inside a tokio runtime (TCP starts its writer task; files
/// are opened now).
pub async fn publisher_from_spec(spec: &str) -> Result<Arc<dyn Publisher>, SpecError> {
    publisher_from_spec_with(spec, "application/json").await
}

/// As [`publisher_from_spec`], with the `Content-Type` HTTP sinks send
/// (use [`crate::Marshaller::content_type`]).
pub async fn publisher_from_spec_with(
    spec: &str,
    content_type: &str,
) -> Result<Arc<dyn Publisher>, SpecError> {
    let spec = spec.trim();
    if spec == "stdout" {
        return Ok(Arc::new(StdoutPublisher::new()));
    }
    if spec.starts_with("http://") || spec.starts_with("https://") {
        return http_spec(spec, spec, content_type);
    }
    let Some((kind, rest)) = spec.split_once(':') else {
        return Err(unknown_spec(spec));
    };
    match kind {
        "file" if !rest.is_empty() => {
            let p = FilePublisher::open(rest)
                .await
                .map_err(|e| SpecError(format!("publish spec {spec:?}: {e}")))?;
            Ok(Arc::new(p))
        }
        "file" => Err(SpecError(format!(
            "invalid publish spec {spec:?}: expected file:PATH"
        ))),
        "tcp" => Ok(Arc::new(TcpPublisher::new(host_port("tcp", rest, spec)?))),
        "udp" => Ok(Arc::new(UdpPublisher::new(host_port("udp", rest, spec)?))),
        "http" => http_spec(rest, spec, content_type),
        _ => Err(unknown_spec(spec)),
    }
}

fn http_spec(url: &str, spec: &str, content_type: &str) -> Result<Arc<dyn Publisher>, SpecError> {
    let parsed = reqwest::Url::parse(url)
        .ok()
        .filter(|u| (u.scheme() == "http" || u.scheme() == "https") && u.host_str().is_some());
    if parsed.is_none() {
        return Err(SpecError(format!(
            "invalid publish spec {spec:?}: expected http:URL with an http:// URL"
        )));
    }
    Ok(Arc::new(HttpPublisher::with_options(
        url,
        HttpOptions {
            content_type: content_type.to_owned(),
            ..HttpOptions::default()
        },
    )))
}

fn unknown_spec(spec: &str) -> SpecError {
    SpecError(format!(
        "invalid publish spec {spec:?}: expected stdout, file:PATH, tcp:HOST:PORT, udp:HOST:PORT or http:URL"
    ))
}

/// Calls [`Publisher::reopen`] on `publisher` each time the process gets
/// SIGHUP (logrotate's `postrotate` signal), in a task of its own. The
/// signal handler is installed before this returns. Errors of a reopen are
/// logged; the task runs until the runtime shuts down.
pub fn reopen_on_sighup(
    publisher: Arc<dyn Publisher>,
) -> std::io::Result<tokio::task::JoinHandle<()>> {
    let mut hup = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::hangup())?;
    Ok(tokio::spawn(async move {
        while hup.recv().await.is_some() {
            match publisher.reopen().await {
                Ok(()) => tracing::info!(sink = %publisher.name(), "reopened on SIGHUP"),
                Err(e) => {
                    tracing::warn!(sink = %publisher.name(), error = %e, "reopen on SIGHUP failed")
                }
            }
        }
    }))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn specs_parse_or_name_the_problem() {
        for good in [
            "stdout",
            "tcp:127.0.0.1:9000",
            "udp:localhost:514",
            "http:http://127.0.0.1:1/hook",
            "http://127.0.0.1:1/x",
        ] {
            let p = publisher_from_spec(good).await;
            assert!(p.is_ok(), "{good}: {:?}", p.err());
        }
        let p = publisher_from_spec("tcp:127.0.0.1:9000")
            .await
            .ok()
            .map(|p| p.name());
        assert_eq!(p.as_deref(), Some("tcp:127.0.0.1:9000"));
        for (bad, wanted) in [
            ("kafka:broker", "expected stdout, file:PATH"),
            ("tcp:nohost", "expected tcp:HOST:PORT"),
            ("udp:host:0", "expected udp:HOST:PORT"),
            ("udp:host:99999", "expected udp:HOST:PORT"),
            ("http:ftp://x", "expected http:URL"),
            ("file:", "expected file:PATH"),
            ("", "expected stdout"),
        ] {
            let err = publisher_from_spec(bad)
                .await
                .err()
                .map(|e| e.to_string())
                .unwrap_or_default();
            assert!(err.contains(&format!("{bad:?}")), "{bad}: {err}");
            assert!(err.contains(wanted), "{bad}: {err}");
        }
    }
}
