//! The store-invariant property test (clew_store_tests::invariants) on the
//! SQLite store: random sequences of calls, each on a fresh database file,
//! the invariants checked after every call. `PROPTEST_CASES=N` runs more.

fn store() -> Option<clew_store_tests::TestStore> {
    let (store, dir) = clew_sqlite::testing::temp_store();
    Some(clew_store_tests::TestStore {
        store,
        guard: Box::new(dir),
    })
}

#[test]
fn random_calls_keep_the_store_invariants() {
    clew_store_tests::invariants::run_property(store, 48, 60);
}
