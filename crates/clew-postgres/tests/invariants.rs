//! The store-invariant property test (clew_store_tests::invariants) on the
//! PostgreSQL store: random sequences of calls, each on its own schema,
//! the invariants checked after every call. `PROPTEST_CASES=N` runs more.
//! Skipped without a reachable PostgreSQL (failed with `CI=true`).

use std::io::Write as _;

fn store() -> Option<clew_store_tests::TestStore> {
    if let Some(line) = clew_postgres::testing::skip_reason() {
        let _ = writeln!(std::io::stderr().lock(), "{line}");
        return None;
    }
    let (store, schema) = clew_postgres::testing::temp_store();
    Some(clew_store_tests::TestStore {
        store,
        guard: Box::new(schema),
    })
}

#[test]
fn random_calls_keep_the_store_invariants() {
    clew_store_tests::invariants::run_property(store, 4, 60);
}
