//! [`Client`]: one API over a local store or a remote `clew server`.
//!
//! ```no_run
//! # async fn demo() -> clew_core::Result<()> {
//! use clew_client::Client;
//! use clew_core::command::PutParams;
//!
//! // `sqlite:PATH` (or a bare path) opens the embedded store in-process;
//! // `http://HOST:PORT` talks to `clew server`.
//! let client = Client::connect("http://127.0.0.1:7400")?;
//! let jid = client.put(PutParams::new("emails", "SendEmail")).await?;
//! for job in client.pop("emails", "worker-1", 10).await? {
//!     client.complete(&job.jid, "worker-1", &job.queue, &job.data).await?;
//! }
//! # let _ = jid;
//! # Ok(())
//! # }
//! ```
//!
//! Every operation goes through one path: a typed [`Command`] is written in
//! qless-core's string form by [`qless_args`] and run with [`Client::qless`],
//! which calls the engine directly (local) or `POST /v1/qless` (remote). Both
//! answer natural JSON, and errors come back as [`clew_core::Error`] with the
//! same [`ErrorKind`] either way.

use std::sync::Arc;

use clew_core::command::{
    CompleteParams, DependsChange, JobsListing, PutParams, RecurParams, RecurUpdate,
};
use clew_core::{Command, Engine, Error, ErrorKind, Result};
use clew_sqlite::{SqliteOptions, SqliteStore};
use serde::Deserialize;
use serde_json::{Map, Value};

/// A job as the natural job JSON shows it (the reply of `get`, `pop`,
/// `peek`, `multiget`).
#[derive(Clone, Debug, Default, PartialEq, Deserialize)]
#[serde(default)]
pub struct JobView {
    /// The job id.
    pub jid: String,
    /// The job class.
    pub klass: String,
    /// The state: `waiting`, `running`, `failed`, `complete`, ...
    pub state: String,
    /// The queue (empty once complete).
    pub queue: String,
    /// The worker holding or last holding it (`""` when none).
    pub worker: String,
    /// Priority (higher runs sooner).
    pub priority: i64,
    /// When the lock expires, in seconds since the epoch (0 when not running).
    pub expires: f64,
    /// Retries allowed.
    pub retries: i64,
    /// Retries left.
    pub remaining: i64,
    /// The payload, a JSON text returned verbatim.
    pub data: String,
    /// Tags.
    pub tags: Vec<String>,
    /// History entries: `{what, when, ...details}`.
    pub history: Vec<Value>,
    /// The last failure (`{group, message, when, worker}`), or an empty object.
    pub failure: Value,
    /// Whether the job is tracked.
    pub tracked: bool,
    /// Jobs it waits for.
    pub dependencies: Vec<String>,
    /// Jobs waiting for it.
    pub dependents: Vec<String>,
    /// The recurring template it was spawned from, if any.
    pub spawned_from_jid: Option<String>,
    /// Named throttles it must hold a slot of to run.
    pub throttles: Vec<String>,
}

impl JobView {
    /// The failure group, when the job has a failure.
    pub fn failure_group(&self) -> Option<&str> {
        self.failure.get("group").and_then(Value::as_str)
    }
}

/// One committed event from the store's event log.
#[derive(Clone, Debug, PartialEq, Eq, Deserialize)]
pub struct EventView {
    /// Position in the event log (strictly increasing).
    pub seq: i64,
    /// The qless channel, e.g. `ql:log`, `ql:w:<worker>`, `ql:track`.
    pub channel: String,
    /// The payload.
    pub message: String,
}

#[derive(Debug, Clone)]
enum Backend {
    Local(Engine),
    Remote(Remote),
}

#[derive(Debug, Clone)]
struct Remote {
    http: reqwest::Client,
    base: String,
    token: Option<String>,
    /// `X-Clew-Origin: HOST:PID` of this process, made once.
    origin: reqwest::header::HeaderValue,
    /// `X-Clew-Namespace`, when the client names one.
    namespace: Option<reqwest::header::HeaderValue>,
}

/// The body of `POST /v1/qless`, written from borrowed arguments.
#[derive(serde::Serialize)]
struct QlessBody<'a> {
    command: &'a str,
    args: &'a [String],
}

/// A successful reply of `POST /v1/qless`, read straight into `T`.
#[derive(Deserialize)]
struct QlessReply<T: Default> {
    #[serde(default)]
    result: T,
}

/// A handle on clew: a local store or a remote server, with one API.
///
/// Cheap to clone; clones share the store or the HTTP connection pool.
#[derive(Debug, Clone)]
pub struct Client {
    backend: Backend,
}

/// Most events one [`Client::events_after`] call returns from a local store
/// (the server pages the same way).
const EVENTS_PAGE: i64 = 10_000;

impl Client {
    /// Connects to `url`: `http://HOST:PORT` (a `clew server`), or
    /// `sqlite:PATH` / a bare path (the embedded store, opened in-process
    /// with default options).
    pub fn connect(url: &str) -> Result<Client> {
        Client::connect_with_token(url, None)
    }

    /// Like [`Client::connect`], sending `token` as `Authorization: Bearer`
    /// to a server (ignored for a local store).
    pub fn connect_with_token(url: &str, token: Option<String>) -> Result<Client> {
        if url.starts_with("http://") || url.starts_with("https://") {
            return Client::remote(url, token);
        }

        let path = url.strip_prefix("sqlite:").unwrap_or(url);
        if path.contains("://") || path.is_empty() {
            return Err(Error::invalid(format!(
                "url: expected http://HOST:PORT, sqlite:PATH or a path, got {url:?}"
            )));
        }
        Client::open_sqlite(path, SqliteOptions::default())
    }

    /// Opens the embedded SQLite store at `path` with `options`.
    pub fn open_sqlite(path: &str, options: SqliteOptions) -> Result<Client> {
        let store = SqliteStore::open(path, options)
            .map_err(|e| Error::store(format!("opening {path}: {e}")))?;
        Ok(Client::local(Engine::new(Arc::new(store))))
    }

    /// A client over an existing engine.
    pub fn local(engine: Engine) -> Client {
        Client {
            backend: Backend::Local(engine),
        }
    }

    /// A client of the server at `base_url` (`http://HOST:PORT`). `https`
    /// is refused: this build has no TLS (put clew behind a TLS proxy and
    /// reach it over a trusted network).
    pub fn remote(base_url: &str, token: Option<String>) -> Result<Client> {
        if !base_url.starts_with("http://") {
            return Err(Error::invalid(format!(
                "url: expected http://HOST:PORT (this build has no TLS), got {base_url:?}"
            )));
        }
        let http = reqwest::Client::builder()
            .build()
            .map_err(|e| Error::store(format!("cannot build an HTTP client: {e}")))?;
        // Lifecycle events of this process's calls (dequeued, finished,
        // failed...) name this host and process, not the server's.
        let origin = clew_core::Origin::this_process();
        let origin = reqwest::header::HeaderValue::from_str(&format!(
            "{}:{}",
            origin.hostname, origin.process
        ))
        .map_err(|e| Error::invalid(format!("host name: not a header value: {e}")))?;
        Ok(Client {
            backend: Backend::Remote(Remote {
                http,
                base: base_url.trim_end_matches('/').to_owned(),
                token: token.filter(|t| !t.is_empty()),
                origin,
                namespace: None,
            }),
        })
    }

    /// Names the namespace this client means: a remote client sends it
    /// as `X-Clew-Namespace`, and a server serving another namespace
    /// refuses its requests (conflict). `None` sends nothing (the
    /// server's own). A local client is returned as is: its store is
    /// already the namespace's.
    pub fn with_namespace(mut self, namespace: Option<&str>) -> Result<Client> {
        if let Backend::Remote(remote) = &mut self.backend {
            remote.namespace = namespace
                .map(|n| {
                    reqwest::header::HeaderValue::from_str(n).map_err(|_| {
                        Error::invalid(format!("namespace: not a header value: {n:?}"))
                    })
                })
                .transpose()?;
        }
        Ok(self)
    }

    /// Whether this client talks to a server.
    pub fn is_remote(&self) -> bool {
        matches!(self.backend, Backend::Remote(_))
    }

    /// The engine of a local client.
    pub fn engine(&self) -> Option<&Engine> {
        match &self.backend {
            Backend::Local(e) => Some(e),
            Backend::Remote(_) => None,
        }
    }

    /// Runs one qless-core command in its string form (the arguments after
    /// `now`) and returns its natural JSON result.
    pub async fn qless(&self, command: &str, args: &[String]) -> Result<Value> {
        match &self.backend {
            Backend::Local(engine) => engine.qless(command, None, args).await,
            Backend::Remote(r) => r.qless(command, args).await,
        }
    }

    /// Runs a typed command and reads its natural JSON result as `T`
    /// (from a server: straight from the reply's text, no `Value` between).
    async fn execute_as<T: serde::de::DeserializeOwned + Default>(
        &self,
        cmd: &'static str,
        command: Command,
    ) -> Result<T> {
        match &self.backend {
            Backend::Local(engine) => decode(cmd, engine.execute(command).await?.to_json()),
            Backend::Remote(r) => {
                let (name, args) = qless_args(&command);
                r.qless(name, &args).await
            }
        }
    }

    /// Runs a typed command and returns its natural JSON result.
    pub async fn execute(&self, command: Command) -> Result<Value> {
        match &self.backend {
            Backend::Local(engine) => Ok(engine.execute(command).await?.to_json()),
            Backend::Remote(_) => {
                let (name, args) = qless_args(&command);
                self.qless(name, &args).await
            }
        }
    }

    /// Committed events with a sequence number greater than `after`, oldest
    /// first.
    pub async fn events_after(&self, after: i64) -> Result<Vec<EventView>> {
        match &self.backend {
            Backend::Local(engine) => Ok(engine
                .store()
                .events_after(after, EVENTS_PAGE)
                .await?
                .into_iter()
                .filter(clew_core::Event::is_qless)
                .map(|e| EventView {
                    seq: e.seq,
                    channel: e.channel,
                    message: e.message,
                })
                .collect()),
            Backend::Remote(r) => {
                let v = r
                    .send(r.get(&format!("/v1/qless/events?after={after}")))
                    .await?;
                let events = v.get("events").cloned().unwrap_or(Value::Null);
                serde_json::from_value(events)
                    .map_err(|e| Error::store(format!("events: unexpected reply: {e}")))
            }
        }
    }

    /// Puts a job; returns its jid (a new one when `params.jid` is empty;
    /// with `params.unique`, possibly the key holder's, see
    /// [`clew_core::unique`]).
    pub async fn put(&self, mut params: PutParams) -> Result<String> {
        if params.jid.is_empty() {
            params.jid = clew_core::engine::new_jid();
        }
        if params.worker.is_empty() {
            params.worker = "clew".to_owned();
        }
        let v = self.execute(Command::Put(params)).await?;
        as_string("put", v)
    }

    /// Pops up to `count` jobs of `queue` for `worker`.
    pub async fn pop(&self, queue: &str, worker: &str, count: i64) -> Result<Vec<JobView>> {
        self.execute_as(
            "pop",
            Command::Pop {
                queue: queue.to_owned(),
                worker: worker.to_owned(),
                count,
            },
        )
        .await
    }

    /// Waits up to `timeout` until one of `queues` has a job a pop would
    /// hand out; returns whether one does. On a server this is one request
    /// answered as soon as a commit makes a job available (`POST /v1/wait`),
    /// so idle workers need not poll. On a local store, which other
    /// processes may write, it peeks after every commit the store
    /// announces (PostgreSQL's LISTEN/NOTIFY) and at least every
    /// [`clew_core::engine::WAIT_RECHECK`].
    pub async fn wait_for_jobs(
        &self,
        queues: &[String],
        timeout: std::time::Duration,
    ) -> Result<bool> {
        match &self.backend {
            Backend::Local(engine) => {
                let ready = engine
                    .wait_for_jobs(clew_core::engine::WaitFor {
                        queues,
                        timeout,
                        start: engine.now(),
                        commits: engine.store().subscribe_commits(),
                        stop: None,
                    })
                    .await?;
                Ok(ready.is_some())
            }
            Backend::Remote(r) => {
                let body = serde_json::json!({
                    "queues": queues,
                    "timeout": timeout.as_secs_f64().min(30.0),
                });
                let v = r.send(r.post("/v1/wait").json(&body)).await?;
                Ok(v.get("ready").and_then(Value::as_bool).unwrap_or(false))
            }
        }
    }

    /// Renews `worker`'s lock on `jid`; returns the new expiry (seconds).
    pub async fn heartbeat(&self, jid: &str, worker: &str) -> Result<i64> {
        let v = self
            .execute(Command::Heartbeat {
                jid: jid.to_owned(),
                worker: worker.to_owned(),
                data: None,
            })
            .await?;
        v.as_i64()
            .ok_or_else(|| Error::store(format!("heartbeat: unexpected reply {v}")))
    }

    /// Completes a running job with its final `data` (JSON text); returns
    /// the new state (`complete`).
    pub async fn complete(
        &self,
        jid: &str,
        worker: &str,
        queue: &str,
        data: &str,
    ) -> Result<String> {
        self.complete_with(CompleteParams {
            jid: jid.to_owned(),
            worker: worker.to_owned(),
            queue: queue.to_owned(),
            data: data.to_owned(),
            next: None,
            delay: 0.0,
            depends: Vec::new(),
            metadata: None,
        })
        .await
    }

    /// Completes a running job, possibly advancing it into `params.next`;
    /// returns the new state.
    pub async fn complete_with(&self, params: CompleteParams) -> Result<String> {
        let v = self.execute(Command::Complete(params)).await?;
        as_string("complete", v)
    }

    /// Runs commands in one transaction (one request to a server): all or
    /// none when `atomic`, else each on its own. Returns each command's
    /// natural JSON result or refusal, in order. A put with an empty jid
    /// gets a new one.
    pub async fn batch(
        &self,
        mut commands: Vec<Command>,
        atomic: bool,
    ) -> Result<Vec<Result<Value>>> {
        for c in &mut commands {
            if let Command::Put(p) = c {
                if p.jid.is_empty() {
                    p.jid = clew_core::engine::new_jid();
                }
                if p.worker.is_empty() {
                    p.worker = "clew".to_owned();
                }
            }
        }
        let v = self.execute(Command::Batch { commands, atomic }).await?;
        let Value::Array(items) = v else {
            return Err(Error::store(format!("batch: unexpected reply {v}")));
        };
        Ok(items.into_iter().map(batch_item).collect())
    }

    /// Puts jobs in one transaction, all or none; returns their jids in
    /// order (an empty jid gets a new one).
    pub async fn put_many(&self, jobs: Vec<PutParams>) -> Result<Vec<String>> {
        let commands = jobs.into_iter().map(Command::Put).collect();
        self.batch(commands, true)
            .await?
            .into_iter()
            .map(|r| as_string("put", r?))
            .collect()
    }

    /// Creates a batch with its jobs in one transaction (see
    /// [`clew_core::batch`]); an empty batch id, callback jid or job jid gets
    /// a new one. Returns the batch id and the jobs' jids, in order.
    pub async fn create_batch(
        &self,
        mut params: clew_core::batch::BatchParams,
    ) -> Result<(String, Vec<String>)> {
        if params.id.is_empty() {
            params.id = clew_core::engine::new_jid();
        }
        if let Some(cb) = &mut params.spec.callback {
            if cb.jid.is_empty() {
                cb.jid = clew_core::engine::new_jid();
            }
        }
        for p in &mut params.jobs {
            if p.jid.is_empty() {
                p.jid = clew_core::engine::new_jid();
            }
            if p.worker.is_empty() {
                p.worker = "clew".to_owned();
            }
        }
        let id = params.id.clone();
        let v = self.execute(Command::BatchCreate(params)).await?;
        let jids: Vec<String> = decode("batch.create", v["jids"].clone())?;
        Ok((id, jids))
    }

    /// A batch's progress (`{id, total, pending, complete, failed,
    /// canceled, finished, callback_jid, callback_state, ...}`), or `None`.
    pub async fn batch_status(&self, id: &str) -> Result<Option<Value>> {
        let v = self
            .execute(Command::BatchGet { id: id.to_owned() })
            .await?;
        Ok((!v.is_null()).then_some(v))
    }

    /// Completes (or advances) jobs in one transaction, each on its own: a
    /// refused one (lock lost, say) leaves the others done. Returns each
    /// job's new state or refusal, in order.
    pub async fn complete_many(&self, jobs: Vec<CompleteParams>) -> Result<Vec<Result<String>>> {
        let commands = jobs.into_iter().map(Command::Complete).collect();
        Ok(self
            .batch(commands, false)
            .await?
            .into_iter()
            .map(|r| as_string("complete", r?))
            .collect())
    }

    /// Fails a running job into `group` with `message`.
    pub async fn fail(&self, jid: &str, worker: &str, group: &str, message: &str) -> Result<()> {
        self.execute(Command::Fail {
            jid: jid.to_owned(),
            worker: worker.to_owned(),
            group: group.to_owned(),
            message: message.to_owned(),
            data: None,
            metadata: None,
        })
        .await
        .map(|_| ())
    }

    /// Puts a running job back into `queue` after `delay` seconds; returns
    /// the retries left (negative when it failed for lack of retries).
    pub async fn retry(&self, jid: &str, queue: &str, worker: &str, delay: f64) -> Result<i64> {
        let v = self
            .execute(Command::Retry {
                jid: jid.to_owned(),
                queue: queue.to_owned(),
                worker: worker.to_owned(),
                delay,
                group: None,
                message: None,
            })
            .await?;
        v.as_i64()
            .ok_or_else(|| Error::store(format!("retry: unexpected reply {v}")))
    }

    /// Cancels jobs; returns the jids given.
    pub async fn cancel(&self, jids: &[String]) -> Result<Vec<String>> {
        let v = self
            .execute(Command::Cancel {
                jids: jids.to_vec(),
            })
            .await?;
        decode("cancel", v)
    }

    /// One job, or `None` when it does not exist.
    pub async fn get(&self, jid: &str) -> Result<Option<JobView>> {
        self.execute_as(
            "get",
            Command::Get {
                jid: jid.to_owned(),
            },
        )
        .await
    }

    /// Several jobs (missing ones are skipped).
    pub async fn multiget(&self, jids: &[String]) -> Result<Vec<JobView>> {
        if jids.is_empty() {
            return Ok(Vec::new());
        }
        self.execute_as(
            "multiget",
            Command::MultiGet {
                jids: jids.to_vec(),
            },
        )
        .await
    }

    /// Closes a local store (pending writes finish); a no-op for a server.
    pub async fn close(&self) -> Result<()> {
        match &self.backend {
            Backend::Local(engine) => engine.close().await,
            Backend::Remote(_) => Ok(()),
        }
    }
}

impl Remote {
    fn post(&self, path: &str) -> reqwest::RequestBuilder {
        self.auth(self.http.post(format!("{}{path}", self.base)))
    }

    fn get(&self, path: &str) -> reqwest::RequestBuilder {
        self.auth(self.http.get(format!("{}{path}", self.base)))
    }

    fn auth(&self, rb: reqwest::RequestBuilder) -> reqwest::RequestBuilder {
        // Lifecycle events of this process's calls (dequeued, finished,
        // failed...) name this host and process, not the server's.
        let mut rb = rb.header("x-clew-origin", self.origin.clone());
        if let Some(ns) = &self.namespace {
            rb = rb.header("x-clew-namespace", ns.clone());
        }
        match &self.token {
            Some(t) => rb.bearer_auth(t),
            None => rb,
        }
    }

    /// Runs a qless command on the server; reads the result as `T`.
    async fn qless<T: serde::de::DeserializeOwned + Default>(
        &self,
        command: &str,
        args: &[String],
    ) -> Result<T> {
        let body = serde_json::to_vec(&QlessBody { command, args })
            .map_err(|e| Error::invalid(format!("{command}: cannot write the request: {e}")))?;
        let rb = self
            .post("/v1/qless")
            .header(reqwest::header::CONTENT_TYPE, "application/json")
            .body(body);
        let bytes = self.send_bytes(rb).await?;
        serde_json::from_slice::<QlessReply<T>>(&bytes)
            .map(|r| r.result)
            .map_err(|e| Error::store(format!("{command}: unexpected reply: {e}")))
    }

    /// Sends a request; maps an error body back to [`Error`] by status.
    async fn send(&self, rb: reqwest::RequestBuilder) -> Result<Value> {
        let bytes = self.send_bytes(rb).await?;
        serde_json::from_slice(&bytes).map_err(|_| {
            Error::store(format!(
                "{}: reply is not JSON: {:.200}",
                self.base,
                String::from_utf8_lossy(&bytes)
            ))
        })
    }

    /// Sends a request; returns the body of a successful reply, or maps an
    /// error body back to [`Error`] by status.
    async fn send_bytes(
        &self,
        rb: reqwest::RequestBuilder,
    ) -> Result<impl std::ops::Deref<Target = [u8]>> {
        let resp = rb
            .send()
            .await
            .map_err(|e| Error::store(format!("cannot reach {}: {e}", self.base)))?;
        let status = resp.status();
        let bytes = resp
            .bytes()
            .await
            .map_err(|e| Error::store(format!("reading the reply of {}: {e}", self.base)))?;
        if status.is_success() {
            return Ok(bytes);
        }
        let text = String::from_utf8_lossy(&bytes);
        let body: Option<Value> = serde_json::from_str(&text).ok();
        let message = body
            .as_ref()
            .and_then(|b| b.pointer("/error/message"))
            .and_then(Value::as_str)
            .map(str::to_owned)
            .unwrap_or_else(|| format!("server answered {status}: {text:.200}"));
        Err(Error::new(kind_of_status(status.as_u16()), message))
    }
}

/// The error kind an HTTP status stands for: 400 invalid, 404 not found,
/// 409 conflict, anything else a store error.
pub fn kind_of_status(status: u16) -> ErrorKind {
    match status {
        400 => ErrorKind::Invalid,
        404 => ErrorKind::NotFound,
        409 => ErrorKind::Conflict,
        _ => ErrorKind::Store,
    }
}

/// One result of a batch reply: `{"ok": value}` or `{"error": {code, message}}`.
fn batch_item(item: Value) -> Result<Value> {
    if let Some(ok) = item.get("ok") {
        return Ok(ok.clone());
    }
    let error = item.get("error");
    let code = error.and_then(|e| e.get("code")).and_then(Value::as_str);
    let message = error.and_then(|e| e.get("message")).and_then(Value::as_str);
    match (code, message) {
        (Some(code), Some(message)) => {
            let kind = [
                ErrorKind::Invalid,
                ErrorKind::NotFound,
                ErrorKind::Conflict,
                ErrorKind::Store,
            ]
            .into_iter()
            .find(|k| k.code() == code)
            .unwrap_or(ErrorKind::Store);
            Err(Error::new(kind, message))
        }
        _ => Err(Error::store(format!("batch: unexpected result {item}"))),
    }
}

fn as_string(cmd: &str, v: Value) -> Result<String> {
    match v {
        Value::String(s) => Ok(s),
        other => Err(Error::store(format!("{cmd}: unexpected reply {other}"))),
    }
}

fn decode<T: serde::de::DeserializeOwned>(cmd: &str, v: Value) -> Result<T> {
    serde_json::from_value(v).map_err(|e| Error::store(format!("{cmd}: unexpected reply: {e}")))
}

/// Float seconds as qless writes them (`30`, `0.5`).
fn secs(v: f64) -> String {
    format!("{v}")
}

fn json_list(v: &[String]) -> String {
    Value::from(v.to_vec()).to_string()
}

/// The qless name of a `jobs` listing.
pub fn listing_name(l: JobsListing) -> &'static str {
    match l {
        JobsListing::Running => "running",
        JobsListing::Stalled => "stalled",
        JobsListing::Scheduled => "scheduled",
        JobsListing::Depends => "depends",
        JobsListing::Recurring => "recurring",
        JobsListing::Waiting => "waiting",
        JobsListing::Throttled => "throttled",
    }
}

/// Writes a typed [`Command`] in qless-core's string form: the command name
/// and its arguments after `now`. The inverse of [`clew_core::qless::parse`]:
/// parsing the result gives back the same command (for every command
/// qless-core's form can express: `failed` without a group takes no paging,
/// and `retry` with a message but no group sends an empty group).
pub fn qless_args(command: &Command) -> (&'static str, Vec<String>) {
    let s = |v: &str| v.to_owned();
    let args: Vec<String> = match command {
        Command::Batch { commands, atomic } => {
            let mut a = vec![s(if *atomic { "atomic" } else { "each" })];
            for c in commands {
                let (name, rest) = qless_args(c);
                let mut parts = vec![s(name)];
                parts.extend(rest);
                a.push(Value::from(parts).to_string());
            }
            a
        }
        Command::BatchCreate(b) => {
            let mut a = vec![s(&b.id), serde_json::to_string(&b.spec).unwrap_or_default()];
            for p in &b.jobs {
                let mut parts = vec![s("put")];
                parts.extend(put_args(p));
                a.push(Value::from(parts).to_string());
            }
            a
        }
        Command::BatchGet { id } | Command::BatchCancel { id } => vec![s(id)],
        Command::BatchList { offset, count } => vec![offset.to_string(), count.to_string()],
        Command::BatchJobs { id, offset, count } => {
            vec![s(id), offset.to_string(), count.to_string()]
        }
        Command::Cancel { jids } => jids.clone(),
        Command::Complete(p) => {
            let mut a = vec![s(&p.jid), s(&p.worker), s(&p.queue), s(&p.data)];
            if let Some(next) = &p.next {
                a.extend([s("next"), s(next)]);
                if p.delay != 0.0 {
                    a.extend([s("delay"), secs(p.delay)]);
                }
                if !p.depends.is_empty() {
                    a.extend([s("depends"), json_list(&p.depends)]);
                }
            }
            if let Some(m) = &p.metadata {
                a.extend([s("metadata"), Value::Object(m.clone()).to_string()]);
            }
            a
        }
        Command::ConfigGet { key } => key.iter().cloned().collect(),
        Command::ConfigSet { key, value } => vec![s(key), s(value)],
        Command::ConfigUnset { key } => vec![s(key)],
        Command::Depends { jid, change } => {
            let mut a = vec![s(jid)];
            match change {
                DependsChange::On(j) => {
                    a.push(s("on"));
                    a.extend(j.iter().cloned());
                }
                DependsChange::Off(j) => {
                    a.push(s("off"));
                    a.extend(j.iter().cloned());
                }
                DependsChange::OffAll => a.extend([s("off"), s("all")]),
            }
            a
        }
        Command::Fail {
            jid,
            worker,
            group,
            message,
            data,
            metadata,
        } => {
            let mut a = vec![s(jid), s(worker), s(group), s(message)];
            match (data, metadata) {
                (d, Some(m)) => {
                    a.push(d.clone().unwrap_or_default());
                    a.push(Value::Object(m.clone()).to_string());
                }
                (Some(d), None) => a.push(d.clone()),
                (None, None) => {}
            }
            a
        }
        Command::Failed {
            group,
            start,
            limit,
        } => match group {
            Some(g) => vec![s(g), start.to_string(), limit.to_string()],
            None => Vec::new(),
        },
        Command::Get { jid } => vec![s(jid)],
        Command::Heartbeat { jid, worker, data } => {
            let mut a = vec![s(jid), s(worker)];
            a.extend(data.iter().cloned());
            a
        }
        Command::Jobs {
            listing,
            queue,
            offset,
            count,
        } => vec![
            s(listing_name(*listing)),
            s(queue),
            offset.to_string(),
            count.to_string(),
        ],
        Command::JobsComplete { offset, count } => {
            vec![s("complete"), offset.to_string(), count.to_string()]
        }
        Command::Length { queue } => vec![s(queue)],
        Command::Log { jid, message, data } => {
            let mut a = vec![s(jid), s(message)];
            if let Some(d) = data {
                a.push(Value::Object(d.clone()).to_string());
            }
            a
        }
        Command::MultiGet { jids } => jids.clone(),
        Command::Pause { queues } | Command::Unpause { queues } => queues.clone(),
        Command::QueueForget { queues } => queues.clone(),
        Command::Peek { queue, count } => vec![s(queue), count.to_string()],
        Command::Pop {
            queue,
            worker,
            count,
        } => vec![s(queue), s(worker), count.to_string()],
        Command::Priority { jid, priority } => vec![s(jid), priority.to_string()],
        Command::Put(p) => put_args(p),
        Command::Queues { queue } => queue.iter().cloned().collect(),
        Command::Recur(p) => recur_args(p),
        Command::RecurGet { jid } | Command::Unrecur { jid } => vec![s(jid)],
        Command::UniqueGet { key } => vec![s(key)],
        Command::RecurTag { jid, tags } | Command::RecurUntag { jid, tags } => {
            let mut a = vec![s(jid)];
            a.extend(tags.iter().cloned());
            a
        }
        Command::RecurUpdate { jid, update } => recur_update_args(jid, update),
        Command::Release { jid, worker } => vec![s(jid), s(worker)],
        Command::Retry {
            jid,
            queue,
            worker,
            delay,
            group,
            message,
        } => {
            let mut a = vec![s(jid), s(queue), s(worker), secs(*delay)];
            match (group, message) {
                (Some(g), Some(m)) => a.extend([s(g), s(m)]),
                (Some(g), None) => a.push(s(g)),
                (None, Some(m)) => a.extend([String::new(), s(m)]),
                (None, None) => {}
            }
            a
        }
        Command::Stats { queue, date } => vec![s(queue), secs(date.as_secs_f64())],
        Command::TagAdd { jid, tags } => {
            let mut a = vec![s("add"), s(jid)];
            a.extend(tags.iter().cloned());
            a
        }
        Command::TagRemove { jid, tags } => {
            let mut a = vec![s("remove"), s(jid)];
            a.extend(tags.iter().cloned());
            a
        }
        Command::TagGet { tag, offset, count } => {
            vec![s("get"), s(tag), offset.to_string(), count.to_string()]
        }
        Command::TagTop { offset, count } => {
            vec![s("top"), offset.to_string(), count.to_string()]
        }
        Command::ThrottleSet { name, max, rate } => {
            let mut a = vec![s(name), max.to_string()];
            if let Some(r) = rate {
                a.extend([s("rate"), r.limit.to_string(), r.period.to_string()]);
            }
            a
        }
        Command::ThrottleGet { name } | Command::ThrottleDelete { name } => vec![s(name)],
        Command::ThrottleList => Vec::new(),
        Command::Timeout { jids } => jids.clone(),
        Command::Track { jid } => vec![s("track"), s(jid)],
        Command::Untrack { jid } => vec![s("untrack"), s(jid)],
        Command::Tracked => Vec::new(),
        Command::Unfail {
            queue,
            group,
            count,
        } => vec![s(queue), s(group), count.to_string()],
        Command::WorkerDeregister { workers } => workers.clone(),
        Command::Workers { worker, .. } => worker.iter().cloned().collect(),
    };
    (command.name(), args)
}

fn put_args(p: &PutParams) -> Vec<String> {
    let mut a = vec![
        p.worker.clone(),
        p.queue.clone(),
        p.jid.clone(),
        p.klass.clone(),
        p.data.clone(),
        secs(p.delay),
    ];
    if let Some(pr) = p.priority {
        a.extend(["priority".to_owned(), pr.to_string()]);
    }
    if let Some(t) = &p.tags {
        a.extend(["tags".to_owned(), json_list(t)]);
    }
    if let Some(r) = p.retries {
        a.extend(["retries".to_owned(), r.to_string()]);
    }
    if let Some(d) = &p.depends {
        a.extend(["depends".to_owned(), json_list(d)]);
    }
    if let Some(m) = &p.metadata {
        a.extend(["metadata".to_owned(), Value::Object(m.clone()).to_string()]);
    }
    if let Some(u) = &p.unique {
        a.extend(["unique".to_owned(), u.key.clone()]);
        if u.on_conflict != clew_core::unique::OnConflict::default() {
            a.extend(["on-conflict".to_owned(), u.on_conflict.as_str().to_owned()]);
        }
    }
    if let Some(b) = &p.batch {
        a.extend(["batch".to_owned(), b.clone()]);
    }
    if let Some(t) = &p.throttles {
        a.extend(["throttles".to_owned(), json_list(t)]);
    }
    a
}

fn recur_args(p: &RecurParams) -> Vec<String> {
    let (spec, every) = match &p.cron {
        Some(c) => ("cron", c.clone()),
        None => ("interval", secs(p.interval)),
    };
    let mut a = vec![
        p.queue.clone(),
        p.jid.clone(),
        p.klass.clone(),
        p.data.clone(),
        spec.to_owned(),
        every,
        secs(p.offset),
        "priority".to_owned(),
        p.priority.to_string(),
        "tags".to_owned(),
        json_list(&p.tags),
        "retries".to_owned(),
        p.retries.to_string(),
        "backlog".to_owned(),
        p.backlog.to_string(),
    ];
    if p.cron.is_some() {
        if let Some(z) = &p.timezone {
            a.extend(["timezone".to_owned(), z.clone()]);
        }
        a.extend(["missed".to_owned(), p.missed.as_str().to_owned()]);
    }
    a
}

fn recur_update_args(jid: &str, u: &RecurUpdate) -> Vec<String> {
    let mut a = vec![jid.to_owned()];
    let mut pair = |k: &str, v: Option<String>| {
        if let Some(v) = v {
            a.extend([k.to_owned(), v]);
        }
    };
    pair("priority", u.priority.map(|v| v.to_string()));
    pair("interval", u.interval.map(secs));
    pair("retries", u.retries.map(|v| v.to_string()));
    pair("data", u.data.clone());
    pair("klass", u.klass.clone());
    pair("queue", u.queue.clone());
    pair("backlog", u.backlog.map(|v| v.to_string()));
    pair("cron", u.cron.clone());
    pair("timezone", u.timezone.clone());
    pair("missed", u.missed.map(|m| m.as_str().to_owned()));
    a
}

/// A `Map` from JSON text, for [`Command::Log`] data (used by the CLI).
pub fn json_object(field: &str, text: &str) -> Result<Map<String, Value>> {
    match serde_json::from_str::<Value>(text) {
        Ok(Value::Object(m)) => Ok(m),
        _ => Err(Error::invalid(format!(
            "{field}: expected a JSON object, got {text}"
        ))),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use clew_core::qless::parse;
    use clew_core::Timestamp;
    use serde_json::json;

    fn v(items: &[&str]) -> Vec<String> {
        items.iter().map(|s| (*s).to_owned()).collect()
    }

    /// One of every [`Command`] variant (and the optional forms).
    fn every_command() -> Vec<Command> {
        let mut log_data = Map::new();
        log_data.insert("k".into(), json!(1));
        vec![
            Command::Put(PutParams {
                jid: "m".into(),
                metadata: Some(
                    serde_json::json!({"customer": 7})
                        .as_object()
                        .cloned()
                        .unwrap_or_default(),
                ),
                ..PutParams::new("q", "K")
            }),
            Command::Put(PutParams {
                jid: "u1".into(),
                unique: Some(clew_core::unique::Unique::new("search:user-42")),
                ..PutParams::new("q", "K")
            }),
            Command::Put(PutParams {
                jid: "u2".into(),
                unique: Some(
                    clew_core::unique::Unique::new("k 2")
                        .on_conflict(clew_core::unique::OnConflict::Replace),
                ),
                ..PutParams::new("q", "K")
            }),
            Command::Put(PutParams {
                jid: "u3".into(),
                unique: Some(
                    clew_core::unique::Unique::new("k3")
                        .on_conflict(clew_core::unique::OnConflict::Refuse),
                ),
                ..PutParams::new("q", "K")
            }),
            Command::Fail {
                jid: "j".into(),
                worker: "w".into(),
                group: "g".into(),
                message: "m".into(),
                data: None,
                metadata: Some(
                    serde_json::json!({"strategy": "fast"})
                        .as_object()
                        .cloned()
                        .unwrap_or_default(),
                ),
            },
            Command::Complete(CompleteParams {
                jid: "j".into(),
                worker: "w".into(),
                queue: "q".into(),
                data: "{}".into(),
                next: None,
                delay: 0.0,
                depends: Vec::new(),
                metadata: Some(
                    serde_json::json!({"pages": 3})
                        .as_object()
                        .cloned()
                        .unwrap_or_default(),
                ),
            }),
            Command::Cancel {
                jids: v(&["a", "b"]),
            },
            Command::BatchCreate(clew_core::batch::BatchParams {
                id: "b1".into(),
                spec: clew_core::batch::BatchSpec {
                    description: "nightly".into(),
                    metadata: serde_json::json!({"k": [1]})
                        .as_object()
                        .cloned()
                        .unwrap_or_default(),
                    callback: Some(clew_core::batch::CallbackSpec {
                        queue: "cb".into(),
                        klass: "Done".into(),
                        jid: "cbj".into(),
                        data: serde_json::json!({"x": 1})
                            .as_object()
                            .cloned()
                            .unwrap_or_default(),
                        priority: Some(3),
                        tags: v(&["t"]),
                        retries: Some(1),
                    }),
                },
                jobs: vec![
                    PutParams {
                        jid: "a".into(),
                        ..PutParams::new("q", "K")
                    },
                    PutParams {
                        jid: "b".into(),
                        batch: Some("b1".into()),
                        priority: Some(2),
                        ..PutParams::new("q", "K")
                    },
                ],
            }),
            Command::BatchCreate(clew_core::batch::BatchParams {
                id: "b2".into(),
                spec: Default::default(),
                jobs: vec![],
            }),
            Command::BatchGet { id: "b1".into() },
            Command::BatchCancel { id: "b1".into() },
            Command::BatchList {
                offset: 1,
                count: 2,
            },
            Command::BatchJobs {
                id: "b1".into(),
                offset: 0,
                count: 25,
            },
            Command::Put(PutParams {
                jid: "in-batch".into(),
                batch: Some("b1".into()),
                ..PutParams::new("q", "K")
            }),
            Command::Complete(CompleteParams {
                jid: "j".into(),
                worker: "w".into(),
                queue: "q".into(),
                data: r#"{"x":1}"#.into(),
                next: None,
                delay: 0.0,
                depends: vec![],
                metadata: None,
            }),
            Command::Complete(CompleteParams {
                jid: "j".into(),
                worker: "w".into(),
                queue: "q".into(),
                data: "{}".into(),
                next: Some("q2".into()),
                delay: 1.5,
                depends: v(&["d1"]),
                metadata: None,
            }),
            Command::ConfigGet { key: None },
            Command::ConfigGet {
                key: Some("heartbeat".into()),
            },
            Command::ConfigSet {
                key: "heartbeat".into(),
                value: "120".into(),
            },
            Command::ConfigUnset {
                key: "heartbeat".into(),
            },
            Command::Depends {
                jid: "j".into(),
                change: DependsChange::On(v(&["a", "b"])),
            },
            Command::Depends {
                jid: "j".into(),
                change: DependsChange::Off(v(&["a"])),
            },
            Command::Depends {
                jid: "j".into(),
                change: DependsChange::OffAll,
            },
            Command::Fail {
                jid: "j".into(),
                worker: "w".into(),
                group: "g".into(),
                message: "boom".into(),
                data: None,
                metadata: None,
            },
            Command::Fail {
                jid: "j".into(),
                worker: "w".into(),
                group: "g".into(),
                message: "".into(),
                data: Some("{}".into()),
                metadata: None,
            },
            Command::Failed {
                group: None,
                start: 0,
                limit: 25,
            },
            Command::Failed {
                group: Some("g".into()),
                start: 5,
                limit: 10,
            },
            Command::Get { jid: "j".into() },
            Command::Heartbeat {
                jid: "j".into(),
                worker: "w".into(),
                data: None,
            },
            Command::Heartbeat {
                jid: "j".into(),
                worker: "w".into(),
                data: Some("[1]".into()),
            },
            Command::Jobs {
                listing: JobsListing::Running,
                queue: "q".into(),
                offset: 0,
                count: 25,
            },
            Command::Jobs {
                listing: JobsListing::Stalled,
                queue: "q".into(),
                offset: 1,
                count: 2,
            },
            Command::Jobs {
                listing: JobsListing::Scheduled,
                queue: "q".into(),
                offset: 1,
                count: 2,
            },
            Command::Jobs {
                listing: JobsListing::Depends,
                queue: "q".into(),
                offset: 1,
                count: 2,
            },
            Command::Jobs {
                listing: JobsListing::Recurring,
                queue: "q".into(),
                offset: 1,
                count: 2,
            },
            Command::Jobs {
                listing: JobsListing::Waiting,
                queue: "q".into(),
                offset: 1,
                count: 2,
            },
            Command::JobsComplete {
                offset: 3,
                count: 4,
            },
            Command::Length { queue: "q".into() },
            Command::Log {
                jid: "j".into(),
                message: "hello".into(),
                data: None,
            },
            Command::Log {
                jid: "j".into(),
                message: "hello".into(),
                data: Some(log_data),
            },
            Command::MultiGet {
                jids: v(&["a", "b"]),
            },
            Command::Pause {
                queues: v(&["q", "r"]),
            },
            Command::Peek {
                queue: "q".into(),
                count: 3,
            },
            Command::Pop {
                queue: "q".into(),
                worker: "w".into(),
                count: 3,
            },
            Command::Priority {
                jid: "j".into(),
                priority: -4,
            },
            Command::Put(PutParams {
                worker: "w".into(),
                queue: "q".into(),
                jid: "j".into(),
                klass: "K".into(),
                data: "{}".into(),
                delay: 0.0,
                ..PutParams::default()
            }),
            Command::Put(PutParams {
                worker: "w".into(),
                queue: "q".into(),
                jid: "j".into(),
                klass: "K".into(),
                data: r#"{"a":[1,2]}"#.into(),
                delay: 2.25,
                priority: Some(3),
                tags: Some(v(&["t1", "t 2"])),
                retries: Some(2),
                depends: Some(v(&["d"])),
                must_exist: false,
                metadata: None,
                unique: None,
                batch: None,
                throttles: Some(v(&["customer-1", "api"])),
            }),
            Command::Put(PutParams {
                worker: "w".into(),
                queue: "q".into(),
                jid: "j".into(),
                klass: "K".into(),
                data: "{}".into(),
                delay: 0.0,
                must_exist: true,
                ..PutParams::default()
            }),
            Command::Queues { queue: None },
            Command::Queues {
                queue: Some("q".into()),
            },
            Command::QueueForget { queues: v(&["q"]) },
            Command::Recur(RecurParams {
                queue: "q".into(),
                jid: "r".into(),
                klass: "K".into(),
                data: "{}".into(),
                interval: 60.0,
                offset: 0.5,
                priority: 1,
                tags: v(&["t"]),
                retries: 3,
                backlog: 2,
                cron: None,
                timezone: None,
                missed: Default::default(),
            }),
            Command::Recur(RecurParams {
                queue: "q".into(),
                jid: "r".into(),
                klass: "K".into(),
                data: "{}".into(),
                interval: 0.0,
                offset: 0.0,
                priority: 0,
                tags: vec![],
                retries: 5,
                backlog: 0,
                cron: Some("*/5 9-17 * * MON-FRI".into()),
                timezone: Some("Europe/Paris".into()),
                missed: clew_core::cron::Missed::Skip,
            }),
            Command::RecurGet { jid: "r".into() },
            Command::UniqueGet {
                key: "search:user 42".into(),
            },
            Command::RecurTag {
                jid: "r".into(),
                tags: v(&["a", "b"]),
            },
            Command::RecurUntag {
                jid: "r".into(),
                tags: v(&["a"]),
            },
            Command::RecurUpdate {
                jid: "r".into(),
                update: RecurUpdate::default(),
            },
            Command::RecurUpdate {
                jid: "r".into(),
                update: RecurUpdate {
                    priority: Some(2),
                    interval: Some(30.5),
                    retries: Some(1),
                    data: Some("{}".into()),
                    klass: Some("K2".into()),
                    queue: Some("q2".into()),
                    backlog: Some(4),
                    cron: Some("0 * * * *".into()),
                    timezone: Some("UTC".into()),
                    missed: Some(clew_core::cron::Missed::CatchUp),
                },
            },
            Command::Release {
                jid: "j".into(),
                worker: "w".into(),
            },
            Command::Retry {
                jid: "j".into(),
                queue: "q".into(),
                worker: "w".into(),
                delay: 0.0,
                group: None,
                message: None,
            },
            Command::Retry {
                jid: "j".into(),
                queue: "q".into(),
                worker: "w".into(),
                delay: 30.0,
                group: Some("g".into()),
                message: Some("m".into()),
            },
            Command::Retry {
                jid: "j".into(),
                queue: "q".into(),
                worker: "w".into(),
                delay: 1.0,
                group: Some("g".into()),
                message: None,
            },
            Command::Stats {
                queue: "q".into(),
                date: Timestamp::from_secs_f64(1_700_000_000.25).expect("in range"),
            },
            Command::TagAdd {
                jid: "j".into(),
                tags: v(&["a", "b"]),
            },
            Command::TagGet {
                tag: "a".into(),
                offset: 1,
                count: 5,
            },
            Command::TagRemove {
                jid: "j".into(),
                tags: v(&["a"]),
            },
            Command::TagTop {
                offset: 0,
                count: 10,
            },
            Command::ThrottleSet {
                name: "t".into(),
                max: 3,
                rate: None,
            },
            Command::ThrottleSet {
                name: "t".into(),
                max: 0,
                rate: Some(clew_core::throttle::ThrottleRate {
                    limit: 2,
                    period: 60,
                }),
            },
            Command::ThrottleGet { name: "t".into() },
            Command::ThrottleDelete { name: "t".into() },
            Command::ThrottleList,
            Command::Timeout { jids: v(&["a"]) },
            Command::Track { jid: "j".into() },
            Command::Tracked,
            Command::Unfail {
                queue: "q".into(),
                group: "g".into(),
                count: 7,
            },
            Command::Unpause { queues: v(&["q"]) },
            Command::Unrecur { jid: "r".into() },
            Command::Untrack { jid: "j".into() },
            Command::WorkerDeregister {
                workers: v(&["w1", "w2"]),
            },
            Command::Workers {
                worker: None,
                detail: false,
            },
            Command::Workers {
                worker: None,
                detail: true,
            },
            Command::Workers {
                worker: Some("w".into()),
                detail: false,
            },
            Command::Workers {
                worker: Some("w".into()),
                detail: true,
            },
            Command::Batch {
                commands: vec![
                    Command::Put(PutParams {
                        jid: "b1".into(),
                        ..PutParams::new("q", "K")
                    }),
                    Command::Pop {
                        queue: "q".into(),
                        worker: "w".into(),
                        count: 3,
                    },
                ],
                atomic: true,
            },
            Command::Batch {
                commands: vec![Command::Cancel {
                    jids: vec!["a".into(), "b".into()],
                }],
                atomic: false,
            },
        ]
    }

    #[test]
    fn qless_args_round_trips_every_command_through_parse() {
        let commands = every_command();
        let mut names = std::collections::BTreeSet::new();
        for c in &commands {
            let (name, args) = qless_args(c);
            names.insert(name);
            let back = parse(name, &args).unwrap_or_else(|e| panic!("{c:?}: {name} {args:?}: {e}"));
            assert_eq!(&back, c, "{name} {args:?}");
        }
        // Every one of qless-core's 37 command names is covered.
        for n in clew_core::qless::COMMANDS {
            assert!(names.contains(n), "no round trip for {n}");
        }
    }

    #[test]
    fn status_maps_to_error_kind() {
        assert_eq!(kind_of_status(400), ErrorKind::Invalid);
        assert_eq!(kind_of_status(404), ErrorKind::NotFound);
        assert_eq!(kind_of_status(409), ErrorKind::Conflict);
        assert_eq!(kind_of_status(500), ErrorKind::Store);
        assert_eq!(kind_of_status(401), ErrorKind::Store);
    }

    #[test]
    fn connect_refuses_other_schemes() {
        let e = Client::connect("postgres://x/y").unwrap_err();
        assert_eq!(e.kind(), ErrorKind::Invalid);
        assert!(e.message().contains("url"), "{e}");
        let e = Client::connect("https://example.invalid").unwrap_err();
        assert_eq!(e.kind(), ErrorKind::Invalid);
        assert!(e.message().contains("TLS"), "{e}");
    }

    #[tokio::test]
    async fn local_client_puts_pops_and_completes() {
        let dir = tempfile::tempdir().expect("temp dir");
        let path = dir.path().join("c.db");
        let client = Client::connect(&format!("sqlite:{}", path.display())).expect("open");
        let jid = client.put(PutParams::new("q", "K")).await.expect("put");
        let jobs = client.pop("q", "w", 5).await.expect("pop");
        assert_eq!(jobs.len(), 1);
        assert_eq!(jobs[0].jid, jid);
        assert_eq!(jobs[0].state, "running");
        assert!(client.heartbeat(&jid, "w").await.expect("hb") > 0);
        let state = client
            .complete(&jid, "w", "q", "{}")
            .await
            .expect("complete");
        assert_eq!(state, "complete");
        let job = client.get(&jid).await.expect("get").expect("exists");
        assert_eq!(job.state, "complete");
        assert!(client.get("nope").await.expect("get").is_none());
        let e = client.complete(&jid, "w", "q", "{}").await.unwrap_err();
        assert_eq!(e.kind(), ErrorKind::Conflict, "{e}");

        // A batch: generated ids, progress, the callback once all finished.
        let (id, jids) = client
            .create_batch(clew_core::batch::BatchParams {
                id: String::new(),
                spec: clew_core::batch::BatchSpec {
                    callback: Some(clew_core::batch::CallbackSpec {
                        queue: "cb".into(),
                        klass: "Done".into(),
                        ..Default::default()
                    }),
                    ..Default::default()
                },
                jobs: vec![PutParams::new("bq", "K"), PutParams::new("bq", "K")],
            })
            .await
            .expect("create_batch");
        assert_eq!(jids.len(), 2);
        let status = client
            .batch_status(&id)
            .await
            .expect("status")
            .expect("exists");
        assert_eq!(status["pending"], 2);
        for job in client.pop("bq", "w", 5).await.expect("pop") {
            client
                .complete(&job.jid, "w", "bq", "{}")
                .await
                .expect("complete");
        }
        let status = client
            .batch_status(&id)
            .await
            .expect("status")
            .expect("exists");
        assert_eq!(status["complete"], 2);
        assert_eq!(status["callback_state"], "waiting");
        assert!(client.batch_status("nope").await.expect("status").is_none());
        client.close().await.expect("close");
    }
}
