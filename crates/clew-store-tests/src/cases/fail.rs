//! Conformance cases: fail.

#[allow(unused_imports)]
use crate::prelude::*;

/// fail returns the jid.
pub fn fail_returns_jid(t: &Harness) {
    start(t, 0.0, "q", "j", "w1");
    assert_eq!(t.ok("fail", 1.0, &["j", "w1", "g", "boom"]), json!("j"));
}

/// fail sets state failed with failure {group, message, when (floored), worker}, keeps the queue, clears the lock.
pub fn fail_sets_failed_state_and_failure(t: &Harness) {
    start(t, 0.0, "q", "j", "w1");
    t.ok("fail", 12.7, &["j", "w1", "g", "it broke"]);
    let job = t.get("j");
    assert_eq!(job["state"], "failed");
    assert_eq!(job["queue"], "q");
    assert_eq!(job["worker"], "");
    assert_eq!(job["expires"].as_f64(), Some(0.0));
    assert_eq!(
        job["failure"],
        json!({"group": "g", "message": "it broke", "when": 12, "worker": "w1"})
    );
}

/// fail appends a history entry `failed` with the worker and group.
pub fn fail_appends_history_with_worker_and_group(t: &Harness) {
    start(t, 0.0, "q", "j", "w1");
    t.ok("fail", 3.5, &["j", "w1", "g", "boom"]);
    let job = t.get("j");
    assert_eq!(history_whats(&job), vec!["put", "popped", "failed"]);
    assert_eq!(
        job["history"][2],
        json!({"what": "failed", "when": 3, "worker": "w1", "group": "g"})
    );
}

/// fail increments both `failures` and `failed` in the queue's stats for the day.
pub fn fail_increments_failures_and_failed(t: &Harness) {
    start(t, 0.0, "q", "a", "w1");
    start(t, 0.0, "q", "b", "w1");
    t.ok("fail", 1.0, &["a", "w1", "g", "m"]);
    t.ok("fail", 2.0, &["b", "w1", "h", "m"]);
    let stats = t.ok("stats", 3.0, &["q", "3"]);
    assert_eq!(stats["failures"], json!(2));
    assert_eq!(stats["failed"], json!(2));
    assert_eq!(stats["retries"], json!(0));
    let other = t.ok("stats", 3.0, &["elsewhere", "3"]);
    assert_eq!(other["failures"], json!(0));
}

/// fail puts the job in its failure group, visible through `failed`.
pub fn fail_lists_job_in_group(t: &Harness) {
    start(t, 0.0, "q", "j", "w1");
    t.ok("fail", 1.0, &["j", "w1", "g", "m"]);
    assert_eq!(t.ok("failed", 2.0, &[]), json!({"g": 1}));
    assert_eq!(
        t.ok("failed", 2.0, &["g"]),
        json!({"total": 1, "jobs": ["j"]})
    );
}

/// A failure group lists its jobs newest failure first.
pub fn fail_group_lists_newest_first(t: &Harness) {
    start(t, 0.0, "q", "a", "w1");
    start(t, 0.0, "q", "b", "w1");
    start(t, 0.0, "q", "c", "w1");
    t.ok("fail", 1.0, &["b", "w1", "g", "m"]);
    t.ok("fail", 2.0, &["a", "w1", "g", "m"]);
    t.ok("fail", 3.0, &["c", "w1", "g", "m"]);
    assert_eq!(
        t.ok("failed", 4.0, &["g"]),
        json!({"total": 3, "jobs": ["c", "a", "b"]})
    );
    assert_eq!(
        t.ok("failed", 4.0, &["g", "1", "1"]),
        json!({"total": 3, "jobs": ["a"]})
    );
}

/// fail publishes exactly the `failed` log event with worker, group and message.
pub fn fail_publishes_failed_log_event(t: &Harness) {
    start(t, 0.0, "q", "j", "w1");
    drain(t);
    t.ok("fail", 1.0, &["j", "w1", "g", "boom"]);
    assert_eq!(
        drain(t),
        vec![(
            "ql:log".to_owned(),
            json!({"jid": "j", "event": "failed", "worker": "w1", "group": "g", "message": "boom"})
        )]
    );
}

/// fail of a tracked job publishes the log event, then `ql:failed` with the jid.
pub fn fail_tracked_publishes_log_then_failed(t: &Harness) {
    start(t, 0.0, "q", "j", "w1");
    t.ok("track", 0.0, &["track", "j"]);
    drain(t);
    t.ok("fail", 1.0, &["j", "w1", "g", "boom"]);
    assert_eq!(
        drain(t),
        vec![
            (
                "ql:log".to_owned(),
                json!({"jid": "j", "event": "failed", "worker": "w1", "group": "g", "message": "boom"})
            ),
            ("ql:failed".to_owned(), json!("j")),
        ]
    );
}

/// fail with data replaces the job's data.
pub fn fail_replaces_data_when_given(t: &Harness) {
    t.ok("put", 0.0, &["me", "q", "j", "klass", r#"{"a":1}"#, "0"]);
    t.pop_one(0.0, "q", "w1");
    t.ok(
        "fail",
        1.0,
        &["j", "w1", "g", "m", r#"{"trace":["x","y"]}"#],
    );
    let data: Value =
        serde_json::from_str(t.get("j")["data"].as_str().expect("data")).expect("json");
    assert_eq!(data, json!({"trace": ["x", "y"]}));
}

/// fail without data keeps the data text untouched.
pub fn fail_without_data_keeps_data(t: &Harness) {
    t.ok("put", 0.0, &["me", "q", "j", "klass", r#"{"a": 1}"#, "0"]);
    t.pop_one(0.0, "q", "w1");
    t.ok("fail", 1.0, &["j", "w1", "g", "m"]);
    assert_eq!(t.get("j")["data"], json!(r#"{"a": 1}"#));
}

/// fail releases the lock and worker set; the failed job is no longer handed out.
pub fn fail_releases_lock_and_worker_set(t: &Harness) {
    start(t, 0.0, "q", "j", "w1");
    t.ok("fail", 1.0, &["j", "w1", "g", "m"]);
    let counts = t.ok("queues", 2.0, &["q"]);
    assert_eq!(counts["running"], json!(0));
    assert_eq!(counts["waiting"], json!(0));
    assert_eq!(counts["stalled"], json!(0));
    assert_eq!(t.ok("length", 2.0, &["q"]), json!(0));
    assert_eq!(
        t.ok("workers", 2.0, &["w1"]),
        json!({"jobs": [], "stalled": []})
    );
    // Even after the old lock would have expired, nothing is handed out.
    assert_eq!(t.ok("pop", 100.0, &["q", "w2", "5"]), json!([]));
    assert_eq!(t.state("j"), "failed");
}

/// fail of an unknown job is a not-found error (with the space clew adds).
pub fn fail_unknown_job_is_not_found(t: &Harness) {
    t.err_with(
        "fail",
        0.0,
        &["nope", "w1", "g", "m"],
        ErrorKind::NotFound,
        "Fail(): Job nope does not exist",
    );
}

/// fail of a waiting job is refused naming the state, and changes nothing.
pub fn fail_waiting_job_is_conflict(t: &Harness) {
    t.put(0.0, "q", "j");
    let before = t.snapshot(1.0, &["j"], &["q"]);
    t.err_with(
        "fail",
        1.0,
        &["j", "w1", "g", "m"],
        ErrorKind::Conflict,
        "Fail(): Job j not currently running: waiting",
    );
    assert_eq!(t.snapshot(1.0, &["j"], &["q"]), before);
}

/// fail of an already failed job is refused naming the state `failed`.
pub fn fail_failed_job_is_conflict(t: &Harness) {
    start(t, 0.0, "q", "j", "w1");
    t.ok("fail", 1.0, &["j", "w1", "g", "m"]);
    t.err_with(
        "fail",
        2.0,
        &["j", "w1", "g2", "m"],
        ErrorKind::Conflict,
        "not currently running: failed",
    );
    assert_eq!(t.ok("failed", 3.0, &[]), json!({"g": 1}));
}

/// fail of a scheduled job is refused naming the state `scheduled`.
pub fn fail_scheduled_job_is_conflict(t: &Harness) {
    t.ok("put", 0.0, &["me", "q", "j", "klass", "{}", "100"]);
    t.err_with(
        "fail",
        1.0,
        &["j", "w1", "g", "m"],
        ErrorKind::Conflict,
        "not currently running: scheduled",
    );
}

/// fail by a worker that does not hold the job is refused naming the holder, and changes nothing.
pub fn fail_other_worker_is_conflict(t: &Harness) {
    start(t, 0.0, "q", "j", "w1");
    let before = t.snapshot(5.0, &["j"], &["q"]);
    t.err_with(
        "fail",
        5.0,
        &["j", "w2", "g", "m"],
        ErrorKind::Conflict,
        "Fail(): Job j running with another worker: w1",
    );
    assert_eq!(t.snapshot(5.0, &["j"], &["q"]), before);
}

/// fail without a message is an invalid-argument error.
pub fn fail_missing_message_is_invalid(t: &Harness) {
    start(t, 0.0, "q", "j", "w1");
    t.err_with(
        "fail",
        1.0,
        &["j", "w1", "g"],
        ErrorKind::Invalid,
        "Fail(): Arg \"message\" missing",
    );
    assert_eq!(t.state("j"), "running");
}

/// fail without a group (nor message) is an invalid-argument error.
pub fn fail_missing_group_is_invalid(t: &Harness) {
    start(t, 0.0, "q", "j", "w1");
    t.err_with(
        "fail",
        1.0,
        &["j", "w1"],
        ErrorKind::Invalid,
        "Fail(): Arg \"group\" missing",
    );
    assert_eq!(t.state("j"), "running");
}

/// fail with data that is not JSON is an invalid-argument error.
pub fn fail_bad_data_is_invalid(t: &Harness) {
    start(t, 0.0, "q", "j", "w1");
    t.err_with(
        "fail",
        1.0,
        &["j", "w1", "g", "m", "{bad"],
        ErrorKind::Invalid,
        "Arg \"data\" not JSON",
    );
    assert_eq!(t.state("j"), "running");
}
