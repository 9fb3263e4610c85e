//! [`ProcessHandler`]: runs any program as a job's handler.
//!
//! # The protocol
//!
//! For each job the worker starts `PROGRAM ARGS...` directly (no shell is
//! involved unless [`ExecConfig::shell`] is set, in which case the command
//! line is run by `sh -c`), in a process group of its own, with:
//!
//! * **stdin**: the job as one JSON document, the natural job document
//!   (`jid`, `klass`, `state`, `queue`, `worker`, `priority`, `expires`,
//!   `retries`, `remaining`, `tags`, `history`, `failure`, `tracked`,
//!   `dependencies`, `dependents`, `spawned_from_jid`) except that `data` is
//!   the payload as parsed JSON (an object, usually) rather than a JSON text.
//!   stdin is closed after the document.
//! * **environment**: the worker's environment plus `CLEW_JID`,
//!   `CLEW_KLASS`, `CLEW_QUEUE`, `CLEW_DATA` (the payload as a JSON text;
//!   left out, with `CLEW_DATA_OMITTED=1`, when it is longer than
//!   [`ExecConfig::max_env_data`], as the kernel limits the size of one
//!   variable: read stdin then), `CLEW_TAGS` (a JSON array), `CLEW_RETRIES`,
//!   `CLEW_REMAINING`, `CLEW_WORKER` and `CLEW_PRIORITY`.
//! * **stdout**: read line by line. Lines starting with `clew:` are
//!   directives, anything else is ignored (logged at debug level):
//!   * `clew:log MESSAGE [JSON-OBJECT]` appends a history entry to the job
//!     (`what` = MESSAGE, plus the object's keys);
//!   * `clew:progress JSON-OBJECT` appends a history entry `progress` with
//!     the object's keys (a value that is not an object is kept under the
//!     key `progress`);
//!   * `clew:data JSON` replaces the job's payload when it completes (the
//!     last such line wins; a line that is not JSON is ignored with a
//!     warning);
//!   * `clew:next QUEUE` completes the job into QUEUE instead of finishing it
//!     (on exit status 0);
//!   * `clew:meta JSON-OBJECT` adds runtime metadata (resque-clues): the keys
//!     appear on the job's `perform_finished` or `failed` event (keys
//!     starting with `_` are the system's and are ignored).
//!
//!   A line longer than [`ExecConfig::max_line`] is cut to that length (less
//!   the bytes of a UTF-8 character the cut would split), so reading stdout
//!   takes bounded memory whatever the program prints; when any line was
//!   cut, the job's history gets one entry `output cut` with `lines_cut` and
//!   `max_line` (a cut `clew:data` line is no longer JSON and so is ignored,
//!   with a warning).
//! * **stderr**: only its last [`ExecConfig::stderr_tail`] bytes are kept,
//!   to become the failure message; when more was written, the message
//!   starts with `[stderr cut: N earlier bytes dropped]`. A NUL byte
//!   becomes U+FFFD (the store refuses NUL in a message).
//!
//! The job's data reaches the program only through stdin and the
//! environment, never through a command line or a shell, whether or not
//! [`ExecConfig::shell`] is set (a shell runs the operator's command line,
//! not the job's text).
//!
//! The exit status decides the outcome:
//!
//! | exit | outcome |
//! | --- | --- |
//! | 0 | complete (into the `clew:next` queue if one was given) with the last `clew:data` payload |
//! | [`ExecConfig::retry_exit_code`] (default 75, `EX_TEMPFAIL`) | retry (spends a retry; backoff decides when); out of retries, it fails into `failed-retries-QUEUE` with the stderr tail as the message |
//! | any other status | fail into group `KLASS:exit-STATUS` with the stderr tail as the message |
//! | killed by signal N | fail into group `KLASS:signal-N` |
//!
//! When the job must stop (its lock was lost, it timed out, the worker is
//! stopping now), the whole process group is killed (`SIGKILL`), and so it
//! is if the handler's future is dropped. When the program exits, anything
//! it left running in its process group is killed too. A worker killed with
//! `SIGKILL` cannot kill its programs: each gets `SIGPIPE` (or `EPIPE`) at
//! its next write to stdout, and its job goes to another worker when the
//! lock expires, so a long-running program should print now and then (any
//! line, or `clew:progress`).

use std::collections::VecDeque;
use std::ffi::OsString;
use std::process::{ExitStatus, Stdio};
use std::time::Duration;

use async_trait::async_trait;
use nix::sys::signal::{killpg, Signal};
use nix::unistd::Pid;
use serde_json::{json, Map, Value};
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWriteExt};
use tokio::process::Command;

use crate::handler::{Handler, Job, JobContext, Outcome};

/// Exit status that asks for a retry by default: 75, `EX_TEMPFAIL` from
/// `sysexits.h`.
pub const DEFAULT_RETRY_EXIT_CODE: i32 = 75;

/// The environment variable a supervised `clew work` child carries; it is
/// removed from the handler program's environment.
const STRIP_ENV: &[&str] = &["CLEW_WORKER_CHILD"];

/// How a [`ProcessHandler`] runs its program.
#[derive(Clone, Debug, PartialEq)]
pub struct ExecConfig {
    /// The program (looked up on `PATH` when it has no `/`), or with
    /// [`shell`](Self::shell), the shell command line.
    pub program: OsString,
    /// Its arguments (with `shell`, they become `$0`, `$1`... of the
    /// command line, as `sh -c` passes them).
    pub args: Vec<OsString>,
    /// Run `program` through `sh -c` (so it may use pipes, redirections and
    /// variables). Off by default: the program runs directly.
    pub shell: bool,
    /// The exit status that retries the job. Defaults to
    /// [`DEFAULT_RETRY_EXIT_CODE`].
    pub retry_exit_code: i32,
    /// How many bytes of the end of stderr to keep for the failure message.
    /// Defaults to 4 KiB.
    pub stderr_tail: usize,
    /// Longest stdout line read whole; longer lines are cut. Defaults to
    /// 1 MiB.
    pub max_line: usize,
    /// Longest payload passed in `CLEW_DATA`. Defaults to 64 KiB.
    pub max_env_data: usize,
    /// How long to wait, after the program exited and its process group was
    /// killed, for the rest of its output. Defaults to 5 s.
    pub drain: Duration,
}

impl ExecConfig {
    /// Runs `program` with `args`, with every other setting at its default.
    pub fn new<P, I, A>(program: P, args: I) -> ExecConfig
    where
        P: Into<OsString>,
        I: IntoIterator<Item = A>,
        A: Into<OsString>,
    {
        ExecConfig {
            program: program.into(),
            args: args.into_iter().map(Into::into).collect(),
            shell: false,
            retry_exit_code: DEFAULT_RETRY_EXIT_CODE,
            stderr_tail: 4096,
            max_line: 1024 * 1024,
            max_env_data: 64 * 1024,
            drain: Duration::from_secs(5),
        }
    }

    /// Runs the command line `line` with `sh -c`.
    pub fn shell(line: impl Into<OsString>) -> ExecConfig {
        ExecConfig {
            shell: true,
            ..ExecConfig::new(line, Vec::<OsString>::new())
        }
    }
}

/// A [`Handler`] that runs a program for each job; see the
/// [module docs](self) for the protocol.
#[derive(Clone, Debug)]
pub struct ProcessHandler {
    config: ExecConfig,
}

impl ProcessHandler {
    /// A handler running `config`'s program.
    pub fn new(config: ExecConfig) -> ProcessHandler {
        ProcessHandler { config }
    }

    /// Its configuration.
    pub fn config(&self) -> &ExecConfig {
        &self.config
    }

    fn command(&self, job: &Job, worker: &str) -> Command {
        let c = &self.config;
        let mut cmd = if c.shell {
            let mut cmd = Command::new("sh");
            cmd.arg("-c").arg(&c.program).args(&c.args);
            cmd
        } else {
            let mut cmd = Command::new(&c.program);
            cmd.args(&c.args);
            cmd
        };
        for k in STRIP_ENV {
            cmd.env_remove(k);
        }
        cmd.env("CLEW_JID", &job.jid)
            .env("CLEW_KLASS", &job.klass)
            .env("CLEW_QUEUE", &job.queue)
            .env("CLEW_TAGS", Value::from(job.tags.clone()).to_string())
            .env("CLEW_RETRIES", job.retries.to_string())
            .env("CLEW_REMAINING", job.remaining.to_string())
            .env("CLEW_WORKER", worker)
            .env("CLEW_PRIORITY", job.priority.to_string());
        if job.data.len() <= c.max_env_data && !job.data.contains('\0') {
            cmd.env("CLEW_DATA", &job.data)
                .env_remove("CLEW_DATA_OMITTED");
        } else {
            cmd.env_remove("CLEW_DATA").env("CLEW_DATA_OMITTED", "1");
        }
        cmd.stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .process_group(0)
            .kill_on_drop(true);
        cmd
    }
}

/// The job document written to the program's stdin.
pub fn job_document(job: &Job) -> Value {
    let data: Value =
        serde_json::from_str(&job.data).unwrap_or_else(|_| Value::String(job.data.clone()));
    json!({
        "jid": job.jid,
        "klass": job.klass,
        "state": job.state,
        "queue": job.queue,
        "worker": job.worker,
        "priority": job.priority,
        "expires": job.expires,
        "retries": job.retries,
        "remaining": job.remaining,
        "data": data,
        "tags": job.tags,
        "history": job.history,
        "failure": job.failure,
        "tracked": job.tracked,
        "dependencies": job.dependencies,
        "dependents": job.dependents,
        "spawned_from_jid": job.spawned_from_jid,
    })
}

/// One parsed stdout line.
#[derive(Clone, Debug, PartialEq)]
pub enum Directive {
    /// `clew:log MESSAGE [OBJECT]`.
    Log(String, Option<Map<String, Value>>),
    /// `clew:progress OBJECT`.
    Progress(Map<String, Value>),
    /// `clew:data JSON` (the JSON text, checked).
    Data(String),
    /// `clew:next QUEUE`.
    Next(String),
    /// `clew:meta OBJECT`.
    Meta(Map<String, Value>),
    /// A `clew:` line that is malformed: why.
    Invalid(String),
    /// Any other line.
    Other,
}

/// Parses one stdout line (without its newline).
pub fn parse_line(line: &str) -> Directive {
    let line = line.trim_end_matches('\r');
    let Some(rest) = line.strip_prefix("clew:") else {
        return Directive::Other;
    };
    let (word, arg) = match rest.split_once([' ', '\t']) {
        Some((w, a)) => (w, a.trim()),
        None => (rest, ""),
    };
    match word {
        "log" => {
            // The message runs up to the first `{` from which the rest of
            // the line is a JSON object.
            for (i, _) in arg.match_indices('{') {
                if let Ok(Value::Object(map)) = serde_json::from_str::<Value>(&arg[i..]) {
                    let msg = arg[..i].trim();
                    let msg = if msg.is_empty() { "log" } else { msg };
                    return Directive::Log(msg.to_owned(), Some(map));
                }
            }
            if arg.is_empty() {
                Directive::Invalid("clew:log needs a message".into())
            } else {
                Directive::Log(arg.to_owned(), None)
            }
        }
        "progress" => match serde_json::from_str::<Value>(arg) {
            Ok(Value::Object(map)) => Directive::Progress(map),
            Ok(other) => {
                let mut map = Map::new();
                map.insert("progress".into(), other);
                Directive::Progress(map)
            }
            Err(_) if !arg.is_empty() => {
                let mut map = Map::new();
                map.insert("progress".into(), Value::String(arg.to_owned()));
                Directive::Progress(map)
            }
            Err(_) => Directive::Invalid("clew:progress needs a JSON object".into()),
        },
        "data" => match serde_json::from_str::<Value>(arg) {
            Ok(_) => Directive::Data(arg.to_owned()),
            Err(e) => Directive::Invalid(format!("clew:data: expected JSON ({e})")),
        },
        "meta" => match serde_json::from_str::<Value>(arg) {
            Ok(Value::Object(map)) => Directive::Meta(map),
            _ => Directive::Invalid(format!("clew:meta: expected a JSON object, got {arg:?}")),
        },
        "next" => {
            if arg.is_empty() || arg.contains(char::is_whitespace) {
                Directive::Invalid(format!("clew:next: expected one queue name, got {arg:?}"))
            } else {
                Directive::Next(arg.to_owned())
            }
        }
        _ => Directive::Other,
    }
}

/// What stdout said, as far as it was read.
#[derive(Debug, Default)]
struct Said {
    data: Option<String>,
    next: Option<String>,
}

/// Reads `r` line by line, cutting lines at `max_line` bytes, calling
/// `on_line` for each (without its `\n`; bytes that are not UTF-8 become
/// U+FFFD). Returns how many lines were cut. Public for the fuzz targets
/// (crate `clew-fuzz`).
pub async fn read_lines<R, F, Fut>(mut r: R, max_line: usize, mut on_line: F) -> usize
where
    R: AsyncRead + Unpin,
    F: FnMut(String) -> Fut,
    Fut: std::future::Future<Output = ()>,
{
    let max_line = max_line.max(1);
    let mut buf = [0u8; 8192];
    let mut line: Vec<u8> = Vec::new();
    let mut skipping = false;
    let mut cut = 0;
    loop {
        let n = match r.read(&mut buf).await {
            Ok(0) | Err(_) => break,
            Ok(n) => n,
        };
        let mut chunk = &buf[..n];
        while !chunk.is_empty() {
            match chunk.iter().position(|&b| b == b'\n') {
                Some(pos) => {
                    if !skipping {
                        let room = max_line - line.len();
                        line.extend_from_slice(&chunk[..pos.min(room)]);
                        on_line(if pos > room {
                            cut_text(&line)
                        } else {
                            String::from_utf8_lossy(&line).into_owned()
                        })
                        .await;
                    }
                    line.clear();
                    skipping = false;
                    chunk = &chunk[pos + 1..];
                }
                None => {
                    if !skipping {
                        let room = max_line - line.len();
                        line.extend_from_slice(&chunk[..chunk.len().min(room)]);
                        if line.len() >= max_line {
                            // Cut: hand over what fits, drop the rest of it.
                            on_line(cut_text(&line)).await;
                            line.clear();
                            skipping = true;
                            cut += 1;
                        }
                    }
                    chunk = &[];
                }
            }
        }
    }
    if !skipping && !line.is_empty() {
        on_line(String::from_utf8_lossy(&line).into_owned()).await;
    }
    cut
}

/// A cut line as text: without the start of a UTF-8 character that the cut
/// split (which would become a U+FFFD longer than the bytes it replaces).
fn cut_text(line: &[u8]) -> String {
    let keep = match std::str::from_utf8(line) {
        Err(e) if e.error_len().is_none() => e.valid_up_to(),
        _ => line.len(),
    };
    String::from_utf8_lossy(&line[..keep]).into_owned()
}

/// The end of stderr: the last bytes kept, and how many came before them.
#[derive(Debug, Default)]
struct Tail {
    kept: VecDeque<u8>,
    dropped: u64,
}

/// Keeps the last `cap` bytes read from `r` (and counts the rest).
async fn read_tail<R: AsyncRead + Unpin>(mut r: R, cap: usize, tail: &mut Tail) {
    let mut buf = [0u8; 8192];
    loop {
        let n = match r.read(&mut buf).await {
            Ok(0) | Err(_) => break,
            Ok(n) => n,
        };
        tail.kept.extend(&buf[..n]);
        let excess = tail.kept.len().saturating_sub(cap);
        tail.kept.drain(..excess);
        tail.dropped += excess as u64;
    }
}

fn tail_text(tail: &Tail) -> String {
    let bytes: Vec<u8> = tail.kept.iter().copied().collect();
    // The cut may fall inside a UTF-8 sequence: lossy conversion turns the
    // broken start into a replacement character. NUL cannot be stored.
    let text = String::from_utf8_lossy(&bytes)
        .trim_end()
        .replace('\0', "\u{FFFD}");
    if tail.dropped == 0 {
        text
    } else {
        format!(
            "[stderr cut: {} earlier bytes dropped]\n{text}",
            tail.dropped
        )
    }
}

fn kill_group(pgid: Option<Pid>) {
    if let Some(pgid) = pgid {
        // ESRCH (nothing left in the group) is the usual answer after exit.
        let _ = killpg(pgid, Signal::SIGKILL);
    }
}

/// Kills the process group when dropped, unless disarmed: a handler future
/// dropped by the worker leaves nothing running.
struct GroupGuard(Option<Pid>);

impl Drop for GroupGuard {
    fn drop(&mut self) {
        kill_group(self.0.take());
    }
}

impl ProcessHandler {
    fn outcome(&self, job: &Job, status: ExitStatus, said: Said, stderr: String) -> Outcome {
        use std::os::unix::process::ExitStatusExt;
        match (status.code(), status.signal()) {
            (Some(0), _) => match said.next {
                Some(queue) => Outcome::Advance {
                    queue,
                    delay: 0.0,
                    depends: Vec::new(),
                    data: said.data,
                },
                None => Outcome::Complete { data: said.data },
            },
            (Some(code), _) if code == self.config.retry_exit_code => Outcome::Retry {
                delay: None,
                // Named explicitly: a message without a group would fail
                // the job into the group "" when its retries run out.
                group: Some(format!("failed-retries-{}", job.queue)),
                message: Some(if stderr.is_empty() {
                    format!("exited with status {code} (retry)")
                } else {
                    stderr
                }),
            },
            (Some(code), _) => Outcome::Fail {
                group: format!("{}:exit-{code}", job.klass),
                message: if stderr.is_empty() {
                    format!("exited with status {code}")
                } else {
                    stderr
                },
            },
            (None, sig) => {
                let n = sig.unwrap_or(0);
                Outcome::Fail {
                    group: format!("{}:signal-{n}", job.klass),
                    message: if stderr.is_empty() {
                        format!("killed by signal {n}")
                    } else {
                        stderr
                    },
                }
            }
        }
    }
}

#[async_trait]
impl Handler for ProcessHandler {
    async fn perform(&self, job: &Job, ctx: &JobContext) -> Outcome {
        let mut child = match self.command(job, ctx.worker()).spawn() {
            Ok(child) => child,
            Err(e) => {
                return Outcome::Fail {
                    group: format!("{}:exec-error", job.klass),
                    message: format!("cannot run {:?}: {e}", self.config.program),
                }
            }
        };
        let pgid = child
            .id()
            .and_then(|id| i32::try_from(id).ok())
            .map(Pid::from_raw);
        let mut guard = GroupGuard(pgid);

        let stdin = child.stdin.take();
        let stdout = child.stdout.take();
        let stderr = child.stderr.take();
        let document = job_document(job).to_string();
        let mut said = Said::default();
        let mut tail = Tail::default();
        let max_line = self.config.max_line;
        let cap = self.config.stderr_tail;

        let status = {
            let said = &mut said;
            let tail = &mut tail;
            let feed = async move {
                if let Some(mut stdin) = stdin {
                    // A program that does not read its input gets a broken
                    // pipe here, which is fine.
                    let _ = stdin.write_all(document.as_bytes()).await;
                    let _ = stdin.write_all(b"\n").await;
                    let _ = stdin.shutdown().await;
                }
            };
            let out = async move {
                if let Some(stdout) = stdout {
                    let cut = read_lines(stdout, max_line, |line| {
                        let directive = parse_line(&line);
                        let ctx = ctx.clone();
                        let jid = ctx.jid().to_owned();
                        let (log, keep) = match directive {
                            Directive::Log(m, d) => (Some((m, d)), None),
                            Directive::Progress(d) => {
                                (Some(("progress".to_owned(), Some(d))), None)
                            }
                            Directive::Data(d) => (None, Some(Directive::Data(d))),
                            Directive::Next(q) => (None, Some(Directive::Next(q))),
                            Directive::Meta(m) => {
                                for (k, v) in m {
                                    ctx.add_metadata(&k, v);
                                }
                                (None, None)
                            }
                            Directive::Invalid(why) => {
                                tracing::warn!(%jid, "handler output ignored: {why}");
                                (None, None)
                            }
                            Directive::Other => {
                                tracing::debug!(%jid, "handler: {line}");
                                (None, None)
                            }
                        };
                        match keep {
                            Some(Directive::Data(d)) => said.data = Some(d),
                            Some(Directive::Next(q)) => said.next = Some(q),
                            _ => {}
                        }
                        async move {
                            if let Some((m, d)) = log {
                                if let Err(e) = ctx.log(&m, d).await {
                                    tracing::warn!(%jid, "cannot log {m:?} to the job: {e}");
                                }
                            }
                        }
                    })
                    .await;
                    if cut > 0 {
                        tracing::warn!(jid = %ctx.jid(), cut, max_line, "handler stdout lines cut");
                        let mut note = Map::new();
                        note.insert("lines_cut".into(), json!(cut));
                        note.insert("max_line".into(), json!(max_line));
                        if let Err(e) = ctx.log("output cut", Some(note)).await {
                            tracing::warn!(jid = %ctx.jid(), "cannot note the cut output: {e}");
                        }
                    }
                }
            };
            let err = async move {
                if let Some(stderr) = stderr {
                    read_tail(stderr, cap, tail).await;
                }
            };
            let io = async { tokio::join!(feed, out, err) };
            tokio::pin!(io);
            let mut io_done = false;
            let status = loop {
                tokio::select! {
                    status = child.wait() => break status,
                    _ = &mut io, if !io_done => io_done = true,
                    _ = ctx.cancelled() => {
                        kill_group(guard.0.take());
                        let _ = child.start_kill();
                        return Outcome::Retry {
                            delay: None,
                            group: None,
                            message: Some("stopped: the job was cancelled".into()),
                        };
                    }
                }
            };
            // Whatever the program left in its group goes too, so that its
            // pipes close and the rest of the output can be read.
            kill_group(guard.0.take());
            if !io_done {
                tokio::select! {
                    _ = &mut io => {}
                    _ = tokio::time::sleep(self.config.drain) => {
                        tracing::warn!(jid = %job.jid, "handler output still open after exit; not read further");
                    }
                    _ = ctx.cancelled() => {}
                }
            }
            status
        };
        drop(guard);
        match status {
            Ok(status) => self.outcome(job, status, said, tail_text(&tail)),
            Err(e) => Outcome::Fail {
                group: format!("{}:exec-error", job.klass),
                message: format!("waiting for {:?}: {e}", self.config.program),
            },
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_directives() {
        assert_eq!(parse_line("hello"), Directive::Other);
        assert_eq!(
            parse_line("clew:log step one done"),
            Directive::Log("step one done".into(), None)
        );
        let Directive::Log(m, Some(d)) = parse_line(r#"clew:log fetched {x} {"rows": 3}"#) else {
            panic!("not a log with data");
        };
        assert_eq!(m, "fetched {x}");
        assert_eq!(d["rows"], 3);
        let Directive::Progress(p) = parse_line(r#"clew:progress {"done": 5, "of": 10}"#) else {
            panic!("not progress");
        };
        assert_eq!(p["of"], 10);
        let Directive::Progress(p) = parse_line("clew:progress 50").clone() else {
            panic!("not progress");
        };
        assert_eq!(p["progress"], 50);
        assert_eq!(
            parse_line(r#"clew:data {"a":1}"#),
            Directive::Data(r#"{"a":1}"#.into())
        );
        assert!(matches!(
            parse_line("clew:data {oops"),
            Directive::Invalid(_)
        ));
        assert_eq!(parse_line("clew:next q2\r"), Directive::Next("q2".into()));
        let Directive::Meta(m) = parse_line(r#"clew:meta {"strategy": "prince"}"#) else {
            panic!("meta")
        };
        assert_eq!(m["strategy"], "prince");
        assert!(matches!(parse_line("clew:meta [1]"), Directive::Invalid(_)));
        assert!(matches!(parse_line("clew:next a b"), Directive::Invalid(_)));
        assert!(matches!(parse_line("clew:log"), Directive::Invalid(_)));
        assert_eq!(parse_line("clew:unknown x"), Directive::Other);
    }

    #[tokio::test]
    async fn cuts_long_lines_and_keeps_memory_bounded() {
        let input = format!("short\n{}\nafter\nlast", "x".repeat(100));
        let mut lines = Vec::new();
        read_lines(input.as_bytes(), 10, |l| {
            lines.push(l);
            async {}
        })
        .await;
        assert_eq!(lines, vec!["short", "xxxxxxxxxx", "after", "last"]);
    }

    /// Found by the exec_line fuzz target: a cut through a two-byte
    /// character gave "é\u{FFFD}" (5 bytes for a 3-byte limit).
    #[tokio::test]
    async fn a_cut_does_not_split_a_character() {
        let mut lines = Vec::new();
        read_lines("ééé\nok\n".as_bytes(), 3, |l| {
            lines.push(l);
            async {}
        })
        .await;
        assert_eq!(lines, vec!["é", "ok"]);
    }

    /// A store in `dir` with one job of class `Klass` popped by `w1`.
    async fn popped(dir: &tempfile::TempDir, data: &str) -> (clew_client::Client, Job) {
        let path = dir.path().join("clew.db");
        let client = clew_client::Client::open_sqlite(
            path.to_str().expect("utf-8 path"),
            clew_sqlite::SqliteOptions::default(),
        )
        .expect("open store");
        let mut put = clew_core::command::PutParams::new("q", "Klass");
        put.data = data.to_owned();
        put.tags = Some(vec!["t1".into()]);
        put.priority = Some(7);
        put.retries = Some(3);
        client.put(put).await.expect("put");
        let job = client
            .pop("q", "w1", 1)
            .await
            .expect("pop")
            .pop()
            .expect("a job");
        (client, job)
    }

    async fn run(config: ExecConfig, client: &clew_client::Client, job: &Job) -> Outcome {
        let ctx = JobContext::new(
            job.jid.clone(),
            "w1".into(),
            client.clone(),
            tokio_util::sync::CancellationToken::new(),
        );
        ProcessHandler::new(config).perform(job, &ctx).await
    }

    #[tokio::test]
    async fn a_program_gets_the_job_and_its_output_decides() {
        let dir = tempfile::tempdir().expect("temp dir");
        let (client, job) = popped(&dir, r#"{"n": 41}"#).await;
        // Checks stdin and the environment, writes history, sets data.
        let script = r#"
            doc=$(cat)
            case "$doc" in *'"data":{"n":41}'*) ;; *) echo "bad stdin: $doc" >&2; exit 3;; esac
            [ "$CLEW_JID" = "$1" ] || { echo "bad jid $CLEW_JID" >&2; exit 4; }
            [ "$CLEW_KLASS,$CLEW_QUEUE,$CLEW_WORKER,$CLEW_PRIORITY,$CLEW_RETRIES,$CLEW_REMAINING" = "Klass,q,w1,7,3,3" ] \
              || { echo "bad env" >&2; exit 5; }
            [ "$CLEW_TAGS" = '["t1"]' ] || { echo "bad tags $CLEW_TAGS" >&2; exit 6; }
            [ "$CLEW_DATA" = '{"n": 41}' ] || { echo "bad data $CLEW_DATA" >&2; exit 7; }
            echo "just chatter"
            echo 'clew:log fetched rows {"rows": 3}'
            echo 'clew:progress {"done": 1, "of": 2}'
            echo 'clew:data {"n": 0}'
            echo 'clew:data {"n": 42}'
        "#;
        let mut config = ExecConfig::shell(script);
        config.args = vec!["sh".into(), job.jid.clone().into()];
        let outcome = run(config, &client, &job).await;
        assert_eq!(
            outcome,
            Outcome::Complete {
                data: Some(r#"{"n": 42}"#.into())
            }
        );
        let after = client.get(&job.jid).await.expect("get").expect("job");
        let whats: Vec<&str> = after
            .history
            .iter()
            .filter_map(|h| h["what"].as_str())
            .collect();
        assert!(whats.contains(&"fetched rows"), "{whats:?}");
        assert!(whats.contains(&"progress"), "{whats:?}");
        let logged = after
            .history
            .iter()
            .find(|h| h["what"] == "fetched rows")
            .expect("log entry");
        assert_eq!(logged["rows"], 3);
    }

    #[tokio::test]
    async fn exit_statuses_map_to_outcomes() {
        let dir = tempfile::tempdir().expect("temp dir");
        let (client, job) = popped(&dir, "{}").await;
        let fail = run(
            ExecConfig::shell("echo early >&2; echo 'boom: it broke' >&2; exit 3"),
            &client,
            &job,
        )
        .await;
        assert_eq!(
            fail,
            Outcome::Fail {
                group: "Klass:exit-3".into(),
                message: "early\nboom: it broke".into()
            }
        );
        let retry = run(ExecConfig::shell("echo later >&2; exit 75"), &client, &job).await;
        assert_eq!(
            retry,
            Outcome::Retry {
                delay: None,
                group: Some("failed-retries-q".into()),
                message: Some("later".into())
            }
        );
        let mut custom = ExecConfig::shell("exit 9");
        custom.retry_exit_code = 9;
        assert!(matches!(
            run(custom, &client, &job).await,
            Outcome::Retry { .. }
        ));
        let killed = run(ExecConfig::shell("kill -9 $$"), &client, &job).await;
        assert_eq!(
            killed,
            Outcome::Fail {
                group: "Klass:signal-9".into(),
                message: "killed by signal 9".into()
            }
        );
        let next = run(ExecConfig::shell("echo clew:next other"), &client, &job).await;
        assert_eq!(next, Outcome::advance("other"));
        // Run directly, not through a shell: `;` is an argument to echo.
        let direct = run(
            ExecConfig::new("echo", ["clew:data", "[1];", "exit", "3"]),
            &client,
            &job,
        )
        .await;
        assert_eq!(direct, Outcome::complete());
        let missing = run(
            ExecConfig::new("/nonexistent/handler", Vec::<String>::new()),
            &client,
            &job,
        )
        .await;
        assert!(
            matches!(&missing, Outcome::Fail { group, .. } if group == "Klass:exec-error"),
            "{missing:?}"
        );
    }

    #[tokio::test]
    async fn a_big_stderr_keeps_only_its_tail() {
        let dir = tempfile::tempdir().expect("temp dir");
        let (client, job) = popped(&dir, "{}").await;
        let mut config = ExecConfig::shell(
            "i=0; while [ $i -lt 2000 ]; do echo \"line $i of noise\" >&2; i=$((i+1)); done; exit 1",
        );
        config.stderr_tail = 64;
        let Outcome::Fail { message, .. } = run(config, &client, &job).await else {
            panic!("expected a failure");
        };
        let (note, kept) = message.split_once('\n').expect("a note line");
        assert!(note.starts_with("[stderr cut: "), "{message}");
        assert!(kept.len() <= 64, "{message}");
        assert!(kept.ends_with("line 1999 of noise"), "{message}");
    }

    /// The job's own text (data, jid, class, tags) full of shell syntax is
    /// handed to a program run without `--shell` as bytes: nothing runs it.
    #[tokio::test]
    async fn job_text_is_never_run_by_a_shell() {
        let dir = tempfile::tempdir().expect("temp dir");
        let marker = dir.path().join("PWNED");
        let m = marker.to_str().expect("utf-8 path");
        let client = clew_client::Client::open_sqlite(
            dir.path().join("clew.db").to_str().expect("utf-8 path"),
            clew_sqlite::SqliteOptions::default(),
        )
        .expect("open store");
        let data = json!({
            "subst": format!("$(touch {m})"),
            "semi": format!("x; touch {m}"),
            "tick": format!("`touch {m}`"),
            "pipe": format!("| touch {m} &"),
            "quote": format!("'\"; touch {m}; echo \""),
        })
        .to_string();
        let mut put = clew_core::command::PutParams::new("q", format!("K$(touch {m})"));
        put.jid = format!("j;touch {m}");
        put.data = data.clone();
        put.tags = Some(vec![format!("`touch {m}`")]);
        client.put(put).await.expect("put");
        let job = client
            .pop("q", "w1", 1)
            .await
            .expect("pop")
            .pop()
            .expect("a job");
        // stdin, as the program got it.
        let out = dir.path().join("stdin.json");
        let got = run(ExecConfig::new("tee", [&out]), &client, &job).await;
        assert_eq!(got, Outcome::complete());
        // The environment, as the program got it (printenv reads it, no shell).
        let got = run(
            ExecConfig::new("printenv", ["CLEW_DATA", "CLEW_JID", "CLEW_KLASS"]),
            &client,
            &job,
        )
        .await;
        assert_eq!(got, Outcome::complete());
        assert!(!marker.exists(), "job text was run by a shell");
        let doc: Value = serde_json::from_str(&std::fs::read_to_string(&out).expect("stdin copy"))
            .expect("json");
        assert_eq!(
            doc["data"],
            serde_json::from_str::<Value>(&data).expect("json")
        );
        assert_eq!(doc["jid"], job.jid.as_str());
        assert_eq!(doc["klass"], job.klass.as_str());
    }

    /// Peak resident memory of this process, in KiB.
    fn peak_rss_kib() -> u64 {
        let status = std::fs::read_to_string("/proc/self/status").expect("/proc/self/status");
        status
            .lines()
            .find_map(|l| l.strip_prefix("VmHWM:"))
            .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
            .expect("VmHWM")
    }

    /// A program printing 100 MB on stdout (one line) and 100 MB on stderr
    /// does not make the worker hold it: the job completes with the data it
    /// gave afterwards, and its history notes the cut line.
    #[tokio::test]
    async fn a_flood_of_output_is_bounded_and_noted() {
        let dir = tempfile::tempdir().expect("temp dir");
        let (client, job) = popped(&dir, "{}").await;
        let before = peak_rss_kib();
        let config = ExecConfig::shell(
            "head -c 100000000 /dev/zero | tr '\\0' x; echo; \
             echo 'clew:data {\"ok\": 1}'; \
             head -c 100000000 /dev/zero | tr '\\0' y >&2; exit 0",
        );
        let got = run(config, &client, &job).await;
        assert_eq!(
            got,
            Outcome::Complete {
                data: Some(r#"{"ok": 1}"#.into())
            }
        );
        let grown_mib = peak_rss_kib().saturating_sub(before) / 1024;
        assert!(grown_mib < 48, "peak memory grew by {grown_mib} MiB");
        let after = client.get(&job.jid).await.expect("get").expect("job");
        let note = after
            .history
            .iter()
            .find(|h| h["what"] == "output cut")
            .unwrap_or_else(|| panic!("no truncation note in {:?}", after.history));
        assert_eq!(note["lines_cut"], 1);
        assert_eq!(note["max_line"], 1024 * 1024);
    }

    fn alive(pid: i32) -> bool {
        // A zombie (state Z) is dead too.
        match std::fs::read_to_string(format!("/proc/{pid}/stat")) {
            Ok(stat) => stat
                .rsplit_once(')')
                .map(|(_, rest)| !rest.trim_start().starts_with('Z'))
                .unwrap_or(false),
            Err(_) => false,
        }
    }

    async fn wait_for(what: &str, mut cond: impl FnMut() -> bool) {
        let deadline = std::time::Instant::now() + Duration::from_secs(10);
        while !cond() {
            assert!(std::time::Instant::now() < deadline, "timed out: {what}");
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
    }

    #[tokio::test]
    async fn cancelling_kills_the_whole_process_group() {
        let dir = tempfile::tempdir().expect("temp dir");
        let (client, job) = popped(&dir, "{}").await;
        let pids = dir.path().join("pids");
        let mut config = ExecConfig::shell(
            r#"sleep 300 & echo $! > "$1.tmp"; echo $$ >> "$1.tmp"; mv "$1.tmp" "$1"; wait"#,
        );
        config.args = vec!["sh".into(), pids.clone().into()];
        let cancel = tokio_util::sync::CancellationToken::new();
        let ctx = JobContext::new(job.jid.clone(), "w1".into(), client.clone(), cancel.clone());
        let handler = ProcessHandler::new(config);
        let task = tokio::spawn(async move { handler.perform(&job, &ctx).await });
        wait_for("the handler's pids", || pids.exists()).await;
        let list: Vec<i32> = std::fs::read_to_string(&pids)
            .expect("pids")
            .split_whitespace()
            .map(|p| p.parse().expect("pid"))
            .collect();
        assert_eq!(list.len(), 2);
        assert!(list.iter().all(|&p| alive(p)));
        cancel.cancel();
        let outcome = task.await.expect("join");
        assert!(matches!(outcome, Outcome::Retry { .. }), "{outcome:?}");
        wait_for("the program and its child to die", || {
            list.iter().all(|&p| !alive(p))
        })
        .await;
    }

    #[tokio::test]
    async fn dropping_the_future_kills_the_process_group() {
        let dir = tempfile::tempdir().expect("temp dir");
        let (client, job) = popped(&dir, "{}").await;
        let pids = dir.path().join("pids");
        let mut config =
            ExecConfig::shell(r#"sleep 300 & echo $! > "$1.tmp"; mv "$1.tmp" "$1"; wait"#);
        config.args = vec!["sh".into(), pids.clone().into()];
        let ctx = JobContext::new(
            job.jid.clone(),
            "w1".into(),
            client.clone(),
            tokio_util::sync::CancellationToken::new(),
        );
        let handler = ProcessHandler::new(config);
        let task = tokio::spawn(async move { handler.perform(&job, &ctx).await });
        wait_for("the handler's pid", || pids.exists()).await;
        let grandchild: i32 = std::fs::read_to_string(&pids)
            .expect("pid")
            .trim()
            .parse()
            .expect("pid");
        assert!(alive(grandchild));
        task.abort();
        let _ = task.await;
        wait_for("the background child to die", || !alive(grandchild)).await;
    }

    #[tokio::test]
    async fn leftovers_in_the_group_do_not_hold_the_job() {
        let dir = tempfile::tempdir().expect("temp dir");
        let (client, job) = popped(&dir, "{}").await;
        // The background sleep keeps stdout open; the handler must still
        // finish when the program exits.
        let outcome = tokio::time::timeout(
            Duration::from_secs(10),
            run(
                ExecConfig::shell("sleep 300 & echo clew:data 5"),
                &client,
                &job,
            ),
        )
        .await
        .expect("finished");
        assert_eq!(
            outcome,
            Outcome::Complete {
                data: Some("5".into())
            }
        );
    }

    #[tokio::test]
    async fn keeps_the_tail_of_stderr() {
        let input = "a".repeat(10_000) + "THE END";
        let mut tail = Tail::default();
        read_tail(input.as_bytes(), 100, &mut tail).await;
        let text = tail_text(&tail);
        let (note, kept) = text.split_once('\n').expect("a note line");
        assert_eq!(note, "[stderr cut: 9907 earlier bytes dropped]");
        assert_eq!(kept.len(), 100);
        assert!(kept.ends_with("aaaTHE END"));
        let mut short = Tail::default();
        read_tail(&b"one\0two\n"[..], 100, &mut short).await;
        assert_eq!(tail_text(&short), "one\u{FFFD}two");
    }
}
