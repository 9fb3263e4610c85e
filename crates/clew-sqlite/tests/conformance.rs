//! The conformance suite (crates/clew-store-tests) on the SQLite store: one
//! test per case, each on its own temporary database file.

fn store() -> clew_store_tests::TestStore {
    let (store, dir) = clew_sqlite::testing::temp_store();
    clew_store_tests::TestStore {
        store,
        guard: Box::new(dir),
    }
}

clew_store_tests::store_conformance!(store);
