//! What the stateful targets share: a tokio runtime, and a real store (a
//! SQLite file in a temporary directory) with an engine and the server's
//! router over it, kept across calls and flushed every [`FLUSH_EVERY`]
//! calls so that it stays small.

use std::cell::RefCell;
use std::collections::BTreeSet;
use std::future::Future;
use std::sync::Arc;

use clew_core::{Engine, ErrorKind, Timestamp};
use clew_server::{AppState, ServerConfig};
use tempfile::TempDir;

/// Calls between two flushes of the store.
pub const FLUSH_EVERY: u64 = 256;

thread_local! {
    static RT: tokio::runtime::Runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("tokio runtime");
    static WORLD: RefCell<Option<World>> = const { RefCell::new(None) };
}

/// Runs a future to completion on this thread's runtime.
pub fn block_on<F: Future>(f: F) -> F::Output {
    RT.with(|rt| rt.block_on(f))
}

/// A store, its engine and the server's router (test mode).
pub struct World {
    /// The engine over the store.
    pub engine: Engine,
    /// `clew_server::app` over the engine, in test mode.
    pub app: axum::Router,
    /// Calls since the last flush.
    pub calls: u64,
    /// The time of the next call (seconds); calls move it forward.
    pub now: f64,
    /// Jids seen in listings since the last flush.
    pub known: BTreeSet<String>,
    _dir: TempDir,
}

impl World {
    fn new() -> World {
        let (store, dir) = clew_sqlite::testing::temp_store();
        let engine = Engine::new(store as Arc<dyn clew_core::Store>);
        let config = ServerConfig {
            test_mode: true,
            ..ServerConfig::default()
        };
        let app = RT.with(|rt| {
            let _entered = rt.enter();
            clew_server::app(AppState::new(engine.clone(), config))
        });
        World {
            engine,
            app,
            calls: 0,
            now: 1_700_000_000.0,
            known: BTreeSet::new(),
            _dir: dir,
        }
    }

    /// The current time as a timestamp.
    pub fn at(&self) -> Timestamp {
        Timestamp::from_secs_f64(self.now).expect("the world's time is in range")
    }

    /// Checks the store invariants (see `clew_store_tests::invariants`)
    /// at the world's time, remembering the jids listed.
    pub fn check_invariants(&mut self, what: &dyn std::fmt::Debug) {
        let at = self.at();
        match block_on(clew_store_tests::invariants::check(
            &self.engine,
            at,
            &self.known,
        )) {
            Ok(seen) => self.known.extend(seen.place.into_keys()),
            Err(e) => panic!("after {what:?}: store invariant broken: {e}"),
        }
    }

    /// A qless call at the world's time; store errors panic, refusals are
    /// returned.
    pub fn qless(
        &self,
        command: &str,
        args: &[&str],
    ) -> Result<serde_json::Value, clew_core::Error> {
        let args: Vec<String> = args.iter().map(|a| (*a).to_owned()).collect();
        let r = block_on(self.engine.qless(command, Some(self.now), &args));
        if let Err(e) = &r {
            assert_ne!(
                e.kind(),
                ErrorKind::Store,
                "{command} {args:?} at {}: store error: {e}",
                self.now
            );
        }
        r
    }
}

/// Runs `f` on this thread's world (made on first use), flushing the store
/// every [`FLUSH_EVERY`] calls.
pub fn with_world<R>(f: impl FnOnce(&mut World) -> R) -> R {
    WORLD.with(|w| {
        let mut slot = w.borrow_mut();
        let world = slot.get_or_insert_with(World::new);
        world.calls += 1;
        if world.calls > FLUSH_EVERY {
            block_on(world.engine.store().flush()).expect("flush");
            world.calls = 1;
            world.known.clear();
        }
        f(world)
    })
}
