//! The conformance suite (crates/clew-store-tests) on the PostgreSQL store:
//! one test per case, each on its own freshly created schema of the test
//! database (`CLEW_TEST_POSTGRES_URL`, default
//! `postgres://postgres@127.0.0.1:5432/test`), dropped after the case.
//!
//! Without a reachable PostgreSQL every case is skipped: the first one
//! prints `SKIPPED: no PostgreSQL at <url>: <error>` and they all pass. With
//! `CI=true` the cases fail instead.

use std::io::Write as _;
use std::sync::Once;

fn store() -> Option<clew_store_tests::TestStore> {
    if let Some(line) = clew_postgres::testing::skip_reason() {
        static SAY: Once = Once::new();
        // Straight to stderr: the harness would capture `eprintln!`.
        SAY.call_once(|| {
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

clew_store_tests::store_conformance!(store);
