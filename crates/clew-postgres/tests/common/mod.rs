//! Helpers shared by this crate's test files.
#![allow(dead_code)]

use std::sync::{mpsc, Arc};
use std::thread::JoinHandle;
use std::time::Duration;

use clew_core::{Engine, Event, Store};
use clew_postgres::testing::TempSchema;
use clew_postgres::{PostgresOptions, PostgresStore, SchemaName};
use serde_json::Value;

/// A store on `schema` with one connection thread: commands queue behind
/// one another (group commit) and round trips are counted one at a time.
pub fn one_thread_store(schema: &TempSchema) -> Arc<PostgresStore> {
    let options = PostgresOptions {
        pool_size: 1,
        ..schema.options()
    };
    Arc::new(schema.open(options).expect("open"))
}

/// Runs a qless command at `now` seconds.
pub async fn call(
    engine: &Engine,
    command: &str,
    now: f64,
    args: &[&str],
) -> clew_core::Result<Value> {
    let args: Vec<String> = args.iter().map(|s| (*s).to_owned()).collect();
    engine.qless(command, Some(now), &args).await
}

/// Runs a qless command that must succeed.
pub async fn ok(engine: &Engine, command: &str, now: f64, args: &[&str]) -> Value {
    call(engine, command, now, args)
        .await
        .unwrap_or_else(|e| panic!("{command} {args:?}: {e}"))
}

/// Pages the log of `store` by number, seven at a time, until `done` is
/// notified and a page comes back empty; returns what it read.
pub async fn page_log_until(
    store: Arc<PostgresStore>,
    done: Arc<tokio::sync::Notify>,
) -> Vec<Event> {
    let mut seen: Vec<Event> = Vec::new();
    let finished = done.notified();
    tokio::pin!(finished);
    loop {
        let after = seen.last().map_or(0, |e| e.seq);
        let page = store.events_after(after, 7).await.expect("page");
        let idle = page.is_empty();
        seen.extend(page);
        if idle {
            tokio::select! {
                _ = &mut finished => break,
                _ = tokio::time::sleep(Duration::from_millis(1)) => {}
            }
        }
    }
    loop {
        let after = seen.last().map_or(0, |e| e.seq);
        let page = store.events_after(after, 500).await.expect("page");
        if page.is_empty() {
            return seen;
        }
        seen.extend(page);
    }
}

/// A store on a fresh temporary schema for the shared suites
/// (`clew_store_tests`), or None, saying why once, without a reachable
/// PostgreSQL (`skip_reason` fails first under `CI=true`).
pub fn suite_store() -> Option<clew_store_tests::TestStore> {
    if let Some(line) = clew_postgres::testing::skip_reason() {
        static SAY: std::sync::Once = std::sync::Once::new();
        // Straight to stderr: the harness would capture `eprintln!`.
        SAY.call_once(|| {
            use std::io::Write as _;
            let _ = writeln!(std::io::stderr().lock(), "{line}");
        });
        return None;
    }
    let (store, schema) = clew_postgres::testing::temp_store();
    Some(clew_store_tests::TestStore {
        store,
        guard: Box::new(schema),
    })
}

/// The schema's command lock, held by a connection of the test's own (on a
/// plain thread: the synchronous client must not run inside the runtime)
/// until [`CommandLock::release`].
pub struct CommandLock {
    release: mpsc::Sender<()>,
    thread: JoinHandle<()>,
}

impl CommandLock {
    /// Takes the lock; returns once it is held.
    pub fn hold(schema: &TempSchema) -> CommandLock {
        let key = SchemaName::new(schema.name())
            .expect("schema name")
            .command_lock_key();
        let mut client = schema.connect().expect("connect");
        let (held_tx, held_rx) = mpsc::channel();
        let (release, release_rx) = mpsc::channel::<()>();
        let thread = std::thread::spawn(move || {
            client
                .execute("SELECT pg_advisory_lock($1)", &[&key])
                .expect("take the command lock");
            held_tx.send(()).expect("signal");
            let _ = release_rx.recv();
            client
                .execute("SELECT pg_advisory_unlock($1)", &[&key])
                .expect("release the command lock");
        });
        held_rx.recv().expect("the lock holder died");
        CommandLock { release, thread }
    }

    /// Lets the store's commands run.
    pub fn release(self) {
        let _ = self.release.send(());
        self.thread.join().expect("the lock holder panicked");
    }
}

/// Runs `task` on a thread of its own, on a runtime of its own.
pub fn on_thread<T, F>(task: impl FnOnce() -> F + Send + 'static) -> std::thread::JoinHandle<T>
where
    T: Send + 'static,
    F: std::future::Future<Output = T>,
{
    std::thread::spawn(move || {
        tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .expect("runtime")
            .block_on(task())
    })
}
