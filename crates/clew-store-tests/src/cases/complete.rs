//! Conformance cases: complete.

#[allow(unused_imports)]
use crate::prelude::*;

/// complete without next returns "complete" and finishes the job: queue "", worker "", expires 0.
pub fn complete_returns_complete_and_finishes_job(t: &Harness) {
    start(t, 0.0, "q", "j", "w1");
    assert_eq!(
        t.ok("complete", 5.0, &["j", "w1", "q", "{}"]),
        json!("complete")
    );
    let job = t.get("j");
    assert_eq!(job["state"], "complete");
    assert_eq!(job["queue"], "");
    assert_eq!(job["worker"], "");
    assert_eq!(job["expires"].as_f64(), Some(0.0));
}

/// complete appends a `done` history entry with no extra keys.
pub fn complete_appends_done_history(t: &Harness) {
    t.put(0.0, "q", "j");
    t.pop_one(1.0, "q", "w1");
    t.ok("complete", 2.9, &["j", "w1", "q", "{}"]);
    let job = t.get("j");
    assert_eq!(
        job["history"],
        json!([
            {"what": "put", "when": 0, "q": "q"},
            {"what": "popped", "when": 1, "worker": "w1"},
            {"what": "done", "when": 2},
        ])
    );
}

/// complete stores the given data text exactly as given.
pub fn complete_stores_data_raw(t: &Harness) {
    t.ok("put", 0.0, &["me", "q", "j", "klass", r#"{"a":1}"#, "0"]);
    t.pop_one(0.0, "q", "w1");
    t.ok(
        "complete",
        1.0,
        &["j", "w1", "q", r#"{"b": [1, 2],  "c": null}"#],
    );
    assert_eq!(t.get("j")["data"], json!(r#"{"b": [1, 2],  "c": null}"#));
}

/// Completed jobs are listed by `jobs complete`, newest completion first.
pub fn complete_lists_newest_first(t: &Harness) {
    start(t, 0.0, "q", "a", "w1");
    start(t, 0.0, "q", "b", "w1");
    t.ok("complete", 10.0, &["a", "w1", "q", "{}"]);
    t.ok("complete", 20.0, &["b", "w1", "q", "{}"]);
    assert_eq!(t.ok("jobs", 30.0, &["complete"]), json!(["b", "a"]));
}

/// complete records a run statistic of completion time minus pop time.
pub fn complete_records_run_stat(t: &Harness) {
    t.put(0.0, "q", "j");
    t.pop_one(10.0, "q", "w1");
    t.ok("complete", 25.0, &["j", "w1", "q", "{}"]);
    let stats = t.ok("stats", 30.0, &["q", "30"]);
    assert_eq!(stats["run"]["count"], json!(1));
    assert_eq!(stats["run"]["mean"].as_f64(), Some(15.0));
    assert_eq!(stats["run"]["std"].as_f64(), Some(0.0));
    let hist = stats["run"]["histogram"].as_array().expect("histogram");
    assert_eq!(hist.len(), 148);
    for (i, n) in hist.iter().enumerate() {
        assert_eq!(n.as_i64(), Some(if i == 15 { 1 } else { 0 }), "bucket {i}");
    }
    assert_eq!(stats["wait"]["count"], json!(1));
    assert_eq!(stats["wait"]["mean"].as_f64(), Some(10.0));
}

/// complete releases the lock and takes the job out of the worker's job set.
pub fn complete_releases_lock_and_worker_set(t: &Harness) {
    start(t, 0.0, "q", "j", "w1");
    t.ok("complete", 5.0, &["j", "w1", "q", "{}"]);
    let counts = t.ok("queues", 6.0, &["q"]);
    assert_eq!(counts["running"], json!(0));
    assert_eq!(counts["waiting"], json!(0));
    assert_eq!(t.ok("length", 6.0, &["q"]), json!(0));
    assert_eq!(
        t.ok("workers", 6.0, &["w1"]),
        json!({"jobs": [], "stalled": []})
    );
    assert_eq!(t.ok("pop", 6.0, &["q", "w2", "5"]), json!([]));
}

/// complete without next publishes exactly the `completed` log event.
pub fn complete_publishes_completed_log_event(t: &Harness) {
    start(t, 0.0, "q", "j", "w1");
    drain(t);
    t.ok("complete", 5.0, &["j", "w1", "q", "{}"]);
    assert_eq!(
        drain(t),
        vec![(
            "ql:log".to_owned(),
            json!({"jid": "j", "event": "completed", "queue": "q"})
        )]
    );
}

/// complete of a tracked job publishes `ql:completed` then the log event.
pub fn complete_tracked_publishes_completed_then_log(t: &Harness) {
    start(t, 0.0, "q", "j", "w1");
    t.ok("track", 1.0, &["track", "j"]);
    drain(t);
    t.ok("complete", 5.0, &["j", "w1", "q", "{}"]);
    assert_eq!(
        drain(t),
        vec![
            ("ql:completed".to_owned(), json!("j")),
            (
                "ql:log".to_owned(),
                json!({"jid": "j", "event": "completed", "queue": "q"})
            ),
        ]
    );
}

/// complete clears a failure the job kept across a re-put.
pub fn complete_clears_failure(t: &Harness) {
    start(t, 0.0, "q", "j", "w1");
    t.ok("fail", 1.0, &["j", "w1", "g", "boom"]);
    start(t, 2.0, "q", "j", "w1");
    assert_eq!(t.get("j")["failure"]["group"], "g");
    t.ok("complete", 3.0, &["j", "w1", "q", "{}"]);
    assert_eq!(t.get("j")["failure"], json!({}));
}

/// complete resets `remaining` to `retries` after a lost lock used one up.
pub fn complete_resets_remaining(t: &Harness) {
    t.ok("config.set", 0.0, &["grace-period", "0"]);
    t.ok(
        "put",
        0.0,
        &["me", "q", "j", "klass", "{}", "0", "retries", "3"],
    );
    t.pop_one(0.0, "q", "w1");
    assert_eq!(t.pop_one(60.0, "q", "w2").as_deref(), Some("j"));
    assert_eq!(t.get("j")["remaining"], json!(2));
    t.ok("complete", 61.0, &["j", "w2", "q", "{}"]);
    assert_eq!(t.get("j")["remaining"], json!(3));
    assert_eq!(t.get("j")["retries"], json!(3));
}

/// complete of a waiting job is refused naming the state, and changes nothing.
pub fn complete_waiting_job_is_conflict(t: &Harness) {
    t.put(0.0, "q", "j");
    let before = t.snapshot(1.0, &["j"], &["q"]);
    t.err_with(
        "complete",
        1.0,
        &["j", "w1", "q", "{}"],
        ErrorKind::Conflict,
        "Complete(): Job j is not currently running: waiting",
    );
    assert_eq!(t.snapshot(1.0, &["j"], &["q"]), before);
}

/// complete of an already complete job is refused naming the state `complete`.
pub fn complete_twice_is_conflict(t: &Harness) {
    start(t, 0.0, "q", "j", "w1");
    t.ok("complete", 1.0, &["j", "w1", "q", "{}"]);
    t.err_with(
        "complete",
        2.0,
        &["j", "w1", "q", "{}"],
        ErrorKind::Conflict,
        "is not currently running: complete",
    );
}

/// complete of a failed job is refused naming the state `failed`.
pub fn complete_failed_job_is_conflict(t: &Harness) {
    start(t, 0.0, "q", "j", "w1");
    t.ok("fail", 1.0, &["j", "w1", "g", "m"]);
    t.err_with(
        "complete",
        2.0,
        &["j", "w1", "q", "{}"],
        ErrorKind::Conflict,
        "is not currently running: failed",
    );
}

/// complete by a worker that does not hold the job is refused naming the holder, and changes nothing.
pub fn complete_other_worker_is_conflict(t: &Harness) {
    start(t, 0.0, "q", "j", "w1");
    let before = t.snapshot(5.0, &["j"], &["q"]);
    t.err_with(
        "complete",
        5.0,
        &["j", "w2", "q", "{}"],
        ErrorKind::Conflict,
        "Complete(): Job j has been handed out to another worker: w1",
    );
    assert_eq!(t.snapshot(5.0, &["j"], &["q"]), before);
}

/// complete naming the wrong queue is refused naming the job's queue, and changes nothing.
pub fn complete_other_queue_is_conflict(t: &Harness) {
    start(t, 0.0, "q", "j", "w1");
    let before = t.snapshot(5.0, &["j"], &["q", "elsewhere"]);
    t.err_with(
        "complete",
        5.0,
        &["j", "w1", "elsewhere", "{}"],
        ErrorKind::Conflict,
        "Complete(): Job j running in another queue: q",
    );
    assert_eq!(t.snapshot(5.0, &["j"], &["q", "elsewhere"]), before);
}

/// complete of an unknown job is a not-found error.
pub fn complete_unknown_job_is_not_found(t: &Harness) {
    t.err_with(
        "complete",
        0.0,
        &["nope", "w1", "q", "{}"],
        ErrorKind::NotFound,
        "Complete(): Job nope does not exist",
    );
}

/// complete with `delay` but no `next` is an invalid-argument error, and changes nothing.
pub fn complete_delay_without_next_is_invalid(t: &Harness) {
    start(t, 0.0, "q", "j", "w1");
    let before = t.snapshot(1.0, &["j"], &["q"]);
    t.err_with(
        "complete",
        1.0,
        &["j", "w1", "q", "{}", "delay", "10"],
        ErrorKind::Invalid,
        r#""delay" and "depends" can only be used with "next""#,
    );
    assert_eq!(t.snapshot(1.0, &["j"], &["q"]), before);
}

/// complete with `depends` but no `next` is an invalid-argument error.
pub fn complete_depends_without_next_is_invalid(t: &Harness) {
    start(t, 0.0, "q", "j", "w1");
    t.put(0.0, "q", "other");
    t.err_with(
        "complete",
        1.0,
        &["j", "w1", "q", "{}", "depends", r#"["other"]"#],
        ErrorKind::Invalid,
        r#""delay" and "depends" can only be used with "next""#,
    );
    assert_eq!(t.state("j"), "running");
}

/// complete with data that is not JSON is an invalid-argument error.
pub fn complete_bad_data_is_invalid(t: &Harness) {
    start(t, 0.0, "q", "j", "w1");
    t.err_with(
        "complete",
        1.0,
        &["j", "w1", "q", "{bad"],
        ErrorKind::Invalid,
        "Arg \"data\" not JSON",
    );
    assert_eq!(t.state("j"), "running");
}

/// complete without the data argument is an invalid-argument error.
pub fn complete_missing_data_is_invalid(t: &Harness) {
    start(t, 0.0, "q", "j", "w1");
    t.err_with(
        "complete",
        1.0,
        &["j", "w1", "q"],
        ErrorKind::Invalid,
        "Complete(): Arg \"data\" missing",
    );
    assert_eq!(t.state("j"), "running");
}

/// complete with a non-numeric delay is an invalid-argument error.
pub fn complete_bad_delay_is_invalid(t: &Harness) {
    start(t, 0.0, "q", "j", "w1");
    t.err_with(
        "complete",
        1.0,
        &["j", "w1", "q", "{}", "next", "q2", "delay", "soon"],
        ErrorKind::Invalid,
        "Complete(): Arg \"delay\" not a number: soon",
    );
    assert_eq!(t.state("j"), "running");
}

/// complete with next returns "waiting" and moves the job to the next queue, unlocked.
pub fn complete_next_moves_job_to_waiting(t: &Harness) {
    start(t, 0.0, "q", "j", "w1");
    assert_eq!(
        t.ok("complete", 5.0, &["j", "w1", "q", "{}", "next", "q2"]),
        json!("waiting")
    );
    let job = t.get("j");
    assert_eq!(job["state"], "waiting");
    assert_eq!(job["queue"], "q2");
    assert_eq!(job["worker"], "");
    assert_eq!(job["expires"].as_f64(), Some(0.0));
    assert_eq!(
        job["history"],
        json!([
            {"what": "put", "when": 0, "q": "q"},
            {"what": "popped", "when": 0, "worker": "w1"},
            {"what": "done", "when": 5},
            {"what": "put", "when": 5, "q": "q2"},
        ])
    );
    assert_eq!(t.ok("queues", 6.0, &["q"])["running"], json!(0));
    assert_eq!(t.ok("queues", 6.0, &["q2"])["waiting"], json!(1));
    assert_eq!(t.pop_one(6.0, "q2", "w2").as_deref(), Some("j"));
}

/// An advanced job is not a completed job: `jobs complete` stays empty.
pub fn complete_next_is_not_listed_complete(t: &Harness) {
    start(t, 0.0, "q", "j", "w1");
    t.ok("complete", 5.0, &["j", "w1", "q", "{}", "next", "q2"]);
    assert_eq!(t.ok("jobs", 6.0, &["complete"]), json!([]));
}

/// complete with next registers the next queue in the known-queue list.
pub fn complete_next_registers_queue(t: &Harness) {
    start(t, 0.0, "q", "j", "w1");
    t.ok("complete", 5.0, &["j", "w1", "q", "{}", "next", "q2"]);
    let names: Vec<Value> = t
        .ok("queues", 6.0, &[])
        .as_array()
        .expect("array")
        .iter()
        .map(|q| q["name"].clone())
        .collect();
    assert_eq!(names, vec![json!("q"), json!("q2")]);
}

/// complete with next publishes exactly the `advanced` log event.
pub fn complete_next_publishes_advanced(t: &Harness) {
    start(t, 0.0, "q", "j", "w1");
    drain(t);
    t.ok("complete", 5.0, &["j", "w1", "q", "{}", "next", "q2"]);
    assert_eq!(
        drain(t),
        vec![(
            "ql:log".to_owned(),
            json!({"jid": "j", "event": "advanced", "queue": "q", "to": "q2"})
        )]
    );
}

/// A tracked job advanced with next publishes `ql:completed` and then `advanced`.
pub fn complete_next_tracked_publishes_completed(t: &Harness) {
    start(t, 0.0, "q", "j", "w1");
    t.ok("track", 1.0, &["track", "j"]);
    drain(t);
    t.ok("complete", 5.0, &["j", "w1", "q", "{}", "next", "q2"]);
    assert_eq!(
        drain(t),
        vec![
            ("ql:completed".to_owned(), json!("j")),
            (
                "ql:log".to_owned(),
                json!({"jid": "j", "event": "advanced", "queue": "q", "to": "q2"})
            ),
        ]
    );
}

/// complete with next and a delay returns "scheduled" and stores state `scheduled` (clew).
pub fn complete_next_with_delay_schedules(t: &Harness) {
    start(t, 0.0, "q", "j", "w1");
    assert_eq!(
        t.ok(
            "complete",
            10.0,
            &["j", "w1", "q", "{}", "next", "q2", "delay", "30"]
        ),
        json!("scheduled")
    );
    let job = t.get("j");
    assert_eq!(job["state"], "scheduled");
    assert_eq!(job["queue"], "q2");
    let counts = t.ok("queues", 11.0, &["q2"]);
    assert_eq!(counts["scheduled"], json!(1));
    assert_eq!(counts["waiting"], json!(0));
    assert_eq!(t.ok("pop", 39.9, &["q2", "w2", "1"]), json!([]));
    assert_eq!(t.pop_one(40.0, "q2", "w2").as_deref(), Some("j"));
}

/// complete with next and unmet depends returns "depends" and blocks the job in the next queue.
pub fn complete_next_with_depends_blocks(t: &Harness) {
    t.put(0.0, "q2", "dep");
    start(t, 0.0, "q", "j", "w1");
    assert_eq!(
        t.ok(
            "complete",
            5.0,
            &["j", "w1", "q", "{}", "next", "q2", "depends", r#"["dep"]"#]
        ),
        json!("depends")
    );
    let job = t.get("j");
    assert_eq!(job["state"], "depends");
    assert_eq!(job["queue"], "q2");
    assert_eq!(job["dependencies"], json!(["dep"]));
    assert_eq!(t.get("dep")["dependents"], json!(["j"]));
    assert_eq!(t.ok("jobs", 6.0, &["depends", "q2"]), json!(["j"]));
    // Only dep can be popped.
    assert_eq!(
        t.ok("pop", 6.0, &["q2", "w2", "5"])
            .as_array()
            .map(Vec::len),
        Some(1)
    );
    assert_eq!(t.get("dep")["state"], "running");
}

/// complete with next ignores dependencies that are already complete: the job is waiting.
pub fn complete_next_depends_on_complete_job_ignored(t: &Harness) {
    start(t, 0.0, "q", "dep", "w1");
    t.ok("complete", 1.0, &["dep", "w1", "q", "{}"]);
    start(t, 2.0, "q", "j", "w1");
    assert_eq!(
        t.ok(
            "complete",
            3.0,
            &["j", "w1", "q", "{}", "next", "q2", "depends", r#"["dep"]"#]
        ),
        json!("waiting")
    );
    let job = t.get("j");
    assert_eq!(job["state"], "waiting");
    assert_eq!(job["dependencies"], json!([]));
    assert_eq!(t.pop_one(4.0, "q2", "w2").as_deref(), Some("j"));
}

/// complete with next ignores dependencies on jobs that do not exist.
pub fn complete_next_depends_on_missing_job_ignored(t: &Harness) {
    start(t, 0.0, "q", "j", "w1");
    assert_eq!(
        t.ok(
            "complete",
            3.0,
            &[
                "j",
                "w1",
                "q",
                "{}",
                "next",
                "q2",
                "depends",
                r#"["ghost"]"#
            ]
        ),
        json!("waiting")
    );
    assert_eq!(t.get("j")["dependencies"], json!([]));
    assert_eq!(t.state("j"), "waiting");
}

/// With next, depends all met and a delay, the job is scheduled rather than losing the delay (clew).
pub fn complete_next_met_depends_with_delay_schedules(t: &Harness) {
    start(t, 0.0, "q", "dep", "w1");
    t.ok("complete", 1.0, &["dep", "w1", "q", "{}"]);
    start(t, 2.0, "q", "j", "w1");
    assert_eq!(
        t.ok(
            "complete",
            10.0,
            &[
                "j",
                "w1",
                "q",
                "{}",
                "next",
                "q2",
                "delay",
                "20",
                "depends",
                r#"["dep"]"#
            ]
        ),
        json!("scheduled")
    );
    assert_eq!(t.state("j"), "scheduled");
    assert_eq!(t.ok("pop", 29.0, &["q2", "w2", "1"]), json!([]));
    assert_eq!(t.pop_one(30.0, "q2", "w2").as_deref(), Some("j"));
}

/// With next, unmet depends and a delay, the delay is remembered and applied when the dependency completes.
pub fn complete_next_depends_remembers_delay(t: &Harness) {
    start(t, 0.0, "q2", "dep", "w0");
    start(t, 0.0, "q", "j", "w1");
    assert_eq!(
        t.ok(
            "complete",
            10.0,
            &[
                "j",
                "w1",
                "q",
                "{}",
                "next",
                "q2",
                "delay",
                "100",
                "depends",
                r#"["dep"]"#
            ]
        ),
        json!("depends")
    );
    assert_eq!(t.state("j"), "depends");
    t.ok("complete", 20.0, &["dep", "w0", "q2", "{}"]);
    assert_eq!(t.state("j"), "scheduled");
    assert_eq!(t.ok("pop", 109.0, &["q2", "w2", "1"]), json!([]));
    assert_eq!(t.pop_one(110.0, "q2", "w2").as_deref(), Some("j"));
}

/// complete with next resets `remaining` to `retries` and clears the failure.
pub fn complete_next_resets_remaining_and_failure(t: &Harness) {
    t.ok("config.set", 0.0, &["grace-period", "0"]);
    t.ok(
        "put",
        0.0,
        &["me", "q", "j", "klass", "{}", "0", "retries", "3"],
    );
    t.pop_one(0.0, "q", "w1");
    t.ok("fail", 1.0, &["j", "w1", "g", "boom"]);
    t.ok("put", 2.0, &["me", "q", "j", "klass", "{}", "0"]);
    t.pop_one(2.0, "q", "w1");
    // Lose the lock once: handed to w2 with one retry used.
    assert_eq!(t.pop_one(62.0, "q", "w2").as_deref(), Some("j"));
    let job = t.get("j");
    assert_eq!(job["remaining"], json!(2));
    assert_eq!(job["failure"]["group"], "g");
    t.ok("complete", 63.0, &["j", "w2", "q", "{}", "next", "q2"]);
    let job = t.get("j");
    assert_eq!(job["remaining"], json!(3));
    assert_eq!(job["failure"], json!({}));
}

/// Completing a job's only dependency moves the dependent to waiting in its queue.
pub fn complete_unblocks_dependent_to_waiting(t: &Harness) {
    t.put(0.0, "q", "a");
    t.ok(
        "put",
        0.0,
        &["me", "q2", "b", "klass", "{}", "0", "depends", r#"["a"]"#],
    );
    assert_eq!(t.state("b"), "depends");
    assert_eq!(t.pop_one(1.0, "q", "w1").as_deref(), Some("a"));
    t.ok("complete", 2.0, &["a", "w1", "q", "{}"]);
    let b = t.get("b");
    assert_eq!(b["state"], "waiting");
    assert_eq!(b["dependencies"], json!([]));
    assert_eq!(t.get("a")["dependents"], json!([]));
    assert_eq!(t.ok("jobs", 3.0, &["depends", "q2"]), json!([]));
    assert_eq!(t.pop_one(3.0, "q2", "w1").as_deref(), Some("b"));
}

/// A dependent put with a delay becomes scheduled (at its remembered time) when unblocked.
pub fn complete_unblocks_dependent_with_delay_to_scheduled(t: &Harness) {
    t.put(0.0, "q", "a");
    t.ok(
        "put",
        0.0,
        &["me", "q", "b", "klass", "{}", "50", "depends", r#"["a"]"#],
    );
    assert_eq!(t.state("b"), "depends");
    assert_eq!(t.pop_one(1.0, "q", "w1").as_deref(), Some("a"));
    t.ok("complete", 10.0, &["a", "w1", "q", "{}"]);
    assert_eq!(t.state("b"), "scheduled");
    assert_eq!(t.ok("queues", 11.0, &["q"])["scheduled"], json!(1));
    assert_eq!(t.ok("pop", 49.0, &["q", "w1", "1"]), json!([]));
    assert_eq!(t.pop_one(50.0, "q", "w1").as_deref(), Some("b"));
}

/// A dependent stays blocked until its last dependency completes.
pub fn complete_unblocks_only_after_last_dependency(t: &Harness) {
    t.put(0.0, "q", "a1");
    t.put(0.0, "q", "a2");
    t.ok(
        "put",
        0.0,
        &[
            "me",
            "q",
            "b",
            "klass",
            "{}",
            "0",
            "depends",
            r#"["a1","a2"]"#,
        ],
    );
    let popped = t.ok("pop", 1.0, &["q", "w1", "5"]);
    assert_eq!(popped.as_array().map(Vec::len), Some(2));
    t.ok("complete", 2.0, &["a1", "w1", "q", "{}"]);
    let b = t.get("b");
    assert_eq!(b["state"], "depends");
    assert_eq!(b["dependencies"], json!(["a2"]));
    t.ok("complete", 3.0, &["a2", "w1", "q", "{}"]);
    assert_eq!(t.state("b"), "waiting");
}

/// Advancing a job (complete with next) does not unblock its dependents.
pub fn complete_next_does_not_unblock_dependents(t: &Harness) {
    t.put(0.0, "q", "a");
    t.ok(
        "put",
        0.0,
        &["me", "q", "b", "klass", "{}", "0", "depends", r#"["a"]"#],
    );
    t.pop_one(1.0, "q", "w1");
    t.ok("complete", 2.0, &["a", "w1", "q", "{}", "next", "q2"]);
    assert_eq!(t.state("b"), "depends");
    assert_eq!(t.get("b")["dependencies"], json!(["a"]));
}
