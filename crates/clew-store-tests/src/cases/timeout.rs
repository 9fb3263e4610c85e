//! Conformance cases: timeout.

#[allow(unused_imports)]
use crate::prelude::*;

/// timeout returns nothing and sets the job stalled with expires 0, in the same queue.
pub fn timeout_sets_state_stalled(t: &Harness) {
    start(t, 0.0, "q", "j", "w1");
    assert_eq!(t.ok("timeout", 5.0, &["j"]), Value::Null);
    let job = t.get("j");
    assert_eq!(job["state"], "stalled");
    assert_eq!(job["queue"], "q");
    assert_eq!(job["expires"].as_f64(), Some(0.0));
}

/// timeout appends a `timed-out` history entry with no extra keys.
pub fn timeout_appends_timed_out_history(t: &Harness) {
    start(t, 0.0, "q", "j", "w1");
    t.ok("timeout", 5.5, &["j"]);
    let job = t.get("j");
    assert_eq!(history_whats(&job), vec!["put", "popped", "timed-out"]);
    assert_eq!(job["history"][2], json!({"what": "timed-out", "when": 5}));
}

/// A timed-out job goes to the very front of the work queue, ahead of higher priorities.
pub fn timeout_puts_job_at_front_of_queue(t: &Harness) {
    start(t, 0.0, "q", "a", "w1");
    t.put(1.0, "q", "b");
    t.ok(
        "put",
        2.0,
        &["me", "q", "c", "klass", "{}", "0", "priority", "100"],
    );
    t.ok("timeout", 3.0, &["a"]);
    assert_eq!(jids(&t.ok("peek", 4.0, &["q", "5"])), vec!["a", "c", "b"]);
    assert_eq!(
        jids(&t.ok("pop", 4.0, &["q", "w2", "5"])),
        vec!["a", "c", "b"]
    );
}

/// A timed-out job counts as waiting (not running or stalled) and is out of the lock listings.
pub fn timeout_moves_job_from_locks_to_work(t: &Harness) {
    start(t, 0.0, "q", "j", "w1");
    t.ok("timeout", 5.0, &["j"]);
    let counts = t.ok("queues", 6.0, &["q"]);
    assert_eq!(counts["waiting"], json!(1));
    assert_eq!(counts["running"], json!(0));
    assert_eq!(counts["stalled"], json!(0));
    assert_eq!(t.ok("length", 6.0, &["q"]), json!(1));
    assert_eq!(t.ok("jobs", 6.0, &["running", "q"]), json!([]));
    // Past the old expiry the job is not reported as a stalled lock either.
    assert_eq!(t.ok("jobs", 100.0, &["stalled", "q"]), json!([]));
}

/// timeout publishes lock_lost on the worker's channel and on the log channel.
pub fn timeout_publishes_lock_lost(t: &Harness) {
    start(t, 0.0, "q", "j", "w1");
    drain(t);
    t.ok("timeout", 5.0, &["j"]);
    let mut events = drain(t);
    events.sort_by(|a, b| a.0.cmp(&b.0));
    let payload = json!({"jid": "j", "event": "lock_lost", "worker": "w1"});
    assert_eq!(
        events,
        vec![
            ("ql:log".to_owned(), payload.clone()),
            ("ql:w:w1".to_owned(), payload)
        ]
    );
}

/// timeout takes the job out of the old worker's job set (clew), even after the old expiry.
pub fn timeout_removes_job_from_worker_set(t: &Harness) {
    start(t, 0.0, "q", "j", "w1");
    t.ok("timeout", 5.0, &["j"]);
    assert_eq!(
        t.ok("workers", 6.0, &["w1"]),
        json!({"jobs": [], "stalled": []})
    );
    assert_eq!(
        t.ok("workers", 100.0, &["w1"]),
        json!({"jobs": [], "stalled": []})
    );
    assert_eq!(
        t.ok("workers", 100.0, &[]),
        json!([{"name": "w1", "jobs": 0, "stalled": 0}])
    );
}

/// A timed-out job popped again is running for the new worker, with remaining unchanged.
pub fn timeout_job_popped_by_another_worker(t: &Harness) {
    start(t, 0.0, "q", "j", "w1");
    t.ok("timeout", 5.0, &["j"]);
    let popped = t.ok("pop", 6.0, &["q", "w2", "1"]);
    assert_eq!(jids(&popped), vec!["j"]);
    assert_eq!(popped[0]["state"], "running");
    assert_eq!(popped[0]["worker"], "w2");
    assert_eq!(popped[0]["remaining"], json!(5));
    assert_eq!(popped[0]["expires"].as_f64(), Some(66.0));
    assert_eq!(
        history_whats(&t.get("j")),
        vec!["put", "popped", "timed-out", "popped"]
    );
    assert_eq!(
        t.ok("workers", 7.0, &["w2"]),
        json!({"jobs": ["j"], "stalled": []})
    );
}

/// The old worker can no longer complete a timed-out job: state `stalled` is named.
pub fn timeout_old_worker_cannot_complete(t: &Harness) {
    start(t, 0.0, "q", "j", "w1");
    t.ok("timeout", 5.0, &["j"]);
    t.err_with(
        "complete",
        6.0,
        &["j", "w1", "q", "{}"],
        ErrorKind::Conflict,
        "is not currently running: stalled",
    );
}

/// timeout works on a running job whose lock has already expired.
pub fn timeout_of_expired_lock(t: &Harness) {
    start(t, 0.0, "q", "j", "w1");
    t.ok("timeout", 100.0, &["j"]);
    assert_eq!(t.state("j"), "stalled");
    assert_eq!(t.ok("queues", 100.0, &["q"])["stalled"], json!(0));
}

/// timeout handles several jobs in one call.
pub fn timeout_several_jobs(t: &Harness) {
    start(t, 0.0, "q", "a", "w1");
    start(t, 0.0, "q", "b", "w2");
    t.ok("timeout", 5.0, &["a", "b"]);
    assert_eq!(t.state("a"), "stalled");
    assert_eq!(t.state("b"), "stalled");
    assert_eq!(t.ok("queues", 6.0, &["q"])["waiting"], json!(2));
}

/// timeout of an unknown job is a not-found error.
pub fn timeout_unknown_job_is_not_found(t: &Harness) {
    t.err_with(
        "timeout",
        0.0,
        &["nope"],
        ErrorKind::NotFound,
        "Timeout(): Job nope does not exist",
    );
}

/// timeout of a waiting job is refused naming the state.
pub fn timeout_waiting_job_is_conflict(t: &Harness) {
    t.put(0.0, "q", "j");
    t.err_with(
        "timeout",
        1.0,
        &["j"],
        ErrorKind::Conflict,
        "Timeout(): Job j not running: waiting",
    );
    assert_eq!(t.state("j"), "waiting");
}

/// timeout of an already timed-out job is refused naming the state `stalled`.
pub fn timeout_twice_is_conflict(t: &Harness) {
    start(t, 0.0, "q", "j", "w1");
    t.ok("timeout", 1.0, &["j"]);
    t.err_with(
        "timeout",
        2.0,
        &["j"],
        ErrorKind::Conflict,
        "Timeout(): Job j not running: stalled",
    );
    assert_eq!(
        history_whats(&t.get("j")),
        vec!["put", "popped", "timed-out"]
    );
}

/// timeout of a complete job is refused naming the state `complete`.
pub fn timeout_complete_job_is_conflict(t: &Harness) {
    start(t, 0.0, "q", "j", "w1");
    t.ok("complete", 1.0, &["j", "w1", "q", "{}"]);
    t.err_with(
        "timeout",
        2.0,
        &["j"],
        ErrorKind::Conflict,
        "not running: complete",
    );
}

/// A timeout call with one bad jid changes nothing, not even for the good ones.
pub fn timeout_with_bad_jid_changes_nothing(t: &Harness) {
    start(t, 0.0, "q", "a", "w1");
    t.put(0.0, "q", "b");
    let before = t.snapshot(5.0, &["a", "b"], &["q"]);
    t.err_with(
        "timeout",
        5.0,
        &["a", "b"],
        ErrorKind::Conflict,
        "not running: waiting",
    );
    assert_eq!(t.snapshot(5.0, &["a", "b"], &["q"]), before);
    t.err_with(
        "timeout",
        5.0,
        &["a", "nope"],
        ErrorKind::NotFound,
        "nope does not exist",
    );
    assert_eq!(t.snapshot(5.0, &["a", "b"], &["q"]), before);
    assert_eq!(t.state("a"), "running");
}
