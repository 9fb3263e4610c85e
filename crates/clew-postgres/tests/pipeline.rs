//! Errors of pipelined statements (`PgTx`, `PgConn::pipeline`): buffered
//! writes go out with the read that follows, in one round trip, and inside
//! a transaction every statement after a failed one fails with "current
//! transaction is aborted" (25P02). The error reported must be the first
//! one, with its own SQLSTATE, so that a deadlock or serialization failure
//! is still recognized as worth running again (`PgTx::retryable`).
//!
//! A trigger on `workers` (dropped before the assertions) refuses two
//! worker names, one as an ordinary error and one as a deadlock (40P01).
//!
//! Uses its own temporary schema of the test database
//! (`CLEW_TEST_POSTGRES_URL`); without PostgreSQL it prints why and passes,
//! unless `CI=true`.

use clew_core::{Timestamp, Tx};
use clew_postgres::testing::{self, in_tx, TempSchema};

const TRIGGER: &str = "
    CREATE FUNCTION refuse_worker() RETURNS trigger LANGUAGE plpgsql AS $$
    BEGIN
        IF NEW.name = 'refused' THEN
            RAISE EXCEPTION 'worker refused by a trigger' USING ERRCODE = '23514';
        ELSIF NEW.name = 'deadlocked' THEN
            RAISE EXCEPTION 'worker deadlocked on purpose' USING ERRCODE = '40P01';
        END IF;
        RETURN NEW;
    END $$;
    CREATE TRIGGER refuse_worker BEFORE INSERT ON workers
        FOR EACH ROW EXECUTE FUNCTION refuse_worker();";

const DROP_TRIGGER: &str = "
    DROP TRIGGER refuse_worker ON workers;
    DROP FUNCTION refuse_worker();";

/// What one transaction saw: the error of its read, whether it was
/// retryable, and whether the read came back at all.
#[derive(Debug)]
struct Seen {
    error: String,
    retryable: bool,
}

/// Buffers three worker writes (the middle one `name`), then reads: the
/// four statements go out in one round trip.
fn write_then_read(conn: &mut clew_postgres::PgConn, name: &str) -> Option<Seen> {
    let mut seen = None;
    let result = in_tx(conn, |tx| {
        tx.worker_touch("before", Timestamp::from_secs(1))?;
        tx.worker_touch(name, Timestamp::from_secs(1))?;
        tx.worker_touch("after", Timestamp::from_secs(1))?;
        match tx.worker_list() {
            Ok(list) => Ok(list),
            Err(e) => {
                seen = Some(Seen {
                    error: e.to_string(),
                    retryable: tx.retryable(),
                });
                Err(e)
            }
        }
    });
    assert!(result.is_err() == seen.is_some(), "{result:?}");
    seen
}

#[test]
fn a_failed_write_in_a_pipeline_reports_its_own_error() {
    if testing::skip() {
        return;
    }
    let schema = TempSchema::new();
    let mut admin = schema.migrated_connection().expect("migrate");
    admin.batch_execute(TRIGGER).expect("trigger");
    let mut conn = schema.pipelined_connection().expect("connect");

    let refused = write_then_read(&mut conn, "refused");
    let deadlocked = write_then_read(&mut conn, "deadlocked");
    // The connection is still good after the rollbacks.
    let fine = write_then_read(&mut conn, "fine");
    let workers = in_tx(&mut conn, |tx| tx.worker_list()).expect("list");

    admin.batch_execute(DROP_TRIGGER).expect("drop trigger");
    drop(conn);

    let refused = refused.expect("the refused write fails the read");
    assert!(
        refused.error.contains("worker refused by a trigger"),
        "{refused:?}"
    );
    assert!(!refused.error.contains("aborted"), "{refused:?}");
    assert!(!refused.retryable, "{refused:?}");

    let deadlocked = deadlocked.expect("the deadlocked write fails the read");
    assert!(
        deadlocked.error.contains("worker deadlocked on purpose"),
        "{deadlocked:?}"
    );
    assert!(
        deadlocked.retryable,
        "a deadlock is retryable: {deadlocked:?}"
    );

    assert!(fine.is_none(), "{fine:?}");
    let names: Vec<&str> = workers.iter().map(|(name, _)| name.as_str()).collect();
    assert_eq!(names.len(), 3, "{names:?}");
    for name in ["before", "fine", "after"] {
        assert!(names.contains(&name), "{names:?}");
    }
}
