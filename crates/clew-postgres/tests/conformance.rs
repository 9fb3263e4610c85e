//! The conformance suite (crates/clew-store-tests) on the PostgreSQL store:
//! one test per case, each on its own freshly created schema of the test
//! database (`CLEW_TEST_POSTGRES_URL`, default
//! `postgres://postgres@127.0.0.1:5432/test`), dropped after the case.
//!
//! Without a reachable PostgreSQL the suite is skipped: the first case to
//! find out prints `SKIPPED: no PostgreSQL at <url>: <error>` and ends the
//! test process successfully (the suite's macro runs every case on a store
//! the factory must produce, so there is no per-case way to skip). With
//! `CI=true` the cases fail instead.

use std::io::Write as _;

fn store() -> clew_store_tests::TestStore {
    if let Some(line) = clew_postgres::testing::skip_reason() {
        // Straight to the process's stderr: the test harness captures
        // `eprintln!` and would drop it on exit.
        let _ = writeln!(std::io::stderr().lock(), "{line}");
        std::process::exit(0);
    }
    let (store, schema) = clew_postgres::testing::temp_store();
    clew_store_tests::TestStore {
        store,
        guard: Box::new(schema),
    }
}

clew_store_tests::store_conformance!(store);
