//! `clew`: the command line of the clew job system.
//!
//! Every operation of the engine, against a server (`--url`, `CLEW_URL`) or
//! directly against a store (`--db`, default `sqlite:clew.db`, or
//! `postgres://...`; see [`store_url`]), printed as
//! human-readable tables or, with `--json`, as JSON for scripts.
//! `clew server` serves the HTTP/JSON API, `clew call COMMAND ARGS...` runs
//! any of qless-core's 37 commands, and `clew demo` walks one job through its
//! life. `server`, `migrate`, `demo` and the hidden `put-loop` always use
//! `--db`.

use std::io::{IsTerminal, Write};
use std::process::ExitCode;
use std::sync::Arc;
use std::time::Duration;

use anyhow::Context;
use clap::{Args, CommandFactory, FromArgMatches, Parser, Subcommand};
use clew::table::{format_time, key_values, parse_date, Table};
use clew::{Client, JobView};
use clew_core::command::{
    CompleteParams, DependsChange, JobsListing, PutParams, RecurParams, RecurUpdate,
};
use clew_core::cron::Missed;
use clew_core::{Command, Engine, Error, ErrorKind, Timestamp};
use indicatif::{ProgressBar, ProgressStyle};
use serde_json::Value;

/// mimalloc instead of the system allocator: the SQLite writer thread spent
/// a fifth of its time in glibc's malloc and free (rows, JSON, statements).
/// Its v2 line (the `v2` feature): v3, the crate's default, kept a thread's
/// freed pages until that thread allocated again, and a server that had
/// taken a million jobs peaked at 87 and 114 MB resident in two runs (47
/// MB with glibc's malloc, 63 MB with v2).
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

mod batch_cmd;
mod bench;
mod chaos;
mod config_file;
mod events_cmd;
mod namespace;
mod publish;
mod store_url;
mod throttle_cmd;
mod work;

/// clew: a background-job system with qless semantics.
#[derive(Debug, Parser)]
#[command(name = "clew", version, about)]
struct Cli {
    /// The store: `sqlite:PATH` (or a bare path), or
    /// `postgres://USER@HOST:PORT/DB?schema=NAME` (shared by any number of
    /// servers and workers; `pool=N` sets its connection pool). Used when
    /// --url is not set, and always by `server`, `migrate`, `demo` and
    /// `put-loop`.
    #[arg(long, global = true, env = "CLEW_DB", default_value = "sqlite:clew.db")]
    db: String,

    /// PostgreSQL only: the most connections this process opens to the
    /// database (default 4; wins over the URL's `pool=N`).
    #[arg(long, global = true, env = "CLEW_PG_POOL", value_name = "N")]
    pg_pool: Option<usize>,

    /// A clew server to talk to instead of the store, e.g.
    /// `http://127.0.0.1:7400`.
    #[arg(long, global = true, env = "CLEW_URL")]
    url: Option<String>,

    /// API token: sent to --url as `Authorization: Bearer TOKEN`; for
    /// `clew server`, the token every route but /healthz requires.
    #[arg(long, global = true, env = "CLEW_TOKEN", hide_env_values = true)]
    token: Option<String>,

    /// The namespace: a partition of the store sharing no queues, jobs,
    /// config, stats or keys with the others (`[a-z0-9][a-z0-9_-]{0,31}`;
    /// `default` or unset: the store as given). Local commands open its
    /// own file/schema (see `clew::namespace`); with --url it is sent as
    /// `X-Clew-Namespace`, and the server refuses a namespace it does not
    /// serve; `clew server` serves it.
    #[arg(long, global = true, env = "CLEW_NAMESPACE", value_name = "NAME")]
    namespace: Option<String>,

    /// Print results as JSON (for scripts) instead of tables.
    #[arg(long, global = true)]
    json: bool,

    /// SQLite durability (SQLite only): every setting keeps acknowledged
    /// operations through a crash of the clew process; on power loss or an
    /// OS crash `full` keeps them all, `normal` may lose the last commits
    /// (the file stays consistent), `off` may lose commits and corrupt the
    /// file. See README "Durability".
    #[arg(
        long,
        global = true,
        env = "CLEW_SQLITE_SYNCHRONOUS",
        default_value = "normal"
    )]
    synchronous: String,

    #[command(subcommand)]
    command: Cmd,
}

#[derive(Debug, Subcommand)]
enum Cmd {
    /// Serve the HTTP/JSON API (and the qless compatibility endpoint) on the
    /// store until SIGTERM or ctrl-c.
    Server {
        /// Address to listen on. A non-loopback address needs --token.
        #[arg(long, env = "CLEW_LISTEN", default_value = "127.0.0.1:7400")]
        listen: String,
        /// Test mode: callers may set `now` and flush all state (loopback only).
        #[arg(long)]
        test_mode: bool,
        /// Largest request body, in bytes.
        #[arg(long, default_value_t = 1024 * 1024)]
        body_limit: usize,
        /// Read options from this TOML file (keys named like the flags:
        /// publish, marshal, cursor_dir, metadata, metadata_header,
        /// history_max_age, ...); flags given here win.
        #[arg(long, value_name = "PATH")]
        config: Option<std::path::PathBuf>,
        /// Publish every job's lifecycle events (resque-clues) to a sink;
        /// repeatable: `stdout`, `file:PATH` (reopened on SIGHUP),
        /// `tcp:HOST:PORT`, `udp:HOST:PORT`, `http:URL`. The server and
        /// `clew work --publish` read the same durable log: configure each
        /// sink in one place only (here when there is a server).
        #[arg(long = "publish", value_name = "SPEC")]
        publish: Vec<String>,
        /// Metadata added to every job put through this server (the item
        /// preprocessor), `KEY=VALUE`; repeatable. A value that parses as
        /// JSON is kept as JSON, else as a string. Keys starting with `_` are
        /// refused (they are the system's).
        #[arg(long = "metadata", value_name = "KEY=VALUE")]
        metadata: Vec<String>,
        /// A request header whose value becomes metadata of every job put
        /// with it, `HEADER=KEY` (e.g. `X-Customer-Id=customer_id`);
        /// repeatable. The put's own metadata wins.
        #[arg(long = "metadata-header", value_name = "HEADER=KEY")]
        metadata_header: Vec<String>,
        /// Event format for --publish: `json` (resque-clues) or `logfmt`.
        #[arg(long, default_value = "json")]
        marshal: String,
        /// Directory keeping each sink's cursor (so a restart resumes where
        /// each sink stopped). Default: the store file's path + `.cursors`.
        /// Not used with PostgreSQL, which keeps the cursors in the
        /// database (shared by every server on it).
        #[arg(long)]
        cursor_dir: Option<std::path::PathBuf>,
        /// History retention: delete events older than this (seconds, or
        /// with s, m, h or d, e.g. 30d). Events a --publish sink has not
        /// delivered yet are kept.
        #[arg(long, value_name = "DURATION")]
        history_max_age: Option<String>,
        /// History retention: keep at most this many events (the newest).
        #[arg(long, value_name = "N")]
        history_max_events: Option<u64>,
        /// Seconds between history retention runs.
        #[arg(long, default_value_t = 60.0)]
        history_check: f64,
    },
    /// Create or upgrade the store's schema (`--db`) and print its version.
    /// Servers migrate on start too; several at once are safe.
    Migrate,
    /// Run one qless-core command, e.g. `clew call queues` or
    /// `clew call put me q jid1 Klass '{}' 0`; prints the JSON result.
    Call {
        /// The qless-core command name (put, pop, complete, ...).
        command: String,
        /// Its arguments, as qless-core takes them after `now`.
        #[arg(allow_hyphen_values = true)]
        args: Vec<String>,
    },
    /// Put a job into a queue; prints its jid.
    Put(PutArgs),
    /// Pop jobs for a worker (they are now running under its lock).
    Pop {
        /// The queue.
        queue: String,
        /// The worker name (default: host-pid).
        #[arg(long)]
        worker: Option<String>,
        /// How many jobs at most.
        #[arg(long, default_value_t = 1)]
        count: i64,
    },
    /// Show the jobs a pop would hand out, without taking them.
    Peek {
        /// The queue.
        queue: String,
        /// How many jobs at most.
        #[arg(long, default_value_t = 10)]
        count: i64,
    },
    /// Renew a worker's lock on a running job; prints the new expiry.
    Heartbeat {
        /// The job.
        jid: String,
        /// The worker holding it.
        #[arg(long)]
        worker: String,
        /// New payload (JSON).
        #[arg(long)]
        data: Option<String>,
    },
    /// Complete a running job.
    Complete {
        /// The job.
        jid: String,
        /// The worker holding it.
        #[arg(long)]
        worker: String,
        /// The queue it runs in.
        #[arg(long)]
        queue: String,
        /// The final payload (JSON); default keeps `{}`.
        #[arg(long, default_value = "{}")]
        data: String,
        /// Advance into this queue instead of finishing.
        #[arg(long)]
        next: Option<String>,
    },
    /// Fail a running job into a failure group.
    Fail {
        /// The job.
        jid: String,
        /// The worker holding it.
        #[arg(long)]
        worker: String,
        /// The failure group (e.g. `Klass:ErrorClass`).
        #[arg(long)]
        group: String,
        /// The message.
        #[arg(long, default_value = "")]
        message: String,
    },
    /// Show a job with its history (same as `clew job show`).
    Get {
        /// The job.
        jid: String,
    },
    /// Jobs: `clew job show JID`.
    Job {
        #[command(subcommand)]
        action: JobCmd,
    },
    /// List jobs in one state (of one queue, or of every queue).
    Jobs {
        /// failed, running, stalled, scheduled, depends, recurring, waiting,
        /// throttled or complete.
        #[arg(long, default_value = "waiting")]
        state: String,
        /// Only this queue (default: every queue).
        #[arg(long)]
        queue: Option<String>,
        /// Skip this many (per queue, or per failure group).
        #[arg(long, default_value_t = 0)]
        offset: i64,
        /// At most this many (per queue, or per failure group).
        #[arg(long, default_value_t = 25)]
        count: i64,
    },
    /// Show every queue's counts.
    Queues,
    /// Show workers and their job counts, or one worker's jobs.
    Workers {
        /// One worker.
        name: Option<String>,
    },
    /// Show a queue's statistics for one day.
    Stats {
        /// The queue.
        queue: String,
        /// The day: `YYYY-MM-DD` or seconds since the epoch (default: today).
        #[arg(long)]
        date: Option<String>,
    },
    /// Cancel jobs.
    Cancel {
        /// The jobs.
        #[arg(required = true)]
        jids: Vec<String>,
    },
    /// Retry jobs: a failed job is put back into its queue, a running job
    /// is retried (its worker loses it).
    Retry {
        /// The jobs.
        #[arg(required = true)]
        jids: Vec<String>,
    },
    /// Read and change the configuration.
    Config {
        #[command(subcommand)]
        action: ConfigCmd,
    },
    /// Throttles: at most N jobs naming a throttle run at once, across queues.
    Throttle {
        #[command(subcommand)]
        action: throttle_cmd::ThrottleCmd,
    },
    /// Stop handing out jobs from queues.
    Pause {
        /// The queues.
        #[arg(required = true)]
        queues: Vec<String>,
    },
    /// Resume handing out jobs from queues.
    Unpause {
        /// The queues.
        #[arg(required = true)]
        queues: Vec<String>,
    },
    /// Recurring jobs.
    Recur {
        #[command(subcommand)]
        action: RecurCmd,
    },
    /// Batches: jobs put together, with progress and a callback job.
    Batch {
        #[command(subcommand)]
        action: batch_cmd::BatchCmd,
    },
    /// Set a job's priority.
    Priority {
        /// The job.
        jid: String,
        /// The new priority (higher runs sooner).
        #[arg(allow_hyphen_values = true)]
        priority: i64,
    },
    /// Track a job (its events go to `ql:track`).
    Track {
        /// The job.
        jid: String,
    },
    /// Stop tracking a job.
    Untrack {
        /// The job.
        jid: String,
    },
    /// Show tracked jobs.
    Tracked,
    /// Job tags.
    Tag {
        #[command(subcommand)]
        action: TagCmd,
    },
    /// Change a waiting-on-dependencies job's dependencies.
    Depends {
        /// The job.
        jid: String,
        /// Add these dependencies.
        #[arg(long, value_delimiter = ',')]
        on: Vec<String>,
        /// Remove these dependencies (`all` removes every one).
        #[arg(long, value_delimiter = ',')]
        off: Vec<String>,
    },
    /// Append an entry to a job's history.
    Log {
        /// The job.
        jid: String,
        /// What happened.
        message: String,
        /// Details (a JSON object) merged into the entry.
        #[arg(long)]
        data: Option<String>,
    },
    /// Failure groups and their counts, or one group's jobs.
    Failed {
        /// One group.
        group: Option<String>,
        /// Skip this many of the group's jobs.
        #[arg(long, default_value_t = 0)]
        offset: i64,
        /// At most this many of the group's jobs.
        #[arg(long, default_value_t = 25)]
        count: i64,
        /// Put every job of the group back into its queue.
        #[arg(long, requires = "group", conflicts_with = "cancel_all")]
        retry_all: bool,
        /// Cancel every job of the group.
        #[arg(long, requires = "group")]
        cancel_all: bool,
    },
    /// Move the oldest failed jobs of a group back into a queue.
    Unfail {
        /// The target queue.
        queue: String,
        /// The failure group.
        group: String,
        /// At most this many.
        #[arg(long, default_value_t = 25)]
        count: i64,
    },
    /// Print events, one line each: `seq channel message` (with --json,
    /// one JSON object per line); `clew events search` and `clew events
    /// stats` search and summarise the lifecycle history.
    Events {
        /// Only events after this sequence number.
        #[arg(long, default_value_t = 0)]
        after: i64,
        /// Keep printing new events as they are committed.
        #[arg(long)]
        follow: bool,
        /// Search or summarise the lifecycle history instead.
        #[command(subcommand)]
        query: Option<events_cmd::EventsQuery>,
    },
    /// Run a program as the handler of jobs from queues: `clew work
    /// --queue a,b --exec PROGRAM [ARGS]...` (one worker process, or a
    /// supervised pool with --processes).
    Work(work::WorkArgs),
    /// Put one job, pop it, complete it, and print its history.
    Demo,
    /// Measure throughput and latency in-process on `--db` (default: a
    /// temporary SQLite file): enqueue, lifecycle and latency scenarios,
    /// medians of --repeat runs; --ceiling compares with the bare SQL.
    Bench(bench::BenchArgs),
    /// Chaos test: producers put jobs while `clew work` processes run
    /// them, and the server and workers are killed with SIGKILL at random
    /// moments and restarted; then checks that no acknowledged job was
    /// lost, none finished twice without a lock expiry, and that counts,
    /// stats, histories and events agree. Prints a one-line summary; exit 1
    /// on a lost job or a mismatch. On `--db` (default: a temporary SQLite
    /// file); traffic only to 127.0.0.1.
    Chaos(chaos::ChaosArgs),
    /// Put jobs as fast as possible and print each acknowledged jid (for
    /// crash-recovery tests).
    #[command(hide = true)]
    PutLoop {
        /// The queue.
        queue: String,
        /// Stop after this many (0: never).
        #[arg(long, default_value_t = 0)]
        count: u64,
        /// Concurrent putters.
        #[arg(long, default_value_t = 4)]
        concurrency: usize,
    },
}

#[derive(Debug, Args)]
struct PutArgs {
    /// The queue.
    queue: String,
    /// The job class.
    klass: String,
    /// The payload (JSON).
    #[arg(long, default_value = "{}")]
    data: String,
    /// The job id (default: a new UUID).
    #[arg(long)]
    jid: Option<String>,
    /// Seconds before the job may run.
    #[arg(long, default_value_t = 0.0, allow_hyphen_values = true)]
    delay: f64,
    /// Priority (higher runs sooner).
    #[arg(long, allow_hyphen_values = true)]
    priority: Option<i64>,
    /// Comma-separated tags.
    #[arg(long, value_delimiter = ',')]
    tags: Vec<String>,
    /// Retries allowed.
    #[arg(long)]
    retries: Option<i64>,
    /// Comma-separated jids this job waits for.
    #[arg(long, value_delimiter = ',')]
    depends: Vec<String>,
    /// A uniqueness key (e.g. search:user-42): while a live job (neither
    /// failed nor complete) holds it, the put does what --on-conflict says.
    #[arg(long, value_name = "KEY")]
    unique: Option<String>,
    /// With --unique: existing (print the holder's jid, change nothing),
    /// replace (replace the holder's data; refused if it is running) or
    /// refuse (fail, naming the holder).
    #[arg(long, requires = "unique", value_parser = ["existing", "replace", "refuse"])]
    on_conflict: Option<String>,
    /// The batch the job joins (it must be open).
    #[arg(long)]
    batch: Option<String>,
    /// A throttle the job must hold a slot of to run (repeatable; see
    /// `clew throttle`).
    #[arg(long = "throttle")]
    throttles: Vec<String>,
}

#[derive(Debug, Subcommand)]
enum JobCmd {
    /// Show a job with its history.
    Show {
        /// The job.
        jid: String,
    },
}

#[derive(Debug, Subcommand)]
enum ConfigCmd {
    /// Show every setting, or one.
    Get {
        /// One key.
        key: Option<String>,
    },
    /// Store a setting.
    Set {
        /// The key.
        key: String,
        /// The value.
        #[arg(allow_hyphen_values = true)]
        value: String,
    },
    /// Delete a stored setting (its default shows through).
    Unset {
        /// The key.
        key: String,
    },
}

#[derive(Debug, Subcommand)]
enum RecurCmd {
    /// Create (or replace) a recurring job; prints its jid.
    Add {
        /// The queue its children go to.
        queue: String,
        /// The children's class.
        klass: String,
        /// Seconds between children (or --cron).
        #[arg(long, required_unless_present = "cron", conflicts_with = "cron")]
        interval: Option<f64>,
        /// A 5-field cron expression ("*/5 * * * *", "0 9 * * MON-FRI",
        /// "@daily"...) instead of --interval.
        #[arg(long)]
        cron: Option<String>,
        /// The IANA time zone of --cron (default UTC).
        #[arg(long, alias = "timezone", requires = "cron")]
        tz: Option<String>,
        /// Ticks missed during downtime: catch-up (one child for all of
        /// them, the default) or skip (none).
        #[arg(long, requires = "cron")]
        missed: Option<String>,
        /// The template's jid (default: a new UUID).
        #[arg(long)]
        jid: Option<String>,
        /// Seconds until the first child (with --cron: the first tick after
        /// now + offset).
        #[arg(long, default_value_t = 0.0)]
        offset: f64,
        /// The children's payload (JSON).
        #[arg(long, default_value = "{}")]
        data: String,
        /// Priority.
        #[arg(long, default_value_t = 0, allow_hyphen_values = true)]
        priority: i64,
        /// Comma-separated tags.
        #[arg(long, value_delimiter = ',')]
        tags: Vec<String>,
        /// Retries of each child.
        #[arg(long, default_value_t = 5)]
        retries: i64,
        /// Catch-up cap after idle periods (0: no cap).
        #[arg(long, default_value_t = 0)]
        backlog: i64,
    },
    /// Show a recurring job.
    Get {
        /// The template.
        jid: String,
    },
    /// Change a recurring job.
    Update {
        /// The template.
        jid: String,
        /// New priority.
        #[arg(long, allow_hyphen_values = true)]
        priority: Option<i64>,
        /// New interval (seconds); a cron template switches to it.
        #[arg(long, conflicts_with = "cron")]
        interval: Option<f64>,
        /// New cron expression; an interval template switches to it.
        #[arg(long)]
        cron: Option<String>,
        /// New IANA time zone of the cron expression.
        #[arg(long, alias = "timezone")]
        tz: Option<String>,
        /// New handling of missed ticks: catch-up or skip.
        #[arg(long)]
        missed: Option<String>,
        /// New retries.
        #[arg(long)]
        retries: Option<i64>,
        /// New payload (JSON).
        #[arg(long)]
        data: Option<String>,
        /// New class.
        #[arg(long)]
        klass: Option<String>,
        /// New queue.
        #[arg(long)]
        queue: Option<String>,
        /// New backlog.
        #[arg(long)]
        backlog: Option<i64>,
    },
    /// Delete a recurring job.
    Remove {
        /// The template.
        jid: String,
    },
    /// Add tags to a recurring job.
    Tag {
        /// The template.
        jid: String,
        /// The tags.
        #[arg(required = true)]
        tags: Vec<String>,
    },
    /// Remove tags from a recurring job.
    Untag {
        /// The template.
        jid: String,
        /// The tags.
        #[arg(required = true)]
        tags: Vec<String>,
    },
}

#[derive(Debug, Subcommand)]
enum TagCmd {
    /// Add tags to a job.
    Add {
        /// The job.
        jid: String,
        /// The tags.
        #[arg(required = true)]
        tags: Vec<String>,
    },
    /// Remove tags from a job.
    Remove {
        /// The job.
        jid: String,
        /// The tags.
        #[arg(required = true)]
        tags: Vec<String>,
    },
    /// Jobs carrying a tag.
    Get {
        /// The tag.
        tag: String,
        /// Skip this many.
        #[arg(long, default_value_t = 0)]
        offset: i64,
        /// At most this many.
        #[arg(long, default_value_t = 25)]
        count: i64,
    },
    /// The most used tags.
    Top {
        /// Skip this many.
        #[arg(long, default_value_t = 0)]
        offset: i64,
        /// At most this many.
        #[arg(long, default_value_t = 25)]
        count: i64,
    },
}

fn main() -> ExitCode {
    let parsed = Cli::command()
        .try_get_matches()
        .and_then(|m| Cli::from_arg_matches(&m).map(|cli| (cli, m)));
    let cli = match parsed {
        Ok((cli, matches)) => match config_file::apply(cli, &matches) {
            Ok(cli) => bench::note_db_source(cli, &matches),
            Err(e) => {
                eprintln!("clew: {}", format!("{e:#}").replace(['\n', '\r'], " "));
                return ExitCode::from(exit_code(&e));
            }
        },
        Err(e) => {
            use clap::error::ErrorKind as K;
            if matches!(
                e.kind(),
                K::DisplayHelp | K::DisplayVersion | K::DisplayHelpOnMissingArgumentOrSubcommand
            ) {
                e.exit();
            }
            // Usage errors too are one line (exit 2, like invalid input).
            let text = e.to_string();
            let parts: Vec<&str> = text
                .lines()
                .take_while(|l| !l.starts_with("Usage:"))
                .map(str::trim)
                .filter(|l| !l.is_empty() && !l.starts_with("For more information"))
                .collect();
            let line = parts.join(" ");
            let line = line.strip_prefix("error: ").unwrap_or(&line);
            eprintln!("clew: {line} (see clew --help)");
            return ExitCode::from(2);
        }
    };
    let rt = match tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
    {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("clew: cannot start the runtime: {e}");
            return ExitCode::from(1);
        }
    };
    match rt.block_on(run(cli)) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            // One line, whatever the message holds.
            let msg = format!("{e:#}").replace(['\n', '\r'], " ");
            eprintln!("clew: {msg}");
            ExitCode::from(exit_code(&e))
        }
    }
}

/// Exit status by error kind: 2 invalid input, 3 not found, 4 conflict,
/// 1 anything else.
fn exit_code(e: &anyhow::Error) -> u8 {
    match e.downcast_ref::<Error>().map(Error::kind) {
        Some(ErrorKind::Invalid) => 2,
        Some(ErrorKind::NotFound) => 3,
        Some(ErrorKind::Conflict) => 4,
        _ => 1,
    }
}

/// The parsed `--db`.
fn store_url(cli: &Cli) -> anyhow::Result<store_url::StoreUrl> {
    store_url::StoreUrl::parse(&cli.db)
}

/// How `--db` is opened (`--synchronous`, `--pg-pool`).
fn open_options(cli: &Cli) -> store_url::StoreOptions {
    store_url::StoreOptions {
        synchronous: Some(cli.synchronous.clone()),
        pg_pool: cli.pg_pool,
    }
}

/// An engine on `--db`.
fn open(cli: &Cli) -> anyhow::Result<Engine> {
    let store = store_url(cli)?.open(&open_options(cli))?;
    Ok(Engine::new(store))
}

/// `clew migrate`: opens the store, which migrates it (under a lock, so
/// several at once are safe), and reports the version.
async fn migrate(cli: &Cli) -> anyhow::Result<()> {
    let url = store_url(cli)?;
    let store = url.open(&open_options(cli))?;
    store.close().await?;
    let version = url.schema_version();
    let kind = if url.is_shared() {
        "postgres"
    } else {
        "sqlite"
    };
    if cli.json {
        return print_json(&serde_json::json!({ "store": kind, "schema_version": version }));
    }
    print_str(&format!("{kind} store at schema version {version}\n"))
}

fn worker_name() -> String {
    let host = std::fs::read_to_string("/etc/hostname")
        .map(|h| h.trim().to_owned())
        .ok()
        .filter(|h| !h.is_empty())
        .unwrap_or_else(|| "localhost".to_owned());
    format!("{host}-{}", std::process::id())
}

fn print_json(v: &Value) -> anyhow::Result<()> {
    let mut out = std::io::stdout().lock();
    serde_json::to_writer_pretty(&mut out, v)?;
    writeln!(out)?;
    Ok(())
}

fn print_str(s: &str) -> anyhow::Result<()> {
    let mut out = std::io::stdout().lock();
    out.write_all(s.as_bytes())?;
    out.flush()?;
    Ok(())
}

async fn run(mut cli: Cli) -> anyhow::Result<()> {
    // Every command that opens a store opens the namespace's own.
    cli.db = namespace::namespaced_db(&cli.db, cli.namespace.as_deref())?;
    match cli.command {
        Cmd::Server {
            config: _,
            ref listen,
            test_mode,
            body_limit,
            ref publish,
            ref marshal,
            ref cursor_dir,
            ref metadata,
            ref metadata_header,
            ref history_max_age,
            history_max_events,
            history_check,
        } => {
            let metadata_headers = metadata_header
                .iter()
                .map(|f| {
                    f.split_once('=')
                        .filter(|(h, k)| {
                            !h.is_empty() && !k.is_empty() && !k.starts_with('_') && header_name_ok(h)
                        })
                        .map(|(h, k)| (h.to_ascii_lowercase(), k.to_owned()))
                        .ok_or_else(|| {
                            Error::invalid(format!(
                                "--metadata-header: expected HEADER=KEY (a header name, a key not starting with _), got {f:?}"
                            ))
                        })
                })
                .collect::<Result<Vec<_>, _>>()?;
            let retention = events_cmd::server_retention(
                history_max_age.as_deref(),
                history_max_events,
                history_check,
            )?;
            let engine = open(&cli)?;
            let engine = match static_metadata(metadata)? {
                None => engine,
                Some(extra) => engine.with_preprocessor(std::sync::Arc::new(move |p| {
                    let m = p.metadata.get_or_insert_with(Default::default);
                    for (k, v) in &extra {
                        m.entry(k.clone()).or_insert_with(|| v.clone());
                    }
                })),
            };
            let cursors = publish::Cursors::for_store(
                engine.store(),
                cursor_dir
                    .clone()
                    .or_else(|| store_url(&cli).ok()?.default_cursor_dir()),
            )
            .ok_or_else(|| Error::invalid("--cursor-dir: required with --publish"))?;
            let source = Arc::new(publish::StoreSource(engine.store().clone()));
            let publishing = publish::Publishing::start(source, publish, marshal, cursors).await?;
            let retention = retention.map(|(r, every)| {
                let handles = publishing.handles();
                events_cmd::spawn_retention(engine.clone(), r, every, move || {
                    handles.iter().map(|h| h.status().cursor() + 1).min()
                })
            });
            let result = server(
                engine.clone(),
                listen,
                clew_server::ServerConfig {
                    test_mode,
                    token: cli.token.clone(),
                    body_limit,
                    metadata_headers,
                    namespace: cli
                        .namespace
                        .clone()
                        .unwrap_or_else(|| namespace::DEFAULT.to_owned()),
                },
                &publishing,
            )
            .await;
            if let Some(task) = retention {
                task.abort();
            }
            publishing.stop().await;
            engine.close().await?;
            result
        }
        Cmd::Work(ref args) => {
            let target = work::Target {
                url: cli.url.clone(),
                db: cli.db.clone(),
                token: cli.token.clone(),
                open: open_options(&cli),
                namespace: cli.namespace.clone(),
            };
            work::run(args, &target).await
        }
        Cmd::Migrate => migrate(&cli).await,
        Cmd::Bench(ref args) => bench::run(args, &cli.db, &open_options(&cli), cli.json).await,
        Cmd::Chaos(ref args) => {
            chaos::run(
                args,
                &cli.db,
                &open_options(&cli),
                &cli.synchronous,
                cli.json,
            )
            .await
        }
        Cmd::Demo => {
            let engine = open(&cli)?;
            let result = demo(&engine).await;
            engine.close().await?;
            result
        }
        Cmd::PutLoop {
            ref queue,
            count,
            concurrency,
        } => {
            let engine = open(&cli)?;
            let result = put_loop(&engine, queue, count, concurrency).await;
            engine.close().await?;
            result
        }
        _ => {
            let client = match cli.url.as_deref().filter(|u| !u.is_empty()) {
                Some(url) => {
                    if !url.starts_with("http://") {
                        return Err(Error::invalid(format!(
                            "--url: expected http://HOST:PORT, got {url}"
                        ))
                        .into());
                    }
                    Client::remote(url, cli.token.clone())?
                        .with_namespace(cli.namespace.as_deref())?
                }
                None => Client::local(open(&cli)?),
            };
            let ctx = Ctx {
                client,
                json: cli.json,
                url: cli.url.clone().filter(|u| !u.is_empty()),
                token: cli.token.clone(),
            };
            let result = ctx.dispatch(cli.command).await;
            ctx.client.close().await?;
            result
        }
    }
}

/// What every command runs with: the client and the output format.
struct Ctx {
    client: Client,
    json: bool,
    /// The server URL when talking to one.
    url: Option<String>,
    /// The API token for the server.
    token: Option<String>,
}

/// Checks that a flag's value is JSON; names the flag when it is not.
fn check_json(flag: &str, text: &str) -> anyhow::Result<()> {
    serde_json::from_str::<Value>(text).map_err(|e| {
        Error::invalid(format!(
            "{flag}: expected a JSON document, got {text:?} ({e})"
        ))
    })?;
    Ok(())
}

fn non_empty<T>(v: Vec<T>) -> Option<Vec<T>> {
    (!v.is_empty()).then_some(v)
}

/// A progress bar on stderr for `n` steps; hidden when stderr is not a
/// terminal or there is only one step.
fn progress(n: usize, what: &str) -> ProgressBar {
    if n < 2 || !std::io::stderr().is_terminal() {
        return ProgressBar::hidden();
    }
    let bar = ProgressBar::new(n as u64);
    if let Ok(style) = ProgressStyle::with_template("{msg} [{bar:40}] {pos}/{len} ({eta})") {
        bar.set_style(style.progress_chars("=> "));
    }
    bar.set_message(what.to_owned());
    bar
}

fn text_of(v: &Value) -> String {
    match v {
        Value::String(s) => s.clone(),
        Value::Null => String::new(),
        other => other.to_string(),
    }
}

fn first_line(s: &str, max: usize) -> String {
    let line = s.lines().next().unwrap_or("");
    if line.chars().count() > max {
        let cut: String = line.chars().take(max.saturating_sub(1)).collect();
        format!("{cut}…")
    } else {
        line.to_owned()
    }
}

fn now_secs() -> f64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_secs_f64())
        .unwrap_or(0.0)
}

impl Ctx {
    async fn exec(&self, c: Command) -> anyhow::Result<Value> {
        Ok(self.client.execute(c).await?)
    }

    async fn dispatch(&self, command: Cmd) -> anyhow::Result<()> {
        match command {
            Cmd::Server { .. }
            | Cmd::Work(_)
            | Cmd::Migrate
            | Cmd::Demo
            | Cmd::PutLoop { .. }
            | Cmd::Bench(_)
            | Cmd::Chaos(_) => {
                unreachable!("handled in run")
            }
            Cmd::Call { command, args } => {
                let v = self.client.qless(&command, &args).await?;
                print_json(&v)
            }
            Cmd::Put(p) => self.put(p).await,
            Cmd::Pop {
                queue,
                worker,
                count,
            } => {
                let worker = worker.unwrap_or_else(worker_name);
                let v = self
                    .exec(Command::Pop {
                        queue,
                        worker,
                        count,
                    })
                    .await?;
                self.jobs_out(&v, false)
            }
            Cmd::Peek { queue, count } => {
                let v = self.exec(Command::Peek { queue, count }).await?;
                self.jobs_out(&v, false)
            }
            Cmd::Heartbeat { jid, worker, data } => {
                if let Some(d) = &data {
                    check_json("--data", d)?;
                }
                let v = self.exec(Command::Heartbeat { jid, worker, data }).await?;
                if self.json {
                    return print_json(&v);
                }
                let t = v.as_f64().unwrap_or(0.0);
                print_str(&format!("lock expires at {}\n", format_time(t)))
            }
            Cmd::Complete {
                jid,
                worker,
                queue,
                data,
                next,
            } => {
                check_json("--data", &data)?;
                let v = self
                    .exec(Command::Complete(CompleteParams {
                        jid,
                        worker,
                        queue,
                        data,
                        next,
                        delay: 0.0,
                        depends: Vec::new(),
                        metadata: None,
                    }))
                    .await?;
                self.scalar_out(&v)
            }
            Cmd::Fail {
                jid,
                worker,
                group,
                message,
            } => {
                let v = self
                    .exec(Command::Fail {
                        jid,
                        worker,
                        group,
                        message,
                        data: None,
                        metadata: None,
                    })
                    .await?;
                self.scalar_out(&v)
            }
            Cmd::Get { jid }
            | Cmd::Job {
                action: JobCmd::Show { jid },
            } => self.show_job(&jid).await,
            Cmd::Jobs {
                state,
                queue,
                offset,
                count,
            } => self.jobs(&state, queue, offset, count).await,
            Cmd::Queues => self.queues().await,
            Cmd::Workers { name } => self.workers(name).await,
            Cmd::Stats { queue, date } => self.stats(queue, date).await,
            Cmd::Cancel { jids } => self.cancel(jids).await,
            Cmd::Retry { jids } => self.retry(jids).await,
            Cmd::Config { action } => self.config(action).await,
            Cmd::Throttle { action } => self.throttle(action).await,
            Cmd::Pause { queues } => {
                self.exec(Command::Pause {
                    queues: queues.clone(),
                })
                .await?;
                self.done_out(&format!("paused {}", queues.join(", ")))
            }
            Cmd::Unpause { queues } => {
                self.exec(Command::Unpause {
                    queues: queues.clone(),
                })
                .await?;
                self.done_out(&format!("unpaused {}", queues.join(", ")))
            }
            Cmd::Recur { action } => self.recur(action).await,
            Cmd::Batch { action } => self.batch(action).await,
            Cmd::Priority { jid, priority } => {
                let v = self.exec(Command::Priority { jid, priority }).await?;
                self.scalar_out(&v)
            }
            Cmd::Track { jid } => {
                let v = self.exec(Command::Track { jid: jid.clone() }).await?;
                self.json_or(&v, &format!("tracking {jid}"))
            }
            Cmd::Untrack { jid } => {
                let v = self.exec(Command::Untrack { jid: jid.clone() }).await?;
                self.json_or(&v, &format!("stopped tracking {jid}"))
            }
            Cmd::Tracked => {
                let v = self.exec(Command::Tracked).await?;
                if self.json {
                    return print_json(&v);
                }
                let jobs = v.get("jobs").cloned().unwrap_or(Value::Array(vec![]));
                self.jobs_out(&jobs, false)
            }
            Cmd::Tag { action } => self.tag(action).await,
            Cmd::Depends { jid, on, off } => {
                let change = match (on.is_empty(), off.is_empty()) {
                    (false, true) => DependsChange::On(on),
                    (true, false) if off == ["all"] => DependsChange::OffAll,
                    (true, false) => DependsChange::Off(off),
                    _ => {
                        return Err(Error::invalid(
                            "depends: give exactly one of --on JIDS or --off JIDS",
                        )
                        .into())
                    }
                };
                let v = self.exec(Command::Depends { jid, change }).await?;
                self.scalar_out(&v)
            }
            Cmd::Log { jid, message, data } => {
                let data = match data {
                    Some(d) => Some(clew::client::json_object("--data", &d)?),
                    None => None,
                };
                let v = self.exec(Command::Log { jid, message, data }).await?;
                self.json_or(&v, "logged")
            }
            Cmd::Failed {
                group,
                offset,
                count,
                retry_all,
                cancel_all,
            } => {
                self.failed(group, offset, count, retry_all, cancel_all)
                    .await
            }
            Cmd::Unfail {
                queue,
                group,
                count,
            } => {
                let v = self
                    .exec(Command::Unfail {
                        queue: queue.clone(),
                        group,
                        count,
                    })
                    .await?;
                if self.json {
                    return print_json(&v);
                }
                print_str(&format!("moved {} job(s) into {queue}\n", text_of(&v)))
            }
            Cmd::Events { query: Some(q), .. } => {
                let remote = self.url.as_deref().map(|url| events_cmd::Remote {
                    url,
                    token: self.token.as_deref(),
                });
                let v = events_cmd::query(&self.client, remote, &q).await?;
                if self.json {
                    return print_json(&v);
                }
                print_str(&events_cmd::render(&q, &v))
            }
            Cmd::Events {
                after,
                follow,
                query: None,
            } => self.events(after, follow).await,
        }
    }

    /// Prints a bare value (a state, a number, a jid) or its JSON.
    fn scalar_out(&self, v: &Value) -> anyhow::Result<()> {
        if self.json {
            return print_json(v);
        }
        print_str(&format!("{}\n", text_of(v)))
    }

    /// Prints `v` as JSON, or `message`.
    fn json_or(&self, v: &Value, message: &str) -> anyhow::Result<()> {
        if self.json {
            return print_json(v);
        }
        print_str(&format!("{message}\n"))
    }

    /// Prints `null` as JSON, or `message`.
    fn done_out(&self, message: &str) -> anyhow::Result<()> {
        self.json_or(&Value::Null, message)
    }

    async fn put(&self, p: PutArgs) -> anyhow::Result<()> {
        check_json("--data", &p.data)?;
        if !p.delay.is_finite() || p.delay < 0.0 {
            return Err(
                Error::invalid(format!("--delay: expected seconds >= 0, got {}", p.delay)).into(),
            );
        }
        let unique = match p.unique {
            Some(key) => Some(clew_core::unique::Unique {
                key,
                on_conflict: match p.on_conflict.as_deref() {
                    Some(policy) => clew_core::unique::OnConflict::parse("put", policy)?,
                    None => Default::default(),
                },
            }),
            None => None,
        };
        // With a key, the jid is made here, so an answer naming another
        // job shows the put was answered by the key's holder.
        let asked = match (p.jid, &unique) {
            (Some(jid), _) => jid,
            (None, Some(_)) => clew_core::engine::new_jid(),
            (None, None) => String::new(),
        };
        let key = unique.as_ref().map(|u| u.key.clone());
        let jid = self
            .client
            .put(PutParams {
                worker: "clew".to_owned(),
                queue: p.queue,
                jid: asked.clone(),
                klass: p.klass,
                data: p.data,
                delay: p.delay,
                priority: p.priority,
                tags: non_empty(p.tags),
                retries: p.retries,
                depends: non_empty(p.depends),
                must_exist: false,
                metadata: None,
                unique,
                batch: p.batch,
                throttles: non_empty(p.throttles),
            })
            .await?;
        if let Some(key) = key.filter(|_| jid != asked) {
            eprintln!("clew: existing job {jid} holds unique key {key:?}");
        }
        self.scalar_out(&Value::from(jid))
    }

    /// Prints a list of jobs (natural JSON) as a table, or as JSON.
    fn jobs_out(&self, v: &Value, with_failure: bool) -> anyhow::Result<()> {
        if self.json {
            return print_json(v);
        }
        let jobs: Vec<JobView> = serde_json::from_value(v.clone())
            .map_err(|e| Error::store(format!("unexpected job list: {e}")))?;
        print_str(&job_table(&jobs, with_failure))
    }

    async fn show_job(&self, jid: &str) -> anyhow::Result<()> {
        let v = self
            .exec(Command::Get {
                jid: jid.to_owned(),
            })
            .await?;
        if v.is_null() {
            return Err(Error::not_found(format!("job {jid} does not exist")).into());
        }
        if self.json {
            return print_json(&v);
        }
        let j: JobView =
            serde_json::from_value(v).map_err(|e| Error::store(format!("unexpected job: {e}")))?;
        let mut pairs = vec![
            ("jid", j.jid.clone()),
            ("klass", j.klass.clone()),
            ("state", j.state.clone()),
            ("queue", j.queue.clone()),
            ("worker", j.worker.clone()),
            ("priority", j.priority.to_string()),
            ("retries", format!("{} of {} left", j.remaining, j.retries)),
            ("expires", format_time(j.expires)),
            ("tags", j.tags.join(", ")),
            ("tracked", j.tracked.to_string()),
            ("data", j.data.clone()),
        ];
        if !j.dependencies.is_empty() {
            pairs.push(("dependencies", j.dependencies.join(", ")));
        }
        if !j.dependents.is_empty() {
            pairs.push(("dependents", j.dependents.join(", ")));
        }
        if let Some(s) = &j.spawned_from_jid {
            pairs.push(("spawned from", s.clone()));
        }
        if let Some(group) = j.failure_group() {
            let msg = j
                .failure
                .get("message")
                .and_then(Value::as_str)
                .unwrap_or("");
            pairs.push(("failure", format!("{group}: {}", first_line(msg, 200))));
        }
        let mut out = key_values(&pairs);
        out.push_str("history:\n");
        let mut t = Table::new(["  WHEN", "WHAT", "DETAILS"]);
        for h in &j.history {
            let when = h.get("when").and_then(Value::as_f64).unwrap_or(0.0);
            let what = h.get("what").map(text_of).unwrap_or_default();
            let details: Vec<String> = h
                .as_object()
                .map(|m| {
                    m.iter()
                        .filter(|(k, _)| *k != "what" && *k != "when")
                        .map(|(k, v)| format!("{k}={}", text_of(v)))
                        .collect()
                })
                .unwrap_or_default();
            t.row([format!("  {}", format_time(when)), what, details.join(" ")]);
        }
        out.push_str(&t.render());
        print_str(&out)
    }

    async fn queue_names(&self) -> anyhow::Result<Vec<String>> {
        let v = self.exec(Command::Queues { queue: None }).await?;
        Ok(v.as_array()
            .map(|a| {
                a.iter()
                    .filter_map(|q| q.get("name").and_then(Value::as_str).map(str::to_owned))
                    .collect()
            })
            .unwrap_or_default())
    }

    async fn jobs(
        &self,
        state: &str,
        queue: Option<String>,
        offset: i64,
        count: i64,
    ) -> anyhow::Result<()> {
        let mut jids: Vec<String> = Vec::new();
        match state {
            "complete" => {
                let v = self.exec(Command::JobsComplete { offset, count }).await?;
                jids = strings(&v);
            }
            "failed" => {
                let groups = self
                    .exec(Command::Failed {
                        group: None,
                        start: 0,
                        limit: 0,
                    })
                    .await?;
                let names: Vec<String> = groups
                    .as_object()
                    .map(|m| m.keys().cloned().collect())
                    .unwrap_or_default();
                for g in names {
                    let page = self
                        .exec(Command::Failed {
                            group: Some(g),
                            start: offset,
                            limit: count,
                        })
                        .await?;
                    jids.extend(strings(page.get("jobs").unwrap_or(&Value::Null)));
                }
            }
            other => {
                let listing = JobsListing::parse(other).ok_or_else(|| {
                    Error::invalid(format!(
                        "--state: expected failed, running, stalled, scheduled, depends, \
                         recurring, waiting or complete, got {other:?}"
                    ))
                })?;
                let queues = match queue.clone() {
                    Some(q) => vec![q],
                    None => self.queue_names().await?,
                };
                for q in queues {
                    let v = self
                        .exec(Command::Jobs {
                            listing,
                            queue: q,
                            offset,
                            count,
                        })
                        .await?;
                    jids.extend(strings(&v));
                }
                if listing == JobsListing::Recurring {
                    return self.recurring_out(&jids).await;
                }
            }
        }
        let mut v = if jids.is_empty() {
            Value::Array(Vec::new())
        } else {
            self.exec(Command::MultiGet { jids }).await?
        };
        if let (Some(q), Value::Array(items)) = (&queue, &mut v) {
            if state == "failed" {
                items.retain(|j| j.get("queue").and_then(Value::as_str) == Some(q));
            }
        }
        if !self.json && v.as_array().is_some_and(Vec::is_empty) {
            return print_str(&format!("no {state} jobs\n"));
        }
        self.jobs_out(&v, state == "failed")
    }

    async fn recurring_out(&self, jids: &[String]) -> anyhow::Result<()> {
        let mut all = Vec::new();
        for jid in jids {
            let v = self.exec(Command::RecurGet { jid: jid.clone() }).await?;
            if !v.is_null() {
                all.push(v);
            }
        }
        if self.json {
            return print_json(&Value::Array(all));
        }
        if all.is_empty() {
            return print_str("no recurring jobs\n");
        }
        let mut t = Table::new([
            "JID", "QUEUE", "KLASS", "SCHEDULE", "PRIORITY", "COUNT", "TAGS",
        ]);
        for r in &all {
            let f = |k: &str| r.get(k).map(text_of).unwrap_or_default();
            let schedule = match r.get("cron") {
                Some(c) => format!("cron {} {}", text_of(c), f("timezone")),
                None => format!("every {}s", f("interval")),
            };
            t.row([
                f("jid"),
                f("queue"),
                f("klass"),
                schedule,
                f("priority"),
                f("count"),
                strings(r.get("tags").unwrap_or(&Value::Null)).join(","),
            ]);
        }
        print_str(&t.render())
    }

    async fn queues(&self) -> anyhow::Result<()> {
        let v = self.exec(Command::Queues { queue: None }).await?;
        if self.json {
            return print_json(&v);
        }
        let cols = [
            "waiting",
            "running",
            "stalled",
            "scheduled",
            "depends",
            "recurring",
        ];
        let mut t = Table::new([
            "QUEUE",
            "WAITING",
            "RUNNING",
            "STALLED",
            "SCHEDULED",
            "DEPENDS",
            "RECURRING",
            "PAUSED",
        ]);
        for q in v.as_array().map(Vec::as_slice).unwrap_or(&[]) {
            let mut row = vec![q.get("name").map(text_of).unwrap_or_default()];
            row.extend(
                cols.iter()
                    .map(|c| q.get(*c).map(text_of).unwrap_or_default()),
            );
            let paused = q.get("paused").and_then(Value::as_bool).unwrap_or(false);
            row.push(if paused { "yes" } else { "no" }.to_owned());
            t.row(row);
        }
        if t.is_empty() {
            return print_str("no queues\n");
        }
        print_str(&t.render())
    }

    async fn workers(&self, name: Option<String>) -> anyhow::Result<()> {
        let v = self
            .exec(Command::Workers {
                worker: name.clone(),
                detail: true,
            })
            .await?;
        if self.json {
            return print_json(&v);
        }
        match name {
            None => {
                let mut t = Table::new(["WORKER", "JOBS", "STALLED", "LAST SEEN"]);
                for w in v.as_array().map(Vec::as_slice).unwrap_or(&[]) {
                    let f = |k: &str| w.get(k).map(text_of).unwrap_or_default();
                    let seen = w
                        .get("last_seen")
                        .and_then(Value::as_f64)
                        .map(format_time)
                        .unwrap_or_default();
                    t.row([f("name"), f("jobs"), f("stalled"), seen]);
                }
                if t.is_empty() {
                    return print_str("no workers\n");
                }
                print_str(&t.render())
            }
            Some(name) => {
                let mut t = Table::new(["JID", "LOCK"]);
                for j in strings(v.get("jobs").unwrap_or(&Value::Null)) {
                    t.row([j, "running".to_owned()]);
                }
                for j in strings(v.get("stalled").unwrap_or(&Value::Null)) {
                    t.row([j, "stalled".to_owned()]);
                }
                if let Some(seen) = v.get("last_seen").and_then(Value::as_f64) {
                    print_str(&format!("worker {name}, last seen {}\n", format_time(seen)))?;
                }
                if t.is_empty() {
                    return print_str(&format!("worker {name} holds no jobs\n"));
                }
                print_str(&t.render())
            }
        }
    }

    async fn stats(&self, queue: String, date: Option<String>) -> anyhow::Result<()> {
        let secs = match date.as_deref() {
            None => now_secs(),
            Some(d) => match parse_date(d) {
                Some(s) => s as f64,
                None => d
                    .trim()
                    .parse::<f64>()
                    .ok()
                    .filter(|s| s.is_finite())
                    .ok_or_else(|| {
                        Error::invalid(format!(
                            "--date: expected YYYY-MM-DD or seconds since the epoch, got {d:?}"
                        ))
                    })?,
            },
        };
        let date = Timestamp::from_secs_f64(secs)
            .ok_or_else(|| Error::invalid(format!("--date: out of range: {secs}")))?;
        let v = self
            .exec(Command::Stats {
                queue: queue.clone(),
                date,
            })
            .await?;
        if self.json {
            return print_json(&v);
        }
        let f = |k: &str| v.get(k).map(text_of).unwrap_or_default();
        let day = format_time(date.day().as_secs_f64().max(1.0));
        let mut out = format!(
            "queue {queue}, day {}\nretries: {}  failed: {}  failures: {}\n\n",
            day.get(..10).unwrap_or(&day),
            f("retries"),
            f("failed"),
            f("failures")
        );
        let mut t = Table::new(["", "COUNT", "MEAN (s)", "STD (s)"]);
        for k in ["wait", "run"] {
            let g = |x: &str| {
                v.get(k)
                    .and_then(|s| s.get(x))
                    .and_then(Value::as_f64)
                    .unwrap_or(0.0)
            };
            t.row([
                k.to_owned(),
                format!("{}", g("count")),
                format!("{:.3}", g("mean")),
                format!("{:.3}", g("std")),
            ]);
        }
        out.push_str(&t.render());
        print_str(&out)
    }

    /// Cancels in batches of [`BATCH`] jids, with a progress bar.
    async fn cancel(&self, jids: Vec<String>) -> anyhow::Result<()> {
        let bar = progress(jids.len(), "cancelling");
        let mut done: Vec<String> = Vec::new();
        for chunk in jids.chunks(BATCH) {
            let v = self
                .exec(Command::Cancel {
                    jids: chunk.to_vec(),
                })
                .await;
            let v = match v {
                Ok(v) => v,
                Err(e) => {
                    bar.abandon();
                    return Err(e);
                }
            };
            done.extend(strings(&v));
            bar.inc(chunk.len() as u64);
        }
        bar.finish_and_clear();
        if self.json {
            return print_json(&Value::from(done));
        }
        print_str(&format!("cancelled {} job(s)\n", done.len()))
    }

    /// Retries one job: a failed job is put back into its queue with its
    /// class, data, priority, tags and retries; a running job gets qless's
    /// `retry`. Returns what was done.
    async fn retry_one(&self, jid: &str) -> anyhow::Result<Value> {
        let job = self
            .client
            .get(jid)
            .await?
            .ok_or_else(|| Error::not_found(format!("job {jid} does not exist")))?;
        match job.state.as_str() {
            "failed" => {
                self.exec(Command::Put(PutParams {
                    worker: "clew".to_owned(),
                    queue: job.queue.clone(),
                    jid: job.jid.clone(),
                    klass: job.klass.clone(),
                    data: job.data.clone(),
                    delay: 0.0,
                    priority: Some(job.priority),
                    tags: Some(job.tags.clone()),
                    retries: Some(job.retries),
                    depends: None,
                    must_exist: true,
                    metadata: None,
                    unique: None,
                    batch: None,
                    throttles: None,
                }))
                .await?;
                Ok(serde_json::json!({"jid": jid, "queue": job.queue, "action": "requeued"}))
            }
            "running" | "stalled" => {
                let left = self.client.retry(jid, &job.queue, &job.worker, 0.0).await?;
                Ok(serde_json::json!({
                    "jid": jid, "queue": job.queue, "action": "retried", "remaining": left
                }))
            }
            other => Err(Error::conflict(format!(
                "job {jid} is {other}: only failed or running jobs can be retried"
            ))
            .into()),
        }
    }

    async fn retry(&self, jids: Vec<String>) -> anyhow::Result<()> {
        let bar = progress(jids.len(), "retrying");
        let mut results = Vec::new();
        for jid in &jids {
            match self.retry_one(jid).await {
                Ok(v) => results.push(v),
                Err(e) => {
                    bar.abandon();
                    return Err(e);
                }
            }
            bar.inc(1);
        }
        bar.finish_and_clear();
        if self.json {
            return print_json(&Value::Array(results));
        }
        let mut out = String::new();
        for r in &results {
            let f = |k: &str| r.get(k).map(text_of).unwrap_or_default();
            out.push_str(&format!(
                "{}: {} into {}\n",
                f("jid"),
                f("action"),
                f("queue")
            ));
        }
        print_str(&out)
    }

    async fn config(&self, action: ConfigCmd) -> anyhow::Result<()> {
        match action {
            ConfigCmd::Get { key: None } => {
                let v = self.exec(Command::ConfigGet { key: None }).await?;
                if self.json {
                    return print_json(&v);
                }
                let mut t = Table::new(["KEY", "VALUE"]);
                for (k, val) in v.as_object().into_iter().flatten() {
                    t.row([k.clone(), text_of(val)]);
                }
                print_str(&t.render())
            }
            ConfigCmd::Get { key: Some(key) } => {
                let v = self
                    .exec(Command::ConfigGet {
                        key: Some(key.clone()),
                    })
                    .await?;
                if v.is_null() {
                    return Err(
                        Error::not_found(format!("config {key}: not set and no default")).into(),
                    );
                }
                self.scalar_out(&v)
            }
            ConfigCmd::Set { key, value } => {
                self.exec(Command::ConfigSet {
                    key: key.clone(),
                    value: value.clone(),
                })
                .await?;
                self.done_out(&format!("{key} = {value}"))
            }
            ConfigCmd::Unset { key } => {
                self.exec(Command::ConfigUnset { key: key.clone() }).await?;
                self.done_out(&format!("unset {key}"))
            }
        }
    }

    async fn recur(&self, action: RecurCmd) -> anyhow::Result<()> {
        match action {
            RecurCmd::Add {
                queue,
                klass,
                interval,
                cron,
                tz,
                missed,
                jid,
                offset,
                data,
                priority,
                tags,
                retries,
                backlog,
            } => {
                check_json("--data", &data)?;
                let missed = missed
                    .map(|m| Missed::parse("Recur", &m))
                    .transpose()?
                    .unwrap_or_default();
                let jid = jid.unwrap_or_else(clew_core::engine::new_jid);
                self.exec(Command::Recur(RecurParams {
                    queue,
                    jid: jid.clone(),
                    klass,
                    data,
                    interval: interval.unwrap_or(0.0),
                    offset,
                    priority,
                    tags,
                    retries,
                    backlog,
                    cron,
                    timezone: tz,
                    missed,
                }))
                .await?;
                self.scalar_out(&Value::from(jid))
            }
            RecurCmd::Get { jid } => {
                let v = self.exec(Command::RecurGet { jid: jid.clone() }).await?;
                if v.is_null() {
                    return Err(
                        Error::not_found(format!("recurring job {jid} does not exist")).into(),
                    );
                }
                if self.json {
                    return print_json(&v);
                }
                let f = |k: &str| v.get(k).map(text_of).unwrap_or_default();
                let pairs: Vec<(&str, String)> = [
                    "jid", "klass", "queue", "interval", "cron", "timezone", "missed", "next_at",
                    "priority", "retries", "count", "backlog", "data",
                ]
                .iter()
                // A cron template's `interval` (0, kept for qless's shape)
                // says nothing to a reader.
                .filter(|k| v.get(**k).is_some() && !(**k == "interval" && v.get("cron").is_some()))
                .map(|k| match *k {
                    "next_at" => (*k, format_time(v[*k].as_f64().unwrap_or(0.0))),
                    _ => (*k, f(k)),
                })
                .chain([(
                    "tags",
                    strings(v.get("tags").unwrap_or(&Value::Null)).join(", "),
                )])
                .collect();
                print_str(&key_values(&pairs))
            }
            RecurCmd::Update {
                jid,
                priority,
                interval,
                retries,
                data,
                klass,
                queue,
                backlog,
                cron,
                tz,
                missed,
            } => {
                if let Some(d) = &data {
                    check_json("--data", d)?;
                }
                let v = self
                    .exec(Command::RecurUpdate {
                        jid,
                        update: RecurUpdate {
                            priority,
                            interval,
                            retries,
                            data,
                            klass,
                            queue,
                            backlog,
                            cron,
                            timezone: tz,
                            missed: missed
                                .map(|m| Missed::parse("Recur.update", &m))
                                .transpose()?,
                        },
                    })
                    .await?;
                self.scalar_out(&v)
            }
            RecurCmd::Remove { jid } => {
                let v = self.exec(Command::Unrecur { jid }).await?;
                self.scalar_out(&v)
            }
            RecurCmd::Tag { jid, tags } => {
                let v = self.exec(Command::RecurTag { jid, tags }).await?;
                self.tags_out(&v)
            }
            RecurCmd::Untag { jid, tags } => {
                let v = self.exec(Command::RecurUntag { jid, tags }).await?;
                self.tags_out(&v)
            }
        }
    }

    fn tags_out(&self, v: &Value) -> anyhow::Result<()> {
        if self.json {
            return print_json(v);
        }
        print_str(&format!("tags: {}\n", strings(v).join(", ")))
    }

    async fn tag(&self, action: TagCmd) -> anyhow::Result<()> {
        match action {
            TagCmd::Add { jid, tags } => {
                let v = self.exec(Command::TagAdd { jid, tags }).await?;
                self.tags_out(&v)
            }
            TagCmd::Remove { jid, tags } => {
                let v = self.exec(Command::TagRemove { jid, tags }).await?;
                self.tags_out(&v)
            }
            TagCmd::Get { tag, offset, count } => {
                let v = self
                    .exec(Command::TagGet {
                        tag: tag.clone(),
                        offset,
                        count,
                    })
                    .await?;
                if self.json {
                    return print_json(&v);
                }
                let jids = strings(v.get("jobs").unwrap_or(&Value::Null));
                let jobs = if jids.is_empty() {
                    Value::Array(vec![])
                } else {
                    self.exec(Command::MultiGet { jids }).await?
                };
                if jobs.as_array().is_some_and(Vec::is_empty) {
                    return print_str(&format!("no jobs tagged {tag}\n"));
                }
                self.jobs_out(&jobs, false)
            }
            TagCmd::Top { offset, count } => {
                let v = self.exec(Command::TagTop { offset, count }).await?;
                if self.json {
                    return print_json(&v);
                }
                print_str(&format!("{}\n", strings(&v).join("\n")))
            }
        }
    }

    /// Every jid of a failure group, paging through it.
    async fn failed_jids(&self, group: &str) -> anyhow::Result<Vec<String>> {
        let mut out: Vec<String> = Vec::new();
        loop {
            let page = self
                .exec(Command::Failed {
                    group: Some(group.to_owned()),
                    start: out.len() as i64,
                    limit: BATCH as i64,
                })
                .await?;
            let jids = strings(page.get("jobs").unwrap_or(&Value::Null));
            let total = page.get("total").and_then(Value::as_i64).unwrap_or(0);
            let n = jids.len();
            out.extend(jids);
            if n == 0 || out.len() as i64 >= total {
                return Ok(out);
            }
        }
    }

    async fn failed(
        &self,
        group: Option<String>,
        offset: i64,
        count: i64,
        retry_all: bool,
        cancel_all: bool,
    ) -> anyhow::Result<()> {
        let Some(group) = group else {
            let v = self
                .exec(Command::Failed {
                    group: None,
                    start: 0,
                    limit: 0,
                })
                .await?;
            if self.json {
                return print_json(&v);
            }
            let mut t = Table::new(["GROUP", "JOBS"]);
            for (g, n) in v.as_object().into_iter().flatten() {
                t.row([g.clone(), text_of(n)]);
            }
            if t.is_empty() {
                return print_str("no failed jobs\n");
            }
            return print_str(&t.render());
        };
        if retry_all {
            let jids = self.failed_jids(&group).await?;
            return self.retry(jids).await;
        }
        if cancel_all {
            let jids = self.failed_jids(&group).await?;
            return self.cancel(jids).await;
        }
        let page = self
            .exec(Command::Failed {
                group: Some(group.clone()),
                start: offset,
                limit: count,
            })
            .await?;
        if self.json {
            return print_json(&page);
        }
        let jids = strings(page.get("jobs").unwrap_or(&Value::Null));
        let total = page.get("total").and_then(Value::as_i64).unwrap_or(0);
        let jobs = if jids.is_empty() {
            Value::Array(vec![])
        } else {
            self.exec(Command::MultiGet { jids: jids.clone() }).await?
        };
        let list: Vec<JobView> = serde_json::from_value(jobs)
            .map_err(|e| Error::store(format!("unexpected job list: {e}")))?;
        let mut out = format!("group {group}: {total} job(s)\n");
        if !list.is_empty() {
            out.push_str(&job_table(&list, true));
        }
        print_str(&out)
    }

    async fn events(&self, mut after: i64, follow: bool) -> anyhow::Result<()> {
        loop {
            let events = self.client.events_after(after).await?;
            let mut out = String::new();
            for e in &events {
                if self.json {
                    out.push_str(
                        &serde_json::json!({"seq": e.seq, "channel": e.channel, "message": e.message})
                            .to_string(),
                    );
                    out.push('\n');
                } else {
                    out.push_str(&format!("{} {} {}\n", e.seq, e.channel, e.message));
                }
                after = after.max(e.seq);
            }
            if !out.is_empty() {
                print_str(&out)?;
            }
            if !follow {
                return Ok(());
            }
            // A full page means more are waiting: read on without pausing.
            if events.is_empty() {
                tokio::time::sleep(Duration::from_millis(200)).await;
            }
        }
    }
}

/// Jids per request when working through many jobs (cancel, failed groups).
const BATCH: usize = 100;

fn strings(v: &Value) -> Vec<String> {
    v.as_array()
        .map(|a| {
            a.iter()
                .filter_map(Value::as_str)
                .map(str::to_owned)
                .collect()
        })
        .unwrap_or_default()
}

fn job_table(jobs: &[JobView], with_failure: bool) -> String {
    let mut header = vec![
        "JID", "STATE", "QUEUE", "KLASS", "PRIORITY", "WORKER", "TAGS",
    ];
    if with_failure {
        header.extend(["GROUP", "MESSAGE"]);
    }
    let mut t = Table::new(header);
    for j in jobs {
        let mut row = vec![
            j.jid.clone(),
            j.state.clone(),
            j.queue.clone(),
            j.klass.clone(),
            j.priority.to_string(),
            j.worker.clone(),
            j.tags.join(","),
        ];
        if with_failure {
            row.push(j.failure_group().unwrap_or("").to_owned());
            let msg = j
                .failure
                .get("message")
                .and_then(Value::as_str)
                .unwrap_or("");
            row.push(first_line(msg, 60));
        }
        t.row(row);
    }
    t.render()
}

/// Whether `name` is a valid HTTP header name (token characters).
fn header_name_ok(name: &str) -> bool {
    name.bytes()
        .all(|b| b.is_ascii_alphanumeric() || b"!#$%&'*+-.^_`|~".contains(&b))
}

/// Parses `--metadata KEY=VALUE` flags.
fn static_metadata(
    flags: &[String],
) -> anyhow::Result<Option<serde_json::Map<String, serde_json::Value>>> {
    if flags.is_empty() {
        return Ok(None);
    }
    let mut m = serde_json::Map::new();
    for f in flags {
        let (k, v) = f
            .split_once('=')
            .filter(|(k, _)| !k.is_empty())
            .ok_or_else(|| Error::invalid(format!("--metadata: expected KEY=VALUE, got {f:?}")))?;
        if k.starts_with('_') {
            return Err(Error::invalid(format!(
                "--metadata: keys starting with _ are the system's, got {k:?}"
            ))
            .into());
        }
        let value = serde_json::from_str(v).unwrap_or_else(|_| serde_json::Value::from(v));
        m.insert(k.to_owned(), value);
    }
    Ok(Some(m))
}

async fn server(
    engine: Engine,
    listen: &str,
    mut config: clew_server::ServerConfig,
    publishing: &publish::Publishing,
) -> anyhow::Result<()> {
    let _ = tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_env("CLEW_LOG")
                .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info")),
        )
        .with_writer(std::io::stderr)
        .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stderr()))
        .try_init();
    let listener = tokio::net::TcpListener::bind(listen)
        .await
        .with_context(|| format!("--listen: cannot bind {listen}"))?;
    let addr = listener.local_addr()?;
    config.token = config.token.filter(|t| !t.is_empty());
    let test_mode = config.test_mode;
    if !addr.ip().is_loopback() && config.token.is_none() {
        anyhow::bail!("--listen {addr} is not a loopback address: set an API token with --token or CLEW_TOKEN");
    }
    if test_mode && !addr.ip().is_loopback() {
        anyhow::bail!("--test-mode is only allowed on a loopback address, not {addr}");
    }
    let state = clew_server::AppState::new(engine, config).with_sink_lags({
        let handles = publishing.handles();
        std::sync::Arc::new(move || {
            handles
                .iter()
                .map(|h| (h.name().to_owned(), h.status().lag()))
                .collect()
        })
    });
    // Signal handlers first: a SIGTERM right after the listening line must
    // shut down gracefully, not kill the process.
    let shutdown = clew_server::shutdown_signal();
    // Wake the publishers whenever events are committed, and reopen their
    // files on SIGHUP (logrotate).
    let mut wakeups = state.event_wakeups();
    let handles = publishing.handles();
    let waker = tokio::spawn(async move {
        while wakeups.changed().await.is_ok() {
            let seq = *wakeups.borrow_and_update();
            for h in &handles {
                h.notify_seq(seq);
            }
        }
    });
    let mut reopeners = Vec::new();
    for p in publishing.publishers() {
        reopeners.push(clew_events::reopen_on_sighup(p).context("installing the SIGHUP handler")?);
    }
    // Tests and scripts read this line to learn the port of --listen ...:0.
    println!("clew server listening on http://{addr}");
    std::io::stdout().flush()?;
    tracing::info!(%addr, test_mode, "listening");
    let served = clew_server::serve(listener, state, shutdown).await;
    waker.abort();
    for r in reopeners {
        r.abort();
    }
    served?;
    tracing::info!("shut down");
    Ok(())
}

async fn demo(engine: &Engine) -> anyhow::Result<()> {
    let worker = worker_name();
    let jid = clew_core::engine::new_jid();
    engine
        .put(PutParams {
            worker: worker.clone(),
            queue: "demo".into(),
            jid: jid.clone(),
            klass: "Demo::Hello".into(),
            data: r#"{"greeting":"hello"}"#.into(),
            delay: 0.0,
            priority: None,
            tags: Some(vec!["demo".into()]),
            retries: None,
            depends: None,
            must_exist: false,
            metadata: None,
            unique: None,
            batch: None,
            throttles: None,
        })
        .await?;
    println!("put      {jid} into queue demo");
    let popped = engine.pop("demo", &worker, 1).await?;
    let job = popped
        .iter()
        .find(|j| j.jid() == jid)
        .context("the demo job was not popped (is queue demo paused?)")?;
    println!(
        "popped   {} by {worker}, lock expires at {}",
        job.jid(),
        job.record.expires
    );
    let state = engine
        .complete(CompleteParams {
            jid: jid.clone(),
            worker: worker.clone(),
            queue: "demo".into(),
            data: r#"{"greeting":"hello","done":true}"#.into(),
            next: None,
            delay: 0.0,
            depends: Vec::new(),
            metadata: None,
        })
        .await?;
    println!("complete {jid}: {state}");
    if let Some(job) = engine.get(&jid).await? {
        println!("history:");
        for h in &job.history {
            println!(
                "  {:>12}  {}  {}",
                h.when,
                h.what,
                Value::Object(h.extra.clone())
            );
        }
    }
    Ok(())
}

async fn put_loop(
    engine: &Engine,
    queue: &str,
    count: u64,
    concurrency: usize,
) -> anyhow::Result<()> {
    let next = Arc::new(std::sync::atomic::AtomicU64::new(0));
    let mut tasks = Vec::new();
    for _ in 0..concurrency.max(1) {
        let engine = engine.clone();
        let next = next.clone();
        let queue = queue.to_owned();
        tasks.push(tokio::spawn(async move {
            loop {
                let n = next.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
                if count > 0 && n >= count {
                    return Ok::<(), Error>(());
                }
                let jid = format!("{}-{n}", std::process::id());
                engine
                    .put(PutParams {
                        worker: "put-loop".into(),
                        queue: queue.clone(),
                        jid: jid.clone(),
                        klass: "Load".into(),
                        data: format!(r#"{{"n":{n}}}"#),
                        delay: 0.0,
                        priority: None,
                        tags: None,
                        retries: None,
                        depends: None,
                        must_exist: false,
                        metadata: None,
                        unique: None,
                        batch: None,
                        throttles: None,
                    })
                    .await?;
                // Printed only after the put has committed: every line is an
                // acknowledged job.
                let mut out = std::io::stdout().lock();
                let _ = writeln!(out, "{jid}");
                let _ = out.flush();
            }
        }));
    }
    for t in tasks {
        t.await.context("put task panicked")??;
    }
    Ok(())
}
