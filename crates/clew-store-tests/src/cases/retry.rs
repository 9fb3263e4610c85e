//! Conformance cases: retry.

#[allow(unused_imports)]
use crate::prelude::*;

/// Puts `jid` into `queue` at `now` with `retries` and pops it for `worker` at the same time.
fn start_with(h: &Harness, now: f64, queue: &str, jid: &str, worker: &str, retries: &str) {
    h.ok(
        "put",
        now,
        &["me", queue, jid, "klass", "{}", "0", "retries", retries],
    );
    assert_eq!(h.pop_one(now, queue, worker).as_deref(), Some(jid));
}

/// retry returns the remaining count after the decrement, each time.
pub fn retry_returns_remaining_after_decrement(t: &Harness) {
    start(t, 0.0, "q", "j", "w1");
    assert_eq!(t.ok("retry", 1.0, &["j", "q", "w1"]), json!(4));
    assert_eq!(t.get("j")["remaining"], json!(4));
    assert_eq!(t.pop_one(2.0, "q", "w1").as_deref(), Some("j"));
    assert_eq!(t.ok("retry", 3.0, &["j", "q", "w1"]), json!(3));
    assert_eq!(t.get("j")["retries"], json!(5));
}

/// retry without a delay puts the job back to waiting in its queue, where another worker can pop it.
pub fn retry_puts_job_back_waiting(t: &Harness) {
    start(t, 0.0, "q", "j", "w1");
    t.ok("retry", 1.0, &["j", "q", "w1"]);
    let job = t.get("j");
    assert_eq!(job["state"], "waiting");
    assert_eq!(job["queue"], "q");
    let counts = t.ok("queues", 2.0, &["q"]);
    assert_eq!(counts["waiting"], json!(1));
    assert_eq!(counts["running"], json!(0));
    let popped = t.ok("pop", 2.0, &["q", "w2", "1"]);
    assert_eq!(popped[0]["jid"], "j");
    assert_eq!(popped[0]["worker"], "w2");
    assert_eq!(popped[0]["remaining"], json!(4));
}

/// retry clears the job's worker and expires, and takes it out of the worker's set (clew).
pub fn retry_clears_worker_and_expires(t: &Harness) {
    start(t, 0.0, "q", "j", "w1");
    t.ok("retry", 1.0, &["j", "q", "w1"]);
    let job = t.get("j");
    assert_eq!(job["worker"], "");
    assert_eq!(job["expires"].as_f64(), Some(0.0));
    assert_eq!(
        t.ok("workers", 2.0, &["w1"]),
        json!({"jobs": [], "stalled": []})
    );
    assert_eq!(
        t.ok("workers", 2.0, &[]),
        json!([{"name": "w1", "jobs": 0, "stalled": 0}])
    );
}

/// retry with a delay schedules the job; it becomes poppable exactly at now + delay.
pub fn retry_with_delay_schedules(t: &Harness) {
    start(t, 0.0, "q", "j", "w1");
    assert_eq!(t.ok("retry", 10.0, &["j", "q", "w1", "20"]), json!(4));
    assert_eq!(t.state("j"), "scheduled");
    let counts = t.ok("queues", 11.0, &["q"]);
    assert_eq!(counts["scheduled"], json!(1));
    assert_eq!(counts["waiting"], json!(0));
    assert_eq!(counts["running"], json!(0));
    assert_eq!(t.ok("pop", 29.9, &["q", "w2", "1"]), json!([]));
    assert_eq!(t.pop_one(30.0, "q", "w2").as_deref(), Some("j"));
}

/// retry of a job with retries 1: first retry leaves 0 and requeues, second exhausts it.
pub fn retry_last_retry_then_exhaustion(t: &Harness) {
    start_with(t, 0.0, "q", "j", "w1", "1");
    assert_eq!(t.ok("retry", 1.0, &["j", "q", "w1"]), json!(0));
    assert_eq!(t.state("j"), "waiting");
    t.pop_one(2.0, "q", "w1");
    assert_eq!(t.ok("retry", 3.0, &["j", "q", "w1"]), json!(-1));
    assert_eq!(t.state("j"), "failed");
}

/// retry with no retries left fails the job into failed-retries-`<queue>` with worker ''.
pub fn retry_exhausted_fails_job(t: &Harness) {
    start_with(t, 0.0, "q", "j", "w1", "0");
    assert_eq!(t.ok("retry", 7.5, &["j", "q", "w1"]), json!(-1));
    let job = t.get("j");
    assert_eq!(job["state"], "failed");
    assert_eq!(job["queue"], "q");
    assert_eq!(job["worker"], "");
    assert_eq!(
        job["failure"],
        json!({
            "group": "failed-retries-q",
            "message": "Job exhausted retries in queue \"q\"",
            "when": 7,
            "worker": "",
        })
    );
}

/// A retry-exhausted failure appends history `failed` with the group and no worker key.
pub fn retry_exhausted_history_has_no_worker(t: &Harness) {
    start_with(t, 0.0, "q", "j", "w1", "0");
    t.ok("retry", 7.5, &["j", "q", "w1"]);
    let job = t.get("j");
    let last = job["history"].as_array().and_then(|h| h.last()).cloned();
    assert_eq!(
        last,
        Some(json!({"what": "failed", "when": 7, "group": "failed-retries-q"}))
    );
}

/// A retry-exhausted job is listed in its failure group, counted in stats and out of the queue.
pub fn retry_exhausted_lists_and_counts(t: &Harness) {
    start_with(t, 0.0, "q", "j", "w1", "0");
    t.ok("retry", 1.0, &["j", "q", "w1"]);
    assert_eq!(t.ok("failed", 2.0, &[]), json!({"failed-retries-q": 1}));
    assert_eq!(
        t.ok("failed", 2.0, &["failed-retries-q"]),
        json!({"total": 1, "jobs": ["j"]})
    );
    let stats = t.ok("stats", 2.0, &["q", "2"]);
    assert_eq!(stats["failures"], json!(1));
    assert_eq!(stats["failed"], json!(1));
    assert_eq!(stats["retries"], json!(0));
    let counts = t.ok("queues", 2.0, &["q"]);
    assert_eq!(counts["waiting"], json!(0));
    assert_eq!(counts["running"], json!(0));
    assert_eq!(counts["scheduled"], json!(0));
    assert_eq!(t.ok("pop", 3.0, &["q", "w2", "5"]), json!([]));
}

/// A retry-exhausted job uses the caller's group and message when both are given (worker still '').
pub fn retry_exhausted_uses_given_group_and_message(t: &Harness) {
    start_with(t, 0.0, "q", "j", "w1", "0");
    assert_eq!(
        t.ok(
            "retry",
            4.0,
            &["j", "q", "w1", "0", "Klass:Err", "went wrong"]
        ),
        json!(-1)
    );
    let job = t.get("j");
    assert_eq!(
        job["failure"],
        json!({"group": "Klass:Err", "message": "went wrong", "when": 4, "worker": ""})
    );
    let last = job["history"].as_array().and_then(|h| h.last()).cloned();
    assert_eq!(
        last,
        Some(json!({"what": "failed", "when": 4, "group": "Klass:Err"}))
    );
    assert_eq!(t.ok("failed", 5.0, &[]), json!({"Klass:Err": 1}));
}

/// The retry exhaustion path publishes the `failed` log event like the other failure paths (clew).
pub fn retry_exhausted_publishes_failed_log_event(t: &Harness) {
    start_with(t, 0.0, "q", "j", "w1", "0");
    drain(t);
    t.ok("retry", 1.0, &["j", "q", "w1"]);
    let log: Vec<Value> = drain(t)
        .into_iter()
        .filter(|(c, _)| c == "ql:log")
        .map(|(_, v)| v)
        .collect();
    assert_eq!(
        log,
        vec![json!({
            "jid": "j",
            "event": "failed",
            "group": "failed-retries-q",
            "worker": "w1",
            "message": "Job exhausted retries in queue \"q\"",
        })]
    );
}

/// A tracked job exhausted by retry publishes `ql:failed` with the jid.
pub fn retry_exhausted_tracked_publishes_failed(t: &Harness) {
    start_with(t, 0.0, "q", "j", "w1", "0");
    t.ok("track", 0.0, &["track", "j"]);
    drain(t);
    t.ok("retry", 1.0, &["j", "q", "w1"]);
    let tracked: Vec<(String, Value)> = drain(t)
        .into_iter()
        .filter(|(c, _)| c != "ql:log")
        .collect();
    assert_eq!(tracked, vec![("ql:failed".to_owned(), json!("j"))]);
}

/// A non-exhausted retry with a group and message stores them as the failure, informationally.
pub fn retry_with_group_and_message_records_failure(t: &Harness) {
    start(t, 0.0, "q", "j", "w1");
    assert_eq!(
        t.ok("retry", 3.0, &["j", "q", "w1", "0", "g", "transient"]),
        json!(4)
    );
    let job = t.get("j");
    assert_eq!(job["state"], "waiting");
    assert_eq!(
        job["failure"],
        json!({"group": "g", "message": "transient", "when": 3, "worker": "w1"})
    );
    assert_eq!(t.ok("failed", 4.0, &[]), json!({}));
}

/// retry of an unknown job is a not-found error.
pub fn retry_unknown_job_is_not_found(t: &Harness) {
    t.err_with(
        "retry",
        0.0,
        &["nope", "q", "w1"],
        ErrorKind::NotFound,
        "Retry(): Job nope does not exist",
    );
}

/// retry of a waiting job is refused naming the state, and changes nothing.
pub fn retry_waiting_job_is_conflict(t: &Harness) {
    t.put(0.0, "q", "j");
    let before = t.snapshot(1.0, &["j"], &["q"]);
    t.err_with(
        "retry",
        1.0,
        &["j", "q", "w1"],
        ErrorKind::Conflict,
        "Retry(): Job j is not currently running: waiting",
    );
    assert_eq!(t.snapshot(1.0, &["j"], &["q"]), before);
}

/// retry of a failed job is refused naming the state `failed`.
pub fn retry_failed_job_is_conflict(t: &Harness) {
    start(t, 0.0, "q", "j", "w1");
    t.ok("fail", 1.0, &["j", "w1", "g", "m"]);
    t.err_with(
        "retry",
        2.0,
        &["j", "q", "w1"],
        ErrorKind::Conflict,
        "is not currently running: failed",
    );
}

/// retry by a worker that does not hold the job is refused naming the holder, and changes nothing.
pub fn retry_other_worker_is_conflict(t: &Harness) {
    start(t, 0.0, "q", "j", "w1");
    let before = t.snapshot(5.0, &["j"], &["q"]);
    t.err_with(
        "retry",
        5.0,
        &["j", "q", "w2"],
        ErrorKind::Conflict,
        "Retry(): Job j has been given to another worker: w1",
    );
    assert_eq!(t.snapshot(5.0, &["j"], &["q"]), before);
}

/// retry naming the wrong queue is refused like complete (clew), and changes nothing.
pub fn retry_other_queue_is_conflict(t: &Harness) {
    start(t, 0.0, "q", "j", "w1");
    let before = t.snapshot(5.0, &["j"], &["q", "elsewhere"]);
    t.err_with(
        "retry",
        5.0,
        &["j", "elsewhere", "w1"],
        ErrorKind::Conflict,
        "Retry(): Job j running in another queue: q",
    );
    assert_eq!(t.snapshot(5.0, &["j"], &["q", "elsewhere"]), before);
}

/// retry with a non-numeric delay is an invalid-argument error.
pub fn retry_bad_delay_is_invalid(t: &Harness) {
    start(t, 0.0, "q", "j", "w1");
    t.err_with(
        "retry",
        1.0,
        &["j", "q", "w1", "later"],
        ErrorKind::Invalid,
        "Retry(): Arg \"delay\" not a number: later",
    );
    assert_eq!(t.get("j")["remaining"], json!(5));
    assert_eq!(t.state("j"), "running");
}

/// retry without a worker argument is an invalid-argument error.
pub fn retry_missing_worker_is_invalid(t: &Harness) {
    start(t, 0.0, "q", "j", "w1");
    t.err_with(
        "retry",
        1.0,
        &["j", "q"],
        ErrorKind::Invalid,
        "Retry(): Arg \"worker\" missing",
    );
    assert_eq!(t.state("j"), "running");
}

/// The owner may retry during the grace window; retry clears the grace flag, so the
/// next lost lock gets a fresh courtesy step instead of an immediate hand-over.
pub fn retry_during_grace_clears_grace(t: &Harness) {
    start(t, 0.0, "q", "j", "w1");
    // Courtesy step at 60: lock pushed to 70, grace set.
    assert_eq!(t.ok("pop", 60.0, &["q", "w2", "1"]), json!([]));
    assert_eq!(t.ok("retry", 65.0, &["j", "q", "w1"]), json!(4));
    assert_eq!(t.state("j"), "waiting");
    assert_eq!(t.pop_one(66.0, "q", "w2").as_deref(), Some("j"));
    // w2's lock expires at 126: courtesy again, not a hand-over.
    assert_eq!(t.ok("pop", 126.0, &["q", "w3", "1"]), json!([]));
    let job = t.get("j");
    assert_eq!(job["worker"], "w2");
    assert_eq!(job["remaining"], json!(4));
    assert_eq!(
        history_whats(&job),
        vec!["put", "popped", "timed-out", "popped", "timed-out"]
    );
}

/// An empty group with a message means "no group": an exhausted retry fails
/// into `failed-retries-<queue>` with the given message.
pub fn retry_with_message_and_empty_group_uses_the_default_group(t: &Harness) {
    t.ok("put", 0.0, &["w", "q", "j", "K", "{}", "0", "retries", "0"]);
    assert_eq!(t.pop_one(0.0, "q", "w1").as_deref(), Some("j"));
    assert_eq!(
        t.ok("retry", 1.0, &["j", "q", "w1", "0", "", "it broke"]),
        json!(-1)
    );
    let job = t.get("j");
    assert_eq!(job["failure"]["group"], json!("failed-retries-q"));
    assert_eq!(job["failure"]["message"], json!("it broke"));
    assert_eq!(t.ok("failed", 1.0, &[]), json!({"failed-retries-q": 1}));
}
