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

use clew_core::command::PutParams;
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

/// Refuses the events of a pop (`dequeued`; the events go
/// out last, in the round trip that would also commit).
const EVENTS_TRIGGER: &str = "
    CREATE FUNCTION refuse_event() RETURNS trigger LANGUAGE plpgsql AS $$
    BEGIN
        RAISE EXCEPTION 'event refused by a trigger' USING ERRCODE = '23514';
    END $$;
    CREATE TRIGGER refuse_event BEFORE INSERT ON events FOR EACH ROW
        WHEN (NEW.message LIKE '%dequeued%') EXECUTE FUNCTION refuse_event();";

const DROP_EVENTS_TRIGGER: &str = "
    DROP TRIGGER refuse_event ON events;
    DROP FUNCTION refuse_event();";

/// A command after a drain whose last statements (its events) fail at the
/// server: its own error is reported, and only the command is rolled back
/// (to its savepoint): the drained put commits. (The commit is not
/// pipelined after a drain: a `COMMIT` sent after a failed statement would
/// roll the whole transaction back.)
#[test]
fn a_failed_write_after_a_drain_keeps_the_drained_put() {
    if testing::skip() {
        return;
    }
    let schema = TempSchema::new();
    let store = std::sync::Arc::new(schema.open(schema.options()).expect("open"));
    let engine = clew_core::Engine::new(store.clone());
    let mut admin = schema.connect().expect("connect");
    admin.batch_execute(EVENTS_TRIGGER).expect("trigger");

    let mut put = PutParams::new("q", "K");
    put.jid = "drained".to_owned();
    let mut app = admin.transaction().expect("begin");
    clew_postgres::put_in(&mut app, schema.name(), &put).expect("put_in");
    app.commit().expect("commit");

    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("runtime");
    let args = ["q".to_owned(), "refused-worker".to_owned(), "1".to_owned()];
    let popped = runtime.block_on(engine.qless("pop", Some(2.0), &args));
    let count = |admin: &mut postgres::Client, sql: &str| -> i64 {
        admin.query_one(sql, &[]).expect(sql).get(0)
    };
    let jobs = count(
        &mut admin,
        "SELECT COUNT(*) FROM jobs WHERE jid = 'drained' AND state = 'waiting'",
    );
    let waiting = count(&mut admin, "SELECT COUNT(*) FROM put_outbox");
    admin
        .batch_execute(DROP_EVENTS_TRIGGER)
        .expect("drop trigger");
    drop(runtime);

    let err = popped.expect_err("the pop's events are refused");
    assert!(
        err.to_string().contains("event refused by a trigger"),
        "{err}"
    );
    assert_eq!((jobs, waiting), (1, 0), "the drained put committed");
}

/// A store on `schema` with jobs `jids` put (queue `q`, class `K`),
/// through an engine on a runtime of its own; both kept by the caller.
fn store_with_jobs(
    schema: &TempSchema,
    jids: &[&str],
) -> (
    std::sync::Arc<clew_postgres::PostgresStore>,
    tokio::runtime::Runtime,
) {
    let store = std::sync::Arc::new(schema.open(schema.options()).expect("open"));
    let engine = clew_core::Engine::new(store.clone());
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("runtime");
    for jid in jids {
        let mut put = PutParams::new("q", "K");
        put.jid = (*jid).to_owned();
        rt.block_on(engine.put(put)).expect("put");
    }
    (store, rt)
}

/// A job row this transaction read is saved with a plain `UPDATE` (the
/// command lock keeps it there). Should it be gone all the same (here a
/// second connection deletes it behind the transaction's back), the save
/// fails the round trip instead of changing nothing.
#[test]
fn a_save_of_a_known_job_row_that_is_gone_fails() {
    if testing::skip() {
        return;
    }
    let schema = TempSchema::new();
    let _store = store_with_jobs(&schema, &["gone"]);
    let mut admin = schema.connect().expect("connect");
    let mut conn = schema.pipelined_connection().expect("connect");
    let result = in_tx(&mut conn, |tx| {
        let mut job = tx.job_get("gone")?.expect("the job exists");
        admin
            .batch_execute("DELETE FROM jobs WHERE jid = 'gone'")
            .expect("delete");
        job.priority = 5;
        tx.job_save(&job)?;
        tx.flush()
    });
    let error = result
        .expect_err("the save of a missing row fails")
        .to_string();
    assert!(error.contains("0 rows changed, 1 expected"), "{error}");
}

/// Many saves of job rows the transaction read go as one `UPDATE` over
/// arrays; should one of the rows be gone, the count of changed rows
/// falls short of the saves and the round trip fails, as a single save's.
#[test]
fn a_set_of_saves_with_a_gone_job_row_fails() {
    if testing::skip() {
        return;
    }
    let schema = TempSchema::new();
    let _store = store_with_jobs(&schema, &["a", "gone", "c"]);
    let mut admin = schema.connect().expect("connect");
    let mut conn = schema.pipelined_connection().expect("connect");
    let result = in_tx(&mut conn, |tx| {
        let mut jobs = Vec::new();
        for jid in ["a", "gone", "c"] {
            jobs.push(tx.job_get(jid)?.expect("the job exists"));
        }
        admin
            .batch_execute("DELETE FROM jobs WHERE jid = 'gone'")
            .expect("delete");
        for job in &mut jobs {
            job.priority = 5;
            tx.job_save(job)?;
        }
        tx.flush()
    });
    let error = result
        .expect_err("the saves of a missing row fail")
        .to_string();
    assert!(error.contains("2 rows changed, 3 expected"), "{error}");
    let changed: i64 = admin
        .query_one("SELECT COUNT(*) FROM jobs WHERE priority = 5", &[])
        .expect("count")
        .get(0);
    assert_eq!(changed, 0, "the transaction rolled back");
}

/// Writes buffered together, several to the same job, end as they would
/// one by one: the last save of a job wins (a new job inserted, then
/// updated), and a job's history keeps its order, whatever statements
/// over arrays they went out as.
#[test]
fn buffered_saves_and_history_keep_the_order_of_their_writes() {
    if testing::skip() {
        return;
    }
    let schema = TempSchema::new();
    let _store = store_with_jobs(&schema, &["a", "b"]);
    let mut conn = schema.pipelined_connection().expect("connect");
    let at = Timestamp::from_secs(9);
    in_tx(&mut conn, |tx| {
        let mut a = tx.job_get("a")?.expect("a");
        let mut b = tx.job_get("b")?.expect("b");
        assert!(tx.job_get("new")?.is_none());
        let mut new = a.clone();
        new.jid = "new".to_owned();
        for (i, what) in ["a1", "a2", "a3"].into_iter().enumerate() {
            a.priority = i as i64 + 1;
            tx.job_save(&a)?;
            tx.history_append("a", &clew_core::HistoryEntry::new(at, what))?;
            b.priority = 10 + i as i64;
            tx.job_save(&b)?;
            tx.history_append("b", &clew_core::HistoryEntry::new(at, what))?;
            new.priority = 20 + i as i64;
            tx.job_save(&new)?;
            tx.history_append("new", &clew_core::HistoryEntry::new(at, what))?;
        }
        tx.flush()
    })
    .expect("writes");
    let (jobs, histories) = in_tx(&mut conn, |tx| {
        let mut jobs = Vec::new();
        let mut histories = Vec::new();
        for jid in ["a", "b", "new"] {
            jobs.push(tx.job_get(jid)?.map(|job| job.priority));
            let list = tx.history_list(jid)?;
            histories.push(list.into_iter().map(|e| e.what).collect::<Vec<_>>());
        }
        Ok((jobs, histories))
    })
    .expect("read");
    assert_eq!(jobs, [Some(3), Some(12), Some(22)]);
    assert_eq!(histories[0][1..], ["a1", "a2", "a3"], "{histories:?}");
    assert_eq!(histories[1][1..], ["a1", "a2", "a3"], "{histories:?}");
    assert_eq!(histories[2], ["a1", "a2", "a3"], "{histories:?}");
}
