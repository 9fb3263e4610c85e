//! The conformance suite (crates/clew-store-tests) on the PostgreSQL store:
//! one test per case, each on its own freshly created schema of the test
//! database (`CLEW_TEST_POSTGRES_URL`, default
//! `postgres://postgres@127.0.0.1:5432/test`), dropped after the case.
//!
//! Without a reachable PostgreSQL every case is skipped: the first one
//! prints `SKIPPED: no PostgreSQL at <url>: <error>` and they all pass. With
//! `CI=true` the cases fail instead.

mod common;

clew_store_tests::store_conformance!(common::suite_store);
