//! clew-store-tests: the conformance suite every clew [`Store`] must pass.
//!
//! A backend's test file invokes the macro once:
//!
//! ```text
//! fn store() -> clew_store_tests::TestStore { /* a fresh, empty store */ }
//! clew_store_tests::store_conformance!(store);
//! ```
//!
//! which expands to one `#[test]` per case: every `pub fn NAME(t: &Harness)`
//! in `src/cases/AREA.rs` (the build script finds them) becomes the test
//! `AREA::NAME`, run on its own fresh store with a [`ManualClock`] and a
//! [`MemorySink`]. Cases never sleep: they pass `now` explicitly.
//!
//! Most cases speak qless-core's string calling convention through
//! [`Harness::call`] (`t.ok("put", 0.0, &["worker", "q", "jid", "klass", "{}", "0"])`),
//! so the suite also pins the qless compatibility layer; others use the typed
//! [`Command`] API through [`Harness::exec`].

use std::any::Any;
use std::sync::Arc;

use clew_core::{
    Command, Engine, Error, ErrorKind, Event, ManualClock, MemorySink, Reply, Store, Timestamp,
};
use serde_json::Value;

pub mod cases;
pub mod invariants;

include!(concat!(env!("OUT_DIR"), "/conformance_macro.rs"));

/// What cases import.
pub mod prelude {
    pub use crate::{drain, history_whats, jids, start, Harness, TestStore};
    pub use clew_core::batch::*;
    pub use clew_core::command::*;
    pub use clew_core::{Error, ErrorKind, Event, JobState, Reply, Timestamp};
    pub use serde_json::{json, Value};
}

/// A fresh, empty store and whatever keeps it alive (a temp dir, a schema guard).
pub struct TestStore {
    /// The store.
    pub store: Arc<dyn Store>,
    /// Dropped after the test (removes the temp dir, drops the schema...).
    pub guard: Box<dyn Any + Send>,
}

/// What a store factory returns: a store, or `None` when the store's
/// service is unavailable and the case is to be skipped (the factory says
/// why on stderr).
pub trait IntoTestStore {
    /// The store, or `None` to skip.
    fn into_test_store(self) -> Option<TestStore>;
}

impl IntoTestStore for TestStore {
    fn into_test_store(self) -> Option<TestStore> {
        Some(self)
    }
}

impl IntoTestStore for Option<TestStore> {
    fn into_test_store(self) -> Option<TestStore> {
        self
    }
}

/// Runs one case on a fresh store (nothing when the factory skips).
pub fn run_case(factory: fn() -> Option<TestStore>, case: fn(&Harness)) {
    let Some(store) = factory() else {
        return;
    };
    let h = Harness::new(store);
    case(&h);
    h.close();
}

/// A store under test, with a manual clock, a memory sink and a synchronous
/// front for the async engine.
pub struct Harness {
    rt: tokio::runtime::Runtime,
    engine: Engine,
    clock: ManualClock,
    sink: MemorySink,
    _guard: Box<dyn Any + Send>,
}

impl Harness {
    /// Wraps a store.
    pub fn new(ts: TestStore) -> Harness {
        let clock = ManualClock::default();
        let sink = MemorySink::default();
        let engine = Engine::new(ts.store)
            .with_clock(Arc::new(clock.clone()))
            .with_sink(Arc::new(sink.clone()));
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .expect("tokio runtime");
        Harness {
            rt,
            engine,
            clock,
            sink,
            _guard: ts.guard,
        }
    }

    /// The engine.
    pub fn engine(&self) -> &Engine {
        &self.engine
    }

    /// The engine's clock (used by [`Harness::exec_now`] and typed helpers).
    pub fn clock(&self) -> &ManualClock {
        &self.clock
    }

    /// Runs a future to completion.
    pub fn block_on<F: std::future::Future>(&self, f: F) -> F::Output {
        self.rt.block_on(f)
    }

    /// Runs a qless-core command in its string form at `now` (seconds);
    /// returns the natural-JSON result or the error.
    pub fn call(&self, command: &str, now: f64, args: &[&str]) -> Result<Value, Error> {
        let args: Vec<String> = args.iter().map(|s| (*s).to_owned()).collect();
        self.block_on(self.engine.qless(command, Some(now), &args))
    }

    /// Like [`Harness::call`], panicking (with the message) on error.
    #[track_caller]
    pub fn ok(&self, command: &str, now: f64, args: &[&str]) -> Value {
        match self.call(command, now, args) {
            Ok(v) => v,
            Err(e) => panic!("{command} {args:?} at {now} failed: {e} ({:?})", e.kind()),
        }
    }

    /// Like [`Harness::call`], panicking if the command succeeds.
    #[track_caller]
    pub fn err(&self, command: &str, now: f64, args: &[&str]) -> Error {
        match self.call(command, now, args) {
            Ok(v) => panic!("{command} {args:?} at {now} should fail, returned {v}"),
            Err(e) => e,
        }
    }

    /// Asserts that the command fails with `kind` and a message containing `needle`.
    #[track_caller]
    pub fn err_with(&self, command: &str, now: f64, args: &[&str], kind: ErrorKind, needle: &str) {
        let e = self.err(command, now, args);
        assert_eq!(
            e.kind(),
            kind,
            "{command} {args:?}: wrong error kind for {e}"
        );
        assert!(
            e.message().contains(needle),
            "{command} {args:?}: message {:?} should contain {needle:?}",
            e.message()
        );
    }

    /// Runs a typed command at `now` (seconds).
    pub fn exec(&self, now: f64, command: Command) -> Result<Reply, Error> {
        let now = Timestamp::from_secs_f64(now).expect("finite now");
        self.block_on(self.engine.execute_at(now, command))
    }

    /// Runs a typed command at the clock's time.
    pub fn exec_now(&self, command: Command) -> Result<Reply, Error> {
        self.block_on(self.engine.execute(command))
    }

    /// Puts `jid` of class `klass` into `queue` with `{}` data, no delay, at `now`.
    #[track_caller]
    pub fn put(&self, now: f64, queue: &str, jid: &str) {
        self.ok("put", now, &["worker", queue, jid, "klass", "{}", "0"]);
    }

    /// Pops up to `count` jobs (a qless count argument) and returns their
    /// jids in the reply's order.
    #[track_caller]
    pub fn pop_jids(&self, now: f64, queue: &str, worker: &str, count: &str) -> Vec<String> {
        jids(&self.ok("pop", now, &[queue, worker, count]))
    }

    /// Pops one job and returns its jid, or `None`.
    #[track_caller]
    pub fn pop_one(&self, now: f64, queue: &str, worker: &str) -> Option<String> {
        let v = self.ok("pop", now, &[queue, worker, "1"]);
        v.as_array()
            .and_then(|a| a.first())
            .map(|j| j["jid"].as_str().expect("jid").to_owned())
    }

    /// The job object (`get`), or `Value::Null`.
    #[track_caller]
    pub fn get(&self, jid: &str) -> Value {
        self.ok("get", 0.0, &[jid])
    }

    /// The job's state name (panics if the job does not exist).
    #[track_caller]
    pub fn state(&self, jid: &str) -> String {
        let j = self.get(jid);
        j["state"]
            .as_str()
            .unwrap_or_else(|| panic!("job {jid} does not exist"))
            .to_owned()
    }

    /// Events received by the sink so far (and clears them).
    pub fn take_events(&self) -> Vec<Event> {
        self.sink
            .take()
            .into_iter()
            .filter(Event::is_qless)
            .collect()
    }

    /// qless events (channels `ql:...`) received by the sink so far.
    pub fn events(&self) -> Vec<Event> {
        self.sink
            .events()
            .into_iter()
            .filter(Event::is_qless)
            .collect()
    }

    /// qless events in the store's durable log after `after`.
    pub fn logged_events(&self, after: i64) -> Vec<Event> {
        self.all_logged_events(after)
            .into_iter()
            .filter(Event::is_qless)
            .collect()
    }

    /// Every event in the store's durable log after `after` (qless and
    /// lifecycle).
    pub fn all_logged_events(&self, after: i64) -> Vec<Event> {
        self.block_on(self.engine.store().events_after(after, 1_000_000))
            .expect("events_after")
    }

    /// Lifecycle events in the store's durable log, oldest first.
    pub fn lifecycle(&self) -> Vec<clew_core::LifecycleEvent> {
        self.all_logged_events(0)
            .iter()
            .filter_map(Event::lifecycle)
            .collect()
    }

    /// A JSON picture of everything observable about `jids` and `queues`
    /// (jobs, queue counts, jobs listings, failures, tags, tracking,
    /// workers, config, stats and the event log), taken at `now` without
    /// side effects that differ between two snapshots. Used to show that a
    /// rejected call changed nothing.
    pub fn snapshot(&self, now: f64, jids: &[&str], queues: &[&str]) -> Value {
        let mut out = serde_json::Map::new();
        let jobs: Vec<Value> = jids.iter().map(|j| self.get(j)).collect();
        out.insert("jobs".into(), Value::Array(jobs));
        for q in queues {
            let mut qm = serde_json::Map::new();
            qm.insert("counts".into(), self.ok("queues", now, &[q]));
            for state in ["running", "stalled", "depends", "recurring"] {
                qm.insert(state.into(), self.ok("jobs", now, &[state, q, "0", "1000"]));
            }
            qm.insert(
                "stats".into(),
                self.ok("stats", now, &[q, &now.to_string()]),
            );
            qm.insert("length".into(), self.ok("length", now, &[q]));
            out.insert(format!("queue:{q}"), Value::Object(qm));
        }
        out.insert("queues".into(), self.ok("queues", now, &[]));
        out.insert("failed".into(), self.ok("failed", now, &[]));
        out.insert(
            "complete".into(),
            self.ok("jobs", now, &["complete", "0", "1000"]),
        );
        out.insert("tags".into(), self.ok("tag", now, &["top", "0", "1000"]));
        out.insert("tracked".into(), self.ok("track", now, &[]));
        out.insert("config".into(), self.ok("config.get", now, &[]));
        out.insert("workers".into(), self.ok("workers", now, &[]));
        out.insert("events".into(), Value::from(self.logged_events(0).len()));
        Value::Object(out)
    }

    /// Closes the store.
    pub fn close(&self) {
        let _ = self.block_on(self.engine.close());
    }
}

/// The jids of a job array (a pop, peek or multiget reply), in order.
#[track_caller]
pub fn jids(v: &Value) -> Vec<String> {
    v.as_array()
        .unwrap_or_else(|| panic!("{v} is not an array of jobs"))
        .iter()
        .map(|j| j["jid"].as_str().expect("jid").to_owned())
        .collect()
}

/// Shorthand used by cases: a job's history `what`s in order.
pub fn history_whats(job: &Value) -> Vec<String> {
    job["history"]
        .as_array()
        .map(|a| {
            a.iter()
                .map(|h| h["what"].as_str().unwrap_or("").to_owned())
                .collect()
        })
        .unwrap_or_default()
}

/// Puts `jid` into `queue` at `now` and pops it for `worker` at the same time.
#[track_caller]
pub fn start(h: &Harness, now: f64, queue: &str, jid: &str, worker: &str) {
    h.put(now, queue, jid);
    assert_eq!(h.pop_one(now, queue, worker).as_deref(), Some(jid));
}

/// Events since the last drain as (channel, payload); JSON payloads parsed,
/// bare jids kept as strings.
pub fn drain(h: &Harness) -> Vec<(String, Value)> {
    h.take_events()
        .into_iter()
        .map(|e| {
            let v = serde_json::from_str(&e.message).unwrap_or(Value::String(e.message));
            (e.channel, v)
        })
        .collect()
}

/// Puts `n` jobs carrying the unique key `key` at once (jids
/// `r{round}-{i:02}`, queue `q`), alternating between `engines` and the
/// three conflict policies (changing every two callers, so each engine sees
/// each); returns each caller's policy and result. The race of the store
/// crates' two-store unique-key tests.
pub async fn unique_race(
    engines: &[Engine],
    key: &str,
    round: usize,
    n: usize,
) -> Vec<(clew_core::unique::OnConflict, clew_core::Result<String>)> {
    use clew_core::command::PutParams;
    use clew_core::unique::{OnConflict, Unique};
    let mut set = tokio::task::JoinSet::new();
    for i in 0..n {
        let engine = engines[i % engines.len()].clone();
        let key = key.to_owned();
        set.spawn(async move {
            let policy = OnConflict::ALL[(i / 2) % 3];
            let p = PutParams {
                jid: format!("r{round}-{i:02}"),
                unique: Some(Unique::new(key).on_conflict(policy)),
                ..PutParams::new("q", "K")
            };
            (policy, engine.put(p).await)
        });
    }
    let mut out = Vec::new();
    while let Some(r) = set.join_next().await {
        out.push(r.expect("task"));
    }
    out
}
