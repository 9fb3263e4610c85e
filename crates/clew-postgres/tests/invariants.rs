//! The store-invariant property test (clew_store_tests::invariants) on the
//! PostgreSQL store: random sequences of calls, each on its own schema,
//! the invariants checked after every call. `PROPTEST_CASES=N` runs more.
//! Skipped without a reachable PostgreSQL (failed with `CI=true`).

mod common;

#[test]
fn random_calls_keep_the_store_invariants() {
    clew_store_tests::invariants::run_property(common::suite_store, 4, 60);
}
