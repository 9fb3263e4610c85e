//! The `Tx` primitives of `SqliteTx`, on a real database file: each ordering
//! rule of the `Tx` contract and the bookkeeping primitives.

use clew_core::tx::{Counter, LocCounts, StatKind, TimeRange, TimingStat};
use clew_core::{Failure, HistoryEntry, JobRecord, JobState, Loc, RecurRecord, Timestamp, Tx};
use clew_sqlite::testing::{in_tx, migrated_connection, DB_FILE};
use clew_sqlite::{SqliteTx, TxCache, SCHEMA_VERSION};
use rusqlite::Connection;
use tempfile::TempDir;

/// A fresh migrated database.
fn db() -> (Connection, TempDir) {
    let dir = tempfile::tempdir().unwrap();
    let conn = migrated_connection(dir.path().join(DB_FILE)).unwrap();
    (conn, dir)
}

fn t(micros: i64) -> Timestamp {
    Timestamp(micros)
}

/// A job placed in `queue`'s set `loc`.
fn job(jid: &str, queue: &str, loc: Loc, sort_prio: i64, sort_time: i64, seq: i64) -> JobRecord {
    JobRecord {
        jid: jid.into(),
        klass: "Klass".into(),
        queue: queue.into(),
        state: JobState::Waiting,
        data: "{}".into(),
        priority: sort_prio,
        tags: vec![],
        worker: String::new(),
        expires: Timestamp::ZERO,
        retries: 5,
        remaining: 5,
        time: t(sort_time),
        grace: false,
        scheduled: None,
        failure: None,
        spawned_from: None,
        worker_listed: false,
        fail_group: None,
        fail_seq: 0,
        loc,
        sort_prio,
        sort_time: t(sort_time),
        seq,
        metadata: serde_json::Map::new(),
        unique_key: None,
        batch: None,
        batch_outcome: Default::default(),
        throttles: vec![],
    }
}

fn save_all(conn: &Connection, jobs: &[JobRecord]) {
    in_tx(conn, |tx| {
        for j in jobs {
            tx.job_save(j)?;
        }
        Ok(())
    })
    .unwrap();
}

#[test]
fn work_list_orders_by_priority_desc_then_time_then_seq() {
    let (conn, _dir) = db();
    save_all(
        &conn,
        &[
            job("low-early", "q", Loc::Work, 0, 10, 1),
            job("high-late", "q", Loc::Work, 5, 50, 2),
            job("front", "q", Loc::Work, i64::MAX, 99, 3),
            job("low-late-seq9", "q", Loc::Work, 0, 20, 9),
            job("low-late-seq4", "q", Loc::Work, 0, 20, 4),
            job("negative", "q", Loc::Work, -3, 0, 5),
            job("other-queue", "r", Loc::Work, 100, 0, 6),
            job("scheduled", "q", Loc::Scheduled, 100, 0, 7),
        ],
    );
    in_tx(&conn, |tx| {
        let all = tx.job_list("q", Loc::Work, TimeRange::ALL, 0, 100)?;
        assert_eq!(
            all,
            [
                "front",
                "high-late",
                "low-early",
                "low-late-seq4",
                "low-late-seq9",
                "negative"
            ]
        );
        assert_eq!(
            tx.job_list("q", Loc::Work, TimeRange::ALL, 1, 2)?,
            ["high-late", "low-early"]
        );
        assert_eq!(
            tx.job_list("q", Loc::Work, TimeRange::up_to(t(20)), 0, 100)?,
            ["low-early", "low-late-seq4", "low-late-seq9", "negative"]
        );
        assert_eq!(tx.job_count("q", Loc::Work, TimeRange::ALL)?, 6);
        assert_eq!(tx.job_count("q", Loc::Work, TimeRange::from(t(20)))?, 4);
        // A zero or negative limit returns nothing, a negative offset skips nothing.
        assert!(tx
            .job_list("q", Loc::Work, TimeRange::ALL, 0, 0)?
            .is_empty());
        assert!(tx
            .job_list("q", Loc::Work, TimeRange::ALL, 0, -1)?
            .is_empty());
        assert_eq!(
            tx.job_list("q", Loc::Work, TimeRange::ALL, -5, 1)?,
            ["front"]
        );
        Ok(())
    })
    .unwrap();
}

#[test]
fn other_sets_order_by_time_then_jid_bytes_and_honour_ranges() {
    let (conn, _dir) = db();
    save_all(
        &conn,
        &[
            // Priority and seq must not matter outside the work list.
            job("b", "q", Loc::Scheduled, 9, 30, 1),
            job("a", "q", Loc::Scheduled, 0, 30, 2),
            job("B", "q", Loc::Scheduled, 0, 30, 3),
            job("z", "q", Loc::Scheduled, 0, 10, 4),
            job("late", "q", Loc::Scheduled, 0, 70, 5),
            job("locked", "q", Loc::Locked, 0, 5, 6),
        ],
    );
    in_tx(&conn, |tx| {
        // Byte order: "B" (0x42) sorts before "a" (0x61).
        assert_eq!(
            tx.job_list("q", Loc::Scheduled, TimeRange::ALL, 0, 10)?,
            ["z", "B", "a", "b", "late"]
        );
        let mid = TimeRange {
            min: Some(t(10)),
            max: Some(t(30)),
        };
        assert_eq!(tx.job_list("q", Loc::Scheduled, mid, 1, 2)?, ["B", "a"]);
        assert_eq!(tx.job_count("q", Loc::Scheduled, mid)?, 4);
        assert_eq!(
            tx.job_list_rev("q", Loc::Scheduled, TimeRange::ALL, 0, 10)?,
            ["late", "b", "a", "B", "z"]
        );
        assert_eq!(
            tx.job_list_rev("q", Loc::Scheduled, TimeRange::up_to(t(30)), 1, 2)?,
            ["a", "B"]
        );
        assert_eq!(
            tx.job_list("q", Loc::Locked, TimeRange::ALL, 0, 10)?,
            ["locked"]
        );
        Ok(())
    })
    .unwrap();
}

#[test]
fn loc_counts_split_locks_at_now() {
    let (conn, _dir) = db();
    save_all(
        &conn,
        &[
            job("w1", "q", Loc::Work, 0, 1, 1),
            job("w2", "q", Loc::Work, 0, 2, 2),
            job("live", "q", Loc::Locked, 0, 101, 3),
            job("expired-now", "q", Loc::Locked, 0, 100, 4),
            job("expired", "q", Loc::Locked, 0, 50, 5),
            job("s", "q", Loc::Scheduled, 0, 500, 6),
            job("d1", "q", Loc::Depends, 0, 1, 7),
            job("d2", "q", Loc::Depends, 0, 1, 8),
            job("d3", "q", Loc::Depends, 0, 1, 9),
            job("done", "q", Loc::Complete, 0, 1, 10),
            job("none", "q", Loc::None, 0, 1, 11),
            job("elsewhere", "r", Loc::Work, 0, 1, 12),
        ],
    );
    in_tx(&conn, |tx| {
        assert_eq!(
            tx.job_loc_counts("q", t(100))?,
            LocCounts {
                waiting: 2,
                running: 1,
                stalled: 2,
                scheduled: 1,
                depends: 3,
                throttled: 0,
            }
        );
        assert_eq!(tx.job_loc_counts("empty", t(100))?, LocCounts::default());
        Ok(())
    })
    .unwrap();
}

#[test]
fn job_rows_round_trip_every_field() {
    let (conn, _dir) = db();
    let mut full = job("j1", "q", Loc::Locked, -7, 123, 42);
    full.state = JobState::Running;
    full.data = r#"{"k": [1, 2.5, "x"]}"#.into();
    full.tags = vec!["b".into(), "a".into()];
    full.worker = "w".into();
    full.expires = t(-5);
    full.retries = 3;
    full.remaining = 1;
    full.grace = true;
    full.scheduled = Some(t(999));
    full.failure = Some(Failure {
        group: "Klass:Err".into(),
        message: "boom\nline 2".into(),
        when: t(1_500_001),
        worker: "w".into(),
    });
    full.spawned_from = Some("recur-1".into());
    full.worker_listed = true;
    full.fail_group = Some("Klass:Err".into());
    full.fail_seq = 17;
    full.sort_prio = i64::MAX;
    in_tx(&conn, |tx| {
        assert_eq!(tx.job_get("j1")?, None);
        tx.job_save(&full)?;
        assert_eq!(tx.job_get("j1")?.as_ref(), Some(&full));
        // Saving again replaces the row.
        let mut moved = full.clone();
        moved.state = JobState::Complete;
        moved.loc = Loc::Complete;
        moved.failure = None;
        moved.scheduled = None;
        moved.spawned_from = None;
        moved.fail_group = None;
        tx.job_save(&moved)?;
        assert_eq!(tx.job_get("j1")?, Some(moved));
        tx.job_delete("j1")?;
        assert_eq!(tx.job_get("j1")?, None);
        tx.job_delete("j1")?;
        Ok(())
    })
    .unwrap();
}

/// A save writes the whole record given, whatever was read before: a save
/// of a record read earlier in the same transaction (the store then sets
/// only the columns that differ from what it read) still writes the
/// columns another primitive changed in the meantime, and every column
/// that differs.
#[test]
fn saves_after_reads_write_every_changed_column() {
    let (conn, _dir) = db();
    let mut a = job("a", "q", Loc::Locked, 0, 30, 1);
    a.worker = "w1".into();
    a.worker_listed = true;
    a.metadata.insert("k".into(), serde_json::json!(1));
    save_all(&conn, &[a, job("b", "q", Loc::Work, 0, 10, 2)]);
    in_tx(&conn, |tx| {
        // Read, then the row changes under another primitive, then the
        // record read (still listed) is saved with one change.
        let mut read = tx.job_get("a")?.unwrap();
        tx.job_worker_unlist_all("w1")?;
        read.remaining = 2;
        tx.job_save(&read)?;
        assert_eq!(tx.job_get("a")?.as_ref(), Some(&read));
        // Every column changed at once, from a listing's read.
        let listed = tx.job_list_records("q", Loc::Work, TimeRange::ALL, 0, 10)?;
        assert_eq!(listed.len(), 1);
        let mut all = listed[0].clone();
        all.klass = "Other".into();
        all.queue = "r".into();
        all.state = JobState::Failed;
        all.data = "[1]".into();
        all.priority = 9;
        all.tags = vec!["t".into()];
        all.worker = "w9".into();
        all.expires = t(77);
        all.retries = 1;
        all.remaining = 0;
        all.time = t(78);
        all.grace = true;
        all.scheduled = Some(t(79));
        all.failure = Some(Failure {
            group: "g".into(),
            message: "m".into(),
            when: t(80),
            worker: "w9".into(),
        });
        all.spawned_from = Some("r-1".into());
        all.worker_listed = true;
        all.fail_group = Some("g".into());
        all.fail_seq = 81;
        all.loc = Loc::None;
        all.sort_prio = 3;
        all.sort_time = t(82);
        all.seq = 83;
        all.metadata.insert("x".into(), serde_json::json!("y"));
        all.unique_key = Some("u".into());
        all.batch = Some("batch-1".into());
        all.throttles = vec!["th".into()];
        tx.job_save(&all)?;
        assert_eq!(tx.job_get("b")?.as_ref(), Some(&all));
        // And back to the empty values, saved twice (the second time
        // nothing differs).
        let mut back = job("b", "q", Loc::Work, 0, 10, 2);
        back.state = JobState::Waiting;
        tx.job_save(&back)?;
        tx.job_save(&back)?;
        assert_eq!(tx.job_get("b")?, Some(back));
        Ok(())
    })
    .unwrap();
    // And so it was committed.
    let mut cache = TxCache::new();
    let mut tx = SqliteTx::new(&conn, &mut cache);
    assert_eq!(tx.job_get("a").unwrap().unwrap().remaining, 2);
    assert!(tx.job_get("a").unwrap().unwrap().worker_listed);
    assert_eq!(tx.job_get("b").unwrap().unwrap().klass, "Klass");
}

#[test]
fn worker_job_sets_list_and_unlist() {
    let (conn, _dir) = db();
    let mut a = job("a", "q", Loc::Locked, 0, 30, 1);
    a.worker = "w1".into();
    a.worker_listed = true;
    a.expires = t(30);
    let mut b = job("b", "q", Loc::Locked, 0, 20, 2);
    b.worker = "w1".into();
    b.worker_listed = true;
    b.expires = t(20);
    let mut unlisted = job("c", "q", Loc::None, 0, 0, 3);
    unlisted.worker = "w1".into();
    let mut other = job("d", "q", Loc::Locked, 0, 10, 4);
    other.worker = "w2".into();
    other.worker_listed = true;
    other.expires = t(10);
    save_all(&conn, &[a, b, unlisted, other]);
    in_tx(&conn, |tx| {
        assert_eq!(
            tx.job_worker_list("w1")?,
            [("b".to_string(), t(20)), ("a".to_string(), t(30))]
        );
        tx.job_worker_unlist_all("w1")?;
        assert!(tx.job_worker_list("w1")?.is_empty());
        assert!(!tx.job_get("a")?.unwrap().worker_listed);
        assert_eq!(tx.job_get("a")?.unwrap().worker, "w1");
        assert_eq!(tx.job_worker_list("w2")?, [("d".to_string(), t(10))]);
        Ok(())
    })
    .unwrap();
}

#[test]
fn history_keeps_order_and_trims_to_first_plus_newest() {
    let (conn, _dir) = db();
    in_tx(&conn, |tx| {
        for i in 0..6 {
            let e = HistoryEntry::new(t(i * 10), &format!("e{i}"))
                .with("q", "queue")
                .with("n", i);
            tx.history_append("j", &e)?;
        }
        tx.history_append("other", &HistoryEntry::new(t(0), "put"))?;
        let list = tx.history_list("j")?;
        assert_eq!(list.len(), 6);
        assert_eq!(list[3].what, "e3");
        assert_eq!(list[3].when, t(30));
        assert_eq!(list[3].extra["q"], "queue");
        assert_eq!(list[3].extra["n"], 3);
        assert_eq!(tx.history_count("j")?, 6);

        tx.history_trim("j", 2)?;
        let whats: Vec<_> = tx.history_list("j")?.into_iter().map(|e| e.what).collect();
        assert_eq!(whats, ["e0", "e4", "e5"]);
        // Trimming to more than there is keeps everything.
        tx.history_trim("j", 10)?;
        assert_eq!(tx.history_count("j")?, 3);
        tx.history_trim("j", 0)?;
        let whats: Vec<_> = tx.history_list("j")?.into_iter().map(|e| e.what).collect();
        assert_eq!(whats, ["e0"]);
        // Other jobs are untouched.
        assert_eq!(tx.history_count("other")?, 1);
        tx.history_delete("j")?;
        assert_eq!(tx.history_count("j")?, 0);
        assert!(tx.history_list("j")?.is_empty());
        assert_eq!(tx.history_count("other")?, 1);
        Ok(())
    })
    .unwrap();
}

#[test]
fn history_lives_in_the_job_row_across_transactions() {
    let (conn, _dir) = db();
    let odd = "log: \"quoted\" \\ tab\t é";
    // Appended before the save (the logic's way): written with the row.
    in_tx(&conn, |tx| {
        tx.history_append_first("j", &HistoryEntry::new(t(1), "put").with("q", "q"))?;
        tx.job_save(&job("j", "q", Loc::Work, 0, 1, 1))?;
        tx.history_append_first("k", &HistoryEntry::new(t(1), "put"))?;
        tx.job_save(&job("k", "q", Loc::Work, 0, 1, 2))?;
        // Appended after the save: written on its own at the flush.
        tx.history_append("k", &HistoryEntry::new(t(2), odd).with("n", 1))?;
        Ok(())
    })
    .unwrap();
    let stored: String = conn
        .query_row("SELECT history FROM jobs WHERE jid = 'j'", [], |r| r.get(0))
        .unwrap();
    assert_eq!(stored, r#"[[1,"put",{"q":"q"}]]"#);
    in_tx(&conn, |tx| {
        // Appended to a row whose history is not known: in SQL.
        tx.history_append("j", &HistoryEntry::new(t(3), "popped").with("worker", "w"))?;
        let mut j = job("j", "q", Loc::Locked, 0, 3, 3);
        j.state = JobState::Running;
        tx.job_save(&j)?;
        // Appended to a row read with it: the whole array, from here.
        let k = tx.job_get("k")?.unwrap();
        tx.history_append("k", &HistoryEntry::new(t(4), "popped"))?;
        tx.job_save(&k)?;
        Ok(())
    })
    .unwrap();
    in_tx(&conn, |tx| {
        let whats: Vec<_> = tx.history_list("j")?.into_iter().map(|e| e.what).collect();
        assert_eq!(whats, ["put", "popped"]);
        assert_eq!(tx.history_list("j")?[1].extra["worker"], "w");
        let k = tx.history_list("k")?;
        let whats: Vec<_> = k.iter().map(|e| e.what.as_str()).collect();
        assert_eq!(whats, ["put", odd, "popped"]);
        assert_eq!(k[1].when, t(2));
        assert_eq!(k[1].extra["n"], 1);
        assert_eq!(tx.history_count("k")?, 3);
        // Trimmed and deleted histories are written too.
        tx.history_trim("k", 1)?;
        tx.history_delete("j")?;
        tx.history_append("j", &HistoryEntry::new(t(5), "put"))?;
        Ok(())
    })
    .unwrap();
    in_tx(&conn, |tx| {
        let whats: Vec<_> = tx.history_list("k")?.into_iter().map(|e| e.what).collect();
        assert_eq!(whats, ["put", "popped"]);
        let whats: Vec<_> = tx.history_list("j")?.into_iter().map(|e| e.what).collect();
        assert_eq!(whats, ["put"]);
        // The history goes with the row.
        tx.job_delete("k")?;
        assert!(tx.history_list("k")?.is_empty());
        Ok(())
    })
    .unwrap();
}

#[test]
fn a_cache_kept_across_transactions_answers_with_the_rows_as_saved() {
    // The writer keeps one cache from group to group: a running job's row
    // comes from it, and is what the next save compares against.
    let (conn, _dir) = db();
    let mut cache = TxCache::new();
    let mut run = |f: &mut dyn FnMut(&mut SqliteTx<'_>) -> clew_core::Result<()>| {
        conn.execute_batch("BEGIN IMMEDIATE").unwrap();
        let mut tx = SqliteTx::new(&conn, &mut cache);
        f(&mut tx).unwrap();
        tx.flush().unwrap();
        conn.execute_batch("COMMIT").unwrap();
    };
    let mut running = job("j", "q", Loc::Locked, 0, 5, 1);
    running.state = JobState::Running;
    running.worker = "w".into();
    run(&mut |tx| {
        tx.history_append_first("j", &HistoryEntry::new(t(1), "put"))?;
        tx.job_save(&job("j", "q", Loc::Work, 0, 1, 1))?;
        tx.history_append("j", &HistoryEntry::new(t(5), "popped"))?;
        tx.job_save(&running)
    });
    run(&mut |tx| {
        assert_eq!(tx.job_get("j")?.as_ref(), Some(&running));
        assert_eq!(tx.history_list("j")?.len(), 2);
        let mut done = running.clone();
        done.state = JobState::Complete;
        done.worker = String::new();
        done.loc = Loc::Complete;
        tx.history_append("j", &HistoryEntry::new(t(9), "done"))?;
        tx.job_save(&done)
    });
    let (state, worker, history): (String, String, String) = conn
        .query_row(
            "SELECT state, worker, history FROM jobs WHERE jid = 'j'",
            [],
            |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)),
        )
        .unwrap();
    assert_eq!((state.as_str(), worker.as_str()), ("complete", ""));
    assert_eq!(history, r#"[[1,"put",{}],[5,"popped",{}],[9,"done",{}]]"#);
}

#[test]
fn tag_counters_vanish_at_zero_and_top_orders_by_count_then_name() {
    let (conn, _dir) = db();
    in_tx(&conn, |tx| {
        tx.tag_count_add("x", 3)?;
        tx.tag_count_add("b", 2)?;
        tx.tag_count_add("a", 2)?;
        tx.tag_count_add("once", 1)?;
        assert_eq!(tx.tag_top(1, 0, 10)?, ["x", "a", "b", "once"]);
        assert_eq!(tx.tag_top(2, 0, 10)?, ["x", "a", "b"]);
        assert_eq!(tx.tag_top(1, 1, 2)?, ["a", "b"]);
        // min_count 0 still never lists a deleted counter.
        tx.tag_count_add("once", -1)?;
        assert_eq!(tx.tag_top(0, 0, 10)?, ["x", "a", "b"]);
        tx.tag_count_add("x", -5)?;
        assert_eq!(tx.tag_top(i64::MIN, 0, 10)?, ["a", "b"]);
        // Starting again from a deleted counter starts at the delta.
        tx.tag_count_add("x", 1)?;
        assert_eq!(tx.tag_top(1, 0, 10)?, ["a", "b", "x"]);
        tx.tag_count_add("new", -2)?;
        assert_eq!(tx.tag_top(i64::MIN, 0, 10)?, ["a", "b", "x"]);
        let rows: i64 = tx
            .connection()
            .query_row("SELECT COUNT(*) FROM tag_counts", [], |r| r.get(0))
            .unwrap();
        assert_eq!(rows, 3);
        Ok(())
    })
    .unwrap();
}

#[test]
fn tag_index_orders_by_time_then_jid_and_counts() {
    let (conn, _dir) = db();
    in_tx(&conn, |tx| {
        tx.tag_index_add("t", "j2", t(20))?;
        tx.tag_index_add("t", "j1", t(20))?;
        tx.tag_index_add("t", "j3", t(10))?;
        tx.tag_index_add("t", "j0", t(30))?;
        tx.tag_index_add("u", "j1", t(0))?;
        assert_eq!(
            tx.tag_jobs("t", 0, 10)?,
            (4, vec!["j3".into(), "j1".into(), "j2".into(), "j0".into()])
        );
        assert_eq!(tx.tag_jobs("t", 1, 2)?, (4, vec!["j1".into(), "j2".into()]));
        // Adding again moves the time.
        tx.tag_index_add("t", "j3", t(40))?;
        assert_eq!(tx.tag_jobs("t", 0, 10)?.1, ["j1", "j2", "j0", "j3"]);
        tx.tag_index_remove("t", "j1")?;
        tx.tag_index_remove("t", "missing")?;
        assert_eq!(
            tx.tag_jobs("t", 0, 10)?,
            (3, vec!["j2".into(), "j0".into(), "j3".into()])
        );
        assert_eq!(tx.tag_jobs("u", 0, 10)?, (1, vec!["j1".into()]));
        assert_eq!(tx.tag_jobs("none", 0, 10)?, (0, vec![]));
        Ok(())
    })
    .unwrap();
}

#[test]
fn queues_register_forget_and_pause_interplay() {
    let (conn, _dir) = db();
    in_tx(&conn, |tx| {
        tx.queue_register("late", t(50))?;
        tx.queue_register("b", t(10))?;
        tx.queue_register("a", t(10))?;
        // Registering a known queue again keeps its first-seen time.
        tx.queue_register("late", t(1))?;
        assert_eq!(tx.queue_list()?, ["a", "b", "late"]);

        // Pausing an unknown queue does not make it known.
        tx.queue_set_paused("ghost", true)?;
        assert!(tx.queue_paused("ghost")?);
        assert_eq!(tx.queue_list()?, ["a", "b", "late"]);
        // Registering it later lists it at its registration time.
        tx.queue_register("ghost", t(60))?;
        assert_eq!(tx.queue_list()?, ["a", "b", "late", "ghost"]);
        assert!(tx.queue_paused("ghost")?);

        // Forgetting keeps the pause; re-registering takes the new time.
        tx.queue_set_paused("a", true)?;
        tx.queue_forget("a")?;
        assert_eq!(tx.queue_list()?, ["b", "late", "ghost"]);
        assert!(tx.queue_paused("a")?);
        tx.queue_register("a", t(70))?;
        assert_eq!(tx.queue_list()?, ["b", "late", "ghost", "a"]);
        tx.queue_set_paused("a", false)?;
        assert!(!tx.queue_paused("a")?);

        // Forgetting an unpaused queue, then pausing/unpausing it.
        tx.queue_forget("b")?;
        assert!(!tx.queue_paused("b")?);
        tx.queue_set_paused("b", true)?;
        tx.queue_set_paused("b", false)?;
        assert_eq!(tx.queue_list()?, ["late", "ghost", "a"]);
        tx.queue_register("b", t(80))?;
        assert_eq!(tx.queue_list()?, ["late", "ghost", "a", "b"]);
        assert!(!tx.queue_paused("never")?);
        tx.queue_forget("never")?;
        assert_eq!(tx.queue_list()?.len(), 4);
        Ok(())
    })
    .unwrap();
}

#[test]
fn seq_next_is_monotonic_across_transactions_and_reopen() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join(DB_FILE);
    let conn = migrated_connection(&path).unwrap();
    let first = in_tx(&conn, |tx| {
        Ok((tx.seq_next()?, tx.seq_next()?, tx.seq_next()?))
    })
    .unwrap();
    assert!(first.0 < first.1 && first.1 < first.2);
    // A rolled-back transaction leaves no trace: values may come again.
    let err = in_tx(&conn, |tx| {
        tx.seq_next()?;
        Err::<(), _>(clew_core::Error::conflict("no"))
    });
    assert!(err.is_err());
    let second = in_tx(&conn, |tx| tx.seq_next()).unwrap();
    assert!(second > first.2);
    drop(conn);

    let conn = migrated_connection(&path).unwrap();
    let third = in_tx(&conn, |tx| tx.seq_next()).unwrap();
    assert!(third > second);

    // A long-lived cache keeps counting without reading the database, and
    // writes back on flush.
    let mut cache = TxCache::new();
    conn.execute_batch("BEGIN").unwrap();
    let mut tx = SqliteTx::new(&conn, &mut cache);
    let a = tx.seq_next().unwrap();
    let b = tx.seq_next().unwrap();
    tx.flush().unwrap();
    conn.execute_batch("COMMIT").unwrap();
    assert!(third < a && a < b);
    assert!(!cache.is_dirty());
    let stored: i64 = conn
        .query_row("SELECT value FROM meta WHERE key = 'seq'", [], |r| r.get(0))
        .unwrap();
    assert_eq!(stored, b);
}

#[test]
fn event_numbers_increase_and_are_never_reused() {
    let (conn, _dir) = db();
    let (a, b) = in_tx(&conn, |tx| {
        Ok((
            tx.event_append(t(1), "ql:log", "{}")?,
            tx.event_append(t(2), "ql:track", "j1")?,
        ))
    })
    .unwrap();
    assert!(a < b);
    // Deleting the newest rows must not free their numbers.
    conn.execute("DELETE FROM events", []).unwrap();
    let c = in_tx(&conn, |tx| tx.event_append(t(3), "ql:log", "{}")).unwrap();
    assert!(c > b, "{c} must be above {b}");
    let (at, channel, message): (i64, String, String) = conn
        .query_row(
            "SELECT at, channel, message FROM events WHERE seq = ?1",
            [c],
            |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)),
        )
        .unwrap();
    assert_eq!(
        (at, channel.as_str(), message.as_str()),
        (3, "ql:log", "{}")
    );
}

#[test]
fn failure_lists_order_by_fail_seq() {
    let (conn, _dir) = db();
    let failed = |jid: &str, group: &str, fail_seq: i64| {
        let mut j = job(jid, "q", Loc::None, 0, 0, fail_seq);
        j.state = JobState::Failed;
        j.fail_group = Some(group.into());
        j.fail_seq = fail_seq;
        j
    };
    save_all(
        &conn,
        &[
            failed("a", "g1", 3),
            failed("b", "g1", 1),
            failed("c", "g1", 2),
            failed("d", "g2", 5),
            job("ok", "q", Loc::Work, 0, 0, 9),
        ],
    );
    in_tx(&conn, |tx| {
        assert_eq!(
            tx.failed_groups()?,
            [("g1".to_string(), 3), ("g2".to_string(), 1)]
        );
        assert_eq!(tx.failed_list("g1", 0, 10)?, ["a", "c", "b"]);
        assert_eq!(tx.failed_list("g1", 1, 1)?, ["c"]);
        assert_eq!(tx.failed_oldest("g1", 2)?, ["b", "c"]);
        assert_eq!(tx.failed_count("g1")?, 3);
        assert_eq!(tx.failed_count("none")?, 0);
        // Leaving the group (unfail / put) removes it from the list.
        let mut a = tx.job_get("a")?.unwrap();
        a.fail_group = None;
        tx.job_save(&a)?;
        assert_eq!(tx.failed_list("g1", 0, 10)?, ["c", "b"]);
        tx.job_delete("d")?;
        assert_eq!(tx.failed_groups()?, [("g1".to_string(), 2)]);
        Ok(())
    })
    .unwrap();
}

#[test]
fn workers_order_by_last_seen_desc_then_name_desc() {
    let (conn, _dir) = db();
    in_tx(&conn, |tx| {
        tx.worker_touch("a", t(10))?;
        tx.worker_touch("b", t(10))?;
        tx.worker_touch("c", t(5))?;
        tx.worker_touch("d", t(1))?;
        tx.worker_touch("d", t(20))?;
        assert_eq!(
            tx.worker_list()?,
            [
                ("d".to_string(), t(20)),
                ("b".to_string(), t(10)),
                ("a".to_string(), t(10)),
                ("c".to_string(), t(5)),
            ]
        );
        tx.worker_remove("b")?;
        tx.worker_remove("missing")?;
        let names: Vec<_> = tx.worker_list()?.into_iter().map(|w| w.0).collect();
        assert_eq!(names, ["d", "a", "c"]);
        Ok(())
    })
    .unwrap();
}

#[test]
fn tracked_set_orders_by_time_then_jid() {
    let (conn, _dir) = db();
    in_tx(&conn, |tx| {
        assert!(tx.tracked_add("j2", t(10))?);
        assert!(tx.tracked_add("j1", t(10))?);
        assert!(tx.tracked_add("j0", t(20))?);
        assert!(!tx.tracked_add("j2", t(30))?);
        // Like ZADD: tracking again moves the time.
        assert_eq!(tx.tracked_list()?, ["j1", "j0", "j2"]);
        assert!(tx.tracked_has("j1")?);
        assert!(tx.tracked_remove("j1")?);
        assert!(!tx.tracked_remove("j1")?);
        assert!(!tx.tracked_has("j1")?);
        assert_eq!(tx.tracked_list()?, ["j0", "j2"]);
        Ok(())
    })
    .unwrap();
}

#[test]
fn dependency_edges_both_ways() {
    let (conn, _dir) = db();
    in_tx(&conn, |tx| {
        tx.dep_add("child", "p2")?;
        tx.dep_add("child", "p1")?;
        tx.dep_add("child", "p1")?;
        tx.dep_add("other", "p1")?;
        assert_eq!(tx.deps_of("child")?, ["p1", "p2"]);
        assert_eq!(tx.dependents_of("p1")?, ["child", "other"]);
        tx.dep_remove("child", "p1")?;
        tx.dep_remove("child", "absent")?;
        assert_eq!(tx.deps_of("child")?, ["p2"]);
        assert_eq!(tx.dependents_of("p1")?, ["other"]);
        assert!(tx.deps_of("nobody")?.is_empty());
        Ok(())
    })
    .unwrap();
}

#[test]
fn recurring_templates_round_trip_and_list_by_next_at() {
    let (conn, _dir) = db();
    let recur = |jid: &str, queue: &str, next_at: i64| RecurRecord {
        jid: jid.into(),
        klass: "K".into(),
        queue: queue.into(),
        data: r#"{"a":1}"#.into(),
        priority: -2,
        tags: vec!["t1".into(), "t2".into()],
        retries: 4,
        interval: 1.25,
        next_at: t(next_at),
        count: 7,
        backlog: 3,
        cron: Some(Box::new(clew_core::cron::CronSpec {
            expr: "*/5 * * * *".into(),
            timezone: Some("Europe/Paris".into()),
            missed: clew_core::cron::Missed::Skip,
        })),
    };
    in_tx(&conn, |tx| {
        let r = recur("r1", "q", 30);
        tx.recur_save(&r)?;
        assert_eq!(tx.recur_get("r1")?, Some(r.clone()));
        tx.recur_save(&recur("r3", "q", 10))?;
        tx.recur_save(&recur("r2", "q", 10))?;
        tx.recur_save(&recur("other", "p", 0))?;
        assert_eq!(
            tx.recur_list("q", TimeRange::ALL, 0, 10)?,
            ["r2", "r3", "r1"]
        );
        assert_eq!(
            tx.recur_list("q", TimeRange::up_to(t(10)), 0, 10)?,
            ["r2", "r3"]
        );
        assert_eq!(tx.recur_list("q", TimeRange::ALL, 1, 1)?, ["r3"]);
        assert_eq!(tx.recur_count("q")?, 3);
        let mut moved = r;
        moved.queue = "p".into();
        moved.next_at = t(1);
        tx.recur_save(&moved)?;
        assert_eq!(tx.recur_count("q")?, 2);
        assert_eq!(tx.recur_list("p", TimeRange::ALL, 0, 10)?, ["other", "r1"]);
        tx.recur_delete("r1")?;
        tx.recur_delete("r1")?;
        assert_eq!(tx.recur_get("r1")?, None);
        Ok(())
    })
    .unwrap();
}

#[test]
fn stats_accumulate_per_queue_day_and_kind() {
    let (conn, _dir) = db();
    let day = t(86_400_000_000);
    in_tx(&conn, |tx| {
        assert_eq!(tx.stats_counters("q", day)?, (0, 0, 0));
        tx.stats_counter_add("q", day, Counter::Failures, 2)?;
        tx.stats_counter_add("q", day, Counter::Failed, 1)?;
        tx.stats_counter_add("q", day, Counter::Failed, -1)?;
        tx.stats_counter_add("q", day, Counter::Retries, 5)?;
        tx.stats_counter_add("q", Timestamp::ZERO, Counter::Failures, 9)?;
        assert_eq!(tx.stats_counters("q", day)?, (2, 0, 5));
        assert_eq!(tx.stats_counters("q", Timestamp::ZERO)?, (9, 0, 0));

        tx.stats_hist_add("q", day, StatKind::Wait, "s3")?;
        tx.stats_hist_add("q", day, StatKind::Wait, "s3")?;
        tx.stats_hist_add("q", day, StatKind::Wait, "m1")?;
        tx.stats_hist_add("q", day, StatKind::Run, "h2")?;
        assert_eq!(
            tx.stats_hist("q", day, StatKind::Wait)?,
            [("m1".to_string(), 1), ("s3".to_string(), 2)]
        );
        assert_eq!(
            tx.stats_hist("q", day, StatKind::Run)?,
            [("h2".to_string(), 1)]
        );
        assert!(tx.stats_hist("r", day, StatKind::Run)?.is_empty());

        assert_eq!(
            tx.stats_timing("q", day, StatKind::Run)?,
            TimingStat::default()
        );
        let s = TimingStat {
            count: 3,
            mean: 1.5,
            vk: 0.25,
        };
        tx.stats_timing_save("q", day, StatKind::Run, &s)?;
        assert_eq!(tx.stats_timing("q", day, StatKind::Run)?, s);
        assert_eq!(
            tx.stats_timing("q", day, StatKind::Wait)?,
            TimingStat::default()
        );
        Ok(())
    })
    .unwrap();
}

#[test]
fn config_values_sorted_and_cached_coherently() {
    let (conn, _dir) = db();
    let mut cache = TxCache::new();
    conn.execute_batch("BEGIN").unwrap();
    {
        let mut tx = SqliteTx::new(&conn, &mut cache);
        assert_eq!(tx.config_get("b").unwrap(), None);
        tx.config_set("b", "2").unwrap();
        tx.config_set("a", "1").unwrap();
        tx.config_set("b", "3").unwrap();
        assert_eq!(tx.config_get("b").unwrap().as_deref(), Some("3"));
        assert_eq!(
            tx.config_all().unwrap(),
            [
                ("a".to_string(), "1".to_string()),
                ("b".to_string(), "3".to_string())
            ]
        );
        tx.config_unset("a").unwrap();
        assert_eq!(tx.config_get("a").unwrap(), None);
        assert_eq!(tx.config_all().unwrap().len(), 1);
    }
    conn.execute_batch("COMMIT").unwrap();
    // Someone else changes the value behind the cache's back: the cache
    // keeps its view until cleared, then reads the database again.
    conn.execute("UPDATE config SET value = 'x' WHERE key = 'b'", [])
        .unwrap();
    let mut tx = SqliteTx::new(&conn, &mut cache);
    assert_eq!(tx.config_get("b").unwrap().as_deref(), Some("3"));
    cache.clear();
    let mut tx = SqliteTx::new(&conn, &mut cache);
    assert_eq!(tx.config_get("b").unwrap().as_deref(), Some("x"));
}

#[test]
fn migration_is_idempotent_and_refuses_newer_schemas() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join(DB_FILE);
    let conn = migrated_connection(&path).unwrap();
    let version: i64 = conn
        .query_row("PRAGMA user_version", [], |r| r.get(0))
        .unwrap();
    assert_eq!(version, SCHEMA_VERSION);
    let mode: String = conn
        .query_row("PRAGMA journal_mode", [], |r| r.get(0))
        .unwrap();
    assert_eq!(mode, "wal");
    in_tx(&conn, |tx| tx.config_set("k", "v")).unwrap();
    drop(conn);

    // Opening again applies nothing and keeps the data.
    let conn = migrated_connection(&path).unwrap();
    assert_eq!(
        in_tx(&conn, |tx| tx.config_get("k")).unwrap().as_deref(),
        Some("v")
    );
    conn.pragma_update(None, "user_version", SCHEMA_VERSION + 1)
        .unwrap();
    drop(conn);
    let err = migrated_connection(&path).unwrap_err();
    assert_eq!(err.kind(), clew_core::ErrorKind::Store);
    assert!(err.message().contains("schema version"), "{err}");
}
