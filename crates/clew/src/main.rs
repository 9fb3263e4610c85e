//! `clew`: the command line of the clew job system.
//!
//! Milestone 1 offers the job engine on the embedded SQLite store:
//! `clew call COMMAND ARGS...` runs any of qless-core's 37 commands,
//! `clew put | pop | complete | get | queues` are friendlier forms of the
//! common ones, and `clew demo` walks one job through its life.

use std::io::Write;
use std::process::ExitCode;
use std::sync::Arc;

use anyhow::Context;
use clap::{Parser, Subcommand};
use clew_core::command::{CompleteParams, PutParams};
use clew_core::{Command, Engine, Error, ErrorKind};
use clew_sqlite::{SqliteOptions, SqliteStore, Synchronous};
use serde_json::Value;

/// clew: a background-job system with qless semantics.
#[derive(Debug, Parser)]
#[command(name = "clew", version, about)]
struct Cli {
    /// The store: `sqlite:PATH` (or a bare path).
    #[arg(long, global = true, env = "CLEW_DB", default_value = "sqlite:clew.db")]
    db: String,

    /// SQLite durability: `normal` survives a process crash, `full` also a
    /// power loss, `off` neither.
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
        /// API token required as `Authorization: Bearer TOKEN` on every
        /// route but /healthz.
        #[arg(long, env = "CLEW_TOKEN")]
        token: Option<String>,
        /// Test mode: callers may set `now` and flush all state (loopback only).
        #[arg(long)]
        test_mode: bool,
        /// Largest request body, in bytes.
        #[arg(long, default_value_t = 1024 * 1024)]
        body_limit: usize,
    },
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
    Put {
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
        #[arg(long, default_value_t = 0.0)]
        delay: f64,
        /// Priority (higher runs sooner).
        #[arg(long)]
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
    },
    /// Pop jobs for a worker; prints them as JSON.
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
    /// Show a job as JSON.
    Get {
        /// The job.
        jid: String,
    },
    /// Show every queue's counts as JSON.
    Queues,
    /// Put one job, pop it, complete it, and print its history.
    Demo,
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

fn main() -> ExitCode {
    let cli = Cli::parse();
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
            eprintln!("clew: {e:#}");
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

fn open(cli: &Cli) -> anyhow::Result<Engine> {
    let path = cli.db.strip_prefix("sqlite:").unwrap_or(&cli.db);
    if path.contains("://") {
        anyhow::bail!(
            "--db: expected sqlite:PATH, got {} (other stores arrive later)",
            cli.db
        );
    }
    let synchronous = match cli.synchronous.as_str() {
        "normal" => Synchronous::Normal,
        "full" => Synchronous::Full,
        "off" => Synchronous::Off,
        other => anyhow::bail!("--synchronous: expected normal, full or off, got {other}"),
    };
    let options = SqliteOptions {
        synchronous,
        ..SqliteOptions::default()
    };
    let store = SqliteStore::open(path, options).with_context(|| format!("opening {path}"))?;
    Ok(Engine::new(Arc::new(store)))
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

async fn run(cli: Cli) -> anyhow::Result<()> {
    let engine = open(&cli)?;
    if let Cmd::Server {
        listen,
        token,
        test_mode,
        body_limit,
    } = cli.command
    {
        let result = server(engine.clone(), &listen, token, test_mode, body_limit).await;
        engine.close().await?;
        return result;
    }
    let result = dispatch(&engine, cli.command).await;
    engine.close().await?;
    result
}

async fn dispatch(engine: &Engine, command: Cmd) -> anyhow::Result<()> {
    match command {
        Cmd::Call { command, args } => {
            let v = engine.qless(&command, None, &args).await?;
            print_json(&v)
        }
        Cmd::Put {
            queue,
            klass,
            data,
            jid,
            delay,
            priority,
            tags,
            retries,
            depends,
        } => {
            let jid = jid.unwrap_or_else(|| uuid::Uuid::new_v4().simple().to_string());
            let jid = engine
                .put(PutParams {
                    worker: worker_name(),
                    queue,
                    jid,
                    klass,
                    data,
                    delay,
                    priority,
                    tags: (!tags.is_empty()).then_some(tags),
                    retries,
                    depends: (!depends.is_empty()).then_some(depends),
                    must_exist: false,
                })
                .await?;
            println!("{jid}");
            Ok(())
        }
        Cmd::Pop {
            queue,
            worker,
            count,
        } => {
            let worker = worker.unwrap_or_else(worker_name);
            let jobs = engine.pop(&queue, &worker, count).await?;
            print_json(&Value::Array(jobs.iter().map(|j| j.to_json()).collect()))
        }
        Cmd::Complete {
            jid,
            worker,
            queue,
            data,
            next,
        } => {
            let state = engine
                .complete(CompleteParams {
                    jid,
                    worker,
                    queue,
                    data,
                    next,
                    delay: 0.0,
                    depends: Vec::new(),
                })
                .await?;
            println!("{state}");
            Ok(())
        }
        Cmd::Get { jid } => match engine.get(&jid).await? {
            Some(job) => print_json(&job.to_json()),
            None => Err(Error::not_found(format!("job {jid} does not exist")).into()),
        },
        Cmd::Queues => {
            let v = engine
                .execute(Command::Queues { queue: None })
                .await?
                .to_json();
            print_json(&v)
        }
        Cmd::Demo => demo(engine).await,
        Cmd::Server { .. } => unreachable!("handled in run"),
        Cmd::PutLoop {
            queue,
            count,
            concurrency,
        } => put_loop(engine, &queue, count, concurrency).await,
    }
}

async fn server(
    engine: Engine,
    listen: &str,
    token: Option<String>,
    test_mode: bool,
    body_limit: usize,
) -> anyhow::Result<()> {
    let _ = tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_env("CLEW_LOG")
                .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info")),
        )
        .with_writer(std::io::stderr)
        .try_init();
    let listener = tokio::net::TcpListener::bind(listen)
        .await
        .with_context(|| format!("--listen: cannot bind {listen}"))?;
    let addr = listener.local_addr()?;
    let token = token.filter(|t| !t.is_empty());
    if !addr.ip().is_loopback() && token.is_none() {
        anyhow::bail!("--listen {addr} is not a loopback address: set an API token with --token or CLEW_TOKEN");
    }
    if test_mode && !addr.ip().is_loopback() {
        anyhow::bail!("--test-mode is only allowed on a loopback address, not {addr}");
    }
    let state = clew_server::AppState::new(
        engine,
        clew_server::ServerConfig {
            test_mode,
            token,
            body_limit,
        },
    );
    // Tests and scripts read this line to learn the port of --listen ...:0.
    println!("clew server listening on http://{addr}");
    std::io::stdout().flush()?;
    tracing::info!(%addr, test_mode, "listening");
    clew_server::serve(listener, state, clew_server::shutdown_signal()).await?;
    tracing::info!("shut down");
    Ok(())
}

async fn demo(engine: &Engine) -> anyhow::Result<()> {
    let worker = worker_name();
    let jid = uuid::Uuid::new_v4().simple().to_string();
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
