//! Conformance cases: heartbeat.

#[allow(unused_imports)]
use crate::prelude::*;

fn as_f64(v: &Value) -> f64 {
    v.as_f64().unwrap_or_else(|| panic!("not a number: {v}"))
}

/// heartbeat returns the new lock expiry (now + 60 by default) as an integer.
pub fn heartbeat_returns_new_expiry(t: &Harness) {
    start(t, 0.0, "q", "j", "w1");
    assert_eq!(t.ok("heartbeat", 10.0, &["j", "w1"]), json!(70));
    let job = t.get("j");
    assert_eq!(as_f64(&job["expires"]), 70.0);
    assert_eq!(job["state"], "running");
    assert_eq!(job["worker"], "w1");
}

/// heartbeat truncates a fractional expiry in its reply; the job keeps the exact expiry.
pub fn heartbeat_reply_truncates_fractional_expiry(t: &Harness) {
    start(t, 0.0, "q", "j", "w1");
    assert_eq!(t.ok("heartbeat", 12.75, &["j", "w1"]), json!(72));
    assert_eq!(as_f64(&t.get("j")["expires"]), 72.75);
}

/// heartbeat uses the global `heartbeat` config for the lock length.
pub fn heartbeat_uses_heartbeat_config(t: &Harness) {
    t.ok("config.set", 0.0, &["heartbeat", "30"]);
    start(t, 0.0, "q", "j", "w1");
    assert_eq!(t.ok("heartbeat", 10.0, &["j", "w1"]), json!(40));
    assert_eq!(as_f64(&t.get("j")["expires"]), 40.0);
}

/// `<queue>-heartbeat` overrides `heartbeat` for jobs of that queue only.
pub fn heartbeat_queue_config_overrides_global(t: &Harness) {
    t.ok("config.set", 0.0, &["heartbeat", "30"]);
    t.ok("config.set", 0.0, &["q-heartbeat", "7"]);
    start(t, 0.0, "q", "a", "w1");
    start(t, 0.0, "other", "b", "w1");
    assert_eq!(t.ok("heartbeat", 10.0, &["a", "w1"]), json!(17));
    assert_eq!(t.ok("heartbeat", 10.0, &["b", "w1"]), json!(40));
}

/// heartbeat moves the lock so a pop at the old expiry does not treat the job as stalled.
pub fn heartbeat_extends_lock_past_old_expiry(t: &Harness) {
    start(t, 0.0, "q", "j", "w1");
    assert_eq!(t.ok("heartbeat", 50.0, &["j", "w1"]), json!(110));
    assert_eq!(t.ok("pop", 100.0, &["q", "w2", "1"]), json!([]));
    let job = t.get("j");
    assert_eq!(job["worker"], "w1");
    assert_eq!(history_whats(&job), vec!["put", "popped"]);
    let counts = t.ok("queues", 100.0, &["q"]);
    assert_eq!(counts["running"], json!(1));
    assert_eq!(counts["stalled"], json!(0));
    assert_eq!(t.ok("jobs", 100.0, &["stalled", "q"]), json!([]));
    assert_eq!(t.ok("jobs", 100.0, &["running", "q"]), json!(["j"]));
    assert_eq!(
        t.ok("workers", 100.0, &["w1"]),
        json!({"jobs": ["j"], "stalled": []})
    );
}

/// heartbeat succeeds on a job whose lock expired when no pop has noticed yet.
pub fn heartbeat_after_expiry_before_any_pop(t: &Harness) {
    start(t, 0.0, "q", "j", "w1");
    assert_eq!(t.ok("heartbeat", 65.0, &["j", "w1"]), json!(125));
    assert_eq!(t.ok("pop", 70.0, &["q", "w2", "1"]), json!([]));
    assert_eq!(history_whats(&t.get("j")), vec!["put", "popped"]);
}

/// heartbeat with data replaces the job's data.
pub fn heartbeat_replaces_data_when_given(t: &Harness) {
    t.ok("put", 0.0, &["me", "q", "j", "klass", r#"{"a":1}"#, "0"]);
    t.pop_one(0.0, "q", "w1");
    t.ok("heartbeat", 5.0, &["j", "w1", r#"{"b":[1,2]}"#]);
    let data: Value =
        serde_json::from_str(t.get("j")["data"].as_str().expect("data")).expect("json");
    assert_eq!(data, json!({"b": [1, 2]}));
}

/// heartbeat without data leaves the data text untouched.
pub fn heartbeat_without_data_keeps_data(t: &Harness) {
    t.ok("put", 0.0, &["me", "q", "j", "klass", r#"{"a": 1}"#, "0"]);
    t.pop_one(0.0, "q", "w1");
    t.ok("heartbeat", 5.0, &["j", "w1"]);
    assert_eq!(t.get("j")["data"], json!(r#"{"a": 1}"#));
}

/// heartbeat refreshes the worker's last-seen time (workers list is most recent first).
pub fn heartbeat_updates_worker_last_seen(t: &Harness) {
    start(t, 0.0, "q", "j", "w1");
    // w2 pops an empty queue later, so it is the most recently seen worker.
    assert_eq!(t.ok("pop", 5.0, &["q", "w2", "1"]), json!([]));
    let names = |v: Value| -> Vec<String> {
        v.as_array()
            .expect("array")
            .iter()
            .map(|w| w["name"].as_str().expect("name").to_owned())
            .collect()
    };
    assert_eq!(names(t.ok("workers", 6.0, &[])), vec!["w2", "w1"]);
    t.ok("heartbeat", 10.0, &["j", "w1"]);
    assert_eq!(
        t.ok("workers", 11.0, &[]),
        json!([{"name": "w1", "jobs": 1, "stalled": 0}, {"name": "w2", "jobs": 0, "stalled": 0}])
    );
}

/// heartbeat on a waiting job is refused naming the state.
pub fn heartbeat_waiting_job_is_conflict(t: &Harness) {
    t.put(0.0, "q", "j");
    t.err_with(
        "heartbeat",
        1.0,
        &["j", "w1"],
        ErrorKind::Conflict,
        "Heartbeat(): Job j not currently running: waiting",
    );
}

/// heartbeat on a completed job is refused naming the state `complete`.
pub fn heartbeat_complete_job_is_conflict(t: &Harness) {
    start(t, 0.0, "q", "j", "w1");
    t.ok("complete", 1.0, &["j", "w1", "q", "{}"]);
    t.err_with(
        "heartbeat",
        2.0,
        &["j", "w1"],
        ErrorKind::Conflict,
        "not currently running: complete",
    );
}

/// heartbeat on a timed-out job is refused naming the state `stalled`.
pub fn heartbeat_timed_out_job_is_conflict(t: &Harness) {
    start(t, 0.0, "q", "j", "w1");
    t.ok("timeout", 1.0, &["j"]);
    t.err_with(
        "heartbeat",
        2.0,
        &["j", "w1"],
        ErrorKind::Conflict,
        "not currently running: stalled",
    );
}

/// heartbeat by a worker that does not hold the job is refused, naming the holder, and changes nothing.
pub fn heartbeat_other_worker_is_conflict(t: &Harness) {
    start(t, 0.0, "q", "j", "w1");
    let before = t.snapshot(10.0, &["j"], &["q"]);
    t.err_with(
        "heartbeat",
        10.0,
        &["j", "w2", r#"{"x":1}"#],
        ErrorKind::Conflict,
        "Heartbeat(): Job j given out to another worker: w1",
    );
    assert_eq!(t.snapshot(10.0, &["j"], &["q"]), before);
    assert_eq!(as_f64(&t.get("j")["expires"]), 60.0);
}

/// heartbeat by the previous owner after the job was handed to another worker is refused.
pub fn heartbeat_after_handover_is_conflict(t: &Harness) {
    t.ok("config.set", 0.0, &["grace-period", "0"]);
    start(t, 0.0, "q", "j", "w1");
    assert_eq!(t.pop_one(60.0, "q", "w2").as_deref(), Some("j"));
    t.err_with(
        "heartbeat",
        61.0,
        &["j", "w1"],
        ErrorKind::Conflict,
        "given out to another worker: w2",
    );
}

/// heartbeat of an unknown job is a not-found error.
pub fn heartbeat_unknown_job_is_not_found(t: &Harness) {
    t.err_with(
        "heartbeat",
        0.0,
        &["nope", "w1"],
        ErrorKind::NotFound,
        "Heartbeat(): Job nope does not exist",
    );
}

/// heartbeat without a worker argument is an invalid-argument error.
pub fn heartbeat_missing_worker_is_invalid(t: &Harness) {
    start(t, 0.0, "q", "j", "w1");
    t.err_with(
        "heartbeat",
        1.0,
        &["j"],
        ErrorKind::Invalid,
        "Heartbeat(): Arg \"worker\" missing",
    );
}

/// heartbeat with data that is not JSON is refused and the data is kept.
pub fn heartbeat_bad_data_is_invalid(t: &Harness) {
    start(t, 0.0, "q", "j", "w1");
    t.err_with(
        "heartbeat",
        1.0,
        &["j", "w1", "{bad"],
        ErrorKind::Invalid,
        "Arg \"data\" not JSON",
    );
    assert_eq!(t.get("j")["data"], json!("{}"));
    assert_eq!(as_f64(&t.get("j")["expires"]), 60.0);
}

/// A heartbeat during the grace window succeeds but keeps the grace flag, so the
/// next expiry hands the job over without a second courtesy step.
pub fn heartbeat_during_grace_keeps_grace(t: &Harness) {
    start(t, 0.0, "q", "j", "w1");
    // Courtesy step: lock pushed to 70, job not handed out.
    assert_eq!(t.ok("pop", 60.0, &["q", "w2", "1"]), json!([]));
    assert_eq!(t.ok("heartbeat", 65.0, &["j", "w1"]), json!(125));
    assert_eq!(t.get("j")["worker"], "w1");
    // Before the new expiry nothing happens.
    assert_eq!(t.ok("pop", 124.0, &["q", "w2", "1"]), json!([]));
    // At the new expiry the grace flag is still set: handed over at once.
    let popped = t.ok("pop", 125.0, &["q", "w2", "1"]);
    assert_eq!(popped.as_array().map(Vec::len), Some(1));
    assert_eq!(popped[0]["jid"], "j");
    assert_eq!(popped[0]["worker"], "w2");
    assert_eq!(popped[0]["remaining"], json!(4));
    assert_eq!(
        history_whats(&t.get("j")),
        vec!["put", "popped", "timed-out", "popped"]
    );
}
