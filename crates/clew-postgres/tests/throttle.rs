//! Throttles under concurrent pops from two `PostgresStore`s sharing one
//! schema (each with its pool of connections, pops running side by side
//! under the shared lock): a throttle of 3 never has a fourth running job,
//! and every job completes (the conformance race, on two stores).
//!
//! Uses its own temporary schema of the test database
//! (`CLEW_TEST_POSTGRES_URL`); without PostgreSQL it prints why and
//! passes, unless `CI=true`.

use std::sync::Arc;

use clew_core::{Engine, NullSink};
use clew_postgres::testing::{self, TempSchema};

#[test]
fn a_throttle_of_3_never_runs_a_fourth_job_across_two_stores() {
    if testing::skip() {
        return;
    }
    let schema = TempSchema::new();
    let a = Arc::new(schema.open(schema.options()).expect("store a"));
    let b = Arc::new(schema.open(schema.options()).expect("store b"));
    assert!(a.options().concurrent_pops, "pops run side by side");
    let engines = [
        Engine::new(a.clone()).with_sink(Arc::new(NullSink)),
        Engine::new(b.clone()).with_sink(Arc::new(NullSink)),
    ];
    clew_store_tests::cases::throttle::race(&engines);
}

/// The rate-limit race across two stores: at one `now`, never more than
/// the rate's 5 starts, whichever store pops.
#[test]
fn a_rate_of_5_per_minute_never_starts_a_sixth_across_two_stores() {
    if testing::skip() {
        return;
    }
    let schema = TempSchema::new();
    let a = Arc::new(schema.open(schema.options()).expect("store a"));
    let b = Arc::new(schema.open(schema.options()).expect("store b"));
    let engines = [
        Engine::new(a.clone()).with_sink(Arc::new(NullSink)),
        Engine::new(b.clone()).with_sink(Arc::new(NullSink)),
    ];
    clew_store_tests::cases::throttle_rate::rate_race(&engines);
}
