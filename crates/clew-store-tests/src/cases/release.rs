//! Conformance cases: release (a clew extension: a worker shutting down hands
//! a running job back at once, without spending a retry).

#[allow(unused_imports)]
use crate::prelude::*;

/// release puts a running job back to waiting in its queue, worker cleared,
/// remaining unchanged, and returns "waiting".
pub fn release_returns_job_to_waiting_without_spending_a_retry(t: &Harness) {
    start(t, 0.0, "q", "j", "w1");
    assert_eq!(t.ok("release", 1.0, &["j", "w1"]), json!("waiting"));
    let job = t.get("j");
    assert_eq!(job["state"], json!("waiting"));
    assert_eq!(job["queue"], json!("q"));
    assert_eq!(job["worker"], json!(""));
    assert_eq!(job["expires"], json!(0));
    assert_eq!(job["remaining"], json!(5));
    assert_eq!(job["failure"], json!({}));
    assert_eq!(t.ok("jobs", 1.0, &["running", "q"]), json!([]));
    assert_eq!(
        t.ok("workers", 1.0, &["w1"]),
        json!({"jobs": [], "stalled": []})
    );
}

/// A released job goes ahead of waiting jobs of the same priority, but not
/// ahead of higher priorities.
pub fn release_goes_ahead_of_its_equals(t: &Harness) {
    t.ok(
        "put",
        0.0,
        &["w", "q", "hi", "K", "{}", "0", "priority", "5"],
    );
    t.put(0.0, "q", "j");
    // Pop the high-priority job and j, then release j.
    let popped = t.ok("pop", 1.0, &["q", "w1", "2"]);
    assert_eq!(popped.as_array().map(Vec::len), Some(2));
    t.put(2.0, "q", "later");
    t.ok(
        "put",
        2.0,
        &["w", "q", "hi2", "K", "{}", "0", "priority", "5"],
    );
    t.ok("release", 3.0, &["j", "w1"]);
    let order: Vec<String> = t
        .ok("peek", 3.0, &["q", "10"])
        .as_array()
        .expect("array")
        .iter()
        .map(|j| j["jid"].as_str().expect("jid").to_owned())
        .collect();
    assert_eq!(order, vec!["hi2", "j", "later"]);
}

/// release writes a `released` history entry naming the worker and a log
/// event; it sends no lock_lost.
pub fn release_records_history_and_event(t: &Harness) {
    start(t, 0.0, "q", "j", "w1");
    t.take_events();
    t.ok("release", 4.0, &["j", "w1"]);
    let job = t.get("j");
    let last = job["history"].as_array().expect("history").last().cloned();
    assert_eq!(
        last,
        Some(json!({"what": "released", "when": 4, "worker": "w1"}))
    );
    assert_eq!(
        drain(t),
        vec![(
            "ql:log".to_owned(),
            json!({"jid": "j", "event": "released", "worker": "w1", "queue": "q"})
        )]
    );
}

/// The released job can be popped again by another worker, and the old
/// worker can no longer complete it.
pub fn released_job_moves_to_the_next_worker(t: &Harness) {
    start(t, 0.0, "q", "j", "w1");
    t.ok("release", 1.0, &["j", "w1"]);
    assert_eq!(t.pop_one(2.0, "q", "w2").as_deref(), Some("j"));
    t.err_with(
        "complete",
        3.0,
        &["j", "w1", "q", "{}"],
        ErrorKind::Conflict,
        "another worker: w2",
    );
    assert_eq!(
        t.ok("complete", 3.0, &["j", "w2", "q", "{}"]),
        json!("complete")
    );
}

/// release refuses a job that is not running (naming the state), a job held
/// by another worker, and an unknown job, and changes nothing.
pub fn release_refuses_wrong_state_other_worker_and_unknown_job(t: &Harness) {
    t.put(0.0, "other", "waiting");
    start(t, 0.0, "q", "running", "w1");
    let before = t.snapshot(1.0, &["waiting", "running"], &["q", "other"]);
    t.err_with(
        "release",
        1.0,
        &["waiting", "w1"],
        ErrorKind::Conflict,
        "not currently running: waiting",
    );
    t.err_with(
        "release",
        1.0,
        &["running", "w2"],
        ErrorKind::Conflict,
        "another worker: w1",
    );
    t.err_with(
        "release",
        1.0,
        &["nope", "w1"],
        ErrorKind::NotFound,
        "Release(): Job nope does not exist",
    );
    t.err_with(
        "release",
        1.0,
        &["running"],
        ErrorKind::Invalid,
        "Arg \"worker\" missing",
    );
    assert_eq!(
        t.snapshot(1.0, &["waiting", "running"], &["q", "other"]),
        before
    );
}

/// A job released during its lock's grace period loses the grace flag: the
/// next lost lock gets the courtesy step again.
pub fn release_clears_grace(t: &Harness) {
    start(t, 0.0, "q", "j", "w1");
    // Lock expires at 60; the pop at 60 gives the courtesy step (grace set).
    assert_eq!(t.ok("pop", 60.0, &["q", "w2", "1"]), json!([]));
    t.ok("release", 61.0, &["j", "w1"]);
    assert_eq!(t.pop_one(62.0, "q", "w2").as_deref(), Some("j"));
    // Lock now expires at 122: the first pop after that is a courtesy step again.
    assert_eq!(t.ok("pop", 122.0, &["q", "w3", "1"]), json!([]));
    assert_eq!(t.get("j")["worker"], json!("w2"));
}
